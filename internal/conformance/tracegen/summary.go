package tracegen

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/fdac824a/tcpct/capture"
)

// Summary renders a TCP/IP packet tcpdump-style on one line
// ("127.1.0.1:20000 > 127.2.0.1:80 S. seq 1 ack 2 win 502 len 0"), for
// notes and failure messages. It only reads what the generator writes.
func Summary(p []byte) string {
	if len(p) < 1 {
		return "empty"
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
