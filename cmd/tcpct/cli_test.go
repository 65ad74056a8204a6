package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

// rawCapture writes segs as a raw-IP pcap, 10 ms apart. A segment whose
// index is in cut has its packet cut to the IP header plus that many TCP
// bytes, with the IP total length saying so: a TCP header too short to
// read, which the tracker calls INVALID "truncated packet".
func rawCapture(t testing.TB, segs []packet.Segment, cut map[int]int) []byte {
	t.Helper()
	return rawCaptureGap(t, segs, cut, 10*time.Millisecond)
}

// rawCaptureGap is rawCapture with packets gap apart.
func rawCaptureGap(t testing.TB, segs []packet.Segment, cut map[int]int, gap time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, s := range segs {
		b, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := cut[i]; ok {
			if !s.Src.Addr().Is4() {
				t.Fatal("rawCapture cuts IPv4 packets only")
			}
			b = b[:20+n]
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		}
		if err := w.WritePacket(at, b); err != nil {
			t.Fatal(err)
		}
		at = at.Add(gap)
	}
	return buf.Bytes()
}

// TestExplainReadErrors: a capture cut short is an input error (status 2)
// that names the record and offset, also when -packet names the cut
// record or no TCP packet comes before the cut. explain used to call the
// first case a usage error ("no such TCP record") and the second "no TCP
// packet", without a location.
func TestExplainReadErrors(t *testing.T) {
	data, err := os.ReadFile(seedPcap)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cut  int
		args []string
		want string
	}{
		{1127, []string{"-packet", "12"}, "record 12 at offset 1065: truncated record"},
		{30, nil, "record 0 at offset 24: truncated record header"},
	} {
		args := append(append([]string{"explain"}, c.args...), "-")
		code, _, errs := runCmd(t, data[:c.cut], args...)
		if code != exitInput || !strings.Contains(errs, c.want) {
			t.Errorf("%v on %d bytes: status %d, stderr %q; want %d and %q", c.args, c.cut, code, errs, exitInput, c.want)
		}
	}
}

// TestExplainPacketChoice: -packet names a record that is not a TCP packet,
// is past the end, or is negative: a usage error saying which.
func TestExplainPacketChoice(t *testing.T) {
	for _, c := range []struct {
		packet string
		want   string
	}{
		{"0", "-packet 0: record 0 is not a TCP packet (not IPv4 or IPv6)"},
		{"99", "-packet 99: the capture has 13 records"},
		{"-5", "-packet -5: want a record number"},
		{"-1", "-packet -1: want a record number"},
	} {
		code, _, errs := runCmd(t, nil, "explain", "-packet", c.packet, seedPcap)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("-packet %s: status %d, stderr %q; want %d and %q", c.packet, code, errs, exitUsage, c.want)
		}
	}
}

// TestExplainTruncatedHeader: -packet names a TCP packet whose header is
// cut short before its ports. It has no tuple, so no connection: explain
// narrates that one packet, INVALID "truncated packet", and nothing else.
// Its class is "none", as for every packet whose header was not parsed
// (it used to be "syn", the zero value).
func TestExplainTruncatedHeader(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
	}, map[int]int{1: 3})
	code, jsonl, _ := runCmd(t, data, "replay", "-format", "jsonl", "-")
	if code != 0 || !strings.Contains(jsonl, `{"i":1,"frame":2,"time":"2024-05-01T12:00:00.010000000Z","family":"ipv4","src":"10.0.0.2","dst":"10.0.0.1","ct":"INVALID","reason":"truncated packet","class":"none","old":"NONE","action":"none"}`) {
		t.Fatalf("replay: status %d, jsonl:\n%s\nwant record 1 INVALID truncated packet, class none, no entry", code, jsonl)
	}
	code, out, errs := runCmd(t, data, "explain", "-packet", "1", "-")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	for _, want := range []string{"#1 12:00:00.010000  10.0.0.2 > 10.0.0.1  TCP header cut short", "INVALID: truncated packet", "belongs to no connection"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "#0 ") || strings.Contains(out, "#2 ") {
		t.Errorf("output narrates other packets:\n%s", out)
	}
}

