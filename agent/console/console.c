#include "console.h"

#include "log.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define MAX_CMDS 48
#define MAX_LINE 1024

struct console_cmd {
	char name[24];
	char args[64];
	char help[96];
	console_cmd_fn fn;
	void *ud;
};

struct console {
	struct loop *loop;
	struct console_cmd cmds[MAX_CMDS];
	int n_cmds;
	int listen_fd;
	struct watch *listen_watch;
	char sock_path[108];
	int n_clients;
	struct timer *accept_pause; /* out of descriptors: accepting again when it fires */
	uint64_t refused, refused_logged_at;
};

/* At most this many socket clients at once; more are answered an error and closed. */
#define CONSOLE_MAX_CLIENTS 16
/* A socket client that has not sent its line within this time is dropped. */
#define CLIENT_IDLE_USEC (10 * USEC_PER_SEC)
/* accept() failed for want of descriptors: stop watching the socket this long (else the
 * pending connection keeps it readable and the loop spins). */
#define ACCEPT_PAUSE_USEC (250 * USEC_PER_MSEC)

/* How long a socket client may take to read its answer before it is dropped. */
#define CLIENT_DRAIN_USEC (30 * USEC_PER_SEC)

/* A socket client: reads one line, gets one answer, then the connection closes. The answer
 * is written without blocking (a client that does not read must not stall the loop that
 * carries the heartbeats), the rest when the socket has room, within CLIENT_DRAIN_USEC. */
struct sock_client {
	struct console *console;
	struct watch *watch;
	int fd;
	char buf[MAX_LINE];
	size_t len;
	bool answered;
	struct console_req *req;
	char *out; /* the answer still to be written, from out_off */
	size_t out_len, out_off;
	struct timer *drain;
	struct timer *idle;
};

static int cmd_help(struct console_req *req, void *ud);

int console_new(struct loop *l, struct console **ret)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->listen_fd = -1;
	console_register(c, "help", "", "list the commands", cmd_help, c);
	*ret = c;
	return 0;
}

struct console *console_free(struct console *c)
{
	if (!c)
		return NULL;
	watch_remove(c->listen_watch);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->sock_path);
	}
	timer_free(c->accept_pause);
	free(c);
	return NULL;
}

static int cmd_absent(struct console_req *req, void *ud)
{
	const char *module = ud;
	console_req_error(req, "%s is not available on this node (the %s module is not running)",
			  req->argv[0], module);
	return -EOPNOTSUPP;
}

int console_register(struct console *c, const char *name, const char *args, const char *help,
		     console_cmd_fn fn, void *ud)
{
	struct console_cmd *cmd = NULL;
	for (int i = 0; i < c->n_cmds && !cmd; i++)
		if (!strcmp(c->cmds[i].name, name)) {
			if (c->cmds[i].fn != cmd_absent)
				return -EEXIST;
			cmd = &c->cmds[i];
		}
	if (!cmd && c->n_cmds == MAX_CMDS)
		return -ENOSPC;
	if (!cmd)
		cmd = &c->cmds[c->n_cmds++];
	snprintf(cmd->name, sizeof(cmd->name), "%s", name);
	snprintf(cmd->args, sizeof(cmd->args), "%s", args);
	snprintf(cmd->help, sizeof(cmd->help), "%s", help);
	cmd->fn = fn;
	cmd->ud = ud;
	return 0;
}

static int cmd_help(struct console_req *req, void *ud)
{
	struct console *c = ud;
	if (req->json) {
		sb_puts(&req->out, "{\"commands\":[");
		for (int i = 0; i < c->n_cmds; i++) {
			sb_printf(&req->out, "%s{\"name\":", i ? "," : "");
			sb_json_str(&req->out, c->cmds[i].name);
			sb_puts(&req->out, ",\"args\":");
			sb_json_str(&req->out, c->cmds[i].args);
			sb_puts(&req->out, ",\"help\":");
			sb_json_str(&req->out, c->cmds[i].help);
			sb_putc(&req->out, '}');
		}
		sb_puts(&req->out, "]}\n");
		return 0;
	}
	for (int i = 0; i < c->n_cmds; i++) {
		char usage[96];
		snprintf(usage, sizeof(usage), "%s%s%s", c->cmds[i].name,
			 c->cmds[i].args[0] ? " " : "", c->cmds[i].args);
		sb_printf(&req->out, "  %-36s %s\n", usage, c->cmds[i].help);
	}
	sb_puts(&req->out, "Every command also answers in JSON with --json.\n");
	return 0;
}

void console_req_error(struct console_req *req, const char *fmt, ...)
{
	struct strbuf msg;
	sb_init(&msg);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&msg, fmt, ap);
	va_end(ap);
	req->failed = true;
	sb_reset(&req->out);
	if (req->json) {
		sb_puts(&req->out, "{\"error\":");
		sb_json_str(&req->out, msg.buf);
		sb_puts(&req->out, "}\n");
	} else {
		sb_printf(&req->out, "error: %s\n", msg.buf ? msg.buf : "");
	}
	sb_free(&msg);
}

