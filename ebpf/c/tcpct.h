/*
 * tcpct.h: the per-packet step of tcpct's "linux" profile in plain C.
 *
 * This is fsm.Machine.Step of the Go module (fsm/machine.go, fsm/linux.go,
 * fsm/window.go, fsm/segment.go), which restates nf_conntrack_tcp_packet(),
 * tcp_new(), tcp_in_window() and tcp_options() of
 * net/netfilter/nf_conntrack_proto_tcp.c (Linux 6.18) over the table that
 * gen/ compiles from spec/linux.spec into zz_linux.h. The differential test
 * in ../cstep holds it to fsm.Machine.Step field by field.
 *
 * Rules that make the same text valid for the host C compiler and for
 * clang -target bpf: no allocation, no recursion, no function pointers,
 * every loop bounded by a constant, every table index masked to its size,
 * no system header. Every function is inlined (TCPCT_INLINE).
 *
 * Use: fill a struct tcpct_config once with tcpct_linux_configure(), parse
 * each TCP header with tcpct_parse_segment(), look up the connection's
 * struct tcpct_conn (the zero value when there is none) and the direction
 * the packet matched, call tcpct_linux_step(), and do what the verdict's
 * action says to your table.
 */
#ifndef TCPCT_H
#define TCPCT_H

#include "tcpct_types.h"
#include "zz_linux.h"
#include "zz_reasons.h"

#if !(TCPCT_LINUX_FEATURES & TCPCT_FEATURE_WINDOW_TRACKING)
#error "tcpct.h implements the window-tracking step; the linux profile must have window-tracking"
#endif

/* Sequence number comparison modulo 2^32 (RFC 9293 §3.4). */
TCPCT_INLINE int tcpct_before(tcpct_u32 a, tcpct_u32 b) { return (tcpct_s32)(a - b) < 0; }
TCPCT_INLINE int tcpct_after(tcpct_u32 a, tcpct_u32 b) { return (tcpct_s32)(b - a) < 0; }
TCPCT_INLINE tcpct_u32 tcpct_max_u32(tcpct_u32 a, tcpct_u32 b) { return a > b ? a : b; }
/* w << shift as Go defines it (0 from 32 on); a parsed shift is at most 14. */
TCPCT_INLINE tcpct_u32 tcpct_shl(tcpct_u32 w, tcpct_u8 shift) { return shift >= 32 ? 0 : w << shift; }

/* ---------------------------------------------------------------------
 * Parsing (fsm.ParseSegment)
 */

#define TCPCT_OPT_EOL 0
#define TCPCT_OPT_NOP 1
#define TCPCT_OPT_WSCALE 3
#define TCPCT_OPT_SACK_PERM 4
#define TCPCT_OPT_SACK 5
#define TCPCT_OPT_TSTAMP 8
#define TCPCT_MAX_WSCALE 14

TCPCT_INLINE tcpct_u32 tcpct_be32(const tcpct_u8 *b, tcpct_u32 i)
{
	return (tcpct_u32)b[i & (TCPCT_HDR_BUF - 1)] << 24 | (tcpct_u32)b[(i + 1) & (TCPCT_HDR_BUF - 1)] << 16 |
	       (tcpct_u32)b[(i + 2) & (TCPCT_HDR_BUF - 1)] << 8 | (tcpct_u32)b[(i + 3) & (TCPCT_HDR_BUF - 1)];
}

/* tcpct_parse_option reads the option at hdr[i] (tcp_options() for window
 * scale and SACK-permitted, tcp_sack() for the first well-formed SACK
 * option) and returns the offset of the next one, or 0 where parsing stops:
 * at the end of the header, at EOL, at a length below 2 and at an option
 * running past the header. */
TCPCT_INLINE tcpct_u32 tcpct_parse_option(struct tcpct_segment *s, const tcpct_u8 *hdr, tcpct_u32 hdrlen, tcpct_u32 i)
{
	tcpct_u8 kind, size;
	if (i >= hdrlen)
		return 0;
	kind = hdr[i & (TCPCT_HDR_BUF - 1)];
	if (kind == TCPCT_OPT_EOL)
		return 0;
	if (kind == TCPCT_OPT_NOP)
		return i + 1;
	if (hdrlen - i < 2)
		return 0;
	size = hdr[(i + 1) & (TCPCT_HDR_BUF - 1)];
	if (size < 2 || size > hdrlen - i)
		return 0;
	if (kind == TCPCT_OPT_SACK_PERM && size == 2) {
		s->sack_perm = 1;
	} else if (kind == TCPCT_OPT_WSCALE && size == 3) {
		tcpct_u8 w = hdr[(i + 2) & (TCPCT_HDR_BUF - 1)];
		s->has_wscale = 1;
		s->wscale = w > TCPCT_MAX_WSCALE ? TCPCT_MAX_WSCALE : w;
	} else if (kind == TCPCT_OPT_SACK && s->num_sack == 0 && size >= 10 && (size - 2) % 8 == 0) {
		tcpct_u32 j;
		/* size <= 40, so at most four blocks. */
		for (j = 0; j < 4; j++) {
			if (2 + 8 * j + 8 > size)
				break;
			s->sack_edges[j] = tcpct_be32(hdr, i + 2 + 8 * j + 4);
			s->num_sack++;
		}
	}
	return i + size;
}

