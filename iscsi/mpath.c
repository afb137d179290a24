#include "mpath.h"
#include "mpath_int.h"

#include "isession.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>

#define TICK_US (50 * USEC_PER_MSEC)
/* Later than this past the tick: the agent itself did not run (absorb_stall). */
#define STALL_SLACK_US (500 * USEC_PER_MSEC)
#define MAX_INFLIGHT_PER_PATH 64
#define DEFAULT_MAX_XFER (1U << 20)
#define LOGIN_TIMEOUT_MIN (3 * USEC_PER_SEC)
/* The longest a context given up during its login is kept for libiscsi to call it back. */

static const char *const op_str[_MPATH_OP_MAX] = {
    [MPATH_OP_READ] = "read",
    [MPATH_OP_WRITE] = "write",
    [MPATH_OP_FLUSH] = "flush",
    [MPATH_OP_TRIM] = "trim",
};

const char *mpath_op_to_str(enum mpath_op op)
{
	return op < _MPATH_OP_MAX ? op_str[op] : NULL;
}

static void dispatch(struct mpath *m);
static void path_fail(struct path *p, const char *reason);
static void release_held(struct path *p);

/* ---- lists ---- */

static void slot_link(struct path *p, struct slot *s)
{
	s->p = p;
	s->prev = NULL;
	s->next = p->slots;
	if (p->slots)
		p->slots->prev = s;
	p->slots = s;
}

static void slot_unlink_free(struct slot *s)
{
	struct path *p = s->p;
	if (s->prev)
		s->prev->next = s->next;
	else
		p->slots = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->task)
		scsi_free_scsi_task(s->task);
	free(s);
}

static void list_push(struct cmd **head, struct cmd **tail, struct cmd *c, bool front)
{
	c->prev = c->next = NULL;
	if (!*head) {
		*head = *tail = c;
	} else if (front) {
		c->next = *head;
		(*head)->prev = c;
		*head = c;
	} else {
		c->prev = *tail;
		(*tail)->next = c;
		*tail = c;
	}
}

static void list_remove(struct cmd **head, struct cmd **tail, struct cmd *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		*tail = c->prev;
	c->prev = c->next = NULL;
}

static void queue_push(struct mpath *m, struct cmd *c, bool front)
{
	list_push(&m->queue_head, &m->queue_tail, c, front);
}

static void queue_remove(struct mpath *m, struct cmd *c)
{
	list_remove(&m->queue_head, &m->queue_tail, c);
}

/* ---- events ---- */

static void emit_path(struct path *p, const char *state, const char *reason)
{
	struct event ev;
	event_begin(&ev, "path");
	event_add(&ev, "storage", p->m->st->name);
	event_add(&ev, "portal", p->portal);
	event_add(&ev, "state", state);
	event_add(&ev, "reason", reason);
	event_emit(&ev);
}

static void emit_storage(struct mpath *m)
{
	struct event ev;
	event_begin(&ev, "storage");
	event_add(&ev, "name", m->st->name);
	event_add(&ev, "dev", m->dev[0] ? m->dev : "none");
	event_addf(&ev, "paths", "%d/%d", mpath_core_up_count(&m->core), m->core.n_paths);
	event_add_u64(&ev, "size", m->id.size);
	event_add(&ev, "designator", m->ident_known ? m->id.designator : "unknown");
	event_emit(&ev);
}

static void set_state(struct path *p, enum mpath_path_state s)
{
	struct mpath *m = p->m;
	bool was_up = m->core.paths[p->idx].state == MPATH_PATH_UP;
	mpath_core_set_state(&m->core, p->idx, s, now_usec());
	if (was_up != (s == MPATH_PATH_UP) && m->ident_known)
		emit_storage(m);
}

/* ---- completing block requests ---- */

static void io_sub_done(struct mpath_io *io, int r)
{
	if (r < 0 && io->error == 0)
		io->error = r;
	if (--io->pending == 0)
		io->done(io, io->error);
}

static void cmd_finish(struct cmd *c, int r)
{
	struct mpath_io *io = c->io;
	free(c);
	io_sub_done(io, r);
}

static bool changes_data(const struct cmd *c)
{
	return c->op == MPATH_OP_WRITE || c->op == MPATH_OP_TRIM;
}

/* Whether the target ended the session (at ErrorRecoveryLevel 0 its tasks ended with it)
 * or we gave up on it (the target may still hold tasks: writes wait for a fence). */
static enum mpath_fail_kind fail_kind(const char *reason)
{
	return reason && !strcmp(reason, "session-lost") ? MPATH_FAIL_ENDED : MPATH_FAIL_ABANDONED;
}

/* Where a command goes after its verdict. */
static void cmd_route(struct mpath *m, struct cmd *c, enum mpath_verdict v)
{
	switch (v) {
	case MPATH_V_DONE:
		cmd_finish(c, 0);
		break;
	case MPATH_V_RETRY:
	case MPATH_V_QUEUE:
		queue_push(m, c, true);
		break;
	case MPATH_V_HOLD:
		list_push(&m->held_head, &m->held_tail, c, false);
		break;
	case MPATH_V_FAIL:
	case _MPATH_V_MAX:
		cmd_finish(c, -EIO);
		break;
	}
}

