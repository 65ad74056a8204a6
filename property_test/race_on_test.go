//go:build race

package property

// raceSlow thins the default mutation sample under the race detector.
const raceSlow = 3
