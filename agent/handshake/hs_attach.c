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

struct peer_check {
	struct hs *hs;
	const struct node_env *env;
	int node;
	uint64_t since_us; /* when the watch started */
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
	const struct cfg *c = env->cfg;
	for (int i = 0; env->health && i < c->n_nodes; i++) {
		if (i == env->self || health_find(env->health, "peer", c->nodes[i].name))
			continue;
		struct peer_check *p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		*p = (struct peer_check){hs, env, i, now_usec()};
		r = health_register(env->health, &peer_ops, p, "peer", c->nodes[i].name, NULL);
		if (r < 0) {
			free(p);
			log_warn_errno(r, "health: cannot watch peer %s, ignoring",
				       c->nodes[i].name);
		}
	}
	return 0;
}

void hs_detach(struct hs *hs, const struct node_env *env)
{
	for (int i = 0; env->health && i < env->cfg->n_nodes; i++) {
		const char *name = env->cfg->nodes[i].name;
		struct health_component *c = health_find(env->health, "peer", name);
		if (!c || c->ops != &peer_ops || ((struct peer_check *)c->ud)->hs != hs)
			continue;
		free(c->ud);
		health_unregister(env->health, "peer", name);
	}
}
