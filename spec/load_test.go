package spec

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltinProfilesLoad(t *testing.T) {
	if diff := cmp.Diff([]string{"linux", "tutorial"}, Profiles()); diff != "" {
		t.Fatalf("Profiles() (-want +got):\n%s", diff)
	}
	for _, name := range Profiles() {
		if _, err := Load(name); err != nil {
			t.Errorf("profile %s:\n%v", name, err)
		}
	}
}

// The linux profile must carry the kernel's tables exactly; spot-check the
// cells the reference calls out, so a slip in the grid fails here and not
// only in the kernel-differential suite.
func TestLinuxCellsMatchKernel(t *testing.T) {
	s := MustLoad("linux")
	cell := func(d Dir, class, state string) string {
		return s.OutcomeString(s.Table[d][s.ClassIndex(class)][s.StateIndex(state)].Outcome)
	}
	for _, c := range []struct {
		d            Dir
		class, state string
		want         string
	}{
		{Original, "syn", "NONE", "sSS"},
		{Original, "syn", "TIME_WAIT", "sSS"},
		{Original, "syn", "ESTABLISHED", "sIG"},
		{Original, "synack", "SYN_SENT2", "sSR"},
		{Original, "ack", "NONE", "sES"},
		{Original, "ack", "LAST_ACK", "sTW"},
		{Reply, "syn", "SYN_SENT", "sS2"},
		{Reply, "syn", "TIME_WAIT", "sSS"},
		{Reply, "synack", "SYN_SENT", "sSR"},
		{Reply, "synack", "ESTABLISHED", "sIG"},
		{Reply, "ack", "SYN_SENT", "sIG"},
		{Reply, "ack", "SYN_RECV", "sSR"},
		{Reply, "rst", "NONE", "sIV"},
		{Reply, "fin", "CLOSE_WAIT", "sLA"},
	} {
		if got := cell(c.d, c.class, c.state); got != c.want {
			t.Errorf("%s %s %s = %s, want %s", c.d, c.class, c.state, got, c.want)
		}
	}
	if n := len(s.States); n != 10 {
		t.Errorf("linux has %d states, want 10", n)
	}
	if n := len(s.Classes); n != 6 {
		t.Errorf("linux has %d classes, want 6", n)
	}
}

func TestTutorialTimeoutsAreTable72(t *testing.T) {
	s := MustLoad("tutorial")
	want := map[string]int64{
		"NONE": 1800, "ESTABLISHED": 432000, "SYN_SENT": 120, "SYN_RECV": 60, "FIN_WAIT": 120,
		"TIME_WAIT": 120, "CLOSE": 10, "CLOSE_WAIT": 43200, "LAST_ACK": 30, "LISTEN": 120,
	}
	var order []string
	for _, st := range s.States {
		order = append(order, st.Name)
		k, _ := s.Knob(st.Timeout)
		if k.Default != want[st.Name] {
			t.Errorf("%s timeout = %d s, Table 7-2 says %d s", st.Name, k.Default, want[st.Name])
		}
	}
	// Table 7-2 lists the states in the 2.4 enum order.
	if got := strings.Join(order, " "); got != "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN" {
		t.Errorf("state order = %s", got)
	}
	for _, alias := range []string{"ip_conntrack_tcp_loose", "ip_ct_tcp_timeout_close_wait"} {
		if _, ok := s.Knob(alias); !ok {
			t.Errorf("tutorial profile does not accept the seed's knob name %s", alias)
		}
	}
}

// ignorePositions makes cmp.Diff skip where a spec element was read from
// (file name and line numbers), as Equal does.
var ignorePositions = cmp.FilterPath(func(p cmp.Path) bool {
	f, ok := p.Last().(cmp.StructField)
	return ok && (f.Name() == "Line" || f.Name() == "File")
}, cmp.Ignore())

func TestFormatRoundTrip(t *testing.T) {
	for _, name := range Profiles() {
		s := MustLoad(name)
		back, err := Parse("formatted", s.Format())
		if err != nil {
			t.Fatalf("%s: formatted spec does not parse:\n%v\n%s", name, err, s.Format())
		}
		if diff := cmp.Diff(s, back, ignorePositions); diff != "" {
			t.Errorf("%s: round trip changed the spec (-loaded +formatted and parsed again):\n%s", name, diff)
		}
		if !Equal(s, back) {
			t.Errorf("%s: Equal says the round trip changed the spec", name)
		}
		if string(back.Format()) != string(s.Format()) {
			t.Errorf("%s: Format is not a fixed point", name)
		}
	}
}

