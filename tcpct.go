// Package tcpct tracks TCP connections the way Linux nf_conntrack does:
// give it packets (raw IPv4/IPv6, or parsed TCP headers) with the time they
// were seen, and it says for each one what a stateful firewall would see —
// NEW, ESTABLISHED or INVALID, the connection's TCP conntrack state and
// the seconds its entry has left — and keeps the connection table that
// /proc/net/nf_conntrack and `conntrack -L` would show.
//
// A Tracker joins the per-packet logic of package fsm (one profile, its
// knobs) to the lock-free table of package table:
//
//	tr, err := tcpct.New(tcpct.Config{Profile: "linux", Knobs: []string{"tcp_loose=0"}})
//	v, err := tr.Track(ipPacket, time.Now())
//	if v.CT == tcpct.CTInvalid { … v.Reason … }
//
// # Clock
//
// The Tracker has no timers: every call takes the time the packet was
// seen, and entries whose deadline has passed are invisible from that
// instant. Replaying a capture therefore reproduces, to the nanosecond,
// what a kernel that saw those packets at those times would have decided.
// Before each packet, Track reclaims every entry whose deadline the clock
// has reached, in order of deadline and then tuple, and emits their
// DESTROY events: expiry is exact, so the verdicts, the table and the
// event stream are a function of the packets and their times alone,
// whatever the hash seed. An expired entry is absent for every decision,
// the table limit included: that is the kernel once its gc worker has
// come by (it reclaims up to a minute late, in bucket order, and until
// then an expired entry still counts against nf_conntrack_max;
// conformance's TestKernelSteadyArrival measures it). Like the kernel's
// jiffies, the clock the caller passes should never go back: an entry
// that expired at a later time is gone, so a packet tracked at an
// earlier time does not find it. A caller replaying stamped packets
// holds the clock at the latest stamp (tcpct replay does).
//
// # Concurrency
//
// All methods are safe for concurrent use. Packets of one connection are
// serialised by the table's per-entry lock: Track looks the tuple up (one
// probe finds the entry from either direction), takes the entry's lock,
// runs the fsm step on a private copy and commits it, so two goroutines
// tracking packets of the same connection see each other's effects in
// some order, exactly as two CPUs do in the kernel. Two first packets of a
// new connection racing to create it are resolved like the kernel's clash
// resolution: the loser re-runs its packet on the winner's entry. Packets
// of different connections never wait for each other except briefly on
// the table's index stripes when entries are created or deleted.
// Readers (Lookup, Range) take no locks at all.
//
// # Allocation
//
// Track and TrackSegment do not allocate (the tests check it with
// testing.AllocsPerRun); the table is sized once, at New, from the max
// knob.
package tcpct

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/spec"
	"github.com/fdac824a/tcpct/table"
)

// Config chooses a profile and its knobs. The zero Config is the Linux
// tracker with its default sysctls.
//
// # Memory
//
// The table is allocated once, at New, for the max knob's number of
// entries: about 185 bytes per entry (the 136-byte record, 24 bytes of
// expiry filing, 23 of index), 32 more with acct=1. At the default max,
// 262,144 (the kernel's nf_conntrack_max on a machine with 16 GiB or
// more), that is 46 MiB; a small program sets max to what it needs
// (Knobs: []string{"max=4096"}: under 1 MiB). Tracking allocates
// nothing after New.
//
// max=0 means no limit, as nf_conntrack_max = 0 does in the kernel: the
// table starts with room for 1,024 entries and doubles whenever a new
// connection finds it full (after reclaiming what has expired), so it
// never drops or early-drops. Each doubling copies the table while every
// other call on the tracker waits, and its packet path then takes a
// shared lock, so a tracker sized for its load is faster.
type Config struct {
	// Profile is "linux" (the default: Linux 6.x nf_conntrack) or
	// "tutorial" (the 2.4-era tracker of the Iptables Tutorial 1.2.2):
	// one of ProfileNames.
	Profile string
	// Spec, when set, replaces the built-in profile: a spec read with
	// ReadSpec (or spec.Parse), compiled at New into the same tables the
	// generator makes of the built-in ones, so an edited cell can be tried
	// on a capture. Profile must then be empty or the spec's own name.
	Spec *spec.Spec
	// Knobs are "NAME=VALUE" settings, applied in order: NAME is a sysctl
	// as under /proc/sys/net/netfilter/, with or without the
	// nf_conntrack_ prefix (tcp_loose, nf_conntrack_tcp_timeout_established,
	// …), a dotted sysctl name, one of the profile's aliases
	// (ip_conntrack_tcp_loose), or "max" for the table size: the form
	// -sysctl flags and sysctl.conf take.
	Knobs []string
	// Seed fixes the table's hash seed (0: random). No output depends on
	// it; tests use it to show that.
	Seed uint64
}

