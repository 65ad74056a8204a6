package tcpct_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/packet"
	"github.com/fdac824a/tcpct/table"
)

var (
	cli = netip.MustParseAddrPort("192.168.1.5:1031")
	srv = netip.MustParseAddrPort("192.168.1.35:23")
	t0  = time.Date(2006, 11, 24, 10, 0, 0, 0, time.UTC)
)

func pkt(t testing.TB, src, dst netip.AddrPort, flags packet.Flags, seq, ack uint32, n int) []byte {
	t.Helper()
	s := packet.Segment{Src: src, Dst: dst, Seq: seq, Ack: ack, Flags: flags, Window: 5840, PayloadLen: n}
	if flags&packet.SYN != 0 {
		s.Options = packet.Options{MSS: 1460, SACKPermitted: true, HasWScale: true}
	}
	b, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTracker(t testing.TB, cfg tcpct.Config) *tcpct.Tracker {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Knobs == nil {
		cfg.Knobs = []string{"max=1024"}
	}
	tr, err := tcpct.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

type step struct {
	raw     []byte
	at      time.Duration
	ct      fsm.CT
	dir     fsm.Dir
	state   string // "" = no entry after the packet
	left    int64
	assured bool
	action  fsm.Action
}

func runSteps(t *testing.T, tr *tcpct.Tracker, steps []step) {
	t.Helper()
	for i, s := range steps {
		v, err := tr.Track(s.raw, t0.Add(s.at))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if v.CT != s.ct || v.StateName() != s.state || v.Assured != s.assured || v.Action != s.action ||
			(v.CT != fsm.CTInvalid && v.Dir != s.dir) || (s.state != "" && v.SecondsLeft() != s.left) {
			t.Fatalf("step %d: got %s dir=%v action=%v; want %v %v %s %ds assured=%v action=%v",
				i, v.String(), v.Dir, v.Action, s.ct, s.dir, s.state, s.left, s.assured, s.action)
		}
	}
}

// The seed's walk-through with the 2.4 tracker, through raw IPv4 packets.
func TestTrackTutorialSeed(t *testing.T) {
	tr := newTracker(t, tcpct.Config{Profile: "tutorial", Knobs: []string{"ip_conntrack_max=64"}})
	const c, s = 1000, 5000
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, c, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, srv, cli, packet.SYN|packet.ACK, s, c+1, 0), 5 * time.Second, fsm.CTEstablished, fsm.Reply, "SYN_RECV", 60, false, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, c+1, s+1, 0), 10 * time.Second, fsm.CTEstablished, fsm.Original, "ESTABLISHED", 432000, true, fsm.Update},
	})
	// /proc at the seed's three instants is checked by the CLI golden
	// tests; here the table itself, 1 s after the ACK.
	at := t0.Add(11 * time.Second)
	es := tr.Entries(at)
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
	got := string(es[0].AppendProc(nil, at))
	want := "tcp 6 431999 ESTABLISHED src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] use=1\n"
	if got != want {
		t.Errorf("proc line\n got %q\nwant %q", got, want)
	}
	if e, d, ok := tr.Lookup(srv, cli, at); !ok || d != fsm.Reply || e.Src() != cli || e.StateName() != "ESTABLISHED" {
		t.Errorf("Lookup by reply tuple: %v %v %v", e.Src(), d, ok)
	}
}

func TestTrackLinuxCloseAndExpiry(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	sub := tr.Subscribe(64)
	const c, s = 1000, 5000
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, c, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, srv, cli, packet.SYN|packet.ACK, s, c+1, 0), time.Second, fsm.CTEstablished, fsm.Reply, "SYN_RECV", 60, false, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, c+1, s+1, 0), 2 * time.Second, fsm.CTEstablished, fsm.Original, "ESTABLISHED", 432000, true, fsm.Update},
		{pkt(t, cli, srv, packet.FIN|packet.ACK, c+1, s+1, 0), 3 * time.Second, fsm.CTEstablished, fsm.Original, "FIN_WAIT", 120, true, fsm.Update},
		{pkt(t, srv, cli, packet.FIN|packet.ACK, s+1, c+2, 0), 4 * time.Second, fsm.CTEstablished, fsm.Reply, "LAST_ACK", 30, true, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, c+2, s+2, 0), 5 * time.Second, fsm.CTEstablished, fsm.Original, "TIME_WAIT", 120, true, fsm.Update},
	})
	// A packet of another connection 2 minutes later drives the sweep,
	// which reclaims the TIME_WAIT entry (expired at 5 s + 120 s).
	other := netip.MustParseAddrPort("10.0.0.1:40000")
	runSteps(t, tr, []step{{pkt(t, other, srv, packet.SYN, 1, 0, 0), 126 * time.Second, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create}})
	var types []string
	for {
		ev, ok := sub.Poll()
		if !ok {
			break
		}
		typ := ev.Type.String() + " " + ev.Entry.StateName()
		if ev.Type == table.EventDestroy {
			typ += " " + ev.Reason.String()
		}
		types = append(types, typ)
	}
	want := "NEW SYN_SENT,UPDATE SYN_RECV,UPDATE ESTABLISHED,UPDATE FIN_WAIT,UPDATE LAST_ACK,UPDATE TIME_WAIT,DESTROY TIME_WAIT expired,NEW SYN_SENT"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if st := tr.Stats(); st.Packets != 7 || st.Table.Insert != 2 || st.Table.Expired != 1 || tr.Len() != 1 {
		t.Errorf("stats %+v, len %d", st, tr.Len())
	}
}

