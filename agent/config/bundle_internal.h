/* Shared by the bundle's remapping (bundle_map.c) and its import (bundle_import.c). */
#pragma once

#include "bundle.h"

struct remap {
	const struct bundle_map *m;
	struct strbuf *err;
	int n_errors;
};

void remap_err(struct remap *r, const char *fmt, ...) _printf_(2, 3);
void remap_prefix(struct remap *r, const char *where, struct cfg_prefix *p);
void remap_addr(struct remap *r, const char *where, struct cfg_addr *a);
void remap_host(struct remap *r, const char *where, char *host, size_t n);
/* Renames the bundle's pair, compartments, nodes and storage, maps MACs, addresses,
 * portals and IQNs; every miss is one error line. The quorum's IQN is kept unless
 * --map-iqn names it (a cluster has one quorum device). */
void bundle_remap(struct remap *r, struct cfg *b, const char *pair);
