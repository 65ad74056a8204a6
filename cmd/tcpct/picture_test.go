package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const windowCapture = "../../examples/out-of-window.pcap"

// The picture in docs/ is what explain -o draws for the example capture,
// byte for byte, and drawing it twice gives the same bytes.
func TestPictureDocsCurrent(t *testing.T) {
	dir := t.TempDir()
	var got [2][]byte
	for i := range got {
		path := filepath.Join(dir, fmt.Sprintf("w%d.svg", i))
		if code, _, errs := runCmd(t, nil, "explain", "-o", path, windowCapture); code != 0 {
			t.Fatalf("explain -o: status %d: %s", code, errs)
		}
		var err error
		if got[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatal("two runs of explain -o on the same capture wrote different SVGs")
	}
	const docs = "../../docs/explain-out-of-window.svg"
	if *update {
		if err := os.WriteFile(docs, got[0], 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(docs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0], want) {
		t.Errorf("%s is stale: run go test ./cmd/tcpct -run TestPictureDocsCurrent -update (and render the PNG again, see docs/README.md)", docs)
	}
}

// node is any XML element, kept whole.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

func (n *node) walk(fn func(*node)) {
	fn(n)
	for i := range n.Nodes {
		n.Nodes[i].walk(fn)
	}
}

func (n *node) child(name string) *node {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == name {
			return &n.Nodes[i]
		}
	}
	return nil
}

func drawSVG(t *testing.T, args ...string) (string, *node) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conn.svg")
	args = append([]string{"explain", "-o", path}, args...)
	if code, _, errs := runCmd(t, nil, args...); code != 0 {
		t.Fatalf("%v: status %d: %s", args, code, errs)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root node
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("the SVG is not well-formed XML: %v", err)
	}
	return path, &root
}

// TestPictureStructure reads the SVG back as XML and checks what a reader
// of the picture relies on: every packet is drawn once, in its sender's
// graph, coloured by its verdict, with its reason on hover; the accepted
// segments lie inside the band of the bounds the tracker held before them
// and the out-of-window one above it. The elements and coordinates are
// also pinned in a golden file, so that a change to the drawing is seen.
func TestPictureStructure(t *testing.T) {
	_, root := drawSVG(t, windowCapture)
	if root.XMLName.Local != "svg" || root.attr("width") != "1000" {
		t.Fatalf("root <%s width=%q>, want <svg width=1000>", root.XMLName.Local, root.attr("width"))
	}
	var pinned strings.Builder
	type seg struct {
		record  int
		verdict string
		x, top  float64 // top: the y of seq+len (SVG y grows downwards)
		bottom  float64
		title   string
	}
	type bound struct{ x1, x2, y float64 }
	var segs [2][]seg
	var maxend [2][]bound
	records := map[int]int{}
	for p := range 2 {
		var panel *node
		root.walk(func(n *node) {
			if n.XMLName.Local == "g" && n.attr("id") == fmt.Sprintf("dir%d", p) {
				panel = n
			}
		})
		if panel == nil {
			t.Fatalf("no <g id=dir%d>", p)
		}
		fmt.Fprintf(&pinned, "panel %d: %s\n", p, panel.child("text").Text)
		panel.walk(func(n *node) {
			switch {
			case n.XMLName.Local == "line" && n.attr("class") == "maxend":
				b := bound{n.num(t, "x1"), n.num(t, "x2"), n.num(t, "y1")}
				maxend[p] = append(maxend[p], b)
				fmt.Fprintf(&pinned, "  maxend %.1f..%.1f at y %.1f\n", b.x1, b.x2, b.y)
			case n.XMLName.Local == "rect" && n.attr("class") == "band":
				fmt.Fprintf(&pinned, "  band x %s w %s y %s h %s\n", n.attr("x"), n.attr("width"), n.attr("y"), n.attr("height"))
			case n.XMLName.Local == "g" && strings.HasPrefix(n.attr("class"), "pkt "):
				line := n.child("line")
				rec, _ := strconv.Atoi(n.attr("data-record"))
				records[rec]++
				s := seg{record: rec, verdict: strings.TrimPrefix(n.attr("class"), "pkt "), x: line.num(t, "x1"),
					top: min(line.num(t, "y1"), line.num(t, "y2")), bottom: max(line.num(t, "y1"), line.num(t, "y2")),
					title: n.child("title").Text}
				if s.x != line.num(t, "x2") {
					s.x = (s.x + line.num(t, "x2")) / 2 // a tick: no sequence space
				}
				segs[p] = append(segs[p], s)
				mark := ""
				if m := n.child("text"); m != nil {
					mark = " " + m.Text
				}
				fmt.Fprintf(&pinned, "  #%d %s x %.1f y %.1f..%.1f stroke %s%s\n", rec, s.verdict, s.x, s.top, s.bottom, line.attr("stroke"), mark)
			case n.XMLName.Local == "g" && strings.HasPrefix(n.attr("class"), "ack "):
				fmt.Fprintf(&pinned, "  ack #%s %s %s\n", n.attr("data-record"), strings.TrimPrefix(n.attr("class"), "ack "), n.child("path").attr("d"))
			case n.XMLName.Local == "text" && n.attr("class") == "note":
				fmt.Fprintf(&pinned, "  note %q at %s,%s\n", n.Text, n.attr("x"), n.attr("y"))
			}
		})
	}
	pinned.WriteString("legend:")
	root.walk(func(n *node) {
		if n.XMLName.Local == "g" && n.attr("class") == "legend" {
			n.walk(func(m *node) {
				if m.XMLName.Local == "text" && m.Text != "FIN" {
					pinned.WriteString(" | " + m.Text)
				}
			})
		}
	})
	pinned.WriteString("\n")
	golden(t, "out-of-window.picture", pinned.String())

	// Every one of the 17 packets is drawn once, as a segment of its sender.
	if len(records) != 17 || len(segs[0]) != 11 || len(segs[1]) != 6 {
		t.Errorf("%d packets drawn (%d from the client, %d from the server), want 17 (11, 6)", len(records), len(segs[0]), len(segs[1]))
	}
	for r, n := range records {
		if n != 1 {
			t.Errorf("record %d drawn %d times", r, n)
		}
	}
	// The upper bound in force when a segment arrived is the one drawn
	// just before it.
	boundAt := func(p int, x float64) (float64, bool) {
		for _, b := range maxend[p] {
			if b.x1 < x && x <= b.x2 {
				return b.y, true
			}
		}
		return 0, false
	}
	invalid := 0
	for p := range 2 {
		for _, s := range segs[p] {
			y, ok := boundAt(p, s.x)
			switch s.verdict {
			case "invalid":
				invalid++
				if p != 0 || s.record != 10 || !strings.Contains(s.title, "INVALID: SEQ is over upper bound") {
					t.Errorf("INVALID packet #%d in panel %d, title %q; want #10 of the client, with its reason", s.record, p, s.title)
				}
				if !ok || s.bottom >= y {
					t.Errorf("INVALID #%d starts at y %.1f, not above the upper bound in force (y %.1f, found %v)", s.record, s.bottom, y, ok)
				}
			case "accepted":
				if ok && s.bottom < y-0.05 {
					t.Errorf("accepted #%d starts at y %.1f, above the upper bound in force (y %.1f)", s.record, s.bottom, y)
				}
			default:
				t.Errorf("#%d: verdict %q", s.record, s.verdict)
			}
		}
	}
	if invalid != 1 {
		t.Errorf("%d INVALID packets drawn, want 1", invalid)
	}
}

