/* Apply a disk plan: wipe (when authorized), GPT with libparted, type GUIDs, a clean
 * journal area, then re-probe with libblkid and verify. Every step is a fault point
 * (COMPARTD_FAULT_AT) so the crash test can stop the process between any two. */
#include "disk.h"
#include "log.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <inttypes.h>
#include <parted/parted.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const step_str[_DISK_STEP_MAX] = {
    [DISK_STEP_PLAN] = "plan",	   [DISK_STEP_INTENT] = "intent",
    [DISK_STEP_WIPE] = "wipe",	   [DISK_STEP_PARTITION] = "partition",
    [DISK_STEP_TYPES] = "types",   [DISK_STEP_STATE_INIT] = "state-init",
    [DISK_STEP_VERIFY] = "verify", [DISK_STEP_DONE] = "done",
    [DISK_STEP_RAID] = "raid",	   [DISK_STEP_GPT_WRITE] = "gpt-write",
    [DISK_STEP_GROW] = "grow",	   [DISK_STEP_GROW_COPY] = "grow-copy",
};

const char *disk_step_to_str(enum disk_step s)
{
	return s < _DISK_STEP_MAX ? step_str[s] : NULL;
}

static bool fault_hit(enum disk_step s);

/* COMPARTD_FAULT_AT=<step name or number>[@K]: _exit(99) the K-th time (default first)
 * the step is reached. For the crash tests; unset, this does nothing. */
void disk_fault_point(enum disk_step s)
{
	if (!fault_hit(s))
		return;
	log_notice("fault injection: exiting at step %s", step_str[s]);
	fflush(NULL);
	_exit(99);
}

static bool fault_hit(enum disk_step s)
{
	static unsigned hits[_DISK_STEP_MAX];
	const char *f = getenv("COMPARTD_FAULT_AT");
	if (!f || !*f)
		return false;
	hits[s]++;
	char name[32];
	unsigned k = 1;
	const char *at = strchr(f, '@');
	size_t l = at ? (size_t)(at - f) : strlen(f);
	if (l >= sizeof(name))
		return false;
	memcpy(name, f, l);
	name[l] = '\0';
	if (at)
		k = (unsigned)strtoul(at + 1, NULL, 10);
	char num[8];
	snprintf(num, sizeof(num), "%d", (int)s);
	return (!strcmp(name, step_str[s]) || !strcmp(name, num)) && hits[s] == k;
}

static PedExceptionOption on_ped_exception(PedException *e)
{
	log_warn("libparted: %s", e->message);
	if (e->options & PED_EXCEPTION_IGNORE &&
	    (e->type == PED_EXCEPTION_INFORMATION || e->type == PED_EXCEPTION_WARNING))
		return PED_EXCEPTION_IGNORE;
	if (e->options & PED_EXCEPTION_CANCEL)
		return PED_EXCEPTION_CANCEL;
	return PED_EXCEPTION_UNHANDLED;
}

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t z[65536];
	while (len) {
		size_t n = len < sizeof(z) ? (size_t)len : sizeof(z);
		if (pwrite(fd, z, n, (off_t)off) != (ssize_t)n)
			return -errno ? -errno : -EIO;
		off += n;
		len -= n;
	}
	return 0;
}

/* Authorized wipe: the first and last MiB (partition tables, most superblocks, md 0.90
 * and 1.0 at the end), then every signature libblkid still finds. */
static int wipe_disk(const struct disk_info *d)
{
	_cleanup_close_ int fd = open(d->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "Failed to open %s for wiping", d->path);
	uint64_t head = d->size < DISK_MIB ? d->size : DISK_MIB;
	int r = zero_range(fd, 0, head);
	if (r >= 0 && d->size > head)
		r = zero_range(fd, d->size - head, head);
	if (r < 0)
		return log_error_errno(r, "Failed to wipe %s", d->path);
	blkid_probe pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		blkid_free_probe(pr);
		return log_error_errno(-EIO, "Failed to probe %s for wiping", d->path);
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT);
	for (int guard = 0; guard < 64 && blkid_do_probe(pr) == 0; guard++)
		if (blkid_do_wipe(pr, 0) < 0) {
			r = -EIO;
			break;
		}
	blkid_free_probe(pr);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r < 0)
		return log_error_errno(r, "Failed to wipe the signatures on %s", d->path);
	log_notice("%s: wiped (%s)", d->path, d->n_sigs ? d->sigs[0] : "");
	return 0;
}

