//go:build race

package main

// raceDetector is true when the tests run under the race detector, whose
// runtime makes allocation counts noise (sync.Pool drops items at random).
const raceDetector = true
