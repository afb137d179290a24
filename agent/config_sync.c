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

/* ---- probation and automatic rollback (SPEC §2a) ---- */

struct config_probation {
	struct timer *t;
	uint64_t until_us;
	bool was_eligible; /* eligible at some time since the version was applied */
	bool active;
};

static bool eligible(struct agent *a)
{
	return a->elect && !elect_drv_ineligible_cause(a->elect);
}

static const struct cfg_profile *profile_of(const struct cfg *c, const char *name)
{
	for (int i = 0; i < c->n_profiles; i++)
		if (!strcmp(c->profiles[i].name, name))
			return &c->profiles[i];
	return NULL;
}

/* Whether the current profile's `run =` hooks differ between o and n. */
static bool hooks_differ(struct agent *a, const struct cfg *o, const struct cfg *n)
{
	int p = a->decision ? decision_profile(a->decision) : -1;
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

static void probation_stop(struct agent *a)
{
	if (a->probation) {
		a->probation->active = false;
		timer_disarm(a->probation->t);
	}
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
	if (r == -EBUSY)
		log_warn("version %" PRIu64 " keeps running until the next boot, which runs the "
			 "last-known-good",
			 c->version);
	else if (r == 0 && hooks_differ(a, old, c))
		(void)decision_rerun(a->decision);
}

static void on_probation(struct timer *t, void *ud)
{
	struct agent *a = ud;
	struct config_probation *p = a->probation;
	if (!p->active)
		return;
	bool ok = eligible(a);
	if (p->was_eligible && !ok) {
		log_warn("version %" PRIu64 " on probation: this node lost its eligibility (%s)",
			 a->env.cfg->version, elect_drv_ineligible_cause(a->elect));
		config_failed(a, "ineligible");
		return;
	}
	p->was_eligible = p->was_eligible || ok;
	if (loop_now(a->env.loop) < p->until_us) {
		timer_arm_in(t, a->env.cfg->timeouts.heartbeat_interval);
		return;
	}
	p->active = false;
	(void)config_lkg_record(a->lkg, a->env.cfg, true); /* event=config action=last-known-good */
}

/* The running version is on trial (config_lkg_trial): it becomes the last-known-good after
 * config_probation unless it fails (its hooks, or the node's eligibility) before. */
static void probation_start(struct agent *a)
{
	const struct cfg *c = a->env.cfg;
	if (!config_lkg_on_trial(a->lkg, c))
		return; /* nothing kept: nothing to prove, nothing to roll back to */
	if (!a->probation && (a->probation = calloc(1, sizeof(*a->probation))) &&
	    !(a->probation->t = timer_new(a->env.loop, on_probation, a))) {
		free(a->probation);
		a->probation = NULL;
	}
	if (!a->probation) {
		log_warn("out of memory: version %" PRIu64 " is not watched on probation",
			 c->version);
		return;
	}
	struct config_probation *p = a->probation;
	*p = (struct config_probation){.t = p->t,
				       .until_us =
					   loop_now(a->env.loop) + c->timeouts.config_probation,
				       .was_eligible = eligible(a),
				       .active = true};
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
	if (!hooks_ok) {
		config_failed(a, "hook-failed");
		return;
	}
	if (config_lkg_on_trial(a->lkg, a->env.cfg)) {
		if (!a->probation || !a->probation->active)
			probation_start(a);
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
	_cleanup_(cfg_freep) struct cfg *old = snapshot(a->env.cfg);
	r = agent_reload_config(a, msg);
	if (r < 0)
		return r == -EIO ? -EINVAL : r;
	if (hooks_differ(a, old, a->env.cfg))
		(void)decision_rerun(a->decision);
	probation_start(a);
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
		event_cfg("pending-restart", version, peer, msg.buf);
		cfgsync_refuse(a->cfgsync, version, hash); /* stored; a restart applies it */
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
	if (r < 0)
		return r; /* written: a restart applies it (and then announces it) */
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
	/* The version left behind failed here: not run again, not fetched again. */
	(void)config_lkg_record(a->lkg, left, false);
	probation_stop(a);
	if (hooks_differ(a, old, c))
		(void)decision_rerun(a->decision);
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
	if (a->probation)
		timer_free(a->probation->t);
	free(a->probation);
	a->probation = NULL;
}
