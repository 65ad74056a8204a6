package property

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/fdac824a/tcpct/table"
	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"
)

// The gopter commands test drives the real table.Table with a small limit
// against a model: a map from connection to (original side, value, meta),
// expired entries kept until something reclaims them (Sweep, an Insert of
// the same connection, early drop), exactly as the table does. Early drop
// picks its victim by index position, which a model cannot know, so an
// Insert into a full table is only generated when at most one entry is
// evictable (expired, unassured or closing) and the outcome is determined.

const (
	tcConns = 6
	tcMax   = 4
)

type tcVal struct{ A, B uint64 }

type tcEntry struct {
	orig table.Dir // the side whose tuple is the original
	v    tcVal
	m    table.Meta
}

// tcState is the model. want is what the last command must have returned,
// computed by NextState for PostCondition.
type tcState struct {
	now     int64
	entries map[int]tcEntry
	want    string
}

func (s *tcState) clone() *tcState {
	c := &tcState{now: s.now, entries: make(map[int]tcEntry, len(s.entries))}
	for k, v := range s.entries {
		c.entries[k] = v
	}
	return c
}

func (s *tcState) live(c int) (tcEntry, bool) {
	e, ok := s.entries[c]
	return e, ok && e.m.Deadline > s.now
}

func (s *tcState) evictable() []int {
	var out []int
	for c, e := range s.entries {
		if e.m.Deadline <= s.now || e.m.Flags&table.Assured == 0 || e.m.Flags&table.Closing != 0 {
			out = append(out, c)
		}
	}
	return out
}

type tcSUT struct {
	t   *table.Table[tcVal]
	now int64
}

func tcKey(c int, side table.Dir) table.Key {
	k := table.MakeKey4([4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, byte(c)}, uint16(1024+c), 443)
	if side == table.Reply {
		return k.Reverse()
	}
	return k
}

func (s *tcSUT) acquire(c int, side table.Dir) (table.Ref, bool) {
	r, _, ok := s.t.Lookup(tcKey(c, side), s.now)
	if !ok {
		return r, false
	}
	_, _, ok = s.t.Acquire(r)
	return r, ok
}

// tcCmd is one generated command; Op selects what it does.
type tcCmd struct {
	Op    int // 0 insert, 1 lookup, 2 commit, 3 delete, 4 tick, 5 sweep
	Conn  int
	Side  table.Dir
	TTL   int64
	Flags table.Flags
	V     uint64
}

func (c *tcCmd) String() string {
	return fmt.Sprintf("%s(conn=%d side=%v ttl=%d flags=%#x v=%d)", []string{"Insert", "Lookup", "Commit", "Delete", "Tick", "Sweep"}[c.Op], c.Conn, c.Side, c.TTL, c.Flags, c.V)
}

func (c *tcCmd) meta(now int64) table.Meta {
	return table.Meta{Deadline: now + c.TTL, State: uint8(c.V % 10), Flags: c.Flags}
}

func (c *tcCmd) Run(sut commands.SystemUnderTest) commands.Result {
	s := sut.(*tcSUT)
	var res string
	switch c.Op {
	case 0:
		_, d, st := s.t.Insert(tcKey(c.Conn, c.Side), tcVal{c.V, ^c.V}, c.meta(s.now), s.now)
		res = fmt.Sprintf("%v", st)
		if st == table.Existing {
			res += " " + d.String()
		}
	case 1:
		snap, d, ok := s.t.Get(tcKey(c.Conn, c.Side), s.now)
		res = "absent"
		if ok {
			res = fmt.Sprintf("%v %+v %+v", d, snap.V, snap.Meta)
		}
	case 2:
		r, ok := s.acquire(c.Conn, c.Side)
		res = "absent"
		if ok {
			m := c.meta(s.now)
			s.t.Commit(r, &tcVal{c.V, ^c.V}, &m, s.now)
			res = "committed"
		}
	case 3:
		r, ok := s.acquire(c.Conn, c.Side)
		res = "absent"
		if ok {
			s.t.Remove(r, table.ReasonKilled, s.now)
			res = "removed"
		}
	case 4:
		s.now += c.TTL
		res = "tick"
	case 5:
		n := s.t.Expire(s.now)
		res = fmt.Sprintf("swept %d", n)
	}
	return fmt.Sprintf("%s len=%d", res, s.t.Len())
}

