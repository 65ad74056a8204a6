//go:build ignore

/*
 * tcpct.bpf.c: tcpct's linux-profile TCP tracker as an eBPF program, for TC
 * (ingress or egress) and XDP. The per-packet logic is the plain C step of
 * ../c/tcpct.h, the same text the differential tests hold to fsm.Machine.Step;
 * this file only parses Ethernet/IPv4/IPv6, keeps the connection table in a
 * BPF hash map and publishes each packet's verdict.
 *
 * The table: one entry per connection, found from either tuple. The key is
 * the tuple in a canonical order (the smaller address/port pair first) and
 * the entry remembers which order the original direction had, so a packet's
 * direction is whether its order matches.
 *
 * The clock: bpf_ktime_get_ns(), unless the clock map holds a non-zero
 * time, which is then used instead (tests replay recorded traces with their
 * own timestamps).
 *
 * The verdict of each tracked packet goes to the per-CPU verdict map (the
 * last packet of each CPU) and, when events are on, to the ring buffer.
 * The program never drops a packet: it returns TC_ACT_OK / XDP_PASS and
 * leaves the policy to whoever reads the verdicts (or to a program that
 * includes this file and acts on struct tcpct_bpf_verdict).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tcpct_types.h"
#include "zz_linux.h"

#define TC_ACT_OK 0

/* The canonical key: the smaller (address, port) endpoint first. */
struct tcpct_bpf_key {
	tcpct_u8 lo_addr[16];
	tcpct_u8 hi_addr[16];
	tcpct_u16 lo_port;
	tcpct_u16 hi_port;
	tcpct_u8 family; /* 4 or 6 */
	tcpct_u8 pad[3];
};

/* A table entry: the tracker's state and which endpoint sent the first
 * packet. */
struct tcpct_bpf_entry {
	struct tcpct_conn conn;
	tcpct_u8 orig_swapped; /* the original direction runs hi -> lo */
	tcpct_u8 pad[7];
};

/* What the program publishes for each packet it tracked. */
struct tcpct_bpf_verdict {
	tcpct_u64 seq; /* the clock map's seq when the packet ran (tests match on it) */
	struct tcpct_verdict v;
	tcpct_s64 now;
	tcpct_s64 deadline; /* of the entry after the packet, when has_entry */
	tcpct_u8 has_entry;
	tcpct_u8 state;  /* the entry's TCP state after the packet */
	tcpct_u8 status; /* TCPCT_CONFIRMED | TCPCT_SEEN_REPLY | TCPCT_ASSURED */
	tcpct_u8 tracked; /* 0: not TCP over IPv4/IPv6, or a fragment */
	tcpct_u8 pad[4];
};

/* The injected clock: now in ns (0: bpf_ktime_get_ns) and a sequence
 * number copied into the verdict. */
struct tcpct_bpf_clock {
	tcpct_s64 now;
	tcpct_u64 seq;
};

/* The knobs, indexed by TCPCT_LINUX_KNOB_*; events turns the ring buffer on. */
struct tcpct_bpf_knobs {
	tcpct_s64 knob[TCPCT_LINUX_NUM_KNOBS];
	tcpct_u64 events;
};

/* Per-CPU scratch space: too big for the 512-byte BPF stack together. */
struct tcpct_bpf_scratch {
	struct tcpct_config cfg;
	struct tcpct_conn conn;
	struct tcpct_segment seg;
	struct tcpct_bpf_verdict out;
	struct tcpct_conn fresh;
	struct tcpct_bpf_entry entry;
	struct tcpct_bpf_key key;
	tcpct_u8 src[16], dst[16];
	tcpct_u8 hdr[TCPCT_HDR_BUF];
};

/* The option parser's loop calls a global function (see below). */
int tcpct_bpf_option(struct tcpct_bpf_scratch *s, __u32 hdrlen, __u32 i);
#define TCPCT_BPF_SCRATCH_OF(p) \
	((struct tcpct_bpf_scratch *)((char *)(p) - __builtin_offsetof(struct tcpct_bpf_scratch, seg)))
#define TCPCT_PARSE_OPTION(s, hdr, hdrlen, i) tcpct_bpf_option(TCPCT_BPF_SCRATCH_OF(s), hdrlen, i)

