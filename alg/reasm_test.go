package alg

import (
	"encoding/binary"
	"slices"
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// fragments builds a segment of direction dir as the NAT hands it to the
// ALG and cuts it into IPv4 fragments of size data bytes (the last
// shorter), each in a frame of capacity frameSize.
func (h *harness) fragments(dir flowtable.Dir, seq, ack uint32, payload string, size int) [][]byte {
	h.tb.Helper()
	var out [][]byte
	for _, g := range testutil.Fragment(h.tb, h.frame(dir, testutil.ACK|testutil.PSH, seq, ack, []byte(payload)), size) {
		b := make([]byte, len(g), frameSize)
		copy(b, g)
		out = append(out, b)
	}
	return out
}

// TestFragmentedSegmentsInspected sends a PORT command and a 227 reply
// in two and three fragments, in order, out of order and with the first
// fragment last: the ALG keeps each fragment until the segment is whole,
// then passes it on rewritten, reassembled, with its lengths and
// checksums right (as gopacket recomputes them) and the largest
// fragment's size for the worker to refragment to; the connection's next
// segments still pass, shifted (no hang).
func TestFragmentedSegmentsInspected(t *testing.T) {
	pp := pubPort(195<<8 | 80)
	cases := []struct {
		name     string
		sc       func(testing.TB) scenario
		dir      flowtable.Dir
		in, want string
		sizes    []int
	}{
		{"PORT", clientInside, flowtable.Orig, "TYPE I\r\nPORT 10,0,0,5,195,80\r\n",
			"TYPE I\r\nPORT " + hostPort(testutil.Addr(t, "198.18.0.204"), pp) + "\r\n", []int{32, 24}},
		{"227", serverInside, flowtable.Reply, "227 Entering Passive Mode (10,0,0,5,195,80).\r\n",
			"227 Entering Passive Mode (" + hostPort(testutil.Addr(t, "198.18.0.204"), pp) + ").\r\n", []int{48, 24}},
	}
	orders := map[string]func(n int) []int{
		"in order":       func(n int) []int { return seqOrder(n) },
		"reversed":       func(n int) []int { o := seqOrder(n); slices.Reverse(o); return o },
		"first last":     func(n int) []int { return append(seqOrder(n)[1:], 0) },
		"last first":     func(n int) []int { return append([]int{n - 1}, seqOrder(n-1)...) },
		"middle first":   func(n int) []int { return append([]int{1, 0}, seqOrder(n)[2:]...) },
		"duplicate kept": func(n int) []int { return append([]int{1, 1}, append([]int{0}, seqOrder(n)[2:]...)...) },
	}
	for _, c := range cases {
		for _, size := range c.sizes {
			for oname, order := range orders {
				t.Run(c.name+"/"+oname+"/"+strconv.Itoa(size), func(t *testing.T) {
					h := newHarness(t, c.sc(t), Config{})
					h.handshake(isnC, isnS)
					d := c.dir
					isn, peerISN := isnOf(d), isnOf(1-d)
					frags := h.fragments(d, isn+1, peerISN+1, c.in, size)
					if len(frags) < 2 {
						t.Fatalf("%d fragments", len(frags))
					}
					largest := 0
					for _, g := range frags {
						largest = max(largest, int(binary.BigEndian.Uint16(g[14+2:])))
					}
					seq := order(len(frags))
					var it Item
					for k, i := range seq {
						fr := make([]byte, len(frags[i]), frameSize)
						copy(fr, frags[i])
						it = h.run(d, fr)
						if k < len(seq)-1 && it.Verdict != Reassembling {
							t.Fatalf("fragment %d (%d of %v): verdict %v, want %v", i, k, seq, it.Verdict, Reassembling)
						}
					}
					if it.Verdict != Forward {
						t.Fatalf("last fragment: verdict %v", it.Verdict)
					}
					dec := testutil.Decode(t, it.Buf) // checksums recomputed by gopacket
					if dec.IP.Flags&layers.IPv4MoreFragments != 0 || dec.IP.FragOffset != 0 || dec.IP.Id != 0x1234 {
						t.Errorf("reassembled header: flags %v offset %d id %#x", dec.IP.Flags, dec.IP.FragOffset, dec.IP.Id)
					}
					if want := 20 + 20 + len(c.want); int(dec.IP.Length) != want || len(it.Buf) != 14+want {
						t.Errorf("IPv4 length %d, frame %d; want %d", dec.IP.Length, len(it.Buf), want)
					}
					s := decodeSeg(t, it.Buf)
					if s.payload != c.want || s.seq != isn+1 || s.ack != peerISN+1 {
						t.Errorf("segment %q seq %d ack %d, want %q %d %d", s.payload, s.seq, s.ack, c.want, isn+1, peerISN+1)
					}
					if int(it.FragSize) != largest {
						t.Errorf("FragSize %d, want the largest fragment's %d", it.FragSize, largest)
					}
					if len(h.nat.calls) != 1 {
						t.Errorf("%d expectations, want 1", len(h.nat.calls))
					}
					if st := h.ftp.Stats().Total; st.Reassembled != 1 || st.FragDropped != 0 || h.ftp.reasm.live != 0 {
						t.Errorf("reassembled %d dropped %d live %d", st.Reassembled, st.FragDropped, h.ftp.reasm.live)
					}
					// The stream went on: the next segment passes, shifted,
					// and the receiver's acknowledgement maps back.
					delta := uint32(len(c.want) - len(c.in))
					next := isn + 1 + uint32(len(c.in))
					s, v := h.process(d, h.frame(d, testutil.ACK|testutil.PSH, next, peerISN+1, []byte("NOOP\r\n")))
					if v != Forward || s.seq != next+delta {
						t.Fatalf("next segment: %v seq %d, want forward %d", v, s.seq, next+delta)
					}
					s, _ = h.process(1-d, h.frame(1-d, testutil.ACK, peerISN+1, next+delta+6, nil))
					if s.ack != next+6 {
						t.Errorf("ack %d, want %d", s.ack, next+6)
					}
				})
			}
		}
	}
}

func seqOrder(n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	return o
}

// TestFragmentedDatagramDropped: a datagram that cannot be reassembled —
// overlapping fragments, a TCP checksum that fails once whole, data past
// what a frame holds, incomplete at the timeout, evicted — is dropped and
// counted, never passed on; the connection carries on when the segment
// comes again whole.
func TestFragmentedDatagramDropped(t *testing.T) {
	const line = "PORT 10,0,0,5,195,80\r\n"
	setup := func(t *testing.T) (*harness, [][]byte) {
		h := newHarness(t, clientInside(t), Config{})
		h.handshake(isnC, isnS)
		return h, h.fragments(flowtable.Orig, isnC+1, isnS+1, line, 24)
	}
	// after checks that the datagram was dropped and counted once, and
	// that the segment, retransmitted whole, passes rewritten.
	after := func(t *testing.T, h *harness, now flowtable.Time) {
		t.Helper()
		if st := h.ftp.Stats().Total; st.FragDropped != 1 || st.Reassembled != 0 {
			t.Errorf("dropped %d reassembled %d, want 1 and 0", st.FragDropped, st.Reassembled)
		}
		if len(h.nat.calls) != 0 {
			t.Errorf("%d expectations from a dropped datagram", len(h.nat.calls))
		}
		n, v := h.processAt(h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(line)), h.id, flowtable.Orig, now)
		if v != Forward || n <= 14+40+len(line) || len(h.nat.calls) != 1 {
			t.Errorf("retransmission whole: %v, %d bytes, %d expectations", v, n, len(h.nat.calls))
		}
	}
	t.Run("overlap", func(t *testing.T) {
		h, frags := setup(t)
		if it := h.run(flowtable.Orig, frags[0]); it.Verdict != Reassembling {
			t.Fatalf("first: %v", it.Verdict)
		}
		// A fragment from byte 8 of 24: it overlaps the first in part.
		ov := overlapping(t, frags[1], 8)
		if it := h.run(flowtable.Orig, ov); it.Verdict != DropFragment {
			t.Fatalf("overlap: %v, want %v", it.Verdict, DropFragment)
		}
		for _, g := range frags[1:] {
			if it := h.run(flowtable.Orig, g); it.Verdict != DropFragment {
				t.Fatalf("rest of a dropped datagram: %v", it.Verdict)
			}
		}
		after(t, h, 100)
	})
	// The second fragment changed: a data byte flipped (outside any
	// header checksum, so the TCP checksum fails once whole), or moved
	// past what a frame holds.
	for _, c := range []struct {
		name   string
		second func(g []byte) []byte
	}{
		{"bad checksum", func(g []byte) []byte {
			b := make([]byte, len(g), frameSize)
			copy(b, g)
			b[14+20] ^= 0x20
			return b
		}},
		{"too big", func(g []byte) []byte { return overlapping(t, g, maxFrame) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, frags := setup(t)
			h.run(flowtable.Orig, frags[0])
			if it := h.run(flowtable.Orig, c.second(frags[1])); it.Verdict != DropFragment {
				t.Fatalf("second fragment: %v, want %v", it.Verdict, DropFragment)
			}
			after(t, h, 100)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		h, frags := setup(t)
		for _, g := range frags[:len(frags)-1] {
			if _, v := h.processAt(g, h.id, flowtable.Orig, 100); v != Reassembling {
				t.Fatalf("fragment: %v", v)
			}
		}
		// Any frame after the timeout frees it.
		if _, v := h.processAt(h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, nil), h.id, flowtable.Reply, 100+reasmTimeout+1); v != Forward {
			t.Fatalf("ack: %v", v)
		}
		if h.ftp.reasm.live != 0 {
			t.Errorf("%d datagrams still in reassembly", h.ftp.reasm.live)
		}
		// The lost fragment, late, starts a datagram of its own that
		// never completes.
		if _, v := h.processAt(frags[len(frags)-1], h.id, flowtable.Orig, 100+reasmTimeout+1); v != Reassembling {
			t.Fatalf("late fragment: %v", v)
		}
		after(t, h, 100+reasmTimeout+1)
	})
	t.Run("evicted", func(t *testing.T) {
		h, _ := setup(t)
		for id := range reasmSlots + 1 {
			fr := testutil.WithIPID(t, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(line)), uint16(id))
			g := testutil.Fragment(t, fr, 24)[0]
			b := make([]byte, len(g), frameSize)
			copy(b, g)
			if _, v := h.processAt(b, h.id, flowtable.Orig, flowtable.Time(100+id)); v != Reassembling {
				t.Fatalf("datagram %d: %v", id, v)
			}
		}
		if h.ftp.reasm.live != reasmSlots {
			t.Errorf("%d datagrams in reassembly, want %d", h.ftp.reasm.live, reasmSlots)
		}
		after(t, h, 100+reasmSlots)
	})
}

