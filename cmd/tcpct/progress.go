package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the bar replay draws on stderr while it reads a capture, when
// stderr is a terminal (or -progress always); nothing otherwise. It counts
// the bytes read from the input (capture.Reader.InputOffset: compressed
// bytes for a gzip file, so the bar reaches 100% at the end of the file, not
// part way through the decompressed stream): for a regular file against
// its size, with the rate and the time left; for standard input or a pipe,
// of unknown size, a spinner with the rate. A nil *progress is valid and
// does nothing. The library redraws at most every 100 ms and set is called
// every few thousand records, so it costs nothing measurable per packet.
type progress struct {
	bar  *progressbar.ProgressBar
	size int64 // bytes in the file; -1 when unknown
	last atomic.Int64
}

// checkProgressMode validates a -progress value before any work starts.
func checkProgressMode(mode string) error {
	switch mode {
	case "auto", "always", "never":
		return nil
	}
	return fmt.Errorf("-progress: unknown mode %q (want auto, always or never)", mode)
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
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			size = st.Size()
		}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		// Start the clock now: the first frame comes only after the first
		// batch of records, and a rate measured from that frame alone is
		// absurd (bytes read over a few microseconds).
		progressbar.OptionSetRenderBlankState(true),
	}
	if size > 0 {
		opts = append(opts,
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish())
		if terminalWidthUsable(stderr) {
			opts = append(opts, progressbar.OptionFullWidth())
		}
	} else {
		// Unknown length: the library shows a spinner and the rate; it
		// needs a fixed width and no prediction.
		opts = append(opts,
			progressbar.OptionSetWidth(10),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionSetPredictTime(false))
	}
	return &progress{bar: progressbar.NewOptions64(size, opts...), size: size}
}

// terminalWidthUsable reports whether the bar may take the terminal's
// width: a terminal that reports a width of 0 (a pseudo-terminal nobody
// sized, as some CI runners and `script` give) would get a bar with no
// room at all, "||"; it gets the fixed width instead. Writers that are not
// terminals are drawn 80 columns wide by the library.
func terminalWidthUsable(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return true
	}
	width, _, err := term.GetSize(int(f.Fd()))
	return err != nil || width >= 60
}

// set reports the input bytes read so far. A file that grows while it is
// read stops the bar at 100% until the end.
func (p *progress) set(n int64) {
	if p == nil {
		return
	}
	if p.size > 0 && n > p.size {
		n = p.size
	}
	if n > p.last.Load() {
		p.last.Store(n)
		p.bar.Set64(n)
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
