package main

// The jsonl writer: one JSON object per TCP packet (schema:
// docs/jsonl.schema.json).

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// jsonlField is one optional field of a jsonl record, as -fields names
// it; a jsonlFields is the set to print.
type jsonlFields uint32

const (
	fieldI jsonlFields = 1 << iota
	fieldFrame
	fieldTime
	fieldFamily
	fieldSrc
	fieldDst
	fieldSport
	fieldDport
	fieldCT
	fieldDir
	fieldState
	fieldTimeout
	fieldAssured
	fieldSeenReply
	fieldReason
	fieldClass
	fieldOld
	fieldAction
	fieldIgnored
	fieldDropped
	fieldICMP

	// fieldsClassic are the fields of the records before frame, time and
	// the tuple were added (2026-12): -fields classic prints exactly the
	// old records.
	fieldsClassic = fieldI | fieldCT | fieldDir | fieldState | fieldTimeout | fieldAssured | fieldSeenReply |
		fieldReason | fieldClass | fieldOld | fieldAction | fieldIgnored | fieldDropped
	fieldsTuple = fieldFamily | fieldSrc | fieldDst | fieldSport | fieldDport
	fieldsAll   = fieldsClassic | fieldFrame | fieldTime | fieldsTuple | fieldICMP
)

// jsonlFieldNames are the names -fields takes, in record order.
var jsonlFieldNames = [...]struct {
	name string
	f    jsonlFields
}{
	{"i", fieldI}, {"frame", fieldFrame}, {"time", fieldTime}, {"family", fieldFamily},
	{"src", fieldSrc}, {"dst", fieldDst}, {"sport", fieldSport}, {"dport", fieldDport}, {"icmp", fieldICMP},
	{"ct", fieldCT}, {"dir", fieldDir}, {"state", fieldState}, {"timeout", fieldTimeout},
	{"assured", fieldAssured}, {"seen_reply", fieldSeenReply}, {"reason", fieldReason},
	{"class", fieldClass}, {"old", fieldOld}, {"action", fieldAction}, {"ignored", fieldIgnored},
	{"dropped", fieldDropped},
}

// parseFields reads -fields: all, classic, or a comma-separated list of
// field names, where tuple stands for family,src,dst,sport,dport.
func parseFields(s string) (jsonlFields, error) {
	switch s {
	case "", "all":
		return fieldsAll, nil
	case "classic":
		return fieldsClassic, nil
	}
	var set jsonlFields
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "tuple" {
			set |= fieldsTuple
			continue
		}
		found := false
		for _, f := range jsonlFieldNames {
			if f.name == name {
				set |= f.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("-fields: unknown field %q (want all, classic, tuple or a list of: %s)", name, fieldList())
		}
	}
	return set, nil
}

