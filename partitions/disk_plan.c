/* The planner: pure, no I/O. From what was found on a disk, the configured layout, the
 * node's zone and the wipe authorizations, decide keep / create / foreign / too-small /
 * wiped (SPEC §3, rules in order, the first that applies decides). */
#include "disk.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

static const char *const part_kind_str[_DISK_PART_MAX] = {
    [DISK_PART_BOOT] = "boot",	 [DISK_PART_STATE] = "state", [DISK_PART_INFRA] = "infra",
    [DISK_PART_ADMIN] = "admin", [DISK_PART_GUEST] = "guest",
};
static const char *const part_name[_DISK_PART_MAX] = {
    [DISK_PART_BOOT] = "cmpt-boot",   [DISK_PART_STATE] = "cmpt-state",
    [DISK_PART_INFRA] = "cmpt-infra", [DISK_PART_ADMIN] = "cmpt-admin",
    [DISK_PART_GUEST] = "cmpt-guest",
};
static const char *const part_guid[_DISK_PART_MAX] = {
    [DISK_PART_BOOT] = DISK_GUID_BOOT,	 [DISK_PART_STATE] = DISK_GUID_STATE,
    [DISK_PART_INFRA] = DISK_GUID_RAID,	 [DISK_PART_ADMIN] = DISK_GUID_RAID,
    [DISK_PART_GUEST] = DISK_GUID_LINUX,
};
static const char *const verdict_str[_DISK_VERDICT_MAX] = {
    [DISK_VERDICT_KEEP] = "keep",	[DISK_VERDICT_CREATE] = "create",
    [DISK_VERDICT_FOREIGN] = "foreign", [DISK_VERDICT_TOO_SMALL] = "too-small",
    [DISK_VERDICT_WIPED] = "wiped",
};

const char *disk_part_kind_to_str(enum disk_part_kind k)
{
	return k < _DISK_PART_MAX ? part_kind_str[k] : NULL;
}
const char *disk_part_name(enum disk_part_kind k)
{
	return k < _DISK_PART_MAX ? part_name[k] : NULL;
}
const char *disk_part_type_guid(enum disk_part_kind k)
{
	return k < _DISK_PART_MAX ? part_guid[k] : NULL;
}
const char *disk_verdict_to_str(enum disk_verdict v)
{
	return v < _DISK_VERDICT_MAX ? verdict_str[v] : NULL;
}

/* Space kept free at the end for the backup GPT (33 × 512 or 5 × 4096 bytes). */
#define TAIL_RESERVE (64ULL << 10)

static uint64_t align_down(uint64_t v)
{
	return v / DISK_MIB * DISK_MIB;
}

static uint64_t guest_end(uint64_t disk_size)
{
	return disk_size > TAIL_RESERVE ? align_down(disk_size - TAIL_RESERVE) : 0;
}

static const struct cfg_size *kind_size(const struct cfg_layout *l, enum disk_part_kind k)
{
	switch (k) {
	case DISK_PART_BOOT:
		return &l->boot;
	case DISK_PART_STATE:
		return &l->state;
	case DISK_PART_INFRA:
		return &l->infra;
	case DISK_PART_ADMIN:
		return &l->admin;
	case DISK_PART_GUEST:
	case _DISK_PART_MAX:
		break;
	}
	return NULL;
}

static bool kind_wanted(enum cfg_zone zone, enum disk_part_kind k)
{
	return k != DISK_PART_ADMIN || zone == CFG_ZONE_MZ;
}

int disk_layout_compute(const struct cfg_layout *l, enum cfg_zone zone, uint64_t size,
			struct disk_plan_part ret[_DISK_PART_MAX], int *ret_n)
{
	struct disk_plan_part p[_DISK_PART_MAX];
	int n = 0;
	uint64_t at = DISK_MIB, end = guest_end(size);
	for (int k = 0; k < DISK_PART_GUEST; k++) {
		if (!kind_wanted(zone, (enum disk_part_kind)k))
			continue;
		uint64_t s =
		    align_down(cfg_size_resolve(kind_size(l, (enum disk_part_kind)k), size));
		if (s < DISK_MIB)
			s = DISK_MIB;
		p[n++] =
		    (struct disk_plan_part){.kind = (enum disk_part_kind)k, .start = at, .size = s};
		at += s;
	}
	if (at >= end || end - at < l->min_guest || end - at < DISK_MIB)
		return -ENOSPC;
	p[n++] = (struct disk_plan_part){.kind = DISK_PART_GUEST, .start = at, .size = end - at};
	memcpy(ret, p, sizeof(p[0]) * (size_t)n);
	*ret_n = n;
	return 0;
}

