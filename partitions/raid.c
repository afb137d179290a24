/* The RAID driver: turns plan actions into mdadm command lines and runs them (fork/exec,
 * bounded in time, exit status checked). Exercised for real in the QEMU rig; the host has
 * no md driver. */
#include "raid.h"
#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int arg(struct raid_argv *v, const char *fmt, ...) _printf_(2, 3);
static int arg(struct raid_argv *v, const char *fmt, ...)
{
	if (v->argc >= RAID_MAX_ARGS)
		return -E2BIG;
	va_list ap;
	va_start(ap, fmt);
	int l = vsnprintf(v->buf[v->argc], sizeof(v->buf[0]), fmt, ap);
	va_end(ap);
	if (l < 0 || (size_t)l >= sizeof(v->buf[0]))
		return -ENAMETOOLONG;
	v->argv[v->argc] = v->buf[v->argc];
	v->argc++;
	v->argv[v->argc] = NULL;
	return 0;
}

int raid_build_argv(const char *mdadm, const char *homehost, const char *name,
		    const struct raid_action *a, struct raid_argv *ret)
{
	struct raid_argv *v = ret;
	int r;
	v->argc = 0;
	v->argv[0] = NULL;
	r = arg(v, "%s", mdadm);
	switch (a->kind) {
	case RAID_ACT_CREATE:
		if (r >= 0)
			r = arg(v, "--create");
		if (r >= 0)
			r = arg(v, "%s", a->md);
		if (r >= 0)
			r = arg(v, "--run");
		if (r >= 0)
			r = arg(v, "--metadata=1.2");
		if (r >= 0)
			r = arg(v, "--level=1");
		if (r >= 0)
			r = arg(v, "--raid-devices=%d", a->raid_devices);
		if (r >= 0)
			r = arg(v, "--name=%s", name);
		if (r >= 0)
			r = arg(v, "--homehost=%s", homehost);
		break;
	case RAID_ACT_ASSEMBLE:
		if (r >= 0)
			r = arg(v, "--assemble");
		if (r >= 0)
			r = arg(v, "%s", a->md);
		if (r >= 0)
			r = arg(v, "--run");
		if (r >= 0)
			r = arg(v, "--uuid=%s", a->uuid);
		break;
	case RAID_ACT_READD:
	case RAID_ACT_ADD:
		if (r >= 0)
			r = arg(v, "--manage");
		if (r >= 0)
			r = arg(v, "%s", a->md);
		if (r >= 0)
			r = arg(v, a->kind == RAID_ACT_ADD ? "--add" : "--re-add");
		break;
	case _RAID_ACT_MAX:
		return -EINVAL;
	}
	for (int i = 0; r >= 0 && i < a->n_devs; i++)
		r = arg(v, "%s", a->devs[i]);
	return r < 0 ? r : v->argc;
}

static void child(char *const argv[], int out_fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		if (out_fd < 0)
			dup2(null, 1);
	}
	if (out_fd >= 0)
		dup2(out_fd, 1);
	signal(SIGPIPE, SIG_DFL); /* (the agent ignores it) */
	execvp(argv[0], argv);
	_exit(127);
}