/* TCPCT_PARSE_OPTION is how the option loop calls tcpct_parse_option; an
 * eBPF program defines it to call a global function, which the verifier
 * checks once instead of once per path through the loop. */
#ifndef TCPCT_PARSE_OPTION
#define TCPCT_PARSE_OPTION(s, hdr, hdrlen, i) tcpct_parse_option(s, hdr, hdrlen, i)
#endif

/* The options hdr[20..hdrlen): the aligned timestamp alone (NOP NOP TS, on
 * nearly every segment of a modern connection) is skipped whole, as
 * tcp_sack()'s fast path does. */
TCPCT_INLINE void tcpct_parse_options(struct tcpct_segment *s, const tcpct_u8 *hdr, tcpct_u32 hdrlen)
{
	tcpct_u32 i = 20, k;
	if (hdrlen <= 20)
		return;
	s->has_options = 1;
	if (hdrlen == 32 && hdr[20] == TCPCT_OPT_NOP && hdr[21] == TCPCT_OPT_NOP && hdr[22] == TCPCT_OPT_TSTAMP &&
	    hdr[23] == 10)
		return;
	/* Every option takes at least one of the at most 40 option bytes. */
	for (k = 0; k < TCPCT_MAX_HDR - 20; k++) {
		i = TCPCT_PARSE_OPTION(s, hdr, hdrlen, i);
		if (i == 0)
			return;
	}
}

/*
 * tcpct_parse_segment reads a TCP header. hdr holds the first caplen bytes
 * of the TCP header (caplen may exceed 60; the buffer must have
 * TCPCT_HDR_BUF bytes, the ones past caplen are not used for decisions);
 * l4len is the TCP length the IP header announces (header plus payload). A
 * header the kernel calls truncated yields malformed = TCPCT_REASON_TRUNCATED;
 * one the capture cut short, TCPCT_REASON_NOT_CAPTURED.
 */
TCPCT_INLINE void tcpct_parse_segment(struct tcpct_segment *s, const tcpct_u8 *hdr, tcpct_u32 caplen, tcpct_s32 l4len)
{
	tcpct_u32 h;
	*s = (struct tcpct_segment){0};
	if (caplen < 20 || l4len < 20) {
		s->malformed = TCPCT_REASON_TRUNCATED;
		return;
	}
	s->seq = tcpct_be32(hdr, 4);
	s->ack = tcpct_be32(hdr, 8);
	h = (hdr[12] >> 4) * 4;
	s->flags = hdr[13];
	s->win = (tcpct_u16)(hdr[14] << 8 | hdr[15]);
	s->hdrlen = (tcpct_u8)h;
	if (h < 20 || (tcpct_u32)l4len < h) {
		s->malformed = TCPCT_REASON_TRUNCATED;
		return;
	}
	if (caplen < h) {
		s->malformed = TCPCT_REASON_NOT_CAPTURED;
		return;
	}
	s->len = (tcpct_u32)l4len - h;
	tcpct_parse_options(s, hdr, h);
}

/* segment_seq_plus_len: seq + len, plus one for SYN and one for FIN. */
TCPCT_INLINE tcpct_u32 tcpct_seg_end(const struct tcpct_segment *s)
{
	tcpct_u32 e = s->seq + s->len;
	if (s->flags & TCPCT_SYN)
		e++;
	if (s->flags & TCPCT_FIN)
		e++;
	return e;
}

/* ---------------------------------------------------------------------
 * Configuration (fsm.Machine.derive)
 */

/* knob holds TCPCT_LINUX_NUM_KNOBS values, indexed by TCPCT_LINUX_KNOB_*
 * (tcpct_linux_knob_default has the defaults); range checks are the
 * caller's (fsm.Machine.Set documents them). */
TCPCT_INLINE void tcpct_linux_configure(struct tcpct_config *cfg, const tcpct_s64 *knob)
{
	int i;
	*cfg = (struct tcpct_config){0};
	for (i = 0; i < TCPCT_LINUX_NUM_STATES; i++) {
		tcpct_u8 k = tcpct_linux_timeout_knob[i];
		if (k != TCPCT_NO_KNOB)
			cfg->timeout[i] = knob[k] * TCPCT_SECOND;
	}
#if TCPCT_LINUX_RETRANS_KNOB != TCPCT_NO_KNOB
	cfg->retrans_timeout = knob[TCPCT_LINUX_RETRANS_KNOB] * TCPCT_SECOND;
#endif
#if TCPCT_LINUX_UNACK_KNOB != TCPCT_NO_KNOB
	cfg->unack_timeout = knob[TCPCT_LINUX_UNACK_KNOB] * TCPCT_SECOND;
#endif
	for (i = 0; i < TCPCT_LINUX_NUM_CLASSES; i++) {
		tcpct_u8 cr = tcpct_linux_create[i];
		if (cr == TCPCT_CREATE_NEVER)
			cfg->create[i] = 0;
		else if (cr == TCPCT_CREATE_ALWAYS)
			cfg->create[i] = 1;
		else
			cfg->create[i] = knob[cr - TCPCT_CREATE_KNOB_BASE] != 0;
	}
	cfg->be_liberal = knob[TCPCT_LINUX_KNOB_TCP_BE_LIBERAL] != 0;
	cfg->ignore_invalid_rst = knob[TCPCT_LINUX_KNOB_TCP_IGNORE_INVALID_RST] != 0;
	cfg->max_retrans = (tcpct_u8)knob[TCPCT_LINUX_KNOB_TCP_MAX_RETRANS];
}

