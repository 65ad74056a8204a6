package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/packet"
	"github.com/fdac824a/tcpct/table"
)

// picture is explain's drawing of one connection (explain -o): for each
// direction a time-sequence graph in the style of tcptrace and of
// Stevens' TCP/IP Illustrated (sequence number against time, each segment
// a vertical bar from seq to seq+len), with the tracker's view laid over
// it: after every packet, the range of sequence numbers the window check
// would accept next from that sender, as a band.
//
// The band is what Linux's tcp_in_window() (net/netfilter/
// nf_conntrack_proto_tcp.c, 6.18) keeps in struct ip_ct_tcp_state for each
// direction and tests a segment against: its upper edge is the sender's
// td_maxend (the highest ack+window the receiver has offered: a segment
// starting beyond it is "SEQ is over upper bound"), its lower edge the
// sender's td_end minus the receiver's td_maxwin (a segment ending below
// it is old data, "SEQ is under lower bound"); td_end itself (the highest
// seq+len sent) is the dashed line, which the peer's ACKs may not pass
// ("ACK is over upper bound"). td_maxwin is kept scaled, so the bounds are
// in bytes whatever the window scale. The peer's ACKs are drawn as ticks
// in the same graph, at the sequence number they acknowledge.
//
// Each packet is coloured by its verdict: accepted, ignored (the kernel
// lets it through without learning from it) or INVALID; its <title>
// (shown on hover) gives the record, flags, numbers, state and reason.
// The output is a function of the packets alone: fixed layout, numbers
// formatted with fixed precision, no clock and no randomness.
type picture struct {
	have  bool
	a     table.Key // the first packet's tuple: its sender is side A
	pkts  []picPacket
	prof  string
	gones []picGone // the entry went away between packets
}

// picGone is an entry's end that no packet of the connection caused: its
// timeout ran out, or early drop evicted it.
type picGone struct {
	time int64
	what string
}

// destroyed records that the connection's entry went away other than by
// one of its packets (explain's DESTROY events): the bounds end there.
func (pc *picture) destroyed(ev *tcpct.Event) {
	if !pc.have {
		return
	}
	g := picGone{time: ev.Time.UnixNano(), what: "entry evicted"}
	if ev.Reason == table.ReasonExpired {
		g = picGone{time: ev.Entry.Conn.Deadline, what: "entry expired"}
	}
	pc.gones = append(pc.gones, g)
}

// picPacket is one packet of the connection and the tracker's bounds
// right after it.
type picPacket struct {
	index    int
	time     int64
	action   fsm.Action
	fromA    bool
	src, dst netip.AddrPort
	seq, ack uint32
	end      uint32 // seq + len, plus one for SYN and FIN
	len      uint32
	win      uint16
	flags    fsm.Flags
	verdict  string // "accepted", "ignored", "invalid"
	ct       string
	class    string
	old, new string
	reason   string
	ackBound bool // the ACK broke a bound, not the sequence numbers
	entry    bool
	bounds   [2]picBounds // by sender: [0] A's sequence space, [1] B's
}

// picBounds is what the tracker holds about one sender after a packet.
type picBounds struct {
	ok         bool   // the sender's window is being tracked (td_maxwin != 0)
	end        uint32 // td_end
	maxEnd     uint32 // td_maxend
	maxWin     uint32 // td_maxwin, the sender's largest window, scaled
	peerMaxWin uint32 // the receiver's td_maxwin: end-peerMaxWin is the lower bound
	liberal    bool   // IP_CT_TCP_FLAG_BE_LIBERAL: no window check for this sender
}

// pictureFormat checks -o's extension.
func pictureFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".html", ".htm":
		return ext, nil
	default:
		return "", fmt.Errorf("-o %s: want a file name ending in .svg or .html", path)
	}
}

