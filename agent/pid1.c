#include "pid1.h"

#include "agent.h"
#include "bootstrap.h"
#include "console_cmds.h"
#include "guest.h"
#include "health_disks.h"
#include "log.h"
#include "netcfg.h"
#include "waiter.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>

#define PID1_SHELL "/bin/sh"
#define PID1_UDHCPC "/sbin/udhcpc"
#define PID1_DHCP_SCRIPT "/etc/compartd/udhcpc.script"

bool pid1_wanted(const char *argv0)
{
	return getpid() == 1 || (argv0 && !strcmp(argv0, "/init"));
}

/* ---- early init: mounts, console, modules ---- */

static void mount_one(const char *src, const char *dst, const char *type, unsigned long flags,
		      const char *data)
{
	(void)mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		log_warn("cannot mount %s on %s: %m, continuing", type, dst);
}

static void early_mounts(void)
{
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	(void)mkdir("/run/compartd", 0700);
}

/* compartd.console=, else the last console=, else ttyS0; "ttyS0,115200" → /dev/ttyS0. */
static void console_path(const struct kcmdline *k, char *out, size_t n)
{
	const char *c = k->has_console && k->console[0] ? k->console
			: k->kernel_console[0]		? k->kernel_console
							: "ttyS0";
	size_t len = strcspn(c, ",");
	snprintf(out, n, "%s%.*s", c[0] == '/' ? "" : "/dev/", (int)len, c);
}

/* The console device PID 1 uses for stdio. */
static char console_dev[96];

/* Opens the console as stdin/stdout/stderr. Also after a rescue shell: the kernel hangs up
 * a terminal when the session leader that owned it exits, so the old descriptors are dead. */
static void console_open(void)
{
	int fd = open(console_dev, O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return; /* nothing to talk to; the log still goes to /dev/kmsg */
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		t.c_lflag |= ICANON | ECHO | ECHOE | ISIG;
		t.c_oflag |= OPOST | ONLCR;
		t.c_iflag |= ICRNL;
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
	clearerr(stdin);
	clearerr(stdout);
}

const char *pid1_console_device(void)
{
	return console_dev[0] ? console_dev : NULL;
}

static void console_setup(const struct kcmdline *k)
{
	console_path(k, console_dev, sizeof(console_dev));
	console_open();
}

/* Loads lib/modules/<release>/compartd.load in order (written by images/kernel.sh). */
static void load_modules(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return;
	char dir[256], list[300];
	snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	snprintf(list, sizeof(list), "%s/compartd.load", dir);
	_cleanup_fclose_ FILE *f = fopen(list, "re");
	if (!f) {
		log_warn("no module list %s: %m, continuing with built-in drivers", list);
		return;
	}
	char line[256];
	unsigned loaded = 0;
	while (fgets(line, sizeof(line), f)) {
		char *m = strstrip(line);
		if (!*m || *m == '#')
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", dir, m);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST))
			log_warn("cannot load module %s: %m, continuing", m);
		else
			loaded++;
	}
	log_info("loaded %u kernel modules from %s", loaded, list);
}

static void write_file(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		(void)write_all(fd, text, strlen(text));
}

/* ---- processes ---- */

static pid_t pid1_spawn(char *const argv[], bool tty)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if (tty) {
		setsid();
		(void)ioctl(0, TIOCSCTTY, 1);
	}
	execv(argv[0], argv);
	fprintf(stderr, "cannot start %s: %m\n", argv[0]);
	_exit(127);
}

/* ---- after a fatal error: keep the console, never exit ---- */

static void rescue_shell_blocking(void)
{
	char *argv[] = {PID1_SHELL, "-l", NULL};
	pid_t pid = pid1_spawn(argv, true);
	if (pid < 0) {
		printf("cannot start %s: %s\n", PID1_SHELL, strerror((int)-pid));
		return;
	}
	for (;;) {
		pid_t p = waitpid(-1, NULL, 0); /* reaps orphans too */
		if (p == pid || (p < 0 && errno == ECHILD))
			break;
	}
	console_open();
}

