/* md RAID1: the plan for every situation, the mdadm argv it turns into, and parsing what
 * the real mdadm --examine says about crafted superblocks. */
#include "log.h"
#include "raid.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "md_craft.h"

#define U1 "11111111:11111111:11111111:11111111"
#define U2 "22222222:22222222:22222222:22222222"

struct m {
	const char *dev, *uuid, *name;
	uint64_t events;
	bool in_array;
};

struct raid_case {
	const char *title;
	const char *name;
	bool running;
	struct m members[4];
	int expect_r;
	/* actions rendered as argv lines, "|"-separated */
	const char *argv;
	const char *state;
	int up, total;
};

#define BL(d)                                                                                      \
	{                                                                                          \
		.dev = d                                                                           \
	}
#define SB(d, u, n, e)                                                                             \
	{                                                                                          \
		.dev = d, .uuid = u, .name = n, .events = e                                        \
	}
#define UP(d, u, n, e)                                                                             \
	{                                                                                          \
		.dev = d, .uuid = u, .name = n, .events = e, .in_array = true                      \
	}

static const struct raid_case cases[] = {
    {.title = "two blank: create",
     .name = "infra",
     .running = false,
     .members = {BL("/dev/a3"), BL("/dev/b3")},
     .expect_r = 0,
     .argv = "mdadm --create /dev/md/infra --run --metadata=1.2 --level=1 --raid-devices=2 "
	     "--name=infra --homehost=a1 /dev/a3 /dev/b3",
     .state = "resyncing",
     .up = 2,
     .total = 2},
    {.title = "one disk: degraded create",
     .name = "admin",
     .running = false,
     .members = {BL("/dev/a4")},
     .expect_r = 0,
     .argv = "mdadm --create /dev/md/admin --run --metadata=1.2 --level=1 --raid-devices=2 "
	     "--name=admin --homehost=a1 /dev/a4 missing",
     .state = "degraded",
     .up = 1,
     .total = 2},
    {.title = "both members: assemble",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U1, "a1:infra", 10), SB("/dev/b3", U1, "a1:infra", 10)},
     .expect_r = 0,
     .argv = "mdadm --assemble /dev/md/infra --run --uuid=" U1 " /dev/a3 /dev/b3",
     .state = "clean",
     .up = 2,
     .total = 2},
    {.title = "stale member: assemble + re-add",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U1, "a1:infra", 10), SB("/dev/b3", U1, "a1:infra", 7)},
     .expect_r = 0,
     .argv = "mdadm --assemble /dev/md/infra --run --uuid=" U1
	     " /dev/a3|mdadm --manage /dev/md/infra --re-add /dev/b3",
     .state = "resyncing",
     .up = 2,
     .total = 2},
    {.title = "new blank disk: assemble + add",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U1, "a1:infra", 10), BL("/dev/b3")},
     .expect_r = 0,
     .argv = "mdadm --assemble /dev/md/infra --run --uuid=" U1
	     " /dev/a3|mdadm --manage /dev/md/infra --add /dev/b3",
     .state = "resyncing",
     .up = 2,
     .total = 2},
    {.title = "running, returning member: re-add",
     .name = "infra",
     .running = true,
     .members = {UP("/dev/a3", U1, "a1:infra", 12), SB("/dev/b3", U1, "a1:infra", 7)},
     .expect_r = 0,
     .argv = "mdadm --manage /dev/md/infra --re-add /dev/b3",
     .state = "resyncing",
     .up = 2,
     .total = 2},
    {.title = "running, new member: add",
     .name = "infra",
     .running = true,
     .members = {UP("/dev/a3", U1, "a1:infra", 12), BL("/dev/b3")},
     .expect_r = 0,
     .argv = "mdadm --manage /dev/md/infra --add /dev/b3",
     .state = "resyncing",
     .up = 2,
     .total = 2},
    {.title = "running, all in: nothing",
     .name = "infra",
     .running = true,
     .members = {UP("/dev/a3", U1, "a1:infra", 12), UP("/dev/b3", U1, "a1:infra", 12)},
     .expect_r = 0,
     .argv = "",
     .state = "clean",
     .up = 2,
     .total = 2},
    {.title = "single member: assemble degraded",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U1, "a1:infra", 3)},
     .expect_r = 0,
     .argv = "mdadm --assemble /dev/md/infra --run --uuid=" U1 " /dev/a3",
     .state = "degraded",
     .up = 1,
     .total = 2},
    {.title = "foreign array left alone",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U2, "other:data", 40), BL("/dev/b3")},
     .expect_r = 0,
     .argv = "mdadm --create /dev/md/infra --run --metadata=1.2 --level=1 --raid-devices=2 "
	     "--name=infra --homehost=a1 /dev/b3 missing",
     .state = "degraded",
     .up = 1,
     .total = 2},
    {.title = "two of our name: newest uuid wins",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U2, "x:infra", 2), SB("/dev/b3", U1, "a1:infra", 9)},
     .expect_r = 0,
     .argv = "mdadm --assemble /dev/md/infra --run --uuid=" U1 " /dev/b3",
     .state = "degraded",
     .up = 1,
     .total = 2},
    {.title = "only a foreign member",
     .name = "infra",
     .running = false,
     .members = {SB("/dev/a3", U2, "other:data", 4)},
     .expect_r = -ENODEV},
    {.title = "no members",
     .name = "infra",
     .running = false,
     .members = {{.dev = NULL}},
     .expect_r = -EINVAL},
    {.title = "bad name",
     .name = "data",
     .running = false,
     .members = {BL("/dev/a3")},
     .expect_r = -EINVAL},
};