/* Converts a finished task into what multipath cares about. */
static enum mpath_status classify(int status, struct scsi_task *task)
{
	switch (status) {
	case SCSI_STATUS_GOOD:
		return MPATH_ST_GOOD;
	case SCSI_STATUS_CHECK_CONDITION:
		return task && task->sense.key == SCSI_SENSE_UNIT_ATTENTION
			   ? MPATH_ST_UNIT_ATTENTION
			   : MPATH_ST_TARGET;
	case SCSI_STATUS_CANCELLED:
	case SCSI_STATUS_ERROR:
	case SCSI_STATUS_TIMEOUT:
		return MPATH_ST_TRANSPORT;
	default:
		return MPATH_ST_TARGET;
	}
}

static void io_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct slot *s = pd;
	struct path *p = s->p;
	struct mpath *m = p->m;
	struct cmd *c = s->cmd;
	if (s->orphan || !c) {
		slot_unlink_free(s);
		return;
	}
	enum mpath_status st = classify(status, s->task);
	if (st == MPATH_ST_TRANSPORT) {
		/* The session failed under this command: path_fail moves it with the others (its
		 * slot is still on the path, freed at teardown). */
		path_fail(p, status == SCSI_STATUS_CANCELLED ? "session-lost" : "transport-error");
		return dispatch(m);
	}
	c->slot = NULL;
	if (st == MPATH_ST_TARGET)
		log_warn("storage %s: %s %s at block %" PRIu64 " failed on %s: %s", m->st->name,
			 mpath_op_to_str(c->op), scsi_sense_key_str(s->task->sense.key), c->lba,
			 p->portal, iscsi_get_error(ctx));
	uint64_t bytes = (c->op == MPATH_OP_READ || c->op == MPATH_OP_WRITE)
			     ? (uint64_t)c->nblocks * m->id.block_size
			     : 0;
	enum mpath_verdict v =
	    mpath_core_completed(&m->core, &c->cc, st, bytes, c->op == MPATH_OP_WRITE, now_usec());
	slot_unlink_free(s);
	cmd_route(m, c, v);
	dispatch(m);
}

/* ---- issuing ---- */

static struct scsi_task *issue_task(struct path *p, struct slot *s, struct cmd *c)
{
	int lun = (int)p->m->st->lun;
	uint32_t bs = p->m->id.block_size;
	uint32_t bytes = c->nblocks * bs;
	switch (c->op) {
	case MPATH_OP_READ:
		s->iov = (struct scsi_iovec){.iov_base = c->buf, .iov_len = bytes};
		return iscsi_read16_iov_task(p->ctx, lun, c->lba, bytes, (int)bs, 0, 0, 0, 0, 0,
					     io_cb, s, &s->iov, 1);
	case MPATH_OP_WRITE:
		s->iov = (struct scsi_iovec){.iov_base = c->buf, .iov_len = bytes};
		return iscsi_write16_iov_task(p->ctx, lun, c->lba, NULL, bytes, (int)bs, 0, 0, 0, 0,
					      0, io_cb, s, &s->iov, 1);
	case MPATH_OP_FLUSH:
		return iscsi_synchronizecache16_task(p->ctx, lun, 0, 0, 0, 0, io_cb, s);
	case MPATH_OP_TRIM:
		s->ul = (struct unmap_list){.lba = c->lba, .num = c->nblocks};
		return iscsi_unmap_task(p->ctx, lun, 0, 0, &s->ul, 1, io_cb, s);
	case _MPATH_OP_MAX:
		break;
	}
	return NULL;
}

/* Returns 0, or -EAGAIN when the path could not take it (the path is failed then). */
static int issue(struct path *p, struct cmd *c)
{
	struct mpath *m = p->m;
	struct slot *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = SLOT_IO;
	s->cmd = c;
	slot_link(p, s);
	uint64_t now = now_usec();
	s->task = issue_task(p, s, c);
	if (!s->task) {
		slot_unlink_free(s);
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(p->ctx));
		path_fail(p, "submit-failed");
		return -EAGAIN;
	}
	s->deadline = now + m->core.p.path_timeout;
	c->slot = s;
	mpath_core_issued(&m->core, &c->cc, p->idx, now);
	return 0;
}

static bool path_has_room(struct mpath *m, int i)
{
	return m->core.paths[i].inflight < MAX_INFLIGHT_PER_PATH;
}

/* Picks a path with room; -1 none up, -2 all up paths busy. */
static int pick(struct mpath *m)
{
	for (int k = 0; k < m->core.n_paths; k++) {
		int i = mpath_core_pick(&m->core);
		if (i < 0)
			return -1;
		if (path_has_room(m, i))
			return i;
		if (m->core.p.selector == CFG_PS_FAILOVER)
			return -2;
	}
	return -2;
}

