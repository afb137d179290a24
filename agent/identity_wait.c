#include "identity_wait.h"

#include "agent.h"
#include "identity.h"
#include "log.h"
#include "netcfg.h"
#include "pid1.h"
#include "serial.h"
#include "waiter.h"

#include <string.h>
#include <sys/klog.h>
#include <unistd.h>

#define KLOG_CONSOLE_LEVEL 8 /* SYSLOG_ACTION_CONSOLE_LEVEL in the kernel's syslog(2) */

struct idwait {
	struct agent *a;
	struct loop *loop;
	struct console *console;
	struct serial *serial;
	struct waiter *w;
	int net_fd;
	struct watch *net_watch;
	uint64_t t0, bound_us;
	struct strbuf final; /* identity_resolve's sentence for the last attempt */
};

/* One resolution from the MACs as they are now. */
static int resolve(struct agent *a, uint8_t (*macs)[6], int *n, struct strbuf *err)
{
	*n = identity_local_macs("/sys/class/net", macs, IDENT_MAX_MACS);
	if (*n < 0)
		*n = 0;
	const char *name = a->opts.node ? a->opts.node : a->kcmd.has_node ? a->kcmd.node : NULL;
	return identity_resolve(a->env.cfg, name, a->kcmd.has_bootif ? a->kcmd.bootif : NULL,
				(const uint8_t(*)[6])macs, (size_t)*n, &a->env.self, err);
}

static int try_identity(void *ud, struct strbuf *why)
{
	struct idwait *iw = ud;
	uint8_t macs[IDENT_MAX_MACS][6];
	int n;
	sb_reset(&iw->final);
	int r = resolve(iw->a, macs, &n, &iw->final);
	if (r != -ENXIO) {
		if (r < 0) /* a NIC that appeared made it final (several nodes match) */
			loop_quit(iw->loop, r);
		return r < 0 ? r : 0;
	}
	struct strbuf have;
	sb_init(&have);
	identity_format_macs((const uint8_t(*)[6])macs, (size_t)n, &have);
	sb_printf(why, "no interface with a configured MAC yet (this host has: %s)", have.buf);
	uint64_t waited = now_usec() - iw->t0;
	if (iw->bound_us && waited >= iw->bound_us) {
		log_error(
		    "identity: no interface with a configured MAC appeared within %llus (this "
		    "host has: %s): no node of %s can match; set compartd.node= on the kernel "
		    "command line or this host's MAC in a node's mac = line, then reboot",
		    (unsigned long long)(waited / USEC_PER_SEC), have.buf, iw->a->env.cfg->path);
		loop_quit(iw->loop, -ENXIO);
	}
	sb_free(&have);
	return r;
}

static void identity_found(void *ud)
{
	struct idwait *iw = ud;
	loop_quit(iw->loop, 0);
}

static int cmd_status(struct console_req *req, void *ud)
{
	struct idwait *iw = ud;
	const char *why = waiter_reason(iw->w);
	uint64_t up = (now_usec() - iw->a->start_us) / USEC_PER_SEC;
	if (req->json) {
		sb_puts(&req->out, "{\"node\":null,\"cluster\":");
		sb_json_str(&req->out, iw->a->env.cfg->name);
		sb_printf(&req->out, ",\"stage\":\"identity\",\"uptime_s\":%llu,\"waiting\":",
			  (unsigned long long)up);
		why ? sb_json_str(&req->out, why) : sb_puts(&req->out, "null");
		sb_puts(&req->out, "}\n");
		return 0;
	}
	sb_printf(&req->out,
		  "node        not known yet\ncluster     %s\nstage       identity\n"
		  "uptime      %llus\n",
		  iw->a->env.cfg->name, (unsigned long long)up);
	if (why)
		sb_printf(&req->out, "waiting     %s\n", why);
	return 0;
}

static void on_signal(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	struct idwait *iw = ud;
	if (iw->a->opts.pid1 && getpid() == 1)
		pid1_shutdown((int)si->ssi_signo); /* busybox reboot/poweroff/halt */
	log_notice("signal %u while waiting for the identity: stopping", si->ssi_signo);
	loop_quit(l, -EINTR);
}

