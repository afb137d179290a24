/* The election driver; see elect_drv.h. */
#include "elect_drv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config_store.h"
#include "console.h"
#include "health.h"
#include "hs.h"
#include "log.h"
#include "loop.h"
#include "qdev.h"
#include "spawn.h"
#include "util.h"
#include "watchdog.h"

/* The config refuses a pair with more members than the election and its slots hold. */
_Static_assert(CFG_MAX_PAIR_NODES <= ELECT_MAX_NODES, "election table per pair");
_Static_assert(CFG_MAX_PAIR_NODES <= QDEV_MAX_SLOTS, "quorum slots per pair");

/* An acknowledgement's number: the heartbeat's (below 2^56) | instance kind << 56. */
#define ACK_KIND_SHIFT 56

struct hook_run {
	struct elect_inst *inst;
	struct spawn *sp;
	bool promote;
};

struct elect_inst {
	struct elect_drv *d;
	enum cfg_kind kind;
	bool active;
	struct elect sm;
	int map[ELECT_MAX_NODES]; /* pair index -> node index in cfg */
	int n_map;
	uint64_t keys[ELECT_MAX_NODES];
	struct qdev *qdev;
	struct timer *timer;
	struct hook_run *hook;
	uint64_t role_since;
	uint64_t foreign_key;	 /* the last holder key read that belongs to no pair node */
	uint64_t qdev_opened_us; /* when the session to the quorum device was first asked for */
	bool demote_ended;	 /* no demote hook ran (none configured): report its end */
	enum elect_io demote_io;
};

struct elect_drv {
	struct node_env *env;
	struct config_lkg *lkg; /* the journal: epochs and roles across reboots, or NULL */
	/* fencing (SPEC §7): the watchdog, or none configured (unfenced), or configured but
	 * missing (then this node refuses to become master: not eligible) */
	struct watchdog *wd;
	struct timer *wd_timer;
	bool unfenced;
	char wd_missing[CFG_PATH_MAX + 64];
	char wd_stopped[96];  /* why the keep-alives stopped; "" while petted */
	char wd_blocked[96];  /* why the last keep-alive was not sent */
	uint64_t wd_last_pet; /* monotonic µs of the last keep-alive */
	const uint8_t
	    *cluster_key; /* while the instances are set up: their slot MAC keys come from it */
	struct elect_inst k[_CFG_KIND_MAX];
	struct elect_transport tr;
	bool has_tr;
	/* Eligibility (SPEC §7) has two inputs: the profile (the decision's) and core
	 * health (the health engine's verdict, "" when every core component is healthy). */
	bool profile_ok;
	char core_failure[96];
};

static const struct cfg *cfg_of(const struct elect_inst *in)
{
	return in->d->env->cfg;
}

static const char *node_name(const struct elect_inst *in, int pidx)
{
	return pidx >= 0 && pidx < in->sm.p.n_nodes ? cfg_of(in)->nodes[in->map[pidx]].name : "-";
}

/* ---- hooks: exec without a shell, own process group, bounded by hook_timeout ---- */

static struct hook_run *hook_free(struct hook_run *h)
{
	if (!h)
		return NULL;
	spawn_free(h->sp);
	free(h);
	return NULL;
}

static void step(struct elect_inst *in, const struct elect_event *ev);

static void hook_done(struct spawn *sp, int status, bool timed_out, void *ud)
{
	struct hook_run *h = ud;
	struct elect_inst *in = h->inst;
	bool promote = h->promote;
	struct elect_event ev = {.type = ELECT_EV_HOOK_DONE,
				 .io = !timed_out && status == 0 ? ELECT_IO_OK : ELECT_IO_ERROR};

	(void)sp;
	in->hook = hook_free(h);
	if (promote)
		return;
	/* Only now may the token be handed on; a demote hook that failed or hung past
	 * hook_timeout leaves the instance possibly running: the election fences (keeps
	 * the token, stops petting the watchdog) instead of releasing. */
	if (ev.io != ELECT_IO_OK)
		log_error("election %s: the demote hook %s: fencing, the token is not handed on",
			  cfg_kind_to_str(in->kind), timed_out ? "hung" : "failed");
	step(in, &ev);
}

static void hook_start(struct elect_inst *in, bool promote, uint64_t epoch)
{
	const struct cfg *c = cfg_of(in);
	const char *cmd = promote ? c->roles[in->kind].promote : c->roles[in->kind].demote;
	const char *kind = cfg_kind_to_str(in->kind);
	char name[32], node[CFG_NAME_MAX + 16], ekind[32], role[32], eepoch[48];

	in->hook = hook_free(in->hook); /* a demote cuts a promote hook short */
	if (!promote) { /* unless the hook starts below, its end is reported at once */
		in->demote_ended = true;
		in->demote_io = ELECT_IO_ERROR;
	}
	if (!cmd[0]) {
		in->demote_io = ELECT_IO_OK;
		return;
	}
	struct hook_run *h = calloc(1, sizeof(*h));
	if (!h)
		return;
	*h = (struct hook_run){.inst = in, .promote = promote};
	snprintf(name, sizeof(name), "%s-%s", promote ? "promote" : "demote", kind);
	snprintf(node, sizeof(node), "COMPARTD_NODE=%s", c->nodes[in->d->env->self].name);
	snprintf(ekind, sizeof(ekind), "COMPARTD_KIND=%s", kind);
	snprintf(role, sizeof(role), "COMPARTD_ROLE=%s", promote ? "master" : "slave");
	snprintf(eepoch, sizeof(eepoch), "COMPARTD_EPOCH=%llu", (unsigned long long)epoch);
	const char *const env[] = {node, ekind, role, eepoch, NULL};
	const struct spawn_hook sh = {
	    .name = name, .command = cmd, .env = env, .timeout_us = c->timeouts.hook_timeout};
	h->sp = spawn_hook(in->d->env->loop, &sh, hook_done, h);
	if (!h->sp) {
		log_error_errno(-errno, "Failed to start the %s hook", name);
		spawn_hook_event(name, "failed", -1);
		free(h);
		return;
	}
	in->hook = h;
	if (!promote)
		in->demote_ended = false;
}

/* ---- eligibility ---- */

static bool eligible(const struct elect_drv *d)
{
	return d->profile_ok && !d->core_failure[0] && !d->wd_missing[0];
}

