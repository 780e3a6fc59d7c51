package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// naiveSum is the RFC 1071 definition, word by word: the oracle for Sum and
// the baseline of BenchmarkChecksum.
func naiveSum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// naiveChecksum is the checksum a field should hold: ^naiveSum.
func naiveChecksum(b []byte, initial uint32) uint16 { return ^naiveSum(b, initial) }

func TestSumMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		n := i % 300
		if i >= 1000 {
			n = r.IntN(9000)
		}
		b := randomBytes(r, n)
		if i%7 == 0 { // all-ones data drives every carry path
			for j := range b {
				b[j] = 0xff
			}
		}
		init := r.Uint32()
		if i%5 == 0 {
			init = 0
		}
		if got, want := Fold(Sum(b, init)), naiveSum(b, init); got != want {
			t.Fatalf("len %d init %#x: Fold(Sum) = %#04x, naive %#04x", n, init, got, want)
		}
		if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
			t.Fatalf("len %d: Checksum = %#04x, naive %#04x", n, got, want)
		}
		// Partial sums chain at an even split.
		k := r.IntN(n+1) &^ 1
		if got, want := Fold(Sum(b[k:], Sum(b[:k], init))), naiveSum(b, init); got != want {
			t.Fatalf("len %d split %d: chained %#04x, naive %#04x", n, k, got, want)
		}
	}
}

