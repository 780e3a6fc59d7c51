package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/pipeline"
)

// PipelineConfig describes an in-memory pipeline benchmark: one worker
// over two memory ports, a generator of UDP frames from inside hosts on
// the inside port, and a sink counting what the worker transmits.
type PipelineConfig struct {
	Flows     int // established sessions the traffic is spread over uniformly
	FrameSize int // bytes on the wire without FCS (60 = a 64-byte frame)
	Batch     int // rx burst size
	// Baseline replaces the worker with the harness's own floor: the same
	// generator, memory ports and sink, and a step that only swaps each
	// frame's MAC addresses and transmits it (no parse, lookup or
	// translation). The worker's own cost is a run's ns/pkt minus the
	// baseline's.
	Baseline bool
	// Logging turns the NAT event log on, as [logging] does in the
	// daemon: the NAT records every session and binding into its ring,
	// and the event log's goroutine drains the rings into a sink that
	// discards (the exporters' own cost is on their goroutines, not the
	// worker's).
	Logging bool
}

// PipelineRig is a built pipeline benchmark: its sessions exist, ready to
// carry traffic.
type PipelineRig struct {
	cfg    PipelineConfig
	worker *pipeline.Worker
	step   func() int // one poll: the worker's, or the baseline's
	table  *flowtable.Table
	sent   uint64
	flow   uint32 // next flow (sequential during setup)
	random bool
	rng    uint64
	base   []byte
	// what generate writes that is the template's: its MACs, and its
	// checksums' terms (see generate)
	macs            uint64
	macs2           uint32
	ipBase, udpBase uint32
	hub             *natlog.Hub // the event log when Logging
	// Setup is how long creating the sessions took (slow path, one core).
	Setup time.Duration
	// SetupCPU is the CPU time the creating thread used meanwhile (0
	// where it is not read): on a machine other work shares, the time
	// the creations cost rather than how long they waited for the CPU.
	SetupCPU time.Duration
	// Memory is what the sessions cost (see SessionMemory).
	Memory SessionMemory
}

// SessionMemory is the memory a session costs, in bytes per session of
// the table's capacity for the table's parts and for the NAT's
// endpoint-independent bindings and public-endpoint map (allocated up
// front for the table's capacity, nat.NAT.Memory), plus any heap the
// NAT grew by while the sessions were made, per session made.
type SessionMemory struct {
	Index  float64 `json:"index"`  // the hash index's buckets
	Hot    float64 `json:"hot"`    // the 64-byte hot lines
	Cold   float64 `json:"cold"`   // the cold data
	Expect float64 `json:"expect"` // the expectation store
	NAT    float64 `json:"nat"`    // bindings and public map
	// HugeShare is the share of the table's index, hot and cold storage
	// the kernel backs with huge pages.
	HugeShare float64 `json:"huge_share"`
}

// Total is the memory of one session, all parts.
func (m SessionMemory) Total() float64 { return m.Index + m.Hot + m.Cold + m.Expect + m.NAT }

const benchPoolAddrs = 64

