/* Cluster queries (SPEC §9): `query <all|compartment X|node N> <status|health|paths|raid|config>`
 * asks other agents over the handshake protocol (QUERY / QUERY_REPLY), waits for each at
 * most `query_timeout`, groups the answers by compartment and names who did not answer.
 *
 * The pure part plans targets, encodes and parses payloads, collects reply chunks and
 * formats; the engine (struct query_engine) does the sending and timing through a
 * transport given to it, so two engines can talk back to back in a unit test. */
#pragma once

#include "config.h"
#include "console.h"
#include "loop.h"
#include "util.h"

#define QUERY_MAX_CHUNKS 16
#define QUERY_MAX_ACTIVE 8
#define QUERY_WHAT_MAX 16
/* At most this many targets of one query are asked and not yet answered at a time, so a
 * query of 512 or 1 024 nodes neither floods the sockets with replies nor needs a buffer
 * per node; the window refills as answers arrive or a target's slot time runs out. */
#define QUERY_WINDOW 64

/* Message types as the transport names them. */
enum query_msg { QUERY_MSG_QUERY, QUERY_MSG_REPLY, _QUERY_MSG_MAX };

enum query_scope { QUERY_SCOPE_ALL, QUERY_SCOPE_COMPARTMENT, QUERY_SCOPE_NODE, _QUERY_SCOPE_MAX };

struct query_spec {
	enum query_scope scope;
	int index; /* compartment or node index; -1 for all */
	char what[QUERY_WHAT_MAX];
	bool json;
};

enum query_tstate {
	QUERY_T_QUEUED,	 /* not asked yet: the window was full */
	QUERY_T_WAITING, /* asked, holds a place in the window */
	QUERY_T_LATE,	 /* asked, its slot time ran out: place given up, answer still taken */
	QUERY_T_ANSWERED,
	QUERY_T_FAILED,
	QUERY_T_TIMEOUT,
	_QUERY_T_MAX
};

struct query_target {
	int node;
	enum query_tstate state;
	uint64_t sent_us;
	int total; /* chunks announced, 0 until the first arrives */
	int got;
	char *chunks[QUERY_MAX_CHUNKS];
	size_t lens[QUERY_MAX_CHUNKS];
};

struct query {
	uint32_t id;
	struct query_spec spec;
	uint64_t started_us, deadline_us;
	struct query_target *t; /* n entries, malloc'd by query_plan, freed by query_reset */
	int n;
	int window;	  /* targets in WAITING at most */
	uint64_t slot_us; /* how long a target holds its place before it is LATE */
	int next;	  /* the first target that may still be QUEUED */
};

/* argv is what follows `query`. Errors say what is wrong in `err`. */
int query_parse(const struct cfg *c, int argc, char *const argv[], bool json,
		struct query_spec *ret, struct strbuf *err);
/* Fills the targets (every node in scope, self included) and the deadline. 0 or -ENOMEM
 * (then no targets); query_reset frees what it allocated. */
int query_plan(const struct cfg *c, const struct query_spec *spec, uint32_t id, uint64_t now_us,
	       uint64_t timeout_us, struct query *ret);
void query_reset(struct query *q); /* frees the chunks */
/* Sets the window (query_plan sets QUERY_WINDOW) and the slot time: the query's time
 * divided by the rounds it takes to ask every target when none answers, so the last
 * target is asked a whole slot before the deadline. */
void query_set_window(struct query *q, int window);
/* The index of the next target to ask at now_us, marked WAITING (sent), or -1 when the
 * window is full, every target was asked, or the deadline has passed. */
int query_next_send(struct query *q, uint64_t now_us);
/* Moves the targets whose slot ran out to LATE and, at the deadline, every unanswered one
 * to TIMEOUT; returns when to call it again (UINT64_MAX once the query is complete). */
uint64_t query_tick(struct query *q, uint64_t now_us);
/* Targets in WAITING. */
int query_in_flight(const struct query *q);

/* Payloads. QUERY: "Q1 <id> <json 0|1> <what>". QUERY_REPLY: "R1 <id> <ok 0|1> <seq>
 * <total>\n<chunk>". */
int query_encode_request(uint32_t id, const char *what, bool json, char *buf, size_t n);
int query_parse_request(const void *buf, size_t len, uint32_t *ret_id,
			char ret_what[QUERY_WHAT_MAX], bool *ret_json);
struct query_reply_hdr {
	uint32_t id;
	bool ok;
	int seq, total;
};
int query_parse_reply(const void *buf, size_t len, struct query_reply_hdr *ret,
		      size_t *ret_body_off);
/* Splits an answer into reply payloads of at most `max` bytes each; calls emit for each. */
int query_encode_reply(uint32_t id, bool ok, const char *text, size_t len, size_t max,
		       int (*emit)(const char *payload, size_t n, void *ud), void *ud);

/* Records one reply chunk from `node`. Returns 0, or -ENOENT (not a target, or another
 * query), -EALREADY (duplicate), -EBADMSG. */
int query_add_reply(struct query *q, int node, const struct query_reply_hdr *h, const char *body,
		    size_t body_len);
/* Marks every target not answered at now_us past the deadline as timed out. */
void query_expire(struct query *q, uint64_t now_us);
bool query_complete(const struct query *q);
void query_format(const struct cfg *c, const struct query *q, struct strbuf *out);
/* Whether `s` is one complete JSON value (a peer's answer is embedded only then). */
bool query_json_valid(const char *s, size_t len);

/* ---- the engine ---- */

struct query_transport {
	/* Sends one payload to a node; returns 0 or -errno. */
	int (*send)(void *ud, int node, enum query_msg type, const void *buf, size_t len);
	size_t max_payload;
	void *ud;
};

/* Answers a query locally: runs `what` (status|health|paths|raid|config) and fills `out`;
 * returns 0 or -errno with an error text in `out`. */
typedef int (*query_local_fn)(void *ud, const char *what, bool json, struct strbuf *out);

struct query_engine;

int query_engine_new(struct loop *l, struct cfg *const *cfg, const int *self,
		     const struct query_transport *tr, query_local_fn local, void *local_ud,
		     struct query_engine **ret);
struct query_engine *query_engine_free(struct query_engine *e);
/* Replaces the transport (the handshake module starts after the console). */
void query_engine_set_transport(struct query_engine *e, const struct query_transport *tr);
/* The transport hands over every QUERY / QUERY_REPLY payload from `node`. */
void query_engine_on_message(struct query_engine *e, int node, enum query_msg type, const void *buf,
			     size_t len);
/* The console command: `query …` (registered by the agent with the engine as ud). */
int query_cmd(struct console_req *req, void *ud);
/* Counters for tests and `status`. */
struct query_stats {
	uint64_t sent, answered_for_peers, replies, dropped;
};
void query_engine_stats(const struct query_engine *e, struct query_stats *ret);
