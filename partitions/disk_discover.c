/* Discovery: whole disks from sysfs, and everything libblkid finds on a disk or image
 * file. Read-only: every open here is O_RDONLY. */
#include "disk.h"
#include "log.h"

#include <blkid/blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sodium.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static void add_sig(struct disk_info *d, const char *s)
{
	if (!s || !*s)
		return;
	for (int i = 0; i < d->n_sigs; i++)
		if (!strcmp(d->sigs[i], s))
			return;
	if (d->n_sigs < DISK_MAX_SIGS)
		snprintf(d->sigs[d->n_sigs++], sizeof(d->sigs[0]), "%s", s);
}

void disk_found_str(const struct disk_info *d, char *out, size_t n)
{
	struct strbuf sb;
	sb_init(&sb);
	for (int i = 0; i < d->n_sigs; i++)
		sb_printf(&sb, "%s%s", i ? "+" : "", d->sigs[i]);
	if (d->probe_failed)
		sb_printf(&sb, "%sunreadable", d->n_sigs ? "+" : "");
	snprintf(out, n, "%s", sb.buf ? sb.buf : "");
	sb_free(&sb);
}

bool disk_is_blank(const struct disk_info *d)
{
	return d->n_sigs == 0 && !d->pttype[0] && d->n_parts == 0 && !d->gpt_primary &&
	       !d->gpt_backup && !d->probe_failed;
}

/* Reads a one-line sysfs attribute, white space stripped; "" when absent. */
static void read_attr(const char *dir, const char *name, char *out, size_t n)
{
	char p[512], buf[256];
	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t l = read(fd, buf, sizeof(buf) - 1);
	if (l <= 0)
		return;
	buf[l] = '\0';
	snprintf(out, n, "%s", strstrip(buf));
}

static void sysfs_facts(const char *sysdir, struct disk_info *d)
{
	char v[DISK_ID_MAX];
	read_attr(sysdir, "removable", v, sizeof(v));
	d->removable = !strcmp(v, "1");
	read_attr(sysdir, "ro", v, sizeof(v));
	d->read_only = !strcmp(v, "1");
	read_attr(sysdir, "queue/rotational", v, sizeof(v));
	d->rotational = !strcmp(v, "1");
	read_attr(sysdir, "serial", d->serial, sizeof(d->serial));
	if (!d->serial[0])
		read_attr(sysdir, "device/serial", d->serial, sizeof(d->serial));
	read_attr(sysdir, "wwid", d->wwn, sizeof(d->wwn));
	if (!d->wwn[0])
		read_attr(sysdir, "device/wwid", d->wwn, sizeof(d->wwn));
	read_attr(sysdir, "device/model", d->model, sizeof(d->model));
}

static bool bad_block_name(const char *n)
{
	static const char *const skip[] = {"loop", "ram", "md", "dm-", "zram", "sr", "nbd", "fd"};
	if (n[0] == '.')
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(skip); i++)
		if (!strncmp(n, skip[i], strlen(skip[i])))
			return true;
	return false;
}

