package main

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
)

// The seed's two ways a connection ends: "When the TCP connection has been
// closed down, the connection enters the TIME_WAIT state, which is per
// default set to 2 minutes", and an RST moves it to CLOSE for 10 s
// (Table 7-2).
func TestTutorialSeedCloses(t *testing.T) {
	// FIN close: the example capture ends with the last ACK.
	want := "tcp 6 120 TIME_WAIT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] use=1\n"
	if code, out, errs := runCmd(t, nil, "replay", "-profile", "tutorial", "-format", "proc", seedPcap); code != 0 || out != want {
		t.Errorf("FIN close: status %d, stderr %q\n got %q\nwant %q", code, errs, out, want)
	}

	// RST close: the same handshake, then the client resets.
	c := netip.MustParseAddrPort("192.168.1.5:1031")
	s := netip.MustParseAddrPort("192.168.1.35:23")
	start := time.Date(2006, 11, 24, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 65535)
	if err != nil {
		t.Fatal(err)
	}
	for i, seg := range []packet.Segment{
		{Src: c, Dst: s, Seq: 100, Flags: packet.SYN, Window: 5840},
		{Src: s, Dst: c, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 5792},
		{Src: c, Dst: s, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 5840},
		{Src: c, Dst: s, Seq: 101, Flags: packet.RST},
	} {
		b, err := seg.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(start.Add(time.Duration(i)*time.Second), b); err != nil {
			t.Fatal(err)
		}
	}
	want = "tcp 6 10 CLOSE src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] use=1\n"
	code, out, errs := runCmd(t, buf.Bytes(), "replay", "-profile", "tutorial", "-format", "proc", "-")
	if code != 0 || out != want {
		t.Errorf("RST close: status %d, stderr %q\n got %q\nwant %q", code, errs, out, want)
	}
	// Ten seconds later the entry is gone.
	if code, out, _ := runCmd(t, buf.Bytes(), "replay", "-profile", "tutorial", "-format", "proc", "-at", "+10s", "-"); code != 0 || out != "" {
		t.Errorf("RST close +10s: status %d, output %q, want an empty table", code, out)
	}
}
