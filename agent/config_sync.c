/* The wiring of the configuration transfer (cfgsync.h): a fetched, hash-verified file is
 * validated exactly as check-config does, refused when it failed on this node before,
 * written over the running file (temporary file, fsync, rename) and applied like a
 * reload; a change of topology waits for a restart and says so. */
#include "config_cmd.h"

#include "agent.h"
#include "cfgsync.h"
#include "config_store.h"
#include "decision.h"
#include "elect_drv.h"
#include "health.h"
#include "hs.h"
#include "log.h"
#include "rules.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

static void event_cfg(const char *action, uint64_t version, const char *from, const char *reason)
{
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", action);
	event_add_u64(&ev, "version", version);
	event_add(&ev, "from", from);
	if (reason)
		event_add(&ev, "reason", reason);
	event_emit(&ev);
}

/* A version written over the running file that waits for a restart: said, and shown by
 * `config` (and so `config status`) until then. */
static void pending_restart(struct agent *a, uint64_t version, const uint8_t hash[32],
			    const char *from, const char *why)
{
	a->pending.version = version;
	memcpy(a->pending.hash, hash, 32);
	snprintf(a->pending.reason, sizeof(a->pending.reason), "%s", why ? why : "");
	event_cfg("pending-restart", version, from, why);
	/* announced and served: every node gets it and says so; not fetched back here */
	cfgsync_refuse(a->cfgsync, version, hash);
	hs_set_offer(a->hs, version, hash);
	cfgsync_set_offer(a->cfgsync, version, hash);
}

/* Something else was written over the file (a new version, a rollback). */
static void pending_clear(struct agent *a)
{
	a->pending.version = 0;
	hs_set_offer(a->hs, 0, NULL);
	cfgsync_set_offer(a->cfgsync, 0, NULL);
}

/* Exactly check-config's validation (no command-line overrides), then this node's record. */
static const char *validate(struct agent *a, const char *text, size_t len, struct strbuf *err)
{
	static char why[160];
	struct cfg *n = NULL;
	if (cfg_parse(a->env.cfg->path, text, len, NULL, 0, &n, err) < 0)
		return "invalid";
	bool bad = config_lkg_refuses(a->lkg, n, why, sizeof(why));
	cfg_free(n);
	return bad ? why : NULL;
}

/* ---- probation and automatic rollback (SPEC §2a) ----
 *
 * Only what the version can have caused is blamed on it (docs/config.md, "What is blamed
 * on a version"):
 * - hooks that fail with it: the boot decision's first hooks, hooks run again because it
 *   changed them, and the hooks of a profile the decision moves to (or retries) later
 *   when it changed that profile's hooks (or what it replaced is not known). A profile
 *   the decision moves to because a peer came or went, with the hooks it had before, is
 *   not its doing;
 * - a core health check failing after it passed with the version: the config check (its
 *   input is the version's own file) unless a newer version written over the file waits
 *   for a restart; any other core check (disks, storage)
 *   only when the version changed [storage], [quorum] or [layout] against what it
 *   replaced.
 * Eligibility itself is not the criterion: it also follows the peers, the watchdog and
 * the profile (wait-operator is eligible for nothing), none of which the version moves. */

struct config_probation {
	struct timer *t;
	uint64_t until_us;
	bool core_passed; /* every core check passed at some time since it was applied */
	bool active;
	struct cfg *before; /* what it replaced (the last-known-good copy when booted on
			     * trial), NULL when not known */
	char kept[HEALTH_NAME_MAX + 48]; /* the last failure not blamed on it (said once) */
};

static const char *core_cause(struct agent *a)
{
	return a->env.health ? health_core_reason(a->env.health) : "";
}

static const struct cfg_profile *profile_of(const struct cfg *c, const char *name)
{
	for (int i = 0; i < c->n_profiles; i++)
		if (!strcmp(c->profiles[i].name, name))
			return &c->profiles[i];
	return NULL;
}

