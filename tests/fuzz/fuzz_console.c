/* libFuzzer: bytes typed on the serial line go through the line editor, and every line
 * it completes goes through the console's word splitter and command dispatch (help, an
 * echoing command, the query parser). Invariants: the edit buffer stays NUL-terminated
 * within its bound, the echo never holds a bare \n, and every dispatched line answers. */
#include "console.h"
#include "log.h"
#include "query.h"
#include "serial.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfg *cfg;

static int cmd_echo(struct console_req *req, void *ud)
{
	for (int i = 0; i < req->argc; i++)
		sb_printf(&req->out, "%s%s", i ? " " : "", req->argv[i]);
	sb_putc(&req->out, '\n');
	return 0;
}

static int cmd_query_parse(struct console_req *req, void *ud)
{
	struct strbuf err;
	sb_init(&err);
	struct query_spec s;
	int r = query_parse(cfg, req->argc - 1, req->argv + 1, req->json, &s, &err);
	if (r < 0)
		console_req_error(req, "%s", err.buf ? err.buf : "");
	sb_free(&err);
	return r;
}

static void on_answer(struct console_req *req)
{
	bool *answered = req->transport;
	*answered = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct loop *l;
	static struct console *c;
	if (!l) {
		log_set_target(LOG_TARGET_NONE);
		const char *conf =
		    "[cluster]\nname = f\nkey_file = /k\n[pair p]\n[compartment a]\nzone = mz\n"
		    "pair = p\n[compartment b]\nzone = dmz\npair = p\n[node a1]\ncompartment = "
		    "a\nhandshake = 127.0.0.1\n";
		if (cfg_parse("f.conf", conf, strlen(conf), NULL, 0, &cfg, NULL) < 0)
			abort();
		l = loop_new();
		(void)console_new(l, &c);
		console_register(c, "echo", "", "", cmd_echo, NULL);
		console_register(c, "query", "", "", cmd_query_parse, NULL);
	}
	struct serial_edit ed;
	serial_edit_reset(&ed);
	ed.last_cr = false;
	struct strbuf echo;
	sb_init(&echo);
	for (size_t i = 0; i < size; i++) {
		enum serial_ed_result r = serial_edit_feed(&ed, data[i], &echo);
		if (ed.len > SERIAL_LINE_MAX || ed.buf[ed.len] != '\0' || strlen(ed.buf) != ed.len)
			abort();
		for (size_t k = 0; k < echo.len; k++)
			if (echo.buf[k] == '\n' && (k == 0 || echo.buf[k - 1] != '\r'))
				abort();
		sb_reset(&echo);
		if (r == SERIAL_ED_LINE) {
			bool answered = false;
			if (console_exec(c, ed.buf, true, on_answer, &answered, NULL) < 0 ||
			    !answered)
				abort();
			serial_edit_reset(&ed);
		}
	}
	/* The splitter on the raw bytes as one line. */
	char line[512];
	size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	char *argv[CONSOLE_MAX_ARGS];
	int argc = split_words(line, argv, CONSOLE_MAX_ARGS);
	if (argc > CONSOLE_MAX_ARGS)
		abort();
	sb_free(&echo);
	return 0;
}
