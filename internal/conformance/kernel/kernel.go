// Package kernel runs TCP traces through the real Linux connection tracker
// and records, packet by packet, what it decided. It is the oracle the
// generated FSM is compared with.
//
// How it works (all inside a throw-away network namespace):
//
//   - Packets are injected with raw sockets (IPPROTO_RAW, so the IP header is
//     ours) towards addresses that route to lo. Locally generated packets are
//     tracked in the LOCAL_OUT hook, synchronously inside sendto(2), and the
//     new entry is confirmed in POSTROUTING before sendto returns.
//   - An nftables OUTPUT chain after conntrack (priority 0 > -200) logs every
//     TCP packet to NFLOG group 1 with a prefix naming its ct state and
//     direction ("NEW original", "INVALID", ...). This is exact and needs no
//     counter diffing: the prefix is the rule that matched.
//   - nf_conntrack_log_invalid is on and the namespace's IPv4/IPv6 logger is
//     bound to nfnetlink_log, so the tracker's own "invalid"/"ignored" messages
//     (the reason strings) arrive on NFLOG group 0, in order, before the group
//     1 message of the same packet.
//   - A PREROUTING chain at priority -300 (before conntrack, -200) drops every
//     packet when it loops back in on lo, so the local TCP stack never sees
//     the trace and never answers it; and it is never tracked twice.
//   - After each packet one ctnetlink GET for the packet's tuple reads the
//     entry: TCP state, seconds left, ASSURED, SEEN_REPLY.
//
// Sysctls under /proc/sys/net/netfilter are per namespace, so variants can
// run side by side.
package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Packet is one packet to inject: its capture time (for pacing) and its bytes
// from the IP header on. Packets whose Data is neither TCP nor ICMP over
// IPv4/IPv6 are skipped and produce no Record, as in the jsonl contract.
// An ICMP or ICMPv6 packet is injected whole; its Record reads the entry
// of the TCP tuple it quotes.
type Packet struct {
	TS   time.Time
	Data []byte
}

// Record is the kernel's verdict on one packet, in the jsonl form of
// `tcpct replay -format jsonl` (cmd/tcpct/README.md). HasEntry says whether an entry for the
// packet's tuple existed right after it; State, Timeout, Assured and
// SeenReply are meaningful only then.
type Record struct {
	I         int    // index of the packet in the input (counting every record)
	CT        string // NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED
	Dir       string // original or reply; empty for INVALID
	HasEntry  bool
	State     string // SYN_SENT ... SYN_SENT2
	Timeout   uint32 // seconds left, as ctnetlink and /proc/net/nf_conntrack report it
	Assured   bool
	SeenReply bool
	Reason    string // the tracker's log message for INVALID and ignored packets
	// Packets and Bytes are the entry's counters per direction (original,
	// reply) right after the packet, with nf_conntrack_acct=1; zero
	// otherwise. AppendJSON leaves them out.
	Packets, Bytes [2]uint64
	// Entries is the namespace's entry count right after the packet
	// (nf_conntrack_count) with Options.Count; zero otherwise.
	// AppendJSON leaves it out.
	Entries int
}

// AppendJSON appends the record as one JSON object (no newline), with the
// fields in contract order and omitted exactly as the contract says.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(r.I), 10)
	b = append(b, `,"ct":"`...)
	b = append(b, r.CT...)
	b = append(b, '"')
	if r.Dir != "" {
		b = append(b, `,"dir":"`...)
		b = append(b, r.Dir...)
		b = append(b, '"')
	}
	if r.HasEntry {
		b = append(b, `,"state":"`...)
		b = append(b, r.State...)
		b = append(b, `","timeout":`...)
		b = strconv.AppendUint(b, uint64(r.Timeout), 10)
		if r.Assured {
			b = append(b, `,"assured":true`...)
		}
		if r.SeenReply {
			b = append(b, `,"seen_reply":true`...)
		}
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, r.Reason)
	}
	return append(b, '}')
}

