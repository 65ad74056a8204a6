package table

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func TestExpiryInvisibleImmediately(t *testing.T) {
	tb := newTable(t, 8)
	k := key4(1)
	r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 100, State: stSynSent}, 0)
	if _, _, ok := tb.Lookup(k.Reverse(), 99); !ok {
		t.Fatal("entry invisible before its deadline")
	}
	for _, now := range []int64{100, 101, 1 << 40} {
		if _, _, ok := tb.Lookup(k, now); ok {
			t.Fatalf("Lookup at %d found an entry with deadline 100", now)
		}
		if _, _, ok := tb.Lookup(k.Reverse(), now); ok {
			t.Fatalf("reverse Lookup at %d found an expired entry", now)
		}
		if _, _, ok := tb.Get(k, now); ok {
			t.Fatalf("Get at %d found an expired entry", now)
		}
		if n := len(liveKeys(tb, now)); n != 0 {
			t.Fatalf("Range at %d shows %d expired entries", now, n)
		}
	}
	// Not reclaimed yet: the kernel's count also includes expired entries.
	if tb.Len() != 1 {
		t.Fatalf("Len = %d", tb.Len())
	}
	// A commit that refreshes the deadline revives it (the packet path
	// refreshing an entry it holds).
	v, m, ok := tb.Acquire(r)
	if !ok {
		t.Fatal("Acquire of an expired, unreclaimed entry failed")
	}
	m.Deadline = 300
	tb.Commit(r, &v, &m, 150)
	if _, _, ok := tb.Lookup(k, 200); !ok {
		t.Fatal("refreshed entry not found")
	}
	// An insert of the same tuple after expiry reclaims the old entry.
	sub := tb.Subscribe(8)
	r2, d, st := tb.Insert(k.Reverse(), mkval(2), Meta{Deadline: 1000}, 300)
	if st != Inserted || d != Original || r2 == r {
		t.Fatalf("Insert over expired = %v %v %v", r2, d, st)
	}
	evs := drain(sub)
	if len(evs) != 2 || evs[0].Type != EventDestroy || evs[0].Reason != ReasonExpired || evs[0].Ref != r || evs[1].Type != EventNew {
		t.Fatalf("events %+v", evs)
	}
	if s, d, ok := tb.Get(k, 300); !ok || d != Reply || s.V != mkval(2) {
		t.Fatalf("Get after reinsert: %v %v", d, ok)
	}
	if st := tb.Stats(); st.Expired != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Expiring concurrently with lookups and refreshes never reclaims an entry
// whose deadline is in the future.
func TestExpireConcurrent(t *testing.T) {
	const n = 512
	tb := newTable(t, n)
	keys := make([]Key, n)
	refs := make([]Ref, n)
	for i := range keys {
		keys[i] = key4(uint32(i))
		refs[i] = mustInsert(t, tb, keys[i], mkval(uint64(i)), Meta{Deadline: int64(10 + i%2*1000)}, 0)
	}
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				tb.Expire(100)
			}
		}()
	}
	var bad atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20000; i++ {
			j := i % n
			if j%2 == 1 {
				if _, _, ok := tb.Lookup(keys[j], 100); !ok {
					bad.Add(1)
				}
			}
		}
	}()
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d unexpired entries missing", bad.Load())
	}
	tb.Expire(100)
	if tb.Len() != n/2 {
		t.Fatalf("Len = %d, want %d", tb.Len(), n/2)
	}
}

