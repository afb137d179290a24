/* Cluster queries: parsing, target planning, payloads and chunking (tables), and four
 * query engines talking through an in-memory transport, one node stopped: the query
 * answers at its deadline, grouped by compartment, naming the silent node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "log.h"
#include "query.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static struct cfg *cfg;

static int setup(void **state)
{
	struct strbuf err;
	sb_init(&err);
	int r = cfg_load(SRCDIR "/images/rig/cluster.conf", NULL, 0, &cfg, &err);
	sb_free(&err);
	return r;
}

static int teardown(void **state)
{
	cfg_free(cfg);
	return 0;
}

struct parse_case {
	const char *line;
	int want;
	enum query_scope scope;
	const char *index_name;
	const char *what;
	const char *err;
};

static const struct parse_case parse_cases[] = {
    {"all status", 0, QUERY_SCOPE_ALL, NULL, "status", NULL},
    {"compartment b raid", 0, QUERY_SCOPE_COMPARTMENT, "b", "raid", NULL},
    {"node a2 health", 0, QUERY_SCOPE_NODE, "a2", "health", NULL},
    {"node a2 paths", 0, QUERY_SCOPE_NODE, "a2", "paths", NULL},
    {"node zz status", -ENOENT, 0, NULL, NULL, "no node 'zz' in the configuration"},
    {"compartment c status", -ENOENT, 0, NULL, NULL, "no compartment 'c' in the configuration"},
    {"all shell", -EINVAL, 0, NULL, NULL, "cannot query 'shell'; usage: query"},
    {"all", -EINVAL, 0, NULL, NULL, "usage: query <all|compartment X|node N>"},
    {"", -EINVAL, 0, NULL, NULL, "usage: query"},
    {"everything status", -EINVAL, 0, NULL, NULL, "usage: query"},
    {"node a1 status extra", -EINVAL, 0, NULL, NULL, "usage: query"},
};

static void test_parse(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *tc = &parse_cases[i];
		char buf[128];
		char *argv[8];
		snprintf(buf, sizeof(buf), "%s", tc->line);
		int argc = split_words(buf, argv, 8);
		struct strbuf err;
		sb_init(&err);
		struct query_spec s = {0};
		printf("case: %s\n", tc->line);
		assert_int_equal(query_parse(cfg, argc, argv, true, &s, &err), tc->want);
		if (tc->want == 0) {
			assert_int_equal(s.scope, tc->scope);
			assert_string_equal(s.what, tc->what);
			assert_true(s.json);
			if (tc->scope == QUERY_SCOPE_NODE)
				assert_int_equal(s.index, cfg_find_node(cfg, tc->index_name));
			if (tc->scope == QUERY_SCOPE_COMPARTMENT)
				assert_int_equal(s.index,
						 cfg_find_compartment(cfg, tc->index_name));
		} else {
			assert_non_null(strstr(err.buf, tc->err));
		}
		sb_free(&err);
	}
}

static void test_plan(void **state)
{
	struct query q;
	struct query_spec s = {.scope = QUERY_SCOPE_ALL, .index = -1, .what = "status"};
	assert_int_equal(query_plan(cfg, &s, 7, 1000, 500, &q), 0);
	assert_int_equal(q.n, 4);
	assert_int_equal(q.deadline_us, 1500);
	query_reset(&q);
	s = (struct query_spec){.scope = QUERY_SCOPE_COMPARTMENT,
				.index = cfg_find_compartment(cfg, "b"),
				.what = "raid"};
	query_plan(cfg, &s, 7, 0, 500, &q);
	assert_int_equal(q.n, 2);
	assert_string_equal(cfg->nodes[q.t[0].node].name, "b1");
	assert_string_equal(cfg->nodes[q.t[1].node].name, "b2");
	query_reset(&q);
	s = (struct query_spec){
	    .scope = QUERY_SCOPE_NODE, .index = cfg_find_node(cfg, "a2"), .what = "raid"};
	query_plan(cfg, &s, 7, 0, 500, &q);
	assert_int_equal(q.n, 1);
	/* Nobody answered by the deadline: every target times out, not before. */
	query_expire(&q, 499);
	assert_false(query_complete(&q));
	query_expire(&q, 500);
	assert_true(query_complete(&q));
	assert_int_equal(q.t[0].state, QUERY_T_TIMEOUT);
	query_reset(&q);
}

