package portmap_test

import (
	"fmt"

	"github.com/fastnat/fastnat/portmap"
)

// The case: an FTP server published as 198.18.0.204:9091 and translated
// to 10.77.0.226:2021 is FTP only with a mapping for port 9091.
func ExampleTable_Classify() {
	const public, inside = 198<<24 | 18<<16 | 204, 10<<24 | 77<<16 | 226

	none, _ := portmap.Build(nil)
	app, _ := none.Classify(portmap.ProtoTCP, public, 9091, inside, 2021)
	fmt.Println("without a mapping:", app)

	app, _ = none.Classify(portmap.ProtoTCP, public, 9091, inside, 21)
	fmt.Println("server on port 21:", app)

	withMapping, _ := portmap.Build([]portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: portmap.ProtoTCP}})
	app, entry := withMapping.Classify(portmap.ProtoTCP, public, 9091, inside, 2021)
	fmt.Println("port-mapping application ftp port 9091:", app, "by mapping", entry)
	// Output:
	// without a mapping: other
	// server on port 21: ftp
	// port-mapping application ftp port 9091: ftp by mapping 0
}

func ExampleBuild_overwrite() {
	_, overwrites := portmap.Build([]portmap.Mapping{
		{App: portmap.AppFTP, Port: 9091},
		{App: portmap.AppHTTP, Port: 9091},
	})
	for _, o := range overwrites {
		fmt.Println(o)
	}
	// Output:
	// port 9091/any scope any: ftp (mapping 0) overwritten by http (mapping 1)
}
