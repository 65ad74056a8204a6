package property

import (
	"flag"
	"os"
	"testing"
)

// TestMain sets rapid's defaults for this package unless given on the
// command line: 200 cases of ~50 steps, 3000 with TCPCT_LONG=1.
func TestMain(m *testing.M) {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["rapid.checks"] && os.Getenv("RAPID_CHECKS") == "" {
		n := "200"
		if long() {
			n = "3000"
		}
		must(flag.Set("rapid.checks", n))
	}
	if !set["rapid.steps"] && os.Getenv("RAPID_STEPS") == "" {
		must(flag.Set("rapid.steps", "50"))
	}
	os.Exit(m.Run())
}
