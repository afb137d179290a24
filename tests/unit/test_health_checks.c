/* The built-in health checks, each with its failure injected for real: the config
 * file edited (valid → reload → recovered; invalid → needs-operator; fixed → recovered),
 * the clock stepped backwards and unset, the console socket file removed. Each must
 * show failed → isolate → remedy → one summary line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "agent_fixture.h"

static struct strbuf events;

static void on_line(const struct log_line *l, void *ud)
{
	if (l->is_event && !strncmp(l->text, "event=health ", 13)) {
		sb_puts(&events, l->text);
		sb_putc(&events, '\n');
	}
}

static void advance(struct fixture *f, uint64_t us)
{
	fix_mono += us;
	fix_rt += us;
	sb_reset(&events);
	health_run_due(f->a.env.health, fix_mono);
}

static void append(const char *path, const char *text)
{
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void replace(const char *path, const char *old, const char *new)
{
	char *text;
	size_t len;
	assert_int_equal(read_full_file(path, 1 << 20, &text, &len), 0);
	char *at = strstr(text, old);
	assert_non_null(at);
	struct strbuf sb;
	sb_init(&sb);
	sb_put(&sb, text, (size_t)(at - text));
	sb_puts(&sb, new);
	sb_puts(&sb, at + strlen(old));
	fixture_write(path, sb.buf, sb.len);
	sb_free(&sb);
	free(text);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_config(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	advance(&f, 0);
	assert_int_equal(health_find(f.a.env.health, "config", "cluster")->state, HEALTH_STATE_OK);
	uint64_t version = f.a.env.cfg->version;

	/* A valid edit: the running hash no longer matches → reload (the SIGHUP path). */
	replace(f.conf, "handshake_window = 3s\n",
		"handshake_window = 4s # an operator was here\n");
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf,
			       "event=health component=config:cluster state=failed "
			       "stage=integrity action=isolate reason=\"file changed: blake2b "));
	assert_non_null(strstr(events.buf, "event=health component=config:cluster state=recovered "
					   "stage=integrity action=reload\n"));
	assert_int_equal(count(events.buf, "event=health"), 2);
	assert_int_equal(f.a.env.cfg->timeouts.handshake_window, 4 * USEC_PER_SEC);
	assert_int_equal(f.a.env.cfg->version, version);

	/* An invalid edit: parses fails, the reload is refused, the old config stays. */
	struct cfg *before = f.a.env.cfg;
	append(f.conf, "colour = red\n");
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf,
			       "component=config:cluster state=failed stage=parses action=isolate "
			       "reason=\""));
	assert_non_null(strstr(events.buf, "colour"));
	assert_non_null(strstr(events.buf,
			       "component=config:cluster state=needs-operator stage=parses "
			       "action=reload"));
	assert_int_equal(count(events.buf, "event=health"), 2);
	assert_ptr_equal(f.a.env.cfg, before);
	assert_string_equal(health_overall(f.a.env.health), "needs-operator");

	/* Nothing changes: no new lines. */
	advance(&f, 5 * USEC_PER_SEC);
	assert_int_equal(events.len, 0);

	/* The operator fixes the file (a different failure, then a fix): reloaded. */
	replace(f.conf, "colour = red\n", "");
	replace(f.conf, "handshake_window = 4s", "handshake_window = 5s");
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf, "component=config:cluster state=recovered"));
	assert_int_equal(f.a.env.cfg->timeouts.handshake_window, 5 * USEC_PER_SEC);
	assert_string_equal(health_overall(f.a.env.health), "ok");

	/* The file disappears: reachable fails, reload cannot help. */
	unlink(f.conf);
	advance(&f, 5 * USEC_PER_SEC);
	assert_non_null(
	    strstr(events.buf, "component=config:cluster state=failed stage=reachable"));
	assert_non_null(
	    strstr(events.buf, "component=config:cluster state=needs-operator stage=reachable"));
	fixture_close(&f);
}

