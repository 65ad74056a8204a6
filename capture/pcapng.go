package capture

import (
	"fmt"
	"io"
	"math/bits"
)

// pcapng block types (draft-ietf-opsawg-pcapng §4 and Appendix "Block Type
// Codes").
const (
	blockSHB = 0x0a0d0d0a // Section Header
	blockIDB = 0x00000001 // Interface Description
	blockOPB = 0x00000002 // Packet Block (obsolete, still written by old tools)
	blockSPB = 0x00000003 // Simple Packet
	blockEPB = 0x00000006 // Enhanced Packet

	optEndOfOpt = 0
	optTsresol  = 9  // if_tsresol: 1 byte
	optTsoffset = 14 // if_tsoffset: int64 seconds
)

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

func (r *Reader) nextPcapng() (*Packet, error) {
	for {
		if !r.fill(8) {
			if r.atEOF() {
				return nil, io.EOF
			}
			// Most blocks are packets: name the record that would be next.
			return nil, r.short(r.index, "block header", 8)
		}
		h := r.buf[r.pos:]
		typ := r.u32(h)
		if typ == blockSHB {
			if err := r.readSHB(); err != nil {
				return nil, err
			}
			continue
		}
		off := r.offset()
		blen := int64(r.u32(h[4:]))
		isPacket := typ == blockEPB || typ == blockSPB || typ == blockOPB
		rec := -1
		if isPacket {
			rec = r.index
		}
		if blen < 12 || blen%4 != 0 {
			return nil, r.fail(rec, off, fmt.Sprintf("corrupt block length %d", blen), nil)
		}
		if !isPacket && typ != blockIDB {
			// NRB, ISB, DSB, custom and unknown blocks: skip without
			// buffering, so a huge one costs time, never memory.
			r.pos += 8
			if !r.discard(blen - 12) {
				return nil, r.truncBlock(rec, off, blen)
			}
			if !r.fill(4) {
				return nil, r.truncBlock(rec, off, blen)
			}
			if t := int64(r.u32(r.buf[r.pos:])); t != blen {
				return nil, r.fail(rec, off, fmt.Sprintf("corrupt block: trailing length %d, leading length %d", t, blen), nil)
			}
			r.pos += 4
			continue
		}
		if blen > maxBlock {
			return nil, r.fail(rec, off, fmt.Sprintf("corrupt block length %d (limit %d)", blen, maxBlock), nil)
		}
		n := int(blen)
		if !r.fill(n) {
			return nil, r.truncBlock(rec, off, blen)
		}
		b := r.buf[r.pos : r.pos+n]
		if t := r.u32(b[n-4:]); int64(t) != blen {
			return nil, r.fail(rec, off, fmt.Sprintf("corrupt block: trailing length %d, leading length %d", t, blen), nil)
		}
		if typ == blockIDB {
			if err := r.readIDB(b, off); err != nil {
				return nil, err
			}
			r.pos += n
			continue
		}
		p, err := r.packetBlock(typ, b, off)
		if err != nil {
			return nil, err
		}
		r.pos += n
		r.index++
		return p, nil
	}
}

func (r *Reader) truncBlock(rec int, off int64, blen int64) error {
	if where, cause := r.truncation(); where != "" {
		got := r.base + int64(r.end) - off
		return r.fail(rec, off, fmt.Sprintf("truncated block: header says %d bytes, %s ends after %d", blen, where, got), cause)
	}
	return r.short(rec, "block", int(min(blen, maxBlock)))
}

// readSHB reads a Section Header Block, which sets the byte order for the
// section and forgets the previous section's interfaces.
func (r *Reader) readSHB() error {
	off := r.offset()
	if !r.fill(16) {
		return r.short(-1, "section header block", 16)
	}
	h := r.buf[r.pos:]
	switch {
	case h[8] == 0x4d && h[9] == 0x3c && h[10] == 0x2b && h[11] == 0x1a:
		r.be = false
	case h[8] == 0x1a && h[9] == 0x2b && h[10] == 0x3c && h[11] == 0x4d:
		r.be = true
	default:
		return r.fail(-1, off, fmt.Sprintf("bad pcapng byte-order magic % x", h[8:12]), nil)
	}
	blen := int64(r.u32(h[4:]))
	if blen < 28 || blen%4 != 0 {
		return r.fail(-1, off, fmt.Sprintf("corrupt section header length %d", blen), nil)
	}
	if major, minor := r.u16(h[12:]), r.u16(h[14:]); major != 1 {
		return r.fail(-1, off, fmt.Sprintf("unsupported pcapng version %d.%d", major, minor), nil)
	}
	r.ifaces = r.ifaces[:0]
	// Section length and options (shb_hardware, ...) do not matter here.
	r.pos += 8
	if !r.discard(blen - 12) {
		return r.truncBlock(-1, off, blen)
	}
	if !r.fill(4) {
		return r.truncBlock(-1, off, blen)
	}
	if t := int64(r.u32(r.buf[r.pos:])); t != blen {
		return r.fail(-1, off, fmt.Sprintf("corrupt block: trailing length %d, leading length %d", t, blen), nil)
	}
	r.pos += 4
	return nil
}

