/* The operator console: a registry of line commands, answered on the root-only unix
 * socket (one request per connection, for compartctl) and on the serial line. Each
 * module registers its own commands; every command also answers with --json. */
#pragma once

#include "loop.h"
#include "util.h"

#define CONSOLE_MAX_ARGS 16

struct console;
struct console_req;

/* Fill req->out (human text, or one JSON document when req->json) and return 0, or
 * return a negative errno after console_req_error(). Return CONSOLE_ASYNC to answer later
 * with console_req_done() (cluster queries wait for other nodes). */
#define CONSOLE_ASYNC 1
typedef int (*console_cmd_fn)(struct console_req *req, void *ud);

struct console_req {
	struct console *console;
	int argc;
	char *argv[CONSOLE_MAX_ARGS];
	bool json;
	bool serial; /* typed on the serial line (not the socket) */
	bool failed;
	struct strbuf out;
	/* private */
	void (*finish)(struct console_req *req);
	void *transport;
	char *line;
};

int console_new(struct loop *l, struct console **ret);
struct console *console_free(struct console *c);

/* -EEXIST when the name is taken by a command (not by an absent one: see below). */
int console_register(struct console *c, const char *name, const char *args, const char *help,
		     console_cmd_fn fn, void *ud);
/* A command whose module does not run on this node (yet): `help` lists it, and it answers
 * "<name> is not available on this node (the <module> module is not running)". The module
 * registers the real command over it when it starts. `module` must outlive the console. */
int console_register_absent(struct console *c, const char *name, const char *args, const char *help,
			    const char *module);

/* Listen on a unix socket (mode 0600, parent directory created 0700). */
int console_listen(struct console *c, const char *path);

/* Listens again on the same path (the socket file was removed or replaced): the health
 * check of the console socket calls it. The path, "" before console_listen(). */
int console_relisten(struct console *c);
const char *console_socket_path(const struct console *c);

/* Run one command line; finish(req) is called when the answer is complete, before the
 * request is freed. When the command answers later, *ret_pending (if given) is set to
 * the request; a transport that goes away sets req->transport = NULL. */
int console_exec(struct console *c, const char *line, bool serial,
		 void (*finish)(struct console_req *req), void *transport,
		 struct console_req **ret_pending);
void console_req_error(struct console_req *req, const char *fmt, ...) _printf_(2, 3);
void console_req_done(struct console_req *req);
/* The answer of a command that asked a module to act: r < 0 answers "<what> refused:
 * <msg>" (or the errno's text), else msg ("done" when empty), as text or
 * {"ok":true,"command":…,"message":…}. Returns r. */
int console_req_answer(struct console_req *req, const char *what, int r, const struct strbuf *msg);