// The HTML page has the same picture and one table row per packet, the
// INVALID one marked and with its reason.
func TestPictureHTML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conn.html")
	if code, _, errs := runCmd(t, nil, "explain", "-o", path, windowCapture); code != 0 {
		t.Fatalf("status %d: %s", code, errs)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(b, []byte("<!DOCTYPE html>\n"))))
	var root node
	if err := d.Decode(&root); err != nil {
		t.Fatalf("the page is not well-formed: %v", err)
	}
	var rows []*node
	svgs := 0
	root.walk(func(n *node) {
		switch n.XMLName.Local {
		case "tr":
			if n.attr("id") != "" {
				rows = append(rows, n)
			}
		case "svg":
			svgs++
		}
	})
	if svgs != 1 || len(rows) != 17 {
		t.Fatalf("%d svg, %d packet rows; want 1, 17", svgs, len(rows))
	}
	for i, r := range rows {
		cls := "accepted"
		if i == 10 {
			cls = "invalid"
		}
		if r.attr("class") != cls || r.attr("id") != "r"+strconv.Itoa(i) {
			t.Errorf("row %d: id %q class %q, want r%d %s", i, r.attr("id"), r.attr("class"), i, cls)
		}
	}
	cells := rows[10].Nodes
	if len(cells) != 14 || cells[9].Text != "INVALID" || !strings.HasPrefix(cells[11].Text, "SEQ is over upper bound") {
		t.Errorf("row 10: %d cells, ct %q, reason %q", len(cells), cells[9].Text, cells[11].Text)
	}
	// The bounds after the handshake ACK: the client's td_end is its ISN+1,
	// its td_maxend that plus the server's window (4096); td_maxwin 8192.
	if got, want := rows[2].Nodes[12].Text, "472727120 / 472731216 / 8192"; got != want {
		t.Errorf("row 2, client's bounds: %q, want %q", got, want)
	}
}

