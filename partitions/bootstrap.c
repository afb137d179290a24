/* The disks stage: discovery, plan, journaled apply, RAID1. */
#include "bootstrap.h"
#include "log.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

#define RAID_TIMEOUT_US (120 * USEC_PER_SEC)
#define AUTH_MAX (CFG_MAX_WIPES + CFG_MAX_WIPES + JOURNAL_MAX_STEPS)

/* The identity an authorization and a journal record name a disk by. */
static const char *disk_id(const struct disk_info *d)
{
	return d->serial[0] ? d->serial : d->wwn[0] ? d->wwn : d->path;
}

static int select_paths(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
			char paths[][CFG_PATH_MAX], bool *ret_auto)
{
	const struct cfg_node *n = &c->nodes[self];
	int k = 0;
	*ret_auto = false;
	if (o->n_disks > 0) {
		for (int i = 0; i < o->n_disks && k < DISK_MAX; i++)
			snprintf(paths[k++], CFG_PATH_MAX, "%s", o->disks[i]);
		return k;
	}
	if (!n->disks_auto) {
		for (int i = 0; i < n->n_disks && k < DISK_MAX; i++)
			snprintf(paths[k++], CFG_PATH_MAX, "%s", n->disks[i]);
		return k;
	}
	*ret_auto = true;
	struct disk_auto_opts ao = {.sysfs_root = o->sysfs_root,
				    .boot_medium = o->boot_medium,
				    .cmdline = o->cmdline,
				    .mountinfo = o->mountinfo};
	return disk_list_auto(&ao, paths, DISK_MAX);
}

static void disk_event(const struct disk_bootstrap_disk *bd)
{
	struct event ev;
	event_begin(&ev, "disk");
	event_add(&ev, "dev", bd->info.path);
	event_add(&ev, "serial", bd->info.serial[0] ? bd->info.serial : bd->info.wwn);
	event_add(&ev, "verdict", disk_verdict_to_str(bd->plan.verdict));
	event_add(&ev, "found", bd->plan.found);
	event_add_u64(&ev, "size", bd->info.size);
	if (bd->plan.grow && bd->applied && bd->result >= 0)
		event_add_u64(&ev, "guest_grown_to", bd->plan.parts[bd->plan.n_parts - 1].size);
	else if (bd->plan.guest_can_grow)
		event_add_u64(&ev, "guest_can_grow_to", bd->plan.guest_grow_to);
	if (bd->plan.grow_refused[0])
		event_add(&ev, "guest_not_grown", bd->plan.grow_refused);
	if (bd->result < 0)
		event_add(&ev, "error", strerror(-bd->result));
	event_emit(&ev);
}

static bool usable(const struct disk_bootstrap_disk *bd)
{
	if (bd->result < 0)
		return false;
	switch (bd->plan.verdict) {
	case DISK_VERDICT_KEEP:
	case DISK_VERDICT_CREATE:
	case DISK_VERDICT_WIPED:
		return true;
	case DISK_VERDICT_FOREIGN:
	case DISK_VERDICT_TOO_SMALL:
	case _DISK_VERDICT_MAX:
		break;
	}
	return false;
}

static const struct disk_part *part_named(const struct disk_info *d, enum disk_part_kind k)
{
	for (int i = 0; i < d->n_parts; i++)
		if (!strcmp(d->parts[i].name, disk_part_name(k)))
			return &d->parts[i];
	return NULL;
}

