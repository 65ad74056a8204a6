package table

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizability: real goroutines run create / lookup / update / delete /
// replace on a few connections (either direction), the history is recorded
// with a shared logical clock, and porcupine checks it against a sequential
// model of one connection (the checker partitions by connection).

type linOp uint8

const (
	opCreate linOp = iota
	opLookup
	opUpdate
	opDelete
	opReplace // same-direction reopen: Acquire + Replace(original tuple)
)

var linOpNames = [...]string{"create", "lookup", "update", "delete", "replace"}

type linIn struct {
	Op   linOp
	Conn int
	Side Dir    // which of the connection's two tuples the caller uses
	Val  uint64 // value written by create/update/replace
}

type linOut struct {
	OK     bool   // create: inserted; lookup/update/delete/replace: found
	Dir    Dir    // create (existing) and lookup: direction matched
	Val    uint64 // lookup: value seen
	Status Status // create only
}

// linState is one connection in the model.
type linState struct {
	Present bool
	Orig    Dir // which side's tuple is the original one
	Val     uint64
}

func linStep(st, in, out any) (bool, any) {
	s, i, o := st.(linState), in.(linIn), out.(linOut)
	rel := func() Dir {
		if i.Side == s.Orig {
			return Original
		}
		return Reply
	}
	switch i.Op {
	case opCreate:
		if !s.Present {
			return o.Status == Inserted && o.Dir == Original, linState{true, i.Side, i.Val}
		}
		return o.Status == Existing && o.Dir == rel(), s
	case opLookup:
		if !s.Present {
			return !o.OK, s
		}
		return o.OK && o.Dir == rel() && o.Val == s.Val, s
	case opUpdate, opReplace:
		if !s.Present {
			return !o.OK, s
		}
		if !o.OK {
			return false, s
		}
		return true, linState{true, s.Orig, i.Val}
	case opDelete:
		if !s.Present {
			return !o.OK, s
		}
		return o.OK, linState{}
	}
	return false, s
}