// TestTruncatedHeaderFindsEntry: a TCP header cut to 4-19 bytes still
// has its ports, and the kernel finds the entry from them before its TCP
// tracker rejects the header: a SYN, then an ACK cut to 12 bytes of TCP
// header is "ct INVALID, state SYN_SENT, timeout 120" in the kernel
// (TestKernelTrackedInvalidHeader in conformance). Replay reports that entry,
// class "none" as for any malformed header; explain narrates the packet
// on its connection. The same holds with -j 2 (sharded by the ports).
func TestTruncatedHeaderFindsEntry(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	}, map[int]int{1: 12})
	want := `{"i":1,"ct":"INVALID","state":"SYN_SENT","timeout":119,"reason":"truncated packet","class":"none","old":"SYN_SENT","action":"none"}`
	for _, jobs := range []string{"1", "2"} {
		code, jsonl, _ := runCmd(t, data, "replay", "-j", jobs, "-format", "jsonl", "-fields", "classic", "-")
		lines := strings.Split(jsonl, "\n")
		if code != 0 || len(lines) < 3 || lines[1] != want || !strings.Contains(lines[2], `"state":"SYN_RECV"`) {
			t.Fatalf("replay -j %s: status %d, jsonl:\n%s\nwant line 2 %s and the SYN/ACK moving the entry on", jobs, code, jsonl, want)
		}
	}
	code, out, errs := runCmd(t, data, "explain", "-packet", "1", "-")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	for _, want := range []string{"connection 10.0.0.1:40000->10.0.0.2:80", "#0 ", "#1 12:00:00.010000 (+10ms)  10.0.0.1:40000 > 10.0.0.2:80  TCP header cut short (TCP segment shorter than 20 bytes)",
		"class none, direction -: INVALID", "state SYN_SENT -> SYN_SENT, timeout not refreshed", "INVALID: truncated packet", "#2 "} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

// TestExplainIPv6Endpoints: the per-packet lines write IPv6 endpoints in
// brackets, as the header line does; "2001:db8::1:5000" would read as an
// address without a port.
func TestExplainIPv6Endpoints(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	}, nil)
	code, out, errs := runCmd(t, data, "explain", "-")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	for _, want := range []string{"[2001:db8::1]:5000 > [2001:db8::2]:443  [S]", "[2001:db8::2]:443 > [2001:db8::1]:5000  [S.]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// failingWriter fails every write, as stdout on a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestOutputErrors: output that cannot be written is reported and exits
// with status 3, apart from unreadable input (2). explain used to exit 0.
func TestOutputErrors(t *testing.T) {
	for _, args := range [][]string{
		{"replay", "-format", "jsonl", seedPcap},
		{"replay", "-format", "summary", seedPcap},
		{"explain", seedPcap},
	} {
		var errb bytes.Buffer
		code := run(args, bytes.NewReader(nil), failingWriter{}, &errb)
		if code != exitOutput || !strings.Contains(errb.String(), "writing output: no space left on device") {
			t.Errorf("%v: status %d, stderr %q; want %d and the write error", args, code, errb.String(), exitOutput)
		}
	}
}

// TestAtRFC3339Forms: -at takes the forms RFC 3339 allows besides Go's
// layout (lower-case t and z, §5.6; a space between date and time) and
// an offset other than Z, all naming the same instant.
func TestAtRFC3339Forms(t *testing.T) {
	var first string
	for i, at := range []string{"2006-11-24T10:00:03Z", "2006-11-24t10:00:03z", "2006-11-24 10:00:03Z", "2006-11-24T11:00:03+01:00", "2006-11-24T10:00:03.000Z"} {
		code, out, errs := runCmd(t, nil, "replay", "-profile", "tutorial", "-format", "proc", "-at", at, seedPcap)
		if code != 0 || errs != "" || !strings.Contains(out, " 117 SYN_SENT ") {
			t.Errorf("-at %q: status %d, stderr %q, output %q; want the seed's 117 SYN_SENT line", at, code, errs, out)
		}
		if i == 0 {
			first = out
		} else if out != first {
			t.Errorf("-at %q: output differs from -at %q", at, "2006-11-24T10:00:03Z")
		}
	}
}

// synFlood is n connection attempts (a SYN each) from distinct clients.
func synFlood(t *testing.T, n int) []byte {
	srv := netip.MustParseAddrPort("10.0.0.2:80")
	var segs []packet.Segment
	for i := range n {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(40000+i))
		segs = append(segs, packet.Segment{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240})
	}
	return rawCapture(t, segs, nil)
}

