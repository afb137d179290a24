#include "health.h"

#include "log.h"

#include <inttypes.h>
#include <string.h>

static const char *const state_str[_HEALTH_STATE_MAX] = {
    [HEALTH_STATE_UNKNOWN] = "unknown",		[HEALTH_STATE_OK] = "ok",
    [HEALTH_STATE_FAILED] = "failed",		[HEALTH_STATE_NEEDS_OPERATOR] = "needs-operator",
    [HEALTH_STATE_UNAVAILABLE] = "unavailable",
};
static const char *const stage_str[_HEALTH_STAGE_MAX] = {
    [HEALTH_STAGE_REACHABLE] = "reachable",
    [HEALTH_STAGE_PARSES] = "parses",
    [HEALTH_STAGE_INTEGRITY] = "integrity",
};
static const char *const action_str[_HEALTH_ACTION_MAX] = {
    [HEALTH_ACTION_NONE] = "none",	 [HEALTH_ACTION_ISOLATE] = "isolate",
    [HEALTH_ACTION_RESTART] = "restart", [HEALTH_ACTION_RELOAD] = "reload",
    [HEALTH_ACTION_REBUILD] = "rebuild",
};

const char *health_state_to_str(enum health_state s)
{
	return s < _HEALTH_STATE_MAX ? state_str[s] : NULL;
}

const char *health_stage_to_str(enum health_stage s)
{
	return s < _HEALTH_STAGE_MAX ? stage_str[s] : NULL;
}

const char *health_action_to_str(enum health_action a)
{
	return a < _HEALTH_ACTION_MAX ? action_str[a] : NULL;
}

int health_new(uint64_t default_interval_us, int capacity, struct health **ret)
{
	struct health *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cap = capacity > 0 ? capacity : HEALTH_DEFAULT_CAPACITY;
	h->comps = calloc((size_t)h->cap, sizeof(*h->comps));
	h->due = calloc((size_t)h->cap, sizeof(*h->due));
	if (!h->comps || !h->due) {
		free(h->comps);
		free(h->due);
		free(h);
		return -ENOMEM;
	}
	for (int i = 0; i < h->cap; i++)
		h->due[i] = UINT64_MAX;
	h->default_interval_us = default_interval_us ? default_interval_us : 5 * USEC_PER_SEC;
	h->clock = now_usec;
	*ret = h;
	return 0;
}

struct health *health_free(struct health *h)
{
	if (!h)
		return NULL;
	timer_free(h->timer);
	sb_free(&h->cycle_names);
	free(h->order);
	free(h->due);
	free(h->comps);
	free(h);
	return NULL;
}

static bool comp_live(const struct health_component *c)
{
	return c->ops != NULL;
}

static int find_name(const struct health *h, const char *name)
{
	for (int i = 0; i < h->n; i++)
		if (comp_live(&h->comps[i]) && !strcmp(h->comps[i].name, name))
			return i;
	return -1;
}

struct health_component *health_find(struct health *h, const char *kind, const char *id)
{
	for (int i = 0; i < h->n; i++) {
		struct health_component *c = &h->comps[i];
		if (comp_live(c) && !strcmp(c->kind, kind) && !strcmp(c->id, id))
			return c;
	}
	return NULL;
}

static void core_update(struct health *h);

int health_register(struct health *h, const struct health_component_ops *ops, void *ud,
		    const char *kind, const char *id, const char *parent)
{
	return health_register_flags(h, ops, ud, kind, id, parent, 0);
}

