package fsm

import "github.com/fdac824a/tcpct/spec"

// The fast path: most packets a tracker sees are ACKs of an ESTABLISHED
// connection that tcp_in_window accepts. For those the general path
// (linuxPacket) looks the cell up, runs through the special cases of
// nf_conntrack_tcp_packet that cannot apply, and tcp_in_window tests the
// SYN, RST and pick-up cases before the four window bounds. establishedAck
// checks in a few comparisons that none of that applies and that the four
// bounds hold, and then writes what the general path's windowUpdate and
// accepted write in that case, with the branches that cannot apply taken
// out. Whenever a condition fails it returns false having written
// nothing, and the general path runs.
//
// TestFastPathIsTheGeneralPath (fast_test.go) runs the recorded kernel
// traces and generated ones through a machine with the fast path and one
// without, and requires the same verdict and the same entry after every
// packet.

// fastAckCells notes, per direction, whether the profile keeps an
// ESTABLISHED connection ESTABLISHED on an ACK, with none of the special
// states of linuxPacket involved: then only tcp_in_window decides.
func (m *Machine) fastAckCells() [2]bool {
	var ok [2]bool
	if !m.windows {
		return ok
	}
	for _, s := range []State{m.sSS, m.sSR, m.sTW, m.sS2, m.sCL} {
		if s == m.sES {
			return ok
		}
	}
	for d := range ok {
		ok[d] = m.p.Cell(Dir(d), m.cAck, m.sES) == uint8(m.sES)
	}
	return ok
}

// establishedAck is linuxPacket for an ACK (class) of the live,
// unexpired ESTABLISHED connection c, if tcp_in_window accepts it
// without any of its special cases; it reports whether it handled the
// packet. v holds what Step filled before the class was known.
func (m *Machine) establishedAck(c *Conn, seg *Segment, dir Dir, now int64, v *Verdict) bool {
	if seg.Flags&(spec.SYN|spec.FIN|spec.RST|spec.ACK) != spec.ACK {
		return false
	}
	d := dir & 1 // Original or Reply; the mask spares two bounds checks
	sender, receiver := &c.Seen[d], &c.Seen[d^1]
	if sender.MaxWin == 0 {
		return false // tcp_in_window picks the sender up from this packet
	}
	seq, ack := seg.Seq, seg.Ack
	sack := ack
	if seg.NumSack != 0 && receiver.Flags&FlagSackPerm != 0 {
		for _, e := range seg.SackEdges[:seg.NumSack] {
			if after(e, sack) {
				sack = e
			}
		}
	}
	end := seg.End()
	// The four bounds of inWindow, in its order; a failure, liberal or
	// not, takes the general path.
	if !before(seq, sender.MaxEnd+1) ||
		!before(sack, receiver.End+1) ||
		(receiver.MaxWin != 0 && !after(end, sender.End-receiver.MaxWin-1)) ||
		!after(sack, receiver.End-maxAckWindow(sender)-1) {
		return false
	}
	ct := ctOf(c, dir)
	v.Cell = uint8(m.sES)

	// windowUpdate for a segment without SYN, with ACK, of class ACK.
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
	if c.LastDir == dir && c.LastSeq == seq && c.LastAck == ack && c.LastEnd == end && c.LastWin == seg.Win {
		if c.Retrans < 255 {
			c.Retrans++
		}
	} else {
		c.LastDir, c.LastSeq, c.LastAck, c.LastEnd, c.LastWin = dir, seq, ack, end, seg.Win
		c.Retrans = 0
	}

	// accepted for ESTABLISHED -> ESTABLISHED, an existing entry, no RST.
	c.LastIndex, c.LastDir = m.cAck, dir
	timeout := m.timeoutFor(c, m.sES, m.cAck)
	v.Old = m.sES
	v.Action = Update
	if !c.SeenReply() {
		// A picked-up connection without reply.
		timeout = min(timeout, m.unackTimeout)
	} else {
		c.Status |= Assured
	}
	c.Deadline = now + timeout
	v.Refreshed, v.Timeout, v.Accounted = true, timeout, true
	accept(c, dir, ct, v)
	return true
}