// TestMaxKnobTables: -sysctl max=N bounds the entries of the whole run,
// as the kernel's one table does. Without -j it runs one worker (the
// output used to depend on the CPU count: each worker got a table of
// ceil(N/workers)); with -j it splits N exactly, never into empty tables.
func TestMaxKnobTables(t *testing.T) {
	data := synFlood(t, 20)
	for _, c := range []struct {
		args    []string
		entries int
	}{
		{[]string{"-sysctl", "max=1"}, 1},
		{[]string{"-sysctl", "nf_conntrack_max=5"}, 5},
		{[]string{"-j", "2", "-sysctl", "max=3"}, 3},
		{[]string{"-j", "4", "-sysctl", "max=2"}, 2},
		{[]string{"-j", "2"}, 20},
	} {
		args := append(append([]string{"replay", "-format", "conntrack"}, c.args...), "-")
		code, out, errs := runCmd(t, data, args...)
		if n := strings.Count(out, "\n"); code != 0 || errs != "" || n != c.entries {
			t.Errorf("%v: status %d, stderr %q, %d entries; want %d:\n%s", c.args, code, errs, n, c.entries, out)
		}
	}
}

// TestSysctlSyntaxSameEveryWorkerCount: a malformed -sysctl gets the same
// message whatever -j is (with -j 2 it used to be "unknown knob \"\"").
func TestSysctlSyntaxSameEveryWorkerCount(t *testing.T) {
	var first string
	for _, j := range []string{"1", "2"} {
		code, _, errs := runCmd(t, nil, "replay", "-j", j, "-sysctl", "=1", seedPcap)
		if code != exitUsage || !strings.Contains(errs, `-sysctl "=1": want NAME=VALUE`) {
			t.Errorf("-j %s: status %d, stderr %q", j, code, errs)
		}
		if j == "1" {
			first = errs
		} else if errs != first {
			t.Errorf("-j 2: %q, -j 1: %q", errs, first)
		}
	}
}

// TestSummaryCountsRecordsAfterAt: with an absolute -at the records after
// it are read but not processed; the summary's capture line says how many,
// so that its counts add up to the records (it used to drop them).
func TestSummaryCountsRecordsAfterAt(t *testing.T) {
	code, out, errs := runCmd(t, nil, "replay", "-format", "summary", "-at", "2006-11-24T10:00:03Z", seedPcap)
	want := "13 records, 1 TCP packets, 2 other records skipped, 10 records after -at not processed\n"
	if code != 0 || errs != "" || !strings.Contains(out, want) {
		t.Errorf("status %d, stderr %q, output:\n%s\nwant a capture line ending %q", code, errs, out, want)
	}
}

