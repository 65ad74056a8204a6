package table

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// Prefetch only loads memory: after prefetching present, absent and zero
// keys, in batches shorter and longer than its internal chunk, every lookup
// answers as before and no counter moved.
func TestPrefetchChangesNothing(t *testing.T) {
	tb := newTable(t, 256)
	refs := make([]Ref, 100)
	for i := range refs {
		refs[i] = mustInsert(t, tb, key4(uint32(i)), mkval(uint64(i)), Meta{Deadline: 100 * sec, State: stEstablished}, 0)
	}
	before := tb.Stats()
	keys := []Key{{}}
	for i := range 150 { // 100 present (either direction), 50 absent
		k := key4(uint32(i))
		if i%2 == 1 {
			k = k.Reverse()
		}
		keys = append(keys, k)
	}
	for _, n := range []int{0, 1, 15, 16, 17, len(keys)} {
		tb.Prefetch(keys[:n])
	}
	if after := tb.Stats(); after != before {
		t.Fatalf("Prefetch changed the counters: %+v -> %+v", before, after)
	}
	for i, k := range keys[1:] {
		r, d, ok := tb.Lookup(k, sec)
		switch {
		case i < len(refs) && (!ok || r != refs[i] || d != Dir(i%2)):
			t.Fatalf("Lookup(%v) = %v %v %v after Prefetch; want %v", k, r, d, ok, refs[i])
		case i >= len(refs) && ok:
			t.Fatalf("Lookup(%v) found %v after Prefetch", k, r)
		}
	}
}

// BenchmarkW1Batch measures what Prefetch is for: workload W1 (look a
// random established connection up from either direction and update it in
// place) in batches of 16, with and without prefetching the batch first.
// At 1e5 connections and beyond the difference is the bucket and record
// misses that overlap instead of queueing. The acquirekey line is the
// tracker's path (PrefetchHashes, AcquireKey, Commit).
func BenchmarkW1Batch(b *testing.B) {
	for _, n := range []int{1e3, 1e5, 1e6} {
		tb, err := New[val](Config{Max: n, Seed: 42, StateNames: testStates})
		if err != nil {
			b.Fatal(err)
		}
		m := Meta{Deadline: 1 << 62, State: stEstablished, Flags: Assured | SeenReply}
		for i := range n {
			if _, _, st := tb.Insert(key4(uint32(i)), mkval(uint64(i)), m, 0); st != Inserted {
				b.Fatal(st)
			}
		}
		order := make([]Key, 1<<16)
		x := uint64(88172645463325252)
		for i := range order {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			order[i] = key4(uint32(x % uint64(n)))
			if x&(1<<40) != 0 {
				order[i] = order[i].Reverse()
			}
		}
		b.Run(fmt.Sprintf("n=%s/acquirekey", sizeName(n)), func(b *testing.B) {
			// The tracker's path: PrefetchHashes, then AcquireKey with
			// the hash it gave, then Commit.
			const batch = 16
			var hashes [batch]uint64
			b.ReportAllocs()
			updated := 0
			for i := 0; i < b.N; i += batch {
				keys := order[i&(len(order)-1) : i&(len(order)-1)+batch]
				tb.PrefetchHashes(keys, hashes[:])
				for j := range keys {
					var v val
					r, _, m, ok := tb.AcquireKey(&keys[j], hashes[j], sec, &v)
					if !ok {
						continue
					}
					v.W[0]++
					tb.Commit(r, &v, &m, sec)
					updated++
				}
			}
			if updated == 0 {
				b.Fatal("nothing updated")
			}
		})
		for _, pf := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%s/prefetch=%v", sizeName(n), pf), func(b *testing.B) {
				const batch = 16
				b.ReportAllocs()
				updated := 0
				for i := 0; i < b.N; i += batch {
					keys := order[i&(len(order)-1) : i&(len(order)-1)+batch]
					if pf {
						tb.Prefetch(keys)
					}
					for _, k := range keys {
						r, _, ok := tb.Lookup(k, sec)
						if !ok {
							continue
						}
						v, m, ok := tb.Acquire(r)
						if !ok {
							continue
						}
						v.W[0]++
						tb.Commit(r, &v, &m, sec)
						updated++
					}
				}
				if updated == 0 {
					b.Fatal("nothing updated")
				}
			})
		}
	}
}

