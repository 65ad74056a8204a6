package fsm

import (
	"strings"
	"testing"
)

// The scripts below follow nf_conntrack_tcp_packet() and tcp_in_window()
// by hand; internal/conformance/ checks the same behaviour against the running
// kernel.

var handshake = []pkt{
	{dir: Original, flags: syn, seq: 1000, win: 64240, wscale: 7, sackPerm: true, ct: CTNew, state: "SYN_SENT", timeout: 120},
	{dir: Reply, flags: syn | ack, seq: 5000, ack: 1001, win: 65160, wscale: 7, sackPerm: true, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
	{dir: Original, flags: ack, seq: 1001, ack: 5001, win: 502, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
}

func script(parts ...[]pkt) []pkt {
	var out []pkt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestLinuxHandshakeDataClose(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, script(handshake, []pkt{
		// Unacknowledged data caps the timeout at 300 s until the ACK.
		{dir: Original, flags: psh | ack, seq: 1001, ack: 5001, len: 100, win: 502, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 300, assured: true},
		{dir: Reply, flags: ack, seq: 5001, ack: 1101, win: 509, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
		{dir: Original, flags: fin | ack, seq: 1101, ack: 5001, win: 502, wscale: -1, ct: CTEstablished, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: ack, seq: 5001, ack: 1102, win: 509, wscale: -1, ct: CTEstablished, state: "CLOSE_WAIT", timeout: 60, assured: true},
		{dir: Reply, flags: fin | ack, seq: 5001, ack: 1102, win: 509, wscale: -1, ct: CTEstablished, state: "LAST_ACK", timeout: 30, assured: true},
		{dir: Original, flags: ack, seq: 1102, ack: 5002, win: 502, wscale: -1, ct: CTEstablished, state: "TIME_WAIT", timeout: 120, assured: true},
		// A new SYN on the same tuple after a close kills the entry and
		// starts a new one (RFC 1122 §4.2.2.13).
		{dir: Original, flags: syn, seq: 90000, win: 64240, wscale: 7, at: 5, ct: CTNew, state: "SYN_SENT", timeout: 120},
	}))
}

func TestLinuxReopenIsRecreate(t *testing.T) {
	m := NewMachine(Linux)
	// After an RST from the original side, its new SYN reopens.
	c := run(t, m, script(handshake, []pkt{
		{dir: Original, flags: rst, seq: 1001, wscale: -1, ct: CTEstablished, state: "CLOSE", timeout: 10, assured: true},
	}))
	seg := Segment{Seq: 777, Flags: syn, Win: 1000}
	if v := m.Step(&c, &seg, Original, 2*second); v.Action != Recreate || v.CT != CTNew || m.p.StateName(c.State) != "SYN_SENT" || c.Assured() {
		t.Fatalf("reopen from CLOSE: %+v state %s", v, m.p.StateName(c.State))
	}
	// The reply side may reopen from TIME_WAIT: the new entry's original
	// direction is the SYN's.
	c = run(t, m, script(handshake, []pkt{
		{dir: Original, flags: fin | ack, seq: 1001, ack: 5001, win: 502, wscale: -1, ct: CTEstablished, state: "FIN_WAIT", timeout: 120, assured: true},
		{dir: Reply, flags: fin | ack, seq: 5001, ack: 1002, win: 509, wscale: -1, ct: CTEstablished, state: "LAST_ACK", timeout: 30, assured: true},
		{dir: Original, flags: ack, seq: 1002, ack: 5002, win: 502, wscale: -1, ct: CTEstablished, state: "TIME_WAIT", timeout: 120, assured: true},
	}))
	v := m.Step(&c, &seg, Reply, 2*second)
	if v.Action != Recreate || v.CT != CTNew || v.Dir != Original || m.p.StateName(c.State) != "SYN_SENT" || c.SeenReply() {
		t.Fatalf("reopen from TIME_WAIT by the peer: %+v state %s", v, m.p.StateName(c.State))
	}
	// A reply-side SYN in CLOSE is INVALID (the table's sIV).
	c = run(t, m, script(handshake, []pkt{
		{dir: Original, flags: rst, seq: 1001, wscale: -1, ct: CTEstablished, state: "CLOSE", timeout: 10, assured: true},
	}))
	if v := m.Step(&c, &seg, Reply, 2*second); v.CT != CTInvalid || m.p.StateName(c.State) != "CLOSE" {
		t.Fatalf("reply SYN in CLOSE: %+v", v)
	}
}

func TestLinuxRSTBeforeReplyDeletes(t *testing.T) {
	m := NewMachine(Linux)
	var c Conn
	seg := Segment{Seq: 1000, Flags: syn, Win: 64240}
	m.Step(&c, &seg, Original, 0)
	r := Segment{Seq: 0, Ack: 1001, Flags: rst | ack}
	v := m.Step(&c, &r, Reply, second)
	if v.Action != Delete || c.Live() || v.CT != CTEstablished {
		t.Fatalf("RST answering a SYN: %+v live=%v", v, c.Live())
	}
}

func TestLinuxRSTLadder(t *testing.T) {
	base := script(handshake, []pkt{
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 509, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
	})
	cases := []struct {
		name  string
		seq   uint32
		ct    CT
		state string
		to    int64
		r     Reason
	}{
		// Below the peer's highest ACK (5001): INVALID.
		{"below max ack", 4000, CTInvalid, "ESTABLISHED", 431999, ReasonInvalidRST},
		// Exactly the peer's highest ACK: CLOSE.
		{"exact", 5001, CTEstablished, "CLOSE", 10, ReasonNone},
		// In window but not exact: the state stays for a challenge ACK
		// (RFC 5961 §3); the RST still sets the CLOSE timeout.
		{"inexact", 5500, CTEstablished, "ESTABLISHED", 10, ReasonNone},
		// Above the window: INVALID.
		{"above window", 5001 + 65160<<7 + 10, CTInvalid, "ESTABLISHED", 431999, ReasonInvalidRST + 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(Linux)
			c := run(t, m, base)
			seg := Segment{Seq: tc.seq, Flags: rst}
			v := m.Step(&c, &seg, Reply, second)
			want := tc.r
			if want == ReasonInvalidRST+100 {
				want = ReasonSeqOverUpper
			}
			if v.CT != tc.ct || m.p.StateName(c.State) != tc.state || v.Reason != want || (c.Deadline-second)/second != tc.to {
				t.Fatalf("got ct=%v state=%s reason=%q timeout=%d; want ct=%v state=%s reason=%q timeout=%d",
					v.CT, m.p.StateName(c.State), v.Reason, (c.Deadline-second)/second, tc.ct, tc.state, want, tc.to)
			}
		})
	}
	// tcp_ignore_invalid_rst accepts the RST below the max ACK; being
	// inexact on an established entry it keeps the state.
	m := NewMachine(Linux)
	if err := m.Set("nf_conntrack_tcp_ignore_invalid_rst", "1"); err != nil {
		t.Fatal(err)
	}
	c := run(t, m, base)
	seg := Segment{Seq: 4000, Flags: rst}
	if v := m.Step(&c, &seg, Reply, second); v.CT != CTEstablished || v.Reason != ReasonNone {
		t.Fatalf("ignore_invalid_rst: %+v", v)
	}
}

func TestLinuxWindowBounds(t *testing.T) {
	est := script(handshake, []pkt{
		{dir: Reply, flags: ack, seq: 5001, ack: 1001, win: 509, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
	})
	// The reply side offered 509<<7 = 65152 bytes past 1001.
	cases := []struct {
		name    string
		seq     uint32
		ack     uint32
		len     uint32
		ct      CT
		ignored bool
		r       Reason
	}{
		{"in window", 1001, 5001, 1000, CTEstablished, false, ReasonNone},
		{"seq over upper bound", 1001 + 65152 + 70000, 5001, 10, CTInvalid, false, ReasonSeqOverUpper},
		{"ack over upper bound", 1001, 6000, 10, CTInvalid, false, ReasonAckOverUpper},
		{"old data", 1<<32 + 1001 - 200000, 5001, 10, CTEstablished, true, ReasonSeqUnderLower},
		{"delayed ack", 1001, 1<<32 + 5001 - 70000, 10, CTEstablished, true, ReasonAckUnderLower},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(Linux)
			c := run(t, m, est)
			before := c.Deadline
			seg := Segment{Seq: tc.seq, Ack: tc.ack, Len: tc.len, Flags: ack | psh, Win: 502}
			v := m.Step(&c, &seg, Original, 3*second)
			if v.CT != tc.ct || v.Ignored != tc.ignored || v.Reason != tc.r {
				t.Fatalf("got %v ignored=%v reason=%q; want %v ignored=%v reason=%q", v.CT, v.Ignored, v.Reason, tc.ct, tc.ignored, tc.r)
			}
			if (tc.ct == CTInvalid || tc.ignored) && c.Deadline != before {
				t.Fatalf("an INVALID or ignored packet moved the deadline")
			}
			// tcp_be_liberal accepts every window failure.
			m2 := NewMachine(Linux)
			m2.Set("tcp_be_liberal", "1")
			c2 := run(t, m2, est)
			if v := m2.Step(&c2, &seg, Original, 3*second); v.CT != CTEstablished || v.Ignored {
				t.Fatalf("be_liberal: %+v", v)
			}
		})
	}
}

func TestLinuxLoosePickup(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: ack, seq: 10, ack: 20, win: 1000, wscale: -1, ct: CTNew, state: "ESTABLISHED", timeout: 300},
		{dir: Reply, flags: ack, seq: 20, ack: 10, win: 1000, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 300},
		{dir: Original, flags: ack, seq: 10, ack: 20, win: 1001, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
	})
	m.Set("tcp_loose", "0")
	run(t, m, []pkt{{dir: Original, flags: ack, seq: 10, ack: 20, win: 1000, wscale: -1, ct: CTInvalid, timeout: -1, reason: ReasonLooseOff}})
}

