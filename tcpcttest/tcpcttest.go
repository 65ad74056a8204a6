// Package tcpcttest checks a TCP connection tracker against Linux
// nf_conntrack, the way testing/fstest checks an fs.FS: write an adapter of a
// few lines that feeds one packet to your tracker and says what it decided,
// then call Test from a test function.
//
//	func TestConformance(t *testing.T) {
//		tcpcttest.Test(t, func() tcpcttest.Tracker { return myAdapter{mytracker.New()} }, tcpcttest.Options{})
//	}
//
// Test runs two kinds of traces through fresh trackers and compares every
// packet's verdict, field by field, with the reference:
//
//   - recorded traces: generated traces that the real Linux 6.18 kernel
//     tracked, with its verdict on every packet (shipped in this package, so
//     the kit works offline and needs no privileges); the kernel is the
//     expected value.
//   - generated traces: fresh traces from internal/conformance/tracegen (seed in Options),
//     replayed through tcpct's linux profile, which agrees with the kernel on
//     every recorded packet; tcpct is the expected value. They reach states
//     the recorded traces visit rarely, and timeouts that expire.
//
// With Options.Captures it also runs capture files of your own, against
// the kernel's verdicts when cmd/ktrace recorded them next to the capture,
// else against tcpct's linux profile (see Capture).
//
// Each disagreement names the capture file and frame, the expected and
// actual value of each field that differs, and the spec cell that decided
// the reference verdict (direction, packet class, old state → outcome)
// with its RFC sections and rationale, so a failure reads as "your
// tracker departs from RFC 5961 §4 here", not "line 3071 differs"; and it
// gives a ready `tcpct explain` command that narrates the packet's
// connection as the reference saw it. Test also reports each trace's
// disagreements grouped by kind ("ct: INVALID → ESTABLISHED"), most
// frequent first, and marks itself and its subtests as helpers, so that
// failures point at the caller's call of Test.
//
// Trackers differ in what they model. A tracker declares what it reports
// with the optional Capable interface (no timeouts, no ASSURED bit, …) and
// which sysctl variants it can be configured for with the optional Sysctler
// interface; fields it does not report are not compared and variants it
// cannot be set up for are skipped, not failed. Trackers that knowingly
// depart from Linux use Measure, which never fails and returns the agreement
// table.
package tcpcttest

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// CT is the conntrack state of a packet as iptables' -m conntrack --ctstate
// and nftables' ct state see it.
type CT string

// The ct states a TCP tracker decides between.
const (
	New         CT = "NEW"
	Established CT = "ESTABLISHED"
	Invalid     CT = "INVALID"
	// Related is the verdict on an ICMP or ICMPv6 error quoting a
	// segment of a tracked connection (fed only to trackers whose
	// Capabilities include ICMPErrors).
	Related CT = "RELATED"
)

// Dir is the direction of a packet relative to the connection's first
// packet (the "original" tuple).
type Dir string

// The two directions.
const (
	Original Dir = "original"
	Reply    Dir = "reply"
)

// Packet is one packet fed to a tracker: the raw IP packet and, for
// trackers that take parsed input, its TCP header fields. Every slice is
// only valid during the Track call.
type Packet struct {
	// Index is the packet's record number in its trace (0-based).
	Index int
	// Time is the capture time. Trackers must use it, not the wall
	// clock: traces span seconds of capture time replayed in milliseconds.
	Time time.Time

	// IP is the whole packet from the IPv4 or IPv6 header on.
	IP []byte
	// TCP is the TCP header and payload, as captured.
	TCP []byte

	Src, Dst netip.AddrPort
	Seq, Ack uint32
	// Flags holds the TCP flag bits as in the header's 14th byte
	// (FIN=0x01, SYN=0x02, RST=0x04, PSH=0x08, ACK=0x10, URG=0x20, ECE, CWR).
	Flags  uint8
	Window uint16
	// HeaderLen is the TCP header length in bytes (data offset × 4).
	HeaderLen int
	// PayloadLen is the TCP payload length per the IP header.
	PayloadLen int

	// ICMP marks an ICMP or ICMPv6 error quoting a TCP segment (see
	// ICMPErrors): IP holds it whole; TCP, the ports and the TCP fields
	// are zero. The expected Result is RELATED (with the quoted entry's
	// direction and fields) or INVALID, as tcpct.ICMP describes Linux.
	ICMP bool
}

