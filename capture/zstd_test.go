package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// zstdCapture is a capture of n records and its zstd compression, long
// enough for several zstd blocks (128 KiB each) so that half the stream
// holds whole blocks.
func zstdCapture(t *testing.T, n int) (f *pcapFile, z []byte) {
	f = newPcap(binary.LittleEndian, true, uint32(LinkRaw), 0)
	for i := range n {
		f.add(t0, ipv4(protoTCP, tcp(uint16(i), uint16(i*7919), 10), v4opts{}), 0)
	}
	return f, zst(t, f.bytes())
}

// TestZstd: a zstd-compressed capture is read like the plain one (every
// format case of TestFormats also runs compressed); InputOffset counts
// the compressed bytes; concatenated frames are one stream; zstd content
// that is not a capture says so.
func TestZstd(t *testing.T) {
	f, z := zstdCapture(t, 8000)
	r, err := NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 8000 || got[7999].SPort != 7999 || !r.Compressed() {
		t.Errorf("%d records, %v", len(got), err)
	}
	if n := r.InputOffset(); n != int64(len(z)) {
		t.Errorf("InputOffset at the end %d, want the compressed %d bytes", n, len(z))
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	data := f.bytes()
	two := append(zst(t, data[:100000]), zst(t, data[100000:])...)
	r, err = NewReader(bytes.NewReader(two))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, r); err != io.EOF || len(got) != 8000 {
		t.Errorf("two frames: %d records, %v", len(got), err)
	}
	r.Close()

	_, err = NewReader(bytes.NewReader(zst(t, []byte("not a capture at all"))))
	if err == nil || err.Error() != "capture: zstd content is not a pcap or pcapng file (starts with 6e 6f 74 20)" {
		t.Errorf("zstd text: %v", err)
	}
}

// TestZstdErrors: a cut stream is reported as gzip's is, with the records
// before the cut returned and an error that is io.ErrUnexpectedEOF; a
// corrupt stream is a read error carrying the zstd program's words; a read
// error of the source is that error, not the program's complaint about
// the input it lost.
func TestZstdErrors(t *testing.T) {
	f, z := zstdCapture(t, 8000)
	got, err := readAllOpen(t, bytes.NewReader(z[:len(z)/2]))
	var fe *FormatError
	if !errors.As(err, &fe) || len(got) == 0 || len(got) == 8000 || !errors.Is(err, io.ErrUnexpectedEOF) ||
		fe.Record != len(got) || fe.Offset != f.offs[len(got)] {
		t.Fatalf("half a zstd stream: %d records, %#v", len(got), err)
	}
	if !regexp.MustCompile(`: truncated record( header: needs 16 bytes|: header says 50 bytes), stream ends after \d+: zstd: .+: unexpected EOF$`).MatchString(err.Error()) {
		t.Errorf("half a zstd stream: message %q", err)
	}
	// Cut inside the frame header: no records, the file header is cut.
	_, err = readAllOpen(t, bytes.NewReader(z[:5]))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "truncated file header") {
		t.Errorf("frame header cut: %v", err)
	}

	// The frame's checksum (its last 4 bytes) flipped.
	bad := bytes.Clone(z)
	bad[len(bad)-1] ^= 0xff
	got, err = readAllOpen(t, bytes.NewReader(bad))
	if !errors.As(err, &fe) || errors.Is(err, io.ErrUnexpectedEOF) || fe.Msg != "read error" ||
		!strings.HasPrefix(fe.Err.Error(), "zstd: ") || len(got) == 8000 && fe.Record != 8000 {
		t.Errorf("bad checksum: %d records, %v", len(got), err)
	}

	boom := errors.New("boom")
	got, err = readAllOpen(t, io.MultiReader(bytes.NewReader(z[:len(z)/2]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(got) == 0 || !strings.HasSuffix(err.Error(), ": read error: boom") {
		t.Errorf("read error: %d records, %v", len(got), err)
	}
}

// zstdFrame builds a Zstandard frame by hand (RFC 8878 §3.1.1): no
// content size, no checksum, a window of 2^windowLog bytes, data in raw
// blocks.
func zstdFrame(data []byte, windowLog int) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0, byte(windowLog-10) << 3}
	for {
		n := min(len(data), 64<<10)
		h := uint32(n) << 3 // Block_Type 0: raw
		if n == len(data) {
			h |= 1 // Last_Block
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16))
		out = append(out, data[:n]...)
		if data = data[n:]; len(data) == 0 {
			return out
		}
	}
}

// TestZstdWindowLimit: a frame may ask for a window of up to 128 MiB (the
// zstd command's default limit); one asking for more is refused before
// any memory is claimed for it.
func TestZstdWindowLimit(t *testing.T) {
	needZstd(t)
	f, _ := zstdCapture(t, 10)
	for _, c := range []struct {
		windowLog int
		ok        bool
	}{{20, true}, {27, true}, {28, false}} {
		got, err := readAllOpen(t, bytes.NewReader(zstdFrame(f.bytes(), c.windowLog)))
		if ok := err == io.EOF && len(got) == 10; ok != c.ok {
			t.Errorf("window 2^%d: %d records, %v; want accepted = %v", c.windowLog, len(got), err, c.ok)
		}
	}
}

// TestZstdClose: closing a Reader in the middle of a zstd stream whose
// source blocks returns, and stops the zstd program.
func TestZstdClose(t *testing.T) {
	// Incompressible payloads: the program reads its input 128 KiB at a
	// time, so it must be given more than that to say anything.
	f := newPcap(binary.LittleEndian, true, uint32(LinkRaw), 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		p := ipv4(protoTCP, tcp(uint16(i), 2, 400), v4opts{})
		for j := 40; j < len(p); j++ {
			p[j] = byte(rng.Uint32())
		}
		f.add(t0, p, 0)
	}
	z := zst(t, f.bytes())
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(z[:len(z)-1]) // and then nothing: the source blocks
	r, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	zr := r.zst
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if zr.cmd.ProcessState == nil {
		t.Error("the zstd program was not waited for")
	}
	if _, err := r.Next(); err == nil {
		t.Error("Next after Close: no error")
	}
}

// TestZstdMissing: without the zstd program a zstd capture fails at once,
// with an error that names the program and the way out, and is
// exec.ErrNotFound.
func TestZstdMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	path := filepath.Join(t.TempDir(), "seed.pcap.zst")
	if err := os.WriteFile(path, zstdFrame([]byte("whatever"), 20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	want := fmt.Sprintf(`%s: zstd-compressed: reading it needs the zstd program: apt-get install zstd, or decompress it first: exec: "zstd": executable file not found in $PATH`, path)
	var fe *FormatError
	if !errors.As(err, &fe) || !errors.Is(err, exec.ErrNotFound) || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
