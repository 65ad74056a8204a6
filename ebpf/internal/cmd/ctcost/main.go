// Command ctcost measures, on one packet mix and in one run, the Linux
// kernel's own per-packet cost of nf_conntrack for TCP, the eBPF
// tracker's (ebpf/bpf) and tcpct's Go tracker's, so that their ratios
// come from the same packets on the same machine in the same minutes.
//
// The kernel's cost is measured from outside, by difference. Frames are
// written on one end of a veth pair (AF_PACKET, PACKET_QDISC_BYPASS,
// sendmmsg) in a throw-away network namespace, one namespace per variant;
// each is received on the other end, forwarded (so that conntrack confirms
// new entries) and freed by a second veth whose peer is down (see lab).
// The receive softirq runs on the sending CPU in the sending thread's
// context, so that thread's CPU time covers the whole path. The variants
// differ only in their hooks:
//
//	none     nftables chains at PRE_ROUTING (raw priority) and FORWARD,
//	         one counting rule each; conntrack's hooks are not registered
//	notrack  the same with "notrack" in the raw chain and a "ct state"
//	         rule in FORWARD: conntrack's hooks run, see an untracked packet
//	         and return
//	track    the same with a "ct state" rule and no notrack: every packet
//	         goes through nf_conntrack_in (defrag hook, tuple, hash lookup,
//	         the TCP tracker, a new entry's allocation) and, for a new
//	         connection, __nf_conntrack_confirm (hash insert) at POST_ROUTING
//	ebpf     none plus the eBPF tracker on vb's TC ingress (tcx)
//	none2    none again: the control, which should differ from none by
//	         nothing but noise
//	ebpf2    ebpf plus a second copy of the eBPF tracker (its own table)
//	         on the TC egress of the device the packets leave by: the
//	         second control, whose difference from ebpf should be about
//	         ebpf's from none
//
// track−none is conntrack's cost per packet (its hook invocations
// included); track−notrack leaves out what notrack pays too (the hook
// calls and the untracked check); ebpf−none is the eBPF tracker's cost in
// the same path, which BPF_PROG_TEST_RUN measures on its own as well.
//
// The eBPF tracker under BPF_PROG_TEST_RUN (one run per packet, the
// kernel's own timing, the packet's capture time as its clock) and the Go
// tracker (tcpct.Tracker.Track, thread CPU time) run the same packets in
// the same order. One thread pinned to one CPU runs everything in turns
// of -chunk packets, in a new random order each turn, so that the
// machine's changing load falls on all alike; each round uses its own
// addresses and starts every table empty. Every difference and ratio is
// taken within a round (and, in a second summary, within each turn, then
// its median over the round's turns). BENCHMARKS.md has the results and
// what they cover.
//
// Needs root, nft, conntrack and ip; prints why and exits 0 without them
// (-need makes that an error). Run from ebpf/: go run ./internal/cmd/ctcost.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/ebpf/bpf"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"golang.org/x/sys/unix"
)

// options are the command's flags.
type options struct {
	packets  int
	rounds   int
	parallel int
	seed     uint64
	cpu      int
	chunk    int
	need     bool
	verbose  bool
	variants []string
}

func main() {
	var o options
	var variants string
	flag.IntVar(&o.packets, "packets", 1000000, "packets in the mix (tracegen stops starting connections there)")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds; each runs every variant, BPF_PROG_TEST_RUN and the Go tracker once")
	flag.IntVar(&o.parallel, "parallel", 1000, "connections open at a time in the mix")
	flag.Uint64Var(&o.seed, "seed", 1, "tracegen seed")
	flag.IntVar(&o.cpu, "cpu", -1, "CPU to pin the measuring thread to (default: the last)")
	flag.IntVar(&o.chunk, "chunk", 4096, "packets each variant, BPF_PROG_TEST_RUN and the Go tracker run in turn, in a new random order each turn")
	flag.BoolVar(&o.need, "need", false, "fail, instead of skipping, when root or a tool is missing")
	flag.BoolVar(&o.verbose, "v", false, "print each measurement as it is made")
	flag.StringVar(&variants, "variants", "none,notrack,track,ebpf,none2,ebpf2", "kernel variants")
	flag.Parse()
	o.variants = strings.Split(variants, ",")
	if o.cpu < 0 {
		o.cpu = runtime.NumCPU() - 1
	}
	if err := available(); err != nil {
		if o.need {
			fmt.Fprintln(os.Stderr, "ctcost:", err)
			os.Exit(1)
		}
		fmt.Println("ctcost: skipped:", err)
		return
	}
	// Interrupted, remove the namespaces (a kill -9 leaves them to the
	// next run's CleanupStale).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		for _, ns := range kernel.Namespaces() {
			exec.Command("ip", "netns", "del", ns).Run()
		}
		os.Exit(1)
	}()
	res, err := run(o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctcost:", err)
		os.Exit(1)
	}
	res.summary(os.Stdout)
}

