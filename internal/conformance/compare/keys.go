package compare

import (
	"encoding/binary"
	"net/netip"
)

// FlowKeys names the connection of every TCP packet: the two endpoints,
// lower first, so both directions share a key. packets[i] is record i of a
// capture, from the IP header on (nil for a record that is not IP).
// Records that are not TCP get no key.
func FlowKeys(packets [][]byte) map[int]string {
	m := make(map[int]string, len(packets))
	for i, p := range packets {
		a, b, ok := endpoints(p)
		if !ok {
			continue
		}
		if b.Compare(a) < 0 {
			a, b = b, a
		}
		m[i] = a.String() + " " + b.String()
	}
	return m
}

func endpoints(p []byte) (a, b netip.AddrPort, ok bool) {
	if len(p) < 1 {
		return a, b, false
	}
	var s, d netip.Addr
	var t []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&15) * 4
		if len(p) < ihl+4 || ihl < 20 || p[9] != 6 {
			return a, b, false
		}
		s, _ = netip.AddrFromSlice(p[12:16])
		d, _ = netip.AddrFromSlice(p[16:20])
		t = p[ihl:]
	case 6:
		if len(p) < 44 || p[6] != 6 {
			return a, b, false
		}
		s, _ = netip.AddrFromSlice(p[8:24])
		d, _ = netip.AddrFromSlice(p[24:40])
		t = p[40:]
	default:
		return a, b, false
	}
	return netip.AddrPortFrom(s, binary.BigEndian.Uint16(t)), netip.AddrPortFrom(d, binary.BigEndian.Uint16(t[2:])), true
}
