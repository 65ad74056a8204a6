package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

const explainUsage = `usage: tcpct explain [flags] FILE|-

Replays the capture like 'tcpct replay' and narrates one connection: for
each of its packets the record number, time, direction and TCP flags, the
packet's class and conntrack state, the TCP state before and after, the
timeout set, and what happened to the entry. For INVALID and ignored
packets it gives the reason and the spec cell that decided, with the RFC
sections and rationale the spec records for it. All other connections are
tracked too (they share the table) but not shown.

Flags:
  -conn 'src=A dst=B sport=P dport=Q'
        the connection to explain, by either of its tuples (the /proc
        notation; A:P->B:Q is accepted too)
  -packet N
        the connection of record N (0-based, as jsonl's i; Wireshark's
        frame N+1)
        Without -conn or -packet, the connection of the first TCP packet
        that the filters pass (with -ct INVALID: of the first INVALID
        packet).
  -o FILE.svg | FILE.html
        also draw the connection: per direction, sequence numbers against
        time with the window bounds the tracker holds after each packet
        (td_end, td_maxend, td_maxwin), each packet coloured by verdict
        (.html: the same picture and a table of the packets)
  -profile, -spec, -sysctl, -at
        as for 'tcpct replay'

` + filterUsage + `        Here they also narrow the narration to the connection's packets
        that pass (the others are counted in a last line).

Exit status: 0 success; 1 usage error; 2 unreadable input; 3 the output
cannot be written (quietly for a closed pipe); 4 the capture holds no TCP
packet, no packet passes the filters, or the connection given with -conn
has no packet in the capture (a message on stderr says which).
`

// explainConn is the connection explain narrates, as the flags chose it.
type explainConn struct {
	want      table.Key // one of its tuples
	truncated int       // -packet names a TCP packet whose header is cut short: that record; else -1
}

func explain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var tf trackerFlags
	tf.register(fs)
	var ff filterFlags
	ff.register(fs)
	connFlag := fs.String("conn", "", "connection `'src=A dst=B sport=P dport=Q'`")
	packetFlag := fs.Int("packet", -1, "explain the connection of record `N`")
	outFlag := fs.String("o", "", "also draw the connection to `FILE` (.svg or .html)")
	pos, code, done := parseFlags(fs, args, explainUsage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageErr(stderr, "explain", fmt.Errorf("want exactly one capture FILE (or - for stdin), got %d arguments", len(pos)))
	}
	if *connFlag != "" && *packetFlag >= 0 {
		return usageErr(stderr, "explain", errors.New("-conn and -packet are exclusive"))
	}
	if *packetFlag < -1 || (*packetFlag == -1 && flagSet(fs, "packet")) {
		return usageErr(stderr, "explain", fmt.Errorf("-packet %d: want a record number, 0 or more", *packetFlag))
	}
	c := explainConn{truncated: -1}
	if *connFlag != "" {
		var err error
		if c.want, err = parseConn(*connFlag); err != nil {
			return usageErr(stderr, "explain", fmt.Errorf("-conn: %v", err))
		}
	}
	var pic *picture // explain -o: picture.go
	if *outFlag != "" {
		if _, err := pictureFormat(*outFlag); err != nil {
			return usageErr(stderr, "explain", err)
		}
		pic = &picture{}
	}
	at, err := parseAt(tf.at)
	if err != nil {
		return usageErr(stderr, "explain", err)
	}
	tr, err := tf.tracker()
	if err != nil {
		return usageErr(stderr, "explain", err)
	}
	flt, err := ff.parse(tr.Profile())
	if err != nil {
		return usageErr(stderr, "explain", err)
	}

	// Choosing by -packet (or by default) needs the tuple before the
	// replay: read the input once to find it. Standard input is kept in
	// memory for the second pass.
	var data []byte
	path := pos[0]
	if path == "-" {
		if data, err = io.ReadAll(stdin); err != nil {
			fmt.Fprintf(stderr, "tcpct explain: reading stdin: %v\n", err)
			return exitInput
		}
	}
	open := func() (r *capture.Reader, err error) {
		if data != nil {
			r, err = capture.NewReader(bytes.NewReader(data))
		} else {
			r, err = capture.Open(path)
		}
		if err == nil {
			r.SetDecap(tf.decap)
		}
		return r, err
	}
	if c.want.IsZero() {
		var code int
		if flt.active && *packetFlag < 0 {
			code = c.chooseByFilter(open, &tf, at, flt, stderr)
		} else {
			code = c.choose(open, *packetFlag, at, tf.at, stderr)
		}
		if code >= 0 {
			return code
		}
	}
	r, err := open()
	if err != nil {
		fmt.Fprintf(stderr, "tcpct explain: %v\n", err)
		return exitInput
	}
	defer r.Close()
	return c.narrateAll(r, tr, at, tf.at, flt, pic, *outFlag, stdout, stderr)
}

