package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

var replayUsage = withKnobs(`usage: tcpct replay [flags] FILE|-

Reads a capture (pcap or pcapng, gzip- or zstd-compressed or not; -
reads standard input) and runs every TCP/IPv4 and TCP/IPv6 packet through
the connection tracker in capture order, using each packet's capture
timestamp as the clock. The clock never goes back: a packet stamped
earlier than the one before it is tracked at that one's time (summary
and -v count them). Records that are not TCP (ARP, UDP, ICMP, fragments,
...) are counted and skipped; records of a link type tcpct does not
decode are named on stderr (LINKTYPE number and name), and a capture
without any TCP packet exits 4. Flags may come before or after FILE.

Flags:
  -profile linux|tutorial
        the tracker: linux (default) is the Linux 6.x nf_conntrack TCP
        tracker; tutorial is the 2.4-era tracker of the Iptables Tutorial
        1.2.2, with its Table 7-2 timeouts
  -spec FILE
        track with the spec in FILE instead of a built-in profile, compiled
        at start into the same tables: a copy of spec/linux.spec with one
        cell edited shows which packets of a capture that cell decides.
        Errors name the file and line. -profile, if given, must be the
        spec's profile name
  -sysctl NAME=VALUE
        repeatable; a knob, named as under /proc/sys/net/netfilter/ with or
        without the nf_conntrack_ prefix (the tutorial profile also takes
        its 2.4 names, ip_conntrack_tcp_loose, ip_ct_tcp_timeout_*,
        ip_conntrack_max). acct=1 (linux) adds packets= and bytes= per
        direction to proc, conntrack and DESTROY events, as
        nf_conntrack_acct=1 does; max is the table size. An unknown name or
        a bad value is a usage error naming it; 'tcpct spec' says what each
        knob does. The knobs, from the profiles:
%KNOBS%  -format jsonl|proc|conntrack|events|summary
        what to print (default: summary when standard output is a terminal,
        jsonl otherwise):
          jsonl      one JSON object per TCP packet, in capture order
                     (schema: docs/jsonl.schema.json):
                       i           0-based record index (every record counts)
                       frame       the record's frame number as Wireshark and
                                   tcpdump count it: i+1
                       time        the record's capture timestamp, RFC 3339
                                   in UTC with nine digits of nanoseconds
                       family      ipv4 or ipv6
                       src, dst    the packet's addresses, as seen (not the
                                   connection's original tuple)
                       sport, dport the packet's ports; absent when its TCP
                                   header is cut short
                       ct          NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED
                       dir         original or reply; omitted for INVALID
                       state       TCP state of the entry right after the
                                   packet; omitted when there is no entry (for
                                   an INVALID packet of a known connection:
                                   that entry's state)
                       timeout     whole seconds the entry has left right after
                                   the packet, floor((deadline-now)/1s), as
                                   /proc shows it; omitted with state
                       assured     true when the entry is [ASSURED]; omitted
                                   when false
                       seen_reply  true when the entry has seen a reply (not
                                   [UNREPLIED]); omitted when false
                       reason      why, for INVALID, ignored and dropped
                                   packets
                     extra fields: class (syn, synack, fin, ack, rst, none),
                     old (state before the packet), action (none, create,
                     update, delete, recreate), ignored (true when accepted
                     without a state change), dropped (true when the table
                     was full).
          proc       the table as /proc/net/nf_conntrack prints it; with
                     -profile tutorial the 2.4 /proc/net/ip_conntrack form
          conntrack  the table as conntrack -L prints it
          events     the conntrack -E stream: [NEW], [UPDATE], [DESTROY];
                     DESTROY also for entries that expire while the capture
                     runs (and, with -at, up to T); see -timestamp
          summary    packets by conntrack and TCP state, INVALID and ignored
                     packets by reason, connections, the busiest
                     connections, throughput
        Tables are printed sorted by original tuple.
  -fields all|classic|NAME[,NAME...]
        the jsonl fields to print: all (the default), classic (the records
        before frame, time and the tuple were added: i, ct, dir, state,
        timeout, assured, seen_reply, reason, class, old, action, ignored,
        dropped), or a list of field names, where tuple stands for family,
        src, dst, sport and dport. Fields that do not apply to a packet
        are omitted as above. The slimmer records are faster to write.
  -timestamp
        events: prefix each event with the capture time it happened, as
        conntrack -E -o timestamp prefixes the time it received it:
        [SECONDS.MICROSECONDS] and a tab. Without it the stream is the
        plain conntrack -E one, byte for byte.
  -at T
        the instant to stop at: an RFC 3339 time (2006-11-24T10:00:03Z; a
        lower-case t or z, a space for the T and any offset are accepted),
        or +DURATION after the last packet (+3s, +2m). Packets later than T are
        not processed; proc and conntrack dump the table as it stands at T
        (entries expired by then are gone, timeouts count down to T);
        events ends with the DESTROY of every entry expired by T.
        Without -at, the table is dumped at the last packet's time. A
        warning on stderr says when -at is before every TCP packet, or so
        long after the last that every entry had expired.
  -j N
        worker goroutines (default 0: one per CPU). Connections are sharded
        by a hash of the tuple that is the same in both directions, so each
        connection's packets stay in order on one worker; output is in
        capture order and the same as -j 1 (only when the table fills can
        drops differ, as its limit is split over the workers). events
        always runs on one worker, and so does the default when -sysctl
        sets max.
  -progress auto|always|never
        a progress bar on stderr: bytes of the file read (compressed bytes
        for a gzip file), the rate and the time left; on standard input,
        whose size is unknown, a spinner and the rate. auto (default)
        draws it only when stderr is a terminal.
  -v
        report skipped records (not TCP, malformed, ...) by reason on stderr
  -cpuprofile FILE
        write a CPU profile of the replay (go tool pprof) to FILE

` + filterUsage + `        jsonl filters packets, proc and conntrack the table's entries,
        events the entries they are about; summary takes no filters.

Exit status: 0 success; 1 usage error (the message names the flag or
knob); 2 when the input cannot be read. A truncated or corrupt capture is
reported on stderr with its record number and byte offset; every record
before the fault is still processed and printed, and the status is 2.
3 when the output cannot be written (a full disk; a closed pipe, as with
| head -1, ends the replay at once with status 3 and no message).
4 when the capture holds no TCP packet (a message on stderr counts its
records by what they were and names link types tcpct does not decode).
`)

