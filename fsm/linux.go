package fsm

import "github.com/fdac824a/tcpct/spec"

// This file is nf_conntrack_tcp_packet() and tcp_new() of
// net/netfilter/nf_conntrack_proto_tcp.c (Linux 6.x), restated over the
// generated table: the special cells the table cannot express, RST
// validation, SEEN_REPLY/ASSURED and the timeout rules (step, in
// machine.go, calls them; mayCreate and newConn are tcp_new()). window.go
// holds tcp_in_window().

// linuxPacket is nf_conntrack_tcp_packet() on work, which is c itself for
// an existing entry or a fresh Conn for a first packet (created); c is
// written when the packet is accepted.
func (m *Machine) linuxPacket(c, work *Conn, created bool, seg *Segment, dir Dir, class Class, now int64, v *Verdict) {
	old := work.State
	cell := m.p.Cell(dir, class, old)
	v.Cell = cell
	next := State(cell)
	skipWindow := false
	ct := ctOf(work, dir)

	switch {
	case cell == spec.OutInvalid:
		m.invalid(v, ReasonInvalidTransition)
		return

	case cell == spec.OutIgnore || (next == m.sSS && (old == m.sTW || old == m.sCL || old == m.sS2)):
		if cell != spec.OutIgnore && m.reopenKills &&
			((work.Seen[dir].Flags|work.Seen[1-dir].Flags)&FlagCloseInit != 0 ||
				(work.LastDir == dir && work.LastIndex == m.cRst)) {
			// RFC 1122 §4.2.2.13: a SYN reopens a closed or aborted
			// connection. The kernel kills the entry and looks the packet
			// up again, so it creates a new entry with this packet's
			// direction as the original one.
			*c = Conn{}
			m.StepInto(v, c, seg, Original, now)
			if v.Action == Create {
				v.Action = Recreate
			} else {
				v.Action = Delete
			}
			v.Old = old
			return
		}
		if m.resyncAfterIgnoredSyn(work, seg, dir, class) {
			old, next = m.sSS, m.sSR
			break
		}
		m.rememberIgnored(work, seg, dir, class, old)
		m.finishIgnored(c, work, created, dir, ct, ReasonIgnoredTransition, v)
		return

	case next == m.sTW:
		// RFC 5961 §4: the ACK answering a SYN we let through in LAST_ACK
		// is a challenge ACK, not the ACK of the last FIN.
		if old == m.sLA && class == m.cAck && work.LastDir != dir && work.LastIndex == m.cSyn && work.LastFlags&LastChallengeAck != 0 {
			work.LastFlags &^= LastChallengeAck
			m.finishIgnored(c, work, created, dir, ct, ReasonChallengeAck, v)
			return
		}

	case next == m.sS2:
		work.LastFlags |= LastSimultaneous

	case next == m.sSR:
		if dir == Reply && class == m.cAck && work.LastFlags&LastSimultaneous != 0 {
			next = m.sES
		}

	case next == m.sCL && class == m.cRst:
		var r Reason
		next, skipWindow, r = m.checkRST(work, seg, dir, old)
		if r != ReasonNone {
			m.invalid(v, r)
			return
		}
	}

	if !skipWindow {
		res, r := m.inWindow(work, seg, dir, class)
		switch res {
		case windowIgnore:
			m.finishIgnored(c, work, created, dir, ct, r, v)
			return
		case windowInvalid:
			if !created && m.handleInvalid(work, dir, class, now) {
				work.Deadline = now + m.unackTimeout
				r = ReasonLoweredToUnack
			}
			if !created {
				v.Action = Update
			} else {
				v.Action = None
			}
			v.CT, v.Reason = CTInvalid, r
			return
		}
	}

	// The packet is accepted: the state moves from old to next, the timer
	// is renewed, and v and c are filled. (The fast path for an in-window
	// ACK of an ESTABLISHED connection, in StepInto, writes what this
	// writes in that case; the fast-path differentials hold the two equal.
	// It is written here, not in a function of its own: a call with twelve
	// arguments passes some on the stack.)
	// in_window: from here on the packet is accepted.
	work.LastIndex, work.LastDir = class, dir
	work.State = next
	if old != next && next == m.sFW {
		work.Seen[dir].Flags |= FlagCloseInit
	}
	timeout := m.timeoutFor(work, next, class)

	v.Old = old
	v.Action = Update
	if created {
		v.Action = Create
	}
	if !work.SeenReply() {
		if seg.Flags&spec.RST != 0 {
			// "If only reply is a RST, we can consider ourselves not to
			// have an established connection": the entry is deleted.
			v.CT, v.New = ct, next
			v.Action, v.Accounted = Delete, true // nf_ct_kill_acct
			if created {
				v.Action, v.Accounted = None, false
			}
			*c = Conn{}
			return
		}
		if m.keepTimerOnSynRetransmit && class == m.cSyn && old == m.sSS {
			// A retransmitted SYN does not renew the timer, so port
			// reuse cannot keep an unanswered entry alive forever.
			if created {
				*c = *work
			}
			accept(c, dir, ct, v)
			return
		}
		if next == m.sES && timeout > m.unackTimeout {
			// A picked-up connection without reply.
			timeout = m.unackTimeout
		}
	} else if !work.Assured() && (old == m.sSR || old == m.sES) && next == m.sES {
		work.Status |= Assured
	}
	work.Deadline = now + timeout
	v.Refreshed, v.Timeout, v.Accounted = true, timeout, true
	if created {
		*c = *work
	}
	accept(c, dir, ct, v)
}

