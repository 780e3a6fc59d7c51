package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/natlog"
)

// Deadlines of one connection: reading the request, and the whole answer
// (a full session listing of a large table takes a while to encode).
const (
	readTimeout  = 5 * time.Second
	writeTimeout = 60 * time.Second
)

// Server answers requests on a control socket until Close.
type Server struct {
	ln     *net.UnixListener
	path   string
	h      Handler
	done   chan struct{}
	events atomic.Pointer[eventSource]
	// Open event streams, each on a goroutine of its own, so that a
	// stream never holds up the requests answered one at a time.
	mu      sync.Mutex
	streams map[*net.UnixConn]struct{}
	streamN atomic.Uint64 // names the streams in the event log's counters
	closing bool
	wg      sync.WaitGroup
}

// EventSource is where event streams come from: the daemon's natlog.Hub.
type EventSource interface {
	Subscribe(name string, f natlog.Filter) (*natlog.Subscription, error)
}

type eventSource struct{ EventSource }

// ServeEvents makes the server answer CmdEvents from src: each stream is
// a subscription of src. Without it, CmdEvents fails.
func (s *Server) ServeEvents(src EventSource) { s.events.Store(&eventSource{src}) }

// Listen creates the control socket at path with mode 0600 and serves h
// on it. A socket file left behind by a dead daemon is removed first; a
// socket another process still listens on (ErrInUse) or a path that is
// not a socket (ErrNotSocket) is an error.
func Listen(path string, h Handler) (*Server, error) { return ListenGroup(path, -1, h) }

// ListenGroup is Listen with an operator group: with gid ≥ 0 the socket
// belongs to that group with mode 0660, so its members may use `fastnat
// show` and `fastnat reload` without root.
//
// The socket never exists at path with other permissions, whatever the
// process's umask: it is bound in a fresh directory of mode 0700 beside
// path, given its mode and group there, and renamed into place.
func ListenGroup(path string, gid int, h Handler) (*Server, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) { return nil, fmt.Errorf("control socket %s: %w", path, err) }
	dir, err := os.MkdirTemp(filepath.Dir(path), ".fastnat-socket-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	private := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: private, Net: "unix"})
	if err != nil {
		return fail(err)
	}
	// The listener would unlink the name it was bound to; Close removes
	// path instead.
	ln.SetUnlinkOnClose(false)
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Lchown(private, -1, gid); err != nil {
			ln.Close()
			return fail(err)
		}
	}
	if err := os.Chmod(private, mode); err != nil {
		ln.Close()
		return fail(err)
	}
	if err := os.Rename(private, path); err != nil {
		ln.Close()
		return fail(err)
	}
	s := &Server{ln: ln, path: path, h: h, done: make(chan struct{}), streams: map[*net.UnixConn]struct{}{}}
	go s.routineServe()
	return s, nil
}

