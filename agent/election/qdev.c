/* The quorum device over libiscsi; see qdev.h. */
#include "qdev.h"

#include "isession.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <sodium.h>

#include "log.h"
#include "util.h"

#define QDEV_QUEUE 32
#define QDEV_UA_RETRIES 4
#define QDEV_MAGIC "CMPTQSL1"
#define QDEV_RECONNECT_US (300 * USEC_PER_MSEC)

const char *qdev_op_to_str(enum qdev_op op)
{
	switch (op) {
	case QDEV_OP_REGISTER:
		return "register";
	case QDEV_OP_READ:
		return "read";
	case QDEV_OP_WRITE:
		return "write";
	case QDEV_OP_RESERVE:
		return "reserve";
	case QDEV_OP_PREEMPT:
		return "preempt";
	case QDEV_OP_RELEASE:
		return "release";
	case _QDEV_OP_MAX:
		break;
	}
	return "?";
}

const char *qdev_status_to_str(enum qdev_status s)
{
	switch (s) {
	case QDEV_OK:
		return "ok";
	case QDEV_CONFLICT:
		return "reservation-conflict";
	case QDEV_ERROR:
		return "error";
	case _QDEV_STATUS_MAX:
		break;
	}
	return "?";
}

/* ---- slots and keys (pure) ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* magic 8 | version 4 | node 4 | boot 16 | seq 8 | epoch 8 | role 1 | pad 7 | hash 32 */
#define SLOT_BODY 56
#define SLOT_HASH 32

int qdev_mac_key_derive(const uint8_t cluster_key[32], unsigned kind, uint8_t ret[QDEV_MAC_KEY])
{
	_Static_assert(crypto_kdf_KEYBYTES == 32, "the cluster key is a kdf master key");
	_Static_assert(QDEV_MAC_KEY >= crypto_kdf_BYTES_MIN && QDEV_MAC_KEY <= crypto_kdf_BYTES_MAX,
		       "subkey length");
	if (sodium_init() < 0)
		return -EIO;
	return crypto_kdf_derive_from_key(ret, QDEV_MAC_KEY, 1 + (uint64_t)kind, "CMPTQSLT",
					  cluster_key) == 0
		   ? 0
		   : -EIO;
}

void qdev_slot_encode(const uint8_t mac_key[QDEV_MAC_KEY], const struct qdev_slot *s,
		      uint8_t buf[QDEV_BLOCK])
{
	memset(buf, 0, QDEV_BLOCK);
	memcpy(buf, QDEV_MAGIC, 8);
	put_u32(buf + 8, 1);
	put_u32(buf + 12, s->node);
	memcpy(buf + 16, s->boot_id, 16);
	put_u64(buf + 32, s->seq);
	put_u64(buf + 40, s->epoch);
	buf[48] = s->role;
	crypto_generichash(buf + SLOT_BODY, SLOT_HASH, buf, SLOT_BODY, mac_key, QDEV_MAC_KEY);
}

int qdev_slot_decode(const uint8_t mac_key[QDEV_MAC_KEY], const uint8_t *buf, size_t len,
		     struct qdev_slot *ret)
{
	uint8_t h[SLOT_HASH];

	*ret = (struct qdev_slot){0};
	if (len < SLOT_BODY + SLOT_HASH || memcmp(buf, QDEV_MAGIC, 8) != 0 || get_u32(buf + 8) != 1)
		return -EBADMSG;
	crypto_generichash(h, sizeof(h), buf, SLOT_BODY, mac_key, QDEV_MAC_KEY);
	if (sodium_memcmp(h, buf + SLOT_BODY, SLOT_HASH) != 0)
		return -EBADMSG;
	/* canonical only: the padding is zero, the role one we know (the MAC checked out,
	 * so this is a node with the key writing a format this one does not know) */
	for (int i = 49; i < SLOT_BODY; i++)
		if (buf[i])
			return -EBADMSG;
	if (buf[48] > 3)
		return -EBADMSG;
	ret->node = get_u32(buf + 12);
	memcpy(ret->boot_id, buf + 16, 16);
	ret->seq = get_u64(buf + 32);
	ret->epoch = get_u64(buf + 40);
	ret->role = buf[48];
	ret->valid = true;
	return 0;
}

