package bpf

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/table"
	"github.com/fdac824a/tcpct/tcpcttest"
)

var root = filepath.Join("..", "..")

// load loads the program, or skips the test with the reason it cannot.
func load(t testing.TB, m *fsm.Machine, hook Hook) *Tracker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading an eBPF program needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("cannot lift RLIMIT_MEMLOCK: %v", err)
	}
	tr, err := Load(m, hook)
	if err != nil {
		if strings.Contains(err.Error(), "verifier") {
			t.Fatal(err)
		}
		t.Skipf("cannot load the eBPF program here: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// frame puts an Ethernet header before an IP packet, as BPF_PROG_TEST_RUN
// hands TC and XDP programs their data. BPF_PROG_TEST_RUN takes at most a
// page less head- and tailroom, so the frame is cut after maxFrame bytes:
// the program reads the headers only, and takes the lengths from the IP
// header, as the kernel does.
func frame(ip []byte) []byte {
	f := make([]byte, min(14+len(ip), maxFrame))
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	f[12], f[13] = 0x08, 0x00
	if len(ip) > 0 && ip[0]>>4 == 6 {
		f[12], f[13] = 0x86, 0xdd
	}
	copy(f[14:], ip)
	return f
}

const maxFrame = 512

// TestVerifierAccepts loads both programs with the verifier's statistics
// and reports them: instructions after translation, instructions the
// verifier processed (its limit is 1 000 000) and its state counts.
func TestVerifierAccepts(t *testing.T) {
	load(t, fsm.NewMachine(fsm.Linux), TC) // skips where loading is impossible
	var objs tcpctObjects
	opts := &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}}
	if err := loadTcpctObjects(&objs, opts); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	for name, prog := range map[string]*ebpf.Program{"TC": objs.TcpctTc, "XDP": objs.TcpctXdp} {
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		ins, _ := info.Instructions()
		var stats []string
		for _, l := range strings.Split(prog.VerifierLog, "\n") {
			if strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "Func#") || strings.HasPrefix(l, "Validating") {
				stats = append(stats, l)
			}
		}
		t.Logf("%s program: %d instructions after translation; verifier:\n\t%s", name, len(ins), strings.Join(stats, "\n\t"))
		if len(stats) == 0 {
			t.Errorf("%s: no statistics in the verifier log:\n%s", name, prog.VerifierLog)
		}
	}
}

// stepsOf replays a recorded trace through the shipped tracker (with the
// trace's sysctls) and returns each step: the entry before and after each
// packet and its verdict.
func stepsOf(t *testing.T, kt *invariant.KernelTrace, m *fsm.Machine) []invariant.Step {
	_ = m // the tracker takes the same knobs from the trace
	tr, err := invariant.NewTracker(tcpct.Config{Seed: 1, Knobs: append([]string{"max=" + strconv.Itoa(len(kt.Packets)+1)}, kt.Sysctls...)})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]invariant.Step, len(kt.Packets))
	for i := range kt.Packets {
		p := &kt.Packets[i]
		out[i], _ = invariant.TrackStep(tr, p.Key, p.Seg, p.Now)
	}
	return out
}