// TestPicturePNG renders the SVG as a viewer would (rsvg-convert, from
// librsvg2-bin, which .ci/run installs) and checks the pixels where the
// structure says the out-of-window segment and the band are: red there,
// the band's blue behind the accepted data.
func TestPicturePNG(t *testing.T) {
	rsvg, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Skip("rsvg-convert not installed (apt-get install librsvg2-bin)")
	}
	svg, root := drawSVG(t, windowCapture)
	out := filepath.Join(t.TempDir(), "conn.png")
	if b, err := exec.Command(rsvg, "-o", out, svg).CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 1000 || h < 800 {
		t.Fatalf("PNG %dx%d, want 1000 wide and at least 800 high", w, h)
	}
	// Find the INVALID segment and a band.
	var invX, invY float64
	var bandX, bandY float64
	root.walk(func(n *node) {
		if n.XMLName.Local == "g" && n.attr("class") == "pkt invalid" {
			l := n.child("line")
			invX, invY = l.num(t, "x1"), (l.num(t, "y1")+l.num(t, "y2"))/2
		}
		if n.XMLName.Local == "rect" && n.attr("class") == "band" && bandX == 0 && n.num(t, "height") > 20 {
			bandX, bandY = n.num(t, "x")+n.num(t, "width")/2, n.num(t, "y")+5
		}
	})
	if invX == 0 || bandX == 0 {
		t.Fatal("no INVALID segment or band in the SVG")
	}
	if r, g, b := rgb(img, invX, invY); !(r > 180 && g < 80 && b < 80) {
		t.Errorf("pixel of the INVALID segment at %.0f,%.0f is rgb(%d,%d,%d), not red", invX, invY, r, g, b)
	}
	if r, g, b := rgb(img, bandX, bandY); !(b > 200 && r < 225 && b > r+10) {
		t.Errorf("pixel inside a band at %.0f,%.0f is rgb(%d,%d,%d), not light blue", bandX, bandY, r, g, b)
	}
	if dir := os.Getenv("TCPCT_PICTURE_DIR"); dir != "" { // to look at it
		b, _ := os.ReadFile(out)
		os.WriteFile(filepath.Join(dir, "out-of-window.png"), b, 0o644)
	}
}

func rgb(img image.Image, x, y float64) (r, g, b uint32) {
	r, g, b, _ = img.At(int(x), int(y)).RGBA()
	return r >> 8, g >> 8, b >> 8
}

func TestPictureErrors(t *testing.T) {
	code, _, errs := runCmd(t, nil, "explain", "-o", "conn.png", windowCapture)
	if code != exitUsage || !strings.Contains(errs, "-o conn.png: want a file name ending in .svg or .html") {
		t.Errorf("-o conn.png: status %d, stderr %q", code, errs)
	}
	code, out, errs := runCmd(t, nil, "explain", "-o", filepath.Join(t.TempDir(), "no", "such", "dir.svg"), windowCapture)
	if code != exitOutput || !strings.Contains(errs, "writing output") || !strings.Contains(out, "#10 ") {
		t.Errorf("-o into a missing directory: status %d, stderr %q (the narration should still be printed)", code, errs)
	}
}

// Sequence numbers that wrap past 2^32 keep climbing in the picture.
func TestUnwrap(t *testing.T) {
	u := unwrap{raw: 0xffffff00}
	if got := u.at(0x100); got != 512 {
		t.Errorf("0x100 after 0xffffff00: %v, want 512", got)
	}
	u.move(0x100)
	if got := u.at(0xffffff80); got != 128 {
		t.Errorf("0xffffff80 after moving to 0x100: %v, want 128", got)
	}
	if got := u.at(0x80000000); got != 512+0x7fffff00 {
		t.Errorf("far ahead: %v", got)
	}
}

// The README's transcript from the capture to the picture runs as shown:
// each command's output contains the lines the README shows, in order.
func TestReadmeWindowTranscript(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "$ tcpct replay -format summary examples/out-of-window.pcap")
	if i < 0 {
		t.Fatal("README.md has no out-of-window transcript")
	}
	block := s[i:]
	block = block[:strings.Index(block, "```")]
	var cmds []string
	var shown [][]string
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "$ "); ok {
			cmds = append(cmds, rest)
			shown = append(shown, nil)
			continue
		}
		shown[len(shown)-1] = append(shown[len(shown)-1], line)
	}
	if len(cmds) != 2 {
		t.Fatalf("%d commands in the transcript, want 2", len(cmds))
	}
	dir := t.TempDir()
	for n, c := range cmds {
		tcpctPart, _, _ := strings.Cut(c, " | ")
		args := shellWords(t, strings.TrimPrefix(tcpctPart, "tcpct "))
		for j, a := range args {
			if strings.HasPrefix(a, "examples/") {
				args[j] = "../../" + a
			}
			if j > 0 && args[j-1] == "-o" {
				args[j] = filepath.Join(dir, a)
			}
		}
		code, out, errs := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%s: status %d: %s", c, code, errs)
		}
		lines := strings.Split(out, "\n")
		k := 0
		for _, want := range shown[n] {
			for k < len(lines) && lines[k] != want {
				k++
			}
			if k == len(lines) {
				t.Errorf("%s: output lacks (in order) %q", c, want)
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "conn.svg")); err != nil {
		t.Errorf("the transcript's picture was not written: %v", err)
	}
}

