/* RAID1 plan: pure. From the md superblocks on our cmpt-infra / cmpt-admin partitions to
 * create / assemble / re-add / add. A member carrying another array's superblock is never
 * touched. */
#include "raid.h"

#include <inttypes.h>
#include <string.h>

static const char *const act_str[_RAID_ACT_MAX] = {[RAID_ACT_CREATE] = "create",
						   [RAID_ACT_ASSEMBLE] = "assemble",
						   [RAID_ACT_READD] = "re-add",
						   [RAID_ACT_ADD] = "add"};
static const char *const state_str[_RAID_STATE_MAX] = {[RAID_STATE_CLEAN] = "clean",
						       [RAID_STATE_DEGRADED] = "degraded",
						       [RAID_STATE_RESYNCING] = "resyncing"};

const char *raid_action_to_str(enum raid_action_kind k)
{
	return k < _RAID_ACT_MAX ? act_str[k] : NULL;
}
const char *raid_state_to_str(enum raid_state s)
{
	return s < _RAID_STATE_MAX ? state_str[s] : NULL;
}

/* "a1:infra" or "infra" names our array `name`. */
static bool sb_is_ours(const struct raid_member *m, const char *name)
{
	const char *c = strrchr(m->name, ':');
	return !strcmp(c ? c + 1 : m->name, name);
}

static struct raid_action *new_act(struct raid_plan *p, enum raid_action_kind k, const char *md)
{
	struct raid_action *a = &p->acts[p->n_acts++];
	*a = (struct raid_action){.kind = k};
	snprintf(a->md, sizeof(a->md), "%s", md);
	return a;
}

static void add_dev(struct raid_action *a, const char *dev)
{
	snprintf(a->devs[a->n_devs++], sizeof(a->devs[0]), "%s", dev);
}

/* The array to use: the running one, else the uuid with the highest event count. */
static const char *pick_uuid(const struct raid_input *in, uint64_t *ret_events)
{
	const char *u = in->running ? in->running_uuid : NULL;
	uint64_t best = 0;
	for (int i = 0; i < in->n_members; i++) {
		const struct raid_member *m = &in->members[i];
		if (!m->has_sb || !sb_is_ours(m, in->name))
			continue;
		if (u && !strcmp(u, m->uuid)) {
			best = m->events > best ? m->events : best;
		} else if (!in->running && (!u || m->events > best)) {
			u = m->uuid;
			best = m->events;
		}
	}
	*ret_events = best;
	return u;
}

static void note_ignored(struct raid_plan *p, const struct raid_member *m)
{
	size_t l = strlen(p->ignored);
	snprintf(p->ignored + l, sizeof(p->ignored) - l, "%s%s(%s)", l ? " " : "", m->dev, m->name);
}

/* No array yet: create from every blank member; one disk gives a degraded mirror. */
static int plan_create(const struct raid_input *in, const bool *ours, const char *md,
		       struct raid_plan *p)
{
	struct raid_action *a = new_act(p, RAID_ACT_CREATE, md);
	for (int i = 0; i < in->n_members; i++)
		if (ours[i])
			add_dev(a, in->members[i].dev);
	if (a->n_devs == 0)
		return -ENODEV;
	a->raid_devices = a->n_devs < 2 ? 2 : a->n_devs;
	p->up = a->n_devs;
	p->total = a->raid_devices;
	for (int i = a->n_devs; i < a->raid_devices; i++)
		add_dev(a, "missing");
	p->state = p->up < p->total ? RAID_STATE_DEGRADED : RAID_STATE_RESYNCING;
	return 0;
}

/* The array exists: assemble it from its freshest members (unless running), re-add the
 * older ones, add the blank ones. */
static void plan_existing(const struct raid_input *in, const bool *ours, const char *md,
			  const char *uuid, uint64_t max_ev, struct raid_plan *p)
{
	int up = 0, fresh = 0;
	struct raid_action *as = NULL;
	if (!in->running) {
		as = new_act(p, RAID_ACT_ASSEMBLE, md);
		snprintf(as->uuid, sizeof(as->uuid), "%s", uuid);
	}
	for (int i = 0; i < in->n_members; i++) {
		const struct raid_member *m = &in->members[i];
		if (!ours[i] || !m->has_sb)
			continue;
		up++;
		if (in->running ? m->in_array : m->events == max_ev) {
			if (as)
				add_dev(as, m->dev);
			fresh++;
		} else {
			add_dev(new_act(p, RAID_ACT_READD, md), m->dev);
		}
	}
	for (int i = 0; i < in->n_members; i++)
		if (ours[i] && !in->members[i].has_sb) {
			add_dev(new_act(p, RAID_ACT_ADD, md), in->members[i].dev);
			up++;
		}
	p->up = up;
	p->total = up < 2 ? 2 : up;
	p->state = up < 2	? RAID_STATE_DEGRADED
		   : fresh < up ? RAID_STATE_RESYNCING
				: RAID_STATE_CLEAN;
}

int raid_plan_make(const struct raid_input *in, struct raid_plan *ret)
{
	if (in->n_members < 1 || in->n_members > RAID_MAX_MEMBERS ||
	    (strcmp(in->name, "infra") && strcmp(in->name, "admin")))
		return -EINVAL;
	struct raid_plan p = {0};
	char md[48];
	snprintf(md, sizeof(md), "/dev/md/%s", in->name);
	uint64_t max_ev;
	const char *uuid = pick_uuid(in, &max_ev);
	bool ours[RAID_MAX_MEMBERS] = {0};
	for (int i = 0; i < in->n_members; i++) {
		const struct raid_member *m = &in->members[i];
		if (m->has_sb && !(sb_is_ours(m, in->name) && uuid && !strcmp(m->uuid, uuid)))
			note_ignored(&p, m); /* another array's member: never touched */
		else
			ours[i] = true;
	}
	if (!uuid) {
		int r = plan_create(in, ours, md, &p);
		if (r < 0)
			return r;
	} else {
		plan_existing(in, ours, md, uuid, max_ev, &p);
	}
	*ret = p;
	return 0;
}

static void kv(const char *line, const char *key, char *out, size_t n)
{
	size_t l = strlen(key);
	if (!strncmp(line, key, l) && line[l] == '=')
		snprintf(out, n, "%s", line + l + 1);
}

int raid_parse_examine(const char *text, struct raid_member *m)
{
	struct raid_member r = *m;
	char ev[32] = "";
	r.has_sb = false;
	r.uuid[0] = r.name[0] = r.level[0] = '\0';
	r.events = 0;
	for (const char *p = text; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[256];
		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = '\0';
			kv(line, "MD_UUID", r.uuid, sizeof(r.uuid));
			kv(line, "MD_NAME", r.name, sizeof(r.name));
			kv(line, "MD_LEVEL", r.level, sizeof(r.level));
			kv(line, "MD_EVENTS", ev, sizeof(ev));
		}
		p = e ? e + 1 : NULL;
	}
	if (!r.uuid[0]) {
		*m = r;
		return 0;
	}
	if (ev[0] && parse_u64(ev, &r.events) < 0)
		return -EINVAL;
	r.has_sb = true;
	*m = r;
	return 0;
}
