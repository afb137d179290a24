/* The boot decision (SPEC §6): after `handshake_window`, compute the facts from the
 * handshake, evaluate the rules file (cluster.conf `rules =`, default
 * /etc/compartd/rules/boot.rules) and start the chosen profile (profile.h). Re-evaluated
 * whenever the set of contacted nodes changes; the rules file is re-read each time and a
 * file that does not parse is refused with its line named, keeping the previous rules.
 *
 * Transitions a re-evaluation may make: none → any profile (the first decision);
 * wait-operator → infra-only / infra-and-mgmt (a peer appeared, or `continue`);
 * infra-only → infra-and-mgmt; a failed profile may be retried. Nothing else: once this
 * node started the management system it keeps it and keeps reporting mgmt_running, and a
 * later `wait-operator` verdict (all peers lost) does not stop a running node.
 *
 * `continue` releases wait-operator: the operator vouches
 * that the other nodes are down, so the node starts infra-and-mgmt when it is mgmt_capable
 * and no contacted node reports mgmt_running, else infra-only (`rule=operator-continue`).
 * Accepted once the wait-operator hooks finished, whether they succeeded or failed. */
#pragma once

#include "hs.h"
#include "node_env.h"
#include "rules.h"

/* One other node as the handshake sees it, for the facts. */
struct decision_peer {
	bool contacted;
	bool mgmt_running; /* as it reported (counts only when contacted) */
	int ext_alive;	   /* 1 alive, 0 dead, -1 unknown */
	int qdev_alive;	   /* 1 alive, 0 dead, -1 unknown */
};

/* Pure: the facts of SPEC §6 for node `self` (peers indexed like cfg->nodes; self's entry is
 * ignored). An uncontacted node is alive unless both its external interface and its
 * quorum-device slot are dead (0); unknown (-1) counts as alive. */
void decision_facts(const struct cfg *cfg, int self, const struct decision_peer *peers,
		    struct rules_facts *ret);

struct decision;
/* Called each time a profile finished starting (its hooks ran); the first call means the
 * bootstrap may go on to the election. */
typedef void (*decision_started_fn)(struct decision *d, void *ud);

int decision_new(struct node_env *env, struct hs *hs, decision_started_fn fn, void *ud,
		 struct decision **ret);
struct decision *decision_free(struct decision *d);
/* Arms the handshake window; the first decision happens when it ends. Registers the
 * console commands `decision` and `continue`. */
int decision_start(struct decision *d);

/* The current profile (enum rules_profile), or -1 before the first decision. */
int decision_profile(const struct decision *d);
/* A new configuration version changed the current profile's hooks (SPEC §2a): they run
 * again (after the ones running, if any), and the started callback judges them as
 * after the first decision. -ENOENT before the first decision. */
int decision_rerun(struct decision *d);
/* Decided and the current profile's hooks succeeded (wait-operator's too). */
bool decision_hooks_ok(const struct decision *d);
/* Decided, not wait-operator, and the profile's hooks succeeded: may stand for election. */
bool decision_eligible(const struct decision *d);

/* `compartd rules check FILE` and `compartd rules eval FILE fact=value…` */
int rules_cli_main(int argc, char **argv);
