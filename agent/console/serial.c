#include "serial.h"

#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#define OUTQ_MAX (256 * 1024)

/* ---- the line editor (pure) ---- */

void serial_edit_reset(struct serial_edit *ed)
{
	ed->len = 0;
	ed->buf[0] = '\0';
	ed->esc = 0;
}

static void serial_erase(struct strbuf *out, size_t cols)
{
	sb_putc(out, '\r');
	for (size_t i = 0; i < cols; i++)
		sb_putc(out, ' ');
	sb_putc(out, '\r');
}

void serial_crlf(struct strbuf *out, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
			sb_putc(out, '\r');
		sb_putc(out, text[i]);
	}
}

/* Escape sequences (arrow keys, function keys) are swallowed whole: ESC, then '[' or 'O',
 * then parameter bytes up to a final byte in 0x40..0x7e. */
static bool swallow_escape(struct serial_edit *ed, unsigned char ch)
{
	switch (ed->esc) {
	case 1:
		ed->esc = (ch == '[' || ch == 'O') ? 2 : 0;
		return true;
	case 2:
		if (ch >= 0x40 && ch <= 0x7e)
			ed->esc = 0;
		return true;
	default:
		if (ch != 0x1b)
			return false;
		ed->esc = 1;
		return true;
	}
}

enum serial_ed_result serial_edit_feed(struct serial_edit *ed, unsigned char ch,
				       struct strbuf *echo)
{
	bool after_cr = ed->last_cr;
	ed->last_cr = false;
	if (swallow_escape(ed, ch))
		return SERIAL_ED_NONE;
	switch (ch) {
	case '\n':
		if (after_cr)
			return SERIAL_ED_NONE;
		/* fall through */
	case '\r':
		ed->last_cr = ch == '\r';
		ed->buf[ed->len] = '\0';
		sb_puts(echo, "\r\n");
		return SERIAL_ED_LINE;
	case 0x03: /* Ctrl-C */
		serial_edit_reset(ed);
		sb_puts(echo, "^C\r\n");
		return SERIAL_ED_CANCEL;
	case 0x08: /* Backspace */
	case 0x7f: /* DEL */
		if (ed->len) {
			ed->buf[--ed->len] = '\0';
			sb_puts(echo, "\b \b");
		}
		return SERIAL_ED_NONE;
	case 0x15: /* Ctrl-U */
		for (; ed->len; ed->len--)
			sb_puts(echo, "\b \b");
		ed->buf[0] = '\0';
		return SERIAL_ED_NONE;
	case 0x0c: /* Ctrl-L */
		return SERIAL_ED_REDRAW;
	default:
		break;
	}
	if (ch < 0x20 || ch >= 0x7f)
		return SERIAL_ED_NONE; /* other control bytes and non-ASCII are ignored */
	if (ed->len == SERIAL_LINE_MAX) {
		sb_putc(echo, '\a');
		return SERIAL_ED_NONE;
	}
	ed->buf[ed->len++] = (char)ch;
	ed->buf[ed->len] = '\0';
	sb_putc(echo, (char)ch);
	return SERIAL_ED_NONE;
}

/* ---- the driver ---- */

struct serial {
	char path[96]; /* the device, when we opened it (reopened after a hang-up) */
	bool saved_valid;
	struct console *console;
	struct loop *loop;
	int fd;
	struct watch *watch;
	bool is_tty;
	struct termios saved;
	struct serial_edit ed;
	char prompt[64];
	struct strbuf outq;
	bool out_blocked;
	int log_sub;
	bool busy;		     /* a command is answering */
	struct console_req *pending; /* that command, when it answers later */
	/* the rescue shell */
	pid_t shell_pid;
	int shell_pidfd;
	struct watch *shell_watch;
	struct console_req *shell_req;
	struct strbuf shell_held; /* event lines while the shell owns the line */
	unsigned shell_dropped;	  /* lines beyond SHELL_HELD_MAX */
	/* the operator password */
	const char *pw_hash;
	enum { PW_IDLE, PW_ASKING, PW_CHECKING } pw_state;
	char pw_line[SERIAL_LINE_MAX + 1]; /* the command waiting for the password */
	bool authed;
	uint64_t authed_use; /* last use of the authenticated session */
	int pw_failures;
	uint64_t pw_locked_until;
	pid_t pw_pid;
	int pw_pidfd;
	struct watch *pw_watch;
	/* a secret a command asked for (serial_ask_secret) */
	struct console_req *secret_req;
	serial_secret_fn secret_done;
	void *secret_ud;
};