// readIDB reads an Interface Description Block b (whole, trailer checked).
func (r *Reader) readIDB(b []byte, off int64) error {
	if len(b) < 20 {
		return r.fail(-1, off, fmt.Sprintf("corrupt interface block length %d", len(b)), nil)
	}
	if len(r.ifaces) >= maxInterfaces {
		return r.fail(-1, off, fmt.Sprintf("more than %d interfaces in one section", maxInterfaces), nil)
	}
	snap := r.u32(b[12:])
	if snap > MaxSnapLen {
		return r.fail(-1, off, fmt.Sprintf("absurd snap length %d (limit %d) for interface %d", snap, MaxSnapLen, len(r.ifaces)), nil)
	}
	ifc := iface{link: LinkType(r.u16(b[8:])), snaplen: int(snap), mul: 1000, div: 1}
	opts := b[16 : len(b)-4]
	for len(opts) >= 4 {
		code, olen := r.u16(opts), int(r.u16(opts[2:]))
		if code == optEndOfOpt {
			break
		}
		padded := (olen + 3) &^ 3
		if 4+padded > len(opts) {
			return r.fail(-1, off, fmt.Sprintf("corrupt interface block: option %d of %d bytes overruns the block", code, olen), nil)
		}
		v := opts[4 : 4+olen]
		switch code {
		case optTsresol:
			if olen != 1 {
				return r.fail(-1, off, fmt.Sprintf("corrupt if_tsresol option of %d bytes", olen), nil)
			}
			if err := ifc.setResolution(v[0]); err != "" {
				return r.fail(-1, off, err, nil)
			}
		case optTsoffset:
			if olen != 8 {
				return r.fail(-1, off, fmt.Sprintf("corrupt if_tsoffset option of %d bytes", olen), nil)
			}
			var secs uint64
			if r.be {
				secs = uint64(r.u32(v))<<32 | uint64(r.u32(v[4:]))
			} else {
				secs = uint64(r.u32(v[4:]))<<32 | uint64(r.u32(v))
			}
			ifc.offset = int64(secs) * 1e9
		}
		opts = opts[4+padded:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// setResolution applies if_tsresol: with the high bit clear the unit is
// 10^-v seconds, with it set 2^-(v&0x7f) (draft-ietf-opsawg-pcapng §4.2).
func (ifc *iface) setResolution(v byte) string {
	e := uint(v & 0x7f)
	if v&0x80 != 0 {
		ifc.bin, ifc.shift = true, e
		return ""
	}
	switch {
	case e <= 9:
		ifc.mul, ifc.div = pow10[9-e], 1
	case e-9 < uint(len(pow10)):
		ifc.mul, ifc.div = 1, pow10[e-9]
	default:
		return fmt.Sprintf("unsupported if_tsresol 10^-%d", e)
	}
	return ""
}

// ns converts a 64-bit timestamp in interface units to Unix nanoseconds.
// Garbage timestamps wrap rather than fail: the clock is the tracker's
// business, the framing is ours.
func (ifc *iface) ns(units uint64) int64 {
	if ifc.bin {
		hi, lo := bits.Mul64(units, 1e9)
		var q uint64
		switch s := ifc.shift; {
		case s == 0:
			q = lo
		case s < 64:
			q = hi<<(64-s) | lo>>s
		default:
			q = hi >> (s - 64)
		}
		return int64(q) + ifc.offset
	}
	if ifc.div == 1 {
		return int64(units)*ifc.mul + ifc.offset
	}
	return int64(units/uint64(ifc.div)) + ifc.offset
}

// packetBlock decodes an EPB, SPB or OPB b (whole, trailer checked).
func (r *Reader) packetBlock(typ uint32, b []byte, off int64) (*Packet, error) {
	var (
		id           int
		units        uint64
		caplen, orig uint32
		data         int // offset of the packet data in b
		hasTime      = true
	)
	switch typ {
	case blockEPB:
		if len(b) < 32 {
			return nil, r.fail(r.index, off, fmt.Sprintf("corrupt enhanced packet block length %d", len(b)), nil)
		}
		id = int(r.u32(b[8:]))
		units = uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
		caplen, orig, data = r.u32(b[20:]), r.u32(b[24:]), 28
	case blockOPB:
		if len(b) < 32 {
			return nil, r.fail(r.index, off, fmt.Sprintf("corrupt packet block length %d", len(b)), nil)
		}
		id = int(r.u16(b[8:]))
		units = uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
		caplen, orig, data = r.u32(b[20:]), r.u32(b[24:]), 28
	default: // SPB: original length only; captured = min(orig, snaplen, room)
		if len(b) < 16 {
			return nil, r.fail(r.index, off, fmt.Sprintf("corrupt simple packet block length %d", len(b)), nil)
		}
		orig, data, hasTime = r.u32(b[8:]), 12, false
		caplen = uint32(len(b) - 16)
		if orig < caplen {
			caplen = orig
		}
		if len(r.ifaces) > 0 && r.ifaces[0].snaplen != 0 && int(caplen) > r.ifaces[0].snaplen {
			caplen = uint32(r.ifaces[0].snaplen)
		}
	}
	if id >= len(r.ifaces) {
		return nil, r.fail(r.index, off, fmt.Sprintf("packet for interface %d, but the section describes %d", id, len(r.ifaces)), nil)
	}
	// An interface of a link type Decode does not know (USB, nflog, ...
	// beside the Ethernet ones in a multi-interface capture) is not a
	// reason to stop: its records come back as KindNonIP.
	ifc := &r.ifaces[id]
	if caplen > MaxRecord {
		return nil, r.fail(r.index, off, fmt.Sprintf("corrupt record length %d (limit %d)", caplen, MaxRecord), nil)
	}
	n := int(caplen) // may exceed ifc.snaplen: accepted, as for pcap
	if data+((n+3)&^3)+4 > len(b) {
		return nil, r.fail(r.index, off, fmt.Sprintf("corrupt record length %d overruns block of %d bytes", n, len(b)), nil)
	}
	p := &r.pkt
	p.Index = r.index
	p.Offset = off
	p.Interface = id
	if hasTime {
		p.Time = ifc.ns(units)
		r.lastTime = p.Time
	} else {
		p.Time = r.lastTime
	}
	p.Decode(ifc.link, b[data:data+n:data+n], int(orig))
	return p, nil
}