// TestExplainNarratesExpiryAndOverrules: explain says when the
// connection's entry expired (a sweep removes it before the next packet
// looks, so no verdict shows it), and when a rule outside the table
// (tcp_loose=0) made a packet INVALID although its spec cell names a state.
// Before, the expiry went unmentioned and the cell line read as if the
// packet had moved to ESTABLISHED.
func TestExplainNarratesExpiryAndOverrules(t *testing.T) {
	code, out, errs := runCmd(t, nil, "explain", "-sysctl", "tcp_loose=0", "-sysctl", "tcp_timeout_syn_sent=2", seedPcap)
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	expiry := "10:00:02.000000  the entry's timeout ran out in SYN_SENT: entry destroyed (reclaimed at 10:00:05.000000)"
	i, j := strings.Index(out, expiry), strings.Index(out, "#3 10:00:05")
	if i < 0 || j < 0 || i > j {
		t.Errorf("want the expiry line before packet #3:\n%s", out)
	}
	for _, want := range []string{
		"spec cell original/synack/NONE = INVALID (RFC 793 §3.4; 9293 §3.5): a SYN/ACK cannot open a connection",
		"spec cell original/ack/NONE = ESTABLISHED (RFC 9293 §3.5.1): an ACK with no entry: picked up mid-stream when tcp_loose is set (the connection may predate the tracker)\n    the cell was not applied: tcp_loose is 0, so only a SYN may create an entry (tcp_new())",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "the cell was not applied") != strings.Count(out, "tcp_loose is 0, so only a SYN") {
		t.Errorf("a cell overruled by something other than tcp_loose:\n%s", out)
	}
}

// TestExplainBeforeAt: with -at before the connection's first packet,
// explain says that the records after -at were not processed, instead of
// "no packet of this connection in the capture".
func TestExplainBeforeAt(t *testing.T) {
	code, out, _ := runCmd(t, nil, "explain", "-conn", "192.168.1.5:1031->192.168.1.35:23", "-at", "2006-11-24T09:00:00Z", seedPcap)
	if code != 0 || !strings.Contains(out, "13 records after -at 2006-11-24T09:00:00Z were not processed") ||
		!strings.Contains(out, "no packet of this connection before -at 2006-11-24T09:00:00Z") || strings.Contains(out, "in the capture") {
		t.Errorf("status %d, output:\n%s", code, out)
	}
}

// TestSpecAndDocsOutputErrors: spec and docs report output they cannot
// write with status 3 (spec exited 0 silently; docs used 2, the input
// status).
func TestSpecAndDocsOutputErrors(t *testing.T) {
	for _, f := range []string{"text", "json", "dot", "mermaid"} {
		var errb bytes.Buffer
		code := run([]string{"spec", "-format", f}, bytes.NewReader(nil), failingWriter{}, &errb)
		if code != exitOutput || !strings.Contains(errb.String(), "tcpct spec: writing output: no space left on device") {
			t.Errorf("spec -format %s: status %d, stderr %q", f, code, errb.String())
		}
	}
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, nil, "docs", "-o", notDir)
	if code != exitOutput || !strings.Contains(errs, "not a directory") {
		t.Errorf("docs -o FILE: status %d, stderr %q", code, errs)
	}
	var errb bytes.Buffer
	code = run([]string{"docs", "-o", filepath.Join(dir, "out")}, bytes.NewReader(nil), failingWriter{}, &errb)
	if code != exitOutput || !strings.Contains(errb.String(), "writing output") {
		t.Errorf("docs with stdout failing: status %d, stderr %q", code, errb.String())
	}
}