/* The window: with 4 targets and room for 2, the third is asked when the first answers,
 * the fourth when the second's slot runs out; a late answer still counts; at the deadline
 * the rest time out. */
static void test_window_small(void **state)
{
	struct query q;
	struct query_spec s = {.scope = QUERY_SCOPE_ALL, .index = -1, .what = "status"};
	assert_int_equal(query_plan(cfg, &s, 9, 0, 1000, &q), 0);
	assert_int_equal(q.window, QUERY_WINDOW);
	query_set_window(&q, 2);
	assert_int_equal(q.slot_us, 500); /* two rounds in 1000 µs */
	assert_int_equal(query_next_send(&q, 0), 0);
	assert_int_equal(query_next_send(&q, 0), 1);
	assert_int_equal(query_next_send(&q, 0), -1); /* full */
	assert_int_equal(query_in_flight(&q), 2);
	assert_int_equal(q.t[2].state, QUERY_T_QUEUED);
	struct query_reply_hdr h = {.id = 9, .ok = true, .seq = 0, .total = 1};
	/* A reply from a target never asked is not an answer. */
	assert_int_equal(query_add_reply(&q, q.t[2].node, &h, "x", 1), -ENOENT);
	assert_int_equal(query_add_reply(&q, q.t[0].node, &h, "a", 1), 0);
	assert_int_equal(query_tick(&q, 100), 500);
	assert_int_equal(query_next_send(&q, 100), 2);
	assert_int_equal(query_next_send(&q, 100), -1);
	assert_int_equal(query_tick(&q, 499), 500);
	assert_int_equal(query_next_send(&q, 499), -1);
	/* t1's slot ends at 500: its place goes to t3; t2's ends at 600. */
	assert_int_equal(query_tick(&q, 500), 600);
	assert_int_equal(q.t[1].state, QUERY_T_LATE);
	assert_int_equal(query_next_send(&q, 500), 3);
	assert_int_equal(query_next_send(&q, 500), -1); /* every target asked */
	assert_int_equal(query_add_reply(&q, q.t[1].node, &h, "b", 1), 0);
	assert_int_equal(q.t[1].state, QUERY_T_ANSWERED);
	assert_int_equal(query_tick(&q, 600), 1000);
	assert_false(query_complete(&q));
	assert_int_equal(query_tick(&q, 1000), UINT64_MAX);
	assert_true(query_complete(&q));
	assert_int_equal(q.t[2].state, QUERY_T_TIMEOUT);
	assert_int_equal(q.t[3].state, QUERY_T_TIMEOUT);
	query_reset(&q);
}

/* 512 targets, window 64, one second, driven the way the engine drives it: every target
 * is asked before the deadline, never more than 64 at a time, whether nobody answers,
 * every answer takes 20 ms, or one node in four is silent. */
