package spec

import (
	"embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.spec
var builtin embed.FS

// Profiles returns the names of the built-in profiles, sorted.
func Profiles() []string {
	ents, _ := builtin.ReadDir(".")
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".spec"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Source returns the text of a built-in profile.
func Source(profile string) ([]byte, error) {
	b, err := builtin.ReadFile(profile + ".spec")
	if err != nil {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", profile, strings.Join(Profiles(), ", "))
	}
	return b, nil
}

// Load parses and validates a built-in profile.
func Load(profile string) (*Spec, error) {
	src, err := Source(profile)
	if err != nil {
		return nil, err
	}
	return Parse("spec/"+profile+".spec", src)
}

// MustLoad is Load for the built-in profiles, which are validated by the
// package's tests; it panics only if the embedded files are broken.
func MustLoad(profile string) *Spec {
	s, err := Load(profile)
	if err != nil {
		panic(err)
	}
	return s
}

// Error is one problem in a spec file, at a line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrorList is every problem found in one file, in line order. Its Error
// method prints them one per line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// maxErrors bounds how many problems one Parse reports, so that a file
// that is not a spec at all does not produce thousands of lines.
const maxErrors = 20

type parser struct {
	file string
	s    *Spec
	errs ErrorList

	// Raw material gathered in pass one, resolved in pass two once every
	// state and class is known (a why line may precede nothing it names).
	tables    [2]*rawTable
	whys      []rawWhy
	initial   string
	initLine  int
	creates   []rawCreate
	classify  []rawClassify
	seenOnce  map[string]int // directive -> line, for once-only directives
	lineCount int
}

type rawTable struct {
	line   int
	header []string
	hline  int
	rows   []rawRow
}

type rawRow struct {
	class string
	cells []string
	line  int
}

type rawWhy struct {
	dir, classes, states, rfc, reason string
	line                              int
}

type rawCreate struct {
	class, when string
	line        int
}

type rawClassify struct {
	class string
	flags []string
	line  int
}

func (p *parser) errorf(line int, format string, args ...any) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

// Parse reads and validates a profile. The file name is used in errors.
// It never panics: every problem is returned as an ErrorList.
func Parse(file string, src []byte) (*Spec, error) {
	p := &parser{file: file, s: &Spec{File: file, Initial: -1}, seenOnce: map[string]int{}}
	p.pass1(string(src))
	if len(p.errs) == 0 {
		p.pass2()
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return p.s, nil
}

// fields splits a line into blank-separated fields; "quoted" fields may
// hold blanks, \" and \\ escape inside quotes, and # outside quotes starts
// a comment.
func fields(line string) ([]string, error) {
	var out []string
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			return out, nil
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(line) {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					b.WriteByte(line[i+1])
					i += 2
					continue
				}
				if line[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(line[i])
				i++
			}
			if !closed {
				return nil, errors.New("unterminated quoted field")
			}
			out = append(out, b.String())
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' && line[j] != '#' {
				j++
			}
			out = append(out, line[i:j])
			i = j
		}
	}
	return out, nil
}

func (p *parser) once(dir string, line int) bool {
	if prev, ok := p.seenOnce[dir]; ok {
		p.errorf(line, "%s given twice (first at line %d)", dir, prev)
		return false
	}
	p.seenOnce[dir] = line
	return true
}

// word checks a field that names something (a knob, an alias, a state,
// a class): a bare word, since Format writes names unquoted. A quoted
// field with a space or a quote in it would load, but its Format would
// not load again (found by TestGopterSpecLoader: an ALIASES field of " ").
func (p *parser) word(line int, what, s string) {
	if s == "" || strings.ContainsAny(s, " \t\r\"#\\,") {
		p.errorf(line, "%s %q: want a word (no spaces, quotes, commas or #)", what, s)
	}
}

