package table

import (
	"iter"
	"runtime"
	"sync/atomic"
)

// Lookup finds the live entry whose original or reply tuple is k. It takes
// no lock and writes no shared memory except one striped counter. Entries
// whose deadline is <= now are treated as absent (Expire reclaims them, or
// an Insert of the same tuple, or an Insert into a full table).
func (t *Table[V]) Lookup(k Key, now int64) (Ref, Dir, bool) {
	h := k.hash(&t.seed)
	kr := k.Reverse()
	idx, d, m, dl, ok := t.search(&k, &kr, h)
	if !ok || dl <= now {
		return Ref{}, 0, false
	}
	t.stat().found.Add(1)
	return Ref{idx, metaGen(m)}, d, true
}

// Snapshot is a consistent copy of one entry.
type Snapshot[V any] struct {
	Ref  Ref
	Key  Key // original tuple
	Meta Meta
	V    V
	// Counters are the entry's accounting (Config.Acct), read after the
	// record: a packet counted meanwhile may be in them already.
	Counters Counters
}

// loadSnap reads a record with the seqlock. ok is false if the record is
// dead or (when gen != 0) belongs to another incarnation.
func (t *Table[V]) loadSnap(idx uint32, gen uint32, s *Snapshot[V]) bool {
	b := t.base(idx)
	cp := t.ctlp(b)
	for i := 0; ; i++ {
		c1 := atomic.LoadUint64(cp)
		if c1&ctlW == 0 {
			s.Key = t.loadKey(b)
			mw := metaOf(c1, atomic.LoadUint64(&t.arena[b+wTail]))
			dl := t.loadDl(b)
			t.loadV(b, &s.V)
			if (atomic.LoadUint64(cp)^c1)&^ctlL == 0 {
				if !metaAlive(mw) || (gen != 0 && metaGen(mw) != gen) {
					return false
				}
				s.Ref = Ref{idx, metaGen(mw)}
				s.Meta = userMeta(mw, dl)
				s.Counters = t.counters(idx)
				return true
			}
		}
		t.stat().searchRestart.Add(1)
		if i > 16 {
			runtime.Gosched()
		}
	}
}

// Load returns a consistent snapshot of the entry r without locking; ok is
// false if r no longer names a live entry. It does not check the deadline.
func (t *Table[V]) Load(r Ref) (v V, m Meta, ok bool) {
	if r.gen == 0 || r.idx >= t.max {
		return v, m, false
	}
	var s Snapshot[V]
	if !t.loadSnap(r.idx, r.gen, &s) {
		return v, m, false
	}
	return s.V, s.Meta, true
}

// Get is Lookup followed by a snapshot of the entry found.
//
// If the entry found is replaced or deleted before its snapshot is taken,
// Get looks again rather than report a miss: the key may have been present
// all along (Replace), and a miss is only correct if a fresh search agrees.
func (t *Table[V]) Get(k Key, now int64) (s Snapshot[V], d Dir, ok bool) {
	for {
		r, d, ok := t.Lookup(k, now)
		if !ok {
			return Snapshot[V]{}, 0, false
		}
		if t.loadSnap(r.idx, r.gen, &s) {
			if s.Meta.Deadline <= now {
				return Snapshot[V]{}, 0, false
			}
			return s, d, true
		}
	}
}

// Acquire takes the per-entry writer lock of r and returns the entry's
// current state. ok is false (and no lock is held) if r no longer names a
// live entry; look the key up again. Every successful Acquire must be
// followed by exactly one of Commit, Abort, Remove or Replace. Readers
// (Lookup, Load, Range) never wait for this lock.
func (t *Table[V]) Acquire(r Ref) (v V, m Meta, ok bool) {
	if r.gen == 0 || r.idx >= t.max {
		return v, m, false
	}
	b := t.base(r.idx)
	c := t.lock(b)
	mw := metaOf(c, atomic.LoadUint64(&t.arena[b+wTail]))
	if !metaAlive(mw) || metaGen(mw) != r.gen {
		atomic.StoreUint64(t.ctlp(b), c&^ctlL)
		return v, m, false
	}
	t.loadV(b, &v)
	m = userMeta(mw, t.loadDl(b))
	return v, m, true
}

