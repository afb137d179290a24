/* The NBD export's health check, pure parts: the stages judged on gathered facts (every
 * way the export can be wrong, and the states that are progress rather than alarms), the
 * NBD_CMD_STATUS answer parsed from crafted netlink attributes, and the '@' mark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "health_export.h"
#include "nbdx.h"
#include "proctitle.h"

#include <linux/netlink.h>
#include <linux/nbd-netlink.h>
#include <string.h>

static const struct health_export_facts good = {
    .exported = true,
    .index = 0,
    .linked = true,
    .status = 0,
    .connected = true,
    .dev_pid = 321,
    .our_pid = 321,
    .dev_size = 256ULL << 20,
    .lu_size = 256ULL << 20,
    .designator_now = "naa.6001405abcdef",
    .designator_exported = "naa.6001405abcdef",
    .pinned = "",
};

/* Each case changes the good facts and names the stage that must fail (or none). */
struct judge_case {
	const char *name;
	void (*edit)(struct health_export_facts *f);
	int failing_stage; /* -1: all pass */
	int err;
	const char *detail; /* a substring of the failing stage's sentence */
};

static void e_none(struct health_export_facts *f)
{
}
static void e_not_exported(struct health_export_facts *f)
{
	*f = (struct health_export_facts){.index = -1,
					  .dev_pid = -1,
					  .designator_now = "",
					  .designator_exported = "",
					  .pinned = ""};
}
static void e_socket_only(struct health_export_facts *f)
{
	f->index = -1;
}
static void e_no_kernel(struct health_export_facts *f)
{
	f->status = -ENOENT;
}
static void e_disconnected(struct health_export_facts *f)
{
	f->connected = false;
}
static void e_unlinked(struct health_export_facts *f)
{
	f->linked = false;
}
static void e_other_pid(struct health_export_facts *f)
{
	f->dev_pid = 99;
}
static void e_no_pid(struct health_export_facts *f)
{
	f->dev_pid = -1;
}
static void e_size(struct health_export_facts *f)
{
	f->dev_size = 0;
}
static void e_other_lu(struct health_export_facts *f)
{
	f->designator_now = "naa.600140599999";
}
static void e_pinned_ok(struct health_export_facts *f)
{
	f->pinned = "naa.6001405abcdef";
}
static void e_pinned_bad(struct health_export_facts *f)
{
	f->pinned = "naa.6001405000000";
}

static const struct judge_case judge_cases[] = {
    {"healthy", e_none, -1, 0, "/dev/nbd0, 268435456 bytes"},
    {"not exported yet", e_not_exported, -1, 0, NULL},
    {"unix socket only", e_socket_only, -1, 0, NULL},
    {"kernel without nbd", e_no_kernel, HEALTH_STAGE_REACHABLE, -EHOSTUNREACH, "does not answer"},
    {"disconnected", e_disconnected, HEALTH_STAGE_REACHABLE, -ENOTCONN, "not connected"},
    {"our end closed", e_unlinked, HEALTH_STAGE_REACHABLE, -ENOTCONN, "socket is closed"},
    {"someone else serves it", e_other_pid, HEALTH_STAGE_REACHABLE, -ENOTCONN, "pid 99"},
    {"no pid file", e_no_pid, HEALTH_STAGE_REACHABLE, -ENOTCONN, "pid -1"},
    {"size differs", e_size, HEALTH_STAGE_PARSES, -EBADMSG, "has 0 bytes"},
    {"another LU", e_other_lu, HEALTH_STAGE_INTEGRITY, -EXDEV, "naa.600140599999"},
    {"pinned matches", e_pinned_ok, -1, 0, NULL},
    {"pinned differs", e_pinned_bad, HEALTH_STAGE_INTEGRITY, -EXDEV, "pinned"},
};

