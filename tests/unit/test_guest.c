/* The guest export's driver against a plain directory standing in for configfs
 * (guest_opts.simulate): the tree written from a real disks stage result (libparted on an
 * image file), read back for `guest`, torn down to nothing; the health component's ladder
 * (isolate = TPG disabled, restart = enabled, reload = tree rebuilt) on a portal that does
 * not listen, an ACL nobody configured, a wrong unit serial; CHAP secrets; a node with
 * nothing to export. What configfs itself does (the kernel opening the partition, binding
 * the portal, refusing initiators) only the rig covers (tests/integration/85-rig-guest.sh). */
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "bootstrap.h"
#include "console.h"
#include "guest.h"
#include "health.h"
#include "log.h"
#include "node_env.h"

#define MiB (1ULL << 20)
#define IMG_SIZE (128 * MiB)

static const char conf_fmt[] =
    "[cluster]\nname = t\nkey_file = /nonexistent/key\n"
    "[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
    "infra_initiator = iqn.2026-12.compartd.t:infra.a\n%s"
    "[compartment b]\nzone = dmz\npair = p1\ninfra_initiator = iqn.2026-12.compartd.t:infra.b\n"
    "[node a1]\ncompartment = a\nhandshake = 127.0.0.1\n"
    "[node b1]\ncompartment = b\nhandshake = 127.0.0.2\n"
    "[layout]\nboot = 8MiB\nstate = 2MiB\ninfra = 16MiB\nadmin = 6MiB\n"
    "min_disk = 64MiB\nmin_guest = 16MiB\n";

static char dir[64];
static struct strbuf events;

static void on_line(const struct log_line *l, void *ud)
{
	if (l->is_event &&
	    (!strncmp(l->text, "event=health ", 13) || !strncmp(l->text, "event=guest ", 12))) {
		sb_puts(&events, l->text);
		sb_putc(&events, '\n');
	}
}

static struct cfg *load(const char *extra)
{
	char text[2048];
	snprintf(text, sizeof(text), conf_fmt, extra);
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	if (cfg_parse("t.conf", text, strlen(text), NULL, 0, &c, &err) < 0)
		fail_msg("%s", err.buf);
	sb_free(&err);
	return c;
}

static void put_file(const char *name, const char *text, uint64_t size)
{
	char p[1024], cmd[1100];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	assert_int_equal(system(cmd), 0);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	if (text)
		assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	if (size)
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static char *get_file(const char *rel)
{
	char p[1024], *buf = NULL;
	snprintf(p, sizeof(p), "%s/cfs/%s", dir, rel);
	return read_full_file(p, 1 << 16, &buf, NULL) < 0 ? NULL : buf;
}

/* The disks stage on <dir>/vda (an image file), then treated as the block disk it
 * stands for: <dir>/vda5 is its cmpt-guest's partition device, a file of that size. */
static struct disk_bootstrap_result *disks_stage(const struct cfg *c, bool with_part)
{
	char img[256];
	snprintf(img, sizeof(img), "%s/vda", dir);
	put_file("vda", NULL, IMG_SIZE);
	const char *disks[] = {img};
	struct disk_bootstrap_opts o = {.disks = disks, .n_disks = 1, .apply = true};
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	assert_int_equal(disk_bootstrap(c, cfg_find_node(c, "a1"), &o, r), 0);
	r->disks[0].info.is_file = false;
	const struct disk_part *g = &r->disks[0].info.parts[4];
	assert_string_equal(g->name, "cmpt-guest");
	if (with_part)
		put_file("vda5", NULL, g->size);
	return r;
}

static void reset_dirs(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/cfs %s/net && mkdir -p %s/cfs/core %s/net", dir, dir,
		 dir, dir);
	assert_int_equal(system(cmd), 0);
	put_file("net/tcp", "  sl  local_address rem_address   st\n", 0);
	put_file("net/tcp6", "", 0);
}

/* The listening socket LIO's portal would have, 127.0.0.1:3260 in /proc/net/tcp's form. */
static void portal_listens(void)
{
	put_file("net/tcp",
		 "  sl  local_address rem_address   st\n"
		 "   0: 0100007F:0CBC 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n",
		 0);
}

static int count_entries(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/cfs/%s", dir, rel);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "test $(find %s -mindepth 1 2>/dev/null | wc -l) -eq 0", p);
	return system(cmd) == 0 ? 0 : 1;
}

static struct guest *start(const struct cfg *c, const struct disk_bootstrap_result *r)
{
	char cfs[256], net[256];
	snprintf(cfs, sizeof(cfs), "%s/cfs", dir);
	snprintf(net, sizeof(net), "%s/net", dir);
	struct guest_opts o = {.configfs = cfs, .proc_net = net, .simulate = true};
	struct guest *g = NULL;
	assert_int_equal(guest_new(c, cfg_find_node(c, "a1"), r, &o, &g), 0);
	return g;
}

