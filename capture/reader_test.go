package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 5, 17, 10, 30, 0, 123456789, time.UTC)

// formatCase is a capture and the records a reader must return from it.
type formatCase struct {
	name string
	data []byte
	want []rec
}

// tcpRec is the rec for a TCP/IPv4 packet built with ipv4(tcp(sp, dp, n)).
func tcpRec(i int, off, ts int64, link LinkType, framing, sp, dp, n int) rec {
	return rec{Index: i, Offset: off, Time: ts, Link: link, Kind: KindTCP, Family: 4,
		Src: "192.168.1.5", Dst: "192.168.1.35", Proto: 6, PayLen: 20 + n, TCPLen: 20 + n,
		SPort: uint16(sp), DPort: uint16(dp), Len: framing + 40 + n, Orig: framing + 40 + n}
}

func pcapCases(t *testing.T) []formatCase {
	var cases []formatCase
	for _, c := range []struct {
		name  string
		order binary.AppendByteOrder
		nano  bool
	}{
		{"pcap/le-usec", binary.LittleEndian, false},
		{"pcap/be-usec", binary.BigEndian, false},
		{"pcap/le-nsec", binary.LittleEndian, true},
		{"pcap/be-nsec", binary.BigEndian, true},
	} {
		f := newPcap(c.order, c.nano, uint32(LinkEthernet), 65535)
		var want []rec
		for i := range 3 {
			ts := t0.Add(time.Duration(i) * 1500 * time.Microsecond)
			f.add(ts, eth(etherIPv4, nil, ipv4(protoTCP, tcp(uint16(1000+i), 80, i), v4opts{})), 0)
			exp := ts.UnixNano()
			if !c.nano {
				exp = exp / 1000 * 1000
			}
			want = append(want, tcpRec(i, f.offs[i], exp, LinkEthernet, 14, 1000+i, 80, i))
		}
		// An ARP frame still counts as a record.
		f.add(t0, eth(0x0806, nil, make([]byte, 28)), 0)
		want = append(want, rec{Index: 3, Offset: f.offs[3], Time: t0.UnixNano() / 1000 * 1000, Link: LinkEthernet,
			Kind: KindNonIP, Reason: reasonNotIP, Len: 42, Orig: 42})
		if c.nano {
			want[3].Time = t0.UnixNano()
		}
		cases = append(cases, formatCase{c.name, f.bytes(), want})
	}

	// The Writer everyone else uses: little-endian, nanoseconds, raw IP,
	// including a record cut by the snap length.
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkRaw, 48)
	if err != nil {
		t.Fatal(err)
	}
	pkt := ipv4(protoTCP, tcp(5, 6, 0), v4opts{})
	if err := w.WritePacket(t0, pkt); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, formatCase{"pcap/writer", buf.Bytes(), []rec{tcpRec(0, 24, t0.UnixNano(), LinkRaw, 0, 5, 6, 0)}})

	// Snap-length-truncated record: the IP header promises more than was kept.
	f := newPcap(binary.LittleEndian, true, uint32(LinkRaw), 50)
	full := ipv4(protoTCP, tcp(7, 8, 100), v4opts{})
	f.add(t0, full[:50], len(full))
	cut := tcpRec(0, 24, t0.UnixNano(), LinkRaw, 0, 7, 8, 100)
	cut.TCPLen, cut.Len = 30, 50
	cases = append(cases, formatCase{"pcap/snaplen-cut", f.bytes(), []rec{cut}})

	// Link type with FCS bits set in the high bits of the field.
	f = newPcap(binary.LittleEndian, true, uint32(LinkEthernet)|0x1<<26|0x2<<28, 0)
	f.add(t0, append(eth(etherIPv4, nil, ipv4(protoTCP, tcp(9, 10, 0), v4opts{})), 1, 2, 3, 4), 0)
	fcs := tcpRec(0, 24, t0.UnixNano(), LinkEthernet, 14, 9, 10, 0)
	fcs.Len, fcs.Orig = 58, 58
	cases = append(cases, formatCase{"pcap/fcs-bits", f.bytes(), []rec{fcs}})
	return cases
}