/* The journal lives on cmpt-state of every disk that carries our layout. */
static void collect_jdevs(const struct disk_bootstrap_opts *o, struct disk_bootstrap_result *r)
{
	r->n_jdevs = 0;
	for (int i = 0; i < r->n_disks; i++) {
		const struct disk_bootstrap_disk *bd = &r->disks[i];
		const struct disk_part *p = part_named(&bd->info, DISK_PART_STATE);
		/* Only disks that carry our layout: kept ones, or ones written this run. */
		if (!p || strcmp(bd->info.pttype, "gpt") || !usable(bd) ||
		    (bd->plan.verdict != DISK_VERDICT_KEEP && !bd->applied))
			continue;
		struct journal_dev *j = &r->jdevs[r->n_jdevs++];
		snprintf(j->path, sizeof(j->path), "%s", bd->info.path);
		j->offset = p->start;
		j->size = p->size;
	}
	struct stat st;
	if (o->state_path && stat(o->state_path, &st) == 0 && r->n_jdevs < DISK_MAX) {
		struct journal_dev *j = &r->jdevs[r->n_jdevs++];
		snprintf(j->path, sizeof(j->path), "%s", o->state_path);
		j->offset = 0;
		j->size = (uint64_t)st.st_size;
	}
}

static void load_journal(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
			 struct disk_bootstrap_result *r)
{
	collect_jdevs(o, r);
	r->journal_loaded = journal_load(r->jdevs, r->n_jdevs, &r->journal) == 0;
	if (r->journal_loaded && r->journal.node[0] &&
	    strcmp(r->journal.node, c->nodes[self].name)) {
		log_warn("journal belongs to node %s, not %s: starting a new one", r->journal.node,
			 c->nodes[self].name);
		uint64_t seq = r->journal.seq;
		memset(&r->journal, 0, sizeof(r->journal));
		r->journal.seq = seq;
		r->journal_loaded = false;
	}
}

#define WIPE_DETAIL "wiped:"
#define GROW_TARGET "grow:" /* a grow intent's target: "grow:<disk id>" */

/* Authorizations not yet consumed: the config's `wipe =` and the operator's. A consumed one
 * whose wipe was interrupted is finished through the journal's pending intent below,
 * which holds it to the disk it was for. */
static int gather_auths(const struct cfg *c, const struct disk_bootstrap_opts *o,
			const struct journal_state *j, struct disk_auth *a, int max)
{
	int n = 0;
	for (int i = 0; i < c->layout.n_wipes && n < max; i++)
		if (!journal_wipe_consumed(j, c->layout.wipes[i]))
			snprintf(a[n++].id, sizeof(a[0].id), "%s", c->layout.wipes[i]);
	for (int i = 0; i < o->n_approve && n < max; i++)
		if (!journal_wipe_consumed(j, o->approve[i]))
			snprintf(a[n++].id, sizeof(a[0].id), "%s", o->approve[i]);
		else
			log_notice("wipe authorization %s was already used, ignoring",
				   o->approve[i]);
	/* A disk this node began to partition and did not finish (power lost inside the
	 * GPT write leaves a torn table) is ours to redo, if it is still that disk. */
	for (int i = 0; i < j->n_steps && n < max; i++) {
		const struct journal_step *st = &j->steps[i];
		if (st->kind != JOURNAL_STEP_PARTITION || st->state != JOURNAL_STEP_INTENT ||
		    !strncmp(st->target, GROW_TARGET, strlen(GROW_TARGET)))
			continue;
		struct disk_auth *x = &a[n++];
		snprintf(x->id, sizeof(x->id), "%s", st->target);
		x->resume = true;
		x->size = st->disk_size;
		x->wiped = !strncmp(st->detail, "wiped", 5);
		snprintf(x->found, sizeof(x->found), "%s", st->found);
	}
	return n;
}

/* Grows of cmpt-guest the journal shows begun and not finished: the planner finishes them
 * on the same disk (id and size). */
static int gather_grows(const struct journal_state *j, struct disk_auth *a, int max)
{
	int n = 0;
	size_t pl = strlen(GROW_TARGET);
	for (int i = 0; i < j->n_steps && n < max; i++) {
		const struct journal_step *st = &j->steps[i];
		if (st->kind != JOURNAL_STEP_PARTITION || st->state != JOURNAL_STEP_INTENT ||
		    strncmp(st->target, GROW_TARGET, pl))
			continue;
		snprintf(a[n].id, sizeof(a[n].id), "%s", st->target + pl);
		a[n++].size = st->disk_size;
	}
	return n;
}

