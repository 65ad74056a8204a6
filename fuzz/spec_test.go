package fuzz

import (
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

// FuzzSpec: spec.Parse on arbitrary text never panics; when the text
// loads, Format and Parse round-trip to an equal spec, and a rejection is
// an error list whose every entry carries file:line.
func FuzzSpec(f *testing.F) {
	for _, p := range spec.Profiles() {
		src, err := spec.Source(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := spec.Parse("fuzz.spec", src)
		if err != nil {
			list, ok := err.(spec.ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty spec.ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.spec" || e.Line < 1 {
					t.Fatalf("error without file:line: %q", e.Error())
				}
			}
			return
		}
		p, err := spec.Parse("again.spec", s.Format())
		if err != nil {
			t.Fatalf("formatted spec does not load: %v\n%s", err, s.Format())
		}
		if !spec.Equal(s, p) {
			t.Fatalf("Parse(Format(s)) differs from s")
		}
	})
}
