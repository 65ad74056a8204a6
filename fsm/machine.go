package fsm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fdac824a/tcpct/spec"
)

// Machine is a profile with its knob values: the tracker's logic for one
// network namespace. Configure it with Set before use; Step is then safe
// for concurrent use on different Conns.
type Machine struct {
	p    *Profile
	knob []int64

	// Derived from the knobs by Set, in clock nanoseconds.
	timeout          [spec.MaxStates]int64
	retransTimeout   int64
	unackTimeout     int64
	create           [spec.MaxClasses]bool
	beLiberal        bool
	ignoreInvalidRST bool
	checksum         bool
	maxRetrans       uint8

	// The states and classes the hand-written logic names (roles).
	sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 State
	cSyn, cSynAck, cFin, cAck, cRst, cNone      Class

	windows, keepTimerOnSynRetransmit, reopenKills, caps bool
	assuredAfterReply                                    bool

	// fastFlags: the flag bytes with which an ACK of an ESTABLISHED
	// connection may take the fast path (fast.go); esTimeout: the
	// ESTABLISHED timeout before the caps.
	fastFlags   [256]bool
	esTimeout   int64
	fastVerdict [2][2]Verdict // fastVerdicts
}

// NewMachine returns a Machine running p with the profile's default knobs.
func NewMachine(p *Profile) *Machine {
	m := &Machine{p: p, knob: make([]int64, len(p.Knobs))}
	for i, k := range p.Knobs {
		m.knob[i] = k.Default
	}
	t := &p.Table
	r := t.StateRole
	m.sSS, m.sSR, m.sES, m.sFW = State(r[spec.RoleSynSent]), State(r[spec.RoleSynRecv]), State(r[spec.RoleEstablished]), State(r[spec.RoleFinWait])
	m.sCW, m.sLA, m.sTW, m.sCL, m.sS2 = State(r[spec.RoleCloseWait]), State(r[spec.RoleLastAck]), State(r[spec.RoleTimeWait]), State(r[spec.RoleClose]), State(r[spec.RoleSynSent2])
	c := t.ClassRole
	m.cSyn, m.cSynAck, m.cFin, m.cAck, m.cRst, m.cNone = Class(c[spec.RoleSyn]), Class(c[spec.RoleSynAck]), Class(c[spec.RoleFin]), Class(c[spec.RoleAck]), Class(c[spec.RoleRst]), Class(c[spec.RoleNoneClass])
	m.windows = t.Features&spec.FeatureWindowTracking != 0
	m.keepTimerOnSynRetransmit = t.Features&spec.FeatureSynRetransmitKeepsTimer != 0
	m.reopenKills = t.Features&spec.FeatureReopenKills != 0
	m.caps = t.Features&spec.FeatureTimeoutCaps != 0
	m.assuredAfterReply = t.Assured == spec.AssuredAfterReply
	m.fastFlags = m.fastFlagBytes()
	m.fastVerdict = m.fastVerdicts()
	m.derive()
	return m
}

// Profile returns the machine's profile.
func (m *Machine) Profile() *Profile { return m.p }

// Knob returns the value of a knob by (sysctl) name.
func (m *Machine) Knob(name string) (int64, bool) {
	i := m.p.KnobIndex(name)
	if i < 0 {
		return 0, false
	}
	return m.knob[i], true
}

// maxSeconds is the largest timeout the kernel accepts: INT_MAX jiffies
// at HZ=250, the Debian kernels' setting (proc_dointvec_jiffies).
const maxSeconds = 1<<31/250 - 1

// Set changes a knob, named as under /proc/sys/net/netfilter/ (with or
// without the nf_conntrack_ prefix) or by one of the profile's aliases.
// The error names the knob and what is wrong.
func (m *Machine) Set(name, value string) error {
	i := m.p.KnobIndex(name)
	if i < 0 {
		names := make([]string, len(m.p.Knobs))
		for j, k := range m.p.Knobs {
			names[j] = k.Name
		}
		elsewhere := ""
		for _, o := range Profiles() {
			if o != m.p && o.KnobIndex(name) >= 0 {
				elsewhere += "; profile " + o.Name + " has it"
			}
		}
		return fmt.Errorf("unknown knob %q for profile %s (its knobs: %s)%s", name, m.p.Name, strings.Join(names, ", "), elsewhere)
	}
	k := m.p.Knobs[i]
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fmt.Errorf("knob %s: %q is not an integer", k.Name, value)
	}
	switch k.Unit {
	case "bool":
		if v != 0 && v != 1 {
			return fmt.Errorf("knob %s: %d is not 0 or 1", k.Name, v)
		}
	case "seconds":
		if v < 0 || v > maxSeconds {
			return fmt.Errorf("knob %s: %d seconds is out of range 0..%d", k.Name, v, maxSeconds)
		}
	default:
		if v < 0 || (k.Name == "tcp_max_retrans" && v > 255) || v > 1<<31-1 {
			return fmt.Errorf("knob %s: %d is out of range", k.Name, v)
		}
	}
	m.knob[i] = v
	m.derive()
	return nil
}

func (m *Machine) knobNamed(name string) int64 {
	if i := m.p.KnobIndex(name); i >= 0 {
		return m.knob[i]
	}
	return 0
}

const second = int64(1e9)

