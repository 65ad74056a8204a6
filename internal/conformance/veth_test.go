package conformance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"golang.org/x/sys/unix"
)

// vethLab is a throw-away network namespace in which frames written to
// one end of a veth pair (va) arrive on the other (vb) as received
// traffic: through the IP receive path (ip_rcv_core, ip6_rcv_core) and
// conntrack's PRE_ROUTING hook, where nf_conntrack_checksum applies, to a
// forwarding route out of a second veth (vc) whose peer is down, so that
// new entries are confirmed (POSTROUTING) and later frames find them, and
// nothing comes back. The kernel oracle's runner
// injects into LOCAL_OUT instead, where neither the IP receive checks
// nor the checksum check run.
type vethLab struct {
	t      *testing.T
	ns     string
	nsFD   int
	fd     int // AF_PACKET socket bound to va
	ifidx  int
	macA   net.HardwareAddr
	macB   net.HardwareAddr
	closed bool
}

// Addresses of the lab: a client (10.66.0.1, fd66::1) and a server
// (10.88.0.5, fd88::5), both routed out of vc, so that packets in either
// direction are forwarded.
var (
	labSrc4 = netip.MustParseAddr("10.66.0.1")
	labDst4 = netip.MustParseAddr("10.88.0.5")
	labSrc6 = netip.MustParseAddr("fd66::1")
	labDst6 = netip.MustParseAddr("fd88::5")
)

var labSeq atomic.Uint32

func needVethLab(t *testing.T) {
	t.Helper()
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs the conntrack command (apt-get install conntrack)")
	}
}

