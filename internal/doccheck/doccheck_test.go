package doccheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fdac824a/tcpct/gen"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// TestDocsResolve runs every check of the package documentation over the
// repository and reports each problem with file:line.
func TestDocsResolve(t *testing.T) {
	repo, err := loadRepo(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range repo.check() {
		t.Error(p)
	}
}

// The checker finds what it is meant to find, and nothing else, on a small
// tree with one planted mistake of each kind.
func TestDocsResolvePlanted(t *testing.T) {
	tree := fstestMap{
		"go.mod":       "module example.org/m\n",
		"README.md":    "# Top\n\n## Part two\n\nSee [docs](docs/a.md#intro), [gone](docs/nope.md), [bad anchor](#part-three), [ok](#part-two), [dir](pkg), [web](https://example.org/x.md).\n\n`pkg.Thing`, `pkg.Gone`, `Thing.Do`, `Thing.Field`, `Thing.Missing`, `strings.Cut`, `pkg/a.go`, `pkg/b.go`, `a.go`, `net/ipv4/x.go`.\n\n```\n[not a link](zz.md) `pkg.Gone2`\n```\n",
		"docs/a.md":    "# Intro\n\n[up](../README.md#top) [sibling](b.md)\n",
		"pkg/a.go":     "// Package pkg does things; see [pkg.Thing], [Thing.Do], [pkg.Nothing] and\n// step.go, which is gone, and a.go, which is here.\npackage pkg\n\n// Thing is `Thing.Field` and `Thing.Other`.\ntype Thing struct{ Field int }\n\nfunc (Thing) Do() {}\n",
		"pkg/notes.md": "Cites " + "/wo" + "rk/main/x and shared/" + "reference/y.md.\n",
	}
	repo, err := loadRepo(tree.FS(t))
	if err != nil {
		t.Fatal(err)
	}
	got := repo.check()
	want := []string{
		`README.md:5: link docs/nope.md: no such file`,
		`README.md:5: link #part-three: README.md has no anchor #part-three`,
		"README.md:7: `pkg.Gone`: pkg has no Gone",
		"README.md:7: `Thing.Missing`: Thing has no member Missing",
		"README.md:7: `pkg/b.go`: no such file",
		`docs/a.md:3: link b.md: no such file`,
		`pkg/a.go:1: [pkg.Nothing]: pkg has no Nothing`,
		`pkg/a.go:1: step.go: no such file`,
		"pkg/a.go:5: `Thing.Other`: Thing has no member Other",
		`pkg/notes.md:1: cites a file outside the repository ("/wo` + `rk/")`,
		`pkg/notes.md:1: cites a file outside the repository ("shared/` + `reference")`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

// fstestMap is a tree of text files for TestDocsResolvePlanted.
type fstestMap map[string]string

func (m fstestMap) FS(t *testing.T) fs.FS {
	dir := t.TempDir()
	for name, data := range m {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return os.DirFS(dir)
}

// outside lists what marks a citation of a file that is not in the
// repository: the reference notes and the seed the project was written
// from, and absolute paths of the machine it was written on. They are
// split so that this file does not match itself.
var outside = []string{
	"/wo" + "rk/",
	"shared/" + "reference",
	"shared/" + "seed",
	"cli-" + "contract.md",
	"table-" + "performance.md",
	"linux-conntrack-" + "tcp.md",
	"/tmp/" + "tcpct",
}

// repo is what the checks need to know about the tree.
type repo struct {
	fsys  fs.FS
	files map[string]bool // every file, slash-separated, relative to the root
	dirs  map[string]bool // every directory
	base  map[string]bool // base names of all files
	top   map[string]bool // first path elements of files and directories

	pkgs    map[string]map[string]bool // package name -> top-level declarations
	types   map[string]map[string]bool // type name -> fields and methods
	embeds  map[string][]string        // type name -> embedded or aliased type names
	isType  map[string]bool
	goFiles []string
	mdFiles []string
	text    []string // every text file, for the outside check
}

func loadRepo(fsys fs.FS) (*repo, error) {
	r := &repo{
		fsys: fsys, files: map[string]bool{}, dirs: map[string]bool{}, base: map[string]bool{}, top: map[string]bool{},
		pkgs: map[string]map[string]bool{}, types: map[string]map[string]bool{}, embeds: map[string][]string{}, isType: map[string]bool{},
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil // a worktree's .git file names the main checkout
		}
		if d.IsDir() {
			r.dirs[p] = true
			r.top[strings.Split(p, "/")[0]] = true
			return nil
		}
		r.files[p] = true
		r.base[path.Base(p)] = true
		r.top[strings.Split(p, "/")[0]] = true
		inTestdata := slices.Contains(strings.Split(p, "/"), "testdata")
		switch {
		case strings.HasSuffix(p, ".go") && !inTestdata:
			r.goFiles = append(r.goFiles, p)
			r.text = append(r.text, p)
		case strings.HasSuffix(p, ".md"):
			r.mdFiles = append(r.mdFiles, p)
			r.text = append(r.text, p)
		case !inTestdata:
			r.text = append(r.text, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range r.goFiles {
		if err := r.declare(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// declare records the package, top-level declarations, types and their
// members of one Go file.
func (r *repo) declare(p string) error {
	src, err := fs.ReadFile(r.fsys, p)
	if err != nil {
		return err
	}
	f, err := parser.ParseFile(token.NewFileSet(), p, src, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	pkg := strings.TrimSuffix(f.Name.Name, "_test")
	decls := r.pkgs[pkg]
	if decls == nil {
		decls = map[string]bool{}
		r.pkgs[pkg] = decls
	}
	member := func(typ, name string) {
		if r.types[typ] == nil {
			r.types[typ] = map[string]bool{}
		}
		r.types[typ][name] = true
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				decls[d.Name.Name] = true
				continue
			}
			if typ := baseName(d.Recv.List[0].Type); typ != "" {
				member(typ, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						decls[n.Name] = true
					}
				case *ast.TypeSpec:
					name := s.Name.Name
					decls[name] = true
					r.isType[name] = true
					if r.types[name] == nil {
						r.types[name] = map[string]bool{}
					}
					if s.Assign != 0 {
						if b := baseName(s.Type); b != "" {
							r.embeds[name] = append(r.embeds[name], b)
						}
					}
					switch t := s.Type.(type) {
					case *ast.StructType:
						for _, fld := range t.Fields.List {
							if len(fld.Names) == 0 {
								if b := baseName(fld.Type); b != "" {
									member(name, b)
									r.embeds[name] = append(r.embeds[name], b)
								}
							}
							for _, n := range fld.Names {
								member(name, n.Name)
							}
						}
					case *ast.InterfaceType:
						for _, m := range t.Methods.List {
							for _, n := range m.Names {
								member(name, n.Name)
							}
						}
					}
				}
			}
		}
	}
	return nil
}

// baseName is the type name behind a receiver, field or alias type
// expression: T, *T, T[X], pkg.T.
func baseName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.SelectorExpr:
			return x.Sel.Name
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// hasMember reports whether type typ (any type of that name in the
// module, through embedded fields and aliases) has a field or method name.
func (r *repo) hasMember(typ, name string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(t string) bool {
		if seen[t] {
			return false
		}
		seen[t] = true
		if r.types[t][name] {
			return true
		}
		for _, e := range r.embeds[t] {
			if walk(e) {
				return true
			}
		}
		return false
	}
	return walk(typ)
}

var (
	identRE   = regexp.MustCompile(`^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?(?:\(\))?$`)
	docLinkRE = regexp.MustCompile(`(?:^|[\s(])\[(\*?[A-Za-z_]\w*\.[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\]`)
	fileRE    = regexp.MustCompile(`^\.?/?[\w.-]+(?:/[\w.-]+)*\.(?:go|md|spec|sh|json|dot|pcap|pcapng|gz|pgo|mod)$`)
	goFileRE  = regexp.MustCompile(`(?:^|[\s(])((?:[\w.-]+/)*[\w-]+\.go)\b`)
	mdLinkRE  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdRefRE   = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*(\S+)`)
	fenceRE   = regexp.MustCompile("^\\s*(```|~~~)")
	codeRE    = regexp.MustCompile("`([^`]+)`")
)

// paragraph is text joined from consecutive lines, with the line it starts on.
type paragraph struct {
	line int
	text string
}

// check runs every check and returns the problems, "file:line: what".
func (r *repo) check() []string {
	var out []string
	add := func(file string, line int, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
	}
	for _, p := range r.text {
		data, err := fs.ReadFile(r.fsys, p)
		if err != nil || bytes.IndexByte(data, 0) >= 0 {
			continue
		}
		for i, l := range strings.Split(string(data), "\n") {
			for _, o := range outside {
				if strings.Contains(l, o) {
					add(p, i+1, "cites a file outside the repository (%q)", o)
				}
			}
		}
	}
	for _, p := range r.mdFiles {
		data, err := fs.ReadFile(r.fsys, p)
		if err != nil {
			continue
		}
		paras := r.markdown(p, string(data), add)
		for _, para := range paras {
			r.spans(p, para, add)
		}
	}
	for _, p := range r.goFiles {
		src, err := fs.ReadFile(r.fsys, p)
		if err != nil {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			add(p, 0, "%v", err)
			continue
		}
		for _, cg := range f.Comments {
			for _, para := range commentParagraphs(fset, cg) {
				r.spans(p, para, add)
				for _, m := range docLinkRE.FindAllStringSubmatch(para.text, -1) {
					r.ident(p, para.line, "["+m[1]+"]", strings.TrimPrefix(m[1], "*"), add)
				}
				for _, m := range goFileRE.FindAllStringSubmatch(para.text, -1) {
					r.file(p, para.line, m[1], m[1], add)
				}
			}
		}
	}
	return out
}

// commentParagraphs splits a comment group into paragraphs of prose (list
// items included), leaving out code blocks (tab-indented) and directives.
func commentParagraphs(fset *token.FileSet, cg *ast.CommentGroup) []paragraph {
	var out []paragraph
	var cur []string
	start := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, paragraph{start, strings.Join(cur, " ")})
			cur = nil
		}
	}
	for _, c := range cg.List {
		text := c.Text
		if strings.HasPrefix(text, "/*") {
			text = strings.TrimSuffix(strings.TrimPrefix(text, "/*"), "*/")
		} else {
			text = strings.TrimPrefix(text, "//")
		}
		for i, l := range strings.Split(text, "\n") {
			n := fset.Position(c.Pos()).Line + i
			l = strings.TrimPrefix(l, " ")
			// gofmt indents code blocks with a tab and lists with spaces.
			if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "\t") ||
				strings.HasPrefix(l, "go:") || strings.HasPrefix(l, "+build") {
				flush()
				continue
			}
			if len(cur) == 0 {
				start = n
			}
			cur = append(cur, l)
		}
	}
	flush()
	return out
}

// markdown checks the links of one document and returns its prose
// paragraphs (outside code blocks) for the span checks.
func (r *repo) markdown(p, doc string, add func(string, int, string, ...any)) []paragraph {
	var out []paragraph
	var cur []string
	start := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, paragraph{start, strings.Join(cur, " ")})
			cur = nil
		}
	}
	inFence := false
	for i, l := range strings.Split(doc, "\n") {
		n := i + 1
		if fenceRE.MatchString(l) {
			inFence = !inFence
			flush()
			continue
		}
		if inFence || strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t") || strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		var targets []string
		for _, m := range mdLinkRE.FindAllStringSubmatch(l, -1) {
			targets = append(targets, m[1])
		}
		if m := mdRefRE.FindStringSubmatch(l); m != nil {
			targets = append(targets, m[1])
		}
		for _, t := range targets {
			if strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") {
				continue
			}
			r.link(p, n, t, add)
		}
		if len(cur) == 0 {
			start = n
		}
		cur = append(cur, l)
	}
	flush()
	return out
}

