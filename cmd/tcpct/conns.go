package main

import (
	"sort"
	"unsafe"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/hugepage"
	"github.com/fdac824a/tcpct/table"
)

// connStat is what the summary reports per connection.
type connStat struct {
	key     table.Key // original tuple
	index   int       // the connection's table slot in its shard (table.Ref.Index)
	gen     uint32    // and the slot's generation (table.Ref.Gen)
	packets uint64
	invalid uint64
	bytes   uint64
}

// connSlot is the running count of the connection that holds one table
// slot, with its original tuple: 64 bytes, one cache line, written by
// every packet of the connection. Key and counts share the line, so a new
// connection costs one line of fresh memory, not one per array (keys,
// refs and counts in three slices, 80 bytes a slot, took 9 % of a cached
// replay, half of it the kernel zeroing pages as they were first
// touched); the slot's index is its place in the slice.
type connSlot struct {
	key     table.Key
	gen     uint32 // the Ref generation counted; 0: none yet
	invalid uint32
	packets uint64
	bytes   uint64
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
	used  []int // per shard: slots[shard][used:] were never counted in
	best  []connStat
}

// init sizes one counter slice per tracker shard, each the shard's Max.
func (cc *connCounts) init(sizes []int) {
	cc.slots = make([][]connSlot, len(sizes))
	cc.used = make([]int, len(sizes))
	for i, n := range sizes {
		cc.slots[i] = make([]connSlot, n)
		if n > 0 {
			// Each new connection writes its slot first: with 4 KiB
			// pages a fault every 64 connections, 4 % of a replay of
			// 200k connections under a hypervisor. No collapse: the
			// counters are faulted in as connections arrive.
			hugepage.Advise(unsafe.Pointer(&cc.slots[i][0]), uintptr(n)*unsafe.Sizeof(connSlot{}), false)
		}
	}
}

// grow makes room for index i in shard's slice: a tracker without a
// limit (max=0) starts small and grows its table, keeping every entry at
// its index.
func (cc *connCounts) grow(shard, i int) {
	n := max(1024, 2*(i+1))
	cc.slots[shard] = append(cc.slots[shard], make([]connSlot, n-len(cc.slots[shard]))...)
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
			cc.fold(s, i)
		}
		*s = connSlot{key: v.Key, gen: v.Ref.Gen()}
		cc.used[shard] = max(cc.used[shard], i+1)
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

// fold offers the connection counted in slot s (index i) to the top-N.
func (cc *connCounts) fold(s *connSlot, i int) {
	c := connStat{key: s.key, index: i, gen: s.gen, packets: s.packets, invalid: uint64(s.invalid), bytes: s.bytes}
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
		// Slots past used were never written: reading them would fault
		// in the untouched rest of a slice sized for the table's Max.
		for i := range cc.slots[sh][:cc.used[sh]] {
			if s := &cc.slots[sh][i]; s.gen != 0 {
				cc.fold(s, i)
			}
		}
	}
	sort.SliceStable(cc.best, func(i, j int) bool { return busier(&cc.best[i], &cc.best[j]) })
	return cc.best
}
