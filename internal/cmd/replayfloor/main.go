//go:build linux

// Command replayfloor measures how fast one core of this machine can go
// through a capture when it does only the part of a replay that no
// tracker can avoid, so that `tcpct replay`'s throughput can be read
// against it. scripts/bench-replay.sh runs it on the benchmark capture
// after timing the replays, in the same spell of the machine.
//
//	go run ./internal/cmd/replayfloor $DIR/load-1000000-100000-120us.pcap   # DIR of scripts/bench-capture.sh
//
// It times three levels, each a whole pass over the capture on one
// goroutine (run it with GOMAXPROCS=1), best of -n passes:
//
//   - read: capture.Reader.Next over every record, which locates the
//     link, IP and TCP headers (the replay's reader);
//   - parse: that, plus the tuple (tcpct.KeyOf) and the TCP header
//     (tcpct.SegmentOf) of every TCP packet, as the replay builds them;
//   - touch: that, plus the memory a hash-table tracker must reach for each
//     packet: a 64-byte index bucket, then the 128-byte record the bucket
//     names, written. The arrays are the sizes of tcpct's table at its
//     default max (262,144 records), on transparent huge pages, and each
//     batch of 16 packets loads its 16 buckets together and then its 16
//     records together, so that the misses overlap, as well as any
//     tracker could overlap them. There is no key comparison, no lock, no
//     state machine, no expiry and no counting.
//
// It also measures the latency of one dependent load in a 64 MiB region,
// the cost of a cache miss that nothing overlaps.
//
// The touch level is a floor, not a model: a tracker does everything it
// does and more. What a replay may spend on its own work at a given rate
// is that rate's time per packet minus the floor's.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

// Table geometry of tcpct's tracker at the default max (table package
// doc): 128-byte records, and an index of 64-byte buckets that is at most
// 80 % full with two slots per connection, seven slots per bucket.
const (
	records  = 262144
	buckets  = 131072 // a power of two >= 2*records/0.8/7
	lineSize = 64
	recSize  = 128
	batch    = 16
)

func main() {
	passes := flag.Int("n", 3, "passes per level; the best is reported")
	rate := flag.Float64("rate", 5e6, "packets/s to compute the time left for a tracker at")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: replayfloor [-n passes] [-rate pps] FILE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *passes < 1 || *rate <= 0 {
		flag.Usage()
		os.Exit(1)
	}
	if err := run(os.Stdout, flag.Arg(0), *passes, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "replayfloor:", err)
		os.Exit(2)
	}
}

// levels are the passes, in order; each does what the one before does
// and more.
var levels = []string{"read", "parse", "touch"}

// result is one pass over the capture.
type result struct {
	records, tcp int
	// parsed and touched count the TCP packets the parse and touch steps
	// went through.
	parsed, touched int
	// sum folds in what the pass computed, so that no step is optimised
	// away.
	sum     uint64
	elapsed time.Duration
}

func run(w io.Writer, path string, passes int, rate float64) error {
	mem, err := newMemory()
	if err != nil {
		return err
	}
	best := make([]result, len(levels))
	for i, level := range levels {
		for range passes {
			r, err := pass(path, level, mem)
			if err != nil {
				return err
			}
			if best[i].elapsed == 0 || r.elapsed < best[i].elapsed {
				best[i] = r
			}
		}
	}
	fmt.Fprintf(w, "capture %s: %d records, %d TCP packets\n", path, best[0].records, best[0].tcp)
	fmt.Fprintf(w, "%-6s %9s %10s %12s\n", "level", "seconds", "ns/packet", "packets/s")
	for i, r := range best {
		ns := float64(r.elapsed.Nanoseconds()) / float64(max(r.records, 1))
		fmt.Fprintf(w, "%-6s %9.3f %10.1f %11.2fM\n", levels[i], r.elapsed.Seconds(), ns, float64(r.records)/r.elapsed.Seconds()/1e6)
	}
	touch := best[len(best)-1]
	floorNs := float64(touch.elapsed.Nanoseconds()) / float64(max(touch.records, 1))
	budget := 1e9 / rate
	fmt.Fprintf(w, "latency of one dependent load in 64 MiB: %.0f ns\n", latency(64<<20))
	fmt.Fprintf(w, "at %.2fM packets/s a packet has %.0f ns; above the touch floor, %.0f ns are left for the tracker's own work\n",
		rate/1e6, budget, budget-floorNs)
	return nil
}

