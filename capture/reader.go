package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
)

// Limits that keep memory bounded whatever a file claims. A Reader holds
// one buffer: initBuf bytes, grown (by doubling) only when a record or
// block needs more, and never beyond bufSize. Small captures, and the
// fuzzer, never pay for the large buffer.
const (
	// MaxRecord is the largest captured length accepted for one record:
	// libpcap's MAXIMUM_SNAPLEN (262144), which no capture tool exceeds.
	MaxRecord = 256 << 10
	// MaxSnapLen is the largest snap length a file header may declare.
	// Real files say 65535 or 262144 (or 0, "unknown"); anything near 2^32
	// is a corrupt header, not a setting.
	MaxSnapLen = 64 << 20

	initBuf       = 64 << 10 // a bufio-sized start: records are usually < 1.5 KiB
	bufSize       = 1 << 20  // holds any packet block: MaxRecord plus options
	maxBlock      = bufSize  // largest pcapng packet or interface block
	maxInterfaces = 1 << 16  // IDBs per section; each costs 40 bytes
	maxEmptyReads = 100      // consecutive (0, nil) reads before giving up, as bufio does

)

type format uint8

const (
	formatPcap format = iota + 1
	formatPcapng
)

// Reader reads records from a pcap or pcapng stream, optionally gzip or
// zstd compressed (zstd through the zstd program; see the package
// documentation, "Formats"). It is not safe for concurrent use.
type Reader struct {
	src  io.Reader
	in   *countingReader // the source as given, before decompression
	file *os.File        // closed by Close when Open opened it
	gz   *gzip.Reader    // closed by Close
	zst  *unzstd         // the zstd program; stopped by Close
	name string          // for error messages

	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	base     int64 // stream offset of buf[0]
	rerr     error // first error from src; no Read after it
	err      error // sticky: returned by every Next after a failure

	format format
	be     bool // byte order of the file (pcap) or current section (pcapng)

	// pcap
	link   LinkType
	fracNS int64 // nanoseconds per unit of the sub-second field: 1000 or 1

	// pcapng
	ifaces   []iface
	lastTime int64 // for simple packet blocks, which carry no timestamp

	index int // Index of the next record
	pkt   Packet
}

// iface is one pcapng Interface Description Block, reduced to what
// decoding needs.
type iface struct {
	link    LinkType
	snaplen int   // 0: unlimited
	mul     int64 // timestamp units -> ns: ns = units*mul/div, or units*1e9>>shift when bin
	div     int64
	shift   uint
	bin     bool
	offset  int64 // if_tsoffset in ns
}

