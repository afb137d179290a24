/* The `config` console command (SPEC §2a): this node's configuration, its last-known-good
 * and failed versions, and the configuration each peer announces. */
#pragma once

struct agent;
void config_cmd_register(struct agent *a);
/* Starts the configuration transfer (agent/config_sync.c) once the handshake runs. */
int agent_config_sync_start(struct agent *a);
