#include "nbdx.h"

#include "log.h"
#include "nbdx_proto.h"
#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_INFLIGHT_PER_CONN 256
#define OUT_IOV 32

struct outbuf {
	uint8_t hdr[NBDX_REPLY_HDR];
	size_t hdr_len;
	uint8_t *data; /* owned */
	size_t data_len;
	size_t off; /* bytes of hdr+data already written */
	struct outbuf *next;
};

struct conn {
	struct nbdx *x;
	int fd;
	struct watch *w;
	bool kernel;
	bool transmission;
	bool closing; /* no more requests; closed once the replies are out */
	struct nbdx_hs hs;
	uint8_t *in;
	size_t in_pos, in_len, in_cap;
	struct outbuf *out_head, *out_tail;
	unsigned inflight;
	/* A WRITE whose payload is still arriving: read straight into its buffer. */
	struct xreq *pw;
	size_t pw_got;
	/* A refused WRITE whose payload is still arriving: dropped as it comes (not gathered
	 * in c->in), answered once it is all in. */
	bool skipping;
	size_t skip_left;
	uint64_t skip_handle;
	int skip_err;
	bool dirty; /* replies queued since the last flush (nbdx_prepare sends them) */
	bool lost;  /* a reply could not be queued (no memory): closed at the next kick */
	struct conn *prev, *next;
};

struct xreq {
	struct mpath_io io;
	struct conn *c;
	uint64_t handle;
	uint64_t offset;
	uint16_t type;
	uint8_t *buf;
	uint32_t len;
};

struct nbdx {
	struct loop *loop;
	struct mpath *m;
	struct nbdx_export_info info;
	char name[CFG_NAME_MAX];
	int listen_fd;
	struct watch *listen_w;
	char listen_path[108];
	struct conn *conns;
	int kernel_index; /* -1 none */
	int kernel_child; /* ioctl fallback: the process sitting in NBD_DO_IT, or -1 */
	uint64_t kernel_timeout_us;
	struct conn *kernel_conn; /* our end of the kernel's socket while open */
	char designator[MPATH_DESIGNATOR_MAX];
};

static void conn_close(struct conn *c);
static void conn_kick(struct conn *c);

/* The buffers of the kernel's socketpair: a 1 MiB request or reply crosses it in one go
 * instead of a wake-up and a read per ~200 KiB (net.core.[rw]mem_max default). */
#define KERNEL_SOCKBUF (4 << 20)

static void sock_bufs(int fd)
{
	int v = KERNEL_SOCKBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* ---- output ---- */

static void conn_update_events(struct conn *c)
{
	if (!c->w)
		return;
	uint32_t ev = 0;
	if (!c->closing && c->inflight < MAX_INFLIGHT_PER_CONN)
		ev |= EPOLLIN;
	if (c->out_head)
		ev |= EPOLLOUT;
	watch_set_events(c->w, ev);
}

static void out_push(struct conn *c, struct outbuf *o)
{
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
}

static void out_free(struct outbuf *o)
{
	free(o->data);
	free(o);
}

/* Writes what the socket takes; returns 0, or -errno when the connection broke. */
static int conn_flush(struct conn *c)
{
	for (unsigned guard = 0; c->out_head && guard < 1000000; guard++) {
		struct iovec iov[OUT_IOV];
		int n = 0;
		for (struct outbuf *o = c->out_head; o && n + 2 <= OUT_IOV; o = o->next) {
			size_t off = o->off;
			if (off < o->hdr_len) {
				iov[n++] = (struct iovec){o->hdr + off, o->hdr_len - off};
				off = 0;
			} else {
				off -= o->hdr_len;
			}
			if (o->data_len > off)
				iov[n++] = (struct iovec){o->data + off, o->data_len - off};
		}
		/* MSG_NOSIGNAL: a peer gone must not raise SIGPIPE (the agent is not always
		 * PID 1, whom the kernel spares it). */
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		size_t left = (size_t)w;
		while (c->out_head && left > 0) {
			struct outbuf *o = c->out_head;
			size_t rest = o->hdr_len + o->data_len - o->off;
			if (left < rest) {
				o->off += left;
				break;
			}
			left -= rest;
			c->out_head = o->next;
			if (!c->out_head)
				c->out_tail = NULL;
			out_free(o);
		}
	}
	return 0;
}

static void conn_send_sb(struct conn *c, struct strbuf *sb)
{
	if (sb->len == 0)
		return;
	struct outbuf *o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->data_len = sb->len;
	o->data = (uint8_t *)sb_steal(sb);
	out_push(c, o);
}

static void conn_reply(struct conn *c, uint64_t handle, int err, uint8_t *data, size_t len)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	if (!o) {
		/* Not closed here: the callers go on using c. The client would wait for
		 * this reply for ever, so the connection goes at the next kick. */
		free(data);
		c->lost = true;
		c->dirty = true;
		return;
	}
	uint32_t e = nbdx_errno_to_wire(err);
	nbdx_reply_header(o->hdr, e, handle);
	o->hdr_len = NBDX_REPLY_HDR;
	if (e == 0 && data) {
		o->data = data;
		o->data_len = len;
	} else {
		free(data);
	}
	out_push(c, o);
}