int health_register_flags(struct health *h, const struct health_component_ops *ops, void *ud,
			  const char *kind, const char *id, const char *parent, unsigned flags)
{
	if (!ops || !kind || !id || !kind[0] || !id[0] ||
	    strlen(kind) >= sizeof(h->comps[0].kind) || strlen(id) >= HEALTH_NAME_MAX)
		return -EINVAL;
	if (health_find(h, kind, id))
		return -EEXIST;
	int p = -1;
	if (parent && (p = find_name(h, parent)) < 0)
		return -ENOENT;
	int i;
	for (i = 0; i < h->n; i++)
		if (!comp_live(&h->comps[i]))
			break;
	if (i == h->cap)
		return -ENOSPC;
	if (i == h->n)
		h->n++;
	struct health_component *c = &h->comps[i];
	*c = (struct health_component){.parent = p, .flags = flags, .ops = ops, .ud = ud};
	snprintf(c->kind, sizeof(c->kind), "%s", kind);
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->name, sizeof(c->name), "%s:%s", kind, id);
	h->due[i] = 0;
	h->order_stale = true;
	if (h->timer)
		timer_arm_in(h->timer, 0);
	return i;
}

int health_unregister(struct health *h, const char *kind, const char *id)
{
	struct health_component *c = health_find(h, kind, id);
	if (!c)
		return -ENOENT;
	int idx = (int)(c - h->comps);
	for (int i = 0; i < h->n; i++)
		if (comp_live(&h->comps[i]) && h->comps[i].parent == idx)
			h->comps[i].parent = -1;
	c->ops = NULL;
	c->kind[0] = c->id[0] = c->name[0] = '\0';
	h->due[idx] = UINT64_MAX;
	h->order_stale = true;
	core_update(h); /* a failed core component that goes away no longer counts */
	return 0;
}

/* Into the component's own short log, and into the agent's log at `lvl`. */
static void comp_log(struct health_component *c, uint64_t now_us, enum log_level lvl,
		     const char *fmt, ...) _printf_(4, 5);
static void comp_log(struct health_component *c, uint64_t now_us, enum log_level lvl,
		     const char *fmt, ...)
{
	struct health_log_entry *e = &c->log[c->log_head];
	e->mono_us = now_us;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	c->log_head = (c->log_head + 1) % HEALTH_LOG_LINES;
	if (c->log_used < HEALTH_LOG_LINES)
		c->log_used++;
	log_msg(lvl, "health: %s: %s", c->name, e->text);
}

static void set_detail(struct health_component *c, const struct strbuf *sb)
{
	snprintf(c->detail, sizeof(c->detail), "%s", sb->buf ? sb->buf : "");
}

/* Runs the stages in order; on failure *ret_stage names the one that failed. */
static int run_stages(struct health_component *c, enum health_stage *ret_stage)
{
	int (*const fns[_HEALTH_STAGE_MAX])(void *, struct strbuf *) = {
	    [HEALTH_STAGE_REACHABLE] = c->ops->check_reachable,
	    [HEALTH_STAGE_PARSES] = c->ops->check_parses,
	    [HEALTH_STAGE_INTEGRITY] = c->ops->check_integrity,
	};
	struct strbuf d;
	sb_init(&d);
	int r = 0;
	for (int s = 0; s < _HEALTH_STAGE_MAX && r >= 0; s++) {
		if (!fns[s])
			continue;
		sb_reset(&d);
		r = fns[s](c->ud, &d);
		if (r < 0) {
			*ret_stage = (enum health_stage)s;
			c->failed_err = r;
		}
	}
	c->checks++;
	set_detail(c, &d);
	sb_free(&d);
	return r < 0 ? r : 0;
}

static void emit(const struct health_component *c, const char *state, const char *stage,
		 const char *action, const char *reason)
{
	struct event ev;
	event_begin(&ev, "health");
	event_add(&ev, "component", c->name);
	event_add(&ev, "state", state);
	if (stage)
		event_add(&ev, "stage", stage);
	if (action)
		event_add(&ev, "action", action);
	if (reason && reason[0])
		event_add(&ev, "reason", reason);
	event_emit(&ev);
}

