/* The pure multipath core: selection, deadlines, re-issue decisions, no-path queueing,
 * login backoff, counters, designator choice. Time is a parameter: no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mpath_core.h"

#include <string.h>

#define MS (1000ULL)
#define S (1000000ULL)

static void setup(struct mpath_core *c, int n, enum cfg_path_selector sel)
{
	struct mpath_params p = {.path_timeout = 2 * S,
				 .no_path_timeout = 30 * S,
				 .path_check_interval = 1 * S,
				 .backoff_min = 250 * MS,
				 .backoff_max = 4 * S,
				 .selector = sel};
	mpath_core_init(c, &p, n, 1000 * S);
	for (int i = 0; i < n; i++)
		mpath_core_set_state(c, i, MPATH_PATH_UP, 1000 * S);
}

static void round_robin_alternates_over_up_paths(void **state)
{
	struct mpath_core c;
	setup(&c, 3, CFG_PS_ROUND_ROBIN);
	int seen[3] = {0};
	for (int k = 0; k < 30; k++)
		seen[mpath_core_pick(&c)]++;
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 10);
	/* A down path gets nothing; the others share. */
	mpath_core_set_state(&c, 1, MPATH_PATH_DOWN, 1001 * S);
	memset(seen, 0, sizeof(seen));
	for (int k = 0; k < 20; k++)
		seen[mpath_core_pick(&c)]++;
	assert_int_equal(seen[1], 0);
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[2], 10);
	mpath_core_set_state(&c, 0, MPATH_PATH_DOWN, 1001 * S);
	mpath_core_set_state(&c, 2, MPATH_PATH_REFUSED, 1001 * S);
	assert_int_equal(mpath_core_pick(&c), -1);
	assert_int_equal(mpath_core_up_count(&c), 0);
}

static void failover_sticks_to_the_active_path(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_FAILOVER);
	for (int k = 0; k < 5; k++)
		assert_int_equal(mpath_core_pick(&c), 0);
	mpath_core_set_state(&c, 0, MPATH_PATH_DOWN, 1001 * S);
	for (int k = 0; k < 5; k++)
		assert_int_equal(mpath_core_pick(&c), 1);
	/* Path 0 returns: no fail-back while 1 is healthy. */
	mpath_core_set_state(&c, 0, MPATH_PATH_UP, 1002 * S);
	assert_int_equal(mpath_core_pick(&c), 1);
	mpath_core_set_state(&c, 1, MPATH_PATH_DOWN, 1003 * S);
	assert_int_equal(mpath_core_pick(&c), 0);
}

struct verdict_case {
	enum mpath_status st;
	unsigned prior_attempts, prior_ua;
	enum mpath_verdict want;
};

