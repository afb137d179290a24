/* The handshake driver: sockets, probe and heartbeat timers, per-peer state. The pure
 * parts (format, sealing, replay windows) are in hs_wire.c. */
#include "hs.h"

#include "log.h"
#include "swim.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HS_MAX_SUBS 4
#define HS_LOST_AFTER 3
#define HS_HB_RING 64
#define PROFILE_NONE 0xff

struct hs_sub {
	hs_recv_fn fn;
	void *ud;
};

/* Challenges kept per probe kind: a new HELLO never replaces an outstanding one, any of
 * the last HS_CHALLENGES may be answered (within handshake_timeout of its sending). */
#define HS_CHALLENGES 4
/* HELLOs from a sender's unverified boot answered per handshake_timeout; the rest are
 * dropped as hello-rate. Below HS_CHALLENGES - 1, so the HELLOs they trigger never push
 * the round's own probe out of the ring before its answer is due. */
#define HS_UNVERIFIED_PER_ROUND 2

/* The HELLOs of one kind (handshake or external) to one peer. */
struct hs_probe {
	uint64_t challenge[HS_CHALLENGES]; /* 0: slot unused */
	uint64_t sent_us[HS_CHALLENGES];
	int next;      /* slot for the next challenge */
	bool pending;  /* a HELLO went out since the last round was judged */
	bool answered; /* and one was answered in time */
};

struct hs_peer {
	struct hs_replay replay;
	struct hs_probe hello, ext;
	bool contacted;
	int missed;
	int ext_alive;
	uint64_t last_heard_us;
	uint64_t rtt_us;
	bool mgmt_running;
	uint8_t profile;
	uint64_t config_version;
	uint8_t config_hash[HS_CONFIG_HASH_BYTES];
	bool has_config;
	uint8_t conflict_hash[HS_CONFIG_HASH_BYTES]; /* the last one reported as a conflict */
	bool conflict_reported;
	bool has_hb;
	struct hs_heartbeat hb;
	uint64_t hb_at;
	uint64_t drops;
	uint64_t unverified_since; /* rate window of HELLOs from unverified boots */
	int unverified_n;
	uint8_t key_id[HS_KEY_ID_BYTES]; /* the key its last authentic datagram was sealed with */
	bool has_key_id;
};

/* The protocol keys: [0] seals and opens, [1] (during a rotation) only opens. */
struct hs_keys {
	uint8_t proto[HS_KEYS_MAX][HS_KEY_BYTES];
	uint8_t id[HS_KEYS_MAX][HS_KEY_ID_BYTES];
	int n;
};

struct hs {
	struct loop *loop;
	const struct cfg *cfg;	/* the agent's: a reload changes values in place */
	uint64_t offer_version; /* hs_set_offer: announced instead of the running one, or 0 */
	uint8_t offer_hash[HS_CONFIG_HASH_BYTES];
	int self;
	uint8_t boot_id[HS_BOOT_ID_BYTES];
	struct hs_keys *keys; /* sodium_malloc'd */
	const uint8_t *key;   /* keys->proto[0], the sealing key */
	uint64_t counter;
	int fd_hs, fd_ext;
	struct watch *w_hs, *w_ext;
	struct timer *t_probe, *t_hb;
	unsigned probe_tick;   /* the slice of the paced HELLO round (probe_slices) */
	struct hs_peer *peers; /* one per node of the cfg (calloc'd; a reload keeps the set) */
	/* Indexes built once (a reload keeps the nodes and pairs), so that the periodic work
	 * after the decision touches the own pair and the nodes not contacted, not all N:
	 * own[i] whether node i is in this node's pair (not itself), the pair's other nodes,
	 * and the set of the nodes outside the pair that are not contacted (uncont_pos[i]:
	 * its place in uncont, -1 when absent). */
	bool *own;
	int *pair_nodes, n_pair;
	int *uncont, n_uncont, *uncont_pos;
	struct hs_sub subs[_HS_MSG_MAX][HS_MAX_SUBS];
	hs_config_fn config_fn;
	void *config_ud;
	hs_contact_fn contact_fn, peer_fn;
	void *contact_ud, *peer_ud;
	hs_heartbeat_fill_fn hb_fn;
	void *hb_ud;
	hs_qdev_alive_fn qdev_fn;
	void *qdev_ud;
	uint8_t profile;
	bool mgmt_running;
	uint64_t hb_seq;
	uint64_t hb_ring_seq[HS_HB_RING], hb_ring_at[HS_HB_RING];
	uint64_t drops[_HS_DROP_MAX];
	/* after the boot decision: membership of the nodes outside this pair (swim.h) */
	struct swim *swim;
	struct timer *t_swim;
	struct swim_info swim_said;
};

static bool valid_node(const struct hs *hs, int node)
{
	return node >= 0 && node < hs->cfg->n_nodes && node != hs->self;
}

static const char *node_name(const struct hs *hs, int node)
{
	return hs->cfg->nodes[node].name;
}

/* Sends from the socket bound to the handshake address (external: from the one bound to
 * the external address, so the answer comes back over the external network even when the
 * compartments cannot reach each other). */
static int send_msg_ext(struct hs *hs, int node, const struct cfg_addr *to, struct hs_msg *m,
			bool external)
{
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION,
				.type = (uint8_t)m->type,
				.sender = (uint16_t)hs->self,
				.dest = (uint16_t)node,
				.counter = ++hs->counter};
	memcpy(h.boot_id, hs->boot_id, HS_BOOT_ID_BYTES);
	uint8_t buf[HS_WIRE_MAX];
	int n = hs_wire_seal(hs->key, &h, m, buf, sizeof(buf));
	if (n < 0)
		return n;
	int fd = hs->fd_hs;
	if ((external && hs->fd_ext >= 0) ||
	    to->ss.ss_family != hs->cfg->nodes[hs->self].handshake.ss.ss_family)
		fd = hs->fd_ext;
	if (fd < 0)
		return -EAFNOSUPPORT;
	if (sendto(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (const struct sockaddr *)&to->ss, to->len) < 0) {
		log_debug("handshake: send to %s failed: %m", node_name(hs, node));
		return -errno;
	}
	return 0;
}

static int send_msg(struct hs *hs, int node, const struct cfg_addr *to, struct hs_msg *m)
{
	return send_msg_ext(hs, node, to, m, false);
}

static void fill_hello(struct hs *hs, struct hs_hello *h, uint64_t challenge, bool external)
{
	*h = (struct hs_hello){.challenge = challenge,
			       .external = external,
			       .mgmt_running = hs->mgmt_running,
			       .profile = hs->profile,
			       .config_version = hs->cfg->version};
	memcpy(h->config_hash, hs->cfg->hash, HS_CONFIG_HASH_BYTES);
	if (hs->offer_version > hs->cfg->version) {
		h->config_version = hs->offer_version;
		memcpy(h->config_hash, hs->offer_hash, HS_CONFIG_HASH_BYTES);
	}
}

