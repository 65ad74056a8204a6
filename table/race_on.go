//go:build race

package table

// raceEnabled selects atomic word stores inside seqlock write windows, so
// that the race detector sees no conflicting plain/atomic accesses.
const raceEnabled = true