uint64_t qdev_key_derive(const char *cluster, const char *node, const char *kind)
{
	crypto_generichash_state st;
	uint8_t out[8];
	uint64_t k;

	crypto_generichash_init(&st, NULL, 0, sizeof(out));
	crypto_generichash_update(&st, (const uint8_t *)"compartd-qdev-key", 18);
	crypto_generichash_update(&st, (const uint8_t *)cluster, strlen(cluster) + 1);
	crypto_generichash_update(&st, (const uint8_t *)node, strlen(node) + 1);
	crypto_generichash_update(&st, (const uint8_t *)kind, strlen(kind) + 1);
	crypto_generichash_final(&st, out, sizeof(out));
	k = get_u64(out);
	return k ? k : 1;
}

/* ---- the session ---- */

struct qdev_cmd {
	enum qdev_op op;
	uint64_t tag;
	uint8_t block[QDEV_BLOCK];
	uint64_t victim;
	uint64_t deadline;
	int step; /* READ: 0 slots, 1 reservation, 2 keys */
	int ua_retries;
	bool internal; /* the registration every new session makes first: not reported */
};

enum qdev_conn { QDEV_DOWN, QDEV_CONNECTING, QDEV_UP };

struct qdev {
	struct loop *loop;
	struct qdev_config c;
	qdev_done_fn cb;
	void *ud;

	struct iscsi_context *ctx;
	enum qdev_conn conn;
	int portal;
	uint64_t conn_deadline, next_connect, last_service;
	struct watch *watch;
	bool need_reset;
	uint64_t
	    gen; /* bumped on every reset: late libiscsi callbacks of an old session are ignored */

	struct qdev_cmd q[QDEV_QUEUE];
	int head, n;
	bool busy; /* q[head] is at the target */
	struct qdev_view view;
	bool dispatching;
	bool logged_up;
	struct qdev_cb_ctx *conn_cc; /* connect_cb's context: one per session, freed at the next */
	bool conn_called;	     /* libiscsi called this session's connect back */
	/* A session given up while connecting, kept until libiscsi calls its connect back
	 * (isession.h); its callback context goes with it. */
	struct isession_park park;
};

/* The private data of one libiscsi callback: which qdev and which session. */
struct qdev_cb_ctx {
	struct qdev *q;
	uint64_t gen;
};

static void finish(struct qdev *q, enum qdev_status st)
{
	struct qdev_cmd c = q->q[q->head];

	q->head = (q->head + 1) % QDEV_QUEUE;
	q->n--;
	q->busy = false;
	if (c.internal) {
		if (st != QDEV_OK)
			q->need_reset = true;
		return;
	}
	q->cb(q, c.op, st, c.tag, c.op == QDEV_OP_READ && st == QDEV_OK ? &q->view : NULL, q->ud);
}

static enum qdev_status task_status(struct scsi_task *t, int status)
{
	if (status == SCSI_STATUS_GOOD && t && t->status == SCSI_STATUS_GOOD)
		return QDEV_OK;
	if (status == SCSI_STATUS_RESERVATION_CONFLICT ||
	    (t && t->status == SCSI_STATUS_RESERVATION_CONFLICT))
		return QDEV_CONFLICT;
	return QDEV_ERROR;
}

static bool unit_attention(struct scsi_task *t, int status)
{
	return status == SCSI_STATUS_CHECK_CONDITION && t &&
	       t->sense.key == SCSI_SENSE_UNIT_ATTENTION;
}

static int start_step(struct qdev *q);

static void read_step_done(struct qdev *q, struct qdev_cmd *c, struct scsi_task *t)
{
	if (c->step == 0) {
		q->view.n_slots = q->c.n_slots;
		for (int i = 0; i < q->c.n_slots; i++) {
			const uint8_t *b = t->datain.data + (size_t)i * QDEV_BLOCK;

			if (t->datain.size >= (i + 1) * QDEV_BLOCK)
				(void)qdev_slot_decode(q->c.mac_key, b, QDEV_BLOCK,
						       &q->view.slots[i]);
			else
				q->view.slots[i] = (struct qdev_slot){0};
		}
	} else if (c->step == 1) {
		struct scsi_persistent_reserve_in_read_reservation *rr = scsi_datain_unmarshall(t);

		q->view.reserved = rr && rr->reserved;
		q->view.holder_key = rr && rr->reserved ? rr->reservation_key : 0;
		q->view.pr_type = rr ? rr->pr_type : 0;
	} else {
		struct scsi_persistent_reserve_in_read_keys *rk = scsi_datain_unmarshall(t);

		q->view.n_keys = 0;
		q->view.registered = false;
		for (int i = 0; rk && i < rk->num_keys; i++) {
			if (q->view.n_keys < QDEV_MAX_KEYS)
				q->view.keys[q->view.n_keys++] = rk->keys[i];
			if (rk->keys[i] == q->c.key)
				q->view.registered = true;
		}
	}
}

