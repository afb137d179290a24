/* The election state machine (agent/elect.c): one deterministic scenario per rule of SPEC
 * §7 and per dual-master or liveness case it names, in the simulator of elect_sim.h. The random
 * schedules per fault family are test_elect_sim.c. */
#include "elect_sim.h"

/* ---- deterministic scenarios, one per rule of SPEC §7 ---- */

static struct sim S;

/* A quiet network (no drops), every node started, run until `until`. */
static struct sim *scenario(bool qdev, uint64_t until)
{
	struct sim *s = &S;

	sim_init(s, 42, qdev);
	for (int n = 0; n < NN; n++)
		push(s,
		     (struct sev){.t = 1 + (uint64_t)n * 10 * MS, .kind = SEV_RESTART, .node = n});
	sim_run_until(s, until);
	return s;
}

static void no_failure(const struct sim *s)
{
	if (s->fail[0])
		print_error("%s\n", s->fail);
	assert_string_equal(s->fail, "");
}

static int other_side_candidate(int n)
{
	return sides[n] == 0 ? 2 : 0; /* b1 or a1: the best of the other compartment */
}

static void test_candidates_by_rank(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s);

	(void)state;
	no_failure(s);
	assert_true(m == 0 || m == 2); /* a1 or b1: the candidates of a and b */
	for (int n = 0; n < NN; n++)
		if (n != m)
			assert_int_equal(s->n[n].sm.role, ELECT_ROLE_SLAVE);
	assert_int_equal(elect_candidate(&s->n[1].sm, 0, local(s, 1)), 0);
	assert_int_equal(elect_candidate(&s->n[1].sm, 1, local(s, 1)), 2);
	/* a1 loses eligibility: a2 becomes the candidate of compartment a */
	step_node(s, 0, &(struct elect_event){.type = ELECT_EV_ELIGIBLE, .eligible = false});
	sim_run_until(s, 5 * SEC);
	no_failure(s);
	assert_int_equal(s->n[0].sm.role, ELECT_ROLE_NONE);
	assert_int_equal(elect_candidate(&s->n[2].sm, 0, local(s, 2)), 1);
	assert_int_not_equal(current_master(s), 0);
	assert_true(current_master(s) >= 0);
}

static void test_takeover_after_crash(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);
	uint64_t old_epoch = s->n[m].sm.master_epoch, t0 = s->now;

	(void)state;
	crash_node(s, m);
	sim_run_until(s, t0 + elect_master_timeout(&s->base) + SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x);
	assert_string_equal(s->n[x].promote_reason, "takeover");
	assert_true(s->n[x].sm.master_epoch > old_epoch); /* epochs */
	print_message("takeover after %llu ms\n",
		      (unsigned long long)((s->n[x].promoted_at - t0) / MS));
}

static void test_no_preemption_on_recovery(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);

	(void)state;
	crash_node(s, m);
	sim_run_until(s, 5 * SEC);
	assert_int_equal(current_master(s), x);
	start_node(s, m);
	sim_run_until(s, 9 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x);
	assert_int_equal(s->n[m].sm.role, ELECT_ROLE_SLAVE);
}

static void test_partition_both_alive(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), promotions = s->promotions;

	(void)state;
	s->net.partition = true;
	sim_run_until(s, 8 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), m);
	assert_int_equal(s->promotions, promotions);
}

static void test_qdev_lost_network_intact(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), promotions = s->promotions;

	(void)state;
	for (int n = 0; n < NN; n++)
		s->qd.reach[n] = false;
	sim_run_until(s, 8 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), m); /* kept through the slave's acknowledgements */
	assert_int_equal(s->promotions, promotions);
}

static void test_both_lost(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s);
	uint64_t t0 = s->now;

	(void)state;
	for (int n = 0; n < NN; n++)
		s->qd.reach[n] = false;
	s->net.partition = true;
	sim_run_until(s, t0 + s->base.lease + 5 * MS);
	no_failure(s);
	assert_int_equal(current_master(s), -1);
	assert_string_equal(s->n[m].demote_reason, "lease-lapsed");
	sim_run_until(s, t0 + 5 * SEC);
	no_failure(s);
	assert_true(s->last_master_at < t0 + s->base.lease + 5 * MS); /* nobody in between */
	for (int n = 0; n < NN; n++)
		s->qd.reach[n] = true;
	sim_run_until(s, t0 + 8 * SEC);
	no_failure(s);
	assert_true(current_master(s) >= 0);
}