// removeStale removes a socket file nothing listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s: %w", path, ErrNotSocket)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, waits for the request in progress, ends the
// event streams and removes the socket file.
func (s *Server) Close() error {
	err := s.ln.Close()
	<-s.done
	s.mu.Lock()
	s.closing = true
	for c := range s.streams {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// routineServe accepts connections and answers them one at a time.
func (s *Server) routineServe() {
	defer close(s.done)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		s.serve(c)
	}
}

// serve answers the one request of connection c, or hands c to an event
// stream.
func (s *Server) serve(c *net.UnixConn) {
	c.SetReadDeadline(time.Now().Add(readTimeout))
	req, resp, ok := s.read(c)
	if ok && req.Cmd == CmdEvents {
		if resp = s.startStream(c, req); resp.Code == "" {
			return // the stream owns c now
		}
	} else if ok {
		resp = s.answer(req)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = json.NewEncoder(c).Encode(&resp) // a client that left needs no answer
}

// read reads one request from r (at most MaxRequest bytes); on failure it
// returns the answer.
func (s *Server) read(r io.Reader) (Request, Response, bool) {
	var req Request
	if err := json.NewDecoder(io.LimitReader(r, MaxRequest)).Decode(&req); err != nil {
		return req, Response{Code: CodeBadRequest, Error: fmt.Sprintf("read request: %v", err)}, false
	}
	return req, Response{}, true
}

// handle reads one request from r and answers it (CmdEvents, which
// streams, only with a failure).
func (s *Server) handle(r io.Reader) Response {
	req, resp, ok := s.read(r)
	if !ok {
		return resp
	}
	return s.answer(req)
}

// answer runs a request against the handler.
func (s *Server) answer(req Request) Response {
	var r Response
	var err error
	switch req.Cmd {
	case CmdStats:
		st := s.h.Stats()
		r.Stats = &st
	case CmdSessions:
		if req.Limit < 0 {
			return Response{Code: CodeBadRequest, Error: fmt.Sprintf("limit %d: must not be negative", req.Limit)}
		}
		var l SessionList
		l, err = s.h.Sessions(SessionQuery{Filter: req.filter(), Limit: req.Limit})
		r.Sessions = &l
	case CmdClear:
		f := req.filter()
		if f == (SessionFilter{}) && !req.All {
			return Response{Code: CodeBadRequest, Error: "clear sessions needs a filter, or all to end every session"}
		}
		var c ClearResult
		c, err = s.h.Clear(f)
		r.Cleared = &c
	case CmdExpectations:
		r.Expectations = s.h.Expectations()
	case CmdMappings:
		r.Mappings = s.h.Mappings()
	case CmdRules:
		rules := s.h.Rules()
		r.Rules = &rules
	case CmdReload:
		var rr ReloadResult
		rr, err = s.h.Reload()
		r.Reload = &rr
	case CmdEvents:
		return Response{Code: CodeBadRequest, Error: "events is a stream: read it with control.Stream"}
	case CmdExplain:
		e, ok := s.h.(Explainer)
		switch {
		case !ok:
			return Response{Code: CodeFailed, Error: "this daemon does not explain connections"}
		case req.Explain == nil:
			return Response{Code: CodeBadRequest, Error: "explain: no connection or session given"}
		}
		var er ExplainResult
		er, err = e.Explain(*req.Explain)
		r.Explain = &er
	default:
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("unknown command %q; known: stats, sessions, expectations, mappings, rules, reload, clear, events, explain", req.Cmd)}
	}
	if err != nil {
		code := CodeFailed
		switch {
		case errors.Is(err, ErrRefused):
			code = CodeRefused
		case errors.Is(err, ErrBadRequest):
			code = CodeBadRequest
		}
		return Response{Code: code, Error: err.Error()}
	}
	return r
}

// filter is the request's session filter, the zero one when it has none.
func (req *Request) filter() SessionFilter {
	if req.Filter == nil {
		return SessionFilter{}
	}
	return *req.Filter
}

// Event streams.
const (
	streamRead  = 500 * time.Millisecond // how long a stream waits for events before it looks at its client again
	streamWrite = 10 * time.Second       // a client that reads nothing for this long is dropped
)

// startStream subscribes c to the events req asks for and streams them on
// a goroutine of its own. It returns the failure to answer, or a zero
// Response once the stream has started.
func (s *Server) startStream(c *net.UnixConn, req Request) Response {
	src := s.events.Load()
	if src == nil {
		return Response{Code: CodeFailed, Error: "this daemon has no event log"}
	}
	var f EventFilter
	if req.Events != nil {
		f = *req.Events
	}
	nf, err := f.Filter()
	if err != nil {
		return Response{Code: CodeBadRequest, Error: err.Error()}
	}
	sub, err := src.Subscribe(fmt.Sprintf("fastnat events #%d", s.streamN.Add(1)), nf)
	if err != nil {
		return Response{Code: CodeFailed, Error: fmt.Sprintf("events: %v", err)}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sub.Close()
		return Response{Code: CodeFailed, Error: "the daemon is stopping"}
	}
	s.streams[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.routineStream(c, sub)
	return Response{}
}

// routineStream writes the stream's header and then its events, one JSON
// Event per line, until the client closes its side (it must keep its
// write side open while it reads), the server closes, or the event log
// ends.
func (s *Server) routineStream(c *net.UnixConn, sub *natlog.Subscription) {
	defer s.wg.Done()
	defer func() {
		sub.Close()
		s.mu.Lock()
		delete(s.streams, c)
		s.mu.Unlock()
		c.Close()
	}()
	gone := make(chan struct{})
	go func() {
		c.SetReadDeadline(time.Time{})
		io.Copy(io.Discard, c) // returns when the client closes or c is closed
		close(gone)
	}()
	w := bufio.NewWriter(c)
	enc := json.NewEncoder(w)
	flush := func() bool {
		c.SetWriteDeadline(time.Now().Add(streamWrite))
		return w.Flush() == nil
	}
	if enc.Encode(&Response{Stream: true}) != nil || !flush() {
		return
	}
	buf := make([]natlog.Event, 256)
	for {
		select {
		case <-gone:
			return
		default:
		}
		n, lost, err := sub.Read(buf, streamRead)
		if err != nil {
			return // the event log closed
		}
		if lost > 0 {
			enc.Encode(&Event{Type: TypeLost, Time: time.Now().UTC(), Lost: lost})
		}
		for i := range buf[:n] {
			v := EventView(&buf[i])
			enc.Encode(&v)
		}
		if n+int(lost) > 0 && !flush() {
			return
		}
	}
}
