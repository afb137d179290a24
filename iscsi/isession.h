/* What every libiscsi session of the agent shares, the storage paths' (mpath.c) and the
 * quorum device's (agent/election/qdev.c):
 *
 * - isession_context(): a context with the agent's settings: the target, no header digest,
 *   no automatic reconnect (the owner reconnects, with its own back-off), libiscsi's login
 *   timeout, and TCP_SYNCNT 1 so that a portal dropping SYNs fails the connect in ~3 s;
 *   the owner sets its ISID.
 * - struct isession_park: libiscsi keeps a connect task until it calls the login back, so
 *   destroying a context given up during its login loses that task for ever (a leak per
 *   attempt at a dark portal). Such a context is parked here, its fd serviced by the loop,
 *   until the login callback arrives (isession_park_called_back) or ISESSION_PARK_MAX_US
 *   passes, then destroyed. One place per owner: parking another destroys the older one. */
#pragma once

#include "loop.h"

#include <iscsi/iscsi.h>
#include <stdbool.h>
#include <stdint.h>

#define ISESSION_PARK_MAX_US (15 * USEC_PER_SEC)

struct isession_opts {
	const char *initiator, *target;
	uint64_t login_timeout_us;
	const char *chap_user, *chap_secret; /* NULL: no CHAP */
};
/* NULL when libiscsi cannot make one. */
struct iscsi_context *isession_context(const struct isession_opts *o);

/* Destroys a context with a reset, not a close: commands still in the socket's send queue
 * must never reach the target later, where they could overwrite newer data. */
void isession_destroy(struct iscsi_context *ctx);

struct isession_park {
	struct loop *loop;
	struct iscsi_context *ctx; /* the parked context, NULL when none */
	void *cb_data;		   /* freed with it: the owner's login callback data, or NULL */
	struct watch *w;
	uint64_t until, serviced;
	bool done; /* called back (or failed): destroyed at the next service */
};

void isession_park_init(struct isession_park *p, struct loop *l);
/* Parks ctx (and cb_data, freed with it) until its login is called back. */
void isession_park(struct isession_park *p, struct iscsi_context *ctx, void *cb_data, uint64_t now);
/* The owner's login callback saw the parked context (or cb_data): libiscsi let go of it. */
void isession_park_called_back(struct isession_park *p);
/* From the owner's prepare step: services the parked context at most once a second (its
 * fd events are serviced by its watch) and destroys it once called back or overdue. */
void isession_park_service(struct isession_park *p, uint64_t now);
/* Destroys what is parked, now. */
void isession_unpark(struct isession_park *p);