// openCapture opens FILE, or stdin for "-".
func openCapture(path string, stdin io.Reader) (*capture.Reader, error) {
	if path == "-" {
		return capture.NewReader(stdin)
	}
	return capture.Open(path)
}

// reopener returns a function that opens the capture at path again with
// the same decoding (engine.reopen), or nil when it cannot be read twice
// alike or cheaply: stdin, anything but a regular file (a pipe named
// on the command line), or a compressed capture, whose second reading
// would decompress it again.
func reopener(path string, r *capture.Reader, decap bool) func() (*capture.Reader, error) {
	if path == "-" || r.Compressed() {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return func() (*capture.Reader, error) {
		rr, err := capture.Open(path)
		if err == nil {
			rr.SetDecap(decap)
		}
		return rr, err
	}
}

// walk feeds every record to the tracker and calls fn for the TCP ones
// until fn returns false (explain's loop; replay runs an engine). Packets
// later than an absolute -at are read but not processed.
func walk(r *capture.Reader, tr *tcpct.Tracker, at atSpec, fn func(pi *pktInfo, p *capture.Packet, v *tcpct.Verdict) bool) walkResult {
	var res walkResult
	// One Verdict for the whole walk: fn receives a pointer to it, and a
	// per-iteration variable would escape to the heap on every packet.
	var v [1]tcpct.Verdict
	var pkt [1]tcpct.Packet
	var pi pktInfo
	sums := checksums(tr)
	for {
		p, tcp, err := nextPacket(r, at, &res, nil)
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			return res
		}
		pkt[0] = packetOf(p, &pi, tcp, res.stamp, sums)
		tr.TrackBatch(pkt[:], v[:])
		if !fn(&pi, p, &v[0]) {
			return res
		}
	}
}

