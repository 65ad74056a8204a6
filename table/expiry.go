package table

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Expiry is exact and ordered: Expire(now) reclaims every entry whose
// deadline is <= now, in order of deadline, then original tuple, and
// emits their DESTROY events in that order. What it reclaims and the
// order of the events are therefore a function of the writes and of the
// clock values the caller passes, never of the table's memory layout, its
// hash seed, or how often Expire is called. (The kernel's gc worker scans
// buckets and reclaims whatever it meets, up to seconds late; a reference
// implementation needs a rule that a replay reproduces exactly.)
//
// To find due entries without scanning the table, each entry is filed in
// a timing wheel by its deadline: up to maxSlots slots of 2^slotShift ns
// (about 1 ms), each a doubly linked list threaded through per-record
// link words, so filing, moving and unfiling allocate nothing. A record's
// links, its slot and its filed deadline share one 24-byte wheelLink, so
// filing or visiting an entry misses the cache once for them, not once
// per array. A refresh
// that moves a deadline later (the common case: an established
// connection's next packet) does not touch the wheel; the entry is moved,
// once, when its old slot comes due. A write that moves a deadline
// earlier (a closing state) moves it at once. The record's filed word holds
// the deadline it is filed under, a lower bound of its deadline; a freed
// record's is freeDeadline, and the wheel unlinks it when it next visits
// its slot (or when the record is filed again). An entry whose deadline
// lies a lap or more ahead (ESTABLISHED's five days) stays in its slot and
// is passed over once a lap.

const (
	slotShift = 20 // a slot is 2^20 ns, about 1 ms
	minSlots  = 64
	maxSlots  = 1 << 16 // a lap of 2^36 ns, about 69 s
)

// dueEntry is an entry found due: its record and generation, and the
// deadline and tuple that order it.
type dueEntry struct {
	idx, gen uint32
	filed    int64 // the deadline it was filed under
	deadline int64
	key      Key
}

// wheelLink is one record's filing: the links of its slot's list (idx+1,
// 0 none), the slot it is linked in (slot+1, 0 none), and the deadline it
// is filed under (filedDeadline; freeDeadline for a free record), which
// writers of the entry read and the wheel's visits write, atomically. The
// deadline is kept XORed with freeDeadline (unfiled), so that the zero
// wheelLink is a free record's: New need not write the 24 bytes of
// every record's link (6 MiB at the default max, most of a short
// replay's page faults in the wheel), the kernel's zeroed pages are
// right as they are.
type wheelLink struct {
	next, prev uint32
	where      uint32
	_          uint32
	unfiled    int64
}

// filedOf and unfiledOf convert between a filed deadline and
// wheelLink.unfiled.
func filedOf(u int64) int64    { return u ^ freeDeadline }
func unfiledOf(dl int64) int64 { return dl ^ freeDeadline }

type wheel struct {
	mu      sync.Mutex // a leaf lock: nothing else is taken while it is held
	heads   []uint32   // per slot: idx+1 of the first record filed there, 0 none
	mask    int64
	started bool
	cur     int64 // absolute slot number (deadline >> slotShift) visited last

	// Per record: its links and filed deadline.
	links []wheelLink

	// due is a lower bound of the earliest deadline filed: Expire(now) has
	// nothing to do while now < due. Read on every packet without a lock.
	due atomic.Int64

	// expiring serialises Expire's reclaim phase, which works on found.
	expiring sync.Mutex
	found    []dueEntry
	hashes   [][2]uint64 // found[i]'s tuple hashes (prefetchReclaims)
}

func (w *wheel) init(capacity int) {
	n := int(nextPow2(uint64(capacity)))
	n = min(max(n, minSlots), maxSlots)
	w.heads = make([]uint32, n)
	w.mask = int64(n - 1)
	w.links = make([]wheelLink, capacity) // all free: see wheelLink
	// Filing and visits reach records in no particular order: huge pages
	// spare them a TLB miss each, as for the arena and the index.
	adviseHuge(unsafe.Pointer(&w.links[0]), uintptr(len(w.links))*unsafe.Sizeof(w.links[0]))
	w.due.Store(freeDeadline)
}

func (w *wheel) link(idx uint32, b int64) {
	n := w.heads[b]
	l := &w.links[idx]
	l.next, l.prev, l.where = n, 0, uint32(b)+1
	if n != 0 {
		w.links[n-1].prev = idx + 1
	}
	w.heads[b] = idx + 1
}

func (w *wheel) unlink(idx uint32) {
	l := &w.links[idx]
	if l.where == 0 {
		return
	}
	b := l.where - 1
	p, n := l.prev, l.next
	if p != 0 {
		w.links[p-1].next = n
	} else {
		w.heads[b] = n
	}
	if n != 0 {
		w.links[n-1].prev = p
	}
	l.where = 0
}

