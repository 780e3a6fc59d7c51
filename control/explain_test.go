package control

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/explain"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// explainHandler is a fakeHandler that explains.
type explainHandler struct {
	fakeHandler
	got []ExplainQuery
}

func (h *explainHandler) Explain(q ExplainQuery) (ExplainResult, error) {
	h.got = append(h.got, q)
	if q.Proto == "gre" {
		return ExplainResult{}, fmt.Errorf("%w: %w", ErrBadRequest, explain.ErrQuery)
	}
	return ExplainResult{Report: explain.Report{Verdict: "translated"}, ALG: map[string]uint64{"rewritten": 2}}, nil
}

// TestExplainRequest: CmdExplain reaches a handler that explains, with the
// query whole; a bad query is a bad request; a handler that does not
// explain says so; a request without a query is refused.
func TestExplainRequest(t *testing.T) {
	h := &explainHandler{}
	_, path := listen(t, h)
	id := uint32(7)
	q := ExplainQuery{Query: explain.Query{Proto: "tcp", Src: netip.MustParseAddrPort("198.18.0.1:40000"),
		Dst: netip.MustParseAddrPort("198.18.0.204:9091"), From: "outside"}, Session: &id}
	r, err := call(t, path, Request{Cmd: CmdExplain, Explain: &q})
	if err != nil {
		t.Fatal(err)
	}
	if r.Explain == nil || r.Explain.Report.Verdict != "translated" || r.Explain.ALG["rewritten"] != 2 {
		t.Errorf("answer %+v", r.Explain)
	}
	if len(h.got) != 1 || h.got[0].Dst != q.Dst || h.got[0].From != "outside" || h.got[0].Session == nil || *h.got[0].Session != 7 {
		t.Errorf("the handler got %+v", h.got)
	}
	q.Proto = "gre"
	if _, err := call(t, path, Request{Cmd: CmdExplain, Explain: &q}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad query: %v", err)
	}
	if _, err := call(t, path, Request{Cmd: CmdExplain}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("no query: %v", err)
	}
	_, plain := listen(t, &fakeHandler{})
	if _, err := call(t, plain, Request{Cmd: CmdExplain, Explain: &q}); err == nil || errors.Is(err, ErrBadRequest) {
		t.Errorf("a handler that does not explain: %v", err)
	}
}

// TestSessionOf: the live view of one session and its expectations, and
// nothing once it has ended.
func TestSessionOf(t *testing.T) {
	tb, err := flowtable.New(flowtable.Config{MaxSessions: 64})
	if err != nil {
		t.Fatal(err)
	}
	k := packet.Tuple{SrcAddr: 0xc6120001, DstAddr: 0xc61200cc, SrcPort: 40000, DstPort: 9091, Proto: packet.ProtoTCP}
	x := packet.Tuple{SrcAddr: 0x0a4d00e2, DstAddr: 0xc6120001, SrcPort: 2021, DstPort: 40000, Proto: packet.ProtoTCP}
	id, gen, res := tb.Insert(&flowtable.Session{Key: [2]packet.Tuple{k, x}, App: 1, MapEntry: 0, Rule: labelServer, Ingress: 1}, 3, 100, 10)
	if res != flowtable.Inserted {
		t.Fatal(res)
	}
	tb.Expect(flowtable.Expectation{Proto: packet.ProtoTCP, SrcAddr: 0xc6120001, DstAddr: 0xc61200cc, DstPort: 30000,
		Parent: id, ParentGen: gen, Expires: 100})
	tb.Expect(flowtable.Expectation{Proto: packet.ProtoTCP, DstAddr: 0xc61200cc, DstPort: 30001, Parent: id + 1, ParentGen: gen, Expires: 100})
	// The view `fastnat show sessions` gives, rule and interface included.
	s, ok := SessionOf(tb, 12, id, gen, caseNames)
	if !ok || s.ID != id || s.Initiator.Dst.String() != "198.18.0.204:9091" || s.Idle != 2 || s.Rule != "nat.server[0]" || s.Ingress != "outside" {
		t.Errorf("session %+v (%v)", s, ok)
	}
	if es := ExpectationsOf(tb, 12, id, gen, caseNames); len(es) != 1 || es[0].Dst.Port() != 30000 || es[0].Rule != "nat.server[0]/alg" {
		t.Errorf("expectations %+v", es)
	}
	tb.Delete(id)
	if _, ok := SessionOf(tb, 12, id, gen, caseNames); ok {
		t.Error("an ended session shown")
	}
}
