package nat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// TestTwoWorkersSlotReuse runs two engines over one small table the way
// two pipeline workers do — a burst is parsed and looked up first
// (LookupBatch), then translated frame by frame — while both expire
// sessions after one idle second of a shared clock that races ahead, so
// that slots are reused constantly and many hits go stale between their
// lookup and their translation. Every frame an engine emits is then
// decoded with gopacket: its payload names its flow, and its addresses,
// ports and checksums must be that flow's. A reader that validated the
// generation before reading the session, rather than after, leaves with
// another flow's tuple here within a few thousand frames.
func TestTwoWorkersSlotReuse(t *testing.T) {
	const (
		capacity  = 128
		flows     = 192 // more than fit: the table is full at times
		burst     = 32
		bursts    = 1200 // per worker
		perSecond = 8 * burst
		public    = "198.18.0.204"
	)
	bursts_ := bursts
	if testing.Short() {
		bursts_ = bursts / 4
	}
	table, err := flowtable.New(flowtable.Config{MaxSessions: capacity})
	if err != nil {
		t.Fatal(err)
	}
	to := DefaultTimeouts
	to.UDP = time.Second
	n, err := New(Rules{
		Outbound: []Outbound{{
			Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")},
			Pool:   []netip.Addr{netip.MustParseAddr(public)},
			PortLo: 1024, PortHi: 65535, EndpointIndependent: true,
		}},
		Timeouts: to,
	}, table, 2)
	if err != nil {
		t.Fatal(err)
	}

	// Flow f: a unique inside port (preserved, so the public port is
	// always 20000+f and a reply to it always belongs to f).
	type flow struct{ inside, remote, public string }
	fl := make([]flow, flows)
	var tmpl [2][][]byte // [0] outbound, [1] inbound
	for f := range fl {
		fl[f] = flow{
			inside: fmt.Sprintf("10.77.%d.%d:%d", f/200, 10+f%200, 20000+f),
			remote: fmt.Sprintf("198.18.1.%d:%d", 1+f%7, 5000+f%13),
			public: fmt.Sprintf("%s:%d", public, 20000+f),
		}
		tmpl[0] = append(tmpl[0], testutil.UDP(t, fl[f].inside, fl[f].remote, payloadOf(f, false)))
		tmpl[1] = append(tmpl[1], testutil.UDP(t, fl[f].remote, fl[f].public, payloadOf(f, true)))
	}

	type record struct {
		flow  int
		in    bool
		frame []byte
	}
	var (
		clock   atomic.Uint64 // packets processed by both workers
		records [2][]record
		stale   [2]int // hits whose session ended before translation
		wg      sync.WaitGroup
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := n.Engine(w)
			rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
			var (
				bufs  [burst][]byte
				ps    [burst]packet.Parsed
				keys  [burst]packet.Tuple
				hits  [burst]flowtable.Hit
				which [burst]record
			)
			for range bursts_ {
				now := flowtable.Time(clock.Load() / perSecond)
				for i := range burst {
					f, in := rng.IntN(flows), rng.IntN(2) == 1
					src := tmpl[0][f]
					if in {
						src = tmpl[1][f]
					}
					bufs[i] = append(bufs[i][:0], src...)
					if packet.Parse(bufs[i], &ps[i]) != packet.OK {
						panic("test frame does not parse")
					}
					keys[i], which[i] = ps[i].Tuple, record{flow: f, in: in}
				}
				table.LookupBatch(keys[:], hits[:])
				for i := range burst {
					side := Inside
					if which[i].in {
						side = Outside
					}
					var r Result
					e.ProcessLooked(bufs[i], &ps[i], side, now, hits[i], &r)
					h := hits[i]
					if h.Found && (r.Verdict != Forward || r.Session != h.ID || r.Gen != h.Gen) {
						stale[w]++
					}
					if r.Verdict == Forward {
						which[i].frame = append([]byte(nil), bufs[i]...)
						records[w] = append(records[w], which[i])
					}
				}
				e.Age(now, capacity)
				clock.Add(burst)
			}
		}()
	}
	wg.Wait()

	checked, bad := 0, 0
	for w := range records {
		for _, rec := range records[w] {
			d := testutil.Decode(t, rec.frame)
			if d.UDP == nil {
				t.Fatalf("worker %d emitted a non-UDP frame", w)
			}
			f, in, ok := flowOf(d.UDP.Payload)
			if !ok || f != rec.flow || in != rec.in {
				t.Fatalf("payload %q does not name flow %d (in %v)", d.UDP.Payload, rec.flow, rec.in)
			}
			wantSrc, wantDst := fl[f].public, fl[f].remote
			if in {
				wantSrc, wantDst = fl[f].remote, fl[f].inside
			}
			if d.Src() != wantSrc || d.Dst() != wantDst {
				if bad++; bad <= 10 {
					t.Errorf("flow %d (in %v) left as %s -> %s, want %s -> %s", f, in, d.Src(), d.Dst(), wantSrc, wantDst)
				}
			}
			checked++
		}
	}
	st := table.Stats()
	t.Logf("%d frames checked, %d with another flow's tuple; %d sessions inserted into %d slots, %d expired; %d stale hits",
		checked, bad, st.Inserts, capacity, st.Expired, stale[0]+stale[1])
	if checked < bursts_*burst/2 {
		t.Errorf("only %d frames forwarded: the workload did not run", checked)
	}
	if st.Inserts < 8*capacity {
		t.Errorf("%d inserts: slots were not reused", st.Inserts)
	}
}

func payloadOf(f int, in bool) []byte {
	dir := "out"
	if in {
		dir = "in"
	}
	return fmt.Appendf(nil, "flow %04d %s", f, dir)
}

func flowOf(b []byte) (f int, in bool, ok bool) {
	var dir string
	if _, err := fmt.Sscanf(string(b), "flow %d %s", &f, &dir); err != nil {
		return 0, false, false
	}
	return f, dir == "in", dir == "in" || dir == "out"
}
