package tcpcttest_test

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/tcpcttest"
)

// toy is a naive tracker written from scratch, the kind a kit user starts
// with: a SYN opens a connection, anything else on a known connection is
// ESTABLISHED, an RST closes it, and there are no windows, timeouts or
// status bits. It disagrees with Linux in many ways, which is what the
// tests below need.
type toy struct {
	conns map[[2]netip.AddrPort]*toyConn
}

type toyConn struct {
	orig    netip.AddrPort // the SYN's sender
	state   string
	replied bool
}

func newToy() tcpcttest.Tracker { return &toy{conns: map[[2]netip.AddrPort]*toyConn{}} }

func (*toy) Capabilities() tcpcttest.Field {
	return tcpcttest.FieldCT | tcpcttest.FieldDir | tcpcttest.FieldState
}

func (t *toy) Track(p *tcpcttest.Packet) tcpcttest.Result {
	const syn, rst, ack, fin = 0x02, 0x04, 0x10, 0x01
	k := [2]netip.AddrPort{p.Src, p.Dst}
	if p.Dst.Addr().Less(p.Src.Addr()) || (p.Dst.Addr() == p.Src.Addr() && p.Dst.Port() < p.Src.Port()) {
		k = [2]netip.AddrPort{p.Dst, p.Src}
	}
	c := t.conns[k]
	if c == nil {
		if p.Flags&(syn|ack|rst) != syn {
			return tcpcttest.Result{CT: tcpcttest.Invalid}
		}
		c = &toyConn{orig: p.Src, state: "SYN_SENT"}
		t.conns[k] = c
		return tcpcttest.Result{CT: tcpcttest.New, Dir: tcpcttest.Original, State: c.state}
	}
	dir := tcpcttest.Original
	if p.Src != c.orig {
		dir = tcpcttest.Reply
		c.replied = true
	}
	switch {
	case p.Flags&rst != 0:
		delete(t.conns, k)
		return tcpcttest.Result{CT: tcpcttest.Established, Dir: dir}
	case p.Flags&fin != 0:
		c.state = "FIN_WAIT"
	case c.replied && c.state == "SYN_SENT":
		c.state = "ESTABLISHED"
	}
	return tcpcttest.Result{CT: tcpcttest.Established, Dir: dir, State: c.state}
}

// Each disagreement names its capture file (on disk) and its frame, and
// carries a tcpct explain command for it; a generated trace's command
// generates the trace again.
func TestDisagreementNamesFileFrameAndCommand(t *testing.T) {
	r := tcpcttest.Measure(newToy, tcpcttest.Options{Variants: []string{"default"}, MaxDiffs: 3})
	if len(r.Traces) != 2 {
		t.Fatalf("%d traces, want kernel/default and generated/default", len(r.Traces))
	}
	kern, gen := r.Traces[0], r.Traces[1]
	if !strings.HasSuffix(kern.File, filepath.Join("tcpcttest", "testdata", "default.pcap.gz")) {
		t.Errorf("kernel/default: File %q", kern.File)
	}
	if _, err := os.Stat(kern.File); err != nil {
		t.Errorf("kernel/default: the file named cannot be opened: %v", err)
	}
	if kern.TotalDiffs == 0 || gen.TotalDiffs == 0 || len(kern.Diffs) != 3 {
		t.Fatalf("the toy tracker agreed with Linux: %d, %d disagreements", kern.TotalDiffs, gen.TotalDiffs)
	}
	for _, d := range kern.Diffs {
		if d.File != kern.File || d.Frame != d.Index+1 {
			t.Errorf("%s record %d: file %q frame %d", d.Trace, d.Index, d.File, d.Frame)
		}
		want := "tcpct explain -packet " + strconv.Itoa(d.Index) + " " + kern.File
		if d.Explain != want {
			t.Errorf("explain command %q, want %q", d.Explain, want)
		}
		s := d.String()
		for _, w := range []string{"kernel/default: frame " + strconv.Itoa(d.Frame) + " (record " + strconv.Itoa(d.Index) + ") of " + kern.File + ": ", "\texplain: " + want} {
			if !strings.Contains(s, w) {
				t.Errorf("report lacks %q:\n%s", w, s)
			}
		}
	}
	for _, d := range gen.Diffs {
		want := "go run github.com/fdac824a/tcpct/cmd/tracegen -seed 1 -packets 4000 | tcpct explain -packet " + strconv.Itoa(d.Index) + " -"
		if d.File != "" || d.Explain != want {
			t.Errorf("generated: file %q, explain %q; want none, %q", d.File, d.Explain, want)
		}
		if !strings.Contains(d.String(), "of the generated trace: ") {
			t.Errorf("generated report: %s", d.String())
		}
	}
	// Sysctls of the variant are in the command, quoted for the shell.
	r = tcpcttest.Measure(func() tcpcttest.Tracker { return liberalBroken{newTcpct()} },
		tcpcttest.Options{Variants: []string{"short_timeouts"}, MaxDiffs: 1, NoRecorded: true})
	d := r.Traces[0].Diffs[0]
	if !strings.Contains(d.Explain, "-pause 1.3s | tcpct explain -packet "+strconv.Itoa(d.Index)+" -sysctl tcp_timeout_close=1 -sysctl ") {
		t.Errorf("short_timeouts: %q", d.Explain)
	}
}

