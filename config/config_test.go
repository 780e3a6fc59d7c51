package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/portmap"
)

// ifaces is appended to test documents that are about something else, so
// that their own lines keep the numbers they have in the test.
const ifaces = `
[[interface]]
name = "eth0"
role = "inside"
[[interface]]
name = "eth1"
role = "outside"
`

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse("test.toml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestExampleFile(t *testing.T) {
	c, err := Load("../examples/fastnat.toml")
	if err != nil {
		t.Fatalf("the example configuration is refused:\n%v", err)
	}
	want := &Config{
		File: "../examples/fastnat.toml",
		Dataplane: Dataplane{Workers: 2, CPUs: []int{0, 1}, Poll: PollAdaptive, Batch: 64,
			FramesPerQueue: 8192, FrameSize: 2048, XDPMode: XDPAuto},
		Interfaces: []Interface{
			{Name: "eth1", Role: RoleOutside, Gateway: netip.MustParseAddr("198.18.0.254"), Line: 16},
			{Name: "eth0", Role: RoleInside, Line: 22},
		},
		Flows:    Flows{Max: 1048576},
		Timeouts: DefaultTimeouts,
		NAT: NAT{
			Outbound: []Outbound{{
				Inside:  []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
				Pool:    []netip.Addr{netip.MustParseAddr("198.18.0.204")},
				Ports:   PortRange{1024, 65535},
				Mapping: EndpointIndependent,
				Line:    38,
			}},
			Server: []Server{{
				Proto:  portmap.ProtoTCP,
				Public: netip.MustParseAddrPort("198.18.0.204:9091"),
				Inside: netip.MustParseAddrPort("10.77.0.226:2021"),
				Line:   44,
			}},
		},
		PortMappings: []portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: portmap.ProtoTCP,
			Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.204/32")}}},
		PortMappingLines: []int{49},
		ALG:              ALG{FTP: FTPALG{Enabled: true, AllowThirdParty: false, MaxExpectations: 8}},
		ICMP:             ICMP{RateLimit: time.Second, Burst: 6},
		TCP:              TCP{MSSClamp: 0},
		Metrics:          Metrics{Listen: "127.0.0.1:9300"},
		Control:          Control{Socket: "/run/fastnat.sock"},
		Logging:          Logging{Ring: natlog.DefaultRing},
		Warnings: []Error{{File: "../examples/fastnat.toml", Line: 46, Col: 10,
			Msg: "nat.server[0].public: 198.18.0.204:9091/tcp lies in the port range 1024-65535 of the pool of nat.outbound[0] (line 38); the server keeps that port, outbound sessions never get it"}},
	}
	got := *c
	got.PortMap = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("example parsed as\n%+v\nwant\n%+v", got, *want)
	}
	if app, idx := c.PortMap.Lookup(portmap.ProtoTCP, 198<<24|18<<16|204, 9091); app != portmap.AppFTP || idx != 0 {
		t.Errorf("PortMap classifies 198.18.0.204:9091/tcp as %v, %d", app, idx)
	}
}