/* Which torn tables are provably nothing but our own write: the canonical partitions'
 * areas still read as zeros. */
static void mark_areas(const struct disk_plan_input *in, struct disk_bootstrap_result *r)
{
	for (int i = 0; i < r->n_disks; i++) {
		struct disk_info *d = &r->disks[i].info;
		struct disk_plan_part c[_DISK_PART_MAX];
		int n;
		d->areas_blank = false;
		d->tail_ours =
		    r->disks[i].result >= 0 && !strcmp(d->pttype, "gpt") &&
		    disk_gpt_tail_ours(d->path, d->sector_size ? d->sector_size : 512, d->size);
		if (r->disks[i].result < 0 || !disk_torn_own(in, d) ||
		    disk_layout_compute(in->layout, in->zone, d->size, c, &n) < 0)
			continue;
		d->areas_blank = disk_areas_blank(d->path, c, n);
	}
}

static void random_guid(char out[40])
{
	uint8_t g[16];
	randombytes_buf(g, sizeof(g));
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40); /* version 4 (on-disk order) */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	disk_guid_format(g, out);
}

/* The intent names its disk: size, the GPT disk GUID it writes (kept across retries, so a
 * disk GUID never changes once written), and what was on the disk before. */
static void intent_identity(struct journal_state *j, uint64_t id, struct disk_bootstrap_disk *bd)
{
	for (int i = 0; i < j->n_steps; i++) {
		struct journal_step *st = &j->steps[i];
		if (st->id != id)
			continue;
		if (!st->disk_size) {
			st->disk_size = bd->info.size;
			disk_fingerprint(&bd->info, st->found, sizeof(st->found));
		}
		if (!st->disk_guid[0])
			random_guid(st->disk_guid);
		snprintf(bd->plan.disk_guid, sizeof(bd->plan.disk_guid), "%s", st->disk_guid);
		return;
	}
}

static int probe_all(const struct cfg *c, const struct disk_bootstrap_opts *o,
		     char paths[][CFG_PATH_MAX], int n, bool autosel,
		     struct disk_bootstrap_result *r)
{
	for (int i = 0; i < n && r->n_disks < DISK_MAX; i++) {
		struct disk_bootstrap_disk *bd = &r->disks[r->n_disks];
		memset(bd, 0, sizeof(*bd));
		int e = disk_probe(paths[i], &bd->info);
		if (autosel && (e < 0 || bd->info.removable || bd->info.size < c->layout.min_disk ||
				streq_ptr(paths[i], o->boot_medium)))
			continue;
		if (e < 0) {
			snprintf(bd->info.path, sizeof(bd->info.path), "%s", paths[i]);
			bd->info.probe_failed = true;
			bd->result = e;
		}
		r->n_disks++;
	}
	return 0;
}

static int store(const struct disk_bootstrap_opts *o, struct disk_bootstrap_result *r)
{
	collect_jdevs(o, r);
	if (r->n_jdevs == 0)
		return -ENODEV;
	int e = journal_store(r->jdevs, r->n_jdevs, &r->journal);
	if (e >= 0)
		r->journal_written = true;
	return e;
}

static void grow_off(struct disk_bootstrap_disk *bd)
{
	const struct disk_part *g = part_named(&bd->info, DISK_PART_GUEST);
	bd->plan.grow = false;
	if (g)
		bd->plan.parts[bd->plan.n_parts - 1].size = g->size;
}

/* The intent is on disk before the first byte of the table changes; without a journal to
 * hold it, the disk is not grown (it stays as it is, reported as able to grow). */