static void summarize_recovered(struct health_component *c, uint64_t now_us)
{
	c->state = HEALTH_STATE_OK;
	c->pending = false;
	c->recoveries++;
	comp_log(c, now_us, LOG_LVL_NOTICE, "recovered after %s",
		 health_action_to_str(c->last_action));
	emit(c, "recovered", health_stage_to_str(c->failed_stage),
	     health_action_to_str(c->last_action), NULL);
}

static int (*rung_fn(const struct health_component_ops *o, enum health_action a))(void *,
										  struct strbuf *)
{
	switch (a) {
	case HEALTH_ACTION_RESTART:
		return o->restart;
	case HEALTH_ACTION_RELOAD:
		return o->reload;
	case HEALTH_ACTION_REBUILD:
		return o->rebuild;
	case HEALTH_ACTION_NONE:
	case HEALTH_ACTION_ISOLATE:
	case _HEALTH_ACTION_MAX:
		break;
	}
	return NULL;
}

static unsigned rung_bound(const struct health_component_ops *o, enum health_action a)
{
	switch (a) {
	case HEALTH_ACTION_RESTART:
		return o->restart_tries ? o->restart_tries : 3;
	case HEALTH_ACTION_RELOAD:
		return o->reload_tries ? o->reload_tries : 2;
	case HEALTH_ACTION_REBUILD:
		return o->rebuild_tries ? o->rebuild_tries : 1;
	case HEALTH_ACTION_NONE:
	case HEALTH_ACTION_ISOLATE:
	case _HEALTH_ACTION_MAX:
		break;
	}
	return 0;
}

/* Climbs from the current rung; returns when healthy, pending, or out of steps. */
static void climb(struct health *h, struct health_component *c, uint64_t now_us)
{
	struct strbuf msg;
	sb_init(&msg);
	while (c->rung <= HEALTH_ACTION_REBUILD) {
		int (*fn)(void *, struct strbuf *) = rung_fn(c->ops, c->rung);
		unsigned bound = rung_bound(c->ops, c->rung);
		if (!fn || c->tries >= bound) {
			c->rung++;
			c->tries = 0;
			continue;
		}
		c->tries++;
		c->last_action = c->rung;
		sb_reset(&msg);
		int r = fn(c->ud, &msg);
		comp_log(c, now_us, LOG_LVL_NOTICE, "%s %u/%u: %s%s%s", action_str[c->rung],
			 c->tries, bound,
			 r < 0		       ? "failed"
			 : r == HEALTH_PENDING ? "started"
					       : "done",
			 msg.len ? ": " : "", msg.buf ? msg.buf : "");
		if (r == HEALTH_PENDING) {
			c->pending = true;
			c->next_due_us =
			    now_us +
			    (c->ops->retry_interval_us ? c->ops->retry_interval_us : USEC_PER_SEC);
			goto out;
		}
		if (r < 0)
			continue;
		enum health_stage st = c->failed_stage;
		if (run_stages(c, &st) == 0) {
			summarize_recovered(c, now_us);
			goto out;
		}
		c->failed_stage = st;
	}
	c->state = HEALTH_STATE_NEEDS_OPERATOR;
	comp_log(c, now_us, LOG_LVL_ERR, "needs an operator: %s failed: %s",
		 health_stage_to_str(c->failed_stage), c->detail);
	emit(c, "needs-operator", health_stage_to_str(c->failed_stage),
	     health_action_to_str(c->last_action), c->detail);
out:
	sb_free(&msg);
}

static void start_episode(struct health *h, struct health_component *c, enum health_stage st,
			  uint64_t now_us)
{
	c->state = HEALTH_STATE_FAILED;
	c->failed_stage = st;
	c->failures++;
	c->last_action = HEALTH_ACTION_NONE;
	c->rung = HEALTH_ACTION_RESTART;
	c->tries = 0;
	c->pending = false;
	comp_log(c, now_us, LOG_LVL_WARN, "failed at %s: %s", health_stage_to_str(st), c->detail);
	if (c->ops->isolate) {
		struct strbuf msg;
		sb_init(&msg);
		int r = c->ops->isolate(c->ud, &msg);
		c->last_action = HEALTH_ACTION_ISOLATE;
		comp_log(c, now_us, LOG_LVL_NOTICE, "isolate: %s%s%s", r < 0 ? "failed" : "done",
			 msg.len ? ": " : "", msg.buf ? msg.buf : "");
		sb_free(&msg);
	}
	emit(c, "failed", health_stage_to_str(st), c->ops->isolate ? "isolate" : "none", c->detail);
	climb(h, c, now_us);
}

