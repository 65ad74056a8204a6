package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAcct follows one entry's counters (Config.Acct) through every write
// that can count a packet, and checks that a new connection in a reused
// record starts from zero and that DESTROY events, and only they, carry
// the final counts.
func TestAcct(t *testing.T) {
	tb, err := New[val](Config{Max: 1, Seed: 42, StateNames: testStates, Acct: true})
	if err != nil {
		t.Fatal(err)
	}
	sub := tb.Subscribe(16)
	k := key4(1)
	counters := func(want Counters) {
		t.Helper()
		s, _, ok := tb.Get(k, 0)
		if !ok {
			t.Fatal("entry gone")
		}
		if diff := cmp.Diff(want, s.Counters); diff != "" {
			t.Fatalf("counters (-want +got):\n%s", diff)
		}
	}

	// Insert counts the first packet, original direction.
	r := mustInsert(t, tb, k, mkval(1), Meta{Deadline: 100 * sec, State: stSynSent, Bytes: 60}, 0)
	counters(Counters{Packets: [2]uint64{1, 0}, Bytes: [2]uint64{60, 0}})

	// Commit counts a reply; a write without Bytes counts nothing.
	commit := func(m Meta) {
		t.Helper()
		if _, _, ok := tb.Acquire(r); !ok {
			t.Fatal("Acquire")
		}
		v2 := mkval(2)
		tb.Commit(r, &v2, &m, sec)
	}
	commit(Meta{Deadline: 60 * sec, State: stSynRecv, Flags: SeenReply | PacketReply, Bytes: 52})
	commit(Meta{Deadline: 60 * sec, State: stSynRecv, Flags: SeenReply})
	counters(Counters{Packets: [2]uint64{1, 1}, Bytes: [2]uint64{60, 52}})
	if s, _, _ := tb.Get(k, 0); s.Meta.Flags&PacketReply != 0 || s.Meta.Bytes != 0 {
		t.Fatalf("PacketReply or Bytes stored: %+v", s.Meta)
	}

	// Replace starts the new connection's counts at its first packet; the
	// DESTROY of the old one carries the old counts.
	if _, _, ok := tb.Acquire(r); !ok {
		t.Fatal("Acquire")
	}
	drain(sub)
	r, st := tb.Replace(r, k, mkval(3), Meta{Deadline: 120 * sec, State: stSynSent, Bytes: 40}, 2*sec)
	if st != Inserted {
		t.Fatalf("Replace: %v", st)
	}
	counters(Counters{Packets: [2]uint64{1, 0}, Bytes: [2]uint64{40, 0}})
	evs := drain(sub)
	if len(evs) != 2 || evs[0].Type != EventDestroy || evs[0].Counters != (Counters{Packets: [2]uint64{1, 1}, Bytes: [2]uint64{60, 52}}) {
		t.Fatalf("Replace events %+v", evs)
	}
	if evs[1].Type != EventNew || evs[1].Counters != (Counters{}) {
		t.Fatalf("NEW carries counters: %+v", evs[1])
	}

	// RemoveAs counts the killing packet before the DESTROY reads them.
	if _, _, ok := tb.Acquire(r); !ok {
		t.Fatal("Acquire")
	}
	tb.RemoveAs(r, mkval(4), Meta{Deadline: 10 * sec, State: stTimeWait, Flags: PacketReply, Bytes: 40}, ReasonKilled, 3*sec)
	evs = drain(sub)
	want := Counters{Packets: [2]uint64{1, 1}, Bytes: [2]uint64{40, 40}}
	if len(evs) != 1 || evs[0].Type != EventDestroy || evs[0].Counters != want {
		t.Fatalf("RemoveAs events %+v, want counters %+v", evs, want)
	}
	line := string(AppendEvent(nil, EventDestroy, ptr(tb.EventEntry(&evs[0]))))
	if !strings.Contains(line, "dport=80 packets=1 bytes=40 [UNREPLIED] src=") || !strings.HasSuffix(line, "packets=1 bytes=40\n") {
		t.Fatalf("DESTROY line %q", line)
	}

	// The record is reused (Max 1): the new connection starts from zero,
	// and a write without a packet leaves it there.
	mustInsert(t, tb, k, mkval(5), Meta{Deadline: 100 * sec, State: stSynSent}, 4*sec)
	counters(Counters{})
	for _, ev := range drain(sub) {
		if line := string(AppendEvent(nil, ev.Type, ptr(tb.EventEntry(&ev)))); strings.Contains(line, "packets=") {
			t.Fatalf("%v event prints counters: %q", ev.Type, line)
		}
	}
}

// TestAcctOff: without Config.Acct a write's Bytes count nothing and
// dumps print no counters.
func TestAcctOff(t *testing.T) {
	tb := newTable(t, 4)
	k := key4(1)
	mustInsert(t, tb, k, mkval(1), Meta{Deadline: 100 * sec, State: stSynSent, Bytes: 60}, 0)
	s, _, _ := tb.Get(k, 0)
	if s.Counters != (Counters{}) || tb.Accounting() || tb.acct != nil {
		t.Fatalf("counters %+v without Acct", s.Counters)
	}
	if line := string(AppendProc(nil, ptr(tb.Entry(&s, 0)))); strings.Contains(line, "packets=") {
		t.Fatalf("proc line %q", line)
	}
}

func ptr[T any](v T) *T { return &v }