// newVethLab builds the namespace; sysctls are set under
// /proc/sys/net/netfilter with the nf_conntrack_ prefix added.
func newVethLab(t *testing.T, sysctls map[string]string) *vethLab {
	t.Helper()
	needVethLab(t)
	kernel.CleanupStale()
	l := &vethLab{t: t, ns: fmt.Sprintf("%s%d-veth-%d", kernel.NamePrefix, os.Getpid(), labSeq.Add(1)), nsFD: -1, fd: -1}
	if out, err := exec.Command("ip", "netns", "add", l.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(l.close)
	if out, err := exec.Command("ip", "-n", l.ns, "link", "add", "va", "type", "veth", "peer", "name", "vb").CombinedOutput(); err != nil {
		t.Skipf("no veth pairs here (ip link add type veth: %v: %s)", err, bytes.TrimSpace(out))
	}
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "vc", "type", "veth", "peer", "name", "vd"},
		{"ip", "addr", "add", "10.77.0.2/24", "dev", "vb"},
		{"ip", "-6", "addr", "add", "fd77::2/64", "dev", "vb", "nodad"},
		{"ip", "link", "set", "va", "up"},
		{"ip", "link", "set", "vb", "up"},
		{"ip", "link", "set", "vc", "up"},
		{"ip", "route", "add", "10.88.0.0/24", "dev", "vc"},
		{"ip", "-6", "route", "add", "fd88::/64", "dev", "vc"},
		{"ip", "neigh", "replace", "10.88.0.5", "lladdr", "02:00:00:00:00:05", "dev", "vc", "nud", "permanent"},
		{"ip", "-6", "neigh", "replace", "fd88::5", "lladdr", "02:00:00:00:00:05", "dev", "vc", "nud", "permanent"},
		// Both directions arrive on vb and leave by vc: no redirects,
		// no neighbour discovery.
		{"ip", "route", "add", "10.66.0.0/24", "dev", "vc"},
		{"ip", "-6", "route", "add", "fd66::/64", "dev", "vc"},
		{"ip", "neigh", "replace", "10.66.0.1", "lladdr", "02:00:00:00:00:01", "dev", "vc", "nud", "permanent"},
		{"ip", "-6", "neigh", "replace", "fd66::1", "lladdr", "02:00:00:00:00:01", "dev", "vc", "nud", "permanent"},
	} {
		l.exec("", c...)
	}
	sys := map[string]string{
		"/proc/sys/net/ipv4/ip_forward":              "1",
		"/proc/sys/net/ipv6/conf/all/forwarding":     "1",
		"/proc/sys/net/ipv4/conf/all/rp_filter":      "0",
		"/proc/sys/net/ipv4/conf/vb/rp_filter":       "0",
		"/proc/sys/net/ipv4/conf/default/rp_filter":  "0",
		"/proc/sys/net/ipv4/conf/all/send_redirects": "0",
		"/proc/sys/net/ipv4/conf/vb/send_redirects":  "0",
	}
	// Conntrack hooks register with the first rule that needs them.
	l.exec(`table inet lab {
	chain passing {
		type filter hook forward priority 0; policy accept;
		ct state invalid counter
		ct state new counter
	}
}`, "nft", "-f", "-")
	for k, v := range sysctls {
		sys["/proc/sys/net/netfilter/nf_conntrack_"+strings.TrimPrefix(k, "nf_conntrack_")] = v
	}
	fd, err := unix.Open("/run/netns/"+l.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.nsFD = fd
	err = l.inNS(func() error {
		for p, v := range sys {
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				return err
			}
		}
		a, err := net.InterfaceByName("va")
		if err != nil {
			return err
		}
		b, err := net.InterfaceByName("vb")
		if err != nil {
			return err
		}
		l.ifidx, l.macA, l.macB = a.Index, a.HardwareAddr, b.HardwareAddr
		if l.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *vethLab) exec(stdin string, args ...string) string {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs f on a locked thread that has joined the namespace.
func (l *vethLab) inNS(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(l.nsFD, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func (l *vethLab) close() {
	if l.closed {
		return
	}
	l.closed = true
	for _, fd := range []int{l.fd, l.nsFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	exec.Command("ip", "netns", "del", l.ns).Run()
}

// frame wraps an IP packet in an Ethernet header from va to vb.
func (l *vethLab) frame(ip []byte) []byte {
	etype := uint16(0x0800)
	if len(ip) > 0 && ip[0]>>4 == 6 {
		etype = 0x86dd
	}
	b := append(append([]byte{}, l.macB...), l.macA...)
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, ip...)
}

// send writes one frame on va and waits until vb's receive counter shows
// it, then a little longer for the receive path to finish with it.
func (l *vethLab) send(frame []byte) {
	l.t.Helper()
	before := l.rxPackets()
	sa := &unix.SockaddrLinklayer{Ifindex: l.ifidx, Halen: 6}
	copy(sa.Addr[:], l.macB)
	if err := unix.Sendto(l.fd, frame, 0, sa); err != nil {
		l.t.Fatalf("sendto va: %v", err)
	}
	for i := 0; l.rxPackets() == before && i < 100; i++ {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
}

func (l *vethLab) rxPackets() uint64 {
	out := l.exec("", "cat", "/sys/class/net/vb/statistics/rx_packets")
	n, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	return n
}

// invalid is the namespace's conntrack "invalid" statistic, summed over
// CPUs (/proc/net/stat/nf_conntrack, hexadecimal columns).
func (l *vethLab) invalid() uint64 {
	l.t.Helper()
	return l.stat("invalid")
}

// stat is one column of the namespace's /proc/net/stat/nf_conntrack,
// summed over CPUs ("invalid", "icmp_error", ...).
func (l *vethLab) stat(name string) uint64 {
	l.t.Helper()
	out := l.exec("", "cat", "/proc/net/stat/nf_conntrack")
	sc := bufio.NewScanner(strings.NewReader(out))
	col := -1
	var sum uint64
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if col < 0 {
			for i, n := range f {
				if n == name {
					col = i
				}
			}
			if col < 0 {
				l.t.Fatalf("no %s column in %q", name, out)
			}
			continue
		}
		if col < len(f) {
			v, _ := strconv.ParseUint(f[col], 16, 64)
			sum += v
		}
	}
	return sum
}

// entries lists the namespace's conntrack entries (conntrack -L), one
// line each, sorted.
func (l *vethLab) entries() string {
	out := l.exec("", "conntrack", "-L")
	var lines []string
	for _, s := range strings.Split(out, "\n") {
		if strings.HasPrefix(s, "tcp") {
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}
