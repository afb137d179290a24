#include "agent.h"
#include "guest.h"
#include "key_install.h"
#include "elect_drv.h"

#include "console_cmds.h"
#include "health.h"
#include "decision.h"
#include "hs.h"
#include "identity_wait.h"
#include "log.h"
#include "netcfg.h"
#include "bootstrap.h"
#include "pid1.h"
#include "spawn.h"
#include "cfgsync.h"
#include "config_cmd.h"
#include "config_store.h"
#include "health_disks.h"
#include "proctitle.h"
#include "storage.h"
#include "waiter.h"

#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/wait.h>

/* What the boot waits for (the network first: the handshake waits on it). */
static const char *agent_waiting_for(const struct agent *a)
{
	const char *n = waiter_reason(a->net_wait);
	return n ? n : waiter_reason(a->hs_wait);
}

static int cmd_status(struct console_req *req, void *ud)
{
	struct agent *a = ud;
	const struct cfg *c = a->env.cfg;
	const struct cfg_node *n = &c->nodes[a->env.self];
	const struct cfg_compartment *co = &c->compartments[n->compartment];
	char hash[65];
	cfg_hash_hex(c, hash);
	uint64_t up = (now_usec() - a->start_us) / USEC_PER_SEC;
	struct elect_fencing fence;
	elect_drv_fencing(a->elect, c, &fence);
	if (req->json) {
		struct strbuf *o = &req->out;
		sb_puts(o, "{\"node\":");
		sb_json_str(o, n->name);
		sb_puts(o, ",\"cluster\":");
		sb_json_str(o, c->name);
		sb_puts(o, ",\"compartment\":");
		sb_json_str(o, co->name);
		sb_printf(o, ",\"zone\":\"%s\",\"pair\":", cfg_zone_to_str(co->zone));
		sb_json_str(o, c->pairs[co->pair].name);
		sb_printf(o,
			  ",\"stage\":\"%s\",\"config_version\":%" PRIu64
			  ",\"config_hash\":\"%s\",\"uptime_s\":%" PRIu64 ",\"pid\":%d",
			  node_stage_to_str(a->env.stage), c->version, hash, up, (int)getpid());
		if (a->env.health)
			sb_printf(o, ",\"health\":\"%s\"", health_overall(a->env.health));
		if (a->elect) {
			const char *why = elect_drv_ineligible_cause(a->elect);
			sb_printf(o, ",\"eligible\":%s,\"ineligible\":", why ? "false" : "true");
			why ? sb_json_str(o, why) : sb_puts(o, "null");
		}
		sb_puts(o, ",\"fencing\":");
		elect_fencing_format(&fence, true, o);
		sb_puts(o, ",\"waiting\":");
		agent_waiting_for(a) ? sb_json_str(o, agent_waiting_for(a)) : sb_puts(o, "null");
		sb_puts(o, "}\n");
		return 0;
	}
	sb_printf(&req->out,
		  "node        %s\ncluster     %s\ncompartment %s (%s, pair %s)\nstage       %s\n"
		  "config      version %" PRIu64 ", blake2b %.16s…\nuptime      %" PRIu64 "s\n",
		  n->name, c->name, co->name, cfg_zone_to_str(co->zone), c->pairs[co->pair].name,
		  node_stage_to_str(a->env.stage), c->version, hash, up);
	if (a->env.health)
		sb_printf(&req->out, "health      %s ('health' shows the components)\n",
			  health_overall(a->env.health));
	if (a->elect) {
		const char *why = elect_drv_ineligible_cause(a->elect);
		sb_printf(&req->out, "election    %s%s\n", why ? "ineligible: " : "eligible",
			  why ? why : "");
	}
	sb_puts(&req->out, "fencing     ");
	elect_fencing_format(&fence, false, &req->out);
	sb_puts(&req->out, "\n");
	if (agent_waiting_for(a))
		sb_printf(&req->out, "waiting     %s\n", agent_waiting_for(a));
	return 0;
}

struct log_print_ctx {
	struct strbuf *out;
	bool json;
	bool first;
};

static void print_log_line(const struct log_line *l, void *ud)
{
	struct log_print_ctx *ctx = ud;
	double t = (double)l->mono_us / 1e6;
	if (ctx->json) {
		sb_printf(ctx->out,
			  "%s{\"t\":%.3f,\"level\":\"%s\",\"text\":", ctx->first ? "" : ",", t,
			  log_level_to_str(l->level));
		sb_json_str(ctx->out, l->text);
		sb_putc(ctx->out, '}');
	} else {
		sb_printf(ctx->out, "[%10.3f] %s\n", t, l->text);
	}
	ctx->first = false;
}