static void test_lease_from_acks_only(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), promotions = s->promotions;

	(void)state;
	s->qd.reach[m] = false; /* only the master loses the quorum device */
	sim_run_until(s, 8 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), m);
	assert_int_equal(s->promotions, promotions);
	/* and then the network too: it steps down, the other side takes over */
	s->net.partition = true;
	sim_run_until(s, 10 * SEC);
	no_failure(s);
	assert_string_equal(s->n[m].demote_reason, "lease-lapsed");
	assert_int_equal(current_master(s), other_side_candidate(m));
}

static void test_reservation_conflict(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);

	(void)state;
	/* Someone else's PREEMPT of the master's key, as the target would apply it. */
	s->qd.registered[m] = false;
	s->qd.holder = x;
	sim_run_until(s, 3 * SEC + 300 * MS);
	no_failure(s);
	assert_false(s->n[m].promoted);
	assert_true(strcmp(s->n[m].demote_reason, "reservation-conflict") == 0 ||
		    strcmp(s->n[m].demote_reason, "reservation-lost") == 0);
	sim_run_until(s, 5 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x);
}

static void test_degraded_until_slave_answers(void **state)
{
	struct sim *s = &S;
	int m;

	(void)state;
	sim_init(s, 7, true);
	start_node(s, 0);
	start_node(s, 1);
	sim_run_until(s, 3 * SEC);
	m = current_master(s);
	assert_int_equal(m, 0);
	assert_true(s->n[m].sm.degraded);
	start_node(s, 2);
	sim_run_until(s, 4 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), 0);
	assert_false(s->n[m].sm.degraded);
}

static void test_operator(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);

	(void)state;
	assert_non_null(elect_promote_refusal(&s->n[x].sm, local(s, x)));
	assert_non_null(elect_demote_refusal(&s->n[x].sm, local(s, x)));
	assert_null(elect_demote_refusal(&s->n[m].sm, local(s, m)));
	step_node(s, m, &(struct elect_event){.type = ELECT_EV_OPERATOR_DEMOTE});
	assert_false(s->n[m].promoted);
	assert_string_equal(s->n[m].demote_reason, "operator");
	sim_run_until(s, 5 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x);
}

/* SPEC §7, the token after the demote hook: an operator demote with a 2 s demote hook. The token is
 * handed on only when the hook has ended; the other side promotes after that, never beside it. */
static void test_slow_demote_hook(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);
	uint64_t t0 = s->now;

	(void)state;
	s->hook_len = 2 * SEC + elect_master_timeout(&s->base); /* longer than the holdoff */
	step_node(s, m, &(struct elect_event){.type = ELECT_EV_OPERATOR_DEMOTE});
	assert_false(s->n[m].promoted);
	assert_true(acting(s, m)); /* the hook runs */
	sim_run_until(s, t0 + s->hook_len - MS);
	no_failure(s);
	assert_int_equal(s->qd.holder, m); /* not released while the hook runs */
	assert_false(s->n[x].promoted);
	sim_run_until(s, t0 + 7 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x); /* and the demoted node does not take it back */
	assert_true(s->n[x].promoted_at >= t0 + s->hook_len);
	print_message("slow demote hook: %s promoted %llu ms after the operator demote\n", names[x],
		      (unsigned long long)((s->n[x].promoted_at - t0) / MS));
}

/* SPEC §7, a candidate without the quorum device blocks nobody: the master dies while the other
 * compartment's candidate is alive on the network but cannot reach the quorum device. A node that
 * can reach it takes over. */
static void test_candidate_without_qdev(void **state)
{
	struct sim *s = scenario(true, 3 * SEC);
	int m = current_master(s), x = other_side_candidate(m);
	uint64_t t0;

	(void)state;
	s->qd.reach[x] = false;
	sim_run_until(s, 5 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), m);
	t0 = s->now;
	crash_node(s, m);
	sim_run_until(s, t0 + 5 * SEC);
	no_failure(s);
	assert_true(current_master(s) >= 0);
	assert_int_not_equal(current_master(s), x);
	print_message("candidate without the quorum device: %s took over after %llu ms\n",
		      names[current_master(s)],
		      (unsigned long long)((s->n[current_master(s)].promoted_at - t0) / MS));
}

