package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// vethCase is one DUT at one flow count and frame size, on a topology of
// its own, with everything RunVeth sets up around the DUT.
type vethCase struct {
	cfg         VethConfig
	thr         *vethThread
	dut         DUT
	flows, size int

	topo    *testnet.Topology
	sink    *vethSink
	probes  *vethProbes
	running *RunningDUT
	gen     *vethGenerator
}

// runVethCase measures one case: set up, check the path, create the
// sessions, load, latency at a light load.
func runVethCase(ctx context.Context, cfg VethConfig, thr *vethThread, dut DUT, flows, size int) (res VethResult, err error) {
	res = VethResult{DUT: dut.Name, Flows: flows, FrameSize: size}
	c := &vethCase{cfg: cfg, thr: thr, dut: dut, flows: flows, size: size}
	defer func() { err = errors.Join(err, c.close()) }()
	if err := c.setup(ctx); err != nil {
		return res, err
	}
	if err := c.checkPath(ctx); err != nil {
		return res, err
	}
	if err := c.sessionPass(ctx, &res); err != nil {
		return res, err
	}
	if err := c.load(ctx, &res); err != nil {
		return res, err
	}
	if err := c.lightLatency(ctx, &res); err != nil {
		return res, err
	}
	if c.running.Check != nil {
		if err := c.running.Check(); err != nil {
			return res, fmt.Errorf("%s: %w", dut.Name, err)
		}
	}
	return res, nil
}

// setup builds the topology, the sink and the probe receiver on the
// client, starts the DUT and opens the generator.
func (c *vethCase) setup(ctx context.Context) error {
	var err error
	if c.topo, err = testnet.New(ctx, testnet.Options{Queues: 1}); err != nil {
		return err
	}
	src, err := testnet.LinkMAC(c.topo.Server, testnet.NodeLink)
	if err != nil {
		return err
	}
	dst, err := testnet.LinkMAC(c.topo.Router, testnet.RouterInsideLink)
	if err != nil {
		return err
	}
	spec := vethFrameSpec{Src: testnet.ServerAddr, Dst: testnet.ClientAddr, Size: c.size, Flows: c.flows, Seed: c.cfg.Seed}
	copy(spec.SrcMAC[:], src)
	copy(spec.DstMAC[:], dst)
	frames, err := newVethFrames(spec)
	if err != nil {
		return err
	}
	if c.sink, err = newVethSink(c.dut.Source); err != nil {
		return err
	}
	if err := c.sink.attach(c.topo.Client, testnet.NodeLink); err != nil {
		return err
	}
	if c.probes, err = startVethProbes(c.topo.Client, netip.AddrPortFrom(testnet.ClientAddr, vethProbeDport)); err != nil {
		return err
	}
	if c.running, err = c.dut.Start(ctx, c.topo, DUTEnv{CPU: c.cfg.DUTCPU, Flows: c.flows}); err != nil {
		return err
	}
	c.gen, err = newVethGenerator(c.topo.Server, testnet.NodeLink, frames)
	return err
}

// close tears down in the reverse order of setup.
func (c *vethCase) close() error {
	var errs []error
	if c.gen != nil {
		errs = append(errs, c.gen.Close())
	}
	if c.running != nil {
		if err := c.running.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.dut.Name, err))
		}
	}
	if c.probes != nil {
		errs = append(errs, c.probes.Close())
	}
	if c.sink != nil {
		errs = append(errs, c.sink.Close())
	}
	if c.topo != nil {
		errs = append(errs, c.topo.Close())
	}
	return errors.Join(errs...)
}

// start runs plan on the generator's thread; the returned function stops
// it (if it has not ended by itself) and waits for it.
func (c *vethCase) start(plan vethPlan) (halt func(), done <-chan struct{}) {
	var stop atomic.Bool
	d := c.thr.start(func() { c.gen.run(plan, &stop) })
	halted := false
	return func() {
		if !halted {
			halted = true
			stop.Store(true)
			<-d
		}
	}, d
}

// probeEvery is the interval between probes.
func (c *vethCase) probeEvery() time.Duration {
	if c.cfg.ProbeRate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / c.cfg.ProbeRate)
}

