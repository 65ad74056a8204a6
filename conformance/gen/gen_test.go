package gen

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
