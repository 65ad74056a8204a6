package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fdac824a/tcpct/capture"
	"github.com/fdac824a/tcpct/packet"
	"github.com/fdac824a/tcpct/table"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jsonlSchema compiles docs/jsonl.schema.json with format assertions on
// (date-time, ipv4, ipv6).
func jsonlSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile("../../docs/jsonl.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return compileSchema(t, "jsonl.schema.json", data)
}

// schemaCaptures are captures whose records cover every field: the seed
// (ARP records, a whole connection), 600 generated connections (IPv4 and
// IPv6, RSTs, INVALID packets, expiry), a table of 3 entries, a table of
// one that drops a SYN, an ignored SYN, a truncated TCP header (no ports), and the seed with a
// 2-second SYN_SENT timeout (an INVALID packet with no entry).
func schemaCaptures(t *testing.T) map[string][]string {
	t.Helper()
	seed, err := os.ReadFile(seedPcap)
	if err != nil {
		t.Fatal(err)
	}
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	trunc := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	}, map[int]int{1: 10})
	multi := multiConnCapture(t, 600, 7)
	// An assured connection fills a table of one; the next SYN is dropped.
	other := netip.MustParseAddrPort("[2001:db8::7]:40001")
	srv6 := netip.MustParseAddrPort("[2001:db8::2]:80")
	full := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
		{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: packet.ACK, Window: 502},
		{Src: other, Dst: srv6, Seq: 1, Flags: packet.SYN, Window: 64240},
	}, nil)
	// A SYN retransmitted in SYN_RECV is ignored.
	ignored := rawCapture(t, []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
	}, nil)
	run := func(data []byte, args ...string) string {
		code, out, errs := runCmd(t, data, append(append([]string{"replay", "-format", "jsonl"}, args...), "-")...)
		if code != 0 {
			t.Fatalf("%v: status %d, stderr %q", args, code, errs)
		}
		return out
	}
	return map[string][]string{
		"seed":          {run(seed)},
		"seed syn 2s":   {run(seed, "-sysctl", "tcp_timeout_syn_sent=2")},
		"seed tutorial": {run(seed, "-profile", "tutorial")},
		"multi":         {run(multi)},
		"multi max=3":   {run(multi, "-sysctl", "max=3")},
		"truncated":     {run(trunc)},
		"table full":    {run(full, "-sysctl", "max=1")},
		"ignored":       {run(ignored)},
		"icmp":          {run(icmpCapture(t))},
	}
}

// TestJSONLSchema: every record of several captures validates against
// docs/jsonl.schema.json, and together they use every field it names, so
// that the schema cannot list a field tcpct never writes (or lack one it
// writes: additionalProperties is false).
func TestJSONLSchema(t *testing.T) {
	s := jsonlSchema(t)
	seen := map[string]bool{}
	for name, outs := range schemaCaptures(t) {
		for _, out := range outs {
			sc := bufio.NewScanner(strings.NewReader(out))
			n := 0
			for sc.Scan() {
				n++
				inst, err := jsonschema.UnmarshalJSON(strings.NewReader(sc.Text()))
				if err != nil {
					t.Fatalf("%s: line %d: %v", name, n, err)
				}
				if err := s.Validate(inst); err != nil {
					t.Errorf("%s: line %d does not validate: %v\n%s", name, n, err, sc.Text())
				}
				for k := range inst.(map[string]any) {
					seen[k] = true
				}
			}
			if n == 0 {
				t.Errorf("%s: no records", name)
			}
		}
	}
	for _, f := range jsonlFieldNames {
		key := f.name
		if key == "icmp" {
			key = "icmp_type" // -fields icmp prints icmp_type and icmp_code
		}
		if !seen[key] || (key == "icmp_type" && !seen["icmp_code"]) {
			t.Errorf("no record of the test captures has %q: the test does not cover the schema", f.name)
		}
	}
}

