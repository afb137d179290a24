/* The guest export's pure part: which partition, and the configfs tree LIO needs for it
 * (docs/guest.md). No I/O: the disks stage result and the configuration in, a list of
 * operations out. */
#include "guest.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

static const char *const op_str[_GUEST_OP_MAX] = {[GUEST_OP_MKDIR] = "mkdir",
						  [GUEST_OP_WRITE] = "write",
						  [GUEST_OP_SECRET] = "secret",
						  [GUEST_OP_LINK] = "link"};

const char *guest_op_kind_to_str(enum guest_op_kind k)
{
	return k < _GUEST_OP_MAX ? op_str[k] : "?";
}

/* "/dev/sda" 5 → "/dev/sda5", "/dev/nvme0n1" 5 → "/dev/nvme0n1p5" (as disk_part_path,
 * without looking at the file system). */
static void part_dev(const char *disk, int number, char *out, size_t n)
{
	size_t l = strlen(disk);
	bool digit_end = l && isdigit((unsigned char)disk[l - 1]);
	snprintf(out, n, "%s%s%d", disk, digit_end ? "p" : "", number);
}

static const struct disk_part *find_guest(const struct disk_info *d)
{
	for (int i = 0; i < d->n_parts; i++)
		if (!strcmp(d->parts[i].name, disk_part_name(DISK_PART_GUEST)))
			return &d->parts[i];
	return NULL;
}

static const struct disk_plan_part *planned_guest(const struct disk_plan *p)
{
	for (int i = 0; i < p->n_parts; i++)
		if (p->parts[i].kind == DISK_PART_GUEST)
			return &p->parts[i];
	return NULL;
}

/* 0 when this disk's cmpt-guest is verified, else -errno with the reason in why. */
static int disk_guest_ok(const struct disk_bootstrap_disk *bd, const struct disk_part **ret,
			 char *why, size_t n)
{
	const char *path = bd->info.path;
	if (bd->result < 0)
		return snprintf(why, n, "%s: the disks stage failed on it", path), -EIO;
	switch (bd->plan.verdict) {
	case DISK_VERDICT_KEEP:
	case DISK_VERDICT_CREATE:
	case DISK_VERDICT_WIPED:
		break;
	case DISK_VERDICT_FOREIGN:
	case DISK_VERDICT_TOO_SMALL:
	case _DISK_VERDICT_MAX:
		return snprintf(why, n, "%s: %s, not laid out by compartd", path,
				disk_verdict_to_str(bd->plan.verdict)),
		       -ENOENT;
	}
	if (bd->info.is_file || bd->info.is_partition)
		return snprintf(why, n, "%s: not a whole block disk (no partition device)", path),
		       -ENOTBLK;
	const struct disk_part *g = find_guest(&bd->info);
	const struct disk_plan_part *pl = planned_guest(&bd->plan);
	if (!g || !pl)
		return snprintf(why, n, "%s: no cmpt-guest partition", path), -ENOENT;
	if (strcasecmp(g->type, disk_part_type_guid(DISK_PART_GUEST)) || !g->uuid[0])
		return snprintf(why, n, "%s: cmpt-guest has type %s, not ours", path, g->type),
		       -ENOENT;
	if (g->start != pl->start || g->size != pl->size)
		return snprintf(why, n, "%s: cmpt-guest is not where the layout puts it", path),
		       -ENOENT;
	*ret = g;
	return 0;
}

int guest_part_select(const struct disk_bootstrap_result *r, struct guest_part *ret, char *why,
		      size_t n)
{
	*ret = (struct guest_part){0};
	snprintf(why, n, "the disks stage did not run");
	int err = -ENOENT;
	for (int i = 0; r && i < r->n_disks; i++) {
		const struct disk_bootstrap_disk *bd = &r->disks[i];
		const struct disk_part *g = NULL;
		int e = disk_guest_ok(bd, &g, why, n);
		if (e < 0) {
			err = e;
			continue;
		}
		snprintf(ret->disk, sizeof(ret->disk), "%s", bd->info.path);
		part_dev(bd->info.path, g->number, ret->path, sizeof(ret->path));
		ret->number = g->number;
		ret->size = g->size;
		for (size_t k = 0; g->uuid[k] && k + 1 < sizeof(ret->guid); k++)
			ret->guid[k] = (char)tolower((unsigned char)g->uuid[k]);
		why[0] = '\0';
		return 0;
	}
	if (r && r->n_disks == 0)
		snprintf(why, n, "no disk in the disks stage");
	return err;
}