static void conn_kick(struct conn *c)
{
	if (c->lost)
		return conn_close(c);
	if (c->fd >= 0 && conn_flush(c) < 0)
		return conn_close(c);
	if (c->closing && !c->out_head && c->inflight == 0)
		return conn_close(c);
	conn_update_events(c);
}

/* ---- requests ---- */

static void conn_free(struct conn *c)
{
	struct nbdx *x = c->x;
	if (c->prev)
		c->prev->next = c->next;
	else if (x && x->conns == c)
		x->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	while (c->out_head) {
		struct outbuf *o = c->out_head;
		c->out_head = o->next;
		out_free(o);
	}
	free(c->in);
	free(c);
}

static void req_done(struct mpath_io *io, int r)
{
	struct xreq *q = io->ud;
	struct conn *c = q->c;
	c->inflight--;
	if (c->fd < 0) {
		free(q->buf);
		free(q);
		if (c->inflight == 0)
			conn_free(c);
		return;
	}
	uint8_t *data = q->type == NBDX_CMD_READ ? q->buf : NULL;
	if (q->type != NBDX_CMD_READ)
		free(q->buf);
	conn_reply(c, q->handle, r, data, q->len);
	free(q);
	/* Sent by nbdx_prepare once this loop iteration's completions are all in: one
	 * writev for all of them. */
	if (c->fd >= 0)
		c->dirty = true;
}

static enum mpath_op op_of(uint16_t type)
{
	switch (type) {
	case NBDX_CMD_READ:
		return MPATH_OP_READ;
	case NBDX_CMD_WRITE:
		return MPATH_OP_WRITE;
	case NBDX_CMD_TRIM:
		return MPATH_OP_TRIM;
	default:
		return MPATH_OP_FLUSH;
	}
}

static struct xreq *req_new(struct conn *c, const struct nbdx_req *r);
static void req_start(struct conn *c, struct xreq *q);

static void conn_request(struct conn *c, const struct nbdx_req *r, const uint8_t *payload)
{
	int err = nbdx_req_check(r, &c->x->info);
	if (r->type == NBDX_CMD_DISC) {
		c->closing = true;
		return;
	}
	if (err)
		return conn_reply(c, r->handle, -err, NULL, 0);
	bool data_op = r->type == NBDX_CMD_READ || r->type == NBDX_CMD_WRITE;
	if (data_op && r->len == 0)
		return conn_reply(c, r->handle, 0, NULL, 0);
	struct xreq *q = req_new(c, r);
	if (!q)
		return conn_reply(c, r->handle, -ENOMEM, NULL, 0);
	if (r->type == NBDX_CMD_WRITE)
		memcpy(q->buf, payload, r->len);
	req_start(c, q);
}

static struct xreq *req_new(struct conn *c, const struct nbdx_req *r)
{
	bool data_op = r->type == NBDX_CMD_READ || r->type == NBDX_CMD_WRITE;
	struct xreq *q = calloc(1, sizeof(*q));
	uint8_t *buf = data_op ? malloc(r->len) : NULL;
	if (!q || (data_op && !buf)) {
		free(q);
		free(buf);
		return NULL;
	}
	*q = (struct xreq){.c = c,
			   .handle = r->handle,
			   .offset = r->offset,
			   .type = r->type,
			   .buf = buf,
			   .len = r->len};
	return q;
}

static void req_start(struct conn *c, struct xreq *q)
{
	uint8_t *buf = q->buf;
	uint64_t handle = q->handle;
	q->io = (struct mpath_io){.op = op_of(q->type),
				  .offset = q->offset,
				  .len = q->len,
				  .buf = buf,
				  .done = req_done,
				  .ud = q};
	if (q->type == NBDX_CMD_FLUSH)
		q->io.offset = q->io.len = 0;
	c->inflight++;
	int s = mpath_submit(c->x->m, &q->io);
	if (s < 0) {
		c->inflight--;
		free(buf);
		free(q);
		conn_reply(c, handle, s == -EAGAIN ? -EIO : s, NULL, 0);
	}
}

