package tcpct_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

var updateAPI = flag.Bool("update-api", false, "rewrite api.txt from the current exported API")

// apiPackages are the packages whose exported surface api.txt pins: the
// library packages other projects import. Tooling packages (gen,
// conformance, invariant, cmd/...) are free to change.
var apiPackages = []string{
	"github.com/fdac824a/tcpct",
	"github.com/fdac824a/tcpct/capture",
	"github.com/fdac824a/tcpct/fsm",
	"github.com/fdac824a/tcpct/spec",
	"github.com/fdac824a/tcpct/table",
	"github.com/fdac824a/tcpct/tcpcttest",
}

// TestAPI fails when the exported API of apiPackages differs from api.txt,
// so that every change to it is deliberate: review the diff, then run
//
//	go test -run TestAPI -update-api .
//
// and commit api.txt with the change.
func TestAPI(t *testing.T) {
	// go test puts the running toolchain's bin directory first in PATH.
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not available to read export data")
	}
	got, err := apiSurface(gocmd, apiPackages)
	if err != nil {
		t.Fatal(err)
	}
	if *updateAPI {
		if err := os.WriteFile("api.txt", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("api.txt")
	if err != nil {
		t.Fatalf("%v: run go test -run TestAPI -update-api .", err)
	}
	if added, removed := lineDiff(string(want), got); len(added)+len(removed) > 0 {
		var b strings.Builder
		for _, l := range removed {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		for _, l := range added {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
		t.Errorf("the exported API changed (- api.txt, + now):\n%s\nIf this is deliberate, run go test -run TestAPI -update-api . and commit api.txt.", b.String())
	}
}

// lineDiff returns the lines only in b (added) and only in a (removed).
func lineDiff(a, b string) (added, removed []string) {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			if l != "" {
				m[l] = true
			}
		}
		return m
	}
	ma, mb := in(a), in(b)
	for l := range mb {
		if !ma[l] {
			added = append(added, l)
		}
	}
	for l := range ma {
		if !mb[l] {
			removed = append(removed, l)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// apiSurface type-checks pkgs from the compiler's export data (found with
// go list -export) and renders one sorted line per exported name, field
// and method, in the style of Go's own api/*.txt.
func apiSurface(gocmd string, pkgs []string) (string, error) {
	cmd := exec.Command(gocmd, append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}, pkgs...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -export: %v", err)
	}
	export := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, file, ok := strings.Cut(sc.Text(), "\t"); ok && file != "" {
			export[path] = file
		}
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f, ok := export[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	var lines []string
	for _, path := range pkgs {
		p, err := imp.Import(path)
		if err != nil {
			return "", err
		}
		lines = append(lines, pkgAPI(p)...)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n", nil
}

func pkgAPI(p *types.Package) []string {
	q := func(other *types.Package) string {
		if other == p {
			return ""
		}
		return other.Name()
	}
	ts := func(t types.Type) string { return types.TypeString(t, q) }
	prefix := "pkg " + p.Path() + ", "
	var out []string
	emit := func(format string, args ...any) { out = append(out, prefix+fmt.Sprintf(format, args...)) }
	for _, name := range p.Scope().Names() {
		obj := p.Scope().Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.Const:
			emit("const %s %s = %s", name, ts(o.Type()), o.Val().ExactString())
		case *types.Var:
			emit("var %s %s", name, ts(o.Type()))
		case *types.Func:
			emit("func %s%s", name, sigString(o.Type().(*types.Signature), ts))
		case *types.TypeName:
			if o.IsAlias() {
				emit("type %s = %s", name, ts(o.Type()))
				continue
			}
			named, ok := o.Type().(*types.Named)
			if !ok {
				continue
			}
			tparams := ""
			if tp := named.TypeParams(); tp.Len() > 0 {
				var l []string
				for i := 0; i < tp.Len(); i++ {
					l = append(l, tp.At(i).Obj().Name()+" "+ts(tp.At(i).Constraint()))
				}
				tparams = "[" + strings.Join(l, ", ") + "]"
			}
			switch u := named.Underlying().(type) {
			case *types.Struct:
				emit("type %s%s struct", name, tparams)
				for i := 0; i < u.NumFields(); i++ {
					f := u.Field(i)
					switch {
					case f.Embedded():
						emit("type %s struct, embedded %s", name, ts(f.Type()))
					case f.Exported():
						emit("type %s struct, %s %s", name, f.Name(), ts(f.Type()))
					}
				}
			case *types.Interface:
				emit("type %s%s interface", name, tparams)
				for i := 0; i < u.NumMethods(); i++ {
					m := u.Method(i)
					if m.Exported() {
						emit("type %s interface, %s%s", name, m.Name(), sigString(m.Type().(*types.Signature), ts))
					} else {
						emit("type %s interface, unexported methods", name)
					}
				}
			default:
				emit("type %s%s %s", name, tparams, ts(u))
			}
			for i := 0; i < named.NumMethods(); i++ {
				m := named.Method(i)
				if !m.Exported() {
					continue
				}
				sig := m.Type().(*types.Signature)
				recv := name
				if _, ptr := sig.Recv().Type().(*types.Pointer); ptr {
					recv = "*" + name
				}
				emit("method (%s) %s%s", recv, m.Name(), sigString(sig, ts))
			}
		}
	}
	return out
}

// sigString renders a signature without parameter names, which are not
// part of the API.
func sigString(sig *types.Signature, ts func(types.Type) string) string {
	var params []string
	for i := 0; i < sig.Params().Len(); i++ {
		t := sig.Params().At(i).Type()
		if sig.Variadic() && i == sig.Params().Len()-1 {
			params = append(params, "..."+ts(t.(*types.Slice).Elem()))
		} else {
			params = append(params, ts(t))
		}
	}
	s := "(" + strings.Join(params, ", ") + ")"
	var results []string
	for i := 0; i < sig.Results().Len(); i++ {
		results = append(results, ts(sig.Results().At(i).Type()))
	}
	switch len(results) {
	case 0:
	case 1:
		s += " " + results[0]
	default:
		s += " (" + strings.Join(results, ", ") + ")"
	}
	return s
}
