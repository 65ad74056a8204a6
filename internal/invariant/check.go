package invariant

import (
	"fmt"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// Names of the invariants (docs/invariants.md has one paragraph for each).
const (
	NoNewAfterReply   = "no-new-after-reply"  // 1
	RSTLeadsToClose   = "rst-leads-to-close"  // 2
	AssuredAfterReply = "assured-after-reply" // 3
	InvalidInert      = "invalid-inert"       // 4
	SpecCell          = "spec-cell"           // 5
	TuplesAgree       = "tuples-agree"        // 6
	TimeoutBound      = "timeout-bound"       // 7
	Bounded           = "bounded"             // 8
	Deterministic     = "deterministic"       // 9
)

// The named exceptions to spec-cell: the places where fsm, like the kernel,
// takes a transition the table does not name.
const (
	ExResync       = "resync-after-ignored-syn" // sIG cell, SYN/ACK answering an ignored SYN: SYN_SENT -> SYN_RECV
	ExSimultaneous = "simultaneous-open-ack"    // SYN_RECV cell, reply ACK after crossed SYNs: -> ESTABLISHED
	ExRSTKeep      = "rst-challenge-keep"       // CLOSE cell, in-window inexact RST: state kept for a challenge ACK
	ExReopen       = "reopen-kill-recreate"     // SYN_SENT cell in TIME_WAIT/CLOSE after a close: kill + new entry
	ExReopenIgnore = "reopen-falls-to-ignore"   // SYN_SENT cell in TIME_WAIT/CLOSE without a close: ignored
	ExChallengeAck = "last-ack-challenge-ack"   // TIME_WAIT cell, ACK answering a SYN seen in LAST_ACK: ignored
	ExWindowIgnore = "window-ignore"            // any cell: tcp_in_window said IGNORE
	ExWindowInval  = "window-invalid"           // any cell: tcp_in_window or the RST check said INVALID
)

// Violation is a failed invariant.
type Violation struct {
	Name   string
	Detail string
}

func (v *Violation) Error() string { return v.Name + ": " + v.Detail }

func fail(name, format string, args ...any) error {
	return &Violation{Name: name, Detail: fmt.Sprintf(format, args...)}
}

// Step is one packet through fsm.Machine.Step, as the checkers see it.
type Step struct {
	Before fsm.Conn    // the entry found (zero if none)
	After  fsm.Conn    // the Conn after Step (zero if the entry is gone)
	Dir    fsm.Dir     // the tuple the packet matched (Original if no entry)
	Seg    fsm.Segment // the packet
	Now    int64
	V      fsm.Verdict
}

// live reports whether Before was an unexpired entry.
func (s *Step) live() bool { return s.Before.Live() && s.Now-s.Before.Deadline < 0 }

// Knobs is what the checkers read of a tracker's configuration: its
// profile and the value of each knob by name. An fsm.Machine has both.
type Knobs interface {
	Profile() *fsm.Profile
	Knob(name string) (int64, bool)
}

// Context is a configuration plus what the checkers derive from its
// profile and knobs. The roles are looked up by state name in the spec,
// not taken from fsm.
type Context struct {
	M     Knobs
	I     *Interp
	Linux bool // window tracking, RST checks, timeout caps (linux profile)

	sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 int
	cSyn, cSynAck, cFin, cAck, cRst                  int

	T              [16]int64 // state timeouts, ns
	retrans, unack int64
	maxRetrans     uint8
	ignoreInvalRST bool
	knob           func(string) int64
	Checks         []Check
	closing        [16]bool
}

// Check is one named step invariant.
type Check struct {
	Name string
	Fn   func(*Context, *Step) error
}

// StepChecks are the invariants checked on every step, in order.
var StepChecks = []Check{
	{NoNewAfterReply, checkNoNewAfterReply},
	{RSTLeadsToClose, checkRST},
	{AssuredAfterReply, checkAssured},
	{InvalidInert, checkInvalid},
	{SpecCell, checkSpecCell},
	{TimeoutBound, checkTimeout},
}

// NewContext builds a context for m; call it again after changing knobs.
func NewContext(m Knobs) (*Context, error) {
	in, err := NewInterp(m.Profile().Name)
	if err != nil {
		return nil, err
	}
	return NewContextSpec(m, in.S), nil
}

// NewContextSpec builds a context whose interpreter executes s rather than
// the built-in spec of m's profile: the mutation check runs a machine
// compiled from a mutated spec against that same mutated spec, so that
// spec-cell checks the logic's consistency with the table in use and only
// the other invariants and the kernel traces judge the table itself.
func NewContextSpec(m Knobs, s *spec.Spec) *Context {
	in := &Interp{S: s}
	c := &Context{M: m, I: in, Linux: in.S.HasFeature("window-tracking"), Checks: StepChecks}
	c.knob = func(name string) int64 { v, _ := m.Knob(name); return v }
	st := func(n string) int { return in.State(n) }
	c.sNO, c.sSS, c.sSR, c.sES, c.sFW = st("NONE"), st("SYN_SENT"), st("SYN_RECV"), st("ESTABLISHED"), st("FIN_WAIT")
	c.sCW, c.sLA, c.sTW, c.sCL, c.sS2 = st("CLOSE_WAIT"), st("LAST_ACK"), st("TIME_WAIT"), st("CLOSE"), st("SYN_SENT2")
	cl := func(n string) int { return in.Class(n) }
	c.cSyn, c.cSynAck, c.cFin, c.cAck, c.cRst = cl("syn"), cl("synack"), cl("fin"), cl("ack"), cl("rst")
	for i := range in.S.States {
		k, _ := m.Knob(in.S.States[i].Timeout)
		c.T[i] = k * 1e9
	}
	if k := in.S.CapKnob("retrans"); k != "" {
		c.retrans = c.knob(k) * 1e9
	}
	if k := in.S.CapKnob("unack"); k != "" {
		c.unack = c.knob(k) * 1e9
	}
	c.maxRetrans = uint8(c.knob("tcp_max_retrans"))
	c.ignoreInvalRST = c.knob("tcp_ignore_invalid_rst") != 0
	if c.Linux {
		for _, s := range []int{c.sFW, c.sCW, c.sLA, c.sTW, c.sCL} {
			c.closing[s] = true
		}
	}
	return c
}

// CheckStep runs every step invariant and returns the first violation.
func (c *Context) CheckStep(s *Step) error {
	for _, ch := range c.Checks {
		if err := ch.Fn(c, s); err != nil {
			return err
		}
	}
	return nil
}

// CheckOne runs the step invariant of the given name.
func (c *Context) CheckOne(name string, s *Step) error {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch.Fn(c, s)
		}
	}
	return fmt.Errorf("no step invariant %q", name)
}

