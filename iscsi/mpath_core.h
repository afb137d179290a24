/* The pure part of multipath (SPEC §4): path states, the path selector, per-command
 * deadlines, re-issue decisions, queueing while no path is up, and the per-path
 * counters. No I/O and no clock: every function that needs the time takes `now`
 * (monotonic µs); the driver (mpath.c) does the sessions and the SCSI commands. */
#pragma once

#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#define MPATH_MAX_PATHS CFG_MAX_PORTALS
/* UNIT ATTENTION is the target answering: retried this often, then EIO. Path failures
 * have no such cap: a command moves on while a path is healthy (no_path_timeout bounds
 * the wait when none is). */
#define MPATH_MAX_UA_RETRIES 10
/* READ CAPACITY(16) block lengths outside this range (or not a power of two) are refused. */
#define MPATH_BLOCK_MIN 512U
#define MPATH_BLOCK_MAX 65536U
#define MPATH_DESIGNATOR_MAX 128

enum mpath_path_state {
	MPATH_PATH_DOWN,    /* no session; a login is due at next_login_us */
	MPATH_PATH_LOGIN,   /* connect and login in progress */
	MPATH_PATH_PROBE,   /* logged in; TEST UNIT READY and identity in progress */
	MPATH_PATH_UP,	    /* carries I/O */
	MPATH_PATH_REFUSED, /* shows a different LU; retried after the longest backoff */
	_MPATH_PATH_STATE_MAX
};
const char *mpath_path_state_to_str(enum mpath_path_state s);

/* How a SCSI command ended, as far as multipath cares. */
enum mpath_status {
	MPATH_ST_GOOD,
	MPATH_ST_UNIT_ATTENTION, /* sense key 6: retry */
	MPATH_ST_TRANSPORT,	 /* cancelled, session lost, timed out: retry on another path */
	MPATH_ST_TARGET,	 /* any other CHECK CONDITION or status: the caller sees EIO */
	_MPATH_ST_MAX
};
const char *mpath_status_to_str(enum mpath_status s);

enum mpath_verdict {
	MPATH_V_DONE,  /* complete the command with success */
	MPATH_V_RETRY, /* issue it again (on any healthy path) */
	MPATH_V_QUEUE, /* no path: keep it queued */
	MPATH_V_FAIL,  /* complete it with EIO */
	MPATH_V_HOLD,  /* a write whose task the failed path's target may still hold: wait */
	_MPATH_V_MAX
};
const char *mpath_verdict_to_str(enum mpath_verdict v);

/* How a path failed, as far as the commands in flight on it care. */
enum mpath_fail_kind {
	/* The target ended the session (closed or reset its connection, the process died):
	 * at ErrorRecoveryLevel 0 a connection failure is a session failure, which ends its
	 * tasks (RFC 7143). */
	MPATH_FAIL_ENDED,
	/* We ended it (a command overdue, a failed check): the target may still hold its
	 * tasks, and a hung target that runs again executes them. */
	MPATH_FAIL_ABANDONED,
	_MPATH_FAIL_MAX
};

struct mpath_params {
	uint64_t path_timeout;		   /* a command older than this fails its path */
	uint64_t no_path_timeout;	   /* queued this long with no path: EIO */
	uint64_t path_check_interval;	   /* TEST UNIT READY on an idle-or-busy path */
	uint64_t backoff_min, backoff_max; /* re-login delays */
	enum cfg_path_selector selector;
};

struct mpath_stats {
	uint64_t ios, reads, writes, other;
	uint64_t bytes_read, bytes_written;
	uint64_t errors; /* commands that ended other than GOOD */
	uint64_t unit_attentions;
	uint64_t timeouts; /* path failures because a command was overdue */
	uint64_t state_changes;
	uint64_t lat_sum_us, lat_max_us; /* over GOOD commands */
	uint64_t reissued;		 /* commands moved away from this path */
};

struct mpath_path {
	enum mpath_path_state state;
	uint64_t since_us;
	uint64_t backoff_us;
	uint64_t next_login_us;
	uint64_t last_check_us;
	unsigned inflight;
	unsigned held; /* writes held until this path's old session is terminated */
	struct mpath_stats st;
};

struct mpath_core {
	struct mpath_params p;
	struct mpath_path paths[MPATH_MAX_PATHS];
	int n_paths;
	unsigned rr_next;
	int active; /* failover: the path in use, -1 none */
};

/* The multipath part of one command (a driver embeds it). */
struct mpath_core_cmd {
	int path; /* -1 when not issued */
	uint64_t issued_us;
	uint64_t deadline_us;
	uint64_t queued_us; /* first time it found no path; 0 when it never waited */
	unsigned attempts;
	unsigned ua_retries;
	int held_on;	  /* MPATH_V_HOLD: the path whose target may hold it; -1 none */
	uint64_t held_us; /* since when */
};

