package router

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// routerKnobs are the router's conntrack sysctls in the live test: short
// timeouts, so that idle connections expire and TIME_WAIT entries are
// reopened or gone when a client port comes back.
var routerKnobs = map[string]string{
	"tcp_timeout_established":    "3",
	"tcp_timeout_time_wait":      "2",
	"tcp_timeout_close":          "2",
	"tcp_timeout_close_wait":     "3",
	"tcp_timeout_fin_wait":       "3",
	"tcp_timeout_last_ack":       "3",
	"tcp_timeout_syn_sent":       "5",
	"tcp_timeout_syn_recv":       "5",
	"tcp_timeout_unacknowledged": "5",
	"acct":                       "1", // packet and byte counters in the table dump
}

// TestLiveRouter is the live-router differential: real TCP stacks in a
// client and a server namespace talk through a router namespace whose
// nf_conntrack stamps its verdict on every forwarded packet; tcpct replays
// what the router received and must agree on every packet's ct state and
// direction. Impairments on both endpoints drop, duplicate, corrupt and
// delay packets. The CI size runs 3 s of traffic; TCPCT_ROUTER_SECONDS
// makes it longer, TCPCT_ROUTER_SEED fixes the workload's and the
// impairments' random choices (the traffic still depends on timing), and
// TCPCT_ROUTER_KEEP=DIR keeps the front capture there, and
// TCPCT_ROUTER_KNOBS=tcp_loose=0,tcp_be_liberal=1 adds or overrides the
// router's knobs (tcpct gets the same).
func TestLiveRouter(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("live router unavailable: %v", err)
	}
	secs := 3.0
	if s := os.Getenv("TCPCT_ROUTER_SECONDS"); s != "" {
		var err error
		if secs, err = strconv.ParseFloat(s, 64); err != nil {
			t.Fatalf("TCPCT_ROUTER_SECONDS=%q: %v", s, err)
		}
	}
	if testing.Short() {
		secs = 1
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TCPCT_ROUTER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	knobMap := maps.Clone(routerKnobs)
	if s := os.Getenv("TCPCT_ROUTER_KNOBS"); s != "" {
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				t.Fatalf("TCPCT_ROUTER_KNOBS: %q is not NAME=VALUE", kv)
			}
			knobMap[k] = v
		}
	}
	imp := Impairment{Drop: 0.02, Duplicate: 0.01, Corrupt: 0.005, Delay: 0.03, MaxDelay: 40 * time.Millisecond, Seed: seed}
	l, err := New(Options{Sysctls: knobMap, Impair: imp})
	if err != nil {
		if strings.Contains(err.Error(), "iptables") {
			t.Logf("%v: running without impairments", err)
			imp = Impairment{}
			l, err = New(Options{Sysctls: knobMap})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if ns := Namespaces(); len(ns) > 0 {
			t.Errorf("namespaces left behind: %v", ns)
		}
	}()
	if !l.OffloadsOff() {
		t.Log("ethtool missing or failed: the veths keep their offloads (GSO/GRO super-packets are tracked as one packet on both sides)")
	}
	if err := l.Serialized(); err != nil {
		t.Logf("the router's packets are not steered to one CPU (%v): packets of one connection handled at the same moment on two CPUs may be captured in the other order", err)
	}
	capt, err := l.StartCapture()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs*float64(time.Second))+2*time.Minute)
	defer cancel()
	est, _ := strconv.Atoi(knobMap["tcp_timeout_established"])
	w := Workload{
		Duration: time.Duration(secs * float64(time.Second)), Workers: 8, Seed: seed,
		Idle:          time.Duration(est)*time.Second + 1500*time.Millisecond,
		FeaturePeriod: 500 * time.Millisecond,
		Hold:          12,
	}
	var (
		frames          []Frame
		drops           uint32
		capErr, dumpErr error
		kdump           string
		before, after   time.Time
	)
	w.AtEnd = func(quiet error) {
		frames, drops, capErr = capt.Stop()
		if quiet != nil {
			t.Logf("no table comparison: %v", quiet)
		} else if _, err := exec.LookPath("conntrack"); err == nil {
			before = time.Now()
			kdump, dumpErr = l.ConntrackList()
			after = time.Now()
		}
	}
	st, err := l.Run(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if capErr != nil || dumpErr != nil {
		t.Fatal(capErr, dumpErr)
	}
	if drops > 0 {
		t.Fatalf("the capture socket dropped %d frames: the comparison would be incomplete", drops)
	}
	pairs, orphans := Match(frames)
	var front bytes.Buffer
	if err := WriteFront(&front, pairs); err != nil {
		t.Fatal(err)
	}
	knobs := make([]string, 0, len(knobMap))
	for _, k := range sortedKeys(knobMap) {
		knobs = append(knobs, k+"="+knobMap[k])
	}
	rep, err := Check(front.Bytes(), pairs, knobs)
	if err != nil {
		t.Fatal(err)
	}
	rep.Orphans = orphans
	var tableNote string
	if !before.IsZero() {
		n, onlyK, onlyT := CompareTable(kdump, rep.Tracker, before, after)
		tableNote = fmt.Sprintf("router table at the end: %d entries (conntrack -L), %d only in the kernel's, %d only in tcpct's", n, len(onlyK), len(onlyT))
		if len(onlyK)+len(onlyT) > 0 {
			t.Errorf("%s\nkernel only:\n  %s\ntcpct only:\n  %s", tableNote,
				strings.Join(onlyK[:min(5, len(onlyK))], "\n  "), strings.Join(onlyT[:min(5, len(onlyT))], "\n  "))
		}
	}
	var b strings.Builder
	rep.WriteText(&b, 30)
	t.Logf("seed %d (TCPCT_ROUTER_SEED), %.0f s of traffic\nconnections: %s\nimpairments: %s\n%s%s",
		seed, secs, st, l.ImpairStats(), b.String(), tableNote)
	if testing.Verbose() {
		for _, k := range sortedKeysInt(st.Errors) {
			t.Logf("  endpoint error %s: %d", k, st.Errors[k])
		}
	}
	keep := os.Getenv("TCPCT_ROUTER_KEEP")
	if !rep.OK() && keep == "" {
		keep = os.TempDir()
	}
	if keep != "" {
		path := filepath.Join(keep, fmt.Sprintf("tcpct-router-front-%d.pcap", seed))
		if err := os.WriteFile(path, front.Bytes(), 0o644); err != nil {
			t.Error(err)
		} else {
			flags := " -sysctl " + strings.Join(knobs, " -sysctl ")
			t.Logf("front capture: %s\n  tcpct replay%s %s", path, flags, path)
			for i, d := range rep.Disagreement {
				if i == 5 {
					break
				}
				t.Logf("  tcpct explain -packet %d%s %s", d.Index, flags, path)
			}
		}
	}
	if !rep.OK() {
		t.Errorf("tcpct and the router's nf_conntrack disagree")
	}
	if rep.Compared < 100 {
		t.Errorf("only %d packets compared: the workload did not run", rep.Compared)
	}
}
