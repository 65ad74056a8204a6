package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// pktInfo is what the output stages need of a record besides its verdict.
type pktInfo struct {
	// key is the packet's tuple as seen (not the connection's original
	// one); a truncated TCP header has addresses and zero ports.
	key table.Key
	// src and dst are the packet's addresses (IPv4 in the first four
	// bytes, as family in key says), filled when engine.addrs: jsonl
	// prints them, and building them from key cost more than copying
	// them. Plain bytes, not netip.Addr,
	// whose pointer would make every batch of items a GC-scanned object
	// with write barriers on each store.
	src, dst [16]byte
	index    int
	// time is the time the packet was tracked at: its capture timestamp,
	// or the time of the packet tracked before it when its stamp is
	// earlier (walkResult.admit); stamp is the timestamp as recorded.
	time, stamp int64
	trunc       bool // a TCP header too short to hold even the ports: INVALID, no tuple
	origLen     int
	ipLen       int
	shard       int // the tracker (engine.trs index) that tracked it
	pos         int // its place in that shard's list of the batch (batch.idx, batch.out)
	// badSum: the TCP checksum was verified (engine.sums) and is wrong.
	badSum bool
	// icmp: an ICMP or ICMPv6 error the tracker judged (tcpct.IsICMP);
	// key then holds its own addresses and zero ports.
	icmp bool
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
	// addrs: fill pktInfo.src and dst, which only jsonl prints (copying
	// them was about 2 % of a summary replay's profile).
	addrs bool
	// progress, when set, is called every few thousand records with the
	// byte offset reached.
	progress func(offset int64)
	// reopen, when set, opens the capture again from its start, with
	// the same decoding, for a worker that reads it itself (runReaders):
	// a plain file, not stdin and not compressed.
	reopen func() (*capture.Reader, error)
	// stopped is set by stop: the output failed, so run reads no more.
	stopped atomic.Bool
}

// stop makes run end after the packets it has read: the output cannot be
// written (a closed pipe, a full disk), so there is no point in reading
// on. Safe to call from run's fn.
func (e *engine) stop() { e.stopped.Store(true) }