static bool unreachable(const struct health_component *c)
{
	switch (c->state) {
	case HEALTH_STATE_UNAVAILABLE:
		return true;
	case HEALTH_STATE_FAILED:
	case HEALTH_STATE_NEEDS_OPERATOR:
		return c->failed_stage == HEALTH_STAGE_REACHABLE;
	case HEALTH_STATE_UNKNOWN:
	case HEALTH_STATE_OK:
	case _HEALTH_STATE_MAX:
		break;
	}
	return false;
}

static void check_stages(struct health *h, struct health_component *c, uint64_t now_us);

/* A cycle's changes, for its one summary line. */
#define SUMMARY_NAMES 6

static void cycle_note(struct health *h, const struct health_component *c, enum health_state before)
{
	if (h->cycle_changes++ >= SUMMARY_NAMES)
		return;
	/* ok after a failure is a recovery; the rest by the state it went to */
	const char *what =
	    c->state == HEALTH_STATE_OK ? "recovered" : health_state_to_str(c->state);
	sb_printf(&h->cycle_names, "%s%s %s", h->cycle_names.len ? ", " : "", c->name, what);
}

/* SPEC §8: every cycle that changed anything ends with one line: what changed, the
 * overall state, and what needs an operator. */
static void cycle_summary(struct health *h)
{
	if (!h->cycle_changes)
		return;
	struct strbuf ops;
	sb_init(&ops);
	for (int i = 0; i < h->n; i++)
		if (comp_live(&h->comps[i]) && h->comps[i].state == HEALTH_STATE_NEEDS_OPERATOR)
			sb_printf(&ops, "%s%s", ops.len ? ", " : "", h->comps[i].name);
	char more[32] = "";
	if (h->cycle_changes > SUMMARY_NAMES)
		snprintf(more, sizeof(more), " (+%d more)", h->cycle_changes - SUMMARY_NAMES);
	log_notice("health: cycle: %d changed: %s%s; overall %s%s%s", h->cycle_changes,
		   h->cycle_names.buf, more, health_overall(h),
		   ops.len ? "; needs an operator: " : "", ops.len ? ops.buf : "");
	sb_free(&ops);
	sb_reset(&h->cycle_names);
	h->cycle_changes = 0;
}

/* Every state change goes through here, so the core verdict follows each one. */
static void check_one(struct health *h, struct health_component *c, uint64_t now_us)
{
	enum health_state before = c->state;
	check_stages(h, c, now_us);
	if (c->state != before && !(before == HEALTH_STATE_UNKNOWN && c->state == HEALTH_STATE_OK))
		cycle_note(h, c, before);
	if (c->state != before || (c->flags & HEALTH_F_CORE))
		core_update(h);
}

