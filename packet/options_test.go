package packet

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// rrHeader builds an IPv4 header (gopacket) whose options are a NOP and a
// Record Route option of n slots with used of them filled, as ping -R
// sends it.
func rrHeader(t *testing.T, n, used int) IPv4 {
	t.Helper()
	rr := make([]byte, 3+4*n)
	rr[0], rr[1], rr[2] = OptRecordRoute, byte(len(rr)), byte(4+4*used)
	for i := range used {
		binary.BigEndian.PutUint32(rr[3+4*i:], 0x0a4d0005+uint32(i))
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{10, 77, 0, 5}, DstIP: net.IP{198, 18, 0, 1},
		Options: []layers.IPv4Option{{OptionType: OptNOP}, {OptionType: OptRecordRoute, OptionLength: rr[1], OptionData: rr[2:]}}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, gopacket.Payload([]byte("probe"))); err != nil {
		t.Fatal(err)
	}
	return IPv4(buf.Bytes())
}

// TestRecordRoute: ForwardOptions puts the leaving interface's address in
// the next free slot of a Record Route option and moves the pointer on,
// as gopacket decodes it; a full option is left alone.
func TestRecordRoute(t *testing.T) {
	ip := rrHeader(t, 9, 1)
	if !ip.ForwardOptions(0xc61200fe, 0, 0, nil) {
		t.Fatal("not recorded")
	}
	ip.SetChecksum(ip.CalculateChecksum())
	d := &layers.IPv4{}
	if err := d.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("gopacket: %v", err)
	}
	checkHeaderSum(t, ip[:d.IHL*4])
	var rr []byte
	for _, o := range d.Options {
		if o.OptionType == OptRecordRoute {
			rr = o.OptionData // pointer, then the slots
		}
	}
	if len(rr) != 1+36 || rr[0] != 12 {
		t.Fatalf("option data %x, want the pointer at 12", rr)
	}
	if got := net.IP(rr[5:9]).String(); got != "198.18.0.254" || net.IP(rr[1:5]).String() != "10.77.0.5" {
		t.Fatalf("slots %v %v", net.IP(rr[1:5]), net.IP(rr[5:9]))
	}
	full := rrHeader(t, 2, 2)
	before := append(IPv4(nil), full...)
	if full.ForwardOptions(1, 0, 0, nil) || string(full) != string(before) {
		t.Fatal("a full option changed")
	}
	if IPv4(rrHeader(t, 0, 0)).ForwardOptions(1, 0, 0, nil) {
		t.Fatal("recorded in an option without slots")
	}
	// A Record Route option two bytes long has no pointer: left alone,
	// not read past its end.
	short := IPv4(make([]byte, 24))
	short[0] = 0x46
	copy(short[20:], []byte{OptRecordRoute, 2, OptEnd, OptEnd})
	if short.ForwardOptions(1, 0, 0, nil) {
		t.Fatal("recorded in an option without a pointer")
	}
}

// optHeader builds an IPv4 header (gopacket) with opts, raw, after the
// fixed header (padded with End to a multiple of 4 bytes).
func optHeader(t *testing.T, opts []byte) IPv4 {
	t.Helper()
	for len(opts)%4 != 0 {
		opts = append(opts, OptEnd)
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{10, 77, 0, 5}, DstIP: net.IP{198, 18, 0, 1}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, gopacket.Payload([]byte("probe"))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	h := append(append(append([]byte(nil), b[:20]...), opts...), b[20:]...)
	h[0] = 0x45 + byte(len(opts)/4)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)))
	out := IPv4(h)
	out.SetChecksum(out.CalculateChecksum())
	return out
}

// decodeOptions decodes h with gopacket, checks its header checksum
// independently (RFC 1071), and returns its options' bytes.
func decodeOptions(t *testing.T, h IPv4) []byte {
	t.Helper()
	d := &layers.IPv4{}
	if err := d.DecodeFromBytes(h, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("gopacket: %v", err)
	}
	checkHeaderSum(t, h[:d.IHL*4])
	return d.Contents[20:]
}

