package flowtable_test

import (
	"fmt"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// A source-NAT session: 10.77.0.5:40000 → 198.18.0.9:80 leaves as
// 198.18.0.204:1024, so replies arrive for 198.18.0.204:1024.
func Example() {
	t, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		panic(err)
	}
	first := packet.Tuple{SrcAddr: 0x0a4d0005, DstAddr: 0xc6120009, SrcPort: 40000, DstPort: 80, Proto: packet.ProtoTCP}
	translated := first
	translated.SrcAddr, translated.SrcPort = 0xc61200cc, 1024

	var s flowtable.Session
	s.Key[flowtable.Orig] = first
	s.Key[flowtable.Reply] = translated.Reverse()
	id, _, r := t.Insert(&s, 0, 30, 100)
	fmt.Println(r)

	reply := translated.Reverse()
	got, dir, gen, ok := t.LookupGen(reply)
	fmt.Println(got == id, dir, ok)
	// Rewrite the reply to the original client: Hot copies the translated
	// tuple (Key[Orig] reversed) and validates the generation after the
	// copy; false means the session ended meanwhile and the packet is a
	// miss.
	if h, ok := t.Hot(got, gen, dir); ok {
		t.Touch(got, dir, 60, 101)
		fmt.Printf("to %08x:%d\n", h.DstAddr(), h.DstPort())
	}

	n := t.Expire(131, 0, 1, 64, func(id, gen uint32, s flowtable.Session) {
		fmt.Println("expired", s.Key[flowtable.Orig].SrcPort)
	})
	fmt.Println(n, t.Stats().Sessions)
	// Output:
	// inserted
	// true reply true
	// to 0a4d0005:40000
	// expired 40000
	// 1 0
}