static void check_stages(struct health *h, struct health_component *c, uint64_t now_us)
{
	c->last_check_us = now_us;
	c->next_due_us = now_us + (c->interval_us	 ? c->interval_us
				   : c->ops->interval_us ? c->ops->interval_us
							 : h->default_interval_us);
	if (c->parent >= 0 && unreachable(&h->comps[c->parent])) {
		if (c->state != HEALTH_STATE_UNAVAILABLE) {
			char parent[sizeof(c->name)];
			memcpy(parent, h->comps[c->parent].name, sizeof(parent));
			c->state = HEALTH_STATE_UNAVAILABLE;
			snprintf(c->detail, sizeof(c->detail), "%s is unreachable", parent);
			comp_log(c, now_us, LOG_LVL_NOTICE, "unavailable: %s", c->detail);
			emit(c, "unavailable", NULL, NULL, c->detail);
		}
		return;
	}
	if (c->state == HEALTH_STATE_FAILED && c->pending && c->ops->busy && c->ops->busy(c->ud)) {
		/* The step under way has not finished: no verdict before it has. */
		c->next_due_us =
		    now_us + (c->ops->retry_interval_us ? c->ops->retry_interval_us : USEC_PER_SEC);
		return;
	}
	enum health_stage st = HEALTH_STAGE_REACHABLE;
	int err_before = c->failed_err;
	int r = run_stages(c, &st);
	switch (c->state) {
	case HEALTH_STATE_UNKNOWN:
	case HEALTH_STATE_OK:
	case HEALTH_STATE_UNAVAILABLE:
		if (r == 0) {
			if (c->state != HEALTH_STATE_OK)
				comp_log(c, now_us, LOG_LVL_DEBUG, "ok%s%s",
					 c->detail[0] ? ": " : "", c->detail);
			c->state = HEALTH_STATE_OK;
		} else {
			start_episode(h, c, st, now_us);
		}
		break;
	case HEALTH_STATE_FAILED:
		c->pending = false;
		if (r == 0) {
			summarize_recovered(c, now_us);
		} else {
			c->failed_stage = st;
			climb(h, c, now_us);
		}
		break;
	case HEALTH_STATE_NEEDS_OPERATOR:
		/* The ladder is exhausted: keep watching, quietly, until someone fixes it; the
		 * detail shows its progress ("login", "down: …"). A different failure (another
		 * stage, another error: the operator changed something) is a new episode. */
		if (r == 0) {
			c->last_action = HEALTH_ACTION_NONE;
			summarize_recovered(c, now_us);
		} else if (st != c->failed_stage || c->failed_err != err_before) {
			start_episode(h, c, st, now_us);
		}
		break;
	case _HEALTH_STATE_MAX:
		break;
	}
}

static int depth(const struct health *h, int i)
{
	int d = 0;
	for (int p = h->comps[i].parent; p >= 0 && d < h->cap; p = h->comps[p].parent)
		d++;
	return d;
}

struct order_key {
	uint64_t key;
	int idx;
};

static int cmp_order(const void *a, const void *b)
{
	uint64_t x = ((const struct order_key *)a)->key, y = ((const struct order_key *)b)->key;
	return x < y ? -1 : x > y;
}

/* Peers first, then parents before children, then registration order: the indices of the
 * live components into a new array (*ret, freed by the caller); returns how many, or
 * -ENOMEM. */
static int order(const struct health *h, int **ret)
{
	struct order_key *k = calloc((size_t)h->n + 1, sizeof(*k));
	int *out = calloc((size_t)h->n + 1, sizeof(*out));
	if (!k || !out) {
		free(k);
		free(out);
		return -ENOMEM;
	}
	int n = 0;
	for (int i = 0; i < h->n; i++) {
		if (!comp_live(&h->comps[i]))
			continue;
		uint64_t peer = strcmp(h->comps[i].kind, "peer") ? 1 : 0;
		k[n++] =
		    (struct order_key){peer << 62 | (uint64_t)depth(h, i) << 32 | (uint64_t)i, i};
	}
	qsort(k, (size_t)n, sizeof(*k), cmp_order);
	for (int i = 0; i < n; i++)
		out[i] = k[i].idx;
	free(k);
	*ret = out;
	return n;
}

/* The order of the checks is sorted again only when a component came or went (a check
 * may register or unregister one: the run goes on with the order it started with). */
