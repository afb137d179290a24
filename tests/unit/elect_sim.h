/* The simulator the election tests run agent/elect.c in (included by test_elect.c, the
 * deterministic scenarios, and test_elect_sim.c, the random schedules per fault family).
 *
 * The world as it is modelled: four nodes (a1 a2 | b1 b2, one pair) with their own clocks
 * (different offsets, rate errors of up to ±300 ppm); a network that delays, drops,
 * duplicates, reorders, partitions the compartments and cuts single links in one
 * direction (also inside a compartment); a quorum device with SCSI-3 persistent
 * reservation semantics (Write Exclusive – Registrants Only, atomic PREEMPT) that each
 * node can lose, whose per-node iSCSI session breaks when it cannot reach the device and
 * registers the key again on the next command (as iscsi/qdev.c does on every new
 * session), with commands that stall, answers that are lost, and commands applied at the
 * target after the node lost the link; demote hooks that take time, their end reported to
 * the election; a watchdog per node that resets it when not petted for fence_timeout;
 * agents stopped (SIGSTOP: the clock and the watchdog run, events wait); crashes (all
 * memory lost) and restarts (same key and slot, new boot, new sequence numbers).
 *
 * Checked at every event: no two nodes act as master at once ("act": from the promote
 * action to the end of the demote hook, or the node's reset); a node whose lease lapsed
 * has demoted (a stopped agent excepted: its watchdog resets it); a crashed master is
 * replaced within master_timeout + 1 s when nothing else goes wrong around it; a healed
 * cluster has a master. ELECT_SIM_SCHEDULES and ELECT_SIM_SEED reproduce a run. */
#pragma once
#pragma GCC diagnostic ignored "-Wunused-function"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util.h"

#include "elect.h"

#define NN 4
#define MS 1000ULL
#define SEC 1000000ULL
#define MAXQ 8192

static const char *const names[NN] = {"a1", "a2", "b1", "b2"};
static const int sides[NN] = {0, 0, 1, 1};
static const int ranks[NN] = {0, 2, 1, 3}; /* priorities 200 100 150 50 */

/* ---- randomness: xorshift, seeded ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rng_next(s) % (hi - lo + 1);
}

static bool rng_chance(uint64_t *s, unsigned pct_x10) /* pct_x10 per mille */
{
	return rng_next(s) % 1000 < pct_x10;
}

/* ---- the simulation ---- */

enum sev_kind {
	SEV_TIMER,
	SEV_HB,
	SEV_ACK,
	SEV_QD_APPLY,
	SEV_QD_DONE,
	SEV_CRASH,
	SEV_RESTART,
	SEV_PARTITION,
	SEV_QDEV_REACH,
	SEV_OP_DEMOTE,
	SEV_LIVENESS,
	SEV_HBTICK, /* external heartbeats: the handshake layer's own timer */
	SEV_CORE,   /* core health: flag false = the master's core fails, true = all recover */
	SEV_LINK,   /* node -> from (directional) cut (flag true) or healed; from < 0: all of node's
		     */
	SEV_HOOK_DONE, /* the demote hook of node (incarnation gen) finished */
	SEV_WATCHDOG,  /* node's watchdog expires unless petted since .at */
	SEV_PAUSE,     /* node's agent is stopped for .at, no events: .seq is a pause_kind */
};

/* How a node stands still (SEV_PAUSE): its agent stopped (SIGSTOP; a whole bare-metal
 * machine stalled by firmware or a hung kernel is the same to the election: the clock
 * and the hardware watchdog run on), or a paused VM: its clock and its virtual watchdog
 * (QEMU's i6300esb under `stop`) frozen, resuming where they stood. */
enum pause_kind { PAUSE_AGENT, PAUSE_VM, _PAUSE_MAX };

struct sev {
	uint64_t t, order;
	enum sev_kind kind;
	int node, from;
	uint64_t gen; /* incarnation of the node the event belongs to */
	uint64_t seq, epoch, at;
	enum elect_role role;
	enum elect_action_type op;
	enum elect_io io;
	bool flag;
	int victim;
	struct elect_slot slots[NN];
	int holder;
	bool registered;
};

struct qdev_model {
	struct elect_slot slots[NN];
	bool registered[NN];
	int holder;
	uint64_t holder_gen; /* the session (incarnation) that holds it */
	bool reach[NN];
	bool sess_up[NN]; /* the node's iSCSI session: a new one registers the key again */
};

struct net_model {
	unsigned drop, dup, slow; /* per mille */
	uint64_t slow_max;
	bool partition;
	bool cut[NN][NN]; /* [from][to]: datagrams from -> to are lost */
};

struct simnode {
	bool up;
	uint64_t gen, offset, boot;
	struct elect sm;
	uint64_t timer_at;
	bool promoted;
	uint64_t hb_seq, hb_at[64]; /* external heartbeats: send time (local) by seq */
	const char *demote_reason, *promote_reason;
	uint64_t promoted_at;
	int64_t ppm;			   /* clock rate error */
	uint64_t pet;			   /* last watchdog pet (global time) */
	bool wd_armed;			   /* a SEV_WATCHDOG is queued */
	uint64_t paused_until;		   /* stopped: events wait until then */
	uint64_t vm_paused_at, vm_resumed; /* the last VM pause (global time) */
	int resets;			   /* by the watchdog */
	uint64_t hook_end; /* the demote hook runs until then (acting as master until its end) */
	bool hook_busy;
};

