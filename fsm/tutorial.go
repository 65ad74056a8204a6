package fsm

import "github.com/fdac824a/tcpct/spec"

// stepTable runs a packet through a profile without window tracking: the
// 2.4-era tracker of the Iptables Tutorial (ip_conntrack_proto_tcp.c of
// Linux 2.4.0, tcp_new() and tcp_packet()). Every valid cell moves the
// state and refreshes the timer with the new state's timeout; the only
// sequence number it looks at is the ACK that completes the handshake.
func (m *Machine) stepTable(c *Conn, seg *Segment, dir Dir, class Class, now int64, v *Verdict) {
	created := false
	var fresh Conn
	work := c
	if !c.Live() {
		if _, ok := m.mayCreate(c, class, v); !ok {
			return
		}
		fresh = Conn{Status: Confirmed, State: m.p.Initial}
		work, created = &fresh, true
	}
	old := work.State
	cell := m.p.Cell(dir, class, old)
	v.Cell = cell
	if cell >= spec.OutInvalid {
		// 2.4 has no IGNORE; a custom spec's sIG is treated as invalid.
		m.invalid(v, ReasonInvalidTransition)
		return
	}
	ct := ctOf(work, dir)
	next := State(cell)
	work.State = next
	v.Old = old
	if old == m.sSS && dir == Reply && seg.Flags&(spec.SYN|spec.ACK) == spec.SYN|spec.ACK {
		// "Poor man's window tracking": remember the ACK that will
		// complete the handshake.
		work.HandshakeAck = seg.Seq + 1
	}
	if !work.SeenReply() && seg.Flags&spec.RST != 0 {
		v.CT, v.New = ct, next
		v.Action = Delete
		if created {
			v.Action = None
		}
		*c = Conn{}
		return
	}
	if old == m.sSR && dir == Original && seg.Flags&spec.ACK != 0 && seg.Flags&spec.SYN == 0 &&
		(!m.assuredAfterReply && seg.Ack == work.HandshakeAck) {
		work.Status |= Assured
	}
	timeout := m.timeout[next]
	work.Deadline = now + timeout
	v.Refreshed, v.Timeout, v.Accounted = true, timeout, true
	v.Action = Update
	if created {
		v.Action = Create
	}
	*c = *work
	accept(c, dir, ct, v)
}
