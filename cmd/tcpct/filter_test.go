package main

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/packet"
)

// jsonlFrames returns the frame numbers of replay's jsonl records with
// the filter flags given.
func jsonlFrames(t *testing.T, data []byte, flags ...string) []int {
	t.Helper()
	args := append([]string{"replay", "-format", "jsonl", "-fields", "frame"}, flags...)
	code, out, errs := runCmd(t, data, append(args, "-")...)
	if code != 0 {
		t.Fatalf("%v: status %d, stderr %q", flags, code, errs)
	}
	var frames []int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct{ Frame int }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, r.Frame)
	}
	return frames
}

// TestFiltersMatchTshark: the address and port filters pick, packet by
// packet, the frames tshark's display filters pick from the same capture
// (IPv4 and IPv6 connections, non-TCP records among them). Skips without
// tshark (Debian package tshark, installed by .ci/run).
func TestFiltersMatchTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark (Debian package tshark)")
	}
	data := multiConnCapture(t, 100, 11)
	path := filepath.Join(t.TempDir(), "multi.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flags   []string
		display string
	}{
		{[]string{"-src", "10.1.0.0/26"}, "ip.src==10.1.0.0/26"},
		{[]string{"-dst", "2001:db8::1"}, "ipv6.dst==2001:db8::1"},
		{[]string{"-sport", "443"}, "tcp.srcport==443"},
		{[]string{"-p", "tcp", "-src", "10.9.0.1", "-dport", "20011"}, "ip.src==10.9.0.1 && tcp.dstport==20011"},
	} {
		got := jsonlFrames(t, data, c.flags...)
		out, err := exec.Command("tshark", "-r", path, "-Y", "tcp && ("+c.display+")", "-T", "fields", "-e", "frame.number").Output()
		if err != nil {
			t.Fatalf("tshark -Y %q: %v", c.display, err)
		}
		var want []int
		for _, f := range strings.Fields(string(out)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, n)
		}
		if len(want) == 0 {
			t.Fatalf("tshark -Y %q picks no frame: the case tests nothing", c.display)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v: frames %v\ntshark -Y %q: %v", c.flags, got, c.display, want)
		}
	}
}

// TestFiltersOnVerdicts: -ct, -state and -status pick the records whose
// fields say so, and only those; the records picked are byte for byte
// the unfiltered run's (the tracker saw every packet).
func TestFiltersOnVerdicts(t *testing.T) {
	data := multiConnCapture(t, 300, 11)
	_, all, _ := runCmd(t, data, "replay", "-format", "jsonl", "-")
	lines := strings.SplitAfter(all, "\n")
	for _, c := range []struct {
		flags []string
		keep  func(r map[string]any) bool
	}{
		{[]string{"-ct", "INVALID"}, func(r map[string]any) bool { return r["ct"] == "INVALID" }},
		{[]string{"-ct", "new,invalid"}, func(r map[string]any) bool { return r["ct"] == "INVALID" || r["ct"] == "NEW" }},
		{[]string{"-state", "TIME_WAIT"}, func(r map[string]any) bool { return r["state"] == "TIME_WAIT" }},
		{[]string{"-status", "UNREPLIED"}, func(r map[string]any) bool { return r["state"] != nil && r["seen_reply"] == nil }},
		{[]string{"-status", "ASSURED,SEEN_REPLY", "-dport", "443"}, func(r map[string]any) bool {
			return r["assured"] == true && r["seen_reply"] == true && r["dport"] == 443.0
		}},
	} {
		var want strings.Builder
		for _, l := range lines {
			var r map[string]any
			if l == "" {
				continue
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatal(err)
			}
			if c.keep(r) {
				want.WriteString(l)
			}
		}
		if want.Len() == 0 {
			t.Fatalf("%v: no record qualifies: the case tests nothing", c.flags)
		}
		code, got, errs := runCmd(t, data, append(append([]string{"replay", "-format", "jsonl"}, c.flags...), "-")...)
		if code != 0 || got != want.String() {
			t.Errorf("%v: status %d, stderr %q\ngot:\n%.600s\nwant:\n%.600s", c.flags, code, errs, got, want.String())
		}
	}
}

// TestFiltersOnEntries: proc, conntrack and events filter entries by
// their original tuple, state and flags, as conntrack -L and -E do: the
// filtered output is the unfiltered output's matching lines.
func TestFiltersOnEntries(t *testing.T) {
	data := multiConnCapture(t, 300, 11)
	for _, c := range []struct {
		format string
		flags  []string
		keep   func(line string) bool
	}{
		{"conntrack", []string{"-src", "10.1.0.0/16"}, func(l string) bool { return strings.Contains(l, " src=10.1.") }},
		{"proc", []string{"-dport", "443", "-status", "ASSURED"}, func(l string) bool { return strings.Contains(l, "[ASSURED]") }},
		{"conntrack", []string{"-state", "TIME_WAIT,CLOSE"}, func(l string) bool {
			return strings.Contains(l, " TIME_WAIT ") || strings.Contains(l, " CLOSE ")
		}},
		{"events", []string{"-sport", "20005"}, func(l string) bool {
			return strings.Contains(l, " sport=20005 dport=443 src=") || strings.Contains(l, " sport=20005 dport=443 [UNREPLIED]")
		}},
	} {
		args := []string{"replay", "-format", c.format, "-at", "2024-05-01T12:00:15Z"}
		_, all, _ := runCmd(t, data, append(args, "-")...)
		var want strings.Builder
		for _, l := range strings.SplitAfter(all, "\n") {
			if l != "" && c.keep(l) {
				want.WriteString(l)
			}
		}
		if want.Len() == 0 {
			t.Fatalf("%s %v: no line qualifies: the case tests nothing", c.format, c.flags)
		}
		code, got, errs := runCmd(t, data, append(append(args, c.flags...), "-")...)
		if code != 0 || got != want.String() {
			t.Errorf("%s %v: status %d, stderr %q\ngot:\n%.600s\nwant:\n%.600s", c.format, c.flags, code, errs, got, want.String())
		}
	}
}