/* ---------------------------------------------------------------------
 * The step (fsm/machine.go, fsm/linux.go, fsm/window.go)
 */

/* Short names for the roles of the linux profile. */
#define T_SS TCPCT_LINUX_ROLE_SYN_SENT
#define T_SR TCPCT_LINUX_ROLE_SYN_RECV
#define T_ES TCPCT_LINUX_ROLE_ESTABLISHED
#define T_FW TCPCT_LINUX_ROLE_FIN_WAIT
#define T_CW TCPCT_LINUX_ROLE_CLOSE_WAIT
#define T_LA TCPCT_LINUX_ROLE_LAST_ACK
#define T_TW TCPCT_LINUX_ROLE_TIME_WAIT
#define T_CL TCPCT_LINUX_ROLE_CLOSE
#define T_S2 TCPCT_LINUX_ROLE_SYN_SENT2
#define T_CSYN TCPCT_LINUX_ROLE_CLASS_SYN
#define T_CSYNACK TCPCT_LINUX_ROLE_CLASS_SYNACK
#define T_CFIN TCPCT_LINUX_ROLE_CLASS_FIN
#define T_CACK TCPCT_LINUX_ROLE_CLASS_ACK
#define T_CRST TCPCT_LINUX_ROLE_CLASS_RST
#define T_CNONE TCPCT_LINUX_ROLE_CLASS_NONE

#define TCPCT_WINDOW_ACCEPT 0
#define TCPCT_WINDOW_IGNORE 1
#define TCPCT_WINDOW_INVALID 2

TCPCT_INLINE tcpct_u8 tcpct_linux_cell(tcpct_u8 dir, tcpct_u8 cls, tcpct_u8 state)
{
	return tcpct_linux_cells[((dir & 1) << 7 | (cls & 7) << 4 | (state & 15)) & 255];
}

/* invalid(): a verdict that leaves the entry untouched. */
TCPCT_INLINE void tcpct_invalid(struct tcpct_verdict *v, tcpct_u8 reason)
{
	v->ct = TCPCT_CT_INVALID;
	v->reason = reason;
	v->action = v->expired ? TCPCT_ACTION_DELETE : TCPCT_ACTION_NONE;
}

/* ctOf(): decided from the entry as it was before the packet. */
TCPCT_INLINE tcpct_u8 tcpct_ct_of(const struct tcpct_conn *c, tcpct_u8 dir)
{
	return (dir == TCPCT_REPLY || (c->status & TCPCT_SEEN_REPLY)) ? TCPCT_CT_ESTABLISHED : TCPCT_CT_NEW;
}

/* accept(): SEEN_REPLY after any accepted reply-direction packet. */
TCPCT_INLINE void tcpct_accept(struct tcpct_conn *c, tcpct_u8 dir, tcpct_u8 ct, struct tcpct_verdict *v)
{
	v->ct = ct;
	if (dir == TCPCT_REPLY)
		c->status |= TCPCT_SEEN_REPLY;
	v->new_state = c->state;
}

/* tcp_options(): a header with options resets scale and flags (but
 * BE_LIBERAL) and records window scale and SACK-permitted. */
TCPCT_INLINE void tcpct_apply_options(struct tcpct_peer *p, const struct tcpct_segment *seg)
{
	if (!seg->has_options)
		return;
	p->scale = 0;
	p->flags &= TCPCT_FLAG_BE_LIBERAL;
	if (seg->sack_perm)
		p->flags |= TCPCT_FLAG_SACK_PERM;
	if (seg->has_wscale) {
		p->scale = seg->wscale;
		p->flags |= TCPCT_FLAG_WINDOW_SCALE;
	}
}

/* tcp_init_sender(): window scaling only if both SYNs carried the option
 * (RFC 7323 §2.2). */
TCPCT_INLINE void tcpct_init_sender(struct tcpct_peer *sender, struct tcpct_peer *receiver,
				    const struct tcpct_segment *seg, tcpct_u32 end, tcpct_u8 dir)
{
	sender->end = end;
	sender->maxend = end;
	sender->maxwin = tcpct_max_u32(seg->win, 1);
	tcpct_apply_options(sender, seg);
	if (dir == TCPCT_REPLY &&
	    !((sender->flags & TCPCT_FLAG_WINDOW_SCALE) && (receiver->flags & TCPCT_FLAG_WINDOW_SCALE))) {
		sender->scale = 0;
		receiver->scale = 0;
	}
}

