/* The serial console: the pure line editor (table), and the driver on a pty: a command
 * typed into the master side is answered, and an event line printed while a line is
 * half typed leaves the typed text intact on a simulated dumb terminal. */
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

struct ed_case {
	const char *name;
	const char *input;
	const char *want_echo;
	enum serial_ed_result want_last;
	const char *want_buf;
};

static const struct ed_case ed_cases[] = {
    {"printable", "status", "status", SERIAL_ED_NONE, "status"},
    {"enter with CR", "log 5\r", "log 5\r\n", SERIAL_ED_LINE, "log 5"},
    {"enter with LF", "help\n", "help\r\n", SERIAL_ED_LINE, "help"},
    {"backspace and DEL",
     "x\x08stz\x7f"
     "atus",
     "x\b \bstz\b \batus", SERIAL_ED_NONE, "status"},
    {"backspace on empty line", "\x7f\x7f", "", SERIAL_ED_NONE, ""},
    {"ctrl-u erases the line", "raid\x15", "raid\b \b\b \b\b \b\b \b", SERIAL_ED_NONE, ""},
    {"ctrl-c drops the line", "promote\x03", "promote^C\r\n", SERIAL_ED_CANCEL, ""},
    {"arrow keys are swallowed", "he\x1b[Alp\x1b[D\x1bOP", "help", SERIAL_ED_NONE, "help"},
    {"other control bytes ignored", "a\x01\x02\tb\x80\xff", "ab", SERIAL_ED_NONE, "ab"},
    {"ctrl-l asks for a redraw", "ro\x0c", "ro", SERIAL_ED_REDRAW, "ro"},
};

static void test_edit_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(ed_cases); i++) {
		const struct ed_case *tc = &ed_cases[i];
		struct serial_edit ed;
		serial_edit_reset(&ed);
		ed.last_cr = false;
		struct strbuf echo;
		sb_init(&echo);
		enum serial_ed_result last = SERIAL_ED_NONE;
		for (const char *p = tc->input; *p; p++)
			last = serial_edit_feed(&ed, (unsigned char)*p, &echo);
		printf("case: %s\n", tc->name);
		assert_string_equal(echo.buf ? echo.buf : "", tc->want_echo);
		assert_int_equal(last, tc->want_last);
		assert_string_equal(ed.buf, tc->want_buf);
		sb_free(&echo);
	}
}

static void test_edit_crlf_and_limit(void **state)
{
	struct serial_edit ed;
	serial_edit_reset(&ed);
	ed.last_cr = false;
	struct strbuf echo;
	sb_init(&echo);
	/* \r\n is one Enter, not two. */
	assert_int_equal(serial_edit_feed(&ed, '\r', &echo), SERIAL_ED_LINE);
	assert_int_equal(serial_edit_feed(&ed, '\n', &echo), SERIAL_ED_NONE);
	assert_int_equal(serial_edit_feed(&ed, '\n', &echo), SERIAL_ED_LINE);
	serial_edit_reset(&ed);
	sb_reset(&echo);
	for (int i = 0; i < SERIAL_LINE_MAX + 5; i++)
		serial_edit_feed(&ed, 'x', &echo);
	assert_int_equal(ed.len, SERIAL_LINE_MAX);
	assert_int_equal(echo.len, SERIAL_LINE_MAX + 5); /* the rest rang the bell */
	assert_int_equal(echo.buf[echo.len - 1], '\a');
	sb_reset(&echo);
	serial_crlf(&echo, "a\nb\r\nc\n", 7);
	assert_string_equal(echo.buf, "a\r\nb\r\nc\r\n");
	sb_free(&echo);
}

/* ---- a dumb terminal: \r, \n, \b and printable characters on a grid ---- */

#define ROWS 64
#define COLS 200
struct screen {
	char cell[ROWS][COLS + 1];
	int row, col;
};

static void screen_feed(struct screen *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '\r')
			s->col = 0;
		else if (ch == '\n')
			s->row = s->row + 1 < ROWS ? s->row + 1 : s->row;
		else if (ch == '\b')
			s->col = s->col ? s->col - 1 : 0;
		else if (ch >= ' ' && ch < 0x7f && s->col < COLS) {
			s->cell[s->row][s->col++] = ch;
		}
	}
}

static void screen_line(const struct screen *s, int row, char *out)
{
	memcpy(out, s->cell[row], COLS + 1);
	for (int i = 0; i < COLS; i++)
		if (!out[i])
			out[i] = ' ';
	out[COLS] = '\0';
	for (int i = COLS - 1; i >= 0 && out[i] == ' '; i--)
		out[i] = '\0';
}

struct rig {
	struct loop *loop;
	struct console *console;
	struct serial *serial;
	int master;
	struct screen scr;
	struct strbuf raw;
};

