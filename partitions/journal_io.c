/* The journal's I/O: two slots per cmpt-state area, O_DIRECT when the file system takes
 * it (tmpfs does not: EINVAL, then buffered), fsync always. */
#include "journal.h"
#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

#define ALIGN 4096U

static void *aligned_buf(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, ALIGN, n) != 0)
		return NULL;
	memset(p, 0, n);
	return p;
}

static int open_dev(const char *path, int flags, bool *ret_direct)
{
	int fd = open(path, flags | O_DIRECT | O_CLOEXEC);
	if (fd >= 0) {
		*ret_direct = true;
		return fd;
	}
	if (errno != EINVAL)
		return -errno;
	fd = open(path, flags | O_CLOEXEC);
	*ret_direct = false;
	return fd < 0 ? -errno : fd;
}

/* pread/pwrite that fall back to a buffered descriptor when O_DIRECT is refused. */
static ssize_t slot_io(const char *path, int *fd, bool *direct, bool wr, void *buf, size_t n,
		       off_t off)
{
	ssize_t r = wr ? pwrite(*fd, buf, n, off) : pread(*fd, buf, n, off);
	if (r < 0 && errno == EINVAL && *direct) {
		int fd2 = open(path, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd2 < 0)
			return -1;
		close(*fd);
		*fd = fd2;
		*direct = false;
		r = wr ? pwrite(*fd, buf, n, off) : pread(*fd, buf, n, off);
	}
	return r;
}

static bool area_ok(const struct journal_dev *d)
{
	return d->size >= 2ULL * JOURNAL_SLOT_SIZE && d->offset % ALIGN == 0;
}

int journal_read_dev(const struct journal_dev *d, struct journal_slot_info info[2],
		     struct journal_state *ret)
{
	if (!area_ok(d))
		return log_error_errno(-EINVAL, "%s: journal area too small or misaligned",
				       d->path);
	bool direct;
	int fd = open_dev(d->path, O_RDONLY, &direct);
	if (fd < 0)
		return log_error_errno(fd, "Failed to open journal %s", d->path);
	uint8_t *buf = aligned_buf(JOURNAL_SLOT_SIZE);
	struct journal_state *st = calloc(2, sizeof(*st));
	int best = -1;
	for (int i = 0; buf && st && i < 2; i++) {
		off_t off = (off_t)(d->offset + (uint64_t)i * JOURNAL_SLOT_SIZE);
		ssize_t l = slot_io(d->path, &fd, &direct, false, buf, JOURNAL_SLOT_SIZE, off);
		info[i].seq = 0;
		info[i].status = l == JOURNAL_SLOT_SIZE
				     ? journal_decode_slot(buf, JOURNAL_SLOT_SIZE, &st[i])
				     : -EIO;
		if (info[i].status == 0) {
			info[i].seq = st[i].seq;
			if (best < 0 || st[i].seq > st[best].seq)
				best = i;
		}
	}
	close(fd);
	int r = !buf || !st ? -ENOMEM : best < 0 ? -ENODATA : 0;
	if (r == 0)
		*ret = st[best];
	free(buf);
	free(st);
	return r;
}

static void corrupt_event(const struct journal_dev *d, int slot, int status)
{
	struct event ev;
	event_begin(&ev, "journal");
	event_add(&ev, "action", "corrupt-slot");
	event_add(&ev, "dev", d->path);
	event_add(&ev, "slot", slot ? "B" : "A");
	event_add(&ev, "error", status == -EBADMSG ? "bad-header-or-hash" : "read-failed");
	event_add_u64(&ev, "seq", 0);
	event_emit(&ev);
}

int journal_load(const struct journal_dev *devs, int n, struct journal_state *ret)
{
	if (sodium_init() < 0)
		return -EIO;
	struct journal_state *best = calloc(2, sizeof(*best)), *cur = best ? best + 1 : NULL;
	bool found = false;
	if (!best)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct journal_slot_info info[2] = {{-ENODATA, 0}, {-ENODATA, 0}};
		int r = journal_read_dev(&devs[i], info, cur);
		for (int k = 0; k < 2; k++)
			if (info[k].status != 0 && info[k].status != -ENODATA)
				corrupt_event(&devs[i], k, info[k].status);
		if (r == 0 && (!found || cur->seq > best->seq)) {
			*best = *cur;
			found = true;
		}
	}
	if (found) {
		struct event ev;
		event_begin(&ev, "journal");
		event_add(&ev, "action", "load");
		event_add_u64(&ev, "seq", best->seq);
		event_emit(&ev);
		*ret = *best;
	}
	free(best);
	return found ? 0 : -ENODATA;
}

