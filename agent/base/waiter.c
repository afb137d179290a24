#include "waiter.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

uint64_t backoff_next(struct backoff *b)
{
	uint64_t d = b->next_us ? b->next_us : BACKOFF_MIN_US;
	b->next_us = d * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : d * 2;
	return d;
}

void backoff_reset(struct backoff *b)
{
	b->next_us = 0;
}

bool waiter_progress_due(uint64_t waited_us, uint64_t *next_due)
{
	if (!*next_due)
		*next_due = WAITER_FIRST_REPORT_US;
	if (waited_us < *next_due)
		return false;
	uint64_t gap = *next_due > WAITER_MAX_REPORT_GAP_US ? WAITER_MAX_REPORT_GAP_US : *next_due;
	while (*next_due <= waited_us)
		*next_due += gap;
	return true;
}

struct waiter {
	struct loop *loop;
	struct timer *t;
	const char *stage;
	waiter_try_fn try_fn;
	waiter_done_fn done;
	void *ud;
	struct backoff b;
	uint64_t since_us; /* 0: not waiting */
	uint64_t last_try_us;
	uint64_t next_report;
	unsigned attempts;
	struct strbuf reason; /* what it waits for now */
	struct strbuf said;   /* what the console was told */
};

static void emit_waiting(struct waiter *w, const char *why)
{
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "stage", w->stage);
	event_add(&ev, "waiting", why);
	event_emit(&ev);
}

static void emit_progress(struct waiter *w, const char *key, uint64_t waited_us)
{
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "stage", w->stage);
	event_addf(&ev, key, "%.1f", (double)waited_us / 1e6);
	event_add_u64(&ev, "attempts", w->attempts);
	event_emit(&ev);
}

/* A failed attempt: say the reason when it is new (and the wait is past its grace),
 * else the progress when due. */
static void note_failure(struct waiter *w, const char *why, uint64_t now)
{
	if (!w->since_us)
		w->since_us = now ? now : 1;
	sb_reset(&w->reason);
	sb_puts(&w->reason, why);
	if (now - w->since_us < WAITER_GRACE_US)
		return;
	if (!w->said.len || strcmp(w->said.buf, why) != 0) {
		emit_waiting(w, why);
		sb_reset(&w->said);
		sb_puts(&w->said, why);
	} else if (waiter_progress_due(now - w->since_us, &w->next_report)) {
		emit_progress(w, "still_waiting_s", now - w->since_us);
	}
}

static void attempt(struct waiter *w)
{
	struct strbuf why;
	sb_init(&why);
	w->attempts++;
	int r = w->try_fn(w->ud, &why);
	uint64_t now = now_usec();
	w->last_try_us = now;
	if (r >= 0) {
		if (w->said.len)
			emit_progress(w, "waited_s", now - w->since_us);
		w->since_us = 0;
		sb_reset(&w->reason);
		sb_reset(&w->said);
		sb_free(&why);
		w->done(w->ud);
		return;
	}
	note_failure(w, why.buf && why.buf[0] ? why.buf : strerror(-r), now);
	sb_free(&why);
	timer_arm_in(w->t, backoff_next(&w->b));
}

static void on_timer(struct timer *t, void *ud)
{
	attempt(ud);
}

struct waiter *waiter_new(struct loop *l, const char *stage, waiter_try_fn try_fn,
			  waiter_done_fn done, void *ud)
{
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct waiter){.loop = l, .stage = stage, .try_fn = try_fn, .done = done, .ud = ud};
	sb_init(&w->reason);
	sb_init(&w->said);
	w->t = timer_new(l, on_timer, w);
	if (!w->t) {
		free(w);
		return NULL;
	}
	return w;
}

void waiter_start(struct waiter *w)
{
	backoff_reset(&w->b);
	w->attempts = 0;
	w->next_report = 0;
	timer_arm(w->t, now_usec());
}

void waiter_wake(struct waiter *w)
{
	if (!waiter_waiting(w))
		return;
	uint64_t soonest = w->last_try_us + WAITER_WAKE_MIN_GAP_US;
	if (timer_deadline(w->t) > soonest)
		timer_arm(w->t, soonest);
}

void waiter_try_now(struct waiter *w)
{
	backoff_reset(&w->b);
	w->attempts = 0;
	w->next_report = 0;
	attempt(w);
}

bool waiter_waiting(const struct waiter *w)
{
	return w && w->since_us;
}

const char *waiter_reason(const struct waiter *w)
{
	return waiter_waiting(w) ? w->reason.buf : NULL;
}

struct waiter *waiter_free(struct waiter *w)
{
	if (!w)
		return NULL;
	timer_free(w->t);
	sb_free(&w->reason);
	sb_free(&w->said);
	free(w);
	return NULL;
}
