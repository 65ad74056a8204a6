package fsm

import (
	"encoding/binary"

	"github.com/fdac824a/tcpct/spec"
)

// Segment is what the tracker reads from one TCP header. ParseSegment fills
// it without allocating; tests and callers with already-parsed headers may
// build one directly.
type Segment struct {
	Seq, Ack uint32
	// Len is the payload length: the TCP length from the IP header minus
	// the TCP header. It counts bytes a short capture may have cut off, as
	// the kernel, which sees the whole packet, does.
	Len   uint32
	Win   uint16
	Flags Flags
	// HdrLen is the TCP header length (data offset × 4).
	HdrLen uint8

	// Options, as tcp_options() and tcp_sack() read them.
	HasOptions bool  // data offset > 5: tcp_options resets scale and flags
	HasWScale  bool  // a well-formed window scale option
	WScale     uint8 // its shift, capped at 14 (RFC 7323 §2.3)
	SackPerm   bool  // a well-formed SACK-permitted option
	NumSack    uint8 // right edges of the first well-formed SACK option
	SackEdges  [4]uint32

	// Malformed is non-zero when the header cannot be tracked: the packet
	// is INVALID before the table ("truncated packet").
	Malformed Reason

	// BadChecksum: the caller verified the TCP checksum of the whole
	// segment (pseudo-header included) and it is wrong. ParseSegment
	// cannot see the IP header and leaves it false. With the checksum
	// knob on, such a segment is INVALID "bad checksum" (tcp_error).
	BadChecksum bool

	// IPLen is the length of the IP packet that carried the segment, as
	// its header says (IPv4 total length; IPv6 40 plus payload length):
	// what nf_conntrack_acct counts in bytes=. ParseSegment cannot see the
	// IP header and leaves it 0; the tracker then assumes a header without
	// options or extension headers.
	IPLen uint32
}

// End is the sequence number after the segment: seq + len, plus one for
// SYN and one for FIN (segment_seq_plus_len).
func (s *Segment) End() uint32 {
	e := s.Seq + s.Len
	if s.Flags&spec.SYN != 0 {
		e++
	}
	if s.Flags&spec.FIN != 0 {
		e++
	}
	return e
}

// Option kinds (RFC 9293 §3.1, RFC 7323, RFC 2018).
const (
	optEOL      = 0
	optNOP      = 1
	optWScale   = 3
	optSackPerm = 4
	optSack     = 5
	optTstamp   = 8
	maxWScale   = 14
)

// ParseSegment reads a TCP header. tcp holds the bytes captured from the
// TCP header on; l4len is the TCP length the IP header announces (header
// plus payload), which may exceed len(tcp) when the capture was cut short.
// A header the kernel would call truncated yields a Segment whose Malformed
// reason is set; it never fails otherwise.
func ParseSegment(tcp []byte, l4len int) Segment {
	var s Segment
	ParseSegmentInto(&s, tcp, l4len)
	return s
}

// ParseSegmentInto is ParseSegment writing the segment to *s, the form
// for a packet path: a Segment returned by value is copied right after
// its fields were written one by one, which stalls the CPU (see
// Machine.StepInto).
func ParseSegmentInto(s *Segment, tcp []byte, l4len int) {
	*s = Segment{}
	if len(tcp) < 20 || l4len < 20 {
		s.Malformed = ReasonTruncated
		return
	}
	s.Seq = binary.BigEndian.Uint32(tcp[4:])
	s.Ack = binary.BigEndian.Uint32(tcp[8:])
	hdr := int(tcp[12]>>4) * 4
	s.Flags = Flags(tcp[13])
	s.Win = binary.BigEndian.Uint16(tcp[14:])
	s.HdrLen = uint8(hdr)
	// tcp_error: "Not whole TCP header or malformed packet".
	if hdr < 20 || l4len < hdr {
		s.Malformed = ReasonTruncated
		return
	}
	if len(tcp) < hdr {
		// The kernel saw the whole header; the capture did not keep it.
		s.Malformed = ReasonNotCaptured
		return
	}
	s.Len = uint32(l4len - hdr)
	parseOptions(s, tcp[20:hdr])
}

// parseOptions follows tcp_options() for window scale and SACK-permitted,
// and tcp_sack() for the SACK blocks; both stop at EOL, at a length below 2
// and at an option running past the header. tcp_sack reads only the first
// well-formed SACK option, and skips everything when the options are
// exactly the aligned timestamp (NOP NOP TS).
func parseOptions(s *Segment, opt []byte) {
	if len(opt) == 0 {
		return
	}
	s.HasOptions = true
	if len(opt) == 12 && opt[0] == optNOP && opt[1] == optNOP && opt[2] == optTstamp && opt[3] == 10 {
		// The aligned timestamp alone, on nearly every segment of a
		// modern connection: nothing else to read (tcp_sack's fast path).
		return
	}
	for len(opt) > 0 {
		kind := opt[0]
		if kind == optEOL {
			return
		}
		if kind == optNOP {
			opt = opt[1:]
			continue
		}
		if len(opt) < 2 {
			return
		}
		size := int(opt[1])
		if size < 2 || size > len(opt) {
			return
		}
		switch {
		case kind == optSackPerm && size == 2:
			s.SackPerm = true
		case kind == optWScale && size == 3:
			s.HasWScale = true
			s.WScale = min(opt[2], maxWScale)
		case kind == optSack && s.NumSack == 0 && size >= 10 && (size-2)%8 == 0:
			for i := 2; i+8 <= size; i += 8 {
				s.SackEdges[s.NumSack] = binary.BigEndian.Uint32(opt[i+4:])
				s.NumSack++
			}
		}
		opt = opt[size:]
	}
}
