/* The query engine: sends QUERY to the targets, at most a window of them unanswered at a
 * time (refilled as answers arrive or slots run out), answers other nodes' QUERY with the
 * local command output, collects QUERY_REPLY chunks, and answers the console request
 * when every target answered or the deadline passed. */
#include "query.h"

#include "log.h"

#include <sodium.h>
#include <string.h>

struct active {
	struct query_engine *e;
	bool used;
	struct query q;
	struct console_req *req;
	struct timer *timer;
};

struct query_engine {
	struct loop *loop;
	struct cfg *const *cfg;
	const int *self;
	struct query_transport tr;
	query_local_fn local;
	void *local_ud;
	uint32_t next_id;
	struct active act[QUERY_MAX_ACTIVE];
	struct query_stats stats;
};

int query_engine_new(struct loop *l, struct cfg *const *cfg, const int *self,
		     const struct query_transport *tr, query_local_fn local, void *local_ud,
		     struct query_engine **ret)
{
	struct query_engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = l;
	e->cfg = cfg;
	e->self = self;
	e->tr = *tr;
	e->local = local;
	e->local_ud = local_ud;
	e->next_id = randombytes_random();
	*ret = e;
	return 0;
}

static void finish(struct active *a)
{
	const struct cfg *c = *a->e->cfg;
	struct console_req *req = TAKE_PTR(a->req);
	query_format(c, &a->q, &req->out);
	timer_free(a->timer);
	a->timer = NULL;
	query_reset(&a->q);
	a->used = false;
	console_req_done(req);
}

struct query_engine *query_engine_free(struct query_engine *e)
{
	if (!e)
		return NULL;
	for (int i = 0; i < QUERY_MAX_ACTIVE; i++)
		if (e->act[i].used) {
			query_expire(&e->act[i].q, UINT64_MAX);
			finish(&e->act[i]);
		}
	free(e);
	return NULL;
}

void query_engine_set_transport(struct query_engine *e, const struct query_transport *tr)
{
	e->tr = *tr;
}

void query_engine_stats(const struct query_engine *e, struct query_stats *ret)
{
	*ret = e->stats;
}

/* The local node's own answer goes in as if it had arrived as one chunk. */
static void answer_self(struct query_engine *e, struct query *q)
{
	struct strbuf out;
	sb_init(&out);
	int r = e->local(e->local_ud, q->spec.what, q->spec.json, &out);
	struct query_reply_hdr h = {.id = q->id, .ok = r >= 0, .seq = 0, .total = 1};
	query_add_reply(q, *e->self, &h, out.buf ? out.buf : "", out.len);
	sb_free(&out);
}

static void send_one(struct query_engine *e, struct query *q, struct query_target *t)
{
	if (t->node == *e->self) {
		answer_self(e, q);
		return;
	}
	char pl[64];
	int n = query_encode_request(q->id, q->spec.what, q->spec.json, pl, sizeof(pl));
	int r = n < 0 ? n : e->tr.send(e->tr.ud, t->node, QUERY_MSG_QUERY, pl, (size_t)n);
	if (r < 0) {
		/* Not sent: recorded as an error answer naming why. */
		char msg[96];
		int m = snprintf(msg, sizeof(msg), "cannot send the query: %s\n",
				 r == -ENOTCONN ? "the handshake protocol is not running"
						: strerror(-r));
		struct query_reply_hdr h = {.id = q->id, .ok = false, .total = 1};
		query_add_reply(q, t->node, &h, msg, (size_t)m);
	} else {
		e->stats.sent++;
	}
}

/* Asks as many targets as the window allows and arms the timer for the next slot end
 * or the deadline. Returns whether the query is complete (then the caller answers). */
static bool pump(struct query_engine *e, struct active *a)
{
	uint64_t now = loop_now(e->loop);
	for (;;) {
		uint64_t next = query_tick(&a->q, now);
		if (next == UINT64_MAX)
			return true;
		int i = query_next_send(&a->q, now);
		if (i < 0) {
			timer_arm(a->timer, next);
			return false;
		}
		send_one(e, &a->q, &a->q.t[i]);
	}
}

static void on_timer(struct timer *t, void *ud)
{
	struct active *a = ud;
	if (pump(a->e, a))
		finish(a);
}