/* Whether profile p's `run =` hooks differ between o and n. */
static bool profile_hooks_differ(const struct cfg *o, const struct cfg *n, int p)
{
	if (!o || p < 0)
		return false;
	const char *name = rules_profile_to_str((enum rules_profile)p);
	const struct cfg_profile *x = profile_of(o, name), *y = profile_of(n, name);
	if (!x || !y)
		return x != y;
	if (x->n_run != y->n_run)
		return true;
	for (int i = 0; i < x->n_run; i++)
		if (strcmp(x->run[i], y->run[i]))
			return true;
	return false;
}

/* Whether the current profile's hooks differ between o and n. */
static bool hooks_differ(struct agent *a, const struct cfg *o, const struct cfg *n)
{
	return profile_hooks_differ(o, n, a->decision ? decision_profile(a->decision) : -1);
}

/* The inputs of the disk and storage core checks. */
static bool storage_differs(const struct cfg *o, const struct cfg *n)
{
	return o->n_storage != n->n_storage || o->has_quorum != n->has_quorum ||
	       memcmp(o->storage, n->storage, sizeof(o->storage[0]) * (size_t)n->n_storage) ||
	       (n->has_quorum && memcmp(&o->quorum, &n->quorum, sizeof(n->quorum))) ||
	       memcmp(&o->layout, &n->layout, sizeof(n->layout));
}

/* Whether the core check failing (health_core_reason: "kind:id state") can be the doing
 * of the version on probation. */
static bool core_blamed(struct agent *a, const char *cause)
{
	const struct cfg *o = a->probation->before;
	if (!strncmp(cause, "config:", 7)) /* its file differs by design from what runs while
					    * a newer version waits for a restart */
		return !a->pending.version;
	if (!o)
		return true;
	return storage_differs(o, a->env.cfg);
}

/* The profile's hooks run again because a version changed them: judged as the
 * version's doing (agent_config_judge). */
static void rerun_hooks(struct agent *a)
{
	if (decision_rerun(a->decision) == 0)
		a->config_rerun = true;
}

/* A deep copy of the running configuration before it changes (its tables are replaced
 * in place: a shallow copy would see the new values). NULL when out of memory: then the
 * hooks are not run again. */
static struct cfg *snapshot(const struct cfg *c)
{
	struct cfg *o = NULL;
	return cfg_dup(c, &o) < 0 ? NULL : o;
}

static void cfg_freep(struct cfg **c)
{
	cfg_free(*c);
}

/* The last-known-good copy, parsed as it would run here; NULL when there is none. */
static struct cfg *load_good(struct agent *a)
{
	const struct journal_state *j = config_lkg_state(a->lkg);
	int n = 0;
	const struct journal_dev *devs = config_lkg_devs(a->lkg, &n);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	uint64_t v = 0;
	struct cfg *c = NULL;
	if (!j || !j->has_good || n <= 0 ||
	    config_store_load(devs, n, j->good.hash, &text, &len, &v) < 0 ||
	    cfg_parse(a->env.cfg->path, text, len, a->kcmd.ovr, a->kcmd.n_ovr, &c, NULL) < 0)
		return NULL;
	return c;
}

static void probation_stop(struct agent *a)
{
	if (a->probation) {
		a->probation->active = false;
		timer_disarm(a->probation->t);
		a->probation->before = cfg_free(a->probation->before);
	}
}

/* A failure not blamed on the version on probation: said once per cause. */
static void not_blamed(struct agent *a, const char *cause)
{
	struct config_probation *p = a->probation;
	if (!strcmp(p->kept, cause))
		return;
	snprintf(p->kept, sizeof(p->kept), "%s", cause);
	log_notice("version %" PRIu64 " on probation: %s, not caused by this version: kept",
		   a->env.cfg->version, cause);
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", "not-blamed");
	event_add_u64(&ev, "version", a->env.cfg->version);
	event_add(&ev, "cause", cause);
	event_emit(&ev);
}

/* The running version failed here: recorded as failed (never run nor fetched again here)
 * and replaced by the last-known-good. The last-known-good itself is never failed: it is
 * the one known to work here, and something else broke; nor is any version while there
 * is no last-known-good (nothing would be left to boot). */
