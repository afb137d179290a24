/* cmpt-guest grows with its disk, on sparse image files through disk_bootstrap(): our own
 * canonical table on a disk that grew gets the backup GPT at the new end and cmpt-guest
 * up to it (libparted), every other byte of every partition unchanged; a table that is not
 * exactly ours is left alone byte for byte; power lost at every point of the growth leaves
 * either the old or the new table, and the next run finishes the growth. */
#include "bootstrap.h"
#include "log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "img_fixture.h"
#include <sodium.h>

/* libselinux's constructor (pulled in by libparted) trips ASan's strchr interceptor. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "intercept_strchr=0";
}

#define MiB (1ULL << 20)
#define OLD_SIZE (128 * MiB)
#define NEW_SIZE (192 * MiB)

/* Fixed sizes (growth refuses percentages, see test_grow_refused). */
static const char conf_text[] =
    "[cluster]\nname = t\nkey_file = /nonexistent/key\n"
    "[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
    "[compartment b]\nzone = dmz\npair = p1\n"
    "[node a1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 52:54:00:00:00:01\n"
    "[node b1]\ncompartment = b\nhandshake = 127.0.0.2\nmac = 52:54:00:00:00:02\n"
    "[layout]\nboot = 8MiB\nstate = 2MiB\ninfra = 16MiB\nadmin = 6MiB\n"
    "min_disk = 64MiB\nmin_guest = 16MiB\n";
static const char conf_pct[] =
    "[cluster]\nname = t\nkey_file = /nonexistent/key\n"
    "[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
    "[compartment b]\nzone = dmz\npair = p1\n"
    "[node a1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 52:54:00:00:00:01\n"
    "[node b1]\ncompartment = b\nhandshake = 127.0.0.2\nmac = 52:54:00:00:00:02\n"
    "[layout]\nboot = 8MiB\nstate = 2MiB\ninfra = 16MiB\nadmin = 5%\n"
    "min_disk = 64MiB\nmin_guest = 16MiB\n";

static char dir[128];
static struct cfg *cfg, *cfg_pct;

static struct disk_bootstrap_result *run_cfg(const struct cfg *c, const char *path, bool apply)
{
	struct disk_bootstrap_result *r = calloc(1, sizeof(*r));
	const char *disks[] = {path};
	struct disk_bootstrap_opts o = {.disks = disks, .n_disks = 1, .apply = apply};
	assert_non_null(r);
	int self = cfg_find_node(c, "a1");
	assert_true(self >= 0);
	assert_int_equal(disk_bootstrap(c, self, &o, r), 0);
	return r;
}

static struct disk_bootstrap_result *run(const char *path, bool apply)
{
	return run_cfg(cfg, path, apply);
}

/* What a grown disk must keep: every partition's identity and bytes. */
struct snap {
	struct disk_info info;
	uint8_t sum[_DISK_PART_MAX][32];
};

static const struct disk_part *part(const struct disk_info *d, enum disk_part_kind k)
{
	for (int i = 0; i < d->n_parts; i++)
		if (!strcmp(d->parts[i].name, disk_part_name(k)))
			return &d->parts[i];
	return NULL;
}

/* A laid-out disk with data in every partition but the journal's, then grown. */
static void prepare(const char *p, struct snap *s)
{
	make_img(p, OLD_SIZE);
	struct disk_bootstrap_result *r = run(p, true);
	assert_int_equal(r->disks[0].result, 0);
	free(r);
	assert_int_equal(disk_probe(p, &s->info), 0);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	uint8_t blk[4096];
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		const struct disk_part *dp = part(&s->info, (enum disk_part_kind)k);
		assert_non_null(dp);
		if (k == DISK_PART_STATE)
			continue;
		for (uint64_t o = 0; o < dp->size; o += dp->size / 8) {
			randombytes_buf(blk, sizeof(blk));
			assert_int_equal(pwrite(fd, blk, sizeof(blk), (off_t)(dp->start + o)),
					 (ssize_t)sizeof(blk));
		}
		randombytes_buf(blk, sizeof(blk));
		assert_int_equal(
		    pwrite(fd, blk, sizeof(blk), (off_t)(dp->start + dp->size - sizeof(blk))),
		    (ssize_t)sizeof(blk));
	}
	close(fd);
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		const struct disk_part *dp = part(&s->info, (enum disk_part_kind)k);
		sha256_range(p, dp->start, dp->size, s->sum[k]);
	}
	assert_int_equal(truncate(p, NEW_SIZE), 0);
}