static void run_window(int silent_every, uint64_t answer_us, int *ret_max, uint64_t *ret_last)
{
	enum { N = 512 };
	struct query q = {.id = 1, .started_us = 0, .deadline_us = 1000000, .n = N};
	q.t = calloc(N, sizeof(*q.t));
	for (int i = 0; i < N; i++)
		q.t[i].node = i;
	query_set_window(&q, 64);
	assert_int_equal(q.slot_us, 1000000 / 8);
	uint64_t now = 0, last = 0;
	int max = 0, asked = 0;
	for (int step = 0; step < 100000; step++) {
		uint64_t next = query_tick(&q, now);
		if (next == UINT64_MAX)
			break;
		int i;
		while ((i = query_next_send(&q, now)) >= 0) {
			asked++;
			last = now;
		}
		next = query_tick(&q, now); /* the slots just started end first */
		int f = query_in_flight(&q);
		max = f > max ? f : max;
		/* The earliest answer due among those asked, if sooner than `next`. */
		for (int k = 0; k < N; k++) {
			struct query_target *t = &q.t[k];
			bool silent = silent_every && k % silent_every == 0;
			if ((t->state == QUERY_T_WAITING || t->state == QUERY_T_LATE) && !silent &&
			    answer_us && t->sent_us + answer_us < next)
				next = t->sent_us + answer_us;
		}
		now = next;
		for (int k = 0; k < N; k++) {
			struct query_target *t = &q.t[k];
			bool silent = silent_every && k % silent_every == 0;
			struct query_reply_hdr h = {.id = 1, .ok = true, .total = 1};
			if ((t->state == QUERY_T_WAITING || t->state == QUERY_T_LATE) && !silent &&
			    answer_us && t->sent_us + answer_us <= now)
				assert_int_equal(query_add_reply(&q, t->node, &h, "ok", 2), 0);
		}
	}
	assert_true(query_complete(&q));
	assert_int_equal(asked, N);
	for (int k = 0; k < N; k++) {
		bool silent = !answer_us || (silent_every && k % silent_every == 0);
		assert_int_equal(q.t[k].state, silent ? QUERY_T_TIMEOUT : QUERY_T_ANSWERED);
	}
	*ret_max = max;
	*ret_last = last;
	query_reset(&q);
}

static void test_window_512(void **state)
{
	int max;
	uint64_t last;
	run_window(0, 0, &max, &last); /* nobody answers */
	assert_int_equal(max, 64);
	assert_true(last <= 1000000 - 125000); /* the last round gets a whole slot */
	run_window(0, 20000, &max, &last);     /* all answer in 20 ms: 8 rounds, 160 ms */
	assert_int_equal(max, 64);
	assert_int_equal(last, 7 * 20000);
	run_window(4, 20000, &max, &last); /* one in four silent */
	assert_int_equal(max, 64);
	assert_true(last <= 1000000 - 125000);
}

static void test_payloads(void **state)
{
	char buf[64];
	uint32_t id;
	char what[QUERY_WHAT_MAX];
	bool json;
	int n = query_encode_request(4000000000u, "health", true, buf, sizeof(buf));
	assert_string_equal(buf, "Q1 4000000000 1 health");
	assert_int_equal(query_parse_request(buf, (size_t)n, &id, what, &json), 0);
	assert_int_equal(id, 4000000000u);
	assert_string_equal(what, "health");
	assert_true(json);
	static const char *const bad_requests[] = {
	    "",
	    "Q1",
	    "Q1 ",
	    "Q2 1 0 status",
	    "Q1 1 2 status",
	    "Q1 4294967296 0 status",
	    "Q1 1 0 ",
	    "Q1 1 0 Status",
	    "Q1 1 0 status\n",
	    "Q1 -1 0 status",
	    "Q1 1 0 averyveryverylongword",
	    "Q1 00000000000001 0 status",
	    "Q1 02 1 status",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_requests); i++)
		assert_int_equal(
		    query_parse_request(bad_requests[i], strlen(bad_requests[i]), &id, what, &json),
		    -EBADMSG);
	struct query_reply_hdr h;
	size_t off;
	const char *rep = "R1 9 1 2 3\nbody";
	assert_int_equal(query_parse_reply(rep, strlen(rep), &h, &off), 0);
	assert_int_equal(h.id, 9);
	assert_true(h.ok);
	assert_int_equal(h.seq, 2);
	assert_int_equal(h.total, 3);
	assert_string_equal(rep + off, "body");
	static const char *const bad_replies[] = {
	    "R1 9 1 3 3\n", "R1 9 1 0 0\n",  "R1 9 1 0 17\n",
	    "R1 9 1 0 1",   "R1 9 1 0 1 \n", "Q1 9 1 0 1\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_replies); i++)
		assert_int_equal(
		    query_parse_reply(bad_replies[i], strlen(bad_replies[i]), &h, &off), -EBADMSG);
}

