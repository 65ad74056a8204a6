package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress is the bar replay draws on stderr while it reads a capture, when
// stderr is a terminal (or -progress always); nothing otherwise. It counts
// the bytes read from the input (capture.Reader.InputOffset: compressed
// bytes for a gzip file, so the bar reaches 100% at the end of the file, not
// part way through the decompressed stream): for a regular file against
// its size, with the rate and the time left; for standard input or a pipe,
// of unknown size, a spinner with the rate. A nil *progress is valid and
// does nothing. It redraws at most every 100 ms and set is called every few
// thousand records, so it costs nothing measurable per packet.
//
// It is written here rather than taken from a progress-bar module: the
// one used before pulled net/http and crypto/tls into the command, about a
// quarter of a first build on an empty cache, for one line of text.
type progress struct {
	w     io.Writer
	size  int64 // bytes in the file; -1 when unknown
	width int   // columns of the bar itself

	mu    sync.Mutex
	start time.Time
	drawn time.Time // last frame
	n     int64     // bytes read so far
	spin  int
	line  int // length of the last frame, to clear it
}

// redrawEvery throttles frames: a terminal needs no more than ten a second.
const redrawEvery = 100 * time.Millisecond

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
	p := &progress{w: stderr, size: size, width: barWidth(stderr), start: time.Now()}
	// Draw the blank frame at once: the first set comes only after the
	// first batch of records, and the rate is measured from now.
	p.mu.Lock()
	p.draw(p.start)
	p.mu.Unlock()
	return p
}

// barWidth is the width of the bar for a frame on w: what the terminal
// leaves after the text around it (about 60 columns), between 20 and 60;
// 30 on a terminal that reports a width of 0 (a pseudo-terminal nobody
// sized, as some CI runners and `script` give) and on writers that are not
// terminals.
func barWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 30
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil || cols < 80 {
		return 30
	}
	return min(60, max(20, cols-60))
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if n <= p.n {
		return
	}
	p.n = n
	if now := time.Now(); now.Sub(p.drawn) >= redrawEvery {
		p.draw(now)
	}
}

// finish clears the bar.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%*s\r", p.line, "")
	p.line = 0
}

var spinner = [...]string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// draw writes one frame, over the last: "replay  42% |████▌    | (80 MB/190
// MB, 95 MB/s) [1s:1s]" for a file of known size, "replay ⠹ (80 MB, 95
// MB/s) [1s]" for a stream. Called with p.mu held.
func (p *progress) draw(now time.Time) {
	p.drawn = now
	elapsed := now.Sub(p.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(p.n) / s
	}
	b := []byte("\rreplay ")
	if p.size > 0 {
		frac := float64(p.n) / float64(p.size)
		b = fmt.Appendf(b, "%3d%% |", int(frac*100))
		b = appendBar(b, frac, p.width)
		b = fmt.Appendf(b, "| (%s/%s, %s/s) [%s:", bytesText(p.n), bytesText(p.size), bytesText(int64(rate)), durationText(elapsed))
		if rate > 0 {
			b = append(b, durationText(time.Duration(float64(p.size-p.n)/rate*float64(time.Second)))...)
		} else {
			b = append(b, '?')
		}
		b = append(b, ']')
	} else {
		p.spin = (p.spin + 1) % len(spinner)
		b = fmt.Appendf(b, "%s (%s, %s/s) [%s]", spinner[p.spin], bytesText(p.n), bytesText(int64(rate)), durationText(elapsed))
	}
	width := len([]rune(string(b))) - 1 // without the \r
	if width < p.line {
		b = fmt.Appendf(b, "%*s", p.line-width, "") // wipe the rest of a longer frame
	}
	p.line = max(p.line, width)
	p.w.Write(b)
}

// appendBar draws frac of width columns in eighths of a block.
func appendBar(b []byte, frac float64, width int) []byte {
	eighths := int(frac * float64(width*8))
	eighths = min(max(eighths, 0), width*8)
	full, part := eighths/8, eighths%8
	for range full {
		b = append(b, "█"...)
	}
	if full < width {
		if part > 0 {
			b = append(b, []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}[part]...)
		} else {
			b = append(b, ' ')
		}
		for range width - full - 1 {
			b = append(b, ' ')
		}
	}
	return b
}

// bytesText prints a byte count in the units of ls -h and curl: B, kB,
// MB, GB (powers of 1000).
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"kB", "MB", "GB", "TB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + suffix
}

// durationText prints whole seconds as the time command does for short
// runs: 7s, 2m5s, 1h2m3s.
func durationText(d time.Duration) string {
	return d.Round(time.Second).String()
}
