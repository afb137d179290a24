/* The event loop: timer order, removal of another watch inside a callback, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop.h"
#include "util.h"

#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>

struct order {
	int fired[16];
	int n;
};

struct tctx {
	struct order *o;
	int id;
	struct timer *t;
};

static void on_timer(struct timer *t, void *ud)
{
	struct tctx *c = ud;
	c->o->fired[c->o->n++] = c->id;
}

static void timers_fire_in_deadline_order(void **state)
{
	struct loop *l = loop_new();
	struct order o = {0};
	/* deadlines relative to now, ids show the expected order */
	static const int delays_ms[] = {30, 10, 20, 10, 0, 25};
	static const int expect[] = {4, 1, 3, 2, 5, 0};
	struct tctx ctx[6];
	uint64_t now = now_usec();
	for (int i = 0; i < 6; i++) {
		ctx[i] = (struct tctx){.o = &o, .id = i};
		ctx[i].t = timer_new(l, on_timer, &ctx[i]);
		timer_arm(ctx[i].t, now + (uint64_t)delays_ms[i] * 1000);
	}
	uint64_t end = now + 2 * USEC_PER_SEC;
	while (o.n < 6 && now_usec() < end)
		loop_iterate(l, end);
	assert_int_equal(o.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(o.fired[i], expect[i]);
	/* no timer fired early */
	for (int i = 0; i < 6; i++) {
		assert_false(timer_armed(ctx[i].t));
		timer_free(ctx[i].t);
	}
	loop_free(l);
}

static void timer_disarm_and_rearm(void **state)
{
	struct loop *l = loop_new();
	struct order o = {0};
	struct tctx a = {.o = &o, .id = 1}, b = {.o = &o, .id = 2};
	a.t = timer_new(l, on_timer, &a);
	b.t = timer_new(l, on_timer, &b);
	timer_arm_in(a.t, 5000);
	timer_arm_in(b.t, 10000);
	timer_disarm(a.t);
	assert_false(timer_armed(a.t));
	timer_arm_in(b.t, 1000); /* re-arming moves it */
	uint64_t end = now_usec() + 200000;
	while (now_usec() < end)
		loop_iterate(l, end);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.fired[0], 2);
	timer_free(a.t);
	timer_free(b.t);
	loop_free(l);
}

/* Heap stress: many timers with pseudo-random deadlines fire sorted. */
static uint64_t fired_at[512];
static int n_fired;
static void on_stress(struct timer *t, void *ud)
{
	fired_at[n_fired++] = timer_deadline(t);
}

static void timer_heap_keeps_order(void **state)
{
	struct loop *l = loop_new();
	struct timer *ts[512];
	uint64_t now = now_usec();
	uint32_t x = 12345;
	n_fired = 0;
	for (int i = 0; i < 512; i++) {
		x = x * 1103515245 + 12345;
		ts[i] = timer_new(l, on_stress, NULL);
		timer_arm(ts[i], now + (x >> 16) % 50000);
	}
	for (int i = 0; i < 512; i += 3)
		timer_disarm(ts[i]);
	uint64_t end = now + USEC_PER_SEC;
	while (now_usec() < end && n_fired < 341)
		loop_iterate(l, end);
	assert_int_equal(n_fired, 341);
	for (int i = 1; i < n_fired; i++)
		assert_true(fired_at[i - 1] <= fired_at[i]);
	for (int i = 0; i < 512; i++)
		timer_free(ts[i]);
	loop_free(l);
}

struct wctx {
	struct watch *self;
	struct watch **victim;
	int calls;
	int destroyed;
};

static void on_remover(struct watch *w, int fd, uint32_t ev, void *ud)
{
	struct wctx *c = ud;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0)
		return;
	c->calls++;
	if (*c->victim)
		*c->victim = watch_remove(*c->victim);
}

static void on_destroy(void *ud)
{
	((struct wctx *)ud)->destroyed++;
}

/* Two ready watches; whichever runs first removes the other; the other must not run
 * (it was removed during dispatch) and its destroy runs exactly once. */
static void remove_other_watch_during_dispatch(void **state)
{
	struct loop *l = loop_new();
	int e1 = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC),
	    e2 = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	struct watch *w1 = NULL, *w2 = NULL;
	struct wctx c1 = {.victim = &w2}, c2 = {.victim = &w1};
	w1 = watch_add(l, e1, EPOLLIN, on_remover, &c1, on_destroy);
	w2 = watch_add(l, e2, EPOLLIN, on_remover, &c2, on_destroy);
	assert_non_null(w1);
	assert_non_null(w2);
	loop_iterate(l, now_usec() + 100000);
	assert_int_equal(c1.calls + c2.calls, 1);
	assert_int_equal(c1.destroyed + c2.destroyed, 1);
	struct watch *left = w1 ? w1 : w2;
	assert_non_null(left);
	watch_remove(left);
	assert_int_equal(c1.destroyed + c2.destroyed, 2);
	close(e1);
	close(e2);
	loop_free(l);
}