static void fail_expired_queue(struct mpath *m, uint64_t now)
{
	struct cmd *c = m->queue_head;
	while (c) {
		struct cmd *next = c->next;
		if (mpath_core_no_path(&m->core, &c->cc, now) == MPATH_V_FAIL) {
			queue_remove(m, c);
			log_error("storage %s: no path for %" PRIu64 "ms, %s at block %" PRIu64
				  " fails with EIO",
				  m->st->name,
				  (uint64_t)(m->core.p.no_path_timeout / USEC_PER_MSEC),
				  mpath_op_to_str(c->op), c->lba);
			cmd_finish(c, -EIO);
		}
		c = next;
	}
}

static void dispatch(struct mpath *m)
{
	for (unsigned guard = 0; m->queue_head && guard < 100000; guard++) {
		int i = pick(m);
		if (i == -1) {
			fail_expired_queue(m, now_usec());
			return;
		}
		if (i == -2)
			return;
		struct cmd *c = m->queue_head;
		queue_remove(m, c);
		int r = issue(&m->paths[i], c);
		if (r == -ENOMEM) {
			cmd_finish(c, -ENOMEM);
		} else if (r < 0) {
			queue_push(m, c, true);
		}
	}
}

static int split_one(struct mpath *m, struct mpath_io *io, uint64_t lba, uint32_t nblocks,
		     uint8_t *buf)
{
	struct cmd *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	mpath_core_cmd_init(&c->cc);
	c->io = io;
	c->op = io->op;
	c->lba = lba;
	c->nblocks = nblocks;
	c->buf = buf;
	io->pending++;
	queue_push(m, c, false);
	return 0;
}

int mpath_submit(struct mpath *m, struct mpath_io *io)
{
	if (!m->ident_known)
		return -EAGAIN;
	uint32_t bs = m->id.block_size;
	if (io->op >= _MPATH_OP_MAX || io->offset % bs || io->len % bs || io->offset > m->id.size ||
	    io->len > m->id.size - io->offset)
		return -EINVAL;
	if (io->op == MPATH_OP_TRIM && !m->id.can_unmap)
		return -EOPNOTSUPP;
	io->pending = 1; /* held while splitting */
	io->error = 0;
	uint64_t lba = io->offset / bs, left = io->len / bs;
	uint64_t chunk = io->op == MPATH_OP_TRIM ? m->id.max_unmap : m->id.max_xfer / bs;
	if (chunk == 0)
		chunk = 1;
	int r = 0;
	if (io->op == MPATH_OP_FLUSH || left == 0)
		r = split_one(m, io, 0, 0, NULL);
	for (uint64_t done = 0; r == 0 && done < left; done += chunk) {
		uint64_t n = left - done < chunk ? left - done : chunk;
		uint8_t *b = io->buf ? io->buf + done * bs : NULL;
		r = split_one(m, io, lba + done, (uint32_t)n, b);
	}
	if (r < 0)
		io->error = r;
	dispatch(m);
	io_sub_done(io, 0);
	return 0;
}

/* ---- probing a logged-in path: TEST UNIT READY, identity ---- */

static void probe_send(struct path *p, enum slot_kind kind);

static void path_up(struct path *p)
{
	struct mpath *m = p->m;
	bool first = !m->ident_known;
	if (first) {
		m->id = p->id;
		m->ident_known = true;
	}
	emit_path(p, p->ever_up ? "reinstated" : "up", p->ever_up ? "checked" : "login");
	p->ever_up = true;
	p->refused[0] = '\0';
	p->fail_streak = 0;
	set_state(p, MPATH_PATH_UP);
	if (first) {
		log_notice("storage %s: logical unit %s, %" PRIu64 " bytes, block %u, max transfer "
			   "%u, unmap %s",
			   m->st->name, m->id.designator, m->id.size, m->id.block_size,
			   m->id.max_xfer, m->id.can_unmap ? "yes" : "no");
		if (m->ready_fn)
			m->ready_fn(m, m->ready_ud);
	}
	dispatch(m);
}

static void refuse(struct path *p, const char *what, const char *have, const char *want)
{
	struct mpath *m = p->m;
	path_fail(p, NULL);
	set_state(p, MPATH_PATH_REFUSED);
	char said[sizeof(p->refused)];
	snprintf(said, sizeof(said), "%s %s %s", what, have, want);
	if (!strcmp(said, p->refused)) /* said already; checked again after each backoff */
		return;
	memcpy(p->refused, said, sizeof(said));
	log_error("storage %s: path %s refused: %s %s differs from %s", m->st->name, p->portal,
		  what, have, want);
	struct event ev;
	event_begin(&ev, "path");
	event_add(&ev, "storage", m->st->name);
	event_add(&ev, "portal", p->portal);
	event_add(&ev, "state", "failed");
	event_add(&ev, "reason", "identity-mismatch");
	event_add(&ev, what, have);
	event_add(&ev, "expected", want);
	event_emit(&ev);
}

