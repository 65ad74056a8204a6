package fsm

import "github.com/fdac824a/tcpct/spec"

// The fast path: most packets a tracker sees are ACKs of an ESTABLISHED
// connection that tcp_in_window accepts. For those the general path
// (linuxPacket) looks the cell up, runs through the special cases of
// nf_conntrack_tcp_packet that cannot apply, and tcp_in_window tests the
// SYN, RST and pick-up cases before the four window bounds. establishedAck
// checks in a few comparisons that none of that applies and that the four
// bounds hold, and then writes the result through the same code as the
// general path (windowUpdate, accepted). Whenever a condition fails it
// returns false having written nothing, and the general path runs.
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
	sender, receiver := &c.Seen[dir], &c.Seen[1-dir]
	if sender.MaxWin == 0 {
		return false // tcp_in_window picks the sender up from this packet
	}
	seq, ack := seg.Seq, seg.Ack
	sack := ack
	if receiver.Flags&FlagSackPerm != 0 {
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
	m.windowUpdate(c, sender, receiver, seg, dir, m.cAck, false, true, seq, ack, sack, end, uint32(seg.Win))
	m.accepted(c, c, false, seg, dir, m.cAck, m.sES, m.sES, ct, now, v)
	return true
}