// An RST as the only answer to a SYN deletes the entry (Action Delete).
func TestTrackRSTBeforeReplyDeletes(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, srv, cli, packet.RST|packet.ACK, 0, 1001, 0), time.Second, fsm.CTEstablished, fsm.Reply, "", 0, false, fsm.Delete},
	})
	if tr.Len() != 0 {
		t.Errorf("Len %d after RST, want 0", tr.Len())
	}
}

// A SYN in TIME_WAIT from the old reply side reopens the connection: the
// entry is recreated with the packet's direction as the original one.
func TestTrackReopenFromReplySide(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	const c, s = 1000, 5000
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, c, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, srv, cli, packet.SYN|packet.ACK, s, c+1, 0), time.Second, fsm.CTEstablished, fsm.Reply, "SYN_RECV", 60, false, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, c+1, s+1, 0), 2 * time.Second, fsm.CTEstablished, fsm.Original, "ESTABLISHED", 432000, true, fsm.Update},
		{pkt(t, cli, srv, packet.FIN|packet.ACK, c+1, s+1, 0), 3 * time.Second, fsm.CTEstablished, fsm.Original, "FIN_WAIT", 120, true, fsm.Update},
		{pkt(t, srv, cli, packet.FIN|packet.ACK, s+1, c+2, 0), 4 * time.Second, fsm.CTEstablished, fsm.Reply, "LAST_ACK", 30, true, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, c+2, s+2, 0), 5 * time.Second, fsm.CTEstablished, fsm.Original, "TIME_WAIT", 120, true, fsm.Update},
		{pkt(t, srv, cli, packet.SYN, 900000, 0, 0), 10 * time.Second, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Recreate},
	})
	es := tr.Entries(t0.Add(10 * time.Second))
	if len(es) != 1 || es[0].Src() != srv || es[0].Dst() != cli || es[0].Conn.SeenReply() {
		t.Fatalf("after reopen: %+v", es)
	}
}

func TestTrackInvalidKeepsEntry(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
	})
	// A FIN in SYN_SENT from the reply side is sIV: INVALID, entry kept.
	v, err := tr.Track(pkt(t, srv, cli, packet.FIN|packet.ACK, 5000, 1001, 0), t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v.CT != fsm.CTInvalid || !v.Entry || v.StateName() != "SYN_SENT" || v.SecondsLeft() != 118 || v.ReasonText() == "" {
		t.Fatalf("got %s", v.String())
	}
	if d, ok := v.Doc(); !ok || d.RFC == "" || d.Reason == "" {
		t.Errorf("no spec rationale for the INVALID cell: %+v %v", d, ok)
	}
	if st := tr.Stats(); st.Invalid != 1 || st.Table.Invalid != 1 {
		t.Errorf("invalid counters %+v", st)
	}
}

