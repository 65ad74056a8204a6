// Package compare compares two per-packet jsonl streams in the format of
// `tcpct replay -format jsonl` (cmd/tcpct/README.md, "jsonl"): usually the
// kernel's (cmd/ktrace) against the tracker's. It knows nothing about the
// tracker's implementation; it matches lines by packet index "i" and
// reports, field by field, how often the two agree, and the first
// disagreements with their context.
//
// Fields compared: ct, dir, state, timeout, assured, seen_reply. A field
// that is omitted counts as its zero value (no dir, no state, no timeout,
// false), so "no entry" on one side and an entry on the other is a state
// and timeout disagreement. The reason text is never compared (kernel log
// wording and the tracker's few words differ by design); whether a reason
// is present is counted for information only.
//
// Timeouts agree when they differ by at most Options.TimeoutTolerance
// seconds (default 1). Why a tolerance is needed: the kernel reports
// seconds left as floor(jiffies left / HZ) at the moment of the ctnetlink
// read, which comes a few microseconds after the packet; when a jiffy
// (4 ms at HZ=250) ticks in between, a freshly set timeout T reads T-1.
// And the kernel runs on the wall clock while the tracker runs on capture
// timestamps, which the runner follows closely but never exactly (it can
// lag, never lead). A tolerance of 1 s absorbs both; an off-by-more is a
// real disagreement (a wrong timeout class, or a refresh that did or did
// not happen).
package compare

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Line is one jsonl record.
type Line struct {
	I         int    `json:"i"`
	CT        string `json:"ct"`
	Dir       string `json:"dir,omitempty"`
	State     string `json:"state,omitempty"`
	Timeout   *int64 `json:"timeout,omitempty"`
	Assured   bool   `json:"assured,omitempty"`
	SeenReply bool   `json:"seen_reply,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Raw       string `json:"-"` // the line as read
}

// Read reads a jsonl stream. Blank lines are skipped; a line that is not
// a JSON object with an "i" is an error naming its line number.
func Read(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		var l Line
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &probe); err != nil {
			return out, fmt.Errorf("line %d: %v", n, err)
		}
		if _, ok := probe["i"]; !ok {
			return out, fmt.Errorf("line %d: no \"i\" field", n)
		}
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return out, fmt.Errorf("line %d: %v", n, err)
		}
		l.Raw = s
		out = append(out, l)
	}
	return out, sc.Err()
}

// Fields are the compared fields, in report order.
var Fields = []string{"ct", "dir", "state", "timeout", "assured", "seen_reply"}

// Options tune a comparison.
type Options struct {
	// TimeoutTolerance in seconds (default 1; negative means exact).
	TimeoutTolerance int64
	// MaxDiffs is how many disagreeing packets to keep in the report
	// (default 10).
	MaxDiffs int
	// Context is how many earlier lines of the same connection to show
	// with each disagreement (default 4).
	Context int
	// Keys optionally gives each packet index a connection key (see
	// FlowKeys); without it the context is simply the preceding lines.
	Keys map[int]string
}

// Diff is one disagreeing packet.
type Diff struct {
	I      int
	Fields []string // which fields disagree ("missing" if one side lacks the line)
	A, B   *Line    // nil when missing on that side
	// Context holds up to Options.Context earlier packet indexes of the
	// same connection, oldest first, with both sides' lines.
	Context []Pair
	Key     string
}

// Pair is one packet's two lines.
type Pair struct {
	I    int
	A, B *Line
}

// FieldStat counts one field.
type FieldStat struct {
	Name     string
	Agree    int
	Disagree int
}

// Report is the outcome of Compare.
type Report struct {
	NameA, NameB string
	Packets      int // indexes present on either side
	OnlyA, OnlyB int // indexes present on one side only
	AllAgree     int // packets on which every field agrees
	Fields       []FieldStat
	ReasonA      int // lines with a reason, per side (information only)
	ReasonB      int
	Diffs        []Diff
	TotalDiffs   int
	// ByField counts, for each disagreeing field, the most common
	// (A value -> B value) pairs, to see patterns at a glance.
	Patterns map[string]map[string]int
}

// Agree reports whether every packet agreed on every field.
func (r *Report) Agree() bool { return r.TotalDiffs == 0 }

func val(l *Line, f string) string {
	if l == nil {
		return "<missing>"
	}
	switch f {
	case "ct":
		return l.CT
	case "dir":
		return l.Dir
	case "state":
		return l.State
	case "timeout":
		if l.Timeout == nil {
			return ""
		}
		return fmt.Sprint(*l.Timeout)
	case "assured":
		return fmt.Sprint(l.Assured)
	case "seen_reply":
		return fmt.Sprint(l.SeenReply)
	}
	return ""
}

func fieldAgrees(a, b *Line, f string, tol int64) bool {
	if f == "timeout" && a.Timeout != nil && b.Timeout != nil {
		d := *a.Timeout - *b.Timeout
		if d < 0 {
			d = -d
		}
		return d <= max(tol, 0)
	}
	return val(a, f) == val(b, f)
}

// Compare compares two streams.
func Compare(a, b []Line, o Options) *Report {
	if o.TimeoutTolerance == 0 {
		o.TimeoutTolerance = 1
	}
	if o.MaxDiffs <= 0 {
		o.MaxDiffs = 10
	}
	if o.Context <= 0 {
		o.Context = 4
	}
	ma, mb := index(a), index(b)
	var idx []int
	for i := range ma {
		idx = append(idx, i)
	}
	for i := range mb {
		if _, ok := ma[i]; !ok {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	rep := &Report{NameA: "a", NameB: "b", Packets: len(idx), Patterns: map[string]map[string]int{}}
	stats := make([]FieldStat, len(Fields))
	for k, f := range Fields {
		stats[k].Name = f
	}
	history := map[string][]int{} // connection key -> indexes so far
	for n, i := range idx {
		la, lb := ma[i], mb[i]
		key := ""
		if o.Keys != nil {
			key = o.Keys[i]
		}
		if la != nil && la.Reason != "" {
			rep.ReasonA++
		}
		if lb != nil && lb.Reason != "" {
			rep.ReasonB++
		}
		var bad []string
		switch {
		case la == nil:
			rep.OnlyB++
			bad = []string{"missing"}
		case lb == nil:
			rep.OnlyA++
			bad = []string{"missing"}
		default:
			for k, f := range Fields {
				if fieldAgrees(la, lb, f, o.TimeoutTolerance) {
					stats[k].Agree++
				} else {
					stats[k].Disagree++
					bad = append(bad, f)
					p := rep.Patterns[f]
					if p == nil {
						p = map[string]int{}
						rep.Patterns[f] = p
					}
					if f == "timeout" {
						p[timeoutClass(la, lb)]++
					} else {
						p[fmt.Sprintf("%s -> %s", orNone(val(la, f)), orNone(val(lb, f)))]++
					}
				}
			}
		}
		if len(bad) == 0 {
			rep.AllAgree++
		} else {
			rep.TotalDiffs++
			if len(rep.Diffs) < o.MaxDiffs {
				d := Diff{I: i, Fields: bad, A: la, B: lb, Key: key}
				var prev []int
				if o.Keys != nil {
					prev = history[key]
				} else {
					prev = idx[max(0, n-o.Context):n]
				}
				for _, j := range prev[max(0, len(prev)-o.Context):] {
					d.Context = append(d.Context, Pair{I: j, A: ma[j], B: mb[j]})
				}
				rep.Diffs = append(rep.Diffs, d)
			}
		}
		if o.Keys != nil {
			history[key] = append(history[key], i)
		}
	}
	rep.Fields = stats
	return rep
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// timeoutClass summarises a timeout disagreement: the two values when at
// least one is small (they name the timeout class), else the difference.
func timeoutClass(a, b *Line) string {
	if a.Timeout == nil || b.Timeout == nil {
		return fmt.Sprintf("%s -> %s", orNone(val(a, "timeout")), orNone(val(b, "timeout")))
	}
	return fmt.Sprintf("%d -> %d", *a.Timeout, *b.Timeout)
}

func index(ls []Line) map[int]*Line {
	m := make(map[int]*Line, len(ls))
	for k := range ls {
		m[ls[k].I] = &ls[k]
	}
	return m
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "packets: %d (only in %s: %d, only in %s: %d)\n", r.Packets, r.NameA, r.OnlyA, r.NameB, r.OnlyB)
	pct := func(n, d int) float64 {
		if d == 0 {
			return 100
		}
		return 100 * float64(n) / float64(d)
	}
	fmt.Fprintf(bw, "all fields agree: %d/%d (%.2f%%)\n", r.AllAgree, r.Packets, pct(r.AllAgree, r.Packets))
	for _, f := range r.Fields {
		fmt.Fprintf(bw, "  %-10s agree %d/%d (%.2f%%)\n", f.Name, f.Agree, f.Agree+f.Disagree, pct(f.Agree, f.Agree+f.Disagree))
	}
	fmt.Fprintf(bw, "lines with a reason: %s %d, %s %d (not compared)\n", r.NameA, r.ReasonA, r.NameB, r.ReasonB)
	for _, f := range Fields {
		p := r.Patterns[f]
		if len(p) == 0 {
			continue
		}
		type kv struct {
			k string
			n int
		}
		var l []kv
		for k, n := range p {
			l = append(l, kv{k, n})
		}
		sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || l[i].n == l[j].n && l[i].k < l[j].k })
		fmt.Fprintf(bw, "%s disagreements (%s -> %s):", f, r.NameA, r.NameB)
		for _, x := range l[:min(len(l), 6)] {
			fmt.Fprintf(bw, " [%s]×%d", x.k, x.n)
		}
		fmt.Fprintln(bw)
	}
	if r.TotalDiffs > 0 {
		fmt.Fprintf(bw, "%d disagreeing packets; the first %d:\n", r.TotalDiffs, len(r.Diffs))
	}
	line := func(l *Line) string {
		if l == nil {
			return "<missing>"
		}
		return l.Raw
	}
	for _, d := range r.Diffs {
		fmt.Fprintf(bw, "\npacket %d: %s differ", d.I, strings.Join(d.Fields, ", "))
		if d.Key != "" {
			fmt.Fprintf(bw, " (connection %s)", d.Key)
		}
		fmt.Fprintln(bw)
		for _, c := range d.Context {
			fmt.Fprintf(bw, "    %-6s %s\n    %-6s %s\n", r.NameA, line(c.A), r.NameB, line(c.B))
		}
		fmt.Fprintf(bw, "  > %-6s %s\n  > %-6s %s\n", r.NameA, line(d.A), r.NameB, line(d.B))
	}
	return bw.Flush()
}
