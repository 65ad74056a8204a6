package gen

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

// Every cell of every profile appears in the generated cell tables.
func TestEveryCellDocumented(t *testing.T) {
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		table := CellsTable(s)
		for d := 0; d < 2; d++ {
			for c, cname := range s.Classes {
				for st, state := range s.States {
					row := "| " + spec.Dir(d).String() + " | " + cname + " | " + state.Name + " | " + cellText(s, s.Table[d][c][st].Outcome) + " |"
					if !strings.Contains(table, row) {
						t.Errorf("%s: cell %s missing from the generated table", name, row)
					}
				}
			}
		}
	}
}

func TestSpliceRejectsUnknownProfile(t *testing.T) {
	specs, _ := LoadAll()
	_, err := Splice([]byte("<!-- BEGIN GENERATED: cells nope -->\nx\n<!-- END GENERATED -->\n"), specs)
	if err == nil {
		t.Fatal("unknown profile accepted")
	}
}

// Every cell of every profile appears on its profile page, with its RFC
// links and rationale, in the section of its direction and class, and in
// the row of its class in the transition grid.
func TestEveryCellOnProfilePage(t *testing.T) {
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		page := string(ProfilePage(s, true))
		for d := 0; d < 2; d++ {
			dir := spec.Dir(d)
			for c, cname := range s.Classes {
				heading := "\n### " + dir.String() + " " + cname + "\n"
				start := strings.Index(page, heading)
				if start < 0 {
					t.Errorf("%s: no section %q", name, strings.TrimSpace(heading))
					continue
				}
				section := page[start+len(heading):]
				if end := strings.Index(section, "\n#"); end >= 0 {
					section = section[:end]
				}
				grid := "| [**" + cname + "**](#" + cellAnchor(dir, cname) + ") |"
				for st, state := range s.States {
					cell := s.Table[d][c][st]
					w := s.Whys[cell.Why]
					out := cellText(s, cell.Outcome)
					row := "| " + dir.String() + " | " + cname + " | " + state.Name + " | " + out + " | " + rfcLinks(w.RFC) + " | " + esc(w.Reason) + " |\n"
					if !strings.Contains(section, row) {
						t.Errorf("%s: cell %s %s %s missing from its section: want row\n%s", name, dir, cname, state.Name, row)
					}
					grid += " " + out + " |"
				}
				if !strings.Contains(page, "\n"+grid+"\n") {
					t.Errorf("%s: grid row missing: %s", name, grid)
				}
			}
		}
	}
}

// Every RFC reference of the spec is a link to its section on
// rfc-editor.org, in the #section-N.N form of its HTML rendering.
func TestRFCLinks(t *testing.T) {
	if got, want := rfcLinks("5961 §4; 9293 §3.10.7.4"), "[5961 §4](https://www.rfc-editor.org/rfc/rfc5961#section-4); [9293 §3.10.7.4](https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.4)"; got != want {
		t.Errorf("rfcLinks = %s, want %s", got, want)
	}
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		page := string(ProfilePage(s, true))
		for _, w := range s.Whys {
			for _, ref := range rfcRefs(w.RFC) {
				m := rfcRefRE.FindStringSubmatch(ref)
				if link := "[" + ref + "](" + RFCURL(m[1], m[2]) + ")"; !strings.Contains(page, link) {
					t.Errorf("%s: %s (line %d) not linked as %s", name, ref, w.Line, link)
				}
			}
		}
		// No RFC reference is left bare: every "NNN §N.N" sits in a link text.
		bare := regexp.MustCompile(`(^|[^\[])\d+ §[0-9.]+`)
		for _, l := range strings.Split(page, "\n") {
			if strings.HasPrefix(l, "| ") && bare.MatchString(l) && !strings.Contains(l, "(https://www.rfc-editor.org/") {
				t.Errorf("%s: bare RFC reference in %q", name, l)
			}
		}
	}
}

var (
	mermaidDecl = regexp.MustCompile(`^    ([A-Z][A-Z0-9_]*): (.+)$`)
	mermaidEdge = regexp.MustCompile(`^    (\[\*\]|[A-Z][A-Z0-9_]*) --> ([A-Z][A-Z0-9_]*)(: (.+))?$`)
)

