// Package bench holds what the main module must not depend on: an adapter
// of gVisor's TCP connection tracker (gvisor.dev/gvisor/pkg/tcpip/transport/tcpconntrack)
// to the tcpcttest conformance kit, the test that measures gVisor against
// Linux with it, and the step benchmarks that put tcpct's fsm next to
// gVisor's TCB on the same segments. It is a separate module so that
// importing tcpct never pulls in gVisor.
package bench

import (
	"net/netip"
	"time"

	"github.com/fdac824a/tcpct/tcpcttest"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcpconntrack"
)

// gVisor's connection timeouts (pkg/tcpip/stack/conntrack.go): an entry
// whose TCB is ResultAlive lives 5 days after its last packet, every other
// entry (connecting, reset, closed) 120 s.
const (
	gvisorEstablishedTimeout   = 5 * 24 * time.Hour
	gvisorUnestablishedTimeout = 120 * time.Second
)

// GVisor adapts gVisor's tcpconntrack.TCB to tcpcttest.Tracker. The TCB
// tracks one connection and has no table, so the adapter supplies the
// table the way gVisor's own netstack does (pkg/tcpip/stack/conntrack.go):
//
//   - An entry is created by the first packet of a 4-tuple whatever its
//     flags, and TCB.Init is called with that packet as if it were the SYN
//     (gVisor has no separate pickup rule). Later packets matching the
//     original tuple go to UpdateStateOriginal, those matching the reversed
//     tuple to UpdateStateReply.
//   - An entry expires 5 days after its last packet while the TCB is
//     ResultAlive, 120 s otherwise; an expired entry is replaced by a new one
//     on the next packet. There is no reopen: a SYN on a reset or closed
//     connection's tuple goes to the old TCB until the entry expires.
//   - Packets whose TCP header is shorter than 20 bytes or whose data offset
//     is out of range are not tracked (header.TCPValid); they count as
//     INVALID. Checksums are not checked (the traces are correct, and the
//     kernel runner's loopback skips them too).
//
// Mapping of gVisor's results to conntrack terms, after the packet:
//
//	TCB state                  ct (as netstack's nftables ct sees it)   /proc state
//	ResultConnecting           NEW (either direction)                   SYN_SENT
//	ResultAlive                ESTABLISHED                              ESTABLISHED
//	ResultReset                ESTABLISHED                              CLOSE
//	ResultClosedByOriginator   ESTABLISHED                              TIME_WAIT
//	ResultClosedByResponder    ESTABLISHED                              TIME_WAIT
//
// Timeout is the entry's remaining time (432000 s or 120 s, as the last
// packet just refreshed it); SeenReply is netstack's replySeen (set by any
// packet matching the reply tuple). gVisor has no ASSURED bit, so the
// adapter declares it does not report it. The TCB keeps no state between
// SYN_SENT and ESTABLISHED (no SYN_RECV, FIN_WAIT, CLOSE_WAIT, LAST_ACK):
// those Linux states are disagreements by construction.
//
// gVisor's netstack never marks a TCP packet INVALID: the TCB's ResultDrop
// (an original-direction packet in SYN-SENT that is not a retransmitted
// SYN) is discarded by the stack, and out-of-window segments are ignored
// (ResultAlive, no state change). With DropIsInvalid set, the adapter
// reports ResultDrop as INVALID instead: what the TCB itself says, as a
// tracker built on the TCB alone would see it.
type GVisor struct {
	DropIsInvalid bool
	// ICMP asks the kit for ICMP errors too (tcpcttest.ICMPErrors); see
	// trackICMP for what gVisor does with them.
	ICMP bool

	conns map[[2]netip.AddrPort]*gconn
}

type gconn struct {
	tcb       tcpconntrack.TCB
	orig      [2]netip.AddrPort
	lastUsed  time.Time
	replySeen bool
}

// NewGVisor returns an adapter with an empty table.
func NewGVisor(dropIsInvalid bool) *GVisor {
	return &GVisor{DropIsInvalid: dropIsInvalid, conns: map[[2]netip.AddrPort]*gconn{}}
}

// Capabilities: everything but ASSURED, which gVisor does not model;
// ICMP errors when ICMP is set.
func (g *GVisor) Capabilities() tcpcttest.Field {
	f := tcpcttest.AllFields &^ tcpcttest.FieldAssured
	if g.ICMP {
		f |= tcpcttest.ICMPErrors
	}
	return f
}

func (c *gconn) timeout() time.Duration {
	if c.tcb.State() == tcpconntrack.ResultAlive {
		return gvisorEstablishedTimeout
	}
	return gvisorUnestablishedTimeout
}

