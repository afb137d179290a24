/* The disks stage as the running agent sees it: the last result for the console
 * (`disks`, `raid`), and operator wipe approvals. */
#include "bootstrap.h"
#include "log.h"

#include <inttypes.h>
#include <string.h>

struct disk_module {
	const struct cfg *cfg;
	int self;
	struct disk_bootstrap_opts opts;
	char approved[CFG_MAX_WIPES][CFG_PATH_MAX];
	const char *approved_ptr[CFG_MAX_WIPES];
	int n_approved;
	struct disk_bootstrap_result *last;
	bool ran;
	struct health *health; /* set while attached to a running node */
};

static void json_part(struct strbuf *o, const struct disk_part *p, bool first)
{
	sb_printf(o, "%s{\"number\":%d,\"name\":", first ? "" : ",", p->number);
	sb_json_str(o, p->name);
	sb_printf(o, ",\"type\":\"%s\",\"uuid\":\"%s\",\"start\":%" PRIu64 ",\"size\":%" PRIu64 "}",
		  p->type, p->uuid, p->start, p->size);
}

static void json_disk(struct strbuf *o, const struct disk_bootstrap_disk *bd)
{
	const struct disk_info *d = &bd->info;
	sb_puts(o, "{\"dev\":");
	sb_json_str(o, d->path);
	sb_puts(o, ",\"serial\":");
	sb_json_str(o, d->serial);
	sb_puts(o, ",\"wwn\":");
	sb_json_str(o, d->wwn);
	sb_printf(o, ",\"size\":%" PRIu64 ",\"removable\":%s,\"rotational\":%s,\"image\":%s",
		  d->size, d->removable ? "true" : "false", d->rotational ? "true" : "false",
		  d->is_file ? "true" : "false");
	sb_printf(o, ",\"verdict\":\"%s\",\"reason\":", disk_verdict_to_str(bd->plan.verdict));
	sb_json_str(o, bd->plan.reason);
	sb_puts(o, ",\"found\":");
	sb_json_str(o, bd->plan.found);
	sb_printf(o, ",\"pttype\":\"%s\",\"ptuuid\":\"%s\",\"applied\":%s,\"error\":", d->pttype,
		  d->ptuuid, bd->applied ? "true" : "false");
	if (bd->result < 0)
		sb_json_str(o, strerror(-bd->result));
	else
		sb_puts(o, "null");
	sb_printf(o, ",\"guest_can_grow\":%s,\"guest_grow_to\":%" PRIu64 ",\"guest_grown\":%s",
		  bd->plan.guest_can_grow ? "true" : "false", bd->plan.guest_grow_to,
		  bd->plan.grow && bd->applied ? "true" : "false");
	sb_puts(o, ",\"guest_not_grown\":");
	if (bd->plan.grow_refused[0])
		sb_json_str(o, bd->plan.grow_refused);
	else
		sb_puts(o, "null");
	sb_puts(o, ",\"partitions\":[");
	for (int i = 0; i < d->n_parts; i++)
		json_part(o, &d->parts[i], i == 0);
	sb_puts(o, "],\"planned\":[");
	for (int i = 0; i < bd->plan.n_parts; i++)
		sb_printf(o, "%s{\"name\":\"%s\",\"start\":%" PRIu64 ",\"size\":%" PRIu64 "}",
			  i ? "," : "", disk_part_name(bd->plan.parts[i].kind),
			  bd->plan.parts[i].start, bd->plan.parts[i].size);
	sb_puts(o, "]}");
}

static void human_disk(struct strbuf *o, const struct disk_bootstrap_disk *bd)
{
	const struct disk_info *d = &bd->info;
	char sz[32];
	format_size(d->size / DISK_MIB * DISK_MIB, sz, sizeof(sz));
	sb_printf(o, "%-24s %10s  %-20s %-10s %s%s%s\n", d->path, sz,
		  d->serial[0] ? d->serial
		  : d->wwn[0]  ? d->wwn
			       : "-",
		  disk_verdict_to_str(bd->plan.verdict), bd->plan.reason,
		  bd->result < 0 ? ": error: " : "", bd->result < 0 ? strerror(-bd->result) : "");
	const struct disk_plan *p = &bd->plan;
	for (int i = 0; i < p->n_parts; i++) {
		char s[32];
		format_size(p->parts[i].size, s, sizeof(s));
		sb_printf(o, "    %-12s start %8" PRIu64 " MiB  size %10s  type %s\n",
			  disk_part_name(p->parts[i].kind), p->parts[i].start / DISK_MIB, s,
			  disk_part_type_guid(p->parts[i].kind));
	}
	if (p->grow)
		sb_printf(o, "    cmpt-guest %s %" PRIu64 " MiB\n",
			  bd->applied ? "grown to" : "grows to",
			  p->parts[p->n_parts - 1].size / DISK_MIB);
	else if (p->guest_can_grow)
		sb_printf(o, "    cmpt-guest could grow to %" PRIu64 " MiB, not grown: %s\n",
			  p->guest_grow_to / DISK_MIB,
			  p->grow_refused[0] ? p->grow_refused : "plan only");
}

