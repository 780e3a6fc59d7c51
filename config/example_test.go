package config_test

import (
	"fmt"

	"github.com/fastnat/fastnat/config"
)

func ExampleParse() {
	_, err := config.Parse("fastnat.toml", []byte(`
[[interface]]
name = "eth0"
role = "inside"

[[interface]]
name = "eth1"
role = "outisde"

[[port_mapping]]
application = "ftp"
port = 9091
protocol = "tcp"
hosts = ["198.18.0.204/24"]
`))
	fmt.Println(err)
	// Output:
	// fastnat.toml:8:8: interface[1].role: "outisde" is not allowed; allowed: "inside" or "outside"
	// fastnat.toml:14:10: port_mapping[0].hosts[0]: "198.18.0.204/24" has host bits set; write the network, 198.18.0.0/24
}
