package table

import (
	"sync/atomic"
	"testing"
)

// freeCounts returns each free shard's tokens and listed records.
func freeCounts[V any](tb *Table[V]) (tokens, listed []int) {
	for i := range tb.free {
		f := &tb.free[i]
		f.mu.Lock()
		tokens = append(tokens, int(f.tokens.Load()))
		n := 0
		for h := f.head; h != 0; h = uint32(atomic.LoadUint64(&tb.arena[tb.base(h-1)+wKey])) {
			n++
		}
		listed = append(listed, n)
		f.mu.Unlock()
	}
	return tokens, listed
}

// atDepth calls fn with about 96*n more bytes of stack below the caller.
//
//go:noinline
func atDepth(n int, fn func()) {
	var pad [96]byte
	if n > 0 {
		atDepth(n-1, fn)
	} else {
		fn()
	}
	_ = pad[n%len(pad)]
}

// TestDeleteGivesTokenAndRecordToOneShard checks that a delete puts the
// token it gives back and the record it frees on the same free shard,
// from any stack depth. The shard is chosen from the stack address, which
// moves with the call depth: when the token went back from inside the
// delete and the record from its caller, a delete whose frames straddled
// a shard boundary split them, and the creates of a long replay then
// searched shard after shard for a record (see myShard).
func TestDeleteGivesTokenAndRecordToOneShard(t *testing.T) {
	const n = 400
	tb, err := New[val](Config{Max: n, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]Ref, n)
	for i := range refs {
		m := meta()
		if i%2 == 1 {
			m.Deadline = benchNow + int64(i/2) // expired by the Expires below, two a call
		}
		r, _, st := tb.Insert(bkey(uint32(i)), mkval(uint64(i)), m, benchNow)
		if st != Inserted {
			t.Fatalf("insert %d: %v", i, st)
		}
		refs[i] = r
	}
	tok0, list0 := freeCounts(tb)

	// Deletes at 100 depths, 96 bytes apart: together they span more
	// than two shard boundaries of the stack (4 KiB apart).
	deleted := 0
	for i := 0; i < n; i += 2 {
		atDepth(i/2, func() {
			if !tb.Delete(refs[i], ReasonKilled, benchNow) {
				t.Fatalf("delete %d failed", i)
			}
		})
		deleted++
	}
	// And the expiry path, at as many depths.
	for d := 0; d < 100; d++ {
		atDepth(d, func() { tb.Expire(benchNow + int64(2*d+1)) })
	}
	expired := n/2 - tb.Len()

	tok1, list1 := freeCounts(tb)
	gave, pushed := 0, 0
	for i := range tok1 {
		dt, dl := tok1[i]-tok0[i], list1[i]-list0[i]
		if dt != dl {
			t.Errorf("shard %d got %d tokens and %d records", i, dt, dl)
		}
		gave += dt
		pushed += dl
	}
	if want := deleted + n/2; gave != want || pushed != want || expired != n/2 {
		t.Errorf("tokens %d, records %d given back, %d expired; want %d, %d, %d", gave, pushed, expired, want, want, n/2)
	}
}
