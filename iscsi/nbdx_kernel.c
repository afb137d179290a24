/* Handing the NBD socket to the kernel: generic netlink family "nbd" (NBD_CMD_CONNECT
 * with the socket, size, block size, flags, timeout; the kernel picks /dev/nbdN or uses
 * the one asked for), and the older ioctl interface where the family is missing. */
#include "nbdx.h"

#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <linux/netlink.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define NL_BUF 4096

struct nlbuf {
	uint8_t b[NL_BUF];
	size_t len;
	size_t nest[4];
	int depth;
};

static struct nlmsghdr *nl_hdr(struct nlbuf *m)
{
	return (struct nlmsghdr *)m->b;
}

static void nl_init(struct nlbuf *m, uint16_t type, uint8_t cmd, uint8_t version)
{
	memset(m, 0, sizeof(*m));
	struct nlmsghdr *h = nl_hdr(m);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = 1;
	struct genlmsghdr *g = (struct genlmsghdr *)NLMSG_DATA(h);
	g->cmd = cmd;
	g->version = version;
	m->len = NLMSG_LENGTH(GENL_HDRLEN);
}

static int nl_put(struct nlbuf *m, uint16_t type, const void *data, size_t len)
{
	size_t need = NLA_ALIGN(NLA_HDRLEN + len);
	if (m->len + need > NL_BUF)
		return -ENOBUFS;
	struct nlattr *a = (struct nlattr *)(m->b + m->len);
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	m->len += need;
	return 0;
}

static int nl_put_u32(struct nlbuf *m, uint16_t type, uint32_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

static int nl_put_u64(struct nlbuf *m, uint16_t type, uint64_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

static int nl_nest_begin(struct nlbuf *m, uint16_t type)
{
	if (m->depth == 4)
		return -ENOBUFS;
	m->nest[m->depth++] = m->len;
	return nl_put(m, type | NLA_F_NESTED, NULL, 0);
}

static void nl_nest_end(struct nlbuf *m)
{
	size_t at = m->nest[--m->depth];
	((struct nlattr *)(m->b + at))->nla_len = (uint16_t)(m->len - at);
}

/* Sends the message; the kernel's answer (if any) replaces it in `m`, `reply` is the receive
 * buffer. Returns 0 (the ACK) or the kernel's -errno. */
static int nl_talk(int fd, struct nlbuf *m, struct nlbuf *reply)
{
	nl_hdr(m)->nlmsg_len = (uint32_t)m->len;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, m->b, m->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (int round = 0; round < 8; round++) {
		ssize_t n = recv(fd, reply->b, sizeof(reply->b), 0);
		if (n < 0)
			return -errno;
		size_t off = 0;
		while (off + sizeof(struct nlmsghdr) <= (size_t)n) {
			struct nlmsghdr *h = (struct nlmsghdr *)(reply->b + off);
			if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > (size_t)n - off)
				break;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;
			}
			if (h->nlmsg_type != NLMSG_DONE) {
				/* Keep the data message (the answer); the ACK follows. */
				memmove(m->b, h, h->nlmsg_len);
				m->len = h->nlmsg_len;
			}
			off += NLMSG_ALIGN(h->nlmsg_len);
		}
	}
	return -ETIMEDOUT;
}

/* Finds a u16/u32 attribute at the top level of a genetlink message. */
static int nl_get_u32(const struct nlbuf *m, uint16_t type, uint32_t *ret)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)m->b;
	if (m->len < NLMSG_LENGTH(GENL_HDRLEN) || h->nlmsg_len > m->len)
		return -ENOENT;
	size_t off = NLMSG_LENGTH(GENL_HDRLEN);
	while (off + NLA_HDRLEN <= h->nlmsg_len) {
		const struct nlattr *a = (const struct nlattr *)(m->b + off);
		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
			break;
		size_t dl = a->nla_len - NLA_HDRLEN;
		if ((a->nla_type & NLA_TYPE_MASK) == type && (dl == 2 || dl == 4)) {
			const uint8_t *d = (const uint8_t *)a + NLA_HDRLEN;
			if (dl == 2) {
				uint16_t v;
				memcpy(&v, d, 2);
				*ret = v;
			} else {
				memcpy(ret, d, 4);
			}
			return 0;
		}
		off += NLA_ALIGN(a->nla_len);
	}
	return -ENOENT;
}

