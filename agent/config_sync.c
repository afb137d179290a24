/* The wiring of the configuration transfer (cfgsync.h): a fetched, hash-verified file is
 * validated exactly as check-config does, refused when it failed on this node before,
 * written over the running file (temporary file, fsync, rename) and applied like a
 * reload; a change of topology waits for a restart and says so. */
#include "config_cmd.h"

#include "agent.h"
#include "cfgsync.h"
#include "config_store.h"
#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

static void event_cfg(const char *action, uint64_t version, const char *from, const char *reason)
{
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", action);
	event_add_u64(&ev, "version", version);
	event_add(&ev, "from", from);
	if (reason)
		event_add(&ev, "reason", reason);
	event_emit(&ev);
}

static int write_atomic(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.fetch.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, text, len);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Exactly check-config's validation (no command-line overrides), then this node's record. */
static const char *validate(struct agent *a, const char *text, size_t len, struct strbuf *err)
{
	static char why[160];
	struct cfg *n = NULL;
	if (cfg_parse(a->env.cfg->path, text, len, NULL, 0, &n, err) < 0)
		return "invalid";
	bool bad = config_lkg_refuses(a->lkg, n, why, sizeof(why));
	cfg_free(n);
	return bad ? why : NULL;
}

static void on_fetched(const char *text, size_t len, uint64_t version, const uint8_t hash[32],
		       int from, void *ud)
{
	struct agent *a = ud;
	const char *peer = a->env.cfg->nodes[from].name;
	struct strbuf err, msg;
	sb_init(&err), sb_init(&msg);
	const char *why = validate(a, text, len, &err);
	int r = why ? -EINVAL : write_atomic(a->env.cfg->path, text, len);
	if (why || r < 0) {
		if (err.buf)
			log_error("%s", err.buf);
		event_cfg("refused", version, peer, why ? why : "cannot write the file");
		cfgsync_refuse(a->cfgsync, version, hash);
	} else if ((r = agent_reload_config(a, &msg)) < 0) {
		log_notice("%s", msg.buf ? msg.buf : "");
		event_cfg("pending-restart", version, peer, msg.buf);
		cfgsync_refuse(a->cfgsync, version, hash); /* stored; a restart applies it */
	} else {
		event_cfg("applied", version, peer, NULL);
	}
	sb_free(&err), sb_free(&msg);
}

int agent_config_push(struct agent *a, const char *path, struct strbuf *msg)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_full_file(path, CFG_MAX_TEXT, &text, &len);
	if (r < 0) {
		sb_printf(msg, "%s: %s", path, strerror(-r));
		return r;
	}
	struct strbuf err;
	sb_init(&err);
	struct cfg *n = NULL;
	r = cfg_parse(path, text, len, NULL, 0, &n, &err);
	uint64_t v = n ? n->version : 0;
	char why[160] = "";
	if (r < 0)
		sb_printf(msg, "%s%s: configuration refused", err.buf ? err.buf : "", path);
	else if (v <= a->env.cfg->version)
		sb_printf(msg,
			  "%s: version %" PRIu64 " is not newer than the running %" PRIu64
			  " (raise [cluster] version)",
			  path, v, a->env.cfg->version);
	else if (config_lkg_refuses(a->lkg, n, why, sizeof(why)))
		sb_printf(msg, "%s: %s", path, why);
	bool refused = r < 0 || msg->len;
	cfg_free(n);
	sb_free(&err);
	if (refused)
		return -EINVAL;
	r = write_atomic(a->env.cfg->path, text, len);
	if (r < 0) {
		sb_printf(msg, "%s: %s", a->env.cfg->path, strerror(-r));
		return r;
	}
	r = agent_reload_config(a, msg);
	if (r < 0)
		return r; /* stored: a restart applies it (and then announces it) */
	sb_printf(msg,
		  "; every node fetches it when it hears this one ('config' shows who runs it)");
	event_cfg("pushed", v, a->env.cfg->nodes[a->env.self].name, NULL);
	return 0;
}

int agent_config_rollback(struct agent *a, uint64_t version, struct strbuf *msg)
{
	const struct journal_state *j = config_lkg_state(a->lkg);
	struct cfg *c = a->env.cfg;
	uint64_t from = c->version;
	if (!j || !j->has_good) {
		sb_printf(msg, "no last-known-good configuration is recorded on this node");
		return -ENOENT;
	}
	if (j->good.version != version) {
		sb_printf(msg,
			  "version %" PRIu64 " is not this node's last-known-good (%" PRIu64
			  "), the only one kept",
			  version, j->good.version);
		return -ENOENT;
	}
	if (!memcmp(j->good.hash, c->hash, 32)) {
		sb_printf(msg, "version %" PRIu64 " is the one running", version);
		return -EALREADY;
	}
	_cleanup_free_ struct cfg *left = calloc(1, sizeof(*left));
	if (!left)
		return -ENOMEM;
	left->version = from;
	memcpy(left->hash, c->hash, sizeof(left->hash));
	int r = config_lkg_rollback(a->lkg, c, a->kcmd.ovr, a->kcmd.n_ovr);
	if (r < 0) {
		sb_printf(msg, "%s",
			  r == -EBUSY ? "the topology differs: restart the agent with the "
					"stored copy instead"
				      : "the stored copy cannot be read");
		return r;
	}
	/* The version left behind failed here: not run again, not fetched again. */
	(void)config_lkg_record(a->lkg, left, false);
	sb_printf(msg,
		  "rolled back to version %" PRIu64 "; version %" PRIu64
		  " is recorded as failed on this node",
		  version, from);
	return 0;
}

int agent_config_sync_start(struct agent *a)
{
	int r = cfgsync_new(&a->env, a->hs, on_fetched, a, &a->cfgsync);
	if (r < 0)
		log_error_errno(r, "cannot start the configuration transfer, continuing without");
	return r;
}