// ProfileNames lists the built-in profiles, for Config.Profile.
func ProfileNames() []string {
	var names []string
	for _, p := range fsm.Profiles() {
		names = append(names, p.Name)
	}
	return names
}

// ReadSpec reads and validates a spec file (the format of the built-in
// spec/linux.spec; package spec has the grammar) for Config.Spec. Its
// errors name the file and line.
func ReadSpec(file string) (*spec.Spec, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return spec.Parse(file, src)
}

// Resolved is a Config checked and resolved once: the profile, the value
// of every knob after Knobs, and the table size. New builds
// its tracker from it; a tool resolves first to check flags, read the
// limit or list the knobs without allocating a table. The zero Resolved
// has no profile, no knobs and a limit of 0.
type Resolved struct {
	m   *fsm.Machine
	set []bool // per knob: set by the Config
}

// Resolve checks c: an unknown profile, a spec whose name differs from
// Profile, an unknown knob, a bad value or a table size below one is an
// error that names it.
func (c Config) Resolve() (*Resolved, error) {
	var p *fsm.Profile
	switch {
	case c.Spec != nil:
		if c.Profile != "" && c.Profile != c.Spec.Profile {
			return nil, fmt.Errorf("profile %q given with a spec of profile %q", c.Profile, c.Spec.Profile)
		}
		p = fsm.FromSpec(c.Spec)
	default:
		name := c.Profile
		if name == "" {
			name = "linux"
		}
		var err error
		if p, err = fsm.ProfileByName(name); err != nil {
			return nil, err
		}
	}
	r := &Resolved{m: fsm.NewMachine(p), set: make([]bool, len(p.Knobs))}
	setKnob := func(k, v string) error {
		if err := r.m.Set(k, v); err != nil {
			return err
		}
		r.set[p.KnobIndex(k)] = true
		return nil
	}
	for _, kv := range c.Knobs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("knob setting %q: want NAME=VALUE", kv)
		}
		if err := setKnob(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, err
		}
	}
	if max := r.m.Limit(); max < 0 {
		return nil, fmt.Errorf("knob max: %d; want 0 (no limit) or a number of entries", max)
	}
	return r, nil
}

// Profile is the resolved profile.
func (r *Resolved) Profile() *fsm.Profile {
	if r.m == nil {
		return nil
	}
	return r.m.Profile()
}

// Max is the table size (the max knob); 0 means no limit.
func (r *Resolved) Max() int {
	if r.m == nil {
		return 0
	}
	return int(r.m.Limit())
}

// Knob returns a knob's value by any of its names, and whether the
// profile has it.
func (r *Resolved) Knob(name string) (int64, bool) {
	if r.m == nil {
		return 0, false
	}
	return r.m.Knob(name)
}

// Timeout is the timeout of state s (the knob tcp_timeout_* that times
// it), in nanoseconds, as fsm.Verdict.Timeout counts it.
func (r *Resolved) Timeout(s State) int64 {
	if r.m == nil {
		return 0
	}
	return r.m.Timeout(s)
}

// Set reports whether the Config set the knob (by any of its names).
func (r *Resolved) Set(name string) bool {
	if r.m == nil {
		return false
	}
	i := r.m.Profile().KnobIndex(name)
	return i >= 0 && r.set[i]
}

// Tracker is a connection tracker: one profile with its knob values and
// one connection table. Create it with New. The zero Tracker tracks
// nothing and holds nothing: Track returns ErrZeroTracker, the other Track
// methods the zero Verdict (CT fsm.CTNone), lookups find nothing, and
// counts are zero.
type Tracker struct {
	res *Resolved
	m   *fsm.Machine
	p   *fsm.Profile
	t   *table.Table[fsm.Conn]

	counters [counterShards]counterShard

	// grows is set when max is 0 (no limit): the packet path and the
	// readers then hold mu for reading, and a create that finds the table
	// full holds it for writing while the table doubles (growTable).
	grows bool
	mu    sync.RWMutex
}

