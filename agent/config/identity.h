/* Which node of the cluster this host is: named explicitly (--node, compartd.node=),
 * or found by matching a local MAC address (the PXE boot interface first). */
#pragma once

#include "config.h"

#define IDENT_MAX_MACS 32

/* Reads the MAC addresses of the local interfaces from `sysfs_net` (normally
 * /sys/class/net), skipping loopback and all-zero addresses. Returns the count or -errno. */
int identity_local_macs(const char *sysfs_net, uint8_t (*out)[6], size_t max);

/* Resolves the node index. `name` wins when given; else `bootif` (may be NULL) is tried
 * alone, then all `macs`. On failure writes one clear sentence to `err` and returns:
 *   -ENOENT    `name` is not a node of the configuration, or no node has a `mac =` line:
 *              nothing that appears later can match;
 *   -ENOTUNIQ  the MACs match several nodes (a NIC appearing later cannot undo that);
 *   -ENXIO     none of the MACs is configured: a NIC with a configured MAC may still
 *              appear (a late driver probe, a hot-plug), so the caller may wait. */
int identity_resolve(const struct cfg *c, const char *name, const uint8_t *bootif,
		     const uint8_t (*macs)[6], size_t n_macs, int *ret_node, struct strbuf *err);

/* Appends the MACs as "aa:bb:cc:dd:ee:ff 02:…", or "none found". */
void identity_format_macs(const uint8_t (*macs)[6], size_t n_macs, struct strbuf *out);