func TestTrackErrors(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	udp := pkt(t, cli, srv, packet.ACK, 1, 1, 0)
	udp[9] = 17 // protocol UDP (checksums do not matter to the decoder)
	if _, err := tr.Track(udp, t0); !errors.Is(err, tcpct.ErrNotTCP) {
		t.Errorf("UDP: %v", err)
	}
	if _, err := tr.Track([]byte{0x00, 1, 2}, t0); err == nil {
		t.Errorf("garbage: no error")
	}
	// A TCP header cut short is an INVALID verdict, not an error, with
	// class "none" (the zero Class would read "syn").
	short := cutTCP(pkt(t, cli, srv, packet.ACK, 1, 1, 0), 3)
	v, err := tr.Track(short, t0)
	if err != nil || v.CT != fsm.CTInvalid || v.Reason != fsm.ReasonTruncated || v.ClassName() != "none" || v.Entry {
		t.Errorf("short TCP: %v %s", err, v.String())
	}
	// An IP total length beyond the packet is a broken IP header, which
	// the kernel's ip_rcv_core drops before conntrack: not a TCP verdict.
	if _, err := tr.Track(pkt(t, cli, srv, packet.ACK, 1, 1, 0)[:30], t0); !errors.Is(err, tcpct.ErrBadIP) {
		t.Errorf("IP total length beyond the packet: %v, want ErrBadIP", err)
	}
}

// cutTCP cuts an IPv4 packet (20-byte header) to n bytes of TCP, with the
// total length saying so, as a sender of such a packet would.
func cutTCP(p []byte, n int) []byte {
	p = p[:20+n]
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	return p
}

// TestTrackShortHeaderFindsEntry: a TCP header of 4-19 bytes has its
// ports, so the entry is found (as nf_ct_get_tuple finds it) and reported
// unchanged with the INVALID verdict: the kernel's "ct INVALID, state
// SYN_SENT, timeout 120" for an ACK cut to 12 bytes after a SYN. Neither
// the state nor the timer moves, and the packet is counted INVALID.
func TestTrackShortHeaderFindsEntry(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
	})
	for _, c := range []struct {
		from, to netip.AddrPort
		dir      fsm.Dir
	}{{cli, srv, fsm.Original}, {srv, cli, fsm.Reply}} {
		v, err := tr.Track(cutTCP(pkt(t, c.from, c.to, packet.ACK, 1001, 5001, 0), 12), t0)
		if err != nil || v.CT != fsm.CTInvalid || v.Reason != fsm.ReasonTruncated || !v.Entry || v.StateName() != "SYN_SENT" ||
			v.SecondsLeft() != 120 || v.ClassName() != "none" || v.Action != fsm.None || v.Src() != cli || v.Dir != c.dir {
			t.Errorf("%v: %v %s", c.dir, err, v.String())
		}
	}
	if st := tr.Stats(); st.Invalid != 2 {
		t.Errorf("invalid counters %+v", st)
	}
	if e, _, ok := tr.Lookup(cli, srv, t0); !ok || e.StateName() != "SYN_SENT" || e.Conn.SeenReply() {
		t.Errorf("entry after the short headers: %v %v", e, ok)
	}
}