struct chunks {
	char *p[QUERY_MAX_CHUNKS + 1];
	size_t n[QUERY_MAX_CHUNKS + 1];
	int count;
	size_t max;
};

static int collect(const char *payload, size_t n, void *ud)
{
	struct chunks *c = ud;
	assert_true(n <= c->max);
	assert_true(c->count < QUERY_MAX_CHUNKS);
	c->p[c->count] = malloc(n);
	memcpy(c->p[c->count], payload, n);
	c->n[c->count++] = n;
	return 0;
}

/* Splits `len` bytes, feeds the chunks back in reverse order, returns the reassembly. */
static char *roundtrip(const char *text, size_t len, size_t max, int *ret_chunks)
{
	struct chunks c = {.max = max};
	int total = query_encode_reply(42, true, text, len, max, collect, &c);
	assert_int_equal(total, c.count);
	struct query q;
	struct query_spec s = {.scope = QUERY_SCOPE_NODE, .index = 1, .what = "status"};
	query_plan(cfg, &s, 42, 0, 1000, &q);
	assert_int_equal(query_next_send(&q, 0), 0); /* asked before it answers */
	for (int i = c.count - 1; i >= 0; i--) {
		struct query_reply_hdr h;
		size_t off;
		assert_int_equal(query_parse_reply(c.p[i], c.n[i], &h, &off), 0);
		assert_int_equal(query_add_reply(&q, 1, &h, c.p[i] + off, c.n[i] - off), 0);
		/* The same chunk again is a duplicate; another node is not a target. */
		assert_int_equal(query_add_reply(&q, 0, &h, c.p[i] + off, c.n[i] - off), -ENOENT);
		free(c.p[i]);
	}
	assert_true(query_complete(&q));
	struct strbuf all;
	sb_init(&all);
	for (int k = 0; k < q.t[0].total; k++)
		sb_put(&all, q.t[0].chunks[k], q.t[0].lens[k]);
	query_reset(&q);
	*ret_chunks = total;
	return all.buf ? sb_steal(&all) : strdup("");
}

