package table

import (
	"sync/atomic"
	"unsafe"
)

// Stats are the table's counters, named after the columns of
// /proc/net/stat/nf_conntrack where one exists.
type Stats struct {
	Entries       int64  // entries held (including expired, not yet reclaimed)
	Found         uint64 // lookups that found an entry
	Insert        uint64 // entries created
	InsertFailed  uint64 // creates refused by the index probe limit (kernel: chaintoolong)
	Drop          uint64 // creates dropped because the table was full and nothing could be evicted
	EarlyDrop     uint64 // entries evicted to make room (not counting expired ones reclaimed on the way)
	Invalid       uint64 // packets the tracker judged invalid (counted by the caller through AddInvalid)
	SearchRestart uint64 // seqlock retries by readers that met a concurrent write
	ClashResolve  uint64 // creates that lost a race and returned the winner (kernel: clashres)
	Expired       uint64 // entries reclaimed because their deadline passed
	Killed        uint64 // entries deleted or replaced by the caller
	EventsLost    uint64 // events a slow subscriber did not receive
}

// Counters are striped so that readers on different cores do not write one
// shared cache line (false sharing). The stripe is chosen from the
// address of a stack variable: goroutines have distinct stacks, so
// concurrent goroutines mostly use distinct stripes without any runtime
// hooks. Each stripe is padded to 128 bytes (adjacent-line prefetch).
const statShards = 64

type statShard struct {
	found, insert, insertFailed, drop, earlyDrop, invalid,
	searchRestart, clash, expired, killed, lost atomic.Uint64
	_ [128 - 11*8]byte
}

//go:noinline
func stackHint() uintptr {
	var x byte
	return uintptr(unsafe.Pointer(&x))
}

func (t *Table[V]) stat() *statShard {
	p := stackHint()
	return &t.stats[(p>>12^p>>18)&(statShards-1)]
}

// AddInvalid counts a packet the tracker found invalid (the kernel's
// "invalid" column); the table never sees those packets itself.
func (t *Table[V]) AddInvalid() { t.stat().invalid.Add(1) }

// Stats sums the counters. It is weakly consistent with concurrent updates.
func (t *Table[V]) Stats() Stats {
	var s Stats
	for i := range t.stats {
		c := &t.stats[i]
		s.Found += c.found.Load()
		s.Insert += c.insert.Load()
		s.InsertFailed += c.insertFailed.Load()
		s.Drop += c.drop.Load()
		s.EarlyDrop += c.earlyDrop.Load()
		s.Invalid += c.invalid.Load()
		s.SearchRestart += c.searchRestart.Load()
		s.ClashResolve += c.clash.Load()
		s.Expired += c.expired.Load()
		s.Killed += c.killed.Load()
		s.EventsLost += c.lost.Load()
	}
	s.Entries = int64(t.Len())
	return s
}
