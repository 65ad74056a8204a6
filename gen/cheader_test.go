package gen

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

// TestCHeaderTables reads the numeric tables back out of each profile's C
// header and compares them with the compiled spec, so that the C target
// carries the same table as fsm/zz_profiles.go without a C compiler here
// (ebpf/c's tests compile it and run it against fsm).
func TestCHeaderTables(t *testing.T) {
	for _, name := range spec.Profiles() {
		s := spec.MustLoad(name)
		c := s.Compile()
		h := string(CHeader(s))
		p := "tcpct_" + name
		check := func(array string, want []uint8) {
			t.Helper()
			got := cArray(t, h, array)
			if len(got) != len(want) {
				t.Fatalf("%s: %s has %d values, want %d", name, array, len(got), len(want))
			}
			for i := range want {
				if got[i] != int64(want[i]) {
					t.Fatalf("%s: %s[%d] = %d, want %d", name, array, i, got[i], want[i])
				}
			}
		}
		check(p+"_cells", c.Cells[:])
		check(p+"_class_of", c.ClassOf[:])
		check(p+"_timeout_knob", c.TimeoutKnob[:])
		check(p+"_create", c.Create[:])
		ok := make([]uint8, 256)
		for i, v := range c.FlagsOK {
			if v {
				ok[i] = 1
			}
		}
		check(p+"_flags_ok", ok)
		defaults := cArray(t, h, p+"_knob_default")
		for i, k := range s.Knobs {
			if defaults[i] != k.Default {
				t.Errorf("%s: knob %s default %d, want %d", name, k.Name, defaults[i], k.Default)
			}
		}
		for _, want := range []string{
			"#define TCPCT_" + strings.ToUpper(name) + "_NUM_STATES " + strconv.Itoa(c.NumStates) + "\n",
			"#define TCPCT_" + strings.ToUpper(name) + "_FEATURES 0x" + strconv.FormatUint(uint64(c.Features)|0x100, 16)[1:] + "\n",
		} {
			if !strings.Contains(h, want) {
				t.Errorf("%s: header lacks %q", name, want)
			}
		}
	}
}

// cArray returns the numbers of a C array initialiser, comments skipped.
func cArray(t *testing.T, h, name string) []int64 {
	t.Helper()
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(name) + `\[[^\]]*\] = \{(.*?)\};`)
	m := re.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("no array %s in the header", name)
	}
	body := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(m[1], "")
	var out []int64
	for _, f := range strings.FieldsFunc(body, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		v, err := strconv.ParseInt(f, 0, 64)
		if err != nil {
			t.Fatalf("%s: %q is not a number", name, f)
		}
		out = append(out, v)
	}
	return out
}
