/* The health engine's core, table-driven: fake components whose stages fail until a
 * given step of the ladder fixes them; time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "health.h"
#include "log.h"

struct fake {
	const char *trace_name;
	bool fail_reach, fail_parse, fail_integ;
	enum health_action fixed_by; /* NONE: nothing fixes it */
	unsigned fix_on_try;	     /* the n-th call of that action fixes it */
	bool fix_pending;	     /* that action answers HEALTH_PENDING */
	bool action_errors;	     /* the other actions return -EIO */
	unsigned calls[_HEALTH_ACTION_MAX];
	unsigned checks;
	const char *detail; /* what a passing check says */
};

static struct strbuf trace; /* "a:R a:I a:r …": check reachable, isolate, restart … */
static struct strbuf events;
static struct strbuf summaries; /* the cycles' summary lines */

static void on_line(const struct log_line *l, void *ud)
{
	if (l->is_event && !strncmp(l->text, "event=health ", 13)) {
		sb_puts(&events, l->text);
		sb_putc(&events, '\n');
	}
	if (!strncmp(l->text, "health: cycle: ", 15)) {
		sb_puts(&summaries, l->text);
		sb_putc(&summaries, '\n');
	}
}

static void mark(struct fake *f, const char *what)
{
	sb_printf(&trace, "%s%s:%s", trace.len ? " " : "", f->trace_name, what);
}

static int chk(struct fake *f, bool fail, const char *what, struct strbuf *d)
{
	mark(f, what);
	if (fail)
		sb_printf(d, "%s broken", what);
	else if (f->detail)
		sb_puts(d, f->detail);
	return fail ? -EIO : 0;
}
static int reach(void *ud, struct strbuf *d)
{
	struct fake *f = ud;
	f->checks++;
	return chk(f, f->fail_reach, "reach", d);
}
static int parses(void *ud, struct strbuf *d)
{
	return chk(ud, ((struct fake *)ud)->fail_parse, "parse", d);
}
static int integ(void *ud, struct strbuf *d)
{
	return chk(ud, ((struct fake *)ud)->fail_integ, "integ", d);
}

static int act(struct fake *f, enum health_action a)
{
	f->calls[a]++;
	mark(f, health_action_to_str(a));
	if (a == f->fixed_by && f->calls[a] >= f->fix_on_try) {
		f->fail_reach = f->fail_parse = f->fail_integ = false;
		return f->fix_pending ? HEALTH_PENDING : 0;
	}
	return f->action_errors ? -EIO : 0;
}
static int isolate(void *ud, struct strbuf *m)
{
	return act(ud, HEALTH_ACTION_ISOLATE);
}
static int restart(void *ud, struct strbuf *m)
{
	return act(ud, HEALTH_ACTION_RESTART);
}
static int reload(void *ud, struct strbuf *m)
{
	return act(ud, HEALTH_ACTION_RELOAD);
}
static int rebuild(void *ud, struct strbuf *m)
{
	return act(ud, HEALTH_ACTION_REBUILD);
}

static const struct health_component_ops full_ops = {
    .check_reachable = reach,
    .check_parses = parses,
    .check_integrity = integ,
    .isolate = isolate,
    .restart = restart,
    .reload = reload,
    .rebuild = rebuild,
    .interval_us = 1000000,
};
static const struct health_component_ops no_restart_ops = {
    .check_reachable = reach,
    .check_integrity = integ,
    .isolate = isolate,
    .reload = reload,
    .rebuild = rebuild,
    .reload_tries = 3,
};

struct ladder_case {
	const char *name;
	const struct health_component_ops *ops;
	struct fake f;
	const char *want_trace;
	enum health_state want_state;
	const char *want_events;
};

