package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// conformLines parses conform -format jsonl: the cell lines and the
// summary.
func conformLines(t *testing.T, out string) ([]conformCellJSON, conformSummaryJSON) {
	t.Helper()
	var cells []conformCellJSON
	var sum conformSummaryJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, `{"summary":`) {
			if err := json.Unmarshal([]byte(l), &sum); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			continue
		}
		var c conformCellJSON
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		cells = append(cells, c)
	}
	if !sum.Summary {
		t.Fatalf("no summary line in\n%s", out)
	}
	return cells, sum
}

// checkOneCellDiffers requires exactly the cell want (and nothing outside
// the table) to be reported as differing, with the packet that shows it.
// The first packet charged to it must show kernelState in the kernel's
// verdict and ourState in tcpct's, and explain's narration must name the
// cell with its edited outcome.
func checkOneCellDiffers(t *testing.T, code int, out, errs, want, kernelState, ourState, outcome string) {
	t.Helper()
	if code != exitDiffers {
		t.Fatalf("status %d, want %d; stderr %q", code, exitDiffers, errs)
	}
	cells, sum := conformLines(t, out)
	var differ []string
	for _, c := range cells {
		if c.Result == "differs" {
			differ = append(differ, c.Cell)
		}
		if c.Cell != want {
			continue
		}
		if c.First == nil || c.Differ == 0 {
			t.Fatalf("%s reported without a differing packet: %+v", want, c)
		}
		k, o := string(c.First.Kernel), string(c.First.Tcpct)
		if !strings.Contains(k, `"state":"`+kernelState+`"`) || !strings.Contains(o, `"state":"`+ourState+`"`) {
			t.Errorf("%s: first packet kernel %s, tcpct %s; want states %s and %s", want, k, o, kernelState, ourState)
		}
		if !strings.Contains(c.First.Explain, "spec cell "+want+" = "+outcome) {
			t.Errorf("%s: the explain narration does not name the cell:\n%s", want, c.First.Explain)
		}
	}
	if len(differ) != 1 || differ[0] != want || sum.Differ != 1 || !sum.Differs {
		t.Errorf("cells reported as differing: %v (summary %+v); want exactly %s", differ, sum, want)
	}
}

// trackerKernel stands in for the kernel oracle where the kernel cannot be
// asked: it answers with tcpct replay -format jsonl of the built-in linux
// profile, which agrees with Linux 6.18 on the recorded traces
// (TestRecordedKernelTraces).
// It checks conform's comparison and charging without root; the kernel
// tests below check it against the kernel itself.
func trackerKernel(t *testing.T) {
	t.Helper()
	oldAvail, oldAsk := kernelAvailable, askKernel
	t.Cleanup(func() { kernelAvailable, askKernel = oldAvail, oldAsk })
	kernelAvailable = func() error { return nil }
	askKernel = func(ctx context.Context, pkts []tracegen.Packet, sysctls map[string]string) ([]compare.Line, error) {
		// replay's own jsonl writer, not conform's rendering of a verdict.
		args := []string{"replay", "-format", "jsonl", "-profile", "linux"}
		for k, v := range sysctls {
			args = append(args, "-sysctl", k+"="+v)
		}
		var pcap bytes.Buffer
		if err := tracegen.WritePcap(&pcap, pkts); err != nil {
			return nil, err
		}
		code, out, errs := runCmd(t, pcap.Bytes(), append(args, "-")...)
		if code != 0 {
			return nil, fmt.Errorf("replay: status %d: %s", code, errs)
		}
		return compare.Read(strings.NewReader(out))
	}
}