// TestJSONLSchemaRejects: the schema is not vacuous: records with a
// field missing, a stray field, a bad time, or an address of the other
// family fail.
func TestJSONLSchemaRejects(t *testing.T) {
	s := jsonlSchema(t)
	good := `{"i":2,"frame":3,"time":"2006-11-24T10:00:00.000000000Z","family":"ipv4","src":"192.168.1.5","dst":"192.168.1.35","sport":1031,"dport":23,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120,"class":"syn","old":"NONE","action":"create"}`
	for _, c := range []struct{ name, from, to string }{
		{"no time", `"time":"2006-11-24T10:00:00.000000000Z",`, ``},
		{"stray field", `"i":2,`, `"i":2,"x":1,`},
		{"microseconds", `00.000000000Z`, `00.000000Z`},
		{"ipv6 in ipv4", `"src":"192.168.1.5"`, `"src":"2001:db8::1"`},
		{"INVALID with dir", `"ct":"NEW"`, `"ct":"INVALID","reason":"x"`},
		{"state without timeout", `,"timeout":120`, ``},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if s.Validate(inst) == nil {
			t.Errorf("%s: the schema accepts %s", c.name, bad)
		}
	}
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(good))
	if err := s.Validate(inst); err != nil {
		t.Errorf("the good record fails: %v", err)
	}
}

// TestJSONLStandsAlone: each record's frame, time and tuple are those of
// its record in the capture, as the capture reader (Wireshark's
// numbering: frame = index + 1) gives them, with no join.
func TestJSONLStandsAlone(t *testing.T) {
	data := multiConnCapture(t, 200, 3)
	r, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		frame            int
		time             string
		family, src, dst string
		sport, dport     int
	}
	want := map[int]rec{}
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		if p.Kind != capture.KindTCP {
			continue
		}
		fam := "ipv4"
		if p.Src.Is6() {
			fam = "ipv6"
		}
		want[p.Index] = rec{p.Index + 1, p.Timestamp().Format("2006-01-02T15:04:05.000000000Z"), fam, p.Src.String(), p.Dst.String(), int(p.SrcPort), int(p.DstPort)}
	}
	code, out, errs := runCmd(t, data, "replay", "-format", "jsonl", "-j", "2", "-")
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var got struct {
			I, Frame         int
			Time             string
			Family, Src, Dst string
			Sport, Dport     int
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		w, ok := want[got.I]
		if !ok {
			t.Fatalf("record %d is not a TCP packet of the capture", got.I)
		}
		if g := (rec{got.Frame, got.Time, got.Family, got.Src, got.Dst, got.Sport, got.Dport}); g != w {
			t.Errorf("record %d: got %+v, want %+v", got.I, g, w)
		}
		n++
	}
	if n != len(want) {
		t.Errorf("%d records, want %d", n, len(want))
	}
}

// TestJSONLFields: -fields classic prints the records as they were before
// frame, time and the tuple (the golden file of the seed, kept from
// then); a list prints those fields only; an unknown name is a usage
// error naming it.
func TestJSONLFields(t *testing.T) {
	code, out, _ := runCmd(t, nil, "replay", "-format", "jsonl", "-fields", "classic", seedPcap)
	golden(t, "linux-classic.jsonl", out)
	if code != 0 || strings.Contains(out, `"frame"`) || !strings.HasPrefix(out, `{"i":2,"ct":"NEW","dir":"original","state":"SYN_SENT","timeout":120,"class":"syn","old":"NONE","action":"create"}`) {
		t.Errorf("classic: status %d, output:\n%s", code, out)
	}
	code, out, _ = runCmd(t, nil, "replay", "-format", "jsonl", "-fields", "frame,tuple,ct", seedPcap)
	first, _, _ := strings.Cut(out, "\n")
	if want := `{"frame":3,"family":"ipv4","src":"192.168.1.5","dst":"192.168.1.35","sport":1031,"dport":23,"ct":"NEW"}`; code != 0 || first != want {
		t.Errorf("frame,tuple,ct: status %d, first line %s, want %s", code, first, want)
	}
	code, _, errs := runCmd(t, nil, "replay", "-format", "jsonl", "-fields", "frame,port", seedPcap)
	if code != exitUsage || !strings.Contains(errs, `-fields: unknown field "port"`) {
		t.Errorf("unknown field: status %d, stderr %q", code, errs)
	}
	code, _, errs = runCmd(t, nil, "replay", "-format", "proc", "-fields", "classic", seedPcap)
	if code != exitUsage || !strings.Contains(errs, "-fields selects jsonl fields") {
		t.Errorf("-fields with proc: status %d, stderr %q", code, errs)
	}
}

