package table

import (
	"bytes"
	"net/netip"
	"testing"
)

// The lines below are the kernel's and libnetfilter_conntrack's formats:
// ct_seq_show() in net/netfilter/nf_conntrack_standalone.c (Linux 6.18) and
// __snprintf_conntrack_default() in libnetfilter_conntrack's
// src/conntrack/snprintf_default.c.
func TestFormatKernelLines(t *testing.T) {
	tb := newTable(t, 4)
	k := KeyFromAddrPorts(netip.MustParseAddrPort("192.168.1.5:1031"), netip.MustParseAddrPort("192.168.1.35:23"))
	const now = 1000 * sec
	est := mustInsert(t, tb, k, mkval(1), Meta{Deadline: now + 431999*sec + sec/2, State: stEstablished, Flags: Assured | SeenReply}, now)
	s, _, ok := tb.Get(k.Reverse(), now)
	if !ok || s.Ref != est {
		t.Fatal("Get")
	}
	e := tb.Entry(&s, now)

	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	check("proc", string(AppendProc(nil, &e)),
		"ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] mark=0 zone=0 use=2\n")
	check("conntrack -L", string(AppendConntrack(nil, &e)),
		"tcp      6 431999 ESTABLISHED src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] mark=0 use=1\n")
	check("proc 2.4", string(AppendProc24(nil, &e)),
		"tcp 6 431999 ESTABLISHED src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 [ASSURED] use=1\n")

	syn := Entry{Key: k, State: StateName(testStates, stSynSent), Timeout: SecondsLeft(now+117*sec, now)}
	check("proc 2.4 SYN_SENT", string(AppendProc24(nil, &syn)),
		"tcp 6 117 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 use=1\n")
	syn.Timeout = 120
	check("event NEW", string(AppendEvent(nil, EventNew, &syn)),
		"    [NEW] tcp      6 120 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031\n")
	syn.Mark = 7
	check("event with mark", string(AppendEvent(nil, EventUpdate, &syn)),
		" [UPDATE] tcp      6 120 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 mark=7\n")
	check("proc with mark", string(AppendProc(nil, &syn)),
		"ipv4     2 tcp      6 120 SYN_SENT src=192.168.1.5 dst=192.168.1.35 sport=1031 dport=23 [UNREPLIED] src=192.168.1.35 dst=192.168.1.5 sport=23 dport=1031 mark=7 zone=0 use=2\n")

	// The calico example (86400 s established timeout).
	ck := KeyFromAddrPorts(netip.MustParseAddrPort("10.8.6.97:46128"), netip.MustParseAddrPort("10.11.249.108:80"))
	ce := Entry{Key: ck, State: "ESTABLISHED", Timeout: 86400, Flags: Assured | SeenReply}
	// tcpct does no NAT, so the reply tuple is the exact reverse (calico's
	// reply source was the DNAT backend); only the original half is compared.
	got := string(AppendEvent(nil, EventUpdate, &ce))
	if want := " [UPDATE] tcp      6 86400 ESTABLISHED src=10.8.6.97 dst=10.11.249.108 sport=46128 dport=80 src=10.11.249.108 dst=10.8.6.97 sport=80 dport=46128 [ASSURED]\n"; got != want {
		t.Errorf("calico line:\n got %q\nwant %q", got, want)
	}

	// IPv6: /proc prints %pI6 (full, zero-padded groups), conntrack -L
	// prints inet_ntop's compressed form.
	k6 := KeyFromAddrPorts(netip.MustParseAddrPort("[2001:db8::5]:40000"), netip.MustParseAddrPort("[2001:db8::35]:443"))
	e6 := Entry{Key: k6, State: "TIME_WAIT", Timeout: 119, Flags: Assured | SeenReply}
	check("proc ipv6", string(AppendProc(nil, &e6)),
		"ipv6     10 tcp      6 119 TIME_WAIT src=2001:0db8:0000:0000:0000:0000:0000:0005 dst=2001:0db8:0000:0000:0000:0000:0000:0035 sport=40000 dport=443 src=2001:0db8:0000:0000:0000:0000:0000:0035 dst=2001:0db8:0000:0000:0000:0000:0000:0005 sport=443 dport=40000 [ASSURED] mark=0 zone=0 use=2\n")
	check("conntrack -L ipv6", string(AppendConntrack(nil, &e6)),
		"tcp      6 119 TIME_WAIT src=2001:db8::5 dst=2001:db8::35 sport=40000 dport=443 src=2001:db8::35 dst=2001:db8::5 sport=443 dport=40000 [ASSURED] mark=0 use=1\n")

	// Writers produce the same bytes.
	var buf bytes.Buffer
	if err := FormatProc(&buf, &e); err != nil {
		t.Fatal(err)
	}
	if err := FormatConntrack(&buf, &e); err != nil {
		t.Fatal(err)
	}
	if err := FormatProc24(&buf, &e); err != nil {
		t.Fatal(err)
	}
	if err := FormatEvent(&buf, EventDestroy, &e); err != nil {
		t.Fatal(err)
	}
	want := string(AppendProc(nil, &e)) + string(AppendConntrack(nil, &e)) + string(AppendProc24(nil, &e)) + string(AppendEvent(nil, EventDestroy, &e))
	if buf.String() != want {
		t.Errorf("Format* wrote %q", buf.String())
	}
}

func TestStateNameAndTimeout(t *testing.T) {
	if StateName(testStates, stEstablished) != "ESTABLISHED" || StateName(testStates, 200) != "NONE" || StateName(nil, 0) != "NONE" {
		t.Fatal("StateName")
	}
	// Whole jiffies (4 ms at HZ=250) left, rounded up, then truncated to
	// seconds: less than a jiffy short of 10 s still shows 10.
	const jf = sec / 250
	for _, c := range []struct{ dl, now, want int64 }{
		{10 * sec, 0, 10}, {10*sec - 1, 0, 10}, {10*sec - jf + 1, 0, 10}, {10*sec - jf, 0, 9}, {10*sec - 5*jf/2, 0, 9},
		{5, 5, 0}, {5, 6, 0}, {sec, 0, 1}, {sec - 1, 0, 1}, {sec - jf, 0, 0}, {1, 0, 0},
		{120*sec + 7*jf, 7 * jf, 120}, {120*sec + 7*jf, 7*jf + 100_000, 120}, {120*sec + 7*jf, 8*jf + 1, 119},
	} {
		if got := SecondsLeft(c.dl, c.now); got != c.want {
			t.Errorf("SecondsLeft(%d, %d) = %d, want %d", c.dl, c.now, got, c.want)
		}
	}
	if ReasonExpired.String() != "expired" || ReasonKilled.String() != "killed" || ReasonEvicted.String() != "evicted" ||
		EventNew.String() != "NEW" || EventUpdate.String() != "UPDATE" || EventDestroy.String() != "DESTROY" ||
		Inserted.String() != "inserted" || Dropped.String() != "dropped" || Reply.String() != "reply" || Original.String() != "original" {
		t.Fatal("String methods")
	}
}

// Rendering a line allocates nothing when the buffer has room.
func TestFormatAllocs(t *testing.T) {
	k := key4(1)
	e := Entry{Key: k, State: "ESTABLISHED", Timeout: 5, Flags: Assured | SeenReply}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = AppendProc(buf[:0], &e) }); n != 0 {
		t.Errorf("AppendProc allocates %v", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendConntrack(buf[:0], &e) }); n != 0 {
		t.Errorf("AppendConntrack allocates %v", n)
	}
}