int agent_cmd_log(struct console_req *req, void *ud)
{
	long n = 20;
	if (req->argc > 2 || (req->argc == 2 && parse_int(req->argv[1], 1, 100000, &n) < 0)) {
		console_req_error(req, "usage: log [N], N a number of lines from 1");
		return -EINVAL;
	}
	struct log_print_ctx ctx = {.out = &req->out, .json = req->json, .first = true};
	if (req->json)
		sb_puts(&req->out, "{\"lines\":[");
	log_ring_foreach((size_t)n, print_log_line, &ctx);
	if (req->json)
		sb_puts(&req->out, "]}\n");
	return 0;
}

void agent_register_commands(struct agent *a)
{
	console_register(a->env.console, "status", "",
			 "this node: identity, stage, configuration, health", cmd_status, a);
	console_register(a->env.console, "log", "[N]", "the last N log lines (default 20)",
			 agent_cmd_log, a);
	config_cmd_register(a);
}

static void on_quit(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	struct agent *a = ud;
	if (a->root_storage && si->ssi_signo == SIGTERM) {
		/* A broadcast SIGTERM (a killing spree that ignores '@') must not take the root
		 * file system's storage away; SIGINT or the power going off stop this agent. */
		log_warn("signal %u ignored: this agent serves %s, the root file system's storage",
			 si->ssi_signo, a->root_storage);
		return;
	}
	if (a->opts.pid1 && getpid() == 1)
		pid1_shutdown((int)si->ssi_signo); /* busybox reboot asks init with SIGTERM */
	log_notice("signal %u: stopping", si->ssi_signo);
	loop_quit(l, 0);
}

/* PID 1 reaps the zombies nobody claimed: orphans re-parented to it, DHCP clients. */
static void reap_unclaimed(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		long pid;
		if (parse_int(de->d_name, 2, INT32_MAX, &pid) < 0 ||
		    spawn_child_claimed((pid_t)pid))
			continue;
		char path[64], buf[256];
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char *line = fgets(buf, sizeof(buf), f);
		fclose(f);
		const char *p = line ? strrchr(line, ')') : NULL;
		char state;
		int ppid;
		if (p && sscanf(p, ") %c %d", &state, &ppid) == 2 && state == 'Z' &&
		    ppid == getpid())
			(void)waitpid((pid_t)pid, NULL, WNOHANG);
	}
	closedir(d);
}

static void on_child(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	/* Children with their own watchers (hooks) are reaped there through pidfds; as PID 1
	 * this also reaps orphans re-parented to us. */
	struct agent *a = ud;
	if (a->opts.pid1)
		reap_unclaimed();
}

int agent_reload_config(struct agent *a, struct strbuf *msg)
{
	struct strbuf err;
	sb_init(&err);
	struct cfg *n = NULL;
	int r = cfg_load(a->env.cfg->path, a->kcmd.ovr, a->kcmd.n_ovr, &n, &err);
	if (r < 0) {
		sb_printf(msg, "config reload refused, keeping version %" PRIu64 ":\n%s",
			  a->env.cfg->version, err.buf ? err.buf : "");
		sb_free(&err);
		return r;
	}
	sb_free(&err);
	char lkg_why[160];
	const char *why = config_lkg_refuses(a->lkg, n, lkg_why, sizeof(lkg_why))
			      ? lkg_why
			      : cfg_topology_change(a->env.cfg, n);
	if (why) {
		sb_printf(msg,
			  "config reload refused, keeping version %" PRIu64 ": %s; "
			  "restart the agent to apply it",
			  a->env.cfg->version, why);
		cfg_free(n);
		return -EBUSY;
	}
	/* Same nodes, same order: modules keep their pointer and indices, values change. */
	cfg_replace(a->env.cfg, n);
	sb_printf(msg, "configuration reloaded, version %" PRIu64, a->env.cfg->version);
	return 0;
}

static void on_reload(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	struct agent *a = ud;
	struct strbuf msg;
	sb_init(&msg);
	int r = agent_reload_config(a, &msg);
	if (r < 0)
		log_error("%s", msg.buf ? msg.buf : "config reload refused");
	else
		log_notice("%s", msg.buf ? msg.buf : "configuration reloaded");
	sb_free(&msg);
	if (a->hs)
		(void)hs_reload_keys(a->hs); /* key rotation (SIGHUP re-reads the key file) */
}

static void usage_run(FILE *f)
{
	fprintf(f, "usage: compartd run [--foreground] --config FILE [--node NAME] "
		   "[--state-dir DIR] [--cmdline FILE] [--console TTY] [--state FILE]\n");
}

