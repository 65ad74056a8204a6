// Package bpf loads tcpct's linux-profile TCP tracker as an eBPF program
// (tcpct.bpf.c, built on the C step of ../c) with cilium/ebpf, and runs
// packets through it with BPF_PROG_TEST_RUN for tests and measurements.
//
// The program suits TC (sched_cls, ingress or egress) and XDP. It tracks
// every TCP packet over IPv4 and IPv6 (without extension headers or
// fragments) in a BPF hash map whose key both tuples of a connection find,
// and publishes each packet's verdict in a per-CPU map (and a ring buffer
// when events are on). It never drops a packet.
//
// Loading needs root (CAP_BPF and CAP_NET_ADMIN) and Linux 5.12 or later;
// ebpf/README.md says why.
package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/fdac824a/tcpct/fsm"
)

// Tracker is the loaded program with its maps.
type Tracker struct {
	objs  tcpctObjects
	seq   uint64
	prog  *ebpf.Program
	knobs tcpctTcpctBpfKnobs
}

// Hook selects the program a Tracker runs.
type Hook int

const (
	TC  Hook = iota // the sched_cls program (TC ingress or egress)
	XDP             // the XDP program
)

// Load loads the program into the kernel, configured with m's knobs (m must
// run the linux profile), and runs packets through the hook's program.
func Load(m *fsm.Machine, hook Hook) (*Tracker, error) {
	t := &Tracker{}
	if err := loadTcpctObjects(&t.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the verifier rejected the program: %+v", ve)
		}
		return nil, err
	}
	t.prog = t.objs.TcpctTc
	if hook == XDP {
		t.prog = t.objs.TcpctXdp
	}
	if err := t.SetKnobs(m); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close unloads the program and its maps.
func (t *Tracker) Close() error { return t.objs.Close() }

// SetKnobs writes m's knob values to the knobs map: the program derives
// its configuration from them on every packet, so a change applies to the
// next packet.
func (t *Tracker) SetKnobs(m *fsm.Machine) error {
	p := m.Profile()
	k := &t.knobs
	if p.Name != "linux" || len(p.Knobs) != len(k.Knob) {
		return fmt.Errorf("bpf: the program runs the linux profile with %d knobs, not %s with %d", len(k.Knob), p.Name, len(p.Knobs))
	}
	for i, kn := range p.Knobs {
		k.Knob[i], _ = m.Knob(kn.Name)
	}
	return t.objs.Knobs.Put(uint32(0), k)
}

// Events turns the ring buffer on and returns a reader of it: every
// tracked packet's verdict then also goes there (ParseEvent decodes a
// record). Closing the reader does not turn the events off.
func (t *Tracker) Events() (*ringbuf.Reader, error) {
	t.knobs.Events = 1
	if err := t.objs.Knobs.Put(uint32(0), &t.knobs); err != nil {
		return nil, err
	}
	return ringbuf.NewReader(t.objs.Events)
}

// ParseEvent decodes one ring buffer record.
func ParseEvent(raw []byte) (Verdict, error) {
	var o tcpctTcpctBpfVerdict
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, &o); err != nil {
		return Verdict{}, fmt.Errorf("bpf: event of %d bytes: %w", len(raw), err)
	}
	return verdictOf(&o), nil
}

// Program is the program packets run through (for its verifier info).
func (t *Tracker) Program() *ebpf.Program { return t.prog }

// Verdict is what the program published for one packet.
type Verdict struct {
	fsm.Verdict
	Tracked  bool // false: not a TCP segment the program tracks
	Entry    bool // the connection has an entry after the packet
	State    fsm.State
	Status   fsm.Status
	Deadline int64 // of the entry, in the injected clock's nanoseconds
}

// Run runs one Ethernet frame through the program with BPF_PROG_TEST_RUN,
// the clock injected as now (nanoseconds; 0 uses the kernel's monotonic
// clock), and returns its verdict.
func (t *Tracker) Run(frame []byte, now int64) (Verdict, error) {
	t.seq++
	if err := t.objs.Clock.Put(uint32(0), &tcpctTcpctBpfClock{Now: now, Seq: t.seq}); err != nil {
		return Verdict{}, err
	}
	if _, err := t.prog.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		return Verdict{}, err
	}
	var per []tcpctTcpctBpfVerdict
	if err := t.objs.Verdict.Lookup(uint32(0), &per); err != nil {
		return Verdict{}, err
	}
	for _, o := range per {
		if o.Seq == t.seq {
			return verdictOf(&o), nil
		}
	}
	return Verdict{}, fmt.Errorf("bpf: no CPU published the verdict of run %d", t.seq)
}

// RunTimed is Run that also returns the kernel's time for the program's
// run (BPF_PROG_TEST_RUN with repeat 1: the program's time plus the
// test runner's clock reads around it, a few tens of ns that a trivial
// program's run measures).
func (t *Tracker) RunTimed(frame []byte, now int64) (Verdict, time.Duration, error) {
	t.seq++
	if err := t.objs.Clock.Put(uint32(0), &tcpctTcpctBpfClock{Now: now, Seq: t.seq}); err != nil {
		return Verdict{}, 0, err
	}
	_, d, err := t.prog.Benchmark(frame, 1, nil)
	if err != nil {
		return Verdict{}, 0, err
	}
	var per []tcpctTcpctBpfVerdict
	if err := t.objs.Verdict.Lookup(uint32(0), &per); err != nil {
		return Verdict{}, 0, err
	}
	for _, o := range per {
		if o.Seq == t.seq {
			return verdictOf(&o), d, nil
		}
	}
	return Verdict{}, 0, fmt.Errorf("bpf: no CPU published the verdict of run %d", t.seq)
}

// Bench runs one frame repeat times with BPF_PROG_TEST_RUN at the clock
// now and returns the kernel's average time per run.
func (t *Tracker) Bench(frame []byte, now int64, repeat int) (float64, error) {
	if err := t.objs.Clock.Put(uint32(0), &tcpctTcpctBpfClock{Now: now}); err != nil {
		return 0, err
	}
	_, d, err := t.prog.Benchmark(frame, repeat, nil)
	if err != nil {
		return 0, err
	}
	return float64(d.Nanoseconds()), nil
}

// Flush deletes every connection entry.
func (t *Tracker) Flush() error {
	var k tcpctTcpctBpfKey
	var keys []tcpctTcpctBpfKey
	it := t.objs.Conns.Iterate()
	var e tcpctTcpctBpfEntry
	for it.Next(&k, &e) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return err
	}
	for i := range keys {
		if err := t.objs.Conns.Delete(&keys[i]); err != nil {
			return err
		}
	}
	return nil
}

func verdictOf(o *tcpctTcpctBpfVerdict) Verdict {
	v := &o.V
	return Verdict{
		Verdict: fsm.Verdict{CT: fsm.CT(v.Ct), Dir: fsm.Dir(v.Dir), Class: fsm.Class(v.Cls), Old: fsm.State(v.OldState),
			New: fsm.State(v.NewState), Cell: v.Cell, Action: fsm.Action(v.Action), Refreshed: v.Refreshed != 0,
			Accounted: v.Accounted != 0, Ignored: v.Ignored != 0, Expired: v.Expired != 0, Timeout: v.Timeout,
			Reason: fsm.Reason(v.Reason)},
		Tracked: o.Tracked != 0, Entry: o.HasEntry != 0, State: fsm.State(o.State), Status: fsm.Status(o.Status),
		Deadline: o.Deadline,
	}
}