// Bound is the longest time an entry in state may have left: its state's
// timeout, or CLOSE's (an accepted RST sets T[CLOSE] even when the state
// is kept), or SYN_SENT's for SYN_SENT2 (a reply SYN before any reply
// moves SYN_SENT to SYN_SENT2 without refreshing the timer).
func (c *Context) Bound(state fsm.State) int64 {
	b := c.T[state]
	if c.Linux {
		b = max(b, c.T[c.sCL])
		if int(state) == c.sS2 {
			b = max(b, c.T[c.sSS])
		}
	}
	return b
}

// class returns the spec class of the step's packet and whether its flags
// are valid (and the header well-formed).
func (c *Context) class(s *Step) (int, bool) {
	if s.Seg.Malformed != fsm.ReasonNone {
		return -1, false
	}
	return c.I.Classify(s.Seg.Flags)
}

func (c *Context) name(st fsm.State) string { return c.M.Profile().StateName(st) }

func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// 1. No NEW after reply.
func checkNoNewAfterReply(c *Context, s *Step) error {
	if !s.live() {
		if s.V.CT != fsm.CTInvalid && s.V.Dir != fsm.Original {
			return fail(NoNewAfterReply, "packet without an entry reported in direction %v", s.V.Dir)
		}
		return nil
	}
	if s.V.Action == fsm.Recreate {
		return nil // the old entry is destroyed; the packet is the new entry's first
	}
	if s.V.CT == fsm.CTNew && s.Dir == fsm.Reply {
		return fail(NoNewAfterReply, "reply-direction packet is NEW (state %s)", c.name(s.Before.State))
	}
	if s.V.CT == fsm.CTNew && s.Before.SeenReply() {
		return fail(NoNewAfterReply, "packet is NEW on an entry that has seen a reply (state %s)", c.name(s.Before.State))
	}
	if s.Before.SeenReply() && (s.V.Action == fsm.None || s.V.Action == fsm.Update) && !s.After.SeenReply() {
		return fail(NoNewAfterReply, "SEEN_REPLY cleared on a live entry (action %v)", s.V.Action)
	}
	if s.V.CT != fsm.CTInvalid && s.Dir == fsm.Reply && s.After.Live() && !s.After.SeenReply() {
		return fail(NoNewAfterReply, "accepted reply-direction packet did not set SEEN_REPLY")
	}
	return nil
}

