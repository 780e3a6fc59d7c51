package packet

import "testing"

func TestProtoName(t *testing.T) {
	for p, want := range map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah", 132: "sctp", 136: "udp-lite", 0: "0", 4: "4", 255: "255"} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
		if back, ok := ParseProtoName(want); !ok || back != p {
			t.Errorf("ParseProtoName(%q) = %d, %v; want %d", want, back, ok, p)
		}
	}
	for _, s := range []string{"GRE", "Udp-Lite"} {
		if _, ok := ParseProtoName(s); !ok {
			t.Errorf("ParseProtoName(%q) refused a name in another case", s)
		}
	}
	for _, s := range []string{"", "ipip", "256", "-1", "6x"} {
		if p, ok := ParseProtoName(s); ok {
			t.Errorf("ParseProtoName(%q) = %d, want refused", s, p)
		}
	}
}
