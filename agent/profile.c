/* The hook runner: fork/exec, a pidfd watched by the loop, a timer for the timeout. */
#include "profile.h"

#include "console.h"
#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct profile_run {
	struct loop *loop;
	struct cfg_profile prof_copy;	/* copied: a config reload may free the cfg */
	const struct cfg_profile *prof; /* &prof_copy, or NULL when the config has none */
	uint64_t hook_timeout;
	char name[CFG_NAME_MAX];
	char node[CFG_NAME_MAX];
	int next;  /* index of the next hook to start */
	pid_t pid; /* running hook, 0 when none */
	int pidfd;
	bool timed_out;
	struct watch *w;
	struct timer *t_timeout, *t_next;
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

static _Noreturn void child_exec(const struct profile_run *run, const char *cmd)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setpgid(0, 0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	char buf[CFG_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", cmd);
	char *argv[CONSOLE_MAX_ARGS + 1] = {0};
	int argc = console_split(buf, argv, CONSOLE_MAX_ARGS);
	if (argc <= 0)
		_exit(127);
	setenv("COMPARTD_NODE", run->node, 1);
	setenv("COMPARTD_PROFILE", run->name, 1);
	execv(argv[0], argv);
	fprintf(stderr, "compartd: hook %s: %m\n", argv[0]);
	_exit(127);
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

static void stop_child(struct profile_run *run)
{
	profile_child_release(run->pid);
	run->w = watch_remove(run->w);
	if (run->pidfd >= 0)
		close(run->pidfd);
	run->pidfd = -1;
	run->pid = 0;
	timer_disarm(run->t_timeout);
}

static void on_exit_fd(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct profile_run *run = ud;
	siginfo_t si = {0};
	const char *cmd = run->prof->run[run->next - 1];
	int code = -1;
	if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED) == 0)
		code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	bool timed_out = run->timed_out;
	stop_child(run);
	/* As PID 1 the SIGCHLD handler left other zombies behind this one: let it run again. */
	kill(getpid(), SIGCHLD);
	if (timed_out) {
		emit_hook(cmd, "timeout", code);
	} else {
		emit_hook(cmd, code == 0 ? "ok" : "failed", code);
	}
	if (timed_out || code != 0) {
		finish(run, PROFILE_STATE_FAILED);
		return;
	}
	timer_arm(run->t_next, 0);
}

static void on_timeout(struct timer *t, void *ud)
{
	struct profile_run *run = ud;
	if (!run->pid)
		return;
	run->timed_out = true;
	log_warn("hook %s: no exit after the hook timeout, killing it",
		 run->prof->run[run->next - 1]);
	kill(-run->pid, SIGKILL);
	kill(run->pid, SIGKILL);
}

static int start_hook(struct profile_run *run)
{
	const char *cmd = run->prof->run[run->next++];
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_exec(run, cmd);
	profile_child_claim(pid); /* the SIGCHLD handler runs later, in the loop */
	setpgid(pid, pid);
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		int r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	run->pid = pid;
	run->pidfd = fd;
	run->timed_out = false;
	run->w = watch_add(run->loop, fd, EPOLLIN, on_exit_fd, run, NULL);
	timer_arm_in(run->t_timeout, run->hook_timeout);
	log_info("hook %s started (pid %d)", cmd, (int)pid);
	return run->w ? 0 : -ENOMEM;
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
		stop_child(run);
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
				    .pidfd = -1,
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
	run->t_timeout = timer_new(l, on_timeout, run);
	run->t_next = timer_new(l, on_next, run);
	if (!run->t_timeout || !run->t_next) {
		profile_run_free(run);
		errno = ENOMEM;
		return NULL;
	}
	if (!run->prof)
		log_info("profile %s has no hooks in the configuration", name);
	timer_arm(run->t_next, 0);
	return run;
}

struct profile_run *profile_run_free(struct profile_run *run)
{
	if (!run)
		return NULL;
	if (run->pid > 0) {
		kill(-run->pid, SIGKILL);
		kill(run->pid, SIGKILL);
		siginfo_t si;
		waitid((idtype_t)P_PIDFD, (id_t)run->pidfd, &si, WEXITED);
	}
	stop_child(run);
	timer_free(run->t_timeout);
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
