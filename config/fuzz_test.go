package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, and
// it either returns a Config that satisfies the invariants the dataplane
// relies on or positioned Errors.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile("../examples/fastnat.toml"); err == nil {
		f.Add(ex)
	}
	f.Add([]byte(ifaces))
	f.Add([]byte("[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.1:21\"\n" + ifaces))
	f.Add([]byte("[[port_mapping]]\napplication = \"ftp\"\nport = 9091\nhosts = [\"10.0.0.1\"]\n" + ifaces))
	f.Add([]byte("[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1-198.18.0.9\"]\nports = \"1-2\"\n" + ifaces))
	f.Add([]byte("a.b.c = [[1], {x = 2}]\n[interface]\n[[interface]]\n"))
	f.Add([]byte("nat = {server = [{protocol = 'udp'}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not Errors: %v", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.File != "f.toml" || e.Msg == "" {
					t.Fatalf("bad error %#v", e)
				}
			}
			return
		}
		var inside, outside bool
		for _, it := range c.Interfaces {
			inside = inside || it.Role == RoleInside
			outside = outside || it.Role == RoleOutside
		}
		if !inside || !outside || c.PortMap == nil || len(c.PortMappings) != len(c.PortMappingLines) {
			t.Fatalf("accepted an inconsistent config: %+v", c)
		}
		for _, o := range c.NAT.Outbound {
			if len(o.Pool) == 0 || len(o.Inside) == 0 || o.Ports.Lo == 0 || o.Ports.Lo > o.Ports.Hi {
				t.Fatalf("accepted outbound rule %+v", o)
			}
		}
		if c.Dataplane.Batch < 1 || c.Dataplane.FramesPerQueue < 2*c.Dataplane.Batch {
			t.Fatalf("accepted dataplane %+v", c.Dataplane)
		}
	})
}
