//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdac824a/tcpct/capture"
)

// syncBuffer is an io.Writer the watch goroutine writes while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func TestWatchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"watch"}, exitUsage, "-i: an interface is required"},
		{[]string{"watch", "-i", "lo", "-format", "jsonl"}, exitUsage, `-format: unknown format "jsonl"`},
		{[]string{"watch", "-i", "lo", "-interval", "0s"}, exitUsage, "-interval"},
		{[]string{"watch", "-i", "lo", "-sysctl", "tcp_lose=1"}, exitUsage, "tcp_lose"},
		{[]string{"watch", "-i", "lo", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"watch", "-i", "tcpct-no-such0"}, exitInput, "interface tcpct-no-such0"},
	} {
		code, _, errs := runCmd(t, nil, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%q: status %d, stderr %q; want status %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
	code, out, _ := runCmd(t, nil, "watch", "-h")
	if code != 0 || !strings.Contains(out, "usage: tcpct watch -i IFACE") {
		t.Errorf("watch -h: status %d, output %q", code, out)
	}
}

// fakeSource hands out the frames of a capture, then nothing.
type fakeSource struct {
	frames [][]byte
	link   capture.LinkType
	closed bool
}

func (f *fakeSource) read(buf []byte, timeout time.Duration) (int, int, capture.LinkType, bool, error) {
	if len(f.frames) == 0 {
		time.Sleep(timeout)
		return 0, 0, 0, false, nil
	}
	n := copy(buf, f.frames[0])
	f.frames = f.frames[1:]
	return n, n, f.link, true, nil
}
func (f *fakeSource) dropped() (uint64, bool) { return 0, true }
func (f *fakeSource) describe() string        { return "fake" }
func (f *fakeSource) close() error            { f.closed = true; return nil }

// withFakeSource makes watch read the seed capture's frames.
func withFakeSource(t *testing.T) *fakeSource {
	t.Helper()
	r, err := capture.Open(seedPcap)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := &fakeSource{}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		src.frames = append(src.frames, append([]byte(nil), p.Data...))
		src.link = p.Link
	}
	old := openFrameSource
	openFrameSource = func(iface string) (frameSource, error) { return src, nil }
	t.Cleanup(func() { openFrameSource = old })
	return src
}

// The loop, without a socket: the seed's 13 frames (2 ARP, 11 TCP) at
// wall-clock times give the seed's events, and -count stops after the
// 11th TCP packet.
func TestWatchLoopFake(t *testing.T) {
	src := withFakeSource(t)
	start := time.Now()
	code, out, errs := runCmd(t, nil, "watch", "-i", "x", "-count", "11", "-duration", "10s")
	if code != 0 || !src.closed {
		t.Fatalf("status %d, closed %v, stderr %q", code, src.closed, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("-count 11 took %v: it did not stop at the 11th TCP packet", d)
	}
	tuple := "src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23"
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || !strings.Contains(l, tuple) {
			t.Fatalf("unexpected line %q in\n%s", l, out)
		}
		states = append(states, f[0]+" "+f[4])
	}
	want := "[NEW] SYN_SENT,[UPDATE] SYN_RECV,[UPDATE] ESTABLISHED,[UPDATE] FIN_WAIT,[UPDATE] CLOSE_WAIT,[UPDATE] LAST_ACK,[UPDATE] TIME_WAIT"
	if got := strings.Join(states, ","); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(errs, "13 frames, 11 TCP packets tracked, 2 other frames skipped, 0 dropped") {
		t.Errorf("stderr %q", errs)
	}
}

func TestWatchSummaryFake(t *testing.T) {
	withFakeSource(t)
	code, out, errs := runCmd(t, nil, "watch", "-i", "x", "-format", "summary", "-interval", "100ms", "-duration", "350ms")
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	// Three or four periodic summaries and the final one, each complete.
	n := strings.Count(out, "watch     x since ")
	if n < 3 || n > 5 {
		t.Errorf("%d summaries in\n%s", n, out)
	}
	last := out[strings.LastIndex(out, "watch     x since"):]
	for _, want := range []string{
		"frames    13: 11 TCP packets tracked, 2 other frames skipped",
		"NEW                   1\n",
		"ESTABLISHED          10\n",
		"TIME_WAIT             1\n",
		"created 1; destroyed 0 expired",
		"live now: 1 (1 assured)",
	} {
		if !strings.Contains(last, want) {
			t.Errorf("final summary lacks %q:\n%s", want, last)
		}
	}
}

