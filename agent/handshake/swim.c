#include "swim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SWIM_RELAYS 32

struct member {
	enum swim_state state;
	uint64_t inc;
	struct swim_info info;
	uint64_t suspect_at;
	bool watch;
	int left;    /* sends left for the latest update about this member */
	bool queued; /* in s->pending */
	bool news;   /* that update changes a state or facts (goes before bare ones) */
	bool has_info;
};

/* A PING sent on behalf of a member that asked (PING-REQ): its ACK goes back to it. */
struct relay {
	uint64_t seq; /* of our PING to the target */
	uint64_t req_seq;
	int requester, target;
	uint64_t at;
};

struct swim {
	struct swim_params p;
	struct member *m;
	int *order, n_order, pos; /* the round-robin over the watched members */
	int *pending, n_pending;  /* members with updates still to carry */
	uint64_t rng, seq, inc;
	struct swim_info info;
	uint64_t next_period;
	bool started;
	int *suspects, n_suspects; /* the members suspected now (their timers run) */
	bool gossip;		   /* news learnt: pass it on */
	uint64_t spread_next;	   /* not before (once per period at most) */
	/* the probe of this period */
	int target;
	uint64_t probe_seq, probe_at;
	bool acked, asked;
	struct relay relays[SWIM_RELAYS];
	int relay_next;
};

static const char *const state_names[_SWIM_STATE_MAX] = {"alive", "suspect", "dead"};
static const char *const msg_names[_SWIM_MSG_MAX] = {"ping", "ack", "ping-req", "gossip"};

const char *swim_state_to_str(enum swim_state st)
{
	return st < _SWIM_STATE_MAX ? state_names[st] : "?";
}

const char *swim_msg_type_to_str(enum swim_msg_type t)
{
	return t < _SWIM_MSG_MAX ? msg_names[t] : "?";
}