func replay(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var tf trackerFlags
	tf.register(fs)
	var ff filterFlags
	ff.register(fs)
	format := fs.String("format", "", "output `format`: jsonl, proc, conntrack, events, summary")
	fieldsFlag := fs.String("fields", "all", "jsonl `fields`: all, classic, or a comma-separated list")
	timestamp := fs.Bool("timestamp", false, "events: prefix each event with its time, as conntrack -E -o timestamp")
	jobsFlag := fs.Int("j", 0, "worker goroutines, connections sharded by tuple (0: one per CPU)")
	progressFlag := fs.String("progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	verbose := fs.Bool("v", false, "report skipped records by reason on stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the replay to `FILE`")
	pos, code, done := parseFlags(fs, args, replayUsage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageErr(stderr, "replay", fmt.Errorf("want exactly one capture FILE (or - for stdin), got %d arguments", len(pos)))
	}
	f := *format
	if f == "" {
		f = "jsonl"
		if isTerminal(stdout) {
			f = "summary"
		}
	}
	switch f {
	case "jsonl", "proc", "conntrack", "events", "summary":
	default:
		return usageErr(stderr, "replay", fmt.Errorf("-format: unknown format %q (want jsonl, proc, conntrack, events or summary)", f))
	}
	fields, err := parseFields(*fieldsFlag)
	if err != nil {
		return usageErr(stderr, "replay", err)
	}
	if flagSet(fs, "fields") && f != "jsonl" {
		return usageErr(stderr, "replay", fmt.Errorf("-fields selects jsonl fields; -format is %s", f))
	}
	if *timestamp && f != "events" {
		return usageErr(stderr, "replay", fmt.Errorf("-timestamp prefixes events; -format is %s", f))
	}
	at, err := parseAt(tf.at)
	if err != nil {
		return usageErr(stderr, "replay", err)
	}
	if err := checkProgressMode(*progressFlag); err != nil {
		return usageErr(stderr, "replay", err)
	}
	jobs := *jobsFlag
	if jobs < 0 {
		return usageErr(stderr, "replay", fmt.Errorf("-j %d: want 0 (one per CPU) or a positive number of workers", jobs))
	}
	if jobs == 0 {
		jobs = runtime.GOMAXPROCS(0)
		if tf.setsMax() {
			// The kernel's limit is one number for one table. Split over
			// workers it would be a different limit, and the output would
			// depend on the machine's CPU count: with max set, the default
			// is one worker (-j N still splits it, exactly).
			jobs = 1
		}
	}
	if f == "events" {
		// The conntrack -E stream is one sequence in the order the
		// packets caused the events; with several trackers, DESTROYs of
		// entries expired at one packet would come from several tables.
		// One tracker keeps the order exactly as documented.
		jobs = 1
	}
	eng, err := newEngine(&tf, jobs)
	if err != nil {
		return usageErr(stderr, "replay", err)
	}
	flt, err := ff.parse(eng.profile())
	if err == nil {
		err = flt.forFormat(f)
	}
	if err != nil {
		return usageErr(stderr, "replay", err)
	}
	r, err := openCapture(pos[0], stdin)
	if err != nil {
		fmt.Fprintf(stderr, "tcpct replay: %v\n", err)
		return exitInput
	}
	defer r.Close()
	r.SetDecap(tf.decap)
	eng.reopen = reopener(pos[0], r, tf.decap)
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return usageErr(stderr, "replay", fmt.Errorf("-cpuprofile: %v", err))
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return usageErr(stderr, "replay", fmt.Errorf("-cpuprofile: %v", err))
		}
		defer pprof.StopCPUProfile()
	}
	bar := newProgress(stderr, pos[0], *progressFlag)
	if bar != nil {
		eng.progress = bar.set
	}

	w := bufio.NewWriterSize(stdout, 64<<10)
	var res walkResult
	empty := false // a table printed with no entry
	switch f {
	case "jsonl":
		res = replayJSONL(r, eng, at, w, &jsonlWriter{fields: fields}, flt)
	case "proc", "conntrack":
		// Only the tables at the end are printed: no packet needs to
		// come back in capture order.
		nothing := make([]func(*pktInfo, *tcpct.Verdict), eng.jobs)
		for i := range nothing {
			nothing[i] = func(*pktInfo, *tcpct.Verdict) {}
		}
		res = eng.runSharded(r, at, nothing)
		_, total := dumpTable(w, eng, f, at.end(res.last), flt)
		empty = total == 0
	case "events":
		res = replayEvents(r, eng, at, w, flt, *timestamp)
	case "summary":
		res = replaySummary(r, eng, at, w, pos[0])
	}
	bar.finish()
	if err := w.Flush(); err != nil {
		return outputFailed(stderr, "replay", err)
	}
	if res.skipped > 0 && *verbose {
		fmt.Fprintf(stderr, "tcpct replay: %d of %d records skipped (not tracked TCP):\n", res.skipped, res.records)
		printSkips(stderr, &res)
	}
	if res.held > 0 && *verbose {
		fmt.Fprintf(stderr, "tcpct replay: %d packets stamped earlier than the packet before them were tracked at that packet's time\n", res.held)
	}
	if res.err != nil {
		reportNothing(stderr, "replay", &res, at, tf.at, false)
		fmt.Fprintf(stderr, "tcpct replay: %v (the %d records before it were processed)\n", res.err, res.records)
		return exitInput
	}
	return reportNothing(stderr, "replay", &res, at, tf.at, empty)
}

