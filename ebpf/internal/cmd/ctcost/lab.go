package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"golang.org/x/sys/unix"
)

// lab is a throw-away network namespace in which frames written to one
// end of a veth pair (va) arrive on the other (vb) as received traffic:
// ip_rcv, the PRE_ROUTING hooks (defrag and conntrack among them), the
// route lookup, ip_forward and the FORWARD hook, ip_output and the
// POST_ROUTING hooks (conntrack's confirm, which inserts a new entry
// into the hash table), then to a second veth (vc) whose peer is down, so
// that the transmit frees the packet (the kernel here has no dummy
// device). Nothing comes back, nothing is delivered locally, and every
// variant of the measurement runs exactly this path; only the hooks
// differ.
type lab struct {
	variant string
	ns      string
	nsFD    int
	fd      int // AF_PACKET socket, transmitting on va with PACKET_QDISC_BYPASS
	va      int // ifindex of va
	vb      int // ifindex of vb
	vc      int // ifindex of vc
	macA    net.HardwareAddr
	macB    net.HardwareAddr
	sa4     unix.RawSockaddrLinklayer
	sa6     unix.RawSockaddrLinklayer
	batch   *batch
}

const (
	macA = "02:00:00:00:00:0a"
	macB = "02:00:00:00:00:0b"
)

// newLab builds a lab named after its variant. Every lab's va and vb have
// the same addresses, so that one set of frames serves them all.
func newLab(variant string) (_ *lab, err error) {
	// The kernel oracle's prefix: its CleanupStale removes what a killed
	// run left behind.
	l := &lab{variant: variant, ns: fmt.Sprintf("%s%d-ctcost-%s", kernel.NamePrefix, os.Getpid(), variant), nsFD: -1, fd: -1}
	if out, err := exec.Command("ip", "netns", "add", l.ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "va", "address", macA, "type", "veth", "peer", "name", "vb", "address", macB},
		{"ip", "link", "add", "vc", "type", "veth", "peer", "name", "vd"},
		// The mix holds segments of up to 64 KiB, as a sender's TSO
		// would hand them to the stack.
		{"ip", "link", "set", "va", "mtu", "65535"},
		{"ip", "link", "set", "vb", "mtu", "65535"},
		{"ip", "link", "set", "vc", "mtu", "65535"},
		{"ip", "link", "set", "vd", "mtu", "65535"},
		{"ip", "link", "set", "va", "up"},
		{"ip", "link", "set", "vb", "up"},
		{"ip", "link", "set", "vc", "up"},
		{"ip", "addr", "add", "10.77.0.2/24", "dev", "vb"},
		{"ip", "route", "add", "default", "via", "10.99.0.9", "dev", "vc", "onlink"},
		{"ip", "neigh", "replace", "10.99.0.9", "lladdr", "02:00:00:00:00:09", "dev", "vc", "nud", "permanent"},
		{"ip", "-6", "route", "add", "default", "via", "fe80::9", "dev", "vc"},
		{"ip", "-6", "neigh", "replace", "fe80::9", "lladdr", "02:00:00:00:00:09", "dev", "vc", "nud", "permanent"},
	} {
		if _, err := l.exec("", c...); err != nil {
			return nil, err
		}
	}
	sys := map[string]string{
		"/proc/sys/net/ipv4/ip_forward":              "1",
		"/proc/sys/net/ipv6/conf/all/forwarding":     "1",
		"/proc/sys/net/ipv4/conf/all/rp_filter":      "0",
		"/proc/sys/net/ipv4/conf/default/rp_filter":  "0",
		"/proc/sys/net/ipv4/conf/vb/rp_filter":       "0",
		"/proc/sys/net/ipv4/conf/all/send_redirects": "0",
		"/proc/sys/net/ipv4/conf/vb/send_redirects":  "0",
		"/proc/sys/net/ipv6/conf/va/disable_ipv6":    "1", // no router solicitations or DAD on the sender
	}
	fd, err := unix.Open("/run/netns/"+l.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
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
		c, err := net.InterfaceByName("vc")
		if err != nil {
			return err
		}
		l.va, l.vb, l.vc, l.macA, l.macB = a.Index, b.Index, c.Index, a.HardwareAddr, b.HardwareAddr
		l.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	// PACKET_QDISC_BYPASS: packet_direct_xmit hands each frame straight
	// to veth_xmit, and the local_bh_enable after it runs the receive
	// softirq on this CPU, in the sending thread's context, frame by frame.
	if err := unix.SetsockoptInt(l.fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return nil, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	for _, x := range []struct {
		sa    *unix.RawSockaddrLinklayer
		proto uint16
	}{{&l.sa4, unix.ETH_P_IP}, {&l.sa6, unix.ETH_P_IPV6}} {
		x.sa.Family = unix.AF_PACKET
		x.sa.Protocol = x.proto<<8 | x.proto>>8
		x.sa.Ifindex = int32(l.va)
		x.sa.Halen = 6
		copy(x.sa.Addr[:], l.macB)
	}
	return l, nil
}

func (l *lab) exec(stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// inNS runs f on a locked thread that has joined the namespace.
func (l *lab) inNS(f func() error) error {
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

func (l *lab) close() {
	for _, fd := range []int{l.fd, l.nsFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	exec.Command("ip", "netns", "del", l.ns).Run()
}

// frame puts an Ethernet header from va to vb (of every lab) before an
// IP packet.
func frame(ip []byte) []byte {
	b := make([]byte, 0, 14+len(ip))
	a, _ := net.ParseMAC(macA)
	d, _ := net.ParseMAC(macB)
	b = append(append(b, d...), a...)
	if ip[0]>>4 == 6 {
		b = append(b, 0x86, 0xdd)
	} else {
		b = append(b, 0x08, 0x00)
	}
	return append(b, ip...)
}

// batch is a prepared sendmmsg argument: one message per frame.
type batch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
}

type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// prepare builds one sendmmsg argument for every lab: the frames and the
// messages are the same memory for all of them, so that no lab pays
// for its own buffers' place in the caches or the TLB (which once made
// identical labs differ by a tenth). It needs va to have the same
// index in every namespace, as it has in fresh ones.
func prepare(labs []*lab, frames [][]byte) error {
	l := labs[0]
	for _, o := range labs {
		if o.va != l.va {
			return fmt.Errorf("va is interface %d in %s but %d in %s", l.va, l.ns, o.va, o.ns)
		}
	}
	b := &batch{msgs: make([]mmsghdr, len(frames)), iovs: make([]unix.Iovec, len(frames))}
	for i, f := range frames {
		b.iovs[i].Base = &f[0]
		b.iovs[i].SetLen(len(f))
		m := &b.msgs[i].hdr
		sa := &l.sa4
		if f[14]>>4 == 6 {
			sa = &l.sa6
		}
		m.Name = (*byte)(unsafe.Pointer(sa))
		m.Namelen = uint32(unsafe.Sizeof(*sa))
		m.Iov = &b.iovs[i]
		m.SetIovlen(1)
	}
	for _, o := range labs {
		o.batch = b
	}
	return nil
}

// send transmits frames [from, to) of the prepared batch with sendmmsg,
// sendBatch frames per call, and returns the calling thread's CPU time
// for it, which includes the receive softirq that each transmit runs on
// this CPU when it re-enables bottom halves.
func (l *lab) send(from, to int) (time.Duration, error) {
	const sendBatch = 64
	b := l.batch
	var ts0, ts1 unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts0)
	for i := from; i < to; {
		n := min(sendBatch, to-i)
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&b.msgs[i])), uintptr(n), 0, 0, 0)
		if e != 0 {
			if e == unix.EINTR || e == unix.EAGAIN || e == unix.ENOBUFS {
				continue
			}
			return 0, fmt.Errorf("sendmmsg: %v", e)
		}
		i += int(r)
	}
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts1)
	runtime.KeepAlive(b)
	return time.Duration(ts1.Nano() - ts0.Nano()), nil
}