int health_run_due(struct health *h, uint64_t now_us)
{
	int ran = 0;
	if (h->order_stale || !h->order) {
		int *idx = NULL, n = order(h, &idx);
		if (n < 0)
			return n;
		free(h->order);
		h->order = idx;
		h->n_order = n;
		h->order_stale = false;
	}
	const int *idx = h->order, n = h->n_order;
	h->running = true;
	for (int i = 0; i < n; i++) {
		struct health_component *c = &h->comps[idx[i]];
		if (h->due[idx[i]] <= now_us && comp_live(c)) {
			check_one(h, c, now_us);
			h->due[idx[i]] = comp_live(c) ? c->next_due_us : UINT64_MAX;
			ran++;
		}
	}
	h->running = false;
	cycle_summary(h);
	return ran;
}

uint64_t health_next_due(const struct health *h)
{
	uint64_t t = UINT64_MAX;
	for (int i = 0; i < h->n; i++)
		t = h->due[i] < t ? h->due[i] : t;
	return t;
}

const char *health_overall(const struct health *h)
{
	const char *o = "ok";
	for (int i = 0; i < h->n; i++) {
		if (!comp_live(&h->comps[i]))
			continue;
		switch (h->comps[i].state) {
		case HEALTH_STATE_NEEDS_OPERATOR:
			return "needs-operator";
		case HEALTH_STATE_FAILED:
		case HEALTH_STATE_UNAVAILABLE:
			o = "degraded";
			break;
		case HEALTH_STATE_UNKNOWN:
		case HEALTH_STATE_OK:
		case _HEALTH_STATE_MAX:
			break;
		}
	}
	return o;
}

static void format_ago(uint64_t then, uint64_t now, char *out, size_t n)
{
	if (!then)
		snprintf(out, n, "never");
	else if (now < then)
		snprintf(out, n, "now");
	else if (now - then < 10 * USEC_PER_SEC)
		snprintf(out, n, "%" PRIu64 "ms ago", (uint64_t)((now - then) / USEC_PER_MSEC));
	else
		snprintf(out, n, "%" PRIu64 "s ago", (uint64_t)((now - then) / USEC_PER_SEC));
}

static void format_json_comp(const struct health *h, const struct health_component *c,
			     uint64_t now_us, struct strbuf *o)
{
	sb_puts(o, "{\"component\":");
	sb_json_str(o, c->name);
	sb_puts(o, ",\"kind\":");
	sb_json_str(o, c->kind);
	sb_puts(o, ",\"id\":");
	sb_json_str(o, c->id);
	sb_puts(o, ",\"parent\":");
	if (c->parent >= 0)
		sb_json_str(o, h->comps[c->parent].name);
	else
		sb_puts(o, "null");
	sb_printf(o, ",\"core\":%s,\"state\":\"%s\",\"stage\":",
		  c->flags & HEALTH_F_CORE ? "true" : "false", health_state_to_str(c->state));
	if (c->state == HEALTH_STATE_FAILED || c->state == HEALTH_STATE_NEEDS_OPERATOR)
		sb_printf(o, "\"%s\"", health_stage_to_str(c->failed_stage));
	else
		sb_puts(o, "null");
	sb_printf(
	    o, ",\"last_action\":\"%s\",\"checked_ms_ago\":", health_action_to_str(c->last_action));
	if (c->last_check_us && now_us >= c->last_check_us)
		sb_printf(o, "%" PRIu64, (uint64_t)((now_us - c->last_check_us) / USEC_PER_MSEC));
	else
		sb_puts(o, "null");
	sb_printf(o,
		  ",\"checks\":%" PRIu64 ",\"failures\":%" PRIu64 ",\"recoveries\":%" PRIu64
		  ",\"detail\":",
		  c->checks, c->failures, c->recoveries);
	sb_json_str(o, c->detail);
	sb_puts(o, ",\"log\":[");
	for (unsigned k = 0; k < c->log_used; k++) {
		const struct health_log_entry *e =
		    &c->log[(c->log_head + HEALTH_LOG_LINES - c->log_used + k) % HEALTH_LOG_LINES];
		sb_printf(o, "%s{\"ms_ago\":%" PRIu64 ",\"text\":", k ? "," : "",
			  now_us >= e->mono_us ? (uint64_t)((now_us - e->mono_us) / USEC_PER_MSEC)
					       : (uint64_t)0);
		sb_json_str(o, e->text);
		sb_putc(o, '}');
	}
	sb_puts(o, "]}");
}

