package tcpcttest_test

import (
	"fmt"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/tcpcttest"
)

// tcpctAdapter is the whole adapter a tracker needs: tcpct's own Tracker,
// fed raw IP packets. SetSysctl lets the kit run every sysctl variant: a
// tracker's knobs are fixed at New, so it makes a new one.
type tcpctAdapter struct {
	tr    *tcpct.Tracker
	knobs []string
}

func newTcpct() tcpcttest.Tracker {
	tr, err := tcpct.New(tcpct.Config{})
	if err != nil {
		panic(err)
	}
	return &tcpctAdapter{tr: tr}
}

func (a *tcpctAdapter) SetSysctl(name, value string) error {
	knobs := append(a.knobs, name+"="+value)
	tr, err := tcpct.New(tcpct.Config{Knobs: knobs})
	if err != nil {
		return err
	}
	a.tr, a.knobs = tr, knobs
	return nil
}

func (a *tcpctAdapter) Track(p *tcpcttest.Packet) tcpcttest.Result {
	v, err := a.tr.Track(p.IP, p.Time)
	if err != nil {
		return tcpcttest.Result{CT: tcpcttest.Invalid}
	}
	r := tcpcttest.Result{CT: tcpcttest.CT(v.CT.String()), Dir: tcpcttest.Dir(v.Dir.String())}
	if v.Entry {
		r.State, r.Timeout, r.Assured, r.SeenReply = v.StateName(), v.SecondsLeft(), v.Assured, v.SeenReply
	}
	return r
}

// Measure a tracker against the recorded Linux traces and generated ones.
// In a test function, tcpcttest.Test(t, newTcpct, opts) does the same and
// fails on each disagreement.
func Example() {
	r := tcpcttest.Measure(newTcpct, tcpcttest.Options{Variants: []string{"default", "loose0"}})
	for _, tr := range r.Traces {
		fmt.Printf("%s: %d packets, %d disagreements\n", tr.Name, tr.Packets, tr.TotalDiffs)
	}
	fmt.Println("agree:", r.Agree())
	// Output:
	// kernel/default: 4029 packets, 0 disagreements
	// generated/default (seed 1): 4006 packets, 0 disagreements
	// kernel/loose0: 4001 packets, 0 disagreements
	// generated/loose0 (seed 2): 4006 packets, 0 disagreements
	// agree: true
}

// Check a tracker on captures of your own. The kernel's verdicts, when
// recorded next to a capture (as root: go run
// github.com/fdac824a/tcpct/cmd/ktrace trace.pcap > trace.jsonl), are the
// reference; without them, tcpct's linux profile is. Each disagreement
// names the file and frame and gives a tcpct explain command.
func ExampleOptions_captures() {
	r := tcpcttest.Measure(newTcpct, tcpcttest.Options{NoRecorded: true, NoGenerated: true,
		Captures: []tcpcttest.Capture{{Path: "../examples/out-of-window.pcap"}}})
	for _, tr := range r.Traces {
		fmt.Printf("%s: %d packets against %s, %d disagreements\n", tr.Name, tr.Packets, tr.Reference, tr.TotalDiffs)
	}
	// Output:
	// capture/out-of-window.pcap: 17 packets against tcpct linux (the spec; no kernel recording), 0 disagreements
}
