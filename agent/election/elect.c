/* The election state machine (SPEC §7); see elect.h. Time only comes in as now_us.
 *
 * With a quorum device, the only way to become master is: hold the reservation (RESERVE
 * when nobody holds it, PREEMPT a holder that is silent on both channels), read every slot
 * once more after taking it, wait until any previous master's lease has certainly lapsed,
 * and have a slot write that says "master" succeed. The lease then runs `lease` from when
 * that write (or a later one, or a heartbeat the slave acknowledged) was sent.
 *
 * Without one, a node is master while a strict majority of the pair (itself included)
 * acknowledged its heartbeats within the lease; an acknowledging node promises not to
 * acknowledge anyone else for the network silence time, so two majorities never overlap. */
#include "elect.h"

#include <errno.h>
#include <stddef.h>

const char *elect_role_to_str(enum elect_role r)
{
	switch (r) {
	case ELECT_ROLE_NONE:
		return "none";
	case ELECT_ROLE_CANDIDATE:
		return "candidate";
	case ELECT_ROLE_SLAVE:
		return "slave";
	case ELECT_ROLE_MASTER:
		return "master";
	case _ELECT_ROLE_MAX:
		break;
	}
	return "?";
}

const char *elect_io_to_str(enum elect_io r)
{
	switch (r) {
	case ELECT_IO_OK:
		return "ok";
	case ELECT_IO_CONFLICT:
		return "conflict";
	case ELECT_IO_ERROR:
		return "error";
	case _ELECT_IO_MAX:
		break;
	}
	return "?";
}

const char *elect_phase_to_str(enum elect_phase p)
{
	switch (p) {
	case ELECT_PHASE_IDLE:
		return "idle";
	case ELECT_PHASE_ACQUIRE:
		return "acquire";
	case ELECT_PHASE_CHECK:
		return "check";
	case ELECT_PHASE_WAIT:
		return "wait";
	case ELECT_PHASE_CLAIM:
		return "claim";
	case ELECT_PHASE_VERIFY:
		return "verify";
	case _ELECT_PHASE_MAX:
		break;
	}
	return "?";
}

const char *elect_event_type_to_str(enum elect_event_type t)
{
	switch (t) {
	case ELECT_EV_START:
		return "start";
	case ELECT_EV_TIMER:
		return "timer";
	case ELECT_EV_ELIGIBLE:
		return "eligible";
	case ELECT_EV_HEARTBEAT:
		return "heartbeat";
	case ELECT_EV_HEARTBEAT_ACK:
		return "heartbeat-ack";
	case ELECT_EV_REGISTER_DONE:
		return "register-done";
	case ELECT_EV_READ_DONE:
		return "read-done";
	case ELECT_EV_WRITE_DONE:
		return "write-done";
	case ELECT_EV_RESERVE_DONE:
		return "reserve-done";
	case ELECT_EV_PREEMPT_DONE:
		return "preempt-done";
	case ELECT_EV_RELEASE_DONE:
		return "release-done";
	case ELECT_EV_OPERATOR_PROMOTE:
		return "operator-promote";
	case ELECT_EV_OPERATOR_DEMOTE:
		return "operator-demote";
	case ELECT_EV_HOOK_DONE:
		return "hook-done";
	case _ELECT_EV_MAX:
		break;
	}
	return "?";
}

