//go:build !linux

package capture

import "os"

// mapFile maps nothing outside Linux: every file is read as a stream.
func mapFile(*os.File) []byte { return nil }

func populateMapped([]byte) {}

func releaseMapped([]byte) {}

func unmapFile([]byte) {}
