/* The last-known-good configuration (SPEC §2a, §10): a copy of the file on every cmpt-state
 * beside the journal's A/B slots, the journal's record of which version and hash is good
 * and which failed, and the boot choice between the image's file and the stored copy.
 *
 * cmpt-state layout: journal slot A at 0, slot B at 256 KiB (journal.h); the first MiB is
 * the journal's. From 1 MiB on, the rest is split in two config copy slots (C0, C1) of
 * (size − 1 MiB) / 2 bytes each: a 64-byte header (magic CMPTCFG1, u32 format 1, u32
 * header size 64, u64 config version, u32 length, u32 zero, BLAKE2b-256 of the file — the
 * configuration hash) and the file's bytes. A new copy goes to the slot that does not hold
 * the current last-known-good one, then the journal records it: a crash in between leaves
 * the old copy and the old record. */
#pragma once

#include "config.h"
#include "journal.h"

struct disk_module;

#define CONFIG_STORE_OFFSET (1ULL << 20)
#define CONFIG_STORE_MAGIC "CMPTCFG1"

/* ---- the copies (I/O on journal devices) ---- */

/* Writes text as the copy of (version, hash) to the slot of every device not holding
 * skip_hash's copy (NULL: slot C0). 0 when at least one device took it. */
int config_store_save(const struct journal_dev *devs, int n, const char *text, size_t len,
		      uint64_t version, const uint8_t hash[32], const uint8_t *skip_hash);
/* The copy whose hash is `hash`, from any device (malloc'd, NUL-terminated). -ENOENT. */
int config_store_load(const struct journal_dev *devs, int n, const uint8_t hash[32],
		      char **ret_text, size_t *ret_len, uint64_t *ret_version);
/* Without a configuration: every cmpt-state on the local whole disks under sysfs_root.
 * Read-only. Returns the count. */
int config_store_find_devs(const char *sysfs_root, struct journal_dev *devs, int max);

/* ---- the agent's use of it ---- */

struct config_lkg;
/* state_path: an extra state area (host mode: a file); scan: look for cmpt-state on the
 * local disks (PID 1). Never NULL unless out of memory. */
struct config_lkg *config_lkg_new(const char *state_path, bool scan, const char *sysfs_root);
struct config_lkg *config_lkg_free(struct config_lkg *l);
/* The configuration to run: the trial version (config_lkg_trial) when the image's file is
 * older or does not load, written over path, with `event=boot config=trial version=N
 * boots=K` (a trial booted CONFIG_TRIAL_BOOTS times already has failed); else the image's
 * file at path, unless it does not load, was
 * recorded as failed here, or is older than the last-known-good one — then the stored
 * copy, with `event=boot config=last-known-good version=N reason=…`. A file that does not
 * load is recorded as failed (version 0, its hash). Errors as cfg_load when neither. */
int config_lkg_boot(struct config_lkg *l, const char *path, const struct cfg_override *ovr,
		    size_t n_ovr, struct cfg **ret, struct strbuf *err);
/* From now on the journal is the disk module's (its copy in memory, its devices). */
void config_lkg_attach_disks(struct config_lkg *l, struct disk_module *m);
/* The node is ready with c (hooks_ok) → last-known-good, copy kept; or its profile hooks
 * failed → recorded as failed. Idempotent. */
int config_lkg_record(struct config_lkg *l, const struct cfg *c, bool hooks_ok);
/* After c failed here (recorded by config_lkg_record): c is replaced in place by the
 * last-known-good copy (SPEC §2a rollback), when there is one that differs and has the same
 * topology (modules keep their pointers into c), with `event=config action=rollback from=M
 * to=N reason=…`; write: the copy is also written over c->path (so that the file matches
 * what runs: the config health check, reloads, peers). 0 when rolled back, -ENOENT /
 * -EBUSY otherwise. */
int config_lkg_rollback(struct config_lkg *l, struct cfg *c, const struct cfg_override *ovr,
			size_t n_ovr, const char *reason, bool write);
/* A version fetched or pushed (SPEC §2a), before it is applied: its copy is kept on every
 * cmpt-state (the slot not holding the last-known-good one) and the journal records it as
 * the trial, so that a reboot boots it (config_lkg_boot) while its probation runs; it
 * becomes the last-known-good by config_lkg_record(ok), or failed. `event=config
 * action=stored`. -ENODEV without a state area. */
int config_lkg_trial(struct config_lkg *l, const char *text, size_t len, uint64_t version,
		     const uint8_t hash[32]);
/* Whether c is the version on trial. */
bool config_lkg_on_trial(struct config_lkg *l, const struct cfg *c);
/* Boots with a trial version before it failed (a crash loop ends there). */
#define CONFIG_TRIAL_BOOTS 2
/* Whether c must not run here (recorded as failed, or older than the last-known-good);
 * why says which. For boot and for reloads. */
bool config_lkg_refuses(struct config_lkg *l, const struct cfg *c, char *why, size_t n);
/* Every cmpt-state area this node has (the disk module's once attached, else the ones
 * found at boot); *n 0 when none. For the stored cluster key (key_store.h). */
const struct journal_dev *config_lkg_devs(struct config_lkg *l, int *n);
/* The journal holding the last-known-good and failed records (read-only), NULL when
 * there is none (no cmpt-state found, nothing stored yet). For `compartctl config`. */
const struct journal_state *config_lkg_state(struct config_lkg *l);
/* The election's record per instance kind (SPEC §10: epochs and the last role survive
 * reboots): the highest epoch recorded, 0 when none; and recording a role change (written
 * to every cmpt-state at once; the recorded epoch never goes down). */
uint64_t config_lkg_epoch(struct config_lkg *l, enum cfg_kind k);
int config_lkg_record_role(struct config_lkg *l, enum cfg_kind k, const char *role, uint64_t epoch);
/* Whether (version, hash) is recorded as failed. */
bool config_lkg_failed(const struct journal_state *j, uint64_t version, const uint8_t hash[32]);
