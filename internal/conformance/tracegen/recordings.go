package tracegen

import "time"

// Recording is one kernel trace kept in tcpcttest/testdata: the generator
// configuration that makes its packets and the sysctls the kernel ran
// with. The recorder (internal/conformance/kernel), the differential tests
// (conformance), the invariant suite (invariant) and the conformance kit
// (tcpcttest.Variants, which leaves out cells and embeds copies of the
// other traces) all read this list.
type Recording struct {
	Name   string
	Config Config
	// Sysctls are "NAME=VALUE" with sysctl names as under
	// /proc/sys/net/netfilter/ without the nf_conntrack_ prefix.
	Sysctls []string
}

// Recordings are the recorded variants, in tcpcttest/testdata/README.md order.
var Recordings = []Recording{
	{"default", Config{Seed: 101, Packets: 4000}, nil},
	{"loose0", Config{Seed: 102, Packets: 4000}, []string{"tcp_loose=0"}},
	{"be_liberal", Config{Seed: 103, Packets: 4000}, []string{"tcp_be_liberal=1"}},
	{"ignore_invalid_rst", Config{Seed: 104, Packets: 4000}, []string{"tcp_ignore_invalid_rst=1"}},
	{"max_retrans1", Config{Seed: 105, Packets: 4000}, []string{"tcp_max_retrans=1"}},
	// Pauses of 1.3 s expire 1 s entries after one pause, 2 s entries
	// after two and 3 s entries after three, each with 0.3 s to spare.
	{"short_timeouts", Config{Seed: 106, Packets: 3000, Pause: 1300 * time.Millisecond, MaxPauses: 8}, []string{
		"tcp_timeout_close=1", "tcp_timeout_close_wait=1", "tcp_timeout_established=3",
		"tcp_timeout_fin_wait=2", "tcp_timeout_last_ack=1", "tcp_timeout_max_retrans=2",
		"tcp_timeout_syn_recv=1", "tcp_timeout_syn_sent=2", "tcp_timeout_time_wait=2",
		"tcp_timeout_unacknowledged=2"}},
	// An in-window probe of every (direction, class, state) the tracker
	// can be in, in batches separated by pauses (Config.Cells).
	{"cells", Config{Seed: 107, Packets: 3000, Cells: true}, nil},
}