func pcapngCases() []formatCase {
	var cases []formatCase
	for _, c := range []struct {
		name  string
		order binary.AppendByteOrder
	}{{"pcapng/le", binary.LittleEndian}, {"pcapng/be", binary.BigEndian}} {
		f := newNg(c.order)
		// Interface 0: Ethernet, default microseconds. Interface 1: raw IP,
		// nanoseconds, one hour of if_tsoffset. Interface 2: SLL2 at 2^-20 s.
		f.idb(LinkEthernet, 0, -1, 0)
		f.idb(LinkRaw, 65535, 9, 3600)
		f.idb(LinkSLL2, 262144, 0x80|20, 0)
		f.block(4, make([]byte, 12)) // name resolution block: skipped
		us := uint64(t0.UnixNano() / 1000)
		v4 := ipv4(protoTCP, tcp(1, 2, 3), v4opts{})
		var want []rec

		f.epb(0, us, eth(etherIPv4, []uint16{etherVLAN}, v4), 0)
		want = append(want, tcpRec(0, f.last(), int64(us)*1000, LinkEthernet, 18, 1, 2, 3))

		f.epb(1, uint64(t0.UnixNano()), v4, 0)
		r := tcpRec(1, f.last(), t0.UnixNano()+3600e9, LinkRaw, 0, 1, 2, 3)
		r.Interface = 1
		want = append(want, r)

		f.block(0x0BAD, make([]byte, 40)) // custom/unknown block: skipped
		f.block(5, make([]byte, 20))      // interface statistics: skipped

		units := uint64(t0.Unix())<<20 | 1<<19 // half a second in 2^-20 units
		f.epb(2, units, sll2(1, etherIPv4, v4), 0)
		r = tcpRec(2, f.last(), t0.Unix()*1e9+5e8, LinkSLL2, 20, 1, 2, 3)
		r.Interface = 2
		want = append(want, r)

		// Simple packet block: interface 0, no timestamp, reuses the last.
		f.spb(eth(etherIPv4, nil, v4), 0)
		want = append(want, tcpRec(3, f.last(), t0.Unix()*1e9+5e8, LinkEthernet, 14, 1, 2, 3))

		// Obsolete packet block on interface 1.
		f.opb(1, uint64(t0.UnixNano())+7, v4)
		r = tcpRec(4, f.last(), t0.UnixNano()+7+3600e9, LinkRaw, 0, 1, 2, 3)
		r.Interface = 1
		want = append(want, r)

		// A new section in the other byte order forgets the interfaces.
		other := binary.AppendByteOrder(binary.BigEndian)
		if c.order == binary.BigEndian {
			other = binary.LittleEndian
		}
		f.shb(other)
		f.idb(LinkNull, 0, 3, 0) // milliseconds
		f.epb(0, 1234, null(2, binary.LittleEndian, v4), 0)
		want = append(want, tcpRec(5, f.last(), 1234e6, LinkNull, 4, 1, 2, 3))

		cases = append(cases, formatCase{c.name, f.bytes(), want})
	}

	// SPB cut to the interface snap length.
	f := newNg(binary.LittleEndian)
	f.idb(LinkRaw, 44, -1, 0)
	v4 := ipv4(protoTCP, tcp(1, 2, 10), v4opts{})
	f.spb(v4[:44], len(v4))
	r := tcpRec(0, f.last(), 0, LinkRaw, 0, 1, 2, 10)
	r.TCPLen, r.Len = 24, 44
	cases = append(cases, formatCase{"pcapng/spb-snaplen", f.bytes(), []rec{r}})
	return cases
}

func allFormatCases(t *testing.T) []formatCase {
	cases := append(pcapCases(t), pcapngCases()...)
	zstd := haveZstd()
	if !zstd {
		t.Log("the zstd program is not on PATH (apt-get install zstd): the .zst cases are left out")
	}
	for _, c := range cases[:len(cases):len(cases)] {
		cases = append(cases, formatCase{c.name + ".gz", gz(t, c.data), c.want})
		if zstd {
			cases = append(cases, formatCase{c.name + ".zst", zst(t, c.data), c.want})
		}
	}
	return cases
}

