/* The handshake attached to the running node: the transport of cluster queries, and the
 * peer links as health components (SPEC §8: connectivity first, by round trip against
 * t_max). */
#include "hs.h"

#include "console.h"
#include "health.h"
#include "log.h"
#include "node_env.h"
#include "query.h"

#include <inttypes.h>
#include <string.h>

struct peer_watch;

struct peer_check {
	struct hs *hs;
	const struct node_env *env;
	int node;
	uint64_t since_us; /* when the watch started */
	int idx;	   /* its health component, -1: none */
	struct peer_watch *w;
};

/* The peers' health components. Those of the own pair are checked every health_interval
 * (their round trips change with every HELLO round). Those outside it are checked when
 * the handshake says something changed (contact, external interface, a round trip crossing
 * t_max: hs_set_peer_fn), once at the end of the boot's grace, and otherwise on an interval
 * that grows with their number: the checks per second do not grow with the cluster
 * (issue 20), and nothing they report goes unnoticed. */
#define PEER_CHECKS_PER_INTERVAL 16

struct peer_watch {
	struct health *health;
	struct timer *grace;
	int n;
	struct peer_check checks[]; /* one per node, by index */
};

static int hs_transport_send(void *ud, int node, enum query_msg type, const void *buf, size_t len)
{
	return hs_send(ud, node, type == QUERY_MSG_QUERY ? HS_MSG_QUERY : HS_MSG_QUERY_REPLY, buf,
		       len);
}

static void on_hs_msg(const struct hs_msg *m, int from, void *ud)
{
	query_engine_on_message(ud, from,
				m->type == HS_MSG_QUERY ? QUERY_MSG_QUERY : QUERY_MSG_REPLY,
				m->blob.data, m->blob.len);
}

static int peer_reachable(void *ud, struct strbuf *d)
{
	struct peer_check *p = ud;
	const struct hs *hs = p->hs;
	if (hs_peer_contacted(hs, p->node))
		return 0;
	uint64_t last = hs_peer_last_heard(hs, p->node);
	const struct cfg_timeouts *t = &p->env->cfg->timeouts;
	if (!last && now_usec() - p->since_us < t->handshake_window + t->handshake_timeout) {
		/* Booting: not an alarm before the handshake window had its chance. */
		sb_puts(d, "waiting for a first answer");
		return 0;
	}
	if (last)
		sb_printf(d, "not contacted; last heard %" PRIu64 " s ago",
			  (uint64_t)((now_usec() - last) / USEC_PER_SEC));
	else
		sb_puts(d, "never contacted");
	return -EHOSTUNREACH;
}

static int peer_integrity(void *ud, struct strbuf *d)
{
	struct peer_check *p = ud;
	uint64_t rtt = hs_peer_rtt(p->hs, p->node), tmax = p->env->cfg->timeouts.t_max;
	char t[32];
	format_duration(tmax, t, sizeof(t));
	if (rtt == UINT64_MAX) {
		sb_puts(d, "round trip not measured yet");
		return 0;
	}
	if (rtt > tmax) {
		sb_printf(d, "round trip %" PRIu64 " us above t_max %s", rtt, t);
		return -ETIMEDOUT;
	}
	sb_printf(d, "round trip %" PRIu64 " us (t_max %s)", rtt, t);
	return 0;
}

/* No remedy of our own: the handshake keeps probing; a lost peer is an operator's matter
 * and recovers by itself when it answers again. */
static const struct health_component_ops peer_ops = {
    .check_reachable = peer_reachable,
    .check_integrity = peer_integrity,
};

static void on_peer_change(int node, bool contacted, void *ud)
{
	struct peer_watch *w = ud;
	if (node >= 0 && node < w->n)
		health_poke_index(w->health, w->checks[node].idx);
}

/* The boot's grace is over (peer_reachable): a node never heard of fails now. */
static void on_grace(struct timer *t, void *ud)
{
	struct peer_watch *w = ud;
	for (int i = 0; i < w->n; i++)
		if (!hs_peer_contacted(w->checks[i].hs, i))
			health_poke_index(w->health, w->checks[i].idx);
}

static int watch_peers(struct hs *hs, const struct node_env *env)
{
	const struct cfg *c = env->cfg;
	int mine = cfg_node_pair(c, env->self), far = 0, watched = 0;
	struct peer_watch *w = calloc(1, sizeof(*w) + (size_t)c->n_nodes * sizeof(w->checks[0]));
	if (!w)
		return -ENOMEM;
	*w = (struct peer_watch){.health = env->health, .n = c->n_nodes};
	for (int i = 0; i < c->n_nodes; i++)
		far += i != env->self && cfg_node_pair(c, i) != mine;
	uint64_t iv = env->health->default_interval_us *
		      (uint64_t)((far + PEER_CHECKS_PER_INTERVAL - 1) / PEER_CHECKS_PER_INTERVAL);
	for (int i = 0; i < c->n_nodes; i++) {
		struct peer_check *p = &w->checks[i];
		*p = (struct peer_check){hs, env, i, now_usec(), -1, w};
		if (i == env->self || health_find(env->health, "peer", c->nodes[i].name))
			continue;
		int r = health_register(env->health, &peer_ops, p, "peer", c->nodes[i].name, NULL);
		if (r < 0) {
			log_warn_errno(r, "health: cannot watch peer %s, ignoring",
				       c->nodes[i].name);
			continue;
		}
		p->idx = r;
		watched++;
		if (cfg_node_pair(c, i) != mine && iv > env->health->default_interval_us)
			health_set_interval(env->health, r, iv);
	}
	if (!watched) {
		free(w);
		return 0;
	}
	const struct cfg_timeouts *t = &c->timeouts;
	w->grace = timer_new(env->loop, on_grace, w);
	if (w->grace)
		timer_arm_in(w->grace, t->handshake_window + t->handshake_timeout + USEC_PER_MSEC);
	hs_set_peer_fn(hs, on_peer_change, w);
	return 0;
}

int hs_attach(struct hs *hs, const struct node_env *env, struct query_engine *q)
{
	int r;
	if (env->console && (r = hs_console_register(hs, env->console)) < 0)
		return log_error_errno(r, "handshake: cannot register the console commands");
	if (q) {
		struct query_transport tr = {
		    .send = hs_transport_send, .max_payload = HS_BLOB_MAX, .ud = hs};
		query_engine_set_transport(q, &tr);
		if ((r = hs_subscribe(hs, HS_MSG_QUERY, on_hs_msg, q)) < 0 ||
		    (r = hs_subscribe(hs, HS_MSG_QUERY_REPLY, on_hs_msg, q)) < 0)
			return log_error_errno(r, "handshake: cannot carry cluster queries");
	}
	return env->health ? watch_peers(hs, env) : 0;
}

void hs_detach(struct hs *hs, const struct node_env *env)
{
	struct peer_watch *w = NULL;
	for (int i = 0; env->health && i < env->cfg->n_nodes; i++) {
		const char *name = env->cfg->nodes[i].name;
		struct health_component *c = health_find(env->health, "peer", name);
		if (!c || c->ops != &peer_ops || ((struct peer_check *)c->ud)->hs != hs)
			continue;
		w = ((struct peer_check *)c->ud)->w;
		health_unregister(env->health, "peer", name);
	}
	hs_set_peer_fn(hs, NULL, NULL);
	if (w) {
		timer_free(w->grace);
		free(w);
	}
}
