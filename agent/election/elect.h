/* Master/slave election of one pair and one instance kind (SPEC §7), as a pure state
 * machine: elect_step() takes one event and the current monotonic time and returns the
 * actions to perform. It does no I/O and reads no clock; agent/elect_drv.c turns the
 * actions into datagrams, quorum-device commands, timers and hook runs, and
 * tests/unit/test_elect.c runs several of them against a simulated network and quorum
 * device.
 *
 * Nodes are numbered 0..n-1 inside the pair; each has a side (compartment 0 or 1) and a
 * rank (0 = best: highest priority, then lowest name), computed by the caller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define ELECT_MAX_NODES 8
#define ELECT_MAX_ACTIONS 24
#define ELECT_RING 16

enum elect_role {
	ELECT_ROLE_NONE,      /* not eligible (or not started) */
	ELECT_ROLE_CANDIDATE, /* eligible, no live master known */
	ELECT_ROLE_SLAVE,     /* eligible, a live master is known */
	ELECT_ROLE_MASTER,
	_ELECT_ROLE_MAX
};
const char *elect_role_to_str(enum elect_role r);

/* Outcome of a quorum-device command, as the driver saw it. */
enum elect_io {
	ELECT_IO_OK,
	ELECT_IO_CONFLICT, /* SCSI RESERVATION CONFLICT */
	ELECT_IO_ERROR,	   /* anything else: unreachable, timeout, check condition */
	_ELECT_IO_MAX
};
const char *elect_io_to_str(enum elect_io r);

/* One node's heartbeat record on the quorum device. */
struct elect_slot {
	bool valid;    /* a well-formed record with a good hash */
	uint64_t boot; /* boot identity (first 8 bytes of the boot id) */
	uint64_t seq;
	uint64_t epoch;
	enum elect_role role;
};

enum elect_event_type {
	ELECT_EV_START,		/* the node joins the election */
	ELECT_EV_TIMER,		/* the timer armed by ELECT_ACT_ARM_TIMER expired */
	ELECT_EV_ELIGIBLE,	/* eligibility changed (profile, core health) */
	ELECT_EV_HEARTBEAT,	/* node, epoch, role, seq */
	ELECT_EV_HEARTBEAT_ACK, /* node, seq */
	ELECT_EV_REGISTER_DONE, /* io */
	ELECT_EV_READ_DONE,	/* io, seq (the read action's), slots[], holder */
	ELECT_EV_WRITE_DONE,	/* io, seq */
	ELECT_EV_RESERVE_DONE,	/* io */
	ELECT_EV_PREEMPT_DONE,	/* io */
	ELECT_EV_RELEASE_DONE,	/* io */
	ELECT_EV_OPERATOR_PROMOTE,
	ELECT_EV_OPERATOR_DEMOTE,
	ELECT_EV_HOOK_DONE, /* the demote hook ended: io OK, or ERROR (failed, timed out) */
	_ELECT_EV_MAX
};
const char *elect_event_type_to_str(enum elect_event_type t);

#define ELECT_HOLDER_NONE (-1)	  /* no reservation */
#define ELECT_HOLDER_UNKNOWN (-2) /* a key that is no node of the pair */

struct elect_event {
	enum elect_event_type type;
	int node;
	uint64_t seq;
	uint64_t epoch;
	enum elect_role role;
	bool eligible;
	enum elect_io io;
	int holder;	  /* READ_DONE: node index, ELECT_HOLDER_NONE or ELECT_HOLDER_UNKNOWN */
	bool registered;  /* READ_DONE: this node's key is registered */
	uint64_t sent_at; /* HEARTBEAT_ACK with external heartbeats: when it was sent, 0 unknown */
	struct elect_slot slots[ELECT_MAX_NODES];
};

enum elect_action_type {
	ELECT_ACT_ARM_TIMER,	  /* at */
	ELECT_ACT_SEND_HEARTBEAT, /* seq, epoch, role: to every other node of the pair */
	ELECT_ACT_SEND_ACK,	  /* node, seq */
	ELECT_ACT_QDEV_REGISTER,
	ELECT_ACT_QDEV_READ,  /* seq: all slots and the reservation */
	ELECT_ACT_QDEV_WRITE, /* own slot: seq, epoch, role */
	ELECT_ACT_QDEV_RESERVE,
	ELECT_ACT_QDEV_PREEMPT, /* node: whose key (ELECT_HOLDER_UNKNOWN: the foreign key read last)
				 */
	ELECT_ACT_QDEV_RELEASE,
	ELECT_ACT_PROMOTE,  /* run the promote hook: from now on act as master */
	ELECT_ACT_DEMOTE,   /* run the demote hook: stop acting as master, at once */
	ELECT_ACT_ROLE,	    /* role, epoch, reason: emit event=role */
	ELECT_ACT_DEGRADED, /* degraded: the other side answers (false) or not (true) */
	_ELECT_ACT_MAX
};
const char *elect_action_type_to_str(enum elect_action_type t);