static int parse_run_opts(int argc, char **argv, struct agent_opts *o)
{
	static const struct option opts[] = {
	    {"foreground", no_argument, NULL, 'f'},    {"config", required_argument, NULL, 'c'},
	    {"node", required_argument, NULL, 'n'},    {"state-dir", required_argument, NULL, 's'},
	    {"cmdline", required_argument, NULL, 'k'}, {"help", no_argument, NULL, 'h'},
	    {"pid1", no_argument, NULL, 'P'},	       {"console", required_argument, NULL, 'C'},
	    {"state", required_argument, NULL, 'S'},   {NULL, 0, NULL, 0}};
	*o = (struct agent_opts){.config = "/etc/compartd/cluster.conf",
				 .state_dir = "/run/compartd"};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "fc:n:s:k:hC:", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o->foreground = true;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'k':
			o->cmdline = optarg;
			break;
		case 'P': /* set by pid1_main(), not for operators */
			o->pid1 = true;
			break;
		case 'C':
			o->console = optarg;
			break;
		case 'S':
			o->state = optarg;
			break;
		case 'h':
			usage_run(stdout);
			return 1;
		default:
			usage_run(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage_run(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Loads the configuration and finds which node this is; each failure says what to do. */
static int agent_identify(struct agent *a)
{
	struct strbuf err;
	sb_init(&err);
	int r = 0;
	if (a->opts.cmdline && kcmdline_read(a->opts.cmdline, &a->kcmd, &err) < 0)
		log_warn("%s", err.buf ? err.buf : "kernel command line not understood, ignoring");
	sb_reset(&err);
	const char *path = a->kcmd.has_config ? a->kcmd.config : a->opts.config;
	a->lkg = config_lkg_new(a->opts.state, a->opts.pid1, NULL);
	r = config_lkg_boot(a->lkg, path, a->kcmd.ovr, a->kcmd.n_ovr, &a->env.cfg, &err);
	if (r < 0) {
		log_error("configuration refused:\n%s", err.buf ? err.buf : "");
		goto out;
	}
	node_env_set_stage(&a->env, NODE_STAGE_IDENTITY);
	r = agent_identity_find(a); /* may wait for a late NIC (identity_wait.h) */
out:
	sb_free(&err);
	return r;
}

static int agent_setup_loop(struct agent *a)
{
	a->env.loop = loop_new();
	if (!a->env.loop)
		return -ENOMEM;
	int r;
	if ((r = loop_add_signal(a->env.loop, SIGTERM, on_quit, a)) < 0 ||
	    (r = loop_add_signal(a->env.loop, SIGINT, on_quit, a)) < 0 ||
	    (r = loop_add_signal(a->env.loop, SIGHUP, on_reload, a)) < 0 ||
	    (r = loop_add_signal(a->env.loop, SIGCHLD, on_child, a)) < 0)
		return log_error_errno(r, "cannot set up signal handling");
	r = console_new(a->env.loop, &a->env.console);
	if (r < 0)
		return r;
	agent_register_commands(a);
	agent_key_register(a);
	snprintf(a->sock_path, sizeof(a->sock_path), "%s/console.sock", a->opts.state_dir);
	r = console_listen(a->env.console, a->sock_path);
	if (r < 0)
		return log_error_errno(r, "cannot listen on %s", a->sock_path);
	return console_cmds_setup(a);
}

/* After the boot decision started its profile (the first time). */
static void agent_after_decision(struct decision *d, void *ud)
{
	struct agent *a = ud;
	if (a->elect)
		elect_drv_set_eligible(a->elect, decision_eligible(d));
	int p = decision_profile(d);
	/* Hooks ran: this version works here, or failed. wait-operator's too: a node that
	 * waits for its operator judges a new version by its hooks and core checks alone. */
	if (p >= RULES_PROFILE_WAIT_OPERATOR)
		agent_config_judge(a, decision_hooks_ok(d));
	if (a->env.stage >= NODE_STAGE_ELECTION)
		return;
	node_env_set_stage(&a->env, NODE_STAGE_ELECTION); /* joined above, now with eligibility */
	node_env_set_stage(&a->env, NODE_STAGE_READY);
	struct event ev;
	event_begin(&ev, "ready");
	event_add(&ev, "node", a->env.cfg->nodes[a->env.self].name);
	event_add(&ev, "profile", p >= 0 ? rules_profile_to_str((enum rules_profile)p) : "none");
	event_emit(&ev);
}

/* Serving the root file system's storage: the agent must outlive the hand-over to the real
 * root, so as PID 1 it moves to a child (pid1_fork_agent), and it marks itself '@'. */
static void agent_root_storage(struct agent *a)
{
	a->root_storage = storage_root_name(a->env.cfg, a->env.self, a->opts.pid1, NULL);
	if (!a->root_storage)
		return;
	if (a->opts.pid1 && getpid() == 1)
		(void)pid1_fork_agent();
	if (proctitle_mark_root_storage() < 0)
		log_warn("storage %s holds the root file system, but argv[0] cannot be marked, "
			 "ignoring",
			 a->root_storage);
	else
		log_notice("storage %s holds the root file system: pid %d is a root storage daemon "
			   "(argv[0] starts with '@', SIGTERM ignored)",
			   a->root_storage, (int)getpid());
}

/* Storage stage: logins and exports proceed in the loop; failing to reach storage does not
 * stop the agent. */
static void agent_start_storage(struct agent *a)
{
	node_env_set_stage(&a->env, NODE_STAGE_STORAGE);
	struct storage_opts o = {.listen_dir = a->opts.state_dir,
				 .nbd_device = "auto",
				 .link_dir = "/dev/compart",
				 .only_reachable = true,
				 .pid1 = a->opts.pid1};
	int r = storage_start(a->env.loop, a->env.cfg, a->env.cfg->nodes[a->env.self].name, &o,
			      &a->storage);
	if (r < 0)
		log_warn_errno(r, "storage not started, continuing without it");
	(void)storage_attach(a->storage, &a->env, &a->storage_attached);
}

/* The handshake is up: the election reads the quorum device from now on, not yet eligible
 * (the decision needs its slot freshness facts), then the decision after the window. */
static int agent_handshake_up(struct agent *a)
{
	int r = hs_new(a->env.loop, a->env.cfg, a->env.self, a->env.boot_id, a->hs_key, &a->hs);
	if (r < 0)
		return r;
	(void)hs_attach(a->hs, &a->env, a->query);
	(void)agent_config_sync_start(a);
	r = elect_drv_new(&a->env, a->hs_key, a->lkg, &a->elect);
	hs_key_free(a->hs_key);
	a->hs_key = NULL;
	if (r < 0)
		log_error_errno(r, "cannot join the election, continuing without");
	else {
		elect_drv_attach_hs(a->elect, a->hs);
		elect_drv_start(a->elect, false);
	}
	r = decision_new(&a->env, a->hs, agent_after_decision, a, &a->decision);
	if (r < 0)
		return r;
	return decision_start(a->decision);
}

/* The interface holding addr, and whether it has carrier (IFF_RUNNING); false when no
 * interface holds it. */
static bool addr_link(const struct cfg_addr *addr, char ifname[IFNAMSIZ], bool *running)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return false;
	bool found = false;
	const struct sockaddr *want = (const struct sockaddr *)&addr->ss;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != want->sa_family)
			continue;
		found = want->sa_family == AF_INET
			    ? !memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				      &((const struct sockaddr_in *)want)->sin_addr, 4)
			    : !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
				      &((const struct sockaddr_in6 *)want)->sin6_addr, 16);
		if (found) {
			snprintf(ifname, IFNAMSIZ, "%s", i->ifa_name);
			*running = i->ifa_flags & IFF_RUNNING;
		}
	}
	freeifaddrs(ifa);
	return found;
}

