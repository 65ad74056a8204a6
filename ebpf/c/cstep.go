//go:build cgo

package c

/*
#cgo CFLAGS: -O2 -Wall -Wextra -Werror
#include "tcpct.h"
#include "tcpct_tutorial.h"

static void cstep_configure(struct tcpct_config *cfg, const tcpct_s64 *knob) { tcpct_linux_configure(cfg, knob); }

static void cstep_step(const struct tcpct_config *cfg, struct tcpct_conn *c, const struct tcpct_segment *s,
		       tcpct_u8 dir, tcpct_s64 now, struct tcpct_verdict *v)
{
	tcpct_linux_step(cfg, c, s, dir, now, v);
}

static void cstep_configure_tutorial(struct tcpct_config *cfg, const tcpct_s64 *knob) { tcpct_tutorial_configure(cfg, knob); }

static void cstep_step_tutorial(const struct tcpct_config *cfg, struct tcpct_conn *c, const struct tcpct_segment *s,
				tcpct_u8 dir, tcpct_s64 now, struct tcpct_verdict *v)
{
	tcpct_tutorial_step(cfg, c, s, dir, now, v);
}

static const char *cstep_tutorial_knob_name(int i) { return tcpct_tutorial_knob_name[i]; }

static void cstep_parse(struct tcpct_segment *s, const tcpct_u8 *hdr, tcpct_u32 caplen, tcpct_s32 l4len)
{
	tcpct_parse_segment(s, hdr, caplen, l4len);
}

static tcpct_u8 cstep_cell(int i) { return tcpct_linux_cells[i & 255]; }
static tcpct_u8 cstep_class_of(int i) { return tcpct_linux_class_of[i & 255]; }
static tcpct_u8 cstep_flags_ok(int i) { return tcpct_linux_flags_ok[i & 255]; }
static tcpct_s64 cstep_knob_default(int i) { return tcpct_linux_knob_default[i]; }
static const char *cstep_knob_name(int i) { return tcpct_linux_knob_name[i]; }
static const char *cstep_state_name(int i) { return tcpct_linux_state_name[i]; }
static const char *cstep_reason_text(int i) { return tcpct_reason_text[i]; }
static int cstep_conn_size(void) { return sizeof(struct tcpct_conn); }
*/
import "C"

import (
	"fmt"

	"github.com/fdac824a/tcpct/fsm"
)

// Machine is the C step of a profile, configured with a machine's knob
// values.
type Machine struct {
	cfg      C.struct_tcpct_config
	tutorial bool
}

// New configures the C step of m's profile (linux: tcpct.h; tutorial:
// tcpct_tutorial.h) with m's knobs.
func New(m *fsm.Machine) (*Machine, error) {
	p := m.Profile()
	var cm Machine
	var n int
	var name func(int) string
	switch p.Name {
	case "linux":
		n, name = int(C.TCPCT_LINUX_NUM_KNOBS), func(i int) string { return C.GoString(C.cstep_knob_name(C.int(i))) }
	case "tutorial":
		cm.tutorial = true
		n, name = int(C.TCPCT_TUTORIAL_NUM_KNOBS), func(i int) string { return C.GoString(C.cstep_tutorial_knob_name(C.int(i))) }
	default:
		return nil, fmt.Errorf("cstep: no C step runs profile %s", p.Name)
	}
	if n != len(p.Knobs) {
		return nil, fmt.Errorf("cstep: the C header has %d knobs, profile %s %d: regenerate", n, p.Name, len(p.Knobs))
	}
	knobs := make([]C.tcpct_s64, len(p.Knobs))
	for i, k := range p.Knobs {
		if got := name(i); got != k.Name {
			return nil, fmt.Errorf("cstep: C knob %d is %s, the profile's %s: regenerate", i, got, k.Name)
		}
		v, _ := m.Knob(k.Name)
		knobs[i] = C.tcpct_s64(v)
	}
	if cm.tutorial {
		C.cstep_configure_tutorial(&cm.cfg, &knobs[0])
	} else {
		C.cstep_configure(&cm.cfg, &knobs[0])
	}
	return &cm, nil
}

