package tcpct

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// Verdict is what the tracker decided about one packet and the state of
// the packet's entry right after it. It is a plain value: keeping or
// copying it allocates nothing.
//
// The embedded fsm.Verdict holds the decision itself: CT (NEW,
// ESTABLISHED, INVALID), Dir, the packet Class, the Old and New TCP
// states, the raw spec Cell, the table Action, Ignored, Expired,
// Refreshed/Timeout and the Reason for INVALID or ignored packets.
type Verdict struct {
	fsm.Verdict

	// Key is the connection's original tuple (the packet's own tuple when
	// the packet matched no entry or started a new one).
	Key Key

	// Entry reports whether the connection has an entry right after the
	// packet; the fields below describe it and are zero otherwise. For an
	// INVALID packet of a known connection they describe that entry,
	// which the packet left alone.
	Entry     bool
	State     State
	Assured   bool
	SeenReply bool

	// Ref is the entry's handle in the tracker's table, set with Entry.
	// Ref.Index() is below Max and the same for every packet of the
	// connection, so per-connection data can live in a slice indexed by it
	// (the replay summary counts packets per connection that way);
	// Ref.Gen() tells successive connections in one slot apart.
	Ref table.Ref

	// Dropped: the packet would have created an entry but the table was
	// full and nothing could be early-dropped ("nf_conntrack: table full,
	// dropping packet"); the kernel drops such a packet.
	Dropped bool

	// ICMP is set (Family 4 or 6) for an ICMP or ICMPv6 packet: its type,
	// code and what the tracker made of it. CT is then RELATED (Dir is
	// the packet's direction in the entry it quotes, which it leaves
	// alone) or INVALID; Class is the profile's "none" class and Old and
	// New are the entry's state.
	ICMP ICMP

	now, deadline int64 // nanoseconds: Time and Deadline
	p             *fsm.Profile
}

// Profile returns the profile that decided the verdict.
func (v *Verdict) Profile() *fsm.Profile { return v.p }

// Time is the clock the packet was tracked at.
func (v *Verdict) Time() time.Time { return time.Unix(0, v.now) }

// Deadline is when the entry expires unless a packet refreshes it; the
// zero Time when there is no entry.
func (v *Verdict) Deadline() time.Time {
	if !v.Entry {
		return time.Time{}
	}
	return time.Unix(0, v.deadline)
}

// Src and Dst return the connection's original tuple.
func (v *Verdict) Src() netip.AddrPort { return netip.AddrPortFrom(v.Key.Src(), v.Key.SrcPort()) }

// Dst returns the destination of the connection's original tuple.
func (v *Verdict) Dst() netip.AddrPort { return netip.AddrPortFrom(v.Key.Dst(), v.Key.DstPort()) }

// StateName is the entry's TCP state as /proc spells it, or "" when there
// is no entry.
func (v *Verdict) StateName() string {
	if !v.Entry || v.p == nil {
		return ""
	}
	return v.p.StateName(v.State)
}

// OldName and NewName spell the fsm's old and new states.
func (v *Verdict) OldName() string { return v.name(v.Old) }

// NewName spells the state the fsm moved to (or would have, for a packet
// whose entry was deleted).
func (v *Verdict) NewName() string { return v.name(v.New) }

func (v *Verdict) name(s fsm.State) string {
	if v.p == nil {
		return ""
	}
	return v.p.StateName(s)
}

// ClassName is the packet's class (syn, synack, fin, ack, rst, none).
func (v *Verdict) ClassName() string {
	if v.p == nil {
		return ""
	}
	return v.p.ClassName(v.Class)
}

// CellName is the spec cell's outcome: a state, "INVALID", "IGNORE", or
// "-" when the packet was decided before the table was consulted.
func (v *Verdict) CellName() string {
	if v.p == nil {
		return "-"
	}
	return v.p.OutcomeName(v.Cell)
}

// Doc returns the rationale of the spec cell that decided the packet —
// the RFC sections and the sentence from the spec's why lines — and false
// when no cell was consulted (a malformed packet or bad flags).
func (v *Verdict) Doc() (fsm.Doc, bool) {
	if v.p == nil || v.Cell == fsm.CellNone {
		return fsm.Doc{}, false
	}
	return v.p.CellDoc(v.Dir, v.Class, v.Old), true
}

// SecondsLeft is the entry's remaining time in whole seconds, counted in
// jiffies and truncated as /proc/net/nf_conntrack prints it
// (table.SecondsLeft); -1 when there is no entry.
func (v *Verdict) SecondsLeft() int64 {
	if !v.Entry {
		return -1
	}
	return table.SecondsLeft(v.deadline, v.now)
}