static const struct disk_part *find_part(const struct disk_info *d, const char *name, int *count)
{
	const struct disk_part *f = NULL;
	*count = 0;
	for (int i = 0; i < d->n_parts; i++)
		if (!strcmp(d->parts[i].name, name)) {
			(*count)++;
			f = f ? f : &d->parts[i];
		}
	return f;
}

/* Rule 1: all names present once, each at least its configured size. Fills p->parts. */
static bool layout_matches(const struct disk_plan_input *in, const struct disk_info *d,
			   struct disk_plan *p, bool *ret_types_ok)
{
	*ret_types_ok = true;
	if (strcmp(d->pttype, "gpt"))
		return false;
	const struct disk_part *g = NULL;
	int cnt;
	p->n_parts = 0;
	/* Percentages resolve against the size the layout was made for: where cmpt-guest
	 * ends, plus the tail we leave; a MiB of slack covers that estimate. */
	g = find_part(d, part_name[DISK_PART_GUEST], &cnt);
	uint64_t made_for = g ? g->start + g->size + TAIL_RESERVE : d->size;
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		if (!kind_wanted(in->zone, (enum disk_part_kind)k))
			continue;
		const struct disk_part *f = find_part(d, part_name[k], &cnt);
		if (!f || cnt != 1) {
			snprintf(p->reason, sizeof(p->reason), "%s %s", part_name[k],
				 f ? "appears more than once" : "missing");
			return false;
		}
		if (k != DISK_PART_GUEST) {
			const struct cfg_size *cs = kind_size(in->layout, (enum disk_part_kind)k);
			uint64_t want = align_down(cfg_size_resolve(cs, made_for));
			uint64_t slack = cs->pct ? DISK_MIB : 0;
			if (want < DISK_MIB)
				want = DISK_MIB;
			if (f->size + slack < want) {
				snprintf(p->reason, sizeof(p->reason),
					 "%s is %" PRIu64 " MiB, configured %" PRIu64 " MiB",
					 part_name[k], f->size / DISK_MIB, want / DISK_MIB);
				return false;
			}
		}
		if (strcasecmp(f->type, part_guid[k]))
			*ret_types_ok = false;
		p->parts[p->n_parts++] = (struct disk_plan_part){
		    .kind = (enum disk_part_kind)k, .start = f->start, .size = f->size};
	}
	return true;
}

static bool is_canonical(const struct disk_plan_input *in, const struct disk_info *d,
			 const struct disk_plan *p)
{
	struct disk_plan_part c[_DISK_PART_MAX];
	int n;
	if (disk_layout_compute(in->layout, in->zone, d->size, c, &n) < 0 || n != p->n_parts)
		return false;
	for (int i = 0; i < n; i++)
		if (c[i].kind != p->parts[i].kind || c[i].start != p->parts[i].start ||
		    c[i].size != p->parts[i].size)
			return false;
	return true;
}

static bool sig_is_gpt(const char *s);

/* The journal holds a grow of this very disk (by id and size) that did not finish. */
static bool grow_pending(const struct disk_plan_input *in, const struct disk_info *d)
{
	for (int i = 0; i < in->n_grows; i++) {
		const char *id = in->grows[i].id;
		if (in->grows[i].size == d->size &&
		    (!strcmp(id, d->serial) || !strcmp(id, d->wwn) || !strcmp(id, d->path)))
			return true;
	}
	return false;
}

/* Every partition but cmpt-guest, and where it starts, as this node's layout puts them on
 * the disk the table was made for (its size within the MiB cmpt-guest's end rounds to). */
static bool own_layout_before_guest(const struct disk_plan_input *in, const struct disk_plan *p)
{
	const struct disk_plan_part *g = &p->parts[p->n_parts - 1];
	uint64_t lo = g->start + g->size + TAIL_RESERVE;
	const uint64_t sizes[] = {lo, lo + DISK_MIB - 4096};
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct disk_plan_part c[_DISK_PART_MAX];
		int n, i;
		if (disk_layout_compute(in->layout, in->zone, sizes[s], c, &n) < 0 ||
		    n != p->n_parts)
			continue;
		for (i = 0; i < n; i++)
			if (c[i].kind != p->parts[i].kind || c[i].start != p->parts[i].start ||
			    (i < n - 1 && c[i].size != p->parts[i].size))
				break;
		if (i == n)
			return true;
	}
	return false;
}

static bool layout_has_pct(const struct disk_plan_input *in)
{
	for (int k = 0; k < DISK_PART_GUEST; k++)
		if (kind_wanted(in->zone, (enum disk_part_kind)k) &&
		    kind_size(in->layout, (enum disk_part_kind)k)->pct)
			return true;
	return false;
}

