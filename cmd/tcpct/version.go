package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

const versionUsage = `usage: tcpct version

Prints the module path and version tcpct was built as, the VCS revision
and commit time it was built from (with "+modified" when the work tree
had uncommitted changes), and the Go version, all from the build
information the Go toolchain stamps into the binary
(runtime/debug.ReadBuildInfo). A build without VCS information (go run,
go build -buildvcs=false, a build outside a clone) says so.
`

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, code, done := parseFlags(fs, args, versionUsage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		return usageErr(stderr, "version", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(stdout, "tcpct: no build information (not built in module mode)")
		return exitOK
	}
	fmt.Fprint(stdout, versionText(bi))
	return exitOK
}

// versionText renders the build information: module and version, the VCS
// revision, time and modified flag when the build recorded them, and the
// Go version.
func versionText(bi *debug.BuildInfo) string {
	mod := bi.Main.Path
	if mod == "" {
		mod = bi.Path
	}
	ver := bi.Main.Version
	if ver == "" {
		ver = "(unknown)"
	}
	s := fmt.Sprintf("tcpct %s %s\n", mod, ver)
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		s += "revision " + rev
		if settings["vcs.modified"] == "true" {
			s += "+modified"
		}
		if t := settings["vcs.time"]; t != "" {
			s += " (" + t + ")"
		}
		s += "\n"
	} else {
		s += "revision unknown (built without VCS information)\n"
	}
	return s + "go       " + bi.GoVersion + "\n"
}
