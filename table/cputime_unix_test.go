//go:build unix

package table

import "syscall"

// processCPU returns the CPU time (user + system) the process has used, in
// nanoseconds. On a machine shared with other loads, wall-clock ns/op
// includes the time the benchmark thread spent descheduled; CPU time per
// operation does not (see fixture.parallel).
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