// 2. RST leads to CLOSE.
func checkRST(c *Context, s *Step) error {
	cls, ok := c.class(s)
	if !ok || cls != c.cRst {
		return nil
	}
	if !s.live() {
		if s.V.Action == fsm.Create || s.V.Action == fsm.Recreate || s.After.Live() {
			return fail(RSTLeadsToClose, "an RST created an entry")
		}
		return nil
	}
	b := &s.Before
	peer := &b.Seen[1-s.Dir]
	seq := s.Seg.Seq
	accepted := s.V.CT != fsm.CTInvalid && !s.V.Ignored
	if c.Linux {
		established := int(b.State) == c.sES && b.Assured()
		checked := !c.closing[b.State] && peer.Flags&fsm.FlagMaxAckSet != 0 && int(b.LastIndex) != c.cSyn &&
			!(seq == 0 && !established)
		if checked && seqBefore(seq, peer.MaxAck) && !c.ignoreInvalRST {
			if s.V.CT != fsm.CTInvalid || s.V.Reason != fsm.ReasonInvalidRST {
				return fail(RSTLeadsToClose, "RST seq %d below the peer's max ack %d in %s: got %v (%v), want INVALID (invalid rst)",
					seq, peer.MaxAck, c.name(b.State), s.V.CT, s.V.Reason)
			}
			return nil
		}
		if s.V.Reason == fsm.ReasonInvalidRST {
			return fail(RSTLeadsToClose, "RST seq %d marked invalid rst in %s but not below the peer's max ack %d (maxack set %v, last class %d)",
				seq, c.name(b.State), peer.MaxAck, peer.Flags&fsm.FlagMaxAckSet != 0, b.LastIndex)
		}
		if c.closing[b.State] && !accepted {
			return fail(RSTLeadsToClose, "RST in closing state %s not accepted (%v, %q): closing states skip every check", c.name(b.State), s.V.CT, s.V.Reason)
		}
	}
	if !accepted {
		return nil
	}
	if !b.SeenReply() {
		if s.V.Action != fsm.Delete || s.After.Live() {
			return fail(RSTLeadsToClose, "accepted RST before any reply did not remove the entry (action %v)", s.V.Action)
		}
		return nil
	}
	if !s.After.Live() {
		return fail(RSTLeadsToClose, "accepted RST after a reply removed the entry")
	}
	want := fsm.State(0)
	if c.Linux {
		want = fsm.State(c.sCL)
		if s.After.State != want {
			// The one exception: an in-window, inexact RST on an assured
			// ESTABLISHED entry keeps the state for the challenge ACK.
			inexact := peer.Flags&fsm.FlagMaxAckSet != 0 && seq != peer.MaxAck &&
				!(int(b.LastIndex) == c.cAck && b.LastDir == s.Dir && seq == b.LastEnd)
			if !(int(b.State) == c.sES && b.Assured() && s.After.State == b.State && inexact && int(b.LastIndex) != c.cSyn) {
				return fail(RSTLeadsToClose, "accepted RST moved %s to %s, want CLOSE (or ESTABLISHED kept for an inexact in-window RST on an assured entry)",
					c.name(b.State), c.name(s.After.State))
			}
		}
	} else {
		o := c.I.Cell(s.Dir, cls, int(b.State))
		if o.Kind != spec.Next {
			return fail(RSTLeadsToClose, "accepted RST on a %s cell", c.I.S.OutcomeName(o))
		}
		want = fsm.State(o.State)
		if s.After.State != want {
			return fail(RSTLeadsToClose, "accepted RST moved %s to %s, want the cell %s", c.name(b.State), c.name(s.After.State), c.name(want))
		}
	}
	timeout := c.T[s.After.State]
	if c.Linux {
		// tcp_packet: the RETRANS cap is tested before the RST rule.
		if s.After.Retrans >= c.maxRetrans && c.T[s.After.State] > c.retrans {
			timeout = c.retrans
		} else {
			timeout = c.T[c.sCL]
		}
	}
	if !s.V.Refreshed || s.After.Deadline != s.Now+timeout {
		return fail(RSTLeadsToClose, "accepted RST in %s left %d ns (refreshed %v), want %d ns",
			c.name(b.State), s.After.Deadline-s.Now, s.V.Refreshed, timeout)
	}
	return nil
}