// choose finds the connection of record packet (or of the first TCP
// packet when packet is -1) with a first pass over the capture. It
// returns -1 when it found one, or the exit status after reporting why
// not.
func (c *explainConn) choose(open func() (*capture.Reader, error), packet int, at atSpec, atText string, stderr io.Writer) int {
	r, err := open()
	if err != nil {
		fmt.Fprintf(stderr, "tcpct explain: %v\n", err)
		return exitInput
	}
	defer r.Close()
	var res walkResult
	var p *capture.Packet
	for {
		if p, err = r.Next(); err != nil {
			break
		}
		res.records++
		if res.records == 1 {
			res.start = p.Time
		}
		if packet >= 0 && p.Index != packet {
			continue
		}
		tcp, trunc := classify(p)
		if tcp && p.Kind == capture.KindNonTCP {
			// An ICMP error: the connection it quotes, if it quotes one.
			if pkt := tcpct.PacketOf(p); !pkt.Key.IsZero() {
				c.want = pkt.Key.Reverse()
				return -1
			}
			if packet >= 0 {
				return usageErr(stderr, "explain", fmt.Errorf("-packet %d: record %d is an ICMP error that quotes no TCP ports", packet, p.Index))
			}
		}
		if (tcp || trunc) && p.HasPorts() {
			// A cut header with its ports belongs to a connection like
			// any TCP packet (packetOf).
			c.want = tcpct.KeyOf(p.SrcAddrPort(), p.DstAddrPort())
			return -1
		}
		if packet >= 0 {
			if trunc {
				c.truncated = p.Index
				return -1
			}
			reason := p.Reason
			if reason == "" {
				reason = p.Kind.String()
			}
			return usageErr(stderr, "explain", fmt.Errorf("-packet %d: record %d is not a TCP packet (%s)", packet, p.Index, reason))
		}
		res.admit(p) // not TCP: counts the skip (and its link type)
	}
	if err != io.EOF {
		fmt.Fprintf(stderr, "tcpct explain: %v (the %d records before it were read)\n", err, res.records)
		return exitInput
	}
	if packet >= 0 {
		return usageErr(stderr, "explain", fmt.Errorf("-packet %d: the capture has %d records", packet, res.records))
	}
	return reportNothing(stderr, "explain", &res, at, atText, false)
}

// chooseByFilter finds the connection of the first packet the filters
// pass, tracking the capture with a tracker of its own (the filters may
// name a packet's conntrack state). It returns -1 when it found one, or
// the exit status after reporting why not.
func (c *explainConn) chooseByFilter(open func() (*capture.Reader, error), tf *trackerFlags, at atSpec, flt *filter, stderr io.Writer) int {
	r, err := open()
	if err != nil {
		fmt.Fprintf(stderr, "tcpct explain: %v\n", err)
		return exitInput
	}
	defer r.Close()
	tr, err := tf.tracker()
	if err != nil {
		return usageErr(stderr, "explain", err)
	}
	res := walk(r, tr, at, func(pi *pktInfo, _ *capture.Packet, v *tcpct.Verdict) bool {
		if !pi.trunc && flt.packet(pi, v) {
			c.want = pi.key
			return false
		}
		return true
	})
	if !c.want.IsZero() {
		return -1
	}
	if res.err != nil {
		fmt.Fprintf(stderr, "tcpct explain: %v (the %d records before it were processed)\n", res.err, res.records)
		return exitInput
	}
	if code := reportNothing(stderr, "explain", &res, at, tf.at, false); code != exitOK {
		return code
	}
	fmt.Fprintf(stderr, "tcpct explain: no packet passes the filters (%d TCP packets tracked)\n", res.tcp)
	return exitNoTCP
}