static void flush(struct serial *s);
static int reopen(struct serial *s);

static void on_writable(struct serial *s)
{
	flush(s);
}

static void flush(struct serial *s)
{
	size_t off = 0;
	while (off < s->outq.len) {
		ssize_t n = write(s->fd, s->outq.buf + off, s->outq.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN, or the line went away: keep it for later */
		off += (size_t)n;
	}
	if (off) {
		memmove(s->outq.buf, s->outq.buf + off, s->outq.len - off);
		s->outq.len -= off;
		s->outq.buf[s->outq.len] = '\0';
	}
	bool blocked = s->outq.len > 0;
	if (blocked != s->out_blocked && s->watch && s->shell_pid <= 0)
		watch_set_events(s->watch, EPOLLIN | (blocked ? EPOLLOUT : 0));
	s->out_blocked = blocked;
}

static void out(struct serial *s, const char *text, size_t len)
{
	if (s->outq.len + len > OUTQ_MAX) {
		/* A terminal that reads nothing must not make us grow without end. */
		sb_reset(&s->outq);
		sb_puts(&s->outq, "\r\n[console output dropped: the terminal is not reading]\r\n");
	}
	serial_crlf(&s->outq, text, len);
}

static void show_prompt(struct serial *s)
{
	out(s, s->prompt, strlen(s->prompt));
	out(s, s->ed.buf, s->ed.len);
}

static bool typing_visible(const struct serial *s)
{
	return !s->busy && s->shell_pid <= 0 && s->pw_state == PW_IDLE;
}

/* What the shell's time on the line held back: shown when the console resumes. */
#define SHELL_HELD_MAX (16 * 1024)

static void hold_for_shell(struct serial *s, const char *text)
{
	if (s->shell_held.len + strlen(text) + 1 > SHELL_HELD_MAX) {
		s->shell_dropped++;
		return;
	}
	sb_puts(&s->shell_held, text);
	sb_putc(&s->shell_held, '\n');
}

static void on_log_line(const struct log_line *l, void *ud)
{
	struct serial *s = ud;
	/* State changes, and what went wrong: the operator at the console must see both. */
	if (!l->is_event && l->level > LOG_LVL_WARN)
		return;
	if (s->shell_pid > 0) {
		hold_for_shell(s, l->text);
		return;
	}
	if (typing_visible(s)) {
		struct strbuf e;
		sb_init(&e);
		serial_erase(&e, strlen(s->prompt) + s->ed.len);
		out(s, e.buf, e.len);
		sb_free(&e);
	}
	out(s, l->text, strlen(l->text));
	out(s, "\n", 1);
	if (typing_visible(s))
		show_prompt(s);
	flush(s);
}

static void on_answer(struct console_req *req)
{
	struct serial *s = req->transport;
	if (!s)
		return;
	s->busy = false;
	s->pending = NULL;
	if (req->out.len)
		out(s, req->out.buf, req->out.len);
	show_prompt(s);
	flush(s);
}

/* ---- the operator password ---- */

void serial_set_password(struct serial *s, const char *hash)
{
	s->pw_hash = hash;
}

bool serial_line_needs_password(const char *line)
{
	static const char *const destructive[] = {"approve-wipe", "promote", "demote", "continue",
						  "shell",	  "sh",	     "key"};
	char buf[SERIAL_LINE_MAX + 1], *argv[CONSOLE_MAX_ARGS];
	snprintf(buf, sizeof(buf), "%s", line);
	int argc = split_words(buf, argv, CONSOLE_MAX_ARGS);
	if (argc <= 0)
		return argc < 0; /* a line that does not split is refused anyway: ask */
	for (size_t i = 0; i < sizeof(destructive) / sizeof(destructive[0]); i++)
		if (!strcmp(argv[0], destructive[i]))
			return true;
	return !strcmp(argv[0], "config") && !(argc >= 2 && !strcmp(argv[1], "show"));
}

static bool password_required(struct serial *s, const char *line)
{
	if (!s->pw_hash || !s->pw_hash[0] || !serial_line_needs_password(line))
		return false;
	uint64_t now = now_usec();
	if (s->authed && now - s->authed_use < SERIAL_SESSION_USEC) {
		s->authed_use = now;
		return false;
	}
	s->authed = false;
	return true;
}

static void pw_child_cleanup(struct serial *s)
{
	s->pw_watch = watch_remove(s->pw_watch);
	if (s->pw_pidfd >= 0)
		close(s->pw_pidfd);
	s->pw_pidfd = -1;
	s->pw_pid = 0;
}

static void exec_line(struct serial *s, const char *line);

static void on_pw_checked(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct serial *s = ud;
	int status = 0;
	if (waitpid(s->pw_pid, &status, WNOHANG) == 0)
		return;
	pw_child_cleanup(s);
	s->pw_state = PW_IDLE;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		s->authed = true;
		s->authed_use = now_usec();
		s->pw_failures = 0;
		log_notice("serial: operator password accepted");
		exec_line(s, s->pw_line);
	} else {
		s->pw_failures++;
		int wait_s = s->pw_failures >= 7 ? SERIAL_BACKOFF_MAX_S : 1 << (s->pw_failures - 1);
		if (wait_s > SERIAL_BACKOFF_MAX_S)
			wait_s = SERIAL_BACKOFF_MAX_S;
		s->pw_locked_until = now_usec() + (uint64_t)wait_s * USEC_PER_SEC;
		log_notice("serial: wrong operator password (%d in a row)", s->pw_failures);
		char msg[96];
		int n =
		    snprintf(msg, sizeof(msg), "wrong password; next attempt in %d s\n", wait_s);
		s->busy = false;
		out(s, msg, (size_t)n);
		show_prompt(s);
	}
	sodium_memzero(s->pw_line, sizeof(s->pw_line));
	flush(s);
}

