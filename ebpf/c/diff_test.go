//go:build cgo

package c

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// root is the main module's directory (the planted-mutation test runs a
// copy of this package elsewhere and says where the module is).
func root() string {
	if r := os.Getenv("TCPCT_ROOT"); r != "" {
		return r
	}
	return filepath.Join("..", "..")
}

// agreement counts compared steps and the steps on which each field of the
// verdict or of the entry after the step differs.
type agreement struct {
	steps, mismatches int
	fields            map[string]int
	first             []string
}

func newAgreement() *agreement { return &agreement{fields: map[string]int{}} }

// compare runs the C step on the entry before a Go step and records where
// it departs from the Go step's verdict and entry.
func (a *agreement) compare(cm *Machine, st *invariant.Step, label string) {
	c := st.Before
	seg := st.Seg
	v := cm.Step(&c, &seg, st.Dir, st.Now)
	a.steps++
	var diffs []string
	diffs = fieldDiffs("verdict.", reflect.ValueOf(st.V), reflect.ValueOf(v), diffs)
	diffs = fieldDiffs("conn.", reflect.ValueOf(st.After), reflect.ValueOf(c), diffs)
	if len(diffs) == 0 {
		return
	}
	a.mismatches++
	for _, d := range diffs {
		a.fields[strings.SplitN(d, " ", 2)[0]]++
	}
	if len(a.first) < 5 {
		a.first = append(a.first, fmt.Sprintf("%s: before %+v seg %+v dir %v now %d:\n\t%s", label, st.Before, st.Seg, st.Dir, st.Now, strings.Join(diffs, "\n\t")))
	}
}

// fieldDiffs lists the exported fields (recursively) that differ.
func fieldDiffs(prefix string, want, got reflect.Value, out []string) []string {
	switch want.Kind() {
	case reflect.Struct:
		for i := 0; i < want.NumField(); i++ {
			f := want.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			out = fieldDiffs(prefix+f.Name, want.Field(i), got.Field(i), out)
		}
		return out
	case reflect.Array:
		for i := 0; i < want.Len(); i++ {
			out = fieldDiffs(fmt.Sprintf("%s[%d].", prefix, i), want.Index(i), got.Index(i), out)
		}
		return out
	}
	if !reflect.DeepEqual(want.Interface(), got.Interface()) {
		out = append(out, fmt.Sprintf("%s go=%v c=%v", strings.TrimSuffix(prefix, "."), want.Interface(), got.Interface()))
	}
	return out
}

func (a *agreement) report(t *testing.T, name string) {
	t.Helper()
	if a.mismatches == 0 {
		t.Logf("%-20s %8d steps compared, 0 mismatches", name, a.steps)
		return
	}
	var fs []string
	for f, n := range a.fields {
		fs = append(fs, fmt.Sprintf("%s:%d", f, n))
	}
	sort.Strings(fs)
	t.Errorf("%-20s %8d steps compared, %d MISMATCHES; per field: %s\nfirst:\n%s", name, a.steps, a.mismatches,
		strings.Join(fs, " "), strings.Join(a.first, "\n"))
}

// TestLayout: struct tcpct_conn is fsm.Conn byte for byte in size, so a C
// table can hold the same entries.
func TestLayout(t *testing.T) {
	if got, want := ConnSize(), int(unsafe.Sizeof(fsm.Conn{})); got != want {
		t.Errorf("sizeof(struct tcpct_conn) = %d, fsm.Conn is %d bytes", got, want)
	}
}

