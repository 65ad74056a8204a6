package property

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"pgregory.net/rapid"
)

// tracker is the rapid state machine: a few connections, simulated
// endpoints, and the shipped tcpct.Tracker behind an invariant.Harness.
type tracker struct {
	h     *invariant.Harness
	conv  []*invariant.Conv
	now   int64
	trace []string
	steps int
}

func newTracker(t *rapid.T) *tracker {
	ks := knobSet{
		Profile:    rapid.SampledFrom([]string{"linux", "tutorial"}).Draw(t, "profile"),
		Liberal:    rapid.Bool().Draw(t, "be_liberal"),
		Loose:      rapid.IntRange(0, 3).Draw(t, "loose") != 0,
		MaxRetrans: rapid.IntRange(0, 3).Draw(t, "max_retrans"),
		IgnoreRST:  rapid.IntRange(0, 3).Draw(t, "ignore_invalid_rst") == 0,
		Acct:       rapid.Bool().Draw(t, "acct"),
	}
	max := rapid.SampledFrom([]int{2, 3, 64}).Draw(t, "table_max")
	h, err := invariant.NewHarness(ks.config(max, nil))
	if err != nil {
		t.Fatal(err)
	}
	n := rapid.IntRange(1, 4).Draw(t, "conns")
	tr := &tracker{h: h, now: 1000 * second}
	for i := 0; i < n; i++ {
		tr.conv = append(tr.conv, invariant.NewConv(rapid.Uint32().Draw(t, "isn_o"), rapid.Uint32().Draw(t, "isn_r")))
	}
	tr.trace = append(tr.trace, fmt.Sprintf("%s max=%d", ks, max))
	return tr
}

func (tr *tracker) send(t *rapid.T, conn int, dir fsm.Dir, kind invariant.Kind, mode invariant.SeqMode, n uint32, raw spec.Flags) {
	seg := tr.conv[conn].Segment(dir, kind, mode, n, raw)
	tr.packet(t, conn, dir, kind, mode, seg)
}

func (tr *tracker) packet(t *rapid.T, conn int, dir fsm.Dir, kind invariant.Kind, mode invariant.SeqMode, seg fsm.Segment) {
	k := connKey(conn)
	if dir == fsm.Reply {
		k = k.Reverse()
	}
	st, v, err := tr.h.Packet(k, seg, tr.now)
	tr.steps++
	tr.trace = append(tr.trace, describe(conn, dir, kind, mode, &seg, tr.now, st.V, tr.h.C.M.Profile())+dropped(&v))
	if err != nil {
		t.Fatalf("%v\ntrace:%s", err, joinTrace(tr.trace))
	}
}

func (tr *tracker) conn(t *rapid.T) int { return rapid.IntRange(0, len(tr.conv)-1).Draw(t, "conn") }

func (tr *tracker) tick(t *rapid.T) {
	tr.now += int64(rapid.IntRange(0, 3).Draw(t, "dt")) * second
}

// Packet sends one segment of any kind with any sequence mode.
func (tr *tracker) Packet(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	dir := fsm.Dir(rapid.IntRange(0, 1).Draw(t, "dir"))
	kind := invariant.Kind(rapid.IntRange(0, int(invariant.KRaw)).Draw(t, "kind"))
	mode := invariant.SeqMode(rapid.IntRange(0, int(invariant.NumSeqModes)-1).Draw(t, "mode"))
	if rapid.IntRange(0, 2).Draw(t, "exact") != 0 {
		mode = invariant.SeqExact
	}
	n := rapid.Uint32Range(0, 3000).Draw(t, "n")
	raw := spec.Flags(rapid.Byte().Draw(t, "flags"))
	tr.send(t, c, dir, kind, mode, n, raw)
}

// Handshake runs a whole three-way handshake.
func (tr *tracker) Handshake(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	tr.send(t, c, fsm.Original, invariant.KSyn, invariant.SeqExact, 0, 0)
	tr.send(t, c, fsm.Reply, invariant.KSynAck, invariant.SeqExact, 0, 0)
	tr.send(t, c, fsm.Original, invariant.KAck, invariant.SeqExact, 0, 0)
}