func TestLimitEarlyDrop(t *testing.T) {
	const n = 64
	tb := newTable(t, n)
	sub := tb.Subscribe(4 * n)
	// Full of assured, established entries: nothing can be dropped.
	for i := 0; i < n; i++ {
		mustInsert(t, tb, key4(uint32(i)), mkval(uint64(i)), Meta{Deadline: 1000, State: stEstablished, Flags: Assured | SeenReply}, 0)
	}
	for i := 0; i < 10; i++ {
		r, _, st := tb.Insert(key4(uint32(1000+i)), mkval(0), Meta{Deadline: 1000, State: stSynSent}, 0)
		if st != Dropped || !r.IsZero() {
			t.Fatalf("insert into a full assured table: %v", st)
		}
	}
	if st := tb.Stats(); st.Drop != 10 || st.EarlyDrop != 0 || tb.Len() != n {
		t.Fatalf("stats %+v Len %d", st, tb.Len())
	}
	// An existing connection is still reported as such in a full table.
	if _, d, st := tb.Insert(key4(3).Reverse(), mkval(0), Meta{Deadline: 1000}, 0); st != Existing || d != Reply {
		t.Fatalf("existing in a full table: %v", st)
	}
	drain(sub)

	// Make every entry evictable in turn (unassured, or closing though
	// assured, or expired) and check each insert evicts exactly one.
	for kind := 0; kind < 3; kind++ {
		tb2 := newTable(t, n)
		sub2 := tb2.Subscribe(4 * n)
		orig := map[Key]bool{}
		for i := 0; i < n; i++ {
			m := Meta{Deadline: 1000, State: stEstablished, Flags: Assured | SeenReply}
			switch kind {
			case 0:
				m = Meta{Deadline: 1000, State: stSynSent}
			case 1:
				m.State, m.Flags = stTimeWait, Assured|SeenReply|Closing
			case 2:
				m.Deadline = 50
			}
			mustInsert(t, tb2, key4(uint32(i)), mkval(uint64(i)), m, 0)
			orig[key4(uint32(i))] = true
		}
		drain(sub2)
		inserted := 0
		for i := 0; i < 3*n; i++ {
			_, _, st := tb2.Insert(key4(uint32(10000+i)), mkval(0), Meta{Deadline: 1000, State: stEstablished, Flags: Assured | SeenReply}, 100)
			if tb2.Len() > n {
				t.Fatalf("kind %d: Len %d > Max %d", kind, tb2.Len(), n)
			}
			if st == Inserted {
				inserted++
			} else if st != Dropped {
				t.Fatalf("kind %d: status %v", kind, st)
			}
		}
		// Victims are searched only near the new key's home bucket, so some
		// inserts may fail even though evictable entries remain elsewhere,
		// but most must succeed and the evicted and inserted counts match.
		st := tb2.Stats()
		if inserted < n/2 || tb2.Len() != n || st.Drop != uint64(3*n-inserted) {
			t.Fatalf("kind %d: inserted %d Len %d stats %+v", kind, inserted, tb2.Len(), st)
		}
		wantReason := ReasonEvicted
		if kind == 2 {
			wantReason = ReasonExpired
			if st.Expired != uint64(inserted) || st.EarlyDrop != 0 {
				t.Fatalf("expired victims counted as %+v", st)
			}
		} else if st.EarlyDrop != uint64(inserted) {
			t.Fatalf("kind %d: EarlyDrop %d, inserted %d", kind, st.EarlyDrop, inserted)
		}
		destroyed := 0
		for _, e := range drain(sub2) {
			if e.Type == EventDestroy {
				destroyed++
				if e.Reason != wantReason || !orig[e.Key] {
					t.Fatalf("kind %d: destroy event %+v", kind, e)
				}
			}
		}
		if destroyed != inserted {
			t.Fatalf("kind %d: %d destroy events for %d inserts", kind, destroyed, inserted)
		}
	}
}

