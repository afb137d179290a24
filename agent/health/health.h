/* The health engine (SPEC §8): a registry of components, each checked on its own
 * interval in stages (reachable → parses → integrity, stopping at the first failure);
 * a failure isolates the component, alerts, and climbs a bounded remediation ladder
 * (restart → reload → rebuild, each with its own retry bound) until it is healthy; each
 * episode ends with one summary line, recovered or needs-operator.
 *
 * The core reads no clock: health_run_due() gets the time and calls the components'
 * callbacks (which do the I/O). health_attach() is the driver that runs it from the
 * event loop. Modules register their components with health_register(). */
#pragma once

#include "loop.h"
#include "util.h"

/* Components a health engine holds unless its owner sizes it (health_new). */
#define HEALTH_DEFAULT_CAPACITY 64
#define HEALTH_NAME_MAX 64
#define HEALTH_LOG_LINES 8
#define HEALTH_DETAIL_MAX 128

/* An action that only started something (a re-login, a resync) returns HEALTH_PENDING:
 * the engine re-checks after `retry_interval_us` instead of at once. */
#define HEALTH_PENDING 1

enum health_state {
	HEALTH_STATE_UNKNOWN, /* registered, not checked yet */
	HEALTH_STATE_OK,
	HEALTH_STATE_FAILED,	     /* failed, remediation under way */
	HEALTH_STATE_NEEDS_OPERATOR, /* the ladder is exhausted */
	HEALTH_STATE_UNAVAILABLE,    /* its parent is unreachable: not probed */
	_HEALTH_STATE_MAX
};

enum health_stage {
	HEALTH_STAGE_REACHABLE,
	HEALTH_STAGE_PARSES,
	HEALTH_STAGE_INTEGRITY,
	_HEALTH_STAGE_MAX
};

enum health_action {
	HEALTH_ACTION_NONE,
	HEALTH_ACTION_ISOLATE,
	HEALTH_ACTION_RESTART,
	HEALTH_ACTION_RELOAD,
	HEALTH_ACTION_REBUILD,
	_HEALTH_ACTION_MAX
};

const char *health_state_to_str(enum health_state s);
const char *health_stage_to_str(enum health_stage s);
const char *health_action_to_str(enum health_action a);

/* Every callback may be NULL (a missing stage passes, a missing action is skipped).
 * Checks return 0 when healthy, a negative errno when not, and may write a short
 * sentence (why it failed, or progress such as "resyncing 42%") into `detail`.
 * Actions return 0 (done: re-check now), HEALTH_PENDING (started: re-check later) or a
 * negative errno (the step failed), with a sentence in `msg`. */
struct health_component_ops {
	int (*check_reachable)(void *ud, struct strbuf *detail);
	int (*check_parses)(void *ud, struct strbuf *detail);
	int (*check_integrity)(void *ud, struct strbuf *detail);
	int (*isolate)(void *ud, struct strbuf *msg);
	int (*restart)(void *ud, struct strbuf *msg);
	int (*reload)(void *ud, struct strbuf *msg);
	int (*rebuild)(void *ud, struct strbuf *msg);
	/* Core components only (HEALTH_F_CORE): true when this failure still lets the
	 * component serve (a degraded mirror), so it does not cost election eligibility.
	 * NULL: every failure counts. */
	bool (*core_tolerates)(void *ud, enum health_stage stage, int err);
	/* An action that returned HEALTH_PENDING still runs (a child process): while this
	 * says so the engine neither re-checks nor climbs; the module calls health_poke()
	 * when it is done. NULL: re-check after retry_interval_us. */
	bool (*busy)(void *ud);
	uint64_t interval_us;	    /* 0: the engine's default (timeouts.health_interval) */
	uint64_t retry_interval_us; /* after HEALTH_PENDING; 0: 1 s */
	unsigned restart_tries, reload_tries, rebuild_tries; /* 0: 3, 2, 1 */
};

struct health_log_entry {
	uint64_t mono_us;
	char text[96];
};

/* Registration flags. */
#define HEALTH_F_CORE (1U << 0) /* core: while it fails the node is not eligible (SPEC §7) */

