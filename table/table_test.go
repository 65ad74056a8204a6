package table

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewRejectsPointerValues(t *testing.T) {
	type inner struct {
		A uint32
		P *int
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, errPointer) {
			t.Errorf("New[%s]: err = %v, want a pointer-free error", name, err)
		}
	}
	cfg := Config{Max: 8}
	_, err := New[*int](cfg)
	check("*int", err)
	_, err = New[string](cfg)
	check("string", err)
	_, err = New[[]byte](cfg)
	check("[]byte", err)
	_, err = New[map[int]int](cfg)
	check("map", err)
	_, err = New[any](cfg)
	check("any", err)
	_, err = New[func()](cfg)
	check("func", err)
	_, err = New[chan int](cfg)
	check("chan", err)
	_, err = New[struct{ X [2]inner }](cfg)
	check("nested struct with pointer", err)
	_, err = New[[3]string](cfg)
	check("[3]string", err)

	for _, max := range []int{0, -1} {
		if _, err := New[val](Config{Max: max}); err == nil {
			t.Errorf("New(Max=%d) succeeded", max)
		}
	}
	// Pointer-free values of awkward sizes are accepted and round-trip.
	type odd struct {
		B [13]byte
		C uint16
	}
	tb, err := New[odd](Config{Max: 4})
	if err != nil {
		t.Fatal(err)
	}
	v := odd{B: [13]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, C: 0xbeef}
	r, _, st := tb.Insert(key4(1), v, Meta{Deadline: sec}, 0)
	if st != Inserted {
		t.Fatal(st)
	}
	if got, _, ok := tb.Load(r); !ok || got != v {
		t.Fatalf("Load = %+v, %v; want %+v", got, ok, v)
	}
	if _, err := New[struct{}](Config{Max: 1}); err != nil {
		t.Fatalf("zero-size V: %v", err)
	}
}