/* The handshake waits for its address to be bindable and for carrier on the link holding
 * it: a decision taken with the own link down would count every peer as silent. After
 * HS_CARRIER_WAIT_US without carrier it goes on (a broken link is for the rules). */
#define HS_CARRIER_WAIT_US (120 * USEC_PER_SEC)
static int hs_try_bind(void *ud, struct strbuf *why)
{
	struct agent *a = ud;
	int r = hs_bind_check(a->env.cfg, a->env.self, why);
	if (r < 0)
		return r;
	char ifname[IFNAMSIZ];
	bool running = true;
	if (!addr_link(&a->env.cfg->nodes[a->env.self].handshake, ifname, &running) || running)
		return 0;
	uint64_t now = now_usec();
	if (!a->hs_carrier_since)
		a->hs_carrier_since = now;
	if (now - a->hs_carrier_since >= HS_CARRIER_WAIT_US) {
		log_warn("handshake: still no carrier on %s after %llus, going on", ifname,
			 (unsigned long long)((now - a->hs_carrier_since) / USEC_PER_SEC));
		return 0;
	}
	sb_printf(why, "link down on %s (the handshake address's link)", ifname);
	return -ENETDOWN;
}

/* The address became bindable. Losing it again before hs_new bound it means waiting
 * again; anything else stops the agent as a failed start did. */