func (m *Machine) derive() {
	t := &m.p.Table
	for s := 0; s < t.NumStates; s++ {
		if k := t.TimeoutKnob[s]; k != spec.NoKnob {
			m.timeout[s] = m.knob[k] * second
		}
	}
	if t.RetransKnob != spec.NoKnob {
		m.retransTimeout = m.knob[t.RetransKnob] * second
	}
	if t.UnackKnob != spec.NoKnob {
		m.unackTimeout = m.knob[t.UnackKnob] * second
	}
	for c := 0; c < t.NumClasses; c++ {
		switch cr := t.Create[c]; {
		case cr == spec.CreateNever:
			m.create[c] = false
		case cr == spec.CreateAlways:
			m.create[c] = true
		default:
			m.create[c] = m.knob[cr-spec.CreateKnobBase] != 0
		}
	}
	m.beLiberal = m.knobNamed("tcp_be_liberal") != 0
	m.ignoreInvalidRST = m.knobNamed("tcp_ignore_invalid_rst") != 0
	m.checksum = m.knobNamed("checksum") != 0
	m.maxRetrans = uint8(m.knobNamed("tcp_max_retrans"))
	m.esTimeout = m.timeout[m.sES]
}

// Timeout returns the configured timeout of a state, in nanoseconds.
func (m *Machine) Timeout(s State) int64 { return m.timeout[s] }

// Limit is the table size knob ("max"), or 0 when the profile has none.
func (m *Machine) Limit() int64 { return m.knobNamed("max") }

// Accounting reports whether the acct knob (nf_conntrack_acct) is on: the
// table then counts packets and bytes per direction (Verdict.Accounted).
func (m *Machine) Accounting() bool { return m.knobNamed("acct") != 0 }

// Checksums reports whether the checksum knob (nf_conntrack_checksum) is
// on: a segment whose TCP checksum is wrong (Segment.BadChecksum) is then
// INVALID, as tcp_error makes it in PRE_ROUTING.
func (m *Machine) Checksums() bool { return m.checksum }

// Step runs one TCP segment through the tracker.
//
// c is the connection's entry as found by the caller (from either tuple),
// or the zero Conn when there is none; dir is the tuple the packet matched
// (Original for a packet without an entry); now is the clock in
// nanoseconds. Step updates c in place to what the entry must hold after
// the packet — the zero Conn if the entry is gone — and the Verdict's
// Action tells the caller what to do with its table. An entry whose
// deadline has passed is treated as absent (Verdict.Expired).
func (m *Machine) Step(c *Conn, seg *Segment, dir Dir, now int64) Verdict {
	var v Verdict
	m.StepInto(&v, c, seg, dir, now)
	return v
}

// step is the general path of StepInto: every packet can take it.
func (m *Machine) step(v *Verdict, c *Conn, seg *Segment, dir Dir, now int64) {
	*v = Verdict{Dir: dir, Cell: CellNone, Class: m.cNone}
	if c.Live() && now-c.Deadline >= 0 {
		*c = Conn{}
		v.Expired = true
	}
	if !c.Live() {
		v.Dir, dir = Original, Original
		v.Old, v.New = m.p.Initial, m.p.Initial
	} else {
		v.Old, v.New = c.State, c.State
	}
	if seg.Malformed != ReasonNone {
		m.invalid(v, seg.Malformed)
		return
	}
	if seg.BadChecksum && m.checksum {
		// tcp_error checks the checksum after the header length and
		// before the flags.
		m.invalid(v, ReasonBadChecksum)
		return
	}
	class, ok := m.p.Classify(seg.Flags)
	v.Class = class
	if !ok {
		m.invalid(v, ReasonBadFlags)
		return
	}
	switch {
	case !m.windows:
		m.stepTable(c, seg, dir, class, now, v)
	case c.Live():
		m.linuxPacket(c, c, false, seg, dir, class, now, v)
	default:
		// tcp_new() (linux.go): the entry is built aside and only stored
		// when the packet is accepted ("this conntrack not in circulation
		// yet").
		cell, ok := m.mayCreate(c, class, v)
		if !ok {
			break
		}
		var fresh Conn
		m.newConn(&fresh, seg, State(cell))
		m.linuxPacket(c, &fresh, true, seg, dir, class, now, v)
	}
	if v.Expired && v.Action == None {
		// The packet created nothing, but the expired entry must still go.
		v.Action = Delete
	}
}

// mayCreate is tcp_new()'s verdict on a first packet: the initial state's
// cell must be a state and the class must be allowed to create an entry
// (tcp_loose). Otherwise it fills v as INVALID ("invalid new") and
// returns false.
func (m *Machine) mayCreate(c *Conn, class Class, v *Verdict) (uint8, bool) {
	cell := m.p.Cell(Original, class, m.p.Initial)
	switch {
	case cell >= spec.OutInvalid:
		v.Cell = cell
		m.invalid(v, ReasonInvalidNew)
		return cell, false
	case !m.create[class]:
		v.Cell = cell
		m.invalid(v, ReasonLooseOff)
		return cell, false
	}
	return cell, true
}

// invalid finishes a verdict that leaves the entry untouched.
func (m *Machine) invalid(v *Verdict, r Reason) {
	v.CT = CTInvalid
	v.Reason = r
	v.Action = None
	if v.Expired {
		v.Action = Delete
	}
}

// ctOf is the conntrack state a rule sees: decided from the entry as it
// was before the packet (resolve_normal_ct): a reply packet is
// ESTABLISHED, an original one ESTABLISHED once a reply was seen, else NEW.
func ctOf(c *Conn, dir Dir) CT {
	if dir == Reply || c.SeenReply() {
		return CTEstablished
	}
	return CTNew
}

// accept finishes the verdict of an accepted packet: SEEN_REPLY is set
// after any accepted reply-direction packet (nf_conntrack_in), ignored
// ones included.
func accept(c *Conn, dir Dir, ct CT, v *Verdict) {
	v.CT = ct
	if dir == Reply {
		c.Status |= SeenReply
	}
	v.New = c.State
}
