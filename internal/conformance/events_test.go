package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// TestKernelEventsDifferential compares the event streams: a generated
// trace goes through the kernel, with conntrack -E listening in its
// namespace, and through tcpct with a subscription. Per connection
// (original tuple) the NEW and UPDATE events must agree in order: type,
// TCP state (or none, for an UPDATE of flags only), both tuples,
// [UNREPLIED], [ASSURED]. Left out: the timeout numbers (the kernel's
// jiffies and the injection's pace move them by a second) and DESTROYs
// (see perConnEvents). A first run of this comparison, by hand, found tcpct missing the
// UPDATE SYN_RECV the kernel sends when a retransmitted SYN/ACK resyncs
// after an ignored SYN (49 events in 5 traces of 3,000 packets).
func TestKernelEventsDifferential(t *testing.T) {
	needConntrack(t)
	seed := seedFrom("TCPCT_EVENTS_SEED")
	for i, v := range tracegen.Recordings {
		t.Run(v.Name, func(t *testing.T) {
			cfg := v.Config
			cfg.Seed, cfg.Packets = seed+uint64(i), 3000
			if cfg.Pause > 0 || cfg.Cells || testing.Short() {
				cfg.Packets = 600
			}
			// conntrack -E drops events when it does not get the CPU in
			// time (ENOBUFS, seen once with every test package running at
			// once): that is the listener's loss, not a disagreement, so
			// the variant is run again, up to three times.
			for attempt := 1; !eventsDifferential(t, cfg, v.Sysctls, seed); attempt++ {
				if attempt == 3 {
					t.Fatal("conntrack -E lost events in three runs")
				}
			}
		})
	}
}

