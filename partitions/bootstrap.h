/* The disks stage of the bootstrap (SPEC §1 step 3): discover → plan → journal intent →
 * apply → journal done → RAID1 via mdadm → journal. Called by PID 1 (and by the
 * `compartd disks` CLI); idempotent, so a node interrupted anywhere converges. */
#pragma once

#include "config.h"
#include "console.h"
#include "disk.h"
#include "journal.h"
#include "raid.h"

struct disk_bootstrap_opts {
	const char *const *disks; /* explicit list; NULL/0: the node's `disks =` (or auto) */
	int n_disks;
	const char *const *approve; /* --approve-wipe SERIAL|WWN|PATH, beside the config's */
	int n_approve;
	bool apply;		 /* false: plan only, nothing is written */
	bool raid;		 /* run the RAID1 actions with mdadm */
	const char *mdadm;	 /* NULL: "mdadm" */
	const char *boot_medium; /* auto mode skips this disk (path), NULL: detected */
	const char *sysfs_root;	 /* NULL: "/sys" */
	const char *cmdline;	 /* NULL: "/proc/cmdline" (boot medium detection) */
	const char *mountinfo;	 /* NULL: "/proc/self/mountinfo" (boot medium detection) */
	const char *state_path;	 /* an extra journal area (file or device, used whole) */
};

struct disk_bootstrap_disk {
	struct disk_info info;
	struct disk_plan plan;
	int result;   /* 0, or the negative errno of the probe/apply */
	bool applied; /* something was written to it this run */
};

struct disk_bootstrap_raid {
	bool planned;
	struct raid_input input;
	struct raid_plan plan;
	int result;
};

struct disk_bootstrap_result {
	struct disk_bootstrap_disk disks[DISK_MAX];
	int n_disks;
	struct disk_bootstrap_raid raids[_CFG_KIND_MAX];
	bool journal_loaded;
	bool journal_written;
	struct journal_state journal;
	struct journal_dev jdevs[DISK_MAX];
	int n_jdevs;
};

/* Fills *ret (allocate it: it is large). Returns 0 when every selected disk ended in a
 * usable state or was left alone as planned; a negative errno when an apply or the RAID
 * step failed (ret is filled anyway, for the console). */
int disk_bootstrap(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		   struct disk_bootstrap_result *ret);
/* Human table or one JSON document. */
void disk_bootstrap_format(const struct disk_bootstrap_result *r, bool json, struct strbuf *out);
void disk_bootstrap_format_raid(const struct disk_bootstrap_result *r, bool json,
				struct strbuf *out);

/* The running agent's disk module: keeps the last result for the console and takes
 * operator approvals. */
struct disk_module;
int disk_module_new(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		    struct disk_module **ret);
struct disk_module *disk_module_free(struct disk_module *m);
int disk_module_bootstrap(struct disk_module *m);
const struct disk_bootstrap_result *disk_module_result(const struct disk_module *m);
/* Takes the result of a run made elsewhere (the stage run in a child process). */
void disk_module_set_result(struct disk_module *m, const struct disk_bootstrap_result *r);
/* Authorizes wiping one foreign disk (path, serial or WWN, as the console names it) and
 * runs the stage again, which wipes and partitions it and records the authorization as
 * consumed. The sentence for the operator goes to msg. */
int disk_approve_wipe(struct disk_module *m, const char *disk, struct strbuf *msg);
/* The two halves of it, for a caller that runs the stage elsewhere (the agent: in a child,
 * so its loop never waits for libparted and mdadm): record the approval (ret_path: the
 * disk's path), then, once the stage ran again (stage_rc its result), say what came of it. */
int disk_approve_wipe_record(struct disk_module *m, const char *disk, struct strbuf *msg,
			     char ret_path[CFG_PATH_MAX]);
int disk_approve_wipe_outcome(const struct disk_module *m, const char *path, int stage_rc,
			      struct strbuf *msg);
/* The journal as the stage left it, for other modules to update (election epoch and role,
 * last known-good / failed configuration), then write with disk_module_journal_store().
 * NULL before the stage ran. */
struct journal_state *disk_module_journal(struct disk_module *m);
/* Writes the journal to every cmpt-state of the node's disks; -ENODEV when none. */
int disk_module_journal_store(struct disk_module *m);
/* The health engine the module's components and approvals use (health_disks.h), NULL
 * when none. */
struct health;
void disk_module_set_health(struct disk_module *m, struct health *h);
struct health *disk_module_health(const struct disk_module *m);
/* Registers `disks` and `raid` on the console. */
int disk_console_register(struct console *con, struct disk_module *m);
