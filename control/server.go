package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Deadlines of one connection: reading the request, and the whole answer
// (a full session listing of a large table takes a while to encode).
const (
	readTimeout  = 5 * time.Second
	writeTimeout = 60 * time.Second
)

// Server answers requests on a control socket until Close.
type Server struct {
	ln   *net.UnixListener
	path string
	h    Handler
	done chan struct{}
}

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
	s := &Server{ln: ln, path: path, h: h, done: make(chan struct{})}
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

// Close stops accepting, waits for the request in progress and removes
// the socket file.
func (s *Server) Close() error {
	err := s.ln.Close()
	<-s.done
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

// serve answers the one request of connection c.
func (s *Server) serve(c *net.UnixConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(readTimeout))
	resp := s.handle(c)
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = json.NewEncoder(c).Encode(&resp) // a client that left needs no answer
}

// handle reads one request from r (at most MaxRequest bytes) and answers
// it.
func (s *Server) handle(r io.Reader) Response {
	var req Request
	if err := json.NewDecoder(io.LimitReader(r, MaxRequest)).Decode(&req); err != nil {
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("read request: %v", err)}
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
		l, err = s.h.Sessions(SessionQuery{App: req.App, Limit: req.Limit})
		r.Sessions = &l
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
	default:
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("unknown command %q; known: stats, sessions, expectations, mappings, rules, reload", req.Cmd)}
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