func TestKey(t *testing.T) {
	k := MakeKey4([4]byte{192, 168, 1, 5}, [4]byte{192, 168, 1, 35}, 1031, 23)
	k2 := KeyFromAddrPorts(netip.MustParseAddrPort("192.168.1.5:1031"), netip.MustParseAddrPort("192.168.1.35:23"))
	if k != k2 {
		t.Fatalf("MakeKey4 %v != KeyFromAddrPorts %v", k, k2)
	}
	m1, m2 := netip.MustParseAddr("::ffff:192.168.1.5").As16(), netip.MustParseAddr("::ffff:192.168.1.35").As16()
	if k3 := MakeKey(FamilyIPv4, &m1, &m2, 1031, 23); k3 != k {
		t.Fatalf("MakeKey(v4-mapped) %v != %v", k3, k)
	}
	if k.Family() != FamilyIPv4 || k.Proto() != ProtoTCP || k.SrcPort() != 1031 || k.DstPort() != 23 ||
		k.Src() != netip.MustParseAddr("192.168.1.5") || k.Dst() != netip.MustParseAddr("192.168.1.35") {
		t.Fatalf("accessors: %v fam=%d proto=%d", k, k.Family(), k.Proto())
	}
	if got := k.String(); got != "192.168.1.5:1031->192.168.1.35:23" {
		t.Fatalf("String = %q", got)
	}
	r := k.Reverse()
	if r.Src() != k.Dst() || r.Dst() != k.Src() || r.SrcPort() != 23 || r.DstPort() != 1031 || r.Family() != FamilyIPv4 || r.Proto() != ProtoTCP {
		t.Fatalf("Reverse = %v", r)
	}
	if r.Reverse() != k || r == k {
		t.Fatal("Reverse is not an involution")
	}
	k6 := KeyFromAddrPorts(netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:80"))
	if k6.Family() != FamilyIPv6 || k6.Src() != netip.MustParseAddr("2001:db8::1") || k6.Reverse().Src() != netip.MustParseAddr("2001:db8::2") {
		t.Fatalf("ipv6 key %v", k6)
	}
	if (Key{}).IsZero() != true || k.IsZero() {
		t.Fatal("IsZero")
	}
	s := newTable(t, 4)
	if k.hash(&s.seed) == r.hash(&s.seed) {
		t.Fatal("a tuple and its reverse hash the same")
	}
}

func TestInsertLookupBothDirections(t *testing.T) {
	for _, fam := range []struct {
		name string
		key  func(uint32) Key
	}{{"ipv4", key4}, {"ipv6", key6}} {
		t.Run(fam.name, func(t *testing.T) {
			tb := newTable(t, 64)
			const n = 40
			refs := make([]Ref, n)
			for i := range refs {
				refs[i] = mustInsert(t, tb, fam.key(uint32(i)), mkval(uint64(i)), Meta{Deadline: 100 * sec, State: stEstablished, Flags: Assured | SeenReply}, 0)
			}
			if tb.Len() != n {
				t.Fatalf("Len = %d", tb.Len())
			}
			for i, want := range refs {
				k := fam.key(uint32(i))
				for _, c := range []struct {
					k Key
					d Dir
				}{{k, Original}, {k.Reverse(), Reply}} {
					r, d, ok := tb.Lookup(c.k, sec)
					if !ok || r != want || d != c.d {
						t.Fatalf("Lookup(%v) = %v %v %v; want %v %v", c.k, r, d, ok, want, c.d)
					}
					s, d, ok := tb.Get(c.k, sec)
					if !ok || d != c.d || s.Ref != want || s.Key != k || s.V != mkval(uint64(i)) ||
						s.Meta != (Meta{Deadline: 100 * sec, State: stEstablished, Flags: Assured | SeenReply}) {
						t.Fatalf("Get(%v) = %+v %v %v", c.k, s, d, ok)
					}
				}
				v, m, ok := tb.Load(want)
				if !ok || v != mkval(uint64(i)) || m.State != stEstablished {
					t.Fatalf("Load(%v) = %v %v", want, m, ok)
				}
			}
			// Keys that differ in one field are not found.
			k := fam.key(3)
			miss := []Key{fam.key(n + 1), MakeKey(k.Family(), ptr16(k.Src()), ptr16(k.Dst()), k.SrcPort()+1, k.DstPort())}
			for _, mk := range miss {
				if _, _, ok := tb.Lookup(mk, sec); ok {
					t.Fatalf("Lookup(%v) found an entry", mk)
				}
			}
			st := tb.Stats()
			if st.Insert != n || st.Entries != n || st.Found != 4*n {
				t.Fatalf("stats %+v", st)
			}
		})
	}
	var tb *Table[val]
	_ = tb
}

func ptr16(a netip.Addr) *[16]byte { b := a.As16(); return &b }

func TestInsertExisting(t *testing.T) {
	tb := newTable(t, 8)
	k := key4(7)
	r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 10 * sec, State: stSynSent}, 0)
	for _, c := range []struct {
		k Key
		d Dir
	}{{k, Original}, {k.Reverse(), Reply}} {
		got, d, st := tb.Insert(c.k, mkval(2), Meta{Deadline: 10 * sec}, sec)
		if st != Existing || got != r || d != c.d {
			t.Fatalf("Insert(%v) again = %v %v %v; want existing %v %v", c.k, got, d, st, r, c.d)
		}
	}
	if v, _, _ := tb.Load(r); v != mkval(1) {
		t.Fatal("losing insert overwrote the value")
	}
	if st := tb.Stats(); st.ClashResolve != 2 || st.Insert != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len = %d", tb.Len())
	}
}