_Noreturn static void rescue_forever(const char *why)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	log_error("FATAL: %s", why);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		printf(
		    "\ncompartd: %s.\n"
		    "The node is not part of the cluster. Fix the cause named above (the kernel\n"
		    "command line, cluster.conf in the image, or the hardware), then reboot.\n"
		    "Type 'sh' for a rescue shell, 'reboot' to restart, 'poweroff' to stop.\n"
		    "rescue> ",
		    why);
		fflush(stdout);
		char line[128];
		if (!fgets(line, sizeof(line), stdin)) {
			clearerr(stdin);
			sleep(5); /* no console to read: wait without spinning */
			continue;
		}
		char *w = strstrip(line);
		if (!strcmp(w, "sh"))
			rescue_shell_blocking();
		else if (!strcmp(w, "reboot") || !strcmp(w, "poweroff")) {
			sync();
			reboot(!strcmp(w, "reboot") ? RB_AUTOBOOT : RB_POWER_OFF);
		}
	}
}

_Noreturn void pid1_main(int argc, char **argv)
{
	early_mounts();
	log_set_target(LOG_TARGET_KMSG);
	/* Without this the kernel drops most of our lines as a burst from user space. */
	write_file("/proc/sys/kernel/printk_devkmsg", "on\n");
	struct kcmdline k;
	struct strbuf err;
	sb_init(&err);
	(void)kcmdline_read("/proc/cmdline", &k, &err); /* problems are reported by the agent */
	sb_free(&err);
	if (k.debug)
		log_set_max_level(LOG_LVL_DEBUG);
	console_setup(&k);
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "vt100", 0);
	load_modules();

	char *run_argv[] = {"run",	     "--foreground", "--pid1",	      "--state-dir",
			    "/run/compartd", "--cmdline",    "/proc/cmdline", NULL};
	int r = agent_run_main((int)ARRAY_SIZE(run_argv) - 1, run_argv);
	char why[96];
	snprintf(why, sizeof(why), "the agent stopped (exit status %d)", r);
	rescue_forever(why);
}

/* ---- root storage: init and agent in two processes ---- */

static void init_signals(sigset_t *set)
{
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(set, sigs[i]);
}

_Noreturn static void hold(pid_t agent)
{
	sigset_t set;
	init_signals(&set);
	log_notice("init: the agent goes on as pid %d; pid 1 reaps and reboots", (int)agent);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig != SIGCHLD) {
			if (sig > 0)
				pid1_shutdown(sig);
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != agent)
				continue;
			char why[96];
			if (WIFSIGNALED(st))
				snprintf(why, sizeof(why),
					 "the agent (pid %d) was killed by signal %d", (int)p,
					 WTERMSIG(st));
			else
				snprintf(why, sizeof(why),
					 "the agent (pid %d) stopped (exit status %d)", (int)p,
					 WEXITSTATUS(st));
			rescue_forever(why);
		}
	}
}

int pid1_fork_agent(void)
{
	sigset_t set, old;
	init_signals(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return log_error_errno(r, "init: cannot fork the agent, it stays pid 1");
	}
	if (pid > 0)
		hold(pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}

_Noreturn void pid1_shutdown(int signo)
{
	unsigned how = signo == SIGUSR2	  ? RB_POWER_OFF
		       : signo == SIGUSR1 ? RB_HALT_SYSTEM
					  : RB_AUTOBOOT;
	log_notice("signal %d: %s", signo,
		   how == RB_POWER_OFF	   ? "powering off"
		   : how == RB_HALT_SYSTEM ? "halting"
					   : "rebooting");
	sync();
	reboot((int)how);
	rescue_forever("reboot failed");
}

static void on_shutdown_signal(struct loop *l, const struct signalfd_siginfo *si, void *ud)
{
	struct agent *a = ud;
	a->guest = guest_free(a->guest); /* initiators see the sessions end, not time out */
	pid1_shutdown((int)si->ssi_signo);
}

/* ---- network ---- */

static pid_t start_dhcp(const char *ifname)
{
	char iface[IFNAMSIZ + 1];
	snprintf(iface, sizeof(iface), "%s", ifname);
	char *argv[] = {PID1_UDHCPC, "-f", "-i", iface, "-s", PID1_DHCP_SCRIPT, "-t", "10", "-T",
			"2",	     "-A", "10", "-S",	NULL};
	pid_t pid = pid1_spawn(argv, false);
	if (pid < 0)
		log_error_errno((int)pid, "network: cannot start DHCP client on %s", ifname);
	else
		log_info("network: DHCP client on %s (pid %d)", ifname, (int)pid);
	return pid;
}

static bool has_ipv4(const char *ifname)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return false;
	bool found = false;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next)
		found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
			!strcmp(i->ifa_name, ifname);
	freeifaddrs(ifa);
	return found;
}

