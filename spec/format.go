package spec

import (
	"bytes"
	"fmt"

	"strings"
)

// Format renders the spec in the canonical text form. Parse(Format(s))
// yields a spec equal to s except for line numbers, which is what the
// round-trip property tests check.
func (s *Spec) Format() []byte {
	var b bytes.Buffer
	q := quote
	fmt.Fprintf(&b, "profile %s\n", s.Profile)
	if s.Title != "" {
		fmt.Fprintf(&b, "title %s\n", q(s.Title))
	}
	if s.Describes != "" {
		fmt.Fprintf(&b, "describes %s\n", q(s.Describes))
	}
	b.WriteByte('\n')
	for _, k := range s.Knobs {
		aliases := "-"
		if len(k.Aliases) > 0 {
			aliases = strings.Join(k.Aliases, ",")
		}
		fmt.Fprintf(&b, "knob %s %d %s %s %s\n", k.Name, k.Default, k.Unit, aliases, q(k.Meaning))
	}
	b.WriteByte('\n')
	for _, st := range s.States {
		fmt.Fprintf(&b, "state %s %s %s %s %s", st.Name, st.Abbrev, st.Timeout, q(st.RFC), q(st.Meaning))
		if st.Unused {
			b.WriteString(" unused")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "initial %s\n", s.States[s.Initial].Name)
	for _, c := range s.Caps {
		fmt.Fprintf(&b, "cap %s %s\n", c.Name, c.Knob)
	}
	fmt.Fprintf(&b, "\nclass %s\n", strings.Join(s.Classes, " "))
	for _, r := range s.Classify {
		fl := "-"
		if r.Flags != 0 {
			fl = strings.ReplaceAll(r.Flags.String(), "|", " ")
		}
		fmt.Fprintf(&b, "classify %s %s\n", s.Classes[r.Class], fl)
	}
	if s.FlagsMasked != 0 {
		fmt.Fprintf(&b, "flags-masked %s\n", strings.ReplaceAll(s.FlagsMasked.String(), "|", " "))
	}
	if s.AnyFlags {
		b.WriteString("flags-valid any\n")
	} else {
		combos := make([]string, len(s.FlagsValid))
		for i, f := range s.FlagsValid {
			combos[i] = f.String()
		}
		fmt.Fprintf(&b, "flags-valid %s\n", strings.Join(combos, " "))
	}
	for _, c := range s.Creates {
		fmt.Fprintf(&b, "create %s", s.Classes[c.Class])
		if c.When != "" {
			fmt.Fprintf(&b, " when %s", c.When)
		}
		b.WriteByte('\n')
	}
	for _, f := range s.Features {
		fmt.Fprintf(&b, "feature %s\n", f)
	}
	fmt.Fprintf(&b, "assured %s\n", s.Assured)
	for _, c := range s.SeedChoices {
		fmt.Fprintf(&b, "seed-choice %s %s %s\n", c.Name, q(c.Quote), q(c.Choice))
	}
	for d := range s.Table {
		fmt.Fprintf(&b, "\ntable %s\nold", Dir(d))
		for _, st := range s.States {
			fmt.Fprintf(&b, " %s", st.Abbrev)
		}
		b.WriteByte('\n')
		for ci, row := range s.Table[d] {
			b.WriteString(s.Classes[ci])
			for _, c := range row {
				fmt.Fprintf(&b, " %s", s.OutcomeString(c.Outcome))
			}
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	for _, w := range s.Whys {
		dir := "*"
		if w.Dir >= 0 {
			dir = Dir(w.Dir).String()
		}
		classes, states := "*", "*"
		if w.Classes != nil {
			names := make([]string, len(w.Classes))
			for i, c := range w.Classes {
				names[i] = s.Classes[c]
			}
			classes = strings.Join(names, ",")
		}
		if w.States != nil {
			names := make([]string, len(w.States))
			for i, st := range w.States {
				names[i] = s.States[st].Abbrev
			}
			states = strings.Join(names, ",")
		}
		fmt.Fprintf(&b, "why %s %s %s %s %s\n", dir, classes, states, q(w.RFC), q(w.Reason))
	}
	return b.Bytes()
}

// quote renders a field so that fields() reads it back unchanged.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