func (c *tcCmd) NextState(st commands.State) commands.State {
	s := st.(*tcState).clone()
	var want string
	e, live := s.live(c.Conn)
	switch c.Op {
	case 0:
		switch {
		case live:
			d := table.Original
			if c.Side != e.orig {
				d = table.Reply
			}
			want = "existing " + d.String()
		default:
			delete(s.entries, c.Conn) // an expired entry of the same connection is reclaimed first
			if len(s.entries) >= tcMax {
				ev := s.evictable()
				if len(ev) == 0 {
					want = "dropped"
					break
				}
				delete(s.entries, ev[0]) // the precondition allows at most one
			}
			s.entries[c.Conn] = tcEntry{orig: c.Side, v: tcVal{c.V, ^c.V}, m: c.meta(s.now)}
			want = "inserted"
		}
	case 1:
		want = "absent"
		if live {
			d := table.Original
			if c.Side != e.orig {
				d = table.Reply
			}
			want = fmt.Sprintf("%v %+v %+v", d, e.v, e.m)
		}
	case 2:
		want = "absent"
		if live {
			e.v, e.m = tcVal{c.V, ^c.V}, c.meta(s.now)
			s.entries[c.Conn] = e
			want = "committed"
		}
	case 3:
		want = "absent"
		if live {
			delete(s.entries, c.Conn)
			want = "removed"
		}
	case 4:
		s.now += c.TTL
		want = "tick"
	case 5:
		n := 0
		for k, e := range s.entries {
			if e.m.Deadline <= s.now {
				delete(s.entries, k)
				n++
			}
		}
		want = fmt.Sprintf("swept %d", n)
	}
	s.want = fmt.Sprintf("%s len=%d", want, len(s.entries))
	return s
}

func (c *tcCmd) PreCondition(st commands.State) bool {
	s := st.(*tcState)
	if c.Op != 0 {
		return true
	}
	if _, live := s.live(c.Conn); live {
		return true
	}
	n := len(s.entries)
	if _, ok := s.entries[c.Conn]; ok {
		n--
	}
	return n < tcMax || len(s.evictable()) <= 1
}

func (c *tcCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	want := st.(*tcState).want
	if got := res.(string); !equalFold(got, want) {
		return &gopter.PropResult{Status: gopter.PropFalse, Error: fmt.Errorf("%v: table says %q, model %q", c, got, want)}
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

// equalFold compares ignoring the case of the status words (the table
// prints "inserted", the model writes the same).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var genTCCmd = gen.Struct(reflect.TypeOf(tcCmd{}), map[string]gopter.Gen{
	"Op":    gen.Weighted([]gen.WeightedGen{{Weight: 5, Gen: gen.Const(0)}, {Weight: 4, Gen: gen.Const(1)}, {Weight: 2, Gen: gen.Const(2)}, {Weight: 1, Gen: gen.Const(3)}, {Weight: 2, Gen: gen.Const(4)}, {Weight: 1, Gen: gen.Const(5)}}),
	"Conn":  gen.IntRange(0, tcConns-1),
	"Side":  gen.UInt8Range(0, 1).Map(func(v uint8) table.Dir { return table.Dir(v) }),
	"TTL":   gen.Int64Range(1, 40),
	"Flags": gen.UInt8Range(0, 7).Map(func(v uint8) table.Flags { return table.Flags(v) }),
	"V":     gen.UInt64Range(0, 1<<40),
}).Map(func(c tcCmd) commands.Command { return &c })

var tableCommands = &commands.ProtoCommands{
	NewSystemUnderTestFunc: func(st commands.State) commands.SystemUnderTest {
		t, err := table.New[tcVal](table.Config{Max: tcMax, Seed: 3, Stripes: 4})
		if err != nil {
			panic(err)
		}
		return &tcSUT{t: t, now: st.(*tcState).now}
	},
	InitialStateGen: gen.Const(&tcState{now: 1000, entries: map[int]tcEntry{}}),
	GenCommandFunc:  func(commands.State) gopter.Gen { return genTCCmd },
}

// TestGopterTableCommands: random command sequences on the real table
// (limit 4, six connections, both tuples, expiry, sweep, early drop)
// against the model; gopter shrinks a failure to a minimal sequence.
func TestGopterTableCommands(t *testing.T) {
	p := gopterParams()
	p.MaxSize = 60
	props := gopter.NewProperties(p)
	props.Property("table agrees with a map model", commands.Prop(tableCommands))
	props.TestingRun(t)
}