static int genl_family_id(int fd, const char *name, uint16_t *ret)
{
	struct nlbuf m, reply;
	nl_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
	nl_put(&m, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	int r = nl_talk(fd, &m, &reply);
	if (r < 0)
		return r;
	uint32_t id;
	if (nl_get_u32(&m, CTRL_ATTR_FAMILY_ID, &id) < 0)
		return -ENOENT;
	*ret = (uint16_t)id;
	return 0;
}

static int parse_dev_index(const char *dev, int *ret)
{
	if (!dev || !strcmp(dev, "auto")) {
		*ret = -1;
		return 0;
	}
	long v;
	if (strncmp(dev, "/dev/nbd", 8) != 0 || parse_int(dev + 8, 0, 65535, &v) < 0)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int nl_open(int *ret_fd, uint16_t *ret_family)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int r = genl_family_id(fd, NBD_GENL_FAMILY_NAME, ret_family);
	if (r < 0) {
		close(fd);
		return r == -ENOENT || r == -EINVAL ? -ENOENT : r;
	}
	*ret_fd = fd;
	return 0;
}

/* One nbd genetlink request: nbd_begin opens the socket and starts message m with cmd;
 * the caller adds attributes; nbd_end sends it, leaves the answer in m and closes. */
static int nbd_begin(struct nlbuf *m, uint8_t cmd, int *ret_fd)
{
	uint16_t family;
	int r = nl_open(ret_fd, &family);
	if (r < 0)
		return r;
	nl_init(m, family, cmd, NBD_GENL_VERSION);
	return 0;
}

static int nbd_end(int fd, struct nlbuf *m)
{
	struct nlbuf reply;
	int r = nl_talk(fd, m, &reply);
	close(fd);
	return r;
}

/* The one socket the device is served on. */
static void nl_put_sock(struct nlbuf *m, int sock)
{
	nl_nest_begin(m, NBD_ATTR_SOCKETS);
	nl_nest_begin(m, NBD_SOCK_ITEM);
	nl_put_u32(m, NBD_SOCK_FD, (uint32_t)sock);
	nl_nest_end(m);
	nl_nest_end(m);
}

static int netlink_connect(const struct nbdx_export_info *info, int index, uint64_t timeout_us,
			   int sock, int *ret_index)
{
	int fd;
	struct nlbuf m;
	int r = nbd_begin(&m, NBD_CMD_CONNECT, &fd);
	if (r < 0)
		return r;
	if (index >= 0)
		nl_put_u32(&m, NBD_ATTR_INDEX, (uint32_t)index);
	nl_put_u64(&m, NBD_ATTR_SIZE_BYTES, info->size);
	nl_put_u64(&m, NBD_ATTR_BLOCK_SIZE_BYTES, info->min_block);
	nl_put_u64(&m, NBD_ATTR_SERVER_FLAGS, info->flags);
	uint64_t secs = (timeout_us + USEC_PER_SEC - 1) / USEC_PER_SEC;
	nl_put_u64(&m, NBD_ATTR_TIMEOUT, secs);
	/* A link that dies (a request timed out while the agent was stopped, the socket
	 * lost) holds new requests this long for the re-export instead of failing them. */
	nl_put_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, secs);
	nl_put_sock(&m, sock);
	r = nbd_end(fd, &m);
	uint32_t got = (uint32_t)index;
	if (r == 0 && index < 0 && nl_get_u32(&m, NBD_ATTR_INDEX, &got) < 0)
		r = -EPROTO;
	if (r < 0)
		return r;
	*ret_index = (int)got;
	return 0;
}

/* The ioctl interface: a child configures the device and sits in NBD_DO_IT. */
static int ioctl_connect(const struct nbdx_export_info *info, int index, uint64_t timeout_us,
			 int sock, int *ret_child)
{
	char dev[32];
	snprintf(dev, sizeof(dev), "/dev/nbd%d", index < 0 ? 0 : index);
	_cleanup_close_ int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, NBD_SET_BLKSIZE, (unsigned long)info->min_block) < 0 ||
	    ioctl(fd, NBD_SET_SIZE_BLOCKS, (unsigned long)(info->size / info->min_block)) < 0 ||
	    ioctl(fd, NBD_SET_FLAGS, (unsigned long)info->flags) < 0 ||
	    ioctl(fd, NBD_SET_TIMEOUT, (unsigned long)(timeout_us / USEC_PER_SEC)) < 0 ||
	    ioctl(fd, NBD_SET_SOCK, (unsigned long)sock) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		ioctl(fd, NBD_DO_IT);
		ioctl(fd, NBD_CLEAR_QUE);
		ioctl(fd, NBD_CLEAR_SOCK);
		_exit(0);
	}
	*ret_child = (int)pid;
	return 0;
}

int nbdx_kernel_connect(const struct nbdx_export_info *info, const char *dev, uint64_t timeout_us,
			int sock, int *ret_index, int *ret_child)
{
	int index;
	if (parse_dev_index(dev, &index) < 0)
		return log_error_errno(-EINVAL, "nbd device '%s' is neither auto nor /dev/nbdN",
				       dev);
	int r = netlink_connect(info, index, timeout_us, sock, ret_index);
	if (r == 0) {
		*ret_child = -1;
		return 0;
	}
	if (r != -ENOENT)
		return log_error_errno(r, "NBD_CMD_CONNECT failed");
	log_info("nbd: no generic netlink family, using the ioctl interface");
	r = ioctl_connect(info, index, timeout_us, sock, ret_child);
	if (r < 0)
		return log_error_errno(r == -ENOENT ? -ENODEV : r,
				       "nbd: the kernel has no NBD device to attach to");
	*ret_index = index < 0 ? 0 : index;
	return 0;
}

