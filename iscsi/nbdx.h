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
