package table

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// The index is an array of 64-byte buckets: word 0 counts the keys that were
// placed past this bucket (an "overflow" count, as in folly's F14), words
// 1..7 are slots. A slot is tag<<32 | (idx<<1 | dir) + 1, where tag is the
// low half of the key's hash, so a miss rarely touches a record. Empty = 0.
//
// Because each bucket knows whether any key probed past it, deletion simply
// clears the slot and decrements the counts on the path: no tombstones, so
// churn never lengthens probe sequences. A lookup stops at the first bucket
// whose overflow count is zero.
//
// Ordering: an insert bumps the overflow counts before it publishes its slot
// with a CAS; a delete clears its slot before dropping the counts. A reader
// that follows the same order (slots, then count) can miss a key only when
// its search overlaps that key's insert or delete, which linearizability
// allows.

func (t *Table[V]) home(h uint64) uint64 {
	hi, _ := bits.Mul64(h, t.nb)
	return hi
}

// bucketLine is the address of the home bucket of a tuple whose hash is
// h, for prefetchLines.
func (t *Table[V]) bucketLine(h uint64) unsafe.Pointer {
	return unsafe.Pointer(&t.buckets[t.home(h)*8])
}

// stripeLine is the address of the never-written line word of the writer
// stripe of a tuple whose hash is h, for prefetchLines.
func (t *Table[V]) stripeLine(h uint64) unsafe.Pointer {
	return unsafe.Pointer(&t.stripes[t.stripeOf(h)].line)
}

func slotVal(tag uint32, idx uint32, d Dir) uint64 {
	return uint64(tag)<<32 | uint64(idx<<1|uint32(d)) + 1
}

// search finds the live-or-expired entry whose dir-tuple equals k. kr must be
// k.Reverse(). It returns the record's meta word and deadline as read in one
// consistent snapshot.
func (t *Table[V]) search(k, kr *Key, h uint64) (idx uint32, d Dir, m uint64, dl int64, ok bool) {
	tag := uint32(h)
	b := t.home(h)
	for p := 0; p < t.probes; p++ {
		bw := t.buckets[b*8 : b*8+8 : b*8+8]
		for i := 1; i < 8; i++ {
			s := atomic.LoadUint64(&bw[i])
			if s == 0 || uint32(s>>32) != tag {
				continue
			}
			r := uint32(s) - 1
			idx, d = r>>1, Dir(r&1)
			want := k
			if d == Reply {
				want = kr
			}
			rk, rm, rdl := t.readHead(idx)
			if metaAlive(rm) && rk == *want {
				return idx, d, rm, rdl, true
			}
		}
		if atomic.LoadUint64(&bw[0]) == 0 {
			break
		}
		if b++; b == t.nb {
			b = 0
		}
	}
	return 0, 0, 0, 0, false
}

// link publishes slot value v for hash h. Callers hold h's stripe lock, so no
// other writer links or unlinks the same key concurrently; slots are still
// claimed with CAS because keys of other stripes share buckets.
func (t *Table[V]) link(h uint64, v uint64) bool {
	start := t.home(h)
	b := start
	for p := 0; p < t.probes; p++ {
		bw := t.buckets[b*8 : b*8+8 : b*8+8]
		for i := 1; i < 8; i++ {
			if atomic.LoadUint64(&bw[i]) == 0 && atomic.CompareAndSwapUint64(&bw[i], 0, v) {
				return true
			}
		}
		atomic.AddUint64(&bw[0], 1)
		if b++; b == t.nb {
			b = 0
		}
	}
	// Probe limit: undo the overflow counts we added and fail.
	t.dropOverflow(start, t.probes)
	return false
}

func (t *Table[V]) dropOverflow(b uint64, n int) {
	for ; n > 0; n-- {
		atomic.AddUint64(&t.buckets[b*8], ^uint64(0))
		if b++; b == t.nb {
			b = 0
		}
	}
}

// unlink removes slot value v for hash h; it must be present.
func (t *Table[V]) unlink(h uint64, v uint64) {
	start := t.home(h)
	b := start
	for p := 0; p < t.probes; p++ {
		bw := t.buckets[b*8 : b*8+8 : b*8+8]
		for i := 1; i < 8; i++ {
			if atomic.LoadUint64(&bw[i]) == v {
				atomic.StoreUint64(&bw[i], 0)
				t.dropOverflow(start, p)
				return
			}
		}
		if b++; b == t.nb {
			b = 0
		}
	}
	panic("table: unlink of a missing slot (index corrupted)")
}

