package tracegen

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/fdac824a/tcpct/capture"
)

// Summary renders a TCP/IP packet tcpdump-style on one line
// ("127.1.0.1:20000 > 127.2.0.1:80 S. seq 1 ack 2 win 502 len 0"), for
// notes and failure messages; an ICMP error as
// "127.3.0.1 > 127.1.0.1 icmp 3/3, 28 bytes quoted". It only reads what
// the generator writes.
func Summary(p []byte) string {
	if len(p) < 1 {
		return "empty"
	}
	if s, ok := icmpSummary(p); ok {
		return s
	}
	var src, dst netip.Addr
	var t []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 40 {
			return "short IPv4"
		}
		src, _ = netip.AddrFromSlice(p[12:16])
		dst, _ = netip.AddrFromSlice(p[16:20])
		t = p[int(p[0]&15)*4:]
	case 6:
		if len(p) < 60 {
			return "short IPv6"
		}
		src, _ = netip.AddrFromSlice(p[8:24])
		dst, _ = netip.AddrFromSlice(p[24:40])
		t = p[40:]
	default:
		return "not IP"
	}
	doff := int(t[12]>>4) * 4
	return fmt.Sprintf("%v > %v %s seq %d ack %d win %d len %d",
		netip.AddrPortFrom(src, binary.BigEndian.Uint16(t)), netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:])),
		capture.TcpdumpFlags(t[13]), binary.BigEndian.Uint32(t[4:]), binary.BigEndian.Uint32(t[8:]),
		binary.BigEndian.Uint16(t[14:]), len(t)-min(doff, len(t)))
}

// icmpSummary renders an ICMP or ICMPv6 packet.
func icmpSummary(p []byte) (string, bool) {
	var src, dst netip.Addr
	var m []byte
	name := "icmp"
	switch {
	case p[0]>>4 == 4 && len(p) >= 20 && p[9] == 1:
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		m = p[min(int(p[0]&15)*4, len(p)):]
	case p[0]>>4 == 6 && len(p) >= 40 && p[6] == 58:
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		m, name = p[40:], "icmpv6"
	default:
		return "", false
	}
	if len(m) < 8 {
		return fmt.Sprintf("%v > %v %s, %d-byte header", src, dst, name, len(m)), true
	}
	return fmt.Sprintf("%v > %v %s %d/%d, %d bytes quoted", src, dst, name, m[0], m[1], len(m)-8), true
}
