#include "health_disks.h"

#include "bootstrap.h"
#include "console.h"
#include "log.h"
#include "node_env.h"
#include "spawn.h"

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <strings.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* The disks stage run again for a rebuild (mdadm, libparted) may take long: it runs in a
 * child process the loop watches, never in the loop, bounded by this. */
#define DISKS_JOB_TIMEOUT_US (600 * USEC_PER_SEC)

/* What the child hands back, through shared memory. */
struct job_shm {
	bool complete;
	int rc;
	struct disk_bootstrap_result res;
};

/* Somebody waiting for the stage to have run (an operator's approve-wipe). */
struct disks_waiter {
	char path[CFG_PATH_MAX];
	health_disks_done_fn done;
	void *ud;
};
#define MAX_WAITERS 8

/* Shared by every component of one disk module: at most one run of the stage at a time. */
struct disks_ctx {
	struct health *h;
	struct disk_module *m;
	struct spawn *job;
	struct job_shm *shm;
	int log_rd, log_wr; /* the child's log lines, re-emitted by the parent */
	struct watch *log_w;
	char line[1024];
	size_t line_len;
	uint64_t started_us;
	int refs;
	struct disks_waiter waiters[MAX_WAITERS];
	int n_waiters;
	bool rerun; /* the run under way forked before something it must see */
};

struct disk_watch {
	struct disk_module *m;
	struct disks_ctx *x;
	char path[CFG_PATH_MAX];
};

static int job_start(struct disks_ctx *x, struct strbuf *msg);
static struct disks_ctx *ctx_get(struct health *h, struct disk_module *m);
static void ctx_put(struct disks_ctx *x);

static bool job_busy(void *ud)
{
	const struct disk_watch *w = ud;
	return w->x && w->x->job;
}

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
	/* A disk that grew under the running node (a resized virtual disk): the rebuild rung
	 * runs the disks stage, which grows cmpt-guest (or says why not) and takes the new
	 * size, so this fires once per growth. */
	uint64_t now = disk_dev_size(w->path);
	if (now >= bd->info.size + DISK_MIB) {
		sb_printf(d, "the disk grew from %" PRIu64 " to %" PRIu64 " MiB",
			  bd->info.size / DISK_MIB, now / DISK_MIB);
		return -ERANGE;
	}
	sb_printf(d, "layout ok (%d partitions)", bd->plan.n_parts);
	return 0;
}

/* Runs the disks stage again: it lays out a blank disk and keeps its hands off anything
 * it was not allowed to touch. */
static int disk_rebuild(void *ud, struct strbuf *msg)
{
	struct disk_watch *w = ud;
	int r = job_start(w->x, msg);
	const struct disk_bootstrap_disk *bd = entry(w);
	if (r == 0 && bd)
		sb_printf(msg, ": %s is %s", w->path, disk_verdict_to_str(bd->plan.verdict));
	return r;
}

static const struct health_component_ops disk_ops = {
    .check_reachable = disk_reachable,
    .check_parses = disk_parses,
    .check_integrity = disk_integrity,
    .rebuild = disk_rebuild,
    .busy = job_busy,
    .rebuild_tries = 1,
};

/* ---- the state journal: reported, repaired by the next write of the disks stage ---- */

static int journal_reachable(void *ud, struct strbuf *d)
{
	struct disk_watch *w = ud;
	const struct disk_bootstrap_result *r = disk_module_result(w->m);
	if (!r || !r->n_jdevs) {
		sb_puts(d, "no cmpt-state area on any disk");
		return -ENOENT;
	}
	return 0;
}

static struct journal_scan *scan_journal(struct disk_watch *w)
{
	const struct disk_bootstrap_result *r = disk_module_result(w->m);
	struct journal_scan *sc = calloc(1, sizeof(*sc));
	if (sc && journal_scan(r->jdevs, r->n_jdevs, sc) < 0) {
		free(sc);
		return NULL;
	}
	return sc;
}

static int journal_parses(void *ud, struct strbuf *d)
{
	_cleanup_free_ struct journal_scan *sc = scan_journal(ud);
	if (!sc)
		return -ENOMEM;
	if (!sc->n_valid) {
		sb_puts(d, "no valid slot on any device");
		return -EBADMSG;
	}
	return 0;
}

/* Every corrupt slot, and every device that missed the newest write, is a failure: the
 * journal has less redundancy than it should. */
