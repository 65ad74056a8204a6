package property

import (
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
)

// This file is the abstract machine of a profile: the spec's table (read
// through invariant.Interp, never fsm's generated tables) plus the kernel's
// bookkeeping around it, with every decision that depends on sequence
// numbers, windows or retransmission counts replaced by a nondeterministic
// choice. An abstract state is what alpha keeps of a Conn.

// abs is an abstract state.
type abs struct {
	Live      bool
	State     fsm.State
	Status    fsm.Status
	LastIndex fsm.Class
	LastDir   fsm.Dir
	CloseInit bool  // some side sent the first FIN
	Last      uint8 // LastFlags & (fsm.LastChallengeAck | fsm.LastSimultaneous)
}

func alpha(c *fsm.Conn) abs {
	if !c.Live() {
		return abs{}
	}
	return abs{Live: true, State: c.State, Status: c.Status, LastIndex: c.LastIndex, LastDir: c.LastDir,
		CloseInit: (c.Seen[0].Flags|c.Seen[1].Flags)&fsm.FlagCloseInit != 0, Last: c.LastFlags & (fsm.LastChallengeAck | fsm.LastSimultaneous)}
}

// chooser enumerates every sequence of nondeterministic choices (an
// odometer over the choice points met by one run).
type chooser struct {
	path, lim []int
	pos       int
}

func (c *chooser) choose(n int) int {
	if c.pos < len(c.path) {
		v := c.path[c.pos]
		c.pos++
		return v
	}
	c.path, c.lim = append(c.path, 0), append(c.lim, n)
	c.pos++
	return 0
}

func (c *chooser) next() bool {
	c.pos = 0
	for i := len(c.path) - 1; i >= 0; i-- {
		if c.path[i]+1 < c.lim[i] {
			c.path[i]++
			c.path, c.lim = c.path[:i+1], c.lim[:i+1]
			return true
		}
	}
	return false
}

// model is the abstract machine of one profile.
type model struct {
	ctx *invariant.Context
	in  *invariant.Interp
	m   invariant.Knobs

	sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 fsm.State
	cSyn, cSynAck, cFin, cAck, cRst, cNone           fsm.Class
	T                                                [16]int64
	retrans, unack                                   int64
	maxRetrans                                       uint8
	linux                                            bool
}

func newModel(m *fsm.Machine) *model {
	ctx, err := invariant.NewContext(m)
	if err != nil {
		panic(err)
	}
	return newModelCtx(ctx)
}

// newModelCtx is the abstract machine of the spec ctx interprets (which
// may be a mutant), with the knobs of ctx's machine.
func newModelCtx(ctx *invariant.Context) *model {
	m := ctx.M
	in := ctx.I
	md := &model{ctx: ctx, in: in, m: m, linux: ctx.Linux}
	st := func(n string) fsm.State { return fsm.State(uint8(in.State(n))) }
	md.sNO, md.sSS, md.sSR, md.sES, md.sFW = st("NONE"), st("SYN_SENT"), st("SYN_RECV"), st("ESTABLISHED"), st("FIN_WAIT")
	md.sCW, md.sLA, md.sTW, md.sCL, md.sS2 = st("CLOSE_WAIT"), st("LAST_ACK"), st("TIME_WAIT"), st("CLOSE"), st("SYN_SENT2")
	cl := func(n string) fsm.Class { return fsm.Class(uint8(in.Class(n))) }
	md.cSyn, md.cSynAck, md.cFin, md.cAck, md.cRst, md.cNone = cl("syn"), cl("synack"), cl("fin"), cl("ack"), cl("rst"), cl("none")
	for i := range in.S.States {
		v, _ := m.Knob(in.S.States[i].Timeout)
		md.T[i] = v * second
	}
	if k := in.S.CapKnob("retrans"); k != "" {
		v, _ := m.Knob(k)
		md.retrans = v * second
	}
	if k := in.S.CapKnob("unack"); k != "" {
		v, _ := m.Knob(k)
		md.unack = v * second
	}
	r, _ := m.Knob("tcp_max_retrans")
	md.maxRetrans = uint8(r)
	return md
}

func (md *model) knob(name string) int64 { v, _ := md.m.Knob(name); return v }

