package syslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/natlogtest"
	"github.com/fastnat/fastnat/packet"
)

// parsed is one message as the tests' own strict RFC 5424 parser (below)
// reads it.
type parsed struct {
	pri, version                  int
	ts                            time.Time
	host, app, procID, msgID, msg string
	sd                            map[string]map[string]string
}

// parse5424 reads one SYSLOG-MSG by RFC 5424 §6's ABNF, refusing what
// the grammar does not allow.
func parse5424(s string) (parsed, error) {
	var p parsed
	if !strings.HasPrefix(s, "<") {
		return p, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return p, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return p, fmt.Errorf("PRIVAL %q", s[1:end])
	}
	p.pri, s = pri, s[end+1:]
	field := func(name string, max int) (string, error) {
		i := strings.IndexByte(s, ' ')
		if i < 1 {
			return "", fmt.Errorf("%s missing", name)
		}
		f := s[:i]
		s = s[i+1:]
		if len(f) > max {
			return "", fmt.Errorf("%s longer than %d", name, max)
		}
		for _, c := range []byte(f) {
			if c < 33 || c > 126 {
				return "", fmt.Errorf("%s has %q", name, c)
			}
		}
		return f, nil
	}
	v, err := field("VERSION", 3)
	if err != nil {
		return p, err
	}
	if p.version, err = strconv.Atoi(v); err != nil || v[0] == '0' {
		return p, fmt.Errorf("VERSION %q", v)
	}
	ts, err := field("TIMESTAMP", 32)
	if err != nil {
		return p, err
	}
	if p.ts, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return p, fmt.Errorf("TIMESTAMP: %v", err)
	}
	if frac := strings.IndexByte(ts, '.'); frac >= 0 && len(strings.TrimRight(ts[frac+1:], "Z+-:0123456789")) > 0 {
		return p, fmt.Errorf("TIMESTAMP %q", ts)
	}
	if p.host, err = field("HOSTNAME", 255); err != nil {
		return p, err
	}
	if p.app, err = field("APP-NAME", 48); err != nil {
		return p, err
	}
	if p.procID, err = field("PROCID", 128); err != nil {
		return p, err
	}
	if p.msgID, err = field("MSGID", 32); err != nil {
		return p, err
	}
	p.sd = map[string]map[string]string{}
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		for strings.HasPrefix(s, "[") {
			s = s[1:]
			i := strings.IndexAny(s, " ]")
			if i < 1 {
				return p, errors.New("SD-ID")
			}
			id := s[:i]
			s = s[i:]
			params := map[string]string{}
			for strings.HasPrefix(s, " ") {
				s = s[1:]
				eq := strings.IndexByte(s, '=')
				if eq < 1 || eq > 32 || strings.ContainsAny(s[:eq], " ]\"") {
					return p, fmt.Errorf("PARAM-NAME in %q", s)
				}
				name := s[:eq]
				s = s[eq+1:]
				if !strings.HasPrefix(s, `"`) {
					return p, fmt.Errorf("PARAM-VALUE of %s not quoted", name)
				}
				s = s[1:]
				var val strings.Builder
				for {
					if s == "" {
						return p, fmt.Errorf("PARAM-VALUE of %s unterminated", name)
					}
					c := s[0]
					s = s[1:]
					if c == '\\' && s != "" && strings.ContainsRune(`"\]`, rune(s[0])) {
						val.WriteByte(s[0])
						s = s[1:]
						continue
					}
					if c == '"' {
						break
					}
					if c == ']' {
						return p, fmt.Errorf("unescaped ] in %s", name)
					}
					val.WriteByte(c)
				}
				if _, dup := params[name]; dup {
					return p, fmt.Errorf("PARAM-NAME %s twice", name)
				}
				params[name] = val.String()
			}
			if !strings.HasPrefix(s, "]") {
				return p, fmt.Errorf("SD-ELEMENT %s not closed", id)
			}
			s = s[1:]
			p.sd[id] = params
		}
		if len(p.sd) == 0 {
			return p, errors.New("no STRUCTURED-DATA")
		}
	}
	if s != "" {
		if s[0] != ' ' {
			return p, errors.New("no SP before MSG")
		}
		p.msg = s[1:]
	}
	return p, nil
}

