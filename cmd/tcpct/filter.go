package main

// Filters on what replay, explain and watch print, in conntrack's
// vocabulary. They choose lines of output; the tracker still sees every
// packet, so a filtered line is the same line an unfiltered run prints.

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// filterFlags are the filter flags as given.
type filterFlags struct {
	proto, src, dst, sport, dport, state, ct, status string
}

const filterUsage = `Filters (they choose what is printed; every packet is still tracked):
  -src ADDR[/BITS], -dst ADDR[/BITS]
        source or destination address (or prefix). For a packet (jsonl,
        explain) the address in its IP header, as tshark's ip.src and
        ip.dst (ipv6.src, ipv6.dst) match it; for an entry (proc,
        conntrack, events) the original tuple's, as conntrack -L --src
        and --dst match it
  -sport PORT, -dport PORT
        source or destination port, as -src and -dst (tcp.srcport,
        tcp.dstport; conntrack --sport, --dport)
  -state S[,S...]
        the TCP state (for a packet: right after it, the jsonl state
        field): one of the profile's state names, e.g. ESTABLISHED,
        TIME_WAIT (conntrack --state)
  -ct C[,C...]
        a packet's conntrack state: NEW, ESTABLISHED, RELATED, INVALID,
        UNTRACKED (iptables --ctstate, nft ct state); packets only (jsonl,
        explain)
  -status F[,F...]
        every flag listed is set: ASSURED, SEEN_REPLY, UNREPLIED (no
        reply seen) (conntrack --status)
  -p tcp
        accepted for conntrack's sake; tcpct tracks TCP only
        A list matches any of its values; different flags must all match.
`

func (ff *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&ff.proto, "p", "", "protocol: tcp (the only one tcpct tracks)")
	fs.StringVar(&ff.src, "src", "", "only source `ADDR[/BITS]`")
	fs.StringVar(&ff.dst, "dst", "", "only destination `ADDR[/BITS]`")
	fs.StringVar(&ff.sport, "sport", "", "only source `PORT`")
	fs.StringVar(&ff.dport, "dport", "", "only destination `PORT`")
	fs.StringVar(&ff.state, "state", "", "only TCP `STATE[,STATE...]`")
	fs.StringVar(&ff.ct, "ct", "", "only conntrack state `CT[,CT...]` (packets)")
	fs.StringVar(&ff.status, "status", "", "only entries with every `FLAG[,FLAG...]`: ASSURED, SEEN_REPLY, UNREPLIED")
}

// filter is a parsed set of filters; the zero filter passes everything.
type filter struct {
	active       bool
	src, dst     netip.Prefix // invalid: any
	sport, dport int          // -1: any
	states       uint64       // bit per fsm.State; 0: any
	cts          uint8        // bit per fsm.CT; 0: any
	assured      bool         // must be [ASSURED]
	seenReply    bool         // must have seen a reply
	unreplied    bool         // must not have seen a reply
	perPacket    bool         // -ct given: only packet records can match
}

