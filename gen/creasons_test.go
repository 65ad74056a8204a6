package gen

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
)

// The C reason codes are fsm's: the same number for each Reason, the same
// text, and as many of them. (The generator reads fsm/reason.go as text;
// this test, which may import fsm, holds it to the compiled package.)
func TestCReasonsMatchFSM(t *testing.T) {
	h, err := CReasons("..")
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^#define TCPCT_REASON_(\w+) (\d+)$`).FindAllStringSubmatch(string(h), -1)
	n := 0
	for fsm.Reason(n).String() != "reason(?)" {
		n++
	}
	if len(defs) != n || !strings.Contains(string(h), fmt.Sprintf("#define TCPCT_NUM_REASONS %d\n", n)) {
		t.Fatalf("%d reason codes in the header, fsm has %d", len(defs), n)
	}
	for i, d := range defs {
		if d[2] != fmt.Sprint(i) {
			t.Errorf("%s is %s, want %d", d[1], d[2], i)
		}
		if want := fmt.Sprintf("%q", fsm.Reason(i).String()); !strings.Contains(string(h), "\t"+want+",\n") {
			t.Errorf("reason %d (%s): text %s not in the header", i, d[1], want)
		}
	}
}

func TestParseReasonsRejectsLayoutChange(t *testing.T) {
	src := "const (\n\tReasonNone Reason = iota\n\tReasonA\n\tReasonB = 7\n\tnumReasons\n)\n"
	if _, _, err := parseReasons([]byte(src)); err == nil {
		t.Error("an explicit value in the const block was accepted")
	}
	if _, _, err := parseReasons([]byte("package fsm\n")); err == nil {
		t.Error("a file without the const block was accepted")
	}
}