static int journal_integrity(void *ud, struct strbuf *d)
{
	struct disk_watch *w = ud;
	const struct disk_bootstrap_result *r = disk_module_result(w->m);
	_cleanup_free_ struct journal_scan *sc = scan_journal(w);
	if (!sc)
		return -ENOMEM;
	for (int i = 0; i < sc->n_devs; i++)
		for (int k = 0; k < 2; k++) {
			enum journal_slot_verdict v = journal_slot_judge(sc, i, k);
			int st = sc->slots[i][k].status;
			if (v == JOURNAL_SLOT_OK)
				continue;
			sb_printf(d, "slot %c of %s %s; seq %" PRIu64 " serves", k ? 'B' : 'A',
				  r->jdevs[i].path,
				  v == JOURNAL_SLOT_STALE ? "is stale"
				  : st == -EBADMSG	  ? "is corrupt"
							  : strerror(-st),
				  sc->best_seq);
			return v == JOURNAL_SLOT_STALE ? -ESTALE : -EBADMSG;
		}
	sb_printf(d, "%d devices, newest seq %" PRIu64, r->n_jdevs, sc->best_seq);
	return 0;
}

/* Rewrites the corrupt and stale slots from the newest valid copy. */
static int journal_rewrite(void *ud, struct strbuf *msg)
{
	struct disk_watch *w = ud;
	if (job_busy(w)) {
		sb_printf(msg, "waiting for the disks stage (pid %d)", (int)spawn_pid(w->x->job));
		return HEALTH_PENDING; /* it writes the journal itself */
	}
	const struct disk_bootstrap_result *r = disk_module_result(w->m);
	int n = journal_repair(r->jdevs, r->n_jdevs, msg);
	return n < 0 ? n : 0;
}

static const struct health_component_ops journal_ops = {
    .check_reachable = journal_reachable,
    .check_parses = journal_parses,
    .check_integrity = journal_integrity,
    .rebuild = journal_rewrite,
    .busy = job_busy,
    .rebuild_tries = 2,
};

static const struct health_component_ops md_ops;

/* The disk component ("disk:vda") when everything the journal or array `id` lives on is on
 * that one disk: unreachable, it makes them unavailable without a probe (SPEC §8). With
 * two disks a mirror or journal still serves from the other, so there is no parent. */
static bool one_disk_parent(struct health *h, struct disk_module *m,
			    const struct health_component_ops *ops, const char *id, char *out,
			    size_t n)
{
	const struct disk_bootstrap_result *r = disk_module_result(m);
	const char *only = NULL;
	if (!r || (ops != &journal_ops && ops != &md_ops))
		return false;
	for (int i = 0; i < r->n_disks; i++) {
		const struct disk_info *d = &r->disks[i].info;
		bool holds = false;
		for (int p = 0; p < d->n_parts; p++)
			holds |= ops == &journal_ops ? !strcmp(d->parts[p].name, "cmpt-state")
						     : !strcmp(d->parts[p].name + 5, id) &&
							   !strncmp(d->parts[p].name, "cmpt-", 5);
		if (!holds)
			continue;
		if (only)
			return false;
		only = strrchr(d->path, '/') ? strrchr(d->path, '/') + 1 : d->path;
	}
	if (!only || !health_find(h, "disk", only))
		return false;
	snprintf(out, n, "disk:%s", only);
	return true;
}

/* Registers w (allocated by the caller, first member of a bigger watch for md) as a
 * component sharing the context x; on failure w is freed. */
static int attach(struct health *h, const struct health_component_ops *ops, struct disk_watch *w,
		  struct disk_module *m, struct disks_ctx *x, const char *kind, const char *id,
		  unsigned flags)
{
	w->m = m;
	w->x = x;
	x->refs++;
	char parent[HEALTH_NAME_MAX + 8];
	bool has_parent = one_disk_parent(h, m, ops, id, parent, sizeof(parent));
	int r = health_register_flags(h, ops, w, kind, id, has_parent ? parent : NULL, flags);
	if (r < 0) {
		x->refs--;
		free(w);
	}
	return r;
}

static int watch_journal(struct health *h, struct disk_module *m, struct disks_ctx *x)
{
	const struct disk_bootstrap_result *res = disk_module_result(m);
	if (!res || !res->n_jdevs || health_find(h, "journal", "state"))
		return 0;
	struct disk_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	int r = attach(h, &journal_ops, w, m, x, "journal", "state", 0);
	return r < 0 ? r : 1;
}

/* ---- md arrays: state and resync progress from sysfs ---- */

int health_md_judge(const struct health_md_facts *f, struct strbuf *detail)
{
	if (!strcmp(f->array_state, "inactive") || !strcmp(f->array_state, "clear") ||
	    !f->array_state[0]) {
		sb_printf(detail, "array is %s",
			  f->array_state[0] ? f->array_state : "not running");
		return -ENODEV;
	}
	long up = f->raid_disks - f->degraded;
	bool syncing =
	    strcmp(f->sync_action, "idle") && strcmp(f->sync_action, "frozen") && f->sync_action[0];
	if (syncing && f->sync_total) {
		unsigned pct = (unsigned)(f->sync_done * 100 / f->sync_total);
		sb_printf(detail, "%s %u%% (%ld/%ld members)", f->sync_action, pct, up,
			  f->raid_disks);
		return 0; /* progress, not a failure: the rebuild is under way */
	}
	if (f->degraded > 0) {
		sb_printf(detail, "degraded: %ld/%ld members", up, f->raid_disks);
		return -EDEADLK;
	}
	sb_printf(detail, "%s, %ld/%ld members", f->array_state, up, f->raid_disks);
	return 0;
}