// available says why the measurement cannot run here, or nil.
func available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, nftables, BPF)")
	}
	for _, t := range []string{"ip", "nft", "conntrack"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("needs the %s command", t)
		}
	}
	if _, err := os.Stat("/proc/sys/net/netfilter"); err != nil {
		return errors.New("no nf_conntrack in this kernel")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("cannot lift RLIMIT_MEMLOCK: %w", err)
	}
	tr, err := bpf.Load(fsm.NewMachine(fsm.Linux), bpf.TC)
	if err != nil {
		return fmt.Errorf("cannot load the eBPF tracker here: %w", err)
	}
	return tr.Close()
}

// pkt is one packet of the mix.
type pkt struct {
	ip []byte
	ts int64 // capture time, ns
}

// mix is the packet mix: the trace generator of the kernel differential
// (internal/conformance/tracegen: handshakes of every kind, data both
// ways, retransmissions, RSTs, closes, invalid packets; 30 % IPv6) with
// -parallel connections open at a time and 2 µs between packets, about
// the pace at which the kernel receives them here, so that the trackers'
// timers see what the kernel's see.
func mix(o options) []pkt {
	g := tracegen.Generate(tracegen.Config{Seed: o.seed, Packets: o.packets, Parallel: o.parallel, Gap: 2 * time.Microsecond})
	out := make([]pkt, len(g))
	for i, p := range g {
		out[i] = pkt{ip: p.Data, ts: p.TS.UnixNano()}
	}
	return out
}

// readdress returns the mix with round's own addresses: the generator's
// 127.1.x.y and 127.2.x.y (which a router drops as martians) become
// 10.(1+2r).x.y and 10.(2+2r).x.y, its IPv6 fd7c:7c7c:0:... addresses
// get r in their third group; checksums are adjusted, not recomputed (a
// wrong one stays wrong by as much).
func readdress(in []pkt, round int) []pkt {
	out := make([]pkt, len(in))
	for i, p := range in {
		b := slices.Clone(p.ip)
		out[i] = pkt{ip: b, ts: p.ts}
		switch b[0] >> 4 {
		case 4:
			ihl := int(b[0]&0x0f) * 4
			old := slices.Clone(b[12:20])
			for _, a := range []int{12, 16} {
				b[a], b[a+1] = 10, b[a+1]+byte(2*round)
			}
			adjust(b[10:12], old, b[12:20])
			if b[9] == 6 && len(b) >= ihl+18 && b[6]&0x1f == 0 && b[7] == 0 {
				adjust(b[ihl+16:ihl+18], old, b[12:20])
			}
		case 6:
			old := slices.Clone(b[8:40])
			for _, a := range []int{8, 24} {
				binary.BigEndian.PutUint16(b[a+4:], uint16(round))
			}
			if b[6] == 6 && len(b) >= 58 {
				adjust(b[56:58], old, b[8:40])
			}
		}
	}
	return out
}

