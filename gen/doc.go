// Package gen renders the declarative spec (spec/) as the documents and C
// headers the module commits: [Docs] renders the browsable reference of
// docs/ (an index, a page per profile with every cell's rationale and RFC
// links, the comparison, the JSON schema of `tcpct spec -format json`),
// with the state tables and the Mermaid and Graphviz diagrams; `tcpct docs
// -o DIR` writes the same set elsewhere. [CHeader] and [CReasons] are the
// C target (ebpf/c). Everything is a pure function of the spec text, so
// `go generate ./...` is reproducible and a test can check that the
// committed files are current.
//
// The Go source of fsm's tables and the list of every generated file are
// the generator command's (internal/cmd/specgen), which formats Go with
// go/format: the tcpct command renders documents with this package and
// should not build a Go parser and printer for it.
//
// gen depends on spec only, keeping the dependency order spec → gen → fsm.
package gen

import "github.com/fdac824a/tcpct/spec"

// File is one generated file: its path relative to the module root (or to
// the documents' directory, for Docs) and its contents.
type File struct {
	Path string
	Data []byte
}

// LoadAll loads every built-in profile of the spec package.
func LoadAll() ([]*spec.Spec, error) {
	var out []*spec.Spec
	for _, name := range spec.Profiles() {
		s, err := spec.Load(name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
