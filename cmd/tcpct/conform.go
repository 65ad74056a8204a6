package main

// tcpct conform: how does the running kernel differ from a profile? It
// generates the conformance suite's probe traces (package tracegen: the
// cell-by-cell probe and a short random differential), asks the running
// kernel's nf_conntrack for its verdict on every packet in a throw-away
// network namespace (package kernel, through askKernel, which only Linux
// sets), tracks the same packets with the chosen profile through the
// shipped packet path (walk, as explain does), and reports per spec cell
// whether the two agree.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

const conformUsage = `usage: tcpct conform [-profile linux|tutorial | -spec FILE] [-sysctl NAME=VALUE]...
                     [-format text|jsonl] [-seed N] [-cells N] [-packets N]
                     [-save DIR] [-progress auto|always|never]

Asks the running kernel how it differs from a profile (root, Linux). In
throw-away network namespaces, one per trace, each deleted after its
trace (also on an error or an interrupt), it sends two generated traces through
the kernel's nf_conntrack and records the kernel's verdict on every
packet: the cell probe (every connection drives itself into one TCP state
and sends one in-window packet of one class from one side, so that the
transition table decides) and a short random differential (handshakes,
data, retransmissions, out-of-window segments, RSTs, closes, port reuse).
The same packets go through the tracker with the chosen profile (or
-spec FILE) and the same -sysctl knobs, which are also set in the
namespace; the two are compared packet by packet on ct, dir, state,
timeout (within 1 s), assured and seen_reply, as the conformance suite
compares them.

Each packet is tallied under the spec cell the profile consulted for it
(direction/class/old state). A difference is charged to the cell of the
first packet of its connection on which the kernel disagrees; the later
packets of that connection follow from the first difference and are
neither tallied nor charged. Packets decided before the table (bad flag
combinations, malformed headers) are tallied under "outside the table".

Flags:
  -profile P      profile to compare with: %PROFILES% (default linux)
  -spec FILE      compare with the spec in FILE (an edited spec/linux.spec)
  -sysctl K=V     knob for the tracker and sysctl for the kernel's namespace
                  (repeatable; names as -sysctl of replay); the profiles' knobs:
%KNOBS%  -format F       text (default): one line per cell, the first differing
                  packet of a differing cell with both verdicts and explain's
                  narration of it; jsonl: one object per cell, then a summary
  -seed N         seed of both traces (default 0: the recorded traces' seeds,
                  cells 107 and differential 101, so a run is repeatable)
  -cells N        packets of the cell probe (default 3000: every cell
                  scenario about three times; it pauses 2.5 s per batch)
  -packets N      packets of the differential (default 4000; 0: none)
  -save DIR       also write the traces and the kernel's verdicts to DIR:
                  cells.pcap, cells.kernel.jsonl, differential.pcap,
                  differential.kernel.jsonl (tcpct explain DIR/cells.pcap
                  -packet N narrates a reported packet's connection)
  -progress M     progress lines on stderr: auto (when stderr is a
                  terminal, the default), always or never

A run takes about 15 s, mostly the probe's pauses.

Exit status: 0 the kernel agrees on every packet; 1 usage error; 3 the
output cannot be written; 5 the kernel differs (at least one cell, or a
packet decided outside the table); 6 the kernel cannot be asked: not
root, no nft or ip command (apt-get install nftables iproute2), no
network namespaces, not Linux, or the run failed or was interrupted.
`

// Exit statuses of conform beyond the shared ones.
const (
	exitDiffers  = 5 // the kernel differs from the profile
	exitNoKernel = 6 // the kernel cannot be asked
)

// The kernel oracle, set by conform_linux.go. kernelAvailable says why the
// kernel cannot be asked here (nil: it can); askKernel runs the packets
// through the running kernel's conntrack in a throw-away namespace, with
// the sysctls set there, and returns its verdicts as jsonl lines (one per
// TCP packet, "i" its index in pkts); kernelRelease names the kernel.
var (
	kernelAvailable = func() error { return errors.New("the kernel oracle needs Linux") }
	askKernel       func(ctx context.Context, pkts []tracegen.Packet, sysctls map[string]string) ([]compare.Line, error)
	kernelRelease   = func() string { return "unknown" }
)

// conformTrace is one probe trace.
type conformTrace struct {
	name string
	cfg  tracegen.Config
}

// cellStat is the tally of one cell (or of "outside the table").
type cellStat struct {
	probed, differ int
	first          *cellDiff // the first packet charged to the cell
}