/* The partitions' bytes and identities are the ones prepare() left (the journal's apart:
 * it is written), and cmpt-guest is old_guest or the grown size. */
static void assert_intact(const char *p, const struct snap *s, bool *ret_grown)
{
	struct disk_info d;
	assert_int_equal(disk_probe(p, &d), 0);
	assert_string_equal(d.pttype, "gpt");
	assert_string_equal(d.ptuuid, s->info.ptuuid);
	for (int k = 0; k < _DISK_PART_MAX; k++) {
		const struct disk_part *was = part(&s->info, (enum disk_part_kind)k);
		const struct disk_part *now = part(&d, (enum disk_part_kind)k);
		assert_non_null(now);
		assert_string_equal(now->uuid, was->uuid);
		assert_string_equal(now->type, was->type);
		assert_int_equal(now->start, was->start);
		if (k == DISK_PART_GUEST) {
			*ret_grown = now->size != was->size;
			if (*ret_grown)
				assert_int_equal(now->start + now->size, NEW_SIZE - MiB);
		} else {
			assert_int_equal(now->size, was->size);
		}
		uint8_t sum[32];
		sha256_range(p, was->start, was->size, sum);
		if (k != DISK_PART_STATE)
			assert_memory_equal(sum, s->sum[k], 32);
	}
}

static void assert_clean_grown(const char *p, const struct snap *s)
{
	bool grown;
	assert_intact(p, s, &grown);
	assert_true(grown);
	assert_int_equal(sh("sgdisk -v %s 2>&1 | grep -q 'No problems found'", p), 0);
	/* The kernel's view through an independent reader: util-linux's libfdisk. */
	assert_int_equal(
	    sh("sfdisk --json %s | grep -q '\"lastlba\": %llu'", p, NEW_SIZE / 512 - 34), 0);
}

static void test_grow(void **state)
{
	char p[256];
	struct snap s;
	snprintf(p, sizeof(p), "%s/grow.img", dir);
	prepare(p, &s);

	/* plan: what would happen, nothing written */
	uint8_t h1[32], h2[32];
	sha256_file(p, h1);
	struct disk_bootstrap_result *r = run(p, false);
	const struct disk_plan *pl = &r->disks[0].plan;
	assert_int_equal(pl->verdict, DISK_VERDICT_KEEP);
	assert_true(pl->guest_can_grow);
	assert_true(pl->grow);
	assert_int_equal(pl->parts[pl->n_parts - 1].size,
			 NEW_SIZE - MiB - pl->parts[pl->n_parts - 1].start);
	free(r);
	sha256_file(p, h2);
	assert_memory_equal(h1, h2, 32);

	r = run(p, true);
	assert_int_equal(r->disks[0].result, 0);
	assert_true(r->journal_written);
	struct strbuf out;
	sb_init(&out);
	disk_bootstrap_format(r, false, &out);
	assert_non_null(strstr(out.buf, "cmpt-guest grown to 158 MiB\n"));
	sb_reset(&out);
	disk_bootstrap_format(r, true, &out);
	assert_non_null(strstr(out.buf, "\"guest_grown\":true,\"guest_not_grown\":null"));
	sb_free(&out);
	char target[300];
	snprintf(target, sizeof(target), "grow:%s", p);
	assert_null(journal_step_pending(&r->journal, JOURNAL_STEP_PARTITION, target));
	assert_int_equal(
	    journal_count_steps(&r->journal, JOURNAL_STEP_PARTITION, target, JOURNAL_STEP_DONE), 1);
	free(r);
	assert_clean_grown(p, &s);

	/* Once grown, kept without a byte written. */
	sha256_file(p, h1);
	r = run(p, true);
	assert_int_equal(r->disks[0].plan.verdict, DISK_VERDICT_KEEP);
	assert_false(r->disks[0].plan.grow);
	assert_false(r->disks[0].plan.guest_can_grow);
	free(r);
	sha256_file(p, h2);
	assert_memory_equal(h1, h2, 32);
	unlink(p);
}