static const struct ladder_case ladder_cases[] = {
    {"healthy", &full_ops, {.trace_name = "c"}, "c:reach c:parse c:integ", HEALTH_STATE_OK, ""},
    {"integrity, restart fixes",
     &full_ops,
     {.trace_name = "c", .fail_integ = true, .fixed_by = HEALTH_ACTION_RESTART, .fix_on_try = 1},
     "c:reach c:parse c:integ c:isolate c:restart c:reach c:parse c:integ",
     HEALTH_STATE_OK,
     "event=health component=t:c state=failed stage=integrity action=isolate reason=\"integ "
     "broken\"\n"
     "event=health component=t:c state=recovered stage=integrity action=restart\n"},
    {"parse stage stops before integrity; reload on its 2nd try",
     &full_ops,
     {.trace_name = "c", .fail_parse = true, .fixed_by = HEALTH_ACTION_RELOAD, .fix_on_try = 2},
     "c:reach c:parse c:isolate c:restart c:reach c:parse c:restart c:reach c:parse c:restart "
     "c:reach c:parse c:reload c:reach c:parse c:reload c:reach c:parse c:integ",
     HEALTH_STATE_OK,
     "event=health component=t:c state=failed stage=parses action=isolate reason=\"parse broken\"\n"
     "event=health component=t:c state=recovered stage=parses action=reload\n"},
    {"a missing rung is skipped, failing actions retried up to the bound",
     &no_restart_ops,
     {.trace_name = "c",
      .fail_reach = true,
      .fixed_by = HEALTH_ACTION_RELOAD,
      .fix_on_try = 3,
      .action_errors = true},
     "c:reach c:isolate c:reload c:reload c:reload c:reach c:integ",
     HEALTH_STATE_OK,
     "event=health component=t:c state=failed stage=reachable action=isolate reason=\"reach "
     "broken\"\n"
     "event=health component=t:c state=recovered stage=reachable action=reload\n"},
    {"rebuild is the last rung",
     &full_ops,
     {.trace_name = "c",
      .fail_reach = true,
      .fixed_by = HEALTH_ACTION_REBUILD,
      .fix_on_try = 1,
      .action_errors = true},
     "c:reach c:isolate c:restart c:restart c:restart c:reload c:reload c:rebuild c:reach c:parse "
     "c:integ",
     HEALTH_STATE_OK,
     "event=health component=t:c state=failed stage=reachable action=isolate reason=\"reach "
     "broken\"\n"
     "event=health component=t:c state=recovered stage=reachable action=rebuild\n"},
    {"nothing fixes it: needs an operator, once",
     &full_ops,
     {.trace_name = "c", .fail_integ = true},
     "c:reach c:parse c:integ c:isolate c:restart c:reach c:parse c:integ c:restart c:reach "
     "c:parse c:integ c:restart c:reach c:parse c:integ c:reload c:reach c:parse c:integ c:reload "
     "c:reach c:parse c:integ c:rebuild c:reach c:parse c:integ",
     HEALTH_STATE_NEEDS_OPERATOR,
     "event=health component=t:c state=failed stage=integrity action=isolate reason=\"integ "
     "broken\"\n"
     "event=health component=t:c state=needs-operator stage=integrity action=rebuild "
     "reason=\"integ broken\"\n"},
};

static void reset_capture(void)
{
	sb_reset(&trace);
	sb_reset(&events);
	sb_reset(&summaries);
}

static void test_ladder(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(ladder_cases); i++) {
		const struct ladder_case *tc = &ladder_cases[i];
		struct fake f = tc->f;
		struct health *h = NULL;
		assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
		assert_non_null(h);
		assert_int_equal(health_register(h, tc->ops, &f, "t", "c", NULL), 0);
		reset_capture();
		assert_int_equal(health_run_due(h, 1000), 1);
		printf("case: %s\n  trace: %s\n", tc->name, trace.buf ? trace.buf : "");
		assert_string_equal(trace.buf ? trace.buf : "", tc->want_trace);
		assert_string_equal(events.buf ? events.buf : "", tc->want_events);
		assert_int_equal(h->comps[0].state, tc->want_state);
		/* Nothing runs before the interval; needs-operator stays quiet on later cycles. */
		reset_capture();
		assert_int_equal(health_run_due(h, 2000), 0);
		if (tc->want_state == HEALTH_STATE_NEEDS_OPERATOR) {
			assert_int_equal(health_run_due(h, 1000 + 5 * USEC_PER_SEC), 1);
			assert_null(events.buf && events.len ? events.buf : NULL);
			assert_null(strstr(trace.buf, "restart"));
			/* An operator fixes it: one recovered line. */
			f.fail_integ = false;
			assert_int_equal(health_run_due(h, 1000 + 10 * USEC_PER_SEC), 1);
			assert_string_equal(events.buf,
					    "event=health component=t:c state=recovered "
					    "stage=integrity action=none\n");
			assert_int_equal(h->comps[0].state, HEALTH_STATE_OK);
		}
		health_free(h);
	}
}