// Each corruption of the linux spec must be rejected with the line that is
// wrong and a message saying what is wrong.
func TestParseErrors(t *testing.T) {
	src, _ := Source("linux")
	lines := strings.Split(string(src), "\n")
	find := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starting %q", prefix)
		return -1
	}
	for _, c := range []struct {
		name    string
		edit    func([]string) []string
		line    func() int // 1-based line the error must name; 0 = any
		message string
	}{
		{"unknown cell", func(l []string) []string {
			i := find("synack    sIV")
			l[i] = strings.Replace(l[i], "sSR", "sXX", 1)
			return l
		}, func() int { return find("synack    sIV") + 1 }, `unknown cell "sXX"`},
		{"missing row", func(l []string) []string {
			i := find("fin       sIV")
			l[i] = ""
			return l
		}, nil, "no row for class fin"},
		{"duplicate row", func(l []string) []string {
			i := find("ack       sES")
			l[i+1] = l[i]
			return l
		}, func() int { return find("ack       sES") + 2 }, "class ack has a second row"},
		{"short row", func(l []string) []string {
			i := find("ack       sES")
			l[i] = strings.TrimSuffix(l[i], "sIV")
			return l
		}, func() int { return find("ack       sES") + 1 }, "row ack has 9 cells, the header has 10"},
		{"zero timeout", func(l []string) []string {
			i := find("knob  tcp_timeout_close ")
			l[i] = strings.Replace(l[i], " 10 ", " 0 ", 1)
			return l
		}, func() int { return find("knob  tcp_timeout_close ") + 1 }, "must be a positive number of seconds"},
		{"unknown timeout knob", func(l []string) []string {
			i := find("state  CLOSE ")
			l[i] = strings.Replace(l[i], "tcp_timeout_close", "tcp_timeout_nope", 1)
			return l
		}, func() int { return find("state  CLOSE ") + 1 }, `unknown timeout knob "tcp_timeout_nope"`},
		{"unreachable state", func(l []string) []string {
			// Nothing but the reply syn row enters SYN_SENT2.
			for _, p := range []string{"syn       sIV  sS2", "syn       sSS  sSS"} {
				i := find(p)
				l[i] = strings.ReplaceAll(l[i], "sS2", "sIV")
			}
			return l
		}, func() int { return find("state  SYN_SENT2") + 1 }, "state SYN_SENT2 is unreachable"},
		{"unexplained cell", func(l []string) []string {
			i := find("why  *         none")
			l[i] = ""
			return l
		}, nil, "has no why line"},
		{"unknown directive", func(l []string) []string {
			return append(l, "transition syn sNO sSS")
		}, nil, `unknown directive "transition"`},
		{"unterminated quote", func(l []string) []string {
			i := find("title")
			l[i] = `title "Linux`
			return l
		}, func() int { return find("title") + 1 }, "unterminated quoted field"},
		{"create from invalid cell", func(l []string) []string {
			return append(l, "create fin")
		}, nil, "can create nothing"},
		{"unknown flag", func(l []string) []string {
			i := find("flags-masked")
			l[i] = "flags-masked ECE NS"
			return l
		}, func() int { return find("flags-masked") + 1 }, `unknown TCP flag "NS"`},
		// Names are written bare by Format: a quoted one with a space or a
		// quote would load but not load again (TestGopterSpecLoader found
		// the ALIASES field `" "`).
		{"quoted alias", func(l []string) []string {
			i := find("knob  tcp_timeout_time_wait ")
			l[i] = `knob tcp_timeout_time_wait 120 seconds " "TIME_WAIT"`
			return l
		}, func() int { return find("knob  tcp_timeout_time_wait ") + 1 }, `knob tcp_timeout_time_wait: alias " ": want a word`},
		{"empty alias", func(l []string) []string {
			i := find("knob  tcp_loose ")
			l[i] = strings.Replace(l[i], " -  ", " a,,b ", 1)
			return l
		}, func() int { return find("knob  tcp_loose ") + 1 }, `alias "": want a word`},
		{"state name with a space", func(l []string) []string {
			i := find("state  CLOSE ")
			l[i] = strings.Replace(l[i], "CLOSE", `"CLO SE"`, 1)
			return l
		}, func() int { return find("state  CLOSE ") + 1 }, `state name "CLO SE": want a word`},
		{"catch-all not last", func(l []string) []string {
			i := find("classify  none")
			l[i], l[i-1] = l[i-1], l[i]
			return l
		}, nil, "must be the last rule"},
	} {
		t.Run(c.name, func(t *testing.T) {
			edited := c.edit(append([]string(nil), lines...))
			_, err := Parse("linux.spec", []byte(strings.Join(edited, "\n")))
			if err == nil {
				t.Fatal("corrupted spec accepted")
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("error %q does not say %q", err, c.message)
			}
			if c.line != nil {
				want := "linux.spec:" + strconv.Itoa(c.line()) + ":"
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

func TestParseNeverPanicsOnGarbage(t *testing.T) {
	for _, src := range []string{"", "\x00\x01", "table original\nold sNO\n", "class a a a\ntable reply\nold\na\n", `why "`} {
		if _, err := Parse("g", []byte(src)); err == nil {
			t.Errorf("garbage %q accepted", src)
		}
	}
}

// CellOutcome reads back what Compile wrote: every cell of both profiles.
func TestCellOutcomeInvertsCompile(t *testing.T) {
	for _, name := range Profiles() {
		s := MustLoad(name)
		c := s.Compile()
		for d := range s.Table {
			for ci, row := range s.Table[d] {
				for si, cell := range row {
					got := CellOutcome(c.Cells[CellIndex(Dir(d), ci, si)])
					if got != cell.Outcome {
						t.Errorf("%s %s/%s/%s: compiled cell reads back as %+v, table has %+v",
							name, Dir(d), s.Classes[ci], s.States[si].Name, got, cell.Outcome)
					}
				}
			}
		}
	}
}
