package fsm

import "testing"

// Behaviours first seen in the kernel's own verdicts (conformance/,
// testdata/kernel), pinned here so that a change to fsm that loses them
// fails without root. Each names the recorded packet that showed it.

// default.pcap.gz #630-#655: an INVALID SYN/ACK (its ACK acknowledges data
// never sent) still initialises the reply side's window (tcp_in_window
// runs tcp_init_sender before its checks), so the client's RST that
// follows is not INVALID but an overshoot, ignored: the entry survives in
// SYN_SENT, and the overshoot marks data unacknowledged, so after the real
// handshake the assured entry has the 300 s UNACK timeout, not 5 days.
func TestPinInvalidSynAckInitialisesWindow(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 1000, win: 64240, wscale: -1, ct: New, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 9000, ack: 1609, win: 64240, wscale: -1, ct: Invalid, state: "SYN_SENT", timeout: 120, reason: ReasonAckOverUpper},
		{dir: Original, flags: rst, seq: 1609, win: 64240, wscale: -1, ct: New, state: "SYN_SENT", timeout: 120, ignored: true, reason: ReasonOvershoot},
		{dir: Reply, flags: syn | ack, seq: 9000, ack: 1001, win: 64240, wscale: -1, ct: Established, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 1001, ack: 9001, win: 501, wscale: -1, ct: Established, state: "ESTABLISHED", timeout: 300, assured: true},
	})
}

// short_timeouts.pcap.gz #320: an RST from the original side before any
// reply deletes the entry too (the kernel tests th->rst, not the
// direction); the packet itself is NEW.
func TestPinOriginalRSTBeforeReplyDeletes(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 1000, win: 64240, wscale: -1, ct: New, state: "SYN_SENT", timeout: 120},
		{dir: Original, flags: rst, seq: 1001, wscale: -1, ct: New, state: "", timeout: -1},
	})
}

// A reply SYN crossing ours is accepted as SYN_SENT2 without refreshing
// the timer (the "SYN retransmit" rule of a not-yet-replied entry), and
// the entry has seen a reply from then on.
func TestPinSimultaneousOpenKeepsTimer(t *testing.T) {
	m := NewMachine(Linux)
	c := run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 1000, wscale: -1, ct: New, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn, seq: 500, win: 1000, wscale: -1, at: 5, ct: Established, state: "SYN_SENT2", timeout: 115},
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
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 0, wscale: -1, ct: Established, state: "ESTABLISHED", timeout: 300, assured: true},
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 100, wscale: -1, ct: Established, state: "ESTABLISHED", timeout: 432000, assured: true},
	}))
}