func TestLinuxIgnoredSynThenResync(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, script(handshake, []pkt{
		// A SYN in ESTABLISHED is ignored and remembered.
		{dir: Original, flags: syn, seq: 70000, win: 64240, wscale: 5, at: 1, ct: CTEstablished, state: "ESTABLISHED", timeout: 431999, assured: true, ignored: true, reason: ReasonIgnoredTransition},
		// The server answers it: the tracker resyncs from the SYN.
		{dir: Reply, flags: syn | ack, seq: 9000, ack: 70001, win: 65160, wscale: 7, at: 1, ct: CTEstablished, state: "SYN_RECV", timeout: 60, assured: true},
	}))
}

func TestLinuxBadFlags(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{{dir: Original, flags: syn | fin, seq: 1, wscale: -1, ct: CTInvalid, timeout: -1, reason: ReasonBadFlags}})
	run(t, m, []pkt{{dir: Original, flags: 0, seq: 1, wscale: -1, ct: CTInvalid, timeout: -1, reason: ReasonBadFlags}})
}

// retransmitting sets up the RETRANS cap: a linux machine with
// tcp_timeout_max_retrans 100 (below UNACK's 300, so the two are told
// apart), the entry after the handshake, and a data segment sent four
// times: the fourth is the tcp_max_retrans-th (3rd) retransmission and
// gets the RETRANS timeout.
func retransmitting(t *testing.T) (*Machine, Conn, []pkt) {
	t.Helper()
	m := NewMachine(Linux)
	c := run(t, m, handshake)
	// Set after the handshake: with a fresh entry's last_win of 0, the
	// SYN itself would already be capped at a RETRANS timeout below 120.
	if err := m.Set("tcp_timeout_max_retrans", "100"); err != nil {
		t.Fatal(err)
	}
	data := pkt{dir: Original, flags: psh | ack, seq: 1001, ack: 5001, len: 100, win: 502, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 300, assured: true}
	capped := data
	capped.timeout = 100
	return m, c, []pkt{data, data, data, capped}
}