static uint64_t grow_intent(const struct disk_bootstrap_opts *o, struct disk_bootstrap_result *r,
			    struct disk_bootstrap_disk *bd)
{
	char target[CFG_PATH_MAX + 8];
	snprintf(target, sizeof(target), GROW_TARGET "%s", disk_id(&bd->info));
	uint64_t id = journal_step_intent(&r->journal, JOURNAL_STEP_PARTITION, target, "grow");
	for (int i = 0; i < r->journal.n_steps; i++)
		if (r->journal.steps[i].id == id)
			r->journal.steps[i].disk_size = bd->info.size;
	disk_fault_point(DISK_STEP_INTENT);
	if (store(o, r) < 0) {
		log_warn("%s: no journal to record the growth in, cmpt-guest not grown",
			 bd->info.path);
		snprintf(bd->plan.grow_refused, sizeof(bd->plan.grow_refused),
			 "no journal to record the intent in");
		grow_off(bd);
		return 0;
	}
	return id;
}

/* A grow that failed leaves a table libparted refused to touch or one the verification
 * did not accept: what is on the disk now decides, checked against the layout as it was. */
static int grow_failed(struct disk_bootstrap_disk *bd)
{
	char why[200];
	struct disk_info fresh;
	grow_off(bd);
	snprintf(bd->plan.grow_refused, sizeof(bd->plan.grow_refused), "growing failed");
	if (disk_probe(bd->info.path, &fresh) < 0)
		return -EIO;
	const struct disk_part *g = part_named(&fresh, DISK_PART_GUEST);
	if (g)
		bd->plan.parts[bd->plan.n_parts - 1].size = g->size;
	int e = disk_verify(bd->info.path, &bd->plan, why, sizeof(why));
	if (e < 0)
		log_error("%s: after the failed growth: %s", bd->info.path, why);
	return e;
}

static int apply_one(const struct disk_bootstrap_opts *o, struct disk_bootstrap_result *r,
		     struct disk_bootstrap_disk *bd, const struct disk_auth *auths,
		     uint64_t *ret_step)
{
	enum disk_verdict v = bd->plan.verdict;
	bool writes = false;
	*ret_step = 0;
	if (v == DISK_VERDICT_CREATE || v == DISK_VERDICT_WIPED) {
		char detail[96];
		snprintf(detail, sizeof(detail), "%s", disk_verdict_to_str(v));
		if (v == DISK_VERDICT_WIPED && bd->plan.auth >= 0 && !auths[bd->plan.auth].resume) {
			/* Consumed from the moment the intent is on disk; the pending intent lets
			 * an interrupted wipe finish. */
			snprintf(detail, sizeof(detail), WIPE_DETAIL "%.80s",
				 auths[bd->plan.auth].id);
			if (journal_wipe_record(&r->journal, auths[bd->plan.auth].id) < 0)
				return log_error_errno(-ENOSPC,
						       "%s: the journal holds %d consumed wipes, "
						       "no room to record another: not wiping",
						       bd->info.path, JOURNAL_MAX_WIPES);
		}
		*ret_step = journal_step_intent(&r->journal, JOURNAL_STEP_PARTITION,
						disk_id(&bd->info), detail);
		intent_identity(&r->journal, *ret_step, bd);
		disk_fault_point(DISK_STEP_INTENT);
		if (store(o, r) < 0)
			log_info("%s: no journal yet to record the intent in (first disk)",
				 bd->info.path);
		writes = true;
	} else if (v == DISK_VERDICT_KEEP && bd->plan.grow) {
		*ret_step = grow_intent(o, r, bd);
		writes = true;
	} else if (v == DISK_VERDICT_KEEP && bd->plan.fix_types) {
		writes = true;
	}
	int e = disk_apply(&bd->info, &bd->plan);
	if (e < 0 && v == DISK_VERDICT_KEEP && bd->plan.grow)
		e = grow_failed(bd);
	if (e < 0)
		return e;
	bd->applied = writes;
	if (writes) {
		struct disk_info fresh;
		e = disk_probe(bd->info.path, &fresh);
		if (e < 0)
			return e;
		bd->info = fresh;
	}
	return 0;
}