// Two goroutines create the same connection at once, one from each
// direction: exactly one wins, the other gets the winner's entry.
func TestCreateRace(t *testing.T) {
	rounds := 2000
	if long() {
		rounds = 50000
	}
	tb := newTable(t, rounds)
	for i := 0; i < rounds; i++ {
		k := key4(uint32(i))
		var wg sync.WaitGroup
		var res [2]struct {
			r  Ref
			d  Dir
			st Status
		}
		start := make(chan struct{})
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kk := k
				if g == 1 {
					kk = k.Reverse()
				}
				<-start
				res[g].r, res[g].d, res[g].st = tb.Insert(kk, mkval(uint64(g)), Meta{Deadline: 10 * sec}, 0)
			}()
		}
		close(start)
		wg.Wait()
		w, l := 0, 1
		if res[1].st == Inserted {
			w, l = 1, 0
		}
		if res[w].st != Inserted || res[l].st != Existing {
			t.Fatalf("round %d: statuses %v %v", i, res[0].st, res[1].st)
		}
		if res[l].r != res[w].r {
			t.Fatalf("round %d: loser got %v, winner %v", i, res[l].r, res[w].r)
		}
		// The loser matched the winner's tuple from the other side.
		if res[l].d != Reply || res[w].d != Original {
			t.Fatalf("round %d: dirs winner %v loser %v", i, res[w].d, res[l].d)
		}
		s, d, ok := tb.Get(k, 0)
		if !ok || s.V != mkval(uint64(w)) || (d == Original) != (w == 0) {
			t.Fatalf("round %d: stored %+v dir %v, winner %d", i, s.V, d, w)
		}
	}
	if st := tb.Stats(); tb.Len() != rounds || st.Insert != uint64(rounds) || st.ClashResolve != uint64(rounds) {
		t.Fatalf("Len %d stats %+v", tb.Len(), st)
	}
}

// Writers update entries in place under the entry lock while readers load
// them; every value seen must satisfy the checksum.
func TestUpdateNoTornReads(t *testing.T) {
	const n = 8
	iters := 20000
	if long() {
		iters = 500000
	}
	tb := newTable(t, n)
	refs := make([]Ref, n)
	keys := make([]Key, n)
	for i := range refs {
		keys[i] = key4(uint32(i))
		refs[i] = mustInsert(t, tb, keys[i], mkval(uint64(i)), Meta{Deadline: 1 << 62, State: stEstablished}, 0)
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				j := (i + g) % n
				switch g {
				case 0:
					v, _, ok := tb.Load(refs[j])
					if !ok || !v.ok() {
						bad.Add(1)
					}
				case 1:
					k := keys[j]
					if i&1 == 1 {
						k = k.Reverse()
					}
					s, _, ok := tb.Get(k, 0)
					if !ok || !s.V.ok() || s.Key != keys[j] {
						bad.Add(1)
					}
				case 2:
					c := 0
					tb.Range(0, func(s *Snapshot[val]) bool {
						if !s.V.ok() {
							bad.Add(1)
						}
						c++
						return true
					})
					if c != n {
						bad.Add(1)
					}
				}
				reads.Add(1)
			}
		}()
	}
	var counter [n]uint64
	var ww sync.WaitGroup
	for w := 0; w < 2; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for i := 0; i < iters; i++ {
				j := (i*7 + w) % n
				v, m, ok := tb.Acquire(refs[j])
				if !ok {
					bad.Add(1)
					continue
				}
				if !v.ok() {
					bad.Add(1)
				}
				counter[j]++ // protected by the entry lock
				v.W[0] = counter[j]
				v.W[5] ^= uint64(i)
				v.Sum = v.sum()
				m.State = uint8(i % 8)
				tb.Commit(refs[j], &v, &m, 0)
			}
		}()
	}
	ww.Wait()
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d torn or missing reads out of %d", bad.Load(), reads.Load())
	}
	var total uint64
	for j := range refs {
		v, _, _ := tb.Load(refs[j])
		if v.W[0] != counter[j] {
			t.Fatalf("entry %d: W[0] = %d, want %d (lost update)", j, v.W[0], counter[j])
		}
		total += counter[j]
	}
	if total != uint64(2*iters) {
		t.Fatalf("updates %d, want %d", total, 2*iters)
	}
}

