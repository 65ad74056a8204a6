package tcpct

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// max=0 is the kernel's nf_conntrack_max = 0: no limit. The table grows
// from 1,024 entries to hold 20,000 live ones, and every verdict (state,
// reason, deadline, drop) is the one a tracker with room to spare gives.
func TestNoLimitSameVerdicts(t *testing.T) {
	const conns, arrival = 60000, 50 * time.Microsecond // 20,000 live
	want, _, wantStats := steadyRun(t, conns, arrival, 1, []string{"max=200000", "tcp_timeout_time_wait=1"})
	got, _, st := steadyRun(t, conns, arrival, 1, []string{"max=0", "tcp_timeout_time_wait=1"})
	if got != want {
		t.Errorf("verdicts differ from a tracker with room to spare")
	}
	if st.Dropped != 0 || st.Table.Drop != 0 || st.Table.EarlyDrop != 0 {
		t.Errorf("stats %+v: a tracker without a limit dropped", st)
	}
	if st.Table.Entries != wantStats.Table.Entries || st.Table.Expired != wantStats.Table.Expired || st.Table.Insert != wantStats.Table.Insert {
		t.Errorf("entries/expired/inserted %d/%d/%d, want %d/%d/%d", st.Table.Entries, st.Table.Expired, st.Table.Insert,
			wantStats.Table.Entries, wantStats.Table.Expired, wantStats.Table.Insert)
	}
}

// Goroutines tracking in parallel through growth: every connection is
// created, none dropped, and each is found afterwards in both directions.
func TestNoLimitConcurrent(t *testing.T) {
	tr, err := New(Config{Knobs: []string{"max=0"}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Max() != 0 || tr.Config().Max() != 0 {
		t.Fatalf("Max %d, Config().Max %d; want 0 (no limit)", tr.Max(), tr.Config().Max())
	}
	const workers, per = 4, 5000
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := netip.MustParseAddrPort("10.200.0.1:443")
	cli := func(w, i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)}), 40000)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkts := make([]Packet, 0, 8)
			out := make([]Verdict, 8)
			for i := range per {
				syn := Packet{Key: KeyOf(cli(w, i), srv), Segment: fsm.Segment{Seq: 1, Flags: spec.SYN, Win: 1000, HdrLen: 20}, Time: now}
				if i%2 == 0 {
					if v := tr.TrackSegment(cli(w, i), srv, &syn.Segment, now); v.CT != CTNew || v.Dropped {
						t.Errorf("worker %d conn %d: %v", w, i, v.String())
						return
					}
					continue
				}
				pkts = append(pkts, syn)
				if len(pkts) == cap(pkts) || i == per-1 {
					tr.TrackBatch(pkts, out)
					for j := range pkts {
						if out[j].CT != CTNew || out[j].Dropped {
							t.Errorf("worker %d batch: %v", w, out[j].String())
							return
						}
					}
					pkts = pkts[:0]
				}
			}
		}()
	}
	// A reader meanwhile.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			tr.Range(now, func(e *Entry) bool { return e.Key.IsZero() == false })
			tr.Lookup(cli(0, 0), srv, now)
		}
	}()
	wg.Wait()
	<-done
	if n := tr.Len(); n != workers*per {
		t.Fatalf("Len %d, want %d", n, workers*per)
	}
	for w := range workers {
		for i := range per {
			if _, d, ok := tr.Lookup(srv, cli(w, i), now); !ok || d != fsm.Reply {
				t.Fatalf("worker %d conn %d: reply tuple not found (%v %v)", w, i, ok, d)
			}
		}
	}
	if st := tr.Stats(); st.Dropped != 0 || st.Table.EarlyDrop != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoLimitKnob(t *testing.T) {
	if _, err := New(Config{Knobs: []string{"max=-1"}}); err == nil {
		t.Error("max=-1 accepted")
	}
	r, err := Config{Knobs: []string{"nf_conntrack_max=0"}}.Resolve()
	if err != nil || r.Max() != 0 {
		t.Fatalf("nf_conntrack_max=0: %v, Max %d", err, r.Max())
	}
}
