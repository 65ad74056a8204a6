package tcpct

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// zeroTypes are the root package's exported types; TestZeroValues checks
// the list against api.txt so that a new type cannot be left out.
var zeroTypes = map[string]reflect.Type{
	"CT":            reflect.TypeFor[CT](),
	"Counters":      reflect.TypeFor[Counters](),
	"DestroyReason": reflect.TypeFor[DestroyReason](),
	"Dir":           reflect.TypeFor[Dir](),
	"EventType":     reflect.TypeFor[EventType](),
	"ICMP":          reflect.TypeFor[ICMP](),
	"ICMPOutcome":   reflect.TypeFor[ICMPOutcome](),
	"Key":           reflect.TypeFor[Key](),
	"Packet":        reflect.TypeFor[Packet](),
	"Reason":        reflect.TypeFor[Reason](),
	"Segment":       reflect.TypeFor[Segment](),
	"State":         reflect.TypeFor[State](),
	"TableStats":    reflect.TypeFor[TableStats](),
	"Config":        reflect.TypeFor[Config](),
	"Entry":         reflect.TypeFor[Entry](),
	"Event":         reflect.TypeFor[Event](),
	"Resolved":      reflect.TypeFor[Resolved](),
	"Stats":         reflect.TypeFor[Stats](),
	"Subscription":  reflect.TypeFor[Subscription](),
	"Tracker":       reflect.TypeFor[Tracker](),
	"Verdict":       reflect.TypeFor[Verdict](),
}

// TestZeroValues calls every exported method of every exported type of
// the package on a zero value, with zero arguments (a pointer to a zero
// value for a pointer, a live context for a context, a callback that
// accepts everything for a func), and requires
// that none panics. The zero Tracker in particular must not track: its
// Track errs and its verdicts are not NEW.
func TestZeroValues(t *testing.T) {
	f, err := os.Open("api.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	const prefix = "pkg github.com/fdac824a/tcpct, type "
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok || strings.Contains(rest, ",") {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		if _, ok := zeroTypes[name]; !ok {
			t.Errorf("api.txt exports type %s, which zeroTypes does not list", name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	calls := 0
	for name, typ := range zeroTypes {
		p := reflect.New(typ) // a pointer to the zero value: every method set
		for i := 0; i < p.NumMethod(); i++ {
			m := p.Type().Method(i)
			args := make([]reflect.Value, m.Type.NumIn()-1)
			for j := range args {
				in := m.Type.In(j + 1)
				switch {
				case in == reflect.TypeFor[context.Context]():
					args[j] = reflect.ValueOf(ctx)
				case in.Kind() == reflect.Func:
					args[j] = reflect.MakeFunc(in, func([]reflect.Value) []reflect.Value {
						out := make([]reflect.Value, in.NumOut())
						for k := range out {
							out[k] = reflect.Zero(in.Out(k))
						}
						return out
					})
				case in.Kind() == reflect.Pointer:
					args[j] = reflect.New(in.Elem()) // a zero value, not nil
				default:
					args[j] = reflect.Zero(in)
				}
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("(*%s).%s on the zero value panics: %v", name, m.Name, r)
					}
				}()
				p.Method(i).Call(args)
				calls++
			}()
		}
	}
	if calls < 40 {
		t.Errorf("only %d methods called: the walk is broken", calls)
	}

	var tr Tracker
	if v, err := tr.Track([]byte{0x45}, time.Now()); err != ErrZeroTracker || v.CT != fsm.CTNone {
		t.Errorf("zero Tracker: Track = %v, %v; want the zero verdict and ErrZeroTracker", v.CT, err)
	}
	if v := tr.TrackSegment(zeroAddrPort, zeroAddrPort, &fsm.Segment{Flags: spec.SYN, HdrLen: 20}, time.Now()); v.CT == fsm.CTNew {
		t.Error("zero Tracker: TrackSegment says NEW")
	}
}

var zeroAddrPort = netip.MustParseAddrPort("192.0.2.1:1")

// A Track that fails returns a verdict that cannot be read as NEW.
func TestFailedTrackIsNotNew(t *testing.T) {
	tr, err := New(Config{Knobs: []string{"max=16"}})
	if err != nil {
		t.Fatal(err)
	}
	udp := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 0, 53, 0, 53, 0, 8, 0, 0}
	v, err := tr.Track(udp, time.Now())
	if err != ErrNotTCP {
		t.Fatalf("Track(UDP) error %v, want ErrNotTCP", err)
	}
	if v.CT != fsm.CTNone || v.CT.String() != "none" {
		t.Fatalf("Track(UDP) CT = %v (%d), want CTNone", v.CT, v.CT)
	}
}

// TestConfigMemory checks the figures the Config doc gives: about 185
// bytes per entry, 46 MiB at the default max.
func TestConfigMemory(t *testing.T) {
	for _, c := range []struct {
		knobs   []string
		lo, hi  float64 // bytes per entry
		entries int
	}{{nil, 175, 195, 262144}, {[]string{"max=100000", "acct=1"}, 207, 227, 100000}} {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		tr, err := New(Config{Knobs: c.knobs})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&b)
		per := float64(b.HeapAlloc-a.HeapAlloc) / float64(tr.Max())
		if tr.Max() != c.entries || per < c.lo || per > c.hi {
			t.Errorf("%v: max %d, %.1f bytes per entry; the Config doc says %d and %.0f-%.0f", c.knobs, tr.Max(), per, c.entries, c.lo, c.hi)
		}
		runtime.KeepAlive(tr)
	}
}
