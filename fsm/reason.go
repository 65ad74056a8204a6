package fsm

// Reason says why a packet is INVALID or was ignored. The wording follows
// the kernel's nf_ct_l4proto_log_invalid() messages so that a user can
// match tcpct's output with what nf_conntrack_log_invalid prints.
type Reason uint8

const (
	ReasonNone Reason = iota
	ReasonTruncated
	ReasonBadFlags
	ReasonInvalidNew
	ReasonLooseOff
	ReasonInvalidTransition
	ReasonIgnoredTransition
	ReasonInvalidRST
	ReasonSeqOverUpper
	ReasonAckOverUpper
	ReasonSeqUnderLower
	ReasonAckUnderLower
	ReasonOvershoot
	ReasonChallengeAck
	ReasonLoweredToUnack
	ReasonReplyWithoutEntry
	ReasonNotCaptured
	ReasonBadChecksum
	numReasons
)

var reasonText = [numReasons]string{
	ReasonNone:              "",
	ReasonTruncated:         "truncated packet",
	ReasonBadFlags:          "invalid tcp flag combination",
	ReasonInvalidNew:        "invalid new",
	ReasonLooseOff:          "invalid new: not a SYN and tcp_loose is 0",
	ReasonInvalidTransition: "invalid state transition",
	ReasonIgnoredTransition: "ignored state transition",
	ReasonInvalidRST:        "invalid rst",
	ReasonSeqOverUpper:      "SEQ is over upper bound (over the window of the receiver)",
	ReasonAckOverUpper:      "ACK is over upper bound (ACKed data not seen yet)",
	ReasonSeqUnderLower:     "SEQ is under lower bound (already ACKed data retransmitted)",
	ReasonAckUnderLower:     "ignored ACK under lower bound (possible overly delayed)",
	ReasonOvershoot:         "bytes more than expected",
	ReasonChallengeAck:      "challenge-ack ignored",
	ReasonLoweredToUnack:    "SEQ or ACK out of window; lowered timeout to UNACK",
	ReasonReplyWithoutEntry: "reply-direction packet without an entry",
	// Not a kernel decision: the capture's snap length cut the TCP header,
	// so its options (window scale, SACK) are unknown to the tracker.
	ReasonNotCaptured: "TCP header cut short by the capture (snap length)",
	// tcp_error with nf_conntrack_checksum on (the checksum knob).
	ReasonBadChecksum: "bad checksum",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonText[r]
	}
	return "reason(?)"
}