/* SPEC §7, a promise kept across restarts: majority mode; the master is cut off and the three other
 * nodes restart within 0.3 s. A promise given before a restart must hold after it: nobody else is
 * master while the isolated one may still act. */
static void test_majority_restart(void **state)
{
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct sim *s = &S;
		int m;
		uint64_t t0;

		(void)state;
		sim_init(s, seed, false);
		s->base.fence_timeout = 0; /* the restart alone, the watchdog does not help */
		for (int n = 0; n < NN; n++)
			push(s, (struct sev){.t = 1 + (uint64_t)n * 10 * MS,
					     .kind = SEV_RESTART,
					     .node = n});
		sim_run_until(s, 3 * SEC);
		m = current_master(s);
		assert_true(m >= 0);
		t0 = s->now + rng_range(&s->rng, 0, 200 * MS);
		push(s,
		     (struct sev){
			 .t = t0, .kind = SEV_LINK, .node = m, .from = -1, .seq = 3, .flag = true});
		for (int n = 0; n < NN; n++)
			if (n != m)
				push(s, (struct sev){.t = t0 + rng_range(&s->rng, 0, 300 * MS),
						     .kind = SEV_CRASH,
						     .node = n,
						     .at = rng_range(&s->rng, 1 * MS, 50 * MS)});
		sim_run_until(s, t0 + 4 * SEC);
		if (s->fail[0])
			print_error("seed %llu: %s\n", (unsigned long long)seed, s->fail);
		assert_string_equal(s->fail, "");
		assert_true(current_master(s) >= 0 && current_master(s) != m);
	}
}

static void test_majority(void **state)
{
	struct sim *s = scenario(false, 3 * SEC);
	int m = current_master(s);
	uint64_t t0 = s->now;

	(void)state;
	no_failure(s);
	assert_int_equal(m, 0);	 /* the best-ranked node of the pair */
	s->net.partition = true; /* 2 | 2: an even split elects nobody */
	sim_run_until(s, t0 + 5 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), -1);
	assert_true(s->last_master_at <= t0 + s->base.lease);
	s->net.partition = false;
	sim_run_until(s, t0 + 8 * SEC);
	no_failure(s);
	assert_true(current_master(s) >= 0);
	/* 3 of 4 still elect */
	m = current_master(s);
	crash_node(s, m);
	sim_run_until(s, t0 + 11 * SEC);
	no_failure(s);
	assert_true(current_master(s) >= 0);
}

/* A key of no node of the pair holds the token (a node removed from the configuration):
 * taken over once it could have lapsed, never before. */
static void test_foreign_holder(void **state)
{
	struct elect_params p = {.n_nodes = NN,
				 .self = 2,
				 .has_qdev = true,
				 .heartbeat_interval = 200 * MS,
				 .disk_heartbeat_interval = 250 * MS,
				 .lease = 500 * MS,
				 .io_timeout = SEC};
	struct elect sm;
	struct elect_actions out;
	uint64_t t = 10 * SEC, first = 0;
	int preempts = 0;

	(void)state;
	memcpy(p.side, sides, sizeof(sides));
	memcpy(p.rank, ranks, sizeof(ranks));
	elect_init(&sm, &p);
	elect_step(&sm, &(struct elect_event){.type = ELECT_EV_START, .eligible = true}, t, &out);
	elect_step(&sm, &(struct elect_event){.type = ELECT_EV_REGISTER_DONE}, t, &out);
	for (; t < 13 * SEC && !preempts; t += 125 * MS) {
		struct elect_event ev = {
		    .type = ELECT_EV_READ_DONE, .holder = ELECT_HOLDER_UNKNOWN, .registered = true};

		if (!first)
			first = t;
		elect_step(&sm, &ev, t, &out);
		for (int i = 0; i < out.n; i++)
			if (out.a[i].type == ELECT_ACT_QDEV_PREEMPT) {
				assert_int_equal(out.a[i].node, ELECT_HOLDER_UNKNOWN);
				assert_true(t - first > elect_master_timeout(&p));
				preempts++;
			}
	}
	assert_int_equal(preempts, 1);
}