static void pump(struct rig *r)
{
	for (int i = 0; i < 20; i++) {
		loop_iterate(r->loop, now_usec() + 5000);
		char buf[4096];
		ssize_t n;
		while ((n = read(r->master, buf, sizeof(buf))) > 0) {
			screen_feed(&r->scr, buf, (size_t)n);
			sb_put(&r->raw, buf, (size_t)n);
		}
	}
}

static void type(struct rig *r, const char *s)
{
	assert_int_equal(write(r->master, s, strlen(s)), (ssize_t)strlen(s));
	pump(r);
}

static int cmd_echo(struct console_req *req, void *ud)
{
	for (int i = 1; i < req->argc; i++)
		sb_printf(&req->out, "%s%s", i > 1 ? " " : "", req->argv[i]);
	sb_puts(&req->out, "\nsecond line\n");
	return 0;
}

static void rig_open(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	sb_init(&r->raw);
	r->loop = loop_new();
	assert_int_equal(console_new(r->loop, &r->console), 0);
	console_register(r->console, "echo", "[WORDS]", "say it back", cmd_echo, NULL);
	console_register(r->console, "shell", "", "rescue shell", serial_cmd_shell, NULL);
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

static void test_pty_command(void **state)
{
	struct rig r;
	rig_open(&r);
	char line[COLS + 1];
	screen_line(&r.scr, r.scr.row, line);
	assert_string_equal(line, "compartd a1>");
	type(&r, "echo hello \"two words\"\r");
	/* The answer is CRLF-translated, then a fresh prompt. */
	assert_non_null(
	    strstr(r.raw.buf,
		   "echo hello \"two words\"\r\nhello two words\r\nsecond line\r\ncompartd a1> "));
	type(&r, "nosuch\r");
	assert_non_null(
	    strstr(r.raw.buf, "error: unknown command 'nosuch'; 'help' lists the commands\r\n"));
	/* Ctrl-C drops a half-typed line. */
	type(&r, "ech\x03");
	screen_line(&r.scr, r.scr.row - 1, line);
	assert_string_equal(line, "compartd a1> ech^C");
	screen_line(&r.scr, r.scr.row, line);
	assert_string_equal(line, "compartd a1>");
	rig_close(&r);
}

static void test_pty_event_while_typing(void **state)
{
	struct rig r;
	rig_open(&r);
	type(&r, "echo half-typ");
	struct event ev;
	event_begin(&ev, "path");
	event_add(&ev, "storage", "mirror0");
	event_add(&ev, "state", "failed");
	event_emit(&ev);
	pump(&r);
	char line[COLS + 1];
	/* The event sits on its own line, nothing of the prompt left around it... */
	screen_line(&r.scr, r.scr.row - 1, line);
	assert_string_equal(line, "event=path storage=mirror0 state=failed");
	/* ...and the prompt with the typed text is back below it. */
	screen_line(&r.scr, r.scr.row, line);
	assert_string_equal(line, "compartd a1> echo half-typ");
	/* Typing goes on where it was; the command sees the whole line. */
	type(&r, "ed\r");
	screen_line(&r.scr, r.scr.row - 2, line);
	assert_string_equal(line, "half-typed");
	/* Non-event log lines are not printed on the console. */
	size_t before = r.raw.len;
	log_info("just information");
	pump(&r);
	assert_int_equal(r.raw.len, before);
	rig_close(&r);
}

/* `shell` is refused on the socket side (no serial transport). */
static void test_shell_refused_off_serial(void **state)
{
	struct rig r;
	rig_open(&r);
	struct strbuf out;
	sb_init(&out);
	struct console_req req = {.argc = 1, .serial = false};
	req.argv[0] = "shell";
	req.out = out;
	assert_int_equal(serial_cmd_shell(&req, NULL), -EPERM);
	assert_string_equal(req.out.buf, "error: the rescue shell is only on the serial console\n");
	sb_free(&req.out);
	rig_close(&r);
}

/* The shell runs on the pty and the console resumes when it exits. */
static void test_shell_on_pty(void **state)
{
	if (access("/bin/sh", X_OK) < 0)
		skip();
	struct rig r;
	rig_open(&r);
	type(&r, "shell\r");
	type(&r, "echo from-the-$((40+2))-shell; exit 3\n");
	for (int i = 0; i < 200 && !strstr(r.raw.buf, "console resumed"); i++)
		pump(&r);
	assert_non_null(strstr(r.raw.buf, "from-the-42-shell"));
	assert_non_null(
	    strstr(r.raw.buf, "shell exited with status 3; console resumed\r\ncompartd a1> "));
	type(&r, "echo back\r");
	assert_non_null(strstr(r.raw.buf, "back\r\nsecond line\r\n"));
	rig_close(&r);
}

/* Events while the shell owns the line are shown when the console resumes, not lost. */
static void test_events_held_for_shell(void **state)
{
	if (access("/bin/sh", X_OK) < 0)
		skip();
	struct rig r;
	rig_open(&r);
	type(&r, "shell\r");
	type(&r, "echo in-the-$((1+1))-shell\n");
	for (int i = 0; i < 200 && !strstr(r.raw.buf ? r.raw.buf : "", "in-the-2-shell"); i++)
		pump(&r);
	assert_non_null(strstr(r.raw.buf, "in-the-2-shell"));
	struct event ev;
	event_begin(&ev, "health");
	event_add(&ev, "component", "md:infra");
	event_add(&ev, "state", "failed");
	event_emit(&ev);
	pump(&r);
	assert_null(strstr(r.raw.buf, "component=md:infra")); /* not into the shell's screen */
	type(&r, "exit\n");
	for (int i = 0; i < 200 && !strstr(r.raw.buf, "console resumed"); i++)
		pump(&r);
	pump(&r);
	assert_non_null(strstr(r.raw.buf, "console resumed\r\nwhile the shell ran:\r\n"
					  "event=health component=md:infra state=failed\r\n"));
	rig_close(&r);
}

static int continued;

static int cmd_continue(struct console_req *req, void *ud)
{
	continued++;
	sb_puts(&req->out, "released\n");
	return 0;
}

/* Runs the loop until the raw output holds `want` (5 s at most). */
static bool wait_for(struct rig *r, const char *want)
{
	for (int i = 0; i < 100 && !strstr(r->raw.buf ? r->raw.buf : "", want); i++)
		pump(r);
	return strstr(r->raw.buf ? r->raw.buf : "", want) != NULL;
}

/* With [console] password set, destructive commands ask for it once per session, without
 * echo; a wrong one backs off; other commands never ask. */
static void test_password(void **state)
{
	static char hash[crypto_pwhash_STRBYTES];
	assert_int_equal(crypto_pwhash_str(hash, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
					   crypto_pwhash_MEMLIMIT_MIN),
			 0);
	struct rig r;
	rig_open(&r);
	console_register(r.console, "continue", "", "release", cmd_continue, NULL);
	serial_set_password(r.serial, hash);
	continued = 0;
	type(&r, "echo free\r");
	assert_non_null(strstr(r.raw.buf, "free\r\nsecond line"));
	type(&r, "continue\r");
	assert_non_null(strstr(r.raw.buf, "continue\r\npassword: "));
	type(&r, "wrong\r");
	assert_true(wait_for(&r, "wrong password; next attempt in 1 s\r\n"));
	assert_null(strstr(r.raw.buf, "wrong\r")); /* not echoed */
	assert_int_equal(continued, 0);
	/* within the back-off: refused without asking */
	type(&r, "continue\r");
	assert_non_null(strstr(r.raw.buf, "error: wrong password given; try again in"));
	usleep(1100 * 1000);
	type(&r, "continue\r");
	type(&r, "s3cret\r");
	assert_true(wait_for(&r, "released\r\n"));
	assert_null(strstr(r.raw.buf, "s3cret"));
	assert_int_equal(continued, 1);
	/* once per session */
	size_t before = r.raw.len;
	type(&r, "continue\r");
	assert_true(wait_for(&r, "released\r\n"));
	assert_null(strstr(r.raw.buf + before, "password:"));
	assert_int_equal(continued, 2);
	/* Ctrl-C at the prompt gives up */
	rig_close(&r);
	rig_open(&r);
	console_register(r.console, "continue", "", "release", cmd_continue, NULL);
	serial_set_password(r.serial, hash);
	type(&r, "continue\r");
	type(&r, "abc\x03");
	assert_non_null(strstr(r.raw.buf, "password: ^C\r\ncompartd a1> "));
	assert_int_equal(continued, 2);
	rig_close(&r);
}

/* Without a password the console stays open; the destructive list. */
static void test_no_password(void **state)
{
	struct rig r;
	rig_open(&r);
	console_register(r.console, "continue", "", "release", cmd_continue, NULL);
	serial_set_password(r.serial, "");
	continued = 0;
	type(&r, "continue\r");
	assert_int_equal(continued, 1);
	assert_null(strstr(r.raw.buf, "password:"));
	rig_close(&r);
	static const char *const yes[] = {
	    "approve-wipe /dev/sdb", "promote infra", "demote admin",	 "continue", "shell", "sh",
	    "key install",	     "config push f", " continue --json"};
	static const char *const no[] = {"status", "peers", "config show",	"help",
					 "",	   "log 5", "query all status", "keys"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(serial_line_needs_password(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(serial_line_needs_password(no[i]));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_set_target(LOG_TARGET_NONE);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edit_table),
	    cmocka_unit_test(test_edit_crlf_and_limit),
	    cmocka_unit_test(test_pty_command),
	    cmocka_unit_test(test_pty_event_while_typing),
	    cmocka_unit_test(test_shell_refused_off_serial),
	    cmocka_unit_test(test_shell_on_pty),
	    cmocka_unit_test(test_events_held_for_shell),
	    cmocka_unit_test(test_password),
	    cmocka_unit_test(test_no_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
