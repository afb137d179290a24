/* The multipath driver's own types, shared by mpath.c (sessions, I/O) and
 * mpath_console.c (the `paths` command). Not for other modules: they use mpath.h. */
#pragma once

#include "isession.h"
#include "mpath.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

enum slot_kind { SLOT_IO, SLOT_CHECK, SLOT_TUR, SLOT_VPD83, SLOT_CAP, SLOT_VPDB0, SLOT_VPDB2 };

struct path;
struct cmd;

/* One SCSI task handed to libiscsi. A slot outlives its command when the path fails:
 * the command moves on, the slot waits for libiscsi to let go of the task. */
struct slot {
	enum slot_kind kind;
	struct path *p;
	struct cmd *cmd; /* SLOT_IO; NULL once orphaned */
	bool orphan;
	struct scsi_task *task;
	uint64_t deadline;
	struct scsi_iovec iov;
	struct unmap_list ul;
	struct slot *prev, *next;
};

/* One SCSI command of a block request (requests are split at the LU's max transfer). */
struct cmd {
	struct mpath_core_cmd cc;
	struct mpath_io *io;
	enum mpath_op op;
	uint64_t lba;
	uint32_t nblocks;
	uint8_t *buf;
	struct slot *slot;
	struct cmd *prev, *next; /* in m->queue while waiting, or in m->held */
};

struct path {
	struct mpath *m;
	int idx;
	char portal[100];
	struct iscsi_context *ctx;
	struct watch *w;
	struct iscsi_context *dead_ctx; /* destroyed in the next prepare, outside libiscsi */
	bool dead_in_login;		/* dead_ctx failed before its login completed */
	bool login_called;		/* libiscsi called ctx's login back */
	/* A context given up during its login, kept until libiscsi calls its login back
	 * (isession.h). */
	struct isession_park park;
	struct slot *slots; /* tasks on ctx (and on dead_ctx until destroyed) */
	uint64_t login_deadline;
	uint64_t last_service;
	unsigned probe_uas;
	bool ever_up;
	char refused[2 * MPATH_DESIGNATOR_MAX + 16]; /* the last refusal, said once */
	bool check_busy;
	unsigned fail_streak;
	struct mpath_identity id;
	char last_error[160];
};

struct mpath {
	struct loop *loop;
	const struct cfg *cfg;
	const struct cfg_storage *st;
	char iqn[CFG_IQN_MAX];
	char *chap_secret; /* sodium_malloc */
	struct mpath_core core;
	struct path paths[MPATH_MAX_PATHS];
	struct cmd *queue_head, *queue_tail;
	/* Writes that were in flight on a session we abandoned: issued nowhere until that
	 * path's target terminated them (a login with the same ISID), or EIO after
	 * no_path_timeout. */
	struct cmd *held_head, *held_tail;
	uint32_t isid; /* the ISID's random part: the same for every login of a path */
	bool ident_known;
	struct mpath_identity id;
	char dev[CFG_PATH_MAX];
	uint64_t next_tick;
	bool started;
	void (*ready_fn)(struct mpath *m, void *ud);
	void *ready_ud;
	bool stopping; /* mpath_free under way */
};
