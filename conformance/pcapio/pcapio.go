// Package pcapio reads classic pcap files into memory for the conformance
// tools. It is deliberately minimal (the full decoder lives in capture/): it
// understands both byte orders, micro- and nanosecond timestamps, and strips
// the link-layer header of the link types tcpct writes or commonly meets, so
// that every returned record starts at its IP header.
package pcapio

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Record is one captured packet: its capture time and its bytes from the
// IP header on. Data is nil for a record whose link layer is not IP.
type Record struct {
	TS   time.Time
	Data []byte
}

// ReadFile reads a pcap file (gzip-compressed if the name ends in .gz).
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	}
	return Read(r)
}

// Read reads a whole pcap stream.
func Read(r io.Reader) ([]Record, error) {
	var fh [24]byte
	if _, err := io.ReadFull(r, fh[:]); err != nil {
		return nil, fmt.Errorf("pcapio: file header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch m := binary.LittleEndian.Uint32(fh[:]); m {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcapio: not a pcap file (magic %#08x)", m)
	}
	link := bo.Uint32(fh[20:]) & 0x0fffffff
	var out []Record
	var rh [16]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("pcapio: record %d header: %w", n, err)
		}
		sec, frac, incl := bo.Uint32(rh[0:]), bo.Uint32(rh[4:]), bo.Uint32(rh[8:])
		if incl > 1<<20 {
			return out, fmt.Errorf("pcapio: record %d: implausible length %d", n, incl)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return out, fmt.Errorf("pcapio: record %d data: %w", n, err)
		}
		if !nano {
			frac *= 1000
		}
		out = append(out, Record{TS: time.Unix(int64(sec), int64(frac)), Data: stripLink(link, data)})
	}
}

// stripLink returns the IP part of a record, or nil if there is none.
func stripLink(link uint32, p []byte) []byte {
	switch link {
	case 101, 228, 229, 12, 14: // raw IP (12 and 14 are historic raw values)
	case 0, 108: // BSD/OpenBSD loopback
		if len(p) < 4 {
			return nil
		}
		p = p[4:]
	case 1: // Ethernet, with up to two VLAN tags
		if len(p) < 14 {
			return nil
		}
		et, off := binary.BigEndian.Uint16(p[12:]), 14
		for (et == 0x8100 || et == 0x88a8) && len(p) >= off+4 {
			et, off = binary.BigEndian.Uint16(p[off+2:]), off+4
		}
		if et != 0x0800 && et != 0x86dd {
			return nil
		}
		p = p[off:]
	case 113: // Linux SLL
		if len(p) < 16 {
			return nil
		}
		p = p[16:]
	case 276: // Linux SLL2
		if len(p) < 20 {
			return nil
		}
		p = p[20:]
	default:
		return nil
	}
	if len(p) == 0 || (p[0]>>4 != 4 && p[0]>>4 != 6) {
		return nil
	}
	return p
}