// wantSD is the structured data a message about e must carry.
func wantSD(e natlog.Event) map[string]string {
	rule := string(e.AppendRule(nil))
	a := func(x uint32) string { return string(natlog.AppendAddr(nil, x)) }
	u := func(x uint64) string { return strconv.FormatUint(x, 10) }
	ms := func(t int64) string { return time.UnixMilli(t).UTC().Format("2006-01-02T15:04:05.000Z") }
	w := map[string]string{"rule": rule}
	switch e.Type {
	case natlog.SessionCreate, natlog.SessionDelete:
		w["proto"], w["app"] = packet.ProtoName(e.Inside.Proto), map[uint8]string{3: "http", 1: "ftp"}[e.App]
		w["src"], w["sport"], w["dst"], w["dport"] = a(e.Inside.SrcAddr), u(uint64(e.Inside.SrcPort)), a(e.Inside.DstAddr), u(uint64(e.Inside.DstPort))
		w["xsrc"], w["xsport"], w["xdst"], w["xdport"] = a(e.Outside.SrcAddr), u(uint64(e.Outside.SrcPort)), a(e.Outside.DstAddr), u(uint64(e.Outside.DstPort))
		if e.Inbound {
			w["inbound"] = "1"
		}
		if e.Type == natlog.SessionDelete {
			w["start"] = ms(e.Start)
			w["ipkts"], w["ibytes"], w["rpkts"], w["rbytes"] = u(e.Packets[0]), u(e.Bytes[0]), u(e.Packets[1]), u(e.Bytes[1])
		}
	case natlog.BindingCreate, natlog.BindingDelete:
		w["proto"] = packet.ProtoName(e.Inside.Proto)
		w["src"], w["sport"], w["xsrc"], w["xsport"] = a(e.Inside.SrcAddr), u(uint64(e.Inside.SrcPort)), a(e.Outside.SrcAddr), u(uint64(e.Outside.SrcPort))
		if e.Type == natlog.BindingDelete {
			w["start"] = ms(e.Start)
		}
	case natlog.BlockAlloc, natlog.BlockRelease:
		w["src"], w["xsrc"], w["first"], w["last"] = a(e.Inside.SrcAddr), a(e.Outside.SrcAddr), u(uint64(e.First)), u(uint64(e.Last))
		if e.Type == natlog.BlockRelease {
			w["start"] = ms(e.Start)
		}
	case natlog.PortsExhausted:
		w["proto"], w["xsrc"] = packet.ProtoName(e.Inside.Proto), a(e.Outside.SrcAddr)
	case natlog.QuotaExceeded:
		w["src"], w["limit"] = a(e.Inside.SrcAddr), u(uint64(e.Limit))
	}
	return w
}

// checkMessage parses one message and compares it with e.
func checkMessage(t *testing.T, msg string, e natlog.Event, host string) {
	t.Helper()
	p, err := parse5424(msg)
	if err != nil {
		t.Errorf("%s: not RFC 5424: %v\n%s", e.Type, err, msg)
		return
	}
	sev := 6
	if e.Type == natlog.AddressesExhausted || e.Type == natlog.PortsExhausted || e.Type == natlog.QuotaExceeded {
		sev = 4
	}
	if p.pri != DefaultFacility*8+sev || p.version != 1 || p.host != host || p.app != "fastnat" || p.msgID != e.Type.String() {
		t.Errorf("%s: header pri %d version %d host %q app %q msgid %q", e.Type, p.pri, p.version, p.host, p.app, p.msgID)
	}
	if !p.ts.Equal(time.UnixMilli(e.Time)) {
		t.Errorf("%s: timestamp %v, want %v", e.Type, p.ts, time.UnixMilli(e.Time).UTC())
	}
	if got, want := p.sd[SDID], wantSD(e); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: structured data\n got %v\nwant %v", e.Type, got, want)
	}
	if want := string(e.AppendBody(nil)); p.msg != want {
		t.Errorf("%s: MSG %q, want %q", e.Type, p.msg, want)
	}
}

func TestFormatEveryEvent(t *testing.T) {
	h := header{facility: DefaultFacility, hostname: "nat1", appName: "fastnat", procID: "4242"}
	evs := natlogtest.Events()
	for _, e := range evs {
		checkMessage(t, string(h.appendMessage(nil, &e)), e, "nat1")
	}
	got := string(h.appendMessage(nil, &evs[0]))
	want := `<134>1 2025-12-03T09:18:26.295Z nat1 fastnat 4242 session-create [nat@32473 rule="nat.outbound[0\]" proto="tcp" src="10.77.0.5" sport="40000" dst="198.51.100.1" dport="80" xsrc="198.18.0.204" xsport="40123" xdst="198.51.100.1" xdport="80" app="http"] session-create tcp 10.77.0.5:40000 -> 198.51.100.1:80 as 198.18.0.204:40123 -> 198.51.100.1:80 nat.outbound[0] app=http`
	if got != want {
		t.Errorf("session-create:\n got %s\nwant %s", got, want)
	}
	e := evs[0]
	if n := testing.AllocsPerRun(100, func() { h.appendMessage(make([]byte, 0, 1024)[:0], &e) }); n > 1 {
		t.Errorf("%v allocations per message", n) // the buffer made above is the one
	}
}