func TestLinuxMaxRetrans(t *testing.T) {
	m, c, sends := retransmitting(t)
	runFrom(t, m, c, append(sends, sends[3]))

	// The zero-window rule: a fresh SYN entry has last_win 0, so a
	// RETRANS timeout below the SYN_SENT timeout applies at once.
	run(t, m, []pkt{{dir: Original, flags: syn, seq: 1, win: 1000, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 100}})
}

func TestLinuxSimultaneousOpen(t *testing.T) {
	m := NewMachine(Linux)
	run(t, m, []pkt{
		{dir: Original, flags: syn, seq: 100, win: 1000, wscale: -1, ct: CTNew, state: "SYN_SENT", timeout: 120},
		{dir: Reply, flags: syn, seq: 500, win: 1000, wscale: -1, ct: CTEstablished, state: "SYN_SENT2", timeout: 120},
		{dir: Original, flags: syn | ack, seq: 100, ack: 501, win: 1000, wscale: -1, ct: CTEstablished, state: "SYN_RECV", timeout: 60},
		// The reply side's ACK completes the simultaneous open.
		{dir: Reply, flags: ack, seq: 501, ack: 101, win: 1000, wscale: -1, ct: CTEstablished, state: "ESTABLISHED", timeout: 432000, assured: true},
	})
}

