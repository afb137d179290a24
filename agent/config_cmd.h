/* The `config` console command (SPEC §2a): this node's configuration, its last-known-good
 * and failed versions, and the configuration each peer announces. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct agent;
void config_cmd_register(struct agent *a);
/* Starts the configuration transfer (agent/config_sync.c) once the handshake runs. */
int agent_config_sync_start(struct agent *a);
/* The profile's hooks ran with the running version (the boot decision, or again after a
 * new version changed them): failed → the version is recorded as failed and rolled back
 * to the last-known-good (`event=config action=rollback from=N to=M reason=hook-failed`);
 * succeeded → a version on trial starts (or continues) its probation, any other becomes
 * the last-known-good (SPEC §2a). */
void agent_config_judge(struct agent *a, bool hooks_ok);
void agent_config_sync_free(struct agent *a);
/* `config push FILE`: FILE validated as check-config, newer than the running version and
 * not failed here, written over the running file and applied like a reload; the other
 * nodes fetch it when they hear this one announce it. msg says what happened. */
struct strbuf;
int agent_config_push(struct agent *a, const char *path, struct strbuf *msg);
/* `config rollback N`: back to the last-known-good copy (it must be version N), in place
 * like a reload; the version left is recorded as failed here. */
int agent_config_rollback(struct agent *a, uint64_t version, struct strbuf *msg);