// AcquireKey is Lookup and Acquire in one step, for the caller that will
// update the entry it finds (a tracker handling a packet): it finds the
// live entry whose original or reply tuple is k, takes its writer lock,
// copies its state into *v and returns its Ref, the direction k has in it
// and its Meta. ok false means no live entry (none, or only an expired
// one, which Insert reclaims) and no lock held. As after Acquire, exactly
// one of Commit, Abort, Remove or Replace must follow.
//
// h is k's hash from PrefetchHashes, or 0 to compute it here. Lookup
// reads a found record's key under the seqlock and Acquire then checks
// its generation under the lock; AcquireKey takes the lock at the first
// slot whose tag matches and checks the key under it, so the record is
// read once, with nothing to retry (records are written only by their
// lock holder, allocation included).
func (t *Table[V]) AcquireKey(k *Key, h uint64, now int64, v *V) (r Ref, d Dir, m Meta, ok bool) {
	if r, d, m, ok = t.acquireKey(k, h, now, v); ok {
		t.stat().found.Add(1)
	}
	return r, d, m, ok
}

// AcquireKeyTally is AcquireKey for a caller that tracks packets in
// batches (Tracker.TrackBatch): an entry found is counted in *found
// instead of the table's Found counter, and the caller adds its tally
// with AddFound once per batch. The shared counter is an atomic add, a
// full memory barrier that waits for the stores before it: once per
// packet, a tenth of a cached update's cost.
func (t *Table[V]) AcquireKeyTally(k *Key, h uint64, now int64, v *V, found *uint64) (r Ref, d Dir, m Meta, ok bool) {
	if r, d, m, ok = t.acquireKey(k, h, now, v); ok {
		*found++
	}
	return r, d, m, ok
}

// AddFound adds n lookups that found an entry to the Found counter (see
// AcquireKeyTally).
func (t *Table[V]) AddFound(n uint64) {
	if n != 0 {
		t.stat().found.Add(n)
	}
}

func (t *Table[V]) acquireKey(k *Key, h uint64, now int64, v *V) (r Ref, d Dir, m Meta, ok bool) {
	if h == 0 {
		h = k.hash(&t.seed)
	}
	tag := uint32(h)
	bk := t.home(h)
	for p := 0; p < t.probes; p++ {
		bw := t.buckets[bk*8 : bk*8+8 : bk*8+8]
		for i := 1; i < 8; i++ {
			s := atomic.LoadUint64(&bw[i])
			if s == 0 || uint32(s>>32) != tag {
				continue
			}
			x := uint32(s) - 1
			idx, sd := x>>1, Dir(x&1)
			b := t.base(idx)
			c := t.lock(b)
			tail := atomic.LoadUint64(&t.arena[b+wTail])
			mw := metaOf(c, tail)
			if !metaAlive(mw) || !t.holdsKey(b, tail, k, sd) {
				// A tag collision, or a record freed (and perhaps
				// reused) since the slot was read: keep looking.
				atomic.StoreUint64(t.ctlp(b), c&^ctlL)
				continue
			}
			dl := t.loadDl(b)
			if dl <= now {
				atomic.StoreUint64(t.ctlp(b), c&^ctlL)
				return Ref{}, 0, Meta{}, false
			}
			t.loadV(b, v)
			return Ref{idx, metaGen(mw)}, sd, userMeta(mw, dl), true
		}
		if atomic.LoadUint64(&bw[0]) == 0 {
			break
		}
		if bk++; bk == t.nb {
			bk = 0
		}
	}
	return Ref{}, 0, Meta{}, false
}

