package conformance

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/packet"
)

// TestKernelReplyWindowBeforeSeenReply asks the kernel about the entry
// behind fsm's TestFastPathReplyBeforeSeenReply: ESTABLISHED, no reply
// seen yet, the reply side's window known. A mid-stream ACK is picked up
// (tcp_loose); then the reply side sends an ACK of data the original side
// never sent, and then an in-window ACK; then the original side again.
//
//   - As the packets leave it ("liberal"): tcp_new marks both directions
//     of a pickup BE_LIBERAL, so the bad reply is accepted (tcp_in_window
//     turns the failed check into ACCEPT) and sets SEEN_REPLY. No packet
//     sequence gives a picked-up entry a reply window without SEEN_REPLY.
//   - With the reply side's BE_LIBERAL cleared by ctnetlink after the
//     pickup ("reply not liberal"), the bad reply is INVALID ("ACK is over
//     upper bound"), the entry stays [UNREPLIED], and the in-window reply
//     is ESTABLISHED, sets SEEN_REPLY and keeps the 300 s UNACK cap; the
//     next packet assures the entry. tcpct's fast path takes that reply.
//
// After every packet the kernel's verdict and entry must be what the
// shipped fsm.Machine (fast path on) gives with the same edit of its Conn.
func TestKernelReplyWindowBeforeSeenReply(t *testing.T) {
	if err := kernel.Available(); err != nil {
		t.Skipf("kernel oracle unavailable: %v", err)
	}
	for _, tc := range []struct {
		name  string
		clear bool // clear the reply side's BE_LIBERAL after the pickup
	}{{"liberal", false}, {"reply not liberal", true}} {
		t.Run(tc.name, func(t *testing.T) {
			recs, ours := replyBeforeSeenReply(t, tc.clear)
			// The outcome, spelled out, so that the kernel and tcpct
			// cannot agree on something else.
			bad, good, next := recs[1], recs[2], recs[3]
			if tc.clear {
				if bad.CT != "INVALID" || bad.SeenReply || !strings.HasPrefix(bad.Reason, "ACK is over upper bound") {
					t.Errorf("kernel, reply ACK of unsent data: %s; want INVALID (ACK is over upper bound), [UNREPLIED]", bad.AppendJSON(nil))
				}
			} else if bad.CT != "ESTABLISHED" || !bad.SeenReply {
				t.Errorf("kernel, reply ACK of unsent data after a pickup: %s; want ESTABLISHED, SEEN_REPLY (liberal)", bad.AppendJSON(nil))
			}
			if good.CT != "ESTABLISHED" || good.Dir != "reply" || !good.SeenReply || good.Assured != !tc.clear || (tc.clear && good.Timeout > 300) {
				t.Errorf("kernel, in-window reply ACK: %s", good.AppendJSON(nil))
			}
			if next.CT != "ESTABLISHED" || !next.Assured || next.Timeout < 431990 {
				t.Errorf("kernel, original ACK after the reply: %s; want ESTABLISHED, ASSURED, 5 days", next.AppendJSON(nil))
			}
			for i := range recs {
				k, o := &recs[i], &ours[i]
				t.Logf("packet %d: kernel %s, tcpct %s", i, k.AppendJSON(nil), o.AppendJSON(nil))
				if k.CT != o.CT || k.Dir != o.Dir || k.State != o.State || k.Assured != o.Assured || k.SeenReply != o.SeenReply ||
					k.Timeout+1 < o.Timeout || o.Timeout+1 < k.Timeout {
					t.Errorf("packet %d: kernel %s, tcpct %s", i, k.AppendJSON(nil), o.AppendJSON(nil))
				}
			}
		})
	}
}

// replyBeforeSeenReply runs the script of TestKernelReplyWindowBeforeSeenReply
// through the kernel and through fsm.Machine, and returns both answers as
// kernel records (tcpct's reasons left out).
func replyBeforeSeenReply(t *testing.T, clear bool) (recs, ours []kernel.Record) {
	c := netip.MustParseAddrPort("127.1.0.1:40000")
	s := netip.MustParseAddrPort("127.2.0.1:80")
	steps := []packet.Segment{
		{Src: c, Dst: s, Seq: 1000, Ack: 5000, Flags: packet.ACK, Window: 502},
		{Src: s, Dst: c, Seq: 5000, Ack: 1000 + 100000, Flags: packet.ACK, Window: 509},
		{Src: s, Dst: c, Seq: 5000, Ack: 1000, Flags: packet.ACK, Window: 509},
		{Src: c, Dst: s, Seq: 1000, Ack: 5000, Flags: packet.ACK, Window: 502},
	}
	r, err := kernel.New(kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := fsm.NewMachine(fsm.Linux)
	var conn fsm.Conn
	var cp capture.Packet
	var seg fsm.Segment
	start := time.Now()
	for i, st := range steps {
		if i == 1 && clear {
			if err := r.SetTCPFlags(c, s, true, uint8(fsm.FlagBeLiberal), 0); err != nil {
				t.Fatal(err)
			}
			conn.Seen[fsm.Reply].Flags &^= fsm.FlagBeLiberal
		}
		b, err := st.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		// Paced as a trace would be: 100 ms apart on both clocks.
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		time.Sleep(time.Until(at))
		rec, err := r.Inject(i, b)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)

		cp.Decode(capture.LinkRaw, b, len(b))
		fsm.ParseSegmentInto(&seg, cp.TCP, cp.IPPayloadLen)
		dir := fsm.Original
		if st.Src == s {
			dir = fsm.Reply
		}
		now := at.UnixNano()
		v := m.Step(&conn, &seg, dir, now)
		o := kernel.Record{I: i, CT: v.CT.String()}
		if v.CT != fsm.CTInvalid {
			o.Dir = "original"
			if v.Dir == fsm.Reply {
				o.Dir = "reply"
			}
		}
		if conn.Live() {
			o.HasEntry, o.State = true, m.Profile().StateName(conn.State)
			o.Timeout = uint32((conn.Deadline - now) / int64(time.Second))
			o.Assured, o.SeenReply = conn.Assured(), conn.SeenReply()
		}
		ours = append(ours, o)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return recs, ours
}
