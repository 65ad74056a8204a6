package capture

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
)

// zstdArgs makes the zstd program decompress its standard input to its
// standard output, quietly (errors are still printed), refusing a frame
// whose window needs more than 128 MiB: the program's own default limit
// (windowLog 27), stated so that a different default cannot raise it.
var zstdArgs = []string{"-d", "-c", "-q", "--memory=128MB"}

// unzstd decompresses a Zstandard stream (RFC 8878) through the zstd
// program rather than a Go decoder: os/exec is in every build of the
// command anyway, and a decoder module (with, for the one used before, the
// crypto packages its encoder imports) would be compiled in the command's
// first, empty-cache build (BENCHMARKS.md, "First run").
//
// A goroutine (feed) writes the compressed stream to the program's
// standard input; Read reads its standard output. When the output ends,
// Read waits for the program and reports, in this order: a read error of
// the source, the program's complaint (a cut stream wraps
// io.ErrUnexpectedEOF, as gzip's does), or io.EOF.
type unzstd struct {
	cmd    *exec.Cmd
	out    *os.File // read end of the program's standard output
	stderr headBuffer
	fed    atomic.Int64          // compressed bytes written to the program, for InputOffset
	srcErr atomic.Pointer[error] // the source's read error, stored before feed closes the program's input
	err    error                 // sticky, once the program has been waited for
}

// startZstd starts the zstd program on head followed by the rest of src.
// An error is from finding or starting the program.
func startZstd(head []byte, src io.Reader) (*unzstd, error) {
	path, err := exec.LookPath("zstd")
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	z := &unzstd{out: outR}
	z.cmd = exec.Command(path, zstdArgs...)
	z.cmd.Stdin, z.cmd.Stdout, z.cmd.Stderr = inR, outW, &z.stderr
	err = z.cmd.Start()
	// The program holds its own copies; ours would keep its input open
	// and its output from ending.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go z.feed(inW, head, src)
	return z, nil
}

// feed copies head and then src to the program's input, and closes it at
// the end of src, on a read error (recorded for Read) or when the program
// stops reading (it failed, or Close stopped it). Close does not wait for
// feed: a source that blocks keeps it until its Read returns.
func (z *unzstd) feed(w *os.File, head []byte, src io.Reader) {
	defer w.Close()
	if _, err := w.Write(head); err != nil {
		return
	}
	z.fed.Add(int64(len(head)))
	buf := make([]byte, 64<<10)
	for empty := 0; ; {
		n, err := src.Read(buf)
		if n < 0 || n > len(buf) {
			err = errors.New("source returned an invalid count")
			n = 0
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			z.fed.Add(int64(n))
			empty = 0
		} else if err == nil {
			if empty++; empty >= maxEmptyReads {
				err = io.ErrNoProgress
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			z.srcErr.Store(&err)
			return
		}
	}
}

func (z *unzstd) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n, err := z.out.Read(p)
	if err == io.EOF {
		err = z.wait()
	}
	if err != nil {
		z.err = err
	}
	return n, err
}

// wait waits for the program, whose output has ended, and says why it
// ended.
func (z *unzstd) wait() error {
	werr := z.cmd.Wait()
	// feed stores a read error before it closes the program's input, and
	// the program exits only after that, so the error is visible here.
	if e := z.srcErr.Load(); e != nil {
		return *e
	}
	if werr == nil {
		return io.EOF
	}
	msg := z.stderr.message()
	if msg == "" {
		msg = werr.Error() // killed by a signal, say
	}
	e := &zstdError{msg: msg}
	// A cut stream, in zstd's words ("Read error (39) : premature end"
	// inside a frame, "unexpected end of file" inside a frame header;
	// programs/fileio.c, zstd 1.4 to 1.5).
	e.cut = strings.Contains(msg, "premature end") || strings.Contains(msg, "unexpected end of file")
	return e
}

// close stops the program if it is still running and releases its output.
func (z *unzstd) close() {
	if z.cmd.ProcessState == nil {
		z.cmd.Process.Kill()
		z.cmd.Wait()
	}
	z.out.Close()
	if z.err == nil {
		z.err = os.ErrClosed
	}
}

// zstdError is the zstd program's message about a stream it could not
// decompress.
type zstdError struct {
	msg string
	cut bool // the stream ended inside a frame
}

func (e *zstdError) Error() string {
	if e.cut {
		return "zstd: " + e.msg + ": " + io.ErrUnexpectedEOF.Error()
	}
	return "zstd: " + e.msg
}

// Is makes a cut stream errors.Is io.ErrUnexpectedEOF, as a cut gzip
// member is.
func (e *zstdError) Is(target error) bool { return e.cut && target == io.ErrUnexpectedEOF }

// headBuffer keeps the first 1 KiB written to it: the program's error
// message, bounded whatever it prints.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := 1024 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// message is what the program printed, on one line, without the name it
// gives its input ("zstd: /*stdin*\: ", "/*stdin*\ : ").
func (h *headBuffer) message() string {
	var parts []string
	for _, line := range strings.Split(string(h.b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "zstd: ")
		if rest, ok := strings.CutPrefix(line, `/*stdin*\`); ok {
			line = strings.TrimPrefix(strings.TrimSpace(rest), ":")
		}
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}