// holdsKey reports whether the record at b, whose lock the caller holds
// and whose tail word (key word 4, state, flags) the caller has read, has
// k as its tuple in direction d, comparing word by word in place.
func (t *Table[V]) holdsKey(b int, tail uint64, k *Key, d Dir) bool {
	r := t.arena[b : b+hdrWords : b+hdrWords]
	w := k.w
	if d == Reply {
		w = k.Reverse().w
	}
	return atomic.LoadUint64(&r[wKey]) == w[0] && atomic.LoadUint64(&r[wKey+1]) == w[1] &&
		atomic.LoadUint64(&r[wKey+2]) == w[2] && atomic.LoadUint64(&r[wKey+3]) == w[3] &&
		tail&tailMask == w[4]
}

func (t *Table[V]) held(r Ref) (b int, mw uint64) {
	b = t.base(r.idx)
	mw = t.loadMeta(b)
	if !t.locked(b) || metaGen(mw) != r.gen || !metaAlive(mw) {
		panic("table: entry not held by Acquire")
	}
	return b, mw
}

// Commit writes *v and *m back to the entry held by Acquire and releases
// the lock. The write is one seqlock window of atomic word stores, so
// concurrent readers see either the old or the new state, never a mix. An
// UPDATE event is emitted when the state or the flags changed (the
// kernel's IPCT_PROTOINFO, IPCT_REPLY, IPCT_ASSURED), not for deadline
// refreshes. v and m are pointers because a caller has just written them
// field by field (a step of the fsm): copying them into arguments would
// read them back before the CPU can forward the pending stores.
func (t *Table[V]) Commit(r Ref, v *V, m *Meta, now int64) {
	b, old := t.held(r)
	tail := atomic.LoadUint64(&t.arena[b+wTail])
	oldDl := t.loadDl(b)
	c := t.beginWrite(b)
	t.storeV(b, v)
	storeW(&t.arena[b+wTail], tailWord(tail, m.State, m.Flags&userFlags|flagAlive))
	storeW(&t.arena[b+wDl], uint64(m.Deadline))
	t.account(r.idx, m, false)
	sub := t.subscribed()
	sameState := metaState(old) == m.State && m.Flags&StateChange == 0
	if sub == nil || (sameState && metaFlags(old)&userFlags == m.Flags&userFlags) {
		t.endCommit(r, b, c, m.Deadline, oldDl, now)
		return
	}
	// The key must be read while the entry is still held: once unlocked
	// the record may be deleted and reused (or carry a free-list link).
	// The event is built only when announced: most commits are refreshes,
	// which announce nothing, and an Event is some 200 bytes to zero.
	ev := Event[V]{Type: EventUpdate, Time: now, Ref: r, Key: t.loadKey(b), Meta: *m, V: *v, SameState: sameState}
	ev.Meta.Flags &= userFlags
	t.endCommit(r, b, c, m.Deadline, oldDl, now)
	t.deliver(sub, &ev)
}

// endCommit ends Commit's write window on record b (control word c from
// beginWrite) and releases the entry. An earlier deadline than the one the
// entry is filed under (a closing state) files it again, outside the write
// window and before the lock is released; a later one costs nothing here
// (see wheel).
//
// A live entry is never filed later than its deadline (Insert and Replace
// file it under it, visits and Expire refile it at or below it, and a
// Commit that lowers it refiles it here), so a deadline no earlier than
// the entry's last one, oldDl, cannot be earlier than the filed one: only
// a lowered deadline reads the filed one, whose wheel link is a cache
// line of its own, a miss on most refreshes (a third of the time of the
// table's W1 benchmark at 1e5 entries when every Commit read it).
func (t *Table[V]) endCommit(r Ref, b int, c uint64, dl, oldDl, now int64) {
	if dl < oldDl && dl < t.filedDeadline(r.idx) {
		t.endWrite(b, c, r.gen, false)
		t.file(r.idx, dl, now)
		t.unlock(b)
		return
	}
	t.endWrite(b, c, r.gen, true)
}

// Abort releases the lock taken by Acquire without writing.
func (t *Table[V]) Abort(r Ref) {
	b, _ := t.held(r)
	t.unlock(b)
}

