package main

import (
	"bufio"
	"fmt"
	"sort"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
)

type summary struct {
	byCT      [8]int
	byState   []int // TCP state after the packet; last slot: no entry
	invalid   [256]int
	ignored   [256]int
	dropped   int
	icmp      [16]int // ICMP errors by outcome (tcpct.ICMPOutcome)
	badSums   int     // TCP segments whose checksum is wrong (engine.sums)
	conns     connCounts
	wallStart time.Time
}

// count adds one packet's verdict to the per-packet counters.
func (s *summary) count(v *tcpct.Verdict) {
	s.byCT[v.CT&7]++
	if v.Entry {
		s.byState[v.State]++
	} else {
		s.byState[len(s.byState)-1]++ // no entry
	}
	switch {
	case v.ICMP.Family != 0:
		s.icmp[v.ICMP.Outcome&15]++
	case v.Dropped:
		s.dropped++
	case v.CT == fsm.CTInvalid:
		s.invalid[v.Reason]++
	case v.Ignored:
		s.ignored[v.Reason]++
	}
}

// add counts one packet (as replaySummary's closure does on one worker).
func (s *summary) add(pk *pktInfo, v *tcpct.Verdict) {
	if pk.badSum {
		s.badSums++
	}
	s.count(v)
	if !pk.icmp { // an ICMP error is not one of its connection's segments
		s.conns.add(pk.shard, v, pk)
	}
}

// printPackets prints the per-packet counters: by conntrack state, by TCP
// state after the packet, INVALID and ignored packets by reason, drops.
func (s *summary) printPackets(w *bufio.Writer, p *fsm.Profile) {
	fmt.Fprintf(w, "\npackets by conntrack state\n")
	for ct := fsm.CTNew; ct <= fsm.CTUntracked; ct++ {
		if n := s.byCT[ct]; n > 0 {
			fmt.Fprintf(w, "  %-12s %10d\n", ct, n)
		}
	}
	fmt.Fprintf(w, "\npackets by TCP state after the packet\n")
	for i, n := range s.byState {
		if n == 0 {
			continue
		}
		name := "(no entry)"
		if i < len(p.StateNames) {
			name = p.StateNames[i]
		}
		fmt.Fprintf(w, "  %-12s %10d\n", name, n)
	}
	printReasons(w, "INVALID packets by reason", &s.invalid)
	printReasons(w, "ignored packets by reason (accepted, no state change)", &s.ignored)
	printICMP(w, &s.icmp)
	if s.dropped > 0 {
		fmt.Fprintf(w, "\ndropped (table full): %d packets\n", s.dropped)
	}
}

