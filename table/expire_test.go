package table

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// expireScript is one random workload on a table: creates of fresh
// tuples, refreshes that move a deadline later, closing writes that move
// it earlier, deletes, and a clock that advances in steps from 1 µs to
// more than a wheel lap (so entries wait a lap or more, and the clock
// jumps over whole laps).
type expireOp struct {
	now  int64
	kind byte // 'i' insert, 'r' refresh, 'l' lower, 'd' delete
	key  uint32
	dl   int64
}

func expireScript(seed uint64, n int) []expireOp {
	rng := rand.New(rand.NewPCG(seed, 7))
	var ops []expireOp
	live := map[uint32]int64{} // key -> deadline
	now := int64(1_700_000_000) * sec
	next := uint32(0)
	timeout := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return int64(rng.IntN(5_000_000)) + 1 // < 5 ms: the same or the next slot
		case 1:
			return int64(rng.IntN(2_000))*1e6 + 1 // up to 2 s
		case 2:
			return int64(rng.IntN(300))*sec + 1 // up to 5 minutes: several laps
		}
		return 432000 * sec // ESTABLISHED
	}
	for len(ops) < n {
		switch rng.IntN(20) {
		case 0:
			now += int64(rng.IntN(200))*sec + 1 // may jump laps
		default:
			now += int64(rng.IntN(3_000_000)) + 1000
		}
		for k, dl := range live {
			if dl <= now {
				delete(live, k)
			}
		}
		keys := make([]uint32, 0, len(live))
		for k := range live {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		x := rng.IntN(10)
		switch {
		case x < 4 || len(keys) == 0:
			next++
			dl := now + timeout()
			live[next] = dl
			ops = append(ops, expireOp{now, 'i', next, dl})
		case x < 7:
			k := keys[rng.IntN(len(keys))]
			dl := max(live[k], now+timeout())
			live[k] = dl
			ops = append(ops, expireOp{now, 'r', k, dl})
		case x < 9:
			k := keys[rng.IntN(len(keys))]
			dl := now + 1 + int64(rng.Int64N(live[k]-now))
			live[k] = dl
			ops = append(ops, expireOp{now, 'l', k, dl})
		default:
			k := keys[rng.IntN(len(keys))]
			delete(live, k)
			ops = append(ops, expireOp{now, 'd', k, 0})
		}
	}
	return ops
}

// expiredEvent is what a DESTROY (expired) says: which entry, with which
// deadline, and the clock of the Expire that reclaimed it.
type expiredEvent struct {
	key      Key
	deadline int64
	at       int64
}

// runExpireScript plays ops on a fresh table, calling Expire before an op
// with probability every (1: always), and returns the DESTROY (expired)
// events in order. It checks exactness where Expire ran: afterwards Len is
// the number of entries whose deadline is after now.
func runExpireScript(t *testing.T, ops []expireOp, seed uint64, max int, every float64) []expiredEvent {
	return runExpireScriptGrow(t, ops, seed, max, every, false)
}

// runExpireScriptGrow is runExpireScript; with grow, the table is made
// with Config.Grow and doubled whenever an insert finds it Full, and the
// Refs taken before must keep working.
func runExpireScriptGrow(t *testing.T, ops []expireOp, seed uint64, max int, every float64, grow bool) []expiredEvent {
	t.Helper()
	tb, err := New[val](Config{Max: max, Seed: seed, StateNames: testStates, Grow: grow})
	if err != nil {
		t.Fatal(err)
	}
	sub := tb.Subscribe(len(ops) + 16)
	rng := rand.New(rand.NewPCG(seed, 1))
	refs := map[uint32]Ref{}
	deadlines := map[uint32]int64{}
	var out []expiredEvent
	collect := func() {
		for _, e := range drain(sub) {
			if e.Type == EventDestroy && e.Reason == ReasonExpired {
				out = append(out, expiredEvent{e.Key, e.Meta.Deadline, e.Time})
			}
		}
	}
	for i, op := range ops {
		if rng.Float64() < every {
			tb.Expire(op.now)
			live := 0
			for _, dl := range deadlines {
				if dl > op.now {
					live++
				}
			}
			if every == 1 && tb.Len() != live {
				t.Fatalf("op %d: after Expire(%d) Len = %d, want %d live", i, op.now, tb.Len(), live)
			}
		}
		k := key4(op.key)
		switch op.kind {
		case 'i':
			r, _, st := tb.Insert(k, mkval(uint64(op.key)), Meta{Deadline: op.dl, State: stEstablished}, op.now)
			if st == Full && grow {
				if err := tb.Grow(2 * tb.Max()); err != nil {
					t.Fatal(err)
				}
				checkGrown(t, tb, refs, op.now)
				r, _, st = tb.Insert(k, mkval(uint64(op.key)), Meta{Deadline: op.dl, State: stEstablished}, op.now)
			}
			if st != Inserted {
				t.Fatalf("op %d: insert %v", i, st)
			}
			refs[op.key] = r
		case 'r', 'l':
			v, m, ok := tb.Acquire(refs[op.key])
			if !ok {
				t.Fatalf("op %d: entry %d gone", i, op.key)
			}
			m.Deadline = op.dl
			tb.Commit(refs[op.key], &v, &m, op.now)
		case 'd':
			if !tb.Delete(refs[op.key], ReasonKilled, op.now) {
				t.Fatalf("op %d: delete of a gone entry", i)
			}
			delete(refs, op.key)
			delete(deadlines, op.key)
			collect()
			continue
		}
		deadlines[op.key] = op.dl
		collect()
	}
	end := ops[len(ops)-1].now + 500000*sec
	tb.Expire(end)
	collect()
	if tb.Len() != 0 {
		t.Fatalf("Len %d after expiring everything", tb.Len())
	}
	return out
}