// Per-field statistics are labelled: Stat finds a field by name, and the
// counts are those of the right field.
func TestFieldStatsLabelled(t *testing.T) {
	r := tcpcttest.Measure(newToy, tcpcttest.Options{Variants: []string{"default"}, NoGenerated: true})
	tr := r.Traces[0]
	for i, name := range []string{"ct", "dir", "state", "timeout", "assured", "seen_reply"} {
		if got := tr.Fields[i].Field.String(); got != name {
			t.Errorf("Fields[%d] is labelled %q, want %q", i, got, name)
		}
	}
	if s := tr.Stat(tcpcttest.FieldTimeout); s.Field != tcpcttest.FieldTimeout || s.Compared != 0 {
		t.Errorf("timeout (not a capability of the toy): %+v", s)
	}
	if s := tr.Stat(tcpcttest.FieldCT); s.Compared != tr.Packets || s.Agree == s.Compared {
		t.Errorf("ct: %+v of %d packets; want all compared, some disagreeing", s, tr.Packets)
	}
	tot := r.Total()
	if tot.Stat(tcpcttest.FieldState) != (tcpcttest.FieldStat{Field: tcpcttest.FieldState, Compared: tr.Stat(tcpcttest.FieldState).Compared, Agree: tr.Stat(tcpcttest.FieldState).Agree}) {
		t.Errorf("total state %+v, trace %+v", tot.Stat(tcpcttest.FieldState), tr.Stat(tcpcttest.FieldState))
	}
	top := tr.TopPatterns(3)
	if len(top) != 3 || top[0].Count < top[1].Count || top[1].Count < top[2].Count || top[0].Count != maxCount(tr.Patterns) {
		t.Errorf("top patterns %+v", top)
	}
}

func maxCount(m map[string]int) int {
	n := 0
	for _, c := range m {
		n = max(n, c)
	}
	return n
}

// The user's own captures: with a kernel recording next to them, against
// the kernel; without one, against the spec (tcpct's linux profile); any
// link type capture reads; sysctls applied to both sides.
func TestUserCaptures(t *testing.T) {
	dir := t.TempDir()
	cp := func(from, to string) string {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, to)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mine := cp("testdata/loose0.pcap.gz", "mine.pcap.gz")
	cp("testdata/loose0.jsonl.gz", "mine.jsonl.gz")
	eth := cp("../examples/out-of-window.pcap", "window.pcap") // Ethernet, no recording
	loose0 := [][2]string{{"tcp_loose", "0"}}

	only := tcpcttest.Options{NoRecorded: true, NoGenerated: true}
	opts := only
	opts.Captures = []tcpcttest.Capture{{Path: mine, Sysctls: loose0}, {Path: eth}}
	r := tcpcttest.Measure(newTcpct, opts)
	if len(r.Traces) != 2 || !r.Agree() {
		t.Fatalf("tcpct on the user's captures: %d traces, agree %v: %+v", len(r.Traces), r.Agree(), r.Traces)
	}
	rec, spec := r.Traces[0], r.Traces[1]
	if rec.Name != "capture/mine.pcap.gz" || rec.Reference != "Linux nf_conntrack (recorded in "+filepath.Join(dir, "mine.jsonl.gz")+")" || rec.Packets != 4001 {
		t.Errorf("recorded capture: %q, reference %q, %d packets", rec.Name, rec.Reference, rec.Packets)
	}
	if spec.Reference != "tcpct linux (the spec; no kernel recording)" || spec.Packets != 17 {
		t.Errorf("unrecorded capture: reference %q, %d packets", spec.Reference, spec.Packets)
	}

	// The recording was made with tcp_loose=0: without it the kernel's
	// verdicts and tcpct's differ.
	opts.Captures = []tcpcttest.Capture{{Path: mine}}
	if r := tcpcttest.Measure(newTcpct, opts); r.Agree() {
		t.Error("the loose0 recording agreed with tcpct at tcp_loose=1: the sysctls are not applied")
	}

	// The toy fails on the out-of-window packet (frame 11, record 10),
	// which it accepts; the command narrates it.
	opts.Captures = []tcpcttest.Capture{{Path: eth}}
	r = tcpcttest.Measure(newToy, opts)
	var found bool
	for _, d := range r.Traces[0].Diffs {
		if d.Index == 10 {
			found = true
			if d.Frame != 11 || d.File != eth || d.Want.CT != tcpcttest.Invalid || d.Explain != "tcpct explain -packet 10 "+eth ||
				!strings.Contains(d.Cell.Reason, "SEQ is over upper bound") {
				t.Errorf("out-of-window packet: %+v", d)
			}
		}
	}
	if !found {
		t.Errorf("no disagreement on the out-of-window packet: %+v", r.Traces[0].Diffs)
	}

	// A capture that cannot be read is an error, not a pass.
	opts.Captures = []tcpcttest.Capture{{Path: filepath.Join(dir, "missing.pcap")}}
	r = tcpcttest.Measure(newTcpct, opts)
	if r.Agree() || !strings.Contains(r.Traces[0].Error, "missing.pcap") {
		t.Errorf("missing capture: agree %v, error %q", r.Agree(), r.Traces[0].Error)
	}
}

