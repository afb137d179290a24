/* The Linux watchdog device the election holds for fencing (SPEC §7 Fencing), as sbd does:
 * opened once, its timeout set, petted only while the caller says everything is in order;
 * closed with the magic 'V' (which disarms it) only on a clean stop. A process killed, a
 * loop that stops running, or a master whose lease lapsed with its demote hook unfinished
 * stops the pets, and the node resets within the timeout.
 *
 * A path that is not a character device (a FIFO or file in host-mode tests) is written
 * to the same way, without the ioctls: it shows the pet cadence and the magic close. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct watchdog;

/* Opens path and sets its timeout (whole seconds, rounded up; the device may choose a
 * longer one). Returns 0 or -errno. */
int watchdog_open(const char *path, uint64_t timeout_us, struct watchdog **ret);
/* The timeout in force (µs). */
uint64_t watchdog_timeout(const struct watchdog *w);
const char *watchdog_path(const struct watchdog *w);
/* One keep-alive. Returns 0 or -errno. */
int watchdog_pet(struct watchdog *w);
/* clean: write the magic 'V' first, which disarms the device; otherwise it stays armed
 * and resets the node when the timeout runs out. Returns NULL. */
struct watchdog *watchdog_close(struct watchdog *w, bool clean);
