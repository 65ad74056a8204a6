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
// The price is paying for Max up front (about 160 bytes per connection for
// a 72-byte value), and Max cannot change without building a new table.
//
// # Layout
//
// Records live in one []uint64 arena, one record per connection, stride
// rounded to whole words (7 header words + V): a per-entry writer lock, a
// seqlock counter, the original tuple (5 words), generation/state/flags and
// the value. Deadlines live in a separate []int64 so that Sweep reads 8
// sequential bytes per entry.
//
// The index is an open-addressed array of 64-byte buckets (one cache line):
// an overflow count and seven slots. A slot packs a 32-bit hash tag, the
// record index and the direction, so a lookup touches one bucket line and,
// only on a tag match, the record. Each connection has two slots, one per
// tuple (like the kernel's tuplehash[ORIGINAL] and [REPLY]), so a packet of
// either direction is one probe; the slot's direction bit says which tuple
// matched. The overflow count (F14-style) ends unsuccessful searches early
// and makes deletion tombstone-free, so churn never degrades probing. At Max
// the index is 80% full, about 23 bytes per connection.
//
// # Concurrency
//
// Readers (Lookup, Get, Load, Range) take no lock: they read a slot with an
// atomic load and the record under its seqlock, retrying only while a writer
// is inside its few-word copy window. Writers of one entry serialise on the
// per-entry lock (Acquire ... Commit); index changes of a connection
// (insert, delete) additionally take the two writer stripes of its tuples in
// index order, the kernel's nf_conntrack_double_lock. Lock order is entry
// lock, then stripes; under stripes only try-locks are used.
//
// # Time
//
// The table has no clock and no timers. Every operation takes now
// (nanoseconds of the caller's clock); an entry whose deadline is <= now is
// invisible immediately and is reclaimed by Sweep (bounded budget per call),
// by an Insert that needs its tuple, or by early drop.
package table
