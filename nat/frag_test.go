package nat

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// fragRig is one engine over a small table with an outbound rule for
// 10.77.0.0/24 behind 198.18.0.204.
type fragRig struct {
	t   *testing.T
	e   *Engine
	now flowtable.Time
}

func newFragRig(t *testing.T) *fragRig {
	t.Helper()
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Rules{Outbound: []Outbound{{
		Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
		Pool:   []netip.Addr{netip.MustParseAddr("198.18.0.204")},
		PortLo: 1024, PortHi: 65535, EndpointIndependent: true,
	}}}, table, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &fragRig{t: t, e: n.Engine(0), now: 100}
}

// process runs one frame (a copy) through the engine from inside.
func (r *fragRig) process(frame []byte) Verdict {
	r.t.Helper()
	f := append([]byte(nil), frame...)
	var p packet.Parsed
	if res := packet.Parse(f, &p); res != packet.OK {
		r.t.Fatalf("parse: %v", res)
	}
	var res Result
	r.e.Process(f, &p, Inside, r.now, &res)
	return res.Verdict
}

// datagram returns the fragments of a UDP datagram of n payload bytes
// with identification id, split into pieces of size bytes.
func datagram(t *testing.T, sport uint16, id uint16, n, size int) [][]byte {
	t.Helper()
	payload := bytes.Repeat([]byte{byte(id)}, n)
	src := netip.AddrPortFrom(netip.MustParseAddr("10.77.0.5"), sport).String()
	return testutil.Fragment(t, testutil.WithIPID(t, testutil.UDP(t, src, "198.18.0.1:7777", payload), id), size)
}

func TestFragmentEntryFreedWhenComplete(t *testing.T) {
	r := newFragRig(t)
	// Many more datagrams than entries, in order: each is freed as its
	// last fragment passes, so none is ever evicted.
	for i := range 3 * FragDatagrams {
		for _, f := range datagram(t, 5000, uint16(i), 2972, 1480) {
			if v := r.process(f); v != Forward {
				t.Fatalf("datagram %d: verdict %v", i, v)
			}
		}
	}
	st := r.e.FragStats()
	if st.Datagrams != 3*FragDatagrams || st.Completed != 3*FragDatagrams || st.Evicted != 0 || st.Untracked != 0 {
		t.Fatalf("stats %+v", st)
	}
	if r.e.frags.oldest != 0 {
		t.Fatal("entries left after every datagram completed")
	}
}