// firstSize is the table size a tracker without a limit starts with.
const firstSize = 1024

// New builds a Tracker: Resolve, then the table. An unknown profile, an
// unknown knob or a bad value is an error that names it.
func New(cfg Config) (*Tracker, error) {
	r, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	m, p := r.m, r.m.Profile()
	size, grows := r.Max(), r.Max() == 0
	if grows {
		size = firstSize
	}
	tb, err := table.New[fsm.Conn](table.Config{Max: size, Seed: cfg.Seed, StateNames: p.StateNames, Acct: m.Accounting(), Grow: grows})
	if err != nil {
		return nil, fmt.Errorf("knob max: %w", err)
	}
	return &Tracker{m: m, p: p, t: tb, res: r, grows: grows}, nil
}

// Profile returns the tracker's profile (state and class names, the spec
// cells and their rationale).
func (tr *Tracker) Profile() *fsm.Profile { return tr.p }

// Config returns the tracker's resolved configuration: its profile, knob
// values and table size. The zero Tracker's is the zero Resolved.
func (tr *Tracker) Config() *Resolved {
	if tr.t == nil {
		return &Resolved{}
	}
	return tr.res
}

// Max returns the table size (the max knob); 0 means no limit.
func (tr *Tracker) Max() int {
	if tr.t == nil || tr.grows {
		return 0
	}
	return tr.t.Max()
}

// Len returns the number of entries held, like nf_conntrack_count: it
// counts expired entries not yet reclaimed, those whose deadline passed
// since the last Expire or, without an event subscriber, up to about
// 67 ms of packet time before the last Track (see Expire).
func (tr *Tracker) Len() int {
	if tr.t == nil {
		return 0
	}
	tr.rlock()
	defer tr.runlock()
	return tr.t.Len()
}

// rlock and runlock guard a table that may grow (max=0): every use of the
// table holds mu for reading. Without growth they do nothing.
func (tr *Tracker) rlock() {
	if tr.grows {
		tr.mu.RLock()
	}
}

func (tr *Tracker) runlock() {
	if tr.grows {
		tr.mu.RUnlock()
	}
}

// insert is table.Insert, growing a table without a limit when it is
// full. The caller holds the read lock (rlock) and no entry lock.
func (tr *Tracker) insert(k table.Key, c fsm.Conn, m table.Meta, now int64) (table.Ref, table.Dir, table.Status) {
	for {
		r, d, st := tr.t.Insert(k, c, m, now)
		if st != table.Full {
			return r, d, st
		}
		if !tr.growTable() {
			// Beyond the largest table (2^31 entries): dropped, as a full
			// table's create is.
			return table.Ref{}, 0, table.Dropped
		}
	}
}

// growTable doubles the table, unless another goroutine did while this
// one waited for the lock, and reports whether there is room now. Refs
// stay valid: table.Grow keeps records at their index.
func (tr *Tracker) growTable() bool {
	tr.mu.RUnlock()
	tr.mu.Lock()
	defer tr.mu.RLock()
	defer tr.mu.Unlock()
	if tr.t.Len() < tr.t.Max() {
		return true
	}
	return tr.t.Grow(2*tr.t.Max()) == nil
}

// Errors Track returns for packets the tracker does not see. They are
// fixed values (compare with errors.Is) so that returning them costs no
// allocation. A TCP packet whose header is incomplete is not an error: it
// is an INVALID verdict ("truncated packet"), as the kernel counts it.
var (
	ErrNotIP    = errors.New("tcpct: not an IPv4 or IPv6 packet")
	ErrNotTCP   = errors.New("tcpct: not a TCP packet")
	ErrFragment = errors.New("tcpct: IP fragment (conntrack sees reassembled packets)")
	ErrBadIP    = errors.New("tcpct: malformed IP header")
	// ErrZeroTracker is Track's error on a Tracker not made by New.
	ErrZeroTracker = errors.New("tcpct: zero Tracker (make one with tcpct.New)")
)

