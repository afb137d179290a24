/* Raw GPT access for the one thing libparted 3.5 cannot do: set an arbitrary partition
 * type GUID (ped_partition_set_type_uuid arrived in 3.6). Both tables are rewritten with
 * their CRCs; the headers must be valid before anything is written. */
#include "disk.h"
#include "log.h"

#include <ctype.h>
#include <endian.h>
#include <fcntl.h>
#include <string.h>

uint32_t disk_crc32(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t c = 0xffffffffU;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320U & (0U - (c & 1)));
	}
	return ~c;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* GPT stores the first three fields little-endian. */
static const int guid_order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

int disk_guid_parse(const char *s, uint8_t out[16])
{
	uint8_t b[16];
	int n = 0;
	if (strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		int h = hexval(s[i]), l = hexval(s[i + 1]);
		if (h < 0 || l < 0)
			return -EINVAL;
		b[n++] = (uint8_t)(h << 4 | l);
		i++;
	}
	for (int i = 0; i < 16; i++)
		out[guid_order[i]] = b[i];
	return 0;
}

void disk_guid_format(const uint8_t in[16], char out[40])
{
	uint8_t b[16];
	for (int i = 0; i < 16; i++)
		b[i] = in[guid_order[i]];
	snprintf(out, 40, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

struct gpt_hdr {
	uint64_t my_lba, alt_lba, entries_lba;
	uint32_t n_entries, entry_size, hdr_size;
};

static int read_hdr(int fd, unsigned ss, uint64_t lba, uint8_t *buf, struct gpt_hdr *h)
{
	if (pread(fd, buf, ss, (off_t)(lba * ss)) != (ssize_t)ss)
		return -EIO;
	if (memcmp(buf, "EFI PART", 8))
		return -EBADMSG;
	uint32_t hs, crc, v32;
	uint64_t v64;
	memcpy(&hs, buf + 12, 4);
	hs = le32toh(hs);
	if (hs < 92 || hs > ss)
		return -EBADMSG;
	memcpy(&crc, buf + 16, 4);
	memset(buf + 16, 0, 4);
	if (disk_crc32(buf, hs) != le32toh(crc))
		return -EBADMSG;
	h->hdr_size = hs;
	memcpy(&v64, buf + 24, 8);
	h->my_lba = le64toh(v64);
	memcpy(&v64, buf + 32, 8);
	h->alt_lba = le64toh(v64);
	memcpy(&v64, buf + 72, 8);
	h->entries_lba = le64toh(v64);
	memcpy(&v32, buf + 80, 4);
	h->n_entries = le32toh(v32);
	memcpy(&v32, buf + 84, 4);
	h->entry_size = le32toh(v32);
	if (h->my_lba != lba || h->entry_size < 128 || h->entry_size > 4096 || h->n_entries > 4096)
		return -EBADMSG;
	return 0;
}

/* Compares a UTF-16LE GPT name with an ASCII one. */
static bool name_is(const uint8_t *e, const char *name)
{
	size_t n = strlen(name);
	if (n > 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		uint16_t c = (uint16_t)(e[56 + 2 * i] | e[57 + 2 * i] << 8);
		if (c != (i < n ? (uint8_t)name[i] : 0))
			return false;
	}
	return true;
}

/* A table as read: the header's sector, its fields, and the entries. */
struct gpt_table {
	uint8_t *hb;
	struct gpt_hdr h;
	uint8_t *tab;
	size_t tl;
};

static void table_free(struct gpt_table *t)
{
	free(t->hb);
	free(t->tab);
}

/* Reads the header at lba and its entries; the header must pass its CRC, and the entries
 * theirs when entries_crc (a torn write may have left them behind their header). */
static int read_table(int fd, unsigned ss, uint64_t lba, bool entries_crc, struct gpt_table *t)
{
	t->hb = malloc(ss);
	if (!t->hb)
		return -ENOMEM;
	int r = read_hdr(fd, ss, lba, t->hb, &t->h);
	if (r < 0)
		return r;
	t->tl = (size_t)t->h.n_entries * t->h.entry_size;
	t->tab = malloc(t->tl);
	if (!t->tab)
		return -ENOMEM;
	if (pread(fd, t->tab, t->tl, (off_t)(t->h.entries_lba * ss)) != (ssize_t)t->tl)
		return -EIO;
	uint32_t crc;
	memcpy(&crc, t->hb + 88, 4);
	if (entries_crc && disk_crc32(t->tab, t->tl) != le32toh(crc))
		return -EBADMSG;
	return 0;
}

/* The header's own CRC, stamped again after a change to it. */
static void seal_hdr(uint8_t *hb, uint32_t hdr_size)
{
	memset(hb + 16, 0, 4);
	uint32_t crc = htole32(disk_crc32(hb, hdr_size));
	memcpy(hb + 16, &crc, 4);
}

static int patch_table(int fd, unsigned ss, uint64_t lba, const char *const names[],
		       const uint8_t (*guids)[16], int n, const uint8_t *disk_guid,
		       uint64_t *ret_alt)
{
	_cleanup_(table_free) struct gpt_table t = {0};
	int r = read_table(fd, ss, lba, true, &t);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < t.h.n_entries; i++)
		for (int k = 0; k < n; k++)
			if (name_is(t.tab + (size_t)i * t.h.entry_size, names[k]))
				memcpy(t.tab + (size_t)i * t.h.entry_size, guids[k], 16);
	uint32_t crc = htole32(disk_crc32(t.tab, t.tl));
	memcpy(t.hb + 88, &crc, 4);
	if (disk_guid)
		memcpy(t.hb + 56, disk_guid, 16);
	seal_hdr(t.hb, t.h.hdr_size);
	if (pwrite(fd, t.tab, t.tl, (off_t)(t.h.entries_lba * ss)) != (ssize_t)t.tl ||
	    pwrite(fd, t.hb, ss, (off_t)(lba * ss)) != (ssize_t)ss)
		return -errno ? -errno : -EIO;
	*ret_alt = t.h.alt_lba;
	return 0;
}

/* Header and entries at lba pass their CRCs. */
static int check_table(int fd, unsigned ss, uint64_t lba, uint64_t *ret_alt)
{
	_cleanup_(table_free) struct gpt_table t = {0};
	int r = read_table(fd, ss, lba, true, &t);
	if (r < 0)
		return r;
	*ret_alt = t.h.alt_lba;
	return 0;
}

/* Entries in the table at lba (header CRC good; the entries' CRC may be torn) that are in
 * use and not named cmpt-*. */
static bool table_has_foreign(int fd, unsigned ss, uint64_t lba)
{
	_cleanup_(table_free) struct gpt_table t = {0};
	static const uint8_t zero[16];
	if (read_table(fd, ss, lba, false, &t) < 0)
		return false;
	for (uint32_t i = 0; i < t.h.n_entries; i++) {
		const uint8_t *e = t.tab + (size_t)i * t.h.entry_size;
		if (!memcmp(e, zero, 16))
			continue;
		static const char pfx[] = "cmpt-";
		for (size_t k = 0; k < sizeof(pfx) - 1; k++)
			if (e[56 + 2 * k] != (uint8_t)pfx[k] || e[57 + 2 * k] != 0)
				return true;
	}
	return false;
}

bool disk_gpt_foreign_entries(const char *path, unsigned sector_size, uint64_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || size < 4ULL * sector_size)
		return false;
	return table_has_foreign(fd, sector_size, 1) ||
	       table_has_foreign(fd, sector_size, size / sector_size - 1);
}

