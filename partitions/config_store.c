/* The last-known-good configuration: copies on cmpt-state, the journal's good/failed
 * records, and the boot choice (config_store.h). */
#include "config_store.h"
#include "bootstrap.h"
#include "disk.h"
#include "log.h"

#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 64
#define CFG_STORE_FORMAT 1

/* ---- copies ---- */

static bool slot_geom(const struct journal_dev *d, int k, uint64_t *off, uint64_t *len)
{
	if (d->size < CONFIG_STORE_OFFSET + 2 * 4096)
		return false;
	uint64_t half = (d->size - CONFIG_STORE_OFFSET) / 2 / 4096 * 4096;
	*off = d->offset + CONFIG_STORE_OFFSET + (uint64_t)k * half;
	*len = half;
	return true;
}

struct copy_hdr {
	uint64_t version;
	uint32_t len;
	uint8_t hash[32];
};

static int read_hdr(int fd, uint64_t off, uint64_t cap, struct copy_hdr *h)
{
	uint8_t b[HDR];
	uint32_t v, hs;
	if (pread(fd, b, HDR, (off_t)off) != HDR)
		return -EIO;
	memcpy(&v, b + 8, 4);
	memcpy(&hs, b + 12, 4);
	memcpy(&h->version, b + 16, 8);
	memcpy(&h->len, b + 24, 4);
	memcpy(h->hash, b + 32, 32);
	h->version = le64toh(h->version);
	h->len = le32toh(h->len);
	if (memcmp(b, CONFIG_STORE_MAGIC, 8) || le32toh(v) != CFG_STORE_FORMAT ||
	    le32toh(hs) != HDR || h->len > cap - HDR || h->len > CFG_MAX_TEXT)
		return -EBADMSG;
	return 0;
}

static int write_copy(const struct journal_dev *d, int k, const char *text, size_t len,
		      uint64_t version, const uint8_t hash[32])
{
	uint64_t off, cap;
	if (!slot_geom(d, k, &off, &cap) || len > cap - HDR)
		return -ENOSPC;
	_cleanup_free_ uint8_t *b = calloc(1, HDR + len);
	_cleanup_close_ int fd = open(d->path, O_RDWR | O_CLOEXEC);
	if (!b || fd < 0)
		return b ? -errno : -ENOMEM;
	uint32_t v = htole32(CFG_STORE_FORMAT), hs = htole32(HDR), l = htole32((uint32_t)len);
	uint64_t ver = htole64(version);
	memcpy(b, CONFIG_STORE_MAGIC, 8);
	memcpy(b + 8, &v, 4);
	memcpy(b + 12, &hs, 4);
	memcpy(b + 16, &ver, 8);
	memcpy(b + 24, &l, 4);
	memcpy(b + 32, hash, 32);
	memcpy(b + HDR, text, len);
	if (pwrite(fd, b, HDR + len, (off_t)off) != (ssize_t)(HDR + len) || fsync(fd) < 0)
		return -errno ? -errno : -EIO;
	return 0;
}

/* The slot holding hash's copy (header only), or -1. */
static int slot_of(const struct journal_dev *d, const uint8_t *hash)
{
	_cleanup_close_ int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	for (int k = 0; hash && fd >= 0 && k < 2; k++) {
		uint64_t off, cap;
		struct copy_hdr h;
		if (slot_geom(d, k, &off, &cap) && read_hdr(fd, off, cap, &h) == 0 &&
		    !memcmp(h.hash, hash, 32))
			return k;
	}
	return -1;
}

int config_store_save(const struct journal_dev *devs, int n, const char *text, size_t len,
		      uint64_t version, const uint8_t hash[32], const uint8_t *skip_hash)
{
	int ok = 0, err = -ENODEV;
	for (int i = 0; i < n; i++) {
		int k = slot_of(&devs[i], skip_hash) == 0 ? 1 : 0;
		int r = write_copy(&devs[i], k, text, len, version, hash);
		if (r < 0) {
			log_warn_errno(r, "%s: cannot keep the configuration copy", devs[i].path);
			err = r;
		} else {
			ok++;
		}
	}
	return ok ? 0 : err;
}

