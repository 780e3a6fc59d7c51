package alg

import (
	"github.com/fastnat/fastnat/flowtable"
)

// Interim adapters to the flow table and NAT of before the snapshot API:
// removed when that API is merged.

// LegacyNAT is nat.NAT before sessions are named by generation.
type LegacyNAT interface {
	ExpectData(parent uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (uint32, uint16, bool)
	DropOldestExpectation(parent uint32) bool
	ResetSession(id uint32)
}

// Legacy adapts them.
func Legacy(t *flowtable.Table, n LegacyNAT) (Table, Expecter) {
	return legacyTable{t}, legacyNAT{n}
}

type legacyTable struct{ t *flowtable.Table }

func (l legacyTable) Read(id, gen uint32, s *flowtable.Session) bool {
	k0, g0 := l.t.Key(id, flowtable.Orig)
	k1, g1 := l.t.Key(id, flowtable.Reply)
	if g0 != gen || g1 != gen {
		return false
	}
	x := l.t.Get(id)
	s.Key[0], s.Key[1] = k0, k1
	s.App, s.MapEntry = x.App, x.MapEntry
	return l.t.Valid(id, gen)
}

func (l legacyTable) ExpectationCount(parent, gen uint32) int { return l.t.ExpectationCount(parent) }

type legacyNAT struct{ n LegacyNAT }

func (l legacyNAT) ExpectData(parent, gen uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (uint32, uint16, bool) {
	return l.n.ExpectData(parent, dir, addr, port, now)
}
func (l legacyNAT) DropOldestExpectation(parent, gen uint32) bool {
	return l.n.DropOldestExpectation(parent)
}
func (l legacyNAT) ResetSession(id, gen uint32) { l.n.ResetSession(id) }

// LegacySessionEnded is SessionEnded for nat.NAT.OnSessionEnd of before
// the snapshot API, which ran after the slot's generation moved on.
func (f *FTP) LegacySessionEnded(t *flowtable.Table) func(id uint32, s *flowtable.Session) {
	return func(id uint32, s *flowtable.Session) {
		f.SessionEnded(id, (t.Gen(id)-1)&(1<<24-1), flowtable.Session{App: s.App})
	}
}