// newConn is tcp_new(): a SYN starts window tracking from its sequence
// number; any other first packet (tcp_loose) is picked up mid-stream with
// liberal windows and SACK assumed, since the history is lost.
func (m *Machine) newConn(n *Conn, seg *Segment, first State) {
	*n = Conn{Status: Confirmed, State: m.p.Initial, LastIndex: m.cNone}
	o := &n.Seen[Original]
	o.End = seg.End()
	o.MaxWin = max(uint32(seg.Win), 1)
	if first == m.sSS {
		o.MaxEnd = o.End
		applyOptions(o, seg)
		return
	}
	o.MaxEnd = o.End + o.MaxWin
	o.Flags = FlagSackPerm | FlagBeLiberal
	n.Seen[Reply].Flags = FlagSackPerm | FlagBeLiberal
}

// resyncAfterIgnoredSyn handles a SYN/ACK acknowledging a SYN that was
// ignored earlier: client and server are in sync while the tracker is not,
// so it takes the SYN's remembered values and restarts from SYN_SENT.
func (m *Machine) resyncAfterIgnoredSyn(c *Conn, seg *Segment, dir Dir, class Class) bool {
	if class != m.cSynAck || c.LastIndex != m.cSyn || c.LastDir == dir || seg.Ack != c.LastEnd {
		return false
	}
	p := &c.Seen[c.LastDir]
	p.End, p.MaxEnd = c.LastEnd, c.LastEnd
	p.MaxWin = max(uint32(c.LastWin), 1)
	p.Scale = c.LastWscale
	c.LastFlags &^= LastChallengeAck
	p.Flags = PeerFlags(c.LastFlags)
	s := &c.Seen[dir]
	*s = Peer{Flags: s.Flags & FlagBeLiberal}
	return true
}

// rememberIgnored records an ignored packet so that a later answer to it
// can be recognised: the SYN/ACK to an ignored SYN, an RST to an ignored
// SYN or ACK, an RST to a challenge ACK.
func (m *Machine) rememberIgnored(c *Conn, seg *Segment, dir Dir, class Class, old State) {
	c.LastIndex, c.LastDir = class, dir
	c.LastSeq, c.LastEnd, c.LastWin = seg.Seq, seg.End(), seg.Win
	if class == m.cSyn && dir == Original {
		c.LastFlags, c.LastWscale = 0, 0
		if seg.HasWScale {
			c.LastFlags |= uint8(FlagWindowScale)
			c.LastWscale = seg.WScale
		}
		if seg.SackPerm {
			c.LastFlags |= uint8(FlagSackPerm)
		}
		if old == m.sLA {
			c.LastFlags |= LastChallengeAck
		}
	}
	if old == m.sSS && class == m.cAck && dir == Reply {
		c.LastAck = seg.Ack
	}
}

