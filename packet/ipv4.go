package packet

import (
	"encoding/binary"
	"slices"
	"time"
)

// IPv4 header (RFC 791, 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipVerIHL    = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProto     = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IPv4 flag bits as returned by IPv4.Flags.
const (
	IPv4DontFragment  uint8 = 0x2
	IPv4MoreFragments uint8 = 0x1
)

// IPv4 is a view of an IPv4 packet, from the start of its header. Accessors
// do not bounds-check: Parse establishes that the header (IHL) and, for
// Payload, the whole packet (Total Length) are present. Setters of covered
// fields keep the header checksum right by incremental update; they do not
// touch transport checksums, which cover the addresses through the
// pseudo-header and are the caller's business.
type IPv4 []byte

// Version returns the IP version field (4 for a packet Parse accepted).
func (b IPv4) Version() uint8 { return b[ipVerIHL] >> 4 }

// IHL returns the Internet Header Length field, in 32-bit words.
func (b IPv4) IHL() uint8 { return b[ipVerIHL] & 0xf }

// HeaderLen returns the header length in bytes (IHL*4).
func (b IPv4) HeaderLen() int { return int(b[ipVerIHL]&0xf) * 4 }

// TOS returns the Type of Service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipTOS] }

// TotalLength returns the length of the packet, header included, in bytes.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipTotalLen:]) }

// SetTotalLength sets the total length and updates the header checksum.
func (b IPv4) SetTotalLength(n uint16) {
	old := b.TotalLength()
	binary.BigEndian.PutUint16(b[ipTotalLen:], n)
	b.SetChecksum(UpdateChecksum16(b.Checksum(), old, n))
}

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// Flags returns the three flag bits (IPv4DontFragment, IPv4MoreFragments).
func (b IPv4) Flags() uint8 { return b[ipFlagsFrag] >> 5 }

// FragOffset returns the fragment offset in bytes (the field times 8).
func (b IPv4) FragOffset() uint16 { return binary.BigEndian.Uint16(b[ipFlagsFrag:]) << 3 }

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// SetTTL sets the Time to Live and updates the header checksum.
func (b IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(b[ipTTL:])
	b[ipTTL] = ttl
	b.SetChecksum(UpdateChecksum16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipTTL:])))
}

// DecTTL decrements the Time to Live, updates the header checksum and
// returns the new TTL. A TTL of 0 is left alone (and 0 returned): a router
// checks for TTL <= 1 before forwarding (RFC 1812 5.3.1), and wrapping to
// 255 would resurrect the packet.
func (b IPv4) DecTTL() uint8 {
	ttl := b[ipTTL]
	if ttl == 0 {
		return 0
	}
	b[ipTTL] = ttl - 1
	// TTL is the high byte of its 16-bit word, so the word drops by 0x0100.
	// RFC 1624 eqn. 3 with m' = m - 0x100: ~m + m' = 0xffff - 0x100.
	b.SetChecksum(^Fold(uint32(^b.Checksum()) + 0xfeff))
	return ttl - 1
}

// Protocol returns the transport protocol number (ProtoTCP, ...).
func (b IPv4) Protocol() uint8 { return b[ipProto] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[ipChecksum:], c) }

// SrcAddr returns the source address in host byte order.
func (b IPv4) SrcAddr() uint32 { return binary.BigEndian.Uint32(b[ipSrc:]) }

// DstAddr returns the destination address in host byte order.
func (b IPv4) DstAddr() uint32 { return binary.BigEndian.Uint32(b[ipDst:]) }

// SetSrcAddr sets the source address and updates the header checksum (not
// the transport checksum).
func (b IPv4) SetSrcAddr(a uint32) {
	old := b.SrcAddr()
	binary.BigEndian.PutUint32(b[ipSrc:], a)
	b.SetChecksum(UpdateChecksum32(b.Checksum(), old, a))
}

// SetDstAddr sets the destination address and updates the header checksum
// (not the transport checksum).
func (b IPv4) SetDstAddr(a uint32) {
	old := b.DstAddr()
	binary.BigEndian.PutUint32(b[ipDst:], a)
	b.SetChecksum(UpdateChecksum32(b.Checksum(), old, a))
}

// SetSrcAddrRaw sets the source address and leaves every checksum alone,
// for callers that patch checksums with a precomputed Delta.
func (b IPv4) SetSrcAddrRaw(a uint32) { binary.BigEndian.PutUint32(b[ipSrc:], a) }

// SetDstAddrRaw sets the destination address and leaves every checksum
// alone, for callers that patch checksums with a precomputed Delta.
func (b IPv4) SetDstAddrRaw(a uint32) { binary.BigEndian.PutUint32(b[ipDst:], a) }

// Options returns the options and padding between the fixed header and
// HeaderLen.
func (b IPv4) Options() []byte { return b[IPv4MinLen:b.HeaderLen()] }

// Payload returns the transport data: from HeaderLen to TotalLength.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLength()] }