func TestTrackIPv6(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	a := netip.MustParseAddrPort("[2001:db8::5]:1031")
	b := netip.MustParseAddrPort("[2001:db8::35]:23")
	runSteps(t, tr, []step{
		{pkt(t, a, b, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, b, a, packet.SYN|packet.ACK, 7, 1001, 0), time.Second, fsm.CTEstablished, fsm.Reply, "SYN_RECV", 60, false, fsm.Update},
	})
	es := tr.Entries(t0.Add(time.Second))
	want := "ipv6     10 tcp      6 60 SYN_RECV src=2001:0db8:0000:0000:0000:0000:0000:0005 dst=2001:0db8:0000:0000:0000:0000:0000:0035 sport=1031 dport=23 src=2001:0db8:0000:0000:0000:0000:0000:0035 dst=2001:0db8:0000:0000:0000:0000:0000:0005 sport=23 dport=1031 mark=0 zone=0 use=2\n"
	if len(es) != 1 || string(es[0].AppendProc(nil, t0.Add(time.Second))) != want {
		t.Errorf("got %v", es)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  tcpct.Config
		want string
	}{
		{tcpct.Config{Profile: "bsd"}, `"bsd"`},
		{tcpct.Config{Knobs: []string{"tcp_lose=1"}}, "tcp_lose"},
		{tcpct.Config{Knobs: []string{"tcp_loose=2"}}, "tcp_loose"},
		{tcpct.Config{Knobs: []string{"nf_conntrack_tcp_timeout_established=x"}}, "tcp_timeout_established"},
		{tcpct.Config{Knobs: []string{"tcp_loose"}}, "NAME=VALUE"},
		{tcpct.Config{Knobs: []string{"max=-5"}}, "max"},
		{tcpct.Config{Profile: "tutorial", Knobs: []string{"tcp_be_liberal=1"}}, "tcp_be_liberal"},
	} {
		_, err := tcpct.New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	tr, err := tcpct.New(tcpct.Config{Knobs: []string{"net.netfilter.nf_conntrack_tcp_loose=0", "max=16"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tr.Config().Knob("tcp_loose"); v != 0 || tr.Max() != 16 || !tr.Config().Set("nf_conntrack_tcp_loose") || tr.Config().Set("tcp_be_liberal") {
		t.Errorf("knobs not applied: loose=%d max=%d", v, tr.Max())
	}
}

// A full table drops new connections (no early-drop candidate among
// assured entries) and reports it.
func TestTableFull(t *testing.T) {
	tr := newTracker(t, tcpct.Config{Knobs: []string{"max=1"}})
	runSteps(t, tr, []step{
		{pkt(t, cli, srv, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		{pkt(t, srv, cli, packet.SYN|packet.ACK, 7, 1001, 0), time.Second, fsm.CTEstablished, fsm.Reply, "SYN_RECV", 60, false, fsm.Update},
		{pkt(t, cli, srv, packet.ACK, 1001, 8, 0), time.Second, fsm.CTEstablished, fsm.Original, "ESTABLISHED", 432000, true, fsm.Update},
	})
	other := netip.MustParseAddrPort("10.0.0.1:40000")
	v, err := tr.Track(pkt(t, other, srv, packet.SYN, 1, 0, 0), t0.Add(2*time.Second))
	if err != nil || !v.Dropped || v.Entry || v.ReasonText() != "table full, dropping packet" {
		t.Fatalf("got %v %s dropped=%v", err, v.String(), v.Dropped)
	}
	if st := tr.Stats(); st.Dropped != 1 {
		t.Errorf("Dropped = %d", st.Dropped)
	}
}

func TestTrackAllocs(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	syn := pkt(t, cli, srv, packet.SYN, 1000, 0, 0)
	synack := pkt(t, srv, cli, packet.SYN|packet.ACK, 7, 1001, 0)
	ack := pkt(t, cli, srv, packet.ACK, 1001, 8, 0)
	rst := pkt(t, cli, srv, packet.RST, 1001, 0, 0)
	now := t0
	allocs := testing.AllocsPerRun(200, func() {
		// A whole connection per run: create, update, RST → CLOSE.
		for _, p := range [][]byte{syn, synack, ack, ack, rst} {
			now = now.Add(time.Millisecond)
			if _, err := tr.Track(p, now); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(20 * time.Second) // past CLOSE's 10 s: the next SYN creates afresh
	})
	if allocs != 0 {
		t.Errorf("Track allocates %.1f times per connection, want 0", allocs)
	}
	seg := fsm.ParseSegment(ack[20:], len(ack)-20)
	allocs = testing.AllocsPerRun(100, func() { tr.TrackSegment(cli, srv, &seg, now) })
	if allocs != 0 {
		t.Errorf("TrackSegment allocates %.1f times, want 0", allocs)
	}
}

// Many goroutines track the packets of the same connections concurrently;
// per-entry locking keeps every entry consistent. The two racing SYNs of
// one connection must leave exactly one entry.
func TestTrackConcurrent(t *testing.T) {
	tr := newTracker(t, tcpct.Config{Knobs: []string{"max=4096"}})
	const conns, workers = 200, 8
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < conns; i++ {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 40000)
				syn := pkt(t, src, srv, packet.SYN, 1000, 0, 0)
				if _, err := tr.Track(syn, t0.Add(time.Duration(w)*time.Millisecond)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if tr.Len() != conns {
		t.Fatalf("Len %d, want %d", tr.Len(), conns)
	}
	n := 0
	tr.Range(t0.Add(time.Second), func(e *tcpct.Entry) bool {
		if e.StateName() != "SYN_SENT" || e.Conn.SeenReply() {
			t.Errorf("entry %v in %s", e.Key, e.StateName())
		}
		n++
		return true
	})
	if n != conns {
		t.Errorf("Range saw %d entries", n)
	}
	if st := tr.Stats(); st.Packets != conns*workers || st.Table.Insert != conns {
		t.Errorf("stats %+v", st)
	}
}

func BenchmarkTrackEstablished(b *testing.B) {
	tr := newTracker(b, tcpct.Config{})
	const c, s = 1000, 5000
	now := t0
	for _, p := range [][]byte{pkt(b, cli, srv, packet.SYN, c, 0, 0), pkt(b, srv, cli, packet.SYN|packet.ACK, s, c+1, 0), pkt(b, cli, srv, packet.ACK, c+1, s+1, 0)} {
		tr.Track(p, now)
	}
	ack := pkt(b, cli, srv, packet.ACK, c+1, s+1, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Track(ack, now)
	}
}

// Verdict.Ref names the connection, not the packet: every packet of one
// connection (either direction, INVALID ones too) carries the same Ref, a
// packet with no entry after it carries none, and a reopen is a new
// connection: a different Ref, even though the tuple is the same.
func TestVerdictRef(t *testing.T) {
	tr := newTracker(t, tcpct.Config{})
	const c, s = 1000, 5000
	track := func(b []byte, at time.Duration) tcpct.Verdict {
		t.Helper()
		v, err := tr.Track(b, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := track(pkt(t, cli, srv, packet.SYN, c, 0, 0), 0)
	if first.Ref.IsZero() || first.Ref.Index() >= tr.Max() {
		t.Fatalf("new entry's Ref %+v (Max %d)", first.Ref, tr.Max())
	}
	for i, b := range [][]byte{
		pkt(t, srv, cli, packet.SYN|packet.ACK, s, c+1, 0),
		pkt(t, cli, srv, packet.ACK, c+1, s+1, 0),
		pkt(t, srv, cli, packet.ACK, s+1, c+1+1<<30, 0), // ACK far above the window: INVALID
		pkt(t, cli, srv, packet.FIN|packet.ACK, c+1, s+1, 0),
		pkt(t, srv, cli, packet.FIN|packet.ACK, s+1, c+2, 0),
		pkt(t, cli, srv, packet.ACK, c+2, s+2, 0),
	} {
		v := track(b, time.Duration(i+1)*time.Second)
		if i == 2 && v.CT != fsm.CTInvalid {
			t.Fatalf("packet 3 should be INVALID: %s", v.String())
		}
		if !v.Entry || v.Ref != first.Ref {
			t.Fatalf("packet %d: Ref %+v, want the connection's %+v (%s)", i+1, v.Ref, first.Ref, v.String())
		}
	}
	reopen := track(pkt(t, srv, cli, packet.SYN, 900000, 0, 0), 10*time.Second)
	if reopen.Action != fsm.Recreate || reopen.Ref.IsZero() || reopen.Ref == first.Ref {
		t.Fatalf("reopen: %s, Ref %+v (old %+v)", reopen.String(), reopen.Ref, first.Ref)
	}
	rst := track(pkt(t, srv, cli, packet.RST, 900001, 0, 0), 11*time.Second)
	if rst.Entry || !rst.Ref.IsZero() {
		t.Fatalf("RST before any reply deletes the entry, but the verdict keeps Ref %+v: %s", rst.Ref, rst.String())
	}
}

// TestChecksumKnob: with checksum=1 a segment whose TCP checksum is wrong
// is INVALID "bad checksum" and leaves the entry alone (tcp_error runs
// after the lookup); with the default 0 it is tracked as if right.
func TestChecksumKnob(t *testing.T) {
	bad := func(p []byte) []byte { p[len(p)-1] ^= 1; return p } // the last byte of the TCP header
	for _, on := range []bool{false, true} {
		cfg := tcpct.Config{}
		if on {
			cfg.Knobs = []string{"checksum=1"}
		}
		tr := newTracker(t, cfg)
		v, err := tr.Track(bad(pkt(t, cli, srv, packet.SYN, 1000, 0, 0)), t0)
		if err != nil || (v.CT == fsm.CTInvalid) != on || on && (v.Reason != fsm.ReasonBadChecksum || v.Entry) || !on && v.StateName() != "SYN_SENT" {
			t.Errorf("checksum=%v, SYN with a bad checksum: %v %s", on, err, v.String())
		}
		if !on {
			continue
		}
		runSteps(t, tr, []step{
			{pkt(t, cli, srv, packet.SYN, 1000, 0, 0), 0, fsm.CTNew, fsm.Original, "SYN_SENT", 120, false, fsm.Create},
		})
		v, err = tr.Track(bad(pkt(t, srv, cli, packet.SYN|packet.ACK, 5000, 1001, 0)), t0.Add(time.Second))
		if err != nil || v.CT != fsm.CTInvalid || v.Reason != fsm.ReasonBadChecksum || !v.Entry || v.StateName() != "SYN_SENT" || v.SeenReply {
			t.Errorf("SYN/ACK with a bad checksum: %v %s", err, v.String())
		}
	}
}