// Data sends data one way and its acknowledgement.
func (tr *tracker) Data(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	dir := fsm.Dir(rapid.IntRange(0, 1).Draw(t, "dir"))
	n := rapid.Uint32Range(0, 3000).Draw(t, "n")
	tr.send(t, c, dir, invariant.KData, invariant.SeqExact, n, 0)
	tr.send(t, c, 1-dir, invariant.KAck, invariant.SeqExact, 0, 0)
}

// Close runs a FIN exchange started by either side.
func (tr *tracker) Close(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	dir := fsm.Dir(rapid.IntRange(0, 1).Draw(t, "dir"))
	tr.send(t, c, dir, invariant.KFin, invariant.SeqExact, 0, 0)
	tr.send(t, c, 1-dir, invariant.KAck, invariant.SeqExact, 0, 0)
	tr.send(t, c, 1-dir, invariant.KFin, invariant.SeqExact, 0, 0)
	tr.send(t, c, dir, invariant.KAck, invariant.SeqExact, 0, 0)
}

// Reset sends an RST or RST/ACK with a drawn sequence mode.
func (tr *tracker) Reset(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	dir := fsm.Dir(rapid.IntRange(0, 1).Draw(t, "dir"))
	kind := rapid.SampledFrom([]invariant.Kind{invariant.KRst, invariant.KRstAck}).Draw(t, "rst")
	mode := invariant.SeqMode(rapid.IntRange(0, int(invariant.NumSeqModes)-1).Draw(t, "mode"))
	tr.send(t, c, dir, kind, mode, rapid.Uint32Range(0, 3000).Draw(t, "n"), 0)
}

// Pickup sends a mid-stream ACK or data with no handshake (tcp_loose).
func (tr *tracker) Pickup(t *rapid.T) {
	tr.tick(t)
	c := tr.conn(t)
	dir := fsm.Dir(rapid.IntRange(0, 1).Draw(t, "dir"))
	tr.send(t, c, dir, invariant.KData, invariant.SeqExact, rapid.Uint32Range(0, 3000).Draw(t, "n"), 0)
	tr.send(t, c, 1-dir, invariant.KAck, invariant.SeqExact, 0, 0)
}

// Reuse gives a connection new initial sequence numbers (port reuse).
func (tr *tracker) Reuse(t *rapid.T) {
	c := tr.conn(t)
	tr.conv[c] = invariant.NewConv(rapid.Uint32().Draw(t, "isn_o"), rapid.Uint32().Draw(t, "isn_r"))
}

// Pause lets time pass with no packets, often past timeouts.
func (tr *tracker) Pause(t *rapid.T) {
	d := rapid.SampledFrom([]int64{1, 9, 10, 11, 29, 31, 59, 61, 119, 121, 299, 301, 432001}).Draw(t, "pause")
	tr.now += d * second
	tr.trace = append(tr.trace, "pause "+itoa(d)+"s")
	if err := tr.h.Advance(tr.now); err != nil {
		t.Fatalf("%v\ntrace:%s", err, joinTrace(tr.trace))
	}
}

func (tr *tracker) Check(t *rapid.T) {
	if err := tr.h.CheckTable(tr.now); err != nil {
		t.Fatalf("%v\ntrace:%s", err, joinTrace(tr.trace))
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestRapidTracker: random multi-connection traffic through the shipped
// tracker (the real table behind it); every invariant after every packet.
func TestRapidTracker(t *testing.T) {
	cases, steps, drops, evicts := 0, 0, 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		tr := newTracker(rt)
		rt.Repeat(rapid.StateMachineActions(tr))
		cases++
		steps += tr.steps
		drops += tr.h.Drops
		evicts += tr.h.Evicts
	})
	t.Logf("rapid: %d cases, %d packets, %d dropped for a full table, %d entries early-dropped", cases, steps, drops, evicts)
}

// FuzzRapidTracker exposes the rapid state machine of TestRapidTracker to
// go test -fuzz: the fuzzer's bytes become rapid's choices, so coverage
// guidance steers the multi-connection traffic; a failure is reported
// with the same trace.
func FuzzRapidTracker(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(func(rt *rapid.T) {
		tr := newTracker(rt)
		rt.Repeat(rapid.StateMachineActions(tr))
	}))
}