// shellWords splits a command line on spaces, keeping 'single-quoted'
// words whole.
func shellWords(t *testing.T, s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				t.Fatalf("unbalanced quote in %q", s)
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		out = append(out, w)
		s = rest
	}
	return out
}

// A tuple reused with a new sequence space (record 47 is a new SYN that
// the tracker ignores, and the server's SYN/ACK then resynchronises it to
// the new connection): the count restarts, so the new connection's
// segments are drawn where the first connection's were, not hundreds of
// millions below; the ignored SYN itself stays where its number puts it,
// far from the window the tracker held.
func TestPictureNewSequenceSpace(t *testing.T) {
	_, root := drawSVG(t, "-packet", "157", "../../tcpcttest/testdata/default.pcap.gz")
	var label string
	ys := map[int]float64{}
	verdict := map[int]string{}
	root.walk(func(n *node) {
		if n.XMLName.Local != "g" || n.attr("id") != "dir0" {
			return
		}
		n.walk(func(m *node) {
			if m.XMLName.Local == "text" && strings.HasPrefix(m.Text, "relative seq") {
				label = m.Text
			}
			if m.XMLName.Local == "g" && strings.HasPrefix(m.attr("class"), "pkt ") {
				rec, _ := strconv.Atoi(m.attr("data-record"))
				ys[rec] = m.child("line").num(t, "y1")
				verdict[rec] = strings.TrimPrefix(m.attr("class"), "pkt ")
			}
		})
	})
	if !strings.Contains(label, "then restarted") {
		t.Errorf("axis label %q does not say the count restarted", label)
	}
	first := 1 << 30
	for rec := range ys {
		first = min(first, rec)
	}
	if verdict[47] != "ignored" || ys[47]-ys[first] < 100 {
		t.Errorf("record 47: %s at y %.1f, the first SYN (#%d) at %.1f; want the ignored SYN far below", verdict[47], ys[47], first, ys[first])
	}
	later := 0
	for rec, y := range ys {
		if rec > 60 && verdict[rec] == "accepted" {
			later++
			if d := y - ys[first]; d > 5 || d < -5 {
				t.Errorf("record %d of the new connection at y %.1f, the first connection's SYN at %.1f", rec, y, ys[first])
			}
		}
	}
	if later < 5 {
		t.Errorf("%d accepted client segments after the resynchronisation, want several", later)
	}
}

// An entry that expires between packets: its bounds end at the expiry
// (explain's DESTROY event), not at the next packet; the ACK that picks
// the connection up again starts a new entry whose windows are liberal
// (the mid-stream pickup of tcp_loose=1: no window check), drawn grey.
func TestPictureExpiryAndPickup(t *testing.T) {
	_, root := drawSVG(t, "-sysctl", "tcp_timeout_syn_sent=2", "../../examples/telnet-seed.pcap")
	var goneX, newX float64
	var firstBandEnd float64
	grey, blue := 0, 0
	root.walk(func(n *node) {
		if n.XMLName.Local != "g" || n.attr("id") != "dir0" {
			return
		}
		n.walk(func(m *node) {
			switch {
			case m.XMLName.Local == "g" && m.attr("class") == "gone" && m.child("text").Text == "entry expired":
				goneX = m.child("line").num(t, "x1")
			case m.XMLName.Local == "g" && m.attr("class") == "newentry" && m.child("text").Text == "#4 new entry":
				newX = m.child("line").num(t, "x1")
			case m.XMLName.Local == "rect" && m.attr("class") == "band":
				if firstBandEnd == 0 {
					firstBandEnd = m.num(t, "x") + m.num(t, "width")
				}
				switch m.attr("fill") {
				case picBandLib:
					grey++
				case picBandFill:
					blue++
				}
			}
		})
	})
	if goneX == 0 || newX <= goneX {
		t.Fatalf("expiry at x %.1f, new entry at x %.1f: want both, expiry first", goneX, newX)
	}
	if d := firstBandEnd - goneX; d > 0.15 || d < -0.15 {
		t.Errorf("the first entry's band ends at x %.1f, its expiry is at %.1f", firstBandEnd, goneX)
	}
	if blue != 1 || grey == 0 {
		t.Errorf("%d tracked and %d liberal bands; want 1 (the SYN's entry) and some (the picked-up one)", blue, grey)
	}
}