static int write_slot(const struct journal_dev *d, int slot, uint8_t *buf, size_t len)
{
	bool direct;
	int fd = open_dev(d->path, O_RDWR, &direct);
	if (fd < 0)
		return fd;
	off_t off = (off_t)(d->offset + (uint64_t)slot * JOURNAL_SLOT_SIZE);
	ssize_t l = slot_io(d->path, &fd, &direct, true, buf, len, off);
	int r = l == (ssize_t)len ? 0 : l < 0 ? -errno : -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int journal_store(const struct journal_dev *devs, int n, struct journal_state *s)
{
	if (sodium_init() < 0)
		return -EIO;
	uint8_t *buf = aligned_buf(JOURNAL_SLOT_SIZE);
	if (!buf)
		return -ENOMEM;
	uint64_t seq = s->seq + 1;
	size_t len;
	int r = journal_encode(s, seq, buf, JOURNAL_SLOT_SIZE, &len);
	if (r < 0) {
		free(buf);
		return log_error_errno(r, "Failed to encode the journal");
	}
	len = (len + ALIGN - 1) / ALIGN * ALIGN;
	int ok = 0, slot = (int)(seq % 2);
	for (int i = 0; i < n; i++) {
		if (!area_ok(&devs[i]))
			continue;
		r = write_slot(&devs[i], slot, buf, len);
		if (r < 0)
			log_warn_errno(r, "Failed to write journal slot %c on %s, ignoring",
				       slot ? 'B' : 'A', devs[i].path);
		else
			ok++;
	}
	free(buf);
	if (!ok)
		return log_error_errno(-EIO, "The journal could not be written on any disk");
	s->seq = seq;
	struct event ev;
	event_begin(&ev, "journal");
	event_add(&ev, "action", "write");
	event_add_u64(&ev, "seq", seq);
	event_addf(&ev, "disks", "%d/%d", ok, n);
	event_emit(&ev);
	return 0;
}

/* ---- scan and repair ---- */

static const char *const verdict_str[_JOURNAL_SLOT_VERDICT_MAX] = {
    [JOURNAL_SLOT_OK] = "ok",
    [JOURNAL_SLOT_CORRUPT] = "corrupt",
    [JOURNAL_SLOT_STALE] = "stale",
};

const char *journal_slot_verdict_to_str(enum journal_slot_verdict v)
{
	return v < _JOURNAL_SLOT_VERDICT_MAX ? verdict_str[v] : NULL;
}

enum journal_slot_verdict journal_slot_judge(const struct journal_scan *sc, int i, int k)
{
	const struct journal_slot_info *si = &sc->slots[i][k];
	if (si->status != 0 && si->status != -ENODATA)
		return JOURNAL_SLOT_CORRUPT;
	if (sc->best_dev < 0 || k != (int)(sc->best_seq % 2))
		return JOURNAL_SLOT_OK;
	if (si->status == -ENODATA || si->seq < sc->best_seq)
		return JOURNAL_SLOT_STALE;
	return JOURNAL_SLOT_OK;
}

int journal_scan(const struct journal_dev *devs, int n, struct journal_scan *ret)
{
	if (n > JOURNAL_MAX_DEVS)
		return -E2BIG;
	if (sodium_init() < 0)
		return -EIO;
	struct journal_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	struct journal_scan sc = {.n_devs = n, .best_dev = -1, .best_slot = -1};
	for (int i = 0; i < n; i++) {
		struct journal_slot_info *info = sc.slots[i];
		info[0] = info[1] = (struct journal_slot_info){-EIO, 0};
		(void)journal_read_dev(&devs[i], info, st);
		for (int k = 0; k < 2; k++)
			if (info[k].status == 0 && (sc.best_dev < 0 || info[k].seq > sc.best_seq)) {
				sc.best_dev = i;
				sc.best_slot = k;
				sc.best_seq = info[k].seq;
			}
	}
	free(st);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 2; k++) {
			sc.n_valid += sc.slots[i][k].status == 0;
			switch (journal_slot_judge(&sc, i, k)) {
			case JOURNAL_SLOT_CORRUPT:
				sc.n_corrupt++;
				break;
			case JOURNAL_SLOT_STALE:
				sc.n_stale++;
				break;
			case JOURNAL_SLOT_OK:
			case _JOURNAL_SLOT_VERDICT_MAX:
				break;
			}
		}
	*ret = sc;
	return 0;
}