// adjust updates the Internet checksum at sum for the 16-bit words of old
// becoming those of new (RFC 1624, eqn. 3).
func adjust(sum, old, new []byte) {
	c := uint32(^binary.BigEndian.Uint16(sum))
	for i := 0; i+1 < len(old); i += 2 {
		c += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	for c>>16 != 0 {
		c = c&0xffff + c>>16
	}
	binary.BigEndian.PutUint16(sum, ^uint16(c))
}

// rules are the variants' nftables rulesets; every rule counts, so that
// each run can check that every packet took the path.
var rules = map[string]string{
	"none": `table inet ctcost {
	chain pre { type filter hook prerouting priority raw; counter comment "raw"; }
	chain forward { type filter hook forward priority filter; counter comment "fwd"; }
}`,
	"notrack": `table inet ctcost {
	chain pre { type filter hook prerouting priority raw; counter notrack comment "raw"; }
	chain forward { type filter hook forward priority filter; ct state untracked counter comment "fwd"; }
}`,
	"track": `table inet ctcost {
	chain pre { type filter hook prerouting priority raw; counter comment "raw"; }
	chain forward { type filter hook forward priority filter; ct state new,established,related,invalid counter comment "fwd"; }
}`,
}

// rulesOf returns a variant's ruleset; none2 (and none3, ...) are none.
func rulesOf(variant string) string {
	if strings.HasPrefix(variant, "ebpf") || strings.HasPrefix(variant, "none") {
		return rules["none"]
	}
	return rules[variant]
}

// sample is one measurement: ns per packet.
type sample struct {
	round int
	what  string
	ns    float64
	note  string
}

type results struct {
	o       options
	packets int
	samples []sample
	notes   []string
	// invalid counts, per round, the packets each tracker found INVALID
	// ("kernel": the track namespace's conntrack statistic, "ebpf":
	// BPF_PROG_TEST_RUN's verdicts, "go": the Go tracker's), and entries
	// the connections the kernel's table held at the end: the trackers
	// ran the same packets to the same end.
	invalid []map[string]int
	entries []int
}

func (r *results) add(round int, what string, ns float64, note string, w io.Writer) {
	r.samples = append(r.samples, sample{round, what, ns, note})
	if r.o.verbose {
		fmt.Fprintf(w, "round %d %-14s %8.1f ns/pkt  %s\n", round, what, ns, note)
	}
}

func run(o options, w io.Writer) (*results, error) {
	kernel.CleanupStale()
	base := mix(o)
	res := &results{o: o, packets: len(base)}
	var un unix.Utsname
	unix.Uname(&un)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "ctcost: %d packets (tracegen seed %d, %d open at a time), %d rounds, chunks of %d, CPU %d; Linux %s; %s; load average %s\n\n",
		len(base), o.seed, o.parallel, o.rounds, o.chunk, o.cpu, unix.ByteSliceToString(un.Release[:]),
		time.Now().UTC().Format(time.RFC3339), strings.Join(strings.Fields(string(load))[:3], " "))

	var labs []*lab
	defer func() {
		for _, l := range labs {
			l.close()
		}
	}()
	for _, v := range o.variants {
		rs := rulesOf(v)
		if rs == "" {
			return nil, fmt.Errorf("no variant %q", v)
		}
		l, err := newLab(v)
		if err != nil {
			return nil, err
		}
		labs = append(labs, l)
		if err := l.ruleset(rs); err != nil {
			return nil, err
		}
	}
	trivial, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "tcpct",
	})
	if err != nil {
		return nil, err
	}
	defer trivial.Close()

	// Every measurement runs on this one thread, pinned to one CPU.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(o.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- fmt.Errorf("pinning to CPU %d: %w", o.cpu, err)
			return
		}
		for round := 0; round < o.rounds; round++ {
			if err := res.round(round, labs, trivial, base, w); err != nil {
				errc <- fmt.Errorf("round %d: %w", round, err)
				return
			}
		}
		errc <- nil
	}()
	return res, <-errc
}

