package fsm

import (
	"encoding/binary"
	"testing"
)

// benchFlow returns an established connection and a pair of header
// buffers (data one way, its ACK the other, both with the aligned
// timestamp option) that a benchmark advances in place.
func benchFlow(m *Machine) (Conn, []byte, []byte) {
	var c Conn
	for i, s := range []Segment{
		{Seq: 1000, Flags: syn, Win: 64240, HasOptions: true, HasWScale: true, WScale: 7, SackPerm: true},
		{Seq: 5000, Ack: 1001, Flags: syn | ack, Win: 65160, HasOptions: true, HasWScale: true, WScale: 7, SackPerm: true},
		{Seq: 1001, Ack: 5001, Flags: ack, Win: 502},
	} {
		m.Step(&c, &s, Dir(i%2), 0)
	}
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	data := tcpHeader(ack|psh, ts...)
	binary.BigEndian.PutUint32(data[4:], 1001)
	binary.BigEndian.PutUint32(data[8:], 5001)
	binary.BigEndian.PutUint16(data[14:], 502)
	reply := tcpHeader(ack, ts...)
	binary.BigEndian.PutUint32(reply[4:], 5001)
	binary.BigEndian.PutUint32(reply[8:], 1001)
	binary.BigEndian.PutUint16(reply[14:], 509)
	return c, data, reply
}

// BenchmarkEstablished is the established path from header bytes, as a
// packet path takes it (ParseSegmentInto, StepInto): parse and step a
// 100-byte data segment and the ACK answering it. Reported per packet.
func BenchmarkEstablished(b *testing.B) {
	m := NewMachine(Linux)
	c, data, reply := benchFlow(m)
	seq := uint32(1001)
	var s Segment
	var v Verdict
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint32(data[4:], seq)
		ParseSegmentInto(&s, data, len(data)+100)
		if m.StepInto(&v, &c, &s, Original, 1); v.CT != CTEstablished || v.Ignored {
			b.Fatalf("data: %+v", v)
		}
		seq += 100
		binary.BigEndian.PutUint32(reply[8:], seq)
		ParseSegmentInto(&s, reply, len(reply))
		if m.StepInto(&v, &c, &s, Reply, 2); v.CT != CTEstablished || v.Ignored {
			b.Fatalf("ack: %+v", v)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/packet")
}
