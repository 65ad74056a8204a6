package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
)

const docsUsage = `usage: tcpct docs -o DIR [-profile linux|tutorial]

Writes the reference generated from the spec into DIR (created if needed):
the generated pages 'go generate ./...' commits under docs/, except that
the committed index also links the hand-written pages kept there
(rfc793-mapping.md, invariants.md, ...), which DIR does not have:
  README.md             index
  profile-NAME.md       states, timeouts, knobs, classes, both transition
                        tables, Mermaid diagram, every cell with its RFC
                        sections and rationale
  NAME.dot              Graphviz diagram (NAME.svg too when 'dot' is on PATH)
  profiles-compared.md  the profiles cell by cell (without -profile)
  spec-schema.md, spec.schema.json
                        the schema of 'tcpct spec -format json'
With -profile only that profile is documented. The pages link only to each
other and to the RFCs, so DIR can be published as it is. Prints each file
written.

Exit status: 0 success; 1 usage error; 3 when DIR or a file in it cannot
be written, or the list of files cannot be printed.
`

func docsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("docs", flag.ContinueOnError)
	out := fs.String("o", "", "output `DIR`")
	profile := fs.String("profile", "", "only this `profile` (linux or tutorial); default all")
	pos, code, done := parseFlags(fs, args, docsUsage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		return usageErr(stderr, "docs", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *out == "" {
		return usageErr(stderr, "docs", errors.New("-o DIR is required"))
	}
	names := spec.Profiles()
	if *profile != "" {
		found := false
		for _, n := range names {
			found = found || n == *profile
		}
		if !found {
			return usageErr(stderr, "docs", fmt.Errorf("-profile: unknown profile %q (want %s)", *profile, strings.Join(names, " or ")))
		}
		names = []string{*profile}
	}
	var specs []*spec.Spec
	for _, n := range names {
		s, err := spec.Load(n)
		if err != nil {
			fmt.Fprintf(stderr, "tcpct docs: %v\n", err)
			return exitInput
		}
		specs = append(specs, s)
	}
	if err := writeDocs(*out, gen.Docs(specs, nil), stdout); err != nil {
		fmt.Fprintf(stderr, "tcpct docs: %v\n", err)
		return exitOutput
	}
	return exitOK
}

// writeDocs writes files under dir, one path per line on stdout, and
// renders an SVG next to every .dot file when Graphviz is installed.
func writeDocs(dir string, files []gen.File, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dot, _ := exec.LookPath("dot")
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(stdout, p); err != nil {
			return outputError{err}
		}
		if dot == "" || !strings.HasSuffix(f.Path, ".dot") {
			continue
		}
		svg := strings.TrimSuffix(p, ".dot") + ".svg"
		cmd := exec.Command(dot, "-Tsvg", "-o", svg, p)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("dot -Tsvg %s: %v\n%s", p, err, msg)
		}
		if _, err := fmt.Fprintln(stdout, svg); err != nil {
			return outputError{err}
		}
	}
	return nil
}
