/* spawn: what a child starts with, whatever the agent's own signal state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop.h"
#include "spawn.h"
#include "util.h"

#include <signal.h>
#include <string.h>

struct result {
	bool done;
	int status;
};

static void on_done(struct spawn *sp, int status, bool timed_out, void *ud)
{
	struct result *r = ud;
	(void)timed_out;
	r->done = true;
	r->status = status;
	spawn_free(sp);
}

/* In the child: 0 when SIGPIPE has its default action and no signal is blocked. */
static int child_checks(void *ud)
{
	(void)ud;
	struct sigaction sa;
	sigset_t blocked;
	if (sigaction(SIGPIPE, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
		return 3;
	if (sigprocmask(SIG_SETMASK, NULL, &blocked) < 0 || sigismember(&blocked, SIGTERM))
		return 4;
	return 0;
}

/* The agent ignores SIGPIPE (main.c: a peer gone is an EPIPE, not its death) and blocks
 * the signals of its signalfd; a hook must start with neither, or a pipeline in it would
 * not end when its reader does. */
static void child_gets_default_sigpipe(void **state)
{
	(void)state;
	struct sigaction old;
	sigaction(SIGPIPE, NULL, &old);
	signal(SIGPIPE, SIG_IGN);
	sigset_t set, oldmask;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &oldmask);

	struct loop *l = loop_new();
	assert_non_null(l);
	struct result r = {0};
	struct spawn *sp = spawn_start(l, 10 * USEC_PER_SEC, child_checks, NULL, on_done, &r);
	assert_non_null(sp);
	uint64_t end = now_usec() + 10 * USEC_PER_SEC;
	while (!r.done && now_usec() < end)
		loop_iterate(l, end);
	assert_true(r.done);
	assert_int_equal(r.status, 0);
	loop_free(l);

	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	sigaction(SIGPIPE, &old, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(child_gets_default_sigpipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
