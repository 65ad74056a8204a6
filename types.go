package tcpct

import (
	"net/netip"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// The types a user of the tracker meets, under one name each. They are
// the types of the layers below (fsm, table), so values pass between the
// packages without conversion, but the common jobs need no other import.
type (
	// Key is a connection's tuple: family, addresses and ports. The
	// zero Key is no tuple.
	Key = table.Key
	// Dir is the direction of a packet in its connection: Original (the
	// direction of the first packet) or Reply.
	Dir = fsm.Dir
	// CT is the conntrack state a firewall rule matches (ct state):
	// CTNew, CTEstablished, CTRelated, CTInvalid; the zero CT, CTNone, is
	// the verdict of a packet that was not tracked.
	CT = fsm.CT
	// State is a TCP conntrack state (SYN_SENT, ESTABLISHED, ...), an
	// index into the profile's state names (Verdict.StateName spells it).
	State = fsm.State
	// Segment is a parsed TCP header (ParseSegment, SegmentOf).
	Segment = fsm.Segment
	// Reason says why a packet is INVALID or was ignored.
	Reason = fsm.Reason
	// EventType is the kind of an Event: EventNew, EventUpdate,
	// EventDestroy.
	EventType = table.EventType
	// DestroyReason says why an entry went away: DestroyExpired,
	// DestroyKilled (an RST, a reopen), DestroyEvicted (early drop).
	DestroyReason = table.Reason
	// Counters are an entry's packets and bytes per direction (the acct
	// knob).
	Counters = table.Counters
	// Stats of the table, as /proc/net/stat/nf_conntrack counts them.
	TableStats = table.Stats
)

// Directions.
const (
	Original = fsm.Original
	Reply    = fsm.Reply
)

// Conntrack states of a packet.
const (
	CTNone        = fsm.CTNone
	CTNew         = fsm.CTNew
	CTEstablished = fsm.CTEstablished
	CTRelated     = fsm.CTRelated
	CTInvalid     = fsm.CTInvalid
)

// Event types.
const (
	EventNew     = table.EventNew
	EventUpdate  = table.EventUpdate
	EventDestroy = table.EventDestroy
)

// Why an entry went away (Event.Reason).
const (
	DestroyExpired = table.ReasonExpired
	DestroyKilled  = table.ReasonKilled
	DestroyEvicted = table.ReasonEvicted
)

// KeyOf is the tuple of a packet sent from src to dst. src and dst should
// be of one family; an IPv4-mapped IPv6 address counts as IPv4.
func KeyOf(src, dst netip.AddrPort) Key { return table.KeyFromAddrPorts(src, dst) }

// ParseSegment parses a TCP header: tcp holds the bytes from the TCP
// header on, l4len is the TCP length the IP header announces (header and
// payload), which may exceed len(tcp) when a capture cut the packet
// short. A header the kernel would call truncated yields a Segment whose
// Malformed reason is set: tracking it gives INVALID.
func ParseSegment(tcp []byte, l4len int) Segment { return fsm.ParseSegment(tcp, l4len) }

// Packet is one TCP packet for TrackBatch: the tuple it was sent on, its
// parsed header, and when it was seen. PacketOf makes one from a decoded
// capture record.
type Packet struct {
	Key     Key
	Segment Segment
	Time    time.Time
	// ICMP, when its Family is set, makes the packet an ICMP error
	// (PacketOf makes such packets of the records IsICMP accepts): Key is
	// then the tuple the kernel looks up — the quoted segment's tuple
	// inverted, or none when the quote holds no ports — and Segment is
	// unused.
	ICMP ICMP
}

// PacketOf is the Packet of a decoded capture record of kind
// capture.KindTCP, or of an ICMP record the tracker judges (IsICMP; see
// Packet.ICMP): its tuple, its TCP header (SegmentOf) and its
// timestamp. A record whose TCP header is cut short but keeps its ports
// keeps its tuple too (tracking finds its entry and reports it, INVALID,
// as the kernel does); one cut before the ports is an INVALID "truncated
// packet" with no tuple.
func PacketOf(p *capture.Packet) Packet {
	var pk Packet
	pk.Set(p)
	return pk
}

// Set makes pk the Packet of a decoded capture record (PacketOf) in
// place: the form for a loop that fills a batch for TrackBatch, since a
// Packet returned by value is copied right after its fields were written
// one by one, which stalls the CPU (see fsm.Machine.StepInto).
func (pk *Packet) Set(p *capture.Packet) {
	pk.Time = time.Unix(0, p.Time)
	pk.ICMP = ICMP{}
	if p.Kind != capture.KindTCP && !p.HasPorts() {
		if k, i, ok := parseICMP(p); ok {
			pk.Key, pk.ICMP = k, i
			pk.Segment = Segment{}
			return
		}
		pk.Key = Key{}
		pk.Segment = Segment{Malformed: fsm.ReasonTruncated}
		return
	}
	setKey(&pk.Key, p.Src, p.Dst, p.SrcPort, p.DstPort)
	fsm.ParseSegmentInto(&pk.Segment, p.TCP, p.IPPayloadLen)
	pk.Segment.IPLen = uint32(p.IPLen)
}
