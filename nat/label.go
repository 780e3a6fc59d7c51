package nat

import (
	"fmt"
	"sync"

	"github.com/fastnat/fastnat/natlog"
)

// Which rule made a session is written into the session when it is
// created (flowtable.Session.Rule), as a 16-bit label: the way the rule
// made it in the top three bits (see labelCodes) and the rule's id in the
// other thirteen.
//
// A rule's id stands for its identity, not its place in the file: a
// nat.server rule is known by its protocol and public endpoint, an outbound
// rule by its inside prefixes, pool, port range and port allocation
// (mapping, ports per host, block size). The NAT gives an identity an id
// the first time a configuration holds it and keeps it across reloads
// (ruleIDs), so after a reload that reorders the rules, edits a server's
// inside endpoint or an outbound rule's blocks per host, every session is
// still named by the rule that made it, at the rule's new index. A
// session whose rule a reload removed, or changed into another identity,
// is named by the index the rule last had, marked removed. Ids are never
// reused: after MaxRuleIDs identities of one kind, newer rules share the
// last id and their sessions are named "nat.server[?]".

// MaxRuleIDs is how many rule identities of each kind (outbound, server) a
// NAT tells apart in its labels over its lifetime.
const MaxRuleIDs = 1<<13 - 1

const (
	labelShift = 13
	idMask     = 1<<labelShift - 1
	unknownID  = MaxRuleIDs // the id of identities past MaxRuleIDs
)

// labelCodes lists, by the label's top three bits, the kind of rule and
// the way it made the session; code 0 is no rule.
var labelCodes = [8]struct {
	kind natlog.RuleKind
	via  natlog.Via
}{
	{natlog.RuleNone, natlog.ViaRule},
	{natlog.RuleOutbound, natlog.ViaRule},
	{natlog.RuleServer, natlog.ViaRule},
	{natlog.RuleOutbound, natlog.ViaHairpin},
	{natlog.RuleServer, natlog.ViaHairpin},
	{natlog.RuleOutbound, natlog.ViaALG},
	{natlog.RuleServer, natlog.ViaALG},
	{natlog.RuleNone, natlog.ViaALG}, // an ALG's data connection whose control session's rule is not known
}

// makeLabel returns the label of rule id of kind, made via v.
func makeLabel(kind natlog.RuleKind, v natlog.Via, id uint16) uint16 {
	for code, c := range labelCodes {
		if c.kind == kind && c.via == v {
			if kind == natlog.RuleNone {
				id = 0
			}
			return uint16(code)<<labelShift | id&idMask
		}
	}
	return 0
}

// splitLabel returns what label says.
func splitLabel(label uint16) (kind natlog.RuleKind, v natlog.Via, id uint16) {
	c := labelCodes[label>>labelShift]
	return c.kind, c.via, label & idMask
}

// kindSlot is the index of a rule kind in ruleIDs' and compiled's
// per-kind arrays.
func kindSlot(k natlog.RuleKind) int {
	if k == natlog.RuleServer {
		return 1
	}
	return 0
}

// ruleIDs gives rule identities their ids and remembers the index each id
// had in the rules last installed. Compile assigns (an id assigned for
// rules never installed is simply unused); install records the indexes.
type ruleIDs struct {
	mu   sync.Mutex
	ids  [2]map[string]uint16 // per kind: identity → id
	last [2]map[uint16]uint16 // per kind: id → its index when last installed
}

// id returns the id of identity of kind k, giving it the next one if new.
func (r *ruleIDs) id(k natlog.RuleKind, identity string) uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &r.ids[kindSlot(k)]
	if *m == nil {
		*m = map[string]uint16{}
	}
	if id, ok := (*m)[identity]; ok {
		return id
	}
	id := uint16(min(len(*m), unknownID))
	(*m)[identity] = id
	return id
}

// installed records the indexes of c's rules.
func (r *ruleIDs) installed(c *compiled) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range c.index {
		if r.last[k] == nil {
			r.last[k] = map[uint16]uint16{}
		}
		for id, i := range c.index[k] {
			r.last[k][id] = i
		}
	}
}

// lastIndex returns the index id of kind k had when last installed.
func (r *ruleIDs) lastIndex(k natlog.RuleKind, id uint16) (uint16, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.last[kindSlot(k)][id]
	return i, ok
}

// outboundIdentity is what makes an outbound rule the same rule across
// reloads: everything but its blocks per host, which only limits hosts.
func outboundIdentity(o *Outbound) string {
	return fmt.Sprintf("%v|%v|%d-%d|eim=%t|det=%t/%d|blocks=%d", o.Inside, o.Pool, o.PortLo, o.PortHi,
		o.EndpointIndependent, o.Deterministic, o.PortsPerHost, o.BlockSize)
}

// serverIdentity is what makes a server rule the same rule across
// reloads: its protocol and public endpoint.
func serverIdentity(s *Server) string { return fmt.Sprintf("%d|%v", s.Proto, s.Public) }

// RuleRef is what a session's rule label says, resolved against the
// running rules: the rule's kind and index, how it made the session, and
// whether the rule is still loaded (Removed: a reload removed or changed
// it, and Index is the one it last had).
type RuleRef struct {
	Kind    natlog.RuleKind
	Via     natlog.Via
	Index   uint16
	Removed bool
	Unknown bool // the rule's identity came past MaxRuleIDs
}

// String names the rule as events and `fastnat show sessions` do
// ("nat.outbound[0]", "nat.server[1]/hairpin", "alg"), with " (removed)"
// for a rule a reload removed and "[?]" for one that cannot be told.
func (r RuleRef) String() string {
	if r.Unknown {
		s := r.Kind.String() + "[?]"
		if r.Via != natlog.ViaRule {
			s += "/" + r.Via.String()
		}
		return s
	}
	b := natlog.AppendRuleName(nil, r.Kind, r.Index, r.Via)
	if r.Removed {
		b = append(b, " (removed)"...)
	}
	return string(b)
}

// Rule resolves a session's rule label (flowtable.Session.Rule) against
// the running rules.
func (n *NAT) Rule(label uint16) RuleRef {
	kind, via, id := splitLabel(label)
	ref := RuleRef{Kind: kind, Via: via}
	if kind == natlog.RuleNone {
		return ref
	}
	if id == unknownID {
		ref.Unknown = true
		return ref
	}
	if i, ok := n.rules.Load().index[kindSlot(kind)][id]; ok {
		ref.Index = i
		return ref
	}
	ref.Index, _ = n.reg.ids.lastIndex(kind, id)
	ref.Removed = true
	return ref
}

// RuleName is Rule(label).String(): the name of the rule that made a
// session, for display.
func (n *NAT) RuleName(label uint16) string { return n.Rule(label).String() }
