//go:build cgo

package c

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
)

// TestPlantedMutantsAreCaught proves the differential: a copy of this
// package is built with one planted change and its differential tests must
// fail. The mutants are a one-cell edit of spec/linux.spec turned into a
// regenerated zz_linux.h (original ACK in ESTABLISHED: sES -> sFW, the
// edit gen's TestOneCellEdit makes), and two bugs planted in the
// hand-written tcpct.h and one in tcpct_tutorial.h.
func TestPlantedMutantsAreCaught(t *testing.T) {
	if testing.Short() || os.Getenv("TCPCT_PLANTED") != "" {
		t.Skip("builds a copy of the package per mutant; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	mainRoot, err := filepath.Abs(root())
	if err != nil {
		t.Fatal(err)
	}

	src, err := spec.Source("linux")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^(table original\n(?:.*\n)*?ack +sES +sIV +sES +)sES`)
	if !row.Match(src) {
		t.Fatal("spec/linux.spec: the original ack row is not where this test expects it")
	}
	mutant, err := spec.Parse("linux.spec", row.ReplaceAll(src, []byte("${1}sFW")))
	if err != nil {
		t.Fatal(err)
	}
	header := gen.CHeader(mutant)

	step := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !strings.Contains(string(b), old) {
				t.Fatalf("the file no longer contains %q", old)
			}
			return []byte(strings.Replace(string(b), old, new, 1))
		}
	}
	mutants := []struct {
		name, file string
		edit       func([]byte) []byte
	}{
		{"spec cell original/ack/ESTABLISHED -> FIN_WAIT", "zz_linux.h", func([]byte) []byte { return header }},
		{"C: an accepted RST gets TIME_WAIT's timeout", "tcpct.h", step("return cfg->timeout[T_CL];", "return cfg->timeout[T_TW];")},
		{"C: MAXACKWINDOW 66000 -> 6600", "tcpct.h", step("tcpct_max_u32(p->maxwin, 66000)", "tcpct_max_u32(p->maxwin, 6600)")},
		{"C tutorial: ASSURED on the wrong handshake ACK", "tcpct_tutorial.h", step("seg->ack == work->handshake_ack)", "seg->ack + 1 == work->handshake_ack)")},
	}
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			dir := copyPackage(t, mainRoot)
			p := filepath.Join(dir, "c", mu.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, mu.edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(goBin, "test", "-short", "-count=1", "-run", "TestStepAgrees", ".")
			cmd.Dir = filepath.Join(dir, "c")
			cmd.Env = append(os.Environ(), "TCPCT_ROOT="+mainRoot, "TCPCT_PLANTED=1")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the mutant passed the differential:\n%s", out)
			}
			var caught []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "MISMATCHES") {
					caught = append(caught, strings.TrimSpace(l[:min(len(l), 110)]))
				}
			}
			if len(caught) == 0 {
				t.Fatalf("the mutant failed, but not by a mismatch:\n%s", out)
			}
			t.Logf("caught:\n\t%s", strings.Join(caught, "\n\t"))
		})
	}
}

// copyPackage copies this module's go.mod and this package to a temporary
// directory, pointing the module at the main module by absolute path.
func copyPackage(t *testing.T, mainRoot string) string {
	t.Helper()
	dir := t.TempDir()
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gomod = []byte(strings.Replace(string(gomod), "=> ../", "=> "+mainRoot, 1))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, err := os.ReadFile("../go.sum"); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "c", e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