/* MAXACKWINDOW(sender). */
TCPCT_INLINE tcpct_u32 tcpct_max_ack_window(const struct tcpct_peer *p) { return tcpct_max_u32(p->maxwin, 66000); }

/* nf_tcp_store_invalid(): a liberal sender turns every failure into
 * acceptance. */
TCPCT_INLINE int tcpct_window_fail(const struct tcpct_config *cfg, const struct tcpct_peer *sender, int res,
				   tcpct_u8 r, tcpct_u8 *reason)
{
	if (cfg->be_liberal || (sender->flags & TCPCT_FLAG_BE_LIBERAL)) {
		*reason = TCPCT_REASON_NONE;
		return TCPCT_WINDOW_ACCEPT;
	}
	*reason = r;
	return res;
}

/* tcp_in_window(): the four bounds and the per-direction state. */
TCPCT_INLINE int tcpct_in_window(const struct tcpct_config *cfg, struct tcpct_conn *c,
				 const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_u8 cls, tcpct_u8 *reason)
{
	struct tcpct_peer *sender = &c->seen[dir & 1], *receiver = &c->seen[(dir ^ 1) & 1];
	int syn = (seg->flags & TCPCT_SYN) != 0, has_ack = (seg->flags & TCPCT_ACK) != 0;
	tcpct_u32 seq = seg->seq, ack = seg->ack, sack = ack, win = seg->win, end = tcpct_seg_end(seg), swin;
	int i;

	*reason = TCPCT_REASON_NONE;
	if (receiver->flags & TCPCT_FLAG_SACK_PERM) {
		for (i = 0; i < 4; i++) {
			if (i < seg->num_sack && tcpct_after(seg->sack_edges[i], sack))
				sack = seg->sack_edges[i];
		}
	}

	if (sender->maxwin == 0) {
		if (syn) {
			tcpct_init_sender(sender, receiver, seg, end, dir);
			if (!has_ack)
				return TCPCT_WINDOW_ACCEPT; /* simultaneous open */
		} else {
			/* Mid-stream: the sender's history is lost. */
			sender->end = end;
			swin = tcpct_shl(win, sender->scale);
			sender->maxwin = tcpct_max_u32(swin, 1);
			sender->maxend = end + sender->maxwin;
			if (receiver->maxwin == 0) {
				receiver->end = sack;
				receiver->maxend = sack;
			} else if (sack == receiver->end + 1) {
				receiver->end++; /* likely the answer to a keep-alive */
			}
		}
	} else if (syn && tcpct_after(end, sender->end) && (c->state == T_SS || c->state == T_SR)) {
		/* A reinitialised TCP uses larger sequence numbers. */
		tcpct_init_sender(sender, receiver, seg, end, dir);
		if (dir == TCPCT_REPLY && !has_ack)
			return TCPCT_WINDOW_ACCEPT;
	}

	if (!has_ack || ((seg->flags & TCPCT_RST) && ack == 0)) {
		ack = receiver->end;
		sack = receiver->end;
	}
	if ((seg->flags & TCPCT_RST) && seq == 0 && c->state == T_SS) {
		seq = sender->end; /* RST answering a SYN */
		end = sender->end;
	}

	if (!tcpct_before(seq, sender->maxend + 1)) {
		tcpct_u32 overshot = end - sender->maxend + 1;
		int ack_ok = tcpct_after(sack, receiver->end - tcpct_max_ack_window(sender) - 1);
		int in_recv_win = receiver->maxwin != 0 && tcpct_after(end, sender->end - receiver->maxwin - 1);
		if (in_recv_win && ack_ok && overshot <= receiver->maxwin && tcpct_before(sack, receiver->end + 1)) {
			sender->end = end;
			sender->flags |= TCPCT_FLAG_DATA_UNACKED;
			return tcpct_window_fail(cfg, sender, TCPCT_WINDOW_IGNORE, TCPCT_REASON_OVERSHOOT, reason);
		}
		return tcpct_window_fail(cfg, sender, TCPCT_WINDOW_INVALID, TCPCT_REASON_SEQ_OVER_UPPER, reason);
	}
	if (!tcpct_before(sack, receiver->end + 1))
		return tcpct_window_fail(cfg, sender, TCPCT_WINDOW_INVALID, TCPCT_REASON_ACK_OVER_UPPER, reason);
	if (receiver->maxwin != 0 && !tcpct_after(end, sender->end - receiver->maxwin - 1))
		return tcpct_window_fail(cfg, sender, TCPCT_WINDOW_IGNORE, TCPCT_REASON_SEQ_UNDER_LOWER, reason);
	if (!tcpct_after(sack, receiver->end - tcpct_max_ack_window(sender) - 1))
		return tcpct_window_fail(cfg, sender, TCPCT_WINDOW_IGNORE, TCPCT_REASON_ACK_UNDER_LOWER, reason);

	if (!syn)
		win = tcpct_shl(win, sender->scale); /* RFC 7323 §2.3: SYNs are never scaled */
	swin = win + (sack - ack);
	if (sender->maxwin < swin)
		sender->maxwin = swin;
	if (tcpct_after(end, sender->end)) {
		sender->end = end;
		sender->flags |= TCPCT_FLAG_DATA_UNACKED;
	}
	if (has_ack) {
		if (!(sender->flags & TCPCT_FLAG_MAXACK_SET)) {
			sender->maxack = ack;
			sender->flags |= TCPCT_FLAG_MAXACK_SET;
		} else if (tcpct_after(ack, sender->maxack)) {
			sender->maxack = ack;
		}
	}
	if (receiver->maxwin != 0 && tcpct_after(end, sender->maxend))
		receiver->maxwin += end - sender->maxend;
	if (tcpct_after(sack + win, receiver->maxend - 1)) {
		receiver->maxend = sack + win;
		if (win == 0)
			receiver->maxend++;
	}
	if (ack == receiver->end)
		receiver->flags &= (tcpct_u8)~TCPCT_FLAG_DATA_UNACKED;
	if (cls == T_CACK) {
		if (c->last_dir == dir && c->last_seq == seq && c->last_ack == ack && c->last_end == end &&
		    c->last_win == seg->win) {
			if (c->retrans < 255)
				c->retrans++;
		} else {
			c->last_dir = dir;
			c->last_seq = seq;
			c->last_ack = ack;
			c->last_end = end;
			c->last_win = seg->win;
			c->retrans = 0;
		}
	}
	return TCPCT_WINDOW_ACCEPT;
}