/* The network waits (SPEC §11): the plan is applied again when it changes (an interface
 * appeared) or, after a failure, when a carrier or an address changed; DHCP clients start once per
 * link and retry on their own (udhcpc without -n). */
static struct {
	struct strbuf plan; /* the applied plan as text, to see a change */
	struct strbuf sig;  /* net_signature() at the last attempt */
	bool failed;	    /* the last apply had an error */
	char dhcp[NETCFG_MAX_LINKS][IFNAMSIZ];
	pid_t dhcp_pid[NETCFG_MAX_LINKS]; /* its udhcpc (reaped by PID 1 when it ends) */
	size_t n_dhcp;
} pnet;

static bool dhcp_started(const char *link)
{
	for (size_t i = 0; i < pnet.n_dhcp; i++)
		if (!strcmp(pnet.dhcp[i], link))
			return true;
	return false;
}

static void plan_text(const struct netcfg_plan *p, struct strbuf *out)
{
	for (size_t i = 0; i < p->n; i++) {
		char line[160];
		netcfg_action_format(&p->actions[i], line, sizeof(line));
		sb_printf(out, "%s\n", line);
	}
}

/* What a failed apply may depend on: each link's carrier and the IPv4 addresses (a DHCP
 * lease makes a route via its gateway possible). */
static void net_signature(const struct netcfg_link *links, int n, struct strbuf *out)
{
	for (int i = 0; i < n; i++)
		sb_printf(out, "%s:%d ", links[i].name, links[i].carrier);
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			sb_printf(out, "%s=%08x ", i->ifa_name,
				  ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifa);
}

static void net_apply(struct agent *a, const struct netcfg_link *links, int n)
{
	struct netcfg_plan plan;
	struct strbuf warn, text, sig;
	sb_init(&warn);
	sb_init(&text);
	sb_init(&sig);
	net_signature(links, n, &sig);
	int r =
	    netcfg_plan(&a->env.cfg->nodes[a->env.self], &a->kcmd, links, (size_t)n, &plan, &warn);
	if (r >= 0)
		plan_text(&plan, &text);
	bool changed = r >= 0 && (!pnet.plan.buf || !text.buf || strcmp(pnet.plan.buf, text.buf));
	bool retry = pnet.failed && (!pnet.sig.buf || !sig.buf || strcmp(pnet.sig.buf, sig.buf));
	if (r < 0 && !pnet.failed)
		log_error_errno(r, "network: the configuration does not fit");
	if (r >= 0 && (changed || retry)) {
		if (changed && warn.buf && warn.buf[0])
			log_notice("network: %s", strstrip(warn.buf));
		r = netcfg_apply(&plan);
		sb_reset(&pnet.plan);
		sb_puts(&pnet.plan, text.buf ? text.buf : "");
		for (size_t i = 0; i < plan.n; i++)
			if (plan.actions[i].op == NETCFG_DHCP &&
			    !dhcp_started(plan.actions[i].link) && pnet.n_dhcp < NETCFG_MAX_LINKS) {
				pnet.dhcp_pid[pnet.n_dhcp] = start_dhcp(plan.actions[i].link);
				snprintf(pnet.dhcp[pnet.n_dhcp++], IFNAMSIZ, "%s",
					 plan.actions[i].link);
			}
	}
	pnet.failed = r < 0 ? true : changed || retry ? false : pnet.failed;
	sb_reset(&pnet.sig);
	sb_puts(&pnet.sig, sig.buf ? sig.buf : "");
	sb_free(&warn);
	sb_free(&text);
	sb_free(&sig);
}

