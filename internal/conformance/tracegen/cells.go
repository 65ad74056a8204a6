package tracegen

import (
	"math/rand/v2"
	"time"

	"github.com/fdac824a/tcpct/packet"
)

// The cell scenarios (Config.Cells): one connection per (prefix, probe)
// pair. The prefix drives the connection into one state of the linux
// tracker with packets the window check accepts; the probe is a single
// packet of one class (SYN, SYN/ACK, FIN, ACK, RST) from one side whose
// sequence and acknowledgement numbers are in window, so that
// tcp_in_window accepts it and the transition table alone decides what
// happens; the epilogue then answers the probe as an endpoint would
// (challenge ACK, RST, handshake of a reopened connection, close) or ends.
// Special scenarios cover what the product cannot: the simultaneous open's
// orderings, resyncs, and the two first packets the table rejects for a
// tuple with no entry although an endpoint sends them (a SYN/ACK whose SYN
// the tracker missed, a FIN of a connection older than the tracker).
//
// Connections run in batches of Config.Parallel: the prefixes of a batch
// are interleaved, then one pause of Config.Pause, then the probes and
// epilogues are interleaved. The pause makes a refreshed timer (the table
// moved the state, even to the same state) tell from an unrefreshed one
// (the packet was ignored), so the kernel's verdict shows which of the
// two the cell is.

// cellPrefix is the state a prefix leaves the connection in.
type cellPrefix int

const (
	preSS    cellPrefix = iota // SYN: SYN_SENT
	preSR                      // SYN, SYN/ACK: SYN_RECV
	preES                      // handshake and some data: ESTABLISHED
	preFW                      // ESTABLISHED, FIN: FIN_WAIT
	preCW                      // FIN_WAIT, ACK of the FIN: CLOSE_WAIT
	preLA                      // CLOSE_WAIT, the second FIN: LAST_ACK
	preLA2                     // FIN and FIN crossing, no ACK: LAST_ACK
	preTW                      // LAST_ACK, the last ACK: TIME_WAIT
	preCL                      // ESTABLISHED, exact RST: CLOSE
	preCLsr                    // SYN_RECV, RST: CLOSE
	preS2                      // SYN, reply SYN: SYN_SENT2
	preSRsim                   // SYN_SENT2, both SYN/ACKs: SYN_RECV of a simultaneous open
	nPrefix
)

var prefixNames = [nPrefix]string{"ss", "sr", "es", "fw", "cw", "la", "la2", "tw", "cl", "clsr", "s2", "srsim"}

// probe classes
const (
	pSyn = iota
	pSynAck
	pFin
	pAck
	pRst
	nProbe
)

var probeNames = [nProbe]string{"syn", "synack", "fin", "ack", "rst"}

// special scenarios after the prefix x probe product
const (
	spSimAckReplyFirst    = iota // simultaneous open, the reply side's ACK first (SIMOPEN: SYN_RECV -> ESTABLISHED)
	spSimSynAckOrig              // simultaneous open, the originator's SYN/ACK first, the reply SYN/ACK in SYN_RECV
	spCloseResync                // RST from the server, client SYN ignored in CLOSE, SYN/ACK resyncs
	spLastAckChallenge           // LAST_ACK, new SYN, challenge ACK (ignored), RST
	spLastAckChallengeFIN        // LAST_ACK, new SYN, the real last ACK, then TIME_WAIT
	spIgnoredSynResyncES         // ESTABLISHED, SYN ignored, SYN/ACK answering it resyncs
	spSynAckNoEntry              // no entry: the server's SYN/ACK (tcp_new: invalid new), the client's ACK picks up
	spFinNoEntry                 // no entry: a FIN mid-stream (tcp_new: invalid new), the peer's ACK picks up
	nSpecial
)

// noEntry reports whether special scenario n probes a first packet, with
// no entry before it. Its passes alternate IPv4 and IPv6 (when the
// configuration has IPv6 at all), so that both families reach the cell
// however few passes a trace holds.
func noEntry(n int) bool { return n == spSynAckNoEntry || n == spFinNoEntry }

// nCellScenarios is the number of distinct cell scenarios.
const nCellScenarios = int(nPrefix)*nProbe*2 + nSpecial

