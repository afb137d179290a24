/* State journal: encoding round trip, corrupt and empty slots, alternation, newest valid
 * across disks, O_DIRECT fallback on tmpfs, bounded records. */
#include "journal.h"
#include "log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

static struct journal_state *full_state(void)
{
	struct journal_state *s = calloc(1, sizeof(*s));
	uint8_t h[32];
	snprintf(s->node, sizeof(s->node), "a1");
	memset(h, 0xab, sizeof(h));
	journal_set_good_config(s, 7, h);
	h[0] = 1;
	journal_add_failed_config(s, 8, h);
	journal_add_failed_config(s, 8, h); /* once */
	h[0] = 2;
	journal_add_failed_config(s, 9, h);
	h[0] = 3;
	journal_set_trial_config(s, 10, h);
	s->trial_boots = 2;
	journal_set_role(s, CFG_KIND_INFRA, "master", 12);
	journal_set_role(s, CFG_KIND_ADMIN, "slave", 3);
	journal_wipe_record(s, "SERIAL-1");
	journal_wipe_record(s, "SERIAL-1");
	uint64_t id = journal_step_intent(s, JOURNAL_STEP_PARTITION, "SERIAL-1", "wiped");
	journal_step_done(s, id);
	journal_step_intent(s, JOURNAL_STEP_RAID, "md:infra", "create");
	id = journal_step_intent(s, JOURNAL_STEP_PARTITION, "/img/c.img", "create");
	struct journal_step *st = &s->steps[s->n_steps - 1];
	assert_int_equal(st->id, id);
	st->disk_size = 128ULL << 20;
	snprintf(st->disk_guid, sizeof(st->disk_guid), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
	snprintf(st->found, sizeof(st->found), "ext4");
	return s;
}

static void test_roundtrip(void **state)
{
	struct journal_state *s = full_state(), *d = calloc(1, sizeof(*d));
	uint8_t *buf = calloc(1, JOURNAL_SLOT_SIZE);
	size_t len;
	assert_int_equal(journal_encode(s, 42, buf, JOURNAL_SLOT_SIZE, &len), 0);
	assert_true(len > JOURNAL_HDR_SIZE);
	assert_memory_equal(buf, JOURNAL_MAGIC, 8);
	assert_int_equal(journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d), 0);
	assert_int_equal(d->seq, 42);
	assert_string_equal(d->node, "a1");
	assert_true(d->has_good);
	assert_int_equal(d->good.version, 7);
	assert_memory_equal(d->good.hash, s->good.hash, 32);
	assert_int_equal(d->n_failed, 2);
	assert_int_equal(d->failed[1].version, 9);
	assert_true(d->has_trial); /* the version on probation and its boots */
	assert_int_equal(d->trial.version, 10);
	assert_memory_equal(d->trial.hash, s->trial.hash, 32);
	assert_int_equal(d->trial_boots, 2);
	assert_string_equal(d->roles[CFG_KIND_INFRA].role, "master");
	assert_int_equal(d->roles[CFG_KIND_INFRA].epoch, 12);
	assert_string_equal(d->roles[CFG_KIND_ADMIN].role, "slave");
	assert_int_equal(d->n_wipes, 1);
	assert_true(journal_wipe_consumed(d, "SERIAL-1"));
	assert_false(journal_wipe_consumed(d, "SERIAL-2"));
	assert_int_equal(d->n_steps, 3);
	assert_int_equal(d->steps[2].disk_size, 128ULL << 20);
	assert_string_equal(d->steps[2].disk_guid, "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
	assert_string_equal(d->steps[2].found, "ext4");
	assert_int_equal(d->steps[0].disk_size, 0);
	assert_int_equal(
	    journal_count_steps(d, JOURNAL_STEP_PARTITION, "SERIAL-1", JOURNAL_STEP_DONE), 1);
	assert_non_null(journal_step_pending(d, JOURNAL_STEP_RAID, "md:infra"));
	assert_null(journal_step_pending(d, JOURNAL_STEP_PARTITION, "SERIAL-1"));
	assert_int_equal(d->next_id, s->next_id);
	/* Re-encoding what was decoded gives the same bytes. */
	uint8_t *buf2 = calloc(1, JOURNAL_SLOT_SIZE);
	size_t len2;
	assert_int_equal(journal_encode(d, 42, buf2, JOURNAL_SLOT_SIZE, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf2);
	free(buf);
	free(s);
	free(d);
}

/* Every single-byte change in the header or payload makes the slot invalid. */
static void test_corruption(void **state)
{
	struct journal_state *s = full_state(), *d = calloc(1, sizeof(*d));
	uint8_t *buf = calloc(1, JOURNAL_SLOT_SIZE);
	size_t len;
	assert_int_equal(journal_encode(s, 5, buf, JOURNAL_SLOT_SIZE, &len), 0);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x40;
		int r = journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d);
		if (r != -EBADMSG)
			fail_msg("byte %zu flipped: decode gave %d", i, r);
		buf[i] ^= 0x40;
	}
	assert_int_equal(journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d), 0);
	assert_int_equal(journal_decode_slot(buf, len - 1, d), -EBADMSG);
	assert_int_equal(journal_decode_slot(buf, 10, d), -EBADMSG);
	memset(buf, 0, JOURNAL_HDR_SIZE);
	assert_int_equal(journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d), -ENODATA);
	free(buf);
	free(s);
	free(d);
}

