/* The NBD request engine (iscsi/nbdx.c) driven end to end: a client on the export's real
 * unix socket (fixed newstyle handshake, then transmission), the agent's event loop
 * (agent/base/loop.c), and a block backend of this test's own in place of the multipath
 * driver. The backend is the engine's interface to the storage: mpath_submit() takes a
 * struct mpath_io and its done() is called later with 0 or -errno. Those calls and the
 * identity ones are defined here, so the linker takes them instead of iscsi/mpath.o (a
 * real multipath needs an iSCSI target: tests/integration covers that).
 *
 * Memory: a connection's buffers must all be released when it ends (DISC, the peer
 * closing, the export freed). The ASan stage's leak check fails the binary otherwise;
 * heap_in_use() also compares the heap before and after in both builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop.h"
#include "mpath.h"
#include "nbdx.h"
#include "nbdx_proto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang's spelling */
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
/* libasan's (sanitizer/allocator_interface.h, not installed with gcc here). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define DISK_SIZE (16U << 20)
#define BLOCK 512U
#define MAXQ 1024
#define REQ_MAGIC 0x25609513U
#define REPLY_MAGIC 0x67446698U

/* ---- the backend: a disk in memory, requests completed when the test says ---- */

struct mpath {
	struct mpath_identity id;
	uint8_t *disk;
	struct mpath_io *q[MAXQ]; /* submitted, not completed, in submission order */
	size_t nq;
	unsigned submitted; /* ever */
	int submit_error;   /* mpath_submit's answer when nonzero */
};

static struct mpath be;

bool mpath_identity_known(const struct mpath *m)
{
	return true;
}

const struct mpath_identity *mpath_identity(const struct mpath *m)
{
	return &m->id;
}

const char *mpath_name(const struct mpath *m)
{
	return "lu0";
}

/* The checks of the real mpath_submit (iscsi/mpath.c); completion is always later. */
int mpath_submit(struct mpath *m, struct mpath_io *io)
{
	if (m->submit_error)
		return m->submit_error;
	if (io->offset % BLOCK || io->len % BLOCK || io->offset > m->id.size ||
	    io->len > m->id.size - io->offset)
		return -EINVAL;
	assert_true(m->nq < MAXQ);
	m->q[m->nq++] = io;
	m->submitted++;
	return 0;
}

/* Completes the i-th request still queued with r: a READ gets the disk's bytes, a WRITE
 * lands on the disk (only on success). */
static void be_complete(size_t i, int r)
{
	assert_true(i < be.nq);
	struct mpath_io *io = be.q[i];
	memmove(&be.q[i], &be.q[i + 1], (be.nq - i - 1) * sizeof(be.q[0]));
	be.nq--;
	if (r == 0 && io->op == MPATH_OP_READ)
		memcpy(io->buf, be.disk + io->offset, io->len);
	if (r == 0 && io->op == MPATH_OP_WRITE)
		memcpy(be.disk + io->offset, io->buf, io->len);
	io->done(io, r);
}

/* The queued request at `offset` with this op (requests here never share both). */
static size_t be_find(enum mpath_op op, uint64_t offset)
{
	for (size_t i = 0; i < be.nq; i++)
		if (be.q[i]->op == op && be.q[i]->offset == offset)
			return i;
	fail_msg("no queued op %d at %" PRIu64, (int)op, offset);
	return 0;
}

static uint8_t pattern(uint64_t pos, unsigned seed)
{
	uint64_t v = (pos + 1) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed * 0xD6E8FEB86659FD93ULL;
	return (uint8_t)(v >> 56 ^ v >> 17);
}

static void fill(uint8_t *b, size_t n, uint64_t pos, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pattern(pos + i, seed);
}

/* ---- the heap ---- */

