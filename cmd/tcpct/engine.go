package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// pktInfo is what the output stages need of a record besides its verdict.
type pktInfo struct {
	index   int
	time    int64
	origLen int
	ipLen   int
	shard   int // the tracker (engine.trs index) that tracked it
	pos     int // its place in that shard's list of the batch (batch.idx, batch.out)
	// badSum: the TCP checksum was verified (engine.sums) and is wrong.
	badSum bool
}

// engine runs a capture through one tracker (jobs == 1) or through one
// tracker per worker, connections sharded by a hash of their tuple that
// is the same for both directions (jobs > 1).
//
// Sharding keeps every connection's packets on one worker, in capture
// order, and each worker's tracker sees its packets with the capture
// clock, so every verdict is the one a single tracker gives: the output
// is identical, in capture order. The table limit (the max knob) is split
// evenly across the shards; only when the table fills can which packets
// are dropped differ from -j 1.
type engine struct {
	trs  []*tcpct.Tracker
	jobs int
	// sums: verify TCP checksums (pktInfo.badSum), for the checksum knob
	// or for the summary's count. It costs a pass over every payload.
	sums bool
	// progress, when set, is called every few thousand records with the
	// byte offset reached.
	progress func(offset int64)
}

func newEngine(tf *trackerFlags, jobs int) (*engine, error) {
	if jobs <= 1 {
		tr, err := tf.tracker()
		if err != nil {
			return nil, err
		}
		return &engine{trs: []*tcpct.Tracker{tr}, jobs: 1, sums: tr.Machine().Checksums()}, nil
	}
	limit, err := tf.limit()
	if err != nil {
		return nil, err
	}
	// The workers' tables hold limit entries together: limit/jobs each,
	// one more for the first limit%jobs. A table needs one entry at least.
	jobs = int(min(int64(jobs), limit))
	e := &engine{jobs: jobs}
	for i := 0; i < jobs; i++ {
		per := limit / int64(jobs)
		if int64(i) < limit%int64(jobs) {
			per++
		}
		tr, err := tf.trackerWith("max=" + strconv.FormatInt(per, 10))
		if err != nil {
			return nil, err
		}
		e.trs = append(e.trs, tr)
	}
	e.sums = e.trs[0].Machine().Checksums()
	return e, nil
}

// shardMax returns each shard's table size, in engine.trs order.
func (e *engine) shardMax() []int {
	n := make([]int, len(e.trs))
	for i, tr := range e.trs {
		n[i] = tr.Max()
	}
	return n
}

// profile returns the trackers' profile.
func (e *engine) profile() *fsm.Profile { return e.trs[0].Profile() }

// stats sums the trackers' counters.
func (e *engine) stats() tcpct.Stats {
	var s tcpct.Stats
	for _, tr := range e.trs {
		x := tr.Stats()
		s.Packets += x.Packets
		s.Invalid += x.Invalid
		s.Ignored += x.Ignored
		s.Dropped += x.Dropped
		t, u := &s.Table, &x.Table
		t.Entries += u.Entries
		t.Found += u.Found
		t.Insert += u.Insert
		t.InsertFailed += u.InsertFailed
		t.Drop += u.Drop
		t.EarlyDrop += u.EarlyDrop
		t.Invalid += u.Invalid
		t.SearchRestart += u.SearchRestart
		t.ClashResolve += u.ClashResolve
		t.Expired += u.Expired
		t.Killed += u.Killed
		t.EventsLost += u.EventsLost
	}
	return s
}

// flush reclaims every entry expired at now, in every shard.
func (e *engine) flush(now int64) {
	t := time.Unix(0, now)
	for _, tr := range e.trs {
		tr.Sweep(t, 0)
	}
}

// rangeAll calls fn for every live entry of every shard at now.
func (e *engine) rangeAll(now int64, fn func(*tcpct.Entry) bool) {
	t := time.Unix(0, now)
	for _, tr := range e.trs {
		stop := false
		tr.Range(t, func(en *tcpct.Entry) bool {
			if !fn(en) {
				stop = true
				return false
			}
			return true
		})
		if stop {
			return
		}
	}
}

