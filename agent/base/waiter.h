/* Waiting at boot for a fault that heals by itself (SPEC §1, §11): a missing link, an
 * address not yet assignable, DHCP silent. A waiter retries a step with a bounded back-off
 * (250 ms doubling to 5 s) from the loop, so the console is served meanwhile, and says on
 * the console what it waits for once, then only its progress:
 *
 *   event=boot stage=<stage> waiting="<reason>"          after 1 s of waiting, and on a new reason
 *   event=boot stage=<stage> still_waiting_s=<s> attempts=<n>   after 10, 20, 40 … s (≤ 5 min
 * apart) event=boot stage=<stage> waited_s=<s> attempts=<n>   when it succeeded after a told wait
 *
 * The schedule (backoff_*, waiter_progress_due) is pure: it takes the time as argument. */
#pragma once

#include "loop.h"
#include "util.h"

#define BACKOFF_MIN_US (250 * USEC_PER_MSEC)
#define BACKOFF_MAX_US (5 * USEC_PER_SEC)
#define WAITER_FIRST_REPORT_US (10 * USEC_PER_SEC)
#define WAITER_MAX_REPORT_GAP_US (300 * USEC_PER_SEC)
#define WAITER_GRACE_US (1 * USEC_PER_SEC) /* a wait shorter than this is not told */
#define WAITER_WAKE_MIN_GAP_US (50 * USEC_PER_MSEC)

struct backoff {
	uint64_t next_us; /* the delay the next call returns */
};
/* The delay before the next attempt: 250 ms, 500 ms, 1 s … at most 5 s. */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

/* Given the time waited so far and the waited time at which progress is next due
 * (0 before the first report), returns true when a progress line is due now and moves
 * *next_due on (10 s, 20 s, 40 s … then every 5 min). */
bool waiter_progress_due(uint64_t waited_us, uint64_t *next_due);

/* One attempt: 0 when the step is done, a negative errno while it must wait; then `why`
 * holds what it waits for (one line). */
typedef int (*waiter_try_fn)(void *ud, struct strbuf *why);
/* Called from the loop once the step succeeded; it may call waiter_start() again. */
typedef void (*waiter_done_fn)(void *ud);

struct waiter;
/* `stage` names the boot stage in the event lines (a static string). NULL on ENOMEM. */
struct waiter *waiter_new(struct loop *l, const char *stage, waiter_try_fn try_fn,
			  waiter_done_fn done, void *ud);
/* The first attempt runs in the loop's next iteration; on failure it retries from the
 * loop until the step is done. */
void waiter_start(struct waiter *w);
/* Something changed that may have healed the fault (a link or an address, see
 * netcfg_monitor_open): while waiting, the next attempt runs now instead of at its
 * back-off (at most one attempt per 50 ms). Does nothing when not waiting. */
void waiter_wake(struct waiter *w);
/* As waiter_start, but the first attempt runs now, within this call (done() too). */
void waiter_try_now(struct waiter *w);
bool waiter_waiting(const struct waiter *w);
/* What it waits for, or NULL when not waiting. */
const char *waiter_reason(const struct waiter *w);
struct waiter *waiter_free(struct waiter *w);
