/* Local disks (SPEC §3): what is on them (discovery, libblkid + sysfs), what to do with
 * them (the planner, pure), and doing it (apply, libparted). Partitions are found by
 * GPT name (PARTLABEL) and carry fixed type GUIDs; they are never addressed by number. */
#pragma once

#include "config.h"
#include "util.h"

#define DISK_MAX 16
#define DISK_MAX_PARTS 32
#define DISK_MAX_SIGS 16
#define DISK_ID_MAX 64
#define DISK_MIB ((uint64_t)1 << 20)

/* The partitions compartd makes, in on-disk order. */
enum disk_part_kind {
	DISK_PART_BOOT,
	DISK_PART_STATE,
	DISK_PART_INFRA,
	DISK_PART_ADMIN, /* MZ nodes only */
	DISK_PART_GUEST,
	_DISK_PART_MAX
};
const char *disk_part_kind_to_str(enum disk_part_kind k); /* "boot", … */
const char *disk_part_name(enum disk_part_kind k);	  /* "cmpt-boot", … */
const char *disk_part_type_guid(enum disk_part_kind k);	  /* upper-case textual GUID */

/* The type GUIDs (see docs/disks.md). */
#define DISK_GUID_BOOT "BC13C2FF-59E6-4262-A352-B57C60C3FDB5"  /* Linux extended boot */
#define DISK_GUID_STATE "5D138929-4580-4EC8-8641-5C8EBFEFE4B2" /* compartd state journal */
#define DISK_GUID_RAID "A19D880F-05FC-4D3B-A006-743F0F84911E"  /* Linux RAID */
#define DISK_GUID_LINUX "0FC63DAF-8483-4772-8E79-3D69D8477DE4" /* Linux filesystem data */

struct disk_part {
	int number;
	char name[72];	/* PARTLABEL, UTF-8 */
	char type[40];	/* type GUID, upper case; or an MBR type "0x83" */
	char uuid[40];	/* PARTUUID */
	uint64_t start; /* bytes */
	uint64_t size;	/* bytes */
};

/* One whole disk (or image file) and everything found on it. */
struct disk_info {
	char path[CFG_PATH_MAX];
	char serial[DISK_ID_MAX];
	char wwn[DISK_ID_MAX];
	char model[DISK_ID_MAX];
	uint64_t size;	      /* bytes */
	unsigned sector_size; /* logical */
	bool removable, rotational, is_file, read_only, is_partition;

	char pttype[16]; /* "gpt", "dos", … or "" */
	char ptuuid[40];
	struct disk_part parts[DISK_MAX_PARTS];
	int n_parts;
	/* Every signature libblkid reports on the whole disk (file systems, RAID, LVM, other,
	 * partition tables), plus our own raw look for GPT headers at LBA 1 and the last LBA. */
	char sigs[DISK_MAX_SIGS][32];
	int n_sigs;
	bool gpt_primary, gpt_backup; /* "EFI PART" found there (CRCs not checked) */
	bool gpt_primary_valid;	      /* primary header CRC good */
	bool gpt_tables_sound;	      /* both headers and both entry arrays pass their CRCs */
	bool gpt_foreign_entries;     /* a header lists entries not named cmpt-* */
	bool probe_failed;	      /* libblkid gave up (e.g. ambivalent): never blank */
	char head_sum[20]; /* BLAKE2b-64 (hex) of the first and last 64 KiB: "what was on it" */
	/* Set by the stage (it knows the layout): the first MiB of every partition of this
	 * node's canonical layout for this size reads as zeros (nothing but a table written). */
	bool areas_blank;
	/* Set by the stage: the region a backup GPT at the disk's last LBA occupies holds
	 * nothing but zeros or our own GPT structures (entries all named cmpt-*). */
	bool tail_ours;
};

/* "gpt+ext4+linux_raid_member", "" when blank. */
void disk_found_str(const struct disk_info *d, char *out, size_t n);
bool disk_is_blank(const struct disk_info *d);

/* The size of a block device or file now (BLKGETSIZE64 / st_size), 0 when unknown. */
uint64_t disk_dev_size(const char *path);
/* Probe one path: sysfs facts when it is a block device, libblkid for the rest. */
int disk_probe(const char *path, struct disk_info *ret);
/* Whole disks under /sys/block (no partitions, loop, ram, md, dm, zram, sr). `sysfs_root`
 * is normally "/sys". Paths are "/dev/<name>". Returns the count or a negative errno. */
