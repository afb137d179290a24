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
	int node_line[CFG_MAX_NODES];
	int storage_line[CFG_MAX_STORAGE];
	int comp_line[CFG_MAX_COMPARTMENTS];
	bool comp_has_zone[CFG_MAX_COMPARTMENTS];
	char comp_pair_name[CFG_MAX_COMPARTMENTS][CFG_NAME_MAX];
	char node_comp_name[CFG_MAX_NODES][CFG_NAME_MAX];
	char portal_comp_name[CFG_MAX_STORAGE + 1][CFG_MAX_PORTALS][CFG_NAME_MAX];
	int portal_line[CFG_MAX_STORAGE + 1][CFG_MAX_PORTALS];
};

void cfg_set_defaults(struct cfg *c);
void cfg_parse_text(struct parse_ctx *p, const char *text, size_t len);
void cfg_apply_override(struct parse_ctx *p, const struct cfg_override *o);
