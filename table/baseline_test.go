package table

import (
	"sync"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v4"
)

// Baselines for the side-by-side benchmark: the usual Go ways to build a
// conntrack table, behind one small interface. Every one stores a
// connection the way a conntrack needs it: one heap record (the same
// 72-byte val plus a mutex for in-place updates and an atomic deadline for
// the sweeper) reachable from both tuples, i.e. two index entries per
// connection.

type rec struct {
	mu sync.Mutex
	dl atomic.Int64
	v  val
}

type baseline interface {
	Load(k Key) (*rec, bool)
	// Store2 creates the connection under both tuples unless k exists.
	Store2(k, kr Key, r *rec) bool
	Delete2(k, kr Key)
	Range(fn func(*rec) bool)
	concurrent() bool
}

// xsync/v4 Map: CLHT-style buckets, lock-free reads.
type xsyncMap struct{ m *xsync.Map[Key, *rec] }

func newXsync(n int) baseline {
	return xsyncMap{xsync.NewMap[Key, *rec](xsync.WithPresize(2 * n))}
}
func (x xsyncMap) Load(k Key) (*rec, bool) { return x.m.Load(k) }
func (x xsyncMap) Store2(k, kr Key, r *rec) bool {
	if _, loaded := x.m.LoadOrStore(k, r); loaded {
		return false
	}
	x.m.Store(kr, r)
	return true
}
func (x xsyncMap) Delete2(k, kr Key) { x.m.Delete(k); x.m.Delete(kr) }
func (x xsyncMap) Range(fn func(*rec) bool) {
	x.m.Range(func(_ Key, r *rec) bool { return fn(r) })
}
func (xsyncMap) concurrent() bool { return true }

// sync.Map (HashTrieMap since Go 1.24).
type syncMap struct{ m *sync.Map }

func newSyncMap(int) baseline { return syncMap{new(sync.Map)} }
func (s syncMap) Load(k Key) (*rec, bool) {
	v, ok := s.m.Load(k)
	if !ok {
		return nil, false
	}
	return v.(*rec), true
}
func (s syncMap) Store2(k, kr Key, r *rec) bool {
	if _, loaded := s.m.LoadOrStore(k, r); loaded {
		return false
	}
	s.m.Store(kr, r)
	return true
}
func (s syncMap) Delete2(k, kr Key) { s.m.Delete(k); s.m.Delete(kr) }
func (s syncMap) Range(fn func(*rec) bool) {
	s.m.Range(func(_, v any) bool { return fn(v.(*rec)) })
}
func (syncMap) concurrent() bool { return true }

// 64 shards of RWMutex + builtin (swiss) map, orcaman/ristretto style.
type shard struct {
	mu sync.RWMutex
	m  map[Key]*rec
	_  [128 - 24 - 8]byte
}

type shardMap struct {
	s    *[64]shard
	seed [6]uint64
}

func newShard64(n int) baseline {
	s := &shardMap{s: new([64]shard), seed: [6]uint64{1, 3, 5, 7, 9, 11}}
	for i := range s.s {
		s.s[i].m = make(map[Key]*rec, 2*n/64+1)
	}
	return s
}
func (s *shardMap) sh(k *Key) *shard { return &s.s[k.hash(&s.seed)>>58] }
func (s *shardMap) Load(k Key) (*rec, bool) {
	sh := s.sh(&k)
	sh.mu.RLock()
	r, ok := sh.m[k]
	sh.mu.RUnlock()
	return r, ok
}
func (s *shardMap) Store2(k, kr Key, r *rec) bool {
	a, b := s.sh(&k), s.sh(&kr)
	a.mu.Lock()
	if _, ok := a.m[k]; ok {
		a.mu.Unlock()
		return false
	}
	a.m[k] = r
	a.mu.Unlock()
	b.mu.Lock()
	b.m[kr] = r
	b.mu.Unlock()
	return true
}
func (s *shardMap) Delete2(k, kr Key) {
	for _, kk := range [2]Key{k, kr} {
		sh := s.sh(&kk)
		sh.mu.Lock()
		delete(sh.m, kk)
		sh.mu.Unlock()
	}
}
func (s *shardMap) Range(fn func(*rec) bool) {
	for i := range s.s {
		sh := &s.s[i]
		sh.mu.RLock()
		for _, r := range sh.m {
			if !fn(r) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}
func (*shardMap) concurrent() bool { return true }

// One global RWMutex + map: the floor.
type globalMap struct {
	mu sync.RWMutex
	m  map[Key]*rec
}

func newGlobalRW(n int) baseline { return &globalMap{m: make(map[Key]*rec, 2*n)} }
func (g *globalMap) Load(k Key) (*rec, bool) {
	g.mu.RLock()
	r, ok := g.m[k]
	g.mu.RUnlock()
	return r, ok
}
func (g *globalMap) Store2(k, kr Key, r *rec) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.m[k]; ok {
		return false
	}
	g.m[k], g.m[kr] = r, r
	return true
}
func (g *globalMap) Delete2(k, kr Key) {
	g.mu.Lock()
	delete(g.m, k)
	delete(g.m, kr)
	g.mu.Unlock()
}
func (g *globalMap) Range(fn func(*rec) bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, r := range g.m {
		if !fn(r) {
			return
		}
	}
}
func (*globalMap) concurrent() bool { return true }

// Plain map, no locks, single goroutine only: the per-core ceiling.
type plainMap struct{ m map[Key]*rec }

func newPlain(n int) baseline              { return plainMap{make(map[Key]*rec, 2*n)} }
func (p plainMap) Load(k Key) (*rec, bool) { r, ok := p.m[k]; return r, ok }
func (p plainMap) Store2(k, kr Key, r *rec) bool {
	if _, ok := p.m[k]; ok {
		return false
	}
	p.m[k], p.m[kr] = r, r
	return true
}
func (p plainMap) Delete2(k, kr Key) { delete(p.m, k); delete(p.m, kr) }
func (p plainMap) Range(fn func(*rec) bool) {
	for _, r := range p.m {
		if !fn(r) {
			return
		}
	}
}
func (plainMap) concurrent() bool { return false }

var baselines = []struct {
	name string
	make func(n int) baseline
}{
	{"xsync", newXsync},
	{"syncmap", newSyncMap},
	{"shard64", newShard64},
	{"globalrw", newGlobalRW},
	{"plainmap", newPlain},
}
