/* Starting a profile (SPEC §6): run its `run =` hook commands from the config in order,
 * each with `hook_timeout`. A hook succeeds only with exit status 0; the first failure
 * ends the run. Each outcome is an `event=hook name= status=ok|failed|timeout exit=` line.
 * Hooks run without a shell: the command is split into words (double quotes group),
 * stdin is /dev/null, the environment gets COMPARTD_NODE and COMPARTD_PROFILE, and the
 * hook runs in its own process group, which is killed (SIGKILL) on timeout. */
#pragma once

#include "config.h"
#include "loop.h"

#include <sys/types.h>

enum profile_state {
	PROFILE_STATE_RUNNING,
	PROFILE_STATE_OK,
	PROFILE_STATE_FAILED,
	_PROFILE_STATE_MAX
};
const char *profile_state_to_str(enum profile_state s);

struct profile_run;
/* Called once, when the last hook finished or one failed; the run may be freed inside. */
typedef void (*profile_done_fn)(struct profile_run *run, enum profile_state st, void *ud);

/* Starts the hooks of profile `name` (none configured: done soon with OK). The run copies
 * what it needs from cfg. Returns NULL with errno set on failure. */
struct profile_run *profile_start(struct loop *l, const struct cfg *cfg, const char *name,
				  const char *node, profile_done_fn done, void *ud);
/* The same with the profile's `stop =` hooks (COMPARTD_PROFILE is still `name`). */
struct profile_run *profile_start_stop(struct loop *l, const struct cfg *cfg, const char *name,
				       const char *node, profile_done_fn done, void *ud);
/* Kills a hook still running and frees the run. Accepts NULL; returns NULL. */
struct profile_run *profile_run_free(struct profile_run *run);
enum profile_state profile_run_state(const struct profile_run *run);