struct payload_case {
	const char *name;
	uint8_t bytes[48];
	size_t len;
	int expect;
};

static const struct payload_case payloads[] = {
    {"empty", {0}, 0, 0},
    {"short record header", {1, 0, 0}, 3, -EBADMSG},
    {"length past end", {1, 0, 0, 0, 9, 0, 0, 0, 'a'}, 9, -EBADMSG},
    {"node", {1, 0, 0, 0, 2, 0, 0, 0, 'a', '1'}, 10, 0},
    {"node with NUL", {1, 0, 0, 0, 2, 0, 0, 0, 'a', 0}, 10, -EBADMSG},
    {"unknown tag skipped", {99, 0, 0, 0, 1, 0, 0, 0, 'x'}, 9, 0},
    {"good config short", {2, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, 16, -EBADMSG},
    {"role bad kind", {4, 0, 0, 0, 16, 0, 0, 0, 9}, 24, -EBADMSG},
    {"step bad state", {6, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0}, 20, -EBADMSG},
    {"step target too long",
     {6, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0},
     20,
     -EBADMSG},
    {"step ok", {6, 0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 'd'}, 21, 0},
    {"next id wrong length", {7, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4}, 12, -EBADMSG},
};

static void test_payloads(void **state)
{
	struct journal_state *d = calloc(1, sizeof(*d));
	for (size_t i = 0; i < ARRAY_SIZE(payloads); i++) {
		memset(d, 0, sizeof(*d));
		int r = journal_decode_payload(payloads[i].bytes, payloads[i].len, d);
		if (r != payloads[i].expect)
			fail_msg("%s: got %d, expected %d", payloads[i].name, r,
				 payloads[i].expect);
	}
	free(d);
}

static void test_records_bounded(void **state)
{
	struct journal_state *s = calloc(1, sizeof(*s));
	char t[32];
	for (int i = 0; i < 200; i++) {
		snprintf(t, sizeof(t), "d%d", i);
		uint64_t id = journal_step_intent(s, JOURNAL_STEP_PARTITION, t, "create");
		if (i != 3)
			journal_step_done(s, id);
		snprintf(t, sizeof(t), "w%d", i);
		journal_wipe_record(s, t);
	}
	assert_int_equal(s->n_steps, JOURNAL_MAX_STEPS);
	/* A retried step continues its pending record instead of adding one. */
	uint64_t a = journal_step_intent(s, JOURNAL_STEP_RAID, "md:infra", "create");
	uint64_t b = journal_step_intent(s, JOURNAL_STEP_RAID, "md:infra", "assemble");
	assert_int_equal(a, b);
	assert_string_equal(journal_step_pending(s, JOURNAL_STEP_RAID, "md:infra")->detail,
			    "assemble");
	journal_step_done(s, b);
	assert_int_equal(journal_count_steps(s, JOURNAL_STEP_RAID, "md:infra", JOURNAL_STEP_DONE),
			 1);
	assert_int_equal(s->n_steps, JOURNAL_MAX_STEPS);
	assert_int_equal(s->n_wipes, 200);
	/* The pending intent survives while done records make room. */
	assert_non_null(journal_step_pending(s, JOURNAL_STEP_PARTITION, "d3"));
	assert_true(journal_wipe_consumed(s, "w199"));
	assert_true(journal_wipe_consumed(s, "w0"));
	uint8_t *buf = calloc(1, JOURNAL_SLOT_SIZE);
	size_t len;
	assert_int_equal(journal_encode(s, 1, buf, JOURNAL_SLOT_SIZE, &len), 0);
	assert_true(len < JOURNAL_SLOT_SIZE);
	free(buf);
	free(s);
}

/* Every consumed wipe stays consumed (SPEC §3: were only the last 32 kept, an old
 * `wipe =` would become usable again): 4096 fit in a slot and survive a round trip; the 4097th is
 * refused, nothing is evicted; WWN spellings are one id. */
static void test_wipes_forever(void **state)
{
	struct journal_state *s = calloc(1, sizeof(*s)), *d = calloc(1, sizeof(*d));
	char t[32];
	for (int i = 0; i < JOURNAL_MAX_WIPES; i++) {
		snprintf(t, sizeof(t), "SERIAL-%d", i);
		assert_int_equal(journal_wipe_record(s, t), 0);
	}
	assert_int_equal(journal_wipe_record(s, "SERIAL-0"), 0); /* already there */
	assert_int_equal(journal_wipe_record(s, "one-too-many"), -ENOSPC);
	assert_false(journal_wipe_consumed(s, "one-too-many"));
	uint8_t *buf = calloc(1, JOURNAL_SLOT_SIZE);
	size_t len;
	assert_int_equal(journal_encode(s, 5, buf, JOURNAL_SLOT_SIZE, &len), 0);
	assert_int_equal(journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d), 0);
	assert_int_equal(d->n_wipes, JOURNAL_MAX_WIPES);
	for (int i = 0; i < JOURNAL_MAX_WIPES; i += 97) {
		snprintf(t, sizeof(t), "serial-%d", i);
		assert_true(journal_wipe_consumed(d, t));
	}
	assert_true(journal_wipe_consumed(d, "SERIAL-0"));
	assert_true(journal_wipe_consumed(d, "SERIAL-4095"));
	assert_int_equal(d->n_labels, JOURNAL_MAX_WIPE_LABELS);
	uint8_t h[JOURNAL_WIPE_HASH];
	journal_wipe_hash("SERIAL-4095", h);
	assert_string_equal(journal_wipe_label(d, h), "SERIAL-4095");
	journal_wipe_hash("SERIAL-0", h);
	assert_string_equal(journal_wipe_label(d, h), "");
	memset(s, 0, sizeof(*s));
	assert_int_equal(journal_wipe_record(s, "naa.5000C500A1B2C3D4"), 0);
	assert_true(journal_wipe_consumed(s, "0x5000c500a1b2c3d4"));
	assert_true(journal_wipe_consumed(s, "5000C500A1B2C3D4"));
	free(buf);
	free(s);
	free(d);
}