static int load_one(const struct journal_dev *d, const uint8_t hash[32], char **ret_text,
		    size_t *ret_len, uint64_t *ret_version)
{
	_cleanup_close_ int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	for (int k = 0; fd >= 0 && k < 2; k++) {
		uint64_t off, cap;
		struct copy_hdr h;
		uint8_t got[32];
		if (!slot_geom(d, k, &off, &cap) || read_hdr(fd, off, cap, &h) < 0 ||
		    memcmp(h.hash, hash, 32))
			continue;
		char *t = malloc((size_t)h.len + 1);
		if (!t)
			return -ENOMEM;
		if (pread(fd, t, h.len, (off_t)(off + HDR)) != (ssize_t)h.len) {
			free(t);
			continue;
		}
		crypto_generichash(got, 32, (const uint8_t *)t, h.len, NULL, 0);
		if (sodium_memcmp(got, hash, 32)) {
			free(t);
			continue;
		}
		t[h.len] = '\0';
		*ret_text = t;
		*ret_len = h.len;
		*ret_version = h.version;
		return 0;
	}
	return -ENOENT;
}

int config_store_load(const struct journal_dev *devs, int n, const uint8_t hash[32],
		      char **ret_text, size_t *ret_len, uint64_t *ret_version)
{
	for (int i = 0; i < n; i++)
		if (load_one(&devs[i], hash, ret_text, ret_len, ret_version) == 0)
			return 0;
	return -ENOENT;
}

int config_store_find_devs(const char *sysfs_root, struct journal_dev *devs, int max)
{
	char(*paths)[CFG_PATH_MAX] = calloc(DISK_MAX, CFG_PATH_MAX);
	struct disk_info *d = calloc(1, sizeof(*d));
	int k = 0;
	int n = paths && d ? disk_list_sysfs(sysfs_root, paths, DISK_MAX) : -ENOMEM;
	for (int i = 0; i < n && k < max; i++) {
		if (disk_auto_excluded(sysfs_root, paths[i] + 5, NULL) ||
		    disk_probe(paths[i], d) < 0)
			continue;
		for (int p = 0; p < d->n_parts && k < max; p++) {
			if (strcmp(d->parts[p].name, disk_part_name(DISK_PART_STATE)))
				continue;
			disk_part_path(paths[i], d->parts[p].number, devs[k].path,
				       sizeof(devs[k].path));
			devs[k].offset = d->is_file ? d->parts[p].start : 0;
			devs[k++].size = d->parts[p].size;
		}
	}
	free(paths);
	free(d);
	return n < 0 ? n : k;
}

/* ---- the agent's use ---- */

struct config_lkg {
	struct journal_dev devs[JOURNAL_MAX_DEVS];
	int n_devs;
	struct journal_state *j;
	bool loaded;
	struct disk_module *disks;
};

struct config_lkg *config_lkg_new(const char *state_path, bool scan, const char *sysfs_root)
{
	struct config_lkg *l = calloc(1, sizeof(*l));
	if (!l || !(l->j = calloc(1, sizeof(*l->j)))) {
		free(l);
		return NULL;
	}
	struct stat st;
	if (state_path && stat(state_path, &st) == 0) {
		snprintf(l->devs[0].path, sizeof(l->devs[0].path), "%s", state_path);
		l->devs[0].size = (uint64_t)st.st_size;
		l->n_devs = 1;
	}
	if (scan) {
		int n = config_store_find_devs(sysfs_root ? sysfs_root : "/sys",
					       l->devs + l->n_devs, JOURNAL_MAX_DEVS - l->n_devs);
		l->n_devs += n > 0 ? n : 0;
	}
	l->loaded = l->n_devs > 0 && journal_load(l->devs, l->n_devs, l->j) == 0;
	return l;
}

struct config_lkg *config_lkg_free(struct config_lkg *l)
{
	if (l)
		free(l->j);
	free(l);
	return NULL;
}

void config_lkg_attach_disks(struct config_lkg *l, struct disk_module *m)
{
	if (l && m && disk_module_journal(m))
		l->disks = m;
}

static struct journal_state *jstate(struct config_lkg *l)
{
	return l->disks ? disk_module_journal(l->disks) : l->j;
}

static const struct journal_dev *jdevs(struct config_lkg *l, int *n)
{
	if (l->disks) {
		const struct disk_bootstrap_result *r = disk_module_result(l->disks);
		*n = r->n_jdevs;
		return r->jdevs;
	}
	*n = l->n_devs;
	return l->devs;
}

const struct journal_dev *config_lkg_devs(struct config_lkg *l, int *n)
{
	*n = 0;
	return l ? jdevs(l, n) : NULL;
}

static int jstore(struct config_lkg *l)
{
	if (l->disks)
		return disk_module_journal_store(l->disks);
	if (l->n_devs == 0)
		return -ENODEV;
	int r = journal_store(l->devs, l->n_devs, l->j);
	l->loaded = l->loaded || r >= 0;
	return r;
}

