package e2e

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// burstNew is the number of new sessions of the burst.
const burstNew = 100_000

// TestFastnatEventBurst: an inside host opens 100,000 UDP sessions in
// about a second through fastnat, which logs each to nfcapd (IPFIX over
// UDP) and rsyslogd (syslog over TCP). Every event is accounted for:
// made = dropped at the worker's ring + dropped at the exporter's queue +
// failed + exported, for each exporter; rsyslogd stored exactly what was
// exported over TCP; nfdump reads back exactly what was exported over
// UDP, unless the collector's own socket overflowed, which the kernel
// counts in the collector's namespace (RFC 7011 over UDP promises no
// more; fastnat cannot see it).
func TestFastnatEventBurst(t *testing.T) {
	requireFastnat(t)
	if testing.Short() {
		t.Skip("a burst of 100,000 sessions; not with -short")
	}
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	col := startCollectors(t, topo, false)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fastnat.sock")
	cfg := filepath.Join(dir, "fastnat.toml")
	writeFile(t, cfg, strings.Replace(fastnatConfig(false, nil, sock), "max = 65536", "max = 262144", 1)+col.logging())
	daemon := startFastnat(t, topo, cfg)
	rcvbufBefore := udpRcvbufErrors(t, topo.Router)

	// Two sockets (two bindings), each to 50,000 ports of the client: a
	// new session per datagram, paced at up to 250,000 a second so that
	// the veths carry them all; another round if fastnat made fewer than
	// 100,000 (datagrams lost on the way in).
	var made uint64
	stats := func() metrics.Snapshot {
		var s metrics.Snapshot
		if err := json.Unmarshal([]byte(fastnatShow(t, sock, "stats", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	start := time.Now()
	for round := 0; made < burstNew; round++ {
		if round == 3 {
			t.Fatalf("three rounds made only %d sessions", made)
		}
		for range 2 {
			c := listenUDP(t, topo.Host, netip.AddrPortFrom(testnet.HostAddr, 0))
			for i := range burstNew / 2 {
				if _, err := c.WriteToUDPAddrPort([]byte("burst"), netip.AddrPortFrom(testnet.ClientAddr, uint16(1024+i))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				if i%250 == 249 {
					time.Sleep(time.Millisecond)
				}
			}
			c.Close()
		}
		// Until the last datagrams have passed.
		for prev := uint64(0); ; prev = made {
			time.Sleep(200 * time.Millisecond)
			if made = stats().Table.Inserts; made == prev {
				break
			}
		}
		if made < burstNew {
			st := stats()
			for _, w := range st.Workers {
				for _, p := range w.Ports {
					t.Logf("round %d: %d sessions; worker %d %s: rx %d, kernel drops %v, fill ring empty %d", round, made, w.ID, p.Interface, p.Rx, p.Drops, p.FillRingEmpty)
				}
				t.Logf("worker drops %v", nonZero(w.Drops))
			}
		}
	}
	t.Logf("%d sessions made in %v", made, time.Since(start).Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}

	// Once the event log is idle, every event is somewhere.
	var ev *metrics.Events
	waitFor(t, "the event log to be idle", func() bool {
		ev = stats().Events
		for _, x := range ev.Exporters {
			if x.Exported+x.QueueDropped+x.Failed != ev.Made-ev.RingDropped {
				return false
			}
		}
		return len(ev.Exporters) == 2
	})
	if ev.Made < burstNew {
		t.Errorf("%d events made for %d sessions", ev.Made, made)
	}
	var ipfix, syslog metrics.EventExporter
	for _, x := range ev.Exporters {
		t.Logf("%s: %d events made, %d dropped at the ring, %d at the exporter's queue, %d failed, %d exported",
			x.Name, ev.Made, ev.RingDropped, x.QueueDropped, x.Failed, x.Exported)
		if strings.HasPrefix(x.Name, "ipfix") {
			ipfix = x
		} else {
			syslog = x
		}
	}
	waitFor(t, "rsyslogd to store every message", func() bool { return uint64(len(col.syslog(t))) >= syslog.Exported })
	if err := daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, topo, 4739)
	records := uint64(len(col.nfdump(t)))
	stored := uint64(len(col.syslog(t)))
	lostAtCollector := udpRcvbufErrors(t, topo.Router) - rcvbufBefore
	t.Logf("rsyslogd stored %d, nfdump read %d; the collector's socket overflowed %d times", stored, records, lostAtCollector)
	if stored != syslog.Exported {
		t.Errorf("rsyslogd stored %d messages, fastnat exported %d over TCP", stored, syslog.Exported)
	}
	switch {
	case lostAtCollector == 0 && records != ipfix.Exported:
		t.Errorf("nfdump read %d records, fastnat exported %d, and nfcapd's socket dropped nothing", records, ipfix.Exported)
	case lostAtCollector > 0 && (records >= ipfix.Exported || ipfix.Exported-records > 50*lostAtCollector):
		// A message holds at most about 40 records of 1400 bytes.
		t.Errorf("nfdump read %d of %d records, and nfcapd's socket dropped %d datagrams", records, ipfix.Exported, lostAtCollector)
	}
	if ev.RingDropped+syslog.QueueDropped+syslog.Failed == 0 && stored != ev.Made {
		t.Errorf("nothing lost, yet rsyslogd has %d of %d events", stored, ev.Made)
	}
}

// udpRcvbufErrors reads the UDP receive-buffer overflows of namespace ns.
func udpRcvbufErrors(t *testing.T, ns string) uint64 {
	t.Helper()
	n, err := testnet.UDPRcvbufErrors(ns)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
