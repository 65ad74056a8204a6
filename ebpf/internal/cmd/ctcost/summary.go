package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// byRound returns what's value in each round (NaN-free: rounds without it
// are left out) in round order.
func (r *results) byRound(what string) map[int]float64 {
	m := map[int]float64{}
	for _, s := range r.samples {
		if s.what == what {
			m[s.round] = s.ns
		}
	}
	return m
}

// paired returns f(a, b) for every round that has both.
func (r *results) paired(a, b string, f func(x, y float64) float64) []float64 {
	ma, mb := r.byRound(a), r.byRound(b)
	var out []float64
	for round := 0; round < r.o.rounds; round++ {
		x, okx := ma[round]
		y, oky := mb[round]
		if okx && oky {
			out = append(out, f(x, y))
		}
	}
	return out
}

func values(m map[int]float64) []float64 {
	var out []float64
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// stats is the median, the lowest and the highest value.
func stats(v []float64) (med, lo, hi float64, ok bool) {
	if len(v) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1], true
}

func line(w io.Writer, name string, v []float64) {
	med, lo, hi, ok := stats(v)
	if !ok {
		return
	}
	fmt.Fprintf(w, "| %s | %.4g | %.4g – %.4g | %d |\n", name, med, lo, hi, len(v))
}

// summary prints every round's numbers and the medians, with ranges, of
// the costs, their differences and ratios (each difference and ratio is
// taken within a round, then summarised).
func (r *results) summary(w io.Writer) {
	var whats []string
	for _, s := range r.samples {
		if !slices.Contains(whats, s.what) {
			whats = append(whats, s.what)
		}
	}
	fmt.Fprintf(w, "\nper round, ns/packet (%d packets):\n\n| what |", r.packets)
	for round := 0; round < r.o.rounds; round++ {
		fmt.Fprintf(w, " %d |", round)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("--:|", r.o.rounds))
	for _, what := range whats {
		m := r.byRound(what)
		fmt.Fprintf(w, "| %s |", what)
		for round := 0; round < r.o.rounds; round++ {
			if v, ok := m[round]; ok {
				fmt.Fprintf(w, " %.1f |", v)
			} else {
				fmt.Fprint(w, " |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "\nnotes:\n")
	for _, n := range r.notes {
		fmt.Fprintln(w, " ", n)
	}

	for i, inv := range r.invalid {
		fmt.Fprintf(w, "  round %d: INVALID packets: kernel %d, eBPF (BPF_PROG_TEST_RUN) %d, Go %d; kernel entries at the end %d\n",
			i, inv["kernel"], inv["ebpf"], inv["go"], r.entries[i])
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, "  load average at the end: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}

	sub := func(x, y float64) float64 { return x - y }
	ct := r.paired("kernel/track", "kernel/none", sub)
	fmt.Fprint(w, "\nsummary (median, range over rounds; differences and ratios taken within each round):\n\n| quantity | median | range | rounds |\n|---|--:|--:|--:|\n")
	for _, v := range []string{"none", "notrack", "track", "ebpf", "none2", "ebpf2"} {
		line(w, "kernel path, "+v+" (ns/pkt)", values(r.byRound("kernel/"+v)))
	}
	line(w, "**conntrack: track − none** (ns/pkt)", ct)
	line(w, "conntrack: track − notrack (ns/pkt)", r.paired("kernel/track", "kernel/notrack", sub))
	line(w, "notrack − none (ns/pkt)", r.paired("kernel/notrack", "kernel/none", sub))
	line(w, "control: none2 − none (ns/pkt)", r.paired("kernel/none2", "kernel/none", sub))
	line(w, "eBPF on TC ingress: ebpf − none (ns/pkt)", r.paired("kernel/ebpf", "kernel/none", sub))
	line(w, "control: a second copy, ebpf2 − ebpf (ns/pkt)", r.paired("kernel/ebpf2", "kernel/ebpf", sub))
	line(w, "eBPF, BPF_PROG_TEST_RUN (ns/pkt)", values(r.byRound("ebpf/test-run")))
	line(w, "BPF_PROG_TEST_RUN floor, trivial program (ns/pkt)", values(r.byRound("ebpf/floor")))
	line(w, "eBPF, BPF_PROG_TEST_RUN − floor (ns/pkt)", values(r.byRound("ebpf/test-run-floor")))
	line(w, "Go, Tracker.Track (ns/pkt)", values(r.byRound("go/track")))

	ratio := func(name, a string) {
		ma := r.byRound(a)
		mt, mn := r.byRound("kernel/track"), r.byRound("kernel/none")
		var v []float64
		for round := 0; round < r.o.rounds; round++ {
			x, ok1 := ma[round]
			t, ok2 := mt[round]
			n, ok3 := mn[round]
			if ok1 && ok2 && ok3 && t > n {
				v = append(v, x/(t-n))
			}
		}
		line(w, name, v)
	}
	ratio("**ratio eBPF (BPF_PROG_TEST_RUN) / conntrack**", "ebpf/test-run")
	ratio("ratio eBPF (BPF_PROG_TEST_RUN − floor) / conntrack", "ebpf/test-run-floor")
	{
		mt, mn, me := r.byRound("kernel/track"), r.byRound("kernel/none"), r.byRound("kernel/ebpf")
		var v []float64
		for round := 0; round < r.o.rounds; round++ {
			t, ok1 := mt[round]
			n, ok2 := mn[round]
			e, ok3 := me[round]
			if ok1 && ok2 && ok3 && t > n {
				v = append(v, (e-n)/(t-n))
			}
		}
		line(w, "ratio eBPF on TC ingress (ebpf − none) / conntrack", v)
	}
	ratio("ratio Go Tracker.Track / conntrack", "go/track")

	fmt.Fprint(w, "\nthe same from the medians over each round's turns (differences taken within a turn), then median and range over rounds:\n\n| quantity | median | range | rounds |\n|---|--:|--:|--:|\n")
	for _, q := range []struct{ name, what string }{
		{"**conntrack: track − none** (ns/pkt)", "turns/track-none"},
		{"conntrack: track − notrack (ns/pkt)", "turns/track-notrack"},
		{"notrack − none (ns/pkt)", "turns/notrack-none"},
		{"control: none2 − none (ns/pkt)", "turns/none2-none"},
		{"eBPF on TC ingress: ebpf − none (ns/pkt)", "turns/ebpf-none"},
		{"control: a second copy, ebpf2 − ebpf (ns/pkt)", "turns/ebpf2-ebpf"},
		{"eBPF, BPF_PROG_TEST_RUN (ns/pkt)", "turns/test-run"},
		{"Go, Tracker.Track (ns/pkt)", "turns/go"},
	} {
		line(w, q.name, values(r.byRound(q.what)))
	}
	for _, q := range []struct{ name, what string }{
		{"**ratio eBPF (BPF_PROG_TEST_RUN) / conntrack**", "turns/test-run"},
		{"ratio eBPF on TC ingress / conntrack", "turns/ebpf-none"},
		{"ratio Go Tracker.Track / conntrack", "turns/go"},
	} {
		line(w, q.name, r.paired(q.what, "turns/track-none", func(x, y float64) float64 { return x / y }))
	}
}