void hs_set_offer(struct hs *hs, uint64_t version, const uint8_t hash[HS_CONFIG_HASH_BYTES])
{
	if (!hs)
		return;
	hs->offer_version = version;
	if (version)
		memcpy(hs->offer_hash, hash, HS_CONFIG_HASH_BYTES);
}

static void send_hello(struct hs *hs, int node, bool external)
{
	const struct cfg_node *n = &hs->cfg->nodes[node];
	struct hs_probe *p = external ? &hs->peers[node].ext : &hs->peers[node].hello;
	if (external && !n->has_external)
		return;
	uint64_t ch = 0;
	while (ch == 0)
		randombytes_buf(&ch, sizeof(ch));
	p->challenge[p->next] = ch;
	p->sent_us[p->next] = now_usec(); /* precise, for the RTT */
	p->next = (p->next + 1) % HS_CHALLENGES;
	p->pending = true;
	struct hs_msg m = {.type = HS_MSG_HELLO};
	fill_hello(hs, &m.hello, ch, external);
	send_msg_ext(hs, node, external ? &n->external : &n->handshake, &m, external);
}

static void emit_peer(struct hs *hs, int node, const char *state)
{
	struct event ev;
	event_begin(&ev, "peer");
	event_add(&ev, "node", node_name(hs, node));
	event_add(&ev, "state", state);
	if (!strcmp(state, "contacted") && hs->peers[node].rtt_us != UINT64_MAX)
		event_add_u64(&ev, "rtt_us", hs->peers[node].rtt_us);
	event_emit(&ev);
}

/* Adds node to (or removes it from) the nodes outside the pair not contacted. */
static void uncont_set(struct hs *hs, int node, bool in)
{
	int at = hs->uncont_pos[node];

	if (hs->own[node] || node == hs->self || in == (at >= 0))
		return;
	if (in) {
		hs->uncont_pos[node] = hs->n_uncont;
		hs->uncont[hs->n_uncont++] = node;
		return;
	}
	int last = hs->uncont[--hs->n_uncont];
	hs->uncont[at] = last;
	hs->uncont_pos[last] = at;
	hs->uncont_pos[node] = -1;
}

static void set_contacted(struct hs *hs, int node, bool on)
{
	struct hs_peer *p = &hs->peers[node];
	if (p->contacted == on)
		return;
	p->contacted = on;
	uncont_set(hs, node, !on);
	/* External liveness is judged afresh whenever the node is not contacted. */
	p->ext = (struct hs_probe){0};
	p->ext_alive = -1;
	emit_peer(hs, node, on ? "contacted" : "lost");
	if (hs->contact_fn)
		hs->contact_fn(node, on, hs->contact_ud);
	if (hs->peer_fn)
		hs->peer_fn(node, on, hs->peer_ud);
}

static void set_ext_alive(struct hs *hs, int node, int alive)
{
	struct hs_peer *p = &hs->peers[node];
	if (p->ext_alive == alive)
		return;
	p->ext_alive = alive;
	log_info("handshake: external interface of %s: %s", node_name(hs, node),
		 alive ? "alive" : "dead");
	if (hs->contact_fn)
		hs->contact_fn(node, p->contacted, hs->contact_ud);
	if (hs->peer_fn)
		hs->peer_fn(node, p->contacted, hs->peer_ud);
}

static bool in_own_pair(const struct hs *hs, int node);

/* The round of HELLOs ends: judge the previous probes, then send new ones. */
/* A round of HELLOs is paced over handshake_timeout in this many slices when the cluster
 * is larger than HS_PACE_ABOVE nodes: 1 024 nodes powered on together then do not answer
 * each other's bursts at the same instant. Each peer is still asked once per round and its
 * answer judged a round later. */
#define HS_PACE_SLICES 8
#define HS_PACE_ABOVE 16

static unsigned probe_slices(const struct hs *hs)
{
	/* After the decision a round asks only the own pair (and the nodes not contacted):
	 * no burst to spread, and one wake-up per round instead of HS_PACE_SLICES. */
	return hs->cfg->n_nodes > HS_PACE_ABOVE && !hs->swim ? HS_PACE_SLICES : 1;
}

/* A node the HELLO rounds watch: judge its last HELLOs, send new ones. */
static void probe_full(struct hs *hs, int i)
{
	struct hs_peer *p = &hs->peers[i];
	if (p->hello.pending && !p->hello.answered && ++p->missed >= HS_LOST_AFTER)
		set_contacted(hs, i, false);
	if (p->ext.pending)
		set_ext_alive(hs, i, p->ext.answered ? 1 : 0);
	p->hello.pending = p->hello.answered = false;
	p->ext.pending = p->ext.answered = false;
	send_hello(hs, i, false);
	if (!p->contacted)
		send_hello(hs, i, true);
}

/* A node the membership watches: only its external interface is asked while it is not
 * contacted (the rules' uncontacted_alive). A contacted one has nothing pending (its
 * external probes were reset when it became contacted). */
static void probe_ext(struct hs *hs, int i)
{
	struct hs_peer *p = &hs->peers[i];
	if (p->ext.pending)
		set_ext_alive(hs, i, p->ext.answered ? 1 : 0);
	p->ext.pending = p->ext.answered = false;
	if (!p->contacted)
		send_hello(hs, i, true);
}

static void probe_round(struct hs *hs, unsigned slice, unsigned slices)
{
	if (!hs->swim) { /* before the decision: every node, every round */
		for (int i = 0; i < hs->cfg->n_nodes; i++)
			if (i != hs->self && (unsigned)i % slices == slice)
				probe_full(hs, i);
		return;
	}
	/* After it: the own pair and the nodes outside it not contacted, not all N. */
	for (int k = 0; k < hs->n_pair; k++)
		if ((unsigned)hs->pair_nodes[k] % slices == slice)
			probe_full(hs, hs->pair_nodes[k]);
	for (int k = 0; k < hs->n_uncont;) {
		int i = hs->uncont[k];
		if ((unsigned)i % slices == slice)
			probe_ext(hs, i);
		/* (set_ext_alive's callback may not change the set; stay safe if it does) */
		k += k < hs->n_uncont && hs->uncont[k] == i;
	}
}

static void on_probe(struct timer *t, void *ud)
{
	struct hs *hs = ud;
	uint64_t now = loop_now(hs->loop);
	unsigned slices = probe_slices(hs);
	probe_round(hs, hs->probe_tick++ % slices, slices);
	timer_arm(t, now + hs->cfg->timeouts.handshake_timeout / slices);
}

