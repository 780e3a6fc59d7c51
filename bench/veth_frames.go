package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/fastnat/fastnat/packet"
)

// The generator's traffic: UDP from an inside host to the outside client,
// flows told apart by their ports. Flow i of n uses source port
// vethSportBase + i%s and destination port vethDportBase + i/s, where s is
// at most vethMaxSports, so that no more than 16,384 inside ports need a
// binding: both the kernel (which keeps the source port when the reply
// tuple stays unique) and fastnat's endpoint-independent mapping fit 65,536
// flows into one public address's 64,512 ports.
const (
	vethSportBase = 1024
	vethDportBase = 20000
	vethMaxSports = 16384
	// vethMaxFlows keeps destination ports below the probe's.
	vethMaxFlows = vethMaxSports * 2048
)

// The probe flow: its own ports, so the sink passes it to the client's
// UDP socket instead of counting and dropping it.
const (
	vethProbeSport = 1000
	vethProbeDport = 999
)

// Frame layout (Ethernet, IPv4 without options, UDP).
const (
	vethEthLen   = 14
	vethIPOff    = vethEthLen
	vethUDPOff   = vethEthLen + 20
	vethDataOff  = vethUDPOff + 8
	vethMinFrame = 64   // on the wire, with the 4-byte FCS
	vethMaxFrame = 1518 // 1500-byte IPv4 packet plus Ethernet header and FCS
	vethFCS      = 4
)

// probe payload: magic, sequence number, send time (Unix nanoseconds).
const (
	vethProbeMagic = 0x464e5450 // "FNTP"
	vethProbeLen   = 16
)

// vethFlow is one flow's per-packet fields: the ports and the UDP checksum
// that the template's bytes plus these ports add up to.
type vethFlow struct {
	sport, dport, csum uint16
}

// vethFrames is the generator's precomputed frame set: one template for
// the frame size and the per-flow fields patched into it per packet.
type vethFrames struct {
	template []byte
	flows    []vethFlow // in send order (a fixed random permutation)
	base     uint32     // UDP checksum sum of the template with ports and checksum zero
}

// vethFrameSpec describes the frames of one case.
type vethFrameSpec struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       netip.Addr
	Size           int // on the wire, with FCS: 64 to 1518
	Flows          int
	Seed           uint64
}

// flowPorts returns the ports of flow i of n.
func flowPorts(i, n int) (sport, dport uint16) {
	s := min(n, vethMaxSports)
	return uint16(vethSportBase + i%s), uint16(vethDportBase + i/s)
}

// newVethFrames builds the template and the per-flow fields of spec.
func newVethFrames(spec vethFrameSpec) (*vethFrames, error) {
	if spec.Size < vethMinFrame || spec.Size > vethMaxFrame {
		return nil, fmt.Errorf("frame size %d: %w (want %d to %d)", spec.Size, ErrVethConfig, vethMinFrame, vethMaxFrame)
	}
	if spec.Flows < 1 || spec.Flows > vethMaxFlows {
		return nil, fmt.Errorf("%d flows: %w (want 1 to %d)", spec.Flows, ErrVethConfig, vethMaxFlows)
	}
	if !spec.Src.Is4() || !spec.Dst.Is4() {
		return nil, fmt.Errorf("addresses %v → %v: %w (want IPv4)", spec.Src, spec.Dst, ErrVethConfig)
	}
	n := spec.Size - vethFCS
	b := make([]byte, n)
	copy(b[0:6], spec.DstMAC[:])
	copy(b[6:12], spec.SrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := packet.IPv4(b[vethIPOff:vethUDPOff])
	ip[0], ip[8], ip[9] = 0x45, 64, packet.ProtoUDP
	binary.BigEndian.PutUint16(ip[2:], uint16(n-vethIPOff))
	src, dst := spec.Src.As4(), spec.Dst.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	ip.SetChecksum(ip.CalculateChecksum())
	udp := b[vethUDPOff:]
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	// The payload is zero: the generator zeroes the probe's bytes of every
	// normal frame, so a frame last used for a probe carries the template
	// again.
	f := &vethFrames{template: b}
	f.base = packet.Sum(udp, packet.PseudoHeaderSum(binary.BigEndian.Uint32(src[:]),
		binary.BigEndian.Uint32(dst[:]), packet.ProtoUDP, uint16(len(udp))))
	f.flows = make([]vethFlow, spec.Flows)
	for i := range f.flows {
		sp, dp := flowPorts(i, spec.Flows)
		f.flows[i] = vethFlow{sport: sp, dport: dp, csum: f.checksum(sp, dp)}
	}
	r := rand.New(rand.NewPCG(spec.Seed, 0x66617374))
	r.Shuffle(len(f.flows), func(i, j int) { f.flows[i], f.flows[j] = f.flows[j], f.flows[i] })
	return f, nil
}

// checksum returns the UDP checksum of the template with ports sp and dp
// (RFC 768: a computed zero is sent as all ones).
func (f *vethFrames) checksum(sp, dp uint16) uint16 {
	c := ^packet.Fold(f.base + uint32(sp) + uint32(dp))
	if c == 0 {
		c = 0xffff
	}
	return c
}

// put writes flow fl into frame b, a copy of the template.
func (f *vethFrames) put(b []byte, fl vethFlow) {
	binary.BigEndian.PutUint16(b[vethUDPOff:], fl.sport)
	binary.BigEndian.PutUint16(b[vethUDPOff+2:], fl.dport)
	binary.BigEndian.PutUint16(b[vethUDPOff+6:], fl.csum)
	binary.NativeEndian.PutUint64(b[vethDataOff:], 0)
	binary.NativeEndian.PutUint64(b[vethDataOff+8:], 0)
}

// putProbe writes probe seq, sent at unixNano, into frame b, a copy of the
// template, with a fully computed UDP checksum.
func (f *vethFrames) putProbe(b []byte, seq uint32, unixNano int64) {
	binary.BigEndian.PutUint16(b[vethUDPOff:], vethProbeSport)
	binary.BigEndian.PutUint16(b[vethUDPOff+2:], vethProbeDport)
	d := b[vethDataOff:]
	binary.BigEndian.PutUint32(d[0:], vethProbeMagic)
	binary.BigEndian.PutUint32(d[4:], seq)
	binary.BigEndian.PutUint64(d[8:], uint64(unixNano))
	ip := packet.IPv4(b[vethIPOff:vethUDPOff])
	binary.BigEndian.PutUint16(b[vethUDPOff+6:], packet.UDPChecksum(ip, b[vethUDPOff:]))
}

// parseProbe reads a probe payload (what the client's socket receives).
func parseProbe(p []byte) (seq uint32, unixNano int64, ok bool) {
	if len(p) < vethProbeLen || binary.BigEndian.Uint32(p) != vethProbeMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(p[4:]), int64(binary.BigEndian.Uint64(p[8:])), true
}