// TestEventsRefusedConnection: a SYN answered by an RST (a closed port).
// The kernel writes CLOSE into the entry, then kills it with its timer
// still running, so conntrack -E prints the DESTROY in CLOSE with the time
// left. Asked of Linux 6.18 (a refused connect on lo in a network
// namespace, conntrack -E):
//
//	    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=41496 dport=7002 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7002 dport=41496
//	[DESTROY] tcp      6 120 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=41496 dport=7002 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7002 dport=41496
//
// tcpct printed the DESTROY in SYN_SENT, without the time, until a helper
// compared tcpct watch with the kernel on a veth pair.
func TestEventsRefusedConnection(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("127.0.0.1:41496"), netip.MustParseAddrPort("127.0.0.1:7002")
	segs := []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 65495},
		{Src: srv, Dst: cli, Seq: 0, Ack: 101, Flags: packet.RST | packet.ACK},
	}
	// The RST 60 µs after the SYN, as on lo: within a jiffy, so the full
	// 120 s are left, as the kernel printed. 10 ms later (2.5 jiffies)
	// 29998 jiffies are left: 119 s.
	for _, c := range []struct {
		gap  time.Duration
		left string
	}{{60 * time.Microsecond, "120"}, {10 * time.Millisecond, "119"}} {
		code, out, errs := runCmd(t, rawCaptureGap(t, segs, nil, c.gap), "replay", "-format", "events", "-")
		want := "    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=41496 dport=7002 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7002 dport=41496\n" +
			"[DESTROY] tcp      6 " + c.left + " CLOSE src=127.0.0.1 dst=127.0.0.1 sport=41496 dport=7002 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7002 dport=41496\n"
		if code != 0 || errs != "" || out != want {
			t.Errorf("RST %v after the SYN: status %d, stderr %q, events:\n%s\nwant:\n%s", c.gap, code, errs, out, want)
		}
	}
}

// TestEventsAcctRefusedConnection: with the acct knob, a DESTROY carries
// the entry's counters, and the RST that kills it is counted first
// (nf_ct_kill_acct). Linux 6.18 with nf_conntrack_acct=1, a connect to a
// closed port on lo (a 60-byte SYN, a 40-byte RST), conntrack -E:
//
//	[DESTROY] tcp      6 120 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=40334 dport=5001 packets=1 bytes=60 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=40334 packets=1 bytes=40
//
// NEW and UPDATE events carry no counters (ctnetlink sends them with
// IPCT_DESTROY alone).
func TestEventsAcctRefusedConnection(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("127.0.0.1:40334"), netip.MustParseAddrPort("127.0.0.1:5001")
	linuxSyn := packet.Options{MSS: 65495, SACKPermitted: true, Timestamps: true, TSVal: 1, HasWScale: true, WScale: 7}
	segs := []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 65495, Options: linuxSyn},
		{Src: srv, Dst: cli, Seq: 0, Ack: 101, Flags: packet.RST | packet.ACK},
	}
	code, out, errs := runCmd(t, rawCaptureGap(t, segs, nil, 60*time.Microsecond), "replay", "-sysctl", "acct=1", "-format", "events", "-")
	want := "    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=40334 dport=5001 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=40334\n" +
		"[DESTROY] tcp      6 120 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=40334 dport=5001 packets=1 bytes=60 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=40334 packets=1 bytes=40\n"
	if code != 0 || errs != "" || out != want {
		t.Errorf("status %d, stderr %q, events:\n%s\nwant:\n%s", code, errs, out, want)
	}
}