static void identity_check(struct path *p)
{
	struct mpath *m = p->m;
	const char *pin = m->st->designator;
	if (pin[0] && strcmp(pin, p->id.designator) != 0)
		return refuse(p, "designator", p->id.designator, pin);
	if (m->ident_known && strcmp(m->id.designator, p->id.designator) != 0)
		return refuse(p, "designator", p->id.designator, m->id.designator);
	if (m->ident_known && (m->id.size != p->id.size || m->id.block_size != p->id.block_size)) {
		char have[48], want[48];
		snprintf(have, sizeof(have), "%" PRIu64 "/%u", p->id.size, p->id.block_size);
		snprintf(want, sizeof(want), "%" PRIu64 "/%u", m->id.size, m->id.block_size);
		return refuse(p, "size", have, want);
	}
	path_up(p);
}

static int parse_vpd83(struct path *p, struct scsi_task *task)
{
	struct scsi_inquiry_device_identification *inq = scsi_datain_unmarshall(task);
	if (!inq)
		return -EIO;
	struct mpath_designator d[16];
	size_t n = 0;
	for (struct scsi_inquiry_device_designator *x = inq->designators; x && n < 16; x = x->next)
		d[n++] = (struct mpath_designator){.type = x->designator_type,
						   .association = x->association,
						   .code_set = x->code_set,
						   .data = (const uint8_t *)x->designator,
						   .len = (size_t)x->designator_length};
	return mpath_designator_pick(d, n, p->id.designator, sizeof(p->id.designator));
}

static int parse_probe(struct path *p, enum slot_kind kind, struct scsi_task *task)
{
	switch (kind) {
	case SLOT_VPD83:
		return parse_vpd83(p, task);
	case SLOT_CAP: {
		struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(task);
		if (!rc)
			return -EIO;
		p->id.block_size = rc->block_length;
		return mpath_capacity(rc->returned_lba, rc->block_length, &p->id.size,
				      p->last_error, sizeof(p->last_error));
	}
	case SLOT_VPDB0: {
		struct scsi_inquiry_block_limits *bl = scsi_datain_unmarshall(task);
		if (bl && bl->max_xfer_len &&
		    (uint64_t)bl->max_xfer_len * p->id.block_size < p->id.max_xfer)
			p->id.max_xfer = bl->max_xfer_len * p->id.block_size;
		if (bl && bl->max_unmap && bl->max_unmap != 0xffffffff)
			p->id.max_unmap = bl->max_unmap;
		return 0;
	}
	case SLOT_VPDB2: {
		struct scsi_inquiry_logical_block_provisioning *lbp = scsi_datain_unmarshall(task);
		p->id.can_unmap = lbp && lbp->lbpu;
		return 0;
	}
	case SLOT_IO:
	case SLOT_CHECK:
	case SLOT_TUR:
		break;
	}
	return 0;
}

static void probe_next(struct path *p, enum slot_kind kind)
{
	switch (kind) {
	case SLOT_TUR:
		return probe_send(p, SLOT_VPD83);
	case SLOT_VPD83:
		return probe_send(p, SLOT_CAP);
	case SLOT_CAP:
		return probe_send(p, SLOT_VPDB0);
	case SLOT_VPDB0:
		return probe_send(p, SLOT_VPDB2);
	case SLOT_VPDB2:
		return identity_check(p);
	case SLOT_IO:
	case SLOT_CHECK:
		break;
	}
}

static void probe_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct slot *s = pd;
	struct path *p = s->p;
	enum slot_kind kind = s->kind;
	if (s->orphan) {
		slot_unlink_free(s);
		return;
	}
	enum mpath_status st = classify(status, s->task);
	/* Optional pages may be missing: the defaults stand. */
	bool optional = kind == SLOT_VPDB0 || kind == SLOT_VPDB2;
	int r = 0;
	if (st == MPATH_ST_GOOD)
		r = parse_probe(p, kind, s->task);
	slot_unlink_free(s);
	if (st == MPATH_ST_UNIT_ATTENTION && ++p->probe_uas <= MPATH_MAX_UA_RETRIES)
		return probe_send(p, kind);
	if ((st != MPATH_ST_GOOD && !(optional && st == MPATH_ST_TARGET)) || r < 0) {
		if (r >= 0 || !p->last_error[0]) /* parse_probe may have said why */
			snprintf(p->last_error, sizeof(p->last_error), "%s",
				 r < 0 ? "identity not understood" : iscsi_get_error(ctx));
		return path_fail(p, kind == SLOT_TUR ? "not-ready" : "identity-unreadable");
	}
	probe_next(p, kind);
}