// narrateAll replays the capture and narrates the connection's packets
// that the filter passes, the expiries and evictions of its entry, and
// its entry at the end; with pic, it also draws them into the file out.
func (c *explainConn) narrateAll(r *capture.Reader, tr *tcpct.Tracker, at atSpec, atText string, flt *filter, pic *picture, out string, stdout, stderr io.Writer) int {
	w := bufio.NewWriter(stdout)
	p := tr.Profile()
	want, wantR := c.want, c.want.Reverse()
	fmt.Fprintf(w, "connection %s (either direction), profile %s: %s\n", want, p.Name, p.Title)
	var prev int64
	n, hidden := 0, 0
	// Expiries and evictions of the connection's entry happen when the
	// clock reaches its deadline or an insert needs room, not as any of
	// its packets' verdicts: the events say when. They are drained after
	// every packet (and after the final expiry), before the packet that
	// moved the clock is narrated; nothing is lost (no bound).
	sub := tr.Subscribe(0)
	defer sub.Close()
	drain := func() {
		for {
			ev, ok := sub.Poll()
			if !ok {
				return
			}
			if ev.Type == table.EventDestroy && ev.Reason != table.ReasonKilled && (ev.Entry.Key == want || ev.Entry.Key == wantR) {
				narrateDestroy(w, &ev)
				if pic != nil {
					pic.destroyed(&ev)
				}
			}
		}
	}
	res := walk(r, tr, at, func(pi *pktInfo, pk *capture.Packet, v *tcpct.Verdict) bool {
		drain()
		if pk.Index == c.truncated {
			narrateTruncated(w, pk, v)
			n++
			return true
		}
		if pi.icmp {
			// An ICMP error belongs to the connection it quotes (the
			// verdict's Key: the entry's tuple, or the quoted one).
			if c.truncated >= 0 || (v.Key != want && v.Key != wantR) {
				return true
			}
			if flt.active && !flt.packet(pi, v) {
				hidden++
				return true
			}
			narrateICMP(w, pk, v, n, prev)
			prev = pk.Time
			n++
			return true
		}
		if pi.trunc || c.truncated >= 0 || (pi.key != want && pi.key != wantR) {
			return true
		}
		seg := tcpct.SegmentOf(pk)
		if pic != nil {
			// The picture shows the whole connection; filters choose
			// what is narrated.
			pic.add(tr, pk, &seg, v)
		}
		if flt.active && !flt.packet(pi, v) {
			hidden++
			return true
		}
		narrate(w, tr, pk, &seg, v, n, prev)
		prev = pk.Time
		n++
		return true
	})
	end := time.Unix(0, at.end(res.last))
	if res.tcp > 0 {
		tr.Expire(end) // reclaims what expired by the end, as replay's dumps do
		drain()
	}
	if lost := sub.Lost(); lost > 0 {
		fmt.Fprintf(w, "\n(%d events lost: expiries of this connection may be missing)\n", lost)
	}
	if res.afterAt > 0 {
		fmt.Fprintf(w, "\n%d records after -at %s were not processed\n", res.afterAt, atText)
	}
	if hidden > 0 {
		fmt.Fprintf(w, "\n%d packets of this connection not shown (filtered out)\n", hidden)
	}
	status := exitOK
	switch {
	case c.truncated >= 0:
		// One packet, no connection: there is no entry to report.
	case n == 0 && hidden == 0 && res.afterAt > 0:
		fmt.Fprintf(w, "\nno packet of this connection before -at %s\n", atText)
		if res.tcp > 0 { // else reportNothing says that nothing was tracked
			fmt.Fprintf(stderr, "tcpct explain: warning: no packet of connection %s before -at %s\n", want, atText)
		}
	case n == 0 && hidden == 0:
		fmt.Fprintf(w, "\nno packet of this connection in the capture\n")
		fmt.Fprintf(stderr, "tcpct explain: no packet of connection %s (either direction) in the capture\n", want)
		status = exitNoTCP
	default:
		narrateEnd(w, tr, want, end)
	}
	if err := w.Flush(); err != nil {
		return outputFailed(stderr, "explain", err)
	}
	if pic != nil {
		if err := pic.writeFile(out); err != nil {
			fmt.Fprintf(stderr, "tcpct explain: %v\n", outputError{err})
			return exitOutput
		}
	}
	if res.err != nil {
		fmt.Fprintf(stderr, "tcpct explain: %v (the %d records before it were processed)\n", res.err, res.records)
		return exitInput
	}
	if code := reportNothing(stderr, "explain", &res, at, atText, false); code != exitOK {
		return code
	}
	return status
}

