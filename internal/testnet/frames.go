package testnet

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strconv"
)

// Malformation is one way MalformedFrames breaks a frame. Every frame is
// addressed to the router (destination MAC) and, where it gets that far, to
// PublicAddr from ClientAddr, so a NAT must look at it before dropping it.
type Malformation uint8

// The malformations, each alone in its frame: everything else in the
// frame is valid, checksums included, unless the checksum is the defect.
const (
	Runt                Malformation = iota // below the 60-byte minimum: a header and a scrap of IPv4, unpadded
	NoIPHeader                              // EtherType IPv4 and nothing after
	ShortIHL                                // IPv4 IHL below 5
	LongIHL                                 // IPv4 IHL reaching past the frame
	BadVersion                              // IP version 6 under EtherType IPv4
	TotalLenBeyondFrame                     // IPv4 total length past the frame
	TotalLenBelowHeader                     // IPv4 total length below the header length
	BadIPChecksum                           // wrong IPv4 header checksum
	TruncatedTCP                            // protocol TCP, 10 bytes of segment
	TCPOffsetShort                          // TCP data offset below 5
	TCPOffsetLong                           // TCP data offset past the segment
	BadTCPChecksum                          // SYN to the FTP port, wrong checksum
	UDPLengthLong                           // UDP length past the datagram
	UDPLengthShort                          // UDP length below 8
	ICMPErrorTruncated                      // destination unreachable quoting 8 bytes of an IP header
	FragmentOverflow                        // fragment offset + length past 65535
	TinyFragment                            // first fragment too short for a TCP header (RFC 1858)
	VLANEmpty                               // an 802.1Q tag and nothing after
	Garbage                                 // random bytes under EtherType IPv4
	numMalformations
)

// Malformations lists every Malformation.
var Malformations = func() []Malformation {
	m := make([]Malformation, numMalformations)
	for i := range m {
		m[i] = Malformation(i)
	}
	return m
}()

var malformationNames = [numMalformations]string{
	"runt", "no-ip-header", "short-ihl", "long-ihl", "bad-version",
	"total-len-beyond-frame", "total-len-below-header", "bad-ip-checksum",
	"truncated-tcp", "tcp-offset-short", "tcp-offset-long", "bad-tcp-checksum",
	"udp-length-long", "udp-length-short", "icmp-error-truncated",
	"fragment-overflow", "tiny-fragment", "vlan-empty", "garbage",
}

func (m Malformation) String() string {
	if m < numMalformations {
		return malformationNames[m]
	}
	return "malformation(" + strconv.Itoa(int(m)) + ")"
}

// Protocol numbers and EtherTypes used below.
const (
	etherTypeIPv4 = 0x0800
	etherTypeVLAN = 0x8100
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
)

// MalformedFrames returns n frames from src to dst cycling through every
// Malformation, with ports, identifiers and garbage drawn from a PRNG
// seeded by seed (the same seed gives the same frames).
func MalformedFrames(dst, src net.HardwareAddr, n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9091))
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = MalformedFrame(Malformation(i%int(numMalformations)), dst, src, rng)
	}
	return frames
}