// overlapping returns a copy of fragment fr moved to data offset off
// (More Fragments kept), its header checksum fixed.
func overlapping(t *testing.T, fr []byte, off int) []byte {
	t.Helper()
	p := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
	ip := *p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ip.FragOffset = uint16(off / 8)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true},
		p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet), &ip, gopacket.Payload(ip.Payload)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(buf.Bytes()), frameSize)
	copy(b, buf.Bytes())
	return b
}

// TestReassemblyAllocs: reassembling a fragmented segment allocates
// nothing.
func TestReassemblyAllocs(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	const runs = 100
	seg := "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	sets := make([][][]byte, runs+2)
	for i := range sets {
		sets[i] = h.fragments(flowtable.Orig, isnC+1+uint32(i*len(seg)), isnS+1, seg, 24)
	}
	acks := make([][]byte, len(sets))
	for i := range acks {
		acks[i] = h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1+uint32((i+1)*len(seg)), nil)
	}
	buf := make([]byte, frameSize)
	i := 0
	run := func() {
		var v Verdict
		for _, g := range sets[i] {
			b := buf[:len(g)]
			copy(b, g)
			_, v = h.processAt(b, h.id, flowtable.Orig, 1)
		}
		if v != Forward {
			t.Fatal(v)
		}
		if _, v := h.processAt(acks[i], h.id, flowtable.Reply, 1); v != Forward {
			t.Fatal(v)
		}
		i++
	}
	run()
	if a := testing.AllocsPerRun(runs, run); a != 0 {
		t.Errorf("%v allocations per reassembled segment", a)
	}
}

