package dataplane

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// TestAllocationModesReachTheNAT: deterministic mapping and port blocks
// reach the NAT's rules, and the NAT allocates with them: a host's first
// session gets the public address and a port of the range `fastnat
// lookup` gives it offline (deterministic), or of a block the host holds
// (port blocks, whose first block starts at the range's start).
func TestAllocationModesReachTheNAT(t *testing.T) {
	for _, extra := range []string{`mapping = "deterministic"`, `block_size = 512`} {
		cfg := parse(t, strings.Replace(baseConfig, `"10.0.0.0/8"`, `"10.0.0.0/24"`, 1)+extra+"\n")
		r := natRules(cfg, nil)
		if o := r.Outbound[0]; o.Deterministic != (cfg.NAT.Outbound[0].PortsPerHost > 0) || o.BlockSize != cfg.NAT.Outbound[0].BlockSize {
			t.Fatalf("%s: rules %+v", extra, o)
		}
		table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
		if err != nil {
			t.Fatal(err)
		}
		n, err := nat.New(r, table, 1)
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		f := testutil.UDP(t, "10.0.0.7:5000", "198.51.100.1:5300", []byte("q"))
		var p packet.Parsed
		if res := packet.Parse(f, &p); res != packet.OK {
			t.Fatal(res)
		}
		var res nat.Result
		n.Engine(0).Process(f, &p, nat.Inside, 1, &res)
		if res.Verdict != nat.Forward {
			t.Fatalf("%s: %v", extra, res.Verdict)
		}
		src := netip.MustParseAddrPort(testutil.Decode(t, f).Src())
		lo, hi := uint16(1024), uint16(65535)
		if u := n.BlockUse(); cfg.NAT.Outbound[0].BlockSize > 0 && (len(u) != 1 || u[0].Held != 1 || u[0].Size != 512) {
			t.Errorf("%s: blocks %+v, want one held", extra, u)
		}
		if cfg.NAT.Outbound[0].Mapping.String() == "deterministic" {
			l, err := nat.NewLookup(r.Outbound)
			if err != nil {
				t.Fatal(err)
			}
			a, err := l.ByInside(netip.MustParseAddr("10.0.0.7"))
			if err != nil {
				t.Fatal(err)
			}
			lo, hi = a.First, a.Last
		}
		if src.Addr() != netip.MustParseAddr("198.18.0.1") || src.Port() < lo || src.Port() > hi {
			t.Errorf("%s: translated to %v, want 198.18.0.1 with a port in %d-%d", extra, src, lo, hi)
		}
	}
}