static void config_failed(struct agent *a, const char *reason)
{
	struct cfg *c = a->env.cfg;
	const struct journal_state *j = config_lkg_state(a->lkg);
	probation_stop(a);
	if (j && j->has_good && !memcmp(j->good.hash, c->hash, 32)) {
		log_warn("the last-known-good version %" PRIu64 " is running (%s): kept",
			 c->version, reason);
		return;
	}
	if (!j || !j->has_good) { /* failing it would leave this node nothing to boot */
		log_warn("version %" PRIu64 " failed here (%s), but this node has no "
			 "last-known-good configuration to roll back to: kept",
			 c->version, reason);
		return;
	}
	if (config_lkg_record(a->lkg, c, false) < 0)
		return;
	/* the latest-version check skips it from now on (skip_failed), saying so once */
	_cleanup_(cfg_freep) struct cfg *old = snapshot(c);
	int r = config_lkg_rollback(a->lkg, c, a->kcmd.ovr, a->kcmd.n_ovr, reason, true);
	if (r == 0)
		pending_clear(a); /* the copy was written over the file */
	if (r == -EBUSY)
		log_warn("version %" PRIu64 " keeps running until the next boot, which runs the "
			 "last-known-good",
			 c->version);
	else if (r == 0 && hooks_differ(a, old, c))
		rerun_hooks(a);
}

static void on_probation(struct timer *t, void *ud)
{
	struct agent *a = ud;
	struct config_probation *p = a->probation;
	if (!p->active)
		return;
	const char *cause = core_cause(a);
	if (p->core_passed && cause[0]) {
		if (core_blamed(a, cause)) {
			log_warn("version %" PRIu64 " on probation: a core check it can have "
				 "caused fails (%s)",
				 a->env.cfg->version, cause);
			config_failed(a, "ineligible");
			return;
		}
		not_blamed(a, cause);
	}
	p->core_passed = p->core_passed || !cause[0];
	if (loop_now(a->env.loop) < p->until_us) {
		timer_arm_in(t, a->env.cfg->timeouts.heartbeat_interval);
		return;
	}
	probation_stop(a);
	(void)config_lkg_record(a->lkg, a->env.cfg, true); /* event=config action=last-known-good */
}

/* The running version is on trial (config_lkg_trial): it becomes the last-known-good after
 * config_probation unless it fails before (above). before: what it replaced (taken), NULL
 * to read the last-known-good copy. */
static void probation_start(struct agent *a, struct cfg *before)
{
	const struct cfg *c = a->env.cfg;
	if (!config_lkg_on_trial(a->lkg, c)) {
		cfg_free(before);
		return; /* nothing kept: nothing to prove, nothing to roll back to */
	}
	if (!a->probation && (a->probation = calloc(1, sizeof(*a->probation))) &&
	    !(a->probation->t = timer_new(a->env.loop, on_probation, a))) {
		free(a->probation);
		a->probation = NULL;
	}
	if (!a->probation) {
		log_warn("out of memory: version %" PRIu64 " is not watched on probation",
			 c->version);
		cfg_free(before);
		return;
	}
	struct config_probation *p = a->probation;
	cfg_free(p->before);
	*p = (struct config_probation){.t = p->t,
				       .until_us =
					   loop_now(a->env.loop) + c->timeouts.config_probation,
				       .core_passed = !core_cause(a)[0],
				       .active = true,
				       .before = before ? before : load_good(a)};
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", "probation");
	event_add_u64(&ev, "version", c->version);
	event_add_u64(&ev, "ms", c->timeouts.config_probation / 1000);
	event_emit(&ev);
	timer_arm_in(p->t, c->timeouts.heartbeat_interval);
}