// SegmentOf parses the TCP header of a decoded TCP packet
// (fsm.ParseSegment) and notes the IP packet's length, which the acct
// knob counts (fsm.Segment.IPLen).
func SegmentOf(p *capture.Packet) fsm.Segment {
	seg := fsm.ParseSegment(p.TCP, p.IPPayloadLen)
	seg.IPLen = uint32(p.IPLen)
	return seg
}

// Track runs one raw packet, starting at the IPv4 or IPv6 header, through
// the tracker at time now. An ICMP or ICMPv6 error quoting a TCP segment
// is RELATED to the segment's connection, or INVALID (see ICMP; the
// Verdict's ICMP field says which and why). Other packets that are not TCP (or not IP, or IP
// fragments, or with a broken IP header) return one of the Err values and
// change nothing; the kernel's IP layer or another protocol tracker would
// handle them. A TCP packet whose header is cut short yields an INVALID
// Verdict with reason "truncated packet" and a nil error. With the
// checksum knob on, Track verifies the TCP checksum (a packet given to
// TrackSegment or TrackBatch carries the caller's Segment.BadChecksum).
//
// When err is not nil the Verdict is the zero one, whose CT is
// CTNone: never NEW, so code that forgets the error does not count a UDP
// packet as a new connection.
func (tr *Tracker) Track(packet []byte, now time.Time) (Verdict, error) {
	if tr.t == nil {
		return Verdict{}, ErrZeroTracker
	}
	var p capture.Packet
	p.Decode(capture.LinkRaw, packet, len(packet))
	switch p.Kind {
	case capture.KindTCP:
		seg := SegmentOf(&p)
		if tr.m.Checksums() {
			ok, known := p.TCPChecksumOK()
			seg.BadChecksum = known && !ok
		}
		k := keyOf(p.Src, p.Dst, p.SrcPort, p.DstPort)
		var v Verdict
		tr.rlock()
		tr.track(&v, &k, 0, &seg, now.UnixNano())
		tr.runlock()
		return v, nil
	case capture.KindNonTCP:
		if k, i, ok := parseICMP(&p); ok {
			var v Verdict
			tr.rlock()
			tr.related(&v, &k, i, now.UnixNano())
			tr.runlock()
			return v, nil
		}
		return Verdict{}, ErrNotTCP
	case capture.KindFragment:
		return Verdict{}, ErrFragment
	case capture.KindMalformed:
		switch {
		case p.HasPorts():
			// The kernel finds the entry from the ports, then its TCP
			// tracker rejects the header: INVALID, the entry untouched.
			seg := SegmentOf(&p)
			k := keyOf(p.Src, p.Dst, p.SrcPort, p.DstPort)
			var v Verdict
			tr.rlock()
			tr.track(&v, &k, 0, &seg, now.UnixNano())
			tr.runlock()
			return v, nil
		case p.TrackedInvalid():
			var v Verdict
			tr.truncated(&v, now.UnixNano())
			return v, nil
		}
		return Verdict{}, ErrBadIP
	}
	return Verdict{}, ErrNotIP
}

// truncated fills *v with the verdict of a TCP packet whose header is
// too short to hold even the ports (INVALID, "truncated packet"),
// counting it. Without ports no entry can be found (the kernel's
// nf_ct_get_tuple fails too), so none is consulted. A truncated header
// whose ports are there goes the packet path instead, which reports the
// entry it belongs to. The verdict is the one Step gives any malformed
// segment without an entry, so its Class is the profile's "none" class
// on both paths.
func (tr *Tracker) truncated(v *Verdict, now int64) {
	tr.counter().packets.Add(1)
	tr.truncatedIn(v, now)
}

// truncatedIn is truncated without counting the packet (TrackBatch counts
// its packets once per batch).
func (tr *Tracker) truncatedIn(v *Verdict, now int64) {
	tr.t.AddInvalid()
	var c fsm.Conn
	seg := fsm.Segment{Malformed: fsm.ReasonTruncated}
	*v = Verdict{now: now, p: tr.p}
	tr.m.StepInto(&v.Verdict, &c, &seg, fsm.Original, now)
}

