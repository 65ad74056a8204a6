package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/spec"
)

// editCell returns the linux spec with one cell of a table row changed:
// in table dir, row class, the column of state col (0 = sNO) becomes out.
func editCell(t *testing.T, dir, class string, col int, out string) []byte {
	t.Helper()
	src, err := spec.Source("linux")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	in := ""
	done := false
	for i, l := range lines {
		if strings.HasPrefix(l, "table ") {
			in = strings.TrimSpace(strings.TrimPrefix(l, "table "))
			continue
		}
		f := strings.Fields(l)
		if in == dir && len(f) == 11 && f[0] == class {
			f[1+col] = out
			lines[i] = strings.Join(f, "  ")
			done = true
		}
	}
	if !done {
		t.Fatalf("no row %s in table %s", class, dir)
	}
	return []byte(strings.Join(lines, "\n"))
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An edited cell changes the verdict of exactly the packets that hit it:
// the final ACK of a FIN close (original ack in LAST_ACK, sTW in the
// kernel's table) made INVALID.
func TestSpecFlagEditedCell(t *testing.T) {
	file := writeTemp(t, "edited.spec", editCell(t, "original", "ack", 6, "sIV"))
	data := multiConnCapture(t, 600, 7)
	code, base, errs := runCmd(t, data, "replay", "-format", "jsonl", "-j", "1", "-")
	if code != 0 {
		t.Fatalf("baseline: %d %s", code, errs)
	}
	code, edited, errs := runCmd(t, data, "replay", "-format", "jsonl", "-j", "1", "-spec", file, "-")
	if code != 0 {
		t.Fatalf("-spec: %d %s", code, errs)
	}
	bl, el := strings.Split(base, "\n"), strings.Split(edited, "\n")
	if len(bl) != len(el) {
		t.Fatalf("%d lines with the built-in profile, %d with -spec", len(bl), len(el))
	}
	hits := 0
	for i := range bl {
		hit := strings.Contains(bl[i], `"dir":"original"`) && strings.Contains(bl[i], `"class":"ack"`) && strings.Contains(bl[i], `"old":"LAST_ACK"`)
		if hit {
			hits++
			if !strings.Contains(el[i], `"ct":"INVALID"`) || bl[i] == el[i] {
				t.Errorf("line %d hits the edited cell but is not INVALID:\nbuilt-in %s\n-spec    %s", i+1, bl[i], el[i])
			}
		} else if bl[i] != el[i] {
			t.Errorf("line %d does not hit the edited cell but changed:\nbuilt-in %s\n-spec    %s", i+1, bl[i], el[i])
		}
	}
	if hits == 0 {
		t.Fatal("no packet of the capture hits original ack in LAST_ACK")
	}
	t.Logf("%d of %d packets hit the edited cell", hits, len(bl)-1)

	// A broken spec is an error naming file and line.
	bad := writeTemp(t, "bad.spec", editCell(t, "original", "ack", 6, "sXX"))
	if code, _, errs := runCmd(t, data, "replay", "-spec", bad, "-"); code == 0 || !strings.Contains(errs, "bad.spec:") {
		t.Errorf("a spec with an unknown state: status %d, stderr %q", code, errs)
	}
	// -profile must agree with the spec.
	if code, _, errs := runCmd(t, data, "replay", "-profile", "tutorial", "-spec", file, "-"); code == 0 || !strings.Contains(errs, "profile linux") {
		t.Errorf("-profile tutorial with a linux spec: status %d, stderr %q", code, errs)
	}
}

// A built-in profile and the same spec read from its file at run time
// give byte-identical output on every recorded kernel trace.
func TestSpecFlagSameAsBuiltin(t *testing.T) {
	for _, profile := range []string{"linux", "tutorial"} {
		src, err := spec.Source(profile)
		if err != nil {
			t.Fatal(err)
		}
		file := writeTemp(t, profile+".spec", src)
		for _, rec := range tracegen.Recordings {
			f, err := os.Open(filepath.Join("..", "..", "tcpcttest", "testdata", rec.Name+".pcap.gz"))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(zr)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			var knobs []string
			if profile == "linux" {
				for _, s := range rec.Sysctls {
					knobs = append(knobs, "-sysctl", s)
				}
			}
			for _, format := range []string{"jsonl", "events", "conntrack"} {
				args := append([]string{"replay", "-format", format, "-profile", profile}, knobs...)
				_, want, _ := runCmd(t, data, append(args, "-")...)
				code, got, errs := runCmd(t, data, append(args, "-spec", file, "-")...)
				if code != 0 || got != want || want == "" {
					t.Errorf("%s %s -format %s: -spec differs from the built-in profile (status %d, %s)\n%s", profile, rec.Name, format, code, errs, firstDiff(want, got))
				}
			}
		}
	}
}

// replay -h lists every knob of every profile, from the profiles
// themselves (withKnobs), so a knob added to a spec appears in the help.
func TestHelpListsProfileKnobs(t *testing.T) {
	_, out, _ := runCmd(t, nil, "replay", "-h")
	if strings.Contains(out, "%KNOBS%") {
		t.Fatal("replay -h still has the %KNOBS% placeholder")
	}
	for _, p := range fsm.Profiles() {
		if !strings.Contains(out, "  "+p.Name+":") {
			t.Errorf("replay -h has no knob list of profile %s", p.Name)
		}
		for _, k := range p.Knobs {
			if !strings.Contains(out, " "+k.Name+",") && !strings.Contains(out, " "+k.Name+"\n") {
				t.Errorf("replay -h does not list knob %s of profile %s", k.Name, p.Name)
			}
		}
	}
}
