package syslog

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/natlogtest"
)

// rsyslogConf makes rsyslogd a collector for the test: UDP, TCP and a
// datagram socket in, RFC 5424 parsed by rsyslog's own parser and its
// structured data by mmpstrucdata, one tab-separated line per message
// out.
const rsyslogConf = `
global(workDirectory="%[1]s")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
module(load="mmpstrucdata")
template(name="t" type="list") {
  property(name="inputname") constant(value="\t")
  property(name="msgid") constant(value="\t")
  property(name="hostname") constant(value="\t")
  property(name="app-name") constant(value="\t")
  property(name="syslogfacility") constant(value="\t")
  property(name="syslogseverity") constant(value="\t")
  property(name="timereported" dateFormat="rfc3339") constant(value="\t")
  property(name="$!rfc5424-sd") constant(value="\t")
  property(name="msg" droplastlf="on") constant(value="\n")
}
ruleset(name="r") {
  action(type="mmpstrucdata")
  action(type="omfile" file="%[1]s/out.log" template="t")
}
input(type="imudp" address="127.0.0.1" port="%[2]d" ruleset="r")
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="r")
input(type="imuxsock" Socket="%[1]s/log.sock" ruleset="r" useSpecialParser="off" parseHostname="on" ignoreTimestamp="off")
`

func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRsyslogParsesEveryEvent sends every event type over the three
// transports to rsyslogd, whose RFC 5424 parser and mmpstrucdata must
// read back the header fields and every structured-data parameter. It
// skips without rsyslogd (Debian: rsyslog; .ci/run installs it).
func TestRsyslogParsesEveryEvent(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not found (Debian: rsyslog; .ci/run installs it)")
	}
	dir := t.TempDir()
	udpPort, tcpPort := freePort(t, "udp"), freePort(t, "tcp")
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, rsyslogConf, dir, udpPort, tcpPort), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "pid"))
	out, _ := os.Create(filepath.Join(dir, "stderr"))
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	sock := filepath.Join(dir, "log.sock")
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, serr := os.Stat(sock)
		c, derr := net.Dial("tcp4", tcpAddr)
		if derr == nil {
			c.Close()
		}
		if serr == nil && derr == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			t.Fatalf("rsyslogd did not start: %v, %v\n%s", serr, derr, log)
		}
	}
	for _, cfg := range []Config{
		{Transport: UDP, Address: fmt.Sprintf("127.0.0.1:%d", udpPort)},
		{Transport: TCP, Address: tcpAddr},
		{Transport: Unix, Address: sock},
	} {
		exportAll(t, cfg)
	}

	evs := natlogtest.Events()
	var lines []string
	for deadline := time.Now().Add(60 * time.Second); len(lines) < 3*len(evs); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "out.log"))
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd wrote %d lines, want %d:\n%s", len(lines), 3*len(evs), b)
		}
	}
	type key struct{ msgid, time string }
	byKey := map[key][]string{}
	inputs := map[string]int{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 9 {
			t.Fatalf("line %q has %d fields", l, len(f))
		}
		inputs[f[0]]++
		ts, err := time.Parse(time.RFC3339Nano, f[6])
		if err != nil {
			t.Fatalf("rsyslog's timestamp %q: %v", f[6], err)
		}
		k := key{f[1], strconv.FormatInt(ts.UnixMilli(), 10)}
		byKey[k] = append(byKey[k], l)
	}
	for _, in := range []string{"imudp", "imtcp", "imuxsock"} {
		if inputs[in] != len(evs) {
			t.Errorf("%s delivered %d messages, want %d", in, inputs[in], len(evs))
		}
	}
	for _, e := range evs {
		got := byKey[key{e.Type.String(), strconv.FormatInt(e.Time, 10)}]
		if len(got) != 3 {
			t.Errorf("%s at %d: rsyslog has %d messages, want 3: %q", e.Type, e.Time, len(got), got)
			continue
		}
		sev := "6"
		if e.Type == natlog.AddressesExhausted || e.Type == natlog.PortsExhausted || e.Type == natlog.QuotaExceeded {
			sev = "4"
		}
		for _, l := range got {
			f := strings.Split(l, "\t")
			if f[2] != "nat1" || f[3] != "fastnat" || f[4] != strconv.Itoa(DefaultFacility) || f[5] != sev {
				t.Errorf("%s via %s: host %q app %q facility %q severity %q", e.Type, f[0], f[2], f[3], f[4], f[5])
			}
			var sd map[string]map[string]string
			if err := json.Unmarshal([]byte(f[7]), &sd); err != nil {
				t.Errorf("%s via %s: mmpstrucdata's JSON %q: %v", e.Type, f[0], f[7], err)
				continue
			}
			if got, want := sd[SDID], wantSD(e); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s via %s: rsyslog read structured data\n %v\nwant %v", e.Type, f[0], got, want)
			}
			if want := string(e.AppendBody(nil)); strings.TrimSpace(f[8]) != want {
				t.Errorf("%s via %s: MSG %q, want %q", e.Type, f[0], f[8], want)
			}
		}
	}
}