static int read_attr(const char *dir, const char *name, char *out, size_t n)
{
	char path[CFG_PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_full_file(path, 4096, &text, &len);
	if (r < 0)
		return r;
	snprintf(out, n, "%s", strstrip(text));
	return 0;
}

/* Every dev-<name> directory of the array: its state and error count. */
static void read_members(const char *mddir, struct health_md_facts *f)
{
	DIR *d = opendir(mddir);
	struct dirent *de;
	while (d && (de = readdir(d)) && f->n_members < HEALTH_MD_MAX_MEMBERS) {
		if (strncmp(de->d_name, "dev-", 4))
			continue;
		char sub[CFG_PATH_MAX + 128], v[32];
		struct health_md_member *m = &f->members[f->n_members++];
		snprintf(m->dev, sizeof(m->dev), "%s", de->d_name + 4);
		(void)!snprintf(sub, sizeof(sub), "%s/%.60s", mddir, de->d_name);
		read_attr(sub, "state", m->state, sizeof(m->state));
		long l;
		if (read_attr(sub, "errors", v, sizeof(v)) == 0 &&
		    parse_int(v, 0, INT32_MAX, &l) == 0)
			m->errors = l;
	}
	if (d)
		closedir(d);
}

static bool state_has(const char *state, const char *word)
{
	size_t l = strlen(word);
	for (const char *p = state; (p = strstr(p, word)); p += l)
		if ((p == state || p[-1] == ',') && (p[l] == '\0' || p[l] == ','))
			return true;
	return false;
}

/* The set UUID of a 1.2 superblock (4 KiB into the member), as mdadm prints MD_UUID. */
static void read_uuid(const char *dev_root, struct health_md_facts *f)
{
	for (int i = 0; i < f->n_members && !f->uuid[0]; i++) {
		if (!state_has(f->members[i].state, "in_sync"))
			continue;
		char path[CFG_PATH_MAX + 40];
		uint8_t sb[32];
		uint32_t magic;
		snprintf(path, sizeof(path), "%s/%s", dev_root, f->members[i].dev);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, sb, sizeof(sb), 4096) != (ssize_t)sizeof(sb))
			continue;
		memcpy(&magic, sb, 4);
		if (le32toh(magic) != 0xa92b4efcU)
			continue;
		char *o = f->uuid;
		for (int k = 0; k < 16; k++)
			o += sprintf(o, "%s%02x", k && k % 4 == 0 ? ":" : "", sb[16 + k]);
	}
}

int health_md_judge_uuid(const struct health_md_facts *f, const char *recorded,
			 struct strbuf *detail)
{
	if (!f->uuid[0] || !recorded || !recorded[0] || !strcasecmp(f->uuid, recorded))
		return 0;
	sb_printf(detail, "array uuid %s, the journal records %s", f->uuid, recorded);
	return -EBADMSG;
}

static const char *const md_cmd_str[_HEALTH_MD_CMD_MAX] = {
    [HEALTH_MD_FAIL_REMOVE] = "fail-remove",
    [HEALTH_MD_READD] = "re-add",
    [HEALTH_MD_STOP] = "stop",
    [HEALTH_MD_ASSEMBLE] = "assemble",
};

const char *health_md_cmd_to_str(enum health_md_cmd_kind k)
{
	return k < _HEALTH_MD_CMD_MAX ? md_cmd_str[k] : NULL;
}

static bool md_running(const struct health_md_facts *f)
{
	return f->array_state[0] && strcmp(f->array_state, "inactive") &&
	       strcmp(f->array_state, "clear");
}

static bool member_bad(const struct health_md_member *m)
{
	return state_has(m->state, "faulty") || state_has(m->state, "write_error") ||
	       state_has(m->state, "blocked");
}

/* An expected partition ("/dev/vda3") that is an active, healthy member. */
static bool member_active(const struct health_md_facts *f, const char *dev)
{
	const char *b = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
	for (int i = 0; i < f->n_members; i++)
		if (!strcmp(f->members[i].dev, b))
			return !member_bad(&f->members[i]);
	return false;
}

static int md_add_cmd(struct health_md_cmd out[], int n, int max, enum health_md_cmd_kind k,
		      const char *dev)
{
	if (n >= max)
		return n;
	out[n].kind = k;
	snprintf(out[n].dev, sizeof(out[n].dev), "%s", dev);
	return n + 1;
}