// The lines the prefetch waves name (index buckets and writer stripes,
// as PrefetchCreates and prefetchReclaims compute them) can be loaded
// while other goroutines create and delete entries: the portable
// prefetchLines (loadLines) reads only words written atomically or never,
// which the race detector checks here on every architecture, and the
// waves themselves change nothing the lookups see.
func TestPrefetchLinesRaceFree(t *testing.T) {
	tb := newTable(t, 512)
	const n = 200
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = key4(uint32(i))
	}
	lines := make([]unsafe.Pointer, 0, 4*n)
	for i := range keys {
		h, hr := keys[i].hash(&tb.seed), keys[i].Reverse().hash(&tb.seed)
		lines = append(lines, tb.bucketLine(h), tb.bucketLine(hr), tb.stripeLine(h), tb.stripeLine(hr))
	}
	live := make([]bool, n) // written by the churner, read after done
	done := make(chan struct{})
	go func() {
		defer close(done)
		refs := make([]Ref, n)
		for round := range 20 {
			for i := range keys {
				switch {
				case live[i] && (i+round)%3 == 0:
					tb.Delete(refs[i], ReasonKilled, 0)
					live[i] = false
				case !live[i]:
					r, _, st := tb.Insert(keys[i], mkval(uint64(i)), Meta{Deadline: 100 * sec}, 0)
					if st != Inserted {
						t.Errorf("Insert(key %d) = %v", i, st)
						return
					}
					refs[i], live[i] = r, true
				}
			}
		}
	}()
	hashes := make([]uint64, n)
	for {
		select {
		case <-done:
			for i, k := range keys {
				if _, _, ok := tb.Lookup(k, sec); ok != live[i] {
					t.Fatalf("key %d: found %v after the waves, live %v", i, ok, live[i])
				}
			}
			return
		default:
		}
		loadLines(&lines[0], len(lines))
		prefetchLines(&lines[0], len(lines))
		tb.PrefetchCreates(keys, hashes, ^uint64(0))
	}
}

// BenchmarkW1KnownRecord bounds what any placement of records that could
// be predicted from a tuple would give W1 at 1e6 connections (a record
// kept near a slot named by the tuple's hash, say, so that a lookup could
// ask for the record while its index bucket is on the way). The known
// line looks the connection up as W1 does, after prefetching its record's
// first line from the Ref the fixture kept when it created it: the
// record's miss then overlaps the bucket's, as a prediction right every
// time would make it. The fixture's Ref is one more load, but it is
// independent of W1's own and overlaps it.
func BenchmarkW1KnownRecord(b *testing.B) {
	for _, known := range []bool{false, true} {
		b.Run(fmt.Sprintf("known=%v", known), func(b *testing.B) {
			f := getFixture(b, "table", nil, 1e6, "assured")
			f.parallel(b, func(l int, rng *rand.Rand) {
				x := rng.Uint64()
				s := int((x >> 1) % uint64(f.n))
				if known {
					p := [1]unsafe.Pointer{unsafe.Pointer(&f.tb.arena[f.tb.base(f.refs[s].idx)])}
					prefetchLines(&p[0], 1)
				}
				f.w1(s, x&1 == 1)
			})
		})
	}
}

// BenchmarkDependentLoad is the machine's side of W1: a chain of
// dependent loads, each from a random cache line of an array of the
// given size on huge pages, as the table's arrays are. W1 at n
// connections is three such loads in a row (the benchmark's connection
// id, 4 MB at 1e6; the index bucket, 23 MB; the record, 128 MB), where
// xsync's is four (id, bucket, entry, record); what a miss costs at each
// size says how far apart the two can be.
func BenchmarkDependentLoad(b *testing.B) {
	for _, mb := range []int{1, 4, 8, 16, 32, 128} {
		b.Run(fmt.Sprintf("MB=%d", mb), func(b *testing.B) {
			lines := mb << 20 / 64
			a := alignedWords(lines * 8)
			adviseHuge(unsafe.Pointer(&a[0]), uintptr(len(a)*8))
			perm := rand.New(rand.NewPCG(1, 2)).Perm(lines)
			for i, p := range perm {
				a[p*8] = uint64(perm[(i+1)%lines] * 8) // a cycle through every line
			}
			j := uint64(0)
			for range lines { // touch every line once
				j = a[j]
			}
			b.ResetTimer()
			for range b.N {
				j = a[j]
			}
			if j%8 != 0 {
				b.Fatal("broken chain")
			}
		})
	}
}
