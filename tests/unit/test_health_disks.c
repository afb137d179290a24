/* The disk health check on a sparse image file laid out by the real disks stage: the
 * partition table wiped (a blank replacement) → failed parses → rebuild (the stage lays
 * it out again) → recovered; a foreign file system written over it → the stage leaves it
 * alone (not a byte changed) → needs-operator; approve-wipe → recovered. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "bootstrap.h"
#include "health_disks.h"
#include "md_craft.h"
#include "log.h"
#include "loop.h"

#include <inttypes.h>

/* libparted pulls in libselinux, whose constructor trips ASan's strchr interceptor before
 * main() (see test_disk_apply.c). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "intercept_strchr=0";
}

#define MiB (1ULL << 20)
#define IMG_SIZE (128 * MiB)

static const char conf_text[] = "[cluster]\nname = t\nkey_file = /nonexistent/key\n"
				"[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
				"[compartment b]\nzone = dmz\npair = p1\n"
				"[node a1]\ncompartment = a\nhandshake = 127.0.0.1\n"
				"[node b1]\ncompartment = b\nhandshake = 127.0.0.2\n"
				"[layout]\nboot = 8MiB\nstate = 2MiB\ninfra = 16MiB\nadmin = 6MiB\n"
				"min_disk = 64MiB\nmin_guest = 16MiB\n";

static struct strbuf events;

static void on_line(const struct log_line *l, void *ud)
{
	if (l->is_event && !strncmp(l->text, "event=health ", 13)) {
		sb_puts(&events, l->text);
		sb_putc(&events, '\n');
	}
}

static void zero_range(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	static char zeros[1 << 20];
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
		assert_int_equal(pwrite(fd, zeros, n, (off_t)(off + done)), (ssize_t)n);
		done += n;
	}
	close(fd);
}

static void sha256_file(const char *path, uint8_t out[32])
{
	char *text;
	size_t len;
	assert_int_equal(read_full_file(path, IMG_SIZE + 1, &text, &len), 0);
	crypto_hash_sha256(out, (const unsigned char *)text, len);
	free(text);
}

static void test_disk_check(void **state)
{
	char dir[] = "/tmp/compartd-hdisk.XXXXXX", img[128], cmd[300];
	assert_non_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk0.img", dir);
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)IMG_SIZE), 0);
	close(fd);

	struct cfg *cfg = NULL;
	assert_int_equal(cfg_parse("t.conf", conf_text, sizeof(conf_text) - 1, NULL, 0, &cfg, NULL),
			 0);
	const char *disks[] = {img};
	struct disk_bootstrap_opts o = {.disks = disks, .n_disks = 1, .apply = true};
	struct disk_module *m = NULL;
	assert_int_equal(disk_module_new(cfg, cfg_find_node(cfg, "a1"), &o, &m), 0);
	assert_int_equal(disk_module_bootstrap(m), 0);
	struct health *h = NULL;
	assert_int_equal(health_new(USEC_PER_SEC, 0, &h), 0);
	assert_int_equal(health_disks_register(h, m), 1);
	struct health_component *c = health_find(h, "disk", "disk0.img");
	assert_non_null(c);
	uint64_t now = 1;
	health_run_due(h, now);
	printf("%s: %s %s\n", c->name, health_state_to_str(c->state), c->detail);
	assert_int_equal(c->state, HEALTH_STATE_OK);
	assert_string_equal(c->detail, "layout ok (5 partitions)");

	/* The state journal: one slot corrupted → reported, the other slot serves. */
	struct health_component *j = health_find(h, "journal", "state");
	assert_non_null(j);
	assert_int_equal(j->state, HEALTH_STATE_OK);
	/* Its only disk is its parent: that disk unreachable, it is not probed. */
	assert_true(j->parent >= 0);
	assert_string_equal(h->comps[j->parent].name, "disk:disk0.img");
	printf("%s: %s\n", j->name, j->detail);
	const struct disk_bootstrap_result *res = disk_module_result(m);
	struct journal_slot_info info[2];
	struct journal_state *js = calloc(1, sizeof(*js));
	assert_int_equal(journal_read_dev(&res->jdevs[0], info, js), 0);
	/* A second write, so both slots hold a record; then the older one is damaged. */
	assert_int_equal(journal_store(res->jdevs, res->n_jdevs, js), 0);
	assert_int_equal(journal_read_dev(&res->jdevs[0], info, js), 0);
	assert_int_equal(info[0].status, 0);
	assert_int_equal(info[1].status, 0);
	int older = info[0].seq < info[1].seq ? 0 : 1;
	/* …health sees it, rewrites it from the newest copy: recovered, byte-identical. */
	uint64_t slot_off[2] = {res->jdevs[0].offset, res->jdevs[0].offset + JOURNAL_SLOT_SIZE};
	char *text;
	size_t len;
	zero_range(img, slot_off[older] + 100, 64);
	sb_reset(&events);
	health_run_due(h, now += 2 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(events.buf, "component=journal:state state=failed stage=integrity "
					   "action=none reason=\"slot "));
	assert_non_null(strstr(events.buf, "is corrupt; seq "));
	assert_non_null(strstr(events.buf, "event=health component=journal:state state=recovered "
					   "stage=integrity action=rebuild\n"));
	assert_int_equal(j->state, HEALTH_STATE_OK);
	assert_int_equal(read_full_file(img, IMG_SIZE + 1, &text, &len), 0);
	assert_memory_equal(text + slot_off[older], text + slot_off[1 - older], JOURNAL_SLOT_SIZE);
	free(text);
	/* The same slot damaged again, and no valid copy left to write: both damaged,
	 * nothing parses. */
	zero_range(img, slot_off[older] + 100, 64);
	zero_range(img, res->jdevs[0].offset + (uint64_t)(1 - older) * JOURNAL_SLOT_SIZE + 100, 64);
	sb_reset(&events);
	health_run_due(h, now += 2 * USEC_PER_SEC);
	assert_non_null(strstr(events.buf,
			       "component=journal:state state=failed stage=parses action=none "
			       "reason=\"no valid slot on any device\""));
	free(js);

	/* A replaced disk: blank. The stage lays it out again. */
	zero_range(img, 0, MiB);
	zero_range(img, IMG_SIZE - MiB, MiB);
	sb_reset(&events);
	health_run_due(h, now += 2 * USEC_PER_SEC);
	printf("%s", events.buf);
	assert_non_null(strstr(
	    events.buf, "event=health component=disk:disk0.img state=failed stage=parses "
			"action=none reason=\"blank: no partition table (a replaced disk?)\"\n"
			"event=health component=disk:disk0.img state=recovered stage=parses "
			"action=rebuild\n"));
	/* The stage wrote its journal on the new layout: that is back too. */
	assert_non_null(strstr(events.buf, "event=health component=journal:state state=recovered"));
	assert_string_equal(c->detail, "layout ok (5 partitions)");

	/* Someone's file system over it: left alone, byte for byte; an operator decides. */
	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s >/dev/null 2>&1", img);
	if (system(cmd) != 0) {
		printf("no mkfs.ext4: skipping the foreign case\n");
	} else {
		uint8_t before[32], after[32];
		sha256_file(img, before);
		sb_reset(&events);
		health_run_due(h, now += 2 * USEC_PER_SEC);
		printf("%s", events.buf);
		assert_non_null(strstr(
		    events.buf, "component=disk:disk0.img state=failed stage=parses action=none "
				"reason=\"no valid GPT (found ext4"));
		assert_non_null(
		    strstr(events.buf, "component=disk:disk0.img state=needs-operator stage="));
		assert_non_null(strstr(events.buf, "action=rebuild"));
		sha256_file(img, after);
		assert_memory_equal(before, after, 32);
		/* The operator approves the wipe: the next check finds it laid out. */
		struct strbuf msg;
		sb_init(&msg);
		assert_int_equal(disk_approve_wipe(m, img, &msg), 0);
		sb_free(&msg);
		sb_reset(&events);
		health_run_due(h, now += 2 * USEC_PER_SEC);
		printf("%s", events.buf);
		assert_non_null(strstr(events.buf, "component=disk:disk0.img state=recovered"));
	}

	/* The disk goes away: reachable fails; rebuild cannot bring it back. */
	unlink(img);
	sb_reset(&events);
	health_run_due(h, now += 2 * USEC_PER_SEC);
	assert_non_null(
	    strstr(events.buf, "component=disk:disk0.img state=needs-operator stage=reachable"));
	assert_int_equal(health_find(h, "journal", "state")->state, HEALTH_STATE_UNAVAILABLE);

	health_disks_unregister(h);
	assert_null(health_find(h, "disk", "disk0.img"));
	health_free(h);
	disk_module_free(m);
	cfg_free(cfg);
	rmdir(dir);
}