/* Why this node is not eligible, for event=role cause= and the console. */
static const char *ineligible_cause(const struct elect_drv *d)
{
	if (d->core_failure[0])
		return d->core_failure;
	if (!d->profile_ok)
		return "profile not started, failed or wait-operator";
	if (d->wd_missing[0])
		return d->wd_missing;
	return "-";
}

static void step(struct elect_inst *in, const struct elect_event *ev);
static void wd_pet(struct elect_drv *d);

static void push_eligible(struct elect_drv *d)
{
	bool e = eligible(d);

	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct elect_event ev = {.type = ELECT_EV_ELIGIBLE, .eligible = e};

		if (d->k[k].active && d->k[k].sm.started && d->k[k].sm.eligible != e)
			step(&d->k[k], &ev);
	}
}

static void on_core(struct health *h, bool ok, const char *reason, void *ud)
{
	struct elect_drv *d = ud;
	bool before = eligible(d);

	(void)h;
	snprintf(d->core_failure, sizeof(d->core_failure), "%s", ok ? "" : reason);
	if (before != eligible(d))
		log_notice("election: %s%s",
			   eligible(d) ? "eligible again: core health ok"
				       : "not eligible: core component ",
			   eligible(d) ? "" : d->core_failure);
	push_eligible(d);
}

/* ---- actions ---- */

static void emit_role(struct elect_inst *in, const struct elect_action *a)
{
	const struct cfg *c = cfg_of(in);
	int pair = cfg_node_pair(c, in->d->env->self);
	struct event ev;

	in->role_since = now_usec();
	event_begin(&ev, "role");
	event_add(&ev, "pair", pair >= 0 ? c->pairs[pair].name : "-");
	event_add(&ev, "kind", cfg_kind_to_str(in->kind));
	event_add(&ev, "node", c->nodes[in->d->env->self].name);
	event_add(&ev, "role", elect_role_to_str(a->role));
	event_add_u64(&ev, "epoch", a->epoch);
	event_add(&ev, "reason", a->reason ? a->reason : "-");
	if (a->role == ELECT_ROLE_NONE || (a->reason && !strcmp(a->reason, "ineligible")))
		event_add(&ev, "cause", ineligible_cause(in->d));
	event_add_u64(&ev, "rt_us", realtime_usec());
	event_emit(&ev);
	/* SPEC §10: the epoch survives reboots, so this node never claims one it has seen.
	 * The write is synchronous: a slow one holds the loop, and the watchdog's pets. */
	uint64_t t0 = now_usec();
	int r = config_lkg_record_role(in->d->lkg, in->kind, elect_role_to_str(a->role), a->epoch);
	uint64_t took = now_usec() - t0;
	if (r < 0 && r != -ENODEV)
		log_warn_errno(r, "election %s: role not recorded in the journal, ignoring",
			       cfg_kind_to_str(in->kind));
	if (took > 100 * USEC_PER_MSEC)
		log_warn("election %s: recording the role in the journal took %llu ms (the loop "
			 "waited)",
			 cfg_kind_to_str(in->kind), (unsigned long long)(took / 1000));
}

static void submit(struct elect_inst *in, const struct elect_action *a)
{
	struct qdev_slot slot = {0};
	uint64_t victim = 0;
	enum qdev_op op = QDEV_OP_READ;

	switch (a->type) {
	case ELECT_ACT_QDEV_REGISTER:
		op = QDEV_OP_REGISTER;
		break;
	case ELECT_ACT_QDEV_READ:
		op = QDEV_OP_READ;
		break;
	case ELECT_ACT_QDEV_RESERVE:
		op = QDEV_OP_RESERVE;
		break;
	case ELECT_ACT_QDEV_RELEASE:
		op = QDEV_OP_RELEASE;
		break;
	case ELECT_ACT_QDEV_PREEMPT:
		op = QDEV_OP_PREEMPT;
		victim = a->node >= 0 && a->node < in->sm.p.n_nodes ? in->keys[a->node]
			 : a->node == ELECT_HOLDER_UNKNOWN	    ? in->foreign_key
								    : 0;
		break;
	case ELECT_ACT_QDEV_WRITE:
		op = QDEV_OP_WRITE;
		slot = (struct qdev_slot){.valid = true,
					  .node = (uint32_t)in->d->env->self,
					  .seq = a->seq,
					  .epoch = a->epoch,
					  .role = (uint8_t)a->role};
		memcpy(slot.boot_id, in->d->env->boot_id, sizeof(slot.boot_id));
		break;
	case ELECT_ACT_ARM_TIMER:
	case ELECT_ACT_SEND_HEARTBEAT:
	case ELECT_ACT_SEND_ACK:
	case ELECT_ACT_PROMOTE:
	case ELECT_ACT_DEMOTE:
	case ELECT_ACT_ROLE:
	case ELECT_ACT_DEGRADED:
	case _ELECT_ACT_MAX:
		return;
	}
	if (!in->qdev || qdev_submit(in->qdev, op, a->seq, &slot, victim) < 0)
		log_debug("election: %s not submitted", qdev_op_to_str(op));
}

static void apply(struct elect_inst *in, const struct elect_actions *out)
{
	struct elect_drv *d = in->d;

	for (int i = 0; i < out->n; i++) {
		const struct elect_action *a = &out->a[i];

		switch (a->type) {
		case ELECT_ACT_ARM_TIMER:
			timer_arm(in->timer, a->at);
			break;
		case ELECT_ACT_SEND_HEARTBEAT: /* the handshake layer sends them */
			break;
		case ELECT_ACT_SEND_ACK:
			/* One heartbeat carries both kinds; the ack says which one it backs. */
			if (d->has_tr && d->tr.send_ack)
				(void)d->tr.send_ack(d->tr.ud, in->map[a->node],
						     a->seq | (uint64_t)in->kind << ACK_KIND_SHIFT);
			break;
		case ELECT_ACT_QDEV_REGISTER:
		case ELECT_ACT_QDEV_READ:
		case ELECT_ACT_QDEV_WRITE:
		case ELECT_ACT_QDEV_RESERVE:
		case ELECT_ACT_QDEV_PREEMPT:
		case ELECT_ACT_QDEV_RELEASE:
			submit(in, a);
			break;
		case ELECT_ACT_PROMOTE:
			hook_start(in, true, a->epoch);
			break;
		case ELECT_ACT_DEMOTE:
			hook_start(in, false, in->sm.epoch);
			break;
		case ELECT_ACT_ROLE:
			emit_role(in, a);
			break;
		case ELECT_ACT_DEGRADED:
			log_notice("election %s: pair %s", cfg_kind_to_str(in->kind),
				   a->degraded
				       ? "degraded: the other compartment does not answer"
				       : "complete: the other compartment answers as slave");
			break;
		case _ELECT_ACT_MAX:
			break;
		}
	}
}