// Result is what a tracker decided about one packet, and the state of the
// packet's connection entry right after it.
type Result struct {
	CT CT
	// Dir is the packet's direction; not compared for INVALID packets
	// (Linux attaches no direction to a packet it did not match).
	Dir Dir
	// State is the connection's TCP conntrack state as /proc spells it
	// (SYN_SENT, ESTABLISHED, TIME_WAIT, …), "" when the connection has no
	// entry after the packet.
	State string
	// Timeout is the entry's remaining lifetime in whole seconds (as
	// /proc/net/nf_conntrack prints it); compared only when both sides
	// have an entry, within Options.TimeoutTolerance.
	Timeout int64
	// Assured and SeenReply are the entry's IPS_ASSURED and
	// IPS_SEEN_REPLY status bits.
	Assured, SeenReply bool
}

func (r Result) String() string {
	s := string(r.CT)
	if r.CT != Invalid && r.Dir != "" {
		s += " " + string(r.Dir)
	}
	if r.State == "" {
		return s + " (no entry)"
	}
	s += fmt.Sprintf(" %s %ds", r.State, r.Timeout)
	if r.Assured {
		s += " [ASSURED]"
	}
	if r.SeenReply {
		s += " seen_reply"
	}
	return s
}

// Tracker is what the kit drives: one connection tracker with an empty
// table. The kit calls the constructor given to Test or Measure for every
// trace, and Track for each of the trace's TCP packets in order.
type Tracker interface {
	Track(p *Packet) Result
}

// Field is a set of compared verdict fields.
type Field uint8

// The compared fields.
const (
	FieldCT Field = 1 << iota
	FieldDir
	FieldState
	FieldTimeout
	FieldAssured
	FieldSeenReply

	AllFields = FieldCT | FieldDir | FieldState | FieldTimeout | FieldAssured | FieldSeenReply

	// ICMPErrors, in a tracker's Capabilities, asks for the ICMP and
	// ICMPv6 errors quoting TCP segments as well (Packet.ICMP): those of
	// the user's captures, and generated traces with errors about live,
	// closed, expired and unknown connections. It is not a compared
	// field and not in AllFields: a tracker opts in.
	ICMPErrors Field = 1 << 7
)

var fieldNames = [...]string{"ct", "dir", "state", "timeout", "assured", "seen_reply"}

// fieldList is every field in report order.
var fieldList = [...]Field{FieldCT, FieldDir, FieldState, FieldTimeout, FieldAssured, FieldSeenReply}

func (f Field) String() string {
	s := ""
	for i, g := range fieldList {
		if f&g != 0 {
			if s != "" {
				s += ","
			}
			s += fieldNames[i]
		}
	}
	return s
}

// Capable is implemented by trackers that do not report every field: a
// tracker without timers returns AllFields &^ FieldTimeout, and its timeouts
// are not compared. Trackers that do not implement it report all fields.
type Capable interface {
	Capabilities() Field
}

// Sysctler is implemented by trackers that can be configured like the
// kernel's nf_conntrack sysctls. The kit calls SetSysctl on a fresh tracker,
// before its first packet, with the names of /proc/sys/net/netfilter/
// without the nf_conntrack_ prefix ("tcp_loose", "tcp_be_liberal",
// "tcp_timeout_established", …) and decimal values. An error skips the
// variant. Trackers that do not implement it run the default variant only.
type Sysctler interface {
	SetSysctl(name, value string) error
}

// Variant is a set of sysctl settings the traces are run with.
type Variant struct {
	Name    string
	Sysctls [][2]string // name, value, applied in order
	// pause is the gap the generator inserts so that the shortened
	// timeouts expire mid-trace.
	pause time.Duration
}