func machineFor(t testing.TB, sysctls []string) *fsm.Machine {
	m := fsm.NewMachine(fsm.Linux)
	for _, kv := range sysctls {
		k, v, _ := strings.Cut(kv, "=")
		if err := m.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestProgramAgreesWithStep: every packet of every recorded kernel trace,
// run through the eBPF program (TC and XDP) with BPF_PROG_TEST_RUN and the
// trace's own clock, gets the verdict fsm.Machine.Step gives it, field by
// field, and leaves the same entry state, status bits and deadline.
func TestProgramAgreesWithStep(t *testing.T) {
	kts, err := invariant.LoadKernelTraces(filepath.Join(root, "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range []Hook{TC, XDP} {
		tr := load(t, fsm.NewMachine(fsm.Linux), hook)
		total, bad := 0, 0
		for _, kt := range kts {
			m := machineFor(t, kt.Sysctls)
			if err := tr.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := tr.SetKnobs(m); err != nil {
				t.Fatal(err)
			}
			steps := stepsOf(t, kt, m)
			n, fields := 0, map[string]int{}
			var first string
			for i := range kt.Packets {
				p, st := &kt.Packets[i], &steps[i]
				got, err := tr.Run(frame(p.IP), p.Now)
				if err != nil {
					t.Fatalf("%s packet %d (%d bytes from the IP header on): %v", kt.Name, p.Index, len(p.IP), err)
				}
				want := Verdict{Verdict: st.V, Tracked: true}
				if st.After.Live() {
					want.Entry, want.State, want.Status, want.Deadline = true, st.After.State, st.After.Status, st.After.Deadline
				}
				if got != want {
					n++
					for _, f := range diffFields(want, got) {
						fields[f]++
					}
					if first == "" {
						first = fmt.Sprintf("packet %d: want %+v\n got %+v", p.Index, want, got)
					}
				}
			}
			t.Logf("%s %-20s %5d packets, %d mismatches %v", []string{"TC ", "XDP"}[hook], kt.Name, len(kt.Packets), n, fields)
			if n > 0 {
				t.Errorf("%s: %d packets differ from fsm; first:\n%s", kt.Name, n, first)
			}
			total += len(kt.Packets)
			bad += n
		}
		t.Logf("%s all recorded: %d packets, %d mismatches", []string{"TC ", "XDP"}[hook], total, bad)
	}
}

// TestProgramAgreesWithKernel: every packet of every recorded kernel trace,
// the cells probe included (which the conformance kit leaves out), through
// the TC program, rendered as the kernel's jsonl lines and compared with
// the kernel's own verdicts field by field (timeouts within 1 s).
func TestProgramAgreesWithKernel(t *testing.T) {
	kts, err := invariant.LoadKernelTraces(filepath.Join(root, "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	tr := load(t, fsm.NewMachine(fsm.Linux), TC)
	var b strings.Builder
	fmt.Fprintf(&b, "| trace | packets | all fields |")
	for _, f := range compare.Fields {
		fmt.Fprintf(&b, " %s |", f)
	}
	fmt.Fprintf(&b, "\n|---|--:|--:|%s\n", strings.Repeat("--:|", len(compare.Fields)))
	total, agree := 0, 0
	for _, kt := range kts {
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := tr.SetKnobs(machineFor(t, kt.Sysctls)); err != nil {
			t.Fatal(err)
		}
		ours := make([]compare.Line, 0, len(kt.Packets))
		for i := range kt.Packets {
			p := &kt.Packets[i]
			v, err := tr.Run(frame(p.IP), p.Now)
			if err != nil {
				t.Fatal(err)
			}
			l := compare.Line{I: p.Index, CT: v.CT.String()}
			if !v.Tracked {
				l.CT = fsm.CTInvalid.String()
			}
			if l.CT != fsm.CTInvalid.String() {
				l.Dir = v.Dir.String()
			}
			if v.Entry {
				left := table.SecondsLeft(v.Deadline, p.Now)
				l.State, l.Timeout = fsm.Linux.StateName(v.State), &left
				l.Assured, l.SeenReply = v.Status&fsm.Assured != 0, v.Status&fsm.SeenReply != 0
			}
			ours = append(ours, l)
		}
		rep := compare.Compare(kt.Kernel, ours, compare.Options{Keys: kt.Keys, MaxDiffs: 3, Context: 2})
		fmt.Fprintf(&b, "| %s | %d | %d |", kt.Name, rep.Packets, rep.AllAgree)
		for _, f := range rep.Fields {
			fmt.Fprintf(&b, " %d |", f.Agree)
		}
		b.WriteString("\n")
		total += rep.Packets
		agree += rep.AllAgree
		if !rep.Agree() {
			var d strings.Builder
			rep.WriteText(&d)
			t.Errorf("%s: %d packets disagree with the kernel:\n%s", kt.Name, rep.TotalDiffs, d.String())
		}
	}
	fmt.Fprintf(&b, "| total | %d | %d |\n", total, agree)
	t.Logf("eBPF program (TC, BPF_PROG_TEST_RUN) vs Linux 6.18, packets agreeing per field:\n%s", b.String())
}

func diffFields(a, b Verdict) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		if f.Name == "Verdict" {
			for j := 0; j < f.Type.NumField(); j++ {
				if va.Field(i).Field(j).Interface() != vb.Field(i).Field(j).Interface() {
					out = append(out, f.Type.Field(j).Name)
				}
			}
			continue
		}
		if va.Field(i).Interface() != vb.Field(i).Interface() {
			out = append(out, f.Name)
		}
	}
	return out
}

// adapter is the eBPF program behind the conformance kit's Tracker.
type adapter struct {
	tr *Tracker
	m  *fsm.Machine
}

func (a *adapter) SetSysctl(name, value string) error {
	if err := a.m.Set(name, value); err != nil {
		return err
	}
	return a.tr.SetKnobs(a.m)
}

func (a *adapter) Track(p *tcpcttest.Packet) tcpcttest.Result {
	now := p.Time.UnixNano()
	v, err := a.tr.Run(frame(p.IP), now)
	if err != nil || !v.Tracked {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	r := tcpcttest.Result{CT: tcpcttest.CT(v.CT.String()), Dir: tcpcttest.Dir(v.Dir.String())}
	if v.Entry {
		r.State = fsm.Linux.StateName(v.State)
		r.Timeout = table.SecondsLeft(v.Deadline, now)
		r.Assured, r.SeenReply = v.Status&fsm.Assured != 0, v.Status&fsm.SeenReply != 0
	}
	return r
}

// newAdapter returns a constructor that gives the kit a flushed table and
// default knobs for every trace (one loaded program serves them all).
func newAdapter(t *testing.T, tr *Tracker) func() tcpcttest.Tracker {
	var mu sync.Mutex
	return func() tcpcttest.Tracker {
		mu.Lock()
		defer mu.Unlock()
		m := fsm.NewMachine(fsm.Linux)
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := tr.SetKnobs(m); err != nil {
			t.Fatal(err)
		}
		return &adapter{tr, m}
	}
}

// TestConformanceKit: the eBPF program through tcpcttest, the kit other
// trackers use: the recorded kernel traces and the generated traces of
// every sysctl variant, every field. The goal is 100 %.
func TestConformanceKit(t *testing.T) {
	tr := load(t, fsm.NewMachine(fsm.Linux), TC)
	r := tcpcttest.Measure(newAdapter(t, tr), tcpcttest.Options{MaxDiffs: 3})
	var b strings.Builder
	r.WriteTable(&b)
	t.Logf("eBPF program (TC) vs Linux, BPF_PROG_TEST_RUN:\n%s", b.String())
	if want := 2 * len(tcpcttest.Variants); len(r.Traces) != want {
		t.Errorf("%d traces ran, want %d", len(r.Traces), want)
	}
	if !r.Agree() {
		for _, tr := range r.Traces {
			for _, d := range tr.Diffs {
				t.Errorf("%s", d.String())
			}
		}
	}
}

// TestObjectIsCurrent reruns the go:generate line of generate.go (bpf2go
// with clang) into a temporary directory and fails when the committed
// object or loader differs from what it writes.
func TestObjectIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clang; skipped with -short")
	}
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("clang is not installed: the committed object cannot be checked here")
	}
	src, err := os.ReadFile("generate.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(l, "//go:generate "); ok {
			args = splitQuoted(rest)
		}
	}
	if len(args) < 3 || args[0] != "go" || args[2] != "bpf2go" {
		t.Fatalf("generate.go: no go:generate line running bpf2go (%q)", args)
	}
	dir := t.TempDir()
	args = append(args[:3], append([]string{"-output-dir", dir}, args[3:]...)...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=generate.go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	for _, f := range []string{"tcpct_bpfel.go", "tcpct_bpfel.o"} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s is stale: run go generate ./... in ebpf/bpf and commit it", f)
		}
	}
}