// TestWatchVeth runs real TCP connections over a veth pair whose far end
// is in a network namespace and checks the events watch prints for them,
// live, on the near end.
func TestWatchVeth(t *testing.T) {
	v := newVethNetns(t, "w", 100)
	ns, near, serverIP, clientIP := v.ns, v.near, v.serverIP, v.clientIP

	sport, finished := echoServer(t, ns, serverIP)

	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"watch", "-i", near, "-format", "events", "-sysctl", "tcp_timeout_close=1", "-duration", "20s"}, nil, &out, &errs)
	}()
	if !waitFor(5*time.Second, func() bool { return strings.Contains(errs.String(), "capturing on "+near) }) {
		t.Fatalf("watch did not start; stderr %q", errs.String())
	}

	port1, port2 := closeAndAbort(t, serverIP, sport, finished)

	tuple := func(cport int) string {
		return fmt.Sprintf("src=%s dst=%s sport=%d dport=%d", clientIP, serverIP, cport, sport)
	}
	reply := func(cport int) string {
		return fmt.Sprintf("src=%s dst=%s sport=%d dport=%d", serverIP, clientIP, sport, cport)
	}
	destroy2 := "[DESTROY] tcp      6 CLOSE " + tuple(port2) + " " + reply(port2) + " [ASSURED]"
	// The CLOSE entry expires after 1 s; the sweep that runs every
	// second, with no packet arriving, must report it.
	if !waitFor(4*time.Second, func() bool { return strings.Contains(out.String(), destroy2) }) {
		t.Errorf("no DESTROY of the reset connection within 4 s of its RST")
	}
	// SIGINT stops watch cleanly: it holds the signal while it runs, and
	// it runs (-duration 20s is only a backstop).
	select {
	case <-done:
		t.Errorf("watch stopped before SIGINT")
	default:
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("watch: status %d, stderr %q", code, errs.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatal("watch did not stop")
	}
	got := out.String()
	t.Logf("events:\n%s%s", got, errs.String())

	// Each connection's events, in order.
	ts := regexp.MustCompile(`^ *\[(NEW|UPDATE|DESTROY)\] tcp      6 (\d+ )?([A-Z_0-9]+) (.*)$`)
	events := map[int][]string{}
	for _, l := range strings.Split(strings.TrimRight(got, "\n"), "\n") {
		m := ts.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected line %q", l)
			continue
		}
		for _, p := range []int{port1, port2} {
			if strings.HasPrefix(m[4], tuple(p)+" ") {
				events[p] = append(events[p], l)
			}
		}
	}
	check := func(name string, cport int, want []string) {
		t.Helper()
		evs := events[cport]
		i := 0
		for _, e := range evs {
			if i < len(want) && strings.Contains(e, want[i]) {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("%s (client port %d): missing %q (in order) among\n%s", name, cport, want[i], strings.Join(evs, "\n"))
		}
		if n := strings.Count(strings.Join(evs, "\n"), "[NEW]"); n != 1 {
			t.Errorf("%s: %d NEW events, want 1", name, n)
		}
	}
	common := func(cport int) []string {
		return []string{
			"    [NEW] tcp      6 120 SYN_SENT " + tuple(cport) + " [UNREPLIED] " + reply(cport),
			" [UPDATE] tcp      6 60 SYN_RECV " + tuple(cport) + " " + reply(cport),
			" ESTABLISHED " + tuple(cport) + " " + reply(cport) + " [ASSURED]",
		}
	}
	check("FIN-closed connection", port1, append(common(port1),
		" FIN_WAIT "+tuple(port1),
		" TIME_WAIT "+tuple(port1)+" "+reply(port1)+" [ASSURED]"))
	check("reset connection", port2, append(common(port2),
		" [UPDATE] tcp      6 1 CLOSE "+tuple(port2)+" "+reply(port2)+" [ASSURED]",
		destroy2))
	if s := strings.Join(events[port1], "\n"); strings.Contains(s, "DESTROY") {
		t.Errorf("the TIME_WAIT connection was destroyed:\n%s", s)
	}
	// Each packet is tracked once: the two exchanges take 14 to 18
	// packets (handshakes, data and echo, FIN-FIN-ACK, RST; some ACKs
	// may be delayed or merged); seeing the host's outgoing packets
	// twice would give at least 28.
	var frames, tcp, skipped, drops int
	if _, err := fmt.Sscanf(errs.String()[strings.LastIndex(errs.String(), "tcpct watch: "):],
		"tcpct watch: %d frames, %d TCP packets tracked, %d other frames skipped, %d dropped by the kernel",
		&frames, &tcp, &skipped, &drops); err != nil {
		t.Errorf("stderr %q: %v", errs.String(), err)
	}
	if tcp < 12 || tcp > 24 || drops != 0 {
		t.Errorf("%d TCP packets tracked, %d dropped; want 12..24 and 0", tcp, drops)
	}
}

