/* The NBD export's health (SPEC §8). Stages:
 *   reachable  the kernel device is connected to us: our end of its socket is open, the
 *              kernel says connected (NBD_CMD_STATUS), /sys/block/nbdN/pid is this process;
 *   parses     the device's size is the LU's size;
 *   integrity  the LU behind the paths is the one that was exported (and the pinned one).
 * The ladder: isolate (close our end of the socket; with dead_conn_timeout the kernel holds
 * its requests instead of failing them) → restart: re-check after a pause (the device may
 * be between sockets) → reload: re-export on the same /dev/nbdN (NBD_CMD_RECONFIGURE with
 * a fresh socket, else disconnect and connect) → needs-operator. */
#include "health_export.h"

#include "nbdx.h"
#include "storage.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

static int judge_reachable(const struct health_export_facts *f, struct strbuf *d)
{
	if (!f->exported) {
		sb_puts(d, "not exported yet: waiting for a path to pass the identity check");
		return 0;
	}
	if (f->index < 0) {
		sb_puts(d, "no kernel device (unix socket only)");
		return 0;
	}
	if (f->status < 0) {
		sb_printf(d, "the kernel does not answer for /dev/nbd%d: %s", f->index,
			  strerror(-f->status));
		return -EHOSTUNREACH;
	}
	if (!f->connected) {
		sb_printf(d, "/dev/nbd%d is not connected", f->index);
		return -ENOTCONN;
	}
	if (!f->linked) {
		sb_printf(d, "/dev/nbd%d: our end of its socket is closed", f->index);
		return -ENOTCONN;
	}
	if (f->dev_pid != f->our_pid) {
		sb_printf(d, "/dev/nbd%d is served by pid %ld, not %ld", f->index, f->dev_pid,
			  f->our_pid);
		return -ENOTCONN;
	}
	return 0;
}

static int judge_parses(const struct health_export_facts *f, struct strbuf *d)
{
	if (!f->exported || f->index < 0 || f->dev_size == f->lu_size)
		return 0;
	sb_printf(d, "/dev/nbd%d has %" PRIu64 " bytes, the LU %" PRIu64, f->index, f->dev_size,
		  f->lu_size);
	return -EBADMSG;
}

static int judge_integrity(const struct health_export_facts *f, struct strbuf *d)
{
	if (!f->exported)
		return 0;
	if (strcmp(f->designator_now, f->designator_exported) != 0) {
		sb_printf(d, "the paths show LU %s, the export was made from %s", f->designator_now,
			  f->designator_exported);
		return -EXDEV;
	}
	if (f->pinned[0] && strcmp(f->pinned, f->designator_exported) != 0) {
		sb_printf(d, "the export's LU %s is not the pinned %s", f->designator_exported,
			  f->pinned);
		return -EXDEV;
	}
	if (f->index >= 0)
		sb_printf(d, "/dev/nbd%d, %" PRIu64 " bytes, %s", f->index, f->dev_size,
			  f->designator_exported);
	return 0;
}

int health_export_judge(const struct health_export_facts *f, enum health_stage stage,
			struct strbuf *detail)
{
	switch (stage) {
	case HEALTH_STAGE_REACHABLE:
		return judge_reachable(f, detail);
	case HEALTH_STAGE_PARSES:
		return judge_parses(f, detail);
	case HEALTH_STAGE_INTEGRITY:
		return judge_integrity(f, detail);
	case _HEALTH_STAGE_MAX:
		break;
	}
	return -EINVAL;
}

/* ---- the driver ---- */

struct export_watch {
	struct storage *s;
	size_t i;
	struct health_export_facts f;
};

static long read_sys_long(int index, const char *attr)
{
	char path[64], *text = NULL;
	snprintf(path, sizeof(path), "/sys/block/nbd%d/%s", index, attr);
	long v = -1;
	if (read_full_file(path, 64, &text, NULL) == 0 &&
	    parse_int(strstrip(text), 0, LONG_MAX, &v) < 0)
		v = -1;
	free(text);
	return v;
}