bool config_lkg_failed(const struct journal_state *j, uint64_t version, const uint8_t hash[32])
{
	for (int i = 0; i < j->n_failed; i++)
		if (j->failed[i].version == version && !memcmp(j->failed[i].hash, hash, 32))
			return true;
	return false;
}

static void config_event(const char *action, uint64_t version, const uint8_t hash[32])
{
	char hx[65];
	struct event ev;
	sodium_bin2hex(hx, sizeof(hx), hash, 32);
	hx[16] = '\0';
	event_begin(&ev, "config");
	event_add(&ev, "action", action);
	event_add_u64(&ev, "version", version);
	event_add(&ev, "hash", hx);
	event_emit(&ev);
}

static void record_failed(struct config_lkg *l, uint64_t version, const uint8_t hash[32])
{
	struct journal_state *j = jstate(l);
	if (config_lkg_failed(j, version, hash))
		return;
	journal_add_failed_config(j, version, hash);
	config_event("failed", version, hash);
	if (jstore(l) < 0)
		log_warn("no state journal to record the failed configuration in, ignoring");
}

/* A file that does not load is failed as version 0 with the hash of its bytes. */
static void record_broken(struct config_lkg *l, const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	uint8_t h[32];
	if (l->n_devs == 0 || read_full_file(path, CFG_MAX_TEXT, &text, &len) < 0)
		return;
	crypto_generichash(h, 32, (const uint8_t *)text, len, NULL, 0);
	record_failed(l, 0, h);
}

/* The copy with `hash` stored on cmpt-state (*ret_text, *ret_len), parsed for path: 0, or
 * -errno with err empty when there is no such copy, filled when it does not parse. */
static int stored_cfg(struct config_lkg *l, const uint8_t hash[32], const char *path,
		      const struct cfg_override *ovr, size_t n_ovr, char **ret_text,
		      size_t *ret_len, struct cfg **ret, struct strbuf *err)
{
	int n;
	const struct journal_dev *d = jdevs(l, &n);
	uint64_t version;
	int r = config_store_load(d, n, hash, ret_text, ret_len, &version);
	return r < 0 ? r : cfg_parse(path, *ret_text, *ret_len, ovr, n_ovr, ret, err);
}

static int boot_stored(struct config_lkg *l, const char *path, const struct cfg_override *ovr,
		       size_t n_ovr, const char *why, struct cfg **ret)
{
	const struct journal_state *j = jstate(l);
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (!l->loaded || !j->has_good)
		return -ENOENT;
	struct strbuf err;
	sb_init(&err);
	int r = stored_cfg(l, j->good.hash, path, ovr, n_ovr, &text, &len, ret, &err);
	if (r < 0 && !err.buf)
		log_error_errno(r,
				"no copy of the last-known-good configuration (version %" PRIu64
				") on cmpt-state",
				j->good.version);
	else if (r < 0)
		log_error("the last-known-good configuration does not load either:\n%s", err.buf);
	sb_free(&err);
	if (r < 0)
		return r;
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "config", "last-known-good");
	event_add_u64(&ev, "version", (*ret)->version);
	event_add(&ev, "reason", why);
	event_emit(&ev);
	return 0;
}

const struct journal_state *config_lkg_state(struct config_lkg *l)
{
	if (!l || (!l->loaded && !l->disks))
		return NULL;
	return jstate(l);
}

bool config_lkg_refuses(struct config_lkg *l, const struct cfg *c, char *why, size_t n)
{
	const struct journal_state *j = l ? jstate(l) : NULL;
	if (!j || (!l->loaded && !l->disks))
		return false;
	if (config_lkg_failed(j, c->version, c->hash))
		snprintf(why, n, "version %" PRIu64 " failed on this node before", c->version);
	else if (j->has_good && c->version < j->good.version)
		snprintf(why, n, "version %" PRIu64 " is older than the last-known-good %" PRIu64,
			 c->version, j->good.version);
	else
		return false;
	return true;
}

static void drop_trial(struct config_lkg *l, bool failed)
{
	struct journal_state *j = jstate(l);
	struct journal_cfgver t = j->trial;
	j->has_trial = false;
	if (failed)
		record_failed(l, t.version, t.hash); /* stores */
	else if (jstore(l) < 0)
		log_warn("cannot update the state journal, ignoring");
}

/* The trial's stored copy, parsed for path; written over path when the file there is not
 * it (PID 1: the image's file), so that reloads and peers read what runs. */
