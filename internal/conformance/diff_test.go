package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// kernelAndTracker runs a generated trace through the kernel (in a fresh
// namespace) and, as a capture, through a tracker, both with the knobs
// sysctls, and returns both sets of verdicts and the packets' flow keys.
func kernelAndTracker(t *testing.T, pkts []tracegen.Packet, sysctls []string) (kern, ours []compare.Line, keys map[int]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	recs, err := kernel.Run(ctx, kernelPackets(pkts), kernel.Options{Sysctls: sysctlMap(sysctls)})
	if err != nil {
		t.Fatal(err)
	}
	kern = kernelLines(t, recs)
	var pb bytes.Buffer
	if err := tracegen.WritePcap(&pb, pkts); err != nil {
		t.Fatal(err)
	}
	ours, keys = replay(t, &pb, sysctls)
	return kern, ours, keys
}

// replay runs a capture through a tracker with the knobs sysctls and
// returns its verdicts in the jsonl form the kernel runner records.
func replay(t *testing.T, r io.Reader, sysctls []string) ([]compare.Line, map[int]string) {
	t.Helper()
	return replayWith(t, newTracker(t, sysctls), r)
}

// replayWith is replay through the tracker tr.
func replayWith(t *testing.T, tr *tcpct.Tracker, r io.Reader) ([]compare.Line, map[int]string) {
	t.Helper()
	var out []compare.Line
	var raw [][]byte
	trackCapture(t, tr, r, func(p *capture.Packet, v *tcpct.Verdict) {
		raw = append(raw, append([]byte(nil), p.Data...))
		if v == nil {
			return
		}
		out = append(out, compare.VerdictLine(p.Index, v))
	})
	return out, compare.FlowKeys(raw)
}