// entries returns every shard's live entries at now, sorted by original
// tuple.
func (e *engine) entries(now int64) []tcpct.Entry {
	n := 0
	for _, tr := range e.trs {
		n += tr.Len()
	}
	out := make([]tcpct.Entry, 0, n)
	e.rangeAll(now, func(en *tcpct.Entry) bool { out = append(out, *en); return true })
	sort.Slice(out, func(i, j int) bool { return tcpct.KeyLess(out[i].Key, out[j].Key) })
	return out
}

// lookup finds the live entry of a tuple at now, whichever shard holds it.
func (e *engine) lookup(k table.Key, now int64) (tcpct.Entry, bool) {
	t := time.Unix(0, now)
	for _, tr := range e.trs {
		if en, _, ok := tr.Lookup(netipSrc(k), netipDst(k), t); ok {
			return en, true
		}
	}
	return tcpct.Entry{}, false
}

// walkResult is what reading the capture found: record counts, the time
// of the first and last processed TCP packet (0 if none) and the read
// error that ended it early, if any.
type walkResult struct {
	records, tcp, skipped int
	first, last           int64
	// held counts the packets whose timestamp was earlier than the last
	// tracked packet's: they were tracked at that time (see admit).
	held int
	// afterAt counts the records stamped after an absolute -at: read, not
	// processed.
	afterAt int
	// skips counts the records that are not TCP packets, by reason
	// (capture.Packet.Reason: "not TCP", "ARP", "IPv4 fragment", ...).
	skips map[string]int
	err   error
}

func (res *walkResult) skip(reason string) {
	res.skipped++
	if res.skips == nil {
		res.skips = map[string]int{}
	}
	if reason == "" {
		reason = "not a TCP packet"
	}
	res.skips[reason]++
}

// classify says what to do with a record: track it (tcp), count it as an
// INVALID truncated TCP packet (trunc), or skip it. A broken IP header is
// skipped: the kernel's IP layer drops it before conntrack sees it
// (capture.Packet.TrackedInvalid).
func classify(p *capture.Packet) (tcp, trunc bool) {
	switch {
	case p.Kind == capture.KindTCP:
		return true, false
	case p.TrackedInvalid():
		return false, true
	}
	return false, false
}

// admit classifies a record, counts it as skipped or as a processed TCP
// packet, and says how to track it (both false: skip it).
func (res *walkResult) admit(p *capture.Packet) (tcp, trunc bool) {
	tcp, trunc = classify(p)
	if !tcp && !trunc {
		res.skip(p.Reason)
		return false, false
	}
	if res.tcp == 0 {
		res.first = p.Time
	} else if p.Time < res.last {
		// The tracker's clock, like the kernel's, never goes back: a
		// packet stamped before the one tracked last (captures merged
		// from several interfaces, a clock step, a corrupt timestamp)
		// is tracked at that packet's time. Otherwise an entry reclaimed
		// by a sweep at the later time would be found again or not
		// depending on how far the sweep had got, and on which worker
		// of -j N swept.
		p.Time = res.last
		res.held++
	}
	res.tcp++
	res.last = p.Time
	return tcp, trunc
}

// item is one admitted TCP packet, parsed and ready to track: the reader
// fills items, the trackers consume them.
type item struct {
	key   table.Key
	seg   fsm.Segment
	info  pktInfo
	trunc bool // a TCP header too short to hold even the ports: INVALID, no tuple
}

// itemOf parses an admitted record (see walkResult.admit) into *it. A
// truncated TCP header whose ports were captured keeps its tuple and goes
// the packet path with a malformed segment (tcpct.SegmentOf): the kernel
// finds the entry from the ports, then its TCP tracker calls the packet
// INVALID and leaves the entry alone, so the verdict names the entry's
// state. Only a header without ports has no tuple (it.trunc).
//
// With sums the TCP checksum is verified: the segment's BadChecksum (which
// the tracker acts on only with the checksum knob on) and info.badSum.
func itemOf(it *item, p *capture.Packet, tcp, sums bool) {
	it.info = pktInfo{index: p.Index, time: p.Time, origLen: p.OrigLen, ipLen: p.IPPayloadLen}
	it.trunc = !tcp && !p.HasPorts()
	if !it.trunc {
		it.key = tcpct.KeyOf(p.Src, p.Dst, p.SrcPort, p.DstPort)
		it.seg = tcpct.SegmentOf(p)
		if sums {
			ok, known := p.TCPChecksumOK()
			it.seg.BadChecksum = known && !ok
			it.info.badSum = it.seg.BadChecksum
		}
	}
}

