/* The guest export's pure part (SPEC §3a): which partition is exported, and the configfs
 * tree for it as golden files (tests/golden/guest/, UPDATE_GOLDEN=1 rewrites them); every
 * reason not to export. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "guest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define GOLDEN SRCDIR "/tests/golden/guest/"
#define MiB DISK_MIB
#define GiB (1024 * DISK_MIB)

static void golden(const char *name, const char *got)
{
	char path[512];
	snprintf(path, sizeof(path), GOLDEN "%s", name);
	if (getenv("UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
		return;
	}
	char *want = NULL;
	if (read_full_file(path, 1 << 20, &want, NULL) < 0)
		fail_msg("missing golden file %s (UPDATE_GOLDEN=1 writes it); got:\n%s", path, got);
	if (strcmp(want, got))
		fail_msg("%s differs; got:\n%s", path, got);
	free(want);
}

static struct cfg *load_rig(void)
{
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(cfg_load(SRCDIR "/images/rig/cluster.conf", NULL, 0, &c, &err), 0);
	sb_free(&err);
	return c;
}

/* A laid-out disk as the disks stage leaves it: our layout, verified. */
static void laid_out(struct disk_bootstrap_disk *bd, const char *path, enum cfg_zone z,
		     uint64_t size, const char *guest_uuid)
{
	const struct cfg_layout l = {.boot = {.bytes = 64 * MiB},
				     .state = {.bytes = 16 * MiB},
				     .infra = {.bytes = 256 * MiB},
				     .admin = {.bytes = 128 * MiB},
				     .min_disk = 1 * GiB,
				     .min_guest = 64 * MiB};
	*bd = (struct disk_bootstrap_disk){0};
	snprintf(bd->info.path, sizeof(bd->info.path), "%s", path);
	bd->info.size = size;
	snprintf(bd->info.pttype, sizeof(bd->info.pttype), "gpt");
	assert_int_equal(disk_layout_compute(&l, z, size, bd->plan.parts, &bd->plan.n_parts), 0);
	bd->plan.verdict = DISK_VERDICT_KEEP;
	bd->info.n_parts = bd->plan.n_parts;
	for (int i = 0; i < bd->plan.n_parts; i++) {
		struct disk_part *p = &bd->info.parts[i];
		*p = (struct disk_part){.number = i + 1,
					.start = bd->plan.parts[i].start,
					.size = bd->plan.parts[i].size};
		snprintf(p->name, sizeof(p->name), "%s", disk_part_name(bd->plan.parts[i].kind));
		snprintf(p->type, sizeof(p->type), "%s",
			 disk_part_type_guid(bd->plan.parts[i].kind));
		snprintf(p->uuid, sizeof(p->uuid), "00000000-0000-4000-8000-00000000000%c",
			 (char)('a' + i));
	}
	snprintf(bd->info.parts[bd->info.n_parts - 1].uuid, 40, "%s", guest_uuid);
}

static void plan_golden(const struct cfg *c, const char *node,
			const struct disk_bootstrap_result *r, const char *file)
{
	struct guest_part part;
	char why[256];
	assert_int_equal(guest_part_select(r, &part, why, sizeof(why)), 0);
	struct guest_plan *p = calloc(1, sizeof(*p));
	assert_int_equal(guest_plan_compute(c, cfg_find_node(c, node), &part, p), 0);
	struct strbuf out;
	sb_init(&out);
	guest_plan_format(p, &out);
	golden(file, out.buf);
	sb_free(&out);
	free(p);
}

/* The rig's a1: MZ layout on /dev/vda, cmpt-guest is partition 5, no CHAP. */
static void rig_a1(void **state)
{
	struct cfg *c = load_rig();
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB,
		 "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
	r->n_disks = 1;
	plan_golden(c, "a1", r, "rig-a1.txt");
	free(r);
	cfg_free(c);
}

