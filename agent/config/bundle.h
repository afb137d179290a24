/* Bundles (SPEC §2a, seed 004): a pair's configuration captured at one site and
 * re-created at another with names and addresses remapped. Pure: text in, text out;
 * the CLI (agent/config_cli.c) reads and writes the files.
 *
 * A bundle is text, self-describing and hash-protected:
 *
 *   compartd-bundle 1
 *   pair p1
 *   config <bytes>
 *   <a cluster.conf holding only the pair, normalized>
 *   rules <bytes>
 *   <the rules file's text>
 *   blake2b <hex BLAKE2b-256 of every byte before this line>
 */
#pragma once

#include "config.h"

#define BUNDLE_MAGIC "compartd-bundle 1"
#define BUNDLE_MAX_MAPS 32

struct bundle {
	char pair[CFG_NAME_MAX];
	char *config; /* NUL-terminated */
	size_t config_len;
	char *rules; /* NUL-terminated */
	size_t rules_len;
};

/* Writes the bundle of pair `pair` of `c`. -ENOENT (message in err) when no such pair. */
int bundle_export(const struct cfg *c, const char *pair, const char *rules, size_t rules_len,
		  struct strbuf *out, struct strbuf *err);
/* -EBADMSG (message in err) when truncated, malformed or the hash does not match. */
int bundle_parse(const char *text, size_t len, struct bundle *ret, struct strbuf *err);
void bundle_clear(struct bundle *b);

struct bundle_name_map {
	char from[CFG_IQN_MAX], to[CFG_IQN_MAX];
};
struct bundle_net_map {
	struct cfg_prefix from, to;
};
struct bundle_mac_map {
	uint8_t from[6], to[6];
};

struct bundle_map {
	struct bundle_name_map nodes[BUNDLE_MAX_MAPS], comps[BUNDLE_MAX_MAPS],
	    storage[BUNDLE_MAX_MAPS], iqns[BUNDLE_MAX_MAPS];
	int n_nodes, n_comps, n_storage, n_iqns;
	struct bundle_net_map nets[BUNDLE_MAX_MAPS];
	int n_nets;
	struct bundle_mac_map macs[BUNDLE_MAX_MAPS * CFG_MAX_MACS];
	int n_macs;
};

/* Parses one `--map-X OLD=NEW` argument into m. kind: "node", "compartment", "storage",
 * "iqn", "net", "mac". -EINVAL (message in err) when malformed or the table is full. */
int bundle_map_add(struct bundle_map *m, const char *kind, const char *arg, struct strbuf *err);

/* Re-creates bundle b as pair `pair` in the cluster file `target` (NULL: a new file made
 * of the bundle's cluster). On success `out` holds the new file's text, which cfg_parse
 * accepts; every refusal appends one line `what: why` to err and returns -EINVAL. */
int bundle_import(const struct bundle *b, const char *pair, const struct bundle_map *m,
		  const char *target_path, const char *target, size_t target_len,
		  const char *target_rules, size_t target_rules_len, struct strbuf *out,
		  struct strbuf *err);