// NewPipelineRig builds the rig and creates cfg.Flows sessions through the
// worker's slow path (sequential flows), timing it.
func NewPipelineRig(cfg PipelineConfig) (*PipelineRig, error) {
	if cfg.Flows < 1 {
		cfg.Flows = 1
	}
	if cfg.FrameSize < 60 {
		cfg.FrameSize = 60
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	table, err := flowtable.New(flowtable.Config{MaxSessions: cfg.Flows + cfg.Flows/8 + 16})
	if err != nil {
		return nil, err
	}
	pool := make([]netip.Addr, benchPoolAddrs)
	for i := range pool {
		pool[i] = netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
	}
	n, err := nat.New(nat.Rules{
		Outbound: []nat.Outbound{{
			Inside: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			Pool:   pool, PortLo: 1024, PortHi: 65535, EndpointIndependent: true,
		}},
		Timeouts: nat.DefaultTimeouts,
	}, table, 1)
	if err != nil {
		return nil, err
	}
	r := &PipelineRig{cfg: cfg, table: table, rng: 0x9e3779b97f4a7c15}
	if cfg.Logging {
		if r.hub, err = natlog.NewHub(natlog.HubConfig{Producers: nat.Producers(1)}); err != nil {
			return nil, err
		}
		if err := r.hub.Add("discard", discard{}, natlog.Filter{}); err != nil {
			return nil, err
		}
		r.hub.Start()
		if err := n.LogTo(r.hub, time.Now()); err != nil {
			r.hub.Close()
			return nil, err
		}
	}
	r.base = udpTemplate(cfg.FrameSize)
	r.macs, r.macs2 = binary.BigEndian.Uint64(r.base[0:]), binary.BigEndian.Uint32(r.base[8:])
	// ~HC + ~m of RFC 1624 eqn. 3 for the template's checksums and the
	// fields generate replaces; UDP's new sum is never 0, as its bytes are
	// not all zero.
	old := uint32(^uint16(tmplSrc>>16)) + uint32(^uint16(tmplSrc&0xffff)) + uint32(^uint16(tmplDst>>16)) + uint32(^uint16(tmplDst&0xffff))
	r.ipBase = uint32(^binary.BigEndian.Uint16(r.base[24:])) + old
	r.udpBase = uint32(^binary.BigEndian.Uint16(r.base[40:])) + old + uint32(^uint16(tmplSport))
	mem := pipeline.NewMemPoolUnlocked(4*cfg.Batch+64, 2048)
	in := pipeline.NewMemPort("bench-in", [6]byte{2, 0, 0, 0, 0, 1}, mem)
	out := pipeline.NewMemPort("bench-out", [6]byte{2, 0, 0, 0, 0, 2}, mem)
	for d := 0; d < 16; d++ {
		out.SetNeighbor(0xc6120000|uint32(d+1), [6]byte{2, 0, 0, 0, 1, byte(d)})
	}
	in.SetGenerator(r.generate)
	out.SetSink(func(fs []pipeline.Frame) { r.sent += uint64(len(fs)) })
	clock := flowtable.Time(1)
	r.worker = pipeline.NewWorker(pipeline.Config{
		Ports: []pipeline.PortSpec{{Port: in, Side: nat.Inside}, {Port: out, Side: nat.Outside}},
		Poll:  pipeline.PollBusy, Batch: cfg.Batch, NAT: n.Engine(0), Table: table,
		Clock: func() flowtable.Time { return clock },
	})
	r.step = r.worker.Poll
	if cfg.Baseline {
		r.step = baselineStep(in, out, cfg.Batch)
		r.random = true
		return r, nil
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	runtime.LockOSThread()
	cpu, start := threadCPU(), time.Now()
	for r.flow < uint32(cfg.Flows) {
		r.worker.Poll()
	}
	r.Setup = time.Since(start)
	r.SetupCPU = threadCPU() - cpu
	runtime.UnlockOSThread()
	if got := table.Stats().Sessions; got < cfg.Flows {
		r.Close()
		return nil, fmt.Errorf("bench: %d sessions created, want %d (counters: %d dropped)", got, cfg.Flows, r.worker.Counters().Drops())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	m, c := table.Memory(), float64(table.Capacity())
	r.Memory = SessionMemory{
		Index: float64(m.Index) / c, Hot: float64(m.Hot) / c, Cold: float64(m.Cold) / c, Expect: float64(m.Expect) / c,
		NAT:       float64(n.Memory())/c + float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(cfg.Flows),
		HugeShare: float64(m.Huge) / float64(m.Hot+m.Cold+m.Index),
	}
	r.random = true
	return r, nil
}

// Events reports what the event log made and dropped at the worker's
// ring (zero without Logging).
func (r *PipelineRig) Events() (made, dropped uint64) {
	if r.hub == nil {
		return 0, 0
	}
	for _, p := range r.hub.Stats().Producers {
		made, dropped = made+p.Queued+p.Dropped, dropped+p.Dropped
	}
	return made, dropped
}

// Close stops the rig's event log, if it has one, and frees its flow
// table.
func (r *PipelineRig) Close() {
	if r.hub != nil {
		r.hub.Close()
	}
	r.table.Close()
}

// discard is an event sink that drops everything, counted as exported.
type discard struct{}

func (discard) Export(events []natlog.Event) (int, error) { return 0, nil }
func (discard) Tick(time.Time) error                      { return nil }
func (discard) Close() error                              { return nil }

// Run pushes at least packets frames through the worker and returns how
// many went through and how long it took.
func (r *PipelineRig) Run(packets int) (uint64, time.Duration) {
	start, sent0 := time.Now(), r.sent
	for r.sent-sent0 < uint64(packets) {
		r.step()
	}
	return r.sent - sent0, time.Since(start)
}

// baselineStep is the harness's floor: receive a burst from in, swap
// each frame's MACs, transmit it on out.
func baselineStep(in, out *pipeline.MemPort, batch int) func() int {
	rx := make([]pipeline.Frame, batch)
	return func() int {
		n := in.Receive(rx)
		for _, f := range rx[:n] {
			h := (*[12]byte)(f.Buf)
			h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11] =
				h[6], h[7], h[8], h[9], h[10], h[11], h[0], h[1], h[2], h[3], h[4], h[5]
		}
		out.Transmit(rx[:n])
		out.Flush()
		return n
	}
}

// Drops reports the worker's drops so far (should stay 0).
func (r *PipelineRig) Drops() uint64 { return r.worker.Counters().Drops() }

// generate writes the next burst of frames: during setup flow after
// flow, then uniformly random established flows (xorshift). A buffer that
// never held a frame gets the whole template; one the worker translated
// and sent gets back what translation and forwarding changed (MACs, TTL,
// source address and port, checksums) — the rest stayed the template's.
// Flow f: source 10.0.0.0 + f/16, port 10000 + f%16, to one of 16
// outside hosts on port 9; the checksums are the template's patched
// incrementally.
func (r *PipelineRig) generate(fs []pipeline.Frame) {
	for i := range fs {
		var f uint32
		if r.random {
			x := r.rng
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			r.rng = x
			f = uint32((x >> 32) * uint64(r.cfg.Flows) >> 32)
		} else {
			f = r.flow
			if f >= uint32(r.cfg.Flows) {
				f = 0
			} else {
				r.flow++
			}
		}
		buf := fs[i].Buf[:len(r.base)]
		fs[i].Buf = buf
		h := (*[42]byte)(buf)
		if h[12] != 0x08 { // EtherType IPv4: the buffer held a frame before
			copy(buf, r.base)
		}
		src := tmplSrc + f>>4
		sport := tmplSport + f&15
		dst := tmplDst + f&15
		binary.BigEndian.PutUint64(h[0:], r.macs)
		binary.BigEndian.PutUint32(h[8:], r.macs2)
		h[22] = ttl
		binary.BigEndian.PutUint32(h[26:], src)
		binary.BigEndian.PutUint32(h[30:], dst)
		// RFC 1624 eqn. 3 with the template's terms summed in advance.
		a := src>>16 + src&0xffff + dst>>16 + dst&0xffff
		binary.BigEndian.PutUint16(h[24:], ^packet.Fold(r.ipBase+a))
		binary.BigEndian.PutUint16(h[34:], uint16(sport))
		binary.BigEndian.PutUint16(h[40:], ^packet.Fold(r.udpBase+a+sport))
	}
}

// The template's flow, 10.0.0.0:10000 to 198.18.0.1:9, and TTL.
const (
	ttl       = 64
	tmplSrc   = 0x0a000000
	tmplDst   = 0xc6120001
	tmplSport = 10000
)

// udpTemplate builds a UDP frame of size bytes with correct checksums.
func udpTemplate(size int) []byte {
	b := make([]byte, size)
	copy(b[0:], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := packet.IPv4(b[14:34])
	ip[0], ip[8], ip[9] = 0x45, ttl, packet.ProtoUDP
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	binary.BigEndian.PutUint32(ip[12:], tmplSrc)
	binary.BigEndian.PutUint32(ip[16:], tmplDst)
	ip.SetChecksum(ip.CalculateChecksum())
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], tmplSport)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(size-34))
	for i := 8; i < len(udp); i++ {
		udp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(udp[6:], packet.UDPChecksum(ip, udp))
	return b
}
