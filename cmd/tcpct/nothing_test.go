package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/packet"
)

// pcapOf writes a pcap file of link type link whose records are recs,
// one second apart from 2024-05-01T12:00:00Z.
func pcapOf(link uint32, recs ...[]byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, link)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Unix()
	for i, r := range recs {
		b = le.AppendUint32(b, uint32(t0)+uint32(i))
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(len(r)))
		b = le.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	return b
}

// TestNoTCP: a capture with no TCP packet exits 4 in every format and in
// explain, with a message that counts its records and says what they
// were; a link type tcpct does not decode is named by number and name.
func TestNoTCP(t *testing.T) {
	udp := make([]byte, 28)
	udp[0], udp[3], udp[9] = 0x45, 28, 17 // IPv4, total length 28, UDP
	for _, c := range []struct {
		name string
		data []byte
		want []string
	}{
		{"udp only", pcapOf(101, udp, udp), []string{"no TCP packet in the capture: 2 records, 2 not TCP", "not TCP"}},
		{"Frame Relay", pcapOf(107, make([]byte, 44)), []string{"warning: 1 records of link type 107 (FRELAY) skipped: tcpct does not decode that link type", "no TCP packet in the capture"}},
		{"unnamed", pcapOf(4000, make([]byte, 60), make([]byte, 60)), []string{"2 records of link type 4000 skipped"}},
		{"PPP, not IP", pcapOf(9, make([]byte, 44)), []string{"no TCP packet in the capture: 1 records, 1 not TCP", "PPP protocol other than IPv4 or IPv6"}},
		{"empty", pcapOf(1), []string{"no TCP packet in the capture: 0 records, 0 not TCP"}},
	} {
		for _, args := range [][]string{
			{"replay", "-format", "jsonl"}, {"replay", "-format", "proc"}, {"replay", "-format", "conntrack"},
			{"replay", "-format", "events"}, {"replay", "-format", "summary"}, {"explain"},
		} {
			code, _, errs := runCmd(t, c.data, append(args, "-")...)
			if code != exitNoTCP {
				t.Errorf("%s, %v: status %d, want %d; stderr %q", c.name, args, code, exitNoTCP, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("%s, %v: stderr lacks %q:\n%s", c.name, args, w, errs)
				}
			}
		}
	}
}