// TestEventsResyncAnnouncesSynRecv: a SYN retransmitted in SYN_RECV is
// ignored, and the SYN/ACK retransmitted after it resyncs the entry: the
// kernel rewrites its old state to SYN_SENT and moves it to SYN_RECV, a
// transition, so conntrack -E prints a second UPDATE SYN_RECV. Asked of
// Linux 6.18 on a generated trace (internal/conformance/kernel, tracegen seed 11,
// connection 127.1.0.6:20006 -> 127.2.0.6:443):
//
//	   [NEW] tcp      6 120 SYN_SENT src=127.1.0.6 dst=127.2.0.6 sport=20006 dport=443 [UNREPLIED] src=127.2.0.6 dst=127.1.0.6 sport=443 dport=20006
//	[UPDATE] tcp      6 60 SYN_RECV src=127.1.0.6 dst=127.2.0.6 sport=20006 dport=443 src=127.2.0.6 dst=127.1.0.6 sport=443 dport=20006
//	[UPDATE] tcp      6 60 SYN_RECV src=127.1.0.6 dst=127.2.0.6 sport=20006 dport=443 src=127.2.0.6 dst=127.1.0.6 sport=443 dport=20006
//	[UPDATE] tcp      6 432000 ESTABLISHED src=127.1.0.6 ... [ASSURED]
//
// tcpct printed the second UPDATE only once the table was told of the
// transition (table.StateChange); before, it compared stored states.
func TestEventsResyncAnnouncesSynRecv(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("127.1.0.6:20006"), netip.MustParseAddrPort("127.2.0.6:443")
	const ci, si = 1000, 5000
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: ci, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: si, Ack: ci + 1, Flags: packet.SYN | packet.ACK, Window: 65160},
		{Src: cli, Dst: srv, Seq: ci, Flags: packet.SYN, Window: 64240},                           // retransmitted: ignored
		{Src: srv, Dst: cli, Seq: si, Ack: ci + 1, Flags: packet.SYN | packet.ACK, Window: 65160}, // retransmitted: resyncs
		{Src: cli, Dst: srv, Seq: ci + 1, Ack: si + 1, Flags: packet.ACK, Window: 502},
	}, nil)
	code, jsonl, _ := runCmd(t, data, "replay", "-format", "jsonl", "-fields", "classic", "-")
	if code != 0 || !strings.Contains(jsonl, `"i":2,"ct":"ESTABLISHED","dir":"original","state":"SYN_RECV"`) ||
		!strings.Contains(jsonl, `"old":"SYN_SENT","action":"update"`) {
		t.Fatalf("jsonl does not show the ignored SYN and the resync:\n%s", jsonl)
	}
	code, out, errs := runCmd(t, data, "replay", "-format", "events", "-")
	tuple := "src=127.1.0.6 dst=127.2.0.6 sport=20006 dport=443"
	reply := "src=127.2.0.6 dst=127.1.0.6 sport=443 dport=20006"
	want := "    [NEW] tcp      6 120 SYN_SENT " + tuple + " [UNREPLIED] " + reply + "\n" +
		" [UPDATE] tcp      6 60 SYN_RECV " + tuple + " " + reply + "\n" +
		" [UPDATE] tcp      6 60 SYN_RECV " + tuple + " " + reply + "\n" +
		" [UPDATE] tcp      6 432000 ESTABLISHED " + tuple + " " + reply + " [ASSURED]\n"
	if code != 0 || errs != "" || out != want {
		t.Errorf("status %d, stderr %q, events:\n%s\nwant:\n%s", code, errs, out, want)
	}
}

// vxlanCapture writes segs as an Ethernet pcap of VXLAN packets between
// two tunnel endpoints (10.99.0.1 and 10.99.0.2, UDP port 4789).
func vxlanCapture(t testing.TB, segs []packet.Segment) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	mac := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, s := range segs {
		in, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		inner := append(append(append([]byte{}, mac...), 0x08, 0x00), in...)
		vx := append([]byte{0x08, 0, 0, 0, 0, 0, 7, 0}, inner...)
		udp := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 50000), 4789)
		udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(vx)))
		udp = append(append(udp, 0, 0), vx...)
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		frame := append(append(append(append([]byte{}, mac...), 0x08, 0x00), ip...), udp...)
		if err := w.WritePacket(at, frame); err != nil {
			t.Fatal(err)
		}
		at = at.Add(10 * time.Millisecond)
	}
	return buf.Bytes()
}