int raid_exec(char *const argv[], uint64_t timeout_us, struct strbuf *out)
{
	int p[2] = {-1, -1};
	if (out && pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		if (out) {
			close(p[0]);
			close(p[1]);
		}
		return e;
	}
	if (pid == 0)
		child(argv, out ? p[1] : -1);
	uint64_t deadline = now_usec() + timeout_us;
	if (out) {
		close(p[1]);
		char buf[4096];
		for (;;) {
			uint64_t now = now_usec();
			struct pollfd pfd = {.fd = p[0], .events = POLLIN};
			if (now >= deadline ||
			    poll(&pfd, 1, (int)((deadline - now) / 1000) + 1) <= 0)
				break;
			ssize_t l = read(p[0], buf, sizeof(buf));
			if (l <= 0)
				break;
			if (out->len < (1U << 20))
				sb_put(out, buf, (size_t)l);
		}
		close(p[0]);
	}
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (now_usec() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -ECHILD;
}

static void raid_event(const struct raid_input *in, const char *action, const struct raid_plan *p)
{
	struct event ev;
	event_begin(&ev, "raid");
	event_add(&ev, "name", in->name);
	event_add(&ev, "action", action);
	event_add(&ev, "state", raid_state_to_str(p->state));
	event_addf(&ev, "members", "%d/%d", p->up, p->total);
	event_emit(&ev);
}

static int run_one(const struct raid_driver *drv, const struct raid_input *in,
		   const struct raid_action *a)
{
	struct raid_argv v;
	int r = raid_build_argv(drv->mdadm, in->homehost, in->name, a, &v);
	if (r < 0)
		return log_error_errno(r, "Failed to build the mdadm command for %s", a->md);
	log_info("raid %s: %s %s%s", in->name, raid_action_to_str(a->kind), v.argv[1],
		 a->n_devs ? " …" : "");
	r = raid_exec(v.argv, drv->timeout_us, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to run %s", drv->mdadm);
	if (r != 0)
		return log_error_errno(-EIO, "%s %s %s: exit status %d", drv->mdadm,
				       raid_action_to_str(a->kind), a->md, r);
	return 0;
}

int raid_run_plan(const struct raid_driver *drv, const struct raid_input *in,
		  const struct raid_plan *p)
{
	for (int i = 0; i < p->n_acts; i++) {
		const struct raid_action *a = &p->acts[i];
		int r = run_one(drv, in, a);
		if (r < 0 && a->kind == RAID_ACT_READD) {
			struct raid_action add = *a;
			add.kind = RAID_ACT_ADD;
			log_warn("raid %s: re-add of %s refused, adding it instead", in->name,
				 a->devs[0]);
			r = run_one(drv, in, &add);
		}
		if (r < 0)
			return r;
		raid_event(in, raid_action_to_str(a->kind), p);
	}
	if (p->ignored[0])
		log_warn("raid %s: left alone (another array's superblock): %s", in->name,
			 p->ignored);
	return 0;
}

static void mark_in_array(struct raid_input *in, const char *detail)
{
	for (const char *s = detail; (s = strstr(s, "MD_DEVICE_"));) {
		const char *eq = strchr(s, '='), *nl = strchr(s, '\n');
		s += 10;
		if (!eq || (nl && nl < eq) || eq - 4 < s || strncmp(eq - 4, "_DEV", 4))
			continue;
		size_t l = nl ? (size_t)(nl - eq - 1) : strlen(eq + 1);
		for (int i = 0; i < in->n_members; i++)
			if (strlen(in->members[i].dev) == l &&
			    !strncmp(in->members[i].dev, eq + 1, l))
				in->members[i].in_array = true;
	}
}

int raid_examine_members(const struct raid_driver *drv, struct raid_input *in)
{
	char md[48];
	struct stat st;
	snprintf(md, sizeof(md), "/dev/md/%s", in->name);
	in->running = stat(md, &st) == 0;
	for (int i = 0; i < in->n_members; i++) {
		struct raid_member *m = &in->members[i];
		char *argv[] = {(char *)drv->mdadm, "--examine", "--export", m->dev, NULL};
		struct strbuf out;
		sb_init(&out);
		int r = raid_exec(argv, drv->timeout_us, &out);
		if (r < 0) {
			sb_free(&out);
			return log_error_errno(r, "Failed to run %s --examine", drv->mdadm);
		}
		r = raid_parse_examine(r == 0 && out.buf ? out.buf : "", m);
		sb_free(&out);
		if (r < 0)
			return log_error_errno(r, "%s: cannot parse mdadm --examine output",
					       m->dev);
	}
	if (in->running) {
		/* The name can outlive the array (stopped: the md device lingers, "clear"):
		 * running means mdadm can describe it. */
		char *argv[] = {(char *)drv->mdadm, "--detail", "--export", md, NULL};
		struct strbuf out;
		sb_init(&out);
		struct raid_member tmp = {0};
		if (raid_exec(argv, drv->timeout_us, &out) == 0 && out.buf) {
			raid_parse_examine(out.buf, &tmp);
			snprintf(in->running_uuid, sizeof(in->running_uuid), "%s", tmp.uuid);
			mark_in_array(in, out.buf);
		}
		if (!tmp.uuid[0]) {
			log_notice("raid %s: %s exists but is not an active array", in->name, md);
			in->running = false;
		}
		sb_free(&out);
	}
	return 0;
}
