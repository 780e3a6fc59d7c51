package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// vethProbes receives the latency probes on the client's UDP socket. The
// kernel stamps each datagram as it enters the client's stack
// (SO_TIMESTAMPNS, CLOCK_REALTIME, the clock the generator stamps the
// payload with), so the receiving goroutine's own scheduling delay is not
// part of the latency; without a stamp the receive time is used. The
// client's stack also verifies the UDP checksum, so a probe that arrives
// proves the DUT rewrote it correctly.
type vethProbes struct {
	conn    *net.UDPConn
	stamped bool

	mu   sync.Mutex
	recv []vethProbe
	done chan struct{}
}

// vethProbe is one received probe.
type vethProbe struct {
	seq      uint32
	sent     int64 // Unix nanoseconds, from the payload
	received int64 // Unix nanoseconds, kernel stamp
}

// startVethProbes listens on addr in namespace ns.
func startVethProbes(ns string, addr netip.AddrPort) (*vethProbes, error) {
	c, err := testnet.ListenUDP(ns, addr)
	if err != nil {
		return nil, err
	}
	p := &vethProbes{conn: c, done: make(chan struct{})}
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			p.stamped = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1) == nil
		})
	}
	go p.routineReceive()
	return p, nil
}

func (p *vethProbes) routineReceive() {
	defer close(p.done)
	buf := make([]byte, 2048)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := p.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return // closed
		}
		now := time.Now().UnixNano()
		seq, sent, ok := parseProbe(buf[:n])
		if !ok {
			continue
		}
		if ts, ok := kernelStamp(oob[:oobn]); ok {
			now = ts
		}
		p.mu.Lock()
		p.recv = append(p.recv, vethProbe{seq: seq, sent: sent, received: now})
		p.mu.Unlock()
	}
}

// kernelStamp finds the SCM_TIMESTAMPNS message in oob.
func kernelStamp(oob []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return sec*1e9 + nsec, true
		}
	}
	return 0, false
}

// count returns how many probes have arrived.
func (p *vethProbes) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.recv)
}

// window returns the one-way latencies of the probes numbered [from, to),
// each probe once, sorted. Probes are chosen by number, not by the time
// they carry, so that a window never holds more probes than the
// generator's count of those it sent over the same span.
func (p *vethProbes) window(from, to uint32) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[uint32]bool{}
	var l []time.Duration
	for _, r := range p.recv {
		if r.seq-from >= to-from || seen[r.seq] {
			continue
		}
		seen[r.seq] = true
		l = append(l, time.Duration(max(r.received-r.sent, 0)))
	}
	slices.Sort(l)
	return l
}

// Close stops receiving.
func (p *vethProbes) Close() error {
	err := p.conn.Close()
	<-p.done
	if err != nil {
		return fmt.Errorf("close probe socket: %w", err)
	}
	return nil
}

// percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method; 0 for an empty slice.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
