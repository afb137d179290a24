/* The quorum-device driver against a real tgtd on 127.0.0.1 (its own iSCSI and control
 * ports): registrations, the Write Exclusive – Registrants Only reservation, a conflict
 * on a preempted node's write, PREEMPT, RELEASE, slots round-tripping, portal failover.
 * Skipped (not failed) only when tgtd is not installed. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "qdev.h"
#include "util.h"

#define TGTD "/usr/sbin/tgtd"
#define TGTADM "/usr/sbin/tgtadm"
#define IQN "iqn.2026-11.org.compartd.test:quorum"

static pid_t tgtd_pid;
static int port, ctl_port;
static char dir[64];

struct answer {
	bool done;
	enum qdev_status st;
	struct qdev_view view;
};

static void on_done(struct qdev *q, enum qdev_op op, enum qdev_status st, uint64_t tag,
		    const struct qdev_view *view, void *ud)
{
	struct answer *a = ud;

	(void)q;
	(void)op;
	(void)tag;
	a->done = true;
	a->st = st;
	if (view)
		a->view = *view;
}

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int start_tgtd(void **state)
{
	char portal[64], ctl[16];

	(void)state;
	if (access(TGTD, X_OK) != 0)
		return 0;
	port = 23400 + (getpid() % 200) * 2;
	ctl_port = port + 1;
	snprintf(dir, sizeof(dir), "/tmp/test_qdev.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (sh("truncate -s 1M %s/q.img", dir) != 0)
		return -1;
	snprintf(portal, sizeof(portal), "portal=127.0.0.1:%d", port);
	snprintf(ctl, sizeof(ctl), "%d", ctl_port);
	tgtd_pid = fork();
	if (tgtd_pid == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(TGTD, "tgtd", "-f", "-C", ctl, "--iscsi", portal, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 50; i++) {
		if (sh(TGTADM " -C %d --lld iscsi --mode target --op show >/dev/null 2>&1",
		       ctl_port) == 0)
			break;
		usleep(100000);
	}
	if (sh(TGTADM " -C %d --lld iscsi --mode target --op new --tid 1 --targetname " IQN,
	       ctl_port) != 0 ||
	    sh(TGTADM " -C %d --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 "
		      "--backing-store %s/q.img",
	       ctl_port, dir) != 0 ||
	    sh(TGTADM " -C %d --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL",
	       ctl_port) != 0)
		return -1;
	return 0;
}

static int stop_tgtd(void **state)
{
	(void)state;
	if (tgtd_pid > 0) {
		kill(tgtd_pid, SIGKILL); /* tgtd ignores SIGTERM while it has targets */
		waitpid(tgtd_pid, NULL, 0);
	}
	if (dir[0])
		sh("rm -rf %s", dir);
	return 0;
}

static struct qdev *client(struct loop *l, const char *name, int slot, bool bad_first,
			   struct answer *a)
{
	struct qdev_config c = {.lun = 1,
				.n_slots = 4,
				.self_slot = slot,
				.io_timeout = 2 * USEC_PER_SEC,
				.isid = (uint32_t)slot + 1};
	struct qdev *q = NULL;

	snprintf(c.initiator, sizeof(c.initiator), "iqn.2026-11.org.compartd:test.%s", name);
	snprintf(c.target, sizeof(c.target), "%s", IQN);
	if (bad_first)
		snprintf(c.portals[c.n_portals++], sizeof(c.portals[0]), "127.0.0.1:%d",
			 port + 100);
	snprintf(c.portals[c.n_portals++], sizeof(c.portals[0]), "127.0.0.1:%d", port);
	c.key = qdev_key_derive("test", name, "infra");
	assert_int_equal(qdev_new(l, &c, on_done, a, &q), 0);
	return q;
}

static enum qdev_status run(struct loop *l, struct qdev *q, struct answer *a, enum qdev_op op,
			    const struct qdev_slot *slot, uint64_t victim)
{
	uint64_t until = now_usec() + 10 * USEC_PER_SEC;

	a->done = false;
	assert_int_equal(qdev_submit(q, op, 7, slot, victim), 0);
	assert_false(a->done); /* never answered from inside submit */
	while (!a->done && now_usec() < until)
		loop_iterate(l, now_usec() + 100 * USEC_PER_MSEC);
	assert_true(a->done);
	return a->st;
}