struct sim {
	uint64_t rng, seed, now, order;
	struct sev *q;
	int nq;
	struct simnode n[NN];
	struct qdev_model qd;
	struct net_model net;
	struct elect_params base;
	unsigned stall;		   /* per mille of quorum-device commands that stall */
	unsigned lost_done;	   /* per mille of answers lost after the command applied */
	uint64_t hook_max;	   /* demote hooks take 0..hook_max */
	uint64_t hook_len;	   /* or exactly this, when set */
	bool vm_overlap;	   /* a paused VM acted beside another master (vm_overlap()) */
	uint64_t vm_overlap_after; /* the longest such instant after its resume */
	char fail[256];
	/* liveness bookkeeping */
	uint64_t fault_times[512];
	int n_faults;
	bool faults_overflow;
	uint64_t live_deadline;
	bool master_since_crash;
	int masters_seen;
	int promotions;
	uint64_t last_master_at;
};

static void sim_failf(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->fail[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->fail, sizeof(s->fail), fmt, ap);
	va_end(ap);
}

static void push(struct sim *s, struct sev e)
{
	int i;

	if (s->nq >= MAXQ) {
		sim_failf(s, "event queue overflow");
		return;
	}
	e.order = s->order++;
	i = s->nq++;
	while (i > 0) {
		int p = (i - 1) / 2;
		if (s->q[p].t < e.t || (s->q[p].t == e.t && s->q[p].order < e.order))
			break;
		s->q[i] = s->q[p];
		i = p;
	}
	s->q[i] = e;
}

static struct sev pop(struct sim *s)
{
	struct sev top = s->q[0], last = s->q[--s->nq];
	int i = 0;

	for (;;) {
		int c = 2 * i + 1;
		if (c >= s->nq)
			break;
		if (c + 1 < s->nq &&
		    (s->q[c + 1].t < s->q[c].t ||
		     (s->q[c + 1].t == s->q[c].t && s->q[c + 1].order < s->q[c].order)))
			c++;
		if (last.t < s->q[c].t || (last.t == s->q[c].t && last.order < s->q[c].order))
			break;
		s->q[i] = s->q[c];
		i = c;
	}
	s->q[i] = last;
	return top;
}

static uint64_t local_at(const struct sim *s, int n, uint64_t t)
{
	return t + s->n[n].offset + (uint64_t)((int64_t)t / 1000000 * s->n[n].ppm);
}

static uint64_t local(const struct sim *s, int n)
{
	return local_at(s, n, s->now);
}

/* The global time at which node n's clock reads l (not before now). */
static uint64_t global_of(const struct sim *s, int n, uint64_t l)
{
	uint64_t cur = local(s, n);

	if (l <= cur)
		return s->now;
	/* local advances (1e6 + ppm) per 1e6: invert, rounding up, then fix up */
	uint64_t t = s->now + (uint64_t)((double)(l - cur) * 1e6 / (1e6 + (double)s->n[n].ppm)) + 1;
	while (local_at(s, n, t) < l)
		t++;
	return t;
}

static void step_node(struct sim *s, int n, const struct elect_event *ev);
static void note_fault(struct sim *s);

static void net_send(struct sim *s, enum sev_kind kind, int from, int to, uint64_t seq,
		     uint64_t epoch, enum elect_role role)
{
	int copies = 1;

	/* Partitions cut between compartments; the nodes of a one-compartment election
	 * (admin instances) share one network. */
	if (s->net.partition && s->base.side[from] != s->base.side[to])
		return;
	if (s->net.cut[from][to])
		return;
	if (rng_chance(&s->rng, s->net.drop))
		return;
	if (rng_chance(&s->rng, s->net.dup))
		copies = 2;
	for (int c = 0; c < copies; c++) {
		uint64_t d = rng_range(&s->rng, 100, 3 * MS);

		if (rng_chance(&s->rng, s->net.slow))
			d = rng_range(&s->rng, 3 * MS, s->net.slow_max);
		push(s, (struct sev){.t = s->now + d,
				     .kind = kind,
				     .node = to,
				     .from = from,
				     .gen = s->n[to].gen,
				     .seq = seq,
				     .epoch = epoch,
				     .role = role});
	}
}

static void qdev_submit(struct sim *s, int n, const struct elect_action *a)
{
	struct sev e = {.kind = SEV_QD_APPLY,
			.node = n,
			.gen = s->n[n].gen,
			.op = a->type,
			.seq = a->seq,
			.epoch = a->epoch,
			.role = a->role,
			.victim = a->node,
			.at = s->n[n].boot};
	uint64_t d = rng_range(&s->rng, 200, 4 * MS);

	if (!s->qd.reach[n]) {
		s->qd.sess_up[n] = false;
		e.kind = SEV_QD_DONE;
		e.io = ELECT_IO_ERROR;
		e.t = s->now + rng_range(&s->rng, 1 * MS, 400 * MS);
		push(s, e);
		return;
	}
	if (!s->qd.sess_up[n]) {
		/* A new session: the driver registers the key again before anything else
		 * (REGISTER AND IGNORE EXISTING KEY), as iscsi/qdev.c does. */
		s->qd.sess_up[n] = true;
		e.flag = true;
	}
	if (rng_chance(&s->rng, s->stall)) {
		d = rng_range(&s->rng, 50 * MS, 900 * MS);
		note_fault(s);
	}
	e.t = s->now + d;
	push(s, e);
}

static enum elect_io qdev_apply(struct qdev_model *q, struct sev *e)
{
	int n = e->node;

	if (e->flag) /* the reconnect's registration */
		q->registered[n] = true;

