/* The console's use of the handshake module: the transport of cluster queries, and the
 * peer links as health components (SPEC §8: connectivity first, by round trip against
 * t_max). Built only when the handshake module is part of the tree. */
#include "console_cmds.h"

#if __has_include("hs.h")

#include "health.h"
#include "hs.h"
#include "log.h"
#include "query.h"

#include <inttypes.h>
#include <string.h>

struct peer_check {
	struct agent *a;
	int node;
	uint64_t since_us; /* when the watch started */
};

static int hs_transport_send(void *ud, int node, enum query_msg type, const void *buf, size_t len)
{
	struct agent *a = ud;
	if (!a->hs)
		return -ENOTCONN;
	return hs_send(a->hs, node, type == QUERY_MSG_QUERY ? HS_MSG_QUERY : HS_MSG_QUERY_REPLY,
		       buf, len);
}

static void on_hs_msg(const struct hs_msg *m, int from, void *ud)
{
	struct agent *a = ud;
	if (!a->query)
		return;
	query_engine_on_message(a->query, from,
				m->type == HS_MSG_QUERY ? QUERY_MSG_QUERY : QUERY_MSG_REPLY,
				m->blob.data, m->blob.len);
}

static int peer_reachable(void *ud, struct strbuf *d)
{
	struct peer_check *p = ud;
	const struct hs *hs = p->a->hs;
	if (!hs)
		return -ENOTCONN;
	if (hs_peer_contacted(hs, p->node))
		return 0;
	uint64_t last = hs_peer_last_heard(hs, p->node);
	const struct cfg_timeouts *t = &p->a->env.cfg->timeouts;
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
	uint64_t rtt = hs_peer_rtt(p->a->hs, p->node), tmax = p->a->env.cfg->timeouts.t_max;
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

int console_cmds_attach_hs(struct agent *a)
{
	if (!a->hs || !a->query)
		return -EINVAL;
	struct query_transport tr = {
	    .send = hs_transport_send, .max_payload = HS_BLOB_MAX, .ud = a};
	query_engine_set_transport(a->query, &tr);
	int r;
	if ((r = hs_subscribe(a->hs, HS_MSG_QUERY, on_hs_msg, a)) < 0 ||
	    (r = hs_subscribe(a->hs, HS_MSG_QUERY_REPLY, on_hs_msg, a)) < 0)
		return log_error_errno(r, "console: cannot receive queries");
	for (int i = 0; a->env.health && i < a->env.cfg->n_nodes; i++) {
		if (i == a->env.self || health_find(a->env.health, "peer", a->env.cfg->nodes[i].name))
			continue;
		struct peer_check *p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		*p = (struct peer_check){a, i, now_usec()};
		r = health_register(a->env.health, &peer_ops, p, "peer", a->env.cfg->nodes[i].name, NULL);
		if (r < 0) {
			free(p);
			log_warn_errno(r, "health: cannot watch peer %s, ignoring",
				       a->env.cfg->nodes[i].name);
		}
	}
	return 0;
}

void console_cmds_detach_hs(struct agent *a)
{
	for (int i = 0; a->env.health && i < a->env.cfg->n_nodes; i++) {
		struct health_component *c = health_find(a->env.health, "peer", a->env.cfg->nodes[i].name);
		if (!c || c->ops != &peer_ops)
			continue;
		free(c->ud);
		health_unregister(a->env.health, "peer", a->env.cfg->nodes[i].name);
	}
}

#else

int console_cmds_attach_hs(struct agent *a)
{
	return -EOPNOTSUPP;
}

void console_cmds_detach_hs(struct agent *a)
{
}

#endif