func TestFragmentOutOfOrderAndHeld(t *testing.T) {
	r := newFragRig(t)
	frags := datagram(t, 5001, 7, 4000, 800) // 6 fragments
	// The last two arrive before the first: held.
	for _, f := range [][]byte{frags[5], frags[3]} {
		if v := r.process(f); v != Hold {
			t.Fatalf("early fragment: verdict %v, want hold", v)
		}
	}
	if keys, all := r.e.Released(); len(keys) != 0 || all {
		t.Fatal("released before the first fragment")
	}
	if v := r.process(frags[0]); v != Forward {
		t.Fatalf("first fragment: %v", v)
	}
	keys, all := r.e.Released()
	if len(keys) != 1 || all || keys[0].ID != 7 {
		t.Fatalf("released %v %v, want datagram 7", keys, all)
	}
	// The pipeline retries the held ones; the rest arrive out of order.
	for _, i := range []int{5, 3, 2, 4, 1} {
		if v := r.process(frags[i]); v != Forward {
			t.Fatalf("fragment %d: %v", i, v)
		}
	}
	if st := r.e.FragStats(); st.Completed != 1 || st.Untracked != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFragmentOverlapFallsBackToTimeout(t *testing.T) {
	r := newFragRig(t)
	frags := datagram(t, 5002, 9, 3000, 1000)
	for _, f := range [][]byte{frags[0], frags[1], frags[1], frags[2]} { // a duplicate
		if v := r.process(f); v != Forward {
			t.Fatalf("verdict %v", v)
		}
	}
	st := r.e.FragStats()
	if st.Completed != 0 || st.Untracked != 1 {
		t.Fatalf("stats %+v, want one untracked", st)
	}
	// It stays until its timeout, then expires.
	r.now += FragTimeout + 1
	r.e.frags.expire(r.now)
	if st := r.e.FragStats(); st.TimedOut != 1 || r.e.frags.oldest != 0 {
		t.Fatalf("stats %+v after the timeout", st)
	}
}

func TestFragmentOldestEvicted(t *testing.T) {
	r := newFragRig(t)
	// FragDatagrams+1 datagrams with their last fragment lost: the first
	// is evicted by the last.
	var firsts [][]byte
	for i := range FragDatagrams + 1 {
		fr := datagram(t, 5003, uint16(i), 2000, 1000)
		firsts = append(firsts, fr[1])
		if v := r.process(fr[0]); v != Forward {
			t.Fatalf("verdict %v", v)
		}
	}
	if st := r.e.FragStats(); st.Evicted != 1 {
		t.Fatalf("stats %+v, want one eviction", st)
	}
	// Datagram 1's follower passes; datagram 0's finds nothing and is
	// held (its pending entry evicts the next oldest, datagram 2).
	if v := r.process(firsts[1]); v != Forward {
		t.Fatalf("datagram 1's fragment: %v", v)
	}
	if v := r.process(firsts[0]); v != Hold {
		t.Fatalf("evicted datagram's fragment: %v, want hold", v)
	}
}

func TestFragmentExtentsRandom(t *testing.T) {
	// received against a slow oracle: a bitmap of bytes.
	rng := rand.New(rand.NewPCG(3, 3))
	for c := range 20000 {
		total := uint32(8 * (1 + rng.IntN(40)))
		var e fragEntry
		seen := make([]bool, total)
		overlap, pieces, done, stopped := false, 0, false, false
		for range 1 + rng.IntN(10) {
			lo := uint32(8 * rng.IntN(int(total/8)))
			hi := min(total, lo+uint32(8*(1+rng.IntN(6))))
			last := hi == total
			for b := lo; b < hi; b++ {
				overlap = overlap || seen[b]
				seen[b] = true
			}
			complete, stop := e.received(lo, hi, last)
			stopped = stopped || stop
			if complete {
				done = true
				break
			}
		}
		all := true
		for _, s := range seen {
			all = all && s
		}
		pieces = 0
		for b := range seen {
			if seen[b] && (b == 0 || !seen[b-1]) {
				pieces++
			}
		}
		if done && (!all || overlap) {
			t.Fatalf("case %d: complete with coverage %v overlap %v", c, all, overlap)
		}
		if overlap && !stopped && !done {
			t.Fatalf("case %d: overlap not noticed", c)
		}
		if !done && all && !overlap && !stopped && e.total != 0 {
			t.Fatalf("case %d: every byte passed once and the end is known, but not complete (%d pieces seen)", c, pieces)
		}
	}
}

func TestFragmentPathAllocatesNothing(t *testing.T) {
	r := newFragRig(t)
	frags := datagram(t, 5004, 1, 2900, 1480)
	bufs := make([][]byte, len(frags))
	ps := make([]packet.Parsed, len(frags))
	id := uint16(0)
	allocs := testing.AllocsPerRun(200, func() {
		id++
		for i, f := range frags {
			bufs[i] = append(bufs[i][:0], f...)
			packet.Parse(bufs[i], &ps[i])
			ps[i].Frag.ID = id // a new datagram each run
			var res Result
			r.e.Process(bufs[i], &ps[i], Inside, r.now, &res)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per datagram, want 0", allocs)
	}
}

// TestFragmentedEchoToPublicAnswered: an echo request to the NAT's public
// address in fragments (ping -s 3000), its second fragment first, is
// answered in as many fragments, which gopacket's reassembly makes into
// one echo reply: addresses swapped, type 0, identifier, sequence and
// data kept, every checksum right. Nothing stays tracked.
func TestFragmentedEchoToPublicAnswered(t *testing.T) {
	r := newFragRig(t)
	data := bytes.Repeat([]byte("fastnat big ping "), 3000/17)
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 61, Id: 0x4242, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 204}}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 77, Seq: 3}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: testutil.MACA, DstMAC: testutil.MACB, EthernetType: layers.EthernetTypeIPv4},
		ip, ic, gopacket.Payload(data)); err != nil {
		t.Fatal(err)
	}
	frags := testutil.Fragment(t, buf.Bytes(), 1480)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	defrag := ip4defrag.NewIPv4Defragmenter()
	var reply *layers.IPv4
	d0 := 0
	for _, i := range []int{1, 0, 1, 2} { // the second is held, then retried
		f := append([]byte(nil), frags[i]...)
		var p packet.Parsed
		if res := packet.Parse(f, &p); res != packet.OK {
			t.Fatalf("parse: %v", res)
		}
		var res Result
		r.e.Process(f, &p, Outside, r.now, &res)
		if res.Verdict == Hold && reply == nil && d0 == 0 {
			d0++ // the early second fragment; the pipeline retries it once its first passed
			continue
		}
		if res.Verdict != Forward || res.Out != Outside {
			t.Fatalf("fragment %d: verdict %v to %v, want forward back outside", i, res.Verdict, res.Out)
		}
		d := testutil.Decode(t, f[:p.End])
		if d.IP.SrcIP.String() != "198.18.0.204" || d.IP.DstIP.String() != "198.18.0.1" || d.IP.Id != 0x4242 {
			t.Fatalf("fragment %d answered %v -> %v id %#x", i, d.IP.SrcIP, d.IP.DstIP, d.IP.Id)
		}
		if i == 0 {
			if keys, _ := r.e.Released(); len(keys) != 1 || keys[0].ID != 0x4242 {
				t.Fatalf("released %v, want the held datagram", keys)
			}
		}
		whole, err := defrag.DefragIPv4(d.IP)
		if err != nil {
			t.Fatal(err)
		}
		if whole != nil {
			reply = whole
		}
	}
	if reply == nil {
		t.Fatal("the answer did not reassemble")
	}
	pk := gopacket.NewPacket(reply.Payload, layers.LayerTypeICMPv4, gopacket.Default)
	got, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok {
		t.Fatal("no ICMP in the reassembled answer")
	}
	if got.TypeCode.Type() != layers.ICMPv4TypeEchoReply || got.Id != 77 || got.Seq != 3 || !bytes.Equal(got.Payload, data) {
		t.Fatalf("answer: type %v id %d seq %d, %d bytes of data", got.TypeCode, got.Id, got.Seq, len(got.Payload))
	}
	var sum uint32 // RFC 1071 over the whole message, checksum included: all ones
	for i := 0; i+1 < len(reply.Payload); i += 2 {
		sum += uint32(reply.Payload[i])<<8 | uint32(reply.Payload[i+1])
	}
	if len(reply.Payload)%2 == 1 {
		sum += uint32(reply.Payload[len(reply.Payload)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("the reassembled reply's ICMP checksum is wrong (sum %#x)", sum)
	}

	if r.e.frags.oldest != 0 {
		t.Fatal("the answered datagram is still tracked")
	}
}
