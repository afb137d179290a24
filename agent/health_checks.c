/* The health checks the console module owns: the configuration (file hash against the
 * running one), clock sanity (realtime against monotonic) and the console socket. */
#include "console_cmds.h"

#include "health.h"
#include "log.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define CLOCK_TOLERANCE_US (1 * USEC_PER_SEC)
#define REALTIME_MIN_US (1577836800ULL * USEC_PER_SEC) /* 2020-01-01: "the clock is set" */

struct health_checks {
	struct agent *a;
	/* configuration */
	char *text;
	size_t len;
	uint8_t file_hash[32]; /* of text (config_parses) */
	/* The file as it was when it last hashed like the running configuration. While stat() says
	 * it is the same file and the running hash is the same, it is neither read nor hashed: at
	 * 512 nodes that was ~60 KB read and hashed twice every health_interval. A file is stable
	 * when its times are more than 3 s old (a later write cannot give it the same ones). */
	bool same_valid, unchanged;
	struct stat st_now, st_same;
	uint8_t run_same[32];
	/* clock */
	struct health_clock_src clk;
	uint64_t rt0, mono0;
	/* console socket */
	dev_t dev;
	ino_t ino;
};

/* ---- configuration ---- */

static uint64_t ts_usec(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * USEC_PER_SEC + (uint64_t)t->tv_nsec / 1000;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int config_reachable(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	const struct cfg *c = hc->a->env.cfg;
	bool st_ok = stat(c->path, &hc->st_now) == 0;
	hc->unchanged = st_ok && hc->same_valid && same_stat(&hc->st_now, &hc->st_same) &&
			!memcmp(hc->run_same, c->hash, sizeof(c->hash));
	if (hc->unchanged)
		return 0;
	if (!st_ok)
		hc->st_now = (struct stat){0};
	free(hc->text);
	hc->text = NULL;
	int r = read_full_file(hc->a->env.cfg->path, CFG_MAX_TEXT, &hc->text, &hc->len);
	if (r < 0)
		sb_printf(d, "cannot read %s: %s", hc->a->env.cfg->path, strerror(-r));
	return r;
}

static int config_parses(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	struct agent *a = hc->a;
	/* The file that is running parsed when it was loaded: parsing it again every
	 * health_interval cost ~5 ms at 512 nodes (0.1 % CPU per agent, O(N)). Only a file
	 * that differs from the running one is parsed. */
	if (hc->unchanged)
		return 0;
	uint8_t *h = hc->file_hash;
	crypto_generichash(h, 32, (const unsigned char *)hc->text, hc->len, NULL, 0);
	if (sodium_memcmp(h, a->env.cfg->hash, 32) == 0) {
		/* (a file written within the last seconds could be written again with the
		 * same times and size: not before it is older than that) */
		uint64_t rt = hc->clk.realtime(), old = 3 * USEC_PER_SEC;
		hc->same_valid = hc->st_now.st_ino && rt > ts_usec(&hc->st_now.st_mtim) + old &&
				 rt > ts_usec(&hc->st_now.st_ctim) + old;
		hc->st_same = hc->st_now;
		memcpy(hc->run_same, a->env.cfg->hash, sizeof(hc->run_same));
		return 0;
	}
	struct strbuf err;
	sb_init(&err);
	struct cfg *n = NULL;
	int r =
	    cfg_parse(a->env.cfg->path, hc->text, hc->len, a->kcmd.ovr, a->kcmd.n_ovr, &n, &err);
	if (r < 0) {
		char *nl = err.buf ? strchr(err.buf, '\n') : NULL;
		if (nl)
			*nl = '\0';
		sb_printf(d, "%s", err.buf ? err.buf : "does not parse");
	}
	cfg_free(n);
	sb_free(&err);
	return r;
}

static int config_integrity(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	const struct cfg *c = hc->a->env.cfg;
	const uint8_t *h = hc->unchanged ? c->hash : hc->file_hash; /* (config_parses's) */
	char file[65], run[65];
	sodium_bin2hex(file, sizeof(file), h, 32);
	cfg_hash_hex(c, run);
	const struct agent *a = hc->a;
	if (a->pending.version && sodium_memcmp(h, a->pending.hash, 32) == 0) {
		/* written over the file on purpose, waits for a restart (config_sync.c) */
		sb_printf(d, "version %" PRIu64 " runs, version %" PRIu64 " waits for a restart",
			  c->version, a->pending.version);
		return 0;
	}
	if (sodium_memcmp(h, c->hash, 32) != 0) {
		sb_printf(d, "file changed: blake2b %.12s, running %.12s (version %" PRIu64 ")",
			  file, run, c->version);
		return -EUCLEAN;
	}
	sb_printf(d, "version %" PRIu64 ", blake2b %.12s", c->version, run);
	return 0;
}

static int config_isolate(void *ud, struct strbuf *msg)
{
	struct health_checks *hc = ud;
	sb_printf(msg, "keeping the running configuration (version %" PRIu64 ")",
		  hc->a->env.cfg->version);
	return 0;
}

static int config_reload(void *ud, struct strbuf *msg)
{
	struct health_checks *hc = ud;
	int r = agent_reload_config(hc->a, msg);
	/* One line for the component's log: the parser's errors come one per line. */
	for (size_t i = 0; msg->buf && i < msg->len; i++)
		if (msg->buf[i] == '\n')
			msg->buf[i] = i + 1 < msg->len ? ' ' : '\0';
	return r;
}

static const struct health_component_ops config_ops = {
    .check_reachable = config_reachable,
    .check_parses = config_parses,
    .check_integrity = config_integrity,
    .isolate = config_isolate,
    .reload = config_reload,
    .reload_tries = 1,
};

/* ---- clock ---- */

static int clock_parses(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	uint64_t rt = hc->clk.realtime();
	if (rt < REALTIME_MIN_US) {
		sb_printf(d, "the realtime clock is not set (%" PRIu64 " s after 1970)",
			  (uint64_t)(rt / USEC_PER_SEC));
		return -ERANGE;
	}
	return 0;
}

static int clock_integrity(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	int64_t drt = (int64_t)(hc->clk.realtime() - hc->rt0);
	int64_t dmono = (int64_t)(hc->clk.monotonic() - hc->mono0);
	int64_t delta = drt - dmono;
	if (delta < -(int64_t)CLOCK_TOLERANCE_US) {
		sb_printf(d, "realtime jumped backwards by %" PRId64 " ms", -delta / 1000);
		return -ERANGE;
	}
	if (delta > (int64_t)CLOCK_TOLERANCE_US) {
		sb_printf(d, "realtime jumped forwards by %" PRId64 " ms", delta / 1000);
		return -ERANGE;
	}
	sb_printf(d, "drift %" PRId64 " ms", delta / 1000);
	return 0;
}

static int clock_isolate(void *ud, struct strbuf *msg)
{
	sb_puts(msg, "wall-clock times are suspect; timers and leases use the monotonic clock");
	return 0;
}

/* Accepts the stepped clock as the new reference; the alert line recorded the step. */
static int clock_reload(void *ud, struct strbuf *msg)
{
	struct health_checks *hc = ud;
	hc->rt0 = hc->clk.realtime();
	hc->mono0 = hc->clk.monotonic();
	sb_puts(msg, "reference re-anchored to the current realtime");
	return 0;
}

static const struct health_component_ops clock_ops = {
    .check_parses = clock_parses,
    .check_integrity = clock_integrity,
    .isolate = clock_isolate,
    .reload = clock_reload,
    .reload_tries = 1,
};

/* ---- console socket ---- */

static void socket_record(struct health_checks *hc)
{
	struct stat st;
	if (stat(console_socket_path(hc->a->env.console), &st) == 0) {
		hc->dev = st.st_dev;
		hc->ino = st.st_ino;
	}
}

static int socket_reachable(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	const char *p = console_socket_path(hc->a->env.console);
	struct stat st;
	if (stat(p, &st) < 0) {
		sb_printf(d, "%s: %s", p, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode) || st.st_dev != hc->dev || st.st_ino != hc->ino) {
		sb_printf(d, "%s was replaced", p);
		return -ESTALE;
	}
	return 0;
}

static int socket_integrity(void *ud, struct strbuf *d)
{
	struct health_checks *hc = ud;
	const char *p = console_socket_path(hc->a->env.console);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		sb_printf(d, "cannot connect to %s: %s", p, strerror(e));
		return -e;
	}
	sb_printf(d, "%s", p);
	return 0;
}