static bool in_own_pair(const struct hs *hs, int node)
{
	return node >= 0 && node < hs->cfg->n_nodes && hs->own[node];
}

static void on_heartbeat(struct timer *t, void *ud)
{
	struct hs *hs = ud;
	uint64_t now = loop_now(hs->loop);
	struct hs_msg m = {.type = HS_MSG_HEARTBEAT};
	struct hs_heartbeat *hb = &m.hb;
	*hb = (struct hs_heartbeat){.profile = hs->profile,
				    .health = 0xff,
				    .config_version = hs->cfg->version,
				    .mgmt_running = hs->mgmt_running};
	memcpy(hb->config_hash, hs->cfg->hash, HS_CONFIG_HASH_BYTES);
	if (hs->offer_version > hs->cfg->version) {
		hb->config_version = hs->offer_version;
		memcpy(hb->config_hash, hs->offer_hash, HS_CONFIG_HASH_BYTES);
	}
	if (hs->hb_fn)
		hs->hb_fn(hb, hs->hb_ud);
	hb->seq = ++hs->hb_seq;
	hs->hb_ring_seq[hb->seq % HS_HB_RING] = hb->seq;
	hs->hb_ring_at[hb->seq % HS_HB_RING] = now_usec();
	for (int k = 0; k < hs->n_pair; k++)
		send_msg(hs, hs->pair_nodes[k], &hs->cfg->nodes[hs->pair_nodes[k]].handshake, &m);
	timer_arm(t, now + hs->cfg->timeouts.heartbeat_interval);
}

/* Two different files with the same version number: one event per peer and hash. */
static void check_config_conflict(struct hs *hs, int node, struct hs_peer *p)
{
	if (p->config_version != hs->cfg->version ||
	    !memcmp(p->config_hash, hs->cfg->hash, HS_CONFIG_HASH_BYTES)) {
		p->conflict_reported = false;
		return;
	}
	if (p->conflict_reported && !memcmp(p->conflict_hash, p->config_hash, HS_CONFIG_HASH_BYTES))
		return;
	p->conflict_reported = true;
	memcpy(p->conflict_hash, p->config_hash, HS_CONFIG_HASH_BYTES);
	char mine[2 * HS_CONFIG_HASH_BYTES + 1], theirs[2 * HS_CONFIG_HASH_BYTES + 1];
	sodium_bin2hex(mine, sizeof(mine), hs->cfg->hash, HS_CONFIG_HASH_BYTES);
	sodium_bin2hex(theirs, sizeof(theirs), p->config_hash, HS_CONFIG_HASH_BYTES);
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "conflict", "same-version");
	event_add_u64(&ev, "version", hs->cfg->version);
	event_add(&ev, "node", hs->cfg->nodes[hs->self].name);
	event_add(&ev, "hash", mine);
	event_add(&ev, "peer", hs->cfg->nodes[node].name);
	event_add(&ev, "peer_hash", theirs);
	event_emit(&ev);
}

static void note_info(struct hs *hs, int node, bool mgmt, uint8_t profile, uint64_t cfg_version,
		      const uint8_t cfg_hash[HS_CONFIG_HASH_BYTES])
{
	struct hs_peer *p = &hs->peers[node];
	p->mgmt_running = mgmt;
	p->profile = profile;
	p->config_version = cfg_version;
	memcpy(p->config_hash, cfg_hash, HS_CONFIG_HASH_BYTES);
	p->has_config = true;
	check_config_conflict(hs, node, p);
	if (hs->config_fn)
		hs->config_fn(node, cfg_version, cfg_hash, hs->config_ud);
}

/* The answer goes to the sender's configured address, never to the UDP source (a
 * replayed HELLO must not turn this node into a reflector): the external one for an
 * external HELLO (the sender sends those from it), else the handshake one. */
static void reply_hello(struct hs *hs, int fd, int from, const struct hs_hello *in)
{
	struct hs_msg m = {.type = HS_MSG_HELLO_ACK};
	fill_hello(hs, &m.hello, in->challenge, in->external);
	const struct cfg_node *n = &hs->cfg->nodes[from];
	const struct cfg_addr *to = in->external && n->has_external ? &n->external : &n->handshake;
	int saved = hs->fd_hs;
	hs->fd_hs = fd; /* answer from the socket the HELLO came in on */
	send_msg(hs, from, to, &m);
	hs->fd_hs = saved;
}

/* Which of the outstanding challenges this answer echoes; -1: none. */
static int probe_slot(const struct hs_probe *pr, uint64_t challenge)
{
	for (int i = 0; i < HS_CHALLENGES; i++)
		if (challenge && pr->challenge[i] == challenge)
			return i;
	return -1;
}

static void got_hello_ack(struct hs *hs, int from, const struct hs_hello *h, uint64_t now)
{
	struct hs_peer *p = &hs->peers[from];
	struct hs_probe *pr = h->external ? &p->ext : &p->hello;
	int i = probe_slot(pr, h->challenge);
	if (i < 0)
		return;
	uint64_t rtt = now - pr->sent_us[i];
	pr->challenge[i] = 0; /* answered once */
	if (rtt > hs->cfg->timeouts.handshake_timeout)
		return; /* too late to count */
	pr->answered = true;
	if (h->external) {
		set_ext_alive(hs, from, 1);
		return;
	}
	uint64_t tmax = hs->cfg->timeouts.t_max;
	bool crossed = p->rtt_us == UINT64_MAX || (p->rtt_us > tmax) != (rtt > tmax);
	p->rtt_us = rtt;
	p->missed = 0;
	if (crossed && hs->peer_fn)
		hs->peer_fn(from, p->contacted, hs->peer_ud);
	if (!hs->swim || in_own_pair(hs, from)) /* (else the membership says) */
		set_contacted(hs, from, true);
}

static void deliver(struct hs *hs, const struct hs_msg *m, int from)
{
	for (int i = 0; i < HS_MAX_SUBS; i++)
		if (hs->subs[m->type][i].fn)
			hs->subs[m->type][i].fn(m, from, hs->subs[m->type][i].ud);
}

static enum hs_drop drop(struct hs *hs, int from, enum hs_drop why)
{
	hs->drops[why]++;
	if (from >= 0)
		hs->peers[from].drops++;
	log_debug("handshake: dropped a datagram%s%s: %s", from >= 0 ? " from " : "",
		  from >= 0 ? node_name(hs, from) : "", hs_drop_to_str(why));
	return why;
}

/* Is this HELLO_ACK the answer to one of our outstanding HELLOs (so it is fresh)? */
static bool answers_probe(const struct hs *hs, int from, const struct hs_msg *m)
{
	if (m->type != HS_MSG_HELLO_ACK)
		return false;
	const struct hs_peer *p = &hs->peers[from];
	const struct hs_probe *pr = m->hello.external ? &p->ext : &p->hello;
	return probe_slot(pr, m->hello.challenge) >= 0;
}