// narrateEnd tells the connection's entry as it stands at end.
func narrateEnd(w *bufio.Writer, tr *tcpct.Tracker, want table.Key, end time.Time) {
	fmt.Fprintf(w, "\nat %s: ", end.UTC().Format(time.RFC3339Nano))
	e, _, ok := tr.Lookup(netipSrc(want), netipDst(want), end)
	if !ok {
		fmt.Fprintf(w, "no entry (never created, deleted, or expired)\n")
		return
	}
	left := table.SecondsLeft(e.Conn.Deadline, end.UnixNano())
	fmt.Fprintf(w, "entry %s -> %s in %s, %d s left", e.Src(), e.Dst(), e.StateName(), left)
	if e.Conn.Assured() {
		fmt.Fprintf(w, ", [ASSURED]")
	}
	if !e.Conn.SeenReply() {
		fmt.Fprintf(w, ", [UNREPLIED]")
	}
	fmt.Fprintf(w, "; it expires at %s\n", time.Unix(0, e.Conn.Deadline).UTC().Format(time.RFC3339Nano))
}

// narrateTruncated explains a TCP packet whose header is too short to
// hold even its ports: it is INVALID before the table is consulted, and
// without its ports it has no tuple, so it belongs to no connection.
func narrateTruncated(w *bufio.Writer, pk *capture.Packet, v *tcpct.Verdict) {
	ts := clock(pk.Time)
	fmt.Fprintf(w, "\n#%d %s  %s > %s  TCP header cut short", pk.Index, ts, pk.Src, pk.Dst)
	if pk.Reason != "" {
		fmt.Fprintf(w, " (%s)", pk.Reason)
	}
	fmt.Fprintf(w, "\n    %s: %s; without its ports the packet has no tuple, so it belongs to no connection and no entry is looked up\n", v.CT, v.ReasonText())
}

// narrateICMP explains an ICMP or ICMPv6 error quoting a segment of the
// connection: RELATED (and in which direction) or INVALID, and why; the
// entry is only read, never changed or refreshed.
func narrateICMP(w *bufio.Writer, pk *capture.Packet, v *tcpct.Verdict, n int, prev int64) {
	ts := clock(pk.Time)
	if n > 0 {
		ts += fmt.Sprintf(" (+%v)", time.Duration(pk.Time-prev))
	}
	proto := "ICMP"
	if v.ICMP.Family == 6 {
		proto = "ICMPv6"
	}
	fmt.Fprintf(w, "\n#%d %s  %s > %s  %s type %d code %d quoting a segment of this connection\n", pk.Index, ts, pk.Src, pk.Dst, proto, v.ICMP.Type, v.ICMP.Code)
	switch v.CT {
	case fsm.CTRelated:
		fmt.Fprintf(w, "    RELATED, direction %s (%s): the entry is left as it is, in %s, timeout not refreshed (%d s left)\n", v.Dir, v.ReasonText(), v.StateName(), v.SecondsLeft())
	default:
		fmt.Fprintf(w, "    INVALID: %s", v.ReasonText())
		if v.Entry {
			fmt.Fprintf(w, "; the entry (%s, %d s left) is left as it is", v.StateName(), v.SecondsLeft())
		}
		fmt.Fprintf(w, "\n")
	}
}