/* The path to mastership, one line per phase (SPEC §7 "Becoming master"): what an operator
 * reads after a failover that did not happen, and what tests time their faults by. */
static void log_phase(const struct elect_inst *in, enum elect_phase was,
		      const struct elect_actions *out)
{
	const struct elect *sm = &in->sm;
	const char *how = "-", *whom = "-";

	if (sm->phase == was)
		return;
	if (sm->phase != ELECT_PHASE_ACQUIRE) {
		log_info("election %s: phase %s (was %s)%s", cfg_kind_to_str(in->kind),
			 elect_phase_to_str(sm->phase), elect_phase_to_str(was),
			 sm->phase == ELECT_PHASE_IDLE && sm->role != ELECT_ROLE_MASTER
			     ? ": claim given up"
			     : "");
		return;
	}
	for (int i = 0; i < out->n; i++)
		if (out->a[i].type == ELECT_ACT_QDEV_RESERVE) {
			how = "reserve";
		} else if (out->a[i].type == ELECT_ACT_QDEV_PREEMPT) {
			how = "preempt";
			whom = out->a[i].node == ELECT_HOLDER_UNKNOWN
				   ? "unknown key"
				   : node_name(in, out->a[i].node);
		}
	log_info("election %s: phase acquire (%s %s), epoch %llu", cfg_kind_to_str(in->kind), how,
		 whom, (unsigned long long)sm->epoch);
}

static void step(struct elect_inst *in, const struct elect_event *ev)
{
	struct elect_actions out;
	enum elect_phase was = in->sm.phase;

	if (!in->active)
		return;
	if (elect_step(&in->sm, ev, now_usec(), &out) < 0)
		return;
	log_phase(in, was, &out);
	apply(in, &out);
	wd_pet(in->d);
	if (in->demote_ended) {
		struct elect_event done = {.type = ELECT_EV_HOOK_DONE, .io = in->demote_io};

		in->demote_ended = false;
		step(in, &done);
	}
}

static void on_timer(struct timer *t, void *ud)
{
	struct elect_event ev = {.type = ELECT_EV_TIMER};

	(void)t;
	step(ud, &ev);
}

static enum elect_io io_of(enum qdev_status st)
{
	switch (st) {
	case QDEV_OK:
		return ELECT_IO_OK;
	case QDEV_CONFLICT:
		return ELECT_IO_CONFLICT;
	case QDEV_ERROR:
		return ELECT_IO_ERROR;
	case _QDEV_STATUS_MAX:
		break;
	}
	return ELECT_IO_ERROR;
}

static void read_view(struct elect_inst *in, const struct qdev_view *v, struct elect_event *ev)
{
	ev->holder = ELECT_HOLDER_NONE;
	if (v->reserved) {
		ev->holder = ELECT_HOLDER_UNKNOWN;
		for (int i = 0; i < in->sm.p.n_nodes; i++)
			if (in->keys[i] == v->holder_key)
				ev->holder = i;
		if (ev->holder == ELECT_HOLDER_UNKNOWN)
			in->foreign_key = v->holder_key;
	}
	ev->registered = v->registered;
	for (int i = 0; i < in->sm.p.n_nodes && i < v->n_slots; i++) {
		const struct qdev_slot *s = &v->slots[i]; /* slot i: pair member i */
		struct elect_slot *e = &ev->slots[i];

		if (!s->valid || s->node != (uint32_t)in->map[i])
			continue;
		e->valid = true;
		memcpy(&e->boot, s->boot_id, sizeof(e->boot));
		e->seq = s->seq;
		e->epoch = s->epoch;
		e->role = s->role < _ELECT_ROLE_MAX ? (enum elect_role)s->role : ELECT_ROLE_NONE;
	}
}

static void on_qdev(struct qdev *q, enum qdev_op op, enum qdev_status st, uint64_t tag,
		    const struct qdev_view *view, void *ud)
{
	struct elect_inst *in = ud;
	struct elect_event ev = {.io = io_of(st), .seq = tag};

	(void)q;
	switch (op) {
	case QDEV_OP_REGISTER:
		ev.type = ELECT_EV_REGISTER_DONE;
		break;
	case QDEV_OP_READ:
		ev.type = ELECT_EV_READ_DONE;
		break;
	case QDEV_OP_WRITE:
		ev.type = ELECT_EV_WRITE_DONE;
		break;
	case QDEV_OP_RESERVE:
		ev.type = ELECT_EV_RESERVE_DONE;
		break;
	case QDEV_OP_PREEMPT:
		ev.type = ELECT_EV_PREEMPT_DONE;
		break;
	case QDEV_OP_RELEASE:
		ev.type = ELECT_EV_RELEASE_DONE;
		break;
	case _QDEV_OP_MAX:
		return;
	}
	if (st != QDEV_OK && op != QDEV_OP_READ)
		log_debug("election %s: %s: %s", cfg_kind_to_str(in->kind), qdev_op_to_str(op),
			  qdev_status_to_str(st));
	if (view)
		read_view(in, view, &ev);
	step(in, &ev);
}

/* ---- setup ---- */

static bool takes_part(const struct cfg *c, int node, enum cfg_kind kind)
{
	switch (kind) {
	case CFG_KIND_INFRA:
		return true;
	case CFG_KIND_ADMIN:
		return c->nodes[node].mgmt_capable &&
		       c->compartments[c->nodes[node].compartment].zone == CFG_ZONE_MZ;
	case _CFG_KIND_MAX:
		break;
	}
	return false;
}

/* The node's index among the pair's members of this kind (at most ELECT_MAX_NODES, so a
 * scan), -1 when it is none. */
static int member(const struct elect_inst *in, int node)
{
	for (int i = 0; i < in->n_map; i++)
		if (in->map[i] == node)
			return i;
	return -1;
}

