package main

import (
	"bufio"
	"fmt"
	"sort"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// connStat is what the summary keeps per connection (original tuple).
type connStat struct {
	key     table.Key
	packets int
	bytes   int64
	invalid int
}

type summary struct {
	byCT      [8]int
	byState   []int // TCP state after the packet; last slot: no entry
	invalid   map[string]int
	ignored   map[string]int
	dropped   int
	conns     map[table.Key]*connStat
	tcpBytes  int64
	wallStart time.Time
}

func replaySummary(r *capture.Reader, tr *tcpct.Tracker, at atSpec, w *bufio.Writer, name, _ string) walkResult {
	p := tr.Profile()
	s := &summary{byState: make([]int, len(p.StateNames)+1), invalid: map[string]int{}, ignored: map[string]int{},
		conns: map[table.Key]*connStat{}, wallStart: time.Now()}
	res := walk(r, tr, at, func(pk *capture.Packet, v *tcpct.Verdict) {
		if int(v.CT) < len(s.byCT) {
			s.byCT[v.CT]++
		}
		if v.Entry {
			s.byState[v.State]++
		} else {
			s.byState[len(p.StateNames)]++
		}
		switch {
		case v.Dropped:
			s.dropped++
		case v.CT == fsm.Invalid:
			s.invalid[v.ReasonText()]++
		case v.Ignored:
			s.ignored[v.ReasonText()]++
		}
		s.tcpBytes += int64(pk.OrigLen)
		c := s.conns[v.Key]
		if c == nil {
			c = &connStat{key: v.Key}
			s.conns[v.Key] = c
		}
		c.packets++
		c.bytes += int64(pk.IPPayloadLen)
		if v.CT == fsm.Invalid {
			c.invalid++
		}
	})
	wall := time.Since(s.wallStart)
	end := at.end(res.last)
	endT := time.Unix(0, end)
	st := tr.Stats()

	fmt.Fprintf(w, "capture   %s: %d records, %d TCP packets, %d other records skipped\n", name, res.records, res.tcp, res.skipped)
	fmt.Fprintf(w, "profile   %s (%s)\n", p.Name, p.Title)
	if res.tcp > 0 {
		fmt.Fprintf(w, "span      %s .. %s (%v)\n", time.Unix(0, res.first).UTC().Format(time.RFC3339Nano),
			time.Unix(0, res.last).UTC().Format(time.RFC3339Nano), time.Duration(res.last-res.first))
		fmt.Fprintf(w, "table at  %s\n", endT.UTC().Format(time.RFC3339Nano))
	}

	fmt.Fprintf(w, "\npackets by conntrack state\n")
	for ct := fsm.New; ct <= fsm.Untracked; ct++ {
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
	printReasons(w, "INVALID packets by reason", s.invalid)
	printReasons(w, "ignored packets by reason (accepted, no state change)", s.ignored)
	if s.dropped > 0 {
		fmt.Fprintf(w, "\ndropped (table full): %d packets\n", s.dropped)
	}

	live := map[fsm.State]int{}
	assured, total := 0, 0
	tr.Range(endT, func(e *tcpct.Entry) bool {
		live[e.Conn.State]++
		total++
		if e.Conn.Assured() {
			assured++
		}
		return true
	})
	fmt.Fprintf(w, "\nconnections\n")
	fmt.Fprintf(w, "  created %d; destroyed %d expired, %d killed (RST, reopen), %d early-dropped; table full %d\n",
		st.Table.Insert, st.Table.Expired, st.Table.Killed, st.Table.EarlyDrop, st.Dropped)
	fmt.Fprintf(w, "  live at the end: %d (%d assured)\n", total, assured)
	for i, name := range p.StateNames {
		if n := live[fsm.State(i)]; n > 0 {
			fmt.Fprintf(w, "    %-12s %10d\n", name, n)
		}
	}

	top := make([]*connStat, 0, len(s.conns))
	for _, c := range s.conns {
		top = append(top, c)
	}
	sort.Slice(top, func(i, j int) bool {
		if top[i].packets != top[j].packets {
			return top[i].packets > top[j].packets
		}
		return tcpct.KeyLess(top[i].key, top[j].key)
	})
	if len(top) > 10 {
		top = top[:10]
	}
	if len(top) > 0 {
		fmt.Fprintf(w, "\nbusiest connections (original tuple)\n")
		for _, c := range top {
			state := "(gone)"
			if e, _, ok := tr.Lookup(netipSrc(c.key), netipDst(c.key), endT); ok {
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

func printReasons(w *bufio.Writer, title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %10d  %s\n", m[k], k)
	}
}
