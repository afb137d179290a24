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
struct spawn *spawn_start(struct loop *l, uint64_t timeout_us, spawn_child_fn child,
			  void *child_ud, spawn_done_fn done, void *ud);
/* Kills a child still running (its whole group), reaps it, frees. Accepts NULL; returns
 * NULL. done is not called. */
struct spawn *spawn_free(struct spawn *sp);
pid_t spawn_pid(const struct spawn *sp);