static int trial_load(struct config_lkg *l, const char *path, const struct cfg_override *ovr,
		      size_t n_ovr, bool write, struct cfg **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = stored_cfg(l, jstate(l)->trial.hash, path, ovr, n_ovr, &text, &len, ret, NULL);
	if (r >= 0 && write && (r = write_file_atomic(path, text, len)) < 0)
		log_warn_errno(r, "cannot write the stored configuration over %s, continuing",
			       path);
	return r < 0 && !*ret ? r : 0;
}

/* A trial version (fetched or pushed, on probation) wins over an older or broken image
 * file; each boot with it is counted, and one booted CONFIG_TRIAL_BOOTS times without
 * surviving its probation has failed when there is a last-known-good to boot instead (the
 * normal choice follows: the image's file or the last-known-good). *c: the image's configuration,
 * NULL when it does not load. */
static void trial_choice(struct config_lkg *l, const char *path, const struct cfg_override *ovr,
			 size_t n_ovr, struct cfg **c)
{
	struct journal_state *j = jstate(l);
	if (!l->loaded || !j->has_trial)
		return;
	const struct journal_cfgver t = j->trial;
	bool image_is = *c && !memcmp((*c)->hash, t.hash, 32);
	if (!image_is && *c && (*c)->version >= t.version)
		return; /* a newer image: its own choice */
	bool worn = j->trial_boots >= CONFIG_TRIAL_BOOTS && j->has_good; /* else nothing left */
	if (config_lkg_failed(j, t.version, t.hash) || worn) {
		log_error("version %" PRIu64 " booted %u times without surviving its probation",
			  t.version, (unsigned)j->trial_boots);
		drop_trial(l, true);
		return;
	}
	struct cfg *s = NULL;
	if (!image_is && trial_load(l, path, ovr, n_ovr, true, &s) < 0) {
		log_error("the stored copy of version %" PRIu64 " does not load", t.version);
		drop_trial(l, true);
		return;
	}
	j->trial_boots++;
	if (jstore(l) < 0)
		log_warn("cannot count the boot in the state journal, ignoring");
	if (s) {
		cfg_free(*c);
		*c = s;
	}
	struct event ev;
	event_begin(&ev, "boot");
	event_add(&ev, "config", "trial");
	event_add_u64(&ev, "version", t.version);
	event_add_u64(&ev, "boots", j->trial_boots);
	event_emit(&ev);
}

int config_lkg_boot(struct config_lkg *l, const char *path, const struct cfg_override *ovr,
		    size_t n_ovr, struct cfg **ret, struct strbuf *err)
{
	struct cfg *c = NULL;
	char why[160];
	int r = cfg_load(path, ovr, n_ovr, &c, err);
	if (!l) { /* out of memory when it was made: the image's file alone */
		*ret = r >= 0 ? c : NULL;
		return r;
	}
	if (r < 0)
		record_broken(l, path);
	trial_choice(l, path, ovr, n_ovr, &c);
	if (c && r < 0)
		goto image; /* the trial, in place of a broken file */
	if (r >= 0) {
		if (!config_lkg_refuses(l, c, why, sizeof(why)))
			goto image;
		log_error("configuration %s refused: %s", path, why);
		sb_printf(err, "%s: %s\n", path, why);
		cfg_free(c);
		r = -ESTALE;
	} else {
		snprintf(why, sizeof(why), "the image's configuration does not load");
	}
	return boot_stored(l, path, ovr, n_ovr, why, ret) == 0 ? 0 : r;
image:
	*ret = c;
	return 0;
}

static void forget_failed(struct journal_state *j, uint64_t version, const uint8_t hash[32])
{
	int k = 0;
	for (int i = 0; i < j->n_failed; i++)
		if (j->failed[i].version != version || memcmp(j->failed[i].hash, hash, 32))
			j->failed[k++] = j->failed[i];
	j->n_failed = k;
}

static bool is_good(struct config_lkg *l, const struct cfg *c)
{
	const struct journal_state *j = jstate(l);
	int n;
	const struct journal_dev *d = jdevs(l, &n);
	_cleanup_free_ char *text = NULL;
	size_t len;
	uint64_t v;
	return j->has_good && j->good.version == c->version && !memcmp(j->good.hash, c->hash, 32) &&
	       config_store_load(d, n, c->hash, &text, &len, &v) == 0;
}