// TestDecapFlag: -decap tracks the TCP connection inside VXLAN (the inner
// addresses, as the inner host's firewall sees them); without it the
// records are skipped as tunnelled traffic, and -v says why.
func TestDecapFlag(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("192.168.7.1:40000"), netip.MustParseAddrPort("192.168.7.2:22")
	data := vxlanCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	})
	code, out, errs := runCmd(t, data, "replay", "-decap", "-format", "proc", "-")
	if code != 0 || errs != "" || !strings.Contains(out, "SYN_RECV src=192.168.7.1 dst=192.168.7.2 sport=40000 dport=22") {
		t.Errorf("-decap: status %d, stderr %q, table %q; want the inner connection in SYN_RECV", code, errs, out)
	}
	code, out, errs = runCmd(t, data, "replay", "-v", "-format", "proc", "-")
	if code != exitNoTCP || out != "" || !strings.Contains(errs, "tunnelled traffic, not decapsulated") {
		t.Errorf("without -decap: status %d, table %q, stderr %q; want no entry and the skip reason", code, out, errs)
	}
	code, out, _ = runCmd(t, data, "explain", "-decap", "-")
	if code != 0 || !strings.Contains(out, "connection 192.168.7.1:40000->192.168.7.2:22") || !strings.Contains(out, "state SYN_SENT -> SYN_RECV") {
		t.Errorf("explain -decap: status %d:\n%s", code, out)
	}
}

// TestMalformedIPRule: a record whose IP header the kernel's receive path
// drops (here a total length below the header length) is skipped, not
// counted; a sound IP packet whose TCP header is cut is INVALID (the rule
// of capture.Packet.TrackedInvalid, asked of the kernel by
// TestKernelMalformedIP).
func TestMalformedIPRule(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
	}, map[int]int{1: 12, 2: 20})
	// Record 2: total length 16, below the 20-byte header.
	r := bytes.LastIndex(data, []byte{0x45, 0, 0, 40})
	data[r+3] = 16
	code, jsonl, errs := runCmd(t, data, "replay", "-v", "-format", "jsonl", "-fields", "classic", "-")
	lines := strings.Split(strings.TrimSpace(jsonl), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], `{"i":1,"ct":"INVALID","state":"SYN_SENT"`) ||
		!strings.Contains(errs, "IPv4 total length below header length") {
		t.Errorf("status %d, jsonl:\n%s\nstderr %q; want records 0 and 1 only, record 2 skipped for its IP header", code, jsonl, errs)
	}
}

// TestChecksumFlag: the summary counts wrong TCP checksums whatever the
// checksum knob says; with -sysctl checksum=1 such a packet is INVALID
// "bad checksum" (replay, explain, -j 2), with the default it is tracked.
func TestChecksumFlag(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	data := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
	}, nil)
	data[len(data)-1] ^= 0x55 // the ACK's last header byte
	for _, c := range []struct {
		knob, want string
	}{
		{"checksum=0", "wrong TCP checksums: 1 packets, tracked as if right"},
		{"checksum=1", `wrong TCP checksums: 1 packets, INVALID "bad checksum"`},
	} {
		code, out, _ := runCmd(t, data, "replay", "-sysctl", c.knob, "-format", "summary", "-")
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s summary: status %d, want %q in:\n%s", c.knob, code, c.want, out)
		}
	}
	for _, jobs := range []string{"1", "2"} {
		code, out, _ := runCmd(t, data, "replay", "-j", jobs, "-sysctl", "checksum=1", "-format", "jsonl", "-fields", "classic", "-")
		if code != 0 || !strings.Contains(out, `{"i":2,"ct":"INVALID","state":"SYN_RECV","timeout":59,"seen_reply":true,"reason":"bad checksum"`) {
			t.Errorf("-j %s checksum=1: status %d:\n%s", jobs, code, out)
		}
	}
	code, out, _ := runCmd(t, data, "replay", "-format", "jsonl", "-fields", "classic", "-")
	if code != 0 || !strings.Contains(out, `{"i":2,"ct":"ESTABLISHED","dir":"original","state":"ESTABLISHED"`) {
		t.Errorf("checksum=0: status %d:\n%s", code, out)
	}
	code, out, _ = runCmd(t, data, "explain", "-sysctl", "checksum=1", "-")
	if code != 0 || !strings.Contains(out, "INVALID: bad checksum") {
		t.Errorf("explain checksum=1: status %d:\n%s", code, out)
	}
}
