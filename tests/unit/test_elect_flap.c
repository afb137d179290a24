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
	uint64_t only = env_u64("ELECT_SIM_SEED", 0); /* one seed, to trace it */

	for (uint64_t seed = only ? only : 1; seed <= (only ? only : 100); seed++)
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

/* ---- a stale read answer (SPEC §7: commands unanswered after io_timeout are given up) ---- */

static int reads_in(const struct elect_actions *out, uint64_t *seq)
{
	int k = 0;

	for (int i = 0; i < out->n; i++)
		if (out->a[i].type == ELECT_ACT_QDEV_READ) {
			k++;
			*seq = out->a[i].seq;
		}
	return k;
}

/* The state machine gave up on a read (io_timeout) and sent the next one; the first one's
 * answer comes late (the driver answers queued commands at their deadline, which falls
 * about when the state machine gives up). That late answer must not count as the answer
 * of the read outstanding now: otherwise a third read goes out, the second one's answer is
 * stale in turn, and so on for ever: no read is ever "current", so neither the check after
 * taking the token nor a master's lease renewal is ever confirmed (a node stuck in phase
 * check, seen with real agents in tests/integration/58-elect-claim-flap.sh). */
static void test_stale_read_answer(void **state)
{
	struct elect_params p = {.n_nodes = NN,
				 .self = 2,
				 .has_qdev = true,
				 .heartbeat_interval = 200 * MS,
				 .disk_heartbeat_interval = 250 * MS,
				 .lease = 500 * MS,
				 .io_timeout = SEC,
				 .external_heartbeats = true};
	struct elect sm;
	struct elect_actions out;
	struct elect_event ev = {.type = ELECT_EV_START, .eligible = true};
	uint64_t t = 10 * SEC, first = 0, second = 0, third = 0;

	(void)state;
	memcpy(p.side, sides, sizeof(sides));
	memcpy(p.rank, ranks, sizeof(ranks));
	elect_init(&sm, &p);
	assert_int_equal(elect_step(&sm, &ev, t, &out), 0);
	assert_int_equal(reads_in(&out, &first), 1);
	/* unanswered: given up after io_timeout, the next read goes out */
	ev = (struct elect_event){.type = ELECT_EV_TIMER};
	for (uint64_t now = t + 10 * MS; now <= t + SEC + 100 * MS && !second; now += 10 * MS) {
		assert_int_equal(elect_step(&sm, &ev, now, &out), 0);
		if (reads_in(&out, &second) == 0)
			second = 0;
	}
	assert_true(second > first);
	/* the first read's answer, late */
	ev = (struct elect_event){
	    .type = ELECT_EV_READ_DONE, .seq = first, .io = ELECT_IO_ERROR, .holder = -1};
	assert_int_equal(elect_step(&sm, &ev, t + SEC + 110 * MS, &out), 0);
	assert_int_equal(reads_in(&out, &third), 0);
	ev = (struct elect_event){.type = ELECT_EV_TIMER};
	for (uint64_t now = t + SEC + 120 * MS; now < t + SEC + 500 * MS; now += 10 * MS) {
		assert_int_equal(elect_step(&sm, &ev, now, &out), 0);
		if (reads_in(&out, &third))
			print_error("read %llu sent while read %llu is outstanding\n",
				    (unsigned long long)third, (unsigned long long)second);
		assert_int_equal(reads_in(&out, &third), 0);
	}
	/* the second read's answer is the current one: it ends the outstanding read, and the
	 * next one goes out when due */
	ev = (struct elect_event){.type = ELECT_EV_READ_DONE,
				  .seq = second,
				  .io = ELECT_IO_OK,
				  .holder = ELECT_HOLDER_NONE,
				  .registered = true};
	assert_int_equal(elect_step(&sm, &ev, t + SEC + 500 * MS, &out), 0);
	assert_int_equal(sm.last_read_ok, t + SEC + 500 * MS);
	assert_true(!sm.rd_busy || sm.rd_seq > second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flap_device_late),
	    cmocka_unit_test(test_flap_together),
	    cmocka_unit_test(test_stale_read_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