// TestJSONLTimeHeldClock: a packet stamped earlier than the one before it
// is tracked at that one's time (the clock never goes back), but its
// record carries its own stamp.
func TestJSONLTimeHeldClock(t *testing.T) {
	var jw jsonlWriter
	for _, c := range []struct {
		ns   int64
		want string
	}{
		{time.Date(2006, 11, 24, 10, 0, 0, 5, time.UTC).UnixNano(), `"2006-11-24T10:00:00.000000005Z"`},
		{time.Date(2006, 11, 24, 10, 0, 0, 999999999, time.UTC).UnixNano(), `"2006-11-24T10:00:00.999999999Z"`},
		{time.Date(2006, 11, 24, 10, 0, 1, 0, time.UTC).UnixNano(), `"2006-11-24T10:00:01.000000000Z"`},
		{time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC).UnixNano(), `"1969-12-31T23:59:59.500000000Z"`},
	} {
		if got := string(jw.appendTime(nil, c.ns)); got != c.want {
			t.Errorf("%d: %s, want %s", c.ns, got, c.want)
		}
	}
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	segs := []packet.Segment{
		{Src: cli, Dst: srv, Seq: 100, Flags: packet.SYN, Window: 64240},
		{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: packet.SYN | packet.ACK, Window: 64240},
	}
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, s := range segs {
		b, _ := s.Append(nil)
		w.WritePacket(t0.Add(-time.Duration(i)*time.Second), b) // the second is stamped 1 s earlier
	}
	code, out, _ := runCmd(t, buf.Bytes(), "replay", "-format", "jsonl", "-")
	if code != 0 || !strings.Contains(out, `"frame":2,"time":"2024-05-01T11:59:59.000000000Z"`) {
		t.Errorf("status %d, output:\n%s", code, out)
	}
}

// TestJSONLTimeAndAddrFormat checks the hand-written formatters against
// the time and netip packages over a spread of instants and addresses.
func TestJSONLTimeAndAddrFormat(t *testing.T) {
	var jw jsonlWriter
	for _, ns := range []int64{0, 1, -1, 951782400e9 + 123, 4102444799e9 + 999999999, -2208988800e9, 1164362400e9, 1709164800e9 + 5e8, 9e18} {
		tm := time.Unix(0, ns).UTC()
		want := `"` + tm.Format("2006-01-02T15:04:05.000000000Z") + `"`
		if got := string(jw.appendTime(nil, ns)); got != want {
			t.Errorf("%d: %s, want %s", ns, got, want)
		}
	}
	for d := int64(-800000); d < 800000; d += 997 {
		sec := d * 86400
		tm := time.Unix(sec, 0).UTC()
		if tm.Year() < 0 || tm.Year() > 9999 {
			continue
		}
		if got, want := string(appendDateTime(nil, sec)), tm.Format("2006-01-02T15:04:05."); got != want {
			t.Fatalf("day %d: %s, want %s", d, got, want)
		}
	}
	for _, s := range []string{"0.0.0.0", "1.2.3.4", "10.99.100.255", "192.168.1.35", "2001:db8::1", "::ffff:1.2.3.4"} {
		a := netip.MustParseAddr(s)
		fam, b := uint8(table.FamilyIPv6), addrBytes(a)
		if a.Is4() {
			fam = table.FamilyIPv4
		}
		if got := string(appendAddr(nil, fam, &b)); got != a.String() {
			t.Errorf("%s: %s", s, got)
		}
	}
}