/* Pair members of this kind, their sides (compartment order in the pair) and ranks. */
static int build_params(struct elect_inst *in, struct elect_params *p)
{
	const struct cfg *c = cfg_of(in);
	int self = in->d->env->self, pair = cfg_node_pair(c, self), first_comp = -1, n = 0;

	if (pair < 0)
		return -ENOENT;
	for (int i = 0; i < c->n_nodes; i++) {
		if (cfg_node_pair(c, i) != pair || !takes_part(c, i, in->kind))
			continue;
		if (n >= ELECT_MAX_NODES)
			return -E2BIG;
		if (first_comp < 0)
			first_comp = c->nodes[i].compartment;
		in->map[n] = i;
		p->side[n] = c->nodes[i].compartment == first_comp ? 0 : 1;
		in->keys[n] = qdev_key_derive(c->name, c->nodes[i].name, cfg_kind_to_str(in->kind));
		n++;
	}
	for (int i = 0; i < n; i++) {
		const struct cfg_node *a = &c->nodes[in->map[i]];

		p->rank[i] = 0;
		for (int j = 0; j < n; j++) {
			const struct cfg_node *b = &c->nodes[in->map[j]];

			if (b->priority > a->priority ||
			    (b->priority == a->priority && strcmp(b->name, a->name) < 0))
				p->rank[i]++;
		}
	}
	p->n_nodes = n;
	in->n_map = n;
	p->self = member(in, self);
	p->has_qdev = c->has_quorum;
	p->external_heartbeats = true;
	p->heartbeat_interval = c->timeouts.heartbeat_interval;
	p->disk_heartbeat_interval = c->timeouts.disk_heartbeat_interval;
	p->lease = c->timeouts.lease;
	p->io_timeout = 4 * c->timeouts.disk_heartbeat_interval;
	p->fence_timeout = in->d->wd ? watchdog_timeout(in->d->wd) : 0;
	p->pet_window = in->d->env->cfg->fencing.pet_window;
	p->refuse_master = !in->d->wd && !in->d->unfenced;
	return p->self >= 0 ? 0 : -ENOENT;
}

/* ---- fencing: the watchdog ---- */

/* Why no keep-alive may be sent now ("" when one may): the first kind that forbids it. */
static void pet_blocker(const struct elect_drv *d, uint64_t now, char *buf, size_t n)
{
	buf[0] = '\0';
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		const struct elect *sm = &d->k[k].sm;

		if (!d->k[k].active || elect_may_pet(sm, now))
			continue;
		snprintf(buf, n, "%s: %s", cfg_kind_to_str((enum cfg_kind)k),
			 sm->fenced	    ? "fenced, its demote hook failed or hung"
			 : sm->hook_pending ? "its demote hook still runs, no renewal confirmed"
					    : "master without a renewal confirmed in time");
		return;
	}
}

/* Petted while the loop runs and every election says its leases and hooks are in order
 * (elect_may_pet): right after each step, since a master may pet only within the pet
 * window of a renewal (SPEC §7 Fencing), and by this timer. A master whose renewals
 * stop, with its demote hook not finished, or a fenced one, stops the pets and the node
 * resets. */
static void wd_pet(struct elect_drv *d)
{
	uint64_t now = now_usec();
	char why[sizeof(d->wd_blocked)];

	if (!d->wd)
		return;
	pet_blocker(d, now, why, sizeof(why));
	if (why[0]) {
		snprintf(d->wd_blocked, sizeof(d->wd_blocked), "%s", why);
		/* Fenced is for good: said at once (between renewals a master only waits). */
		if (!d->wd_stopped[0] && strstr(why, "fenced")) {
			snprintf(d->wd_stopped, sizeof(d->wd_stopped), "%s", why);
			log_error(
			    "watchdog %s: keep-alives stop (%s): this node resets within %llu "
			    "ms",
			    watchdog_path(d->wd), why,
			    (unsigned long long)(watchdog_timeout(d->wd) / 1000));
		}
		return;
	}
	if (watchdog_pet(d->wd) < 0) {
		log_warn("watchdog %s: keep-alive failed", watchdog_path(d->wd));
		return;
	}
	if (d->wd_stopped[0])
		log_warn("watchdog %s: keep-alives resume after %llu ms (%s)", watchdog_path(d->wd),
			 (unsigned long long)((now - d->wd_last_pet) / 1000), d->wd_stopped);
	d->wd_stopped[0] = d->wd_blocked[0] = '\0';
	d->wd_last_pet = now;
}

/* Every quarter timeout. Half of it without a keep-alive is logged as an error (the console
 * shows it), with why: the node resets at the full timeout unless they resume. */
static void on_wd_timer(struct timer *t, void *ud)
{
	struct elect_drv *d = ud;
	uint64_t now;

	wd_pet(d);
	now = now_usec();
	if (d->wd_last_pet && !d->wd_stopped[0] &&
	    now - d->wd_last_pet > watchdog_timeout(d->wd) / 2) {
		snprintf(d->wd_stopped, sizeof(d->wd_stopped), "%s",
			 d->wd_blocked[0] ? d->wd_blocked : "the loop did not run");
		log_error(
		    "watchdog %s: no keep-alive for %llu ms (%s): this node resets at %llu ms "
		    "unless they resume",
		    watchdog_path(d->wd), (unsigned long long)((now - d->wd_last_pet) / 1000),
		    d->wd_stopped, (unsigned long long)(watchdog_timeout(d->wd) / 1000));
	}
	timer_arm_in(t, watchdog_timeout(d->wd) / 4);
}

static bool takes_part_any(const struct node_env *env)
{
	for (int k = 0; k < _CFG_KIND_MAX; k++)
		if (takes_part(env->cfg, env->self, (enum cfg_kind)k))
			return true;
	return false;
}

