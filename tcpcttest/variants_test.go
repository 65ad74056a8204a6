package tcpcttest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestVariantsEmbedded checks that the traces embedded in testdata/ are
// exactly those of Variants (derived from gen.Recordings) and the same
// bytes as the module's recordings in testdata/kernel/, so that adding or
// re-recording a trace there cannot leave the kit behind.
func TestVariantsEmbedded(t *testing.T) {
	const kernelDir = "../testdata/kernel"
	var want []string
	for _, v := range Variants {
		for _, ext := range []string{".pcap.gz", ".jsonl.gz"} {
			name := v.Name + ext
			want = append(want, name)
			got, err := fs.ReadFile(recorded, "testdata/"+name)
			if err != nil {
				t.Errorf("variant %s: %s is not embedded: copy %s/%s to tcpcttest/testdata/ (or exclude the recording in variants())", v.Name, name, kernelDir, name)
				continue
			}
			orig, err := os.ReadFile(filepath.Join(kernelDir, name))
			if err != nil {
				t.Logf("variant %s: no %s/%s to compare with: %v", v.Name, kernelDir, name, err)
				continue
			}
			if !bytes.Equal(got, orig) {
				t.Errorf("variant %s: tcpcttest/testdata/%s differs from %s/%s: copy the re-recorded trace to tcpcttest/testdata/", v.Name, name, kernelDir, name)
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