static void probe_send(struct path *p, enum slot_kind kind)
{
	int lun = (int)p->m->st->lun;
	struct slot *s = calloc(1, sizeof(*s));
	if (!s)
		return path_fail(p, "out-of-memory");
	s->kind = kind;
	slot_link(p, s);
	switch (kind) {
	case SLOT_TUR:
		s->task = iscsi_testunitready_task(p->ctx, lun, probe_cb, s);
		break;
	case SLOT_VPD83:
		s->task = iscsi_inquiry_task(p->ctx, lun, 1, 0x83, 255, probe_cb, s);
		break;
	case SLOT_CAP:
		s->task = iscsi_readcapacity16_task(p->ctx, lun, probe_cb, s);
		break;
	case SLOT_VPDB0:
		s->task = iscsi_inquiry_task(p->ctx, lun, 1, 0xb0, 64, probe_cb, s);
		break;
	case SLOT_VPDB2:
		s->task = iscsi_inquiry_task(p->ctx, lun, 1, 0xb2, 64, probe_cb, s);
		break;
	case SLOT_IO:
	case SLOT_CHECK:
		break;
	}
	if (!s->task) {
		slot_unlink_free(s);
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(p->ctx));
		return path_fail(p, "submit-failed");
	}
	s->deadline = now_usec() + p->m->core.p.path_timeout;
}

/* ---- the keepalive: TEST UNIT READY every path_check_interval ---- */

static void check_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct slot *s = pd;
	struct path *p = s->p;
	if (s->orphan) {
		slot_unlink_free(s);
		return;
	}
	p->check_busy = false;
	enum mpath_status st = classify(status, s->task);
	slot_unlink_free(s);
	switch (st) {
	case MPATH_ST_UNIT_ATTENTION: /* reported once; the next check sees the unit */
		p->m->core.paths[p->idx].st.unit_attentions++;
		return;
	case MPATH_ST_GOOD:
		return;
	case MPATH_ST_TRANSPORT:
		return path_fail(p, "session-lost");
	case MPATH_ST_TARGET:
	case _MPATH_ST_MAX:
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(ctx));
		return path_fail(p, "check-failed");
	}
}

static void check_send(struct path *p)
{
	struct slot *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->kind = SLOT_CHECK;
	slot_link(p, s);
	s->task = iscsi_testunitready_task(p->ctx, (int)p->m->st->lun, check_cb, s);
	if (!s->task) {
		slot_unlink_free(s);
		return path_fail(p, "submit-failed");
	}
	s->deadline = now_usec() + p->m->core.p.path_timeout;
	p->check_busy = true;
	mpath_core_checked(&p->m->core, p->idx, now_usec());
}

/* ---- sessions ---- */

/* One iscsi_service call on a path that has a session. Its callbacks may fail the path
 * (path_fail: p->ctx is then NULL, the context waits in dead_ctx), so the result is
 * judged against the context the call was made on. True while the path keeps it. */
static bool path_service(struct path *p, int events)
{
	struct iscsi_context *ctx = p->ctx;
	int r = iscsi_service(ctx, events);
	if (p->ctx != ctx)
		return false;
	if (r < 0) {
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(ctx));
		path_fail(p, "session-lost");
		return false;
	}
	return true;
}

static void path_watch_cb(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct path *p = ud;
	if (!p->ctx)
		return;
	p->last_service = now_usec();
	path_service(p, (int)revents);
}

/* Fails the path: commands on it move to the queue (they are re-issued elsewhere), its
 * session is torn down outside libiscsi's callbacks, a new login follows with backoff.
 * `reason` NULL: the caller emits its own event. */
static void path_fail(struct path *p, const char *reason)
{
	struct mpath *m = p->m;
	if (!p->ctx)
		return;
	enum mpath_path_state old = m->core.paths[p->idx].state;
	if (reason && old == MPATH_PATH_UP)
		emit_path(p, "failed", reason);
	else if (reason) /* the first of a series of failed logins says why; the rest are quiet */
		log_msg(p->fail_streak++ ? LOG_LVL_DEBUG : LOG_LVL_WARN,
			"storage %s: path %s: %s%s%s", m->st->name, p->portal, reason,
			p->last_error[0] ? ": " : "", p->last_error);
	if (p->last_error[0] && old == MPATH_PATH_UP)
		log_warn("storage %s: path %s: %s", m->st->name, p->portal, p->last_error);
	p->last_error[0] = '\0';
	uint64_t now = now_usec();
	unsigned held = 0;
	for (struct slot *s = p->slots; s; s = s->next) {
		if (s->orphan)
			continue;
		s->orphan = true;
		struct cmd *c = s->cmd;
		s->cmd = NULL;
		if (!c)
			continue;
		c->slot = NULL;
		enum mpath_verdict v = mpath_core_path_failed(&m->core, &c->cc, fail_kind(reason),
							      changes_data(c), now);
		held += v == MPATH_V_HOLD;
		cmd_route(m, c, v);
	}
	if (held)
		log_warn("storage %s: path %s: %u write(s) held: not re-issued until this "
			 "portal's target has terminated them (a login that reinstates the "
			 "session), EIO after %" PRIu64 "ms",
			 m->st->name, p->portal, held,
			 (uint64_t)(m->core.p.no_path_timeout / USEC_PER_MSEC));
	p->w = watch_remove(p->w);
	p->dead_ctx = p->ctx;
	p->dead_in_login = old == MPATH_PATH_LOGIN && !p->login_called;
	p->ctx = NULL;
	p->check_busy = false;
	set_state(p, MPATH_PATH_DOWN);
	dispatch(m);
}

