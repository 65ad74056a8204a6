// Package router is the second kernel oracle: a live router. Where package
// kernel injects crafted packets through loopback, here real Linux TCP
// stacks talk through a router namespace and nothing is re-injected:
//
//	client ns ── eth0 ═══ cside ── router ns ── sside ═══ eth0 ── server ns
//
// The router forwards between two veth pairs and runs nf_conntrack. Its
// nftables forward chain (after conntrack, which runs in PREROUTING) writes
// each TCP packet's verdict — ct state and ct direction — into the IPv4
// TTL or IPv6 hop limit (codes 241–249), and accepts every packet, so
// none is lost to the method. ip_forward() (net/ipv4/ip_forward.c) and
// ip6_forward() (net/ipv6/ip6_output.c) decrement the TTL before the
// forward hook, so the stamp reaches the wire as written: every stamp of
// every run so far decoded.
//
// One AF_PACKET socket in the router namespace sees every frame, in and
// out, on both veths (Capture). RPS steers both veths' packets to CPU 0,
// so the router handles one packet at a time — receive, conntrack, stamp,
// send — and the socket's order is conntrack's order. An incoming TCP
// packet is what the router's conntrack saw (the front: what tcpct
// replays); its outgoing copy, equal but for the stamp, carries the
// kernel's verdict (the back). Check replays the front through the real
// tcpct.Tracker, with the router's sysctls as knobs, and compares packet
// by packet; CompareTable compares the router's conntrack -L at the end
// with tcpct's table.
//
// Impairments come from the endpoints, not the router: each endpoint
// queues its outgoing TCP packets to an NFQUEUE program (Impairment) that
// drops, duplicates, delays (and so reorders) and corrupts them. The kernel
// this was built on has no netem qdisc and no nft queue expression, so the
// queue rule is the xtables NFQUEUE target, installed with iptables.
package router

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
)

// Endpoint names one of the lab's namespaces.
type Endpoint int

const (
	Client Endpoint = iota
	Router
	Server
)

func (e Endpoint) String() string { return [...]string{"client", "router", "server"}[e] }

// Addresses of the lab. They live only inside the lab's namespaces:
// 198.18.0.0/15 is the benchmarking range of RFC 2544 (RFC 6890), the
// IPv6 ones are unique local (RFC 4193).
var (
	ClientV4 = netip.MustParseAddr("198.18.1.2")
	ServerV4 = netip.MustParseAddr("198.18.2.2")
	ClientV6 = netip.MustParseAddr("fd7c:7c01::2")
	ServerV6 = netip.MustParseAddr("fd7c:7c02::2")
)

// NamePrefix starts the name of every namespace this package creates;
// stale ones (whose creating process is gone) are removed on the next run.
const NamePrefix = "tcpct-router-"

// Options configure a lab.
type Options struct {
	// Sysctls are the router's conntrack knobs, named as tcpct's knobs
	// are ("tcp_timeout_established", "tcp_loose"): each is written to
	// /proc/sys/net/netfilter/nf_conntrack_NAME in the router namespace,
	// and Check gives the same list to the tracker.
	Sysctls map[string]string
	// Impair, if any rate is set, queues every TCP packet the client and
	// the server send to an impairment program (needs iptables).
	Impair Impairment
	// KeepOffloads leaves the veths' offloads (TSO, GSO, GRO, checksum)
	// as they are. By default ethtool turns them off, so every packet on
	// the wire is one segment with its checksum filled in.
	KeepOffloads bool
}

// Available reports why a lab cannot be built here, or nil if it can:
// it needs what the kernel oracle needs (root, ip, nft, network
// namespaces).
func Available() error { return kernel.Available() }

// Lab is three namespaces joined by two veth pairs, the router's ruleset
// and sysctls, and (with Options.Impair) the endpoints' impairment
// programs. Close removes everything.
type Lab struct {
	names    [3]string
	fds      [3]int
	opts     Options
	impair   [2]*impairer // client, server
	offloads bool         // offloads were turned off
	rpsErr   error        // why the router's packets are not steered to one CPU
	closed   bool
}

var seq atomic.Uint32