// Expire reclaims exactly the entries whose deadline has passed, in order
// of deadline then tuple, whatever the hash seed, the table size (and so
// the records entries land in) and how often it is called.
func TestExpireExactAndOrdered(t *testing.T) {
	for script := uint64(1); script <= 4; script++ {
		ops := expireScript(script, 4000)
		want := runExpireScript(t, ops, 1, 5000, 1)
		for i, e := range want {
			if e.deadline > e.at {
				t.Fatalf("script %d: %v reclaimed at %d before its deadline %d", script, e.key, e.at, e.deadline)
			}
			if i > 0 && (e.deadline < want[i-1].deadline || e.deadline == want[i-1].deadline && e.key.compare(&want[i-1].key) < 0) {
				t.Fatalf("script %d: DESTROY %d out of (deadline, tuple) order", script, i)
			}
		}
		// With Expire before every op, an entry is reclaimed by the first
		// Expire whose clock reaches its deadline.
		prev := map[int64]int64{} // Expire clock -> the clock of the op before it
		for i := 1; i < len(ops); i++ {
			prev[ops[i].now] = ops[i-1].now
		}
		for _, e := range want {
			if p, ok := prev[e.at]; ok && e.deadline <= p {
				t.Fatalf("script %d: %v (deadline %d) reclaimed at %d, not at %d", script, e.key, e.deadline, e.at, p)
			}
		}
		for _, c := range []struct {
			seed  uint64
			max   int
			every float64
			grow  bool
		}{{99, 5000, 1, false}, {7, 20000, 0.3, false}, {3, 4100, 0.01, false}, {5, 8000, 0, false},
			// A table that starts at 8 records and doubles when full
			// (nf_conntrack_max = 0) expires the same entries in the same
			// order.
			{11, 8, 1, true}, {12, 8, 0.05, true}} {
			got := runExpireScriptGrow(t, ops, c.seed, c.max, c.every, c.grow)
			if len(got) != len(want) {
				t.Fatalf("script %d %+v: %d expired, want %d", script, c, len(got), len(want))
			}
			for i := range got {
				if got[i].key != want[i].key || got[i].deadline != want[i].deadline {
					t.Fatalf("script %d %+v: DESTROY %d is %v/%d, want %v/%d", script, c, i,
						got[i].key, got[i].deadline, want[i].key, want[i].deadline)
				}
			}
		}
	}
}

// checkGrown checks a table just grown: every entry the script holds is
// found by Lookup under both tuples, at the index its Ref names, and the
// table is consistent.
func checkGrown(t *testing.T, tb *Table[val], refs map[uint32]Ref, now int64) {
	t.Helper()
	for key, r := range refs {
		if _, m, ok := tb.Load(r); !ok || m.Deadline <= now {
			continue // reclaimed or due: the script's map keeps stale refs until the op that finds out
		}
		k := key4(key)
		for _, kk := range []Key{k, k.Reverse()} {
			got, _, ok := tb.Lookup(kk, now)
			if !ok || got != r {
				t.Fatalf("after Grow to %d: Lookup(%v) = %v, %v; want %v", tb.Max(), kk, got, ok, r)
			}
		}
	}
	checkConsistent(t, tb, now)
}

// The stall of issue 18: with steady arrivals, total connections far above
// Max while the live ones fit, no create may fail or early-drop, whether
// or not anyone calls Expire: expired entries count as absent for the
// limit.
func TestSteadyArrivalsNeverFull(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprintf("expire=%v", expire), func(t *testing.T) {
			const max, life, gap = 1000, int64(300e6), int64(1e6) // live: 300
			tb := newTable(t, max)
			now := int64(1e18)
			for i := 0; i < 50*max; i++ {
				now += gap
				if expire {
					tb.Expire(now)
				}
				if _, _, st := tb.Insert(key4(uint32(i)), mkval(0), Meta{Deadline: now + life}, now); st != Inserted {
					t.Fatalf("create %d: %v (Len %d)", i, st, tb.Len())
				}
			}
			if st := tb.Stats(); st.EarlyDrop != 0 || st.Drop != 0 {
				t.Fatalf("stats %+v", st)
			}
			if expire && int64(tb.Len()) != life/gap {
				t.Fatalf("Len %d, want %d live", tb.Len(), life/gap)
			}
		})
	}
}
