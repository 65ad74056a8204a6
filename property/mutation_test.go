package property

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
)

// The mutation check is the proof that the suite bites: every cell of a
// spec is changed to every other outcome, the machine is rebuilt in
// memory from the mutant (fsm.FromSpec), and the fast part of the suite
// runs against it. The invariants are checked against the mutant spec
// (invariant.NewContextSpec), so spec-cell only asks whether fsm's logic
// is consistent with the table in use; what judges the table itself is the
// other invariants (abstract BFS, bounded concrete check, random traces)
// and, for linux, the six recorded kernel traces.
var mutantsFlag = flag.String("mutants", "", `mutation check: "all" runs every spec-cell mutant and prints the score and the survivors (TCPCT_LONG=1 does too); default: a deterministic sample`)

// catcher is a tb that turns the first failure into a panic the mutation
// runner recovers: a mutant is killed by the first check that fails.
type catcher struct{ msg string }

func (c *catcher) Fatalf(format string, args ...any) {
	c.msg = fmt.Sprintf(format, args...)
	panic(c)
}

func (c *catcher) Errorf(format string, args ...any) { c.Fatalf(format, args...) }

// catch runs f and returns the first failure ("" if none). A panic of the
// mutant machine itself also kills it.
func catch(f func(t tb)) (msg string) {
	c := &catcher{}
	defer func() {
		if r := recover(); r != nil {
			if r == c {
				msg = c.msg
			} else {
				msg = fmt.Sprint("panic: ", r)
			}
		}
	}()
	f(c)
	return ""
}

// Stages of the mutation check, cheapest first.
const (
	stLoader   = "loader"   // spec.Format -> spec.Parse rejects the mutant (a used state became unreachable)
	stAbstract = "abstract" // the BFS over the mutant's abstract machine breaks invariants 1-5 or leaves a used state unreached
	stRandom   = "random"   // random traces through the mutant fsm break a step invariant
	stKernel   = "kernel"   // a recorded kernel trace disagrees (or breaks an invariant)
	stConcrete = "concrete" // the bounded concrete check (depth 4) breaks an invariant or leaves the abstract machine
)

// mutSetup is what every mutant of one profile shares.
type mutSetup struct {
	base   *spec.Spec
	knobs  []knobSet
	kernel []*invariant.KernelTrace
	random int // steps of random traces
	depth  int // concrete depth
}

var kernelOnce = sync.OnceValues(func() ([]*invariant.KernelTrace, error) {
	return invariant.LoadKernelTraces(filepath.Join("..", "tcpcttest", "testdata"))
})

func newMutSetup(t *testing.T, profile string) *mutSetup {
	su := &mutSetup{base: spec.MustLoad(profile), random: 20000, depth: 4 - raceShallower}
	if profile == "linux" {
		su.knobs = []knobSet{
			{Profile: "linux", Loose: true, MaxRetrans: 3},
			{Profile: "linux", Loose: false, MaxRetrans: 3},
			{Profile: "linux", Loose: true, MaxRetrans: 3, IgnoreRST: true},
			{Profile: "linux", Loose: true, MaxRetrans: 0},
		}
		kts, err := kernelOnce()
		if err != nil {
			t.Fatal(err)
		}
		su.kernel = kts
	} else {
		su.knobs = []knobSet{{Profile: profile, Loose: true}, {Profile: profile, Loose: false}}
		su.depth = 5 - raceShallower
	}
	return su
}

// kill runs the stages on the mutant spec s and returns the first stage
// that fails and its message, or "" if the mutant survives.
func (su *mutSetup) kill(s *spec.Spec) (stage, msg string) {
	if _, err := spec.Parse("mutant.spec", s.Format()); err != nil {
		return stLoader, err.Error()
	}
	var edges map[absEdge]bool
	for i, ks := range su.knobs {
		ctx := invariant.NewContextSpec(machineFor(s, ks), s)
		if msg := catch(func(t tb) {
			md := newModelCtx(ctx)
			res := exploreAbstract(t, md)
			for si, st := range s.States {
				if si != int(md.sNO) && !st.Unused && !res.reached[fsm.State(si)] {
					t.Fatalf("%s: state %s unreachable in the abstract machine", ks, st.Name)
				}
			}
			if i == 0 {
				edges = res.edges
			}
		}); msg != "" {
			return stAbstract, msg
		}
	}
	m0 := machineFor(s, su.knobs[0])
	if msg := catch(func(t tb) { differential(t, m0, invariant.NewContextSpec(m0, s), su.random, 7) }); msg != "" {
		return stRandom, msg
	}
	for _, kt := range su.kernel {
		cfg := kt.Config(s) // the shipped tracker, running the mutant spec
		var msg string
		func() {
			defer func() {
				if r := recover(); r != nil {
					msg = fmt.Sprint("panic: ", r)
				}
			}()
			if _, err := kt.Replay(cfg, true); err != nil {
				msg = err.Error()
			} else if n, first := kt.Disagreements(cfg); n > 0 {
				msg = fmt.Sprintf("%s: %d packets disagree with the kernel\n%s", kt.Name, n, first)
			}
		}()
		if msg != "" {
			return stKernel, msg
		}
	}
	if msg := catch(func(t tb) { exploreConcrete(t, su.knobs[0].config(concreteConns, s), edges, su.depth, false) }); msg != "" {
		return stConcrete, msg
	}
	return "", ""
}