/* Finishes intents left by a run that stopped after the disk got its layout. */
static bool settle_old_intents(struct disk_bootstrap_result *r)
{
	bool changed = false;
	for (int i = 0; i < r->n_disks; i++) {
		const struct disk_bootstrap_disk *bd = &r->disks[i];
		const struct journal_step *s;
		while (usable(bd) && bd->plan.verdict == DISK_VERDICT_KEEP &&
		       (s = journal_step_pending(&r->journal, JOURNAL_STEP_PARTITION,
						 disk_id(&bd->info)))) {
			journal_step_done(&r->journal, s->id);
			changed = true;
		}
	}
	return changed;
}

static int apply_all(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		     const struct disk_auth *auths, struct disk_bootstrap_result *r)
{
	int ret = 0;
	bool changed = false;
	for (int i = 0; i < r->n_disks; i++) {
		struct disk_bootstrap_disk *bd = &r->disks[i];
		if (bd->result < 0)
			continue;
		uint64_t step;
		bd->result = apply_one(o, r, bd, auths, &step);
		if (bd->result < 0) {
			ret = bd->result;
			continue;
		}
		if (step) {
			journal_step_done(&r->journal, step);
			changed = true;
		}
		if (bd->plan.verdict == DISK_VERDICT_WIPED && bd->plan.auth >= 0 &&
		    !auths[bd->plan.auth].resume)
			(void)journal_wipe_record(&r->journal, auths[bd->plan.auth].id);
	}
	changed |= settle_old_intents(r);
	if (!r->journal.node[0]) {
		snprintf(r->journal.node, sizeof(r->journal.node), "%s", c->nodes[self].name);
		changed = true;
	}
	disk_fault_point(DISK_STEP_DONE);
	if (changed && store(o, r) < 0)
		log_warn("no cmpt-state partition to write the journal to, ignoring");
	return ret;
}

static void raid_members(const struct cfg *c, int self, enum cfg_kind k,
			 struct disk_bootstrap_result *r, struct raid_input *in)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", cfg_kind_to_str(k));
	snprintf(in->homehost, sizeof(in->homehost), "%s", c->nodes[self].name);
	enum disk_part_kind pk = k == CFG_KIND_ADMIN ? DISK_PART_ADMIN : DISK_PART_INFRA;
	for (int i = 0; i < r->n_disks && in->n_members < RAID_MAX_MEMBERS; i++) {
		const struct disk_part *p = part_named(&r->disks[i].info, pk);
		if (!usable(&r->disks[i]) || !p)
			continue;
		disk_part_path(r->disks[i].info.path, p->number, in->members[in->n_members++].dev,
			       CFG_PATH_MAX);
	}
}

/* The array's UUID, as its members' superblocks say, into the journal: when the array was
 * just created, or nothing is recorded yet. Health integrity compares against it. */
static bool record_md_uuid(const struct raid_driver *drv, struct disk_bootstrap_raid *br,
			   enum cfg_kind k, bool created, struct journal_state *j)
{
	if (!created && j->md_uuid[k][0])
		return false;
	if (created && raid_examine_members(drv, &br->input) < 0)
		return false;
	char want[CFG_NAME_MAX + 24];
	snprintf(want, sizeof(want), "%s:%s", br->input.homehost, br->input.name);
	for (int i = 0; i < br->input.n_members; i++) {
		const struct raid_member *m = &br->input.members[i];
		if (!m->has_sb || strcmp(m->name, want) || !m->uuid[0] ||
		    !strcmp(j->md_uuid[k], m->uuid))
			continue;
		snprintf(j->md_uuid[k], sizeof(j->md_uuid[k]), "%s", m->uuid);
		return true;
	}
	return false;
}

