package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// Tests of what a router writes itself: ICMP errors, MSS clamping,
// restoring a translated tuple, fragmentation. gopacket judges every
// result.

func TestBuildICMPError(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 1))
	for i := range 500 {
		s := randomSpec(r)
		s.Payload = randomBytes(r, r.IntN(1400))
		frame := s.frame(t)
		p := mustParse(t, frame)
		orig := append([]byte(nil), frame[p.L3:p.End]...)
		buf := make([]byte, len(frame), 2048)
		copy(buf, frame)
		maxLen := []int{ICMPErrorMaxLen, 68 + r.IntN(600), 1500}[r.IntN(3)]
		spec := ICMPErrorSpec{Type: ICMPDestUnreachable, Code: ICMPCodeFragNeeded, Rest: uint32(r.IntN(65536)),
			Src: r.Uint32(), ID: uint16(r.Uint32()), MaxLen: maxLen}
		end := BuildICMPError(buf, p.L3, p.End, spec)
		d := decode(t, buf[:end])
		if d.IP == nil || d.ICMP == nil {
			t.Fatalf("case %d: no IPv4/ICMP layer", i)
		}
		want := min(len(orig)+ICMPErrorOverhead, maxLen)
		if int(d.IP.Length) != want || end-p.L3 != want {
			t.Fatalf("case %d: length %d (end %d), want %d", i, d.IP.Length, end-p.L3, want)
		}
		if addr(d.IP.SrcIP) != spec.Src || !bytes.Equal(d.IP.DstIP, orig[12:16]) {
			t.Errorf("case %d: %v -> %v", i, d.IP.SrcIP, d.IP.DstIP)
		}
		if d.IP.TTL != 64 || d.IP.Protocol != layers.IPProtocolICMPv4 || d.IP.Id != spec.ID || d.IP.Flags != 0 || d.IP.IHL != 5 {
			t.Errorf("case %d: header %+v", i, d.IP)
		}
		if d.IP.TOS != orig[1]&0x1e|0xc0 {
			t.Errorf("case %d: TOS %#x from %#x", i, d.IP.TOS, orig[1])
		}
		if onesSum(buf[p.L3:p.L3+20]) != 0xffff {
			t.Errorf("case %d: IPv4 header checksum wrong", i)
		}
		icmp := buf[p.L3+20 : end]
		if onesSum(icmp) != 0xffff {
			t.Errorf("case %d: ICMP checksum wrong", i)
		}
		if d.ICMP.TypeCode.Type() != spec.Type || d.ICMP.TypeCode.Code() != spec.Code || binary.BigEndian.Uint32(icmp[4:]) != spec.Rest {
			t.Errorf("case %d: type/code/rest %v %#x", i, d.ICMP.TypeCode, binary.BigEndian.Uint32(icmp[4:]))
		}
		if q := icmp[8:]; !bytes.Equal(q, orig[:len(q)]) {
			t.Errorf("case %d: the quote is not the start of the original packet", i)
		}
		if !bytes.Equal(buf[:p.L3], frame[:p.L3]) {
			t.Errorf("case %d: link-layer header changed", i)
		}
	}
}

// onesSum is the one's-complement sum of b, 0xffff over data holding its
// own correct Internet checksum: the naive oracle's.
func onesSum(b []byte) uint16 { return naiveSum(b, 0) }

func TestClampMSS(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 2))
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	for i := range 1000 {
		s := tcpSpec(1000, 80, nil)
		s.TCP.SYN, s.TCP.ACK = true, r.IntN(2) == 0
		mss := uint16(500 + r.IntN(9000))
		var opts []layers.TCPOption
		for range r.IntN(4) { // shift the MSS option to odd and even offsets
			opts = append(opts, nop)
		}
		hasMSS := r.IntN(5) != 0
		if hasMSS {
			opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, mss)})
		}
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted})
		s.TCP.Options = opts
		frame := s.frame(t)
		p := mustParse(t, frame)
		clamp := uint16(536 + r.IntN(9000))
		got := p.TCP(frame).ClampMSS(clamp)
		d := decode(t, frame)
		var now uint16
		for _, o := range d.TCP.Options {
			if o.OptionType == layers.TCPOptionKindMSS {
				now = binary.BigEndian.Uint16(o.OptionData)
			}
		}
		switch {
		case !hasMSS:
			if got != 0 || now != 0 {
				t.Fatalf("case %d: no MSS option, ClampMSS returned %d", i, got)
			}
		case got != mss:
			t.Fatalf("case %d: ClampMSS found %d, want %d", i, got, mss)
		case now != min(mss, clamp):
			t.Fatalf("case %d: MSS %d clamped to %d is %d", i, mss, clamp, now)
		}
		checkTCPChecksum(t, frame)
	}
	// Malformed option lists change nothing.
	for _, opts := range [][]byte{{2}, {2, 0}, {2, 1, 0, 0}, {5, 40, 0, 0}, {2, 3, 0xff, 0xff}} {
		s := tcpSpec(1000, 80, nil)
		s.TCP.SYN = true
		s.TCP.Options = nil
		frame := s.frame(t)
		p := mustParse(t, frame)
		// Splice the raw options in after the fixed header.
		padded := append(append([]byte(nil), opts...), make([]byte, (4-len(opts)%4)%4)...)
		raw := append(append(append([]byte(nil), frame[:p.L4+20]...), padded...), frame[p.L4+20:]...)
		binary.BigEndian.PutUint16(raw[p.L3+2:], uint16(len(raw)-p.L3))
		raw[p.L4+12] = byte((20+len(padded))/4) << 4
		binary.BigEndian.PutUint16(raw[p.L3+10:], 0)
		binary.BigEndian.PutUint16(raw[p.L3+10:], ^onesSum(raw[p.L3:p.L4]))
		before := append([]byte(nil), raw...)
		p = mustParse(t, raw)
		if got := p.TCP(raw).ClampMSS(536); got != 0 || !bytes.Equal(raw, before) {
			t.Errorf("options % x: ClampMSS = %d and changed the segment", opts, got)
		}
	}
}

