package main

import (
	"sort"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

// replayShards is the summary's replay on several trackers: every worker
// counts its shard's packets into a summary of its own (engine.runSharded),
// so that no verdict leaves the core that made it, and the shards' counts
// are added into s at the end. s is new, its connCounts empty: each part
// sizes its own, for its shard only.
//
// The busiest connections come out as one summary counting every shard
// in capture order would list them: each shard's list is the first topN of
// its connections in their fold order sorted stably by busier, and busier
// orders any two connections of different shards (it ties only on the
// same original tuple, which one shard holds), so the first topN of all
// the shards' lists sorted stably by busier are the same.
func (s *summary) replayShards(r *capture.Reader, eng *engine, at atSpec) walkResult {
	sizes := eng.shardMax()
	parts := make([]*summary, len(sizes))
	fns := make([]func(*pktInfo, *tcpct.Verdict), len(sizes))
	for w := range parts {
		part := &summary{byState: make([]int, len(s.byState))}
		// Slots for shard w only: the part never sees another shard's
		// packets.
		own := make([]int, len(sizes))
		own[w] = sizes[w]
		part.conns.init(own)
		parts[w], fns[w] = part, part.add
	}
	res := eng.runSharded(r, at, fns)
	for _, part := range parts {
		for i, n := range part.byCT {
			s.byCT[i] += n
		}
		for i, n := range part.byState {
			s.byState[i] += n
		}
		for i := range part.invalid {
			s.invalid[i] += part.invalid[i]
			s.ignored[i] += part.ignored[i]
		}
		for i, n := range part.icmp {
			s.icmp[i] += n
		}
		s.dropped += part.dropped
		s.badSums += part.badSums
		s.conns.best = append(s.conns.best, part.conns.top()...)
	}
	sort.SliceStable(s.conns.best, func(i, j int) bool { return busier(&s.conns.best[i], &s.conns.best[j]) })
	s.conns.best = s.conns.best[:min(len(s.conns.best), topN)]
	return res
}