static void gather(struct export_watch *w)
{
	struct nbdx *x = w->s->x[w->i];
	struct mpath *m = w->s->m[w->i];
	const struct mpath_identity *id = mpath_identity(m);
	w->f = (struct health_export_facts){
	    .exported = x != NULL,
	    .index = x ? nbdx_kernel_index(x) : -1,
	    .linked = x && nbdx_kernel_linked(x),
	    .dev_pid = -1,
	    .our_pid = (long)getpid(),
	    .lu_size = id->size,
	    .designator_now = id->designator,
	    .designator_exported = x ? nbdx_designator(x) : "",
	    .pinned = "",
	};
	int si = cfg_find_storage(w->s->cfg, mpath_name(m));
	if (si >= 0)
		w->f.pinned = w->s->cfg->storage[si].designator;
	if (w->f.index < 0)
		return;
	w->f.our_pid = nbdx_kernel_server_pid(x);
	w->f.dev_pid = read_sys_long(w->f.index, "pid");
	if (nbdx_kernel_netlink(x))
		w->f.status = nbdx_kernel_status(w->f.index, &w->f.connected);
	else
		w->f.connected = w->f.dev_pid > 0; /* the pid file exists while it is bound */
	long sectors = read_sys_long(w->f.index, "size");
	w->f.dev_size = sectors > 0 ? (uint64_t)sectors * 512 : 0;
}

static int check_reachable(void *ud, struct strbuf *detail)
{
	struct export_watch *w = ud;
	gather(w);
	return health_export_judge(&w->f, HEALTH_STAGE_REACHABLE, detail);
}

static int check_parses(void *ud, struct strbuf *detail)
{
	return health_export_judge(&((struct export_watch *)ud)->f, HEALTH_STAGE_PARSES, detail);
}

static int check_integrity(void *ud, struct strbuf *detail)
{
	return health_export_judge(&((struct export_watch *)ud)->f, HEALTH_STAGE_INTEGRITY, detail);
}

static int isolate(void *ud, struct strbuf *msg)
{
	struct export_watch *w = ud;
	struct nbdx *x = w->s->x[w->i];
	if (x)
		nbdx_kernel_isolate(x);
	sb_puts(msg, "our end of the kernel's socket closed: its requests wait for the re-export");
	return 0;
}

static int restart(void *ud, struct strbuf *msg)
{
	sb_puts(msg, "re-checking after a pause");
	return HEALTH_PENDING;
}

static int reload(void *ud, struct strbuf *msg)
{
	struct export_watch *w = ud;
	struct nbdx *x = w->s->x[w->i];
	if (!x)
		return -ENOENT;
	int r = nbdx_kernel_reexport(x, msg);
	return r == -EBUSY ? HEALTH_PENDING : r;
}

static const struct health_component_ops export_ops = {
    .check_reachable = check_reachable,
    .check_parses = check_parses,
    .check_integrity = check_integrity,
    .isolate = isolate,
    .restart = restart,
    .reload = reload,
    .retry_interval_us = 2 * USEC_PER_SEC,
    .restart_tries = 1,
    .reload_tries = 3,
};

struct health_export {
	struct health *h;
	struct health_component_ops ops; /* the engine keeps a pointer to it */
	size_t n;
	struct export_watch w[CFG_MAX_STORAGE];
};

int health_export_register(struct health *h, struct storage *s, uint64_t interval_us,
			   struct health_export **ret)
{
	if (!h || !s)
		return 0;
	struct health_export *he = calloc(1, sizeof(*he));
	if (!he)
		return -ENOMEM;
	he->h = h;
	he->ops = export_ops;
	he->ops.interval_us = interval_us;
	int r = 0;
	for (size_t i = 0; i < s->n && r >= 0; i++) {
		he->w[i] = (struct export_watch){.s = s, .i = i};
		r = health_register(h, &he->ops, &he->w[i], "export", mpath_name(s->m[i]), NULL);
		if (r >= 0)
			he->n++;
	}
	*ret = he;
	return r < 0 ? r : (int)he->n;
}

struct health_export *health_export_free(struct health_export *he)
{
	if (!he)
		return NULL;
	for (size_t i = 0; i < he->n; i++)
		health_unregister(he->h, "export", mpath_name(he->w[i].s->m[i]));
	free(he);
	return NULL;
}
