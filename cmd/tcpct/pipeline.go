package main

import (
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

// Replays on several workers (jobs > 1). Output that counts per shard
// (the summary) or shows only the tables at the end (proc, conntrack) is
// made without a reader goroutine when the capture is a
// plain file and every worker can have a core: each worker reads the
// whole file itself and tracks its shard's packets (runReaders). Anything
// else goes through the pipeline below.
//
// The parallel pipeline. One reader goroutine decodes the
// capture and deals its TCP packets to the shards, in batches of batchLen
// consecutive packets; one worker goroutine per shard builds the shard's
// tcpct.Packets and tracks them.
//
// What crosses between cores is kept small, and every part of a batch has
// one writer: the reader writes each packet's rec (48 bytes), its
// addresses and TCP header (an arena of bytes, 28–92 per packet) and its
// shard (order); a worker builds the Packets (in a few KiB of its own that
// stay in its core's cache) and runs them through its tracker. The reader
// used to build the tcpct.Packet and pktInfo (264 bytes) itself, in batch
// slots the other cores had read last: every store of it missed (on the
// 10M-packet benchmark capture Packet.Set took 700 ms at -j 2 against
// 290 ms at -j 1), and the parsing stayed on the reader, the busiest
// goroutine.
//
// The verdicts are handed on in one of two ways:
//
//   - in capture order (engine.run): the worker writes the pktInfos and
//     verdicts into its part of the batch, and a consumer goroutine takes
//     the batches in order, waits for their workers and calls fn for each
//     packet in capture order (order says which shard holds the next one);
//   - per shard (engine.runSharded): the worker calls its shard's fn itself,
//     for the shard's packets in capture order, and nothing goes back: for
//     output that only counts (the summary).

// batchSize is the most packets a batch holds (batchLen, a test knob, may
// make batches shorter).
const batchSize = 2048

// workChunk is how many packets a worker builds and tracks at a time: its
// Packets, pktInfos and verdicts (together about 24 KiB) stay in the
// core's first-level cache.
const workChunk = 64

// rec is a TCP packet (capture.KindTCP) as the reader hands it to a
// worker: what tcpct.Packet.Set and the pktInfo need, with the addresses
// and the TCP header in the shard's arena at off. A rec with slow set
// stands for a packet the reader built itself (shardBatch.slow[off]): an
// ICMP error or a truncated TCP header, rare and with paths of their own.
type rec struct {
	index            int
	time, stamp      int64
	origLen, ipLen   uint32
	l4Len            uint32 // capture.Packet.IPPayloadLen
	off              uint32
	srcPort, dstPort uint16
	tcpLen           uint8 // TCP header bytes in the arena, after the addresses
	v6               bool  // addresses of 16 bytes each, else 4
	badSum           bool  // the checksum was verified (engine.sums) and is wrong
	slow             bool
}

// slowPkt is a packet that the reader built (fillPacket).
type slowPkt struct {
	pkt tcpct.Packet
	pi  pktInfo
}

// shardBatch is one shard's part of a batch. The reader fills recs, arena
// and slow; the worker writes infos and out (in capture order only).
type shardBatch struct {
	recs  []rec
	arena []byte
	slow  []slowPkt
	infos []pktInfo
	out   []tcpct.Verdict
	// Keeps the next shard's slice headers, which its own worker reads,
	// off the line of this shard's.
	_ [64]byte
}

// batch is a run of consecutive TCP packets of the capture, dealt to the
// shards. order[i] is the shard of the batch's i-th packet (capture order
// only).
type batch struct {
	shards []shardBatch
	order  []int32
	n      int // packets in the batch
	left   atomic.Int32
	done   chan struct{}
}

// reset empties b for the reader.
func (b *batch) reset() {
	b.n = 0
	b.order = b.order[:0]
	for w := range b.shards {
		sb := &b.shards[w]
		sb.recs, sb.arena, sb.slow = sb.recs[:0], sb.arena[:0], sb.slow[:0]
	}
}

// add deals the admitted record p (walkResult.admit; tcp as nextPacket
// says) to its shard: the copy of it the worker needs, since p and, for
// input that is not a mapped file, the bytes it points into are reused by
// the next Next.
func (e *engine) add(b *batch, p *capture.Packet, tcp bool, stamp int64, ordered bool) {
	w := shardOfPacket(p, tcp, len(b.shards))
	fast := p.Kind == capture.KindTCP
	sb := &b.shards[w]
	b.n++
	if ordered {
		b.order = append(b.order, int32(w))
	}
	if !fast {
		sb.slow = append(sb.slow, slowPkt{})
		sp := &sb.slow[len(sb.slow)-1]
		fillPacket(&sp.pkt, p, &sp.pi, tcp, stamp, e.sums, e.addrs)
		sb.recs = append(sb.recs, rec{slow: true, off: uint32(len(sb.slow) - 1)})
		return
	}
	r := rec{index: p.Index, time: p.Time, stamp: stamp, origLen: uint32(p.OrigLen), ipLen: uint32(p.IPLen),
		l4Len: uint32(p.IPPayloadLen), off: uint32(len(sb.arena)), srcPort: p.SrcPort, dstPort: p.DstPort}
	if p.Src.Is4() {
		s, d := p.Src.As4(), p.Dst.As4()
		sb.arena = append(append(sb.arena, s[:]...), d[:]...)
	} else {
		s, d := p.Src.As16(), p.Dst.As16()
		sb.arena = append(append(sb.arena, s[:]...), d[:]...)
		r.v6 = true
	}
	// The TCP header is all tcpct.Packet.Set reads of the segment (the
	// payload counts by its length, l4Len): its options, or what was
	// captured of them.
	h := min(len(p.TCP), 60)
	if h >= 20 {
		h = min(h, max(20, int(p.TCP[12]>>4)*4))
	}
	r.tcpLen = uint8(h)
	sb.arena = append(sb.arena, p.TCP[:h]...)
	if e.sums {
		ok, known := p.TCPChecksumOK()
		r.badSum = known && !ok
	}
	sb.recs = append(sb.recs, r)
}

// shardOfPacket is the shard of n that tracks the admitted record p
// (walkResult.admit; tcp as nextPacket says): its connection's, by
// shardOf. An ICMP error (admitted as tcp) goes to the shard of the
// connection it quotes, a truncated header without ports to shard 0.
func shardOfPacket(p *capture.Packet, tcp bool, n int) int {
	switch {
	case p.Kind == capture.KindNonTCP:
		// Rare, so parsed twice.
		if k := tcpct.PacketOf(p).Key; !k.IsZero() {
			return shardOfKey(k, n)
		}
	case tcp || p.HasPorts():
		return shardOf(p, n)
	}
	return 0
}

// build makes the Packet and pktInfo of rec r of sb (shard w, position
// pos): what fillPacket makes of the record the reader saw. cp is the
// worker's scratch record.
func (e *engine) build(sb *shardBatch, r *rec, w, pos int, cp *capture.Packet, pkt *tcpct.Packet, pi *pktInfo) {
	if r.slow {
		sp := &sb.slow[r.off]
		*pkt, *pi = sp.pkt, sp.pi
		pi.shard, pi.pos = w, pos
		return
	}
	a := sb.arena[r.off:]
	if r.v6 {
		cp.Src, cp.Dst = netip.AddrFrom16([16]byte(a[:16])), netip.AddrFrom16([16]byte(a[16:32]))
		a = a[32:]
	} else {
		cp.Src, cp.Dst = netip.AddrFrom4([4]byte(a[:4])), netip.AddrFrom4([4]byte(a[4:8]))
		a = a[8:]
	}
	cp.Kind = capture.KindTCP
	cp.TCP = a[:r.tcpLen:r.tcpLen]
	cp.SrcPort, cp.DstPort = r.srcPort, r.dstPort
	cp.Time, cp.IPPayloadLen, cp.IPLen = r.time, int(r.l4Len), int(r.ipLen)
	pkt.Set(cp)
	if e.addrs {
		pi.src, pi.dst = addrBytes(cp.Src), addrBytes(cp.Dst)
	}
	pi.index, pi.time, pi.stamp = r.index, r.time, r.stamp
	pi.origLen, pi.ipLen = int(r.origLen), int(r.l4Len) // as fillPacket: ipLen is the IP payload's length
	pi.trunc, pi.icmp = false, false
	pi.shard, pi.pos = w, pos
	pi.key = pkt.Key
	pi.badSum = false
	if e.sums {
		pkt.Segment.BadChecksum = r.badSum
		pi.badSum = r.badSum
	}
}

// work is worker w's loop: it tracks its part of every batch from c, in
// chunks of workChunk packets, and calls fn for each (per shard), or
// writes the pktInfos and verdicts into the batch (fn nil: the consumer
// calls fn in capture order). then is called with each batch done.
func (e *engine) work(w int, c <-chan *batch, fn func(*pktInfo, *tcpct.Verdict), then func(*batch)) {
	tr := e.trs[w]
	var cp capture.Packet
	var pkts [workChunk]tcpct.Packet
	var infos [workChunk]pktInfo
	var out [workChunk]tcpct.Verdict
	for b := range c {
		sb := &b.shards[w]
		if fn == nil && len(sb.out) < len(sb.recs) {
			// Sized to the most this shard has had: about batchLen/jobs.
			m := min(batchSize, max(len(sb.recs), 2*len(sb.out)))
			sb.infos, sb.out = make([]pktInfo, m), make([]tcpct.Verdict, m)
		}
		for i := 0; i < len(sb.recs); i += workChunk {
			recs := sb.recs[i:min(i+workChunk, len(sb.recs))]
			is, os := infos[:len(recs)], out[:len(recs)]
			if fn == nil {
				is, os = sb.infos[i:i+len(recs)], sb.out[i:i+len(recs)]
			}
			for j := range recs {
				e.build(sb, &recs[j], w, i+j, &cp, &pkts[j], &is[j])
			}
			tr.TrackBatch(pkts[:len(recs)], os)
			if fn != nil {
				for j := range recs {
					fn(&is[j], &os[j])
				}
			}
		}
		if b.left.Add(-1) == 0 {
			then(b)
		}
	}
}

// newBatches makes the ring of depth batches, on free. Their slices grow
// as they are filled.
func newBatches(shards, depth int, ordered bool) chan *batch {
	free := make(chan *batch, depth)
	for range depth {
		b := &batch{shards: make([]shardBatch, shards), done: make(chan struct{}, 1)}
		if ordered {
			b.order = make([]int32, 0, batchSize)
		}
		free <- b
	}
	return free
}

// read deals the capture's packets to the workers in batches taken from
// free, until the end, a read error or stop. Each batch goes to every
// worker's channel (a worker with nothing in it passes it on at once),
// then to ordered when that is not nil.
func (e *engine) read(r *capture.Reader, at atSpec, free chan *batch, work []chan *batch, ordered chan<- *batch) walkResult {
	var res walkResult
	b := <-free
	b.reset()
	send := func() {
		b.left.Store(int32(len(work)))
		for _, c := range work {
			c <- b
		}
		if ordered != nil {
			ordered <- b
		}
	}
	for !e.stopped.Load() {
		p, tcp, err := nextPacket(r, at, &res, e.progress)
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			break
		}
		e.add(b, p, tcp, res.stamp, ordered != nil)
		if b.n == batchLen {
			send()
			b = <-free
			b.reset()
		}
	}
	if b.n > 0 {
		send()
	}
	return res
}

