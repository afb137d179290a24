/* The disk planner: every verdict, MZ-only cmpt-admin, MiB/GiB/% sizes, a disk that grew. */
#include "disk.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define MiB DISK_MIB
#define GiB (1024 * DISK_MIB)

static struct cfg_layout base_layout(void)
{
	return (struct cfg_layout){
	    .boot = {.bytes = 64 * MiB},
	    .state = {.bytes = 16 * MiB},
	    .infra = {.bytes = 256 * MiB},
	    .admin = {.bytes = 128 * MiB},
	    .min_disk = 1 * GiB,
	    .min_guest = 64 * MiB,
	};
}

/* A disk that carries the layout computed for `made_for` bytes, on a disk of `size`. */
static void with_layout(struct disk_info *d, const struct cfg_layout *l, enum cfg_zone z,
			uint64_t made_for)
{
	struct disk_plan_part p[_DISK_PART_MAX];
	int n;
	assert_int_equal(disk_layout_compute(l, z, made_for, p, &n), 0);
	snprintf(d->pttype, sizeof(d->pttype), "gpt");
	d->n_parts = n;
	for (int i = 0; i < n; i++) {
		d->parts[i] =
		    (struct disk_part){.number = i + 1, .start = p[i].start, .size = p[i].size};
		snprintf(d->parts[i].name, sizeof(d->parts[i].name), "%s",
			 disk_part_name(p[i].kind));
		snprintf(d->parts[i].type, sizeof(d->parts[i].type), "%s",
			 disk_part_type_guid(p[i].kind));
	}
	snprintf(d->sigs[0], sizeof(d->sigs[0]), "gpt");
	d->n_sigs = 1;
	d->gpt_primary = d->gpt_backup = d->gpt_primary_valid = d->gpt_tables_sound = true;
}

enum setup {
	BLANK,
	OURS,		  /* our layout, made for this size */
	OURS_DMZ,	  /* made for a DMZ node: no cmpt-admin */
	OURS_GREW,	  /* made for 2 GiB, disk now 4 GiB */
	OURS_SMALLER,	  /* cmpt-infra smaller than configured */
	OURS_TYPES,	  /* our layout, cmpt-state still has the Linux data type (crash) */
	OURS_MOVED_TYPES, /* names right, offsets not ours, a type differs */
	FOREIGN_DOS,
	FOREIGN_EXT4,
	FOREIGN_LVM,
	FOREIGN_MD,
	GPT_BACKUP_ONLY, /* primary destroyed, backup intact */
	UNREADABLE,
	TORN_OWN,	/* power lost inside our first write: 2 of our partitions, areas zero */
	TORN_OWN_DATA,	/* the same table, but data where our partitions would start */
	TORN_MOVED,	/* cmpt-* names, not at this node's canonical geometry */
	TORN_PMBR,	/* only the protective MBR reached the disk */
	BACKUP_FOREIGN, /* primary gone, a backup header lists someone else's entries */
	OURS_NO_BACKUP, /* complete primary, backup never written, areas zero */
	OURS_NO_BACKUP_DATA, /* the same, with data: kept as it is, nothing written */
};

struct plan_case {
	const char *name;
	enum setup setup;
	uint64_t size;
	enum cfg_zone zone;
	const char *serial, *wwn;
	bool is_file;
	const char *auth; /* one authorization, or NULL */
	enum disk_verdict verdict;
	int n_parts; /* expected planned/kept partitions */
	bool fix_types, can_grow;
	const char *found; /* substring of found, or NULL */
};

