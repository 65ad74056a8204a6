/*
 * tcpct_types.h: the data of the C tracker step, laid out field for field
 * like fsm.Conn, fsm.Segment and fsm.Verdict of the Go module, so that the
 * differential test can compare them field by field and a C data plane can
 * keep a struct tcpct_conn in its own table.
 *
 * No system header is included: the host C compiler and clang's BPF target
 * (-target bpf) both accept this file as it is.
 */
#ifndef TCPCT_TYPES_H
#define TCPCT_TYPES_H

typedef unsigned char tcpct_u8;
typedef unsigned short tcpct_u16;
typedef unsigned int tcpct_u32;
typedef int tcpct_s32;
typedef long long tcpct_s64;
typedef unsigned long long tcpct_u64;

#ifndef TCPCT_INLINE
#define TCPCT_INLINE static inline __attribute__((always_inline))
#endif

/* Directions (fsm.Dir): relative to the connection's first packet. */
#define TCPCT_ORIGINAL 0
#define TCPCT_REPLY 1

/* TCP header flags (the 14th header byte). */
#define TCPCT_FIN 0x01
#define TCPCT_SYN 0x02
#define TCPCT_RST 0x04
#define TCPCT_PSH 0x08
#define TCPCT_ACK 0x10

/* Conntrack state a rule sees (fsm.CT); 0 is no state (fsm.CTNone). */
#define TCPCT_CT_NONE 0
#define TCPCT_CT_NEW 1
#define TCPCT_CT_ESTABLISHED 2
#define TCPCT_CT_RELATED 3
#define TCPCT_CT_INVALID 4
#define TCPCT_CT_UNTRACKED 5

/* What the caller does with its table entry (fsm.Action). */
#define TCPCT_ACTION_NONE 0
#define TCPCT_ACTION_CREATE 1
#define TCPCT_ACTION_UPDATE 2
#define TCPCT_ACTION_DELETE 3
#define TCPCT_ACTION_RECREATE 4

/* Connection status bits (fsm.Status; the kernel's ct->status). */
#define TCPCT_CONFIRMED 0x01
#define TCPCT_SEEN_REPLY 0x02
#define TCPCT_ASSURED 0x04

/* Per-direction flags (fsm.PeerFlags; the uapi IP_CT_TCP_FLAG_* values). */
#define TCPCT_FLAG_WINDOW_SCALE 0x01
#define TCPCT_FLAG_SACK_PERM 0x02
#define TCPCT_FLAG_CLOSE_INIT 0x04
#define TCPCT_FLAG_BE_LIBERAL 0x08
#define TCPCT_FLAG_DATA_UNACKED 0x10
#define TCPCT_FLAG_MAXACK_SET 0x20
/* last_flags only: a SYN in LAST_ACK may be answered by a challenge ACK;
 * SYNs crossed. */
#define TCPCT_LAST_CHALLENGE_ACK 0x40
#define TCPCT_LAST_SIMULTANEOUS 0x80

/* Raw table outcomes (spec.OutInvalid, spec.OutIgnore, fsm.CellNone). */
#define TCPCT_OUT_INVALID 0xfe
#define TCPCT_OUT_IGNORE 0xff
#define TCPCT_CELL_NONE 0xfd

/* spec.Compiled's Create, Features and Assured encodings. */
#define TCPCT_CREATE_NEVER 0
#define TCPCT_CREATE_ALWAYS 1
#define TCPCT_CREATE_KNOB_BASE 2
#define TCPCT_NO_KNOB 0xff
#define TCPCT_FEATURE_WINDOW_TRACKING 0x01
#define TCPCT_FEATURE_SYN_RETRANSMIT_KEEPS_TIMER 0x02
#define TCPCT_FEATURE_REOPEN_KILLS 0x04
#define TCPCT_FEATURE_TIMEOUT_CAPS 0x08
#define TCPCT_ASSURED_AFTER_REPLY 0
#define TCPCT_ASSURED_HANDSHAKE_ACK 1