// Prefetch loads the memory that lookups of keys will read, and returns
// without using it. Beyond about 1e5 connections a lookup is two
// dependent cache misses (the home bucket, then the record its slot
// names) and they are most of its cost; a caller that holds a batch of
// packets (a replay reading ahead, a NIC ring) prefetches all of their
// tuples first, then tracks the packets in order. Prefetch issues the
// bucket loads of up to 16 keys back to back, so their misses overlap,
// then, as those lines arrive, the loads of the records whose tags match:
// the batch waits for about two misses instead of two per key
// (BenchmarkW1Batch measures the gain, BENCHMARKS.md has the numbers; on
// a table small enough to stay in cache it costs a little). It
// changes nothing: the lines are asked for with prefetchLines, as
// PrefetchCreates asks for its own.
func (t *Table[V]) Prefetch(keys []Key) {
	const chunk = 16
	var at [chunk]uint64
	var tags [chunk]uint32
	var lines [chunk * slotsPerBucket]unsafe.Pointer
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		for i := range keys[:n] {
			h := keys[i].hash(&t.seed)
			at[i], tags[i] = t.home(h)*8, uint32(h)
			lines[i] = t.bucketLine(h)
		}
		prefetchLines(&lines[0], n)
		// Second wave: the records the home buckets point at, for every
		// slot whose tag matches (the bucket lines are on their way, so
		// this waits for about one miss, not n).
		m := 0
		for i, b := range at[:n] {
			bw := t.buckets[b : b+8 : b+8]
			for j := 1; j < 8; j++ {
				if s := atomic.LoadUint64(&bw[j]); s != 0 && uint32(s>>32) == tags[i] {
					lines[m] = unsafe.Pointer(&t.arena[t.base((uint32(s)-1)>>1)])
					m++
				}
			}
		}
		prefetchLines(&lines[0], m)
		keys = keys[n:]
	}
}

// PrefetchHashes hashes keys into hashes (len(hashes) >= len(keys)) and
// prefetches their home buckets, for a caller that then looks each key up
// with AcquireKey and passes its hash on instead of hashing twice.
//
// Unlike Prefetch it does not go on to load the records: a tracker's
// batch is consecutive packets of a capture or a ring, and a connection's
// record is usually still cached from its previous packet, or comes in
// order of creation, which the hardware prefetcher follows, so waiting
// for the buckets to arrive before the record wave costs more than it
// saves (10M-packet replay, one core: 2.75 s with the bucket loads only,
// 3.10 s with both waves, 3.1-3.3 s with neither). For keys drawn at
// random from 1e6 connections Prefetch's record wave does pay
// (BenchmarkW1Batch).
func (t *Table[V]) PrefetchHashes(keys []Key, hashes []uint64) {
	t.PrefetchCreates(keys, hashes, 0)
}

// PrefetchCreates is PrefetchHashes for a batch in which some keys will
// probably be inserted: bit i of creates marks keys[i] (i < 64) as the
// first packet of a connection (a tracker marks SYNs). For those it also
// prefetches what Insert touches beyond the lookup's bucket: the home
// bucket of the reply tuple, where Insert links it, and the writer
// stripes of both tuples. Those lines are as cold as the bucket (a new
// connection's reply tuple has never been looked up), and Insert met
// them one at a time, each miss behind the atomic read-modify-writes
// before it (a locked instruction waits for every earlier load), where
// the prefetches overlap them with the batch's other misses. Marks on
// keys that then find an entry cost the prefetches only.
//
// The lines are asked for with prefetch instructions where the CPU has
// them (prefetchLines): the 10M-packet replay on one core took 0.94x the
// CPU time of the same wave made of loads (2026-12-06, five interleaved
// rounds).
func (t *Table[V]) PrefetchCreates(keys []Key, hashes []uint64, creates uint64) {
	const chunk = 16
	hashes = hashes[:len(keys)]
	var lines [4 * chunk]unsafe.Pointer
	for off := 0; off < len(keys); off += chunk {
		part := keys[off:min(off+chunk, len(keys))]
		n := 0
		for i := range part {
			h := part[i].hash(&t.seed)
			hashes[off+i] = h
			lines[n] = t.bucketLine(h)
			n++
		}
		var marks uint64
		if off < 64 {
			marks = creates >> off & (1<<chunk - 1)
		}
		for marks != 0 {
			i := bits.TrailingZeros64(marks)
			marks &= marks - 1
			if i >= len(part) {
				break
			}
			h := hashes[off+i]
			kr := part[i].Reverse()
			hr := kr.hash(&t.seed)
			lines[n], lines[n+1], lines[n+2] = t.bucketLine(hr), t.stripeLine(h), t.stripeLine(hr)
			n += 3
		}
		prefetchLines(&lines[0], n)
	}
}