// TestForwardOptions: Timestamp options get the time (and the arrival
// interface's address when asked, a prespecified entry only when it names
// the router), a full one its overflow counted, Record Route the leaving
// interface's address; junk after End becomes End; each as gopacket
// decodes it, the header checksum fixed by the caller checked
// independently.
func TestForwardOptions(t *testing.T) {
	const out, in, ms = 0xc61200fe, 0x0a4d0001, 0x01020304
	own := []uint32{out, in}
	tests := []struct {
		name      string
		opts      []byte
		want      []byte
		unchanged bool
	}{
		{"timestamps only", []byte{OptTimestamp, 12, 5, TSOnly, 0, 0, 0, 0, 0, 0, 0, 0},
			[]byte{OptTimestamp, 12, 9, TSOnly, 1, 2, 3, 4, 0, 0, 0, 0}, false},
		{"timestamps only, the last slot", []byte{OptTimestamp, 12, 9, TSOnly, 9, 9, 9, 9, 0, 0, 0, 0},
			[]byte{OptTimestamp, 12, 13, TSOnly, 9, 9, 9, 9, 1, 2, 3, 4}, false},
		{"with addresses", []byte{OptNOP, OptTimestamp, 12, 5, TSAndAddr, 0, 0, 0, 0, 0, 0, 0, 0, OptEnd, OptEnd, OptEnd},
			[]byte{OptNOP, OptTimestamp, 12, 13, TSAndAddr, 0x0a, 0x4d, 0, 1, 1, 2, 3, 4, OptEnd, OptEnd, OptEnd}, false},
		{"prespecified, ours", []byte{OptTimestamp, 12, 5, TSPrespec, 0xc6, 0x12, 0, 0xfe, 0, 0, 0, 0},
			[]byte{OptTimestamp, 12, 13, TSPrespec, 0xc6, 0x12, 0, 0xfe, 1, 2, 3, 4}, false},
		{"prespecified, not ours", []byte{OptTimestamp, 12, 5, TSPrespec, 0xc6, 0x12, 0, 1, 0, 0, 0, 0}, nil, true},
		{"full: overflow counted", []byte{OptTimestamp, 8, 9, 0x10 | TSOnly, 1, 1, 1, 1},
			[]byte{OptTimestamp, 8, 9, 0x20 | TSOnly, 1, 1, 1, 1}, false},
		{"full and prespecified", []byte{OptTimestamp, 12, 13, TSPrespec, 0xc6, 0x12, 0, 0xfe, 1, 1, 1, 1}, nil, true},
		{"an undefined flag", []byte{OptTimestamp, 8, 5, 2, 0, 0, 0, 0}, nil, true},
		{"record route and timestamp", []byte{OptRecordRoute, 7, 4, 0, 0, 0, 0, OptTimestamp, 8, 5, TSOnly, 0, 0, 0, 0, OptEnd},
			[]byte{OptRecordRoute, 7, 8, 0xc6, 0x12, 0, 0xfe, OptTimestamp, 8, 9, TSOnly, 1, 2, 3, 4, OptEnd}, false},
		{"junk after End", []byte{OptNOP, OptEnd, 7, 9}, []byte{OptNOP, OptEnd, OptEnd, OptEnd}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := optHeader(t, tc.opts)
			if p, _ := h.CheckOptions(); p != 0 {
				t.Fatalf("well-formed options found at fault at %d", p)
			}
			before := append(IPv4(nil), h...)
			changed := h.ForwardOptions(out, in, ms, own)
			if tc.unchanged {
				if changed || string(h) != string(before) {
					t.Fatalf("changed: % x", h.Options())
				}
				return
			}
			if !changed {
				t.Fatal("reported unchanged")
			}
			h.SetChecksum(h.CalculateChecksum())
			got := decodeOptions(t, h)
			want := tc.want
			for len(want)%4 != 0 {
				want = append(want, OptEnd)
			}
			if string(got) != string(want) {
				t.Fatalf("options % x, want % x", got, want)
			}
		})
	}
}

// TestCheckOptions: malformed options are found where the kernel's
// ip_options_compile finds them, the offset being the Parameter Problem's
// pointer from the start of the header; well-formed ones, including full
// and unknown options, are not.
func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []byte
		want int
	}{
		{"none", nil, 0},
		{"nops and end", []byte{OptNOP, OptNOP, OptEnd, 0}, 0},
		{"unknown option", []byte{130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, OptEnd}, 0},
		{"full timestamp", []byte{OptTimestamp, 8, 9, 0xe0, 0, 0, 0, 0}, 0},
		{"full prespecified, overflow 15", []byte{OptTimestamp, 12, 13, 0xf0 | TSPrespec, 0, 0, 0, 0, 0, 0, 0, 0}, 0},
		{"full record route", []byte{OptRecordRoute, 7, 8, 0, 0, 0, 0, OptEnd}, 0},
		{"router alert", []byte{OptRouterAlert, 4, 0, 0}, 0},
		{"length 1", []byte{OptNOP, OptTimestamp, 1, OptEnd}, 21},
		{"no length byte", []byte{OptNOP, OptNOP, OptNOP, OptTimestamp}, 23},
		{"length past the end", []byte{OptTimestamp, 9, 5, 0, 0, 0, 0, 0}, 20},
		{"timestamp shorter than 4", []byte{OptTimestamp, 3, 5, OptEnd}, 21},
		{"timestamp pointer 4", []byte{OptTimestamp, 8, 4, 0, 0, 0, 0, 0}, 22},
		{"timestamp pointer inside the last slot", []byte{OptTimestamp, 8, 6, 0, 0, 0, 0, 0}, 22},
		{"address entry without room", []byte{OptTimestamp, 8, 5, TSAndAddr, 0, 0, 0, 0}, 22},
		{"full, overflow 15", []byte{OptTimestamp, 8, 9, 0xf0, 0, 0, 0, 0}, 23},
		{"two timestamps", []byte{OptTimestamp, 8, 9, 0, 0, 0, 0, 0, OptTimestamp, 8, 9, 0, 0, 0, 0, 0}, 28},
		{"record route without pointer", []byte{OptRecordRoute, 2, OptEnd, OptEnd}, 21},
		{"record route pointer 3", []byte{OptRecordRoute, 7, 3, 0, 0, 0, 0, OptEnd}, 22},
		{"record route pointer mid-slot", []byte{OptRecordRoute, 7, 5, 0, 0, 0, 0, OptEnd}, 22},
		{"two record routes", []byte{OptRecordRoute, 3, 4, OptRecordRoute, 3, 4, OptEnd, OptEnd}, 23},
		{"source route pointer 3", []byte{OptLSRR, 7, 3, 0, 0, 0, 0, OptEnd}, 22},
		{"two source routes", []byte{OptLSRR, 3, 4, OptSSRR, 3, 4, OptEnd, OptEnd}, 23},
		{"router alert of 3", []byte{OptRouterAlert, 3, 0, OptEnd}, 21},
	}
	for _, tc := range tests {
		if got, sr := optHeader(t, tc.opts).CheckOptions(); got != tc.want || sr {
			t.Errorf("%s: %d, source routed %v; want %d", tc.name, got, sr, tc.want)
		}
	}
	// A well-formed source route is reported, loose or strict, wherever
	// it stands.
	for _, opts := range [][]byte{
		{OptLSRR, 7, 4, 198, 18, 0, 1, OptEnd},
		{OptNOP, OptRecordRoute, 3, 4, OptSSRR, 7, 8, 198, 18, 0, 1, OptEnd},
	} {
		if p, sr := optHeader(t, opts).CheckOptions(); p != 0 || !sr {
			t.Errorf("% x: problem %d, source routed %v; want 0, true", opts, p, sr)
		}
	}
}

