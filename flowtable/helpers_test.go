package flowtable

import (
	"testing"

	"github.com/fastnat/fastnat/packet"
)

// origKey is the first-packet tuple of test flow i: an inside client
// 10.x.y.z:port to a server 198.18.0.1:80. Distinct for every i < 2^38.
func origKey(i uint64) packet.Tuple {
	return packet.Tuple{
		SrcAddr: 0x0a000000 | uint32(i>>14)&0xffffff, DstAddr: 0xc6120001,
		SrcPort: 1024 + uint16(i&0x3fff), DstPort: 80, Proto: packet.ProtoTCP,
	}
}

// replyKey is the reply tuple of test flow i after source NAT to
// 198.19.x.y:port; it never equals any origKey.
func replyKey(i uint64) packet.Tuple {
	return packet.Tuple{
		SrcAddr: 0xc6120001, DstAddr: 0xc6130000 | uint32(i>>16)&0xffff,
		SrcPort: 80, DstPort: uint16(i), Proto: packet.ProtoTCP,
	}
}

// testSession returns a session for flow i with recognisable fields.
func testSession(i uint64) *Session {
	return &Session{
		Key:       [2]packet.Tuple{origKey(i), replyKey(i)},
		L3Delta:   [2]uint32{uint32(i) & 0xffff, ^uint32(i) & 0xffff}, // Reply's the negation of Orig's
		L4Delta:   [2]uint32{uint32(i+2) & 0xffff, ^uint32(i+2) & 0xffff},
		Parent:    uint32(i % 7),
		ParentGen: uint32(i%3)*2 + 1,
		App:       uint8(i % 5),
		Flags:     uint8(i%3) | uint8(i%5)<<5,
		MapEntry:  int16(i%11) - 1,
		Track:     [2]uint64{i << 20, i<<40 | 1},
		Rule:      uint16(i % 13),
		Ingress:   uint16(i % 4),
	}
}

// mustNew builds a table with a fixed seed, so that failures reproduce.
func mustNew(tb testing.TB, cfg Config) *Table {
	tb.Helper()
	t, err := newSeeded(cfg, 0x5eed)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// checkIndex is the slow oracle of the index invariants: every occupied
// lane names a live session whose key in the lane's direction hashes to
// this shard with this tag; every live session has exactly its two
// entries; and every overflow count equals the number of entries whose
// probe from their home bucket passed that bucket. Not for concurrent use.
func checkIndex(tb testing.TB, t *Table) {
	tb.Helper()
	entries := make(map[uint32]int)
	for s := range t.shards {
		base := uint32(s) * t.nbPer
		want := make([]uint64, t.nbPer)
		for j := range t.nbPer {
			bk := &t.buckets[base+j]
			c0, c1 := bk.ctrl[0].Load(), bk.ctrl[1].Load()
			for lane := range bucketLanes {
				var tag uint64
				if lane < 8 {
					tag = c0 >> (8 * lane) & 0xff
				} else {
					tag = c1 >> (8 * (lane - 8)) & 0xff
				}
				if tag == 0 {
					continue
				}
				e := bk.ids[lane].Load()
				id, d := e>>1, e&1
				if !t.Live(id) {
					tb.Fatalf("shard %d bucket %d lane %d: entry for dead session %d", s, j, lane, id)
				}
				entries[e]++
				k, _ := t.Key(id, Dir(d))
				w0, w1 := k.Words()
				h := hash2(t.seed, w0, w1)
				hb, hi := t.home(h)
				if hb != base || tagOf(h) != tag {
					tb.Fatalf("shard %d bucket %d lane %d: session %d dir %d belongs to base %d tag %#x", s, j, lane, id, d, hb, tagOf(h))
				}
				for k := hi; k != j; k = t.next(k) {
					want[k]++
				}
			}
		}
		for j := range t.nbPer {
			if got := t.buckets[base+j].ctrl[1].Load() >> 32; got != want[j] {
				tb.Fatalf("shard %d bucket %d: overflow count %d, want %d", s, j, got, want[j])
			}
		}
	}
	live := 0
	for id := range t.hots {
		if !t.Live(uint32(id)) {
			continue
		}
		live++
		for d := range uint32(2) {
			if n := entries[uint32(id)<<1|d]; n != 1 {
				tb.Fatalf("session %d dir %d has %d index entries", id, d, n)
			}
		}
	}
	if len(entries) != 2*live {
		tb.Fatalf("%d index entries for %d live sessions", len(entries), live)
	}
	if st := t.Stats(); st.Sessions != live {
		tb.Fatalf("Stats.Sessions %d, live %d", st.Sessions, live)
	}
}
