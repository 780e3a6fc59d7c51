package ipfix

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/natlog"
)

// These tests hand fastnat's IPFIX to collectors nobody here wrote:
// Wireshark's dissector (tshark) and nfdump's nfcapd. They skip when the
// Debian packages tshark and nfdump are missing (.ci/run installs them).

func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (Debian: %s; .ci/run installs it)", name, pkg)
	}
	return p
}

// writePcap writes Ethernet frames to a pcap file (the classic format:
// microsecond timestamps, link type 1).
func writePcap(t *testing.T, path string, frames [][]byte) {
	t.Helper()
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 1) // Ethernet
	now := time.Now()
	for _, f := range frames {
		b = le.AppendUint32(b, uint32(now.Unix()))
		b = le.AppendUint32(b, uint32(now.Nanosecond()/1000))
		b = le.AppendUint32(b, uint32(len(f)))
		b = le.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func addrString(a uint32) string {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
}

// wiresharkTime is how tshark prints a dateTimeMilliseconds.
func wiresharkTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("Jan _2, 2006 15:04:05.000000000 UTC")
}

// tsharkWant is what Wireshark's cflow dissector must show for e, by its
// field names.
func tsharkWant(e natlog.Event) map[string]any {
	k := kinds[e.Type]
	w := map[string]any{
		"cflow.observation_time_milliseconds": wiresharkTime(e.Time),
		"cflow.nat_event":                     strconv.Itoa(int(k.natEvent)),
	}
	u := func(x uint64) string { return strconv.FormatUint(x, 10) }
	switch e.Type {
	case natlog.SessionCreate, natlog.SessionDelete, natlog.BindingCreate, natlog.BindingDelete:
		w["cflow.srcaddr"] = addrString(e.Inside.SrcAddr)
		w["cflow.post_natsource_ipv4_address"] = addrString(e.Outside.SrcAddr)
		w["cflow.protocol"] = u(uint64(e.Inside.Proto))
		w["cflow.srcport"] = u(uint64(e.Inside.SrcPort))
		w["cflow.post_naptsource_transport_port"] = u(uint64(e.Outside.SrcPort))
		if e.Type == natlog.SessionCreate || e.Type == natlog.SessionDelete {
			w["cflow.dstaddr"] = addrString(e.Inside.DstAddr)
			w["cflow.post_natdestination_ipv4_address"] = addrString(e.Outside.DstAddr)
			w["cflow.dstport"] = u(uint64(e.Inside.DstPort))
			w["cflow.post_naptdestination_transport_port"] = u(uint64(e.Outside.DstPort))
		}
		if e.Type == natlog.SessionDelete {
			w["cflow.permanent_packets"] = []any{u(e.Packets[0]), u(e.Packets[1])}
			w["cflow.permanent_octets"] = []any{u(e.Bytes[0]), u(e.Bytes[1])}
			w["cflow.timedelta_tree"] = map[string]any{
				"cflow.abstimestart": wiresharkTime(e.Start),
				"cflow.abstimeend":   wiresharkTime(e.Time),
			}
		}
	case natlog.BlockAlloc, natlog.BlockRelease:
		w["cflow.srcaddr"] = addrString(e.Inside.SrcAddr)
		w["cflow.post_natsource_ipv4_address"] = addrString(e.Outside.SrcAddr)
		w["cflow.port_range_start"] = u(uint64(e.First))
		w["cflow.port_range_end"] = u(uint64(e.Last))
		w["cflow.port_range_step_size"] = "1"
		w["cflow.port_range_num_ports"] = u(uint64(e.Last - e.First + 1))
	case natlog.AddressesExhausted:
		w["cflow.nat_pool_id"] = u(uint64(PoolID(&e)))
	case natlog.PortsExhausted:
		w["cflow.post_natsource_ipv4_address"] = addrString(e.Outside.SrcAddr)
		w["cflow.protocol"] = u(uint64(e.Inside.Proto))
	case natlog.QuotaExceeded:
		w["cflow.nat_quota_exceeded_event"] = "3"
		w["cflow.max_entries_per_user"] = u(uint64(e.Limit))
		w["cflow.srcaddr"] = addrString(e.Inside.SrcAddr)
	}
	return w
}

