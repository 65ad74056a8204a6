package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeMainCommand runs the main-job command of the repository's
// README (its first `go run ./cmd/tcpct ...` line) and checks it prints the
// seed's line that the README promises, so the front page cannot drift
// from the tool.
func TestReadmeMainCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+go run \./cmd/tcpct (.+)$`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `go run ./cmd/tcpct ...` command")
	}
	args := strings.Fields(string(m[1]))
	for i, a := range args {
		if strings.HasPrefix(a, "examples/") {
			args[i] = filepath.Join("..", "..", a)
		}
	}
	code, out, errs := runCmd(t, nil, args...)
	want := "tcp 6 117 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 use=1\n"
	if code != 0 || out != want {
		t.Errorf("README command %q: status %d, stdout %q, stderr %q; want the seed's line %q", m[1], code, out, errs, want)
	}
}

// TestReadmeExamples runs every `$ tcpct ...` example of this README (the
// contract) and compares its output with the text under it, so that the
// documented behaviour and the command cannot drift apart. A pipe into
// head -N, tail -N or sed -n A,Bp is applied to the output; an
// "(exit status N)" line is the status wanted; the summary's throughput
// line, which measures this run, is left out of the comparison; an
// example that names a file the repository does not hold is skipped.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	type example struct {
		line   int
		cmd    string
		want   []string
		status int
	}
	var exs []example
	inBlock, cur := false, false // in a code block; in an example's output
	for i, l := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			inBlock, cur = !inBlock, false
		case !inBlock:
		case strings.HasPrefix(l, "$ tcpct "):
			exs = append(exs, example{line: i + 1, cmd: strings.TrimPrefix(l, "$ ")})
			cur = true
		case strings.HasPrefix(l, "$ "):
			cur = false // not a tcpct command
		case cur:
			ex := &exs[len(exs)-1]
			if m := regexp.MustCompile(`^\(exit status (\d+)\)$`).FindStringSubmatch(l); m != nil {
				fmt.Sscan(m[1], &ex.status)
				continue
			}
			ex.want = append(ex.want, l)
		}
	}
	throughput := regexp.MustCompile(`^  \d+ TCP packets in `)
	t.Chdir("../..") // the examples' paths are the repository's
	ran := 0
	for _, ex := range exs {
		if ex.cmd == "" {
			continue
		}
		cmd, _, _ := strings.Cut(ex.cmd, "#")
		stages := strings.Split(cmd, "|")
		args := readmeArgs(stages[0])[1:]
		if slices.Contains(args, "-o") || !pipesUnderstood(stages[1:]) {
			// It writes a file into the tree, or pipes through a
			// command this test does not emulate: other tests cover it.
			continue
		}
		missing := false
		for i, a := range args {
			if strings.HasSuffix(a, ".pcap") {
				if _, err := os.Stat(args[i]); err != nil {
					missing = true
				}
			}
		}
		if missing {
			continue
		}
		code, out, errs := runCmd(t, nil, args...)
		lines := strings.Split(strings.TrimSuffix(out+errs, "\n"), "\n")
		for _, st := range stages[1:] {
			f := strings.Fields(st)
			var a, b int
			switch {
			case len(f) == 2 && f[0] == "head":
				fmt.Sscanf(f[1], "-%d", &a)
				lines = lines[:min(a, len(lines))]
			case len(f) == 2 && f[0] == "tail":
				fmt.Sscanf(f[1], "-%d", &a)
				lines = lines[max(0, len(lines)-a):]
			case len(f) == 3 && f[0] == "sed" && f[1] == "-n":
				fmt.Sscanf(f[2], "%d,%dp", &a, &b)
				lines = lines[a-1 : min(b, len(lines))]
			}
		}
		want := ex.want
		for len(want) > 0 && want[len(want)-1] == "" {
			want = want[:len(want)-1]
		}
		var got, wantKept []string
		for _, l := range lines {
			if !throughput.MatchString(l) {
				got = append(got, l)
			}
		}
		for _, l := range want {
			if !throughput.MatchString(l) {
				wantKept = append(wantKept, l)
			}
		}
		if code != ex.status || strings.Join(got, "\n") != strings.Join(wantKept, "\n") {
			t.Errorf("README line %d: %s\nstatus %d (want %d)\ngot:\n%s\nwant:\n%s", ex.line, ex.cmd, code, ex.status,
				strings.Join(got, "\n"), strings.Join(wantKept, "\n"))
		}
		ran++
	}
	if ran < 15 {
		t.Errorf("only %d README examples ran", ran)
	}
}

// pipesUnderstood reports whether TestReadmeExamples can apply every
// pipe stage: head -N, tail -N, sed -n A,Bp.
func pipesUnderstood(stages []string) bool {
	for _, st := range stages {
		f := strings.Fields(st)
		ok := len(f) == 2 && (f[0] == "head" || f[0] == "tail") && strings.HasPrefix(f[1], "-") ||
			len(f) == 3 && f[0] == "sed" && f[1] == "-n"
		if !ok {
			return false
		}
	}
	return true
}

// readmeArgs splits an example's command line as a shell would: on
// blanks, with '...' quoting.
func readmeArgs(s string) []string {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for _, c := range s {
		switch {
		case c == '\'':
			quoted, in = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