/* An action that only starts something: re-checked after retry_interval_us. */
static void test_pending(void **state)
{
	static const struct health_component_ops ops = {
	    .check_reachable = reach,
	    .isolate = isolate,
	    .restart = restart,
	    .retry_interval_us = 500000,
	    .interval_us = 10000000,
	};
	struct fake f = {.trace_name = "p",
			 .fail_reach = true,
			 .fixed_by = HEALTH_ACTION_RESTART,
			 .fix_on_try = 1,
			 .fix_pending = true};
	struct health *h = NULL;
	assert_int_equal(health_new(0, 0, &h), 0);
	assert_int_equal(health_register(h, &ops, &f, "path", "p", NULL), 0);
	reset_capture();
	health_run_due(h, 100);
	assert_string_equal(trace.buf, "p:reach p:isolate p:restart");
	assert_int_equal(h->comps[0].state, HEALTH_STATE_FAILED);
	assert_int_equal(health_next_due(h), 100 + 500000);
	assert_int_equal(health_run_due(h, 100 + 499999), 0);
	reset_capture();
	assert_int_equal(health_run_due(h, 100 + 500000), 1);
	assert_string_equal(trace.buf, "p:reach");
	assert_string_equal(
	    events.buf,
	    "event=health component=path:p state=recovered stage=reachable action=restart\n");
	assert_int_equal(health_next_due(h), 100 + 500000 + 10000000);
	health_free(h);
}

/* A fault that lasts is reported once: while the ladder is exhausted, a check whose
 * detail moves ("login", "down: refused", as a path's does on every attempt) is the same
 * failure; another error at the same stage is a new episode. */
struct flapper {
	unsigned n;
	int err;
};
static int flap_reach(void *ud, struct strbuf *d)
{
	struct flapper *f = ud;
	sb_printf(d, f->n++ % 2 ? "login" : "down: connection refused");
	return f->err;
}
static int flap_restart(void *ud, struct strbuf *msg)
{
	return HEALTH_PENDING; /* a login started, nothing proven */
}

static void test_lasting_fault_once(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = flap_reach,
							.restart = flap_restart,
							.interval_us = USEC_PER_SEC,
							.retry_interval_us = USEC_PER_SEC};
	struct flapper f = {.err = -EHOSTUNREACH};
	struct health *h = NULL;
	assert_int_equal(health_new(0, 0, &h), 0);
	assert_int_equal(health_register(h, &ops, &f, "path", "b", NULL), 0);
	reset_capture();
	for (uint64_t t = 1; t < 60 * USEC_PER_SEC; t += USEC_PER_SEC / 2)
		health_run_due(h, t);
	assert_int_equal(h->comps[0].state, HEALTH_STATE_NEEDS_OPERATOR);
	assert_string_equal(events.buf, "event=health component=path:b state=failed "
					"stage=reachable action=none reason=\"down: connection "
					"refused\"\n"
					"event=health component=path:b state=needs-operator "
					"stage=reachable action=restart reason=login\n");
	/* One summary per cycle that changed something, none for the quiet ones. */
	assert_string_equal(summaries.buf,
			    "health: cycle: 1 changed: path:b failed; overall degraded\n"
			    "health: cycle: 1 changed: path:b needs-operator; overall "
			    "needs-operator; needs an operator: path:b\n");
	/* The operator changes something: another error is another fault. */
	f.err = -EACCES;
	reset_capture();
	health_run_due(h, 61 * USEC_PER_SEC);
	assert_non_null(strstr(events.buf, "component=path:b state=failed stage=reachable"));
	health_free(h);
}

/* The table is as large as its owner sized it (a cluster of 1 024 nodes watches 1 023
 * peers); the order holds past 64 components; a full table says so. */
static int count_reach(void *ud, struct strbuf *d)
{
	(*(int *)ud)++;
	return 0;
}

static void test_capacity(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = count_reach};
	int checks = 0;
	struct health *h = NULL;
	assert_int_equal(health_new(0, 1100, &h), 0);
	char id[16];
	for (int i = 0; i < 1100; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		assert_int_equal(
		    health_register(h, &ops, &checks, i % 2 ? "peer" : "disk", id, NULL), i);
	}
	assert_int_equal(health_register(h, &ops, &checks, "disk", "one-more", NULL), -ENOSPC);
	assert_int_equal(health_run_due(h, 1), 1100);
	assert_int_equal(checks, 1100);
	struct strbuf out;
	sb_init(&out);
	health_format(h, 2, false, &out);
	/* Every peer before the first disk. */
	const char *last_peer = strstr(out.buf, "peer:n1099 "),
		   *first_disk = strstr(out.buf, "disk:n0 ");
	assert_non_null(last_peer);
	assert_non_null(first_disk);
	assert_true(last_peer < first_disk);
	sb_free(&out);
	health_free(h);
}