int health_md_ladder(const struct health_md_facts *f, enum health_action step,
		     const char *const expected[], int n_expected, struct health_md_cmd out[],
		     int max)
{
	int n = 0;
	char dev[CFG_PATH_MAX];
	switch (step) {
	case HEALTH_ACTION_ISOLATE:
		for (int i = 0; md_running(f) && i < f->n_members; i++)
			if (member_bad(&f->members[i])) {
				snprintf(dev, sizeof(dev), "/dev/%s", f->members[i].dev);
				n = md_add_cmd(out, n, max, HEALTH_MD_FAIL_REMOVE, dev);
			}
		return n;
	case HEALTH_ACTION_RESTART:
		for (int i = 0; md_running(f) && i < n_expected; i++)
			if (!member_active(f, expected[i]))
				n = md_add_cmd(out, n, max, HEALTH_MD_READD, expected[i]);
		return n;
	case HEALTH_ACTION_RELOAD:
		if (md_running(f) || n_expected == 0)
			return 0;
		n = md_add_cmd(out, n, max, HEALTH_MD_STOP, "");
		return md_add_cmd(out, n, max, HEALTH_MD_ASSEMBLE, "");
	case HEALTH_ACTION_NONE:
	case HEALTH_ACTION_REBUILD:
	case _HEALTH_ACTION_MAX:
		break;
	}
	return 0;
}

int health_md_read(const char *dev_root, const char *sys_root, const char *name,
		   struct health_md_facts *ret, struct strbuf *err)
{
	char link[CFG_PATH_MAX], target[CFG_PATH_MAX], dir[CFG_PATH_MAX + 32], v[64];
	snprintf(link, sizeof(link), "%s/md/%s", dev_root, name);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		sb_printf(err, "%s: %s", link, strerror(errno));
		return -errno;
	}
	target[n] = '\0';
	const char *md = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	snprintf(dir, sizeof(dir), "%s/block/%s/md", sys_root, md);
	struct health_md_facts f = {0};
	long l;
	int r = read_attr(dir, "array_state", f.array_state, sizeof(f.array_state));
	if (r < 0) {
		sb_printf(err, "%s/array_state: %s", dir, strerror(-r));
		return r;
	}
	if (read_attr(dir, "degraded", v, sizeof(v)) == 0 && parse_int(v, 0, 64, &l) == 0)
		f.degraded = l;
	if (read_attr(dir, "raid_disks", v, sizeof(v)) == 0 && parse_int(v, 0, 64, &l) == 0)
		f.raid_disks = l;
	read_attr(dir, "sync_action", f.sync_action, sizeof(f.sync_action));
	if (read_attr(dir, "sync_completed", v, sizeof(v)) == 0) {
		unsigned long long d, t;
		if (sscanf(v, "%llu / %llu", &d, &t) == 2) {
			f.sync_done = d;
			f.sync_total = t;
		}
	}
	read_members(dir, &f);
	read_uuid(dev_root, &f);
	*ret = f;
	return 0;
}

struct md_watch {
	struct disk_watch dw; /* first: the rebuild is the disks stage */
	char name[16];
};

static int md_reachable(void *ud, struct strbuf *d)
{
	struct md_watch *w = ud;
	struct health_md_facts f;
	return health_md_read("/dev", "/sys", w->name, &f, d);
}

static int md_kind(const char *name)
{
	for (int k = 0; k < _CFG_KIND_MAX; k++)
		if (!strcmp(cfg_kind_to_str((enum cfg_kind)k), name))
			return k;
	return -1;
}

/* State, members, and the array's UUID against the one the journal recorded. */
static int md_integrity(void *ud, struct strbuf *d)
{
	struct md_watch *w = ud;
	struct health_md_facts f;
	int r = health_md_read("/dev", "/sys", w->name, &f, d);
	if (r < 0 || (r = health_md_judge(&f, d)) < 0)
		return r;
	const struct journal_state *j = disk_module_journal(w->dw.m);
	int k = md_kind(w->name);
	if (j && k >= 0 && health_md_judge_uuid(&f, j->md_uuid[k], d) < 0)
		return -EBADMSG;
	return 0;
}

/* The member partitions the disks stage found for this array. */
static int md_expected(const struct md_watch *w, const char *out[], int max)
{
	const struct disk_bootstrap_result *r = disk_module_result(w->dw.m);
	int k = md_kind(w->name), n = 0;
	for (int i = 0; r && k >= 0 && i < r->raids[k].input.n_members && n < max; i++)
		out[n++] = r->raids[k].input.members[i].dev;
	return n;
}

#define MD_CMD_TIMEOUT_US (10 * USEC_PER_SEC)