void nbdx_kernel_disconnect(int index, int child)
{
	if (child > 0) {
		char dev[32];
		snprintf(dev, sizeof(dev), "/dev/nbd%d", index);
		_cleanup_close_ int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			ioctl(fd, NBD_DISCONNECT);
		waitpid(child, NULL, 0);
		return;
	}
	int fd;
	struct nlbuf m;
	if (index < 0 || nbd_begin(&m, NBD_CMD_DISCONNECT, &fd) < 0)
		return;
	nl_put_u32(&m, NBD_ATTR_INDEX, (uint32_t)index);
	int r = nbd_end(fd, &m);
	if (r < 0)
		log_warn("nbd: disconnecting /dev/nbd%d failed (%s), ignoring", index,
			 strerror(-r));
}

/* ---- status, reconfigure, disconnect (the health check's re-export) ---- */

/* One attribute of type `type` among the attributes in buf[0..len). */
static int nla_find(const uint8_t *buf, size_t len, uint16_t type, const uint8_t **ret_data,
		    size_t *ret_len)
{
	size_t off = 0;
	while (off + NLA_HDRLEN <= len) {
		struct nlattr a;
		memcpy(&a, buf + off, sizeof(a));
		if (a.nla_len < NLA_HDRLEN || a.nla_len > len - off)
			return -EBADMSG;
		if ((a.nla_type & NLA_TYPE_MASK) == type) {
			*ret_data = buf + off + NLA_HDRLEN;
			*ret_len = a.nla_len - NLA_HDRLEN;
			return 0;
		}
		off += NLA_ALIGN(a.nla_len);
	}
	return -ENOENT;
}

int nbdx_status_parse(const uint8_t *attrs, size_t len, int index, bool *ret_connected)
{
	const uint8_t *list, *d;
	size_t list_len, dl;
	int r = nla_find(attrs, len, NBD_ATTR_DEVICE_LIST, &list, &list_len);
	if (r < 0)
		return r;
	size_t off = 0;
	while (off + NLA_HDRLEN <= list_len) {
		struct nlattr a;
		memcpy(&a, list + off, sizeof(a));
		if (a.nla_len < NLA_HDRLEN || a.nla_len > list_len - off)
			return -EBADMSG;
		const uint8_t *item = list + off + NLA_HDRLEN;
		size_t item_len = a.nla_len - NLA_HDRLEN;
		uint32_t idx;
		if ((a.nla_type & NLA_TYPE_MASK) == NBD_DEVICE_ITEM &&
		    nla_find(item, item_len, NBD_DEVICE_INDEX, &d, &dl) == 0 && dl == 4 &&
		    (memcpy(&idx, d, 4), idx == (uint32_t)index)) {
			if (nla_find(item, item_len, NBD_DEVICE_CONNECTED, &d, &dl) < 0 || dl < 1)
				return -EBADMSG;
			*ret_connected = d[0] != 0;
			return 0;
		}
		off += NLA_ALIGN(a.nla_len);
	}
	return -ENOENT;
}

int nbdx_kernel_status(int index, bool *ret_connected)
{
	int fd;
	struct nlbuf m;
	int r = nbd_begin(&m, NBD_CMD_STATUS, &fd);
	if (r < 0)
		return r;
	nl_put_u32(&m, NBD_ATTR_INDEX, (uint32_t)index);
	r = nbd_end(fd, &m);
	if (r < 0)
		return r;
	const struct nlmsghdr *h = nl_hdr(&m);
	size_t start = NLMSG_LENGTH(GENL_HDRLEN);
	if (h->nlmsg_len < start || h->nlmsg_len > m.len)
		return -EBADMSG;
	return nbdx_status_parse(m.b + start, h->nlmsg_len - start, index, ret_connected);
}

int nbdx_kernel_reconfigure(int index, uint64_t timeout_us, int sock)
{
	int fd;
	struct nlbuf m;
	int r = nbd_begin(&m, NBD_CMD_RECONFIGURE, &fd);
	if (r < 0)
		return r;
	nl_put_u32(&m, NBD_ATTR_INDEX, (uint32_t)index);
	nl_put_u64(&m, NBD_ATTR_TIMEOUT, (timeout_us + USEC_PER_SEC - 1) / USEC_PER_SEC);
	nl_put_sock(&m, sock);
	return nbd_end(fd, &m);
}
