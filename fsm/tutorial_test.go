package fsm

import "testing"

// The seed's walk-through (Iptables Tutorial 1.2.2, "TCP connections"):
// 192.168.1.5:1031 → 192.168.1.35:23, SYN_SENT for 2 minutes, SYN_RECV for
// 60 s, ESTABLISHED [ASSURED] for 5 days; a FIN close ends in TIME_WAIT,
// an RST in CLOSE.
func TestTutorialSeedWalk(t *testing.T) {
	m := NewMachine(Tutorial)
	steps := []pkt{
		{dir: Original, flags: syn, seq: 100, win: 5840, wscale: -1, ct: New, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn | ack, seq: 500, ack: 101, win: 5792, wscale: -1, ct: Established, state: "SYN_RECV", timeout: 60},
		{dir: Original, flags: ack, seq: 101, ack: 501, win: 5840, wscale: -1, ct: Established, state: "ESTABLISHED", timeout: 432000, assured: true},
		{dir: Original, flags: fin | ack, seq: 101, ack: 501, win: 5840, wscale: -1, ct: Established, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: ack, seq: 501, ack: 102, win: 5792, wscale: -1, ct: Established, state: "CLOSE_WAIT", timeout: 43200, assured: true},
		{dir: Reply, flags: fin | ack, seq: 501, ack: 102, win: 5792, wscale: -1, ct: Established, state: "TIME_WAIT", timeout: 120, assured: true},
		{dir: Original, flags: ack, seq: 102, ack: 502, win: 5840, wscale: -1, ct: Established, state: "TIME_WAIT", timeout: 120, assured: true},
	}
	run(t, m, steps)
}
