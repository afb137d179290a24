/* Shared between the cluster.conf parser (config.c) and its checks (config_check.c). */
#pragma once

#include "config.h"

enum section_kind {
	SEC_NONE,
	SEC_CLUSTER,
	SEC_PAIR,
	SEC_COMPARTMENT,
	SEC_NODE,
	SEC_STORAGE,
	SEC_QUORUM,
	SEC_LAYOUT,
	SEC_TIMEOUTS,
	SEC_PROFILE,
	SEC_ROLE,
	SEC_CONSOLE,
	SEC_FENCING,
	_SEC_MAX
};

struct node_meta {
	int line;
	char comp_name[CFG_NAME_MAX];
};

struct comp_meta {
	int line;
	bool has_zone;
	char pair_name[CFG_NAME_MAX];
};

/* The names of one table (pairs, compartments, nodes) by hash while the file is parsed:
 * a duplicate section or a node's compartment is found in O(1), not by a scan of 1 000
 * entries. slot[h]: index + 1 in the cfg's table, 0 empty; cap a power of two. */
struct name_index {
	int *slot;
	unsigned cap;
	int n;
};

struct parse_ctx {
	struct cfg *cfg;
	const char *path;
	int line;
	struct strbuf *errors;
	int n_errors;
	enum section_kind sec;
	void *obj; /* the object the current section fills */
	char sec_name[2 * CFG_NAME_MAX];
	uint64_t seen; /* bit per key of the current section, for duplicates */
	bool override; /* values from outside the file replace, never duplicate */
	bool quorum_none;
	bool lease_set;
	bool in_bad_section;
	int cluster_line;
	bool oom; /* a table could not grow: the parse fails with -ENOMEM */
	int storage_line[CFG_MAX_STORAGE];
	/* Per node and compartment, grown with the cfg's tables (cap_X entries each). */
	struct node_meta *node_meta;
	struct comp_meta *comp_meta;
	int cap_pairs, cap_compartments, cap_nodes;
	struct name_index names[3]; /* pairs, compartments, nodes (cfg_parse_find) */
	char portal_comp_name[CFG_MAX_STORAGE + 1][CFG_MAX_PORTALS][CFG_NAME_MAX];
	int portal_line[CFG_MAX_STORAGE + 1][CFG_MAX_PORTALS];
};

void cfg_set_defaults(struct cfg *c);
/* The index of the pair, compartment or node (k) with this name, or -ENOENT. */
int cfg_parse_find(const struct parse_ctx *p, enum section_kind k, const char *name);
void cfg_parse_names_free(struct parse_ctx *p);
void cfg_parse_text(struct parse_ctx *p, const char *text, size_t len);
void cfg_apply_override(struct parse_ctx *p, const struct cfg_override *o);
