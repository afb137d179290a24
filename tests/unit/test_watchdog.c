/* agent/watchdog.c on a FIFO (never the host's real watchdog: one left armed resets the
 * machine): keep-alives are written while petted, the magic 'V' only on a clean close. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"
#include "watchdog.h"

static char dir[64], fifo[96];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_watchdog.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(fifo, sizeof(fifo), "%s/wd", dir);
	return mkfifo(fifo, 0600);
}

static int teardown(void **state)
{
	(void)state;
	unlink(fifo);
	rmdir(dir);
	return 0;
}

static size_t drain(int fd, char *buf, size_t n)
{
	ssize_t r = read(fd, buf, n - 1);

	buf[r > 0 ? r : 0] = '\0';
	return r > 0 ? (size_t)r : 0;
}

static void test_pet_and_clean_close(void **state)
{
	struct watchdog *w = NULL;
	char buf[64];
	int rd = open(fifo, O_RDONLY | O_NONBLOCK);

	(void)state;
	assert_true(rd >= 0);
	assert_int_equal(watchdog_open(fifo, 1500 * USEC_PER_MSEC, &w), 0);
	assert_int_equal(watchdog_timeout(w), 1500 * USEC_PER_MSEC); /* no ioctl on a FIFO */
	assert_string_equal(watchdog_path(w), fifo);
	assert_int_equal(watchdog_pet(w), 0);
	assert_int_equal(watchdog_pet(w), 0);
	w = watchdog_close(w, true);
	assert_null(w);
	drain(rd, buf, sizeof(buf));
	assert_string_equal(buf, "..V");
	close(rd);
}

static void test_unclean_close_stays_armed(void **state)
{
	struct watchdog *w = NULL;
	char buf[64];
	int rd = open(fifo, O_RDONLY | O_NONBLOCK);

	(void)state;
	assert_true(rd >= 0);
	assert_int_equal(watchdog_open(fifo, USEC_PER_SEC, &w), 0);
	assert_int_equal(watchdog_pet(w), 0);
	watchdog_close(w, false);
	drain(rd, buf, sizeof(buf));
	assert_string_equal(buf, "."); /* no magic close */
	close(rd);
}

/* A regular file stands in for the device in host-mode tests: keep-alives append, also
 * after a restart of the agent (a monitor watches it grow). */
static void test_file_appends(void **state)
{
	struct watchdog *w = NULL;
	char path[128], buf[16] = {0};
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/file", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("..V", f);
	fclose(f);
	assert_int_equal(watchdog_open(path, USEC_PER_SEC, &w), 0);
	assert_int_equal(watchdog_pet(w), 0);
	watchdog_close(w, false);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	unlink(path);
	assert_string_equal(buf, "..V.");
}

static void test_missing_device(void **state)
{
	struct watchdog *w = NULL;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_int_equal(watchdog_open(path, USEC_PER_SEC, &w), -ENOENT);
	assert_null(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pet_and_clean_close),
	    cmocka_unit_test(test_unclean_close_stays_armed),
	    cmocka_unit_test(test_file_appends),
	    cmocka_unit_test(test_missing_device),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