// Remove deletes the entry held by Acquire and releases it; a DESTROY event
// carries reason.
func (t *Table[V]) Remove(r Ref, reason Reason, now int64) {
	b, mw := t.held(r)
	k := t.loadKey(b)
	h, hr := k.hash(&t.seed), k.Reverse().hash(&t.seed)
	sa, sb := t.lockStripes(h, hr)
	f := t.myFree()
	t.destroyUnderStripes(r.idx, b, &k, h, hr, mw, reason, now, f)
	t.unlockStripes(sa, sb)
	t.unlock(b)
	t.release(r.idx, f)
}

// Held returns the value and metadata of the entry r, which the caller
// holds (Acquire, AcquireKey).
func (t *Table[V]) Held(r Ref) (v V, m Meta) {
	b, mw := t.held(r)
	t.loadV(b, &v)
	return v, userMeta(mw, t.loadDl(b))
}

// RemoveAs is Remove for an entry that its last packet changed before
// deleting it: v and m are written first, so the DESTROY event carries
// them. The kernel does this when an RST answers a SYN: it writes CLOSE
// into the entry, then kills it, and conntrack -E shows the DESTROY in
// CLOSE, not SYN_SENT (checked against Linux 6.18).
func (t *Table[V]) RemoveAs(r Ref, v V, m Meta, reason Reason, now int64) {
	b, _ := t.held(r)
	k := t.loadKey(b)
	t.write(b, r.gen, &k, &v, &m, true)
	t.account(r.idx, &m, false) // nf_ct_kill_acct: counted, then killed
	t.Remove(r, reason, now)
}

// Delete acquires r and removes it. It returns false if r was already gone.
func (t *Table[V]) Delete(r Ref, reason Reason, now int64) bool {
	if _, _, ok := t.Acquire(r); !ok {
		return false
	}
	t.Remove(r, reason, now)
	return true
}

// destroyUnderStripes unlinks both tuples and marks the record dead (new
// generation). The caller holds the entry lock and both stripe locks, and
// either frees the record afterwards with release (free: its reservation is
// returned here, to that shard) or reuses it (evict, Replace: the
// reservation moves to the new occupant).
//
// The reservation is returned before the unlink: a create that claims it
// can only get a record once this one is pushed, i.e. after the unlink, so
// at most Max entries are ever visible, while a create that finds the table
// full can always be ordered before this delete (the delete is in progress
// until its unlink). Returning it after the unlink would let a create see a
// full table although a delete had already made room.
//
// free is the shard that gets the token, and then the record (release),
// or nil when the caller keeps the record for a new occupant.
func (t *Table[V]) destroyUnderStripes(idx uint32, b int, k *Key, h, hr uint64, mw uint64, reason Reason, now int64, free *freeShard) {
	if free != nil {
		free.tokens.Add(1)
	}
	var ev Event[V]
	sub := t.subscribed()
	if sub != nil {
		evReason := reason
		if reason == reasonSwept {
			evReason = ReasonExpired
		}
		ev = Event[V]{Type: EventDestroy, Reason: evReason, Time: now, Ref: Ref{idx, metaGen(mw)}, Key: *k,
			Meta: userMeta(mw, t.loadDl(b)), Counters: t.counters(idx)}
		t.loadV(b, &ev.V)
	}
	// Kill first, unlink after: the record's alive bit is the single point
	// at which the connection disappears for both directions at once.
	// Unlinking first would let a lookup of one tuple miss while the other
	// tuple still found the entry.
	t.kill(idx, b, mw)
	t.unlink(h, slotVal(uint32(h), idx, Original))
	t.unlink(hr, slotVal(uint32(hr), idx, Reply))
	st := t.stat()
	switch reason {
	case ReasonExpired:
		st.expired.Add(1)
	case reasonSwept: // counted by Expire, once per call
	case ReasonEvicted:
		st.earlyDrop.Add(1)
	default:
		st.killed.Add(1)
	}
	if sub != nil {
		t.deliver(sub, &ev)
	}
}

