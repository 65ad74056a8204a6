package tcpcttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// TestVariantsEmbedded checks that the traces embedded from testdata/ (the
// module's one copy of the recorded kernel traces) are exactly those of
// Variants (derived from tracegen.Recordings), and that every recording
// tracegen lists is there, the cells probe the kit leaves out included.
func TestVariantsEmbedded(t *testing.T) {
	var want []string
	for _, v := range Variants {
		for _, ext := range []string{".pcap.gz", ".jsonl.gz"} {
			name := v.Name + ext
			want = append(want, name)
			if _, err := fs.ReadFile(recorded, "testdata/"+name); err != nil {
				t.Errorf("variant %s: %s is not embedded: add it to the go:embed line in run.go (or exclude the recording in variants())", v.Name, name)
			}
		}
	}
	for _, rec := range tracegen.Recordings {
		for _, ext := range []string{".pcap.gz", ".jsonl.gz"} {
			if _, err := os.Stat(filepath.Join("testdata", rec.Name+ext)); err != nil {
				t.Errorf("recording %s: %v", rec.Name, err)
			}
		}
	}
	ents, err := fs.ReadDir(recorded, "testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !slices.Contains(want, e.Name()) {
			t.Errorf("tcpcttest/testdata/%s belongs to no variant: remove it, or stop excluding its recording in variants()", e.Name())
		}
	}
}