struct elect_action {
	enum elect_action_type type;
	uint64_t at;
	uint64_t seq;
	uint64_t epoch;
	enum elect_role role;
	int node;
	bool degraded;
	const char *reason; /* static string */
};

struct elect_actions {
	struct elect_action a[ELECT_MAX_ACTIONS];
	int n;
};

struct elect_params {
	int n_nodes;
	int self;
	int side[ELECT_MAX_NODES]; /* compartment: 0 or 1 */
	int rank[ELECT_MAX_NODES]; /* 0 is best; unique */
	bool has_qdev;		   /* false: majority over handshakes */
	uint64_t heartbeat_interval, disk_heartbeat_interval, lease; /* µs */
	uint64_t io_timeout;	  /* a quorum-device command outstanding longer is forgotten */
	bool external_heartbeats; /* the handshake layer sends heartbeats on its own timer and
				   * numbers them; acks then carry sent_at */
	uint64_t seq_base;	  /* first sequence number - 1: unique per boot, so that an answer
				   * to a previous boot's heartbeat never matches this boot's */
	uint64_t pet_window;	  /* [fencing] pet_window (µs), 0: one read interval */
	uint64_t fence_timeout;	  /* watchdog timeout (µs): a node acting as master whose lease
				   * lapsed resets within this; 0: no watchdog (watchdog = none) */
	bool refuse_master;	  /* a watchdog is configured but not there: never take the token */
	uint64_t epoch_floor;	  /* the highest epoch this node saw before this boot (its
				   * journal): never claimed again */
};

/* What this node knows of another one. */
struct elect_peer {
	bool heard;	     /* a heartbeat arrived this boot */
	uint64_t last_heard; /* when the last one arrived */
	uint64_t nm_since;   /* its heartbeats say it is not master since (0: they do) */
	uint64_t hb_epoch;
	enum elect_role hb_role;
	struct elect_slot slot; /* last content read from the quorum device */
	bool slot_seen;
	uint64_t slot_changed; /* completion of the read that first returned this content */
	uint64_t acked_at;     /* majority mode: last ack from it (send time of the hb) */
	uint64_t follow_until; /* majority mode: I promised this node not to follow another */
};

struct elect_sent {
	uint64_t seq, at;
	bool master; /* a slot write sent while acting/becoming master */
};

enum elect_phase {
	ELECT_PHASE_IDLE,
	ELECT_PHASE_ACQUIRE, /* RESERVE or PREEMPT outstanding */
	ELECT_PHASE_CHECK,   /* reservation taken, reading the slots once more */
	ELECT_PHASE_WAIT,    /* waiting until a previous master's lease has certainly lapsed */
	ELECT_PHASE_CLAIM,   /* the first slot write as master is outstanding */
	ELECT_PHASE_VERIFY,  /* it succeeded: reading the reservation once more before promoting */
	_ELECT_PHASE_MAX
};
const char *elect_phase_to_str(enum elect_phase p);