/* A HELLO from a boot of `from` not yet verified: answered at most
 * HS_UNVERIFIED_PER_ROUND times per handshake_timeout, whatever its claimed sender sends
 * (anyone can replay one). */
static bool unverified_hello_allowed(struct hs *hs, int from, uint64_t now)
{
	struct hs_peer *p = &hs->peers[from];
	if (now - p->unverified_since >= hs->cfg->timeouts.handshake_timeout) {
		p->unverified_since = now;
		p->unverified_n = 0;
	}
	return p->unverified_n++ < HS_UNVERIFIED_PER_ROUND;
}

/* ---- membership after the boot decision (issue 20) ---- */

static void swim_info_now(const struct hs *hs, struct swim_info *i)
{
	*i = (struct swim_info){.profile = hs->profile,
				.mgmt_running = hs->mgmt_running,
				.config_version = hs->cfg->version};
	memcpy(i->config_hash, hs->cfg->hash, SWIM_HASH_BYTES);
}

/* What the membership says of a node outside this pair is what the rules' facts rest on
 * (contacted, and its profile, management and configuration). */
static void swim_change(struct hs *hs, int node, enum swim_state st)
{
	const struct swim_info *i = swim_member_info(hs->swim, node);

	if (!valid_node(hs, node) || in_own_pair(hs, node))
		return;
	if (st == SWIM_ALIVE && i)
		note_info(hs, node, i->mgmt_running, i->profile, i->config_version, i->config_hash);
	set_contacted(hs, node, st != SWIM_DEAD);
}

static void swim_apply(struct hs *hs, const struct swim_actions *out)
{
	for (int k = 0; k < out->n; k++) {
		const struct swim_action *a = &out->a[k];
		uint8_t buf[SWIM_MSG_MAX];
		struct hs_msg m = {.type = HS_MSG_SWIM};

		switch (a->type) {
		case SWIM_ACT_SEND:
			if (!valid_node(hs, a->node))
				break;
			m.blob =
			    (struct hs_blob){.data = buf, .len = swim_msg_encode(&a->msg, buf)};
			send_msg(hs, a->node, &hs->cfg->nodes[a->node].handshake, &m);
			break;
		case SWIM_ACT_CHANGE:
			swim_change(hs, a->node, a->state);
			break;
		case _SWIM_ACT_MAX:
			break;
		}
	}
	if (out->timer_at != UINT64_MAX)
		timer_arm(hs->t_swim, out->timer_at);
}

static void swim_event(struct hs *hs, const struct swim_event *ev)
{
	struct swim_actions out;

	if (swim_step(hs->swim, ev, now_usec(), &out) < 0) {
		drop(hs, ev->from, HS_DROP_MALFORMED);
		return;
	}
	swim_apply(hs, &out);
}

static void swim_recv(struct hs *hs, int from, const struct hs_blob *b)
{
	struct swim_msg msg;

	if (!hs->swim)
		return; /* not decided yet: the HELLO rounds still watch every node */
	if (swim_msg_decode(b->data, b->len, &msg) < 0) {
		drop(hs, from, HS_DROP_MALFORMED);
		return;
	}
	swim_event(hs, &(struct swim_event){.type = SWIM_EV_RECV, .from = from, .msg = &msg});
}

/* This node's facts changed (decision, management, a reloaded configuration): said with
 * a new incarnation. */
static void swim_say(struct hs *hs)
{
	struct swim_info now;

	swim_info_now(hs, &now);
	if (!memcmp(&now, &hs->swim_said, sizeof(now)))
		return;
	hs->swim_said = now;
	swim_event(hs, &(struct swim_event){.type = SWIM_EV_INFO, .info = now});
}

static void on_swim(struct timer *t, void *ud)
{
	struct hs *hs = ud;

	(void)t;
	swim_say(hs);
	swim_event(hs, &(struct swim_event){.type = SWIM_EV_TIMER});
}

static int swim_start(struct hs *hs)
{
	int n = hs->cfg->n_nodes, lg = 1;
	bool *watch = calloc((size_t)n, sizeof(bool)), *alive = calloc((size_t)n, sizeof(bool));
	uint64_t period = hs->cfg->timeouts.heartbeat_interval;
	struct timespec rt;
	struct swim_params p;
	int r = -ENOMEM;

	while ((1 << lg) < n + 1)
		lg++;
	clock_gettime(CLOCK_REALTIME, &rt);
	p = (struct swim_params){
	    .n = n,
	    .self = hs->self,
	    .period = period,
	    .probe_timeout = period / 3,
	    .suspect_timeout = 5 * period,
	    .indirect = 3,
	    .retransmit = 3 * lg,
	    /* above any incarnation of an earlier boot: the wall clock moved on since */
	    .inc0 = (uint64_t)rt.tv_sec * 1000000 + (uint64_t)rt.tv_nsec / 1000,
	};
	randombytes_buf(&p.seed, sizeof(p.seed));
	swim_info_now(hs, &p.info);
	hs->swim_said = p.info;
	for (int i = 0; watch && alive && i < n; i++) {
		watch[i] = i != hs->self && !in_own_pair(hs, i);
		alive[i] = i != hs->self && hs->peers[i].contacted;
	}
	if (watch && alive && (hs->t_swim = timer_new(hs->loop, on_swim, hs)))
		r = swim_new(&p, watch, alive, &hs->swim);
	free(watch);
	free(alive);
	if (r < 0) {
		log_error("handshake: cannot start the membership: %s (the HELLO rounds go on)",
			  strerror(-r));
		hs->t_swim = timer_free(hs->t_swim);
		return r;
	}
	log_info("handshake: membership of the %d nodes outside this pair by probes (SWIM), "
		 "period %" PRIu64 " ms",
		 n - 1, period / 1000);
	timer_arm(hs->t_swim, now_usec());
	/* the rounds are no longer paced (probe_slices): the next one a full round on */
	timer_arm(hs->t_probe, now_usec() + hs->cfg->timeouts.handshake_timeout);
	return 0;
}

