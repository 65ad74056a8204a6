package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// Disagreement is one packet on which tcpct and the router's kernel
// differ.
type Disagreement struct {
	Index          int // record number in the front capture (explain -packet)
	Summary        string
	Kernel, Tcpct  Verdict
	TcpctReason    string
	TcpctStateName string
}

// Report is the outcome of a comparison.
type Report struct {
	Packets      int            // TCP packets the router received
	Unforwarded  int            // received but never sent on: no verdict
	Unstamped    int            // sent on without a readable stamp
	Orphans      int            // sent on without being received (must be 0)
	Compared     int            // packets with a kernel verdict
	Agree        int            // of those, same ct state and direction
	PerVerdict   map[string]int // kernel verdict → packets
	AgreePer     map[string]int // kernel verdict → packets agreed on
	Disagreement []Disagreement
	NotForwarded []string // the first ten packets not forwarded
	// Options counts the SYNs and SYN/ACKs that carried each TCP option
	// (window scale, SACK permitted, timestamps, an MSS below 536), and
	// without one, to show what the run covered.
	Options struct{ SYNs, WScale, SackPerm, Timestamps, SmallMSS int }
	// InvalidReasons counts tcpct's reasons for the packets both call
	// INVALID: which of the tracker's checks the run reached.
	InvalidReasons map[string]int
	// Tracker is tcpct's tracker after the replay, to compare the
	// router's table with.
	Tracker *tcpct.Tracker
}

// OK says whether every packet was compared and agreed.
func (r *Report) OK() bool {
	return r.Agree == r.Compared && r.Orphans == 0 && r.Unstamped == 0 && r.Unforwarded == 0
}

// WriteText writes the report: a line per kernel verdict, then every
// disagreement (at most max).
func (r *Report) WriteText(w io.Writer, max int) {
	fmt.Fprintf(w, "%d TCP packets through the router, %d compared, %d agree", r.Packets, r.Compared, r.Agree)
	if r.Unforwarded+r.Unstamped+r.Orphans > 0 {
		fmt.Fprintf(w, " (%d not forwarded, %d without a stamp, %d sent without being received)", r.Unforwarded, r.Unstamped, r.Orphans)
	}
	fmt.Fprintln(w)
	o := r.Options
	fmt.Fprintf(w, "  %d SYN and SYN/ACK packets: %d with window scale, %d SACK permitted, %d timestamps, %d MSS below 536\n",
		o.SYNs, o.WScale, o.SackPerm, o.Timestamps, o.SmallMSS)
	keys := make([]string, 0, len(r.PerVerdict))
	for k := range r.PerVerdict {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  kernel %-20s %7d packets, tcpct agrees on %d\n", k, r.PerVerdict[k], r.AgreePer[k])
	}
	reasons := make([]string, 0, len(r.InvalidReasons))
	for k := range r.InvalidReasons {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		return r.InvalidReasons[a] > r.InvalidReasons[b] || r.InvalidReasons[a] == r.InvalidReasons[b] && a < b
	})
	for _, k := range reasons {
		fmt.Fprintf(w, "    INVALID, both: %6d  %s\n", r.InvalidReasons[k], k)
	}
	for _, s := range r.NotForwarded {
		fmt.Fprintf(w, "  not forwarded: %s\n", s)
	}
	for i, d := range r.Disagreement {
		if i == max {
			fmt.Fprintf(w, "  ... %d more\n", len(r.Disagreement)-max)
			break
		}
		fmt.Fprintf(w, "  #%d %s: kernel %s, tcpct %s (state %s, %s)\n", d.Index, d.Summary, d.Kernel, d.Tcpct, d.TcpctStateName, d.TcpctReason)
	}
}

