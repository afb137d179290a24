/* The election state machine (agent/election/elect.c) in the simulator of elect_sim.h: a
 * candidate whose NIC flaps while it is on its way to mastership (SPEC §7: a preempted node
 * does not get back in). The master dies; the other compartment's candidate takes the
 * token and, in a chosen phase of its claim, loses network and quorum device; the dead
 * master's compartment mate preempts it and is promoted (or, when the cut came before the
 * PREEMPT reached the device, whichever node may take the dead master's token does). Then the
 * network returns first and the quorum device later, as with the real driver, whose iSCSI session
 * is re-established (and re-registers the key) only after a reconnect delay and a login, while
 * heartbeats arrive at once. The flapped node must neither promote nor write a claim that knocks
 * the new master down (an epoch above the master's); the new master stays master, once. The same
 * schedule in tests/integration/58-elect-claim-flap.sh runs the real agents. */
#include "elect_sim.h"

static struct sim S;

static struct sim *started(uint64_t seed, uint64_t until)
{
	struct sim *s = &S;

	sim_init(s, seed, true);
	for (int n = 0; n < NN; n++)
		push(s,
		     (struct sev){.t = 1 + (uint64_t)n * 10 * MS, .kind = SEV_RESTART, .node = n});
	sim_run_until(s, until);
	return s;
}

static void cut_node(struct sim *s, int n, bool cut)
{
	note_fault(s); /* a fault: the liveness check judges calm windows only */
	for (int m = 0; m < NN; m++)
		if (m != n)
			s->net.cut[n][m] = s->net.cut[m][n] = cut;
}

/* Runs until node n is in phase ph, at most `bound`; false if it never got there. */
static bool run_to_phase(struct sim *s, int n, enum elect_phase ph, uint64_t bound)
{
	uint64_t end = s->now + bound;

	while (s->now < end && !s->fail[0]) {
		if (s->n[n].sm.phase == ph)
			return true;
		sim_run_until(s, s->now + 200);
	}
	return false;
}

/* One schedule: the cut lands when the other compartment's candidate reaches `ph`; the
 * network returns after `cut`, the quorum device `dev_later` after that. Returns whether
 * it went as it must (else it says why). */
static bool flap(uint64_t seed, enum elect_phase ph, uint64_t cut, uint64_t dev_later)
{
	struct sim *s = started(seed, 3 * SEC);
	int m = current_master(s), x = sides[m] == 0 ? 2 : 0, t;
	uint64_t t_epoch;

	assert_true(m >= 0);
	crash_node(s, m);
	if (!run_to_phase(s, x, ph, 5 * SEC)) {
		print_error("seed %llu: %s never reached phase %s\n", (unsigned long long)seed,
			    names[x], elect_phase_to_str(ph));
		return false;
	}
	cut_node(s, x, true);
	s->qd.reach[x] = false;
	sim_run_until(s, s->now + cut);
	/* the mate of the dead master; or, when the cut came before x's PREEMPT reached the
	 * device (the dead master still holds the token), x's mate may take it */
	t = current_master(s);
	if (t < 0 || t == x || s->fail[0]) {
		print_error("seed %llu, phase %s: nobody took over (%s)\n",
			    (unsigned long long)seed, elect_phase_to_str(ph), s->fail);
		return false;
	}
	t_epoch = s->n[t].sm.master_epoch;
	cut_node(s, x, false);
	sim_run_until(s, s->now + dev_later);
	s->qd.reach[x] = true;
	sim_run_until(s, s->now + 4 * SEC);
	for (int n = 0; n < NN; n++)
		if (s->n[n].up && s->n[n].sm.epoch > t_epoch)
			snprintf(s->fail + strlen(s->fail), sizeof(s->fail) - strlen(s->fail),
				 "%s saw epoch %llu; ", names[n],
				 (unsigned long long)s->n[n].sm.epoch);
	if (s->fail[0] || current_master(s) != t || s->n[t].sm.master_epoch != t_epoch ||
	    s->n[t].demote_reason || s->n[x].promoted) {
		print_error("seed %llu, phase %s: master %s, %s (epoch %llu) demoted: %s; %s\n",
			    (unsigned long long)seed, elect_phase_to_str(ph),
			    current_master(s) >= 0 ? names[current_master(s)] : "-", names[t],
			    (unsigned long long)t_epoch,
			    s->n[t].demote_reason ? s->n[t].demote_reason : "no", s->fail);
		return false;
	}
	return true;
}

static const enum elect_phase phases[] = {ELECT_PHASE_ACQUIRE, ELECT_PHASE_CHECK, ELECT_PHASE_CLAIM,
					  ELECT_PHASE_VERIFY};

static void flaps(uint64_t dev_later)
{
	int bad = 0, runs = 0;

	for (uint64_t seed = 1; seed <= 100; seed++)
		for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++, runs++)
			bad += !flap(seed, phases[i], 4 * SEC, dev_later);
	print_message("%d of %d schedules went wrong\n", bad, runs);
	assert_int_equal(bad, 0);
}

/* The device back 400 ms after the network (the driver reconnects after 300 ms). */
static void test_flap_device_late(void **state)
{
	(void)state;
	flaps(400 * MS);
}

/* Network and device back together. */
static void test_flap_together(void **state)
{
	(void)state;
	flaps(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flap_device_late),
	    cmocka_unit_test(test_flap_together),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
