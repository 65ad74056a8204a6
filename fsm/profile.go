package fsm

import (
	"fmt"

	"github.com/fdac824a/tcpct/spec"
)

// Profile is one tracker flavour compiled from the spec: names for
// printing, the knobs with their defaults, the rationale of every cell, and
// the flat transition table the packet path indexes. The profiles this
// module ships are generated into zz_profiles.go by `go generate`; FromSpec
// builds the same value at run time from any spec file.
type Profile struct {
	Name       string
	Title      string
	StateNames []string // /proc spelling, indexed by State
	StateDocs  []Doc    // RFC sections and meaning, indexed by State
	Unused     []bool   // states the source lists but never enters
	ClassNames []string // indexed by Class
	Knobs      []Knob
	Whys       []Doc // rationale lines; Table.CellWhy indexes them
	Initial    State
	Table      spec.Compiled
}

// Doc is the rationale of a state or a transition cell: the RFC sections
// it rests on and a sentence saying why.
type Doc struct {
	RFC    string
	Reason string
}

// Knob is a tunable of the profile, named like its sysctl.
type Knob struct {
	Name    string
	Aliases []string
	Default int64
	Unit    string // "bool", "count" or "seconds"
}

// FromSpec compiles a loaded spec into a Profile.
func FromSpec(s *spec.Spec) *Profile {
	p := &Profile{Name: s.Profile, Title: s.Title, Initial: State(s.Initial), Table: *s.Compile()}
	for _, st := range s.States {
		p.StateNames = append(p.StateNames, st.Name)
		p.StateDocs = append(p.StateDocs, Doc{RFC: st.RFC, Reason: st.Meaning})
		p.Unused = append(p.Unused, st.Unused)
	}
	p.ClassNames = append(p.ClassNames, s.Classes...)
	for _, k := range s.Knobs {
		p.Knobs = append(p.Knobs, Knob{Name: k.Name, Aliases: append([]string(nil), k.Aliases...), Default: k.Default, Unit: k.Unit})
	}
	for _, w := range s.Whys {
		p.Whys = append(p.Whys, Doc{RFC: w.RFC, Reason: w.Reason})
	}
	return p
}

// Profiles are the profiles compiled into this package, by name.
func Profiles() []*Profile { return []*Profile{Linux, Tutorial} }

// ProfileByName returns a built-in profile.
func ProfileByName(name string) (*Profile, error) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown profile %q (want linux or tutorial)", name)
}

// StateName is the /proc spelling of s.
func (p *Profile) StateName(s State) string {
	if int(s) < len(p.StateNames) {
		return p.StateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", s)
}

// ClassName is the table row name of c.
func (p *Profile) ClassName(c Class) string {
	if int(c) < len(p.ClassNames) {
		return p.ClassNames[c]
	}
	return fmt.Sprintf("class(%d)", c)
}

// Cell returns the raw outcome of table[d][c][s]: a State, or
// spec.OutInvalid / spec.OutIgnore.
func (p *Profile) Cell(d Dir, c Class, s State) uint8 {
	return p.Table.Cells[spec.CellIndex(d, int(c), int(s))]
}

// CellDoc returns the rationale of table[d][c][s].
func (p *Profile) CellDoc(d Dir, c Class, s State) Doc {
	return p.Whys[p.Table.CellWhy[spec.CellIndex(d, int(c), int(s))]]
}

// OutcomeName spells a raw cell the way the kernel's tables do: a state
// name, "INVALID" (sIV) or "IGNORE" (sIG).
func (p *Profile) OutcomeName(cell uint8) string {
	switch cell {
	case spec.OutInvalid:
		return "INVALID"
	case spec.OutIgnore:
		return "IGNORE"
	case CellNone:
		return "-"
	}
	return p.StateName(State(cell))
}

// Classify returns the class of a TCP flag byte and whether the flag
// combination is valid (tcp_error's check).
func (p *Profile) Classify(f Flags) (Class, bool) {
	return Class(p.Table.ClassOf[f]), p.Table.FlagsOK[f]
}

// KnobIndex finds a knob by sysctl name. It accepts the name as it appears
// under /proc/sys/net/netfilter/ (with or without the nf_conntrack_
// prefix), as a dotted sysctl (net.netfilter.nf_conntrack_tcp_loose), and
// the profile's aliases.
func (p *Profile) KnobIndex(name string) int {
	for _, prefix := range []string{"net.netfilter.", "/proc/sys/net/netfilter/"} {
		if len(name) > len(prefix) && name[:len(prefix)] == prefix {
			name = name[len(prefix):]
		}
	}
	for pass := 0; pass < 2; pass++ {
		for i, k := range p.Knobs {
			if k.Name == name {
				return i
			}
			for _, a := range k.Aliases {
				if a == name {
					return i
				}
			}
		}
		const prefix = "nf_conntrack_"
		if len(name) <= len(prefix) || name[:len(prefix)] != prefix {
			break
		}
		name = name[len(prefix):]
	}
	return -1
}

// ProcIPConntrack reports whether the profile's table prints as Linux
// 2.4's /proc/net/ip_conntrack rather than /proc/net/nf_conntrack: the
// spec's feature proc-ip_conntrack (the tutorial profile).
func (p *Profile) ProcIPConntrack() bool {
	return p.Table.Features&spec.FeatureProcIPConntrack != 0
}