// Variants are the settings the recorded kernel traces were taken with
// (one trace each), in order. Generated traces are run with each of them
// too.
var Variants = variants()

// variants derives Variants from tracegen.Recordings, the module's one list of
// recorded kernel traces, keeping its order (variant i's generated trace
// uses Options.Seed+i) and each recording's sysctls and generator pause.
//
// The cells recording (tracegen.Config.Cells) is left out on purpose: its
// sysctls are the defaults, so as a Variant it would repeat "default" (a
// Variant is a sysctl setting, and the Cells generator behind its trace is
// not something a Variant carries for the generated traces), and its
// trace is not among the ones embedded in testdata/. A recording added to
// tracegen.Recordings becomes a Variant here and needs its pcap.gz and
// jsonl.gz copied into testdata/ (TestVariantsEmbedded says so).
func variants() []Variant {
	var vs []Variant
	for _, r := range tracegen.Recordings {
		if r.Config.Cells {
			continue
		}
		v := Variant{Name: r.Name, pause: r.Config.Pause}
		for _, kv := range r.Sysctls {
			name, value, _ := strings.Cut(kv, "=")
			v.Sysctls = append(v.Sysctls, [2]string{name, value})
		}
		vs = append(vs, v)
	}
	return vs
}

// Capture is a capture file of your own to run the tracker on: pcap or
// pcapng, gzip-compressed or not, of any link type package capture reads
// (Ethernet, raw IP, Linux cooked, loopback, …). Every TCP packet in it
// is fed to the tracker, in order, with its capture time.
//
// The expected verdicts are the kernel's when they were recorded:
// cmd/ktrace of this module runs a capture through Linux's own tracker
// in a throw-away network namespace and writes its verdict on every
// packet (`go run github.com/fdac824a/tcpct/cmd/ktrace trace.pcap >
// trace.jsonl`, as root), the same form as the recordings in
// tcpcttest/testdata/. Without a recording the reference is tcpct's linux
// profile, the spec as this module implements it (checked against the
// kernel on every recorded packet), and TraceReport.Reference says so.
type Capture struct {
	// Path is the capture file.
	Path string
	// Kernel is the kernel's verdicts on Path, as cmd/ktrace writes them
	// (jsonl, gzip-compressed or not). When empty, the kit looks next to
	// Path for the same name with .jsonl or .jsonl.gz in place of its
	// .pcap, .pcapng or .cap (and .gz) extension, and uses it if present.
	Kernel string
	// Sysctls are the settings the capture was recorded with (ktrace's
	// -sysctl, without the nf_conntrack_ prefix), applied to the
	// reference and, through Sysctler, to the tracker.
	Sysctls [][2]string
}

// Options tune a run. The zero value runs everything with the defaults.
type Options struct {
	// Captures are capture files of your own, run after the built-in
	// traces (leave those out with NoRecorded and NoGenerated). Variants
	// does not filter them.
	Captures []Capture
	// Variants restricts the run to the named variants (default: all that
	// the tracker can be configured for).
	Variants []string
	// NoRecorded and NoGenerated leave out one kind of trace.
	NoRecorded, NoGenerated bool
	// Seed and Packets set the generated traces (default seed 1, 4000
	// packets per variant). Variant i uses Seed+i.
	Seed    uint64
	Packets int
	// Fields restricts the compared fields further than the tracker's
	// Capabilities (0: all it reports).
	Fields Field
	// TimeoutTolerance is the allowed difference in seconds left (default
	// 1, negative: exact). The kernel reports floor(jiffies left / HZ) a
	// few microseconds after the packet, so a fresh timeout T reads T or
	// T-1.
	TimeoutTolerance int64
	// MaxDiffs is how many disagreements per trace are kept in detail
	// (default 10; Test reports each of them).
	MaxDiffs int
}

func (o *Options) defaults() {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Packets <= 0 {
		o.Packets = 4000
	}
	if o.TimeoutTolerance == 0 {
		o.TimeoutTolerance = 1
	}
	if o.MaxDiffs <= 0 {
		o.MaxDiffs = 10
	}
}