/* Two initiators, mutual CHAP, an IPv6 portal, an NVMe disk after a foreign one. */
static void chap_v6_nvme(void **state)
{
	static const char text[] =
	    "[cluster]\nname = Lab_1\nkey_file = /k\n[pair p]\n"
	    "[compartment a]\nzone = mz\npair = p\n"
	    "infra_initiator = iqn.2026-12.example:infra.a\n"
	    "infra_initiator = iqn.2026-12.example:infra.a-standby\n"
	    "guest_chap_user = guest-a\nguest_chap_secret_file = /etc/compartd/guest-a.secret\n"
	    "guest_chap_mutual_user = target-a\n"
	    "guest_chap_mutual_secret_file = /etc/compartd/target-a.secret\n"
	    "[compartment b]\nzone = dmz\npair = p\n"
	    "[node N1]\ncompartment = a\nhandshake = 10.0.0.1\nstorage = [fd00:77::1]:3261\n"
	    "[node n2]\ncompartment = b\nhandshake = 10.0.0.2\n";
	struct cfg *c = NULL;
	assert_int_equal(cfg_parse("t.conf", text, strlen(text), NULL, 0, &c, NULL), 0);
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	r->disks[0].plan.verdict = DISK_VERDICT_FOREIGN;
	snprintf(r->disks[0].info.path, CFG_PATH_MAX, "/dev/sda");
	laid_out(&r->disks[1], "/dev/nvme0n1", CFG_ZONE_MZ, 8 * GiB,
		 "0e9f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
	r->n_disks = 2;
	plan_golden(c, "N1", r, "chap-v6-nvme.txt");
	free(r);
	cfg_free(c);
}

static int select_err(struct disk_bootstrap_result *r, const char *want_why)
{
	struct guest_part part;
	char why[256];
	int e = guest_part_select(r, &part, why, sizeof(why));
	if (!strstr(why, want_why))
		fail_msg("why '%s' lacks '%s'", why, want_why);
	return e;
}

/* Nothing is exported that is not a verified cmpt-guest of this node. */
static void refusals(void **state)
{
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	assert_int_equal(select_err(NULL, "did not run"), -ENOENT);
	assert_int_equal(select_err(r, "no disk"), -ENOENT);
	r->n_disks = 1;
	const char *g = "11111111-2222-4333-8444-555555555555";
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB, g);
	r->disks[0].result = -EIO;
	assert_int_equal(select_err(r, "/dev/vda: the disks stage failed"), -EIO);
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB, g);
	r->disks[0].plan.verdict = DISK_VERDICT_FOREIGN;
	assert_int_equal(select_err(r, "foreign, not laid out by compartd"), -ENOENT);
	laid_out(&r->disks[0], "/tmp/img", CFG_ZONE_MZ, 4 * GiB, g);
	r->disks[0].info.is_file = true;
	assert_int_equal(select_err(r, "not a whole block disk"), -ENOTBLK);
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB, g);
	r->disks[0].info.n_parts--; /* cmpt-guest missing */
	assert_int_equal(select_err(r, "/dev/vda: no cmpt-guest partition"), -ENOENT);
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB, g);
	snprintf(r->disks[0].info.parts[4].type, 40, "%s", DISK_GUID_RAID);
	assert_int_equal(select_err(r, "not ours"), -ENOENT);
	laid_out(&r->disks[0], "/dev/vda", CFG_ZONE_MZ, 4 * GiB, g);
	r->disks[0].info.parts[4].size -= MiB;
	assert_int_equal(select_err(r, "not where the layout puts it"), -ENOENT);
	/* A verified one after a failed one is taken. */
	laid_out(&r->disks[1], "/dev/vdb", CFG_ZONE_MZ, 4 * GiB, g);
	r->n_disks = 2;
	assert_int_equal(select_err(r, ""), 0);
	free(r);
}

/* A compartment without infra_initiator: nobody to export to. */
static void no_initiator(void **state)
{
	static const char text[] = "[cluster]\nname = t\nkey_file = /k\n[pair p]\n"
				   "[compartment a]\nzone = mz\npair = p\n"
				   "[compartment b]\nzone = dmz\npair = p\n"
				   "[node n1]\ncompartment = a\nhandshake = 10.0.0.1\n";
	struct cfg *c = NULL;
	assert_int_equal(cfg_parse("t.conf", text, strlen(text), NULL, 0, &c, NULL), 0);
	struct guest_part part = {.path = "/dev/vda5", .guid = "x"};
	struct guest_plan *p = calloc(1, sizeof(*p));
	assert_int_equal(guest_plan_compute(c, 0, &part, p), -ENOENT);
	assert_int_equal(p->n_ops, 0);
	free(p);
	cfg_free(c);
}

static void names(void **state)
{
	char naa[40];
	guest_naa_from_serial("3f2504e0-4f89-11d3-9a0c-0305e82c3301", naa);
	assert_string_equal(naa, "naa.60014053f2504e04f8911d39a0c0305e");
	assert_int_equal(strlen(naa), 4 + 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rig_a1),	cmocka_unit_test(chap_v6_nvme),
	    cmocka_unit_test(refusals), cmocka_unit_test(no_initiator),
	    cmocka_unit_test(names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
