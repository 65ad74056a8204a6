package tcpcttest

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// The recorded traces: the module keeps its one copy of the kernel
// recordings here, so that the kit embeds them and is self-contained (see
// testdata/README.md for how they were recorded: Linux 6.18, HZ=250). The
// cells probe is left out of the kit (tcpcttest.go says why), so the
// embedded set is named trace by trace.
//
//go:embed testdata/default.*.gz testdata/loose0.*.gz testdata/be_liberal.*.gz testdata/ignore_invalid_rst.*.gz testdata/max_retrans1.*.gz testdata/short_timeouts.*.gz
var recorded embed.FS

// Cell is the spec cell that decided the reference verdict, with its
// rationale.
type Cell struct {
	Dir     string // original, reply
	Class   string // syn, synack, fin, ack, rst, none
	Old     string // state before the packet
	Outcome string // a state, INVALID, IGNORE, or "-" when no cell was consulted
	RFC     string // RFC sections the cell rests on
	Why     string // the spec's rationale
	Reason  string // why the reference found the packet INVALID or ignored it, if it did
}

func (c Cell) String() string {
	s := fmt.Sprintf("%s %s %s → %s", c.Dir, c.Class, c.Old, c.Outcome)
	if c.Reason != "" {
		s += " (" + c.Reason + ")"
	}
	if c.RFC != "" || c.Why != "" {
		s += fmt.Sprintf("; RFC %s: %s", c.RFC, c.Why)
	}
	return s
}

// Disagreement is one packet on which the tracker and the reference differ.
type Disagreement struct {
	Trace string
	// File is the capture file the packet is in: the user's capture, or
	// the kit's copy of a recorded trace (on disk where the module's
	// source is, as go test has it); "" for a generated trace, which
	// Explain generates again.
	File string
	// Frame is the packet's frame number in the capture, counting every
	// record from 1 as Wireshark and tcpdump do; Index is the same record
	// counted from 0, as tcpct's jsonl "i" and explain -packet count.
	Frame  int
	Index  int
	Packet string // tcpdump-style summary
	Fields Field  // the fields that differ
	Want   Result
	Got    Result
	Cell   Cell
	// Explain is a shell command that replays the trace through tcpct
	// with the same sysctls and narrates the packet's connection (the
	// packet is its #Index): the reference's verdict on every packet of
	// it, with reasons and spec cells.
	Explain string
}

func (d *Disagreement) String() string {
	var b strings.Builder
	file := d.File
	if file == "" {
		file = "the generated trace"
	}
	fmt.Fprintf(&b, "%s: frame %d (record %d) of %s: %s\n", d.Trace, d.Frame, d.Index, file, d.Packet)
	for i, f := range fieldList {
		if d.Fields&f != 0 {
			fmt.Fprintf(&b, "\t%-10s want %-12s got %s\n", fieldNames[i], fieldValue(d.Want, f), fieldValue(d.Got, f))
		}
	}
	fmt.Fprintf(&b, "\twant: %v\n\tgot:  %v\n\tcell: %v", d.Want, d.Got, d.Cell)
	if d.Explain != "" {
		fmt.Fprintf(&b, "\n\texplain: %s", d.Explain)
	}
	return b.String()
}

func fieldValue(r Result, f Field) string {
	switch f {
	case FieldCT:
		return string(r.CT)
	case FieldDir:
		return string(r.Dir)
	case FieldState:
		if r.State == "" {
			return "(no entry)"
		}
		return r.State
	case FieldTimeout:
		return fmt.Sprint(r.Timeout)
	case FieldAssured:
		return fmt.Sprint(r.Assured)
	case FieldSeenReply:
		return fmt.Sprint(r.SeenReply)
	}
	return "?"
}

// FieldStat counts one field over a trace.
type FieldStat struct {
	Field           Field // which field: FieldCT, FieldDir, …
	Compared, Agree int
}

// Percent is the share of compared packets that agree (100 when none was
// compared).
func (s FieldStat) Percent() float64 {
	if s.Compared == 0 {
		return 100
	}
	return 100 * float64(s.Agree) / float64(s.Compared)
}