static int dhcp_waiting(struct strbuf *why)
{
	int k = 0;
	for (size_t i = 0; i < pnet.n_dhcp; i++)
		if (!has_ipv4(pnet.dhcp[i])) {
			/* udhcpc keeps asking; one that ended (and was reaped) starts again */
			if (pnet.dhcp_pid[i] <= 0 || kill(pnet.dhcp_pid[i], 0) < 0)
				pnet.dhcp_pid[i] = start_dhcp(pnet.dhcp[i]);
			sb_printf(why, "%sno DHCP lease on %s", why->len ? "; " : "", pnet.dhcp[i]);
			k++;
		}
	return k;
}

static int net_try(void *ud, struct strbuf *why)
{
	struct agent *a = ud;
	struct netcfg_link links[NETCFG_MAX_LINKS];
	int n = netcfg_links_read("/sys/class/net", links, ARRAY_SIZE(links));
	if (n < 0) {
		sb_printf(why, "cannot list interfaces: %s", strerror(-n));
		return n;
	}
	net_apply(a, links, n);
	/* the links brought up just now: their carrier as it is after the apply */
	n = netcfg_links_read("/sys/class/net", links, ARRAY_SIZE(links));
	int k =
	    n < 0 ? 0 : netcfg_waiting_for(&a->env.cfg->nodes[a->env.self], links, (size_t)n, why);
	k += dhcp_waiting(why);
	if (pnet.failed && !k) /* else a route via a missing link failed: that link is the news */
		sb_printf(why, "the network configuration did not apply (see the log)"), k++;
	return k ? -EAGAIN : 0;
}

static void net_up(void *ud)
{
	log_info("network: every configured interface is up");
}

int pid1_network(struct agent *a)
{
	sb_init(&pnet.plan);
	sb_init(&pnet.sig);
	a->net_wait = waiter_new(a->env.loop, "network", net_try, net_up, a);
	if (!a->net_wait)
		return -ENOMEM;
	waiter_try_now(a->net_wait);
	return 0;
}

void pid1_network_free(struct agent *a)
{
	a->net_wait = waiter_free(a->net_wait);
	sb_free(&pnet.plan);
	sb_free(&pnet.sig);
}

/* ---- disks ---- */

int pid1_disks(struct agent *a)
{
	node_env_set_stage(&a->env, NODE_STAGE_DISKS);
	struct disk_bootstrap_opts o = {.apply = true, .raid = true};
	int r = disk_module_new(a->env.cfg, a->env.self, &o, &a->disks);
	if (r < 0)
		return log_error_errno(r, "disks: cannot start");
	r = disk_module_bootstrap(a->disks);
	node_env_set_stage(&a->env, NODE_STAGE_RAID);
	(void)disk_module_attach(a->disks, &a->env);
	if (r < 0)
		log_error_errno(
		    r, "disks: the stage did not finish; 'disks' and 'raid' on the console "
		       "show what is missing, 'approve-wipe <disk>' authorizes a foreign disk");
	return r;
}

/* ---- the guest storage network ---- */

int pid1_guest(struct agent *a)
{
	int r = guest_new(a->env.cfg, a->env.self, a->disks ? disk_module_result(a->disks) : NULL,
			  NULL, &a->guest);
	if (r < 0)
		return log_error_errno(r, "guest: cannot start");
	return guest_attach(a->guest, &a->env);
}

/* ---- the serial console ---- */

int pid1_serial_start(struct agent *a)
{
	(void)loop_add_signal(a->env.loop, SIGUSR1, on_shutdown_signal, a);
	(void)loop_add_signal(a->env.loop, SIGUSR2, on_shutdown_signal, a);
	int r = console_open_serial(a, console_dev);
	if (r < 0)
		return log_error_errno(r, "no console on %s; the socket still answers compartctl",
				       console_dev);
	return 0;
}