func (p *parser) want(f []string, line, min, max int, usage string) bool {
	if len(f)-1 < min || (max >= 0 && len(f)-1 > max) {
		p.errorf(line, "%s: want %s", f[0], usage)
		return false
	}
	return true
}

func (p *parser) pass1(src string) {
	s := p.s
	var cur *rawTable
	for n, text := range strings.Split(src, "\n") {
		line := n + 1
		p.lineCount = line
		f, err := fields(text)
		if err != nil {
			p.errorf(line, "%v", err)
			continue
		}
		if len(f) == 0 {
			continue
		}
		// Inside a table, "old" is the header and class names are rows;
		// anything else ends the table.
		if cur != nil {
			if f[0] == "old" {
				if cur.header != nil {
					p.errorf(line, "table has two header rows (first at line %d)", cur.hline)
				}
				cur.header, cur.hline = f[1:], line
				continue
			}
			if indexOf(s.Classes, f[0]) >= 0 {
				cur.rows = append(cur.rows, rawRow{class: f[0], cells: f[1:], line: line})
				continue
			}
			cur = nil
		}
		switch f[0] {
		case "profile", "title", "describes":
			if p.want(f, line, 1, 1, f[0]+" VALUE") && p.once(f[0], line) {
				switch f[0] {
				case "profile":
					p.word(line, "profile name", f[1])
					s.Profile = f[1]
				case "title":
					s.Title = f[1]
				default:
					s.Describes = f[1]
				}
			}
		case "knob":
			if !p.want(f, line, 5, 5, `knob NAME DEFAULT UNIT ALIASES "MEANING"`) {
				continue
			}
			k := Knob{Name: f[1], Unit: f[3], Meaning: f[5], Line: line}
			p.word(line, "knob name", k.Name)
			if f[4] != "-" {
				k.Aliases = strings.Split(f[4], ",")
				for _, a := range k.Aliases {
					p.word(line, "knob "+k.Name+": alias", a)
				}
			}
			v, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				p.errorf(line, "knob %s: default %q is not an integer", k.Name, f[2])
			}
			k.Default = v
			if indexOf(KnownUnits, k.Unit) < 0 {
				p.errorf(line, "knob %s: unknown unit %q (want %s)", k.Name, k.Unit, strings.Join(KnownUnits, ", "))
			}
			if k.Unit == "bool" && v != 0 && v != 1 {
				p.errorf(line, "knob %s: a bool defaults to 0 or 1, not %d", k.Name, v)
			}
			if k.Unit == "seconds" && v <= 0 {
				p.errorf(line, "knob %s: a timeout must be a positive number of seconds, not %d", k.Name, v)
			}
			if k.Unit == "count" && v < 0 {
				p.errorf(line, "knob %s: a count cannot be negative", k.Name)
			}
			for _, name := range append([]string{k.Name}, k.Aliases...) {
				if prev, ok := s.Knob(name); ok {
					p.errorf(line, "knob name %q already used by knob %s at line %d", name, prev.Name, prev.Line)
				}
			}
			s.Knobs = append(s.Knobs, k)
		case "state":
			if !p.want(f, line, 5, 6, `state NAME ABBREV TIMEOUT-KNOB "RFC" "MEANING" [unused]`) {
				continue
			}
			st := State{Name: f[1], Abbrev: f[2], Timeout: f[3], RFC: f[4], Meaning: f[5], Line: line}
			p.word(line, "state name", st.Name)
			p.word(line, "state "+st.Name+": abbreviation", st.Abbrev)
			if len(f) == 7 {
				if f[6] != "unused" {
					p.errorf(line, "state %s: unexpected %q (only \"unused\" may follow the meaning)", st.Name, f[6])
				}
				st.Unused = true
			}
			if st.Abbrev == "sIV" || st.Abbrev == "sIG" || st.Abbrev == "old" {
				p.errorf(line, "state %s: abbreviation %s is reserved", st.Name, st.Abbrev)
			}
			for _, o := range s.States {
				if o.Name == st.Name || o.Abbrev == st.Abbrev {
					p.errorf(line, "state %s (%s) duplicates the state at line %d", st.Name, st.Abbrev, o.Line)
				}
			}
			s.States = append(s.States, st)
		case "initial":
			if p.want(f, line, 1, 1, "initial STATE") && p.once("initial", line) {
				p.initial, p.initLine = f[1], line
			}
		case "cap":
			if !p.want(f, line, 2, 2, "cap NAME KNOB") {
				continue
			}
			if indexOf(KnownCaps, f[1]) < 0 {
				p.errorf(line, "unknown cap %q (want %s)", f[1], strings.Join(KnownCaps, ", "))
			}
			s.Caps = append(s.Caps, Cap{Name: f[1], Knob: f[2], Line: line})
		case "class":
			if !p.want(f, line, 1, -1, "class NAME...") || !p.once("class", line) {
				continue
			}
			for _, c := range f[1:] {
				p.word(line, "class name", c)
				if indexOf(s.Classes, c) >= 0 {
					p.errorf(line, "class %s listed twice", c)
				}
				if isDirective(c) || c == "old" || c == "*" {
					p.errorf(line, "class name %q is reserved", c)
				}
				s.Classes = append(s.Classes, c)
			}
		case "classify":
			if p.want(f, line, 2, -1, "classify CLASS FLAG... | -") {
				p.classify = append(p.classify, rawClassify{class: f[1], flags: f[2:], line: line})
			}
		case "flags-masked":
			if !p.want(f, line, 1, -1, "flags-masked FLAG...") || !p.once(f[0], line) {
				continue
			}
			for _, name := range f[1:] {
				fl, err := ParseFlags(name)
				if err != nil {
					p.errorf(line, "%v", err)
				}
				s.FlagsMasked |= fl
			}
		case "flags-valid":
			if !p.want(f, line, 1, -1, "flags-valid COMBO... | any") || !p.once(f[0], line) {
				continue
			}
			if len(f) == 2 && f[1] == "any" {
				s.AnyFlags = true
				continue
			}
			for _, combo := range f[1:] {
				fl, err := ParseFlags(combo)
				if err != nil {
					p.errorf(line, "%v", err)
				}
				s.FlagsValid = append(s.FlagsValid, fl)
			}
		case "create":
			switch {
			case len(f) == 2:
				p.creates = append(p.creates, rawCreate{class: f[1], line: line})
			case len(f) == 4 && f[2] == "when":
				p.creates = append(p.creates, rawCreate{class: f[1], when: f[3], line: line})
			default:
				p.errorf(line, "create: want create CLASS [when KNOB]")
			}
		case "feature":
			if !p.want(f, line, 1, 1, "feature NAME") {
				continue
			}
			if indexOf(KnownFeatures, f[1]) < 0 {
				p.errorf(line, "unknown feature %q (want %s)", f[1], strings.Join(KnownFeatures, ", "))
			} else if s.HasFeature(f[1]) {
				p.errorf(line, "feature %s listed twice", f[1])
			}
			s.Features = append(s.Features, f[1])
		case "assured":
			if p.want(f, line, 1, 1, "assured RULE") && p.once("assured", line) {
				if indexOf(KnownAssured, f[1]) < 0 {
					p.errorf(line, "unknown assured rule %q (want %s)", f[1], strings.Join(KnownAssured, ", "))
				}
				s.Assured = f[1]
			}
		case "seed-choice":
			if p.want(f, line, 3, 3, `seed-choice NAME "QUOTE" "CHOICE"`) {
				p.word(line, "seed-choice name", f[1])
				s.SeedChoices = append(s.SeedChoices, SeedChoice{Name: f[1], Quote: f[2], Choice: f[3], Line: line})
			}
		case "table":
			if !p.want(f, line, 1, 1, "table original|reply") {
				continue
			}
			d := -1
			switch f[1] {
			case "original":
				d = 0
			case "reply":
				d = 1
			default:
				p.errorf(line, "table: unknown direction %q (want original or reply)", f[1])
				continue
			}
			if len(s.Classes) == 0 {
				p.errorf(line, "table before the class line: rows cannot be recognised")
				continue
			}
			if p.tables[d] != nil {
				p.errorf(line, "table %s given twice (first at line %d)", f[1], p.tables[d].line)
				continue
			}
			cur = &rawTable{line: line}
			p.tables[d] = cur
		case "why":
			if p.want(f, line, 5, 5, `why DIR CLASSES STATES "RFC" "REASON"`) {
				p.whys = append(p.whys, rawWhy{dir: f[1], classes: f[2], states: f[3], rfc: f[4], reason: f[5], line: line})
			}
		default:
			if indexOf(s.Classes, f[0]) >= 0 || f[0] == "old" {
				p.errorf(line, "table row %q outside a table", f[0])
			} else {
				p.errorf(line, "unknown directive %q", f[0])
			}
		}
	}
}