// Step runs one segment through the C step, like fsm.Machine.Step.
func (m *Machine) Step(c *fsm.Conn, seg *fsm.Segment, dir fsm.Dir, now int64) fsm.Verdict {
	cc := ConnToC(c)
	cs := SegmentToC(seg)
	var v C.struct_tcpct_verdict
	if m.tutorial {
		C.cstep_step_tutorial(&m.cfg, &cc, &cs, C.tcpct_u8(dir), C.tcpct_s64(now), &v)
	} else {
		C.cstep_step(&m.cfg, &cc, &cs, C.tcpct_u8(dir), C.tcpct_s64(now), &v)
	}
	*c = ConnFromC(&cc)
	return VerdictFromC(&v)
}

// ParseSegment is tcpct_parse_segment: fsm.ParseSegment in C. The header is
// copied into the 64-byte buffer the C parser reads.
func ParseSegment(tcp []byte, l4len int) fsm.Segment {
	var buf [C.TCPCT_HDR_BUF]C.tcpct_u8
	for i := 0; i < len(buf) && i < len(tcp); i++ {
		buf[i] = C.tcpct_u8(tcp[i])
	}
	if l4len > 1<<31-1 {
		l4len = 1<<31 - 1
	}
	var s C.struct_tcpct_segment
	C.cstep_parse(&s, &buf[0], C.tcpct_u32(len(tcp)), C.tcpct_s32(l4len))
	return SegmentFromC(&s)
}

// ConnSize is sizeof(struct tcpct_conn).
func ConnSize() int { return int(C.cstep_conn_size()) }

// Cell, ClassOf, FlagsOK, KnobDefault, StateName and ReasonText read the
// generated header's tables.
func Cell(i int) uint8        { return uint8(C.cstep_cell(C.int(i))) }
func ClassOf(f uint8) uint8   { return uint8(C.cstep_class_of(C.int(f))) }
func FlagsOK(f uint8) bool    { return C.cstep_flags_ok(C.int(f)) != 0 }
func KnobDefault(i int) int64 { return int64(C.cstep_knob_default(C.int(i))) }
func StateName(i int) string  { return C.GoString(C.cstep_state_name(C.int(i))) }
func ReasonText(r int) string { return C.GoString(C.cstep_reason_text(C.int(r))) }
func NumStates() int          { return int(C.TCPCT_LINUX_NUM_STATES) }
func NumReasons() int         { return int(C.TCPCT_NUM_REASONS) }

func peerToC(p *fsm.Peer) C.struct_tcpct_peer {
	return C.struct_tcpct_peer{end: C.tcpct_u32(p.End), maxend: C.tcpct_u32(p.MaxEnd), maxwin: C.tcpct_u32(p.MaxWin),
		maxack: C.tcpct_u32(p.MaxAck), scale: C.tcpct_u8(p.Scale), flags: C.tcpct_u8(p.Flags)}
}

func peerFromC(p *C.struct_tcpct_peer) fsm.Peer {
	return fsm.Peer{End: uint32(p.end), MaxEnd: uint32(p.maxend), MaxWin: uint32(p.maxwin), MaxAck: uint32(p.maxack),
		Scale: uint8(p.scale), Flags: fsm.PeerFlags(p.flags)}
}