func TestAcquireAbortCommit(t *testing.T) {
	tb := newTable(t, 4)
	k := key4(1)
	r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 10 * sec, State: stSynSent}, 0)
	v, m, ok := tb.Acquire(r)
	if !ok || v != mkval(1) || m.State != stSynSent || m.Deadline != 10*sec {
		t.Fatalf("Acquire = %v %v", m, ok)
	}
	tb.Abort(r)
	v, m, _ = tb.Acquire(r)
	m.State, m.Flags, m.Deadline = stEstablished, Assured|SeenReply, 20*sec
	v9 := mkval(9)
	tb.Commit(r, &v9, &m, sec)
	if v2, m2, ok := tb.Load(r); !ok || v2 != mkval(9) || m2 != m {
		t.Fatalf("after Commit: %v %v", m2, ok)
	}
	_ = v
	// Internal flag bits passed by the caller are not stored.
	v, m, _ = tb.Acquire(r)
	m.Flags |= flagAlive | 0x40
	tb.Commit(r, &v, &m, sec)
	if _, m2, _ := tb.Load(r); m2.Flags != Assured|SeenReply {
		t.Fatalf("flags %#x", m2.Flags)
	}
	mustPanic(t, "Commit without Acquire", func() { tb.Commit(r, &v, &m, 0) })
	mustPanic(t, "Abort without Acquire", func() { tb.Abort(r) })
	if _, _, ok := tb.Acquire(Ref{}); ok {
		t.Fatal("Acquire(zero Ref) succeeded")
	}
	if _, _, ok := tb.Load(Ref{idx: 1 << 30, gen: 1}); ok {
		t.Fatal("Load of an out-of-range Ref succeeded")
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

func TestDelete(t *testing.T) {
	tb := newTable(t, 4)
	k := key6(5)
	r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 10 * sec}, 0)
	if !tb.Delete(r, ReasonKilled, sec) {
		t.Fatal("Delete failed")
	}
	for _, kk := range []Key{k, k.Reverse()} {
		if _, _, ok := tb.Lookup(kk, sec); ok {
			t.Fatalf("Lookup(%v) after Delete", kk)
		}
	}
	if tb.Delete(r, ReasonKilled, sec) {
		t.Fatal("second Delete succeeded")
	}
	if _, _, ok := tb.Load(r); ok {
		t.Fatal("Load of a deleted Ref")
	}
	if _, _, ok := tb.Acquire(r); ok {
		t.Fatal("Acquire of a deleted Ref")
	}
	if tb.Len() != 0 {
		t.Fatalf("Len = %d", tb.Len())
	}
	// The record is reused; the old Ref stays dead.
	r2 := mustInsert(t, tb, k, mkval(2), Meta{Deadline: 10 * sec}, 0)
	if r2 == r {
		t.Fatal("new incarnation has the old Ref")
	}
	if _, _, ok := tb.Load(r); ok {
		t.Fatal("old Ref names the new incarnation")
	}
	if st := tb.Stats(); st.Killed != 1 || st.Insert != 2 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Remove under Acquire.
	if _, _, ok := tb.Acquire(r2); !ok {
		t.Fatal("Acquire")
	}
	tb.Remove(r2, ReasonKilled, 0)
	if _, _, ok := tb.Lookup(k, 0); ok || tb.Len() != 0 {
		t.Fatal("Remove left the entry")
	}
}