int disk_list_sysfs(const char *sysfs_root, char paths[][CFG_PATH_MAX], int max);

/* ---- `disks = auto` (disk_auto.c) ---- */

enum disk_transport {
	DISK_TRANSPORT_LOCAL, /* SATA/SAS/NVMe/virtio/…: a bus inside the machine */
	DISK_TRANSPORT_ISCSI,
	DISK_TRANSPORT_NBD,
	DISK_TRANSPORT_FC,
	DISK_TRANSPORT_USB,
	DISK_TRANSPORT_VIRTUAL, /* /sys/devices/virtual: no hardware behind it */
	_DISK_TRANSPORT_MAX
};
const char *disk_transport_to_str(enum disk_transport t);
/* From where /sys/block/<name> resolves to under sysfs_root. */
enum disk_transport disk_sysfs_transport(const char *sysfs_root, const char *name);
/* The whole disk ("/dev/sda") the node booted from: the disk under a mounted /boot,
 * /boot/efi, live medium or / (mountinfo), else the kernel command line's root= (/dev/X,
 * or UUID=/PARTUUID=/LABEL= through libblkid). -ENOENT when none (PXE, initramfs only). */
int disk_boot_medium(const char *sysfs_root, const char *cmdline, const char *mountinfo, char *out,
		     size_t n);
/* Why auto mode leaves /dev/<name> alone ("boot medium", "removable", "iscsi", "nbd",
 * "fc", "usb", "virtual"), or NULL when it may take it. */
const char *disk_auto_excluded(const char *sysfs_root, const char *name, const char *boot_medium);
struct disk_auto_opts {
	const char *sysfs_root;	 /* NULL: "/sys" */
	const char *boot_medium; /* NULL: detected with disk_boot_medium() */
	const char *cmdline;	 /* NULL: "/proc/cmdline" */
	const char *mountinfo;	 /* NULL: "/proc/self/mountinfo" */
};
/* The disks auto mode may take; one `event=disk … verdict=skipped reason=…` per other. */
int disk_list_auto(const struct disk_auto_opts *o, char paths[][CFG_PATH_MAX], int max);

/* ---- the planner (pure) ---- */

enum disk_verdict {
	DISK_VERDICT_KEEP,
	DISK_VERDICT_CREATE,
	DISK_VERDICT_FOREIGN,
	DISK_VERDICT_TOO_SMALL,
	DISK_VERDICT_WIPED,
	_DISK_VERDICT_MAX
};
const char *disk_verdict_to_str(enum disk_verdict v);

/* An authorization to wipe: a serial, a WWN, or (image files) a path. */
struct disk_auth {
	char id[CFG_PATH_MAX];
	bool resume; /* the journal's pending intent to partition this disk: used only on the
		      * same disk (disk_auth_resume_ok) */
	/* For resume: what the intent recorded (size 0: a format 1 intent, nothing). */
	uint64_t size;
	bool wiped;	/* the intent was an authorized wipe (not a create of a blank disk) */
	char found[64]; /* "<found>#<head_sum>" before the step */
};

struct disk_plan_part {
	enum disk_part_kind kind;
	uint64_t start, size; /* bytes, MiB aligned */
};

struct disk_plan {
	enum disk_verdict verdict;
	char reason[320];
	char found[256];    /* what blkid saw, for foreign/wiped */
	int auth;	    /* index of the authorization used (wiped), else -1 */
	bool torn_own;	    /* create: finishing a torn table of this node's own layout */
	char disk_guid[40]; /* create/wiped: the GPT disk GUID to write (set by the stage) */
	struct disk_plan_part parts[_DISK_PART_MAX];
	int n_parts;		/* create/wiped: what to make; keep: what is there */
	bool fix_types;		/* keep: our own layout with a wrong type GUID (crash) */
	bool guest_can_grow;	/* keep: the disk grew; cmpt-guest could be extended */
	uint64_t guest_grow_to; /* bytes cmpt-guest could have */
	/* keep: extend cmpt-guest to guest_grow_to and move the backup GPT to the end (parts[]
	 * already shows the grown size); also set to finish a grow the journal shows pending. */
	bool grow;
	char grow_refused[160]; /* guest_can_grow but not grown: why */
};

struct disk_plan_input {
	const struct cfg_layout *layout;
	enum cfg_zone zone;
	const struct disk_auth *auths; /* not yet consumed */
	int n_auths;
	/* The journal's pending grow intents: id (serial, WWN or path) and disk size. */
	const struct disk_auth *grows;
	int n_grows;
};