// Check replays the front capture (the bytes WriteFront wrote for pairs,
// in that order) through a linux-profile tcpct.Tracker with knobs, and
// compares each packet's ct state and direction with the kernel's stamp.
func Check(front []byte, pairs []Pair, knobs []string) (*Report, error) {
	tr, err := tcpct.New(tcpct.Config{Profile: "linux", Knobs: knobs})
	if err != nil {
		return nil, err
	}
	cr, err := capture.NewReader(bytes.NewReader(front))
	if err != nil {
		return nil, err
	}
	r := &Report{Packets: len(pairs), PerVerdict: map[string]int{}, AgreePer: map[string]int{}, InvalidReasons: map[string]int{}, Tracker: tr}
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.Index >= len(pairs) {
			return nil, fmt.Errorf("front capture has more records than pairs")
		}
		pr := pairs[p.Index]
		if p.Kind != capture.KindTCP {
			// The router tracked it all the same (the kernel parses
			// what the capture reader rejects only when malformed):
			// count it as a disagreement if the kernel stamped it.
			if pr.Forwarded && pr.Err == nil {
				r.Compared++
				r.PerVerdict[pr.Verdict.String()]++
				r.Disagreement = append(r.Disagreement, Disagreement{Index: p.Index, Summary: "not TCP to tcpct: " + p.Reason, Kernel: pr.Verdict})
			}
			continue
		}
		seg := tcpct.SegmentOf(p)
		if seg.Flags&spec.SYN != 0 {
			r.countOptions(p.TCP)
		}
		v := tr.TrackSegment(p.SrcAddrPort(), p.DstAddrPort(), &seg, p.Timestamp())
		switch {
		case !pr.Forwarded:
			r.Unforwarded++
			if len(r.NotForwarded) < 10 {
				r.NotForwarded = append(r.NotForwarded, fmt.Sprintf("#%d %s", p.Index, summarize(p, &seg)))
			}
			continue
		case pr.Err != nil:
			r.Unstamped++
			continue
		}
		ours := Verdict{CT: v.CT.String()}
		if v.CT != fsm.CTInvalid && v.CT != fsm.CTUntracked {
			ours.Dir = v.Dir.String()
		}
		k := pr.Verdict.String()
		r.Compared++
		r.PerVerdict[k]++
		if ours == pr.Verdict {
			r.Agree++
			r.AgreePer[k]++
			if v.CT == fsm.CTInvalid {
				r.InvalidReasons[v.ReasonText()]++
			}
			continue
		}
		r.Disagreement = append(r.Disagreement, Disagreement{
			Index:   p.Index,
			Summary: summarize(p, &seg),
			Kernel:  pr.Verdict, Tcpct: ours,
			TcpctReason: v.ReasonText(), TcpctStateName: v.StateName(),
		})
	}
	return r, nil
}

// summarize is a tcpdump-like line for a packet.
func summarize(p *capture.Packet, seg *fsm.Segment) string {
	return fmt.Sprintf("%s > %s [%s] seq=%d ack=%d win=%d len=%d",
		netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), seg.Flags, seg.Seq, seg.Ack, seg.Win, seg.Len)
}

// CompareTable compares the router's table, as conntrack -L printed it
// (kernel, dumped between before and after), with tcpct's, the seconds
// left masked: every entry tcpct still holds at after must be in the
// kernel's dump, and every entry of the dump must be one tcpct held at
// before. An entry that expired in between may be in either. It returns
// the entries compared and the differences.
func CompareTable(kernel string, tr *tcpct.Tracker, before, after time.Time) (n int, onlyKernel, onlyTcpct []string) {
	dump := func(at time.Time) map[string]bool {
		m := map[string]bool{}
		tr.Range(at, func(e *tcpct.Entry) bool {
			m[maskSeconds(string(e.AppendConntrack(nil, at)))] = true
			return true
		})
		return m
	}
	early, late := dump(before), dump(after)
	k := map[string]bool{}
	for _, l := range strings.Split(kernel, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "tcp ") {
			k[maskSeconds(l)] = true
		}
	}
	for l := range k {
		if !early[l] {
			onlyKernel = append(onlyKernel, l)
		}
	}
	for l := range late {
		if !k[l] {
			onlyTcpct = append(onlyTcpct, l)
		}
	}
	sort.Strings(onlyKernel)
	sort.Strings(onlyTcpct)
	return len(k), onlyKernel, onlyTcpct
}

// secondsField is the seconds-left field of a conntrack -L line.
var secondsField = regexp.MustCompile(`^(tcp +6 )\d+ `)

func maskSeconds(l string) string {
	return strings.Join(strings.Fields(secondsField.ReplaceAllString(strings.TrimSpace(l), "${1}T ")), " ")
}

// countOptions walks a SYN's TCP options (RFC 9293 §3.1).
func (r *Report) countOptions(tcp []byte) {
	r.Options.SYNs++
	if len(tcp) < 20 {
		return
	}
	end := min(int(tcp[12]>>4)*4, len(tcp))
	for i := 20; i < end; {
		kind := tcp[i]
		if kind == 0 {
			break
		}
		if kind == 1 {
			i++
			continue
		}
		if i+1 >= end || tcp[i+1] < 2 {
			break
		}
		l := int(tcp[i+1])
		switch {
		case kind == 2 && l == 4 && i+4 <= end && int(tcp[i+2])<<8|int(tcp[i+3]) < 536:
			r.Options.SmallMSS++
		case kind == 3:
			r.Options.WScale++
		case kind == 4:
			r.Options.SackPerm++
		case kind == 8:
			r.Options.Timestamps++
		}
		i += l
	}
}
