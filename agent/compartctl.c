/* compartctl: one console command to the local agent over its unix socket.
 * Exit status 0 when the command succeeded, 1 when it answered an error, 2 when the
 * agent could not be reached. */
#include "util.h"
#include "version.h"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: compartctl [--socket PATH] COMMAND [ARGS] [--json]\n"
		   "       compartctl help   lists the agent's commands\n"
		   "default socket: /run/compartd/console.sock\n");
}

int main(int argc, char **argv)
{
	const char *sock = "/run/compartd/console.sock";
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else if (!strncmp(argv[i], "--socket=", 9))
			sock = argv[i] + 9;
		else if (!strcmp(argv[i], "--version")) {
			printf("compartctl %s\n", COMPARTD_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "-h") || (!strcmp(argv[i], "--help") && i == 1)) {
			usage(stdout);
			return 0;
		} else
			break;
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	_cleanup_(sb_free) struct strbuf line;
	sb_init(&line);
	for (int j = i; j < argc; j++) {
		bool quote = strpbrk(argv[j], " \t") != NULL || !argv[j][0];
		sb_printf(&line, "%s%s%s%s", j > i ? " " : "", quote ? "\"" : "", argv[j],
			  quote ? "\"" : "");
	}
	sb_putc(&line, '\n');
	if (strchr(line.buf, '\n') != line.buf + line.len - 1) {
		fprintf(stderr, "compartctl: arguments must not contain newlines\n");
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "compartctl: socket path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, sock);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "compartctl: cannot reach the agent at %s: %m\n", sock);
		return 2;
	}
	/* The agent may answer and close before reading (a refusal): keep its answer. */
	signal(SIGPIPE, SIG_IGN);
	if (write_all(fd, line.buf, line.len) < 0 && errno != EPIPE) {
		fprintf(stderr, "compartctl: cannot send: %m\n");
		return 2;
	}
	shutdown(fd, SHUT_WR);
	struct strbuf ans;
	sb_init(&ans);
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sb_put(&ans, buf, (size_t)n);
	if (ans.len)
		fwrite(ans.buf, 1, ans.len, stdout);
	bool failed =
	    ans.len && (!strncmp(ans.buf, "error:", 6) || !strncmp(ans.buf, "{\"error\":", 9));
	sb_free(&ans);
	return failed ? 1 : 0;
}