void mpath_core_init(struct mpath_core *c, const struct mpath_params *p, int n_paths, uint64_t now);
/* The only place a path changes state. Returns true when the state changed. Sets the
 * re-login time: failing while logging in doubles the backoff, falling from UP starts
 * at backoff_min, REFUSED waits backoff_max. */
bool mpath_core_set_state(struct mpath_core *c, int path, enum mpath_path_state s, uint64_t now);
int mpath_core_up_count(const struct mpath_core *c);
/* The path for the next command, or -1 when none is UP. */
int mpath_core_pick(struct mpath_core *c);

void mpath_core_cmd_init(struct mpath_core_cmd *cmd);
void mpath_core_issued(struct mpath_core *c, struct mpath_core_cmd *cmd, int path, uint64_t now);
/* A command ended on its path: counts it and says what to do next. */
enum mpath_verdict mpath_core_completed(struct mpath_core *c, struct mpath_core_cmd *cmd,
					enum mpath_status st, uint64_t bytes, bool is_write,
					uint64_t now);
/* The command's path failed (`kind`) while it was in flight. Returns RETRY, or HOLD for a
 * command that changes data on a session we abandoned: it must not be issued anywhere
 * until the target has terminated its task there (mpath_core_fenced), or a hung target
 * that runs again would apply it over newer data. */
enum mpath_verdict mpath_core_path_failed(struct mpath_core *c, struct mpath_core_cmd *cmd,
					  enum mpath_fail_kind kind, bool changes_data,
					  uint64_t now);
/* A held command: its path's old session is terminated at the target (a login with the
 * same ISID reinstated it: RFC 7143 §6.3.5). Returns RETRY. */
enum mpath_verdict mpath_core_fenced(struct mpath_core *c, struct mpath_core_cmd *cmd);
/* A held command still unconfirmed: HOLD until no_path_timeout after it was held, then
 * FAIL (the target may still apply it: the storage layer must fence that portal). */
enum mpath_verdict mpath_core_hold_check(struct mpath_core *c, struct mpath_core_cmd *cmd,
					 uint64_t now);
/* A command found no UP path: QUEUE until no_path_timeout after it first waited, then FAIL. */
enum mpath_verdict mpath_core_no_path(const struct mpath_core *c, struct mpath_core_cmd *cmd,
				      uint64_t now);
bool mpath_core_overdue(const struct mpath_core_cmd *cmd, uint64_t now);
/* When a queued command gives up (for the driver's timer). */
uint64_t mpath_core_queue_deadline(const struct mpath_core *c, const struct mpath_core_cmd *cmd);
/* A stall of the driver itself (stopped by SIGSTOP, starved of CPU, a blocking step): it
 * should have run by `expected` and runs at `now`. Returns the time it lost when that is
 * more than `slack`, else 0. That time is nobody's fault: the driver moves the clocks of
 * what was in flight by it (mpath_core_cmd_shift), so no path fails for it. */
uint64_t mpath_core_stall(uint64_t expected, uint64_t now, uint64_t slack);
void mpath_core_cmd_shift(struct mpath_core_cmd *cmd, uint64_t gap);
bool mpath_core_login_due(const struct mpath_core *c, int path, uint64_t now);
bool mpath_core_check_due(const struct mpath_core *c, int path, uint64_t now);
void mpath_core_checked(struct mpath_core *c, int path, uint64_t now);

/* The LU's size from READ CAPACITY(16): (last LBA + 1) × block length. Returns 0, or
 * -ERANGE with a sentence in `why` for a block length that is 0, not a power of two or
 * outside MPATH_BLOCK_MIN..MAX, or a size that does not fit in 63 bits (what a block
 * device's offsets can address). */
int mpath_capacity(uint64_t last_lba, uint32_t block_len, uint64_t *ret_size, char *why,
		   size_t why_len);

/* One designator of VPD page 0x83, as the target sent it. */
struct mpath_designator {
	int type;	 /* 1 T10 vendor, 2 EUI-64, 3 NAA, 8 SCSI name string */
	int association; /* 0: the logical unit */
	int code_set;	 /* 1 binary, 2 ASCII, 3 UTF-8 */
	const uint8_t *data;
	size_t len;
};
/* Picks the designator that names the LU best (NAA, then EUI-64, then SCSI name, then T10
 * vendor id; only LU-associated ones) and formats it as "naa.<hex>", "eui.<hex>",
 * "name.<text>", "t10.<text>". Returns 0, or -ENOENT when none names the LU. */
int mpath_designator_pick(const struct mpath_designator *d, size_t n, char *out, size_t out_len);
