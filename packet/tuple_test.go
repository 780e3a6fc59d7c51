package packet

import (
	"reflect"
	"testing"
)

func TestTupleWordsRoundTrip(t *testing.T) {
	tu := Tuple{SrcAddr: 0x0a4d0005, DstAddr: 0xc61200cc, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP}
	a, b := tu.Words()
	if got := TupleFromWords(a, b); got != tu {
		t.Fatalf("round trip: got %+v want %+v", got, tu)
	}
	if r := tu.Reverse().Reverse(); r != tu {
		t.Fatalf("double reverse: got %+v want %+v", r, tu)
	}
	if s := reflect.TypeOf(tu).Size(); s != 16 {
		t.Fatalf("Tuple is %d bytes, want 16", s)
	}
}

func TestTupleString(t *testing.T) {
	for _, tc := range []struct {
		name string
		tu   Tuple
		want string
	}{
		{"tcp", Tuple{SrcAddr: 0x0a4d0005, DstAddr: 0xc61200cc, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP}, "tcp 10.77.0.5:40000 -> 198.18.0.204:9091"},
		{"icmp", Tuple{SrcAddr: 1, DstAddr: 0xffffffff, SrcPort: 7, DstPort: 7, Proto: ProtoICMP}, "icmp 0.0.0.1:7 -> 255.255.255.255:7"},
		{"unknown", Tuple{Proto: 47}, "proto-47 0.0.0.0:0 -> 0.0.0.0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tu.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