/* The master's core health fails (SPEC §7, §8: leave election eligibility): it steps down
 * at once, hands the token back, the other compartment's candidate takes over, never two
 * masters; when its core is healthy again it comes back as slave (no preemption). */
static void core_failure_once(struct sim *s, bool qdev)
{
	int m = current_master(s), x = other_side_candidate(m);
	uint64_t t0 = s->now;

	assert_true(m >= 0);
	step_node(s, m, &(struct elect_event){.type = ELECT_EV_ELIGIBLE, .eligible = false});
	assert_false(s->n[m].promoted); /* stopped acting at once */
	assert_string_equal(s->n[m].demote_reason, "ineligible");
	sim_run_until(s, t0 + elect_master_timeout(&s->base) + 2 * SEC);
	no_failure(s);
	assert_int_equal(s->n[m].sm.role, ELECT_ROLE_NONE);
	assert_int_equal(current_master(s), x);
	print_message("core failure (qdev=%d): %s -> %s after %llu ms\n", qdev, names[m], names[x],
		      (unsigned long long)((s->n[x].promoted_at - t0) / MS));
	step_node(s, m, &(struct elect_event){.type = ELECT_EV_ELIGIBLE, .eligible = true});
	sim_run_until(s, s->now + 4 * SEC);
	no_failure(s);
	assert_int_equal(current_master(s), x);
	assert_int_equal(s->n[m].sm.role, ELECT_ROLE_SLAVE);
}

static void test_core_failure(void **state)
{
	(void)state;
	core_failure_once(scenario(true, 3 * SEC), true);
	core_failure_once(scenario(false, 3 * SEC), false);
	/* Lossy networks and quorum devices: safety in every one, a master in the end. */
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct sim *s = &S;

		sim_init(s, seed, seed % 3 != 0);
		s->base.external_heartbeats = seed % 2;
		s->net.drop = (unsigned)rng_range(&s->rng, 0, 80);
		s->net.slow = (unsigned)rng_range(&s->rng, 0, 100);
		for (int n = 0; n < NN; n++)
			push(s, (struct sev){.t = 1 + (uint64_t)n * 10 * MS,
					     .kind = SEV_RESTART,
					     .node = n});
		push(s, (struct sev){.t = 3 * SEC + rng_range(&s->rng, 0, SEC), .kind = SEV_CORE});
		push(s, (struct sev){.t = 7 * SEC, .kind = SEV_CORE, .flag = true});
		sim_run_until(s, 11 * SEC);
		if (s->fail[0])
			print_error("seed %llu: %s\n", (unsigned long long)seed, s->fail);
		assert_string_equal(s->fail, "");
		/* a master in the end: a lapse under drops is re-elected within the
		 * master timeout (which includes the watchdog's) */
		if (s->last_master_at + elect_master_timeout(&s->base) + 500 * MS < s->now)
			print_error("seed %llu: no master at the end\n", (unsigned long long)seed);
		assert_true(s->last_master_at + elect_master_timeout(&s->base) + 500 * MS >=
			    s->now);
	}
}

#define SCENARIO_TESTS                                                                             \
	cmocka_unit_test(test_candidates_by_rank), cmocka_unit_test(test_takeover_after_crash),    \
	    cmocka_unit_test(test_no_preemption_on_recovery),                                      \
	    cmocka_unit_test(test_partition_both_alive),                                           \
	    cmocka_unit_test(test_qdev_lost_network_intact), cmocka_unit_test(test_both_lost),     \
	    cmocka_unit_test(test_lease_from_acks_only),                                           \
	    cmocka_unit_test(test_reservation_conflict),                                           \
	    cmocka_unit_test(test_degraded_until_slave_answers), cmocka_unit_test(test_operator),  \
	    cmocka_unit_test(test_majority), cmocka_unit_test(test_slow_demote_hook),              \
	    cmocka_unit_test(test_candidate_without_qdev),                                         \
	    cmocka_unit_test(test_majority_restart), cmocka_unit_test(test_foreign_holder),        \
	    cmocka_unit_test(test_core_failure),

int main(void)
{
	const struct CMUnitTest tests[] = {SCENARIO_TESTS};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
