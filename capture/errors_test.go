package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// TestErrors checks that a corrupt or truncated capture yields every record
// before the fault and then a FormatError whose message names the record,
// the offset and the numbers that prove the problem.
func TestErrors(t *testing.T) {
	le := binary.LittleEndian
	frame := eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 0), v4opts{})) // 54 bytes
	good := func() *pcapFile {
		f := newPcap(le, false, uint32(LinkEthernet), 0)
		return f.add(t0, frame, 0).add(t0, frame, 0)
	}
	ng := func() *ngFile {
		f := newNg(le)
		f.idb(LinkEthernet, 0, -1, 0)
		return f.epb(0, 1, frame, 0)
	}
	var cases []struct {
		name    string
		data    []byte
		records int   // returned before the error
		rec     int   // FormatError.Record
		off     int64 // FormatError.Offset
		msg     string
	}
	add := func(name string, data []byte, records, rec int, off int64, msg string) {
		cases = append(cases, struct {
			name    string
			data    []byte
			records int
			rec     int
			off     int64
			msg     string
		}{name, data, records, rec, off, msg})
	}

	// pcap.
	add("empty", nil, 0, -1, -1, "capture: empty file, not a capture")
	add("three bytes", []byte{0xd4, 0xc3, 0xb2}, 0, -1, -1, "capture: not a capture file: only 3 bytes")
	add("short file header", good().bytes()[:10], 0, -1, 0, "capture: offset 0: truncated pcap file header: needs 24 bytes, file ends after 10")
	v3 := bytes.Clone(good().bytes())
	v3[4] = 3
	add("version", v3, 0, -1, 4, "capture: offset 4: unsupported pcap version 3.4")
	add("snaplen", newPcap(le, false, 1, 0xffffffff).bytes(), 0, -1, 16, "capture: offset 16: absurd snap length 4294967295 (limit 67108864)")
	f := good()
	add("record header cut", append(f.bytes(), 1, 2, 3, 4, 5), 2, 2, 164, "capture: record 2 at offset 164: truncated record header: needs 16 bytes, file ends after 5")
	f = good()
	f.add(t0, make([]byte, 1514), 0)
	add("record cut", f.bytes()[:f.offs[2]+16+200], 2, 2, 164, "capture: record 2 at offset 164: truncated record: header says 1514 bytes, file ends after 200")
	f = good()
	big := f.bytes()
	big = le.AppendUint32(big, 0)
	big = le.AppendUint32(big, 0)
	big = le.AppendUint32(big, 300000)
	big = le.AppendUint32(big, 300000)
	add("record length", big, 2, 2, 164, "capture: record 2 at offset 164: corrupt record length 300000 (limit 262144)")

	// pcapng.
	n := ng()
	ngGood := n.bytes()
	epbOff := n.last()
	bad := bytes.Clone(ngGood)
	bad[8] = 0x99
	add("byte-order magic", bad, 0, -1, 0, "capture: offset 0: bad pcapng byte-order magic 99 3c 2b 1a")
	bad = bytes.Clone(ngGood)
	bad[12] = 2
	add("pcapng version", bad, 0, -1, 0, "capture: offset 0: unsupported pcapng version 2.0")
	add("block cut", ngGood[:len(ngGood)-10], 0, 0, epbOff, fmt.Sprintf("capture: record 0 at offset %d: truncated block: header says %d bytes, file ends after %d", epbOff, len(ngGood)-int(epbOff), len(ngGood)-int(epbOff)-10))
	add("block header cut", append(bytes.Clone(ngGood), 6, 0, 0), 1, 1, int64(len(ngGood)), fmt.Sprintf("capture: record 1 at offset %d: truncated block header: needs 8 bytes, file ends after 3", len(ngGood)))
	bad = bytes.Clone(ngGood)
	le.PutUint32(bad[epbOff+4:], 13)
	add("block length", bad, 0, 0, epbOff, fmt.Sprintf("capture: record 0 at offset %d: corrupt block length 13", epbOff))
	bad = bytes.Clone(ngGood)
	le.PutUint32(bad[len(bad)-4:], 8)
	add("trailer", bad, 0, 0, epbOff, fmt.Sprintf("capture: record 0 at offset %d: corrupt block: trailing length 8, leading length %d", epbOff, len(ngGood)-int(epbOff)))
	bad = bytes.Clone(ngGood)
	le.PutUint32(bad[epbOff+8:], 1)
	add("interface", bad, 0, 0, epbOff, fmt.Sprintf("capture: record 0 at offset %d: packet for interface 1, but the section describes 1", epbOff))
	bad = bytes.Clone(ngGood)
	le.PutUint32(bad[epbOff+20:], 200)
	add("caplen overrun", bad, 0, 0, epbOff, fmt.Sprintf("capture: record 0 at offset %d: corrupt record length 200 overruns block of %d bytes", epbOff, len(ngGood)-int(epbOff)))
	n = newNg(le)
	n.idb(LinkEthernet, 0, 30, 0)
	add("tsresol", n.bytes(), 0, -1, n.last(), fmt.Sprintf("capture: offset %d: unsupported if_tsresol 10^-30", n.last()))
	n = newNg(le)
	n.epb(0, 1, frame, 0)
	add("no interface", n.bytes(), 0, 0, n.last(), fmt.Sprintf("capture: record 0 at offset %d: packet for interface 0, but the section describes 0", n.last()))
	n = ng()
	n.block(blockEPB, make([]byte, 8))
	add("short EPB", n.bytes(), 1, 1, n.last(), fmt.Sprintf("capture: record 1 at offset %d: corrupt enhanced packet block length 20", n.last()))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAllOpen(t, bytes.NewReader(c.data))
			checkFormatError(t, got, err, c.records, c.rec, c.off, c.msg)
		})
		// The same bytes as a file that Open reads: the same records and
		// the same error, named by the file's path.
		t.Run(c.name+"/file", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.pcap")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readAllPath(t, path)
			checkFormatError(t, got, err, c.records, c.rec, c.off, strings.Replace(c.msg, "capture", path, 1))
		})
	}
}