/* Waits for the session (the first commands may fail while logging in). */
static void wait_up(struct loop *l, struct qdev *q)
{
	uint64_t until = now_usec() + 10 * USEC_PER_SEC;

	while (!qdev_connected(q) && now_usec() < until)
		loop_iterate(l, now_usec() + 50 * USEC_PER_MSEC);
	assert_true(qdev_connected(q));
}

static void test_reservation(void **state)
{
	struct loop *l = loop_new();
	struct answer aa = {0}, ab = {0};
	struct qdev *a, *b;
	uint64_t ka = qdev_key_derive("test", "a1", "infra"),
		 kb = qdev_key_derive("test", "b1", "infra");
	struct qdev_slot sa = {.node = 0, .seq = 11, .epoch = 3, .role = 3, .boot_id = {1, 2, 3}};
	struct qdev_slot sb = {.node = 2, .seq = 22, .epoch = 3, .role = 2, .boot_id = {9}};

	(void)state;
	if (tgtd_pid <= 0)
		skip();
	a = client(l, "a1", 0, false, &aa);
	b = client(l, "b1", 2, true, &ab); /* its first portal refuses: fails over */
	wait_up(l, a);
	wait_up(l, b);
	assert_string_equal(qdev_portal(b), qdev_portal(a));

	assert_int_equal(run(l, a, &aa, QDEV_OP_REGISTER, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_REGISTER, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_false(aa.view.reserved);
	assert_true(aa.view.registered);
	assert_int_equal(aa.view.n_keys, 2);

	/* a takes the token; b cannot */
	assert_int_equal(run(l, a, &aa, QDEV_OP_RESERVE, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_RESERVE, NULL, 0), QDEV_CONFLICT);
	assert_int_equal(run(l, b, &ab, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_true(ab.view.reserved);
	assert_true(ab.view.holder_key == ka);
	assert_int_equal(ab.view.pr_type, 5); /* Write Exclusive – Registrants Only */

	/* both registrants write their slots, and read each other's */
	assert_int_equal(run(l, a, &aa, QDEV_OP_WRITE, &sa, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_WRITE, &sb, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_true(ab.view.slots[0].valid);
	assert_true(ab.view.slots[0].seq == 11 && ab.view.slots[0].epoch == 3 &&
		    ab.view.slots[0].role == 3 && ab.view.slots[0].boot_id[2] == 3);
	assert_true(ab.view.slots[2].valid && ab.view.slots[2].seq == 22);
	assert_false(ab.view.slots[1].valid);

	/* b preempts a: the token moves, a's key is gone, a's write conflicts */
	assert_int_equal(run(l, b, &ab, QDEV_OP_PREEMPT, NULL, ka), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_WRITE, &sa, 0), QDEV_CONFLICT);
	assert_int_equal(run(l, a, &aa, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_true(aa.view.reserved && aa.view.holder_key == kb);
	assert_false(aa.view.registered);
	/* preempting a key that is not registered is refused */
	assert_int_equal(run(l, b, &ab, QDEV_OP_PREEMPT, NULL, ka), QDEV_CONFLICT);

	/* a registers again (a slave may write its slot), cannot take the token */
	assert_int_equal(run(l, a, &aa, QDEV_OP_REGISTER, NULL, 0), QDEV_OK);
	sa.seq = 12;
	assert_int_equal(run(l, a, &aa, QDEV_OP_WRITE, &sa, 0), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_RESERVE, NULL, 0), QDEV_CONFLICT);

	/* b releases; a takes it */
	assert_int_equal(run(l, b, &ab, QDEV_OP_RELEASE, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_RESERVE, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_true(ab.view.holder_key == ka);
	assert_true(ab.view.slots[0].seq == 12);

	/* a's node restarts: a new session with the same initiator name, ISID and key is
	 * still the holder (it can release) and a registrant (it can write) */
	qdev_free(a);
	a = client(l, "a1", 0, false, &aa);
	wait_up(l, a);
	assert_int_equal(run(l, a, &aa, QDEV_OP_REGISTER, NULL, 0), QDEV_OK);
	sa.seq = 13;
	assert_int_equal(run(l, a, &aa, QDEV_OP_WRITE, &sa, 0), QDEV_OK);
	print_message("reserve by the new session: %s\n",
		      qdev_status_to_str(run(l, a, &aa, QDEV_OP_RESERVE, NULL, 0)));
	/* PREEMPT of its own key moves the reservation to the new session */
	assert_int_equal(run(l, a, &aa, QDEV_OP_PREEMPT, NULL, ka), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_READ, NULL, 0), QDEV_OK);
	assert_true(aa.view.registered && aa.view.holder_key == ka);
	assert_int_equal(run(l, a, &aa, QDEV_OP_RESERVE, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, a, &aa, QDEV_OP_RELEASE, NULL, 0), QDEV_OK);
	assert_int_equal(run(l, b, &ab, QDEV_OP_RESERVE, NULL, 0), QDEV_OK);

	qdev_free(a);
	qdev_free(b);
	loop_free(l);
}

/* Nothing listens: every command is answered with an error in bounded time. */
static void test_unreachable(void **state)
{
	struct loop *l = loop_new();
	struct answer a = {0};
	struct qdev_config c = {
	    .lun = 1, .n_slots = 2, .self_slot = 1, .io_timeout = 300000, .key = 5, .n_portals = 1};
	struct qdev *q = NULL;
	uint64_t t0 = now_usec();

	(void)state;
	snprintf(c.initiator, sizeof(c.initiator), "iqn.2026-11.org.compartd:test.x");
	snprintf(c.target, sizeof(c.target), "%s", IQN);
	snprintf(c.portals[0], sizeof(c.portals[0]), "127.0.0.1:9");
	assert_int_equal(qdev_new(l, &c, on_done, &a, &q), 0);
	assert_int_equal(run(l, q, &a, QDEV_OP_READ, NULL, 0), QDEV_ERROR);
	assert_true(now_usec() - t0 < 3 * USEC_PER_SEC);
	qdev_free(q);
	loop_free(l);
}

static void test_slot_codec(void **state)
{
	struct qdev_slot s = {.node = 3, .seq = 1ULL << 40, .epoch = 9, .role = 2}, d;
	uint8_t buf[QDEV_BLOCK], ck[32], k[QDEV_MAC_KEY], k_admin[QDEV_MAC_KEY],
	    other[QDEV_MAC_KEY];

	(void)state;
	memset(ck, 0x42, sizeof(ck));
	assert_int_equal(qdev_mac_key_derive(ck, 0, k), 0);
	assert_int_equal(qdev_mac_key_derive(ck, 1, k_admin), 0);
	assert_memory_not_equal(k, k_admin, sizeof(k));
	ck[0] ^= 1;
	assert_int_equal(qdev_mac_key_derive(ck, 0, other), 0);
	memset(s.boot_id, 0xab, sizeof(s.boot_id));
	qdev_slot_encode(k, &s, buf);
	assert_int_equal(qdev_slot_decode(k, buf, sizeof(buf), &d), 0);
	assert_true(d.valid && d.node == 3 && d.seq == 1ULL << 40 && d.epoch == 9 && d.role == 2);
	assert_memory_equal(d.boot_id, s.boot_id, sizeof(s.boot_id));
	/* sealed with another cluster's key, or for the other instance kind: rejected */
	assert_int_equal(qdev_slot_decode(other, buf, sizeof(buf), &d), -EBADMSG);
	assert_int_equal(qdev_slot_decode(k_admin, buf, sizeof(buf), &d), -EBADMSG);
	/* a forger without the key: a well-formed slot saying master with a higher epoch,
	 * hashed as the unkeyed format did */
	s.role = 3;
	s.epoch = 1000;
	qdev_slot_encode(other, &s, buf);
	assert_int_equal(qdev_slot_decode(k, buf, sizeof(buf), &d), -EBADMSG);
	assert_false(d.valid);
	qdev_slot_encode(k, &s, buf);
	buf[40] ^= 1; /* a flipped bit in the epoch */
	assert_int_equal(qdev_slot_decode(k, buf, sizeof(buf), &d), -EBADMSG);
	assert_false(d.valid);
	memset(buf, 0, sizeof(buf)); /* a never-written slot */
	assert_int_equal(qdev_slot_decode(k, buf, sizeof(buf), &d), -EBADMSG);
	assert_int_equal(qdev_slot_decode(k, buf, 10, &d), -EBADMSG);
	assert_true(qdev_key_derive("c", "a1", "infra") != qdev_key_derive("c", "a1", "admin"));
	assert_true(qdev_key_derive("c", "a1", "infra") != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slot_codec),
	    cmocka_unit_test(test_reservation),
	    cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, start_tgtd, stop_tgtd);
}
