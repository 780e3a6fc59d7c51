package packet

import "encoding/binary"

// Fragmentation of IPv4 packets to fit a link's MTU (RFC 791 §3.2, "An
// Example Fragmentation Procedure"; RFC 1812 §5.2.6). The first fragment
// keeps the whole header; later ones repeat only the options whose
// "copied" flag is set (RFC 791 §3.1: security, source routes; not record
// route or timestamps). Every fragment but the last carries a multiple of 8
// data bytes, since the offset field counts 8-byte units. A packet that is
// itself a fragment is split the same way, its fragments' offsets counting
// from its own and the last keeping its More Fragments flag.

// ipOptCopied is the option-type bit that says "copy into all fragments".
const ipOptCopied = 0x80

// FragmentPlan is how an IPv4 packet is split to fit an MTU.
type FragmentPlan struct {
	Count      int // fragments
	First      int // data bytes in the first fragment
	Rest       int // data bytes in each later fragment (the last may carry fewer)
	RestHeader int // header length of the later fragments
	opts       [40]byte
}

// PlanFragments works out how ip (a whole packet as Parse accepted it)
// splits to fit mtu bytes of IP. ok is false when mtu leaves no room for 8
// data bytes after the header, so the packet cannot be fragmented to fit.
func PlanFragments(ip IPv4, mtu int) (pl FragmentPlan, ok bool) {
	hl := ip.HeaderLen()
	data := int(ip.TotalLength()) - hl
	n := copiedOptions(pl.opts[:], ip[IPv4MinLen:hl])
	pl.RestHeader = IPv4MinLen + n
	pl.First = (mtu - hl) &^ 7
	pl.Rest = (mtu - pl.RestHeader) &^ 7
	if pl.First < 8 || pl.Rest < 8 {
		return pl, false
	}
	pl.Count = 1
	if data > pl.First {
		pl.Count += (data - pl.First + pl.Rest - 1) / pl.Rest
	}
	return pl, true
}

// copiedOptions writes to dst the options of opts that every fragment
// repeats, padded with End of Option List to a multiple of 4, and returns
// their length. A malformed option list ends the copy.
func copiedOptions(dst, opts []byte) int {
	n := 0
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // End of Option List
			break
		}
		l := 1
		if t != 1 { // not No Operation: type, length, data
			if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
				break
			}
			l = int(opts[i+1])
		}
		if t&ipOptCopied != 0 {
			n += copy(dst[n:], opts[i:i+l])
		}
		i += l
	}
	for n&3 != 0 {
		dst[n] = 0
		n++
	}
	return n
}

// WriteFragment writes fragment k (1 ≤ k < pl.Count) of ip into dst, from
// its IP header on, and returns its length; dst must hold
// pl.RestHeader+pl.Rest bytes. Call it for every later fragment before
// FirstFragment cuts ip down.
func WriteFragment(dst []byte, ip IPv4, pl *FragmentPlan, k int) int {
	hl := ip.HeaderLen()
	data := ip[hl:ip.TotalLength()]
	start := pl.First + (k-1)*pl.Rest
	end := min(start+pl.Rest, len(data))
	h := IPv4(dst[:pl.RestHeader])
	copy(h, ip[:IPv4MinLen])
	copy(h[IPv4MinLen:], pl.opts[:pl.RestHeader-IPv4MinLen])
	h[ipVerIHL] = 0x40 | uint8(pl.RestHeader/4)
	n := copy(dst[pl.RestHeader:], data[start:end])
	last := end == len(data)
	setFragment(h, pl.RestHeader+n, ip.FragOffset()+uint16(start), !last || ip.Flags()&IPv4MoreFragments != 0)
	return pl.RestHeader + n
}

// FirstFragment cuts ip down to its first fragment, in place, and returns
// the fragment's length.
func FirstFragment(ip IPv4, pl *FragmentPlan) int {
	hl := ip.HeaderLen()
	n := hl + pl.First
	setFragment(ip[:hl], n, ip.FragOffset(), true)
	return n
}

// setFragment sets the total length and the fragment fields of a header
// (Don't Fragment clear) and recomputes its checksum.
func setFragment(h IPv4, total int, off uint16, more bool) {
	binary.BigEndian.PutUint16(h[ipTotalLen:], uint16(total))
	ff := off >> 3
	if more {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(h[ipFlagsFrag:], ff)
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
}