// TraceReport is the outcome of one trace.
type TraceReport struct {
	Name      string // "kernel/default", "generated/short_timeouts (seed 1)", "capture/x.pcap", …
	Variant   string
	File      string // the capture file ("" for a generated trace)
	Reference string // "Linux 6.18 nf_conntrack" (recorded), "tcpct linux" (generated), …
	Skipped   string // why the trace did not run; "" if it ran
	// Error says why a capture of Options.Captures could not be read (or
	// its recording); Test fails on it.
	Error    string
	Packets  int
	AllAgree int // packets on which every compared field agrees
	// Fields counts each compared field, labelled by FieldStat.Field, in
	// the order ct, dir, state, timeout, assured, seen_reply; Stat looks
	// one up.
	Fields [len(fieldList)]FieldStat
	// Diffs holds the first Options.MaxDiffs disagreements; TotalDiffs
	// counts them all.
	Diffs      []Disagreement
	TotalDiffs int
	// Patterns counts disagreements by field and value pair
	// ("ct: INVALID → ESTABLISHED"), to see at a glance where a tracker
	// departs.
	Patterns map[string]int
}

// Stat returns the statistics of field f (one of the Field constants).
func (t *TraceReport) Stat(f Field) FieldStat {
	for _, s := range t.Fields {
		if s.Field == f {
			return s
		}
	}
	return FieldStat{Field: f}
}

// Pattern is one kind of disagreement and how often it occurred.
type Pattern struct {
	Text  string // "ct: INVALID → ESTABLISHED"
	Count int
}

// TopPatterns returns the n most frequent kinds of disagreement of the
// trace (all when n <= 0), most frequent first, ties in text order.
func (t *TraceReport) TopPatterns(n int) []Pattern {
	ps := make([]Pattern, 0, len(t.Patterns))
	for k, c := range t.Patterns {
		ps = append(ps, Pattern{k, c})
	}
	slices.SortFunc(ps, func(a, b Pattern) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Text, b.Text)
	})
	if n > 0 && len(ps) > n {
		ps = ps[:n]
	}
	return ps
}

func newTraceReport() TraceReport {
	var t TraceReport
	for i, f := range fieldList {
		t.Fields[i].Field = f
	}
	return t
}

// Report is the outcome of Measure.
type Report struct {
	Tracker Field // the fields compared
	Traces  []TraceReport
}

// Agree reports whether every packet of every trace that ran agreed.
func (r *Report) Agree() bool {
	for i := range r.Traces {
		if r.Traces[i].TotalDiffs > 0 || r.Traces[i].Error != "" {
			return false
		}
	}
	return true
}

// Total sums the traces that ran.
func (r *Report) Total() TraceReport {
	t := newTraceReport()
	t.Name = "total"
	for _, tr := range r.Traces {
		if tr.Skipped != "" || tr.Error != "" {
			continue
		}
		t.Packets += tr.Packets
		t.AllAgree += tr.AllAgree
		t.TotalDiffs += tr.TotalDiffs
		for i := range t.Fields {
			t.Fields[i].Compared += tr.Fields[i].Compared
			t.Fields[i].Agree += tr.Fields[i].Agree
		}
	}
	return t
}

// WriteTable writes the agreement table as Markdown: one row per trace and
// a total, one column per field (percent agreeing; "—" for a field not
// compared).
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| trace | packets | all fields |")
	for _, n := range fieldNames {
		b.WriteString(" " + n + " |")
	}
	b.WriteString("\n|---|--:|--:|")
	for range fieldNames {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	row := func(t TraceReport) {
		if t.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |\n", t.Name, t.Skipped)
			return
		}
		if t.Error != "" {
			fmt.Fprintf(&b, "| %s | error: %s |\n", t.Name, t.Error)
			return
		}
		fmt.Fprintf(&b, "| %s | %d | %s |", t.Name, t.Packets, pct(t.AllAgree, t.Packets))
		for i, f := range fieldList {
			if r.Tracker&f == 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(&b, " %s |", pct(t.Fields[i].Agree, t.Fields[i].Compared))
		}
		b.WriteString("\n")
	}
	for _, t := range r.Traces {
		row(t)
	}
	row(r.Total())
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(a, n int) string {
	if n == 0 {
		return "n/a"
	}
	if a == n {
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(n))
}