// parse checks the flags against the profile p.
func (ff *filterFlags) parse(p *fsm.Profile) (*filter, error) {
	f := &filter{sport: -1, dport: -1}
	if ff.proto != "" {
		if pr := strings.ToLower(ff.proto); pr != "tcp" && pr != "6" {
			return nil, fmt.Errorf("-p %s: tcpct tracks TCP only (want tcp)", ff.proto)
		}
	}
	var err error
	if f.src, err = parsePrefix("-src", ff.src); err != nil {
		return nil, err
	}
	if f.dst, err = parsePrefix("-dst", ff.dst); err != nil {
		return nil, err
	}
	if f.sport, err = parsePort("-sport", ff.sport); err != nil {
		return nil, err
	}
	if f.dport, err = parsePort("-dport", ff.dport); err != nil {
		return nil, err
	}
	for _, s := range splitList(ff.state) {
		i := -1
		for j, name := range p.StateNames {
			if strings.EqualFold(s, name) && j > 0 { // NONE is no entry's state
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("-state %s: not a TCP state of profile %s (%s)", s, p.Name, strings.Join(p.StateNames[1:], ", "))
		}
		f.states |= 1 << i
	}
	for _, s := range splitList(ff.ct) {
		i := -1
		for c := fsm.CTNew; c <= fsm.CTUntracked; c++ {
			if strings.EqualFold(s, c.String()) {
				i = int(c)
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("-ct %s: want NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED", s)
		}
		f.cts |= 1 << i
	}
	for _, s := range splitList(ff.status) {
		switch strings.ToUpper(s) {
		case "ASSURED":
			f.assured = true
		case "SEEN_REPLY":
			f.seenReply = true
		case "UNREPLIED":
			f.unreplied = true
		default:
			return nil, fmt.Errorf("-status %s: want ASSURED, SEEN_REPLY or UNREPLIED", s)
		}
	}
	if f.seenReply && f.unreplied {
		return nil, errors.New("-status: SEEN_REPLY and UNREPLIED exclude each other")
	}
	f.perPacket = f.cts != 0
	f.active = f.src.IsValid() || f.dst.IsValid() || f.sport >= 0 || f.dport >= 0 ||
		f.states != 0 || f.cts != 0 || f.assured || f.seenReply || f.unreplied
	return f, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(x))
	}
	return out
}

func parsePrefix(flagName, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s %s: want an address or ADDR/BITS", flagName, s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %s: want an address or ADDR/BITS", flagName, s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func parsePort(flagName, s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s %s: want a port number, 0 to 65535", flagName, s)
	}
	return int(n), nil
}

// tuple reports whether a tuple passes the address and port filters.
// ports is false for a truncated TCP header, whose ports are unknown:
// then a port filter does not pass it.
func (f *filter) tuple(k *table.Key, ports bool) bool {
	if f.src.IsValid() && !f.src.Contains(k.Src()) {
		return false
	}
	if f.dst.IsValid() && !f.dst.Contains(k.Dst()) {
		return false
	}
	if f.sport >= 0 && (!ports || int(k.SrcPort()) != f.sport) {
		return false
	}
	if f.dport >= 0 && (!ports || int(k.DstPort()) != f.dport) {
		return false
	}
	return true
}

// conn reports whether an entry's state and flags pass.
func (f *filter) conn(state fsm.State, assured, seenReply bool) bool {
	if f.states != 0 && (state >= 64 || f.states&(1<<state) == 0) {
		return false
	}
	return (!f.assured || assured) && (!f.seenReply || seenReply) && (!f.unreplied || !seenReply)
}

// packet reports whether a packet's record passes: its own tuple as seen,
// its conntrack state, and the state and flags of its entry right after
// it (a packet that leaves no entry passes no -state or -status filter).
func (f *filter) packet(p *pktInfo, v *tcpct.Verdict) bool {
	if !f.tuple(&p.key, !p.trunc) {
		return false
	}
	if f.cts != 0 && (v.CT >= 8 || f.cts&(1<<v.CT) == 0) {
		return false
	}
	if f.states != 0 || f.assured || f.seenReply || f.unreplied {
		return v.Entry && f.conn(v.State, v.Assured, v.SeenReply)
	}
	return true
}

// entry reports whether a table entry (or an event's) passes: its
// original tuple, state and flags, as conntrack -L and -E filter.
func (f *filter) entry(e *tcpct.Entry) bool {
	return f.tuple(&e.Key, true) && f.conn(e.Conn.State, e.Conn.Assured(), e.Conn.SeenReply())
}

// forFormat says whether the filters apply to format's output: summary
// counts every packet and takes none; -ct selects packets, which the
// table formats and events do not print.
func (f *filter) forFormat(format string) error {
	if !f.active {
		return nil
	}
	switch format {
	case "summary":
		return errors.New("the summary counts every packet and takes no filters (-src, -dst, -sport, -dport, -state, -ct, -status); use jsonl, proc, conntrack or events")
	case "proc", "conntrack", "events":
		if f.perPacket {
			return fmt.Errorf("-ct is a packet's conntrack state; -format %s prints entries (use -state or -status)", format)
		}
	}
	return nil
}