static void dispatch(struct hs *hs, int fd, int from, const struct hs_wire_hdr *h,
		     const struct hs_msg *m)
{
	struct hs_peer *p = &hs->peers[from];
	uint64_t now = now_usec();
	bool verified = p->replay.has_boot && !memcmp(p->replay.boot, h->boot_id, HS_BOOT_ID_BYTES);
	if (verified)
		p->last_heard_us = now;
	switch (m->type) {
	case HS_MSG_HELLO:
		reply_hello(hs, fd, from, &m->hello);
		if (verified)
			note_info(hs, from, m->hello.mgmt_running, m->hello.profile,
				  m->hello.config_version, m->hello.config_hash);
		else if (!m->hello.external)
			send_hello(hs, from, false); /* let it prove its new boot */
		return;
	case HS_MSG_HELLO_ACK:
		note_info(hs, from, m->hello.mgmt_running, m->hello.profile,
			  m->hello.config_version, m->hello.config_hash);
		got_hello_ack(hs, from, &m->hello, now);
		return;
	case HS_MSG_HEARTBEAT:
		p->has_hb = true;
		p->hb = m->hb;
		p->hb_at = now;
		note_info(hs, from, m->hb.mgmt_running, m->hb.profile, m->hb.config_version,
			  m->hb.config_hash);
		break;
	case HS_MSG_SWIM:
		if (verified)
			swim_recv(hs, from, &m->blob);
		return;
	case HS_MSG_HEARTBEAT_ACK:
	case HS_MSG_QUERY:
	case HS_MSG_QUERY_REPLY:
	case HS_MSG_CONFIG_GET:
	case HS_MSG_CONFIG_DATA:
		break;
	case _HS_MSG_MAX:
		return;
	}
	deliver(hs, m, from);
}

/* A peer proved a boot fresh: its first, or a new one after a restart (which the operator
 * wants to see: the peer rebooted). */
static void log_boot_adopted(struct hs *hs, int node, const uint8_t boot[HS_BOOT_ID_BYTES],
			     bool replaced)
{
	char hex[2 * HS_BOOT_ID_BYTES + 1];
	sodium_bin2hex(hex, sizeof(hex), boot, HS_BOOT_ID_BYTES);
	log_info("handshake: %s %s boot %s", node_name(hs, node),
		 replaced ? "restarted, now runs" : "runs", hex);
}

static void handle_datagram(struct hs *hs, int fd, const uint8_t *buf, size_t len)
{
	struct hs_wire_hdr h;
	enum hs_drop d = hs_wire_parse_hdr(buf, len, &h);
	if (d != HS_DROP_NONE) {
		drop(hs, -1, d);
		return;
	}
	if (!valid_node(hs, h.sender)) {
		drop(hs, -1, HS_DROP_UNKNOWN_SENDER);
		return;
	}
	if (h.dest != hs->self) {
		drop(hs, h.sender, HS_DROP_MISDIRECTED);
		return;
	}
	uint8_t plain[HS_WIRE_MAX];
	struct hs_msg m;
	int ki = 0;
	d = hs_wire_open(hs->keys->proto[0], buf, len, &h, plain, &m);
	if (d == HS_DROP_BAD_TAG && hs->keys->n > 1)
		d = hs_wire_open(hs->keys->proto[ki = 1], buf, len, &h, plain, &m);
	if (d == HS_DROP_NONE) {
		memcpy(hs->peers[h.sender].key_id, hs->keys->id[ki], HS_KEY_ID_BYTES);
		hs->peers[h.sender].has_key_id = true;
		struct hs_replay *r = &hs->peers[h.sender].replay;
		bool known = r->has_boot && !memcmp(r->boot, h.boot_id, HS_BOOT_ID_BYTES);
		bool fresh = answers_probe(hs, h.sender, &m);
		d = hs_replay_check(r, h.boot_id, h.counter, fresh, m.type == HS_MSG_HELLO);
		bool now_known = r->has_boot && !memcmp(r->boot, h.boot_id, HS_BOOT_ID_BYTES);
		if (d == HS_DROP_NONE && !known && now_known)
			log_boot_adopted(hs, h.sender, h.boot_id, r->n_old > 0);
		if (d == HS_DROP_NONE && !now_known &&
		    !unverified_hello_allowed(hs, h.sender, now_usec()))
			d = HS_DROP_HELLO_RATE;
	}
	if (d != HS_DROP_NONE)
		drop(hs, h.sender, d);
	else
		dispatch(hs, fd, h.sender, &h, &m);
	sodium_memzero(plain, sizeof(plain));
}

/* Datagrams that arrived together are read in one system call (recvmmsg) and handled in
 * one pass; at most HS_RECV_BATCH × 4 per wake-up, so the loop's other work goes on. */
#define HS_RECV_BATCH 16

static void on_readable(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct hs *hs = ud;
	/* One more byte than allowed, so an oversize datagram is seen as such. */
	static uint8_t bufs[HS_RECV_BATCH][HS_WIRE_MAX + 1];
	struct iovec iov[HS_RECV_BATCH];
	struct mmsghdr mm[HS_RECV_BATCH];

	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < HS_RECV_BATCH; i++) {
			iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof(bufs[i])};
			mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		int n = recvmmsg(fd, mm, HS_RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("handshake: receive failed: %m");
			return;
		}
		for (int i = 0; i < n; i++) {
			size_t len = mm[i].msg_len;
			/* a datagram longer than the buffer is cut: MSG_TRUNC says so */
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
				len = sizeof(bufs[i]);
			handle_datagram(hs, fd, bufs[i], len);
		}
		if (n < HS_RECV_BATCH)
			return;
	}
}

/* A bound datagram socket on a, or -errno with the reason in why (when given). */
static int open_bound(const struct cfg_addr *a, struct strbuf *why)
{
	char s[80];
	cfg_addr_format(a, s, sizeof(s));
	int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = fd < 0 ? -errno : 0;
	if (fd >= 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		r = -errno;
		close(fd);
	}
	if (r < 0 && why)
		sb_printf(why, "cannot bind %s: %s", s, strerror(-r));
	return r < 0 ? r : fd;
}

static int bind_socket(const struct cfg_addr *a, const char *what)
{
	struct strbuf why;
	sb_init(&why);
	int fd = open_bound(a, &why);
	char s[80];
	cfg_addr_format(a, s, sizeof(s));
	if (fd < 0)
		log_error("handshake: %s socket: %s", what, why.buf ? why.buf : "");
	else
		log_info("handshake: %s socket on %s", what, s);
	sb_free(&why);
	return fd;
}