// splitQuoted splits a command line at spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any || cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
		}
	}
	if any || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// TestEvents: with events on, each tracked packet's verdict also goes to
// the ring buffer, equal to the one Run reads from the per-CPU map.
func TestEvents(t *testing.T) {
	tr := load(t, fsm.NewMachine(fsm.Linux), TC)
	rd, err := tr.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var want []Verdict
	for _, p := range handshake {
		v, err := tr.Run(frame(p), t0.UnixNano())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	if want[2].State != 3 || want[2].Status&fsm.SeenReply == 0 {
		t.Fatalf("the handshake did not establish: %+v", want[2])
	}
	for i, w := range want {
		rd.SetDeadline(time.Now().Add(5 * time.Second))
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		got, err := ParseEvent(rec.RawSample)
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("event %d: %+v, the verdict map had %+v", i, got, w)
		}
	}
}

// TestProgramParsesCutHeaders: frames cut inside the TCP header (as a short
// snap length leaves them) get, on an empty table, the verdict
// fsm.Machine.Step gives the segment fsm.ParseSegment reads from the same
// bytes: INVALID for a header the kernel calls truncated or the capture
// did not keep, the normal verdict otherwise.
func TestProgramParsesCutHeaders(t *testing.T) {
	kts, err := invariant.LoadKernelTraces(filepath.Join(root, "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	m := fsm.NewMachine(fsm.Linux)
	tr := load(t, m, TC)
	n := 0
	for _, kt := range kts[:1] {
		for _, p := range kt.Packets[:300] {
			ihl, l4len := 40, int(p.IP[4])<<8|int(p.IP[5])
			if p.IP[0]>>4 == 4 {
				ihl = int(p.IP[0]&0x0f) * 4
				l4len = int(p.IP[2])<<8 | int(p.IP[3]) - ihl
			}
			hdr := int(p.IP[ihl+12]>>4) * 4
			for cut := ihl; cut <= ihl+hdr && cut <= len(p.IP); cut++ {
				if err := tr.Flush(); err != nil {
					t.Fatal(err)
				}
				got, err := tr.Run(frame(p.IP[:cut]), p.Now)
				if err != nil {
					t.Fatal(err)
				}
				seg := fsm.ParseSegment(p.IP[ihl:cut], l4len)
				var c fsm.Conn
				want := m.Step(&c, &seg, fsm.Original, p.Now)
				if got.Verdict != want || got.Entry != c.Live() {
					t.Fatalf("packet %d cut to %d bytes: got %+v, want %+v (entry %v)", p.Index, cut, got, want, c.Live())
				}
				n++
			}
		}
	}
	t.Logf("%d cut frames agree", n)
}
