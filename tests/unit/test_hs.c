/* The handshake driver with real UDP sockets on loopback (127.0.3.x): three instances
 * (a1, a2, and b1 with another key) on one loop. Contact and RTT, heartbeats with the
 * provider's content, acknowledgements and their send times, queries, external-interface
 * liveness, the quorum-device input, loss, and drops of the wrong-key node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "health.h"
#include "hs.h"
#include "log.h"
#include "node_env.h"

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

struct rec {
	struct hs *hs;
	int contacted[4], lost[4];
	uint64_t hb_seq, ack_seq, ack_sent_at;
	uint64_t epoch0;
	int hb_from;
	char query[64], reply[64];
};

static struct cfg *load(void)
{
	static struct cfg_override o[12];
	static const char *const names[] = {"a1", "a2", "b1", "b2"};
	int n = 0;
	for (int i = 0; i < 4; i++) {
		o[n] = (struct cfg_override){.key = "handshake"};
		snprintf(o[n].section, sizeof(o[n].section), "node.%s", names[i]);
		snprintf(o[n++].value, sizeof(o[0].value), "127.0.3.%d", 11 + i);
		o[n] = (struct cfg_override){.key = "external"};
		snprintf(o[n].section, sizeof(o[n].section), "node.%s", names[i]);
		snprintf(o[n++].value, sizeof(o[0].value), "127.0.4.%d", 11 + i);
	}
	o[n] = (struct cfg_override){.section = "cluster", .key = "port"};
	snprintf(o[n++].value, sizeof(o[0].value), "%d", 20000 + getpid() % 20000);
	o[n++] = (struct cfg_override){"timeouts", "handshake_timeout", "50ms"};
	o[n++] = (struct cfg_override){"timeouts", "heartbeat_interval", "20ms"};
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	int r = cfg_load(SRCDIR "/images/rig/cluster.conf", o, (size_t)n, &c, &err);
	if (r < 0)
		fail_msg("%s", err.buf);
	sb_free(&err);
	return c;
}

static void on_contact(int node, bool contacted, void *ud)
{
	struct rec *r = ud;
	if (contacted)
		r->contacted[node]++;
	else
		r->lost[node]++;
}

static void on_hb(const struct hs_msg *m, int from, void *ud)
{
	struct rec *r = ud;
	r->hb_seq = m->hb.seq;
	r->hb_from = from;
	r->epoch0 = m->hb.epoch[0];
	hs_send_heartbeat_ack(r->hs, from, m->hb.seq);
}

static void on_ack(const struct hs_msg *m, int from, void *ud)
{
	struct rec *r = ud;
	r->ack_seq = m->ack_seq;
	r->ack_sent_at = hs_heartbeat_sent_at(r->hs, m->ack_seq);
}

static void on_query(const struct hs_msg *m, int from, void *ud)
{
	struct rec *r = ud;
	snprintf(r->query, sizeof(r->query), "%.*s", (int)m->blob.len, m->blob.data);
	hs_send(r->hs, from, HS_MSG_QUERY_REPLY, "answer", 6);
}

static void on_reply(const struct hs_msg *m, int from, void *ud)
{
	struct rec *r = ud;
	snprintf(r->reply, sizeof(r->reply), "%.*s", (int)m->blob.len, m->blob.data);
}

static void fill(struct hs_heartbeat *hb, void *ud)
{
	hb->epoch[0] = 5;
	hb->epoch[1] = 6;
	hb->role[0] = 1;
}

static int qdev(int node, void *ud)
{
	return node == 2 ? 1 : node == 3 ? 7 : 0;
}

/* Runs the loop until cond() holds or 3 s pass. */
#define RUN_UNTIL(l, cond)                                                                         \
	do {                                                                                       \
		uint64_t _end = now_usec() + 3 * USEC_PER_SEC;                                     \
		while (!(cond) && now_usec() < _end)                                               \
			loop_iterate(l, now_usec() + 10 * USEC_PER_MSEC);                          \
		assert_true(cond);                                                                 \
	} while (0)