func isDirective(w string) bool {
	switch w {
	case "profile", "title", "describes", "knob", "state", "initial", "cap", "class", "classify",
		"flags-masked", "flags-valid", "create", "feature", "assured", "seed-choice", "table", "why":
		return true
	}
	return false
}

func (p *parser) stateByAbbrev(a string) int {
	for i, st := range p.s.States {
		if st.Abbrev == a {
			return i
		}
	}
	return -1
}

func (p *parser) pass2() {
	s := p.s
	end := p.lineCount
	for _, d := range []string{"profile", "class"} {
		if _, ok := p.seenOnce[d]; !ok {
			p.errorf(end, "no %s line", d)
		}
	}
	if len(s.States) == 0 {
		p.errorf(end, "no state lines")
		return
	}
	if len(s.States) > 16 || len(s.Classes) > 8 {
		p.errorf(end, "at most 16 states and 8 classes fit the fsm tables (have %d and %d)", len(s.States), len(s.Classes))
	}
	if s.Assured == "" {
		p.errorf(end, "no assured line")
	}
	if !s.AnyFlags && len(s.FlagsValid) == 0 {
		p.errorf(end, "no flags-valid line (use \"flags-valid any\" for none)")
	}
	// Timeouts: every state's knob is a positive number of seconds.
	for _, st := range s.States {
		p.wantSeconds(st.Line, "state "+st.Name, st.Timeout)
	}
	for _, c := range s.Caps {
		p.wantSeconds(c.Line, "cap "+c.Name, c.Knob)
	}
	if p.initial == "" {
		p.errorf(end, "no initial line")
	} else if s.Initial = s.StateIndex(p.initial); s.Initial < 0 {
		p.errorf(p.initLine, "initial: unknown state %q", p.initial)
	}
	// Classification: known classes, each class has a rule, last rule is
	// the catch-all and nothing follows it.
	for i, r := range p.classify {
		ci := s.ClassIndex(r.class)
		if ci < 0 {
			p.errorf(r.line, "classify: unknown class %q", r.class)
			continue
		}
		rule := ClassRule{Class: ci, Line: r.line}
		if len(r.flags) == 1 && r.flags[0] == "-" {
			if i != len(p.classify)-1 {
				p.errorf(r.line, "classify %s: the catch-all \"-\" must be the last rule", r.class)
			}
		} else {
			for _, name := range r.flags {
				fl, err := ParseFlags(name)
				if err != nil {
					p.errorf(r.line, "classify %s: %v", r.class, err)
				}
				rule.Flags |= fl
			}
		}
		s.Classify = append(s.Classify, rule)
	}
	if n := len(s.Classify); n == 0 || s.Classify[n-1].Flags != 0 {
		p.errorf(end, "classification is not total: the last classify rule must be \"-\"")
	}
	for ci, c := range s.Classes {
		found := false
		for _, r := range s.Classify {
			found = found || r.Class == ci
		}
		if !found {
			p.errorf(p.seenOnce["class"], "class %s has no classify rule", c)
		}
	}
	p.resolveTables()
	// Creation rules: known class and bool knob; the initial cell of the
	// class must not be INVALID, or the rule could never create anything.
	for _, c := range p.creates {
		ci := s.ClassIndex(c.class)
		if ci < 0 {
			p.errorf(c.line, "create: unknown class %q", c.class)
			continue
		}
		if c.when != "" {
			if k, ok := s.Knob(c.when); !ok {
				p.errorf(c.line, "create %s: unknown knob %q", c.class, c.when)
			} else if k.Unit != "bool" {
				p.errorf(c.line, "create %s: knob %s is a %s, not a bool", c.class, c.when, k.Unit)
			}
		}
		for _, o := range s.Creates {
			if o.Class == ci {
				p.errorf(c.line, "create %s given twice (first at line %d)", c.class, o.Line)
			}
		}
		if len(p.errs) == 0 && s.Initial >= 0 && s.Table[0][ci][s.Initial].Outcome.Kind != Next {
			p.errorf(c.line, "create %s: the original %s cell of %s is %s, so it can create nothing",
				c.class, c.class, s.States[s.Initial].Name, s.OutcomeString(s.Table[0][ci][s.Initial].Outcome))
		}
		s.Creates = append(s.Creates, Create{Class: ci, When: c.when, Line: c.line})
	}
	if len(p.errs) > 0 {
		return
	}
	p.checkReachable()
	p.resolveWhys()
}