/* Bytes this process read so far (/proc/self/io rchar). */
static uint64_t bytes_read(void)
{
	char *text;
	size_t len;
	unsigned long long v = 0;
	assert_int_equal(read_full_file("/proc/self/io", 4096, &text, &len), 0);
	assert_int_equal(sscanf(text, "rchar: %llu", &v), 1);
	free(text);
	return v;
}

/* A file that is old enough and unchanged (by stat) is neither read nor hashed again each
 * health_interval (O(N) bytes at 512 nodes); an edit is still seen at the next check. */
static void test_config_stable(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	fix_rt = realtime_usec() + 60 * USEC_PER_SEC; /* the file is a minute old */
	advance(&f, 0);
	struct health_component *c = health_find(f.a.env.health, "config", "cluster");
	assert_int_equal(c->state, HEALTH_STATE_OK);
	uint64_t size = 0, checks = c->checks;
	struct stat st;
	assert_int_equal(stat(f.conf, &st), 0);
	size = (uint64_t)st.st_size;
	uint64_t before = bytes_read();
	advance(&f, 5 * USEC_PER_SEC);
	uint64_t delta = bytes_read() - before;
	assert_int_equal(c->checks, checks + 1); /* checked */
	assert_int_equal(c->state, HEALTH_STATE_OK);
	assert_true(delta < size); /* but the file was not read */
	assert_non_null(strstr(c->detail, "version "));

	/* An edit (another size, another time): read, parsed, refused. */
	append(f.conf, "colour = red\n");
	advance(&f, 5 * USEC_PER_SEC);
	assert_non_null(strstr(events.buf, "component=config:cluster state=failed stage=parses"));
	fixture_close(&f);
}

static void test_clock(void **state)
{
	struct fixture f;
	fixture_open(&f, false);
	advance(&f, 0);
	/* Drift inside the tolerance is fine. */
	fix_rt += 300 * USEC_PER_MSEC;
	advance(&f, 5 * USEC_PER_SEC);
	assert_int_equal(events.len, 0);
	assert_string_equal(health_find(f.a.env.health, "clock", "realtime")->detail,
			    "drift 300 ms");
	/* A jump backwards: alert, re-anchor, recovered. */
	fix_rt -= 90 * USEC_PER_SEC;
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_string_equal(
	    events.buf,
	    "event=health component=clock:realtime state=failed stage=integrity action=isolate "
	    "reason=\"realtime jumped backwards by 89700 ms\"\n"
	    "event=health component=clock:realtime state=recovered stage=integrity "
	    "action=reload\n");
	advance(&f, 5 * USEC_PER_SEC);
	assert_int_equal(events.len, 0);
	/* A clock back at 1970 cannot be fixed by re-anchoring: an operator must set it. */
	fix_rt = 5 * USEC_PER_SEC;
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf, "component=clock:realtime state=failed stage=parses"));
	assert_non_null(strstr(events.buf,
			       "component=clock:realtime state=needs-operator stage=parses "
			       "action=reload reason=\"the realtime clock is not set"));
	fixture_close(&f);
}

static bool can_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void test_socket(void **state)
{
	struct fixture f;
	fixture_open(&f, true);
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/console.sock", f.dir);
	advance(&f, 0);
	assert_int_equal(health_find(f.a.env.health, "console", "socket")->state, HEALTH_STATE_OK);
	/* Someone removes the socket file: the console is unreachable for compartctl. */
	assert_int_equal(unlink(sock), 0);
	assert_false(can_connect(sock));
	advance(&f, 5 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf, "event=health component=console:socket state=failed "
					   "stage=reachable action=none reason="));
	assert_non_null(strstr(events.buf, "event=health component=console:socket state=recovered "
					   "stage=reachable action=restart\n"));
	assert_true(can_connect(sock));
	/* And it answers commands again. */
	char *out = fixture_run(&f, "help", NULL);
	assert_non_null(strstr(out, "health"));
	free(out);
	fixture_close(&f);
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	sb_init(&events);
	log_subscribe(on_line, NULL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),
	    cmocka_unit_test(test_config_stable),
	    cmocka_unit_test(test_clock),
	    cmocka_unit_test(test_socket),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	sb_free(&events);
	return r;
}