static void task_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct qdev_cb_ctx *cc = pd;
	struct qdev *q = cc->q;
	struct scsi_task *t = data;
	struct qdev_cmd *c;
	enum qdev_status st;

	if (cc->gen != q->gen || !q->busy) {
		/* a session torn down since, its command already answered */
		if (t)
			scsi_free_scsi_task(t);
		free(cc);
		return;
	}
	free(cc);
	c = &q->q[q->head];
	if (unit_attention(t, status) && c->ua_retries++ < QDEV_UA_RETRIES) {
		scsi_free_scsi_task(t);
		if (start_step(q) < 0)
			q->need_reset = true;
		return;
	}
	st = task_status(t, status);
	if (st == QDEV_ERROR)
		log_debug("qdev: %s step %d failed: status %#x sense %#x/%#x",
			  qdev_op_to_str(c->op), c->step, (unsigned)(t ? t->status : status),
			  t ? (unsigned)t->sense.key : 0, t ? (unsigned)t->sense.ascq : 0);
	if (c->op == QDEV_OP_READ && st == QDEV_OK) {
		read_step_done(q, c, t);
		scsi_free_scsi_task(t);
		if (++c->step < 3) {
			if (start_step(q) < 0)
				q->need_reset = true;
			return;
		}
	} else if (t) {
		scsi_free_scsi_task(t);
	}
	(void)ctx;
	finish(q, st);
}

static int start_step(struct qdev *q)
{
	struct qdev_cmd *c = &q->q[q->head];
	struct scsi_persistent_reserve_out_basic pr = {.reservation_key = q->c.key};
	struct qdev_cb_ctx *cc = malloc(sizeof(*cc));
	struct scsi_task *t = NULL;
	int type = SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY;

	if (!cc)
		return -ENOMEM;
	*cc = (struct qdev_cb_ctx){.q = q, .gen = q->gen};
	switch (c->op) {
	case QDEV_OP_REGISTER:
		pr.service_action_reservation_key = q->c.key;
		t = iscsi_persistent_reserve_out_task(
		    q->ctx, q->c.lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
		    SCSI_PERSISTENT_RESERVE_SCOPE_LU, 0, &pr, task_cb, cc);
		break;
	case QDEV_OP_RESERVE:
		t = iscsi_persistent_reserve_out_task(
		    q->ctx, q->c.lun, SCSI_PERSISTENT_RESERVE_RESERVE,
		    SCSI_PERSISTENT_RESERVE_SCOPE_LU, type, &pr, task_cb, cc);
		break;
	case QDEV_OP_RELEASE:
		t = iscsi_persistent_reserve_out_task(
		    q->ctx, q->c.lun, SCSI_PERSISTENT_RESERVE_RELEASE,
		    SCSI_PERSISTENT_RESERVE_SCOPE_LU, type, &pr, task_cb, cc);
		break;
	case QDEV_OP_PREEMPT:
		pr.service_action_reservation_key = c->victim;
		t = iscsi_persistent_reserve_out_task(
		    q->ctx, q->c.lun, SCSI_PERSISTENT_RESERVE_PREEMPT,
		    SCSI_PERSISTENT_RESERVE_SCOPE_LU, type, &pr, task_cb, cc);
		break;
	case QDEV_OP_WRITE:
		t = iscsi_write10_task(q->ctx, q->c.lun, QDEV_SLOT_LBA + (uint32_t)q->c.self_slot,
				       c->block, QDEV_BLOCK, QDEV_BLOCK, 0, 0, 1, 0, 0, task_cb,
				       cc);
		break;
	case QDEV_OP_READ:
		if (c->step == 0)
			t = iscsi_read10_task(q->ctx, q->c.lun, QDEV_SLOT_LBA,
					      (uint32_t)q->c.n_slots * QDEV_BLOCK, QDEV_BLOCK, 0, 0,
					      0, 0, 0, task_cb, cc);
		else
			t = iscsi_persistent_reserve_in_task(
			    q->ctx, q->c.lun,
			    c->step == 1 ? SCSI_PERSISTENT_RESERVE_READ_RESERVATION
					 : SCSI_PERSISTENT_RESERVE_READ_KEYS,
			    c->step == 1 ? 64 : 8 + 8 * QDEV_MAX_KEYS, task_cb, cc);
		break;
	case _QDEV_OP_MAX:
		break;
	}
	if (!t) {
		free(cc);
		log_debug("qdev: %s: %s", qdev_op_to_str(c->op), iscsi_get_error(q->ctx));
		return -EIO;
	}
	return 0;
}