static void teardown(struct path *p)
{
	if (!p->dead_ctx)
		return;
	if (p->dead_in_login && !p->m->stopping)
		isession_park(&p->park, p->dead_ctx, NULL, now_usec());
	else
		isession_destroy(p->dead_ctx);
	p->dead_ctx = NULL;
	while (p->slots)
		slot_unlink_free(p->slots);
}

static void login_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct path *p = pd;
	if (ctx == p->park.ctx)
		isession_park_called_back(&p->park); /* its connect task is freed: it can go */
	if (ctx != p->ctx)
		return;
	enum mpath_path_state s = p->m->core.paths[p->idx].state;
	if (s != MPATH_PATH_LOGIN) {
		/* libiscsi reports a torn-down connection through the connect callback too. */
		if (status != SCSI_STATUS_GOOD)
			path_fail(p, "session-lost");
		return;
	}
	if (status != SCSI_STATUS_GOOD) {
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(ctx));
		p->login_called = true; /* libiscsi let go of it: nothing to park */
		return path_fail(p, "login-failed");
	}
	iscsi_set_timeout(ctx, 0); /* from here on our own deadlines time commands */
	release_held(p);
	set_state(p, MPATH_PATH_PROBE);
	p->probe_uas = 0;
	p->id = (struct mpath_identity){.max_xfer = DEFAULT_MAX_XFER, .max_unmap = 1U << 22};
	probe_send(p, SLOT_TUR);
}

/* A login with the path's ISID succeeded: the target reinstated the session (RFC 7143
 * §6.3.5: the old session's tasks are terminated) or had already dropped it. The writes
 * held for this path go out again, on any healthy path. */
static void release_held(struct path *p)
{
	struct mpath *m = p->m;
	unsigned n = 0;
	for (struct cmd *c = m->held_head, *next; c; c = next) {
		next = c->next;
		if (c->cc.held_on != p->idx)
			continue;
		list_remove(&m->held_head, &m->held_tail, c);
		cmd_route(m, c, mpath_core_fenced(&m->core, &c->cc));
		n++;
	}
	if (n == 0)
		return;
	log_notice("storage %s: path %s: session reinstated, %u held write(s) re-issued",
		   m->st->name, p->portal, n);
	dispatch(m); /* on the other paths: this one is not up before its probe */
}

/* Held writes whose target did not confirm within no_path_timeout fail with EIO. */
static void expire_held(struct mpath *m, uint64_t now)
{
	for (struct cmd *c = m->held_head, *next; c; c = next) {
		next = c->next;
		int path = c->cc.held_on;
		if (mpath_core_hold_check(&m->core, &c->cc, now) != MPATH_V_FAIL)
			continue;
		list_remove(&m->held_head, &m->held_tail, c);
		log_error("storage %s: %s at block %" PRIu64 " held for %" PRIu64 "ms: the target "
			  "of %s did not confirm it dropped it; fails with EIO (that target may "
			  "still apply it)",
			  m->st->name, mpath_op_to_str(c->op), c->lba,
			  (uint64_t)(m->core.p.no_path_timeout / USEC_PER_MSEC),
			  path >= 0 ? m->paths[path].portal : "?");
		cmd_finish(c, -EIO);
	}
}

static int path_login(struct path *p)
{
	struct mpath *m = p->m;
	/* The login PDUs time out with us (libiscsi calls back soon after we give up). */
	uint64_t lt =
	    m->core.p.path_timeout > LOGIN_TIMEOUT_MIN ? m->core.p.path_timeout : LOGIN_TIMEOUT_MIN;
	const struct isession_opts o = {.initiator = m->iqn,
					.target = m->st->target,
					.login_timeout_us = lt,
					.chap_user = m->st->chap_user,
					.chap_secret = m->chap_secret};
	struct iscsi_context *ctx = isession_context(&o);
	if (!ctx)
		return log_error_errno(-ENOMEM, "storage %s: cannot create an iSCSI context",
				       m->st->name);
	/* The same ISID on every login of this path: a new login reinstates the old session,
	 * and the target terminates that session's tasks (release_held). */
	iscsi_set_isid_random(ctx, m->isid, (uint32_t)p->idx);
	p->ctx = ctx;
	p->login_called = false;
	set_state(p, MPATH_PATH_LOGIN);
	p->login_deadline = now_usec() + lt;
	if (iscsi_full_connect_async(ctx, p->portal, (int)m->st->lun, login_cb, p) != 0) {
		snprintf(p->last_error, sizeof(p->last_error), "%s", iscsi_get_error(ctx));
		path_fail(p, "login-failed");
		return -EIO;
	}
	p->w = watch_add(m->loop, iscsi_get_fd(ctx), (uint32_t)iscsi_which_events(ctx),
			 path_watch_cb, p, NULL);
	if (!p->w) {
		path_fail(p, "out-of-memory");
		return -ENOMEM;
	}
	return 0;
}

/* ---- the periodic part, run from the loop's prepare hook ---- */

static enum mpath_path_state path_state(const struct path *p)
{
	return p->m->core.paths[p->idx].state;
}

