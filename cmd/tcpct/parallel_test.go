package main

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

// multiConnCapture writes a capture of n interleaved connections with
// every kind of ending: FIN close, RST, half-open SYNs that expire (with
// a short SYN_SENT timeout), idle established connections that expire,
// tuples reused after expiry, out-of-window packets, plus ARP-like
// non-IP records and IPv6 connections. Deterministic for a seed.
func multiConnCapture(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var pkts []timedSegment
	const S, A, P, F, R = packet.SYN, packet.ACK, packet.PSH, packet.FIN, packet.RST
	srv4 := netip.MustParseAddrPort("10.9.0.1:443")
	srv6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	for c := 0; c < n; c++ {
		srv := srv4
		cliAddr := netip.AddrFrom4([4]byte{10, 1, byte(c >> 8), byte(c)})
		if c%5 == 0 {
			srv = srv6
			cliAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(c), 14: byte(c >> 8), 13: 7})
		}
		// A few tuples are shared by two connections, the second after
		// the first expired or closed.
		cli := netip.AddrPortFrom(cliAddr, uint16(20000+c%(n-n/10)))
		start := time.Duration(rng.IntN(20000)) * time.Millisecond
		gap := func() time.Duration { return time.Duration(1+rng.IntN(400)) * time.Millisecond }
		ci, si := rng.Uint32(), rng.Uint32()
		at := start
		add := func(rev bool, flags packet.Flags, seq, ack uint32, plen int) {
			s := packet.Segment{Src: cli, Dst: srv, Flags: flags, Seq: seq, Ack: ack, Window: 64240, PayloadLen: plen}
			if rev {
				s.Src, s.Dst = srv, cli
			}
			if flags&S != 0 {
				s.Options = packet.Options{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}
			}
			pkts = append(pkts, timedSegment{at, s})
			at += gap()
		}
		add(false, S, ci, 0, 0)
		kind := rng.IntN(6)
		if kind == 0 {
			continue // half-open: expires in SYN_SENT
		}
		add(true, S|A, si, ci+1, 0)
		add(false, A, ci+1, si+1, 0)
		add(false, P|A, ci+1, si+1, 100)
		add(true, P|A, si+1, ci+101, 300)
		switch kind {
		case 1: // RST
			add(false, R, ci+101, 0, 0)
		case 2: // idle: expires from ESTABLISHED (short timeout below)
		case 3: // out of window, then FIN close
			add(false, A, ci+1+1<<30, si+301, 0)
			fallthrough
		default:
			add(false, F|A, ci+101, si+301, 0)
			add(true, F|A, si+301, ci+102, 0)
			add(false, A, ci+102, si+302, 0)
		}
	}
	return writeSegments(t, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), pkts, 97)
}

// timedSegment is a segment to write at an offset from a capture's start.
type timedSegment struct {
	at  time.Duration
	seg packet.Segment
}

// writeSegments writes pkts as a raw-IP pcap, sorted by time from t0
// (stably: ties keep generation order, so each connection's packets stay
// in order). With udpEvery > 0, every udpEvery-th packet is preceded by a
// non-TCP record (its IPv4 header with protocol 17).
func writeSegments(t testing.TB, t0 time.Time, pkts []timedSegment, udpEvery int) []byte {
	t.Helper()
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].at < pkts[j].at })
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i, p := range pkts {
		if b, err = p.seg.Append(b[:0]); err != nil {
			t.Fatal(err)
		}
		if udpEvery > 0 && i%udpEvery == 0 {
			udp := append([]byte(nil), b...)
			udp[9] = 17
			if err := w.WritePacket(t0.Add(p.at), udp); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WritePacket(t0.Add(p.at), b); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

var throughputLine = regexp.MustCompile(`(?m)^  \d+ TCP packets in .*$`)

// TestParallelSameOutput replays one multi-connection capture, with
// expiry during the capture, on 1, 2 and 3 workers and requires the same
// bytes for every format -j applies to (summary: all but the wall-clock
// throughput line).
func TestParallelSameOutput(t *testing.T) {
	data := multiConnCapture(t, 600, 7)
	knobs := []string{"-sysctl", "tcp_timeout_syn_sent=2", "-sysctl", "tcp_timeout_established=5", "-sysctl", "tcp_timeout_time_wait=3"}
	for _, format := range []string{"jsonl", "proc", "conntrack", "summary"} {
		for _, at := range []string{"", "+2s"} {
			var want string
			for _, j := range []string{"1", "2", "3"} {
				args := append([]string{"replay", "-format", format, "-j", j}, knobs...)
				if at != "" {
					args = append(args, "-at", at)
				}
				args = append(args, "-")
				code, out, errs := runCmd(t, data, args...)
				if code != 0 || errs != "" {
					t.Fatalf("%v: status %d, stderr %q", args, code, errs)
				}
				out = throughputLine.ReplaceAllString(out, "")
				if j == "1" {
					want = out
					if format == "jsonl" && (!strings.Contains(out, `"state":"CLOSE"`) || !strings.Contains(out, `"ct":"INVALID"`)) {
						t.Fatalf("capture lacks RST closes or INVALID packets")
					}
					if format == "summary" && !regexp.MustCompile(`destroyed [1-9]\d* expired`).MatchString(out) {
						t.Fatalf("no expiry in the capture:\n%s", out)
					}
					continue
				}
				if out != want {
					t.Errorf("-format %s -at %q: -j %s differs from -j 1\n%s", format, at, j, firstDiff(want, out))
				}
			}
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n-j 1: " + al[i] + "\n-j N: " + bl[i]
		}
	}
	return "lengths " + strconv.Itoa(len(al)) + " vs " + strconv.Itoa(len(bl))
}

// Replay allocates per run, never per packet or per connection: doubling
// the capture (twice the connections, twice the packets) adds at most a
// handful of allocations, for every output format on one worker.
func TestReplayAllocationsDoNotGrowWithCapture(t *testing.T) {
	if testing.Short() {
		t.Skip("replays two captures many times")
	}
	if raceDetector {
		// Under -race the summary's count for the same capture varies by
		// 20 or more from run to run; the plain test run checks this.
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	small, large := multiConnCapture(t, 300, 7), multiConnCapture(t, 600, 7)
	allocs := func(data []byte, format string) float64 {
		return testing.AllocsPerRun(3, func() {
			var out, errb bytes.Buffer
			out.Grow(1 << 20)
			if code := run([]string{"replay", "-format", format, "-j", "1", "-sysctl", "max=4096", "-"}, bytes.NewReader(data), &out, &errb); code != 0 {
				t.Fatalf("status %d: %s", code, errb.String())
			}
		})
	}
	for _, format := range []string{"summary", "jsonl", "events"} {
		a, b := allocs(small, format), allocs(large, format)
		t.Logf("-format %s: %.0f allocations for %d bytes of capture, %.0f for %d", format, a, len(small), b, len(large))
		if b-a > 16 {
			t.Errorf("-format %s: %.0f allocations more for a capture twice as large (%.0f -> %.0f): something allocates per packet or per connection", format, b-a, a, b)
		}
	}
}