// finishIgnored completes a verdict for a packet accepted without a state
// change or timer refresh (NF_ACCEPT before the in_window label).
func (m *Machine) finishIgnored(c, work *Conn, created bool, dir Dir, ct CT, r Reason, v *Verdict) {
	v.Ignored, v.Reason = true, r
	if created {
		// An unconfirmed entry that is never refreshed expires at once.
		v.CT, v.Action = ct, None
		return
	}
	v.Action = Update
	accept(c, dir, ct, v)
}

// checkRST is the RST validation ladder of the kernel's CLOSE case. It
// returns the state to move to, whether the window check is skipped, and
// a reason when the RST is INVALID.
func (m *Machine) checkRST(c *Conn, seg *Segment, dir Dir, old State) (State, bool, Reason) {
	next := m.sCL
	if m.canEarlyDrop(c.State) {
		// Closing: the tuple may be reused already; no checks.
		return next, true, ReasonNone
	}
	peer := &c.Seen[1-dir]
	if peer.Flags&FlagMaxAckSet != 0 && c.LastIndex != m.cSyn {
		established := c.State == m.sES && c.Assured()
		switch {
		case seg.Seq == 0 && !established:
			// Most likely the answer to a SYN let through earlier.
			return next, false, ReasonNone
		case before(seg.Seq, peer.MaxAck) && !m.ignoreInvalidRST:
			return next, false, ReasonInvalidRST
		case !established || seg.Seq == peer.MaxAck:
			return next, false, ReasonNone
		case c.LastIndex == m.cAck && c.LastDir == dir && seg.Seq == c.LastEnd:
			// The RST ends a data train of the same sender.
			return next, false, ReasonNone
		default:
			// In window but not exact: keep the state so that the
			// endpoint's challenge ACK (RFC 5961 §3) can pass.
			next = old
		}
	}
	if ((c.SeenReply() && c.LastIndex == m.cSyn && c.LastDir != dir) ||
		(!c.Assured() && c.LastIndex == m.cAck)) && seg.Ack == c.LastEnd {
		// RST answering a SYN or ACK we let through: skip the window.
		return next, true, ReasonNone
	}
	if old == m.sSS && c.LastIndex == m.cAck && c.LastDir == Reply && seg.Seq == c.LastAck {
		// RST answering a challenge ACK we let through.
		return next, true, ReasonNone
	}
	return next, false, ReasonNone
}

// canEarlyDrop is tcp_can_early_drop(): the closing states.
func (m *Machine) canEarlyDrop(s State) bool {
	return s == m.sFW || s == m.sLA || s == m.sTW || s == m.sCL || s == m.sCW
}

// Closing reports whether s is a state the kernel may early-drop even when
// the entry is assured.
func (m *Machine) Closing(s State) bool { return m.windows && m.canEarlyDrop(s) }

// timeoutFor applies the timeout rules in the kernel's order.
func (m *Machine) timeoutFor(c *Conn, next State, class Class) int64 {
	t := m.timeout[next]
	switch {
	case !m.caps:
		return t
	case c.Retrans >= m.maxRetrans && t > m.retransTimeout:
		return m.retransTimeout
	case class == m.cRst:
		return m.timeout[m.sCL]
	case (c.Seen[0].Flags|c.Seen[1].Flags)&FlagDataUnacked != 0 && t > m.unackTimeout:
		return m.unackTimeout
	case c.LastWin == 0 && t > m.retransTimeout:
		return m.retransTimeout
	}
	return t
}

// handleInvalid is nf_tcp_handle_invalid(): when both sides sent an
// out-of-window FIN or RST on an assured entry, the endpoints and the
// tracker are out of sync, so the entry's remaining time is lowered to the
// unacknowledged timeout instead of lingering for days.
func (m *Machine) handleInvalid(c *Conn, dir Dir, class Class, now int64) bool {
	if !c.Assured() || (class != m.cRst && class != m.cFin) {
		return false
	}
	if c.LastDir != dir && (c.LastIndex == m.cFin || c.LastIndex == m.cRst) {
		left := c.Deadline - now
		if left < 120*second {
			return false
		}
		return left > m.unackTimeout
	}
	c.LastIndex, c.LastDir = class, dir
	return false
}

// before and after compare sequence numbers modulo 2^32 (RFC 9293 §3.4).
func before(a, b uint32) bool { return int32(a-b) < 0 }
func after(a, b uint32) bool  { return int32(b-a) < 0 }
