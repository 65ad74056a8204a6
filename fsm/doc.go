// Package fsm runs one TCP segment through a conntrack profile and says
// what the tracker decides: the packet's conntrack state (NEW, ESTABLISHED,
// INVALID), the connection's old and new TCP state, the timeout to set, and
// what happens to the entry (created, updated, deleted, recreated, left
// alone).
//
// The transition tables are generated from spec/ into zz_profiles.go (see
// gen/); everything around them is written by hand here:
//
//   - segment.go parses the TCP header and options (no allocation);
//   - machine.go is what both profiles share: knobs, flag checks,
//     classification, which first packets may create an entry, and the
//     conntrack state (NEW, ESTABLISHED, INVALID) of an accepted packet;
//   - linux.go is the per-packet logic of the linux profile: the table
//     lookup, the special cells (reopen, resync after an ignored SYN,
//     RFC 5961 challenge ACKs, simultaneous open), RST validation,
//     SEEN_REPLY/ASSURED bookkeeping and the timeout rules, following
//     nf_conntrack_tcp_packet() in net/netfilter/nf_conntrack_proto_tcp.c
//     (Linux 6.18);
//   - window.go is tcp_in_window(): the four sequence bounds and the state
//     they maintain per direction;
//   - tutorial.go is the 2.4.0 tracker the Iptables Tutorial describes.
//
// A Machine is a profile plus knob values. Its Step method is pure with
// respect to everything but the Conn it is given: callers own the storage
// (table/ keeps Conns in a pointer-free arena) and serialise packets of
// one connection. Step does not allocate.
package fsm