// 3. ASSURED only after a reply, never cleared.
func checkAssured(c *Context, s *Step) error {
	if s.After.Live() && s.After.Assured() && !s.After.SeenReply() {
		return fail(AssuredAfterReply, "entry in %s is ASSURED without SEEN_REPLY", c.name(s.After.State))
	}
	live := s.live()
	if live && s.Before.Assured() && (s.V.Action == fsm.None || s.V.Action == fsm.Update) && !s.After.Assured() {
		return fail(AssuredAfterReply, "ASSURED cleared on a live entry (%s -> %s)", c.name(s.Before.State), c.name(s.After.State))
	}
	if s.After.Live() && s.After.Assured() && !(live && s.Before.Assured()) {
		// Newly assured: only on an entry that had already seen a reply.
		if !live || !s.Before.SeenReply() || s.V.Action != fsm.Update {
			return fail(AssuredAfterReply, "ASSURED set by a packet that is not a later packet of a replied entry (action %v)", s.V.Action)
		}
		if c.Linux && !((int(s.V.Old) == c.sSR || int(s.V.Old) == c.sES) && int(s.V.New) == c.sES) {
			return fail(AssuredAfterReply, "ASSURED set on %s -> %s, want SYN_RECV/ESTABLISHED -> ESTABLISHED", c.name(s.V.Old), c.name(s.V.New))
		}
		if !c.Linux && !(int(s.V.Old) == c.sSR && s.Dir == fsm.Original) {
			return fail(AssuredAfterReply, "ASSURED set on %v %s, want an original ACK in SYN_RECV", s.Dir, c.name(s.V.Old))
		}
	}
	return nil
}