// CalculateChecksum returns the checksum the header should carry, computed
// over HeaderLen bytes with the checksum field taken as zero.
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLen()
	s := Sum(b[:ipChecksum], 0)
	return Checksum(b[ipChecksum+2:hl], s)
}

// IsChecksumValid reports whether the header checksum is correct: the
// one's-complement sum of the header, checksum included, is 0xffff.
func (b IPv4) IsChecksumValid() bool { return Fold(headerSum(b[:b.HeaderLen()])) == 0xffff }

// IP options the NAT acts on (RFC 791, RFC 2113).
const (
	OptEnd         = 0   // end of option list
	OptNOP         = 1   // no operation
	OptRecordRoute = 7   // record route
	OptTimestamp   = 68  // internet timestamp
	OptLSRR        = 131 // loose source and record route
	OptSSRR        = 137 // strict source and record route
	OptRouterAlert = 148 // router alert (RFC 2113)
)

// Timestamp option flags (RFC 791): what each entry holds.
const (
	TSOnly     = 0 // timestamps only
	TSAndAddr  = 1 // each timestamp preceded by the address of its router
	TSPrespec  = 3 // the addresses are given; only those routers fill in
	tsOverflow = 15
)

// CheckOptions checks the header's options as the kernel's
// ip_options_compile does for a packet it receives. problem is the
// offset from the start of the header of the byte a Parameter Problem
// about them points to (RFC 792), or 0 when they are well formed: an
// option whose length runs past the options or is under 2; a second
// Record Route or Timestamp option, or a second source route; a Record
// Route or source route shorter than 3 bytes or with a pointer under 4,
// a Record Route or Timestamp whose pointer leaves room for less than a
// whole entry; a Timestamp shorter than 4 bytes, with a pointer under 5,
// or full with its overflow counter at 15 already; a Router Alert shorter
// than 4 bytes. Other options are not looked into. sourceRouted reports
// a well-formed loose or strict source route, which the kernel drops
// (silently) unless accept_source_route is set on all interfaces, as it
// is not by default. A header without options has neither.
func (b IPv4) CheckOptions() (problem int, sourceRouted bool) {
	opts := b.Options()
	var rr, ts, srr bool
	for i, n := nextOption(opts, 0); ; i, n = nextOption(opts, i+n) {
		at := IPv4MinLen + i // the option's offset in the header
		switch {
		case n == 0:
			return 0, srr
		case n < 0:
			return at, false
		}
		o := opts[i : i+n]
		switch o[0] {
		case OptRecordRoute:
			switch {
			case rr:
				return at, false
			case n < 3:
				return at + 1, false
			case o[2] < 4, int(o[2]) <= n && int(o[2])+3 > n:
				return at + 2, false
			}
			rr = true
		case OptTimestamp:
			if ts {
				return at, false
			}
			if p := tsProblem(o); p != 0 {
				return at + p, false
			}
			ts = true
		case OptLSRR, OptSSRR:
			switch {
			case n < 3:
				return at + 1, false
			case o[2] < 4:
				return at + 2, false
			case srr:
				return at, false
			}
			srr = true
		case OptRouterAlert:
			if n < 4 {
				return at + 1, false
			}
		}
	}
}

// tsProblem is CheckOptions for the first Timestamp option o: the
// offset in o of the byte at fault, or 0.
func tsProblem(o []byte) int {
	n := len(o)
	switch {
	case n < 4:
		return 1
	case o[2] < 5:
		return 2
	}
	ptr := int(o[2])
	if ptr > n { // full
		if o[3]&0xf != TSPrespec && o[3]>>4 == tsOverflow {
			return 3
		}
		return 0
	}
	entry := 4
	if f := o[3] & 0xf; f == TSAndAddr || f == TSPrespec {
		entry = 8
	}
	if ptr+entry-1 > n {
		return 2
	}
	return 0
}

// ForwardOptions does to the header's options what the kernel does to a
// packet it forwards (ip_options_compile on receipt, ip_forward_options
// on the way out), the options having passed CheckOptions: a Record
// Route option with room records out, the address of the interface the
// packet leaves by; a Timestamp option with room records ms, the time in
// milliseconds since midnight UT — after in, the address of the
// interface it arrived by (toward its sender), when its flag asks for
// addresses, or, when they are prespecified, only if the next address is
// one of own (the router's addresses) — and a full one counts the router
// in its overflow field (not a prespecified one); the bytes after an End
// of Options are set to End. Each entry moves the option's pointer on.
// It reports whether the header changed; then the caller fixes its
// checksum.
func (b IPv4) ForwardOptions(out, in, ms uint32, own []uint32) bool {
	opts := b.Options()
	changed := false
	for i, n := nextOption(opts, 0); ; i, n = nextOption(opts, i+n) {
		switch {
		case n == 0:
			for j := i + 1; j < len(opts); j++ { // after End
				if opts[j] != OptEnd {
					opts[j], changed = OptEnd, true
				}
			}
			return changed
		case n < 0:
			return changed
		}
		o := opts[i : i+n]
		switch o[0] {
		case OptRecordRoute:
			changed = recordRoute(o, out) || changed
		case OptTimestamp:
			changed = timestamp(o, in, ms, own) || changed
		}
	}
}