// reasonSwept is ReasonExpired for a reclaim by Expire, which counts its
// reclaims itself, once per call.
const reasonSwept Reason = 0xff

func nextGen(g uint32) uint32 {
	if g++; g == 0 {
		g = 1
	}
	return g
}

// kill marks a record dead inside a seqlock window (the entry lock stays
// held); lock-free readers that still hold its index see the generation
// change.
func (t *Table[V]) kill(idx uint32, b int, mw uint64) {
	tail := atomic.LoadUint64(&t.arena[b+wTail])
	c := t.beginWrite(b)
	storeW(&t.arena[b+wTail], tailWord(tail, 0, 0))
	storeW(&t.arena[b+wDl], uint64(freeDeadline))
	t.unfile(idx) // its filings are stale now
	t.endWrite(b, c, nextGen(metaGen(mw)), false)
}

// Insert creates the entry for a new connection whose original tuple is k,
// unless one exists (create-if-absent). Both tuples are indexed, so later
// packets of either direction find it with one Lookup.
//
//   - Inserted: r is the new entry (unlocked; Dir is Original).
//   - Existing: another live entry holds k or its reverse (a racing goroutine
//     won); r and d are the winner's and nothing was written. Expired
//     entries holding the tuple are reclaimed first and do not count.
//   - Dropped: the table is full and early drop found no victim among the
//     entries of the 8 index buckets from k's home bucket (the kernel's
//     NF_CT_EVICTION_RANGE): bounded work, never a scan.
//   - Failed: the index probe limit was reached.
//   - Full: a table made with Config.Grow is full; nothing was written.
//
// Entries whose deadline is <= now count as absent for every decision:
// the clash check, the limit and early drop. When the table is full,
// Insert first reclaims every entry expired at now (Expire) and only then
// decides that it is full, so whether a create succeeds never depends on
// how recently anyone called Expire.
func (t *Table[V]) Insert(k Key, v V, m Meta, now int64) (r Ref, d Dir, st Status) {
	return t.insert(k, v, m, now, true)
}