/* A valid WRITE whose payload is not all in: its buffer takes what is, and the rest is
 * read straight into it (conn_cb), not through c->in and a copy. */
static bool conn_start_pending_write(struct conn *c, const struct nbdx_req *r,
				     const uint8_t *payload, size_t have)
{
	if (r->type != NBDX_CMD_WRITE || r->len == 0 || nbdx_req_check(r, &c->x->info))
		return false;
	struct xreq *q = req_new(c, r);
	if (!q)
		return false;
	memcpy(q->buf, payload, have);
	c->pw = q;
	c->pw_got = have;
	return true;
}

/* Any other WRITE whose payload is not all in (refused, or no memory for its buffer):
 * the rest of its payload is read and dropped, then it is answered with the error. */
static void conn_start_skip(struct conn *c, const struct nbdx_req *r, size_t have)
{
	int err = nbdx_req_check(r, &c->x->info);
	c->skipping = true;
	c->skip_left = r->len - have;
	c->skip_handle = r->handle;
	c->skip_err = err ? err : ENOMEM;
}

/* Handles every complete message in the input buffer. Returns -EPROTO to close. */
static int conn_process(struct conn *c)
{
	for (unsigned guard = 0; guard < 100000 && !c->closing; guard++) {
		const uint8_t *in = c->in + c->in_pos;
		size_t len = c->in_len - c->in_pos;
		if (!c->transmission) {
			struct strbuf sb;
			sb_init(&sb);
			int r = nbdx_hs_input(&c->hs, in, len, &sb);
			conn_send_sb(c, &sb);
			sb_free(&sb);
			if (r <= 0)
				return r;
			c->in_pos += (size_t)r;
			if (c->hs.state == NBDX_HS_DONE)
				c->transmission = true;
			else if (c->hs.state == NBDX_HS_ABORT)
				c->closing = true;
			continue;
		}
		struct nbdx_req req;
		int total = nbdx_req_parse(in, len, &req);
		if (total <= 0)
			return total;
		if ((size_t)total > len) {
			/* The rest of a WRITE's payload: into its buffer, or dropped. */
			size_t have = len - NBDX_REQ_HDR;
			if (!conn_start_pending_write(c, &req, in + NBDX_REQ_HDR, have))
				conn_start_skip(c, &req, have);
			c->in_pos = c->in_len;
			return 0;
		}
		conn_request(c, &req, in + NBDX_REQ_HDR);
		c->in_pos += (size_t)total;
	}
	return 0;
}

static int conn_make_room(struct conn *c, size_t want)
{
	if (c->in_pos > 0) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	if (c->in_cap - c->in_len >= want)
		return 0;
	size_t cap = c->in_len + want;
	uint8_t *n = realloc(c->in, cap);
	if (!n)
		return -ENOMEM;
	c->in = n;
	c->in_cap = cap;
	return 0;
}

static void conn_cb(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct conn *c = ud;
	if (revents & EPOLLIN) {
		if (conn_make_room(c, 256 * 1024) < 0)
			return conn_close(c);
		/* The rest of a pending WRITE's payload, then whatever follows, in one call; a
		 * refused WRITE's payload is read into c->in and dropped, no further. */
		struct iovec iov[2];
		int niov = 0;
		size_t pw_need = c->pw ? c->pw->len - c->pw_got : 0;
		size_t room = c->in_cap - c->in_len;
		if (c->skipping && c->skip_left < room)
			room = c->skip_left;
		if (pw_need)
			iov[niov++] = (struct iovec){c->pw->buf + c->pw_got, pw_need};
		iov[niov++] = (struct iovec){c->in + c->in_len, room};
		ssize_t n = readv(fd, iov, niov);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return conn_close(c);
		if (n > 0) {
			size_t got = (size_t)n < pw_need ? (size_t)n : pw_need;
			c->pw_got += got;
			if (c->skipping)
				c->skip_left -= (size_t)n - got;
			else
				c->in_len += (size_t)n - got;
		}
		if (c->pw && c->pw_got == c->pw->len) {
			struct xreq *q = c->pw;
			c->pw = NULL;
			req_start(c, q);
		}
		if (c->skipping && c->skip_left == 0) {
			c->skipping = false;
			conn_reply(c, c->skip_handle, -c->skip_err, NULL, 0);
		}
		if (!c->pw && !c->skipping && conn_process(c) < 0) {
			log_warn("nbd %s: client broke the protocol, closing", c->x->name);
			return conn_close(c);
		}
		if (c->in_pos == c->in_len)
			c->in_pos = c->in_len = 0;
	} else if (revents & (EPOLLHUP | EPOLLERR)) {
		return conn_close(c);
	}
	conn_kick(c);
}

