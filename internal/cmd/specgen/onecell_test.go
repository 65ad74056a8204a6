package main

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
)

// TestOneCellEdit is the promise of the spec made concrete: a reviewer
// changes one cell of spec/linux.spec (original ACK in ESTABLISHED: sES ->
// sFW) and everything derived from the linux profile follows, with no hand
// edit: the generated FSM table, the state tables, the profile page, the
// Graphviz diagram, the profile comparison and the tables spliced into
// docs/rfc793-mapping.md; nothing of the tutorial profile moves. That a test
// then fails is property's TestMutation, which compiles every such
// one-cell mutant and requires the suite to kill it.
func TestOneCellEdit(t *testing.T) {
	src, err := spec.Source("linux")
	if err != nil {
		t.Fatal(err)
	}
	// The first "ack" row after "table original"; its columns are
	// sNO sSS sSR sES ..., so the fourth outcome is ESTABLISHED's.
	row := regexp.MustCompile(`(?m)^(table original\n(?:.*\n)*?ack +sES +sIV +sES +)sES`)
	if !row.Match(src) {
		t.Fatal("spec/linux.spec: the original ack row is not where this test expects it")
	}
	edited := row.ReplaceAll(src, []byte("${1}sFW"))
	if diff := changedLines(src, edited); diff != 1 {
		t.Fatalf("the edit changed %d lines of the spec, want 1", diff)
	}
	mutant, err := spec.Parse("linux.spec", edited)
	if err != nil {
		t.Fatalf("the edited spec does not load: %v", err)
	}
	est, ack := mutant.StateIndex("ESTABLISHED"), mutant.ClassIndex("ack")
	if got := mutant.OutcomeName(mutant.Table[spec.Original][ack][est].Outcome); got != "FIN_WAIT" {
		t.Fatalf("edited cell reads %s, want FIN_WAIT", got)
	}

	orig, err := gen.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(orig)
	for i, s := range changed {
		if s.Profile == "linux" {
			changed[i] = mutant
		}
	}
	before, after := render(t, orig), render(t, changed)

	wantChanged := []string{"fsm/zz_profiles.go", "docs/states.md", "docs/profile-linux.md", "docs/linux.dot",
		"docs/profiles-compared.md", "docs/rfc793-mapping.md", gen.CHeaderPath("linux")}
	wantSame := []string{"docs/profile-tutorial.md", "docs/tutorial.dot", "docs/spec-schema.md", "docs/spec.schema.json", "docs/README.md",
		gen.CHeaderPath("tutorial"), gen.CReasonsPath}
	for _, p := range wantChanged {
		if bytes.Equal(before[p], after[p]) {
			t.Errorf("%s did not change with the cell", p)
		}
	}
	for _, p := range wantSame {
		if !bytes.Equal(before[p], after[p]) {
			t.Errorf("%s changed, but it does not depend on the linux table", p)
		}
	}
	for p := range before {
		if !slices.Contains(wantChanged, p) && !slices.Contains(wantSame, p) {
			t.Errorf("generated file %s is not classified by this test", p)
		}
	}
}

// render is every generated file for the given profiles, by path.
func render(t *testing.T, specs []*spec.Spec) map[string][]byte {
	t.Helper()
	files, err := filesOf(specs, moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		out[f.Path] = f.Data
	}
	return out
}

// changedLines counts the lines that differ between two texts of the same
// line count (or returns -1).
func changedLines(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	if len(la) != len(lb) {
		return -1
	}
	n := 0
	for i := range la {
		if !bytes.Equal(la[i], lb[i]) {
			n++
		}
	}
	return n
}