// TestToyThroughTest is what a kit user writes; it fails (the toy is
// naive), so it runs only as the subprocess of TestTestOutput.
func TestToyThroughTest(t *testing.T) {
	if os.Getenv("TCPCTTEST_TOY") != "1" {
		t.Skip("run by TestTestOutput")
	}
	opts := tcpcttest.Options{Variants: []string{"default"}, NoGenerated: true, MaxDiffs: 2,
		Captures: []tcpcttest.Capture{{Path: "../examples/out-of-window.pcap"}}}
	tcpcttest.Test(t, newToy, opts)
}

// TestTestOutput runs TestToyThroughTest and reads what `go test` shows
// a user: every failure at the line of the user's call (t.Helper), with
// its file, frame and explain command, and the disagreements grouped by
// kind, most frequent first.
func TestTestOutput(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestToyThroughTest$", "-test.v")
	cmd.Env = append(os.Environ(), "TCPCTTEST_TOY=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the toy tracker passed Test:\n%s", out)
	}
	src, err := os.ReadFile("debug_test.go")
	if err != nil {
		t.Fatal(err)
	}
	callLine := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.TrimSpace(l) == "tcpcttest.Test(t, newToy, opts)" && callLine == 0 {
			callLine = i + 1
		}
	}
	at := "debug_test.go:" + strconv.Itoa(callLine) + ": "
	s := string(out)
	for _, w := range []string{
		"--- FAIL: TestToyThroughTest/kernel/default",
		"--- FAIL: TestToyThroughTest/capture/out-of-window.pcap",
		at + "kernel/default: frame ",
		"\texplain: tcpct explain -packet ",
		at + "capture/out-of-window.pcap: frame 11 (record 10) of ../examples/out-of-window.pcap: ",
		"\texplain: tcpct explain -packet 10 ../examples/out-of-window.pcap",
		"packets disagree with Linux 6.18 nf_conntrack; most frequent:",
		"packets disagree with tcpct linux (the spec; no kernel recording); most frequent:",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("go test output lacks %q", w)
		}
	}
	if strings.Contains(s, "run.go:") {
		t.Error("a failure is reported at a line of the kit (run.go), not of the caller")
	}
	// The grouped lines: a count and a "field: want → got" pair, counts
	// not increasing.
	m := regexp.MustCompile(`most frequent:\n((?:\s+\d+  \S+: .* → .*\n)+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no grouped disagreements in:\n%s", s)
	}
	prev := 1 << 30
	for _, l := range strings.Split(strings.TrimSpace(m[1]), "\n") {
		n, err := strconv.Atoi(strings.Fields(l)[0])
		if err != nil || n > prev {
			t.Errorf("pattern line %q out of order", l)
		}
		prev = n
	}
	if testing.Verbose() {
		t.Logf("go test output of the toy:\n%s", bytes.TrimSpace(out))
	}
}
