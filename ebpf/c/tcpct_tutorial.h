/*
 * tcpct_tutorial.h: the step of tcpct's "tutorial" profile in plain C, the
 * 2.4-era tracker of the Iptables Tutorial (ip_conntrack_proto_tcp.c of
 * Linux 2.4: tcp_new() and tcp_packet()). This is fsm.Machine.Step over a
 * profile without window tracking (fsm/machine.go, fsm/tutorial.go), over
 * the table gen/ compiles from spec/tutorial.spec into zz_tutorial.h: every
 * valid cell moves the state and refreshes the timer with the new state's
 * timeout; the only sequence number looked at is the ACK that completes the
 * handshake. Same rules as tcpct.h, whose parser and types it shares.
 */
#ifndef TCPCT_TUTORIAL_H
#define TCPCT_TUTORIAL_H

#include "tcpct.h"
#include "zz_tutorial.h"

#if TCPCT_TUTORIAL_FEATURES & TCPCT_FEATURE_WINDOW_TRACKING
#error "tcpct_tutorial.h is the step without window tracking; use tcpct.h's"
#endif

/* knob holds TCPCT_TUTORIAL_NUM_KNOBS values (tcpct_tutorial_knob_default
 * has the defaults). The profile has no window knobs: they stay off. */
TCPCT_INLINE void tcpct_tutorial_configure(struct tcpct_config *cfg, const tcpct_s64 *knob)
{
	int i;
	*cfg = (struct tcpct_config){0};
	for (i = 0; i < TCPCT_TUTORIAL_NUM_STATES; i++) {
		tcpct_u8 k = tcpct_tutorial_timeout_knob[i];
		if (k != TCPCT_NO_KNOB)
			cfg->timeout[i] = knob[k] * TCPCT_SECOND;
	}
	for (i = 0; i < TCPCT_TUTORIAL_NUM_CLASSES; i++) {
		tcpct_u8 cr = tcpct_tutorial_create[i];
		if (cr == TCPCT_CREATE_NEVER)
			cfg->create[i] = 0;
		else if (cr == TCPCT_CREATE_ALWAYS)
			cfg->create[i] = 1;
		else
			cfg->create[i] = knob[cr - TCPCT_CREATE_KNOB_BASE] != 0;
	}
}

TCPCT_INLINE tcpct_u8 tcpct_tutorial_cell(tcpct_u8 dir, tcpct_u8 cls, tcpct_u8 state)
{
	return tcpct_tutorial_cells[((dir & 1) << 7 | (cls & 7) << 4 | (state & 15)) & 255];
}

/*
 * tcpct_tutorial_step runs one TCP segment through the tutorial profile;
 * the arguments and the verdict's action are those of tcpct_linux_step_with
 * (a reopen cannot happen here, so there is no TCPCT_ACTION_RECREATE).
 */
TCPCT_INLINE void tcpct_tutorial_step_with(const struct tcpct_config *cfg, struct tcpct_conn *c,
					   const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_s64 now,
					   struct tcpct_verdict *v, struct tcpct_conn *fresh)
{
	struct tcpct_conn *work = c;
	tcpct_u8 cls, cell, old, ct;
	int created = 0;

	*v = (struct tcpct_verdict){0};
	v->dir = dir;
	v->cell = TCPCT_CELL_NONE;
	v->cls = TCPCT_TUTORIAL_ROLE_CLASS_NONE;
	if ((c->status & TCPCT_CONFIRMED) && now - c->deadline >= 0) {
		*c = (struct tcpct_conn){0};
		v->expired = 1;
	}
	if (!(c->status & TCPCT_CONFIRMED)) {
		v->dir = dir = TCPCT_ORIGINAL;
		v->old_state = v->new_state = TCPCT_TUTORIAL_INITIAL;
	} else {
		v->old_state = v->new_state = c->state;
	}
	if (seg->malformed != TCPCT_REASON_NONE) {
		tcpct_invalid(v, seg->malformed);
		goto out;
	}
	cls = tcpct_tutorial_class_of[seg->flags];
	v->cls = cls;
	if (!tcpct_tutorial_flags_ok[seg->flags]) {
		tcpct_invalid(v, TCPCT_REASON_BAD_FLAGS);
		goto out;
	}
	if (!(c->status & TCPCT_CONFIRMED)) {
		cell = tcpct_tutorial_cell(TCPCT_ORIGINAL, cls, TCPCT_TUTORIAL_INITIAL);
		if (cell >= TCPCT_OUT_INVALID) {
			v->cell = cell;
			tcpct_invalid(v, TCPCT_REASON_INVALID_NEW);
			goto out;
		}
		if (!cfg->create[cls & 7]) {
			v->cell = cell;
			tcpct_invalid(v, TCPCT_REASON_LOOSE_OFF);
			goto out;
		}
		*fresh = (struct tcpct_conn){0};
		fresh->status = TCPCT_CONFIRMED;
		fresh->state = TCPCT_TUTORIAL_INITIAL;
		work = fresh;
		created = 1;
	}
	old = work->state;
	cell = tcpct_tutorial_cell(dir, cls, old);
	v->cell = cell;
	if (cell >= TCPCT_OUT_INVALID) {
		/* 2.4 has no IGNORE; a custom spec's sIG is invalid too. */
		tcpct_invalid(v, TCPCT_REASON_INVALID_TRANSITION);
		goto out;
	}
	ct = tcpct_ct_of(work, dir);
	work->state = cell;
	v->old_state = old;
	if (old == TCPCT_TUTORIAL_ROLE_SYN_SENT && dir == TCPCT_REPLY &&
	    (seg->flags & (TCPCT_SYN | TCPCT_ACK)) == (TCPCT_SYN | TCPCT_ACK))
		work->handshake_ack = seg->seq + 1; /* "poor man's window tracking" */
	if (!(work->status & TCPCT_SEEN_REPLY) && (seg->flags & TCPCT_RST)) {
		v->ct = ct;
		v->new_state = cell;
		v->action = created ? TCPCT_ACTION_NONE : TCPCT_ACTION_DELETE;
		*c = (struct tcpct_conn){0};
		goto out;
	}
#if TCPCT_TUTORIAL_ASSURED == TCPCT_ASSURED_HANDSHAKE_ACK
	if (old == TCPCT_TUTORIAL_ROLE_SYN_RECV && dir == TCPCT_ORIGINAL && (seg->flags & TCPCT_ACK) &&
	    !(seg->flags & TCPCT_SYN) && seg->ack == work->handshake_ack)
		work->status |= TCPCT_ASSURED;
#endif
	work->deadline = now + cfg->timeout[cell & 15];
	v->refreshed = 1;
	v->timeout = cfg->timeout[cell & 15];
	v->accounted = 1;
	v->action = created ? TCPCT_ACTION_CREATE : TCPCT_ACTION_UPDATE;
	*c = *work;
	tcpct_accept(c, dir, ct, v);
out:
	if (v->expired && v->action == TCPCT_ACTION_NONE)
		v->action = TCPCT_ACTION_DELETE;
}

/* tcpct_tutorial_step is tcpct_tutorial_step_with with the scratch on the
 * stack. */
TCPCT_INLINE void tcpct_tutorial_step(const struct tcpct_config *cfg, struct tcpct_conn *c,
				      const struct tcpct_segment *seg, tcpct_u8 dir, tcpct_s64 now,
				      struct tcpct_verdict *v)
{
	struct tcpct_conn fresh;
	tcpct_tutorial_step_with(cfg, c, seg, dir, now, v, &fresh);
}

#endif /* TCPCT_TUTORIAL_H */
