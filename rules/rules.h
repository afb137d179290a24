/* The boot-decision rules language (SPEC §6), pure: parse text, evaluate on facts.
 *
 *   # a comment
 *   rule NAME when EXPR => PROFILE
 *
 * One rule per line, first match wins. EXPR is built from facts, integers, `true`,
 * `false`, `== != < <= > >=`, `and`, `or`, `not` and parentheses (`not` binds tightest,
 * then comparisons, then `and`, then `or`). Comparisons order integers; `==` and `!=`
 * also compare booleans. The whole expression must be boolean.
 *
 * Facts: peers (P, the other nodes of the cluster), contacted (c), contacted_pct
 * (100*c/P kept as an exact fraction, so `contacted_pct > 50` means `100*c > 50*P`; 0 when
 * P is 0), mgmt_running, mgmt_capable, highest_priority, uncontacted_alive (booleans).
 * Profiles: wait-operator, infra-only, infra-and-mgmt. */
#pragma once

#include "util.h"

#define RULES_MAX 32
#define RULES_NAME_MAX 32
#define RULES_MAX_NODES 64 /* expression nodes per rule */
#define RULES_MAX_TEXT (64 * 1024)

enum rules_profile {
	RULES_PROFILE_WAIT_OPERATOR,
	RULES_PROFILE_INFRA_ONLY,
	RULES_PROFILE_INFRA_AND_MGMT,
	_RULES_PROFILE_MAX
};
const char *rules_profile_to_str(enum rules_profile p);

enum rules_fact {
	RULES_FACT_PEERS,
	RULES_FACT_CONTACTED,
	RULES_FACT_CONTACTED_PCT,
	RULES_FACT_MGMT_RUNNING,
	RULES_FACT_MGMT_CAPABLE,
	RULES_FACT_HIGHEST_PRIORITY,
	RULES_FACT_UNCONTACTED_ALIVE,
	_RULES_FACT_MAX
};

/* The base facts; contacted_pct is derived from them. */
struct rules_facts {
	long peers;
	long contacted;
	bool mgmt_running;	/* a contacted node reports mgmt_running */
	bool mgmt_capable;	/* this node */
	bool highest_priority;	/* this node ranks first among itself and contacted capable nodes */
	bool uncontacted_alive; /* an uncontacted node is alive or unknown on external / qdev */
};

/* One node of a rule's expression tree (kept in an array, children by index). */
struct rules_expr {
	uint8_t op; /* private: see rules.c */
	uint8_t fact;
	int16_t left, right;
	long value;
};

struct rules_rule {
	char name[RULES_NAME_MAX];
	int line;
	enum rules_profile profile;
	struct rules_expr nodes[RULES_MAX_NODES];
	int n_nodes;
	int root;
};

struct rules {
	struct rules_rule rules[RULES_MAX];
	int n_rules;
};

/* Parses a whole rules file. `path` is used in messages. On error returns -EINVAL and
 * appends "path:line: what" lines to errors (when not NULL); *ret is untouched. A file
 * without any rule is an error. */
int rules_parse(const char *path, const char *text, size_t len, struct rules **ret,
		struct strbuf *errors);
struct rules *rules_free(struct rules *r);

/* Index of the first rule that matches, or -ENOENT when none does. */
int rules_eval(const struct rules *r, const struct rules_facts *f);

/* Parses `name=value` into f (booleans: true/false/yes/no/1/0). Returns 0, or -EINVAL with
 * a message in err; contacted_pct is refused (it is derived). */
int rules_fact_assign(struct rules_facts *f, const char *assignment, struct strbuf *err);
/* "peers=3 contacted=1 contacted_pct=100/3 mgmt_running=false …" */
void rules_facts_format(const struct rules_facts *f, struct strbuf *out);