// cellDiff is a packet on which the kernel and the profile differ.
type cellDiff struct {
	trace   string
	i       int
	fields  []string
	kernel  string // the kernel's jsonl line
	tcpct   string // the tracker's
	explain string // explain's narration of the packet
}

// conformRun is a run's outcome.
type conformRun struct {
	p        *fsm.Profile
	cells    []cellStat // by cellIndex
	outside  cellStat
	packets  int // TCP packets compared
	agree    int // on every field
	followOn int // differing packets after their connection's first difference
	traces   []conformTrace
	counts   []int // packets per trace
}

func (r *conformRun) nStates() int  { return len(r.p.StateNames) }
func (r *conformRun) nClasses() int { return len(r.p.ClassNames) }

// cellIndex numbers the cells in table order: direction, class, state.
func (r *conformRun) cellIndex(d fsm.Dir, c fsm.Class, s fsm.State) int {
	return (int(d)*r.nClasses()+int(c))*r.nStates() + int(s)
}

// cellOf is the inverse of cellIndex.
func (r *conformRun) cellOf(k int) (fsm.Dir, fsm.Class, fsm.State) {
	s := k % r.nStates()
	c := k / r.nStates() % r.nClasses()
	return fsm.Dir(k / r.nStates() / r.nClasses()), fsm.Class(c), fsm.State(s)
}

func (r *conformRun) cellName(k int) string {
	d, c, s := r.cellOf(k)
	return d.String() + "/" + r.p.ClassName(c) + "/" + r.p.StateName(s)
}