void guest_iqn(const struct cfg *c, int node, char out[CFG_IQN_MAX])
{
	int len = snprintf(out, CFG_IQN_MAX, "iqn.2026-12.compartd.%s:guest.%s", c->name,
			   c->nodes[node].name);
	for (int i = 0; i < len && out[i]; i++) {
		char ch = (char)tolower((unsigned char)out[i]);
		out[i] =
		    (isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == ':') ? ch : '-';
	}
}

void guest_naa_from_serial(const char *serial, char out[40])
{
	int o = snprintf(out, 40, "naa.6001405");
	for (const char *s = serial; *s && o < 11 + 25; s++)
		if (isxdigit((unsigned char)*s))
			out[o++] = (char)tolower((unsigned char)*s);
	out[o] = '\0';
}

static int add(struct guest_plan *p, enum guest_op_kind k, bool shared, const char *value,
	       const char *fmt, ...) _printf_(5, 6);
static int add(struct guest_plan *p, enum guest_op_kind k, bool shared, const char *value,
	       const char *fmt, ...)
{
	if (p->n_ops == GUEST_MAX_OPS)
		return -E2BIG;
	struct guest_op *op = &p->ops[p->n_ops];
	*op = (struct guest_op){.kind = k, .shared = shared};
	va_list ap;
	va_start(ap, fmt);
	int l = vsnprintf(op->path, sizeof(op->path), fmt, ap);
	va_end(ap);
	if (l < 0 || (size_t)l >= sizeof(op->path) ||
	    (size_t)snprintf(op->value, sizeof(op->value), "%s", value ? value : "") >=
		sizeof(op->value))
		return -ENAMETOOLONG;
	p->n_ops++;
	return 0;
}

/* The block backstore: the partition, its serial, enabled. */
static int plan_backstore(struct guest_plan *p)
{
	char control[CFG_PATH_MAX + 16];
	snprintf(control, sizeof(control), "udev_path=%s", p->part.path);
	int r = 0;
	r = r ?: add(p, GUEST_OP_MKDIR, true, NULL, "%s", GUEST_BACKSTORE_HBA);
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s", GUEST_BACKSTORE);
	r = r ?: add(p, GUEST_OP_WRITE, false, control, "%s/control", GUEST_BACKSTORE);
	/* What the device shows as its udev_path (targetcli writes it too): the health check
	 * reads it back. */
	r = r ?: add(p, GUEST_OP_WRITE, false, p->part.path, "%s/udev_path", GUEST_BACKSTORE);
	r = r ?: add(p, GUEST_OP_WRITE, false, "1", "%s/enable", GUEST_BACKSTORE);
	r = r
		?: add(p, GUEST_OP_WRITE, false, p->serial, "%s/wwn/vpd_unit_serial",
		       GUEST_BACKSTORE);
	return r;
}

/* The target, its TPG, the LUN and the portal; the TPG stays disabled until the end. */
static int plan_target(struct guest_plan *p)
{
	char lun[GUEST_OP_PATH_MAX + 32];
	snprintf(lun, sizeof(lun), "%s/lun/lun_%d", p->tpg, GUEST_LUN);
	int r = 0;
	r = r ?: add(p, GUEST_OP_MKDIR, true, NULL, "iscsi");
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "iscsi/%s", p->iqn);
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s", p->tpg);
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s", lun);
	r = r ?: add(p, GUEST_OP_LINK, false, GUEST_BACKSTORE, "%s/compartd-guest", lun);
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s/np/%s", p->tpg, p->portal);
	r = r ?: add(p, GUEST_OP_WRITE, false, "0", "%s/attrib/generate_node_acls", p->tpg);
	r = r ?: add(p, GUEST_OP_WRITE, false, "0", "%s/attrib/cache_dynamic_acls", p->tpg);
	r = r ?: add(p, GUEST_OP_WRITE, false, "0", "%s/attrib/demo_mode_write_protect", p->tpg);
	r = r
		?: add(p, GUEST_OP_WRITE, false, p->chap ? "1" : "0", "%s/attrib/authentication",
		       p->tpg);
	return r;
}

