/* The election driver: one state machine (agent/election/elect.h) per instance kind this node
 * takes part in (infra always; admin on MZ nodes that are mgmt_capable), each with its
 * own quorum-device session (iscsi/qdev.h), wired to the loop's timers, the role hooks
 * of the config, `event=role` lines and the console's `role`, `promote` and `demote`.
 *
 * Heartbeats travel through the handshake layer: it calls elect_drv_fill() when it sends
 * one, and hands received heartbeats and acknowledgements to elect_drv_heartbeat_in() and
 * elect_drv_ack_in(); the driver answers through the transport set with
 * elect_drv_set_transport(). Without a transport the election runs on the quorum device
 * alone (no leases through acknowledgements).
 *
 * Quorum LUN per pair and kind: quorum.lun + 2 * pair index + kind (infra 0, admin 1);
 * its slots are sealed with a key derived from the cluster key (qdev_mac_key_derive).
 *
 * Fencing (SPEC §7): the driver holds the [fencing] watchdog (agent/election/watchdog.h), pets it
 * from a loop timer while every state machine allows it (elect_may_pet), reports the end
 * of each demote hook (ELECT_EV_HOOK_DONE; a failed or timed-out one fences), and gives
 * the state machines the watchdog's timeout for their takeover waits. watchdog = none runs
 * unfenced; a watchdog that cannot be opened (or a real one in host mode) makes the node
 * ineligible. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "elect.h"
#include "node_env.h"

struct console;
struct elect_drv;

struct elect_transport {
	void *ud;
	int (*send_ack)(void *ud, int node, uint64_t seq);
	/* monotonic µs at which our heartbeat `seq` was sent, 0 when unknown */
	uint64_t (*sent_at)(void *ud, uint64_t seq);
};

/* A received heartbeat's election fields, indexed by enum cfg_kind. */
struct elect_hb_in {
	uint64_t seq;
	uint64_t epoch[_CFG_KIND_MAX];
	uint8_t role[_CFG_KIND_MAX]; /* enum elect_role */
};

/* Registers the console commands role, promote and demote, and the quorum device's health
 * components, with env's console and health engine when they run. */
/* cluster_key (HS_KEY_BYTES; the current key) seals the quorum slots: derived per kind, not
 * kept. */
/* lkg: the node's journal (partitions/config_store.h), where each instance's epoch and
 * role are kept across reboots and read back as the lowest epoch it may claim above; NULL
 * when the node has none. */
struct config_lkg;
int elect_drv_new(struct node_env *env, const uint8_t *cluster_key, struct config_lkg *lkg,
		  struct elect_drv **ret);
struct elect_drv *elect_drv_free(struct elect_drv *d);
/* Joins the election. Eligible = the profile is ok (profile_ok: not wait-operator, its
 * hooks succeeded) and core health passes: the driver follows the health engine's core
 * verdict (health_set_core_notify) on its own, in every election it takes part in. */
void elect_drv_start(struct elect_drv *d, bool profile_ok);
void elect_drv_set_eligible(struct elect_drv *d, bool profile_ok);
/* NULL when eligible, else why not ("md:infra failed", "profile …"). */
const char *elect_drv_ineligible_cause(const struct elect_drv *d);

void elect_drv_set_transport(struct elect_drv *d, const struct elect_transport *t);
/* Uses the handshake layer (hs.h) as transport: heartbeat contents, received heartbeats
 * and acknowledgements, and the quorum-device freshness fact it offers the decision. */
struct hs;
void elect_drv_attach_hs(struct elect_drv *d, struct hs *hs);
void elect_drv_heartbeat_in(struct elect_drv *d, int node, const struct elect_hb_in *hb);
/* ack: the heartbeat number | instance kind << 56, as the acknowledging driver sends it */
void elect_drv_ack_in(struct elect_drv *d, int node, uint64_t ack);
void elect_drv_fill(struct elect_drv *d, uint64_t epoch[_CFG_KIND_MAX],
		    uint8_t role[_CFG_KIND_MAX]);
/* Freshness of a node's quorum-device slot (infra session): 1 alive, 0 dead, -1 unknown. */
int elect_drv_qdev_alive(struct elect_drv *d, int node);

enum elect_role elect_drv_role(const struct elect_drv *d, enum cfg_kind kind);

/* Fencing as `status` shows it (SPEC §7). */
enum elect_fence_state {
	ELECT_FENCE_UNFENCED,  /* watchdog = none: a hung master is not reset */
	ELECT_FENCE_NOT_ARMED, /* configured; the election has not opened it (yet) */
	ELECT_FENCE_MISSING,   /* configured but cannot be opened: never master */
	ELECT_FENCE_ARMED,     /* held; petted while the leases and hooks are in order */
	ELECT_FENCE_FENCED,    /* a demote hook failed or hung: never petted again */
};
struct elect_fencing {
	enum elect_fence_state state;
	char watchdog[CFG_PATH_MAX];	/* the device, or "none" */
	uint64_t timeout_us;		/* in force when armed, else the configured one */
	char stopped[96];		/* why the keep-alives stopped; "" while petted */
	char detail[CFG_PATH_MAX + 64]; /* MISSING: why; FENCED: the kinds that fenced */
};
/* d may be NULL (the election has not started): the configured state. */
void elect_drv_fencing(const struct elect_drv *d, const struct cfg *c, struct elect_fencing *f);
/* The human line's value ("watchdog /dev/watchdog (1000 ms)", "unfenced (watchdog =
 * none)…", "FENCED (…)…") or a JSON object {state, watchdog, timeout_ms, petted, stopped,
 * detail}. */
struct strbuf;
void elect_fencing_format(const struct elect_fencing *f, bool json, struct strbuf *out);