static void on_self_remove(struct watch *w, int fd, uint32_t ev, void *ud)
{
	struct wctx *c = ud;
	c->calls++;
	watch_remove(w);
	/* destroy is deferred until this callback returns */
	assert_int_equal(c->destroyed, 0);
}

static void remove_self_during_dispatch(void **state)
{
	struct loop *l = loop_new();
	int e = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	struct wctx c = {0};
	assert_non_null(watch_add(l, e, EPOLLIN, on_self_remove, &c, on_destroy));
	loop_iterate(l, now_usec() + 100000);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.destroyed, 1);
	loop_iterate(l, now_usec() + 10000);
	assert_int_equal(c.calls, 1);
	close(e);
	loop_free(l);
}

static int got_signo;
static void on_sig(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	got_signo = (int)si->ssi_signo;
	loop_quit(l, 7);
}

static void signal_delivery(void **state)
{
	struct loop *l = loop_new();
	assert_int_equal(loop_add_signal(l, SIGUSR1, on_sig, NULL), 0);
	kill(getpid(), SIGUSR1);
	struct timer *guard = timer_new(l, (timer_fn)(void (*)(void))abort, NULL);
	timer_arm_in(guard, 5 * USEC_PER_SEC);
	assert_int_equal(loop_run(l), 7);
	assert_int_equal(got_signo, SIGUSR1);
	timer_free(guard);
	loop_free(l);
}

static uint64_t prepare_deadline;
static int prepare_calls;
static uint64_t on_prepare(struct loop *l, void *ud)
{
	prepare_calls++;
	return prepare_deadline;
}

/* A prepare hook bounds the sleep even with no timers (libiscsi's service tick). */
static void prepare_hook_bounds_wait(void **state)
{
	struct loop *l = loop_new();
	assert_int_equal(loop_add_prepare(l, on_prepare, NULL), 0);
	uint64_t start = now_usec();
	prepare_deadline = start + 20000;
	loop_iterate(l, UINT64_MAX);
	uint64_t took = now_usec() - start;
	assert_int_equal(prepare_calls, 1);
	assert_true(took >= 19000);
	assert_true(took < 2 * USEC_PER_SEC);
	loop_free(l);
}

/* Timers of the same instant fire in one wake-up: 512 timers, half due at exactly one
 * deadline and half spread over the 900 µs after it (armed one after the other, as a
 * module arming a timer per peer does), all run on the first return of epoll_wait, none
 * before its deadline; a timer 5 ms later is not pulled forward, it takes a second one. */
struct burst {
	int fired, fired_in_first;
	int wakeups;
	bool early;
};
struct btimer {
	struct burst *b;
	struct timer *t;
	struct loop *l;
	uint64_t deadline;
};

static void on_burst(struct timer *t, void *ud)
{
	struct btimer *bt = ud;
	bt->b->fired++;
	if (bt->b->wakeups == 0)
		bt->b->fired_in_first++;
	if (loop_now(bt->l) < bt->deadline)
		bt->b->early = true;
}

static void same_instant_timers_fire_in_one_wakeup(void **state)
{
	enum { N = 512 };
	struct loop *l = loop_new();
	struct burst b = {0};
	static struct btimer bt[N + 1];
	uint64_t base = now_usec() + 20 * USEC_PER_MSEC;
	for (int i = 0; i <= N; i++) {
		uint64_t d = i == N  ? base + 5 * USEC_PER_MSEC
			     : i % 2 ? base
				     : base + (uint64_t)i * 900 / N;
		bt[i] = (struct btimer){.b = &b, .l = l, .deadline = d};
		bt[i].t = timer_new(l, on_burst, &bt[i]);
		timer_arm(bt[i].t, d);
	}
	uint64_t end = now_usec() + 2 * USEC_PER_SEC;
	while (b.fired < N + 1 && b.wakeups < 50 && now_usec() < end) {
		loop_iterate(l, end);
		b.wakeups++;
	}
	printf("%d timers fired in %d wake-ups, %d in the first\n", b.fired, b.wakeups,
	       b.fired_in_first);
	assert_int_equal(b.fired, N + 1);
	assert_int_equal(b.fired_in_first, N);
	assert_int_equal(b.wakeups, 2);
	assert_false(b.early);
	for (int i = 0; i <= N; i++)
		timer_free(bt[i].t);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(timers_fire_in_deadline_order),
	    cmocka_unit_test(timer_disarm_and_rearm),
	    cmocka_unit_test(timer_heap_keeps_order),
	    cmocka_unit_test(remove_other_watch_during_dispatch),
	    cmocka_unit_test(remove_self_during_dispatch),
	    cmocka_unit_test(signal_delivery),
	    cmocka_unit_test(prepare_hook_bounds_wait),
	    cmocka_unit_test(same_instant_timers_fire_in_one_wakeup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