// runParallel is run with jobs > 1: fn is called for every packet in
// capture order, on this goroutine.
func (e *engine) runParallel(r *capture.Reader, at atSpec, fn func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	n := e.jobs
	depth := 4 * n
	free := newBatches(n, depth, true)
	work := make([]chan *batch, n)
	ordered := make(chan *batch, depth)
	var wg sync.WaitGroup
	for w := range n {
		work[w] = make(chan *batch, depth)
		wg.Go(func() { e.work(w, work[w], nil, func(b *batch) { b.done <- struct{}{} }) })
	}
	// The reader runs in its own goroutine; this one consumes in order.
	resc := make(chan walkResult, 1)
	go func() {
		res := e.read(r, at, free, work, ordered)
		for _, c := range work {
			close(c)
		}
		close(ordered)
		resc <- res
	}()
	next := make([]int, n) // per shard, the position of its next packet in the batch
	for b := range ordered {
		<-b.done
		clear(next)
		for _, w := range b.order {
			sb := &b.shards[w]
			j := next[w]
			next[w]++
			fn(&sb.infos[j], &sb.out[j])
		}
		free <- b
	}
	wg.Wait()
	return <-resc
}

// runSharded is run for output that does not need the packets in capture
// order: fns[w] is called for the packets of shard w (e.trs[w]) in capture
// order, from one goroutine per shard at a time, concurrently with the
// other shards' (pktInfo.shard is w). With one tracker it is run with
// fns[0].
func (e *engine) runSharded(r *capture.Reader, at atSpec, fns []func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	if e.jobs <= 1 {
		return e.run(r, at, fns[0])
	}
	if e.reopen != nil && (workersRead == readAlways || workersRead == readWhenCores && e.jobs <= runtime.GOMAXPROCS(0)) {
		if res, ok := e.runReaders(r, at, fns); ok {
			return res
		}
	}
	n := e.jobs
	depth := 4 * n
	free := newBatches(n, depth, false)
	work := make([]chan *batch, n)
	var wg sync.WaitGroup
	for w := range n {
		work[w] = make(chan *batch, depth)
		wg.Go(func() { e.work(w, work[w], fns[w], func(b *batch) { free <- b }) })
	}
	res := e.read(r, at, free, work, nil)
	for _, c := range work {
		close(c)
	}
	wg.Wait()
	return res
}