// equivalent says why a mutant cannot be told apart from the spec by any
// packet, or "" when it can (then a survivor is a hole in the suite).
func equivalent(s *spec.Spec, mu invariant.Mutant) string {
	in := &invariant.Interp{S: s}
	valid := false
	for f := 0; f < 256; f++ {
		if c, ok := in.Classify(spec.Flags(f)); ok && c == mu.Class {
			valid = true
		}
	}
	switch {
	case !valid:
		return "no valid flag combination has this class (tcp_error rejects it before the table)"
	case mu.State == s.Initial && mu.Dir == spec.Reply:
		return "no entry is ever in the initial state, and a packet without an entry is original"
	case mu.State == s.Initial && !in.MayCreate(mu.Class, func(string) int64 { return 1 }):
		return "first-packet cell of a class with no create line: the packet is INVALID whatever the cell says (only the log reason changes)"
	}
	return ""
}

type mutResult struct {
	mu           invariant.Mutant
	stage, msg   string
	equivalentTo string
}

func runMutants(t *testing.T, su *mutSetup, ms []invariant.Mutant) []mutResult {
	out := make([]mutResult, len(ms))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := ms[i].Apply(su.base)
				st, msg := su.kill(s)
				out[i] = mutResult{mu: ms[i], stage: st, msg: msg, equivalentTo: equivalent(su.base, ms[i])}
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// score summarises results: killed of total, and killed of the mutants
// not known to be equivalent.
func score(t *testing.T, name string, su *mutSetup, rs []mutResult, verbose bool) (killed, nonEq, killedNonEq int, unexplained []mutResult) {
	byStage := map[string]int{}
	var eqSurv []mutResult
	for _, r := range rs {
		if r.equivalentTo == "" {
			nonEq++
		}
		if r.stage != "" {
			killed++
			byStage[r.stage]++
			if r.equivalentTo == "" {
				killedNonEq++
			}
			continue
		}
		if r.equivalentTo == "" {
			unexplained = append(unexplained, r)
		} else {
			eqSurv = append(eqSurv, r)
		}
	}
	t.Logf("%s: %d mutants, %d killed (%.1f%%); not known equivalent: %d, killed %d (%.1f%%); first killing stage: %v",
		name, len(rs), killed, pct(killed, len(rs)), nonEq, killedNonEq, pct(killedNonEq, nonEq), byStage)
	if verbose {
		reasons := map[string][]string{}
		for _, r := range eqSurv {
			reasons[r.equivalentTo] = append(reasons[r.equivalentTo], r.mu.String(su.base))
		}
		keys := make([]string, 0, len(reasons))
		for k := range reasons {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Logf("%s: %d equivalent survivors: %s", name, len(reasons[k]), k)
		}
		for _, r := range unexplained {
			t.Logf("%s: SURVIVOR %s", name, r.mu.String(su.base))
		}
	}
	return
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

// TestMutation: by default a deterministic sample (every 37th mutant of
// linux, every 61st of tutorial) must be killed at no less than the rate
// measured when the sample was fixed (a regression floor: the suite must
// not get weaker); -mutants=all or TCPCT_LONG=1 runs every mutant and
// prints the score and every survivor. Full run, 2026-11-25: linux 1012 of
// 1320 killed, all 1012 not known equivalent (100%; the cells kernel trace
// reaches every reachable cell with an in-window packet, docs/invariants.md);
// tutorial 287 of 1100 (no kernel oracle for it).
func TestMutation(t *testing.T) {
	all := *mutantsFlag == "all" || long()
	for _, tc := range []struct {
		profile string
		every   int
		minPct  float64 // kill rate required of the non-equivalent mutants
	}{
		{"linux", 37 * raceSlow, 95},
		{"tutorial", 61 * raceSlow, 10}, // 21% unthinned, 14% in the race sample
	} {
		t.Run(tc.profile, func(t *testing.T) {
			su := newMutSetup(t, tc.profile)
			ms := invariant.Mutants(su.base)
			if !all {
				var sample []invariant.Mutant
				for i := 0; i < len(ms); i += tc.every {
					sample = append(sample, ms[i])
				}
				ms = sample
			}
			rs := runMutants(t, su, ms)
			_, nonEq, killedNonEq, unexplained := score(t, tc.profile, su, rs, all)
			if p := pct(killedNonEq, nonEq); p < tc.minPct {
				var names []string
				for _, r := range unexplained {
					names = append(names, r.mu.String(su.base))
				}
				t.Errorf("%s: only %.1f%% of the non-equivalent mutants killed, want >= %.0f%%; survivors:\n\t%s",
					tc.profile, p, tc.minPct, strings.Join(names, "\n\t"))
			}
		})
	}
}
