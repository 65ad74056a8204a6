package tracegen

import (
	"bytes"
	"math/rand/v2"
	"net/netip"

	"github.com/fdac824a/tcpct/packet"
)

// icmpGen makes the ICMP and ICMPv6 errors of a trace (Config.ICMP):
// each about a TCP packet of the trace, in one of the forms the kernel's
// nf_conntrack_icmpv4_error / nf_conntrack_icmpv6_error and
// nf_conntrack_inet_error tell apart (Linux 6.18): a known error type
// or not, sent to the quoted packet's source or elsewhere, with the
// quoted packet whole, cut to the IP header and 8 or 4 bytes (the ports)
// or fewer, or corrupted in the fields the kernel reads (fragment offset,
// header length) and in those it does not (version, lengths, checksums,
// flags and sequence numbers).
type icmpGen struct {
	r *rand.Rand
	// ended holds packets of connections that have sent their last
	// packet: errors quoting them find a closed entry, or an expired one
	// after a pause.
	ended [][]byte
}

// Routers on the path and a host unrelated to any connection, inside the
// oracle's addresses (kernel.IPv6Prefix and 127/8).
var (
	router4 = netip.MustParseAddr("127.3.0.1")
	router6 = netip.MustParseAddr("fd7c:7c7c::3:0:1")
	other4  = netip.MustParseAddr("127.4.0.1")
	other6  = netip.MustParseAddr("fd7c:7c7c::4:0:1")
)

func newICMPGen(seed uint64) *icmpGen {
	return &icmpGen{r: rand.New(rand.NewPCG(seed, 0x69636d70))}
}

// after is called with every TCP packet b of the trace (last: its
// connection's last packet); with probability share it returns an error
// to follow it.
func (g *icmpGen) after(share float64, b []byte, last bool) ([]byte, string, bool) {
	if last {
		g.ended = append(g.ended, b)
		if len(g.ended) > 64 {
			g.ended = g.ended[len(g.ended)-64:]
		}
	}
	if g.r.Float64() >= share {
		return nil, "", false
	}
	r := g.r
	quote, note := b, "icmp-live"
	switch n := r.IntN(10); {
	case n < 2 && len(g.ended) > 0:
		quote, note = g.ended[r.IntN(len(g.ended))], "icmp-ended"
	case n < 3:
		// A connection that never was: another client port.
		quote = bytes.Clone(b)
		l4 := l4Off(quote)
		quote[l4], quote[l4+1] = byte(r.IntN(256)), byte(r.IntN(256))
		note = "icmp-unknown"
	}
	v6 := quote[0]>>4 == 6
	src, dst := quotedAddrs(quote)
	e := packet.ICMPError{Src: dst, Dst: src}
	if r.IntN(3) == 0 {
		e.Src = router4
		if v6 {
			e.Src = router6
		}
	}
	if r.IntN(12) == 0 {
		e.Dst, note = other4, note+"-elsewhere"
		if v6 {
			e.Dst = other6
		}
	}
	if v6 {
		types := []uint8{1, 1, 1, 2, 3, 4, 0, 100, 127}
		e.Type = types[r.IntN(len(types))]
	} else {
		types := []uint8{3, 3, 3, 3, 4, 5, 11, 12, 19, 40}
		e.Type = types[r.IntN(len(types))]
	}
	e.Code = uint8(r.IntN(5))
	ip := l4Off(quote)
	switch n := r.IntN(12); {
	case n < 4:
		e.Quote, note = quote, note+"-whole"
	case n < 6:
		e.Quote, note = quote[:ip+8], note+"-8"
	case n < 7:
		e.Quote, note = quote[:ip+4], note+"-ports"
	case n < 8:
		e.Quote, note = quote[:ip+r.IntN(4)], note+"-cut"
	case n < 9:
		e.Quote, note = quote[:r.IntN(ip)], note+"-cutip"
	case n < 10:
		// Fields the kernel does not read.
		q := bytes.Clone(quote)
		for range 1 + r.IntN(4) {
			var at int
			if v6 {
				at = []int{0, 1, 4, 5, 7, ip + 4, ip + 12, ip + 13, ip + 16}[r.IntN(9)]
			} else {
				at = []int{0, 1, 2, 3, 4, 8, 10, 11, ip + 4, ip + 13, ip + 16}[r.IntN(11)]
			}
			if at < len(q) {
				q[at] ^= byte(1 + r.IntN(255))
			}
		}
		e.Quote, note = q, note+"-garbled"
	case n < 11 && !v6:
		// Fields it reads: the fragment offset, the header length.
		q := bytes.Clone(quote)
		if r.IntN(2) == 0 {
			q[6], q[7] = byte(r.IntN(0x40)), byte(r.IntN(256))
			note += "-frag"
		} else {
			q[0] = 0x40 | byte(r.IntN(16))
			note += "-ihl"
		}
		e.Quote = q
	default:
		e.Quote, note = quote[:ip+8], note+"-8"
	}
	if r.IntN(40) == 0 {
		b, err := e.Build()
		if err != nil {
			panic(err)
		}
		return shortICMP(b), "icmp-short", true
	}
	if r.IntN(20) == 0 {
		e.BadChecksum, note = true, note+"-badsum"
	}
	out, err := e.Build()
	if err != nil {
		panic(err)
	}
	return out, note, true
}

// l4Off is the offset of a generated packet's TCP header.
func l4Off(b []byte) int {
	if b[0]>>4 == 6 {
		return 40
	}
	return int(b[0]&15) * 4
}

func quotedAddrs(b []byte) (src, dst netip.Addr) {
	if b[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	}
	return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
}

// shortICMP cuts an error to 4 bytes of ICMP header, fixing the IP
// length fields.
func shortICMP(b []byte) []byte {
	if b[0]>>4 == 6 {
		b = b[:44]
		b[4], b[5] = 0, 4
		return b
	}
	b = b[:24]
	b[2], b[3] = 0, 24
	b[10], b[11] = 0, 0
	c := packet.Checksum(b[:20], 0)
	b[10], b[11] = byte(c>>8), byte(c)
	return b
}