func TestFormats(t *testing.T) {
	for _, c := range allFormatCases(t) {
		for _, src := range []struct {
			name string
			wrap func([]byte) io.Reader
		}{
			{"bytes", func(b []byte) io.Reader { return bytes.NewReader(b) }},
			{"onebyte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
			{"dataerr", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		} {
			t.Run(c.name+"/"+src.name, func(t *testing.T) {
				r, err := NewReader(src.wrap(c.data))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				got, err := readAll(t, r)
				if err != io.EOF {
					t.Fatalf("after %d records: %v, want io.EOF", len(got), err)
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Fatalf("records (-want +got):\n%s", diff)
				}
				wantFormat := "pcap"
				if strings.HasPrefix(c.name, "pcapng") {
					wantFormat = "pcapng"
				}
				if r.Format() != wantFormat {
					t.Errorf("Format() = %q, want %q", r.Format(), wantFormat)
				}
				if compressed := filepath.Ext(c.name) == ".gz" || filepath.Ext(c.name) == ".zst"; r.Compressed() != compressed {
					t.Errorf("Compressed() = %v, want %v", r.Compressed(), compressed)
				}
				if _, err := r.Next(); err != io.EOF {
					t.Errorf("Next after EOF: %v, want io.EOF again", err)
				}
			})
		}
	}
}

// TestBufferBoundaries reads more than the buffer holds, with records of
// every size from tiny to MaxRecord, through a reader that returns short
// reads, so records straddle every refill. An IPv4 packet cannot exceed
// 65535 bytes, so the MaxRecord-sized records are a maximal packet
// followed by trailing bytes (as padding or an FCS would be), which the
// decoder must cut at the IP total length.
func TestBufferBoundaries(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	type size struct{ payload, record int }
	var sizes []size
	for i := 0; buf.Len() < 3*bufSize; i++ {
		n := (i * 7919) % 3000
		if i%50 == 0 {
			n = 65535 - 40
		}
		pkt := ipv4(protoTCP, tcp(uint16(i), 1, n), v4opts{})
		if i%50 == 0 {
			pkt = append(pkt, make([]byte, MaxRecord-len(pkt))...)
		}
		if err := w.WritePacket(t0.Add(time.Duration(i)), pkt); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, size{n, len(pkt)})
	}
	for _, name := range []string{"plain", "half", "gzip"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(buf.Bytes())
			switch name {
			case "half":
				src = iotest.HalfReader(src)
			case "gzip":
				src = bytes.NewReader(gz(t, buf.Bytes()))
			}
			r, err := NewReader(src)
			if err != nil {
				t.Fatal(err)
			}
			off := int64(24)
			for i, s := range sizes {
				n := s.payload
				p, err := r.Next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if p.Index != i || p.Offset != off || p.Time != t0.UnixNano()+int64(i) || p.Kind != KindTCP ||
					p.SrcPort != uint16(i) || len(p.TCP) != 20+n || len(p.Data) != s.record {
					t.Fatalf("record %d: index %d offset %d (want %d) time %d kind %v %q port %d tcp %d (want %d) data %d (want %d)",
						i, p.Index, p.Offset, off, p.Time, p.Kind, p.Reason, p.SrcPort, len(p.TCP), 20+n, len(p.Data), s.record)
				}
				// The payload bytes must be the ones written, not a stale buffer.
				for j := 0; j < n; j += 97 {
					if p.TCP[20+j] != byte(j) {
						t.Fatalf("record %d: payload byte %d = %d, want %d", i, j, p.TCP[20+j], byte(j))
					}
				}
				off += int64(16 + s.record)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("at end: %v", err)
			}
		})
	}
}

