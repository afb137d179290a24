/* The state journal (SPEC §10) on every cmpt-state partition: two slots per disk, each a
 * 64-byte header (magic, format version, sequence, payload length, BLAKE2b-256) and a TLV
 * payload. Writes go to slot (seq % 2) of every disk, O_DIRECT when the file system allows
 * it, fsync always; loading takes the newest valid slot across all disks. */
#pragma once

#include "config.h"
#include "util.h"

#define JOURNAL_MAGIC "CMPTJRN1"
#define JOURNAL_FORMAT 2 /* written; format 1 (wipes by name, at most 32) is read too */
#define JOURNAL_FORMAT_V1 1
#define JOURNAL_HDR_SIZE 64
#define JOURNAL_SLOT_SIZE (256U << 10)
#define JOURNAL_MAX_PAYLOAD (JOURNAL_SLOT_SIZE - JOURNAL_HDR_SIZE)
#define JOURNAL_MAX_FAILED 16
/* Consumed wipe authorizations are kept for ever: a 16-byte hash each, room for 4096 in a
 * slot (~128 KiB). A 4097th wipe is refused, never an old record dropped. The names of the
 * newest JOURNAL_MAX_WIPE_LABELS are kept beside, for people reading `state show`. */
#define JOURNAL_MAX_WIPES 4096
#define JOURNAL_MAX_WIPE_LABELS 32
#define JOURNAL_WIPE_HASH 16
#define JOURNAL_MAX_STEPS 64
#define JOURNAL_MAX_DEVS 16

/* Payload tags (u16 tag, u16 zero, u32 length, value); unknown tags are skipped. */
enum journal_tag {
	JOURNAL_TAG_NODE = 1,	    /* node name */
	JOURNAL_TAG_CFG_GOOD = 2,   /* u64 version, 32-byte hash */
	JOURNAL_TAG_CFG_FAILED = 3, /* same, repeated */
	JOURNAL_TAG_ROLE = 4,	    /* u8 kind, 7 zero, u64 epoch, role name */
	JOURNAL_TAG_WIPE = 5,	    /* u64 seq consumed at, authorization id */
	JOURNAL_TAG_STEP = 6,	    /* u64 id, u8 kind, u8 state, u16 target len, target, detail */
	JOURNAL_TAG_NEXT_ID = 7,    /* u64 next step id */
	JOURNAL_TAG_WIPE_HASH = 8,  /* u64 seq consumed at, 16-byte hash of the normalized id */
	JOURNAL_TAG_WIPE_LABEL = 9, /* 16-byte hash, the id as given (display only) */
	JOURNAL_TAG_STEP_DISK = 10, /* u64 step id, u64 disk size, 16-byte GPT disk GUID
				     * (on-disk order), what was found on the disk before */
	JOURNAL_TAG_MD_UUID = 11,   /* u8 kind, 7 zero, the md array's UUID (mdadm's form) */
	JOURNAL_TAG_CFG_TRIAL = 12, /* u64 version, 32-byte hash, u32 boots, u32 zero */
};

enum journal_step_kind {
	JOURNAL_STEP_PARTITION, /* target: disk id; detail: verdict */
	JOURNAL_STEP_RAID,	/* target: md name; detail: action */
	_JOURNAL_STEP_KIND_MAX
};
enum journal_step_state { JOURNAL_STEP_INTENT, JOURNAL_STEP_DONE, _JOURNAL_STEP_STATE_MAX };
const char *journal_step_kind_to_str(enum journal_step_kind k);
const char *journal_step_state_to_str(enum journal_step_state s);

struct journal_step {
	uint64_t id;
	enum journal_step_kind kind;
	enum journal_step_state state;
	char target[128];
	char detail[96];
	/* Partition steps (format 2): the disk the intent was for. size 0: not recorded. */
	uint64_t disk_size;
	char disk_guid[40]; /* the GPT disk GUID the step writes, upper case */
	char found[64];	    /* what discovery found on it before ("" blank) */
};

struct journal_cfgver {
	uint64_t version;
	uint8_t hash[32];
};

struct journal_role {
	bool set;
	uint64_t epoch;
	char role[16];
};

struct journal_wipe {
	uint64_t seq;
	uint8_t hash[JOURNAL_WIPE_HASH];
};
struct journal_wipe_label {
	uint8_t hash[JOURNAL_WIPE_HASH];
	char id[128];
};

struct journal_state {
	uint64_t seq; /* of the slot it was read from / last written */
	char node[CFG_NAME_MAX];
	bool has_good;
	struct journal_cfgver good;
	struct journal_cfgver failed[JOURNAL_MAX_FAILED];
	int n_failed;
	/* A version fetched or pushed (SPEC §2a), its copy kept, on probation until it becomes
	 * the good one or fails; boots: how often the node booted with it since. */
	bool has_trial;
	struct journal_cfgver trial;
	uint32_t trial_boots;
	struct journal_role roles[_CFG_KIND_MAX];
	struct journal_wipe wipes[JOURNAL_MAX_WIPES];
	int n_wipes;
	struct journal_wipe_label labels[JOURNAL_MAX_WIPE_LABELS];
	int n_labels;
	char md_uuid[_CFG_KIND_MAX][48]; /* per array (infra, admin); "" not recorded */
	struct journal_step steps[JOURNAL_MAX_STEPS];
	int n_steps;
	uint64_t next_id;
};