/* A component's own interval, a poke by index, and a registration and an unregistration
 * between runs (the cached order is rebuilt; a gone component is never due). */
static void test_interval_and_poke(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = count_reach};
	int checks = 0;
	struct health *h = NULL;
	assert_int_equal(health_new(5 * USEC_PER_SEC, 8, &h), 0);
	assert_int_equal(health_register(h, &ops, &checks, "peer", "a", NULL), 0);
	assert_int_equal(health_register(h, &ops, &checks, "peer", "b", NULL), 1);
	assert_int_equal(health_set_interval(h, 1, 60 * USEC_PER_SEC), 0);
	assert_int_equal(health_set_interval(h, 5, 1), -EINVAL);
	assert_int_equal(health_run_due(h, 1), 2);
	assert_int_equal(health_next_due(h), 1 + 5 * USEC_PER_SEC);
	assert_int_equal(health_run_due(h, 1 + 5 * USEC_PER_SEC), 1); /* a only */
	health_poke_index(h, 1);
	health_poke_index(h, 7); /* (nothing there) */
	assert_int_equal(health_next_due(h), 0);
	assert_int_equal(health_run_due(h, 2 + 5 * USEC_PER_SEC), 1); /* b, poked */
	assert_int_equal(health_register(h, &ops, &checks, "disk", "c", NULL), 2);
	assert_int_equal(health_unregister(h, "peer", "a"), 0);
	assert_int_equal(health_run_due(h, 3 + 5 * USEC_PER_SEC), 1); /* c, new */
	assert_int_equal(health_next_due(h), 3 + 10 * USEC_PER_SEC);
	assert_int_equal(health_run_due(h, 61 * USEC_PER_SEC), 1); /* c again */
	assert_int_equal(health_run_due(h, 1 + 65 * USEC_PER_SEC), 0);
	assert_int_equal(health_run_due(h, 2 + 65 * USEC_PER_SEC), 1); /* b: 60 s after */
	assert_int_equal(checks, 7);
	health_free(h);
}

/* Peers first; a child of an unreachable parent is not probed. */
static void test_order_and_parents(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = reach,
							.rebuild_tries = 1};
	static const struct health_component_ops quiet = {.check_reachable = reach};
	struct fake disk = {.trace_name = "disk"}, md = {.trace_name = "md"},
		    peer = {.trace_name = "peer"}, remote = {.trace_name = "remote"};
	struct health *h = NULL;
	assert_int_equal(health_new(0, 0, &h), 0);
	assert_int_equal(health_register(h, &ops, &disk, "disk", "vda", NULL), 0);
	assert_int_equal(health_register(h, &ops, &md, "md", "infra", "disk:vda"), 1);
	assert_int_equal(health_register(h, &quiet, &peer, "peer", "a2", NULL), 2);
	assert_int_equal(health_register(h, &quiet, &remote, "slot", "a2", "peer:a2"), 3);
	assert_int_equal(health_register(h, &quiet, &remote, "slot", "x", "peer:zz"), -ENOENT);
	assert_int_equal(health_register(h, &quiet, &remote, "slot", "a2", NULL), -EEXIST);
	reset_capture();
	assert_int_equal(health_run_due(h, 1), 4);
	assert_string_equal(trace.buf, "peer:reach disk:reach md:reach remote:reach");

	/* The peer is lost: its slot becomes unavailable without a probe, once. */
	peer.fail_reach = true;
	reset_capture();
	assert_int_equal(health_run_due(h, 1 + 5 * USEC_PER_SEC), 4);
	assert_string_equal(trace.buf, "peer:reach disk:reach md:reach");
	assert_int_equal(h->comps[2].state, HEALTH_STATE_NEEDS_OPERATOR);
	assert_int_equal(h->comps[3].state, HEALTH_STATE_UNAVAILABLE);
	assert_non_null(strstr(events.buf, "component=slot:a2 state=unavailable"));
	assert_string_equal(h->comps[3].detail, "peer:a2 is unreachable");
	assert_string_equal(health_overall(h), "needs-operator");

	reset_capture();
	health_run_due(h, 1 + 10 * USEC_PER_SEC);
	assert_null(strstr(events.buf ? events.buf : "", "slot:a2"));
	assert_null(strstr(trace.buf, "remote"));

	/* Back: the peer recovers first, so its slot is probed again in the same cycle. */
	peer.fail_reach = false;
	reset_capture();
	health_run_due(h, 1 + 15 * USEC_PER_SEC);
	assert_string_equal(trace.buf, "peer:reach disk:reach md:reach remote:reach");
	assert_int_equal(h->comps[3].state, HEALTH_STATE_OK);
	assert_string_equal(health_overall(h), "ok");

	/* Unregistering a parent orphans its children instead of leaving a dangling index. */
	assert_int_equal(health_unregister(h, "disk", "vda"), 0);
	assert_int_equal(h->comps[1].parent, -1);
	assert_null(health_find(h, "disk", "vda"));
	assert_int_equal(health_register(h, &ops, &disk, "disk", "vdb", "md:infra"), 0);
	reset_capture();
	health_run_due(h, 1 + 20 * USEC_PER_SEC);
	assert_string_equal(trace.buf, "peer:reach md:reach disk:reach remote:reach");
	health_free(h);
}

