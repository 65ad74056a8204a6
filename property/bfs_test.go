package property

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// alphabet is the flag combinations the abstract check sends: every class,
// with and without ACK where that matters, and invalid combinations.
var alphabet = []spec.Flags{
	spec.SYN, spec.SYN | spec.ACK, spec.FIN | spec.ACK, spec.FIN, spec.ACK, spec.RST, spec.RST | spec.ACK,
	0, spec.SYN | spec.FIN, spec.SYN | spec.RST,
}

// absEdge is one abstract transition, as the refinement check needs it.
type absEdge struct {
	From, To abs
	Dir      fsm.Dir
	Flags    spec.Flags
	CT       fsm.CT
	Action   fsm.Action
	Ignored  bool
}

type bfsResult struct {
	states, transitions, depth int
	edges                      map[absEdge]bool
	reached                    map[fsm.State]bool
}

type bfsNode struct {
	parent int
	label  string
	a      abs
}

// exploreAbstract runs the BFS over md's abstract machine from the empty
// entry until no new abstract state appears, checking invariants 1-5 (and
// the step part of 7) on every abstract transition.
func exploreAbstract(t tb, md *model) bfsResult {
	const now = 1000 * second
	res := bfsResult{edges: map[absEdge]bool{}, reached: map[fsm.State]bool{}}
	nodes := []bfsNode{{parent: -1, a: abs{}}}
	seen := map[abs]int{{}: 0}
	frontier := []int{0}
	for depth := 0; len(frontier) > 0; depth++ {
		res.depth = depth
		var next []int
		for _, ni := range frontier {
			a := nodes[ni].a
			for _, dir := range []fsm.Dir{fsm.Original, fsm.Reply} {
				for _, fl := range alphabet {
					ch := &chooser{}
					for {
						before := md.concretize(a, now)
						after := before
						seg := fsm.Segment{Seq: 1000, Ack: 1, Win: 1000, Flags: fl, HdrLen: 20}
						v := md.step(&before, &after, &seg, dir, now, ch)
						if v.Reason != 0xFF {
							res.transitions++
							d := dir
							if !before.Live() {
								d = fsm.Original
							}
							st := stepOf(before, after, d, seg, now, v)
							if err := md.ctx.CheckStep(&st); err != nil {
								t.Fatalf("%s: abstract counterexample:%s\n\t-> %v %v choices %v: %v\n\tverdict %+v",
									md.m.Profile().Name, pathOf(nodes, ni), dir, fl, ch.path, err, v)
							}
							b := alpha(&after)
							res.edges[absEdge{From: a, To: b, Dir: d, Flags: fl, CT: v.CT, Action: v.Action, Ignored: v.Ignored}] = true
							if _, ok := seen[b]; !ok {
								seen[b] = len(nodes)
								nodes = append(nodes, bfsNode{parent: ni, label: fmt.Sprintf("%v %v %v -> %s", dir, fl, ch.path, md.name(b)), a: b})
								next = append(next, len(nodes)-1)
								if b.Live {
									res.reached[b.State] = true
								}
							}
						}
						if !ch.next() {
							break
						}
					}
				}
			}
		}
		frontier = next
	}
	res.states = len(nodes)
	return res
}

func (md *model) name(a abs) string {
	if !a.Live {
		return "(no entry)"
	}
	return fmt.Sprintf("%s%s", md.m.Profile().StateName(a.State), statusString(a.Status))
}

func statusString(s fsm.Status) string {
	var b strings.Builder
	if s&fsm.SeenReply == 0 {
		b.WriteString(" [UNREPLIED]")
	}
	if s&fsm.Assured != 0 {
		b.WriteString(" [ASSURED]")
	}
	return b.String()
}

func pathOf(nodes []bfsNode, i int) string {
	var lines []string
	for ; i > 0; i = nodes[i].parent {
		lines = append([]string{nodes[i].label}, lines...)
	}
	return joinTrace(append([]string{"(no entry)"}, lines...))
}

// TestAbstractBFS: every reachable abstract state of each profile (with
// default knobs and the variants that change the abstract machine) keeps
// invariants 1-5, and every state the spec marks used is reachable.
func TestAbstractBFS(t *testing.T) {
	for _, ks := range []knobSet{
		{Profile: "linux", Loose: true, MaxRetrans: 3},
		{Profile: "linux", Loose: false, MaxRetrans: 3},
		{Profile: "linux", Loose: true, MaxRetrans: 3, IgnoreRST: true},
		{Profile: "linux", Loose: true, MaxRetrans: 0},
		{Profile: "tutorial", Loose: true},
		{Profile: "tutorial", Loose: false},
	} {
		t.Run(ks.String(), func(t *testing.T) {
			md := newModel(ks.machine())
			res := exploreAbstract(t, md)
			t.Logf("%s: %d abstract states, %d transitions, fixpoint at depth %d", ks, res.states, res.transitions, res.depth)
			for i, st := range md.in.S.States {
				if i != int(md.sNO) && !st.Unused && !res.reached[fsm.State(i)] {
					t.Errorf("state %s unreachable in the abstract machine", st.Name)
				}
			}
		})
	}
}