// Options configure a run.
type Options struct {
	// Sysctls are set in the namespace before the first packet. Names are
	// as under /proc/sys/net/netfilter/, with or without the nf_conntrack_
	// prefix ("tcp_loose", "nf_conntrack_tcp_be_liberal") or fully
	// qualified ("net.netfilter.nf_conntrack_tcp_loose").
	Sysctls map[string]string
	// NoPace injects back to back, ignoring the capture timestamps. Only
	// for throughput measurements and traces without meaningful pauses.
	NoPace bool
	// KeepNamespace leaves the namespace in place for inspection (its name
	// is returned by Runner.Namespace).
	KeepNamespace bool
	// Count reads the namespace's entry count after every packet into
	// Record.Entries. It is the count nf_conntrack_max is checked
	// against (__nf_conntrack_alloc in net/netfilter/nf_conntrack_core.c):
	// it includes expired entries nothing has reclaimed yet.
	Count bool
	// Reclaim has the kernel reclaim its expired entries after every
	// pause of LongGap or more in a paced run, before the next packet
	// (Runner.Reclaim), as its garbage collector would on its own
	// schedule. When the entries of a trace expire only in its pauses,
	// Record.Entries then counts only entries that have not expired.
	Reclaim bool
}

// NamePrefix starts the name of every namespace this package creates;
// stale ones (whose creating process is gone) are removed on the next run.
const NamePrefix = "tcpct-oracle-"

// IPv6Prefix is the prefix routed to lo inside the namespace; IPv6 traces
// must use addresses inside it. IPv4 traces use 127.0.0.0/8.
var IPv6Prefix = netip.MustParsePrefix("fd7c:7c7c::/48")

// Available reports why the kernel oracle cannot run here, or nil if it can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN for namespaces)")
	}
	for _, c := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("needs the %q command (apt-get install iproute2 nftables)", c)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("no network namespace support: %v", err)
	}
	return nil
}

// Runner owns one namespace with the ruleset installed and the sockets
// open. It is not safe for concurrent use.
type Runner struct {
	name      string
	nsFD      int
	raw4      int
	raw6      int
	count     int // nf_conntrack_count of the namespace, or -1
	reclaim   bool
	reclaimed int
	ct        *nlSock
	log       *nlSock
	pending   []nlMsg
	scratch   []nlMsg
	keep      bool
	foreign   int
	closed    bool
}

var seq atomic.Uint32

