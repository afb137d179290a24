/* Logging: event lines, the ring of recent lines, subscribers, levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"

#include <string.h>

struct seen {
	char last[512];
	int events;
	int lines;
};

static void on_line(const struct log_line *l, void *ud)
{
	struct seen *s = ud;
	snprintf(s->last, sizeof(s->last), "%s", l->text);
	s->lines++;
	s->events += l->is_event;
}

static void events_and_subscribers(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	struct seen s = {0};
	int id = log_subscribe(on_line, &s);
	assert_true(id >= 0);
	struct event ev;
	event_begin(&ev, "role");
	event_add(&ev, "pair", "p1");
	event_add(&ev, "reason", "master timeout");
	event_add_u64(&ev, "epoch", 7);
	event_emit(&ev);
	assert_string_equal(s.last, "event=role pair=p1 reason=\"master timeout\" epoch=7");
	assert_int_equal(s.events, 1);
	log_info("plain %d", 1);
	assert_string_equal(s.last, "plain 1");
	assert_int_equal(s.events, 1);
	log_debug("not shown at the default level");
	assert_int_equal(s.lines, 2);
	assert_int_equal(log_warn_errno(-ENOENT, "open %s", "x"), -ENOENT);
	assert_string_equal(s.last, "open x: No such file or directory");
	log_unsubscribe(id);
	log_info("after");
	assert_int_equal(s.lines, 3);
}

struct collect {
	char lines[8][512];
	int n;
};

static void on_ring(const struct log_line *l, void *ud)
{
	struct collect *c = ud;
	if (c->n < 8)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", l->text);
}

static void ring_keeps_the_newest(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	for (int i = 0; i < 5000; i++)
		log_info("line %d", i);
	struct collect c = {0};
	log_ring_foreach(3, on_ring, &c);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.lines[0], "line 4997");
	assert_string_equal(c.lines[2], "line 4999");
	assert_int_equal(log_ring_count(), 2048);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(events_and_subscribers),
	    cmocka_unit_test(ring_keeps_the_newest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