/* The newest slot's bytes, checked again after reading (it must still decode to seq). */
static int read_raw_slot(const struct journal_dev *d, int slot, uint64_t seq, uint8_t *buf)
{
	bool direct;
	int fd = open_dev(d->path, O_RDONLY, &direct);
	if (fd < 0)
		return fd;
	off_t off = (off_t)(d->offset + (uint64_t)slot * JOURNAL_SLOT_SIZE);
	ssize_t l = slot_io(d->path, &fd, &direct, false, buf, JOURNAL_SLOT_SIZE, off);
	close(fd);
	if (l != JOURNAL_SLOT_SIZE)
		return -EIO;
	struct journal_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	int r = journal_decode_slot(buf, JOURNAL_SLOT_SIZE, st);
	if (r == 0 && st->seq != seq)
		r = -ESTALE;
	free(st);
	return r;
}

static void rewrite_event(const struct journal_dev *d, int slot, uint64_t seq, const char *why)
{
	struct event ev;
	event_begin(&ev, "journal");
	event_add(&ev, "action", "rewrite");
	event_add(&ev, "dev", d->path);
	event_add(&ev, "slot", slot ? "B" : "A");
	event_add(&ev, "was", why);
	event_add_u64(&ev, "seq", seq);
	event_emit(&ev);
}

int journal_repair(const struct journal_dev *devs, int n, struct strbuf *msg)
{
	_cleanup_free_ struct journal_scan *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	int r = journal_scan(devs, n, sc);
	if (r < 0)
		return r;
	if (sc->best_dev < 0) {
		sb_puts(msg, "no valid slot to copy from");
		return -ENODATA;
	}
	uint8_t *buf = aligned_buf(JOURNAL_SLOT_SIZE);
	if (!buf)
		return -ENOMEM;
	r = read_raw_slot(&devs[sc->best_dev], sc->best_slot, sc->best_seq, buf);
	int done = 0, failed = 0;
	for (int i = 0; r == 0 && i < n; i++)
		for (int k = 0; k < 2; k++) {
			enum journal_slot_verdict v = journal_slot_judge(sc, i, k);
			if (v == JOURNAL_SLOT_OK || !area_ok(&devs[i]))
				continue;
			int w = write_slot(&devs[i], k, buf, JOURNAL_SLOT_SIZE);
			if (w < 0) {
				log_warn_errno(w, "Failed to rewrite journal slot %c on %s",
					       k ? 'B' : 'A', devs[i].path);
				failed++;
				continue;
			}
			rewrite_event(&devs[i], k, sc->best_seq, journal_slot_verdict_to_str(v));
			done++;
		}
	free(buf);
	if (r < 0) {
		sb_printf(msg, "cannot read the newest slot again: %s", strerror(-r));
		return r;
	}
	sb_printf(msg, "%d slot%s rewritten from seq %" PRIu64 " (slot %c of %s)", done,
		  done == 1 ? "" : "s", sc->best_seq, sc->best_slot ? 'B' : 'A',
		  devs[sc->best_dev].path);
	if (failed)
		sb_printf(msg, ", %d failed", failed);
	return failed ? -EIO : done;
}

