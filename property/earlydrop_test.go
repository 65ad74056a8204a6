package property

import (
	"fmt"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"pgregory.net/rapid"
)

// Who sends a packet of life.
const (
	byOriginal = iota
	byReply
	byCloser // the side that closes first (drawn)
	byOther  // the other side
)

// life is a connection's whole life from handshake to TIME_WAIT; a drawn
// prefix of it leaves the connection in any state of a normal close,
// assured or not.
var life = []struct {
	by   int
	kind invariant.Kind
}{
	{byOriginal, invariant.KSyn},
	{byReply, invariant.KSynAck},
	{byOriginal, invariant.KAck},
	{byReply, invariant.KData},
	{byOriginal, invariant.KAck},
	{byCloser, invariant.KFin},
	{byOther, invariant.KAck},
	{byOther, invariant.KFin},
	{byCloser, invariant.KAck},
}

// TestRapidEarlyDrop: a table filled to its limit with connections each
// left at a drawn point of its life (SYN_SENT to TIME_WAIT, assured or
// not), sometimes aged, then first packets of new connections. Through
// the harness: an entry is early-dropped only if it may be (expired, not
// ASSURED, or closing: FIN_WAIT to CLOSE on linux, tcp_can_early_drop),
// and a first packet is dropped only if no entry may be (the table here
// is small enough that early drop examines every entry).
func TestRapidEarlyDrop(t *testing.T) {
	drops, evicts := 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		ks := knobSet{Profile: rapid.SampledFrom([]string{"linux", "tutorial"}).Draw(rt, "profile"), Loose: true, MaxRetrans: 3}
		max := rapid.IntRange(1, 4).Draw(rt, "table_max")
		h, err := invariant.NewHarness(ks.config(max, nil))
		if err != nil {
			rt.Fatal(err)
		}
		now := 1000 * second
		var trace []string
		send := func(c int, conv *invariant.Conv, dir fsm.Dir, kind invariant.Kind) {
			seg := conv.Segment(dir, kind, invariant.SeqExact, 100, 0)
			k := connKey(c)
			if dir == fsm.Reply {
				k = k.Reverse()
			}
			st, v, err := h.Packet(k, seg, now)
			trace = append(trace, describe(c, dir, kind, invariant.SeqExact, &seg, now, st.V, h.C.M.Profile())+dropped(&v))
			if err != nil {
				rt.Fatalf("%v\ntrace (%s, table max %d):%s", err, ks, max, joinTrace(trace))
			}
		}
		for c := 0; c < max; c++ {
			conv := invariant.NewConv(uint32(c)*1000, uint32(c)*1000+500)
			closer := fsm.Dir(rapid.IntRange(0, 1).Draw(rt, "closer"))
			for _, p := range life[:rapid.IntRange(1, len(life)).Draw(rt, fmt.Sprintf("conn%d_packets", c))] {
				dir := map[int]fsm.Dir{byOriginal: fsm.Original, byReply: fsm.Reply, byCloser: closer, byOther: 1 - closer}[p.by]
				send(c, conv, dir, p.kind)
			}
			now += int64(rapid.SampledFrom([]int{0, 0, 1, 61, 121}).Draw(rt, "wait")) * second
		}
		for c := max; c < max+2; c++ {
			send(c, invariant.NewConv(uint32(c)*1000, uint32(c)*1000+500), fsm.Original, invariant.KSyn)
		}
		drops += h.Drops
		evicts += h.Evicts
	})
	t.Logf("rapid: %d first packets dropped for a full table, %d entries early-dropped", drops, evicts)
}