static bool is_chardev(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

static int wd_open(struct elect_drv *d)
{
	const struct cfg_fencing *f = &d->env->cfg->fencing;
	int r;

	if (!takes_part_any(d->env))
		return 0;
	if (strcmp(f->watchdog, "none") == 0) {
		d->unfenced = true;
		log_notice(
		    "election: unfenced ([fencing] watchdog = none): a hung master is not reset");
		return 0;
	}
	/* A host-mode agent (tests on a shared machine) never arms a real watchdog: one
	 * left armed resets the host. It may use a FIFO or file instead (the pet cadence). */
	r = !(d->env->pid1 && getpid() == 1) && is_chardev(f->watchdog)
		? -EPERM
		: watchdog_open(f->watchdog, f->watchdog_timeout, &d->wd);
	if (r < 0) {
		snprintf(d->wd_missing, sizeof(d->wd_missing), "no watchdog (%s: %s)", f->watchdog,
			 r == -EPERM ? "a real watchdog is armed only by PID 1" : strerror(-r));
		log_error("election: %s: this node does not become master "
			  "([fencing] watchdog = none runs unfenced)",
			  d->wd_missing);
		return 0;
	}
	d->wd_timer = timer_new(d->env->loop, on_wd_timer, d);
	if (!d->wd_timer)
		return -ENOMEM;
	timer_arm_in(d->wd_timer, 0);
	log_info("election: fenced by watchdog %s, timeout %llu ms", f->watchdog,
		 (unsigned long long)(watchdog_timeout(d->wd) / 1000));
	return 0;
}

/* On a clean stop the watchdog is disarmed, unless an instance may still run as master. */
static void wd_close(struct elect_drv *d)
{
	bool clean = true;

	for (int k = 0; k < _CFG_KIND_MAX; k++)
		if (d->k[k].active && (d->k[k].sm.role == ELECT_ROLE_MASTER ||
				       d->k[k].sm.hook_pending || d->k[k].sm.fenced))
			clean = false;
	d->wd_timer = timer_free(d->wd_timer);
	d->wd = watchdog_close(d->wd, clean);
}

static const char *fencing_str(const struct elect_drv *d, char *buf, size_t n)
{
	if (d->wd)
		snprintf(buf, n, "watchdog %s (%llu ms)", watchdog_path(d->wd),
			 (unsigned long long)(watchdog_timeout(d->wd) / 1000));
	else if (d->unfenced)
		snprintf(buf, n, "unfenced (watchdog = none)");
	else
		snprintf(buf, n, "%s: refuses master", d->wd_missing);
	return buf;
}

/* ---- fencing as `status` shows it ---- */

static void fenced_kinds(const struct elect_drv *d, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int k = 0; k < _CFG_KIND_MAX && len < n; k++)
		if (d->k[k].active && d->k[k].sm.fenced)
			len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? " " : "",
						cfg_kind_to_str((enum cfg_kind)k));
}

void elect_drv_fencing(const struct elect_drv *d, const struct cfg *c, struct elect_fencing *f)
{
	*f = (struct elect_fencing){.state = ELECT_FENCE_NOT_ARMED,
				    .timeout_us = c->fencing.watchdog_timeout};
	snprintf(f->watchdog, sizeof(f->watchdog), "%s", c->fencing.watchdog);
	if (d ? d->unfenced : strcmp(c->fencing.watchdog, "none") == 0)
		f->state = ELECT_FENCE_UNFENCED;
	if (!d || f->state == ELECT_FENCE_UNFENCED)
		return;
	if (d->wd_missing[0]) {
		f->state = ELECT_FENCE_MISSING;
		snprintf(f->detail, sizeof(f->detail), "%s", d->wd_missing);
		return;
	}
	if (!d->wd)
		return; /* it takes part in no election */
	f->state = ELECT_FENCE_ARMED;
	snprintf(f->watchdog, sizeof(f->watchdog), "%s", watchdog_path(d->wd));
	f->timeout_us = watchdog_timeout(d->wd);
	snprintf(f->stopped, sizeof(f->stopped), "%s", d->wd_stopped);
	fenced_kinds(d, f->detail, sizeof(f->detail));
	if (f->detail[0])
		f->state = ELECT_FENCE_FENCED;
}

static const char *fence_state_str(enum elect_fence_state s)
{
	switch (s) {
	case ELECT_FENCE_UNFENCED:
		return "unfenced";
	case ELECT_FENCE_NOT_ARMED:
		return "not-armed";
	case ELECT_FENCE_MISSING:
		return "missing";
	case ELECT_FENCE_ARMED:
		return "armed";
	case ELECT_FENCE_FENCED:
		return "fenced";
	}
	return "?";
}

static void fencing_json(const struct elect_fencing *f, struct strbuf *out)
{
	bool armed = f->state == ELECT_FENCE_ARMED || f->state == ELECT_FENCE_FENCED;

	sb_printf(out, "{\"state\":\"%s\",\"watchdog\":", fence_state_str(f->state));
	sb_json_str(out, f->watchdog);
	sb_printf(out, ",\"timeout_ms\":%llu,\"petted\":%s,\"stopped\":",
		  (unsigned long long)(f->timeout_us / 1000),
		  armed && !f->stopped[0] ? "true" : "false");
	f->stopped[0] ? sb_json_str(out, f->stopped) : sb_puts(out, "null");
	sb_puts(out, ",\"detail\":");
	f->detail[0] ? sb_json_str(out, f->detail) : sb_puts(out, "null");
	sb_puts(out, "}");
}

void elect_fencing_format(const struct elect_fencing *f, bool json, struct strbuf *out)
{
	unsigned long long ms = (unsigned long long)(f->timeout_us / 1000);

	if (json) {
		fencing_json(f, out);
		return;
	}
	switch (f->state) {
	case ELECT_FENCE_UNFENCED:
		sb_puts(out, "unfenced (watchdog = none): a hung master is not reset");
		return;
	case ELECT_FENCE_NOT_ARMED:
		sb_printf(out,
			  "watchdog %s (%llu ms), not armed yet (the election has not started)",
			  f->watchdog, ms);
		return;
	case ELECT_FENCE_MISSING:
		sb_printf(out, "%s: this node does not become master", f->detail);
		return;
	case ELECT_FENCE_ARMED:
		sb_printf(out, "watchdog %s (%llu ms)", f->watchdog, ms);
		if (f->stopped[0])
			sb_printf(out, ", keep-alives stopped (%s): the node resets", f->stopped);
		return;
	case ELECT_FENCE_FENCED:
		sb_printf(out,
			  "FENCED (%s: the demote hook failed or hung), watchdog %s (%llu ms) no "
			  "longer petted: the node resets",
			  f->detail, f->watchdog, ms);
		return;
	}
}