// checkTCPChecksum verifies a frame's TCP checksum with gopacket.
func checkTCPChecksum(tb testing.TB, frame []byte) {
	tb.Helper()
	d := decode(tb, frame)
	c := *d.TCP
	if err := c.SetNetworkLayerForChecksum(d.IP); err != nil {
		tb.Fatal(err)
	}
	b := serialize(tb, &c, gopacket.Payload(d.TCP.Payload))
	if got, want := d.TCP.Checksum, binary.BigEndian.Uint16(b[16:]); got != want {
		tb.Fatalf("TCP checksum %#04x, gopacket computes %#04x", got, want)
	}
}

func TestSetTupleRestoresTheOriginal(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 3))
	for i := range 1000 {
		s := randomSpec(r)
		frame := s.frame(t)
		orig := append([]byte(nil), frame...)
		p := mustParse(t, frame)
		t0 := p.Tuple
		// Translate to a random tuple, then back.
		x := Tuple{SrcAddr: r.Uint32(), DstAddr: r.Uint32(), SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Proto: t0.Proto}
		if s.ICMP != nil {
			x.DstPort = x.SrcPort
		}
		p.SetTuple(frame, x)
		back := mustParse(t, frame)
		if back.Tuple != x {
			t.Fatalf("case %d: after SetTuple parsed %+v, want %+v", i, back.Tuple, x)
		}
		checkChecksums(t, frame)
		p.SetTuple(frame, t0)
		if !bytes.Equal(frame, orig) {
			t.Fatalf("case %d: translating there and back changed the frame\n% x\n% x", i, orig, frame)
		}
	}
}

// checkChecksums verifies the IPv4 header checksum and the transport
// checksum (TCP, UDP unless 0, ICMP) of an unfragmented frame.
func checkChecksums(tb testing.TB, frame []byte) {
	tb.Helper()
	p := mustParse(tb, frame)
	if onesSum(frame[p.L3:p.L4]) != 0xffff {
		tb.Fatal("IPv4 header checksum wrong")
	}
	seg := frame[p.L4:p.End]
	switch p.Tuple.Proto {
	case ProtoTCP:
		checkTCPChecksum(tb, frame)
	case ProtoUDP:
		if binary.BigEndian.Uint16(seg[6:]) == 0 {
			return
		}
		if onesSum(append(pseudo(p, len(seg)), seg...)) != 0xffff {
			tb.Fatal("UDP checksum wrong")
		}
	case ProtoICMP:
		if onesSum(seg) != 0xffff {
			tb.Fatal("ICMP checksum wrong")
		}
	}
}

func pseudo(p Parsed, n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, p.Tuple.SrcAddr)
	b = binary.BigEndian.AppendUint32(b, p.Tuple.DstAddr)
	return append(b, 0, p.Tuple.Proto, byte(n>>8), byte(n))
}

func TestFragmentsDecodeAndReassemble(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 4))
	for i := range 300 {
		s := udpSpec(uint16(r.Uint32()), uint16(r.Uint32()), randomBytes(r, 100+r.IntN(3000)))
		s.IP.Flags = 0
		s.IP.Id = uint16(r.Uint32())
		// Options copied into every fragment (0x82, security-like) and
		// ones only the first keeps (0x07, record route).
		s.IP.Options = randomIPOptions(r, r.IntN(11), 0x07, 0x82)
		frame := s.frame(t)
		p := mustParse(t, frame)
		ip := p.IPv4(frame)
		hl := ip.HeaderLen()
		mtu := hl + 8 + r.IntN(1500)
		pl, ok := PlanFragments(ip, mtu)
		if !ok {
			if mtu-hl >= 8 && mtu-pl.RestHeader >= 8 {
				t.Fatalf("case %d: PlanFragments refused mtu %d with header %d/%d", i, mtu, hl, pl.RestHeader)
			}
			continue
		}
		orig := append([]byte(nil), frame...)
		var frags [][]byte
		for k := 1; k < pl.Count; k++ {
			buf := make([]byte, p.L3+pl.RestHeader+pl.Rest)
			copy(buf, frame[:p.L3])
			n := WriteFragment(buf[p.L3:], ip, &pl, k)
			frags = append(frags, buf[:p.L3+n])
		}
		if pl.Count > 1 {
			n := FirstFragment(ip, &pl)
			frags = append([][]byte{frame[:p.L3+n]}, frags...)
		} else {
			frags = [][]byte{frame}
		}
		checkFragments(t, i, orig, frags, mtu)
	}
}

