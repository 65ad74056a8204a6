// Command tcpct replays packet captures through the Linux nf_conntrack TCP
// tracker (or the 2.4-era one of the Iptables Tutorial) and shows what a
// stateful firewall would have seen.
//
//	tcpct replay  [flags] FILE|-     track every TCP packet; jsonl, proc, conntrack, events, summary
//	tcpct explain [flags] FILE       narrate one connection, packet by packet, with the spec's reasons
//	tcpct spec    [flags]            print a profile: its spec text, JSON, Graphviz or Mermaid
//	tcpct docs    -o DIR             write the reference generated from the spec (SVGs with Graphviz)
//	tcpct watch   -i IFACE           track live traffic (AF_PACKET, root): events or a live summary
//	tcpct conform [flags]            how the running kernel differs from a profile, cell by cell (root)
//
// The command-line contract (flags, jsonl fields, exit status) is
// cmd/tcpct/README.md; `tcpct replay -h` documents it. Exit
// status: 0 success, 1 usage error, 2 input that cannot be read (a
// truncated or corrupt capture: everything before the fault is still
// processed and printed, the fault is reported on stderr with its record
// number and byte offset, and the status is 2), 3 output that cannot be
// written (a closed pipe exits 3 without a message), 4 a capture with no
// TCP packet (or, for explain, none of the chosen connection).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK     = 0
	exitUsage  = 1
	exitInput  = 2
	exitOutput = 3 // the output could not be written (disk full, closed pipe)
	exitNoTCP  = 4 // the capture holds no TCP packet (explain: none of the connection)
)

// outputError is a failure to write the output, which exits with
// exitOutput rather than exitInput; every command words it the same.
type outputError struct{ err error }

func (e outputError) Error() string { return "writing output: " + e.err.Error() }
func (e outputError) Unwrap() error { return e.err }

// outputFailed reports a failed write and returns exitOutput. A closed
// pipe (EPIPE: the reader, such as head, has what it wanted) is not an
// error worth a message; the status still says that output was lost.
func outputFailed(stderr io.Writer, cmd string, err error) int {
	if !errors.Is(err, syscall.EPIPE) {
		fmt.Fprintf(stderr, "tcpct %s: %v\n", cmd, outputError{err})
	}
	return exitOutput
}

func main() {
	// A write to a closed pipe (tcpct replay ... | head -1) fails with
	// EPIPE instead of killing the process with SIGPIPE (status 141), so
	// that it ends with the documented status 3, quietly (outputFailed).
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const topUsage = `usage: tcpct COMMAND [flags] ...

Commands:
  replay   track every TCP packet of a capture (jsonl, proc, conntrack, events, summary)
  explain  narrate one connection of a capture, with the spec's reasons
  spec     print a tracker profile (text, json, dot, mermaid)
  docs     write the reference documentation generated from the spec
  watch    track live TCP traffic on an interface (root; events or summary)
  conform  ask the running kernel, cell by cell, how it differs from a profile (root)
  version  print the module version and the VCS revision it was built from
  help     print this, or with a COMMAND that command's flags

Run 'tcpct help COMMAND' or 'tcpct COMMAND -h' for a command's flags.
Exit status: 0 success, 1 usage error, 2 unreadable, truncated or corrupt input,
3 the output cannot be written (quietly for a closed pipe), 4 the capture holds
no TCP packet (explain: no packet of the chosen connection); conform: 5 the
kernel differs from the profile, 6 the kernel cannot be asked (not root, tools
missing).
`

// run is the whole command, with its streams injected so that tests run
// the real code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	switch args[0] {
	case "replay":
		return replay(args[1:], stdin, stdout, stderr)
	case "explain":
		return explain(args[1:], stdin, stdout, stderr)
	case "spec":
		return specCmd(args[1:], stdout, stderr)
	case "docs":
		return docsCmd(args[1:], stdout, stderr)
	case "watch":
		return watch(args[1:], stdout, stderr)
	case "conform":
		return conform(args[1:], stdout, stderr)
	case "version":
		return versionCmd(args[1:], stdout, stderr)
	case "help":
		return help(args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "tcpct: unknown command %q\n\n%s", args[0], topUsage)
	return exitUsage
}

// help prints the top-level usage, or a command's: tcpct help replay is
// tcpct replay -h.
func help(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		fmt.Fprint(stdout, topUsage)
		return exitOK
	case 1:
		switch args[0] {
		case "replay", "explain", "spec", "docs", "watch", "conform", "version":
			return run([]string{args[0], "-h"}, stdin, stdout, stderr)
		case "help":
			fmt.Fprint(stdout, topUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "tcpct help: unknown command %q\n\n%s", args[0], topUsage)
		return exitUsage
	}
	fmt.Fprintf(stderr, "tcpct help: want at most one COMMAND, got %d\n", len(args))
	return exitUsage
}