// round runs the mix, with the round's addresses, through every lab,
// BPF_PROG_TEST_RUN and the Go tracker, chunk by chunk in turn, each
// with empty tables at the start.
func (r *results) round(round int, labs []*lab, trivial *ebpf.Program, base []pkt, w io.Writer) error {
	mixed := readdress(base, round)
	n := len(mixed)
	frames := make([][]byte, n)
	for i, p := range mixed {
		frames[i] = frame(p.ip)
	}
	// BPF_PROG_TEST_RUN takes at most a page less head- and tailroom; the
	// program reads the headers and takes the lengths from the IP header,
	// so a frame cut after 512 bytes is the same packet to it (as in
	// bpf's tests).
	cut := make([][]byte, n)
	for i, f := range frames {
		cut[i] = f[:min(len(f), 512)]
	}

	type meter struct {
		name string
		run  func(from, to int) (time.Duration, error)
		sum  time.Duration
		per  []float64 // ns per packet in each turn
		note func() string
	}
	var meters []*meter
	before := map[*lab]map[string]uint64{}
	var invalid0 uint64
	var track *lab
	if err := prepare(labs, frames); err != nil {
		return err
	}
	for _, l := range labs {
		if err := l.conntrackFlush(); err != nil {
			return err
		}
		c, err := l.counters()
		if err != nil {
			return err
		}
		before[l] = c
		if l.variant == "track" {
			track = l
			if invalid0, err = l.conntrackStat("invalid"); err != nil {
				return err
			}
		}
		// The tracker on vb's TC ingress; ebpf2's second copy goes on vc's
		// TC egress, since the program returns TC_ACT_OK (TCX_PASS), which
		// ends a tcx chain: a second program on the same hook would not run.
		hooks := map[string][]struct {
			ifindex int
			attach  ebpf.AttachType
		}{
			"ebpf":  {{l.vb, ebpf.AttachTCXIngress}},
			"ebpf2": {{l.vb, ebpf.AttachTCXIngress}, {l.vc, ebpf.AttachTCXEgress}},
		}[l.variant]
		for _, h := range hooks {
			tr, err := bpf.Load(fsm.NewMachine(fsm.Linux), bpf.TC)
			if err != nil {
				return err
			}
			defer tr.Close()
			var tcx link.Link
			err = l.inNS(func() (err error) {
				tcx, err = link.AttachTCX(link.TCXOptions{Interface: h.ifindex, Program: tr.Program(), Attach: h.attach})
				return err
			})
			if err != nil {
				return fmt.Errorf("attaching to interface %d (%v): %w", h.ifindex, h.attach, err)
			}
			defer tcx.Close()
		}
		meters = append(meters, &meter{name: "kernel/" + l.variant, run: l.send})
	}

	// The eBPF tracker under BPF_PROG_TEST_RUN: one run per packet at the
	// packet's capture time, timed by the kernel; a trivial program's run
	// of the same frame is the test runner's own overhead.
	tr, err := bpf.Load(fsm.NewMachine(fsm.Linux), bpf.TC)
	if err != nil {
		return err
	}
	defer tr.Close()
	bpfInvalid := 0
	meters = append(meters, &meter{name: "ebpf/test-run", run: func(from, to int) (time.Duration, error) {
		var sum time.Duration
		for i := from; i < to; i++ {
			v, d, err := tr.RunTimed(cut[i], mixed[i].ts)
			if err != nil {
				return 0, err
			}
			sum += d
			if v.Tracked && v.CT == fsm.CTInvalid {
				bpfInvalid++
			}
		}
		return sum, nil
	}, note: func() string { return fmt.Sprintf("%d invalid", bpfInvalid) }})
	meters = append(meters, &meter{name: "ebpf/floor", run: func(from, to int) (time.Duration, error) {
		var sum time.Duration
		for i := from; i < to; i++ {
			_, d, err := trivial.Benchmark(cut[i], 1, nil)
			if err != nil {
				return 0, err
			}
			sum += d
		}
		return sum, nil
	}})

	// tcpct's Go tracker: thread CPU time.
	gt, err := tcpct.New(tcpct.Config{})
	if err != nil {
		return err
	}
	goInvalid := 0
	meters = append(meters, &meter{name: "go/track", run: func(from, to int) (time.Duration, error) {
		var ts0, ts1 unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts0)
		for _, p := range mixed[from:to] {
			v, err := gt.Track(p.ip, time.Unix(0, p.ts))
			if err == nil && v.CT == fsm.CTInvalid {
				goInvalid++
			}
		}
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts1)
		return time.Duration(ts1.Nano() - ts0.Nano()), nil
	}, note: func() string { return fmt.Sprintf("%d invalid", goInvalid) }})

	runtime.GC()
	time.Sleep(100 * time.Millisecond) // let the flushes' deferred work pass
	soft0 := ksoftirqd(r.o.cpu)
	w0 := time.Now()
	// A new order for every turn, so that no meter always follows the
	// same other one (whatever ran before leaves the caches to it).
	rnd := rand.New(rand.NewPCG(uint64(round), 0x6374636f7374))
	order := slices.Clone(meters)
	for from := 0; from < n; from += r.o.chunk {
		to := min(from+r.o.chunk, n)
		rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, m := range order {
			d, err := m.run(from, to)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.sum += d
			m.per = append(m.per, float64(d.Nanoseconds())/float64(to-from))
		}
	}
	wall := time.Since(w0)
	if soft := ksoftirqd(r.o.cpu) - soft0; soft > 0 {
		r.notes = append(r.notes, fmt.Sprintf("round %d: ksoftirqd/%d ran %d ticks: some receive work may have escaped the thread's CPU time", round, r.o.cpu, soft))
	}
	for _, l := range labs {
		c, err := l.counters()
		if err != nil {
			return err
		}
		for _, k := range []string{"raw", "fwd"} {
			if got := c[k] - before[l][k]; got != uint64(n) {
				return fmt.Errorf("%s: %d frames sent, %d counted by the %s rule", l.variant, n, got, k)
			}
		}
	}
	inv := map[string]int{"ebpf": bpfInvalid, "go": goInvalid}
	entries := 0
	if track != nil {
		invalid1, err := track.conntrackStat("invalid")
		if err != nil {
			return err
		}
		if entries, err = track.conntrackCount(); err != nil {
			return err
		}
		inv["kernel"] = int(invalid1 - invalid0)
		note := fmt.Sprintf("conntrack: %d entries, %d invalid", entries, invalid1-invalid0)
		for _, m := range meters {
			if m.name == "kernel/track" {
				m.note = func() string { return note }
			}
		}
	}
	r.invalid = append(r.invalid, inv)
	r.entries = append(r.entries, entries)
	for _, m := range meters {
		note := ""
		if m.note != nil {
			note = m.note()
		}
		r.add(round, m.name, float64(m.sum.Nanoseconds())/float64(n), note, w)
	}
	r.add(round, "ebpf/test-run-floor", r.byRound("ebpf/test-run")[round]-r.byRound("ebpf/floor")[round], "", w)

	// The same quantities as medians over the turns, each difference
	// taken within a turn (the same packets, milliseconds apart): a burst
	// of the machine's other load that hits one turn of one variant moves
	// the round's sums but not these.
	per := map[string][]float64{}
	for _, m := range meters {
		per[m.name] = m.per
	}
	turnDiff := func(a, b string) []float64 {
		x, y := per[a], per[b]
		if len(x) == 0 || len(y) == 0 {
			return nil
		}
		d := make([]float64, len(x))
		for i := range x {
			d[i] = x[i] - y[i]
		}
		return d
	}
	for _, q := range []struct{ name, a, b string }{
		{"turns/track-none", "kernel/track", "kernel/none"},
		{"turns/track-notrack", "kernel/track", "kernel/notrack"},
		{"turns/notrack-none", "kernel/notrack", "kernel/none"},
		{"turns/none2-none", "kernel/none2", "kernel/none"},
		{"turns/ebpf-none", "kernel/ebpf", "kernel/none"},
		{"turns/ebpf2-ebpf", "kernel/ebpf2", "kernel/ebpf"},
		{"turns/test-run", "ebpf/test-run", ""},
		{"turns/go", "go/track", ""},
	} {
		v := per[q.a]
		if q.b != "" {
			v = turnDiff(q.a, q.b)
		}
		if med, _, _, ok := stats(v); ok {
			r.add(round, q.name, med, "", w)
		}
	}
	if r.o.verbose {
		fmt.Fprintf(w, "round %d took %v\n", round, wall.Round(time.Millisecond))
	}
	return nil
}

// ksoftirqd returns the CPU time, in clock ticks, of the CPU's softirq
// thread: receive work the kernel defers to it escapes the sending
// thread's CPU time, so each run reports it.
func ksoftirqd(cpu int) uint64 {
	want := "ksoftirqd/" + strconv.Itoa(cpu)
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil || strings.TrimSpace(string(b)) != want {
			continue
		}
		st, err := os.ReadFile(filepath.Join(filepath.Dir(d), "stat"))
		if err != nil {
			return 0
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseUint(f[11], 10, 64)
		k, _ := strconv.ParseUint(f[12], 10, 64)
		return u + k
	}
	return 0
}
