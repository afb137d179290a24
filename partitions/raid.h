/* md RAID1 across the node's disks (SPEC §3): a pure plan from the members found to
 * mdadm actions, and the driver that runs mdadm (argv arrays, fork/exec, exit status).
 * The driver never runs --zero-superblock: nothing here needs it, so nothing can. */
#pragma once

#include "config.h"
#include "util.h"

#define RAID_MAX_MEMBERS 8
#define RAID_MAX_ACTIONS 16
#define RAID_MAX_ARGS 32

enum raid_action_kind {
	RAID_ACT_CREATE,   /* mdadm --create, metadata 1.2, name, homehost; `missing` fills */
	RAID_ACT_ASSEMBLE, /* mdadm --assemble --run with the fresh members */
	RAID_ACT_READD,	   /* mdadm MD --re-add: a returning member (older events) */
	RAID_ACT_ADD,	   /* mdadm MD --add: a new blank member */
	_RAID_ACT_MAX
};
const char *raid_action_to_str(enum raid_action_kind k);

enum raid_state { RAID_STATE_CLEAN, RAID_STATE_DEGRADED, RAID_STATE_RESYNCING, _RAID_STATE_MAX };
const char *raid_state_to_str(enum raid_state s);

/* One cmpt-infra / cmpt-admin partition and what its md superblock says. */
struct raid_member {
	char dev[CFG_PATH_MAX];
	bool has_sb;
	char uuid[48];	 /* MD_UUID */
	char name[64];	 /* MD_NAME, "homehost:name" */
	char level[16];	 /* MD_LEVEL */
	uint64_t events; /* MD_EVENTS */
	bool in_array;	 /* an active member of the running array */
};

struct raid_input {
	char name[16];		     /* "infra" / "admin" */
	char homehost[CFG_NAME_MAX]; /* node name */
	bool running;		     /* /dev/md/<name> is assembled */
	char running_uuid[48];
	struct raid_member members[RAID_MAX_MEMBERS];
	int n_members;
};

struct raid_action {
	enum raid_action_kind kind;
	char md[48];				   /* /dev/md/infra */
	char uuid[48];				   /* assemble */
	int raid_devices;			   /* create */
	char devs[RAID_MAX_MEMBERS][CFG_PATH_MAX]; /* create: "missing" allowed */
	int n_devs;
};

struct raid_plan {
	struct raid_action acts[RAID_MAX_ACTIONS];
	int n_acts;
	int up, total;	       /* members expected active / slots after the actions */
	enum raid_state state; /* expected */
	char ignored[256];     /* members left alone (another array's superblock) */
};

/* Pure. -EINVAL for a bad input (no members, unknown name). */
int raid_plan_make(const struct raid_input *in, struct raid_plan *ret);

/* Parses `mdadm --examine --export DEV` output into m (dev untouched). A device without a
 * superblock gives has_sb = false. */
int raid_parse_examine(const char *text, struct raid_member *m);

/* Builds the argv for one action: pointers into `buf` (caller's storage), NULL-terminated.
 * Returns argc or a negative errno. */
struct raid_argv {
	char *argv[RAID_MAX_ARGS + 1];
	char buf[RAID_MAX_ARGS][CFG_PATH_MAX];
	int argc;
};
int raid_build_argv(const char *mdadm, const char *homehost, const char *name,
		    const struct raid_action *a, struct raid_argv *ret);

/* Driver: runs mdadm for each action (bounded by timeout_us each); stops at the first
 * failure (a re-add refused falls back to add). Emits event=raid lines. */
struct raid_driver {
	const char *mdadm; /* "mdadm" or a full path */
	uint64_t timeout_us;
};
int raid_run_plan(const struct raid_driver *drv, const struct raid_input *in,
		  const struct raid_plan *p);
/* Runs a command, output (stdout) into out when given; returns the exit status (≥0) or a
 * negative errno. */
int raid_exec(char *const argv[], uint64_t timeout_us, struct strbuf *out);
/* mdadm --examine --export on each member device, filling the rest of the members. */
int raid_examine_members(const struct raid_driver *drv, struct raid_input *in);