// TestREADMEConfig checks that the configuration shown in the README's
// reference is the example file and is accepted.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```toml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```toml block")
	}
	if _, err := Parse("README.md", []byte(block)); err != nil {
		t.Fatalf("README's example is refused:\n%v", err)
	}
	example, err := os.ReadFile("../examples/fastnat.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), block) {
		t.Error("README's example differs from examples/fastnat.toml; keep them the same")
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, ifaces)
	want := Config{
		File:      "test.toml",
		Dataplane: Dataplane{Batch: DefaultBatch, FramesPerQueue: DefaultFramesPerQueue, FrameSize: DefaultFrameSize},
		Interfaces: []Interface{
			{Name: "eth0", Role: RoleInside, Line: 2},
			{Name: "eth1", Role: RoleOutside, Line: 5},
		},
		Flows:    Flows{Max: DefaultFlowsMax},
		Timeouts: DefaultTimeouts,
		ALG:      ALG{FTP: FTPALG{Enabled: true, MaxExpectations: DefaultMaxExpectations}},
		ICMP:     ICMP{RateLimit: DefaultICMPRateLimit, Burst: DefaultICMPBurst},
		Control:  Control{Socket: DefaultSocket},
		Logging:  Logging{Ring: natlog.DefaultRing},
	}
	got := *c
	if got.PortMap == nil {
		t.Fatal("PortMap is nil")
	}
	got.PortMap = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults\n%+v\nwant\n%+v", got, want)
	}
	if app, _ := c.PortMap.Lookup(portmap.ProtoTCP, 0, 21); app != portmap.AppFTP {
		t.Errorf("port 21 is %v without mappings", app)
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(*Config) bool
	}{
		{"queues list", "[[interface]]\nname = \"a\"\nrole = \"inside\"\nqueues = [2, 0]\n" + ifaces[1:],
			func(c *Config) bool { return reflect.DeepEqual(c.Interfaces[0].Queues, []int{2, 0}) }},
		{"poll busy", "[dataplane]\npoll = \"busy\"\n" + ifaces, func(c *Config) bool { return c.Dataplane.Poll == PollBusy }},
		{"poll interrupt", "[dataplane]\npoll = \"interrupt\"\n" + ifaces, func(c *Config) bool { return c.Dataplane.Poll == PollInterrupt }},
		{"xdp generic", "[dataplane]\nxdp_mode = \"generic\"\n" + ifaces, func(c *Config) bool { return c.Dataplane.XDPMode == XDPGeneric }},
		{"xdp native", "[dataplane]\nxdp_mode = \"native\"\n" + ifaces, func(c *Config) bool { return c.Dataplane.XDPMode == XDPNative }},
		{"frame size 4096", "[dataplane]\nframe_size = 4096\n" + ifaces, func(c *Config) bool { return c.Dataplane.FrameSize == 4096 }},
		{"tcp_closed default", ifaces,
			func(c *Config) bool {
				return c.Timeouts.TCPClosed == 10*time.Second && c.Timeouts.TCPTransitory == 4*time.Minute
			}},
		{"tcp_closed", "[timeouts]\ntcp_closed = \"2s\"\n" + ifaces,
			func(c *Config) bool {
				return c.Timeouts.TCPClosed == 2*time.Second && c.Timeouts.TCPTransitory == 4*time.Minute
			}},
		{"timeouts", "[timeouts]\nudp = \"10m\"\nexpectation = \"90s\"\n" + ifaces,
			func(c *Config) bool {
				return c.Timeouts.UDP == 10*time.Minute && c.Timeouts.Expectation == 90*time.Second && c.Timeouts.ICMP == time.Minute
			}},
		{"pool range, prefix and address", `[[nat.outbound]]
inside = ["10.0.0.0/8", "192.168.1.0/24"]
pool = ["198.18.0.1-198.18.0.3", "198.18.1.0/30", "198.18.2.9"]
ports = "2000-2999"
mapping = "address-and-port-dependent"
` + ifaces, func(c *Config) bool {
			o := c.NAT.Outbound[0]
			var pool []string
			for _, a := range o.Pool {
				pool = append(pool, a.String())
			}
			return strings.Join(pool, " ") == "198.18.0.1 198.18.0.2 198.18.0.3 198.18.1.1 198.18.1.2 198.18.2.9" &&
				o.Ports == PortRange{2000, 2999} && o.Mapping == AddressAndPortDependent && len(o.Inside) == 2
		}},
		{"pool /31 and /32 keep every address", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.0/31\", \"198.18.1.1/32\"]\n" + ifaces,
			func(c *Config) bool { return len(c.NAT.Outbound[0].Pool) == 3 }},
		{"single port as integer", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = 4000\n" + ifaces,
			func(c *Config) bool { return c.NAT.Outbound[0].Ports == PortRange{4000, 4000} }},
		{"server udp", "[[nat.server]]\nprotocol = \"udp\"\npublic = \"198.18.0.1:69\"\ninside = \"10.0.0.2:69\"\n" + ifaces,
			func(c *Config) bool { return c.NAT.Server[0].Proto == portmap.ProtoUDP }},
		{"servers as an array of inline tables", "[nat]\nserver = [{protocol = \"tcp\", public = \"198.18.0.1:21\", inside = \"10.0.0.2:21\"}]\n" + ifaces,
			func(c *Config) bool { return len(c.NAT.Server) == 1 && c.NAT.Server[0].Line == 2 }},
		{"port mapping case-insensitive, hosts as address", "[[port_mapping]]\napplication = \"FTP\"\nport = 2121\nprotocol = \"TCP\"\nhosts = [\"10.0.0.1\", \"10.1.0.0/16\"]\n" + ifaces,
			func(c *Config) bool {
				m := c.PortMappings[0]
				return m.App == portmap.AppFTP && m.Proto == portmap.ProtoTCP && m.Hosts[0] == netip.MustParsePrefix("10.0.0.1/32") && c.PortMappingLines[0] == 1
			}},
		{"port mapping without protocol", "[[port_mapping]]\napplication = \"sip\"\nport = 0\n" + ifaces,
			func(c *Config) bool {
				return c.PortMappings[0].Proto == portmap.ProtoAny && c.PortMappings[0].Port == 0
			}},
		{"metrics and control off", "[metrics]\nlisten = \"\"\n[control]\nsocket = \"\"\n" + ifaces,
			func(c *Config) bool { return c.Metrics.Listen == "" && c.Control.Socket == "" }},
		{"metrics on every address", "[metrics]\nlisten = \":9300\"\n" + ifaces, func(c *Config) bool { return c.Metrics.Listen == ":9300" }},
		{"operator group", "[control]\ngroup = \"fastnat\"\n" + ifaces,
			func(c *Config) bool { return c.Control == Control{Socket: DefaultSocket, Group: "fastnat"} }},
		{"alg", "[alg.ftp]\nenabled = false\nallow_third_party = true\nmax_expectations = 100\n" + ifaces,
			func(c *Config) bool {
				return c.ALG.FTP == FTPALG{Enabled: false, AllowThirdParty: true, MaxExpectations: 100}
			}},
		{"icmp rate limit in milliseconds", "[icmp]\nrate_limit = \"250ms\"\nburst = 3\n" + ifaces,
			func(c *Config) bool { return c.ICMP == ICMP{RateLimit: 250 * time.Millisecond, Burst: 3} }},
		{"icmp rate limit off", "[icmp]\nrate_limit = \"0s\"\n" + ifaces,
			func(c *Config) bool { return c.ICMP == ICMP{RateLimit: 0, Burst: DefaultICMPBurst} }},
		{"mss clamp to the mtu", "[tcp]\nmss_clamp = \"mtu\"\n" + ifaces, func(c *Config) bool { return c.TCP.MSSClamp == MSSClampMTU }},
		{"mss clamp off", "[tcp]\nmss_clamp = \"off\"\n" + ifaces, func(c *Config) bool { return c.TCP.MSSClamp == 0 }},
		{"mss clamp to a number", "[tcp]\nmss_clamp = 1400\n" + ifaces, func(c *Config) bool { return c.TCP.MSSClamp == 1400 }},
		{"dotted keys", "dataplane.batch = 32\nalg.ftp.enabled = false\n" + ifaces,
			func(c *Config) bool { return c.Dataplane.Batch == 32 && !c.ALG.FTP.Enabled }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.doc)
			if !tc.check(c) {
				t.Errorf("unexpected values: %+v", *c)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(big)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || !strings.Contains(es[0].Msg, "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("f.toml", []byte("[dataplane]\nbatch = 0\npoll = \"fast\"\n"+ifaces))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	want := "f.toml:2:9: dataplane.batch: 0 is out of range; allowed: 1 to 512\n" +
		"f.toml:3:8: dataplane.poll: \"fast\" is not allowed; allowed: \"adaptive\", \"busy\" or \"interrupt\""
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 124 * time.Minute: "2h4m", 2 * time.Minute: "2m", 90 * time.Second: "1m30s",
		100 * time.Millisecond: "100ms", 0: "0s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %s, want %s", d, got, want)
		}
	}
}