// newTracker is a linux-profile tracker with the knobs sysctls.
func newTracker(t *testing.T, sysctls []string) *tcpct.Tracker {
	t.Helper()
	tr, err := tcpct.New(tcpct.Config{Profile: "linux", Knobs: sysctls})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// trackCapture runs every record of a capture through tr, in order, and
// calls each with the record and, for a TCP packet, its verdict (nil for
// the others).
func trackCapture(t *testing.T, tr *tcpct.Tracker, r io.Reader, each func(p *capture.Packet, v *tcpct.Verdict)) {
	t.Helper()
	cr, err := capture.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if tcpct.IsICMP(p) {
			// An ICMP error: Track's path for it.
			v, err := tr.Track(p.IP, p.Timestamp())
			if err != nil {
				t.Fatal(err)
			}
			each(p, &v)
			continue
		}
		if !p.HasPorts() {
			// Not TCP, or a TCP header cut before its ports (which the
			// kernel runner cannot inject: it needs the tuple).
			each(p, nil)
			continue
		}
		seg := tcpct.SegmentOf(p)
		v := tr.TrackSegment(p.SrcAddrPort(), p.DstAddrPort(), &seg, p.Timestamp())
		each(p, &v)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func report(t *testing.T, name string, kern, ours []compare.Line, keys map[int]string) {
	t.Helper()
	rep := compare.Compare(kern, ours, compare.Options{Keys: keys})
	rep.NameA, rep.NameB = "kernel", "tcpct"
	t.Logf("%s: %d packets, %d agree on every field", name, rep.Packets, rep.AllAgree)
	if !rep.Agree() {
		var b bytes.Buffer
		rep.WriteText(&b)
		t.Errorf("%s: tcpct disagrees with the kernel:\n%s", name, b.String())
	}
}

// TestRecordedKernelTraces replays every recorded trace and requires
// agreement with the kernel on every packet and field (timeouts within the
// 1 s jiffy tolerance).
func TestRecordedKernelTraces(t *testing.T) {
	dir := filepath.Join("..", "..", "tcpcttest", "testdata")
	for _, v := range tracegen.Recordings {
		t.Run(v.Name, func(t *testing.T) {
			pcap := gunzip(t, filepath.Join(dir, v.Name+".pcap.gz"))
			kern, err := compare.Read(bytes.NewReader(gunzip(t, filepath.Join(dir, v.Name+".jsonl.gz"))))
			if err != nil {
				t.Fatal(err)
			}
			ours, keys := replay(t, bytes.NewReader(pcap), v.Sysctls)
			report(t, v.Name, kern, ours, keys)
		})
	}
}

// TestKernelDifferential generates fresh traces (20,000 packets per
// variant; TCPCT_DIFF_PACKETS to change), runs them through the real
// kernel and through tcpct, and compares. It needs root, nft and network
// namespaces, and skips without them.
func TestKernelDifferential(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	n := 20000
	if s := os.Getenv("TCPCT_DIFF_PACKETS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 2000
	}
	seed := seedFrom("TCPCT_DIFF_SEED")
	for i, v := range tracegen.Recordings {
		t.Run(v.Name, func(t *testing.T) {
			// The recording's configuration with a fresh seed and n
			// packets; a quarter of them where pauses make time pass.
			cfg := v.Config
			cfg.Seed, cfg.Packets = seed+uint64(i), n
			if cfg.Pause > 0 || cfg.Cells {
				cfg.Packets = n / 4
			}
			pkts := tracegen.Generate(cfg)
			kern, ours, keys := kernelAndTracker(t, pkts, v.Sysctls)
			report(t, fmt.Sprintf("%s (seed %d, TCPCT_DIFF_SEED reproduces)", v.Name, cfg.Seed-uint64(i)), kern, ours, keys)
		})
	}
}

// icmpVariants are the differential's traces with ICMP and ICMPv6
// errors (tracegen.Config.ICMP): about live connections, closed ones,
// (with the short timeouts and pauses) expired ones, and (with
// tcp_loose=0, where a connection picked up mid-stream has only INVALID
// packets and no entry) connections the table never held.
var icmpVariants = []tracegen.Recording{
	{Name: "icmp", Config: tracegen.Config{Packets: 4000, ICMP: 0.2}},
	{Name: "icmp_loose0", Config: tracegen.Config{Packets: 4000, ICMP: 0.2}, Sysctls: []string{"tcp_loose=0"}},
	{Name: "icmp_short_timeouts", Config: tracegen.Config{Packets: 3000, ICMP: 0.2, Pause: 1300 * time.Millisecond, MaxPauses: 8},
		Sysctls: tracegen.Recordings[5].Sysctls},
}

// TestKernelDifferentialICMP is TestKernelDifferential for traces with
// ICMP errors: every error's verdict (RELATED and its direction, or
// INVALID) and the quoted entry's fields must agree with the kernel's.
// TCPCT_DIFF_PACKETS sets the TCP packets of the trace without pauses
// (default 4000).
func TestKernelDifferentialICMP(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	seed := seedFrom("TCPCT_DIFF_SEED")
	for i, v := range icmpVariants {
		t.Run(v.Name, func(t *testing.T) {
			cfg := v.Config
			cfg.Seed = seed + uint64(i)
			if n := os.Getenv("TCPCT_DIFF_PACKETS"); n != "" && cfg.Pause == 0 {
				cfg.Packets, _ = strconv.Atoi(n)
			}
			if testing.Short() {
				cfg.Packets /= 4
			}
			pkts := tracegen.Generate(cfg)
			kern, ours, keys := kernelAndTracker(t, pkts, v.Sysctls)
			icmp := map[string]int{}
			for _, l := range kern {
				if strings.HasPrefix(pkts[l.I].Note, "icmp") {
					icmp[l.CT]++
					if l.State == "" {
						icmp["no entry"]++
					}
				}
			}
			t.Logf("ICMP errors by kernel verdict: %v", icmp)
			if icmp["RELATED"] == 0 || icmp["INVALID"] == 0 {
				t.Errorf("the trace has no RELATED or no INVALID errors: %v", icmp)
			}
			var ki, oi []compare.Line
			byNote := map[string]int{}
			for _, l := range kern {
				if strings.HasPrefix(pkts[l.I].Note, "icmp") {
					ki = append(ki, l)
					byNote[pkts[l.I].Note+" "+l.CT]++
				}
			}
			t.Logf("ICMP errors by form and kernel verdict: %v", byNote)
			// Where the kernel logs why an error is INVALID, tcpct's
			// reason is the same words (compare leaves reasons out).
			reasons := map[int]string{}
			for _, l := range ours {
				reasons[l.I] = l.Reason
			}
			for _, l := range ki {
				if l.Reason != "" && reasons[l.I] != l.Reason {
					t.Errorf("packet %d (%s): kernel reason %q, tcpct %q", l.I, pkts[l.I].Note, l.Reason, reasons[l.I])
				}
			}
			for _, l := range ours {
				if strings.HasPrefix(pkts[l.I].Note, "icmp") {
					oi = append(oi, l)
				}
			}
			report(t, fmt.Sprintf("%s, ICMP errors only (seed %d)", v.Name, cfg.Seed-uint64(i)), ki, oi, keys)
			report(t, fmt.Sprintf("%s (seed %d, TCPCT_DIFF_SEED reproduces)", v.Name, cfg.Seed-uint64(i)), kern, ours, keys)
		})
	}
}

// kernelLines are the kernel runner's records in the form compare reads.
func kernelLines(t *testing.T, recs []kernel.Record) []compare.Line {
	t.Helper()
	var kb bytes.Buffer
	for j := range recs {
		kb.Write(recs[j].AppendJSON(nil))
		kb.WriteByte('\n')
	}
	kern, err := compare.Read(&kb)
	if err != nil {
		t.Fatal(err)
	}
	return kern
}

// seedFrom is the seed named by the environment variable env, or a fresh
// one from the clock.
func seedFrom(env string) uint64 {
	if s := os.Getenv(env); s != "" {
		seed, _ := strconv.ParseUint(s, 10, 64)
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// kernelPackets is a generated trace as the kernel runner takes it.
func kernelPackets(pkts []tracegen.Packet) []kernel.Packet {
	in := make([]kernel.Packet, len(pkts))
	for i, p := range pkts {
		in[i] = kernel.Packet{TS: p.TS, Data: p.Data}
	}
	return in
}

// sysctlMap turns NAME=VALUE knobs into kernel.Options.Sysctls; the
// runner adds the nf_conntrack_ prefix the names lack (sysctlPath).
func sysctlMap(kv []string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}
