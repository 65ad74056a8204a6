package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
)

// TestClockNeverGoesBack: one record of a multi-connection capture is
// stamped ten hours late, so the records after it are stamped earlier than
// it. The tracker's clock holds at the late stamp (every entry open then
// expires, later packets start over), identically on 1, 2 and 3 workers.
// Before the clock held, a sweep at the late time reclaimed entries on one
// worker's table only, and -j 1 and -j 2 disagreed (found by FuzzReplay).
func TestClockNeverGoesBack(t *testing.T) {
	src := multiConnCapture(t, 200, 11)
	r, err := capture.NewReader(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Unix(0, p.Time)
		if n == 300 {
			ts = ts.Add(10 * time.Hour)
		}
		if err := w.WritePacket(ts, p.Data); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 600 {
		t.Fatalf("only %d records", n)
	}
	data := buf.Bytes()

	var want [2]string
	for i, j := range []string{"1", "2", "3"} {
		for k, format := range []string{"jsonl", "summary"} {
			code, out, errs := runCmd(t, data, "replay", "-format", format, "-j", j, "-")
			if code != 0 {
				t.Fatalf("-j %s -format %s: status %d: %s", j, format, code, errs)
			}
			out = throughputLine.ReplaceAllString(out, "")
			if i == 0 {
				want[k] = out
				continue
			}
			if out != want[k] {
				t.Errorf("-j %s -format %s differs from -j 1 at %s", j, format, firstDiff(want[k], out))
			}
		}
	}
	if !strings.Contains(want[1], "packets stamped earlier than the packet before them") {
		t.Errorf("summary does not report the held clock:\n%s", want[1])
	}
	// After the late record every connection starts over: NEW again.
	lines := strings.Split(want[0], "\n")
	news := 0
	for _, l := range lines[len(lines)/2:] {
		if strings.Contains(l, `"ct":"NEW"`) {
			news++
		}
	}
	if news == 0 {
		t.Errorf("no NEW packet after the clock jumped ten hours")
	}
}
