package alg

import (
	"encoding/binary"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// Fragmented control segments. A segment that reaches the NAT as IPv4
// fragments (a sender with path MTU discovery off, behind a link of small
// MTU) is diverted to the ALG fragment by fragment, each translated by
// the NAT, and reassembled here: the ALG keeps each fragment's bytes (the
// frame goes back to the worker, verdict Reassembling) until the datagram
// is whole, then writes it into the frame of the fragment that completed
// it and inspects it as any segment — so its stream position advances
// and an endpoint it announces is rewritten, never passed on as it was.
// Item.FragSize then tells the worker to fragment the datagram again to
// the largest fragment it came in, as Linux, which reassembles before its
// FTP helper (nf_defrag_ipv4), refragments to frag_max_size.
//
// A datagram that cannot be reassembled is dropped whole and counted
// (FragDropped), never forwarded uninspected: one whose data would not fit
// a frame (maxFrame; control segments are small), one with overlapping
// fragments or a second, different end (RFC 5722's rule, which Linux
// applies to IPv4 too), one whose TCP checksum fails once it is whole
// (conntrack finds such a segment invalid), one still incomplete reasmTimeout seconds after its first fragment came, or
// the oldest one in progress when a new one finds every slot taken. The
// fragment that shows it is dropped with DropFragment, the rest of the
// datagram's fragments with it until its slot expires; a fragment wholly
// inside data already received is a duplicate and is ignored, as Linux
// ignores it. Memory is fixed: reasmSlots datagrams of maxFrame bytes,
// allocated with the ALG.

const (
	reasmSlots   = 8  // datagrams in reassembly at once
	reasmTimeout = 10 // seconds a datagram may take to arrive whole (nat.FragTimeout)
	reasmHeader  = 80 // a frame up to its data: Ethernet and 802.1Q (18) and an IPv4 header with options (60)
)

// reasmKey names a datagram being reassembled (RFC 791: source,
// destination, protocol — always TCP here — and identification), as the
// NAT translated it.
type reasmKey struct {
	src, dst uint32
	id       uint16
}

// reasmEntry is one datagram in reassembly.
type reasmEntry struct {
	key     reasmKey
	live    bool
	dead    bool    // dropped: its fragments are dropped until the slot expires
	sess    sessKey // the control session it belongs to, for counting
	expires flowtable.Time
	hdrLen  uint8                     // bytes of hdr: the first fragment's frame up to its data; 0 until it came
	l3      uint8                     // where the IPv4 header starts in hdr
	last    bool                      // the last fragment (More Fragments clear) came; total is known
	total   uint16                    // data bytes of the datagram
	got     uint16                    // data bytes received
	maxFrag uint16                    // the IPv4 length of the largest fragment
	maxEnd  uint16                    // the end of the data received furthest on
	units   [maxFrame / 8 / 64]uint64 // 8-byte units of data received
	hdr     [reasmHeader]byte
	data    [maxFrame]byte
}

// reassembly is the ALG's datagrams in reassembly: a fixed array
// searched linearly (the ALG's path is the slow path, and fragmented
// control segments are rare).
type reassembly struct {
	ents [reasmSlots]reasmEntry
	live int
}

// fragment takes one fragment of a control session's datagram, in it.Buf
// (parsed into p). It reports true when the datagram is now whole: it.Buf
// then holds it, ready to be parsed and inspected. Otherwise it sets
// it.Verdict: Reassembling (the bytes are kept or were a duplicate) or
// DropFragment.
func (f *FTP) fragment(it *Item, p *packet.Parsed, now flowtable.Time) bool {
	r := &f.reasm
	k := reasmKey{src: p.Tuple.SrcAddr, dst: p.Tuple.DstAddr, id: p.Frag.ID}
	e := r.find(k)
	if e == nil {
		e = f.newDatagram(k, keyOf(it.Session, it.Gen), now)
	}
	if e.dead {
		it.Verdict = DropFragment
		return false
	}
	off := int(p.Frag.Offset)
	end := off + p.End - p.L4
	if p.Frag.More {
		end &^= 7 // as Linux: a fragment that is not the last carries whole 8-byte units
	}
	switch {
	case end > len(e.data), end <= off, off == 0 && p.L4 > len(e.hdr), p.Frag.More && e.last && end > int(e.total),
		!p.Frag.More && (e.last && end != int(e.total) || int(e.maxEnd) > end):
		f.dropDatagram(e)
		it.Verdict = DropFragment
		return false
	}
	switch e.add(uint16(off), uint16(end)) {
	case addDuplicate:
		it.Verdict = Reassembling
		return false
	case addBad:
		f.dropDatagram(e)
		it.Verdict = DropFragment
		return false
	}
	copy(e.data[off:end], it.Buf[p.L4:])
	if off == 0 {
		e.hdrLen, e.l3 = uint8(copy(e.hdr[:], it.Buf[:p.L4])), uint8(p.L3)
	}
	if !p.Frag.More {
		e.last, e.total = true, uint16(end)
	}
	e.got += uint16(end - off)
	e.maxFrag = max(e.maxFrag, uint16(p.End-p.L3))
	if !e.last || e.hdrLen == 0 || e.got != e.total {
		it.Verdict = Reassembling
		return false
	}
	size := int(e.hdrLen) + int(e.total)
	if size > cap(it.Buf) {
		f.dropDatagram(e)
		it.Verdict = DropFragment
		return false
	}
	buf := it.Buf[:size]
	copy(buf, e.hdr[:e.hdrLen])
	copy(buf[e.hdrLen:], e.data[:e.total])
	ip := packet.IPv4(buf[e.l3:])
	ip.SetTotalLength(uint16(size - int(e.l3)))
	binary.BigEndian.PutUint16(ip[6:], uint16(ip.Flags()&packet.IPv4DontFragment)<<13)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	if !tcpChecksumOK(ip, buf[int(e.l3)+ip.HeaderLen():]) {
		// Bytes that were never the sender's (a fragment forged or
		// corrupted on the way): the receiver would drop the segment,
		// and conntrack finds it invalid; the ALG must not read it, nor
		// give it a valid checksum by rewriting it.
		f.dropDatagram(e)
		it.Verdict = DropFragment
		return false
	}
	it.Buf, it.FragSize = buf, e.maxFrag
	f.countFrag(e.sess, cFragReassembled)
	r.free(e)
	return true
}

// tcpChecksumOK reports whether segment tcp carries the right checksum
// inside ip (0 and 0xffff, the two zeros of ones' complement, alike).
func tcpChecksumOK(ip packet.IPv4, tcp []byte) bool {
	if len(tcp) < packet.TCPMinLen {
		return false
	}
	want, got := packet.TCPChecksum(ip, tcp), binary.BigEndian.Uint16(tcp[16:])
	return want == got || want|got == 0xffff && (want == 0 || got == 0)
}

// newDatagram starts reassembling datagram k of control session s,
// taking the slot of the oldest datagram in reassembly when every slot
// is in use (dropping that datagram).
func (f *FTP) newDatagram(k reasmKey, s sessKey, now flowtable.Time) *reasmEntry {
	r := &f.reasm
	var e *reasmEntry
	for i := range r.ents {
		c := &r.ents[i]
		if !c.live {
			e = c
			break
		}
		if e == nil || int32(c.expires-e.expires) < 0 {
			e = c
		}
	}
	if e.live {
		if !e.dead {
			f.countFrag(e.sess, cFragDropped)
		}
		r.free(e)
	}
	e.key, e.live, e.dead, e.sess, e.expires = k, true, false, s, now+reasmTimeout
	e.hdrLen, e.last, e.total, e.got, e.maxFrag, e.maxEnd, e.units = 0, false, 0, 0, 0, 0, [len(e.units)]uint64{}
	r.live++
	return e
}

// find returns the live entry of datagram k, or nil.
func (r *reassembly) find(k reasmKey) *reasmEntry {
	for i := range r.ents {
		if e := &r.ents[i]; e.live && e.key == k {
			return e
		}
	}
	return nil
}

func (r *reassembly) free(e *reasmEntry) {
	e.live = false
	r.live--
}

// expireFragments drops the datagrams still incomplete reasmTimeout
// seconds after their first fragment came.
func (f *FTP) expireFragments(now flowtable.Time) {
	r := &f.reasm
	for i := range r.ents {
		if e := &r.ents[i]; e.live && int32(e.expires-now) < 0 {
			if !e.dead {
				f.countFrag(e.sess, cFragDropped)
			}
			r.free(e)
		}
	}
}

// dropDatagram drops a datagram in reassembly: its slot stays, dead, so
// that the datagram's later fragments are dropped too, until it expires.
func (f *FTP) dropDatagram(e *reasmEntry) {
	e.dead = true
	f.countFrag(e.sess, cFragDropped)
}

// countFrag counts a datagram of control session k under c: in the
// session's scopes when the ALG holds its state, else in the total and
// the session's mapping entry.
func (f *FTP) countFrag(k sessKey, c counter) {
	if ss := f.sessions[k]; ss != nil {
		f.count(ss, c, 1)
		return
	}
	f.stats.total[c].Add(1)
	var s flowtable.Session
	if f.table.Read(uint32(k>>32), uint32(k), &s) {
		f.stats.entry(s.MapEntry)[c].Add(1)
	}
}

// Outcomes of adding a fragment's range to a datagram.
const (
	addNew       = iota // new data
	addDuplicate        // wholly inside data already received
	addBad              // overlaps data already received in part
)

// add records data bytes [lo, hi) as received, lo a multiple of 8. Every
// fragment but the last starts and ends on an 8-byte unit, and the last
// covers the unit it ends in from its start, so two fragments share a
// unit exactly when they share a byte: the bitmap of units tells
// overlaps as the bytes would.
func (e *reasmEntry) add(lo, hi uint16) int {
	first, last := int(lo)/8, (int(hi)+7)/8
	set := 0
	for u := first; u < last; u++ {
		if e.units[u/64]&(1<<(u%64)) != 0 {
			set++
		}
	}
	switch set {
	case 0:
	case last - first:
		return addDuplicate
	default:
		return addBad
	}
	for u := first; u < last; u++ {
		e.units[u/64] |= 1 << (u % 64)
	}
	e.maxEnd = max(e.maxEnd, hi)
	return addNew
}