// Test runs the traces through trackers made by newTracker (one fresh
// tracker per trace) and fails t, in a subtest per trace, for each
// disagreement with the reference (the first Options.MaxDiffs in detail,
// each naming its capture file and frame and giving a tcpct explain
// command that narrates it), then for the trace's disagreements grouped
// by kind, most frequent first, and logs the agreement table. Variants
// the tracker cannot be configured for are skipped. Failures are
// reported at the line of the caller's test that called Test.
func Test(t *testing.T, newTracker func() Tracker, opts Options) {
	t.Helper()
	r := Measure(newTracker, opts)
	for _, tr := range r.Traces {
		t.Run(tr.Name, func(t *testing.T) {
			t.Helper()
			if tr.Error != "" {
				t.Fatal(tr.Error)
			}
			if tr.Skipped != "" {
				t.Skip(tr.Skipped)
			}
			for i := range tr.Diffs {
				t.Error(tr.Diffs[i].String())
			}
			if tr.TotalDiffs > len(tr.Diffs) {
				t.Errorf("… and %d more disagreements", tr.TotalDiffs-len(tr.Diffs))
			}
			if tr.TotalDiffs > 0 {
				t.Errorf("%d of %d packets disagree with %s; most frequent:\n%s", tr.TotalDiffs, tr.Packets, tr.Reference, formatPatterns(tr.TopPatterns(10)))
			}
			t.Logf("%d packets, %d agree on every compared field", tr.Packets, tr.AllAgree)
		})
	}
	var b strings.Builder
	r.WriteTable(&b)
	t.Logf("agreement with Linux nf_conntrack (fields compared: %v):\n%s", r.Tracker, b.String())
}

// formatPatterns writes one pattern a line, its count first.
func formatPatterns(ps []Pattern) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%7d  %s\n", p.Count, p.Text)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Measure runs the traces like Test but never fails: it returns the
// agreement table, for trackers that knowingly depart from Linux.
func Measure(newTracker func() Tracker, opts Options) *Report {
	opts.defaults()
	fields := AllFields
	if c, ok := newTracker().(Capable); ok {
		fields = c.Capabilities()
	}
	if opts.Fields != 0 {
		fields &= opts.Fields
	}
	r := &Report{Tracker: fields}
	for i, v := range Variants {
		if len(opts.Variants) > 0 && !slices.Contains(opts.Variants, v.Name) {
			continue
		}
		if !opts.NoRecorded {
			r.Traces = append(r.Traces, runRecorded(newTracker, v, fields, &opts))
		}
		if !opts.NoGenerated {
			r.Traces = append(r.Traces, runGenerated(newTracker, v, opts.Seed+uint64(i), fields, &opts))
		}
	}
	for _, c := range opts.Captures {
		r.Traces = append(r.Traces, runCapture(newTracker, c, fields, &opts))
	}
	return r
}

// packet is one trace record: its number in the capture, link type,
// bytes, length on the wire and capture time.
type packet struct {
	index   int
	link    capture.LinkType
	data    []byte
	origLen int
	ts      time.Time
}

func gunzip(name string) ([]byte, error) {
	f, err := recorded.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

func readPcap(b []byte) ([]packet, error) {
	cr, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []packet
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if p.Link != capture.LinkRaw {
			return nil, fmt.Errorf("record %d: link type %v, want raw IP", p.Index, p.Link)
		}
		out = append(out, packet{p.Index, p.Link, append([]byte(nil), p.Data...), p.OrigLen, p.Timestamp()})
	}
}

// readCaptureFile reads every record of a capture file.
func readCaptureFile(path string) ([]packet, error) {
	cr, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	var out []packet
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, packet{p.Index, p.Link, append([]byte(nil), p.Data...), p.OrigLen, p.Timestamp()})
	}
}

// readRecording reads a kernel recording (jsonl, gzip-compressed if its
// name ends in .gz) into the expected results by record number.
func readRecording(path string) (map[int]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		r = z
	}
	lines, err := compare.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return wantOf(lines), nil
}

