package kernel_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"golang.org/x/sys/unix"
)

// recordDir holds the recorded kernel traces.
const recordDir = "../../../tcpcttest/testdata"

// sysctlMap turns a recording's "NAME=VALUE" list into runner options.
func sysctlMap(kv []string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func sortedSysctls(m map[string]string) string {
	var l []string
	for k, v := range m {
		l = append(l, "nf_conntrack_"+k+"="+v)
	}
	sort.Strings(l)
	if len(l) == 0 {
		return "(defaults)"
	}
	return strings.Join(l, " ")
}

// TestRecord re-records tcpcttest/testdata when TCPCT_RECORD=1, or only
// the variants named when TCPCT_RECORD is a comma-separated list of names
// (TCPCT_RECORD=cells after a change to the cell probe): then only their
// files and their rows of the README change, and the others keep the
// kernel answers they were recorded with.
func TestRecord(t *testing.T) {
	env := os.Getenv("TCPCT_RECORD")
	if env == "" || env == "0" {
		t.Skip("set TCPCT_RECORD=1 (or TCPCT_RECORD=name,...) to re-record tcpcttest/testdata")
	}
	only := map[string]bool{}
	if env != "1" {
		for _, name := range strings.Split(env, ",") {
			found := false
			for _, v := range tracegen.Recordings {
				found = found || v.Name == name
			}
			if !found {
				t.Fatalf("TCPCT_RECORD: no recording %q", name)
			}
			only[name] = true
		}
	}
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	var u unix.Utsname
	unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	var rows []string
	for _, v := range tracegen.Recordings {
		if len(only) > 0 && !only[v.Name] {
			continue
		}
		pkts := tracegen.Generate(v.Config)
		var pcap bytes.Buffer
		if err := tracegen.WritePcap(&pcap, pkts); err != nil {
			t.Fatal(err)
		}
		in := make([]kernel.Packet, len(pkts))
		for i, p := range pkts {
			in[i] = kernel.Packet{TS: p.TS, Data: p.Data}
		}
		t0 := time.Now()
		recs, err := kernel.Run(context.Background(), in, kernel.Options{Sysctls: sysctlMap(v.Sysctls)})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		el := time.Since(t0)
		var jl []byte
		for i := range recs {
			jl = recs[i].AppendJSON(jl)
			jl = append(jl, '\n')
		}
		pz, jz := gzipBytes(pcap.Bytes()), gzipBytes(jl)
		for name, b := range map[string][]byte{v.Name + ".pcap.gz": pz, v.Name + ".jsonl.gz": jz} {
			if err := os.WriteFile(filepath.Join(recordDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dur := pkts[len(pkts)-1].TS.Sub(pkts[0].TS)
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %s | %v | %d / %d | %s |",
			v.Name, v.Config.Seed, len(pkts), pauseText(v.Config), dur.Round(time.Millisecond), len(pz), len(jz), sortedSysctls(sysctlMap(v.Sysctls))))
		t.Logf("%s: %d packets in %v, pcap.gz %d B, jsonl.gz %d B", v.Name, len(recs), el, len(pz), len(jz))
	}
	readme := fmt.Sprintf(readmeTemplate, release, time.Now().UTC().Format("2006-01-02"), strings.Join(rows, "\n"))
	if len(only) > 0 {
		old, err := os.ReadFile(filepath.Join(recordDir, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		readme = replaceRows(t, string(old), rows)
	}
	if err := os.WriteFile(filepath.Join(recordDir, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceRows puts each table row of rows in the place of the README row
// of the same variant.
func replaceRows(t *testing.T, readme string, rows []string) string {
	lines := strings.Split(readme, "\n")
	for _, row := range rows {
		name, _, _ := strings.Cut(strings.TrimPrefix(row, "| "), " |")
		found := false
		for i, l := range lines {
			if strings.HasPrefix(l, "| "+name+" | ") {
				lines[i], found = row, true
			}
		}
		if !found {
			t.Fatalf("README.md has no row for %s", name)
		}
	}
	return strings.Join(lines, "\n")
}

func pauseText(c tracegen.Config) string {
	if c.Cells {
		return "2.5s per batch of 128 connections"
	}
	if c.Pause == 0 {
		return "none"
	}
	return fmt.Sprintf("%v (≤%d)", c.Pause, c.MaxPauses)
}

const readmeTemplate = `# Recorded kernel traces

Each variant is a generated trace (` + "`internal/conformance/tracegen`" + `, LinkRaw pcap,
nanosecond timestamps) and the real kernel's verdict on every packet
(jsonl in the ` + "`tcpct replay -format jsonl`" + ` form), recorded by
` + "`internal/conformance/kernel`" + ` in a fresh network namespace with the
sysctls listed (all others at their defaults; nf_conntrack_log_invalid=6
so that reasons are recorded).

Kernel: Linux %s (HZ=250), recorded %s.

| variant | seed | packets | pauses | capture span | pcap.gz / jsonl.gz bytes | sysctls |
|---|---|---|---|---|---|---|
%s

Generator settings besides seed, packets and pauses are the defaults of
` + "`tracegen.Config`" + ` (8 connections interleaved, 30%% IPv6, 40 µs gaps).
The cells variant is ` + "`tracegen.Config{Cells: true}`" + `: every connection is
driven into one state with in-window packets and then sends one in-window
probe (SYN, SYN/ACK, FIN, ACK or RST, from either side), so that the
transition table decides; 128 connections per batch, their probes after
one 2.5 s pause, so that a refreshed timer tells from an ignored packet.

Re-record (root, nft, ip needed):

    TCPCT_RECORD=1 go test -run TestRecord -v ./internal/conformance/kernel

or only some variants (their files and table rows; the others keep theirs):

    TCPCT_RECORD=cells go test -run TestRecord -v ./internal/conformance/kernel

or one trace by hand:

    go run ./cmd/tracegen -seed 101 -packets 4000 -o t.pcap
    go run ./cmd/ktrace [-sysctl tcp_loose=0 ...] t.pcap > t.jsonl

Compare a tracker with a recording:

    tcpct replay -format jsonl [-sysctl ...] default.pcap.gz > tracker.jsonl
    go run ./internal/cmd/ctcompare -pcap default.pcap.gz default.jsonl.gz tracker.jsonl

Timeouts are seconds left as the kernel reported them right after the
packet: floor(jiffies left / HZ), so a freshly set T often reads T and
sometimes T-1; compare with a tolerance of 1 s (the comparer's default).
`

// TestRecordedTraces checks the recordings without a kernel: each pcap is
// what its seed generates (else the generator changed and the traces must
// be re-recorded) and each jsonl has one line per packet, in order.
func TestRecordedTraces(t *testing.T) {
	for _, v := range tracegen.Recordings {
		pp := filepath.Join(recordDir, v.Name+".pcap.gz")
		if _, err := os.Stat(pp); err != nil {
			t.Skipf("no recording %s", pp)
		}
		recs, err := kernel.ReadCapture(pp)
		if err != nil {
			t.Fatalf("%s: %v", pp, err)
		}
		pkts := tracegen.Generate(v.Config)
		if len(recs) != len(pkts) {
			t.Fatalf("%s: %d packets, the seed generates %d: re-record with TCPCT_RECORD=1", v.Name, len(recs), len(pkts))
		}
		for i := range recs {
			if !bytes.Equal(recs[i].Data, pkts[i].Data) || !recs[i].TS.Equal(pkts[i].TS) {
				t.Fatalf("%s: packet %d differs from what seed %d generates: the generator changed; re-record with TCPCT_RECORD=1", v.Name, i, v.Config.Seed)
			}
		}
		f, err := os.Open(filepath.Join(recordDir, v.Name+".jsonl.gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := compare.Read(zr)
		io.Copy(io.Discard, zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if len(lines) != len(recs) {
			t.Fatalf("%s: %d jsonl lines for %d packets", v.Name, len(lines), len(recs))
		}
		for i, l := range lines {
			if l.I != i {
				t.Fatalf("%s: line %d has i=%d", v.Name, i, l.I)
			}
		}
	}
}
