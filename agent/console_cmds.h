/* The console commands the console module owns (health, approve-wipe, continue,
 * promote, demote, query, shell), the health engine with its built-in checks
 * (configuration, clock, console socket), cluster queries and the serial console,
 * set up on a running agent. */
#pragma once

#include "agent.h"

/* Creates a->health, a->query, registers the commands and the built-in checks, and opens
 * the serial console named by a->opts.console (host mode) when set. */
int console_cmds_setup(struct agent *a);
void console_cmds_teardown(struct agent *a);

/* Opens the serial console on `dev` ("ttyS0" or "/dev/ttyS0"): PID 1 calls it with the
 * compartd.console= / console= device (default ttyS0). Line editing, live event lines and
 * the `shell` command come with it. -EALREADY when one is open. */
int console_open_serial(struct agent *a, const char *dev);

/* The built-in health checks (health_checks.c). */
struct health_clock_src {
	uint64_t (*realtime)(void);
	uint64_t (*monotonic)(void);
};
int health_checks_register(struct agent *a, const struct health_clock_src *clocks);
void health_checks_unregister(struct agent *a);
