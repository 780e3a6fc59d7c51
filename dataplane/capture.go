package dataplane

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/metrics"
)

// Drop capture defaults.
const (
	defaultCaptureRate = 100 // frames per second
	captureBuffers     = 256 // frames in flight between workers and the writer
)

// pcap file format (the classic libpcap format, microsecond timestamps):
// a 24-byte global header, then per frame a 16-byte record header and the
// frame. Written in the host's byte order; readers detect it by the magic.
// gopacket's pcapgo would do this, but it pulls in golang.org/x/net, which
// go.mod does not list; the format is small enough to write here.
const (
	pcapMagic        = 0xa1b2c3d4
	pcapLinkEthernet = 1
)

// dropCapture is the pipeline's drop tap for `fastnat run --pcap-drops`:
// it copies dropped frames, at most rate per second (a GCRA token bucket
// shared by all workers, lock-free), into a fixed set of buffers handed to
// a writer goroutine through a bounded channel. A worker never blocks and
// never allocates in tap: a frame over the rate, or with every buffer in
// flight, is only counted.
type dropCapture struct {
	path     string
	w        *bufio.Writer
	closer   io.Closer
	snaplen  int
	interval int64 // ns between frames at the steady rate
	burst    int64 // frames allowed back to back
	epoch    time.Time
	tat      atomic.Int64 // GCRA theoretical arrival time, ns since epoch
	free     chan []byte
	queue    chan capturedFrame
	done     chan struct{}

	written, limited, full, errs atomic.Uint64
}

type capturedFrame struct {
	data []byte // a buffer from free, cut to the captured length
	orig int    // the frame's length on the wire
	when time.Time
}

// openDropCapture creates path (mode 0600) and starts writing dropped
// frames of at most snaplen bytes to it, rate frames per second at most.
func openDropCapture(path string, rate, snaplen int) (*dropCapture, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pcap drops: %w", err)
	}
	c, err := newDropCapture(f, rate, snaplen)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap drops: %w", err)
	}
	c.path, c.closer = path, f
	go c.routineWrite()
	return c, nil
}

// newDropCapture writes the pcap header to w and sets the capture up;
// the caller starts routineWrite.
func newDropCapture(w io.Writer, rate, snaplen int) (*dropCapture, error) {
	if rate <= 0 {
		rate = defaultCaptureRate
	}
	c := &dropCapture{
		w:        bufio.NewWriterSize(w, 64<<10),
		snaplen:  snaplen,
		interval: int64(time.Second) / int64(rate),
		burst:    int64(max(1, rate/10)),
		epoch:    time.Now(),
		free:     make(chan []byte, captureBuffers),
		queue:    make(chan capturedFrame, captureBuffers),
		done:     make(chan struct{}),
	}
	for range captureBuffers {
		c.free <- make([]byte, snaplen)
	}
	var h [24]byte
	binary.NativeEndian.PutUint32(h[0:], pcapMagic)
	binary.NativeEndian.PutUint16(h[4:], 2) // version 2.4
	binary.NativeEndian.PutUint16(h[6:], 4)
	binary.NativeEndian.PutUint32(h[16:], uint32(snaplen))
	binary.NativeEndian.PutUint32(h[20:], pcapLinkEthernet)
	if _, err := c.w.Write(h[:]); err != nil {
		return nil, err
	}
	return c, c.w.Flush()
}

// allow reports whether a frame arriving now (ns since epoch) is within
// the rate: the generic cell rate algorithm, burst frames back to back and
// then one per interval.
func (c *dropCapture) allow(now int64) bool {
	for {
		old := c.tat.Load()
		tat := max(old, now)
		if tat+c.interval-now > c.burst*c.interval {
			return false
		}
		if c.tat.CompareAndSwap(old, tat+c.interval) {
			return true
		}
	}
}

// tap is the pipeline.Config.DropTap. reason is not recorded in the file
// (classic pcap has no per-frame comment); the drop counters have it.
func (c *dropCapture) tap(frame []byte, _ string) {
	now := time.Now()
	if !c.allow(int64(now.Sub(c.epoch))) {
		c.limited.Add(1)
		return
	}
	var b []byte
	select {
	case b = <-c.free:
	default:
		c.full.Add(1)
		return
	}
	n := copy(b[:cap(b)], frame)
	// Never blocks: the queue holds as many frames as there are buffers.
	c.queue <- capturedFrame{data: b[:n], orig: len(frame), when: now}
}

// routineWrite writes queued frames until close, flushing whenever the
// queue runs empty so the file is readable while the daemon runs.
func (c *dropCapture) routineWrite() {
	defer close(c.done)
	var h [16]byte
	for f := range c.queue {
		us := f.when.UnixMicro()
		binary.NativeEndian.PutUint32(h[0:], uint32(us/1e6))
		binary.NativeEndian.PutUint32(h[4:], uint32(us%1e6))
		binary.NativeEndian.PutUint32(h[8:], uint32(len(f.data)))
		binary.NativeEndian.PutUint32(h[12:], uint32(f.orig))
		_, err := c.w.Write(h[:])
		if err == nil {
			_, err = c.w.Write(f.data)
		}
		if err == nil && len(c.queue) == 0 {
			err = c.w.Flush()
		}
		if err != nil {
			c.errs.Add(1)
		} else {
			c.written.Add(1)
		}
		c.free <- f.data[:cap(f.data)]
	}
}

// close stops the writer after the frames already queued and closes the
// file. Call it only after every worker that taps has stopped.
func (c *dropCapture) close() error {
	close(c.queue)
	<-c.done
	err := c.w.Flush()
	if c.closer != nil {
		if cerr := c.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// stats reports the capture for metrics and `show stats`.
func (c *dropCapture) stats() *metrics.Capture {
	return &metrics.Capture{File: c.path, Written: c.written.Load(), RateLimited: c.limited.Load(),
		QueueFull: c.full.Load(), Errors: c.errs.Load()}
}
