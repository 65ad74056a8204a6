package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

const watchUsage = `usage: tcpct watch -i IFACE [flags]

Tracks live traffic (needs root, Linux): opens an AF_PACKET socket on
IFACE, decodes every frame (Ethernet, including lo; raw IP on tun-like
interfaces) and runs every TCP/IPv4 and TCP/IPv6 packet through the
connection tracker, with the wall clock as the clock. Both directions are
tracked: the host's own outgoing packets are seen too. Each packet is
tracked once; on lo, where the kernel shows every packet twice (once
outgoing, once incoming), only the incoming copy is tracked.

Flags:
  -i IFACE
        the interface to capture on (required)
  -profile linux|tutorial
        the tracker profile (default linux), as for replay
  -spec FILE
        track with the spec in FILE instead of a built-in profile, as for
        replay
  -sysctl NAME=VALUE
        repeatable; a tracker knob, as for replay (tcp_timeout_close=1 ...)
  -format events|summary
        events (default): the conntrack -E stream, printed as it happens:
                 [NEW], [UPDATE], [DESTROY]. Expired entries are reclaimed
                 by a sweep of the table every second even when no packet
                 arrives, so DESTROY follows an expiry within about a
                 second.
        summary: every -interval, a summary since the start: frames and
                 TCP packets, packets by conntrack state and by TCP state,
                 INVALID and ignored packets by reason, connections by TCP
                 state. On a terminal the screen is redrawn.
  -interval D
        how often summary is reprinted (default 2s)
  -count N
        stop after N TCP packets
  -duration D
        stop after D (30s, 5m)
        Without -count or -duration, watch runs until SIGINT (Ctrl-C) or
        SIGTERM; with both, it stops at whichever comes first. A summary
        is printed once more on exit.

  -timestamp
        events: prefix each event with the time it happened as
        conntrack -E -o timestamp does: [SECONDS.MICROSECONDS] and a tab

` + filterUsage + `        For watch they choose events (by the entry's original tuple, state
        and flags); -ct, a packet's state, and summary take none.

On exit, statistics go to standard error: frames seen, TCP packets
tracked, frames skipped, and frames the kernel dropped because the socket
buffer was full.

Exit status: 0 success (stopped by a signal, -count or -duration); 1
usage error; 2 when the interface cannot be opened (no such interface,
not root) or reading from it fails; 3 when the output cannot be written
(quietly for a closed pipe).
`

// frameSource is where watch reads frames from: an AF_PACKET socket on
// Linux (watch_linux.go), a fake in tests.
type frameSource interface {
	// read waits up to timeout for one frame, copies it into buf and
	// returns its captured length, its length on the wire and its link
	// type; ok is false when no frame arrived in time.
	read(buf []byte, timeout time.Duration) (n, wireLen int, link capture.LinkType, ok bool, err error)
	// dropped returns how many frames the kernel dropped since the last
	// call (ok false when it cannot tell).
	dropped() (n uint64, ok bool)
	// describe names the source for messages ("veth0 (index 7)").
	describe() string
	close() error
}

// openFrameSource opens the live source for an interface; it is set by
// the platform file.
var openFrameSource func(iface string) (frameSource, error)

// watchOptions are watch's parsed flags.
type watchOptions struct {
	format   string
	interval time.Duration
	count    int
	duration time.Duration
	// sweepEvery is how often the table is swept for expired entries.
	sweepEvery time.Duration
}

