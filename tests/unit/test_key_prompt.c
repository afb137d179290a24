/* The serial line's secret prompt (serial_ask_secret, what `key install` uses) on a pty:
 * the prompt shown, the typed secret never echoed nor redrawn with the next prompt, handed
 * over whole on Enter, NULL on Ctrl-C, an event line printed while it is typed does not
 * show it, and a request from the socket side (not serial) is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>

#include "console.h"
#include "log.h"
#include "serial.h"

#include <sodium.h>

struct rig {
	struct loop *loop;
	struct console *console;
	struct serial *serial;
	int master;
	struct strbuf raw;
	char got[SERIAL_LINE_MAX + 1];
	int answers; /* secrets handed over (a NULL counts too) */
	bool got_null;
	int ask_r;
};

static void pump(struct rig *r)
{
	for (int i = 0; i < 20; i++) {
		loop_iterate(r->loop, now_usec() + 5000);
		char buf[4096];
		ssize_t n;
		while ((n = read(r->master, buf, sizeof(buf))) > 0)
			sb_put(&r->raw, buf, (size_t)n);
	}
}

static void type(struct rig *r, const char *s)
{
	assert_int_equal(write(r->master, s, strlen(s)), (ssize_t)strlen(s));
	pump(r);
}

static void on_secret(struct console_req *req, const char *secret, void *ud)
{
	struct rig *r = ud;
	r->answers++;
	r->got_null = !secret;
	snprintf(r->got, sizeof(r->got), "%s", secret ? secret : "");
	sb_printf(&req->out, "taken\n");
	console_req_done(req);
}

static int cmd_ask(struct console_req *req, void *ud)
{
	struct rig *r = ud;
	r->ask_r = serial_ask_secret(req, "secret (not echoed): ", on_secret, r);
	if (r->ask_r < 0) {
		console_req_error(req, "not here");
		return r->ask_r;
	}
	return CONSOLE_ASYNC;
}

static void rig_open(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	sb_init(&r->raw);
	r->loop = loop_new();
	assert_int_equal(console_new(r->loop, &r->console), 0);
	console_register(r->console, "ask", "", "ask a secret", cmd_ask, r);
	r->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(r->master >= 0);
	assert_int_equal(grantpt(r->master), 0);
	assert_int_equal(unlockpt(r->master), 0);
	int slave = open(ptsname(r->master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(slave >= 0);
	fcntl(r->master, F_SETFL, O_NONBLOCK);
	assert_int_equal(serial_attach_fd(r->console, r->loop, slave, "a1", &r->serial), 0);
	pump(r);
}

static void rig_close(struct rig *r)
{
	serial_free(r->serial);
	console_free(r->console);
	loop_free(r->loop);
	close(r->master);
	sb_free(&r->raw);
}

static void test_secret_not_echoed(void **state)
{
	struct rig r;
	rig_open(&r);
	type(&r, "ask\r");
	assert_non_null(strstr(r.raw.buf, "ask\r\nsecret (not echoed): "));
	type(&r, "0123456789ab");
	log_msg(LOG_LVL_WARN, "event=something while typing"); /* printed, the secret not */
	pump(&r);
	type(&r, "cdef\x7fZ\r");
	assert_int_equal(r.answers, 1);
	assert_false(r.got_null);
	assert_string_equal(r.got, "0123456789abcdeZ");
	assert_null(strstr(r.raw.buf, "0123"));
	assert_null(strstr(r.raw.buf, "cde"));
	assert_non_null(strstr(r.raw.buf, "taken\r\ncompartd a1> "));
	/* the console is back: a normal line is echoed again */
	type(&r, "help\r");
	assert_non_null(strstr(r.raw.buf, "compartd a1> help\r\n"));
	assert_int_equal(r.answers, 1);
	rig_close(&r);
}

static void test_secret_cancelled(void **state)
{
	struct rig r;
	rig_open(&r);
	type(&r, "ask\r");
	type(&r, "hidden\x03");
	assert_int_equal(r.answers, 1);
	assert_true(r.got_null);
	assert_null(strstr(r.raw.buf, "hidden"));
	assert_non_null(strstr(r.raw.buf, "^C\r\ntaken\r\n"));
	rig_close(&r);
}

static void finish_noop(struct console_req *req)
{
	(void)req;
}

static void test_socket_refused(void **state)
{
	struct rig r;
	rig_open(&r);
	struct console_req *pending = NULL;
	/* what the socket does: serial = false, no serial transport */
	assert_true(console_exec(r.console, "ask", false, finish_noop, NULL, &pending) >= 0);
	assert_int_equal(r.ask_r, -EPERM);
	assert_int_equal(r.answers, 0);
	rig_close(&r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_secret_not_echoed),
					   cmocka_unit_test(test_secret_cancelled),
					   cmocka_unit_test(test_socket_refused)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