static void two_nodes_talk(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	struct cfg *c = load();
	struct loop *l = loop_new();
	uint8_t key[HS_KEY_BYTES], other[HS_KEY_BYTES], boot[3][HS_BOOT_ID_BYTES];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	randombytes_buf(boot, sizeof(boot));
	struct rec ra = {0}, rb = {0};
	struct hs *b1 = NULL;
	assert_int_equal(hs_new(l, c, 0, boot[0], key, &ra.hs), 0);
	assert_int_equal(hs_new(l, c, 1, boot[1], key, &rb.hs), 0);
	assert_int_equal(hs_new(l, c, 2, boot[2], other, &b1), 0);
	hs_set_contact_fn(ra.hs, on_contact, &ra);
	hs_set_heartbeat_fn(ra.hs, fill, NULL);
	assert_int_equal(hs_subscribe(rb.hs, HS_MSG_HEARTBEAT, on_hb, &rb), 0);
	assert_int_equal(hs_subscribe(ra.hs, HS_MSG_HEARTBEAT_ACK, on_ack, &ra), 0);
	assert_int_equal(hs_subscribe(rb.hs, HS_MSG_QUERY, on_query, &rb), 0);
	assert_int_equal(hs_subscribe(ra.hs, HS_MSG_QUERY_REPLY, on_reply, &ra), 0);
	assert_int_equal(hs_subscribe(ra.hs, HS_MSG_HELLO, on_reply, &ra), -EINVAL);

	RUN_UNTIL(l, hs_peer_contacted(ra.hs, 1) && hs_peer_contacted(rb.hs, 0));
	assert_int_equal(ra.contacted[1], 1);
	assert_true(hs_peer_rtt(ra.hs, 1) < 50 * USEC_PER_MSEC);
	assert_true(hs_peer_last_heard(ra.hs, 1) > 0);
	assert_int_equal(hs_contacted_count(ra.hs), 1);

	/* heartbeats a1 -> a2 with the provider's content, acknowledged with their seq */
	RUN_UNTIL(l, ra.ack_seq > 0);
	assert_int_equal(rb.hb_from, 0);
	assert_int_equal(rb.epoch0, 5);
	assert_true(ra.ack_sent_at > 0 && ra.ack_sent_at <= now_usec());
	assert_int_equal(hs_heartbeat_sent_at(ra.hs, 1ULL << 50), 0);
	uint64_t at = 0;
	const struct hs_heartbeat *hb = hs_peer_heartbeat(rb.hs, 0, &at);
	assert_non_null(hb);
	assert_int_equal(hb->epoch[1], 6);
	assert_true(at > 0);
	/* the profile and mgmt_running advertised reach the peer */
	hs_set_local(ra.hs, 2, true);
	RUN_UNTIL(l, hs_peer_mgmt_running(rb.hs, 0) && hs_peer_profile(rb.hs, 0) == 2);

	/* queries */
	assert_int_equal(hs_send(ra.hs, 1, HS_MSG_QUERY, "status", 6), 0);
	RUN_UNTIL(l, ra.reply[0]);
	assert_string_equal(rb.query, "status");
	assert_string_equal(ra.reply, "answer");
	static uint8_t big[HS_BLOB_MAX + 1];
	assert_int_equal(hs_send(ra.hs, 1, HS_MSG_QUERY, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(hs_send(ra.hs, 0, HS_MSG_QUERY, "x", 1), -EINVAL); /* self */
	assert_int_equal(hs_send(ra.hs, 9, HS_MSG_QUERY, "x", 1), -EINVAL);
	assert_int_equal(hs_send(ra.hs, 1, HS_MSG_HEARTBEAT, "x", 1), -EINVAL);

	/* b1 has another key: never contacted, its datagrams counted as bad-tag; b2 is not
	 * running: its external interface is judged dead */
	RUN_UNTIL(l, hs_drops(ra.hs, HS_DROP_BAD_TAG) > 0 && hs_peer_external_alive(ra.hs, 3) == 0);
	assert_false(hs_peer_contacted(ra.hs, 2));
	assert_true(hs_peer_drops(ra.hs, 2) > 0);
	assert_int_equal(hs_peer_external_alive(ra.hs, 1), -1); /* contacted: not probed */

	/* quorum-device input: unknown without a provider, anything but 0/1 is unknown */
	assert_int_equal(hs_peer_qdev_alive(ra.hs, 2), -1);
	hs_set_qdev_alive_fn(ra.hs, qdev, NULL);
	assert_int_equal(hs_peer_qdev_alive(ra.hs, 2), 1);
	assert_int_equal(hs_peer_qdev_alive(ra.hs, 3), -1);
	assert_int_equal(hs_peer_qdev_alive(ra.hs, 1), 0);

	/* a2 goes away: lost after three unanswered HELLOs */
	rb.hs = hs_free(rb.hs);
	RUN_UNTIL(l, !hs_peer_contacted(ra.hs, 1));
	assert_int_equal(ra.lost[1], 1);
	assert_int_equal(hs_contacted_count(ra.hs), 0);

	/* a2 comes back with a new boot: contacted again, its old boot is refused */
	uint8_t boot2[HS_BOOT_ID_BYTES];
	randombytes_buf(boot2, sizeof(boot2));
	assert_int_equal(hs_new(l, c, 1, boot2, key, &rb.hs), 0);
	RUN_UNTIL(l, hs_peer_contacted(ra.hs, 1));
	assert_int_equal(ra.contacted[1], 2);

	hs_free(b1);
	hs_free(rb.hs);
	hs_free(ra.hs);
	loop_free(l);
	cfg_free(c);
}

static void bind_failure_is_reported(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	struct cfg *c = load();
	struct loop *l = loop_new();
	uint8_t key[HS_KEY_BYTES] = {1}, boot[HS_BOOT_ID_BYTES] = {2};
	struct hs *a = NULL, *b = NULL;
	assert_int_equal(hs_new(l, c, 0, boot, key, &a), 0);
	assert_int_equal(hs_new(l, c, 0, boot, key, &b), -EADDRINUSE); /* the address is taken */
	assert_null(b);
	/* the wiring's check says the same without logging, and binds nothing */
	struct strbuf why;
	sb_init(&why);
	assert_int_equal(hs_bind_check(c, 0, &why), -EADDRINUSE);
	assert_non_null(strstr(why.buf, "cannot bind 127.0.3.11:"));
	assert_non_null(strstr(why.buf, ": Address already in use"));
	hs_free(a);
	sb_reset(&why);
	assert_int_equal(hs_bind_check(c, 0, &why), 0);
	assert_int_equal(hs_bind_check(c, 0, &why), 0); /* the check released the sockets */
	/* an address no interface holds (TEST-NET-1): not assigned yet */
	memcpy(&((struct sockaddr_in *)&c->nodes[1].handshake.ss)->sin_addr, "\xc0\x00\x02\x01", 4);
	sb_reset(&why);
	assert_int_equal(hs_bind_check(c, 1, &why), -EADDRNOTAVAIL);
	assert_non_null(strstr(why.buf, "cannot bind 192.0.2.1:"));
	sb_free(&why);
	loop_free(l);
	cfg_free(c);
}

/* 24 nodes in pairs of 4 (two compartments of 2) on 127.0.6.x (external: 127.0.7.x when
 * asked), handshake window 1 s. */
static struct cfg *load_24(bool external)
{
	char cwd[512];
	struct strbuf b, err;
	struct cfg *c = NULL;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	sb_init(&b);
	sb_init(&err);
	sb_printf(&b,
		  "[cluster]\nname = t\nkey_file = %s/images/rig/cluster.key\n"
		  "rules = %s/rules/boot.rules\nport = %d\n\n[quorum]\nmode = none\n",
		  cwd, cwd, 20000 + (getpid() + 7) % 20000);
	for (int i = 0; i < 6; i++)
		sb_printf(&b,
			  "\n[pair p%d]\n\n[compartment p%da]\nzone = mz\npair = p%d\n"
			  "\n[compartment p%db]\nzone = dmz\npair = p%d\n",
			  i, i, i, i, i);
	for (int i = 0; i < 24; i++) {
		sb_printf(&b,
			  "\n[node n%d]\ncompartment = p%d%c\npriority = %d\nmgmt_capable = %s\n"
			  "handshake = 127.0.6.%d\n",
			  i + 1, i / 4, i / 2 % 2 ? 'b' : 'a', 100 + i, i / 2 % 2 ? "no" : "yes",
			  i + 1);
		if (external)
			sb_printf(&b, "external = 127.0.7.%d\n", i + 1);
	}
	sb_puts(&b, "\n[timeouts]\nhandshake_timeout = 50ms\nheartbeat_interval = 20ms\n"
		    "handshake_window = 1s\n");
	if (cfg_parse(SRCDIR "/t.conf", b.buf, b.len, NULL, 0, &c, &err) < 0)
		fail_msg("%s", err.buf);
	sb_free(&b);
	sb_free(&err);
	return c;
}

/* The health components of the peers outside the own pair are checked when the handshake
 * says something changed and at the end of the boot's grace, else on an interval that
 * grows with their number (20 of them: twice health_interval); the own pair's on the
 * interval. So the checks per second do not grow with the cluster (issue 20). */
static void far_peers_checked_on_change(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	struct cfg *c = load_24(false);
	struct loop *l = loop_new();
	struct health *h = NULL;
	uint8_t key[HS_KEY_BYTES], boot[2][HS_BOOT_ID_BYTES];
	struct hs *a = NULL, *b = NULL;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(boot, sizeof(boot));
	assert_int_equal(health_new(5 * USEC_PER_SEC, 64, &h), 0);
	struct node_env env = {.loop = l, .cfg = c, .self = 0, .health = h};
	assert_int_equal(hs_new(l, c, 0, boot[0], key, &a), 0);
	assert_int_equal(hs_attach(a, &env, NULL), 0);
	struct health_component *own = health_find(h, "peer", "n2"),
				*far = health_find(h, "peer", "n21"),
				*other = health_find(h, "peer", "n22");
	assert_non_null(own);
	assert_non_null(far);
	assert_non_null(other);
	assert_int_equal(own->interval_us, 0);
	assert_int_equal(far->interval_us, 10 * USEC_PER_SEC);
	uint64_t t0 = now_usec();
	assert_int_equal(health_run_due(h, t0), 23);
	assert_int_equal(health_run_due(h, t0 + 6 * USEC_PER_SEC), 3); /* the own pair */
	assert_true(far->next_due_us >= t0 + 10 * USEC_PER_SEC);

	/* n21 starts: contacted, its component is due at once, n22's is not */
	assert_int_equal(hs_new(l, c, 20, boot[1], key, &b), 0);
	RUN_UNTIL(l, hs_peer_contacted(a, 20));
	assert_int_equal(far->next_due_us, 0);
	assert_true(other->next_due_us > t0);
	assert_int_equal(health_run_due(h, now_usec()), 1);
	assert_int_equal(far->state, HEALTH_STATE_OK);

	/* the grace is over: every node not contacted is checked (and fails: no remedy of
	 * its own, so needs-operator), n21 is not */
	RUN_UNTIL(l, other->next_due_us == 0);
	assert_int_equal(health_run_due(h, now_usec()), 22);
	assert_int_equal(other->state, HEALTH_STATE_NEEDS_OPERATOR);
	assert_int_equal(far->state, HEALTH_STATE_OK);

	/* n21 goes away: lost, checked at once, fails */
	b = hs_free(b);
	RUN_UNTIL(l, far->next_due_us == 0);
	assert_int_equal(health_run_due(h, now_usec()), 1);
	assert_int_equal(far->state, HEALTH_STATE_NEEDS_OPERATOR);

	hs_detach(a, &env);
	assert_null(health_find(h, "peer", "n21"));
	hs_free(a);
	health_free(h);
	loop_free(l);
	cfg_free(c);
}

/* After the decision the HELLO rounds ask only the own pair and, on their external
 * address, the nodes outside it that are not contacted: n22 starts after n1 decided and
 * is not a member n1's membership knows alive, so n1 judges its external interface alive
 * while it is not contacted; n21, contacted through the membership, is not probed. */
static void decided_rounds_probe_uncontacted(void **state)
{
	log_set_target(LOG_TARGET_NONE);
	struct cfg *c = load_24(true);
	struct loop *l = loop_new();
	uint8_t key[HS_KEY_BYTES], boot[3][HS_BOOT_ID_BYTES];
	struct hs *a = NULL, *b = NULL, *x = NULL;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(boot, sizeof(boot));
	assert_int_equal(hs_new(l, c, 0, boot[0], key, &a), 0);
	assert_int_equal(hs_new(l, c, 20, boot[1], key, &b), 0);
	RUN_UNTIL(l, hs_peer_contacted(a, 20) && hs_peer_contacted(b, 0) &&
			 hs_peer_external_alive(a, 21) == 0);
	hs_set_local(a, 1, false);
	hs_set_local(b, 1, false);
	assert_int_equal(hs_new(l, c, 21, boot[2], key, &x), 0);
	RUN_UNTIL(l, hs_peer_external_alive(a, 21) == 1);
	assert_false(hs_peer_contacted(a, 21));
	assert_true(hs_peer_contacted(a, 20));
	assert_int_equal(hs_peer_external_alive(a, 20), -1);
	assert_int_equal(hs_peer_external_alive(a, 22), 0); /* never up */
	hs_free(x);
	hs_free(b);
	hs_free(a);
	loop_free(l);
	cfg_free(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(two_nodes_talk),
	    cmocka_unit_test(bind_failure_is_reported),
	    cmocka_unit_test(far_peers_checked_on_change),
	    cmocka_unit_test(decided_rounds_probe_uncontacted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
