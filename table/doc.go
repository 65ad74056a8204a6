// Package table is tcpct's connection table: the nf_conntrack hash table
// rebuilt as a fixed-capacity, pointer-free, lock-free-for-readers structure
// that stores one record per connection and finds it from either direction
// with one lookup.
//
// # Why fixed capacity
//
// The kernel bounds the table with nf_conntrack_max and, when it is full,
// early-drops an unassured entry near the new flow's bucket or drops the
// packet. tcpct keeps that contract and exploits it: because the maximum is
// known at New, the record arena, the deadline array and the index are
// allocated once and never resized. That gives
//
//   - no resize pauses and no stop-the-world rehash on the packet path;
//   - stable record indexes, so a Ref (index + generation) is a complete,
//     allocation-free handle and Range can walk records in memory order
//     without ever seeing an entry twice;
//   - a table the garbage collector does not scan: arena, deadlines and
//     index are []uint64/[]int64, so a forced GC costs the same with 10
//     million connections as with none (a map of *Conn costs seconds);
//   - bounded memory that the operator chose, which is what a conntrack
//     under a SYN flood needs anyway.
//
// The price is paying for Max up front (record, expiry bookkeeping and
// index slots for every connection; Layout adds them up), and Max cannot
// change without building a new table.
//
// # Layout
//
// Records live in one []uint64 arena, one record per connection, stride
// rounded to whole words: 7 header words + V, so 17 words (136 bytes) for
// the tracker's 80-byte fsm.Conn. Word 0 is the control word: entry
// lock bit, seqlock write bit and sequence, and the generation, so one
// word is lock, seqlock and incarnation. Words 1-5 are the original tuple
// with state and flags packed into the unused top 16 bits of its last word,
// word 6 is the deadline, then V. Everything a lookup reads (control word,
// key, state, flags, deadline) is in the first 56 bytes of the record. A V
// of 72 bytes would make records 128 bytes, aligned, with those words in
// one cache line; the tracker's 136-byte records straddle lines (the
// comment on the record layout in table.go says why they are not padded).
//
// The index is an open-addressed array of 64-byte buckets (one cache line):
// an overflow count and seven slots. A slot packs a 32-bit hash tag, the
// record index and the direction, so a lookup touches one bucket line and,
// only on a tag match, the record: two cache lines per established-flow
// lookup (a tag collision adds a record read once in 2^32). Each connection
// has two slots, one per tuple (like the kernel's tuplehash[ORIGINAL] and
// [REPLY]), so a packet of either direction is one probe; the slot's
// direction bit says which tuple matched. The overflow count (F14-style)
// ends unsuccessful searches early and makes deletion tombstone-free, so
// churn never degrades probing. At Max the index is 80% full, about 23
// bytes per connection.
//
// Expiry keeps, per record, the deadline it is filed under in the timing
// wheel (a lower bound of its deadline, 8 bytes) and the wheel's list links
// (12 bytes). Creates file the entry; an update files it again only when
// it moves the deadline earlier (a closing state), so the common refresh
// touches nothing but the record; the wheel refiles an entry refreshed
// since it was filed when its old slot comes due. All in, about 179 bytes
// per connection for the tracker (136-byte record + 20 expiry + 23 index;
// TestConfigMemory in the root package measures 180).
//
// The arena, the index and the hint array are ordinary pointer-free Go heap
// objects (the collector never scans them). On Linux, New also asks for
// transparent huge pages on them (madvise MADV_HUGEPAGE, then
// MADV_COLLAPSE): at 1e5 connections and beyond each lookup is two random
// accesses into tens to hundreds of MiB, and with 4 KiB pages each of them
// also paid a page walk (a two-dimensional one under a hypervisor).
//
// # Concurrency
//
// Readers (Lookup, Get, Load, Range) take no lock: they read a slot with an
// atomic load and the record under its seqlock, retrying only while a writer
// is inside its few-word copy window. The lock bit does not disturb them:
// readers never wait for an entry's lock holder. Writers of one entry
// serialise on the entry lock (Acquire ... Commit): Acquire is one CAS on
// the control word. AcquireKey, the tracker's path, looks the key up and
// locks in one step: it takes the lock at the first slot whose tag
// matches and compares the key under it, which is safe because a record
// is only ever written by its lock holder (allocation included), so it
// needs no seqlock snapshot. Commit opens the write window with one
// atomic add, stores the words plainly, and closes the window and
// releases the lock with one store. Index changes of a connection (insert, delete)
// additionally take the two writer stripes of its tuples in index order,
// the kernel's nf_conntrack_double_lock. Lock order is entry lock, then
// stripes; under stripes only try-locks are used.
//
// Capacity is Max tokens spread over per-goroutine free shards (chosen from
// the goroutine's stack address, like the counter stripes): a create takes
// a token and a record from its own shard, a delete gives them back to its
// own shard, so churn on several cores shares no counter; fresh records are
// handed to shards in batches. "Full" is decided with every shard locked,
// on an exact count, so the table never holds more than Max entries, not
// even transiently, and never reports full after a delete made room. Len
// sums the shards: exact when no create or delete is in flight, otherwise
// off by at most their number, and never above Max.
//
// The kernel-style counters (Stats) are striped the same way; Expire counts
// its reclaims once per call. The expiry wheel has one mutex, taken by
// creates, by writes that move a deadline earlier and by Expire when
// something is due; it is a leaf lock, held for a few list operations.
//
// # Performance
//
// Costs are stated above in cache lines and bytes, which do not change
// from one machine to the next. Measured times (lookup and update against
// xsync.Map and sync.Map, batch prefetch, expiry scan, forced GC with the
// table live, bytes per connection) are in BENCHMARKS.md at the repository
// root, with the commands that measure them again (BenchmarkCT in
// bench_test.go, scripts/bench-table.sh).
//
// # Time
//
// The table has no clock and no timers. Every operation takes now
// (nanoseconds of the caller's clock); an entry whose deadline is <= now is
// invisible immediately and counts as absent for every decision: lookup,
// the clash check, the limit and early drop (an Insert into a full table
// first reclaims what has expired). Expire(now) reclaims every expired
// entry in order of deadline, then tuple, and emits their DESTROY events
// in that order, finding them in a timing wheel (expiry.go) instead of
// scanning: what is reclaimed, and in what order, is a function of the
// writes and the clock alone, never of the hash seed, the records entries
// happen to occupy, or how often Expire runs. Reclaim is the packet
// path's Expire: without an event subscriber it lets due entries wait
// until the earliest is about 67 ms overdue and reclaims them together,
// which only Len, Stats and the order of free records can tell.
package table