// memory is the touch level's index and record arrays.
type memory struct {
	buckets []uint64 // buckets*lineSize/8 words; word 0 of a bucket names a record
	records []uint64 // records*recSize/8 words
}

func newMemory() (*memory, error) {
	b, err := hugeWords(buckets * lineSize / 8)
	if err != nil {
		return nil, err
	}
	r, err := hugeWords(records * recSize / 8)
	if err != nil {
		return nil, err
	}
	// Each bucket names a random record, so that a connection's packets
	// meet the same two lines every time, and different connections
	// scattered ones.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < buckets; i++ {
		b[i*lineSize/8] = uint64(rng.IntN(records))
	}
	return &memory{buckets: b, records: r}, nil
}

// hugeWords maps n zeroed words, asking for transparent huge pages as
// tcpct's table does for its arrays.
func hugeWords(n int) ([]uint64, error) {
	const huge = 2 << 20
	size := (n*8 + huge - 1) &^ (huge - 1)
	b, err := syscall.Mmap(-1, 0, size+huge, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes: %v", size, err)
	}
	off := (huge - int(uintptr(unsafe.Pointer(&b[0])))%huge) % huge
	b = b[off : off+size]
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE; a hint, its failure only costs speed
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0 // populate now, not during the first pass
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), nil
}

// pass reads the capture once at the given level.
func pass(path, level string, mem *memory) (result, error) {
	r, err := capture.Open(path)
	if err != nil {
		return result{}, err
	}
	defer r.Close()
	var res result
	var hashes [batch]uint64
	var seqs [batch]uint32
	n := 0
	start := time.Now()
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		res.records++
		if p.Kind != capture.KindTCP {
			continue
		}
		res.tcp++
		if level == "read" {
			continue
		}
		k := tcpct.KeyOf(p.SrcAddrPort(), p.DstAddrPort())
		seg := tcpct.SegmentOf(p)
		res.parsed++
		// Folded in at both levels, so that the compiler keeps the tuple
		// and header work the touch level does not otherwise use.
		res.sum += uint64(seg.Seq) + uint64(k.SrcPort())
		if level == "parse" {
			continue
		}
		hashes[n], seqs[n] = symmetricHash(p), seg.Seq
		n++
		if n == batch {
			res.sum += mem.touch(hashes[:], seqs[:])
			res.touched += n
			n = 0
		}
	}
	res.sum += mem.touch(hashes[:n], seqs[:n])
	res.touched += n
	res.elapsed = time.Since(start)
	return res, nil
}

// touch reaches each packet's bucket, then its record, and writes the
// record: all buckets of the batch first, then all records, so that the
// misses of each wave overlap.
func (m *memory) touch(hashes []uint64, seqs []uint32) uint64 {
	var rec [batch]int
	var sum uint64
	for i, h := range hashes {
		rec[i] = int(m.buckets[int(h&(buckets-1))*lineSize/8])
	}
	for i := range hashes {
		sum += m.records[rec[i]*recSize/8+1]
	}
	for i := range hashes {
		m.records[rec[i]*recSize/8] += uint64(seqs[i])
	}
	return sum
}

// symmetricHash mixes a packet's addresses and ports so that both
// directions of a connection meet the same bucket.
func symmetricHash(p *capture.Packet) uint64 {
	s, d := p.Src.As16(), p.Dst.As16()
	var h uint64
	for i := 0; i < 16; i += 8 {
		h ^= binary.LittleEndian.Uint64(s[i:]) ^ binary.LittleEndian.Uint64(d[i:])
	}
	h ^= uint64(p.SrcPort^p.DstPort) << 40
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>31
}

// latency returns the time of one dependent load in a region of n bytes:
// a random cyclic chain of cache lines, followed for a few million steps.
func latency(n int) float64 {
	words, err := hugeWords(n / 8)
	if err != nil {
		return 0
	}
	lines := n / lineSize
	perm := rand.New(rand.NewPCG(3, 4)).Perm(lines)
	for i, l := range perm {
		words[l*lineSize/8] = uint64(perm[(i+1)%lines] * lineSize / 8)
	}
	const steps = 3_000_000
	at := uint64(perm[0] * lineSize / 8)
	start := time.Now()
	for range steps {
		at = words[at]
	}
	ns := float64(time.Since(start).Nanoseconds()) / steps
	runtime.KeepAlive(at) // keeps the chain from being optimised away
	return ns
}