// TrackSegment runs one parsed TCP segment, sent from src to dst, through
// the tracker at time now. src and dst must be of the same family.
func (tr *Tracker) TrackSegment(src, dst netip.AddrPort, seg *fsm.Segment, now time.Time) Verdict {
	k := table.KeyFromAddrPorts(src, dst)
	var v Verdict
	tr.rlock()
	tr.track(&v, &k, 0, seg, now.UnixNano())
	tr.runlock()
	return v
}

// lookahead is how many packets TrackBatch hashes and prefetches before
// tracking them: enough for their table misses to overlap, few enough
// that the batch stays in the CPU's out-of-order window.
const lookahead = 16

// TrackBatch tracks pkts in order, writing the verdict of pkts[i] to
// out[i] (len(out) >= len(pkts)): the same verdicts as TrackSegment one by
// one. A caller holding several packets (a capture read ahead, a NIC ring)
// should use it: it hashes the tuples of a few packets and loads their
// table memory first, so that their cache misses, most of a packet's
// cost with 1e5 connections and more, overlap instead of queueing. A
// packet with no tuple (the zero Key) and a Malformed segment is an
// INVALID "truncated packet" (PacketOf makes such packets of records cut
// short).
func (tr *Tracker) TrackBatch(pkts []Packet, out []Verdict) {
	out = out[:len(pkts)]
	if tr.t == nil {
		clear(out)
		return
	}
	// One count per batch: an atomic add per packet costs more than the
	// counter is worth (Stats is weakly consistent anyway). ICMP errors
	// are counted apart (related), not as Packets.
	cs := tr.counter()
	tcp := uint64(len(pkts))
	var found uint64 // entries found, added to the table's counter once (AcquireKeyTally)
	defer func() {
		cs.packets.Add(tcp)
		tr.t.AddFound(found)
	}()
	var keys [lookahead]table.Key
	var hashes [lookahead]uint64
	tr.rlock()
	defer tr.runlock()
	for len(pkts) > 0 {
		n := min(len(pkts), lookahead)
		// A SYN without ACK will probably create its connection:
		// PrefetchCreates also loads what the insert will touch.
		var creates uint64
		for i := range pkts[:n] {
			keys[i] = pkts[i].Key
			if pkts[i].Segment.Flags&(spec.SYN|spec.ACK) == spec.SYN {
				creates |= 1 << i
			}
		}
		tr.t.PrefetchCreates(keys[:n], hashes[:n], creates)
		for i := range pkts[:n] {
			p := &pkts[i]
			if p.ICMP.Family != 0 {
				tr.related(&out[i], &p.Key, p.ICMP, p.Time.UnixNano())
				tcp--
				continue
			}
			if p.Key.IsZero() && p.Segment.Malformed != fsm.ReasonNone {
				tr.truncatedIn(&out[i], p.Time.UnixNano())
				continue
			}
			tr.trackIn(cs, &found, &out[i], &p.Key, hashes[i], &p.Segment, p.Time.UnixNano())
		}
		pkts, out = pkts[n:], out[n:]
	}
}

// setKey makes *k the key of the tuple src:sport → dst:dport, in place:
// IPv4 when both addresses are, IPv6 otherwise. The key is written into
// *k word by word, where a Key returned by a call is built in the
// callee's frame and then copied with 16-byte moves, which cannot be
// forwarded from the 8-byte stores still in the store buffer: a stall
// of a dozen cycles that the per-packet path (Packet.Set) showed in
// profiles of a replay (about 5 % of it).
func setKey(k *table.Key, src, dst netip.Addr, sport, dport uint16) {
	if src.Is4() && dst.Is4() {
		*k = table.MakeKey4(src.As4(), dst.As4(), sport, dport)
		return
	}
	s, d := src.As16(), dst.As16()
	*k = table.MakeKey(table.FamilyIPv6, &s, &d, sport, dport)
}

// keyOf is setKey's key, returned.
func keyOf(src, dst netip.Addr, sport, dport uint16) (k table.Key) {
	setKey(&k, src, dst, sport, dport)
	return k
}

func (tr *Tracker) meta(c *fsm.Conn) table.Meta {
	var f table.Flags
	if c.Assured() {
		f |= table.Assured
	}
	if c.SeenReply() {
		f |= table.SeenReply
	}
	if tr.m.Closing(c.State) {
		f |= table.Closing
	}
	return table.Meta{Deadline: c.Deadline, State: uint8(c.State), Flags: f}
}