/* tcp_new(): a SYN starts window tracking from its sequence number; any
 * other first packet is picked up mid-stream with liberal windows. */
TCPCT_INLINE void tcpct_new_conn(struct tcpct_conn *n, const struct tcpct_segment *seg, tcpct_u8 first)
{
	struct tcpct_peer *o = &n->seen[TCPCT_ORIGINAL];
	*n = (struct tcpct_conn){0};
	n->status = TCPCT_CONFIRMED;
	n->state = TCPCT_LINUX_INITIAL;
	n->last_index = T_CNONE;
	o->end = tcpct_seg_end(seg);
	o->maxwin = tcpct_max_u32(seg->win, 1);
	if (first == T_SS) {
		o->maxend = o->end;
		tcpct_apply_options(o, seg);
		return;
	}
	o->maxend = o->end + o->maxwin;
	o->flags = TCPCT_FLAG_SACK_PERM | TCPCT_FLAG_BE_LIBERAL;
	n->seen[TCPCT_REPLY].flags = TCPCT_FLAG_SACK_PERM | TCPCT_FLAG_BE_LIBERAL;
}

/* A SYN/ACK acknowledging a SYN that was ignored earlier: take the SYN's
 * remembered values and restart from SYN_SENT. */
TCPCT_INLINE int tcpct_resync_after_ignored_syn(struct tcpct_conn *c, const struct tcpct_segment *seg, tcpct_u8 dir,
						tcpct_u8 cls)
{
	struct tcpct_peer *p, *s;
	if (cls != T_CSYNACK || c->last_index != T_CSYN || c->last_dir == dir || seg->ack != c->last_end)
		return 0;
	p = &c->seen[c->last_dir & 1];
	p->end = c->last_end;
	p->maxend = c->last_end;
	p->maxwin = tcpct_max_u32(c->last_win, 1);
	p->scale = c->last_wscale;
	c->last_flags &= (tcpct_u8)~TCPCT_LAST_CHALLENGE_ACK;
	p->flags = c->last_flags;
	s = &c->seen[dir & 1];
	*s = (struct tcpct_peer){.flags = s->flags & TCPCT_FLAG_BE_LIBERAL};
	return 1;
}

/* Record an ignored packet so that a later answer to it is recognised. */
TCPCT_INLINE void tcpct_remember_ignored(struct tcpct_conn *c, const struct tcpct_segment *seg, tcpct_u8 dir,
					 tcpct_u8 cls, tcpct_u8 old)
{
	c->last_index = cls;
	c->last_dir = dir;
	c->last_seq = seg->seq;
	c->last_end = tcpct_seg_end(seg);
	c->last_win = seg->win;
	if (cls == T_CSYN && dir == TCPCT_ORIGINAL) {
		c->last_flags = 0;
		c->last_wscale = 0;
		if (seg->has_wscale) {
			c->last_flags |= TCPCT_FLAG_WINDOW_SCALE;
			c->last_wscale = seg->wscale;
		}
		if (seg->sack_perm)
			c->last_flags |= TCPCT_FLAG_SACK_PERM;
		if (old == T_LA)
			c->last_flags |= TCPCT_LAST_CHALLENGE_ACK;
	}
	if (old == T_SS && cls == T_CACK && dir == TCPCT_REPLY)
		c->last_ack = seg->ack;
}