/* Starts the head command, or answers queued commands when there is no session. */
static void pump(struct qdev *q, uint64_t now)
{
	if (q->dispatching)
		return;
	q->dispatching = true;
	for (int bound = 0; bound < 2 * QDEV_QUEUE && q->n > 0 && !q->busy && !q->need_reset;
	     bound++) {
		if (q->conn != QDEV_UP) {
			if (q->conn == QDEV_DOWN || now >= q->q[q->head].deadline)
				finish(q, QDEV_ERROR);
			else
				break;
			continue;
		}
		q->q[q->head].deadline = now + q->c.io_timeout;
		q->busy = true;
		if (start_step(q) < 0) {
			q->need_reset = true;
			finish(q, QDEV_ERROR);
		}
	}
	q->dispatching = false;
}

static void connect_cb(struct iscsi_context *ctx, int status, void *data, void *pd)
{
	struct qdev_cb_ctx *cc = pd;
	struct qdev *q = cc->q;

	(void)data;
	if (cc == q->park.cb_data) {
		isession_park_called_back(&q->park); /* libiscsi let go of its connect task */
		return;
	}
	if (cc->gen != q->gen)
		return; /* cc of an old session: freed with it below */
	if (status == SCSI_STATUS_GOOD && q->conn == QDEV_CONNECTING) {
		q->conn = QDEV_UP;
		/* Registrations belong to the I_T nexus: a new session registers our key again
		 * before anything else, so a registrant's slot writes keep working across
		 * reconnects (the reservation itself stays with the key's holder). */
		if (q->n < QDEV_QUEUE && !q->busy) {
			q->head = (q->head + QDEV_QUEUE - 1) % QDEV_QUEUE;
			q->n++;
			q->q[q->head] = (struct qdev_cmd){.op = QDEV_OP_REGISTER,
							  .internal = true,
							  .deadline = now_usec() + q->c.io_timeout};
		}
		if (!q->logged_up)
			log_info("qdev: logged in to %s lun %d through %s", q->c.target, q->c.lun,
				 q->c.portals[q->portal]);
		q->logged_up = true;
		return;
	}
	log_warn("qdev: session through %s %s: %s", q->c.portals[q->portal],
		 q->conn == QDEV_UP ? "lost" : "failed", iscsi_get_error(ctx));
	q->logged_up = false;
	q->need_reset = true;
	q->conn_called = true; /* nothing of libiscsi's to wait for: no parking */
}

static void on_fd(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct qdev *q = ud;
	short ev = 0;

	(void)w;
	(void)fd;
	if (revents & EPOLLIN)
		ev |= POLLIN;
	if (revents & EPOLLOUT)
		ev |= POLLOUT;
	if (revents & EPOLLERR)
		ev |= POLLERR;
	if (revents & EPOLLHUP)
		ev |= POLLHUP;
	if (q->ctx && iscsi_service(q->ctx, ev) < 0)
		q->need_reset = true;
	q->last_service = now_usec();
	pump(q, q->last_service);
}

static void teardown(struct qdev *q, uint64_t now)
{
	q->watch = watch_remove(q->watch);
	q->gen++;
	if (q->busy) {
		q->busy = false;
		finish(q, QDEV_ERROR);
	}
	if (q->ctx && q->conn == QDEV_CONNECTING && q->conn_cc && !q->conn_called) {
		isession_park(&q->park, q->ctx, q->conn_cc, now);
		q->conn_cc = NULL;
		q->ctx = NULL;
	} else if (q->ctx) {
		isession_destroy(q->ctx); /* old callbacks see a stale gen */
		q->ctx = NULL;
	}
	if (q->conn == QDEV_UP)
		q->portal = 0; /* a session that was up and broke: start again with the first */
	else
		q->portal = (q->portal + 1) % q->c.n_portals; /* could not log in: the next one */
	q->conn = QDEV_DOWN;
	q->need_reset = false;
	q->next_connect = now + QDEV_RECONNECT_US;
}

static int start_connect(struct qdev *q, uint64_t now)
{
	struct qdev_cb_ctx *cc;

	const struct isession_opts o = {.initiator = q->c.initiator,
					.target = q->c.target,
					.login_timeout_us = q->c.io_timeout};
	q->ctx = isession_context(&o);
	if (!q->ctx)
		return -ENOMEM;
	cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	q->gen++;
	*cc = (struct qdev_cb_ctx){.q = q, .gen = q->gen};
	iscsi_set_isid_en(q->ctx, 0x4d4e, q->c.isid & 0xffffff);
	q->conn = QDEV_CONNECTING;
	q->conn_deadline = now + 3 * q->c.io_timeout;
	free(q->conn_cc);
	q->conn_cc = NULL;
	q->conn_called = false;
	if (iscsi_full_connect_async(q->ctx, q->c.portals[q->portal], q->c.lun, connect_cb, cc) <
	    0) {
		log_debug("qdev: connect %s: %s", q->c.portals[q->portal], iscsi_get_error(q->ctx));
		free(cc);
		q->need_reset = true;
		return -EIO;
	}
	q->conn_cc = cc;
	q->watch = watch_add(q->loop, iscsi_get_fd(q->ctx), EPOLLIN, on_fd, q, NULL);
	return 0;
}