struct md_case {
	struct health_md_facts f;
	int want;
	const char *detail;
};

static const struct md_case md_cases[] = {
    {{.array_state = "clean",
      .degraded = 0,
      .raid_disks = 2,
      .sync_action = "idle",
      .sync_done = 0,
      .sync_total = 0},
     0,
     "clean, 2/2 members"},
    {{.array_state = "active",
      .degraded = 0,
      .raid_disks = 2,
      .sync_action = "idle",
      .sync_done = 0,
      .sync_total = 0},
     0,
     "active, 2/2 members"},
    {{.array_state = "clean",
      .degraded = 1,
      .raid_disks = 2,
      .sync_action = "idle",
      .sync_done = 0,
      .sync_total = 0},
     -EDEADLK,
     "degraded: 1/2 members"},
    {{.array_state = "active",
      .degraded = 1,
      .raid_disks = 2,
      .sync_action = "recover",
      .sync_done = 1024,
      .sync_total = 4096},
     0,
     "recover 25% (1/2 members)"},
    {{.array_state = "clean",
      .degraded = 0,
      .raid_disks = 2,
      .sync_action = "resync",
      .sync_done = 4095,
      .sync_total = 4096},
     0,
     "resync 99% (2/2 members)"},
    {{.array_state = "clean",
      .degraded = 1,
      .raid_disks = 2,
      .sync_action = "frozen",
      .sync_done = 10,
      .sync_total = 20},
     -EDEADLK,
     "degraded: 1/2 members"},
    {{.array_state = "inactive",
      .degraded = 0,
      .raid_disks = 2,
      .sync_action = "idle",
      .sync_done = 0,
      .sync_total = 0},
     -ENODEV,
     "array is inactive"},
    {{.array_state = "",
      .degraded = 0,
      .raid_disks = 0,
      .sync_action = "",
      .sync_done = 0,
      .sync_total = 0},
     -ENODEV,
     "array is not running"},
};