static bool path_overdue(struct path *p, uint64_t now)
{
	if (path_state(p) == MPATH_PATH_LOGIN)
		return now >= p->login_deadline;
	for (struct slot *s = p->slots; s; s = s->next)
		if (!s->orphan && s->task && now >= s->deadline)
			return true;
	return false;
}

static void tick(struct mpath *m, uint64_t now)
{
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *p = &m->paths[i];
		if (p->ctx && path_overdue(p, now)) {
			m->core.paths[i].st.timeouts++;
			snprintf(p->last_error, sizeof(p->last_error),
				 "a command did not complete within %" PRIu64 "ms",
				 (uint64_t)(m->core.p.path_timeout / USEC_PER_MSEC));
			path_fail(p, "timeout");
		}
	}
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *p = &m->paths[i];
		if (!p->ctx && !p->dead_ctx && mpath_core_login_due(&m->core, i, now))
			path_login(p);
		else if (p->ctx && !p->check_busy && mpath_core_check_due(&m->core, i, now))
			check_send(p);
	}
	dispatch(m);
	if (m->queue_head && mpath_core_up_count(&m->core) == 0)
		fail_expired_queue(m, now);
	expire_held(m, now);
}

/* The loop wakes by next_tick at the latest; waking much later means this process did not
 * run (SIGSTOP and SIGCONT around a switch_root, CPU starvation). Replies that arrived
 * meanwhile wait in the sockets: what was in flight gets its time back instead of failing
 * its path, and queued commands do not count that time against no_path_timeout. */
static void absorb_stall(struct mpath *m, uint64_t gap)
{
	log_notice("storage %s: the agent did not run for %" PRIu64 "ms (stopped or starved); "
		   "deadlines of commands in flight move by that",
		   m->st->name, (uint64_t)(gap / USEC_PER_MSEC));
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *p = &m->paths[i];
		p->login_deadline += gap;
		for (struct slot *s = p->slots; s; s = s->next) {
			s->deadline += gap;
			if (s->cmd)
				mpath_core_cmd_shift(&s->cmd->cc, gap);
		}
	}
	for (struct cmd *c = m->queue_head; c; c = c->next)
		mpath_core_cmd_shift(&c->cc, gap);
	for (struct cmd *c = m->held_head; c; c = c->next)
		mpath_core_cmd_shift(&c->cc, gap);
}

static uint64_t prepare(struct loop *l, void *ud)
{
	struct mpath *m = ud;
	if (!m->started)
		return UINT64_MAX;
	uint64_t now = now_usec();
	uint64_t gap = mpath_core_stall(m->next_tick, now, STALL_SLACK_US);
	if (gap)
		absorb_stall(m, gap);
	for (int i = 0; i < m->core.n_paths; i++) {
		teardown(&m->paths[i]);
		isession_park_service(&m->paths[i].park, now);
	}
	if (now >= m->next_tick) {
		m->next_tick = now + TICK_US;
		tick(m, now);
		for (int i = 0; i < m->core.n_paths; i++)
			teardown(&m->paths[i]);
	}
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *p = &m->paths[i];
		if (!p->ctx)
			continue;
		/* libiscsi has no timers: it needs a call at least once a second. */
		if (now >= p->last_service + USEC_PER_SEC) {
			p->last_service = now;
			if (!path_service(p, 0)) {
				teardown(p);
				continue;
			}
		}
		/* PDUs queued in this iteration go out now: waiting for the socket's POLLOUT
		 * cost two epoll_ctl and a wake-up per batch of requests. Only once logged in:
		 * before that POLLOUT means the connect finished. */
		if (iscsi_is_logged_in(p->ctx) && (iscsi_which_events(p->ctx) & POLLOUT) &&
		    !path_service(p, POLLOUT)) {
			teardown(p);
			continue;
		}
		if (p->w)
			watch_set_fd(p->w, iscsi_get_fd(p->ctx),
				     (uint32_t)iscsi_which_events(p->ctx));
	}
	return m->next_tick;
}

/* ---- setup ---- */

static int read_chap_secret(struct mpath *m)
{
	const char *path = m->st->chap_secret_file;
	if (!path[0])
		return 0;
	char *text = NULL;
	size_t len = 0;
	int r = read_full_file(path, 256, &text, &len);
	if (r < 0)
		return log_error_errno(r, "storage %s: cannot read chap_secret_file %s",
				       m->st->name, path);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	m->chap_secret = sodium_malloc(len + 1);
	if (m->chap_secret) {
		memcpy(m->chap_secret, text, len);
		m->chap_secret[len] = '\0';
	}
	sodium_memzero(text, len);
	free(text);
	if (!m->chap_secret)
		return -ENOMEM;
	if (len == 0)
		return log_error_errno(-EINVAL, "storage %s: chap_secret_file %s is empty",
				       m->st->name, path);
	return 0;
}

/* 24 bits from the initiator, target and storage names: stable across restarts of the
 * agent, so a restarted agent's first login also reinstates its predecessor's sessions. */