// FuzzFragments: fragments of a control segment cut anywhere, in any
// order, repeated or overlapping, never crash the ALG, never pass on a
// fragment (only Reassembling, DropFragment or a whole segment), and a
// whole segment is the one sent, rewritten, its checksums right: bytes
// from a fragment moved over another's place fail the TCP checksum.
func FuzzFragments(f *testing.F) {
	f.Add([]byte{3, 1, 0, 2}, uint8(0))
	f.Add([]byte{0, 0, 1, 2}, uint8(1))
	f.Add([]byte{2, 1, 0}, uint8(2))
	f.Add([]byte{1, 0x81, 0, 2}, uint8(0))
	f.Add([]byte{0x80, 1, 0, 2}, uint8(0))
	f.Fuzz(func(t *testing.T, order []byte, unit uint8) {
		// The first fragment holds the whole TCP header: the worker
		// drops one that does not before the ALG sees it.
		size := 24 + 8*(int(unit)%6)
		h := newHarness(t, clientInside(t), Config{})
		h.handshake(isnC, isnS)
		in := "TYPE I\r\nPORT 10,0,0,5,195,80\r\n"
		want := "TYPE I\r\nPORT " + hostPort(testutil.Addr(t, "198.18.0.204"), pubPort(195<<8|80)) + "\r\n"
		frags := h.fragments(flowtable.Orig, isnC+1, isnS+1, in, size)
		for _, o := range order {
			g := frags[int(o&0x7f)%len(frags)]
			if o&0x80 != 0 {
				g = overlapping(t, g, int(g[14+7])*8+8) // moved one unit on
			}
			fr := make([]byte, len(g), frameSize)
			copy(fr, g)
			it := h.run(flowtable.Orig, fr)
			switch it.Verdict {
			case Reassembling, DropFragment:
			case Forward:
				// Whole, and the segment sent (again, rewritten the same
				// way, when its fragments came again after it was whole).
				if s := decodeSeg(t, it.Buf); s.payload != want || s.seq != isnC+1 {
					t.Fatalf("passed on %q seq %d, want %q %d", s.payload, s.seq, want, isnC+1)
				}
			default:
				t.Fatalf("verdict %v", it.Verdict)
			}
		}
	})
}
