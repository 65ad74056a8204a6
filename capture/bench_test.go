package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"testing"
)

// benchTrace is a capture that looks like a busy server's: mostly TCP over
// IPv4 and IPv6 (some VLAN-tagged) with a realistic spread of sizes, plus
// UDP and ARP. Built once: 20000 records, about 12 MB.
var benchTrace = sync.OnceValues(func() (pcap, pcapng []byte) {
	var pc bytes.Buffer
	w, _ := NewWriter(&pc, LinkEthernet, 0)
	ng := newNg(binary.LittleEndian)
	ng.idb(LinkEthernet, 0, 9, 0)
	sizes := []int{0, 0, 0, 12, 100, 536, 1448, 1448, 1448, 1448}
	for i := range 20000 {
		n := sizes[i%len(sizes)]
		var frame []byte
		switch {
		case i%50 == 49:
			frame = eth(0x0806, nil, make([]byte, 28))
		case i%20 == 7:
			frame = eth(etherIPv4, nil, ipv4(17, make([]byte, 8+n), v4opts{}))
		case i%4 == 1:
			frame = eth(etherIPv6, nil, ipv6(protoTCP, nil, tcp(uint16(i), 443, n), 0))
		case i%8 == 2:
			frame = eth(etherIPv4, []uint16{etherVLAN}, ipv4(protoTCP, tcp(uint16(i), 443, n), v4opts{}))
		default:
			frame = eth(etherIPv4, nil, ipv4(protoTCP, tcp(uint16(i), 443, n), v4opts{}))
		}
		w.WritePacket(t0, frame)
		ng.epb(0, uint64(i), frame, 0)
	}
	return pc.Bytes(), ng.bytes()
})

// BenchmarkReader measures Next on whole files: one op is one record,
// decoded to the TCP header, so allocs/op is per record.
func BenchmarkReader(b *testing.B) {
	pc, ng := benchTrace()
	for _, c := range []struct {
		name string
		data []byte
	}{{"pcap", pc}, {"pcapng", ng}, {"pcap.gz", gz(b, pc)}} {
		b.Run(c.name, func(b *testing.B) {
			src := bytes.NewReader(c.data)
			r, err := NewReader(src)
			if err != nil {
				b.Fatal(err)
			}
			tcp := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				p, err := r.Next()
				if err == io.EOF {
					// Start the file again; not part of the per-record cost.
					b.StopTimer()
					src.Reset(c.data)
					if r, err = NewReader(src); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					p, err = r.Next()
				}
				if err != nil {
					b.Fatal(err)
				}
				if p.Kind == KindTCP {
					tcp++
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if tcp == 0 {
				b.Fatal("no TCP")
			}
		})
	}
}

// BenchmarkDecode measures link, IP and TCP decoding alone.
func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"ethernet-v4", eth(etherIPv4, nil, ipv4(protoTCP, tcp(1, 2, 1448), v4opts{}))},
		{"vlan-v6-ext", eth(etherIPv6, []uint16{etherVLAN}, ipv6(protoTCP, []ext{{protoHopOpts, optsHdr(0)}}, tcp(1, 2, 1448), 0))},
	} {
		b.Run(c.name, func(b *testing.B) {
			var p Packet
			b.ReportAllocs()
			for range b.N {
				p.Decode(LinkEthernet, c.frame, len(c.frame))
			}
			if p.Kind != KindTCP {
				b.Fatal(p.Reason)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