// eventsDifferential runs one generated trace through the kernel, with
// conntrack -E listening, and through tcpct, and compares the events. It
// returns false, having compared nothing, when conntrack -E lost events.
func eventsDifferential(t *testing.T, cfg tracegen.Config, sysctls []string, seed uint64) bool {
	pkts := tracegen.Generate(cfg)
	r, err := kernel.New(kernel.Options{Sysctls: sysctlMap(sysctls)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ns := r.Namespace()
	// A large socket buffer, so that a burst of events is not dropped
	// (conntrack -E reports ENOBUFS on stderr if it is).
	lst := exec.Command("ip", "netns", "exec", ns, "conntrack", "-E", "-p", "tcp", "-b", "16777216")
	var lstErr bytes.Buffer
	lst.Stderr = &lstErr
	stdout, err := lst.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := lst.Start(); err != nil {
		t.Skipf("conntrack -E: %v", err)
	}
	var mu sync.Mutex
	var klines []string
	read := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			klines = append(klines, sc.Text())
			mu.Unlock()
		}
		close(read)
	}()
	defer func() { lst.Process.Kill(); lst.Wait() }()
	// The listener is up once an entry made by hand comes out of it.
	probed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range klines {
			if strings.Contains(l, "sport=1 dport=2 ") {
				return true
			}
		}
		return false
	}
	for i := 0; i < 50 && !probed(); i++ {
		exec.Command("ip", "netns", "exec", ns, "conntrack", "-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2",
			"--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "5").Run()
		time.Sleep(100 * time.Millisecond)
		exec.Command("ip", "netns", "exec", ns, "conntrack", "-D", "-p", "tcp", "-s", "192.0.2.1", "--sport", "1").Run()
	}
	if !probed() {
		t.Fatal("conntrack -E printed nothing for an entry made by hand")
	}

	in := kernelPackets(pkts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := r.Run(ctx, in, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last events reach the listener
	lst.Process.Signal(syscall.SIGTERM)
	select {
	case <-read:
	case <-time.After(3 * time.Second):
		lst.Process.Kill()
		<-read
	}

	if strings.Contains(lstErr.String(), "ENOBUFS") {
		t.Logf("conntrack -E lost events (its socket buffer overran): %s", lstErr.String())
		return false
	}

	// tcpct, on the same packets.
	var pb bytes.Buffer
	if err := tracegen.WritePcap(&pb, pkts); err != nil {
		t.Fatal(err)
	}
	ours := trackEvents(t, &pb, sysctls)

	mu.Lock()
	kern := perConnEvents(klines)
	mu.Unlock()
	mine := perConnEvents(ours)
	conns, events, differ := 0, 0, 0
	for k, kev := range kern {
		if strings.Contains(k, "sport=1 dport=2") {
			continue // the probe
		}
		conns++
		events += len(kev)
		if strings.Join(kev, "\n") != strings.Join(mine[k], "\n") {
			if differ++; differ <= 3 {
				t.Errorf("%s: events differ\nkernel:\n  %s\ntcpct:\n  %s", k, strings.Join(kev, "\n  "), strings.Join(mine[k], "\n  "))
			}
		}
	}
	for k := range mine {
		if _, ok := kern[k]; !ok {
			if differ++; differ <= 3 {
				t.Errorf("%s: tcpct has events, the kernel none:\n  %s", k, strings.Join(mine[k], "\n  "))
			}
		}
	}
	if conns < cfg.Packets/60 {
		t.Errorf("only %d connections had kernel events", conns)
	}
	t.Logf("seed %d: %d connections, %d kernel events compared, %d connections differ", seed, conns, events, differ)
	if differ > 0 {
		t.Errorf("%d connections differ (TCPCT_EVENTS_SEED=%d reproduces)", differ, seed)
	}
	return true
}

// trackEvents runs a capture through a tracker and returns its events as
// conntrack -E prints them.
func trackEvents(t *testing.T, r io.Reader, sysctls []string) []string {
	t.Helper()
	tr := newTracker(t, sysctls)
	sub := tr.Subscribe(1 << 16)
	defer sub.Close()
	var lines []string
	var buf []byte
	trackCapture(t, tr, r, func(*capture.Packet, *tcpct.Verdict) {
		for {
			ev, ok := sub.Poll()
			if !ok {
				return
			}
			buf = ev.Append(buf[:0])
			lines = append(lines, strings.TrimSuffix(string(buf), "\n"))
		}
	})
	if n := sub.Lost(); n > 0 {
		t.Fatalf("%d events lost", n)
	}
	return lines
}

// eventLine splits a conntrack -E line: type, time left (may be empty),
// state (empty for an UPDATE of flags only), and the tuples with flags.
var eventLine = regexp.MustCompile(`^ *\[(NEW|UPDATE|DESTROY)\] tcp +6 (\d+ )?(?:([A-Z][A-Z_0-9]*) )?(src=\S+ dst=\S+ sport=\d+ dport=\d+) (.*)$`)

// perConnEvents groups event lines by original tuple, in the comparable
// form described at TestKernelEventsDifferential.
func perConnEvents(lines []string) map[string][]string {
	m := map[string][]string{}
	for _, l := range lines {
		f := eventLine.FindStringSubmatch(l)
		if f == nil {
			continue
		}
		typ, state, orig, rest := f[1], f[3], f[4], f[5]
		if typ == "DESTROY" {
			// Left out: an expiry's DESTROY comes from the kernel's gc,
			// late or after the run; and whether a kill shows a time
			// left depends, below a second, on the phase of the
			// kernel's jiffies (CLOSE with 1 s, killed 0.4 ms later by a
			// SYN: the kernel printed none, tcpct "1"). The NEW of a
			// re-created connection still shows the kill; DESTROY lines
			// are compared in cmd/tcpct's TestWatchMatchesKernelEvents
			// and TestEventsRefusedConnection.
			continue
		}
		// Drop what only ctnetlink adds for entries made from user space.
		if i := strings.Index(rest, " [USERSPACE]"); i >= 0 {
			rest = rest[:i]
		}
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, " mark=0"), " ")
		m[orig] = append(m[orig], fmt.Sprintf("%s %s %s %s", typ, state, orig, rest))
	}
	return m
}
