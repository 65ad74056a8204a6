package spec

// Compiled is a profile flattened into the small fixed-size arrays the
// packet path indexes. gen/ prints it as Go source for fsm/, and fsm loads
// it at run time for specs given on the command line, so both paths share
// this one compiler.
type Compiled struct {
	NumStates, NumClasses int

	// Cells holds every transition: index CellIndex(dir, class, state).
	// A value below MaxStates is the next state; OutInvalid and OutIgnore
	// are the kernel's sIV and sIG.
	Cells [2 * MaxClasses * MaxStates]uint8
	// CellWhy is the index into Spec.Whys explaining each cell.
	CellWhy [2 * MaxClasses * MaxStates]uint8

	// ClassOf maps the TCP flag byte to a class.
	ClassOf [256]uint8
	// FlagsOK says whether a flag byte passes the validity check.
	FlagsOK [256]bool

	// Create holds, per class, whether a first packet may create an entry:
	// CreateNever, CreateAlways, or a knob index + CreateKnobBase.
	Create [MaxClasses]uint8

	// TimeoutKnob is the knob index holding each state's timeout.
	TimeoutKnob [MaxStates]uint8
	// RetransKnob and UnackKnob are the knob indexes of the caps, or
	// NoKnob.
	RetransKnob, UnackKnob uint8

	// StateRole and ClassRole map the names the hand-written logic knows
	// (SYN_SENT, TIME_WAIT, synack, ...) to indexes; NoState / NoClass when
	// the profile lacks one.
	StateRole [NumStateRoles]uint8
	ClassRole [NumClassRoles]uint8

	// Features is a bit set of FeatureXxx; Assured is AssuredXxx.
	Features uint8
	Assured  uint8
}

// Table dimensions and the special cell values.
const (
	MaxStates  = 16
	MaxClasses = 8

	OutInvalid = 0xFE
	OutIgnore  = 0xFF

	CreateNever    = 0
	CreateAlways   = 1
	CreateKnobBase = 2

	NoState = 0xFF
	NoClass = 0xFF
	NoKnob  = 0xFF
)

// CellIndex is the position of table[dir][class][state] in Compiled.Cells.
func CellIndex(d Dir, class, state int) int { return int(d)<<7 | class<<4 | state }

// The states and classes the hand-written logic refers to by name.
const (
	RoleNone = iota
	RoleSynSent
	RoleSynRecv
	RoleEstablished
	RoleFinWait
	RoleCloseWait
	RoleLastAck
	RoleTimeWait
	RoleClose
	RoleSynSent2
	NumStateRoles
)

// StateRoleNames are the state names the roles stand for.
var StateRoleNames = [NumStateRoles]string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
}

const (
	RoleSyn = iota
	RoleSynAck
	RoleFin
	RoleAck
	RoleRst
	RoleNoneClass
	NumClassRoles
)

// ClassRoleNames are the class names the roles stand for.
var ClassRoleNames = [NumClassRoles]string{"syn", "synack", "fin", "ack", "rst", "none"}

// Feature bits, in KnownFeatures order, and assured rules in KnownAssured
// order.
const (
	FeatureWindowTracking = 1 << iota
	FeatureSynRetransmitKeepsTimer
	FeatureReopenKills
	FeatureTimeoutCaps
	// FeatureProcIPConntrack: the table is printed as Linux 2.4's
	// /proc/net/ip_conntrack (no mark=, zone=, use=1), not as
	// /proc/net/nf_conntrack.
	FeatureProcIPConntrack
)

const (
	AssuredAfterReply = iota
	AssuredHandshakeAck
)

// CellOutcome is the outcome a compiled cell (Compiled.Cells) holds: the
// inverse of Compile's encoding, for renderers of compiled tables.
func CellOutcome(v uint8) Outcome {
	switch v {
	case OutInvalid:
		return Outcome{Kind: Invalid}
	case OutIgnore:
		return Outcome{Kind: Ignore}
	}
	return Outcome{Kind: Next, State: int(v)}
}

// Compile flattens a validated spec.
func (s *Spec) Compile() *Compiled {
	c := &Compiled{NumStates: len(s.States), NumClasses: len(s.Classes), RetransKnob: NoKnob, UnackKnob: NoKnob}
	for i := range c.Cells {
		c.Cells[i] = OutInvalid
	}
	for d := range s.Table {
		for ci, row := range s.Table[d] {
			for si, cell := range row {
				i := CellIndex(Dir(d), ci, si)
				switch cell.Outcome.Kind {
				case Next:
					c.Cells[i] = uint8(cell.Outcome.State)
				case Ignore:
					c.Cells[i] = OutIgnore
				}
				c.CellWhy[i] = uint8(cell.Why)
			}
		}
	}
	for f := 0; f < 256; f++ {
		fl := Flags(f)
		for _, r := range s.Classify {
			if fl&r.Flags == r.Flags {
				c.ClassOf[f] = uint8(r.Class)
				break
			}
		}
		c.FlagsOK[f] = s.AnyFlags
		for _, v := range s.FlagsValid {
			if fl&^s.FlagsMasked == v {
				c.FlagsOK[f] = true
			}
		}
	}
	knobIndex := func(name string) uint8 {
		for i, k := range s.Knobs {
			if k.Name == name || indexOf(k.Aliases, name) >= 0 {
				return uint8(i)
			}
		}
		return NoKnob
	}
	for _, cr := range s.Creates {
		if cr.When == "" {
			c.Create[cr.Class] = CreateAlways
		} else {
			c.Create[cr.Class] = CreateKnobBase + knobIndex(cr.When)
		}
	}
	for i, st := range s.States {
		c.TimeoutKnob[i] = knobIndex(st.Timeout)
	}
	if k := s.CapKnob("retrans"); k != "" {
		c.RetransKnob = knobIndex(k)
	}
	if k := s.CapKnob("unack"); k != "" {
		c.UnackKnob = knobIndex(k)
	}
	for r, name := range StateRoleNames {
		c.StateRole[r] = NoState
		if i := s.StateIndex(name); i >= 0 {
			c.StateRole[r] = uint8(i)
		}
	}
	for r, name := range ClassRoleNames {
		c.ClassRole[r] = NoClass
		if i := s.ClassIndex(name); i >= 0 {
			c.ClassRole[r] = uint8(i)
		}
	}
	for i, f := range KnownFeatures {
		if s.HasFeature(f) {
			c.Features |= 1 << i
		}
	}
	c.Assured = uint8(indexOf(KnownAssured, s.Assured))
	return c
}
