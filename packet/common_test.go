package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestTranslateCommonMatchesTranslate holds the established-flow path's
// translation (ParseCommon, then TranslateCommonIPv4 and the transport's
// part) to Parsed.Translate over random frames: every frame ParseCommon
// accepts comes out byte for byte as Translate leaves it, with the same
// random tuple and deltas, and ParseCommon accepts a frame exactly when
// Parse's result is OK with the common shape (no tag, 20-byte header, not
// a fragment, TCP or UDP), with the same tuple — a quarter of the frames
// with a bit of the IPv4 header flipped.
func TestTranslateCommonMatchesTranslate(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 4))
	took := 0
	for i := range 10000 {
		frame := randomSpec(r).frame(t)
		if i%4 == 0 && len(frame) > EthernetLen+IPv4MinLen {
			// A flipped bit in the IPv4 header: the checksum (or a
			// length) must catch it.
			frame[EthernetLen+r.IntN(IPv4MinLen)] ^= 1 << r.IntN(8)
		}
		var p Parsed
		res := parse(frame, &p) // the general decoder: Parse would ask ParseCommon first
		var tu Tuple
		ok := ParseCommon(frame, &tu)
		if common := commonShape(res, &p); ok != common {
			t.Fatalf("case %d: ParseCommon %v, Parse %v %+v", i, ok, res, p)
		}
		if !ok {
			continue
		}
		var q Parsed
		q.SetCommon(frame, tu)
		if q != p {
			t.Fatalf("case %d: SetCommon %+v, Parse %+v", i, q, p)
		}
		if CommonIPv4((*CommonHeaders)(frame)).TTL() < 2 {
			continue
		}
		x := Tuple{SrcAddr: r.Uint32(), DstAddr: r.Uint32(), SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Proto: tu.Proto}
		d3 := Delta(0).Add32(tu.SrcAddr, x.SrcAddr).Add32(tu.DstAddr, x.DstAddr)
		d4 := d3.Add16(tu.SrcPort, x.SrcPort).Add16(tu.DstPort, x.DstPort)
		addrs, ports := uint64(x.SrcAddr)<<32|uint64(x.DstAddr), uint32(x.SrcPort)<<16|uint32(x.DstPort)
		want := bytes.Clone(frame)
		p.Translate(want, addrs, ports, d3, d4)
		TranslateCommonIPv4((*CommonHeaders)(frame), addrs, d3)
		if tu.Proto == ProtoUDP {
			TranslateCommonUDP((*CommonHeaders)(frame), ports, d4)
		} else {
			TranslateCommonTCP((*CommonTCPHeaders)(frame), ports, d4)
		}
		if !bytes.Equal(frame, want) {
			t.Fatalf("case %d:\ncommon    % x\nTranslate % x", i, frame, want)
		}
		checkChecksums(t, frame)
		took++
	}
	if took < 200 {
		t.Errorf("only %d frames took the common path", took)
	}
}

// commonShape reports whether the general decoder's result res and p
// are of the shape ParseCommon takes.
func commonShape(res Result, p *Parsed) bool {
	return res == OK && !p.HasVLAN && p.L4-p.L3 == IPv4MinLen && !p.Frag.IsFragment() &&
		(p.Tuple.Proto == ProtoUDP || p.Tuple.Proto == ProtoTCP)
}

// TestParseCommonChecksum holds ParseCommon's header checksum test (a
// divisibility test of the 64-bit sum) to the general decoder's (folded
// to 16 bits) for every value of the checksum field, and of another
// header word, of random common frames: exactly one value of each is
// right, except that 0x0000 and 0xffff are the same in one's complement
// arithmetic.
func TestParseCommonChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 31))
	for i := 0; i < 8; {
		frame := randomSpec(r).frame(t)
		var p Parsed
		var tu Tuple
		if !commonShape(parse(frame, &p), &p) {
			continue
		}
		i++
		for _, off := range []int{ipChecksum, ipID} {
			word := frame[EthernetLen+off:]
			accepted := 0
			for v := range 1 << 16 {
				binary.BigEndian.PutUint16(word, uint16(v))
				res := parse(frame, &p)
				ok := ParseCommon(frame, &tu)
				if want := res == OK; ok != want {
					t.Fatalf("frame %d, word at %d = %#04x: ParseCommon %v, Parse %v", i, off, v, ok, res)
				}
				if ok {
					accepted++
				}
			}
			if accepted < 1 || accepted > 2 {
				t.Errorf("frame %d, word at %d: %d values accepted", i, off, accepted)
			}
		}
	}
}

