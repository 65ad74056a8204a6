package property

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/spec"
	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
)

// specEdit is a random edit of a loaded spec that keeps it valid: cells
// changed to outcomes that keep every used state reachable, timeouts and
// other knob defaults changed within their ranges, descriptive texts
// replaced (with quotes and backslashes, which Format must escape).
type specEdit struct {
	Cells    []uint16 // cell index and outcome, packed: see apply
	Defaults []uint32
	Texts    []string
}

var genSpecEdit = gen.Struct(reflectTypeOf[specEdit](), map[string]gopter.Gen{
	"Cells":    gen.SliceOfN(12, gen.UInt16()),
	"Defaults": gen.SliceOfN(6, gen.UInt32()),
	"Texts":    gen.SliceOfN(4, gen.OneGenOf(gen.AlphaString(), gen.Const(`say "why" \ here`), gen.Const("#not a comment"))),
})

// reachable reports whether every used state of s is reachable from the
// initial one through Next cells and no cell enters an unused state (the
// loader's rules, computed here independently), and every create line
// has a first-packet cell that names a state.
func reachable(s *spec.Spec) bool {
	seen := map[int]bool{s.Initial: true}
	queue := []int{s.Initial}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		for d := range s.Table {
			for c := range s.Table[d] {
				o := s.Table[d][c][st].Outcome
				if o.Kind == spec.Next && s.States[o.State].Unused {
					return false
				}
				if o.Kind == spec.Next && !seen[o.State] {
					seen[o.State] = true
					queue = append(queue, o.State)
				}
			}
		}
	}
	for i, st := range s.States {
		if !st.Unused && !seen[i] {
			return false
		}
	}
	for _, c := range s.Creates {
		if s.Table[spec.Original][c.Class][s.Initial].Outcome.Kind != spec.Next {
			return false // a create line needs a first-packet cell
		}
	}
	return true
}

func (e specEdit) apply(base *spec.Spec) *spec.Spec {
	s := base
	for _, x := range e.Cells {
		d := spec.Dir(x & 1)
		c := int(x>>1) % len(s.Classes)
		st := int(x>>4) % len(s.States)
		o := spec.Outcome{Kind: spec.Next, State: int(x>>9) % (len(s.States) + 2)}
		switch o.State - len(s.States) {
		case 0:
			o = spec.Outcome{Kind: spec.Ignore}
		case 1:
			o = spec.Outcome{Kind: spec.Invalid}
		}
		if o == s.Table[d][c][st].Outcome {
			continue
		}
		if n := (invariantMutant(d, c, st, o)).Apply(s); reachable(n) {
			s = n
		}
	}
	c := *s
	c.Knobs = append([]spec.Knob(nil), s.Knobs...)
	for i, v := range e.Defaults {
		k := &c.Knobs[int(v)%len(c.Knobs)]
		switch k.Unit {
		case "bool":
			k.Default = int64(v>>8) & 1
		case "seconds":
			k.Default = 1 + int64(v>>8)%(1<<31/250-1)
		default:
			k.Default = int64(v>>8) % 256
		}
		_ = i
	}
	c.States = append([]spec.State(nil), s.States...)
	for i, t := range e.Texts {
		switch i % 4 {
		case 0:
			c.Title = t
		case 1:
			c.States[len(t)%len(c.States)].Meaning = t
		case 2:
			c.Knobs[len(t)%len(c.Knobs)].Meaning = t
		case 3:
			c.Describes = t
		}
	}
	return &c
}

// TestGopterSpecLoader: random valid specs load and round-trip through
// Format and Parse; random corruptions of a spec's text never panic the
// loader and are rejected with errors that carry file:line (or, if the
// corruption left a valid spec, that spec round-trips).
func TestGopterSpecLoader(t *testing.T) {
	props := gopter.NewProperties(gopterParams())
	for _, name := range []string{"linux", "tutorial"} {
		base := spec.MustLoad(name)
		props.Property(name+": random valid specs load and round-trip", prop.ForAll(func(e specEdit) string {
			s := e.apply(base)
			p1, err := spec.Parse("edited.spec", s.Format())
			if err != nil {
				return fmt.Sprintf("edited spec rejected: %v", err)
			}
			if !spec.Equal(p1, s) {
				return "Parse(Format(s)) != s"
			}
			p2, err := spec.Parse("again.spec", p1.Format())
			if err != nil || !spec.Equal(p1, p2) {
				return fmt.Sprintf("second round trip: %v", err)
			}
			return ""
		}, genSpecEdit))

		src, err := spec.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(src), "\n")
		props.Property(name+": corruptions are rejected with file:line, never a panic", prop.ForAll(func(ops []uint32, junk string) (msg string) {
			text := corrupt(lines, ops, junk)
			defer func() {
				if r := recover(); r != nil {
					msg = fmt.Sprintf("Parse panicked: %v\n%s", r, text)
				}
			}()
			s, err := spec.Parse("bad.spec", []byte(text))
			if err == nil {
				p2, err := spec.Parse("again.spec", s.Format())
				if err != nil || !spec.Equal(s, p2) {
					return fmt.Sprintf("corrupted but valid spec does not round-trip: %v", err)
				}
				return ""
			}
			var list spec.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				return fmt.Sprintf("error %T %q is not a spec.ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "bad.spec" || e.Line < 1 || e.Line > len(strings.Split(text, "\n")) {
					return fmt.Sprintf("error without a valid file:line: %q (file %q line %d)", e.Error(), e.File, e.Line)
				}
				if !strings.HasPrefix(e.Error(), fmt.Sprintf("bad.spec:%d: ", e.Line)) || len(e.Msg) == 0 {
					return fmt.Sprintf("error text %q", e.Error())
				}
			}
			return ""
		}, gen.SliceOfN(3, gen.UInt32()), gen.OneGenOf(gen.AlphaString(), gen.Const("sXX"), gen.Const(`"`), gen.Const("table reply"), gen.Const("-1"), gen.Const("99999999999999999999"))))
	}
	props.TestingRun(t)
}

// corrupt applies up to three edits to the lines of a spec: delete, or
// duplicate a line, swap two, truncate the text, or replace one field of a
// line with junk.
func corrupt(lines []string, ops []uint32, junk string) string {
	ls := append([]string(nil), lines...)
	for _, op := range ops {
		if len(ls) == 0 {
			break
		}
		i, j := int(op>>3)%len(ls), int(op>>13)%len(ls)
		switch op % 5 {
		case 0:
			ls = append(ls[:i], ls[i+1:]...)
		case 1:
			ls = append(ls[:i+1], ls[i:]...)
		case 2:
			ls[i], ls[j] = ls[j], ls[i]
		case 3:
			text := strings.Join(ls, "")
			return text[:int(op>>3)%(len(text)+1)]
		case 4:
			f := strings.Fields(ls[i])
			if len(f) > 0 {
				f[j%len(f)] = junk
				ls[i] = strings.Join(f, " ") + "\n"
			}
		}
	}
	return strings.Join(ls, "")
}