/* One ladder command through mdadm (quick management calls, bounded), with its event. */
static int md_exec(const char *name, const struct health_md_cmd *c, const char *const exp[],
		   int n_exp, struct strbuf *msg)
{
	char md[48];
	const char *argv[RAID_MAX_MEMBERS + 8];
	int a = 0;
	snprintf(md, sizeof(md), "/dev/md/%s", name);
	argv[a++] = "mdadm";
	switch (c->kind) {
	case HEALTH_MD_FAIL_REMOVE:
		argv[a++] = md, argv[a++] = "--fail", argv[a++] = c->dev;
		argv[a++] = "--remove", argv[a++] = c->dev;
		break;
	case HEALTH_MD_READD:
		argv[a++] = md, argv[a++] = "--re-add", argv[a++] = c->dev;
		break;
	case HEALTH_MD_STOP:
		argv[a++] = "--stop", argv[a++] = md;
		break;
	case HEALTH_MD_ASSEMBLE:
		argv[a++] = "--assemble", argv[a++] = "--run", argv[a++] = md;
		for (int i = 0; i < n_exp && i < RAID_MAX_MEMBERS; i++)
			argv[a++] = exp[i];
		break;
	case _HEALTH_MD_CMD_MAX:
		break;
	}
	argv[a] = NULL;
	int r = raid_exec((char *const *)argv, MD_CMD_TIMEOUT_US, NULL);
	struct event ev;
	event_begin(&ev, "raid");
	event_add(&ev, "name", name);
	event_add(&ev, "action", health_md_cmd_to_str(c->kind));
	if (c->dev[0])
		event_add(&ev, "dev", c->dev);
	event_add(&ev, "status", r == 0 ? "ok" : "failed");
	event_emit(&ev);
	sb_printf(msg, "%s%s%s%s %s", msg->len ? "; " : "", health_md_cmd_to_str(c->kind),
		  c->dev[0] ? " " : "", c->dev, r == 0 ? "ok" : "failed");
	return r == 0 ? 0 : r < 0 ? r : -EIO;
}

/* One rung: isolate (done even when nothing was bad), restart and reload (started: the
 * resync or assembly is re-checked later; nothing to do: -EAGAIN, the ladder climbs). */
static int md_step(struct md_watch *w, enum health_action step, struct strbuf *msg)
{
	struct health_md_facts f = {0};
	struct strbuf err;
	sb_init(&err);
	int r = health_md_read("/dev", "/sys", w->name, &f, &err);
	sb_free(&err);
	if (r < 0 && step != HEALTH_ACTION_RELOAD)
		f = (struct health_md_facts){0};
	const char *exp[RAID_MAX_MEMBERS];
	int n_exp = md_expected(w, exp, RAID_MAX_MEMBERS), ok = 0;
	struct health_md_cmd cmds[RAID_MAX_MEMBERS + 2];
	int n = health_md_ladder(&f, step, exp, n_exp, cmds, (int)ARRAY_SIZE(cmds));
	if (n == 0) {
		sb_printf(msg, "nothing to %s", health_action_to_str(step));
		return step == HEALTH_ACTION_ISOLATE ? 0 : -EAGAIN;
	}
	for (int i = 0; i < n; i++)
		ok += md_exec(w->name, &cmds[i], exp, n_exp, msg) == 0;
	if (ok == 0)
		return -EIO;
	return step == HEALTH_ACTION_ISOLATE ? 0 : HEALTH_PENDING;
}

static int md_isolate(void *ud, struct strbuf *msg)
{
	return md_step(ud, HEALTH_ACTION_ISOLATE, msg);
}

static int md_restart(void *ud, struct strbuf *msg)
{
	return md_step(ud, HEALTH_ACTION_RESTART, msg);
}

static int md_reload(void *ud, struct strbuf *msg)
{
	return md_step(ud, HEALTH_ACTION_RELOAD, msg);
}

/* Runs the disks stage again: it re-adds a returning member and adds a new blank one. */
static int md_rebuild(void *ud, struct strbuf *msg)
{
	struct md_watch *w = ud;
	int r = job_start(w->dw.x, msg);
	sb_printf(msg, " (for md %s)", w->name);
	return r;
}

/* md:infra is core; a degraded mirror still serves, so that failure leaves the node
 * eligible (only "not running" costs eligibility). */
static bool md_core_tolerates(void *ud, enum health_stage stage, int err)
{
	return stage == HEALTH_STAGE_INTEGRITY && err == -EDEADLK;
}

/* The ladder of SPEC §8: isolate (fail and remove a bad member), restart (re-add),
 * reload (stop and assemble again), rebuild (the disks stage, in its child). */
static const struct health_component_ops md_ops = {
    .check_reachable = md_reachable,
    .check_integrity = md_integrity,
    .core_tolerates = md_core_tolerates,
    .busy = job_busy,
    .isolate = md_isolate,
    .restart = md_restart,
    .reload = md_reload,
    .rebuild = md_rebuild,
    .restart_tries = 1,
    .reload_tries = 1,
    .rebuild_tries = 1,
};

static void watch_md(struct health *h, struct disk_module *m, struct disks_ctx *x)
{
	const struct disk_bootstrap_result *res = disk_module_result(m);
	for (int k = 0; res && k < _CFG_KIND_MAX; k++) {
		const struct disk_bootstrap_raid *br = &res->raids[k];
		if (!br->planned || health_find(h, "md", br->input.name))
			continue;
		struct md_watch *w = calloc(1, sizeof(*w));
		if (!w)
			return;
		snprintf(w->name, sizeof(w->name), "%s", br->input.name);
		(void)attach(h, &md_ops, &w->dw, m, x, "md", w->name,
			     k == CFG_KIND_INFRA ? HEALTH_F_CORE : 0);
	}
}