// writeFile writes the picture to path, as SVG or HTML by its extension.
func (pc *picture) writeFile(path string) error {
	ext, err := pictureFormat(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if ext == ".svg" {
		err = pc.writeSVG(f)
	} else {
		err = pc.writeHTML(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// add records one packet of the connection, after the tracker has seen it.
func (pc *picture) add(tr *tcpct.Tracker, pk *capture.Packet, seg *fsm.Segment, v *tcpct.Verdict) {
	k := tcpct.KeyOf(pk.SrcAddrPort(), pk.DstAddrPort())
	if !pc.have {
		pc.have, pc.a, pc.prof = true, k, tr.Profile().Name
	}
	p := picPacket{
		index: pk.Index, time: pk.Time, fromA: k == pc.a,
		src: netip.AddrPortFrom(pk.Src, pk.SrcPort), dst: netip.AddrPortFrom(pk.Dst, pk.DstPort),
		seq: seg.Seq, ack: seg.Ack, end: seg.End(), len: seg.Len, win: seg.Win, flags: seg.Flags,
		verdict: "accepted", ct: v.CT.String(), class: v.ClassName(), old: v.OldName(), new: v.StateName(),
		entry: v.Entry, action: v.Action,
	}
	switch {
	case v.CT == fsm.CTInvalid:
		p.verdict, p.reason = "invalid", v.ReasonText()
	case v.Ignored:
		p.verdict, p.reason = "ignored", v.ReasonText()
	}
	p.ackBound = v.Reason == fsm.ReasonAckOverUpper || v.Reason == fsm.ReasonAckUnderLower
	if v.Entry {
		if e, _, ok := tr.Lookup(netipSrc(v.Key), netipDst(v.Key), v.Time()); ok {
			orig, reply := e.Conn.Seen[fsm.Original], e.Conn.Seen[fsm.Reply]
			switch e.Key {
			case pc.a:
				p.bounds = [2]picBounds{boundsOf(&orig, &reply), boundsOf(&reply, &orig)}
			case pc.a.Reverse():
				p.bounds = [2]picBounds{boundsOf(&reply, &orig), boundsOf(&orig, &reply)}
			}
		}
	}
	pc.pkts = append(pc.pkts, p)
}

func boundsOf(sender, receiver *fsm.Peer) picBounds {
	return picBounds{
		ok: sender.MaxWin != 0, end: sender.End, maxEnd: sender.MaxEnd, maxWin: sender.MaxWin,
		peerMaxWin: receiver.MaxWin, liberal: sender.Flags&fsm.FlagBeLiberal != 0,
	}
}

// Layout, in SVG user units (pixels at 100 %).
const (
	picWidth    = 1000
	picLeft     = 96 // plot area's left edge (room for the sequence labels)
	picRight    = 976
	picTop      = 64 // first panel's top
	picPanelH   = 300
	picPanelGap = 78 // between panels: the time axis labels and the next title
	picLegendH  = 86
)

// Colours. Accepted packets are dark; ignored ones orange and INVALID
// ones red, both thicker and ringed, so that they stand out in print too.
var picColour = map[string]string{"accepted": "#1b3f73", "ignored": "#e07b00", "invalid": "#d01c1c"}

const (
	picBandFill = "#9ecae1" // the accepted sequence range
	picBandLib  = "#d0d0d0" // the same for a liberal sender (not enforced)
	picMaxEnd   = "#2171b5"
	picEnd      = "#08306b"
	picAck      = "#2e8b3e"
	picGrid     = "#e4e4e4"
	picAxisText = "#333333"
)

// panel is one direction's graph, in relative sequence numbers.
type panel struct {
	sender int // 0: A's segments, 1: B's
	title  string
	top    float64
	lo, hi float64 // y range, relative sequence numbers
	base   uint32  // raw sequence number drawn as 0 (until a SYN restarts the count)
	syns   int     // how often a new sequence space restarted the count
	segs   []picSeg
	acks   []picAckTick
	bands  []picBand
	notes  []picNote // where ignored and INVALID packets are labelled
}

// picNote labels a packet that stands out, at the mark that shows why:
// the ACK tick when the ACK broke a bound, else the segment.
type picNote struct {
	p    *picPacket
	x, y float64
}

// ackReason reports whether the packet's ACK broke a bound (III or IV
// of tcp_in_window()), not its sequence numbers.
func ackReason(p *picPacket) bool { return p.ackBound }

type picSeg struct {
	p      *picPacket
	x      float64 // seconds since the first packet
	y0, y1 float64 // relative seq and end
}

type picAckTick struct {
	p *picPacket
	x float64
	y float64
}

type picBand struct {
	x0, x1         float64
	lo, hi, end    float64
	hasLo, liberal bool
}

// unwrap turns 32-bit sequence numbers into a line: each value is read
// as the nearest one (within 2 GiB) to the previous reference, so long
// connections whose numbers wrap still draw as a straight climb.
type unwrap struct {
	raw uint32
	rel int64
}

func (u *unwrap) at(x uint32) float64 { return float64(u.rel + int64(int32(x-u.raw))) }
func (u *unwrap) move(x uint32)       { u.rel, u.raw = u.rel+int64(int32(x-u.raw)), x }

func (pc *picture) panels() (t0, span float64, ps [2]*panel) {
	if len(pc.pkts) > 0 {
		first, last := pc.pkts[0].time, pc.pkts[len(pc.pkts)-1].time
		t0, span = float64(first), float64(last-first)/1e9
	}
	if span <= 0 {
		span = 1e-3
	}
	a, b := netipSrc(pc.a), netipDst(pc.a)
	for s := 0; s < 2; s++ {
		p := &panel{sender: s, top: picTop + float64(s)*(picPanelH+picPanelGap)}
		if s == 0 {
			p.title = fmt.Sprintf("%s → %s: its segments, the peer's ACKs", a, b)
		} else {
			p.title = fmt.Sprintf("%s → %s: its segments, the peer's ACKs", b, a)
		}
		// The sequence number drawn as 0: the sender's first sequence
		// number (its ISN when the SYN was captured), else the first
		// ACK of it, else the tracker's td_end.
		found := false
		for i := range pc.pkts {
			q := &pc.pkts[i]
			switch {
			case q.fromA == (s == 0):
				p.base, found = q.seq, true
			case q.flags&packet.ACK != 0:
				p.base, found = q.ack, true
			case q.bounds[s].ok:
				p.base, found = q.bounds[s].end, true
			}
			if found {
				break
			}
		}
		u := unwrap{raw: p.base}
		var prevEnd uint32
		havePrev := false
		for i := range pc.pkts {
			q := &pc.pkts[i]
			x := (float64(q.time) - t0) / 1e9
			// A new sequence space for this sender (the tuple reused by
			// a new connection, or the tracker resynchronised to one):
			// count from it again, or the two would be drawn up to 2^31
			// apart. Either this sender's accepted SYN starts it, or the
			// tracker's td_end leaps further than any window allows.
			switch bd := q.bounds[s]; {
			case q.fromA == (s == 0) && q.verdict == "accepted" && q.flags&packet.SYN != 0 && q.seq != u.raw:
				u = unwrap{raw: q.seq}
				p.syns++
			case q.entry && bd.ok && havePrev && leap(bd.end-prevEnd, bd):
				u = unwrap{raw: bd.end}
				p.syns++
			}
			if bd := q.bounds[s]; q.entry && bd.ok {
				prevEnd, havePrev = bd.end, true
			}
			if q.fromA == (s == 0) {
				g := picSeg{p: q, x: x, y0: u.at(q.seq), y1: u.at(q.end)}
				p.segs = append(p.segs, g)
				if q.verdict != "accepted" && !(ackReason(q) && q.flags&packet.ACK != 0) {
					p.notes = append(p.notes, picNote{q, x, (g.y0 + g.y1) / 2})
				}
				if q.verdict == "accepted" {
					u.move(q.seq)
				}
			} else if q.flags&packet.ACK != 0 {
				p.acks = append(p.acks, picAckTick{p: q, x: x, y: u.at(q.ack)})
				if q.verdict != "accepted" && ackReason(q) {
					p.notes = append(p.notes, picNote{q, x, u.at(q.ack)})
				}
			}
			bd := q.bounds[s]
			if !q.entry || !bd.ok {
				continue
			}
			x1 := span * 1.04 // the last bounds hold to the right edge
			if i+1 < len(pc.pkts) {
				x1 = (float64(pc.pkts[i+1].time) - t0) / 1e9
			}
			for _, g := range pc.gones { // unless the entry went away first
				if gx := (float64(g.time) - t0) / 1e9; gx >= x && gx < x1 {
					x1 = gx
				}
			}
			band := picBand{x0: x, x1: x1, hi: u.at(bd.maxEnd), end: u.at(bd.end), liberal: bd.liberal}
			if bd.peerMaxWin != 0 {
				band.lo, band.hasLo = u.at(bd.end-bd.peerMaxWin), true
			}
			// Bounds that did not move extend the band before them: a
			// long connection draws one rectangle per change, not per
			// packet.
			if n := len(p.bands); n > 0 {
				last := &p.bands[n-1]
				if last.x1 == band.x0 && last.lo == band.lo && last.hi == band.hi && last.end == band.end &&
					last.hasLo == band.hasLo && last.liberal == band.liberal {
					last.x1 = band.x1
					continue
				}
			}
			p.bands = append(p.bands, band)
		}
		// The y range holds every segment, ACK, td_end and td_maxend;
		// the lower bound is often a whole window below the data and is
		// cut at the panel's edge rather than squeezing the data.
		lo, hi := math.Inf(1), math.Inf(-1)
		see := func(y float64) { lo, hi = math.Min(lo, y), math.Max(hi, y) }
		for _, g := range p.segs {
			see(g.y0)
			see(g.y1)
		}
		for _, k := range p.acks {
			see(k.y)
		}
		for _, b := range p.bands {
			see(b.hi)
			see(b.end)
		}
		if math.IsInf(lo, 1) {
			lo, hi = 0, 1
		}
		if hi-lo < 10 {
			hi = lo + 10
		}
		pad := (hi - lo) * 0.06
		p.lo, p.hi = lo-pad, hi+2*pad // room above for the SYN/FIN/RST marks
		ps[s] = p
	}
	return t0, span, ps
}

// writeSVG draws the connection as a standalone SVG document.
func (pc *picture) writeSVG(w io.Writer) error {
	var b strings.Builder
	pc.svg(&b, true)
	_, err := io.WriteString(w, b.String())
	return err
}

func (pc *picture) height() int {
	return picTop + 2*picPanelH + picPanelGap + 40 + picLegendH
}

func (pc *picture) svg(b *strings.Builder, standalone bool) {
	t0, span, ps := pc.panels()
	h := pc.height()
	if standalone {
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">`+"\n", picWidth, h, picWidth, h)
	fmt.Fprintf(b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", picWidth, h)
	title := fmt.Sprintf("connection %s, profile %s: %d packets", pc.a, pc.prof, len(pc.pkts))
	fmt.Fprintf(b, `<text class="title" x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", picLeft, esc(title))
	inv, ign, bands := 0, 0, 0
	for i := range pc.pkts {
		switch pc.pkts[i].verdict {
		case "invalid":
			inv++
		case "ignored":
			ign++
		}
	}
	for _, p := range ps {
		bands += len(p.bands)
	}
	sub := fmt.Sprintf("%d INVALID, %d ignored", inv, ign)
	if len(pc.pkts) > 0 {
		sub += "; t = 0 at " + time.Unix(0, int64(t0)).UTC().Format(time.RFC3339Nano)
	}
	switch {
	case bands > 0:
		sub += "; hover over a packet for its numbers, state and reason"
	case pc.prof == "tutorial":
		sub += "; no window bounds: the 2.4 tracker does no window tracking"
	default:
		sub += "; no window bounds: the tracker holds none for this connection"
	}
	fmt.Fprintf(b, `<text class="subtitle" x="%d" y="40" fill="%s">%s</text>`+"\n", picLeft, picAxisText, esc(sub))
	// Time runs from a little before the first packet (room for its
	// marks) to a little after the last (where the last bounds hold).
	xs := func(x float64) float64 { return picLeft + (x+span*0.02)/(span*1.06)*(picRight-picLeft) }
	for _, p := range ps {
		pc.drawPanel(b, p, span, xs)
	}
	pc.legend(b, ps[1].top+picPanelH+46)
	b.WriteString("</svg>\n")
}

func (pc *picture) drawPanel(b *strings.Builder, p *panel, span float64, xs func(float64) float64) {
	top, bot := p.top+14, p.top+picPanelH
	ys := func(y float64) float64 { return bot - (y-p.lo)/(p.hi-p.lo)*(bot-top) }
	clip := func(y float64) float64 { return math.Max(top, math.Min(bot, ys(y))) }
	fmt.Fprintf(b, `<g class="panel" id="dir%d">`+"\n", p.sender)
	fmt.Fprintf(b, `<text class="panel-title" x="%d" y="%s" font-size="13" font-weight="bold">%s</text>`+"\n", picLeft, f1(p.top+6), esc(p.title))
	fmt.Fprintf(b, `<rect class="plot" x="%d" y="%s" width="%d" height="%s" fill="#fbfbfb" stroke="#999999"/>`+"\n", picLeft, f1(top), picRight-picLeft, f1(bot-top))
	// Grid and axes.
	yt := ticks(p.lo, p.hi, 6)
	for _, y := range yt {
		Y := ys(y)
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s" stroke="%s"/>`, picLeft, f1(Y), picRight, f1(Y), picGrid)
		fmt.Fprintf(b, `<text class="ylabel" x="%d" y="%s" text-anchor="end" fill="%s">%s</text>`+"\n", picLeft-6, f1(Y+4), picAxisText, seqLabel(y, yt))
	}
	unit, scale := timeUnit(span)
	xt := ticks(0, span*1.04, 8)
	prec := 0
	if len(xt) > 1 {
		prec = max(0, int(-math.Floor(math.Log10((xt[1]-xt[0])*scale)+1e-9)))
	}
	for _, x := range xt {
		X := xs(x)
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, f1(X), f1(top), f1(X), f1(bot), picGrid)
		fmt.Fprintf(b, `<text class="xlabel" x="%s" y="%s" text-anchor="middle" fill="%s">%s</text>`+"\n", f1(X), f1(bot+15), picAxisText, strconv.FormatFloat(x*scale, 'f', prec, 64))
	}
	fmt.Fprintf(b, `<text class="axis" x="%d" y="%s" text-anchor="end" fill="%s">time (%s)</text>`+"\n", picRight, f1(bot+30), picAxisText, unit)
	fmt.Fprintf(b, `<text class="axis" x="16" y="%s" transform="rotate(-90 16 %s)" text-anchor="middle" fill="%s">%s</text>`+"\n",
		f1((top+bot)/2), f1((top+bot)/2), picAxisText, esc(p.axisLabel()))
	// A new entry after the first (the tuple reused, or reopened from
	// TIME_WAIT or CLOSE): a line across the graph.
	for i := 1; i < len(pc.pkts); i++ {
		q := &pc.pkts[i]
		if q.action != fsm.Create && q.action != fsm.Recreate {
			continue
		}
		X := xs((float64(q.time) - float64(pc.pkts[0].time)) / 1e9)
		what := "new entry"
		if q.action == fsm.Recreate {
			what = "re-opened"
		}
		fmt.Fprintf(b, `<g class="newentry" data-record="%d"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#777777" stroke-dasharray="6 4"/><text x="%s" y="%s" font-size="10" fill="#555555">#%d %s</text></g>`+"\n",
			q.index, f1(X), f1(top), f1(X), f1(bot), f1(X+3), f1(top+11), q.index, what)
	}
	for _, g := range pc.gones {
		X := xs((float64(g.time) - float64(pc.pkts[0].time)) / 1e9)
		if X > picRight {
			continue
		}
		fmt.Fprintf(b, `<g class="gone"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#777777" stroke-dasharray="2 3"/><text x="%s" y="%s" font-size="10" fill="#555555">%s</text></g>`+"\n",
			f1(X), f1(top), f1(X), f1(bot), f1(X+3), f1(top+23), g.what)
	}
	// Bands: the accepted range after each packet, until the next one.
	b.WriteString(`<g class="bands">` + "\n")
	for _, bd := range p.bands {
		x0, x1 := xs(bd.x0), xs(bd.x1)
		hiY := clip(bd.hi)
		loY := bot
		if bd.hasLo {
			loY = clip(bd.lo)
		}
		fill := picBandFill
		if bd.liberal {
			fill = picBandLib
		}
		if loY > hiY {
			fmt.Fprintf(b, `<rect class="band" x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="0.45"/>`+"\n", f1(x0), f1(hiY), f1(x1-x0), f1(loY-hiY), fill)
		}
		fmt.Fprintf(b, `<line class="maxend" x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`+"\n", f1(x0), f1(hiY), f1(x1), f1(hiY), picMaxEnd)
		fmt.Fprintf(b, `<line class="end" x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/>`+"\n", f1(x0), f1(clip(bd.end)), f1(x1), f1(clip(bd.end)), picEnd)
	}
	b.WriteString("</g>\n")
	// The peer's ACKs.
	for _, k := range p.acks {
		X, Y := xs(k.x), clip(k.y)
		colour := picAck
		if k.p.verdict != "accepted" {
			colour = picColour[k.p.verdict]
		}
		fmt.Fprintf(b, `<g class="ack %s" data-record="%d"><title>%s</title><path d="M%s %sh8M%s %sv-6" stroke="%s" stroke-width="2" fill="none"/>`,
			k.p.verdict, k.p.index, esc(pc.describe(k.p)), f1(X-4), f1(Y), f1(X-4), f1(Y), colour)
		if k.p.verdict != "accepted" && ackReason(k.p) {
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="8" fill="none" stroke="%s" stroke-width="2"/>`, f1(X), f1(Y-2), colour)
		}
		b.WriteString("</g>\n")
	}
	// The sender's segments.
	for _, g := range p.segs {
		X, Y0, Y1 := xs(g.x), clip(g.y0), clip(g.y1)
		colour := picColour[g.p.verdict]
		width := "2"
		if g.p.verdict != "accepted" {
			width = "3.5"
		}
		fmt.Fprintf(b, `<g class="pkt %s" data-record="%d"><title>%s</title>`, g.p.verdict, g.p.index, esc(pc.describe(g.p)))
		if Y0-Y1 < 2 { // no sequence space: a short tick
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"/>`, f1(X-3), f1(Y0), f1(X+3), f1(Y0), colour, width)
		} else {
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"/>`, f1(X), f1(Y0), f1(X), f1(Y1), colour, width)
			fmt.Fprintf(b, `<path d="M%s %sh6M%s %sh6" stroke="%s" stroke-width="1.5"/>`, f1(X-3), f1(Y0), f1(X-3), f1(Y1), colour)
		}
		if g.p.verdict != "accepted" {
			dash := ""
			if g.p.verdict == "ignored" {
				dash = ` stroke-dasharray="3 2"`
			}
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="8" fill="none" stroke="%s" stroke-width="2"%s/>`, f1(X), f1((Y0+Y1)/2), colour, dash)
		}
		if m := marks(g.p.flags); m != "" {
			fmt.Fprintf(b, `<text class="mark" x="%s" y="%s" text-anchor="middle" font-size="10" font-weight="bold" fill="%s">%s</text>`, f1(X), f1(Y1-6), colour, m)
		}
		b.WriteString("</g>\n")
	}
	// Labels for the packets that stand out, so that a printout says why.
	// A label that would overlap one placed before it moves down a line
	// (or up, at the bottom), so that each stays legible.
	type box struct{ x0, x1, y float64 }
	var placed []box
	for n, note := range p.notes {
		if n == 8 {
			break
		}
		X, Y := xs(note.x), clip(note.y)
		what := "INVALID"
		if note.p.verdict == "ignored" {
			what = "ignored"
		}
		text := fmt.Sprintf("#%d %s: %s", note.p.index, what, note.p.reason)
		width := 7.2 * float64(len([]rune(text))) // bold 12px, generously
		anchor, dx, x0 := "start", 12.0, X+12
		if X > (picLeft+picRight)/2 {
			anchor, dx, x0 = "end", -12, X-12-width
		}
		step := 15.0
		if Y > bot-30 {
			step = -15
		}
		for tries := 0; tries < 12; tries++ {
			clash := false
			for _, q := range placed {
				if x0 < q.x1 && q.x0 < x0+width && Y > q.y-14 && Y < q.y+14 {
					clash = true
					break
				}
			}
			if !clash {
				break
			}
			Y += step
		}
		placed = append(placed, box{x0, x0 + width, Y})
		fmt.Fprintf(b, `<text class="note" x="%s" y="%s" text-anchor="%s" fill="%s" font-weight="bold" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">%s</text>`+"\n",
			f1(X+dx), f1(Y+4), anchor, picColour[note.p.verdict], esc(text))
	}
	b.WriteString("</g>\n")
}

func (pc *picture) legend(b *strings.Builder, y float64) {
	fmt.Fprintf(b, `<g class="legend" transform="translate(%d %s)">`+"\n", picLeft, f1(y))
	item := func(x, row float64, swatch, text string) {
		fmt.Fprintf(b, `<g transform="translate(%s %s)">%s<text x="26" y="4">%s</text></g>`+"\n", f1(x), f1(row*20), swatch, esc(text))
	}
	seg := func(c, w string) string {
		return fmt.Sprintf(`<line x1="10" y1="-7" x2="10" y2="7" stroke="%s" stroke-width="%s"/>`, c, w)
	}
	item(0, 0, seg(picColour["accepted"], "2"), "segment, seq to seq+len: accepted")
	item(320, 0, seg(picColour["ignored"], "3.5")+`<circle cx="10" cy="0" r="7" fill="none" stroke="`+picColour["ignored"]+`" stroke-width="2" stroke-dasharray="3 2"/>`, "ignored (passes; tracker learns nothing)")
	item(640, 0, seg(picColour["invalid"], "3.5")+`<circle cx="10" cy="0" r="7" fill="none" stroke="`+picColour["invalid"]+`" stroke-width="2"/>`, "INVALID (ct state invalid)")
	item(0, 1, `<rect x="0" y="-7" width="20" height="14" fill="`+picBandFill+`" fill-opacity="0.45"/><line x1="0" y1="-7" x2="20" y2="-7" stroke="`+picMaxEnd+`" stroke-width="1.5"/>`, "seq accepted next: td_end − peer's td_maxwin .. td_maxend (top edge)")
	item(640, 1, `<line x1="0" y1="0" x2="20" y2="0" stroke="`+picEnd+`" stroke-dasharray="4 3"/>`, "td_end (highest seq+len sent)")
	item(0, 2, `<path d="M6 0h8M6 0v-6" stroke="`+picAck+`" stroke-width="2" fill="none"/>`, "ACK from the peer, at the number it acknowledges")
	item(400, 2, `<text x="10" y="4" text-anchor="middle" font-size="9" font-weight="bold">FIN</text>`, "SYN, FIN, RST marks")
	item(640, 2, `<rect x="0" y="-7" width="20" height="14" fill="`+picBandLib+`" fill-opacity="0.45"/>`, "liberal sender: window not checked")
	b.WriteString("</g>\n")
}

// describe is a packet's hover text.
func (pc *picture) describe(p *picPacket) string {
	var b strings.Builder
	t := float64(p.time-pc.pkts[0].time) / 1e6
	fmt.Fprintf(&b, "#%d +%s ms  %s > %s  [%s] seq=%d", p.index, strconv.FormatFloat(t, 'f', 3, 64), p.src, p.dst, capture.TcpdumpFlags(uint8(p.flags)), p.seq)
	if p.flags&packet.ACK != 0 {
		fmt.Fprintf(&b, " ack=%d", p.ack)
	}
	fmt.Fprintf(&b, " win=%d len=%d\n%s, class %s, %s → %s", p.win, p.len, p.ct, p.class, p.old, orNone(p.new))
	if p.reason != "" {
		what := "INVALID"
		if p.verdict == "ignored" {
			what = "ignored"
		}
		fmt.Fprintf(&b, "\n%s: %s", what, p.reason)
	}
	for s, name := range [2]string{"A", "B"} {
		bd := p.bounds[s]
		if !p.entry || !bd.ok {
			continue
		}
		who := netipSrc(pc.a)
		if s == 1 {
			who = netipDst(pc.a)
		}
		fmt.Fprintf(&b, "\nafter: %s (%s) td_end=%d td_maxend=%d td_maxwin=%d", name, who, bd.end, bd.maxEnd, bd.maxWin)
		if bd.liberal {
			b.WriteString(" (liberal)")
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "no entry"
	}
	return s
}

// marks names the flags that open and close: SYN, FIN, RST.
func marks(f fsm.Flags) string {
	var m []string
	for _, x := range []struct {
		f    packet.Flags
		name string
	}{{packet.SYN, "SYN"}, {packet.FIN, "FIN"}, {packet.RST, "RST"}} {
		if f&fsm.Flags(x.f) != 0 {
			m = append(m, x.name)
		}
	}
	return strings.Join(m, "+")
}

// writeHTML writes a page with the SVG inline and a table of the packets.
func (pc *picture) writeHTML(w io.Writer) error {
	var b strings.Builder
	title := fmt.Sprintf("tcpct explain: %s", pc.a)
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>%s</title>\n", esc(title))
	b.WriteString(`<style>
body { font-family: DejaVu Sans, Verdana, sans-serif; font-size: 13px; margin: 16px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #cccccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.invalid td { background: #fde0e0; }
tr.ignored td { background: #ffeccc; }
</style>
</head>
<body>
`)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(title))
	pc.svg(&b, false)
	b.WriteString("<table>\n<thead><tr><th>#</th><th>time (ms)</th><th>from</th><th>flags</th><th>seq</th><th>ack</th><th>win</th><th>len</th><th>class</th><th>ct</th><th>state</th><th>reason</th><th>A: td_end / td_maxend / td_maxwin</th><th>B: td_end / td_maxend / td_maxwin</th></tr></thead>\n<tbody>\n")
	for i := range pc.pkts {
		p := &pc.pkts[i]
		from := "A"
		if !p.fromA {
			from = "B"
		}
		ack := ""
		if p.flags&packet.ACK != 0 {
			ack = strconv.FormatUint(uint64(p.ack), 10)
		}
		t := strconv.FormatFloat(float64(p.time-pc.pkts[0].time)/1e6, 'f', 3, 64)
		fmt.Fprintf(&b, `<tr class="%s" id="r%d"><td class="n">%d</td><td class="n">%s</td><td>%s</td><td>%s</td><td class="n">%d</td><td class="n">%s</td><td class="n">%d</td><td class="n">%d</td><td>%s</td><td>%s</td><td>%s → %s</td><td>%s</td>`,
			p.verdict, p.index, p.index, t, from, capture.TcpdumpFlags(uint8(p.flags)), p.seq, ack, p.win, p.len, esc(p.class), p.ct, esc(p.old), esc(orNone(p.new)), esc(p.reason))
		for s := 0; s < 2; s++ {
			bd := p.bounds[s]
			if !p.entry || !bd.ok {
				b.WriteString("<td></td>")
				continue
			}
			fmt.Fprintf(&b, `<td class="n">%d / %d / %d</td>`, bd.end, bd.maxEnd, bd.maxWin)
		}
		b.WriteString("</tr>\n")
	}
	fmt.Fprintf(&b, "</tbody>\n</table>\n<p>A is %s, B is %s.</p>\n</body>\n</html>\n", esc(netipSrc(pc.a).String()), esc(netipDst(pc.a).String()))
	_, err := io.WriteString(w, b.String())
	return err
}

// leap reports whether td_end moving by d cannot be the sender's data
// advancing: more than both windows and 1 MiB.
func leap(d uint32, bd picBounds) bool {
	n := int64(int32(d))
	if n < 0 {
		n = -n
	}
	return n > 1<<20+int64(bd.maxWin)+int64(bd.peerMaxWin)
}

// axisLabel names the sequence axis and its zero.
func (p *panel) axisLabel() string {
	if p.syns > 0 {
		return fmt.Sprintf("relative seq (0 = %d, then restarted)", p.base)
	}
	return fmt.Sprintf("relative sequence number (0 = %d)", p.base)
}

// seqLabel writes a sequence axis tick: whole numbers up to 99999, then
// in k, M or G with the decimals the tick spacing needs.
func seqLabel(y float64, all []float64) string {
	big := 0.0
	for _, v := range all {
		big = max(big, math.Abs(v))
	}
	if big < 1e5 {
		return strconv.FormatInt(int64(math.Round(y)), 10)
	}
	unit, div := "k", 1e3
	switch {
	case big >= 1e9:
		unit, div = "G", 1e9
	case big >= 1e6:
		unit, div = "M", 1e6
	}
	prec := 0
	if len(all) > 1 {
		prec = max(0, int(-math.Floor(math.Log10((all[1]-all[0])/div)+1e-9)))
	}
	return strconv.FormatFloat(y/div, 'f', prec, 64) + " " + unit
}

// ticks returns round values (1, 2 or 5 times a power of ten) between lo
// and hi, about n of them.
func ticks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return nil
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

// timeUnit picks the time axis' unit for a span in seconds: the unit's
// name and the factor from seconds.
func timeUnit(span float64) (string, float64) {
	switch {
	case span < 2e-3:
		return "µs", 1e6
	case span < 2:
		return "ms", 1e3
	default:
		return "s", 1
	}
}

// f1 formats a coordinate with one decimal, never "-0.0".
func f1(x float64) string {
	x = math.Round(x*10) / 10
	if x == 0 {
		x = 0
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func esc(s string) string { return html.EscapeString(s) }