static void on_net_change(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct idwait *iw = ud;
	if (netcfg_monitor_drain(fd) < 0)
		iw->net_watch = watch_remove(iw->net_watch); /* the back-off still retries */
	else
		waiter_wake(iw->w);
}

/* The console while waiting: the socket, the serial line (PID 1's console, or --console). */
static int idwait_console(struct idwait *iw)
{
	struct agent *a = iw->a;
	int r = console_new(iw->loop, &iw->console);
	if (r < 0)
		return r;
	(void)console_register(iw->console, "status", "", "this node: stage, what it waits for",
			       cmd_status, iw);
	(void)console_register(iw->console, "log", "[N]", "the last N log lines (default 20)",
			       agent_cmd_log, a);
	(void)console_register(iw->console, "shell", "",
			       "rescue shell on the serial line (console paused)", serial_cmd_shell,
			       NULL);
	(void)console_register(iw->console, "sh", "", "the same as shell", serial_cmd_shell, NULL);
	snprintf(a->sock_path, sizeof(a->sock_path), "%s/console.sock", a->opts.state_dir);
	if ((r = console_listen(iw->console, a->sock_path)) < 0)
		log_warn_errno(r, "cannot listen on %s while waiting for the identity",
			       a->sock_path);
	const char *dev = a->opts.pid1 ? pid1_console_device() : a->opts.console;
	if (!dev || serial_open(iw->console, iw->loop, dev, NULL, &iw->serial) < 0)
		return 0;
	serial_set_password(iw->serial, a->env.cfg->console_password);
	if (a->opts.pid1) /* the console prints our lines; the kernel would echo them too */
		(void)klogctl(KLOG_CONSOLE_LEVEL, NULL, 1);
	return 0;
}

static int idwait_setup(struct idwait *iw)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
	iw->loop = loop_new();
	if (!iw->loop)
		return -ENOMEM;
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if ((r = loop_add_signal(iw->loop, sigs[i], on_signal, iw)) < 0)
			return r;
	r = idwait_console(iw);
	if (r < 0)
		return r;
	iw->net_fd = netcfg_monitor_open();
	if (iw->net_fd >= 0)
		iw->net_watch = watch_add(iw->loop, iw->net_fd, EPOLLIN, on_net_change, iw, NULL);
	iw->w = waiter_new(iw->loop, "identity", try_identity, identity_found, iw);
	return iw->w ? 0 : -ENOMEM;
}

static void idwait_free(struct idwait *iw)
{
	iw->w = waiter_free(iw->w);
	iw->net_watch = watch_remove(iw->net_watch);
	if (iw->net_fd >= 0)
		close(iw->net_fd);
	iw->serial = serial_free(iw->serial);
	iw->console = console_free(iw->console);
	iw->loop = loop_free(iw->loop);
	sb_free(&iw->final);
}

/* Waits for a NIC with a configured MAC; the modules start only afterwards, on a loop of
 * their own (this one is gone by then). */
static int identity_wait(struct agent *a)
{
	struct idwait iw = {.a = a, .net_fd = -1, .t0 = now_usec()};
	iw.bound_us =
	    a->kcmd.has_identity_wait ? a->kcmd.identity_wait_us : IDENTITY_WAIT_DEFAULT_US;
	sb_init(&iw.final);
	int r = idwait_setup(&iw);
	if (r >= 0) {
		waiter_start(iw.w);
		r = loop_run(iw.loop);
	}
	if (r < 0 && r != -ENXIO && r != -EINTR)
		log_error("identity: %s", iw.final.len ? iw.final.buf : strerror(-r));
	idwait_free(&iw);
	return r;
}

int agent_identity_find(struct agent *a)
{
	struct strbuf err;
	sb_init(&err);
	uint8_t macs[IDENT_MAX_MACS][6];
	int n;
	int r = resolve(a, macs, &n, &err);
	if (r == -ENXIO) {
		log_notice("identity: %s; waiting for a NIC with a configured MAC", err.buf);
		r = identity_wait(a);
	} else if (r < 0) {
		log_error("identity: %s", err.buf ? err.buf : "");
	}
	sb_free(&err);
	return r;
}