func TestParserRefusesBadMessages(t *testing.T) {
	for i, m := range []string{
		`<134>1 2025-12-03T09:18:26.295Z h a p m [x a="1" b="[0\]"] msg`, // valid: the control
		`<192>1 2025-12-03T09:18:26.295Z h a p m - msg`,
		`<134>0 2025-12-03T09:18:26.295Z h a p m - msg`,
		`<134>1 yesterday h a p m - msg`,
		`<134>1 2025-12-03T09:18:26.295Z h a p m [x a=1]`,
		`<134>1 2025-12-03T09:18:26.295Z h a p m [x a="]"]`,
		`<134>1 2025-12-03T09:18:26.295Z h a p thirty-three-characters-long-msgid - x`,
	} {
		_, err := parse5424(m)
		if ok := err == nil; ok != (i == 0) {
			t.Errorf("parse %q: %v", m, err)
		}
	}
}

// collect reads messages from a listener into a channel.
type collect struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collect) add(m string) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collect) wait(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c.mu.Lock()
		got := append([]string(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages arrived, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exportAll(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Hostname = "nat1"
	cfg.Facility = DefaultFacility
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if failed, err := x.Export(natlogtest.Events()); failed != 0 || err != nil {
		t.Fatalf("export: %d failed, %v", failed, err)
	}
}

func checkAll(t *testing.T, msgs []string) {
	t.Helper()
	evs := natlogtest.Events()
	if len(msgs) != len(evs) {
		t.Fatalf("%d messages, want %d", len(msgs), len(evs))
	}
	for i, e := range evs {
		checkMessage(t, msgs[i], e, "nat1")
	}
}

func TestUDP(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got collect
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got.add(string(buf[:n]))
		}
	}()
	exportAll(t, Config{Transport: UDP, Address: c.LocalAddr().String()})
	checkAll(t, got.wait(t, len(natlogtest.Events())))
}

func TestUnixDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got collect
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got.add(string(buf[:n]))
		}
	}()
	exportAll(t, Config{Transport: Unix, Address: path})
	checkAll(t, got.wait(t, len(natlogtest.Events())))
}

// readFramed reads RFC 6587 octet-counted messages from a stream.
func readFramed(r *bufio.Reader, got *collect) error {
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return err
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size < 1 {
			return fmt.Errorf("MSG-LEN %q", n)
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(r, msg); err != nil {
			return err
		}
		got.add(string(msg))
	}
}

func TestTCPFramingAndReconnect(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var got collect
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				readFramed(bufio.NewReader(c), &got)
			}()
		}
	}
	go serve(ln)
	x, err := New(Config{Transport: TCP, Address: addr, Hostname: "nat1", Facility: DefaultFacility})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	evs := natlogtest.Events()
	if failed, err := x.Export(evs); failed != 0 || err != nil {
		t.Fatalf("export: %d failed, %v", failed, err)
	}
	checkAll(t, got.wait(t, len(evs)))

	// The receiver goes away: what cannot be written is counted, and no
	// more than that.
	ln.Close()
	x.conn.(*net.TCPConn).SetLinger(0)
	x.conn.Close() // as if the peer had reset it
	failed, err := x.Export(evs)
	if failed != len(evs) || err == nil {
		t.Fatalf("export to a closed receiver: %d failed, %v", failed, err)
	}
	// It comes back on the same port: after the back-off, Tick reconnects
	// and the next batch arrives whole.
	ln2, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer ln2.Close()
	go serve(ln2)
	for deadline := time.Now().Add(30 * time.Second); x.conn == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no reconnection")
		}
		x.Tick(time.Now())
	}
	if failed, err := x.Export(evs); failed != 0 || err != nil {
		t.Fatalf("export after reconnection: %d failed, %v", failed, err)
	}
	msgs := got.wait(t, 2*len(evs))
	checkAll(t, msgs[len(evs):])
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Transport: "sctp", Address: "127.0.0.1:514"},
		{Transport: UDP, Address: "localhost:514"},
		{Transport: TCP, Address: "127.0.0.1"},
		{Transport: Unix},
		{Transport: UDP, Address: "127.0.0.1:514", Facility: 24},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if f, err := ParseFacility("LOCAL7"); f != 23 || err != nil {
		t.Errorf("ParseFacility(LOCAL7) = %d, %v", f, err)
	}
	if _, err := ParseFacility("local8"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseFacility(local8): %v", err)
	}
}