/* Before the loop sleeps: the replies completed in this iteration, one writev per
 * connection (a reply per completion cost a writev and often a wake-up of the kernel's
 * receiver each). */
static uint64_t nbdx_prepare(struct loop *l, void *ud)
{
	struct nbdx *x = ud;
	(void)l;
	struct conn *next;
	for (struct conn *c = x->conns; c; c = next) {
		next = c->next; /* conn_kick may free c */
		if (c->dirty && c->fd >= 0) {
			c->dirty = false;
			conn_kick(c);
		}
	}
	return UINT64_MAX;
}

/* Closes the socket now; the struct goes when the last request in flight returns. */
static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	c->w = watch_remove(c->w);
	close(c->fd);
	c->fd = -1;
	if (c->pw) {
		free(c->pw->buf);
		free(c->pw);
		c->pw = NULL;
	}
	if (c->kernel && c->x && c->x->kernel_conn == c)
		c->x->kernel_conn = NULL;
	if (c->kernel && c->x)
		log_warn("nbd %s: the kernel's socket is closed", c->x->name);
	if (c->inflight == 0)
		conn_free(c);
}

static struct conn *conn_new(struct nbdx *x, int fd, bool kernel)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->x = x;
	c->fd = fd;
	c->kernel = kernel;
	c->transmission = kernel;
	if (!kernel) {
		struct strbuf sb;
		sb_init(&sb);
		nbdx_hs_init(&c->hs, &x->info, &sb);
		conn_send_sb(c, &sb);
		sb_free(&sb);
	}
	c->w = watch_add(x->loop, fd, EPOLLIN | EPOLLOUT, conn_cb, c, NULL);
	if (!c->w) {
		conn_free(c);
		return NULL;
	}
	c->next = x->conns;
	if (x->conns)
		x->conns->prev = c;
	x->conns = c;
	return c;
}

/* ---- the unix socket ---- */

static void listen_cb(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct nbdx *x = ud;
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		if (!conn_new(x, cfd, false))
			close(cfd);
	}
}

int nbdx_listen(struct nbdx *x, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "nbd socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "cannot create a unix socket");
	unlink(path);
	mode_t old = umask(0077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0)
		return log_error_errno(-errno, "cannot listen on %s", path);
	x->listen_w = watch_add(x->loop, fd, EPOLLIN, listen_cb, x, NULL);
	if (!x->listen_w)
		return -ENOMEM;
	x->listen_fd = TAKE_FD(fd);
	snprintf(x->listen_path, sizeof(x->listen_path), "%s", path);
	log_notice("nbd %s: serving on %s", x->name, path);
	return 0;
}

int nbdx_kernel_attach(struct nbdx *x, const char *dev, uint64_t timeout_us, char *ret_dev,
		       size_t n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	sock_bufs(sv[0]);
	sock_bufs(sv[1]);
	int index = -1, child = -1;
	int r = nbdx_kernel_connect(&x->info, dev, timeout_us, sv[1], &index, &child);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	struct conn *c = conn_new(x, sv[0], true);
	if (!c) {
		close(sv[0]);
		nbdx_kernel_disconnect(index, child);
		return -ENOMEM;
	}
	x->kernel_conn = c;
	x->kernel_index = index;
	x->kernel_child = child;
	x->kernel_timeout_us = timeout_us;
	snprintf(ret_dev, n, "/dev/nbd%d", index);
	return 0;
}

/* ---- the kernel export's health (agent/health_export.c) ---- */

int nbdx_kernel_index(const struct nbdx *x)
{
	return x->kernel_index;
}

long nbdx_kernel_server_pid(const struct nbdx *x)
{
	return x->kernel_child > 0 ? (long)x->kernel_child : (long)getpid();
}

bool nbdx_kernel_netlink(const struct nbdx *x)
{
	return x->kernel_child <= 0;
}

bool nbdx_kernel_linked(const struct nbdx *x)
{
	return x->kernel_conn && x->kernel_conn->fd >= 0;
}

const char *nbdx_designator(const struct nbdx *x)
{
	return x->designator;
}

void nbdx_kernel_isolate(struct nbdx *x)
{
	if (x->kernel_conn)
		conn_close(x->kernel_conn);
	x->kernel_conn = NULL;
}