// track is the packet path: find and lock the entry of either tuple
// (table.AcquireKey) → step → commit / remove / replace, or step →
// insert-if-absent for a packet without an entry. h is k's table hash, or
// 0. It fills *v in place (a Verdict is ~120 bytes; the replay loop hands
// in its output slot) and touches no shared cache line of its own except
// one striped counter.
func (tr *Tracker) track(v *Verdict, k *table.Key, h uint64, seg *fsm.Segment, now int64) {
	if tr.t == nil {
		*v = Verdict{}
		return
	}
	cs := tr.counter()
	cs.packets.Add(1)
	var found uint64
	tr.trackIn(cs, &found, v, k, h, seg, now)
	tr.t.AddFound(found)
}

// trackIn is track on a tracker made by New, the packet counted by the
// caller in cs (the counter stripe it also counts outcomes in) and the
// entry it finds in *found (table.AcquireKeyTally), which the caller adds
// to the table's counter.
func (tr *Tracker) trackIn(cs *counterShard, found *uint64, v *Verdict, k *table.Key, h uint64, seg *fsm.Segment, now int64) {
	tr.t.Reclaim(now) // one load unless an entry is overdue
	var c fsm.Conn
	ref, d, _, held := tr.t.AcquireKeyTally(k, h, now, &c, found)
	for {
		if !held {
			c = fsm.Conn{}
			// Filled in place (fsm.Machine.StepInto): a Verdict built
			// by value and copied stalls on the copy.
			*v = Verdict{Key: *k, now: now, p: tr.p}
			tr.m.StepInto(&v.Verdict, &c, seg, fsm.Original, now)
			if v.Action == fsm.Create {
				r, wd, st := tr.insert(*k, c, tr.countedMeta(&c, v, k, seg, table.Original), now)
				switch st {
				case table.Inserted:
					v.Ref = r
				case table.Existing:
					// Another goroutine created the connection first (or the
					// packet raced with its reply): run it on the winner.
					ref, d, held = tr.acquire(&c, k, r, wd, now)
					continue
				case table.Dropped, table.Failed:
					// "nf_conntrack: table full, dropping packet".
					c = fsm.Conn{}
					v.Dropped = true
				}
			}
			tr.finish(cs, v, &c)
			return
		}
		*v = Verdict{now: now, p: tr.p}
		tr.m.StepInto(&v.Verdict, &c, seg, fsm.Dir(d), now)
		if d == table.Reply {
			v.Key = k.Reverse()
		} else {
			v.Key = *k
		}
		switch v.Action {
		case fsm.None:
			tr.t.Abort(ref)
		case fsm.Update:
			m := tr.countedMeta(&c, v, k, seg, d)
			if v.Old != v.New {
				// The kernel announces every transition, also one its
				// resync made from a rewritten old state (table.StateChange).
				m.Flags |= table.StateChange
			}
			tr.t.Commit(ref, &c, &m, now)
		case fsm.Delete:
			r := table.ReasonKilled
			if v.Expired {
				r = table.ReasonExpired
			}
			if v.Expired || v.New == v.Old {
				tr.t.Remove(ref, r, now)
				break
			}
			// The packet moved the entry before deleting it (an RST
			// answering a SYN: SYN_SENT -> CLOSE). The kernel writes the
			// new state, keeps the timer, then kills the entry, so the
			// DESTROY event shows CLOSE.
			last, m := tr.t.Held(ref)
			last.State = v.New
			m.State = uint8(v.New)
			tr.account(&m, v, k, seg, d) // nf_ct_kill_acct
			tr.t.RemoveAs(ref, last, m, r, now)
		case fsm.Recreate:
			// The reopening packet's direction is the new original one.
			v.Key = *k
			var st table.Status
			if ref, st = tr.t.Replace(ref, *k, c, tr.countedMeta(&c, v, k, seg, table.Original), now); st != table.Inserted {
				c = fsm.Conn{}
				v.Dropped = true
			}
		case fsm.Create:
			// The entry found had expired (Step treated it as absent);
			// reclaim it and create the new connection in its place.
			tr.t.Remove(ref, table.ReasonExpired, now)
			v.Key = *k
			switch r, wd, st := tr.insert(*k, c, tr.countedMeta(&c, v, k, seg, table.Original), now); st {
			case table.Inserted:
				ref = r
			case table.Existing:
				// A racing packet re-created the connection first.
				ref, d, held = tr.acquire(&c, k, r, wd, now)
				continue
			default:
				c = fsm.Conn{}
				v.Dropped = true
			}
		}
		v.Ref = ref
		tr.finish(cs, v, &c)
		return
	}
}

