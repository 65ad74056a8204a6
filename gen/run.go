package gen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fdac824a/tcpct/spec"
)

// File is one generated file: its path relative to the module root and its
// contents.
type File struct {
	Path string
	Data []byte
}

// LoadAll loads every profile of the spec package.
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

// handWritten are the hand-written documents of docs/ that the index links
// (when they exist); generated regions in them are kept current.
var handWritten = []string{"rfc793-mapping.md", "invariants.md", "seed-quotations.md"}

// Files renders every generated file. Files that splice generated regions
// into hand-written text (docs/rfc793-mapping.md) are read from root.
func Files(root string) ([]File, error) {
	specs, err := LoadAll()
	if err != nil {
		return nil, err
	}
	return filesOf(specs, root)
}

// filesOf is Files for the given profiles.
func filesOf(specs []*spec.Spec, root string) ([]File, error) {
	src, err := FSMSource(specs)
	if err != nil {
		return nil, err
	}
	files := []File{{"fsm/zz_profiles.go", src}}
	// The C target (ebpf/c): one header per profile and the reason codes.
	for _, s := range specs {
		files = append(files, File{CHeaderPath(s.Profile), CHeader(s)})
	}
	reasons, err := CReasons(root)
	if err != nil {
		return nil, err
	}
	files = append(files, File{CReasonsPath, reasons})
	// Documents of docs/ made elsewhere than Docs, for its index to link:
	// the one-page tables (generated) and the hand-written pages, whose
	// generated regions are spliced in.
	states := File{"states.md", StatesMarkdown(specs)}
	files = append(files, File{"docs/states.md", states.Data})
	extra := []File{states}
	for _, name := range handWritten {
		old, err := os.ReadFile(filepath.Join(root, "docs", name))
		if err != nil {
			continue
		}
		spliced, err := Splice(old, specs)
		if err != nil {
			return nil, fmt.Errorf("docs/%s: %w", name, err)
		}
		if regionRE.Match(old) {
			files = append(files, File{"docs/" + name, spliced})
		}
		extra = append(extra, File{name, spliced})
	}
	for _, f := range Docs(specs, extra) {
		files = append(files, File{"docs/" + f.Path, f.Data})
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