// 4. INVALID changes nothing observable; IGNORE never refreshes.
func checkInvalid(c *Context, s *Step) error {
	live := s.live()
	if s.V.CT == fsm.CTInvalid {
		if s.V.Refreshed || s.V.Ignored {
			return fail(InvalidInert, "INVALID packet refreshed=%v ignored=%v", s.V.Refreshed, s.V.Ignored)
		}
		switch {
		case s.V.Action == fsm.Delete && s.V.Expired:
		case s.V.Action == fsm.None || (s.V.Action == fsm.Update && live):
		default:
			return fail(InvalidInert, "INVALID packet has action %v", s.V.Action)
		}
		if !live {
			if s.After.Live() {
				return fail(InvalidInert, "INVALID packet without an entry created one")
			}
			return nil
		}
		a, b := &s.After, &s.Before
		if !a.Live() || a.State != b.State || a.Status != b.Status {
			return fail(InvalidInert, "INVALID packet changed the entry: %s %#x -> live=%v %s %#x",
				c.name(b.State), b.Status, a.Live(), c.name(a.State), a.Status)
		}
		if s.V.Action == fsm.None && *a != *b {
			return fail(InvalidInert, "INVALID packet with action none changed the Conn")
		}
		if a.Deadline > b.Deadline {
			return fail(InvalidInert, "INVALID packet extended the deadline by %d ns", a.Deadline-b.Deadline)
		}
		if a.Deadline != b.Deadline {
			cls, _ := c.class(s)
			left := b.Deadline - s.Now
			if !c.Linux || s.V.Reason != fsm.ReasonLoweredToUnack || a.Deadline != s.Now+c.unack || !b.Assured() ||
				(cls != c.cFin && cls != c.cRst) || left < 120e9 || left <= c.unack {
				return fail(InvalidInert, "INVALID packet moved the deadline from %d to %d ns left (reason %q); only nf_tcp_handle_invalid may, lowering an assured entry to UNACK",
					left, a.Deadline-s.Now, s.V.Reason)
			}
		}
		return nil
	}
	if s.V.Ignored {
		if s.V.Refreshed {
			return fail(InvalidInert, "ignored packet refreshed the timer")
		}
		if !live {
			if s.After.Live() || s.V.Action != fsm.None {
				return fail(InvalidInert, "ignored first packet created an entry")
			}
			return nil
		}
		a, b := &s.After, &s.Before
		if !a.Live() || a.State != b.State || a.Deadline != b.Deadline || a.Status&^fsm.SeenReply != b.Status&^fsm.SeenReply {
			return fail(InvalidInert, "ignored packet changed state, deadline or status: %s -> %s, %d -> %d ns left",
				c.name(b.State), c.name(a.State), b.Deadline-s.Now, a.Deadline-s.Now)
		}
	}
	return nil
}

