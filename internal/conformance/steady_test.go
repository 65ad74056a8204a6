package conformance

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// steadyTimeouts set every TCP timeout to 1 s (the kernel takes whole
// seconds), so that an entry expires in the pause after its last packet.
var steadyTimeouts = []string{
	"tcp_timeout_close=1", "tcp_timeout_close_wait=1", "tcp_timeout_established=1",
	"tcp_timeout_fin_wait=1", "tcp_timeout_last_ack=1", "tcp_timeout_max_retrans=1",
	"tcp_timeout_syn_recv=1", "tcp_timeout_syn_sent=1", "tcp_timeout_time_wait=1",
	"tcp_timeout_unacknowledged=1",
}

// steadyMax is the table limit tcpct runs with in TestKernelSteadyArrival.
const steadyMax = 256

// TestKernelSteadyArrival is the long-capture scenario of the kernel
// differential: a steady arrival of short connections (tracegen.Config.Short:
// an opening, a little data, then a close, an abort or nothing), 32 open
// at a time, every timeout 1 s, in bursts of about 180 connections
// separated by real 1.1 s pauses, so that every entry expires in the
// pause after its last packet. The trace goes through about 3,000
// connections, more than ten times the table limit tcpct runs with
// (max=256), while the entries alive at any moment stay below it. About
// 20 s, nearly all of it the pauses. TCPCT_STEADY_CONNS changes the size:
// the long version, TCPCT_STEADY_CONNS=50000 (400,000 packets), takes 7
// minutes.
//
// The kernel runs the trace first and measures that premise: its
// namespace's entry count after every packet (the count nf_conntrack_max
// is checked against) must stay below 256, and its drop, early_drop and
// insert_failed counters must stay 0. The kernel's own limit cannot be
// lowered for the test: nf_conntrack_max is one value for the whole
// machine, read-only outside the initial namespace. And its count
// includes expired entries until something reclaims them: gc_worker
// (net/netfilter/nf_conntrack_core.c), whose period adapts to the
// timeouts of the whole machine's entries, up to 60 s; a lookup or an
// early drop that walks past them; a read of the table. So the runner
// reads the table at every pause (kernel.Options.Reclaim), as the gc
// would once it came by; the test logs how many expired entries were
// still counted then (on 6.18: all 3,188 of one run, the gc had not come
// by in 20 s). A kernel left to its gc, with nf_conntrack_max=256, would
// have entered its table-full path here (__nf_conntrack_alloc), where
// early_drop frees the expired entries it walks past in 8 buckets but
// lets the new connection in only for a live, unassured victim: it would
// have turned new connections away. tcpct treats an expired entry as
// absent at once, which is the kernel after its gc.
//
// Then tcpct replays the same packets with max=256, twice, with two
// table hash seeds. Each must agree with the kernel on every packet and
// field, and drop or evict nothing (Stats().Dropped, Table.Drop,
// Table.EarlyDrop): with the live set below max, expired entries must
// not count against the limit. (Before expiry was exact, a replay whose
// incremental sweep had a budget of 1 record evicted about 1,900 live
// entries per run and agreed on 91% of the packets.)
func TestKernelSteadyArrival(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	conns := 3000
	if s := os.Getenv("TCPCT_STEADY_CONNS"); s != "" {
		var err error
		if conns, err = strconv.Atoi(s); err != nil || conns < 10*steadyMax {
			t.Fatalf("TCPCT_STEADY_CONNS=%q: want a number of at least %d", s, 10*steadyMax)
		}
	}
	seed := seedFrom("TCPCT_STEADY_SEED")
	note := fmt.Sprintf("seed %d, TCPCT_STEADY_SEED reproduces", seed)
	// About 7.8 packets per connection; a burst of ~1,400 packets takes
	// the runner ~0.2 s, well below the 1 s timeouts, and the 1.1 s
	// pause after it expires every entry, with a margin for the kernel's
	// 4 ms jiffies (the runner never shortens a pause).
	cfg := tracegen.Config{Seed: seed, Packets: conns * 8, Parallel: 32, Short: true,
		Pause: 1100 * time.Millisecond, PauseEvery: 1400, MaxPauses: math.MaxInt}
	pkts := tracegen.Generate(cfg)
	seen := map[int]bool{}
	pauses := 0
	for i, p := range pkts {
		seen[p.Conn] = true
		if i > 0 && p.TS.Sub(pkts[i-1].TS) >= kernel.LongGap {
			pauses++
		}
	}
	if len(seen) < 10*steadyMax {
		t.Fatalf("%d connections, fewer than 10 × max=%d (%s)", len(seen), steadyMax, note)
	}

	start := time.Now()
	r, err := kernel.New(kernel.Options{Sysctls: sysctlMap(steadyTimeouts), Count: true, Reclaim: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(conns/10+60)*time.Second)
	defer cancel()
	runStart := time.Now()
	recs, err := r.Run(ctx, kernelPackets(pkts), true)
	if err != nil {
		t.Fatal(err)
	}
	runTime := time.Since(runStart)
	kstat, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Foreign() != 0 {
		t.Fatalf("the kernel emitted %d TCP packets of its own", r.Foreign())
	}
	kernelTime := time.Since(start)
	peak, peakAt := 0, 0
	for _, rec := range recs {
		if rec.Entries > peak {
			peak, peakAt = rec.Entries, rec.I
		}
	}
	// The pauses re-anchor the pacing, so the run's time beyond them is
	// what the bursts took, which the 1 s timeouts must leave room for.
	burst := (runTime - time.Duration(pauses)*cfg.Pause) / time.Duration(pauses+1)
	t.Logf("kernel: %d packets, %d connections, %d pauses, capture span %v, run %v (bursts %v on average); entries at most %d (after packet %d); %d expired entries still counted when the pauses' reclaims came; stats %v",
		len(recs), len(seen), pauses, pkts[len(pkts)-1].TS.Sub(pkts[0].TS).Round(time.Millisecond), kernelTime.Round(time.Millisecond),
		burst.Round(time.Millisecond), peak, peakAt, r.Reclaimed(), kstat)
	if burst > 700*time.Millisecond {
		t.Fatalf("the runner took %v per burst of packets on average: too slow for this trace's 1 s timeouts (entries would expire within a burst in the kernel but not in the capture); nothing compared", burst)
	}
	if peak == 0 {
		t.Fatal("the kernel's entry count was never read")
	}
	if peak >= steadyMax {
		t.Errorf("the kernel held %d entries after packet %d, not below max=%d: the trace does not fit the table (%s)", peak, peakAt, steadyMax, note)
	}
	for _, c := range []string{"drop", "early_drop", "insert_failed"} {
		if kstat[c] != 0 {
			t.Errorf("kernel: %s = %d, want 0 (%s)", c, kstat[c], note)
		}
	}
	kern := kernelLines(t, recs)

	var pcap bytes.Buffer
	if err := tracegen.WritePcap(&pcap, pkts); err != nil {
		t.Fatal(err)
	}
	knobs := append([]string{"max=" + strconv.Itoa(steadyMax)}, steadyTimeouts...)
	for _, run := range []struct {
		name string
		cfg  tcpct.Config
	}{
		// No output may depend on the hash seed (the early-drop victim
		// would, had the table filled).
		{"seed 1", tcpct.Config{Seed: 1}},
		{"seed 2", tcpct.Config{Seed: 2}},
	} {
		t.Run(run.name, func(t *testing.T) {
			c := run.cfg
			c.Profile, c.Knobs = "linux", knobs
			tr, err := tcpct.New(c)
			if err != nil {
				t.Fatal(err)
			}
			ours, keys := replayWith(t, tr, bytes.NewReader(pcap.Bytes()))
			st := tr.Stats()
			t.Logf("tcpct: %d created, %d expired, %d killed, %d early drops, %d dropped, %d entries held at the end",
				st.Table.Insert, st.Table.Expired, st.Table.Killed, st.Table.EarlyDrop, st.Dropped, st.Table.Entries)
			if st.Dropped != 0 || st.Table.Drop != 0 || st.Table.EarlyDrop != 0 {
				t.Errorf("tcpct with max=%d evicted %d live entries to make room (early drop) and dropped %d packets for a full table (%d table drops), where the kernel never held more than %d entries (%s)",
					steadyMax, st.Table.EarlyDrop, st.Dropped, st.Table.Drop, peak, note)
			}
			report(t, fmt.Sprintf("steady arrival, max=%d, %s (%s)", steadyMax, run.name, note), kern, ours, keys)
		})
	}
}