/* A packet accepted without a state change or timer refresh. */
TCPCT_INLINE void tcpct_finish_ignored(struct tcpct_conn *c, int created, tcpct_u8 dir, tcpct_u8 ct, tcpct_u8 r,
				       struct tcpct_verdict *v)
{
	v->ignored = 1;
	v->reason = r;
	if (created) {
		/* An unconfirmed entry that is never refreshed expires at once. */
		v->ct = ct;
		v->action = TCPCT_ACTION_NONE;
		return;
	}
	v->action = TCPCT_ACTION_UPDATE;
	tcpct_accept(c, dir, ct, v);
}

/* tcp_can_early_drop(): the closing states. */
TCPCT_INLINE int tcpct_can_early_drop(tcpct_u8 s)
{
	return s == T_FW || s == T_LA || s == T_TW || s == T_CL || s == T_CW;
}

/* The RST validation ladder of the kernel's CLOSE case: the next state,
 * *skip_window, and *reason when the RST is INVALID. */
TCPCT_INLINE tcpct_u8 tcpct_check_rst(const struct tcpct_config *cfg, const struct tcpct_conn *c,
				      const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_u8 old, int *skip_window,
				      tcpct_u8 *reason)
{
	const struct tcpct_peer *peer = &c->seen[(dir ^ 1) & 1];
	tcpct_u8 next = T_CL;
	*skip_window = 0;
	*reason = TCPCT_REASON_NONE;
	if (tcpct_can_early_drop(c->state)) {
		*skip_window = 1;
		return next;
	}
	if ((peer->flags & TCPCT_FLAG_MAXACK_SET) && c->last_index != T_CSYN) {
		int established = c->state == T_ES && (c->status & TCPCT_ASSURED);
		if (seg->seq == 0 && !established)
			return next;
		if (tcpct_before(seg->seq, peer->maxack) && !cfg->ignore_invalid_rst) {
			*reason = TCPCT_REASON_INVALID_RST;
			return next;
		}
		if (!established || seg->seq == peer->maxack)
			return next;
		if (c->last_index == T_CACK && c->last_dir == dir && seg->seq == c->last_end)
			return next;
		/* In window but not exact: keep the state for the challenge ACK
		 * (RFC 5961 §3). */
		next = old;
	}
	if ((((c->status & TCPCT_SEEN_REPLY) && c->last_index == T_CSYN && c->last_dir != dir) ||
	     (!(c->status & TCPCT_ASSURED) && c->last_index == T_CACK)) &&
	    seg->ack == c->last_end) {
		*skip_window = 1;
		return next;
	}
	if (old == T_SS && c->last_index == T_CACK && c->last_dir == TCPCT_REPLY && seg->seq == c->last_ack)
		*skip_window = 1;
	return next;
}

/* The timeout rules in the kernel's order. */
TCPCT_INLINE tcpct_s64 tcpct_timeout_for(const struct tcpct_config *cfg, const struct tcpct_conn *c, tcpct_u8 next,
					 tcpct_u8 cls)
{
	tcpct_s64 t = cfg->timeout[next & 15];
#if TCPCT_LINUX_FEATURES & TCPCT_FEATURE_TIMEOUT_CAPS
	if (c->retrans >= cfg->max_retrans && t > cfg->retrans_timeout)
		return cfg->retrans_timeout;
	if (cls == T_CRST)
		return cfg->timeout[T_CL];
	if (((c->seen[0].flags | c->seen[1].flags) & TCPCT_FLAG_DATA_UNACKED) && t > cfg->unack_timeout)
		return cfg->unack_timeout;
	if (c->last_win == 0 && t > cfg->retrans_timeout)
		return cfg->retrans_timeout;
#endif
	return t;
}

/* nf_tcp_handle_invalid(): both sides sent an out-of-window FIN or RST on
 * an assured entry; lower its remaining time to the unacknowledged one. */
TCPCT_INLINE int tcpct_handle_invalid(const struct tcpct_config *cfg, struct tcpct_conn *c, tcpct_u8 dir,
				      tcpct_u8 cls, tcpct_s64 now)
{
	if (!(c->status & TCPCT_ASSURED) || (cls != T_CRST && cls != T_CFIN))
		return 0;
	if (c->last_dir != dir && (c->last_index == T_CFIN || c->last_index == T_CRST)) {
		tcpct_s64 left = c->deadline - now;
		if (left < 120 * TCPCT_SECOND)
			return 0;
		return left > cfg->unack_timeout;
	}
	c->last_index = cls;
	c->last_dir = dir;
	return 0;
}

/*
 * nf_conntrack_tcp_packet() on work, which is c itself for an existing
 * entry or a fresh conn for a first packet (created); c is written when the
 * packet is accepted. It returns 1 when the packet reopens the connection:
 * the caller then kills the entry and steps the packet again as a first
 * packet (the kernel looks it up again).
 */
