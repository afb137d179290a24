/* Membership and failure detection after the boot decision (issue 20, SPEC §5), SWIM-style,
 * as a pure state machine: swim_step() takes one event and the current monotonic time and
 * returns the datagrams to send and the changes to report. It does no I/O and reads no
 * clock; the handshake layer carries its messages and tests/unit/test_swim.c runs hundreds
 * of them against a simulated network.
 *
 * Every period a node probes one member (round-robin over a shuffled list of the members
 * it watches): PING, and without an ACK within probe_timeout, PING-REQ through k others
 * that ping the member for it. A member that answers neither way by the end of the period
 * is suspected; a suspicion not refuted within suspect_timeout makes it dead. What a node
 * learns — alive, suspect, dead, with the member's incarnation and its facts (profile,
 * management running, configuration version) — rides on the messages that are sent
 * anyway, each update a bounded number of times. A member refutes a suspicion of itself
 * with a higher incarnation. So each node sends O(1) datagrams per period whatever the
 * cluster's size, and an update reaches everyone in O(log n) periods. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWIM_PIGGYBACK_MAX 6 /* updates carried by one message */
#define SWIM_MAX_ACTIONS 16

enum swim_state { SWIM_ALIVE, SWIM_SUSPECT, SWIM_DEAD, _SWIM_STATE_MAX };
const char *swim_state_to_str(enum swim_state s);

/* What a member says of itself, spread with its incarnation. */
#define SWIM_HASH_BYTES 32
struct swim_info {
	uint8_t profile;
	bool mgmt_running;
	uint64_t config_version;
	uint8_t config_hash[SWIM_HASH_BYTES];
};

struct swim_update {
	int node;
	enum swim_state state;
	uint64_t inc;
	struct swim_info info;
};

enum swim_msg_type { SWIM_PING, SWIM_ACK, SWIM_PING_REQ, SWIM_GOSSIP, _SWIM_MSG_MAX };
const char *swim_msg_type_to_str(enum swim_msg_type t);

struct swim_msg {
	enum swim_msg_type type;
	uint64_t seq;
	int target; /* PING_REQ: the member to ping; ACK: the member that answered */
	int n_upd;
	struct swim_update upd[SWIM_PIGGYBACK_MAX];
};

struct swim_params {
	int n;						 /* members 0..n-1 (the cluster's nodes) */
	int self;					 /* this node */
	uint64_t period, probe_timeout, suspect_timeout; /* µs */
	int indirect;					 /* k: members asked to ping for us */
	int retransmit;					 /* times each update is carried */
	uint64_t inc0; /* first incarnation: above any of this node's earlier boots */
	uint64_t seed; /* the shuffles and the choice of helpers */
	struct swim_info info;
};

enum swim_action_type {
	SWIM_ACT_SEND,	 /* to, msg */
	SWIM_ACT_CHANGE, /* node, state: its state or its facts (swim_member_info) changed */
	_SWIM_ACT_MAX
};

struct swim_action {
	enum swim_action_type type;
	int node; /* SEND: to; CHANGE: the member */
	enum swim_state state;
	struct swim_msg msg;
};

struct swim_actions {
	int n;
	struct swim_action a[SWIM_MAX_ACTIONS];
	uint64_t timer_at; /* call swim_step with SWIM_EV_TIMER at or after this */
};

enum swim_event_type {
	SWIM_EV_TIMER,
	SWIM_EV_RECV, /* from, msg */
	SWIM_EV_INFO, /* this node's facts changed: info */
	_SWIM_EV_MAX
};

struct swim_event {
	enum swim_event_type type;
	int from;
	const struct swim_msg *msg;
	struct swim_info info;
};

/* The message on the wire (integers big-endian): type 1, seq 8, target 2, count 1, then
 * per update node 2, state 1, incarnation 8, profile 1, management 1, configuration
 * version 8 and hash 32. SWIM_MSG_MAX bytes at most; the handshake seals it. */
#define SWIM_UPD_BYTES 53
#define SWIM_MSG_MAX (12 + SWIM_PIGGYBACK_MAX * SWIM_UPD_BYTES)
size_t swim_msg_encode(const struct swim_msg *m, uint8_t buf[SWIM_MSG_MAX]);
/* 0, or -EBADMSG for a length that does not match its count (ranges: swim_step). */
int swim_msg_decode(const uint8_t *buf, size_t len, struct swim_msg *m);

struct swim;

/* watch[i]: whether this node probes member i (the caller leaves out its own pair, whose
 * heartbeats it hears anyway, and itself); alive[i]: the members known alive when it
 * starts (the boot's HELLO round), the others start dead until they are heard of. */
int swim_new(const struct swim_params *p, const bool *watch, const bool *alive, struct swim **ret);
struct swim *swim_free(struct swim *s);
/* Feeds one event at monotonic time now_us; fills out (cleared first). -EINVAL for a
 * message from or about a member that does not exist. */
int swim_step(struct swim *s, const struct swim_event *ev, uint64_t now_us,
	      struct swim_actions *out);
enum swim_state swim_member_state(const struct swim *s, int node);
/* What the member said of itself, or NULL while nothing was heard of it. */
const struct swim_info *swim_member_info(const struct swim *s, int node);
uint64_t swim_member_inc(const struct swim *s, int node);