void console_req_done(struct console_req *req)
{
	if (req->finish)
		req->finish(req);
	sb_free(&req->out);
	free(req->line);
	free(req);
}

static void printable_copy(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	for (; *src && o + 1 < n; src++)
		dst[o++] = (*src >= ' ' && *src < 0x7f) ? *src : '?';
	dst[o] = '\0';
}

int console_exec(struct console *c, const char *line, bool serial,
		 void (*finish)(struct console_req *req), void *transport,
		 struct console_req **ret_pending)
{
	struct console_req *req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->console = c;
	req->serial = serial;
	req->finish = finish;
	req->transport = transport;
	req->line = strdup(line);
	if (!req->line) {
		free(req);
		return -ENOMEM;
	}
	int argc = split_words(req->line, req->argv, CONSOLE_MAX_ARGS);
	/* --json may stand anywhere; it is taken out of argv. */
	int o = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(req->argv[i], "--json"))
			req->json = true;
		else
			req->argv[o++] = req->argv[i];
	}
	req->argc = argc < 0 ? 0 : o;
	if (argc == -EINVAL) {
		console_req_error(req, "unbalanced double quote");
	} else if (argc == -E2BIG) {
		console_req_error(req, "too many words (at most %d)", CONSOLE_MAX_ARGS);
	} else if (req->argc == 0) {
		/* an empty line answers nothing */
	} else {
		int i;
		for (i = 0; i < c->n_cmds; i++)
			if (!strcmp(c->cmds[i].name, req->argv[0]))
				break;
		if (i == c->n_cmds) {
			char name[64];
			printable_copy(name, sizeof(name), req->argv[0]);
			console_req_error(req, "unknown command '%s'; 'help' lists the commands",
					  name);
		} else {
			int r = c->cmds[i].fn(req, c->cmds[i].ud);
			if (r == CONSOLE_ASYNC) {
				if (ret_pending)
					*ret_pending = req;
				return 0;
			}
			if (r < 0 && !req->failed)
				console_req_error(req, "%s: %s", c->cmds[i].name, strerror(-r));
		}
	}
	console_req_done(req);
	return 0;
}

/* ---- the unix socket ---- */

static void client_free(void *ud)
{
	struct sock_client *cl = ud;
	if (cl->req)
		cl->req->transport = NULL; /* an async answer still under way: drop it */
	timer_free(cl->drain);
	timer_free(cl->idle);
	free(cl->out);
	close(cl->fd);
	cl->console->n_clients--;
	free(cl);
}

/* Writes what the socket takes; closes the connection when all is written or the client
 * is gone. */
static void client_flush(struct sock_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			watch_set_events(cl->watch, EPOLLOUT);
			return;
		}
		if (n < 0) {
			log_debug("console: client went away before its answer");
			break;
		}
		cl->out_off += (size_t)n;
	}
	watch_remove(cl->watch);
}

static void on_drain_timeout(struct timer *t, void *ud)
{
	struct sock_client *cl = ud;
	log_warn("console: a socket client did not read its answer within %llu s, dropped",
		 (unsigned long long)(CLIENT_DRAIN_USEC / USEC_PER_SEC));
	watch_remove(cl->watch);
}

static void client_finish(struct console_req *req)
{
	struct sock_client *cl = req->transport;
	if (!cl)
		return;
	cl->req = NULL;
	cl->out_len = req->out.len;
	cl->out = sb_steal(&req->out);
	if (!cl->out || !cl->out_len) {
		watch_remove(cl->watch);
		return;
	}
	cl->drain = timer_new(cl->console->loop, on_drain_timeout, cl);
	if (cl->drain)
		timer_arm_in(cl->drain, CLIENT_DRAIN_USEC);
	client_flush(cl);
}