/* Why an own table that could grow is not grown, or NULL. */
static const char *grow_refusal(const struct disk_plan_input *in, const struct disk_info *d,
				const struct disk_plan *p, bool types_ok, bool pending)
{
	if (d->read_only)
		return "read-only";
	if (!types_ok)
		return "some type GUIDs differ";
	if (d->n_parts != p->n_parts || d->gpt_foreign_entries || d->probe_failed)
		return "the table holds partitions that are not ours";
	for (int i = 0; i < d->n_sigs; i++)
		if (!sig_is_gpt(d->sigs[i]))
			return "a signature other than the GPT on the disk";
	if (layout_has_pct(in))
		return "sizes in percent of the disk would no longer match a grown disk";
	if (!own_layout_before_guest(in, p))
		return "not this node's canonical layout";
	if (!d->tail_ours)
		return "the end of the disk is not blank";
	if (!pending && !(d->gpt_primary_valid && d->gpt_tables_sound))
		return "the GPT is not sound";
	return NULL;
}

/* Our own canonical table on a disk that grew: cmpt-guest, the last partition, is extended
 * to the new end. A grow the journal shows interrupted is finished (its tables written
 * again) even when the primary already shows the new size or is torn. */
static void plan_grow(const struct disk_plan_input *in, const struct disk_info *d,
		      struct disk_plan *p, bool types_ok)
{
	bool pending = grow_pending(in, d);
	struct disk_plan_part *g = &p->parts[p->n_parts - 1];
	if ((!p->guest_can_grow && !pending) || g->kind != DISK_PART_GUEST)
		return;
	const char *why = grow_refusal(in, d, p, types_ok, pending);
	if (why) {
		snprintf(p->grow_refused, sizeof(p->grow_refused), "%s", why);
		return;
	}
	uint64_t to = guest_end(d->size) - g->start;
	if (to < g->size)
		return;
	p->grow = true;
	g->size = to;
	snprintf(p->reason, sizeof(p->reason), "%s to %" PRIu64 " MiB",
		 pending ? "compartd layout, finishing the growth of cmpt-guest"
			 : "compartd layout on a disk that grew, growing cmpt-guest",
		 to / DISK_MIB);
}

static void plan_keep(const struct disk_plan_input *in, const struct disk_info *d,
		      struct disk_plan *p, bool types_ok)
{
	p->verdict = DISK_VERDICT_KEEP;
	snprintf(p->reason, sizeof(p->reason), "carries the compartd layout");
	if (!types_ok) {
		p->fix_types = is_canonical(in, d, p) && d->gpt_tables_sound;
		snprintf(p->reason, sizeof(p->reason), "%s",
			 p->fix_types
			     ? "compartd layout with unfinished type GUIDs, fixing them"
			     : "compartd layout, some type GUIDs differ (left as they are)");
	}
	if (!d->gpt_primary_valid && d->gpt_backup)
		snprintf(p->reason, sizeof(p->reason),
			 "compartd layout read from the backup GPT: primary header damaged, left "
			 "as it is");
	const struct disk_plan_part *g = &p->parts[p->n_parts - 1];
	uint64_t last_end = 0;
	for (int i = 0; i < d->n_parts; i++)
		if (d->parts[i].start + d->parts[i].size > last_end)
			last_end = d->parts[i].start + d->parts[i].size;
	uint64_t could = guest_end(d->size);
	if (g->start + g->size == last_end && could >= last_end + DISK_MIB) {
		p->guest_can_grow = true;
		p->guest_grow_to = could - g->start;
	}
	plan_grow(in, d, p, types_ok);
}

static bool id_eq(const char *a, const char *b)
{
	if (!*a || !*b)
		return false;
	if (!strcasecmp(a, b))
		return true;
	/* WWNs appear as "naa.5000…" in sysfs and "0x5000…" or bare elsewhere. */
	static const char *const pfx[] = {"naa.", "eui.", "t10.", "0x"};
	for (size_t i = 0; i < ARRAY_SIZE(pfx); i++) {
		size_t l = strlen(pfx[i]);
		if (!strncasecmp(a, pfx[i], l) && !strcasecmp(a + l, b))
			return true;
		if (!strncasecmp(b, pfx[i], l) && !strcasecmp(b + l, a))
			return true;
	}
	return false;
}

static bool sig_is_gpt(const char *s)
{
	return !strcmp(s, "gpt") || !strcmp(s, "gpt-damaged") || !strcasecmp(s, "PMBR");
}