// ruleset replaces the namespace's nftables ruleset.
func (l *lab) ruleset(rules string) error {
	_, err := l.exec("flush ruleset\n"+rules, "nft", "-f", "-")
	return err
}

// counters reads the ruleset's named counters (rules carry the comment
// that names them).
func (l *lab) counters() (map[string]uint64, error) {
	out, err := l.exec("", "nft", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, s := range strings.Split(out, "\n") {
		i := strings.Index(s, "counter packets ")
		j := strings.Index(s, `comment "`)
		if i < 0 || j < 0 {
			continue
		}
		f := strings.Fields(s[i:])
		n, _ := strconv.ParseUint(f[2], 10, 64)
		name := strings.TrimSuffix(s[j+len(`comment "`):], `"`)
		m[name] += n
	}
	return m, nil
}

// conntrackStat sums a column of /proc/net/stat/nf_conntrack (per CPU,
// hexadecimal) in the namespace.
func (l *lab) conntrackStat(col string) (uint64, error) {
	out, err := l.exec("", "cat", "/proc/net/stat/nf_conntrack")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	idx := -1
	for i, name := range strings.Fields(lines[0]) {
		if name == col {
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("no %s column in /proc/net/stat/nf_conntrack", col)
	}
	var sum uint64
	for _, s := range lines[1:] {
		f := strings.Fields(s)
		if idx < len(f) {
			v, _ := strconv.ParseUint(f[idx], 16, 64)
			sum += v
		}
	}
	return sum, nil
}

// conntrackCount is the number of entries in the namespace's table.
func (l *lab) conntrackCount() (int, error) {
	out, err := l.exec("", "conntrack", "-C")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

func (l *lab) conntrackFlush() error {
	_, err := l.exec("", "conntrack", "-F")
	if err != nil && strings.Contains(err.Error(), "0 flow entries") {
		return nil
	}
	return err
}
