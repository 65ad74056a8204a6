package fsm

import (
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

// fastTrace is a packet stream for the fast-path differential: raw IP
// packets with their times, and the sysctls to run them with.
type fastTrace struct {
	name    string
	sysctls []string
	pkts    []tracegen.Packet
}

// TestFastPathIsTheGeneralPath proves the ESTABLISHED fast path
// (establishedAck) equal to the general path: every recorded kernel
// trace (tcpcttest/testdata, with its sysctls), generated traces of every
// recording's configuration with other seeds, and copies of all of them
// whose sequence and acknowledgement numbers were pushed around the
// window bounds, go through a Machine with the fast path and one without;
// after every packet the two verdicts and the two entries must be equal.
// It also requires that the fast path was taken often, so that it cannot
// pass by never running.
func TestFastPathIsTheGeneralPath(t *testing.T) {
	var traces []fastTrace
	for i, r := range tracegen.Recordings {
		path := filepath.Join("..", "tcpcttest", "testdata", r.Name+".pcap.gz")
		traces = append(traces, fastTrace{r.Name + " (recorded)", r.Sysctls, readTrace(t, path)})
		cfg := r.Config
		cfg.Seed = 9000 + uint64(i)
		traces = append(traces, fastTrace{r.Name + " (generated)", r.Sysctls, tracegen.Generate(cfg)})
	}
	for _, tr := range traces[:len(traces):len(traces)] {
		for seed := uint64(1); seed <= 3; seed++ {
			traces = append(traces, fastTrace{tr.name + " (pushed)", tr.sysctls, pushed(tr.pkts, seed)})
		}
	}
	fast := 0
	for _, tr := range traces {
		fast += compareFastPath(t, tr)
	}
	t.Logf("%d traces, %d packets took the fast path", len(traces), fast)
	if fast < 20000 {
		t.Errorf("only %d packets took the fast path: the differential says little", fast)
	}
}

func readTrace(t *testing.T, path string) []tracegen.Packet {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []tracegen.Packet
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		if p.Family == 0 {
			continue
		}
		out = append(out, tracegen.Packet{TS: time.Unix(0, p.Time), Data: append([]byte(nil), p.IP...)})
	}
	if len(out) < 1000 {
		t.Fatalf("%s: %d packets", path, len(out))
	}
	return out
}

// pushed copies pkts and moves the sequence or acknowledgement number of
// about a third of the TCP segments by a small or a window-sized amount,
// so that the fast path's bound checks meet their edges from both sides.
func pushed(pkts []tracegen.Packet, seed uint64) []tracegen.Packet {
	r := rand.New(rand.NewPCG(seed, 0x66617374))
	deltas := []int32{-2, -1, 1, 2, 65535, -65535, 65536, -65536, 66000, -66000, 1 << 20, -(1 << 20), 1 << 30}
	out := make([]tracegen.Packet, len(pkts))
	var cp capture.Packet
	for i, p := range pkts {
		p.Data = append([]byte(nil), p.Data...)
		out[i] = p
		if r.IntN(3) != 0 {
			continue
		}
		cp.Decode(capture.LinkRaw, p.Data, len(p.Data))
		if cp.Kind != capture.KindTCP || len(cp.TCP) < 20 {
			continue
		}
		off := 4 + 4*r.IntN(2) // seq or ack
		v := uint32(cp.TCP[off])<<24 | uint32(cp.TCP[off+1])<<16 | uint32(cp.TCP[off+2])<<8 | uint32(cp.TCP[off+3])
		v += uint32(deltas[r.IntN(len(deltas))])
		cp.TCP[off], cp.TCP[off+1], cp.TCP[off+2], cp.TCP[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return out
}

// compareFastPath runs tr through a machine with the fast path and one
// without and returns how many packets took the fast path.
func compareFastPath(t *testing.T, tr fastTrace) int {
	t.Helper()
	machine := func(fast bool) *Machine {
		m := NewMachine(Linux)
		for _, kv := range tr.sysctls {
			k, v, _ := strings.Cut(kv, "=")
			if err := m.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if !fast {
			m.fastAck = [2]bool{}
		}
		return m
	}
	mf, mg := machine(true), machine(false)
	if mf.fastAck != [2]bool{true, true} {
		t.Fatalf("%s: the linux profile takes no fast path (%v)", tr.name, mf.fastAck)
	}
	type flow struct {
		fast, general Conn
		orig          netip.AddrPort // the original direction's source
	}
	flows := map[[2]netip.AddrPort]*flow{}
	var cp capture.Packet
	var seg Segment
	taken := 0
	for i, p := range tr.pkts {
		cp.Decode(capture.LinkRaw, p.Data, len(p.Data))
		if cp.Kind != capture.KindTCP {
			continue
		}
		a, z := netip.AddrPortFrom(cp.Src, cp.SrcPort), netip.AddrPortFrom(cp.Dst, cp.DstPort)
		k := [2]netip.AddrPort{a, z}
		if a.Compare(z) > 0 {
			k = [2]netip.AddrPort{z, a}
		}
		f := flows[k]
		if f == nil {
			f = &flow{}
			flows[k] = f
		}
		now := p.TS.UnixNano()
		dir := Original
		if f.fast.Live() && now-f.fast.Deadline < 0 && a != f.orig {
			dir = Reply
		}
		ParseSegmentInto(&seg, cp.TCP, cp.IPPayloadLen)
		seg.IPLen = uint32(cp.IPLen)
		before := f.general
		eligible := before.Live() && now-before.Deadline < 0 && before.State == mg.sES
		var vf, vg Verdict
		mf.StepInto(&vf, &f.fast, &seg, dir, now)
		mg.StepInto(&vg, &f.general, &seg, dir, now)
		if vf != vg || f.fast != f.general {
			t.Fatalf("%s, packet %d (%v -> %v, %s): the fast path differs from the general path\nentry before: %+v\nfast:    %+v\n         %+v\ngeneral: %+v\n         %+v",
				tr.name, i, a, z, seg.Flags, before, vf, f.fast, vg, f.general)
		}
		if eligible && vg.Class == mg.cAck && vg.New == mg.sES && vg.CT != CTInvalid && !vg.Ignored {
			taken++
		}
		if !f.fast.Live() || vf.Action == Recreate || (vf.Action == Create) {
			f.orig = a
		}
	}
	return taken
}
