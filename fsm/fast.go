package fsm

import "github.com/fdac824a/tcpct/spec"

// The fast path: most packets a tracker sees are ACKs of an ESTABLISHED
// connection that tcp_in_window accepts. For those the general path
// (linuxPacket) looks the cell up, runs through the special cases of
// nf_conntrack_tcp_packet that cannot apply, and tcp_in_window tests the
// SYN, RST and pick-up cases before the four window bounds. StepInto
// checks in a few comparisons that none of that applies and that the four
// bounds hold, and then writes what the general path's inWindow and
// linuxPacket write in that case, with the branches that cannot apply
// taken out. Whenever a condition fails it hands the packet to the general
// path having written nothing.
//
// StepInto, below, is the fast path; the general path is step
// (machine.go).
//
// TestFastPathIsTheGeneralPath (fast_test.go) runs the recorded kernel
// traces and generated ones through a machine with the fast path and one
// without, and requires the same verdict and the same entry after every
// packet; TestFastPathRandomWalk does the same with random segments near
// the window bounds under several sysctl sets.

// fastFlagBytes lists the flag bytes with which a packet of an
// ESTABLISHED connection may take the fast path: valid ones of class ack
// without SYN, FIN or RST (StepInto relies on all three), and none at
// all unless the profile tracks windows and keeps an ESTABLISHED
// connection ESTABLISHED on an ACK in both directions, with none of the
// special states of linuxPacket involved, so that only tcp_in_window
// decides.
func (m *Machine) fastFlagBytes() (flags [256]bool) {
	if !m.windows || m.cAck == m.cRst {
		return flags
	}
	for _, s := range []State{m.sSS, m.sSR, m.sTW, m.sS2, m.sCL} {
		if s == m.sES {
			return flags
		}
	}
	for d := range 2 {
		if m.p.Cell(Dir(d), m.cAck, m.sES) != uint8(m.sES) {
			return flags
		}
	}
	for f := range flags {
		class, valid := m.p.Classify(Flags(f))
		flags[f] = valid && class == m.cAck && Flags(f)&(spec.SYN|spec.FIN|spec.RST|spec.ACK) == spec.ACK
	}
	return flags
}