static void hex_n(const uint8_t *h, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void hex(const uint8_t *h, char out[65])
{
	hex_n(h, 32, out);
}

static void format_json(const struct journal_state *s, struct strbuf *o)
{
	char hx[65];
	sb_printf(o, "{\"seq\":%" PRIu64 ",\"node\":", s->seq);
	sb_json_str(o, s->node);
	if (s->has_good) {
		hex(s->good.hash, hx);
		sb_printf(o, ",\"good_config\":{\"version\":%" PRIu64 ",\"hash\":\"%s\"}",
			  s->good.version, hx);
	}
	sb_puts(o, ",\"failed_configs\":[");
	for (int i = 0; i < s->n_failed; i++) {
		hex(s->failed[i].hash, hx);
		sb_printf(o, "%s{\"version\":%" PRIu64 ",\"hash\":\"%s\"}", i ? "," : "",
			  s->failed[i].version, hx);
	}
	sb_putc(o, ']');
	if (s->has_trial) {
		hex(s->trial.hash, hx);
		sb_printf(
		    o, ",\"trial_config\":{\"version\":%" PRIu64 ",\"hash\":\"%s\",\"boots\":%u}",
		    s->trial.version, hx, (unsigned)s->trial_boots);
	}
	sb_puts(o, ",\"roles\":{");
	bool first = true;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		if (!s->roles[k].set)
			continue;
		sb_printf(o, "%s\"%s\":{\"role\":", first ? "" : ",", cfg_kind_to_str(k));
		sb_json_str(o, s->roles[k].role);
		sb_printf(o, ",\"epoch\":%" PRIu64 "}", s->roles[k].epoch);
		first = false;
	}
	sb_puts(o, "},\"md_uuids\":{");
	first = true;
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		if (!s->md_uuid[k][0])
			continue;
		sb_printf(o, "%s\"%s\":", first ? "" : ",", cfg_kind_to_str(k));
		sb_json_str(o, s->md_uuid[k]);
		first = false;
	}
	sb_puts(o, "},\"wipes_consumed\":[");
	for (int i = 0; i < s->n_wipes; i++) {
		char hx[65];
		hex_n(s->wipes[i].hash, JOURNAL_WIPE_HASH, hx);
		sb_printf(o, "%s{\"id\":", i ? "," : "");
		sb_json_str(o, journal_wipe_label(s, s->wipes[i].hash));
		sb_printf(o, ",\"hash\":\"%s\",\"seq\":%" PRIu64 "}", hx, s->wipes[i].seq);
	}
	sb_puts(o, "],\"steps\":[");
	for (int i = 0; i < s->n_steps; i++) {
		const struct journal_step *st = &s->steps[i];
		sb_printf(o, "%s{\"id\":%" PRIu64 ",\"kind\":\"%s\",\"state\":\"%s\",\"target\":",
			  i ? "," : "", st->id, journal_step_kind_to_str(st->kind),
			  journal_step_state_to_str(st->state));
		sb_json_str(o, st->target);
		sb_puts(o, ",\"detail\":");
		sb_json_str(o, st->detail);
		if (st->disk_size) {
			sb_printf(o, ",\"disk_size\":%" PRIu64 ",\"disk_guid\":", st->disk_size);
			sb_json_str(o, st->disk_guid);
			sb_puts(o, ",\"found\":");
			sb_json_str(o, st->found);
		}
		sb_putc(o, '}');
	}
	sb_puts(o, "]}");
}

static void format_human(const struct journal_state *s, struct strbuf *o)
{
	char hx[65];
	sb_printf(o, "sequence        %" PRIu64 "\nnode            %s\n", s->seq, s->node);
	if (s->has_good) {
		hex(s->good.hash, hx);
		sb_printf(o, "good config     version %" PRIu64 ", blake2b %.16s…\n",
			  s->good.version, hx);
	}
	for (int i = 0; i < s->n_failed; i++)
		sb_printf(o, "failed config   version %" PRIu64 "\n", s->failed[i].version);
	if (s->has_trial)
		sb_printf(o, "trial config    version %" PRIu64 ", booted %u times\n",
			  s->trial.version, (unsigned)s->trial_boots);
	for (int k = 0; k < _CFG_KIND_MAX; k++)
		if (s->roles[k].set)
			sb_printf(o, "role %-10s %s (epoch %" PRIu64 ")\n", cfg_kind_to_str(k),
				  s->roles[k].role, s->roles[k].epoch);
	for (int k = 0; k < _CFG_KIND_MAX; k++)
		if (s->md_uuid[k][0])
			sb_printf(o, "md %-12s uuid %s\n", cfg_kind_to_str(k), s->md_uuid[k]);
	for (int i = 0; i < s->n_wipes; i++)
		sb_printf(o, "wipe consumed   %s (seq %" PRIu64 ")\n",
			  *journal_wipe_label(s, s->wipes[i].hash)
			      ? journal_wipe_label(s, s->wipes[i].hash)
			      : "(name not kept)",
			  s->wipes[i].seq);
	for (int i = 0; i < s->n_steps; i++)
		sb_printf(o, "step %-4" PRIu64 "      %-9s %-6s %s %s\n", s->steps[i].id,
			  journal_step_kind_to_str(s->steps[i].kind),
			  journal_step_state_to_str(s->steps[i].state), s->steps[i].target,
			  s->steps[i].detail);
}

void journal_format(const struct journal_state *s, bool json, struct strbuf *out)
{
	if (json)
		format_json(s, out);
	else
		format_human(s, out);
}