#define TCPCT_MAX_STATES 16
#define TCPCT_MAX_CLASSES 8
#define TCPCT_SECOND 1000000000LL
/* The largest TCP header, and the buffer size tcpct_parse_segment reads. */
#define TCPCT_MAX_HDR 60
#define TCPCT_HDR_BUF 64

/* One direction's sender (fsm.Peer; the kernel's struct ip_ct_tcp_state). */
struct tcpct_peer {
	tcpct_u32 end;    /* highest seq+len sent (td_end) */
	tcpct_u32 maxend; /* highest ack+window the receiver allowed (td_maxend) */
	tcpct_u32 maxwin; /* largest window advertised (td_maxwin) */
	tcpct_u32 maxack; /* highest ACK sent (td_maxack) */
	tcpct_u8 scale;   /* window scale shift (td_scale) */
	tcpct_u8 flags;   /* TCPCT_FLAG_* */
	tcpct_u8 pad[2];
};

/* The tracker's whole state of one connection (fsm.Conn), 80 bytes. The
 * all-zero value means "no entry". */
struct tcpct_conn {
	struct tcpct_peer seen[2]; /* indexed by direction */
	tcpct_s64 deadline;        /* expiry, in the clock's nanoseconds */
	tcpct_u32 last_seq;
	tcpct_u32 last_ack;
	tcpct_u32 last_end;
	tcpct_u32 handshake_ack; /* tutorial profile only */
	tcpct_u16 last_win;
	tcpct_u8 state;
	tcpct_u8 status;     /* TCPCT_CONFIRMED | TCPCT_SEEN_REPLY | TCPCT_ASSURED */
	tcpct_u8 last_index; /* class of the last packet that passed or was ignored */
	tcpct_u8 last_dir;
	tcpct_u8 last_flags; /* options of an ignored SYN, plus TCPCT_LAST_* */
	tcpct_u8 last_wscale;
	tcpct_u8 retrans;
	tcpct_u8 pad[7];
};

/* What the tracker reads from one TCP header (fsm.Segment). */
struct tcpct_segment {
	tcpct_u32 seq, ack;
	tcpct_u32 len; /* payload length per the IP header */
	tcpct_u16 win;
	tcpct_u8 flags;
	tcpct_u8 hdrlen;
	tcpct_u8 has_options; /* data offset > 5 */
	tcpct_u8 has_wscale;
	tcpct_u8 wscale; /* capped at 14 */
	tcpct_u8 sack_perm;
	tcpct_u8 num_sack;
	tcpct_u8 malformed; /* a TCPCT_REASON_*, 0 when the header is usable */
	tcpct_u8 pad[2];
	tcpct_u32 sack_edges[4];
};

/* The outcome of one packet (fsm.Verdict). */
struct tcpct_verdict {
	tcpct_s64 timeout; /* ns, when refreshed */
	tcpct_u8 ct;
	tcpct_u8 dir;
	tcpct_u8 cls;
	tcpct_u8 old_state;
	tcpct_u8 new_state;
	tcpct_u8 cell; /* raw table outcome, TCPCT_CELL_NONE if not consulted */
	tcpct_u8 action;
	tcpct_u8 refreshed;
	tcpct_u8 accounted;
	tcpct_u8 ignored;
	tcpct_u8 expired;
	tcpct_u8 reason;
	tcpct_u8 pad[4];
};

/* The knobs, derived into what the step reads (fsm.Machine.derive). */
struct tcpct_config {
	tcpct_s64 timeout[TCPCT_MAX_STATES]; /* ns, per state */
	tcpct_s64 retrans_timeout;           /* ns */
	tcpct_s64 unack_timeout;             /* ns */
	tcpct_u8 create[TCPCT_MAX_CLASSES];  /* per class: a first packet may create an entry */
	tcpct_u8 be_liberal;
	tcpct_u8 ignore_invalid_rst;
	tcpct_u8 max_retrans;
	tcpct_u8 pad[5];
};

#endif /* TCPCT_TYPES_H */