// TestHeaderIsTheProfile: the generated header holds the compiled-in
// linux profile's tables, knobs, state names and fsm's reason texts.
func TestHeaderIsTheProfile(t *testing.T) {
	p := fsm.Linux
	for i := range p.Table.Cells {
		if Cell(i) != p.Table.Cells[i] {
			t.Fatalf("cell %d: header %#x, fsm %#x", i, Cell(i), p.Table.Cells[i])
		}
	}
	for f := 0; f < 256; f++ {
		if ClassOf(uint8(f)) != p.Table.ClassOf[f] || FlagsOK(uint8(f)) != p.Table.FlagsOK[f] {
			t.Fatalf("flags %#x: header class %d ok %v, fsm %d %v", f, ClassOf(uint8(f)), FlagsOK(uint8(f)), p.Table.ClassOf[f], p.Table.FlagsOK[f])
		}
	}
	if NumStates() != len(p.StateNames) {
		t.Fatalf("header has %d states, fsm %d", NumStates(), len(p.StateNames))
	}
	for i, n := range p.StateNames {
		if StateName(i) != n {
			t.Errorf("state %d: header %q, fsm %q", i, StateName(i), n)
		}
	}
	for i, k := range p.Knobs {
		if KnobDefault(i) != k.Default {
			t.Errorf("knob %s: header default %d, fsm %d", k.Name, KnobDefault(i), k.Default)
		}
	}
	for r := 0; r < NumReasons(); r++ {
		if got, want := ReasonText(r), fsm.Reason(r).String(); got != want {
			t.Errorf("reason %d: header %q, fsm %q", r, got, want)
		}
	}
	if fsm.Reason(NumReasons()).String() != "reason(?)" {
		t.Errorf("fsm has more than the header's %d reasons", NumReasons())
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseAgreesRecorded: tcpct_parse_segment reads every TCP header of the
// recorded kernel traces as fsm.ParseSegment does, and every snap-length
// cut of the first 2000 of them.
func TestParseAgreesRecorded(t *testing.T) {
	n, cuts := 0, 0
	for _, rec := range tracegen.Recordings {
		r, err := capture.NewReader(bytes.NewReader(gunzip(t, filepath.Join(root(), "tcpcttest", "testdata", rec.Name+".pcap.gz"))))
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != capture.KindTCP {
				continue
			}
			checkParse(t, p.TCP, p.IPPayloadLen)
			n++
			if n <= 2000 {
				for cut := 0; cut < len(p.TCP) && cut <= 64; cut++ {
					checkParse(t, p.TCP[:cut], p.IPPayloadLen)
					cuts++
				}
			}
		}
	}
	t.Logf("%d recorded headers and %d cuts parse alike", n, cuts)
}

func checkParse(t *testing.T, tcp []byte, l4len int) {
	t.Helper()
	want, got := fsm.ParseSegment(tcp, l4len), ParseSegment(tcp, l4len)
	if want != got {
		t.Fatalf("header % x (l4len %d):\n go %+v\n  c %+v", tcp, l4len, want, got)
	}
}

// TestParseAgreesRandom: random headers built to hit the option parser's
// edges (EOL, NOP runs, lengths 0, 1 and past the header, repeated and
// malformed window scale, SACK-permitted and SACK options, the aligned
// timestamp fast path) parse alike.
func TestParseAgreesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 1))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for i := 0; i < n; i++ {
		hdr := make([]byte, 20+4*rng.IntN(11))
		for j := range hdr {
			hdr[j] = byte(rng.Uint32())
		}
		for j := 20; j < len(hdr); {
			switch rng.IntN(8) {
			case 0:
				hdr[j] = byte(rng.IntN(9))
				j++
			case 1:
				hdr[j] = 1
				j++
			case 2, 3:
				kind := []byte{3, 4, 5, 8}[rng.IntN(4)]
				size := []byte{2, 3, 10, 18, 26, 34, 10}[rng.IntN(7)]
				if rng.IntN(4) == 0 {
					size = byte(rng.IntN(45))
				}
				hdr[j] = kind
				if j+1 < len(hdr) {
					hdr[j+1] = size
				}
				j += max(int(size), 2)
			default:
				j += 1 + rng.IntN(4)
			}
		}
		if rng.IntN(10) == 0 && len(hdr) == 32 {
			copy(hdr[20:], []byte{1, 1, 8, 10})
		}
		off := len(hdr) / 4
		if rng.IntN(8) == 0 {
			off = rng.IntN(16)
		}
		hdr[12] = byte(off<<4) | hdr[12]&0x0f
		l4len := len(hdr) + rng.IntN(3000)
		if rng.IntN(8) == 0 {
			l4len = rng.IntN(80)
		}
		tcp := hdr
		if rng.IntN(8) == 0 {
			tcp = hdr[:rng.IntN(len(hdr)+1)]
		}
		checkParse(t, tcp, l4len)
	}
}

