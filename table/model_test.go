package table

import (
	"flag"
	"testing"

	"pgregory.net/rapid"
)

// The rapid state machine drives one table with random operations and
// checks every observable result against a plain map. Early drop picks its
// victim by index position, which the model does not know, so the model
// accepts any evictable victim and checks that exactly one disappeared.

type mConn struct {
	orig Dir // which side's tuple is the original
	v    val
	m    Meta
	gen  Ref
}

type tableMachine struct {
	tb    *Table[val]
	sub   *Subscription[val]
	max   int
	now   int64
	conns []Key // connection i's side-0 tuple
	model map[int]*mConn
	seq   uint64
}

const modelConns = 10

func (s *tableMachine) key(c int, side Dir) Key {
	if side == Reply {
		return s.conns[c].Reverse()
	}
	return s.conns[c]
}

func (s *tableMachine) live(c int) (*mConn, bool) {
	e, ok := s.model[c]
	return e, ok && e.m.Deadline > s.now
}

func (s *tableMachine) evictable(e *mConn) bool {
	return e.m.Deadline <= s.now || e.m.Flags&Assured == 0 || e.m.Flags&Closing != 0
}

// present reports whether the record for connection c is still in the
// index, expired or not.
func (s *tableMachine) present(c int) bool {
	k := s.conns[c]
	kr := k.Reverse()
	_, _, _, _, ok := s.tb.search(&k, &kr, k.hash(&s.tb.seed))
	return ok
}

func (s *tableMachine) drawMeta(t *rapid.T) Meta {
	f := Flags(rapid.IntRange(0, 7).Draw(t, "flags"))
	return Meta{Deadline: s.now + int64(rapid.IntRange(1, 50).Draw(t, "ttl")), State: uint8(rapid.IntRange(0, 8).Draw(t, "state")), Flags: f}
}

func (s *tableMachine) Insert(t *rapid.T) {
	c := rapid.IntRange(0, modelConns-1).Draw(t, "conn")
	side := Dir(rapid.IntRange(0, 1).Draw(t, "side"))
	m := s.drawMeta(t)
	s.seq++
	v := mkval(s.seq)
	r, d, st := s.tb.Insert(s.key(c, side), v, m, s.now)
	if e, ok := s.live(c); ok {
		want := Original
		if side != e.orig {
			want = Reply
		}
		if st != Existing || d != want || r != e.gen {
			t.Fatalf("insert of live conn %d: %v %v %v, want existing %v %v", c, st, d, r, want, e.gen)
		}
		return
	}
	delete(s.model, c) // an expired record for c is reclaimed first
	if len(s.model) >= s.max {
		// Full: every expired entry is reclaimed before the limit is
		// decided (expired entries count as absent for it).
		for oc, e := range s.model {
			if e.m.Deadline <= s.now {
				delete(s.model, oc)
			}
		}
	}
	if len(s.model) < s.max {
		if st != Inserted || d != Original {
			t.Fatalf("insert with room (%d/%d): %v", len(s.model), s.max, st)
		}
	} else {
		anyEvictable := false
		for _, e := range s.model {
			anyEvictable = anyEvictable || s.evictable(e)
		}
		switch st {
		case Dropped:
			// Early drop scans evictBuckets buckets from the key's home:
			// in these small tables that is the whole index, so a drop
			// means nothing at all was evictable.
			if anyEvictable && s.tb.nb <= evictBuckets {
				t.Fatal("dropped although an entry was evictable")
			}
			return
		case Inserted:
			if !anyEvictable {
				t.Fatal("insert into a full table with nothing evictable succeeded")
			}
			victims := 0
			for oc, e := range s.model {
				if !s.present(oc) {
					victims++
					if !s.evictable(e) {
						t.Fatalf("conn %d evicted but not evictable: %+v", oc, e.m)
					}
					delete(s.model, oc)
				}
			}
			if victims != 1 {
				t.Fatalf("%d victims for one insert", victims)
			}
		default:
			t.Fatalf("insert into a full table: %v", st)
		}
	}
	s.model[c] = &mConn{orig: side, v: v, m: m, gen: r}
}

func (s *tableMachine) Lookup(t *rapid.T) {
	c := rapid.IntRange(0, modelConns-1).Draw(t, "conn")
	side := Dir(rapid.IntRange(0, 1).Draw(t, "side"))
	snap, d, ok := s.tb.Get(s.key(c, side), s.now)
	e, want := s.live(c)
	if ok != want {
		t.Fatalf("Get conn %d side %d at %d: found=%v, model %v", c, side, s.now, ok, want)
	}
	if !ok {
		return
	}
	wd := Original
	if side != e.orig {
		wd = Reply
	}
	if d != wd || snap.V != e.v || snap.Meta != e.m || snap.Ref != e.gen || snap.Key != s.key(c, e.orig) {
		t.Fatalf("Get conn %d: %v %+v, model %v %+v", c, d, snap.Meta, wd, e.m)
	}
}