func (p *parser) wantSeconds(line int, what, knob string) {
	k, ok := p.s.Knob(knob)
	switch {
	case !ok:
		p.errorf(line, "%s: unknown timeout knob %q", what, knob)
	case k.Unit != "seconds":
		p.errorf(line, "%s: timeout knob %s is a %s, not seconds", what, knob, k.Unit)
	}
}

func (p *parser) resolveTables() {
	s := p.s
	for d, t := range p.tables {
		name := Dir(d).String()
		if t == nil {
			p.errorf(p.lineCount, "no table %s", name)
			continue
		}
		if t.header == nil {
			p.errorf(t.line, "table %s: no header row (old ABBREV...)", name)
			continue
		}
		cols := make([]int, len(t.header))
		seen := make([]int, len(s.States))
		for i, a := range t.header {
			cols[i] = p.stateByAbbrev(a)
			if cols[i] < 0 {
				p.errorf(t.hline, "table %s: unknown state %q in the header", name, a)
				continue
			}
			if seen[cols[i]] != 0 {
				p.errorf(t.hline, "table %s: state %s appears twice in the header", name, a)
			}
			seen[cols[i]]++
		}
		for i, n := range seen {
			if n == 0 {
				p.errorf(t.hline, "table %s: no column for state %s", name, s.States[i].Abbrev)
			}
		}
		rows := make([][]Cell, len(s.Classes))
		rowLine := make([]int, len(s.Classes))
		for _, r := range t.rows {
			ci := s.ClassIndex(r.class)
			if rows[ci] != nil {
				p.errorf(r.line, "table %s: class %s has a second row (first at line %d)", name, r.class, rowLine[ci])
				continue
			}
			if len(r.cells) != len(t.header) {
				p.errorf(r.line, "table %s: row %s has %d cells, the header has %d", name, r.class, len(r.cells), len(t.header))
				continue
			}
			row := make([]Cell, len(s.States))
			for i, tok := range r.cells {
				var o Outcome
				switch tok {
				case "sIV":
					o.Kind = Invalid
				case "sIG":
					o.Kind = Ignore
				default:
					o.State = p.stateByAbbrev(tok)
					if o.State < 0 {
						p.errorf(r.line, "table %s, row %s: unknown cell %q (want a state abbreviation, sIV or sIG)", name, r.class, tok)
					}
				}
				if cols[i] >= 0 {
					row[cols[i]] = Cell{Outcome: o, Why: -1, Line: r.line}
				}
			}
			rows[ci], rowLine[ci] = row, r.line
		}
		for ci, r := range rows {
			if r == nil {
				p.errorf(t.line, "table %s: no row for class %s", name, s.Classes[ci])
			}
		}
		s.Table[d] = rows
	}
}