/* crypto_pwhash_str_verify takes long by design: it runs in a child, the loop goes on. */
static void check_password(struct serial *s)
{
	s->pw_state = PW_CHECKING;
	s->busy = true;
	pid_t pid = fork();
	if (pid == 0) {
		int ok = crypto_pwhash_str_verify(s->pw_hash, s->ed.buf, s->ed.len) == 0;
		_exit(ok ? 0 : 1);
	}
	sodium_memzero(s->ed.buf, sizeof(s->ed.buf));
	serial_edit_reset(&s->ed);
	int pfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	s->pw_pid = pid;
	s->pw_pidfd = pfd;
	if (pfd >= 0)
		s->pw_watch = watch_add(s->loop, pfd, EPOLLIN, on_pw_checked, s, NULL);
	if (!s->pw_watch) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pw_child_cleanup(s);
		s->pw_state = PW_IDLE;
		s->busy = false;
		static const char msg[] = "error: cannot check the password\n";
		out(s, msg, sizeof(msg) - 1);
		show_prompt(s);
	}
}

/* A destructive command on a console with a password: ask for it (or refuse while the
 * back-off runs). */
static void ask_password(struct serial *s, const char *line)
{
	uint64_t now = now_usec();
	if (now < s->pw_locked_until) {
		char msg[96];
		int n =
		    snprintf(msg, sizeof(msg), "error: wrong password given; try again in %llu s\n",
			     (unsigned long long)((s->pw_locked_until - now) / USEC_PER_SEC + 1));
		out(s, msg, (size_t)n);
		show_prompt(s);
		return;
	}
	snprintf(s->pw_line, sizeof(s->pw_line), "%s", line);
	s->pw_state = PW_ASKING;
	static const char ask[] = "password: ";
	out(s, ask, sizeof(ask) - 1);
}