static int open_qdev(struct elect_inst *in)
{
	const struct cfg *c = cfg_of(in);
	const struct cfg_storage *qs = &c->quorum;
	int self = in->d->env->self, pair = cfg_node_pair(c, self), r;
	struct qdev_config qc = {
	    .lun = (int)qs->lun + 2 * pair + (int)in->kind,
	    .key = in->keys[in->sm.p.self],
	    .n_slots = in->sm.p.n_nodes, /* the pair's members of this kind, in config order */
	    .self_slot = in->sm.p.self,
	    .io_timeout = in->sm.p.io_timeout,
	    .isid = (uint32_t)(self * 2 + (int)in->kind + 1),
	};

	snprintf(qc.initiator, sizeof(qc.initiator), "iqn.2026-11.org.compartd:%s.%s.%s", c->name,
		 c->nodes[self].name, cfg_kind_to_str(in->kind));
	snprintf(qc.target, sizeof(qc.target), "%s", qs->target);
	/* this compartment's portal first */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < qs->n_portals && qc.n_portals < QDEV_MAX_PORTALS; i++)
			if ((qs->portals[i].compartment == c->nodes[self].compartment) ==
			    (pass == 0))
				snprintf(qc.portals[qc.n_portals++], sizeof(qc.portals[0]), "%s:%u",
					 qs->portals[i].host, qs->portals[i].port);
	in->qdev_opened_us = now_usec();
	if (!in->d->cluster_key ||
	    qdev_mac_key_derive(in->d->cluster_key, (unsigned)in->kind, qc.mac_key) < 0)
		return -EIO;
	r = qdev_new(in->d->env->loop, &qc, on_qdev, in, &in->qdev);
	sodium_memzero(qc.mac_key, sizeof(qc.mac_key));
	return r;
}

static int inst_init(struct elect_drv *d, enum cfg_kind kind)
{
	struct elect_inst *in = &d->k[kind];
	struct elect_params p = {0};
	uint64_t base;
	int r;

	in->d = d;
	in->kind = kind;
	if (!takes_part(d->env->cfg, d->env->self, kind))
		return 0;
	r = build_params(in, &p);
	if (r < 0)
		return r;
	memcpy(&base, d->env->boot_id, sizeof(base));
	p.seq_base = base >> 16 << 16; /* random per boot */
	p.epoch_floor = config_lkg_epoch(d->lkg, kind);
	if (p.epoch_floor)
		log_info("election %s: epochs up to %llu were seen before this boot (journal)",
			 cfg_kind_to_str(kind), (unsigned long long)p.epoch_floor);
	elect_init(&in->sm, &p);
	in->timer = timer_new(d->env->loop, on_timer, in);
	if (!in->timer)
		return -ENOMEM;
	if (p.has_qdev) {
		r = open_qdev(in);
		if (r < 0)
			return log_error_errno(r, "Failed to set up the quorum device for %s",
					       cfg_kind_to_str(kind));
	}
	in->active = true;
	return 0;
}

static int console_attach(struct elect_drv *d);

/* ---- health: the quorum device as this node's election sees it (SPEC §8) ---- */

/* Booting: the first login and the first read of the slots take a moment; not an alarm
 * (an operator would be told "needs an operator" for what settles by itself) before they
 * had their chance: two path timeouts and a second. */
static bool qdev_booting(const struct elect_inst *in)
{
	uint64_t grace = 2 * cfg_of(in)->timeouts.path_timeout + USEC_PER_SEC;
	return !in->sm.last_read_ok && now_usec() - in->qdev_opened_us < grace;
}

static int qdev_check_reachable(void *ud, struct strbuf *detail)
{
	struct elect_inst *in = ud;
	if (in->qdev && qdev_connected(in->qdev)) {
		sb_printf(detail, "via %s", qdev_portal(in->qdev));
		return 0;
	}
	if (qdev_booting(in)) {
		sb_puts(detail, "logging in");
		return 0;
	}
	sb_puts(detail, "no session to the quorum device");
	return -EHOSTUNREACH;
}

static int qdev_check_parses(void *ud, struct strbuf *detail)
{
	/* The slots were read back lately: the device answers, not only the TCP session. */
	struct elect_inst *in = ud;
	uint64_t now = now_usec(), bound = 4 * elect_read_interval(&in->sm.p);
	if (bound < USEC_PER_SEC)
		bound = USEC_PER_SEC;
	if (in->sm.last_read_ok && now - in->sm.last_read_ok <= bound)
		return 0;
	if (qdev_booting(in)) {
		sb_puts(detail, "waiting for the first read of the slots");
		return 0;
	}
	if (in->sm.last_read_ok)
		sb_printf(detail, "slots last read %llu ms ago",
			  (unsigned long long)((now - in->sm.last_read_ok) / 1000));
	else
		sb_puts(detail, "slots never read");
	return -ETIMEDOUT;
}

static int qdev_isolate(void *ud, struct strbuf *msg)
{
	/* Nothing to switch off: the election already counts only what the device answers. */
	sb_puts(msg, "the election relies on the network channel (heartbeat acks) meanwhile");
	return 0;
}

static const struct health_component_ops qdev_health_ops = {
    .check_reachable = qdev_check_reachable,
    .check_parses = qdev_check_parses,
    .isolate = qdev_isolate,
    .interval_us = USEC_PER_SEC,
};

static void qdev_health_register(struct elect_drv *d)
{
	if (!d->env->health)
		return;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct elect_inst *in = &d->k[k];
		if (in->active && in->sm.p.has_qdev &&
		    health_register(d->env->health, &qdev_health_ops, in, "qdev",
				    cfg_kind_to_str((enum cfg_kind)k), NULL) < 0)
			log_warn("quorum device health check for %s not registered, ignoring",
				 cfg_kind_to_str((enum cfg_kind)k));
	}
}

static void qdev_health_unregister(struct elect_drv *d)
{
	if (!d->env->health)
		return;
	for (int k = 0; k < _CFG_KIND_MAX; k++)
		health_unregister(d->env->health, "qdev", cfg_kind_to_str((enum cfg_kind)k));
}

int elect_drv_new(struct node_env *env, const uint8_t *cluster_key, struct config_lkg *lkg,
		  struct elect_drv **ret)
{
	struct elect_drv *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->env = env;
	d->lkg = lkg;
	r = wd_open(d);
	if (r < 0) {
		elect_drv_free(d);
		return r;
	}
	/* The quorum slots are sealed with a key derived from the cluster key. */
	d->cluster_key = cluster_key;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		r = inst_init(d, (enum cfg_kind)k);
		if (r < 0)
			break;
	}
	d->cluster_key = NULL;
	if (r < 0) {
		elect_drv_free(d);
		return r;
	}
	r = console_attach(d);
	if (r < 0) {
		elect_drv_free(d);
		return r;
	}
	qdev_health_register(d);
	if (env->health) {
		snprintf(d->core_failure, sizeof(d->core_failure), "%s",
			 health_core_reason(env->health));
		health_set_core_notify(env->health, on_core, d);
	}
	*ret = d;
	return 0;
}