static void build_input(const struct raid_case *c, struct raid_input *in)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", c->name);
	snprintf(in->homehost, sizeof(in->homehost), "a1");
	in->running = c->running;
	if (c->running)
		snprintf(in->running_uuid, sizeof(in->running_uuid), U1);
	for (int i = 0; i < 4 && c->members[i].dev; i++) {
		struct raid_member *m = &in->members[in->n_members++];
		snprintf(m->dev, sizeof(m->dev), "%s", c->members[i].dev);
		m->has_sb = c->members[i].uuid != NULL;
		if (m->has_sb) {
			snprintf(m->uuid, sizeof(m->uuid), "%s", c->members[i].uuid);
			snprintf(m->name, sizeof(m->name), "%s", c->members[i].name);
		}
		m->events = c->members[i].events;
		m->in_array = c->members[i].in_array;
	}
}

static void render(const struct raid_input *in, const struct raid_plan *p, struct strbuf *sb)
{
	for (int i = 0; i < p->n_acts; i++) {
		struct raid_argv v;
		assert_true(raid_build_argv("mdadm", in->homehost, in->name, &p->acts[i], &v) > 0);
		if (i)
			sb_putc(sb, '|');
		for (int k = 0; k < v.argc; k++) {
			sb_printf(sb, "%s%s", k ? " " : "", v.argv[k]);
			/* Nothing this driver builds may zero a superblock. */
			assert_null(strstr(v.argv[k], "zero-superblock"));
		}
		assert_null(v.argv[v.argc]);
	}
}

static void test_plan_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct raid_case *c = &cases[i];
		struct raid_input in;
		struct raid_plan p;
		build_input(c, &in);
		int r = raid_plan_make(&in, &p);
		print_message("case %-40s r=%d\n", c->title, r);
		assert_int_equal(r, c->expect_r);
		if (r < 0)
			continue;
		struct strbuf sb;
		sb_init(&sb);
		render(&in, &p, &sb);
		assert_string_equal(sb.buf ? sb.buf : "", c->argv);
		sb_free(&sb);
		assert_string_equal(raid_state_to_str(p.state), c->state);
		assert_int_equal(p.up, c->up);
		assert_int_equal(p.total, c->total);
	}
}

static void test_parse_examine(void **state)
{
	struct raid_member m = {.dev = "/dev/x"};
	assert_int_equal(raid_parse_examine("MD_LEVEL=raid1\nMD_DEVICES=2\nMD_NAME=a1:infra\n"
					    "MD_UUID=" U1 "\nMD_EVENTS=42\n",
					    &m),
			 0);
	assert_true(m.has_sb);
	assert_string_equal(m.dev, "/dev/x");
	assert_string_equal(m.uuid, U1);
	assert_string_equal(m.name, "a1:infra");
	assert_string_equal(m.level, "raid1");
	assert_int_equal(m.events, 42);
	assert_int_equal(raid_parse_examine("", &m), 0);
	assert_false(m.has_sb);
	assert_int_equal(raid_parse_examine("MD_UUID=" U1 "\nMD_EVENTS=x1\n", &m), -EINVAL);
}