func watch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var tf trackerFlags
	tf.registerTracker(fs)
	iface := fs.String("i", "", "capture on `IFACE`")
	format := fs.String("format", "events", "output `format`: events or summary")
	interval := fs.Duration("interval", 2*time.Second, "summary refresh `interval`")
	count := fs.Int("count", 0, "stop after `N` TCP packets")
	duration := fs.Duration("duration", 0, "stop after `D`")
	timestamp := fs.Bool("timestamp", false, "events: prefix each event with its time, as conntrack -E -o timestamp")
	var ff filterFlags
	ff.register(fs)
	pos, code, done := parseFlags(fs, args, watchUsage, stdout, stderr)
	if done {
		return code
	}
	switch {
	case len(pos) != 0:
		return usageErr(stderr, "watch", fmt.Errorf("unexpected arguments %q (the interface is given with -i)", pos))
	case *iface == "":
		return usageErr(stderr, "watch", errors.New("-i: an interface is required (-i eth0, -i lo)"))
	case *format != "events" && *format != "summary":
		return usageErr(stderr, "watch", fmt.Errorf("-format: unknown format %q (want events or summary)", *format))
	case *interval <= 0:
		return usageErr(stderr, "watch", fmt.Errorf("-interval %v: want a positive duration", *interval))
	case *count < 0:
		return usageErr(stderr, "watch", fmt.Errorf("-count %d: want a positive number of packets", *count))
	case *duration < 0:
		return usageErr(stderr, "watch", fmt.Errorf("-duration %v: want a positive duration", *duration))
	}
	if *timestamp && *format != "events" {
		return usageErr(stderr, "watch", errors.New("-timestamp prefixes events; -format is summary"))
	}
	tr, err := tf.tracker()
	if err != nil {
		return usageErr(stderr, "watch", err)
	}
	flt, err := ff.parse(tr.Profile())
	if err == nil {
		err = flt.forFormat(*format)
	}
	if err != nil {
		return usageErr(stderr, "watch", err)
	}
	if openFrameSource == nil {
		fmt.Fprintf(stderr, "tcpct watch: live capture needs Linux (AF_PACKET sockets)\n")
		return exitInput
	}
	src, err := openFrameSource(*iface)
	if err != nil {
		fmt.Fprintf(stderr, "tcpct watch: %v\n", err)
		return exitInput
	}
	defer src.close()

	// Registered before the "capturing" line, so that a signal sent after
	// it stops watch cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opt := watchOptions{format: *format, interval: *interval, count: *count, duration: *duration, sweepEvery: time.Second}
	fmt.Fprintf(stderr, "tcpct watch: capturing on %s, profile %s; stop with Ctrl-C\n", src.describe(), tr.Profile().Name)
	w := bufio.NewWriterSize(stdout, 64<<10)
	ws := newWatchState(tr, *iface, isTerminal(stdout))
	ws.filter, ws.timestamp = flt, *timestamp
	err = ws.loop(ctx, src, opt, w)
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = outputError{ferr}
	}
	fmt.Fprintf(stderr, "tcpct watch: %d frames, %d TCP packets tracked, %d other frames skipped", ws.res.records, ws.res.tcp, ws.res.skipped)
	if ws.dropsKnown {
		fmt.Fprintf(stderr, ", %d dropped by the kernel (socket buffer full)", ws.drops)
	}
	fmt.Fprintln(stderr)
	if err != nil {
		if oe := (outputError{}); errors.As(err, &oe) {
			return outputFailed(stderr, "watch", oe.err)
		}
		fmt.Fprintf(stderr, "tcpct watch: %v\n", err)
		return exitInput
	}
	return exitOK
}

// watchState is what watch accumulates: the tracker, its event stream
// and the summary's counters.
type watchState struct {
	tr         *tcpct.Tracker
	sub        *tcpct.Subscription
	iface      string
	terminal   bool
	start      time.Time
	res        walkResult // records: frames; tcp: TCP packets; skips by reason
	sum        summary
	drops      uint64
	dropsKnown bool
	src        frameSource
	reports    int // summaries printed
	buf        []byte
	filter     *filter // the events printed
	timestamp  bool    // events get conntrack -E -o timestamp's prefix
}

func newWatchState(tr *tcpct.Tracker, iface string, terminal bool) *watchState {
	return &watchState{tr: tr, iface: iface, terminal: terminal,
		sum: summary{byState: make([]int, len(tr.Profile().StateNames)+1)}}
}

