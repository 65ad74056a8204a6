package fsm

import (
	"testing"

	"github.com/fdac824a/tcpct/spec"

	"github.com/google/go-cmp/cmp"
)

// The generated profiles must be exactly what the spec compiles to.
func TestGeneratedProfilesMatchSpec(t *testing.T) {
	for _, p := range Profiles() {
		s, err := spec.Load(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, FromSpec(s)); diff != "" {
			t.Errorf("profile %s: zz_profiles.go differs from spec/%s.spec; run go generate ./... (-zz_profiles.go +spec):\n%s", p.Name, p.Name, diff)
		}
	}
}

const (
	fin = spec.FIN
	syn = spec.SYN
	rst = spec.RST
	psh = spec.PSH
	ack = spec.ACK
)

// pkt is one step of a scripted connection.
type pkt struct {
	dir      Dir
	flags    Flags
	seq, ack uint32
	len      uint32
	win      uint16
	at       int64 // seconds since the start
	wscale   int   // -1: no option
	sackPerm bool
	ct       CT
	state    string // state after the packet ("" = no entry)
	timeout  int64  // seconds left after the packet (-1: don't check)
	assured  bool
	reason   Reason
	ignored  bool
}

func (p pkt) segment() Segment {
	s := Segment{Seq: p.seq, Ack: p.ack, Len: p.len, Win: p.win, Flags: p.flags, HdrLen: 20}
	if p.wscale >= 0 || p.sackPerm {
		s.HasOptions = true
		s.HdrLen = 32
	}
	if p.wscale >= 0 {
		s.HasWScale, s.WScale = true, uint8(min(p.wscale, 14))
	}
	s.SackPerm = p.sackPerm
	return s
}

func run(t *testing.T, m *Machine, steps []pkt) Conn {
	t.Helper()
	return runFrom(t, m, Conn{}, steps)
}

func runFrom(t *testing.T, m *Machine, c Conn, steps []pkt) Conn {
	t.Helper()
	for i, p := range steps {
		seg := p.segment()
		now := p.at * second
		v := m.Step(&c, &seg, p.dir, now)
		state := ""
		if c.Live() {
			state = m.p.StateName(c.State)
		}
		type outcome struct {
			CT      CT
			State   string
			Reason  Reason
			Ignored bool
			Assured bool
		}
		want := outcome{p.ct, p.state, p.reason, p.ignored, p.assured}
		got := outcome{v.CT, state, v.Reason, v.Ignored, c.Assured()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("packet %d (%v %v seq=%d ack=%d len=%d) (-want +got):\n%s", i, p.dir, p.flags, p.seq, p.ack, p.len, diff)
		}
		if p.timeout >= 0 && c.Live() {
			if left := (c.Deadline - now) / second; left != p.timeout {
				t.Fatalf("packet %d: timeout %d s, want %d", i, left, p.timeout)
			}
		}
	}
	return c
}
