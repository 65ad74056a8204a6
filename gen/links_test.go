package gen

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/spec"
)

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceRE = regexp.MustCompile("^\\s*(```|~~~)")
)

// links returns the relative link targets of a Markdown document, outside
// code blocks.
func links(doc string) []string {
	var out []string
	inFence := false
	for _, l := range strings.Split(doc, "\n") {
		if fenceRE.MatchString(l) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
			if t := m[1]; !strings.Contains(t, "://") && !strings.HasPrefix(t, "mailto:") {
				out = append(out, t)
			}
		}
	}
	return out
}

func checkLinks(t *testing.T, what string, set map[string][]byte, root string) {
	t.Helper()
	for _, e := range brokenLinks(set, root) {
		t.Errorf("%s: %s", what, e)
	}
}

// brokenLinks checks every relative link of the Markdown files of set:
// the target is a file of set (or, with root set, one on disk) and its
// fragment, when the target is Markdown, one of the target's anchors.
func brokenLinks(set map[string][]byte, root string) (errs []string) {
	for name, data := range set {
		if !strings.HasSuffix(name, ".md") {
			continue
		}
		for _, l := range links(string(data)) {
			target, frag, _ := strings.Cut(l, "#")
			p := name
			if target != "" {
				p = path.Join(path.Dir(name), target)
			}
			body, ok := set[p]
			if !ok && root != "" {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
					ok = true
					body, _ = os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
				}
			}
			if !ok {
				errs = append(errs, fmt.Sprintf("%s links %s: no such file", name, l))
				continue
			}
			if frag != "" && strings.HasSuffix(p, ".md") && !Anchors(string(body))[frag] {
				errs = append(errs, fmt.Sprintf("%s links %s: %s has no anchor #%s", name, l, p, frag))
			}
		}
	}
	sort.Strings(errs)
	return errs
}

func TestBrokenLinksFound(t *testing.T) {
	set := map[string][]byte{
		"a.md":     []byte("# Top\n\n## Part two\n\n[ok](b.md#x-y) [ok](#part-two) [bad](#nope) [bad](c.md) [web](https://example.org/#z)\n"),
		"b.md":     []byte("## X y\n```\n# not a heading\n[not a link](zz.md)\n```\n[bad](a.md#not-a-heading)\n"),
		"sub/c.md": []byte("[ok](../a.md#top)\n"),
	}
	got := brokenLinks(set, "")
	want := []string{
		"a.md links #nope: a.md has no anchor #nope",
		"a.md links c.md: no such file",
		"b.md links a.md#not-a-heading: a.md has no anchor #not-a-heading",
	}
	if !slices.Equal(got, want) {
		t.Errorf("brokenLinks = %q, want %q", got, want)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Transitions, original direction":          "transitions-original-direction",
		"Window tracking (RFC 793 §3.3, RFC 7323)": "window-tracking-rfc-793-33-rfc-7323",
		"1. no-new-after-reply (both profiles)":    "1-no-new-after-reply-both-profiles",
		"reply syn_sent2":                          "reply-syn_sent2",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// The committed documents' links resolve: every file of docs/ (generated
// or hand-written; internal/cmd/specgen's TestCommittedFilesAreCurrent
// keeps the generated ones current) and the module README, against each
// other and the files on disk.
func TestLinksResolveInTree(t *testing.T) {
	set := map[string][]byte{}
	docs, _ := filepath.Glob(filepath.Join("..", "docs", "*"))
	for _, p := range append(docs, filepath.Join("..", "README.md")) {
		rel := filepath.ToSlash(strings.TrimPrefix(p, ".."+string(filepath.Separator)))
		if data, err := os.ReadFile(p); err == nil {
			set[rel] = data
		}
	}
	if len(set) < 10 {
		t.Fatalf("only %d documents found under ../docs", len(set))
	}
	checkLinks(t, "tree", set, "..")
}

// The document set that `tcpct docs` writes links only within itself,
// for all profiles and for each one alone.
func TestDocsSelfContained(t *testing.T) {
	specs, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	cases := [][]*spec.Spec{specs}
	for _, s := range specs {
		cases = append(cases, []*spec.Spec{s})
	}
	for _, c := range cases {
		set := map[string][]byte{}
		for _, f := range Docs(c, nil) {
			set[f.Path] = f.Data
		}
		var names []string
		for _, s := range c {
			names = append(names, s.Profile)
			for _, want := range []string{"profile-" + s.Profile + ".md", s.Profile + ".dot"} {
				if set[want] == nil {
					t.Errorf("Docs(%s) lacks %s", s.Profile, want)
				}
			}
		}
		for _, want := range []string{"README.md", "spec-schema.md", "spec.schema.json"} {
			if set[want] == nil {
				t.Errorf("Docs(%v) lacks %s", names, want)
			}
		}
		if _, ok := set["profiles-compared.md"]; ok != (len(c) > 1) {
			t.Errorf("Docs(%v): profiles-compared.md present = %v", names, ok)
		}
		checkLinks(t, strings.Join(names, "+"), set, "")
	}
}
