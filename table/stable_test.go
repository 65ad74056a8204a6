package table

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// A present connection is never missed by Lookup while other connections
// sharing its index buckets are created, deleted and replaced.
func TestStableEntryNeverMissed(t *testing.T) {
	for _, max := range []int{3, 8} {
		tb := newTable(t, max)
		stable := key4(0)
		mustInsert(t, tb, stable, mkval(0), Meta{Deadline: 1 << 62, Flags: Assured}, 0) // never evicted
		var stop atomic.Bool
		var misses, lookups atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for !stop.Load() {
					k := key4(uint32(1 + rng.IntN(max)))
					if rng.IntN(2) == 0 {
						k = k.Reverse()
					}
					switch rng.IntN(3) {
					case 0:
						tb.Insert(k, mkval(1), Meta{Deadline: 1 << 62}, 0)
					case 1:
						if r, _, ok := tb.Lookup(k, 0); ok {
							tb.Delete(r, ReasonKilled, 0)
						}
					case 2:
						if r, _, ok := tb.Lookup(k, 0); ok {
							if v, m, ok := tb.Acquire(r); ok {
								if rng.IntN(2) == 0 {
									tb.Commit(r, &v, &m, 0)
								} else {
									tb.Replace(r, k, v, m, 0) // either orientation
								}
							}
						}
					}
				}
			}()
		}
		for i := 0; i < 200000; i++ {
			k := stable
			if i&1 == 1 {
				k = k.Reverse()
			}
			if _, _, ok := tb.Lookup(k, 0); !ok {
				misses.Add(1)
			}
			lookups.Add(1)
		}
		stop.Store(true)
		wg.Wait()
		if misses.Load() != 0 {
			t.Errorf("Max %d: %d of %d lookups missed a present entry", max, misses.Load(), lookups.Load())
		}
	}
}
