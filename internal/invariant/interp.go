package invariant

import (
	"fmt"

	"github.com/fdac824a/tcpct/spec"
)

// Interp executes a spec directly: it reads the loaded spec.Spec (the
// classify rules, the flag validity list, the create lines and the
// transition grids) and never looks at the code generated into fsm/. It is
// the independent reference the spec-cell invariant and the differential
// tests compare fsm against, at the level the spec speaks about: the class
// of a packet, the cell it selects and the state that cell names.
type Interp struct {
	S *spec.Spec
}

// NewInterp loads a built-in profile's spec.
func NewInterp(profile string) (*Interp, error) {
	s, err := spec.Load(profile)
	if err != nil {
		return nil, err
	}
	return &Interp{S: s}, nil
}

// Classify returns the packet class of a flag byte (the first classify
// rule whose flags are all set) and whether the combination is valid
// (flags-valid after removing flags-masked, or any).
func (in *Interp) Classify(f spec.Flags) (class int, valid bool) {
	class = -1
	for _, r := range in.S.Classify {
		if f&r.Flags == r.Flags {
			class = r.Class
			break
		}
	}
	valid = in.S.AnyFlags
	for _, v := range in.S.FlagsValid {
		if f&^in.S.FlagsMasked == v {
			valid = true
		}
	}
	return class, valid
}

// Cell is table[dir][class][state] as the spec file writes it.
func (in *Interp) Cell(d spec.Dir, class, state int) spec.Outcome {
	return in.S.Table[d][class][state].Outcome
}

// MayCreate says whether a first packet of class may create an entry, with
// knob giving the current value of a knob by name.
func (in *Interp) MayCreate(class int, knob func(string) int64) bool {
	for _, c := range in.S.Creates {
		if c.Class == class && (c.When == "" || knob(c.When) != 0) {
			return true
		}
	}
	return false
}

// First is the interpreter's decision for a packet without an entry: the
// cell of table[original][class][initial], and whether an entry is created.
func (in *Interp) First(f spec.Flags, knob func(string) int64) (class int, o spec.Outcome, create, valid bool) {
	class, valid = in.Classify(f)
	if !valid {
		return class, spec.Outcome{Kind: spec.Invalid}, false, false
	}
	o = in.Cell(spec.Original, class, in.S.Initial)
	return class, o, o.Kind == spec.Next && in.MayCreate(class, knob), true
}

// CellByte renders an outcome the way fsm.Verdict.Cell does: a state
// index, spec.OutInvalid or spec.OutIgnore.
func CellByte(o spec.Outcome) uint8 {
	switch o.Kind {
	case spec.Invalid:
		return spec.OutInvalid
	case spec.Ignore:
		return spec.OutIgnore
	}
	return uint8(o.State)
}

// State returns the index of a named state, or -1 when the profile has none.
func (in *Interp) State(name string) int { return in.S.StateIndex(name) }

// Class returns the index of a named class, or -1.
func (in *Interp) Class(name string) int { return in.S.ClassIndex(name) }

// Timeout returns the default timeout of a state in seconds (its knob's
// default).
func (in *Interp) Timeout(state int) int64 {
	k, ok := in.S.Knob(in.S.States[state].Timeout)
	if !ok {
		panic(fmt.Sprintf("state %s: no timeout knob", in.S.States[state].Name))
	}
	return k.Default
}
