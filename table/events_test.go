package table

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEvents(t *testing.T) {
	tb := newTable(t, 8)
	sub := tb.Subscribe(32)
	k := key4(1)
	m := Meta{Deadline: 120 * sec, State: stSynSent}
	r := mustInsert(t, tb, k, mkval(1), m, 0)

	// State change -> UPDATE; deadline-only refresh -> no event.
	v, m, _ := tb.Acquire(r)
	m.State, m.Deadline = stSynRecv, sec+60*sec
	tb.Commit(r, &v, &m, sec)
	v, m, _ = tb.Acquire(r)
	m.Deadline = 2*sec + 60*sec
	tb.Commit(r, &v, &m, 2*sec)
	// Flag change alone (SEEN_REPLY) -> UPDATE.
	v, m, _ = tb.Acquire(r)
	m.Flags |= SeenReply
	tb.Commit(r, &v, &m, 3*sec)
	// ASSURED + state -> UPDATE.
	v, m, _ = tb.Acquire(r)
	m.State, m.Flags, m.Deadline = stEstablished, m.Flags|Assured, 4*sec+432000*sec
	v.W[1] = 77
	v.Sum = v.sum()
	tb.Commit(r, &v, &m, 4*sec)
	tb.Delete(r, ReasonKilled, 5*sec)

	// An expired one, destroyed by Expire.
	k2 := key6(2)
	r2 := mustInsert(t, tb, k2, mkval(2), Meta{Deadline: 10 * sec, State: stEstablished, Flags: Assured | SeenReply}, 6*sec)
	tb.Expire(20 * sec)

	evs := drain(sub)
	type ev struct {
		Type   EventType
		Reason Reason
		State  uint8
		Ref    Ref
	}
	want := []ev{
		{EventNew, ReasonNone, stSynSent, r},
		{EventUpdate, ReasonNone, stSynRecv, r},
		{EventUpdate, ReasonNone, stSynRecv, r},
		{EventUpdate, ReasonNone, stEstablished, r},
		{EventDestroy, ReasonKilled, stEstablished, r},
		{EventNew, ReasonNone, stEstablished, r2},
		{EventDestroy, ReasonExpired, stEstablished, r2},
	}
	var got []ev
	for _, e := range evs {
		got = append(got, ev{e.Type, e.Reason, e.Meta.State, e.Ref})
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b Ref) bool { return a == b })); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if evs[3].V.W[1] != 77 || evs[3].Meta.Flags != Assured|SeenReply || evs[3].Time != 4*sec || evs[3].Key != k {
		t.Errorf("update event carries %+v", evs[3])
	}
	for i, e := range evs {
		if e.SameState != (i == 2) {
			t.Errorf("event %d: SameState %v; only the flag-only UPDATE (event 2) has it", i, e.SameState)
		}
	}
	if evs[4].V.W[1] != 77 || evs[4].Time != 5*sec {
		t.Errorf("destroy event carries the wrong value/time: %+v", evs[4])
	}
	if evs[6].Key != k2 || evs[6].Time != 20*sec {
		t.Errorf("expire event %+v", evs[6])
	}

	// Rendering of the stream as conntrack -E prints it.
	var buf bytes.Buffer
	for i := range evs {
		e := tb.EventEntry(&evs[i])
		if err := FormatEvent(&buf, evs[i].Type, &e); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	wantLines := []string{
		"    [NEW] tcp      6 120 SYN_SENT src=10.0.0.0 dst=192.168.0.1 sport=1025 dport=80 [UNREPLIED] src=192.168.0.1 dst=10.0.0.0 sport=80 dport=1025",
		" [UPDATE] tcp      6 60 SYN_RECV src=10.0.0.0 dst=192.168.0.1 sport=1025 dport=80 [UNREPLIED] src=192.168.0.1 dst=10.0.0.0 sport=80 dport=1025",
		// Flags only: no state, as the kernel prints it (Event.SameState).
		" [UPDATE] tcp      6 59 src=10.0.0.0 dst=192.168.0.1 sport=1025 dport=80 src=192.168.0.1 dst=10.0.0.0 sport=80 dport=1025",
		" [UPDATE] tcp      6 432000 ESTABLISHED src=10.0.0.0 dst=192.168.0.1 sport=1025 dport=80 src=192.168.0.1 dst=10.0.0.0 sport=80 dport=1025 [ASSURED]",
		// Killed 1 s after its refresh, with time left: the kernel prints
		// that time (Linux 6.18, conntrack -D of a fresh ESTABLISHED entry:
		// "[DESTROY] tcp      6 431999 ESTABLISHED ..."). The expiry below
		// has none left and prints none.
		"[DESTROY] tcp      6 431999 ESTABLISHED src=10.0.0.0 dst=192.168.0.1 sport=1025 dport=80 src=192.168.0.1 dst=10.0.0.0 sport=80 dport=1025 [ASSURED]",
		"    [NEW] tcp      6 4 ESTABLISHED src=2001:db8::1 dst=2001:db8:ff00::2 sport=1026 dport=443 src=2001:db8:ff00::2 dst=2001:db8::1 sport=443 dport=1026 [ASSURED]",
		"[DESTROY] tcp      6 ESTABLISHED src=2001:db8::1 dst=2001:db8:ff00::2 sport=1026 dport=443 src=2001:db8:ff00::2 dst=2001:db8::1 sport=443 dport=1026 [ASSURED]",
	}
	for i := range wantLines {
		if i >= len(lines) || lines[i] != wantLines[i] {
			got := ""
			if i < len(lines) {
				got = lines[i]
			}
			t.Errorf("line %d:\n got %q\nwant %q", i, got, wantLines[i])
		}
	}

	// Close stops delivery.
	sub.Close()
	mustInsert(t, tb, key4(3), mkval(3), Meta{Deadline: 100 * sec}, 0)
	if e := drain(sub); len(e) != 0 {
		t.Fatalf("closed subscription received %d events", len(e))
	}
}

