package property

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// tb is the part of testing.T the explorers use, so that the mutation
// check can run them and catch the first failure.
type tb interface {
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

// long reports whether the bigger runs are requested (TCPCT_LONG=1).
func long() bool { return os.Getenv("TCPCT_LONG") == "1" }

const second = int64(1e9)

// connKey is the first tuple of test connection i.
func connKey(i int) table.Key {
	return table.MakeKey4([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 1, byte(i)}, uint16(40000+i), 80)
}

// knobSet is a tracker configuration the property tests draw.
type knobSet struct {
	Profile        string
	Liberal, Loose bool
	MaxRetrans     int
	IgnoreRST      bool
	Acct           bool // linux: nf_conntrack_acct
}

func (k knobSet) String() string {
	s := fmt.Sprintf("%s liberal=%v loose=%v max_retrans=%d ignore_invalid_rst=%v", k.Profile, k.Liberal, k.Loose, k.MaxRetrans, k.IgnoreRST)
	if k.Acct && k.Profile == "linux" {
		s += " acct=1"
	}
	return s
}

// knobs are the settings as NAME=VALUE.
func (k knobSet) knobs() []string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	out := []string{"tcp_loose=" + b(k.Loose)}
	if k.Profile == "linux" {
		out = append(out, "tcp_be_liberal="+b(k.Liberal), fmt.Sprintf("tcp_max_retrans=%d", k.MaxRetrans),
			"tcp_ignore_invalid_rst="+b(k.IgnoreRST), "acct="+b(k.Acct))
	}
	return out
}

// config is the tracker configuration of k with a table of max entries
// and spec s in place of the built-in profile when s is not nil: every
// property that tracks packets builds its tracker here.
func (k knobSet) config(max int, s *spec.Spec) tcpct.Config {
	return tcpct.Config{Profile: k.Profile, Spec: s, Knobs: append(k.knobs(), fmt.Sprintf("max=%d", max)), Seed: 1}
}

// machine is the per-packet logic of k alone, for the checks that work on
// fsm directly (the abstract machine, the spec-interpreter differential).
func (k knobSet) machine() *fsm.Machine {
	p, err := fsm.ProfileByName(k.Profile)
	must(err)
	m := fsm.NewMachine(p)
	for _, kv := range k.knobs() {
		name, v, _ := strings.Cut(kv, "=")
		must(m.Set(name, v))
	}
	return m
}

// machineFor compiles s with the knobs of ks.
func machineFor(s *spec.Spec, ks knobSet) *fsm.Machine {
	m, err := invariant.MachineOf(s, ks.knobs()...)
	must(err)
	return m
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// step is one line of a human-readable trace.
func describe(conn int, dir fsm.Dir, kind invariant.Kind, mode invariant.SeqMode, seg *fsm.Segment, now int64, v fsm.Verdict, p *fsm.Profile) string {
	return fmt.Sprintf("t=%ds conn%d %-8v %-7v %-9v seq=%d ack=%d len=%d -> %v %s->%s cell=%s action=%v ignored=%v %q",
		now/second, conn, dir, seg.Flags, mode, seg.Seq, seg.Ack, seg.Len, v.CT, p.StateName(v.Old), p.StateName(v.New),
		p.OutcomeName(v.Cell), v.Action, v.Ignored, v.Reason)
}

// dropped marks a trace line whose packet the full table dropped.
func dropped(v *tcpct.Verdict) string {
	if v.Dropped {
		return " DROPPED (table full)"
	}
	return ""
}

func joinTrace(lines []string) string { return "\n\t" + strings.Join(lines, "\n\t") }

func stepOf(before, after fsm.Conn, dir fsm.Dir, seg fsm.Segment, now int64, v fsm.Verdict) invariant.Step {
	return invariant.Step{Before: before, After: after, Dir: dir, Seg: seg, Now: now, V: v}
}

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

func invariantMutant(d spec.Dir, class, state int, o spec.Outcome) invariant.Mutant {
	return invariant.Mutant{Dir: d, Class: class, State: state, To: o}
}
