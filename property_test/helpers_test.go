package property

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/invariant"
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

// knobSet is a machine configuration the property tests draw.
type knobSet struct {
	Profile        string
	Liberal, Loose bool
	MaxRetrans     int
	IgnoreRST      bool
}

func (k knobSet) String() string {
	return fmt.Sprintf("%s liberal=%v loose=%v max_retrans=%d ignore_invalid_rst=%v", k.Profile, k.Liberal, k.Loose, k.MaxRetrans, k.IgnoreRST)
}

func (k knobSet) machine() *fsm.Machine {
	p, err := fsm.ProfileByName(k.Profile)
	if err != nil {
		panic(err)
	}
	m := fsm.NewMachine(p)
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	must(m.Set("tcp_loose", b(k.Loose)))
	if k.Profile == "linux" {
		must(m.Set("tcp_be_liberal", b(k.Liberal)))
		must(m.Set("tcp_max_retrans", fmt.Sprint(k.MaxRetrans)))
		must(m.Set("tcp_ignore_invalid_rst", b(k.IgnoreRST)))
	}
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

func joinTrace(lines []string) string { return "\n\t" + strings.Join(lines, "\n\t") }

func stepOf(before, after fsm.Conn, dir fsm.Dir, seg fsm.Segment, now int64, v fsm.Verdict) invariant.Step {
	return invariant.Step{Before: before, After: after, Dir: dir, Seg: seg, Now: now, V: v}
}

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

func invariantMutant(d spec.Dir, class, state int, o spec.Outcome) invariant.Mutant {
	return invariant.Mutant{Dir: d, Class: class, State: state, To: o}
}