func TestKnobNames(t *testing.T) {
	m := NewMachine(Linux)
	for _, n := range []string{"tcp_loose", "nf_conntrack_tcp_loose", "net.netfilter.nf_conntrack_tcp_loose"} {
		if err := m.Set(n, "0"); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, bad := range [][2]string{{"tcp_nonsense", "1"}, {"tcp_loose", "2"}, {"tcp_loose", "x"}, {"tcp_timeout_close", "-1"}, {"ip_ct_tcp_timeout_close", "1"}} {
		if err := m.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%s, %s) accepted", bad[0], bad[1])
		}
	}
	tm := NewMachine(Tutorial)
	if err := tm.Set("ip_ct_tcp_timeout_close_wait", "5"); err != nil {
		t.Fatal(err)
	}
	if v, _ := tm.Knob("tcp_timeout_close_wait"); v != 5 {
		t.Fatalf("alias did not set the knob: %d", v)
	}
	// A knob of the other profile is named as such.
	for _, c := range []struct {
		m          *Machine
		knob, want string
	}{
		{tm, "acct", "; profile linux has it"},
		{m, "tcp_timeout_listen", "; profile tutorial has it"},
		{m, "tcp_nonsense", ")"},
	} {
		err := c.m.Set(c.knob, "1")
		if err == nil || !strings.HasSuffix(err.Error(), c.want) || !strings.Contains(err.Error(), "its knobs: ") {
			t.Errorf("Set(%s) = %v, want an error ending %q", c.knob, err, c.want)
		}
	}
}

func TestStepDoesNotAllocate(t *testing.T) {
	m := NewMachine(Linux)
	var c Conn
	segs := []Segment{
		{Seq: 1000, Flags: syn, Win: 64240},
		{Seq: 5000, Ack: 1001, Flags: syn | ack, Win: 65160},
		{Seq: 1001, Ack: 5001, Flags: ack, Win: 502},
	}
	dirs := []Dir{Original, Reply, Original}
	for i := range segs {
		m.Step(&c, &segs[i], dirs[i], 0)
	}
	data := Segment{Seq: 1001, Ack: 5001, Flags: ack | psh, Win: 502, Len: 10}
	reply := Segment{Seq: 5001, Ack: 1011, Flags: ack, Win: 502}
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now += 1000
		m.Step(&c, &data, Original, now)
		data.Seq += 10
		reply.Ack += 10
		m.Step(&c, &reply, Reply, now)
	})
	if allocs != 0 {
		t.Fatalf("Step allocates %.1f times per packet pair", allocs)
	}
}
