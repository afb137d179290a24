/* The last-known-good configuration on a state image file (SPEC §2a, §10): the node ready
 * with a version records it as good and keeps a copy; at boot a broken, older or failed
 * image configuration gives way to the copy; without a copy the error stands. */
#include "config_store.h"
#include "log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

/* libparted (linked through the disk module) runs a constructor ASan's strchr interceptor
 * flags before main(); as in test_disk_apply, only that check is off, only here. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "intercept_strchr=0";
}

static char dir[128], state[256], conf[256];

static const char conf_fmt[] =
    "[cluster]\nname = t\nkey_file = /nonexistent/key\nversion = %d\n"
    "[pair p1]\n[compartment a]\nzone = mz\npair = p1\n"
    "[compartment b]\nzone = dmz\npair = p1\n"
    "[node a1]\ncompartment = a\nhandshake = 127.0.0.1\nmac = 52:54:00:00:00:01\n"
    "[node b1]\ncompartment = b\nhandshake = 127.0.0.2\nmac = 52:54:00:00:00:02\n";

static void write_conf(int version, bool broken)
{
	FILE *f = fopen(conf, "we");
	assert_non_null(f);
	fprintf(f, conf_fmt, version);
	if (broken)
		fputs("colour = red\n", f);
	fclose(f);
}

static struct cfg *boot(int *ret)
{
	struct config_lkg *l = config_lkg_new(state, false, NULL);
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	*ret = config_lkg_boot(l, conf, NULL, 0, &c, &err);
	sb_free(&err);
	config_lkg_free(l);
	return c;
}

static void record(int version, bool ok)
{
	struct config_lkg *l = config_lkg_new(state, false, NULL);
	struct cfg *c = NULL;
	write_conf(version, false);
	assert_int_equal(cfg_load(conf, NULL, 0, &c, NULL), 0);
	assert_int_equal(config_lkg_record(l, c, ok), 0);
	cfg_free(c);
	config_lkg_free(l);
}

static void test_lkg(void **state_)
{
	int r;
	/* No journal yet: the image's file decides alone, broken or not. */
	write_conf(1, true);
	assert_null(boot(&r));
	assert_int_equal(r, -EINVAL);
	record(1, true);
	struct journal_dev d = {.size = 2 << 20};
	snprintf(d.path, sizeof(d.path), "%s", state);
	struct journal_state *j = calloc(1, sizeof(*j));
	assert_int_equal(journal_load(&d, 1, j), 0);
	assert_true(j->has_good);
	assert_int_equal(j->good.version, 1);
	/* Broken image: the stored copy runs, and the broken file is recorded as failed. */
	write_conf(2, true);
	struct cfg *c = boot(&r);
	assert_int_equal(r, 0);
	assert_non_null(c);
	assert_int_equal(c->version, 1);
	assert_string_equal(c->path, conf); /* a reload reads the image's file again */
	cfg_free(c);
	assert_int_equal(journal_load(&d, 1, j), 0);
	assert_int_equal(j->n_failed, 2); /* the broken version 1 and this one */
	assert_int_equal(j->failed[1].version, 0);
	/* Older than the last-known-good: the copy. */
	write_conf(0, false);
	c = boot(&r);
	assert_int_equal(c->version, 1);
	cfg_free(c);
	/* Newer: the image's. Its hooks fail: recorded, and the next boot refuses it. */
	write_conf(2, false);
	c = boot(&r);
	assert_int_equal(c->version, 2);
	cfg_free(c);
	record(2, false);
	/* …and the running version 2 is rolled back in place to the copy of version 1. */
	write_conf(2, false);
	assert_int_equal(cfg_load(conf, NULL, 0, &c, NULL), 0);
	struct config_lkg *l = config_lkg_new(state, false, NULL);
	assert_int_equal(config_lkg_rollback(l, c, NULL, 0, "test", false), 0);
	assert_int_equal(c->version, 1);
	assert_int_equal(config_lkg_rollback(l, c, NULL, 0, "test", false),
			 -ENOENT); /* already the good one */
	config_lkg_free(l);
	cfg_free(c);
	c = boot(&r);
	assert_int_equal(r, 0);
	assert_int_equal(c->version, 1);
	cfg_free(c);
	/* Version 3 works: it becomes the last-known-good; its copy goes to the other slot. */
	record(3, true);
	record(3, true); /* idempotent */
	write_conf(1, false);
	c = boot(&r);
	assert_int_equal(c->version, 3);
	cfg_free(c);
	assert_int_equal(journal_load(&d, 1, j), 0);
	assert_int_equal(j->good.version, 3);
	assert_int_equal(j->n_failed, 3);
	/* The copy destroyed: the stale image's error stands (rescue, as before). */
	int fd = open(state, O_RDWR);
	static uint8_t z[1 << 20];
	assert_int_equal(pwrite(fd, z, sizeof(z), 1 << 20), (ssize_t)sizeof(z));
	close(fd);
	write_conf(1, false);
	assert_null(boot(&r));
	assert_int_equal(r, -ESTALE);
	free(j);
}