// vethNetns is a veth pair whose far end, the server's, is in a network
// namespace of its own; the near end, the client's, stays in the test's.
type vethNetns struct {
	ns, near, far      string
	serverIP, clientIP string
}

// newVethNetns creates one, named after the test process and tag, with
// addresses in 10.(base+…).x/24, and removes it when the test ends. It
// skips the test without root, iproute2, an AF_PACKET socket or network
// namespaces.
func newVethNetns(t *testing.T, tag string, base int) *vethNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (AF_PACKET socket, network namespace, veth pair)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	if fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))); err != nil {
		t.Skipf("cannot open an AF_PACKET socket: %v", err)
	} else {
		unix.Close(fd)
	}
	pid := os.Getpid()
	prefix := fmt.Sprintf("10.%d.%d", base+(pid>>8)%50, pid&0xff)
	v := &vethNetns{
		ns:   fmt.Sprintf("tcpct%s%d", tag, pid),
		near: fmt.Sprintf("tc%s%da", tag, pid), far: fmt.Sprintf("tc%s%db", tag, pid),
		serverIP: prefix + ".1", clientIP: prefix + ".2",
	}
	if err := shell("", "ip", "netns", "add", v.ns); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", v.near).Run()
		exec.Command("ip", "netns", "del", v.ns).Run()
	})
	for _, args := range [][]string{
		{"link", "add", v.near, "type", "veth", "peer", "name", v.far},
		{"link", "set", v.far, "netns", v.ns},
		{"-n", v.ns, "addr", "add", v.serverIP + "/24", "dev", v.far},
		{"-n", v.ns, "link", "set", v.far, "up"},
		{"-n", v.ns, "link", "set", "lo", "up"},
		{"addr", "add", v.clientIP + "/24", "dev", v.near},
		{"link", "set", v.near, "up"},
	} {
		if err := shell("", "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// echoServer listens in the namespace and echoes every connection until
// FIN or RST; finished gets a value when one ends.
func echoServer(t *testing.T, ns, ip string) (port int, finished <-chan struct{}) {
	t.Helper()
	ln := listenInNetns(t, ns, ip+":0")
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
				done <- struct{}{}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, done
}

// closeAndAbort runs two connections to the echo server, each with data
// both ways: the first closed with FINs by both sides, the second aborted
// with an RST by the client. It returns their client ports.
func closeAndAbort(t *testing.T, serverIP string, sport int, finished <-chan struct{}) (port1, port2 int) {
	t.Helper()
	dial := func() *net.TCPConn {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(serverIP, fmt.Sprint(sport)), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := tc.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(tc, make([]byte, 6)); err != nil {
			t.Fatal(err)
		}
		return tc
	}
	c1 := dial()
	port1 = c1.LocalAddr().(*net.TCPAddr).Port
	c1.Close()
	select {
	case <-finished: // the server has closed its side: FIN, then our last ACK
	case <-time.After(3 * time.Second):
		t.Fatal("the server did not see the FIN")
	}
	time.Sleep(50 * time.Millisecond)
	c2 := dial()
	port2 = c2.LocalAddr().(*net.TCPAddr).Port
	time.Sleep(50 * time.Millisecond) // every ACK of the handshake and the data is out
	c2.SetLinger(0)
	c2.Close() // RST
	return port1, port2
}

// shell runs a command with stdin; the error carries its output.
func shell(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// listenInNetns opens a TCP listener inside the named network namespace:
// a locked OS thread enters it, creates the socket and comes back. The
// socket stays in the namespace it was created in.
func listenInNetns(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: err}
			return // the thread is discarded with the goroutine
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %v", ns, err)}
			return
		}
		ln, lerr := net.Listen("tcp4", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread ends with the goroutine.
			ch <- result{ln, lerr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ln, lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.ln
}