// Track runs one packet through the table and the connection's TCB.
func (g *GVisor) Track(p *tcpcttest.Packet) tcpcttest.Result {
	if p.ICMP {
		return g.trackICMP(p)
	}
	tcp := header.TCP(p.TCP)
	if len(tcp) < header.TCPMinimumSize {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	if off := int(tcp.DataOffset()); off < header.TCPMinimumSize || off > len(tcp) {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	fwd, rev := [2]netip.AddrPort{p.Src, p.Dst}, [2]netip.AddrPort{p.Dst, p.Src}
	// Both tuples index the entry; the one it was created with is the
	// original direction.
	c := g.conns[fwd]
	reply := c != nil && c.orig != fwd
	if c != nil && p.Time.Sub(c.lastUsed) > c.timeout() {
		delete(g.conns, c.orig)
		delete(g.conns, [2]netip.AddrPort{c.orig[1], c.orig[0]})
		c, reply = nil, false
	}
	var res tcpconntrack.Result
	if c == nil {
		c = &gconn{orig: fwd}
		g.conns[fwd], g.conns[rev] = c, c
		c.lastUsed = p.Time
		res = c.tcb.Init(tcp, p.PayloadLen)
	} else {
		c.lastUsed = p.Time
		if reply {
			c.replySeen = true
			res = c.tcb.UpdateStateReply(tcp, p.PayloadLen)
		} else {
			res = c.tcb.UpdateStateOriginal(tcp, p.PayloadLen)
		}
	}
	r := c.result(reply)
	if g.DropIsInvalid && res == tcpconntrack.ResultDrop {
		r.CT, r.Dir = tcpcttest.Invalid, ""
	}
	return r
}

// trackICMP does with an ICMP error what gVisor's netstack conntrack does
// (pkg/tcpip/stack/conntrack.go, getTupleID and getConnAndUpdate, at the
// version in go.mod):
//
//   - Only ICMPv4 destination unreachable, time exceeded and parameter
//     problem (not source quench or redirect), and ICMPv6 types 1 to 4,
//     are looked at; any other type is not tracked.
//   - The quoted IPv4 header must be exactly 20 bytes (no options; gVisor
//     issue 6765), the quoted IPv6 header must be followed directly by
//     the transport header (no extension headers; issue 6789), and the
//     quoted TCP header must be whole: 20 bytes, where Linux needs the 4
//     bytes of the ports, so the IP header and 8 bytes that RFC 792 asks
//     for are not enough. The fragment offset and the error's destination
//     are not checked, nor is the ICMP checksum by conntrack.
//   - The quoted tuple, inverted, is looked up; an error never creates an
//     entry. Found, the error is attached to the connection and refreshes
//     it like any packet (lastUsed; replySeen when it matched the reply
//     tuple), where Linux leaves the timer alone.
//   - gVisor has no RELATED state: the packet gets the connection's
//     ct state (NEW while connecting, else ESTABLISHED) in the matched
//     direction. An error it does not track is reported INVALID.
func (g *GVisor) trackICMP(p *tcpcttest.Packet) tcpcttest.Result {
	invalid := tcpcttest.Result{CT: tcpcttest.Invalid}
	ip := p.IP
	var q []byte
	v6 := len(ip) > 0 && ip[0]>>4 == 6
	if v6 {
		if len(ip) < header.IPv6MinimumSize+header.ICMPv6MinimumSize {
			return invalid
		}
		switch header.ICMPv6Type(ip[40]) {
		case header.ICMPv6DstUnreachable, header.ICMPv6PacketTooBig, header.ICMPv6TimeExceeded, header.ICMPv6ParamProblem:
		default:
			return invalid
		}
		q = ip[40+header.ICMPv6MinimumSize:]
		if len(q) < header.IPv6MinimumSize+header.TCPMinimumSize || q[6] != uint8(header.TCPProtocolNumber) {
			return invalid
		}
	} else {
		if len(ip) < 20 {
			return invalid
		}
		ihl := int(ip[0]&15) * 4
		if len(ip) < ihl+header.ICMPv4MinimumSize {
			return invalid
		}
		switch header.ICMPv4Type(ip[ihl]) {
		case header.ICMPv4DstUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		default:
			return invalid
		}
		q = ip[ihl+header.ICMPv4MinimumSize:]
		if len(q) < header.IPv4MinimumSize || int(q[0]&15)*4 != header.IPv4MinimumSize ||
			len(q) < header.IPv4MinimumSize+header.TCPMinimumSize || q[9] != uint8(header.TCPProtocolNumber) {
			return invalid
		}
	}
	var src, dst netip.Addr
	l4 := header.IPv4MinimumSize
	if v6 {
		src, dst, l4 = netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40])), header.IPv6MinimumSize
	} else {
		src, dst = netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
	}
	tcp := header.TCP(q[l4:])
	inv := [2]netip.AddrPort{netip.AddrPortFrom(dst, tcp.DestinationPort()), netip.AddrPortFrom(src, tcp.SourcePort())}
	c := g.conns[inv]
	if c == nil || p.Time.Sub(c.lastUsed) > c.timeout() {
		return invalid
	}
	reply := c.orig != inv
	c.lastUsed = p.Time
	if reply {
		c.replySeen = true
	}
	return c.result(reply)
}

// result is the verdict on a packet of c (in the reply direction if
// reply), from the TCB's state after it: gVisor has no conntrack states of
// its own, so its four results are named by the Linux states they stand
// for.
func (c *gconn) result(reply bool) tcpcttest.Result {
	r := tcpcttest.Result{Dir: tcpcttest.Original, SeenReply: c.replySeen,
		Timeout: int64(c.timeout() / time.Second)}
	if reply {
		r.Dir = tcpcttest.Reply
	}
	switch c.tcb.State() {
	case tcpconntrack.ResultConnecting:
		r.CT, r.State = tcpcttest.New, "SYN_SENT"
	case tcpconntrack.ResultAlive:
		r.CT, r.State = tcpcttest.Established, "ESTABLISHED"
	case tcpconntrack.ResultReset:
		r.CT, r.State = tcpcttest.Established, "CLOSE"
	default: // ResultClosedByOriginator, ResultClosedByResponder
		r.CT, r.State = tcpcttest.Established, "TIME_WAIT"
	}
	return r
}