// lookahead is how many packets a tracker prefetches before tracking them:
// enough for their table misses to overlap, few enough that the batch
// stays in the CPU's out-of-order window.
const lookahead = 16

// trackItems tracks the items named by idx, in that order, into out
// (out[j] is the verdict of items[idx[j]]). It first prefetches the table
// memory of lookahead packets at a time, so that their cache misses are
// paid together, and keeps the tuple hashes it computed for the lookups
// (tcpct.Tracker.PrefetchHashes, TrackHashed).
func trackItems(tr *tcpct.Tracker, items []item, idx []int32, out []tcpct.Verdict) {
	var keys [lookahead]table.Key
	var hashes [lookahead]uint64
	for len(idx) > 0 {
		n := min(len(idx), lookahead)
		for j, i := range idx[:n] {
			keys[j] = items[i].key // zero for a truncated header: harmless
		}
		tr.PrefetchHashes(keys[:n], hashes[:n])
		for j, i := range idx[:n] {
			trackItem(tr, &items[i], hashes[j], &out[j])
		}
		idx, out = idx[n:], out[n:]
	}
}

// trackItem tracks one item into *v: its TCP segment (hash is its tuple's
// hash from PrefetchHashes, or 0), or an INVALID verdict for a TCP header
// too short to parse.
func trackItem(tr *tcpct.Tracker, it *item, hash uint64, v *tcpct.Verdict) {
	if it.trunc {
		*v = tr.Truncated(time.Unix(0, it.info.time))
		return
	}
	tr.TrackHashed(v, &it.key, hash, &it.seg, it.info.time)
}

const progressEvery = 1 << 14

// nextPacket reads records until one is to be tracked and returns it, with
// tcp false for a truncated TCP header (an INVALID packet without a
// tuple). Every record read is counted in res, records later than an
// absolute -at are passed over, the others not tracked are counted as
// skipped (walkResult.admit), and progress, when set, is called every
// progressEvery records. err is the read error, io.EOF at the end.
func nextPacket(r *capture.Reader, at atSpec, res *walkResult, progress func(offset int64)) (p *capture.Packet, tcp bool, err error) {
	for {
		if p, err = r.Next(); err != nil {
			return nil, false, err
		}
		res.records++
		if progress != nil && res.records%progressEvery == 0 {
			progress(r.InputOffset())
		}
		if at.excludes(p.Time) {
			res.afterAt++
			continue
		}
		if tcp, trunc := res.admit(p); tcp || trunc {
			return p, tcp, nil
		}
	}
}

// run feeds every record to the trackers and calls fn for each TCP packet
// in capture order with its verdict. Packets later than an absolute -at
// are read but not processed.
//
// With one tracker it reads lookahead packets, tracks them (trackItems),
// and hands them to fn before reading on; a read error ends the run after
// the packets before it are handed on.
func (e *engine) run(r *capture.Reader, at atSpec, fn func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	if e.jobs > 1 {
		return e.runParallel(r, at, fn)
	}
	tr := e.trs[0]
	var res walkResult
	var items [lookahead]item
	var out [lookahead]tcpct.Verdict
	var order [lookahead]int32
	for i := range order {
		order[i] = int32(i)
	}
	for {
		n := 0
		var err error
		for n < lookahead {
			var p *capture.Packet
			var tcp bool
			if p, tcp, err = nextPacket(r, at, &res, e.progress); err != nil {
				break
			}
			itemOf(&items[n], p, tcp, e.sums)
			n++
		}
		trackItems(tr, items[:n], order[:n], out[:n]) // order is the identity
		for i := range n {
			fn(&items[i].info, &out[i])
		}
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			return res
		}
	}
}