// Early drop inspects only evictBuckets buckets from the new key's home:
// an evictable entry outside that window is not found (bounded work).
func TestEarlyDropIsBounded(t *testing.T) {
	const n = 2000
	tb := newTable(t, n)
	var victim Key
	for i := 0; i < n; i++ {
		k := key4(uint32(i))
		f := Assured | SeenReply
		if i == n/2 {
			victim, f = k, SeenReply
		}
		mustInsert(t, tb, k, mkval(0), Meta{Deadline: 1000, Flags: f}, 0)
	}
	vh, vhr := victim.hash(&tb.seed), victim.Reverse().hash(&tb.seed)
	near := func(h, b uint64) bool { return (b-t_home(tb, h)+tb.nb)%tb.nb < evictBuckets+2 }
	var far, close Key
	for i := 0; far.IsZero() || close.IsZero(); i++ {
		k := key4(uint32(100000 + i))
		h := k.hash(&tb.seed)
		if !near(h, t_home(tb, vh)) && !near(h, t_home(tb, vhr)) && far.IsZero() {
			far = k
		}
		// Home equal to the victim's home bucket: the victim's slot is in
		// the first buckets of the window (it may have overflowed a few).
		if t_home(tb, h) == t_home(tb, vh) && close.IsZero() {
			close = k
		}
	}
	if _, _, st := tb.Insert(far, mkval(1), Meta{Deadline: 1000}, 0); st != Dropped {
		t.Fatalf("insert far from the only evictable entry: %v, want dropped", st)
	}
	if _, _, st := tb.Insert(close, mkval(1), Meta{Deadline: 1000}, 0); st != Inserted {
		t.Fatalf("insert next to the evictable entry: %v, want inserted", st)
	}
	if _, _, ok := tb.Lookup(victim, 0); ok {
		t.Fatal("victim still present")
	}
	if st := tb.Stats(); st.Drop != 1 || st.EarlyDrop != 1 || tb.Len() != n {
		t.Fatalf("stats %+v", st)
	}
}

func t_home(tb *Table[val], h uint64) uint64 { return tb.home(h) }