struct elect_drv *elect_drv_free(struct elect_drv *d)
{
	if (!d)
		return NULL;
	if (d->env->health && d->env->health->core_notify == on_core)
		health_set_core_notify(d->env->health, NULL, NULL);
	qdev_health_unregister(d);
	wd_close(d);
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct elect_inst *in = &d->k[k];

		in->hook = hook_free(in->hook);
		in->qdev = qdev_free(in->qdev);
		in->timer = timer_free(in->timer);
	}
	free(d);
	return NULL;
}

void elect_drv_start(struct elect_drv *d, bool profile_ok)
{
	d->profile_ok = profile_ok;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct elect_event ev = {.type = ELECT_EV_START, .eligible = eligible(d)};

		step(&d->k[k], &ev);
	}
}

void elect_drv_set_eligible(struct elect_drv *d, bool profile_ok)
{
	d->profile_ok = profile_ok;
	push_eligible(d);
}

const char *elect_drv_ineligible_cause(const struct elect_drv *d)
{
	return eligible(d) ? NULL : ineligible_cause(d);
}

/* ---- the handshake layer's side ---- */

void elect_drv_set_transport(struct elect_drv *d, const struct elect_transport *t)
{
	d->tr = *t;
	d->has_tr = true;
}

void elect_drv_heartbeat_in(struct elect_drv *d, int node, const struct elect_hb_in *hb)
{
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct elect_inst *in = &d->k[k];
		struct elect_event ev = {
		    .type = ELECT_EV_HEARTBEAT, .seq = hb->seq, .epoch = hb->epoch[k]};

		if (!in->active || (ev.node = member(in, node)) < 0)
			continue;
		ev.role =
		    hb->role[k] < _ELECT_ROLE_MAX ? (enum elect_role)hb->role[k] : ELECT_ROLE_NONE;
		step(in, &ev);
	}
}

void elect_drv_ack_in(struct elect_drv *d, int node, uint64_t ack)
{
	uint64_t kind = ack >> ACK_KIND_SHIFT, seq = ack & ~(~0ULL << ACK_KIND_SHIFT);
	uint64_t at = d->has_tr && d->tr.sent_at ? d->tr.sent_at(d->tr.ud, seq) : 0;
	struct elect_event ev = {.type = ELECT_EV_HEARTBEAT_ACK, .seq = seq, .sent_at = at};
	struct elect_inst *in;

	if (kind >= _CFG_KIND_MAX)
		return;
	in = &d->k[kind]; /* only the kind the acknowledging node backs */
	if (!in->active || (ev.node = member(in, node)) < 0)
		return;
	step(in, &ev);
}

void elect_drv_fill(struct elect_drv *d, uint64_t epoch[_CFG_KIND_MAX], uint8_t role[_CFG_KIND_MAX])
{
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		enum elect_role r = ELECT_ROLE_NONE;

		epoch[k] = 0;
		if (d->k[k].active)
			elect_heartbeat_content(&d->k[k].sm, &epoch[k], &r);
		role[k] = (uint8_t)r;
	}
}

int elect_drv_qdev_alive(struct elect_drv *d, int node)
{
	const struct elect_inst *in = &d->k[CFG_KIND_INFRA];
	uint64_t now = now_usec();
	int i;

	if (!in->active || !in->sm.p.has_qdev || (i = member(in, node)) < 0 ||
	    in->sm.last_read_ok == 0 ||
	    now - in->sm.last_read_ok > 4 * in->sm.p.disk_heartbeat_interval)
		return -1;
	if (i == in->sm.p.self)
		return 1;
	return in->sm.peers[i].slot.valid &&
	       now - in->sm.peers[i].slot_changed <= elect_slot_silence(&in->sm.p);
}

enum elect_role elect_drv_role(const struct elect_drv *d, enum cfg_kind kind)
{
	return d->k[kind].active ? d->k[kind].sm.role : ELECT_ROLE_NONE;
}

/* ---- operator ---- */

static int op_common(struct elect_drv *d, enum cfg_kind kind, bool promote, struct strbuf *msg)
{
	struct elect_inst *in;
	const char *why;
	struct elect_event ev = {.type = promote ? ELECT_EV_OPERATOR_PROMOTE
						 : ELECT_EV_OPERATOR_DEMOTE};

	if (!d || kind >= _CFG_KIND_MAX || !d->k[kind].active) {
		sb_printf(msg, "this node takes no part in the %s election", cfg_kind_to_str(kind));
		return -ENOENT;
	}
	in = &d->k[kind];
	why = promote ? elect_promote_refusal(&in->sm, now_usec())
		      : elect_demote_refusal(&in->sm, now_usec());
	if (why) {
		sb_printf(msg, "refused: %s", why);
		return -EPERM;
	}
	step(in, &ev);
	sb_printf(msg,
		  promote ? "%s: taking over as soon as it is safe"
			  : "%s: demoted; the other compartment takes over",
		  cfg_kind_to_str(kind));
	return 0;
}

static int role_cmd(struct console_req *req, struct elect_drv *d, bool promote)
{
	const char *what = promote ? "promote" : "demote";
	enum cfg_kind kind;
	if (req->argc == 2 && !strcmp(req->argv[1], "infra"))
		kind = CFG_KIND_INFRA;
	else if (req->argc == 2 && !strcmp(req->argv[1], "admin"))
		kind = CFG_KIND_ADMIN;
	else {
		console_req_error(req, "usage: %s <infra|admin>", what);
		return -EINVAL;
	}
	struct strbuf msg;
	sb_init(&msg);
	int r = op_common(d, kind, promote, &msg);
	log_notice("console: %s %s: %s", what, cfg_kind_to_str(kind),
		   r < 0 ? "refused" : "accepted");
	r = console_req_answer(req, what, r, &msg);
	sb_free(&msg);
	return r;
}

static int cmd_promote(struct console_req *req, void *ud)
{
	return role_cmd(req, ud, true);
}

static int cmd_demote(struct console_req *req, void *ud)
{
	return role_cmd(req, ud, false);
}

/* ---- console: role ---- */