/* A format 1 slot (wipes by name, tag 5) written by the previous agent is read: its wipes
 * stay consumed; the next write is format 2. */
static void test_format_v1(void **state)
{
	uint8_t *buf = calloc(1, JOURNAL_SLOT_SIZE);
	uint8_t *p = buf + JOURNAL_HDR_SIZE;
	size_t n = 0;
	const char *ids[] = {"OLD-SERIAL", "/img/b.img"};
	for (int i = 0; i < 2; i++) {
		uint16_t tag = 5;
		uint32_t l = (uint32_t)(8 + strlen(ids[i]));
		uint64_t seq = (uint64_t)i + 3;
		memcpy(p + n, &tag, 2);
		memcpy(p + n + 4, &l, 4);
		memcpy(p + n + 8, &seq, 8);
		memcpy(p + n + 16, ids[i], strlen(ids[i]));
		n += 8 + l;
	}
	memcpy(buf, JOURNAL_MAGIC, 8);
	uint32_t v = 1, hs = JOURNAL_HDR_SIZE, pl = (uint32_t)n;
	uint64_t sq = 9;
	memcpy(buf + 8, &v, 4);
	memcpy(buf + 12, &hs, 4);
	memcpy(buf + 16, &sq, 8);
	memcpy(buf + 24, &pl, 4);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, buf, 32);
	crypto_generichash_update(&st, p, n);
	crypto_generichash_final(&st, buf + 32, 32);
	struct journal_state *d = calloc(1, sizeof(*d));
	assert_int_equal(journal_decode_slot(buf, JOURNAL_SLOT_SIZE, d), 0);
	assert_int_equal(d->seq, 9);
	assert_int_equal(d->n_wipes, 2);
	assert_int_equal(d->wipes[1].seq, 4);
	assert_true(journal_wipe_consumed(d, "old-serial"));
	assert_true(journal_wipe_consumed(d, "/img/b.img"));
	size_t len;
	assert_int_equal(journal_encode(d, 10, buf, JOURNAL_SLOT_SIZE, &len), 0);
	uint32_t v2;
	memcpy(&v2, buf + 8, 4);
	assert_int_equal(v2, JOURNAL_FORMAT);
	free(buf);
	free(d);
}

static char tmpdir[256];

