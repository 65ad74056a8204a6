// Package pcapgo measures capture.Reader against gopacket's pcapgo
// reader on the same file, to justify hand-written decoding in capture.
package pcapgo

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// trace: 20000 Ethernet records, TCP over IPv4/IPv6 (some 802.1Q) with
// sizes from bare ACKs to full segments, some UDP and ARP.
var trace = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	w, _ := capture.NewWriter(&buf, capture.LinkEthernet, 0)
	sizes := []int{0, 0, 0, 12, 100, 536, 1448, 1448, 1448, 1448}
	ts := time.Unix(1715941800, 0)
	for i := range 20000 {
		n := sizes[i%len(sizes)]
		var f []byte
		switch {
		case i%50 == 49:
			f = eth(0x0806, false, make([]byte, 28))
		case i%20 == 7:
			f = eth(0x0800, false, ip4(17, make([]byte, 8+n)))
		case i%4 == 1:
			f = eth(0x86dd, false, ip6(seg(i, n)))
		case i%8 == 2:
			f = eth(0x0800, true, ip4(6, seg(i, n)))
		default:
			f = eth(0x0800, false, ip4(6, seg(i, n)))
		}
		w.WritePacket(ts, f)
	}
	return buf.Bytes()
})

func seg(i, n int) []byte {
	b := make([]byte, 20+n)
	binary.BigEndian.PutUint16(b, uint16(i))
	binary.BigEndian.PutUint16(b[2:], 443)
	b[12], b[13] = 5<<4, 0x10
	return b
}

func ip4(proto byte, l4 []byte) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	b[8], b[9] = 64, proto
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return append(b, l4...)
}

func ip6(l4 []byte) []byte {
	b := make([]byte, 40, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6], b[7] = 6, 64
	b[8], b[23], b[24], b[39] = 0x20, 1, 0x20, 2
	return append(b, l4...)
}

func eth(typ uint16, vlan bool, p []byte) []byte {
	b := make([]byte, 12, 18+len(p))
	if vlan {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, 7)
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, p...)
}

// loop runs next once per op, restarting the file (untimed) at EOF.
func loop(b *testing.B, open func(io.Reader) func() (int, error)) {
	data := trace()
	src := bytes.NewReader(data)
	next := open(src)
	tcp := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := next()
		if err == io.EOF {
			b.StopTimer()
			src.Reset(data)
			next = open(src)
			b.StartTimer()
			n, err = next()
		}
		if err != nil {
			b.Fatal(err)
		}
		tcp += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if tcp == 0 {
		b.Fatal("no TCP")
	}
}

func BenchmarkCapture(b *testing.B) {
	loop(b, func(src io.Reader) func() (int, error) {
		r, err := capture.NewReader(src)
		if err != nil {
			b.Fatal(err)
		}
		return func() (int, error) {
			p, err := r.Next()
			if err != nil {
				return 0, err
			}
			if p.Kind == capture.KindTCP {
				return int(p.SrcPort>>15) | 1, nil
			}
			return 0, nil
		}
	})
}

// BenchmarkPcapgoLayerParser is gopacket's fastest path: zero-copy reads
// and a preallocated DecodingLayerParser.
func BenchmarkPcapgoLayerParser(b *testing.B) {
	loop(b, func(src io.Reader) func() (int, error) {
		r, err := pcapgo.NewReader(src)
		if err != nil {
			b.Fatal(err)
		}
		var (
			e    layers.Ethernet
			q    layers.Dot1Q
			v4   layers.IPv4
			v6   layers.IPv6
			t    layers.TCP
			pl   gopacket.Payload
			decs []gopacket.LayerType
		)
		p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &e, &q, &v4, &v6, &t, &pl)
		p.IgnoreUnsupported = true
		return func() (int, error) {
			data, _, err := r.ZeroCopyReadPacketData()
			if err != nil {
				return 0, err
			}
			p.DecodeLayers(data, &decs)
			for _, l := range decs {
				if l == layers.LayerTypeTCP {
					return int(t.SrcPort>>15) | 1, nil
				}
			}
			return 0, nil
		}
	})
}

// BenchmarkPcapgoNewPacket is the common gopacket idiom: a Packet per record.
func BenchmarkPcapgoNewPacket(b *testing.B) {
	loop(b, func(src io.Reader) func() (int, error) {
		r, err := pcapgo.NewReader(src)
		if err != nil {
			b.Fatal(err)
		}
		return func() (int, error) {
			data, _, err := r.ZeroCopyReadPacketData()
			if err != nil {
				return 0, err
			}
			pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
			if t, ok := pkt.TransportLayer().(*layers.TCP); ok {
				return int(t.SrcPort>>15) | 1, nil
			}
			return 0, nil
		}
	})
}
