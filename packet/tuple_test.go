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