// Open opens a capture file; "-" reads standard input. Compression is
// detected from the content, not the name. A file that cannot be opened
// yields the *fs.PathError from os.Open; everything else is a
// *FormatError.
func Open(path string) (*Reader, error) {
	if path == "-" {
		return newReader(os.Stdin, "stdin", nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newReader(f, path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader reads a capture from r, which need not be seekable. It reads
// the file header before returning; a stream that is not a capture is a
// *FormatError. Close does not close r.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(r, "", nil)
}

func newReader(src io.Reader, name string, file *os.File) (*Reader, error) {
	in := &countingReader{r: src}
	src = in
	r := &Reader{src: src, in: in, file: file, name: name, index: 0}
	// Sniff for gzip before anything else: its magic (RFC 1952 ID1 ID2)
	// cannot begin a pcap or pcapng file.
	var head [4]byte
	n, err := io.ReadFull(src, head[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, r.fail(-1, 0, "read error", err)
	}
	gzipped := n >= 2 && head[0] == 0x1f && head[1] == 0x8b
	// A Zstandard frame begins with the magic 0xFD2FB528, little-endian
	// (RFC 8878 §3.1.1); it cannot begin a capture either.
	zstded := n == 4 && head == [4]byte{0x28, 0xb5, 0x2f, 0xfd}
	if gzipped {
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(head[:n]), src))
		if err != nil {
			return nil, r.fail(-1, 0, "bad gzip header", err)
		}
		r.gz, r.src = zr, zr
		r.buf = make([]byte, initBuf)
	} else if zstded {
		// Through the zstd program (unzstd), fed from the source as it
		// was given, not through the counting reader, which it counts
		// for itself.
		zr, err := startZstd(head[:n], in.r)
		if errors.Is(err, exec.ErrNotFound) {
			return nil, r.fail(-1, -1, "zstd-compressed: reading it needs the zstd program: apt-get install zstd, or decompress it first", err)
		}
		if err != nil {
			return nil, r.fail(-1, -1, "zstd-compressed: cannot start the zstd program", err)
		}
		r.zst, r.src = zr, zr
		r.buf = make([]byte, initBuf)
	} else {
		r.buf = make([]byte, initBuf)
		r.end = copy(r.buf, head[:n])
		if err != nil {
			r.rerr = io.EOF
		}
	}
	if err := r.readFileHeader(); err != nil {
		if r.gz != nil {
			r.gz.Close()
		}
		if r.zst != nil {
			r.zst.close()
		}
		return nil, err
	}
	return r, nil
}

// InputOffset returns how many bytes the Reader has read from its file or
// stream so far: for a gzip-compressed capture, compressed bytes. Reading
// is buffered, so it runs ahead of the records returned by up to a
// buffer's worth; it is meant for progress reports against the file's
// size, which Packet.Offset (a position in the decompressed stream) cannot
// give for a compressed file.
func (r *Reader) InputOffset() int64 {
	if r.zst != nil {
		return r.zst.fed.Load()
	}
	return r.in.n
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
	}
	return n, err
}

// Format returns "pcap" or "pcapng".
func (r *Reader) Format() string {
	if r.format == formatPcapng {
		return "pcapng"
	}
	return "pcap"
}

// Compressed reports whether the stream was gzip or zstd compressed.
func (r *Reader) Compressed() bool { return r.gz != nil || r.zst != nil }

// Close releases the decompressor (for zstd, stops the zstd program if it
// is still running) and, for Open, the file. Next returns an error
// afterwards.
func (r *Reader) Close() error {
	var err error
	if r.gz != nil {
		err = r.gz.Close()
		r.gz = nil
	}
	if r.zst != nil {
		r.zst.close()
		r.zst = nil
	}
	if r.file != nil {
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
		r.file = nil
	}
	if r.err == nil {
		r.err = os.ErrClosed
	}
	return err
}

// Next returns the next record. It returns io.EOF after the last one and a
// *FormatError when the stream is corrupt or truncated; every record before
// the fault has been returned. The Packet and its slices are reused: they
// are valid until the next call.
func (r *Reader) Next() (*Packet, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.next()
}

// next reads the next record of the file's format.
func (r *Reader) next() (*Packet, error) {
	if r.format == formatPcap {
		return r.nextPcap()
	}
	return r.nextPcapng()
}

// fill makes at least n bytes available at buf[pos:], n <= bufSize.
func (r *Reader) fill(n int) bool {
	if r.end-r.pos >= n {
		return true
	}
	return r.fillSlow(n)
}

func (r *Reader) fillSlow(n int) bool {
	if n > len(r.buf) {
		// Grow to the next power of two that holds n; callers bound n
		// by bufSize, so a file can cost at most that much.
		size := len(r.buf)
		for size < n {
			size *= 2
		}
		buf := make([]byte, min(size, bufSize))
		r.base += int64(r.pos)
		r.end = copy(buf, r.buf[r.pos:r.end])
		r.pos = 0
		r.buf = buf
	} else if r.pos+n > len(r.buf) {
		// Slide the unread tail to the front. This happens once per
		// buffer's worth of records, so the copy is cheap; it invalidates
		// the previous Packet, which the contract allows.
		r.base += int64(r.pos)
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	empty := 0
	for r.end-r.pos < n && r.rerr == nil {
		m, err := r.src.Read(r.buf[r.end:])
		if m < 0 || m > len(r.buf)-r.end {
			r.rerr = errors.New("source returned an invalid count")
			break
		}
		r.end += m
		switch {
		case err != nil:
			r.rerr = err
		case m == 0:
			if empty++; empty >= maxEmptyReads {
				r.rerr = io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return r.end-r.pos >= n
}

// discard skips n bytes, streaming: a large block never needs to fit.
func (r *Reader) discard(n int64) bool {
	for n > 0 {
		if r.pos == r.end && !r.fillSlow(1) {
			return false
		}
		k := min(n, int64(r.end-r.pos))
		r.pos += int(k)
		n -= k
	}
	return true
}

func (r *Reader) avail() int { return r.end - r.pos }

// offset is the stream offset of the next unread byte.
func (r *Reader) offset() int64 { return r.base + int64(r.pos) }

func (r *Reader) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// fail records a sticky FormatError.
func (r *Reader) fail(record int, off int64, msg string, err error) error {
	r.err = &FormatError{Path: r.name, Record: record, Offset: off, Msg: msg, Err: err}
	return r.err
}

// short reports why fill(need) failed for a structure starting at the
// current position: truncation at end of stream, or a read error.
func (r *Reader) short(record int, what string, need int) error {
	where, cause := r.truncation()
	if where == "" {
		return r.fail(record, r.offset(), "read error", cause)
	}
	return r.fail(record, r.offset(), fmt.Sprintf("truncated %s: needs %d bytes, %s ends after %d", what, need, where, r.avail()), cause)
}

// truncation says where the input ended when a fill fell short: "file"
// (a clean end), "stream" (a cut gzip stream, whose error the FormatError
// keeps), or "" for a read error (the cause).
func (r *Reader) truncation() (where string, cause error) {
	switch {
	case r.rerr == io.EOF:
		return "file", nil
	case errors.Is(r.rerr, io.ErrUnexpectedEOF):
		return "stream", r.rerr
	}
	return "", r.rerr
}

// atEOF reports a clean end of stream: nothing buffered, source exhausted.
func (r *Reader) atEOF() bool {
	return r.avail() == 0 && r.rerr == io.EOF
}

// File magics, as bytes at the start of the stream.
var (
	magicPcapLE   = [4]byte{0xd4, 0xc3, 0xb2, 0xa1} // 0xa1b2c3d4 little-endian: µs
	magicPcapBE   = [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	magicPcapNsLE = [4]byte{0x4d, 0x3c, 0xb2, 0xa1} // 0xa1b23c4d: ns
	magicPcapNsBE = [4]byte{0xa1, 0xb2, 0x3c, 0x4d}
	magicPcapng   = [4]byte{0x0a, 0x0d, 0x0d, 0x0a} // SHB block type, a palindrome
)

func (r *Reader) readFileHeader() error {
	if !r.fill(4) {
		if r.rerr != io.EOF {
			return r.short(-1, "file header", 4)
		}
		if r.avail() == 0 {
			return r.fail(-1, -1, "empty file, not a capture", nil)
		}
		return r.fail(-1, -1, fmt.Sprintf("not a capture file: only %d bytes", r.avail()), nil)
	}
	m := [4]byte(r.buf[r.pos : r.pos+4])
	switch m {
	case magicPcapLE, magicPcapNsLE, magicPcapBE, magicPcapNsBE:
		r.format = formatPcap
		r.be = m == magicPcapBE || m == magicPcapNsBE
		r.fracNS = 1000
		if m == magicPcapNsLE || m == magicPcapNsBE {
			r.fracNS = 1
		}
		return r.readPcapHeader()
	case magicPcapng:
		r.format = formatPcapng
		return nil // the SHB is read as the first block by Next
	}
	what := "not a pcap or pcapng file"
	if r.gz != nil {
		what = "gzip content is not a pcap or pcapng file"
	}
	if r.zst != nil {
		what = "zstd content is not a pcap or pcapng file"
	}
	return r.fail(-1, -1, fmt.Sprintf("%s (starts with % x)", what, m), nil)
}

// readPcapHeader reads the 24-byte pcap file header
// (draft-ietf-opsawg-pcap §4).
func (r *Reader) readPcapHeader() error {
	if !r.fill(24) {
		return r.short(-1, "pcap file header", 24)
	}
	h := r.buf[r.pos : r.pos+24]
	major, minor := r.u16(h[4:]), r.u16(h[6:])
	if major != 2 {
		return r.fail(-1, 4, fmt.Sprintf("unsupported pcap version %d.%d", major, minor), nil)
	}
	snap := r.u32(h[16:])
	if snap > MaxSnapLen {
		return r.fail(-1, 16, fmt.Sprintf("absurd snap length %d (limit %d)", snap, MaxSnapLen), nil)
	}
	// The low 16 bits are the link type; the high bits may carry the FCS
	// length (draft-ietf-opsawg-pcap §4, "LinkType and additional
	// information"). Trailing FCS bytes are cut by the IP length anyway.
	// A link type Decode does not read is not an error: its records are
	// returned, each marked "unsupported link type" with its Link, as
	// pcapng's are, so that a caller can count and name them.
	r.link = LinkType(r.u32(h[20:]) & 0xffff)
	r.pos += 24
	return nil
}

func (r *Reader) nextPcap() (*Packet, error) {
	const hdr = 16
	if !r.fill(hdr) {
		if r.atEOF() {
			return nil, io.EOF
		}
		return nil, r.short(r.index, "record header", hdr)
	}
	h := r.buf[r.pos : r.pos+hdr]
	caplen := r.u32(h[8:])
	if caplen > MaxRecord {
		return nil, r.fail(r.index, r.offset(), fmt.Sprintf("corrupt record length %d (limit %d)", caplen, MaxRecord), nil)
	}
	// A record longer than the header's snap length is accepted, as
	// libpcap and Wireshark accept it: some writers get the header wrong,
	// and MaxRecord already bounds memory.
	n := int(caplen)
	if !r.fill(hdr + n) {
		if where, cause := r.truncation(); where != "" {
			return nil, r.fail(r.index, r.offset(), fmt.Sprintf("truncated record: header says %d bytes, %s ends after %d", n, where, r.avail()-hdr), cause)
		}
		return nil, r.short(r.index, "record", hdr+n)
	}
	// fill may have slid the buffer: take the header from where it is now.
	h = r.buf[r.pos : r.pos+hdr]
	p := &r.pkt
	p.Index = r.index
	p.Offset = r.offset()
	p.Interface = 0
	p.Time = int64(r.u32(h[0:]))*1e9 + int64(r.u32(h[4:]))*r.fracNS
	orig := int(r.u32(h[12:]))
	data := r.buf[r.pos+hdr : r.pos+hdr+n : r.pos+hdr+n]
	r.pos += hdr + n
	r.index++
	p.Decode(r.link, data, orig)
	return p, nil
}

// String names the link type as the tcpdump.org registry does
// ([LinkType.Name]), or gives its number when the name is not known here.
func (l LinkType) String() string {
	if n := LinkType(l).Name(); n != "" {
		return n
	}
	return strconv.FormatUint(uint64(l), 10)
}

// Supported reports whether Decode understands the link type.
func (l LinkType) Supported() bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkSLL2,
		LinkPPP, LinkPPPHDLC, LinkPPPoE, LinkCHDLC, LinkIEEE80211, LinkRadiotap, LinkPPPWithDir, LinkCHDLCWithDir, LinkNFLOG, LinkIPoIB:
		return true
	}
	return false
}

// SetDecap makes the Reader decode the packets inside tunnels (VXLAN,
// Geneve, GRE, IP-in-IP, MPLS, PPPoE; see the package documentation,
// "Tunnels") instead of classifying tunnelled records as not TCP. It
// applies from the next record on.
func (r *Reader) SetDecap(on bool) { r.pkt.Decap = on }