// New creates the namespace, applies the sysctls, installs the ruleset and
// opens the sockets. Close removes everything, also after a failure.
func New(opts Options) (r *Runner, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	CleanupStale()
	name := fmt.Sprintf("%s%d-%d-%d", NamePrefix, os.Getpid(), seq.Add(1), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	// rn, not the result r: a failed setup returns a nil r, and the
	// cleanup must still reach the runner to delete its namespace.
	rn := &Runner{name: name, nsFD: -1, raw4: -1, raw6: -1, count: -1, keep: opts.KeepNamespace, reclaim: opts.Reclaim}
	defer func() {
		if err != nil {
			rn.keep = false
			rn.Close()
		}
	}()
	if err := rn.setup(opts); err != nil {
		return nil, err
	}
	return rn, nil
}

// Namespace is the name of the runner's network namespace.
func (r *Runner) Namespace() string { return r.name }

func (r *Runner) nsExec(stdin string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", r.name}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ruleset drops everything that loops back (before conntrack sees it again)
// and labels every tracked TCP packet on the way out.
const ruleset = `
table inet tcpct_oracle {
	chain pre {
		type filter hook prerouting priority -300; policy drop;
		counter name looped
	}
	counter looped {}
	chain out {
		type filter hook output priority 0; policy accept;
		meta l4proto != { tcp, icmp, ipv6-icmp } accept
		ct state invalid log prefix "INVALID" group 1 accept
		ct state untracked log prefix "UNTRACKED" group 1 accept
		ct state new ct direction original log prefix "NEW original" group 1 accept
		ct state new ct direction reply log prefix "NEW reply" group 1 accept
		ct state established ct direction original log prefix "ESTABLISHED original" group 1 accept
		ct state established ct direction reply log prefix "ESTABLISHED reply" group 1 accept
		ct state related ct direction original log prefix "RELATED original" group 1 accept
		ct state related ct direction reply log prefix "RELATED reply" group 1 accept
		log prefix "UNKNOWN" group 1 accept
	}
}
`

// sysctlPath maps a knob name to its /proc/sys path.
func sysctlPath(name string) string {
	n := strings.TrimPrefix(name, "net.netfilter.")
	n = strings.TrimPrefix(n, "nf_conntrack_")
	switch {
	case strings.Contains(name, "/"):
		return name
	case strings.HasPrefix(name, "net."):
		return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	}
	return "/proc/sys/net/netfilter/nf_conntrack_" + n
}

func (r *Runner) setup(opts Options) error {
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "-6", "route", "add", "local", IPv6Prefix.String(), "dev", "lo"},
	}
	for _, s := range steps {
		if err := r.nsExec("", s...); err != nil {
			return err
		}
	}
	if err := r.nsExec(ruleset, "nft", "-f", "-"); err != nil {
		return err
	}
	fd, err := unix.Open("/run/netns/"+r.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace: %w", err)
	}
	r.nsFD = fd

	// Sysctls, raw sockets: from a thread inside the namespace. /proc/sys/net
	// resolves to the opening thread's namespace, and a socket belongs to
	// the namespace it was created in for its whole life.
	sys := map[string]string{
		// Reasons: the tracker logs invalid and ignored TCP packets through
		// the namespace's logger, which we bind to nfnetlink_log (group 0).
		"/proc/sys/net/netfilter/nf_log/2":  "nfnetlink_log",
		"/proc/sys/net/netfilter/nf_log/10": "nfnetlink_log",
		// 255 (IPPROTO_RAW): every protocol, so that ICMP errors' reasons
		// come too.
		"/proc/sys/net/netfilter/nf_conntrack_log_invalid": "255",
	}
	order := []string{"/proc/sys/net/netfilter/nf_log/2", "/proc/sys/net/netfilter/nf_log/10", "/proc/sys/net/netfilter/nf_conntrack_log_invalid"}
	for k, v := range opts.Sysctls {
		p := sysctlPath(k)
		if _, ok := sys[p]; !ok {
			order = append(order, p)
		}
		sys[p] = v
	}
	err = inNamespace(fd, func() error {
		for _, p := range order {
			if err := os.WriteFile(p, []byte(sys[p]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", strings.TrimPrefix(p, "/proc/sys/"), sys[p], err)
			}
		}
		var err error
		if opts.Count {
			if r.count, err = unix.Open("/proc/sys/net/netfilter/nf_conntrack_count", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				return fmt.Errorf("nf_conntrack_count: %w", err)
			}
		}
		if r.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv4 socket: %w", err)
		}
		if r.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv6 socket: %w", err)
		}
		if r.ct, err = openNL(0); err != nil {
			return fmt.Errorf("ctnetlink socket: %w", err)
		}
		if r.log, err = openNL(4 << 20); err != nil {
			return fmt.Errorf("nfnetlink_log socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range []uint16{0, 1} {
		if err := r.bindLog(g); err != nil {
			return fmt.Errorf("nflog group %d: %w", g, err)
		}
	}
	return nil
}

// inNamespace runs f on a fresh OS thread that has joined the namespace.
// The thread stays locked and dies with the goroutine, so no other
// goroutine ever runs in the namespace by accident.
func inNamespace(nsFD int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// nfnetlink_log constants (include/uapi/linux/netfilter/nfnetlink_log.h).
const (
	nfulnlMsgPacket = 0
	nfulnlMsgConfig = 1

	nfulaPayload = 9
	nfulaPrefix  = 10

	nfulaCfgCmd     = 1
	nfulaCfgMode    = 2
	nfulaCfgTimeout = 4
	nfulaCfgQthresh = 5

	nfulnlCfgCmdBind = 1
	nfulnlCopyPacket = 2
)

func (r *Runner) bindLog(group uint16) error {
	// Bind, then copy (the first 128 bytes of) each packet, and flush
	// every message at once: the default batches up to 100 messages or
	// one second.
	s := r.log
	s.begin(nfnlSubsysUL<<8|nfulnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, unix.AF_UNSPEC, group)
	s.attr(nfulaCfgCmd, []byte{nfulnlCfgCmdBind})
	if _, err := s.request(r.scratch[:0]); err != nil {
		return err
	}
	s.begin(nfnlSubsysUL<<8|nfulnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, unix.AF_UNSPEC, group)
	s.attr(nfulaCfgMode, []byte{0, 0, 0, 128, nfulnlCopyPacket, 0})
	s.attr(nfulaCfgQthresh, binary.BigEndian.AppendUint32(nil, 1))
	s.attr(nfulaCfgTimeout, binary.BigEndian.AppendUint32(nil, 0))
	_, err := s.request(r.scratch[:0])
	return err
}

// Close closes the sockets and deletes the namespace (unless
// KeepNamespace). It is safe to call more than once.
func (r *Runner) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	r.ct.close()
	r.log.close()
	for _, fd := range []int{r.raw4, r.raw6, r.count, r.nsFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	if !r.keep {
		if out, err := exec.Command("ip", "netns", "del", r.name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", r.name, err, bytes.TrimSpace(out)))
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
			continue // ours (still in use) or another live run
		}
		_ = exec.Command("ip", "netns", "del", n).Run()
	}
}

// Namespaces lists the namespaces this process created that are still
// present (other processes' runs are not counted).
func Namespaces() []string {
	m, _ := filepath.Glob("/run/netns/" + NamePrefix + strconv.Itoa(os.Getpid()) + "-*")
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// tuple extracts what ctnetlink needs from a TCP packet, or from an ICMP
// or ICMPv6 error quoting one.
type tuple struct {
	src, dst netip.AddrPort
	tcp      []byte // TCP header and payload; for ICMP, the ICMP message
	// icmp: the packet is an ICMP error. src and dst are then the
	// quoted segment's tuple (valid only with quoted), which the entry
	// is read with, and to is where the error is sent.
	icmp, quoted bool
	to           netip.Addr
}

func parse(p []byte) (t tuple, ok bool) {
	if len(p) < 1 {
		return t, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return t, false
		}
		ihl := int(p[0]&15) * 4
		frag := binary.BigEndian.Uint16(p[6:]) & 0x3fff
		s, _ := netip.AddrFromSlice(p[12:16])
		d, _ := netip.AddrFromSlice(p[16:20])
		if p[9] == unix.IPPROTO_ICMP && ihl >= 20 && len(p) >= ihl && frag == 0 {
			return parseICMP(4, s, d, p[ihl:])
		}
		if p[9] != unix.IPPROTO_TCP || ihl < 20 || len(p) < ihl+4 || frag != 0 {
			return t, false
		}
		t.tcp = p[ihl:]
		t.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(t.tcp))
		t.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(t.tcp[2:]))
	case 6:
		if len(p) < 40 {
			return t, false
		}
		s, _ := netip.AddrFromSlice(p[8:24])
		d, _ := netip.AddrFromSlice(p[24:40])
		if p[6] == unix.IPPROTO_ICMPV6 {
			return parseICMP(6, s, d, p[40:])
		}
		if len(p) < 44 || p[6] != unix.IPPROTO_TCP {
			return t, false
		}
		t.tcp = p[40:]
		t.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(t.tcp))
		t.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(t.tcp[2:]))
	default:
		return t, false
	}
	t.to = t.dst.Addr()
	return t, true
}

