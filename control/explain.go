package control

import (
	"fmt"
	"io"
	"strings"

	"github.com/fastnat/fastnat/explain"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/metrics"
)

// CmdExplain asks how the daemon treats a connection (`fastnat explain`).
const CmdExplain = "explain"

// ExplainQuery is what CmdExplain carries: a connection as its first
// packet arrives, or a live session by id (then Query is ignored).
type ExplainQuery struct {
	explain.Query
	Session *uint32 `json:"session,omitempty"`
}

// ExplainResult is the daemon's explanation: the report the running
// configuration gives (explain.Explain), and for a connection the flow
// table holds, the live session, its expectations and the FTP ALG's
// counters for it.
type ExplainResult struct {
	Report       explain.Report    `json:"report"`
	Session      *Session          `json:"session,omitempty"`
	Expectations []Expectation     `json:"expectations,omitempty"`
	ALG          map[string]uint64 `json:"ftp_alg,omitempty"` // keyed as metrics.FTPSnapshot
}

// Explainer is the Handler of a daemon that answers CmdExplain.
type Explainer interface {
	Explain(q ExplainQuery) (ExplainResult, error)
}

// SessionOf returns the view of session (id, gen) of t at time now, if it
// is still live: the Session `fastnat show sessions` shows.
func SessionOf(t *flowtable.Table, now flowtable.Time, id, gen uint32, names Names) (Session, bool) {
	var s flowtable.Session
	if !t.Read(id, gen, &s) {
		return Session{}, false
	}
	return sessionView(t, now, id, gen, s, names.rule(s.Rule), &names)
}

// ExpectationsOf returns the live expectations of control session (id,
// gen) of t at time now.
func ExpectationsOf(t *flowtable.Table, now flowtable.Time, id, gen uint32, names Names) []Expectation {
	var out []Expectation
	t.RangeExpectations(func(e flowtable.Expectation) bool {
		if e.Parent == id && e.ParentGen == gen {
			out = append(out, expectationView(t, e, now, &names))
		}
		return true
	})
	return out
}

// WriteExplain writes r for a reader: the report, then what the daemon
// knows of the live session.
func WriteExplain(w io.Writer, r *ExplainResult) {
	r.Report.WriteText(w)
	if r.Session == nil {
		fmt.Fprintf(w, "%-12s none: the flow table holds no session of this connection\n", "session")
		return
	}
	s := r.Session
	fmt.Fprintf(w, "%-12s %d, %s, %s, mapping %d, rule %s, in on %s; idle %ds, expires in %ds; %d/%d packets\n", "session",
		s.ID, s.State, s.App, s.Mapping, dash(s.Rule), s.Ingress, s.Idle, s.TTL, s.Traffic.Initiator.Packets, s.Traffic.Responder.Packets)
	if len(r.Expectations) == 0 {
		fmt.Fprintf(w, "%-12s none\n", "expectations")
	}
	for i, e := range r.Expectations {
		label := ""
		if i == 0 {
			label = "expectations"
		}
		fmt.Fprintf(w, "%-12s %s from %s to %s, then %s, expires in %ds\n", label, e.Protocol, e.Source, e.Dst, e.To, e.TTL)
	}
	if r.ALG != nil {
		var parts []string
		for _, c := range metrics.FTPCounters {
			if v := r.ALG[c.Name]; v != 0 {
				parts = append(parts, fmt.Sprintf("%s %d", c.Name, v))
			}
		}
		if len(parts) == 0 {
			parts = []string{"nothing yet"}
		}
		fmt.Fprintf(w, "%-12s %s\n", "alg counted", strings.Join(parts, ", "))
	}
}