void disk_bootstrap_format(const struct disk_bootstrap_result *r, bool json, struct strbuf *out)
{
	if (json) {
		sb_puts(out, "{\"disks\":[");
		for (int i = 0; i < r->n_disks; i++) {
			if (i)
				sb_putc(out, ',');
			json_disk(out, &r->disks[i]);
		}
		sb_printf(out,
			  "],\"journal\":{\"loaded\":%s,\"written\":%s,\"seq\":%" PRIu64
			  ",\"disks\":%d}}\n",
			  r->journal_loaded ? "true" : "false",
			  r->journal_written ? "true" : "false", r->journal.seq, r->n_jdevs);
		return;
	}
	sb_printf(out, "%-24s %10s  %-20s %-10s %s\n", "DEVICE", "SIZE", "SERIAL/WWN", "VERDICT",
		  "REASON");
	for (int i = 0; i < r->n_disks; i++)
		human_disk(out, &r->disks[i]);
	if (r->n_disks == 0)
		sb_puts(out, "(no disks selected)\n");
	sb_printf(out, "journal: %s, sequence %" PRIu64 ", on %d disk(s)\n",
		  r->journal_written  ? "written"
		  : r->journal_loaded ? "loaded"
				      : "none",
		  r->journal.seq, r->n_jdevs);
}

void disk_bootstrap_format_raid(const struct disk_bootstrap_result *r, bool json,
				struct strbuf *out)
{
	bool first = true;
	if (json)
		sb_puts(out, "{\"arrays\":[");
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		const struct disk_bootstrap_raid *br = &r->raids[k];
		if (!br->planned && br->input.n_members == 0)
			continue;
		if (json) {
			sb_printf(out,
				  "%s{\"name\":\"%s\",\"state\":\"%s\",\"up\":%d,\"total\":%d,"
				  "\"error\":",
				  first ? "" : ",", br->input.name,
				  raid_state_to_str(br->plan.state), br->plan.up, br->plan.total);
			if (br->result < 0)
				sb_json_str(out, strerror(-br->result));
			else
				sb_puts(out, "null");
			sb_puts(out, ",\"actions\":[");
			for (int i = 0; i < br->plan.n_acts; i++)
				sb_printf(out, "%s\"%s\"", i ? "," : "",
					  raid_action_to_str(br->plan.acts[i].kind));
			sb_puts(out, "],\"members\":[");
			for (int i = 0; i < br->input.n_members; i++) {
				if (i)
					sb_putc(out, ',');
				sb_json_str(out, br->input.members[i].dev);
			}
			sb_puts(out, "]}");
		} else {
			sb_printf(out, "/dev/md/%-6s %-9s members %d/%d%s%s\n", br->input.name,
				  raid_state_to_str(br->plan.state), br->plan.up, br->plan.total,
				  br->result < 0 ? "  error: " : "",
				  br->result < 0 ? strerror(-br->result) : "");
			for (int i = 0; i < br->input.n_members; i++)
				sb_printf(out, "    %s%s\n", br->input.members[i].dev,
					  br->input.members[i].has_sb ? "" : " (new)");
			if (br->plan.ignored[0])
				sb_printf(out, "    left alone: %s\n", br->plan.ignored);
		}
		first = false;
	}
	if (json)
		sb_puts(out, "]}\n");
	else if (first)
		sb_puts(out, "no RAID arrays (no disks with the layout, or RAID not run)\n");
}

int disk_module_new(const struct cfg *c, int self, const struct disk_bootstrap_opts *o,
		    struct disk_module **ret)
{
	struct disk_module *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->last = calloc(1, sizeof(*m->last));
	if (!m->last) {
		free(m);
		return -ENOMEM;
	}
	m->cfg = c;
	m->self = self;
	m->opts = *o;
	m->opts.n_approve = 0;
	m->opts.approve = m->approved_ptr;
	for (int i = 0; i < o->n_approve && i < CFG_MAX_WIPES; i++) {
		snprintf(m->approved[i], CFG_PATH_MAX, "%s", o->approve[i]);
		m->approved_ptr[i] = m->approved[i];
		m->opts.n_approve = m->n_approved = i + 1;
	}
	*ret = m;
	return 0;
}

void disk_module_set_health(struct disk_module *m, struct health *h)
{
	m->health = h;
}

struct health *disk_module_health(const struct disk_module *m)
{
	return m->health;
}

struct disk_module *disk_module_free(struct disk_module *m)
{
	if (m) {
		free(m->last);
		free(m);
	}
	return NULL;
}

int disk_module_bootstrap(struct disk_module *m)
{
	m->ran = true;
	return disk_bootstrap(m->cfg, m->self, &m->opts, m->last);
}

const struct disk_bootstrap_result *disk_module_result(const struct disk_module *m)
{
	return m->ran ? m->last : NULL;
}