// parseICMP reads the tuple an ICMP message quotes, where the kernel
// reads it (nf_ct_get_tuplepr): the quoted IPv4 header's length as
// given, whatever it is; an IPv6 header without extension headers.
// quoted is false when the message holds no quoted TCP tuple; the
// packet is injected all the same.
func parseICMP(family int, src, dst netip.Addr, m []byte) (t tuple, ok bool) {
	t.icmp, t.tcp, t.to = true, m, dst
	t.src, t.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	if len(m) < 8 {
		return t, true
	}
	q := m[8:]
	var l4 int
	var s, d netip.Addr
	if family == 4 {
		if len(q) < 20 || q[9] != unix.IPPROTO_TCP {
			return t, true
		}
		l4 = int(q[0]&15) * 4
		s, _ = netip.AddrFromSlice(q[12:16])
		d, _ = netip.AddrFromSlice(q[16:20])
	} else {
		if len(q) < 40 || q[6] != unix.IPPROTO_TCP {
			return t, true
		}
		l4 = 40
		s, _ = netip.AddrFromSlice(q[8:24])
		d, _ = netip.AddrFromSlice(q[24:40])
	}
	if len(q) < l4+4 {
		return t, true
	}
	t.quoted = true
	t.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(q[l4:]))
	t.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(q[l4+2:]))
	return t, true
}