static void test_chunks(void **state)
{
	char text[6000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	int chunks;
	char *back = roundtrip(text, 5000, 400, &chunks);
	assert_int_equal(chunks, (5000 + 359) / 360);
	assert_memory_equal(back, text, 5000);
	assert_int_equal(strlen(back), 5000);
	free(back);
	back = roundtrip("", 0, 300, &chunks);
	assert_int_equal(chunks, 1);
	assert_string_equal(back, "");
	free(back);
	/* Too long for 16 chunks: cut, and says so at the end. */
	back = roundtrip(text, sizeof(text), 200, &chunks);
	assert_int_equal(chunks, QUERY_MAX_CHUNKS);
	assert_int_equal(strlen(back), 160 * QUERY_MAX_CHUNKS);
	assert_non_null(strstr(back, "\n[answer truncated]\n"));
	assert_memory_equal(back, text, 100);
	free(back);
	struct chunks c = {.max = 40};
	assert_int_equal(query_encode_reply(1, true, "x", 1, 40, collect, &c), -EINVAL);
}

static void test_json_valid(void **state)
{
	static const char *const good[] = {
	    "{}",
	    "[]",
	    "0",
	    "-1.5e+3",
	    "\"a\\u00e9\\n\"",
	    "true",
	    "null",
	    " {\"a\":[1,2,{\"b\":false}]}\n",
	    "{\"node\":\"a1\",\"uptime_s\":0}\n",
	};
	static const char *const bad[] = {
	    "",
	    "{",
	    "{\"a\":}",
	    "{\"a\" 1}",
	    "[1,]",
	    "01",
	    "1.",
	    "-",
	    "\"\\x\"",
	    "\"a",
	    "{}{}",
	    "tru",
	    "{\"a\":1,}",
	    "\"\\u12\"",
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	    "{\"a\":\"\x01\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(query_json_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		printf("bad: %s\n", bad[i]);
		assert_false(query_json_valid(bad[i], strlen(bad[i])));
	}
	/* A NUL inside is never valid. */
	assert_false(query_json_valid("\"a\0b\"", 5));
}

/* ---- four engines, one loop, an in-memory network ---- */

#define NODES 4
struct msg {
	int from, to;
	enum query_msg type;
	char *buf;
	size_t len;
};

struct net {
	struct msg q[256];
	int n;
	bool stopped[NODES];
	struct query_engine *eng[NODES];
	int self[NODES];
	struct console *con[NODES];
};
static struct net net;

struct sender {
	int node;
};
static struct sender senders[NODES];

static int net_send(void *ud, int node, enum query_msg type, const void *buf, size_t len)
{
	struct sender *s = ud;
	assert_true(net.n < 256);
	struct msg *m = &net.q[net.n++];
	*m =
	    (struct msg){.from = s->node, .to = node, .type = type, .buf = malloc(len), .len = len};
	memcpy(m->buf, buf, len);
	return 0;
}

static void net_deliver(void)
{
	while (net.n) {
		struct msg m = net.q[0];
		memmove(net.q, net.q + 1, sizeof(net.q[0]) * (size_t)--net.n);
		if (!net.stopped[m.to] && !net.stopped[m.from])
			query_engine_on_message(net.eng[m.to], m.from, m.type, m.buf, m.len);
		free(m.buf);
	}
}

static int cmd_status(struct console_req *req, void *ud)
{
	const char *name = ud;
	if (req->json)
		sb_printf(&req->out, "{\"node\":\"%s\"}\n", name);
	else
		sb_printf(&req->out, "node %s\nline two\n", name);
	return 0;
}

static int cmd_broken(struct console_req *req, void *ud)
{
	console_req_error(req, "raid: no arrays here");
	return -ENODEV;
}

struct local_cap {
	struct strbuf *out;
	bool failed;
};
static void local_finish(struct console_req *req)
{
	struct local_cap *c = req->transport;
	c->failed = req->failed;
	sb_put(c->out, req->out.buf ? req->out.buf : "", req->out.len);
}
static int local(void *ud, const char *what, bool json, struct strbuf *out)
{
	char line[64];
	snprintf(line, sizeof(line), "%s%s", what, json ? " --json" : "");
	struct local_cap c = {.out = out};
	console_exec(ud, line, false, local_finish, &c, NULL);
	return c.failed ? -EIO : 0;
}

struct answer {
	bool done;
	bool failed;
	char *text;
};
static void answer_finish(struct console_req *req)
{
	struct answer *a = req->transport;
	a->done = true;
	a->failed = req->failed;
	a->text = strdup(req->out.buf ? req->out.buf : "");
}

static void test_four_engines(void **state)
{
	static const char *const names[NODES] = {"a1", "a2", "b1", "b2"};
	struct loop *l = loop_new();
	memset(&net, 0, sizeof(net));
	for (int i = 0; i < NODES; i++) {
		net.self[i] = cfg_find_node(cfg, names[i]);
		senders[i].node = net.self[i];
		assert_int_equal(console_new(l, &net.con[i]), 0);
		console_register(net.con[i], "status", "", "", cmd_status, (void *)names[i]);
		console_register(net.con[i], "raid", "", "", cmd_broken, NULL);
		struct query_transport tr = {
		    .send = net_send, .max_payload = 200, .ud = &senders[i]};
		assert_int_equal(query_engine_new(l, &cfg, &net.self[i], &tr, local, net.con[i],
						  &net.eng[net.self[i]]),
				 0);
		console_register(net.con[i], "query", "", "", query_cmd, net.eng[net.self[i]]);
	}
	/* b2 is stopped. */
	net.stopped[cfg_find_node(cfg, "b2")] = true;
	struct answer a = {0};
	uint64_t t0 = now_usec();
	assert_int_equal(
	    console_exec(net.con[0], "query all status", false, answer_finish, &a, NULL), 0);
	assert_false(a.done);
	net_deliver();
	assert_false(a.done); /* b2 has not answered: wait for the deadline */
	while (!a.done && now_usec() - t0 < 5 * USEC_PER_SEC)
		loop_iterate(l, now_usec() + 100 * USEC_PER_MSEC);
	uint64_t took = now_usec() - t0;
	assert_true(a.done);
	assert_true(took >= cfg->timeouts.query_timeout - 20 * USEC_PER_MSEC);
	assert_true(took < cfg->timeouts.query_timeout + 500 * USEC_PER_MSEC);
	printf("%s", a.text);
	assert_string_equal(
	    a.text, "query status: 3 of 4 nodes answered, 0 with an error, 1 silent (timeout 1s)\n"
		    "\n== compartment a (mz)\n"
		    "-- a1\n   node a1\n   line two\n"
		    "-- a2\n   node a2\n   line two\n"
		    "\n== compartment b (dmz)\n"
		    "-- b1\n   node b1\n   line two\n"
		    "-- b2: no answer\n"
		    "\nno answer from: b2\n");
	free(a.text);

	/* Everybody up, JSON, errors carried through: answered as soon as all replied. */
	net.stopped[cfg_find_node(cfg, "b2")] = false;
	a = (struct answer){0};
	assert_int_equal(console_exec(net.con[2], "query compartment a raid --json", false,
				      answer_finish, &a, NULL),
			 0);
	net_deliver();
	assert_true(a.done);
	assert_string_equal(
	    a.text,
	    "{\"query\":\"raid\",\"targets\":2,\"answered\":0,\"errors\":2,\"timeout_ms\":1000,"
	    "\"compartments\":[{\"name\":\"a\",\"zone\":\"mz\",\"nodes\":["
	    "{\"node\":\"a1\",\"result\":\"error\",\"answer\":{\"error\":\"raid: no arrays "
	    "here\"}},"
	    "{\"node\":\"a2\",\"result\":\"error\",\"answer\":{\"error\":\"raid: no arrays "
	    "here\"}}]}],"
	    "\"no_answer\":[]}\n");
	free(a.text);

	/* A node answers about itself without the network. */
	a = (struct answer){0};
	console_exec(net.con[3], "query node b2 status --json", false, answer_finish, &a, NULL);
	assert_true(a.done);
	assert_int_equal(net.n, 0);
	assert_non_null(
	    strstr(a.text,
		   "\"nodes\":[{\"node\":\"b2\",\"result\":\"ok\",\"answer\":{\"node\":\"b2\"}}]"));
	free(a.text);

	/* Garbage and late replies are dropped and counted. */
	struct query_stats st;
	query_engine_on_message(net.eng[0], 1, QUERY_MSG_REPLY, "R1 1 1 0 1\nlate", 15);
	query_engine_on_message(net.eng[0], 1, QUERY_MSG_QUERY, "Q1 x", 4);
	query_engine_on_message(net.eng[0], 1, QUERY_MSG_QUERY, "Q1 5 0 shell", 12);
	query_engine_stats(net.eng[0], &st);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(net.n, 1); /* the `shell` query got an error answer */
	assert_non_null(strstr(net.q[0].buf, "\nerror: 'shell' cannot be queried"));
	net_deliver();

	/* An engine that goes away answers its pending queries with what it has. */
	a = (struct answer){0};
	console_exec(net.con[0], "query node a2 status", false, answer_finish, &a, NULL);
	assert_false(a.done);
	for (int i = 0; i < NODES; i++)
		query_engine_free(net.eng[net.self[i]]);
	assert_true(a.done);
	assert_non_null(strstr(a.text, "no answer from: a2"));
	free(a.text);
	for (int i = 0; i < net.n; i++)
		free(net.q[i].buf);
	net.n = 0;
	for (int i = 0; i < NODES; i++)
		console_free(net.con[i]);
	loop_free(l);
}

int main(void)
{
	log_set_target(LOG_TARGET_NONE);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),	 cmocka_unit_test(test_plan),
	    cmocka_unit_test(test_window_small), cmocka_unit_test(test_window_512),
	    cmocka_unit_test(test_payloads),	 cmocka_unit_test(test_chunks),
	    cmocka_unit_test(test_json_valid),	 cmocka_unit_test(test_four_engines),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
