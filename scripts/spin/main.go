// Command spin is the control of scripts/bench-cores.sh: it spins N
// goroutines (the argument, default 1) for a fixed time and prints the
// iterations they did together. Run with N = 1 and then N = 2 in the
// same spell as a two-core benchmark, the ratio of the two counts says
// how many free cores the machine gave: about 2 when both were free,
// nearer 1 when other work took one. A speed-up measured in a run whose
// control is well below 2 is the machine's, not the program's.
//
//	go run ./scripts/spin 2
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// spinFor counts iterations of a register-only loop until d has passed,
// looking at the clock every 1,000 iterations.
func spinFor(d time.Duration) uint64 {
	var n uint64
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for range 1000 {
			n++
		}
	}
	return n
}

func main() {
	k := 1
	if len(os.Args) > 1 {
		var err error
		if k, err = strconv.Atoi(os.Args[1]); err != nil || k < 1 {
			fmt.Fprintln(os.Stderr, "usage: spin [goroutines]")
			os.Exit(2)
		}
	}
	counts := make([]uint64, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Go(func() { counts[i] = spinFor(500 * time.Millisecond) })
	}
	wg.Wait()
	var total uint64
	for _, c := range counts {
		total += c
	}
	fmt.Println(total)
}
