/* The hook runner: one hook after the other, each a child of spawn.h (exec, a pidfd the
 * loop watches, the hook timeout). */
#include "profile.h"

#include "log.h"
#include "spawn.h"

#include <string.h>

struct profile_run {
	struct loop *loop;
	struct cfg_profile prof_copy;	/* copied: a config reload may free the cfg */
	const struct cfg_profile *prof; /* &prof_copy, or NULL when the config has none */
	uint64_t hook_timeout;
	char name[CFG_NAME_MAX];
	char node[CFG_NAME_MAX];
	int next;	  /* index of the next hook to start */
	struct spawn *sp; /* the running hook, NULL when none */
	struct timer *t_next;
	enum profile_state state;
	profile_done_fn done;
	void *ud;
};

static const char *const state_str[_PROFILE_STATE_MAX] = {
    [PROFILE_STATE_RUNNING] = "running",
    [PROFILE_STATE_OK] = "ok",
    [PROFILE_STATE_FAILED] = "failed",
};

const char *profile_state_to_str(enum profile_state s)
{
	return s < _PROFILE_STATE_MAX ? state_str[s] : NULL;
}

static void finish(struct profile_run *run, enum profile_state st)
{
	run->state = st;
	log_notice("profile %s: %s", run->name, profile_state_to_str(st));
	if (run->done)
		run->done(run, st, run->ud);
}

static void on_hook_done(struct spawn *sp, int code, bool timed_out, void *ud)
{
	struct profile_run *run = ud;
	run->sp = spawn_free(sp);
	if (timed_out || code != 0) {
		finish(run, PROFILE_STATE_FAILED);
		return;
	}
	timer_arm(run->t_next, 0);
}

static int start_hook(struct profile_run *run)
{
	const char *cmd = run->prof->run[run->next++];
	char node[CFG_NAME_MAX + 24], profile[CFG_NAME_MAX + 24];
	snprintf(node, sizeof(node), "COMPARTD_NODE=%s", run->node);
	snprintf(profile, sizeof(profile), "COMPARTD_PROFILE=%s", run->name);
	const char *const env[] = {node, profile, NULL};
	const struct spawn_hook h = {
	    .name = cmd, .command = cmd, .env = env, .timeout_us = run->hook_timeout};
	run->sp = spawn_hook(run->loop, &h, on_hook_done, run);
	return run->sp ? 0 : -errno;
}

static void on_next(struct timer *t, void *ud)
{
	struct profile_run *run = ud;
	if (!run->prof || run->next >= run->prof->n_run) {
		finish(run, PROFILE_STATE_OK);
		return;
	}
	const char *cmd = run->prof->run[run->next];
	int r = start_hook(run);
	if (r < 0) {
		log_error_errno(r, "hook %s: cannot start", cmd);
		spawn_hook_event(cmd, "failed", -1);
		finish(run, PROFILE_STATE_FAILED);
	}
}

struct profile_run *profile_start(struct loop *l, const struct cfg *cfg, const char *name,
				  const char *node, profile_done_fn done, void *ud)
{
	struct profile_run *run = calloc(1, sizeof(*run));
	if (!run)
		return NULL;
	*run = (struct profile_run){.loop = l,
				    .hook_timeout = cfg->timeouts.hook_timeout,
				    .state = PROFILE_STATE_RUNNING,
				    .done = done,
				    .ud = ud};
	const struct cfg_profile *p = cfg_find_profile(cfg, name);
	if (p) {
		run->prof_copy = *p;
		run->prof = &run->prof_copy;
	}
	snprintf(run->name, sizeof(run->name), "%s", name);
	snprintf(run->node, sizeof(run->node), "%s", node);
	run->t_next = timer_new(l, on_next, run);
	if (!run->t_next) {
		profile_run_free(run);
		errno = ENOMEM;
		return NULL;
	}
	if (!run->prof)
		log_info("profile %s has no hooks in the configuration", name);
	timer_arm(run->t_next, 0);
	return run;
}

struct profile_run *profile_start_stop(struct loop *l, const struct cfg *cfg, const char *name,
				       const char *node, profile_done_fn done, void *ud)
{
	struct profile_run *run = profile_start(l, cfg, name, node, done, ud);
	if (run && run->prof) {
		struct cfg_profile *p = &run->prof_copy;
		memcpy(p->run, p->stop, sizeof(p->run));
		p->n_run = p->n_stop;
	}
	return run;
}

struct profile_run *profile_run_free(struct profile_run *run)
{
	if (!run)
		return NULL;
	spawn_free(run->sp);
	timer_free(run->t_next);
	free(run);
	return NULL;
}

enum profile_state profile_run_state(const struct profile_run *run)
{
	return run->state;
}