static void on_client(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct sock_client *cl = ud;
	if (cl->out) {
		if (revents & (EPOLLHUP | EPOLLERR))
			watch_remove(w);
		else
			client_flush(cl);
		return;
	}
	if (cl->answered) {
		/* Waiting for an async answer; a hang-up cancels it. */
		if (revents & (EPOLLHUP | EPOLLERR))
			watch_remove(w);
		else
			watch_set_events(w, EPOLLRDHUP);
		return;
	}
	ssize_t n = read(fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		cl->len += (size_t)n;
	char *nl = memchr(cl->buf, '\n', cl->len);
	if (!nl && n > 0 && cl->len < sizeof(cl->buf) - 1)
		return;
	if (!nl && cl->len == sizeof(cl->buf) - 1) {
		const char *msg = "error: line longer than 1023 characters\n";
		write_all(fd, msg, strlen(msg));
		watch_remove(w);
		return;
	}
	if (nl)
		*nl = '\0';
	else
		cl->buf[cl->len] = '\0';
	cl->answered = true;
	timer_disarm(cl->idle);
	/* A synchronous answer removes the watch and frees cl: touch nothing after. */
	console_exec(cl->console, cl->buf, false, client_finish, cl, &cl->req);
}

static void on_idle(struct timer *t, void *ud)
{
	struct sock_client *cl = ud;
	log_info("console: a socket client sent no command within %llu s, dropped",
		 (unsigned long long)(CLIENT_IDLE_USEC / USEC_PER_SEC));
	watch_remove(cl->watch);
}

static void on_accept_pause(struct timer *t, void *ud)
{
	struct console *c = ud;
	if (c->listen_watch)
		watch_set_events(c->listen_watch, EPOLLIN);
}

/* Out of descriptors: the pending connection stays, so stop watching for a while. */
static void accept_pause(struct console *c, int err)
{
	if (!c->accept_pause)
		c->accept_pause = timer_new(c->loop, on_accept_pause, c);
	if (!c->accept_pause)
		return;
	watch_set_events(c->listen_watch, 0);
	timer_arm_in(c->accept_pause, ACCEPT_PAUSE_USEC);
	log_warn("console: cannot accept a client: %s; pausing %llu ms", strerror(err),
		 (unsigned long long)(ACCEPT_PAUSE_USEC / USEC_PER_MSEC));
}

/* Over the cap: answer an error and close; the log says so at most every 10 s. */
static void refuse_client(struct console *c, int cfd)
{
	const char *msg = "error: too many console clients, try again later\n";
	(void)!send(cfd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(cfd);
	c->refused++;
	uint64_t now = now_usec();
	if (!c->refused_logged_at || now - c->refused_logged_at >= 10 * USEC_PER_SEC) {
		log_warn("console: too many console clients (%d), refused %llu so far",
			 CONSOLE_MAX_CLIENTS, (unsigned long long)c->refused);
		c->refused_logged_at = now;
	}
}

static void on_accept(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct console *c = ud;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accept_pause(c, errno);
		return;
	}
	if (c->n_clients >= CONSOLE_MAX_CLIENTS) {
		refuse_client(c, cfd);
		return;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		const char *msg = "error: the console is for root only\n";
		write_all(cfd, msg, strlen(msg));
		close(cfd);
		return;
	}
	struct sock_client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(cfd);
		return;
	}
	cl->console = c;
	cl->fd = cfd;
	cl->idle = timer_new(c->loop, on_idle, cl);
	if (!cl->idle) {
		close(cfd);
		free(cl);
		return;
	}
	c->n_clients++;
	timer_arm_in(cl->idle, CLIENT_IDLE_USEC);
	cl->watch = watch_add(c->loop, cfd, EPOLLIN, on_client, cl, client_free);
	if (!cl->watch)
		client_free(cl);
}

int console_listen(struct console *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return log_error_errno(-errno, "console: cannot create %s", dir);
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	mode_t old = umask(0077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return log_error_errno(-errno, "console: cannot bind %s", path);
	chmod(path, 0600);
	if (listen(fd, 16) < 0)
		return -errno;
	c->listen_watch = watch_add(c->loop, fd, EPOLLIN, on_accept, c, NULL);
	if (!c->listen_watch)
		return -ENOMEM;
	c->listen_fd = TAKE_FD(fd);
	snprintf(c->sock_path, sizeof(c->sock_path), "%s", path);
	return 0;
}

int console_relisten(struct console *c)
{
	char path[sizeof(c->sock_path)];
	if (!c->sock_path[0])
		return -EINVAL;
	memcpy(path, c->sock_path, sizeof(path));
	c->listen_watch = watch_remove(c->listen_watch);
	timer_disarm(c->accept_pause);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	c->listen_fd = -1;
	return console_listen(c, path);
}

const char *console_socket_path(const struct console *c)
{
	return c->sock_path;
}

int console_register_absent(struct console *c, const char *name, const char *args, const char *help,
			    const char *module)
{
	return console_register(c, name, args, help, cmd_absent, (void *)module);
}

int console_req_answer(struct console_req *req, const char *what, int r, const struct strbuf *msg)
{
	const char *m = msg->buf ? strstrip(msg->buf) : "";
	if (!strncmp(m, "refused: ", 9))
		m += 9; /* "refused" is said here */
	if (r < 0) {
		console_req_error(req, "%s refused: %s", what, m[0] ? m : strerror(-r));
		return r;
	}
	if (req->json) {
		sb_puts(&req->out, "{\"ok\":true,\"command\":");
		sb_json_str(&req->out, what);
		sb_puts(&req->out, ",\"message\":");
		sb_json_str(&req->out, m[0] ? m : "done");
		sb_puts(&req->out, "}\n");
	} else {
		sb_printf(&req->out, "%s\n", m[0] ? m : "done");
	}
	return r;
}