bool disk_torn_own(const struct disk_plan_input *in, const struct disk_info *d)
{
	struct disk_plan_part c[_DISK_PART_MAX];
	int n;
	if (disk_is_blank(d) || d->probe_failed || d->gpt_foreign_entries ||
	    (d->pttype[0] && strcmp(d->pttype, "gpt") && strcasecmp(d->pttype, "PMBR")) ||
	    disk_layout_compute(in->layout, in->zone, d->size, c, &n) < 0)
		return false;
	for (int i = 0; i < d->n_sigs; i++)
		if (!sig_is_gpt(d->sigs[i]))
			return false;
	bool seen[_DISK_PART_MAX] = {false};
	for (int i = 0; i < d->n_parts; i++) {
		int k = 0;
		while (k < n && strcmp(d->parts[i].name, part_name[c[k].kind]))
			k++;
		if (k == n || seen[k] || d->parts[i].start != c[k].start ||
		    d->parts[i].size != c[k].size)
			return false;
		seen[k] = true;
	}
	return true;
}

/* A journal intent resumes only on the disk it was for: the size it recorded, and either
 * nothing but a torn table of our own layout (for a create: on an otherwise blank disk),
 * or, for an authorized wipe interrupted before it wrote, the very bytes it saw. */
static bool resume_ok(const struct disk_plan_input *in, const struct disk_auth *a,
		      const struct disk_info *d)
{
	if (a->size && a->size != d->size)
		return false;
	if (disk_torn_own(in, d) && (d->areas_blank || (a->size && a->wiped)))
		return true;
	char fp[64];
	disk_fingerprint(d, fp, sizeof(fp));
	return a->size && a->wiped && d->head_sum[0] && !strcmp(fp, a->found);
}

/* An authorization names the serial or WWN; a path only for an image file or a device
 * that has neither. */
static int find_auth(const struct disk_plan_input *in, const struct disk_info *d)
{
	bool path_ok = d->is_file || (!d->serial[0] && !d->wwn[0]);
	for (int i = 0; i < in->n_auths; i++) {
		const char *a = in->auths[i].id;
		if (!id_eq(a, d->serial) && !id_eq(a, d->wwn) && !(path_ok && !strcmp(a, d->path)))
			continue;
		if (!in->auths[i].resume || resume_ok(in, &in->auths[i], d))
			return i;
	}
	return -1;
}

/* Our own layout complete in one table, the other torn, on an otherwise blank disk (power
 * lost inside the first write): not kept as it is but finished. */
static bool torn_complete(const struct disk_plan_input *in, const struct disk_info *d)
{
	return !d->gpt_tables_sound && d->areas_blank && disk_torn_own(in, d);
}

void disk_plan_one(const struct disk_plan_input *in, const struct disk_info *d,
		   struct disk_plan *ret)
{
	struct disk_plan p = {.auth = -1};
	bool types_ok;
	disk_found_str(d, p.found, sizeof(p.found));
	if (layout_matches(in, d, &p, &types_ok) && !torn_complete(in, d)) {
		plan_keep(in, d, &p, types_ok);
		*ret = p;
		return;
	}
	char why[320];
	snprintf(why, sizeof(why), "%s", p.reason);
	p.n_parts = 0;
	if (d->size < in->layout->min_disk ||
	    disk_layout_compute(in->layout, in->zone, d->size, p.parts, &p.n_parts) < 0) {
		p.verdict = DISK_VERDICT_TOO_SMALL;
		p.n_parts = 0;
		snprintf(p.reason, sizeof(p.reason),
			 "%" PRIu64 " MiB, need %" PRIu64 " MiB and room for the layout",
			 d->size / DISK_MIB, in->layout->min_disk / DISK_MIB);
	} else if (disk_is_blank(d)) {
		p.verdict = DISK_VERDICT_CREATE;
		snprintf(p.reason, sizeof(p.reason), "blank");
	} else if (d->areas_blank && disk_torn_own(in, d)) {
		p.verdict = DISK_VERDICT_CREATE;
		p.torn_own = true;
		snprintf(p.reason, sizeof(p.reason),
			 "a torn GPT of this node's own layout on an otherwise blank disk, "
			 "finishing it");
	} else if ((p.auth = find_auth(in, d)) >= 0) {
		p.verdict = DISK_VERDICT_WIPED;
		if (in->auths[p.auth].resume)
			snprintf(p.reason, sizeof(p.reason),
				 "finishing the partitioning the journal shows interrupted");
		else
			snprintf(p.reason, sizeof(p.reason), "wipe authorized by %s",
				 in->auths[p.auth].id);
	} else {
		p.verdict = DISK_VERDICT_FOREIGN;
		p.n_parts = 0;
		if (why[0] && !strcmp(d->pttype, "gpt"))
			(void)!snprintf(p.reason, sizeof(p.reason), "found %.150s (%.150s)",
					p.found, why);
		else
			(void)!snprintf(p.reason, sizeof(p.reason), "found %.250s",
					p.found[0] ? p.found : "data");
	}
	*ret = p;
}
