/* Health checks of the local disks the disks stage selected (SPEC §8): each disk is a
 * component `disk:<name>`: the device is there (reachable) → it has a partition table
 * libblkid reads, or is blank (parses) → the table matches the layout the stage planned
 * (integrity). The remedy is the disks stage itself (rebuild): it partitions a blank
 * replacement disk and leaves a foreign one alone, which then needs an operator
 * (approve-wipe). */
#pragma once

#include "health.h"

struct disk_module;

/* What sysfs says about one md array (/sys/block/mdX/md/…). */
struct health_md_facts {
	char array_state[32]; /* clean, active, degraded…, inactive, clear */
	long degraded;	      /* members missing */
	long raid_disks;
	char sync_action[16];		/* idle, resync, recover, check, repair, frozen */
	uint64_t sync_done, sync_total; /* sync_completed "done / total", 0/0 when none */
};
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
