/* The hook runner: one hook after the other, each a child of spawn.h (exec, a pidfd the
 * loop watches, the hook timeout). */
#include "profile.h"

#include "console.h"
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
	int next;  /* index of the next hook to start */
	struct spawn *sp; /* the running hook, NULL when none */
	struct timer *t_next;
	enum profile_state state;
	profile_done_fn done;
	void *ud;
};

#define MAX_CLAIMED 32
static pid_t claimed[MAX_CLAIMED];

int profile_child_claim(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (claimed[i] == 0) {
			claimed[i] = pid;
			return 0;
		}
	return -ENOSPC;
}

void profile_child_release(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (claimed[i] == pid)
			claimed[i] = 0;
}

bool profile_child_claimed(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (pid > 0 && claimed[i] == pid)
			return true;
	return false;
}

static const char *const state_str[_PROFILE_STATE_MAX] = {
    [PROFILE_STATE_RUNNING] = "running",
    [PROFILE_STATE_OK] = "ok",
    [PROFILE_STATE_FAILED] = "failed",
};

const char *profile_state_to_str(enum profile_state s)
{
	return s < _PROFILE_STATE_MAX ? state_str[s] : NULL;
}

/* In the child (spawn.h set up signals, process group and stdin). */
static int child_exec(void *ud)
{
	const struct profile_run *run = ud;
	const char *cmd = run->prof->run[run->next - 1];
	char buf[CFG_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", cmd);
	char *argv[CONSOLE_MAX_ARGS + 1] = {0};
	int argc = console_split(buf, argv, CONSOLE_MAX_ARGS);
	if (argc <= 0)
		return 127;
	setenv("COMPARTD_NODE", run->node, 1);
	setenv("COMPARTD_PROFILE", run->name, 1);
	execv(argv[0], argv);
	fprintf(stderr, "compartd: hook %s: %m\n", argv[0]);
	return 127;
}

static void emit_hook(const char *cmd, const char *status, int code)
{
	struct event ev;
	event_begin(&ev, "hook");
	event_add(&ev, "name", cmd);
	event_add(&ev, "status", status);
	event_addf(&ev, "exit", "%d", code);
	event_emit(&ev);
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
	const char *cmd = run->prof->run[run->next - 1];
	run->sp = spawn_free(sp);
	emit_hook(cmd, timed_out ? "timeout" : code == 0 ? "ok" : "failed", code);
	if (timed_out || code != 0) {
		finish(run, PROFILE_STATE_FAILED);
		return;
	}
	timer_arm(run->t_next, 0);
}

static int start_hook(struct profile_run *run)
{
	const char *cmd = run->prof->run[run->next++];
	run->sp = spawn_start(run->loop, run->hook_timeout, child_exec, run, on_hook_done, run);
	if (!run->sp)
		return -errno;
	log_info("hook %s started (pid %d)", cmd, (int)spawn_pid(run->sp));
	return 0;
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
		emit_hook(cmd, "failed", -1);
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

const char *profile_run_name(const struct profile_run *run)
{
	return run->name;
}
