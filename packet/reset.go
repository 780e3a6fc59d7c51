package packet

import "encoding/binary"

// BuildTCPReset turns the TCP segment at frame[l3:end] (its TCP header at
// l4), a SYN to a port where nothing listens, into the reset a host sends
// back (RFC 793 "Reset Generation", as Linux sends it): addresses and
// ports swapped, RST and ACK set, sequence 0, acknowledging the SYN and
// its data, no options, in place, and returns the new end of the IP
// packet (l3 + 40). id is the IPv4 Identification. The link-layer header
// is left as it is. It allocates nothing; the caller decides whether the
// segment may be answered at all.
func BuildTCPReset(frame []byte, l3, l4, end int, id uint16) int {
	ip := IPv4(frame[l3:end])
	tcp := frame[l4:end]
	src, dst := ip.SrcAddr(), ip.DstAddr()
	sport, dport := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
	seq := binary.BigEndian.Uint32(tcp[4:])
	data := uint32(len(tcp) - int(tcp[12]>>4)*4)
	ack := seq + data
	if tcp[13]&FlagSYN != 0 {
		ack++
	}
	if tcp[13]&FlagFIN != 0 {
		ack++
	}

	out := IPv4(frame[l3 : l3+IPv4MinLen+TCPMinLen])
	out[ipVerIHL] = 0x45
	out[ipTOS] = 0
	binary.BigEndian.PutUint16(out[ipTotalLen:], IPv4MinLen+TCPMinLen)
	binary.BigEndian.PutUint16(out[ipID:], id)
	binary.BigEndian.PutUint16(out[ipFlagsFrag:], uint16(IPv4DontFragment)<<13)
	out[ipTTL] = 64
	out[ipProto] = ProtoTCP
	binary.BigEndian.PutUint32(out[ipSrc:], dst)
	binary.BigEndian.PutUint32(out[ipDst:], src)
	out.SetChecksum(out.CalculateChecksum())

	t := out[IPv4MinLen:]
	binary.BigEndian.PutUint16(t[0:], dport)
	binary.BigEndian.PutUint16(t[2:], sport)
	binary.BigEndian.PutUint32(t[4:], 0)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = TCPMinLen / 4 << 4
	t[13] = FlagRST | FlagACK
	binary.BigEndian.PutUint16(t[14:], 0) // window
	binary.BigEndian.PutUint16(t[16:], 0) // checksum, below
	binary.BigEndian.PutUint16(t[18:], 0) // urgent pointer
	binary.BigEndian.PutUint16(t[16:], TCPChecksum(out, t))
	return l3 + IPv4MinLen + TCPMinLen
}
