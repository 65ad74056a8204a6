// Package gen generates random but plausible multi-connection TCP traces
// for the conformance runs: deterministic from a seed, as raw IP packets
// with capture timestamps (written as LinkRaw pcap by WritePcap).
//
// Each connection is a script drawn from a set of scenarios: how it opens
// (three-way handshake, SYN retransmits, lost SYN/ACK, simultaneous open,
// mid-stream pickup, refused, unanswered, invalid first packets), what
// happens while it is open (data both ways with windows and window
// scaling, SACK, retransmissions, duplicate ACKs, zero windows and probes,
// keepalives, out-of-window and overshooting segments, stale ACKs, SYNs in
// a synchronised state and the challenge ACKs they cause, RSTs with exact,
// in-window, out-of-window and zero sequence numbers, invalid flag
// combinations) and how it ends (half and full closes in every order,
// simultaneous close, aborts, late retransmits after TIME_WAIT, reuse of
// the port from TIME_WAIT or CLOSE). A connection's script depends only on
// the seed and its number; the scripts of a few connections at a time are
// interleaved into one trace.
//
// Long pauses (Config.Pause) let shortened conntrack timeouts expire in
// the middle of a trace; every other gap between packets is tiny.
//
// Addresses: IPv4 connections run 127.1.x.y -> 127.2.x.y, IPv6 ones
// fd7c:7c7c::1:x:y -> fd7c:7c7c::2:x:y (see kernel.IPv6Prefix). Every
// connection has its own 4-tuple, except that a reused port repeats it on
// purpose.
package tracegen

import (
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

// Packet is one generated packet.
type Packet struct {
	TS   time.Time
	Data []byte // from the IP header on
	Conn int    // connection number
	Note string // what the generator meant by it ("syn", "rst-inwin", ...)
}

// Config controls a trace.
type Config struct {
	Seed    uint64
	Packets int // stop starting new connections once this many packets exist (default 2000)
	// Parallel is how many connections are interleaved at a time (default 8).
	Parallel int
	// IPv6 is the share of IPv6 connections (default 0.3; negative: none).
	IPv6 float64
	// Gap is the usual time between consecutive packets (default 40µs).
	Gap time.Duration
	// Pause, when non-zero, is the length of the long pauses inserted
	// about every PauseEvery packets (default Packets/6); there are at
	// most MaxPauses of them (default 8).
	Pause      time.Duration
	PauseEvery int
	MaxPauses  int
	// Cells replaces the random scenarios by the cell scenarios
	// (cells.go): every connection drives itself into one state with
	// in-window packets and sends one in-window probe of a given class and
	// direction, so that the transition table decides. Connections run in
	// batches of Parallel (default 128), each batch's probes after one
	// pause of Pause (default 2.5s); PauseEvery and MaxPauses do not apply.
	Cells bool
	// Short makes every connection brief: one of the openings, at most
	// two events of an open connection, then a close, an abort or
	// nothing (the entry is left to expire); no reuse of the tuple, no
	// late packets. With pauses it gives a steady arrival of
	// connections: a long trace goes through many of them while only
	// Parallel are open at a time, and the closed ones expire.
	Short bool
	// ICMP, when above 0, is the share of packets followed by an ICMP
	// or ICMPv6 error about a packet (icmp.go): quoting the segment just
	// sent (a live or closing connection), one of a connection that ended
	// earlier (closed, or expired across a pause), or one of no
	// connection at all, with the quote whole, cut, or corrupted. 0
	// leaves the trace exactly as before.
	ICMP float64
}

// Base is the capture time of the first packet of every trace.
var Base = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *Config) defaults() {
	if c.Cells {
		if c.Parallel <= 0 {
			c.Parallel = 128
		}
		if c.Pause <= 0 {
			c.Pause = 2500 * time.Millisecond
		}
	}
	if c.Packets <= 0 {
		c.Packets = 2000
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.IPv6 == 0 {
		c.IPv6 = 0.3
	}
	if c.Gap <= 0 {
		c.Gap = 40 * time.Microsecond
	}
	if c.PauseEvery <= 0 {
		c.PauseEvery = max(c.Packets/6, 50)
	}
	if c.MaxPauses <= 0 {
		c.MaxPauses = 8
	}
}

// Generate builds a trace. The same Config always gives the same packets,
// byte for byte.
func Generate(cfg Config) []Packet {
	cfg.defaults()
	if cfg.Cells {
		return generateCells(cfg)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7463706374)) // interleaving
	type active struct {
		segs []seg
		next int
		id   int
	}
	var act []*active
	var out []Packet
	ts := Base
	nextConn := 0
	total := 0
	start := func() {
		id := nextConn
		nextConn++
		s := script(cfg, id)
		total += len(s)
		act = append(act, &active{segs: s, id: id})
	}
	for total < cfg.Packets && len(act) < cfg.Parallel {
		start()
	}
	pauses := 0
	sincePause := 0
	var errs *icmpGen
	if cfg.ICMP > 0 {
		errs = newICMPGen(cfg.Seed)
	}
	for len(act) > 0 {
		k := r.IntN(len(act))
		a := act[k]
		sg := a.segs[a.next]
		a.next++
		if a.next == len(a.segs) {
			act = append(act[:k], act[k+1:]...)
			if total < cfg.Packets {
				start()
			}
		}
		b, err := sg.Append(nil)
		if err != nil {
			panic(err) // a generator bug: options overflow etc.
		}
		out = append(out, Packet{TS: ts, Data: b, Conn: a.id, Note: sg.note})
		if errs != nil {
			if e, note, ok := errs.after(cfg.ICMP, b, a.next == len(a.segs)); ok {
				ts = ts.Add(cfg.Gap)
				out = append(out, Packet{TS: ts, Data: e, Conn: a.id, Note: note})
			}
		}
		sincePause++
		gap := cfg.Gap/2 + time.Duration(r.Int64N(int64(cfg.Gap)))
		if cfg.Pause > 0 && pauses < cfg.MaxPauses && sincePause >= cfg.PauseEvery && r.IntN(8) == 0 {
			gap = cfg.Pause
			pauses++
			sincePause = 0
		}
		ts = ts.Add(gap)
	}
	return out
}

