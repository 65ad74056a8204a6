package fsm

import "github.com/fdac824a/tcpct/spec"

// State is a connection's TCP conntrack state: an index into the profile's
// state list (its table columns).
type State uint8

// Class is a packet's class (its table row), derived from the TCP flags.
type Class uint8

// Dir is a packet's direction relative to the connection's first packet.
type Dir = spec.Dir

// Directions.
const (
	Original = spec.Original
	Reply    = spec.Reply
)

// Flags are TCP header flags, in header bit order.
type Flags = spec.Flags

// CT is the conntrack state of a packet, as a firewall rule matches it
// (ct state / --ctstate).
type CT uint8

const (
	// CTNone, the zero CT, is no conntrack state at all: the verdict
	// of a packet the tracker did not see (a Track that failed, the zero
	// Verdict). It is never NEW, so code that ignores an error does not
	// count a UDP packet as a new connection.
	CTNone CT = iota
	CTNew
	CTEstablished
	CTRelated
	CTInvalid
	CTUntracked
)

var ctNames = [...]string{"none", "NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}

func (c CT) String() string {
	if int(c) < len(ctNames) {
		return ctNames[c]
	}
	return "CT(?)"
}

// Action says what the caller must do with the connection's entry.
type Action uint8

const (
	// None: the entry, if any, is unchanged; nothing is created.
	None Action = iota
	// Create: insert the Conn as a new entry.
	Create
	// Update: store the Conn back (its deadline may or may not have moved;
	// see Verdict.Refreshed).
	Update
	// Delete: remove the entry (an RST before any reply).
	Delete
	// Recreate: remove the old entry and insert the Conn as a new one
	// whose original direction is this packet's direction (a reopen from
	// TIME_WAIT or CLOSE).
	Recreate
)

var actionNames = [...]string{"none", "create", "update", "delete", "recreate"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(?)"
}

// Status holds the connection-level bits the kernel keeps in ct->status.
type Status uint8

const (
	// Confirmed: the Conn is a live entry (the zero Conn is "no entry").
	Confirmed Status = 1 << iota
	// SeenReply: a reply-direction packet was accepted (not [UNREPLIED]).
	SeenReply
	// Assured: the connection proved itself ([ASSURED]); never cleared.
	Assured
)

// PeerFlags are the per-direction flags of ip_ct_tcp_state (uapi values).
type PeerFlags uint8

const (
	FlagWindowScale PeerFlags = 0x01
	FlagSackPerm    PeerFlags = 0x02
	FlagCloseInit   PeerFlags = 0x04 // this side sent the first FIN
	FlagBeLiberal   PeerFlags = 0x08 // no window checks for this sender
	FlagDataUnacked PeerFlags = 0x10 // data sent and not yet acknowledged
	FlagMaxAckSet   PeerFlags = 0x20 // MaxAck holds an ACK seen from this side
)

// Bits of Conn.LastFlags above the options an ignored SYN carried (those
// use the FlagWindowScale and FlagSackPerm values): the uapi
// nf_conntrack_tcp.h flags IP_CT_EXP_CHALLENGE_ACK and
// IP_CT_TCP_SIMULTANEOUS_OPEN (Linux 6.18). Checkers and models that
// reason about the transitions the spec table does not name read them.
const (
	// LastChallengeAck: a SYN was let through in LAST_ACK, so the other
	// side's next ACK may be an RFC 5961 challenge ACK, which must not
	// move the entry to TIME_WAIT.
	LastChallengeAck uint8 = 0x40
	// LastSimultaneous: the SYNs crossed (SYN_SENT2); a reply ACK in
	// SYN_RECV then completes the open.
	LastSimultaneous uint8 = 0x80
)

// Peer is what the tracker knows of one direction's sender (struct
// ip_ct_tcp_state): the sequence space it used and the window its peer
// offered.
type Peer struct {
	End    uint32 // highest seq+len sent (td_end)
	MaxEnd uint32 // highest ack+window the receiver allowed (td_maxend)
	MaxWin uint32 // largest window advertised (td_maxwin)
	MaxAck uint32 // highest ACK sent (td_maxack)
	Scale  uint8  // window scale shift (td_scale)
	Flags  PeerFlags
	_      [2]byte
}

// Conn is the tracker's whole state of one connection. It is a plain,
// pointer-free value so that a table can keep millions of them in an
// arena the garbage collector never scans. The zero Conn means "no entry".
type Conn struct {
	Seen         [2]Peer // indexed by Dir
	Deadline     int64   // expiry, in the clock's nanoseconds
	LastSeq      uint32
	LastAck      uint32
	LastEnd      uint32
	HandshakeAck uint32 // tutorial profile: the SYN/ACK's seq+1
	LastWin      uint16 // raw window of the last remembered packet
	State        State
	Status       Status
	LastIndex    Class // class of the last packet that passed (or was ignored)
	LastDir      Dir
	LastFlags    uint8 // options of an ignored SYN, plus the challenge/simultaneous bits
	LastWscale   uint8
	Retrans      uint8
	_            [7]byte
}

// Live reports whether the Conn is an entry (as opposed to the zero Conn).
func (c *Conn) Live() bool { return c.Status&Confirmed != 0 }

// Assured reports the [ASSURED] bit.
func (c *Conn) Assured() bool { return c.Status&Assured != 0 }

// SeenReply reports whether a reply was seen (not [UNREPLIED]).
func (c *Conn) SeenReply() bool { return c.Status&SeenReply != 0 }

// Verdict is the outcome of one packet.
type Verdict struct {
	CT     CT
	Dir    Dir
	Class  Class
	Old    State // state before the packet (the initial state for a new entry)
	New    State // state after the packet
	Cell   uint8 // raw table outcome: a state, spec.OutInvalid or spec.OutIgnore; CellNone if the table was not consulted
	Action Action
	// Refreshed is true when the deadline was set to Now+Timeout.
	Refreshed bool
	// Accounted is true when the packet counts in its entry's packets=
	// and bytes= (nf_conntrack_acct): the kernel counts a packet where it
	// refreshes the timer (nf_ct_refresh_acct) and an RST that kills an
	// unreplied entry (nf_ct_kill_acct), not INVALID or ignored packets
	// and not a SYN retransmitted before any reply, which keeps the timer.
	Accounted bool
	// Ignored is true for packets accepted without any state change
	// (sIG cells, window IGNORE results, challenge ACKs).
	Ignored bool
	// Expired is true when the entry found had passed its deadline and was
	// treated as absent: the caller destroys it (reason: expired).
	Expired bool
	// Timeout is the timeout chosen for the entry, in nanoseconds, when
	// Refreshed.
	Timeout int64
	Reason  Reason
}

// CellNone marks a verdict reached before the table was consulted.
const CellNone = 0xFD