const char *elect_action_type_to_str(enum elect_action_type t)
{
	switch (t) {
	case ELECT_ACT_ARM_TIMER:
		return "arm-timer";
	case ELECT_ACT_SEND_HEARTBEAT:
		return "send-heartbeat";
	case ELECT_ACT_SEND_ACK:
		return "send-ack";
	case ELECT_ACT_QDEV_REGISTER:
		return "qdev-register";
	case ELECT_ACT_QDEV_READ:
		return "qdev-read";
	case ELECT_ACT_QDEV_WRITE:
		return "qdev-write";
	case ELECT_ACT_QDEV_RESERVE:
		return "qdev-reserve";
	case ELECT_ACT_QDEV_PREEMPT:
		return "qdev-preempt";
	case ELECT_ACT_QDEV_RELEASE:
		return "qdev-release";
	case ELECT_ACT_PROMOTE:
		return "promote";
	case ELECT_ACT_DEMOTE:
		return "demote";
	case ELECT_ACT_ROLE:
		return "role";
	case ELECT_ACT_DEGRADED:
		return "degraded";
	case _ELECT_ACT_MAX:
		break;
	}
	return "?";
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

uint64_t elect_net_silence(const struct elect_params *p)
{
	/* Strictly longer than the lease: a heartbeat this node acknowledged cannot keep
	 * the holder's lease alive once the holder has been silent this long. */
	return max_u64(3 * p->heartbeat_interval, p->lease + 1000);
}

uint64_t elect_read_interval(const struct elect_params *p)
{
	return p->disk_heartbeat_interval / 2;
}

uint64_t elect_slot_silence(const struct elect_params *p)
{
	return p->lease + elect_read_interval(p);
}

uint64_t elect_pet_window(const struct elect_params *p)
{
	/* With a quorum device every renewal is a slot write or an acknowledged heartbeat
	 * that another node saw when it landed; petting only this soon after its send ties
	 * the reset to a sign of life the takers saw (SPEC §7: last sign of life + watchdog
	 * timeout + one read interval). Majority mode keeps the whole lease. */
	uint64_t w = p->pet_window ? p->pet_window : elect_read_interval(p);

	if (p->has_qdev && w < p->lease)
		return w;
	return p->lease;
}

uint64_t elect_acting_bound(const struct elect_params *p)
{
	/* Fenced: a master pets its watchdog only within the pet window of a renewing send,
	 * so it has demoted or been reset the watchdog's timeout after that window. Unfenced
	 * it stops by its own clock when its lease lapses (the demote hook not covered). */
	if (p->fence_timeout)
		return elect_pet_window(p) + p->fence_timeout;
	return p->lease;
}

uint64_t elect_master_timeout(const struct elect_params *p)
{
	if (!p->has_qdev)
		return elect_net_silence(p) + p->fence_timeout;
	return max_u64(max_u64(elect_net_silence(p), elect_slot_silence(p)), elect_acting_bound(p));
}

void elect_init(struct elect *sm, const struct elect_params *p)
{
	*sm = (struct elect){
	    .p = *p,
	    .holder = ELECT_HOLDER_NONE,
	    .victim = -1,
	    .promise_to = -1,
	    .hb_seq = p->seq_base,
	    .wr_seq = p->seq_base,
	    .epoch = p->epoch_floor,
	};
}

static struct elect_action *act(struct elect_actions *out, enum elect_action_type t)
{
	static struct elect_action spill;

	if (out->n >= ELECT_MAX_ACTIONS) /* cannot happen: at most a dozen per step */
		return &spill;
	out->a[out->n] = (struct elect_action){.type = t, .node = -1};
	return &out->a[out->n++];
}

/* ---- what this node knows of the others ---- */

static bool net_alive(const struct elect *sm, int n, uint64_t now)
{
	const struct elect_peer *pe = &sm->peers[n];

	return pe->heard && now - pe->last_heard < elect_net_silence(&sm->p);
}

static bool slot_alive(const struct elect *sm, int n, uint64_t now)
{
	const struct elect_peer *pe = &sm->peers[n];

	return sm->p.has_qdev && pe->slot_seen && pe->slot.valid &&
	       now - pe->slot_changed <= elect_slot_silence(&sm->p);
}

static bool peer_alive(const struct elect *sm, int n, uint64_t now)
{
	if (n == sm->p.self)
		return true;
	return net_alive(sm, n, now) || slot_alive(sm, n, now);
}

/* The role a live peer last announced on the fresher channel. */
static enum elect_role peer_role(const struct elect *sm, int n, uint64_t now)
{
	if (n == sm->p.self)
		return sm->role;
	if (net_alive(sm, n, now))
		return sm->peers[n].hb_role;
	if (slot_alive(sm, n, now))
		return sm->peers[n].slot.role;
	return ELECT_ROLE_NONE;
}

static bool peer_eligible(const struct elect *sm, int n, uint64_t now)
{
	if (n == sm->p.self)
		return sm->eligible;
	return peer_alive(sm, n, now) && peer_role(sm, n, now) != ELECT_ROLE_NONE;
}

int elect_candidate(const struct elect *sm, int side, uint64_t now_us)
{
	int best = -1;

	for (int n = 0; n < sm->p.n_nodes; n++) {
		if (sm->p.side[n] != side || !peer_eligible(sm, n, now_us))
			continue;
		if (best < 0 || sm->p.rank[n] < sm->p.rank[best])
			best = n;
	}
	return best;
}

/* The candidate of a compartment for the token: as elect_candidate(), but with a quorum
 * device only among nodes whose slot is fresh (this node: itself). A node that cannot
 * write its slot cannot take the token either, and must not keep others from it. Every
 * node that reads the quorum device judges this on the same slots. */
static int token_candidate(const struct elect *sm, int side, uint64_t now)
{
	int best = -1;

	if (!sm->p.has_qdev)
		return elect_candidate(sm, side, now);
	for (int n = 0; n < sm->p.n_nodes; n++) {
		if (sm->p.side[n] != side || !peer_eligible(sm, n, now) ||
		    (n != sm->p.self && !slot_alive(sm, n, now)))
			continue;
		if (best < 0 || sm->p.rank[n] < sm->p.rank[best])
			best = n;
	}
	return best;
}

static bool two_sided(const struct elect *sm)
{
	for (int n = 1; n < sm->p.n_nodes; n++)
		if (sm->p.side[n] != sm->p.side[0])
			return true;
	return false;
}

/* The node whose acknowledgements renew master's lease, as this node sees it: the other
 * compartment's candidate; when all nodes of this kind share one compartment (admin
 * instances), the best-ranked other eligible live node. */
static int ack_partner(const struct elect *sm, int master, uint64_t now)
{
	int best = -1;

	if (two_sided(sm))
		return elect_candidate(sm, !sm->p.side[master], now);
	for (int n = 0; n < sm->p.n_nodes; n++)
		if (n != master && peer_eligible(sm, n, now) &&
		    (best < 0 || sm->p.rank[n] < sm->p.rank[best]))
			best = n;
	return best;
}

static bool self_is_candidate(const struct elect *sm, uint64_t now)
{
	return token_candidate(sm, sm->p.side[sm->p.self], now) == sm->p.self;
}

/* A live master other than this node, or -1. */
static int live_master(const struct elect *sm, uint64_t now)
{
	if (sm->p.has_qdev && sm->holder_known && sm->holder >= 0 && sm->holder != sm->p.self &&
	    peer_alive(sm, sm->holder, now))
		return sm->holder;
	for (int n = 0; n < sm->p.n_nodes; n++)
		if (n != sm->p.self && peer_alive(sm, n, now) &&
		    peer_role(sm, n, now) == ELECT_ROLE_MASTER)
			return n;
	return -1;
}

/* What this node says of itself in heartbeats and its slot: master while it acts as
 * master, which lasts until its demote hook has ended (or for good once fenced), and
 * while it verifies a claim write that succeeded (it promotes counting from that
 * write), so that a node taking the token waits for it as for any master (check_done),
 * and stops waiting once it says otherwise. */
static void announced(const struct elect *sm, enum elect_role *ret_role, uint64_t *ret_epoch)
{
	bool acting = sm->role == ELECT_ROLE_MASTER || sm->hook_pending || sm->fenced;

	/* (verifying, with the highest epoch seen, not its claim's: a verification that
	 * fails must not knock down the master whose epoch it saw) */
	*ret_role = acting || sm->phase == ELECT_PHASE_VERIFY ? ELECT_ROLE_MASTER : sm->role;
	*ret_epoch = acting ? sm->master_epoch : sm->epoch;
}

void elect_heartbeat_content(const struct elect *sm, uint64_t *ret_epoch, enum elect_role *ret_role)
{
	announced(sm, ret_role, ret_epoch);
}

bool elect_is_master(const struct elect *sm, uint64_t now_us)
{
	return sm->role == ELECT_ROLE_MASTER && now_us < sm->lease_until;
}

bool elect_may_pet(const struct elect *sm, uint64_t now_us)
{
	if (sm->fenced)
		return false;
	if (sm->role == ELECT_ROLE_MASTER || sm->hook_pending)
		return now_us < sm->lease_until && now_us < sm->pet_until;
	return true;
}

/* ---- role changes: one choke point ---- */

static void set_role(struct elect *sm, enum elect_role r, const char *reason,
		     struct elect_actions *out)
{
	struct elect_action *a;

	if (sm->role == r)
		return;
	if (sm->role == ELECT_ROLE_MASTER)
		act(out, ELECT_ACT_DEMOTE)->reason = reason;
	if (r == ELECT_ROLE_MASTER) {
		a = act(out, ELECT_ACT_PROMOTE);
		a->epoch = sm->master_epoch;
		a->reason = reason;
	}
	sm->role = r;
	sm->last_reason = reason;
	a = act(out, ELECT_ACT_ROLE);
	a->role = r;
	a->epoch = r == ELECT_ROLE_MASTER ? sm->master_epoch : sm->epoch;
	a->reason = reason;
}

static void demote(struct elect *sm, const char *reason, uint64_t now, struct elect_actions *out)
{
	if (sm->role != ELECT_ROLE_MASTER)
		return;
	set_role(sm,
		 !sm->eligible		     ? ELECT_ROLE_NONE
		 : live_master(sm, now) >= 0 ? ELECT_ROLE_SLAVE
					     : ELECT_ROLE_CANDIDATE,
		 reason, out);
	/* The demote hook runs now: this node acts as master until it reports its end
	 * (ELECT_EV_HOOK_DONE); the lease keeps counting for the watchdog meanwhile. */
	sm->hook_pending = true;
	if (sm->degraded) {
		sm->degraded = false;
		act(out, ELECT_ACT_DEGRADED)->degraded = false;
	}
}

static void abort_claim(struct elect *sm)
{
	sm->phase = ELECT_PHASE_IDLE;
	sm->op_promote = false;
}

/* A renewing write or acknowledged heartbeat sent at sent_at (SPEC §7 Lease). */
static void renew(struct elect *sm, uint64_t sent_at)
{
	sm->lease_until = max_u64(sm->lease_until, sent_at + sm->p.lease);
	sm->pet_until = max_u64(sm->pet_until, sent_at + elect_pet_window(&sm->p));
}

static void promote(struct elect *sm, uint64_t sent_at, uint64_t now, const char *reason,
		    struct elect_actions *out)
{
	sm->phase = ELECT_PHASE_IDLE;
	sm->op_promote = false;
	sm->lease_until = sent_at + sm->p.lease;
	sm->pet_until = sent_at + elect_pet_window(&sm->p);
	if (now >= sm->lease_until)
		return; /* the write took longer than the lease: nothing gained */
	sm->epoch = max_u64(sm->epoch, sm->master_epoch);
	sm->last_slave_ack = 0;
	sm->master_since = now;
	set_role(sm, ELECT_ROLE_MASTER, reason, out);
	sm->degraded = true;
	act(out, ELECT_ACT_DEGRADED)->degraded = true;
}

/* ---- sending ---- */

static void send_heartbeat(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	struct elect_action *a = act(out, ELECT_ACT_SEND_HEARTBEAT);

	sm->hb_seq++;
	sm->hb_sent[sm->hb_seq % ELECT_RING] = (struct elect_sent){
	    .seq = sm->hb_seq, .at = now, .master = sm->role == ELECT_ROLE_MASTER};
	a->seq = sm->hb_seq;
	announced(sm, &a->role, &a->epoch);
}

static void send_write(struct elect *sm, enum elect_role role, uint64_t epoch, uint64_t now,
		       struct elect_actions *out)
{
	struct elect_action *a = act(out, ELECT_ACT_QDEV_WRITE);

	sm->wr_seq++;
	sm->wr_sent[sm->wr_seq % ELECT_RING] = (struct elect_sent){
	    .seq = sm->wr_seq, .at = now, .master = role == ELECT_ROLE_MASTER || sm->hook_pending};
	a->seq = sm->wr_seq;
	a->role = role;
	a->epoch = epoch;
	sm->wr_busy = true;
	sm->wr_since = now;
}

static void send_read(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	act(out, ELECT_ACT_QDEV_READ)->seq = ++sm->rd_seq;
	sm->rd_busy = true;
	sm->rd_since = sm->rd_sent = now;
}

static const struct elect_sent *find_sent(const struct elect_sent *ring, uint64_t seq)
{
	const struct elect_sent *s = &ring[seq % ELECT_RING];

	return s->seq == seq && seq != 0 ? s : NULL;
}

/* ---- the quorum-device path to mastership ---- */

/* A slave acknowledges the master's heartbeats only within this of sending a slot write
 * that succeeded (so that every node that reads the quorum device sees it alive). */
static uint64_t ack_window(const struct elect_params *p)
{
	return 2 * p->disk_heartbeat_interval;
}

/* How long a node must have been its compartment's candidate before it preempts a
 * holder of the other compartment: until an acknowledgement another node of its
 * compartment gave (in its own view the candidate) can no longer keep the holder acting.
 * Such a node acknowledges within ack_window() of a slot write this node saw, or while
 * it hears every compartment mate say it sees a live master: this node's heartbeats say
 * "candidate" from when it became one, and are heard within the network silence time
 * (one heartbeat interval for their way), or this node is no longer heard at all. */
static uint64_t candidacy_wait(const struct elect_params *p)
{
	uint64_t fenced = elect_acting_bound(p);
	uint64_t by_slot = ack_window(p) + fenced, by_net;

	by_slot = by_slot > elect_slot_silence(p) ? by_slot - elect_slot_silence(p) : 0;
	by_net = elect_net_silence(p) + p->heartbeat_interval + fenced;
	return max_u64(by_slot, by_net);
}

/* Whether holder h has been silent on both channels long enough that its lease has
 * certainly lapsed, or is heard but has said it is not master (its demote hook ran or
 * runs; acknowledgements no longer renew its lease) for a lease and the watchdog's
 * timeout while its slot stands still: a holder that cannot write its slot (it lost the
 * quorum device, and with it any way to hand the token back) does not keep the token. */
static bool holder_silent(const struct elect *sm, int h, uint64_t now)
{
	const struct elect_peer *pe = &sm->peers[h];
	uint64_t heard = pe->heard ? pe->last_heard : sm->start_us;
	uint64_t slot_wait = max_u64(elect_slot_silence(&sm->p), elect_acting_bound(&sm->p));

	/* Only the node whose acknowledgements may be keeping the holder's lease alive takes
	 * over: it stops acknowledging before it decides the holder is gone. With two
	 * compartments the holder's own compartment mate therefore waits while the other
	 * compartment has a live candidate; with one, only h's acknowledging node acts. */
	if (!two_sided(sm) && ack_partner(sm, h, now) != sm->p.self)
		return false;
	if (two_sided(sm) && sm->p.side[h] == sm->p.side[sm->p.self]) {
		if (token_candidate(sm, !sm->p.side[h], now) >= 0 || !sm->other_gone_since ||
		    now - sm->other_gone_since < candidacy_wait(&sm->p))
			return false;
		slot_wait += sm->p.disk_heartbeat_interval;
	}
	/* Another node of this compartment (with one compartment: another node) may have
	 * been the candidate in its own view until this one became it, and acknowledged the
	 * holder's heartbeats: it does so
	 * only within ack_window() of its last slot write, which this node saw (or it
	 * hears every compartment mate). Wait until such an acknowledgement is void. */
	if ((!two_sided(sm) || sm->p.side[h] != sm->p.side[sm->p.self]) &&
	    (!sm->cand_since || now - sm->cand_since < candidacy_wait(&sm->p)))
		return false;
	/* One compartment: the same for the node that was h's acknowledging node in its own
	 * view until this one became it (a better node whose slot this node saw go stale). */
	if (!two_sided(sm) &&
	    (!sm->partner_since || now - sm->partner_since < candidacy_wait(&sm->p)))
		return false;
	if (now - heard < max_u64(elect_net_silence(&sm->p), elect_acting_bound(&sm->p)) &&
	    !(pe->nm_since && now - pe->nm_since >= elect_acting_bound(&sm->p)))
		return false;
	return pe->slot_seen && now - pe->slot_changed > slot_wait;
}

static void try_acquire(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	struct elect_action *a;

	if (!sm->eligible || sm->phase != ELECT_PHASE_IDLE || sm->role == ELECT_ROLE_MASTER ||
	    sm->p.refuse_master || sm->hook_pending || sm->fenced || sm->release_pending ||
	    !sm->registered || sm->op_busy || now < sm->holdoff_until ||
	    !self_is_candidate(sm, now))
		return;
	/* Just started: learn who else is alive before competing. */
	if (now - sm->start_us < 2 * sm->p.heartbeat_interval && !sm->op_promote)
		return;
	if (sm->holder == sm->p.self && sm->own_token) {
		/* Ours already (the lease lapsed meanwhile): check and claim. */
		sm->acq_at = now;
		sm->phase = ELECT_PHASE_CHECK;
		return;
	}
	if (sm->holder == sm->p.self) {
		/* Held under our key by a previous boot's session: move it to this one. */
		act(out, ELECT_ACT_QDEV_PREEMPT)->node = sm->p.self;
	} else if (sm->holder == ELECT_HOLDER_NONE) {
		if (now < sm->defer_until && !sm->op_promote &&
		    token_candidate(sm, !sm->p.side[sm->p.self], now) >= 0)
			return;
		act(out, ELECT_ACT_QDEV_RESERVE);
	} else if (sm->holder == ELECT_HOLDER_UNKNOWN &&
		   now - sm->unknown_since > elect_master_timeout(&sm->p)) {
		/* A key of no node of this pair (a node removed from the configuration) holds
		 * the token and writes no slot we know: take it once it could have lapsed. */
		act(out, ELECT_ACT_QDEV_PREEMPT)->node = ELECT_HOLDER_UNKNOWN;
	} else if (sm->holder >= 0 && holder_silent(sm, sm->holder, now)) {
		a = act(out, ELECT_ACT_QDEV_PREEMPT);
		a->node = sm->holder;
		sm->victim = sm->holder;
		sm->victim_until = UINT64_MAX;
	} else {
		return;
	}
	sm->phase = ELECT_PHASE_ACQUIRE;
	sm->op_busy = true;
	sm->op_since = now;
}

/* After the post-acquire read: wait until every other node that may have been master
 * has certainly seen its lease lapse. */
static void check_done(struct elect *sm, uint64_t now)
{
	uint64_t until = now, wait = elect_acting_bound(&sm->p);

	for (int n = 0; n < sm->p.n_nodes; n++) {
		const struct elect_peer *pe = &sm->peers[n];

		if (n == sm->p.self)
			continue;
		if (pe->slot_seen && pe->slot.valid && pe->slot.role == ELECT_ROLE_MASTER)
			until = max_u64(until, pe->slot_changed + wait);
		if (pe->heard && pe->hb_role == ELECT_ROLE_MASTER)
			until = max_u64(until, pe->last_heard + wait);
		/* The node preempted was judged silent when the PREEMPT was sent; a stalled
		 * one lands later, when the victim may have claimed its own token again, or
		 * run its demote hook with slots that say "candidate" but still renew its
		 * lease. Whatever renewed it is a slot write that landed before the PREEMPT,
		 * at or before the change this node last saw: wait past that. */
		if (n == sm->victim && pe->slot_seen && sm->victim_until == UINT64_MAX)
			sm->victim_until = pe->slot_changed + wait;
	}
	/* (fixed at the first look after the PREEMPT: what the victim writes later renews
	 * nothing, and a claim started again would wait for it for ever) */
	if (sm->victim >= 0 && sm->victim_until != UINT64_MAX)
		until = max_u64(until, sm->victim_until);
	sm->wait_until = until;
	sm->phase = ELECT_PHASE_WAIT;
}

/* A read sent after the last successful write shows the reservation ours under a
 * registered key: that write counts (a node preempted meanwhile, whose session then
 * registered its key again, sees another holder here and never counts it). */
static void confirmed(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	if (sm->phase == ELECT_PHASE_VERIFY) {
		promote(sm, sm->claim_at, now, sm->victim >= 0 ? "takeover" : "elected", out);
		sm->victim = -1;
		return;
	}
	if (sm->renew_at && (sm->role == ELECT_ROLE_MASTER || sm->hook_pending))
		renew(sm, sm->renew_at);
	sm->renew_at = 0;
}

static void on_read(struct elect *sm, const struct elect_event *ev, uint64_t now,
		    struct elect_actions *out)
{
	/* Only the answer to the last read sent has a known send time (an older one given
	 * up on by expire_io may still come back): only it checks or confirms anything. */
	bool current = sm->rd_busy && ev->seq == sm->rd_seq;
	bool check = current && sm->rd_sent >= sm->acq_at;
	bool higher = false;

	/* An older answer leaves the read outstanding now outstanding: clearing it here sent
	 * one more read, whose answer was stale in turn, for ever (no read ever current). */
	if (current)
		sm->rd_busy = false;
	if (ev->io != ELECT_IO_OK)
		return;
	for (int n = 0; n < sm->p.n_nodes; n++) {
		struct elect_peer *pe = &sm->peers[n];
		const struct elect_slot *s = &ev->slots[n];

		if (n == sm->p.self)
			continue;
		/* Within one boot a node's sequence only grows: an older sealed image written
		 * back (a replay) is no sign of life and changes nothing. */
		if (pe->slot_seen && pe->slot.valid && s->valid && s->boot == pe->slot.boot &&
		    s->seq < pe->slot.seq)
			continue;
		if (!pe->slot_seen || s->valid != pe->slot.valid || s->boot != pe->slot.boot ||
		    s->seq != pe->slot.seq || s->epoch != pe->slot.epoch ||
		    s->role != pe->slot.role)
			pe->slot_changed = now;
		pe->slot = *s;
		pe->slot_seen = true;
		if (s->valid)
			sm->epoch = max_u64(sm->epoch, s->epoch);
		higher |= s->valid && s->role == ELECT_ROLE_MASTER && s->epoch > sm->master_epoch;
	}
	/* A master slot with a higher epoch ends this mastership, unless the same read shows
	 * the token still ours: then no one took it since we did, and that claim can never
	 * be verified (a preempted node whose new session wrote it); knocking this master
	 * down for it would hand the pair to no one. */
	if (sm->role == ELECT_ROLE_MASTER && higher && ev->holder != sm->p.self)
		demote(sm, "higher-epoch", now, out);
	if (ev->holder == ELECT_HOLDER_UNKNOWN && sm->holder != ELECT_HOLDER_UNKNOWN)
		sm->unknown_since = now;
	/* A master of this compartment handed the token back while alive (it left
	 * eligibility or was demoted): the pair's master moves to the other compartment,
	 * whose candidate takes it first; this one only if that one does not. */
	if (ev->holder == ELECT_HOLDER_NONE && sm->holder_known && sm->holder >= 0 &&
	    sm->holder != sm->p.self && two_sided(sm) &&
	    sm->p.side[sm->holder] == sm->p.side[sm->p.self] && peer_alive(sm, sm->holder, now))
		sm->defer_until = now + elect_master_timeout(&sm->p);
	sm->holder_known = true;
	sm->holder = ev->holder;
	if (sm->holder != sm->p.self)
		sm->own_token = false;
	sm->last_read_ok = now;
	if (!ev->registered)
		sm->registered = false;
	if (sm->holder != sm->p.self && check) {
		demote(sm, "reservation-lost", now, out);
		if (sm->phase != ELECT_PHASE_IDLE && sm->phase != ELECT_PHASE_ACQUIRE)
			abort_claim(sm);
	}
	/* (and again while waiting: a node that no longer says master has demoted) */
	if ((sm->phase == ELECT_PHASE_CHECK || sm->phase == ELECT_PHASE_WAIT) && check &&
	    sm->holder == sm->p.self)
		check_done(sm, now);
	if (current && sm->holder == sm->p.self && ev->registered)
		sm->own_read_at = sm->rd_sent;
	if (current && sm->holder == sm->p.self && ev->registered &&
	    sm->rd_sent >= sm->verify_after)
		confirmed(sm, now, out);
	try_acquire(sm, now, out);
}

static void on_write(struct elect *sm, const struct elect_event *ev, uint64_t now,
		     struct elect_actions *out)
{
	const struct elect_sent *s = find_sent(sm->wr_sent, ev->seq);

	if (ev->seq == sm->wr_seq)
		sm->wr_busy = false;
	switch (ev->io) {
	case ELECT_IO_OK:
		if (!s)
			return;
		sm->wr_ok_sent = max_u64(sm->wr_ok_sent, s->at);
		if (sm->phase == ELECT_PHASE_CLAIM && ev->seq == sm->claim_seq) {
			sm->phase = ELECT_PHASE_VERIFY;
			sm->claim_at = s->at;
			sm->verify_after = now;
		} else if ((sm->role == ELECT_ROLE_MASTER || sm->hook_pending) && s->master) {
			sm->renew_at = max_u64(sm->renew_at, s->at);
			sm->verify_after = now;
			/* Confirm at once: the watchdog may be petted only within the pet window
			 * of the write's send (elect_pet_window). */
			sm->next_read = now;
		}
		return;
	case ELECT_IO_CONFLICT:
		sm->registered = false;
		sm->own_token = false;
		demote(sm, "reservation-conflict", now, out);
		if (sm->phase != ELECT_PHASE_IDLE && sm->phase != ELECT_PHASE_ACQUIRE)
			abort_claim(sm);
		return;
	case ELECT_IO_ERROR:
		if (sm->phase == ELECT_PHASE_CLAIM && ev->seq == sm->claim_seq) {
			/* Claim again, one disk heartbeat later (no tight loop), and only once a
			 * read sent after this failure shows the token still ours: the device
			 * may have been lost for long, and the token taken meanwhile. */
			sm->phase = ELECT_PHASE_WAIT;
			sm->wait_until = now + sm->p.disk_heartbeat_interval;
			sm->acq_at = now;
		}
		return;
	case _ELECT_IO_MAX:
		break;
	}
}

static void on_acquire(struct elect *sm, const struct elect_event *ev, uint64_t now)
{
	sm->op_busy = false;
	if (ev->io == ELECT_IO_OK)
		sm->own_token = true;
	if (sm->phase != ELECT_PHASE_ACQUIRE)
		return;
	switch (ev->io) {
	case ELECT_IO_OK:
		sm->holder = sm->p.self;
		sm->acq_at = now;
		sm->phase = ELECT_PHASE_CHECK;
		return;
	case ELECT_IO_CONFLICT:
		if (ev->type == ELECT_EV_PREEMPT_DONE)
			sm->registered = false;
		abort_claim(sm);
		sm->victim = -1;
		return;
	case ELECT_IO_ERROR:
		abort_claim(sm);
		sm->victim = -1;
		return;
	case _ELECT_IO_MAX:
		break;
	}
}

/* ---- majority over handshakes ---- */

static bool may_promise(const struct elect *sm, int n, uint64_t now)
{
	return sm->promise_to == n || now >= sm->promise_until;
}

static void promise(struct elect *sm, int n, uint64_t now)
{
	sm->promise_to = n;
	sm->promise_until = now + elect_net_silence(&sm->p) + sm->p.fence_timeout;
}

/* The best-ranked eligible live node of the pair. */
static int best_alive(const struct elect *sm, uint64_t now)
{
	int best = -1;

	for (int n = 0; n < sm->p.n_nodes; n++)
		if (peer_eligible(sm, n, now) && (best < 0 || sm->p.rank[n] < sm->p.rank[best]))
			best = n;
	return best;
}

/* Until when a strict majority (this node included) backs this node, or 0. */
static uint64_t majority_lease(const struct elect *sm, uint64_t now)
{
	uint64_t acked[ELECT_MAX_NODES];
	int k = 0, need = sm->p.n_nodes / 2; /* peers needed besides this node */

	if (!may_promise(sm, sm->p.self, now))
		return 0;
	for (int n = 0; n < sm->p.n_nodes; n++)
		if (n != sm->p.self && sm->peers[n].acked_at + sm->p.lease > now)
			acked[k++] = sm->peers[n].acked_at;
	if (k < need)
		return 0;
	if (need == 0)
		return UINT64_MAX;
	/* the need-th largest */
	for (int i = 0; i < need; i++)
		for (int j = i + 1; j < k; j++)
			if (acked[j] > acked[i]) {
				uint64_t t = acked[i];
				acked[i] = acked[j];
				acked[j] = t;
			}
	return acked[need - 1] + sm->p.lease;
}

static void majority_tick(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	uint64_t until;

	if (!sm->eligible)
		return;
	until = majority_lease(sm, now);
	if (sm->role == ELECT_ROLE_MASTER) {
		sm->lease_until =
		    max_u64(sm->lease_until, until == UINT64_MAX ? now + sm->p.lease : until);
		sm->pet_until = sm->lease_until;
		promise(sm, sm->p.self, now);
		return;
	}
	if (until <= now || now < sm->holdoff_until || best_alive(sm, now) != sm->p.self ||
	    live_master(sm, now) >= 0 || sm->hook_pending || sm->fenced ||
	    sm->epoch == UINT64_MAX || sm->p.refuse_master)
		return;
	sm->master_epoch = sm->epoch + 1;
	sm->epoch = sm->master_epoch;
	promise(sm, sm->p.self, now);
	sm->lease_until = until == UINT64_MAX ? now + sm->p.lease : until;
	sm->pet_until = sm->lease_until;
	sm->last_slave_ack = 0;
	sm->master_since = 0; /* majority: acks to candidate heartbeats count too */
	set_role(sm, ELECT_ROLE_MASTER, "majority", out);
	sm->degraded = true;
	act(out, ELECT_ACT_DEGRADED)->degraded = true;
}

/* Whether every node that could take over judges on the facts this node judges on: its
 * last slot write succeeded recently and its last read is recent (a better node that
 * reads the device is visible here, a worse one sees this node alive), or it hears every
 * node of its compartment, and none of them says it sees no live master. */
static bool ack_safe(const struct elect *sm, uint64_t now)
{
	if (sm->wr_ok_sent && now - sm->wr_ok_sent <= ack_window(&sm->p) && sm->last_read_ok &&
	    now - sm->last_read_ok <= ack_window(&sm->p))
		return true;
	for (int n = 0; n < sm->p.n_nodes; n++)
		if (n != sm->p.self && sm->p.side[n] == sm->p.side[sm->p.self] &&
		    (!net_alive(sm, n, now) || sm->peers[n].hb_role == ELECT_ROLE_CANDIDATE))
			return false;
	return true;
}

/* Whether to acknowledge a heartbeat from n (which also backs it in majority mode). */
static bool should_ack(struct elect *sm, int n, const struct elect_event *ev, uint64_t now)
{
	if (!sm->eligible || sm->role == ELECT_ROLE_MASTER || ev->epoch < sm->epoch)
		return false;
	if (!sm->p.has_qdev) {
		if (ev->role == ELECT_ROLE_MASTER)
			return may_promise(sm, n, now);
		return ev->role == ELECT_ROLE_CANDIDATE && live_master(sm, now) < 0 &&
		       best_alive(sm, now) == n && may_promise(sm, n, now);
	}
	if (ev->role != ELECT_ROLE_MASTER || sm->phase != ELECT_PHASE_IDLE)
		return false;
	if (ack_partner(sm, n, now) != sm->p.self || !ack_safe(sm, now))
		return false;
	return !(sm->holder_known && sm->holder >= 0 && sm->holder != n);
}

static void on_heartbeat(struct elect *sm, const struct elect_event *ev, uint64_t now,
			 struct elect_actions *out)
{
	struct elect_peer *pe = &sm->peers[ev->node];
	struct elect_action *a;

	if (ev->role == ELECT_ROLE_MASTER)
		pe->nm_since = 0;
	else if (!pe->nm_since || !pe->heard || now - pe->last_heard >= elect_net_silence(&sm->p))
		pe->nm_since = now;
	pe->heard = true;
	pe->last_heard = now;
	pe->hb_epoch = ev->epoch;
	pe->hb_role = ev->role;
	if (sm->role == ELECT_ROLE_MASTER && ev->role == ELECT_ROLE_MASTER &&
	    ev->epoch > sm->master_epoch)
		demote(sm, "higher-epoch", now, out);
	/* A master is heard while this node is on its way to mastership: the token may have
	 * moved meanwhile (this node lost the device, was preempted, and its new session
	 * registered the key again). Claiming on would write an epoch above the one just
	 * heard and knock that master down: give the claim up; it starts again with a read
	 * that proves the reservation ours (phase check), and waits past this master. */
	if (ev->role == ELECT_ROLE_MASTER && sm->phase != ELECT_PHASE_IDLE &&
	    sm->phase != ELECT_PHASE_ACQUIRE)
		abort_claim(sm);
	if (should_ack(sm, ev->node, ev, now)) {
		if (!sm->p.has_qdev)
			promise(sm, ev->node, now);
		a = act(out, ELECT_ACT_SEND_ACK);
		a->node = ev->node;
		a->seq = ev->seq;
	}
	sm->epoch = max_u64(sm->epoch, ev->epoch);
}

static void on_ack(struct elect *sm, const struct elect_event *ev, uint64_t now)
{
	const struct elect_sent *s = find_sent(sm->hb_sent, ev->seq);
	int other = ack_partner(sm, sm->p.self, now);
	uint64_t at = sm->p.external_heartbeats ? ev->sent_at : s ? s->at : 0;

	if (!at || at > now)
		return;
	if (!sm->p.has_qdev) {
		sm->peers[ev->node].acked_at = max_u64(sm->peers[ev->node].acked_at, at);
		if (sm->role == ELECT_ROLE_MASTER && sm->p.side[ev->node] != sm->p.side[sm->p.self])
			sm->last_slave_ack = now;
		return;
	}
	/* Only a heartbeat sent during this mastership renews it. */
	if (sm->role != ELECT_ROLE_MASTER || at < sm->master_since || ev->node != other)
		return;
	renew(sm, at);
	sm->last_slave_ack = now;
}

/* ---- operator ---- */

const char *elect_promote_refusal(const struct elect *sm, uint64_t now_us)
{
	if (!sm->started)
		return "the election has not started on this node";
	if (!sm->eligible)
		return "this node is not eligible (profile or core health)";
	if (sm->role == ELECT_ROLE_MASTER)
		return "this node is already master";
	if (sm->p.refuse_master)
		return "no watchdog device: this node does not become master ([fencing] watchdog = "
		       "none runs unfenced)";
	if (live_master(sm, now_us) >= 0)
		return "another master is alive: demote it first";
	if (sm->p.has_qdev && !sm->holder_known)
		return "the quorum device has not been read yet";
	return NULL;
}

const char *elect_demote_refusal(const struct elect *sm, uint64_t now_us)
{
	if (sm->role != ELECT_ROLE_MASTER)
		return "this node is not master";
	if (ack_partner(sm, sm->p.self, now_us) < 0)
		return "no eligible node could take over";
	return NULL;
}

static void on_operator(struct elect *sm, const struct elect_event *ev, uint64_t now,
			struct elect_actions *out)
{
	if (ev->type == ELECT_EV_OPERATOR_PROMOTE) {
		if (elect_promote_refusal(sm, now))
			return;
		sm->op_promote = true;
		sm->holdoff_until = 0;
		return;
	}
	if (elect_demote_refusal(sm, now))
		return;
	demote(sm, "operator", now, out);
	sm->holdoff_until = now + 3 * elect_master_timeout(&sm->p);
	/* The token is handed on once the demote hook has ended (on_hook_done). */
	sm->release_pending = sm->p.has_qdev;
}

static void on_hook_done(struct elect *sm, const struct elect_event *ev, uint64_t now,
			 struct elect_actions *out)
{
	if (!sm->hook_pending)
		return;
	sm->hook_pending = false;
	if (ev->io != ELECT_IO_OK) {
		/* The instance may still run: keep the token, stop petting the watchdog. */
		sm->fenced = true;
		return;
	}
	if (sm->release_pending && sm->holder == sm->p.self) {
		/* the operator's holdoff counts from the handover, not from the demote */
		sm->holdoff_until =
		    max_u64(sm->holdoff_until, now + 3 * elect_master_timeout(&sm->p));
		act(out, ELECT_ACT_QDEV_RELEASE);
		sm->holder = ELECT_HOLDER_NONE;
		sm->own_token = false;
		sm->op_busy = true;
		sm->op_since = now;
	}
	sm->release_pending = false;
}

/* ---- the periodic part ---- */

static void expire_io(struct elect *sm, uint64_t now)
{
	uint64_t t = sm->p.io_timeout;

	if (sm->rd_busy && now - sm->rd_since >= t)
		sm->rd_busy = false;
	if (sm->wr_busy && now - sm->wr_since >= t)
		sm->wr_busy = false;
	if (sm->reg_busy && now - sm->reg_since >= t)
		sm->reg_busy = false;
	if (sm->op_busy && now - sm->op_since >= t) {
		sm->op_busy = false;
		if (sm->phase == ELECT_PHASE_ACQUIRE)
			abort_claim(sm);
	}
}

static void disk_tick(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	/* A read due while one is in flight goes out as soon as that one is answered. */
	if (now >= sm->next_read && !sm->rd_busy) {
		sm->next_read = max_u64(sm->next_read + elect_read_interval(&sm->p), now + 1);
		send_read(sm, now, out);
	}
	if (now < sm->next_disk)
		return;
	sm->next_disk = max_u64(sm->next_disk + sm->p.disk_heartbeat_interval, now + 1);
	if (!sm->registered && !sm->reg_busy) {
		act(out, ELECT_ACT_QDEV_REGISTER);
		sm->reg_busy = true;
		sm->reg_since = now;
	}
	if (sm->registered && !sm->wr_busy && sm->phase != ELECT_PHASE_CLAIM) {
		enum elect_role role;
		uint64_t epoch;

		announced(sm, &role, &epoch);
		send_write(sm, role, epoch, now, out);
	}
}

static void claim_tick(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	/* A claim not verified within the lease it would start can no longer promote. */
	if (sm->phase == ELECT_PHASE_VERIFY && now >= sm->claim_at + sm->p.lease)
		abort_claim(sm);
	if ((sm->phase == ELECT_PHASE_CHECK || sm->phase == ELECT_PHASE_VERIFY) && !sm->rd_busy)
		send_read(sm, now, out);
	if (sm->phase != ELECT_PHASE_WAIT || now < sm->wait_until || sm->wr_busy ||
	    !sm->registered || sm->own_read_at < sm->acq_at)
		return;
	if (sm->epoch == UINT64_MAX) { /* no epoch left above it: never wrap to 0 */
		abort_claim(sm);
		return;
	}
	sm->master_epoch = sm->epoch + 1;
	send_write(sm, ELECT_ROLE_MASTER, sm->master_epoch, now, out);
	sm->claim_seq = sm->wr_seq;
	sm->phase = ELECT_PHASE_CLAIM;
}

static void update_role(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	if (!sm->eligible || !self_is_candidate(sm, now))
		sm->cand_since = 0;
	else if (!sm->cand_since)
		sm->cand_since = now;
	if (two_sided(sm) || !sm->eligible || !sm->holder_known || sm->holder < 0 ||
	    sm->holder == sm->p.self || ack_partner(sm, sm->holder, now) != sm->p.self)
		sm->partner_since = 0;
	else if (!sm->partner_since)
		sm->partner_since = now;
	if (token_candidate(sm, !sm->p.side[sm->p.self], now) >= 0)
		sm->other_gone_since = 0;
	else if (!sm->other_gone_since)
		sm->other_gone_since = now;
	if (sm->role == ELECT_ROLE_MASTER) {
		bool deg = now - sm->last_slave_ack >= elect_net_silence(&sm->p);

		if (deg != sm->degraded) {
			sm->degraded = deg;
			act(out, ELECT_ACT_DEGRADED)->degraded = deg;
		}
		return;
	}
	if (!sm->eligible)
		set_role(sm, ELECT_ROLE_NONE, "ineligible", out);
	else if (live_master(sm, now) >= 0)
		set_role(sm, ELECT_ROLE_SLAVE, "master-alive", out);
	else
		set_role(sm, ELECT_ROLE_CANDIDATE, "no-master", out);
}

static uint64_t next_deadline(const struct elect *sm)
{
	uint64_t t = sm->next_hb;

	if (sm->p.has_qdev) {
		/* (a read due while one is in flight waits for its answer, or its expiry) */
		uint64_t rd = sm->rd_busy ? max_u64(sm->next_read, sm->rd_since + sm->p.io_timeout)
					  : sm->next_read;

		t = sm->next_disk < t ? sm->next_disk : t;
		t = rd < t ? rd : t;
	}
	if (sm->role == ELECT_ROLE_MASTER && sm->lease_until < t)
		t = sm->lease_until;
	if (sm->phase == ELECT_PHASE_WAIT && sm->wait_until < t)
		t = sm->wait_until;
	return t;
}

static void tick(struct elect *sm, uint64_t now, struct elect_actions *out)
{
	if (sm->role == ELECT_ROLE_MASTER && now >= sm->lease_until)
		demote(sm, "lease-lapsed", now, out);
	if (sm->role == ELECT_ROLE_MASTER && !sm->eligible)
		demote(sm, "ineligible", now, out);
	if (!sm->eligible && sm->phase != ELECT_PHASE_IDLE && sm->phase != ELECT_PHASE_ACQUIRE)
		abort_claim(sm);
	expire_io(sm, now);
	if (sm->p.has_qdev && sm->holder_known && sm->holder == sm->p.self && !sm->op_busy &&
	    sm->role != ELECT_ROLE_MASTER && sm->phase == ELECT_PHASE_IDLE && !sm->hook_pending &&
	    !sm->fenced && !sm->release_pending && (!sm->eligible || !self_is_candidate(sm, now))) {
		/* Holding the token without being the candidate (not eligible, or a better
		 * node of this compartment is back): hand it back so the candidate can take
		 * it at once instead of waiting for this node to fall silent. A token still
		 * held by a previous boot's session is moved to this one first. */
		if (sm->own_token) {
			act(out, ELECT_ACT_QDEV_RELEASE);
			sm->holder = ELECT_HOLDER_NONE;
			sm->own_token = false;
			/* Eligible again soon after (a core component recovered): the other
			 * compartment's candidate still goes first. */
			if (two_sided(sm))
				sm->defer_until = now + elect_master_timeout(&sm->p);
		} else {
			act(out, ELECT_ACT_QDEV_PREEMPT)->node = sm->p.self;
		}
		sm->op_busy = true;
		sm->op_since = now;
	}
	if (sm->p.has_qdev) {
		disk_tick(sm, now, out);
		claim_tick(sm, now, out);
	} else {
		majority_tick(sm, now, out);
	}
	update_role(sm, now, out);
	if (now >= sm->next_hb) {
		sm->next_hb = max_u64(sm->next_hb + sm->p.heartbeat_interval, now + 1);
		if (!sm->p.external_heartbeats)
			send_heartbeat(sm, now, out);
	}
	act(out, ELECT_ACT_ARM_TIMER)->at = next_deadline(sm);
}

int elect_step(struct elect *sm, const struct elect_event *ev, uint64_t now_us,
	       struct elect_actions *out)
{
	out->n = 0;
	if ((ev->type == ELECT_EV_HEARTBEAT || ev->type == ELECT_EV_HEARTBEAT_ACK) &&
	    (ev->node < 0 || ev->node >= sm->p.n_nodes || ev->node == sm->p.self))
		return -EINVAL;
	if (!sm->started && ev->type != ELECT_EV_START)
		return 0;
	switch (ev->type) {
	case ELECT_EV_START:
		if (sm->started)
			break;
		sm->started = true;
		sm->eligible = ev->eligible;
		sm->start_us = sm->next_hb = sm->next_disk = sm->next_read = now_us;
		/* Majority: a promise given before a restart is forgotten with it; stay silent
		 * (no acknowledgement, no vote for itself) until it would have run out. */
		if (!sm->p.has_qdev) {
			sm->promise_to = -2;
			sm->promise_until =
			    now_us + elect_net_silence(&sm->p) + sm->p.fence_timeout;
		}
		break;
	case ELECT_EV_TIMER:
		break;
	case ELECT_EV_ELIGIBLE:
		sm->eligible = ev->eligible;
		break;
	case ELECT_EV_HEARTBEAT:
		on_heartbeat(sm, ev, now_us, out);
		break;
	case ELECT_EV_HEARTBEAT_ACK:
		on_ack(sm, ev, now_us);
		break;
	case ELECT_EV_REGISTER_DONE:
		sm->reg_busy = false;
		if (ev->io == ELECT_IO_OK)
			sm->registered = true;
		break;
	case ELECT_EV_READ_DONE:
		on_read(sm, ev, now_us, out);
		break;
	case ELECT_EV_WRITE_DONE:
		on_write(sm, ev, now_us, out);
		break;
	case ELECT_EV_RESERVE_DONE:
	case ELECT_EV_PREEMPT_DONE:
		on_acquire(sm, ev, now_us);
		break;
	case ELECT_EV_RELEASE_DONE:
		sm->op_busy = false;
		break;
	case ELECT_EV_OPERATOR_PROMOTE:
	case ELECT_EV_OPERATOR_DEMOTE:
		on_operator(sm, ev, now_us, out);
		break;
	case ELECT_EV_HOOK_DONE:
		on_hook_done(sm, ev, now_us, out);
		break;
	case _ELECT_EV_MAX:
		return -EINVAL;
	}
	tick(sm, now_us, out);
	return 0;
}
