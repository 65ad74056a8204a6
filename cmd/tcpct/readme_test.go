package main

import (
	"os"
	"path/filepath"
	"regexp"
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