// machineFor is the compiled-in linux profile with a trace's sysctls.
func machineFor(t *testing.T, sysctls []string) *fsm.Machine {
	t.Helper()
	return profileMachine(t, fsm.Linux, sysctls)
}

// profileMachine is a compiled-in profile with knob settings.
func profileMachine(t *testing.T, p *fsm.Profile, sysctls []string) *fsm.Machine {
	t.Helper()
	m := fsm.NewMachine(p)
	for _, kv := range sysctls {
		k, v, _ := strings.Cut(kv, "=")
		if err := m.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func cMachine(t *testing.T, m *fsm.Machine) *Machine {
	t.Helper()
	cm, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// TestStepAgreesRecorded: on every step of every recorded kernel trace
// (replayed through fsm and a table as the tracker does, with the trace's
// sysctls), the C step given the entry fsm saw returns the same verdict and
// leaves the same entry, field by field.
func TestStepAgreesRecorded(t *testing.T) {
	kts, err := invariant.LoadKernelTraces(filepath.Join(root(), "tcpcttest", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	total := newAgreement()
	for _, kt := range kts {
		m := machineFor(t, kt.Sysctls)
		cm := cMachine(t, m)
		tr, err := invariant.NewTracker(tcpct.Config{Seed: 1, Knobs: append([]string{"max=" + strconv.Itoa(len(kt.Packets)+1)}, kt.Sysctls...)})
		if err != nil {
			t.Fatal(err)
		}
		a := newAgreement()
		for i := range kt.Packets {
			p := &kt.Packets[i]
			st, _ := invariant.TrackStep(tr, p.Key, p.Seg, p.Now)
			fsmStep(m, &st)
			a.compare(cm, &st, fmt.Sprintf("%s packet %d", kt.Name, p.Index))
		}
		a.report(t, kt.Name)
		total.steps += a.steps
		total.mismatches += a.mismatches
	}
	t.Logf("%-20s %8d steps compared, %d mismatches", "all recorded", total.steps, total.mismatches)
	if total.steps < 20000 {
		t.Errorf("only %d recorded steps", total.steps)
	}
}

// knobVariants are the knob settings the random walks draw from: the
// recorded variants and a few extremes.
var knobVariants = func() [][]string {
	var out [][]string
	for _, r := range tracegen.Recordings {
		out = append(out, r.Sysctls)
	}
	return append(out,
		[]string{"tcp_max_retrans=0", "tcp_be_liberal=1", "tcp_loose=0"},
		[]string{"tcp_timeout_unacknowledged=7", "tcp_timeout_max_retrans=5", "tcp_timeout_established=600", "tcp_max_retrans=255"},
		[]string{"tcp_timeout_syn_sent=0", "tcp_timeout_close=0", "tcp_ignore_invalid_rst=1"},
	)
}()

// tutorialVariants are the tutorial profile's knob settings the random
// tests draw from.
var tutorialVariants = [][]string{
	nil,
	{"tcp_loose=0"},
	{"tcp_timeout_established=5", "tcp_timeout_syn_recv=1", "tcp_timeout_close=0", "tcp_timeout_time_wait=2"},
}

// profileVariants are the profiles with a C step and their knob variants.
var profileVariants = []struct {
	p        *fsm.Profile
	variants [][]string
}{{fsm.Linux, knobVariants}, {fsm.Tutorial, tutorialVariants}}

// TestStepAgreesRandomWalks: random walks of the model checkers' segment
// generator (invariant.Conv: every segment kind and sequence mode, raw flag
// bytes, options on SYNs) over a few connections, a real table and a clock
// that jumps so entries expire, under every knob variant.
func TestStepAgreesRandomWalks(t *testing.T) {
	for _, pv := range profileVariants {
		t.Run(pv.p.Name, func(t *testing.T) { randomWalks(t, pv.p, pv.variants) })
	}
}

func randomWalks(t *testing.T, p *fsm.Profile, variants [][]string) {
	walks, length := 3000, 200
	if testing.Short() {
		walks = 300
	}
	total := newAgreement()
	for w := 0; w < walks; w++ {
		rng := rand.New(rand.NewPCG(uint64(w), 20))
		m := profileMachine(t, p, variants[w%len(variants)])
		cm := cMachine(t, m)
		tr, err := invariant.NewTracker(tcpct.Config{Profile: p.Name, Seed: 1, Knobs: append([]string{"max=64"}, variants[w%len(variants)]...)})
		if err != nil {
			t.Fatal(err)
		}
		convs := make([]*invariant.Conv, 1+rng.IntN(3))
		for i := range convs {
			convs[i] = invariant.NewConv(rng.Uint32(), rng.Uint32())
			if rng.IntN(4) == 0 {
				convs[i].Win = [2]uint16{uint16(rng.Uint32()), uint16(rng.IntN(3))}
			}
		}
		now := int64(1000e9)
		for s := 0; s < length; s++ {
			switch rng.IntN(10) {
			case 0:
				now += int64(rng.IntN(700)) * 1e9
			case 1, 2:
				now += int64(rng.IntN(3)) * 1e9
			default:
				now += int64(rng.IntN(1000)) * 1e3
			}
			ci := rng.IntN(len(convs))
			dir := fsm.Dir(rng.IntN(2))
			kind := invariant.Kind(rng.IntN(int(invariant.NumKinds)))
			mode := invariant.SeqExact
			if rng.IntN(3) == 0 {
				mode = invariant.SeqMode(rng.IntN(int(invariant.NumSeqModes)))
			}
			seg := convs[ci].Segment(dir, kind, mode, rng.Uint32N(3000), spec.Flags(rng.Uint32()))
			mutateSegment(rng, &seg)
			k := table.KeyFromAddrPorts(addr(ci, 0), addr(ci, 1))
			if dir == fsm.Reply {
				k = k.Reverse()
			}
			st, _ := invariant.TrackStep(tr, k, seg, now)
			fsmStep(m, &st)
			total.compare(cm, &st, fmt.Sprintf("walk %d step %d", w, s))
		}
	}
	total.report(t, p.Name+" random walks")
}

// mutateSegment sometimes changes a generated segment's options, window,
// SACK blocks or acknowledgment number.
func mutateSegment(rng *rand.Rand, seg *fsm.Segment) {
	switch rng.IntN(12) {
	case 0:
		seg.HasOptions = true
		seg.HasWScale = rng.IntN(2) == 0
		seg.WScale = uint8(rng.IntN(15))
		seg.SackPerm = rng.IntN(2) == 0
	case 1:
		seg.HasOptions, seg.HasWScale, seg.SackPerm = false, false, false
	case 2:
		seg.HasOptions = true
		seg.NumSack = uint8(1 + rng.IntN(4))
		for i := range seg.SackEdges[:seg.NumSack] {
			seg.SackEdges[i] = seg.Ack + rng.Uint32N(100000) - 20000
		}
	case 3:
		seg.Win = uint16(rng.IntN(3))
	case 4:
		seg.Ack += rng.Uint32N(200000) - 100000
	case 5:
		seg.Malformed = fsm.Reason(1 + rng.IntN(2)*15) // truncated, not captured
	}
}

// addr is an endpoint of connection conn (documentation addresses; the
// table only hashes them).
func addr(conn, side int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(2*conn + side + 1)}), uint16(40000+side))
}

// TestStepAgreesRandomConns: the C step agrees on arbitrary entries, not
// only reachable ones: random Conn fields (states within the table, both
// directions, all flag bits), random segments and clocks near the deadline.
func TestStepAgreesRandomConns(t *testing.T) {
	for _, pv := range profileVariants {
		t.Run(pv.p.Name, func(t *testing.T) { randomConns(t, pv.p, pv.variants) })
	}
}

func randomConns(t *testing.T, p *fsm.Profile, variants [][]string) {
	n := 1000000
	if testing.Short() {
		n = 50000
	}
	rng := rand.New(rand.NewPCG(20, 2))
	total := newAgreement()
	var machines []*fsm.Machine
	var cms []*Machine
	for _, kv := range variants {
		m := profileMachine(t, p, kv)
		machines = append(machines, m)
		cms = append(cms, cMachine(t, m))
	}
	near := func(x uint32) uint32 {
		if rng.IntN(3) == 0 {
			return rng.Uint32()
		}
		return x + rng.Uint32N(140000) - 70000
	}
	for i := 0; i < n; i++ {
		base := rng.Uint32()
		var c fsm.Conn
		if rng.IntN(8) != 0 {
			for d := range c.Seen {
				p := &c.Seen[d]
				p.End, p.MaxEnd, p.MaxAck = near(base), near(base), near(base)
				p.MaxWin = []uint32{0, 1, rng.Uint32N(70000), rng.Uint32()}[rng.IntN(4)]
				p.Scale = uint8(rng.IntN(16))
				p.Flags = fsm.PeerFlags(rng.Uint32())
			}
			c.State = fsm.State(rng.IntN(p.Table.NumStates))
			c.Status = fsm.Status(rng.IntN(8)) | fsm.Confirmed
			c.LastSeq, c.LastAck, c.LastEnd = near(base), near(base), near(base)
			c.LastWin = uint16([]uint32{0, 1, rng.Uint32()}[rng.IntN(3)])
			c.LastIndex = fsm.Class(rng.IntN(p.Table.NumClasses))
			c.HandshakeAck = near(base)
			c.LastDir = fsm.Dir(rng.IntN(2))
			c.LastFlags = uint8(rng.Uint32())
			c.LastWscale = uint8(rng.IntN(15))
			c.Retrans = uint8([]uint32{0, 1, 2, 3, 254, 255, rng.Uint32()}[rng.IntN(7)])
			c.Deadline = int64(rng.IntN(1000)) * 1e9
		}
		seg := fsm.Segment{Seq: near(base), Ack: near(base), Len: []uint32{0, 1, rng.Uint32N(3000)}[rng.IntN(3)],
			Win: uint16(rng.Uint32()), Flags: spec.Flags(rng.Uint32())}
		if rng.IntN(3) == 0 {
			seg.Flags = []spec.Flags{spec.SYN, spec.SYN | spec.ACK, spec.ACK, spec.FIN | spec.ACK, spec.RST, spec.RST | spec.ACK}[rng.IntN(6)]
		}
		if rng.IntN(5) == 0 {
			seg.Seq = 0
		}
		mutateSegment(rng, &seg)
		now := c.Deadline + int64(rng.IntN(400)-300)*1e9
		dir := fsm.Dir(rng.IntN(2))
		if !c.Live() {
			dir = fsm.Original
		}
		k := rng.IntN(len(machines))
		st := invariant.Step{Before: c, Dir: dir, Seg: seg, Now: now}
		after := c
		s2 := seg
		st.V = machines[k].Step(&after, &s2, dir, now)
		st.After = after
		total.compare(cms[k], &st, fmt.Sprintf("random conn %d", i))
	}
	total.report(t, p.Name+" random entries")
}

// fsmStep makes st the reference for one C step: fsm.Machine.Step run on
// the entry the shipped tracker held before the packet (st.Before, from
// invariant.TrackStep), which is what the C step is given too. The
// tracker's own after-state is the table's (no entry once a packet
// deletes it); the step's is the Conn the step leaves, which the C step
// returns as well.
func fsmStep(m *fsm.Machine, st *invariant.Step) {
	c := st.Before
	seg := st.Seg
	st.V = m.Step(&c, &seg, st.Dir, st.Now)
	st.After = c
}