/* Grown disks whose table or tail is not only ours: reported, never a byte written. */
static void test_grow_refused(void **state)
{
	char p[256];
	struct snap s;
	snprintf(p, sizeof(p), "%s/refuse.img", dir);
	static const struct {
		const char *name, *why;
	} cases[] = {
	    {"a foreign partition after cmpt-guest", ""},
	    {"data at the end of the disk", "not blank"},
	    {"random bytes in the last sector", "not blank"},
	    {"a layout in percent", "percent"},
	    {"a damaged primary GPT, no intent", "not sound"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct cfg *c = cfg;
		if (i == 3) {
			make_img(p, OLD_SIZE);
			free(run_cfg(cfg_pct, p, true));
			assert_int_equal(truncate(p, NEW_SIZE), 0);
			c = cfg_pct;
		} else {
			prepare(p, &s);
		}
		switch (i) {
		case 0:
			assert_int_equal(sh("sgdisk -e -n 6:%llu:+8M -c 6:data %s >/dev/null 2>&1",
					    (OLD_SIZE + 8 * MiB) / 512, p),
					 0);
			break;
		case 1:
			assert_int_equal(sh("dd if=/dev/urandom of=%s bs=4096 count=1 seek=%llu "
					    "conv=notrunc status=none",
					    p, NEW_SIZE / 4096 - 3),
					 0);
			break;
		case 2:
			assert_int_equal(sh("dd if=/dev/urandom of=%s bs=512 count=1 seek=%llu "
					    "conv=notrunc status=none",
					    p, NEW_SIZE / 512 - 1),
					 0);
			break;
		case 4:
			assert_int_equal(sh("dd if=/dev/urandom of=%s bs=512 count=1 seek=2 "
					    "conv=notrunc status=none",
					    p),
					 0);
			break;
		}
		uint8_t h1[32], h2[32];
		sha256_file(p, h1);
		struct disk_bootstrap_result *r = run_cfg(c, p, true);
		const struct disk_plan *pl = &r->disks[0].plan;
		print_message("case %-45s %s: %s; %s\n", cases[i].name,
			      disk_verdict_to_str(pl->verdict), pl->reason, pl->grow_refused);
		assert_false(pl->grow);
		if (pl->verdict == DISK_VERDICT_KEEP)
			assert_non_null(strstr(pl->grow_refused, cases[i].why));
		else
			assert_int_equal(pl->verdict, DISK_VERDICT_FOREIGN);
		free(r);
		sha256_file(p, h2);
		assert_memory_equal(h1, h2, 32);
		unlink(p);
	}
}

struct fault {
	const char *at, *torn;
};

/* Power lost at every point of the growth (in a child: COMPARTD_FAULT_AT, and inside
 * libparted's commit after K of its five writes): the table readable then is the old one
 * or the new one, every partition's bytes are as they were, and the next run leaves a
 * grown disk with a clean GPT and the intent done. */
static void test_grow_crash(void **state)
{
	static const struct fault faults[] = {
	    {"intent", NULL},	{"grow", NULL},	    {"grow-copy", NULL}, {"gpt-write", "0"},
	    {"gpt-write", "1"}, {"gpt-write", "2"}, {"gpt-write", "3"},	 {"gpt-write", "4"},
	    {"verify", NULL},	{"done", NULL},
	};
	char p[256];
	struct snap s;
	snprintf(p, sizeof(p), "%s/crash.img", dir);
	for (size_t i = 0; i < ARRAY_SIZE(faults); i++) {
		prepare(p, &s);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			setenv("COMPARTD_FAULT_AT", faults[i].at, 1);
			if (faults[i].torn)
				setenv("COMPARTD_FAULT_TORN", faults[i].torn, 1);
			free(run(p, true));
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 99);
		bool grown;
		assert_intact(p, &s, &grown);
		print_message("power lost at %-10s torn=%s: %s table\n", faults[i].at,
			      faults[i].torn ? faults[i].torn : "-", grown ? "new" : "old");
		struct disk_bootstrap_result *r = run(p, true);
		assert_int_equal(r->disks[0].result, 0);
		char target[300];
		snprintf(target, sizeof(target), "grow:%s", p);
		assert_null(journal_step_pending(&r->journal, JOURNAL_STEP_PARTITION, target));
		free(r);
		assert_clean_grown(p, &s);
		unlink(p);
	}
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test-grow-XXXXXX", t ? t : "/var/tmp");
	if (!mkdtemp(dir) || sodium_init() < 0)
		return -1;
	log_set_target(LOG_TARGET_NONE);
	if (cfg_parse("test.conf", conf_text, sizeof(conf_text) - 1, NULL, 0, &cfg, NULL) < 0)
		return -1;
	return cfg_parse("pct.conf", conf_pct, sizeof(conf_pct) - 1, NULL, 0, &cfg_pct, NULL);
}

static int teardown(void **state)
{
	cfg_free(cfg);
	cfg_free(cfg_pct);
	sh("rm -rf %s", dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grow),
	    cmocka_unit_test(test_grow_refused),
	    cmocka_unit_test(test_grow_crash),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
