package main

import (
	"io"
	"os"
	"testing"
)

// TestSmallRun runs the whole measurement on a small mix (one round) and
// checks what it can check without timing anything: every frame took the
// lab's path in every namespace (run fails otherwise), the kernel's
// conntrack tracked them (it holds entries and found packets INVALID),
// and the kernel, the eBPF tracker under BPF_PROG_TEST_RUN and the Go
// tracker found the same number of packets INVALID, so that the three
// measured the same work. The numbers it prints are not checked: speed
// goals live in the measurement, not in tests.
func TestSmallRun(t *testing.T) {
	if err := available(); err != nil {
		t.Skip(err)
	}
	o := options{packets: 5000, rounds: 1, parallel: 100, seed: 3, cpu: 0, chunk: 512,
		variants: []string{"none", "notrack", "track", "ebpf", "none2", "ebpf2"}}
	w := io.Discard
	if testing.Verbose() {
		w = os.Stdout
	}
	res, err := run(o, w)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		res.summary(w)
	}
	inv := res.invalid[0]
	t.Logf("%d packets; INVALID: %v; kernel entries at the end: %d", res.packets, inv, res.entries[0])
	if res.entries[0] == 0 || inv["kernel"] == 0 {
		t.Errorf("the track namespace's conntrack tracked nothing: %d entries, %d INVALID", res.entries[0], inv["kernel"])
	}
	if inv["ebpf"] != inv["kernel"] || inv["go"] != inv["kernel"] {
		t.Errorf("INVALID packets: kernel %d, eBPF %d, Go %d: the trackers did not run the same work", inv["kernel"], inv["ebpf"], inv["go"])
	}
	for _, what := range []string{"kernel/none", "kernel/track", "kernel/ebpf", "ebpf/test-run", "go/track"} {
		if v := res.byRound(what)[0]; !(v > 0) {
			t.Errorf("%s: %v ns/packet", what, v)
		}
	}
}