static const struct plan_case cases[] = {
    {.name = "blank mz",
     .setup = BLANK,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 5},
    {.name = "blank dmz no admin",
     .setup = BLANK,
     .size = 2 * GiB,
     .zone = CFG_ZONE_DMZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 4},
    {.name = "blank too small",
     .setup = BLANK,
     .size = 512 * MiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_TOO_SMALL,
     .n_parts = 0},
    {.name = "just under min_disk",
     .setup = BLANK,
     .size = GiB - MiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_TOO_SMALL,
     .n_parts = 0},
    {.name = "keep",
     .setup = OURS,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5},
    {.name = "keep dmz layout on dmz",
     .setup = OURS_DMZ,
     .size = 2 * GiB,
     .zone = CFG_ZONE_DMZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 4},
    {.name = "dmz layout on mz: admin missing",
     .setup = OURS_DMZ,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "gpt"},
    {.name = "mz layout on dmz: kept",
     .setup = OURS,
     .size = 2 * GiB,
     .zone = CFG_ZONE_DMZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 4},
    {.name = "grew: keep, guest can grow",
     .setup = OURS_GREW,
     .size = 4 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5,
     .fix_types = false,
     .can_grow = true},
    {.name = "smaller than configured",
     .setup = OURS_SMALLER,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "gpt"},
    {.name = "unfinished types fixed",
     .setup = OURS_TYPES,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5,
     .fix_types = true},
    {.name = "types differ, not our offsets",
     .setup = OURS_MOVED_TYPES,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5,
     .fix_types = false},
    {.name = "foreign dos",
     .setup = FOREIGN_DOS,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "dos"},
    {.name = "foreign ext4",
     .setup = FOREIGN_EXT4,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "ext4"},
    {.name = "foreign lvm",
     .setup = FOREIGN_LVM,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "LVM2_member"},
    {.name = "foreign md",
     .setup = FOREIGN_MD,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "linux_raid_member"},
    {.name = "gpt backup only",
     .setup = GPT_BACKUP_ONLY,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "gpt-damaged"},
    {.name = "unreadable is never blank",
     .setup = UNREADABLE,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = NULL,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0,
     .fix_types = false,
     .can_grow = false,
     .found = "unreadable"},
    {.name = "wiped by serial",
     .setup = FOREIGN_EXT4,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "S1",
     .verdict = DISK_VERDICT_WIPED,
     .n_parts = 5},
    {.name = "wiped by wwn",
     .setup = FOREIGN_MD,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = "naa.5000c500a1b2c3d4",
     .is_file = false,
     .auth = "5000C500A1B2C3D4",
     .verdict = DISK_VERDICT_WIPED,
     .n_parts = 5},
    {.name = "other serial: foreign",
     .setup = FOREIGN_EXT4,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "S2",
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0},
    {.name = "path refused for a disk with serial",
     .setup = FOREIGN_EXT4,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "/dev/x",
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0},
    {.name = "path for an image file",
     .setup = FOREIGN_LVM,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = NULL,
     .wwn = NULL,
     .is_file = true,
     .auth = "/dev/x",
     .verdict = DISK_VERDICT_WIPED,
     .n_parts = 5},
    {.name = "auth on a blank disk: create",
     .setup = BLANK,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "S1",
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 5},
    {.name = "auth never wipes our layout",
     .setup = OURS,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "S1",
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5},
    {.name = "auth on too small: nothing",
     .setup = FOREIGN_EXT4,
     .size = 512 * MiB,
     .zone = CFG_ZONE_MZ,
     .serial = "S1",
     .wwn = NULL,
     .is_file = false,
     .auth = "S1",
     .verdict = DISK_VERDICT_TOO_SMALL,
     .n_parts = 0},
    {.name = "torn own table, blank areas: finished",
     .setup = TORN_OWN,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 5},
    {.name = "torn own table, data in an area: foreign",
     .setup = TORN_OWN_DATA,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0},
    {.name = "torn table not at our geometry: foreign",
     .setup = TORN_MOVED,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0},
    {.name = "torn own table on a DMZ node: finished, no admin",
     .setup = TORN_OWN,
     .size = 2 * GiB,
     .zone = CFG_ZONE_DMZ,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 4},
    {.name = "backup lists foreign entries: foreign",
     .setup = BACKUP_FOREIGN,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_FOREIGN,
     .n_parts = 0},
    {.name = "only the PMBR written: finished",
     .setup = TORN_PMBR,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 5},
    {.name = "backup never written, areas zero: finished",
     .setup = OURS_NO_BACKUP,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_CREATE,
     .n_parts = 5},
    {.name = "backup missing, data: kept, nothing written",
     .setup = OURS_NO_BACKUP_DATA,
     .size = 2 * GiB,
     .zone = CFG_ZONE_MZ,
     .verdict = DISK_VERDICT_KEEP,
     .n_parts = 5,
     .fix_types = false},
};