static uint64_t rnd(struct swim *s)
{
	/* xorshift64*: the shuffles and helper choices, reproducible from the seed */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

static struct swim_action *act(struct swim_actions *out, enum swim_action_type t)
{
	static struct swim_action spill;

	if (out->n >= SWIM_MAX_ACTIONS) /* cannot happen: a few per step */
		return &spill;
	out->a[out->n] = (struct swim_action){.type = t, .node = -1};
	return &out->a[out->n++];
}

/* ---- updates and their spreading ---- */

static void queue(struct swim *s, int node, bool news)
{
	struct member *m = &s->m[node];

	if (node == s->p.self) { /* (every message carries it: piggyback) */
		s->gossip |= news;
		return;
	}
	m->left = s->p.retransmit;
	m->news = news;
	if (!m->queued) {
		m->queued = true;
		s->pending[s->n_pending++] = node;
	}
}

static struct swim_update update_of(const struct swim *s, int node)
{
	if (node == s->p.self)
		return (struct swim_update){
		    .node = node, .state = SWIM_ALIVE, .inc = s->inc, .info = s->info};
	return (struct swim_update){.node = node,
				    .state = s->m[node].state,
				    .inc = s->m[node].inc,
				    .info = s->m[node].info};
}

/* Whether pending update a goes before b: news first, then the most sends left. */
static bool before(const struct member *a, const struct member *b)
{
	return a->news > b->news || (a->news == b->news && a->left > b->left);
}

/* The freshest updates (most sends left) ride on msg; spent ones leave the queue. One pass
 * over the queue keeps the best SWIM_PIGGYBACK_MAX - 1 in order. */
static void piggyback(struct swim *s, struct swim_msg *msg)
{
	int best[SWIM_PIGGYBACK_MAX - 1], nb = 0;

	/* Every message says first that its sender is alive, at its incarnation: whoever
	 * holds it dead learns otherwise from its first word (the queue holds news first,
	 * and under a burst of news a node's own word would wait behind it). */
	msg->upd[0] = update_of(s, s->p.self);
	msg->n_upd = 1;
	for (int i = 0; i < s->n_pending; i++) {
		int node = s->pending[i], j;
		const struct member *m = &s->m[node];

		if (node == s->p.self || m->left <= 0)
			continue;
		if (nb == SWIM_PIGGYBACK_MAX - 1 && !before(m, &s->m[best[nb - 1]]))
			continue;
		j = nb < SWIM_PIGGYBACK_MAX - 1 ? nb++ : nb - 1;
		for (; j > 0 && before(m, &s->m[best[j - 1]]); j--)
			best[j] = best[j - 1];
		best[j] = node;
	}
	for (int k = 0; k < nb; k++) {
		msg->upd[msg->n_upd++] = update_of(s, best[k]);
		s->m[best[k]].left--;
	}
	for (int i = 0; i < s->n_pending;) {
		struct member *m = &s->m[s->pending[i]];

		if (m->left > 0) {
			i++;
			continue;
		}
		m->queued = false;
		s->pending[i] = s->pending[--s->n_pending];
	}
}

static void send(struct swim *s, int to, enum swim_msg_type t, uint64_t seq, int target,
		 struct swim_actions *out)
{
	struct swim_action *a = act(out, SWIM_ACT_SEND);

	a->node = to;
	a->msg = (struct swim_msg){.type = t, .seq = seq, .target = target};
	piggyback(s, &a->msg);
}

static void set_state(struct swim *s, int node, enum swim_state st, uint64_t inc,
		      const struct swim_info *info, uint64_t now, struct swim_actions *out)
{
	struct member *m = &s->m[node];
	bool changed = m->state != st;
	/* A live member seen again at a higher incarnation with the same facts (every
	 * node's first word after its start) is passed on after the news: every node must
	 * end up with the same incarnation, or it would ignore a suspicion as stale. */
	bool facts = info && memcmp(info, &m->info, sizeof(*info)) != 0;
	bool news = changed || st != SWIM_ALIVE || facts;

	if (st == SWIM_SUSPECT && (changed || inc != m->inc))
		m->suspect_at = now;
	if (st == SWIM_SUSPECT && m->state != SWIM_SUSPECT)
		s->suspects[s->n_suspects++] = node;
	for (int i = 0; st != SWIM_SUSPECT && m->state == SWIM_SUSPECT && i < s->n_suspects; i++)
		if (s->suspects[i] == node) {
			s->suspects[i] = s->suspects[--s->n_suspects];
			break;
		}
	m->state = st;
	m->inc = inc;
	if (info) {
		m->info = *info;
		m->has_info = true;
	}
	queue(s, node, news);
	s->gossip |= news;
	if (changed || facts) {
		struct swim_action *a = act(out, SWIM_ACT_CHANGE);

		a->node = node;
		a->state = st;
	}
}

/* SWIM's precedence: a higher incarnation wins; at the same one, dead over suspect over
 * alive. A member hears of its own suspicion or death and refutes it. */
static void apply(struct swim *s, const struct swim_update *u, uint64_t now,
		  struct swim_actions *out)
{
	const struct member *m = &s->m[u->node];
	bool take = false;

	if (u->node == s->p.self) {
		if (u->state != SWIM_ALIVE && u->inc >= s->inc) {
			s->inc = u->inc + 1;
			queue(s, s->p.self, true);
		}
		return;
	}
	switch (u->state) {
	case SWIM_ALIVE:
		take = u->inc > m->inc;
		break;
	case SWIM_SUSPECT:
		take = u->inc > m->inc || (u->inc == m->inc && m->state == SWIM_ALIVE);
		break;
	case SWIM_DEAD:
		take = u->inc > m->inc || (u->inc == m->inc && m->state != SWIM_DEAD);
		break;
	case _SWIM_STATE_MAX: /* (refused by msg_valid) */
		take = false;
		break;
	}
	if (take)
		set_state(s, u->node, u->state, u->inc, u->state == SWIM_ALIVE ? &u->info : NULL,
			  now, out);
}

/* ---- probing ---- */

static void shuffle(struct swim *s)
{
	s->n_order = 0;
	for (int i = 0; i < s->p.n; i++)
		if (s->m[i].watch)
			s->order[s->n_order++] = i;
	for (int i = s->n_order - 1; i > 0; i--) {
		int j = (int)(rnd(s) % (uint64_t)(i + 1)), t = s->order[i];

		s->order[i] = s->order[j];
		s->order[j] = t;
	}
	s->pos = 0;
}

static int next_target(struct swim *s)
{
	for (int tries = 0; tries < 2 * s->n_order + 1; tries++) {
		if (s->pos >= s->n_order)
			shuffle(s);
		if (s->n_order == 0)
			return -1;
		int t = s->order[s->pos++];

		if (s->m[t].state != SWIM_DEAD)
			return t;
	}
	return -1;
}

/* The message to up to k members picked at random: not this node, not `skip`, and alive
 * (or, with suspects_too, at least not dead); a bounded number of draws. */
static void send_random(struct swim *s, int skip, bool suspects_too, enum swim_msg_type t,
			uint64_t seq, int target, struct swim_actions *out)
{
	int sent = 0, k = s->p.indirect;

	for (int tries = 0; sent < k && tries < 8 * k; tries++) {
		int h = (int)(rnd(s) % (uint64_t)s->p.n);
		enum swim_state st = s->m[h].state;

		if (h == s->p.self || h == skip ||
		    !(st == SWIM_ALIVE || (suspects_too && st == SWIM_SUSPECT)))
			continue;
		send(s, h, t, seq, target, out);
		sent++;
	}
}

static void ask_helpers(struct swim *s, struct swim_actions *out)
{
	send_random(s, s->target, false, SWIM_PING_REQ, s->probe_seq, s->target, out);
	s->asked = true;
}

static void end_period(struct swim *s, uint64_t now, struct swim_actions *out)
{
	if (s->target >= 0 && !s->acked && s->m[s->target].state == SWIM_ALIVE)
		set_state(s, s->target, SWIM_SUSPECT, s->m[s->target].inc, NULL, now, out);
	s->target = next_target(s);
	s->acked = s->asked = false;
	if (s->target < 0)
		return;
	s->probe_seq = ++s->seq;
	s->probe_at = now;
	send(s, s->target, SWIM_PING, s->probe_seq, s->target, out);
}

static uint64_t expire_suspects(struct swim *s, uint64_t now, struct swim_actions *out)
{
	uint64_t next = UINT64_MAX;

	/* backwards: a member declared dead leaves the list, the last one takes its place */
	for (int k = s->n_suspects - 1; k >= 0; k--) {
		int i = s->suspects[k];
		struct member *m = &s->m[i];

		if (now >= m->suspect_at + s->p.suspect_timeout)
			set_state(s, i, SWIM_DEAD, m->inc, NULL, now, out);
		else if (m->suspect_at + s->p.suspect_timeout < next)
			next = m->suspect_at + s->p.suspect_timeout;
	}
	return next;
}

/* News goes out at once to a few members besides riding on the probes: a suspicion
 * reaches every node in a few hops, so its timer runs out at about the same time
 * everywhere. Per node this costs a few datagrams per piece of news, not per period. */
static void spread(struct swim *s, struct swim_actions *out)
{
	s->gossip = false;
	send_random(s, -1, true, SWIM_GOSSIP, 0, s->p.self, out);
}

static void tick(struct swim *s, uint64_t now, struct swim_actions *out)
{
	uint64_t next;

	if (!s->started) {
		s->started = true;
		s->next_period = now;
		s->target = -1;
		queue(s, s->p.self, false);
	}
	if (s->target >= 0 && !s->acked && !s->asked && now >= s->probe_at + s->p.probe_timeout)
		ask_helpers(s, out);
	if (now >= s->next_period) {
		end_period(s, now, out);
		s->next_period += s->p.period;
		if (s->next_period <= now)
			s->next_period = now + s->p.period;
	}
	next = expire_suspects(s, now, out);
	if (s->gossip && now >= s->spread_next) {
		spread(s, out);
		s->spread_next = now + s->p.period;
	}
	if (s->gossip && s->spread_next < next)
		next = s->spread_next;
	if (s->next_period < next)
		next = s->next_period;
	if (s->target >= 0 && !s->acked && !s->asked && s->probe_at + s->p.probe_timeout < next)
		next = s->probe_at + s->p.probe_timeout;
	out->timer_at = next;
}

/* ---- the wire ---- */

static uint8_t *put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get(const uint8_t **p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | *(*p)++;
	return v;
}

size_t swim_msg_encode(const struct swim_msg *m, uint8_t buf[SWIM_MSG_MAX])
{
	uint8_t *p = buf;
	int n = m->n_upd < 0 ? 0 : m->n_upd > SWIM_PIGGYBACK_MAX ? SWIM_PIGGYBACK_MAX : m->n_upd;

	p = put(p, m->type, 1);
	p = put(p, m->seq, 8);
	p = put(p, (uint16_t)m->target, 2);
	p = put(p, (uint64_t)n, 1);
	for (int i = 0; i < n; i++) {
		const struct swim_update *u = &m->upd[i];

		p = put(p, (uint16_t)u->node, 2);
		p = put(p, u->state, 1);
		p = put(p, u->inc, 8);
		p = put(p, u->info.profile, 1);
		p = put(p, u->info.mgmt_running, 1);
		p = put(p, u->info.config_version, 8);
		memcpy(p, u->info.config_hash, SWIM_HASH_BYTES);
		p += SWIM_HASH_BYTES;
	}
	return (size_t)(p - buf);
}

int swim_msg_decode(const uint8_t *buf, size_t len, struct swim_msg *m)
{
	const uint8_t *p = buf;

	if (len < 12)
		return -EBADMSG;
	*m = (struct swim_msg){0};
	m->type = (enum swim_msg_type)get(&p, 1);
	m->seq = get(&p, 8);
	m->target = (int)get(&p, 2);
	m->n_upd = (int)get(&p, 1);
	if (m->n_upd > SWIM_PIGGYBACK_MAX || len != 12 + (size_t)m->n_upd * SWIM_UPD_BYTES)
		return -EBADMSG;
	for (int i = 0; i < m->n_upd; i++) {
		struct swim_update *u = &m->upd[i];

		u->node = (int)get(&p, 2);
		u->state = (enum swim_state)get(&p, 1);
		u->inc = get(&p, 8);
		u->info.profile = (uint8_t)get(&p, 1);
		u->info.mgmt_running = get(&p, 1) != 0;
		u->info.config_version = get(&p, 8);
		memcpy(u->info.config_hash, p, SWIM_HASH_BYTES);
		p += SWIM_HASH_BYTES;
	}
	return 0;
}

/* ---- messages ---- */

static struct relay *find_relay(struct swim *s, uint64_t seq)
{
	for (int i = 0; i < SWIM_RELAYS; i++)
		if (s->relays[i].requester >= 0 && s->relays[i].seq == seq)
			return &s->relays[i];
	return NULL;
}

static void on_msg(struct swim *s, int from, const struct swim_msg *msg, uint64_t now,
		   struct swim_actions *out)
{
	struct relay *r;

	for (int i = 0; i < msg->n_upd; i++)
		apply(s, &msg->upd[i], now, out);
	switch (msg->type) {
	case SWIM_PING:
		send(s, from, SWIM_ACK, msg->seq, s->p.self, out);
		break;
	case SWIM_PING_REQ:
		r = &s->relays[s->relay_next++ % SWIM_RELAYS];
		*r = (struct relay){.seq = ++s->seq,
				    .req_seq = msg->seq,
				    .requester = from,
				    .target = msg->target,
				    .at = now};
		send(s, msg->target, SWIM_PING, r->seq, msg->target, out);
		break;
	case SWIM_GOSSIP:
		break;
	case SWIM_ACK:
		if (msg->seq == s->probe_seq && msg->target == s->target && s->target >= 0) {
			s->acked = true;
			break;
		}
		r = find_relay(s, msg->seq);
		if (r && r->target == msg->target && r->target == from) {
			send(s, r->requester, SWIM_ACK, r->req_seq, r->target, out);
			r->requester = -1;
		}
		break;
	case _SWIM_MSG_MAX:
		break;
	}
}

static bool msg_valid(const struct swim *s, int from, const struct swim_msg *msg)
{
	if (from < 0 || from >= s->p.n || from == s->p.self || !msg || msg->type >= _SWIM_MSG_MAX ||
	    msg->n_upd < 0 || msg->n_upd > SWIM_PIGGYBACK_MAX ||
	    (msg->type != SWIM_PING && (msg->target < 0 || msg->target >= s->p.n)))
		return false;
	for (int i = 0; i < msg->n_upd; i++)
		if (msg->upd[i].node < 0 || msg->upd[i].node >= s->p.n ||
		    msg->upd[i].state >= _SWIM_STATE_MAX)
			return false;
	return true;
}

int swim_step(struct swim *s, const struct swim_event *ev, uint64_t now_us,
	      struct swim_actions *out)
{
	out->n = 0;
	out->timer_at = UINT64_MAX;
	switch (ev->type) {
	case SWIM_EV_TIMER:
		break;
	case SWIM_EV_RECV:
		if (!msg_valid(s, ev->from, ev->msg))
			return -EINVAL;
		on_msg(s, ev->from, ev->msg, now_us, out);
		break;
	case SWIM_EV_INFO:
		s->info = ev->info;
		s->inc++;
		queue(s, s->p.self, true);
		break;
	case _SWIM_EV_MAX:
		return -EINVAL;
	}
	tick(s, now_us, out);
	return 0;
}

int swim_new(const struct swim_params *p, const bool *watch, const bool *alive, struct swim **ret)
{
	struct swim *s;

	if (p->n <= 0 || p->self < 0 || p->self >= p->n || !p->period || !p->retransmit)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->m = calloc((size_t)p->n, sizeof(*s->m));
	s->order = calloc((size_t)p->n, sizeof(*s->order));
	s->pending = calloc((size_t)p->n, sizeof(*s->pending));
	s->suspects = calloc((size_t)p->n, sizeof(*s->suspects));
	if (!s->m || !s->order || !s->pending || !s->suspects) {
		swim_free(s);
		return -ENOMEM;
	}
	for (int i = 0; i < p->n; i++)
		s->m[i] = (struct member){.state = alive[i] ? SWIM_ALIVE : SWIM_DEAD,
					  .watch = watch[i] && i != p->self};
	for (int i = 0; i < SWIM_RELAYS; i++)
		s->relays[i].requester = -1;
	s->rng = p->seed ? p->seed : 0x9e3779b97f4a7c15ULL;
	s->inc = p->inc0;
	s->info = p->info;
	s->n_order = 0;
	s->pos = 0;
	*ret = s;
	return 0;
}

struct swim *swim_free(struct swim *s)
{
	if (s) {
		free(s->m);
		free(s->order);
		free(s->pending);
		free(s->suspects);
		free(s);
	}
	return NULL;
}

enum swim_state swim_member_state(const struct swim *s, int node)
{
	return node == s->p.self ? SWIM_ALIVE : s->m[node].state;
}

const struct swim_info *swim_member_info(const struct swim *s, int node)
{
	if (node == s->p.self)
		return &s->info;
	return s->m[node].has_info ? &s->m[node].info : NULL;
}

uint64_t swim_member_inc(const struct swim *s, int node)
{
	return node == s->p.self ? s->inc : s->m[node].inc;
}