static void hs_bindable(void *ud)
{
	struct agent *a = ud;
	int r = agent_handshake_up(a);
	if (r == -EADDRNOTAVAIL || r == -EADDRINUSE)
		waiter_start(a->hs_wait);
	else if (r < 0)
		loop_quit(a->env.loop, log_error_errno(r, "cannot start the handshake"));
}

/* A link or an address changed: a wait for one may be over. */
static void on_net_change(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct agent *a = ud;
	if (netcfg_monitor_drain(fd) < 0) {
		a->net_watch = watch_remove(a->net_watch); /* the back-off still retries */
		return;
	}
	waiter_wake(a->net_wait);
	waiter_wake(a->hs_wait);
}

static void agent_watch_net(struct agent *a)
{
	if (a->net_fd >= 0)
		return;
	a->net_fd = netcfg_monitor_open();
	if (a->net_fd < 0) {
		log_warn_errno(a->net_fd,
			       "no link and address notifications, retrying on a timer only");
		return;
	}
	a->net_watch = watch_add(a->env.loop, a->net_fd, EPOLLIN, on_net_change, a, NULL);
}

/* The key is there (file, stored, or typed on the serial console): the sockets once the
 * address can be bound (an address not assigned yet, or still taken, heals by itself:
 * SPEC §11), then the rest. Takes key. */
static int agent_handshake_with_key(struct agent *a, uint8_t *key)
{
	a->hs_key = key;
	a->hs_wait = waiter_new(a->env.loop, "handshake", hs_try_bind, hs_bindable, a);
	if (!a->hs_wait)
		return -ENOMEM;
	waiter_start(a->hs_wait);
	return 0;
}

/* Handshake stage: the key (file, stored, or waited for on the serial console). */
static int agent_start_handshake(struct agent *a)
{
	node_env_set_stage(&a->env, NODE_STAGE_HANDSHAKE);
	uint8_t *key = NULL;
	int r = agent_key_get(a, &key);
	if (r == -ENOKEY)
		return agent_key_wait(a, agent_handshake_with_key);
	return r < 0 ? r : agent_handshake_with_key(a, key);
}

int agent_run_main(int argc, char **argv)
{
	struct agent a = {
	    .env.self = -1, .start_us = now_usec(), .net_fd = -1, .judged_profile = -1};
	int r = parse_run_opts(argc, argv, &a.opts);
	if (r != 0)
		return r > 0 ? 0 : 2;
	a.env.pid1 = a.opts.pid1;
	a.env.state_dir = a.opts.state_dir;
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(a.env.boot_id, sizeof(a.env.boot_id));
	node_env_set_stage(&a.env, NODE_STAGE_EARLY);
	r = agent_identify(&a);
	if (r < 0)
		goto out;
	log_notice("this is node %s of cluster %s", a.env.cfg->nodes[a.env.self].name,
		   a.env.cfg->name);
	agent_root_storage(&a);
	r = agent_setup_loop(&a);
	if (r < 0)
		goto out;
	agent_watch_net(&a);
	if (a.opts.pid1) {
		(void)pid1_network(&a);
		(void)pid1_serial_start(&a);
		(void)pid1_disks(&a);
		config_lkg_attach_disks(a.lkg, a.disks);
		(void)pid1_guest(&a);
	}
	agent_start_storage(&a);
	r = agent_start_handshake(&a);
	if (r < 0)
		goto out;
	r = loop_run(a.env.loop);
out:
	/* In reverse: each module detaches from the engines while they still run. */
	a.guest = guest_free(a.guest);
	a.decision = decision_free(a.decision);
	a.elect = elect_drv_free(a.elect);
	if (a.hs)
		hs_detach(a.hs, &a.env);
	a.hs = hs_free(a.hs);
	a.cfgsync = cfgsync_free(a.cfgsync); /* after hs: it was subscribed */
	agent_config_sync_free(&a);
	a.hs_wait = waiter_free(a.hs_wait);
	pid1_network_free(&a);
	a.net_watch = watch_remove(a.net_watch);
	if (a.net_fd >= 0)
		close(a.net_fd);
	hs_key_free(a.hs_key);
	a.storage_attached = storage_detach(a.storage_attached);
	a.storage = storage_free(a.storage);
	if (a.disks)
		disk_module_detach(a.disks, &a.env);
	a.disks = disk_module_free(a.disks);
	console_cmds_teardown(&a);
	a.lkg = config_lkg_free(a.lkg);
	console_free(a.env.console);
	loop_free(a.env.loop);
	cfg_free(a.env.cfg);
	return r < 0 ? 1 : 0;
}