void agent_config_judge(struct agent *a, bool hooks_ok)
{
	int prof = a->decision ? decision_profile(a->decision) : -1;
	/* The version's doing: the first hooks of this run, or hooks run again because it
	 * changed them. Else the decision moved to a profile or retried a failed one (a peer
	 * came or went, `continue`): its hooks are the version's doing only when it changed
	 * them against what it replaced. */
	bool by_version = a->judged_profile < 0 || a->config_rerun;
	a->judged_profile = prof;
	a->config_rerun = false;
	bool on_probation = a->probation && a->probation->active;
	if (!hooks_ok && !by_version && on_probation && a->probation->before &&
	    !profile_hooks_differ(a->probation->before, a->env.cfg, prof)) {
		char cause[96];
		snprintf(cause, sizeof(cause), "the hooks of profile %s failed",
			 rules_profile_to_str((enum rules_profile)prof));
		not_blamed(a, cause);
		return;
	}
	bool trial = config_lkg_on_trial(a->lkg, a->env.cfg);
	/* wait-operator runs no service: a version it runs is proved by the hooks of the
	 * profile the operator releases it to, unless it is on trial (fetched, pushed or
	 * booted so): then its probation runs here too, judged by wait-operator's hooks and
	 * the core checks, and ends in last-known-good or a rollback. */
	if (prof == RULES_PROFILE_WAIT_OPERATOR && !trial)
		return;
	if (!hooks_ok) {
		config_failed(a, "hook-failed");
		return;
	}
	if (trial) {
		if (!on_probation)
			probation_start(a, NULL);
		return;
	}
	(void)config_lkg_record(a->lkg, a->env.cfg, true);
}

static bool skip_failed(uint64_t version, const uint8_t hash[32], void *ud)
{
	struct agent *a = ud;
	const struct journal_state *j = config_lkg_state(a->lkg);
	return j && config_lkg_failed(j, version, hash);
}

/* A fetched version that does not validate failed here too: recorded (not fetched again,
 * even after a restart) and reported like a rollback to the version that runs. */
static void record_invalid(struct agent *a, uint64_t version, const uint8_t hash[32])
{
	_cleanup_free_ struct cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return;
	f->version = version;
	memcpy(f->hash, hash, 32);
	if (config_lkg_record(a->lkg, f, false) < 0)
		return;
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", "rollback");
	event_add_u64(&ev, "from", version);
	event_add_u64(&ev, "to", a->env.cfg->version);
	event_add(&ev, "reason", "invalid");
	event_emit(&ev);
}

/* A new version, validated: kept on cmpt-state first (a reboot boots it), then written
 * over the running file and applied like a reload; its hooks run again when it changed
 * them, and its probation starts. -EBUSY (or cfg_load's): written, waits for a restart. */
static int apply_new(struct agent *a, const char *text, size_t len, uint64_t version,
		     const uint8_t hash[32], struct strbuf *msg)
{
	int r = config_lkg_trial(a->lkg, text, len, version, hash);
	if (r < 0 && r != -ENODEV)
		log_warn_errno(
		    r, "version %" PRIu64 " not kept on cmpt-state, applying it all the same",
		    version);
	r = write_file_atomic(a->env.cfg->path, text, len);
	if (r < 0) {
		sb_printf(msg, "%s: %s", a->env.cfg->path, strerror(-r));
		return -EIO;
	}
	struct cfg *old = snapshot(a->env.cfg);
	r = agent_reload_config(a, msg);
	if (r < 0) {
		cfg_free(old);
		return r == -EIO ? -EINVAL : r;
	}
	pending_clear(a); /* the file is what runs again */
	if (hooks_differ(a, old, a->env.cfg))
		rerun_hooks(a);
	probation_start(a, old);
	return 0;
}

static void on_fetched(const char *text, size_t len, uint64_t version, const uint8_t hash[32],
		       int from, void *ud)
{
	struct agent *a = ud;
	const char *peer = a->env.cfg->nodes[from].name;
	struct strbuf err, msg;
	sb_init(&err), sb_init(&msg);
	const char *why = validate(a, text, len, &err);
	int r = why ? -EINVAL : apply_new(a, text, len, version, hash, &msg);
	if (why || r == -EIO) {
		if (err.buf)
			log_error("%s", err.buf);
		event_cfg("refused", version, peer, why ? why : msg.buf);
		cfgsync_refuse(a->cfgsync, version, hash);
		if (why && !strcmp(why, "invalid"))
			record_invalid(a, version, hash);
	} else if (r < 0) {
		log_notice("%s", msg.buf ? msg.buf : "");
		pending_restart(a, version, hash, peer, msg.buf); /* a restart applies it */
	} else {
		event_cfg("applied", version, peer, NULL);
	}
	sb_free(&err), sb_free(&msg);
}

