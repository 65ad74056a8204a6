package capture

import (
	"strconv"
	"strings"
)

// FormatError reports a capture that cannot be read any further: a file that
// is not a capture, an unsupported link type, a truncated or corrupt record,
// a read or decompression failure. Every record before the fault has already
// been returned by [Reader.Next], so a caller can report what it saw and
// then exit with a distinct status (the CLI uses 2).
//
// Problems inside one packet (a malformed IP header, a protocol other than
// TCP) are never a FormatError; they are a [Kind] and a Reason on the
// [Packet], because the kernel would see the record and skip it too.
type FormatError struct {
	Path   string // file name as given to Open ("stdin" for "-"); empty for NewReader
	Record int    // 0-based record number (as Packet.Index); -1 when no record is involved
	Offset int64  // byte offset in the (decompressed) stream; -1 when unknown
	Msg    string // what is wrong, in a few words with the numbers that prove it
	Err    error  // underlying read or decompression error, if any
}

func (e *FormatError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
	} else {
		b.WriteString("capture")
	}
	b.WriteString(": ")
	switch {
	case e.Record >= 0:
		b.WriteString("record ")
		b.WriteString(strconv.Itoa(e.Record))
		if e.Offset >= 0 {
			b.WriteString(" at offset ")
			b.WriteString(strconv.FormatInt(e.Offset, 10))
		}
		b.WriteString(": ")
	case e.Offset >= 0:
		b.WriteString("offset ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying I/O or decompression error, if any.
func (e *FormatError) Unwrap() error { return e.Err }