static void put(const char *dir, const char *name, const char *val)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", val);
	fclose(f);
}

static void test_md(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(md_cases); i++) {
		struct strbuf d;
		sb_init(&d);
		assert_int_equal(health_md_judge(&md_cases[i].f, &d), md_cases[i].want);
		assert_string_equal(d.buf, md_cases[i].detail);
		sb_free(&d);
	}
	/* The sysfs reader on a tree laid out like the kernel's. */
	char dir[] = "/tmp/compartd-md.XXXXXX", p[256], cmd[300];
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/dev/md %s/sys/block/md127/md && ln -s ../md127 %s/dev/md/infra", dir,
		 dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/sys/block/md127/md", dir);
	put(p, "array_state", "active");
	put(p, "degraded", "1");
	put(p, "raid_disks", "2");
	put(p, "sync_action", "recover");
	put(p, "sync_completed", "524288 / 1048576");
	char dev[128], sys[128];
	snprintf(dev, sizeof(dev), "%s/dev", dir);
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	struct health_md_facts f;
	struct strbuf d;
	sb_init(&d);
	assert_int_equal(health_md_read(dev, sys, "infra", &f, &d), 0);
	assert_int_equal(health_md_judge(&f, &d), 0);
	assert_string_equal(d.buf, "recover 50% (1/2 members)");
	sb_reset(&d);
	put(p, "sync_action", "idle");
	put(p, "sync_completed", "none");
	assert_int_equal(health_md_read(dev, sys, "infra", &f, &d), 0);
	assert_int_equal(health_md_judge(&f, &d), -EDEADLK);
	sb_reset(&d);
	assert_true(health_md_read(dev, sys, "admin", &f, &d) < 0);
	assert_non_null(strstr(d.buf, "/dev/md/admin: No such file or directory"));
	sb_free(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The md ladder (SPEC §8), pure: which mdadm commands each rung takes. */
static void test_md_ladder(void **state)
{
	const char *exp[] = {"/dev/vda3", "/dev/vdb3"};
	struct health_md_cmd c[8];
	struct health_md_facts f = {.array_state = "clean", .raid_disks = 2, .n_members = 2};
	snprintf(f.members[0].dev, sizeof(f.members[0].dev), "vda3");
	snprintf(f.members[0].state, sizeof(f.members[0].state), "in_sync");
	snprintf(f.members[1].dev, sizeof(f.members[1].dev), "vdb3");
	snprintf(f.members[1].state, sizeof(f.members[1].state), "in_sync");
	/* Healthy: no rung has anything to do. */
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_ISOLATE, exp, 2, c, 8), 0);
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RESTART, exp, 2, c, 8), 0);
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RELOAD, exp, 2, c, 8), 0);
	/* A member with write errors: isolated, then re-added. */
	snprintf(f.members[1].state, sizeof(f.members[1].state), "in_sync,write_error");
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_ISOLATE, exp, 2, c, 8), 1);
	assert_int_equal(c[0].kind, HEALTH_MD_FAIL_REMOVE);
	assert_string_equal(c[0].dev, "/dev/vdb3");
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RESTART, exp, 2, c, 8), 1);
	assert_int_equal(c[0].kind, HEALTH_MD_READD);
	assert_string_equal(c[0].dev, "/dev/vdb3");
	/* "faulty_something" is not "faulty"; a member gone from the array is re-added. */
	snprintf(f.members[1].state, sizeof(f.members[1].state), "in_sync,faulty_x");
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_ISOLATE, exp, 2, c, 8), 0);
	f.n_members = 1;
	f.degraded = 1;
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RESTART, exp, 2, c, 8), 1);
	assert_string_equal(c[0].dev, "/dev/vdb3");
	/* Not running: only reload acts, stop then assemble. */
	snprintf(f.array_state, sizeof(f.array_state), "inactive");
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RESTART, exp, 2, c, 8), 0);
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RELOAD, exp, 2, c, 8), 2);
	assert_int_equal(c[0].kind, HEALTH_MD_STOP);
	assert_int_equal(c[1].kind, HEALTH_MD_ASSEMBLE);
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_RELOAD, exp, 0, c, 8), 0);
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_REBUILD, exp, 2, c, 8), 0);
	/* Integrity: the UUID the journal recorded. */
	struct strbuf d;
	sb_init(&d);
	snprintf(f.uuid, sizeof(f.uuid), "11111111:11111111:11111111:11111111");
	assert_int_equal(health_md_judge_uuid(&f, "11111111:11111111:11111111:11111111", &d), 0);
	assert_int_equal(health_md_judge_uuid(&f, "", &d), 0); /* nothing recorded */
	assert_int_equal(health_md_judge_uuid(&f, "22222222:22222222:22222222:22222222", &d),
			 -EBADMSG);
	assert_non_null(strstr(d.buf, "the journal records 2222"));
	sb_free(&d);
}