/* ---- pure: encoding and decoding ---- */

/* Header + payload into buf (cap ≥ JOURNAL_SLOT_SIZE is always enough). */
int journal_encode(const struct journal_state *s, uint64_t seq, uint8_t *buf, size_t cap,
		   size_t *ret_len);
/* -ENODATA: an empty slot (zeroed header); -EBADMSG: corrupt (bad magic, version, length,
 * hash or payload). */
int journal_decode_slot(const uint8_t *buf, size_t len, struct journal_state *ret);
int journal_decode_payload(const uint8_t *p, size_t len, struct journal_state *ret);

/* Records. */
uint64_t journal_step_intent(struct journal_state *s, enum journal_step_kind k, const char *target,
			     const char *detail);
void journal_step_done(struct journal_state *s, uint64_t id);
/* The pending intent for (kind, target), or NULL. */
const struct journal_step *journal_step_pending(const struct journal_state *s,
						enum journal_step_kind k, const char *target);
int journal_count_steps(const struct journal_state *s, enum journal_step_kind k, const char *target,
			enum journal_step_state st);
/* Ids are compared after normalization (case, and the naa./eui./t10./0x WWN prefixes). */
bool journal_wipe_consumed(const struct journal_state *s, const char *id);
/* -ENOSPC when JOURNAL_MAX_WIPES are recorded (the wipe must not happen then). */
int journal_wipe_record(struct journal_state *s, const char *id);
void journal_wipe_hash(const char *id, uint8_t out[JOURNAL_WIPE_HASH]);
/* The label of a consumed wipe's hash, "" when only the hash is kept. */
const char *journal_wipe_label(const struct journal_state *s,
			       const uint8_t hash[JOURNAL_WIPE_HASH]);
void journal_set_role(struct journal_state *s, enum cfg_kind k, const char *role, uint64_t epoch);
void journal_set_good_config(struct journal_state *s, uint64_t version, const uint8_t hash[32]);
void journal_add_failed_config(struct journal_state *s, uint64_t version, const uint8_t hash[32]);
void journal_set_trial_config(struct journal_state *s, uint64_t version, const uint8_t hash[32]);

/* ---- the driver: devices ---- */

/* A cmpt-state area: a partition device (offset 0) or an image file with an offset. */
struct journal_dev {
	char path[CFG_PATH_MAX];
	uint64_t offset, size;
};

struct journal_slot_info {
	int status; /* 0 valid, -ENODATA empty, -EBADMSG corrupt, other: read error */
	uint64_t seq;
};

/* Reads both slots of one device; info[i] per slot; the newer valid one into ret (when
 * any). Returns 0 when a valid slot was found, -ENODATA otherwise. */
int journal_read_dev(const struct journal_dev *d, struct journal_slot_info info[2],
		     struct journal_state *ret);
/* Newest valid slot across the devices; corrupt slots are reported (event=journal
 * action=corrupt-slot) and ignored. -ENODATA when none is valid (a fresh node). */
int journal_load(const struct journal_dev *devs, int n, struct journal_state *ret);
/* seq+1, into slot (seq % 2) of every device. 0 when at least one device took it. */
int journal_store(const struct journal_dev *devs, int n, struct journal_state *s);

/* Every slot of every device at a glance: which hold the newest valid record, which are
 * corrupt (or unreadable), which are stale (the slot the newest sequence was written to,
 * on a device that missed that write: empty or older). */
struct journal_scan {
	struct journal_slot_info slots[JOURNAL_MAX_DEVS][2];
	int n_devs;
	int best_dev, best_slot; /* the newest valid slot, -1 when none */
	uint64_t best_seq;
	int n_valid, n_corrupt, n_stale;
};
enum journal_slot_verdict {
	JOURNAL_SLOT_OK,      /* valid, or an empty/older slot that is not the newest's */
	JOURNAL_SLOT_CORRUPT, /* bad header or hash, or unreadable */
	JOURNAL_SLOT_STALE,   /* the newest sequence's slot holds less */
	_JOURNAL_SLOT_VERDICT_MAX
};
const char *journal_slot_verdict_to_str(enum journal_slot_verdict v);
/* Pure: the verdict on slot k of device i of a filled scan. */
enum journal_slot_verdict journal_slot_judge(const struct journal_scan *sc, int i, int k);
int journal_scan(const struct journal_dev *devs, int n, struct journal_scan *ret);
/* Rewrites every corrupt or stale slot with the newest valid slot, byte for byte (O_DIRECT
 * and fsync, as journal_store), one `event=journal action=rewrite` per slot. Never touches
 * a valid slot as new as the copy. Returns the number of slots rewritten, -ENODATA when no
 * slot is valid (nothing to copy from), -EIO when a rewrite failed; msg says what. */
int journal_repair(const struct journal_dev *devs, int n, struct strbuf *msg);

/* JSON / human rendering for `compartd state show` and the console. */
void journal_format(const struct journal_state *s, bool json, struct strbuf *out);
