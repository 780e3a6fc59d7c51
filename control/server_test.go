package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/metrics"
)

// fakeHandler answers with fixed values and records what it was asked.
type fakeHandler struct {
	mu      sync.Mutex
	queries []SessionQuery
	clears  []SessionFilter
	reloads int
	refuse  bool
}

func (h *fakeHandler) Stats() metrics.Snapshot {
	return metrics.Snapshot{UptimeSeconds: 7, Table: metrics.Table{Sessions: 2, Capacity: 64}}
}

func (h *fakeHandler) Sessions(q SessionQuery) (SessionList, error) {
	h.mu.Lock()
	h.queries = append(h.queries, q)
	h.mu.Unlock()
	if q.Filter.App == "nope" {
		return SessionList{}, fmt.Errorf("%w: unknown application", ErrBadRequest)
	}
	return SessionList{Sessions: []Session{{ID: 3, Protocol: "tcp", ProtoNum: 6, App: q.Filter.App,
		Initiator: Flow{Src: netip.MustParseAddrPort("198.18.0.1:40000"), Dst: netip.MustParseAddrPort("198.18.0.204:9091")}}}, Matched: 5}, nil
}

func (h *fakeHandler) Clear(f SessionFilter) (ClearResult, error) {
	h.mu.Lock()
	h.clears = append(h.clears, f)
	h.mu.Unlock()
	return ClearResult{Matched: 2, Cleared: 2}, nil
}

func (h *fakeHandler) Expectations() []Expectation {
	return []Expectation{{Protocol: "tcp", Source: "198.18.0.1", Dst: netip.MustParseAddrPort("198.18.0.204:30001")}}
}

func (h *fakeHandler) Mappings() []Mapping {
	return []Mapping{{App: "ftp", Port: 9091, Protocol: "tcp", Scope: "any", Index: 0, Line: 3}}
}

func (h *fakeHandler) Rules() Rules { return Rules{File: "/etc/fastnat.toml"} }

func (h *fakeHandler) Reload() (ReloadResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reloads++
	if h.refuse {
		return ReloadResult{}, fmt.Errorf("%w: fastnat.toml:4:9: dataplane.batch: 0 is out of range", ErrRefused)
	}
	return ReloadResult{File: "fastnat.toml", PortMappings: 1}, nil
}

func listen(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func call(t *testing.T, path string, req Request) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Call(ctx, path, req)
}