/* The sysfs reader: members from dev-* directories, the UUID from an in-sync member's
 * 1.2 superblock (crafted byte for byte as mdadm writes it). */
static void test_md_members(void **state)
{
	char dir[] = "/tmp/compartd-mdm.XXXXXX", p[256], cmd[400];
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/dev/md %s/sys/block/md127/md/dev-vda3 %s/sys/block/md127/md/dev-vdb3 "
		 "&& ln -s ../md127 %s/dev/md/infra",
		 dir, dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/sys/block/md127/md", dir);
	put(p, "array_state", "clean");
	put(p, "degraded", "0");
	put(p, "raid_disks", "2");
	put(p, "sync_action", "idle");
	put(p, "dev-vda3/state", "faulty");
	put(p, "dev-vda3/errors", "17");
	put(p, "dev-vdb3/state", "in_sync");
	put(p, "dev-vdb3/errors", "0");
	snprintf(p, sizeof(p), "%s/dev/vdb3", dir);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 << 20), 0);
	assert_int_equal(md_write_v1(fd, 8 << 20, "1.2", "a1:infra", 0xab, 5), 0);
	/* Distinct UUID bytes: mdadm --examine --export prints this superblock's MD_UUID as
	 * 00112233:44556677:8899aabb:ccddeeff (bytes in order, checked against mdadm 4.2). */
	uint8_t u[16];
	for (int i = 0; i < 16; i++)
		u[i] = (uint8_t)(i * 17);
	assert_int_equal(pwrite(fd, u, 16, 4096 + 16), 16);
	close(fd);
	char dev[128], sys[128];
	snprintf(dev, sizeof(dev), "%s/dev", dir);
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	struct health_md_facts f;
	struct strbuf d;
	sb_init(&d);
	assert_int_equal(health_md_read(dev, sys, "infra", &f, &d), 0);
	assert_int_equal(f.n_members, 2);
	assert_string_equal(f.uuid, "00112233:44556677:8899aabb:ccddeeff");
	const char *exp[] = {"/dev/vda3", "/dev/vdb3"};
	struct health_md_cmd c[4];
	assert_int_equal(health_md_ladder(&f, HEALTH_ACTION_ISOLATE, exp, 2, c, 4), 1);
	assert_string_equal(c[0].dev, "/dev/vda3");
	sb_free(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- the rebuild runs in a child: the loop keeps serving ---- */

static struct strbuf all_events;
static void on_any_event(const struct log_line *l, void *ud)
{
	if (l->is_event) {
		sb_puts(&all_events, l->text);
		sb_putc(&all_events, '\n');
	}
}

struct ticker {
	struct timer *t;
	uint64_t last, max_gap, ticks;
};

static void on_tick(struct timer *t, void *ud)
{
	struct ticker *k = ud;
	uint64_t now = now_usec();
	if (k->last && now - k->last > k->max_gap)
		k->max_gap = now - k->last;
	k->last = now;
	k->ticks++;
	timer_arm_in(t, 20 * USEC_PER_MSEC);
}

/* Runs the loop until the component reaches `want` (or 30 s); returns the time taken. */
static uint64_t run_until(struct loop *l, const struct health_component *c, enum health_state want)
{
	uint64_t t0 = now_usec();
	while (c->state != want && now_usec() - t0 < 30 * USEC_PER_SEC)
		loop_iterate(l, now_usec() + 50 * USEC_PER_MSEC);
	return now_usec() - t0;
}

/* A node of one image disk whose mdadm is a stand-in that takes a second per array action
 * (the host has no md), with the health engine on a loop and a 20 ms ticker on it, as the
 * election's heartbeats. `foreign`: the image carries a DOS label before the first run. */
struct slow_node {
	char dir[40], img[128], mdadm[128];
	const char *disks[1];
	struct cfg *cfg;
	struct disk_module *m;
	struct loop *l;
	struct health *h;
	struct ticker k;
	int bootstrap_rc; /* the first run of the disks stage */
};

static void slow_node_open(struct slow_node *n, bool foreign)
{
	char cmd[400];
	*n = (struct slow_node){.dir = "/tmp/compartd-hslow.XXXXXX"};
	assert_non_null(mkdtemp(n->dir));
	snprintf(n->img, sizeof(n->img), "%s/disk0.img", n->dir);
	snprintf(n->mdadm, sizeof(n->mdadm), "%s/mdadm", n->dir);
	FILE *f = fopen(n->mdadm, "w");
	assert_non_null(f);
	fprintf(f,
		"#!/bin/sh\necho \"$*\" >>%s/mdadm.log\n"
		"case \"$1\" in --create|--add|--re-add|--assemble) sleep 1 ;; esac\nexit 0\n",
		n->dir);
	fclose(f);
	assert_int_equal(chmod(n->mdadm, 0755), 0);
	int fd = open(n->img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)IMG_SIZE), 0);
	close(fd);
	if (foreign) {
		snprintf(cmd, sizeof(cmd),
			 "echo 'label: dos\n,32M,83\n,,83' | sfdisk -q %s >/dev/null 2>&1", n->img);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(
	    cfg_parse("t.conf", conf_text, sizeof(conf_text) - 1, NULL, 0, &n->cfg, NULL), 0);
	n->disks[0] = n->img;
	struct disk_bootstrap_opts o = {
	    .disks = n->disks, .n_disks = 1, .apply = true, .raid = true, .mdadm = n->mdadm};
	assert_int_equal(disk_module_new(n->cfg, cfg_find_node(n->cfg, "a1"), &o, &n->m), 0);
	n->bootstrap_rc = disk_module_bootstrap(n->m);
	n->l = loop_new();
	assert_int_equal(health_new(USEC_PER_SEC, 0, &n->h), 0);
	assert_int_equal(health_attach(n->h, n->l), 0);
	assert_int_equal(health_disks_register(n->h, n->m), 1);
	n->k.t = timer_new(n->l, on_tick, &n->k);
	timer_arm_in(n->k.t, 0);
}