static void format_human_comp(const struct health_component *c, uint64_t now_us, struct strbuf *o)
{
	char ago[32], st[48];
	format_ago(c->last_check_us, now_us, ago, sizeof(ago));
	if (c->state == HEALTH_STATE_FAILED || c->state == HEALTH_STATE_NEEDS_OPERATOR)
		snprintf(st, sizeof(st), "%s@%s", health_state_to_str(c->state),
			 health_stage_to_str(c->failed_stage));
	else
		snprintf(st, sizeof(st), "%s", health_state_to_str(c->state));
	sb_printf(o, "%-24s %-24s %-10s %s\n", c->name, st, ago, c->detail);
}

/* "core ok (config:cluster md:infra)" or "core FAILING: md:infra failed: not eligible" */
static void format_core_line(const struct health *h, const int *idx, int n, struct strbuf *out)
{
	bool any = false;
	for (int i = 0; i < n; i++) {
		const struct health_component *c = &h->comps[idx[i]];
		if (!(c->flags & HEALTH_F_CORE))
			continue;
		sb_printf(out, "%s%s", any ? " " : "core (", c->name);
		any = true;
	}
	if (!any)
		return;
	if (h->core_reason[0])
		sb_printf(out, "): FAILING, %s: not eligible in any election\n", h->core_reason);
	else
		sb_puts(out, "): ok\n");
}

static void format_ordered(const struct health *h, const int *idx, int n, uint64_t now_us,
			   bool json, struct strbuf *out)
{
	if (json) {
		sb_printf(out, "{\"overall\":\"%s\",\"core_failure\":", health_overall(h));
		if (h->core_reason[0])
			sb_json_str(out, h->core_reason);
		else
			sb_puts(out, "null");
		sb_puts(out, ",\"components\":[");
		for (int i = 0; i < n; i++) {
			if (i)
				sb_putc(out, ',');
			format_json_comp(h, &h->comps[idx[i]], now_us, out);
		}
		sb_puts(out, "]}\n");
		return;
	}
	int cnt[_HEALTH_STATE_MAX] = {0};
	for (int i = 0; i < n; i++)
		cnt[h->comps[idx[i]].state]++;
	sb_printf(out,
		  "overall %s: %d ok, %d failed, %d needs-operator, %d unavailable, %d unchecked\n",
		  health_overall(h), cnt[HEALTH_STATE_OK], cnt[HEALTH_STATE_FAILED],
		  cnt[HEALTH_STATE_NEEDS_OPERATOR], cnt[HEALTH_STATE_UNAVAILABLE],
		  cnt[HEALTH_STATE_UNKNOWN]);
	if (!n)
		return;
	format_core_line(h, idx, n, out);
	sb_printf(out, "%-24s %-24s %-10s %s\n", "COMPONENT", "STATE", "CHECKED", "DETAIL");
	for (int i = 0; i < n; i++)
		format_human_comp(&h->comps[idx[i]], now_us, out);
	/* The recent history of what is not healthy. */
	for (int i = 0; i < n; i++) {
		const struct health_component *c = &h->comps[idx[i]];
		if (c->state == HEALTH_STATE_OK || c->state == HEALTH_STATE_UNKNOWN || !c->log_used)
			continue;
		sb_printf(out, "\n%s:\n", c->name);
		for (unsigned k = 0; k < c->log_used; k++) {
			const struct health_log_entry *e =
			    &c->log[(c->log_head + HEALTH_LOG_LINES - c->log_used + k) %
				    HEALTH_LOG_LINES];
			char ago[32];
			format_ago(e->mono_us, now_us, ago, sizeof(ago));
			sb_printf(out, "  %-10s %s\n", ago, e->text);
		}
	}
}