// WritePcap writes pkts as a LinkRaw pcap with nanosecond timestamps.
func WritePcap(w io.Writer, pkts []Packet) error {
	pw, err := capture.NewWriter(w, capture.LinkRaw, 65535)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if err := pw.WritePacket(p.TS, p.Data); err != nil {
			return err
		}
	}
	return nil
}

// seg is a segment with the generator's note.
type seg struct {
	packet.Segment
	note string
}

// side is one endpoint as the generator imagines it.
type side struct {
	ap     netip.AddrPort
	iss    uint32
	nxt    uint32 // next sequence number to send
	una    uint32 // highest of our sequence numbers the peer acked
	rcv    uint32 // next sequence number expected from the peer
	win    uint32 // receive window we advertise, in bytes
	ws     int    // window scale we announced; -1: none
	shift  uint   // shift applied to our non-SYN windows
	sack   bool   // we sent SACK-permitted
	ts     bool   // we send timestamps
	tsval  uint32
	mss    uint16
	finned bool
}

// conn builds one connection's script.
type conn struct {
	r    *rand.Rand
	cfg  *Config
	id   int
	v6   bool
	c, s *side
	segs []seg
	ipid uint16
	// both sides negotiated SACK / timestamps
	sackOK, tsOK bool
}

func addrs(id int, v6 bool) (netip.AddrPort, netip.AddrPort) {
	x, y := byte(id>>8), byte(id)
	cport := uint16(20000 + id%40000)
	sport := []uint16{80, 443, 22, 8080, 25}[id%5]
	if v6 {
		// fd7c:7c7c::1:x:y and fd7c:7c7c::2:x:y
		a := [16]byte{0xfd, 0x7c, 0x7c, 0x7c, 11: 1, 13: x, 15: y}
		b := a
		b[11] = 2
		return netip.AddrPortFrom(netip.AddrFrom16(a), cport), netip.AddrPortFrom(netip.AddrFrom16(b), sport)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, x, y}), cport),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, x, y}), sport)
}

func script(cfg Config, id int) []seg {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(id)+1))
	k := &conn{r: r, cfg: &cfg, id: id}
	k.v6 = cfg.IPv6 > 0 && r.Float64() < cfg.IPv6
	ca, sa := addrs(id, k.v6)
	k.c = &side{ap: ca}
	k.s = &side{ap: sa}
	if cfg.Short {
		k.shortLife()
	} else {
		k.life(0, 0)
	}
	return k.segs
}