// MalformedFrame builds one frame with malformation m.
func MalformedFrame(m Malformation, dst, src net.HardwareAddr, rng *rand.Rand) []byte {
	sport := uint16(1024 + rng.IntN(60000))
	switch m {
	case Runt:
		// Shorter than an Ethernet header cannot be sent: the kernel
		// refuses AF_PACKET frames below the link's header length.
		f := ethernet(dst, src, etherTypeIPv4, nil)[:14]
		return append(f, 0x45, 0, 0, 20)[:14+1+rng.IntN(4)]
	case NoIPHeader:
		return ethernet(dst, src, etherTypeIPv4, nil)
	case VLANEmpty:
		f := ethernet(dst, src, etherTypeVLAN, nil)
		return f
	case Garbage:
		g := make([]byte, 1+rng.IntN(200))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		return ethernet(dst, src, etherTypeIPv4, g)
	case UDPLengthLong, UDPLengthShort:
		ip := ipv4(protoUDP, udp(sport, FTPPublicPort, []byte("fastnat")))
		l4 := ip[20:]
		if m == UDPLengthLong {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)+100))
		} else {
			binary.BigEndian.PutUint16(l4[4:], uint16(rng.IntN(8)))
		}
		l4Checksum(ip)
		return ethernet(dst, src, etherTypeIPv4, ip)
	case ICMPErrorTruncated:
		// Destination unreachable (type 3, code 1) quoting only the first
		// 8 bytes of an IP header: too little to find the inner ports.
		inner := ipv4(protoTCP, tcp(FTPPublicPort, sport, rng.Uint32(), 0x12, nil))
		msg := make([]byte, 8+8)
		msg[0], msg[1] = 3, 1
		copy(msg[8:], inner[:8])
		binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
		return ethernet(dst, src, etherTypeIPv4, ipv4(protoICMP, msg))
	}

	// The rest start from a valid TCP SYN to the published FTP port.
	ip := ipv4(protoTCP, tcp(sport, FTPPublicPort, rng.Uint32(), 0x02, nil))
	switch m {
	case ShortIHL:
		ip[0] = 0x40 | byte(rng.IntN(5))
		ipChecksum(ip)
	case LongIHL:
		// 15 words = 60 bytes of header; cut the frame before that.
		ip[0] = 0x4f
		ip = ip[:20+rng.IntN(20)]
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		ipChecksum(ip)
	case BadVersion:
		ip[0] = 0x65
		ipChecksum(ip)
	case TotalLenBeyondFrame:
		// Past the 46 bytes of a minimum frame's padding too.
		binary.BigEndian.PutUint16(ip[2:], uint16(max(len(ip), 46)+1+rng.IntN(1000)))
		ipChecksum(ip)
	case TotalLenBelowHeader:
		// 1..19; 0 is left out because some stacks read it as "TSO, see
		// the frame length".
		binary.BigEndian.PutUint16(ip[2:], uint16(1+rng.IntN(19)))
		ipChecksum(ip)
	case BadIPChecksum:
		ip[10] ^= byte(1 + rng.IntN(255))
	case TruncatedTCP:
		ip = ip[:30]
		binary.BigEndian.PutUint16(ip[2:], 30)
		ipChecksum(ip)
	case TCPOffsetShort:
		ip[20+12] = byte(rng.IntN(5)) << 4
		l4Checksum(ip)
	case TCPOffsetLong:
		ip[20+12] = 0xf0 // 60 bytes of header in a 20-byte segment
		l4Checksum(ip)
	case BadTCPChecksum:
		ip[20+16] ^= byte(1 + rng.IntN(255))
	case FragmentOverflow:
		// Offset 8190 or 8191 (x8 = 65520 or 65528) plus 20 bytes of
		// data ends past 65535.
		binary.BigEndian.PutUint16(ip[6:], uint16(8190+rng.IntN(2)))
		ipChecksum(ip)
	case TinyFragment:
		// First fragment (MF, offset 0) holding 8 bytes of TCP header.
		ip = ip[:28]
		binary.BigEndian.PutUint16(ip[2:], 28)
		binary.BigEndian.PutUint16(ip[6:], 0x2000)
		ipChecksum(ip)
	}
	return ethernet(dst, src, etherTypeIPv4, ip)
}

// ethernet prepends an Ethernet II header; frames shorter than the 60-byte
// minimum are padded with zeros, as a NIC would.
func ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], etherType)
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// ipv4 builds a 20-byte IPv4 header from ClientAddr to PublicAddr (TTL 64,
// DF) in front of l4, with both checksums right.
func ipv4(proto byte, l4 []byte) []byte {
	b := make([]byte, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], 0x4e54)
	binary.BigEndian.PutUint16(b[6:], 0x4000)
	b[8] = 64
	b[9] = proto
	s, d := ClientAddr.As4(), PublicAddr.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:], l4)
	ipChecksum(b)
	if proto != protoICMP {
		l4Checksum(b)
	}
	return b
}

func tcp(sport, dport uint16, seq uint32, flags byte, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	copy(b[20:], payload)
	return b
}

func udp(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	return b
}

// ipChecksum fills in the checksum of the 20-byte IPv4 header at b.
func ipChecksum(b []byte) {
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], inetChecksum(b[:20]))
}

// l4Checksum fills in the TCP or UDP checksum of the segment after the
// 20-byte IPv4 header at b, over the pseudo-header of RFC 793 / RFC 768:
// source, destination, zero, protocol, segment length.
func l4Checksum(b []byte) {
	seg := b[20:]
	off := 16 // TCP
	if b[9] == protoUDP {
		off = 6
	}
	if len(seg) < off+2 {
		return
	}
	seg[off], seg[off+1] = 0, 0
	pseudo := make([]byte, 12+len(seg))
	copy(pseudo[0:8], b[12:20])
	pseudo[9] = b[9]
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
	copy(pseudo[12:], seg)
	c := inetChecksum(pseudo)
	if c == 0 && b[9] == protoUDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(seg[off:], c)
}