func TestTsharkDecodesEveryEvent(t *testing.T) {
	tshark := lookTool(t, "tshark", "tshark")
	s := newSink(t)
	x := newExporter(t, s, Config{Domain: 7})
	evs := events()
	x.Export(evs)
	got := s.wait(t, 2)
	var frames [][]byte
	for _, d := range got {
		// 4739 is IPFIX's port: tshark dissects it without being told.
		frames = append(frames, testutil.UDP(t, "198.18.0.1:40000", "198.18.0.2:4739", d))
	}
	pcap := filepath.Join(t.TempDir(), "ipfix.pcap")
	writePcap(t, pcap, frames)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pkts, err := testnet.TsharkPackets(ctx, pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != len(frames) {
		t.Fatalf("tshark read %d packets, want %d", len(pkts), len(frames))
	}
	// Every flow record tshark shows, keyed by its observation time (each
	// test event has its own).
	flows := map[string]map[string]any{}
	for i, layers := range pkts {
		raw, ok := layers["cflow"]
		if !ok {
			t.Fatalf("packet %d was not dissected as IPFIX: layers %v", i+1, keys(layers))
		}
		var cflow map[string]any
		if err := json.Unmarshal(raw, &cflow); err != nil {
			t.Fatal(err)
		}
		for k, v := range cflow {
			set, ok := v.(map[string]any)
			if !strings.HasPrefix(k, "Set ") || !ok {
				continue
			}
			for fk, fv := range set {
				if f, ok := fv.(map[string]any); ok && strings.HasPrefix(fk, "Flow ") {
					flows[fmt.Sprint(f["cflow.observation_time_milliseconds"])] = f
				}
			}
		}
	}
	if len(flows) != len(evs) {
		t.Fatalf("tshark shows %d flow records, want %d", len(flows), len(evs))
	}
	for _, e := range evs {
		f := flows[wiresharkTime(e.Time)]
		for k, want := range tsharkWant(e) {
			if got := f[k]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %s = %v, want %v", e.Type, k, got, want)
			}
		}
	}

	// Nothing malformed, no dissector warnings.
	out, err := exec.CommandContext(ctx, tshark, "-r", pcap, "-Y", "_ws.malformed || _ws.expert.severity >= warning").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("tshark flags: %s", l)
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// freeUDPPort returns a loopback UDP port nothing listens on right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// waitOutput waits until f holds for what the process printed.
func waitOutput(t *testing.T, out *testutil.SyncBuffer, what string, f func(string) bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !f(out.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; output so far:\n%s", what, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNfcapdStoresEvents sends every event type to nfcapd, which stores
// what it understands, and reads the file back with nfdump: the NAT
// tuples, event numbers, times and counters must be what fastnat sent.
// (nfdump 1.7.1, Debian 12's, stores natEvent, the post-NAT tuple,
// flowStart/End and the biflow counters, but not port ranges or the pool
// ID; tshark checks those.)
func TestNfcapdStoresEvents(t *testing.T) {
	nfcapd := lookTool(t, "nfcapd", "nfdump")
	nfdump := lookTool(t, "nfdump", "nfdump")
	dir := t.TempDir()
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// -E prints each record as it arrives, which tells when all are in;
	// stdbuf (coreutils) keeps that output from sitting in stdio's buffer.
	args := []string{"-E", "-w", dir, "-b", "127.0.0.1", "-p", strconv.Itoa(port)}
	cmd := exec.CommandContext(ctx, nfcapd, args...)
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		cmd = exec.CommandContext(ctx, stdbuf, append([]string{"-oL", nfcapd}, args...)...)
	}
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	waitOutput(t, &out, "nfcapd to start", func(s string) bool { return strings.Contains(s, "Startup") })

	x, err := New(Config{Collector: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), Domain: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	evs := events()
	if failed, err := x.Export(evs); failed != 0 || err != nil {
		t.Fatalf("export: %d failed, %v", failed, err)
	}
	waitOutput(t, &out, fmt.Sprintf("%d records at nfcapd", len(evs)), func(s string) bool {
		return strings.Count(s, "Flow Record:") >= len(evs)
	})
	// SIGTERM makes nfcapd close its current file under its final name.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nfcapd: %v\n%s", err, out.String())
	}
	stopped = true
	files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.*"))
	if len(files) != 1 {
		t.Fatalf("nfcapd wrote %v, want one file", files)
	}
	dump := exec.CommandContext(ctx, nfdump, "-r", files[0], "-o", "json")
	dump.Env = append(os.Environ(), "TZ=UTC")
	js, err := dump.Output()
	if err != nil {
		t.Fatalf("nfdump: %v", err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(js, &recs); err != nil {
		t.Fatalf("nfdump's JSON: %v\n%s", err, js)
	}
	if len(recs) != len(evs) {
		t.Fatalf("nfdump shows %d records, want %d", len(recs), len(evs))
	}
	nfTime := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000") }
	byTime := map[string]map[string]any{}
	for _, r := range recs {
		byTime[fmt.Sprint(r["t_event"])] = r
	}
	for _, e := range evs {
		r, ok := byTime[nfTime(e.Time)]
		if !ok {
			t.Errorf("%s at %s: not in nfdump's output", e.Type, nfTime(e.Time))
			continue
		}
		want := map[string]any{"nat_event_id": strconv.Itoa(int(kinds[e.Type].natEvent))}
		switch e.Type {
		case natlog.SessionCreate, natlog.SessionDelete:
			want["proto"] = float64(e.Inside.Proto)
			want["src4_addr"] = addrString(e.Inside.SrcAddr)
			want["src_port"] = float64(e.Inside.SrcPort)
			want["dst4_addr"] = addrString(e.Inside.DstAddr)
			want["dst_port"] = float64(e.Inside.DstPort)
			want["src4_xlt_ip"] = addrString(e.Outside.SrcAddr)
			want["src_xlt_port"] = strconv.Itoa(int(e.Outside.SrcPort))
			want["dst4_xlt_ip"] = addrString(e.Outside.DstAddr)
			want["dst_xlt_port"] = strconv.Itoa(int(e.Outside.DstPort))
			if e.Type == natlog.SessionDelete {
				want["first"] = nfTime(e.Start)
				want["last"] = nfTime(e.Time)
				want["in_packets"] = float64(e.Packets[0])
				want["out_packets"] = float64(e.Packets[1])
				want["in_bytes"] = float64(e.Bytes[0])
				want["out_bytes"] = float64(e.Bytes[1])
			}
		case natlog.BindingCreate, natlog.BindingDelete:
			want["proto"] = float64(e.Inside.Proto)
			want["src4_addr"] = addrString(e.Inside.SrcAddr)
			want["src_port"] = float64(e.Inside.SrcPort)
			want["src4_xlt_ip"] = addrString(e.Outside.SrcAddr)
			want["src_xlt_port"] = strconv.Itoa(int(e.Outside.SrcPort))
		case natlog.BlockAlloc, natlog.BlockRelease:
			want["src4_addr"] = addrString(e.Inside.SrcAddr)
			want["src4_xlt_ip"] = addrString(e.Outside.SrcAddr)
		case natlog.PortsExhausted:
			want["proto"] = float64(e.Inside.Proto)
			want["src4_xlt_ip"] = addrString(e.Outside.SrcAddr)
		case natlog.QuotaExceeded:
			want["src4_addr"] = addrString(e.Inside.SrcAddr)
		}
		for k, v := range want {
			if got := r[k]; got != v {
				t.Errorf("%s: nfdump %s = %v (%T), want %v", e.Type, k, got, got, v)
			}
		}
	}
}
