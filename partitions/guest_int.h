/* Shared by the guest driver's files (guest.c, guest_status.c, guest_attach.c). */
#pragma once

#include "guest.h"

struct guest {
	struct guest_opts opts;
	char configfs[CFG_PATH_MAX];
	char proc_net[CFG_PATH_MAX];
	const struct cfg *cfg; /* the live configuration (replaced in place on reload) */
	int self;
	struct guest_plan *plan; /* n_ops == 0: nothing to export */
	bool exported;
	char why[320];		 /* why nothing is exported */
	struct health *health;	 /* where guest:<node> is registered, NULL when not */
	char node[CFG_NAME_MAX]; /* the component's id */
};

/* Unregisters the health component (guest_attach.c). */
void guest_detach(struct guest *g);
/* The health ladder's reload: the tree torn down, planned again from the live
 * configuration (ACLs, CHAP, portal) for the same partition, and written. */
int guest_rebuild_tree(struct guest *g, struct strbuf *msg);