int disk_list_sysfs(const char *sysfs_root, char paths[][CFG_PATH_MAX], int max)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/block", sysfs_root);
	DIR *dp = opendir(dir);
	if (!dp)
		return log_error_errno(-errno, "Failed to list %s", dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(dp)) && n < max) {
		if (bad_block_name(de->d_name))
			continue;
		char p[768], v[32];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		read_attr(p, "size", v, sizeof(v));
		if (!v[0] || !strcmp(v, "0"))
			continue;
		if (snprintf(paths[n], CFG_PATH_MAX, "/dev/%s", de->d_name) < CFG_PATH_MAX)
			n++;
	}
	closedir(dp);
	/* Stable order: sort by name. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(paths[j - 1], paths[j]) > 0; j--) {
			char t[CFG_PATH_MAX];
			memcpy(t, paths[j], CFG_PATH_MAX);
			memcpy(paths[j], paths[j - 1], CFG_PATH_MAX);
			memcpy(paths[j - 1], t, CFG_PATH_MAX);
		}
	return n;
}

static void upper(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

/* Pass 1: every signature, as wipefs sees them. */
static int probe_sigs(const char *path, struct disk_info *d)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return -errno ? -errno : -EIO;
	d->size = (uint64_t)blkid_probe_get_size(pr);
	d->sector_size = blkid_probe_get_sectorsize(pr);
	if (!d->sector_size)
		d->sector_size = 512;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						  BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT);
	int r, guard = 0;
	while ((r = blkid_do_probe(pr)) == 0 && guard++ < 64) {
		const char *t = NULL;
		if (blkid_probe_lookup_value(pr, "TYPE", &t, NULL) == 0)
			add_sig(d, t);
		else if (blkid_probe_lookup_value(pr, "PTTYPE", &t, NULL) == 0)
			add_sig(d, t);
		else
			add_sig(d, "unknown");
	}
	if (r < 0)
		d->probe_failed = true;
	blkid_free_probe(pr);
	return 0;
}

static void fill_parts(blkid_probe pr, struct disk_info *d)
{
	blkid_partlist pl = blkid_probe_get_partitions(pr);
	if (!pl)
		return;
	blkid_parttable tab = blkid_partlist_get_table(pl);
	if (tab) {
		snprintf(d->pttype, sizeof(d->pttype), "%s", blkid_parttable_get_type(tab) ?: "");
		snprintf(d->ptuuid, sizeof(d->ptuuid), "%s", blkid_parttable_get_id(tab) ?: "");
		upper(d->ptuuid);
	}
	int n = blkid_partlist_numof_partitions(pl);
	for (int i = 0; i < n && d->n_parts < DISK_MAX_PARTS; i++) {
		blkid_partition p = blkid_partlist_get_partition(pl, i);
		struct disk_part *dp = &d->parts[d->n_parts++];
		dp->number = blkid_partition_get_partno(p);
		dp->start = (uint64_t)blkid_partition_get_start(p) * 512;
		dp->size = (uint64_t)blkid_partition_get_size(p) * 512;
		snprintf(dp->name, sizeof(dp->name), "%s", blkid_partition_get_name(p) ?: "");
		const char *ts = blkid_partition_get_type_string(p);
		if (ts)
			snprintf(dp->type, sizeof(dp->type), "%s", ts);
		else
			snprintf(dp->type, sizeof(dp->type), "0x%x", blkid_partition_get_type(p));
		upper(dp->type);
		snprintf(dp->uuid, sizeof(dp->uuid), "%s", blkid_partition_get_uuid(p) ?: "");
		upper(dp->uuid);
	}
}

/* Pass 2: the partition table and its entries. */
static int probe_parts(const char *path, struct disk_info *d)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return -errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS | BLKID_PARTS_FORCE_GPT);
	int r = blkid_do_safeprobe(pr);
	if (r == 0)
		fill_parts(pr, d);
	else if (r < 0)
		d->probe_failed = true;
	blkid_free_probe(pr);
	return 0;
}

/* Our own look for GPT headers, so a primary destroyed beyond libblkid's reach still
 * leaves the disk non-blank when its backup is there (and the other way round). */
static void probe_gpt_raw(const char *path, struct disk_info *d)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned ss = d->sector_size ? d->sector_size : 512;
	if (fd < 0 || d->size < 4ULL * ss)
		return;
	_cleanup_free_ uint8_t *buf = malloc(ss);
	if (!buf)
		return;
	if (pread(fd, buf, ss, ss) == (ssize_t)ss && !memcmp(buf, "EFI PART", 8)) {
		d->gpt_primary = true;
		uint32_t hs, crc;
		memcpy(&hs, buf + 12, 4);
		memcpy(&crc, buf + 16, 4);
		if (hs >= 92 && hs <= ss) {
			memset(buf + 16, 0, 4);
			d->gpt_primary_valid = disk_crc32(buf, hs) == crc;
		}
	}
	if (pread(fd, buf, ss, (off_t)(d->size - ss)) == (ssize_t)ss && !memcmp(buf, "EFI PART", 8))
		d->gpt_backup = true;
	if (d->gpt_primary || d->gpt_backup)
		add_sig(d, d->gpt_primary_valid ? "gpt" : "gpt-damaged");
	d->gpt_tables_sound = d->gpt_primary_valid && disk_gpt_sound(path, ss);
	if (d->gpt_primary || d->gpt_backup)
		d->gpt_foreign_entries = disk_gpt_foreign_entries(path, ss, d->size);
}

