package packet

import "strconv"

// Protocol numbers fastnat handles (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoDCCP    uint8 = 33
	ProtoGRE     uint8 = 47
	ProtoESP     uint8 = 50
	ProtoAH      uint8 = 51
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// Tuple identifies one direction of a flow: the transport protocol, the IPv4
// source and destination, and the transport ports. For ICMP queries (echo,
// timestamp, ...) both SrcPort and DstPort hold the query identifier, so a
// request and its reply are each other's Reverse and translating the
// identifier is translating a "port".
//
// Addresses are in host byte order: the value binary.BigEndian.Uint32 reads
// from the wire. The struct is 16 bytes with no pointers, so it is a valid
// flow-table key and compares with ==.
type Tuple struct {
	SrcAddr uint32
	DstAddr uint32
	SrcPort uint16
	DstPort uint16
	Proto   uint8
	// No explicit padding: a struct with an array field is passed in
	// memory, one of scalars in registers, and a Tuple crosses the
	// per-packet calls by value.
}

// Reverse returns the tuple of the opposite direction of the same flow.
func (t Tuple) Reverse() Tuple {
	return Tuple{SrcAddr: t.DstAddr, DstAddr: t.SrcAddr, SrcPort: t.DstPort, DstPort: t.SrcPort, Proto: t.Proto}
}

// Words packs the tuple into two 64-bit words, for hashing and for storage
// that must be read atomically.
func (t Tuple) Words() (uint64, uint64) {
	return uint64(t.SrcAddr)<<32 | uint64(t.DstAddr),
		uint64(t.SrcPort)<<48 | uint64(t.DstPort)<<32 | uint64(t.Proto)
}

// TupleFromWords is the inverse of Tuple.Words.
func TupleFromWords(a, b uint64) Tuple {
	return Tuple{
		SrcAddr: uint32(a >> 32), DstAddr: uint32(a),
		SrcPort: uint16(b >> 48), DstPort: uint16(b >> 32), Proto: uint8(b),
	}
}

// String formats the tuple for logs and test failures, e.g.
// "tcp 10.77.0.5:40000 -> 198.18.0.204:9091". It allocates; keep it off the
// fast path.
func (t Tuple) String() string {
	var b []byte
	switch t.Proto {
	case ProtoICMP:
		b = append(b, "icmp"...)
	case ProtoTCP:
		b = append(b, "tcp"...)
	case ProtoUDP:
		b = append(b, "udp"...)
	case ProtoDCCP:
		b = append(b, "dccp"...)
	case ProtoSCTP:
		b = append(b, "sctp"...)
	case ProtoUDPLite:
		b = append(b, "udp-lite"...)
	default:
		b = append(b, "proto-"...)
		b = strconv.AppendUint(b, uint64(t.Proto), 10)
	}
	b = append(b, ' ')
	b = appendAddrPort(b, t.SrcAddr, t.SrcPort)
	b = append(b, " -> "...)
	b = appendAddrPort(b, t.DstAddr, t.DstPort)
	return string(b)
}

func appendAddrPort(b []byte, a uint32, p uint16) []byte {
	for i := 24; i >= 0; i -= 8 {
		b = strconv.AppendUint(b, uint64(a>>i&0xff), 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(p), 10)
}
