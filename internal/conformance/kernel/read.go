package kernel

import (
	"errors"
	"io"

	"github.com/fdac824a/tcpct/capture"
)

// ReadCapture reads every record of a capture file (anything capture.Open
// reads: pcap or pcapng, gzip compressed or not; "-" is standard input)
// as Packets, in order: Data is a copy of the record's IP packet
// (capture.Packet.IP), nil when the record carries no IP, which Run then
// skips.
func ReadCapture(path string) ([]Packet, error) {
	r, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Packet
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		// p and p.IP are only valid until the next call to Next.
		out = append(out, Packet{TS: p.Timestamp(), Data: append([]byte(nil), p.IP...)})
	}
}
