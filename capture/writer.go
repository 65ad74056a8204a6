package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// LinkType is a pcap LINKTYPE_* value: how each record's bytes begin.
type LinkType uint32

// The link types tcpct understands (values from the tcpdump.org link-layer
// header type registry).
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte host-order address family
	LinkEthernet LinkType = 1   // Ethernet II, optionally 802.1Q/802.1ad tagged
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6, version in the first nibble
	LinkLoop     LinkType = 108 // OpenBSD loopback: 4-byte network-order family
	LinkLinuxSLL LinkType = 113 // Linux cooked capture v1
	LinkIPv4     LinkType = 228 // raw IPv4 only
	LinkIPv6     LinkType = 229 // raw IPv6 only
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// Writer writes a classic little-endian pcap file with nanosecond
// timestamps. It is what the trace generator and the tests use to produce
// captures; it writes exactly what it is given.
type Writer struct {
	w       io.Writer
	hdr     [16]byte
	snaplen uint32
}

// NewWriter writes the pcap file header for the given link type and returns
// a Writer for the records. snaplen 0 means 262144.
func NewWriter(w io.Writer, link LinkType, snaplen uint32) (*Writer, error) {
	if snaplen == 0 {
		snaplen = 262144
	}
	var fh [24]byte
	binary.LittleEndian.PutUint32(fh[0:], 0xa1b23c4d) // nanosecond magic
	binary.LittleEndian.PutUint16(fh[4:], 2)
	binary.LittleEndian.PutUint16(fh[6:], 4)
	binary.LittleEndian.PutUint32(fh[16:], snaplen)
	binary.LittleEndian.PutUint32(fh[20:], uint32(link))
	if _, err := w.Write(fh[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w, snaplen: snaplen}, nil
}

// WritePacket appends one record captured at ts. Data longer than the
// snap length is an error rather than a silent truncation.
func (pw *Writer) WritePacket(ts time.Time, data []byte) error {
	if uint32(len(data)) > pw.snaplen {
		return fmt.Errorf("capture: record of %d bytes exceeds snap length %d", len(data), pw.snaplen)
	}
	ns := ts.UnixNano()
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(len(data)))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return err
	}
	_, err := pw.w.Write(data)
	return err
}