// runReaders is runSharded with no reader goroutine: every worker reads
// the whole capture itself, from a Reader of its own (engine.reopen), and
// tracks its shard's packets (trackShard), passing over the others after
// decoding their tuple. Nothing crosses between cores until the summaries
// are added up. Reading and decoding a record is cheap next to handing it
// to another core: on the 10M-packet benchmark capture the pipeline's
// reader spent about 0.9 s of CPU copying records into batches that
// another core then read, where a second pass over the file (read(2) from
// the page cache and decoding) costs about 0.4 s. It is used only when each
// worker can have a core of its own (jobs <= GOMAXPROCS): each pass is paid
// once per worker.
//
// Every worker reads the same records, so their walkResults are the
// same; worker 0's is returned (and only it reports progress). A worker
// whose capture read differently (a file changed while it was read) makes
// the result an error. ok is false when a second Reader cannot be opened:
// the caller runs the pipeline instead, on r, which is unread.
func (e *engine) runReaders(r *capture.Reader, at atSpec, fns []func(pi *pktInfo, v *tcpct.Verdict)) (walkResult, bool) {
	n := e.jobs
	readers := []*capture.Reader{r}
	defer func() {
		for _, rr := range readers[1:] {
			rr.Close()
		}
	}()
	for range n - 1 {
		rr, err := e.reopen()
		if err != nil {
			return walkResult{}, false
		}
		readers = append(readers, rr)
	}
	results := make([]walkResult, n)
	var wg sync.WaitGroup
	for w := 1; w < n; w++ {
		wg.Go(func() { results[w] = e.trackShard(w, readers[w], at, nil, fns[w]) })
	}
	results[0] = e.trackShard(0, r, at, e.progress, fns[0])
	wg.Wait()
	res := results[0]
	for w := 1; w < n && res.err == nil; w++ {
		o := &results[w]
		switch {
		case o.err != nil:
			res.err = o.err
		case o.records != res.records || o.tcp != res.tcp || o.last != res.last:
			res.err = fmt.Errorf("the capture changed while it was read: worker %d read %d records, worker 0 %d", w, o.records, res.records)
		}
	}
	return res, true
}