static uint64_t prepare(struct loop *l, void *ud)
{
	struct qdev *q = ud;
	uint64_t now = now_usec(), next;

	(void)l;
	isession_park_service(&q->park, now);
	if (q->ctx && now - q->last_service >= USEC_PER_SEC / 2) {
		if (iscsi_service(q->ctx, 0) < 0)
			q->need_reset = true;
		q->last_service = now;
	}
	if (q->conn == QDEV_CONNECTING && now >= q->conn_deadline)
		q->need_reset = true;
	if (q->busy && now >= q->q[q->head].deadline) {
		log_debug("qdev: %s timed out", qdev_op_to_str(q->q[q->head].op));
		q->need_reset = true;
	}
	if (q->need_reset)
		teardown(q, now);
	if (q->conn == QDEV_DOWN && now >= q->next_connect && start_connect(q, now) < 0)
		teardown(q, now);
	pump(q, now);
	if (q->ctx && q->watch) {
		int fd = iscsi_get_fd(q->ctx);
		uint32_t ev = 0;
		int want = iscsi_which_events(q->ctx);

		if (want & POLLIN)
			ev |= EPOLLIN;
		if (want & POLLOUT)
			ev |= EPOLLOUT;
		if (fd >= 0 && fd != watch_fd(q->watch))
			(void)watch_set_fd(q->watch, fd, ev);
		else
			(void)watch_set_events(q->watch, ev);
	}
	next = now + USEC_PER_SEC / 2;
	if (q->conn == QDEV_DOWN && q->next_connect < next)
		next = q->next_connect;
	if (q->busy && q->q[q->head].deadline < next)
		next = q->q[q->head].deadline;
	if (q->n > 0 && !q->busy && next > now + 10 * USEC_PER_MSEC)
		next = now + 10 * USEC_PER_MSEC;
	return next;
}

int qdev_new(struct loop *l, const struct qdev_config *c, qdev_done_fn cb, void *ud,
	     struct qdev **ret)
{
	struct qdev *q;
	int r;

	if (c->n_portals < 1 || c->n_slots < 1 || c->n_slots > QDEV_MAX_SLOTS || c->self_slot < 0 ||
	    c->self_slot >= c->n_slots || !c->key)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = (struct qdev){.loop = l, .c = *c, .cb = cb, .ud = ud};
	isession_park_init(&q->park, l);
	if (!q->c.io_timeout)
		q->c.io_timeout = USEC_PER_SEC;
	r = loop_add_prepare(l, prepare, q);
	if (r < 0) {
		free(q);
		return r;
	}
	*ret = q;
	return 0;
}

struct qdev *qdev_free(struct qdev *q)
{
	if (!q)
		return NULL;
	loop_remove_prepare(q->loop, prepare, q);
	q->watch = watch_remove(q->watch);
	q->gen++;
	isession_unpark(&q->park);
	if (q->ctx)
		isession_destroy(q->ctx);
	free(q->conn_cc);
	sodium_memzero(q->c.mac_key, sizeof(q->c.mac_key));
	free(q);
	return NULL;
}

int qdev_submit(struct qdev *q, enum qdev_op op, uint64_t tag, const struct qdev_slot *slot,
		uint64_t victim)
{
	struct qdev_cmd *c;

	if (op >= _QDEV_OP_MAX || (op == QDEV_OP_WRITE && !slot))
		return -EINVAL;
	if (q->n >= QDEV_QUEUE)
		return -EBUSY;
	c = &q->q[(q->head + q->n) % QDEV_QUEUE];
	*c = (struct qdev_cmd){
	    .op = op, .tag = tag, .victim = victim, .deadline = now_usec() + q->c.io_timeout};
	if (op == QDEV_OP_WRITE)
		qdev_slot_encode(q->c.mac_key, slot, c->block);
	q->n++;
	return 0;
}

bool qdev_connected(const struct qdev *q)
{
	return q->conn == QDEV_UP;
}

const char *qdev_portal(const struct qdev *q)
{
	return q->conn == QDEV_UP ? q->c.portals[q->portal] : NULL;
}
