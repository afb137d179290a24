/* Health checks of the local disks the disks stage selected (SPEC §8): each disk is a
 * component `disk:<name>`: the device is there (reachable) → it has a partition table
 * libblkid reads, or is blank (parses) → the table matches the layout the stage planned
 * (integrity). The remedy is the disks stage itself (rebuild): it partitions a blank
 * replacement disk and leaves a foreign one alone, which then needs an operator
 * (approve-wipe). */
#pragma once

#include "health.h"

struct disk_module;

/* Registers every disk of the module's last result. Returns the number registered. */
int health_disks_register(struct health *h, struct disk_module *m);
void health_disks_unregister(struct health *h);
