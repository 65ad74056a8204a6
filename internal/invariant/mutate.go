package invariant

import (
	"fmt"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// Mutant is one spec-cell mutation: table[Dir][Class][State] changed to To.
type Mutant struct {
	Dir          spec.Dir
	Class, State int
	To           spec.Outcome
}

// String names the mutant as the spec file would: "original syn sES: sIG -> sSS".
func (mu Mutant) String(s *spec.Spec) string {
	from := s.Table[mu.Dir][mu.Class][mu.State].Outcome
	return fmt.Sprintf("%v %s %s: %s -> %s", mu.Dir, s.Classes[mu.Class], s.States[mu.State].Abbrev,
		s.OutcomeString(from), s.OutcomeString(mu.To))
}

// Mutants lists every single-cell mutant of s: each cell changed to each
// other outcome (every state, IGNORE and INVALID), in table order.
func Mutants(s *spec.Spec) []Mutant {
	outs := []spec.Outcome{{Kind: spec.Ignore}, {Kind: spec.Invalid}}
	for i := range s.States {
		outs = append(outs, spec.Outcome{Kind: spec.Next, State: i})
	}
	var ms []Mutant
	for _, d := range spec.Dirs {
		for ci := range s.Table[d] {
			for si := range s.Table[d][ci] {
				for _, o := range outs {
					if o != s.Table[d][ci][si].Outcome {
						ms = append(ms, Mutant{Dir: d, Class: ci, State: si, To: o})
					}
				}
			}
		}
	}
	return ms
}

// Apply returns a copy of s with the mutant's cell changed; s is not
// modified. The copy is not re-validated: a mutant may leave a state
// unreachable, which the loader would reject but the machine runs.
func (mu Mutant) Apply(s *spec.Spec) *spec.Spec {
	c := *s
	for d := range c.Table {
		rows := make([][]spec.Cell, len(s.Table[d]))
		for ci := range rows {
			rows[ci] = append([]spec.Cell(nil), s.Table[d][ci]...)
		}
		c.Table[d] = rows
	}
	c.Table[mu.Dir][mu.Class][mu.State].Outcome = mu.To
	return &c
}

// MachineOf compiles s in memory (as fsm.FromSpec does for a spec given on
// the command line) and sets the knobs, given as NAME=VALUE.
func MachineOf(s *spec.Spec, knobs ...string) (*fsm.Machine, error) {
	m := fsm.NewMachine(fsm.FromSpec(s))
	for _, kv := range knobs {
		k, v, ok := cut(kv)
		if !ok {
			return nil, fmt.Errorf("knob setting %q: want NAME=VALUE", kv)
		}
		if err := m.Set(k, v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return "", "", false
}