#include "tcpct.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct tcpct_bpf_key);
	__type(value, struct tcpct_bpf_entry);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcpct_bpf_knobs);
} knobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcpct_bpf_clock);
} clock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcpct_bpf_verdict);
} verdict SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcpct_bpf_scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Exported for the Go loader's generated types. */
struct tcpct_bpf_verdict *unused_verdict __attribute__((unused));
struct tcpct_bpf_entry *unused_entry __attribute__((unused));

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6

/*
 * The parser and the step are global functions: the verifier checks each
 * once, on its own, with s as any memory of the scratch's size, instead of
 * once per path of the caller (which exceeds its budget).
 */
__attribute__((noinline)) int tcpct_bpf_option(struct tcpct_bpf_scratch *s, __u32 hdrlen, __u32 i)
{
	if (!s)
		return 0;
	return (int)tcpct_parse_option(&s->seg, s->hdr, hdrlen, i);
}

__attribute__((noinline)) int tcpct_bpf_parse(struct tcpct_bpf_scratch *s, __u32 caplen, __s32 l4len)
{
	if (!s)
		return 0;
	tcpct_parse_segment(&s->seg, s->hdr, caplen, l4len);
	return 0;
}

__attribute__((noinline)) int tcpct_bpf_step(struct tcpct_bpf_scratch *s, tcpct_u8 dir, tcpct_s64 now)
{
	if (!s)
		return 0;
	tcpct_linux_step_with(&s->cfg, &s->conn, &s->seg, dir, now, &s->out.v, &s->fresh);
	return 0;
}

__attribute__((noinline)) int tcpct_bpf_configure(struct tcpct_bpf_scratch *s, struct tcpct_bpf_knobs *kn)
{
	if (!s || !kn)
		return 0;
	tcpct_linux_configure(&s->cfg, kn->knob);
	return 0;
}

