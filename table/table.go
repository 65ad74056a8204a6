package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fdac824a/tcpct/spec"
)

// Flags are the status bits the table itself needs (eviction, rendering).
// The names follow the kernel's IPS_* bits.
type Flags uint8

const (
	// Assured mirrors IPS_ASSURED: the connection has seen traffic both ways
	// and must not be early-dropped.
	Assured Flags = 1 << iota
	// SeenReply mirrors IPS_SEEN_REPLY; when clear the entry prints [UNREPLIED].
	SeenReply
	// Closing marks a TCP state the kernel treats as an early-drop candidate
	// even when assured (FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE;
	// see tcp_can_early_drop in nf_conntrack_proto_tcp.c).
	Closing
	// StateChange, set on the Meta given to Commit, announces the write
	// as a change of state even if the stored state is the same: the
	// UPDATE event is sent, with the state. The kernel does this when its
	// resync rewrites old_state (a retransmitted SYN/ACK answering an
	// ignored SYN: SYN_SENT -> SYN_RECV on an entry already in SYN_RECV
	// raises IPCT_PROTOINFO). It is not stored.
	StateChange

	// PacketReply, set on a Meta that carries a packet to count
	// (Meta.Bytes), says the packet travelled in the reply direction. It
	// is not stored.
	PacketReply Flags = 0x40
	flagAlive   Flags = 0x80 // internal: record holds a connection
	userFlags         = Assured | SeenReply | Closing
)

// Meta is the table-owned part of an entry: the caller sets it with every
// write. Deadline is in nanoseconds of the injected clock (the same clock as
// the now arguments). State indexes Config.StateNames.
type Meta struct {
	Deadline int64
	State    uint8
	Flags    Flags
	// Bytes, on a write with Config.Acct set, is the length of the IP
	// packet the write counts (nf_ct_refresh_acct): Commit, Insert,
	// Replace and RemoveAs add one packet of this size to the direction
	// that Flags&PacketReply names. 0 counts nothing. It is not stored.
	Bytes uint32
}

// Counters are an entry's accounting (Config.Acct), indexed by Dir: what
// `conntrack -L` prints as packets= and bytes= after each tuple.
type Counters struct {
	Packets, Bytes [2]uint64
}

// Dir says which tuple of the connection a lookup key matched: the one
// direction type of the module (spec.Dir), so that the table's answer and
// the fsm's direction are the same value.
type Dir = spec.Dir

const (
	Original = spec.Original
	Reply    = spec.Reply
)

// Ref names one incarnation of an entry: the record index plus a generation
// that changes whenever the record is freed. A Ref to a deleted or reused
// entry is detected, never confused with the new occupant. The zero Ref is
// invalid.
type Ref struct {
	idx uint32
	gen uint32
}

// IsZero reports whether r is the zero (invalid) Ref.
func (r Ref) IsZero() bool { return r.gen == 0 }

// Index is the entry's record slot, in [0, Max). It stays the same for the
// entry's whole life and is reused by later entries once it is freed, so a
// caller can keep side data per connection in a slice of length Max,
// indexed by it, instead of in a second hash table keyed by tuple.
func (r Ref) Index() int { return int(r.idx) }

// Gen is the slot's generation: successive entries in one slot have
// different generations, so (Index, Gen) names one connection.
func (r Ref) Gen() uint32 { return r.gen }

// Status is the outcome of Insert and Replace.
type Status uint8

const (
	// Inserted: a new entry was created.
	Inserted Status = iota
	// Existing: a live entry with the key (either direction) already
	// existed — typically another goroutine won the race. The returned Ref
	// and Dir are the winner's; re-run the update path on it.
	Existing
	// Dropped: the table is at Config.Max and no entry near the key could be
	// early-dropped. Counted as drop.
	Dropped
	// Failed: the index probe limit was hit (the kernel's chaintoolong).
	// Counted as insert_failed.
	Failed
	// Full: a table made with Config.Grow is at Max (after reclaiming what
	// had expired). Nothing was written or counted; Grow, then insert
	// again.
	Full
)