func TestFold(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   uint32
		want uint16
	}{
		{"zero", 0, 0},
		{"one", 1, 1},
		{"ffff stays negative zero", 0xffff, 0xffff},
		{"carry", 0x10000, 1},
		{"multiple of ffff", 0x1fffe, 0xffff},
		{"max", 0xffffffff, 0xffff},
		{"two carries", 0xfffe0002, 0x0001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fold(tc.in); got != tc.want {
				t.Errorf("Fold(%#x) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
}

// TestFoldMatchesLoop holds Fold to the definition — add the carries
// back until none is left — over every sum whose high half is small (the
// edge of the second fold) and a million random ones.
func TestFoldMatchesLoop(t *testing.T) {
	slow := func(s uint32) uint16 {
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
		return uint16(s)
	}
	check := func(s uint32) {
		if got, want := Fold(s), slow(s); got != want {
			t.Fatalf("Fold(%#x) = %#04x, want %#04x", s, got, want)
		}
	}
	for s := range uint32(0x40000) {
		check(s)
		check(^s)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 1_000_000 {
		check(r.Uint32())
	}
}

// TestChecksumRFC1071Example checks the worked example of RFC 1071 section 3.
func TestChecksumRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != ^uint16(0xddf2) {
		t.Fatalf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		src, dst, proto, n := r.Uint32(), r.Uint32(), uint8(r.Uint32()), uint16(r.Uint32())
		var ph [12]byte
		binary.BigEndian.PutUint32(ph[0:], src)
		binary.BigEndian.PutUint32(ph[4:], dst)
		ph[9] = proto
		binary.BigEndian.PutUint16(ph[10:], n)
		if got, want := Fold(PseudoHeaderSum(src, dst, proto, n)), naiveSum(ph[:], 0); got != want {
			t.Fatalf("pseudo-header sum %#04x, naive %#04x", got, want)
		}
	}
}

// randomChecksummed returns random data of even length with a correct
// checksum at offset 0 (as in a header), computed by the oracle.
func randomChecksummed(r *rand.Rand) []byte {
	b := randomBytes(r, 6+2*r.IntN(40))
	b[0], b[1] = 0, 0
	binary.BigEndian.PutUint16(b, naiveChecksum(b, 0))
	return b
}

// fullChecksum recomputes the checksum at offset 0 with the oracle.
func fullChecksum(b []byte) uint16 {
	c := append([]byte(nil), b...)
	c[0], c[1] = 0, 0
	return naiveChecksum(c, 0)
}

func TestUpdateChecksum16MatchesFull(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 1000 {
		b := randomChecksummed(r)
		off := 2 + 2*r.IntN(len(b)/2-1)
		old := binary.BigEndian.Uint16(b[off:])
		nw := uint16(r.Uint32())
		switch i % 10 {
		case 0:
			nw = old
		case 1:
			nw = 0
		case 2:
			nw = 0xffff
		}
		binary.BigEndian.PutUint16(b[off:], nw)
		got := UpdateChecksum16(binary.BigEndian.Uint16(b), old, nw)
		if want := fullChecksum(b); got != want {
			t.Fatalf("iteration %d: %#04x -> %#04x: incremental %#04x, full %#04x", i, old, nw, got, want)
		}
	}
}

func TestUpdateChecksum32MatchesFull(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 1000 {
		b := randomChecksummed(r)
		off := 2 + 2*r.IntN(len(b)/2-2)
		old := binary.BigEndian.Uint32(b[off:])
		nw := r.Uint32()
		if i%10 == 0 {
			nw = old
		}
		binary.BigEndian.PutUint32(b[off:], nw)
		got := UpdateChecksum32(binary.BigEndian.Uint16(b), old, nw)
		if want := fullChecksum(b); got != want {
			t.Fatalf("iteration %d: incremental %#04x, full %#04x", i, got, want)
		}
	}
}

// TestDeltaMatchesFull precomputes a Delta for a random set of 16- and
// 32-bit changes, as nat does per session, and checks that applying it
// equals a full recomputation.
func TestDeltaMatchesFull(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 1000 {
		b := randomChecksummed(r)
		var d, d16, d32 Delta
		for range r.IntN(6) {
			if r.IntN(2) == 0 {
				off := 2 + 2*r.IntN(len(b)/2-1)
				old, nw := binary.BigEndian.Uint16(b[off:]), uint16(r.Uint32())
				binary.BigEndian.PutUint16(b[off:], nw)
				d = d.Add16(old, nw)
				d16 = d16.Add16(old, nw)
			} else {
				off := 2 + 2*r.IntN(len(b)/2-2)
				old, nw := binary.BigEndian.Uint32(b[off:]), r.Uint32()
				binary.BigEndian.PutUint32(b[off:], nw)
				d = d.Add32(old, nw)
				d32 = d32.Add32(old, nw)
			}
		}
		want := fullChecksum(b)
		sum := binary.BigEndian.Uint16(b)
		if got := ApplyDelta(sum, d); got != want {
			t.Fatalf("iteration %d: ApplyDelta %#04x, full %#04x", i, got, want)
		}
		if got := ApplyDelta(sum, d16.Add(d32)); got != want {
			t.Fatalf("iteration %d: ApplyDelta of combined deltas %#04x, full %#04x", i, got, want)
		}
		if uint32(d) >= 1<<17 {
			t.Fatalf("delta %#x not kept below 2^17", d)
		}
	}
}

func TestDeltaZeroIsIdentity(t *testing.T) {
	for _, sum := range []uint16{0, 1, 0x1234, 0xfffe} {
		if got := ApplyDelta(sum, 0); got != sum {
			t.Errorf("ApplyDelta(%#04x, 0) = %#04x", sum, got)
		}
	}
}

// TestApplyDeltaUDP checks the RFC 768 rules against a full recomputation
// that follows them: 0 stays 0, a computed 0 is sent as 0xffff.
func TestApplyDeltaUDP(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	udpFull := func(b []byte) uint16 {
		c := fullChecksum(b)
		if c == 0 {
			c = 0xffff
		}
		return c
	}
	for i := range 1000 {
		b := randomChecksummed(r)
		binary.BigEndian.PutUint16(b, udpFull(b))
		off := 2 + 2*r.IntN(len(b)/2-1)
		old := binary.BigEndian.Uint16(b[off:])
		nw := uint16(r.Uint32())
		if i%4 == 0 {
			// Choose the new word so that the new sum is 0xffff and the
			// full checksum is 0: the case RFC 768 sends as 0xffff.
			rest := append([]byte(nil), b...)
			rest[0], rest[1] = 0, 0
			binary.BigEndian.PutUint16(rest[off:], 0)
			nw = ^naiveSum(rest, 0)
		}
		binary.BigEndian.PutUint16(b[off:], nw)
		d := Delta(0).Add16(old, nw)
		sum := binary.BigEndian.Uint16(b)
		want := udpFull(b)
		if i%4 == 0 && want != 0xffff {
			t.Fatalf("construction failed: full %#04x", want)
		}
		if got := ApplyDeltaUDP(sum, d); got != want {
			t.Fatalf("iteration %d: ApplyDeltaUDP %#04x, full %#04x", i, got, want)
		}
		if got := updateUDP(sum, old, nw); got != want {
			t.Fatalf("iteration %d: updateUDP %#04x, full %#04x", i, got, want)
		}
		if got := ApplyDeltaUDP(0, d); got != 0 {
			t.Fatalf("ApplyDeltaUDP(0, d) = %#04x, want 0 (no checksum stays none)", got)
		}
	}
}

// TestL4ChecksumsMatchGopacket compares TCPChecksum, UDPChecksum and
// ICMPChecksum with the checksums gopacket computed when it built the frame.
func TestL4ChecksumsMatchGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := range 300 {
		s := randomSpec(r)
		s.Payload = randomBytes(r, r.IntN(1400)) // odd and even lengths
		frame := s.frame(t)
		p := mustParse(t, frame)
		ip := p.IPv4(frame)
		d := decode(t, frame)
		switch {
		case d.TCP != nil:
			if got := TCPChecksum(ip, p.TCP(frame)); got != d.TCP.Checksum {
				t.Fatalf("%d: TCPChecksum %#04x, gopacket %#04x", i, got, d.TCP.Checksum)
			}
		case d.UDP != nil:
			want := d.UDP.Checksum
			if want == 0 {
				want = 0xffff // gopacket does not apply RFC 768's rule
			}
			if got := UDPChecksum(ip, p.UDP(frame)[:p.UDP(frame).Length()]); got != want {
				t.Fatalf("%d: UDPChecksum %#04x, gopacket %#04x", i, got, want)
			}
		case d.ICMP != nil:
			if got := ICMPChecksum(p.ICMP(frame)); got != d.ICMP.Checksum {
				t.Fatalf("%d: ICMPChecksum %#04x, gopacket %#04x", i, got, d.ICMP.Checksum)
			}
		}
		if got := ip.CalculateChecksum(); got != d.IP.Checksum || !ip.IsChecksumValid() {
			t.Fatalf("%d: IPv4 CalculateChecksum %#04x, gopacket %#04x", i, got, d.IP.Checksum)
		}
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := randomBytes(rand.New(rand.NewPCG(1, 1)), 1500)
	if n := testing.AllocsPerRun(100, func() {
		_ = Checksum(b, 0)
		_ = ApplyDeltaUDP(0x1234, Delta(0).Add32(1, 2).Add16(3, 4))
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func TestHeaderSumMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 1000 {
		h := randomBytes(r, 4*(5+r.IntN(11)))
		if i%3 == 0 {
			for j := range h {
				h[j] = 0xff
			}
		}
		if got, want := Fold(headerSum(h)), naiveSum(h, 0); got != want {
			t.Fatalf("len %d: headerSum %#04x, naive %#04x", len(h), got, want)
		}
	}
}