// nextOption finds the option at or after opts[i], past NOPs: its offset
// i and length n. n is 0 at an End of Options (or the options' end), -1
// when the option's length byte is missing or out of bounds. IPv4 (RFC
// 791) and TCP (RFC 9293 §3.2) lay options out alike, End 0 and NOP 1,
// so both walk with it.
func nextOption(opts []byte, i int) (at, n int) {
	for i < len(opts) && opts[i] == OptNOP {
		i++
	}
	switch {
	case i >= len(opts) || opts[i] == OptEnd:
		return i, 0
	case i+1 >= len(opts):
		return i, -1
	}
	n = int(opts[i+1])
	if n < 2 || i+n > len(opts) {
		return i, -1
	}
	return i, n
}

// recordRoute records addr in the Record Route option o when it has
// room, and reports whether it did.
func recordRoute(o []byte, addr uint32) bool {
	if len(o) < 3 {
		return false // malformed: no pointer
	}
	ptr := int(o[2]) // 1-based offset of the next free slot
	if ptr < 4 || ptr+3 > len(o) {
		return false // full (or malformed)
	}
	binary.BigEndian.PutUint32(o[ptr-1:], addr)
	o[2] += 4
	return true
}

// timestamp is ForwardOptions for the Timestamp option o.
func timestamp(o []byte, addr, ms uint32, own []uint32) bool {
	if len(o) < 4 || o[2] < 5 {
		return false // malformed
	}
	ptr, flag := int(o[2]), o[3]&0xf
	if ptr > len(o) { // full: count the router, as RFC 791 asks
		if flag == TSPrespec || o[3]>>4 == tsOverflow {
			return false
		}
		o[3] += 1 << 4
		return true
	}
	switch flag {
	case TSOnly:
		if ptr+3 > len(o) {
			return false
		}
		binary.BigEndian.PutUint32(o[ptr-1:], ms)
		o[2] += 4
	case TSAndAddr:
		if ptr+7 > len(o) {
			return false
		}
		binary.BigEndian.PutUint32(o[ptr-1:], addr)
		binary.BigEndian.PutUint32(o[ptr+3:], ms)
		o[2] += 8
	case TSPrespec:
		if ptr+7 > len(o) || !slices.Contains(own, binary.BigEndian.Uint32(o[ptr-1:])) {
			return false
		}
		binary.BigEndian.PutUint32(o[ptr+3:], ms)
		o[2] += 8
	default:
		return false // a flag RFC 791 does not define: left alone
	}
	return true
}

// EchoOptions does to the options of an echo request addressed to addr,
// turned into its reply in place, what the kernel's stack does when it
// answers one: on receipt (ip_options_compile) a Record Route option
// with room records addr and a Timestamp option with room is stamped as
// ForwardOptions stamps it with addr as the arriving interface (a full
// one counts the host in its overflow); the reply then carries only those
// two options (ip_options_echo: NOPs and other options are not echoed),
// Record Route first, padded with End to the request's options' length,
// and each that was filled in on receipt and still has room is filled in
// again for the reply, from addr (ip_options_build). The options must
// have passed CheckOptions. It reports whether the header changed; then
// the caller fixes its checksum.
func (b IPv4) EchoOptions(addr, ms uint32, own []uint32) bool {
	opts := b.Options()
	var rr, ts []byte
	for i, n := nextOption(opts, 0); n > 0; i, n = nextOption(opts, i+n) {
		switch opts[i] {
		case OptRecordRoute:
			rr = opts[i : i+n]
		case OptTimestamp:
			ts = opts[i : i+n]
		}
	}
	rrAgain := len(rr) >= 3 && recordRoute(rr, addr)
	tsAgain := false
	if len(ts) >= 4 {
		full := int(ts[2]) > len(ts)
		// Full, the call counts the host in the overflow field.
		tsAgain = timestamp(ts, addr, ms, own) && !full
	}
	var echo [IPv4MaxOptions]byte // the reply's options, End-padded
	k := copy(echo[:], rr)
	r := echo[:k]
	k += copy(echo[k:], ts)
	t := echo[len(r):k]
	if rrAgain {
		recordRoute(r, addr)
	}
	if tsAgain && int(t[2]) <= len(t) { // full now: no overflow counted on answering
		timestamp(t, addr, ms, own)
	}
	if string(opts) == string(echo[:len(opts)]) {
		return false
	}
	copy(opts, echo[:len(opts)])
	return true
}

// Timestamp is t as an RFC 791 timestamp: milliseconds since midnight
// UT, as the kernel's inet_current_timestamp has it.
func Timestamp(t time.Time) uint32 {
	return uint32(t.Unix()%86400)*1000 + uint32(t.Nanosecond()/1e6)
}

// IPv4MaxOptions is the most option bytes an IPv4 header holds.
const IPv4MaxOptions = 40