static int add_part(PedDisk *disk, const struct disk_plan_part *pp)
{
	PedDevice *dev = disk->dev;
	PedSector s = (PedSector)(pp->start / (uint64_t)dev->sector_size);
	PedSector len = (PedSector)(pp->size / (uint64_t)dev->sector_size);
	PedPartition *part = ped_partition_new(disk, PED_PARTITION_NORMAL, NULL, s, s + len - 1);
	if (!part)
		return -EIO;
	int ok = ped_partition_set_name(part, disk_part_name(pp->kind));
	if (ok && (pp->kind == DISK_PART_INFRA || pp->kind == DISK_PART_ADMIN))
		ok = ped_partition_set_flag(part, PED_PARTITION_RAID, 1);
	PedGeometry *g = ok ? ped_geometry_new(dev, s, len) : NULL;
	PedConstraint *c = g ? ped_constraint_exact(g) : NULL;
	ok = c && ped_disk_add_partition(disk, part, c);
	if (c)
		ped_constraint_destroy(c);
	if (g)
		ped_geometry_destroy(g);
	if (!ok) {
		ped_partition_destroy(part);
		return -EIO;
	}
	return 0;
}

/* The five writes of libparted's GPT commit, in its order (libparted/labels/gpt.c):
 * PMBR, primary header, primary entries, backup header, backup entries. */
struct gpt_region {
	uint64_t off, len;
};

static void gpt_regions(const struct disk_info *d, struct gpt_region r[5])
{
	uint64_t ss = d->sector_size ? d->sector_size : 512, es = 128 * 128 / ss;
	uint64_t last = d->size / ss - 1;
	r[0] = (struct gpt_region){0, ss};
	r[1] = (struct gpt_region){ss, ss};
	r[2] = (struct gpt_region){2 * ss, es * ss};
	r[3] = (struct gpt_region){last * ss, ss};
	r[4] = (struct gpt_region){(last - es) * ss, es * ss};
}

/* Fault injection inside the write: after the commit, what writes K+1..5 wrote is put
 * back as it was before (the power went out after K writes), then the process exits. */
static void torn_exit(const struct disk_info *d, uint8_t *const old[5])
{
	const char *t = getenv("COMPARTD_FAULT_TORN");
	int k = t ? atoi(t) : 2;
	struct gpt_region r[5];
	gpt_regions(d, r);
	int fd = open(d->path, O_RDWR | O_CLOEXEC);
	for (int i = k < 0 ? 0 : k; fd >= 0 && i < 5; i++)
		if (old[i] && pwrite(fd, old[i], r[i].len, (off_t)r[i].off) != (ssize_t)r[i].len)
			log_warn("fault injection: cannot tear %s", d->path);
	if (fd >= 0)
		(void)!fsync(fd);
	log_notice("fault injection: power lost after %d of 5 GPT writes", k);
	fflush(NULL);
	_exit(99);
}

static void snapshot(const struct disk_info *d, uint8_t *old[5])
{
	struct gpt_region r[5];
	gpt_regions(d, r);
	_cleanup_close_ int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 5; i++) {
		old[i] = calloc(1, r[i].len);
		if (fd >= 0 && old[i] && pread(fd, old[i], r[i].len, (off_t)r[i].off) < 0)
			log_warn("fault injection: cannot read %s", d->path);
	}
}

static int write_gpt(const struct disk_info *d, const struct disk_plan *p)
{
	uint8_t *old[5] = {NULL};
	bool tear = fault_hit(DISK_STEP_GPT_WRITE);
	if (tear)
		snapshot(d, old);
	ped_exception_set_handler(on_ped_exception);
	PedDevice *dev = ped_device_get(d->path);
	if (!dev)
		return log_error_errno(-EIO, "libparted cannot open %s", d->path);
	int r = 0;
	PedDisk *disk = ped_disk_new_fresh(dev, ped_disk_type_get("gpt"));
	if (!disk)
		r = -EIO;
	for (int i = 0; r >= 0 && i < p->n_parts; i++)
		r = add_part(disk, &p->parts[i]);
	if (r >= 0 && !ped_disk_commit_to_dev(disk))
		r = -EIO;
	if (tear)
		torn_exit(d, old);
	if (r >= 0 && !d->is_file && !ped_disk_commit_to_os(disk))
		log_warn("%s: the kernel did not take the new partition table, ignoring", d->path);
	if (disk)
		ped_disk_destroy(disk);
	ped_device_destroy(dev);
	if (r < 0)
		return log_error_errno(r, "Failed to write the GPT on %s", d->path);
	return 0;
}

/* Growing an own, vetted table (the planner checked it): libparted may move the backup
 * to the end (FIX), read a torn primary from the backup our copy put there, or a torn
 * backup from the primary (OK). Anything else is refused. */