// With the oracle answering as the linux profile does, conform reports
// full agreement for linux, exactly the edited cell for a spec with one
// cell changed, and differences for the tutorial profile.
func TestConformChargesTheEditedCell(t *testing.T) {
	trackerKernel(t)
	code, out, errs := runCmd(t, nil, "conform", "-format", "jsonl", "-cells", "1000", "-packets", "1000")
	if code != exitOK {
		t.Fatalf("linux against itself: status %d, stderr %q\n%s", code, errs, out)
	}
	cells, sum := conformLines(t, out)
	if len(cells) != 121 || sum.Differ != 0 || sum.Agreeing < 80 || sum.Packets != sum.Agree {
		t.Errorf("linux against itself: %d cell lines, summary %+v", len(cells), sum)
	}

	file := writeTemp(t, "edited.spec", editCell(t, "original", "fin", 3, "sCW"))
	code, out, errs = runCmd(t, nil, "conform", "-format", "jsonl", "-cells", "1000", "-packets", "1000", "-spec", file)
	checkOneCellDiffers(t, code, out, errs, "original/fin/ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "CLOSE_WAIT")

	// A reply SYN in TIME_WAIT reopens the connection: its verdict has the
	// new entry's direction, original, but the cell looked up was the old
	// entry's reply/syn/TIME_WAIT, which is where conform tallies it.
	code, out, errs = runCmd(t, nil, "conform", "-format", "jsonl")
	cells, _ = conformLines(t, out)
	for _, c := range cells {
		if c.Cell == "reply/syn/TIME_WAIT" && c.Packets == 0 {
			t.Errorf("no reopening reply SYN tallied under reply/syn/TIME_WAIT (status %d, %s): %+v", code, errs, c)
		}
	}
	file2 := writeTemp(t, "edited2.spec", editCell(t, "reply", "syn", 7, "sIV"))
	code, out, errs = runCmd(t, nil, "conform", "-format", "jsonl", "-spec", file2)
	checkOneCellDiffers(t, code, out, errs, "reply/syn/TIME_WAIT", "SYN_SENT", "TIME_WAIT", "INVALID")

	// The text form: the cell's line, both verdicts, explain's narration.
	code, out, _ = runCmd(t, nil, "conform", "-cells", "1000", "-packets", "1000", "-spec", file)
	for _, want := range []string{
		"original/fin/ESTABLISHED     CLOSE_WAIT",
		"DIFFERS on ",
		"      kernel {",
		"      tcpct  {",
		"spec cell original/fin/ESTABLISHED = CLOSE_WAIT",
		"120 cells: ",
		"1 differ",
		"the kernel differs from spec " + file,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if code != exitDiffers || strings.Count(out, "DIFFERS") != 1 {
		t.Errorf("text: status %d, %d DIFFERS lines", code, strings.Count(out, "DIFFERS"))
	}

	code, out, _ = runCmd(t, nil, "conform", "-format", "jsonl", "-cells", "1000", "-packets", "0", "-profile", "tutorial")
	if _, sum := conformLines(t, out); code != exitDiffers || sum.Differ == 0 {
		t.Errorf("tutorial against linux: status %d, summary %+v", code, sum)
	}
}

// Without the kernel oracle conform says why and exits 6; bad flags are
// usage errors (1) found before the kernel is asked.
func TestConformUnavailableAndUsage(t *testing.T) {
	old := kernelAvailable
	t.Cleanup(func() { kernelAvailable = old })
	kernelAvailable = func() error { return errors.New("needs root (test)") }
	code, out, errs := runCmd(t, nil, "conform")
	if code != exitNoKernel || out != "" || !strings.Contains(errs, "cannot ask the kernel: needs root (test)") {
		t.Errorf("unavailable: status %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, args := range [][]string{
		{"-format", "proc"},
		{"-sysctl", "tcp_lose=1"},
		{"-profile", "bsd"},
		{"-cells", "0"},
		{"-progress", "sometimes"},
		{"extra"},
	} {
		code, _, errs := runCmd(t, nil, append([]string{"conform"}, args...)...)
		if code != exitUsage || !strings.Contains(errs, "tcpct conform: ") {
			t.Errorf("conform %v: status %d, stderr %q; want a usage error", args, code, errs)
		}
	}
	code, out, _ = runCmd(t, nil, "help", "conform")
	if code != exitOK || !strings.HasPrefix(out, "usage: tcpct conform") || strings.Contains(out, "%") {
		t.Errorf("help conform: status %d\n%s", code, out)
	}
}
