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
	table  *flowtable.Table
	sent   uint64
	flow   uint32 // next flow (sequential during setup)
	random bool
	rng    uint64
	base   []byte
	hub    *natlog.Hub // the event log when Logging
	// Setup is how long creating the sessions took (slow path, one core).
	Setup time.Duration
	// BytesPerSession is the flow table's memory divided by its capacity.
	BytesPerSession float64
}

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
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	table, err := flowtable.New(flowtable.Config{MaxSessions: cfg.Flows + cfg.Flows/8 + 16})
	if err != nil {
		return nil, err
	}
	runtime.ReadMemStats(&after)
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
	r := &PipelineRig{cfg: cfg, table: table, rng: 0x9e3779b97f4a7c15,
		BytesPerSession: float64(after.HeapAlloc-before.HeapAlloc) / float64(cfg.Flows+cfg.Flows/8+16)}
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
	mem := pipeline.NewMemPoolUnlocked(4*cfg.Batch+64, 2048)
	in := pipeline.NewMemPort("bench-in", [6]byte{2, 0, 0, 0, 0, 1}, mem)
	out := pipeline.NewMemPort("bench-out", [6]byte{2, 0, 0, 0, 0, 2}, mem)
	for d := 0; d < 16; d++ {
		out.SetNeighbor(0xc6120000|uint32(d+1), [6]byte{2, 0, 0, 0, 1, byte(d)})
	}
	in.SetGenerator(r.generate)
	out.SetSink(func([]byte) { r.sent++ })
	clock := flowtable.Time(1)
	r.worker = pipeline.NewWorker(pipeline.Config{
		Ports: []pipeline.PortSpec{{Port: in, Side: nat.Inside}, {Port: out, Side: nat.Outside}},
		Poll:  pipeline.PollBusy, Batch: cfg.Batch, NAT: n.Engine(0), Table: table,
		Clock: func() flowtable.Time { return clock },
	})
	start := time.Now()
	for r.flow < uint32(cfg.Flows) {
		r.worker.Poll()
	}
	r.Setup = time.Since(start)
	if got := table.Stats().Sessions; got < cfg.Flows {
		r.Close()
		return nil, fmt.Errorf("bench: %d sessions created, want %d (counters: %d dropped)", got, cfg.Flows, r.worker.Counters().Drops())
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

// Close stops the rig's event log, if it has one.
func (r *PipelineRig) Close() {
	if r.hub != nil {
		r.hub.Close()
	}
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
		r.worker.Poll()
	}
	return r.sent - sent0, time.Since(start)
}

// Drops reports the worker's drops so far (should stay 0).
func (r *PipelineRig) Drops() uint64 { return r.worker.Counters().Drops() }

// generate writes the next frame: during setup flow after flow, then a
// uniformly random established flow (xorshift).
func (r *PipelineRig) generate(buf []byte) int {
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
	n := copy(buf, r.base)
	// Flow f: source 10.0.0.0 + f/16, port 10000 + f%16, to one of 16
	// outside hosts on port 9. The template's checksums are patched
	// incrementally for the changed fields.
	src := uint32(0x0a000000) + f>>4
	sport := uint16(10000 + f&15)
	dst := uint32(0xc6120000) | (f&15 + 1)
	ip := buf[14:]
	oldSrc, oldDst := binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:])
	binary.BigEndian.PutUint32(ip[12:], src)
	binary.BigEndian.PutUint32(ip[16:], dst)
	d := packet.Delta(0).Add32(oldSrc, src).Add32(oldDst, dst)
	binary.BigEndian.PutUint16(ip[10:], packet.ApplyDelta(binary.BigEndian.Uint16(ip[10:]), d))
	udp := ip[20:]
	oldPort := binary.BigEndian.Uint16(udp[0:])
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[6:], packet.ApplyDeltaUDP(binary.BigEndian.Uint16(udp[6:]), d.Add16(oldPort, sport)))
	return n
}

// udpTemplate builds a UDP frame of size bytes with correct checksums.
func udpTemplate(size int) []byte {
	b := make([]byte, size)
	copy(b[0:], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := packet.IPv4(b[14:34])
	ip[0], ip[8], ip[9] = 0x45, 64, packet.ProtoUDP
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	binary.BigEndian.PutUint32(ip[12:], 0x0a000000)
	binary.BigEndian.PutUint32(ip[16:], 0xc6120001)
	ip.SetChecksum(ip.CalculateChecksum())
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], 10000)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(size-34))
	for i := 8; i < len(udp); i++ {
		udp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(udp[6:], packet.UDPChecksum(ip, udp))
	return b
}