// TestSkippedLinkTypeWarned: records of an undecoded link type beside TCP
// ones (a pcapng file with two interfaces) are named on stderr, and the
// TCP packets are still tracked: status 0.
func TestSkippedLinkTypeWarned(t *testing.T) {
	seg := packet.Segment{Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:80"), Seq: 1, Flags: packet.SYN, Window: 64240}
	syn, err := seg.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	block := func(b []byte, typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	idb := func(link uint16) []byte {
		b := le.AppendUint16(nil, link)
		b = le.AppendUint16(b, 0)
		return le.AppendUint32(b, 0)
	}
	epb := func(iface uint32, data []byte) []byte {
		b := le.AppendUint32(nil, iface)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, 1)
		b = le.AppendUint32(b, uint32(len(data)))
		b = le.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	var data []byte
	data = block(data, 0x0a0d0d0a, shb)
	data = block(data, 1, idb(189)) // USB_LINUX
	data = block(data, 1, idb(101)) // raw IP
	data = block(data, 6, epb(0, make([]byte, 48)))
	data = block(data, 6, epb(0, make([]byte, 48)))
	data = block(data, 6, epb(1, syn))
	code, _, errs := runCmd(t, data, "replay", "-format", "proc", "-")
	if code != 0 || !strings.Contains(errs, "warning: 2 records of link type 189 (USB_LINUX) skipped") {
		t.Errorf("status %d, stderr %q", code, errs)
	}
}

// TestAtOutsideCapture: -at before every packet, or after every entry
// expired, says so on stderr (status 0: the table at T is empty, which is
// an answer).
func TestAtOutsideCapture(t *testing.T) {
	for _, c := range []struct {
		at, want string
	}{
		{"2006-11-24T09:00:00Z", "-at 2006-11-24T09:00:00Z is before the capture's first TCP packet (at 2006-11-24T10:00:00Z): no packet was tracked"},
		{"+3m", "-at +3m is 3m0s after the last packet tracked (2006-11-24T10:00:20.042Z): every entry had expired by then"},
		{"2006-11-25T00:00:00Z", "every entry had expired by then"},
	} {
		code, out, errs := runCmd(t, nil, "replay", "-format", "conntrack", "-at", c.at, seedPcap)
		if code != 0 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("-at %s: status %d, stdout %q, stderr %q; want 0, nothing, and %q", c.at, code, out, errs, c.want)
		}
	}
	// A filter that leaves nothing is not an expired table.
	if code, out, errs := runCmd(t, nil, "replay", "-format", "conntrack", "-at", "+1m", "-dport", "80", seedPcap); code != 0 || out != "" || errs != "" {
		t.Errorf("-dport 80: status %d, stdout %q, stderr %q; want 0 and nothing at all", code, out, errs)
	}
	// Within the capture, or after it with an entry left: no warning.
	for _, at := range []string{"2006-11-24T10:00:11Z", "+1m"} {
		if code, out, errs := runCmd(t, nil, "replay", "-format", "conntrack", "-at", at, seedPcap); code != 0 || out == "" || errs != "" {
			t.Errorf("-at %s: status %d, stdout %q, stderr %q", at, code, out, errs)
		}
	}
}

// TestHelpCommand: tcpct help COMMAND prints exactly what COMMAND -h
// prints; help alone, the top-level usage; an unknown command is a usage
// error.
func TestHelpCommand(t *testing.T) {
	for _, cmd := range []string{"replay", "explain", "spec", "docs", "watch", "version"} {
		code, out, _ := runCmd(t, nil, "help", cmd)
		_, want, _ := runCmd(t, nil, cmd, "-h")
		if code != 0 || out != want || !strings.HasPrefix(out, "usage: tcpct "+cmd) {
			t.Errorf("help %s: status %d, output %.80q, want %.80q", cmd, code, out, want)
		}
	}
	if code, out, _ := runCmd(t, nil, "help"); code != 0 || out != topUsage {
		t.Errorf("help: status %d, output %q", code, out)
	}
	if code, _, errs := runCmd(t, nil, "help", "replya"); code != exitUsage || !strings.Contains(errs, `unknown command "replya"`) {
		t.Errorf("help replya: status %d, stderr %q", code, errs)
	}
}

// TestVersion: version prints the module, the VCS revision (with
// +modified) and the Go version from the build information.
func TestVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Path: "github.com/fdac824a/tcpct/cmd/tcpct",
		Main:     debug.Module{Path: "github.com/fdac824a/tcpct", Version: "v0.0.0-20261206010203-abcdef012345+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef0123456789"}, {Key: "vcs.time", Value: "2026-12-06T01:02:03Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "tcpct github.com/fdac824a/tcpct v0.0.0-20261206010203-abcdef012345+dirty\nrevision abcdef0123456789+modified (2026-12-06T01:02:03Z)\ngo       go1.26.0\n"
	if got := versionText(bi); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	bi.Settings = nil
	if got := versionText(bi); !strings.Contains(got, "revision unknown (built without VCS information)") {
		t.Errorf("no VCS: %s", got)
	}
	code, out, _ := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "tcpct github.com/fdac824a/tcpct ") || !strings.Contains(out, "\ngo       go1.") {
		t.Errorf("status %d, output %q", code, out)
	}
}

// TestZstdCapture: a zstd-compressed capture (written by the zstd program,
// which also reads it) gives the same output as the plain file, by file
// name or on standard input.
func TestZstdCapture(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("the zstd program is not on PATH (apt-get install zstd): zstd captures cannot be read")
	}
	path := filepath.Join(t.TempDir(), "seed.pcap.zst")
	if err := exec.Command("zstd", "-q", "-19", seedPcap, "-o", path).Run(); err != nil {
		t.Fatal(err)
	}
	z, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := runCmd(t, nil, "replay", "-format", "jsonl", seedPcap)
	for _, args := range [][]string{{path}, {"-"}} {
		code, out, errs := runCmd(t, z, append([]string{"replay", "-format", "jsonl"}, args...)...)
		if code != 0 || out != want {
			t.Errorf("%v: status %d, stderr %q, output differs from the plain file's", args, code, errs)
		}
	}
}

// TestZstdMissing: without the zstd program, a zstd capture is an input
// error (status 2) whose message says what to install.
func TestZstdMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	path := filepath.Join(t.TempDir(), "seed.pcap.zst")
	// A Zstandard frame's magic (RFC 8878 §3.1.1) is all it takes.
	if err := os.WriteFile(path, []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, nil, "replay", path)
	if want := path + ": zstd-compressed: reading it needs the zstd program: apt-get install zstd, or decompress it first"; code != 2 || out != "" || !strings.Contains(errs, want) {
		t.Errorf("status %d, stdout %q, stderr %q; want 2 and %q", code, out, errs, want)
	}
}

