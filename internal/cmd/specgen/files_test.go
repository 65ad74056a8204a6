package main

import "testing"

// moduleRoot is the module root seen from this package's directory.
const moduleRoot = "../../.."

// TestCommittedFilesAreCurrent fails when `go generate ./...` would change
// a committed file.
func TestCommittedFilesAreCurrent(t *testing.T) {
	stale, err := Run(moduleRoot, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		t.Errorf("%s is stale: run go generate ./...", f)
	}
}
