package main

// The flag plumbing every subcommand shares: interleaved flags and
// arguments, the tracker's flags (-profile, -sysctl, -at), usage errors.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// parseFlags parses a subcommand's flags, which may be interleaved with
// its arguments. done says the caller must return code at once: exitOK
// after -h printed the usage (once, on stdout), exitUsage after a bad flag
// was reported on stderr, named, with the hint to run -h (the flag
// package's own printing, which would dump the whole usage on stderr, is
// silenced).
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	pos, err := parseInterleaved(fs, args)
	switch {
	case err == nil:
		return pos, 0, false
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return nil, exitOK, true
	}
	return nil, usageErr(stderr, fs.Name(), err), true
}

// parseInterleaved parses flags that may come before or after the
// positional arguments (tcpct replay FILE -format proc).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// trackerFlags are the flags replay and explain share.
type trackerFlags struct {
	profile profileFlag
	spec    string
	sysctl  multiFlag
	at      string
	decap   bool

	parsed *spec.Spec // -spec, read once
}

// profileFlag is -profile, remembering whether it was given (with -spec
// it must then name the spec's profile).
type profileFlag struct {
	name string
	set  bool
}

func (p *profileFlag) String() string { return p.name }
func (p *profileFlag) Set(s string) error {
	p.name, p.set = s, true
	return nil
}

func (f *trackerFlags) register(fs *flag.FlagSet) {
	f.registerTracker(fs)
	fs.StringVar(&f.at, "at", "", "stop at `T`: RFC 3339 time or +DURATION after the last packet")
	fs.BoolVar(&f.decap, "decap", false, "track the TCP inside tunnels (VXLAN, Geneve, GRE, IP-in-IP, MPLS, PPPoE) as the inner host's firewall does")
}

// registerTracker registers the flags that choose the tracker: -profile,
// -spec and -sysctl.
func (f *trackerFlags) registerTracker(fs *flag.FlagSet) {
	f.profile.name = "linux"
	fs.Var(&f.profile, "profile", "tracker profile: "+strings.Join(tcpct.ProfileNames(), " or ")+" (default linux)")
	fs.StringVar(&f.spec, "spec", "", "track with the spec in `FILE` (an edited spec/linux.spec, say) instead of a built-in profile")
	fs.Var(&f.sysctl, "sysctl", "knob `NAME=VALUE` (repeatable)")
}

// config is the tracker configuration the flags ask for, with extra knob
// settings applied last.
func (f *trackerFlags) config(extra ...string) (tcpct.Config, error) {
	c := tcpct.Config{Profile: f.profile.name, Seed: tableSeed}
	if f.spec != "" {
		if f.parsed == nil {
			s, err := tcpct.ReadSpec(f.spec)
			if err != nil {
				return c, fmt.Errorf("-spec: %v", err)
			}
			f.parsed = s
		}
		c.Spec = f.parsed
		if !f.profile.set {
			c.Profile = ""
		} else if c.Profile != f.parsed.Profile {
			return c, fmt.Errorf("-profile %s: the -spec file is profile %s", c.Profile, f.parsed.Profile)
		}
	} else if !slices.Contains(tcpct.ProfileNames(), c.Profile) {
		return c, fmt.Errorf("-profile: unknown profile %q (want %s)", c.Profile, strings.Join(tcpct.ProfileNames(), " or "))
	}
	for _, kv := range f.sysctl {
		if _, _, err := splitKnob(kv); err != nil {
			return c, err
		}
	}
	c.Knobs = append(append([]string(nil), f.sysctl...), extra...)
	return c, nil
}

// resolve checks the flags once (tcpct.Config.Resolve) without
// allocating a table.
func (f *trackerFlags) resolve() (*tcpct.Resolved, error) {
	c, err := f.config()
	if err != nil {
		return nil, err
	}
	r, err := c.Resolve()
	if err != nil {
		return nil, fmt.Errorf("-sysctl: %v", err)
	}
	return r, nil
}

