#include "health_disks.h"

#include "bootstrap.h"
#include "log.h"

#include <string.h>
#include <sys/stat.h>

struct disk_watch {
	struct disk_module *m;
	char path[CFG_PATH_MAX];
};

/* The disk's entry in the module's latest result (plans change after a rebuild or an
 * approved wipe). */
static const struct disk_bootstrap_disk *entry(const struct disk_watch *w)
{
	const struct disk_bootstrap_result *r = disk_module_result(w->m);
	for (int i = 0; r && i < r->n_disks; i++)
		if (!strcmp(r->disks[i].info.path, w->path))
			return &r->disks[i];
	return NULL;
}

static int disk_reachable(void *ud, struct strbuf *d)
{
	struct disk_watch *w = ud;
	struct stat st;
	if (stat(w->path, &st) < 0) {
		sb_printf(d, "%s: %s", w->path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int disk_parses(void *ud, struct strbuf *d)
{
	struct disk_watch *w = ud;
	_cleanup_free_ struct disk_info *info = calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;
	int r = disk_probe(w->path, info);
	if (r < 0) {
		sb_printf(d, "cannot probe %s: %s", w->path, strerror(-r));
		return r;
	}
	if (disk_is_blank(info)) {
		sb_puts(d, "blank: no partition table (a replaced disk?)");
		return -ENODATA;
	}
	if (strcmp(info->pttype, "gpt") || !info->gpt_primary_valid) {
		char found[256];
		disk_found_str(info, found, sizeof(found));
		sb_printf(d, "no valid GPT (found %s)", found[0] ? found : "nothing known");
		return -EBADMSG;
	}
	return 0;
}

static int disk_integrity(void *ud, struct strbuf *d)
{
	struct disk_watch *w = ud;
	const struct disk_bootstrap_disk *bd = entry(w);
	if (!bd) {
		sb_puts(d, "not among the disks of the last disks stage");
		return -ENOENT;
	}
	switch (bd->plan.verdict) {
	case DISK_VERDICT_FOREIGN:
		sb_printf(d, "foreign (%s): approve-wipe %s to lay it out", bd->plan.found,
			  bd->info.serial[0] ? bd->info.serial : w->path);
		return -EPERM;
	case DISK_VERDICT_TOO_SMALL:
		sb_printf(d, "too small: %s", bd->plan.reason);
		return -ENOSPC;
	case DISK_VERDICT_KEEP:
	case DISK_VERDICT_CREATE:
	case DISK_VERDICT_WIPED:
	case _DISK_VERDICT_MAX:
		break;
	}
	char why[256] = "";
	int r = disk_verify(w->path, &bd->plan, why, sizeof(why));
	if (r < 0) {
		sb_printf(d, "layout differs: %s", why[0] ? why : strerror(-r));
		return r;
	}
	sb_printf(d, "layout ok (%d partitions)", bd->plan.n_parts);
	return 0;
}

/* Runs the disks stage again: it lays out a blank disk and keeps its hands off anything
 * it was not allowed to touch. */
static int disk_rebuild(void *ud, struct strbuf *msg)
{
	struct disk_watch *w = ud;
	int r = disk_module_bootstrap(w->m);
	const struct disk_bootstrap_disk *bd = entry(w);
	if (bd)
		sb_printf(msg, "disks stage ran again: %s is %s", w->path,
			  disk_verdict_to_str(bd->plan.verdict));
	return r < 0 ? r : 0;
}

static const struct health_component_ops disk_ops = {
	.check_reachable = disk_reachable,
	.check_parses = disk_parses,
	.check_integrity = disk_integrity,
	.rebuild = disk_rebuild,
	.rebuild_tries = 1,
};

int health_disks_register(struct health *h, struct disk_module *m)
{
	const struct disk_bootstrap_result *res = disk_module_result(m);
	int n = 0;
	for (int i = 0; res && i < res->n_disks; i++) {
		const char *path = res->disks[i].info.path;
		const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		if (health_find(h, "disk", name))
			continue;
		struct disk_watch *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		w->m = m;
		snprintf(w->path, sizeof(w->path), "%s", path);
		int r = health_register(h, &disk_ops, w, "disk", name, NULL);
		if (r < 0) {
			free(w);
			log_warn_errno(r, "health: cannot watch disk %s, ignoring", path);
			continue;
		}
		n++;
	}
	return n;
}

void health_disks_unregister(struct health *h)
{
	for (int i = 0; i < h->n; i++) {
		struct health_component *c = &h->comps[i];
		if (c->ops != &disk_ops)
			continue;
		free(c->ud);
		health_unregister(h, c->kind, c->id);
	}
}