func TestReplace(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		tb := newTable(t, 4)
		sub := tb.Subscribe(16)
		k := key4(9)
		other := mustInsert(t, tb, key4(10), mkval(10), Meta{Deadline: 100 * sec}, 0)
		r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 100 * sec, State: stTimeWait, Flags: Assured | SeenReply | Closing}, 0)
		drain(sub)
		if _, _, ok := tb.Acquire(r); !ok {
			t.Fatal("Acquire")
		}
		nk := k
		if reverse {
			nk = k.Reverse()
		}
		nm := Meta{Deadline: 120 * sec, State: stSynSent}
		nr, st := tb.Replace(r, nk, mkval(2), nm, sec)
		if st != Inserted || nr == r || nr.IsZero() {
			t.Fatalf("Replace = %v %v", nr, st)
		}
		if _, _, ok := tb.Load(r); ok {
			t.Fatal("old incarnation still loads")
		}
		for _, c := range []struct {
			k Key
			d Dir
		}{{nk, Original}, {nk.Reverse(), Reply}} {
			s, d, ok := tb.Get(c.k, sec)
			if !ok || s.Ref != nr || d != c.d || s.Key != nk || s.V != mkval(2) || s.Meta != nm {
				t.Fatalf("reverse=%v Get(%v) = %+v %v %v", reverse, c.k, s, d, ok)
			}
		}
		if tb.Len() != 2 {
			t.Fatalf("Len = %d", tb.Len())
		}
		if _, _, ok := tb.Load(other); !ok {
			t.Fatal("unrelated entry lost")
		}
		evs := drain(sub)
		if len(evs) != 2 || evs[0].Type != EventDestroy || evs[0].Reason != ReasonKilled || evs[0].Ref != r ||
			evs[0].Meta.State != stTimeWait || evs[0].Key != k ||
			evs[1].Type != EventNew || evs[1].Ref != nr || evs[1].Key != nk || evs[1].V != mkval(2) {
			t.Fatalf("reverse=%v events %+v", reverse, evs)
		}
		if s := tb.Stats(); s.Killed != 1 || s.Insert != 3 {
			t.Fatalf("stats %+v", s)
		}
		// A Replace with another connection's tuple is a caller bug.
		tb.Acquire(nr)
		mustPanic(t, "Replace with a foreign tuple", func() { tb.Replace(nr, key4(11), mkval(3), nm, sec) })
	}
}

func drain(s *Subscription[val]) []Event[val] {
	var evs []Event[val]
	for {
		select {
		case e := <-s.C():
			evs = append(evs, e)
		default:
			return evs
		}
	}
}

// A Lookup racing with a same-direction Replace always finds one of the two
// incarnations.
func TestReplaceInPlaceNeverMissing(t *testing.T) {
	tb := newTable(t, 4)
	k := key4(3)
	r := mustInsert(t, tb, k, mkval(0), Meta{Deadline: 1 << 62}, 0)
	var stop atomic.Bool
	var misses atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			kk := k
			if i&1 == 1 {
				kk = k.Reverse()
			}
			if _, _, ok := tb.Lookup(kk, 0); !ok {
				misses.Add(1)
			}
		}
	}()
	for i := 0; i < 20000; i++ {
		if _, _, ok := tb.Acquire(r); !ok {
			t.Fatal("Acquire")
		}
		var st Status
		r, st = tb.Replace(r, k, mkval(uint64(i)), Meta{Deadline: 1 << 62}, 0)
		if st != Inserted {
			t.Fatal(st)
		}
	}
	stop.Store(true)
	<-done
	if misses.Load() != 0 {
		t.Fatalf("%d lookups missed the connection during Replace", misses.Load())
	}
}

// Keys take the family of the addresses as given: an IPv4-mapped IPv6
// address is IPv6 (the kernel's IPv6 table), distinct from the IPv4 key of
// the same addresses, and a mixed pair is keyed, not a panic (the fuzzer
// found Tracker.Lookup panicking on a mapped source and an IPv6
// destination, when keys were unmapped first).
func TestKeyFamilies(t *testing.T) {
	v4a, v4b := netip.MustParseAddrPort("1.2.3.4:10"), netip.MustParseAddrPort("5.6.7.8:20")
	m4a, m4b := netip.MustParseAddrPort("[::ffff:1.2.3.4]:10"), netip.MustParseAddrPort("[::ffff:5.6.7.8]:20")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:20")
	for _, c := range []struct {
		src, dst netip.AddrPort
		fam      uint8
	}{
		{v4a, v4b, FamilyIPv4},
		{m4a, m4b, FamilyIPv6},
		{m4a, v6, FamilyIPv6},
		{v6, m4a, FamilyIPv6},
		{v4a, v6, FamilyIPv6},
	} {
		k := KeyFromAddrPorts(c.src, c.dst)
		if k.Family() != c.fam {
			t.Errorf("KeyFromAddrPorts(%v, %v) family %d, want %d", c.src, c.dst, k.Family(), c.fam)
		}
		if k.SrcPort() != c.src.Port() || k.DstPort() != c.dst.Port() {
			t.Errorf("KeyFromAddrPorts(%v, %v): ports %d %d", c.src, c.dst, k.SrcPort(), k.DstPort())
		}
	}
	if KeyFromAddrPorts(m4a, m4b) == KeyFromAddrPorts(v4a, v4b) {
		t.Error("an IPv6 connection between IPv4-mapped addresses has the IPv4 connection's key")
	}
	if k := KeyFromAddrPorts(m4a, m4b); k.Src() != m4a.Addr() || k.Dst() != m4b.Addr() {
		t.Errorf("mapped addresses come back as %v %v", k.Src(), k.Dst())
	}
}