// 5. Every transition taken is a cell of the spec.
func checkSpecCell(c *Context, s *Step) error {
	cls, valid := c.class(s)
	if s.Seg.Malformed != fsm.ReasonNone || !valid {
		if s.V.CT != fsm.CTInvalid || s.V.Cell != fsm.CellNone {
			return fail(SpecCell, "malformed or bad-flags packet (%v) got %v with cell %d", s.Seg.Flags, s.V.CT, s.V.Cell)
		}
		return nil
	}
	if int(s.V.Class) != cls {
		return fail(SpecCell, "flags %v: class %d, spec says %d (%s)", s.Seg.Flags, s.V.Class, cls, c.I.S.Classes[cls])
	}
	live := s.live()
	if !live {
		_, o, create, _ := c.I.First(s.Seg.Flags, c.knob)
		if s.V.Cell != CellByte(o) {
			return fail(SpecCell, "first packet %v: cell %d, spec %s", s.Seg.Flags, s.V.Cell, c.I.S.OutcomeName(o))
		}
		if create != (s.V.CT != fsm.CTInvalid) {
			return fail(SpecCell, "first packet %v: spec create=%v, fsm says %v (%q)", s.Seg.Flags, create, s.V.CT, s.V.Reason)
		}
		if s.V.Action == fsm.Create && !create {
			return fail(SpecCell, "first packet %v created an entry the spec forbids", s.Seg.Flags)
		}
		if s.V.Action == fsm.Create && (s.V.Old != fsm.State(c.sNO) || s.V.New != fsm.State(o.State) || s.After.State != s.V.New) {
			return fail(SpecCell, "first packet %v: %s -> %s, spec cell %s", s.Seg.Flags, c.name(s.V.Old), c.name(s.V.New), c.I.S.OutcomeName(o))
		}
		return nil
	}
	b := &s.Before
	o := c.I.Cell(s.Dir, cls, int(b.State))
	if s.V.Action == fsm.Recreate {
		// ExReopen: the killed entry's cell must be SYN_SENT from TIME_WAIT or
		// CLOSE, and a close must have been seen.
		closeSeen := (b.Seen[0].Flags|b.Seen[1].Flags)&fsm.FlagCloseInit != 0 ||
			(b.LastDir == s.Dir && int(b.LastIndex) == c.cRst)
		if !c.Linux || cls != c.cSyn || o.Kind != spec.Next || o.State != c.sSS ||
			(int(b.State) != c.sTW && int(b.State) != c.sCL) || !closeSeen {
			return fail(SpecCell, "%s: recreate from %s (cell %s, close seen %v)", ExReopen, c.name(b.State), c.I.S.OutcomeName(o), closeSeen)
		}
		if int(s.After.State) != c.sSS || s.After.SeenReply() || s.After.Assured() || s.V.CT != fsm.CTNew {
			return fail(SpecCell, "%s: new entry %s status %#x ct %v, want a fresh SYN_SENT entry", ExReopen, c.name(s.After.State), s.After.Status, s.V.CT)
		}
		return nil
	}
	if s.V.Cell != CellByte(o) {
		return fail(SpecCell, "%v %v in %s: cell %s, spec %s", s.Dir, s.Seg.Flags, c.name(b.State), c.M.Profile().OutcomeName(s.V.Cell), c.I.S.OutcomeName(o))
	}
	if s.V.CT == fsm.CTInvalid {
		if o.Kind == spec.Invalid {
			return nil
		}
		switch s.V.Reason { // ExWindowInval
		case fsm.ReasonInvalidRST, fsm.ReasonSeqOverUpper, fsm.ReasonAckOverUpper, fsm.ReasonLoweredToUnack:
			if c.Linux {
				return nil
			}
		}
		return fail(SpecCell, "%v %v in %s: INVALID (%q) on spec cell %s", s.Dir, s.Seg.Flags, c.name(b.State), s.V.Reason, c.I.S.OutcomeName(o))
	}
	if o.Kind == spec.Invalid {
		return fail(SpecCell, "%v %v in %s: accepted on an sIV cell", s.Dir, s.Seg.Flags, c.name(b.State))
	}
	if s.V.Ignored {
		switch {
		case o.Kind == spec.Ignore && s.V.Reason == fsm.ReasonIgnoredTransition:
		case c.Linux && (s.V.Reason == fsm.ReasonSeqUnderLower || s.V.Reason == fsm.ReasonAckUnderLower || s.V.Reason == fsm.ReasonOvershoot): // ExWindowIgnore
		case c.Linux && o.State == c.sSS && (int(b.State) == c.sTW || int(b.State) == c.sCL) && s.V.Reason == fsm.ReasonIgnoredTransition: // ExReopenIgnore
		case c.Linux && o.State == c.sTW && int(b.State) == c.sLA && cls == c.cAck && s.V.Reason == fsm.ReasonChallengeAck: // ExChallengeAck
			if b.LastFlags&fsm.LastChallengeAck == 0 || int(b.LastIndex) != c.cSyn || b.LastDir == s.Dir {
				return fail(SpecCell, "%s without a SYN seen in LAST_ACK from the other side", ExChallengeAck)
			}
		default:
			return fail(SpecCell, "%v %v in %s: ignored (%q) on spec cell %s, which no named exception covers",
				s.Dir, s.Seg.Flags, c.name(b.State), s.V.Reason, c.I.S.OutcomeName(o))
		}
		return nil
	}
	// An accepted transition.
	old, next := fsm.State(b.State), fsm.State(o.State)
	switch {
	case o.Kind == spec.Ignore:
		if !c.Linux || cls != c.cSynAck || int(b.LastIndex) != c.cSyn || b.LastDir == s.Dir || s.Seg.Ack != b.LastEnd {
			return fail(SpecCell, "%v %v in %s: accepted transition on an sIG cell that is not %s", s.Dir, s.Seg.Flags, c.name(b.State), ExResync)
		}
		old, next = fsm.State(c.sSS), fsm.State(c.sSR) // ExResync
	case c.Linux && o.State == c.sSR && s.Dir == fsm.Reply && cls == c.cAck && b.LastFlags&fsm.LastSimultaneous != 0:
		next = fsm.State(c.sES) // ExSimultaneous
	case c.Linux && cls == c.cRst && o.State == c.sCL && s.V.New == b.State && int(b.State) == c.sES:
		next = b.State // ExRSTKeep; the conditions are checked by rst-leads-to-close
	}
	if s.V.Old != old || s.V.New != next {
		return fail(SpecCell, "%v %v in %s: transition %s -> %s, spec cell %s (want %s -> %s)", s.Dir, s.Seg.Flags, c.name(b.State),
			c.name(s.V.Old), c.name(s.V.New), c.I.S.OutcomeName(o), c.name(old), c.name(next))
	}
	switch s.V.Action {
	case fsm.Update:
		if !s.After.Live() || s.After.State != next {
			return fail(SpecCell, "update left the entry live=%v in %s, want %s", s.After.Live(), c.name(s.After.State), c.name(next))
		}
	case fsm.Delete:
		if cls != c.cRst || b.SeenReply() {
			return fail(SpecCell, "entry deleted by %v in %s; only an RST before any reply deletes", s.Seg.Flags, c.name(b.State))
		}
	default:
		return fail(SpecCell, "accepted packet on a live entry has action %v", s.V.Action)
	}
	return nil
}

