package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The collectors of the event log tests, none written here: nfdump's
// nfcapd stores IPFIX, rsyslogd stores syslog (RFC 5424 over TCP, its
// structured data parsed by mmpstrucdata), and tshark captures the IPFIX
// on the wire. They run in the router namespace, on its loopback, where
// fastnat's exporters reach them.

const (
	ipfixCollector  = "127.0.0.1:4739"
	syslogCollector = "127.0.0.1:5514"
)

// collectorsRsyslogConf: TCP in, one tab-separated line per message out:
// MSGID, the structured data as JSON, the message.
const collectorsRsyslogConf = `
global(workDirectory="%[1]s")
module(load="imtcp")
module(load="mmpstrucdata")
template(name="t" type="list") {
  property(name="msgid") constant(value="\t")
  property(name="$!rfc5424-sd") constant(value="\t")
  property(name="msg" droplastlf="on") constant(value="\n")
}
ruleset(name="r") {
  action(type="mmpstrucdata")
  action(type="omfile" file="%[1]s/syslog.log" template="t")
}
input(type="imtcp" address="127.0.0.1" port="5514" ruleset="r")
`

type collectors struct {
	dir     string
	nfcapd  *testnet.Process
	rsyslog *testnet.Process
	tshark  *testnet.Process // nil unless asked for
}

// startCollectors starts nfcapd and rsyslogd, and tshark capturing the
// IPFIX when capture is set, in topo's router namespace, and waits until
// they listen. It skips the test when one is not installed.
func startCollectors(t *testing.T, topo *testnet.Topology, capture bool) *collectors {
	t.Helper()
	tools := []string{"nfcapd", "nfdump", "rsyslogd"}
	if capture {
		tools = append(tools, "tshark")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(testnet.ToolPath(tool)); err != nil {
			t.Skipf("%s not found (Debian: nfdump, rsyslog, tshark; .ci/run installs them)", tool)
		}
	}
	c := &collectors{dir: t.TempDir()}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if capture {
		if c.tshark, err = topo.Start(topo.Router, "tshark", "-i", "lo", "-f", "udp port 4739", "-w", filepath.Join(c.dir, "ipfix.pcap")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "tshark to capture", func() bool { return strings.Contains(c.tshark.Output(), "Capturing on") })
	}
	if c.nfcapd, err = topo.Start(topo.Router, "nfcapd", "-w", c.dir, "-b", "127.0.0.1", "-p", "4739"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(c.dir, "rsyslog.conf")
	writeFile(t, conf, fmt.Sprintf(collectorsRsyslogConf, c.dir))
	if c.rsyslog, err = topo.Start(topo.Router, "rsyslogd", "-n", "-f", conf, "-i", filepath.Join(c.dir, "rsyslog.pid")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rsyslogd to listen", func() bool {
		ok := false
		_ = testnet.Do(topo.Router, func() error {
			if conn, err := net.Dial("tcp4", syslogCollector); err == nil {
				conn.Close()
				ok = true
			}
			return nil
		})
		return ok
	})
	waitFor(t, "nfcapd to start", func() bool { return strings.Contains(c.nfcapd.Output(), "Startup") })
	t.Cleanup(c.stop)
	return c
}

// logging is the [logging] of a fastnat that exports to the collectors.
func (c *collectors) logging() string {
	return `
[logging]
ring = 262144

[[logging.ipfix]]
collector = "` + ipfixCollector + `"
template_refresh = "2s"

[[logging.syslog]]
transport = "tcp"
address = "` + syslogCollector + `"
hostname = "nat1"
`
}

// stop stops the collectors, so that they write out what they hold.
func (c *collectors) stop() {
	for _, p := range []*testnet.Process{c.nfcapd, c.rsyslog, c.tshark} {
		if p != nil {
			p.Stop()
		}
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

// syslogLine is one message rsyslogd stored.
type syslogLine struct {
	MsgID string
	SD    map[string]string // fastnat's structured data parameters
	Msg   string
}

// syslog returns what rsyslogd has stored so far.
func (c *collectors) syslog(t *testing.T) []syslogLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "syslog.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []syslogLine
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("rsyslog line %q", l)
		}
		var sd map[string]map[string]string
		if err := json.Unmarshal([]byte(f[1]), &sd); err != nil {
			t.Fatalf("rsyslog's structured data %q: %v", f[1], err)
		}
		out = append(out, syslogLine{MsgID: f[0], SD: sd["nat@32473"], Msg: strings.TrimSpace(f[2])})
	}
	return out
}

// nfdump stops nfcapd (which then closes its file) and returns every
// record nfdump reads back, as its JSON output names the fields.
func (c *collectors) nfdump(t *testing.T) []map[string]any {
	t.Helper()
	c.nfcapd.Stop()
	files, _ := filepath.Glob(filepath.Join(c.dir, "nfcapd.*"))
	var recs []map[string]any
	for _, f := range files {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, testnet.ToolPath("nfdump"), "-r", f, "-o", "json")
		cmd.Env = append(os.Environ(), "TZ=UTC")
		js, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("nfdump -r %s: %v", f, err)
		}
		// nfdump 1.7 writes "No matching flows" inside its JSON array for a
		// file without records: nfcapd starts a new file at every
		// five-minute boundary, and a run that crosses one leaves an
		// empty file behind.
		js = bytes.ReplaceAll(js, []byte("No matching flows\n"), nil)
		var rs []map[string]any
		if err := json.Unmarshal(js, &rs); err != nil {
			t.Fatalf("nfdump's JSON from %s: %v: %.200q", f, err, js)
		}
		recs = append(recs, rs...)
	}
	return recs
}

// tsharkRecords stops the capture and returns the flow records tshark
// decodes from it, each as a map of cflow field to value.
func (c *collectors) tsharkRecords(t *testing.T) []map[string]any {
	t.Helper()
	c.tshark.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pkts, err := testnet.TsharkPackets(ctx, filepath.Join(c.dir, "ipfix.pcap"), "-d", "udp.port==4739,cflow")
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, layers := range pkts {
		var cflow map[string]any
		if raw, ok := layers["cflow"]; !ok || json.Unmarshal(raw, &cflow) != nil {
			continue
		}
		for k, v := range cflow {
			set, ok := v.(map[string]any)
			if !strings.HasPrefix(k, "Set ") || !ok {
				continue
			}
			for fk, fv := range set {
				if f, ok := fv.(map[string]any); ok && strings.HasPrefix(fk, "Flow ") {
					recs = append(recs, f)
				}
			}
		}
	}
	return recs
}

// str formats a JSON value as collectors print it (numbers without
// exponent).
func str(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
