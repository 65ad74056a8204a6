package spec

import (
	"fmt"
	"strings"
)

// Dir is a packet's direction relative to the connection's first packet.
type Dir uint8

const (
	Original Dir = iota // the direction of the packet that created the entry
	Reply               // the opposite direction
)

// Dirs lists both directions in table order.
var Dirs = [2]Dir{Original, Reply}

func (d Dir) String() string {
	if d == Reply {
		return "reply"
	}
	return "original"
}

// Flags is a set of TCP header flags, in the header's bit order.
type Flags uint8

// The TCP flags (RFC 9293 §3.1, RFC 3168 for ECE and CWR).
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

var flagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String renders the set as the kernel's comments do, e.g. "FIN|ACK".
func (f Flags) String() string {
	if f == 0 {
		return "-"
	}
	var parts []string
	// Print in the conventional SYN, RST, FIN, ACK, URG order of
	// tcp_valid_flags[] rather than bit order.
	for _, i := range [8]int{1, 2, 0, 4, 5, 3, 6, 7} {
		if f&(1<<i) != 0 {
			parts = append(parts, flagNames[i])
		}
	}
	return strings.Join(parts, "|")
}

// ParseFlags reads "FIN|ACK" (or a single flag name).
func ParseFlags(s string) (Flags, error) {
	var f Flags
	for _, name := range strings.Split(s, "|") {
		i := indexOf(flagNames[:], name)
		if i < 0 {
			return 0, fmt.Errorf("unknown TCP flag %q (want one of %s)", name, strings.Join(flagNames[:], ", "))
		}
		f |= 1 << i
	}
	return f, nil
}

// OutcomeKind tells what a transition cell does.
type OutcomeKind uint8

const (
	Next    OutcomeKind = iota // move to Outcome.State
	Ignore                     // sIG: accept, change nothing, remember the packet
	Invalid                    // sIV: the packet is INVALID, nothing changes
)

// Outcome is the content of one transition cell.
type Outcome struct {
	Kind  OutcomeKind
	State int // index into Spec.States when Kind == Next
}

// Knob is a tunable of the profile: a sysctl of the kernel it describes.
type Knob struct {
	Name    string
	Default int64
	Unit    string // "bool", "count" or "seconds"
	Aliases []string
	Meaning string
	Line    int
}

// State is one conntrack TCP state: a column of the tables.
type State struct {
	Name    string // as /proc/net/nf_conntrack prints it
	Abbrev  string // as the kernel's tables abbreviate it (sSS)
	Timeout string // the knob holding its timeout
	RFC     string // RFC sections describing the endpoint states it summarises
	Meaning string
	Unused  bool // listed by the source but never entered
	Line    int
}

// Cap is a timeout slot that is not a state, such as the kernel's RETRANS
// and UNACK caps.
type Cap struct {
	Name string
	Knob string
	Line int
}

// ClassRule maps TCP flags to a class: it matches a packet that carries
// all of Flags (a zero Flags matches every packet).
type ClassRule struct {
	Class int
	Flags Flags
	Line  int
}

// Create allows first packets of a class to create an entry, optionally
// only while a bool knob is set.
type Create struct {
	Class int
	When  string // knob name, or "" for always
	Line  int
}

// SeedChoice records a place where the profile follows its seed text
// rather than the kernel sources.
type SeedChoice struct {
	Name, Quote, Choice string
	Line                int
}

// Why explains a set of cells. Dir < 0, nil Classes or nil States mean
// "every".
type Why struct {
	Dir     int
	Classes []int
	States  []int
	RFC     string
	Reason  string
	Line    int
}

// Cell is one transition: table[dir][class][old state].
type Cell struct {
	Outcome Outcome
	Why     int // index into Spec.Whys of the line that explains it
	Line    int // line of the table row
}

// Spec is one loaded, validated profile.
type Spec struct {
	File        string
	Profile     string
	Title       string
	Describes   string
	Knobs       []Knob
	States      []State
	Initial     int
	Caps        []Cap
	Classes     []string
	Classify    []ClassRule
	FlagsMasked Flags
	AnyFlags    bool    // every flag combination is valid
	FlagsValid  []Flags // when !AnyFlags
	Creates     []Create
	Features    []string
	Assured     string
	SeedChoices []SeedChoice
	Table       [2][][]Cell // [dir][class][old state]
	Whys        []Why
}

// Known features and ASSURED rules: the hand-written logic fsm/ implements.
var (
	KnownFeatures = []string{"window-tracking", "syn-retransmit-keeps-timer", "reopen-kills", "timeout-caps", "proc-ip_conntrack"}
	KnownAssured  = []string{"after-reply", "handshake-ack"}
	KnownUnits    = []string{"bool", "count", "seconds"}
	KnownCaps     = []string{"retrans", "unack"}
)

// StateIndex returns the index of the named state, or -1.
func (s *Spec) StateIndex(name string) int {
	for i, st := range s.States {
		if st.Name == name {
			return i
		}
	}
	return -1
}

// ClassIndex returns the index of the named class, or -1.
func (s *Spec) ClassIndex(name string) int { return indexOf(s.Classes, name) }

// Knob returns the knob with the given name or alias.
func (s *Spec) Knob(name string) (Knob, bool) {
	for _, k := range s.Knobs {
		if k.Name == name || indexOf(k.Aliases, name) >= 0 {
			return k, true
		}
	}
	return Knob{}, false
}

// HasFeature reports whether the profile uses the named hand-written logic.
func (s *Spec) HasFeature(name string) bool { return indexOf(s.Features, name) >= 0 }

// CapKnob returns the knob of the named cap, or "".
func (s *Spec) CapKnob(name string) string {
	for _, c := range s.Caps {
		if c.Name == name {
			return c.Knob
		}
	}
	return ""
}

// OutcomeString renders an outcome with the table's abbreviations.
func (s *Spec) OutcomeString(o Outcome) string {
	switch o.Kind {
	case Ignore:
		return "sIG"
	case Invalid:
		return "sIV"
	}
	return s.States[o.State].Abbrev
}

// OutcomeName renders an outcome for prose: a state name, IGNORE or INVALID.
func (s *Spec) OutcomeName(o Outcome) string {
	switch o.Kind {
	case Ignore:
		return "IGNORE"
	case Invalid:
		return "INVALID"
	}
	return s.States[o.State].Name
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
