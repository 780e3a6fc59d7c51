package packet

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the one's complement of the
// one's-complement sum of a byte string taken as big-endian 16-bit words,
// an odd final byte padded with a zero on the right. One's-complement
// addition is addition modulo 2^16-1, so words may be summed in any order
// and in wider registers (2^32 and 2^64 are both 1 modulo 2^16-1) as long as
// every carry out of the top is added back in at the bottom.

// Sum returns the one's-complement sum of b added to initial, as an
// unfolded 32-bit partial sum. Partial sums chain: Sum(b2, Sum(b1, 0)) is
// the sum of b1 followed by b2 provided len(b1) is even. Fold reduces the
// result to 16 bits.
func Sum(b []byte, initial uint32) uint32 {
	acc := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, carry)
	}
	// End-around carry. If this add carries out again, acc is now 0 and the
	// final += cannot overflow.
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry
	// 64 -> 32 bits; two rounds always suffice.
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	return uint32(acc)
}

// headerSum is Sum(h, 0) for an IPv4 header, whose length is a multiple of
// 4 and at most 60 bytes: fifteen 32-bit words added in 64 bits cannot
// overflow, so no carry needs handling inside the loop.
func headerSum(h []byte) uint32 {
	var s uint64
	for len(h) >= 4 {
		s += uint64(binary.BigEndian.Uint32(h))
		h = h[4:]
	}
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	return uint32(s)
}

// Fold reduces an unfolded one's-complement sum to 16 bits. The result is 0
// only if sum is 0; any other multiple of 0xffff folds to 0xffff.
func Fold(sum uint32) uint16 {
	// With sum = hi<<16 + lo, sum plus itself rotated by 16 has hi+lo in
	// its upper half, plus the carry out of lo+hi in the lower half: the
	// end-around carry, in one rotate and one add. (hi+lo's own carry
	// out of the word is the same carry, already added: it cannot carry
	// twice.)
	return uint16((sum + bits.RotateLeft32(sum, 16)) >> 16)
}

// Checksum returns the Internet checksum of b with initial as the starting
// partial sum: ^Fold(Sum(b, initial)). This is the complemented value, the
// one to store in a checksum field whose bytes were zero while summing. Over
// a header that already carries a correct checksum it returns 0.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Sum(b, initial))
}

// PseudoHeaderSum returns the one's-complement sum of the IPv4 pseudo-header
// that TCP, UDP and UDP-Lite checksums cover (RFC 793 3.1, RFC 768): source
// and destination address, zero, protocol, and the transport length.
func PseudoHeaderSum(src, dst uint32, proto uint8, length uint16) uint32 {
	return src>>16 + src&0xffff + dst>>16 + dst&0xffff + uint32(proto) + uint32(length)
}

// UpdateChecksum16 returns checksum sum after a 16-bit word it covers changed
// from old to new. RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func UpdateChecksum16(sum, old, new uint16) uint16 {
	return ^Fold(uint32(^sum) + uint32(^old) + uint32(new))
}

// UpdateChecksum32 returns checksum sum after a 32-bit field it covers (an
// address, a sequence number) changed from old to new. The field must start
// at an even offset of the checksummed data.
func UpdateChecksum32(sum uint16, old, new uint32) uint16 {
	return ^Fold(uint32(^sum) +
		(^old)>>16 + (^old)&0xffff +
		new>>16 + new&0xffff)
}

// Delta is a precomputed checksum adjustment: the one's-complement sum of
// the ~m + m' terms of RFC 1624 eqn. 3 for a set of field changes. NAT
// computes one per session direction at creation (addresses, ports) and
// applies it to every packet with ApplyDelta. The zero Delta changes
// nothing. Build Deltas only with the Add methods, which keep the value
// below 2^17 so that applying it cannot overflow.
type Delta uint32

// Add16 returns d extended by a 16-bit word changing from old to new.
func (d Delta) Add16(old, new uint16) Delta {
	return Delta(fold17(uint32(d) + uint32(^old) + uint32(new)))
}

// Add32 returns d extended by a 32-bit field changing from old to new.
func (d Delta) Add32(old, new uint32) Delta {
	return Delta(fold17(uint32(d) + (^old)>>16 + (^old)&0xffff + new>>16 + new&0xffff))
}

// Add returns the combination of d and e, as if every change recorded in e
// had been added to d.
func (d Delta) Add(e Delta) Delta {
	return Delta(fold17(uint32(d) + uint32(e)))
}

// fold17 folds once, enough to keep a Delta below 2^17 given that its
// inputs are.
func fold17(s uint32) uint32 {
	return s>>16 + s&0xffff
}

// ApplyDelta returns checksum sum after the changes recorded in d:
// HC' = ~(~HC + d), folded.
func ApplyDelta(sum uint16, d Delta) uint16 {
	return ^Fold(uint32(^sum) + uint32(d))
}

// ApplyDeltaUDP is ApplyDelta for a UDP checksum (RFC 768): a checksum of 0
// means the sender computed none, so it stays 0; a computed checksum of 0 is
// sent as 0xffff.
func ApplyDeltaUDP(sum uint16, d Delta) uint16 {
	if sum == 0 {
		return 0
	}
	r := ApplyDelta(sum, d)
	if r == 0 {
		r = 0xffff
	}
	return r
}

// updateUDP is UpdateChecksum16 with the rules of ApplyDeltaUDP.
func updateUDP(sum, old, new uint16) uint16 {
	if sum == 0 {
		return 0
	}
	r := UpdateChecksum16(sum, old, new)
	if r == 0 {
		r = 0xffff
	}
	return r
}

// TCPChecksum returns the checksum tcp should carry inside ip: over the
// pseudo-header and the whole segment, with the segment's checksum field
// taken as zero whatever it holds. tcp must be exactly the segment (from
// the TCP header to the end of the IP packet) and at least 18 bytes long.
func TCPChecksum(ip IPv4, tcp []byte) uint16 {
	s := PseudoHeaderSum(ip.SrcAddr(), ip.DstAddr(), ProtoTCP, uint16(len(tcp)))
	s = Sum(tcp[:tcpChecksum], s)
	return Checksum(tcp[tcpChecksum+2:], s)
}

// UDPChecksum returns the checksum udp should carry inside ip, the checksum
// field taken as zero, and 0xffff in place of a computed 0 (RFC 768). udp
// must be exactly the datagram: as long as its Length field says.
func UDPChecksum(ip IPv4, udp []byte) uint16 {
	s := PseudoHeaderSum(ip.SrcAddr(), ip.DstAddr(), ProtoUDP, uint16(len(udp)))
	s = Sum(udp[:udpChecksum], s)
	c := Checksum(udp[udpChecksum+2:], s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// ICMPChecksum returns the checksum icmp should carry: over the whole ICMP
// message (ICMP has no pseudo-header), the checksum field taken as zero.
// icmp must be at least 4 bytes long.
func ICMPChecksum(icmp []byte) uint16 {
	s := Sum(icmp[:icmpChecksum], 0)
	return Checksum(icmp[icmpChecksum+2:], s)
}
