package main

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the bar replay draws on stderr while it reads a capture:
// bytes read of the file's size, rate and time left, when stderr is a
// terminal (or -progress always); nothing otherwise. A nil *progress is
// valid and does nothing. The bar is redrawn at most every 100 ms by the
// library, and set is called every few thousand records, so it costs
// nothing measurable per packet.
type progress struct {
	bar  *progressbar.ProgressBar
	last atomic.Int64
}

func newProgress(stderr io.Writer, path, mode string) *progress {
	switch mode {
	case "never":
		return nil
	case "always":
	default:
		f, ok := stderr.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil
		}
	}
	size := int64(-1)
	if path != "-" {
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
	)
	return &progress{bar: bar}
}

// set reports the (decompressed) stream offset reached. For a gzip file
// the offset runs past the compressed size; the bar then stops at 100%
// until the end.
func (p *progress) set(off int64) {
	if p == nil {
		return
	}
	if max := p.bar.GetMax64(); max > 0 && off > max {
		off = max
	}
	if off > p.last.Load() {
		p.last.Store(off)
		p.bar.Set64(off)
	}
}

// finish clears the bar.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.bar.Finish()
	p.bar.Clear()
}
