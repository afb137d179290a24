/* The console's unix socket: a client that does not read its answer must not stall the
 * loop (heartbeats run on it), and it still gets the whole answer when it reads. */
#include "console.h"
#include "loop.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BIG (4u << 20) /* far more than a unix socket buffers */

static int cmd_big(struct console_req *req, void *ud)
{
	for (unsigned i = 0; i < BIG / 64; i++)
		sb_printf(&req->out, "%062u\n", i);
	return 0;
}

static void on_tick(struct timer *t, void *ud)
{
	(*(int *)ud)++;
	timer_arm_in(t, 10 * USEC_PER_MSEC);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* A console on a fresh socket path, serving `big` (and `help`). */
struct served {
	char dir[32], path[64];
	struct loop *l;
	struct console *c;
};

static void served_open(struct served *v)
{
	*v = (struct served){.dir = "/tmp/compartd-console.XXXXXX"};
	assert_non_null(mkdtemp(v->dir));
	snprintf(v->path, sizeof(v->path), "%s/console.sock", v->dir);
	v->l = loop_new();
	assert_int_equal(console_new(v->l, &v->c), 0);
	assert_int_equal(console_register(v->c, "big", "", "a long answer", cmd_big, NULL), 0);
	assert_int_equal(console_listen(v->c, v->path), 0);
}

static void served_close(struct served *v)
{
	console_free(v->c);
	loop_free(v->l);
	rmdir(v->dir);
}

/* Reads the answer to its end of file, running the loop while nothing is there (20 s). */
static void read_answer(struct served *v, int fd, struct strbuf *out)
{
	char buf[65536];
	uint64_t until = now_usec() + 20 * USEC_PER_SEC;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n > 0) {
			sb_put(out, buf, (size_t)n);
			continue;
		}
		assert_true(errno == EAGAIN);
		assert_true(now_usec() < until);
		loop_iterate(v->l, now_usec() + 10 * USEC_PER_MSEC);
	}
}

static void test_slow_reader(void **state)
{
	struct served v;
	served_open(&v);
	int ticks = 0;
	struct timer *tick = timer_new(v.l, on_tick, &ticks);
	timer_arm_in(tick, 10 * USEC_PER_MSEC);

	int fd = connect_to(v.path);
	assert_int_equal(write(fd, "big\n", 4), 4);
	/* The client reads nothing: the loop must go on ticking. */
	uint64_t until = now_usec() + 5 * USEC_PER_SEC;
	while (ticks < 5 && now_usec() < until)
		loop_iterate(v.l, now_usec() + 20 * USEC_PER_MSEC);
	assert_true(ticks >= 5);

	/* Now it reads: the whole answer arrives, then end of file. */
	struct strbuf got;
	sb_init(&got);
	read_answer(&v, fd, &got);
	assert_int_equal(got.len, BIG / 64 * 63); /* lines of 62 digits and a newline */
	char want[64];
	snprintf(want, sizeof(want), "%062u\n", BIG / 64 - 1);
	assert_memory_equal(got.buf + got.len - 63, want, 63);
	sb_free(&got);
	close(fd);
	timer_free(tick);
	served_close(&v);
}

/* A client that hangs up with most of its answer unread is let go; the loop and other
 * clients go on. */
static void test_client_hangs_up(void **state)
{
	struct served v;
	served_open(&v);
	int fd = connect_to(v.path);
	assert_int_equal(write(fd, "big\n", 4), 4);
	for (int i = 0; i < 5; i++)
		loop_iterate(v.l, now_usec() + 10 * USEC_PER_MSEC);
	close(fd); /* gone with most of its answer unread */
	for (int i = 0; i < 5; i++)
		loop_iterate(v.l, now_usec() + 10 * USEC_PER_MSEC);
	/* Another client is served as usual. */
	fd = connect_to(v.path);
	assert_int_equal(write(fd, "help\n", 5), 5);
	struct strbuf got;
	sb_init(&got);
	read_answer(&v, fd, &got);
	assert_non_null(got.buf);
	assert_non_null(strstr(got.buf, "a long answer"));
	sb_free(&got);
	close(fd);
	served_close(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slow_reader),
	    cmocka_unit_test(test_client_hangs_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
