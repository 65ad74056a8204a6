package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
)

// handWritten are the hand-written documents of docs/ that the index links
// (when they exist); generated regions in them are kept current.
var handWritten = []string{"rfc793-mapping.md", "invariants.md", "seed-quotations.md"}

// Files renders every generated file. Files that splice generated regions
// into hand-written text (docs/rfc793-mapping.md) are read from root.
func Files(root string) ([]gen.File, error) {
	specs, err := gen.LoadAll()
	if err != nil {
		return nil, err
	}
	return filesOf(specs, root)
}

// filesOf is Files for the given profiles.
func filesOf(specs []*spec.Spec, root string) ([]gen.File, error) {
	src, err := FSMSource(specs)
	if err != nil {
		return nil, err
	}
	files := []gen.File{{Path: "fsm/zz_profiles.go", Data: src}}
	// The C target (ebpf/c): one header per profile and the reason codes.
	for _, s := range specs {
		files = append(files, gen.File{Path: gen.CHeaderPath(s.Profile), Data: gen.CHeader(s)})
	}
	reasons, err := gen.CReasons(root)
	if err != nil {
		return nil, err
	}
	files = append(files, gen.File{Path: gen.CReasonsPath, Data: reasons})
	// Documents of docs/ made elsewhere than Docs, for its index to link:
	// the one-page tables (generated) and the hand-written pages, whose
	// generated regions are spliced in.
	states := gen.File{Path: "states.md", Data: gen.StatesMarkdown(specs)}
	files = append(files, gen.File{Path: "docs/states.md", Data: states.Data})
	extra := []gen.File{states}
	for _, name := range handWritten {
		old, err := os.ReadFile(filepath.Join(root, "docs", name))
		if err != nil {
			continue
		}
		spliced, err := gen.Splice(old, specs)
		if err != nil {
			return nil, fmt.Errorf("docs/%s: %w", name, err)
		}
		if gen.HasRegions(old) {
			files = append(files, gen.File{Path: "docs/" + name, Data: spliced})
		}
		extra = append(extra, gen.File{Path: name, Data: spliced})
	}
	for _, f := range gen.Docs(specs, extra) {
		files = append(files, gen.File{Path: "docs/" + f.Path, Data: f.Data})
	}
	return files, nil
}

// Run regenerates the files under root. With write false it only reports
// which files differ from what would be generated.
func Run(root string, write bool) (stale []string, err error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		old, _ := os.ReadFile(p)
		if bytes.Equal(old, f.Data) {
			continue
		}
		stale = append(stale, f.Path)
		if write {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return stale, err
			}
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				return stale, err
			}
		}
	}
	return stale, nil
}
