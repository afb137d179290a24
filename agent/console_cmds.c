#include "console_cmds.h"

#include "health.h"
#include "health_disks.h"
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
	if (!a->health) {
		console_req_error(req, "the health engine is not running");
		return -ENODEV;
	}
	health_format(a->health, health_now(a->health), req->json, &req->out);
	return 0;
}

/* ---- calls into other modules through a->hooks ---- */

/* Turns a hook's result into the answer: its sentence, or the refusal with its reason. */
static int hook_answer(struct console_req *req, const char *what, int r, struct strbuf *msg)
{
	const char *m = msg->buf ? strstrip(msg->buf) : "";
	if (!strncmp(m, "refused: ", 9))
		m += 9; /* we say "refused" ourselves */
	if (r < 0) {
		if (m[0])
			console_req_error(req, "%s refused: %s", what, m);
		else
			console_req_error(req, "%s refused: %s", what, strerror(-r));
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
	return 0;
}

static int not_available(struct console_req *req, const char *what, const char *module)
{
	console_req_error(req, "%s is not available on this node (the %s module is not running)",
			  what, module);
	return -EOPNOTSUPP;
}

/* The disks stage ran for an approval: the answer the operator waited for. */
static void approve_wipe_done(int r, struct strbuf *msg, void *ud)
{
	struct console_req *req = ud;
	(void)hook_answer(req, "approve-wipe", r, msg);
	console_req_done(req);
}

static int cmd_approve_wipe(struct console_req *req, void *ud)
{
	struct agent *a = ud;
	if (req->argc != 2) {
		console_req_error(
		    req, "usage: approve-wipe <disk>  (path, serial or WWN, as `disks` shows)");
		return -EINVAL;
	}
	if (!a->hooks.approve_wipe)
		return not_available(req, "approve-wipe", "disks");
	struct strbuf msg;
	sb_init(&msg);
	int r = a->hooks.approve_wipe(a, req->argv[1], &msg, approve_wipe_done, req);
	log_notice("console: approve-wipe %s: %s", req->argv[1],
		   r < 0 ? "refused" : r == AGENT_LATER ? "approved, the disk is being laid out"
						: "approved");
	if (r == AGENT_LATER) {
		sb_free(&msg);
		return CONSOLE_ASYNC;
	}
	r = hook_answer(req, "approve-wipe", r, &msg);
	sb_free(&msg);
	return r;
}

static int cmd_continue(struct console_req *req, void *ud)
{
	struct agent *a = ud;
	if (req->argc != 1) {
		console_req_error(req, "usage: continue");
		return -EINVAL;
	}
	if (!a->hooks.operator_continue)
		return not_available(req, "continue", "decision");
	struct strbuf msg;
	sb_init(&msg);
	int r = a->hooks.operator_continue(a, &msg);
	log_notice("console: continue: %s", r < 0 ? "refused" : "released");
	r = hook_answer(req, "continue", r, &msg);
	sb_free(&msg);
	return r;
}

static int role_cmd(struct console_req *req, struct agent *a, bool promote)
{
	const char *what = promote ? "promote" : "demote";
	int (*hook)(struct agent *, enum cfg_kind, struct strbuf *) =
	    promote ? a->hooks.promote : a->hooks.demote;
	enum cfg_kind kind;
	if (req->argc == 2 && !strcmp(req->argv[1], "infra"))
		kind = CFG_KIND_INFRA;
	else if (req->argc == 2 && !strcmp(req->argv[1], "admin"))
		kind = CFG_KIND_ADMIN;
	else {
		console_req_error(req, "usage: %s <infra|admin>", what);
		return -EINVAL;
	}
	if (!hook)
		return not_available(req, what, "election");
	struct strbuf msg;
	sb_init(&msg);
	int r = hook(a, kind, &msg);
	log_notice("console: %s %s: %s", what, cfg_kind_to_str(kind),
		   r < 0 ? "refused" : "accepted");
	r = hook_answer(req, what, r, &msg);
	sb_free(&msg);
	return r;
}

static int cmd_promote(struct console_req *req, void *ud)
{
	return role_cmd(req, ud, true);
}

static int cmd_demote(struct console_req *req, void *ud)
{
	return role_cmd(req, ud, false);
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

int console_query_local(struct agent *a, const char *what, bool json, struct strbuf *out)
{
	char line[64];
	snprintf(line, sizeof(line), "%s%s", what, json ? " --json" : "");
	struct capture cap = {.out = out};
	struct console_req *pending = NULL;
	int r = console_exec(a->console, line, false, capture_finish, &cap, &pending);
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

static int query_local_hook(struct agent *a, const char *what, bool json, struct strbuf *out)
{
	return console_query_local(a, what, json, out);
}

static int query_local_cb(void *ud, const char *what, bool json, struct strbuf *out)
{
	struct agent *a = ud;
	return a->hooks.query_local ? a->hooks.query_local(a, what, json, out) : -EOPNOTSUPP;
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
	int r = serial_open(a->console, a->loop, path, a->cfg->nodes[a->self].name, &a->serial);
	if (r >= 0) /* [console] password; a reload changes the text in place */
		serial_set_password(a->serial, a->cfg->console_password);
	if (r < 0 || !a->opts.pid1)
		return r;
	/* Our lines also go to /dev/kmsg; the kernel would echo them onto this same line,
	 * across whatever is being typed. The console prints events and errors itself. */
	if (klogctl(KLOG_CONSOLE_LEVEL, NULL, 1) < 0)
		log_warn_errno(-errno, "cannot quiet kernel messages on the console, ignoring");
	return 0;
}

int console_cmds_setup(struct agent *a)
{
	struct console *c = a->console;
	a->hooks.query_local = query_local_hook;
	a->health = health_new(a->cfg->timeouts.health_interval);
	if (!a->health)
		return -ENOMEM;
	int r = health_attach(a->health, a->loop);
	if (r < 0)
		return r;
	static const struct query_transport none = {.send = no_transport, .max_payload = 1000};
	a->query = query_engine_new(a->loop, &a->cfg, &a->self, &none, query_local_cb, a);
	if (!a->query)
		return -ENOMEM;
	struct {
		const char *name, *args, *help;
		console_cmd_fn fn;
		void *ud;
	} cmds[] = {
	    {"health", "", "components, their state, last check and what was done", cmd_health, a},
	    {"approve-wipe", "<disk>", "authorize wiping one foreign disk (once)", cmd_approve_wipe,
	     a},
	    {"continue", "", "release the wait-operator profile", cmd_continue, a},
	    {"promote", "<infra|admin>", "make this node master (refused when unsafe)", cmd_promote,
	     a},
	    {"demote", "<infra|admin>", "step this node down to slave (refused when unsafe)",
	     cmd_demote, a},
	    {"query", "<scope> <what>",
	     "ask nodes; scope: all|compartment X|node N, what: status|health|paths|raid",
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
	r = health_checks_register(a, NULL);
	if (r < 0)
		return r;
	/* Host mode: --console DEV. As PID 1, pid1.c opens the console= device with
	 * console_open_serial() once it has set up /dev. */
	if (a->opts.console)
		return console_open_serial(a, a->opts.console);
	return 0;
}

int console_cmds_attach_disks(struct agent *a)
{
	if (!a->health || !a->disks)
		return -EINVAL;
	return health_disks_register(a->health, a->disks);
}

void console_cmds_teardown(struct agent *a)
{
	if (a->health)
		health_disks_unregister(a->health);
	a->serial = serial_free(a->serial);
	console_cmds_detach_hs(a);
	a->query = query_engine_free(a->query);
	health_checks_unregister(a);
	a->health = health_free(a->health);
}
