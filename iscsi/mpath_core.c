#include "mpath_core.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const path_state_str[_MPATH_PATH_STATE_MAX] = {
    [MPATH_PATH_DOWN] = "down", [MPATH_PATH_LOGIN] = "login",	  [MPATH_PATH_PROBE] = "probe",
    [MPATH_PATH_UP] = "up",	[MPATH_PATH_REFUSED] = "refused",
};

const char *mpath_path_state_to_str(enum mpath_path_state s)
{
	return s < _MPATH_PATH_STATE_MAX ? path_state_str[s] : NULL;
}

static const char *const status_str[_MPATH_ST_MAX] = {
    [MPATH_ST_GOOD] = "good",
    [MPATH_ST_UNIT_ATTENTION] = "unit-attention",
    [MPATH_ST_TRANSPORT] = "transport",
    [MPATH_ST_TARGET] = "target",
};

const char *mpath_status_to_str(enum mpath_status s)
{
	return s < _MPATH_ST_MAX ? status_str[s] : NULL;
}

static const char *const verdict_str[_MPATH_V_MAX] = {
    [MPATH_V_DONE] = "done", [MPATH_V_RETRY] = "retry", [MPATH_V_QUEUE] = "queue",
    [MPATH_V_FAIL] = "fail", [MPATH_V_HOLD] = "hold",
};

const char *mpath_verdict_to_str(enum mpath_verdict v)
{
	return v < _MPATH_V_MAX ? verdict_str[v] : NULL;
}

void mpath_core_init(struct mpath_core *c, const struct mpath_params *p, int n_paths, uint64_t now)
{
	*c = (struct mpath_core){.p = *p, .active = -1};
	if (c->p.backoff_min == 0)
		c->p.backoff_min = 250 * USEC_PER_MSEC;
	if (c->p.backoff_max < c->p.backoff_min)
		c->p.backoff_max = c->p.backoff_min;
	c->n_paths = n_paths > MPATH_MAX_PATHS ? MPATH_MAX_PATHS : n_paths;
	for (int i = 0; i < c->n_paths; i++) {
		c->paths[i].state = MPATH_PATH_DOWN;
		c->paths[i].since_us = now;
		c->paths[i].next_login_us = now;
	}
}

static void schedule_login(struct mpath_core *c, struct mpath_path *p, enum mpath_path_state old,
			   enum mpath_path_state s, uint64_t now)
{
	switch (s) {
	case MPATH_PATH_DOWN:
		if (old == MPATH_PATH_UP || p->backoff_us == 0)
			p->backoff_us = c->p.backoff_min;
		else if (p->backoff_us < c->p.backoff_max)
			p->backoff_us = p->backoff_us * 2 > c->p.backoff_max ? c->p.backoff_max
									     : p->backoff_us * 2;
		/* Dropping from UP, try again soon; a failed attempt waits its backoff. */
		p->next_login_us = now + (old == MPATH_PATH_UP ? 0 : p->backoff_us);
		break;
	case MPATH_PATH_REFUSED:
		p->backoff_us = c->p.backoff_max;
		p->next_login_us = now + c->p.backoff_max;
		break;
	case MPATH_PATH_UP:
		p->backoff_us = 0;
		p->last_check_us = now;
		break;
	case MPATH_PATH_LOGIN:
	case MPATH_PATH_PROBE:
	case _MPATH_PATH_STATE_MAX:
		break;
	}
}

bool mpath_core_set_state(struct mpath_core *c, int path, enum mpath_path_state s, uint64_t now)
{
	if (path < 0 || path >= c->n_paths)
		return false;
	struct mpath_path *p = &c->paths[path];
	enum mpath_path_state old = p->state;
	if (old == s)
		return false;
	p->state = s;
	p->since_us = now;
	p->st.state_changes++;
	schedule_login(c, p, old, s, now);
	if (c->active == path && s != MPATH_PATH_UP)
		c->active = -1;
	return true;
}

int mpath_core_up_count(const struct mpath_core *c)
{
	int n = 0;
	for (int i = 0; i < c->n_paths; i++)
		n += c->paths[i].state == MPATH_PATH_UP;
	return n;
}

int mpath_core_pick(struct mpath_core *c)
{
	if (c->n_paths == 0)
		return -1;
	switch (c->p.selector) {
	case CFG_PS_FAILOVER:
		/* Stay on the active path while it is up; else the first one up. */
		if (c->active >= 0 && c->paths[c->active].state == MPATH_PATH_UP)
			return c->active;
		for (int i = 0; i < c->n_paths; i++)
			if (c->paths[i].state == MPATH_PATH_UP)
				return c->active = i;
		return -1;
	case CFG_PS_ROUND_ROBIN:
	case _CFG_PS_MAX:
		break;
	}
	for (int k = 0; k < c->n_paths; k++) {
		int i = (int)((c->rr_next + (unsigned)k) % (unsigned)c->n_paths);
		if (c->paths[i].state == MPATH_PATH_UP) {
			c->rr_next = (unsigned)i + 1;
			return i;
		}
	}
	return -1;
}