static PedExceptionOption on_ped_exception_grow(PedException *e)
{
	log_info("libparted (growing): %s", e->message);
	if (e->options & PED_EXCEPTION_FIX)
		return PED_EXCEPTION_FIX;
	if ((e->options & PED_EXCEPTION_OK) && e->type == PED_EXCEPTION_ERROR)
		return PED_EXCEPTION_OK;
	return on_ped_exception(e);
}

static PedPartition *find_guest(PedDisk *disk, bool *ret_last)
{
	PedPartition *g = NULL;
	PedSector max_end = 0;
	for (PedPartition *q = ped_disk_next_partition(disk, NULL); q;
	     q = ped_disk_next_partition(disk, q)) {
		if (q->num <= 0)
			continue;
		if (q->geom.end > max_end)
			max_end = q->geom.end;
		const char *n = ped_partition_get_name(q);
		if (n && !strcmp(n, disk_part_name(DISK_PART_GUEST)))
			g = q;
	}
	*ret_last = g && g->geom.end == max_end;
	return g;
}

static int set_guest_end(PedDisk *disk, const struct disk_plan *p)
{
	const struct disk_plan_part *pp = &p->parts[p->n_parts - 1];
	PedSector ss = disk->dev->sector_size;
	PedSector s = (PedSector)(pp->start / (uint64_t)ss);
	PedSector end = (PedSector)((pp->start + pp->size) / (uint64_t)ss) - 1;
	bool last;
	PedPartition *g = find_guest(disk, &last);
	if (pp->kind != DISK_PART_GUEST || !g || !last || g->geom.start != s || g->geom.end > end)
		return -EBADMSG;
	if (g->geom.end == end)
		return 0; /* finishing a grow: only the tables are written again */
	PedGeometry *geo = ped_geometry_new(disk->dev, s, end - s + 1);
	PedConstraint *c = geo ? ped_constraint_exact(geo) : NULL;
	int ok = c && ped_disk_set_partition_geom(disk, g, c, s, end);
	if (c)
		ped_constraint_destroy(c);
	if (geo)
		ped_geometry_destroy(geo);
	return ok ? 0 : -EIO;
}

/* libparted reads the table (moving the backup to the end may already write it), the last
 * partition, cmpt-guest, gets its new end, and both tables are written. */
static int grow_gpt(const struct disk_info *d, const struct disk_plan *p)
{
	uint8_t *old[5] = {NULL};
	bool tear = fault_hit(DISK_STEP_GPT_WRITE);
	if (tear)
		snapshot(d, old);
	ped_exception_set_handler(on_ped_exception_grow);
	PedDevice *dev = ped_device_get(d->path);
	if (!dev)
		return log_error_errno(-EIO, "libparted cannot open %s", d->path);
	int r = 0;
	PedDisk *disk = ped_disk_new(dev);
	if (!disk)
		r = -EBADMSG;
	if (r >= 0)
		r = set_guest_end(disk, p);
	if (r >= 0 && !ped_disk_commit_to_dev(disk))
		r = -EIO;
	if (tear)
		torn_exit(d, old);
	if (r >= 0 && !d->is_file && !ped_disk_commit_to_os(disk))
		log_warn("%s: the kernel did not take the grown partition, ignoring", d->path);
	if (disk)
		ped_disk_destroy(disk);
	ped_device_destroy(dev);
	ped_exception_set_handler(on_ped_exception);
	if (r < 0)
		return log_error_errno(r, "Failed to grow cmpt-guest on %s", d->path);
	return 0;
}

static int grow(const struct disk_info *d, const struct disk_plan *p)
{
	if (d->read_only)
		return log_error_errno(-EROFS, "%s is read-only", d->path);
	disk_fault_point(DISK_STEP_GROW);
	int r = disk_gpt_backup_to_end(d->path, d->sector_size ? d->sector_size : 512, d->size);
	if (r < 0)
		return r;
	disk_fault_point(DISK_STEP_GROW_COPY);
	r = grow_gpt(d, p);
	if (r < 0)
		return r;
	log_notice("%s: cmpt-guest grown to %" PRIu64 " MiB", d->path,
		   p->parts[p->n_parts - 1].size / DISK_MIB);
	return 0;
}

static int set_types(const struct disk_info *d, const struct disk_plan *p)
{
	const char *names[_DISK_PART_MAX], *guids[_DISK_PART_MAX];
	for (int i = 0; i < p->n_parts; i++) {
		names[i] = disk_part_name(p->parts[i].kind);
		guids[i] = disk_part_type_guid(p->parts[i].kind);
	}
	return disk_gpt_set_types_guid(d->path, d->sector_size ? d->sector_size : 512, names, guids,
				       p->n_parts, p->disk_guid[0] ? p->disk_guid : NULL);
}

