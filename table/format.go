package table

import (
	"io"
	"net/netip"
	"strconv"
)

// Entry is what a dump line shows about a connection. It is separate from
// the table so the CLI can render entries it holds elsewhere (for example
// when printing the table as of a past instant).
type Entry struct {
	Key     Key    // original tuple
	State   string // TCP state name, e.g. "ESTABLISHED"
	Timeout int64  // whole seconds left (the kernel's nf_ct_expires/HZ)
	Flags   Flags  // Assured, SeenReply
	Mark    uint32
	// Acct prints Counters after each tuple, as the kernel does with
	// nf_conntrack_acct=1 (Config.Acct).
	Acct     bool
	Counters Counters
}

// StateName returns names[state], or "NONE" when out of range, as
// libnetfilter_conntrack prints an unknown TCP state.
func StateName(names []string, state uint8) string {
	if int(state) < len(names) {
		return names[state]
	}
	return "NONE"
}

// SecondsLeft is the kernel's rendering of a deadline: the remaining time
// in whole jiffies, truncated to whole seconds, never negative. The kernel
// counts timeouts in jiffies (nf_ct_expires(ct) / HZ), so an entry read
// less than a jiffy after its timer was set still shows its full timeout:
// a SYN answered by an RST within a jiffy is destroyed with "120", not
// "119" (Linux 6.18, conntrack -E). The phase of the kernel's tick is
// unknown, so when more than a jiffy has passed the kernel may show one
// second less than this near a whole second.
func SecondsLeft(deadline, now int64) int64 {
	if deadline <= now {
		return 0
	}
	jiffies := (deadline - now + jiffy - 1) / jiffy // whole jiffies left, rounded up
	return jiffies / hz
}

// hz is the kernel's tick rate: CONFIG_HZ=250 in Debian's and Ubuntu's
// kernels, the ones this project runs against.
const (
	hz    = 250
	jiffy = int64(1e9) / hz
)

// Entry converts a snapshot to its rendering form at time now.
func (t *Table[V]) Entry(s *Snapshot[V], now int64) Entry {
	return Entry{Key: s.Key, State: StateName(t.names, s.Meta.State),
		Timeout: SecondsLeft(s.Meta.Deadline, now), Flags: s.Meta.Flags,
		Acct: t.Accounting(), Counters: s.Counters}
}

// EventEntry converts an event to its rendering form.
func (t *Table[V]) EventEntry(ev *Event[V]) Entry {
	e := Entry{Key: ev.Key, State: StateName(t.names, ev.Meta.State),
		Timeout: SecondsLeft(ev.Meta.Deadline, ev.Time), Flags: ev.Meta.Flags,
		Acct: t.Accounting(), Counters: ev.Counters}
	if ev.SameState {
		e.State = "" // conntrack -E prints none (Event.SameState)
	}
	return e
}

func appendPad(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return b
}

// appendAddrFull renders IPv6 the way the kernel's %pI6 does: eight
// zero-padded 16-bit groups, no "::" compression. IPv4 is dotted quad.
func appendAddrFull(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		return a.AppendTo(b)
	}
	const hx = "0123456789abcdef"
	s := a.As16()
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hx[s[i]>>4], hx[s[i]&15], hx[s[i+1]>>4], hx[s[i+1]&15])
	}
	return b
}

func appendTuple(b []byte, k Key, full bool) []byte {
	b = append(b, "src="...)
	if full {
		b = appendAddrFull(b, k.Src())
	} else {
		b = k.Src().AppendTo(b)
	}
	b = append(b, " dst="...)
	if full {
		b = appendAddrFull(b, k.Dst())
	} else {
		b = k.Dst().AppendTo(b)
	}
	b = append(b, " sport="...)
	b = strconv.AppendUint(b, uint64(k.SrcPort()), 10)
	b = append(b, " dport="...)
	b = strconv.AppendUint(b, uint64(k.DstPort()), 10)
	return append(b, ' ')
}

// body: "<timeout> <STATE> src=.. [UNREPLIED] src=.. [ASSURED] ", with
// each tuple's counters when counters is set.
func appendBody(b []byte, e *Entry, timeout, full, counters bool) []byte {
	if timeout {
		b = strconv.AppendInt(b, e.Timeout, 10)
		b = append(b, ' ')
	}
	if e.State != "" { // an UPDATE of flags only (Event.SameState)
		b = append(b, e.State...)
		b = append(b, ' ')
	}
	b = appendTuple(b, e.Key, full)
	if counters {
		b = appendCounters(b, e, Original)
	}
	if e.Flags&SeenReply == 0 {
		b = append(b, "[UNREPLIED] "...)
	}
	b = appendTuple(b, e.Key.Reverse(), full)
	if counters {
		b = appendCounters(b, e, Reply)
	}
	if e.Flags&Assured != 0 {
		b = append(b, "[ASSURED] "...)
	}
	return b
}

// appendCounters appends "packets=N bytes=M " for direction d
// (seq_print_acct; libnetfilter_conntrack's counters).
func appendCounters(b []byte, e *Entry, d Dir) []byte {
	b = append(b, "packets="...)
	b = strconv.AppendUint(b, e.Counters.Packets[d], 10)
	b = append(b, " bytes="...)
	b = strconv.AppendUint(b, e.Counters.Bytes[d], 10)
	return append(b, ' ')
}

func l3name(k Key) (string, int) {
	if k.Family() == FamilyIPv6 {
		return "ipv6", FamilyIPv6
	}
	return "ipv4", FamilyIPv4
}

