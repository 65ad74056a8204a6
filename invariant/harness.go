package invariant

import (
	"fmt"
	"sync"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// MetaOf is the table Meta a tracker stores with a Conn.
func MetaOf(m *fsm.Machine, c *fsm.Conn) table.Meta {
	var f table.Flags
	if c.Assured() {
		f |= table.Assured
	}
	if c.SeenReply() {
		f |= table.SeenReply
	}
	if m.Closing(c.State) {
		f |= table.Closing
	}
	return table.Meta{Deadline: c.Deadline, State: uint8(c.State), Flags: f}
}

// Outcome is what happened to the table for one packet.
type Outcome struct {
	Ref     table.Ref
	Dropped bool // the entry could not be created (table full, or the index probe limit)
}

// Process runs one packet whose tuple is k through m and tbl, as a tracker
// does: look the tuple up, lock the entry, Step, then do what the verdict's
// Action says. It is safe for concurrent use as long as the packets of one
// connection are not processed concurrently.
func Process(m *fsm.Machine, tbl *table.Table[fsm.Conn], k table.Key, seg *fsm.Segment, now int64) (Step, Outcome) {
	for {
		ref, d, ok := tbl.Lookup(k, now)
		if ok {
			conn, _, ok := tbl.Acquire(ref)
			if !ok {
				continue
			}
			st := Step{Before: conn, Dir: fsm.Dir(d), Seg: *seg, Now: now}
			st.V = m.Step(&conn, seg, st.Dir, now)
			st.After = conn
			out := Outcome{Ref: ref}
			switch st.V.Action {
			case fsm.None:
				tbl.Abort(ref)
			case fsm.Update:
				tbl.Commit(ref, conn, MetaOf(m, &conn), now)
			case fsm.Delete:
				tbl.Remove(ref, table.ReasonKilled, now)
				out.Ref = table.Ref{}
			case fsm.Recreate:
				r, s := tbl.Replace(ref, k, conn, MetaOf(m, &conn), now)
				out.Ref, out.Dropped = r, s != table.Inserted
			case fsm.Create: // the entry had expired
				tbl.Remove(ref, table.ReasonExpired, now)
				r, _, s := tbl.Insert(k, conn, MetaOf(m, &conn), now)
				out.Ref, out.Dropped = r, s != table.Inserted
			}
			return st, out
		}
		var conn fsm.Conn
		st := Step{Dir: fsm.Original, Seg: *seg, Now: now}
		st.V = m.Step(&conn, seg, fsm.Original, now)
		st.After = conn
		var out Outcome
		if st.V.Action == fsm.Create {
			r, _, s := tbl.Insert(k, conn, MetaOf(m, &conn), now)
			if s == table.Existing {
				continue // another goroutine created it: run on the winner
			}
			out.Ref, out.Dropped = r, s != table.Inserted
		}
		return st, out
	}
}

// Harness drives a table.Table[fsm.Conn] with an fsm.Machine sequentially
// and checks every invariant after every packet: the step invariants on
// the verdict, and the table invariants (tuples-agree, timeout-bound,
// bounded) on the whole table, against a shadow of what was committed.
type Harness struct {
	C      *Context
	T      *table.Table[fsm.Conn]
	Max    int
	shadow map[table.Key]table.Meta // original tuple -> committed meta
	Steps  int
	Drops  int
	Evicts int
}

// NewHarness returns a harness with a fresh table of max entries.
func NewHarness(m *fsm.Machine, max int) (*Harness, error) {
	c, err := NewContext(m)
	if err != nil {
		return nil, err
	}
	tbl, err := table.New[fsm.Conn](table.Config{Max: max, Seed: 1, StateNames: m.Profile().StateNames, Stripes: 16})
	if err != nil {
		return nil, err
	}
	return &Harness{C: c, T: tbl, Max: max, shadow: map[table.Key]table.Meta{}}, nil
}

// Packet processes one packet with tuple k and checks everything.
func (h *Harness) Packet(k table.Key, seg fsm.Segment, now int64) (Step, Outcome, error) {
	h.Steps++
	full := h.T.Len() >= h.Max
	st, out := Process(h.C.M, h.T, k, &seg, now)
	if err := h.C.CheckStep(&st); err != nil {
		return st, out, err
	}
	if full && (st.V.Action == fsm.Create) {
		if err := h.evicted(now); err != nil {
			return st, out, err
		}
	}
	if out.Dropped {
		h.Drops++
	}
	if err := h.checkApplied(k, &st, out, now); err != nil {
		return st, out, err
	}
	return st, out, h.CheckTable(now)
}

// evicted accounts for entries early-dropped by an Insert into a full table:
// each must have been expired, unassured or closing.
func (h *Harness) evicted(now int64) error {
	for k, m := range h.shadow {
		if m.Deadline <= now {
			continue
		}
		if _, _, ok := h.T.Lookup(k, now); ok {
			continue
		}
		if m.Flags&table.Assured != 0 && m.Flags&table.Closing == 0 {
			return fail(Bounded, "early drop evicted %v, an assured entry in %s", k, h.C.name(fsm.State(m.State)))
		}
		h.Evicts++
		delete(h.shadow, k)
	}
	return nil
}

func (h *Harness) origKey(k table.Key, st *Step) table.Key {
	if st.Dir == fsm.Reply {
		return k.Reverse()
	}
	return k
}

// checkApplied checks that the table holds what the verdict decided, found
// from both tuples.
func (h *Harness) checkApplied(k table.Key, st *Step, out Outcome, now int64) error {
	live := st.live()
	orig := h.origKey(k, st)
	switch st.V.Action {
	case fsm.Update, fsm.None:
		if !live {
			break
		}
		want := st.After
		if st.V.Action == fsm.None {
			want = st.Before
		}
		if err := h.expect(orig, &want, now); err != nil {
			return err
		}
		h.shadow[orig] = MetaOf(h.C.M, &want)
	case fsm.Delete:
		delete(h.shadow, orig)
		if _, _, ok := h.T.Lookup(k, now); ok {
			return fail(TuplesAgree, "entry still found after delete")
		}
		if _, _, ok := h.T.Lookup(k.Reverse(), now); ok {
			return fail(TuplesAgree, "entry still found by the reverse tuple after delete")
		}
	case fsm.Create, fsm.Recreate:
		// The new entry replaces any entry of the same connection, whichever
		// way round it was created (an expired one, or the killed one).
		delete(h.shadow, k)
		delete(h.shadow, k.Reverse())
		if out.Dropped {
			if _, _, ok := h.T.Lookup(k, now); ok {
				return fail(TuplesAgree, "dropped entry found")
			}
			break
		}
		if err := h.expect(k, &st.After, now); err != nil {
			return err
		}
		h.shadow[k] = MetaOf(h.C.M, &st.After)
	}
	return nil
}

// expect checks that orig's entry holds c, from both tuples.
func (h *Harness) expect(orig table.Key, c *fsm.Conn, now int64) error {
	rev := orig.Reverse()
	if rev.Reverse() != orig || rev == orig {
		return fail(TuplesAgree, "reverse of %v is %v, whose reverse is %v", orig, rev, rev.Reverse())
	}
	s1, d1, ok1 := h.T.Get(orig, now)
	s2, d2, ok2 := h.T.Get(rev, now)
	if !ok1 || !ok2 {
		return fail(TuplesAgree, "entry %v not found (original %v, reply %v)", orig, ok1, ok2)
	}
	if s1.Ref != s2.Ref || d1 != table.Original || d2 != table.Reply {
		return fail(TuplesAgree, "tuples of %v find different entries or directions: %v/%v %v/%v", orig, s1.Ref, d1, s2.Ref, d2)
	}
	if s1.Key != orig || s2.Key != orig {
		return fail(TuplesAgree, "entry's original tuple is %v, want %v", s1.Key, orig)
	}
	if s1.V != *c || s1.Meta != MetaOf(h.C.M, c) {
		return fail(TuplesAgree, "table holds %+v %+v, the verdict left %+v", s1.V, s1.Meta, *c)
	}
	return nil
}

// CheckTable checks the whole-table invariants at now: every committed
// entry is found from both tuples until its deadline and never after,
// nothing else is in the table, no entry outlives its state's bound, and
// the table never holds more than its limit.
func (h *Harness) CheckTable(now int64) error {
	if n := h.T.Len(); n > h.Max {
		return fail(Bounded, "table holds %d entries, limit %d", n, h.Max)
	}
	for k, m := range h.shadow {
		if dl := m.Deadline; dl <= now {
			for _, kk := range []table.Key{k, k.Reverse()} {
				if _, _, ok := h.T.Lookup(kk, now); ok {
					return fail(TimeoutBound, "entry %v still found %d ns after its deadline", kk, now-dl)
				}
			}
			delete(h.shadow, k)
			continue
		}
		r1, d1, ok1 := h.T.Lookup(k, now)
		r2, d2, ok2 := h.T.Lookup(k.Reverse(), now)
		if !ok1 || !ok2 || r1 != r2 || d1 != table.Original || d2 != table.Reply {
			return fail(TuplesAgree, "entry %v: original lookup %v %v %v, reply lookup %v %v %v", k, r1, d1, ok1, r2, d2, ok2)
		}
	}
	n := 0
	var err error
	h.T.Range(now, func(s *table.Snapshot[fsm.Conn]) bool {
		n++
		m, ok := h.shadow[s.Key]
		dl := m.Deadline
		switch {
		case !ok:
			err = fail(TuplesAgree, "table holds %v, which no verdict created", s.Key)
		case m != s.Meta || s.V.Deadline != dl:
			err = fail(TuplesAgree, "entry %v meta %+v, committed %+v", s.Key, s.Meta, m)
		case s.V.Deadline-now > h.C.Bound(s.V.State):
			err = fail(TimeoutBound, "entry %v in %s has %d ns left, bound %d", s.Key, h.C.name(s.V.State), s.V.Deadline-now, h.C.Bound(s.V.State))
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if n > h.Max || n != len(h.shadow) {
		return fail(Bounded, "range saw %d entries, shadow has %d, limit %d", n, len(h.shadow), h.Max)
	}
	return nil
}

// Advance sweeps the table at now (a pause with no packets) and checks that
// exactly the expired entries are gone.
func (h *Harness) Advance(now int64) error {
	h.T.Expire(now)
	if err := h.CheckTable(now); err != nil {
		return err
	}
	if n := h.T.Len(); n != len(h.shadow) {
		return fail(TimeoutBound, "after a full sweep the table holds %d entries, %d are unexpired", n, len(h.shadow))
	}
	return nil
}

// Live returns the number of unexpired entries the harness tracks.
func (h *Harness) Live() int { return len(h.shadow) }

// Packet is one packet of a Trace: connection index, direction relative to
// the connection's first tuple, segment and time.
type Packet struct {
	Conn int
	Dir  fsm.Dir
	Seg  fsm.Segment
	Now  int64
}

// Trace is a multi-connection packet sequence. Keys are the connections'
// first tuples and must be pairwise distinct as unordered pairs.
type Trace struct {
	Keys    []table.Key
	Packets []Packet
}

func (tr *Trace) key(p *Packet) table.Key {
	k := tr.Keys[p.Conn]
	if p.Dir == fsm.Reply {
		return k.Reverse()
	}
	return k
}

// Run replays a trace sequentially through a fresh table of max entries,
// checking every invariant, and returns the verdicts.
func Run(m *fsm.Machine, tr *Trace, max int) ([]fsm.Verdict, error) {
	h, err := NewHarness(m, max)
	if err != nil {
		return nil, err
	}
	out := make([]fsm.Verdict, len(tr.Packets))
	for i := range tr.Packets {
		p := &tr.Packets[i]
		st, _, err := h.Packet(tr.key(p), p.Seg, p.Now)
		if err != nil {
			return out[:i], fmt.Errorf("packet %d (conn %d %v %v seq=%d ack=%d len=%d at %d): %w", i, p.Conn, p.Dir, p.Seg.Flags, p.Seg.Seq, p.Seg.Ack, p.Seg.Len, p.Now, err)
		}
		out[i] = st.V
	}
	return out, nil
}

// RunConcurrent replays a trace with its connections spread over workers
// goroutines (each connection's packets stay in order on one goroutine)
// through a shared table large enough that no entry is early-dropped, and
// returns the verdicts in trace order.
func RunConcurrent(m *fsm.Machine, tr *Trace, workers int) []fsm.Verdict {
	tbl, err := table.New[fsm.Conn](table.Config{Max: len(tr.Keys) + 1, Seed: 2, Stripes: 16})
	if err != nil {
		panic(err)
	}
	out := make([]fsm.Verdict, len(tr.Packets))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range tr.Packets {
				p := &tr.Packets[i]
				if p.Conn%workers != w {
					continue
				}
				seg := p.Seg
				st, _ := Process(m, tbl, tr.key(p), &seg, p.Now)
				out[i] = st.V
			}
		}(w)
	}
	wg.Wait()
	return out
}

// SameVerdicts is the deterministic invariant: two runs of one trace gave
// the same verdicts.
func SameVerdicts(a, b []fsm.Verdict) error {
	if len(a) != len(b) {
		return fail(Deterministic, "%d verdicts vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fail(Deterministic, "packet %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	return nil
}