static void test_exec(void **state)
{
	char *t[] = {"true", NULL}, *f[] = {"false", NULL}, *s[] = {"sleep", "5", NULL},
	     *n[] = {"/nonexistent/mdadm", NULL}, *e[] = {"echo", "hello", NULL};
	struct strbuf out;
	sb_init(&out);
	assert_int_equal(raid_exec(t, USEC_PER_SEC * 5, NULL), 0);
	assert_int_equal(raid_exec(f, USEC_PER_SEC * 5, NULL), 1);
	assert_int_equal(raid_exec(n, USEC_PER_SEC * 5, NULL), 127);
	uint64_t t0 = now_usec();
	assert_int_equal(raid_exec(s, 200 * USEC_PER_MSEC, NULL), -ETIMEDOUT);
	assert_true(now_usec() - t0 < 2 * USEC_PER_SEC);
	assert_int_equal(raid_exec(e, USEC_PER_SEC * 5, &out), 0);
	assert_string_equal(out.buf, "hello\n");
	sb_free(&out);
}

/* The real mdadm reads our crafted superblocks; blank members have none. */
static void test_examine_real(void **state)
{
	char dir[] = "/var/tmp/test-raid-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct raid_input in = {.name = "infra", .homehost = "a1", .n_members = 2};
	snprintf(in.members[0].dev, CFG_PATH_MAX, "%s/m0", dir);
	snprintf(in.members[1].dev, CFG_PATH_MAX, "%s/m1", dir);
	for (int i = 0; i < 2; i++) {
		int fd = open(in.members[i].dev, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 64 << 20), 0);
		if (i == 0)
			assert_int_equal(md_write_v1(fd, 64 << 20, "1.2", "a1:infra", 0x11, 17), 0);
		close(fd);
	}
	struct raid_driver drv = {.mdadm = "mdadm", .timeout_us = 10 * USEC_PER_SEC};
	assert_int_equal(raid_examine_members(&drv, &in), 0);
	assert_true(in.members[0].has_sb);
	assert_string_equal(in.members[0].uuid, U1);
	assert_string_equal(in.members[0].name, "a1:infra");
	assert_int_equal(in.members[0].events, 17);
	assert_false(in.members[1].has_sb);
	assert_false(in.running); /* no /dev/md/infra on the host */
	struct raid_plan p;
	assert_int_equal(raid_plan_make(&in, &p), 0);
	assert_int_equal(p.n_acts, 2);
	assert_int_equal(p.acts[0].kind, RAID_ACT_ASSEMBLE);
	assert_int_equal(p.acts[1].kind, RAID_ACT_ADD);
	unlink(in.members[0].dev);
	unlink(in.members[1].dev);
	rmdir(dir);
}

/* The driver's sequencing, with a stand-in for mdadm (the host has no md driver; the real
 * mdadm runs in the QEMU rig): every command line is recorded, a refused re-add falls back
 * to add, and a failing command stops the plan with its exit status checked. */
static void test_driver_sequence(void **state)
{
	char dir[] = "/var/tmp/test-raid-drv-XXXXXX", script[128], log[128], cmd[512];
	assert_non_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/mdadm", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fprintf(f,
		"#!/bin/sh\necho \"$*\" >> %s\n"
		"case \"$*\" in *--re-add*) exit 1;; *fail-me*) exit 2;; esac\nexit 0\n",
		log);
	fclose(f);
	assert_int_equal(chmod(script, 0755), 0);
	struct raid_input in;
	struct raid_plan p;
	build_input(&cases[3], &in); /* stale member: assemble + re-add */
	assert_int_equal(raid_plan_make(&in, &p), 0);
	struct raid_driver drv = {.mdadm = script, .timeout_us = 5 * USEC_PER_SEC};
	assert_int_equal(raid_run_plan(&drv, &in, &p), 0);
	char *text = NULL;
	size_t len;
	assert_int_equal(read_full_file(log, 1 << 16, &text, &len), 0);
	assert_string_equal(text, "--assemble /dev/md/infra --run --uuid=" U1 " /dev/a3\n"
				  "--manage /dev/md/infra --re-add /dev/b3\n"
				  "--manage /dev/md/infra --add /dev/b3\n");
	free(text);
	/* A failing step stops the plan. */
	snprintf(p.acts[0].uuid, sizeof(p.acts[0].uuid), "fail-me");
	assert_int_equal(raid_run_plan(&drv, &in, &p), -EIO);
	assert_int_equal(read_full_file(log, 1 << 16, &text, &len), 0);
	assert_null(strstr(text, "fail-me /dev/a3\n--manage"));
	free(text);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plan_table),
	    cmocka_unit_test(test_parse_examine),
	    cmocka_unit_test(test_exec),
	    cmocka_unit_test(test_examine_real),
	    cmocka_unit_test(test_driver_sequence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