// cellScript builds connection id's script for the cell scenarios and
// returns it with the index of its first packet after the pause.
func cellScript(cfg Config, id int) ([]seg, int) {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(id)+1))
	k := &conn{r: r, cfg: &cfg, id: id}
	k.v6 = cfg.IPv6 > 0 && r.Float64() < cfg.IPv6
	sc := id % nCellScenarios
	pass := id / nCellScenarios
	if sp := sc - int(nPrefix)*nProbe*2; sp >= 0 && noEntry(sp) {
		k.v6 = cfg.IPv6 > 0 && pass%2 == 1
	}
	ca, sa := addrs(id, k.v6)
	k.c = &side{ap: ca}
	k.s = &side{ap: sa}
	k.initSide(k.c)
	k.initSide(k.s)
	if sc >= int(nPrefix)*nProbe*2 {
		split := k.special(sc - int(nPrefix)*nProbe*2)
		return k.segs, split
	}
	pre := cellPrefix(sc / (nProbe * 2))
	probe := sc / 2 % nProbe
	fromServer := sc%2 == 1
	k.prefix(pre)
	split := len(k.segs)
	a := k.c
	if fromServer {
		a = k.s
	}
	k.probe(pre, a, probe, pass)
	return k.segs, split
}

// fin sends a FIN/ACK from x; a FIN from a side that already sent one is
// a retransmission.
func (k *conn) fin(x *side, note string) {
	if x.finned {
		k.emit(x, packet.FIN|packet.ACK, x.nxt-1, x.rcv, 0, note+"-retrans")
		return
	}
	k.emit(x, packet.FIN|packet.ACK, x.nxt, x.rcv, 0, note)
	x.nxt++
	k.peer(x).rcv = x.nxt
	x.finned = true
}

// established plays the handshake and, mostly, some data both ways.
func (k *conn) established() {
	k.handshake()
	if k.chance(0.7) {
		k.data(k.c, k.dataLen(), "data")
		k.data(k.s, k.dataLen(), "data-reply")
		k.ack(k.c, "ack")
	}
}

// closer is the side that closes first (or resets).
func (k *conn) closer() (*side, *side) {
	if k.chance(0.5) {
		return k.s, k.c
	}
	return k.c, k.s
}

// prefix drives the connection into the state of p.
func (k *conn) prefix(p cellPrefix) {
	c, s := k.c, k.s
	switch p {
	case preSS:
		k.syn(c, false, "syn")
		s.rcv = c.iss + 1
		c.rcv = 0 // nothing from the server: an ACK of 0 is within III/IV
	case preSR:
		k.syn(c, false, "syn")
		s.rcv = c.iss + 1
		k.syn(s, true, "synack")
		k.negotiate()
		c.rcv = s.iss + 1
	case preES:
		k.established()
	case preFW:
		k.established()
		a, _ := k.closer()
		k.fin(a, "fin")
	case preCW:
		k.established()
		a, b := k.closer()
		k.fin(a, "fin")
		k.ack(b, "ack-fin")
	case preLA:
		k.established()
		a, b := k.closer()
		k.fin(a, "fin")
		k.ack(b, "ack-fin")
		if k.chance(0.5) {
			k.data(b, k.dataLen(), "half-closed-data")
			k.ack(a, "ack-half-closed")
		}
		k.fin(b, "fin2")
	case preLA2:
		k.established()
		a, b := k.closer()
		k.fin(a, "fin")
		k.fin(b, "fin2")
	case preTW:
		k.established()
		a, b := k.closer()
		k.fin(a, "fin")
		k.ack(b, "ack-fin")
		k.fin(b, "fin2")
		k.ack(a, "last-ack")
	case preCL:
		k.established()
		a, _ := k.closer()
		k.emit(a, packet.RST|packet.ACK, a.nxt, a.rcv, 0, "rst-exact")
	case preCLsr:
		k.prefix(preSR)
		if k.chance(0.5) {
			k.emit(c, packet.RST, c.nxt, 0, 0, "rst-in-synrecv")
		} else {
			k.emit(s, packet.RST|packet.ACK, s.nxt, s.rcv, 0, "rst-in-synrecv")
		}
	case preS2:
		k.syn(c, false, "syn")
		k.syn(s, false, "simul-syn")
		c.rcv, s.rcv = s.iss+1, c.iss+1
		k.negotiate()
	case preSRsim:
		k.prefix(preS2)
		if k.chance(0.5) {
			k.syn(c, true, "simul-synack")
			k.syn(s, true, "simul-synack")
		} else {
			k.syn(s, true, "simul-synack")
			k.syn(c, true, "simul-synack")
		}
	}
}

