package invariant

import (
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// Kind is a kind of segment an endpoint sends.
type Kind uint8

const (
	KSyn Kind = iota
	KSynAck
	KAck
	KData
	KFin
	KRst
	KRstAck
	KRaw // arbitrary flags (Conv.Segment's raw argument)
	NumKinds
)

var kindNames = [...]string{"SYN", "SYN/ACK", "ACK", "DATA", "FIN", "RST", "RST/ACK", "RAW"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// SeqMode says how a segment's sequence number relates to what its sender
// sent before: the small sequence domain of the bounded checks.
type SeqMode uint8

const (
	SeqExact    SeqMode = iota // the sender's next sequence number
	SeqInWindow                // ahead of it, inside the window
	SeqBelow                   // far below (already acknowledged data)
	SeqAbove                   // far above the receiver's window
	SeqZero                    // zero
	NumSeqModes
)

var modeNames = [...]string{"exact", "in-window", "below", "above", "zero"}

func (m SeqMode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode?"
}

// Conv is the two endpoints of one connection, simulated just enough to
// produce realistic segments: initial sequence numbers, the next sequence
// number each side sends, and the windows.
type Conv struct {
	ISN [2]uint32
	Nxt [2]uint32
	Win [2]uint16
}

// NewConv starts a conversation with the given initial sequence numbers.
func NewConv(isnOrig, isnReply uint32) *Conv {
	return &Conv{ISN: [2]uint32{isnOrig, isnReply}, Nxt: [2]uint32{isnOrig + 1, isnReply + 1}, Win: [2]uint16{64240, 65160}}
}

// Segment builds the next segment of kind from side dir; n is the payload
// length for KData and an offset for SeqInWindow; raw is the flag byte for
// KRaw. Only exact segments advance the sender's sequence number.
func (c *Conv) Segment(dir fsm.Dir, kind Kind, mode SeqMode, n uint32, raw spec.Flags) fsm.Segment {
	s := fsm.Segment{HdrLen: 20, Win: c.Win[dir]}
	s.Ack = c.Nxt[1-dir]
	switch kind {
	case KSyn:
		s.Flags = spec.SYN
		s.Ack = 0
	case KSynAck:
		s.Flags = spec.SYN | spec.ACK
	case KAck:
		s.Flags = spec.ACK
	case KData:
		s.Flags = spec.ACK | spec.PSH
		s.Len = n%1460 + 1
	case KFin:
		s.Flags = spec.FIN | spec.ACK
	case KRst:
		s.Flags = spec.RST
		s.Ack = 0
	case KRstAck:
		s.Flags = spec.RST | spec.ACK
	case KRaw:
		s.Flags = raw
	}
	seq := c.Nxt[dir]
	if s.Flags&spec.SYN != 0 {
		seq = c.ISN[dir]
	}
	switch mode {
	case SeqInWindow:
		seq += 1 + n%uint32(c.Win[1-dir]/2+1)
	case SeqBelow:
		seq -= 200000 + n
	case SeqAbove:
		seq += 1<<24 + n
	case SeqZero:
		seq = 0
	}
	s.Seq = seq
	if kind == KSyn || kind == KSynAck {
		s.HasOptions, s.HdrLen = true, 32
		s.HasWScale, s.WScale = true, 7
		s.SackPerm = true
	}
	if mode == SeqExact {
		c.Nxt[dir] = seq + s.Len
		if s.Flags&spec.SYN != 0 {
			c.Nxt[dir] = seq + 1
		}
		if s.Flags&spec.FIN != 0 {
			c.Nxt[dir]++
		}
	}
	return s
}