/* Input while the password is typed: no echo, Enter checks it, Ctrl-C gives up. */
static void password_feed(struct serial *s, unsigned char ch)
{
	struct strbuf echo;
	sb_init(&echo);
	enum serial_ed_result r = serial_edit_feed(&s->ed, ch, &echo);
	sb_free(&echo);
	switch (r) {
	case SERIAL_ED_LINE:
		out(s, "\n", 1);
		check_password(s);
		break;
	case SERIAL_ED_CANCEL:
		sodium_memzero(s->pw_line, sizeof(s->pw_line));
		s->pw_state = PW_IDLE;
		out(s, "^C\n", 3);
		show_prompt(s);
		break;
	case SERIAL_ED_NONE:
	case SERIAL_ED_REDRAW:
	case _SERIAL_ED_MAX:
		break;
	}
}

/* ---- a secret asked for by a command ---- */

int serial_ask_secret(struct console_req *req, const char *prompt, serial_secret_fn done, void *ud)
{
	struct serial *s = req->transport;
	if (!req->serial || !s || s->secret_req)
		return -EPERM;
	s->secret_req = req;
	s->secret_done = done;
	s->secret_ud = ud;
	serial_edit_reset(&s->ed);
	out(s, prompt, strlen(prompt));
	flush(s);
	return 0;
}

/* Input while a secret is typed: no echo; Enter or Ctrl-C hands it over. */
static void secret_feed(struct serial *s, unsigned char ch)
{
	struct strbuf echo;
	sb_init(&echo);
	enum serial_ed_result r = serial_edit_feed(&s->ed, ch, &echo);
	sb_free(&echo);
	if (r != SERIAL_ED_LINE && r != SERIAL_ED_CANCEL)
		return;
	struct console_req *req = TAKE_PTR(s->secret_req);
	char secret[SERIAL_LINE_MAX + 1];
	memcpy(secret, s->ed.buf, s->ed.len + 1);
	/* wiped before done answers: the answer redraws the prompt with the line typed */
	sodium_memzero(s->ed.buf, sizeof(s->ed.buf));
	serial_edit_reset(&s->ed);
	out(s, r == SERIAL_ED_LINE ? "\n" : "^C\n", r == SERIAL_ED_LINE ? 1 : 3);
	flush(s);
	s->secret_done(req, r == SERIAL_ED_LINE ? secret : NULL, s->secret_ud);
	sodium_memzero(secret, sizeof(secret));
}

static void run_line(struct serial *s)
{
	char line[SERIAL_LINE_MAX + 1];
	memcpy(line, s->ed.buf, s->ed.len + 1);
	serial_edit_reset(&s->ed);
	if (password_required(s, line)) {
		ask_password(s, line);
		return;
	}
	exec_line(s, line);
}

static void exec_line(struct serial *s, const char *line)
{
	struct console_req *pending = NULL;
	/* Busy first, so event lines printed while the command runs do not redraw a
	 * prompt in the middle of its answer. */
	s->busy = true;
	int r = console_exec(s->console, line, true, on_answer, s, &pending);
	if (r < 0) {
		s->busy = false;
		static const char oom[] = "error: out of memory\n";
		out(s, oom, sizeof(oom) - 1);
		show_prompt(s);
	} else if (pending) {
		s->pending = pending;
	}
}

static void on_input(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct serial *s = ud;
	if (revents & EPOLLOUT)
		on_writable(s);
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	unsigned char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* Hang-up: open the device again once; else (a pty whose other side closed)
		 * stop reading and stay quiet. */
		if ((revents & (EPOLLHUP | EPOLLERR)) || n == 0 || errno == EIO) {
			if (reopen(s) < 0)
				watch_set_events(w, 0);
		}
		return;
	}
	struct strbuf echo;
	sb_init(&echo);
	for (ssize_t i = 0; i < n && s->shell_pid <= 0; i++) {
		if (s->pw_state == PW_ASKING) {
			password_feed(s, buf[i]);
			continue;
		}
		if (s->secret_req) {
			secret_feed(s, buf[i]);
			continue;
		}
		enum serial_ed_result r = serial_edit_feed(&s->ed, buf[i], &echo);
		if (s->busy) {
			/* A command is answering: keep the bytes typed ahead (shown with the
			 * next prompt), echo nothing yet. */
			if (r == SERIAL_ED_LINE || r == SERIAL_ED_CANCEL)
				serial_edit_reset(&s->ed);
			sb_reset(&echo);
			continue;
		}
		out(s, echo.buf ? echo.buf : "", echo.len);
		sb_reset(&echo);
		switch (r) {
		case SERIAL_ED_NONE:
			break;
		case SERIAL_ED_LINE:
			run_line(s);
			break;
		case SERIAL_ED_CANCEL:
			show_prompt(s);
			break;
		case SERIAL_ED_REDRAW:
			sb_init(&echo);
			serial_erase(&echo, 0);
			out(s, echo.buf, echo.len);
			sb_reset(&echo);
			show_prompt(s);
			break;
		case _SERIAL_ED_MAX:
			break;
		}
	}
	sb_free(&echo);
	flush(s);
}

