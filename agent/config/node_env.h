/* What every module of a running node is given when it attaches: the event loop, the live
 * configuration and which node this is, and the console and health engines it registers
 * its commands and components with. The wiring (agent/agent.c) owns it; modules keep the
 * pointer. `cfg` is replaced in place by a reload, so the pointer stays valid. */
#pragma once

#include "config.h"

#include <stdbool.h>
#include <stdint.h>

enum node_stage {
	NODE_STAGE_EARLY,
	NODE_STAGE_IDENTITY,
	NODE_STAGE_DISKS,
	NODE_STAGE_RAID,
	NODE_STAGE_STORAGE,
	NODE_STAGE_HANDSHAKE,
	NODE_STAGE_DECISION,
	NODE_STAGE_ELECTION,
	NODE_STAGE_READY,
	_NODE_STAGE_MAX
};
const char *node_stage_to_str(enum node_stage s);

struct loop;
struct console;
struct health;

struct node_env {
	struct loop *loop;
	struct cfg *cfg;
	int self; /* index of this node in cfg->nodes */
	uint8_t boot_id[16];
	bool pid1;		 /* running as (or for) the initramfs' init */
	const char *state_dir;	 /* console socket and host-mode state */
	struct console *console; /* NULL until the console runs */
	struct health *health;	 /* NULL until the health engine runs */
	enum node_stage stage;	 /* how far the boot came (SPEC §1, §12) */
	/* A newer configuration announced by a peer is being fetched (cfgsync.h): the boot
	 * decision waits for it, at most one more handshake_window (SPEC §2a). */
	bool config_fetching;
};

/* Records the stage and emits `event=boot stage=… node=…`. */
void node_env_set_stage(struct node_env *e, enum node_stage s);

/* This node's configuration section. */
static inline const struct cfg_node *node_env_self(const struct node_env *e)
{
	return &e->cfg->nodes[e->self];
}