// Creates and deletes reuse records while readers walk the table and
// look keys up: every entry a reader sees is whole, its value the one
// inserted with its key, never a record caught while a create fills it
// (a create writes a dead record without a seqlock window and makes it
// live in one window, publish).
func TestChurnNoTornRecords(t *testing.T) {
	const n, keysPerWriter = 16, 64
	iters := 50000
	if long() {
		iters = 500000
	}
	tb := newTable(t, n)
	id := func(k Key) uint64 { return k.w[4] & 0xffff_ffff } // ports: distinct per key below
	key := func(w, i int) Key {
		return MakeKey4([4]byte{10, 0, 0, byte(w)}, [4]byte{10, 0, 1, byte(i)}, uint16(1000+w*keysPerWriter+i), uint16(2000+i))
	}
	var stop atomic.Bool
	var bad, seen atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if g == 0 {
					tb.Range(0, func(s *Snapshot[val]) bool {
						if !s.V.ok() || s.V != mkval(id(s.Key)) {
							bad.Add(1)
						}
						seen.Add(1)
						return true
					})
					continue
				}
				k := key(i%2, i%keysPerWriter)
				if i&1 == 1 {
					k = k.Reverse()
				}
				if s, _, ok := tb.Get(k, 0); ok {
					if !s.V.ok() || s.V != mkval(id(s.Key)) {
						bad.Add(1)
					}
					seen.Add(1)
				}
			}
		}()
	}
	var ww sync.WaitGroup
	for w := 0; w < 2; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			var refs [keysPerWriter]Ref
			for i := 0; i < iters; i++ {
				j := i % keysPerWriter
				if !refs[j].IsZero() {
					tb.Delete(refs[j], ReasonKilled, 0)
					refs[j] = Ref{}
				}
				k := key(w, j)
				if r, _, st := tb.Insert(k, mkval(id(k)), Meta{Deadline: 1 << 62, State: stEstablished}, 0); st == Inserted {
					refs[j] = r
				}
			}
		}()
	}
	ww.Wait()
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 || seen.Load() == 0 {
		t.Fatalf("%d torn or mismatched entries out of %d seen", bad.Load(), seen.Load())
	}
}

// TestSeed: Seed 0 draws a fresh hash seed for every table, so bucket
// placement cannot be predicted from outside; a given Seed is reproducible.
func TestSeed(t *testing.T) {
	seeds := func(s uint64) (a, b [6]uint64) {
		t1, err := New[val](Config{Max: 4, Seed: s})
		if err != nil {
			t.Fatal(err)
		}
		t2, err := New[val](Config{Max: 4, Seed: s})
		if err != nil {
			t.Fatal(err)
		}
		return t1.seed, t2.seed
	}
	if a, b := seeds(0); a == b {
		t.Errorf("Seed 0: two tables share the hash seed %x", a)
	}
	if a, b := seeds(42); a != b {
		t.Errorf("Seed 42: %x and %x differ", a, b)
	}
}