// New builds a lab. On error nothing is left behind.
func New(opts Options) (l *Lab, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	CleanupStale()
	base := fmt.Sprintf("%s%d-%d-", NamePrefix, os.Getpid(), seq.Add(1))
	l = &Lab{opts: opts, fds: [3]int{-1, -1, -1}}
	for e := Client; e <= Server; e++ {
		l.names[e] = base + e.String()
	}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	for e := Client; e <= Server; e++ {
		if out, err := exec.Command("ip", "netns", "add", l.names[e]).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ip netns add: %v: %s", err, bytes.TrimSpace(out))
		}
		fd, err := unix.Open("/run/netns/"+l.names[e], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open namespace: %w", err)
		}
		l.fds[e] = fd
	}
	if err := l.setup(); err != nil {
		return nil, err
	}
	return l, nil
}

// Namespace is the name of one of the lab's network namespaces.
func (l *Lab) Namespace(e Endpoint) string { return l.names[e] }

// OffloadsOff says whether the veths' offloads were turned off (ethtool
// was there and worked).
func (l *Lab) OffloadsOff() bool { return l.offloads }

// Serialized says why the router may handle two packets at once on two
// CPUs (nil when both veths steer every packet to CPU 0).
func (l *Lab) Serialized() error { return l.rpsErr }