int hs_bind_check(const struct cfg *cfg, int self, struct strbuf *why)
{
	const struct cfg_node *me = &cfg->nodes[self];
	int fd = open_bound(&me->handshake, why);
	if (fd < 0)
		return fd;
	close(fd);
	if (!me->has_external || cfg_addr_equal(&me->external, &me->handshake))
		return 0;
	fd = open_bound(&me->external, why);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int hs_open(struct hs *hs)
{
	const struct cfg_node *me = &hs->cfg->nodes[hs->self];
	hs->fd_hs = bind_socket(&me->handshake, "handshake");
	if (hs->fd_hs < 0)
		return hs->fd_hs;
	hs->w_hs = watch_add(hs->loop, hs->fd_hs, EPOLLIN, on_readable, hs, NULL);
	if (!hs->w_hs)
		return -ENOMEM;
	if (me->has_external && !cfg_addr_equal(&me->external, &me->handshake)) {
		hs->fd_ext = bind_socket(&me->external, "external");
		if (hs->fd_ext < 0)
			return hs->fd_ext;
		hs->w_ext = watch_add(hs->loop, hs->fd_ext, EPOLLIN, on_readable, hs, NULL);
		if (!hs->w_ext)
			return -ENOMEM;
	}
	return 0;
}

/* Derives n cluster keys (consecutive in `cluster`) into ks. */
static int keys_set(struct hs *hs, struct hs_keys *ks, const uint8_t *cluster, int n)
{
	for (int i = 0; i < n; i++) {
		const uint8_t *ck = cluster + (size_t)i * HS_KEY_BYTES;
		int r = hs_key_derive(ck, hs->cfg->name, ks->proto[i]);
		if (r < 0)
			return r;
		hs_key_id(ck, ks->id[i]);
	}
	ks->n = n;
	return 0;
}

static void log_keys(const struct hs *hs)
{
	char a[2 * HS_KEY_ID_BYTES + 1], b[2 * HS_KEY_ID_BYTES + 1] = "none";
	sodium_bin2hex(a, sizeof(a), hs->keys->id[0], HS_KEY_ID_BYTES);
	if (hs->keys->n > 1)
		sodium_bin2hex(b, sizeof(b), hs->keys->id[1], HS_KEY_ID_BYTES);
	log_info("handshake: sealing with key %s, also accepting %s", a, b);
}

/* hs_new got the current key; the key file may name a second one (a rotation). */
static void keys_add_other(struct hs *hs, const uint8_t *current)
{
	uint8_t *k = NULL;
	/* read again quietly: hs_key_load reported its errors */
	int n = hs->cfg->key_file[0] ? hs_key_file_read(hs->cfg->key_file, &k, true) : -ENOENT;
	if (n == 2 && !sodium_memcmp(k, current, HS_KEY_BYTES))
		keys_set(hs, hs->keys, k, 2);
	if (n > 0)
		sodium_free(k);
	log_keys(hs);
}

int hs_reload_keys(struct hs *hs)
{
	uint8_t *k = NULL;
	int n = hs_key_file_read(hs->cfg->key_file, &k, false);
	if (n < 0) {
		log_error("handshake: keeping the keys in use");
		return n;
	}
	struct hs_keys *ks = sodium_malloc(sizeof(*ks));
	int r = ks ? keys_set(hs, ks, k, n) : -ENOMEM;
	sodium_free(k);
	if (r < 0) {
		if (ks)
			sodium_free(ks);
		return r;
	}
	sodium_free(hs->keys);
	hs->keys = ks;
	hs->key = ks->proto[0];
	log_keys(hs);
	return 0;
}

/* The indexes of struct hs: the own pair, and every node outside it not contacted yet. */
static int index_nodes(struct hs *hs)
{
	int n = hs->cfg->n_nodes, mine = cfg_node_pair(hs->cfg, hs->self);

	hs->own = calloc((size_t)n, sizeof(*hs->own));
	hs->pair_nodes = calloc((size_t)n, sizeof(int));
	hs->uncont = calloc((size_t)n, sizeof(int));
	hs->uncont_pos = calloc((size_t)n, sizeof(int));
	if (!hs->own || !hs->pair_nodes || !hs->uncont || !hs->uncont_pos)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		hs->own[i] = i != hs->self && cfg_node_pair(hs->cfg, i) == mine;
		if (hs->own[i])
			hs->pair_nodes[hs->n_pair++] = i;
		hs->uncont_pos[i] = -1;
		uncont_set(hs, i, !hs->peers[i].contacted);
	}
	return 0;
}