static void role_one(const struct elect_inst *in, bool json, struct strbuf *out)
{
	const struct elect *sm = &in->sm;
	uint64_t now = now_usec();
	uint64_t lease =
	    sm->role == ELECT_ROLE_MASTER && sm->lease_until > now ? sm->lease_until - now : 0;
	const char *holder = !sm->p.has_qdev			  ? "-"
			     : !sm->holder_known		  ? "?"
			     : sm->holder == ELECT_HOLDER_NONE	  ? "none"
			     : sm->holder == ELECT_HOLDER_UNKNOWN ? "unknown"
								  : node_name(in, sm->holder);
	const char *portal = in->qdev ? qdev_portal(in->qdev) : NULL;
	const char *qstate = !sm->p.has_qdev ? "none" : portal ? portal : "down";
	int pair = cfg_node_pair(cfg_of(in), in->d->env->self);
	char fb[CFG_PATH_MAX + 128];

	if (json) {
		sb_printf(out, "{\"kind\":\"%s\",\"pair\":", cfg_kind_to_str(in->kind));
		sb_json_str(out, cfg_of(in)->pairs[pair].name);
		sb_printf(out,
			  ",\"role\":\"%s\",\"epoch\":%llu,\"lease_ms\":%llu,\"degraded\":%s,"
			  "\"holder\":",
			  elect_role_to_str(sm->role),
			  (unsigned long long)(sm->role == ELECT_ROLE_MASTER ? sm->master_epoch
									     : sm->epoch),
			  (unsigned long long)(lease / 1000), sm->degraded ? "true" : "false");
		sb_json_str(out, holder);
		sb_printf(out, ",\"qdev\":\"%s\",\"eligible\":%s,\"ineligible\":", qstate,
			  sm->eligible ? "true" : "false");
		if (sm->eligible)
			sb_puts(out, "null");
		else
			sb_json_str(out, ineligible_cause(in->d));
		sb_puts(out, ",\"fencing\":");
		sb_json_str(out, fencing_str(in->d, fb, sizeof(fb)));
		sb_printf(out, ",\"unfenced\":%s,\"fenced\":%s", in->d->wd ? "false" : "true",
			  sm->fenced ? "true" : "false");
		sb_puts(out, ",\"candidates\":[");
		for (int s = 0; s < 2; s++) {
			sb_printf(out, s ? "," : "");
			sb_json_str(out, node_name(in, elect_candidate(sm, s, now)));
		}
		sb_printf(out, "]}");
		return;
	}
	sb_printf(
	    out, "%-5s pair %s: %s, epoch %llu", cfg_kind_to_str(in->kind),
	    cfg_of(in)->pairs[pair].name, elect_role_to_str(sm->role),
	    (unsigned long long)(sm->role == ELECT_ROLE_MASTER ? sm->master_epoch : sm->epoch));
	if (sm->role == ELECT_ROLE_MASTER)
		sb_printf(out, ", lease %llu ms%s", (unsigned long long)(lease / 1000),
			  sm->degraded ? ", DEGRADED (other compartment not answering)" : "");
	sb_printf(out, "\n      token holder %s, quorum device %s, candidates %s | %s\n", holder,
		  qstate, node_name(in, elect_candidate(sm, 0, now)),
		  node_name(in, elect_candidate(sm, 1, now)));
	sb_printf(out, "      fencing: %s%s\n", fencing_str(in->d, fb, sizeof(fb)),
		  sm->hook_pending ? ", demote hook running"
		  : sm->fenced	   ? ", FENCED (demote hook failed)"
				   : "");
	if (!sm->eligible)
		sb_printf(out, "      ineligible: %s\n", ineligible_cause(in->d));
}

static int cmd_role(struct console_req *req, void *ud)
{
	struct elect_drv *d = ud;
	bool first = true;

	if (req->json)
		sb_printf(&req->out, "{\"roles\":[");
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		if (!d->k[k].active)
			continue;
		if (req->json && !first)
			sb_printf(&req->out, ",");
		role_one(&d->k[k], req->json, &req->out);
		first = false;
	}
	if (req->json)
		sb_printf(&req->out, "]}");
	else if (first)
		sb_printf(&req->out, "this node takes part in no election\n");
	return 0;
}

static int console_attach(struct elect_drv *d)
{
	struct console *c = d->env->console;
	int r = 0;
	if (c && ((r = console_register(c, "role", "", "master/slave role per instance kind",
					cmd_role, d)) < 0 ||
		  (r = console_register(c, "promote", "<infra|admin>",
					"make this node master (refused when unsafe)", cmd_promote,
					d)) < 0 ||
		  (r = console_register(c, "demote", "<infra|admin>",
					"step this node down to slave (refused when unsafe)",
					cmd_demote, d)) < 0))
		return log_error_errno(r, "Failed to register the election's console commands");
	return 0;
}

/* ---- the handshake layer as transport ---- */

_Static_assert(HS_KINDS == _CFG_KIND_MAX, "heartbeats carry one epoch and role per kind");

static int hs_send_ack(void *ud, int node, uint64_t seq)
{
	return hs_send_heartbeat_ack(ud, node, seq);
}

static uint64_t hs_sent_at(void *ud, uint64_t seq)
{
	return hs_heartbeat_sent_at(ud, seq);
}

static void hs_on_heartbeat(const struct hs_msg *msg, int from, void *ud)
{
	struct elect_hb_in in = {.seq = msg->hb.seq};

	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		in.epoch[k] = msg->hb.epoch[k];
		in.role[k] = msg->hb.role[k];
	}
	elect_drv_heartbeat_in(ud, from, &in);
}

static void hs_on_ack(const struct hs_msg *msg, int from, void *ud)
{
	elect_drv_ack_in(ud, from, msg->ack_seq);
}

static void hs_fill(struct hs_heartbeat *hb, void *ud)
{
	elect_drv_fill(ud, hb->epoch, hb->role);
}

static int hs_qdev_alive(int node, void *ud)
{
	return elect_drv_qdev_alive(ud, node);
}

void elect_drv_attach_hs(struct elect_drv *d, struct hs *hs)
{
	struct elect_transport t = {.ud = hs, .send_ack = hs_send_ack, .sent_at = hs_sent_at};

	elect_drv_set_transport(d, &t);
	if (hs_subscribe(hs, HS_MSG_HEARTBEAT, hs_on_heartbeat, d) < 0 ||
	    hs_subscribe(hs, HS_MSG_HEARTBEAT_ACK, hs_on_ack, d) < 0)
		log_warn("election: cannot subscribe to heartbeats, continuing on the quorum "
			 "device alone");
	hs_set_heartbeat_fn(hs, hs_fill, d);
	hs_set_qdev_alive_fn(hs, hs_qdev_alive, d);
}
