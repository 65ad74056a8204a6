//go:build race

package property

// raceSlow thins the default mutation sample under the race detector.
const raceSlow = 3

// raceShallower is how many levels the bounded searches of the tracker
// go less deep under the race detector (which slows the table's atomics
// tenfold): the concrete check and the mutation check's concrete stage.
const raceShallower = 1