// countedMeta is meta(c) carrying the packet for the table to count
// (account): the Meta of every write that stores the packet's entry.
func (tr *Tracker) countedMeta(c *fsm.Conn, v *Verdict, k *table.Key, seg *fsm.Segment, d table.Dir) table.Meta {
	m := tr.meta(c)
	tr.account(&m, v, k, seg, d)
	return m
}

// account puts the packet on m for the table to count (table.Meta.Bytes)
// when the verdict counts it and the acct knob is on. d is the direction
// the packet has in the entry it is counted in.
func (tr *Tracker) account(m *table.Meta, v *Verdict, k *table.Key, seg *fsm.Segment, d table.Dir) {
	if !v.Accounted || !tr.t.Accounting() {
		return
	}
	n := seg.IPLen
	if n == 0 {
		// No IP header seen (fsm.Segment.IPLen): one without options
		// or extension headers.
		n = 20 + uint32(seg.HdrLen) + seg.Len
		if k.Family() == table.FamilyIPv6 {
			n += 20
		}
	}
	m.Bytes = n
	if d == table.Reply {
		m.Flags |= table.PacketReply
	}
}

// acquire locks the entry r that Insert reported as already there (k has
// direction d in it) and loads it into *c. If it went away in the
// meantime, it looks k up afresh; held false means no entry.
func (tr *Tracker) acquire(c *fsm.Conn, k *table.Key, r table.Ref, d table.Dir, now int64) (table.Ref, table.Dir, bool) {
	if cur, _, ok := tr.t.Acquire(r); ok {
		*c = cur
		return r, d, true
	}
	r, d, _, ok := tr.t.AcquireKey(k, 0, now, c)
	return r, d, ok
}

func (tr *Tracker) finish(cs *counterShard, v *Verdict, c *fsm.Conn) {
	if c.Live() {
		v.Entry = true
		v.State = c.State
		v.deadline = c.Deadline
		v.Assured = c.Assured()
		v.SeenReply = c.SeenReply()
	} else {
		v.Ref = table.Ref{}
	}
	switch {
	case v.Dropped:
		cs.dropped.Add(1)
	case v.CT == fsm.CTInvalid:
		tr.t.AddInvalid()
	case v.Ignored:
		cs.ignored.Add(1)
	}
}

// counterShard is one stripe of the tracker's packet counters, padded to
// two cache lines so that goroutines tracking in parallel do not share one
// (a single shared atomic counter costs a cache-line transfer per packet
// once two cores track).
type counterShard struct {
	packets, ignored, dropped atomic.Uint64
	icmp, icmpErrors          atomic.Uint64
	_                         [128 - 5*8]byte
}

const counterShards = 16

// counter picks a stripe from the address of a stack variable: distinct
// goroutines have distinct stacks (the trick table's statistics use).
func (tr *Tracker) counter() *counterShard {
	p := stackHint()
	return &tr.counters[(p>>12^p>>18)&(counterShards-1)]
}

//go:noinline
func stackHint() uintptr {
	var x byte
	return uintptr(unsafe.Pointer(&x))
}

// Expire reclaims every entry whose deadline is at or before now, in
// order of deadline and then original tuple, emitting their DESTROY
// events, and returns how many it reclaimed. Track does this before each
// packet while an event subscriber is installed; without one it lets
// expired entries wait up to about 67 ms of packet time and reclaims
// them in batches (table.Table.Reclaim), which changes no verdict, since
// an expired entry counts as absent for every decision, only Len and
// Stats in between. A caller needs Expire to move the clock on without a
// packet: at the end of a replay, before reading Len or Stats, or on a
// timer for a live tracker.
func (tr *Tracker) Expire(now time.Time) int {
	if tr.t == nil {
		return 0
	}
	tr.rlock()
	defer tr.runlock()
	return tr.t.Expire(now.UnixNano())
}

