package tracegen

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 99} {
		cfg := Config{Seed: seed, Packets: 3000, Pause: 1500_000_000}
		var a, b bytes.Buffer
		if err := WritePcap(&a, Generate(cfg)); err != nil {
			t.Fatal(err)
		}
		if err := WritePcap(&b, Generate(cfg)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		t.Logf("seed %d: %d bytes sha256 %x", seed, a.Len(), sha256.Sum256(a.Bytes()))
	}
	var a, b bytes.Buffer
	WritePcap(&a, Generate(Config{Seed: 1, Packets: 500}))
	WritePcap(&b, Generate(Config{Seed: 2, Packets: 500}))
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("seeds 1 and 2 give the same trace")
	}
}

func TestCells(t *testing.T) {
	cfg := Config{Seed: 107, Packets: 3000, Cells: true}
	a, b := Generate(cfg), Generate(cfg)
	if len(a) != len(b) {
		t.Fatalf("two runs differ: %d and %d packets", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) || !a[i].TS.Equal(b[i].TS) {
			t.Fatalf("two runs differ at packet %d", i)
		}
	}
	conns := map[int]bool{}
	pauses := 0
	for i, p := range a {
		conns[p.Conn] = true
		if i > 0 && p.TS.Sub(a[i-1].TS) >= time.Second {
			pauses++
		}
	}
	if len(conns) < nCellScenarios {
		t.Errorf("%d connections, fewer than the %d cell scenarios", len(conns), nCellScenarios)
	}
	if want := (len(conns) + 127) / 128; pauses != want {
		t.Errorf("%d pauses, want one per batch of 128 connections (%d)", pauses, want)
	}
	t.Logf("%d packets, %d connections, %d pauses, span %v", len(a), len(conns), pauses, a[len(a)-1].TS.Sub(a[0].TS))
}

// TestCellsNoEntry: the cell probe sends a SYN/ACK and a FIN/ACK as the
// first packet of a tuple (the cells original/synack/NONE and
// original/fin/NONE), each over IPv4 and IPv6 whenever the trace has two
// passes of the scenarios: the recorded one and other seeds.
func TestCellsNoEntry(t *testing.T) {
	var cfg Config
	for _, r := range Recordings {
		if r.Name == "cells" {
			cfg = r.Config
		}
	}
	for seed := uint64(0); seed < 12; seed++ {
		c := cfg
		if seed > 0 {
			c.Seed = seed
		}
		checkNoEntry(t, c)
	}
}

func checkNoEntry(t *testing.T, cfg Config) {
	t.Helper()
	pkts := Generate(cfg)
	seen := map[int]bool{}
	got := map[string]int{}
	for _, p := range pkts {
		first := !seen[p.Conn]
		seen[p.Conn] = true
		if p.Note != "probe-none-synack" && p.Note != "probe-none-fin" {
			continue
		}
		if !first {
			t.Errorf("seed %d: connection %d: %s is not its first packet", cfg.Seed, p.Conn, p.Note)
		}
		flags := p.Data[33] // IPv4 without options: TCP header at 20
		family := "IPv4"
		if p.Data[0]>>4 == 6 {
			flags, family = p.Data[53], "IPv6"
		}
		want := byte(0x12) // SYN|ACK
		if p.Note == "probe-none-fin" {
			want = 0x11 // FIN|ACK
		}
		if flags != want {
			t.Errorf("seed %d: connection %d: %s has flags %#x, want %#x", cfg.Seed, p.Conn, p.Note, flags, want)
		}
		got[p.Note+" "+family]++
	}
	for _, k := range []string{"probe-none-synack IPv4", "probe-none-synack IPv6", "probe-none-fin IPv4", "probe-none-fin IPv6"} {
		if got[k] == 0 {
			t.Errorf("seed %d: no %s (%v)", cfg.Seed, k, got)
		}
	}
}

// TestShort checks the brief connections of Config.Short: the same
// trace twice, a few packets per connection, each connection on its own
// tuple, and no more than Parallel connections open at a time.
func TestShort(t *testing.T) {
	cfg := Config{Seed: 11, Packets: 8000, Parallel: 32, Short: true, Pause: 1100 * time.Millisecond, PauseEvery: 1400, MaxPauses: 1 << 30}
	a, b := Generate(cfg), Generate(cfg)
	if len(a) != len(b) {
		t.Fatalf("two runs differ: %d and %d packets", len(a), len(b))
	}
	first, last := map[int]int{}, map[int]int{}
	tuple := map[int]string{}
	pauses := 0
	for i, p := range a {
		if !bytes.Equal(p.Data, b[i].Data) || !p.TS.Equal(b[i].TS) {
			t.Fatalf("two runs differ at packet %d", i)
		}
		if _, ok := first[p.Conn]; !ok {
			first[p.Conn] = i
		}
		last[p.Conn] = i
		// The unordered pair of endpoints: address and port, both ways.
		x, y := string(p.Data[12:20]), string(p.Data[8:40])
		if p.Data[0]>>4 == 4 {
			y = x
		}
		if old, ok := tuple[p.Conn]; ok && old != y && old != reverse(y) {
			t.Fatalf("connection %d changes its addresses at packet %d", p.Conn, i)
		}
		tuple[p.Conn] = y
		if i > 0 && p.TS.Sub(a[i-1].TS) >= time.Second {
			pauses++
		}
	}
	conns := len(first)
	if per := float64(len(a)) / float64(conns); per > 12 {
		t.Errorf("%.1f packets per connection; Short ones should be brief", per)
	}
	open := 0
	for i := range a {
		if first[a[i].Conn] == i {
			open++
		}
		if open > cfg.Parallel {
			t.Fatalf("%d connections open at packet %d, more than Parallel=%d", open, i, cfg.Parallel)
		}
		if last[a[i].Conn] == i {
			open--
		}
	}
	if pauses < len(a)/cfg.PauseEvery/2 {
		t.Errorf("%d pauses in %d packets, want about one every %d", pauses, len(a), cfg.PauseEvery)
	}
	t.Logf("%d packets, %d connections, %d pauses", len(a), conns, pauses)
}

// reverse swaps the two halves of an address pair.
func reverse(s string) string { return s[len(s)/2:] + s[:len(s)/2] }
