package tcpct

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// batchLoad is conns connections, each a handshake, data and a FIN close
// in both orders of arrival, interleaved several at a time the way a
// capture interleaves them, with some connections reopened after
// TIME_WAIT and some SYNs retransmitted: packets that create, update,
// refile and expire entries.
func batchLoad(conns int) []Packet {
	srv := netip.MustParseAddrPort("10.200.0.1:443")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		rev      bool
		flags    spec.Flags
		seq, ack uint32
	}
	steps := []step{{false, spec.SYN, 100, 0}, {false, spec.SYN, 100, 0}, {true, spec.SYN | spec.ACK, 500, 101},
		{false, spec.ACK, 101, 501}, {false, spec.ACK | spec.PSH, 101, 501}, {true, spec.ACK, 501, 111},
		{false, spec.FIN | spec.ACK, 111, 501}, {true, spec.FIN | spec.ACK, 501, 112}, {false, spec.ACK, 112, 502}}
	const together = 5
	var pkts []Packet
	now := t0
	for b := 0; b < conns; b += together {
		for si, s := range steps {
			for c := b; c < b+together && c < conns; c++ {
				if si == 1 && c%3 != 0 {
					continue // only some SYNs are retransmitted
				}
				// A tuple comes back every 13 connections, within
				// TIME_WAIT (a reopen) unless a pause came between.
				cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, 1}), uint16(20000+c%13))
				src, dst := cli, srv
				if s.rev {
					src, dst = srv, cli
				}
				seg := Segment{Seq: s.seq, Ack: s.ack, Flags: s.flags, Win: 65535, HdrLen: 20}
				if s.flags&spec.PSH != 0 {
					seg.Len = 10
				}
				pkts = append(pkts, Packet{Key: KeyOf(src, dst), Segment: seg, Time: now})
				now = now.Add(7 * time.Millisecond)
			}
		}
		if b%40 == 0 {
			now = now.Add(3 * time.Second) // every TIME_WAIT expires
		}
	}
	return pkts
}

// TrackBatch is TrackSegment packet by packet, counters included: the
// same verdicts and the same Stats, whatever the batch length, although
// the batch path counts packets and found entries once per batch
// (table.AcquireKeyTally) and prefetches what creates will write. Found
// counts the packets that met an entry.
func TestBatchIsTrackSegment(t *testing.T) {
	pkts := batchLoad(300)
	knobs := []string{"tcp_timeout_time_wait=2", "tcp_timeout_syn_sent=3"}
	one, err := New(Config{Seed: 1, Knobs: knobs})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Verdict, len(pkts))
	for i := range pkts {
		p := &pkts[i]
		want[i] = one.TrackSegment(netip.AddrPortFrom(p.Key.Src(), p.Key.SrcPort()), netip.AddrPortFrom(p.Key.Dst(), p.Key.DstPort()), &p.Segment, p.Time)
		want[i].Ref = table.Ref{}
	}
	ws := one.Stats()
	if ws.Table.Expired == 0 || ws.Table.Killed == 0 || ws.Table.Found == 0 {
		t.Fatalf("the load neither expires nor reopens: %+v", ws.Table)
	}
	for _, n := range []int{1, 3, 16, 100} {
		tr, _ := New(Config{Seed: 2, Knobs: knobs})
		out := make([]Verdict, len(pkts))
		for i := 0; i < len(pkts); i += n {
			j := min(i+n, len(pkts))
			tr.TrackBatch(pkts[i:j], out[i:j])
		}
		for i := range out {
			out[i].Ref = table.Ref{}
			if out[i] != want[i] {
				t.Fatalf("batches of %d, packet %d: %s, TrackSegment %s", n, i, out[i].String(), want[i].String())
			}
		}
		st := tr.Stats()
		st.Table.SearchRestart = ws.Table.SearchRestart
		if st != ws {
			t.Fatalf("batches of %d: stats\n%+v\nTrackSegment's\n%+v", n, st, ws)
		}
	}
}
