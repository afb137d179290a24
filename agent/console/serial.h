/* The operator console on a serial line (SPEC §9): a dumb 115200-baud terminal, our own
 * minimal line editing, a prompt, and event lines printed as they happen without
 * garbling the line being typed (erase prompt and input, print, redraw).
 *
 * The line editor is pure (bytes in, echo bytes and complete lines out); the driver
 * owns the tty, its termios, the output queue and the `shell` command. */
#pragma once

#include "console.h"
#include "loop.h"
#include "util.h"

#define SERIAL_LINE_MAX 256

enum serial_ed_result {
	SERIAL_ED_NONE,	  /* nothing to do but send the echo */
	SERIAL_ED_LINE,	  /* Enter: ed->buf holds the line */
	SERIAL_ED_CANCEL, /* Ctrl-C: the line was dropped */
	SERIAL_ED_REDRAW, /* Ctrl-L: redraw prompt and input */
	_SERIAL_ED_MAX
};

struct serial_edit {
	char buf[SERIAL_LINE_MAX + 1];
	size_t len;
	int esc;      /* 0, 1 after ESC, 2 inside a CSI/SS3 sequence */
	bool last_cr; /* swallow the \n of a \r\n */
};

void serial_edit_reset(struct serial_edit *ed);
/* Feeds one input byte; appends what to echo (never with a bare \n: the editor speaks
 * CRLF) and says whether a line is complete. */
enum serial_ed_result serial_edit_feed(struct serial_edit *ed, unsigned char ch,
				       struct strbuf *echo);
/* Appends text with every \n turned into \r\n. */
void serial_crlf(struct strbuf *out, const char *text, size_t len);

struct serial;

/* Opens a tty (O_NOCTTY), puts it in raw 115200 8N1 mode and serves the console on it. */
int serial_open(struct console *c, struct loop *l, const char *path, const char *node,
		struct serial **ret);
/* The same on an fd already open (a pty in tests); termios is set when it is a tty. The
 * fd is owned by the serial console from then on. */
int serial_attach_fd(struct console *c, struct loop *l, int fd, const char *node,
		     struct serial **ret);
/* Restores the tty's termios. Accepts NULL; returns NULL. */
struct serial *serial_free(struct serial *s);

/* The `shell` console command: a rescue shell on the tty while the console pauses. */
int serial_cmd_shell(struct console_req *req, void *ud);

/* A secret asked for by a command typed on the serial line (`key install`): prompt shown,
 * typed without echo, Enter hands it to done (the buffer is wiped after), Ctrl-C hands
 * NULL. The command returned CONSOLE_ASYNC; done answers the request. -EPERM when req was
 * not typed on the serial line. */
typedef void (*serial_secret_fn)(struct console_req *req, const char *secret, void *ud);
int serial_ask_secret(struct console_req *req, const char *prompt, serial_secret_fn done, void *ud);

/* The operator password (SPEC §9): `hash` is a crypto_pwhash_str hash, "" or NULL for
 * none (the console stays open). The pointer is kept, not the text: the agent passes its
 * cfg's [console] password, which a reload changes in place. With a hash set, the
 * commands serial_line_needs_password() names ask for the password once per session
 * (until the line hangs up, or 10 minutes without such a command); it is typed without
 * echo and checked in a child process (the loop goes on). After a wrong one the next
 * attempt waits 1 s, then 2, 4, … up to 60 s. */
void serial_set_password(struct serial *s, const char *hash);
/* Destructive commands and `shell`: approve-wipe, promote, demote, continue, shell/sh,
 * key, and config except `config show`. */
bool serial_line_needs_password(const char *line);
#define SERIAL_SESSION_USEC (10 * 60 * USEC_PER_SEC)
#define SERIAL_BACKOFF_MAX_S 60
