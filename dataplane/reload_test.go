package dataplane

import (
	"strings"
	"testing"

	"github.com/fastnat/fastnat/config"
)

const baseConfig = `[[interface]]
name = "eth1"
role = "outside"

[[interface]]
name = "eth0"
role = "inside"

[[nat.outbound]]
inside = ["10.0.0.0/8"]
pool = ["198.18.0.1"]
`

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEffective: every restart key is reported when it changes and keeps
// its running value; keys a reload applies are not reported and take the
// file's value.
func TestEffective(t *testing.T) {
	running := parse(t, baseConfig)
	tests := []struct {
		name string
		file string
		want string // pending keys, comma-separated
	}{
		{"nothing changed", baseConfig, ""},
		{"rules and timeouts apply", baseConfig + "[timeouts]\nudp = \"3m\"\n[[port_mapping]]\napplication = \"ftp\"\nport = 2121\n", ""},
		{"workers", "[dataplane]\nworkers = 2\n" + baseConfig, "dataplane.workers (running 0, file 2)"},
		{"cpus", "[dataplane]\ncpus = [1]\n" + baseConfig, "dataplane.cpus (running [], file [1])"},
		{"poll", "[dataplane]\npoll = \"busy\"\n" + baseConfig, `dataplane.poll (running "adaptive", file "busy")`},
		{"batch", "[dataplane]\nbatch = 32\n" + baseConfig, "dataplane.batch (running 64, file 32)"},
		{"frames", "[dataplane]\nframes_per_queue = 16384\n" + baseConfig, "dataplane.frames_per_queue (running 8192, file 16384)"},
		{"frame size", "[dataplane]\nframe_size = 4096\n" + baseConfig, "dataplane.frame_size (running 2048, file 4096)"},
		{"xdp mode", "[dataplane]\nxdp_mode = \"generic\"\n" + baseConfig, `dataplane.xdp_mode (running "auto", file "generic")`},
		{"interface queues", strings.Replace(baseConfig, "role = \"inside\"", "role = \"inside\"\nqueues = [0]", 1),
			"interface (running eth1 outside queues all; eth0 inside queues all, file eth1 outside queues all; eth0 inside queues [0])"},
		{"interface lines only", "\n\n" + baseConfig, ""},
		{"flows", baseConfig + "[flows]\nmax = 100\n", "flows.max (running 1048576, file 100)"},
		{"ftp alg", baseConfig + "[alg.ftp]\nenabled = false\n", "alg.ftp.enabled (running true, file false)"},
		{"ftp policy applies", baseConfig + "[alg.ftp]\nallow_third_party = true\n", ""},
		{"metrics", baseConfig + "[metrics]\nlisten = \"127.0.0.1:9300\"\n", `metrics.listen (running "", file "127.0.0.1:9300")`},
		{"control", baseConfig + "[control]\nsocket = \"\"\n", `control.socket (running "/run/fastnat.sock", file "")`},
		{"control group", baseConfig + "[control]\ngroup = \"noc\"\n", `control.group (running "", file "noc")`},
		{"logging", baseConfig + "[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\n",
			`logging (running ring 65536, file ring 65536; ipfix 192.0.2.10:4739 domain 1 refresh 1m0s max 1400 events 0x3fe)`},
		{"logging lines only", "\n" + baseConfig + "[logging]\nring = 65536\n", ""},
		{"two", "[dataplane]\nworkers = 2\n" + baseConfig + "[flows]\nmax = 100\n", "dataplane.workers (running 0, file 2), flows.max (running 1048576, file 100)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := parse(t, tc.file)
			eff, pending := effective(file, running)
			var got []string
			for _, p := range pending {
				got = append(got, p.String())
			}
			if s := strings.Join(got, ", "); s != tc.want {
				t.Fatalf("pending %q, want %q", s, tc.want)
			}
			// What runs keeps every restart key; the file is not written.
			if again, p := effective(eff, running); p != nil {
				t.Errorf("the effective configuration still differs from the running one: %v", again)
			}
			if _, p := effective(file, running); len(p) != len(pending) {
				t.Error("effective changed the file's configuration")
			}
			if eff.Timeouts != file.Timeouts || eff.ALG.FTP.AllowThirdParty != file.ALG.FTP.AllowThirdParty || len(eff.PortMappings) != len(file.PortMappings) {
				t.Error("keys a reload applies did not take the file's values")
			}
		})
	}
}