func (s Status) String() string {
	switch s {
	case Inserted:
		return "inserted"
	case Existing:
		return "existing"
	case Dropped:
		return "dropped"
	case Failed:
		return "failed"
	case Full:
		return "full"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Config fixes a table's shape at creation.
type Config struct {
	// Max is the maximum number of connections (nf_conntrack_max). The
	// record arena and the index are sized for it once, at New.
	Max int
	// Seed for the key hash; 0 draws one from math/rand/v2's global
	// generator: ChaCha8, seeded by the runtime from the operating system's
	// entropy, the source Go's own maps draw their hash seeds from, so
	// unpredictable from outside.
	Seed uint64
	// StateNames maps Meta.State to the name printed in dumps and events
	// (e.g. "ESTABLISHED"). Out-of-range states print "NONE", as libnetfilter_conntrack does.
	StateNames []string
	// Stripes is the number of writer lock stripes (power of two, default 1024 like
	// the kernel's CONNTRACK_LOCKS).
	Stripes int
	// Acct keeps packet and byte counters per direction on every entry,
	// as the kernel does with net.netfilter.nf_conntrack_acct=1: writes
	// whose Meta carries a packet (Meta.Bytes) count it, snapshots and
	// DESTROY events carry the counters, dumps print them. Off, the table
	// allocates nothing for them and the packet path does not touch them.
	Acct bool
	// Grow makes Insert report Full where a table at Max would early-drop
	// or drop: the owner then calls Grow and inserts again. It serves the
	// kernel's nf_conntrack_max = 0 (no limit); see Grow.
	Grow bool
}

// Record layout, in 64-bit words. A record is 7 words plus V: 128 bytes for
// a 72-byte V, which then starts on a 128-byte boundary, so the first
// cache line holds everything a lookup reads and the adjacent-line
// prefetcher brings the rest of V. fsm.Conn is 80 bytes, so the tracker's
// records are 136 bytes and straddle lines; padding them to 192 bytes did
// not make the 10M-packet replay faster (BENCHMARKS.md), so they are not
// padded.
//
//	0      control word: gen<<32 | seq<<2 | L<<1 | W
//	         W    a seqlock write window is open (readers retry)
//	         L    the per-entry writer lock is held (readers ignore it)
//	         seq  30-bit seqlock sequence, +1 per write window
//	         gen  generation, changes whenever the record is freed or replaced
//	1..4   original Key, words 0..3
//	5      original Key word 4 (48 bits) | state<<48 | flags<<56
//	6      deadline
//	7..    V, padded to whole words
//
// One word serves as entry lock, seqlock and generation, so a reader's
// first load gives it the sequence and the generation at once, and a writer
// ends its write window and releases the lock with a single store.
//
// A record's filed deadline (filedDeadline, kept in wheelLink.unfiled by
// the expiry wheel: expiry.go) is a lower bound of its deadline,
// freeDeadline for a free record. A write that moves a deadline later (the common refresh of an
// established connection) leaves it alone, so the update path touches only
// the record; the wheel refiles the entry when the old deadline comes.
const (
	wCtl     = 0
	wKey     = 1
	wTail    = 5
	wDl      = 6
	hdrWords = 7

	ctlW     = 1
	ctlL     = 2
	ctlSeq   = 4
	tailMask = 1<<48 - 1
)

const freeDeadline = math.MaxInt64 // deadline of a free record: never expires

// Table is a fixed-capacity concurrent connection table. See the package
// documentation for the design. All methods are safe for concurrent use.
type Table[V any] struct {
	seed    [6]uint64
	max     uint32
	stride  int // words per record
	vWords  int
	vFull   int // whole words of V
	vTail   int // trailing bytes of V
	arena   []uint64
	buckets []uint64 // nb buckets of 8 words: [0]=overflow count, [1..7] slots
	nb      uint64
	probes  int // max buckets visited per insert

	stripes    []stripe
	stripeMask uint64

	hwm      atomic.Uint64 // records ever handed to a free shard from the fresh region
	free     []freeShard
	freeMask uint64
	batch    uint64 // fresh records a shard takes from hwm at once
	wheel    wheel  // expiry by deadline (expiry.go)

	stats [statShards]statShard
	sub   atomic.Pointer[Subscription[V]]
	names []string

	// acct, with Config.Acct, holds 4 words per record: original packets,
	// original bytes, reply packets, reply bytes; nil otherwise. Lock
	// holders add with atomic adds, readers load without the seqlock, as
	// the kernel's atomic64 counters are read.
	acct []uint64

	grow bool // Config.Grow
}

type stripe struct {
	mu sync.Mutex
	// line is never written: its address is what prefetchLines is given
	// to bring the stripe's cache line in without taking the lock (a
	// prefetch on amd64, a load of line elsewhere).
	line uint64
	_    [48]byte
}

// stripeOf is the writer stripe of a tuple whose hash is h.
func (t *Table[V]) stripeOf(h uint64) uint64 { return (h >> 32) & t.stripeMask }

// freeShard is one of the capacity shards (see alloc). head, fresh and
// freshEnd change only under mu. tokens is taken only under mu but given
// back with a bare atomic add, so under mu it can only grow.
type freeShard struct {
	mu       sync.Mutex
	head     uint32 // idx+1 of the first free record, 0 = empty
	tokens   atomic.Int64
	fresh    uint64 // never-used records [fresh, freshEnd) taken from hwm
	freshEnd uint64
	_        [128 - 40]byte
}

const (
	slotsPerBucket = 7
	// Index load at Max: 2*Max directional slots over 7*nb slots. 0.8 keeps
	// probe sequences short (bucketized linear probing; expected overflow
	// chains well under one extra bucket) and the index at ~23 B/connection.
	maxLoad   = 0.8
	maxProbes = 128
)

// New creates a table for connections with per-entry state V. V must be
// pointer-free (no pointers, strings, slices, maps, interfaces, channels or
// funcs anywhere inside): records live in one big []uint64 the garbage
// collector never scans.
func New[V any](cfg Config) (*Table[V], error) {
	var zero V
	if err := checkPointerFree(reflect.TypeOf(&zero).Elem()); err != nil {
		return nil, err
	}
	if cfg.Max <= 0 || cfg.Max > math.MaxInt32-1 {
		return nil, fmt.Errorf("table: Max %d out of range [1, %d]", cfg.Max, math.MaxInt32-1)
	}
	t := &Table[V]{max: uint32(cfg.Max), names: cfg.StateNames, grow: cfg.Grow}
	vs := int(unsafe.Sizeof(zero))
	t.vFull, t.vTail = vs/8, vs%8
	t.vWords = (vs + 7) / 8
	t.stride = hdrWords + t.vWords

	seed := cfg.Seed
	var sb [48]byte
	if seed == 0 {
		// Not crypto/rand: it would bring the crypto packages into every
		// program using the table, and into every first, empty-cache
		// build of the command (BENCHMARKS.md, "First run").
		for i := range 6 {
			binary.LittleEndian.PutUint64(sb[i*8:], rand.Uint64())
		}
	} else {
		// Deterministic seed expansion (splitmix64) for reproducible tests.
		x := seed
		for i := 0; i < 6; i++ {
			x += 0x9e3779b97f4a7c15
			z := x
			z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
			z = (z ^ z>>27) * 0x94d049bb133111eb
			binary.LittleEndian.PutUint64(sb[i*8:], z^z>>31)
		}
	}
	for i := range t.seed {
		t.seed[i] = binary.LittleEndian.Uint64(sb[i*8:]) | 1
	}

	t.arena = alignedWords(cfg.Max * t.stride)
	if cfg.Acct {
		t.acct = make([]uint64, 4*cfg.Max)
	}
	t.wheel.init(cfg.Max)
	nb := uint64(math.Ceil(2 * float64(cfg.Max) / (slotsPerBucket * maxLoad)))
	if nb < 2 {
		nb = 2
	}
	t.nb = nb
	t.buckets = alignedWords(int(nb) * 8)
	t.probes = maxProbes
	if uint64(t.probes) > nb {
		t.probes = int(nb)
	}

	ns := cfg.Stripes
	if ns <= 0 {
		ns = 1024
	}
	ns = int(nextPow2(uint64(ns)))
	t.stripes = make([]stripe, ns)
	t.stripeMask = uint64(ns - 1)
	nf := nextPow2(uint64(4 * runtime.GOMAXPROCS(0)))
	if nf < 8 {
		nf = 8
	}
	t.free = make([]freeShard, nf)
	t.freeMask = nf - 1
	for i := range t.free {
		t.free[i].tokens.Store(int64(uint64(cfg.Max)/nf + b2u(uint64(i) < uint64(cfg.Max)%nf)))
	}
	t.batch = uint64(cfg.Max) / (8 * nf)
	t.batch = max(1, min(t.batch, 64))
	return t, nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func nextPow2(x uint64) uint64 {
	p := uint64(1)
	for p < x {
		p <<= 1
	}
	return p
}

// alignedWords returns n zeroed words starting on a 128-byte boundary (a
// pair of cache lines, the unit of the adjacent-line prefetcher).
func alignedWords(n int) []uint64 {
	s := make([]uint64, n+16)
	off := 0
	for uintptr(unsafe.Pointer(&s[off]))%128 != 0 {
		off++
	}
	adviseHuge(unsafe.Pointer(&s[0]), uintptr(len(s))*8)
	return s[off : off+n : off+n]
}

var errPointer = errors.New("table: value type must be pointer-free")

func checkPointerFree(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		if err := checkPointerFree(t.Elem()); err != nil {
			return fmt.Errorf("%w: %v", err, t)
		}
		return nil
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if err := checkPointerFree(f.Type); err != nil {
				return fmt.Errorf("%w (field %s.%s)", errPointer, t, f.Name)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: %v has kind %v", errPointer, t, t.Kind())
}

// Max returns the configured capacity.
func (t *Table[V]) Max() int { return int(t.max) }

// Len returns the number of entries held, including expired ones not yet
// reclaimed (like the kernel's nf_conntrack_count). It is exact when no
// create or delete is in progress; while some are, it may be off by at most
// their number (a token moving from a shard not yet read to one already
// read is missed, or counted twice), and it never exceeds Max (see alloc).
func (t *Table[V]) Len() int {
	n := int64(t.max)
	for i := range t.free {
		n -= t.free[i].tokens.Load()
	}
	return int(max(n, 0))
}

// ---- record access helpers -------------------------------------------------

func (t *Table[V]) base(idx uint32) int { return int(idx) * t.stride }

func (t *Table[V]) ctlp(b int) *uint64 { return &t.arena[b+wCtl] }

// lock spins for the entry lock of the record at b and returns the control
// word with L set. Only the lock holder changes the control word otherwise,
// so the returned value stays exact until the holder changes it.
func (t *Table[V]) lock(b int) uint64 {
	p := t.ctlp(b)
	for i := 0; ; i++ {
		c := atomic.LoadUint64(p)
		if c&ctlL == 0 && atomic.CompareAndSwapUint64(p, c, c|ctlL) {
			return c | ctlL
		}
		if i > 16 {
			runtime.Gosched()
		}
	}
}

// tryLock takes the entry lock if it is free.
func (t *Table[V]) tryLock(b int) (uint64, bool) {
	p := t.ctlp(b)
	c := atomic.LoadUint64(p)
	if c&ctlL != 0 || !atomic.CompareAndSwapUint64(p, c, c|ctlL) {
		return 0, false
	}
	return c | ctlL, true
}

func (t *Table[V]) unlock(b int) {
	p := t.ctlp(b)
	atomic.StoreUint64(p, atomic.LoadUint64(p)&^ctlL)
}

func (t *Table[V]) locked(b int) bool { return atomic.LoadUint64(t.ctlp(b))&ctlL != 0 }

func metaGen(m uint64) uint32  { return uint32(m) }
func metaState(m uint64) uint8 { return uint8(m >> 32) }
func metaFlags(m uint64) Flags { return Flags(m >> 40) }
func metaAlive(m uint64) bool  { return metaFlags(m)&flagAlive != 0 }

// tailWord packs the last key word with state and flags (record word 5).
func tailWord(k4 uint64, state uint8, f Flags) uint64 {
	return k4&tailMask | uint64(state)<<48 | uint64(f)<<56
}

// userMeta is the Meta a caller sees for a record with meta value mw and
// deadline dl: the state and the flags it set, without the table's own.
func userMeta(mw uint64, dl int64) Meta {
	return Meta{Deadline: dl, State: metaState(mw), Flags: metaFlags(mw) & userFlags}
}

// metaOf builds the meta value (gen | state<<32 | flags<<40) from a control
// word and a tail word.
func metaOf(c, tail uint64) uint64 {
	return c>>32 | (tail>>48)<<32
}

// loadMeta reads the meta of a record whose lock the caller holds.
func (t *Table[V]) loadMeta(b int) uint64 {
	return metaOf(atomic.LoadUint64(t.ctlp(b)), atomic.LoadUint64(&t.arena[b+wTail]))
}

func (t *Table[V]) loadKey(b int) Key {
	var k Key
	for i := 0; i < 4; i++ {
		k.w[i] = atomic.LoadUint64(&t.arena[b+wKey+i])
	}
	k.w[4] = atomic.LoadUint64(&t.arena[b+wTail]) & tailMask
	return k
}

func (t *Table[V]) loadDl(b int) int64 { return int64(atomic.LoadUint64(&t.arena[b+wDl])) }

// storeHead writes key, state, flags and deadline inside a write window.
func (t *Table[V]) storeHead(b int, k *Key, state uint8, f Flags, dl int64) {
	for i := 0; i < 4; i++ {
		storeW(&t.arena[b+wKey+i], k.w[i])
	}
	storeW(&t.arena[b+wTail], tailWord(k.w[4], state, f))
	storeW(&t.arena[b+wDl], uint64(dl))
}

// storeV copies v into the record. It is only called inside a seqlock
// write window (W set by an atomic read-modify-write, cleared by an atomic
// store), so the words need no ordering of their own: the window's atomics
// order them, and readers that overlap the window retry. Each store is a
// whole aligned word, which the Go memory model guarantees a racing reader
// observes whole, never split. Plain stores cost one MOV where an atomic
// store is a full-barrier XCHG on amd64 (9 of them for a 72-byte value were
// a third of an update). Race-detector builds use atomic stores so that the
// (benign, retried) overlap is not reported.
func (t *Table[V]) storeV(b int, v *V) {
	p := unsafe.Pointer(v)
	a := t.arena[b+hdrWords : b+hdrWords+t.vWords]
	if raceEnabled {
		for i := 0; i < t.vFull; i++ {
			atomic.StoreUint64(&a[i], *(*uint64)(unsafe.Add(p, i*8)))
		}
	} else {
		for i := 0; i < t.vFull; i++ {
			a[i] = *(*uint64)(unsafe.Add(p, i*8))
		}
	}
	if t.vTail != 0 {
		var w uint64
		for j := 0; j < t.vTail; j++ {
			w |= uint64(*(*byte)(unsafe.Add(p, t.vFull*8+j))) << (8 * j)
		}
		storeW(&a[t.vFull], w)
	}
}

// storeW stores one word inside a seqlock write window (see storeV), or a
// filed deadline (a lower bound only ever read as a whole word).
func storeW(p *uint64, v uint64) {
	if raceEnabled {
		atomic.StoreUint64(p, v)
	} else {
		*p = v
	}
}

// beginWrite opens a seqlock write window on a record whose lock the caller
// holds and returns the control word before it. The read-modify-write is a
// full barrier on every architecture Go supports (LOCK XADD, LDADDAL), so no
// later store of the window can become visible before W is set.
func (t *Table[V]) beginWrite(b int) uint64 { return atomic.AddUint64(t.ctlp(b), ctlW) - ctlW }

// endWrite closes the window opened by beginWrite with one release store:
// the sequence advances, the generation becomes gen, and the entry lock is
// released too when release is set.
func (t *Table[V]) endWrite(b int, c uint64, gen uint32, release bool) {
	lo := (uint32(c) + ctlSeq) &^ (ctlW | ctlL)
	if !release {
		lo |= ctlL
	}
	atomic.StoreUint64(t.ctlp(b), uint64(gen)<<32|uint64(lo))
}

func (t *Table[V]) loadV(b int, v *V) {
	p := unsafe.Pointer(v)
	a := t.arena[b+hdrWords : b+hdrWords+t.vWords]
	for i := 0; i < t.vFull; i++ {
		*(*uint64)(unsafe.Add(p, i*8)) = atomic.LoadUint64(&a[i])
	}
	if t.vTail != 0 {
		w := atomic.LoadUint64(&a[t.vFull])
		for j := 0; j < t.vTail; j++ {
			*(*byte)(unsafe.Add(p, t.vFull*8+j)) = byte(w >> (8 * j))
		}
	}
}

// readHead takes a consistent snapshot of key, meta and deadline of a
// record with the seqlock; it spins only while a writer is inside its short
// copy window (never while a writer merely holds the entry lock).
func (t *Table[V]) readHead(idx uint32) (k Key, m uint64, dl int64) {
	b := t.base(idx)
	r := t.arena[b : b+hdrWords : b+hdrWords]
	for i := 0; ; i++ {
		c1 := atomic.LoadUint64(&r[wCtl])
		if c1&ctlW == 0 {
			k.w[0] = atomic.LoadUint64(&r[wKey])
			k.w[1] = atomic.LoadUint64(&r[wKey+1])
			k.w[2] = atomic.LoadUint64(&r[wKey+2])
			k.w[3] = atomic.LoadUint64(&r[wKey+3])
			tail := atomic.LoadUint64(&r[wTail])
			dl = int64(atomic.LoadUint64(&r[wDl]))
			if (atomic.LoadUint64(&r[wCtl])^c1)&^ctlL == 0 {
				k.w[4] = tail & tailMask
				return k, metaOf(c1, tail), dl
			}
		}
		t.stat().searchRestart.Add(1)
		if i > 16 {
			runtime.Gosched()
		}
	}
}

// ---- stripes -------------------------------------------------------------

func (t *Table[V]) lockStripes(h1, h2 uint64) (a, b uint64) {
	a, b = t.stripeOf(h1), t.stripeOf(h2)
	if a > b {
		a, b = b, a
	}
	t.stripes[a].mu.Lock()
	if b != a {
		t.stripes[b].mu.Lock()
	}
	return
}

func (t *Table[V]) unlockStripes(a, b uint64) {
	if b != a {
		t.stripes[b].mu.Unlock()
	}
	t.stripes[a].mu.Unlock()
}

// ---- free list -----------------------------------------------------------

// Capacity is a set of Max tokens spread over the free shards; a live entry
// (or one being created or deleted) holds one. A create takes a token, then
// a record; a delete gives its token back while it still holds the entry
// (see destroyUnderStripes) and pushes the record on a free list just
// after, so a held token is always backed by a fresh, listed or
// about-to-be-listed record, and takeRecord waits for it in the last case
// (a few instructions of the deleter, which holds no lock a creator could be
// holding). Tokens never exceed Max in total, so neither do entries, not
// even transiently.
//
// A goroutine works on "its" shard, chosen like the counter stripes from
// the address of its stack: a churning goroutine gives back and takes
// tokens and records on its own cache lines, with no shared counter. The
// shard's mutex is almost always uncontended. Only when its shard is out of
// tokens does a create look at the others, one at a time, and when all look
// empty it takes every shard lock (in index order) to decide "full": with
// all locks held no token can be taken and counts can only grow, so if every
// shard reads zero, all were zero at the first read — an exact "full", never
// reported while a completed delete has made room.
//
// The stack address moves with the call depth, so one goroutine can name
// different shards from different functions. A delete therefore picks its
// shard once (myFree) and gives it both its token and its record; when
// the token went back deep inside the delete and the record was pushed
// by its caller, they often landed on different shards, and in a
// 10M-packet replay 74 % of creates found a token but no record on their
// shard and locked shard after shard to find one (about eight lock pairs
// each). A create that takes its token from another shard takes a record
// from it under the same lock.
func (t *Table[V]) myShard() uint64 {
	p := stackHint()
	return uint64(p>>12^p>>18) & t.freeMask
}

// myFree is the calling goroutine's shard, for a delete (see myShard).
func (t *Table[V]) myFree() *freeShard { return &t.free[t.myShard()] }

// alloc claims a token and returns a free record index, or false when all
// Max tokens are claimed.
func (t *Table[V]) alloc() (uint32, bool) {
	s := t.myShard()
	f := &t.free[s]
	f.mu.Lock()
	if f.tokens.Load() > 0 {
		f.tokens.Add(-1)
		idx, ok := t.popLocked(f)
		f.mu.Unlock()
		if !ok {
			idx = t.takeRecord(s)
		}
		return idx, true
	}
	f.mu.Unlock()
	for i := uint64(1); i <= t.freeMask; i++ {
		g := &t.free[(s+i)&t.freeMask]
		if g.tokens.Load() == 0 {
			continue
		}
		g.mu.Lock()
		if g.tokens.Load() > 0 {
			g.tokens.Add(-1)
			idx, ok := t.popLocked(g)
			g.mu.Unlock()
			if !ok {
				idx = t.takeRecord((s + i) & t.freeMask)
			}
			return idx, true
		}
		g.mu.Unlock()
	}
	// Every shard looked empty: decide on a frozen count.
	got := false
	for i := range t.free {
		t.free[i].mu.Lock()
	}
	for i := range t.free {
		if g := &t.free[i]; g.tokens.Load() > 0 {
			g.tokens.Add(-1)
			got = true
			break
		}
	}
	for i := range t.free {
		t.free[i].mu.Unlock()
	}
	if !got {
		return 0, false
	}
	return t.takeRecord(s), true
}

// popLocked takes a record from f's free list or fresh batch, refilling the
// batch from the never-used region. f.mu is held.
func (t *Table[V]) popLocked(f *freeShard) (uint32, bool) {
	if f.head != 0 {
		idx := f.head - 1
		f.head = uint32(atomic.LoadUint64(&t.arena[t.base(idx)+wKey]))
		return idx, true
	}
	if f.fresh == f.freshEnd && t.hwm.Load() < uint64(t.max) {
		n := t.hwm.Add(t.batch) - t.batch
		if n < uint64(t.max) {
			f.fresh, f.freshEnd = n, min(n+t.batch, uint64(t.max))
		}
	}
	if f.fresh < f.freshEnd {
		f.fresh++
		return uint32(f.fresh - 1), true
	}
	return 0, false
}

// takeRecord finds a record for a claimed token, starting at shard s.
func (t *Table[V]) takeRecord(s uint64) uint32 {
	for i := uint64(0); ; i++ {
		f := &t.free[(s+i)&t.freeMask]
		f.mu.Lock()
		idx, ok := t.popLocked(f)
		f.mu.Unlock()
		if ok {
			return idx
		}
		if i > t.freeMask {
			runtime.Gosched() // our record is between a deleter's unlink and its push
		}
	}
}

// release puts a dead record on f's free list. Its token was given back
// already, to f (see myShard). The next link is kept in the first key
// word of the (dead) record; readers ignore dead records.
func (t *Table[V]) release(idx uint32, f *freeShard) {
	f.mu.Lock()
	atomic.StoreUint64(&t.arena[t.base(idx)+wKey], uint64(f.head))
	f.head = idx + 1
	f.mu.Unlock()
}

// account adds the packet that m carries (Meta.Bytes, Flags&PacketReply)
// to record idx's counters; fresh first zeroes them, for a record that
// now holds a new connection. The caller holds the entry lock.
func (t *Table[V]) account(idx uint32, m *Meta, fresh bool) {
	if t.acct == nil {
		return
	}
	a := t.acct[4*idx : 4*idx+4 : 4*idx+4]
	if fresh {
		for i := range a {
			atomic.StoreUint64(&a[i], 0)
		}
	}
	if m.Bytes == 0 {
		return
	}
	d := 0
	if m.Flags&PacketReply != 0 {
		d = 2
	}
	atomic.AddUint64(&a[d], 1)
	atomic.AddUint64(&a[d+1], uint64(m.Bytes))
}

// counters loads record idx's counters (zero without Config.Acct).
func (t *Table[V]) counters(idx uint32) (c Counters) {
	if t.acct == nil {
		return c
	}
	a := t.acct[4*idx : 4*idx+4 : 4*idx+4]
	c.Packets[Original], c.Bytes[Original] = atomic.LoadUint64(&a[0]), atomic.LoadUint64(&a[1])
	c.Packets[Reply], c.Bytes[Reply] = atomic.LoadUint64(&a[2]), atomic.LoadUint64(&a[3])
	return c
}

// Accounting reports whether the table keeps counters (Config.Acct).
func (t *Table[V]) Accounting() bool { return t.acct != nil }