/* One ACL: the initiator, its mapped LUN, its CHAP credentials. */
static int plan_acl(struct guest_plan *p, const struct cfg_compartment *co, const char *ini)
{
	char acl[GUEST_OP_PATH_MAX], lun[GUEST_OP_PATH_MAX + 32];
	if ((size_t)snprintf(acl, sizeof(acl), "%s/acls/%s", p->tpg, ini) >= sizeof(acl))
		return -ENAMETOOLONG;
	snprintf(lun, sizeof(lun), "%s/lun/lun_%d", p->tpg, GUEST_LUN);
	int r = 0;
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s", acl);
	r = r ?: add(p, GUEST_OP_MKDIR, false, NULL, "%s/lun_%d", acl, GUEST_LUN);
	r = r ?: add(p, GUEST_OP_LINK, false, lun, "%s/lun_%d/lun_%d", acl, GUEST_LUN, GUEST_LUN);
	if (p->chap) {
		r = r ?: add(p, GUEST_OP_WRITE, false, co->guest_chap_user, "%s/auth/userid", acl);
		r = r
			?: add(p, GUEST_OP_SECRET, false, co->guest_chap_secret_file,
			       "%s/auth/password", acl);
	}
	if (p->mutual_chap) {
		r = r
			?: add(p, GUEST_OP_WRITE, false, co->guest_chap_mutual_user,
			       "%s/auth/userid_mutual", acl);
		r = r
			?: add(p, GUEST_OP_SECRET, false, co->guest_chap_mutual_secret_file,
			       "%s/auth/password_mutual", acl);
	}
	return r;
}

static int plan_names(const struct cfg *c, int self, const struct guest_part *part,
		      struct guest_plan *p)
{
	const struct cfg_node *n = &c->nodes[self];
	const struct cfg_compartment *co = &c->compartments[n->compartment];
	*p = (struct guest_plan){.part = *part};
	snprintf(p->node, sizeof(p->node), "%s", n->name);
	snprintf(p->compartment, sizeof(p->compartment), "%s", co->name);
	guest_iqn(c, self, p->iqn);
	cfg_addr_format(&n->storage, p->portal, sizeof(p->portal));
	snprintf(p->serial, sizeof(p->serial), "%s", part->guid);
	guest_naa_from_serial(p->serial, p->naa);
	if ((size_t)snprintf(p->tpg, sizeof(p->tpg), "iscsi/%s/tpgt_%d", p->iqn, GUEST_TPGT) >=
	    sizeof(p->tpg))
		return -ENAMETOOLONG;
	p->chap = co->guest_chap_user[0] != '\0';
	p->mutual_chap = p->chap && co->guest_chap_mutual_user[0] != '\0';
	p->n_acls = co->n_infra_initiators;
	memcpy(p->acls, co->infra_initiators, sizeof(p->acls));
	return p->n_acls ? 0 : -ENOENT;
}

int guest_plan_compute(const struct cfg *c, int self, const struct guest_part *part,
		       struct guest_plan *p)
{
	int r = plan_names(c, self, part, p);
	if (r < 0)
		return r;
	const struct cfg_compartment *co = &c->compartments[c->nodes[self].compartment];
	r = plan_backstore(p);
	r = r ?: plan_target(p);
	for (int i = 0; r == 0 && i < p->n_acls; i++)
		r = plan_acl(p, co, p->acls[i]);
	return r ?: add(p, GUEST_OP_WRITE, false, "1", "%s/enable", p->tpg);
}

void guest_plan_format(const struct guest_plan *p, struct strbuf *out)
{
	sb_printf(out, "# node %s (compartment %s): %s (%s, GUID %s, %" PRIu64 " bytes)\n", p->node,
		  p->compartment, p->part.path, p->part.disk, p->part.guid, p->part.size);
	sb_printf(out, "# target %s portal %s designator %s serial %s\n", p->iqn, p->portal, p->naa,
		  p->serial);
	for (int i = 0; i < p->n_ops; i++) {
		const struct guest_op *op = &p->ops[i];
		switch (op->kind) {
		case GUEST_OP_MKDIR:
			sb_printf(out, "mkdir %s%s\n", op->path, op->shared ? " (shared)" : "");
			break;
		case GUEST_OP_WRITE:
			sb_printf(out, "write %s = %s\n", op->path, op->value);
			break;
		case GUEST_OP_SECRET:
			sb_printf(out, "secret %s < %s\n", op->path, op->value);
			break;
		case GUEST_OP_LINK:
			sb_printf(out, "link %s -> %s\n", op->path, op->value);
			break;
		case _GUEST_OP_MAX:
			break;
		}
	}
}