#define SUM_SPAN (64U << 10)

/* What was on the disk, cheaply: its first and last 64 KiB. */
static void probe_head_sum(const char *path, struct disk_info *d)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = calloc(2, SUM_SPAN);
	uint8_t h[8];
	if (fd < 0 || !buf || d->size < 2 * SUM_SPAN)
		return;
	if (pread(fd, buf, SUM_SPAN, 0) != SUM_SPAN ||
	    pread(fd, buf + SUM_SPAN, SUM_SPAN, (off_t)(d->size - SUM_SPAN)) != SUM_SPAN)
		return;
	crypto_generichash(h, sizeof(h), buf, 2 * SUM_SPAN, NULL, 0);
	for (int i = 0; i < 8; i++)
		snprintf(d->head_sum + 2 * i, 3, "%02x", h[i]);
}

void disk_fingerprint(const struct disk_info *d, char *out, size_t n)
{
	char f[256];
	disk_found_str(d, f, sizeof(f));
	(void)!snprintf(out, n, "%.40s#%s", f, d->head_sum);
}

bool disk_areas_blank(const char *path, const struct disk_plan_part *parts, int n)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = malloc(DISK_MIB);
	if (fd < 0 || !buf)
		return false;
	for (int i = 0; i < n; i++) {
		if (pread(fd, buf, DISK_MIB, (off_t)parts[i].start) != (ssize_t)DISK_MIB)
			return false;
		for (size_t k = 0; k < DISK_MIB; k++)
			if (buf[k])
				return false;
	}
	return true;
}

static void block_facts(const char *path, struct disk_info *d)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return;
	if (S_ISREG(st.st_mode)) {
		d->is_file = true;
		return;
	}
	if (!S_ISBLK(st.st_mode))
		return;
	char sysdir[128], part[8];
	snprintf(sysdir, sizeof(sysdir), "/sys/dev/block/%u:%u", major(st.st_rdev),
		 minor(st.st_rdev));
	read_attr(sysdir, "partition", part, sizeof(part));
	d->is_partition = part[0] != '\0';
	sysfs_facts(sysdir, d);
}

int disk_probe(const char *path, struct disk_info *ret)
{
	struct disk_info d = {0};
	snprintf(d.path, sizeof(d.path), "%s", path);
	struct stat st;
	if (stat(path, &st) < 0)
		return log_error_errno(-errno, "Failed to stat disk %s", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return log_error_errno(-ENOTBLK, "%s is neither a block device nor an image file",
				       path);
	block_facts(path, &d);
	if (d.is_partition)
		return log_error_errno(-EINVAL, "%s is a partition, not a whole disk", path);
	int r = probe_sigs(path, &d);
	if (r < 0)
		return log_error_errno(r, "Failed to probe %s with libblkid", path);
	r = probe_parts(path, &d);
	if (r < 0)
		return log_error_errno(r, "Failed to read the partition table of %s", path);
	probe_gpt_raw(path, &d);
	probe_head_sum(path, &d);
	*ret = d;
	return 0;
}

uint64_t disk_dev_size(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint64_t size = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return 0;
	if (S_ISREG(st.st_mode))
		return (uint64_t)st.st_size;
	return ioctl(fd, BLKGETSIZE64, &size) < 0 ? 0 : size;
}