// concretize builds a Conn with abstract state a, as a witness for the
// checkers: the deadline is the longest the state allows.
func (md *model) concretize(a abs, now int64) fsm.Conn {
	if !a.Live {
		return fsm.Conn{}
	}
	c := fsm.Conn{State: a.State, Status: a.Status, LastIndex: a.LastIndex, LastDir: a.LastDir, LastFlags: a.Last,
		Deadline: now + md.ctx.Bound(a.State)}
	if a.CloseInit {
		c.Seen[0].Flags |= fsm.FlagCloseInit
	}
	return c
}

func (md *model) closing(s fsm.State) bool {
	return md.linux && (s == md.sFW || s == md.sCW || s == md.sLA || s == md.sTW || s == md.sCL)
}

func ctOf(c *fsm.Conn, dir fsm.Dir) fsm.CT {
	if dir == fsm.Reply || c.SeenReply() {
		return fsm.CTEstablished
	}
	return fsm.CTNew
}

// step runs one abstract packet: c is updated in place (as fsm.Step does);
// b (a copy of the entry before) and seg receive the witness values the
// choices imply, so that the checkers see a consistent concrete step.
func (md *model) step(b, c *fsm.Conn, seg *fsm.Segment, dir fsm.Dir, now int64, ch *chooser) fsm.Verdict {
	v := fsm.Verdict{Dir: dir, Cell: fsm.CellNone, Class: md.cNone}
	if !c.Live() {
		v.Dir, dir = fsm.Original, fsm.Original
		v.Old, v.New = md.sNO, md.sNO
	} else {
		v.Old, v.New = c.State, c.State
	}
	invalid := func(r fsm.Reason) fsm.Verdict {
		v.CT, v.Reason, v.Action = fsm.CTInvalid, r, fsm.None
		return v
	}
	cls, ok := md.in.Classify(seg.Flags)
	if cls >= 0 {
		v.Class = fsm.Class(cls)
	}
	if !ok {
		return invalid(fsm.ReasonBadFlags)
	}
	class := fsm.Class(cls)
	created := false
	work := *c
	if !c.Live() {
		o := md.in.Cell(spec.Original, cls, int(md.sNO))
		v.Cell = invariant.CellByte(o)
		if o.Kind != spec.Next {
			return invalid(fsm.ReasonInvalidNew)
		}
		if !md.in.MayCreate(cls, md.knob) {
			return invalid(fsm.ReasonLooseOff)
		}
		work = fsm.Conn{Status: fsm.Confirmed, State: md.sNO}
		if md.linux {
			work.LastIndex = md.cNone // tcp_new: last_index = TCP_NONE_SET
		}
		created = true
	}
	if md.linux {
		return md.linuxStep(b, c, &work, created, seg, dir, class, now, ch, v)
	}
	return md.tableStep(c, &work, created, seg, dir, class, now, ch, v)
}

func (md *model) tableStep(c, work *fsm.Conn, created bool, seg *fsm.Segment, dir fsm.Dir, class fsm.Class, now int64, ch *chooser, v fsm.Verdict) fsm.Verdict {
	old := work.State
	o := md.in.Cell(dir, int(class), int(old))
	v.Cell = invariant.CellByte(o)
	if o.Kind != spec.Next {
		v.CT, v.Reason, v.Action = fsm.CTInvalid, fsm.ReasonInvalidTransition, fsm.None
		return v
	}
	ct := ctOf(work, dir)
	next := fsm.State(o.State)
	work.State, v.Old = next, old
	if !work.SeenReply() && seg.Flags&spec.RST != 0 {
		v.CT, v.New, v.Action = ct, next, fsm.Delete
		if created {
			v.Action = fsm.None
		}
		*c = fsm.Conn{}
		return v
	}
	if old == md.sSR && dir == fsm.Original && seg.Flags&spec.ACK != 0 && seg.Flags&spec.SYN == 0 && ch.choose(2) == 1 {
		work.Status |= fsm.Assured // the ACK acknowledges the SYN/ACK
	}
	work.Deadline = now + md.T[next]
	v.Refreshed, v.Timeout, v.Action = true, md.T[next], fsm.Update
	if created {
		v.Action = fsm.Create
	}
	*c = *work
	md.accept(c, dir, ct, &v)
	return v
}