int hs_new(struct loop *l, const struct cfg *cfg, int self, const uint8_t boot_id[HS_BOOT_ID_BYTES],
	   const uint8_t key[HS_KEY_BYTES], struct hs **ret)
{
	struct hs *hs = calloc(1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	*hs = (struct hs){
	    .loop = l, .self = self, .fd_hs = -1, .fd_ext = -1, .profile = PROFILE_NONE};
	memcpy(hs->boot_id, boot_id, HS_BOOT_ID_BYTES);
	/* Heartbeat numbers unique per boot: an acknowledgement of a previous boot's
	 * heartbeat never matches one of this boot's (SPEC §7 lease). Bits 24..55 random. */
	hs->hb_seq = (uint64_t)randombytes_random() << 24;
	int r = -ENOMEM;
	hs->cfg = cfg;
	hs->peers = calloc((size_t)cfg->n_nodes, sizeof(*hs->peers));
	for (int i = 0; hs->peers && i < cfg->n_nodes; i++)
		hs->peers[i] = (struct hs_peer){
		    .ext_alive = -1, .rtt_us = UINT64_MAX, .profile = PROFILE_NONE};
	hs->keys = sodium_malloc(sizeof(*hs->keys));
	if (!hs->peers || !hs->keys || (r = index_nodes(hs)) < 0 ||
	    (r = keys_set(hs, hs->keys, key, 1)) < 0 || (r = hs_open(hs)) < 0)
		goto fail;
	hs->key = hs->keys->proto[0];
	keys_add_other(hs, key);
	hs->t_probe = timer_new(l, on_probe, hs);
	hs->t_hb = timer_new(l, on_heartbeat, hs);
	if (!hs->t_probe || !hs->t_hb) {
		r = -ENOMEM;
		goto fail;
	}
	char hex[2 * HS_BOOT_ID_BYTES + 1];
	sodium_bin2hex(hex, sizeof(hex), boot_id, HS_BOOT_ID_BYTES);
	log_info("handshake: this node (%s) runs boot %s", node_name(hs, self), hex);
	/* (paced: the first slice after a random part of a slice) */
	uint64_t slice = hs->cfg->timeouts.handshake_timeout / probe_slices(hs);
	timer_arm(hs->t_probe,
		  now_usec() +
		      (probe_slices(hs) > 1 ? randombytes_uniform((uint32_t)slice + 1) : 0));
	timer_arm(hs->t_hb, now_usec());
	*ret = hs;
	return 0;
fail:
	hs_free(hs);
	return r;
}

struct hs *hs_free(struct hs *hs)
{
	if (!hs)
		return NULL;
	watch_remove(hs->w_hs);
	watch_remove(hs->w_ext);
	if (hs->fd_hs >= 0)
		close(hs->fd_hs);
	if (hs->fd_ext >= 0)
		close(hs->fd_ext);
	timer_free(hs->t_probe);
	timer_free(hs->t_hb);
	timer_free(hs->t_swim);
	swim_free(hs->swim);
	if (hs->keys)
		sodium_free(hs->keys);
	free(hs->peers);
	free(hs->own);
	free(hs->pair_nodes);
	free(hs->uncont);
	free(hs->uncont_pos);
	sodium_memzero(hs, sizeof(*hs));
	free(hs);
	return NULL;
}

int hs_subscribe(struct hs *hs, enum hs_msg_type type, hs_recv_fn fn, void *ud)
{
	if (type >= _HS_MSG_MAX || type == HS_MSG_HELLO || type == HS_MSG_HELLO_ACK || !fn)
		return -EINVAL;
	for (int i = 0; i < HS_MAX_SUBS; i++)
		if (!hs->subs[type][i].fn) {
			hs->subs[type][i] = (struct hs_sub){fn, ud};
			return 0;
		}
	return -ENOSPC;
}

int hs_set_contact_fn(struct hs *hs, hs_contact_fn fn, void *ud)
{
	hs->contact_fn = fn;
	hs->contact_ud = ud;
	return 0;
}

void hs_set_peer_fn(struct hs *hs, hs_contact_fn fn, void *ud)
{
	hs->peer_fn = fn;
	hs->peer_ud = ud;
}

void hs_set_config_fn(struct hs *hs, hs_config_fn fn, void *ud)
{
	hs->config_fn = fn;
	hs->config_ud = ud;
}

void hs_set_heartbeat_fn(struct hs *hs, hs_heartbeat_fill_fn fill, void *ud)
{
	hs->hb_fn = fill;
	hs->hb_ud = ud;
}

void hs_set_qdev_alive_fn(struct hs *hs, hs_qdev_alive_fn fn, void *ud)
{
	hs->qdev_fn = fn;
	hs->qdev_ud = ud;
}

void hs_set_local(struct hs *hs, uint8_t profile, bool mgmt_running)
{
	hs->profile = profile;
	hs->mgmt_running = mgmt_running;
	/* Decided: the nodes outside this pair are watched by the membership from now on. */
	if (!hs->swim && profile != PROFILE_NONE)
		swim_start(hs);
	else if (hs->swim)
		swim_say(hs);
}

int hs_send_heartbeat_ack(struct hs *hs, int node, uint64_t seq)
{
	if (!valid_node(hs, node))
		return -EINVAL;
	struct hs_msg m = {.type = HS_MSG_HEARTBEAT_ACK, .ack_seq = seq};
	return send_msg(hs, node, &hs->cfg->nodes[node].handshake, &m);
}

uint64_t hs_heartbeat_sent_at(const struct hs *hs, uint64_t seq)
{
	return seq && hs->hb_ring_seq[seq % HS_HB_RING] == seq ? hs->hb_ring_at[seq % HS_HB_RING]
							       : 0;
}

int hs_send(struct hs *hs, int node, enum hs_msg_type type, const void *payload, size_t len)
{
	if (!valid_node(hs, node) || (type != HS_MSG_QUERY && type != HS_MSG_QUERY_REPLY &&
				      type != HS_MSG_CONFIG_GET && type != HS_MSG_CONFIG_DATA))
		return -EINVAL;
	if (len > HS_BLOB_MAX)
		return -EMSGSIZE;
	struct hs_msg m = {.type = type, .blob = {.data = payload, .len = len}};
	return send_msg(hs, node, &hs->cfg->nodes[node].handshake, &m);
}

bool hs_peer_contacted(const struct hs *hs, int node)
{
	return valid_node(hs, node) && hs->peers[node].contacted;
}

uint64_t hs_peer_last_heard(const struct hs *hs, int node)
{
	return valid_node(hs, node) ? hs->peers[node].last_heard_us : 0;
}

uint64_t hs_peer_rtt(const struct hs *hs, int node)
{
	return valid_node(hs, node) ? hs->peers[node].rtt_us : UINT64_MAX;
}

int hs_peer_external_alive(const struct hs *hs, int node)
{
	return valid_node(hs, node) ? hs->peers[node].ext_alive : -1;
}

int hs_peer_qdev_alive(const struct hs *hs, int node)
{
	if (!valid_node(hs, node) || !hs->qdev_fn)
		return -1;
	int r = hs->qdev_fn(node, hs->qdev_ud);
	return r == 0 || r == 1 ? r : -1;
}

bool hs_peer_config(const struct hs *hs, int node, uint64_t *version,
		    uint8_t hash[HS_CONFIG_HASH_BYTES])
{
	if (!valid_node(hs, node) || !hs->peers[node].has_config)
		return false;
	*version = hs->peers[node].config_version;
	memcpy(hash, hs->peers[node].config_hash, HS_CONFIG_HASH_BYTES);
	return true;
}

bool hs_peer_mgmt_running(const struct hs *hs, int node)
{
	return valid_node(hs, node) && hs->peers[node].mgmt_running;
}

uint8_t hs_peer_profile(const struct hs *hs, int node)
{
	return valid_node(hs, node) ? hs->peers[node].profile : PROFILE_NONE;
}

const struct hs_heartbeat *hs_peer_heartbeat(const struct hs *hs, int node, uint64_t *ret_at)
{
	if (!valid_node(hs, node) || !hs->peers[node].has_hb)
		return NULL;
	if (ret_at)
		*ret_at = hs->peers[node].hb_at;
	return &hs->peers[node].hb;
}

int hs_contacted_count(const struct hs *hs)
{
	int c = 0;
	for (int i = 0; i < hs->cfg->n_nodes; i++)
		c += hs_peer_contacted(hs, i);
	return c;
}

uint64_t hs_drops(const struct hs *hs, enum hs_drop reason)
{
	return reason < _HS_DROP_MAX ? hs->drops[reason] : 0;
}

uint64_t hs_peer_drops(const struct hs *hs, int node)
{
	return valid_node(hs, node) ? hs->peers[node].drops : 0;
}

static const char *tri_str(int v)
{
	return v > 0 ? "alive" : v == 0 ? "dead" : "unknown";
}

static void peer_json(const struct hs *hs, int i, uint64_t now, struct strbuf *o)
{
	const struct hs_peer *p = &hs->peers[i];
	const struct cfg *c = hs->cfg;
	sb_puts(o, "{\"node\":");
	sb_json_str(o, c->nodes[i].name);
	sb_puts(o, ",\"compartment\":");
	sb_json_str(o, c->compartments[c->nodes[i].compartment].name);
	sb_printf(o, ",\"state\":\"%s\",\"rtt_us\":", p->contacted ? "contacted" : "not-contacted");
	if (p->rtt_us == UINT64_MAX)
		sb_puts(o, "null");
	else
		sb_printf(o, "%" PRIu64, p->rtt_us);
	sb_puts(o, ",\"last_heard_ms_ago\":");
	if (p->last_heard_us)
		sb_printf(o, "%" PRIu64, (uint64_t)((now - p->last_heard_us) / USEC_PER_MSEC));
	else
		sb_puts(o, "null");
	sb_printf(o,
		  ",\"external\":\"%s\",\"qdev\":\"%s\",\"mgmt_running\":%s,\"drops\":%" PRIu64 "}",
		  tri_str(p->ext_alive), tri_str(hs_peer_qdev_alive(hs, i)),
		  p->mgmt_running ? "true" : "false", p->drops);
}

static void peer_human(const struct hs *hs, int i, uint64_t now, struct strbuf *o)
{
	const struct hs_peer *p = &hs->peers[i];
	const struct cfg *c = hs->cfg;
	char rtt[32] = "-", heard[32] = "never";
	if (p->rtt_us != UINT64_MAX)
		snprintf(rtt, sizeof(rtt), "%.3fms", (double)p->rtt_us / 1000.0);
	if (p->last_heard_us)
		snprintf(heard, sizeof(heard), "%.1fs ago", (double)(now - p->last_heard_us) / 1e6);
	sb_printf(o, "%-8s %-12s %-13s %-10s %-10s %-8s %-8s %-4s %" PRIu64 "\n", c->nodes[i].name,
		  c->compartments[c->nodes[i].compartment].name,
		  p->contacted ? "contacted" : "not-contacted", rtt, heard, tri_str(p->ext_alive),
		  tri_str(hs_peer_qdev_alive(hs, i)), p->mgmt_running ? "yes" : "no", p->drops);
}

static int cmd_peers(struct console_req *req, void *ud)
{
	struct hs *hs = ud;
	struct strbuf *o = &req->out;
	uint64_t now = now_usec();
	if (req->json) {
		sb_puts(o, "{\"node\":");
		sb_json_str(o, node_name(hs, hs->self));
		sb_printf(o, ",\"contacted\":%d,\"peers\":[", hs_contacted_count(hs));
	} else {
		sb_printf(o, "%-8s %-12s %-13s %-10s %-10s %-8s %-8s %-4s %s\n", "node",
			  "compartment", "state", "rtt", "last-heard", "external", "qdev", "mgmt",
			  "drops");
	}
	bool first = true;
	for (int i = 0; i < hs->cfg->n_nodes; i++) {
		if (i == hs->self)
			continue;
		if (req->json) {
			if (!first)
				sb_putc(o, ',');
			peer_json(hs, i, now, o);
		} else {
			peer_human(hs, i, now, o);
		}
		first = false;
	}
	sb_puts(o, req->json ? "],\"drops\":{" : "dropped:");
	uint64_t total = 0;
	for (int d = 1; d < _HS_DROP_MAX; d++) {
		total += hs->drops[d];
		if (req->json)
			sb_printf(o, "%s\"%s\":%" PRIu64, d > 1 ? "," : "", hs_drop_to_str(d),
				  hs->drops[d]);
		else if (hs->drops[d])
			sb_printf(o, " %s=%" PRIu64, hs_drop_to_str(d), hs->drops[d]);
	}
	if (req->json)
		sb_printf(o, "},\"drops_total\":%" PRIu64 "}\n", total);
	else
		sb_printf(o, "%s\n", total ? "" : " none");
	return 0;
}

/* Which of our keys a peer's last authentic datagram used: "current", "other", "-". */
static const char *peer_key_use(const struct hs *hs, int i)
{
	const struct hs_peer *p = &hs->peers[i];
	if (!p->has_key_id)
		return "-";
	if (!memcmp(p->key_id, hs->keys->id[0], HS_KEY_ID_BYTES))
		return "current";
	return hs->keys->n > 1 && !memcmp(p->key_id, hs->keys->id[1], HS_KEY_ID_BYTES) ? "other"
										       : "retired";
}

static void keys_json(const struct hs *hs, struct strbuf *o)
{
	char id[2 * HS_KEY_ID_BYTES + 1];
	sodium_bin2hex(id, sizeof(id), hs->keys->id[0], HS_KEY_ID_BYTES);
	sb_printf(o, "{\"current\":\"%s\",\"other\":", id);
	if (hs->keys->n > 1) {
		sodium_bin2hex(id, sizeof(id), hs->keys->id[1], HS_KEY_ID_BYTES);
		sb_printf(o, "\"%s\"", id);
	} else {
		sb_puts(o, "null");
	}
	sb_puts(o, ",\"peers\":[");
	bool first = true;
	for (int i = 0; i < hs->cfg->n_nodes; i++) {
		if (i == hs->self)
			continue;
		sb_puts(o, first ? "{\"node\":" : ",{\"node\":");
		sb_json_str(o, node_name(hs, i));
		sodium_bin2hex(id, sizeof(id), hs->peers[i].key_id, HS_KEY_ID_BYTES);
		sb_printf(o, ",\"key\":\"%s\",\"key_id\":", peer_key_use(hs, i));
		if (hs->peers[i].has_key_id)
			sb_printf(o, "\"%s\"}", id);
		else
			sb_puts(o, "null}");
		first = false;
	}
	sb_puts(o, "]}\n");
}

static void keys_human(const struct hs *hs, struct strbuf *o)
{
	char id[2 * HS_KEY_ID_BYTES + 1];
	sodium_bin2hex(id, sizeof(id), hs->keys->id[0], HS_KEY_ID_BYTES);
	sb_printf(o, "current key %s (seals)\n", id);
	if (hs->keys->n > 1) {
		sodium_bin2hex(id, sizeof(id), hs->keys->id[1], HS_KEY_ID_BYTES);
		sb_printf(o, "other key   %s (accepted)\n", id);
	} else {
		sb_puts(o, "other key   none\n");
	}
	int old = 0;
	for (int i = 0; i < hs->cfg->n_nodes; i++) {
		if (i == hs->self)
			continue;
		const char *use = peer_key_use(hs, i);
		sodium_bin2hex(id, sizeof(id), hs->peers[i].key_id, HS_KEY_ID_BYTES);
		sb_printf(o, "%-8s %-8s %s\n", node_name(hs, i), use,
			  hs->peers[i].has_key_id ? id : "-");
		old += strcmp(use, "current") && strcmp(use, "-");
	}
	sb_printf(o, "%d peer%s still on another key\n", old, old == 1 ? "" : "s");
}

static int cmd_keys(struct console_req *req, void *ud)
{
	const struct hs *hs = ud;
	if (req->json)
		keys_json(hs, &req->out);
	else
		keys_human(hs, &req->out);
	return 0;
}

int hs_console_register(struct hs *hs, struct console *c)
{
	int r = console_register(c, "peers", "",
				 "other nodes: handshake state, round trip, last heard, drops",
				 cmd_peers, hs);
	if (r < 0)
		return r;
	return console_register(c, "keys", "",
				"cluster key ids in use, and which key each peer seals with",
				cmd_keys, hs);
}