// link checks one relative link of Markdown document p.
func (r *repo) link(p string, line int, l string, add func(string, int, string, ...any)) {
	target, frag, _ := strings.Cut(l, "#")
	q := p
	if target != "" {
		q = path.Join(path.Dir(p), target)
	}
	if !r.files[q] && !r.dirs[q] {
		add(p, line, "link %s: no such file", l)
		return
	}
	if frag == "" || !strings.HasSuffix(q, ".md") {
		return
	}
	body, err := fs.ReadFile(r.fsys, q)
	if err != nil {
		return
	}
	if !gen.Anchors(string(body))[frag] {
		add(p, line, "link %s: %s has no anchor #%s", l, q, frag)
	}
}

// spans checks the code spans of one paragraph: identifiers and file names.
func (r *repo) spans(p string, para paragraph, add func(string, int, string, ...any)) {
	for _, m := range codeRE.FindAllStringSubmatch(para.text, -1) {
		s := strings.TrimSpace(m[1])
		switch {
		case fileRE.MatchString(s):
			r.file(p, para.line, "`"+s+"`", s, add)
		case identRE.MatchString(s):
			r.ident(p, para.line, "`"+s+"`", strings.TrimSuffix(s, "()"), add)
		}
	}
}

// ident checks pkg.Name, Type.Member and pkg.Type.Member against the
// module's declarations; names whose first part the module does not
// declare (the standard library's, the kernel's) are left alone.
func (r *repo) ident(p string, line int, shown, s string, add func(string, int, string, ...any)) {
	parts := strings.Split(s, ".")
	first := parts[0]
	// Only exported names are checked: prose about C or about local
	// variables (`c.state`, `v.dir`) and file names (`tcpct.h`) look like
	// lower-case selectors, and docs name a package's exported API.
	if !token.IsExported(parts[1]) && !token.IsExported(first) {
		return
	}
	if decls, ok := r.pkgs[first]; ok && first != "main" && token.IsExported(parts[1]) {
		if !decls[parts[1]] {
			add(p, line, "%s: %s has no %s", shown, first, parts[1])
			return
		}
		if len(parts) == 3 && !r.hasMember(parts[1], parts[2]) {
			add(p, line, "%s: %s.%s has no member %s", shown, first, parts[1], parts[2])
		}
		return
	}
	if token.IsExported(first) && r.isType[first] && len(parts) == 2 && !r.hasMember(first, parts[1]) {
		add(p, line, "%s: %s has no member %s", shown, first, parts[1])
	}
}

// file checks a file name named by document p: relative to p, to the root,
// or (a bare name) anywhere. A path whose first element is not one of the
// repository's is someone else's (a kernel or gVisor source file).
func (r *repo) file(p string, line int, shown, name string, add func(string, int, string, ...any)) {
	name = strings.TrimPrefix(name, "./")
	if !strings.Contains(name, "/") {
		if !r.base[name] {
			add(p, line, "%s: no such file", shown)
		}
		return
	}
	rel := path.Join(path.Dir(p), name)
	if r.files[rel] || r.dirs[rel] || r.files[name] || r.dirs[name] {
		return
	}
	first := strings.Split(name, "/")[0]
	if first == ".." || r.top[first] || r.dirs[path.Join(path.Dir(p), first)] {
		add(p, line, "%s: no such file", shown)
	}
}