// checkPath sends probes alone until one arrives: neighbours resolved on
// both sides, the DUT forwarding.
func (c *vethCase) checkPath(ctx context.Context) error {
	halt, _ := c.start(vethPlan{ProbesOnly: true, ProbeEvery: 10 * time.Millisecond})
	ok := waitFor(ctx, vethPathTimeout, func() bool { return c.probes.count() > 0 })
	halt()
	if ok {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	msg := ""
	if c.running.Output != nil {
		msg = ": " + tail(c.running.Output(), 1024)
	}
	return fmt.Errorf("%s: %w: no probe reached the client in %v%s", c.dut.Name, ErrNoPath, vethPathTimeout, msg)
}

// sessionPass sends each flow once and measures how fast their first
// packets came through: the sink's count over the time until it stops
// rising.
func (c *vethCase) sessionPass(ctx context.Context, res *VethResult) error {
	before, err := c.sink.read()
	if err != nil {
		return err
	}
	c.gen.next = 0
	start := time.Now()
	halt, done := c.start(vethPlan{Packets: uint64(c.flows), Rate: c.cfg.Rate})
	defer halt()
	var sent time.Duration
	last, lastAt := before.Good, start
	for {
		select {
		case <-done:
			if sent == 0 {
				sent = time.Since(start)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		n, err := c.sink.read()
		if err != nil {
			return err
		}
		now := time.Now()
		if n.Good != last {
			last, lastAt = n.Good, now
		}
		if sent > 0 && now.Sub(lastAt) >= vethQuiet {
			break
		}
	}
	res.SessionsFirstPass = last - before.Good
	if c.flows >= vethMinSessionFlows && lastAt.After(start) {
		res.NewSessionsPerSec = float64(res.SessionsFirstPass) / lastAt.Sub(start).Seconds()
		res.OfferedSessionsPerSec = float64(c.flows) / sent.Seconds()
	}
	return nil
}

// load runs the warm-up and the measured window, probes all along.
func (c *vethCase) load(ctx context.Context, res *VethResult) error {
	halt, _ := c.start(vethPlan{Rate: c.cfg.Rate, ProbeEvery: c.probeEvery()})
	defer halt()
	if !sleepCtx(ctx, c.cfg.Warmup) {
		return ctx.Err()
	}
	s0, err := c.snapshot()
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, c.cfg.Duration) {
		return ctx.Err()
	}
	s1, err := c.snapshot()
	if err != nil {
		return err
	}
	halt()
	time.Sleep(vethInFlight)
	res.fill(c.cfg, s0, s1, c.probes.window(s0.probes, s1.probes))
	return nil
}

// lightLatency measures latency at cfg.LatencyRate, after the queues of
// the full load have drained.
func (c *vethCase) lightLatency(ctx context.Context, res *VethResult) error {
	if c.cfg.LatencyRate <= 0 || c.probeEvery() == 0 {
		return nil
	}
	res.LatencyRate = c.cfg.LatencyRate
	halt, _ := c.start(vethPlan{Rate: c.cfg.LatencyRate, ProbeEvery: c.probeEvery()})
	defer halt()
	if !sleepCtx(ctx, vethDrain) {
		return ctx.Err()
	}
	seq0 := c.gen.probeSeq.Load()
	if !sleepCtx(ctx, min(c.cfg.Duration, vethMaxLatencyWindow)) {
		return ctx.Err()
	}
	seq1 := c.gen.probeSeq.Load()
	halt()
	time.Sleep(vethInFlight)
	res.LatencyAtRate = newVethLatency(c.probes.window(seq0, seq1), uint64(seq1-seq0))
	return nil
}

// vethSnapshot is the state of every counter at one instant.
type vethSnapshot struct {
	at        time.Time
	sink      vethSinkCounts
	completed uint64
	probes    uint32
	cpus      []cpuTimes
	process   time.Duration
	known     map[int]uint64 // CPU ticks of the harness, the DUT and kernel threads
}

func (c *vethCase) snapshot() (vethSnapshot, error) {
	pid := c.running.PID
	known := knownProcesses(os.Getpid(), pid)
	s := vethSnapshot{at: time.Now(), completed: c.gen.completed(), probes: c.gen.probeSeq.Load(), known: known}
	var err error
	if s.sink, err = c.sink.read(); err != nil {
		return s, err
	}
	if s.cpus, err = readProcStat(); err != nil {
		return s, err
	}
	if pid > 0 {
		if s.process, err = processCPU(pid); err != nil {
			return s, fmt.Errorf("%s: %w", c.dut.Name, err)
		}
	}
	return s, nil
}