// outerSrc is the source address of an IP packet.
func outerSrc(p []byte) netip.Addr {
	if len(p) >= 40 && p[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(p[8:24]))
	}
	if len(p) >= 20 {
		return netip.AddrFrom4([4]byte(p[12:16]))
	}
	return netip.Addr{}
}

// reasonOf turns the tracker's log prefix ("nf_ct_proto_6: invalid rst ")
// into the reason: the message without the protocol, and for the ICMP
// error whose destination is not the quoted source, without the two
// addresses the kernel prints ("outer daddr A != inner B"), which tcpct
// does not keep.
func reasonOf(prefix string) string {
	r := strings.TrimSpace(prefix)
	if rest, ok := strings.CutPrefix(r, "nf_ct_proto_"); ok {
		if _, msg, ok := strings.Cut(rest, ":"); ok {
			r = strings.TrimSpace(msg)
		}
	}
	if strings.HasPrefix(r, "outer daddr ") && strings.Contains(r, " != inner ") {
		return "outer daddr != inner"
	}
	return r
}

// stateNames are tcp_conntrack_names[] (enum tcp_conntrack order).
var stateNames = [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

// Inject sends one packet and returns the kernel's verdict. i is copied
// into the record.
func (r *Runner) Inject(i int, data []byte) (Record, error) {
	rec := Record{I: i}
	t, ok := parse(data)
	if !ok {
		return rec, fmt.Errorf("packet %d: not TCP (or ICMP) over IPv4/IPv6", i)
	}
	var err error
	if t.to.Is4() {
		sa := &unix.SockaddrInet4{Addr: t.to.As4()}
		err = unix.Sendto(r.raw4, data, 0, sa)
	} else {
		sa := &unix.SockaddrInet6{Addr: t.to.As16()}
		err = unix.Sendto(r.raw6, data, 0, sa)
	}
	if err != nil {
		return rec, fmt.Errorf("packet %d: sendto %v: %w", i, t.to, err)
	}
	// Everything the kernel logs about this packet was queued inside
	// sendto; read until our rule's message for it.
	for {
		m, err := r.nextLog()
		if err != nil {
			return rec, fmt.Errorf("packet %d: reading nflog: %w", i, err)
		}
		if m.typ != nfnlSubsysUL<<8|nfulnlMsgPacket {
			continue
		}
		var prefix string
		var payload []byte
		eachAttr(m.attrs, func(typ uint16, d []byte) {
			switch typ {
			case nfulaPrefix:
				prefix = string(bytes.TrimRight(d, "\x00"))
			case nfulaPayload:
				payload = d
			}
		})
		if m.resID == 0 {
			// The tracker's own message: "nf_ct_proto_6: <reason> ".
			rec.Reason = reasonOf(prefix)
			continue
		}
		if pt, ok := parse(payload); !ok || pt.icmp != t.icmp || !bytes.Equal(pt.tcp[:min(len(pt.tcp), 20)], t.tcp[:min(len(t.tcp), 20)]) || pt.src != t.src || outerSrc(payload) != outerSrc(data) {
			r.foreign++
			continue
		}
		ct, dir, _ := strings.Cut(prefix, " ")
		rec.CT, rec.Dir = ct, dir
		break
	}
	var e ctEntry
	found := false
	if !t.icmp || t.quoted {
		e, found, err = r.ct.ctGet(t.src, t.dst, r.scratch)
	}
	if err != nil {
		return rec, fmt.Errorf("packet %d: ctnetlink get: %w", i, err)
	}
	if found {
		rec.HasEntry = true
		if int(e.state) < len(stateNames) {
			rec.State = stateNames[e.state]
		} else {
			rec.State = "STATE_" + strconv.Itoa(int(e.state))
		}
		rec.Timeout = e.timeout
		rec.Assured = e.status&ipsAssured != 0
		rec.SeenReply = e.status&ipsSeenReply != 0
		rec.Packets, rec.Bytes = e.packets, e.bytes
	}
	if r.count >= 0 {
		if rec.Entries, err = r.readCount(); err != nil {
			return rec, fmt.Errorf("packet %d: %w", i, err)
		}
	}
	return rec, nil
}

// SetTCPFlags rewrites, in the entry holding the tuple src→dst, the bits
// of mask in the TCP flags of its original direction, or of its reply
// direction if reply, to those of flags (IP_CT_TCP_FLAG_* of
// include/uapi/linux/netfilter/nf_conntrack_tcp.h): a ctnetlink update of
// CTA_PROTOINFO_TCP_FLAGS_ORIGINAL or _REPLY, which the kernel applies
// in nlattr_to_tcp (net/netfilter/nf_conntrack_proto_tcp.c). It reaches
// entries no packet sequence makes, such as a picked-up connection whose
// reply side is not BE_LIBERAL.
func (r *Runner) SetTCPFlags(src, dst netip.AddrPort, reply bool, mask, flags uint8) error {
	if err := r.ct.ctSetTCPFlags(src, dst, reply, mask, flags, r.scratch); err != nil {
		return fmt.Errorf("ctnetlink update of the TCP flags: %w", err)
	}
	return nil
}

// Reclaim has the kernel reclaim the expired entries of its table: it
// reads /proc/net/nf_conntrack in the namespace, whose ct_seq_show
// (net/netfilter/nf_conntrack_standalone.c) kills every expired entry it
// meets, as the garbage collector (gc_worker in nf_conntrack_core.c) does
// on its own schedule. Until one of them passes, an expired entry still
// counts towards nf_conntrack_max; lookups already treat it as absent.
// The scan covers the whole shared table, so other namespaces' expired
// entries go too; nothing but the moment of their DESTROY changes.
func (r *Runner) Reclaim() error {
	before := -1
	if r.count >= 0 {
		n, err := r.readCount()
		if err != nil {
			return err
		}
		before = n
	}
	err := inNamespace(r.nsFD, func() error {
		// /proc/thread-self/net is this thread's namespace; /proc/net is
		// the thread group leader's.
		f, err := os.Open("/proc/thread-self/net/nf_conntrack")
		if err != nil {
			return fmt.Errorf("reclaim: %w", err)
		}
		defer f.Close()
		if _, err := io.Copy(io.Discard, f); err != nil {
			return fmt.Errorf("reclaim: reading %s: %w", f.Name(), err)
		}
		return nil
	})
	if err != nil || before < 0 {
		return err
	}
	after, err := r.readCount()
	r.reclaimed += max(before-after, 0)
	return err
}

// Reclaimed is how many entries the namespace's count lost across the
// calls of Reclaim (with Options.Count): expired entries the kernel still
// counted because nothing had reclaimed them yet.
func (r *Runner) Reclaimed() int { return r.reclaimed }

// readCount reads nf_conntrack_count through the file opened in the
// namespace (a sysctl file renders its value anew at offset 0).
func (r *Runner) readCount() (int, error) {
	var b [24]byte
	n, err := unix.Pread(r.count, b[:], 0)
	if err != nil {
		return 0, fmt.Errorf("reading nf_conntrack_count: %w", err)
	}
	return strconv.Atoi(string(bytes.TrimSpace(b[:n])))
}

// Stats are the namespace's /proc/net/stat/nf_conntrack counters by
// column name ("drop", "early_drop", "insert_failed", ...), summed over
// the CPUs; "entries", the namespace's entry count, is not per CPU and
// is taken once.
func (r *Runner) Stats() (map[string]uint64, error) {
	out, err := exec.Command("ip", "netns", "exec", r.name, "cat", "/proc/net/stat/nf_conntrack").Output()
	if err != nil {
		return nil, fmt.Errorf("/proc/net/stat/nf_conntrack: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	names := strings.Fields(lines[0])
	st := make(map[string]uint64, len(names))
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(names) {
			return nil, fmt.Errorf("/proc/net/stat/nf_conntrack: %d columns in %q, want %d", len(f), l, len(names))
		}
		for j, x := range f {
			v, err := strconv.ParseUint(x, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/stat/nf_conntrack: %w", err)
			}
			if names[j] == "entries" && i > 0 {
				continue
			}
			st[names[j]] += v
		}
	}
	return st, nil
}

func (r *Runner) nextLog() (nlMsg, error) {
	for len(r.pending) == 0 {
		var err error
		if r.pending, err = r.log.recv(r.pending[:0]); err != nil {
			return nlMsg{}, err
		}
	}
	m := r.pending[0]
	r.pending = r.pending[1:]
	return m, nil
}

// Foreign counts logged TCP packets that were not the one just injected:
// anything the kernel sent by itself. It must stay 0.
func (r *Runner) Foreign() int { return r.foreign }

// Looped returns how many packets reached the PREROUTING drop chain.
func (r *Runner) Looped() (uint64, error) {
	cmd := exec.Command("ip", "netns", "exec", r.name, "nft", "list", "counter", "inet", "tcpct_oracle", "looped")
	out, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	_, after, ok := bytes.Cut(out, []byte("packets "))
	if !ok {
		return 0, fmt.Errorf("no packet count in %q", out)
	}
	f := strings.Fields(string(after))
	return strconv.ParseUint(f[0], 10, 64)
}

// Run injects pkts in order, paced by their timestamps (unless
// opts.NoPace), into a fresh namespace and returns one Record per TCP
// packet. The namespace is removed before Run returns.
func Run(ctx context.Context, pkts []Packet, opts Options) ([]Record, error) {
	r, err := New(opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	recs, err := r.Run(ctx, pkts, !opts.NoPace)
	if err != nil {
		return recs, err
	}
	if r.foreign != 0 {
		return recs, fmt.Errorf("the kernel emitted %d TCP packets of its own", r.foreign)
	}
	return recs, r.Close()
}

// Run injects pkts through an existing runner. See the package function.
//
// Pacing follows the capture clock from an anchor: packet i is sent at
// anchor + (ts[i] - ts[anchor]), or at once when the runner is behind. A
// gap of LongGap or more re-anchors at the previous packet, so a pause is
// never shortened by lag accumulated before it: the kernel's clock
// advances across a pause by at least the captured amount.
func (r *Runner) Run(ctx context.Context, pkts []Packet, pace bool) ([]Record, error) {
	recs := make([]Record, 0, len(pkts))
	var anchorTS, anchorWall, prevTS, prevWall time.Time
	for i, p := range pkts {
		if _, ok := parse(p.Data); !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return recs, err
		}
		if pace {
			gap := false
			if anchorWall.IsZero() {
				anchorTS, anchorWall = p.TS, time.Now()
			} else if p.TS.Sub(prevTS) >= LongGap {
				anchorTS, anchorWall = prevTS, prevWall
				gap = true
			}
			if d := time.Until(anchorWall.Add(p.TS.Sub(anchorTS))); d > 100*time.Microsecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return recs, ctx.Err()
				}
			}
			if gap && r.reclaim {
				if err := r.Reclaim(); err != nil {
					return recs, err
				}
			}
		}
		prevTS, prevWall = p.TS, time.Now()
		rec, err := r.Inject(i, p.Data)
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// LongGap is the capture gap from which pacing re-anchors (see Run).
const LongGap = 100 * time.Millisecond
