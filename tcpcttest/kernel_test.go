package tcpcttest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/tcpcttest"
)

// TestUserCaptureRecordedByKernel is the whole path of a user's own
// capture (root only): the project's runner records the kernel's verdicts
// on it next to the file, as cmd/ktrace does, and the kit then takes the
// kernel as the reference for it. tcpct agrees with every packet; the
// naive toy does not, and each of its failures names the file and frame.
func TestUserCaptureRecordedByKernel(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tracegen.WritePcap(f, tracegen.Generate(tracegen.Config{Seed: 4242, Packets: 600})); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, err := kernel.ReadCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := kernel.Run(ctx, pkts, kernel.Options{})
	if err != nil {
		t.Fatalf("kernel: %v", err)
	}
	var jsonl []byte
	for i := range recs {
		jsonl = recs[i].AppendJSON(jsonl)
		jsonl = append(jsonl, '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.jsonl"), jsonl, 0o644); err != nil {
		t.Fatal(err)
	}

	opts := tcpcttest.Options{NoRecorded: true, NoGenerated: true, Captures: []tcpcttest.Capture{{Path: path}}}
	r := tcpcttest.Measure(newTcpct, opts)
	tr := r.Traces[0]
	if want := "Linux nf_conntrack (recorded in " + filepath.Join(dir, "mine.jsonl") + ")"; tr.Reference != want {
		t.Errorf("reference %q, want %q", tr.Reference, want)
	}
	if tr.Packets != len(recs) || !r.Agree() {
		t.Errorf("tcpct against the kernel's recording: %d packets (%d recorded), %d disagreements: %v", tr.Packets, len(recs), tr.TotalDiffs, tr.Diffs)
	}
	r = tcpcttest.Measure(newToy, opts)
	tr = r.Traces[0]
	if tr.TotalDiffs == 0 {
		t.Fatal("the toy tracker agreed with the kernel")
	}
	for _, d := range tr.Diffs {
		if d.File != path || d.Frame != d.Index+1 || !strings.HasSuffix(d.Explain, " "+path) {
			t.Errorf("disagreement without its place: %+v", d)
		}
	}
}