// TestFilterUsage: filters that cannot apply, and bad values, are usage
// errors naming the flag.
func TestFilterUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "-format", "summary", "-src", "1.2.3.4"}, "takes no filters"},
		{[]string{"replay", "-format", "proc", "-ct", "INVALID"}, "-ct is a packet's conntrack state"},
		{[]string{"replay", "-p", "udp"}, "-p udp: tcpct tracks TCP only"},
		{[]string{"replay", "-src", "1.2.3"}, "-src 1.2.3: want an address"},
		{[]string{"replay", "-sport", "70000"}, "-sport 70000: want a port number"},
		{[]string{"replay", "-state", "SYN_SENT3"}, "-state SYN_SENT3: not a TCP state of profile linux"},
		{[]string{"replay", "-profile", "tutorial", "-state", "SYN_SENT2"}, "not a TCP state of profile tutorial"},
		{[]string{"replay", "-ct", "OLD"}, "-ct OLD: want NEW"},
		{[]string{"replay", "-status", "SEEN_REPLY,UNREPLIED"}, "exclude each other"},
		{[]string{"replay", "-status", "CONFIRMED"}, "-status CONFIRMED: want ASSURED"},
	} {
		code, _, errs := runCmd(t, nil, append(c.args, seedPcap)...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, code, errs, exitUsage, c.want)
		}
	}
}

// TestExplainFilters: with -ct INVALID and no -conn, explain narrates the
// connection of the first INVALID packet, and only its INVALID packets;
// a filter nothing passes exits 4 with a message.
func TestExplainFilters(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	other := netip.MustParseAddrPort("10.0.0.3:40001")
	data := rawCapture(t, []packet.Segment{
		{Src: other, Dst: srv, Seq: 1, Flags: packet.SYN, Window: 64240},
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
		{Src: cli, Dst: srv, Seq: 101 + 1<<30, Ack: 901, Flags: packet.ACK, Window: 502}, // out of window: INVALID
	}, nil)
	code, out, errs := runCmd(t, data, "explain", "-ct", "INVALID", "-")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	for _, want := range []string{"connection 10.0.0.1:40000->10.0.0.2:80", "#4 ", "INVALID: SEQ is over upper bound", "3 packets of this connection not shown (filtered out)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "#1 ") || strings.Contains(out, "#2 ") {
		t.Errorf("output narrates packets the filter drops:\n%s", out)
	}
	code, _, errs = runCmd(t, data, "explain", "-ct", "INVALID", "-dport", "81", "-")
	if code != exitNoTCP || !strings.Contains(errs, "no packet passes the filters (5 TCP packets tracked)") {
		t.Errorf("nothing passes: status %d, stderr %q", code, errs)
	}
}

// TestWatchFiltersAndTimestamp: watch's events pass the filters by their
// entry (here -state selects two of the seed's seven events, -sport 23
// none, as the original tuple's source port is 1031) and get
// conntrack -E -o timestamp's prefix with -timestamp, at wall-clock time;
// summary and -ct are usage errors.
func TestWatchFiltersAndTimestamp(t *testing.T) {
	withFakeSource(t)
	before := time.Now().Unix()
	code, out, errs := runCmd(t, nil, "watch", "-i", "x", "-count", "11", "-duration", "10s", "-timestamp", "-state", "SYN_SENT,TIME_WAIT")
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	pre := regexp.MustCompile(`^\[(\d+)\.\d{6}\]\t`)
	if len(lines) != 2 || !strings.Contains(lines[0], "\t    [NEW] tcp      6 120 SYN_SENT ") || !strings.Contains(lines[1], "\t [UPDATE] tcp      6 120 TIME_WAIT ") {
		t.Fatalf("events:\n%s", out)
	}
	for _, l := range lines {
		m := pre.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("no timestamp prefix: %q", l)
		}
		if s, _ := strconv.ParseInt(m[1], 10, 64); s < before || s > time.Now().Unix() {
			t.Errorf("timestamp %s is not the wall clock's", m[1])
		}
	}
	withFakeSource(t)
	if code, out, _ := runCmd(t, nil, "watch", "-i", "x", "-count", "11", "-duration", "10s", "-sport", "23"); code != 0 || out != "" {
		t.Errorf("-sport 23: status %d, output %q; want no event", code, out)
	}
	for _, args := range [][]string{
		{"watch", "-i", "x", "-format", "summary", "-dport", "23"},
		{"watch", "-i", "x", "-ct", "INVALID"},
		{"watch", "-i", "x", "-format", "summary", "-timestamp"},
	} {
		if code, _, errs := runCmd(t, nil, args...); code != exitUsage {
			t.Errorf("%v: status %d, stderr %q; want a usage error", args, code, errs)
		}
	}
}
