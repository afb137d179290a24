/* The election state machine (agent/elect.c) under random schedules of the simulator in
 * elect_sim.h: 10,000 per fault family with the quorum device, 2,501 without; and seeds
 * known to drive the schedules of SPEC §7's hardest cases (re-registration after a
 * preemption, disagreeing acknowledgements, slow demote hooks, a candidate without the
 * device, restarts in majority mode). ELECT_SIM_SEED, ELECT_SIM_SCHEDULES,
 * ELECT_SIM_TRACE, ELECT_SIM_KEEP_GOING, ELECT_SIM_NO_WATCHDOG: see docs/election.md. */
#include "elect_sim.h"

static void test_random_qdev(void **state)
{
	(void)state;
	run_random(true, FAM_CLASSIC, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_links(void **state)
{
	(void)state;
	run_random(true, FAM_LINKS, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_hooks(void **state)
{
	(void)state;
	run_random(true, FAM_HOOKS, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_pause(void **state)
{
	(void)state;
	run_random(true, FAM_PAUSE, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_vm(void **state)
{
	(void)state;
	run_random(true, FAM_VM, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_lasting(void **state)
{
	(void)state;
	run_random(true, FAM_LASTING, env_u64("ELECT_SIM_SCHEDULES", 10000),
		   env_u64("ELECT_SIM_SEED", 1));
}

static void test_random_majority_pause(void **state)
{
	(void)state;
	run_random(false, FAM_PAUSE, env_u64("ELECT_SIM_SCHEDULES", 10000) / 4 + 1,
		   env_u64("ELECT_SIM_SEED", 1) + 1000000);
}

static void test_random_majority(void **state)
{
	(void)state;
	run_random(false, FAM_CLASSIC, env_u64("ELECT_SIM_SCHEDULES", 10000) / 4 + 1,
		   env_u64("ELECT_SIM_SEED", 1) + 1000000);
}

static void test_random_majority_links(void **state)
{
	(void)state;
	run_random(false, FAM_LINKS, env_u64("ELECT_SIM_SCHEDULES", 10000) / 4 + 1,
		   env_u64("ELECT_SIM_SEED", 1) + 1000000);
}

/* Seeds that drive SPEC §7's hardest cases, by family. */
static void test_hard_seeds(void **state)
{
	static const struct {
		uint64_t seed;
		enum family fam;
	} seeds[] = {
	    {954, FAM_CLASSIC}, /* case 1: preempted during its claim, re-registers, promotes */
	    {82, FAM_CLASSIC},	/* case 3: lease lapse, the demote hook still runs */
	    {1, FAM_HOOKS},	/* case 3: slow hooks */
	    {3049, FAM_LINKS},	/* case 2: acks through a slave the taker thinks dead */
	    {9997, FAM_LINKS},	/* case 2, from the holder's compartment mate */
	};
	static struct sim sim;

	(void)state;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		if (run_schedule(&sim, seeds[i].seed, true, seeds[i].fam, 12 * SEC) < 0)
			print_error("seed %llu (%s): %s\n", (unsigned long long)seeds[i].seed,
				    fam_names[seeds[i].fam], sim.fail);
		assert_string_equal(sim.fail, "");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hard_seeds),
	    cmocka_unit_test(test_random_qdev),
	    cmocka_unit_test(test_random_links),
	    cmocka_unit_test(test_random_hooks),
	    cmocka_unit_test(test_random_pause),
	    cmocka_unit_test(test_random_vm),
	    cmocka_unit_test(test_random_lasting),
	    cmocka_unit_test(test_random_majority),
	    cmocka_unit_test(test_random_majority_links),
	    cmocka_unit_test(test_random_majority_pause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