static int socket_restart(void *ud, struct strbuf *msg)
{
	struct health_checks *hc = ud;
	int r = console_relisten(hc->a->env.console);
	if (r < 0) {
		sb_printf(msg, "cannot listen again: %s", strerror(-r));
		return r;
	}
	socket_record(hc);
	sb_printf(msg, "listening again on %s", console_socket_path(hc->a->env.console));
	return 0;
}

static const struct health_component_ops socket_ops = {
    .check_reachable = socket_reachable,
    .check_integrity = socket_integrity,
    .restart = socket_restart,
};

/* ---- registration ---- */

int health_checks_register(struct agent *a, const struct health_clock_src *clocks)
{
	struct health_checks *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	hc->a = a;
	hc->clk = clocks ? *clocks : (struct health_clock_src){realtime_usec, now_usec};
	hc->rt0 = hc->clk.realtime();
	hc->mono0 = hc->clk.monotonic();
	socket_record(hc);
	a->health_checks = hc;
	int r;
	/* The configuration is core (SPEC §7): a node whose file no longer matches what it
	 * runs, and cannot be reloaded, leaves the elections until it does. */
	if ((r = health_register_flags(a->env.health, &config_ops, hc, "config", "cluster", NULL,
				       HEALTH_F_CORE)) < 0 ||
	    (r = health_register(a->env.health, &clock_ops, hc, "clock", "realtime", NULL)) < 0)
		return log_error_errno(r, "health: cannot register the built-in checks");
	if (console_socket_path(a->env.console)[0] &&
	    (r = health_register(a->env.health, &socket_ops, hc, "console", "socket", NULL)) < 0)
		return log_error_errno(r, "health: cannot register the console socket check");
	return 0;
}

void health_checks_unregister(struct agent *a)
{
	struct health_checks *hc = a->health_checks;
	if (!hc)
		return;
	if (a->env.health) {
		health_unregister(a->env.health, "config", "cluster");
		health_unregister(a->env.health, "clock", "realtime");
		health_unregister(a->env.health, "console", "socket");
	}
	free(hc->text);
	free(hc);
	a->health_checks = NULL;
}