// checkFragments decodes every fragment with gopacket, checks lengths,
// offsets, flags, options and checksums, and reassembles them into the
// original packet: by offset here, and with gopacket's ip4defrag too when
// the headers have no options (ip4defrag assumes 20-byte headers).
func checkFragments(t *testing.T, i int, orig []byte, frags [][]byte, mtu int) {
	t.Helper()
	od := decode(t, orig)
	var copied int
	for _, o := range od.IP.Options {
		if o.OptionType&0x80 != 0 {
			copied += int(o.OptionLength)
		}
	}
	def := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	var joined []byte
	noDefrag := false
	next := 0
	for k, f := range frags {
		d := decode(t, f)
		ip := d.IP
		if int(ip.Length) > mtu {
			t.Fatalf("case %d: fragment %d is %d bytes, mtu %d", i, k, ip.Length, mtu)
		}
		if onesSum(f[14:14+int(ip.IHL)*4]) != 0xffff {
			t.Fatalf("case %d: fragment %d header checksum wrong", i, k)
		}
		if ip.Id != od.IP.Id || ip.Protocol != od.IP.Protocol || !ip.SrcIP.Equal(od.IP.SrcIP) || !ip.DstIP.Equal(od.IP.DstIP) || ip.TTL != od.IP.TTL || ip.TOS != od.IP.TOS {
			t.Fatalf("case %d: fragment %d changed a field: %+v", i, k, ip)
		}
		if int(ip.FragOffset)*8 != next {
			t.Fatalf("case %d: fragment %d at offset %d, want %d", i, k, int(ip.FragOffset)*8, next)
		}
		last := k == len(frags)-1
		if (ip.Flags&layers.IPv4MoreFragments != 0) == last || ip.Flags&layers.IPv4DontFragment != 0 {
			t.Fatalf("case %d: fragment %d flags %v", i, k, ip.Flags)
		}
		data := int(ip.Length) - int(ip.IHL)*4
		if !last && data%8 != 0 {
			t.Fatalf("case %d: fragment %d carries %d bytes, not a multiple of 8", i, k, data)
		}
		if k > 0 && int(ip.IHL)*4 != 20+(copied+3)&^3 {
			t.Fatalf("case %d: later fragment %d has a %d-byte header, want %d", i, k, int(ip.IHL)*4, 20+(copied+3)&^3)
		}
		next += data
		joined = append(joined, ip.Payload...)
		if len(od.IP.Options) > 0 || data < 8 {
			// ip4defrag assumes 20-byte headers, and refuses a last
			// fragment of under 8 bytes, which RFC 791 allows.
			noDefrag = true
		}
		if noDefrag {
			continue
		}
		out, err := def.DefragIPv4(ip)
		if err != nil {
			t.Fatalf("case %d: defrag: %v", i, err)
		}
		if out != nil {
			whole = out
		}
	}
	if !bytes.Equal(joined, od.IP.Payload) {
		t.Fatalf("case %d: the fragments' data joined differs from the packet's", i)
	}
	if noDefrag {
		return
	}
	if next != int(od.IP.Length)-int(od.IP.IHL)*4 {
		t.Fatalf("case %d: fragments carry %d bytes, the packet %d", i, next, int(od.IP.Length)-int(od.IP.IHL)*4)
	}
	if whole == nil {
		t.Fatalf("case %d: the fragments do not reassemble", i)
	}
	if !bytes.Equal(whole.Payload, od.IP.Payload) {
		t.Fatalf("case %d: reassembled payload differs", i)
	}
}

func TestRouterFunctionsAllocateNothing(t *testing.T) {
	s := tcpSpec(1000, 80, make([]byte, 1400))
	s.TCP.SYN = true
	s.TCP.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}}}
	s.IP.Flags = 0
	frame := s.frame(t)
	p := mustParse(t, frame)
	buf := make([]byte, len(frame), 2048)
	dst := make([]byte, 2048)
	x := Tuple{SrcAddr: 1, DstAddr: 2, SrcPort: 3, DstPort: 4, Proto: ProtoTCP}
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, frame)
		buf = buf[:len(frame)]
		q := p
		q.SetTuple(buf, x)
		q.TCP(buf).ClampMSS(1200)
		ip := q.IPv4(buf)
		pl, _ := PlanFragments(ip, 576)
		for k := 1; k < pl.Count; k++ {
			WriteFragment(dst, ip, &pl, k)
		}
		FirstFragment(ip, &pl)
		copy(buf, frame)
		BuildICMPError(buf, q.L3, q.End, ICMPErrorSpec{Type: ICMPTimeExceeded, Src: 1, MaxLen: ICMPErrorMaxLen})
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run, want 0", allocs)
	}
}
