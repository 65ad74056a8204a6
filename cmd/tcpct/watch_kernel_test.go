//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchMatchesKernelEvents asks the kernel. The server end of a veth
// pair sits in a network namespace whose nf_conntrack tracks TCP (an
// nftables rule matches ct state); conntrack -E prints the kernel's events
// there while tcpct watch, on the client end, tracks the same frames. For
// four connections (closed with FINs, aborted with an RST, refused by a
// closed port, picked up mid-stream) the two event streams must agree: the same events in the
// same order, each with its type, TCP state and [UNREPLIED]/[ASSURED], and
// a DESTROY with the time left exactly when the kernel prints one. Expiry
// DESTROYs are left out: the kernel's gc reports them up to a minute late,
// tcpct's sweep within a second. A helper's run of this comparison found
// tcpct's DESTROY of the refused connection in SYN_SENT, the kernel's in
// CLOSE; another, a state on the picked-up connection's flag-only UPDATEs,
// where the kernel prints none.
func TestWatchMatchesKernelEvents(t *testing.T) {
	for _, c := range []string{"nft", "conntrack"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s", c)
		}
	}
	v := newVethNetns(t, "k", 200)
	ns, near, serverIP, clientIP := v.ns, v.near, v.serverIP, v.clientIP
	sport, finished := echoServer(t, ns, serverIP)
	// A connection made before anything tracks it: nf_conntrack starts on
	// the namespace's traffic with the rule below, and watch later still.
	// Its next data is picked up mid-stream by both (tcp_loose=1).
	c4, err := net.DialTimeout("tcp", net.JoinHostPort(serverIP, fmt.Sprint(sport)), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	port4 := c4.LocalAddr().(*net.TCPAddr).Port
	echo := func() {
		c4.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c4.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c4, make([]byte, 6)); err != nil {
			t.Fatal(err)
		}
	}
	echo()

	// A rule that looks at ct state makes nf_conntrack track the
	// namespace's TCP; the knobs match the -sysctl flags given to watch.
	ruleset := "table inet tcpctk {\n chain in { type filter hook input priority 0; ct state new,established,related,invalid counter; }\n}\n"
	if err := shell(ruleset, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		t.Skipf("nftables: %v", err)
	}
	knobs := map[string]string{"tcp_timeout_close": "1", "tcp_timeout_time_wait": "2"}
	var sysctlFlags []string
	for k, v := range knobs {
		if err := shell("", "ip", "netns", "exec", ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_"+k+"="+v); err != nil {
			t.Skipf("sysctl: %v", err)
		}
		sysctlFlags = append(sysctlFlags, "-sysctl", k+"="+v)
	}

	kernel := exec.Command("ip", "netns", "exec", ns, "conntrack", "-E", "-p", "tcp")
	kout, err := kernel.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.Start(); err != nil {
		t.Skipf("conntrack -E: %v", err)
	}
	var klines syncBuffer
	kdone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(kout)
		for sc.Scan() {
			klines.Write([]byte(sc.Text() + "\n"))
		}
		close(kdone)
	}()
	t.Cleanup(func() { kernel.Process.Kill(); kernel.Wait() })

	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"watch", "-i", near, "-format", "events", "-duration", "30s"}, sysctlFlags...)
		done <- run(args, nil, &out, &errs)
	}()
	if !waitFor(5*time.Second, func() bool { return strings.Contains(errs.String(), "capturing on "+near) }) {
		t.Fatalf("watch did not start; stderr %q", errs.String())
	}
	// Wait until conntrack -E listens: an entry made by hand (ctnetlink
	// announces it too) must come out before the real traffic starts.
	probe := func() bool { return strings.Contains(klines.String(), "sport=1 dport=2 ") }
	for i := 0; i < 50 && !probe(); i++ {
		shell("", "ip", "netns", "exec", ns, "conntrack", "-I", "-p", "tcp", "-s", "192.0.2.1", "-d", "192.0.2.2",
			"--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "5")
		waitFor(100*time.Millisecond, probe)
		shell("", "ip", "netns", "exec", ns, "conntrack", "-D", "-p", "tcp", "-s", "192.0.2.1", "--sport", "1")
	}
	if !probe() {
		t.Fatalf("conntrack -E printed nothing for an entry made by hand:\n%s", klines.String())
	}

	port1, port2 := closeAndAbort(t, serverIP, sport, finished)
	time.Sleep(100 * time.Millisecond)
	// A port nobody listens on in the namespace: SYN, then the server's
	// RST. The client port is bound, to find its events.
	free, err := net.Listen("tcp4", clientIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	port3 := free.Addr().(*net.TCPAddr).Port
	free.Close()
	closedPort := sport + 1
	if closedPort > 65535 {
		closedPort = sport - 1
	}
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP), Port: port3}}
	if c3, err := d.Dial("tcp4", net.JoinHostPort(serverIP, fmt.Sprint(closedPort))); err == nil {
		c3.Close()
		t.Fatalf("port %d of the namespace accepted a connection", closedPort)
	}
	// The picked-up connection: data and its echo twice (NEW ESTABLISHED
	// [UNREPLIED]; the reply clears [UNREPLIED], the next ACK sets
	// [ASSURED], neither changes the state, so the kernel prints no state
	// on those UPDATEs), then FINs.
	echo()
	echo()
	c4.Close()
	select {
	case <-finished:
	case <-time.After(3 * time.Second):
		t.Fatal("the server did not see the picked-up connection's FIN")
	}
	time.Sleep(500 * time.Millisecond)

	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("watch: status %d, stderr %q", code, errs.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatal("watch did not stop")
	}
	kernel.Process.Signal(os.Interrupt)
	select {
	case <-kdone:
	case <-time.After(3 * time.Second):
		kernel.Process.Kill()
		<-kdone
	}

	// Both streams, per connection (by client port): type, timeout only
	// on a DESTROY, state, and the rest of the line (tuples and flags).
	// An UPDATE of flags only has no state.
	line := regexp.MustCompile(`^ *\[(NEW|UPDATE|DESTROY)\] tcp +6 (\d+ )?(?:([A-Z][A-Z_0-9]*) )?(src=\S+ dst=\S+ sport=(\d+) .*)$`)
	perConn := func(text string) map[string][]string {
		m := map[string][]string{}
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			f := line.FindStringSubmatch(l)
			if f == nil {
				continue
			}
			typ, left, state, rest, port := f[1], f[2], f[3], f[4], f[5]
			if typ == "DESTROY" && left == "" {
				continue // an expiry: reported at different times (see above)
			}
			ev := typ + " " + state + " " + rest
			if typ == "DESTROY" {
				ev = "DESTROY (time left) " + state + " " + rest
			}
			m[port] = append(m[port], ev)
		}
		return m
	}
	k, w := perConn(klines.String()), perConn(out.String())
	for _, c := range []struct {
		name string
		port int
		min  int // events the kernel must have shown
	}{{"closed with FINs", port1, 5}, {"aborted with RST", port2, 4}, {"refused", port3, 2}, {"picked up", port4, 4}} {
		p := fmt.Sprint(c.port)
		if len(k[p]) < c.min {
			t.Errorf("%s: the kernel showed only %d events:\n%s", c.name, len(k[p]), klines.String())
			continue
		}
		if strings.Join(k[p], "\n") != strings.Join(w[p], "\n") {
			t.Errorf("%s: events differ\nkernel:\n  %s\ntcpct watch:\n  %s", c.name, strings.Join(k[p], "\n  "), strings.Join(w[p], "\n  "))
		}
	}
	t.Logf("kernel:\n%s\ntcpct:\n%s", klines.String(), out.String())
}