func newEngine(tf *trackerFlags, jobs int) (*engine, error) {
	if jobs <= 1 {
		tr, err := tf.tracker()
		if err != nil {
			return nil, err
		}
		return &engine{trs: []*tcpct.Tracker{tr}, jobs: 1, sums: checksums(tr)}, nil
	}
	limit, err := tf.limit()
	if err != nil {
		return nil, err
	}
	// The workers' tables hold limit entries together: limit/jobs each,
	// one more for the first limit%jobs. A table needs one entry at least.
	// Without a limit (max=0) each worker's table has none either.
	if limit > 0 {
		jobs = int(min(int64(jobs), limit))
	}
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
	e.sums = checksums(e.trs[0])
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
		tr.Expire(t)
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
	// icmp counts the ICMP errors tracked (tcpct.IsICMP), also in tcp.
	icmp        int
	first, last int64
	// held counts the packets whose timestamp was earlier than the last
	// tracked packet's: they were tracked at that time (see admit).
	held int
	// afterAt counts the records stamped after an absolute -at: read, not
	// processed.
	afterAt int
	// stamp is the capture timestamp of the record admitted last, before
	// admit held it back to the clock.
	stamp int64
	// links counts the records skipped because tcpct does not decode
	// their link type, by link type.
	links map[capture.LinkType]int
	// start is the first record's timestamp; tcpAfterAt counts TCP
	// records after an absolute -at (read, not processed), the first of
	// them stamped firstAfterAt.
	start, firstAfterAt int64
	tcpAfterAt          int
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

// classify says what to do with a record: track it (tcp: a TCP packet,
// or an ICMP error about one, tcpct.IsICMP), count it as an INVALID
// truncated TCP packet (trunc), or skip it. A broken IP header is
// skipped: the kernel's IP layer drops it before conntrack sees it
// (capture.Packet.TrackedInvalid).
func classify(p *capture.Packet) (tcp, trunc bool) {
	switch {
	case p.Kind == capture.KindTCP:
		return true, false
	case p.TrackedInvalid():
		return false, true
	case p.Kind == capture.KindNonTCP && tcpct.IsICMP(p):
		return true, false
	}
	return false, false
}

// admit classifies a record, counts it as skipped or as a processed TCP
// packet, and says how to track it (both false: skip it).
func (res *walkResult) admit(p *capture.Packet) (tcp, trunc bool) {
	tcp, trunc = classify(p)
	if !tcp && !trunc {
		res.skip(p.Reason)
		if !p.Link.Supported() {
			if res.links == nil {
				res.links = map[capture.LinkType]int{}
			}
			res.links[p.Link]++
		}
		return false, false
	}
	res.stamp = p.Time
	if res.tcp == 0 {
		res.first = p.Time
	} else if p.Time < res.last {
		// The tracker's clock, like the kernel's, never goes back: a
		// packet stamped before the one tracked last (captures merged
		// from several interfaces, a clock step, a corrupt timestamp)
		// is tracked at that packet's time. Otherwise an entry expired
		// and reclaimed at the later time would be found again only if
		// it had not been reclaimed yet.
		p.Time = res.last
		res.held++
	}
	res.tcp++
	if p.Kind == capture.KindNonTCP {
		res.icmp++
	}
	res.last = p.Time
	return tcp, trunc
}

// packetOf makes the packet to track of an admitted record (see
// walkResult.admit) and fills its output information; stamp is its
// timestamp as recorded (walkResult.stamp). A truncated TCP header whose
// ports were captured keeps its tuple and goes the packet path with a
// malformed segment (tcpct.PacketOf): the kernel finds the entry from the
// ports, then its TCP tracker calls the packet INVALID and leaves the
// entry alone, so the verdict names the entry's state. Only a header
// without ports has no tuple (pi.trunc).
//
// With sums the TCP checksum is verified: the segment's BadChecksum (which
// the tracker acts on only with the checksum knob on) and pi.badSum.
func packetOf(p *capture.Packet, pi *pktInfo, tcp bool, stamp int64, sums bool) tcpct.Packet {
	var pkt tcpct.Packet
	fillPacket(&pkt, p, pi, tcp, stamp, sums, true)
	return pkt
}

// fillPacket is packetOf writing the packet to *pkt: the replay loops
// fill their batch in place, field by field, rather than copy a Packet
// and a pktInfo (together about 280 bytes) through temporaries for every
// packet. Without addrs pi.src and pi.dst are left as they were.
func fillPacket(pkt *tcpct.Packet, p *capture.Packet, pi *pktInfo, tcp bool, stamp int64, sums, addrs bool) {
	if addrs {
		pi.src, pi.dst = addrBytes(p.Src), addrBytes(p.Dst)
	}
	pi.index, pi.time, pi.stamp = p.Index, p.Time, stamp
	pi.origLen, pi.ipLen = p.OrigLen, p.IPPayloadLen
	pi.trunc = !tcp && !p.HasPorts()
	pi.shard, pi.pos, pi.badSum, pi.icmp = 0, 0, false, false
	pkt.Set(p)
	if pkt.ICMP.Family != 0 {
		// An ICMP error: its Key is the quoted connection's, to look up;
		// the record shows the error's own addresses.
		pi.icmp = true
		pi.key = tcpct.KeyOf(netip.AddrPortFrom(p.Src, 0), netip.AddrPortFrom(p.Dst, 0))
		return
	}
	if pi.trunc {
		// No ports, but the addresses are known: the tracker never sees
		// this key (a header without ports is INVALID before any lookup).
		pi.key = tcpct.KeyOf(netip.AddrPortFrom(p.Src, 0), netip.AddrPortFrom(p.Dst, 0))
		return
	}
	pi.key = pkt.Key
	if sums {
		ok, known := p.TCPChecksumOK()
		pkt.Segment.BadChecksum = known && !ok
		pi.badSum = pkt.Segment.BadChecksum
	}
}

// lookahead is how many packets one tracker reads before tracking them
// with one TrackBatch call, which prefetches their table memory.
const lookahead = 16

// Knobs of the engine that no output may depend on; tests vary them
// (TestReplayIsAFunctionOfTheCapture). readAhead (at most lookahead) is
// how many packets one tracker reads before tracking them, batchLen (at
// most batchSize) how many the parallel reader hands on at once, and
// tableSeed the trackers' hash seed (0: random, as in use), and
// workersRead whether the workers of a per-shard replay read the capture
// themselves (runReaders) or are fed by the pipeline's reader.
var (
	readAhead   = lookahead
	batchLen    = batchSize
	tableSeed   uint64
	workersRead = readWhenCores
)

// Values of workersRead.
const (
	readWhenCores = iota // when the capture can be reopened and each worker can have a core
	readAlways           // whenever the capture can be reopened
	readNever            // never: the pipeline
)

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
		if res.records == 1 {
			res.start = p.Time
		}
		if progress != nil && res.records%progressEvery == 0 {
			progress(r.InputOffset())
		}
		if at.excludes(p.Time) {
			res.afterAt++
			if tcp, trunc := classify(p); tcp || trunc {
				if res.tcpAfterAt == 0 {
					res.firstAfterAt = p.Time
				}
				res.tcpAfterAt++
			}
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
func (e *engine) run(r *capture.Reader, at atSpec, fn func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	if e.jobs > 1 {
		return e.runParallel(r, at, fn)
	}
	return e.trackShard(0, r, at, e.progress, fn)
}

// trackShard reads every record of r and tracks the TCP packets of shard
// w (every packet with one tracker) on tracker w, calling fn for each in
// capture order with its verdict: the replay on one core, and each
// worker's when every worker reads the capture itself (runReaders).
// Records of other shards are read and counted in the result like the
// shard's own, so that every worker's walkResult is the whole capture's.
//
// It reads lookahead packets of the shard, tracks them (TrackBatch) and
// hands them to fn before reading on; a read error ends the run after
// the packets before it are handed on.
func (e *engine) trackShard(w int, r *capture.Reader, at atSpec, progress func(int64), fn func(pi *pktInfo, v *tcpct.Verdict)) walkResult {
	tr := e.trs[w]
	shards := e.jobs
	var res walkResult
	var pkts [lookahead]tcpct.Packet
	var infos [lookahead]pktInfo
	var out [lookahead]tcpct.Verdict
	for {
		n := 0
		var err error
		for n < readAhead {
			var p *capture.Packet
			var tcp bool
			if p, tcp, err = nextPacket(r, at, &res, progress); err != nil {
				break
			}
			if shards > 1 && shardOfPacket(p, tcp, shards) != w {
				continue
			}
			fillPacket(&pkts[n], p, &infos[n], tcp, res.stamp, e.sums, e.addrs)
			infos[n].shard = w
			n++
		}
		tr.TrackBatch(pkts[:n], out[:n])
		for i := range n {
			fn(&infos[i], &out[i])
		}
		if err == nil && e.stopped.Load() {
			return res
		}
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			return res
		}
	}
}

// shardOf maps a packet's tuple to a shard, the same for both directions:
// the XOR of the two addresses and of the two ports is symmetric.
func shardOf(p *capture.Packet, n int) int {
	return shardOfTuple(p.Src, p.Dst, p.SrcPort, p.DstPort, n)
}

// shardOfKey is shardOf for a tuple given as a Key: an ICMP error goes to
// the shard of the connection it quotes (tcpct.Packet.Key).
func shardOfKey(k table.Key, n int) int {
	return shardOfTuple(k.Src(), k.Dst(), k.SrcPort(), k.DstPort(), n)
}

func shardOfTuple(src, dst netip.Addr, sport, dport uint16, n int) int {
	var h uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		h = uint64(binary.LittleEndian.Uint32(s[:]) ^ binary.LittleEndian.Uint32(d[:]))
	} else {
		s, d := src.As16(), dst.As16()
		h = binary.LittleEndian.Uint64(s[:8]) ^ binary.LittleEndian.Uint64(d[:8]) ^
			binary.LittleEndian.Uint64(s[8:]) ^ binary.LittleEndian.Uint64(d[8:])
	}
	h ^= uint64(sport^dport) << 40
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return int((h >> 32) * uint64(n) >> 32)
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

// netipSrc and netipDst are a tuple's ends as the Tracker's lookups take
// them.
func netipSrc(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Src(), k.SrcPort()) }
func netipDst(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Dst(), k.DstPort()) }

// addrBytes is an address as pktInfo keeps it: IPv4 in the first four
// bytes.
func addrBytes(a netip.Addr) (b [16]byte) {
	if a.Is4() {
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return a.As16()
}

// checksums reports whether tr verifies TCP checksums (the checksum knob),
// so that the reader computes them for it.
func checksums(tr *tcpct.Tracker) bool {
	v, _ := tr.Config().Knob("checksum")
	return v != 0
}
