package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/fastnat/fastnat/internal/testnet"
)

// XDP return codes.
const (
	vethXDPDrop = 1
	vethXDPPass = 2
)

// vethSinkCounts is the sink's per-CPU map value: every IPv4 UDP frame it
// dropped, and of those the ones from the expected source address (the
// NAT's public address: proof that the DUT translated them) with their
// bytes.
type vethSinkCounts struct {
	All, Good, GoodBytes uint64
}

// vethSinkInstructions returns the sink's XDP program. In C it would read:
//
//	if (data + 42 > data_end) return XDP_PASS;
//	if (eth->type != IPv4 || ip->ver_ihl != 0x45 || ip->proto != UDP) return XDP_PASS;
//	if (udp->dest == htons(probe)) return XDP_PASS;   // to the client's socket
//	c = lookup(counts, 0); if (!c) return XDP_DROP;
//	c->all++;
//	if (ip->saddr == want) { c->good++; c->good_bytes += data_end - data; }
//	return XDP_DROP;
//
// Everything else (ARP above all, so the router can resolve the client)
// passes to the client's kernel. The counters are per CPU, so the
// increments need no atomics.
func vethSinkInstructions(counts int, want netip.Addr, probePort uint16) asm.Instructions {
	const pass, drop = "pass", "drop"
	var wantLE, probeLE [4]byte
	a := want.As4()
	copy(wantLE[:], a[:]) // the wire bytes, as a little-endian load sees them
	binary.BigEndian.PutUint16(probeLE[:], probePort)
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, vethDataOff),
		asm.JGT.Reg(asm.R4, asm.R3, pass),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0008, pass), // 0x0800 as a little-endian load sees it
		asm.LoadMem(asm.R5, asm.R2, vethIPOff, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, pass),
		asm.LoadMem(asm.R5, asm.R2, vethIPOff+9, asm.Byte),
		asm.JNE.Imm(asm.R5, 17, pass),
		asm.LoadMem(asm.R5, asm.R2, vethUDPOff+2, asm.Half),
		asm.JEq.Imm(asm.R5, int32(binary.LittleEndian.Uint16(probeLE[:])), pass),
		asm.LoadMem(asm.R6, asm.R2, vethIPOff+12, asm.Word), // saddr
		asm.Mov.Reg(asm.R7, asm.R3),
		asm.Sub.Reg(asm.R7, asm.R2), // frame length
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, counts),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, drop),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.JNE.Imm32(asm.R6, int32(binary.LittleEndian.Uint32(wantLE[:])), drop),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 16, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R7),
		asm.StoreMem(asm.R0, 16, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, vethXDPDrop).WithSymbol(drop),
		asm.Return(),
		asm.Mov.Imm(asm.R0, vethXDPPass).WithSymbol(pass),
		asm.Return(),
	}
}

// vethSink is the XDP program counting at the client's ingress.
type vethSink struct {
	counts *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	mode   string
}

// newVethSink loads the sink program counting frames from want.
func newVethSink(want netip.Addr) (_ *vethSink, err error) {
	s := &vethSink{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.counts, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fnt_sink", Type: ebpf.PerCPUArray,
		KeySize: 4, ValueSize: 24, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("sink map: %w", err)
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "fnt_sink", Type: ebpf.XDP, License: "Dual MIT/GPL",
		Instructions: vethSinkInstructions(s.counts.FD(), want, vethProbeDport)})
	if err != nil {
		return nil, fmt.Errorf("load sink program: %w", err)
	}
	return s, nil
}

// attach attaches the sink to link name of namespace ns: native XDP (veth
// runs it in its NAPI poll), generic if the driver refuses. Native XDP
// gives the client's veth a ring of its own: without it (generic XDP or a
// tc program) a frame the router forwards joins the same per-CPU backlog
// as the frames the generator sends to the router, the generator keeps
// that backlog full, and the router's work is thrown away at the client's
// door. (Measured: the kernel DUT delivers less than half as much.)
func (s *vethSink) attach(ns, name string) error {
	return testnet.Do(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		var errs []error
		for _, m := range []struct {
			flags link.XDPAttachFlags
			name  string
		}{{link.XDPDriverMode, "native"}, {link.XDPGenericMode, "generic"}} {
			l, err := link.AttachXDP(link.XDPOptions{Program: s.prog, Interface: ifi.Index, Flags: m.flags})
			if err == nil {
				s.link, s.mode = l, m.name
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
		}
		return fmt.Errorf("attach sink to %s in %s: %w", name, ns, errors.Join(errs...))
	})
}

// read sums the per-CPU counters.
func (s *vethSink) read() (vethSinkCounts, error) {
	var per []vethSinkCounts
	if err := s.counts.Lookup(uint32(0), &per); err != nil {
		return vethSinkCounts{}, fmt.Errorf("read sink counters: %w", err)
	}
	var c vethSinkCounts
	for _, p := range per {
		c.All += p.All
		c.Good += p.Good
		c.GoodBytes += p.GoodBytes
	}
	return c, nil
}

// Close detaches the program and frees it and its map.
func (s *vethSink) Close() error {
	var errs []error
	if s.link != nil {
		errs = append(errs, s.link.Close())
	}
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	if s.counts != nil {
		errs = append(errs, s.counts.Close())
	}
	return errors.Join(errs...)
}