static void build(const struct plan_case *c, const struct cfg_layout *l, struct disk_info *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "/dev/x");
	snprintf(d->serial, sizeof(d->serial), "%s", c->serial ? c->serial : "");
	snprintf(d->wwn, sizeof(d->wwn), "%s", c->wwn ? c->wwn : "");
	d->size = c->size;
	d->sector_size = 512;
	d->is_file = c->is_file;
	switch (c->setup) {
	case BLANK:
		break;
	case OURS:
		with_layout(d, l, CFG_ZONE_MZ, c->size);
		break;
	case OURS_DMZ:
		with_layout(d, l, CFG_ZONE_DMZ, c->size);
		break;
	case OURS_GREW:
		with_layout(d, l, CFG_ZONE_MZ, 2 * GiB);
		break;
	case OURS_SMALLER:
		with_layout(d, l, CFG_ZONE_MZ, c->size);
		d->parts[2].size = 128 * MiB;
		break;
	case OURS_TYPES:
		with_layout(d, l, CFG_ZONE_MZ, c->size);
		snprintf(d->parts[1].type, sizeof(d->parts[1].type), "%s", DISK_GUID_LINUX);
		break;
	case OURS_MOVED_TYPES:
		with_layout(d, l, CFG_ZONE_MZ, c->size);
		d->parts[0].start += MiB;
		snprintf(d->parts[1].type, sizeof(d->parts[1].type), "%s", DISK_GUID_LINUX);
		break;
	case FOREIGN_DOS:
		snprintf(d->pttype, sizeof(d->pttype), "dos");
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "dos");
		d->parts[d->n_parts++] = (struct disk_part){.number = 1, .start = MiB, .size = GiB};
		break;
	case FOREIGN_EXT4:
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "ext4");
		break;
	case FOREIGN_LVM:
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "LVM2_member");
		break;
	case FOREIGN_MD:
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "linux_raid_member");
		break;
	case GPT_BACKUP_ONLY:
		d->gpt_backup = true;
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "gpt-damaged");
		break;
	case UNREADABLE:
		d->probe_failed = true;
		break;
	case TORN_OWN:
	case TORN_OWN_DATA:
	case TORN_MOVED:
		with_layout(d, l, c->zone, c->size);
		d->n_parts = 2;
		d->gpt_tables_sound = d->gpt_backup = false;
		d->areas_blank = c->setup != TORN_OWN_DATA;
		if (c->setup == TORN_MOVED)
			d->parts[1].start += MiB;
		break;
	case BACKUP_FOREIGN:
		d->gpt_backup = d->gpt_foreign_entries = d->areas_blank = true;
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "gpt-damaged");
		break;
	case TORN_PMBR:
		snprintf(d->pttype, sizeof(d->pttype), "PMBR");
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "PMBR");
		d->areas_blank = true;
		break;
	case OURS_NO_BACKUP:
	case OURS_NO_BACKUP_DATA:
		with_layout(d, l, c->zone, c->size);
		snprintf(d->parts[1].type, sizeof(d->parts[1].type), "%s", DISK_GUID_LINUX);
		d->gpt_tables_sound = d->gpt_backup = false;
		d->areas_blank = c->setup == OURS_NO_BACKUP;
		break;
	}
}

