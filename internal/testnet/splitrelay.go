package testnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Split is how SplitRelay writes one line: in pieces ending at the byte
// offsets Cuts (ascending, inside the line), each written Gap after the
// one before; Line, when not nil, is written in its place (a hostile peer
// made of a real one). A zero Split writes the line at once.
type Split struct {
	Cuts []int
	Gap  time.Duration
	Line []byte
}

// Pieces returns a Split that cuts a line of n bytes into k pieces of
// about equal length.
func Pieces(n, k int, gap time.Duration) Split {
	s := Split{Gap: gap}
	for i := 1; i < k; i++ {
		if c := i * n / k; c > 0 && c < n && (len(s.Cuts) == 0 || c > s.Cuts[len(s.Cuts)-1]) {
			s.Cuts = append(s.Cuts, c)
		}
	}
	return s
}

// SplitRelay is a TCP relay for FTP control connections that re-segments
// what one side writes: every line of the split direction goes out through
// a socket with TCP_NODELAY (Go's default) in the pieces its split
// function asks for, each a write of its own and a gap apart, so that each
// leaves a real TCP stack as a segment of its own (or more, when the stack
// retransmits meanwhile, coalescing what it has).
//
// It stands between a real FTP client and server, in the namespace of one
// of them, so that a NAT between them sees the split segments; the data
// connections do not go through it.
type SplitRelay struct {
	ln       *net.TCPListener
	ns       string
	upstream netip.AddrPort
	toServer bool
	split    func(peer netip.AddrPort, line []byte) Split

	mu    sync.Mutex
	conns []net.Conn
	errs  []error
	wg    sync.WaitGroup
}

// StartSplitRelay listens on listen in namespace ns and relays every
// connection to upstream (dialled from ns). With toServer, the lines the
// client sends are split (the relay runs beside the client, and its
// connection to the server crosses the NAT); otherwise the lines the
// server sends back are (it runs beside the server). split is called for
// every line of that direction, line end included, with the address of the
// connection's client as the relay sees it, from the relay's goroutines;
// it must be safe for that.
func StartSplitRelay(ns string, listen, upstream netip.AddrPort, toServer bool, split func(peer netip.AddrPort, line []byte) Split) (*SplitRelay, error) {
	ln, err := ListenTCP(ns, listen)
	if err != nil {
		return nil, err
	}
	r := &SplitRelay{ln: ln, ns: ns, upstream: upstream, toServer: toServer, split: split}
	r.wg.Add(1)
	go r.routineAccept()
	return r, nil
}

// Addr is the address the relay listens on.
func (r *SplitRelay) Addr() netip.AddrPort { return r.ln.Addr().(*net.TCPAddr).AddrPort() }

// Close stops the relay and its connections and returns the first error
// a connection met other than its end.
func (r *SplitRelay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		return r.errs[0]
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (r *SplitRelay) track(c net.Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
}

func (r *SplitRelay) fail(err error) {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return // the ends closing, however abruptly, are theirs to judge
	}
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *SplitRelay) routineAccept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.track(c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		up, err := DialTCP(ctx, r.ns, r.upstream)
		cancel()
		if err != nil {
			r.fail(err)
			c.Close()
			continue
		}
		r.track(up)
		src, dst := io.Reader(c), up // client to server
		back, backDst := io.Reader(up), c
		if !r.toServer {
			src, dst, back, backDst = up, c, c, up
		}
		peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			r.fail(r.copyLines(dst, src, peer))
			closeWrite(dst)
		}()
		go func() {
			defer r.wg.Done()
			_, err := io.Copy(backDst, back)
			r.fail(err)
			closeWrite(backDst)
		}()
	}
}

// copyLines copies src to dst a line at a time, each line in the pieces
// split asks for.
func (r *SplitRelay) copyLines(dst io.Writer, src io.Reader, peer netip.AddrPort) error {
	br := bufio.NewReader(src)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if werr := r.writeSplit(dst, line, peer); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

func (r *SplitRelay) writeSplit(dst io.Writer, line []byte, peer netip.AddrPort) error {
	s := Split{}
	if bytes.HasSuffix(line, []byte("\n")) {
		s = r.split(peer, line)
		if s.Line != nil {
			line = s.Line
		}
	}
	prev := 0
	for i, c := range append(append([]int(nil), s.Cuts...), len(line)) {
		if c <= prev || c > len(line) {
			if c != len(line) {
				return fmt.Errorf("split relay: cut %d of a %d-byte line out of order", c, len(line))
			}
			continue
		}
		if i > 0 && s.Gap > 0 {
			time.Sleep(s.Gap)
		}
		if _, err := dst.Write(line[prev:c]); err != nil {
			return err
		}
		prev = c
	}
	return nil
}

func closeWrite(c io.Writer) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}