// file files record idx under deadline dl, moving it from wherever it was
// filed. now is the writer's clock. The caller holds the record's entry
// lock (or is its only user), outside any seqlock write window.
func (t *Table[V]) file(idx uint32, dl, now int64) {
	w := &t.wheel
	w.mu.Lock()
	if !w.started {
		w.started = true
		w.cur = now >> slotShift
		w.due.Store((w.cur + 1) << slotShift)
	}
	w.unlink(idx)
	w.link(idx, max(dl>>slotShift, w.cur)&w.mask) // a deadline already passed waits in the current slot
	atomic.StoreInt64(&w.links[idx].unfiled, unfiledOf(dl))
	if dl < w.due.Load() {
		w.due.Store(dl)
	}
	w.mu.Unlock()
}

// filedDeadline is the deadline record idx is filed under.
func (t *Table[V]) filedDeadline(idx uint32) int64 {
	return filedOf(atomic.LoadInt64(&t.wheel.links[idx].unfiled))
}

// unfile marks record idx free for the wheel: its filing is stale, and
// the wheel unlinks it when it next visits its slot.
func (t *Table[V]) unfile(idx uint32) {
	atomic.StoreInt64(&t.wheel.links[idx].unfiled, unfiledOf(freeDeadline))
}

// Expire reclaims every entry whose deadline is <= now, in order of
// deadline and then original tuple, emitting DESTROY (expired) for each,
// and returns how many it reclaimed. It costs one atomic load when
// nothing is due. Entries whose lock another goroutine holds at that
// moment are left for the next call; with one goroutine (a replay), every
// entry expired at now is gone when Expire returns.
func (t *Table[V]) Expire(now int64) int {
	if now < t.wheel.due.Load() {
		return 0
	}
	return t.expireDue(now)
}

// Reclaim is Expire for the packet path, which needs expired entries
// gone only as far as anyone can tell. Every decision of the table
// already treats an entry whose deadline is <= now as absent: lookups
// (AcquireKey, Get, Range) pass over it, and Insert reclaims one that
// holds its tuple, and reclaims everything due before it finds the table
// full or evicts. What an early reclaim shows is its DESTROY event, and
// the entry count (Len, like the kernel's nf_conntrack_count, counts
// expired entries not yet reclaimed).
//
// So while an event subscriber is installed, Reclaim is Expire: each
// DESTROY comes at the first call at or after its deadline. With none,
// Reclaim waits until the clock is reclaimLag past the earliest deadline
// (past the wheel's bound on it, which is at most a slot earlier) and
// then reclaims everything due at now in one call, in Expire's order
// (deadline, then tuple). The batch lets Expire overlap the cache misses
// of its entries (a due entry's buckets and stripes are as cold as a new
// connection's), which one entry a call cannot: on the 10M-packet replay, 0.92-0.94x the CPU time of an Expire
// per packet (2026-12-06, two runs of 7 and 9 interleaved rounds,
// identical output).
func (t *Table[V]) Reclaim(now int64) int {
	due := t.wheel.due.Load()
	// now >= due below, so the unsigned difference is exact even where
	// the signed one would overflow (a clock from the zero time.Time
	// next to a real one).
	if now < due || uint64(now)-uint64(due) < reclaimLag && t.subscribed() == nil {
		return 0
	}
	return t.expireDue(now)
}

// reclaimLag is how long Reclaim lets due entries wait without a
// subscriber: 2^26 ns, about 67 ms of the caller's clock (a replay
// reclaims a few dozen entries a call at 10^4 closed connections a
// second).
const reclaimLag = 1 << 26

func (t *Table[V]) expireDue(now int64) int {
	w := &t.wheel
	if !w.expiring.TryLock() {
		return 0 // another goroutine is reclaiming what is due
	}
	defer w.expiring.Unlock()
	w.mu.Lock()
	found := t.collect(now, w.found[:0])
	w.mu.Unlock()
	slices.SortFunc(found, dueOrder)
	hashes := t.prefetchReclaims(found, w.hashes[:0])
	n := 0
	for i := range found {
		f := &found[i]
		if t.expire(f, hashes[i], now) {
			n++
			continue
		}
		// Not reclaimed: its lock was held, or it was refreshed or
		// deleted after collect saw it. A live entry is filed again.
		b := t.base(f.idx)
		mw := t.loadMeta(b)
		if metaAlive(mw) && metaGen(mw) == f.gen && t.filedDeadline(f.idx) == f.filed {
			t.file(f.idx, max(t.loadDl(b), f.filed), now)
		}
	}
	w.found, w.hashes = found[:0], hashes[:0]
	if n > 0 {
		t.stat().expired.Add(uint64(n))
	}
	return n
}

// dueOrder is the order in which Expire reclaims: deadline, then
// original tuple.
func dueOrder(a, b dueEntry) int {
	if a.deadline != b.deadline {
		if a.deadline < b.deadline {
			return -1
		}
		return 1
	}
	return a.key.compare(&b.key)
}

