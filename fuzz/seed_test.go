package fuzz

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fdac824a/tcpct/internal/invariant"
)

var update = flag.Bool("update", false, "rewrite the seed corpus files taken from the recorded kernel traces")

// kernelSeeds picks packets of the recorded kernel traces as FuzzPacket
// seeds: the first packet of every distinct (flags, family, has payload,
// has options) combination, so that the corpus starts from every kind of
// packet the kernel was shown.
func kernelSeeds(t *testing.T) map[string][]byte {
	kts, err := invariant.LoadKernelTraces(filepath.Join("..", "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	seen := map[string]bool{}
	for _, kt := range kts {
		for _, p := range kt.Packets {
			kind := fmt.Sprintf("%s_%02x_v%d_len%v_opt%v", kt.Name, uint8(p.Seg.Flags), p.IP[0]>>4, p.Seg.Len > 0, p.Seg.HasOptions)
			if k := kind[len(kt.Name):]; !seen[k] {
				seen[k] = true
				out["kernel"+k] = p.IP
			}
		}
	}
	return out
}

// TestSeedCorpus: the committed FuzzPacket corpus holds the kernel-trace
// packets kernelSeeds picks (go test ./fuzz -run TestSeedCorpus -update
// rewrites them).
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzPacket")
	seeds := kernelSeeds(t)
	if len(seeds) < 10 {
		t.Fatalf("only %d distinct kernel packets", len(seeds))
	}
	for name, pkt := range seeds {
		for mode := 0; mode < 1; mode++ {
			body := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte('\\x%02x')\n", pkt, 8+4*mode))
			path := filepath.Join(dir, fmt.Sprintf("%s_m%d", name, mode))
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s missing or stale (go test ./fuzz -run TestSeedCorpus -update)", path)
			}
		}
	}
}