/* A fresh socketpair: the kernel's end goes to `attach`, ours becomes the kernel conn. */
static int reattach(struct nbdx *x, bool reconfigure)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	sock_bufs(sv[0]);
	sock_bufs(sv[1]);
	int r, index = x->kernel_index, child = -1;
	char dev[32];
	snprintf(dev, sizeof(dev), "/dev/nbd%d", index);
	if (reconfigure)
		r = nbdx_kernel_reconfigure(index, x->kernel_timeout_us, sv[1]);
	else
		r = nbdx_kernel_connect(&x->info, dev, x->kernel_timeout_us, sv[1], &index, &child);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	x->kernel_conn = conn_new(x, sv[0], true);
	if (!x->kernel_conn) {
		close(sv[0]);
		return -ENOMEM;
	}
	x->kernel_child = child;
	return 0;
}

int nbdx_kernel_reexport(struct nbdx *x, struct strbuf *msg)
{
	if (x->kernel_index < 0 || x->kernel_child > 0) {
		sb_puts(msg, "no netlink export to redo");
		return -EOPNOTSUPP;
	}
	nbdx_kernel_isolate(x);
	bool connected = false;
	int r = nbdx_kernel_status(x->kernel_index, &connected);
	if (r == 0 && connected) {
		/* The kernel marks the socket we just closed dead from its receive worker: give
		 * it a moment before concluding there is nothing to replace (bounded: 0.5 s). */
		r = reattach(x, true);
		for (int i = 0; i < 10 && r == -ENOSPC; i++) {
			usleep(50 * 1000);
			r = reattach(x, true);
		}
		if (r == 0) {
			sb_printf(msg, "/dev/nbd%d reconfigured with a fresh socket",
				  x->kernel_index);
			return 0;
		}
		/* No dead socket to replace (or a half-torn device): start over. */
		nbdx_kernel_disconnect(x->kernel_index, -1);
	}
	r = reattach(x, false);
	if (r < 0) {
		sb_printf(msg, "connecting /dev/nbd%d again failed: %s%s", x->kernel_index,
			  strerror(-r), r == -EBUSY ? " (still held open)" : "");
		return r;
	}
	sb_printf(msg, "/dev/nbd%d connected again with a fresh socket", x->kernel_index);
	return 0;
}

int nbdx_new(struct loop *l, struct mpath *m, struct nbdx **ret)
{
	if (!mpath_identity_known(m))
		return -EAGAIN;
	const struct mpath_identity *id = mpath_identity(m);
	struct nbdx *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->loop = l;
	x->m = m;
	x->listen_fd = -1;
	x->kernel_index = -1;
	x->kernel_child = -1;
	snprintf(x->name, sizeof(x->name), "%s", mpath_name(m));
	snprintf(x->designator, sizeof(x->designator), "%s", id->designator);
	if (loop_add_prepare(l, nbdx_prepare, x) < 0) {
		free(x);
		return -ENOSPC;
	}
	x->info = (struct nbdx_export_info){
	    .name = x->name,
	    .size = id->size,
	    .flags = NBDX_FLAG_HAS_FLAGS | NBDX_FLAG_SEND_FLUSH | NBDX_FLAG_CAN_MULTI_CONN |
		     (id->can_unmap ? NBDX_FLAG_SEND_TRIM : 0),
	    .min_block = id->block_size,
	    .pref_block = id->block_size > 4096 ? id->block_size : 4096,
	    .max_block = NBDX_MAX_PAYLOAD,
	};
	*ret = x;
	return 0;
}

struct nbdx *nbdx_free(struct nbdx *x)
{
	if (!x)
		return NULL;
	if (x->kernel_index >= 0 || x->kernel_child > 0)
		nbdx_kernel_disconnect(x->kernel_index, x->kernel_child);
	x->kernel_conn = NULL;
	while (x->conns) {
		struct conn *c = x->conns;
		x->conns = c->next;
		c->prev = c->next = NULL;
		c->x = NULL;
		c->w = watch_remove(c->w);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		if (c->pw) {
			free(c->pw->buf);
			free(c->pw);
			c->pw = NULL;
		}
		if (c->inflight == 0)
			conn_free(c);
	}
	loop_remove_prepare(x->loop, nbdx_prepare, x);
	watch_remove(x->listen_w);
	if (x->listen_fd >= 0) {
		close(x->listen_fd);
		unlink(x->listen_path);
	}
	free(x);
	return NULL;
}

int nbdx_link(const char *dir, const char *name, const char *dev)
{
	char path[CFG_PATH_MAX + CFG_NAME_MAX], tmp[CFG_PATH_MAX + CFG_NAME_MAX + 8];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create %s", dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (symlink(dev, tmp) < 0 || rename(tmp, path) < 0)
		return log_error_errno(-errno, "cannot link %s to %s", path, dev);
	return 0;
}
