/* See spawn.h. */
#include "spawn.h"

#include "log.h"
#include "profile.h"

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

struct spawn {
	pid_t pid; /* 0 once reaped */
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

static void release(struct spawn *sp)
{
	profile_child_release(sp->pid);
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
	setpgid(0, 0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	_exit(child(child_ud) & 0xff);
}

struct spawn *spawn_start(struct loop *l, uint64_t timeout_us, spawn_child_fn child,
			  void *child_ud, spawn_done_fn done, void *ud)
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
	(void)profile_child_claim(pid); /* reaped through the pidfd, not PID 1's reaper */
	setpgid(pid, pid);		/* also here: no race with a kill(-pid) right away */
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
