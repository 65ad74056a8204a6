package table

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Side-by-side benchmark of Table against the baselines (baseline_test.go).
// Names are
//
//	BenchmarkCT/n=<size>/impl=<impl>/<workload>
//
// so that `benchstat -col /impl` puts the implementations side by side.
// Sizes 1e3, 1e5, 1e6 by default, plus 1e7 with TCPCT_BIG=1. Run with
// -cpu 1,2 for the scaling numbers; scripts/bench-table.sh does it all.
//
// Workloads (ns/op is per operation as described):
//
//	W1    established: look a live connection up from a random direction and
//	      update it in place (entry lock / record mutex)
//	W2    churn: expire the oldest connection and create a new one (live set
//	      constant at n); ns/op is per new connection
//	W3    90% W1, 5% create, 5% delete (alternating, live set ~n)
//	W4    W1 while one extra goroutine sweeps the whole table continuously;
//	      reports the sweeper's rate as sweep-conns/s
//	Scan  expiry scan over n live connections, nothing expired: ns per
//	      connection examined, and conns/s
//	GC    one forced runtime.GC() with the table live: ns/op = GC wall time;
//	      also reports B/conn (heap bytes per connection, all-in)
//
// and, for Table only, BenchmarkW2Full (create into a table at Max whose
// entries are all unassured, so every create early-drops one) and
// BenchmarkSweepReclaim (sweep that reclaims expired entries).

func benchSizes() []int {
	s := []int{1e3, 1e5, 1e6}
	if os.Getenv("TCPCT_BIG") != "" {
		s = append(s, 1e7)
	}
	return s
}

// bkey is the tuple of connection id: unique for every uint32, built with
// full-width stores.
func bkey(id uint32) Key {
	return MakeKey4([4]byte{10, byte(id >> 24), byte(id >> 16), byte(id >> 8)}, [4]byte{192, 168, 0, 1}, 1024+uint16(id&0xff), 443)
}

const (
	benchNow = int64(1) << 40
	benchTTL = int64(432000) * 1e9
	lanes    = 8 // concurrent churners; RunParallel goroutines <= lanes
)

// lane is the churn state owned by one RunParallel goroutine: a ring of
// slots ids[lo:hi) (oldest at head) and the table Refs of those slots.
type lane struct {
	lo, hi, head int
	counter      uint32
	pending      bool // W3: a slot was emptied and awaits its create
	_            [64]byte
}

type fixture struct {
	impl  string
	n     int
	kind  string
	tb    *Table[val]
	bl    baseline
	ids   []atomic.Uint32 // connection id per slot (read by all, written by the owning lane)
	refs  []Ref           // table Ref per slot (owning lane only)
	lanes [lanes]lane
	next  atomic.Int32 // lane assignment for RunParallel goroutines
	bytes float64      // heap bytes per connection after building
}

var cur *fixture

func meta() Meta {
	return Meta{Deadline: benchNow + benchTTL, State: stEstablished, Flags: Assured | SeenReply}
}

