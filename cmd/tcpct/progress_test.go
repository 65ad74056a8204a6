package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/capture"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestProgressCountsInputBytes: the bar is fed the bytes read from the
// file, so for a gzip file it runs to the compressed size. It used to be
// fed the offset in the decompressed stream, which passed the compressed
// size early, so the bar reached 100% and vanished a fraction of the way
// through the capture.
func TestProgressCountsInputBytes(t *testing.T) {
	packed := gzipped(t, multiConnCapture(t, 6000, 3))
	r, err := capture.NewReader(bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	var res walkResult
	var reports []int64
	var maxOffset int64
	for {
		p, _, err := nextPacket(r, atSpec{}, &res, func(n int64) { reports = append(reports, n) })
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		maxOffset = max(maxOffset, p.Offset)
	}
	if len(reports) < 2 {
		t.Fatalf("%d records gave %d progress reports; want one every %d", res.records, len(reports), progressEvery)
	}
	if maxOffset <= int64(len(packed)) {
		t.Fatalf("test capture too small: decompressed offsets reach %d, compressed size %d", maxOffset, len(packed))
	}
	for i, n := range reports {
		if n <= 0 || n > int64(len(packed)) || (i > 0 && n < reports[i-1]) {
			t.Errorf("report %d: %d bytes (file %d bytes, previous %v)", i, n, len(packed), reports[:i])
		}
	}
}

// TestProgressBar runs replay with the bar forced on: frames go to stderr
// only (stdout is the same as without the bar), a file of known size shows
// a percentage, standard input a spinner; auto draws nothing when stderr is
// not a terminal.
func TestProgressBar(t *testing.T) {
	data := multiConnCapture(t, 6000, 3)
	dir := t.TempDir()
	plain, packed := filepath.Join(dir, "c.pcap"), filepath.Join(dir, "c.pcap.gz")
	os.WriteFile(plain, data, 0o644)
	os.WriteFile(packed, gzipped(t, data), 0o644)
	_, want, _ := runCmd(t, nil, "replay", "-format", "jsonl", "-progress", "never", plain)
	for _, c := range []struct {
		name  string
		stdin []byte
		path  string
		mark  string // in some frame
	}{
		{"file", nil, plain, "%"},
		{"gzip file", nil, packed, "%"},
		{"stdin", gzipped(t, data), "-", "replay"},
	} {
		code, out, errs := runCmd(t, c.stdin, "replay", "-format", "jsonl", "-progress", "always", c.path)
		if code != 0 || out != want {
			t.Errorf("%s: status %d; stdout differs from -progress never: %v", c.name, code, out != want)
		}
		if !strings.Contains(errs, "replay") || !strings.Contains(errs, c.mark) || !strings.Contains(errs, "\r") {
			t.Errorf("%s: stderr has no progress frame with %q: %q", c.name, c.mark, errs)
		}
		if c.path == "-" && strings.Contains(errs, "%") {
			t.Errorf("stdin: a percentage of an unknown size: %q", errs)
		}
	}
	if _, _, errs := runCmd(t, nil, "replay", "-format", "jsonl", plain); errs != "" {
		t.Errorf("-progress auto with stderr not a terminal wrote %q", errs)
	}
}