// StepInto is Step writing the verdict to *v: the form for a packet
// path. A Verdict returned by value is copied (into the caller's frame,
// then wherever it goes) right after its fields were written one by one,
// and such a copy reads memory that the CPU cannot forward from the
// pending small stores: on x86 that stall cost more than the step itself
// (bench/, Established).
//
// Its body is the fast path: an ACK (its flags in m.fastFlags) of the
// live, unexpired ESTABLISHED connection c, well-formed and with no bad
// checksum to report, that tcp_in_window accepts without any of its
// special cases. Every other packet goes to the general path, step,
// before anything is written. (The fast path is written here, not in a
// function of its own, to spare a call and its frame per packet.)
func (m *Machine) StepInto(v *Verdict, c *Conn, seg *Segment, dir Dir, now int64) {
	if !m.fastFlags[seg.Flags] || c.State != m.sES || c.Status&Confirmed == 0 || now-c.Deadline >= 0 ||
		dir > Reply || seg.Malformed != ReasonNone || (seg.BadChecksum && m.checksum) {
		m.step(v, c, seg, dir, now)
		return
	}
	// dir is Original or Reply: a swap of two pointers instead of two
	// indexed addresses.
	sender, receiver := &c.Seen[Original], &c.Seen[Reply]
	if dir != Original {
		sender, receiver = receiver, sender
	}
	if sender.MaxWin == 0 {
		// tcp_in_window picks the sender up from this packet.
		m.step(v, c, seg, dir, now)
		return
	}
	seq, ack := seg.Seq, seg.Ack
	sack := ack
	if seg.NumSack != 0 && receiver.Flags&FlagSackPerm != 0 {
		for _, e := range seg.SackEdges[:seg.NumSack&7] {
			if after(e, sack) {
				sack = e
			}
		}
	}
	end := seg.Seq + seg.Len // no SYN, no FIN: segment_seq_plus_len
	// The four bounds of inWindow, in its order; a failure, liberal or
	// not, takes the general path.
	if !before(seq, sender.MaxEnd+1) ||
		!before(sack, receiver.End+1) ||
		(receiver.MaxWin != 0 && !after(end, sender.End-receiver.MaxWin-1)) ||
		!after(sack, receiver.End-maxAckWindow(sender)-1) {
		m.step(v, c, seg, dir, now)
		return
	}
	// inWindow's update for a segment without SYN, with ACK, of class
	// ACK. The retransmission count (its last part) first: it touches
	// neither peer, and seq dies early.
	if c.LastDir == dir && c.LastSeq == seq && c.LastAck == ack && c.LastEnd == end && c.LastWin == seg.Win {
		if c.Retrans < 255 {
			c.Retrans++
		}
	} else {
		c.LastSeq, c.LastAck, c.LastEnd, c.LastWin = seq, ack, end, seg.Win
		c.Retrans = 0
	}
	c.LastIndex, c.LastDir = m.cAck, dir // accepted's, early for the same reason
	win := uint32(seg.Win) << sender.Scale
	if swin := win + (sack - ack); sender.MaxWin < swin {
		sender.MaxWin = swin
	}
	if after(end, sender.End) {
		sender.End = end
		sender.Flags |= FlagDataUnacked
	}
	if sender.Flags&FlagMaxAckSet == 0 {
		sender.MaxAck = ack
		sender.Flags |= FlagMaxAckSet
	} else if after(ack, sender.MaxAck) {
		sender.MaxAck = ack
	}
	if receiver.MaxWin != 0 && after(end, sender.MaxEnd) {
		receiver.MaxWin += end - sender.MaxEnd
	}
	if after(sack+win, receiver.MaxEnd-1) {
		receiver.MaxEnd = sack + win
		if win == 0 {
			receiver.MaxEnd++
		}
	}
	if ack == receiver.End {
		receiver.Flags &^= FlagDataUnacked
	}

	// accepted for ESTABLISHED -> ESTABLISHED, an existing entry, no RST;
	// timeoutFor for class ack (not rst: fastFlagBytes checked it), with
	// LastWin now seg.Win.
	timeout := m.esTimeout
	if m.caps {
		switch {
		case c.Retrans >= m.maxRetrans && timeout > m.retransTimeout:
			timeout = m.retransTimeout
		case (c.Seen[0].Flags|c.Seen[1].Flags)&FlagDataUnacked != 0 && timeout > m.unackTimeout:
			timeout = m.unackTimeout
		case seg.Win == 0 && timeout > m.retransTimeout:
			timeout = m.retransTimeout
		}
	}
	status := c.Status
	if status&SeenReply == 0 {
		// A picked-up connection without reply.
		timeout = min(timeout, m.unackTimeout)
	} else {
		status |= Assured
	}
	if dir == Reply {
		// accept. Without SEEN_REPLY, only a pickup whose reply side
		// lost BE_LIBERAL (a ctnetlink update) gets here, after an
		// INVALID reply set that side's window; otherwise the first
		// reply finds the window unknown and takes the general path
		// (TestFastPathReplyBeforeSeenReply).
		status |= SeenReply
	}
	c.Status = status
	c.Deadline = now + timeout
	// The verdict but for its timeout was written long before: ctOf is
	// ESTABLISHED for a reply or once a reply was seen, which is now
	// whether SEEN_REPLY is set.
	*v = m.fastVerdict[(status&SeenReply)/SeenReply][dir&1]
	v.Timeout = timeout
}

// fastVerdicts are the fast path's verdicts but for the timeout, by
// SEEN_REPLY after the packet and by direction: a copy of 32 bytes
// written long before costs less than eleven fields written one by one.
func (m *Machine) fastVerdicts() (vs [2][2]Verdict) {
	for seen := range vs {
		for d := range vs[seen] {
			ct := CTNew
			if seen == 1 {
				ct = CTEstablished
			}
			vs[seen][d] = Verdict{
				CT: ct, Dir: Dir(d), Class: m.cAck,
				Old: m.sES, New: m.sES, Cell: uint8(m.sES),
				Action: Update, Refreshed: true, Accounted: true,
			}
		}
	}
	return vs
}