static void test_table(void **state)
{
	struct cfg_layout l = base_layout();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct plan_case *c = &cases[i];
		struct disk_info d;
		struct disk_auth a = {.resume = false};
		build(c, &l, &d);
		if (c->auth)
			snprintf(a.id, sizeof(a.id), "%s", c->auth);
		struct disk_plan_input in = {
		    .layout = &l, .zone = c->zone, .auths = &a, .n_auths = c->auth ? 1 : 0};
		struct disk_plan p;
		disk_plan_one(&in, &d, &p);
		print_message("case %-40s -> %-9s %s\n", c->name, disk_verdict_to_str(p.verdict),
			      p.reason);
		assert_string_equal(disk_verdict_to_str(p.verdict),
				    disk_verdict_to_str(c->verdict));
		assert_int_equal(p.n_parts, c->n_parts);
		assert_int_equal(p.fix_types, c->fix_types);
		assert_int_equal(p.guest_can_grow, c->can_grow);
		if (c->found)
			assert_non_null(strstr(p.found, c->found));
		if (p.verdict == DISK_VERDICT_WIPED)
			assert_int_equal(p.auth, 0);
		else
			assert_int_equal(p.auth, -1);
	}
}

static enum disk_verdict plan_resume(const struct disk_info *d, const struct disk_auth *a)
{
	struct cfg_layout l = base_layout();
	struct disk_plan_input in = {.layout = &l, .zone = CFG_ZONE_MZ, .auths = a, .n_auths = 1};
	struct disk_plan p;
	disk_plan_one(&in, d, &p);
	return p.verdict;
}

/* A journal intent resumes only on the disk it was for (SPEC §3): the size it recorded,
 * and nothing but a torn table of our own layout (a create: on blank areas), or, for an
 * authorized wipe stopped before it wrote, the same bytes it saw. */
static void test_resume_identity(void **state)
{
	struct cfg_layout l = base_layout();
	const struct plan_case ext4 = {.setup = FOREIGN_EXT4, .size = 2 * GiB, .is_file = true};
	struct disk_info d;
	build(&ext4, &l, &d);
	snprintf(d.path, sizeof(d.path), "/img/c.img");
	snprintf(d.head_sum, sizeof(d.head_sum), "0123456789abcdef");
	struct disk_auth a = {.resume = true, .size = 2 * GiB};
	snprintf(a.id, sizeof(a.id), "/img/c.img");
	/* A create interrupted, the disk replaced by one with a file system. */
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_FOREIGN);
	/* A wipe interrupted before it wrote: the same bytes are still there. */
	a.wiped = true;
	disk_fingerprint(&d, a.found, sizeof(a.found));
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_WIPED);
	/* … another ext4 disk at that path is not the same bytes. */
	snprintf(d.head_sum, sizeof(d.head_sum), "fedcba9876543210");
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_FOREIGN);
	/* A format 1 intent (no identity recorded) resumes nothing that is not blank. */
	struct disk_auth old = {.resume = true};
	snprintf(old.id, sizeof(old.id), "/img/c.img");
	assert_int_equal(plan_resume(&d, &old), DISK_VERDICT_FOREIGN);
	/* Torn own table after an authorized wipe: data may remain in the areas. */
	const struct plan_case torn = {.setup = TORN_OWN_DATA, .size = 2 * GiB, .is_file = true};
	build(&torn, &l, &d);
	snprintf(d.path, sizeof(d.path), "/img/c.img");
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_WIPED);
	a.size = 4 * GiB; /* another disk */
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_FOREIGN);
	a.size = 2 * GiB;
	a.wiped = false; /* a create: the areas were blank, they are not now */
	assert_int_equal(plan_resume(&d, &a), DISK_VERDICT_FOREIGN);
}