func (t *Table[V]) insert(k Key, v V, m Meta, now int64, reclaim bool) (r Ref, d Dir, st Status) {
	h := k.hash(&t.seed)
	kr := k.Reverse()
	hr := kr.hash(&t.seed)
	// The existence check comes before allocation and eviction, under the
	// stripes of both tuples: a create that loses a race must neither evict
	// an innocent entry nor hold a record another create needs.
	sa, sb := t.lockStripes(h, hr)
	for {
		eidx, ed, em, edl, found := t.search(&k, &kr, h)
		if !found {
			break
		}
		if edl > now {
			t.unlockStripes(sa, sb)
			t.stat().clash.Add(1)
			return Ref{eidx, metaGen(em)}, ed, Existing
		}
		// An expired entry still holds the tuple: reclaim it. Under the
		// stripe locks we may only try-lock entries (lock order is entry
		// before stripe), so back off if its owner is busy with it.
		eb := t.base(eidx)
		if _, ok := t.tryLock(eb); ok {
			mw := t.loadMeta(eb)
			if metaAlive(mw) && metaGen(mw) == metaGen(em) && t.loadDl(eb) <= now {
				ek := t.loadKey(eb)
				eh, ehr := h, hr
				if ek != k {
					eh, ehr = hr, h
				}
				f := t.myFree()
				t.destroyUnderStripes(eidx, eb, &ek, eh, ehr, mw, ReasonExpired, now, f)
				t.unlock(eb)
				t.release(eidx, f)
			} else {
				t.unlock(eb)
			}
			continue
		}
		t.unlockStripes(sa, sb)
		t.stat().searchRestart.Add(1)
		runtime.Gosched()
		sa, sb = t.lockStripes(h, hr)
	}

	idx, ok := t.alloc()
	if !ok && reclaim && now >= t.wheel.due.Load() {
		// Full, but some entries may have expired: reclaim them (Expire
		// takes stripes, so ours are released first) and start again.
		t.unlockStripes(sa, sb)
		t.expireDue(now)
		return t.insert(k, v, m, now, false)
	}
	if !ok && t.grow {
		t.unlockStripes(sa, sb)
		return Ref{}, 0, Full
	}
	if ok {
		// A free record's lock is only ever held briefly by code that waits
		// for nothing (stale Acquire, Expire, evict re-checks), so waiting
		// for it under the stripes cannot deadlock.
		t.lock(t.base(idx))
	} else if idx, ok = t.evict(h, sa, sb, now); !ok { // returns idx locked
		t.unlockStripes(sa, sb)
		t.stat().drop.Add(1)
		return Ref{}, 0, Dropped
	}
	b := t.base(idx)
	gen := nextGen(metaGen(t.loadMeta(b)) - 1) // 0 (fresh) -> 1
	t.write(b, gen, &k, &v, &m, false)
	t.file(idx, m.Deadline, now)
	t.account(idx, &m, true)
	if !t.link(h, slotVal(uint32(h), idx, Original)) {
		t.failInsert(idx, b, gen, h, sa, sb)
		return Ref{}, 0, Failed
	}
	if !t.link(hr, slotVal(uint32(hr), idx, Reply)) {
		t.unlink(h, slotVal(uint32(h), idx, Original))
		t.failInsert(idx, b, gen, h, sa, sb)
		return Ref{}, 0, Failed
	}
	t.publish(b, gen, &m) // before the stripes: a racing create must see it
	t.unlockStripes(sa, sb)
	t.stat().insert.Add(1)
	r = Ref{idx, gen}
	if sub := t.subscribed(); sub != nil {
		ev := Event[V]{Type: EventNew, Time: now, Ref: r, Key: k, Meta: m, V: v}
		ev.Meta.Flags &= userFlags
		t.deliver(sub, &ev)
	}
	return r, Original, Inserted
}

// write fills a record in one seqlock window, which also sets its
// generation; the entry lock stays held. A new connection is
// written with alive clear, linked under both tuples, then published: the
// alive bit is the single point at which it appears for both directions at
// once.
//
// A record written with alive clear was dead before (free, or killed by
// the caller), so it needs no window: every reader that meets it, through
// a slot read before its last occupant was unlinked or by walking the
// records (Range), reads alive clear in the tail word whatever else it
// reads, and passes it over; lock holders are excluded by the entry lock.
// publish then opens the one window that makes it live and sets its
// generation. That spares a create two atomic read-modify-writes (full
// barriers that wait for the stores before them) of its five.
func (t *Table[V]) write(b int, gen uint32, k *Key, v *V, m *Meta, alive bool) {
	f := m.Flags & userFlags
	if !alive {
		t.storeHead(b, k, m.State, f, m.Deadline)
		t.storeV(b, v)
		return
	}
	c := t.beginWrite(b)
	t.storeHead(b, k, m.State, f|flagAlive, m.Deadline)
	t.storeV(b, v)
	t.endWrite(b, c, gen, false)
}

// publish sets the alive bit of a record written by write(..., false)
// and releases its entry lock.
func (t *Table[V]) publish(b int, gen uint32, m *Meta) {
	tail := atomic.LoadUint64(&t.arena[b+wTail])
	c := t.beginWrite(b)
	storeW(&t.arena[b+wTail], tailWord(tail, m.State, m.Flags&userFlags|flagAlive))
	t.endWrite(b, c, gen, true)
}

func (t *Table[V]) failInsert(idx uint32, b int, gen uint32, h uint64, sa, sb uint64) {
	t.kill(idx, b, uint64(gen))
	t.unlockStripes(sa, sb)
	t.unlock(b)
	f := t.myFree()
	f.tokens.Add(1)
	t.release(idx, f)
	t.stat().insertFailed.Add(1)
}