struct health_component {
	char kind[24];
	char id[HEALTH_NAME_MAX];
	char name[HEALTH_NAME_MAX + 24]; /* "kind:id", the event's component= */
	int parent;			 /* index, -1 when none */
	unsigned flags;			 /* HEALTH_F_* */
	const struct health_component_ops *ops;
	void *ud;
	enum health_state state;
	enum health_stage failed_stage; /* valid when state is FAILED / NEEDS_OPERATOR */
	int failed_err;			/* the failing stage's negative errno */
	enum health_action last_action;
	enum health_action rung; /* the ladder step under way */
	unsigned tries;		 /* on that rung */
	bool pending;		 /* an action returned HEALTH_PENDING */
	uint64_t last_check_us;	 /* 0: never */
	uint64_t next_due_us;
	uint64_t interval_us; /* health_set_interval(); 0: the ops' (or the engine's default) */
	uint64_t checks, failures, recoveries;
	char detail[HEALTH_DETAIL_MAX]; /* last result, or progress */
	struct health_log_entry log[HEALTH_LOG_LINES];
	unsigned log_head, log_used;
};

struct health;
/* Called when the core verdict changes: ok (every core component healthy) or not, with
 * the reason ("md:infra failed"), or "" when ok. */
typedef void (*health_core_fn)(struct health *h, bool ok, const char *reason, void *ud);

struct health {
	struct health_component *comps; /* cap entries; indices are stable */
	int n, cap;
	int cycle_changes;	   /* state changes in the cycle under way */
	struct strbuf cycle_names; /* the first few of them, for its summary line */
	uint64_t default_interval_us;
	uint64_t (*clock)(void); /* the driver's clock (now_usec); tests replace it */
	struct loop *loop;
	struct timer *timer;
	bool running;
	health_core_fn core_notify;
	void *core_ud;
	char core_reason[HEALTH_NAME_MAX + 48]; /* "" while every core component is healthy */
	uint64_t *due; /* cap entries: comps[i].next_due_us, UINT64_MAX when not live; compact,
			* so that finding what is due costs little at 1 000 components */
	int *order, n_order; /* the check order (order()), rebuilt after a (un)registration */
	bool order_stale;
};

/* capacity: how many components it can hold (the owner sizes it from the configuration:
 * peers, paths, disks…); 0: HEALTH_DEFAULT_CAPACITY. */
int health_new(uint64_t default_interval_us, int capacity, struct health **ret);
struct health *health_free(struct health *h);

/* parent is "kind:id" of a registered component, or NULL. Returns the index or -errno
 * (-EEXIST for a duplicate, -ENOENT for an unknown parent, -ENOSPC when full). */
int health_register(struct health *h, const struct health_component_ops *ops, void *ud,
		    const char *kind, const char *id, const char *parent);
/* The same with HEALTH_F_* flags (HEALTH_F_CORE for a core component). */
int health_register_flags(struct health *h, const struct health_component_ops *ops, void *ud,
			  const char *kind, const char *id, const char *parent, unsigned flags);
int health_unregister(struct health *h, const char *kind, const char *id);
struct health_component *health_find(struct health *h, const char *kind, const char *id);

/* The core: runs every check due at `now_us` (peers first, parents before children) and
 * returns the number of checks run. */
int health_run_due(struct health *h, uint64_t now_us);
/* The earliest next due time, UINT64_MAX when nothing is registered. */
uint64_t health_next_due(const struct health *h);

/* Counts by state, and a one-word overall summary: ok / degraded / needs-operator. */
const char *health_overall(const struct health *h);

/* Human table or JSON document, times relative to now_us. */
void health_format(const struct health *h, uint64_t now_us, bool json, struct strbuf *out);

/* Core health (SPEC §7 "eligible = … core health checks pass"): a core component costs
 * eligibility while it is failed, needs an operator or is unavailable (its parent is
 * unreachable), unless its core_tolerates() accepts the failure; unknown (not checked yet)
 * counts as healthy. health_core_failing() judges one component; health_core_reason()
 * is "" when every core component is healthy, else the first failing one ("md:infra
 * failed", "config:cluster needs-operator"). */
bool health_core_failing(const struct health_component *c);
const char *health_core_reason(const struct health *h);
/* One subscriber to core verdict changes (NULL to stop). */
void health_set_core_notify(struct health *h, health_core_fn fn, void *ud);
/* Re-check a component at once (a module's asynchronous action finished). */
void health_poke(struct health *h, const char *kind, const char *id);
/* The same by the index health_register() returned: O(1), for a module that pokes on
 * every change of what its check looks at (the handshake's peers). */
void health_poke_index(struct health *h, int idx);
/* This component's own check interval (0: back to the ops' or the default); -EINVAL. */
int health_set_interval(struct health *h, int idx, uint64_t interval_us);

/* The driver: runs the checks from the loop's timer. */
int health_attach(struct health *h, struct loop *l);
uint64_t health_now(const struct health *h);
