package pipeline

import (
	"bytes"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// tapRecord is what the drop tap saw of one frame.
type tapRecord struct {
	frame  []byte
	reason string
}

// recorder is a drop tap that keeps copies.
type recorder struct{ got []tapRecord }

func (r *recorder) tap(frame []byte, reason string) {
	r.got = append(r.got, tapRecord{append([]byte(nil), frame...), reason})
}

func TestDropTap(t *testing.T) {
	badSum := UDP(t, remote1+":5000", public+":5353", []byte("x"))
	badSum[14+10] ^= 0xff
	tests := []struct {
		name    string
		inside  bool // sent on the inside port, else outside
		frame   func(t *testing.T) []byte
		advance int    // seconds the clock moves before a second poll
		reason  string // what the tap must say
		count   func(c *Counters) uint64
	}{
		{"parse failure", false, func(*testing.T) []byte { return badSum }, 0, "parse_bad_ip_checksum",
			func(c *Counters) uint64 { return c.Parse[packet.ErrBadIPChecksum].Load() }},
		{"unsolicited", false, func(t *testing.T) []byte { return ICMPEcho(t, remote1, public, 7, 1, true) }, 0, "nat_unsolicited",
			func(c *Counters) uint64 { return c.Verdict[nat.DropUnsolicited].Load() }},
		{"no rule", true, func(t *testing.T) []byte { return UDP(t, "10.99.0.1:5000", remote1+":7777", []byte("x")) }, 0, "nat_no_rule",
			func(c *Counters) uint64 { return c.Verdict[nat.DropNoRule].Load() }},
		{"tcp without syn", true, func(t *testing.T) []byte { return TCP(t, inClient+":40000", remote1+":80", ACK, 1, 1, nil) }, 0, "nat_tcp_no_syn",
			func(c *Counters) uint64 { return c.Verdict[nat.DropTCPNoSYN].Load() }},
		{"neighbour never resolved", true, func(t *testing.T) []byte { return UDP(t, inClient+":5000", "198.18.0.77:7777", []byte("x")) }, neighWaitSeconds + 1, "host_unreachable",
			func(c *Counters) uint64 { return c.Drop[DropHostUnreachable].Load() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535), dropTap: rec.tap})
			from := r.out
			if tc.inside {
				from = r.in
			}
			frame := tc.frame(t)
			r.none(from, frame)
			if tc.advance > 0 {
				r.now += flowtable.Time(tc.advance)
				r.w.Poll()
			}
			if len(rec.got) != 1 {
				t.Fatalf("tap saw %d frames, want 1; counters: %s", len(rec.got), r.drops())
			}
			if g := rec.got[0]; g.reason != tc.reason {
				t.Errorf("reason %q, want %q", g.reason, tc.reason)
			}
			if tc.advance == 0 && !bytes.Equal(rec.got[0].frame, frame) {
				t.Errorf("tap saw a different frame than the one dropped")
			}
			c := r.w.Counters()
			if n := tc.count(c); n != 1 {
				t.Errorf("counter = %d, want 1", n)
			}
			if n := c.Drops(); n != uint64(len(rec.got)) {
				t.Errorf("Drops() = %d but the tap saw %d", n, len(rec.got))
			}
			if free := r.pool.Free(); free != 512 {
				t.Errorf("%d of 512 frames free after the drop: the tap must not keep frames", free)
			}
		})
	}
}

// refusingPort is a port whose tx ring is always full.
type refusingPort struct{ *MemPort }

func (refusingPort) Transmit([]Frame) int { return 0 }

func TestDropTapTxFull(t *testing.T) {
	var rec recorder
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	r.w = NewWorker(Config{
		Ports: []PortSpec{{Port: r.in, Side: nat.Inside}, {Port: refusingPort{r.out}, Side: nat.Outside}},
		Poll:  PollBusy, NAT: r.nat.Engine(0), Table: r.table, DropTap: rec.tap,
	})
	r.w.pubEvery = 0
	r.in.Inject(UDP(t, inClient+":5000", remote1+":7777", []byte("x")))
	r.in.Inject(UDP(t, inClient+":5001", remote1+":7777", []byte("y")))
	r.w.Poll()
	if len(rec.got) != 2 || rec.got[0].reason != "tx_full" || rec.got[1].reason != "tx_full" {
		t.Fatalf("tap saw %+v, want two tx_full drops", rec.got)
	}
	// The tap sees the translated frame: the source is the public address.
	d := Decode(t, rec.got[0].frame)
	if d.IP.SrcIP.String() != public {
		t.Errorf("dropped frame's source %v, want the translated %s", d.IP.SrcIP, public)
	}
	if n := r.w.Counters().Drop[DropTxFull].Load(); n != 2 {
		t.Errorf("tx_full = %d, want 2", n)
	}
}

// TestDropPathAllocatesNothing runs a stream of dropped frames with and
// without a tap: naming a drop must not allocate.
func TestDropPathAllocatesNothing(t *testing.T) {
	frame := ICMPEcho(t, remote1, public, 7, 1, true) // a reply without a session
	for _, tc := range []struct {
		name string
		tap  func([]byte, string)
	}{
		{"no tap", nil},
		{"tap", func([]byte, string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535), dropTap: tc.tap})
			r.none(r.out, frame)
			allocs := testing.AllocsPerRun(200, func() {
				r.out.Inject(frame)
				r.w.Poll()
			})
			if allocs != 0 {
				t.Fatalf("%.1f allocations per dropped packet, want 0", allocs)
			}
		})
	}
}

func TestDropName(t *testing.T) {
	tests := []struct {
		stage DropStage
		code  uint8
		want  string
	}{
		{StageParse, uint8(packet.ErrBadIPChecksum), "parse_bad_ip_checksum"},
		{StageNAT, uint8(nat.DropUnsolicited), "nat_unsolicited"},
		{StagePipeline, uint8(DropTxFull), "tx_full"},
		{StageParse, 255, "unknown"},
		{StageNAT, 255, "unknown"},
		{StagePipeline, 255, "unknown"},
		{9, 0, "unknown"},
	}
	for _, tc := range tests {
		if got := DropName(tc.stage, tc.code); got != tc.want {
			t.Errorf("DropName(%d, %d) = %q, want %q", tc.stage, tc.code, got, tc.want)
		}
	}
}
