package invariant

import (
	"path/filepath"
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

// TestKernelReplay: the tracker the mutation check builds from a spec
// reproduces the kernel on every recorded packet with the unmutated linux
// spec compiled in memory, and every step keeps the step invariants. Without this the
// mutation check's kernel-trace stage could kill mutants for the wrong
// reason.
func TestKernelReplay(t *testing.T) {
	kts, err := LoadKernelTraces(filepath.Join("..", "..", "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	s := spec.MustLoad("linux")
	total := 0
	for _, kt := range kts {
		cfg := kt.Config(s)
		if _, err := kt.Replay(cfg, true); err != nil {
			t.Fatalf("%s: %v", kt.Name, err)
		}
		if n, first := kt.Disagreements(cfg); n != 0 {
			t.Errorf("%s: %d packets disagree with the kernel:\n%s", kt.Name, n, first)
		}
		total += len(kt.Packets)
	}
	if total < 20000 {
		t.Errorf("only %d TCP packets in the recorded traces", total)
	}
	t.Logf("%d recorded packets agree", total)
}

// TestMutantsCoverEveryCell: the mutant list has eleven mutants per cell
// (every other outcome), and Apply changes exactly one cell of a copy.
func TestMutantsCoverEveryCell(t *testing.T) {
	s := spec.MustLoad("linux")
	ms := Mutants(s)
	cells := 2 * len(s.Classes) * len(s.States)
	if want := cells * (len(s.States) + 1); len(ms) != want {
		t.Fatalf("%d mutants, want %d", len(ms), want)
	}
	mu := ms[len(ms)/2]
	c := mu.Apply(s)
	if spec.Equal(c, s) || !spec.Equal(s, spec.MustLoad("linux")) {
		t.Fatalf("Apply(%s) changed nothing or changed the original", mu.String(s))
	}
	if c.Table[mu.Dir][mu.Class][mu.State].Outcome != mu.To {
		t.Fatalf("Apply(%s) did not set the cell", mu.String(s))
	}
}