struct elect {
	struct elect_params p;
	bool started, eligible;
	enum elect_role role;
	enum elect_phase phase;
	uint64_t start_us;
	uint64_t epoch;		/* highest epoch seen */
	uint64_t master_epoch;	/* epoch of this node's mastership */
	uint64_t lease_until;	/* meaningful while master */
	uint64_t pet_until;	/* the watchdog may be petted while acting until then */
	uint64_t wait_until;	/* ELECT_PHASE_WAIT */
	uint64_t claim_seq;	/* ELECT_PHASE_CLAIM: the write that makes us master */
	uint64_t claim_at;	/* ELECT_PHASE_VERIFY: when that write was sent */
	uint64_t verify_after;	/* a read sent at or after this checks the last write */
	uint64_t renew_at;	/* send time of the last successful master write, not yet
				 * confirmed by a read showing the reservation ours */
	uint64_t claim_backoff; /* a failed claim write: not again before this */
	bool hook_pending;	/* the demote hook runs: still acting as master */
	bool release_pending;	/* RELEASE the token once the demote hook has ended */
	bool fenced;		/* the demote hook failed or hung: stop petting the watchdog */
	uint64_t cand_since;	/* this node has been its compartment's candidate since (0: not) */
	uint64_t partner_since; /* one compartment (admin): this node has been the token holder's
				 * acknowledging node since (0: not) */
	uint64_t other_gone_since; /* the other compartment has had no live candidate since (0: it
				      has) */
	uint64_t wr_ok_sent;	   /* send time of the last slot write that succeeded */
	uint64_t holdoff_until;	   /* after an operator demote: do not take the token back */
	uint64_t defer_until;	   /* a master of this compartment handed the token back (it
				    * became ineligible, or was demoted): the other compartment's
				    * candidate goes first until then */
	bool op_promote;	   /* operator asked: skip the rank delay */
	bool degraded;
	uint64_t last_slave_ack;
	uint64_t master_since; /* when this mastership began */
	const char *last_reason;

	uint64_t next_hb, next_disk, next_read;
	uint64_t hb_seq, wr_seq;
	struct elect_sent hb_sent[ELECT_RING], wr_sent[ELECT_RING];

	/* the quorum device */
	bool registered, reg_busy;
	bool rd_busy, wr_busy, op_busy;
	uint64_t rd_since, wr_since, op_since, reg_since;
	bool rd_check;	  /* the outstanding read is the post-acquire check */
	uint64_t rd_sent; /* when the outstanding read was sent */
	uint64_t rd_seq;  /* its number (the action's seq, echoed by READ_DONE) */
	bool holder_known;
	int holder;
	uint64_t last_read_ok;
	int victim;		/* PREEMPT target */
	uint64_t unknown_since; /* the token has been held by a key of no pair node since */
	uint64_t acq_at;	/* when the reservation was taken (or a claim write failed) */
	uint64_t own_read_at;	/* send time of the last read showing the token ours */
	uint64_t victim_until;	/* the wait for the node preempted (check_done) */
	bool own_token;		/* taken by this boot's session (a restarted node's key may
				 * still hold it through its dead session: PREEMPT moves it) */

	/* majority mode: the node this one acknowledged last, and until when it may not
	 * acknowledge (or be) another master */
	int promise_to;
	uint64_t promise_until;

	struct elect_peer peers[ELECT_MAX_NODES];
};

/* Timings derived from the parameters (SPEC §7). */
uint64_t elect_net_silence(const struct elect_params *p);   /* holder silent on the network */
uint64_t elect_read_interval(const struct elect_params *p); /* slots are read twice per write */
uint64_t elect_slot_silence(const struct elect_params *p);  /* holder's slot not advancing */
uint64_t elect_master_timeout(const struct elect_params *p);

void elect_init(struct elect *sm, const struct elect_params *p);
/* Feeds one event at monotonic time now_us; appends actions to out (cleared first).
 * Returns 0, or -EINVAL for an event that makes no sense (unknown node). */
int elect_step(struct elect *sm, const struct elect_event *ev, uint64_t now_us,
	       struct elect_actions *out);
/* What this node's heartbeats say now (external heartbeats: the handshake layer asks). */
void elect_heartbeat_content(const struct elect *sm, uint64_t *ret_epoch,
			     enum elect_role *ret_role);
/* Acting as master at now: promoted, not demoted, lease valid. */
bool elect_is_master(const struct elect *sm, uint64_t now_us);
/* Whether the watchdog may be petted now: not acting as master (promoted, or its demote
 * hook still running), or acting within a valid lease, and not fenced. */
bool elect_may_pet(const struct elect *sm, uint64_t now_us);
/* How long after a renewing send a master may still pet its watchdog. */
uint64_t elect_pet_window(const struct elect_params *p);
/* How long after a renewing send (or a sign of it seen by another node) a master has
 * certainly stopped acting: demoted, or reset by its watchdog (SPEC §7 Fencing). */
uint64_t elect_acting_bound(const struct elect_params *p);
/* The candidate of a compartment as this node sees it, or -1. */
int elect_candidate(const struct elect *sm, int side, uint64_t now_us);
/* Whether the operator's promote/demote would be refused; the reason is a static string. */
const char *elect_promote_refusal(const struct elect *sm, uint64_t now_us);
const char *elect_demote_refusal(const struct elect *sm, uint64_t now_us);