func wantOf(lines []compare.Line) map[int]*Result {
	want := make(map[int]*Result, len(lines))
	for _, l := range lines {
		r := Result{CT: CT(l.CT), Dir: Dir(l.Dir), State: l.State, Assured: l.Assured, SeenReply: l.SeenReply}
		if l.Timeout != nil {
			r.Timeout = *l.Timeout
		}
		want[l.I] = &r
	}
	return want
}

// recordingFor finds the kernel recording next to a capture: the same
// name with .jsonl or .jsonl.gz for its capture extension.
func recordingFor(path string) string {
	stem := strings.TrimSuffix(path, ".gz")
	for _, ext := range []string{".pcapng", ".pcap", ".cap"} {
		if strings.HasSuffix(stem, ext) {
			stem = strings.TrimSuffix(stem, ext)
			break
		}
	}
	for _, ext := range []string{".jsonl", ".jsonl.gz"} {
		if _, err := os.Stat(stem + ext); err == nil {
			return stem + ext
		}
	}
	return ""
}

// embeddedPath is where a recorded trace embedded in the kit lives on
// disk: next to this source file, which go test builds from a checkout or
// the module cache. When that cannot be found (a -trimpath build), the
// trace's path inside the module.
func embeddedPath(name string) string {
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "testdata", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "github.com/fdac824a/tcpct/tcpcttest/testdata/" + name
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// origin is where a trace's packets come from, for the explain command.
type origin struct {
	file string // the capture file, or ""
	gen  string // the command that writes a generated trace to stdout, or ""
}

// explainCommand is the tcpct command that narrates record index of the
// trace, with the variant's sysctls.
func (o origin) explainCommand(index int, sysctls [][2]string) string {
	var b strings.Builder
	if o.gen != "" {
		b.WriteString(o.gen + " | ")
	}
	b.WriteString("tcpct explain -packet " + strconv.Itoa(index))
	for _, kv := range sysctls {
		b.WriteString(" -sysctl " + shellQuote(kv[0]+"="+kv[1]))
	}
	if o.file != "" {
		b.WriteString(" " + shellQuote(o.file))
	} else {
		b.WriteString(" -")
	}
	return b.String()
}

// configure makes a fresh tracker for variant v, or says why it cannot.
func configure(newTracker func() Tracker, v Variant) (Tracker, string) {
	tr := newTracker()
	if len(v.Sysctls) == 0 {
		return tr, ""
	}
	s, ok := tr.(Sysctler)
	if !ok {
		return nil, "tracker has no sysctls (implement tcpcttest.Sysctler)"
	}
	for _, kv := range v.Sysctls {
		if err := s.SetSysctl(kv[0], kv[1]); err != nil {
			return nil, fmt.Sprintf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	return tr, ""
}

func runRecorded(newTracker func() Tracker, v Variant, fields Field, o *Options) TraceReport {
	rep := newTraceReport()
	rep.Name, rep.Variant, rep.Reference = "kernel/"+v.Name, v.Name, "Linux 6.18 nf_conntrack"
	rep.File = embeddedPath(v.Name + ".pcap.gz")
	tr, why := configure(newTracker, v)
	if why != "" {
		rep.Skipped = why
		return rep
	}
	pb, err := gunzip("testdata/" + v.Name + ".pcap.gz")
	if err != nil {
		panic("tcpcttest: embedded trace: " + err.Error())
	}
	pkts, err := readPcap(pb)
	if err != nil {
		panic("tcpcttest: embedded trace: " + err.Error())
	}
	jb, err := gunzip("testdata/" + v.Name + ".jsonl.gz")
	if err != nil {
		panic("tcpcttest: embedded trace: " + err.Error())
	}
	lines, err := compare.Read(bytes.NewReader(jb))
	if err != nil {
		panic("tcpcttest: embedded trace: " + err.Error())
	}
	run(&rep, tr, v, pkts, wantOf(lines), fields, o, origin{file: rep.File})
	return rep
}

func runGenerated(newTracker func() Tracker, v Variant, seed uint64, fields Field, o *Options) TraceReport {
	rep := newTraceReport()
	rep.Name, rep.Variant, rep.Reference = "generated/"+v.Name, v.Name, "tcpct linux"
	tr, why := configure(newTracker, v)
	if why != "" {
		rep.Skipped = why
		return rep
	}
	cfg := tracegen.Config{Seed: seed, Packets: o.Packets}
	if v.pause > 0 {
		cfg.Pause = v.pause
	}
	if fields&ICMPErrors != 0 {
		cfg.ICMP = icmpShare
	}
	var pkts []packet
	for i, p := range tracegen.Generate(cfg) {
		pkts = append(pkts, packet{i, capture.LinkRaw, p.Data, len(p.Data), p.TS})
	}
	// cmd/tracegen writes the same trace (its other settings'
	// defaults are tracegen.Config's).
	cmd := fmt.Sprintf("go run github.com/fdac824a/tcpct/cmd/tracegen -seed %d -packets %d", seed, o.Packets)
	if cfg.Pause > 0 {
		cmd += " -pause " + cfg.Pause.String()
	}
	if cfg.ICMP > 0 {
		cmd += fmt.Sprintf(" -icmp %v", cfg.ICMP)
	}
	rep.Name += fmt.Sprintf(" (seed %d)", seed)
	run(&rep, tr, v, pkts, nil, fields, o, origin{gen: cmd})
	return rep
}

// runCapture runs one of the user's captures, against the kernel's
// recording when there is one, else against tcpct's linux profile.
func runCapture(newTracker func() Tracker, c Capture, fields Field, o *Options) TraceReport {
	rep := newTraceReport()
	rep.Name, rep.Variant, rep.File = "capture/"+filepath.Base(c.Path), "capture", c.Path
	v := Variant{Name: filepath.Base(c.Path), Sysctls: c.Sysctls}
	pkts, err := readCaptureFile(c.Path)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	kernel := c.Kernel
	if kernel == "" {
		kernel = recordingFor(c.Path)
	}
	var want map[int]*Result
	if kernel != "" {
		if want, err = readRecording(kernel); err != nil {
			rep.Error = err.Error()
			return rep
		}
		rep.Reference = "Linux nf_conntrack (recorded in " + kernel + ")"
	} else {
		rep.Reference = "tcpct linux (the spec; no kernel recording)"
	}
	tr, why := configure(newTracker, v)
	if why != "" {
		rep.Skipped = why
		return rep
	}
	run(&rep, tr, v, pkts, want, fields, o, origin{file: c.Path})
	return rep
}

// run replays pkts through the reference (tcpct's linux profile with the
// variant's sysctls) and the tracker, and compares. want, when not nil,
// overrides the reference's results (the kernel's recorded verdicts);
// the reference still supplies the spec cell.
func run(rep *TraceReport, tr Tracker, v Variant, pkts []packet, want map[int]*Result, fields Field, o *Options, from origin) {
	var knobs []string
	for _, kv := range v.Sysctls {
		knobs = append(knobs, kv[0]+"="+kv[1])
	}
	ref, err := tcpct.New(tcpct.Config{Profile: "linux", Knobs: knobs, Seed: 1})
	if err != nil {
		panic("tcpcttest: reference: " + err.Error())
	}
	var cp capture.Packet
	for _, p := range pkts {
		i := p.index
		cp.Decode(p.link, p.data, p.origLen)
		if fields&ICMPErrors != 0 && tcpct.IsICMP(&cp) {
			runICMP(rep, tr, ref, &cp, i, p.ts, want, fields, o, from, v)
			continue
		}
		if cp.Kind != capture.KindTCP {
			continue
		}
		seg := fsm.ParseSegment(cp.TCP, cp.IPPayloadLen)
		rv := ref.TrackSegment(cp.SrcAddrPort(), cp.DstAddrPort(), &seg, p.ts)
		w := resultOf(&rv)
		if want != nil {
			k, ok := want[i]
			if !ok {
				continue // the kernel recorded no verdict for this record
			}
			w = *k
		}
		in := Packet{Index: i, Time: p.ts, IP: cp.IP, TCP: cp.TCP,
			Src: netip.AddrPortFrom(cp.Src, cp.SrcPort), Dst: netip.AddrPortFrom(cp.Dst, cp.DstPort),
			PayloadLen: int(seg.Len), HeaderLen: int(seg.HdrLen)}
		if len(cp.TCP) >= 20 {
			t := cp.TCP
			in.Seq = be32(t[4:])
			in.Ack = be32(t[8:])
			in.Flags = t[13]
			in.Window = uint16(t[14])<<8 | uint16(t[15])
		}
		rep.tally(w, tr.Track(&in), fields, o, from, v, i, &cp, &rv)
	}
}

// icmpShare is the share of generated packets followed by an ICMP error
// for trackers that take them (tracegen.Config.ICMP).
const icmpShare = 0.1

// runICMP runs one ICMP error through the reference and the tracker and
// compares, as run does for a TCP packet.
func runICMP(rep *TraceReport, tr Tracker, ref *tcpct.Tracker, cp *capture.Packet, i int, ts time.Time, want map[int]*Result, fields Field, o *Options, from origin, v Variant) {
	rv, err := ref.Track(cp.IP, ts)
	if err != nil {
		return
	}
	w := resultOf(&rv)
	if want != nil {
		k, ok := want[i]
		if !ok {
			return
		}
		w = *k
	}
	rep.tally(w, tr.Track(&Packet{Index: i, Time: ts, IP: cp.IP, ICMP: true}), fields, o, from, v, i, cp, &rv)
}

// tally compares the tracker's result for packet i with the expected one
// and counts it: agreement, or a disagreement by field pattern, kept in
// full for the first Options.MaxDiffs. rv is the reference's verdict (its
// spec cell names the disagreement).
func (rep *TraceReport) tally(w, got Result, fields Field, o *Options, from origin, v Variant, i int, cp *capture.Packet, rv *tcpct.Verdict) {
	rep.Packets++
	diff := compareResults(w, got, fields, o.TimeoutTolerance, &rep.Fields)
	if diff == 0 {
		rep.AllAgree++
		return
	}
	rep.TotalDiffs++
	if rep.Patterns == nil {
		rep.Patterns = map[string]int{}
	}
	for j, f := range fieldList {
		if diff&f != 0 {
			rep.Patterns[fieldNames[j]+": "+fieldValue(w, f)+" → "+fieldValue(got, f)]++
		}
	}
	if len(rep.Diffs) < o.MaxDiffs {
		rep.Diffs = append(rep.Diffs, Disagreement{Trace: rep.Name, File: from.file, Frame: i + 1, Index: i,
			Packet: tracegen.Summary(cp.IP), Fields: diff, Want: w, Got: got, Cell: cellOf(rv),
			Explain: from.explainCommand(i, v.Sysctls)})
	}
}

// resultOf converts a tcpct verdict the way the kernel runner records one.
func resultOf(v *tcpct.Verdict) Result {
	r := Result{CT: CT(v.CT.String())}
	if v.CT != fsm.CTInvalid {
		r.Dir = Dir(v.Dir.String())
	}
	if v.Entry {
		r.State, r.Timeout, r.Assured, r.SeenReply = v.StateName(), v.SecondsLeft(), v.Assured, v.SeenReply
	}
	return r
}

func cellOf(v *tcpct.Verdict) Cell {
	c := Cell{Dir: v.Dir.String(), Class: v.ClassName(), Old: v.OldName(), Outcome: v.CellName(), Reason: v.ReasonText()}
	if d, ok := v.Doc(); ok {
		c.RFC, c.Why = d.RFC, d.Reason
	}
	return c
}

// compareResults returns the compared fields on which want and got differ
// and counts every compared field in st.
func compareResults(want, got Result, fields Field, tol int64, st *[len(fieldList)]FieldStat) Field {
	var diff Field
	for i, f := range fieldList {
		if fields&f == 0 {
			continue
		}
		var same bool
		switch f {
		case FieldCT:
			same = want.CT == got.CT
		case FieldDir:
			if want.CT == Invalid || got.CT == Invalid {
				continue
			}
			same = want.Dir == got.Dir
		case FieldState:
			same = want.State == got.State
		case FieldTimeout:
			if want.State == "" || got.State == "" {
				continue
			}
			d := want.Timeout - got.Timeout
			if d < 0 {
				d = -d
			}
			same = d <= max(tol, 0)
		case FieldAssured:
			same = want.Assured == got.Assured
		case FieldSeenReply:
			same = want.SeenReply == got.SeenReply
		}
		st[i].Compared++
		if same {
			st[i].Agree++
		} else {
			diff |= f
		}
	}
	return diff
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