void disk_module_set_result(struct disk_module *m, const struct disk_bootstrap_result *r)
{
	memcpy(m->last, r, sizeof(*m->last));
	m->ran = true;
}

struct journal_state *disk_module_journal(struct disk_module *m)
{
	return m->ran ? &m->last->journal : NULL;
}

int disk_module_journal_store(struct disk_module *m)
{
	if (!m->ran || m->last->n_jdevs == 0)
		return -ENODEV;
	if (!m->last->journal.node[0])
		snprintf(m->last->journal.node, sizeof(m->last->journal.node), "%s",
			 m->cfg->nodes[m->self].name);
	return journal_store(m->last->jdevs, m->last->n_jdevs, &m->last->journal);
}

static const struct disk_bootstrap_disk *find_disk(const struct disk_module *m, const char *name)
{
	for (int i = 0; m->ran && i < m->last->n_disks; i++) {
		const struct disk_info *d = &m->last->disks[i].info;
		if (!strcmp(d->path, name) || (d->serial[0] && !strcmp(d->serial, name)) ||
		    (d->wwn[0] && !strcmp(d->wwn, name)))
			return &m->last->disks[i];
	}
	return NULL;
}

int disk_approve_wipe_record(struct disk_module *m, const char *disk, struct strbuf *msg,
			     char ret_path[CFG_PATH_MAX])
{
	const struct disk_bootstrap_disk *bd = find_disk(m, disk);
	if (!bd) {
		sb_printf(msg, "no disk %s among the selected disks", disk);
		return -ENOENT;
	}
	if (bd->plan.verdict != DISK_VERDICT_FOREIGN) {
		sb_printf(msg, "%s is %s, not foreign: nothing to approve", bd->info.path,
			  disk_verdict_to_str(bd->plan.verdict));
		return -EINVAL;
	}
	/* Name it the way the planner accepts: serial, WWN, or the path when it has neither. */
	const char *id = bd->info.serial[0] ? bd->info.serial
			 : bd->info.wwn[0]  ? bd->info.wwn
					    : bd->info.path;
	int i;
	for (i = 0; i < m->n_approved; i++)
		if (!strcmp(m->approved[i], id))
			break; /* approved before, not consumed yet (e.g. a run under way) */
	if (i == m->n_approved) {
		if (m->n_approved == CFG_MAX_WIPES) {
			sb_printf(msg, "too many approvals pending");
			return -ENOSPC;
		}
		snprintf(m->approved[i], CFG_PATH_MAX, "%s", id);
		m->approved_ptr[i] = m->approved[i];
		m->opts.n_approve = ++m->n_approved;
	}
	snprintf(ret_path, CFG_PATH_MAX, "%s", bd->info.path);
	log_notice("operator approved wiping %s (%s)", bd->info.path, id);
	return 0;
}

int disk_approve_wipe_outcome(const struct disk_module *m, const char *path, int stage_rc,
			      struct strbuf *msg)
{
	const struct disk_bootstrap_disk *bd = find_disk(m, path);
	if (bd && bd->plan.verdict == DISK_VERDICT_WIPED && bd->result >= 0) {
		const char *id = bd->info.serial[0] ? bd->info.serial
				 : bd->info.wwn[0]  ? bd->info.wwn
						    : bd->info.path;
		sb_printf(msg, "%s wiped and partitioned; authorization %s consumed", path, id);
		return 0;
	}
	sb_printf(msg, "%s was not wiped: %s", path, bd ? bd->plan.reason : "disk gone");
	return stage_rc < 0 ? stage_rc : -EIO;
}

int disk_approve_wipe(struct disk_module *m, const char *disk, struct strbuf *msg)
{
	char path[CFG_PATH_MAX];
	int r = disk_approve_wipe_record(m, disk, msg, path);
	if (r < 0)
		return r;
	return disk_approve_wipe_outcome(m, path, disk_module_bootstrap(m), msg);
}

static int cmd_disks(struct console_req *req, void *ud)
{
	const struct disk_bootstrap_result *r = disk_module_result(ud);
	if (!r) {
		console_req_error(req, "the disks stage has not run yet");
		return -EAGAIN;
	}
	disk_bootstrap_format(r, req->json, &req->out);
	return 0;
}

static int cmd_raid(struct console_req *req, void *ud)
{
	const struct disk_bootstrap_result *r = disk_module_result(ud);
	if (!r) {
		console_req_error(req, "the disks stage has not run yet");
		return -EAGAIN;
	}
	disk_bootstrap_format_raid(r, req->json, &req->out);
	return 0;
}

int disk_console_register(struct console *con, struct disk_module *m)
{
	int r = console_register(con, "disks", "", "local disks: verdicts, partitions, journal",
				 cmd_disks, m);
	if (r >= 0)
		r = console_register(con, "raid", "", "md RAID1 arrays: state and members",
				     cmd_raid, m);
	return r;
}