/* A new cmpt-state starts with both journal slots zeroed, whatever the disk held before. */
static int init_state(const struct disk_info *d, const struct disk_plan *p)
{
	for (int i = 0; i < p->n_parts; i++) {
		if (p->parts[i].kind != DISK_PART_STATE)
			continue;
		_cleanup_close_ int fd = open(d->path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return log_error_errno(-errno, "Failed to open %s", d->path);
		uint64_t len = p->parts[i].size < DISK_MIB ? p->parts[i].size : DISK_MIB;
		int r = zero_range(fd, p->parts[i].start, len);
		if (r >= 0 && fsync(fd) < 0)
			r = -errno;
		if (r < 0)
			return log_error_errno(r, "Failed to clear the journal area on %s",
					       d->path);
	}
	return 0;
}

int disk_verify(const char *path, const struct disk_plan *p, char *why, size_t n)
{
	struct disk_info d;
	int r = disk_probe(path, &d);
	if (r < 0) {
		snprintf(why, n, "cannot probe");
		return r;
	}
	if (strcmp(d.pttype, "gpt")) {
		snprintf(why, n, "no GPT found");
		return -EBADMSG;
	}
	for (int i = 0; i < p->n_parts; i++) {
		const struct disk_plan_part *pp = &p->parts[i];
		const char *name = disk_part_name(pp->kind);
		const struct disk_part *f = NULL;
		for (int k = 0; k < d.n_parts; k++)
			if (!strcmp(d.parts[k].name, name))
				f = &d.parts[k];
		if (!f) {
			snprintf(why, n, "%s missing", name);
			return -EBADMSG;
		}
		if (f->start != pp->start || f->size != pp->size) {
			snprintf(why, n,
				 "%s at %" PRIu64 "+%" PRIu64 ", expected %" PRIu64 "+%" PRIu64,
				 name, f->start, f->size, pp->start, pp->size);
			return -EBADMSG;
		}
		if (strcasecmp(f->type, disk_part_type_guid(pp->kind))) {
			snprintf(why, n, "%s has type %s, expected %s", name, f->type,
				 disk_part_type_guid(pp->kind));
			return -EBADMSG;
		}
	}
	return 0;
}

static int verify(const struct disk_info *d, const struct disk_plan *p)
{
	char why[200];
	disk_fault_point(DISK_STEP_VERIFY);
	int r = disk_verify(d->path, p, why, sizeof(why));
	if (r < 0)
		return log_error_errno(r, "%s: verification failed: %s", d->path, why);
	return 0;
}

int disk_apply(const struct disk_info *d, const struct disk_plan *p)
{
	int r;
	switch (p->verdict) {
	case DISK_VERDICT_FOREIGN:
	case DISK_VERDICT_TOO_SMALL:
		return 0;
	case DISK_VERDICT_KEEP:
		if (p->grow) {
			r = grow(d, p);
			if (r < 0)
				return r;
		}
		if (p->fix_types) {
			disk_fault_point(DISK_STEP_TYPES);
			r = set_types(d, p);
			if (r < 0)
				return r;
		}
		return verify(d, p);
	case DISK_VERDICT_WIPED:
		disk_fault_point(DISK_STEP_WIPE);
		r = wipe_disk(d);
		if (r < 0)
			return r;
		break;
	case DISK_VERDICT_CREATE:
	case _DISK_VERDICT_MAX:
		break;
	}
	if (d->read_only)
		return log_error_errno(-EROFS, "%s is read-only", d->path);
	disk_fault_point(DISK_STEP_PARTITION);
	r = write_gpt(d, p);
	if (r < 0)
		return r;
	disk_fault_point(DISK_STEP_TYPES);
	r = set_types(d, p);
	if (r < 0)
		return r;
	disk_fault_point(DISK_STEP_STATE_INIT);
	r = init_state(d, p);
	if (r < 0)
		return r;
	return verify(d, p);
}

void disk_part_path(const char *disk, int number, char *out, size_t n)
{
	struct stat st;
	if (stat(disk, &st) == 0 && S_ISREG(st.st_mode)) {
		snprintf(out, n, "%s", disk);
		return;
	}
	size_t l = strlen(disk);
	bool digit_end = l && disk[l - 1] >= '0' && disk[l - 1] <= '9';
	snprintf(out, n, "%s%s%d", disk, digit_end ? "p" : "", number);
}
