/* The cluster key when the image has none (SPEC §5): the key file, else the key stored on
 * cmpt-state (partitions/key_store.h), else — with `[cluster] key_id` set — the agent
 * waits at the handshake stage for `key install` on the serial console, verifies the typed
 * key against key_id, stores it on every cmpt-state and continues the boot. */
#pragma once

#include "agent.h"

/* What the boot continues with once it has the key (sodium_malloc'd HS_KEY_BYTES; the
 * callee frees it with hs_key_free). */
typedef int (*agent_key_cont_fn)(struct agent *a, uint8_t *key);

/* The key file, else the stored key: 0 and *ret_key; -ENOKEY when neither exists and
 * key_id is set (the caller waits: agent_key_wait); other errors as hs_key_load. */
int agent_key_get(struct agent *a, uint8_t **ret_key);
/* Says on the console that the node waits for the cluster key and registers `key install`
 * (serial line only); cont runs from the loop once a key that has key_id was typed. */
int agent_key_wait(struct agent *a, agent_key_cont_fn cont);
/* Registers `key` (install) on the console: before the wait it answers that the node has
 * its key. */
void agent_key_register(struct agent *a);
