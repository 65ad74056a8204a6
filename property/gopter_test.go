package property

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/invariant"
	"github.com/fdac824a/tcpct/spec"
	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
)

// Op is one generated packet (exported fields for gen.Struct).
type Op struct {
	Conn  uint8
	Dir   uint8
	Kind  uint8
	Mode  uint8
	N     uint16
	Flags uint8
	Wait  uint8 // index into waits
}

func (o Op) String() string {
	return fmt.Sprintf("conn%d %v %v %v n=%d flags=%v wait=%ds", o.Conn, fsm.Dir(o.Dir), invariant.Kind(o.Kind), invariant.SeqMode(o.Mode), o.N, spec.Flags(o.Flags), waits[o.Wait])
}

var waits = []int64{0, 0, 0, 1, 5, 11, 61, 121, 301}

var genOp = gen.Struct(reflect.TypeOf(Op{}), map[string]gopter.Gen{
	"Conn":  gen.UInt8Range(0, 3),
	"Dir":   gen.UInt8Range(0, 1),
	"Kind":  gen.UInt8Range(0, uint8(invariant.KRaw)),
	"Mode":  gen.Weighted([]gen.WeightedGen{{Weight: 6, Gen: gen.Const(uint8(0))}, {Weight: 4, Gen: gen.UInt8Range(0, uint8(invariant.NumSeqModes)-1)}}),
	"N":     gen.UInt16Range(0, 3000),
	"Flags": gen.UInt8(),
	"Wait":  gen.UInt8Range(0, uint8(len(waits)-1)),
})

// toTrace turns ops into a Trace over four connections.
func toTrace(ops []Op) *invariant.Trace {
	tr := &invariant.Trace{}
	conv := make([]*invariant.Conv, 4)
	for i := range conv {
		tr.Keys = append(tr.Keys, connKey(i))
		conv[i] = invariant.NewConv(uint32(i)*0x40000000+17, uint32(i)*0x10000000+99)
	}
	now := 1000 * second
	for _, o := range ops {
		now += waits[o.Wait] * second
		seg := conv[o.Conn].Segment(fsm.Dir(o.Dir), invariant.Kind(o.Kind), invariant.SeqMode(o.Mode), uint32(o.N), spec.Flags(o.Flags))
		tr.Packets = append(tr.Packets, invariant.Packet{Conn: int(o.Conn), Dir: fsm.Dir(o.Dir), Seg: seg, Now: now})
	}
	return tr
}

var gopterCases int

func gopterParams() *gopter.TestParameters {
	p := gopter.DefaultTestParameters()
	p.MinSuccessfulTests = 200
	if long() {
		p.MinSuccessfulTests = 3000
	}
	p.MaxSize = 80
	return p
}

func TestGopterProperties(t *testing.T) {
	props := gopter.NewProperties(gopterParams())
	ops := gen.SliceOf(genOp)
	// The profiles' default knobs, linux also with acct=1: the tracker's
	// counters then join the checks.
	linux := tcpct.Config{Profile: "linux", Knobs: []string{"max=64"}, Seed: 1}
	linuxAcct := tcpct.Config{Profile: "linux", Knobs: []string{"max=64", "acct=1"}, Seed: 1}
	tutorial := tcpct.Config{Profile: "tutorial", Knobs: []string{"max=64"}, Seed: 1}
	both := []tcpct.Config{linux, tutorial}

	props.Property("deterministic: the same trace gives the same verdicts, sequentially and over goroutines", prop.ForAll(
		func(ops []Op) string {
			gopterCases++
			tr := toTrace(ops)
			for _, cfg := range both {
				a, err := invariant.Run(cfg, tr)
				if err != nil {
					return err.Error()
				}
				b, err := invariant.Run(cfg, tr)
				if err != nil {
					return err.Error()
				}
				if err := invariant.SameVerdicts(a, b); err != nil {
					return err.Error()
				}
				c, err := invariant.RunConcurrent(cfg, tr, 4)
				if err != nil {
					return err.Error()
				}
				if err := invariant.SameVerdicts(a, c); err != nil {
					return cfg.Profile + " concurrent: " + err.Error()
				}
			}
			return ""
		}, ops))

	props.Property("no NEW after reply, and every other invariant, on both profiles", prop.ForAll(
		func(ops []Op) string {
			gopterCases++
			tr := toTrace(ops)
			for _, cfg := range []tcpct.Config{linux, linuxAcct, tutorial} {
				if _, err := invariant.Run(cfg, tr); err != nil {
					return fmt.Sprintf("%s %v: %v", cfg.Profile, cfg.Knobs, err)
				}
			}
			return ""
		}, ops))

	props.Property("bounded: a table of 2 never holds more than 2, evicts only what early drop may take, and drops only when nothing is evictable", prop.ForAll(
		func(ops []Op) string {
			gopterCases++
			tr := toTrace(ops)
			for _, cfg := range []tcpct.Config{
				{Profile: "linux", Knobs: []string{"max=2", "acct=1"}, Seed: 1},
				{Profile: "tutorial", Knobs: []string{"max=2"}, Seed: 1},
			} {
				h, err := invariant.NewHarness(cfg)
				if err != nil {
					return err.Error()
				}
				for i := range tr.Packets {
					p := &tr.Packets[i]
					if _, _, err := h.Packet(tr.Key(p), p.Seg, p.Now); err != nil {
						return fmt.Sprintf("%s packet %d: %v", cfg.Profile, i, err)
					}
				}
			}
			return ""
		}, ops))

	props.TestingRun(t)
	t.Logf("gopter: %d cases", gopterCases)
}