func narrate(w *bufio.Writer, tr *tcpct.Tracker, pk *capture.Packet, seg *fsm.Segment, v *tcpct.Verdict, n int, prev int64) {
	ts := clock(pk.Time)
	if n > 0 {
		ts += fmt.Sprintf(" (+%v)", time.Duration(pk.Time-prev))
	}
	dir := "original"
	if v.CT == fsm.CTInvalid {
		dir = "-"
	} else if v.Dir == fsm.Reply {
		dir = "reply"
	}
	src, dst := netip.AddrPortFrom(pk.Src, pk.SrcPort), netip.AddrPortFrom(pk.Dst, pk.DstPort)
	if pk.Kind != capture.KindTCP {
		// Only the ports were read: the kernel finds the entry from them,
		// then rejects the header.
		fmt.Fprintf(w, "\n#%d %s  %s > %s  TCP header cut short (%s)\n", pk.Index, ts, src, dst, pk.Reason)
	} else {
		fmt.Fprintf(w, "\n#%d %s  %s > %s  [%s] seq=%d", pk.Index, ts, src, dst, capture.TcpdumpFlags(uint8(seg.Flags)), seg.Seq)
		if seg.Flags&spec.ACK != 0 {
			fmt.Fprintf(w, " ack=%d", seg.Ack)
		}
		fmt.Fprintf(w, " win=%d len=%d\n", seg.Win, seg.Len)
	}
	fmt.Fprintf(w, "    class %s, direction %s: %s", v.ClassName(), dir, v.CT)
	if v.Expired {
		fmt.Fprintf(w, " (the entry found had expired and was destroyed)")
	}
	fmt.Fprintf(w, "\n")
	switch {
	case v.Dropped:
		fmt.Fprintf(w, "    table full: no entry created, the kernel drops this packet\n")
	case v.Entry:
		fmt.Fprintf(w, "    state %s -> %s", v.OldName(), v.StateName())
		if v.Refreshed {
			fmt.Fprintf(w, ", timeout set to %s", seconds(v.Timeout))
			if full := tr.Config().Timeout(v.State); full != v.Timeout {
				fmt.Fprintf(w, " (capped from %s: unacknowledged data, retransmissions, zero window, RST or no reply yet)", seconds(full))
			}
		} else {
			fmt.Fprintf(w, ", timeout not refreshed")
		}
		fmt.Fprintf(w, " (%d s left)", v.SecondsLeft())
		var flags []string
		if v.Assured {
			flags = append(flags, "ASSURED")
		}
		if !v.SeenReply {
			flags = append(flags, "UNREPLIED")
		}
		if len(flags) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(flags, "] ["))
		}
		fmt.Fprintf(w, "; entry %s\n", entryAction(v))
		if v.Action == fsm.Recreate {
			fmt.Fprintf(w, "    the reopening packet's direction is the new original one: %s\n", v.Key)
		}
	default:
		fmt.Fprintf(w, "    no entry after the packet (%s)\n", entryAction(v))
	}
	if v.CT == fsm.CTInvalid || v.Ignored {
		what := "INVALID"
		if v.CT != fsm.CTInvalid {
			what = "ignored"
		}
		fmt.Fprintf(w, "    %s: %s\n", what, v.ReasonText())
	}
	if d, ok := v.Doc(); ok {
		fmt.Fprintf(w, "    spec cell %s/%s/%s = %s (RFC %s): %s\n", v.Dir, v.ClassName(), v.OldName(), v.CellName(), d.RFC, d.Reason)
		if (v.CT == fsm.CTInvalid || v.Ignored) && v.Cell < spec.OutInvalid {
			// The cell names a state, but a rule outside the table
			// decided: tcp_loose before it, the window check after it.
			fmt.Fprintf(w, "    the cell was not applied: %s\n", overruled(v))
		}
	}
}

