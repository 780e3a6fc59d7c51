package packet

// Protocol numbers fastnat handles (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoDCCP    uint8 = 33
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
	_       [3]uint8
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