/* Runs the health engine until the component is ok again (bounded). */
static struct health_component *settle(struct health *h, uint64_t *now)
{
	struct health_component *comp = health_find(h, "guest", "a1");
	for (int i = 0; i < 20; i++) {
		health_run_due(h, *now += 2 * USEC_PER_SEC);
		if (comp->state == HEALTH_STATE_OK)
			break;
	}
	return comp;
}

static void export_ladder_teardown(void **state)
{
	reset_dirs();
	struct cfg *c = load("");
	struct disk_bootstrap_result *r = disks_stage(c, true);
	struct guest *g = start(c, r);
	assert_true(guest_exported(g));
	/* guest_plan(g) each time: the reload rung replaces the plan. */
	char want[300];
	snprintf(want, sizeof(want), "udev_path=%s/vda5", dir);
	_cleanup_free_ char *ctl = get_file(GUEST_BACKSTORE "/control");
	assert_string_equal(ctl, want);
	char rel[600];
	char enable[600];
	snprintf(enable, sizeof(enable), "%s/enable", guest_plan(g)->tpg);
	_cleanup_free_ char *en = get_file(enable);
	assert_string_equal(en, "1");
	/* The ACL's mapped LUN is a link to the TPG's LUN, which links the backstore. */
	snprintf(rel, sizeof(rel), "%s/cfs/%s/acls/iqn.2026-12.compartd.t:infra.a/lun_0/lun_0", dir,
		 guest_plan(g)->tpg);
	char target[600];
	ssize_t l = readlink(rel, target, sizeof(target) - 1);
	assert_true(l > 0);
	target[l] = '\0';
	assert_non_null(
	    strstr(target, "/cfs/iscsi/iqn.2026-12.compartd.t:guest.a1/tpgt_1/lun/lun_0"));

	struct health *h = NULL;
	assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
	struct node_env env = {.cfg = c, .self = cfg_find_node(c, "a1"), .health = h};
	assert_int_equal(guest_attach(g, &env), 0);
	uint64_t now = 1;
	/* Nothing listens on the portal: isolated (TPG disabled) until it does, then enabled. */
	health_run_due(h, now);
	struct health_component *comp = health_find(h, "guest", "a1");
	printf("%s: %s %s\n", comp->name, health_state_to_str(comp->state), comp->detail);
	assert_true(comp->state == HEALTH_STATE_FAILED ||
		    comp->state == HEALTH_STATE_NEEDS_OPERATOR);
	assert_non_null(strstr(comp->detail, "nothing listens on 127.0.0.1:3260"));
	assert_non_null(strstr(events.buf, "component=guest:a1 state=failed stage=reachable "
					   "action=isolate"));
	portal_listens();
	comp = settle(h, &now);
	assert_int_equal(comp->state, HEALTH_STATE_OK);
	free(en);
	en = get_file(enable);
	assert_string_equal(en, "1");
	assert_non_null(strstr(events.buf, "action=isolate"));

	/* An ACL nobody configured: parses fails; the reload rebuilds the tree without it. */
	snprintf(rel, sizeof(rel), "%s/cfs/%s/acls/iqn.2026-12.compartd.t:infra.b", dir,
		 guest_plan(g)->tpg);
	assert_int_equal(mkdir(rel, 0755), 0);
	sb_reset(&events);
	health_run_due(h, now += 10 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(
	    strstr(events.buf, "stage=parses action=isolate reason=\"2 ACL(s), 1 configured\""));
	comp = settle(h, &now);
	assert_int_equal(comp->state, HEALTH_STATE_OK);
	assert_int_equal(access(rel, F_OK), -1);
	assert_non_null(strstr(events.buf, "action=reload"));

	/* The configuration (replaced in place by a reload) names a second initiator: parses
	 * fails, the reload plans again and writes its ACL. */
	struct cfg_compartment *co = &c->compartments[cfg_find_compartment(c, "a")];
	snprintf(co->infra_initiators[co->n_infra_initiators++], CFG_IQN_MAX,
		 "iqn.2026-12.compartd.t:infra.a2");
	sb_reset(&events);
	health_run_due(h, now += 10 * USEC_PER_SEC);
	assert_non_null(
	    strstr(events.buf, "stage=parses action=isolate reason=\"1 ACL(s), 2 configured\""));
	comp = settle(h, &now);
	assert_int_equal(comp->state, HEALTH_STATE_OK);
	assert_int_equal(guest_plan(g)->n_acls, 2);
	snprintf(rel, sizeof(rel), "%s/cfs/%s/acls/iqn.2026-12.compartd.t:infra.a2/lun_0/lun_0",
		 dir, guest_plan(g)->tpg);
	assert_true(readlink(rel, target, sizeof(target) - 1) > 0);

	/* A unit serial that is not the partition's GUID: integrity fails, reload fixes it. */
	put_file("cfs/" GUEST_BACKSTORE "/wwn/vpd_unit_serial", "T10 VPD Unit Serial Number: x\n",
		 0);
	sb_reset(&events);
	health_run_due(h, now += 10 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(
	    strstr(events.buf, "stage=integrity action=isolate reason=\"unit serial x, not "));
	comp = settle(h, &now);
	assert_int_equal(comp->state, HEALTH_STATE_OK);

	/* `guest`: the export, its ACL, a logged-in initiator, the LUN's I/O counters. */
	snprintf(rel, sizeof(rel), "cfs/%s/acls/iqn.2026-12.compartd.t:infra.a/info",
		 guest_plan(g)->tpg);
	put_file(rel, "InitiatorName: iqn.2026-12.compartd.t:infra.a\nLIO Session ID: 3\n", 0);
	snprintf(rel, sizeof(rel), "cfs/%s/lun/lun_0/statistics/scsi_tgt_port/write_mbytes",
		 guest_plan(g)->tpg);
	put_file(rel, "42\n", 0);
	struct guest_status s;
	assert_int_equal(guest_status_read(g, &s), 0);
	struct strbuf out;
	sb_init(&out);
	guest_format(g, &s, false, &out);
	printf("%s", out.buf);
	assert_non_null(strstr(out.buf, "target     iqn.2026-12.compartd.t:guest.a1 lun 0\n"));
	assert_non_null(strstr(out.buf, "acl        iqn.2026-12.compartd.t:infra.a (logged in)\n"));
	assert_non_null(strstr(out.buf, "42 MiB written"));
	sb_reset(&out);
	guest_format(g, &s, true, &out);
	assert_non_null(strstr(out.buf, "\"sessions\":[\"iqn.2026-12.compartd.t:infra.a\"]"));
	assert_non_null(strstr(out.buf, "\"write_mbytes\":42"));
	sb_free(&out);

	/* The partition's GUID changed on disk (another cmpt-guest in its place): integrity
	 * fails and no rung of the ladder can fix it. */
	char cmd[300];
	snprintf(cmd, sizeof(cmd),
		 "sgdisk -u 5:11111111-2222-4333-8444-555555555555 %s/vda "
		 ">/dev/null 2>&1",
		 dir);
	assert_int_equal(system(cmd), 0);
	sb_reset(&events);
	for (int i = 0; i < 20 && comp->state != HEALTH_STATE_NEEDS_OPERATOR; i++)
		health_run_due(h, now += 10 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_int_equal(comp->state, HEALTH_STATE_NEEDS_OPERATOR);
	assert_non_null(strstr(events.buf, "reason=\"cmpt-guest now has GUID "
					   "11111111-2222-4333-8444-555555555555\""));

	/* Teardown: nothing of ours is left, configfs' own core/ stays. */
	guest_free(g);
	assert_int_equal(count_entries("iscsi"), 0);
	assert_int_equal(count_entries("core"), 0);
	health_free(h);
	free(r);
	cfg_free(c);
}

/* The disk grows under the export: the disks stage grows cmpt-guest (GPT), the kernel's
 * partition device follows (here: <dir>/vda5 of the new size), and the export takes the
 * new size without a rung of the ladder (the iblock backstore reads it from the device);
 * a partition device larger than its GPT entry is not a growth but a mismatch. */
static void follows_growth(void **state)
{
	reset_dirs();
	portal_listens();
	struct cfg *c = load("");
	struct disk_bootstrap_result *r = disks_stage(c, true);
	struct guest *g = start(c, r);
	struct health *h = NULL;
	assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
	struct node_env env = {.cfg = c, .self = cfg_find_node(c, "a1"), .health = h};
	assert_int_equal(guest_attach(g, &env), 0);
	uint64_t now = 1;
	assert_int_equal(settle(h, &now)->state, HEALTH_STATE_OK);
	uint64_t was = r->disks[0].info.parts[4].size;

	char img[256];
	snprintf(img, sizeof(img), "%s/vda", dir);
	assert_int_equal(truncate(img, IMG_SIZE + 64 * MiB), 0);
	const char *disks[] = {img};
	struct disk_bootstrap_opts o = {.disks = disks, .n_disks = 1, .apply = true};
	struct disk_bootstrap_result *r2 = calloc(1, sizeof(*r2));
	assert_int_equal(disk_bootstrap(c, cfg_find_node(c, "a1"), &o, r2), 0);
	assert_true(r2->disks[0].plan.grow);
	uint64_t grown = r2->disks[0].info.parts[4].size;
	assert_int_equal(grown, was + 64 * MiB);
	put_file("vda5", NULL, grown);
	sb_reset(&events);
	health_run_due(h, now += 10 * USEC_PER_SEC);
	printf("%s", events.buf);
	struct health_component *comp = health_find(h, "guest", "a1");
	assert_int_equal(comp->state, HEALTH_STATE_OK);
	char want[128];
	snprintf(want, sizeof(want),
		 "event=guest node=a1 action=grown from=%" PRIu64 " size=%" PRIu64, was, grown);
	assert_non_null(strstr(events.buf, want));
	assert_null(strstr(events.buf, "action=isolate"));
	struct guest_status s;
	assert_int_equal(guest_status_read(g, &s), 0);
	assert_int_equal(s.size, grown);

	put_file("vda5", NULL, grown + 8 * MiB);
	sb_reset(&events);
	health_run_due(h, now += 10 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf, "stage=parses"));
	assert_non_null(strstr(events.buf, "reason=\"LU is "));
	guest_free(g);
	health_free(h);
	free(r);
	free(r2);
	cfg_free(c);
}

/* CHAP: the secret file's first line lands in configfs; a missing one undoes everything. */
static void chap_secrets(void **state)
{
	reset_dirs();
	char extra[512];
	snprintf(extra, sizeof(extra),
		 "guest_chap_user = ga\nguest_chap_secret_file = %s/ga.secret\n"
		 "guest_chap_mutual_user = ta\nguest_chap_mutual_secret_file = %s/ta.secret\n",
		 dir, dir);
	struct cfg *c = load(extra);
	struct disk_bootstrap_result *r = disks_stage(c, true);
	put_file("ga.secret", "initiator-secret-1\n", 0);
	struct guest *g = start(c, r); /* ta.secret missing */
	assert_false(guest_exported(g));
	printf("%s\n", guest_why_not(g));
	assert_non_null(strstr(guest_why_not(g), "auth/password_mutual: No such file"));
	assert_int_equal(count_entries("iscsi"), 0);
	assert_int_equal(count_entries("core"), 0);
	guest_free(g);
	put_file("ta.secret", "target-secret-22", 0);
	g = start(c, r);
	assert_true(guest_exported(g));
	char rel[600];
	snprintf(rel, sizeof(rel), "%s/acls/iqn.2026-12.compartd.t:infra.a/auth/password",
		 guest_plan(g)->tpg);
	_cleanup_free_ char *pw = get_file(rel);
	assert_string_equal(pw, "initiator-secret-1");
	snprintf(rel, sizeof(rel), "%s/attrib/authentication", guest_plan(g)->tpg);
	_cleanup_free_ char *au = get_file(rel);
	assert_string_equal(au, "1");
	guest_free(g);
	assert_int_equal(count_entries("iscsi"), 0);
	free(r);
	cfg_free(c);
}

/* A node whose cmpt-guest is missing exports nothing and says so. */
static void nothing_to_export(void **state)
{
	reset_dirs();
	struct cfg *c = load("");
	struct disk_bootstrap_result *r = disks_stage(c, false);
	r->disks[0].info.n_parts = 4; /* cmpt-guest gone */
	struct guest *g = start(c, r);
	assert_false(guest_exported(g));
	assert_non_null(strstr(guest_why_not(g), "no verified cmpt-guest: "));
	assert_non_null(strstr(guest_why_not(g), "/vda: no cmpt-guest partition"));
	assert_int_equal(count_entries("core"), 0);
	struct health *h = NULL;
	assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
	struct node_env env = {.cfg = c, .self = cfg_find_node(c, "a1"), .health = h};
	assert_int_equal(guest_attach(g, &env), 0);
	health_run_due(h, 1);
	struct health_component *comp = health_find(h, "guest", "a1");
	assert_true(comp->state == HEALTH_STATE_FAILED ||
		    comp->state == HEALTH_STATE_NEEDS_OPERATOR);
	assert_non_null(strstr(comp->detail, "nothing exported: no verified cmpt-guest"));
	struct guest_status s;
	struct strbuf out;
	sb_init(&out);
	(void)guest_status_read(g, &s);
	guest_format(g, &s, true, &out);
	assert_non_null(
	    strstr(out.buf, "{\"exported\":false,\"reason\":\"no verified cmpt-guest: "));
	sb_free(&out);
	guest_free(g);
	health_free(h);
	free(r);
	cfg_free(c);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_guest.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	if (sodium_init() < 0)
		return 1;
	sb_init(&events);
	log_subscribe(on_line, NULL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(export_ladder_teardown),
	    cmocka_unit_test(chap_secrets),
	    cmocka_unit_test(nothing_to_export),
	    cmocka_unit_test(follows_growth),
	};
	int r = cmocka_run_group_tests(tests, setup, teardown);
	sb_free(&events);
	return r;
}
