/* Health components for the NBD exports (SPEC §8): one `export:<storage>` per storage. */
#pragma once

#include "health.h"

#include <stdbool.h>
#include <stdint.h>

struct health_export;
struct storage;

/* What the checks look at, gathered by the driver (health_export.c) from the export, the
 * kernel (NBD_CMD_STATUS) and sysfs. */
struct health_export_facts {
	bool exported;	   /* the export exists (a path passed the identity check) */
	int index;	   /* its kernel device /dev/nbd<index>; -1: not exported to the kernel */
	bool linked;	   /* our end of the kernel's socket is open */
	int status;	   /* NBD_CMD_STATUS: 0, or -errno */
	bool connected;	   /* its answer */
	long dev_pid;	   /* /sys/block/nbdN/pid, -1 when missing */
	long our_pid;	   /* the process serving it */
	uint64_t dev_size; /* /sys/block/nbdN/size × 512 */
	uint64_t lu_size;  /* READ CAPACITY of the LU */
	const char *designator_now, *designator_exported, *pinned; /* "" when none */
};

/* The pure part: one stage of the check on the facts. 0 when it passes (with a progress
 * sentence in `detail` where there is one), a negative errno with the reason otherwise. */
int health_export_judge(const struct health_export_facts *f, enum health_stage stage,
			struct strbuf *detail);

/* Registers `export:<storage>` for every storage of `s`, checked every interval_us; the
 * ladder is isolate (close our end of the socket: the kernel holds its requests) → retry
 * (a re-check after a pause) → reload (re-export on the same /dev/nbdN) → needs-operator.
 * health_export_free() unregisters them (before the health engine and the storage go). */
int health_export_register(struct health *h, struct storage *s, uint64_t interval_us,
			   struct health_export **ret);
struct health_export *health_export_free(struct health_export *he);