int health_disks_register(struct health *h, struct disk_module *m)
{
	const struct disk_bootstrap_result *res = disk_module_result(m);
	struct disks_ctx *x = ctx_get(h, m);
	if (!x)
		return -ENOMEM;
	int n = 0;
	for (int i = 0; res && i < res->n_disks; i++) {
		const char *path = res->disks[i].info.path;
		const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		if (health_find(h, "disk", name))
			continue;
		struct disk_watch *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		snprintf(w->path, sizeof(w->path), "%s", path);
		int r = attach(h, &disk_ops, w, m, x, "disk", name, 0);
		if (r < 0) {
			log_warn_errno(r, "health: cannot watch disk %s, ignoring", path);
			continue;
		}
		n++;
	}
	if (watch_journal(h, m, x) < 0)
		log_warn("health: cannot watch the state journal, ignoring");
	watch_md(h, m, x);
	ctx_put(x); /* the components hold it now */
	return n;
}

static bool ours(const struct health_component *c)
{
	return c->ops == &disk_ops || c->ops == &journal_ops || c->ops == &md_ops;
}

void health_disks_unregister(struct health *h)
{
	for (int i = 0; i < h->n; i++) {
		struct health_component *c = &h->comps[i];
		if (!ours(c))
			continue;
		struct disk_watch *w = c->ud;
		health_unregister(h, c->kind, c->id);
		ctx_put(w->x);
		free(w);
	}
}

/* ---- the disks stage in a child process ---- */

static void job_cleanup(struct disks_ctx *x)
{
	x->job = spawn_free(x->job);
	x->log_w = watch_remove(x->log_w);
	if (x->log_rd >= 0)
		close(x->log_rd);
	if (x->log_wr >= 0)
		close(x->log_wr);
	x->log_rd = x->log_wr = -1;
	if (x->shm)
		munmap(x->shm, sizeof(*x->shm));
	x->shm = NULL;
	x->line_len = 0;
}

/* The context the components of (h, m) share, or NULL when none is registered. */
static struct disks_ctx *ctx_find(struct health *h, struct disk_module *m)
{
	for (int i = 0; i < h->n; i++) {
		const struct health_component *c = &h->comps[i];
		if (c->ops && ours(c) && ((struct disk_watch *)c->ud)->m == m)
			return ((struct disk_watch *)c->ud)->x;
	}
	return NULL;
}

/* The context of (h, m): the one its components share, or a new one (one reference). */
static struct disks_ctx *ctx_get(struct health *h, struct disk_module *m)
{
	struct disks_ctx *x = ctx_find(h, m);
	if (x) {
		x->refs++;
		return x;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	*x = (struct disks_ctx){.h = h, .m = m, .log_rd = -1, .log_wr = -1, .refs = 1};
	return x;
}

static void notify_waiters(struct disks_ctx *x, int stage_rc);

static void ctx_put(struct disks_ctx *x)
{
	if (x && --x->refs == 0) {
		job_cleanup(x);
		notify_waiters(x, -ECANCELED);
		free(x);
	}
}

/* In the child: each log line goes to the parent as "<level><E|L><text>\n". */
static void forward_line(const struct log_line *l, void *ud)
{
	char buf[sizeof(l->text) + 4];
	int n =
	    snprintf(buf, sizeof(buf), "%d%c%s\n", (int)l->level, l->is_event ? 'E' : 'L', l->text);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1, buf[n - 1] = '\n';
	for (int i = 2; i < n - 1; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	(void)!write((int)(intptr_t)ud, buf, (size_t)n);
}

static int job_child(void *ud)
{
	struct disks_ctx *x = ud;
	for (int i = 0; i < 64; i++)
		log_unsubscribe(i); /* the parent's console clients are not ours to write to */
	log_set_target(LOG_TARGET_NONE);
	log_subscribe(forward_line, (void *)(intptr_t)x->log_wr);
	int r = disk_module_bootstrap(x->m);
	memcpy(&x->shm->res, disk_module_result(x->m), sizeof(x->shm->res));
	x->shm->rc = r;
	x->shm->complete = true;
	return r < 0 ? 1 : 0;
}

/* One line from the child, logged here as if it had been logged here. */
static void relog(const char *line)
{
	int lvl = line[0] - '0';
	if (lvl < 0 || lvl >= _LOG_LVL_MAX)
		lvl = LOG_LVL_NOTICE;
	if (line[1] == 'E' && !strncmp(line + 2, "event=", 6)) {
		struct event ev;
		event_begin(&ev, line + 8); /* the text after "event=", verbatim */
		event_emit(&ev);
	} else if (line[1]) {
		log_msg((enum log_level)lvl, "%s", line + 2);
	}
}

/* Reads what is there; returns false at end of file. */
static bool drain_log(struct disks_ctx *x)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(x->log_rd, buf, sizeof(buf));
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n' && x->line_len < sizeof(x->line) - 1) {
				x->line[x->line_len++] = buf[i];
				continue;
			}
			if (buf[i] != '\n')
				continue; /* too long: the rest of it is dropped */
			x->line[x->line_len] = '\0';
			relog(x->line);
			x->line_len = 0;
		}
	}
}

