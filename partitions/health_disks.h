/* Health checks of the local disks the disks stage selected (SPEC §8): each disk is a
 * component `disk:<name>`: the device is there (reachable) → it has a partition table
 * libblkid reads, or is blank (parses) → the table matches the layout the stage planned
 * (integrity). The remedy is the disks stage itself (rebuild): it partitions a blank
 * replacement disk and leaves a foreign one alone, which then needs an operator
 * (approve-wipe). */
#pragma once

#include "config.h"
#include "health.h"

struct disk_module;

#define HEALTH_MD_MAX_MEMBERS 8

/* One member in /sys/block/mdX/md/dev-<name>/. */
struct health_md_member {
	char dev[32];	/* kernel name: "vda3" */
	char state[64]; /* "in_sync", "faulty", "write_error,in_sync", "spare", … */
	long errors;
};

/* What sysfs says about one md array (/sys/block/mdX/md/…). */
struct health_md_facts {
	char array_state[32]; /* clean, active, degraded…, inactive, clear */
	long degraded;	      /* members missing */
	long raid_disks;
	char sync_action[16];		/* idle, resync, recover, check, repair, frozen */
	uint64_t sync_done, sync_total; /* sync_completed "done / total", 0/0 when none */
	struct health_md_member members[HEALTH_MD_MAX_MEMBERS];
	int n_members;
	char uuid[48]; /* from an in-sync member's 1.2 superblock, mdadm's form; "" unknown */
};

/* The remediation ladder of an md array (SPEC §8), pure: the mdadm commands one step
 * takes, from the facts and the member partitions the disks stage expects
 * ("/dev/vda3", …). isolate: fail and remove a faulty / write-error / blocked member;
 * restart: re-add an expected partition that is not an active member; reload: an array
 * not running is stopped and assembled again from the expected members. (Rebuild is the
 * disks stage.) Returns the number of commands. */
enum health_md_cmd_kind {
	HEALTH_MD_FAIL_REMOVE, /* mdadm MD --fail DEV --remove DEV */
	HEALTH_MD_READD,       /* mdadm MD --re-add DEV */
	HEALTH_MD_STOP,	       /* mdadm --stop MD */
	HEALTH_MD_ASSEMBLE,    /* mdadm --assemble --run MD DEV… (the expected members) */
	_HEALTH_MD_CMD_MAX
};
const char *health_md_cmd_to_str(enum health_md_cmd_kind k);
struct health_md_cmd {
	enum health_md_cmd_kind kind;
	char dev[CFG_PATH_MAX]; /* "" for stop / assemble */
};
int health_md_ladder(const struct health_md_facts *f, enum health_action step,
		     const char *const expected[], int n_expected, struct health_md_cmd out[],
		     int max);
/* "array uuid X, the journal records Y" into detail and -EBADMSG when both are known and
 * differ; 0 otherwise. */
int health_md_judge_uuid(const struct health_md_facts *f, const char *recorded,
			 struct strbuf *detail);
/* Pure: 0 healthy (a resync or recovery under way is progress, with its percentage in
 * `detail`), or a negative errno with the reason. */
int health_md_judge(const struct health_md_facts *f, struct strbuf *detail);
/* Reads the facts of the array /dev/md/<name>; roots are "/dev" and "/sys" normally. */
int health_md_read(const char *dev_root, const char *sys_root, const char *name,
		   struct health_md_facts *ret, struct strbuf *err);

/* Registers every disk of the module's last result, its state journal and its md arrays
 * (`md:infra`, `md:admin`). Returns the number of disks registered. */
int health_disks_register(struct health *h, struct disk_module *m);
void health_disks_unregister(struct health *h);

/* `approve-wipe`: records the approval, then runs the disks stage again in the background
 * child (after the run under way, if one is) and gives the outcome to `done`, returning
 * HEALTH_DISKS_LATER; without a health engine (h NULL, or not attached to a loop) the stage
 * runs at once and the outcome is returned (0, or <0 refused, the sentence in msg). */
#define HEALTH_DISKS_LATER 1
typedef void (*health_disks_done_fn)(int r, struct strbuf *msg, void *ud);
int health_disks_approve_wipe(struct health *h, struct disk_module *m, const char *disk,
			      struct strbuf *msg, health_disks_done_fn done, void *ud);

/* Attaches the disks module to the running node: the console commands `disks`, `raid` and
 * `approve-wipe`, and the health components above. Returns the number of disks watched. */
struct node_env;
int disk_module_attach(struct disk_module *m, const struct node_env *env);
void disk_module_detach(struct disk_module *m, const struct node_env *env);