// Many goroutines creating, evicting and deleting at the limit never push
// the table above Max, and the index stays consistent with the records.
func TestLimitConcurrent(t *testing.T) {
	const n = 256
	ops := 4000
	if long() {
		ops = 100000
	}
	tb := newTable(t, n)
	var wg sync.WaitGroup
	var over atomic.Int64
	var next atomic.Uint32
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var mine []Ref
			for i := 0; i < ops; i++ {
				switch x := rng.IntN(10); {
				case x < 6:
					f := Flags(0)
					if rng.IntN(2) == 0 {
						f = Assured
					}
					r, _, st := tb.Insert(key4(next.Add(1)), mkval(uint64(i)), Meta{Deadline: int64(50 + rng.IntN(100)), Flags: f}, int64(i/40))
					if st == Inserted {
						mine = append(mine, r)
					}
				case x < 8 && len(mine) > 0:
					j := rng.IntN(len(mine))
					tb.Delete(mine[j], ReasonKilled, int64(i/40))
					mine[j] = mine[len(mine)-1]
					mine = mine[:len(mine)-1]
				default:
					tb.Expire(int64(i / 40))
				}
				if tb.Len() > n {
					over.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Fatalf("Len exceeded Max %d times", over.Load())
	}
	checkConsistent(t, tb, 0)
}

// checkConsistent verifies, on a quiescent table, that Len equals the
// number of alive records and every alive record is found from both
// directions (at a time before every deadline).
func checkConsistent(t *testing.T, tb *Table[val], now int64) {
	t.Helper()
	alive := 0
	for idx := uint32(0); idx < tb.max && uint64(idx) < tb.hwm.Load(); idx++ {
		k, m, _ := tb.readHead(idx)
		if !metaAlive(m) {
			continue
		}
		alive++
		for _, c := range []struct {
			k Key
			d Dir
		}{{k, Original}, {k.Reverse(), Reply}} {
			r, d, ok := tb.Lookup(c.k, now)
			if !ok || r.idx != idx || d != c.d {
				t.Fatalf("record %d (%v) not indexed from %v: %v %v %v", idx, k, c.d, r, d, ok)
			}
		}
	}
	if alive != tb.Len() {
		t.Fatalf("%d alive records, Len %d", alive, tb.Len())
	}
	slots := 0
	for b := uint64(0); b < tb.nb; b++ {
		for i := 1; i < 8; i++ {
			if tb.buckets[b*8+uint64(i)] != 0 {
				slots++
			}
		}
	}
	if slots != 2*alive {
		t.Fatalf("%d index slots for %d entries", slots, alive)
	}
}

// Reclaim without a subscriber leaves due entries until the earliest is
// reclaimLag overdue, then reclaims every entry due at now, as Expire
// would; meanwhile they are absent for lookups and for the limit. With a
// subscriber it is Expire: each DESTROY comes at the first call at or
// after its deadline.
func TestReclaim(t *testing.T) {
	const t0 = int64(1_700_000_000) * sec
	tb := newTable(t, 4)
	for i := range 4 {
		mustInsert(t, tb, key4(uint32(i)), mkval(uint64(i)), Meta{Deadline: t0 + int64(i)*1e6, State: stSynSent}, t0-sec)
	}
	// Entries 0 and 1 are due at t0+1ms, entry 2 at t0+2ms.
	for _, now := range []int64{t0 - 1, t0, t0 + 1e6, t0 + reclaimLag - 1} {
		if n := tb.Reclaim(now); n != 0 || tb.Len() != 4 {
			t.Fatalf("Reclaim(t0%+d) reclaimed %d, Len %d: want nothing before the lag", now-t0, n, tb.Len())
		}
	}
	if _, _, ok := tb.Lookup(key4(1), t0+1e6); ok {
		t.Fatal("an entry due but not reclaimed was found")
	}
	// The table is full of live and due entries: a create reclaims what
	// is due instead of failing or evicting.
	if _, _, st := tb.Insert(key4(9), mkval(9), Meta{Deadline: t0 + 10*sec}, t0+1e6); st != Inserted {
		t.Fatalf("Insert into a table full of due entries: %v", st)
	}
	if tb.Len() != 3 || tb.Stats().Expired != 2 || tb.Stats().EarlyDrop != 0 {
		t.Fatalf("after the create: Len %d, stats %+v; want entries 0 and 1 reclaimed", tb.Len(), tb.Stats())
	}
	// Entry 2 is due at t0+2ms: Reclaim waits for the lag (counted from
	// the wheel's bound on the earliest deadline, at most a slot before
	// it), and then takes entry 3 too, due by then.
	if n := tb.Reclaim(t0 + 2e6 + reclaimLag - 2<<slotShift); n != 0 {
		t.Fatalf("Reclaim before entry 2's lag reclaimed %d", n)
	}
	if n := tb.Reclaim(t0 + 2e6 + reclaimLag); n != 2 || tb.Len() != 1 {
		t.Fatalf("Reclaim after the lag reclaimed %d, Len %d; want entries 2 and 3", n, tb.Len())
	}

	// With a subscriber: at once, in order, at the caller's clock.
	tb = newTable(t, 4)
	for i := range 3 {
		mustInsert(t, tb, key4(uint32(i)), mkval(uint64(i)), Meta{Deadline: t0 + int64(2-i)*1e6, State: stSynSent}, t0-sec)
	}
	sub := tb.Subscribe(8)
	if n := tb.Reclaim(t0 - 1); n != 0 {
		t.Fatalf("Reclaim before any deadline reclaimed %d", n)
	}
	if n := tb.Reclaim(t0 + 1e6); n != 2 {
		t.Fatalf("Reclaim with a subscriber reclaimed %d at t0+1ms, want 2", n)
	}
	evs := drain(sub)
	if len(evs) != 2 || evs[0].Key != key4(2) || evs[1].Key != key4(1) || evs[0].Time != t0+1e6 || evs[0].Reason != ReasonExpired {
		t.Fatalf("events %+v: want DESTROY of entries 2 then 1 at t0+1ms", evs)
	}
}

// Clocks far apart: due entries filed at the zero time.Time's clock
// (about -6.8e18 ns) are reclaimed by a Reclaim at a clock of 2049, where
// now-due overflows int64.
func TestReclaimFarClocks(t *testing.T) {
	const zero = int64(-6795364578871345152) // time.Time{}.UnixNano()
	tb := newTable(t, 4)
	mustInsert(t, tb, key4(1), mkval(1), Meta{Deadline: zero + sec, State: stSynSent}, zero)
	if n := tb.Reclaim(int64(2_500_000_000) * sec); n != 1 || tb.Len() != 0 {
		t.Fatalf("Reclaim in 2049 reclaimed %d, Len %d; want the entry due at the zero time's clock", n, tb.Len())
	}
}