// TestParseCommonBurst holds ParseCommonBurst to the general decoder over
// bursts of random frames, a third of them with a bit of the IPv4
// header flipped: common[i] is whether frame i has the common shape, the
// tuples of those frames are the keys, in order, and the byte count is
// the frames' total length.
func TestParseCommonBurst(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 17))
	for round := range 200 {
		frames := make([]Frame, 1+r.IntN(64))
		var want []Tuple
		var bytes uint64
		for i := range frames {
			frame := randomSpec(r).frame(t)
			if r.IntN(3) == 0 && len(frame) > EthernetLen+IPv4MinLen {
				frame[EthernetLen+r.IntN(IPv4MinLen)] ^= 1 << r.IntN(8)
			}
			frames[i] = Frame{Buf: frame, Handle: uint64(i)}
			bytes += uint64(len(frame))
			var p Parsed
			if commonShape(parse(frame, &p), &p) {
				want = append(want, p.Tuple)
			}
		}
		keys, common := make([]Tuple, len(frames)), make([]bool, len(frames))
		n, got := ParseCommonBurst(frames, keys, common)
		if n != len(want) || got != bytes {
			t.Fatalf("round %d: %d common frames, %d bytes; want %d, %d", round, n, got, len(want), bytes)
		}
		for i, k := range want {
			if keys[i] != k {
				t.Fatalf("round %d: key %d = %+v, want %+v", round, i, keys[i], k)
			}
		}
		for i, f := range frames {
			var p Parsed
			if c := commonShape(parse(f.Buf, &p), &p); common[i] != c {
				t.Fatalf("round %d: frame %d common %v, want %v", round, i, common[i], c)
			}
		}
	}
}

func TestParseCommonAllocs(t *testing.T) {
	frame := udpSpec(40000, 53, make([]byte, 18)).frame(t)
	var tu Tuple
	if n := testing.AllocsPerRun(100, func() {
		ParseCommon(frame, &tu)
		TranslateCommonIPv4((*CommonHeaders)(frame), 0x0102030405060708, 0)
		TranslateCommonUDP((*CommonHeaders)(frame), 0x01020304, 0)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestTTLDelta(t *testing.T) {
	if want := Delta(0).Add16(0x0100, 0x0000); ttlDelta != want {
		t.Errorf("ttlDelta %#x, want %#x", ttlDelta, want)
	}
}

// TestCommonTCPPlainOptions: the fast path's option check takes a header
// without options or with NOP-NOP-Timestamps alone, and nothing else —
// SACK blocks with or without timestamps, the Timestamps option in
// another layout, an MSS option — even in a frame that ends with its
// header.
func TestCommonTCPPlainOptions(t *testing.T) {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	sack := []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	for _, c := range []struct {
		name string
		opts []byte
		want bool
	}{
		{"none", nil, true},
		{"NOP NOP Timestamps", ts, true},
		{"NOP NOP SACK", sack, false},
		{"Timestamps and SACK", append(append([]byte(nil), ts...), sack...), false},
		{"Timestamps NOP NOP", []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1}, false},
		{"MSS", []byte{2, 4, 5, 180}, false},
	} {
		frame := make([]byte, CommonL4+TCPMinLen+len(c.opts))
		copy(frame[CommonL4+TCPMinLen:], c.opts)
		if got := CommonTCPPlainOptions(frame, TCPMinLen+len(c.opts)); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