/* The canonical layout for a disk of `size` bytes: n parts in ret (≤ _DISK_PART_MAX).
 * -ENOSPC when the disk cannot hold it with min_guest left. */
int disk_layout_compute(const struct cfg_layout *l, enum cfg_zone zone, uint64_t size,
			struct disk_plan_part ret[_DISK_PART_MAX], int *ret_n);
void disk_plan_one(const struct disk_plan_input *in, const struct disk_info *d,
		   struct disk_plan *ret);
/* Nothing on the disk but GPT structures (PMBR, headers, entries) whose partitions, if
 * any, are named and placed exactly as this node's canonical layout for the disk's size. */
bool disk_torn_own(const struct disk_plan_input *in, const struct disk_info *d);
/* "<found>#<head_sum>": what an intent records as what was on the disk. */
void disk_fingerprint(const struct disk_info *d, char *out, size_t n);
/* I/O, read-only: whether the first MiB of each of parts on the disk is all zeros. */
bool disk_areas_blank(const char *path, const struct disk_plan_part *parts, int n);

/* ---- apply (libparted, then libblkid to verify) ---- */

/* Named steps where COMPARTD_FAULT_AT=<name|number> makes the process _exit(99). */
enum disk_step {
	DISK_STEP_PLAN,
	DISK_STEP_INTENT,
	DISK_STEP_WIPE,
	DISK_STEP_PARTITION,
	DISK_STEP_TYPES,
	DISK_STEP_STATE_INIT,
	DISK_STEP_VERIFY,
	DISK_STEP_DONE,
	DISK_STEP_RAID,
	DISK_STEP_GPT_WRITE, /* inside libparted's write; COMPARTD_FAULT_TORN=K (1-4): only
			      * its first K writes (PMBR, primary header, primary entries,
			      * backup header, backup entries) reach the disk */
	DISK_STEP_GROW,	     /* growing cmpt-guest: before anything is written */
	DISK_STEP_GROW_COPY, /* growing: the old backup table copied to the new end */
	_DISK_STEP_MAX
};
const char *disk_step_to_str(enum disk_step s);
void disk_fault_point(enum disk_step s);

/* Carries out a create/wiped plan on d->path; keep with fix_types rewrites the type GUIDs
 * only; keep otherwise and foreign/too-small do nothing. Verifies the result. */
int disk_apply(const struct disk_info *d, const struct disk_plan *p);
/* Re-probes and checks the names, types and sizes of the plan; 0 or -EBADMSG with `why`. */
int disk_verify(const char *path, const struct disk_plan *p, char *why, size_t n);

/* Partition device for a partition of a block device ("/dev/sda" 2 → "/dev/sda2",
 * "/dev/nvme0n1" → "…p2"); for image files the image path itself (use the offset). */
void disk_part_path(const char *disk, int number, char *out, size_t n);

/* GPT raw access (gpt.c): rewrite the type GUIDs of the named entries in both the primary
 * and the backup table, CRCs recomputed. Only entries whose name is listed change. */
int disk_gpt_set_types(const char *path, unsigned sector_size, const char *const names[],
		       const char *const guids[], int n);
/* The same, and the disk GUID of both headers set to disk_guid (textual) unless NULL. */
int disk_gpt_set_types_guid(const char *path, unsigned sector_size, const char *const names[],
			    const char *const guids[], int n, const char *disk_guid);
/* Growing: when the primary table is sound and its backup is not at the last LBA, a copy
 * of that backup (the old table) is written to the end first, so a write torn anywhere
 * in libparted's commit leaves the old table readable (the primary, or the backup at the
 * end where libblkid and libparted look when the primary is torn). 0 when nothing to do. */
int disk_gpt_backup_to_end(const char *path, unsigned sector_size, uint64_t size);
/* The region of a backup GPT at the last LBA holds only zeros or our own structures. */
bool disk_gpt_tail_ours(const char *path, unsigned sector_size, uint64_t size);
/* Either GPT header (valid CRC) lists an entry in use whose name is not cmpt-*, even when
 * its entry array is torn or libblkid does not read it. */
bool disk_gpt_foreign_entries(const char *path, unsigned sector_size, uint64_t size);
/* Both GPT headers and entry arrays pass their CRCs. */
bool disk_gpt_sound(const char *path, unsigned sector_size);
int disk_guid_parse(const char *s, uint8_t out[16]); /* textual → GPT on-disk order */
void disk_guid_format(const uint8_t in[16], char out[40]);
uint32_t disk_crc32(const void *buf, size_t n);