static int make_dev(const char *dir, const char *name, uint64_t off, uint64_t size,
		    struct journal_dev *d)
{
	snprintf(d->path, sizeof(d->path), "%s/%s", dir, name);
	int fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(off + size + 65536)) < 0)
		return -errno;
	close(fd);
	d->offset = off;
	d->size = size;
	return 0;
}

static int corrupt_events;
static void on_line(const struct log_line *l, void *ud)
{
	if (strstr(l->text, "event=journal action=corrupt-slot"))
		corrupt_events++;
}

static void run_devices(const char *dir)
{
	struct journal_dev devs[2];
	assert_int_equal(make_dev(dir, "d1", 1 << 20, 16 << 20, &devs[0]), 0);
	assert_int_equal(make_dev(dir, "d2", 0, 1 << 20, &devs[1]), 0);
	struct journal_state *s = calloc(1, sizeof(*s)), *l = calloc(1, sizeof(*l));
	struct journal_slot_info info[2];
	assert_int_equal(journal_load(devs, 2, l), -ENODATA);
	snprintf(s->node, sizeof(s->node), "b1");
	for (int i = 1; i <= 3; i++) {
		journal_set_role(s, CFG_KIND_INFRA, "master", (uint64_t)i);
		assert_int_equal(journal_store(devs, 2, s), 0);
		assert_int_equal(s->seq, i);
	}
	/* seq 1 → B, 2 → A, 3 → B: both slots hold a valid copy, B is newest. */
	assert_int_equal(journal_read_dev(&devs[0], info, l), 0);
	assert_int_equal(info[0].status, 0);
	assert_int_equal(info[0].seq, 2);
	assert_int_equal(info[1].seq, 3);
	assert_int_equal(l->roles[CFG_KIND_INFRA].epoch, 3);
	/* A newer write on one disk only wins across disks. */
	journal_set_role(s, CFG_KIND_INFRA, "slave", 4);
	assert_int_equal(journal_store(&devs[1], 1, s), 0);
	assert_int_equal(journal_load(devs, 2, l), 0);
	assert_int_equal(l->seq, 4);
	assert_string_equal(l->roles[CFG_KIND_INFRA].role, "slave");
	/* Corrupt the newest slot (d2, slot A): ignored and reported; d1's seq 3 serves. */
	int fd = open(devs[1].path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "XX", 2, 100), 2);
	close(fd);
	int id = log_subscribe(on_line, NULL);
	corrupt_events = 0;
	assert_int_equal(journal_load(devs, 2, l), 0);
	log_unsubscribe(id);
	assert_int_equal(corrupt_events, 1);
	assert_int_equal(l->seq, 3);
	assert_string_equal(l->roles[CFG_KIND_INFRA].role, "master");
	/* The next write goes above the highest seen and lands in the other slot. */
	*s = *l;
	assert_int_equal(journal_store(devs, 2, s), 0);
	assert_int_equal(s->seq, 4);
	assert_int_equal(journal_read_dev(&devs[1], info, l), 0);
	assert_int_equal(l->seq, 4);
	/* Too small an area is refused, not overrun. */
	struct journal_dev tiny = devs[1];
	tiny.size = JOURNAL_SLOT_SIZE;
	assert_int_equal(journal_read_dev(&tiny, info, l), -EINVAL);
	unlink(devs[0].path);
	unlink(devs[1].path);
	free(s);
	free(l);
}

static void test_devices(void **state)
{
	run_devices(tmpdir);
}

static void read_slot(const struct journal_dev *d, int k, uint8_t *buf)
{
	int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(
	    pread(fd, buf, JOURNAL_SLOT_SIZE, (off_t)(d->offset + (uint64_t)k * JOURNAL_SLOT_SIZE)),
	    JOURNAL_SLOT_SIZE);
	close(fd);
}

static int rewrite_events;
static void on_rewrite(const struct log_line *l, void *ud)
{
	if (strstr(l->text, "event=journal action=rewrite"))
		rewrite_events++;
}

/* Repair: a corrupt slot and a stale one are rewritten from the newest valid copy, byte
 * for byte; every valid slot that is not stale stays as it was. */
