package bench

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/tcpcttest"
)

// TestGVisorICMP measures gVisor on the kit's generated traces with ICMP
// errors: it never says RELATED (it has no such state), so every error
// Linux relates to a connection is a departure; the test asserts that the
// errors were compared and that this departure is the one found.
func TestGVisorICMP(t *testing.T) {
	r := tcpcttest.Measure(func() tcpcttest.Tracker { g := NewGVisor(false); g.ICMP = true; return g },
		tcpcttest.Options{NoRecorded: true, MaxDiffs: 3})
	plain := tcpcttest.Measure(func() tcpcttest.Tracker { return NewGVisor(false) },
		tcpcttest.Options{NoRecorded: true, MaxDiffs: 3})
	if r.Total().Packets <= plain.Total().Packets {
		t.Fatalf("no ICMP errors compared: %d packets with, %d without", r.Total().Packets, plain.Total().Packets)
	}
	var b strings.Builder
	r.WriteTable(&b)
	t.Logf("gVisor with ICMP errors (%d packets, %d without them):\n%s", r.Total().Packets, plain.Total().Packets, b.String())
	related := 0
	for _, tr := range r.Traces {
		for k, n := range tr.Patterns {
			if strings.HasPrefix(k, "ct: RELATED → ") {
				related += n
				t.Logf("%s: %d × %s", tr.Name, n, k)
			}
		}
	}
	if related == 0 {
		t.Errorf("no RELATED verdict of Linux was reported as a departure")
	}
}

// TestGVisorAgreement measures gVisor's tcpconntrack against Linux with the
// conformance kit, in both mappings of the adapter, and prints the
// agreement table (bench/README.md has it). Where gVisor departs from Linux
// that is a finding, not a failure: the test only asserts that the kit ran
// the traces gVisor can be set up for and produced numbers.
func TestGVisorAgreement(t *testing.T) {
	for _, v := range []struct {
		name string
		drop bool
	}{{"netstack", false}, {"tcb-drop-invalid", true}} {
		t.Run(v.name, func(t *testing.T) {
			r := tcpcttest.Measure(func() tcpcttest.Tracker { return NewGVisor(v.drop) },
				tcpcttest.Options{MaxDiffs: 3})
			tot := r.Total()
			if tot.Packets < 8000 {
				t.Fatalf("only %d packets compared", tot.Packets)
			}
			ran := 0
			for _, tr := range r.Traces {
				if tr.Skipped == "" {
					ran++
				}
			}
			if ran != 2 { // gVisor has no sysctls: default variant only
				t.Errorf("%d traces ran, want 2 (kernel/default, generated/default)", ran)
			}
			var b strings.Builder
			r.WriteTable(&b)
			t.Logf("gVisor tcpconntrack (%s mapping) vs Linux, fields %v:\n%s", v.name, r.Tracker, b.String())
			for _, tr := range r.Traces {
				if tr.Skipped != "" {
					continue
				}
				type kv struct {
					k string
					n int
				}
				var ps []kv
				for k, n := range tr.Patterns {
					ps = append(ps, kv{k, n})
				}
				sort.Slice(ps, func(i, j int) bool { return ps[i].n > ps[j].n || ps[i].n == ps[j].n && ps[i].k < ps[j].k })
				var pb strings.Builder
				for _, p := range ps[:min(len(ps), 12)] {
					fmt.Fprintf(&pb, "\t%5d  %s\n", p.n, p.k)
				}
				t.Logf("%s: most frequent departures (Linux → gVisor):\n%s", tr.Name, pb.String())
				for _, d := range tr.Diffs {
					t.Logf("example disagreement:\n%s", d.String())
				}
			}
		})
	}
}
