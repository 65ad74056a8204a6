package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// tcpct docs writes exactly the documents gen renders, byte for byte,
// plus an SVG per profile when dot is installed.
func TestDocsWritesReference(t *testing.T) {
	_, hasDot := exec.LookPath("dot")
	for _, c := range []struct {
		args     []string
		profiles []string
	}{
		{nil, spec.Profiles()},
		{[]string{"-profile", "tutorial"}, []string{"tutorial"}},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		code, out, errs := runCmd(t, nil, append([]string{"docs", "-o", dir}, c.args...)...)
		if code != 0 {
			t.Fatalf("docs %v: status %d, stderr %s", c.args, code, errs)
		}
		var specs []*spec.Spec
		for _, p := range c.profiles {
			specs = append(specs, spec.MustLoad(p))
		}
		want := map[string][]byte{}
		for _, f := range gen.Docs(specs, nil) {
			want[f.Path] = f.Data
		}
		if hasDot == nil {
			for _, p := range c.profiles {
				want[p+".svg"] = nil
			}
		}
		var got []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				got = append(got, filepath.ToSlash(rel))
			}
			return err
		})
		var wantNames []string
		for n := range want {
			wantNames = append(wantNames, n)
		}
		sort.Strings(wantNames)
		if !slices.Equal(got, wantNames) {
			t.Errorf("docs %v wrote %v, want %v", c.args, got, wantNames)
		}
		for name, data := range want {
			b, err := os.ReadFile(filepath.Join(dir, name))
			switch {
			case err != nil:
				t.Error(err)
			case strings.HasSuffix(name, ".svg"):
				if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("<title>ESTABLISHED</title>")) {
					t.Errorf("%s is not the state diagram", name)
				}
			case !bytes.Equal(b, data):
				t.Errorf("%s differs from gen.Docs", name)
			}
			if !strings.Contains(out, filepath.Join(dir, name)+"\n") {
				t.Errorf("%s not listed on stdout:\n%s", name, out)
			}
		}
		if c.profiles[0] == "tutorial" {
			if _, err := os.Stat(filepath.Join(dir, "profile-linux.md")); err == nil {
				t.Error("-profile tutorial wrote the linux page")
			}
		}
	}
}

func TestDocsUsage(t *testing.T) {
	for _, args := range [][]string{{"docs"}, {"docs", "-o", t.TempDir(), "-profile", "bsd"}, {"docs", "-o", t.TempDir(), "extra"}} {
		if code, _, errs := runCmd(t, nil, args...); code != exitUsage || errs == "" {
			t.Errorf("%v: status %d, stderr %q; want usage error", args, code, errs)
		}
	}
	if code, out, _ := runCmd(t, nil, "docs", "-h"); code != 0 || !strings.Contains(out, "tcpct docs -o DIR") {
		t.Errorf("docs -h: status %d, %q", code, out)
	}
}

// specSchema compiles gen.SpecSchema (docs/spec.schema.json, JSON Schema
// draft 2020-12) with a maintained validator, so that the test checks the
// schema as any consumer's validator reads it, not a subset of it.
func specSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(gen.SpecSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("spec.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("spec.schema.json")
	if err != nil {
		t.Fatalf("gen.SpecSchema is not a valid JSON Schema: %v", err)
	}
	return sch
}

// validate checks a JSON document against the schema.
func validate(sch *jsonschema.Schema, out string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// compileSchema compiles a JSON Schema document (with format assertions)
// through github.com/santhosh-tekuri/jsonschema, a maintained validator of
// every draft up to 2020-12; tcpct's tests used to carry a hand-written
// validator of the subset the spec schema used.
func compileSchema(t *testing.T, name string, data []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// The JSON form of each profile validates against the documented schema,
// and its cross-references hold: states, classes and knobs named by other
// fields exist, and there is one cell per (dir, class, state).
func TestSpecJSONMatchesSchema(t *testing.T) {
	schema := specSchema(t)
	committed, err := os.ReadFile("../../docs/spec.schema.json")
	if err != nil || !bytes.Equal(committed, gen.SpecSchema()) {
		t.Errorf("docs/spec.schema.json is missing or stale (%v): run go generate ./...", err)
	}
	for _, p := range spec.Profiles() {
		code, out, errs := runCmd(t, nil, "spec", "-profile", p, "-format", "json")
		if code != 0 {
			t.Fatalf("spec -profile %s -format json: status %d: %s", p, code, errs)
		}
		if err := validate(schema, out); err != nil {
			t.Errorf("spec -profile %s -format json does not match docs/spec.schema.json (gen/schema.go):\n%v", p, err)
		}
		var s specJSON
		json.Unmarshal([]byte(out), &s)
		states, classes, knobs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, st := range s.States {
			states[st.Name] = true
		}
		for _, c := range s.Classes {
			classes[c.Name] = true
		}
		for _, k := range s.Knobs {
			knobs[k.Name] = true
		}
		if !states[s.Initial] {
			t.Errorf("%s: initial %q is not a state", p, s.Initial)
		}
		for _, st := range s.States {
			if !knobs[st.TimeoutKnob] {
				t.Errorf("%s: state %s: timeout knob %q is not a knob", p, st.Name, st.TimeoutKnob)
			}
		}
		for _, c := range s.Create {
			if !classes[c.Class] || c.When != "" && !knobs[c.When] {
				t.Errorf("%s: create %+v names an unknown class or knob", p, c)
			}
		}
		seen := map[string]bool{}
		for _, c := range s.Cells {
			key := c.Dir + " " + c.Class + " " + c.Old
			if seen[key] || !classes[c.Class] || !states[c.Old] || !states[c.Outcome] && c.Outcome != "INVALID" && c.Outcome != "IGNORE" {
				t.Errorf("%s: bad or repeated cell %+v", p, c)
			}
			seen[key] = true
		}
		if len(seen) != 2*len(s.Classes)*len(s.States) {
			t.Errorf("%s: %d cells, want %d", p, len(seen), 2*len(s.Classes)*len(s.States))
		}
	}
}

// The schema rejects what it forbids: extra and missing fields, wrong
// types, values outside an enum.
func TestSchemaValidatorRejects(t *testing.T) {
	schema := specSchema(t)
	_, out, _ := runCmd(t, nil, "spec", "-format", "json")
	for name, mutate := range map[string]func(m map[string]any){
		"extra field":   func(m map[string]any) { m["extra"] = 1 },
		"missing field": func(m map[string]any) { delete(m, "cells") },
		"wrong type":    func(m map[string]any) { m["knobs"].([]any)[0].(map[string]any)["default"] = "1" },
		"bad enum":      func(m map[string]any) { m["cells"].([]any)[0].(map[string]any)["dir"] = "sideways" },
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(out))
		m := v.(map[string]any)
		mutate(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(schema, string(b)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