int agent_config_push(struct agent *a, const char *path, struct strbuf *msg)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_full_file(path, CFG_MAX_TEXT, &text, &len);
	if (r < 0) {
		sb_printf(msg, "%s: %s", path, strerror(-r));
		return r;
	}
	struct strbuf err;
	sb_init(&err);
	struct cfg *n = NULL;
	r = cfg_parse(path, text, len, NULL, 0, &n, &err);
	uint64_t v = n ? n->version : 0;
	char why[160] = "";
	if (r < 0)
		sb_printf(msg, "%s%s: configuration refused", err.buf ? err.buf : "", path);
	else if (v <= a->env.cfg->version)
		sb_printf(msg,
			  "%s: version %" PRIu64 " is not newer than the running %" PRIu64
			  " (raise [cluster] version)",
			  path, v, a->env.cfg->version);
	else if (config_lkg_refuses(a->lkg, n, why, sizeof(why)))
		sb_printf(msg, "%s: %s", path, why);
	bool refused = r < 0 || msg->len;
	uint8_t hash[32];
	if (n)
		memcpy(hash, n->hash, 32);
	cfg_free(n);
	sb_free(&err);
	if (refused)
		return -EINVAL;
	r = apply_new(a, text, len, v, hash, msg);
	if (r == -EBUSY) /* written: a restart applies it (and then announces it) */
		pending_restart(a, v, hash, a->env.cfg->nodes[a->env.self].name, msg->buf);
	if (r < 0)
		return r;
	sb_printf(msg,
		  "; every node fetches it when it hears this one ('config' shows who runs it)");
	event_cfg("pushed", v, a->env.cfg->nodes[a->env.self].name, NULL);
	return 0;
}

int agent_config_rollback(struct agent *a, uint64_t version, struct strbuf *msg)
{
	const struct journal_state *j = config_lkg_state(a->lkg);
	struct cfg *c = a->env.cfg;
	uint64_t from = c->version;
	if (!j || !j->has_good) {
		sb_printf(msg, "no last-known-good configuration is recorded on this node");
		return -ENOENT;
	}
	if (j->good.version != version) {
		sb_printf(msg,
			  "version %" PRIu64 " is not this node's last-known-good (%" PRIu64
			  "), the only one kept",
			  version, j->good.version);
		return -ENOENT;
	}
	if (!memcmp(j->good.hash, c->hash, 32)) {
		sb_printf(msg, "version %" PRIu64 " is the one running", version);
		return -EALREADY;
	}
	_cleanup_free_ struct cfg *left = calloc(1, sizeof(*left));
	if (!left)
		return -ENOMEM;
	left->version = from;
	memcpy(left->hash, c->hash, sizeof(left->hash));
	_cleanup_(cfg_freep) struct cfg *old = snapshot(c);
	int r = config_lkg_rollback(a->lkg, c, a->kcmd.ovr, a->kcmd.n_ovr, "operator", true);
	if (r < 0) {
		sb_printf(msg, "%s",
			  r == -EBUSY ? "the topology differs: restart the agent with the "
					"stored copy instead"
				      : "the stored copy cannot be read");
		return r;
	}
	pending_clear(a); /* the copy was written over the file */
	/* The version left behind failed here: not run again, not fetched again. */
	(void)config_lkg_record(a->lkg, left, false);
	probation_stop(a);
	if (hooks_differ(a, old, c))
		rerun_hooks(a);
	sb_printf(msg,
		  "rolled back to version %" PRIu64 "; version %" PRIu64
		  " is recorded as failed on this node",
		  version, from);
	return 0;
}

int agent_config_sync_start(struct agent *a)
{
	int r = cfgsync_new(&a->env, a->hs, on_fetched, a, &a->cfgsync);
	if (r < 0)
		log_error_errno(r, "cannot start the configuration transfer, continuing without");
	cfgsync_set_skip(a->cfgsync, skip_failed);
	return r;
}

void agent_config_sync_free(struct agent *a)
{
	if (a->probation) {
		timer_free(a->probation->t);
		cfg_free(a->probation->before);
	}
	free(a->probation);
	a->probation = NULL;
}
