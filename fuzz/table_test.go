package fuzz

import (
	"testing"

	"github.com/fdac824a/tcpct/table"
)

type fval struct{ A, B uint64 }

type fentry struct {
	orig table.Dir
	v    fval
	m    table.Meta
}

// FuzzTable: bytes decoded into table operations (insert from either
// side, lookup, commit, remove, clock, sweep) on six connections of a
// table of eight, checked step by step against a map model: every result,
// from both tuples, and Len. Three bytes per operation.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 5, 1, 1, 0, 2, 0, 7, 4, 0, 9, 1, 0, 0, 5, 0, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := table.New[fval](table.Config{Max: 8, Seed: 5, Stripes: 4})
		if err != nil {
			t.Fatal(err)
		}
		model := map[int]fentry{}
		now := int64(1000)
		key := func(c int, side table.Dir) table.Key {
			k := table.MakeKey4([4]byte{192, 0, 2, 9}, [4]byte{203, 0, 113, byte(c)}, uint16(5000+c), 80)
			if side == table.Reply {
				return k.Reverse()
			}
			return k
		}
		live := func(c int) (fentry, bool) {
			e, ok := model[c]
			return e, ok && e.m.Deadline > now
		}
		for i := 0; i+3 <= len(data); i += 3 {
			op, c, side, arg := data[i]%6, int(data[i+1]%6), table.Dir(data[i+1]>>3&1), data[i+2]
			m := table.Meta{Deadline: now + 1 + int64(arg%40), State: arg % 10, Flags: table.Flags(arg>>5) & 7}
			v := fval{uint64(i), uint64(arg)}
			e, ok := live(c)
			switch op {
			case 0:
				_, d, st := tb.Insert(key(c, side), v, m, now)
				if ok {
					want := table.Original
					if side != e.orig {
						want = table.Reply
					}
					if st != table.Existing || d != want {
						t.Fatalf("op %d: insert of live conn %d: %v %v, want existing %v", i/3, c, st, d, want)
					}
				} else {
					if st != table.Inserted {
						t.Fatalf("op %d: insert of conn %d: %v", i/3, c, st)
					}
					model[c] = fentry{orig: side, v: v, m: m}
				}
			case 1, 2, 3:
				// Half the time (by the op byte's next bit) the tracker's
				// one-step AcquireKey, otherwise Lookup then Acquire.
				viaKey := data[i]/6%2 == 1
				var ref table.Ref
				var d table.Dir
				var found bool
				var got fval
				var gm table.Meta
				if viaKey {
					k := key(c, side)
					ref, d, gm, found = tb.AcquireKey(&k, 0, now, &got)
				} else {
					ref, d, found = tb.Lookup(key(c, side), now)
				}
				if found != ok {
					t.Fatalf("op %d: lookup of conn %d: found %v, model %v", i/3, c, found, ok)
				}
				if !found {
					break
				}
				want := table.Original
				if side != e.orig {
					want = table.Reply
				}
				aok := true
				if !viaKey {
					got, gm, aok = tb.Acquire(ref)
				}
				if !aok || d != want || got != e.v || gm != e.m {
					t.Fatalf("op %d: conn %d: %v %+v %+v, model %v %+v %+v", i/3, c, d, got, gm, want, e.v, e.m)
				}
				switch op {
				case 1:
					tb.Abort(ref)
				case 2:
					tb.Commit(ref, &v, &m, now)
					model[c] = fentry{orig: e.orig, v: v, m: m}
				case 3:
					tb.Remove(ref, table.ReasonKilled, now)
					delete(model, c)
				}
			case 4:
				now += int64(arg % 50)
			case 5:
				tb.Expire(now)
				for k, e := range model {
					if e.m.Deadline <= now {
						delete(model, k)
					}
				}
				if tb.Len() != len(model) {
					t.Fatalf("op %d: after a full sweep Len %d, model %d", i/3, tb.Len(), len(model))
				}
			}
			n := 0
			for c := range model {
				if _, ok := live(c); ok {
					n++
				}
			}
			seen := 0
			tb.Range(now, func(*table.Snapshot[fval]) bool { seen++; return true })
			if seen != n || tb.Len() > 8 {
				t.Fatalf("op %d: Range saw %d live entries, model %d; Len %d", i/3, seen, n, tb.Len())
			}
		}
	})
}