TCPCT_INLINE int tcpct_linux_packet(const struct tcpct_config *cfg, struct tcpct_conn *c, struct tcpct_conn *work,
				    int created, const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_u8 cls,
				    tcpct_s64 now, struct tcpct_verdict *v)
{
	tcpct_u8 old = work->state, cell, next, ct, r;
	int skip_window = 0, res;
	tcpct_s64 timeout;

	cell = tcpct_linux_cell(dir, cls, old);
	v->cell = cell;
	next = cell;
	ct = tcpct_ct_of(work, dir);

	if (cell == TCPCT_OUT_INVALID) {
		tcpct_invalid(v, TCPCT_REASON_INVALID_TRANSITION);
		return 0;
	} else if (cell == TCPCT_OUT_IGNORE || (next == T_SS && (old == T_TW || old == T_CL || old == T_S2))) {
#if TCPCT_LINUX_FEATURES & TCPCT_FEATURE_REOPEN_KILLS
		if (cell != TCPCT_OUT_IGNORE &&
		    (((work->seen[0].flags | work->seen[1].flags) & TCPCT_FLAG_CLOSE_INIT) ||
		     (work->last_dir == dir && work->last_index == T_CRST))) {
			/* RFC 1122 §4.2.2.13: a SYN reopens a closed connection. */
			v->old_state = old;
			return 1;
		}
#endif
		if (tcpct_resync_after_ignored_syn(work, seg, dir, cls)) {
			old = T_SS;
			next = T_SR;
		} else {
			tcpct_remember_ignored(work, seg, dir, cls, old);
			tcpct_finish_ignored(c, created, dir, ct, TCPCT_REASON_IGNORED_TRANSITION, v);
			return 0;
		}
	} else if (next == T_TW) {
		/* RFC 5961 §4: the ACK answering a SYN let through in LAST_ACK is
		 * a challenge ACK, not the ACK of the last FIN. */
		if (old == T_LA && cls == T_CACK && work->last_dir != dir && work->last_index == T_CSYN &&
		    (work->last_flags & TCPCT_LAST_CHALLENGE_ACK)) {
			work->last_flags &= (tcpct_u8)~TCPCT_LAST_CHALLENGE_ACK;
			tcpct_finish_ignored(c, created, dir, ct, TCPCT_REASON_CHALLENGE_ACK, v);
			return 0;
		}
	} else if (next == T_S2) {
		work->last_flags |= TCPCT_LAST_SIMULTANEOUS;
	} else if (next == T_SR) {
		if (dir == TCPCT_REPLY && cls == T_CACK && (work->last_flags & TCPCT_LAST_SIMULTANEOUS))
			next = T_ES;
	} else if (next == T_CL && cls == T_CRST) {
		next = tcpct_check_rst(cfg, work, seg, dir, old, &skip_window, &r);
		if (r != TCPCT_REASON_NONE) {
			tcpct_invalid(v, r);
			return 0;
		}
	}

	if (!skip_window) {
		res = tcpct_in_window(cfg, work, seg, dir, cls, &r);
		if (res == TCPCT_WINDOW_IGNORE) {
			tcpct_finish_ignored(c, created, dir, ct, r, v);
			return 0;
		}
		if (res == TCPCT_WINDOW_INVALID) {
			if (!created && tcpct_handle_invalid(cfg, work, dir, cls, now)) {
				work->deadline = now + cfg->unack_timeout;
				r = TCPCT_REASON_LOWERED_TO_UNACK;
			}
			v->action = created ? TCPCT_ACTION_NONE : TCPCT_ACTION_UPDATE;
			v->ct = TCPCT_CT_INVALID;
			v->reason = r;
			return 0;
		}
	}

	/* in_window: from here on the packet is accepted. */
	work->last_index = cls;
	work->last_dir = dir;
	work->state = next;
	if (old != next && next == T_FW)
		work->seen[dir & 1].flags |= TCPCT_FLAG_CLOSE_INIT;
	timeout = tcpct_timeout_for(cfg, work, next, cls);

	v->old_state = old;
	v->action = created ? TCPCT_ACTION_CREATE : TCPCT_ACTION_UPDATE;
	if (!(work->status & TCPCT_SEEN_REPLY)) {
		if (seg->flags & TCPCT_RST) {
			/* Only reply is an RST: the entry is deleted. */
			v->ct = ct;
			v->new_state = next;
			v->action = TCPCT_ACTION_DELETE;
			v->accounted = 1;
			if (created) {
				v->action = TCPCT_ACTION_NONE;
				v->accounted = 0;
			}
			*c = (struct tcpct_conn){0};
			return 0;
		}
#if TCPCT_LINUX_FEATURES & TCPCT_FEATURE_SYN_RETRANSMIT_KEEPS_TIMER
		if (cls == T_CSYN && old == T_SS) {
			/* A retransmitted SYN does not renew the timer. */
			if (created)
				*c = *work;
			tcpct_accept(c, dir, ct, v);
			return 0;
		}
#endif
		if (next == T_ES && timeout > cfg->unack_timeout)
			timeout = cfg->unack_timeout; /* picked up, no reply */
	} else if (!(work->status & TCPCT_ASSURED) && (old == T_SR || old == T_ES) && next == T_ES) {
		work->status |= TCPCT_ASSURED;
	}
	work->deadline = now + timeout;
	v->refreshed = 1;
	v->timeout = timeout;
	v->accounted = 1;
	if (created)
		*c = *work;
	tcpct_accept(c, dir, ct, v);
	return 0;
}