func conform(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	var tf trackerFlags
	tf.registerTracker(fs)
	format := fs.String("format", "text", "`format`: text or jsonl")
	seed := fs.Uint64("seed", 0, "seed of both traces (0: the recorded seeds)")
	cells := fs.Int("cells", 3000, "packets of the cell probe")
	packets := fs.Int("packets", 4000, "packets of the differential (0: none)")
	save := fs.String("save", "", "write the traces and the kernel's verdicts to `DIR`")
	progressMode := fs.String("progress", "auto", "progress lines on stderr: auto, always or never")
	usage := strings.Replace(withKnobs(conformUsage), "%PROFILES%", strings.Join(tcpct.ProfileNames(), ", "), 1)
	pos, code, done := parseFlags(fs, args, usage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		return usageErr(stderr, "conform", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *format != "text" && *format != "jsonl" {
		return usageErr(stderr, "conform", fmt.Errorf("-format: unknown format %q (want text or jsonl)", *format))
	}
	if err := checkProgressMode(*progressMode); err != nil {
		return usageErr(stderr, "conform", err)
	}
	if *cells < 1 || *packets < 0 {
		return usageErr(stderr, "conform", fmt.Errorf("-cells %d -packets %d: want at least one cell probe packet and no negative count", *cells, *packets))
	}
	tr, err := tf.tracker()
	if err != nil {
		return usageErr(stderr, "conform", err)
	}
	sysctls, err := kernelSysctls(tr.Profile(), tf.sysctl)
	if err != nil {
		return usageErr(stderr, "conform", err)
	}
	if err := kernelAvailable(); err != nil {
		fmt.Fprintf(stderr, "tcpct conform: cannot ask the kernel: %v\n", err)
		return exitNoKernel
	}

	traces := []conformTrace{{"cells", recordedConfig("cells")}}
	traces[0].cfg.Packets = *cells
	if *packets > 0 {
		traces = append(traces, conformTrace{"differential", recordedConfig("default")})
		traces[1].cfg.Packets = *packets
	}
	if *seed != 0 {
		for i := range traces {
			traces[i].cfg.Seed = *seed
		}
	}
	progress := *progressMode == "always" || *progressMode == "auto" && isTerminal(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := &conformRun{p: tr.Profile(), traces: traces}
	run.cells = make([]cellStat, 2*run.nClasses()*run.nStates())
	for _, t := range traces {
		pkts := tracegen.Generate(t.cfg)
		var pcap bytes.Buffer
		if err := tracegen.WritePcap(&pcap, pkts); err != nil {
			fmt.Fprintf(stderr, "tcpct conform: %v\n", err)
			return exitNoKernel
		}
		if progress {
			span := pkts[len(pkts)-1].TS.Sub(pkts[0].TS)
			fmt.Fprintf(stderr, "tcpct conform: %s: %d packets through the kernel (paced, %.1f s of capture time)\n", t.name, len(pkts), span.Seconds())
		}
		t0 := time.Now()
		kern, err := askKernel(ctx, pkts, sysctls)
		if err != nil {
			if ctx.Err() != nil {
				err = errors.New("interrupted (the namespace was deleted)")
			}
			fmt.Fprintf(stderr, "tcpct conform: asking the kernel (%s): %v\n", t.name, err)
			return exitNoKernel
		}
		if progress {
			fmt.Fprintf(stderr, "tcpct conform: %s: %d verdicts in %.1f s\n", t.name, len(kern), time.Since(t0).Seconds())
		}
		if *save != "" {
			if err := saveTrace(*save, t.name, pcap.Bytes(), kern); err != nil {
				fmt.Fprintf(stderr, "tcpct conform: -save: %v\n", err)
				return exitOutput
			}
		}
		raw := make([][]byte, len(pkts))
		for i := range pkts {
			raw[i] = pkts[i].Data
		}
		if err := run.add(&tf, t.name, pcap.Bytes(), kern, compare.FlowKeys(raw)); err != nil {
			fmt.Fprintf(stderr, "tcpct conform: %s: %v\n", t.name, err)
			return exitNoKernel
		}
		run.counts = append(run.counts, len(pkts))
	}

	w := bufio.NewWriter(stdout)
	if *format == "jsonl" {
		run.writeJSONL(w)
	} else {
		run.writeText(w, &tf)
	}
	if err := w.Flush(); err != nil {
		return outputFailed(stderr, "conform", err)
	}
	if run.differs() {
		return exitDiffers
	}
	return exitOK
}

// recordedConfig is the generator configuration of a recorded kernel
// trace (tracegen.Recordings).
func recordedConfig(name string) tracegen.Config {
	for _, r := range tracegen.Recordings {
		if r.Name == name {
			return r.Config
		}
	}
	panic("no recorded trace " + name)
}

// kernelSysctls turns -sysctl settings into the namespace's sysctls,
// each under the profile's name for the knob, which is the kernel's
// sysctl name without its nf_conntrack_ prefix (the runner adds it).
func kernelSysctls(p *fsm.Profile, kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, err := splitKnob(kv)
		if err != nil {
			return nil, err
		}
		i := p.KnobIndex(k)
		if i < 0 {
			return nil, fmt.Errorf("-sysctl: unknown knob %q for profile %s", k, p.Name)
		}
		m[p.Knobs[i].Name] = v
	}
	return m, nil
}

// add compares one trace: pcap is the trace, kern the kernel's verdicts
// and keys the connection of every packet (compare.FlowKeys).
func (r *conformRun) add(tf *trackerFlags, name string, pcap []byte, kern []compare.Line, keys map[int]string) error {
	// The tracker's verdicts, through the packet path replay and explain
	// use, with the cell each packet consulted.
	tr, err := tf.tracker()
	if err != nil {
		return err
	}
	cr, err := capture.NewReader(bytes.NewReader(pcap))
	if err != nil {
		return err
	}
	var ours []compare.Line
	cellAt := map[int]int{}            // packet index -> cell, -1 outside the table
	original := map[string]tcpct.Key{} // connection -> its entry's original tuple
	res := walk(cr, tr, atSpec{}, func(pi *pktInfo, p *capture.Packet, v *tcpct.Verdict) bool {
		ours = append(ours, verdictLine(p.Index, v))
		c := -1
		if v.Cell != fsm.CellNone {
			d := v.Dir
			if o, ok := original[keys[p.Index]]; ok && v.Action == fsm.Recreate && o != pi.key {
				// A reopening SYN's verdict has the new entry's
				// direction; the cell was looked up in the old
				// entry's, where the packet was a reply.
				d = fsm.Reply
			}
			c = r.cellIndex(d, v.Class, v.Old)
		}
		cellAt[p.Index] = c
		if v.Entry {
			original[keys[p.Index]] = v.Key
		}
		return true
	})
	if res.err != nil {
		return res.err
	}
	rep := compare.Compare(kern, ours, compare.Options{MaxDiffs: len(kern) + len(ours) + 1, Keys: keys})
	r.packets += rep.Packets
	r.agree += rep.AllAgree

	// The first difference of each connection is charged to its cell.
	firstOf := map[string]int{}
	charged := map[int]*compare.Diff{}
	for k := range rep.Diffs {
		d := &rep.Diffs[k]
		if d.Key != "" {
			if _, seen := firstOf[d.Key]; seen {
				r.followOn++
				continue
			}
			firstOf[d.Key] = d.I
		}
		charged[d.I] = d
	}
	narrations := r.narrate(tf, pcap, charged)
	for _, l := range ours {
		if f, ok := firstOf[keys[l.I]]; ok && keys[l.I] != "" && l.I > f {
			continue // follows from an earlier difference
		}
		st := r.stat(cellAt[l.I])
		st.probed++
		if d := charged[l.I]; d != nil {
			st.differ++
			if st.first == nil {
				st.first = &cellDiff{trace: name, i: d.I, fields: d.Fields, kernel: rawLine(d.A), tcpct: rawLine(d.B), explain: narrations[d.I]}
			}
		}
	}
	// A packet only the kernel has (not one the tracker tracks) is a
	// difference outside the table.
	for k := range rep.Diffs {
		d := &rep.Diffs[k]
		if d.B == nil && charged[d.I] == d {
			st := &r.outside
			st.probed++
			st.differ++
			if st.first == nil {
				st.first = &cellDiff{trace: name, i: d.I, fields: d.Fields, kernel: rawLine(d.A), tcpct: rawLine(d.B)}
			}
		}
	}
	return nil
}

func (r *conformRun) stat(cell int) *cellStat {
	if cell < 0 {
		return &r.outside
	}
	return &r.cells[cell]
}

// narrate replays the trace again and returns explain's narration of each
// packet in want.
func (r *conformRun) narrate(tf *trackerFlags, pcap []byte, want map[int]*compare.Diff) map[int]string {
	out := map[int]string{}
	if len(want) == 0 {
		return out
	}
	tr, err := tf.tracker()
	if err != nil {
		return out
	}
	cr, err := capture.NewReader(bytes.NewReader(pcap))
	if err != nil {
		return out
	}
	walk(cr, tr, atSpec{}, func(_ *pktInfo, p *capture.Packet, v *tcpct.Verdict) bool {
		if want[p.Index] != nil {
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			seg := tcpct.SegmentOf(p)
			narrate(w, tr, p, &seg, v, 0, 0)
			w.Flush()
			out[p.Index] = strings.Trim(b.String(), "\n")
		}
		return true
	})
	return out
}

// verdictLine is the tracker's verdict in the jsonl form the kernel
// runner records (the fields compare reads).
func verdictLine(i int, v *tcpct.Verdict) compare.Line {
	l := compare.VerdictLine(i, v)
	b, _ := json.Marshal(l)
	l.Raw = string(b)
	return l
}

func rawLine(l *compare.Line) string {
	if l == nil {
		return "<no verdict>"
	}
	return l.Raw
}

// differs reports whether any packet differed.
func (r *conformRun) differs() bool {
	if r.outside.differ > 0 {
		return true
	}
	for _, c := range r.cells {
		if c.differ > 0 {
			return true
		}
	}
	return false
}

// tally counts the cells that agree, differ and were never reached.
func (r *conformRun) tally() (agree, differ, unprobed int) {
	for _, c := range r.cells {
		switch {
		case c.differ > 0:
			differ++
		case c.probed > 0:
			agree++
		default:
			unprobed++
		}
	}
	return
}

func (c *cellStat) result() string {
	switch {
	case c.differ > 0:
		return "DIFFERS"
	case c.probed > 0:
		return "agrees"
	}
	return "not probed"
}

func (r *conformRun) profileName() string { return r.p.Name }

func (r *conformRun) writeText(w *bufio.Writer, tf *trackerFlags) {
	what := "profile " + r.profileName()
	if tf.spec != "" {
		what = "spec " + tf.spec + " (profile " + r.profileName() + ")"
	}
	fmt.Fprintf(w, "tcpct conform: kernel %s against %s", kernelRelease(), what)
	if len(tf.sysctl) > 0 {
		fmt.Fprintf(w, ", -sysctl %s", strings.Join(tf.sysctl, " "))
	}
	fmt.Fprintln(w)
	for i, t := range r.traces {
		fmt.Fprintf(w, "  %-12s %5d packets, seed %d\n", t.name, r.counts[i], t.cfg.Seed)
	}
	fmt.Fprintf(w, "  %d packets compared, %d agree on every field (ct, dir, state, timeout within 1 s, assured, seen_reply)\n\n", r.packets, r.agree)
	fmt.Fprintf(w, "%-28s %-12s %7s  %s\n", "cell (dir/class/old state)", "profile", "packets", "kernel")
	line := func(name, outcome string, c *cellStat) {
		res := c.result()
		if c.differ > 0 {
			res = fmt.Sprintf("DIFFERS on %d", c.differ)
		}
		fmt.Fprintf(w, "%-28s %-12s %7d  %s\n", name, outcome, c.probed, res)
		if d := c.first; d != nil {
			fmt.Fprintf(w, "    first: %s packet %d; %s differ\n", d.trace, d.i, strings.Join(d.fields, ", "))
			fmt.Fprintf(w, "      kernel %s\n      tcpct  %s\n", d.kernel, d.tcpct)
			for _, l := range strings.Split(d.explain, "\n") {
				if l != "" {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
		}
	}
	for k := range r.cells {
		d, c, s := r.cellOf(k)
		line(r.cellName(k), r.p.OutcomeName(r.p.Cell(d, c, s)), &r.cells[k])
	}
	line("outside the table", "-", &r.outside)
	agree, differ, unprobed := r.tally()
	fmt.Fprintf(w, "\n%d cells: %d agree, %d differ, %d not probed (no packet of the probe reaches them)\n", len(r.cells), agree, differ, unprobed)
	if r.followOn > 0 {
		fmt.Fprintf(w, "%d more differing packets follow from an earlier difference on their connection (not charged)\n", r.followOn)
	}
	if r.differs() {
		fmt.Fprintf(w, "the kernel differs from %s\n", what)
		fmt.Fprintf(w, "(tcpct conform -save DIR keeps the traces: tcpct explain -packet N DIR/TRACE.pcap narrates a packet's connection)\n")
	} else {
		fmt.Fprintf(w, "the kernel agrees with %s on every packet\n", what)
	}
}

// conformCellJSON is one jsonl line of conform.
type conformCellJSON struct {
	Cell    string           `json:"cell"`
	Dir     string           `json:"dir,omitempty"`
	Class   string           `json:"class,omitempty"`
	State   string           `json:"state,omitempty"`
	Outcome string           `json:"outcome"`
	Packets int              `json:"packets"`
	Differ  int              `json:"differ"`
	Result  string           `json:"result"` // agrees, differs, not probed
	First   *conformDiffJSON `json:"first,omitempty"`
}

type conformDiffJSON struct {
	Trace   string          `json:"trace"`
	I       int             `json:"i"`
	Fields  []string        `json:"fields"`
	Kernel  json.RawMessage `json:"kernel"`
	Tcpct   json.RawMessage `json:"tcpct"`
	Explain string          `json:"explain"`
}

type conformSummaryJSON struct {
	Summary  bool   `json:"summary"`
	Kernel   string `json:"kernel"`
	Profile  string `json:"profile"`
	Packets  int    `json:"packets"`
	Agree    int    `json:"agree"`
	Cells    int    `json:"cells"`
	Agreeing int    `json:"cells_agree"`
	Differ   int    `json:"cells_differ"`
	Unprobed int    `json:"cells_not_probed"`
	FollowOn int    `json:"follow_on"`
	Differs  bool   `json:"differs"`
}

func (r *conformRun) writeJSONL(w *bufio.Writer) {
	enc := json.NewEncoder(w)
	emit := func(j conformCellJSON, c *cellStat) {
		j.Packets, j.Differ = c.probed, c.differ
		j.Result = strings.ToLower(c.result())
		if d := c.first; d != nil {
			j.First = &conformDiffJSON{Trace: d.trace, I: d.i, Fields: d.fields, Kernel: rawJSON(d.kernel), Tcpct: rawJSON(d.tcpct), Explain: d.explain}
		}
		enc.Encode(j)
	}
	for k := range r.cells {
		d, c, s := r.cellOf(k)
		emit(conformCellJSON{Cell: r.cellName(k), Dir: d.String(), Class: r.p.ClassName(c), State: r.p.StateName(s),
			Outcome: r.p.OutcomeName(r.p.Cell(d, c, s))}, &r.cells[k])
	}
	emit(conformCellJSON{Cell: "outside the table", Outcome: "-"}, &r.outside)
	agree, differ, unprobed := r.tally()
	enc.Encode(conformSummaryJSON{Summary: true, Kernel: kernelRelease(), Profile: r.profileName(), Packets: r.packets, Agree: r.agree,
		Cells: len(r.cells), Agreeing: agree, Differ: differ, Unprobed: unprobed, FollowOn: r.followOn, Differs: r.differs()})
}

func rawJSON(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return json.RawMessage("null")
}

// saveTrace writes a trace and the kernel's verdicts on it into dir.
func saveTrace(dir, name string, pcap []byte, kern []compare.Line) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pcap"), pcap, 0o644); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, l := range kern {
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return os.WriteFile(filepath.Join(dir, name+".kernel.jsonl"), b.Bytes(), 0o644)
}
