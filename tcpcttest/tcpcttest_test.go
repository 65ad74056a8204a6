package tcpcttest_test

import (
	"strings"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/tcpcttest"
)

// The reference itself, through the kit: every variant, both kinds of
// trace, every field must agree. This pins the embedded traces, the
// adapter plumbing and the comparison at once.
func TestTcpctAgrees(t *testing.T) {
	tcpcttest.Test(t, newTcpct, tcpcttest.Options{})
	r := tcpcttest.Measure(newTcpct, tcpcttest.Options{})
	if got, want := len(r.Traces), 2*len(tcpcttest.Variants); got != want {
		t.Fatalf("%d traces ran, want %d", got, want)
	}
	tot := r.Total()
	if tot.Packets < 40000 || tot.AllAgree != tot.Packets {
		t.Errorf("total: %d packets, %d agree; want all of ≥ 40000", tot.Packets, tot.AllAgree)
	}
}

// liberalBroken is a deliberately broken tracker: it lets through what
// Linux marks INVALID (as ESTABLISHED, in the original direction) and never
// sets ASSURED.
type liberalBroken struct{ tcpcttest.Tracker }

func (b liberalBroken) SetSysctl(name, value string) error {
	return b.Tracker.(tcpcttest.Sysctler).SetSysctl(name, value)
}

func (b liberalBroken) Track(p *tcpcttest.Packet) tcpcttest.Result {
	r := b.Tracker.Track(p)
	if r.CT == tcpcttest.Invalid {
		r.CT, r.Dir = tcpcttest.Established, tcpcttest.Original
	}
	r.Assured = false
	return r
}

func TestBrokenTrackerDisagrees(t *testing.T) {
	r := tcpcttest.Measure(func() tcpcttest.Tracker { return liberalBroken{newTcpct()} },
		tcpcttest.Options{Variants: []string{"default"}, MaxDiffs: 3})
	if r.Agree() {
		t.Fatal("a tracker that accepts INVALID packets and never assures agreed with Linux")
	}
	kern := r.Traces[0]
	if kern.Name != "kernel/default" || kern.TotalDiffs == 0 || len(kern.Diffs) != 3 {
		t.Fatalf("kernel/default: %d diffs (%d kept), want some, 3 kept", kern.TotalDiffs, len(kern.Diffs))
	}
	// Both kinds of mistake are counted against the right field only.
	for i, name := range []string{"ct", "dir", "state", "timeout", "assured", "seen_reply"} {
		fs := kern.Fields[i]
		broken := name == "ct" || name == "assured"
		if broken != (fs.Agree < fs.Compared) {
			t.Errorf("field %s: %d of %d agree; broken=%v", name, fs.Agree, fs.Compared, broken)
		}
	}
	// Each ct disagreement carries the spec cell and its rationale.
	var sawCT bool
	for _, tr := range r.Traces {
		for _, d := range tr.Diffs {
			if d.Fields&tcpcttest.FieldCT == 0 {
				continue
			}
			sawCT = true
			if d.Want.CT != tcpcttest.Invalid || d.Got.CT != tcpcttest.Established {
				t.Errorf("%s: want/got %v/%v", d.Trace, d.Want, d.Got)
			}
			if d.Cell.Class == "" || d.Cell.Reason == "" || d.Packet == "" {
				t.Errorf("disagreement without context: %+v", d)
			}
			s := d.String()
			for _, w := range []string{"packet", "want INVALID", "got ESTABLISHED", "cell:"} {
				if !strings.Contains(s, w) {
					t.Errorf("report %q lacks %q", s, w)
				}
			}
		}
	}
	if !sawCT {
		t.Error("no ct disagreement kept in detail")
	}
	var b strings.Builder
	r.WriteTable(&b)
	if !strings.Contains(b.String(), "| total |") {
		t.Errorf("table without total:\n%s", b.String())
	}
}

// noTimers is tcpct seen through a tracker that has no timers and no
// sysctls: its timeouts are garbage and must not be compared, and the
// sysctl variants are skipped.
type noTimers struct{ tcpcttest.Tracker }

func (n noTimers) Capabilities() tcpcttest.Field {
	return tcpcttest.AllFields &^ tcpcttest.FieldTimeout
}

func (n noTimers) Track(p *tcpcttest.Packet) tcpcttest.Result {
	r := n.Tracker.Track(p)
	r.Timeout = 12345
	return r
}

func TestCapabilities(t *testing.T) {
	r := tcpcttest.Measure(func() tcpcttest.Tracker { return noTimers{newTcpct()} }, tcpcttest.Options{Packets: 1000})
	if !r.Agree() {
		t.Errorf("timeouts were compared although not declared")
	}
	ran := 0
	for _, tr := range r.Traces {
		if tr.Variant == "default" {
			ran++
			if tr.Skipped != "" || tr.Fields[3].Compared != 0 {
				t.Errorf("%s: skipped %q, %d timeouts compared", tr.Name, tr.Skipped, tr.Fields[3].Compared)
			}
		} else if !strings.Contains(tr.Skipped, "Sysctler") {
			t.Errorf("%s ran without a way to set its sysctls", tr.Name)
		}
	}
	if ran != 2 {
		t.Errorf("%d default traces ran, want 2", ran)
	}
}

// icmpAware is tcpct behind the kit, asking for ICMP errors too; with
// noRelated it calls every ICMP error INVALID, as a tracker that does
// not model them would.
type icmpAware struct {
	tcpctAdapter // the example's adapter (example_test.go)
	noRelated    bool
}

func (a *icmpAware) Capabilities() tcpcttest.Field { return tcpcttest.AllFields | tcpcttest.ICMPErrors }

func (a *icmpAware) Track(p *tcpcttest.Packet) tcpcttest.Result {
	if p.ICMP && a.noRelated {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	return a.tcpctAdapter.Track(p)
}

// TestICMPErrors: a tracker that asks for ICMP errors gets generated
// traces with them and is compared on RELATED; tcpct agrees, one that
// never says RELATED does not.
func TestICMPErrors(t *testing.T) {
	opts := tcpcttest.Options{Variants: []string{"default"}, NoRecorded: true, Packets: 2000}
	good := tcpcttest.Measure(func() tcpcttest.Tracker {
		tr, _ := tcpct.New(tcpct.Config{})
		return &icmpAware{tcpctAdapter: tcpctAdapter{tr: tr}}
	}, opts)
	if !good.Agree() {
		t.Errorf("tcpct disagrees with itself on ICMP errors: %+v", good.Total())
	}
	bad := tcpcttest.Measure(func() tcpcttest.Tracker {
		tr, _ := tcpct.New(tcpct.Config{})
		return &icmpAware{tcpctAdapter: tcpctAdapter{tr: tr}, noRelated: true}
	}, opts)
	pats := bad.Traces[0].Patterns
	if bad.Agree() || pats["ct: RELATED → INVALID"] == 0 {
		t.Errorf("a tracker without RELATED passed: %+v", pats)
	}
	t.Logf("generated with ICMP errors: %d packets; without RELATED: %v", good.Total().Packets, pats)
}