// A subscriber that does not read loses events; the table never blocks and
// counts every loss.
func TestSlowSubscriberLoses(t *testing.T) {
	const n = 200
	tb := newTable(t, n)
	sub := tb.Subscribe(5)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			r := mustInsert(t, tb, key4(uint32(i)), mkval(0), Meta{Deadline: 10 * sec}, 0)
			v, m, _ := tb.Acquire(r)
			m.State = stEstablished
			tb.Commit(r, &v, &m, 0)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("table blocked on a full subscriber")
	}
	got := len(drain(sub))
	if got != 5 || sub.Lost() != 2*n-5 || tb.Stats().EventsLost != 2*n-5 {
		t.Fatalf("received %d, lost %d (stats %d), want 5 and %d", got, sub.Lost(), tb.Stats().EventsLost, 2*n-5)
	}
	// Receiving + lost accounts for every event even with a concurrent,
	// slow reader.
	sub2 := tb.Subscribe(3)
	var received atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sub2.C():
				received.Add(1)
				time.Sleep(time.Microsecond)
			case <-stop:
				return
			}
		}
	}()
	tb.Expire(20 * sec) // n DESTROY events
	for len(sub2.C()) > 0 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if received.Load()+int64(sub2.Lost()) != n {
		t.Fatalf("received %d + lost %d != %d", received.Load(), sub2.Lost(), n)
	}
}

