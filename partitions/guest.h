/* The guest storage network (SPEC §3a): this node's verified cmpt-guest partition exported
 * through the kernel's LIO iSCSI target to its compartment's infrastructural instances.
 *
 * The pure part (guest_plan.c) picks the partition from the disks stage result and
 * computes the configfs tree the agent writes, as an ordered list of operations; the
 * driver (guest.c) carries it out under a configfs root (a parameter, so unit tests run it
 * in a temporary directory), tears it down in reverse, and attaches the console command
 * `guest` and the health component `guest:<node>`. */
#pragma once

#include "bootstrap.h"
#include "config.h"
#include "util.h"

#define GUEST_CONFIGFS "/sys/kernel/config/target"
#define GUEST_MAX_OPS 96
#define GUEST_OP_PATH_MAX 512
#define GUEST_TPGT 1
#define GUEST_LUN 0
#define GUEST_BACKSTORE_HBA "core/iblock_0"
#define GUEST_BACKSTORE "core/iblock_0/compartd-guest"

/* The partition to export: a verified cmpt-guest of this node's disks stage. */
struct guest_part {
	char path[CFG_PATH_MAX]; /* the partition's block device */
	char disk[CFG_PATH_MAX]; /* the whole disk it is on */
	int number;		 /* partition number */
	uint64_t size;		 /* bytes, as the GPT says */
	char guid[40];		 /* the partition's unique GUID (PARTUUID), lower case */
};

/* Picks the first disk (in the stage's order) whose stage succeeded and whose cmpt-guest
 * is present with our type GUID and the planned extent. -ENOENT (why says which disk
 * lacked what) when none; image files are never exported (-ENOTBLK: no partition device). */
int guest_part_select(const struct disk_bootstrap_result *r, struct guest_part *ret, char *why,
		      size_t n);

enum guest_op_kind {
	GUEST_OP_MKDIR,	 /* teardown: rmdir */
	GUEST_OP_WRITE,	 /* value written to the attribute; teardown: nothing */
	GUEST_OP_SECRET, /* the first line of the file `value` written; teardown: nothing */
	GUEST_OP_LINK,	 /* symlink path → <root>/value; teardown: unlink */
	_GUEST_OP_MAX
};
const char *guest_op_kind_to_str(enum guest_op_kind k);

struct guest_op {
	enum guest_op_kind kind;
	bool shared; /* a directory other exports may use too: teardown tolerates ENOTEMPTY */
	char path[GUEST_OP_PATH_MAX]; /* relative to the configfs root */
	char value[GUEST_OP_PATH_MAX];
};

struct guest_plan {
	char node[CFG_NAME_MAX];
	char compartment[CFG_NAME_MAX];
	char iqn[CFG_IQN_MAX];	    /* iqn.2026-12.compartd.<cluster>:guest.<node> */
	char portal[80];	    /* "10.77.1.11:3260", "[fd00::1]:3260": the np directory name */
	char serial[40];	    /* vpd_unit_serial: the partition GUID */
	char naa[40];		    /* the VPD 0x83 NAA designator LIO derives from the serial */
	char tpg[CFG_IQN_MAX + 32]; /* "iscsi/<iqn>/tpgt_1" */
	struct guest_part part;
	char acls[CFG_MAX_INITIATORS][CFG_IQN_MAX];
	int n_acls;
	bool chap, mutual_chap;
	struct guest_op ops[GUEST_MAX_OPS];
	int n_ops;
};

/* The target name of a node: "iqn.2026-12.compartd.<cluster>:guest.<node>", lower case,
 * characters outside [a-z0-9.-] as '-'. */
void guest_iqn(const struct cfg *c, int node, char out[CFG_IQN_MAX]);
/* The NAA IEEE Registered Extended designator LIO generates (spc_gen_naa_6h_vendor_specific)
 * from a unit serial with the default company id 0x001405: "naa.6001405" + the serial's
 * first 25 hex digits. */
void guest_naa_from_serial(const char *serial, char out[40]);

/* The configfs tree for exporting `p` from node `self`. -ENOENT when the compartment names
 * no infra_initiator (nobody to export to: nothing is exported), -ENAMETOOLONG when a path
 * does not fit. */
int guest_plan_compute(const struct cfg *c, int self, const struct guest_part *p,
		       struct guest_plan *ret);
/* One line per operation, "mkdir PATH", "write PATH = VALUE", "secret PATH < FILE",
 * "link PATH -> VALUE" (the golden files' form), after a header naming the export. */
void guest_plan_format(const struct guest_plan *p, struct strbuf *out);

/* ---- the driver (guest.c) ---- */

struct guest_opts {
	const char *configfs; /* NULL: GUEST_CONFIGFS */
	const char *proc_net; /* NULL: "/proc/net" (tcp, tcp6: the portal's listening socket) */
	/* A plain directory stands in for configfs (unit tests): parents of attributes and
	 * the groups configfs makes by itself are created on demand, and removed again at
	 * teardown. The kernel's own checks (a udev_path that is a block device, a portal
	 * that binds, ACL names) are only exercised by the rig. */
	bool simulate;
};

struct guest;
struct node_env;

/* Computes and writes the tree for this node's cmpt-guest from the disks stage result
 * (NULL: the stage did not run). A node with nothing to export still gets a module that
 * says why (`guest` on the console, the health component). `c` must stay valid (the
 * agent's configuration, replaced in place on reload): the health check compares the
 * ACLs with it, and the reload rung plans from it again. */
int guest_new(const struct cfg *c, int self, const struct disk_bootstrap_result *r,
	      const struct guest_opts *o, struct guest **ret);
/* Tears the tree down in reverse order (the TPG disabled first). */
struct guest *guest_free(struct guest *g);
bool guest_exported(const struct guest *g);
const char *guest_why_not(const struct guest *g); /* "" when exported */
const struct guest_plan *guest_plan(const struct guest *g);

/* Writes the plan under the root (undoing what it wrote when a step fails), and the
 * reverse. Exposed for the unit tests and the health ladder. */
int guest_apply(const struct guest_opts *o, const struct guest_plan *p, struct strbuf *why);
int guest_teardown(const struct guest_opts *o, const struct guest_plan *p);
/* Enables or disables the TPG (isolate / restart). */
int guest_tpg_enable(const struct guest *g, bool on);

/* The state read back from configfs, for `guest` and the health checks. */
#define GUEST_MAX_SESSIONS 16
struct guest_status {
	bool tpg_enabled, portal_listening;
	char udev_path[CFG_PATH_MAX];
	char serial[128];
	uint64_t size; /* the backing device's current size */
	char acls[CFG_MAX_INITIATORS + 4][CFG_IQN_MAX];
	int n_acls;
	char sessions[GUEST_MAX_SESSIONS][CFG_IQN_MAX]; /* initiators logged in */
	int n_sessions;
	uint64_t read_mbytes, write_mbytes, cmds; /* the LUN's statistics */
};
int guest_status_read(const struct guest *g, struct guest_status *ret);
void guest_format(const struct guest *g, const struct guest_status *s, bool json,
		  struct strbuf *out);

/* Registers the console command `guest` and the health component `guest:<node>`. */
int guest_attach(struct guest *g, const struct node_env *env);