void health_format(const struct health *h, uint64_t now_us, bool json, struct strbuf *out)
{
	int *idx = NULL;
	int n = order(h, &idx);
	if (n < 0) {
		sb_puts(out, json ? "{\"error\":\"out of memory\"}\n" : "error: out of memory\n");
		return;
	}
	format_ordered(h, idx, n, now_us, json, out);
	free(idx);
}

/* ---- core health ---- */

bool health_core_failing(const struct health_component *c)
{
	if (!comp_live(c) || !(c->flags & HEALTH_F_CORE))
		return false;
	switch (c->state) {
	case HEALTH_STATE_UNAVAILABLE:
		return true;
	case HEALTH_STATE_FAILED:
	case HEALTH_STATE_NEEDS_OPERATOR:
		return !(c->ops->core_tolerates &&
			 c->ops->core_tolerates(c->ud, c->failed_stage, c->failed_err));
	case HEALTH_STATE_UNKNOWN:
	case HEALTH_STATE_OK:
	case _HEALTH_STATE_MAX:
		break;
	}
	return false;
}

const char *health_core_reason(const struct health *h)
{
	return h->core_reason;
}

static void core_update(struct health *h)
{
	char reason[sizeof(h->core_reason)] = "";
	for (int i = 0; i < h->n; i++) {
		const struct health_component *c = &h->comps[i];
		if (health_core_failing(c)) {
			snprintf(reason, sizeof(reason), "%s %s", c->name,
				 health_state_to_str(c->state));
			break;
		}
	}
	if (!strcmp(reason, h->core_reason))
		return;
	bool was_ok = !h->core_reason[0];
	memcpy(h->core_reason, reason, sizeof(reason));
	if (reason[0] && was_ok)
		log_warn("health: core component %s: this node is not eligible in its elections",
			 reason);
	else if (!reason[0])
		log_notice("health: every core component is healthy again: eligible");
	if (h->core_notify)
		h->core_notify(h, !reason[0], reason, h->core_ud);
}

void health_set_core_notify(struct health *h, health_core_fn fn, void *ud)
{
	h->core_notify = fn;
	h->core_ud = ud;
}

void health_poke(struct health *h, const char *kind, const char *id)
{
	struct health_component *c = health_find(h, kind, id);
	if (!c)
		return;
	c->next_due_us = 0;
	h->due[c - h->comps] = 0;
	if (h->timer)
		timer_arm_in(h->timer, 0);
}

void health_poke_index(struct health *h, int idx)
{
	if (idx < 0 || idx >= h->n || !comp_live(&h->comps[idx]))
		return;
	h->comps[idx].next_due_us = h->due[idx] = 0;
	if (h->timer)
		timer_arm_in(h->timer, 0);
}

int health_set_interval(struct health *h, int idx, uint64_t interval_us)
{
	if (idx < 0 || idx >= h->n || !comp_live(&h->comps[idx]))
		return -EINVAL;
	struct health_component *c = &h->comps[idx];
	c->interval_us = interval_us;
	if (c->last_check_us && interval_us && c->last_check_us + interval_us < c->next_due_us)
		c->next_due_us = h->due[idx] = c->last_check_us + interval_us;
	return 0;
}

uint64_t health_now(const struct health *h)
{
	return h->clock();
}

static void on_timer(struct timer *t, void *ud)
{
	struct health *h = ud;
	health_run_due(h, health_now(h));
	uint64_t next = health_next_due(h);
	if (next != UINT64_MAX)
		timer_arm(t, next);
}

int health_attach(struct health *h, struct loop *l)
{
	h->loop = l;
	h->timer = timer_new(l, on_timer, h);
	if (!h->timer)
		return -ENOMEM;
	timer_arm_in(h->timer, 0);
	return 0;
}