// evictBuckets is how many index buckets early drop inspects, from the new
// key's home bucket on (NF_CT_EVICTION_RANGE in nf_conntrack_core.c is 8).
const evictBuckets = 8

// evict frees one entry near h's home bucket that is expired, not ASSURED,
// or in a closing state, and returns its record index with the entry lock
// held, for the caller to reuse. The caller holds stripes sa and sb (of the
// new connection); everything evict locks on top of them is try-locked, so
// it never waits while holding them and the work is bounded by
// evictBuckets*7 candidates.
func (t *Table[V]) evict(h uint64, sa, sb uint64, now int64) (uint32, bool) {
	bk := t.home(h)
	for p := 0; p < evictBuckets; p++ {
		bw := t.buckets[bk*8 : bk*8+8 : bk*8+8]
		for i := 1; i < 8; i++ {
			s := atomic.LoadUint64(&bw[i])
			if s == 0 {
				continue
			}
			idx := (uint32(s) - 1) >> 1
			_, mw, dl := t.readHead(idx)
			if !evictable(mw, dl, now) {
				continue
			}
			b := t.base(idx)
			if _, ok := t.tryLock(b); !ok {
				continue
			}
			mw = t.loadMeta(b)
			dl = t.loadDl(b)
			if !evictable(mw, dl, now) {
				t.unlock(b)
				continue
			}
			k := t.loadKey(b)
			eh, ehr := k.hash(&t.seed), k.Reverse().hash(&t.seed)
			va, vb := t.stripeOf(eh), t.stripeOf(ehr)
			gotA, gotB := t.tryStripe(va, sa, sb), false
			if gotA {
				gotB = vb == va || t.tryStripe(vb, sa, sb)
			}
			if !gotA || !gotB {
				if gotA {
					t.untryStripe(va, sa, sb)
				}
				t.unlock(b)
				continue
			}
			reason := ReasonEvicted
			if dl <= now {
				reason = ReasonExpired
			}
			t.destroyUnderStripes(idx, b, &k, eh, ehr, mw, reason, now, nil)
			if vb != va {
				t.untryStripe(vb, sa, sb)
			}
			t.untryStripe(va, sa, sb)
			return idx, true
		}
		if bk++; bk == t.nb {
			bk = 0
		}
	}
	return 0, false
}

// tryStripe try-locks stripe s unless the caller already holds it as sa or sb.
func (t *Table[V]) tryStripe(s, sa, sb uint64) bool {
	return s == sa || s == sb || t.stripes[s].mu.TryLock()
}

func (t *Table[V]) untryStripe(s, sa, sb uint64) {
	if s != sa && s != sb {
		t.stripes[s].mu.Unlock()
	}
}

func evictable(mw uint64, dl, now int64) bool {
	if !metaAlive(mw) {
		return false
	}
	f := metaFlags(mw)
	return dl <= now || f&Assured == 0 || f&Closing != 0
}