static void completion_verdicts(void **state)
{
	static const struct verdict_case cases[] = {
	    {MPATH_ST_GOOD, 0, 0, MPATH_V_DONE},
	    {MPATH_ST_UNIT_ATTENTION, 0, 0, MPATH_V_RETRY},
	    {MPATH_ST_UNIT_ATTENTION, 0, MPATH_MAX_UA_RETRIES, MPATH_V_FAIL},
	    {MPATH_ST_TRANSPORT, 0, 0, MPATH_V_RETRY},
	    {MPATH_ST_TRANSPORT, 31, 0, MPATH_V_RETRY}, /* the old cap of 32 attempts */
	    {MPATH_ST_TRANSPORT, 100000, 0, MPATH_V_RETRY},
	    {MPATH_ST_TARGET, 0, 0, MPATH_V_FAIL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mpath_core c;
		setup(&c, 2, CFG_PS_ROUND_ROBIN);
		struct mpath_core_cmd cmd;
		mpath_core_cmd_init(&cmd);
		cmd.attempts = cases[i].prior_attempts;
		cmd.ua_retries = cases[i].prior_ua;
		mpath_core_issued(&c, &cmd, 1, 1000 * S);
		assert_int_equal(c.paths[1].inflight, 1);
		enum mpath_verdict v =
		    mpath_core_completed(&c, &cmd, cases[i].st, 4096, true, 1000 * S + 3 * MS);
		if (v != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, mpath_verdict_to_str(v),
				 mpath_verdict_to_str(cases[i].want));
		assert_int_equal(c.paths[1].inflight, 0);
		assert_int_equal(cmd.path, -1);
	}
}

static void counters_follow_completions(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	struct mpath_core_cmd cmd;
	uint64_t t = 1000 * S;
	mpath_core_cmd_init(&cmd);
	mpath_core_issued(&c, &cmd, 0, t);
	mpath_core_completed(&c, &cmd, MPATH_ST_GOOD, 65536, true, t + 5 * MS);
	mpath_core_cmd_init(&cmd);
	mpath_core_issued(&c, &cmd, 0, t);
	mpath_core_completed(&c, &cmd, MPATH_ST_GOOD, 4096, false, t + 1 * MS);
	mpath_core_cmd_init(&cmd);
	mpath_core_issued(&c, &cmd, 0, t);
	mpath_core_completed(&c, &cmd, MPATH_ST_UNIT_ATTENTION, 4096, false, t + 1 * MS);
	mpath_core_issued(&c, &cmd, 0, t);
	mpath_core_completed(&c, &cmd, MPATH_ST_TRANSPORT, 4096, false, t + 1 * MS);
	const struct mpath_stats *st = &c.paths[0].st;
	assert_int_equal(st->ios, 2);
	assert_int_equal(st->writes, 1);
	assert_int_equal(st->reads, 1);
	assert_int_equal(st->bytes_written, 65536);
	assert_int_equal(st->bytes_read, 4096);
	assert_int_equal(st->errors, 2);
	assert_int_equal(st->unit_attentions, 1);
	assert_int_equal(st->reissued, 1);
	assert_int_equal(st->lat_max_us, 5 * MS);
	assert_int_equal(st->lat_sum_us, 6 * MS);
	assert_int_equal(c.paths[1].st.ios, 0);
}

static void deadline_is_path_timeout_after_issue(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	struct mpath_core_cmd cmd;
	mpath_core_cmd_init(&cmd);
	assert_false(mpath_core_overdue(&cmd, 5000 * S)); /* not issued */
	mpath_core_issued(&c, &cmd, 0, 1000 * S);
	assert_false(mpath_core_overdue(&cmd, 1000 * S));
	assert_false(mpath_core_overdue(&cmd, 1002 * S - 1));
	assert_true(mpath_core_overdue(&cmd, 1002 * S));
	/* Re-issued elsewhere, the bound starts again: the same in failure as in normal use. */
	mpath_core_completed(&c, &cmd, MPATH_ST_TRANSPORT, 0, false, 1002 * S);
	mpath_core_issued(&c, &cmd, 1, 1002 * S);
	assert_false(mpath_core_overdue(&cmd, 1003 * S));
	assert_true(mpath_core_overdue(&cmd, 1004 * S));
}

static void no_path_queues_then_fails(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	struct mpath_core_cmd cmd;
	mpath_core_cmd_init(&cmd);
	uint64_t t = 2000 * S;
	assert_int_equal(mpath_core_no_path(&c, &cmd, t), MPATH_V_QUEUE);
	assert_int_equal(mpath_core_queue_deadline(&c, &cmd), t + 30 * S);
	assert_int_equal(mpath_core_no_path(&c, &cmd, t + 29 * S), MPATH_V_QUEUE);
	assert_int_equal(mpath_core_no_path(&c, &cmd, t + 30 * S), MPATH_V_FAIL);
	/* Issued again, the wait starts afresh next time. */
	mpath_core_issued(&c, &cmd, 0, t + 31 * S);
	assert_int_equal(cmd.queued_us, 0);
	assert_int_equal(mpath_core_queue_deadline(&c, &cmd), USEC_INFINITY);
}

/* A stopped agent (SIGSTOP around a switch_root) loses time that is nobody's fault: a
 * lateness above the slack is returned, and shifting gives commands that time back. */
static void stall_moves_deadlines(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	uint64_t tick = 100 * S;
	assert_int_equal(mpath_core_stall(0, tick + 9 * S, S / 2), 0);	      /* never ticked */
	assert_int_equal(mpath_core_stall(tick, tick - 1, S / 2), 0);	      /* early */
	assert_int_equal(mpath_core_stall(tick, tick + S / 2, S / 2), 0);     /* within slack */
	assert_int_equal(mpath_core_stall(tick, tick + 5 * S, S / 2), 5 * S); /* stopped 5 s */
	struct mpath_core_cmd issued, queued, idle;
	mpath_core_cmd_init(&issued);
	mpath_core_cmd_init(&queued);
	mpath_core_cmd_init(&idle);
	mpath_core_issued(&c, &issued, 1, tick - S);
	assert_int_equal(mpath_core_no_path(&c, &queued, tick - S), MPATH_V_QUEUE);
	uint64_t now = tick + 5 * S;
	assert_true(mpath_core_overdue(&issued, now)); /* what the stall would have done */
	uint64_t gap = mpath_core_stall(tick, now, S / 2);
	mpath_core_cmd_shift(&issued, gap);
	mpath_core_cmd_shift(&queued, gap);
	mpath_core_cmd_shift(&idle, gap);
	assert_false(mpath_core_overdue(&issued, now));
	assert_int_equal(issued.deadline_us, tick - S + c.p.path_timeout + gap);
	assert_int_equal(mpath_core_queue_deadline(&c, &queued), tick - S + 30 * S + gap);
	assert_int_equal(idle.queued_us, 0); /* never queued: stays so */
	assert_int_equal(idle.deadline_us, 0);
}

static void login_backoff_doubles_and_resets(void **state)
{
	struct mpath_core c;
	setup(&c, 1, CFG_PS_ROUND_ROBIN);
	uint64_t t = 3000 * S;
	/* Falling from UP: log in again at once. */
	mpath_core_set_state(&c, 0, MPATH_PATH_DOWN, t);
	assert_true(mpath_core_login_due(&c, 0, t));
	uint64_t want[] = {500 * MS, 1 * S, 2 * S, 4 * S, 4 * S};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		mpath_core_set_state(&c, 0, MPATH_PATH_LOGIN, t);
		mpath_core_set_state(&c, 0, MPATH_PATH_DOWN, t);
		assert_false(mpath_core_login_due(&c, 0, t + want[i] - 1));
		assert_true(mpath_core_login_due(&c, 0, t + want[i]));
	}
	mpath_core_set_state(&c, 0, MPATH_PATH_LOGIN, t);
	mpath_core_set_state(&c, 0, MPATH_PATH_PROBE, t);
	mpath_core_set_state(&c, 0, MPATH_PATH_REFUSED, t);
	assert_false(mpath_core_login_due(&c, 0, t + 4 * S - 1));
	assert_true(mpath_core_login_due(&c, 0, t + 4 * S));
	mpath_core_set_state(&c, 0, MPATH_PATH_UP, t);
	assert_int_equal(c.paths[0].backoff_us, 0);
	assert_false(mpath_core_login_due(&c, 0, t + 100 * S)); /* up: no login */
	assert_int_equal(mpath_core_set_state(&c, 0, MPATH_PATH_UP, t), false);
	assert_int_equal(c.paths[0].st.state_changes, 16);
}