// replaySummary counts per packet into fixed arrays and per connection
// into counters indexed by table slot (connCounts: no Go map, no
// allocation per packet or per connection), then prints.
func replaySummary(r *capture.Reader, eng *engine, at atSpec, w *bufio.Writer, name string) walkResult {
	p := eng.profile()
	s := &summary{byState: make([]int, len(p.StateNames)+1), wallStart: time.Now()}
	eng.sums = true // counted whether the checksum knob acts on them or not
	var res walkResult
	if eng.jobs > 1 {
		res = s.replayShards(r, eng, at) // each worker counts its shard
	} else {
		s.conns.init(eng.shardMax())
		res = eng.run(r, at, s.add)
	}
	wall := time.Since(s.wallStart)
	end := at.end(res.last)
	endT := time.Unix(0, end)
	if res.tcp > 0 {
		// Reclaim every entry expired by the end (-at may lie after the
		// last packet), so that "expired" counts them all.
		eng.flush(end)
	}
	st := eng.stats()

	fmt.Fprintf(w, "capture   %s: %d records, %d TCP packets, %d other records skipped", name, res.records, res.tcp-res.icmp, res.skipped)
	if res.icmp > 0 {
		fmt.Fprintf(w, ", %d ICMP errors", res.icmp)
	}
	if res.afterAt > 0 {
		fmt.Fprintf(w, ", %d records after -at not processed", res.afterAt)
	}
	fmt.Fprintf(w, "\n")
	if res.skipped > 0 {
		printSkips(w, &res)
	}
	if res.held > 0 {
		fmt.Fprintf(w, "clock     %d packets stamped earlier than the packet before them were tracked at that packet's time\n", res.held)
	}
	fmt.Fprintf(w, "profile   %s (%s)\n", p.Name, p.Title)
	if res.tcp > 0 {
		fmt.Fprintf(w, "span      %s .. %s (%v)\n", time.Unix(0, res.first).UTC().Format(time.RFC3339Nano),
			time.Unix(0, res.last).UTC().Format(time.RFC3339Nano), time.Duration(res.last-res.first))
		fmt.Fprintf(w, "table at  %s\n", endT.UTC().Format(time.RFC3339Nano))
	}

	s.printPackets(w, p)
	if s.badSums > 0 {
		// A capture taken on the sending host shows the segments whose
		// checksum the NIC fills in (TX offload) with a wrong one.
		what := "tracked as if right (checksum=0; set it to 1 when the capture was taken where the packets arrive)"
		if checksums(eng.trs[0]) {
			what = `INVALID "bad checksum" (checksum=1)`
		}
		fmt.Fprintf(w, "\nwrong TCP checksums: %d packets, %s\n", s.badSums, what)
	}

	printConnections(w, p, &st, "live at the end", func(fn func(*tcpct.Entry) bool) { eng.rangeAll(end, fn) })

	top := s.conns.top()
	if len(top) > 0 {
		// The bytes are the TCP segments' (header and payload, both
		// directions, every packet of the connection), not acct's bytes=,
		// which counts IP packets and only those the kernel counts.
		fmt.Fprintf(w, "\nbusiest connections (original tuple; bytes of TCP header and payload)\n")
		for i := range top {
			c := &top[i]
			state := "(gone)"
			if e, ok := eng.lookup(c.key, end); ok && e.Ref.Index() == c.index && e.Ref.Gen() == c.gen {
				state = e.StateName()
				if e.Conn.Assured() {
					state += " [ASSURED]"
				}
			}
			inv := ""
			if c.invalid > 0 {
				inv = fmt.Sprintf(", %d INVALID", c.invalid)
			}
			fmt.Fprintf(w, "  %8d pkts %10d bytes  %s  %s%s\n", c.packets, c.bytes, c.key, state, inv)
		}
	}
	fmt.Fprintf(w, "\nthroughput\n")
	secs := wall.Seconds()
	if secs > 0 {
		fmt.Fprintf(w, "  %d TCP packets in %v: %.0f packets/s\n", res.tcp, wall.Round(time.Microsecond), float64(res.tcp)/secs)
	}
	return res
}

// printConnections prints the table's connection counters and the live
// entries (as rangeLive walks them) by TCP state, under a "live" label.
func printConnections(w *bufio.Writer, p *fsm.Profile, st *tcpct.Stats, label string, rangeLive func(func(*tcpct.Entry) bool)) {
	live := make([]int, len(p.StateNames))
	assured, total := 0, 0
	rangeLive(func(e *tcpct.Entry) bool {
		if int(e.Conn.State) < len(live) {
			live[e.Conn.State]++
		}
		total++
		if e.Conn.Assured() {
			assured++
		}
		return true
	})
	fmt.Fprintf(w, "\nconnections\n")
	fmt.Fprintf(w, "  created %d; destroyed %d expired, %d killed (RST, reopen), %d early-dropped; table full %d\n",
		st.Table.Insert, st.Table.Expired, st.Table.Killed, st.Table.EarlyDrop, st.Dropped)
	fmt.Fprintf(w, "  %s: %d (%d assured)\n", label, total, assured)
	for i, name := range p.StateNames {
		if live[i] > 0 {
			fmt.Fprintf(w, "    %-12s %10d\n", name, live[i])
		}
	}
}

// printICMP prints the ICMP errors by outcome: RELATED, or why not.
func printICMP(w *bufio.Writer, counts *[16]int) {
	title := false
	for o, n := range counts {
		if n == 0 {
			continue
		}
		if !title {
			fmt.Fprintf(w, "\nICMP errors quoting TCP, by outcome\n")
			title = true
		}
		name := tcpct.ICMPOutcome(o).String()
		if tcpct.ICMPOutcome(o) == tcpct.ICMPRelated {
			name = "RELATED"
		} else {
			name = "INVALID: " + name
		}
		fmt.Fprintf(w, "  %10d  %s\n", n, name)
	}
}

func printReasons(w *bufio.Writer, title string, counts *[256]int) {
	type rc struct {
		r fsm.Reason
		n int
	}
	var rs []rc
	for r, n := range counts {
		if n > 0 {
			rs = append(rs, rc{fsm.Reason(r), n})
		}
	}
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", title)
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].n != rs[j].n {
			return rs[i].n > rs[j].n
		}
		return rs[i].r.String() < rs[j].r.String()
	})
	for _, x := range rs {
		fmt.Fprintf(w, "  %10d  %s\n", x.n, x.r)
	}
}