/* cmp16 compares two 16-byte addresses (a bounded loop). */
TCPCT_INLINE int tcpct_bpf_cmp(const tcpct_u8 *a, const tcpct_u8 *b)
{
	int i;
	for (i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	return 0;
}

/* track runs one frame from the Ethernet header on. */
TCPCT_INLINE void tcpct_bpf_track(void *data, void *data_end)
{
	__u32 zero = 0;
	struct tcpct_bpf_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct tcpct_bpf_knobs *kn = bpf_map_lookup_elem(&knobs, &zero);
	struct tcpct_bpf_clock *clk = bpf_map_lookup_elem(&clock, &zero);
	struct tcpct_bpf_verdict *out;
	struct tcpct_bpf_entry *e;
	struct tcpct_bpf_key *key;
	tcpct_u8 *src, *dst;
	tcpct_u8 *p = data, *tcp;
	tcpct_u16 sport, dport;
	tcpct_s32 l4len;
	tcpct_u32 caplen, i;
	int swapped, c;
	tcpct_u8 dir;
	tcpct_s64 now;

	if (!s || !kn || !clk)
		return;
	out = &s->out;
	*out = (struct tcpct_bpf_verdict){0};
	key = &s->key;
	*key = (struct tcpct_bpf_key){0};
	src = s->src;
	dst = s->dst;
	__builtin_memset(src, 0, 16);
	__builtin_memset(dst, 0, 16);
	out->seq = clk->seq;
	now = clk->now ? clk->now : (tcpct_s64)bpf_ktime_get_ns();
	out->now = now;

	if (p + ETH_HLEN > (tcpct_u8 *)data_end)
		goto publish;
	if (p[12] == (ETH_P_IP >> 8) && p[13] == (ETH_P_IP & 0xff)) {
		tcpct_u8 *ip = p + ETH_HLEN;
		tcpct_u32 ihl, total;
		if (ip + 20 > (tcpct_u8 *)data_end)
			goto publish;
		ihl = (ip[0] & 0x0f) * 4;
		total = (tcpct_u32)ip[2] << 8 | ip[3];
		/* Fragments other than the first, or with more to come, are not
		 * tracked here (the kernel reassembles first). */
		if (ip[9] != IPPROTO_TCP_ || (ip[6] & 0x3f) || ip[7] || ihl < 20 || total < ihl)
			goto publish;
		for (i = 0; i < 4; i++) {
			src[12 + i] = ip[12 + i];
			dst[12 + i] = ip[16 + i];
		}
		src[10] = src[11] = dst[10] = dst[11] = 0xff; /* v4-mapped */
		key->family = 4;
		tcp = ip + (ihl & 0x3c);
		l4len = (tcpct_s32)(total - ihl);
	} else if (p[12] == (ETH_P_IPV6 >> 8) && p[13] == (ETH_P_IPV6 & 0xff)) {
		tcpct_u8 *ip = p + ETH_HLEN;
		if (ip + 40 > (tcpct_u8 *)data_end)
			goto publish;
		if (ip[6] != IPPROTO_TCP_) /* extension headers: not tracked here */
			goto publish;
		for (i = 0; i < 16; i++) {
			src[i] = ip[8 + i];
			dst[i] = ip[24 + i];
		}
		key->family = 6;
		tcp = ip + 40;
		l4len = (tcpct_s32)((tcpct_u32)ip[4] << 8 | ip[5]);
	} else {
		goto publish;
	}

	/* Copy the TCP header (at most 60 bytes) for the parser. */
	caplen = 0;
	for (i = 0; i < TCPCT_MAX_HDR; i++) {
		if (tcp + i + 1 > (tcpct_u8 *)data_end)
			break;
		s->hdr[i] = tcp[i];
		caplen++;
	}
	if (l4len >= 0 && caplen > (tcpct_u32)l4len)
		caplen = (tcpct_u32)l4len; /* what follows the IP packet is padding */
	if (tcp + 4 > (tcpct_u8 *)data_end) {
		sport = dport = 0;
	} else {
		sport = (tcpct_u16)tcp[0] << 8 | tcp[1];
		dport = (tcpct_u16)tcp[2] << 8 | tcp[3];
	}
	out->tracked = 1;
	tcpct_bpf_parse(s, caplen, l4len);

	c = tcpct_bpf_cmp(src, dst);
	swapped = c > 0 || (c == 0 && sport > dport);
	if (swapped) {
		__builtin_memcpy(key->lo_addr, dst, 16);
		__builtin_memcpy(key->hi_addr, src, 16);
		key->lo_port = dport;
		key->hi_port = sport;
	} else {
		__builtin_memcpy(key->lo_addr, src, 16);
		__builtin_memcpy(key->hi_addr, dst, 16);
		key->lo_port = sport;
		key->hi_port = dport;
	}

	tcpct_bpf_configure(s, kn);
	e = bpf_map_lookup_elem(&conns, key);
	if (e && now - e->conn.deadline >= 0) {
		/* An expired entry is absent, as nf_conntrack_find() skips and
		 * reaps it (and tcpct's table.Lookup ignores it). */
		bpf_map_delete_elem(&conns, key);
		e = 0;
	}
	if (e) {
		s->conn = e->conn;
		dir = (tcpct_u8)swapped == e->orig_swapped ? TCPCT_ORIGINAL : TCPCT_REPLY;
	} else {
		s->conn = (struct tcpct_conn){0};
		dir = TCPCT_ORIGINAL;
	}
	tcpct_bpf_step(s, dir, now);

	switch (out->v.action) {
	case TCPCT_ACTION_UPDATE:
		if (e)
			e->conn = s->conn;
		break;
	case TCPCT_ACTION_DELETE:
		bpf_map_delete_elem(&conns, key);
		break;
	case TCPCT_ACTION_CREATE:
	case TCPCT_ACTION_RECREATE:
		/* A new entry (or one replacing an expired or reopened entry):
		 * this packet's direction is the original one. */
		s->entry.conn = s->conn;
		s->entry.orig_swapped = (tcpct_u8)swapped;
		if (bpf_map_update_elem(&conns, key, &s->entry, BPF_ANY) != 0)
			s->conn = (struct tcpct_conn){0}; /* table full: nothing stored */
		break;
	}
	if (s->conn.status & TCPCT_CONFIRMED) {
		out->has_entry = 1;
		out->state = s->conn.state;
		out->status = s->conn.status;
		out->deadline = s->conn.deadline;
	}

publish:
	out = bpf_map_lookup_elem(&verdict, &zero);
	if (out) {
		*out = s->out;
		if (kn->events)
			bpf_ringbuf_output(&events, out, sizeof(*out), 0);
	}
}

SEC("tc")
int tcpct_tc(struct __sk_buff *skb)
{
	tcpct_bpf_track((void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_OK;
}

SEC("xdp")
int tcpct_xdp(struct xdp_md *ctx)
{
	tcpct_bpf_track((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "tcpct";