func (f *trackerFlags) tracker() (*tcpct.Tracker, error) { return f.trackerWith() }

// trackerWith is tracker with extra knob settings applied last.
func (f *trackerFlags) trackerWith(extra ...string) (*tcpct.Tracker, error) {
	c, err := f.config(extra...)
	if err != nil {
		return nil, err
	}
	tr, err := tcpct.New(c)
	if err != nil {
		return nil, fmt.Errorf("-sysctl: %v", err)
	}
	return tr, nil
}

// limit is the table size the flags ask for (the max knob), found without
// allocating a table.
func (f *trackerFlags) limit() (int64, error) {
	r, err := f.resolve()
	if err != nil {
		return 0, err
	}
	return int64(r.Max()), nil
}

// setsMax reports whether a -sysctl flag sets the table size (max, or an
// alias of it).
func (f *trackerFlags) setsMax() bool {
	r, err := f.resolve()
	return err == nil && r.Set("max")
}

// splitKnob splits a -sysctl NAME=VALUE.
func splitKnob(kv string) (name, value string, err error) {
	k, v, ok := strings.Cut(kv, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return "", "", fmt.Errorf("-sysctl %q: want NAME=VALUE", kv)
	}
	return k, strings.TrimSpace(v), nil
}

// atSpec is a parsed -at.
type atSpec struct {
	set      bool
	relative bool
	abs      int64
	rel      time.Duration
}

// excludes reports whether a packet seen at t comes after an absolute -at
// and so is read but not processed.
func (a atSpec) excludes(t int64) bool { return a.set && !a.relative && t > a.abs }

func parseAt(s string) (atSpec, error) {
	if s == "" {
		return atSpec{}, nil
	}
	if strings.HasPrefix(s, "+") {
		d, err := time.ParseDuration(s[1:])
		if err != nil || d < 0 {
			return atSpec{}, fmt.Errorf("-at %q: want an RFC 3339 time or +DURATION (+3s, +2m)", s)
		}
		return atSpec{set: true, relative: true, rel: d}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, rfc3339Upper(s))
	if err != nil {
		return atSpec{}, fmt.Errorf("-at %q: want an RFC 3339 time (2006-11-24T10:00:03Z) or +DURATION", s)
	}
	return atSpec{set: true, abs: t.UnixNano()}, nil
}

// rfc3339Upper rewrites the forms RFC 3339 allows besides Go's layout:
// "t" and "z" in lower case (§5.6, NOTE) and a space between date and
// time (ibid., "for the sake of readability").
func rfc3339Upper(s string) string {
	b := []byte(s)
	if len(b) > 10 && (b[10] == 't' || b[10] == ' ') {
		b[10] = 'T'
	}
	if n := len(b); n > 0 && b[n-1] == 'z' {
		b[n-1] = 'Z'
	}
	return string(b)
}

// end is the instant to dump at, given the last processed packet's time.
func (a atSpec) end(last int64) int64 {
	switch {
	case !a.set:
		return last
	case a.relative:
		return last + int64(a.rel)
	}
	return a.abs
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func usageErr(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "tcpct %s: %v\nRun 'tcpct %s -h' for usage.\n", cmd, err, cmd)
	return exitUsage
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// withKnobs puts into a usage text, at %KNOBS%, each profile's knobs as
// the profiles name them, so that -h lists exactly what -sysctl takes.
func withKnobs(usage string) string {
	var b strings.Builder
	for _, p := range fsm.Profiles() {
		line := "          " + p.Name + ":"
		for i, k := range p.Knobs {
			w := " " + k.Name
			if i < len(p.Knobs)-1 {
				w += ","
			}
			if len(line)+len(w) > 76 {
				b.WriteString(line + "\n")
				line = "           "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return strings.Replace(usage, "%KNOBS%", b.String(), 1)
}