static uint32_t path_isid(const struct mpath *m)
{
	uint8_t h[8];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)m->iqn, strlen(m->iqn) + 1);
	crypto_generichash_update(&st, (const uint8_t *)m->st->target, strlen(m->st->target) + 1);
	crypto_generichash_update(&st, (const uint8_t *)m->st->name, strlen(m->st->name) + 1);
	crypto_generichash_final(&st, h, sizeof(h));
	return (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
}

int mpath_new(struct loop *l, const struct cfg *cfg, int storage_idx, const char *node,
	      struct mpath **ret)
{
	if (storage_idx >= cfg->n_storage || (storage_idx < 0 && !cfg->has_quorum))
		return -ENOENT;
	struct mpath *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = l;
	m->cfg = cfg;
	m->st = storage_idx < 0 ? &cfg->quorum : &cfg->storage[storage_idx];
	snprintf(m->iqn, sizeof(m->iqn), "iqn.2026-11.org.compartd:%s:%s", cfg->name, node);
	m->isid = path_isid(m);
	int r = read_chap_secret(m);
	if (r < 0) {
		mpath_free(m);
		return r;
	}
	struct mpath_params p = {
	    .path_timeout = cfg->timeouts.path_timeout,
	    .no_path_timeout = cfg->timeouts.no_path_timeout,
	    .path_check_interval = cfg->timeouts.path_check_interval,
	    .backoff_min = 250 * USEC_PER_MSEC,
	    .backoff_max = 5 * USEC_PER_SEC,
	    .selector = m->st->selector,
	};
	mpath_core_init(&m->core, &p, m->st->n_portals, now_usec());
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *pa = &m->paths[i];
		const struct cfg_portal *po = &m->st->portals[i];
		pa->m = m;
		pa->idx = i;
		isession_park_init(&pa->park, l);
		bool v6 = strchr(po->host, ':') != NULL;
		snprintf(pa->portal, sizeof(pa->portal), v6 ? "[%s]:%u" : "%s:%u", po->host,
			 po->port);
	}
	r = loop_add_prepare(l, prepare, m);
	if (r < 0) {
		mpath_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

int mpath_start(struct mpath *m)
{
	m->started = true;
	m->next_tick = 0;
	log_info("storage %s: logging in to %d portal(s) of %s as %s", m->st->name, m->core.n_paths,
		 m->st->target, m->iqn);
	return 0;
}

static void fail_waiting(struct mpath *m)
{
	while (m->queue_head) {
		struct cmd *c = m->queue_head;
		queue_remove(m, c);
		cmd_finish(c, -EIO);
	}
	while (m->held_head) {
		struct cmd *c = m->held_head;
		list_remove(&m->held_head, &m->held_tail, c);
		cmd_finish(c, -EIO);
	}
}

struct mpath *mpath_free(struct mpath *m)
{
	if (!m)
		return NULL;
	/* Queued and held commands end with EIO; their owners are going away too. */
	fail_waiting(m);
	m->stopping = true; /* nothing is parked from here on */
	for (int i = 0; i < m->core.n_paths; i++) {
		struct path *p = &m->paths[i];
		if (p->ctx)
			path_fail(p, NULL); /* its commands are queued or held again */
		teardown(p);
		isession_unpark(&p->park);
		fail_waiting(m);
	}
	loop_remove_prepare(m->loop, prepare, m);
	if (m->chap_secret)
		sodium_free(m->chap_secret);
	free(m);
	return NULL;
}

void mpath_on_ready(struct mpath *m, void (*fn)(struct mpath *m, void *ud), void *ud)
{
	m->ready_fn = fn;
	m->ready_ud = ud;
}

bool mpath_identity_known(const struct mpath *m)
{
	return m->ident_known;
}

const struct mpath_identity *mpath_identity(const struct mpath *m)
{
	return &m->id;
}

const char *mpath_name(const struct mpath *m)
{
	return m->st->name;
}

int mpath_path_count(const struct mpath *m)
{
	return m->core.n_paths;
}

enum mpath_path_state mpath_path_state(const struct mpath *m, int i, const char **ret_portal,
				       const char **ret_why)
{
	if (ret_portal)
		*ret_portal = m->paths[i].portal;
	if (ret_why)
		*ret_why = m->paths[i].refused[0] ? m->paths[i].refused : m->paths[i].last_error;
	return m->core.paths[i].state;
}

bool mpath_path_ever_up(const struct mpath *m, int i)
{
	return m->paths[i].ever_up;
}

void mpath_path_login_now(struct mpath *m, int i)
{
	struct mpath_path *p = &m->core.paths[i];
	if (p->state != MPATH_PATH_DOWN && p->state != MPATH_PATH_REFUSED)
		return;
	/* An operator or the health ladder asks for a login now instead of after the backoff. */
	p->next_login_us = now_usec();
	m->next_tick = 0;
}

void mpath_set_dev(struct mpath *m, const char *dev)
{
	snprintf(m->dev, sizeof(m->dev), "%s", dev ? dev : "");
	if (m->ident_known)
		emit_storage(m);
}
