/* See spawn.h. */
#include "spawn.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define HOOK_NAME_MAX 64
#define HOOK_WORDS 32
#define MAX_CLAIMED 32

struct spawn {
	pid_t pid;		  /* 0 once reaped */
	char hook[HOOK_NAME_MAX]; /* a hook's name for its event line, "" for other children */
	int pidfd;
	bool timed_out;
	struct watch *watch;
	struct timer *timer;
	spawn_done_fn done;
	void *ud;
};

pid_t spawn_pid(const struct spawn *sp)
{
	return sp ? sp->pid : 0;
}

/* Children reaped through their pidfd; PID 1's reaper leaves them alone. */
static pid_t claimed[MAX_CLAIMED];

static void child_claim(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (claimed[i] == 0) {
			claimed[i] = pid;
			return;
		}
	/* Full (more than MAX_CLAIMED children at once): PID 1's reaper may take this
	 * child's exit status first; the spawn then ends at its time bound. */
}

static void child_release(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (claimed[i] == pid)
			claimed[i] = 0;
}

bool spawn_child_claimed(pid_t pid)
{
	for (int i = 0; i < MAX_CLAIMED; i++)
		if (pid > 0 && claimed[i] == pid)
			return true;
	return false;
}

static void release(struct spawn *sp)
{
	child_release(sp->pid);
	sp->pid = 0;
	sp->watch = watch_remove(sp->watch);
	if (sp->pidfd >= 0)
		close(sp->pidfd);
	sp->pidfd = -1;
	timer_disarm(sp->timer);
}

struct spawn *spawn_free(struct spawn *sp)
{
	if (!sp)
		return NULL;
	if (sp->pid > 0) {
		siginfo_t si;
		kill(-sp->pid, SIGKILL);
		kill(sp->pid, SIGKILL);
		if (sp->pidfd >= 0)
			waitid((idtype_t)P_PIDFD, (id_t)sp->pidfd, &si, WEXITED);
		else
			waitpid(sp->pid, NULL, 0);
	}
	release(sp);
	sp->timer = timer_free(sp->timer);
	free(sp);
	return NULL;
}

void spawn_hook_event(const char *name, const char *status, int code)
{
	struct event ev;
	event_begin(&ev, "hook");
	event_add(&ev, "name", name);
	event_add(&ev, "status", status);
	event_addf(&ev, "exit", "%d", code);
	event_emit(&ev);
}

static void on_exit_fd(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct spawn *sp = ud;
	siginfo_t si = {0};

	if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	int status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	release(sp);
	/* As PID 1 the SIGCHLD handler left other zombies behind this one: let it run again. */
	kill(getpid(), SIGCHLD);
	if (sp->hook[0])
		spawn_hook_event(sp->hook,
				 sp->timed_out ? "timeout"
				 : status == 0 ? "ok"
					       : "failed",
				 sp->timed_out ? -1 : status);
	sp->done(sp, status, sp->timed_out, sp->ud); /* last: it may free sp */
}

static void on_timeout(struct timer *t, void *ud)
{
	struct spawn *sp = ud;

	if (sp->pid <= 0)
		return;
	sp->timed_out = true;
	log_warn("child %d: no exit within its time bound, killing its process group",
		 (int)sp->pid);
	kill(-sp->pid, SIGKILL);
	kill(sp->pid, SIGKILL);
}

static _Noreturn void child_main(spawn_child_fn child, void *child_ud)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL); /* (the agent ignores it: main.c) */
	setpgid(0, 0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	_exit(child(child_ud) & 0xff);
}

struct spawn *spawn_start(struct loop *l, uint64_t timeout_us, spawn_child_fn child, void *child_ud,
			  spawn_done_fn done, void *ud)
{
	struct spawn *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	*sp = (struct spawn){.pidfd = -1, .done = done, .ud = ud};
	sp->timer = timer_new(l, on_timeout, sp);
	if (!sp->timer) {
		free(sp);
		errno = ENOMEM;
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		spawn_free(sp);
		errno = e;
		return NULL;
	}
	if (pid == 0)
		child_main(child, child_ud);
	child_claim(pid);  /* reaped through the pidfd, not PID 1's reaper */
	setpgid(pid, pid); /* also here: no race with a kill(-pid) right away */
	sp->pid = pid;
	sp->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (sp->pidfd >= 0)
		sp->watch = watch_add(l, sp->pidfd, EPOLLIN, on_exit_fd, sp, NULL);
	if (!sp->watch) {
		int e = sp->pidfd < 0 ? errno : ENOMEM;
		spawn_free(sp);
		errno = e;
		return NULL;
	}
	if (timeout_us)
		timer_arm_in(sp->timer, timeout_us);
	return sp;
}

struct hook_child {
	char *argv[HOOK_WORDS + 1];
	const char *const *env;
};

/* In the child: the caller's memory is ours, copied by fork(). */
static int hook_exec(void *ud)
{
	const struct hook_child *hc = ud;
	for (const char *const *e = hc->env; e && *e; e++)
		putenv((char *)*e);
	execv(hc->argv[0], hc->argv);
	fprintf(stderr, "compartd: hook %s: %m\n", hc->argv[0]);
	return 127;
}

struct spawn *spawn_hook(struct loop *l, const struct spawn_hook *h, spawn_done_fn done, void *ud)
{
	char buf[1024];
	struct hook_child hc = {.env = h->env};
	if (snprintf(buf, sizeof(buf), "%s", h->command) >= (int)sizeof(buf)) {
		errno = E2BIG;
		return NULL;
	}
	int n = split_words(buf, hc.argv, HOOK_WORDS);
	if (n <= 0) {
		errno = n < 0 ? -n : EINVAL;
		return NULL;
	}
	struct spawn *sp = spawn_start(l, h->timeout_us, hook_exec, &hc, done, ud);
	if (!sp)
		return NULL;
	snprintf(sp->hook, sizeof(sp->hook), "%s", h->name);
	log_info("hook %s started (pid %d)", h->name, (int)sp->pid);
	return sp;
}
