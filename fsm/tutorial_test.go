package fsm

import "testing"

// The seed's walk-through (Iptables Tutorial 1.2.2, "TCP connections"):
// 192.168.1.5:1031 → 192.168.1.35:23, SYN_SENT for 2 minutes, SYN_RECV for
// 60 s, ESTABLISHED [ASSURED] for 5 days; a FIN close ends in TIME_WAIT
// (through 2.4.0's FIN_WAIT, which the peer's ACK keeps), an RST in CLOSE.
func TestTutorialSeedWalk(t *testing.T) {
	m := NewMachine(Tutorial)
	steps := []pkt{
		{dir: Original, flags: syn, seq: 100, win: 5840, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 500, ack: 101, win: 5792, wscale: -1, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 101, ack: 501, win: 5840, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
		{dir: Original, flags: fin | ack, seq: 101, ack: 501, win: 5840, wscale: -1, ct: CTEstablished, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: ack, seq: 501, ack: 102, win: 5792, wscale: -1, ct: CTEstablished, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: fin | ack, seq: 501, ack: 102, win: 5792, wscale: -1, ct: CTEstablished, state: "TIME_WAIT", timeout: 120, assured: true},
		{dir: Original, flags: ack, seq: 102, ack: 502, win: 5840, wscale: -1, ct: CTEstablished, state: "TIME_WAIT", timeout: 120, assured: true},
	}
	run(t, m, steps)
}

func TestTutorialRST(t *testing.T) {
	m := NewMachine(Tutorial)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 5840, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		// An RST as the only answer deletes the entry at once.
		{dir: Reply, flags: rst | ack, seq: 0, ack: 101, wscale: -1, ct: CTEstablished, state: "", timeout: -1},
	})
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 5840, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 500, ack: 101, win: 5792, wscale: -1, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 101, ack: 501, win: 5840, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
		{dir: Reply, flags: rst, seq: 501, wscale: -1, ct: CTEstablished, state: "CLOSE", timeout: 10, assured: true},
	})
}

// Without the handshake ACK the tutorial tracker never assures: an ACK
// acknowledging something else moves to ESTABLISHED unassured.
func TestTutorialAssuredNeedsHandshakeAck(t *testing.T) {
	m := NewMachine(Tutorial)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 5840, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 500, ack: 101, win: 5792, wscale: -1, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 101, ack: 777, win: 5840, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000},
	})
}

// The seed: "even a packet with no bit set or an ACK flag, will count as
// NEW"; with ip_conntrack_tcp_loose = 0 only SYN does.
func TestTutorialLoose(t *testing.T) {
	m := NewMachine(Tutorial)
	run(t, m, []pkt{{dir: Original, flags: ack, seq: 1, ack: 1, win: 100, wscale: -1, ct: CTNew, state: "ESTABLISHED", timeout: 432000}})
	run(t, m, []pkt{{dir: Original, flags: 0, seq: 1, win: 100, wscale: -1, ct: CTNew, state: "NONE", timeout: 1800}})
	if err := m.Set("ip_conntrack_tcp_loose", "0"); err != nil {
		t.Fatal(err)
	}
	run(t, m, []pkt{{dir: Original, flags: ack, seq: 1, ack: 1, win: 100, wscale: -1, ct: CTInvalid, state: "", timeout: -1, reason: ReasonLooseOff}})
	run(t, m, []pkt{{dir: Original, flags: syn, seq: 1, win: 100, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120}})
}