static void on_log(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct disks_ctx *x = ud;
	if (!drain_log(x))
		x->log_w = watch_remove(x->log_w);
}

/* The child's journal is the one it loaded when it forked: the configuration and role
 * records written here since (last-known-good, failed, trial, election) are the parent's, which
 * the stage never changes. They go into the child's copy, and to disk when it missed them. */
static void keep_parent_records(struct disk_module *m, struct journal_state *child)
{
	const struct journal_state *mine = disk_module_journal(m);
	if (!mine)
		return;
	bool differ = mine->has_good != child->has_good ||
		      memcmp(&mine->good, &child->good, sizeof(mine->good)) ||
		      mine->n_failed != child->n_failed ||
		      memcmp(mine->failed, child->failed, sizeof(mine->failed)) ||
		      memcmp(mine->roles, child->roles, sizeof(mine->roles)) ||
		      mine->has_trial != child->has_trial ||
		      memcmp(&mine->trial, &child->trial, sizeof(mine->trial)) ||
		      mine->trial_boots != child->trial_boots;
	if (!differ)
		return;
	child->has_good = mine->has_good;
	child->good = mine->good;
	child->has_trial = mine->has_trial; /* a version on probation (config_store.h) */
	child->trial = mine->trial;
	child->trial_boots = mine->trial_boots;
	memcpy(child->failed, mine->failed, sizeof(child->failed));
	child->n_failed = mine->n_failed;
	memcpy(child->roles, mine->roles, sizeof(child->roles));
	child->seq = mine->seq > child->seq ? mine->seq : child->seq;
	int n = 0;
	const struct journal_dev *d = NULL;
	const struct disk_bootstrap_result *r = disk_module_result(m);
	if (r) {
		d = r->jdevs;
		n = r->n_jdevs;
	}
	if (n && journal_store(d, n, child) < 0)
		log_warn("health: cannot write the configuration records back to the journal");
}

static void job_done(struct spawn *sp, int status, bool timed_out, void *ud)
{
	struct disks_ctx *x = ud;
	uint64_t ms = (now_usec() - x->started_us) / USEC_PER_MSEC;
	drain_log(x);
	if (x->shm->complete) {
		keep_parent_records(x->m, &x->shm->res.journal);
		disk_module_set_result(x->m, &x->shm->res);
		log_notice("health: the disks stage finished in %" PRIu64 " ms%s", ms,
			   x->shm->rc < 0 ? " with errors" : "");
	} else {
		log_warn("health: the disks stage %s after %" PRIu64 " ms (status %d)",
			 timed_out ? "timed out" : "died", ms, status);
	}
	int rc = x->shm->complete ? x->shm->rc : timed_out ? -ETIMEDOUT : -EIO;
	job_cleanup(x); /* frees sp */
	x->refs++;	/* what follows may unregister components that hold x */
	if (x->rerun) {
		/* An approval came while this run was under way: run once more for it. */
		struct strbuf msg;
		sb_init(&msg);
		x->rerun = false;
		int r = job_start(x, &msg);
		log_notice("health: %s", msg.buf ? msg.buf : "disks stage");
		sb_free(&msg);
		if (r < 0)
			notify_waiters(x, r);
	} else {
		notify_waiters(x, rc);
	}
	/* New arrays may have been planned; then every component of ours is re-checked now:
	 * the step under way is complete. */
	(void)health_disks_register(x->h, x->m);
	for (int i = 0; i < x->h->n; i++) {
		const struct health_component *c = &x->h->comps[i];
		if (c->ops && ours(c))
			health_poke(x->h, c->kind, c->id);
	}
	ctx_put(x);
}

/* Tells everyone waiting what came of the run (for each, its disk's outcome). */
static void notify_waiters(struct disks_ctx *x, int stage_rc)
{
	int n = x->n_waiters;
	struct disks_waiter w[MAX_WAITERS];
	memcpy(w, x->waiters, sizeof(w[0]) * (size_t)n);
	x->n_waiters = 0; /* a callback may add a new waiter */
	for (int i = 0; i < n; i++) {
		struct strbuf msg;
		sb_init(&msg);
		int r = stage_rc == -ECANCELED
			    ? (sb_printf(&msg, "the agent stops: %s not laid out", w[i].path),
			       -ECANCELED)
			    : disk_approve_wipe_outcome(x->m, w[i].path, stage_rc, &msg);
		w[i].done(r, &msg, w[i].ud);
		sb_free(&msg);
	}
}