// loop reads frames until ctx ends, -count TCP packets were tracked or
// -duration passed. Everything runs on this goroutine: tracking, the
// periodic sweep, printing.
func (ws *watchState) loop(ctx context.Context, src frameSource, opt watchOptions, w *bufio.Writer) error {
	events := opt.format == "events"
	ws.src = src
	if events {
		ws.sub = ws.tr.Subscribe(1 << 14)
		defer ws.sub.Close()
	}
	ws.start = time.Now()
	var deadline time.Time
	if opt.duration > 0 {
		deadline = ws.start.Add(opt.duration)
	}
	nextSweep := ws.start.Add(opt.sweepEvery)
	nextReport := ws.start.Add(opt.interval)
	buf := make([]byte, capture.MaxRecord)
	var p capture.Packet
	var v tcpct.Verdict
	var out [1]tcpct.Verdict
	var pi pktInfo
	lost := uint64(0)
	defer func() {
		// Events still pending, and a last summary.
		if events {
			ws.drain(w)
			if n := ws.sub.Lost(); n > lost {
				fmt.Fprintf(w, "# %d events lost (subscriber buffer full)\n", n-lost)
			}
			ws.pollDrops()
		} else {
			ws.printSummary(w, time.Now())
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return nil
		}
		if !now.Before(nextSweep) {
			// The kernel's gc worker: reclaim expired entries (DESTROY
			// events) even when no packet arrives.
			ws.tr.Expire(now)
			nextSweep = now.Add(opt.sweepEvery)
			if events {
				if err := ws.flushEvents(w, &lost); err != nil {
					return err
				}
			}
		}
		if !events && !now.Before(nextReport) {
			ws.printSummary(w, now)
			if err := w.Flush(); err != nil {
				return outputError{err}
			}
			for !now.Before(nextReport) {
				nextReport = nextReport.Add(opt.interval)
			}
		}
		// Wait for a frame until the next timer, and at most 100 ms so
		// that a signal is noticed promptly.
		wait := min(nextSweep.Sub(now), 100*time.Millisecond)
		if !events {
			wait = min(wait, nextReport.Sub(now))
		}
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(now))
		}
		n, wire, link, ok, err := src.read(buf, max(wait, time.Millisecond))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		now = time.Now()
		ws.res.records++
		p.Decode(link, buf[:n], wire)
		p.Time = now.UnixNano()
		tcp, trunc := classify(&p)
		if !tcp && !trunc {
			ws.res.skip(p.Reason)
			continue
		}
		// The replay's packet path: a cut header with its ports finds
		// its entry; the checksum knob is honoured.
		pkt := [1]tcpct.Packet{packetOf(&p, &pi, tcp, p.Time, checksums(ws.tr))}
		ws.tr.TrackBatch(pkt[:], out[:])
		v = out[0]
		ws.res.tcp++
		ws.count(&v)
		if events {
			if err := ws.flushEvents(w, &lost); err != nil {
				return err
			}
		}
		if opt.count > 0 && ws.res.tcp >= opt.count {
			return nil
		}
	}
}

// count adds one packet's verdict to the summary counters.
func (ws *watchState) count(v *tcpct.Verdict) { ws.sum.count(v) }

// drain writes the pending events.
func (ws *watchState) drain(w *bufio.Writer) int {
	n := 0
	for {
		ev, ok := ws.sub.Poll()
		if !ok {
			return n
		}
		if ws.filter != nil && ws.filter.active && !ws.filter.entry(&ev.Entry) {
			continue
		}
		ws.buf = ws.buf[:0]
		if ws.timestamp {
			ws.buf = appendEventTime(ws.buf, ev.Time.UnixNano())
		}
		ws.buf = ev.Append(ws.buf)
		w.Write(ws.buf)
		n++
	}
}

// flushEvents writes the pending events and flushes them, so that each
// appears as it happens; a burst of lost events is reported once.
func (ws *watchState) flushEvents(w *bufio.Writer, lost *uint64) error {
	n := ws.drain(w)
	if l := ws.sub.Lost(); l > *lost {
		fmt.Fprintf(w, "# %d events lost (subscriber buffer full)\n", l-*lost)
		*lost = l
		n++
	}
	if n == 0 {
		return nil
	}
	if err := w.Flush(); err != nil {
		return outputError{err}
	}
	return nil
}

func (ws *watchState) pollDrops() {
	if n, ok := ws.src.dropped(); ok {
		ws.drops += n
		ws.dropsKnown = true
	}
}

// printSummary prints the counters since the start and the table as it
// stands at now.
func (ws *watchState) printSummary(w *bufio.Writer, now time.Time) {
	ws.tr.Expire(now)
	ws.pollDrops()
	if ws.terminal {
		w.WriteString("\x1b[H\x1b[2J") // redraw in place
	} else if ws.reports > 0 {
		w.WriteString("\n")
	}
	ws.reports++
	p := ws.tr.Profile()
	st := ws.tr.Stats()
	fmt.Fprintf(w, "watch     %s since %s (%v)\n", ws.iface, ws.start.UTC().Format(time.RFC3339), now.Sub(ws.start).Round(time.Millisecond))
	fmt.Fprintf(w, "frames    %d: %d TCP packets tracked, %d other frames skipped", ws.res.records, ws.res.tcp, ws.res.skipped)
	if ws.dropsKnown {
		fmt.Fprintf(w, "; %d dropped by the kernel", ws.drops)
	}
	fmt.Fprintf(w, "\nprofile   %s (%s)\n", p.Name, p.Title)

	ws.sum.printPackets(w, p)

	printConnections(w, p, &st, "live now", func(fn func(*tcpct.Entry) bool) { ws.tr.Range(now, fn) })
}
