/* The NBD export (SPEC §4): the agent is the NBD server of its multipath storage. One
 * request engine, two front ends: the kernel (a socketpair handed over through the NBD
 * netlink interface, or the ioctl interface where netlink is missing: /dev/nbdN plus the
 * link /dev/compart/<storage>), and a unix socket speaking the fixed newstyle handshake
 * for any NBD client (qemu-io, qemu-img, nbd-client). Many requests in flight per
 * connection; replies go out as they complete, in any order. */
#pragma once

#include "loop.h"
#include "mpath.h"
#include "nbdx_proto.h"
#include "util.h"

struct nbdx;

/* The storage's identity must be known (mpath_identity_known()). */
int nbdx_new(struct loop *l, struct mpath *m, struct nbdx **ret);
struct nbdx *nbdx_free(struct nbdx *x);

/* Listens on a unix socket (mode 0600; a stale socket file is replaced). */
int nbdx_listen(struct nbdx *x, const char *path);

/* Hands a socket to the kernel: `dev` is "auto" or "/dev/nbdN". `timeout_us` is the
 * kernel's per-request timeout (longer than no_path_timeout, so the agent decides). The
 * device path is written to ret_dev. -ENOENT/-ENODEV when the kernel has no NBD. */
int nbdx_kernel_attach(struct nbdx *x, const char *dev, uint64_t timeout_us, char *ret_dev,
		       size_t n);

/* Creates /dev/compart/<name> -> dev (replacing an old link). */
int nbdx_link(const char *dir, const char *name, const char *dev);

/* The kernel side (nbdx_kernel.c): NBD_CMD_CONNECT over generic netlink, or the ioctl
 * interface in a child process that sits in NBD_DO_IT. `sock` is the kernel's end.
 * *ret_child is -1 for netlink. */
int nbdx_kernel_connect(const struct nbdx_export_info *info, const char *dev, uint64_t timeout_us,
			int sock, int *ret_index, int *ret_child);
void nbdx_kernel_disconnect(int index, int child);
/* NBD_CMD_STATUS: whether /dev/nbd<index> has a configuration (connected). */
int nbdx_kernel_status(int index, bool *ret_connected);
/* The attributes of an NBD_CMD_STATUS answer (after the genetlink header): the
 * NBD_DEVICE_CONNECTED of device `index`. -ENOENT when it is not listed, -EBADMSG. */
int nbdx_status_parse(const uint8_t *attrs, size_t len, int index, bool *ret_connected);
/* NBD_CMD_RECONFIGURE: a fresh socket in place of a dead one, the device stays. */
int nbdx_kernel_reconfigure(int index, uint64_t timeout_us, int sock);

/* The kernel export, for the health check (agent/health_export.c): the device index it
 * was exported as (-1: never), whether our end of its socket is open, the designator of
 * the LU it was exported from. */
int nbdx_kernel_index(const struct nbdx *x);
/* The process the kernel sees serving it: this one (netlink), or the child sitting in
 * NBD_DO_IT (ioctl interface, which has no NBD_CMD_STATUS). */
long nbdx_kernel_server_pid(const struct nbdx *x);
bool nbdx_kernel_netlink(const struct nbdx *x);
bool nbdx_kernel_linked(const struct nbdx *x);
const char *nbdx_designator(const struct nbdx *x);
/* Isolation: closes our end of the kernel's socket; the kernel marks the link dead and
 * holds new requests (dead_conn_timeout) until the re-export. */
void nbdx_kernel_isolate(struct nbdx *x);
/* Re-export on the same /dev/nbdN with a fresh socketpair: NBD_CMD_RECONFIGURE when the
 * kernel still holds the device's configuration, else disconnect and connect again.
 * Returns 0, -EBUSY (the device is still held open), or another -errno; says what it did
 * in `msg`. */
int nbdx_kernel_reexport(struct nbdx *x, struct strbuf *msg);
