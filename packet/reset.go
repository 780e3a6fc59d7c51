package packet

import "encoding/binary"

// BuildTCPReset turns the TCP segment at frame[l3:end] (its TCP header at
// l4), sent to a port where nothing listens, into the reset a host sends
// back (RFC 9293 §3.10.7.1, as Linux's tcp_v4_send_reset sends it):
// addresses and ports swapped, no options, window 0; for a segment with
// ACK, RST alone with the sequence number it acknowledged; for one
// without, RST|ACK with sequence 0 acknowledging its sequence space
// (data, and SYN and FIN one each). It works in place and returns the
// new end of the IP packet (l3 + 40). id is the IPv4 Identification. The
// link-layer header is left as it is. It allocates nothing; the caller
// decides whether the segment may be answered at all (never a RST).
func BuildTCPReset(frame []byte, l3, l4, end int, id uint16) int {
	ip := IPv4(frame[l3:end])
	tcp := frame[l4:end]
	src, dst := ip.SrcAddr(), ip.DstAddr()
	sport, dport := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
	flags, seq := tcp[13], uint32(0)
	ack := binary.BigEndian.Uint32(tcp[4:]) + uint32(len(tcp)-int(tcp[12]>>4)*4)
	if flags&FlagSYN != 0 {
		ack++
	}
	if flags&FlagFIN != 0 {
		ack++
	}
	rst := uint8(FlagRST | FlagACK)
	if flags&FlagACK != 0 {
		seq, ack, rst = binary.BigEndian.Uint32(tcp[8:]), 0, FlagRST
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
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = TCPMinLen / 4 << 4
	t[13] = rst
	binary.BigEndian.PutUint16(t[14:], 0) // window
	binary.BigEndian.PutUint16(t[16:], 0) // checksum, below
	binary.BigEndian.PutUint16(t[18:], 0) // urgent pointer
	binary.BigEndian.PutUint16(t[16:], TCPChecksum(out, t))
	return l3 + IPv4MinLen + TCPMinLen
}
