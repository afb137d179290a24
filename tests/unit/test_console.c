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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* Runs the loop for ms milliseconds; returns the CPU time it took, in % of the wall. */
static int cpu_pct_running(struct loop *l, int ms)
{
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	uint64_t t0 = now_usec(), until = t0 + (uint64_t)ms * USEC_PER_MSEC;
	for (int i = 0; i < 100000 && now_usec() < until; i++)
		loop_iterate(l, now_usec() + 50 * USEC_PER_MSEC);
	getrusage(RUSAGE_SELF, &r1);
	uint64_t cpu = (uint64_t)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
				  r0.ru_stime.tv_sec) *
			   USEC_PER_SEC +
		       (uint64_t)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
				  r0.ru_stime.tv_usec);
	return (int)(100 * cpu / (now_usec() - t0));
}

/* Sixteen clients at most: the seventeenth gets an error line and is closed. */
static void test_client_cap(void **state)
{
	struct served v;
	served_open(&v);
	int fds[17];
	for (int i = 0; i < 17; i++) {
		fds[i] = connect_to(v.path);
		for (int k = 0; k < 3; k++)
			loop_iterate(v.l, now_usec() + 5 * USEC_PER_MSEC);
	}
	struct strbuf got;
	sb_init(&got);
	read_answer(&v, fds[16], &got);
	assert_non_null(got.buf);
	assert_non_null(strstr(got.buf, "error: too many console clients"));
	sb_free(&got);
	/* One leaves: a new client is served. */
	close(fds[0]);
	close(fds[16]);
	for (int k = 0; k < 3; k++)
		loop_iterate(v.l, now_usec() + 5 * USEC_PER_MSEC);
	int fd = connect_to(v.path);
	assert_int_equal(write(fd, "help\n", 5), 5);
	sb_init(&got);
	read_answer(&v, fd, &got);
	assert_non_null(strstr(got.buf, "a long answer"));
	sb_free(&got);
	close(fd);
	for (int i = 1; i < 16; i++)
		close(fds[i]);
	for (int k = 0; k < 5; k++) /* the hang-ups free the clients */
		loop_iterate(v.l, now_usec() + 5 * USEC_PER_MSEC);
	served_close(&v);
}

/* Out of descriptors, a pending connection must not spin the loop; once descriptors are
 * back, it is served. */
static void test_emfile_does_not_spin(void **state)
{
	struct served v;
	served_open(&v);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", v.path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int top = dup(0); /* the lowest free descriptor: nothing new may be opened */
	assert_true(top > fd);
	close(top);
	low = (struct rlimit){.rlim_cur = (rlim_t)top, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int pct = cpu_pct_running(v.l, 600);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	print_message("CPU while out of descriptors: %d%%\n", pct);
	assert_true(pct < 30);
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
	    cmocka_unit_test(test_client_cap),
	    cmocka_unit_test(test_emfile_does_not_spin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
