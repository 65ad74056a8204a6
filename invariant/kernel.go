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

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/conformance/compare"
	"github.com/fdac824a/tcpct/conformance/gen"
	"github.com/fdac824a/tcpct/fsm"
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
	gen.Recording // Name, generator configuration, Sysctls
	Packets       []KernelPacket
	Kernel        []compare.Line
	Keys          map[int]string // compare.FlowKeys of the capture
}

// LoadKernelTraces reads every variant from dir (testdata/kernel).
func LoadKernelTraces(dir string) ([]*KernelTrace, error) {
	var out []*KernelTrace
	for _, v := range gen.Recordings {
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

// Replay runs the trace through m and a fresh table as the tracker does
// (the Process loop) and renders each verdict as the kernel's jsonl line.
// Every step invariant is checked with ctx (nil: not checked); the first
// violation is returned with the lines so far.
func (kt *KernelTrace) Replay(m *fsm.Machine, ctx *Context) ([]compare.Line, error) {
	tbl, err := table.New[fsm.Conn](table.Config{Max: len(kt.Packets) + 1, Seed: 1, Stripes: 16})
	if err != nil {
		return nil, err
	}
	out := make([]compare.Line, 0, len(kt.Packets))
	for i := range kt.Packets {
		p := &kt.Packets[i]
		seg := p.Seg
		st, o := Process(m, tbl, p.Key, &seg, p.Now)
		if ctx != nil {
			if err := ctx.CheckStep(&st); err != nil {
				return out, fmt.Errorf("%s packet %d: %w", kt.Name, p.Index, err)
			}
		}
		l := compare.Line{I: p.Index, CT: st.V.CT.String()}
		if st.V.CT != fsm.CTInvalid {
			l.Dir = st.V.Dir.String()
		}
		if c := st.After; c.Live() && !o.Dropped {
			left := table.SecondsLeft(c.Deadline, p.Now)
			l.State, l.Timeout = m.Profile().StateName(c.State), &left
			l.Assured, l.SeenReply = c.Assured(), c.SeenReply()
		}
		out = append(out, l)
	}
	return out, nil
}

// Disagreements replays the trace through m and compares it with the
// kernel's verdicts (every field, timeouts within 1 s): the number of
// disagreeing packets and a description of the first.
func (kt *KernelTrace) Disagreements(m *fsm.Machine) (int, string) {
	ours, _ := kt.Replay(m, nil)
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
