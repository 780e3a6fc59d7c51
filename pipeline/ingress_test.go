package pipeline

import (
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
)

// TestSessionsRecordIngressAndTime: a session records the index of the
// port its first packet came in on, and the NAT's events carry the
// wall-clock time of the poll that made them.
func TestSessionsRecordIngressAndTime(t *testing.T) {
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: nat.Producers(1)})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535), events: hub})
	table := r.table
	// The worker's wall clock is its start in whole milliseconds plus the
	// whole milliseconds since: up to 2 ms behind time.Now.
	before := time.Now().UnixMilli() - 2
	r.one(r.in, r.out, testutil.UDP(t, inClient+":4000", remote1+":5300", []byte("x")))
	r.one(r.out, r.in, testutil.TCP(t, remote1+":40000", public+":9091", testutil.SYN, 1, 0, nil))
	after := time.Now().UnixMilli()
	ingress := map[uint16]int{}
	table.Range(func(_, _ uint32, s flowtable.Session) bool {
		ingress[s.Ingress]++
		return true
	})
	if ingress[0] != 1 || ingress[1] != 1 {
		t.Errorf("sessions by ingress port %v, want one on the inside port (0) and one on the outside (1)", ingress)
	}
	buf := make([]natlog.Event, 16)
	k := hub.Ring(0).Pop(buf)
	if k != 3 { // the binding, and the two sessions
		t.Fatalf("%d events", k)
	}
	for _, e := range buf[:k] {
		if e.Time < before || e.Time > after {
			t.Errorf("%s at %d, not within the polls (%d to %d)", e.Type, e.Time, before, after)
		}
	}
}
