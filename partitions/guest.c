/* The guest export's driver: carries out the configfs plan (guest_plan.c) under the
 * configfs root, tears it down in reverse, and reads the export's state back. */
#include "guest_int.h"

#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 256

static const char *root(const struct guest_opts *o)
{
	return o->configfs ? o->configfs : GUEST_CONFIGFS;
}

static int full_path(const struct guest_opts *o, const char *rel, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/%s", root(o), rel) >= n)
		return -ENAMETOOLONG;
	return 0;
}

/* mkdir -p of the parent: only for the simulated configfs (its groups exist by themselves
 * in the real one). */
static int mkdir_parents(char *path)
{
	for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		int r = mkdir(path, 0755);
		*s = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

static int write_attr(const struct guest_opts *o, const char *path, const char *v, size_t len)
{
	int flags = O_WRONLY | O_CLOEXEC | (o->simulate ? O_CREAT | O_TRUNC : 0);
	_cleanup_close_ int fd = open(path, flags, 0600);
	if (fd < 0)
		return -errno;
	return write_all(fd, v, len);
}

/* The first line of the secret file, written; it only ever lives in sodium_malloc memory,
 * wiped when freed. */
static int write_secret(const struct guest_opts *o, const char *path, const char *file)
{
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	char *buf = sodium_malloc(SECRET_MAX + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n;
	do
		n = read(fd, buf, SECRET_MAX);
	while (n < 0 && errno == EINTR);
	int r = n < 0 ? -errno : 0;
	if (r == 0) {
		buf[n] = '\0';
		size_t l = strcspn(buf, "\r\n");
		r = l ? write_attr(o, path, buf, l) : -ENODATA;
	}
	sodium_free(buf);
	return r;
}

static int op_do(const struct guest_opts *o, const struct guest_op *op)
{
	char p[CFG_PATH_MAX + GUEST_OP_PATH_MAX], v[CFG_PATH_MAX + GUEST_OP_PATH_MAX];
	int r = full_path(o, op->path, p, sizeof(p));
	if (r == 0 && o->simulate)
		r = mkdir_parents(p);
	if (r < 0)
		return r;
	switch (op->kind) {
	case GUEST_OP_MKDIR:
		if (mkdir(p, 0755) < 0 && !(errno == EEXIST && op->shared))
			return -errno;
		return 0;
	case GUEST_OP_WRITE:
		return write_attr(o, p, op->value, strlen(op->value));
	case GUEST_OP_SECRET:
		return write_secret(o, p, op->value);
	case GUEST_OP_LINK:
		r = full_path(o, op->value, v, sizeof(v));
		return r < 0 ? r : symlink(v, p) < 0 ? -errno : 0;
	case _GUEST_OP_MAX:
		break;
	}
	return -EINVAL;
}

/* Removes what configfs would remove by itself with the directory (attributes, default
 * groups): the simulated configfs only. */
static void rm_contents(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[CFG_PATH_MAX + GUEST_OP_PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR) {
			rm_contents(p);
			(void)rmdir(p);
		} else {
			(void)unlink(p);
		}
	}
	closedir(d);
}

static int op_undo(const struct guest_opts *o, const struct guest_op *op)
{
	char p[CFG_PATH_MAX + GUEST_OP_PATH_MAX];
	int r = full_path(o, op->path, p, sizeof(p));
	if (r < 0)
		return r;
	switch (op->kind) {
	case GUEST_OP_MKDIR:
		if (o->simulate && !op->shared)
			rm_contents(p);
		if (rmdir(p) < 0 && errno != ENOENT &&
		    !(op->shared && (errno == ENOTEMPTY || errno == EBUSY)))
			return -errno;
		return 0;
	case GUEST_OP_LINK:
		return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
	case GUEST_OP_WRITE:
	case GUEST_OP_SECRET:
	case _GUEST_OP_MAX:
		break;
	}
	return 0;
}

static int undo_from(const struct guest_opts *o, const struct guest_plan *p, int from)
{
	struct guest_op off = {.kind = GUEST_OP_WRITE, .value = "0"};
	snprintf(off.path, sizeof(off.path), "%s/enable", p->tpg);
	char full[CFG_PATH_MAX + GUEST_OP_PATH_MAX + 16];
	if (full_path(o, off.path, full, sizeof(full)) == 0 && access(full, F_OK) == 0)
		(void)op_do(o, &off); /* no new logins while the tree comes down */
	int ret = 0;
	for (int i = from - 1; i >= 0; i--) {
		int r = op_undo(o, &p->ops[i]);
		if (r < 0) {
			log_warn_errno(r, "guest: cannot remove %s", p->ops[i].path);
			ret = ret ?: r;
		}
	}
	return ret;
}

int guest_teardown(const struct guest_opts *o, const struct guest_plan *p)
{
	return undo_from(o, p, p->n_ops);
}

int guest_apply(const struct guest_opts *o, const struct guest_plan *p, struct strbuf *why)
{
	for (int i = 0; i < p->n_ops; i++) {
		int r = op_do(o, &p->ops[i]);
		if (r < 0) {
			if (why)
				sb_printf(why, "%s %s: %s", guest_op_kind_to_str(p->ops[i].kind),
					  p->ops[i].path, strerror(-r));
			(void)undo_from(o, p, i);
			return r;
		}
	}
	return 0;
}

int guest_tpg_enable(const struct guest *g, bool on)
{
	if (!g->exported)
		return -ENOENT;
	struct guest_op op = {.kind = GUEST_OP_WRITE, .value = "0"};
	op.value[0] = on ? '1' : '0';
	snprintf(op.path, sizeof(op.path), "%s/enable", g->plan->tpg);
	return op_do(&g->opts, &op);
}

/* configfs mounted, LIO's core there (PID 1 loads the modules from compartd.load). */
static int configfs_ready(const struct guest_opts *o, char *why, size_t n)
{
	if (o->simulate || strcmp(root(o), GUEST_CONFIGFS) != 0)
		return 0;
	if (access(GUEST_CONFIGFS, F_OK) < 0 &&
	    mount("configfs", "/sys/kernel/config", "configfs", 0, NULL) < 0 && errno != EBUSY)
		log_warn("guest: mounting configfs: %s", strerror(errno));
	if (access(GUEST_CONFIGFS, F_OK) < 0) {
		snprintf(why, n,
			 "no LIO target in this kernel (%s missing: target_core_mod, "
			 "target_core_iblock, iscsi_target_mod loaded?)",
			 GUEST_CONFIGFS);
		return -ENOENT;
	}
	return 0;
}

static void copy_opts(struct guest *g, const struct guest_opts *o)
{
	snprintf(g->configfs, sizeof(g->configfs), "%s", root(o));
	snprintf(g->proc_net, sizeof(g->proc_net), "%s", o->proc_net ? o->proc_net : "/proc/net");
	g->opts = (struct guest_opts){
	    .configfs = g->configfs, .proc_net = g->proc_net, .simulate = o->simulate};
}

/* Plans and writes the tree; why says what stopped it (the module lives on anyway). */
static int guest_export(struct guest *g, const struct cfg *c, int self,
			const struct disk_bootstrap_result *r)
{
	struct guest_part part;
	char why[256];
	int e = guest_part_select(r, &part, why, sizeof(why));
	if (e < 0)
		return snprintf(g->why, sizeof(g->why), "no verified cmpt-guest: %s", why), e;
	e = guest_plan_compute(c, self, &part, g->plan);
	if (e == -ENOENT)
		return snprintf(g->why, sizeof(g->why), "compartment %s names no infra_initiator",
				c->compartments[c->nodes[self].compartment].name),
		       e;
	if (e < 0)
		return snprintf(g->why, sizeof(g->why), "cannot plan: %s", strerror(-e)), e;
	if ((e = configfs_ready(&g->opts, g->why, sizeof(g->why))) < 0)
		return e;
	(void)guest_teardown(&g->opts, g->plan); /* what a previous run left */
	struct strbuf w;
	sb_init(&w);
	e = guest_apply(&g->opts, g->plan, &w);
	snprintf(g->why, sizeof(g->why), "configfs: %s", w.buf ? w.buf : "");
	sb_free(&w);
	return e;
}

/* event=guest node=… state=exported target=… portal=… partition=… guid=… acls=N, or
 * state=none reason=… */
static void guest_event(const struct guest *g, const char *node)
{
	struct event ev;
	event_begin(&ev, "guest");
	event_add(&ev, "node", node);
	event_add(&ev, "state", g->exported ? "exported" : "none");
	if (g->exported) {
		const struct guest_plan *p = g->plan;
		event_add(&ev, "target", p->iqn);
		event_add(&ev, "portal", p->portal);
		event_add(&ev, "partition", p->part.path);
		event_add(&ev, "guid", p->part.guid);
		event_add(&ev, "designator", p->naa);
		event_add_u64(&ev, "size", p->part.size);
		event_add_u64(&ev, "acls", (uint64_t)p->n_acls);
		event_add(&ev, "chap", p->mutual_chap ? "mutual" : p->chap ? "yes" : "no");
	} else {
		event_add(&ev, "reason", g->why);
	}
	event_emit(&ev);
}

int guest_new(const struct cfg *c, int self, const struct disk_bootstrap_result *r,
	      const struct guest_opts *o, struct guest **ret)
{
	static const struct guest_opts none = {0};
	struct guest *g = calloc(1, sizeof(*g));
	if (!g || !(g->plan = calloc(1, sizeof(*g->plan)))) {
		free(g);
		return -ENOMEM;
	}
	copy_opts(g, o ? o : &none);
	g->cfg = c;
	g->self = self;
	int e = guest_export(g, c, self, r);
	g->exported = e == 0;
	if (g->exported)
		g->why[0] = '\0';
	guest_event(g, c->nodes[self].name);
	*ret = g;
	return 0;
}

struct guest *guest_free(struct guest *g)
{
	if (!g)
		return NULL;
	guest_detach(g);
	if (g->exported) {
		int r = guest_teardown(&g->opts, g->plan);
		struct event ev;
		event_begin(&ev, "guest");
		event_add(&ev, "node", g->plan->node);
		event_add(&ev, "state", r < 0 ? "teardown-failed" : "removed");
		event_emit(&ev);
	}
	free(g->plan);
	free(g);
	return NULL;
}

bool guest_exported(const struct guest *g)
{
	return g->exported;
}
const char *guest_why_not(const struct guest *g)
{
	return g->why;
}
const struct guest_plan *guest_plan(const struct guest *g)
{
	return g->exported ? g->plan : NULL;
}

/* The health ladder's reload: the tree rebuilt from the plan. */
int guest_rebuild_tree(struct guest *g, struct strbuf *msg)
{
	if (!g->plan->n_ops)
		return -ENOENT;
	struct guest_plan *np = calloc(1, sizeof(*np));
	if (!np)
		return -ENOMEM;
	int r = guest_plan_compute(g->cfg, g->self, &g->plan->part, np);
	if (r == -ENOENT && g->exported) { /* nobody to export to any more */
		(void)guest_teardown(&g->opts, g->plan);
		g->exported = false;
		snprintf(g->why, sizeof(g->why), "compartment %s names no infra_initiator",
			 np->compartment);
	}
	if (r < 0) {
		sb_printf(msg, "cannot plan from the configuration: %s", strerror(-r));
		free(np);
		return r;
	}
	(void)guest_teardown(&g->opts, g->plan);
	free(g->plan);
	g->plan = np;
	struct strbuf w;
	sb_init(&w);
	r = guest_apply(&g->opts, g->plan, &w);
	g->exported = r == 0;
	if (r < 0) {
		snprintf(g->why, sizeof(g->why), "configfs: %s", w.buf ? w.buf : "");
		sb_puts(msg, g->why);
	}
	sb_free(&w);
	return r;
}
