// Command specgen regenerates every file derived from the spec: the fsm
// tables and the documentation. It is run by `go generate ./...` (see
// fsm/generate.go) from the fsm directory, or by hand from the module root
// with -root.
//
// Usage:
//
//	specgen [-root DIR] [-check]
//
// With -check it writes nothing and exits 1 listing the files that are out
// of date.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	root := flag.String("root", "..", "module root (the directory holding go.mod)")
	check := flag.Bool("check", false, "report stale files instead of writing them")
	flag.Parse()
	stale, err := Run(*root, !*check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(2)
	}
	if *check && len(stale) > 0 {
		for _, f := range stale {
			fmt.Fprintln(os.Stderr, "specgen: stale:", f)
		}
		os.Exit(1)
	}
}