// checkHeaderSum checks an IPv4 header's checksum by RFC 1071, apart
// from the package's own code: the sum over the header, checksum
// included, is all ones.
func checkHeaderSum(t *testing.T, h []byte) {
	t.Helper()
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("header checksum wrong (sum %#x)", sum)
	}
}

// TestEchoOptions: an echo request's Record Route and Timestamp options
// come back in the reply filled in twice by the answering address — on
// receipt and on answering — where there is room, once where there is
// room for one, and counted in a full Timestamp's overflow once; the
// reply carries those two options alone (no NOP), Record Route first,
// End-padded to the request's length; as gopacket decodes it, the header
// checksum fixed by the caller checked independently.
func TestEchoOptions(t *testing.T) {
	const pub, ms = 0xc61200cc, 0x01020304
	own := []uint32{pub}
	p := []byte{0xc6, 0x12, 0, 0xcc}
	tests := []struct {
		name string
		opts []byte
		want []byte
	}{
		{"ping -R", append([]byte{OptNOP, OptRecordRoute, 15, 8, 10, 77, 0, 5}, make([]byte, 8)...),
			append(append(append([]byte{OptRecordRoute, 15, 16, 10, 77, 0, 5}, p...), p...), OptEnd)},
		{"room for one", []byte{OptRecordRoute, 7, 4, 0, 0, 0, 0, OptEnd},
			append(append([]byte{OptRecordRoute, 7, 8}, p...), OptEnd)},
		{"ping -T tsandaddr", append([]byte{OptTimestamp, 28, 13, TSAndAddr, 10, 77, 0, 5, 9, 9, 9, 9}, make([]byte, 16)...),
			append(append(append(append([]byte{OptTimestamp, 28, 29, TSAndAddr, 10, 77, 0, 5, 9, 9, 9, 9}, p...), 1, 2, 3, 4), p...), 1, 2, 3, 4)},
		{"full timestamp", []byte{OptTimestamp, 8, 9, 0x10 | TSOnly, 9, 9, 9, 9},
			[]byte{OptTimestamp, 8, 9, 0x20 | TSOnly, 9, 9, 9, 9}},
		{"prespecified, ours then not", append(append(append([]byte{OptTimestamp, 20, 5, TSPrespec}, p...), 0, 0, 0, 0), 10, 77, 0, 5, 0, 0, 0, 0),
			append(append(append([]byte{OptTimestamp, 20, 13, TSPrespec}, p...), 1, 2, 3, 4), 10, 77, 0, 5, 0, 0, 0, 0)},
		{"timestamp before record route", append([]byte{OptTimestamp, 8, 5, TSOnly, 0, 0, 0, 0, OptRecordRoute, 7, 4}, make([]byte, 5)...),
			append(append(append([]byte{OptRecordRoute, 7, 8}, p...), OptTimestamp, 8, 9, TSOnly, 1, 2, 3, 4), OptEnd)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := optHeader(t, tc.opts)
			if p, sr := h.CheckOptions(); p != 0 || sr {
				t.Fatalf("the request's options at fault: %d %v", p, sr)
			}
			h.EchoOptions(pub, ms, own)
			h.SetChecksum(h.CalculateChecksum())
			got := decodeOptions(t, h)
			want := tc.want
			for len(want) < len(got) {
				want = append(want, OptEnd)
			}
			if string(got) != string(want) {
				t.Fatalf("options\n% x\nwant\n% x", got, want)
			}
		})
	}
}