int config_lkg_record(struct config_lkg *l, const struct cfg *c, bool hooks_ok)
{
	struct journal_state *j = l ? jstate(l) : NULL;
	int n;
	if (!j)
		return -ENODEV;
	const struct journal_dev *d = jdevs(l, &n);
	if (n == 0)
		return -ENODEV;
	bool trial = j->has_trial && !memcmp(j->trial.hash, c->hash, 32);
	if (trial)
		j->has_trial = false; /* its probation is over, either way */
	if (!hooks_ok) {
		record_failed(l, c->version, c->hash);
		return 0;
	}
	if (j->has_trial && j->trial.version <= c->version)
		j->has_trial = false; /* an older trial has nothing left to prove */
	if (is_good(l, c))
		return trial ? jstore(l) : 0;
	_cleanup_free_ char *text = NULL;
	size_t len;
	uint8_t h[32];
	uint64_t v;
	int r;
	if (trial && config_store_load(d, n, c->hash, &text, &len, &v) == 0)
		goto good; /* kept when it was fetched */
	r = read_full_file(c->path, CFG_MAX_TEXT, &text, &len);
	if (r < 0)
		return log_warn_errno(r, "cannot read %s again to keep a copy", c->path);
	crypto_generichash(h, 32, (const uint8_t *)text, len, NULL, 0);
	if (memcmp(h, c->hash, 32))
		return log_warn_errno(-ESTALE, "%s changed since it was loaded, no copy kept",
				      c->path);
	r = config_store_save(d, n, text, len, c->version, c->hash,
			      j->has_good ? j->good.hash : NULL);
	if (r < 0)
		return r;
good:
	journal_set_good_config(j, c->version, c->hash);
	forget_failed(j, c->version, c->hash); /* a retry of its hooks succeeded */
	r = jstore(l);
	if (r >= 0)
		config_event("last-known-good", c->version, c->hash);
	return r;
}

int config_lkg_trial(struct config_lkg *l, const char *text, size_t len, uint64_t version,
		     const uint8_t hash[32])
{
	struct journal_state *j = l ? jstate(l) : NULL;
	int n;
	const struct journal_dev *d = j ? jdevs(l, &n) : NULL;
	if (!j || n == 0)
		return -ENODEV;
	if (j->has_good && !memcmp(j->good.hash, hash, 32))
		return 0; /* already the good one */
	int r =
	    config_store_save(d, n, text, len, version, hash, j->has_good ? j->good.hash : NULL);
	if (r < 0)
		return r;
	journal_set_trial_config(j, version, hash);
	r = jstore(l);
	if (r >= 0)
		config_event("stored", version, hash);
	return r;
}

bool config_lkg_on_trial(struct config_lkg *l, const struct cfg *c)
{
	const struct journal_state *j = config_lkg_state(l);
	return j && j->has_trial && !memcmp(j->trial.hash, c->hash, 32);
}

int config_lkg_rollback(struct config_lkg *l, struct cfg *c, const struct cfg_override *ovr,
			size_t n_ovr, const char *reason, bool write)
{
	const struct journal_state *j = l ? jstate(l) : NULL;
	if (!j || !j->has_good || !memcmp(j->good.hash, c->hash, 32))
		return -ENOENT;
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct cfg *g = NULL;
	int r = stored_cfg(l, j->good.hash, c->path, ovr, n_ovr, &text, &len, &g, NULL);
	if (r < 0)
		return log_warn_errno(r, "no usable last-known-good configuration to roll back to");
	const char *why = cfg_topology_change(c, g);
	if (why) {
		log_warn("not rolling back to version %" PRIu64 ": %s", g->version, why);
		cfg_free(g);
		return -EBUSY;
	}
	uint64_t from = c->version;
	cfg_replace(c, g);
	if (write && (r = write_file_atomic(c->path, text, len)) < 0)
		log_warn_errno(r,
			       "cannot write the last-known-good configuration over %s, continuing",
			       c->path);
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", "rollback");
	event_add_u64(&ev, "from", from);
	event_add_u64(&ev, "to", c->version);
	event_add(&ev, "reason", reason);
	event_emit(&ev);
	return 0;
}

uint64_t config_lkg_epoch(struct config_lkg *l, enum cfg_kind k)
{
	const struct journal_state *j = l ? jstate(l) : NULL;
	return j && k < _CFG_KIND_MAX && j->roles[k].set ? j->roles[k].epoch : 0;
}

int config_lkg_record_role(struct config_lkg *l, enum cfg_kind k, const char *role, uint64_t epoch)
{
	struct journal_state *j = l ? jstate(l) : NULL;
	int n;
	if (!j || k >= _CFG_KIND_MAX || (jdevs(l, &n), n == 0))
		return -ENODEV;
	const struct journal_role *r = &j->roles[k];
	if (r->set && epoch < r->epoch)
		epoch = r->epoch; /* the highest seen stays */
	if (r->set && r->epoch == epoch && !strcmp(r->role, role))
		return 0;
	journal_set_role(j, k, role, epoch);
	return jstore(l);
}