// probe sends the probe of class cl from a in the state of p, then the
// epilogue. pass varies the choice between an in-window SYN and a fresh
// ISN where both make sense.
func (k *conn) probe(p cellPrefix, a *side, cl, pass int) {
	b := k.peer(a)
	note := "probe-" + prefixNames[p] + "-" + probeNames[cl]
	handshaking := p == preSS || p == preSR || p == preS2
	switch cl {
	case pSyn:
		switch {
		case handshaking:
			// a (re)transmits its SYN, or the server sends its own first
			sg := k.emit(a, packet.SYN, a.iss, 0, 0, note)
			k.synOpts(a, sg)
			a.nxt = a.iss + 1
			if p == preSS && a == k.s {
				// simultaneous open: SYN_SENT2
				k.c.rcv = k.s.iss + 1
				k.negotiate()
			}
		case (p == preTW || p == preCL || p == preCLsr) && pass%2 == 1,
			p == preTW && a == k.c && pass%4 == 0:
			// reopen with a new ISN above the old sequence space
			k.reopen(a, a.nxt+uint32(100000+k.r.IntN(1<<20)), note)
			return
		default:
			// a SYN in window (a restarted endpoint that happens to
			// pick its old sequence number, or a reopen in window)
			sg := k.emit(a, packet.SYN, a.nxt, 0, 0, note)
			k.synOpts(a, sg)
			if p == preTW || p == preCL || p == preCLsr {
				k.reopenAnswer(a, a.nxt)
				return
			}
			// the peer answers with a challenge ACK; a resets
			k.emit(b, packet.ACK, b.nxt, b.rcv, 0, "challenge-ack")
			if k.chance(0.6) {
				k.emit(a, packet.RST, b.rcv, 0, 0, "rst-to-challenge")
				return
			}
		}
	case pSynAck:
		seq, ack := a.nxt, a.rcv
		if handshaking || p == preSRsim {
			seq = a.iss
		}
		sg := k.emit(a, packet.SYN|packet.ACK, seq, ack, 0, note)
		k.synOpts(a, sg)
		if handshaking && a.nxt == a.iss {
			a.nxt = a.iss + 1
		}
		if p == preSS && a == k.s {
			k.negotiate()
			k.c.rcv = k.s.iss + 1
			k.ack(k.c, "ack3")
		} else if !handshaking && p != preSRsim && k.chance(0.5) {
			k.emit(b, packet.ACK, b.nxt, b.rcv, 0, "ack-to-synack")
		}
	case pFin:
		k.fin(a, note)
		if k.chance(0.5) {
			k.ack(b, "ack-probe-fin")
		}
	case pAck:
		if k.chance(0.3) && (p == preES || p == preCW) && !a.finned {
			k.data(a, k.dataLen(), note+"-data")
		} else {
			k.emit(a, packet.ACK, a.nxt, a.rcv, 0, note)
		}
	case pRst:
		switch {
		case p == preSS && a == k.s:
			k.emit(a, packet.RST|packet.ACK, 0, a.rcv, 0, note+"-refused")
		case k.chance(0.5):
			k.emit(a, packet.RST|packet.ACK, a.nxt, a.rcv, 0, note)
		default:
			k.emit(a, packet.RST, a.nxt, 0, 0, note)
		}
		return
	}
	k.epilogue()
}

// reopen: a opens a new connection on the same tuple with ISN iss; the
// peer answers and the handshake completes.
func (k *conn) reopen(a *side, iss uint32, note string) {
	k.restart(a, iss)
	a.finned = false
	sg := k.emit(a, packet.SYN, iss, 0, 0, note)
	k.synOpts(a, sg)
	k.reopenAnswer(a, iss)
}

// reopenAnswer completes the handshake of a reopening SYN a sent with
// sequence number iss.
func (k *conn) reopenAnswer(a *side, iss uint32) {
	b := k.peer(a)
	a.iss, a.nxt, a.una, a.finned = iss, iss+1, iss, false
	b.finned = false
	k.restart(b, b.nxt+uint32(50000+k.r.IntN(1<<20)))
	b.rcv = iss + 1
	k.syn(b, true, "synack-reopen")
	a.rcv = b.iss + 1
	k.ack(a, "ack-reopen")
	if k.chance(0.5) {
		k.data(a, k.dataLen(), "data-reopen")
		k.ack(b, "ack")
	}
	x, _ := k.closer()
	k.emit(x, packet.RST|packet.ACK, x.nxt, x.rcv, 0, "rst-end")
}

// epilogue ends a connection after a probe: nothing, an exact RST, or a
// close with FINs from both sides.
func (k *conn) epilogue() {
	switch k.pick(3, 4, 3) {
	case 0:
	case 1:
		x, _ := k.closer()
		k.emit(x, packet.RST|packet.ACK, x.nxt, x.rcv, 0, "rst-end")
	default:
		x, y := k.closer()
		k.fin(x, "fin-end")
		k.fin(y, "fin-end")
		k.ack(x, "last-ack-end")
	}
}