// 7. (step part) Timeouts: a refresh sets exactly now+timeout, the timeout
// never exceeds the new state's (an RST's CLOSE aside), an entry never
// outlives its state's bound, and nothing extends a deadline without a
// refresh.
func checkTimeout(c *Context, s *Step) error {
	a := &s.After
	cls, _ := c.class(s)
	if s.V.Refreshed {
		if !a.Live() || a.Deadline != s.Now+s.V.Timeout {
			return fail(TimeoutBound, "refresh: deadline %d ns from now, verdict timeout %d", a.Deadline-s.Now, s.V.Timeout)
		}
		t := c.T[s.V.New]
		switch {
		case !c.Linux:
			if s.V.Timeout != t {
				return fail(TimeoutBound, "timeout %d for %s, want %d", s.V.Timeout, c.name(s.V.New), t)
			}
		case cls == c.cRst: // checked exactly by rst-leads-to-close
		case s.V.Timeout > t:
			return fail(TimeoutBound, "timeout %d exceeds %s's %d", s.V.Timeout, c.name(s.V.New), t)
		case s.V.Timeout != t && s.V.Timeout != c.retrans && s.V.Timeout != c.unack:
			return fail(TimeoutBound, "timeout %d for %s is neither the state's nor a cap", s.V.Timeout, c.name(s.V.New))
		case !(s.live() && s.Before.SeenReply()) && int(s.V.New) == c.sES && s.V.Timeout > c.unack:
			return fail(TimeoutBound, "ESTABLISHED without a reply got %d ns, more than UNACK", s.V.Timeout)
		}
	} else if a.Live() && s.live() && a.Deadline > s.Before.Deadline {
		return fail(TimeoutBound, "deadline extended without a refresh")
	} else if s.V.Action == fsm.Create || s.V.Action == fsm.Recreate {
		return fail(TimeoutBound, "new entry without a timeout")
	}
	if a.Live() {
		if left := a.Deadline - s.Now; left <= 0 || left > c.Bound(a.State) {
			return fail(TimeoutBound, "entry in %s has %d ns left, bound %d", c.name(a.State), left, c.Bound(a.State))
		}
	}
	return nil
}
