package table

import (
	"slices"
	"testing"
)

// AcquireKey answers exactly as Lookup followed by Acquire: the same Ref,
// direction, value and Meta for either tuple of a live entry, nothing for
// an absent, expired or removed one, and with no lock left behind when it
// finds nothing. A hash from PrefetchHashes and 0 ("compute it") give the
// same answers, and every success counts as a lookup that found an entry.
func TestAcquireKey(t *testing.T) {
	tb := newTable(t, 64)
	m := Meta{Deadline: 10 * sec, State: stEstablished, Flags: Assured | SeenReply}
	live := mustInsert(t, tb, key4(1), mkval(1), m, 0)
	old := mustInsert(t, tb, key6(2), mkval(2), Meta{Deadline: 2 * sec, State: stSynSent}, 0)
	gone := mustInsert(t, tb, key4(3), mkval(3), m, 0)
	if _, _, ok := tb.Acquire(gone); !ok {
		t.Fatal("Acquire(gone)")
	}
	tb.Remove(gone, ReasonKilled, 0)

	keys := []Key{key4(1), key4(1).Reverse(), key6(2), key6(2).Reverse(), key4(3), key4(4), key6(5).Reverse()}
	hashes := make([]uint64, len(keys))
	tb.PrefetchHashes(keys, hashes)
	for i, k := range keys {
		if hashes[i] != k.hash(&tb.seed) {
			t.Fatalf("PrefetchHashes gave %#x for %v, want %#x", hashes[i], k, k.hash(&tb.seed))
		}
	}
	// PrefetchCreates gives the same hashes whatever keys it marks, marks
	// past the end included, and changes nothing.
	st, n := tb.Stats(), tb.Len()
	for _, creates := range []uint64{0, 1, 0b1010010, ^uint64(0)} {
		hs := make([]uint64, len(keys))
		tb.PrefetchCreates(keys, hs, creates)
		if !slices.Equal(hs, hashes) {
			t.Fatalf("PrefetchCreates(%b) gave hashes %x, want %x", creates, hs, hashes)
		}
	}
	// Batches longer than its chunk of 16 and than the 64 marks.
	for _, n := range []int{16, 17, 64, 100} {
		long := make([]Key, n)
		for i := range long {
			long[i] = key4(uint32(i))
		}
		hs := make([]uint64, n)
		for _, creates := range []uint64{0, ^uint64(0), 1 << 63} {
			clear(hs)
			tb.PrefetchCreates(long, hs, creates)
			for i, k := range long {
				if hs[i] != k.hash(&tb.seed) {
					t.Fatalf("PrefetchCreates(%d keys, %b) gave %#x for key %d, want %#x", n, creates, hs[i], i, k.hash(&tb.seed))
				}
			}
		}
	}
	if tb.Stats() != st || tb.Len() != n {
		t.Fatalf("PrefetchCreates changed the table: %+v, was %+v", tb.Stats(), st)
	}

	for _, now := range []int64{sec, 5 * sec} { // old has expired at 5 s
		for i, k := range keys {
			for _, h := range []uint64{0, hashes[i]} {
				wr, wd, found := tb.Lookup(k, now)
				var wv val
				var wm Meta
				if found {
					if wv, wm, found = tb.Acquire(wr); !found {
						t.Fatalf("Acquire(%v) after Lookup failed", wr)
					}
					tb.Abort(wr)
				}
				before := tb.Stats().Found
				var v val
				r, d, gm, ok := tb.AcquireKey(&k, h, now, &v)
				if ok != found || (ok && (r != wr || d != wd || v != wv || gm != wm)) {
					t.Fatalf("now %ds, %v (hash %#x): AcquireKey = %v %v %+v %v; Lookup+Acquire = %v %v %+v %v",
						now/sec, k, h, r, d, gm, ok, wr, wd, wm, found)
				}
				if n := tb.Stats().Found - before; (ok && n != 1) || (!ok && n != 0) {
					t.Fatalf("%v: Found counter moved by %d", k, n)
				}
				// AcquireKeyTally answers the same and counts in the
				// caller's tally, which AddFound adds.
				var tally uint64
				before = tb.Stats().Found
				if ok {
					tb.Abort(r)
				}
				tr, td, tm, tok := tb.AcquireKeyTally(&k, h, now, &v, &tally)
				if tok != ok || tr != r || td != d || tm != gm || tally != uint64(b2i(ok)) || tb.Stats().Found != before {
					t.Fatalf("%v: AcquireKeyTally = %v %v %+v %v, tally %d, counter moved by %d; AcquireKey = %v %v %+v %v",
						k, tr, td, tm, tok, tally, tb.Stats().Found-before, r, d, gm, ok)
				}
				tb.AddFound(tally)
				if n := tb.Stats().Found - before; n != tally {
					t.Fatalf("%v: AddFound(%d) moved the counter by %d", k, tally, n)
				}
				if ok {
					if !tb.locked(tb.base(r.idx)) {
						t.Fatalf("%v: entry not locked after AcquireKey", k)
					}
					v.W[0]++
					tb.Commit(r, &v, &gm, now)
					if got, _, _ := tb.Load(r); got != v {
						t.Fatalf("%v: Commit after AcquireKey stored %+v, want %+v", k, got, v)
					}
				}
			}
		}
	}
	// Nothing is left locked, found or not.
	for _, r := range []Ref{live, old, gone} {
		if tb.locked(tb.base(r.idx)) {
			t.Fatalf("record %v left locked", r)
		}
	}
}

// holdsKey compares all five key words, in the direction asked: a record
// never matches a key that differs in any one word, nor the reverse tuple
// in the wrong direction.
func TestHoldsKey(t *testing.T) {
	tb := newTable(t, 8)
	k := key6(7)
	r := mustInsert(t, tb, k, mkval(7), Meta{Deadline: sec, State: stEstablished}, 0)
	b := tb.base(r.idx)
	tail := tb.arena[b+wTail]
	if !tb.holdsKey(b, tail, &k, Original) || !tb.holdsKey(b, tail, new(k.Reverse()), Reply) {
		t.Fatal("record does not hold its own tuple")
	}
	if tb.holdsKey(b, tail, new(k.Reverse()), Original) || tb.holdsKey(b, tail, &k, Reply) {
		t.Fatal("record holds its tuple in the wrong direction")
	}
	for w := range k.w {
		x := k
		x.w[w] ^= 1 << 3
		if tb.holdsKey(b, tail, &x, Original) {
			t.Fatalf("record holds a key differing in word %d", w)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