// batch is a run of consecutive TCP packets. The reader fills items and,
// per shard, the indexes of that shard's items; each worker tracks its
// items into out; the consumer, which takes batches in capture order,
// waits for done and hands the verdicts to fn in order.
type batch struct {
	items []item
	out   [][]tcpct.Verdict
	idx   [][]int32
	left  atomic.Int32
	done  chan struct{}
}

const batchSize = 2048

// shardOf maps a packet's tuple to a shard, the same for both directions:
// the XOR of the two addresses and of the two ports is symmetric.
func shardOf(p *capture.Packet, n int) int {
	var h uint64
	if p.Src.Is4() {
		s, d := p.Src.As4(), p.Dst.As4()
		h = uint64(binary.LittleEndian.Uint32(s[:]) ^ binary.LittleEndian.Uint32(d[:]))
	} else {
		s, d := p.Src.As16(), p.Dst.As16()
		h = binary.LittleEndian.Uint64(s[:8]) ^ binary.LittleEndian.Uint64(d[:8]) ^
			binary.LittleEndian.Uint64(s[8:]) ^ binary.LittleEndian.Uint64(d[8:])
	}
	h ^= uint64(p.SrcPort^p.DstPort) << 40
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return int((h >> 32) * uint64(n) >> 32)
}

func (e *engine) runParallel(r *capture.Reader, at atSpec, fn func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	n := e.jobs
	depth := 4 * n
	free := make(chan *batch, depth)
	for i := 0; i < depth; i++ {
		b := &batch{items: make([]item, 0, batchSize), out: make([][]tcpct.Verdict, n),
			idx: make([][]int32, n), done: make(chan struct{}, 1)}
		for w := range b.idx {
			b.idx[w] = make([]int32, 0, batchSize)
			b.out[w] = make([]tcpct.Verdict, batchSize)
		}
		free <- b
	}
	work := make([]chan *batch, n)
	ordered := make(chan *batch, depth)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		work[w] = make(chan *batch, depth)
		wg.Add(1)
		go func(w int, tr *tcpct.Tracker) {
			defer wg.Done()
			for b := range work[w] {
				trackItems(tr, b.items, b.idx[w], b.out[w])
				if b.left.Add(-1) == 0 {
					b.done <- struct{}{}
				}
			}
		}(w, e.trs[w])
	}

	// The reader runs in its own goroutine; this one consumes in order.
	resc := make(chan walkResult, 1)
	go func() {
		var res walkResult
		defer func() {
			for _, c := range work {
				close(c)
			}
			close(ordered)
			resc <- res
		}()
		b := <-free
		send := func() {
			b.left.Store(int32(n))
			for w := 0; w < n; w++ {
				work[w] <- b
			}
			ordered <- b
		}
		for {
			p, tcp, err := nextPacket(r, at, &res, e.progress)
			if err != nil {
				if err != io.EOF {
					res.err = err
				}
				break
			}
			i := len(b.items)
			b.items = b.items[:i+1]
			it := &b.items[i]
			itemOf(it, p, tcp, e.sums)
			w := 0
			if !it.trunc {
				w = shardOf(p, n)
			}
			it.info.shard, it.info.pos = w, len(b.idx[w])
			b.idx[w] = append(b.idx[w], int32(i))
			if len(b.items) == batchSize {
				send()
				b = <-free
				b.items = b.items[:0]
				for w := range b.idx {
					b.idx[w] = b.idx[w][:0]
				}
			}
		}
		if len(b.items) > 0 {
			send()
		}
	}()
	for b := range ordered {
		<-b.done
		for i := range b.items {
			pi := &b.items[i].info
			fn(pi, &b.out[pi.shard][pi.pos])
		}
		free <- b
	}
	wg.Wait()
	return <-resc
}

// printSkips writes the skipped records by reason, most frequent first.
func printSkips(w io.Writer, res *walkResult) {
	keys := make([]string, 0, len(res.skips))
	for k := range res.skips {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if res.skips[keys[i]] != res.skips[keys[j]] {
			return res.skips[keys[i]] > res.skips[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %10d  %s\n", res.skips[k], k)
	}
}
