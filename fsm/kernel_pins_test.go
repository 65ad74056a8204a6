package fsm

import "testing"

// Kernel behaviours that surprised us, pinned here so that a change to fsm
// that loses them fails without root. The first four were first seen in
// the kernel's own verdicts (internal/conformance/, tcpcttest/testdata), and each
// names the recorded packet that showed it; the last three are rules of
// nf_conntrack_proto_tcp.c that break the plain state table, which the
// recorded traces exercise (TestKernelTracesFollowSpec counts them) and
// the invariants had to be stated around (docs/invariants.md §2, §4).

// default.pcap.gz #630-#655: an INVALID SYN/ACK (its ACK acknowledges data
// never sent) still initialises the reply side's window (tcp_in_window
// runs tcp_init_sender before its checks), so the client's RST that
// follows is not INVALID but an overshoot, ignored: the entry survives in
// SYN_SENT, and the overshoot marks data unacknowledged, so after the real
// handshake the assured entry has the 300 s UNACK timeout, not 5 days.
func TestPinInvalidSynAckInitialisesWindow(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 1000, win: 64240, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 9000, ack: 1609, win: 64240, wscale: -1, ct: CTInvalid, state: "SYN_SENT", timeout: 120, reason: ReasonAckOverUpper},
		{dir: Original, flags: rst, seq: 1609, win: 64240, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120, ignored: true, reason: ReasonOvershoot},
		{dir: Reply, flags: syn | ack, seq: 9000, ack: 1001, win: 64240, wscale: -1, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 1001, ack: 9001, win: 501, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 300, assured: true},
	})
}

// short_timeouts.pcap.gz #320: an RST from the original side before any
// reply deletes the entry too (the kernel tests th->rst, not the
// direction); the packet itself is NEW.
func TestPinOriginalRSTBeforeReplyDeletes(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 1000, win: 64240, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Original, flags: rst, seq: 1001, wscale: -1, ct: CTNew, state: "", timeout: -1},
	})
}

// A reply SYN crossing ours is accepted as SYN_SENT2 without refreshing
// the timer (the "SYN retransmit" rule of a not-yet-replied entry), and
// the entry has seen a reply from then on.
func TestPinSimultaneousOpenKeepsTimer(t *testing.T) {
	m := NewMachine(Linux)
	c := run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 1000, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn, seq: 500, win: 1000, wscale: -1, at: 5, ct: CTEstablished, state: "SYN_SENT2", timeout: 115},
	})
	if !c.SeenReply() {
		t.Fatal("SYN_SENT2 entry without SEEN_REPLY")
	}
}

// default.pcap.gz #702: a zero window caps an ESTABLISHED entry at the
// RETRANS timeout (300 s) while it lasts.
func TestPinZeroWindow(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, script(handshake, []pkt{
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 0, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 300, assured: true},
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 100, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
	}))
}

// The RETRANS cap is tested before the RST rule (nf_conntrack_tcp_packet's
// timeout ladder): an in-window, inexact RST that keeps an assured
// ESTABLISHED entry (RFC 5961 challenge) on a connection that has
// retransmitted tcp_max_retrans times gets the RETRANS timeout, not the
// CLOSE timeout it gets otherwise (TestLinuxRSTLadder/inexact). The RST
// does not reset the retransmission count: only ACK-class packets are
// compared with the last one.
func TestPinRetransCapBeforeRSTRule(t *testing.T) {
	m, c, sends := retransmitting(t)
	runFrom(t, m, c, append(sends,
		pkt{dir: Reply, flags: rst, seq: 5500, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 100, assured: true}))
}

// RFC 5961 §4 in LAST_ACK: a SYN of a new connection meets the old entry
// and is ignored (let through, remembered); the endpoint answers it with a
// challenge ACK, which the table alone would take for the ACK of the last
// FIN (LAST_ACK -> TIME_WAIT). The kernel recognises it and ignores it: the
// entry stays in LAST_ACK and its timer runs on.
func TestPinLastAckChallengeAck(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, script(handshake, []pkt{
		{dir: Original, flags: fin | ack, seq: 1001, ack: 5001, win: 502, wscale: -1, ct: CTEstablished, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: fin | ack, seq: 5001, ack: 1002, win: 509, wscale: -1, ct: CTEstablished, state: "LAST_ACK", timeout: 30, assured: true},
		{dir: Original, flags: syn, seq: 70000, win: 64240, wscale: 7, at: 2, ct: CTEstablished, state: "LAST_ACK", timeout: 28, assured: true, ignored: true, reason: ReasonIgnoredTransition},
		{dir: Reply, flags: ack, seq: 5002, ack: 1002, win: 509, wscale: -1, at: 3, ct: CTEstablished, state: "LAST_ACK", timeout: 27, assured: true, ignored: true, reason: ReasonChallengeAck},
	}))
}

// nf_tcp_handle_invalid: the one case where an INVALID packet moves a
// deadline. Both sides of an assured entry send an out-of-window FIN or
// RST: the endpoints and the tracker are out of sync, so instead of
// lingering for days the entry is lowered to the UNACK timeout. One such
// packet alone changes nothing.
func TestPinOutOfSyncCloseLowersToUnack(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, script(handshake, []pkt{
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 509, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
		{dir: Reply, flags: fin | ack, seq: 5001 + 1<<24, ack: 1001, win: 509, wscale: -1, at: 10, ct: CTInvalid, state: "ESTABLISHED", timeout: 431990, assured: true, reason: ReasonSeqOverUpper},
		{dir: Original, flags: rst, seq: 1001 + 1<<24, wscale: -1, at: 20, ct: CTInvalid, state: "ESTABLISHED", timeout: 300, assured: true, reason: ReasonLoweredToUnack},
	}))
}