static int raid_all(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		    struct disk_bootstrap_result *r)
{
	struct raid_driver drv = {.mdadm = o->mdadm ? o->mdadm : "mdadm",
				  .timeout_us = RAID_TIMEOUT_US};
	enum cfg_zone zone = c->compartments[c->nodes[self].compartment].zone;
	int ret = 0;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		struct disk_bootstrap_raid *br = &r->raids[k];
		if (k == CFG_KIND_ADMIN && zone != CFG_ZONE_MZ)
			continue;
		raid_members(c, self, (enum cfg_kind)k, r, &br->input);
		if (br->input.n_members == 0)
			continue;
		br->result = raid_examine_members(&drv, &br->input);
		if (br->result >= 0)
			br->result = raid_plan_make(&br->input, &br->plan);
		if (br->result < 0) {
			ret = br->result;
			continue;
		}
		br->planned = true;
		if (br->plan.n_acts == 0) {
			if (record_md_uuid(&drv, br, (enum cfg_kind)k, false, &r->journal))
				(void)store(o, r);
			continue;
		}
		char target[32];
		snprintf(target, sizeof(target), "md:%s", br->input.name);
		uint64_t id = journal_step_intent(&r->journal, JOURNAL_STEP_RAID, target,
						  raid_action_to_str(br->plan.acts[0].kind));
		(void)store(o, r);
		disk_fault_point(DISK_STEP_RAID);
		br->result = raid_run_plan(&drv, &br->input, &br->plan);
		if (br->result < 0) {
			ret = br->result;
			continue;
		}
		journal_step_done(&r->journal, id);
		(void)record_md_uuid(&drv, br, (enum cfg_kind)k,
				     br->plan.acts[0].kind == RAID_ACT_CREATE, &r->journal);
		(void)store(o, r);
	}
	return ret;
}

static void plan_all(const struct disk_plan_input *in, struct disk_bootstrap_result *r)
{
	for (int i = 0; i < r->n_disks; i++) {
		struct disk_bootstrap_disk *bd = &r->disks[i];
		if (bd->result >= 0) {
			disk_plan_one(in, &bd->info, &bd->plan);
			continue;
		}
		bd->plan = (struct disk_plan){.verdict = DISK_VERDICT_FOREIGN, .auth = -1};
		snprintf(bd->plan.reason, sizeof(bd->plan.reason), "cannot be probed");
		snprintf(bd->plan.found, sizeof(bd->plan.found), "unreadable");
	}
}

int disk_bootstrap(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		   struct disk_bootstrap_result *ret)
{
	struct disk_bootstrap_result *r = ret;
	char(*paths)[CFG_PATH_MAX] = calloc(DISK_MAX, CFG_PATH_MAX);
	struct disk_auth *auths = calloc(AUTH_MAX, sizeof(*auths));
	struct disk_auth *grows = calloc(DISK_MAX, sizeof(*grows));
	bool autosel;
	int e = 0;
	memset(r, 0, sizeof(*r));
	if (!paths || !auths || !grows) {
		e = -ENOMEM;
		goto out;
	}
	int n = select_paths(c, self, o, paths, &autosel);
	if (n < 0) {
		e = n;
		goto out;
	}
	probe_all(c, o, paths, n, autosel, r);
	struct disk_plan_input in = {
	    .layout = &c->layout,
	    .zone = c->compartments[c->nodes[self].compartment].zone,
	    .auths = auths,
	};
	/* Which disks are ours does not depend on authorizations: plan once without them to
	 * find the journal, then again with those the journal has not seen used. */
	mark_areas(&in, r);
	plan_all(&in, r);
	load_journal(c, self, o, r);
	in.n_auths = gather_auths(c, o, &r->journal, auths, AUTH_MAX);
	in.grows = grows;
	in.n_grows = gather_grows(&r->journal, grows, DISK_MAX);
	plan_all(&in, r);
	disk_fault_point(DISK_STEP_PLAN);
	if (o->apply)
		e = apply_all(c, self, o, auths, r);
	for (int i = 0; i < r->n_disks; i++)
		disk_event(&r->disks[i]);
	if (o->apply && o->raid) {
		int e2 = raid_all(c, self, o, r);
		e = e < 0 ? e : e2;
	}
out:
	free(paths);
	free(auths);
	free(grows);
	return e;
}
