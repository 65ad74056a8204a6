package property

import (
	"math/rand/v2"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
)

// category is how a step relates to the spec table, as the differential
// test tallies it.
func category(in *invariant.Interp, st *invariant.Step) string {
	cls, valid := in.Classify(st.Seg.Flags)
	switch {
	case !valid:
		return "bad-flags"
	case st.V.Action == fsm.Recreate:
		return invariant.ExReopen
	}
	state := in.S.Initial
	if st.Before.Live() && st.Now-st.Before.Deadline < 0 {
		state = int(st.Before.State)
	}
	d := st.Dir
	if state == in.S.Initial && !st.Before.Live() {
		d = fsm.Original
	}
	o := in.Cell(d, cls, state)
	switch {
	case st.V.CT == fsm.CTInvalid && o.Kind == spec.Invalid, st.V.Ignored && o.Kind == spec.Ignore:
		return "table:" + in.S.OutcomeName(o)
	case st.V.CT == fsm.CTInvalid:
		return invariant.ExWindowInval
	case st.V.Ignored && st.V.Reason == fsm.ReasonChallengeAck:
		return invariant.ExChallengeAck
	case st.V.Ignored && st.V.Reason == fsm.ReasonIgnoredTransition:
		return invariant.ExReopenIgnore
	case st.V.Ignored:
		return invariant.ExWindowIgnore
	case o.Kind == spec.Ignore:
		return invariant.ExResync
	case int(st.V.New) != o.State && cls == in.Class("rst"):
		return invariant.ExRSTKeep
	case int(st.V.New) != o.State:
		return invariant.ExSimultaneous
	}
	return "table:next"
}

// TestDifferential: fsm and the spec interpreter agree on the class, the
// cell and (outside the named exceptions) the next state of every step of
// random traces with arbitrary flag bytes; the spec-cell invariant does
// the comparison, this test drives it and tallies the cases.
func TestDifferential(t *testing.T) {
	n := 200000
	if long() {
		n = 5000000
	}
	for _, ks := range []knobSet{{Profile: "linux", Loose: true, MaxRetrans: 3}, {Profile: "tutorial", Loose: true}} {
		m := ks.machine()
		ctx, err := invariant.NewContext(m)
		if err != nil {
			t.Fatal(err)
		}
		tally := differential(t, m, ctx, n, 1)
		t.Logf("%s: %d steps agree with the interpreter: %v", ks.Profile, n, tally)
	}
}

// differential runs n random steps (arbitrary flag bytes, every sequence
// mode, pauses, fresh connections) through m, checking every step
// invariant of ctx (a context of m), and tallies how each step relates to
// the spec table.
func differential(t tb, m *fsm.Machine, ctx *invariant.Context, n int, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 2))
	tally := map[string]int{}
	var c fsm.Conn
	conv := invariant.NewConv(rng.Uint32(), rng.Uint32())
	now := 1000 * second
	for i := 0; i < n; i++ {
		if rng.IntN(40) == 0 {
			c, conv = fsm.Conn{}, invariant.NewConv(rng.Uint32(), rng.Uint32())
		}
		dir := fsm.Dir(rng.IntN(2))
		kind := invariant.Kind(rng.IntN(int(invariant.NumKinds)))
		mode := invariant.SeqExact
		if rng.IntN(3) == 0 {
			mode = invariant.SeqMode(rng.IntN(int(invariant.NumSeqModes)))
		}
		seg := conv.Segment(dir, kind, mode, rng.Uint32N(3000), spec.Flags(rng.IntN(256)))
		now += int64(rng.IntN(3)) * second
		before := c
		d := dir
		if !before.Live() || now-before.Deadline >= 0 {
			d = fsm.Original
		}
		v := m.Step(&c, &seg, d, now)
		st := stepOf(before, c, d, seg, now, v)
		if err := ctx.CheckStep(&st); err != nil {
			t.Fatalf("%s step %d (%v %v seq=%d ack=%d in %s): %v\n\tverdict %+v", m.Profile().Name, i, d, seg.Flags, seg.Seq, seg.Ack, m.Profile().StateName(before.State), err, v)
		}
		tally[category(ctx.I, &st)]++
	}
	return tally
}
