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
	if len(tcp) < 20 || l4len < 20 {
		*s = Segment{Malformed: ReasonTruncated}
		return
	}
	h := (*[20]byte)(tcp) // one length check for the fixed header
	hdr := int(h[12]>>4) * 4
	// Zeroed, then written field by field: a composite literal with
	// these loads is built on the stack and copied.
	*s = Segment{}
	s.Seq = binary.BigEndian.Uint32(h[4:8])
	s.Ack = binary.BigEndian.Uint32(h[8:12])
	s.Win = binary.BigEndian.Uint16(h[14:16])
	s.Flags = Flags(h[13])
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
	if hdr == 20 {
		return
	}
	s.HasOptions = true
	if hdr == 32 && binary.BigEndian.Uint32(tcp[20:24]) == alignedTimestamp {
		// The aligned timestamp alone (NOP NOP TS), on nearly every
		// segment of a modern connection: nothing else to read, as
		// parseOptions would find (tcp_sack's fast path).
		// TestParseFastPathIsTheGeneralPath holds this and the SYN
		// shortcut below equal to parseOptions.
		return
	}
	if hdr == 40 {
		w0 := binary.BigEndian.Uint32(tcp[20:24])
		w1 := binary.BigEndian.Uint32(tcp[24:28])
		w4 := binary.BigEndian.Uint32(tcp[36:40])
		if w0>>16 == linuxSynMSS && w1 == linuxSynSackTS && w4>>8 == linuxSynWScale {
			// Linux's SYN and SYN/ACK options (MSS, SACK-permitted,
			// timestamp, NOP, window scale: tcp_options_write), on
			// every connection a Linux host opens or accepts: what
			// parseOptions would find, read in three words.
			s.SackPerm, s.HasWScale, s.WScale = true, true, min(uint8(w4), maxWScale)
			return
		}
	}
	parseOptions(s, tcp[20:hdr])
}

// The words of Linux's SYN options (40-byte header) that do not vary
// between connections: MSS's kind and length (its value does), then
// SACK-permitted and the timestamp's kind and length, and NOP, window
// scale's kind and length before the shift.
const (
	linuxSynMSS    = 2<<8 | 4
	linuxSynSackTS = optSackPerm<<24 | 2<<16 | optTstamp<<8 | 10
	linuxSynWScale = optNOP<<16 | optWScale<<8 | 3
)

// alignedTimestamp is the first word of the options of a segment that
// carries only the timestamp option, aligned as RFC 7323 Appendix A
// recommends: NOP, NOP, kind 8, length 10.
const alignedTimestamp = optNOP<<24 | optNOP<<16 | optTstamp<<8 | 10

// parseOptions follows tcp_options() for window scale and SACK-permitted,
// and tcp_sack() for the SACK blocks; both stop at EOL, at a length below 2
// and at an option running past the header. tcp_sack reads only the first
// well-formed SACK option. It is the general path: ParseSegmentInto skips
// it for the aligned timestamp alone, which sets nothing here.
func parseOptions(s *Segment, opt []byte) {
	for i := 0; i < len(opt); {
		kind := opt[i]
		if kind == optEOL {
			return
		}
		if kind == optNOP {
			i++
			continue
		}
		if i+1 >= len(opt) {
			return
		}
		size := int(opt[i+1])
		if size < 2 || size > len(opt)-i {
			return
		}
		switch {
		case kind == optSackPerm && size == 2:
			s.SackPerm = true
		case kind == optWScale && size == 3:
			s.HasWScale = true
			s.WScale = min(opt[i+2], maxWScale)
		case kind == optSack && s.NumSack == 0 && size >= 10 && (size-2)%8 == 0:
			n := uint8((size - 2) / 8) // 1 to 4: size is at most 34 in a 40-byte option space
			for j := range n {
				s.SackEdges[j&3] = binary.BigEndian.Uint32(opt[i+6+8*int(j):])
			}
			s.NumSack = n
		}
		i += size
	}
}
