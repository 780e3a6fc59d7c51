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

// TestRecordRoute: the address goes in the next free slot and the pointer
// moves on, as gopacket decodes it; a full option is left alone.
func TestRecordRoute(t *testing.T) {
	ip := rrHeader(t, 9, 1)
	if !ip.RecordRoute(0xc61200fe) {
		t.Fatal("not recorded")
	}
	ip.SetChecksum(ip.CalculateChecksum())
	d := &layers.IPv4{}
	if err := d.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("gopacket: %v", err)
	}
	var sum uint32 // RFC 1071 over the header, checksum included: all ones
	for i := 0; i < int(d.IHL)*4; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("header checksum wrong (sum %#x)", sum)
	}
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
	if full.RecordRoute(1) || string(full) != string(before) {
		t.Fatal("a full option changed")
	}
	if IPv4(rrHeader(t, 0, 0)).RecordRoute(1) {
		t.Fatal("recorded in an option without slots")
	}
	// A Record Route option two bytes long has no pointer: left alone,
	// not read past its end.
	short := IPv4(make([]byte, 24))
	short[0] = 0x46
	copy(short[20:], []byte{OptRecordRoute, 2, OptEnd, OptEnd})
	if short.RecordRoute(1) {
		t.Fatal("recorded in an option without a pointer")
	}
}