func (md *model) accept(c *fsm.Conn, dir fsm.Dir, ct fsm.CT, v *fsm.Verdict) {
	v.CT = ct
	if dir == fsm.Reply {
		c.Status |= fsm.SeenReply
	}
	v.New = c.State
}

func (md *model) ignored(c, work *fsm.Conn, created bool, dir fsm.Dir, ct fsm.CT, r fsm.Reason, v *fsm.Verdict) fsm.Verdict {
	v.Ignored, v.Reason = true, r
	if created {
		v.CT, v.Action = ct, fsm.None
		return *v
	}
	*c = *work
	v.Action = fsm.Update
	md.accept(c, dir, ct, v)
	return *v
}

// RST outcomes of the kernel's sequence ladder, as choices.
const (
	rstUnchecked = iota // MAXACK not set: straight to the window check
	rstExact            // seq == peer's max ack: close
	rstBelow            // below the peer's max ack: INVALID
	rstInexact          // above it but not exact: keep ESTABLISHED (assured)
	numRST
)

func (md *model) linuxStep(b, c, work *fsm.Conn, created bool, seg *fsm.Segment, dir fsm.Dir, class fsm.Class, now int64, ch *chooser, v fsm.Verdict) fsm.Verdict {
	if !created && ch.choose(2) == 1 {
		b.Retrans, c.Retrans, work.Retrans = 255, 255, 255 // witness: many identical retransmissions
	}
	old := work.State
	o := md.in.Cell(dir, int(class), int(old))
	v.Cell = invariant.CellByte(o)
	next := fsm.State(o.State)
	ct := ctOf(work, dir)
	skipWindow := false
	switch {
	case o.Kind == spec.Invalid:
		v.CT, v.Reason, v.Action = fsm.CTInvalid, fsm.ReasonInvalidTransition, fsm.None
		return v
	case o.Kind == spec.Ignore || (next == md.sSS && (old == md.sTW || old == md.sCL || old == md.sS2)):
		if o.Kind != spec.Ignore && ((work.Seen[0].Flags|work.Seen[1].Flags)&fsm.FlagCloseInit != 0 || (work.LastDir == dir && work.LastIndex == md.cRst)) {
			*c = fsm.Conn{}
			var nb fsm.Conn
			v2 := md.step(&nb, c, seg, fsm.Original, now, &chooser{})
			if v2.Action == fsm.Create {
				v2.Action = fsm.Recreate
			} else {
				v2.Action = fsm.Delete
			}
			v2.Old = old
			return v2
		}
		if class == md.cSynAck && work.LastIndex == md.cSyn && work.LastDir != dir {
			if ch.choose(2) == 1 {
				seg.Ack = work.LastEnd
				ld := work.LastDir
				work.LastFlags &^= fsm.LastChallengeAck
				work.Seen[ld].Flags = fsm.PeerFlags(work.LastFlags)
				work.Seen[dir].Flags &= fsm.FlagBeLiberal
				old, next = md.sSS, md.sSR
				break
			}
			seg.Ack = work.LastEnd + 1
		}
		work.LastIndex, work.LastDir = class, dir
		if class == md.cSyn && dir == fsm.Original {
			work.LastFlags = 0
			if old == md.sLA {
				work.LastFlags |= fsm.LastChallengeAck
			}
		}
		return md.ignored(c, work, created, dir, ct, fsm.ReasonIgnoredTransition, &v)
	case next == md.sTW:
		if old == md.sLA && class == md.cAck && work.LastDir != dir && work.LastIndex == md.cSyn && work.LastFlags&fsm.LastChallengeAck != 0 {
			work.LastFlags &^= fsm.LastChallengeAck
			return md.ignored(c, work, created, dir, ct, fsm.ReasonChallengeAck, &v)
		}
	case next == md.sS2:
		work.LastFlags |= fsm.LastSimultaneous
	case next == md.sSR:
		if dir == fsm.Reply && class == md.cAck && work.LastFlags&fsm.LastSimultaneous != 0 {
			next = md.sES
		}
	case next == md.sCL && class == md.cRst:
		if md.closing(old) {
			skipWindow = true
			break
		}
		peer := &b.Seen[1-dir]
		witness := func(seq uint32) {
			peer.Flags |= fsm.FlagMaxAckSet
			peer.MaxAck, seg.Seq = 1000, seq
			c.Seen[1-dir], work.Seen[1-dir] = *peer, *peer
		}
		established := old == md.sES && work.Assured()
		switch ch.choose(numRST) {
		case rstUnchecked:
			skipWindow = ch.choose(2) == 1 // an RST answering a packet let through
		case rstExact:
			if work.LastIndex == md.cSyn {
				return md.dead(ch)
			}
			witness(1000)
		case rstBelow:
			if work.LastIndex == md.cSyn {
				return md.dead(ch)
			}
			witness(500)
			if md.knob("tcp_ignore_invalid_rst") == 0 {
				v.CT, v.Reason, v.Action = fsm.CTInvalid, fsm.ReasonInvalidRST, fsm.None
				return v
			}
			if !established {
				break
			}
			next = old
		case rstInexact:
			if work.LastIndex == md.cSyn || !established {
				return md.dead(ch)
			}
			witness(2000)
			work.LastEnd = 0
			next = old
		}
	}
	if !skipWindow && !created { // a first SYN is in window by construction; a pickup is liberal
		switch ch.choose(3) {
		case 1:
			return md.ignored(c, work, created, dir, ct, fsm.ReasonSeqUnderLower, &v)
		case 2:
			r := fsm.ReasonSeqOverUpper
			if !created && md.handleInvalid(work, dir, class, now) {
				work.Deadline = now + md.unack
				r = fsm.ReasonLoweredToUnack
			}
			v.Action = fsm.None
			if !created {
				*c = *work
				v.Action = fsm.Update
			}
			v.CT, v.Reason = fsm.CTInvalid, r
			return v
		}
	}
	if class == md.cAck && ch.choose(2) == 1 {
		work.Retrans = 0 // a new ACK resets the retransmission count
	}
	if ch.choose(2) == 1 {
		work.Seen[dir].Flags |= fsm.FlagDataUnacked
	}
	if ch.choose(2) == 1 {
		work.LastWin = 0
	} else {
		work.LastWin = 1
	}
	work.LastIndex, work.LastDir = class, dir
	work.State = next
	if old != next && next == md.sFW {
		work.Seen[dir].Flags |= fsm.FlagCloseInit
	}
	timeout := md.timeoutFor(work, next, class)
	v.Old, v.Action = old, fsm.Update
	if created {
		v.Action = fsm.Create
	}
	if !work.SeenReply() {
		if seg.Flags&spec.RST != 0 {
			v.CT, v.New, v.Action = ct, next, fsm.Delete
			if created {
				v.Action = fsm.None
			}
			*c = fsm.Conn{}
			return v
		}
		if class == md.cSyn && old == md.sSS {
			*c = *work
			md.accept(c, dir, ct, &v)
			return v
		}
		if next == md.sES && timeout > md.unack {
			timeout = md.unack
		}
	} else if !work.Assured() && (old == md.sSR || old == md.sES) && next == md.sES {
		work.Status |= fsm.Assured
	}
	work.Deadline = now + timeout
	v.Refreshed, v.Timeout = true, timeout
	*c = *work
	md.accept(c, dir, ct, &v)
	return v
}

// dead marks a choice sequence that the kernel cannot take.
func (md *model) dead(ch *chooser) fsm.Verdict { return fsm.Verdict{Reason: 0xFF} }

func (md *model) timeoutFor(c *fsm.Conn, next fsm.State, class fsm.Class) int64 {
	t := md.T[next]
	switch {
	case c.Retrans >= md.maxRetrans && t > md.retrans:
		return md.retrans
	case class == md.cRst:
		return md.T[md.sCL]
	case (c.Seen[0].Flags|c.Seen[1].Flags)&fsm.FlagDataUnacked != 0 && t > md.unack:
		return md.unack
	case c.LastWin == 0 && t > md.retrans:
		return md.retrans
	}
	return t
}

func (md *model) handleInvalid(c *fsm.Conn, dir fsm.Dir, class fsm.Class, now int64) bool {
	if !c.Assured() || (class != md.cRst && class != md.cFin) {
		return false
	}
	if c.LastDir != dir && (c.LastIndex == md.cFin || c.LastIndex == md.cRst) {
		left := c.Deadline - now
		return left >= 120*second && left > md.unack
	}
	c.LastIndex, c.LastDir = class, dir
	return false
}
