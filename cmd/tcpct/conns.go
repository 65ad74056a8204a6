package main

import (
	"sort"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// connStat is what the summary reports per connection.
type connStat struct {
	key     table.Key // original tuple
	ref     table.Ref // the connection's table slot in its shard
	packets uint64
	invalid uint64
	bytes   uint64
}

// connSlot is the running count of the connection that holds one table
// slot: 32 bytes, written by every packet of the connection.
type connSlot struct {
	gen     uint32 // the Ref generation counted; 0: none yet
	invalid uint32
	packets uint64
	bytes   uint64
	_       uint64
}

// topN is how many busiest connections the summary lists.
const topN = 10

// connCounts counts packets and bytes per connection for the summary's
// busiest connections.
//
// Counts live in a slice indexed by the connection's table slot
// (Verdict.Ref.Index), one slice per tracker shard, so a packet's count is
// one direct store, with no hashing, probing or resizing, in memory that
// the table bounds (Max slots), not the capture. The tracker hands slots
// of recently created connections out close together, so the counts
// touched at any time are too. When a slot is seen with a new generation,
// the connection counted there before is over: it is folded into the
// running top-N, so the top-N is exact over the whole capture. Packets that
// leave no entry (INVALID without a connection, table full) belong to no
// connection and are only counted in the per-packet totals.
type connCounts struct {
	slots [][]connSlot
	keys  [][]table.Key // original tuple of each slot's connection
	refs  [][]table.Ref // and its Ref
	best  []connStat
}

// init sizes one counter slice per tracker shard, each the shard's Max.
func (cc *connCounts) init(sizes []int) {
	cc.slots = make([][]connSlot, len(sizes))
	cc.keys = make([][]table.Key, len(sizes))
	cc.refs = make([][]table.Ref, len(sizes))
	for i, n := range sizes {
		cc.slots[i] = make([]connSlot, n)
		cc.keys[i] = make([]table.Key, n)
		cc.refs[i] = make([]table.Ref, n)
	}
}

// grow makes room for index i in shard's slices: a tracker without a
// limit (max=0) starts small and grows its table, keeping every entry at
// its index.
func (cc *connCounts) grow(shard, i int) {
	n := max(1024, 2*(i+1))
	cc.slots[shard] = append(cc.slots[shard], make([]connSlot, n-len(cc.slots[shard]))...)
	cc.keys[shard] = append(cc.keys[shard], make([]table.Key, n-len(cc.keys[shard]))...)
	cc.refs[shard] = append(cc.refs[shard], make([]table.Ref, n-len(cc.refs[shard]))...)
}

// add counts one packet, tracked by shard, into its connection.
func (cc *connCounts) add(shard int, v *tcpct.Verdict, pk *pktInfo) {
	if !v.Entry {
		return
	}
	i := v.Ref.Index()
	if i >= len(cc.slots[shard]) {
		cc.grow(shard, i)
	}
	s := &cc.slots[shard][i]
	if s.gen != v.Ref.Gen() {
		if s.gen != 0 {
			cc.fold(shard, i)
		}
		*s = connSlot{gen: v.Ref.Gen()}
		cc.keys[shard][i] = v.Key
		cc.refs[shard][i] = v.Ref
	}
	s.packets++
	s.bytes += uint64(pk.ipLen)
	if v.CT == fsm.CTInvalid {
		s.invalid++
	}
}

func busier(a, b *connStat) bool {
	if a.packets != b.packets {
		return a.packets > b.packets
	}
	return tcpct.KeyLess(a.key, b.key)
}

// fold offers the connection counted in a slot to the top-N.
func (cc *connCounts) fold(shard, i int) {
	s := &cc.slots[shard][i]
	c := connStat{key: cc.keys[shard][i], ref: cc.refs[shard][i], packets: s.packets, invalid: uint64(s.invalid), bytes: s.bytes}
	if len(cc.best) == topN && !busier(&c, &cc.best[topN-1]) {
		return
	}
	if len(cc.best) < topN {
		cc.best = append(cc.best, c)
	} else {
		cc.best[topN-1] = c
	}
	for j := len(cc.best) - 1; j > 0 && busier(&cc.best[j], &cc.best[j-1]); j-- {
		cc.best[j], cc.best[j-1] = cc.best[j-1], cc.best[j]
	}
}

// top folds every connection still counted and returns the busiest, most
// packets first (ties by tuple). Call it once, at the end.
func (cc *connCounts) top() []connStat {
	for sh := range cc.slots {
		for i := range cc.slots[sh] {
			if cc.slots[sh][i].gen != 0 {
				cc.fold(sh, i)
			}
		}
	}
	sort.SliceStable(cc.best, func(i, j int) bool { return busier(&cc.best[i], &cc.best[j]) })
	return cc.best
}
