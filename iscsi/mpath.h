/* Multipath driver (SPEC §4): one libiscsi session per portal of a [storage] section,
 * driven by the agent's loop; identity check on every path; block I/O spread over the
 * healthy paths, re-issued when a path fails, queued while none is up. The decisions
 * are made by mpath_core.c; this file does the sessions and the SCSI commands. */
#pragma once

#include "config.h"
#include "console.h"
#include "loop.h"
#include "mpath_core.h"

struct mpath;

enum mpath_op { MPATH_OP_READ, MPATH_OP_WRITE, MPATH_OP_FLUSH, MPATH_OP_TRIM, _MPATH_OP_MAX };
const char *mpath_op_to_str(enum mpath_op op);

struct mpath_io;
typedef void (*mpath_io_fn)(struct mpath_io *io, int r);

/* One block request. offset and len are in bytes, multiples of the block size; `buf`
 * holds len bytes for READ and WRITE and must stay valid until done() runs. done() gets
 * 0 or -EIO (no path for no_path_timeout, or the target refused it), -EINVAL (not aligned,
 * beyond the end), -EOPNOTSUPP (TRIM on an LU without UNMAP). */
struct mpath_io {
	enum mpath_op op;
	uint64_t offset, len;
	uint8_t *buf;
	mpath_io_fn done;
	void *ud;
	/* private */
	unsigned pending;
	int error;
};

/* What every path agreed on (valid once mpath_identity_known()). */
struct mpath_identity {
	char designator[MPATH_DESIGNATOR_MAX];
	uint64_t size; /* bytes */
	uint32_t block_size;
	uint32_t max_xfer; /* bytes per command */
	bool can_unmap;
	uint32_t max_unmap; /* blocks per UNMAP */
};

/* Creates the paths of storage `storage_idx` (an index into cfg->storage, or -1 for the
 * quorum section); logins start with mpath_start(). The config must outlive the mpath. */
int mpath_new(struct loop *l, const struct cfg *cfg, int storage_idx, const char *node,
	      struct mpath **ret);
int mpath_start(struct mpath *m);
struct mpath *mpath_free(struct mpath *m);

/* Called once, when the first path passed the identity check. */
void mpath_on_ready(struct mpath *m, void (*fn)(struct mpath *m, void *ud), void *ud);
bool mpath_identity_known(const struct mpath *m);
const struct mpath_identity *mpath_identity(const struct mpath *m);
const char *mpath_name(const struct mpath *m);
/* Paths, for the health checks: how many, the state of one (its portal "host:port" and
 * the last reason it failed or was refused), whether it was ever up since the start, and
 * a request to log it in now rather than after its backoff (a path down or refused). */
int mpath_path_count(const struct mpath *m);
enum mpath_path_state mpath_path_state(const struct mpath *m, int i, const char **ret_portal,
				       const char **ret_why);
bool mpath_path_ever_up(const struct mpath *m, int i);
void mpath_path_login_now(struct mpath *m, int i);
/* The kernel device it is exported as, for event=storage dev= (NULL: "none"). */
void mpath_set_dev(struct mpath *m, const char *dev);

int mpath_submit(struct mpath *m, struct mpath_io *io);

/* The `paths` console text or JSON for these storages. */
void mpath_format_paths(struct mpath *const *ms, size_t n, bool json, struct strbuf *out);
/* Registers `paths`; *ms and *n are read at each call (the owner may add storages). */
int mpath_console_register(struct console *c, struct mpath *const *ms, const size_t *n);