// getFixture returns the fixture for (impl, n, kind), building it (and
// dropping the previous one, so only one is ever live) when needed.
func getFixture(b *testing.B, impl string, mk func(int) baseline, n int, kind string) *fixture {
	if cur != nil && cur.impl == impl && cur.n == n && cur.kind == kind {
		return cur
	}
	cur = nil
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	f := &fixture{impl: impl, n: n, kind: kind, ids: make([]atomic.Uint32, n), refs: make([]Ref, n)}
	idsBytes := uint64(n) * (4 + 8) // harness bookkeeping, not part of the table
	m := meta()
	if kind == "full" {
		m = Meta{Deadline: benchNow + benchTTL, State: stSynSent}
	}
	if mk == nil {
		tb, err := New[val](Config{Max: n, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		f.tb = tb
	} else {
		f.bl = mk(n)
	}
	per := n / lanes
	for l := range f.lanes {
		ln := &f.lanes[l]
		ln.lo, ln.hi = l*per, (l+1)*per
		if l == lanes-1 {
			ln.hi = n
		}
		ln.head = ln.lo
		for s := ln.lo; s < ln.hi; s++ {
			id := uint32(ln.counter)<<3 | uint32(l)
			ln.counter++
			f.ids[s].Store(id)
			k := bkey(id)
			if f.tb != nil {
				r, _, st := f.tb.Insert(k, mkval(uint64(id)), m, benchNow)
				if st != Inserted {
					b.Fatalf("fill: %v", st)
				}
				f.refs[s] = r
			} else {
				r := &rec{v: mkval(uint64(id))}
				r.dl.Store(m.Deadline)
				f.bl.Store2(k, k.Reverse(), r)
			}
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	f.bytes = float64(int64(ms.HeapAlloc)-int64(before)-int64(idsBytes)) / float64(n)
	cur = f
	return f
}

// w1 looks up connection at slot s from a random side and updates it.
func (f *fixture) w1(s int, reply bool) {
	k := bkey(f.ids[s].Load())
	if reply {
		k = k.Reverse()
	}
	if f.tb != nil {
		r, _, ok := f.tb.Lookup(k, benchNow)
		if !ok {
			return
		}
		v, m, ok := f.tb.Acquire(r)
		if !ok {
			return
		}
		v.W[0]++
		m.Deadline = benchNow + benchTTL
		f.tb.Commit(r, &v, &m, benchNow)
		return
	}
	r, ok := f.bl.Load(k)
	if !ok {
		return
	}
	if f.bl.concurrent() {
		r.mu.Lock()
		r.v.W[0]++
		r.dl.Store(benchNow + benchTTL)
		r.mu.Unlock()
	} else {
		r.v.W[0]++
		r.dl.Store(benchNow + benchTTL)
	}
}

// del removes the connection in slot s; create puts a new one there.
func (f *fixture) del(s int) {
	if f.tb != nil {
		f.tb.Delete(f.refs[s], ReasonExpired, benchNow)
		return
	}
	k := bkey(f.ids[s].Load())
	f.bl.Delete2(k, k.Reverse())
}

func (f *fixture) create(l int, s int) {
	ln := &f.lanes[l]
	id := ln.counter<<3 | uint32(l)
	ln.counter++
	k := bkey(id)
	if f.tb != nil {
		r, _, st := f.tb.Insert(k, mkval(uint64(id)), meta(), benchNow)
		if st != Inserted {
			panic(st.String())
		}
		f.refs[s] = r
	} else {
		r := &rec{v: mkval(uint64(id))}
		r.dl.Store(benchNow + benchTTL)
		f.bl.Store2(k, k.Reverse(), r)
	}
	f.ids[s].Store(id)
}

// churn expires the lane's oldest connection and creates a new one.
func (f *fixture) churn(l int) {
	ln := &f.lanes[l]
	s := ln.head
	f.del(s)
	f.create(l, s)
	if ln.head++; ln.head == ln.hi {
		ln.head = ln.lo
	}
}

// scan is one expiry pass over all connections (nothing expired); it
// returns the number of connections examined.
func (f *fixture) scan() int {
	if f.tb != nil {
		panic("the table has no scan: Expire finds due entries in its wheel")
	}
	seen := 0
	f.bl.Range(func(r *rec) bool {
		if r.dl.Load() <= benchNow {
			panic("expired")
		}
		seen++
		return true
	})
	return seen / 2 // two index entries per connection
}

func (f *fixture) parallel(b *testing.B, body func(l int, rng *rand.Rand)) {
	f.next.Store(0)
	if !f.concurrentOK() && !singleThreaded(b) {
		return
	}
	if runtime.GOMAXPROCS(0) > lanes {
		b.Skip("more goroutines than lanes")
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	defer func() {
		// CPU time per operation, all goroutines of the process summed
		// (GC and a W4 sweeper included): unlike ns/op it does not count
		// time the benchmark spent descheduled on a loaded machine, and
		// at -cpu 2 it shows the cost of contention directly (perfect
		// scaling keeps it equal to the -cpu 1 value).
		if cpu1 := processCPU(); cpu0 != 0 && b.N > 0 {
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		l := int(f.next.Add(1) - 1)
		if l >= lanes {
			panic("too many goroutines for the lanes")
		}
		rng := rand.New(rand.NewPCG(uint64(l), uint64(time.Now().UnixNano())))
		for pb.Next() {
			body(l, rng)
		}
	})
}

// singleThreaded reports whether GOMAXPROCS is 1, and skips the benchmark
// otherwise. The N=1 probe run is not skipped: it runs at whatever
// GOMAXPROCS the previous benchmark left, and a Skip there would drop the
// benchmark for every -cpu value.
func singleThreaded(b *testing.B) bool {
	if runtime.GOMAXPROCS(0) == 1 {
		return true
	}
	if b.N > 1 {
		b.Skip("single-threaded only")
	}
	return false
}

func (f *fixture) concurrentOK() bool { return f.tb != nil || f.bl.concurrent() }

func BenchmarkCT(b *testing.B) {
	impls := append([]struct {
		name string
		make func(n int) baseline
	}{{"table", nil}}, baselines...)
	for _, n := range benchSizes() {
		for _, im := range impls {
			name := fmt.Sprintf("n=%s/impl=%s", sizeName(n), im.name)
			b.Run(name+"/W1", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				f.parallel(b, func(l int, rng *rand.Rand) {
					x := rng.Uint64()
					f.w1(int((x>>1)%uint64(f.n)), x&1 == 1)
				})
			})
			b.Run(name+"/W3", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				f.parallel(b, func(l int, rng *rand.Rand) {
					x := rng.Uint64()
					if x%20 >= 2 {
						f.w1(int((x>>8)%uint64(f.n)), x&(1<<7) != 0)
						return
					}
					ln := &f.lanes[l]
					if !ln.pending {
						f.del(ln.head)
						ln.pending = true
						return
					}
					f.create(l, ln.head)
					ln.pending = false
					if ln.head++; ln.head == ln.hi {
						ln.head = ln.lo
					}
				})
				// Leave no hole behind for the next workload.
				for l := range f.lanes {
					if ln := &f.lanes[l]; ln.pending {
						f.create(l, ln.head)
						ln.pending = false
					}
				}
			})
			b.Run(name+"/W4", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				if !f.concurrentOK() {
					b.Skip("no concurrent sweep for the unlocked map")
				}
				var stop atomic.Bool
				var swept atomic.Int64
				var wg sync.WaitGroup
				wg.Add(1)
				start := time.Now()
				go func() {
					defer wg.Done()
					for !stop.Load() {
						if f.tb != nil {
							// Nothing is due: Expire is the one load
							// the tracker pays per packet.
							f.tb.Expire(benchNow)
						} else {
							swept.Add(int64(f.scan()))
						}
					}
				}()
				f.parallel(b, func(l int, rng *rand.Rand) {
					x := rng.Uint64()
					f.w1(int((x>>1)%uint64(f.n)), x&1 == 1)
				})
				// The sweeper's last pass (a whole map Range for the
				// baselines) must not be charged to W1.
				b.StopTimer()
				elapsed := time.Since(start)
				stop.Store(true)
				wg.Wait()
				b.ReportMetric(float64(swept.Load())/elapsed.Seconds(), "sweep-conns/s")
			})
			b.Run(name+"/Scan", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				if !singleThreaded(b) {
					return
				}
				if f.tb != nil {
					b.Skip("the table needs no scan: Expire finds due entries in its timing wheel")
				}
				b.ReportAllocs()
				b.ResetTimer()
				examined := 0
				for examined < b.N {
					examined += f.scan()
				}
				b.ReportMetric(float64(examined)/b.Elapsed().Seconds(), "conns/s")
			})
			b.Run(name+"/W2", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				f.parallel(b, func(l int, _ *rand.Rand) { f.churn(l) })
			})
			b.Run(name+"/GC", func(b *testing.B) {
				f := getFixture(b, im.name, im.make, n, "assured")
				if !singleThreaded(b) {
					return
				}
				runtime.GC()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					runtime.GC()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/gc")
				b.ReportMetric(f.bytes, "B/conn")
				runtime.KeepAlive(f)
			})
		}
	}
}