	switch (e->op) {
	case ELECT_ACT_QDEV_REGISTER:
		q->registered[n] = true;
		return ELECT_IO_OK;
	case ELECT_ACT_QDEV_READ:
		memcpy(e->slots, q->slots, sizeof(q->slots));
		e->holder = q->holder;
		e->registered = q->registered[n];
		return ELECT_IO_OK;
	case ELECT_ACT_QDEV_WRITE:
		if (q->holder >= 0 && !q->registered[n])
			return ELECT_IO_CONFLICT;
		q->slots[n] = (struct elect_slot){.valid = true,
						  .boot = e->at,
						  .seq = e->seq,
						  .epoch = e->epoch,
						  .role = e->role};
		return ELECT_IO_OK;
	case ELECT_ACT_QDEV_RESERVE:
		/* The holder is an I_T nexus: a restarted node's new session is not it. */
		if (!q->registered[n] ||
		    (q->holder >= 0 && (q->holder != n || q->holder_gen != e->gen)))
			return ELECT_IO_CONFLICT;
		q->holder = n;
		q->holder_gen = e->gen;
		return ELECT_IO_OK;
	case ELECT_ACT_QDEV_PREEMPT:
		if (!q->registered[n] || e->victim < 0 || !q->registered[e->victim])
			return ELECT_IO_CONFLICT;
		if (e->victim != n) /* preempting its own key keeps the issuer's registration */
			q->registered[e->victim] = false;
		if (q->holder == e->victim) {
			q->holder = n;
			q->holder_gen = e->gen;
		}
		return ELECT_IO_OK;
	case ELECT_ACT_QDEV_RELEASE:
		if (q->holder == n && q->holder_gen == e->gen) /* else: a no-op, as in SPC */
			q->holder = ELECT_HOLDER_NONE;
		return ELECT_IO_OK;
	case ELECT_ACT_ARM_TIMER:
	case ELECT_ACT_SEND_HEARTBEAT:
	case ELECT_ACT_SEND_ACK:
	case ELECT_ACT_PROMOTE:
	case ELECT_ACT_DEMOTE:
	case ELECT_ACT_ROLE:
	case ELECT_ACT_DEGRADED:
	case _ELECT_ACT_MAX:
		break;
	}
	return ELECT_IO_ERROR;
}

static enum elect_event_type done_type(enum elect_action_type op)
{
	switch (op) {
	case ELECT_ACT_QDEV_REGISTER:
		return ELECT_EV_REGISTER_DONE;
	case ELECT_ACT_QDEV_READ:
		return ELECT_EV_READ_DONE;
	case ELECT_ACT_QDEV_WRITE:
		return ELECT_EV_WRITE_DONE;
	case ELECT_ACT_QDEV_RESERVE:
		return ELECT_EV_RESERVE_DONE;
	case ELECT_ACT_QDEV_PREEMPT:
		return ELECT_EV_PREEMPT_DONE;
	case ELECT_ACT_QDEV_RELEASE:
		return ELECT_EV_RELEASE_DONE;
	case ELECT_ACT_ARM_TIMER:
	case ELECT_ACT_SEND_HEARTBEAT:
	case ELECT_ACT_SEND_ACK:
	case ELECT_ACT_PROMOTE:
	case ELECT_ACT_DEMOTE:
	case ELECT_ACT_ROLE:
	case ELECT_ACT_DEGRADED:
	case _ELECT_ACT_MAX:
		break;
	}
	return _ELECT_EV_MAX;
}

static void do_actions(struct sim *s, int n, const struct elect_actions *out)
{
	struct simnode *sn = &s->n[n];

	for (int i = 0; i < out->n; i++) {
		const struct elect_action *a = &out->a[i];

		switch (a->type) {
		case ELECT_ACT_ARM_TIMER:
			if (a->at != sn->timer_at) {
				sn->timer_at = a->at;
				push(s, (struct sev){.t = global_of(s, n, a->at),
						     .kind = SEV_TIMER,
						     .node = n,
						     .gen = sn->gen,
						     .at = a->at});
			}
			break;
		case ELECT_ACT_SEND_HEARTBEAT:
			for (int m = 0; m < NN; m++)
				if (m != n)
					net_send(s, SEV_HB, n, m, a->seq, a->epoch, a->role);
			break;
		case ELECT_ACT_SEND_ACK:
			net_send(s, SEV_ACK, n, a->node, a->seq, 0, ELECT_ROLE_NONE);
			break;
		case ELECT_ACT_QDEV_REGISTER:
		case ELECT_ACT_QDEV_READ:
		case ELECT_ACT_QDEV_WRITE:
		case ELECT_ACT_QDEV_RESERVE:
		case ELECT_ACT_QDEV_PREEMPT:
		case ELECT_ACT_QDEV_RELEASE:
			qdev_submit(s, n, a);
			break;
		case ELECT_ACT_PROMOTE:
			if (sn->promoted)
				sim_failf(s, "%s promoted twice", names[n]);
			sn->promoted = true;
			sn->promote_reason = a->reason;
			sn->promoted_at = s->now;
			s->promotions++;
			break;
		case ELECT_ACT_DEMOTE:
			if (!sn->promoted)
				sim_failf(s, "%s demoted without being master", names[n]);
			sn->promoted = false;
			sn->demote_reason = a->reason;
			sn->hook_end = s->now + (s->hook_len   ? s->hook_len
						 : s->hook_max ? rng_range(&s->rng, 0, s->hook_max)
							       : 0);
			sn->hook_busy = true;
			push(s, (struct sev){.t = sn->hook_end,
					     .kind = SEV_HOOK_DONE,
					     .node = n,
					     .gen = sn->gen});
			break;
		case ELECT_ACT_ROLE:
		case ELECT_ACT_DEGRADED:
			break;
		case _ELECT_ACT_MAX:
			break;
		}
	}
}

static int trace_level = -1;