static void judge_table(void **state)
{
	for (size_t k = 0; k < sizeof(judge_cases) / sizeof(judge_cases[0]); k++) {
		const struct judge_case *c = &judge_cases[k];
		struct health_export_facts f = good;
		c->edit(&f);
		int failed = -1, err = 0;
		struct strbuf d;
		sb_init(&d);
		for (int s = 0; s < _HEALTH_STAGE_MAX && failed < 0; s++) {
			sb_reset(&d);
			int r = health_export_judge(&f, (enum health_stage)s, &d);
			if (r < 0) {
				failed = s;
				err = r;
			}
		}
		if (failed != c->failing_stage || err != c->err ||
		    (c->detail && (!d.buf || !strstr(d.buf, c->detail))))
			fail_msg("case '%s': stage %d err %d detail '%s'", c->name, failed, err,
				 d.buf ? d.buf : "");
		sb_free(&d);
	}
}

/* ---- NBD_CMD_STATUS attributes ---- */

struct nl {
	uint8_t b[256];
	size_t len, nest[4];
	int depth;
};

static void put(struct nl *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
	memcpy(m->b + m->len, &a, sizeof(a));
	if (len)
		memcpy(m->b + m->len + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(NLA_HDRLEN + len);
}

static void begin(struct nl *m, uint16_t type)
{
	m->nest[m->depth++] = m->len;
	put(m, type | NLA_F_NESTED, NULL, 0);
}

static void end(struct nl *m)
{
	size_t at = m->nest[--m->depth];
	uint16_t l = (uint16_t)(m->len - at);
	memcpy(m->b + at, &l, sizeof(l));
}

static void device(struct nl *m, uint32_t index, uint8_t connected)
{
	begin(m, NBD_DEVICE_ITEM);
	put(m, NBD_DEVICE_INDEX, &index, 4);
	put(m, NBD_DEVICE_CONNECTED, &connected, 1);
	end(m);
}

static void status_answer_parses(void **state)
{
	struct nl m = {0};
	uint32_t idx = 3;
	put(&m, NBD_ATTR_INDEX, &idx, 4);
	begin(&m, NBD_ATTR_DEVICE_LIST);
	device(&m, 2, 1);
	device(&m, 3, 0);
	device(&m, 4, 1);
	end(&m);
	bool c = true;
	assert_int_equal(nbdx_status_parse(m.b, m.len, 3, &c), 0);
	assert_false(c);
	assert_int_equal(nbdx_status_parse(m.b, m.len, 4, &c), 0);
	assert_true(c);
	assert_int_equal(nbdx_status_parse(m.b, m.len, 7, &c), -ENOENT);
	/* Truncated anywhere: an error, never a read past the end. */
	for (size_t n = 0; n < m.len; n++) {
		int r = nbdx_status_parse(m.b, n, 4, &c);
		assert_true(r == -ENOENT || r == -EBADMSG);
	}
	/* A device item without its connected flag. */
	struct nl bad = {0};
	begin(&bad, NBD_ATTR_DEVICE_LIST);
	begin(&bad, NBD_DEVICE_ITEM);
	put(&bad, NBD_DEVICE_INDEX, &idx, 4);
	end(&bad);
	end(&bad);
	assert_int_equal(nbdx_status_parse(bad.b, bad.len, 3, &c), -EBADMSG);
}

/* ---- the '@' mark ---- */

static void argv0_marked_in_place(void **state)
{
	char area[] = "/init\0--flag";
	char *argv[] = {area, area + 6, NULL};
	proctitle_init(2, argv);
	assert_int_equal(proctitle_mark_root_storage(), 0);
	assert_memory_equal(area, "@init\0--flag", sizeof(area)); /* one byte, nothing else */
	char empty[] = "";
	char *none[] = {empty, NULL};
	proctitle_init(1, none);
	assert_int_equal(proctitle_mark_root_storage(), -ENOENT);
	proctitle_init(0, NULL);
	assert_int_equal(proctitle_mark_root_storage(), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(judge_table),
	    cmocka_unit_test(status_answer_parses),
	    cmocka_unit_test(argv0_marked_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