// BenchmarkW2Full creates connections into a table at Max whose entries
// are all unassured (a SYN flood): every create early-drops a victim near
// its bucket. Compare with BenchmarkCT/.../impl=table/W2 (delete + create
// below Max).
func BenchmarkW2Full(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run("n="+sizeName(n), func(b *testing.B) {
			f := getFixture(b, "table", nil, n, "full")
			var drops atomic.Int64
			before := f.tb.Stats()
			f.parallel(b, func(l int, _ *rand.Rand) {
				ln := &f.lanes[l]
				id := ln.counter<<3 | uint32(l)
				ln.counter++
				_, _, st := f.tb.Insert(bkey(id), mkval(uint64(id)), Meta{Deadline: benchNow + benchTTL, State: stSynSent}, benchNow)
				if st != Inserted {
					drops.Add(1)
				}
			})
			after := f.tb.Stats()
			if f.tb.Len() > n {
				b.Fatalf("Len %d > Max %d", f.tb.Len(), n)
			}
			b.ReportMetric(float64(drops.Load())/float64(b.N), "drops/op")
			b.ReportMetric(float64(after.EarlyDrop-before.EarlyDrop)/float64(b.N), "evictions/op")
		})
	}
}

// BenchmarkSweepReclaim: ns per expired connection reclaimed by Sweep
// (lock, unlink both tuples, free), table filled with expired entries.
func BenchmarkSweepReclaim(b *testing.B) {
	for _, n := range []int{1e5} {
		b.Run("n="+sizeName(n), func(b *testing.B) {
			if !singleThreaded(b) {
				return
			}
			cur = nil
			tb, err := New[val](Config{Max: n, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var id uint32
			done := 0
			for done < b.N {
				b.StopTimer()
				for tb.Len() < n {
					id++
					tb.Insert(bkey(id), mkval(0), Meta{Deadline: 1, Flags: Assured}, 0)
				}
				b.StartTimer()
				re := tb.Expire(2)
				done += re
			}
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "reclaimed/s")
		})
	}
}

func sizeName(n int) string {
	switch n {
	case 1e3:
		return "1e3"
	case 1e5:
		return "1e5"
	case 1e6:
		return "1e6"
	case 1e7:
		return "1e7"
	}
	return fmt.Sprint(n)
}
