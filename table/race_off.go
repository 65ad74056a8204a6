//go:build !race

package table

// raceEnabled is false in normal builds: seqlock writers copy values with
// plain word stores (see storeV).
const raceEnabled = false
