package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Open maps a regular file of at least mapMin bytes and parses it in place
// (mapFile). These tests lower mapMin so that every test capture can be
// read both ways, and check that the mapped Reader returns what the
// streaming one returns, keeps its window bounded, and survives the file
// shrinking under it.

// writeTemp writes data to a new file and returns its path.
func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withMapMin sets mapMin for the rest of the test.
func withMapMin(t testing.TB, n int64) {
	old := mapMin
	mapMin = n
	t.Cleanup(func() { mapMin = old })
}

// readAllPath opens path with Open, mapping it when mapAt <= its size
// (mapAt < 0: never), reads every record, and checks that the error is
// sticky.
func readAllPath(t testing.TB, path string, mapAt int64) ([]rec, error) {
	t.Helper()
	if mapAt < 0 {
		mapAt = 1 << 62
	}
	withMapMin(t, mapAt)
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fi, _ := os.Stat(path)
	if mapped := r.mapped != nil; mapped != (fi.Size() >= mapAt && !r.Compressed()) {
		t.Fatalf("mapped = %v for a %d-byte file with mapMin %d", mapped, fi.Size(), mapAt)
	}
	got, err := readAll(t, r)
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("error is not sticky: first %v, then %v", err, err2)
	}
	return got, err
}

// TestMappedFormats reads every format case (TestFormats) from a file,
// mapped and streamed: the same records, and io.EOF at the end.
func TestMappedFormats(t *testing.T) {
	for _, c := range allFormatCases(t) {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, c.data)
			mapped, err := readAllPath(t, path, 0)
			if err != io.EOF {
				t.Fatalf("mapped: after %d records: %v", len(mapped), err)
			}
			streamed, err := readAllPath(t, path, -1)
			if err != io.EOF {
				t.Fatalf("streamed: after %d records: %v", len(streamed), err)
			}
			if diff := cmp.Diff(c.want, mapped); diff != "" {
				t.Errorf("mapped records (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.want, streamed); diff != "" {
				t.Errorf("streamed records (-want +got):\n%s", diff)
			}
		})
	}
}

// bigCapture writes n records of every size up to 3000 bytes of payload,
// several mapping windows long, and returns the bytes.
func bigCapture(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.WritePacket(t0.Add(time.Duration(i)), ipv4(protoTCP, tcp(uint16(i), 1, (i*7919)%3000), v4opts{})); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestMappedWindow reads a capture four windows long, mapped, and checks
// every record's bytes (not a stale page), that the Reader never counts
// more than a window past the record as buffered, that it releases the
// pages behind it as it goes, and that InputOffset runs to the file's size.
func TestMappedWindow(t *testing.T) {
	data := bigCapture(t, 2*4*mapWindow/3000)
	if len(data) < 4*mapWindow {
		t.Fatalf("capture of %d bytes is shorter than four windows", len(data))
	}
	withMapMin(t, 0)
	r, err := Open(writeTemp(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.mapped == nil {
		t.Fatal("not mapped")
	}
	stream, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := 0; ; i++ {
		p, err := r.Next()
		q, qerr := stream.Next()
		if err != qerr {
			t.Fatalf("record %d: mapped %v, streamed %v", i, err, qerr)
		}
		if err != nil {
			break
		}
		if summarize(p) != summarize(q) || !bytes.Equal(p.Data, q.Data) {
			t.Fatalf("record %d differs:\nmapped   %+v\nstreamed %+v", i, summarize(p), summarize(q))
		}
		if ahead := r.end - r.pos; ahead > mapWindow+16+MaxRecord {
			t.Fatalf("record %d: %d bytes counted as buffered past the read position", i, ahead)
		}
		if behind := r.pos - r.released; behind > mapWindow+MaxRecord+4096 {
			t.Fatalf("record %d: %d bytes behind the read position not released", i, behind)
		}
		if n := r.InputOffset(); n < last || n > int64(len(data)) {
			t.Fatalf("record %d: InputOffset %d after %d", i, n, last)
		}
		last = r.InputOffset()
	}
	if r.released < 2*mapWindow {
		t.Errorf("released %d bytes of %d", r.released, len(data))
	}
	if last != int64(len(data)) {
		t.Errorf("InputOffset at the end %d, want %d", last, len(data))
	}
}

// TestMappedFileShrinks truncates a mapped capture while it is read, as
// another program rewriting the file would. Touching a mapped page past
// the new end of file raises SIGBUS; the Reader must turn it into a
// FormatError, after returning every record it could, and not crash.
func TestMappedFileShrinks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("files are mapped on Linux only")
	}
	data := bigCapture(t, 4*mapWindow/3000)
	path := writeTemp(t, data)
	withMapMin(t, 0)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	// Keep the first page: the records after it are gone.
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	n := 1
	for ; ; n++ {
		if _, err = r.Next(); err != nil {
			break
		}
	}
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Record != n || fe.Msg != "the file shrank while it was read (truncated or rewritten by another program?)" {
		t.Fatalf("after %d records: %v, want a FormatError for record %d saying the file shrank", n, err, n)
	}
	// Decoding reads a record's header and its IP and TCP headers, not
	// its payload: the record that fails is the first whose headers the
	// new end of file cuts.
	if fe.Offset < 24 || fe.Offset+16+60 < 4096 || fe.Offset > int64(len(data)) {
		t.Errorf("offset %d: want a record whose headers cross the new end of file (4096)", fe.Offset)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("error is not sticky: %v, then %v", err, err2)
	}
}

// FuzzMapped reads arbitrary bytes twice, as a mapped file (Open) and as a
// stream (NewReader): the records and the error, if any, must be the
// same, the error naming the file instead of "capture".
func FuzzMapped(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := writeTemp(t, data)
		mapped, merr := readAllPath(t, path, 0)
		var streamed []rec
		r, serr := NewReader(bytes.NewReader(data))
		if serr == nil {
			streamed, serr = readAll(t, r)
			r.Close()
		}
		if len(mapped) != len(streamed) {
			t.Fatalf("mapped %d records (%v), streamed %d (%v)", len(mapped), merr, len(streamed), serr)
		}
		for i := range mapped {
			if mapped[i] != streamed[i] {
				t.Fatalf("record %d\nmapped   %+v\nstreamed %+v", i, mapped[i], streamed[i])
			}
		}
		if merr == io.EOF || serr == io.EOF {
			if merr != serr {
				t.Fatalf("mapped: %v, streamed: %v", merr, serr)
			}
			return
		}
		if want := strings.Replace(serr.Error(), "capture", path, 1); merr.Error() != want {
			t.Fatalf("error\nmapped   %v\nstreamed %v", merr, serr)
		}
	})
}