// pick chooses an index by weight.
func (k *conn) pick(w ...int) int {
	t := 0
	for _, x := range w {
		t += x
	}
	n := k.r.IntN(t)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

func (k *conn) chance(p float64) bool { return k.r.Float64() < p }

func (k *conn) peer(a *side) *side {
	if a == k.c {
		return k.s
	}
	return k.c
}

// emit appends a segment from a to its peer. The window field is a's
// current window, scaled unless the segment is a SYN.
func (k *conn) emit(a *side, fl packet.Flags, seq, ack uint32, n int, note string) *seg {
	b := k.peer(a)
	w := a.win
	if fl&packet.SYN == 0 {
		w >>= a.shift
	}
	w = min(w, 65535)
	if fl&packet.ACK == 0 {
		ack = 0
	}
	k.ipid++
	sg := seg{Segment: packet.Segment{Src: a.ap, Dst: b.ap, Seq: seq, Ack: ack, Flags: fl,
		Window: uint16(w), PayloadLen: n, IPID: k.ipid, FlowLabel: uint32(k.ipid)}, note: note}
	if a.ts && (fl&packet.SYN != 0 || k.tsOK) {
		a.tsval += uint32(1 + k.r.IntN(5))
		sg.Options.Timestamps = true
		sg.Options.TSVal = a.tsval
		if fl&packet.ACK != 0 {
			sg.Options.TSEcr = b.tsval
		}
	}
	k.segs = append(k.segs, sg)
	return &k.segs[len(k.segs)-1]
}

// synOpts fills in the options a SYN carries for side a.
func (k *conn) synOpts(a *side, sg *seg) {
	sg.Options.MSS = a.mss
	sg.Options.SACKPermitted = a.sack
	if a.ws >= 0 {
		sg.Options.HasWScale = true
		sg.Options.WScale = uint8(a.ws)
	}
}

// initSide draws a fresh endpoint: ISN, window, options.
func (k *conn) initSide(a *side) {
	a.iss = k.r.Uint32()
	if k.chance(0.03) {
		a.iss = 0xffffffff - uint32(k.r.IntN(3000)) // wraps soon
	}
	a.nxt, a.una = a.iss, a.iss
	a.finned = false
	a.mss = 1460
	if k.v6 {
		a.mss = 1440
	}
	a.sack = k.chance(0.7)
	a.ts = k.chance(0.5)
	a.tsval = k.r.Uint32() >> 1
	switch k.pick(30, 60, 5, 3, 2) {
	case 0:
		a.ws = -1
	case 1:
		a.ws = 7
	case 2:
		a.ws = k.r.IntN(15)
	case 3:
		a.ws = 14
	default:
		a.ws = 15 // over the maximum; conntrack caps it at 14
	}
	a.shift = 0
	switch k.pick(3, 5, 2) {
	case 0:
		a.win = uint32(2000 + k.r.IntN(30000))
	case 1:
		a.win = 64240
	default:
		a.win = uint32(65535 + k.r.IntN(1<<20))
	}
}

// negotiate sets the window shifts and shared options after both SYNs.
func (k *conn) negotiate() {
	if k.c.ws >= 0 && k.s.ws >= 0 {
		k.c.shift, k.s.shift = uint(min(k.c.ws, 14)), uint(min(k.s.ws, 14))
	} else {
		k.c.shift, k.s.shift = 0, 0
		k.c.win, k.s.win = min(k.c.win, 65535), min(k.s.win, 65535)
	}
	// A window the scale cannot express exactly is what the peer sees.
	for _, a := range []*side{k.c, k.s} {
		a.win = a.win >> a.shift << a.shift
		if a.win == 0 {
			a.win = 1 << a.shift
		}
	}
	k.sackOK = k.c.sack && k.s.sack
	k.tsOK = k.c.ts && k.s.ts
}

// life writes one incarnation of the connection; depth counts reuses of
// the 4-tuple.
func (k *conn) life(depth int, prev uint32) {
	k.initSide(k.c)
	k.initSide(k.s)
	if depth > 0 {
		// A reused port starts above the old sequence space (RFC 1122
		// 4.2.2.13), most of the time.
		if k.chance(0.85) {
			k.restart(k.c, prev+uint32(64000+k.r.IntN(1<<24)))
		}
	}
	if !k.open() {
		k.after(depth)
		return
	}
	n := k.r.IntN(12)
	if k.chance(0.15) {
		n += 20
	}
	for i := 0; i < n; i++ {
		if !k.middle() {
			k.after(depth)
			return
		}
	}
	k.close()
	k.after(depth)
}

// shortLife writes one brief connection (Config.Short).
func (k *conn) shortLife() {
	k.initSide(k.c)
	k.initSide(k.s)
	if !k.open() {
		return
	}
	for i := k.r.IntN(3); i > 0; i-- {
		if !k.middle() {
			return
		}
	}
	switch k.pick(6, 2, 2) {
	case 0:
		k.close()
	case 1:
		a := k.c
		if k.chance(0.4) {
			a = k.s
		}
		k.emit(a, packet.RST|packet.ACK, a.nxt, a.rcv, 0, "abort")
	default:
		// left open: the entry expires
	}
}

// after optionally reuses the tuple or sends late packets once the
// connection is gone or closing.
func (k *conn) after(depth int) {
	switch k.pick(6, 2, 2) {
	case 0:
	case 1:
		// late retransmits of the last two segments
		for _, sg := range k.segs[max(0, len(k.segs)-2):] {
			cp := sg
			cp.note = "late-" + sg.note
			k.ipid++
			cp.IPID = k.ipid
			k.segs = append(k.segs, cp)
		}
	case 2:
		if depth < 2 {
			k.life(depth+1, k.c.nxt)
		}
	}
}

// syn sends a's SYN (or SYN/ACK when ack is set).
func (k *conn) syn(a *side, withAck bool, note string) {
	fl := packet.SYN
	ack := uint32(0)
	if withAck {
		fl |= packet.ACK
		ack = a.rcv
	}
	sg := k.emit(a, fl, a.iss, ack, 0, note)
	k.synOpts(a, sg)
	a.nxt = a.iss + 1
}

// open plays an opening; false means the connection ended there.
func (k *conn) open() bool {
	c, s := k.c, k.s
	switch k.pick(40, 8, 6, 5, 10, 5, 4, 3, 2, 2, 2, 2, 3, 2) {
	case 0: // three-way handshake
		k.handshake()
	case 1: // SYN retransmits
		k.syn(c, false, "syn")
		for i := k.r.IntN(3); i >= 0; i-- {
			k.syn(c, false, "syn-retrans")
		}
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
	case 2: // lost SYN/ACK
		k.syn(c, false, "syn")
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.syn(c, false, "syn-retrans")
		k.syn(s, true, "synack-retrans")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
	case 3: // simultaneous open
		k.syn(c, false, "syn")
		k.syn(s, false, "simul-syn")
		c.rcv, s.rcv = s.iss+1, c.iss+1
		k.negotiate()
		if k.chance(0.5) {
			k.syn(c, true, "simul-synack")
			k.syn(s, true, "simul-synack")
		} else {
			k.syn(s, true, "simul-synack")
			k.syn(c, true, "simul-synack")
		}
		k.ack(c, "simul-ack")
		if k.chance(0.5) {
			k.ack(s, "simul-ack")
		}
	case 4: // mid-stream pickup
		c.ws, s.ws = -1, -1
		if k.chance(0.5) {
			c.ws, s.ws = 7, 7
		}
		k.negotiate()
		c.rcv, s.rcv = s.iss+uint32(k.r.IntN(1<<20)), c.iss+uint32(k.r.IntN(1<<20))
		c.nxt, c.una = s.rcv, s.rcv
		s.nxt, s.una = c.rcv, c.rcv
		if k.chance(0.5) {
			k.data(c, 1+k.r.IntN(500), "pickup-data")
		} else {
			k.ack(c, "pickup-ack")
		}
	case 5: // refused: RST/ACK with sequence number 0
		k.syn(c, false, "syn")
		k.emit(s, packet.RST|packet.ACK, 0, c.iss+1, 0, "refused-rst")
		if k.chance(0.5) {
			k.syn(c, false, "syn-after-refused")
			s.rcv = c.iss + 1
			k.syn(s, true, "synack")
			k.negotiate()
			c.rcv = s.iss + 1
			k.ack(c, "ack3")
			return true
		}
		return false
	case 6: // unanswered
		k.syn(c, false, "syn")
		for i := k.r.IntN(3); i > 0; i-- {
			k.syn(c, false, "syn-retrans")
		}
		if k.chance(0.5) {
			k.emit(c, packet.RST, c.iss+1, 0, 0, "client-rst-unanswered")
		}
		return false
	case 7: // ACK answering the SYN (half-open peer), then its RST
		k.syn(c, false, "syn")
		ack := k.r.Uint32()
		k.emit(s, packet.ACK, s.iss, ack, 0, "syn-answered-by-ack")
		k.emit(c, packet.RST, ack, 0, 0, "rst-to-challenge")
		return false
	case 8: // invalid first packets
		fl := []packet.Flags{packet.SYN | packet.ACK, packet.FIN | packet.ACK, packet.RST, packet.RST | packet.ACK, packet.FIN, packet.SYN | packet.FIN, 0}[k.r.IntN(7)]
		k.emit(c, fl, c.iss, k.r.Uint32(), 0, "first-"+fl.String())
		if k.chance(0.5) {
			return false
		}
		k.handshake()
	case 9: // SYN carrying data
		sg := k.emit(c, packet.SYN, c.iss, 0, 100, "syn-data")
		k.synOpts(c, sg)
		c.nxt = c.iss + 101
		s.rcv = c.nxt
		k.syn(s, true, "synack")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
	case 10: // SYN/ACK with a wrong ACK, answered by RST, then retry
		k.syn(c, false, "syn")
		s.rcv = c.iss + 1 + uint32(1+k.r.IntN(1000))
		k.syn(s, true, "synack-badack")
		k.emit(c, packet.RST, s.rcv, 0, 0, "rst-badack")
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
	case 11: // reply SYN (not SYN/ACK) only, then nothing
		k.syn(c, false, "syn")
		k.syn(s, false, "simul-syn")
		if k.chance(0.5) {
			k.emit(s, packet.RST, s.iss+1, 0, 0, "rst-after-simul")
		}
		return false
	case 12: // handshake whose third ACK is lost: data first
		k.syn(c, false, "syn")
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.negotiate()
		c.rcv = s.iss + 1
		k.data(c, 1+k.r.IntN(300), "data-no-ack3")
	default: // URG/ECE/CWR/PSH on the handshake
		k.syn(c, false, "syn")
		k.segs[len(k.segs)-1].Flags |= packet.ECE | packet.CWR
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.segs[len(k.segs)-1].Flags |= packet.ECE
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
	}
	return true
}

func (k *conn) handshake() {
	c, s := k.c, k.s
	k.syn(c, false, "syn")
	s.rcv = c.iss + 1
	k.syn(s, true, "synack")
	k.negotiate()
	c.rcv = s.iss + 1
	k.ack(c, "ack3")
}

// ack sends a pure ACK of everything a received.
func (k *conn) ack(a *side, note string) *seg {
	sg := k.emit(a, packet.ACK, a.nxt, a.rcv, 0, note)
	k.peer(a).una = a.rcv
	return sg
}

// restart gives a a new initial sequence number.
func (k *conn) restart(a *side, iss uint32) {
	a.iss, a.nxt, a.una = iss, iss, iss
}

// room is how much a may send now within the peer's window.
func (k *conn) room(a *side) int {
	b := k.peer(a)
	inflight := a.nxt - a.una
	w := b.win
	if int64(w) <= int64(inflight) {
		return 0
	}
	return int(w - inflight)
}

// data sends n bytes (clipped to the window) from a; the peer receives
// them.
func (k *conn) data(a *side, n int, note string) *seg {
	if r := k.room(a); n > r {
		n = r
	}
	b := k.peer(a)
	fl := packet.ACK
	if n > 0 && k.chance(0.6) {
		fl |= packet.PSH
	}
	sg := k.emit(a, fl, a.nxt, a.rcv, n, note)
	b.una = max32(b.una, a.rcv, b.una)
	a.nxt += uint32(n)
	b.rcv = a.nxt
	return sg
}

// max32 returns the later of x and y in sequence space relative to base.
func max32(x, y, base uint32) uint32 {
	if y-base > x-base {
		return y
	}
	return x
}

func (k *conn) dataLen() int {
	switch k.pick(5, 5, 2, 1) {
	case 0:
		return 1 + k.r.IntN(40)
	case 1:
		return 40 + k.r.IntN(260)
	case 2:
		return 300 + k.r.IntN(700)
	default:
		return 1400
	}
}

// middle plays one event of an open connection; false means it ended.
func (k *conn) middle() bool {
	c, s := k.c, k.s
	a, b := c, s
	if k.chance(0.5) {
		a, b = s, c
	}
	switch k.pick(30, 10, 6, 6, 5, 5, 4, 3, 3, 3, 3, 2, 4, 3, 3, 3, 3, 2, 2, 2, 2, 2) {
	case 0: // request/response
		k.data(a, k.dataLen(), "data")
		if k.chance(0.7) {
			k.data(b, k.dataLen(), "data-reply")
		} else {
			k.ack(b, "ack")
		}
	case 1: // bulk, then a cumulative ACK
		for i := 2 + k.r.IntN(6); i > 0; i-- {
			k.data(a, k.dataLen(), "bulk")
		}
		k.ack(b, "ack-bulk")
	case 2: // a lost segment, SACK (if negotiated), retransmission
		k.data(a, 100+k.r.IntN(500), "pre-loss")
		lost := a.nxt
		n := 100 + k.r.IntN(500)
		n = min(n, k.room(a))
		seen := k.chance(0.5)
		if seen {
			k.emit(a, packet.ACK|packet.PSH, a.nxt, a.rcv, n, "lost-after-capture")
		}
		a.nxt += uint32(n)
		k.data(a, 100+k.r.IntN(300), "after-loss")
		// b has received up to lost, plus [lost+n, a.nxt)
		ack := k.emit(b, packet.ACK, b.nxt, lost, 0, "dupack")
		if k.sackOK {
			ack.Options.SACK = []packet.SACKBlock{{Left: lost + uint32(n), Right: a.nxt}}
			ack.note = "dupack-sack"
		}
		k.emit(a, packet.ACK|packet.PSH, lost, a.rcv, n, "retransmit")
		b.rcv = a.nxt
		k.ack(b, "ack-after-retransmit")
	case 3: // the same segment retransmitted several times
		sg := *k.data(a, 1+k.r.IntN(600), "data")
		for i := 1 + k.r.IntN(4); i > 0; i-- {
			cp := sg
			cp.note = "retransmit"
			k.ipid++
			cp.IPID = k.ipid
			k.segs = append(k.segs, cp)
		}
		if k.chance(0.7) {
			k.ack(b, "ack")
		}
	case 4: // duplicate pure ACKs
		for i := 2 + k.r.IntN(3); i > 0; i-- {
			k.ack(b, "dup-ack")
		}
	case 5: // zero window, probes, reopening
		k.data(a, k.dataLen(), "data")
		old := b.win
		b.win = 0
		k.ack(b, "zero-window")
		for i := k.r.IntN(3); i >= 0; i-- {
			k.emit(a, packet.ACK, a.nxt, a.rcv, 1, "window-probe")
			k.ack(b, "zero-window")
		}
		b.win = old
		k.ack(b, "window-update")
	case 6: // window changes
		b.win = uint32(1000+k.r.IntN(200000)) >> b.shift << b.shift
		if b.shift == 0 {
			b.win = min(b.win, 65535)
		}
		if b.win == 0 {
			b.win = 1 << b.shift
		}
		k.ack(b, "window-change")
	case 7: // keepalive
		k.emit(a, packet.ACK, a.nxt-1, a.rcv, k.r.IntN(2), "keepalive")
		k.ack(b, "keepalive-ack")
	case 8: // segment far beyond the window
		k.emit(a, packet.ACK|packet.PSH, a.nxt+1<<30+uint32(k.r.IntN(1000)), a.rcv, 1+k.r.IntN(100), "seq-far-ahead")
	case 9: // ACK of data never sent
		k.emit(a, packet.ACK, a.nxt, a.rcv+uint32(1000+k.r.IntN(1<<20)), 0, "ack-unsent")
	case 10: // an old segment far below the window
		k.emit(a, packet.ACK|packet.PSH, a.nxt-uint32(1<<21+k.r.IntN(1<<20)), a.rcv, 1+k.r.IntN(100), "seq-far-behind")
	case 11: // an ACK far below
		k.emit(a, packet.ACK, a.nxt, a.rcv-uint32(1<<21+k.r.IntN(1<<20)), 0, "ack-far-behind")
	case 12: // overshoot: more than the window allows
		if k.room(a) > 4000 {
			// shrink the window first, to keep packets small
			b.win = max(uint32(1000+k.r.IntN(3000))>>b.shift<<b.shift, 1<<b.shift)
			k.ack(b, "window-shrink")
		}
		n := min(k.room(a)+1+k.r.IntN(2000), 30000)
		k.emit(a, packet.ACK|packet.PSH, a.nxt, a.rcv, n, "overshoot")
		a.nxt += uint32(n)
		b.rcv = a.nxt
		k.ack(b, "ack-overshoot")
	case 13: // SYN in ESTABLISHED: challenge ACK, RST, new SYN (client restarted)
		iss := k.r.Uint32()
		sg := k.emit(c, packet.SYN, iss, 0, 0, "syn-in-est")
		k.synOpts(c, sg)
		k.emit(s, packet.ACK, s.nxt, s.rcv, 0, "challenge-ack")
		if k.chance(0.8) {
			k.emit(c, packet.RST, s.rcv, 0, 0, "rst-to-challenge")
			if k.chance(0.7) {
				k.reopenFrom(iss)
				return true
			}
			return false
		}
	case 14: // SYN in ESTABLISHED answered by SYN/ACK (server lost state): resync
		k.resyncAfterIgnoredSyn("syn-in-est")
	case 15: // RST, exact
		k.ack(b, "ack-before-rst")
		k.emit(a, packet.RST|packet.ACK, a.nxt, a.rcv, 0, "rst-exact")
		return false
	case 16: // RST in window but not exact: challenge ACK, then exact RST
		k.ack(b, "ack-before-rst")
		k.emit(a, packet.RST, a.nxt+uint32(1+k.r.IntN(int(max(b.win, 2)-1))), 0, 0, "rst-inwin")
		if k.chance(0.8) {
			k.emit(b, packet.ACK, b.nxt, b.rcv, 0, "challenge-ack")
			k.emit(a, packet.RST, a.nxt, 0, 0, "rst-after-challenge")
			return false
		}
		k.data(a, k.dataLen(), "data-after-rst")
	case 17: // RST out of window (ahead)
		k.emit(a, packet.RST, a.nxt+1<<31-uint32(k.r.IntN(1000)), 0, 0, "rst-far-ahead")
	case 18: // RST before the peer's last ACK
		k.emit(a, packet.RST|packet.ACK, a.una-uint32(1+k.r.IntN(1000)), a.rcv, 0, "rst-old")
	case 19: // RST with sequence number 0 / RST+ACK with ack 0
		if k.chance(0.5) {
			k.emit(a, packet.RST, 0, 0, 0, "rst-seq0")
		} else {
			k.emit(a, packet.RST|packet.ACK, a.nxt, 0, 0, "rst-ack0")
		}
		return k.chance(0.5)
	case 20: // invalid flag combinations
		fl := []packet.Flags{packet.FIN, packet.SYN | packet.FIN, 0, packet.SYN | packet.RST, packet.SYN | packet.ACK | packet.URG, packet.FIN | packet.PSH | packet.URG, packet.FIN | packet.RST | packet.ACK}[k.r.IntN(7)]
		k.emit(a, fl, a.nxt, a.rcv, 0, "flags-"+fl.String())
	default: // urgent data
		sg := k.data(a, 1+k.r.IntN(100), "urgent")
		sg.Flags |= packet.URG
		sg.Urgent = 1
	}
	return true
}

// reopenFrom continues after the client restarted with ISN iss: the
// server, which saw the RST, accepts the new SYN.
// resyncAfterIgnoredSyn sends, in an established connection, a SYN from
// the client that conntrack ignores and the server's SYN/ACK answering
// it (the server lost its state), then the client's ACK: the tracker
// resyncs from the ignored SYN.
func (k *conn) resyncAfterIgnoredSyn(synNote string) {
	c, s := k.c, k.s
	iss := k.r.Uint32()
	k.restart(c, iss)
	k.initSide(s)
	k.syn(c, false, synNote)
	s.rcv = iss + 1
	k.syn(s, true, "synack-resync")
	k.negotiate()
	c.rcv = s.iss + 1
	k.ack(c, "ack-resync")
}

func (k *conn) reopenFrom(iss uint32) {
	c, s := k.c, k.s
	k.initSide(c)
	k.restart(c, iss)
	k.initSide(s)
	k.handshake()
}

// close plays one way of ending an open connection.
func (k *conn) close() {
	c, s := k.c, k.s
	a, b := c, s
	if k.chance(0.35) {
		a, b = s, c
	}
	fin := func(x *side, note string) {
		k.emit(x, packet.FIN|packet.ACK, x.nxt, x.rcv, 0, note)
		x.nxt++
		k.peer(x).rcv = x.nxt
		x.finned = true
	}
	switch k.pick(25, 10, 8, 8, 6, 5, 5, 5, 4, 4) {
	case 0: // FIN, ACK, FIN, ACK
		fin(a, "fin")
		k.ack(b, "ack-fin")
		fin(b, "fin2")
		k.ack(a, "last-ack")
	case 1: // FIN, FIN+ACK, ACK
		fin(a, "fin")
		fin(b, "fin2")
		k.ack(a, "last-ack")
	case 2: // simultaneous close
		k.emit(a, packet.FIN|packet.ACK, a.nxt, a.rcv, 0, "simul-fin")
		k.emit(b, packet.FIN|packet.ACK, b.nxt, b.rcv, 0, "simul-fin")
		a.nxt++
		b.nxt++
		a.rcv, b.rcv = b.nxt, a.nxt
		k.ack(a, "simul-last-ack")
		k.ack(b, "simul-last-ack")
	case 3: // half close, data keeps flowing the other way
		fin(a, "fin")
		k.ack(b, "ack-fin")
		for i := 1 + k.r.IntN(4); i > 0; i-- {
			k.data(b, k.dataLen(), "half-closed-data")
			k.ack(a, "ack-half-closed")
		}
		fin(b, "fin2")
		k.ack(a, "last-ack")
	case 4: // FIN retransmitted
		fin(a, "fin")
		k.emit(a, packet.FIN|packet.ACK, a.nxt-1, a.rcv, 0, "fin-retrans")
		k.ack(b, "ack-fin")
		fin(b, "fin2")
		k.emit(b, packet.FIN|packet.ACK, b.nxt-1, b.rcv, 0, "fin-retrans")
		k.ack(a, "last-ack")
	case 5: // FIN with data
		k.data(a, k.dataLen(), "data")
		sg := k.emit(a, packet.FIN|packet.ACK|packet.PSH, a.nxt, a.rcv, 10+k.r.IntN(100), "fin-data")
		a.nxt += uint32(sg.PayloadLen) + 1
		b.rcv = a.nxt
		fin(b, "fin2")
		k.ack(a, "last-ack")
	case 6: // only one side closes
		fin(a, "fin")
		k.ack(b, "ack-fin")
	case 7: // FIN then RST
		fin(a, "fin")
		if k.chance(0.5) {
			k.ack(b, "ack-fin")
		}
		k.emit(b, packet.RST|packet.ACK, b.nxt, b.rcv, 0, "rst-in-close")
	case 8: // LAST_ACK, then a new SYN: challenge ACK, RST, SYN again
		fin(a, "fin")
		k.ack(b, "ack-fin")
		fin(b, "fin2")
		iss := c.nxt + uint32(100000+k.r.IntN(1<<20))
		sg := k.emit(c, packet.SYN, iss, 0, 0, "syn-in-last-ack")
		k.synOpts(c, sg)
		k.emit(s, packet.ACK, s.nxt, s.rcv, 0, "challenge-ack")
		k.emit(c, packet.RST, s.rcv, 0, 0, "rst-to-challenge")
	default: // abort with RST|ACK
		k.emit(a, packet.RST|packet.ACK, a.nxt, a.rcv, 0, "abort")
	}
}
