package bpf

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
)

// ipv4TCP builds an IPv4 TCP packet from 127.0.0.1:40000 to
// 127.0.0.2:443 (or back, when reply) with payload bytes of data, with
// valid checksums.
func ipv4TCP(reply bool, flags uint8, seq, ack uint32, payload int) []byte {
	p := make([]byte, 20+20+payload)
	p[0], p[8], p[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	a, b := []byte{127, 0, 0, 1}, []byte{127, 0, 0, 2}
	sp, dp := uint16(40000), uint16(443)
	if reply {
		a, b, sp, dp = b, a, dp, sp
	}
	copy(p[12:], a)
	copy(p[16:], b)
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], sp)
	binary.BigEndian.PutUint16(t[2:], dp)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12], t[13] = 5<<4, flags
	binary.BigEndian.PutUint16(t[14:], 502)
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:20]))
	pseudo := append(append(append([]byte{}, p[12:20]...), 0, 6), byte(len(t)>>8), byte(len(t)))
	binary.BigEndian.PutUint16(t[16:], checksum(sum(0, pseudo), t))
	return p
}

func sum(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func checksum(s uint32, b []byte) uint16 {
	s = sum(s, b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// handshake is a three-way handshake; dataAck the client's next segment,
// 100 bytes of data on the ESTABLISHED connection: the common case a
// tracker runs. Each run repeats the same segment, which the tracker sees
// as a retransmission after the first.
var (
	handshake = [][]byte{
		ipv4TCP(false, 0x02, 1000, 0, 0),
		ipv4TCP(true, 0x12, 5000, 1001, 0),
		ipv4TCP(false, 0x10, 1001, 5001, 0),
	}
	dataAck = ipv4TCP(false, 0x18, 1001, 5001, 100)
	t0      = time.Unix(1e9, 0)
)

// BenchmarkEstablishedSegment: the eBPF program under BPF_PROG_TEST_RUN
// with repeat (the kernel's own per-run time, metric ns/pkt), next to tcpct's
// Go tracker (parse, table, step) and fsm.Machine.Step alone on the same
// segment. Compare them within one run: on a shared machine absolute
// numbers are noise.
func BenchmarkEstablishedSegment(b *testing.B) {
	b.Run("ebpf-tc-test-run", func(b *testing.B) {
		tr := load(b, fsm.NewMachine(fsm.Linux), TC)
		for _, p := range handshake {
			if v, err := tr.Run(frame(p), t0.UnixNano()); err != nil || v.CT == fsm.CTInvalid {
				b.Fatalf("handshake: %+v %v", v, err)
			}
		}
		ns, err := tr.Bench(frame(dataAck), t0.UnixNano(), b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(ns, "ns/pkt")
	})
	b.Run("go-tracker", func(b *testing.B) {
		tr, err := tcpct.New(tcpct.Config{})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range handshake {
			if _, err := tr.Track(p, t0); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			tr.Track(dataAck, t0)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/pkt")
	})
	b.Run("go-step", func(b *testing.B) {
		m := fsm.NewMachine(fsm.Linux)
		var c fsm.Conn
		for i, p := range handshake {
			seg := fsm.ParseSegment(p[20:], len(p)-20)
			m.Step(&c, &seg, fsm.Dir(i%2), t0.UnixNano())
		}
		seg := fsm.ParseSegment(dataAck[20:], len(dataAck)-20)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			cc := c
			m.Step(&cc, &seg, fsm.Original, t0.UnixNano())
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/pkt")
	})
}