func (s *tableMachine) Update(t *rapid.T) {
	c := rapid.IntRange(0, modelConns-1).Draw(t, "conn")
	e, ok := s.live(c)
	r, _, found := s.tb.Lookup(s.key(c, Original), s.now)
	if found != ok {
		t.Fatalf("Lookup conn %d: %v, model %v", c, found, ok)
	}
	if !ok {
		return
	}
	v, m, held := s.tb.Acquire(r)
	if !held || v != e.v || m != e.m {
		t.Fatalf("Acquire conn %d: %v %+v", c, held, m)
	}
	if rapid.Bool().Draw(t, "abort") {
		s.tb.Abort(r)
		return
	}
	m = s.drawMeta(t)
	s.seq++
	v = mkval(s.seq)
	s.tb.Commit(r, &v, &m, s.now)
	e.v, e.m = v, m
}

func (s *tableMachine) Delete(t *rapid.T) {
	c := rapid.IntRange(0, modelConns-1).Draw(t, "conn")
	_, ok := s.live(c)
	r, _, found := s.tb.Lookup(s.key(c, Dir(rapid.IntRange(0, 1).Draw(t, "side"))), s.now)
	if found != ok {
		t.Fatalf("Lookup conn %d: %v, model %v", c, found, ok)
	}
	if !ok {
		return
	}
	if !s.tb.Delete(r, ReasonKilled, s.now) {
		t.Fatal("Delete of a live entry failed")
	}
	if s.tb.Delete(r, ReasonKilled, s.now) {
		t.Fatal("second Delete succeeded")
	}
	delete(s.model, c)
}

func (s *tableMachine) Replace(t *rapid.T) {
	c := rapid.IntRange(0, modelConns-1).Draw(t, "conn")
	e, ok := s.live(c)
	if !ok {
		t.Skip("not live")
	}
	r, _, _ := s.tb.Lookup(s.key(c, Original), s.now)
	if _, _, held := s.tb.Acquire(r); !held {
		t.Fatal("Acquire")
	}
	side := Dir(rapid.IntRange(0, 1).Draw(t, "side"))
	m := s.drawMeta(t)
	s.seq++
	v := mkval(s.seq)
	nr, st := s.tb.Replace(r, s.key(c, side), v, m, s.now)
	if st != Inserted {
		t.Fatalf("Replace: %v", st)
	}
	if _, _, ok := s.tb.Load(e.gen); ok {
		t.Fatal("old incarnation still loads")
	}
	*e = mConn{orig: side, v: v, m: m, gen: nr}
}

func (s *tableMachine) Advance(t *rapid.T) {
	s.now += int64(rapid.IntRange(1, 40).Draw(t, "dt"))
}

func (s *tableMachine) Sweep(t *rapid.T) {
	expired := 0
	for c, e := range s.model {
		if e.m.Deadline <= s.now {
			expired++
			delete(s.model, c)
		}
	}
	if re := s.tb.Expire(s.now); re != expired {
		t.Fatalf("Expire reclaimed %d, model expired %d", re, expired)
	}
}

func (s *tableMachine) Check(t *rapid.T) {
	if s.tb.Len() != len(s.model) {
		t.Fatalf("Len %d, model %d", s.tb.Len(), len(s.model))
	}
	seen := map[Key]bool{}
	s.tb.Range(s.now, func(sn *Snapshot[val]) bool {
		seen[sn.Key] = true
		return true
	})
	n := 0
	for c, e := range s.model {
		if e.m.Deadline > s.now {
			n++
			if !seen[s.key(c, e.orig)] {
				t.Fatalf("Range misses conn %d", c)
			}
		}
	}
	if n != len(seen) {
		t.Fatalf("Range shows %d entries, model %d", len(seen), n)
	}
	if lost := s.sub.Lost(); lost != 0 {
		t.Fatalf("events lost: %d", lost)
	}
	drain(s.sub)
}

func TestModel(t *testing.T) {
	if long() {
		// Unless given on the command line: 100x the default cases, longer runs.
		setDefaultFlag("rapid.checks", "10000")
		setDefaultFlag("rapid.steps", "200")
	}
	rapid.Check(t, func(t *rapid.T) {
		max := rapid.IntRange(1, 8).Draw(t, "max")
		tb, err := New[val](Config{Max: max, Seed: uint64(rapid.IntRange(1, 1<<30).Draw(t, "seed"))})
		if err != nil {
			t.Fatal(err)
		}
		s := &tableMachine{tb: tb, sub: tb.Subscribe(1024), max: max, model: map[int]*mConn{}}
		for i := 0; i < modelConns; i++ {
			s.conns = append(s.conns, key4(uint32(i)))
		}
		t.Repeat(rapid.StateMachineActions(s))
	})
}

func setDefaultFlag(name, value string) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		flag.Set(name, value)
	}
}
