/* The `config` console command (SPEC §2a): this node's configuration, its last-known-good
 * and failed versions, and the configuration each peer announces. */
#pragma once

struct agent;
void config_cmd_register(struct agent *a);
