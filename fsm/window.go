package fsm

import "github.com/fdac824a/tcpct/spec"

type windowResult uint8

const (
	windowAccept windowResult = iota
	windowIgnore
	windowInvalid
)

// maxAckWindow is MAXACKWINDOW(sender): how far below the receiver's end
// an ACK may lag (a constant 66000, or the sender's largest window).
func maxAckWindow(p *Peer) uint32 { return max(p.MaxWin, 66000) }

// applyOptions is tcp_options(): a header with options resets the
// sender's scale and flags (but BE_LIBERAL) and records window scale and
// SACK-permitted.
func applyOptions(p *Peer, seg *Segment) {
	if !seg.HasOptions {
		return
	}
	p.Scale = 0
	p.Flags &= FlagBeLiberal
	if seg.SackPerm {
		p.Flags |= FlagSackPerm
	}
	if seg.HasWScale {
		p.Scale = seg.WScale
		p.Flags |= FlagWindowScale
	}
}

// initSender is tcp_init_sender(): a SYN/ACK, or a SYN of the reply side
// in a simultaneous open, starts the sender's sequence space. Window
// scaling is on only if both SYNs carried the option (RFC 7323 §2.2).
func initSender(sender, receiver *Peer, seg *Segment, end uint32, dir Dir) {
	sender.End, sender.MaxEnd = end, end
	sender.MaxWin = max(uint32(seg.Win), 1)
	applyOptions(sender, seg)
	if dir == Reply && !(sender.Flags&FlagWindowScale != 0 && receiver.Flags&FlagWindowScale != 0) {
		sender.Scale, receiver.Scale = 0, 0
	}
}

// inWindow is tcp_in_window(): the four bounds of Guido van Rooij's
// "Real Stateful TCP Packet Filtering in IP Filter", as the kernel
// relaxed them, and the per-direction state they maintain:
//
//	I.   seq <= sender.MaxEnd                     (else INVALID, or IGNORE for a small overshoot)
//	II.  seq + len >= sender.End - receiver.MaxWin (else IGNORE: old data)
//	III. sack <= receiver.End                     (else INVALID: ACK of unseen data)
//	IV.  sack >= receiver.End - MAXACKWINDOW       (else IGNORE: delayed ACK)
func (m *Machine) inWindow(c *Conn, seg *Segment, dir Dir, class Class) (windowResult, Reason) {
	sender, receiver := &c.Seen[dir], &c.Seen[1-dir]
	syn, hasAck := seg.Flags&spec.SYN != 0, seg.Flags&spec.ACK != 0
	seq, ack := seg.Seq, seg.Ack
	sack := ack
	win := uint32(seg.Win)
	end := seg.End()

	if receiver.Flags&FlagSackPerm != 0 {
		for _, e := range seg.SackEdges[:seg.NumSack] {
			if after(e, sack) {
				sack = e
			}
		}
	}

	if sender.MaxWin == 0 {
		if syn {
			initSender(sender, receiver, seg, end, dir)
			if !hasAck {
				return windowAccept, ReasonNone // simultaneous open
			}
		} else {
			// Mid-stream: the sender's history is lost; use this packet.
			sender.End = end
			swin := win << sender.Scale
			sender.MaxWin = max(swin, 1)
			sender.MaxEnd = end + sender.MaxWin
			if receiver.MaxWin == 0 {
				receiver.End, receiver.MaxEnd = sack, sack
			} else if sack == receiver.End+1 {
				receiver.End++ // likely the answer to a keep-alive
			}
		}
	} else if syn && after(end, sender.End) && (c.State == m.sSS || c.State == m.sSR) {
		// RFC 793: a reinitialised TCP uses larger sequence numbers;
		// restart this direction from the new SYN(/ACK).
		initSender(sender, receiver, seg, end, dir)
		if dir == Reply && !hasAck {
			return windowAccept, ReasonNone
		}
	}

	if !hasAck || (seg.Flags&spec.RST != 0 && ack == 0) {
		// No ACK (or a broken stack's RST|ACK with ack 0): pretend it
		// acknowledged everything seen.
		ack, sack = receiver.End, receiver.End
	}
	if seg.Flags&spec.RST != 0 && seq == 0 && c.State == m.sSS {
		seq, end = sender.End, sender.End // RST answering a SYN
	}

	if !before(seq, sender.MaxEnd+1) {
		overshot := end - sender.MaxEnd + 1
		ackOK := after(sack, receiver.End-maxAckWindow(sender)-1)
		inRecvWin := receiver.MaxWin != 0 && after(end, sender.End-receiver.MaxWin-1)
		if inRecvWin && ackOK && overshot <= receiver.MaxWin && before(sack, receiver.End+1) {
			// Some stacks send more than the window allows; if the
			// peer acknowledges it, later ACKs must not look bogus.
			sender.End = end
			sender.Flags |= FlagDataUnacked
			return m.windowFail(sender, windowIgnore, ReasonOvershoot)
		}
		return m.windowFail(sender, windowInvalid, ReasonSeqOverUpper)
	}
	if !before(sack, receiver.End+1) {
		return m.windowFail(sender, windowInvalid, ReasonAckOverUpper)
	}
	if receiver.MaxWin != 0 && !after(end, sender.End-receiver.MaxWin-1) {
		return m.windowFail(sender, windowIgnore, ReasonSeqUnderLower)
	}
	if !after(sack, receiver.End-maxAckWindow(sender)-1) {
		return m.windowFail(sender, windowIgnore, ReasonAckUnderLower)
	}

	// The bounds held: record what the accepted segment says about both
	// directions. (The ESTABLISHED fast path, in StepInto, writes what
	// this writes for an ACK; the fast-path differentials hold the two
	// equal. It is written here, not in a function of its own: a call
	// with fourteen arguments passes some on the stack.)
	if !syn {
		win <<= sender.Scale // RFC 7323 §2.3: SYNs are never scaled
	}
	if swin := win + (sack - ack); sender.MaxWin < swin {
		sender.MaxWin = swin
	}
	if after(end, sender.End) {
		sender.End = end
		sender.Flags |= FlagDataUnacked
	}
	if hasAck {
		if sender.Flags&FlagMaxAckSet == 0 {
			sender.MaxAck = ack
			sender.Flags |= FlagMaxAckSet
		} else if after(ack, sender.MaxAck) {
			sender.MaxAck = ack
		}
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
	if class == m.cAck {
		if c.LastDir == dir && c.LastSeq == seq && c.LastAck == ack && c.LastEnd == end && c.LastWin == seg.Win {
			if c.Retrans < 255 {
				c.Retrans++
			}
		} else {
			c.LastDir, c.LastSeq, c.LastAck, c.LastEnd, c.LastWin = dir, seq, ack, end, seg.Win
			c.Retrans = 0
		}
	}
	return windowAccept, ReasonNone
}

// windowFail is nf_tcp_store_invalid(): a liberal sender (tcp_be_liberal,
// or a picked-up connection) turns every window failure into acceptance.
func (m *Machine) windowFail(sender *Peer, res windowResult, r Reason) (windowResult, Reason) {
	if m.beLiberal || sender.Flags&FlagBeLiberal != 0 {
		return windowAccept, ReasonNone
	}
	return res, r
}