static size_t heap_in_use(void)
{
#ifdef TEST_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

/* ---- the client ---- */

struct env {
	struct loop *l;
	struct nbdx *x;
	char dir[64], path[108];
	int fd;
};

static void spin(struct env *e, uint64_t wait_us)
{
	assert_true(loop_iterate(e->l, now_usec() + wait_us) >= 0);
}

static int sock_ioctl(int fd, unsigned long req)
{
	int v = -1;
	assert_int_equal(ioctl(fd, req, &v), 0);
	return v;
}

/* Runs the loop until the engine has taken every byte the client sent (bounded: 3 s). */
static void drain(struct env *e)
{
	uint64_t end = now_usec() + 3 * USEC_PER_SEC;
	while (sock_ioctl(e->fd, SIOCOUTQ) > 0 && now_usec() < end)
		spin(e, 2000);
	assert_int_equal(sock_ioctl(e->fd, SIOCOUTQ), 0);
}

static void send_all(struct env *e, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint64_t end = now_usec() + 5 * USEC_PER_SEC;
	while (n > 0) {
		assert_true(now_usec() < end);
		ssize_t w = send(e->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			assert_int_equal(errno, EAGAIN);
			spin(e, 2000);
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Receives exactly n bytes, at most `chunk` per recv, running the loop in between.
 * Returns 0, or -EPIPE when the engine closed the connection first. */
static int recv_exact(struct env *e, void *buf, size_t n, size_t chunk)
{
	uint8_t *p = buf;
	uint64_t end = now_usec() + 5 * USEC_PER_SEC;
	while (n > 0) {
		assert_true(now_usec() < end);
		ssize_t r = recv(e->fd, p, n < chunk ? n : chunk, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return -EPIPE;
		if (r < 0) {
			assert_int_equal(errno, EAGAIN);
			spin(e, 2000);
			continue;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Whether the engine closed the connection within wait_us, with nothing more to read. */
static bool closed_by_engine(struct env *e, uint64_t wait_us)
{
	uint64_t end = now_usec() + wait_us;
	while (now_usec() < end) {
		uint8_t b;
		ssize_t r = recv(e->fd, &b, 1, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		assert_true(r < 0 && errno == EAGAIN); /* no stray bytes */
		spin(e, 2000);
	}
	return false;
}

static size_t put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return (size_t)n;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static size_t put_req(uint8_t *p, uint16_t type, uint64_t handle, uint64_t offset, uint32_t len)
{
	size_t n = put_be(p, REQ_MAGIC, 4);
	n += put_be(p + n, 0, 2);
	n += put_be(p + n, type, 2);
	n += put_be(p + n, handle, 8);
	n += put_be(p + n, offset, 8);
	n += put_be(p + n, len, 4);
	return n;
}

struct reply {
	uint32_t err;
	uint64_t handle;
};

static int read_reply(struct env *e, struct reply *r, size_t chunk)
{
	uint8_t h[NBDX_REPLY_HDR];
	int k = recv_exact(e, h, sizeof(h), chunk);
	if (k < 0)
		return k;
	assert_int_equal(get_be(h, 4), REPLY_MAGIC);
	r->err = (uint32_t)get_be(h + 4, 4);
	r->handle = get_be(h + 8, 8);
	return 0;
}

static void expect_reply(struct env *e, uint64_t handle, uint32_t err)
{
	struct reply r;
	assert_int_equal(read_reply(e, &r, SIZE_MAX), 0);
	assert_int_equal(r.handle, handle);
	assert_int_equal(r.err, err);
}

static void handshake(struct env *e)
{
	uint8_t b[64];
	assert_int_equal(recv_exact(e, b, 18, SIZE_MAX), 0);
	assert_memory_equal(b, "NBDMAGICIHAVEOPT", 16);
	size_t n = put_be(b, 3, 4); /* fixed newstyle, no zeroes */
	n += put_be(b + n, 0x49484156454f5054ULL, 8);
	n += put_be(b + n, 1, 4); /* NBD_OPT_EXPORT_NAME */
	n += put_be(b + n, 3, 4);
	memcpy(b + n, "lu0", 3);
	send_all(e, b, n + 3);
	assert_int_equal(recv_exact(e, b, 10, SIZE_MAX), 0);
	assert_int_equal(get_be(b, 8), DISK_SIZE);
}

static void env_connect(struct env *e)
{
	e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(e->fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->path);
	assert_int_equal(connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	handshake(e);
}

static int setup(void **state)
{
	be = (struct mpath){.id = {.designator = "naa.test",
				   .size = DISK_SIZE,
				   .block_size = BLOCK,
				   .max_xfer = 1 << 20,
				   .can_unmap = true,
				   .max_unmap = 1 << 16}};
	be.disk = calloc(1, DISK_SIZE);
	assert_non_null(be.disk);
	fill(be.disk, DISK_SIZE, 0, 7);
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/nbdx-engine-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/sock", e->dir);
	e->l = loop_new();
	assert_non_null(e->l);
	assert_int_equal(nbdx_new(e->l, &be, &e->x), 0);
	assert_int_equal(nbdx_listen(e->x, e->path), 0);
	env_connect(e);
	*state = e;
	return 0;
}

/* The export goes first; requests still at the backend complete after it (the multipath
 * driver outlives nothing here: this is the order the agent tears down in). */
static int teardown(void **state)
{
	struct env *e = *state;
	if (e->fd >= 0)
		close(e->fd);
	e->x = nbdx_free(e->x);
	while (be.nq > 0)
		be_complete(0, -EIO);
	for (int i = 0; i < 4; i++)
		spin(e, 0); /* the loop's zombie watches */
	loop_free(e->l);
	rmdir(e->dir);
	free(be.disk);
	free(e);
	return 0;
}

/* ---- a WRITE in pieces ---- */

struct msg {
	uint16_t type;
	uint64_t handle, offset;
	uint32_t len;
	size_t at, end; /* its bytes in the stream */
};

#define NMSG 7

/* Writes, a FLUSH and a READ one after another, and the stream of their bytes. */
static size_t build_stream(uint8_t *s, struct msg *m, unsigned seed)
{
	static const struct msg plan[NMSG] = {
	    {.type = NBDX_CMD_WRITE, .offset = 0, .len = 4096},
	    {.type = NBDX_CMD_WRITE, .offset = 8192, .len = 512},
	    {.type = NBDX_CMD_FLUSH},
	    {.type = NBDX_CMD_WRITE, .offset = 1 << 20, .len = 65536},
	    {.type = NBDX_CMD_READ, .offset = 4 << 20, .len = 1024},
	    {.type = NBDX_CMD_WRITE, .offset = 12288, .len = 1536},
	    /* more than one 256 KiB read of the socket */
	    {.type = NBDX_CMD_WRITE, .offset = 2 << 20, .len = 300 * 1024},
	};
	size_t n = 0;
	for (int i = 0; i < NMSG; i++) {
		m[i] = plan[i];
		m[i].handle = 0xA5000000000000ULL + seed * 100 + (uint64_t)i;
		m[i].at = n;
		n += put_req(s + n, m[i].type, m[i].handle, m[i].offset, m[i].len);
		if (m[i].type == NBDX_CMD_WRITE) {
			fill(s + n, m[i].len, m[i].offset, seed);
			n += m[i].len;
		}
		m[i].end = n;
	}
	return n;
}

/* Sends the stream in pieces of the sizes in `cuts` (cycled; 0: all in one send), making
 * sure the engine has read each piece before the next. After every piece, exactly the
 * requests whose bytes are all in have reached the backend; then each one is checked and
 * completed (in reverse), and its reply read. */
static void write_stream_in_pieces(struct env *e, const size_t *cuts, size_t ncuts, unsigned seed)
{
	static uint8_t s[512 * 1024];
	struct msg m[NMSG];
	size_t len = build_stream(s, m, seed);
	unsigned base = be.submitted;
	size_t sent = 0;
	for (size_t k = 0; sent < len; k++) {
		size_t piece = ncuts ? cuts[k % ncuts] : len;
		if (piece > len - sent)
			piece = len - sent;
		send_all(e, s + sent, piece);
		sent += piece;
		drain(e);
		unsigned complete = 0;
		for (int i = 0; i < NMSG; i++)
			complete += m[i].end <= sent;
		assert_int_equal(be.submitted - base, complete);
	}
	assert_int_equal(be.nq, NMSG);
	for (int i = 0; i < NMSG; i++) {
		static const enum mpath_op op[] = {[NBDX_CMD_READ] = MPATH_OP_READ,
						   [NBDX_CMD_WRITE] = MPATH_OP_WRITE,
						   [NBDX_CMD_FLUSH] = MPATH_OP_FLUSH};
		struct mpath_io *io = be.q[i];
		assert_int_equal(io->op, op[m[i].type]);
		assert_int_equal(io->offset, m[i].type == NBDX_CMD_FLUSH ? 0 : m[i].offset);
		assert_int_equal(io->len, m[i].type == NBDX_CMD_FLUSH ? 0 : m[i].len);
		if (m[i].type == NBDX_CMD_WRITE)
			assert_memory_equal(io->buf, s + m[i].at + NBDX_REQ_HDR, m[i].len);
	}
	for (int i = NMSG - 1; i >= 0; i--)
		be_complete((size_t)i, 0);
	for (int i = NMSG - 1; i >= 0; i--) {
		expect_reply(e, m[i].handle, 0);
		if (m[i].type == NBDX_CMD_READ) {
			static uint8_t d[1024];
			assert_int_equal(recv_exact(e, d, m[i].len, SIZE_MAX), 0);
			assert_memory_equal(d, be.disk + m[i].offset, m[i].len);
		}
	}
	for (int i = 0; i < NMSG; i++)
		if (m[i].type == NBDX_CMD_WRITE)
			assert_memory_equal(be.disk + m[i].offset, s + m[i].at + NBDX_REQ_HDR,
					    m[i].len);
}

static void write_in_pieces_reaches_backend_exactly(void **state)
{
	struct env *e = *state;
	/* Everything in one send: header and payload together, requests back to back. */
	write_stream_in_pieces(e, NULL, 0, 1);
	/* Odd splits: inside a header, at its end, one byte after, across two requests. */
	static const size_t odd[] = {1, 27, 2, 28, 3, 511, 4097, 13, 29, 100, 7, 1000, 65537, 5};
	write_stream_in_pieces(e, odd, ARRAY_SIZE(odd), 2);
	static const size_t big[] = {4124 + 540, 200000, 33};
	write_stream_in_pieces(e, big, ARRAY_SIZE(big), 3);
}

/* One byte per send for a whole WRITE: header and payload both arrive a byte at a time. */
static void write_one_byte_at_a_time(void **state)
{
	struct env *e = *state;
	uint8_t s[NBDX_REQ_HDR + 4096];
	size_t n = put_req(s, NBDX_CMD_WRITE, 42, 1 << 20, 4096);
	fill(s + n, 4096, 0, 9);
	for (size_t i = 0; i < sizeof(s); i++) {
		send_all(e, s + i, 1);
		drain(e);
		assert_int_equal(be.submitted, i + 1 == sizeof(s) ? 1 : 0);
	}
	assert_int_equal(be.nq, 1);
	assert_memory_equal(be.q[0]->buf, s + n, 4096);
	be_complete(0, 0);
	expect_reply(e, 42, 0);
	assert_memory_equal(be.disk + (1 << 20), s + n, 4096);
}

/* ---- many requests in flight, completed out of order ---- */

#define NB 64

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

static size_t reply_bytes(const struct msg *m)
{
	return NBDX_REPLY_HDR + (m->type == NBDX_CMD_READ ? m->len : 0);
}

/* 60 READs of 64 KiB and 1 MiB (11 MiB of replies, many times the socket's buffer), two
 * WRITEs, a FLUSH and a TRIM, sent at once and completed in a scrambled order: half of
 * them, one loop iteration (the replies go out then, not before, as far as the socket
 * takes them), the other half while the socket is still full; the client then reads
 * slowly. Replies come in completion order with their own handle and their own data. */
static void out_of_order_completions_batched_replies(void **state)
{
	struct env *e = *state;
	static uint8_t s[NB * NBDX_REQ_HDR + 2 * 4096];
	struct msg m[NB];
	size_t n = 0;
	for (int i = 0; i < NB; i++) {
		uint16_t type = i == 10 || i == 40 ? NBDX_CMD_WRITE
				: i == 20	   ? NBDX_CMD_FLUSH
				: i == 50	   ? NBDX_CMD_TRIM
						   : NBDX_CMD_READ;
		uint32_t len = type == NBDX_CMD_WRITE	? 4096
			       : type == NBDX_CMD_FLUSH ? 0
			       : i % 8 == 3		? 1 << 20 /* split by several writes */
							: 65536;
		m[i] = (struct msg){.type = type,
				    .handle = 0xFEEDULL << 48 | (uint64_t)i * 0x10001,
				    /* 64 KiB apart below 8 MiB, the 1 MiB ones above it */
				    .offset = type == NBDX_CMD_FLUSH ? 0
					      : len == 1 << 20	     ? (8U + (unsigned)i / 8) << 20
								     : (uint64_t)i * 131072,
				    .len = len};
		n += put_req(s + n, type, m[i].handle, m[i].offset, len);
		if (type == NBDX_CMD_WRITE) {
			fill(s + n, len, m[i].offset, 11);
			n += len;
		}
	}
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, NB);
	int order[NB];
	for (int k = 0; k < NB; k++)
		order[k] = (k * 37 + 5) % NB; /* 37 is prime to 64: a permutation */
	size_t first = 0;
	for (int k = 0; k < NB / 2; k++) {
		const struct msg *q = &m[order[k]];
		be_complete(be_find(op_of(q->type), q->offset), 0);
		first += reply_bytes(q);
	}
	assert_int_equal(sock_ioctl(e->fd, SIOCINQ), 0); /* not one writev per completion */
	spin(e, 0);
	int inq = sock_ioctl(e->fd, SIOCINQ);
	assert_true(inq > (int)(2 * NBDX_REPLY_HDR)); /* many replies in the iteration */
	assert_true((size_t)inq < first);	      /* and the socket is full */
	for (int k = NB / 2; k < NB; k++) {
		const struct msg *q = &m[order[k]];
		be_complete(be_find(op_of(q->type), q->offset), 0);
	}
	static uint8_t d[1 << 20];
	for (int k = 0; k < NB; k++) {
		const struct msg *q = &m[order[k]];
		struct reply r;
		assert_int_equal(read_reply(e, &r, 3001), 0);
		assert_int_equal(r.handle, q->handle);
		assert_int_equal(r.err, 0);
		if (q->type != NBDX_CMD_READ)
			continue;
		assert_int_equal(recv_exact(e, d, q->len, 3001), 0);
		assert_memory_equal(d, be.disk + q->offset, q->len);
	}
	assert_false(closed_by_engine(e, 20000));
	for (int i = 0; i < NB; i++)
		if (m[i].type == NBDX_CMD_WRITE)
			for (uint32_t b = 0; b < m[i].len; b++)
				assert_int_equal(be.disk[m[i].offset + b],
						 pattern(m[i].offset + b, 11));
}

/* The engine's end of the client's connection: the accepted socket bound to the export's
 * path (the client's own is unbound, the listening one accepts). */
static int engine_fd(struct env *e)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_un sa;
		socklen_t sl = sizeof(sa);
		int acc = 1;
		socklen_t al = sizeof(acc);
		if (fd == e->fd || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 ||
		    sa.sun_family != AF_UNIX || sl <= offsetof(struct sockaddr_un, sun_path) ||
		    strcmp(sa.sun_path, e->path) != 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || acc)
			continue;
		return fd;
	}
	fail_msg("the engine's socket is not found");
	return -1;
}

/* One round of short_writes_cut_anywhere: N requests at once, completed in reverse, the
 * client reading whatever the socket holds after each loop iteration. Returns how many of
 * the engine's writes ended inside a reply header. */
static unsigned short_writes_round(struct env *e, int round)
{
	enum { N = 240 }; /* below the engine's 256 in flight */
	static uint8_t s[N * NBDX_REQ_HDR];
	struct msg m[N];
	size_t n = 0;
	for (int i = 0; i < N; i++) {
		uint16_t type = i % 2 ? NBDX_CMD_FLUSH : NBDX_CMD_READ;
		uint32_t len =
		    type == NBDX_CMD_READ ? (uint32_t)((i + round) * 7 % 4 + 1) * BLOCK : 0;
		m[i] = (struct msg){.type = type,
				    .handle = 0x5EED0000ULL + (uint64_t)round * 1000 + (uint64_t)i,
				    .offset = type == NBDX_CMD_READ ? (uint64_t)i * 8192 : 0,
				    .len = len};
		n += put_req(s + n, type, m[i].handle, m[i].offset, len);
	}
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, N);
	size_t total = 0;
	for (int i = N - 1; i >= 0; i--) {
		be_complete((size_t)i, 0);
		total += reply_bytes(&m[i]);
	}
	static uint8_t r[1 << 20];
	assert_true(total <= sizeof(r));
	size_t got = 0, ends[4096], nends = 0;
	uint64_t end = now_usec() + 5 * USEC_PER_SEC;
	while (got < total && now_usec() < end) {
		spin(e, 2000);
		ssize_t k = recv(e->fd, r + got, total - got, MSG_DONTWAIT);
		if (k > 0 && nends < ARRAY_SIZE(ends))
			ends[nends++] = got += (size_t)k;
	}
	assert_int_equal(got, total);
	size_t pos = 0;
	unsigned cut_in_header = 0;
	for (int i = N - 1; i >= 0; i--) {
		for (size_t k = 0; k < nends; k++)
			cut_in_header += ends[k] > pos && ends[k] < pos + NBDX_REPLY_HDR;
		assert_int_equal(get_be(r + pos, 4), REPLY_MAGIC);
		assert_int_equal(get_be(r + pos + 4, 4), 0);
		assert_int_equal(get_be(r + pos + 8, 8), m[i].handle);
		pos += NBDX_REPLY_HDR;
		if (m[i].type == NBDX_CMD_READ) {
			assert_memory_equal(r + pos, be.disk + m[i].offset, m[i].len);
			pos += m[i].len;
		}
	}
	return cut_in_header;
}

/* The engine's socket buffer made small (the kernel's least, about 4.5 KiB) and odd,
 * replies of 16 bytes to 2 KiB: the socket takes them a piece at a time (Linux: an skb of
 * v - 64 bytes at a time), cut anywhere, inside headers too (an even size cuts them on
 * 16-byte bounds only). A cut lands in one of a round's 240 headers about once or twice:
 * twelve rounds with other sizes. */
static void short_writes_cut_anywhere(void **state)
{
	struct env *e = *state;
	unsigned in_header = 0;
	for (int k = 0; k < 12; k++) {
		int v = 2311 + 41 * k;
		assert_int_equal(setsockopt(engine_fd(e), SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
		in_header += short_writes_round(e, k);
	}
	/* The test's own power: some writes did end inside a reply header. */
	print_message("%u short writes ended inside a reply header\n", in_header);
	assert_true(in_header > 0);
}

/* ---- errors ---- */

/* The backend's errors become NBD errors without data; the engine's own refusals (beyond
 * the end, unaligned, unknown command, the backend refusing at submission) never reach
 * the backend; the replies of one iteration's completions are out after one iteration. */
static void error_completions_give_error_replies(void **state)
{
	struct env *e = *state;
	uint8_t s[16 * NBDX_REQ_HDR + 512];
	size_t n = put_req(s, NBDX_CMD_READ, 1, 0, 4096);
	n += put_req(s + n, NBDX_CMD_READ, 2, 4096, 4096);
	n += put_req(s + n, NBDX_CMD_WRITE, 3, 8192, 512);
	memset(s + n, 0xEE, 512);
	n += 512;
	n += put_req(s + n, NBDX_CMD_FLUSH, 4, 0, 0);
	n += put_req(s + n, NBDX_CMD_TRIM, 5, 0, 4096);
	n += put_req(s + n, NBDX_CMD_READ, 6, DISK_SIZE, 4096); /* beyond the end */
	n += put_req(s + n, NBDX_CMD_READ, 7, 0, 100);		/* unaligned */
	n += put_req(s + n, 9, 8, 0, 0);			/* unknown */
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, 5);
	assert_int_equal(be.submitted, 5);
	expect_reply(e, 6, ENOSPC);
	expect_reply(e, 7, EINVAL);
	expect_reply(e, 8, EINVAL);
	static const int res[] = {-EIO, 0, -ENOSPC, -EIO, -EOPNOTSUPP};
	for (int i = 0; i < 5; i++)
		be_complete(0, res[i]);
	spin(e, 0);
	assert_int_equal(sock_ioctl(e->fd, SIOCINQ), 5 * NBDX_REPLY_HDR + 4096);
	expect_reply(e, 1, EIO);
	expect_reply(e, 2, 0);
	uint8_t d[4096];
	assert_int_equal(recv_exact(e, d, sizeof(d), SIZE_MAX), 0);
	assert_memory_equal(d, be.disk + 4096, sizeof(d));
	expect_reply(e, 3, ENOSPC);
	expect_reply(e, 4, EIO);
	expect_reply(e, 5, 95); /* NBD_ENOTSUP */
	for (int b = 0; b < 512; b++)
		assert_int_equal(be.disk[8192 + b], pattern(8192 + b, 7)); /* not written */
	/* Refused at submission (no path: mpath says EAGAIN), then served again. */
	be.submit_error = -EAGAIN;
	n = put_req(s, NBDX_CMD_READ, 9, 0, 4096);
	send_all(e, s, n);
	drain(e);
	expect_reply(e, 9, EIO);
	be.submit_error = 0;
	n = put_req(s, NBDX_CMD_READ, 10, 0, 4096);
	send_all(e, s, n);
	drain(e);
	be_complete(0, 0);
	expect_reply(e, 10, 0);
	assert_int_equal(recv_exact(e, d, sizeof(d), SIZE_MAX), 0);
	assert_memory_equal(d, be.disk, sizeof(d));
}

/* ---- the end of a connection ---- */

/* NBD_CMD_DISC with requests in flight: nothing after it is read, the replies still go
 * out, then the engine closes and every buffer is gone. */
static void disconnect_after_replies_releases_all(void **state)
{
	struct env *e = *state;
	size_t before = heap_in_use();
	static uint8_t s[4 * NBDX_REQ_HDR + 65536];
	size_t n = put_req(s, NBDX_CMD_READ, 1, 0, 1 << 20);
	n += put_req(s + n, NBDX_CMD_WRITE, 2, 1 << 20, 65536);
	fill(s + n, 65536, 0, 3);
	n += 65536;
	n += put_req(s + n, NBDX_CMD_DISC, 3, 0, 0);
	n += put_req(s + n, NBDX_CMD_READ, 4, 0, 4096); /* after DISC: ignored */
	send_all(e, s, n);
	for (int i = 0; i < 5; i++)
		spin(e, 1000);
	assert_int_equal(be.nq, 2);
	assert_false(closed_by_engine(e, 20000));
	be_complete(1, 0);
	be_complete(0, 0);
	expect_reply(e, 2, 0);
	expect_reply(e, 1, 0);
	static uint8_t d[1 << 20];
	assert_int_equal(recv_exact(e, d, sizeof(d), SIZE_MAX), 0);
	assert_memory_equal(d, be.disk, sizeof(d));
	assert_true(closed_by_engine(e, 5 * USEC_PER_SEC));
	assert_int_equal(be.submitted, 2);
	spin(e, 0);
	assert_true(heap_in_use() < before);
}

/* The peer goes away in the middle of a WRITE's payload, with a READ at the backend: the
 * pending WRITE's buffer goes at once, the READ's and the connection's when it returns. */
static void peer_close_mid_payload_releases_all(void **state)
{
	struct env *e = *state;
	size_t before = heap_in_use();
	static uint8_t s[2 * NBDX_REQ_HDR + 100 * 1024];
	size_t n = put_req(s, NBDX_CMD_READ, 1, 0, 1 << 20);
	n += put_req(s + n, NBDX_CMD_WRITE, 2, 2 << 20, 1 << 20);
	fill(s + n, 100 * 1024, 0, 4);
	n += 100 * 1024;
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, 1);
	close(e->fd);
	e->fd = -1;
	for (int i = 0; i < 5; i++)
		spin(e, 1000);
	be_complete(0, 0);
	spin(e, 0);
	assert_int_equal(be.submitted, 1);
	assert_true(heap_in_use() < before);
	/* Another one goes away in the middle of a header, nothing in flight. */
	env_connect(e);
	before = heap_in_use();
	n = put_req(s, NBDX_CMD_READ, 3, 0, 4096);
	send_all(e, s, 10);
	drain(e);
	close(e->fd);
	e->fd = -1;
	for (int i = 0; i < 5; i++)
		spin(e, 1000);
	assert_true(heap_in_use() < before);
}

/* The peer goes away with replies queued that the socket did not take: the engine's next
 * write fails (EPIPE, and no SIGPIPE: the agent is not always PID 1, which the kernel
 * spares) and the queue is freed. */
static void peer_close_with_replies_queued(void **state)
{
	struct env *e = *state;
	size_t before = heap_in_use();
	uint8_t s[4 * NBDX_REQ_HDR];
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		n += put_req(s + n, NBDX_CMD_READ, (uint64_t)i, (uint64_t)i << 20, 1 << 20);
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, 4);
	for (int i = 0; i < 3; i++)
		be_complete(0, 0);
	spin(e, 0);
	assert_true(sock_ioctl(e->fd, SIOCINQ) > 0);
	close(e->fd);
	e->fd = -1;
	/* A completion before the loop has seen the hang-up: the prepare hook writes first. */
	be_complete(0, 0);
	for (int i = 0; i < 5; i++)
		spin(e, 1000);
	assert_true(heap_in_use() < before);
}

/* nbdx_free with a WRITE's payload half in and a READ at the backend (the agent stopping):
 * the READ returns afterwards and everything is released (the leak check, teardown). */
static void export_freed_with_requests_in_flight(void **state)
{
	struct env *e = *state;
	static uint8_t s[2 * NBDX_REQ_HDR + 4096];
	size_t n = put_req(s, NBDX_CMD_READ, 1, 0, 65536);
	n += put_req(s + n, NBDX_CMD_WRITE, 2, 0, 65536);
	memset(s + n, 1, 4096);
	n += 4096;
	send_all(e, s, n);
	drain(e);
	assert_int_equal(be.nq, 1);
	e->x = nbdx_free(e->x);
	assert_true(closed_by_engine(e, 5 * USEC_PER_SEC));
}

/* ---- requests larger than the engine accepts ---- */

/* A READ beyond NBDX_MAX_PAYLOAD is answered EINVAL (nothing allocated for it, nothing at
 * the backend); a WRITE announcing more than NBDX_MAX_PAYLOAD closes the connection on
 * its header, before a byte of its payload is sent. */
static void oversized_requests_refused_unread(void **state)
{
	struct env *e = *state;
	uint8_t s[NBDX_REQ_HDR];
	put_req(s, NBDX_CMD_READ, 1, 0, 64U << 20);
	send_all(e, s, sizeof(s));
	expect_reply(e, 1, EINVAL);
	put_req(s, NBDX_CMD_WRITE, 2, 0, NBDX_MAX_PAYLOAD + BLOCK);
	send_all(e, s, sizeof(s));
	assert_true(closed_by_engine(e, 5 * USEC_PER_SEC));
	assert_int_equal(be.submitted, 0);
}

/* A WRITE the export refuses (beyond its end) of the largest length the protocol takes:
 * its payload is read and dropped as it comes, not gathered in memory, and the
 * connection goes on in step (the next request is served). */
static void refused_write_payload_not_buffered(void **state)
{
	struct env *e = *state;
	size_t before = heap_in_use(), peak = before;
	static uint8_t b[(1 << 20) + NBDX_REQ_HDR];
	memset(b, 0x5A, sizeof(b));
	/* Unaligned, its header with 10 bytes of payload, then the rest. */
	put_req(b, NBDX_CMD_WRITE, 1, 0, 1000);
	send_all(e, b, NBDX_REQ_HDR + 10);
	drain(e);
	memset(b, 0x5A, NBDX_REQ_HDR);
	send_all(e, b, 990);
	expect_reply(e, 1, EINVAL);
	/* Beyond the end: its header with some payload, 1 MiB pieces, the last one with the
	 * header of the next request. */
	put_req(b, NBDX_CMD_WRITE, 2, 0, NBDX_MAX_PAYLOAD);
	send_all(e, b, NBDX_REQ_HDR + 1000);
	memset(b, 0x5A, NBDX_REQ_HDR);
	size_t left = NBDX_MAX_PAYLOAD - 1000;
	for (; left > (1 << 20); left -= 1 << 20) {
		send_all(e, b, 1 << 20);
		drain(e);
		size_t now = heap_in_use();
		peak = now > peak ? now : peak;
	}
	put_req(b + left, NBDX_CMD_READ, 3, 0, 4096);
	send_all(e, b, left + NBDX_REQ_HDR);
	drain(e);
	expect_reply(e, 2, ENOSPC);
	assert_int_equal(be.submitted, 1);
	assert_int_equal(be.q[0]->op, MPATH_OP_READ);
	be_complete(0, 0);
	expect_reply(e, 3, 0);
	uint8_t d[4096];
	assert_int_equal(recv_exact(e, d, sizeof(d), SIZE_MAX), 0);
	assert_memory_equal(d, be.disk, sizeof(d));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(be.disk[i], pattern(i, 7)); /* nothing written */
	print_message("heap: %zu KiB at most above the start, %zd KiB after\n",
		      (peak - before) >> 10, ((ssize_t)heap_in_use() - (ssize_t)before) / 1024);
	assert_true(peak - before < (2U << 20));
	assert_true(heap_in_use() < before + (1U << 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(write_in_pieces_reaches_backend_exactly, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(write_one_byte_at_a_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(out_of_order_completions_batched_replies, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(short_writes_cut_anywhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(error_completions_give_error_replies, setup, teardown),
	    cmocka_unit_test_setup_teardown(disconnect_after_replies_releases_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(peer_close_mid_payload_releases_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(peer_close_with_replies_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(export_freed_with_requests_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(oversized_requests_refused_unread, setup, teardown),
	    cmocka_unit_test_setup_teardown(refused_write_payload_not_buffered, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
