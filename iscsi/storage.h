/* The storage stage (SPEC §1 step 4): every [storage] section the node can reach gets
 * its multipath (mpath.c) and, once the first path passed the identity check, its NBD
 * export (nbdx.c): to the kernel and/or on a unix socket. Used by the agent and by
 * `compartd storage serve`. */
#pragma once

#include "config.h"
#include "console.h"
#include "loop.h"
#include "mpath.h"
#include "nbdx.h"

struct storage_opts {
	const char *only;	/* one storage by name, or NULL for all */
	const char *listen;	/* unix socket path (one storage), or NULL */
	const char *listen_dir; /* <dir>/nbd-<name>.sock for each storage, or NULL */
	const char *nbd_device; /* "auto", "/dev/nbdN", or NULL for no kernel export */
	const char *link_dir;	/* /dev/compart */
	/* Only storage the node reaches: every portal on loopback, or (as PID 1, with the
	 * node's network up) inside one of the node's `net` prefixes or `route` destinations.
	 * An agent on a host never reaches for the rig's addresses. */
	bool only_reachable;
	bool pid1;
};

struct storage {
	struct loop *loop;
	const struct cfg *cfg;
	struct storage_opts opts;
	struct mpath *m[CFG_MAX_STORAGE];
	struct nbdx *x[CFG_MAX_STORAGE];
	size_t n;
};

bool storage_reachable(const struct cfg *cfg, int node, const struct cfg_storage *st, bool pid1);
/* The first storage marked `root = yes` that the node reaches (and that `only` names, when
 * not NULL), or NULL: the agent then serves the root file system's storage. */
const char *storage_root_name(const struct cfg *cfg, int node, bool pid1, const char *only);

/* Starts the logins; the exports follow when each storage is identified. A node with no
 * storage it can reach gets *ret = NULL and 0. */
int storage_start(struct loop *l, const struct cfg *cfg, const char *node,
		  const struct storage_opts *o, struct storage **ret);
struct storage *storage_free(struct storage *s);
int storage_console_register(struct storage *s, struct console *c);

/* Attaches the storage to the running node (storage_attach.c): the console's `paths` and
 * one health component per path and per export. s may be NULL (the node reaches no
 * storage): `paths` then says so. storage_detach() unregisters and frees; NULL-safe. */
struct node_env;
struct storage_attached;
int storage_attach(struct storage *s, const struct node_env *env, struct storage_attached **ret);
struct storage_attached *storage_detach(struct storage_attached *at);

/* `compartd storage serve …` */
int storage_cli_main(int argc, char **argv);