static void trace(const struct sim *s, int level, const char *fmt, ...) _printf_(3, 4);
static void trace(const struct sim *s, int level, const char *fmt, ...)
{
	va_list ap;

	if (trace_level < 0) {
		const char *v = getenv("ELECT_SIM_TRACE");
		trace_level = v ? atoi(v) : 0;
	}
	if (level > trace_level)
		return;
	fprintf(stderr, "%8.3f ", (double)s->now / 1e6);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void trace_actions(const struct sim *s, int n, const struct elect_event *ev,
			  const struct elect_actions *out)
{
	for (int i = 0; i < out->n; i++) {
		const struct elect_action *a = &out->a[i];

		if (a->type == ELECT_ACT_ROLE)
			trace(s, 1, "%s role=%s epoch=%llu reason=%s (on %s)", names[n],
			      elect_role_to_str(a->role), (unsigned long long)a->epoch, a->reason,
			      elect_event_type_to_str(ev->type));
		else if (a->type == ELECT_ACT_PROMOTE || a->type == ELECT_ACT_DEMOTE ||
			 a->type == ELECT_ACT_QDEV_RESERVE || a->type == ELECT_ACT_QDEV_PREEMPT ||
			 a->type == ELECT_ACT_QDEV_RELEASE)
			trace(s, 1, "%s %s node=%d reason=%s", names[n],
			      elect_action_type_to_str(a->type), a->node,
			      a->reason ? a->reason : "");
		else if (a->type != ELECT_ACT_ARM_TIMER)
			trace(s, 3, "%s %s node=%d seq=%llu", names[n],
			      elect_action_type_to_str(a->type), a->node,
			      (unsigned long long)a->seq);
	}
}

static void step_node(struct sim *s, int n, const struct elect_event *ev)
{
	struct elect_actions out;

	if (!s->n[n].up)
		return;
	if (elect_step(&s->n[n].sm, ev, local(s, n), &out) < 0) {
		sim_failf(s, "%s rejected event %s", names[n], elect_event_type_to_str(ev->type));
		return;
	}
	if (s->base.fence_timeout && elect_may_pet(&s->n[n].sm, local(s, n))) {
		s->n[n].pet = s->now;
		if (!s->n[n].wd_armed) {
			s->n[n].wd_armed = true;
			push(s, (struct sev){.t = s->now + s->base.fence_timeout,
					     .kind = SEV_WATCHDOG,
					     .node = n,
					     .gen = s->n[n].gen});
		}
	}
	if (ev->type != ELECT_EV_TIMER && ev->type != ELECT_EV_HEARTBEAT &&
	    ev->type != ELECT_EV_HEARTBEAT_ACK)
		trace(s, 2, "%s <- %s io=%s holder=%d phase=%s", names[n],
		      elect_event_type_to_str(ev->type), elect_io_to_str(ev->io), ev->holder,
		      elect_phase_to_str(s->n[n].sm.phase));
	trace_actions(s, n, ev, &out);
	do_actions(s, n, &out);
}

/* Acting as master: from the start of the promote hook to the end of the demote hook (or
 * the node's reset). */
static bool acting(const struct sim *s, int n)
{
	return s->n[n].up && (s->n[n].promoted || s->n[n].hook_busy);
}

/* A paused VM cannot tell: its clock and its watchdog stood still with it. When it
 * resumes, it acts on a lease it believes valid for up to `lease`, then runs its demote
 * hook (or, fenced, waits for a watchdog that resumed where it stood): a master may have
 * been elected meanwhile. Such an overlap is counted (vm_overlaps, the longest after the
 * resume), not failed; any other is a failure, and so is one past this bound. */
static bool vm_overlap(struct sim *s, int n)
{
	const struct simnode *sn = &s->n[n];
	uint64_t bound = s->base.lease + s->hook_max + s->base.fence_timeout + 50 * MS;

	if (!sn->vm_paused_at || s->now < sn->vm_paused_at || s->now > sn->vm_resumed + bound)
		return false;
	s->vm_overlap = true;
	if (s->now > sn->vm_resumed && s->now - sn->vm_resumed > s->vm_overlap_after)
		s->vm_overlap_after = s->now - sn->vm_resumed;
	return true;
}

static void check(struct sim *s)
{
	int masters = 0, first = -1;

	for (int n = 0; n < NN; n++) {
		/* (a stopped agent cannot demote: its watchdog resets it instead) */
		if (s->n[n].up && s->n[n].promoted && local(s, n) > s->n[n].sm.lease_until + MS &&
		    s->now > s->n[n].paused_until)
			sim_failf(s, "%s still promoted %llu us after its lease", names[n],
				  (unsigned long long)(local(s, n) - s->n[n].sm.lease_until));
		if (!acting(s, n))
			continue;
		if (masters++ == 0)
			first = n;
		else if (!vm_overlap(s, first) && !vm_overlap(s, n))
			sim_failf(s, "two masters at t=%llu us: %s and %s",
				  (unsigned long long)s->now, names[first], names[n]);
	}
	if (masters) {
		s->master_since_crash = true;
		s->last_master_at = s->now;
	}
}

static void start_node(struct sim *s, int n)
{
	struct simnode *sn = &s->n[n];
	struct elect_params p = s->base;
	struct elect_event ev = {.type = ELECT_EV_START, .eligible = true};

	sn->up = true;
	sn->gen++;
	sn->boot = (uint64_t)n << 48 | sn->gen;
	sn->promoted = false;
	sn->hook_busy = false;
	sn->wd_armed = false;
	sn->paused_until = 0;
	sn->timer_at = 0;
	p.self = n;
	p.seq_base = sn->gen << 32;
	sn->hb_seq = sn->gen << 32;
	elect_init(&sn->sm, &p);
	step_node(s, n, &ev);
	if (p.external_heartbeats)
		push(s, (struct sev){.t = s->now + rng_range(&s->rng, 0, 20 * MS),
				     .kind = SEV_HBTICK,
				     .node = n,
				     .gen = sn->gen});
}

static void crash_node(struct sim *s, int n)
{
	if (acting(s, n)) {
		s->live_deadline = s->now + elect_master_timeout(&s->base) + SEC;
		s->master_since_crash = false;
		push(s, (struct sev){
			    .t = s->live_deadline, .kind = SEV_LIVENESS, .node = n, .at = s->now});
	}
	s->n[n].up = false;
	s->n[n].promoted = false;
	s->n[n].hook_busy = false;
	s->qd.sess_up[n] = false;
}

static void sim_init(struct sim *s, uint64_t seed, bool qdev)
{
	static struct sev qbuf[MAXQ];

	memset(s, 0, sizeof(*s));
	s->q = qbuf;
	s->seed = seed;
	s->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	s->qd.holder = ELECT_HOLDER_NONE;
	for (int n = 0; n < NN; n++) {
		s->qd.reach[n] = true;
		s->n[n].offset = (uint64_t)(n + 1) * 7777777 * SEC + rng_range(&s->rng, 0, SEC);
	}
	s->base = (struct elect_params){
	    .n_nodes = NN,
	    .has_qdev = qdev,
	    .heartbeat_interval = 200 * MS,
	    .disk_heartbeat_interval = 250 * MS,
	    .lease = 500 * MS,
	    .io_timeout = 1 * SEC,
	    .fence_timeout = 1 * SEC,
	};
	memcpy(s->base.side, sides, sizeof(sides));
	memcpy(s->base.rank, ranks, sizeof(ranks));
	s->net = (struct net_model){.slow_max = 150 * MS};
	s->now = 1;
}

/* A fault happening now: remembered so the liveness check only judges calm windows. */
static void note_fault_at(struct sim *s, uint64_t t)
{
	if (s->n_faults < (int)(sizeof(s->fault_times) / sizeof(s->fault_times[0])))
		s->fault_times[s->n_faults++] = t;
	else
		s->faults_overflow = true;
}

static void note_fault(struct sim *s)
{
	note_fault_at(s, s->now);
}

static bool calm(const struct sim *s, uint64_t from, uint64_t to, uint64_t except)
{
	if (s->faults_overflow)
		return false;
	for (int i = 0; i < s->n_faults; i++)
		if (s->fault_times[i] >= from && s->fault_times[i] <= to &&
		    s->fault_times[i] != except)
			return false;
	return true;
}

static int current_master(const struct sim *s)
{
	for (int n = 0; n < NN; n++)
		if (acting(s, n))
			return n;
	return -1;
}

/* Whether e is for a stopped agent: then it waits until the agent runs again. */
static bool deferred(struct sim *s, struct sev *e)
{
	switch (e->kind) {
	case SEV_TIMER:
	case SEV_HB:
	case SEV_ACK:
	case SEV_QD_DONE:
	case SEV_HBTICK:
	case SEV_HOOK_DONE:
		break;
	case SEV_QD_APPLY:
	case SEV_CRASH:
	case SEV_RESTART:
	case SEV_PARTITION:
	case SEV_QDEV_REACH:
	case SEV_OP_DEMOTE:
	case SEV_LIVENESS:
	case SEV_CORE:
	case SEV_LINK:
	case SEV_WATCHDOG:
	case SEV_PAUSE:
		return false;
	}
	if (e->node < 0 || !s->n[e->node].up || s->now >= s->n[e->node].paused_until)
		return false;
	e->t = s->n[e->node].paused_until;
	push(s, *e);
	return true;
}

static void pause_node(struct sim *s, int n, uint64_t len, enum pause_kind k)
{
	static const char *const what[_PAUSE_MAX] = {"agent stopped",
						     "VM paused (clock and watchdog frozen)"};
	uint64_t end = s->now + len;
	uint64_t more = end - (s->now > s->n[n].paused_until ? s->now : s->n[n].paused_until);

	trace(s, 1, "%s: %s for %llu ms", names[n], what[k], (unsigned long long)(len / MS));
	s->n[n].paused_until = end;
	switch (k) {
	case PAUSE_AGENT:
		break;
	case PAUSE_VM:
		s->n[n].pet += more;	/* the watchdog goes on from where it stood */
		s->n[n].offset -= more; /* and so does the clock */
		if (!s->n[n].vm_paused_at || s->n[n].vm_resumed < s->now)
			s->n[n].vm_paused_at = s->now;
		s->n[n].vm_resumed = end;
		break;
	case _PAUSE_MAX:
		break;
	}
}

static void dispatch(struct sim *s, struct sev *e)
{
	struct elect_event ev = {0};
	int n = e->node;

	if (e->kind == SEV_HOOK_DONE && e->gen == s->n[n].gen && s->n[n].hook_busy &&
	    s->n[n].hook_end == e->t) {
		s->n[n].hook_busy = false; /* the hook process ended; the agent may learn later */
		e->flag = true;
	}
	if (deferred(s, e))
		return;

	if ((e->kind >= SEV_CRASH && e->kind < SEV_LIVENESS) || e->kind == SEV_CORE ||
	    e->kind == SEV_LINK)
		trace(s, 1, "FAULT kind=%d node=%d flag=%d len=%llu", e->kind, n, e->flag,
		      (unsigned long long)e->at);

	switch (e->kind) {
	case SEV_TIMER:
		if (e->gen != s->n[n].gen || e->at != s->n[n].timer_at)
			return;
		if (local(s, n) < e->at) { /* the clock stood still meanwhile (a paused VM) */
			e->t = global_of(s, n, e->at);
			push(s, *e);
			return;
		}
		ev.type = ELECT_EV_TIMER;
		step_node(s, n, &ev);
		return;
	case SEV_HB:
	case SEV_ACK:
		if (e->gen != s->n[n].gen)
			return;
		ev.type = e->kind == SEV_HB ? ELECT_EV_HEARTBEAT : ELECT_EV_HEARTBEAT_ACK;
		trace(s, 4, "%s <- %s from %s seq=%llu", names[n], elect_event_type_to_str(ev.type),
		      names[e->from], (unsigned long long)e->seq);
		ev.node = e->from;
		ev.seq = e->seq;
		ev.epoch = e->epoch;
		ev.role = e->role;
		if (e->kind == SEV_ACK && s->base.external_heartbeats &&
		    (e->seq >> 32) == s->n[n].gen && e->seq <= s->n[n].hb_seq &&
		    s->n[n].hb_seq - e->seq < 64)
			ev.sent_at = s->n[n].hb_at[e->seq % 64];
		step_node(s, n, &ev);
		return;
	case SEV_HBTICK: {
		struct simnode *sn = &s->n[n];
		uint64_t epoch;
		enum elect_role role;

		if (e->gen != sn->gen || !sn->up)
			return;
		elect_heartbeat_content(&sn->sm, &epoch, &role);
		sn->hb_seq++;
		sn->hb_at[sn->hb_seq % 64] = local(s, n);
		for (int m = 0; m < NN; m++)
			if (m != n)
				net_send(s, SEV_HB, n, m, sn->hb_seq, epoch, role);
		e->t = s->now + s->base.heartbeat_interval + rng_range(&s->rng, 0, 2 * MS);
		push(s, *e);
		return;
	}
	case SEV_QD_APPLY:
		if (!s->qd.reach[n] && rng_chance(&s->rng, 500)) {
			/* lost on the way to the target: never applied, the session breaks */
			s->qd.sess_up[n] = false;
			e->io = ELECT_IO_ERROR;
			e->kind = SEV_QD_DONE;
			e->t = s->now + rng_range(&s->rng, 1 * MS, 400 * MS);
			push(s, *e);
			return;
		}
		e->io = qdev_apply(&s->qd, e);
		e->kind = SEV_QD_DONE;
		if (!s->qd.reach[n]) { /* applied, but the answer is lost with the link */
			s->qd.sess_up[n] = false;
			e->io = ELECT_IO_ERROR;
		}
		if (rng_chance(&s->rng, s->lost_done)) {
			e->io = ELECT_IO_ERROR;
			note_fault(s);
		}
		e->t = s->now + rng_range(&s->rng, 100, 3 * MS);
		push(s, *e);
		return;
	case SEV_QD_DONE:
		if (e->gen != s->n[n].gen)
			return;
		ev.type = done_type(e->op);
		ev.io = e->io;
		ev.seq = e->seq;
		ev.holder = e->holder;
		ev.registered = e->registered;
		memcpy(ev.slots, e->slots, sizeof(e->slots));
		if (ev.io != ELECT_IO_OK)
			memset(ev.slots, 0, sizeof(ev.slots));
		step_node(s, n, &ev);
		return;
	case SEV_CRASH:
		if (n < 0)
			n = current_master(s);
		if (n < 0)
			n = (int)rng_range(&s->rng, 0, NN - 1);
		if (s->n[n].up)
			crash_node(s, n);
		push(s, (struct sev){.t = s->now + e->at, .kind = SEV_RESTART, .node = n});
		return;
	case SEV_RESTART:
		if (!s->n[n].up) {
			note_fault(s);
			start_node(s, n);
		}
		return;
	case SEV_PARTITION:
		s->net.partition = e->flag;
		return;
	case SEV_QDEV_REACH:
		for (int m = 0; m < NN; m++)
			if (n < 0 || m == n)
				s->qd.reach[m] = e->flag;
		return;
	case SEV_OP_DEMOTE:
		n = current_master(s);
		if (n >= 0) {
			ev.type = ELECT_EV_OPERATOR_DEMOTE;
			step_node(s, n, &ev);
		}
		return;
	case SEV_CORE:
		ev.type = ELECT_EV_ELIGIBLE;
		ev.eligible = e->flag;
		for (int m = 0; m < NN; m++) {
			if (!s->n[m].up || s->n[m].sm.eligible == e->flag)
				continue;
			if (!e->flag && m != current_master(s))
				continue;
			step_node(s, m, &ev);
		}
		return;
	case SEV_PAUSE:
		if (n < 0)
			n = current_master(s);
		if (n >= 0 && s->n[n].up && s->now + e->at > s->n[n].paused_until)
			pause_node(s, n, e->at, (enum pause_kind)e->seq);
		return;
	case SEV_LINK: /* seq bit 0: n -> m, bit 1: m -> n */
		for (int m = 0; m < NN; m++) {
			if (m == n || (e->from >= 0 && m != e->from))
				continue;
			if (e->seq & 1)
				s->net.cut[n][m] = e->flag;
			if (e->seq & 2)
				s->net.cut[m][n] = e->flag;
		}
		return;
	case SEV_HOOK_DONE:
		if (e->gen != s->n[n].gen || !e->flag)
			return;
		ev.type = ELECT_EV_HOOK_DONE;
		step_node(s, n, &ev);
		return;
	case SEV_WATCHDOG:
		if (e->gen != s->n[n].gen || !s->n[n].up)
			return;
		if (s->n[n].pet + s->base.fence_timeout > s->now) { /* petted since */
			e->t = s->n[n].pet + s->base.fence_timeout;
			push(s, *e);
			return;
		}
		s->n[n].wd_armed = false;
		trace(s, 1, "%s reset by its watchdog", names[n]);
		note_fault(s);
		s->n[n].resets++;
		crash_node(s, n);
		push(s, (struct sev){.t = s->now + rng_range(&s->rng, 300 * MS, 2 * SEC),
				     .kind = SEV_RESTART,
				     .node = n});
		return;
	case SEV_LIVENESS:
		if (s->live_deadline != e->t || s->master_since_crash)
			return;
		if (calm(s, e->at > 2 * SEC ? e->at - 2 * SEC : 0, e->t, e->at))
			sim_failf(s, "no master %llu us after %s (master) crashed at t=%llu us",
				  (unsigned long long)(e->t - e->at), names[n],
				  (unsigned long long)e->at);
		return;
	}
}

static void sim_run_until(struct sim *s, uint64_t t)
{
	while (s->nq > 0 && s->q[0].t <= t && !s->fail[0]) {
		struct sev e = pop(s);

		s->now = e.t;
		dispatch(s, &e);
		check(s);
	}
	s->now = t;
	check(s);
}

/* Schedules a fault at time t (and remembers it for the liveness judgement). */
static void sim_fault(struct sim *s, struct sev e)
{
	note_fault_at(s, e.t);
	push(s, e);
}

/* ---- random schedules ---- */

enum family {
	FAM_CLASSIC, /* crashes, compartment partitions, quorum device lost, operator, core */
	FAM_LINKS,   /* directional and single-link cuts (also inside a compartment), NIC flaps */
	FAM_HOOKS,   /* slow demote hooks around demotes, core failures, crashes, lost devices */
	FAM_PAUSE,   /* agents stopped (SIGSTOP, the clock runs) while the watchdog runs */
	FAM_VM,	     /* VMs paused: clock and (virtual) watchdog frozen (measured, see check) */
	FAM_LASTING, /* one node loses the quorum device for good; liveness judged all the same */
	_FAM_MAX
};

static const char *const fam_names[_FAM_MAX] = {"classic", "links", "hooks",
						"pause",   "vm",    "lasting"};

static void fault_pair(struct sim *s, struct sev on, uint64_t len)
{
	sim_fault(s, on);
	on.t += len;
	on.flag = !on.flag;
	sim_fault(s, on);
}

static void classic_fault(struct sim *s, uint64_t t, uint64_t len, int n)
{
	switch (rng_range(&s->rng, 0, 6)) {
	case 0: /* crash the master */
		n = -1;
		/* fall through */
	case 1:
		sim_fault(s, (struct sev){.t = t, .kind = SEV_CRASH, .node = n, .at = len});
		break;
	case 2:
		fault_pair(s, (struct sev){.t = t, .kind = SEV_PARTITION, .flag = true}, len);
		break;
	case 3:
		if (rng_chance(&s->rng, 300))
			n = -1;
		fault_pair(s, (struct sev){.t = t, .kind = SEV_QDEV_REACH, .node = n}, len);
		break;
	case 4: /* partition and quorum device lost together */
		fault_pair(s, (struct sev){.t = t, .kind = SEV_PARTITION, .flag = true}, len);
		fault_pair(s, (struct sev){.t = t, .kind = SEV_QDEV_REACH, .node = -1}, len);
		break;
	case 5:
		sim_fault(s, (struct sev){.t = t, .kind = SEV_OP_DEMOTE});
		break;
	default: /* the master's core health fails, and recovers */
		fault_pair(s, (struct sev){.t = t, .kind = SEV_CORE}, len);
		break;
	}
}

static void link_fault(struct sim *s, uint64_t t, uint64_t len, int n)
{
	int m = (int)rng_range(&s->rng, 0, NN - 1);

	if (m == n)
		m = (m + 1) % NN;
	switch (rng_range(&s->rng, 0, 4)) {
	case 0: /* one link, one direction */
		fault_pair(
		    s,
		    (struct sev){
			.t = t, .kind = SEV_LINK, .node = n, .from = m, .seq = 1, .flag = true},
		    len);
		break;
	case 1: /* one link, both directions */
		fault_pair(
		    s,
		    (struct sev){
			.t = t, .kind = SEV_LINK, .node = n, .from = m, .seq = 3, .flag = true},
		    len);
		break;
	case 2: /* all of a node's sending, or receiving */
		fault_pair(s,
			   (struct sev){.t = t,
					.kind = SEV_LINK,
					.node = n,
					.from = -1,
					.seq = rng_range(&s->rng, 1, 2),
					.flag = true},
			   len);
		break;
	case 3: /* NIC down: network and quorum device, the session breaks */
		fault_pair(
		    s,
		    (struct sev){
			.t = t, .kind = SEV_LINK, .node = n, .from = -1, .seq = 3, .flag = true},
		    len);
		fault_pair(s, (struct sev){.t = t, .kind = SEV_QDEV_REACH, .node = n}, len);
		break;
	default: /* a node loses the quorum device, another the network to it */
		fault_pair(s, (struct sev){.t = t, .kind = SEV_QDEV_REACH, .node = n}, len);
		fault_pair(s,
			   (struct sev){.t = t + rng_range(&s->rng, 0, 300 * MS),
					.kind = SEV_LINK,
					.node = m,
					.from = -1,
					.seq = 3,
					.flag = true},
			   len);
		break;
	}
}

static void random_faults(struct sim *s, enum family fam, uint64_t calm_from)
{
	int k = (int)rng_range(&s->rng, 0, 9);

	for (int i = 0; i < k; i++) {
		uint64_t t = rng_range(&s->rng, 500 * MS, calm_from - 3 * SEC);
		uint64_t len = rng_range(&s->rng, 100 * MS, 2500 * MS);
		int n = (int)rng_range(&s->rng, 0, NN - 1);

		if (t + len > calm_from - 2 * SEC)
			len = calm_from - 2 * SEC - t;
		switch (fam) {
		case FAM_CLASSIC:
			classic_fault(s, t, len, n);
			break;
		case FAM_LINKS:
			if (rng_chance(&s->rng, 800))
				link_fault(s, t, len, n);
			else
				classic_fault(s, t, len, n);
			break;
		case FAM_HOOKS:
			classic_fault(s, t, len, n);
			break;
		case FAM_LASTING:
			classic_fault(s, t, len, n);
			break;
		case FAM_PAUSE:
		case FAM_VM:
			if (rng_chance(&s->rng, 600))
				sim_fault(
				    s, (struct sev){.t = t,
						    .kind = SEV_PAUSE,
						    .node = rng_chance(&s->rng, 600) ? -1 : n,
						    .at = rng_range(&s->rng, 50 * MS, 3 * SEC),
						    .seq = fam == FAM_VM ? PAUSE_VM : PAUSE_AGENT});
			else
				classic_fault(s, t, len, n);
			break;
		case _FAM_MAX:
			break;
		}
	}
}

/* One schedule; returns 0 or fills s->fail. */
static int run_schedule(struct sim *s, uint64_t seed, bool qdev, enum family fam, uint64_t length)
{
	sim_init(s, seed, qdev);
	if (getenv("ELECT_SIM_NO_WATCHDOG")) /* to show what the watchdog is for */
		s->base.fence_timeout = 0;
	for (int n = 0; n < NN; n++)
		s->n[n].ppm = (int64_t)rng_range(&s->rng, 0, 600) - 300;
	s->hook_max =
	    fam == FAM_HOOKS ? rng_range(&s->rng, 0, 3 * SEC) : rng_range(&s->rng, 0, 300 * MS);
	s->base.external_heartbeats = seed % 2; /* half as the agent runs it, behind hs */
	if (seed % 8 >= 6) /* a quarter: one compartment, as admin instances are */
		memset(s->base.side, 0, sizeof(s->base.side));
	s->net.drop = (unsigned)rng_range(&s->rng, 0, 100);
	s->net.dup = (unsigned)rng_range(&s->rng, 0, 50);
	s->net.slow = (unsigned)rng_range(&s->rng, 0, 150);
	s->stall = qdev ? (unsigned)rng_range(&s->rng, 0, 30) : 0;
	s->lost_done = qdev ? (unsigned)rng_range(&s->rng, 0, 30) : 0;
	for (int n = 0; n < NN; n++)
		push(s, (struct sev){.t = 1 + rng_range(&s->rng, 0, 400 * MS),
				     .kind = SEV_RESTART,
				     .node = n});
	if (fam == FAM_LASTING) /* for good: no recovery before the end */
		sim_fault(s, (struct sev){.t = rng_range(&s->rng, 1, 3 * SEC),
					  .kind = SEV_QDEV_REACH,
					  .node = (int)rng_range(&s->rng, 0, NN - 1)});
	random_faults(s, fam, length - 4 * SEC);
	sim_run_until(s, length);
	/* 4 s without faults (only the network's and the quorum device's own hiccups): a
	 * master must have acted during the last master timeout (which includes the
	 * watchdog's) + one quorum-device command given up (a stall) + 0.5 s. */
	uint64_t window = elect_master_timeout(&s->base) + s->base.io_timeout + 500 * MS;

	if (!s->fail[0] && s->last_master_at + window < length)
		sim_failf(s, "no master during the last %llu ms, after 4 s without faults",
			  (unsigned long long)(window / MS));
	return s->fail[0] ? -1 : 0;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static void run_random(bool qdev, enum family fam, uint64_t count, uint64_t seed0)
{
	static struct sim s;
	struct timespec t0, t1;
	uint64_t promotions = 0, failed = 0, vm_overlaps = 0, vm_after = 0;
	bool keep_going = env_u64("ELECT_SIM_KEEP_GOING", 0) != 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t seed = seed0 + i;

		if (run_schedule(&s, seed, qdev, fam, 12 * SEC) < 0 && keep_going) {
			if (failed++ < 5)
				print_message("  seed %llu: %s\n", (unsigned long long)seed,
					      s.fail);
		} else if (s.fail[0]) {
			print_error("schedule failed: ELECT_SIM_SEED=%llu ELECT_SIM_SCHEDULES=1 "
				    "(qdev=%d family=%s): %s\n",
				    (unsigned long long)seed, qdev, fam_names[fam], s.fail);
			fail();
		}
		promotions += (uint64_t)s.promotions;
		vm_overlaps += s.vm_overlap;
		vm_after = s.vm_overlap_after > vm_after ? s.vm_overlap_after : vm_after;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (failed) {
		print_error("%llu of %llu schedules failed\n", (unsigned long long)failed,
			    (unsigned long long)count);
		fail();
	}
	print_message("elect sim: %llu schedules (qdev=%d family=%s, seeds %llu..), %llu "
		      "promotions, %.1f s\n",
		      (unsigned long long)count, qdev, fam_names[fam], (unsigned long long)seed0,
		      (unsigned long long)promotions,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (fam == FAM_VM)
		print_message("elect sim: paused VMs acted beside a new master in %llu of %llu "
			      "schedules, at most %llu ms after their resume\n",
			      (unsigned long long)vm_overlaps, (unsigned long long)count,
			      (unsigned long long)(vm_after / MS));
}