static void check_every_interval_while_up(void **state)
{
	struct mpath_core c;
	setup(&c, 1, CFG_PS_ROUND_ROBIN);
	uint64_t t = 1000 * S;
	assert_false(mpath_core_check_due(&c, 0, t + 999 * MS));
	assert_true(mpath_core_check_due(&c, 0, t + 1 * S));
	mpath_core_checked(&c, 0, t + 1 * S);
	assert_false(mpath_core_check_due(&c, 0, t + 1999 * MS));
	assert_true(mpath_core_check_due(&c, 0, t + 2 * S));
	mpath_core_set_state(&c, 0, MPATH_PATH_DOWN, t + 2 * S);
	assert_false(mpath_core_check_due(&c, 0, t + 10 * S));
}

static void designator_prefers_naa_for_the_lu(void **state)
{
	static const uint8_t naa[] = {0x60, 0x01, 0x40, 0x5a, 0xbc};
	static const uint8_t eui[] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
	static const uint8_t t10[] = "IET     VIRTUAL-DISK    ";
	static const uint8_t port_naa[] = {0x61};
	char out[MPATH_DESIGNATOR_MAX];
	struct mpath_designator d[] = {
	    {.type = 1, .association = 0, .code_set = 2, .data = t10, .len = sizeof(t10) - 1},
	    {.type = 3, .association = 1, .code_set = 1, .data = port_naa, .len = 1},
	    {.type = 2, .association = 0, .code_set = 1, .data = eui, .len = sizeof(eui)},
	    {.type = 3, .association = 0, .code_set = 1, .data = naa, .len = sizeof(naa)},
	};
	assert_int_equal(mpath_designator_pick(d, 4, out, sizeof(out)), 0);
	assert_string_equal(out, "naa.6001405abc");
	assert_int_equal(mpath_designator_pick(d, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "eui.0011223344556677");
	assert_int_equal(mpath_designator_pick(d, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "t10.IET_____VIRTUAL-DISK");
	assert_int_equal(mpath_designator_pick(d + 1, 1, out, sizeof(out)), -ENOENT);
	assert_int_equal(mpath_designator_pick(NULL, 0, out, sizeof(out)), -ENOENT);
}

/* SPEC §4: a command never fails with EIO while a path is healthy, however often paths
 * fail (a flapping path). Path failures never exhaust a command. */
static void path_failures_never_exhaust_a_command(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	struct mpath_core_cmd cmd;
	mpath_core_cmd_init(&cmd);
	uint64_t t = 1000 * S;
	for (int k = 0; k < 1000; k++) {
		mpath_core_issued(&c, &cmd, 0, t);
		enum mpath_verdict v =
		    k % 2 ? mpath_core_completed(&c, &cmd, MPATH_ST_TRANSPORT, 0, true, t + MS)
			  : mpath_core_path_failed(&c, &cmd, MPATH_FAIL_ENDED, true, t + MS);
		if (v != MPATH_V_RETRY)
			fail_msg("attempt %d: %s", k + 1, mpath_verdict_to_str(v));
		t += 10 * MS;
	}
	assert_int_equal(cmd.attempts, 1000);
	mpath_core_issued(&c, &cmd, 1, t);
	assert_int_equal(mpath_core_completed(&c, &cmd, MPATH_ST_GOOD, 512, true, t + MS),
			 MPATH_V_DONE);
}

/* SPEC §4: a write that timed out on a path must not be re-issued before the target of
 * that path terminated it. Reads move on at once; so do writes whose session the target
 * itself ended. */
static void abandoned_write_is_held_until_fenced(void **state)
{
	struct mpath_core c;
	setup(&c, 2, CFG_PS_ROUND_ROBIN);
	uint64_t t = 1000 * S;
	struct mpath_core_cmd w, r, ended, trim;
	mpath_core_cmd_init(&w);
	mpath_core_cmd_init(&r);
	mpath_core_cmd_init(&ended);
	mpath_core_cmd_init(&trim);
	mpath_core_issued(&c, &w, 0, t);
	mpath_core_issued(&c, &r, 0, t);
	mpath_core_issued(&c, &trim, 0, t);
	mpath_core_issued(&c, &ended, 1, t);
	uint64_t f = t + 2 * S;
	assert_int_equal(mpath_core_path_failed(&c, &w, MPATH_FAIL_ABANDONED, true, f),
			 MPATH_V_HOLD);
	assert_int_equal(mpath_core_path_failed(&c, &trim, MPATH_FAIL_ABANDONED, true, f),
			 MPATH_V_HOLD);
	assert_int_equal(mpath_core_path_failed(&c, &r, MPATH_FAIL_ABANDONED, false, f),
			 MPATH_V_RETRY);
	assert_int_equal(mpath_core_path_failed(&c, &ended, MPATH_FAIL_ENDED, true, f),
			 MPATH_V_RETRY);
	assert_int_equal(w.held_on, 0);
	assert_int_equal(r.held_on, -1);
	assert_int_equal(ended.held_on, -1);
	assert_int_equal(c.paths[0].held, 2);
	assert_int_equal(c.paths[0].inflight, 0);
	assert_int_equal(c.paths[1].held, 0);
	/* Path 1 is healthy, but the write waits: no_path_timeout (30 s) at most. */
	assert_int_equal(mpath_core_hold_check(&c, &w, f + 29 * S), MPATH_V_HOLD);
	/* Path 0 logged in again with the same ISID: the old session is gone with its tasks. */
	assert_int_equal(mpath_core_fenced(&c, &w), MPATH_V_RETRY);
	assert_int_equal(w.held_on, -1);
	assert_int_equal(c.paths[0].held, 1);
	assert_int_equal(mpath_core_hold_check(&c, &w, f + 99 * S), MPATH_V_RETRY);
	/* Unconfirmed for no_path_timeout: EIO (the target may still apply it). */
	assert_int_equal(mpath_core_hold_check(&c, &trim, f + 30 * S - 1), MPATH_V_HOLD);
	assert_int_equal(mpath_core_hold_check(&c, &trim, f + 30 * S), MPATH_V_FAIL);
	assert_int_equal(c.paths[0].held, 0);
	/* A stall of the agent moves the hold's clock like the others. */
	mpath_core_issued(&c, &w, 0, t);
	assert_int_equal(mpath_core_path_failed(&c, &w, MPATH_FAIL_ABANDONED, true, f),
			 MPATH_V_HOLD);
	mpath_core_cmd_shift(&w, 10 * S);
	assert_int_equal(mpath_core_hold_check(&c, &w, f + 39 * S), MPATH_V_HOLD);
	assert_int_equal(mpath_core_hold_check(&c, &w, f + 40 * S), MPATH_V_FAIL);
}

struct capacity_case {
	uint64_t last_lba;
	uint32_t block;
	int want;
	uint64_t size;
};

/* SPEC §4: READ CAPACITY(16) results that overflow are refused with a sentence. */
static void capacity_refuses_overflows(void **state)
{
	static const struct capacity_case cases[] = {
	    {2047, 512, 0, 1048576},
	    {(1ULL << 40) - 1, 4096, 0, 1ULL << 52},
	    {UINT64_MAX, 512, -ERANGE, 0}, /* last LBA + 1 overflows */
	    {1ULL << 55, 512, -ERANGE, 0}, /* blocks × 512 overflows 64 bits */
	    {(INT64_MAX / 4096) - 1, 4096, 0, (uint64_t)(INT64_MAX / 4096) * 4096},
	    {INT64_MAX / 4096, 4096, -ERANGE, 0}, /* one block more: past 63 bits */
	    {2047, 0, -ERANGE, 0},
	    {2047, 520, -ERANGE, 0},
	    {2047, 1536, -ERANGE, 0},
	    {2047, 256, -ERANGE, 0},
	    {2047, 1U << 20, -ERANGE, 0},
	    {2047, UINT32_MAX, -ERANGE, 0},
	    {0, 65536, 0, 65536},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t size = 0;
		char why[160] = "";
		int r = mpath_capacity(cases[i].last_lba, cases[i].block, &size, why, sizeof(why));
		if (r != cases[i].want)
			fail_msg("case %zu: %d, want %d (%s)", i, r, cases[i].want, why);
		if (r == 0)
			assert_int_equal(size, cases[i].size);
		else
			assert_non_null(strstr(why, "READ CAPACITY(16)"));
	}
	char why[160];
	uint64_t size;
	mpath_capacity(UINT64_MAX, 512, &size, why, sizeof(why));
	assert_string_equal(why, "READ CAPACITY(16): last block 18446744073709551615 of 512 "
				 "bytes: the size does not fit in 63 bits");
	mpath_capacity(7, 0, &size, why, sizeof(why));
	assert_string_equal(
	    why, "READ CAPACITY(16): block length 0 is not a power of two from 512 to 65536");
}

static void strings_cover_every_value(void **state)
{
	for (int i = 0; i < _MPATH_PATH_STATE_MAX; i++)
		assert_non_null(mpath_path_state_to_str((enum mpath_path_state)i));
	for (int i = 0; i < _MPATH_ST_MAX; i++)
		assert_non_null(mpath_status_to_str((enum mpath_status)i));
	for (int i = 0; i < _MPATH_V_MAX; i++)
		assert_non_null(mpath_verdict_to_str((enum mpath_verdict)i));
	assert_null(mpath_path_state_to_str(_MPATH_PATH_STATE_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_robin_alternates_over_up_paths),
	    cmocka_unit_test(failover_sticks_to_the_active_path),
	    cmocka_unit_test(completion_verdicts),
	    cmocka_unit_test(counters_follow_completions),
	    cmocka_unit_test(deadline_is_path_timeout_after_issue),
	    cmocka_unit_test(no_path_queues_then_fails),
	    cmocka_unit_test(stall_moves_deadlines),
	    cmocka_unit_test(login_backoff_doubles_and_resets),
	    cmocka_unit_test(check_every_interval_while_up),
	    cmocka_unit_test(designator_prefers_naa_for_the_lu),
	    cmocka_unit_test(path_failures_never_exhaust_a_command),
	    cmocka_unit_test(abandoned_write_is_held_until_fenced),
	    cmocka_unit_test(capacity_refuses_overflows),
	    cmocka_unit_test(strings_cover_every_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
