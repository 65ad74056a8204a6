package invariant

import (
	"errors"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

const sec = int64(1e9)

// script runs segments of one connection through m and returns every step.
func script(t *testing.T, m *fsm.Machine, conv *Conv, pkts ...struct {
	d fsm.Dir
	k Kind
	m SeqMode
}) []Step {
	t.Helper()
	var c fsm.Conn
	var out []Step
	now := 100 * sec
	for _, p := range pkts {
		seg := conv.Segment(p.d, p.k, p.m, 0, 0)
		st := Step{Before: c, Dir: p.d, Seg: seg, Now: now}
		if !c.Live() {
			st.Dir = fsm.Original
		}
		st.V = m.Step(&c, &seg, st.Dir, now)
		st.After = c
		out = append(out, st)
		now += sec
	}
	return out
}

type pk = struct {
	d fsm.Dir
	k Kind
	m SeqMode
}

var (
	o, r        = fsm.Original, fsm.Reply
	handshake   = []pk{{o, KSyn, SeqExact}, {r, KSynAck, SeqExact}, {o, KAck, SeqExact}}
	established = append(handshake, pk{r, KAck, SeqExact}, pk{o, KData, SeqExact}, pk{r, KAck, SeqExact})
)

func linux(t *testing.T) (*fsm.Machine, *Context) {
	m := fsm.NewMachine(fsm.Linux)
	c, err := NewContext(m)
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

func wantViolation(t *testing.T, err error, name, what string) {
	t.Helper()
	var v *Violation
	if !errors.As(err, &v) || v.Name != name {
		t.Errorf("%s: got %v, want a %s violation", what, err, name)
	} else {
		t.Logf("%s: %v", what, err)
	}
}

func checkAll(t *testing.T, c *Context, steps []Step) {
	t.Helper()
	for i := range steps {
		if err := c.CheckStep(&steps[i]); err != nil {
			t.Fatalf("step %d of the real trace: %v", i, err)
		}
	}
}

// Each checker must fail on a deliberately broken transition or verdict;
// the unbroken steps must pass.
func TestCheckersCanFail(t *testing.T) {
	m, c := linux(t)
	steps := script(t, m, NewConv(1000, 5000), append(established, pk{r, KRstAck, SeqExact})...)
	checkAll(t, c, steps)
	synack, third, rst := steps[1], steps[2], steps[len(steps)-1]

	s := synack
	s.V.CT = fsm.CTNew
	wantViolation(t, c.CheckOne(NoNewAfterReply, &s), NoNewAfterReply, "reply SYN/ACK reported NEW")
	s = third
	s.Dir, s.V.Dir, s.V.CT = fsm.Original, fsm.Original, fsm.CTNew
	wantViolation(t, c.CheckOne(NoNewAfterReply, &s), NoNewAfterReply, "original ACK after a reply reported NEW")
	s = third
	s.After.Status &^= fsm.SeenReply | fsm.Assured
	wantViolation(t, c.CheckOne(NoNewAfterReply, &s), NoNewAfterReply, "SEEN_REPLY cleared")

	s = rst
	s.After.State, s.V.New = s.Before.State, s.Before.State
	wantViolation(t, c.CheckOne(RSTLeadsToClose, &s), RSTLeadsToClose, "exact RST kept ESTABLISHED")
	s = rst
	s.After.Deadline = s.Now + c.T[c.sES]
	s.V.Timeout = c.T[c.sES]
	wantViolation(t, c.CheckOne(RSTLeadsToClose, &s), RSTLeadsToClose, "RST with the ESTABLISHED timeout")
	s = rst
	s.Seg.Seq -= 1 << 20 // below the peer's max ack, yet accepted
	wantViolation(t, c.CheckOne(RSTLeadsToClose, &s), RSTLeadsToClose, "RST below max ack accepted")
	s = script(t, m, NewConv(1, 2), pk{o, KSyn, SeqExact}, pk{r, KRstAck, SeqExact})[1]
	if err := c.CheckStep(&s); err != nil {
		t.Fatal(err)
	}
	s.V.Action, s.After = fsm.Update, s.Before
	s.After.State = fsm.State(c.sCL)
	wantViolation(t, c.CheckOne(RSTLeadsToClose, &s), RSTLeadsToClose, "RST before a reply kept the entry")

	s = steps[0]
	s.After.Status |= fsm.Assured
	wantViolation(t, c.CheckOne(AssuredAfterReply, &s), AssuredAfterReply, "SYN_SENT assured")
	s = synack
	s.After.Status |= fsm.Assured
	wantViolation(t, c.CheckOne(AssuredAfterReply, &s), AssuredAfterReply, "assured by the first reply")
	s = steps[4]
	s.After.Status &^= fsm.Assured
	wantViolation(t, c.CheckOne(AssuredAfterReply, &s), AssuredAfterReply, "ASSURED cleared")

	// An sIV cell: a reply SYN in ESTABLISHED.
	inv := steps[4]
	seg := NewConv(1000, 5000).Segment(r, KSyn, SeqExact, 0, 0)
	inv.Seg, inv.Dir, inv.After = seg, r, inv.Before
	inv.V = m.Step(&inv.After, &seg, r, inv.Now)
	if inv.V.CT != fsm.CTInvalid {
		t.Fatalf("reply SYN in ESTABLISHED: %+v", inv.V)
	}
	if err := c.CheckStep(&inv); err != nil {
		t.Fatal(err)
	}
	s = inv
	s.After.State = fsm.State(c.sCL)
	wantViolation(t, c.CheckOne(InvalidInert, &s), InvalidInert, "INVALID changed the state")
	s = inv
	s.After.Deadline += sec
	wantViolation(t, c.CheckOne(InvalidInert, &s), InvalidInert, "INVALID extended the deadline")
	s = inv
	s.After.Deadline -= sec
	wantViolation(t, c.CheckOne(InvalidInert, &s), InvalidInert, "INVALID lowered the deadline without handle_invalid")
	s = inv
	s.After.Status |= fsm.Assured | fsm.SeenReply
	s.Before.Status &^= fsm.Assured
	wantViolation(t, c.CheckOne(InvalidInert, &s), InvalidInert, "INVALID set a status bit")

	// An sIG cell: an original SYN in ESTABLISHED.
	ign := steps[4]
	seg = NewConv(7, 9).Segment(o, KSyn, SeqExact, 0, 0)
	ign.Seg, ign.Dir, ign.After = seg, o, ign.Before
	ign.V = m.Step(&ign.After, &seg, o, ign.Now)
	if !ign.V.Ignored {
		t.Fatalf("original SYN in ESTABLISHED: %+v", ign.V)
	}
	if err := c.CheckStep(&ign); err != nil {
		t.Fatal(err)
	}
	s = ign
	s.After.Deadline = s.Now + 10*sec
	wantViolation(t, c.CheckOne(InvalidInert, &s), InvalidInert, "ignored packet moved the timer")

	s = third
	s.V.New, s.After.State = fsm.State(c.sFW), fsm.State(c.sFW)
	s.After.Deadline, s.V.Timeout = s.Now+c.T[c.sFW], c.T[c.sFW]
	wantViolation(t, c.CheckOne(SpecCell, &s), SpecCell, "SYN_RECV -> FIN_WAIT on an ACK")
	s = third
	s.V.Cell = uint8(c.sFW)
	wantViolation(t, c.CheckOne(SpecCell, &s), SpecCell, "wrong cell reported")
	s = third
	s.V.Class = fsm.Class(c.cFin)
	wantViolation(t, c.CheckOne(SpecCell, &s), SpecCell, "wrong class reported")
	s = ign
	s.V.Ignored, s.V.Reason = false, fsm.ReasonNone
	wantViolation(t, c.CheckOne(SpecCell, &s), SpecCell, "sIG cell taken as a transition without a resync")

	s = third
	s.After.Deadline += sec
	wantViolation(t, c.CheckOne(TimeoutBound, &s), TimeoutBound, "deadline differs from the verdict's timeout")
	s = third
	s.V.Timeout, s.After.Deadline = c.T[c.sES]+sec, s.Now+c.T[c.sES]+sec
	wantViolation(t, c.CheckOne(TimeoutBound, &s), TimeoutBound, "timeout above the state's")
	s = steps[4]
	s.V.Refreshed = false
	s.After.Deadline = s.Before.Deadline + sec
	wantViolation(t, c.CheckOne(TimeoutBound, &s), TimeoutBound, "deadline extended without a refresh")

	if err := SameVerdicts([]fsm.Verdict{third.V}, []fsm.Verdict{synack.V}); err == nil {
		t.Error("SameVerdicts accepted different verdicts")
	} else {
		wantViolation(t, err, Deterministic, "different verdicts")
	}
}

// A machine built from a spec with one cell rewritten must be caught by
// spec-cell on the first packet that uses the cell.
func TestSpecCellCatchesMutatedTable(t *testing.T) {
	s := spec.MustLoad("linux")
	ack, sr, fw := s.ClassIndex("ack"), s.StateIndex("SYN_RECV"), s.StateIndex("FIN_WAIT")
	s.Table[spec.Original][ack][sr].Outcome = spec.Outcome{Kind: spec.Next, State: fw}
	p := fsm.FromSpec(s) // still named "linux": the context loads the real spec
	m := fsm.NewMachine(p)
	c, err := NewContext(m)
	if err != nil {
		t.Fatal(err)
	}
	steps := script(t, m, NewConv(1, 2), handshake...)
	var found error
	for i := range steps {
		if err := c.CheckStep(&steps[i]); err != nil {
			found = err
			break
		}
	}
	wantViolation(t, found, SpecCell, "mutated cell original ack SYN_RECV -> FIN_WAIT")
}

// The table invariants must fail when the tracker's table changes behind
// the harness's back (packets tracked without it), and when a bound is
// broken.
func TestTableCheckersCanFail(t *testing.T) {
	fresh := func() (*Harness, table.Key, int64) {
		h, err := NewHarness(tcpct.Config{Profile: "linux", Knobs: []string{"max=8"}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		conv := NewConv(10, 20)
		k := table.MakeKey4([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1000, 80)
		now := 50 * sec
		for _, p := range handshake {
			kk := k
			if p.d == r {
				kk = k.Reverse()
			}
			if _, _, err := h.Packet(kk, conv.Segment(p.d, p.k, p.m, 0, 0), now); err != nil {
				t.Fatal(err)
			}
		}
		return h, k, now
	}
	behind := func(h *Harness, k table.Key, f spec.Flags, now int64) {
		seg := fsm.Segment{Flags: f, HdrLen: 20, Seq: 11, Ack: 21, Win: 1000}
		if k.SrcPort() == 80 {
			seg.Seq, seg.Ack = 21, 11 // the reply side's next sequence number
		}
		if v := Track(h.Tr, k, &seg, now); v.CT == fsm.CTInvalid {
			t.Fatalf("packet behind the harness's back: %v", &v)
		}
	}

	h, k, now := fresh()
	behind(h, k, spec.FIN|spec.ACK, now) // ESTABLISHED -> FIN_WAIT, unseen by the harness
	wantViolation(t, h.CheckTable(now), TuplesAgree, "entry changed behind the harness")

	h, k, now = fresh()
	behind(h, k.Reverse(), spec.RST|spec.ACK, now) // ESTABLISHED -> CLOSE
	wantViolation(t, h.CheckTable(now), TuplesAgree, "entry reset behind the harness")

	h, _, now = fresh()
	k2 := table.MakeKey4([4]byte{4, 4, 4, 4}, [4]byte{2, 2, 2, 2}, 1000, 80)
	if _, _, err := h.Packet(k2, NewConv(100, 200).Segment(o, KSyn, SeqExact, 0, 0), now); err != nil {
		t.Fatal(err)
	}
	rst := fsm.Segment{Flags: spec.RST | spec.ACK, HdrLen: 20, Ack: 101}
	if v := Track(h.Tr, k2.Reverse(), &rst, now); v.Action != fsm.Delete {
		t.Fatalf("RST answering the SYN: %v", &v)
	}
	wantViolation(t, h.CheckTable(now), TuplesAgree, "entry deleted behind the harness")

	h, _, now = fresh()
	behind(h, table.MakeKey4([4]byte{3, 3, 3, 3}, [4]byte{2, 2, 2, 2}, 1000, 80), spec.SYN, now)
	wantViolation(t, h.CheckTable(now), TuplesAgree, "entry no verdict created")

	h, _, now = fresh()
	h.C.T[h.C.sES] = sec // a bound below what the entry was given
	wantViolation(t, h.CheckTable(now), TimeoutBound, "deadline beyond the state's bound")

	h, k, now = fresh()
	h.Max = 0
	wantViolation(t, h.CheckTable(now), Bounded, "more entries than the limit")
	h.Max = 8
	dl := h.shadow[k].conn.Deadline
	h.shadow[k].conn.Deadline = dl + sec // the harness expects it to live longer
	wantViolation(t, h.Advance(dl), TimeoutBound, "entry expired before the deadline the verdicts left")

	h, k, _ = fresh()
	dl = h.shadow[k].conn.Deadline
	if err := h.Advance(dl); err != nil {
		t.Fatal(err)
	}
	if h.Live() != 0 || h.Tr.Len() != 0 {
		t.Fatalf("entry survived its deadline: live %d len %d", h.Live(), h.Tr.Len())
	}
}
