package property

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// concrete is one state of the bounded concrete check: the entry the
// tracker holds (deadline kept relative to now), which side of the
// conversation is its original one, and the simulated endpoints.
type concrete struct {
	c    fsm.Conn
	flip bool // the entry's original tuple is the conversation's reply side
	conv invariant.Conv
}

// concreteNode is a state of the search tree and the packet that reached it.
type concreteNode struct {
	parent int
	dir    fsm.Dir
	kind   invariant.Kind
	mode   invariant.SeqMode
}

func (n *concreteNode) label() string {
	return n.dir.String() + " " + n.kind.String() + " " + n.mode.String()
}

var concreteKinds = []invariant.Kind{invariant.KSyn, invariant.KSynAck, invariant.KAck, invariant.KData, invariant.KFin, invariant.KRst, invariant.KRstAck}

// concreteConns is how many connections one tracker of the search holds
// before the next is built.
const concreteConns = 1 << 13

// concreteStart is the conversation every path starts from: the
// originator's sequence numbers wrap.
var concreteStart = *invariant.NewConv(0xfffffff0, 7000)

// exploreConcrete runs a breadth-first search of the shipped tracker
// built from cfg on one connection to depth packets, with segments from
// the small sequence domain (exact, in window, below, above, zero) sent
// from either side: every child of a state is tracked on a connection of
// its own, brought to the state by replaying the path that first reached
// it (the replay must reproduce the state: deterministic). It checks every
// step invariant on the entries the tracker holds, that every step is an
// edge of the abstract machine (refinement; edges nil skips it), and that
// the entry is found until its deadline and not at it.
func exploreConcrete(t tb, cfg tcpct.Config, edges map[absEdge]bool, depth int, full bool) (states, steps int, rate float64) {
	cfg.Knobs = append(cfg.Knobs[:len(cfg.Knobs):len(cfg.Knobs)], fmt.Sprintf("max=%d", concreteConns))
	const now = 1000 * second
	var (
		tr   *tcpct.Tracker
		ctx  *invariant.Context
		used = concreteConns
	)
	// conn returns the tuple of a fresh connection.
	conn := func() table.Key {
		if used == concreteConns {
			var err error
			if tr, err = invariant.NewTracker(cfg); err != nil {
				t.Fatalf("%v", err)
			}
			if ctx == nil {
				if ctx, err = invariant.ContextOf(tr, &cfg); err != nil {
					t.Fatalf("%v", err)
				}
			}
			used = 0
		}
		used++
		return table.MakeKey4([4]byte{10, 1, byte(used >> 8), byte(used)}, [4]byte{10, 2, 0, 1}, 40000, 80)
	}
	side := func(k table.Key, d fsm.Dir) table.Key {
		if d == fsm.Reply {
			return k.Reverse()
		}
		return k
	}
	name := cfg.Profile
	start := concrete{conv: concreteStart}
	seen := map[concrete]bool{start: true}
	nodes := []concreteNode{{parent: -1}}
	type item struct {
		s concrete
		n int
	}
	frontier := []item{{start, 0}}
	began := time.Now()
	missing := 0
	var path []int
	for d := 0; d < depth && len(frontier) > 0; d++ {
		var next []item
		for _, it := range frontier {
			path = path[:0]
			for i := it.n; i > 0; i = nodes[i].parent {
				path = append(path, i)
			}
			var k table.Key
			var ready *tcpct.Tracker // the tracker where k is in state it.s, if any
			for _, dir := range []fsm.Dir{fsm.Original, fsm.Reply} {
				for _, kind := range concreteKinds {
					for _, mode := range modesFor(kind, full) {
						conv := it.s.conv
						if ready == nil || ready != tr {
							// A connection of its own, brought to the state.
							k = conn()
							conv = concreteStart
							for i := len(path) - 1; i >= 0; i-- {
								n := &nodes[path[i]]
								seg := conv.Segment(n.dir, n.kind, n.mode, 100, 0)
								invariant.Track(tr, side(k, n.dir), &seg, now)
							}
							if got := stateOf(tr, k, now, conv); got != it.s {
								t.Fatalf("%s: replaying%s\n\treached %+v, first time %+v (deterministic)", name, concretePath(nodes, it.n), got.c, it.s.c)
							}
						}
						seg := conv.Segment(dir, kind, mode, 100, 0)
						st, v := invariant.TrackStep(tr, side(k, dir), seg, now)
						steps++
						label := (&concreteNode{dir: dir, kind: kind, mode: mode}).label()
						if err := ctx.CheckStep(&st); err != nil {
							t.Fatalf("%s: concrete counterexample:%s\n\t-> %s seq=%d ack=%d: %v\n\tverdict %v", name, concretePath(nodes, it.n), label, seg.Seq, seg.Ack, err, &v)
						}
						if edges != nil {
							e := absEdge{From: alpha(&st.Before), To: alpha(&st.After), Dir: st.Dir, Flags: seg.Flags &^ spec.PSH, CT: v.CT, Action: v.Action, Ignored: v.Ignored}
							if !edges[e] {
								missing++
								if missing <= 5 {
									t.Errorf("%s: concrete step is no abstract transition:%s\n\t-> %s seq=%d ack=%d: %+v\n\tverdict %v", name, concretePath(nodes, it.n), label, seg.Seq, seg.Ack, e, &v)
								}
							}
						}
						// The entry lives until its deadline and not at it.
						if a := st.After; a.Live() {
							if _, _, ok := invariant.Lookup(tr, k, a.Deadline-1); !ok {
								t.Fatalf("%s: entry gone before its deadline:%s\n\t-> %s: %v", name, concretePath(nodes, it.n), label, &v)
							}
							if _, _, ok := invariant.Lookup(tr, k, a.Deadline); ok {
								t.Fatalf("%s: entry still found at its deadline:%s\n\t-> %s: %v", name, concretePath(nodes, it.n), label, &v)
							}
						}
						ns := stateOf(tr, k, now, conv)
						// A packet that left the entry as it was (an
						// INVALID or ignored one, say) leaves the
						// connection ready for the next child.
						ready = nil
						if ns.c == it.s.c && ns.flip == it.s.flip {
							ready = tr
						}
						if !seen[ns] {
							seen[ns] = true
							nodes = append(nodes, concreteNode{parent: it.n, dir: dir, kind: kind, mode: mode})
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

// stateOf is the search state of connection k (first tuple k) in tr.
func stateOf(tr *tcpct.Tracker, k table.Key, now int64, conv invariant.Conv) concrete {
	s := concrete{conv: conv}
	if e, _, ok := invariant.Lookup(tr, k, now); ok {
		s.c, s.flip = e.Conn, e.Key != k
		s.c.Deadline -= now
	}
	return s
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
		lines = append([]string{nodes[i].label()}, lines...)
	}
	return joinTrace(append([]string{"(no entry)"}, lines...))
}

// TestConcreteBounded: the shipped tracker, one connection, every
// sequence of depth packets from either side over the small sequence
// domain (deduplicated by the entry the tracker holds).
func TestConcreteBounded(t *testing.T) {
	// Default: depth 4 (about 3 s; linux 62,629 states, 250,608 steps;
	// 3 under the race detector).
	// TCPCT_LONG=1: depth 5 (about 45 s). TCPCT_DEPTH=n and TCPCT_FULL=1
	// (all five sequence modes for every kind) override.
	depth, full := 4-raceShallower, os.Getenv("TCPCT_FULL") == "1"
	if long() {
		depth = 5
	}
	if d := os.Getenv("TCPCT_DEPTH"); d != "" {
		depth, _ = strconv.Atoi(d)
	}
	for _, ks := range []knobSet{
		{Profile: "linux", Loose: true, MaxRetrans: 3},
		{Profile: "tutorial", Loose: true},
	} {
		t.Run(ks.Profile, func(t *testing.T) {
			res := exploreAbstract(t, newModel(ks.machine()))
			states, steps, rate := exploreConcrete(t, ks.config(concreteConns, nil), res.edges, depth, full)
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
	ks := knobSet{Profile: "linux", Loose: true, MaxRetrans: 3}
	edges := exploreAbstract(b, newModel(ks.machine())).edges
	b.ResetTimer()
	states := 0
	for i := 0; i < b.N; i++ {
		n, _, _ := exploreConcrete(b, ks.config(concreteConns, nil), edges, depth, false)
		states += n
	}
	b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "states/s")
}