/* One pass of fsm.Machine.Step; returns 1 for a reopen (see above). */
TCPCT_INLINE int tcpct_linux_step_once(const struct tcpct_config *cfg, struct tcpct_conn *c,
				       const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_s64 now,
				       struct tcpct_verdict *v, struct tcpct_conn *fresh)
{
	tcpct_u8 cls, cell;
	int again = 0;

	*v = (struct tcpct_verdict){0};
	v->dir = dir;
	v->cell = TCPCT_CELL_NONE;
	v->cls = T_CNONE;
	if ((c->status & TCPCT_CONFIRMED) && now - c->deadline >= 0) {
		*c = (struct tcpct_conn){0};
		v->expired = 1;
	}
	if (!(c->status & TCPCT_CONFIRMED)) {
		v->dir = dir = TCPCT_ORIGINAL;
		v->old_state = v->new_state = TCPCT_LINUX_INITIAL;
	} else {
		v->old_state = v->new_state = c->state;
	}
	if (seg->malformed != TCPCT_REASON_NONE) {
		tcpct_invalid(v, seg->malformed);
		return 0;
	}
	cls = tcpct_linux_class_of[seg->flags];
	v->cls = cls;
	if (!tcpct_linux_flags_ok[seg->flags]) {
		tcpct_invalid(v, TCPCT_REASON_BAD_FLAGS);
		return 0;
	}
	if (c->status & TCPCT_CONFIRMED) {
		again = tcpct_linux_packet(cfg, c, c, 0, seg, dir, cls, now, v);
	} else {
		/* tcp_new(): built aside, stored only when accepted. */
		cell = tcpct_linux_cell(TCPCT_ORIGINAL, cls, TCPCT_LINUX_INITIAL);
		if (cell >= TCPCT_OUT_INVALID) {
			v->cell = cell;
			tcpct_invalid(v, TCPCT_REASON_INVALID_NEW);
		} else if (!cfg->create[cls & 7]) {
			v->cell = cell;
			tcpct_invalid(v, TCPCT_REASON_LOOSE_OFF);
		} else {
			tcpct_new_conn(fresh, seg, cell);
			again = tcpct_linux_packet(cfg, c, fresh, 1, seg, dir, cls, now, v);
		}
	}
	if (v->expired && v->action == TCPCT_ACTION_NONE)
		v->action = TCPCT_ACTION_DELETE; /* the expired entry must still go */
	return again;
}

/*
 * tcpct_linux_step_with runs one TCP segment through the tracker:
 * fsm.Machine.Step.
 *
 * c is the connection's entry as found (from either tuple), or the zero
 * conn when there is none; dir is the tuple the packet matched
 * (TCPCT_ORIGINAL without an entry); now is the clock in nanoseconds. c is
 * updated in place to what the entry must hold after the packet (the zero
 * conn when it is gone) and v->action says what to do with the table: on
 * TCPCT_ACTION_RECREATE the old entry goes and c is inserted with this
 * packet's tuple as the original one. fresh is scratch space for a new
 * entry (an eBPF program passes per-CPU map memory: its stack is small).
 */
TCPCT_INLINE void tcpct_linux_step_with(const struct tcpct_config *cfg, struct tcpct_conn *c,
					const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_s64 now,
					struct tcpct_verdict *v, struct tcpct_conn *fresh)
{
	tcpct_u8 old = 0;
	int pass, reopened = 0;
	/* A reopen kills the entry and steps the packet again as a first
	 * packet; a zero conn cannot reopen, so there are at most two passes.
	 * The loop keeps one copy of the step in the program. */
#ifdef __clang__
#pragma clang loop unroll(disable)
#endif
	for (pass = 0; pass < 2; pass++) {
		if (!tcpct_linux_step_once(cfg, c, seg, dir, now, v, fresh))
			break;
		reopened = 1;
		old = v->old_state;
		*c = (struct tcpct_conn){0};
		dir = TCPCT_ORIGINAL;
	}
	if (reopened) {
		v->action = v->action == TCPCT_ACTION_CREATE ? TCPCT_ACTION_RECREATE : TCPCT_ACTION_DELETE;
		v->old_state = old;
	}
}

/* tcpct_linux_step is tcpct_linux_step_with with the scratch on the stack. */
TCPCT_INLINE void tcpct_linux_step(const struct tcpct_config *cfg, struct tcpct_conn *c,
				   const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_s64 now, struct tcpct_verdict *v)
{
	struct tcpct_conn fresh;
	tcpct_linux_step_with(cfg, c, seg, dir, now, v, &fresh);
}

#undef T_SS
#undef T_SR
#undef T_ES
#undef T_FW
#undef T_CW
#undef T_LA
#undef T_TW
#undef T_CL
#undef T_S2
#undef T_CSYN
#undef T_CSYNACK
#undef T_CFIN
#undef T_CACK
#undef T_CRST
#undef T_CNONE

#endif /* TCPCT_H */
