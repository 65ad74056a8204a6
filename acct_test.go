package tcpct_test

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/packet"
	"github.com/fdac824a/tcpct/table"

	"github.com/google/go-cmp/cmp"
)

// TestAcctCountsWhatTheKernelCounts follows the acct knob's counters
// through a connection, packet by packet. The kernel counts a packet
// where it refreshes the entry's timer (nf_ct_refresh_acct): not a SYN
// retransmitted before any reply (which keeps the timer), not an ignored
// packet, not an INVALID one. Bytes are the IP packet's length, options
// included. conformance.TestKernelTableDump checks the same rules against
// Linux on generated traces.
func TestAcctCountsWhatTheKernelCounts(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	const c, s = 1000, 5000
	syn := pkt(t, cli, srv, packet.SYN, c, 0, 0) // 20 + 20 + 12 bytes of options
	steps := []struct {
		raw       []byte
		accounted bool
		why       string
	}{
		{syn, true, "creates the entry"},
		{syn, false, "retransmitted SYN before a reply: the timer is kept"},
		{pkt(t, srv, cli, packet.SYN|packet.ACK, s, c+1, 0), true, "SYN/ACK"},
		{pkt(t, cli, srv, packet.ACK, c+1, s+1, 0), true, "ACK: ESTABLISHED"},
		{pkt(t, cli, srv, packet.ACK, c+1, s+1, 100), true, "data"},
		{pkt(t, cli, srv, packet.SYN, c+500, 0, 0), false, "a SYN in ESTABLISHED is ignored"},
		{pkt(t, srv, cli, packet.ACK, s+1, c+1+100+1_000_000, 0), false, "an ACK of data never sent is INVALID"},
		{pkt(t, srv, cli, packet.ACK, s+1, c+101, 10), true, "reply data"},
	}
	tr := newTracker(t, tcpct.Config{Knobs: []string{"max=16", "acct=1"}})
	var want table.Counters
	for i, st := range steps {
		v, err := tr.Track(st.raw, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if v.Accounted != st.accounted {
			t.Fatalf("packet %d (%s): Accounted %v, verdict %s", i, st.why, v.Accounted, v.String())
		}
		if st.accounted {
			want.Packets[v.Dir]++
			want.Bytes[v.Dir] += uint64(len(st.raw))
		}
		e, _, ok := tr.Lookup(cli, srv, t0.Add(time.Second))
		if !ok {
			t.Fatalf("packet %d: no entry", i)
		}
		if diff := cmp.Diff(want, e.Counters); diff != "" {
			t.Fatalf("packet %d (%s): counters (-want +got):\n%s", i, st.why, diff)
		}
	}
	e := mustEntry(t, tr, cli, srv)
	line := string(e.AppendConntrack(nil, t0.Add(time.Second)))
	if want := "dport=80 packets=3 bytes=232 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=2 bytes=102 [ASSURED]"; !strings.Contains(line, want) {
		t.Fatalf("conntrack line %q lacks %q", line, want)
	}

	// Without the knob nothing is counted or printed.
	off := newTracker(t, tcpct.Config{})
	for _, st := range steps {
		if _, err := off.Track(st.raw, t0); err != nil {
			t.Fatal(err)
		}
	}
	e = mustEntry(t, off, cli, srv)
	if e.Counters != (table.Counters{}) || strings.Contains(string(e.AppendProc(nil, t0)), "packets=") {
		t.Fatalf("counted without the knob: %+v", e.Counters)
	}
}

func mustEntry(t *testing.T, tr *tcpct.Tracker, src, dst netip.AddrPort) tcpct.Entry {
	t.Helper()
	e, _, ok := tr.Lookup(src, dst, t0.Add(time.Second))
	if !ok {
		t.Fatal("no entry")
	}
	return e
}

// TestAcctConcurrent tracks connections from several goroutines while
// another dumps the table, and checks that no count is lost: the entries'
// counters add up to the packets whose verdicts said Accounted. Run with
// -race it also checks that counting and dumping do not race.
func TestAcctConcurrent(t *testing.T) {
	const workers, conns = 4, 200
	tr := newTracker(t, tcpct.Config{Knobs: []string{"max=4096", "acct=1"}})
	var want [workers]table.Counters
	// A dumper reads every entry's counters while they are counted.
	done := make(chan struct{})
	dumps := make(chan int)
	go func() {
		n := 0
		for {
			tr.Range(t0.Add(time.Minute), func(e *tcpct.Entry) bool {
				_ = e.Counters.Bytes[1]
				return true
			})
			if n++; n == 1 {
				dumps <- n // started
			}
			select {
			case <-done:
				dumps <- n
				return
			default:
				runtime.Gosched() // let the workers run with one CPU
			}
		}
	}()
	<-dumps
	// Each worker's packets, built here (pkt may call t.Fatal): a
	// handshake, data and its answer per connection.
	var pkts [workers][][]byte
	srv := netip.MustParseAddrPort("10.9.9.9:80")
	for w := range workers {
		for i := range conns {
			cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)}), 40000)
			pkts[w] = append(pkts[w],
				pkt(t, cli, srv, packet.SYN, 1000, 0, 0),
				pkt(t, srv, cli, packet.SYN|packet.ACK, 5000, 1001, 0),
				pkt(t, cli, srv, packet.ACK, 1001, 5001, 0),
				pkt(t, cli, srv, packet.ACK, 1001, 5001, 300),
				pkt(t, srv, cli, packet.ACK, 5001, 1301, 30))
		}
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for _, raw := range pkts[w] {
				v, err := tr.Track(raw, t0.Add(time.Second))
				if err != nil {
					errs <- err
					return
				}
				if v.Accounted {
					want[w].Packets[v.Dir]++
					want[w].Bytes[v.Dir] += uint64(len(raw))
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	t.Logf("%d dumps while tracking", <-dumps)
	var sum, total table.Counters
	tr.Range(t0.Add(time.Minute), func(e *tcpct.Entry) bool {
		for d := range 2 {
			sum.Packets[d] += e.Counters.Packets[d]
			sum.Bytes[d] += e.Counters.Bytes[d]
		}
		return true
	})
	for _, c := range want {
		for d := range 2 {
			total.Packets[d] += c.Packets[d]
			total.Bytes[d] += c.Bytes[d]
		}
	}
	if sum != total || total.Packets[0] != workers*conns*3 || total.Packets[1] != workers*conns*2 {
		t.Fatalf("entries count %+v, verdicts %+v (want %d and %d packets)", sum, total, workers*conns*3, workers*conns*2)
	}
}
