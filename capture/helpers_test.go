package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os/exec"
	"testing"
	"time"
)

// Frame builders. They write what they are told, so tests can build both
// well-formed and broken packets.

var (
	v4a = [4]byte{192, 168, 1, 5}
	v4b = [4]byte{192, 168, 1, 35}
	v6a = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	v6b = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

// tcp returns a 20-byte TCP header (SYN) followed by payload bytes.
func tcp(sport, dport uint16, payload int) []byte {
	b := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	b[12] = 5 << 4
	b[13] = 0x02
	binary.BigEndian.PutUint16(b[14:], 65535)
	for i := range payload {
		b[20+i] = byte(i)
	}
	return b
}

type v4opts struct {
	opts   []byte // IPv4 options, multiple of 4
	frag   uint16 // flags+offset field
	totAdj int    // added to the true total length
	ihl    int    // overrides the IHL nibble when non-zero
}

func ipv4(proto byte, l4 []byte, o v4opts) []byte {
	hl := 20 + len(o.opts)
	b := make([]byte, hl+len(l4))
	ihl := hl / 4
	if o.ihl != 0 {
		ihl = o.ihl
	}
	b[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)+o.totAdj))
	binary.BigEndian.PutUint16(b[6:], o.frag)
	b[8] = 64
	b[9] = proto
	copy(b[12:], v4a[:])
	copy(b[16:], v4b[:])
	copy(b[20:], o.opts)
	copy(b[hl:], l4)
	return b
}

// ext is one IPv6 extension header: its type and its bytes after the
// next-header byte (the builder fills that in).
type ext struct {
	typ  byte
	body []byte
}

func ipv6(proto byte, exts []ext, l4 []byte, plenAdj int) []byte {
	var pay []byte
	for i, e := range exts {
		nh := proto
		if i+1 < len(exts) {
			nh = exts[i+1].typ
		}
		pay = append(pay, nh)
		pay = append(pay, e.body...)
	}
	pay = append(pay, l4...)
	b := make([]byte, 40, 40+len(pay))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(pay)+plenAdj))
	b[6] = proto
	if len(exts) > 0 {
		b[6] = exts[0].typ
	}
	b[7] = 64
	copy(b[8:], v6a[:])
	copy(b[24:], v6b[:])
	return append(b, pay...)
}

// optsHdr is a hop-by-hop/destination/routing header body of 8*(n+1)
// bytes in total: length byte then padding.
func optsHdr(n int) []byte {
	b := make([]byte, 8*(n+1)-1)
	b[0] = byte(n)
	return b
}

// fragHdr is a fragment header body: reserved, offset/flags, identification.
func fragHdr(offset uint16, more bool) []byte {
	b := make([]byte, 7)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[1:], v)
	binary.BigEndian.PutUint32(b[3:], 0xdeadbeef)
	return b
}

// ahHdr is an authentication header body with a 12-byte ICV (24 bytes
// total: payload length field 4 = 24/4 - 2).
func ahHdr() []byte {
	b := make([]byte, 23)
	b[0] = 4
	return b
}

func eth(etype uint16, tags []uint16, payload []byte) []byte {
	b := make([]byte, 12, 14+4*len(tags)+len(payload))
	copy(b, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	for i, tpid := range tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(100+i))
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func sll(hatype, proto uint16, payload []byte) []byte {
	b := make([]byte, 16, 16+len(payload))
	binary.BigEndian.PutUint16(b[2:], hatype)
	binary.BigEndian.PutUint16(b[4:], 6)
	binary.BigEndian.PutUint16(b[14:], proto)
	return append(b, payload...)
}

func sll2(hatype, proto uint16, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], proto)
	binary.BigEndian.PutUint32(b[4:], 3)
	binary.BigEndian.PutUint16(b[8:], hatype)
	b[11] = 6
	return append(b, payload...)
}

func null(af uint32, order binary.AppendByteOrder, payload []byte) []byte {
	b := order.AppendUint32(nil, af)
	return append(b, payload...)
}

// pcapFile builds a classic pcap file by hand, in either byte order and
// either timestamp resolution (the Writer only does little-endian ns).
type pcapFile struct {
	order binary.AppendByteOrder
	nano  bool
	buf   bytes.Buffer
	offs  []int64 // offset of every record written
}

func newPcap(order binary.AppendByteOrder, nano bool, link uint32, snap uint32) *pcapFile {
	f := &pcapFile{order: order, nano: nano}
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	h := order.AppendUint32(nil, magic)
	h = order.AppendUint16(h, 2)
	h = order.AppendUint16(h, 4)
	h = order.AppendUint32(h, 0)
	h = order.AppendUint32(h, 0)
	h = order.AppendUint32(h, snap)
	h = order.AppendUint32(h, link)
	f.buf.Write(h)
	return f
}

// wireLen is the convention of every builder here: orig 0 means the
// record is complete (original length = captured length).
func wireLen(data []byte, orig int) int {
	if orig == 0 {
		return len(data)
	}
	return orig
}

func (f *pcapFile) add(ts time.Time, data []byte, orig int) *pcapFile {
	orig = wireLen(data, orig)
	frac := uint32(ts.Nanosecond())
	if !f.nano {
		frac /= 1000
	}
	h := f.order.AppendUint32(nil, uint32(ts.Unix()))
	h = f.order.AppendUint32(h, frac)
	h = f.order.AppendUint32(h, uint32(len(data)))
	h = f.order.AppendUint32(h, uint32(orig))
	f.offs = append(f.offs, int64(f.buf.Len()))
	f.buf.Write(h)
	f.buf.Write(data)
	return f
}

