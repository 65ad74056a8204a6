package main

import (
	"bytes"
	"flag"
	"strconv"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/tcpcttest"
)

// acceptsInvalid is tcpct with a bug: it lets through what it finds
// INVALID, so the kit reports disagreements on exactly those packets.
type acceptsInvalid struct {
	tr    *tcpct.Tracker
	knobs []string
}

func (a *acceptsInvalid) SetSysctl(name, value string) error {
	knobs := append(a.knobs, name+"="+value)
	tr, err := tcpct.New(tcpct.Config{Knobs: knobs})
	if err != nil {
		return err
	}
	a.tr, a.knobs = tr, knobs
	return nil
}

func (a *acceptsInvalid) Track(p *tcpcttest.Packet) tcpcttest.Result {
	v, err := a.tr.Track(p.IP, p.Time)
	if err != nil {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	r := tcpcttest.Result{CT: tcpcttest.CT(v.CT.String()), Dir: tcpcttest.Dir(v.Dir.String())}
	if r.CT == tcpcttest.Invalid {
		r.CT, r.Dir = tcpcttest.Established, tcpcttest.Original
	}
	if v.Entry {
		r.State, r.Timeout, r.Assured, r.SeenReply = v.StateName(), v.SecondsLeft(), v.Assured, v.SeenReply
	}
	return r
}

// The conformance kit prints a tcpct explain command for each
// disagreement (tcpcttest.Disagreement.Explain); run as printed, it
// narrates the packet, with the verdict the tracker departed from and
// its reason. Both kinds: a recorded trace's file with the variant's
// sysctl, and a generated trace piped from cmd/tracegen
// (here generated in-process with the flags the command gives it).
func TestKitExplainCommandsRun(t *testing.T) {
	r := tcpcttest.Measure(func() tcpcttest.Tracker {
		tr, err := tcpct.New(tcpct.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return &acceptsInvalid{tr: tr}
	}, tcpcttest.Options{Variants: []string{"loose0"}, MaxDiffs: 2, Packets: 1500})
	ran := 0
	for _, tr := range r.Traces {
		for _, d := range tr.Diffs {
			if d.Want.CT != tcpcttest.Invalid {
				t.Fatalf("%s: the broken adapter departs only on INVALID packets, got %v", d.Trace, d)
			}
			var stdin []byte
			command := d.Explain
			if genCmd, rest, piped := strings.Cut(command, " | "); piped {
				stdin = generate(t, genCmd)
				command = rest
			}
			args := shellWords(t, command)
			if args[0] != "tcpct" || !strings.Contains(command, "-sysctl tcp_loose=0") {
				t.Fatalf("command %q", d.Explain)
			}
			code, out, errs := runCmd(t, stdin, args[1:]...)
			if code != 0 {
				t.Fatalf("%s: status %d: %s", d.Explain, code, errs)
			}
			head := "#" + strconv.Itoa(d.Index) + " "
			i := strings.Index(out, "\n"+head)
			if i < 0 {
				t.Fatalf("%s: no %q in the narration:\n%s", d.Explain, head, out)
			}
			block, _, _ := strings.Cut(out[i+1:], "\n\n")
			if !strings.Contains(block, ": INVALID\n") || !strings.Contains(block, "    INVALID: "+d.Cell.Reason+"\n") {
				t.Errorf("%s: the packet's narration does not say INVALID with the reason %q:\n%s", d.Explain, d.Cell.Reason, block)
			}
			ran++
		}
	}
	if ran != 4 {
		t.Errorf("%d commands run, want 2 per trace", ran)
	}
}

// generate writes the trace `go run .../tracegen FLAGS` would.
func generate(t *testing.T, command string) []byte {
	t.Helper()
	words := strings.Fields(command)
	if len(words) < 3 || words[2] != "github.com/fdac824a/tcpct/cmd/tracegen" {
		t.Fatalf("generator command %q", command)
	}
	var cfg tracegen.Config
	fs := flag.NewFlagSet("tracegen", flag.ContinueOnError)
	fs.Uint64Var(&cfg.Seed, "seed", 1, "")
	fs.IntVar(&cfg.Packets, "packets", 2000, "")
	fs.DurationVar(&cfg.Pause, "pause", 0, "")
	if err := fs.Parse(words[3:]); err != nil {
		t.Fatalf("%q: %v", command, err)
	}
	var b bytes.Buffer
	if err := tracegen.WritePcap(&b, tracegen.Generate(cfg)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