// special plays special scenario n and returns the index of the first
// packet after the pause.
func (k *conn) special(n int) int {
	c, s := k.c, k.s
	switch n {
	case spSimAckReplyFirst:
		k.prefix(preSRsim)
		split := len(k.segs)
		k.ack(s, "probe-simul-ack-reply-first")
		k.ack(c, "simul-ack")
		k.epilogue()
		return split
	case spSimSynAckOrig:
		k.prefix(preS2)
		split := len(k.segs)
		k.syn(c, true, "probe-simul-synack-orig")
		k.syn(s, true, "simul-synack")
		k.ack(c, "simul-ack")
		k.ack(s, "simul-ack")
		k.epilogue()
		return split
	case spCloseResync:
		k.established()
		k.emit(s, packet.RST|packet.ACK, s.nxt, s.rcv, 0, "rst-exact")
		split := len(k.segs)
		iss := c.nxt + uint32(100000+k.r.IntN(1<<20))
		k.initSide(c)
		k.restart(c, iss)
		k.initSide(s)
		k.syn(c, false, "probe-syn-in-close")
		s.rcv = c.iss + 1
		k.syn(s, true, "synack-resync")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3")
		k.epilogue()
		return split
	case spLastAckChallenge, spLastAckChallengeFIN:
		k.established()
		k.fin(c, "fin")
		k.ack(s, "ack-fin")
		k.fin(s, "fin2")
		split := len(k.segs)
		iss := c.nxt + uint32(100000+k.r.IntN(1<<20))
		sg := k.emit(c, packet.SYN, iss, 0, 0, "probe-syn-in-last-ack")
		k.synOpts(c, sg)
		if n == spLastAckChallengeFIN {
			k.ack(c, "last-ack")
			return split
		}
		k.emit(s, packet.ACK, s.nxt, s.rcv, 0, "challenge-ack")
		k.emit(c, packet.RST, s.rcv, 0, 0, "rst-to-challenge")
		return split
	case spIgnoredSynResyncES:
		k.established()
		split := len(k.segs)
		k.resyncAfterIgnoredSyn("probe-syn-in-est")
		k.epilogue()
		return split
	case spSynAckNoEntry:
		// The tracker never saw the SYN (lost before it, or its entry
		// expired): the server's SYN/ACK is the first packet of the
		// tuple, and only SYN and (tcp_loose) ACK may create an entry.
		s.rcv = c.iss + 1
		k.syn(s, true, "probe-none-synack")
		k.negotiate()
		c.rcv = s.iss + 1
		k.ack(c, "ack3-pickup")
		k.epilogue()
		return 0
	default: // spFinNoEntry
		// A connection older than the tracker closes: its first FIN is
		// the first packet of the tuple the tracker sees.
		c.rcv, s.rcv = s.iss+uint32(k.r.IntN(1<<20)), c.iss+uint32(k.r.IntN(1<<20))
		c.nxt, c.una = s.rcv, s.rcv
		s.nxt, s.una = c.rcv, c.rcv
		a, b := k.closer()
		k.fin(a, "probe-none-fin")
		if k.chance(0.7) {
			k.ack(b, "ack-fin-pickup")
		}
		k.epilogue()
		return 0
	}
}

// generateCells is Generate for Config.Cells.
func generateCells(cfg Config) []Packet {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x63656c6c73)) // interleaving
	var out []Packet
	ts := Base
	id := 0
	total := 0
	type active struct {
		segs []seg
		next int
		end  int
		id   int
	}
	for total < cfg.Packets {
		var batch []*active
		for len(batch) < cfg.Parallel && total < cfg.Packets {
			s, split := cellScript(cfg, id)
			batch = append(batch, &active{segs: s, end: split, id: id})
			total += len(s)
			id++
		}
		for phase := 0; phase < 2; phase++ {
			var act []*active
			for _, a := range batch {
				if phase == 1 {
					a.end = len(a.segs)
				}
				if a.next < a.end {
					act = append(act, a)
				}
			}
			for len(act) > 0 {
				k := r.IntN(len(act))
				a := act[k]
				sg := a.segs[a.next]
				a.next++
				if a.next == a.end {
					act = append(act[:k], act[k+1:]...)
				}
				b, err := sg.Append(nil)
				if err != nil {
					panic(err)
				}
				out = append(out, Packet{TS: ts, Data: b, Conn: a.id, Note: sg.note})
				ts = ts.Add(cfg.Gap/2 + time.Duration(r.Int64N(int64(cfg.Gap))))
			}
			if phase == 0 {
				ts = ts.Add(cfg.Pause)
			}
		}
	}
	return out
}
