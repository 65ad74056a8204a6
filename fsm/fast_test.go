package fsm

import (
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
	"github.com/fdac824a/tcpct/spec"

	"github.com/google/go-cmp/cmp"
)

// fastTrace is a packet stream for the fast-path differential: raw IP
// packets with their times, and the sysctls to run them with.
type fastTrace struct {
	name    string
	sysctls []string
	pkts    []tracegen.Packet
}

// TestFastPathIsTheGeneralPath proves the ESTABLISHED fast path (the
// body of StepInto) equal to the general path (step): every recorded kernel
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

// fastAndGeneral returns two linux machines with the given sysctls
// ("key=value"): mf takes the fast path, mg has it switched off and so
// runs every packet through the general path.
func fastAndGeneral(t *testing.T, sysctls []string) (mf, mg *Machine) {
	t.Helper()
	machine := func(fast bool) *Machine {
		m := NewMachine(Linux)
		for _, kv := range sysctls {
			k, v, _ := strings.Cut(kv, "=")
			if err := m.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if !fast {
			m.fastFlags = [256]bool{}
		}
		return m
	}
	return machine(true), machine(false)
}

// compareFastPath runs tr through a machine with the fast path and one
// without and returns how many packets took the fast path.
func compareFastPath(t *testing.T, tr fastTrace) int {
	t.Helper()
	mf, mg := fastAndGeneral(t, tr.sysctls)
	if !mf.fastFlags[ack] || !mf.fastFlags[ack|psh] {
		t.Fatalf("%s: the linux profile takes no fast path", tr.name)
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

// TestFastPathRandomWalk is the fast-path differential on segments no
// endpoint would send: connections driven by random flags, directions,
// windows, SACK blocks and clock jumps, with sequence and acknowledgement
// numbers drawn near the bounds the entry holds (and sometimes anywhere),
// under the default sysctls and the ones that change tcp_in_window and
// the timeouts. Entries reach states the recorded traces never show (a
// zero window, liberal senders, retransmission counts at the cap, and,
// with pickups whose BE_LIBERAL is cleared as ctnetlink can, a reply peer
// with a window but no SEEN_REPLY), and after every segment the machine
// with the fast path and the one without must agree. It also requires
// that the fast path was taken often, and by replies before SEEN_REPLY
// (the only case that sets it there) a few times.
func TestFastPathRandomWalk(t *testing.T) {
	flagSet := []Flags{ack, ack, ack, ack | psh, ack | psh, ack | spec.URG, ack | spec.ECE | spec.CWR, syn, syn | ack, fin | ack, rst, rst | ack, fin, 0, ack | fin | psh}
	for _, sysctls := range [][]string{
		nil,
		{"tcp_be_liberal=1"},
		{"tcp_max_retrans=0", "tcp_timeout_max_retrans=5", "tcp_timeout_unacknowledged=7"},
		{"tcp_ignore_invalid_rst=1", "tcp_timeout_unacknowledged=100", "tcp_timeout_max_retrans=200", "acct=1", "checksum=1"},
		{"tcp_timeout_established=30", "tcp_max_retrans=255"},
	} {
		mf, mg := fastAndGeneral(t, sysctls)
		r := rand.New(rand.NewPCG(uint64(len(sysctls)), 0x77616c6b))
		taken, unreplied := 0, 0
		for conn := range 3000 {
			var cf, cg Conn
			now := int64(conn) * 1e12
			if conn%2 == 0 {
				// Half the connections start with a handshake, so that
				// their windows are tracked, not picked up liberally.
				ws := uint8(r.IntN(15))
				for i, hs := range []Segment{
					{Seq: 1000, Flags: syn, Win: 64240, HasOptions: true, HasWScale: true, WScale: ws, SackPerm: true},
					{Seq: 5000, Ack: 1001, Flags: syn | ack, Win: 65160, HasOptions: true, HasWScale: conn%4 == 0, WScale: 7, SackPerm: true},
					{Seq: 1001, Ack: 5001, Flags: ack, Win: 502},
				} {
					var vf, vg Verdict
					mf.StepInto(&vf, &cf, &hs, Dir(i%2), now)
					mg.StepInto(&vg, &cg, &hs, Dir(i%2), now)
				}
			}
			for i := range 60 + r.IntN(60) {
				if i == 1 && conn%2 == 1 && conn%6 != 5 && cg.Live() {
					// Some pickups lose BE_LIBERAL after their first
					// packet, in the reply direction or in both, as a
					// ctnetlink update (CTA_PROTOINFO_TCP_FLAGS_*) can
					// make them: only then can a reply fail the window
					// checks before SEEN_REPLY, leave its window behind,
					// and a later reply take the fast path with no reply
					// seen (TestFastPathReplyBeforeSeenReply).
					for d := Dir(conn % 6 / 3); d <= Reply; d++ {
						cf.Seen[d].Flags &^= FlagBeLiberal
						cg.Seen[d].Flags &^= FlagBeLiberal
					}
				}
				dir := Dir(r.IntN(2))
				if !cg.Live() {
					dir = Original
				}
				s, rcv := &cg.Seen[dir&1], &cg.Seen[(dir&1)^1]
				near := func(base uint32) uint32 {
					switch r.IntN(6) {
					case 0:
						return r.Uint32()
					case 1:
						return base + uint32(r.IntN(200000)) - 100000
					default:
						return base + uint32(r.IntN(7)) - 3
					}
				}
				seg := Segment{Flags: flagSet[r.IntN(len(flagSet))], Win: uint16(r.IntN(3) * r.IntN(65536))}
				seg.Seq = near([]uint32{s.End, s.MaxEnd, s.End - rcv.MaxWin, 1000}[r.IntN(4)])
				seg.Ack = near([]uint32{rcv.End, rcv.End - 66000, s.MaxAck, 5000}[r.IntN(4)])
				if r.IntN(3) == 0 {
					seg.Len = uint32(r.IntN(3000))
				}
				if r.IntN(4) == 0 {
					seg.HasOptions = true
					seg.HasWScale, seg.WScale = r.IntN(2) == 0, uint8(r.IntN(15))
					seg.SackPerm = r.IntN(2) == 0
				}
				if r.IntN(6) == 0 {
					seg.NumSack = uint8(1 + r.IntN(4))
					for j := range seg.NumSack {
						seg.SackEdges[j] = near(rcv.End)
					}
				}
				if i == 1 && conn%6 == 3 && cg.Live() {
					// Half the pickups without a liberal reply side get
					// a reply acknowledging data never sent as their
					// second segment: INVALID, the reply side's window
					// set, no reply seen.
					dir = Reply
					o := &cg.Seen[Original]
					seg = Segment{Seq: o.MaxAck, Ack: o.End + 1000, Flags: ack, Win: seg.Win}
				}
				switch r.IntN(40) {
				case 0:
					seg.BadChecksum = true
				case 1:
					seg.Malformed = ReasonTruncated
				}
				switch r.IntN(10) {
				case 0:
					now += int64(r.IntN(600)) * second
				case 1:
					now = cg.Deadline + int64(r.IntN(3)-1)
				default:
					now += int64(r.IntN(1000)) * 1e6
				}
				repeat := 1
				if r.IntN(100) == 0 {
					repeat = 250 + r.IntN(10) // retransmissions up to the count's cap
				}
				for range repeat {
					before := cg
					var vf, vg Verdict
					mf.StepInto(&vf, &cf, &seg, dir, now)
					mg.StepInto(&vg, &cg, &seg, dir, now)
					if vf != vg || cf != cg {
						t.Fatalf("%v, connection %d, segment %d (%s %+v): the fast path differs from the general path\nentry before: %+v\nfast:    %+v\n         %+v\ngeneral: %+v\n         %+v",
							sysctls, conn, i, dir, seg, before, vf, cf, vg, cg)
					}
					if before.Live() && now-before.Deadline < 0 && before.State == mg.sES && vg.Class == mg.cAck &&
						vg.New == mg.sES && vg.CT != CTInvalid && !vg.Ignored && !seg.BadChecksum && seg.Malformed == ReasonNone {
						taken++
						if dir == Reply && !before.SeenReply() && before.Seen[Reply].MaxWin != 0 {
							unreplied++
						}
					}
				}
			}
		}
		t.Logf("%v: %d segments took the fast path, %d of them replies before SEEN_REPLY", sysctls, taken, unreplied)
		if taken < 5000 {
			t.Errorf("%v: only %d segments took the fast path", sysctls, taken)
		}
		// (Under tcp_be_liberal no reply is INVALID, so every first
		// reply sets SEEN_REPLY.)
		if unreplied < 10 && !slices.Contains(sysctls, "tcp_be_liberal=1") {
			t.Errorf("%v: only %d replies took the fast path before SEEN_REPLY", sysctls, unreplied)
		}
	}
}

// TestFastPathReplyBeforeSeenReply drives the fast path's one case that
// no packet sequence reaches: a reply ACK of an ESTABLISHED entry that has
// not seen a reply yet (the fast path must set SEEN_REPLY, and answer
// ESTABLISHED, not NEW) but already knows the reply side's window (or the
// fast path would not take it).
//
// Why packets alone never get there: an entry without SEEN_REPLY is
// ESTABLISHED only after a loose pickup (an entry started by a SYN leaves
// SYN_SENT only on an accepted reply, which sets SEEN_REPLY, or on an RST
// before any reply, which deletes it), and tcp_new marks both directions
// of a pickup BE_LIBERAL; so the first reply packet that reaches
// tcp_in_window is accepted, whatever its numbers, and sets SEEN_REPLY in
// nf_conntrack_in (net/netfilter/nf_conntrack_proto_tcp.c and
// nf_conntrack_core.c, Linux 6.18; TestKernelReplyWindowBeforeSeenReply in
// internal/conformance shows it on the running kernel). The reply side's
// window is unknown until then. But ctnetlink can clear the flag
// (CTA_PROTOINFO_TCP_FLAGS_REPLY, nlattr_to_tcp), as a synchronised or
// hand-edited entry may have it: the test clears it in the entry as that
// update would. Then a reply acknowledging data never sent is INVALID
// (tcp_in_window initialised the reply side's window before its checks,
// and the kernel keeps what it wrote), the entry stays [UNREPLIED], and
// the next, in-window, reply takes the fast path.
//
// After every packet the machine with the fast path and the one without
// must agree, and both must give the outcome the kernel gives
// (TestKernelReplyWindowBeforeSeenReply checks the same script there).
func TestFastPathReplyBeforeSeenReply(t *testing.T) {
	type outcome struct {
		CT        CT
		Dir       Dir
		State     string
		Timeout   int64 // seconds left
		Assured   bool
		SeenReply bool
		Reason    Reason
	}
	steps := []struct {
		at   int64 // seconds
		dir  Dir
		seg  Segment
		want outcome
	}{
		// A mid-stream ACK: picked up, capped at the UNACK timeout.
		{0, Original, Segment{Seq: 1000, Ack: 5000, Flags: ack, Win: 502},
			outcome{CTNew, Original, "ESTABLISHED", 300, false, false, ReasonNone}},
		// (The reply side's BE_LIBERAL is cleared here.) It acknowledges
		// data the original side never sent: INVALID, no refresh.
		{1, Reply, Segment{Seq: 5000, Ack: 1000 + 100000, Flags: ack, Win: 509},
			outcome{CTInvalid, Reply, "ESTABLISHED", 299, false, false, ReasonAckOverUpper}},
		// In window: the fast path. ESTABLISHED, SEEN_REPLY set, still
		// capped at UNACK since the entry had not seen a reply before.
		{2, Reply, Segment{Seq: 5000, Ack: 1000, Flags: ack, Win: 509},
			outcome{CTEstablished, Reply, "ESTABLISHED", 300, false, true, ReasonNone}},
		// The next packet after the reply assures the entry.
		{3, Original, Segment{Seq: 1000, Ack: 5000, Flags: ack, Win: 502},
			outcome{CTEstablished, Original, "ESTABLISHED", 432000, true, true, ReasonNone}},
	}
	mf, mg := fastAndGeneral(t, nil)
	var cf, cg Conn
	for i, p := range steps {
		now := p.at * second
		switch i {
		case 1:
			cf.Seen[Reply].Flags &^= FlagBeLiberal
			cg.Seen[Reply].Flags &^= FlagBeLiberal
		case 2:
			// The fast path's conditions, so that this test cannot pass
			// by the general path taking the packet.
			if !mf.fastFlags[p.seg.Flags] || cf.State != mf.sES || cf.SeenReply() || cf.Seen[Reply].MaxWin == 0 || now-cf.Deadline >= 0 {
				t.Fatalf("packet %d cannot take the fast path: %+v", i, cf)
			}
		}
		seg := p.seg
		var vf, vg Verdict
		before := cg
		mf.StepInto(&vf, &cf, &seg, p.dir, now)
		mg.StepInto(&vg, &cg, &seg, p.dir, now)
		if vf != vg || cf != cg {
			t.Fatalf("packet %d (%s %+v): the fast path differs from the general path\nentry before: %+v\nfast:    %+v\n         %+v\ngeneral: %+v\n         %+v",
				i, p.dir, seg, before, vf, cf, vg, cg)
		}
		got := outcome{vf.CT, vf.Dir, mf.p.StateName(cf.State), (cf.Deadline - now) / second, cf.Assured(), cf.SeenReply(), vf.Reason}
		if diff := cmp.Diff(p.want, got); diff != "" {
			t.Fatalf("packet %d (%s %+v) (-want +got):\n%s", i, p.dir, seg, diff)
		}
		if i == 1 && cf.Seen[Reply].MaxWin == 0 {
			t.Fatalf("the INVALID reply left the reply side's window unknown: %+v", cf)
		}
	}
}