func TestNextAllocs(t *testing.T) {
	var pc bytes.Buffer
	w, _ := NewWriter(&pc, LinkEthernet, 0)
	ng := newNg(binary.LittleEndian)
	ng.idb(LinkEthernet, 0, 9, 0)
	frame := eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 6), v4opts{}))
	for i := range 5000 {
		w.WritePacket(t0, frame)
		ng.epb(0, uint64(i), frame, 0)
	}
	for name, data := range map[string][]byte{"pcap": pc.Bytes(), "pcapng": ng.bytes(), "pcap.gz": gz(t, pc.Bytes())} {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		r.Next() // first fill
		n := testing.AllocsPerRun(4000, func() {
			if p, err := r.Next(); err != nil || p.Kind != KindTCP {
				t.Fatalf("%s: %v", name, err)
			}
		})
		if n != 0 {
			t.Errorf("%s: Next allocates %v times per record", name, n)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	f := newPcap(binary.LittleEndian, false, uint32(LinkRaw), 0)
	f.add(t0, ipv4(protoTCP, tcp(1, 2, 0), v4opts{}), 0)
	f.add(t0, ipv4(17, make([]byte, 8), v4opts{}), 0)
	plain := filepath.Join(dir, "a.pcap")
	packed := filepath.Join(dir, "a.pcap.gz")
	noext := filepath.Join(dir, "compressed-without-extension")
	if err := os.WriteFile(plain, f.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(packed, gz(t, f.bytes()), 0o644)
	os.WriteFile(noext, gz(t, f.bytes()), 0o644)

	for _, path := range []string{plain, packed, noext} {
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		if err != io.EOF || len(got) != 2 || got[0].Kind != KindTCP || got[1].Kind != KindNonTCP || got[1].Index != 1 {
			t.Errorf("%s: %+v, %v", path, got, err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := r.Next(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v, want os.ErrClosed", err)
		}
	}

	_, err := Open(filepath.Join(dir, "missing.pcap"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}

	notcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notcap, []byte("hello, world\n"), 0o644)
	_, err = Open(notcap)
	var fe *FormatError
	if !errors.As(err, &fe) || err.Error() != notcap+": not a pcap or pcapng file (starts with 68 65 6c 6c)" {
		t.Errorf("text file: %v", err)
	}
}

// TestInputOffset: the bytes read from the source, for progress against a
// file's size. Reading a plain file to the end has read all of it; a gzip
// file, all of its compressed bytes, although the decompressed stream (and
// so Packet.Offset) is larger. The count never decreases and never passes
// the file's size.
func TestInputOffset(t *testing.T) {
	f := newPcap(binary.LittleEndian, false, uint32(LinkRaw), 0)
	for i := 0; i < 3000; i++ {
		f.add(t0, ipv4(protoTCP, tcp(1, 2, i), v4opts{}), 0)
	}
	plain := f.bytes()
	packed := gz(t, plain)
	if len(packed) >= len(plain) {
		t.Fatalf("test capture does not compress: %d -> %d bytes", len(plain), len(packed))
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"gzip", packed}} {
		r, err := NewReader(bytes.NewReader(c.data))
		if err != nil {
			t.Fatal(err)
		}
		var last, maxOffset int64
		for {
			p, err := r.Next()
			if err != nil {
				break
			}
			maxOffset = max(maxOffset, p.Offset)
			n := r.InputOffset()
			if n < last || n > int64(len(c.data)) {
				t.Fatalf("%s: InputOffset %d after %d, file %d bytes", c.name, n, last, len(c.data))
			}
			last = n
		}
		if last != int64(len(c.data)) {
			t.Errorf("%s: InputOffset at the end %d, want the file's %d bytes", c.name, last, len(c.data))
		}
		if c.name == "gzip" && maxOffset <= int64(len(c.data)) {
			t.Errorf("gzip: decompressed offsets (up to %d) should pass the compressed size %d", maxOffset, len(c.data))
		}
	}
}

// TestOpenStdin reads "-" from a pipe: not seekable, gzip compressed.
func TestOpenStdin(t *testing.T) {
	f := newPcap(binary.BigEndian, true, uint32(LinkEthernet), 0)
	for i := range 100 {
		f.add(t0, eth(etherIPv6, nil, ipv6(protoTCP, nil, tcp(uint16(i), 2, i), 0)), 0)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	data := gz(t, f.bytes())
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	saved := os.Stdin
	os.Stdin = pr
	defer func() { os.Stdin = saved; pr.Close() }()

	r, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 100 {
		t.Fatalf("got %d records, %v", len(got), err)
	}
	for i, g := range got {
		if g.Kind != KindTCP || g.Family != 6 || g.SPort != uint16(i) || g.TCPLen != 20+i || g.Offset != f.offs[i] {
			t.Fatalf("record %d: %+v", i, g)
		}
	}
	r.Close()
}

// TestBufferGrowth checks the memory bound: a capture of small records
// keeps the initial buffer, a maximal record grows it, and a block that
// claims more than the cap is refused before anything is allocated for it.
func TestBufferGrowth(t *testing.T) {
	f := newPcap(binary.LittleEndian, true, uint32(LinkRaw), 0)
	for range 2000 {
		f.add(t0, ipv4(protoTCP, tcp(1, 2, 1000), v4opts{}), 0)
	}
	r, _ := NewReader(bytes.NewReader(f.bytes()))
	if got, err := readAll(t, r); err != io.EOF || len(got) != 2000 || len(r.buf) != initBuf {
		t.Errorf("small records: %d records, %v, buffer %d bytes (want %d)", len(got), err, len(r.buf), initBuf)
	}

	f.add(t0, make([]byte, MaxRecord), 0)
	r, _ = NewReader(bytes.NewReader(f.bytes()))
	if got, err := readAll(t, r); err != io.EOF || len(got) != 2001 || len(r.buf) > bufSize || len(r.buf) < MaxRecord {
		t.Errorf("maximal record: %d records, %v, buffer %d bytes", len(got), err, len(r.buf))
	}

	n := newNg(binary.LittleEndian)
	n.idb(LinkRaw, 0, -1, 0)
	huge := binary.LittleEndian.AppendUint32(bytes.Clone(n.bytes()), blockEPB)
	huge = binary.LittleEndian.AppendUint32(huge, 0xfffffff0)
	r, _ = NewReader(bytes.NewReader(append(huge, make([]byte, 100)...)))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "corrupt block length 4294967280 (limit 1048576)") || len(r.buf) != initBuf {
		t.Errorf("huge block: %v, buffer %d bytes", err, len(r.buf))
	}
}

// TestGzipMembers reads a capture split across two concatenated gzip
// members (what `cat a.gz b.gz` or pigz produce), record straddling the
// boundary included.
func TestGzipMembers(t *testing.T) {
	f := newPcap(binary.LittleEndian, true, uint32(LinkRaw), 0)
	for i := range 10 {
		f.add(t0, ipv4(protoTCP, tcp(uint16(i), 2, 10), v4opts{}), 0)
	}
	data := f.bytes()
	cut := int(f.offs[5]) + 7
	z := append(gz(t, data[:cut]), gz(t, data[cut:])...)
	r, err := NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 10 || got[9].SPort != 9 || got[5].Kind != KindTCP {
		t.Errorf("%d records, %v", len(got), err)
	}
}

// TestUnsupportedInterface: in pcapng, an interface of an unknown link
// type does not stop the read; its records are NonIP and still counted.
func TestUnsupportedInterface(t *testing.T) {
	n := newNg(binary.LittleEndian)
	n.idb(LinkType(189), 0, -1, 0) // USB Linux
	n.idb(LinkRaw, 0, -1, 0)
	n.epb(0, 1, make([]byte, 48), 0)
	n.epb(1, 2, ipv4(protoTCP, tcp(1, 2, 0), v4opts{}), 0)
	r, err := NewReader(bytes.NewReader(n.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 2 || got[0].Kind != KindNonIP || got[0].Reason != "unsupported link type 189 (USB_LINUX)" ||
		got[0].Link != 189 || got[1].Kind != KindTCP || got[1].Index != 1 {
		t.Errorf("%+v, %v", got, err)
	}
}

// TestUnsupportedPcapLink: a pcap file of a link type Decode does not
// read is read anyway, each record marked unsupported with its link type,
// as pcapng's interfaces are (it used to be an error at the file header,
// which left a caller unable to count or name the records).
func TestUnsupportedPcapLink(t *testing.T) {
	f := newPcap(binary.LittleEndian, false, 147, 0) // USER0
	f.add(t0, make([]byte, 40), 0)
	f.add(t0, make([]byte, 40), 0)
	r, err := NewReader(bytes.NewReader(f.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 2 || got[1].Kind != KindNonIP || got[1].Reason != "unsupported link type 147 (USER0)" || got[1].Link != 147 {
		t.Errorf("%+v, %v", got, err)
	}
	if n := LinkType(9).Name(); n != "PPP" {
		t.Errorf("LinkType(9).Name() = %q", n)
	}
	if n := LinkType(60000).Name(); n != "" {
		t.Errorf("LinkType(60000).Name() = %q", n)
	}
	for _, l := range []LinkType{LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkSLL2} {
		if l.Name() != l.String() {
			t.Errorf("%d: Name %q, String %q", l, l.Name(), l.String())
		}
	}
}