void mpath_core_cmd_init(struct mpath_core_cmd *cmd)
{
	*cmd = (struct mpath_core_cmd){.path = -1, .held_on = -1};
}

void mpath_core_issued(struct mpath_core *c, struct mpath_core_cmd *cmd, int path, uint64_t now)
{
	cmd->path = path;
	cmd->issued_us = now;
	cmd->deadline_us = now + c->p.path_timeout;
	cmd->queued_us = 0;
	cmd->attempts++;
	if (path >= 0 && path < c->n_paths)
		c->paths[path].inflight++;
}

static void count_good(struct mpath_stats *st, uint64_t lat, uint64_t bytes, bool is_write)
{
	st->ios++;
	if (bytes == 0)
		st->other++;
	else if (is_write) {
		st->writes++;
		st->bytes_written += bytes;
	} else {
		st->reads++;
		st->bytes_read += bytes;
	}
	st->lat_sum_us += lat;
	if (lat > st->lat_max_us)
		st->lat_max_us = lat;
}

enum mpath_verdict mpath_core_completed(struct mpath_core *c, struct mpath_core_cmd *cmd,
					enum mpath_status st, uint64_t bytes, bool is_write,
					uint64_t now)
{
	struct mpath_path *p = NULL;
	if (cmd->path >= 0 && cmd->path < c->n_paths) {
		p = &c->paths[cmd->path];
		if (p->inflight)
			p->inflight--;
	}
	cmd->path = -1;
	uint64_t lat = now > cmd->issued_us ? now - cmd->issued_us : 0;
	if (p && st == MPATH_ST_GOOD)
		count_good(&p->st, lat, bytes, is_write);
	else if (p)
		p->st.errors++;
	switch (st) {
	case MPATH_ST_GOOD:
		return MPATH_V_DONE;
	case MPATH_ST_UNIT_ATTENTION:
		if (p)
			p->st.unit_attentions++;
		if (++cmd->ua_retries > MPATH_MAX_UA_RETRIES)
			return MPATH_V_FAIL;
		break;
	case MPATH_ST_TRANSPORT:
		if (p)
			p->st.reissued++;
		break;
	case MPATH_ST_TARGET:
	case _MPATH_ST_MAX:
		return MPATH_V_FAIL;
	}
	/* No cap on path failures: while a path is healthy the command moves on. */
	return MPATH_V_RETRY;
}

enum mpath_verdict mpath_core_path_failed(struct mpath_core *c, struct mpath_core_cmd *cmd,
					  enum mpath_fail_kind kind, bool changes_data,
					  uint64_t now)
{
	int path = cmd->path;
	enum mpath_verdict v = mpath_core_completed(c, cmd, MPATH_ST_TRANSPORT, 0, false, now);
	if (v != MPATH_V_RETRY || !changes_data || path < 0 || path >= c->n_paths)
		return v;
	switch (kind) {
	case MPATH_FAIL_ENDED:
		return MPATH_V_RETRY;
	case MPATH_FAIL_ABANDONED:
	case _MPATH_FAIL_MAX:
		break;
	}
	cmd->held_on = path;
	cmd->held_us = now ? now : 1;
	c->paths[path].held++;
	return MPATH_V_HOLD;
}

static void unhold(struct mpath_core *c, struct mpath_core_cmd *cmd)
{
	if (cmd->held_on >= 0 && cmd->held_on < c->n_paths && c->paths[cmd->held_on].held)
		c->paths[cmd->held_on].held--;
	cmd->held_on = -1;
	cmd->held_us = 0;
}

enum mpath_verdict mpath_core_fenced(struct mpath_core *c, struct mpath_core_cmd *cmd)
{
	unhold(c, cmd);
	return MPATH_V_RETRY;
}

enum mpath_verdict mpath_core_hold_check(struct mpath_core *c, struct mpath_core_cmd *cmd,
					 uint64_t now)
{
	if (cmd->held_on < 0)
		return MPATH_V_RETRY;
	if (now < cmd->held_us + c->p.no_path_timeout)
		return MPATH_V_HOLD;
	unhold(c, cmd);
	return MPATH_V_FAIL;
}

