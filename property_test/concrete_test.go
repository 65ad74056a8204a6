package property

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/invariant"
	"github.com/fdac824a/tcpct/spec"
)

// concrete is one state of the bounded concrete check: the Conn (deadline
// kept relative to now) and the simulated endpoints.
type concrete struct {
	c    fsm.Conn
	conv invariant.Conv
}

type concreteNode struct {
	parent int
	label  string
}

var concreteKinds = []invariant.Kind{invariant.KSyn, invariant.KSynAck, invariant.KAck, invariant.KData, invariant.KFin, invariant.KRst, invariant.KRstAck}

// exploreConcrete runs a BFS of the real fsm on one connection to depth,
// with segments drawn from the small sequence domain (exact, in window,
// below, above, zero), checking every invariant on every step and that
// every concrete step is an edge of the abstract machine (refinement).
func exploreConcrete(t tb, m *fsm.Machine, edges map[absEdge]bool, depth int, full bool) (states, steps int, rate float64) {
	ctx, err := invariant.NewContext(m)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return exploreConcreteCtx(t, ctx, edges, depth, full)
}

// exploreConcreteCtx is exploreConcrete with the invariants of ctx (whose
// machine it explores).
func exploreConcreteCtx(t tb, ctx *invariant.Context, edges map[absEdge]bool, depth int, full bool) (states, steps int, rate float64) {
	m := ctx.M

	const now = 1000 * second
	start := concrete{conv: *invariant.NewConv(0xfffffff0, 7000)} // the originator's sequence numbers wrap
	seen := map[concrete]bool{start: true}
	nodes := []concreteNode{{parent: -1}}
	type item struct {
		s concrete
		n int
	}
	frontier := []item{{start, 0}}
	began := time.Now()
	missing := 0
	for d := 0; d < depth && len(frontier) > 0; d++ {
		var next []item
		for _, it := range frontier {
			for _, dir := range []fsm.Dir{fsm.Original, fsm.Reply} {
				for _, kind := range concreteKinds {
					for _, mode := range modesFor(kind, full) {
						conv := it.s.conv
						seg := conv.Segment(dir, kind, mode, 100, 0)
						before := it.s.c
						if before.Live() {
							before.Deadline += now
						}
						after := before
						d := dir
						if !before.Live() {
							d = fsm.Original
						}
						v := m.Step(&after, &seg, d, now)
						steps++
						st := stepOf(before, after, d, seg, now, v)
						label := dir.String() + " " + kind.String() + " " + mode.String()
						if err := ctx.CheckStep(&st); err != nil {
							t.Fatalf("%s: concrete counterexample:%s\n\t-> %s seq=%d ack=%d: %v\n\tverdict %+v", m.Profile().Name, concretePath(nodes, it.n), label, seg.Seq, seg.Ack, err, v)
						}
						if edges != nil {
							e := absEdge{From: alpha(&before), To: alpha(&after), Dir: d, Flags: seg.Flags &^ spec.PSH, CT: v.CT, Action: v.Action, Ignored: v.Ignored}
							if !edges[e] {
								missing++
								if missing <= 5 {
									t.Errorf("%s: concrete step is no abstract transition:%s\n\t-> %s seq=%d ack=%d: %+v\n\tverdict %+v", m.Profile().Name, concretePath(nodes, it.n), label, seg.Seq, seg.Ack, e, v)
								}
							}
						}
						// A pause past the deadline: the entry is gone.
						if after.Live() {
							late := after
							seg2 := conv.Segment(dir, invariant.KAck, invariant.SeqExact, 0, 0)
							if v2 := m.Step(&late, &seg2, d, after.Deadline); !v2.Expired {
								t.Fatalf("%s: entry not expired at its deadline:%s\n\t-> %s: %+v", m.Profile().Name, concretePath(nodes, it.n), label, v2)
							}
						}
						ns := concrete{c: after, conv: conv}
						if ns.c.Live() {
							ns.c.Deadline -= now
						}
						if !seen[ns] {
							seen[ns] = true
							nodes = append(nodes, concreteNode{parent: it.n, label: label})
							next = append(next, item{ns, len(nodes) - 1})
						}
					}
				}
			}
		}
		frontier = next
	}
	if missing > 0 {
		t.Errorf("%d concrete steps outside the abstract machine", missing)
	}
	return len(seen), steps, float64(len(seen)) / time.Since(began).Seconds()
}

// modesFor is the sequence domain of a kind: all five for RSTs and, with
// full, for every kind; otherwise exact and the two out-of-window modes.
func modesFor(k invariant.Kind, full bool) []invariant.SeqMode {
	if full || k == invariant.KRst || k == invariant.KRstAck {
		return []invariant.SeqMode{invariant.SeqExact, invariant.SeqInWindow, invariant.SeqBelow, invariant.SeqAbove, invariant.SeqZero}
	}
	if k == invariant.KSyn || k == invariant.KSynAck {
		return []invariant.SeqMode{invariant.SeqExact, invariant.SeqAbove}
	}
	return []invariant.SeqMode{invariant.SeqExact, invariant.SeqBelow, invariant.SeqAbove}
}

func concretePath(nodes []concreteNode, i int) string {
	var lines []string
	for ; i > 0; i = nodes[i].parent {
		lines = append([]string{nodes[i].label}, lines...)
	}
	return joinTrace(append([]string{"(no entry)"}, lines...))
}

// TestConcreteBounded: the real fsm, one connection, every sequence of
// depth packets over the small sequence domain (deduplicated by state).
func TestConcreteBounded(t *testing.T) {
	// Default: depth 5 (about 4 s). TCPCT_LONG=1: depth 6 (about 30 s,
	// 2 GB). TCPCT_DEPTH=n and TCPCT_FULL=1 (all five sequence modes for
	// every kind) override.
	depth, full := 5, os.Getenv("TCPCT_FULL") == "1"
	if long() {
		depth = 6
	}
	if d := os.Getenv("TCPCT_DEPTH"); d != "" {
		depth, _ = strconv.Atoi(d)
	}
	for _, ks := range []knobSet{
		{Profile: "linux", Loose: true, MaxRetrans: 3},
		{Profile: "tutorial", Loose: true},
	} {
		t.Run(ks.Profile, func(t *testing.T) {
			m := ks.machine()
			res := exploreAbstract(t, newModel(m))
			states, steps, rate := exploreConcrete(t, m, res.edges, depth, full)
			t.Logf("%s depth %d: %d concrete states, %d steps, %.0f states/s; %d abstract edges", ks.Profile, depth, states, steps, rate, len(res.edges))
		})
	}
}

// BenchmarkConcreteBounded reports the bounded concrete check's speed:
// concrete states explored per second of the linux profile at depth 4
// (TCPCT_DEPTH overrides), invariants and refinement included.
func BenchmarkConcreteBounded(b *testing.B) {
	depth := 4
	if d := os.Getenv("TCPCT_DEPTH"); d != "" {
		depth, _ = strconv.Atoi(d)
	}
	m := knobSet{Profile: "linux", Loose: true, MaxRetrans: 3}.machine()
	edges := exploreAbstract(b, newModel(m)).edges
	b.ResetTimer()
	states := 0
	for i := 0; i < b.N; i++ {
		n, _, _ := exploreConcrete(b, m, edges, depth, false)
		states += n
	}
	b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "states/s")
}