/* Raw 115200 8N1; the first call keeps the line's own settings for the shell and exit. */
static int set_raw(struct serial *s)
{
	struct termios t;
	if (tcgetattr(s->fd, &t) < 0)
		return 0; /* not a terminal: nothing to set */
	s->is_tty = true;
	if (!s->saved_valid) {
		s->saved = t;
		s->saved_valid = true;
	}
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_oflag &= ~OPOST; /* we translate \n to \r\n ourselves */
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(CSIZE | PARENB);
	t.c_cflag |= CS8 | CREAD | CLOCAL;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	if (tcsetattr(s->fd, TCSANOW, &t) < 0)
		return log_warn_errno(-errno, "serial: cannot set the terminal mode, ignoring");
	return 0;
}

/* A serial line is hung up when a session that had it as controlling tty ends (the rescue
 * shell): open the device again. */
static int reopen(struct serial *s)
{
	if (!s->path[0])
		return -ENOENT;
	int fd = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_warn_errno(-errno, "serial: cannot reopen %s", s->path);
	if (watch_set_fd(s->watch, fd, EPOLLIN) < 0) {
		close(fd);
		return -EIO;
	}
	close(s->fd);
	s->fd = fd;
	s->out_blocked = false;
	s->authed = false; /* a hang-up ends the session */
	set_raw(s);
	return 0;
}

int serial_attach_fd(struct console *c, struct loop *l, int fd, const char *node,
		     struct serial **ret)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->console = c;
	s->loop = l;
	s->fd = fd;
	s->shell_pidfd = -1;
	s->pw_pidfd = -1;
	sb_init(&s->outq);
	sb_init(&s->shell_held);
	serial_edit_reset(&s->ed);
	snprintf(s->prompt, sizeof(s->prompt), "compartd %s> ", node ? node : "?");
	set_raw(s);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	s->watch = watch_add(l, fd, EPOLLIN, on_input, s, NULL);
	s->log_sub = log_subscribe(on_log_line, s);
	if (!s->watch || s->log_sub < 0) {
		serial_free(s);
		return -ENOMEM;
	}
	static const char banner[] = "\ncompartd console; 'help' lists the commands.\n";
	out(s, banner, sizeof(banner) - 1);
	show_prompt(s);
	flush(s);
	*ret = s;
	return 0;
}

int serial_open(struct console *c, struct loop *l, const char *path, const char *node,
		struct serial **ret)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "serial: cannot open %s", path);
	int r = serial_attach_fd(c, l, fd, node, ret);
	if (r < 0)
		return log_error_errno(r, "serial: cannot serve the console on %s", path);
	snprintf((*ret)->path, sizeof((*ret)->path), "%s", path);
	log_info("serial console on %s", path);
	return 0;
}

static void shell_cleanup(struct serial *s)
{
	watch_remove(s->shell_watch);
	s->shell_watch = NULL;
	if (s->shell_pidfd >= 0)
		close(s->shell_pidfd);
	s->shell_pidfd = -1;
	s->shell_pid = 0;
}