// ReasonText says why the packet is INVALID, was ignored, or was
// dropped, or for an ICMP error which error it is; "" otherwise.
func (v *Verdict) ReasonText() string {
	if v.Dropped {
		return "table full, dropping packet"
	}
	if v.ICMP.Family != 0 {
		return v.ICMP.Text()
	}
	return v.Reason.String()
}

// String renders the verdict on one line, for logs and tests.
func (v *Verdict) String() string {
	b := make([]byte, 0, 128)
	b = append(b, v.CT.String()...)
	if v.CT != fsm.CTInvalid {
		b = append(b, ' ')
		b = append(b, v.Dir.String()...)
	}
	b = append(b, ' ')
	b = append(b, v.ClassName()...)
	b = append(b, ' ')
	b = append(b, v.OldName()...)
	b = append(b, "->"...)
	if v.Entry {
		b = append(b, v.StateName()...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, v.SecondsLeft(), 10)
		b = append(b, 's')
	} else {
		b = append(b, "(no entry)"...)
	}
	if v.Assured {
		b = append(b, " [ASSURED]"...)
	}
	if r := v.ReasonText(); r != "" {
		b = append(b, " ("...)
		b = append(b, r...)
		b = append(b, ')')
	}
	return string(b)
}

// Entry is one connection of the table, as a dump shows it.
type Entry struct {
	// Key is the original tuple.
	Key table.Key
	// Conn is the tracker's whole state of the connection; Conn.State,
	// Conn.Deadline, Conn.Assured() and Conn.SeenReply() are what /proc
	// prints.
	Conn fsm.Conn
	// Ref is the entry's handle in the tracker's table, as Verdict.Ref:
	// an entry and a verdict with equal Refs are the same connection, even
	// when its tuple was reused by a later one.
	Ref table.Ref
	// Counters are the entry's packets and bytes per direction, when the
	// acct knob is on (nf_conntrack_acct); the dumps print them then.
	Counters table.Counters
	acct     bool

	p *fsm.Profile
}

// Src returns the source of the original tuple.
func (e *Entry) Src() netip.AddrPort { return netip.AddrPortFrom(e.Key.Src(), e.Key.SrcPort()) }

// Dst returns the destination of the original tuple.
func (e *Entry) Dst() netip.AddrPort { return netip.AddrPortFrom(e.Key.Dst(), e.Key.DstPort()) }

// StateName is the entry's TCP state as /proc spells it; "" for the zero
// Entry (one no tracker filled in, as a Lookup miss returns).
func (e *Entry) StateName() string {
	if e.p == nil {
		return ""
	}
	return e.p.StateName(e.Conn.State)
}

// Deadline is when the entry expires unless a packet refreshes it.
func (e *Entry) Deadline() time.Time {
	if e.p == nil {
		return time.Time{}
	}
	return time.Unix(0, e.Conn.Deadline)
}

// render returns the entry in the form the table package prints, as of
// time now (nanoseconds): the seconds left are counted like the kernel's
// (table.SecondsLeft).
func (e *Entry) render(now int64) table.Entry {
	var f table.Flags
	if e.Conn.Assured() {
		f |= table.Assured
	}
	if e.Conn.SeenReply() {
		f |= table.SeenReply
	}
	return table.Entry{Key: e.Key, State: e.StateName(), Timeout: table.SecondsLeft(e.Conn.Deadline, now), Flags: f,
		Acct: e.acct, Counters: e.Counters}
}

// AppendProc appends the entry's /proc line at time now, in its
// profile's dialect: /proc/net/nf_conntrack, or Linux 2.4's
// /proc/net/ip_conntrack for a profile with the proc-ip_conntrack feature
// (the tutorial's). The Append methods append nothing for the zero Entry.
func (e *Entry) AppendProc(b []byte, now time.Time) []byte {
	if e.p == nil {
		return b
	}
	r := e.render(now.UnixNano())
	if e.p.ProcIPConntrack() {
		return table.AppendProc24(b, &r)
	}
	return table.AppendProc(b, &r)
}

// AppendConntrack appends the entry's `conntrack -L` line at time now.
func (e *Entry) AppendConntrack(b []byte, now time.Time) []byte {
	if e.p == nil {
		return b
	}
	r := e.render(now.UnixNano())
	return table.AppendConntrack(b, &r)
}
