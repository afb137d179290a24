/* The boot waiter: its back-off schedule, its progress schedule, and one wait in a loop
 * that says its reason once and calls done when the step succeeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"
#include "waiter.h"

#include <string.h>

static void backoff_doubles_to_the_cap(void **state)
{
	struct backoff b = {0};
	static const uint64_t ms[] = {250, 500, 1000, 2000, 4000, 5000, 5000};
	for (size_t i = 0; i < ARRAY_SIZE(ms); i++)
		assert_int_equal(backoff_next(&b), ms[i] * USEC_PER_MSEC);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b), BACKOFF_MIN_US);
}

static void progress_at_10_20_40_then_capped(void **state)
{
	uint64_t next = 0, s = USEC_PER_SEC;
	assert_false(waiter_progress_due(9 * s, &next));
	assert_true(waiter_progress_due(10 * s, &next));
	assert_false(waiter_progress_due(15 * s, &next));
	assert_true(waiter_progress_due(21 * s, &next));
	assert_int_equal(next, 40 * s);
	/* a long silence (the loop was busy) gives one line, not a burst */
	assert_true(waiter_progress_due(700 * s, &next));
	assert_false(waiter_progress_due(700 * s, &next));
	uint64_t gap = next - 700 * s;
	assert_true(gap <= WAITER_MAX_REPORT_GAP_US);
	next = 640 * s;
	assert_true(waiter_progress_due(640 * s, &next));
	assert_int_equal(next, 940 * s); /* every 5 minutes from here */
}

struct wctx {
	int fail_until; /* attempts that fail */
	int tries, done;
	struct loop *l;
};

static int try_step(void *ud, struct strbuf *why)
{
	struct wctx *c = ud;
	if (++c->tries > c->fail_until)
		return 0;
	sb_puts(why, "the thing is not there");
	return -EAGAIN;
}

static void on_done(void *ud)
{
	struct wctx *c = ud;
	c->done++;
	loop_quit(c->l, 0);
}

static int waiting_lines;
static int waited_lines;
static void count_lines(const struct log_line *l, void *ud)
{
	if (strstr(l->text, "event=boot stage=test waiting=\"the thing is not there\""))
		waiting_lines++;
	if (strstr(l->text, "event=boot stage=test waited_s="))
		waited_lines++;
}

static void waits_says_once_and_continues(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	/* fails at 0, 0.25, 0.75 s (within the grace: not told) and 1.75 s, works at 3.75 s */
	struct wctx c = {.fail_until = 4, .l = loop_new()};
	int id = log_subscribe(count_lines, NULL);
	struct waiter *w = waiter_new(c.l, "test", try_step, on_done, &c);
	assert_non_null(w);
	waiter_start(w);
	assert_int_equal(c.tries, 0); /* the first attempt runs in the loop */
	uint64_t t0 = now_usec();
	assert_int_equal(loop_run(c.l), 0);
	uint64_t took = now_usec() - t0;
	assert_int_equal(c.tries, 5);
	assert_int_equal(c.done, 1);
	assert_int_equal(waiting_lines, 1);
	assert_int_equal(waited_lines, 1);
	assert_false(waiter_waiting(w));
	assert_null(waiter_reason(w));
	/* 250 + 500 + 1000 + 2000 ms of back-off, with room for a loaded machine */
	assert_true(took >= 3700 * USEC_PER_MSEC && took < 15 * USEC_PER_SEC);
	/* a short wait is not told at all */
	c.tries = 0;
	c.fail_until = 2;
	waiter_start(w);
	assert_int_equal(loop_run(c.l), 0);
	assert_int_equal(c.tries, 3);
	assert_int_equal(waiting_lines, 1);
	assert_int_equal(waited_lines, 1);
	log_unsubscribe(id);
	waiter_free(w);
	loop_free(c.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backoff_doubles_to_the_cap),
	    cmocka_unit_test(progress_at_10_20_40_then_capped),
	    cmocka_unit_test(waits_says_once_and_continues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