// ConnToC converts a Conn field by field.
func ConnToC(c *fsm.Conn) C.struct_tcpct_conn {
	return C.struct_tcpct_conn{
		seen:     [2]C.struct_tcpct_peer{peerToC(&c.Seen[0]), peerToC(&c.Seen[1])},
		deadline: C.tcpct_s64(c.Deadline), last_seq: C.tcpct_u32(c.LastSeq), last_ack: C.tcpct_u32(c.LastAck),
		last_end: C.tcpct_u32(c.LastEnd), handshake_ack: C.tcpct_u32(c.HandshakeAck), last_win: C.tcpct_u16(c.LastWin),
		state: C.tcpct_u8(c.State), status: C.tcpct_u8(c.Status), last_index: C.tcpct_u8(c.LastIndex),
		last_dir: C.tcpct_u8(c.LastDir), last_flags: C.tcpct_u8(c.LastFlags), last_wscale: C.tcpct_u8(c.LastWscale),
		retrans: C.tcpct_u8(c.Retrans),
	}
}

// ConnFromC converts back.
func ConnFromC(c *C.struct_tcpct_conn) fsm.Conn {
	return fsm.Conn{
		Seen:     [2]fsm.Peer{peerFromC(&c.seen[0]), peerFromC(&c.seen[1])},
		Deadline: int64(c.deadline), LastSeq: uint32(c.last_seq), LastAck: uint32(c.last_ack), LastEnd: uint32(c.last_end),
		HandshakeAck: uint32(c.handshake_ack), LastWin: uint16(c.last_win), State: fsm.State(c.state),
		Status: fsm.Status(c.status), LastIndex: fsm.Class(c.last_index), LastDir: fsm.Dir(c.last_dir),
		LastFlags: uint8(c.last_flags), LastWscale: uint8(c.last_wscale), Retrans: uint8(c.retrans),
	}
}

func b2u(b bool) C.tcpct_u8 {
	if b {
		return 1
	}
	return 0
}

// SegmentToC converts a Segment field by field.
func SegmentToC(s *fsm.Segment) C.struct_tcpct_segment {
	cs := C.struct_tcpct_segment{seq: C.tcpct_u32(s.Seq), ack: C.tcpct_u32(s.Ack), len: C.tcpct_u32(s.Len),
		win: C.tcpct_u16(s.Win), flags: C.tcpct_u8(s.Flags), hdrlen: C.tcpct_u8(s.HdrLen),
		has_options: b2u(s.HasOptions), has_wscale: b2u(s.HasWScale), wscale: C.tcpct_u8(s.WScale),
		sack_perm: b2u(s.SackPerm), num_sack: C.tcpct_u8(s.NumSack), malformed: C.tcpct_u8(s.Malformed)}
	for i := range s.SackEdges {
		cs.sack_edges[i] = C.tcpct_u32(s.SackEdges[i])
	}
	return cs
}

// SegmentFromC converts back (IPLen, which the C parser does not see, is 0).
func SegmentFromC(cs *C.struct_tcpct_segment) fsm.Segment {
	s := fsm.Segment{Seq: uint32(cs.seq), Ack: uint32(cs.ack), Len: uint32(cs.len), Win: uint16(cs.win),
		Flags: fsm.Flags(cs.flags), HdrLen: uint8(cs.hdrlen), HasOptions: cs.has_options != 0,
		HasWScale: cs.has_wscale != 0, WScale: uint8(cs.wscale), SackPerm: cs.sack_perm != 0,
		NumSack: uint8(cs.num_sack), Malformed: fsm.Reason(cs.malformed)}
	for i := range s.SackEdges {
		s.SackEdges[i] = uint32(cs.sack_edges[i])
	}
	return s
}

// VerdictFromC converts a verdict field by field.
func VerdictFromC(v *C.struct_tcpct_verdict) fsm.Verdict {
	return fsm.Verdict{CT: fsm.CT(v.ct), Dir: fsm.Dir(v.dir), Class: fsm.Class(v.cls), Old: fsm.State(v.old_state),
		New: fsm.State(v.new_state), Cell: uint8(v.cell), Action: fsm.Action(v.action), Refreshed: v.refreshed != 0,
		Accounted: v.accounted != 0, Ignored: v.ignored != 0, Expired: v.expired != 0, Timeout: int64(v.timeout),
		Reason: fsm.Reason(v.reason)}
}