// Replace kills the entry held by Acquire and creates a new one in its place
// (the kernel's reopen of a TIME_WAIT connection by a new SYN), reusing the
// record. k must be the old entry's original tuple or its reverse (the new
// connection may start from either side). The returned Ref names the new
// incarnation; the old Ref is dead. The lock is released. It emits DESTROY
// (killed) and NEW.
//
// When k is the old original tuple (the usual reopen), the index is not
// touched and the switch is one seqlock window: every reader sees either
// the old or the new incarnation, never neither. When k is the reverse, both
// index slots change direction and a concurrent Lookup may briefly miss the
// connection, exactly as if it had been deleted and re-created.
func (t *Table[V]) Replace(r Ref, k Key, v V, m Meta, now int64) (Ref, Status) {
	b, mw := t.held(r)
	ok := t.loadKey(b)
	okr := ok.Reverse()
	if k != ok && k != okr {
		panic("table: Replace with a different connection's tuple")
	}
	if k == ok {
		return t.replaceInPlace(r, b, mw, &k, &v, &m, now)
	}
	h, hr := ok.hash(&t.seed), okr.hash(&t.seed)
	sa, sb := t.lockStripes(h, hr)
	t.destroyUnderStripes(r.idx, b, &ok, h, hr, mw, ReasonKilled, now, nil)
	if k != ok {
		h, hr = hr, h
	}
	gen := nextGen(metaGen(mw))
	t.write(b, gen, &k, &v, &m, false)
	t.file(r.idx, m.Deadline, now)
	t.account(r.idx, &m, true)
	// The two slots just freed are on the same probe paths, so these links
	// cannot hit the probe limit; check anyway.
	if !t.link(h, slotVal(uint32(h), r.idx, Original)) {
		t.failInsert(r.idx, b, gen, h, sa, sb)
		return Ref{}, Failed
	}
	if !t.link(hr, slotVal(uint32(hr), r.idx, Reply)) {
		t.unlink(h, slotVal(uint32(h), r.idx, Original))
		t.failInsert(r.idx, b, gen, h, sa, sb)
		return Ref{}, Failed
	}
	t.publish(b, gen, &m) // before the stripes: a racing create must see it
	t.unlockStripes(sa, sb)
	t.stat().insert.Add(1)
	nr := Ref{r.idx, gen}
	if sub := t.subscribed(); sub != nil {
		ev := Event[V]{Type: EventNew, Time: now, Ref: nr, Key: k, Meta: m, V: v}
		ev.Meta.Flags &= userFlags
		t.deliver(sub, &ev)
	}
	return nr, Inserted
}

// replaceInPlace is Replace for an unchanged original tuple: the slots
// (tag, index, direction) stay valid, only the record changes.
func (t *Table[V]) replaceInPlace(r Ref, b int, mw uint64, k *Key, v *V, m *Meta, now int64) (Ref, Status) {
	sub := t.subscribed()
	var old Event[V]
	if sub != nil {
		old = Event[V]{Type: EventDestroy, Reason: ReasonKilled, Time: now, Ref: r, Key: *k,
			Meta: userMeta(mw, t.loadDl(b)), Counters: t.counters(r.idx)}
		t.loadV(b, &old.V)
	}
	gen := nextGen(metaGen(mw))
	t.account(r.idx, m, true) // under the entry lock
	t.write(b, gen, k, v, m, true)
	t.file(r.idx, m.Deadline, now)
	t.unlock(b)
	st := t.stat()
	st.killed.Add(1)
	st.insert.Add(1)
	nr := Ref{r.idx, gen}
	if sub != nil {
		t.deliver(sub, &old)
		ev := Event[V]{Type: EventNew, Time: now, Ref: nr, Key: *k, Meta: *m, V: *v}
		ev.Meta.Flags &= userFlags
		t.deliver(sub, &ev)
	}
	return nr, Inserted
}

// Range calls fn for every live, unexpired entry, in record order,
// concurrently with updates: each entry present for the whole iteration is
// seen exactly once, with a consistent snapshot; entries created or deleted
// meanwhile may or may not be seen; none is seen twice (records never move).
// fn must not call Acquire on the table while holding the snapshot in a way
// that waits for Range; Range holds no locks.
func (t *Table[V]) Range(now int64, fn func(*Snapshot[V]) bool) {
	lim := t.hwm.Load()
	if lim > uint64(t.max) {
		lim = uint64(t.max)
	}
	var s Snapshot[V]
	for ix := uint64(0); ix < lim; ix++ {
		// The filed deadline is a lower bound of the deadline: one > now
		// does not prove the record alive, one <= now does not prove it
		// expired, so every record is read.
		if t.loadSnap(uint32(ix), 0, &s) && s.Meta.Deadline > now {
			if !fn(&s) {
				return
			}
		}
	}
}

// All is Range as an iterator.
func (t *Table[V]) All(now int64) iter.Seq[Snapshot[V]] {
	return func(yield func(Snapshot[V]) bool) {
		t.Range(now, func(s *Snapshot[V]) bool { return yield(*s) })
	}
}
