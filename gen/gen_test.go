package gen

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

// TestCommittedFilesAreCurrent fails when `go generate ./...` would change
// a committed file.
func TestCommittedFilesAreCurrent(t *testing.T) {
	stale, err := Run("..", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		t.Errorf("%s is stale: run go generate ./...", f)
	}
}

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

// The Graphviz output parses: checked with dot when it is installed.
func TestDotIsValid(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("graphviz dot not installed")
	}
	for _, name := range spec.Profiles() {
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(string(Dot(spec.MustLoad(name))))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s.dot: %v\n%s", name, err, out)
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
