package table

import (
	"fmt"
	"math"
)

// Growing a table serves the kernel's nf_conntrack_max = 0, "no limit":
// the kernel's table is a hash of chains that takes any number of entries
// (nf_conntrack_core.c, __nf_conntrack_alloc: the limit is checked only
// when nf_conntrack_max is non-zero). This table is fixed-capacity so that
// its packet path needs no resize protocol; a table made with Config.Grow
// instead reports Full where another would early-drop, and its owner,
// holding every other user off, calls Grow and inserts again.
//
// Grow keeps every record at its index, so Refs (and everything keyed by
// Ref.Index) stay valid: the record arena, the wheel's filings and the
// counters are copied into larger arrays at the same offsets, and
// only the index, whose bucket count depends on the capacity, is rebuilt.

// Grow enlarges the table to size records (it never shrinks). It is not
// safe for concurrent use: the caller makes sure that no other method of
// the table runs meanwhile (the tracker holds a write lock that its packet
// path takes for reading). Entries, their deadlines, counters and the
// subscription are kept; no event is emitted.
func (t *Table[V]) Grow(size int) error {
	if size <= int(t.max) {
		return nil
	}
	if size > math.MaxInt32-1 {
		return fmt.Errorf("table: Grow to %d: above the largest table, %d", size, math.MaxInt32-1)
	}
	old := int(t.max)

	arena := alignedWords(size * t.stride)
	copy(arena, t.arena)
	if t.acct != nil {
		acct := make([]uint64, 4*size)
		copy(acct, t.acct)
		t.acct = acct
	}
	t.arena = arena

	// The wheel: more slots for more records, every filed record filed
	// again under the deadline it had (entries already due stay due).
	w := &t.wheel
	filed := w.links
	cur, started := w.cur, w.started
	w.init(size)
	w.cur, w.started = cur, started
	for idx := range old {
		if l := &filed[idx]; l.where != 0 && filedOf(l.unfiled) != freeDeadline {
			dl := filedOf(l.unfiled)
			w.links[idx].unfiled = l.unfiled
			w.link(uint32(idx), max(dl>>slotShift, w.cur)&w.mask)
			if dl < w.due.Load() {
				w.due.Store(dl)
			}
		}
	}

	// The index, rebuilt for the new capacity from the live records.
	t.nb = max(uint64(math.Ceil(2*float64(size)/(slotsPerBucket*maxLoad))), 2)
	t.buckets = alignedWords(int(t.nb) * 8)
	t.probes = min(maxProbes, int(t.nb))
	for idx := range uint32(old) {
		b := t.base(idx)
		if !metaAlive(t.loadMeta(b)) {
			continue
		}
		k := t.loadKey(b)
		kr := k.Reverse()
		h, hr := k.hash(&t.seed), kr.hash(&t.seed)
		if !t.link(h, slotVal(uint32(h), idx, Original)) || !t.link(hr, slotVal(uint32(hr), idx, Reply)) {
			return fmt.Errorf("table: Grow to %d: index probe limit", size)
		}
	}

	// Capacity: the new records are tokens of the free shards; the records
	// themselves come from the never-used region, which popLocked bounds
	// by t.max.
	added := uint64(size - old)
	nf := uint64(len(t.free))
	for i := range t.free {
		t.free[i].tokens.Add(int64(added/nf + b2u(uint64(i) < added%nf)))
	}
	t.max = uint32(size)
	return nil
}