// Range concurrent with updates, inserts and deletes: stable entries are
// each seen exactly once, no entry twice, every snapshot consistent.
func TestRangeConcurrent(t *testing.T) {
	const stable, churn = 300, 300
	tb := newTable(t, stable+churn)
	refs := make([]Ref, stable)
	for i := range refs {
		refs[i] = mustInsert(t, tb, key4(uint32(i)), mkval(uint64(i)), Meta{Deadline: 1 << 62}, 0)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // updates
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			r := refs[i%stable]
			v, m, ok := tb.Acquire(r)
			if !ok {
				continue
			}
			v.W[2]++
			v.Sum = v.sum()
			m.State = uint8(i % 5)
			tb.Commit(r, &v, &m, 0)
		}
	}()
	go func() { // churn in other keys
		defer wg.Done()
		var live []Ref
		for i := 0; !stop.Load(); i++ {
			if len(live) < churn/2 || i%2 == 0 && len(live) < churn {
				r, _, st := tb.Insert(key4(uint32(100000+i)), mkval(0), Meta{Deadline: 1 << 62}, 0)
				if st == Inserted {
					live = append(live, r)
				}
			} else {
				j := i % len(live)
				tb.Delete(live[j], ReasonKilled, 0)
				live[j] = live[len(live)-1]
				live = live[:len(live)-1]
			}
		}
	}()
	passes := 50
	if long() {
		passes = 2000
	}
	for p := 0; p < passes; p++ {
		seen := map[Key]int{}
		byRef := map[Ref]int{}
		for s := range tb.All(0) {
			seen[s.Key]++
			byRef[s.Ref]++
			if !s.V.ok() {
				t.Fatalf("torn value in Range: %+v", s)
			}
		}
		for k, c := range seen {
			if c != 1 {
				t.Fatalf("pass %d: key %v seen %d times", p, k, c)
			}
		}
		for r, c := range byRef {
			if c != 1 {
				t.Fatalf("pass %d: ref %v seen %d times", p, r, c)
			}
		}
		for i := 0; i < stable; i++ {
			if seen[key4(uint32(i))] != 1 {
				t.Fatalf("pass %d: stable entry %d seen %d times", p, i, seen[key4(uint32(i))])
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	// Early stop of the iterator.
	n := 0
	for range tb.All(0) {
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatal("All did not stop")
	}
}

func TestCounters(t *testing.T) {
	tb := newTable(t, 2)
	a := mustInsert(t, tb, key4(1), mkval(1), Meta{Deadline: 10}, 0) // unassured
	mustInsert(t, tb, key4(2), mkval(2), Meta{Deadline: 100, Flags: Assured}, 0)
	tb.Lookup(key4(1), 0)                                                // found
	tb.Lookup(key4(1).Reverse(), 0)                                      // found
	tb.Lookup(key4(3), 0)                                                // not found
	tb.Insert(key4(2), mkval(0), Meta{}, 0)                              // clash
	tb.Insert(key4(4), mkval(0), Meta{Deadline: 100, Flags: Assured}, 0) // evicts key 1
	tb.Insert(key4(5), mkval(0), Meta{Deadline: 100}, 0)                 // dropped: both assured
	tb.AddInvalid()
	tb.AddInvalid()
	if tb.Delete(a, ReasonKilled, 0) {
		t.Fatal("evicted entry deleted")
	}
	want := Stats{Entries: 2, Found: 2, Insert: 3, Drop: 1, EarlyDrop: 1, Invalid: 2, ClashResolve: 1}
	got := tb.Stats()
	got.SearchRestart = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stats (-want +got):\n%s", diff)
	}
	line := string(AppendStats(nil, &got))
	wantLine := "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n" +
		"00000002 00000001 00000002 00000000 00000002 00000000 00000000 00000000 00000003 00000000 00000001 00000001 00000000 00000000 00000000 00000000 00000000\n"
	if line != wantLine {
		t.Fatalf("AppendStats:\n%q\nwant\n%q", line, wantLine)
	}
	if tb.Max() != 2 {
		t.Fatal("Max")
	}
}

// TestRemoveAs: Held returns what the entry holds; RemoveAs deletes it
// and its DESTROY event carries the value and state given, not the stored
// ones (the tracker's SYN answered by RST: CLOSE, not SYN_SENT). No other
// event comes out of the final write, and both tuples stop finding it.
func TestRemoveAs(t *testing.T) {
	tb := newTable(t, 8)
	k := key4(3)
	m := Meta{Deadline: 120 * sec, State: stSynSent}
	r := mustInsert(t, tb, k, mkval(3), m, 0)
	sub := tb.Subscribe(8)
	got, _, ok := tb.Acquire(r)
	if !ok {
		t.Fatal("Acquire failed")
	}
	hv, hm := tb.Held(r)
	if hv != got || hm != m {
		t.Fatalf("Held = %+v %+v, want %+v %+v", hv, hm, got, m)
	}
	last := mkval(4)
	lm := Meta{Deadline: 120 * sec, State: stEstablished}
	tb.RemoveAs(r, last, lm, ReasonKilled, sec)
	evs := drain(sub)
	if len(evs) != 1 || evs[0].Type != EventDestroy || evs[0].Reason != ReasonKilled ||
		evs[0].V != last || evs[0].Meta.State != stEstablished || evs[0].Meta.Deadline != 120*sec || evs[0].Time != sec {
		t.Fatalf("events %+v, want one DESTROY carrying the last value and state", evs)
	}
	for _, key := range []Key{k, k.Reverse()} {
		if _, _, found := tb.Get(key, sec); found {
			t.Errorf("%v still found", key)
		}
	}
	checkConsistent(t, tb, sec)
	if n := tb.Len(); n != 0 {
		t.Errorf("Len %d after RemoveAs", n)
	}
}

// TestCommitStateChange: a Commit whose Meta carries StateChange sends an
// UPDATE with the state even though the stored state is unchanged, and the
// bit is neither stored nor passed on in the event.
func TestCommitStateChange(t *testing.T) {
	tb := newTable(t, 8)
	k := key4(5)
	r := mustInsert(t, tb, k, mkval(5), Meta{Deadline: 60 * sec, State: stSynRecv, Flags: SeenReply}, 0)
	sub := tb.Subscribe(8)
	for _, f := range []Flags{0, StateChange} {
		v, m, _ := tb.Acquire(r)
		m.Flags |= f
		tb.Commit(r, &v, &m, sec)
	}
	evs := drain(sub)
	if len(evs) != 1 || evs[0].Type != EventUpdate || evs[0].SameState || evs[0].Meta.State != stSynRecv || evs[0].Meta.Flags != SeenReply {
		t.Fatalf("events %+v; want one UPDATE in SYN_RECV, not SameState, flags SeenReply", evs)
	}
	if _, m, _ := tb.Acquire(r); m.Flags != SeenReply {
		t.Errorf("stored flags %v, want SeenReply only", m.Flags)
	} else {
		tb.Abort(r)
	}
}
