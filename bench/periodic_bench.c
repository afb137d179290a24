/* One agent's periodic work at 16 and at 512 nodes (issue 20), measured in-process: the
 * handshake's probe round and heartbeat, one SWIM period (probe, ACK with news), the
 * handling of an authentic HELLO and SWIM PING from a peer outside the pair, and the
 * health engine's cycle over the peer components; plus the parsing of the configuration.
 * Each is timed in thread CPU time over many iterations (the least of 3 runs) and printed
 * per call, with the ratio 512/16 (the goal: at most 1.5 for the periodic work). The real hs.c is
 * included so its timer callbacks and datagram handler are called as the loop would; the datagrams
 * it sends go to loopback addresses where nobody listens. Built and run by bench/periodic.sh
 * (no lock needed: one process, a few seconds of CPU). */
#include "../agent/handshake/hs.c"

#include "health.h"
#include "node_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REPO_KEY "images/rig/cluster.key"

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The bench/scale.sh layout: pairs of 4 (two compartments of 2), addresses 127.77.x.y. */
static char *config_text(int n, int port)
{
	struct strbuf b;
	sb_init(&b);
	char cwd[512];
	if (!getcwd(cwd, sizeof(cwd)))
		abort();
	sb_printf(&b,
		  "[cluster]\nname = scale\nkey_file = %s/%s\nrules = %s/rules/boot.rules\n"
		  "port = %d\n",
		  cwd, REPO_KEY, cwd, port);
	sb_puts(&b, "\n[quorum]\nmode = none\n");
	for (int i = 0; i < n / 4; i++)
		sb_printf(&b,
			  "\n[pair p%d]\n\n[compartment p%da]\nzone = mz\npair = p%d\n"
			  "\n[compartment p%db]\nzone = dmz\npair = p%d\n",
			  i, i, i, i, i);
	for (int i = 0; i < n; i++) {
		int c = i / 2;
		sb_printf(&b,
			  "\n[node n%d]\ncompartment = p%d%c\npriority = %d\nmgmt_capable = %s\n"
			  "handshake = 127.77.%d.%d\n",
			  i + 1, c / 2, c % 2 ? 'b' : 'a', 100 + i, c % 2 ? "no" : "yes",
			  (i + 1) / 250, (i + 1) % 250 + 1);
	}
	sb_puts(&b, "\n[timeouts]\nhandshake_timeout = 500ms\nheartbeat_interval = 100ms\n");
	return b.buf;
}

struct fig {
	double parse_us, probe_us, hb_us, swim_us, hello_us, ping_us, health_us;
};

#define BOOT(i) ((uint8_t)(0x40 + (i) % 64))

/* A sealed datagram from node `from` (its boot id filled with BOOT(from)) to node 0. */
static int seal_from(struct hs *hs, int from, uint64_t counter, struct hs_msg *m, uint8_t *buf)
{
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION,
				.type = (uint8_t)m->type,
				.sender = (uint16_t)from,
				.dest = 0,
				.counter = counter};
	memset(h.boot_id, BOOT(from), HS_BOOT_ID_BYTES);
	return hs_wire_seal(hs->key, &h, m, buf, HS_WIRE_MAX);
}

/* The peers' health components as the agent registers them (hs_attach), checked over
 * 640 s of simulated time after their first checks: CPU per health_interval (5 s). */
static double health_cycle(struct hs *hs, struct loop *l, const struct cfg *c)
{
	struct health *h;
	if (health_new(5 * USEC_PER_SEC, c->n_nodes + 8, &h) < 0)
		abort();
	struct node_env env = {.loop = l, .cfg = (struct cfg *)c, .self = 0, .health = h};
	if (hs_attach(hs, &env, NULL) < 0)
		abort();
	uint64_t start = now_usec(), span = 640 * USEC_PER_SEC;
	health_run_due(h, start); /* the first checks of all, at registration */
	uint64_t now = health_next_due(h), t0 = cpu_ns();
	while (now < start + span) {
		health_run_due(h, now);
		now = health_next_due(h);
	}
	double us = (double)(cpu_ns() - t0) / 1e3 / (double)(span / (5 * USEC_PER_SEC));
	hs_detach(hs, &env);
	health_free(h);
	return us;
}