func (f *pcapFile) bytes() []byte { return f.buf.Bytes() }

// ngFile builds a pcapng stream block by block.
type ngFile struct {
	order binary.AppendByteOrder
	buf   bytes.Buffer
	offs  []int64 // offset of every block written
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	body = pad4(body)
	n := uint32(12 + len(body))
	b := f.order.AppendUint32(nil, typ)
	b = f.order.AppendUint32(b, n)
	b = append(b, body...)
	b = f.order.AppendUint32(b, n)
	f.offs = append(f.offs, int64(f.buf.Len()))
	f.buf.Write(b)
	return f
}

// last is the offset of the last block written.
func (f *ngFile) last() int64 { return f.offs[len(f.offs)-1] }

func newNg(order binary.AppendByteOrder) *ngFile {
	f := &ngFile{order: order}
	return f.shb(order)
}

// shb starts a new section, possibly in another byte order.
func (f *ngFile) shb(order binary.AppendByteOrder) *ngFile {
	f.order = order
	const byteOrderMagic = 0x1a2b3c4d // the pcapng Section Header's byte-order magic
	body := order.AppendUint32(nil, byteOrderMagic)
	body = order.AppendUint16(body, 1)
	body = order.AppendUint16(body, 0)
	body = order.AppendUint64(body, ^uint64(0)) // section length unknown
	// shb_userappl option, to be skipped
	body = order.AppendUint16(body, 4)
	body = order.AppendUint16(body, 5)
	body = pad4(append(body, "tcpct"...))
	body = order.AppendUint32(body, 0)
	return f.block(blockSHB, body)
}

// opt appends one option (code, value, padding).
func (f *ngFile) opt(b []byte, code uint16, v []byte) []byte {
	b = f.order.AppendUint16(b, code)
	b = f.order.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

// idb adds an interface; tsresol < 0 means no if_tsresol option.
func (f *ngFile) idb(link LinkType, snap uint32, tsresol int, tsoffset int64) *ngFile {
	body := f.order.AppendUint16(nil, uint16(link))
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, snap)
	body = f.opt(body, 2, []byte("eth0")) // if_name, skipped
	if tsresol >= 0 {
		body = f.opt(body, optTsresol, []byte{byte(tsresol)})
	}
	if tsoffset != 0 {
		body = f.opt(body, optTsoffset, f.order.AppendUint64(nil, uint64(tsoffset)))
	}
	body = f.order.AppendUint32(body, 0)
	return f.block(blockIDB, body)
}

func (f *ngFile) epb(id uint32, units uint64, data []byte, orig int) *ngFile {
	orig = wireLen(data, orig)
	body := f.order.AppendUint32(nil, id)
	body = f.order.AppendUint32(body, uint32(units>>32))
	body = f.order.AppendUint32(body, uint32(units))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, uint32(orig))
	body = pad4(append(body, data...))
	body = f.opt(body, 1, []byte("a comment")) // opt_comment, skipped
	body = f.order.AppendUint32(body, 0)
	return f.block(blockEPB, body)
}

func (f *ngFile) opb(id uint16, units uint64, data []byte) *ngFile {
	body := f.order.AppendUint16(nil, id)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, uint32(units>>32))
	body = f.order.AppendUint32(body, uint32(units))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, uint32(len(data)))
	return f.block(blockOPB, append(body, data...))
}

// spb adds a simple packet block. Its captured length is implied by the
// original length (and the snap length), so orig matters here: 0 means
// len(data), as for the other builders.
func (f *ngFile) spb(data []byte, orig int) *ngFile {
	orig = wireLen(data, orig)
	body := f.order.AppendUint32(nil, uint32(orig))
	return f.block(blockSPB, append(body, data...))
}

func (f *ngFile) bytes() []byte { return f.buf.Bytes() }

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAll drains a reader, copying what each Packet says into a summary.
type rec struct {
	Index     int
	Offset    int64
	Time      int64
	Interface int
	Link      LinkType
	Kind      Kind
	Reason    string
	Family    uint8
	Src, Dst  string
	Proto     uint8
	PayLen    int
	TCPLen    int
	SPort     uint16
	DPort     uint16
	Len, Orig int
}

func summarize(p *Packet) rec {
	r := rec{Index: p.Index, Offset: p.Offset, Time: p.Time, Interface: p.Interface, Link: p.Link,
		Kind: p.Kind, Reason: p.Reason, Family: p.Family, Proto: p.Proto, PayLen: p.IPPayloadLen,
		TCPLen: len(p.TCP), SPort: p.SrcPort, DPort: p.DstPort, Len: len(p.Data), Orig: p.OrigLen}
	if p.Src.IsValid() {
		r.Src, r.Dst = p.Src.String(), p.Dst.String()
	}
	return r
}

func readAll(t testing.TB, r *Reader) ([]rec, error) {
	t.Helper()
	var out []rec
	for {
		p, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, summarize(p))
	}
}

// zst compresses b with the zstd program; the test skips when the
// program is missing (needZstd).
func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	needZstd(t)
	cmd := exec.Command("zstd", "-q", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd -q -c: %v", err)
	}
	return out
}

// haveZstd reports whether the zstd program, which reads zstd captures,
// is on PATH (.ci/run installs it).
func haveZstd() bool {
	_, err := exec.LookPath("zstd")
	return err == nil
}

func needZstd(t testing.TB) {
	t.Helper()
	if !haveZstd() {
		t.Skip("the zstd program is not on PATH (apt-get install zstd): zstd captures cannot be read or made")
	}
}
