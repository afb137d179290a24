/* The guest export on the running node: the console command `guest` and the health
 * component `guest:<node>` (SPEC §8 ladder: isolate = disable the TPG, restart = enable it
 * again, reload = rebuild the configfs tree). */
#include "guest_int.h"

#include "console.h"
#include "health.h"
#include "log.h"
#include "node_env.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cmd_guest(struct console_req *req, void *ud)
{
	struct guest *g = ud;
	struct guest_status s;
	(void)guest_status_read(g, &s);
	guest_format(g, &s, req->json, &req->out);
	return 0;
}

static int read_status(struct guest *g, struct guest_status *s, struct strbuf *d)
{
	if (!g->exported) {
		sb_printf(d, "nothing exported: %s", g->why);
		return -ENOENT;
	}
	return guest_status_read(g, s);
}

static int check_reachable(void *ud, struct strbuf *d)
{
	struct guest_status s;
	int r = read_status(ud, &s, d);
	if (r < 0)
		return r;
	if (!s.tpg_enabled)
		return sb_puts(d, "target portal group disabled"), -ENOTCONN;
	if (!s.portal_listening)
		return sb_printf(d, "nothing listens on %s", ((struct guest *)ud)->plan->portal),
		       -ENOTCONN;
	return 0;
}

/* The ACL directories are exactly the compartment's infra_initiators, as configured now. */
static bool acls_match(const struct guest *g, const struct guest_status *s, int *ret_want)
{
	const struct cfg_compartment *co =
	    &g->cfg->compartments[g->cfg->nodes[g->self].compartment];
	*ret_want = co->n_infra_initiators;
	if (s->n_acls != co->n_infra_initiators)
		return false;
	for (int i = 0; i < co->n_infra_initiators; i++) {
		bool found = false;
		for (int j = 0; j < s->n_acls; j++)
			found = found || !strcmp(co->infra_initiators[i], s->acls[j]);
		if (!found)
			return false;
	}
	return true;
}

/* The disks stage grew cmpt-guest under the export (the disk grew): the partition device,
 * which the iblock backstore reads its size from at every READ CAPACITY, and the GPT entry
 * with the exported GUID both say `size` now. The export follows: nothing in configfs
 * holds the size. */
static bool grown(struct guest *g, uint64_t size)
{
	struct guest_part *p = &g->plan->part;
	_cleanup_free_ struct disk_info *info = calloc(1, sizeof(*info));
	if (size <= p->size || !info || disk_probe(p->disk, info) < 0)
		return false;
	for (int i = 0; i < info->n_parts; i++) {
		const struct disk_part *dp = &info->parts[i];
		if (strcmp(dp->name, disk_part_name(DISK_PART_GUEST)) ||
		    strcasecmp(dp->uuid, p->guid) || dp->size != size)
			continue;
		struct event ev;
		event_begin(&ev, "guest");
		event_add(&ev, "node", g->node);
		event_add(&ev, "action", "grown");
		event_add_u64(&ev, "from", p->size);
		event_add_u64(&ev, "size", size);
		event_emit(&ev);
		p->size = size;
		return true;
	}
	return false;
}

static int check_parses(void *ud, struct strbuf *d)
{
	struct guest *g = ud;
	struct guest_status s;
	int r = read_status(g, &s, d);
	if (r < 0)
		return r;
	if (s.size != g->plan->part.size && !grown(g, s.size))
		return sb_printf(d, "LU is %" PRIu64 " bytes, cmpt-guest %" PRIu64, s.size,
				 g->plan->part.size),
		       -EBADMSG;
	int want;
	if (!acls_match(g, &s, &want))
		return sb_printf(d, "%d ACL(s), %d configured", s.n_acls, want), -EBADMSG;
	return 0;
}

/* The backstore is the partition with the recorded GUID: the path and serial in configfs,
 * and the GUID on the disk now. */
static int check_integrity(void *ud, struct strbuf *d)
{
	struct guest *g = ud;
	const struct guest_part *p = &g->plan->part;
	struct guest_status s;
	int r = read_status(g, &s, d);
	if (r < 0)
		return r;
	if (strcmp(s.udev_path, p->path))
		return sb_printf(d, "backstore is %s, not %s", s.udev_path, p->path), -EBADMSG;
	if (strcmp(s.serial, g->plan->serial))
		return sb_printf(d, "unit serial %s, not %s", s.serial, g->plan->serial), -EBADMSG;
	_cleanup_free_ struct disk_info *info = calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;
	if ((r = disk_probe(p->disk, info)) < 0)
		return sb_printf(d, "cannot probe %s: %s", p->disk, strerror(-r)), r;
	for (int i = 0; i < info->n_parts; i++)
		if (!strcmp(info->parts[i].name, disk_part_name(DISK_PART_GUEST)))
			return strcasecmp(info->parts[i].uuid, p->guid)
				   ? (sb_printf(d, "cmpt-guest now has GUID %s",
						info->parts[i].uuid),
				      -EBADMSG)
				   : 0;
	return sb_printf(d, "%s has no cmpt-guest any more", p->disk), -ENOENT;
}

static int act_enable(struct guest *g, bool on, struct strbuf *msg)
{
	int r = guest_tpg_enable(g, on);
	sb_printf(msg, "target portal group %s", on ? "enabled" : "disabled");
	return r;
}
static int act_isolate(void *ud, struct strbuf *msg)
{
	return act_enable(ud, false, msg);
}
static int act_restart(void *ud, struct strbuf *msg)
{
	return act_enable(ud, true, msg);
}
static int act_reload(void *ud, struct strbuf *msg)
{
	int r = guest_rebuild_tree(ud, msg);
	if (r == 0)
		sb_puts(msg, "configfs tree rebuilt");
	return r;
}

static const struct health_component_ops guest_ops = {
    .check_reachable = check_reachable,
    .check_parses = check_parses,
    .check_integrity = check_integrity,
    .isolate = act_isolate,
    .restart = act_restart,
    .reload = act_reload,
};

int guest_attach(struct guest *g, const struct node_env *env)
{
	int r;
	if (env->console && (r = console_register(
				 env->console, "guest", "",
				 "the guest partition's iSCSI export: target, ACL, initiators, I/O",
				 cmd_guest, g)) < 0)
		return log_error_errno(r, "guest: cannot register the console command");
	if (!env->health)
		return 0;
	r = health_register(env->health, &guest_ops, g, "guest", node_env_self(env)->name, NULL);
	if (r < 0)
		return log_error_errno(r, "guest: cannot register the health component");
	g->health = env->health;
	snprintf(g->node, sizeof(g->node), "%s", node_env_self(env)->name);
	return 0;
}

void guest_detach(struct guest *g)
{
	if (g->health)
		(void)health_unregister(g->health, "guest", g->node);
	g->health = NULL;
}