// neighbours makes every link-layer neighbour permanent: no neighbour
// discovery runs, and no packet waits for (or is dropped by) address
// resolution in the router.
func (l *Lab) neighbours() error {
	mac := func(e Endpoint, dev string) (string, error) {
		out, err := exec.Command("ip", "-n", l.names[e], "-br", "link", "show", "dev", dev).Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) < 3 {
			return "", fmt.Errorf("link address of %s in %s: %v %q", dev, e, err, out)
		}
		return f[2], nil
	}
	for _, n := range []struct {
		on      Endpoint
		dev     string
		v4, v6  string
		peer    Endpoint
		peerDev string
	}{
		{Router, "cside", ClientV4.String(), ClientV6.String(), Client, "eth0"},
		{Router, "sside", ServerV4.String(), ServerV6.String(), Server, "eth0"},
		{Client, "eth0", "198.18.1.1", "fd7c:7c01::1", Router, "cside"},
		{Server, "eth0", "198.18.2.1", "fd7c:7c02::1", Router, "sside"},
	} {
		m, err := mac(n.peer, n.peerDev)
		if err != nil {
			return err
		}
		for _, a := range []string{n.v4, n.v6} {
			if err := ip("-n", l.names[n.on], "neigh", "replace", a, "lladdr", m, "dev", n.dev, "nud", "permanent"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ip runs an ip(8) command.
func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Exec runs a command inside one of the namespaces, with stdin, and
// returns its standard output.
func (l *Lab) Exec(e Endpoint, stdin string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.names[e]}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s (in %s): %v: %s", strings.Join(args, " "), e, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// routerRuleset stamps every forwarded TCP packet with its conntrack
// verdict and accepts it. One table per family: the stamp field differs.
func routerRuleset() string {
	var b strings.Builder
	for _, f := range []struct{ family, field string }{{"ip", "ip ttl"}, {"ip6", "ip6 hoplimit"}} {
		fmt.Fprintf(&b, "table %s tcpct_router {\n\tchain forward_stamp {\n", f.family)
		b.WriteString("\t\ttype filter hook forward priority 0; policy accept;\n")
		b.WriteString("\t\tmeta l4proto != tcp accept\n")
		for _, s := range stamps {
			if s.match == "" {
				continue
			}
			fmt.Fprintf(&b, "\t\t%s %s set %d accept\n", s.match, f.field, s.code)
		}
		fmt.Fprintf(&b, "\t\t%s set %d accept\n", f.field, stampOther)
		b.WriteString("\t}\n}\n")
	}
	return b.String()
}

func (l *Lab) setup() error {
	c, r, s := l.names[Client], l.names[Router], l.names[Server]
	steps := [][]string{
		{"-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "cside", "netns", r},
		{"-n", s, "link", "add", "eth0", "type", "veth", "peer", "name", "sside", "netns", r},
		{"-n", c, "addr", "add", ClientV4.String() + "/24", "dev", "eth0"},
		{"-n", c, "addr", "add", ClientV6.String() + "/64", "dev", "eth0", "nodad"},
		{"-n", r, "addr", "add", "198.18.1.1/24", "dev", "cside"},
		{"-n", r, "addr", "add", "fd7c:7c01::1/64", "dev", "cside", "nodad"},
		{"-n", r, "addr", "add", "198.18.2.1/24", "dev", "sside"},
		{"-n", r, "addr", "add", "fd7c:7c02::1/64", "dev", "sside", "nodad"},
		{"-n", s, "addr", "add", ServerV4.String() + "/24", "dev", "eth0"},
		{"-n", s, "addr", "add", ServerV6.String() + "/64", "dev", "eth0", "nodad"},
	}
	for _, st := range steps {
		if err := ip(st...); err != nil {
			return err
		}
	}
	// Offloads off before the links come up: every packet on the wire is
	// then one segment with a filled-in checksum, as on a real link, and
	// the router never sees a GSO super-packet or a GRO merge.
	if !l.opts.KeepOffloads {
		if _, err := exec.LookPath("ethtool"); err == nil {
			l.offloads = true
			for _, d := range [][2]Endpoint{{Client, 0}, {Router, 1}, {Router, 2}, {Server, 0}} {
				dev := [...]string{"eth0", "cside", "sside"}[d[1]]
				if _, err := l.Exec(d[0], "", "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off", "rx", "off"); err != nil {
					l.offloads = false
				}
			}
		}
	}
	for _, st := range [][]string{
		{"-n", c, "link", "set", "lo", "up"}, {"-n", c, "link", "set", "eth0", "up"},
		{"-n", r, "link", "set", "lo", "up"}, {"-n", r, "link", "set", "cside", "up"}, {"-n", r, "link", "set", "sside", "up"},
		{"-n", s, "link", "set", "lo", "up"}, {"-n", s, "link", "set", "eth0", "up"},
		{"-n", c, "route", "add", "default", "via", "198.18.1.1"},
		{"-n", c, "-6", "route", "add", "default", "via", "fd7c:7c01::1"},
		{"-n", s, "route", "add", "default", "via", "198.18.2.1"},
		{"-n", s, "-6", "route", "add", "default", "via", "fd7c:7c02::1"},
	} {
		if err := ip(st...); err != nil {
			return err
		}
	}
	if err := l.neighbours(); err != nil {
		return err
	}
	// Both of the router's veths hand their packets to CPU 0 (RPS):
	// every packet is then received, tracked, stamped and sent on one
	// CPU, one after the other, so the capture socket's order is the
	// order in which conntrack saw them. Without it, two packets of one
	// connection sent at the same moment from the two sides are handled
	// on two CPUs at once, and the capture may show them the other way
	// round (a helper's 300 s run found a retransmitted SYN and a
	// SYN/ACK 4 µs apart, swapped).
	if _, err := l.Exec(Router, "", "sh", "-c",
		"echo 1 > /sys/class/net/cside/queues/rx-0/rps_cpus && echo 1 > /sys/class/net/sside/queues/rx-0/rps_cpus"); err != nil {
		l.rpsErr = err
	}
	if _, err := l.Exec(Router, routerRuleset(), "nft", "-f", "-"); err != nil {
		return err
	}
	sys := []string{
		"/proc/sys/net/ipv4/ip_forward", "1",
		"/proc/sys/net/ipv6/conf/all/forwarding", "1",
		"/proc/sys/net/ipv4/conf/all/send_redirects", "0",
		// The tracker has no checksum knob: corrupted segments are
		// tracked as they are, on both sides.
		"/proc/sys/net/netfilter/nf_conntrack_checksum", "0",
	}
	for _, k := range sortedKeys(l.opts.Sysctls) {
		sys = append(sys, "/proc/sys/net/netfilter/nf_conntrack_"+strings.TrimPrefix(k, "nf_conntrack_"), l.opts.Sysctls[k])
	}
	if err := l.Do(Router, func() error { return writeSysctls(sys) }); err != nil {
		return err
	}
	if l.opts.Impair.active() {
		for i, e := range []Endpoint{Client, Server} {
			im, err := l.startImpairer(e, l.opts.Impair, uint64(i))
			if err != nil {
				return err
			}
			l.impair[i] = im
		}
	}
	return nil
}

// SetTCP writes TCP sysctls of an endpoint (names under
// /proc/sys/net/ipv4/, such as "tcp_sack"): they are per namespace, and
// apply to the connections opened after the call.
func (l *Lab) SetTCP(e Endpoint, kv map[string]string) error {
	var sys []string
	for _, k := range sortedKeys(kv) {
		sys = append(sys, "/proc/sys/net/ipv4/"+k, kv[k])
	}
	return l.Do(e, func() error { return writeSysctls(sys) })
}

func writeSysctls(kv []string) error {
	for i := 0; i < len(kv); i += 2 {
		if err := os.WriteFile(kv[i], []byte(kv[i+1]), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", strings.TrimPrefix(kv[i], "/proc/sys/"), kv[i+1], err)
		}
	}
	return nil
}

// Do runs f on a fresh OS thread inside one of the namespaces: sockets f
// creates (net.Listen, net.Dial) belong to that namespace for their whole
// life, and may be used from any goroutine afterwards. The thread stays
// locked and dies with the call, so no other goroutine ever runs in the
// namespace by accident.
func (l *Lab) Do(e Endpoint, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Setns(l.fds[e], unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", e, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// ImpairStats returns what the impairment programs did so far, summed
// over both endpoints.
func (l *Lab) ImpairStats() ImpairStats {
	var s ImpairStats
	for _, im := range l.impair {
		if im != nil {
			s.add(im.stats())
		}
	}
	return s
}

// ConntrackList returns conntrack -L's TCP lines in the router namespace
// (needs conntrack-tools).
func (l *Lab) ConntrackList() (string, error) {
	out, err := l.Exec(Router, "", "conntrack", "-L", "-p", "tcp")
	return string(out), err
}

// Close stops the impairment programs and deletes the namespaces (and
// with them the veths). It is safe to call more than once.
func (l *Lab) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, im := range l.impair {
		if im != nil {
			im.close()
		}
	}
	for e, fd := range l.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
		if l.names[e] == "" {
			continue
		}
		if _, err := os.Stat("/run/netns/" + l.names[e]); err != nil {
			continue
		}
		if err := ip("netns", "del", l.names[e]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanupStale deletes namespaces left by earlier runs of this package
// whose process no longer exists (a crash or a kill -9).
func CleanupStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, NamePrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(n, NamePrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		_ = exec.Command("ip", "netns", "del", n).Run()
	}
}

// Namespaces lists the namespaces this process created that are still
// present.
func Namespaces() []string {
	m, _ := filepath.Glob("/run/netns/" + NamePrefix + strconv.Itoa(os.Getpid()) + "-*")
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// Quiesce waits until neither endpoint has a socket that may still send
// on its own: every TCP socket left listens, is in TIME_WAIT, or has
// nothing unacknowledged and no retransmission or probe timer armed
// (/proc/net/tcp: tx_queue 0, timer 0, 2 (keepalive) or 3 (the timer of
// a FIN_WAIT2 socket the program closed)). Orphaned
// sockets keep retransmitting a FIN or a SYN-ACK after the program closed
// them; until they are done the router's table is still moving.
func (l *Lab) Quiesce(timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		busy := 0
		for _, e := range []Endpoint{Client, Server} {
			err := l.Do(e, func() error {
				for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
					b, err := os.ReadFile(f)
					if err != nil {
						return err
					}
					for _, line := range strings.Split(string(b), "\n")[1:] {
						fs := strings.Fields(line)
						if len(fs) < 6 || fs[3] == "0A" || fs[3] == "06" {
							continue
						}
						txq, _, _ := strings.Cut(fs[4], ":")
						timer, _, _ := strings.Cut(fs[5], ":")
						if strings.Trim(txq, "0") != "" || (timer != "00" && timer != "02" && timer != "03") {
							busy++
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%d sockets still active after %v", busy, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