static void test_repair(void **state)
{
	struct journal_dev devs[2];
	assert_int_equal(make_dev(tmpdir, "r1", 0, 1 << 20, &devs[0]), 0);
	assert_int_equal(make_dev(tmpdir, "r2", 1 << 20, 1 << 20, &devs[1]), 0);
	struct journal_state *s = calloc(1, sizeof(*s));
	struct journal_scan *sc = calloc(1, sizeof(*sc));
	uint8_t *good = malloc(JOURNAL_SLOT_SIZE), *got = malloc(JOURNAL_SLOT_SIZE),
		*keep = malloc(JOURNAL_SLOT_SIZE);
	struct strbuf msg;
	sb_init(&msg);
	/* Nothing valid: nothing to copy from. */
	assert_int_equal(journal_repair(devs, 2, &msg), -ENODATA);
	snprintf(s->node, sizeof(s->node), "a1");
	for (int i = 1; i <= 3; i++) {
		journal_set_role(s, CFG_KIND_INFRA, "master", (uint64_t)i);
		assert_int_equal(journal_store(devs, 2, s), 0);
	}
	assert_int_equal(journal_scan(devs, 2, sc), 0);
	assert_int_equal(sc->best_seq, 3);
	assert_int_equal(sc->n_corrupt + sc->n_stale, 0);
	assert_int_equal(journal_repair(devs, 2, &msg), 0); /* healthy: nothing written */
	/* The newest slot (B, seq 3) of r2 is corrupted. */
	read_slot(&devs[0], 1, good);
	int fd = open(devs[1].path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "garbage", 7, (off_t)(devs[1].offset + JOURNAL_SLOT_SIZE + 66)),
			 7);
	close(fd);
	assert_int_equal(journal_scan(devs, 2, sc), 0);
	assert_int_equal(sc->n_corrupt, 1);
	assert_int_equal(journal_slot_judge(sc, 1, 1), JOURNAL_SLOT_CORRUPT);
	read_slot(&devs[1], 0, keep); /* r2's slot A (seq 2): valid, must stay */
	int id = log_subscribe(on_rewrite, NULL);
	rewrite_events = 0;
	sb_reset(&msg);
	assert_int_equal(journal_repair(devs, 2, &msg), 1);
	printf("%s\n", msg.buf);
	assert_int_equal(rewrite_events, 1);
	read_slot(&devs[1], 1, got);
	assert_memory_equal(got, good, JOURNAL_SLOT_SIZE);
	read_slot(&devs[1], 0, got);
	assert_memory_equal(got, keep, JOURNAL_SLOT_SIZE);
	/* r2 misses a write (seq 4 lands on r1 only): its slot A is stale, B stays. */
	assert_int_equal(journal_store(&devs[0], 1, s), 0);
	assert_int_equal(s->seq, 4);
	assert_int_equal(journal_scan(devs, 2, sc), 0);
	assert_int_equal(sc->n_stale, 1);
	assert_int_equal(journal_slot_judge(sc, 1, 0), JOURNAL_SLOT_STALE);
	read_slot(&devs[0], 0, good);
	read_slot(&devs[1], 1, keep);
	uint8_t *r1b = malloc(JOURNAL_SLOT_SIZE);
	read_slot(&devs[0], 1, r1b);
	sb_reset(&msg);
	assert_int_equal(journal_repair(devs, 2, &msg), 1);
	read_slot(&devs[1], 0, got);
	assert_memory_equal(got, good, JOURNAL_SLOT_SIZE);
	read_slot(&devs[1], 1, got);
	assert_memory_equal(got, keep, JOURNAL_SLOT_SIZE);
	read_slot(&devs[0], 1, got);
	assert_memory_equal(got, r1b, JOURNAL_SLOT_SIZE);
	assert_int_equal(journal_scan(devs, 2, sc), 0);
	assert_int_equal(sc->n_corrupt + sc->n_stale, 0);
	assert_int_equal(rewrite_events, 2);
	log_unsubscribe(id);
	sb_free(&msg);
	unlink(devs[0].path);
	unlink(devs[1].path);
	free(r1b);
	free(good);
	free(got);
	free(keep);
	free(sc);
	free(s);
}

/* tmpfs refuses O_DIRECT: the journal falls back to buffered I/O + fsync. */
static void test_tmpfs(void **state)
{
	char d[] = "/dev/shm/journal-XXXXXX";
	if (!mkdtemp(d)) {
		skip();
		return;
	}
	run_devices(d);
	rmdir(d);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test-journal-XXXXXX", t ? t : "/var/tmp");
	log_set_target(LOG_TARGET_NONE);
	return mkdtemp(tmpdir) && sodium_init() >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_corruption),
	    cmocka_unit_test(test_payloads),  cmocka_unit_test(test_records_bounded),
	    cmocka_unit_test(test_devices),   cmocka_unit_test(test_tmpfs),
	    cmocka_unit_test(test_repair),    cmocka_unit_test(test_wipes_forever),
	    cmocka_unit_test(test_format_v1),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