bool disk_gpt_sound(const char *path, unsigned sector_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t alt, dummy;
	return fd >= 0 && check_table(fd, sector_size, 1, &alt) == 0 &&
	       check_table(fd, sector_size, alt, &dummy) == 0;
}

int disk_gpt_set_types(const char *path, unsigned sector_size, const char *const names[],
		       const char *const guids[], int n)
{
	return disk_gpt_set_types_guid(path, sector_size, names, guids, n, NULL);
}

int disk_gpt_set_types_guid(const char *path, unsigned sector_size, const char *const names[],
			    const char *const guids[], int n, const char *disk_guid)
{
	uint8_t g[_DISK_PART_MAX][16], dg[16];
	if (n > _DISK_PART_MAX || (disk_guid && disk_guid_parse(disk_guid, dg) < 0))
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (disk_guid_parse(guids[i], g[i]) < 0)
			return -EINVAL;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "Failed to open %s", path);
	uint64_t alt = 0, dummy;
	/* Check both headers before writing either. */
	_cleanup_free_ uint8_t *hb = malloc(sector_size);
	struct gpt_hdr h;
	if (!hb)
		return -ENOMEM;
	int r = read_hdr(fd, sector_size, 1, hb, &h);
	if (r < 0 || read_hdr(fd, sector_size, h.alt_lba, hb, &h) < 0)
		return log_error_errno(r < 0 ? r : -EBADMSG,
				       "%s: GPT headers not valid, type GUIDs not set", path);
	const uint8_t *dgp = disk_guid ? dg : NULL;
	r = patch_table(fd, sector_size, 1, names, (const uint8_t(*)[16])g, n, dgp, &alt);
	if (r >= 0)
		r = patch_table(fd, sector_size, alt, names, (const uint8_t(*)[16])g, n, dgp,
				&dummy);
	if (r < 0)
		return log_error_errno(r, "Failed to set the partition types on %s", path);
	if (fsync(fd) < 0)
		return log_error_errno(-errno, "Failed to sync %s", path);
	return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool entry_ours(const uint8_t *e)
{
	static const char pfx[] = "cmpt-";
	if (all_zero(e, 128))
		return true;
	for (size_t k = 0; k < sizeof(pfx) - 1; k++)
		if (e[56 + 2 * k] != (uint8_t)pfx[k] || e[57 + 2 * k] != 0)
			return false;
	return true;
}