enum mpath_verdict mpath_core_no_path(const struct mpath_core *c, struct mpath_core_cmd *cmd,
				      uint64_t now)
{
	if (cmd->queued_us == 0)
		cmd->queued_us = now ? now : 1;
	return now >= cmd->queued_us + c->p.no_path_timeout ? MPATH_V_FAIL : MPATH_V_QUEUE;
}

uint64_t mpath_core_queue_deadline(const struct mpath_core *c, const struct mpath_core_cmd *cmd)
{
	return cmd->queued_us ? cmd->queued_us + c->p.no_path_timeout : USEC_INFINITY;
}

bool mpath_core_overdue(const struct mpath_core_cmd *cmd, uint64_t now)
{
	return cmd->path >= 0 && now >= cmd->deadline_us;
}

uint64_t mpath_core_stall(uint64_t expected, uint64_t now, uint64_t slack)
{
	return expected && now > expected && now - expected > slack ? now - expected : 0;
}

void mpath_core_cmd_shift(struct mpath_core_cmd *cmd, uint64_t gap)
{
	if (cmd->path >= 0)
		cmd->deadline_us += gap;
	if (cmd->queued_us)
		cmd->queued_us += gap;
	if (cmd->held_us)
		cmd->held_us += gap;
}

bool mpath_core_login_due(const struct mpath_core *c, int path, uint64_t now)
{
	const struct mpath_path *p = &c->paths[path];
	return (p->state == MPATH_PATH_DOWN || p->state == MPATH_PATH_REFUSED) &&
	       now >= p->next_login_us;
}

bool mpath_core_check_due(const struct mpath_core *c, int path, uint64_t now)
{
	const struct mpath_path *p = &c->paths[path];
	return p->state == MPATH_PATH_UP && now >= p->last_check_us + c->p.path_check_interval;
}

void mpath_core_checked(struct mpath_core *c, int path, uint64_t now)
{
	c->paths[path].last_check_us = now;
}

int mpath_capacity(uint64_t last_lba, uint32_t block_len, uint64_t *ret_size, char *why,
		   size_t why_len)
{
	if (block_len < MPATH_BLOCK_MIN || block_len > MPATH_BLOCK_MAX ||
	    (block_len & (block_len - 1)) != 0) {
		snprintf(why, why_len,
			 "READ CAPACITY(16): block length %" PRIu32
			 " is not a power of two from %u to %u",
			 block_len, MPATH_BLOCK_MIN, MPATH_BLOCK_MAX);
		return -ERANGE;
	}
	/* last_lba + 1 blocks of block_len bytes must fit in INT64_MAX. */
	if (last_lba >= (uint64_t)INT64_MAX / block_len) {
		snprintf(why, why_len,
			 "READ CAPACITY(16): last block %" PRIu64 " of %" PRIu32
			 " bytes: the size does not fit in 63 bits",
			 last_lba, block_len);
		return -ERANGE;
	}
	*ret_size = (last_lba + 1) * block_len;
	return 0;
}

static int designator_rank(const struct mpath_designator *d)
{
	if (d->association != 0 || d->len == 0)
		return 0;
	switch (d->type) {
	case 3:
		return 4;
	case 2:
		return 3;
	case 8:
		return 2;
	case 1:
		return 1;
	default:
		return 0;
	}
}

static void put_text(const uint8_t *s, size_t n, char *out, size_t out_len, size_t pos)
{
	for (size_t i = 0; i < n && s[i] && pos + 1 < out_len; i++)
		out[pos++] = (s[i] > ' ' && s[i] < 0x7f) ? (char)s[i] : '_';
	/* T10 vendor ids are space-padded: drop the trailing pad. */
	while (pos > 0 && out[pos - 1] == '_')
		pos--;
	out[pos] = '\0';
}

int mpath_designator_pick(const struct mpath_designator *d, size_t n, char *out, size_t out_len)
{
	const struct mpath_designator *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (designator_rank(&d[i]) > (best ? designator_rank(best) : 0))
			best = &d[i];
	if (!best || out_len < 8)
		return -ENOENT;
	static const char hex[] = "0123456789abcdef";
	const char *prefix = best->type == 3   ? "naa."
			     : best->type == 2 ? "eui."
			     : best->type == 8 ? "name."
					       : "t10.";
	size_t pos = strlen(prefix);
	memcpy(out, prefix, pos + 1);
	if (best->code_set == 1) {
		for (size_t i = 0; i < best->len && pos + 3 <= out_len; i++) {
			out[pos++] = hex[best->data[i] >> 4];
			out[pos++] = hex[best->data[i] & 15];
		}
		out[pos] = '\0';
	} else {
		put_text(best->data, best->len, out, out_len, pos);
	}
	return 0;
}