static void measure(int n, int iters, struct fig *f)
{
	int port = 30000 + getpid() % 20000;
	char *text = config_text(n, port);
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	uint64_t t0 = cpu_ns();
	int reps = n > 64 ? 5 : 50;
	for (int k = 0; k < reps; k++) {
		c = cfg_free(c);
		if (cfg_parse("bench.conf", text, strlen(text), NULL, 0, &c, &err) < 0) {
			fprintf(stderr, "config: %s\n", err.buf);
			exit(1);
		}
	}
	f->parse_us = (double)(cpu_ns() - t0) / 1e3 / reps;
	sb_free(&err);
	free(text);

	struct loop *l = loop_new();
	uint8_t key[HS_KEY_BYTES], boot[HS_BOOT_ID_BYTES] = {1};
	struct hs *hs;
	randombytes_buf(key, sizeof(key));
	if (hs_new(l, c, 0, boot, key, &hs) < 0)
		exit(1);
	/* Steady state after the boot round: every peer contacted, its boot verified. */
	for (int i = 1; i < n; i++) {
		hs->peers[i].contacted = true;
		hs->peers[i].replay.has_boot = true;
		memset(hs->peers[i].replay.boot, BOOT(i), HS_BOOT_ID_BYTES);
	}
	hs_set_local(hs, 1, false); /* decided: the membership starts, all alive */

	/* a round of HELLOs (all its slices) */
	unsigned slices = probe_slices(hs);
	t0 = cpu_ns();
	for (int k = 0; k < iters; k++)
		for (unsigned s = 0; s < slices; s++)
			on_probe(hs->t_probe, hs);
	f->probe_us = (double)(cpu_ns() - t0) / 1e3 / iters;

	t0 = cpu_ns();
	for (int k = 0; k < iters; k++)
		on_heartbeat(hs->t_hb, hs);
	f->hb_us = (double)(cpu_ns() - t0) / 1e3 / iters;

	/* HELLO and SWIM PING from peers outside the pair, one after another */
	uint8_t buf[HS_WIRE_MAX];
	uint64_t ctr = 1000;
	t0 = cpu_ns();
	for (int k = 0; k < iters; k++) {
		int from = 4 + k % (n - 4);
		struct hs_msg m = {.type = HS_MSG_HELLO};
		fill_hello(hs, &m.hello, 77, false);
		int len = seal_from(hs, from, ++ctr, &m, buf);
		handle_datagram(hs, hs->fd_hs, buf, (size_t)len);
	}
	f->hello_us = (double)(cpu_ns() - t0) / 1e3 / iters;
	t0 = cpu_ns();
	for (int k = 0; k < iters; k++) {
		int from = 4 + k % (n - 4);
		struct swim_msg sm = {.type = SWIM_PING, .seq = (uint64_t)k + 1, .target = 0};
		uint8_t sbuf[SWIM_MSG_MAX];
		struct hs_msg m = {.type = HS_MSG_SWIM};
		sm.upd[0] = (struct swim_update){
		    .node = from, .state = SWIM_ALIVE, .inc = swim_member_inc(hs->swim, from)};
		sm.n_upd = 1;
		m.blob = (struct hs_blob){.data = sbuf, .len = swim_msg_encode(&sm, sbuf)};
		int len = seal_from(hs, from, ++ctr, &m, buf);
		handle_datagram(hs, hs->fd_hs, buf, (size_t)len);
	}
	f->ping_us = (double)(cpu_ns() - t0) / 1e3 / iters;

	/* SWIM periods on a simulated clock: PING to the target, its ACK (alive, a news
	 * update about another member every 4th period), timer events in between */
	struct swim_actions out;
	uint64_t now = now_usec(), per = hs->cfg->timeouts.heartbeat_interval;
	t0 = cpu_ns();
	for (int k = 0; k < iters; k++) {
		now += per;
		swim_step(hs->swim, &(struct swim_event){.type = SWIM_EV_TIMER}, now, &out);
		for (int a = 0; a < out.n; a++) {
			if (out.a[a].type != SWIM_ACT_SEND || out.a[a].msg.type != SWIM_PING)
				continue;
			int to = out.a[a].node;
			struct swim_msg ack = {
			    .type = SWIM_ACK, .seq = out.a[a].msg.seq, .target = to, .n_upd = 1};
			ack.upd[0] = (struct swim_update){
			    .node = to, .state = SWIM_ALIVE, .inc = swim_member_inc(hs->swim, to)};
			if (k % 4 == 0) {
				int o = 4 + (k / 4) % (n - 4);
				ack.upd[1] = (struct swim_update){
				    .node = o,
				    .state = SWIM_ALIVE,
				    .inc = swim_member_inc(hs->swim, o) + 1,
				    .info = {.profile = 1, .config_version = (uint64_t)k}};
				ack.n_upd = 2;
			}
			struct swim_actions o2;
			swim_step(
			    hs->swim,
			    &(struct swim_event){.type = SWIM_EV_RECV, .from = to, .msg = &ack},
			    now + 1000, &o2);
		}
		swim_step(hs->swim, &(struct swim_event){.type = SWIM_EV_TIMER}, now + per / 2,
			  &out);
	}
	f->swim_us = (double)(cpu_ns() - t0) / 1e3 / iters;

	f->health_us = health_cycle(hs, l, c);
	hs_free(hs);
	loop_free(l);
	cfg_free(c);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	struct fig a, b;
	log_set_target(LOG_TARGET_NONE);
	if (sodium_init() < 0)
		return 1;
	/* the least of 3 runs each: the machine is shared, the noise only adds */
	for (int run = 0; run < 3; run++) {
		struct fig x, y;
		measure(16, iters, &x);
		measure(512, iters, &y);
		if (!run) {
			a = x, b = y;
			continue;
		}
		double *pa = &a.parse_us, *pb = &b.parse_us, *px = &x.parse_us, *py = &y.parse_us;
		for (size_t k = 0; k < sizeof(a) / sizeof(double); k++) {
			pa[k] = px[k] < pa[k] ? px[k] : pa[k];
			pb[k] = py[k] < pb[k] ? py[k] : pb[k];
		}
	}
	struct {
		const char *name, *key;
		double x, y;
		bool periodic;
	} rows[] = {
	    {"hs probe round (all slices)", "probe", a.probe_us, b.probe_us, true},
	    {"hs heartbeat", "heartbeat", a.hb_us, b.hb_us, true},
	    {"swim period (ping, ack, timers)", "swim", a.swim_us, b.swim_us, true},
	    {"hs HELLO from a peer", "hello", a.hello_us, b.hello_us, true},
	    {"hs SWIM PING from a peer", "ping", a.ping_us, b.ping_us, true},
	    {"health per interval (peers)", "health", a.health_us, b.health_us, true},
	    {"config parse (once per change)", "parse", a.parse_us, b.parse_us, false},
	};
	int bad = 0;
	printf("%-34s %10s %10s %7s\n", "per call, CPU µs", "16 nodes", "512 nodes", "ratio");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		double r = rows[i].y / rows[i].x;
		printf("%-34s %10.2f %10.2f %7.2f%s\n", rows[i].name, rows[i].x, rows[i].y, r,
		       rows[i].periodic && r > 1.5 ? "  over 1.5" : "");
		bad += rows[i].periodic && r > 1.5;
	}
	/* the last line: every figure at 512 and its ratio to 16 */
	printf("result: periodic_over_1.5=%d", bad);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf(" %s_512_us=%.2f %s_ratio=%.2f", rows[i].key, rows[i].y, rows[i].key,
		       rows[i].y / rows[i].x);
	printf(" parse_512_per_node_us=%.2f\n", b.parse_us / 512);
	return bad ? 2 : 0;
}
