package main

import (
	"hash/maphash"
	"math/bits"
	"sort"
	"unsafe"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// connStat is what the summary keeps per connection (original tuple).
type connStat struct {
	h        uint64 // hash of key, low bit set; 0: empty slot
	key      table.Key
	deadline int64 // the entry's deadline after the connection's last packet; 0: no entry
	packets  int
	invalid  int
	bytes    int64
}

// topN is how many busiest connections the summary lists.
const topN = 10

// connCounts counts packets and bytes per connection for the summary's
// busiest connections, with memory bounded by the connection table, not
// by the capture.
//
// It is an open-addressing hash table (linear probing, keys compared
// whole) rather than a Go map: one probe per packet, no allocation per
// connection. When it is half full it is compacted: every connection
// whose entry is gone (deleted, or expired by the current packet's time,
// judged from the deadline its last packet reported) is folded into the
// running top-N and dropped. So it holds about as many connections as the
// tracker's table at most, and the top-N is exact. A tuple reused after
// its connection was folded counts as a new connection.
type connCounts struct {
	seed0 uint64
	slots []connStat
	mask  uint64
	n     int
	limit int // most connections kept alive through a compaction
	best  []connStat
}

func (cc *connCounts) init(limit int) {
	cc.seed0 = new(maphash.Hash).Sum64()
	cc.slots = make([]connStat, 1<<12)
	cc.mask = 1<<12 - 1
	cc.limit = limit
}

// slot returns k's slot, or the empty slot where it belongs (h == 0).
// Comparing the stored hash first keeps full key comparisons to one.
func (cc *connCounts) slot(k *table.Key, h uint64) *connStat {
	i := h & cc.mask
	for {
		s := &cc.slots[i]
		if s.h == 0 || (s.h == h && s.key == *k) {
			return s
		}
		i = (i + 1) & cc.mask
	}
}

// hash mixes the key's five words (table.Key is five uint64 words with no
// padding; the size check below breaks the build if that changes) with a
// per-run seed. maphash.Comparable costs ~35 ns on a 40-byte key; this ~3.
func (cc *connCounts) hash(k *table.Key) uint64 {
	w := (*[5]uint64)(unsafe.Pointer(k))
	h := cc.seed0
	for _, x := range w {
		hi, lo := bits.Mul64(h^x, 0x9e3779b97f4a7c15)
		h = hi ^ lo
	}
	h ^= h >> 31
	return h | 1
}

var _ [40 - unsafe.Sizeof(table.Key{})]byte // table.Key must stay 5 words
var _ [unsafe.Sizeof(table.Key{}) - 40]byte

// add counts one packet of the connection v names.
func (cc *connCounts) add(v *tcpct.Verdict, pk *pktInfo) {
	if v.Key.IsZero() {
		return // a truncated TCP header: no tuple
	}
	h := cc.hash(&v.Key)
	s := cc.slot(&v.Key, h)
	if s.h == 0 {
		if 2*(cc.n+1) > len(cc.slots) {
			cc.compact(v.Now)
			s = cc.slot(&v.Key, h)
		}
		s.h, s.key = h, v.Key
		cc.n++
	}
	s.packets++
	s.bytes += int64(pk.ipLen)
	if v.CT == fsm.Invalid {
		s.invalid++
	}
	if v.Entry {
		s.deadline = v.Deadline
	} else {
		s.deadline = 0
	}
}

// compact folds the connections without an entry at now into the top-N
// and rebuilds the table with the others, at least four times as large as
// what it keeps (linear probing stays short below half full).
func (cc *connCounts) compact(now int64) {
	keep := 0
	for i := range cc.slots {
		if s := &cc.slots[i]; s.h != 0 && s.deadline > now {
			keep++
		}
	}
	if keep > cc.limit {
		keep = 0 // more "live" tuples than the table holds: fold them all
	}
	size := len(cc.slots)
	for 4*keep > size {
		size *= 2
	}
	old := cc.slots
	cc.slots = make([]connStat, size)
	cc.mask = uint64(size - 1)
	cc.n = 0
	for i := range old {
		s := &old[i]
		switch {
		case s.h == 0:
		case keep > 0 && s.deadline > now:
			*cc.slot(&s.key, s.h) = *s
			cc.n++
		default:
			cc.fold(s)
		}
	}
}

func busier(a, b *connStat) bool {
	if a.packets != b.packets {
		return a.packets > b.packets
	}
	return tcpct.KeyLess(a.key, b.key)
}

// fold offers a finished connection to the top-N.
func (cc *connCounts) fold(s *connStat) {
	if len(cc.best) == topN && !busier(s, &cc.best[topN-1]) {
		return
	}
	if len(cc.best) < topN {
		cc.best = append(cc.best, *s)
	} else {
		cc.best[topN-1] = *s
	}
	for i := len(cc.best) - 1; i > 0 && busier(&cc.best[i], &cc.best[i-1]); i-- {
		cc.best[i], cc.best[i-1] = cc.best[i-1], cc.best[i]
	}
}

// top folds every connection still held and returns the busiest, most
// packets first (ties by tuple). Call it once, at the end.
func (cc *connCounts) top() []*connStat {
	for i := range cc.slots {
		if s := &cc.slots[i]; s.h != 0 {
			cc.fold(s)
		}
	}
	sort.SliceStable(cc.best, func(i, j int) bool { return busier(&cc.best[i], &cc.best[j]) })
	out := make([]*connStat, len(cc.best))
	for i := range cc.best {
		out[i] = &cc.best[i]
	}
	return out
}