// AppendProc appends e as a /proc/net/nf_conntrack line (ct_seq_show in
// nf_conntrack_standalone.c), newline included:
//
//	ipv4     2 tcp      6 431999 ESTABLISHED src=… dport=23 src=… dport=1031 [ASSURED] mark=0 zone=0 use=2
//
// The tail is what Linux 6.18 prints for an entry that nothing else holds
// (conformance.TestKernelTableDump compares whole dumps): zone=0 because
// kernels built with CONFIG_NF_CONNTRACK_ZONES (this one, and the major
// distributions') print the default zone, and use=2 because ct_seq_show
// takes a reference of its own on the entry before it prints the count.
// `conntrack -L` (AppendConntrack) prints neither: use=1, no zone 0.
func AppendProc(b []byte, e *Entry) []byte {
	name, num := l3name(e.Key)
	b = appendPad(b, name, 8)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(num), 10)
	b = append(b, " tcp      6 "...)
	b = appendBody(b, e, true, true, e.Acct)
	b = append(b, "mark="...)
	b = strconv.AppendUint(b, uint64(e.Mark), 10)
	return append(b, " zone=0 use=2\n"...)
}

// AppendProc24 appends e in the 2.4 /proc/net/ip_conntrack form shown by the
// Iptables Tutorial (no l3 columns, no mark):
//
//	tcp 6 117 SYN_SENT src=… dport=23 [UNREPLIED] src=… dport=1031 use=1
func AppendProc24(b []byte, e *Entry) []byte {
	b = append(b, "tcp 6 "...)
	b = appendBody(b, e, true, true, e.Acct)
	return append(b, "use=1\n"...)
}

// AppendConntrack appends e as `conntrack -L` prints it
// (__snprintf_conntrack_default in libnetfilter_conntrack), newline included:
//
//	tcp      6 431999 ESTABLISHED src=… [ASSURED] mark=0 use=1
func AppendConntrack(b []byte, e *Entry) []byte {
	b = append(b, "tcp      6 "...)
	b = appendBody(b, e, true, false, e.Acct)
	b = append(b, "mark="...)
	b = strconv.AppendUint(b, uint64(e.Mark), 10)
	return append(b, " use=1\n"...)
}

// AppendEvent appends e as a `conntrack -E` line. The type is right-aligned
// in 9 columns; DESTROY carries a timeout only when time was left (see
// below); an UPDATE of flags only has no state (e.State "", from
// Event.SameState); events carry no use= and print mark= only when
// non-zero (ctnetlink sends CTA_MARK only then).
func AppendEvent(b []byte, typ EventType, e *Entry) []byte {
	tag := "[" + typ.String() + "]"
	for i := len(tag); i < 9; i++ {
		b = append(b, ' ')
	}
	b = append(b, tag...)
	b = append(b, " tcp      6 "...)
	// A DESTROY carries the time the entry had left, when it had any:
	// Linux 6.18's conntrack -E prints it for an entry killed before its
	// timeout (an RST answering a SYN: "[DESTROY] tcp 6 5 CLOSE ...") and
	// omits it for an expired one (zero is skipped). Counters come only
	// with a DESTROY: ctnetlink sends CTA_COUNTERS with IPCT_DESTROY alone.
	b = appendBody(b, e, typ != EventDestroy || e.Timeout > 0, false, e.Acct && typ == EventDestroy)
	if e.Mark != 0 {
		b = append(b, "mark="...)
		b = strconv.AppendUint(b, uint64(e.Mark), 10)
		b = append(b, ' ')
	}
	b = b[:len(b)-1] // libnetfilter_conntrack removes the trailing blank
	return append(b, '\n')
}

// FormatProc writes AppendProc's line to w.
func FormatProc(w io.Writer, e *Entry) error { return write(w, AppendProc, e) }

// FormatProc24 writes AppendProc24's line to w.
func FormatProc24(w io.Writer, e *Entry) error { return write(w, AppendProc24, e) }

// FormatConntrack writes AppendConntrack's line to w.
func FormatConntrack(w io.Writer, e *Entry) error { return write(w, AppendConntrack, e) }

// FormatEvent writes AppendEvent's line to w.
func FormatEvent(w io.Writer, typ EventType, e *Entry) error {
	var buf [256]byte
	_, err := w.Write(AppendEvent(buf[:0], typ, e))
	return err
}

func write(w io.Writer, f func([]byte, *Entry) []byte, e *Entry) error {
	var buf [256]byte
	_, err := w.Write(f(buf[:0], e))
	return err
}

// AppendStats appends the counters as one /proc/net/stat/nf_conntrack row
// (hex, kernel column order: entries clashres found new invalid ignore delete
// chainlength insert insert_failed drop early_drop icmp_error expect_new
// expect_create expect_delete search_restart), preceded by the header line.
func AppendStats(b []byte, s *Stats) []byte {
	b = append(b, "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"...)
	cols := [...]uint64{uint64(s.Entries), s.ClashResolve, s.Found, 0, s.Invalid, 0, 0, 0,
		s.Insert, s.InsertFailed, s.Drop, s.EarlyDrop, 0, 0, 0, 0, s.SearchRestart}
	for i, c := range cols {
		if i > 0 {
			b = append(b, ' ')
		}
		h := strconv.FormatUint(c, 16)
		for j := len(h); j < 8; j++ {
			b = append(b, '0')
		}
		b = append(b, h...)
	}
	return append(b, '\n')
}
