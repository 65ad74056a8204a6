package invariant

import (
	"fmt"
	"sync"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// Harness drives a tcpct.Tracker sequentially and checks every invariant
// after every packet: the step invariants on the verdict and on the entry
// the tracker holds before and after the packet (Lookup), and the table
// invariants (tuples-agree, timeout-bound, bounded) on the whole table,
// against a shadow of what the verdicts left. The tracker's events tell
// the harness every entry that goes away and why (expired, killed,
// evicted); with the acct knob on, the shadow counts what every verdict
// says is counted and the entries and DESTROY events must agree.
type Harness struct {
	C   *Context
	Tr  *tcpct.Tracker
	Max int

	sub    *tcpct.Subscription
	shadow map[table.Key]*shadowEntry // original tuple -> what the verdicts left
	acct   bool
	events []tcpct.Event

	Steps  int
	Drops  int // first packets dropped because the table was full
	Evicts int // entries early-dropped to make room
}

// shadowEntry is one connection as the verdicts left it.
type shadowEntry struct {
	ref      table.Ref
	conn     fsm.Conn
	counters table.Counters
}

// NewHarness returns a harness around a fresh tracker built from cfg (its
// table limit is cfg's max knob).
func NewHarness(cfg tcpct.Config) (*Harness, error) {
	tr, err := NewTracker(cfg)
	if err != nil {
		return nil, err
	}
	c, err := ContextOf(tr, &cfg)
	if err != nil {
		return nil, err
	}
	h := &Harness{C: c, Tr: tr, Max: tr.Max(), shadow: map[table.Key]*shadowEntry{}, acct: Knob(tr, "acct") != 0}
	h.sub = tr.Subscribe(2*h.Max + 64)
	return h, nil
}

// exhaustiveEviction: in a table of at most this many entries early drop
// examines every entry. table.Insert looks for a victim in the 8 index
// buckets from the new tuple's home bucket (the kernel's
// NF_CT_EVICTION_RANGE), and table.New gives a table of Max entries
// 2*Max/(7*0.8) buckets, so up to 22 entries fit in 8 buckets; 16 leaves
// room. There a dropped first packet means no entry was evictable, which
// the harness then checks; in bigger tables the victim search is bounded
// and a drop proves nothing.
const exhaustiveEviction = 16

// Packet runs one packet with tuple k through the tracker and checks
// everything. It returns the step the checkers saw and the verdict.
func (h *Harness) Packet(k table.Key, seg fsm.Segment, now int64) (Step, tcpct.Verdict, error) {
	h.Steps++
	before, _, hadEntry := Lookup(h.Tr, k, now)
	st, v := TrackStep(h.Tr, k, seg, now)
	after, _, hasEntry := Lookup(h.Tr, k, now)
	if v.Dropped {
		h.Drops++
		if err := h.checkDropped(k, &st, &v, hasEntry, now); err != nil {
			return st, v, err
		}
	} else if err := h.C.CheckStep(&st); err != nil {
		return st, v, err
	}
	if err := h.checkVerdictEntry(&v, &after, hasEntry); err != nil {
		return st, v, err
	}
	if err := h.applied(k, &st, &v, &before, hadEntry, &after, hasEntry, now); err != nil {
		return st, v, err
	}
	return st, v, h.CheckTable(now)
}

// checkVerdictEntry: the entry fields of the verdict describe the entry
// the tracker holds right after the packet (tuples-agree).
func (h *Harness) checkVerdictEntry(v *tcpct.Verdict, e *tcpct.Entry, ok bool) error {
	if v.Entry != ok {
		return fail(TuplesAgree, "verdict says entry=%v, the tracker's Lookup found=%v", v.Entry, ok)
	}
	if !ok {
		return nil
	}
	c := &e.Conn
	if v.Ref != e.Ref || v.State != c.State || v.Deadline().UnixNano() != c.Deadline || v.Assured != c.Assured() || v.SeenReply != c.SeenReply() || v.Key != e.Key {
		return fail(TuplesAgree, "verdict describes %v %v %s dl=%d assured=%v seen_reply=%v, the tracker holds %v %v %s dl=%d %#x",
			v.Key, v.Ref, h.C.name(v.State), v.Deadline().UnixNano(), v.Assured, v.SeenReply, e.Key, e.Ref, h.C.name(c.State), c.Deadline, c.Status)
	}
	return nil
}

// checkDropped: a first packet was dropped for want of room. No entry
// holds its tuple, the fsm wanted to create one, and (in a table where
// early drop sees every entry) no entry could have been evicted: every
// live entry is ASSURED and not closing (bounded).
func (h *Harness) checkDropped(k table.Key, st *Step, v *tcpct.Verdict, hasEntry bool, now int64) error {
	if hasEntry || v.Entry {
		return fail(Bounded, "dropped packet left an entry")
	}
	if v.Action != fsm.Create && v.Action != fsm.Recreate {
		return fail(Bounded, "packet with action %v dropped", v.Action)
	}
	if h.Tr.Len() < h.Max && st.V.Action == fsm.Create {
		return fail(Bounded, "first packet dropped with %d of %d entries held", h.Tr.Len(), h.Max)
	}
	if h.Max > exhaustiveEviction {
		return nil
	}
	for key, e := range h.shadow {
		if h.C.Evictable(&e.conn, now) {
			return fail(Bounded, "table full: %v dropped although %v in %s%s was evictable (early drop takes expired, unassured and closing entries)",
				k, key, h.C.name(e.conn.State), statusFlags(&e.conn))
		}
	}
	return nil
}

// Evictable says whether early drop may take the entry c at now: it has
// expired, is not ASSURED, or is in a closing state (linux: FIN_WAIT,
// CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, tcp_can_early_drop).
func (c *Context) Evictable(conn *fsm.Conn, now int64) bool {
	return conn.Deadline <= now || !conn.Assured() || c.closing[conn.State]
}

func statusFlags(c *fsm.Conn) string {
	s := ""
	if !c.SeenReply() {
		s += " [UNREPLIED]"
	}
	if c.Assured() {
		s += " [ASSURED]"
	}
	return s
}

// drain collects the tracker's pending events.
func (h *Harness) drain() error {
	h.events = h.events[:0]
	for {
		ev, ok := h.sub.Poll()
		if !ok {
			break
		}
		h.events = append(h.events, ev)
	}
	if n := h.sub.Lost(); n != 0 {
		return fmt.Errorf("harness: %d events lost (buffer too small)", n)
	}
	return nil
}

// byRef finds the shadow entry of r.
func (h *Harness) byRef(r table.Ref) (table.Key, *shadowEntry) {
	for k, e := range h.shadow {
		if e.ref == r {
			return k, e
		}
	}
	return table.Key{}, nil
}

// bytesOf is the IP length the acct knob counts for seg: its IPLen, or an
// IP header without options (fsm.Segment.IPLen) when none was seen.
func bytesOf(k table.Key, seg *fsm.Segment) uint64 {
	if seg.IPLen != 0 {
		return uint64(seg.IPLen)
	}
	n := 20 + uint64(seg.HdrLen) + uint64(seg.Len)
	if k.Family() == table.FamilyIPv6 {
		n += 20
	}
	return n
}

// applied checks that the tracker did what the verdict decided, using its
// events for the entries that went away, and moves the shadow along.
func (h *Harness) applied(k table.Key, st *Step, v *tcpct.Verdict, before *tcpct.Entry, hadEntry bool, after *tcpct.Entry, hasEntry bool, now int64) error {
	if err := h.drain(); err != nil {
		return err
	}
	// What the packet counts (acct): in the entry it was stored in.
	var old *shadowEntry
	if hadEntry {
		_, old = h.byRef(before.Ref)
		if old == nil {
			return fail(TuplesAgree, "packet found %v, which no verdict created", before.Key)
		}
	}
	counted := h.acct && v.Accounted && !v.Dropped
	var fresh table.Counters
	switch v.Action {
	case fsm.Update, fsm.Delete:
		if counted && old != nil {
			old.counters.Packets[st.Dir]++
			old.counters.Bytes[st.Dir] += bytesOf(k, &st.Seg)
		}
	case fsm.Create, fsm.Recreate:
		if counted {
			fresh.Packets[table.Original], fresh.Bytes[table.Original] = 1, bytesOf(k, &st.Seg)
		}
	}
	created := false
	for i := range h.events {
		ev := &h.events[i]
		switch ev.Type {
		case table.EventDestroy:
			key, e := h.byRef(ev.Entry.Ref)
			if e == nil {
				return fail(TuplesAgree, "DESTROY of %v, which no verdict created", ev.Entry.Key)
			}
			switch ev.Reason {
			case table.ReasonExpired:
				if e.conn.Deadline > ev.Time.UnixNano() {
					return fail(TimeoutBound, "%v reclaimed as expired %d ns before its deadline", key, e.conn.Deadline-ev.Time.UnixNano())
				}
			case table.ReasonKilled:
				if !hadEntry || ev.Entry.Ref != before.Ref || (v.Action != fsm.Delete && v.Action != fsm.Recreate) {
					return fail(TuplesAgree, "%v killed by a packet of %v with action %v", key, k, v.Action)
				}
				if v.Action == fsm.Delete && ev.Entry.Conn.State != v.New {
					return fail(TuplesAgree, "DESTROY of %v shows %s, the packet moved it to %s", key, h.C.name(ev.Entry.Conn.State), h.C.name(v.New))
				}
			case table.ReasonEvicted:
				h.Evicts++
				if v.Action != fsm.Create && v.Action != fsm.Recreate {
					return fail(Bounded, "%v evicted by a packet with action %v", key, v.Action)
				}
				if !h.C.Evictable(&e.conn, now) {
					return fail(Bounded, "early drop evicted %v, an assured entry in %s", key, h.C.name(e.conn.State))
				}
			default:
				return fail(TuplesAgree, "DESTROY of %v with reason %v", key, ev.Reason)
			}
			if ev.Entry.Counters != e.counters {
				return fail(TuplesAgree, "DESTROY of %v counts %+v, its packets make %+v", key, ev.Entry.Counters, e.counters)
			}
			delete(h.shadow, key)
		case table.EventNew:
			if created || v.Dropped || (v.Action != fsm.Create && v.Action != fsm.Recreate) || ev.Entry.Ref != v.Ref || ev.Entry.Key != k {
				return fail(TuplesAgree, "NEW event for %v %v after a packet of %v with action %v", ev.Entry.Key, ev.Entry.Ref, k, v.Action)
			}
			created = true
		case table.EventUpdate:
			if !hadEntry || ev.Entry.Ref != before.Ref {
				return fail(TuplesAgree, "UPDATE event for %v after a packet of %v", ev.Entry.Key, k)
			}
		}
	}
	if hadEntry {
		if _, e := h.byRef(before.Ref); e != nil && (v.Action == fsm.Delete || v.Action == fsm.Recreate) {
			return fail(TuplesAgree, "entry %v still held after action %v", before.Key, v.Action)
		}
	}
	switch v.Action {
	case fsm.Delete:
		if hasEntry {
			return fail(TuplesAgree, "entry still found after delete")
		}
		if _, _, ok := Lookup(h.Tr, k.Reverse(), now); ok {
			return fail(TuplesAgree, "entry still found by the reverse tuple after delete")
		}
	case fsm.Create, fsm.Recreate:
		if v.Dropped {
			break
		}
		if !created || !hasEntry || after.Key != k {
			return fail(TuplesAgree, "action %v: NEW event %v, entry found %v with original tuple %v, want %v", v.Action, created, hasEntry, after.Key, k)
		}
		if _, e := h.byRef(after.Ref); e != nil {
			return fail(TuplesAgree, "new entry of %v reuses the handle of a live one", k)
		}
		if e, ok := h.shadow[k]; ok {
			return fail(TuplesAgree, "entry %v created while %v (ref %v) still held it", k, k, e.ref)
		}
		if e, ok := h.shadow[k.Reverse()]; ok {
			return fail(TuplesAgree, "entry %v created while its reverse (ref %v) is still held", k, e.ref)
		}
		h.shadow[k] = &shadowEntry{ref: after.Ref, conn: after.Conn, counters: fresh}
		return h.expect(k, h.shadow[k], now)
	case fsm.None, fsm.Update:
		if !hadEntry {
			if hasEntry {
				return fail(TuplesAgree, "action %v on a packet without an entry left %v", v.Action, after.Key)
			}
			break
		}
		if !hasEntry || after.Ref != before.Ref {
			return fail(TuplesAgree, "action %v: entry %v gone or replaced", v.Action, before.Key)
		}
		if v.Action == fsm.None && after.Conn != before.Conn {
			return fail(TuplesAgree, "action none changed the entry %v", before.Key)
		}
		old.conn = after.Conn
		return h.expect(after.Key, old, now)
	}
	return nil
}

// expect checks that orig's entry is found from both tuples and holds
// what the shadow says.
func (h *Harness) expect(orig table.Key, want *shadowEntry, now int64) error {
	rev := orig.Reverse()
	if rev.Reverse() != orig || rev == orig {
		return fail(TuplesAgree, "reverse of %v is %v, whose reverse is %v", orig, rev, rev.Reverse())
	}
	e1, d1, ok1 := Lookup(h.Tr, orig, now)
	e2, d2, ok2 := Lookup(h.Tr, rev, now)
	if !ok1 || !ok2 {
		return fail(TuplesAgree, "entry %v not found (original %v, reply %v)", orig, ok1, ok2)
	}
	if e1.Ref != e2.Ref || e1.Ref != want.ref || d1 != fsm.Original || d2 != fsm.Reply {
		return fail(TuplesAgree, "tuples of %v find different entries or directions: %v/%v %v/%v, want %v", orig, e1.Ref, d1, e2.Ref, d2, want.ref)
	}
	if e1.Key != orig || e2.Key != orig {
		return fail(TuplesAgree, "entry's original tuple is %v, want %v", e1.Key, orig)
	}
	if e1.Conn != want.conn {
		return fail(TuplesAgree, "tracker holds %+v, the verdicts left %+v", e1.Conn, want.conn)
	}
	if e1.Counters != want.counters {
		return fail(TuplesAgree, "entry %v counts %+v, its packets make %+v", orig, e1.Counters, want.counters)
	}
	return nil
}

// CheckTable checks the whole-table invariants at now: every entry the
// verdicts left is found from both tuples until its deadline and never
// after, nothing else is in the table, no entry outlives its state's
// bound, and the table never holds more than its limit.
func (h *Harness) CheckTable(now int64) error {
	if n := h.Tr.Len(); n > h.Max {
		return fail(Bounded, "table holds %d entries, limit %d", n, h.Max)
	}
	live := 0
	for k, e := range h.shadow {
		if dl := e.conn.Deadline; dl <= now {
			for _, kk := range []table.Key{k, k.Reverse()} {
				if _, _, ok := Lookup(h.Tr, kk, now); ok {
					return fail(TimeoutBound, "entry %v still found %d ns after its deadline", kk, now-dl)
				}
			}
			continue
		}
		live++
		e1, d1, ok1 := Lookup(h.Tr, k, now)
		e2, d2, ok2 := Lookup(h.Tr, k.Reverse(), now)
		if !ok1 || !ok2 || e1.Ref != e2.Ref || e1.Ref != e.ref || d1 != fsm.Original || d2 != fsm.Reply {
			return fail(TuplesAgree, "entry %v: original lookup %v %v %v, reply lookup %v %v %v", k, e1.Ref, d1, ok1, e2.Ref, d2, ok2)
		}
	}
	n := 0
	var err error
	Entries(h.Tr, now, func(en *tcpct.Entry) bool {
		n++
		e, ok := h.shadow[en.Key]
		switch {
		case !ok:
			err = fail(TuplesAgree, "table holds %v, which no verdict created", en.Key)
		case en.Ref != e.ref || en.Conn != e.conn:
			err = fail(TuplesAgree, "entry %v %v holds %+v, the verdicts left %v %+v", en.Key, en.Ref, en.Conn, e.ref, e.conn)
		case en.Counters != e.counters:
			err = fail(TuplesAgree, "entry %v counts %+v, its packets make %+v", en.Key, en.Counters, e.counters)
		case en.Conn.Deadline-now > h.C.Bound(en.Conn.State):
			err = fail(TimeoutBound, "entry %v in %s has %d ns left, bound %d", en.Key, h.C.name(en.Conn.State), en.Conn.Deadline-now, h.C.Bound(en.Conn.State))
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if n > h.Max || n != live {
		return fail(Bounded, "range saw %d entries, %d are live, limit %d", n, live, h.Max)
	}
	return nil
}

// Advance expires the table at now (a pause with no packets) and checks
// that exactly the expired entries are gone, each with a DESTROY event.
func (h *Harness) Advance(now int64) error {
	Expire(h.Tr, now)
	if err := h.drain(); err != nil {
		return err
	}
	for i := range h.events {
		ev := &h.events[i]
		key, e := h.byRef(ev.Entry.Ref)
		switch {
		case ev.Type != table.EventDestroy || ev.Reason != table.ReasonExpired:
			return fail(TimeoutBound, "expiry at %d emitted %v (%v) for %v", now, ev.Type, ev.Reason, ev.Entry.Key)
		case e == nil:
			return fail(TuplesAgree, "expiry destroyed %v, which no verdict created", ev.Entry.Key)
		case e.conn.Deadline > now:
			return fail(TimeoutBound, "expiry at %d destroyed %v, %d ns before its deadline", now, key, e.conn.Deadline-now)
		case ev.Entry.Counters != e.counters:
			return fail(TuplesAgree, "DESTROY of %v counts %+v, its packets make %+v", key, ev.Entry.Counters, e.counters)
		}
		delete(h.shadow, key)
	}
	for k, e := range h.shadow {
		if e.conn.Deadline <= now {
			return fail(TimeoutBound, "after expiry at %d the tracker still holds %v (deadline %d)", now, k, e.conn.Deadline)
		}
	}
	if n := h.Tr.Len(); n != len(h.shadow) {
		return fail(TimeoutBound, "after expiry the table holds %d entries, %d are unexpired", n, len(h.shadow))
	}
	return h.CheckTable(now)
}

// Live returns the number of entries the verdicts left that have not gone
// away (expired ones included until the tracker reclaims them).
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

// Key is the tuple packet p was sent with.
func (tr *Trace) Key(p *Packet) table.Key {
	k := tr.Keys[p.Conn]
	if p.Dir == fsm.Reply {
		return k.Reverse()
	}
	return k
}

// Run replays a trace sequentially through a fresh tracker built from cfg,
// checking every invariant, and returns the verdicts.
func Run(cfg tcpct.Config, tr *Trace) ([]fsm.Verdict, error) {
	h, err := NewHarness(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]fsm.Verdict, len(tr.Packets))
	for i := range tr.Packets {
		p := &tr.Packets[i]
		st, _, err := h.Packet(tr.Key(p), p.Seg, p.Now)
		if err != nil {
			return out[:i], fmt.Errorf("packet %d (conn %d %v %v seq=%d ack=%d len=%d at %d): %w", i, p.Conn, p.Dir, p.Seg.Flags, p.Seg.Seq, p.Seg.Ack, p.Seg.Len, p.Now, err)
		}
		out[i] = st.V
	}
	return out, nil
}

// RunConcurrent replays a trace with its connections spread over workers
// goroutines (each connection's packets stay in order on one goroutine)
// through one tracker built from cfg with a table large enough that no
// entry is early-dropped, and returns the verdicts in trace order. The
// goroutines run the packets of one instant at a time and meet before the
// clock moves on: a tracker's clock must not go back (an entry a
// goroutine ahead in time saw expire may already be reclaimed), so the
// concurrency is that of packets seen at the same time on several CPUs.
func RunConcurrent(cfg tcpct.Config, tr *Trace, workers int) ([]fsm.Verdict, error) {
	cfg.Knobs = append(append([]string(nil), cfg.Knobs...), fmt.Sprintf("max=%d", len(tr.Keys)+1))
	t, err := NewTracker(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]fsm.Verdict, len(tr.Packets))
	for lo := 0; lo < len(tr.Packets); {
		hi := lo + 1
		for hi < len(tr.Packets) && tr.Packets[hi].Now == tr.Packets[lo].Now {
			hi++
		}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					p := &tr.Packets[i]
					if p.Conn%workers != w {
						continue
					}
					seg := p.Seg
					out[i] = Track(t, tr.Key(p), &seg, p.Now).Verdict
				}
			}(w)
		}
		wg.Wait()
		lo = hi
	}
	return out, nil
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