// readAllPath is readAllOpen for a file opened with Open.
func readAllPath(t testing.TB, path string) ([]rec, error) {
	t.Helper()
	return readAllWith(t, func() (*Reader, error) { return Open(path) })
}

// readAllOpen is readAll including NewReader's own error.
func readAllOpen(t testing.TB, src io.Reader) ([]rec, error) {
	t.Helper()
	return readAllWith(t, func() (*Reader, error) { return NewReader(src) })
}

// readAllWith reads every record of the Reader open returns, and checks
// that the error is sticky.
func readAllWith(t testing.TB, open func() (*Reader, error)) ([]rec, error) {
	t.Helper()
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	got, err := readAll(t, r)
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("error is not sticky: first %v, then %v", err, err2)
	}
	return got, err
}

func checkFormatError(t *testing.T, got []rec, err error, records, record int, off int64, msg string) {
	t.Helper()
	if len(got) != records {
		t.Errorf("got %d records before the error, want %d", len(got), records)
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if err.Error() != msg {
		t.Errorf("error\n got %q\nwant %q", err.Error(), msg)
	}
	if fe.Record != record || fe.Offset != off {
		t.Errorf("Record, Offset = %d, %d; want %d, %d", fe.Record, fe.Offset, record, off)
	}
}

// TestStreamErrors covers failures of the underlying stream: a truncated or
// corrupt gzip member and a read error, each after some good records.
func TestStreamErrors(t *testing.T) {
	f := newPcap(binary.LittleEndian, true, uint32(LinkRaw), 0)
	for i := range 200 {
		f.add(t0, ipv4(protoTCP, tcp(uint16(i), 2, 100), v4opts{}), 0)
	}
	data := f.bytes()
	z := gz(t, data)

	// Cut in the deflate stream: gzip reports io.ErrUnexpectedEOF, and
	// everything decompressed so far is returned first.
	got, err := readAllOpen(t, bytes.NewReader(z[:len(z)/2]))
	if len(got) == 0 || len(got) >= 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut gzip: %d records, %v", len(got), err)
	}
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Record != len(got) || fe.Offset != f.offs[len(got)] {
		t.Errorf("cut gzip: %#v after %d records", err, len(got))
	}
	// Worded as for a plain file cut at the same place, "stream" for
	// "file" (it used to say "needs 156 bytes", the record header
	// included, where a file's message gives the header's length).
	if !regexp.MustCompile(`: truncated record( header: needs 16 bytes|: header says 140 bytes), stream ends after \d+: unexpected EOF$`).MatchString(err.Error()) {
		t.Errorf("cut gzip: message %q", err)
	}
	for cut := len(z) / 3; cut < len(z)-8; cut += 37 {
		_, err := readAllOpen(t, bytes.NewReader(z[:cut]))
		if err == nil || strings.Contains(err.Error(), "needs 156") {
			t.Fatalf("gzip cut at %d: %v", cut, err)
		}
	}
	ng := newNg(binary.LittleEndian)
	ng.idb(LinkRaw, 0, -1, 0)
	for i := range 200 {
		ng.epb(0, uint64(i), ipv4(protoTCP, tcp(uint16(i), 2, 100), v4opts{}), 0)
	}
	zng := gz(t, ng.bytes())
	for cut := len(zng) / 3; cut < len(zng)-8; cut += 37 {
		_, err := readAllOpen(t, bytes.NewReader(zng[:cut]))
		if err == nil || !regexp.MustCompile(`truncated block( header: needs 8 bytes|: header says \d+ bytes), stream ends after \d+: unexpected EOF$`).MatchString(err.Error()) {
			t.Fatalf("pcapng gzip cut at %d: %v", cut, err)
		}
	}

	// Corrupt CRC-32 in the trailer: all records, then the checksum error.
	bad := bytes.Clone(z)
	bad[len(bad)-8] ^= 0xff
	got, err = readAllOpen(t, bytes.NewReader(bad))
	want := fmt.Sprintf("capture: record 200 at offset %d: read error: gzip: invalid checksum", len(data))
	if len(got) != 200 || err == nil || err.Error() != want {
		t.Errorf("bad checksum: %d records, %v; want 200, %s", len(got), err, want)
	}

	// A read error from the source after 1000 bytes.
	boom := errors.New("boom")
	got, err = readAllOpen(t, io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(got) != (1000-24)/156 {
		t.Errorf("read error: %d records, %v", len(got), err)
	}
	if err != nil && err.Error() != fmt.Sprintf("capture: record %d at offset %d: read error: boom", len(got), f.offs[len(got)]) {
		t.Errorf("read error message: %v", err)
	}

	// Not a capture inside the gzip.
	_, err = readAllOpen(t, bytes.NewReader(gz(t, []byte("hello, world"))))
	if err == nil || err.Error() != "capture: gzip content is not a pcap or pcapng file (starts with 68 65 6c 6c)" {
		t.Errorf("gzip text: %v", err)
	}
	// A gzip header that is not one.
	_, err = readAllOpen(t, bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}))
	if !errors.As(err, &fe) || fe.Msg != "bad gzip header" {
		t.Errorf("bad gzip header: %v", err)
	}
}