// Lookup returns the live entry whose original or reply tuple is src→dst
// at time now, and which direction matched. It takes no lock.
func (tr *Tracker) Lookup(src, dst netip.AddrPort, now time.Time) (Entry, fsm.Dir, bool) {
	if tr.t == nil {
		return Entry{}, 0, false
	}
	tr.rlock()
	s, d, ok := tr.t.Get(table.KeyFromAddrPorts(src, dst), now.UnixNano())
	tr.runlock()
	if !ok {
		return Entry{}, 0, false
	}
	return tr.entry(&s), fsm.Dir(d), true
}

func (tr *Tracker) entry(s *table.Snapshot[fsm.Conn]) Entry {
	return Entry{Key: s.Key, Conn: s.V, Ref: s.Ref, Counters: s.Counters, acct: tr.t.Accounting(), p: tr.p}
}

// Range calls fn for every live entry at time now, in table order, until
// fn returns false. It runs concurrently with Track: each entry present
// throughout is seen once, with a consistent snapshot.
func (tr *Tracker) Range(now time.Time, fn func(*Entry) bool) {
	if tr.t == nil {
		return
	}
	if tr.grows {
		// fn may track packets, and a packet may grow the table, which
		// waits for every reader: take the snapshots first.
		tr.rlock()
		var all []Entry
		tr.t.Range(now.UnixNano(), func(s *table.Snapshot[fsm.Conn]) bool {
			all = append(all, tr.entry(s))
			return true
		})
		tr.runlock()
		for i := range all {
			if !fn(&all[i]) {
				return
			}
		}
		return
	}
	var e Entry
	tr.t.Range(now.UnixNano(), func(s *table.Snapshot[fsm.Conn]) bool {
		e = tr.entry(s)
		return fn(&e)
	})
}

// Entries returns the live entries at time now, sorted by original tuple
// (addresses, then ports) so that dumps are reproducible.
func (tr *Tracker) Entries(now time.Time) []Entry {
	var out []Entry
	tr.Range(now, func(e *Entry) bool { out = append(out, *e); return true })
	sort.Slice(out, func(i, j int) bool { return KeyLess(out[i].Key, out[j].Key) })
	return out
}

// KeyLess orders tuples by source address, destination address, source
// port, destination port: the order Entries and the CLI's dumps use.
func KeyLess(a, b table.Key) bool {
	if c := a.Src().Compare(b.Src()); c != 0 {
		return c < 0
	}
	if c := a.Dst().Compare(b.Dst()); c != 0 {
		return c < 0
	}
	if a.SrcPort() != b.SrcPort() {
		return a.SrcPort() < b.SrcPort()
	}
	return a.DstPort() < b.DstPort()
}

// Stats are the tracker's counters: packets by outcome and the table's
// /proc/net/stat/nf_conntrack counters.
type Stats struct {
	Packets uint64 // TCP packets tracked (Track errors are not counted)
	Invalid uint64 // INVALID verdicts (the table's "invalid" counter, Table.Invalid)
	Ignored uint64 // accepted without a state change (sIG, window IGNORE, challenge ACKs)
	Dropped uint64 // first packets dropped because the table was full
	// ICMP counts the ICMP and ICMPv6 packets judged (see ICMP): errors
	// quoting TCP and ICMP headers rejected before the lookup; not
	// counted in Packets. ICMPErrors counts those that were not RELATED,
	// the kernel's "icmp_error" column (not its "invalid" one).
	ICMP, ICMPErrors uint64
	Table            table.Stats
}

// Stats returns the counters; weakly consistent with concurrent Track calls.
func (tr *Tracker) Stats() Stats {
	if tr.t == nil {
		return Stats{}
	}
	tr.rlock()
	s := Stats{Table: tr.t.Stats()}
	tr.runlock()
	s.Invalid = s.Table.Invalid
	for i := range tr.counters {
		c := &tr.counters[i]
		s.Packets += c.packets.Load()
		s.Ignored += c.ignored.Load()
		s.Dropped += c.dropped.Load()
		s.ICMP += c.icmp.Load()
		s.ICMPErrors += c.icmpErrors.Load()
	}
	return s
}