// reportNothing warns on stderr when the output is empty for a reason the
// user may not see: records of a link type tcpct does not decode, no TCP
// packet at all, an absolute -at before every TCP packet, or a table
// dumped at a time when every entry had expired (tableEmpty). It returns
// the exit status: exitNoTCP when the capture holds no TCP packet.
func reportNothing(stderr io.Writer, cmd string, res *walkResult, at atSpec, atText string, tableEmpty bool) int {
	links := make([]capture.LinkType, 0, len(res.links))
	for l := range res.links {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool { return links[i] < links[j] })
	for _, l := range links {
		fmt.Fprintf(stderr, "tcpct %s: warning: %d records of link type %s skipped: tcpct does not decode that link type\n",
			cmd, res.links[l], linkName(l))
	}
	switch {
	case res.err != nil:
		return exitInput
	case res.tcp == 0 && res.tcpAfterAt == 0:
		fmt.Fprintf(stderr, "tcpct %s: no TCP packet in the capture: %d records, %d not TCP", cmd, res.records, res.skipped)
		if res.skipped > 0 {
			fmt.Fprintf(stderr, ":\n")
			printSkips(stderr, res)
		} else {
			fmt.Fprintf(stderr, "\n")
		}
		return exitNoTCP
	case res.tcp == 0:
		fmt.Fprintf(stderr, "tcpct %s: warning: -at %s is before the capture's first TCP packet (at %s): no packet was tracked\n",
			cmd, atText, time.Unix(0, res.firstAfterAt).UTC().Format(time.RFC3339Nano))
	case tableEmpty && at.end(res.last) > res.last:
		fmt.Fprintf(stderr, "tcpct %s: warning: -at %s is %v after the last packet tracked (%s): every entry had expired by then\n",
			cmd, atText, time.Duration(at.end(res.last)-res.last), time.Unix(0, res.last).UTC().Format(time.RFC3339Nano))
	}
	return exitOK
}

// linkName is a link type as the warnings give it: its LINKTYPE_ number
// and its name in the tcpdump.org registry, when known.
func linkName(l capture.LinkType) string {
	if n := l.Name(); n != "" {
		return fmt.Sprintf("%d (%s)", uint32(l), n)
	}
	return fmt.Sprintf("%d", uint32(l))
}

// dumpTable prints the table at now, sorted by original tuple, the
// entries the filter passes; it returns how many it printed and how many
// the table held.
func dumpTable(w *bufio.Writer, eng *engine, format string, now int64, flt *filter) (printed, total int) {
	t := time.Unix(0, now)
	buf := make([]byte, 0, 512)
	entries := eng.entries(now)
	for _, e := range entries {
		if flt.active && !flt.entry(&e) {
			continue
		}
		buf = buf[:0]
		if format == "conntrack" {
			buf = e.AppendConntrack(buf, t)
		} else {
			buf = e.AppendProc(buf, t) // in the profile's /proc dialect
		}
		w.Write(buf)
		printed++
	}
	return printed, len(entries)
}

// replayEvents prints the conntrack -E stream. The subscription is drained
// after every packet, so events appear in the order the packets caused
// them. An expired entry's DESTROY comes before the first packet whose
// time reaches its deadline (the tracker expires entries exactly, in
// order of deadline and tuple), and the end flushes every entry expired
// by then. The subscription is unbounded: one packet after a long gap
// may expire the whole table, and nothing may be lost.
func replayEvents(r *capture.Reader, eng *engine, at atSpec, w *bufio.Writer, flt *filter, timestamp bool) walkResult {
	tr := eng.trs[0]
	sub := tr.Subscribe(0)
	defer sub.Close()
	buf := make([]byte, 0, 512)
	drain := func() {
		for {
			ev, ok := sub.Poll()
			if !ok {
				return
			}
			if flt.active && !flt.entry(&ev.Entry) {
				continue
			}
			buf = buf[:0]
			if timestamp {
				buf = appendEventTime(buf, ev.Time.UnixNano())
			}
			buf = ev.Append(buf)
			if _, err := w.Write(buf); err != nil {
				eng.stop()
			}
		}
	}
	res := eng.run(r, at, func(*pktInfo, *tcpct.Verdict) { drain() })
	if res.tcp > 0 {
		tr.Expire(time.Unix(0, at.end(res.last)))
		drain()
	}
	if n := sub.Lost(); n > 0 {
		fmt.Fprintf(w, "# %d events lost (subscriber buffer full)\n", n)
	}
	return res
}

// appendEventTime appends the prefix conntrack -E -o timestamp gives an
// event, with the event's capture time: seconds and microseconds, then a
// tab ("[1164362400.000000]\t"). conntrack-tools prints the time it
// received the event; a capture's clock stands in for it.
func appendEventTime(b []byte, ns int64) []byte {
	sec, rem := ns/1e9, ns%1e9
	if rem < 0 {
		sec, rem = sec-1, rem+1e9
	}
	us := rem / 1e3
	b = append(b, '[')
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, '.')
	for d := int64(100000); d > 0; d /= 10 {
		b = append(b, byte('0'+us/d%10))
	}
	return append(b, ']', '\t')
}
