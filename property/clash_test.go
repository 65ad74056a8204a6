package property

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/table"
)

// outcome is what one packet did to its connection, independent of the
// tuple the connection has: the verdict, whether the packet's tuple is the
// entry's original one, and the entry the tracker holds afterwards.
type outcome struct {
	V       fsm.Verdict
	Dropped bool
	Entry   bool
	Forward bool // the entry's original tuple is the packet's
	Conn    fsm.Conn
}

func (o outcome) String() string {
	s := fmt.Sprintf("%v %v class=%d %d->%d %v", o.V.CT, o.V.Dir, o.V.Class, o.V.Old, o.V.New, o.V.Action)
	switch {
	case o.Dropped:
		s += " DROPPED"
	case o.Entry:
		s += fmt.Sprintf(" entry state=%d status=%#x %ds forward=%v", o.Conn.State, o.Conn.Status, o.Conn.Deadline/second, o.Forward)
	default:
		s += " no entry"
	}
	return s
}

func outcomeOf(v *tcpct.Verdict, k table.Key, now int64) outcome {
	o := outcome{V: v.Verdict, Dropped: v.Dropped, Entry: v.Entry, Forward: v.Key == k}
	if v.Entry {
		o.Conn = fsm.Conn{State: v.State, Deadline: v.Deadline().UnixNano() - now}
		if v.Assured {
			o.Conn.Status |= fsm.Assured
		}
		if v.SeenReply {
			o.Conn.Status |= fsm.SeenReply
		}
	}
	return o
}

// clashCase is two first packets of one connection that two goroutines
// track at the same time.
type clashCase struct {
	name  string
	knobs []string
	a, b  clashPacket
}

type clashPacket struct {
	dir  fsm.Dir
	kind invariant.Kind
}

var clashCases = []clashCase{
	{"same SYN twice (a retransmission on another CPU)", nil, clashPacket{fsm.Original, invariant.KSyn}, clashPacket{fsm.Original, invariant.KSyn}},
	{"crossed SYNs (simultaneous open)", nil, clashPacket{fsm.Original, invariant.KSyn}, clashPacket{fsm.Reply, invariant.KSyn}},
	{"mid-stream pickup from both sides", []string{"tcp_loose=1"}, clashPacket{fsm.Original, invariant.KData}, clashPacket{fsm.Reply, invariant.KAck}},
}

// TestClashResolution: two goroutines track the first packets of the
// same new connection at the same instant, on many connections. When both
// miss the entry and race to create it, the tracker must resolve the clash
// as the kernel does (the loser runs its packet on the winner's entry):
// no packet is dropped although the table has room, and the pair of
// outcomes and the entry left are those of one of the two sequential
// orders. The race is real only when both goroutines run at once; the
// table's clash counter says how often it happened.
func TestClashResolution(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("clash resolution needs two goroutines running at once (GOMAXPROCS < 2)")
	}
	const conns = clashConns
	const now = 1000 * second
	for _, cc := range clashCases {
		t.Run(cc.name, func(t *testing.T) {
			cfg := tcpct.Config{Profile: "linux", Knobs: append([]string{fmt.Sprintf("max=%d", 2*conns)}, cc.knobs...), Seed: 1}
			seg := func(p clashPacket) fsm.Segment {
				return invariant.NewConv(1000, 5000).Segment(p.dir, p.kind, invariant.SeqExact, 100, 0)
			}
			key := func(i int, d fsm.Dir) table.Key {
				k := table.MakeKey4([4]byte{10, 3, byte(i >> 8), byte(i)}, [4]byte{10, 4, 0, 1}, 40000, 80)
				if d == fsm.Reply {
					return k.Reverse()
				}
				return k
			}
			// The two sequential orders, on a tracker of their own.
			ref, err := invariant.NewTracker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var orders [2][2]outcome // [a first, b first][a's, b's]
			for o := range orders {
				first, second := cc.a, cc.b
				if o == 1 {
					first, second = cc.b, cc.a
				}
				k1, k2 := key(o, first.dir), key(o, second.dir)
				s1, s2 := seg(first), seg(second)
				v1 := invariant.Track(ref, k1, &s1, now)
				v2 := invariant.Track(ref, k2, &s2, now)
				orders[o][o] = outcomeOf(&v1, k1, now)
				orders[o][1-o] = outcomeOf(&v2, k2, now)
			}

			// Rounds of conns connections on a fresh tracker, until the
			// race has happened often enough (it needs both goroutines on
			// a CPU at once, which a loaded machine rarely grants).
			clashes, rounds := uint64(0), 0
			for ; rounds < clashRounds && clashes < clashWanted; rounds++ {
				clashes += clashRound(t, cfg, cc, orders, seg, key, now)
			}
			t.Logf("%d rounds of %d connections, %d clashes resolved", rounds, conns, clashes)
			if clashes == 0 {
				t.Skipf("no clash happened in %d rounds (the two goroutines never ran at once)", rounds)
			}
		})
	}
}

const (
	clashConns  = 2000
	clashRounds = 100
	clashWanted = 100
)

// clashRound races the two packets of cc on clashConns new connections of
// a fresh tracker, checks the outcomes against the sequential orders, and
// returns how many clashes the table resolved.
func clashRound(t *testing.T, cfg tcpct.Config, cc clashCase, orders [2][2]outcome, seg func(clashPacket) fsm.Segment, key func(int, fsm.Dir) table.Key, now int64) uint64 {
	const conns = clashConns
	tr, err := invariant.NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [2][conns]tcpct.Verdict
	var arrived [conns]atomic.Int32
	var wg sync.WaitGroup
	for w, p := range []clashPacket{cc.a, cc.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := seg(p)
			for i := range conns {
				// Meet the other goroutine, then both track.
				arrived[i].Add(1)
				for n := 0; arrived[i].Load() < 2; n++ {
					if n > 1000 {
						runtime.Gosched()
					}
				}
				ss := s
				out[w][i] = invariant.Track(tr, key(i, p.dir), &ss, now)
			}
		}()
	}
	wg.Wait()
	for i := range conns {
		got := [2]outcome{outcomeOf(&out[0][i], key(i, cc.a.dir), now), outcomeOf(&out[1][i], key(i, cc.b.dir), now)}
		if got != orders[0] && got != orders[1] {
			t.Fatalf("connection %d: the concurrent packets gave\n\t%v\n\t%v\nwhich is neither sequential order:\n\ta first: %v / %v\n\tb first: %v / %v",
				i, &out[0][i], &out[1][i], orders[0][0], orders[0][1], orders[1][0], orders[1][1])
		}
		e, _, ok := invariant.Lookup(tr, key(i, cc.a.dir), now)
		last := got[0]
		if got == orders[0] {
			last = got[1]
		}
		if !last.Entry {
			if ok {
				t.Fatalf("connection %d: an entry is held although the last packet left none", i)
			}
			continue
		}
		if !ok || e.Conn.State != last.Conn.State || e.Conn.Deadline-now != last.Conn.Deadline {
			t.Fatalf("connection %d: the tracker holds %+v (found %v), the last packet left %+v", i, e.Conn, ok, last.Conn)
		}
	}
	st := tr.Stats()
	if st.Dropped != 0 {
		t.Fatalf("%d packets dropped by a table with room", st.Dropped)
	}
	return st.Table.ClashResolve
}