static void slow_node_close(struct slow_node *n)
{
	char cmd[80];
	health_disks_unregister(n->h);
	timer_free(n->k.t);
	health_free(n->h);
	loop_free(n->l);
	disk_module_free(n->m);
	cfg_free(n->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", n->dir);
	assert_int_equal(system(cmd), 0);
}

/* A replaced (blank) disk is laid out again by the disks stage in a child process; its
 * mdadm (a stand-in that takes a second per array action: the host has no md) makes
 * the run slow. Meanwhile a 20 ms timer, as the election's heartbeats, keeps firing. */
static void test_rebuild_async(void **state)
{
	struct slow_node n;
	slow_node_open(&n, false);
	assert_int_equal(n.bootstrap_rc, 0);
	struct loop *l = n.l;
	struct ticker *k = &n.k;
	struct health_component *c = health_find(n.h, "disk", "disk0.img"),
				*md = health_find(n.h, "md", "infra");
	assert_non_null(c);
	assert_non_null(md); /* the host has no /dev/md: it fails, its rebuild runs the stage */
	run_until(l, md, HEALTH_STATE_NEEDS_OPERATOR);
	assert_int_equal(c->state, HEALTH_STATE_OK);

	/* The agent records a last-known-good configuration while the node runs. */
	uint8_t hash[32];
	memset(hash, 0x5c, sizeof(hash));
	journal_set_good_config(disk_module_journal(n.m), 9, hash);
	hash[0] = 1; /* …and a version 10 on probation (config_lkg_trial) */
	journal_set_trial_config(disk_module_journal(n.m), 10, hash);
	hash[0] = 0x5c;
	assert_int_equal(disk_module_journal_store(n.m), 0);

	zero_range(n.img, 0, MiB); /* a replaced disk: blank */
	zero_range(n.img, IMG_SIZE - MiB, MiB);
	sb_init(&all_events);
	int id = log_subscribe(on_any_event, NULL);
	k->max_gap = 0;
	uint64_t ticks0 = k->ticks;
	uint64_t took = run_until(l, c, HEALTH_STATE_FAILED);
	took += run_until(l, c, HEALTH_STATE_OK);
	log_unsubscribe(id);
	printf("rebuild took %" PRIu64 " ms, %" PRIu64 " ticks, longest gap %" PRIu64 " ms\n%s",
	       took / 1000, k->ticks - ticks0, k->max_gap / 1000, all_events.buf);
	assert_int_equal(c->state, HEALTH_STATE_OK);
	assert_string_equal(c->detail, "layout ok (5 partitions)");
	assert_true(took >= 1500 * USEC_PER_MSEC); /* mdadm ran: the child was slow */
	/* …and the loop kept serving: in the loop, the stage would have held it for both
	 * array creations (2 s); a loaded machine may delay a tick, never by that much. */
	assert_true(k->max_gap < 800 * USEC_PER_MSEC);
	assert_true(k->ticks - ticks0 >= took / (100 * USEC_PER_MSEC));
	/* The child's event lines were logged by the agent, in order. */
	char *dsk = strstr(all_events.buf, "event=disk dev="),
	     *raid = strstr(all_events.buf, "event=raid name=infra action=create"),
	     *rec = strstr(all_events.buf,
			   "event=health component=disk:disk0.img state=recovered stage=parses "
			   "action=rebuild");
	assert_non_null(dsk);
	assert_non_null(strstr(dsk, "verdict=create"));
	assert_non_null(raid);
	assert_non_null(rec);
	assert_true(dsk < raid && raid < rec);
	assert_non_null(
	    strstr(all_events.buf, "state=failed stage=parses action=none reason=\"blank"));
	/* The child started a new journal on the new layout; the parent's configuration record
	 * is kept, in memory and on disk. */
	const struct journal_state *js = disk_module_journal(n.m);
	assert_true(js->has_good);
	assert_int_equal(js->good.version, 9);
	const struct disk_bootstrap_result *res = disk_module_result(n.m);
	struct journal_state *ondisk = calloc(1, sizeof(*ondisk));
	assert_int_equal(journal_load(res->jdevs, res->n_jdevs, ondisk), 0);
	assert_true(ondisk->has_good);
	assert_memory_equal(ondisk->good.hash, hash, 32);
	assert_true(js->has_trial);
	assert_true(ondisk->has_trial);
	assert_int_equal(ondisk->trial.version, 10);
	free(ondisk);

	sb_free(&all_events);
	slow_node_close(&n);
}

/* The disk grows under the running node (a resized virtual disk): disk:<dev> notices the
 * size, its rebuild runs the disks stage in the child, which grows cmpt-guest; then the
 * component is ok with the new size, once. */
static void test_disk_grows(void **state)
{
	struct slow_node n;
	slow_node_open(&n, false);
	assert_int_equal(n.bootstrap_rc, 0);
	struct health_component *c = health_find(n.h, "disk", "disk0.img"),
				*md = health_find(n.h, "md", "infra");
	run_until(n.l, md, HEALTH_STATE_NEEDS_OPERATOR);
	assert_int_equal(c->state, HEALTH_STATE_OK);
	uint64_t was = disk_module_result(n.m)->disks[0].plan.parts[4].size;
	assert_int_equal(truncate(n.img, IMG_SIZE + 64 * MiB), 0);
	sb_init(&all_events);
	int id = log_subscribe(on_any_event, NULL);
	run_until(n.l, c, HEALTH_STATE_FAILED);
	run_until(n.l, c, HEALTH_STATE_OK);
	log_unsubscribe(id);
	printf("%s", all_events.buf);
	assert_non_null(strstr(all_events.buf, "component=disk:disk0.img state=failed "
					       "stage=integrity action=none reason=\"the disk grew "
					       "from 128 to 192 MiB\""));
	assert_non_null(strstr(all_events.buf, "guest_grown_to="));
	assert_non_null(strstr(all_events.buf, "component=disk:disk0.img state=recovered "
					       "stage=integrity action=rebuild"));
	const struct disk_bootstrap_result *r = disk_module_result(n.m);
	assert_int_equal(r->disks[0].info.size, IMG_SIZE + 64 * MiB);
	assert_int_equal(r->disks[0].plan.parts[4].size, was + 64 * MiB);
	assert_int_equal(r->disks[0].info.parts[4].size, was + 64 * MiB);
	sb_free(&all_events);
	slow_node_close(&n);
}

struct wipe_answer {
	bool done;
	int r;
	char msg[256];
};

static void on_wipe_done(int r, struct strbuf *msg, void *ud)
{
	struct wipe_answer *w = ud;
	w->done = true;
	w->r = r;
	snprintf(w->msg, sizeof(w->msg), "%s", msg->buf ? msg->buf : "");
}

/* An operator's approve-wipe on a running node: the foreign disk is wiped and laid out by
 * the disks stage in the background child (its slow mdadm as above); the loop keeps
 * serving meanwhile, and the answer comes when the stage is done. */
static void test_approve_wipe_async(void **state)
{
	struct slow_node n;
	slow_node_open(&n, true);
	assert_int_equal(disk_module_result(n.m)->disks[0].plan.verdict, DISK_VERDICT_FOREIGN);
	struct loop *l = n.l;

	struct strbuf msg;
	sb_init(&msg);
	struct wipe_answer w = {0};
	assert_int_equal(
	    health_disks_approve_wipe(n.h, n.m, "/dev/nonexistent", &msg, on_wipe_done, &w),
	    -ENOENT);
	sb_reset(&msg);
	n.k.max_gap = 0;
	assert_int_equal(health_disks_approve_wipe(n.h, n.m, n.img, &msg, on_wipe_done, &w),
			 HEALTH_DISKS_LATER);
	assert_false(w.done);
	uint64_t t0 = now_usec();
	while (!w.done && now_usec() - t0 < 30 * USEC_PER_SEC)
		loop_iterate(l, now_usec() + 50 * USEC_PER_MSEC);
	uint64_t took = now_usec() - t0;
	printf("approve-wipe answered after %" PRIu64 " ms (%s), longest gap %" PRIu64 " ms\n",
	       took / 1000, w.msg, n.k.max_gap / 1000);
	assert_true(w.done);
	assert_int_equal(w.r, 0);
	assert_non_null(strstr(w.msg, " wiped and partitioned; authorization "));
	assert_true(took >= 1500 * USEC_PER_MSEC); /* the arrays were created meanwhile */
	assert_true(n.k.max_gap < 800 * USEC_PER_MSEC);
	assert_int_equal(disk_module_result(n.m)->disks[0].plan.verdict, DISK_VERDICT_WIPED);
	const struct health_component *c = health_find(n.h, "disk", "disk0.img");
	run_until(l, c, HEALTH_STATE_OK);
	assert_int_equal(c->state, HEALTH_STATE_OK);

	/* It is ours now: a second approval is refused at once. */
	sb_reset(&msg);
	assert_int_equal(health_disks_approve_wipe(n.h, n.m, n.img, &msg, on_wipe_done, &w),
			 -EINVAL);
	assert_non_null(strstr(msg.buf, "not foreign"));
	sb_free(&msg);
	slow_node_close(&n);
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	if (sodium_init() < 0)
		return 1;
	sb_init(&events);
	log_subscribe(on_line, NULL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_disk_check),	  cmocka_unit_test(test_md),
	    cmocka_unit_test(test_md_ladder),	  cmocka_unit_test(test_md_members),
	    cmocka_unit_test(test_rebuild_async), cmocka_unit_test(test_approve_wipe_async),
	    cmocka_unit_test(test_disk_grows)};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	sb_free(&events);
	return r;
}
