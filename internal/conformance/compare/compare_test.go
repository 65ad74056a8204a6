package compare

import (
	"bytes"
	"strings"
	"testing"
)

func mustRead(t *testing.T, s string) []Line {
	t.Helper()
	l, err := Read(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestIdentical(t *testing.T) {
	a := mustRead(t, `{"i":0,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120}
{"i":1,"ct":"INVALID","reason":"x"}
`)
	r := Compare(a, a, Options{})
	if !r.Agree() || r.AllAgree != 2 || r.Packets != 2 || r.ReasonA != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestTimeoutTolerance(t *testing.T) {
	a := mustRead(t, `{"i":0,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120}`)
	b := mustRead(t, `{"i":0,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":119}`)
	c := mustRead(t, `{"i":0,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":118}`)
	if r := Compare(a, b, Options{}); !r.Agree() {
		t.Error("119 vs 120 should agree within 1 s")
	}
	if r := Compare(a, b, Options{TimeoutTolerance: -1}); r.Agree() {
		t.Error("119 vs 120 should differ with an exact comparison")
	}
	r := Compare(a, c, Options{})
	if r.Agree() || len(r.Diffs) != 1 || strings.Join(r.Diffs[0].Fields, ",") != "timeout" {
		t.Errorf("118 vs 120: %+v", r)
	}
	if r.Patterns["timeout"]["120 -> 118"] != 1 {
		t.Errorf("patterns %v", r.Patterns)
	}
}

func TestOmittedFieldsAndMissing(t *testing.T) {
	a := mustRead(t, `{"i":0,"ct":"ESTABLISHED","dir":"reply"}
{"i":1,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120,"assured":true}
{"i":3,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120}`)
	b := mustRead(t, `{"i":0,"ct":"ESTABLISHED","dir":"reply","state":"CLOSE","timeout":10}
{"i":1,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120,"assured":false}
{"i":2,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120}`)
	r := Compare(a, b, Options{})
	if r.Packets != 4 || r.OnlyA != 1 || r.OnlyB != 1 || r.TotalDiffs != 4 {
		t.Fatalf("%+v", r)
	}
	if got := strings.Join(r.Diffs[0].Fields, ","); got != "state,timeout" {
		t.Errorf("packet 0 fields %q", got)
	}
	if got := strings.Join(r.Diffs[1].Fields, ","); got != "assured" {
		t.Errorf("packet 1 fields %q", got)
	}
	if r.Diffs[2].Fields[0] != "missing" || r.Diffs[2].A != nil || r.Diffs[3].B != nil {
		t.Errorf("missing lines: %+v %+v", r.Diffs[2], r.Diffs[3])
	}
	for _, f := range r.Fields {
		want := map[string]int{"state": 1, "timeout": 1, "assured": 1}[f.Name]
		if f.Disagree != want || f.Agree+f.Disagree != 2 {
			t.Errorf("%s: %+v", f.Name, f)
		}
	}
}

func TestContextPerConnection(t *testing.T) {
	var a, b strings.Builder
	keys := map[int]string{}
	for i := 0; i < 12; i++ {
		line := `{"i":` + itoa(i) + `,"ct":"ESTABLISHED","dir":"original","state":"ESTABLISHED","timeout":300}` + "\n"
		a.WriteString(line)
		if i == 10 {
			line = strings.Replace(line, "ESTABLISHED\",\"timeout", "CLOSE\",\"timeout", 1)
		}
		b.WriteString(line)
		keys[i] = []string{"x", "y"}[i%2]
	}
	r := Compare(mustRead(t, a.String()), mustRead(t, b.String()), Options{Keys: keys, Context: 3})
	if len(r.Diffs) != 1 {
		t.Fatalf("%+v", r)
	}
	var got []int
	for _, c := range r.Diffs[0].Context {
		got = append(got, c.I)
	}
	if len(got) != 3 || got[0] != 4 || got[1] != 6 || got[2] != 8 {
		t.Errorf("context %v, want [4 6 8]", got)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "packet 10: state differ (connection x)") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := Read(strings.NewReader("{\"ct\":\"NEW\"}\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("no i: %v", err)
	}
	if _, err := Read(strings.NewReader("\n{\"i\":0}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad json: %v", err)
	}
}

func TestFlowKeys(t *testing.T) {
	// Hand-built IPv4 TCP headers in both directions.
	p := func(src, dst [4]byte, sp, dp byte) []byte {
		b := make([]byte, 40)
		b[0], b[9] = 0x45, 6
		copy(b[12:], src[:])
		copy(b[16:], dst[:])
		b[21], b[23] = sp, dp
		return b
	}
	k := FlowKeys([][]byte{p([4]byte{127, 1, 0, 1}, [4]byte{127, 2, 0, 1}, 5, 80), nil, p([4]byte{127, 2, 0, 1}, [4]byte{127, 1, 0, 1}, 80, 5)})
	if k[0] == "" || k[0] != k[2] || k[1] != "" {
		t.Errorf("keys %v", k)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