func TestRoundTrip(t *testing.T) {
	h := &fakeHandler{}
	_, path := listen(t, h)
	tests := []struct {
		name  string
		req   Request
		check func(t *testing.T, r *Response)
	}{
		{"stats", Request{Cmd: CmdStats}, func(t *testing.T, r *Response) {
			if r.Stats == nil || r.Stats.UptimeSeconds != 7 || r.Stats.Table.Sessions != 2 {
				t.Errorf("stats %+v", r.Stats)
			}
		}},
		{"sessions", Request{Cmd: CmdSessions, Filter: &SessionFilter{App: "ftp", Port: 21}, Limit: 1}, func(t *testing.T, r *Response) {
			if r.Sessions == nil || r.Sessions.Matched != 5 || len(r.Sessions.Sessions) != 1 {
				t.Fatalf("sessions %+v", r.Sessions)
			}
			s := r.Sessions.Sessions[0]
			if s.ID != 3 || s.App != "ftp" || s.Initiator.Dst.String() != "198.18.0.204:9091" {
				t.Errorf("session %+v", s)
			}
			if q := h.queries[len(h.queries)-1]; q != (SessionQuery{Filter: SessionFilter{App: "ftp", Port: 21}, Limit: 1}) {
				t.Errorf("handler asked %+v", q)
			}
		}},
		{"clear", Request{Cmd: CmdClear, Filter: &SessionFilter{Rule: "nat.server[0]"}}, func(t *testing.T, r *Response) {
			if r.Cleared == nil || *r.Cleared != (ClearResult{Matched: 2, Cleared: 2}) {
				t.Fatalf("cleared %+v", r.Cleared)
			}
			if f := h.clears[len(h.clears)-1]; f != (SessionFilter{Rule: "nat.server[0]"}) {
				t.Errorf("handler asked to clear %+v", f)
			}
		}},
		{"clear all", Request{Cmd: CmdClear, All: true}, func(t *testing.T, r *Response) {
			if r.Cleared == nil || h.clears[len(h.clears)-1] != (SessionFilter{}) {
				t.Fatalf("cleared %+v, asked %+v", r.Cleared, h.clears)
			}
		}},
		{"expectations", Request{Cmd: CmdExpectations}, func(t *testing.T, r *Response) {
			if len(r.Expectations) != 1 || r.Expectations[0].Dst.Port() != 30001 {
				t.Errorf("expectations %+v", r.Expectations)
			}
		}},
		{"mappings", Request{Cmd: CmdMappings}, func(t *testing.T, r *Response) {
			if len(r.Mappings) != 1 || r.Mappings[0].Port != 9091 {
				t.Errorf("mappings %+v", r.Mappings)
			}
		}},
		{"reload", Request{Cmd: CmdReload}, func(t *testing.T, r *Response) {
			if r.Reload == nil || r.Reload.PortMappings != 1 || h.reloads != 1 {
				t.Errorf("reload %+v after %d reloads", r.Reload, h.reloads)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := call(t, path, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestRequestErrors(t *testing.T) {
	h := &fakeHandler{refuse: true}
	_, path := listen(t, h)
	tests := []struct {
		name string
		req  Request
		want error
		msg  string
	}{
		{"refused reload", Request{Cmd: CmdReload}, ErrRefused, "fastnat.toml:4:9: dataplane.batch"},
		{"unknown command", Request{Cmd: "frobnicate"}, ErrBadRequest, `unknown command "frobnicate"`},
		{"negative limit", Request{Cmd: CmdSessions, Limit: -1}, ErrBadRequest, "limit -1"},
		{"handler's bad request", Request{Cmd: CmdSessions, Filter: &SessionFilter{App: "nope"}}, ErrBadRequest, "unknown application"},
		{"clear without a filter", Request{Cmd: CmdClear}, ErrBadRequest, "needs a filter, or all"},
		{"clear with an empty filter", Request{Cmd: CmdClear, Filter: &SessionFilter{}}, ErrBadRequest, "needs a filter, or all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := call(t, path, tc.req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v containing %q", err, tc.want, tc.msg)
			}
			var ce *Error
			if !errors.As(err, &ce) || r == nil || r.Code != ce.Code {
				t.Errorf("err %T, response %+v", err, r)
			}
		})
	}
}

func TestMalformedRequest(t *testing.T) {
	_, path := listen(t, &fakeHandler{})
	for _, raw := range []string{"{", "not json", `{"cmd": 5}`, ""} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(raw))
		c.(*net.UnixConn).CloseWrite()
		var buf [4096]byte
		n, _ := c.Read(buf[:])
		c.Close()
		if !strings.Contains(string(buf[:n]), `"code":"bad_request"`) {
			t.Errorf("request %q: answer %q", raw, buf[:n])
		}
	}
	// The server still answers afterwards.
	if _, err := call(t, path, Request{Cmd: CmdStats}); err != nil {
		t.Fatal(err)
	}
}

// TestSocketMode: the socket is 0600 whatever the umask.
func TestSocketMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	_, path := listen(t, &fakeHandler{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want a socket with 0600", fi.Mode())
	}
}

// TestSocketGroup: with an operator group the socket is 0660 and the
// group's, it answers at its path, nothing is left beside it, and Close
// removes it.
func TestSocketGroup(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "ctl.sock")
	gid := os.Getgid() // a group any process may give its files
	if os.Geteuid() == 0 {
		gid = 4242 // root may give any
	}
	s, err := ListenGroup(path, gid, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || int(st.Gid) != gid {
		t.Errorf("mode %v group %d, want a socket with 0660 and group %d", fi.Mode(), st.Gid, gid)
	}
	if _, err := Call(context.Background(), path, Request{Cmd: CmdStats}); err != nil {
		t.Errorf("stats over the renamed socket: %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d entries beside the socket, want only it", len(es))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	// A daemon that died: the file stays, nothing listens.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s, err := Listen(path, &fakeHandler{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()
	if _, err := call(t, path, Request{Cmd: CmdStats}); err != nil {
		t.Fatal(err)
	}
}

func TestSocketInUse(t *testing.T) {
	_, path := listen(t, &fakeHandler{})
	if _, err := Listen(path, &fakeHandler{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	if _, err := call(t, path, Request{Cmd: CmdStats}); err != nil {
		t.Fatalf("first server disturbed: %v", err)
	}
}

func TestNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, &fakeHandler{}); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("Listen over a file: %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("file changed to %q", b)
	}
}

func TestCloseRemovesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still there: %v", err)
	}
	if _, err := call(t, path, Request{Cmd: CmdStats}); err == nil {
		t.Error("call after Close succeeded")
	}
}

func TestCallNoDaemon(t *testing.T) {
	_, err := call(t, filepath.Join(t.TempDir(), "none.sock"), Request{Cmd: CmdStats})
	if err == nil || !strings.Contains(err.Error(), "is fastnat running?") {
		t.Fatalf("err %v", err)
	}
}

// TestCallCancelled: a daemon that never answers does not hang the client
// past its context.
func TestCallCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			<-done
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Call(ctx, path, Request{Cmd: CmdStats}); err == nil {
		t.Fatal("call to a mute daemon succeeded")
	}
}