static void fresh_state(void)
{
	int fd = open(state, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 << 20), 0);
	close(fd);
}

/* Keeps version v's text on trial, as a fetch or push does before applying it. */
static void trial(int version)
{
	char text[1024];
	uint8_t h[32];
	int n = snprintf(text, sizeof(text), conf_fmt, version);
	crypto_generichash(h, 32, (const uint8_t *)text, (size_t)n, NULL, 0);
	struct config_lkg *l = config_lkg_new(state, false, NULL);
	assert_int_equal(config_lkg_trial(l, text, (size_t)n, (uint64_t)version, h), 0);
	config_lkg_free(l);
}

static struct journal_state *jload(void)
{
	static struct journal_state j;
	struct journal_dev d = {.size = 2 << 20};
	snprintf(d.path, sizeof(d.path), "%s", state);
	assert_int_equal(journal_load(&d, 1, &j), 0);
	return &j;
}

/* A fetched version is kept before it is applied: a reboot with the image's older (or
 * broken) file boots it, written over the file; booted CONFIG_TRIAL_BOOTS times without
 * surviving its probation it has failed and the last-known-good runs; surviving it
 * makes it the last-known-good. */
static void test_trial(void **state_)
{
	int r;
	fresh_state();
	record(1, true);
	trial(2);
	assert_true(jload()->has_trial);
	assert_int_equal(jload()->good.version, 1);
	write_conf(1, false); /* the image's file (PID 1: the initramfs) */
	struct cfg *c = boot(&r);
	assert_int_equal(r, 0);
	assert_int_equal(c->version, 2);
	assert_int_equal(jload()->trial_boots, 1);
	cfg_free(c);
	/* …written over the file: a reload reads what runs. */
	assert_int_equal(cfg_load(conf, NULL, 0, &c, NULL), 0);
	assert_int_equal(c->version, 2);
	cfg_free(c);
	/* A broken image's file: the trial too. */
	write_conf(1, true);
	c = boot(&r);
	assert_int_equal(r, 0);
	assert_int_equal(c->version, 2);
	cfg_free(c);
	/* A third boot without surviving the probation: failed, the last-known-good runs. */
	c = boot(&r);
	assert_int_equal(r, 0);
	assert_int_equal(c->version, 1);
	cfg_free(c);
	struct journal_state *j = jload();
	assert_false(j->has_trial);
	assert_int_equal(j->failed[j->n_failed - 1].version, 2);
	/* Version 3 on trial survives its probation: the last-known-good, the trial gone. */
	trial(3);
	write_conf(1, false);
	c = boot(&r);
	assert_int_equal(c->version, 3);
	struct config_lkg *l = config_lkg_new(state, false, NULL);
	assert_true(config_lkg_on_trial(l, c));
	assert_int_equal(config_lkg_record(l, c, true), 0);
	assert_false(config_lkg_on_trial(l, c));
	config_lkg_free(l);
	cfg_free(c);
	j = jload();
	assert_false(j->has_trial);
	assert_int_equal(j->good.version, 3);
	/* Version 4 on trial fails (a hook): recorded, rolled back in place to 3. */
	trial(4);
	write_conf(3, false);
	c = boot(&r);
	assert_int_equal(c->version, 4);
	l = config_lkg_new(state, false, NULL);
	assert_int_equal(config_lkg_record(l, c, false), 0);
	assert_int_equal(config_lkg_rollback(l, c, NULL, 0, "hook-failed", true), 0);
	assert_int_equal(c->version, 3);
	config_lkg_free(l);
	cfg_free(c);
	assert_int_equal(cfg_load(conf, NULL, 0, &c, NULL), 0); /* the file is what runs */
	assert_int_equal(c->version, 3);
	cfg_free(c);
	j = jload();
	assert_false(j->has_trial);
	assert_int_equal(j->good.version, 3);
	assert_int_equal(j->failed[j->n_failed - 1].version, 4);
	/* An image's file newer than the trial is the image's choice. */
	trial(5);
	write_conf(6, false);
	c = boot(&r);
	assert_int_equal(c->version, 6);
	cfg_free(c);
}

static int setup(void **state_)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test-cfgstore-XXXXXX", t ? t : "/var/tmp");
	if (!mkdtemp(dir) || sodium_init() < 0)
		return -1;
	log_set_target(LOG_TARGET_NONE);
	snprintf(state, sizeof(state), "%s/state.img", dir);
	snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
	int fd = open(state, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 2 << 20) < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state_)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_lkg),
					   cmocka_unit_test(test_trial)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
