package invariant

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// KernelPacket is one TCP record of a recorded trace, parsed once.
type KernelPacket struct {
	Index int       // record number, the jsonl "i"
	Key   table.Key // the packet's tuple
	Seg   fsm.Segment
	Now   int64
	IP    []byte // the record from the IP header on (a fuzz seed)
}

// KernelTrace is a recorded trace: its packets and the kernel's verdicts.
type KernelTrace struct {
	tracegen.Recording // Name, generator configuration, Sysctls
	Packets            []KernelPacket
	Kernel             []compare.Line
	Keys               map[int]string // compare.FlowKeys of the capture
}

// LoadKernelTraces reads every variant from dir (tcpcttest/testdata).
func LoadKernelTraces(dir string) ([]*KernelTrace, error) {
	var out []*KernelTrace
	for _, v := range tracegen.Recordings {
		kt := &KernelTrace{Recording: v}
		pc, err := gunzip(filepath.Join(dir, v.Name+".pcap.gz"))
		if err != nil {
			return nil, err
		}
		js, err := gunzip(filepath.Join(dir, v.Name+".jsonl.gz"))
		if err != nil {
			return nil, err
		}
		if kt.Kernel, err = compare.Read(bytes.NewReader(js)); err != nil {
			return nil, fmt.Errorf("%s.jsonl.gz: %w", v.Name, err)
		}
		r, err := capture.NewReader(bytes.NewReader(pc))
		if err != nil {
			return nil, fmt.Errorf("%s.pcap.gz: %w", v.Name, err)
		}
		var raw [][]byte
		for {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s.pcap.gz: %w", v.Name, err)
			}
			ip := append([]byte(nil), p.Data...)
			raw = append(raw, ip)
			if p.Kind != capture.KindTCP {
				continue
			}
			kt.Packets = append(kt.Packets, KernelPacket{
				Index: p.Index,
				Key:   table.KeyFromAddrPorts(addrPort(p.Src, p.SrcPort), addrPort(p.Dst, p.DstPort)),
				Seg:   fsm.ParseSegment(p.TCP, p.IPPayloadLen),
				Now:   p.Time,
				IP:    ip,
			})
		}
		kt.Keys = compare.FlowKeys(raw)
		out = append(out, kt)
	}
	return out, nil
}

// Config is the tracker configuration of the trace's recording: its
// sysctls as knobs, a table that never fills, and spec s in place of the
// linux profile when s is not nil (the mutation check's mutants).
func (kt *KernelTrace) Config(s *spec.Spec) tcpct.Config {
	knobs := append(append([]string(nil), kt.Sysctls...), fmt.Sprintf("max=%d", len(kt.Packets)+1))
	return tcpct.Config{Profile: "linux", Spec: s, Knobs: knobs, Seed: 1}
}

// Replay runs the trace through a fresh tracker built from cfg and renders
// each verdict as the kernel's jsonl line. With check, every step
// invariant is checked on the entry the tracker holds before and after
// each packet; the first violation is returned with the lines so far.
func (kt *KernelTrace) Replay(cfg tcpct.Config, check bool) ([]compare.Line, error) {
	tr, err := NewTracker(cfg)
	if err != nil {
		return nil, err
	}
	var ctx *Context
	if check {
		if ctx, err = ContextOf(tr, &cfg); err != nil {
			return nil, err
		}
	}
	p := tr.Profile()
	out := make([]compare.Line, 0, len(kt.Packets))
	for i := range kt.Packets {
		pk := &kt.Packets[i]
		var v tcpct.Verdict
		if ctx == nil {
			seg := pk.Seg
			v = Track(tr, pk.Key, &seg, pk.Now)
		} else {
			var st Step
			if st, v = TrackStep(tr, pk.Key, pk.Seg, pk.Now); v.Dropped {
				return out, fmt.Errorf("%s packet %d: dropped by a table of %d", kt.Name, pk.Index, tr.Max())
			}
			if err := ctx.CheckStep(&st); err != nil {
				return out, fmt.Errorf("%s packet %d: %w", kt.Name, pk.Index, err)
			}
		}
		l := compare.Line{I: pk.Index, CT: v.CT.String()}
		if v.CT != fsm.CTInvalid {
			l.Dir = v.Dir.String()
		}
		if v.Entry {
			left := table.SecondsLeft(v.Deadline().UnixNano(), pk.Now)
			l.State, l.Timeout = p.StateName(v.State), &left
			l.Assured, l.SeenReply = v.Assured, v.SeenReply
		}
		out = append(out, l)
	}
	return out, nil
}

// Disagreements replays the trace through a tracker built from cfg and
// compares it with the kernel's verdicts (every field, timeouts within
// 1 s): the number of disagreeing packets and a description of the first.
func (kt *KernelTrace) Disagreements(cfg tcpct.Config) (int, string) {
	ours, err := kt.Replay(cfg, false)
	if err != nil {
		return len(kt.Packets), err.Error()
	}
	rep := compare.Compare(kt.Kernel, ours, compare.Options{Keys: kt.Keys, MaxDiffs: 1, Context: 2})
	if rep.Agree() {
		return 0, ""
	}
	var b bytes.Buffer
	rep.Diffs = rep.Diffs[:min(1, len(rep.Diffs))]
	rep.WriteText(&b)
	return rep.TotalDiffs, b.String()
}

func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(z)
}

func addrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