func fieldList() string {
	names := make([]string, len(jsonlFieldNames))
	for i, f := range jsonlFieldNames {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// jsonlWriter appends records. It keeps the formatted date and time of
// the last second it printed, so that the timestamps of a second's
// packets cost only their nanoseconds.
type jsonlWriter struct {
	fields jsonlFields
	sec    int64 // Unix second of prefix; prefix is empty before the first
	prefix []byte
}

// replayJSONL prints one object per TCP packet that the filter passes.
// Lines are appended to one reused buffer that is written out every 64
// KiB: no allocation and no copy per packet.
func replayJSONL(r *capture.Reader, eng *engine, at atSpec, w *bufio.Writer, jw *jsonlWriter, flt *filter) walkResult {
	buf := make([]byte, 0, 80<<10)
	eng.addrs = true // the records print the packet's addresses
	res := eng.run(r, at, func(p *pktInfo, v *tcpct.Verdict) {
		if flt.active && !flt.packet(p, v) {
			return
		}
		buf = jw.append(buf, p, v)
		if len(buf) >= 64<<10 {
			if _, err := w.Write(buf); err != nil {
				eng.stop() // nothing more can be shown
			}
			buf = buf[:0]
		}
	})
	w.Write(buf)
	return res
}

// append appends p's record.
func (jw *jsonlWriter) append(b []byte, p *pktInfo, v *tcpct.Verdict) []byte {
	f := jw.fields
	b = append(b, '{')
	if f&fieldI != 0 {
		b = appendName(b, "i")
		b = strconv.AppendInt(b, int64(p.index), 10)
	}
	if f&fieldFrame != 0 {
		// Wireshark's and tcpdump's frame number: every record counts,
		// the first is 1.
		b = appendName(b, "frame")
		b = strconv.AppendInt(b, int64(p.index)+1, 10)
	}
	if f&fieldTime != 0 {
		b = appendName(b, "time")
		b = jw.appendTime(b, p.stamp)
	}
	k := &p.key
	if f&fieldFamily != 0 {
		b = appendName(b, "family")
		if k.Family() == table.FamilyIPv4 {
			b = append(b, `"ipv4"`...)
		} else {
			b = append(b, `"ipv6"`...)
		}
	}
	if f&fieldSrc != 0 {
		b = appendName(b, "src")
		b = append(b, '"')
		b = appendAddr(b, k.Family(), &p.src)
		b = append(b, '"')
	}
	if f&fieldDst != 0 {
		b = appendName(b, "dst")
		b = append(b, '"')
		b = appendAddr(b, k.Family(), &p.dst)
		b = append(b, '"')
	}
	if p.icmp {
		if f&fieldICMP != 0 {
			b = appendName(b, "icmp_type")
			b = strconv.AppendUint(b, uint64(v.ICMP.Type), 10)
			b = appendName(b, "icmp_code")
			b = strconv.AppendUint(b, uint64(v.ICMP.Code), 10)
		}
	} else if !p.trunc {
		if f&fieldSport != 0 {
			b = appendName(b, "sport")
			b = strconv.AppendUint(b, uint64(k.SrcPort()), 10)
		}
		if f&fieldDport != 0 {
			b = appendName(b, "dport")
			b = strconv.AppendUint(b, uint64(k.DstPort()), 10)
		}
	}
	if f&fieldCT != 0 {
		b = appendName(b, "ct")
		b = appendQuoted(b, v.CT.String())
	}
	if v.CT != fsm.CTInvalid && f&fieldDir != 0 {
		b = appendName(b, "dir")
		b = appendQuoted(b, v.Dir.String())
	}
	if v.Entry {
		if f&fieldState != 0 {
			b = appendName(b, "state")
			b = appendQuoted(b, v.StateName())
		}
		if f&fieldTimeout != 0 {
			b = appendName(b, "timeout")
			b = strconv.AppendInt(b, v.SecondsLeft(), 10)
		}
		if v.Assured && f&fieldAssured != 0 {
			b = appendName(b, "assured")
			b = append(b, "true"...)
		}
		if v.SeenReply && f&fieldSeenReply != 0 {
			b = appendName(b, "seen_reply")
			b = append(b, "true"...)
		}
	}
	if (v.CT == fsm.CTInvalid || v.CT == fsm.CTRelated || v.Ignored || v.Dropped) && f&fieldReason != 0 {
		if r := v.ReasonText(); r != "" {
			b = appendName(b, "reason")
			b = appendJSONString(b, r)
		}
	}
	if f&fieldClass != 0 {
		b = appendName(b, "class")
		b = appendQuoted(b, v.ClassName())
	}
	if f&fieldOld != 0 {
		b = appendName(b, "old")
		b = appendQuoted(b, v.OldName())
	}
	if f&fieldAction != 0 {
		b = appendName(b, "action")
		b = appendQuoted(b, v.Action.String())
	}
	if v.Ignored && f&fieldIgnored != 0 {
		b = appendName(b, "ignored")
		b = append(b, "true"...)
	}
	if v.Dropped && f&fieldDropped != 0 {
		b = appendName(b, "dropped")
		b = append(b, "true"...)
	}
	return append(b, "}\n"...)
}

// appendName appends a field's name, after a comma unless it is the
// record's first field.
func appendName(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendQuoted appends a name that needs no escaping, in quotes.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends ns as an RFC 3339 string in UTC with all nine
// digits of the nanoseconds (2006-11-24T10:00:05.000000000Z), so that
// every record's time has one width and sorts as text. The date and time
// of day are formatted once per second of capture (jsonlWriter.prefix),
// by hand: time.Time.AppendFormat cost more than the rest of a record.
func (jw *jsonlWriter) appendTime(b []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	if jw.prefix == nil || sec != jw.sec {
		jw.sec = sec
		jw.prefix = appendDateTime(jw.prefix[:0], sec)
	}
	b = append(b, '"')
	b = append(b, jw.prefix...)
	f := uint32(frac)
	b = append(b, byte('0'+f/1e8))
	f %= 1e8
	b = append(b, digits2[f/1e6*2:f/1e6*2+2]...)
	f %= 1e6
	b = append(b, digits2[f/1e4*2:f/1e4*2+2]...)
	f %= 1e4
	b = append(b, digits2[f/100*2:f/100*2+2]...)
	b = append(b, digits2[f%100*2:f%100*2+2]...)
	return append(b, 'Z', '"')
}

// digits2 holds "00" to "99".
const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendDateTime appends "YYYY-MM-DDTHH:MM:SS." for Unix second sec, UTC.
// Years outside 0000-9999 go through the time package, which formats them
// as RFC 3339 cannot.
func appendDateTime(b []byte, sec int64) []byte {
	days, rem := sec/86400, sec%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.Unix(sec, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05.")
	}
	b = append(b, digits2[y/100*2:y/100*2+2]...)
	b = append(b, digits2[y%100*2:y%100*2+2]...)
	b = append(b, '-')
	b = append(b, digits2[m*2:m*2+2]...)
	b = append(b, '-')
	b = append(b, digits2[d*2:d*2+2]...)
	b = append(b, 'T')
	h, mi, s := rem/3600, rem/60%60, rem%60
	b = append(b, digits2[h*2:h*2+2]...)
	b = append(b, ':')
	b = append(b, digits2[mi*2:mi*2+2]...)
	b = append(b, ':')
	b = append(b, digits2[s*2:s*2+2]...)
	return append(b, '.')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (the days-to-civil algorithm of Howard Hinnant's "chrono-compatible
// low-level date algorithms").
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendAddr appends an address as netip.Addr.String writes it, with a
// fast path for IPv4 (the first four bytes of a, as pktInfo keeps it).
func appendAddr(b []byte, family uint8, a *[16]byte) []byte {
	if family != table.FamilyIPv4 {
		return netip.AddrFrom16(*a).AppendTo(b)
	}
	for i, x := range a[:4] {
		if i > 0 {
			b = append(b, '.')
		}
		switch {
		case x >= 100:
			b = append(b, '0'+x/100)
			b = append(b, digits2[x%100*2:x%100*2+2]...)
		case x >= 10:
			b = append(b, digits2[int(x)*2:int(x)*2+2]...)
		default:
			b = append(b, '0'+x)
		}
	}
	return b
}

// appendJSONString quotes s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
