/* Child processes the event loop waits for (role hooks, the disks stage run again by the
 * health engine): fork; in the child every signal unblocked (the agent blocks them for its
 * signalfd), its own process group, stdin on /dev/null, then the caller's function, whose
 * return value is the exit status (or it execs). The parent watches a pidfd (the child is
 * claimed, so PID 1's reaper leaves it alone) and bounds the run: after timeout_us the
 * whole process group is killed. Nothing here blocks the loop. */
#pragma once

#include "loop.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct spawn;
/* Runs in the child; returns its exit status (0..255). */
typedef int (*spawn_child_fn)(void *ud);
/* Once, when the child has been reaped: status is the exit status, or 128 + the signal
 * that killed it; timed_out when the time bound killed it. The spawn may be freed inside. */
typedef void (*spawn_done_fn)(struct spawn *sp, int status, bool timed_out, void *ud);

/* Returns NULL with errno set when the child could not be started. */
struct spawn *spawn_start(struct loop *l, uint64_t timeout_us, spawn_child_fn child, void *child_ud,
			  spawn_done_fn done, void *ud);
/* Kills a child still running (its whole group), reaps it, frees. Accepts NULL; returns
 * NULL. done is not called. */
struct spawn *spawn_free(struct spawn *sp);
pid_t spawn_pid(const struct spawn *sp);

/* True for a child a spawn watches: as PID 1 the agent reaps every other child (orphans
 * re-parented to it), but leaves these to their pidfd. */
bool spawn_child_claimed(pid_t pid);

/* A hook: an operator's command from the configuration (a profile's `run`, a role's
 * `promote`), run without a shell. The command is split into words (split_words), stdin is
 * /dev/null, `env` ("KEY=VALUE" strings, NULL-terminated, may be NULL) is added to the
 * environment, and the whole process group is killed after timeout_us. When it has been
 * reaped, one `event=hook name= status=ok|failed|timeout exit=` line is logged, then
 * `done` runs. */
struct spawn_hook {
	const char *name;
	const char *command;
	const char *const *env;
	uint64_t timeout_us;
};
/* The `event=hook` line (also for a hook that could not be started: status=failed exit=-1). */
void spawn_hook_event(const char *name, const char *status, int code);
/* Returns NULL with errno set: EINVAL for an empty command, E2BIG for too many words,
 * else why the child could not be started. */
struct spawn *spawn_hook(struct loop *l, const struct spawn_hook *h, spawn_done_fn done, void *ud);