/* libparted's backup: 128 entries of 128 bytes before the header in the last LBA. */
#define TAIL_ENTRIES_BYTES (128 * 128)

bool disk_gpt_tail_ours(const char *path, unsigned sector_size, uint64_t size)
{
	uint64_t ss = sector_size, last = size / ss - 1, es = TAIL_ENTRIES_BYTES / ss;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = malloc((es + 1) * ss);
	_cleanup_free_ uint8_t *hb = malloc(ss);
	struct gpt_hdr h;
	if (fd < 0 || !buf || !hb || size < 64 * ss)
		return false;
	if (pread(fd, buf, (es + 1) * ss, (off_t)((last - es) * ss)) != (ssize_t)((es + 1) * ss))
		return false;
	if (!all_zero(buf + es * ss, ss) && read_hdr(fd, sector_size, last, hb, &h) < 0)
		return false;
	for (uint64_t i = 0; i < es * ss / 128; i++)
		if (!entry_ours(buf + i * 128))
			return false;
	return true;
}

/* The backup table at alt (sound) written again at the last LBA: entries, then header. */
static int copy_backup(int fd, unsigned ss, uint64_t alt, uint64_t last)
{
	_cleanup_(table_free) struct gpt_table t = {0};
	int r = read_table(fd, ss, alt, true, &t);
	if (r < 0)
		return r;
	uint64_t es = (t.tl + ss - 1) / ss, v64;
	if (last < es + 2)
		return -EINVAL;
	v64 = htole64(last);
	memcpy(t.hb + 24, &v64, 8);
	v64 = htole64(1);
	memcpy(t.hb + 32, &v64, 8);
	v64 = htole64(last - es);
	memcpy(t.hb + 72, &v64, 8);
	seal_hdr(t.hb, t.h.hdr_size);
	if (pwrite(fd, t.tab, t.tl, (off_t)((last - es) * ss)) != (ssize_t)t.tl || fsync(fd) < 0 ||
	    pwrite(fd, t.hb, ss, (off_t)(last * ss)) != (ssize_t)ss || fsync(fd) < 0)
		return -errno ? -errno : -EIO;
	return 0;
}

int disk_gpt_backup_to_end(const char *path, unsigned sector_size, uint64_t size)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "Failed to open %s", path);
	uint64_t alt, dummy, last = size / sector_size - 1;
	/* A torn primary: the backup at the end is what is read; a sound table already at the
	 * end: an earlier copy. Nothing to copy either way. */
	if (check_table(fd, sector_size, 1, &alt) < 0 || alt == last ||
	    check_table(fd, sector_size, last, &dummy) == 0)
		return 0;
	if (alt > last || check_table(fd, sector_size, alt, &dummy) < 0)
		return log_error_errno(-EBADMSG, "%s: the backup GPT is not sound, not growing",
				       path);
	if (!disk_gpt_tail_ours(path, sector_size, size))
		return log_error_errno(-ENOTEMPTY, "%s: the end of the disk is not blank", path);
	int r = copy_backup(fd, sector_size, alt, last);
	if (r < 0)
		return log_error_errno(r, "Failed to copy the backup GPT to the end of %s", path);
	return 0;
}
