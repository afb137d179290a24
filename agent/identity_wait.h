/* Which node this is, when the NIC that tells is not there yet (SPEC §1, §11).
 *
 * A host found by its MAC whose configured NIC appears late (its driver probes late, it is
 * hot-plugged) waits for it like for any fault that heals by itself, before any module
 * starts: a small loop serves the console (`status`, `log`, `help`, `sh` on the serial
 * line, the socket for compartctl) and retries with the waiter's back-off, at once on a
 * link notification:
 *
 *   event=boot stage=identity waiting="no interface with a configured MAC yet (this host has: …)"
 *
 * What can never match ends at once (identity_resolve: a compartd.node= not in the
 * configuration, MACs of several nodes, a configuration without `mac =`), and so does a
 * wait longer than its bound, compartd.identity_wait= (default IDENTITY_WAIT_DEFAULT_US,
 * 0: no bound): the NIC is local hardware, so after minutes without it an operator must
 * act (a replaced NIC, the wrong image). */
#pragma once

#include "util.h"

#define IDENTITY_WAIT_DEFAULT_US (300 * USEC_PER_SEC)

struct agent;

/* Resolves a->env.self from the configuration (a->env.cfg), the kernel command line and
 * the local MACs; waits as above when identity_resolve() says -ENXIO. 0, or a negative
 * errno after logging `identity: <why>`. */
int agent_identity_find(struct agent *a);