struct serial *serial_free(struct serial *s)
{
	if (!s)
		return NULL;
	if (s->shell_pid > 0) {
		kill(s->shell_pid, SIGKILL);
		waitpid(s->shell_pid, NULL, 0);
		shell_cleanup(s);
	}
	if (s->pw_pid > 0) {
		kill(s->pw_pid, SIGKILL);
		waitpid(s->pw_pid, NULL, 0);
		pw_child_cleanup(s);
	}
	sodium_memzero(s->pw_line, sizeof(s->pw_line));
	sodium_memzero(s->ed.buf, sizeof(s->ed.buf));
	if (s->pending && s->pending != s->shell_req)
		s->pending->transport = NULL;
	if (s->shell_req) {
		s->shell_req->transport = NULL;
		console_req_done(s->shell_req);
	}
	if (s->log_sub >= 0)
		log_unsubscribe(s->log_sub);
	watch_remove(s->watch);
	if (s->is_tty && s->saved_valid)
		tcsetattr(s->fd, TCSANOW, &s->saved);
	close(s->fd);
	sb_free(&s->outq);
	sb_free(&s->shell_held);
	free(s);
	return NULL;
}

/* ---- the rescue shell ---- */

static void on_shell_exit(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct serial *s = ud;
	int status = 0;
	if (waitpid(s->shell_pid, &status, WNOHANG) == 0)
		return;
	shell_cleanup(s);
	if (reopen(s) < 0)
		set_raw(s);
	serial_edit_reset(&s->ed);
	struct console_req *req = TAKE_PTR(s->shell_req);
	if (WIFEXITED(status))
		sb_printf(&req->out, "shell exited with status %d; console resumed\n",
			  WEXITSTATUS(status));
	else
		sb_printf(&req->out, "shell ended; console resumed\n");
	if (s->shell_held.len || s->shell_dropped) {
		sb_puts(&req->out, "while the shell ran:\n");
		sb_put(&req->out, s->shell_held.buf, s->shell_held.len);
		if (s->shell_dropped)
			sb_printf(&req->out, "(and %u more lines: `log` has them)\n",
				  s->shell_dropped);
	}
	sb_reset(&s->shell_held);
	s->shell_dropped = 0;
	watch_set_events(s->watch, EPOLLIN);
	console_req_done(req);
}

static void shell_child(int tty, const struct termios *cooked)
{
	setsid();
	ioctl(tty, TIOCSCTTY, 1);
	tcsetattr(tty, TCSANOW, cooked);
	int fl = fcntl(tty, F_GETFL);
	fcntl(tty, F_SETFL, fl & ~O_NONBLOCK);
	dup2(tty, 0);
	dup2(tty, 1);
	dup2(tty, 2);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL); /* (the agent ignores it) */
	execl("/bin/sh", "sh", "-i", (char *)NULL);
	_exit(127);
}

int serial_cmd_shell(struct console_req *req, void *ud)
{
	struct serial *s = req->transport;
	if (!req->serial || !s) {
		console_req_error(req, "the rescue shell is only on the serial console");
		return -EPERM;
	}
	if (req->argc != 1) {
		console_req_error(req, "usage: shell");
		return -EINVAL;
	}
	if (access("/bin/sh", X_OK) < 0) {
		console_req_error(req, "no /bin/sh in this image");
		return -ENOENT;
	}
	struct termios cooked = s->saved;
	if (!s->saved_valid)
		memset(&cooked, 0, sizeof(cooked));
	flush(s);
	pid_t pid = fork();
	if (pid < 0) {
		console_req_error(req, "cannot start the shell: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0)
		shell_child(s->fd, &cooked);
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		console_req_error(req, "cannot watch the shell: %s", strerror(errno));
		return -EIO;
	}
	s->shell_pid = pid;
	s->shell_pidfd = pfd;
	s->shell_req = req;
	/* The console pauses: no reading (the shell owns the tty) and no event lines. */
	watch_set_events(s->watch, 0);
	s->shell_watch = watch_add(s->loop, pfd, EPOLLIN, on_shell_exit, s, NULL);
	if (!s->shell_watch) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shell_cleanup(s);
		s->shell_req = NULL;
		watch_set_events(s->watch, EPOLLIN);
		console_req_error(req, "cannot watch the shell");
		return -ENOMEM;
	}
	log_notice("serial: rescue shell started (pid %d); the console resumes when it exits", pid);
	return CONSOLE_ASYNC;
}
