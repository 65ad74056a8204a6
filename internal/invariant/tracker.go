package invariant

import (
	"net/netip"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// This file is the invariant package's only contact with the root
// package's API: the checks drive the shipped tcpct.Tracker (and through
// it the real lock-free table) and read what it holds through these few
// calls, so that a change of that API is adapted here once.

// NewTracker builds the tracker a check drives.
func NewTracker(cfg tcpct.Config) (*tcpct.Tracker, error) { return tcpct.New(cfg) }

// Track runs one packet with tuple k through tr at now.
func Track(tr *tcpct.Tracker, k table.Key, seg *fsm.Segment, now int64) tcpct.Verdict {
	var out [1]tcpct.Verdict
	tr.TrackBatch([]tcpct.Packet{{Key: k, Segment: *seg, Time: time.Unix(0, now)}}, out[:])
	return out[0]
}

// Lookup returns the live entry holding k (either tuple) at now, and the
// direction k has in it.
func Lookup(tr *tcpct.Tracker, k table.Key, now int64) (tcpct.Entry, fsm.Dir, bool) {
	return tr.Lookup(netip.AddrPortFrom(k.Src(), k.SrcPort()), netip.AddrPortFrom(k.Dst(), k.DstPort()), time.Unix(0, now))
}

// Entries calls fn for every live entry of tr at now.
func Entries(tr *tcpct.Tracker, now int64, fn func(*tcpct.Entry) bool) {
	tr.Range(time.Unix(0, now), fn)
}

// Expire reclaims every entry of tr whose deadline is at or before now,
// emitting their DESTROY events: a pause with no packets.
func Expire(tr *tcpct.Tracker, now int64) { tr.Expire(time.Unix(0, now)) }

// TrackStep runs one packet with tuple k through tr at now and returns the
// verdict and the step the checkers see: the entry the tracker holds for
// the packet's connection before and after it (Lookup), and the
// direction the packet had in it.
func TrackStep(tr *tcpct.Tracker, k table.Key, seg fsm.Segment, now int64) (Step, tcpct.Verdict) {
	st := Step{Seg: seg, Now: now, Dir: fsm.Original}
	if e, d, ok := Lookup(tr, k, now); ok {
		st.Before, st.Dir = e.Conn, d
	}
	v := Track(tr, k, &seg, now)
	st.V = v.Verdict
	if e, _, ok := Lookup(tr, k, now); ok {
		st.After = e.Conn
	}
	return st, v
}

// Knob returns the value of tr's knob name (0 if the profile has none).
func Knob(tr *tcpct.Tracker, name string) int64 {
	v, _ := tr.Config().Knob(name)
	return v
}

// ContextOf builds the checkers' context for a tracker built from cfg:
// the knob values come from the tracker's resolved configuration, the spec is cfg's
// (a mutant's) when it has one, else the built-in profile's, loaded by
// name.
func ContextOf(tr *tcpct.Tracker, cfg *tcpct.Config) (*Context, error) {
	if cfg.Spec != nil {
		return NewContextSpec(tr.Config(), cfg.Spec), nil
	}
	return NewContext(tr.Config())
}