int health_disks_approve_wipe(struct health *h, struct disk_module *m, const char *disk,
			      struct strbuf *msg, health_disks_done_fn done, void *ud)
{
	struct disks_ctx *x = h && h->loop ? ctx_find(h, m) : NULL;
	if (x && x->n_waiters == MAX_WAITERS) {
		/* Refused before it is recorded: a recorded approval would be carried out. */
		sb_printf(msg,
			  "%d approvals already wait for the disks stage; try again when it "
			  "is done",
			  MAX_WAITERS);
		return -EBUSY;
	}
	char path[CFG_PATH_MAX];
	int r = disk_approve_wipe_record(m, disk, msg, path);
	if (r < 0)
		return r;
	if (!x) /* no engine (yet): the stage runs right here */
		return disk_approve_wipe_outcome(m, path, disk_module_bootstrap(m), msg);
	struct disks_waiter *w = &x->waiters[x->n_waiters++];
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->done = done;
	w->ud = ud;
	if (x->job) {
		x->rerun = true; /* the run under way forked before this approval */
		return HEALTH_DISKS_LATER;
	}
	r = job_start(x, msg); /* with a loop: in the child, HEALTH_PENDING */
	if (r < 0) {
		x->n_waiters--;
		return r;
	}
	sb_reset(msg);
	return HEALTH_DISKS_LATER;
}

/* Runs the disks stage again: in a child when the engine has a loop (0 or HEALTH_PENDING),
 * in-process without one (the CLI, tests of the checks). */
static int job_start(struct disks_ctx *x, struct strbuf *msg)
{
	if (x->job) {
		sb_printf(msg, "the disks stage already runs (pid %d)", (int)spawn_pid(x->job));
		return HEALTH_PENDING;
	}
	if (!x->h->loop) {
		int r = disk_module_bootstrap(x->m);
		sb_printf(msg, "disks stage ran again%s", r < 0 ? " (it failed)" : "");
		return r < 0 ? r : 0;
	}
	int p[2];
	x->shm =
	    mmap(NULL, sizeof(*x->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (x->shm == MAP_FAILED) {
		x->shm = NULL;
		return -errno;
	}
	x->shm->complete = false;
	if (pipe2(p, O_CLOEXEC) < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		job_cleanup(x);
		return -errno;
	}
	x->log_rd = p[0];
	x->log_wr = p[1];
	x->started_us = now_usec();
	x->job = spawn_start(x->h->loop, DISKS_JOB_TIMEOUT_US, job_child, x, job_done, x);
	int e = errno;
	close(x->log_wr);
	x->log_wr = -1;
	if (!x->job) {
		job_cleanup(x);
		sb_printf(msg, "cannot start the disks stage: %s", strerror(e));
		return -e;
	}
	x->log_w = watch_add(x->h->loop, x->log_rd, EPOLLIN, on_log, x, NULL);
	sb_printf(msg, "disks stage started in the background (pid %d)", (int)spawn_pid(x->job));
	return HEALTH_PENDING;
}

/* ---- attached to the running node ---- */

/* The disks stage ran for an approval: the answer the operator waited for. */
static void approve_wipe_done(int r, struct strbuf *msg, void *ud)
{
	struct console_req *req = ud;
	(void)console_req_answer(req, "approve-wipe", r, msg);
	console_req_done(req);
}

static int cmd_approve_wipe(struct console_req *req, void *ud)
{
	struct disk_module *m = ud;
	if (req->argc != 2) {
		console_req_error(
		    req, "usage: approve-wipe <disk>  (path, serial or WWN, as `disks` shows)");
		return -EINVAL;
	}
	struct strbuf msg;
	sb_init(&msg);
	int r = health_disks_approve_wipe(disk_module_health(m), m, req->argv[1], &msg,
					  approve_wipe_done, req);
	log_notice("console: approve-wipe %s: %s", req->argv[1],
		   r < 0		     ? "refused"
		   : r == HEALTH_DISKS_LATER ? "approved, the disk is being laid out"
					     : "approved");
	if (r != HEALTH_DISKS_LATER)
		r = console_req_answer(req, "approve-wipe", r, &msg);
	sb_free(&msg);
	return r == HEALTH_DISKS_LATER ? CONSOLE_ASYNC : r;
}

int disk_module_attach(struct disk_module *m, const struct node_env *env)
{
	disk_module_set_health(m, env->health);
	int r = 0;
	if (env->console && ((r = disk_console_register(env->console, m)) < 0 ||
			     (r = console_register(env->console, "approve-wipe", "<disk>",
						   "authorize wiping one foreign disk (once)",
						   cmd_approve_wipe, m)) < 0))
		return log_error_errno(r, "disks: cannot register the console commands");
	return env->health ? health_disks_register(env->health, m) : 0;
}

void disk_module_detach(struct disk_module *m, const struct node_env *env)
{
	if (env->health)
		health_disks_unregister(env->health);
	disk_module_set_health(m, NULL);
}