// prefetchReclaims appends the tuple hashes of the found entries to
// hashes, which expire uses, and asks for the index buckets and writer
// stripes that reclaiming the entries will unlink and lock, 16 entries
// at a time, so that their misses overlap instead of coming one reclaim
// after the other (each reclaim's locked instructions wait for its
// loads).
func (t *Table[V]) prefetchReclaims(found []dueEntry, hashes [][2]uint64) [][2]uint64 {
	const chunk = 16
	var lines [4 * chunk]unsafe.Pointer
	overlap := len(found) > 1 // a single entry has nothing to overlap with
	for len(found) > 0 {
		part := found[:min(chunk, len(found))]
		n := 0
		for i := range part {
			h, hr := part[i].key.hash(&t.seed), part[i].key.Reverse().hash(&t.seed)
			hashes = append(hashes, [2]uint64{h, hr})
			lines[n], lines[n+1] = t.bucketLine(h), t.bucketLine(hr)
			lines[n+2], lines[n+3] = t.stripeLine(h), t.stripeLine(hr)
			n += 4
		}
		if overlap {
			prefetchLines(&lines[0], n)
		}
		found = found[len(part):]
	}
	return hashes
}

// collect unfiles the entries due at now into found, moves entries whose
// deadline moved later, unlinks freed records, and sets the wheel's due
// bound. w.mu is held.
func (t *Table[V]) collect(now int64, found []dueEntry) []dueEntry {
	w := &t.wheel
	if !w.started {
		return found
	}
	last := now >> slotShift
	if last-w.cur > w.mask {
		// The clock jumped a lap or more: visit every slot once.
		for b := range w.heads {
			found = t.visit(int64(b), last, now, found)
		}
	} else {
		for s := w.cur; s <= last; s++ {
			found = t.visit(s&w.mask, last, now, found)
		}
	}
	w.cur = max(w.cur, last)
	// Everything due by now is out of the wheel: the next deadline due is
	// in the current slot (after now) or in a later one.
	due := (w.cur + 1) << slotShift
	for x := w.heads[w.cur&w.mask]; x != 0; x = w.links[x-1].next {
		due = min(due, t.filedDeadline(x-1))
	}
	w.due.Store(due)
	return found
}

// visit sorts out the list of slot bucket b: entries of slots up to last
// (the current lap) whose deadline is <= now go to found, those refreshed
// to a later deadline move to its slot, freed records are unlinked, and
// entries of a later lap stay.
func (t *Table[V]) visit(b, last, now int64, found []dueEntry) []dueEntry {
	w := &t.wheel
	for x := w.heads[b]; x != 0; {
		idx := x - 1
		x = w.links[idx].next
		filed := t.filedDeadline(idx)
		switch {
		case filed == freeDeadline:
			w.unlink(idx)
			continue
		case filed > now:
			// Not due: the filed deadline is a lower bound of the
			// entry's (a writer that lowers it files it again), so its
			// record need not be looked at before its filed deadline
			// comes. This spares the current slot's entries a visit on
			// every Expire until they are due, and a later lap's
			// entries one a lap.
			continue
		}
		rb := t.base(idx)
		if _, ok := t.tryLock(rb); !ok {
			// Its writer may be moving the deadline: look again at the
			// next Expire, from the current slot (due stays <= now).
			if cb := last & w.mask; cb != b {
				w.unlink(idx)
				w.link(idx, cb)
			}
			continue
		}
		// Under the entry lock the deadline cannot change, and a writer
		// that lowers it compares with the filed one under the same lock.
		mw, dl := t.loadMeta(rb), t.loadDl(rb)
		if dl <= now {
			w.unlink(idx)
			found = append(found, dueEntry{idx, metaGen(mw), filed, dl, t.loadKey(rb)})
		} else {
			// Refreshed since it was filed: file it under its deadline.
			atomic.StoreInt64(&w.links[idx].unfiled, unfiledOf(dl))
			if nb := max(dl>>slotShift, last) & w.mask; nb != b {
				w.unlink(idx)
				w.link(idx, nb)
			}
		}
		t.unlock(rb)
	}
	return found
}

// expire reclaims f's record if it still holds f's generation, is alive
// and its deadline is <= now; hs are the hashes of f.key and its reverse.
// It only try-locks the entry. The generation changes whenever a record
// gets another key (Insert, Replace), so f.key, read with f.gen under
// the lock, is still the record's key.
func (t *Table[V]) expire(f *dueEntry, hs [2]uint64, now int64) bool {
	idx := f.idx
	b := t.base(idx)
	if _, ok := t.tryLock(b); !ok {
		return false
	}
	mw := t.loadMeta(b)
	if !metaAlive(mw) || metaGen(mw) != f.gen || t.loadDl(b) > now {
		t.unlock(b)
		return false
	}
	h, hr := hs[0], hs[1]
	sa, sb := t.lockStripes(h, hr)
	free := t.myFree()
	t.destroyUnderStripes(idx, b, &f.key, h, hr, mw, reasonSwept, now, free)
	t.unlockStripes(sa, sb)
	t.unlock(b)
	t.release(idx, free)
	return true
}