/* Partitions are MiB aligned, contiguous, in order, cmpt-guest takes the rest. */
static void test_layout_sizes(void **state)
{
	struct cfg_layout l = base_layout();
	l.boot = (struct cfg_size){.bytes = 1 * GiB};
	l.infra = (struct cfg_size){.pct = 10};
	l.admin = (struct cfg_size){.bytes = 3 * MiB + 12345}; /* rounded down to 3 MiB */
	uint64_t size = 20 * GiB + 777;
	struct disk_plan_part p[_DISK_PART_MAX];
	int n;
	assert_int_equal(disk_layout_compute(&l, CFG_ZONE_MZ, size, p, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(p[0].start, MiB);
	assert_int_equal(p[0].size, GiB);
	assert_int_equal(p[1].size, 16 * MiB);
	assert_int_equal(p[2].size, (size / 100 * 10) / MiB * MiB);
	assert_int_equal(p[3].size, 3 * MiB);
	for (int i = 0; i < n; i++) {
		assert_int_equal(p[i].start % MiB, 0);
		assert_int_equal(p[i].size % MiB, 0);
		if (i)
			assert_int_equal(p[i].start, p[i - 1].start + p[i - 1].size);
	}
	assert_int_equal(p[4].kind, DISK_PART_GUEST);
	assert_true(p[4].start + p[4].size <= size - (64 << 10));
	assert_true(p[4].start + p[4].size + 2 * MiB > size);
	/* No room for min_guest. */
	l.min_guest = 19 * GiB;
	assert_int_equal(disk_layout_compute(&l, CFG_ZONE_MZ, size, p, &n), -ENOSPC);
}

/* A percentage-sized layout on a disk that grew is still ours. */
static void test_grown_percent(void **state)
{
	struct cfg_layout l = base_layout();
	l.infra = (struct cfg_size){.pct = 7};
	struct disk_info d = {.size = 8 * GiB + 3 * MiB, .sector_size = 512};
	with_layout(&d, &l, CFG_ZONE_DMZ, 5 * GiB + 512 * 1024);
	struct disk_plan_input in = {.layout = &l, .zone = CFG_ZONE_DMZ};
	struct disk_plan p;
	disk_plan_one(&in, &d, &p);
	assert_int_equal(p.verdict, DISK_VERDICT_KEEP);
	assert_true(p.guest_can_grow);
	assert_false(p.fix_types);
	/* The guest partition may grow to the canonical end for the new size, never moved. */
	assert_int_equal(p.parts[p.n_parts - 1].start + p.guest_grow_to,
			 (d.size - (64 << 10)) / MiB * MiB);
}

static void test_strings(void **state)
{
	for (int v = 0; v < _DISK_VERDICT_MAX; v++)
		assert_non_null(disk_verdict_to_str(v));
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		uint8_t g[16];
		char back[40];
		assert_int_equal(disk_guid_parse(disk_part_type_guid(k), g), 0);
		disk_guid_format(g, back);
		assert_string_equal(back, disk_part_type_guid(k));
	}
	assert_string_equal(disk_verdict_to_str(DISK_VERDICT_TOO_SMALL), "too-small");
	uint8_t g[16];
	assert_int_equal(disk_guid_parse("A19D880F-05FC-4D3B-A006-743F0F84911E", g), 0);
	/* GPT's mixed-endian order. */
	assert_int_equal(g[0], 0x0f);
	assert_int_equal(g[3], 0xa1);
	assert_int_equal(g[8], 0xa0);
	assert_int_equal(disk_guid_parse("A19D880F-05FC-4D3B-A006-743F0F84911", g), -EINVAL);
	assert_int_equal(disk_guid_parse("A19D880F+05FC-4D3B-A006-743F0F84911E", g), -EINVAL);
	assert_int_equal(disk_crc32("123456789", 9), 0xcbf43926U);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),	 cmocka_unit_test(test_resume_identity),
	    cmocka_unit_test(test_layout_sizes), cmocka_unit_test(test_grown_percent),
	    cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