var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		m := map[int][]porcupine.Operation{}
		for _, o := range h {
			c := o.Input.(linIn).Conn
			m[c] = append(m[c], o)
		}
		keys := make([]int, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		out := make([][]porcupine.Operation, 0, len(m))
		for _, k := range keys {
			out = append(out, m[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: linStep,
	DescribeOperation: func(in, out any) string {
		i, o := in.(linIn), out.(linOut)
		s := fmt.Sprintf("%s(c%d side%d", linOpNames[i.Op], i.Conn, i.Side)
		if i.Op == opCreate || i.Op == opUpdate || i.Op == opReplace {
			s += fmt.Sprintf(" v%d", i.Val)
		}
		s += ") -> "
		switch i.Op {
		case opCreate:
			return s + fmt.Sprintf("%v %v", o.Status, o.Dir)
		case opLookup:
			if !o.OK {
				return s + "miss"
			}
			return s + fmt.Sprintf("%v v%d", o.Dir, o.Val)
		}
		return s + fmt.Sprint(o.OK)
	},
	DescribeState: func(st any) string {
		s := st.(linState)
		if !s.Present {
			return "absent"
		}
		return fmt.Sprintf("present orig=side%d v%d", s.Orig, s.Val)
	},
}

// linVal is a checksummed value carrying x in its last data word.
func linVal(x uint64) val {
	v := mkval(x)
	v.W[7] = x
	v.Sum = v.sum()
	return v
}

// linRun executes one operation against the table.
func linRun(tb *Table[val], keys []Key, in linIn) linOut {
	k := keys[in.Conn]
	if in.Side == Reply {
		k = k.Reverse()
	}
	m := Meta{Deadline: 1 << 62, State: stEstablished, Flags: Assured | SeenReply}
	switch in.Op {
	case opCreate:
		_, d, st := tb.Insert(k, linVal(in.Val), m, 0)
		return linOut{OK: st == Inserted, Dir: d, Status: st}
	case opLookup:
		s, d, ok := tb.Get(k, 0)
		if !ok {
			return linOut{}
		}
		if !s.V.ok() {
			panic("torn value")
		}
		return linOut{OK: true, Dir: d, Val: s.V.W[7]}
	case opUpdate, opReplace, opDelete:
		if in.Op == opUpdate && in.Val%2 == 1 {
			// Half the updates find and lock the entry in one step, as
			// the tracker does.
			var cur val
			r, _, _, ok := tb.AcquireKey(&k, 0, 0, &cur)
			if !ok {
				return linOut{}
			}
			if !cur.ok() {
				panic("torn value under the entry lock")
			}
			lv := linVal(in.Val)
			tb.Commit(r, &lv, &m, 0)
			return linOut{OK: true}
		}
		for {
			r, _, ok := tb.Lookup(k, 0)
			if !ok {
				return linOut{}
			}
			switch in.Op {
			case opDelete:
				if tb.Delete(r, ReasonKilled, 0) {
					return linOut{OK: true}
				}
				continue // deleted or replaced meanwhile: look again
			}
			_, _, ok = tb.Acquire(r)
			if !ok {
				continue
			}
			if in.Op == opUpdate {
				lv := linVal(in.Val)
				tb.Commit(r, &lv, &m, 0)
			} else {
				// The entry is held, so this snapshot is of the same
				// incarnation; its Key is the current original tuple.
				cur, _, _ := tb.Get(keys[in.Conn], 0)
				tb.Replace(r, cur.Key, linVal(in.Val), m, 0)
			}
			return linOut{OK: true}
		}
	}
	panic("op")
}

func TestLinearizable(t *testing.T) {
	histories, clients, opsPer, conns := 200, 4, 100, 3
	if long() {
		histories = 5000
	}
	if testing.Short() {
		histories = 50
	}
	keys := make([]Key, conns)
	for i := range keys {
		keys[i] = key4(uint32(i))
	}
	var rejected, overlapping, total int
	// Histories without concurrency would prove nothing: at least 1 in 200
	// operations must overlap another client's. Under the race detector, or
	// with other test binaries on a loaded 2-core machine, only a few in a
	// thousand may, so more histories are run (up to ten times as many)
	// until enough have; a harness that serialised its clients never gets
	// there and fails.
	minOverlap := histories * clients * opsPer / 200
	hi := 0
	for ; hi < histories || (overlapping < minOverlap && hi < 10*histories); hi++ {
		// Max == conns: creates reuse freed records all the time.
		tb := newTable(t, conns)
		var clock atomic.Int64
		var mu sync.Mutex
		var hist []porcupine.Operation
		var wg sync.WaitGroup
		var ready atomic.Int32
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(hi), uint64(c)))
				// Spin barrier: start together so the operations overlap.
				ready.Add(1)
				for ready.Load() < int32(clients) {
					runtime.Gosched()
				}
				for i := 0; i < opsPer; i++ {
					if rng.IntN(16) == 0 {
						runtime.Gosched() // let the other clients interleave
					}
					in := linIn{Op: linOp(rng.IntN(5)), Conn: rng.IntN(conns), Side: Dir(rng.IntN(2)), Val: uint64(c*1000 + i + 1)}
					call := clock.Add(1)
					if rng.IntN(8) == 0 {
						// Yield inside the operation's interval, so that
						// intervals overlap even on one CPU (GOMAXPROCS=1),
						// where clients otherwise run one after another.
						runtime.Gosched()
					}
					out := linRun(tb, keys, in)
					ret := clock.Add(1)
					mu.Lock()
					hist = append(hist, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		overlapping += countOverlapping(hist)
		total += len(hist)
		res, info := porcupine.CheckOperationsVerbose(linModel, hist, 10*time.Second)
		switch res {
		case porcupine.Ok:
		case porcupine.Unknown:
			rejected++
		default:
			path := filepath.Join(t.TempDir(), "history.html")
			if dir := os.Getenv("TCPCT_LINVIS"); dir != "" {
				path = filepath.Join(dir, fmt.Sprintf("table-history-%d.html", hi))
			}
			if err := porcupine.VisualizePath(linModel, info, path); err != nil {
				t.Logf("visualization: %v", err)
			}
			// Show the connection whose sub-history fails.
			bad := hist
			for _, part := range linModel.Partition(hist) {
				if !porcupine.CheckOperations(linModel, part) {
					bad = part
					break
				}
			}
			t.Fatalf("history %d is not linearizable (visualization %s; set TCPCT_LINVIS=dir to keep it); failing connection:\n%s", hi, path, dumpHistory(bad))
		}
		checkConsistent(t, tb, 0)
	}
	t.Logf("%d histories, %d of %d operations overlapped another client's", hi, overlapping, total)
	if overlapping < minOverlap {
		t.Fatalf("only %d of %d operations in %d histories were concurrent, want %d", overlapping, total, hi, minOverlap)
	}
	if rejected > hi/10 {
		t.Fatalf("%d of %d histories timed out in the checker", rejected, hi)
	}
}

// countOverlapping counts operations whose interval intersects an operation
// of another client.
func countOverlapping(h []porcupine.Operation) int {
	sort.Slice(h, func(i, j int) bool { return h[i].Call < h[j].Call })
	n := 0
	for i := range h {
		for j := range h {
			if i != j && h[i].ClientId != h[j].ClientId && h[j].Call <= h[i].Return && h[i].Call <= h[j].Return {
				n++
				break
			}
		}
	}
	return n
}

func dumpHistory(h []porcupine.Operation) string {
	sort.Slice(h, func(i, j int) bool { return h[i].Call < h[j].Call })
	var b strings.Builder
	for _, o := range h {
		fmt.Fprintf(&b, "  [%4d,%4d] client %d: %s\n", o.Call, o.Return, o.ClientId, linModel.DescribeOperation(o.Input, o.Output))
	}
	return b.String()
}

// The checker itself rejects a non-linearizable history (a stale read after
// a completed delete), so TestLinearizable can fail.
func TestLinearizabilityCheckerRejects(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: linIn{Op: opCreate, Conn: 0, Val: 1}, Call: 1, Output: linOut{OK: true, Status: Inserted}, Return: 2},
		{ClientId: 0, Input: linIn{Op: opDelete, Conn: 0}, Call: 3, Output: linOut{OK: true}, Return: 4},
		{ClientId: 1, Input: linIn{Op: opLookup, Conn: 0, Side: Reply}, Call: 5, Output: linOut{OK: true, Dir: Reply, Val: 1}, Return: 6},
	}
	if porcupine.CheckOperations(linModel, h) {
		t.Fatal("stale read accepted")
	}
	h[2].Call = 2 // overlapping the delete: now fine
	if !porcupine.CheckOperations(linModel, h) {
		t.Fatal("concurrent read rejected")
	}
	// Wrong direction from the reply side is rejected.
	h[2].Output = linOut{OK: true, Dir: Original, Val: 1}
	if porcupine.CheckOperations(linModel, h) {
		t.Fatal("wrong direction accepted")
	}
}