static void test_format(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = reach,
							.isolate = isolate};
	struct fake a = {.trace_name = "a", .detail = "drift 3ms"},
		    b = {.trace_name = "b", .fail_reach = true};
	struct health *h = NULL;
	assert_int_equal(health_new(0, 0, &h), 0);
	health_register(h, &ops, &a, "clock", "realtime", NULL);
	health_register(h, &ops, &b, "config", "cluster", NULL);
	health_run_due(h, 1000000);
	struct strbuf out;
	sb_init(&out);
	health_format(h, 3500000, false, &out);
	assert_string_equal(
	    out.buf,
	    "overall needs-operator: 1 ok, 0 failed, 1 needs-operator, 0 unavailable, 0 unchecked\n"
	    "COMPONENT                STATE                    CHECKED    DETAIL\n"
	    "clock:realtime           ok                       2500ms ago drift 3ms\n"
	    "config:cluster           needs-operator@reachable 2500ms ago reach broken\n"
	    "\nconfig:cluster:\n"
	    "  2500ms ago failed at reachable: reach broken\n"
	    "  2500ms ago isolate: done\n"
	    "  2500ms ago needs an operator: reachable failed: reach broken\n");
	sb_reset(&out);
	health_format(h, 3500000, true, &out);
	assert_non_null(strstr(out.buf,
			       "{\"overall\":\"needs-operator\",\"core_failure\":null,"
			       "\"components\":[{\"component\":"
			       "\"clock:realtime\",\"kind\":\"clock\",\"id\":\"realtime\","
			       "\"parent\":null,\"core\":false,\"state\":\"ok\",\"stage\":null,"));
	assert_non_null(strstr(out.buf, "\"state\":\"needs-operator\",\"stage\":\"reachable\","
					"\"last_action\":\"isolate\",\"checked_ms_ago\":2500"));
	sb_free(&out);
	health_free(h);
}

static struct strbuf core_changes;

static void on_core(struct health *h, bool ok, const char *reason, void *ud)
{
	sb_printf(&core_changes, "%s[%s] ", ok ? "ok" : "FAIL", reason);
}

/* A degraded mirror (integrity failure the component tolerates) is not a core failure. */
static bool tolerates_integrity(void *ud, enum health_stage st, int err)
{
	return st == HEALTH_STAGE_INTEGRITY && err == -EIO;
}

/* Core components: a failure of one of them is the node's core failure, until every core
 * component is healthy again; non-core components and tolerated failures do not count. */
