package property

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// kentry is what the kernel's own lines say about one connection: the
// state after the last packet, its original tuple, and when it expires
// (seconds left are floored, so the deadline is in [lo, lo+1 s)).
type kentry struct {
	live      bool
	orig      table.Key
	state     int
	seenReply bool
	lo        int64
}

// kernelTransition classifies one kernel-observed step against the linux
// spec: the cell (or named exception of spec-cell) that allows it, or an
// error. before is the entry (live=false: none); l is the kernel's line.
func kernelTransition(in *invariant.Interp, before kentry, dir spec.Dir, seg *fsm.Segment, l *compare.Line) (string, error) {
	cls, valid := in.Classify(seg.Flags)
	after := in.State(l.State)
	if l.State != "" && after < 0 {
		return "", fmt.Errorf("unknown state %q", l.State)
	}
	unchanged := before.live && l.State != "" && after == before.state
	if seg.Malformed != fsm.ReasonNone || !valid {
		if l.CT != "INVALID" || (before.live && !unchanged) || (!before.live && l.State != "") {
			return "", fmt.Errorf("bad flags or malformed header: %s, state %q", l.CT, l.State)
		}
		return "bad-flags", nil
	}
	state := in.S.Initial
	if before.live {
		state = before.state
	} else {
		dir = spec.Original
	}
	o := in.Cell(dir, cls, state)
	cell := fmt.Sprintf("%v %s %s->%s", dir, in.S.Classes[cls], in.S.States[state].Abbrev, in.S.OutcomeString(o))
	if l.CT == "INVALID" {
		switch {
		case !before.live && l.State != "":
			return "", fmt.Errorf("INVALID first packet created an entry")
		case before.live && !unchanged:
			return "", fmt.Errorf("INVALID packet changed the state to %q", l.State)
		case o.Kind == spec.Invalid:
			return "cell " + cell, nil
		case !before.live:
			if !in.MayCreate(cls, func(string) int64 { return 1 }) || o.Kind != spec.Next {
				return "cell " + cell, nil
			}
			return "first packet refused by a knob (tcp_loose=0)", nil
		}
		return invariant.ExWindowInval, nil
	}
	if !before.live {
		if o.Kind != spec.Next || l.State == "" || after != o.State {
			return "", fmt.Errorf("first packet: cell %s, kernel made %q", cell, l.State)
		}
		return "cell " + cell, nil
	}
	if l.State == "" {
		if cls == in.Class("rst") && !before.seenReply && o.Kind == spec.Next {
			return "cell " + cell + " (RST before reply removes the entry)", nil
		}
		return "", fmt.Errorf("accepted packet removed the entry (cell %s)", cell)
	}
	sSS, sSR, sES, sTW, sCL, sLA := in.State("SYN_SENT"), in.State("SYN_RECV"), in.State("ESTABLISHED"), in.State("TIME_WAIT"), in.State("CLOSE"), in.State("LAST_ACK")
	switch {
	case o.Kind == spec.Next && after == o.State:
		return "cell " + cell, nil
	case o.Kind == spec.Ignore && unchanged:
		return "cell " + cell, nil
	case o.Kind == spec.Ignore && cls == in.Class("synack") && after == sSR: // tcp_packet resyncs from any state
		return invariant.ExResync, nil
	case o.Kind == spec.Next && o.State == sSR && cls == in.Class("ack") && dir == spec.Reply && after == sES:
		return invariant.ExSimultaneous, nil
	case o.Kind == spec.Next && o.State == sCL && cls == in.Class("rst") && unchanged && before.state == sES:
		return invariant.ExRSTKeep, nil
	case o.Kind == spec.Next && o.State == sSS && (state == sTW || state == sCL) && unchanged:
		return invariant.ExReopenIgnore, nil
	case o.Kind == spec.Next && o.State == sTW && state == sLA && cls == in.Class("ack") && unchanged:
		return invariant.ExChallengeAck, nil
	case unchanged:
		return invariant.ExWindowIgnore, nil
	}
	return "", fmt.Errorf("cell %s, kernel moved to %s", cell, l.State)
}

