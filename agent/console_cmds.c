#include "console_cmds.h"

#include "health.h"
#include "health_disks.h"
#include "hs.h"
#include "log.h"
#include "query.h"
#include "serial.h"

#include <string.h>
#include <sys/klog.h>

#define KLOG_CONSOLE_LEVEL 8 /* SYSLOG_ACTION_CONSOLE_LEVEL in the kernel's syslog(2) */

/* ---- health ---- */

static int cmd_health(struct console_req *req, void *ud)
{
	struct agent *a = ud;
	if (req->argc != 1) {
		console_req_error(req, "usage: health");
		return -EINVAL;
	}
	if (!a->env.health) {
		console_req_error(req, "the health engine is not running");
		return -ENODEV;
	}
	health_format(a->env.health, health_now(a->env.health), req->json, &req->out);
	return 0;
}

/* ---- local answers for cluster queries ---- */

struct capture {
	struct strbuf *out;
	bool failed;
	bool done;
};

static void capture_finish(struct console_req *req)
{
	struct capture *cap = req->transport;
	if (!cap)
		return;
	cap->failed = req->failed;
	cap->done = true;
	if (req->out.len)
		sb_put(cap->out, req->out.buf, req->out.len);
}

static int console_query_local(struct agent *a, const char *what, bool json, struct strbuf *out)
{
	char line[64];
	snprintf(line, sizeof(line), "%s%s", what, json ? " --json" : "");
	struct capture cap = {.out = out};
	struct console_req *pending = NULL;
	int r = console_exec(a->env.console, line, false, capture_finish, &cap, &pending);
	if (r < 0)
		return r;
	if (pending) {
		/* Local answers must be immediate; drop a late one. */
		pending->transport = NULL;
		sb_puts(out, json ? "{\"error\":\"the answer is not immediate\"}\n"
				  : "error: the answer is not immediate\n");
		return -EAGAIN;
	}
	return cap.failed ? -EIO : 0;
}

static int query_local_cb(void *ud, const char *what, bool json, struct strbuf *out)
{
	return console_query_local(ud, what, json, out);
}

/* Until the handshake module carries queries, every remote target answers this. */
static int no_transport(void *ud, int node, enum query_msg type, const void *buf, size_t len)
{
	return -ENOTCONN;
}

/* ---- setup ---- */

int console_open_serial(struct agent *a, const char *dev)
{
	char path[96];
	if (a->serial)
		return -EALREADY;
	if (dev[0] == '/')
		snprintf(path, sizeof(path), "%s", dev);
	else
		snprintf(path, sizeof(path), "/dev/%s", dev);
	int r = serial_open(a->env.console, a->env.loop, path, a->env.cfg->nodes[a->env.self].name,
			    &a->serial);
	if (r >= 0) /* [console] password; a reload changes the text in place */
		serial_set_password(a->serial, a->env.cfg->console_password);
	if (r < 0 || !a->opts.pid1)
		return r;
	/* Our lines also go to /dev/kmsg; the kernel would echo them onto this same line,
	 * across whatever is being typed. The console prints events and errors itself. */
	if (klogctl(KLOG_CONSOLE_LEVEL, NULL, 1) < 0)
		log_warn_errno(-errno, "cannot quiet kernel messages on the console, ignoring");
	return 0;
}

/* Components the node registers: one per other node (peer links), per storage path and
 * export, plus a fixed allowance for what is local (disks, arrays, journal, quorum
 * sessions, configuration, clock, console, guest export). */
static int health_capacity(const struct cfg *c)
{
	int n = 64 + c->n_nodes;
	for (int i = 0; i < c->n_storage; i++)
		n += c->storage[i].n_portals + 1;
	return n;
}

int console_cmds_setup(struct agent *a)
{
	struct console *c = a->env.console;
	int r = health_new(a->env.cfg->timeouts.health_interval, health_capacity(a->env.cfg),
			   &a->env.health);
	if (r < 0 || (r = health_attach(a->env.health, a->env.loop)) < 0)
		return r;
	static const struct query_transport none = {.send = no_transport, .max_payload = 1000};
	r = query_engine_new(a->env.loop, &a->env.cfg, &a->env.self, &none, query_local_cb, a,
			     &a->query);
	if (r < 0)
		return r;
	struct {
		const char *name, *args, *help;
		console_cmd_fn fn;
		void *ud;
	} cmds[] = {
	    {"health", "", "components, their state, last check and what was done", cmd_health, a},
	    {"query", "<scope> <what>",
	     "ask nodes; scope: all|compartment X|node N, what: status|health|paths|raid|config",
	     query_cmd, a->query},
	    {"shell", "", "rescue shell on the serial line (console paused)", serial_cmd_shell,
	     NULL},
	    {"sh", "", "the same as shell", serial_cmd_shell, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		r = console_register(c, cmds[i].name, cmds[i].args, cmds[i].help, cmds[i].fn,
				     cmds[i].ud);
		if (r < 0)
			return log_error_errno(r, "console: cannot register %s", cmds[i].name);
	}
	/* Until their module starts (or where it does not run), these say so. */
	static const struct {
		const char *name, *args, *help, *module;
	} absent[] = {
	    {"approve-wipe", "<disk>", "authorize wiping one foreign disk (once)", "disks"},
	    {"guest", "", "the guest partition's iSCSI export: target, ACL, initiators, I/O",
	     "guest"},
	    {"continue", "", "release the wait-operator profile", "decision"},
	    {"promote", "<infra|admin>", "make this node master (refused when unsafe)", "election"},
	    {"demote", "<infra|admin>", "step this node down to slave (refused when unsafe)",
	     "election"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(absent); i++) {
		r = console_register_absent(c, absent[i].name, absent[i].args, absent[i].help,
					    absent[i].module);
		if (r < 0)
			return log_error_errno(r, "console: cannot register %s", absent[i].name);
	}
	r = health_checks_register(a, NULL);
	if (r < 0)
		return r;
	/* Host mode: --console DEV. As PID 1, pid1.c opens the console= device with
	 * console_open_serial() once it has set up /dev. */
	if (a->opts.console)
		return console_open_serial(a, a->opts.console);
	return 0;
}

void console_cmds_teardown(struct agent *a)
{
	a->serial = serial_free(a->serial);
	a->query = query_engine_free(a->query);
	health_checks_unregister(a);
	a->env.health = health_free(a->env.health);
}