// checkReachable walks every transition from the initial state; a state
// nobody can enter is a spec bug unless it is declared unused, and an
// unused state somebody enters is one too.
func (p *parser) checkReachable() {
	s := p.s
	reach := make([]bool, len(s.States))
	reach[s.Initial] = true
	queue := []int{s.Initial}
	for len(queue) > 0 {
		old := queue[0]
		queue = queue[1:]
		for d := range s.Table {
			for _, row := range s.Table[d] {
				if o := row[old].Outcome; o.Kind == Next && !reach[o.State] {
					reach[o.State] = true
					queue = append(queue, o.State)
				}
			}
		}
	}
	for i, st := range s.States {
		switch {
		case !reach[i] && !st.Unused:
			p.errorf(st.Line, "state %s is unreachable from %s (mark it unused if that is intended)", st.Name, s.States[s.Initial].Name)
		case reach[i] && st.Unused:
			p.errorf(st.Line, "state %s is marked unused but a transition enters it", st.Name)
		}
	}
}

func (p *parser) resolveWhys() {
	s := p.s
	for _, w := range p.whys {
		why := Why{Dir: -1, RFC: w.rfc, Reason: w.reason, Line: w.line}
		switch w.dir {
		case "*":
		case "original":
			why.Dir = 0
		case "reply":
			why.Dir = 1
		default:
			p.errorf(w.line, "why: unknown direction %q (want original, reply or *)", w.dir)
		}
		if w.classes != "*" {
			for _, c := range strings.Split(w.classes, ",") {
				ci := s.ClassIndex(c)
				if ci < 0 {
					p.errorf(w.line, "why: unknown class %q", c)
				}
				why.Classes = append(why.Classes, ci)
			}
		}
		if w.states != "*" {
			for _, a := range strings.Split(w.states, ",") {
				si := p.stateByAbbrev(a)
				if si < 0 {
					si = s.StateIndex(a)
				}
				if si < 0 {
					p.errorf(w.line, "why: unknown state %q", a)
				}
				why.States = append(why.States, si)
			}
		}
		if strings.TrimSpace(w.reason) == "" {
			p.errorf(w.line, "why: empty reason")
		}
		s.Whys = append(s.Whys, why)
	}
	if len(p.errs) > 0 {
		return
	}
	wins := make([]int, len(s.Whys))
	for d := range s.Table {
		for ci, row := range s.Table[d] {
			for si := range row {
				for wi, w := range s.Whys {
					if w.Matches(Dir(d), ci, si) {
						row[si].Why = wi
						wins[wi]++
						break
					}
				}
				if row[si].Why < 0 {
					p.errorf(row[si].Line, "cell %s %s %s (%s) has no why line", Dir(d), s.Classes[ci], s.States[si].Abbrev, s.OutcomeString(row[si].Outcome))
				}
			}
		}
	}
	for wi, n := range wins {
		if n == 0 {
			p.errorf(s.Whys[wi].Line, "why line explains no cell: every cell it names is explained by an earlier line")
		}
	}
}

// Matches reports whether the why line names the cell.
func (w Why) Matches(d Dir, class, state int) bool {
	if w.Dir >= 0 && Dir(w.Dir) != d {
		return false
	}
	if w.Classes != nil && !containsInt(w.Classes, class) {
		return false
	}
	return w.States == nil || containsInt(w.States, state)
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