// TestEventsTimestamp: -timestamp prefixes every event with the time it
// happened as conntrack -E -o timestamp does (seconds, a dot, six digits
// of microseconds, in brackets, then a tab); without it the stream is
// byte for byte the plain one.
func TestEventsTimestamp(t *testing.T) {
	_, plain, _ := runCmd(t, nil, "replay", "-format", "events", "-at", "+5m", seedPcap)
	code, ts, errs := runCmd(t, nil, "replay", "-format", "events", "-timestamp", "-at", "+5m", seedPcap)
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	pre := regexp.MustCompile(`(?m)^\[\d+\.\d{6}\]\t`)
	if got := pre.ReplaceAllString(ts, ""); got != plain {
		t.Errorf("without the prefixes the stream differs:\n%s\nplain:\n%s", got, plain)
	}
	lines := strings.Split(strings.TrimSuffix(ts, "\n"), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "[1164362400.000000]\t    [NEW] ") ||
		!strings.HasPrefix(lines[6], "[1164362420.042000]\t [UPDATE] ") ||
		!strings.Contains(lines[7], "]\t[DESTROY] ") {
		t.Errorf("events:\n%s", ts)
	}
	// A DESTROY carries the time the entry was reclaimed, as conntrack's
	// carries the time the kernel's gc reclaimed it: no earlier than its
	// expiry (TIME_WAIT's 120 s after the last packet), no later than -at.
	if d := lines[7][1:strings.Index(lines[7], "]")]; d < "1164362540.042000" || d > "1164362720.042000" {
		t.Errorf("DESTROY at %s, outside [expiry, -at]", d)
	}
	for _, ns := range []int64{0, 5, 999999999, 1e9 + 123456789, -1} {
		want := fmt.Sprintf("[%d.%06d]\t", ns/1e9, ns%1e9/1e3)
		if ns < 0 {
			want = "[-1.999999]\t"
		}
		if got := string(appendEventTime(nil, ns)); got != want {
			t.Errorf("%d: %q, want %q", ns, got, want)
		}
	}
	if code, _, errs := runCmd(t, nil, "replay", "-format", "proc", "-timestamp", seedPcap); code != exitUsage || !strings.Contains(errs, "-timestamp prefixes events") {
		t.Errorf("-timestamp with proc: status %d, stderr %q", code, errs)
	}
}

// TestClosedPipe: 'tcpct replay ... | head -1' through a real pipe, with
// the built command: head gets its line, and tcpct exits 3 quietly (not
// 141, death by SIGPIPE) and stops reading the capture.
func TestClosedPipe(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tcpct")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	capPath := filepath.Join(dir, "big.pcap")
	if err := os.WriteFile(capPath, multiConnCapture(t, 3000, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"jsonl", "events"} {
		script := fmt.Sprintf(`%q replay -format %s -j 1 %q 2>%q | head -1 >/dev/null; echo "${PIPESTATUS[0]}"`, bin, format, capPath, filepath.Join(dir, "stderr"))
		out, err := exec.Command("bash", "-c", script).Output()
		if err != nil {
			t.Fatal(err)
		}
		errs, _ := os.ReadFile(filepath.Join(dir, "stderr"))
		if got := strings.TrimSpace(string(out)); got != "3" || len(errs) != 0 {
			t.Errorf("%s | head -1: status %s, stderr %q; want 3 and nothing", format, got, errs)
		}
	}
}

// TestOutputStopsEarly: once the output fails, replay reads no further
// than the batch in hand: a failing writer sees one failed write of the
// first 64 KiB, not one per record of the capture.
func TestOutputStopsEarly(t *testing.T) {
	data := multiConnCapture(t, 3000, 5)
	w := &countingFailWriter{}
	var errb bytes.Buffer
	code := run([]string{"replay", "-format", "jsonl", "-j", "1", "-"}, bytes.NewReader(data), w, &errb)
	if code != exitOutput || w.calls > 2 {
		t.Errorf("status %d, %d writes, stderr %q", code, w.calls, errb.String())
	}
}

type countingFailWriter struct{ calls int }

func (w *countingFailWriter) Write([]byte) (int, error) {
	w.calls++
	return 0, fmt.Errorf("no space left on device")
}