// overruled says which rule outside the transition table made a packet
// INVALID or ignored although its cell names a state.
func overruled(v *tcpct.Verdict) string {
	switch v.Reason {
	case fsm.ReasonLooseOff:
		return "tcp_loose is 0, so only a SYN may create an entry (tcp_new())"
	case fsm.ReasonSeqOverUpper, fsm.ReasonAckOverUpper, fsm.ReasonSeqUnderLower, fsm.ReasonAckUnderLower, fsm.ReasonOvershoot, fsm.ReasonLoweredToUnack:
		return "the window check (tcp_in_window()), which runs after the table, rejected the segment"
	case fsm.ReasonInvalidRST, fsm.ReasonChallengeAck:
		return "the RST rules (RFC 5961 as the kernel applies them) rejected the segment"
	}
	return v.ReasonText()
}

// narrateDestroy tells that the connection's entry went away other than by
// one of its own packets: its timeout ran out, or early drop evicted it
// to make room in a full table.
func narrateDestroy(w *bufio.Writer, ev *tcpct.Event) {
	e := &ev.Entry
	if ev.Reason == table.ReasonExpired {
		fmt.Fprintf(w, "\n   %s  the entry's timeout ran out in %s: entry destroyed (reclaimed at %s)\n",
			clock(e.Conn.Deadline), e.StateName(), clock(ev.Time.UnixNano()))
		return
	}
	fmt.Fprintf(w, "\n   %s  entry %s in %s: destroyed to make room in the full table (early drop)\n",
		clock(ev.Time.UnixNano()), ev.Reason, e.StateName())
}

// clock is a capture time of day as explain prints it, in microseconds.
func clock(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000000") }

func entryAction(v *tcpct.Verdict) string {
	switch v.Action {
	case fsm.Create:
		return "created"
	case fsm.Update:
		return "updated"
	case fsm.Delete:
		return "deleted"
	case fsm.Recreate:
		return "killed and re-created"
	}
	return "unchanged"
}

func seconds(ns int64) string {
	return strconv.FormatInt(ns/1e9, 10) + " s"
}

// parseConn reads 'src=A dst=B sport=P dport=Q' (any order) or A:P->B:Q.
func parseConn(s string) (table.Key, error) {
	if a, b, ok := strings.Cut(s, "->"); ok {
		src, err1 := netip.ParseAddrPort(strings.TrimSpace(a))
		dst, err2 := netip.ParseAddrPort(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || src.Addr().Is4() != dst.Addr().Is4() {
			return table.Key{}, fmt.Errorf("%q: want A:P->B:Q with addresses of one family", s)
		}
		return table.KeyFromAddrPorts(src, dst), nil
	}
	var src, dst netip.Addr
	var sport, dport uint64
	var have int
	for _, f := range strings.Fields(s) {
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			return table.Key{}, fmt.Errorf("%q: want NAME=VALUE", f)
		}
		var err error
		switch name {
		case "src":
			src, err = netip.ParseAddr(val)
			have |= 1
		case "dst":
			dst, err = netip.ParseAddr(val)
			have |= 2
		case "sport":
			sport, err = strconv.ParseUint(val, 10, 16)
			have |= 4
		case "dport":
			dport, err = strconv.ParseUint(val, 10, 16)
			have |= 8
		default:
			return table.Key{}, fmt.Errorf("unknown field %q (want src, dst, sport, dport)", name)
		}
		if err != nil {
			return table.Key{}, fmt.Errorf("%s: %v", name, err)
		}
	}
	if have != 15 {
		return table.Key{}, fmt.Errorf("%q: need src=, dst=, sport= and dport=", s)
	}
	if src.Is4() != dst.Is4() {
		return table.Key{}, fmt.Errorf("%q: src and dst of different families", s)
	}
	return table.KeyFromAddrPorts(netip.AddrPortFrom(src, uint16(sport)), netip.AddrPortFrom(dst, uint16(dport))), nil
}