static void test_core(void **state)
{
	static const struct health_component_ops core_ops = {.check_reachable = reach,
							     .check_integrity = integ,
							     .reload = reload,
							     .core_tolerates = tolerates_integrity,
							     .interval_us = USEC_PER_SEC};
	static const struct health_component_ops plain_ops = {.check_reachable = reach,
							      .interval_us = USEC_PER_SEC};
	struct fake md = {.trace_name = "md"}, cf = {.trace_name = "cf"},
		    other = {.trace_name = "o"};
	struct health *h = NULL;
	assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
	sb_init(&core_changes);
	health_set_core_notify(h, on_core, NULL);
	assert_int_equal(
	    health_register_flags(h, &core_ops, &md, "md", "infra", NULL, HEALTH_F_CORE), 0);
	assert_int_equal(
	    health_register_flags(h, &core_ops, &cf, "config", "cluster", NULL, HEALTH_F_CORE), 1);
	assert_int_equal(health_register(h, &plain_ops, &other, "path", "p", NULL), 2);
	uint64_t t = 1;
	health_run_due(h, t);
	assert_string_equal(health_core_reason(h), "");
	other.fail_reach = true; /* not core */
	md.fail_integ = true;	 /* degraded: tolerated */
	health_run_due(h, t += USEC_PER_SEC);
	assert_int_equal(h->comps[0].state, HEALTH_STATE_NEEDS_OPERATOR);
	assert_false(health_core_failing(&h->comps[0]));
	assert_false(health_core_failing(&h->comps[2]));
	assert_string_equal(health_core_reason(h), "");
	assert_int_equal(core_changes.len, 0);
	md.fail_reach = true; /* not running: that counts */
	health_run_due(h, t += USEC_PER_SEC);
	assert_string_equal(health_core_reason(h), "md:infra needs-operator");
	cf.fail_reach = true;
	health_run_due(h, t += USEC_PER_SEC);
	assert_string_equal(health_core_reason(h), "md:infra needs-operator");
	md.fail_reach = md.fail_integ = false;
	health_run_due(h, t += USEC_PER_SEC);
	assert_string_equal(health_core_reason(h), "config:cluster needs-operator");
	struct strbuf out;
	sb_init(&out);
	health_format(h, t, false, &out);
	assert_non_null(strstr(out.buf, "core (md:infra config:cluster): FAILING, config:cluster "
					"needs-operator: not eligible in any election\n"));
	sb_reset(&out);
	health_format(h, t, true, &out);
	assert_non_null(strstr(out.buf, "\"core_failure\":\"config:cluster needs-operator\""));
	sb_free(&out);
	cf.fail_reach = false;
	health_run_due(h, t += USEC_PER_SEC);
	assert_string_equal(health_core_reason(h), "");
	assert_string_equal(core_changes.buf, "FAIL[md:infra needs-operator] "
					      "FAIL[config:cluster needs-operator] ok[] ");
	/* A failed core component that is unregistered no longer counts. */
	cf.fail_reach = true;
	health_run_due(h, t += USEC_PER_SEC);
	assert_string_equal(health_core_reason(h), "config:cluster needs-operator");
	health_unregister(h, "config", "cluster");
	assert_string_equal(health_core_reason(h), "");
	sb_free(&core_changes);
	health_free(h);
}

static bool busy_flag;
static bool is_busy(void *ud)
{
	return busy_flag;
}

/* An action running in a child: no re-check, no next rung, until it is done. */
static void test_busy(void **state)
{
	static const struct health_component_ops ops = {.check_reachable = reach,
							.restart = restart,
							.rebuild = rebuild,
							.busy = is_busy,
							.retry_interval_us = 100000,
							.interval_us = 10000000};
	struct fake f = {.trace_name = "b",
			 .fail_reach = true,
			 .fixed_by = HEALTH_ACTION_REBUILD,
			 .fix_on_try = 1,
			 .fix_pending = true};
	struct health *h = NULL;
	assert_int_equal(health_new(0, 0, &h), 0);
	assert_int_equal(health_register(h, &ops, &f, "disk", "d", NULL), 0);
	reset_capture();
	health_run_due(h, 100);
	assert_string_equal(trace.buf, "b:reach b:restart b:reach b:restart b:reach b:restart "
				       "b:reach b:rebuild");
	busy_flag = true;
	reset_capture();
	for (uint64_t t = 100; t < 100 + 50 * 100000; t += 100000)
		health_run_due(h, t + 100000);
	assert_int_equal(trace.len, 0);
	assert_int_equal(h->comps[0].state, HEALTH_STATE_FAILED);
	busy_flag = false;
	health_poke(h, "disk", "d");
	assert_int_equal(health_next_due(h), 0);
	health_run_due(h, 100 + 51 * 100000);
	assert_string_equal(trace.buf, "b:reach");
	assert_int_equal(h->comps[0].state, HEALTH_STATE_OK);
	health_free(h);
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	sb_init(&trace);
	sb_init(&events);
	log_subscribe(on_line, NULL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ladder),
	    cmocka_unit_test(test_pending),
	    cmocka_unit_test(test_order_and_parents),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_interval_and_poke),
	    cmocka_unit_test(test_lasting_fault_once),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_core),
	    cmocka_unit_test(test_busy),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	sb_free(&trace);
	sb_free(&events);
	return r;
}
