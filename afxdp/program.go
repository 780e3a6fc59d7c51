package afxdp

import (
	"github.com/cilium/ebpf/asm"
)

// ProgramName is the kernel name of fastnat's XDP program. An attached
// program with this name that no running fastnat holds is stale (left by a
// killed process that attached it without a link) and is replaced.
const ProgramName = "fastnat_xdp"

// XDP return codes.
const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

// Offsets into the packet and into struct xdp_md.
const (
	xdpMDData         = 0
	xdpMDDataEnd      = 4
	xdpMDRxQueueIndex = 16

	ethLen        = 14
	ethTypeOff    = 12
	vlanLen       = 4
	ipv4MinLen    = 20
	ipv4SrcOff    = ethLen + 12
	ipv4DstOff    = ethLen + 16
	ipv4VerIHLOff = ethLen
)

// Ether types as a little-endian 16-bit load of the big-endian wire bytes
// sees them.
const (
	leIPv4  = 0x0008 // 0x0800
	leVLAN  = 0x0081 // 0x8100 (802.1Q)
	leQinQ  = 0xa888 // 0x88a8 (802.1ad)
	xskFall = xdpPass
)

// programMaps are the file descriptors a program refers to. Maps a role does
// not use are -1.
type programMaps struct {
	xsks   int // XSKMAP: rx queue index → AF_XDP socket
	public int // hash: IPv4 address (wire order) → 1
	inside int // LPM trie: {prefix length, IPv4 address} → 1
	local  int // hash: IPv4 address (wire order) → 1
}

// programInstructions returns the XDP filter for role. In C it would read:
//
//	eth = data; if (eth + 1 > data_end) return XDP_PASS; // with the IPv4 header
//	if (eth->h_dest[0] & 1) return XDP_PASS; // link-layer broadcast or multicast
//	skip one 802.1Q or 802.1ad tag
//	if (ethertype != IPv4 || ip->version != 4) return XDP_PASS;
//	outside: if (!lookup(public, ip->daddr)) return XDP_PASS;
//	inside:  if (!lookup(inside, {32, ip->saddr}) || lookup(local, ip->daddr)) return XDP_PASS;
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// The XDP_PASS in the flags of bpf_redirect_map is the action when the
// queue has no socket (a queue no worker serves, or a worker that is
// starting or stopping): such packets reach the kernel instead of being
// dropped. Hand-written so that CI needs no clang.
func programInstructions(role Role, m programMaps) asm.Instructions {
	const (
		pass     = "pass"
		l3       = "l3"
		vlan     = "vlan"
		redirect = "redirect"
	)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, xdpMDData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethLen+ipv4MinLen),
		asm.JGT.Reg(asm.R4, asm.R3, pass),
		// A link-layer broadcast or multicast (the group bit of the
		// destination MAC) is for the host, never for translation.
		asm.LoadMem(asm.R5, asm.R2, 0, asm.Byte),
		asm.JSet.Imm(asm.R5, 1, pass),
		asm.LoadMem(asm.R5, asm.R2, ethTypeOff, asm.Half),
		asm.JEq.Imm(asm.R5, leVLAN, vlan),
		asm.JEq.Imm(asm.R5, leQinQ, vlan),
		asm.Ja.Label(l3),

		// One VLAN tag: the real ether type follows it, and the IPv4
		// header starts four bytes later; move the packet pointer so the
		// offsets below hold for both.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol(vlan),
		asm.Add.Imm(asm.R4, ethLen+vlanLen+ipv4MinLen),
		asm.JGT.Reg(asm.R4, asm.R3, pass),
		asm.LoadMem(asm.R5, asm.R2, ethTypeOff+vlanLen, asm.Half),
		asm.Add.Imm(asm.R2, vlanLen),

		asm.JNE.Imm(asm.R5, leIPv4, pass).WithSymbol(l3),
		asm.LoadMem(asm.R4, asm.R2, ipv4VerIHLOff, asm.Byte),
		asm.And.Imm(asm.R4, 0xf0),
		asm.JNE.Imm(asm.R4, 0x40, pass),
	}
	switch role {
	case Outside:
		insns = append(insns,
			asm.LoadMem(asm.R7, asm.R2, ipv4DstOff, asm.Word),
			asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
			asm.LoadMapPtr(asm.R1, m.public),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, pass),
		)
	case Inside:
		insns = append(insns,
			asm.LoadMem(asm.R7, asm.R2, ipv4SrcOff, asm.Word),
			asm.LoadMem(asm.R8, asm.R2, ipv4DstOff, asm.Word),
			// LPM key {u32 prefixlen = 32; u8 addr[4]} at fp-8.
			asm.StoreImm(asm.RFP, -8, 32, asm.Word),
			asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
			asm.LoadMapPtr(asm.R1, m.inside),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, pass),
			asm.StoreMem(asm.RFP, -12, asm.R8, asm.Word),
			asm.LoadMapPtr(asm.R1, m.local),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -12),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, pass),
		)
	default:
		panic("afxdp: program for unknown role")
	}
	return append(insns,
		asm.LoadMem(asm.R2, asm.R6, xdpMDRxQueueIndex, asm.Word).WithSymbol(redirect),
		asm.LoadMapPtr(asm.R1, m.xsks),
		asm.Mov.Imm(asm.R3, xskFall),
		asm.FnRedirectMap.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol(pass),
		asm.Return(),
	)
}