// TestKernelTracesFollowSpec: every transition the kernel took in the
// recorded traces — state before (from the kernel's previous line for the
// connection) to state after, with the packet's class and direction — is
// a cell of the linux spec or one of spec-cell's named exceptions. It
// reads only the kernel's lines and the packets, never fsm, so it checks
// the spec itself against the kernel, including the cells fsm's logic
// overrides. A reopen (the kernel's new entry takes the reopening packet's
// direction) is ExReopen; an entry whose deadline falls within the 1 s
// rounding of a pause is tried both live and expired.
func TestKernelTracesFollowSpec(t *testing.T) {
	kts, err := kernelOnce()
	if err != nil {
		t.Fatal(err)
	}
	in := &invariant.Interp{S: spec.MustLoad("linux")}
	tally := map[string]int{}
	cells := map[string]int{}
	total := 0
	for _, kt := range kts {
		lines := map[int]*compare.Line{}
		for i := range kt.Kernel {
			lines[kt.Kernel[i].I] = &kt.Kernel[i]
		}
		conns := map[string]*kentry{}
		bad := 0
		for i := range kt.Packets {
			p := &kt.Packets[i]
			l := lines[p.Index]
			if l == nil {
				t.Fatalf("%s: no kernel line for packet %d", kt.Name, p.Index)
			}
			ck := kt.Keys[p.Index]
			e := conns[ck]
			if e == nil {
				e = &kentry{}
				conns[ck] = e
			}
			// The candidates for the entry before the packet.
			var befores []kentry
			if e.live && p.Now < e.lo {
				befores = []kentry{*e}
			} else if e.live && p.Now < e.lo+1e9 {
				befores = []kentry{*e, {}}
			} else {
				befores = []kentry{{}}
			}
			var how string
			var errs []string
			var used kentry
			for _, b := range befores {
				dir := spec.Original
				if b.live && p.Key == b.orig.Reverse() {
					dir = spec.Reply
				}
				seg := p.Seg
				h, err := kernelTransition(in, b, dir, &seg, l)
				if err != nil && b.live && l.CT != "INVALID" && l.Dir == "original" && dir == spec.Reply && l.State == "SYN_SENT" {
					// ExReopen: the old entry's cell is SYN_SENT from
					// TIME_WAIT or CLOSE; the kernel kills it and the
					// packet creates a new entry in its direction.
					cls, _ := in.Classify(seg.Flags)
					if o := in.Cell(dir, cls, b.state); o.Kind == spec.Next && o.State == in.State("SYN_SENT") &&
						(b.state == in.State("TIME_WAIT") || b.state == in.State("CLOSE")) {
						h, err = invariant.ExReopen, nil
					}
				}
				if err == nil {
					how, used = h, b
					break
				}
				errs = append(errs, err.Error())
			}
			total++
			if how == "" {
				bad++
				if bad <= 5 {
					t.Errorf("%s packet %d (%v %v): %s", kt.Name, p.Index, p.Key, p.Seg.Flags, strings.Join(errs, "; or "))
				}
				continue
			}
			if c, ok := strings.CutPrefix(how, "cell "); ok {
				tally["cell"]++
				cells[strings.SplitN(c, " (", 2)[0]]++
			} else {
				tally[how]++
			}
			// The entry after the packet, as the kernel reports it.
			if l.State == "" {
				if l.CT != "INVALID" || !used.live {
					*e = kentry{}
				}
				continue
			}
			ne := kentry{live: true, orig: used.orig, state: in.State(l.State), seenReply: l.SeenReply, lo: p.Now + *l.Timeout*1e9}
			// A reopen in the reply direction matches its own cell (reply
			// syn sTW -> sSS) but turns the tuple around: the reopening
			// packet's tuple is the new original.
			if !used.live || how == invariant.ExReopen || (l.CT != "INVALID" && l.Dir == "original" && p.Key == used.orig.Reverse()) {
				ne.orig = p.Key
			}
			*e = ne
		}
	}
	keys := make([]string, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d recorded packets follow the linux spec: %v", total, tally)
	t.Logf("%d distinct cells exercised: %s", len(keys), strings.Join(keys, ", "))
}