// The Mermaid diagram is a stateDiagram-v2 that declares every state of
// the spec once, starts at the initial state, and whose edges join
// declared states and are exactly the state-changing cells.
func TestMermaidStructure(t *testing.T) {
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		lines := strings.Split(strings.TrimSuffix(Mermaid(s), "\n"), "\n")
		if lines[0] != "stateDiagram-v2" {
			t.Fatalf("%s: first line %q", name, lines[0])
		}
		declared := map[string]bool{}
		edgeLabels := map[[2]string]string{}
		start := ""
		for i, l := range lines[1:] {
			if m := mermaidEdge.FindStringSubmatch(l); m != nil {
				if !declared[m[2]] || m[1] != "[*]" && !declared[m[1]] {
					t.Errorf("%s line %d: edge %q joins an undeclared state", name, i+2, l)
				}
				if m[1] == "[*]" {
					start = m[2]
					continue
				}
				if m[4] == "" {
					t.Errorf("%s line %d: edge without label", name, i+2)
				}
				edgeLabels[[2]string{m[1], m[2]}] = m[4]
				continue
			}
			if m := mermaidDecl.FindStringSubmatch(l); m != nil {
				if declared[m[1]] {
					t.Errorf("%s line %d: %s declared twice", name, i+2, m[1])
				}
				declared[m[1]] = true
				continue
			}
			t.Errorf("%s line %d: not a declaration or edge: %q", name, i+2, l)
		}
		for _, st := range s.States {
			if !declared[st.Name] {
				t.Errorf("%s: state %s not declared", name, st.Name)
			}
		}
		if start != s.States[s.Initial].Name {
			t.Errorf("%s: diagram starts at %q, want %s", name, start, s.States[s.Initial].Name)
		}
		assertEdges(t, name+" mermaid", s, edgeLabels)
	}
}

// assertEdges checks that the diagram's edges are exactly the cells that
// change state, each labelled with every class that takes it.
func assertEdges(t *testing.T, what string, s *spec.Spec, got map[[2]string]string) {
	t.Helper()
	want := map[[2]string][]string{}
	for d := 0; d < 2; d++ {
		for c, cname := range s.Classes {
			for st := range s.States {
				o := s.Table[d][c][st].Outcome
				if o.Kind == spec.Next && o.State != st {
					k := [2]string{s.States[st].Name, s.States[o.State].Name}
					want[k] = append(want[k], map[bool]string{true: ">", false: "<"}[d == 0]+cname)
				}
			}
		}
	}
	for k, labels := range want {
		l, ok := got[k]
		if !ok {
			t.Errorf("%s: missing edge %s -> %s", what, k[0], k[1])
			continue
		}
		fields := strings.Fields(l)
		for _, lab := range labels {
			if !slices.Contains(fields, lab) {
				t.Errorf("%s: edge %s -> %s lacks label %s (has %q)", what, k[0], k[1], lab, l)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: edge %s -> %s matches no cell", what, k[0], k[1])
		}
	}
}

var (
	dotNode = regexp.MustCompile(`^\t([A-Z][A-Z0-9_]*) \[label="([^"\\]|\\.)*"(, [a-z]+=("[^"]*"|[0-9a-z]+))*\];$`)
	dotEdge = regexp.MustCompile(`^\t([A-Z][A-Z0-9_]*) -> ([A-Z][A-Z0-9_]*) \[label="([^"]*)"\];$`)
)

// The Graphviz file parses under the small grammar gen writes (a header
// comment, digraph NAME {, graph and node defaults, node and edge
// statements, }), its edges join declared nodes and match the cells; with
// dot installed, it also renders to an SVG holding every state.
func TestDotStructure(t *testing.T) {
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		src := string(Dot(s))
		lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
		if !strings.HasPrefix(lines[0], "// ") || lines[1] != "digraph "+name+" {" || lines[len(lines)-1] != "}" {
			t.Fatalf("%s.dot: bad frame:\n%s", name, src)
		}
		nodes := map[string]bool{}
		edgeLabels := map[[2]string]string{}
		for i, l := range lines[2 : len(lines)-1] {
			switch {
			case l == "\trankdir=LR;" || strings.HasPrefix(l, "\tnode ["):
			case dotEdge.MatchString(l):
				m := dotEdge.FindStringSubmatch(l)
				if !nodes[m[1]] || !nodes[m[2]] {
					t.Errorf("%s.dot line %d: edge before its nodes: %q", name, i+3, l)
				}
				edgeLabels[[2]string{m[1], m[2]}] = m[3]
			case dotNode.MatchString(l):
				nodes[dotNode.FindStringSubmatch(l)[1]] = true
			default:
				t.Errorf("%s.dot line %d: not a statement gen writes: %q", name, i+3, l)
			}
		}
		for _, st := range s.States {
			if !nodes[st.Name] {
				t.Errorf("%s.dot: no node %s", name, st.Name)
			}
		}
		assertEdges(t, name+".dot", s, edgeLabels)

		dot, err := exec.LookPath("dot")
		if err != nil {
			t.Logf("graphviz dot not installed: %s.dot checked structurally only", name)
			continue
		}
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(src)
		svg, err := cmd.Output()
		if err != nil {
			t.Errorf("dot -Tsvg %s.dot: %v", name, err)
			continue
		}
		for _, st := range s.States {
			if !strings.Contains(string(svg), "<title>"+st.Name+"</title>") {
				t.Errorf("%s.svg: no node %s", name, st.Name)
			}
		}
		if n := strings.Count(string(svg), `class="edge"`); n != len(edgeLabels) {
			t.Errorf("%s.svg: %d edges, want %d", name, n, len(edgeLabels))
		}
	}
}