int query_cmd(struct console_req *req, void *ud)
{
	struct query_engine *e = ud;
	const struct cfg *c = *e->cfg;
	struct strbuf err;
	sb_init(&err);
	struct query_spec spec;
	int r = query_parse(c, req->argc - 1, req->argv + 1, req->json, &spec, &err);
	if (r < 0) {
		console_req_error(req, "%s", err.buf ? err.buf : "bad query");
		sb_free(&err);
		return r;
	}
	sb_free(&err);
	struct active *a = NULL;
	for (int i = 0; i < QUERY_MAX_ACTIVE && !a; i++)
		if (!e->act[i].used)
			a = &e->act[i];
	if (!a) {
		console_req_error(req, "too many queries under way (%d); try again",
				  QUERY_MAX_ACTIVE);
		return -EBUSY;
	}
	a->timer = timer_new(e->loop, on_timer, a);
	if (!a->timer)
		return -ENOMEM;
	uint64_t now = loop_now(e->loop);
	if (query_plan(c, &spec, e->next_id++, now, c->timeouts.query_timeout, &a->q) < 0) {
		timer_free(TAKE_PTR(a->timer));
		return -ENOMEM;
	}
	a->e = e;
	a->used = true;
	a->req = req;
	if (pump(e, a)) {
		/* Only the local node, or nothing could be sent: answer now. */
		query_format(c, &a->q, &req->out);
		a->req = NULL;
		timer_free(TAKE_PTR(a->timer));
		query_reset(&a->q);
		a->used = false;
		return 0;
	}
	return CONSOLE_ASYNC;
}

struct reply_ctx {
	struct query_engine *e;
	int node;
};

static int emit_reply(const char *payload, size_t n, void *ud)
{
	struct reply_ctx *ctx = ud;
	return ctx->e->tr.send(ctx->e->tr.ud, ctx->node, QUERY_MSG_REPLY, payload, n);
}

static void answer_peer(struct query_engine *e, int node, const void *buf, size_t len)
{
	uint32_t id;
	char what[QUERY_WHAT_MAX];
	bool json;
	if (query_parse_request(buf, len, &id, what, &json) < 0) {
		e->stats.dropped++;
		log_debug("query: malformed QUERY from %s, dropped", (*e->cfg)->nodes[node].name);
		return;
	}
	struct strbuf out;
	sb_init(&out);
	int r;
	if (!strcmp(what, "status") || !strcmp(what, "health") || !strcmp(what, "paths") ||
	    !strcmp(what, "raid") || !strcmp(what, "config"))
		r = e->local(e->local_ud, what, json, &out);
	else {
		sb_printf(&out, "error: '%s' cannot be queried\n", what);
		r = -EINVAL;
	}
	struct reply_ctx ctx = {e, node};
	if (query_encode_reply(id, r >= 0, out.buf ? out.buf : "", out.len, e->tr.max_payload,
			       emit_reply, &ctx) >= 0)
		e->stats.answered_for_peers++;
	sb_free(&out);
}

static void take_reply(struct query_engine *e, int node, const void *buf, size_t len)
{
	struct query_reply_hdr h;
	size_t off;
	if (query_parse_reply(buf, len, &h, &off) < 0) {
		e->stats.dropped++;
		return;
	}
	for (int i = 0; i < QUERY_MAX_ACTIVE; i++) {
		struct active *a = &e->act[i];
		if (!a->used || a->q.id != h.id)
			continue;
		if (query_add_reply(&a->q, node, &h, (const char *)buf + off, len - off) < 0) {
			e->stats.dropped++;
			return;
		}
		e->stats.replies++;
		if (pump(e, a)) /* an answer frees a place in the window */
			finish(a);
		return;
	}
	e->stats.dropped++; /* a late answer to a query that already ended */
}

void query_engine_on_message(struct query_engine *e, int node, enum query_msg type, const void *buf,
			     size_t len)
{
	if (node < 0 || node >= (*e->cfg)->n_nodes)
		return;
	switch (type) {
	case QUERY_MSG_QUERY:
		answer_peer(e, node, buf, len);
		break;
	case QUERY_MSG_REPLY:
		take_reply(e, node, buf, len);
		break;
	case _QUERY_MSG_MAX:
		break;
	}
}
