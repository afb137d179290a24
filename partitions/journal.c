/* State journal: encoding (pure) and the two-slot, many-disk driver. */
#include "journal.h"
#include "disk.h"
#include "log.h"

#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

static const char *const step_kind_str[_JOURNAL_STEP_KIND_MAX] = {
    [JOURNAL_STEP_PARTITION] = "partition", [JOURNAL_STEP_RAID] = "raid"};
static const char *const step_state_str[_JOURNAL_STEP_STATE_MAX] = {
    [JOURNAL_STEP_INTENT] = "intent", [JOURNAL_STEP_DONE] = "done"};

const char *journal_step_kind_to_str(enum journal_step_kind k)
{
	return k < _JOURNAL_STEP_KIND_MAX ? step_kind_str[k] : NULL;
}
const char *journal_step_state_to_str(enum journal_step_state s)
{
	return s < _JOURNAL_STEP_STATE_MAX ? step_state_str[s] : NULL;
}

/* ---- encoding ---- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool over;
};

static void put(struct wbuf *w, const void *v, size_t n)
{
	if (w->over || w->cap - w->len < n) {
		w->over = true;
		return;
	}
	memcpy(w->p + w->len, v, n);
	w->len += n;
}
static void put_u64(struct wbuf *w, uint64_t v)
{
	v = htole64(v);
	put(w, &v, 8);
}
static void put_tl(struct wbuf *w, uint16_t tag, uint32_t len)
{
	uint16_t t[2] = {htole16(tag), 0};
	uint32_t l = htole32(len);
	put(w, t, 4);
	put(w, &l, 4);
}
static void put_str_rec(struct wbuf *w, uint16_t tag, const char *s)
{
	put_tl(w, tag, (uint32_t)strlen(s));
	put(w, s, strlen(s));
}
static void put_cfgver(struct wbuf *w, uint16_t tag, const struct journal_cfgver *c)
{
	put_tl(w, tag, 40);
	put_u64(w, c->version);
	put(w, c->hash, 32);
}

static void encode_steps(const struct journal_state *s, struct wbuf *w);

static void encode_payload(const struct journal_state *s, struct wbuf *w)
{
	put_str_rec(w, JOURNAL_TAG_NODE, s->node);
	if (s->has_good)
		put_cfgver(w, JOURNAL_TAG_CFG_GOOD, &s->good);
	for (int i = 0; i < s->n_failed; i++)
		put_cfgver(w, JOURNAL_TAG_CFG_FAILED, &s->failed[i]);
	if (s->has_trial) {
		uint32_t b[2] = {htole32(s->trial_boots), 0};
		put_tl(w, JOURNAL_TAG_CFG_TRIAL, 48);
		put_u64(w, s->trial.version);
		put(w, s->trial.hash, 32);
		put(w, b, 8);
	}
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		if (!s->roles[k].set)
			continue;
		uint8_t kb[8] = {(uint8_t)k};
		put_tl(w, JOURNAL_TAG_ROLE, (uint32_t)(16 + strlen(s->roles[k].role)));
		put(w, kb, 8);
		put_u64(w, s->roles[k].epoch);
		put(w, s->roles[k].role, strlen(s->roles[k].role));
	}
	for (int i = 0; i < s->n_wipes; i++) {
		put_tl(w, JOURNAL_TAG_WIPE_HASH, 8 + JOURNAL_WIPE_HASH);
		put_u64(w, s->wipes[i].seq);
		put(w, s->wipes[i].hash, JOURNAL_WIPE_HASH);
	}
	for (int i = 0; i < s->n_labels; i++) {
		put_tl(w, JOURNAL_TAG_WIPE_LABEL,
		       (uint32_t)(JOURNAL_WIPE_HASH + strlen(s->labels[i].id)));
		put(w, s->labels[i].hash, JOURNAL_WIPE_HASH);
		put(w, s->labels[i].id, strlen(s->labels[i].id));
	}
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		if (!s->md_uuid[k][0])
			continue;
		uint8_t kb[8] = {(uint8_t)k};
		put_tl(w, JOURNAL_TAG_MD_UUID, (uint32_t)(8 + strlen(s->md_uuid[k])));
		put(w, kb, 8);
		put(w, s->md_uuid[k], strlen(s->md_uuid[k]));
	}
	encode_steps(s, w);
	put_tl(w, JOURNAL_TAG_NEXT_ID, 8);
	put_u64(w, s->next_id);
}

static void encode_step_disk(const struct journal_step *st, struct wbuf *w)
{
	uint8_t g[16] = {0};
	if (!st->disk_size)
		return;
	if (st->disk_guid[0])
		(void)disk_guid_parse(st->disk_guid, g);
	put_tl(w, JOURNAL_TAG_STEP_DISK, (uint32_t)(32 + strlen(st->found)));
	put_u64(w, st->id);
	put_u64(w, st->disk_size);
	put(w, g, 16);
	put(w, st->found, strlen(st->found));
}

static void encode_steps(const struct journal_state *s, struct wbuf *w)
{
	for (int i = 0; i < s->n_steps; i++) {
		const struct journal_step *st = &s->steps[i];
		size_t tl = strlen(st->target), dl = strlen(st->detail);
		uint8_t b[4] = {(uint8_t)st->kind, (uint8_t)st->state, (uint8_t)(tl & 0xff),
				(uint8_t)(tl >> 8)};
		put_tl(w, JOURNAL_TAG_STEP, (uint32_t)(12 + tl + dl));
		put_u64(w, st->id);
		put(w, b, 4);
		put(w, st->target, tl);
		put(w, st->detail, dl);
		encode_step_disk(st, w);
	}
}

static void slot_hash(const uint8_t *hdr, const uint8_t *payload, size_t len, uint8_t out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, hdr, 32);
	crypto_generichash_update(&st, payload, len);
	crypto_generichash_final(&st, out, 32);
}

int journal_encode(const struct journal_state *s, uint64_t seq, uint8_t *buf, size_t cap,
		   size_t *ret_len)
{
	if (cap < JOURNAL_HDR_SIZE)
		return -ENOBUFS;
	size_t pcap = cap - JOURNAL_HDR_SIZE;
	struct wbuf w = {.p = buf + JOURNAL_HDR_SIZE,
			 .cap = pcap < JOURNAL_MAX_PAYLOAD ? pcap : JOURNAL_MAX_PAYLOAD};
	encode_payload(s, &w);
	if (w.over)
		return -ENOBUFS;
	memset(buf, 0, JOURNAL_HDR_SIZE);
	memcpy(buf, JOURNAL_MAGIC, 8);
	uint32_t v = htole32(JOURNAL_FORMAT), hs = htole32(JOURNAL_HDR_SIZE),
		 pl = htole32((uint32_t)w.len);
	uint64_t sq = htole64(seq);
	memcpy(buf + 8, &v, 4);
	memcpy(buf + 12, &hs, 4);
	memcpy(buf + 16, &sq, 8);
	memcpy(buf + 24, &pl, 4);
	slot_hash(buf, buf + JOURNAL_HDR_SIZE, w.len, buf + 32);
	*ret_len = JOURNAL_HDR_SIZE + w.len;
	return 0;
}

/* ---- decoding ---- */

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static int copy_text(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	if (n >= cap || memchr(src, 0, n))
		return -EBADMSG;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

static void add_label(struct journal_state *s, const uint8_t h[JOURNAL_WIPE_HASH], const char *id);

/* Format 1 kept at most 32 wipes by name: each becomes a hash and a label. */
static int decode_wipe_v1(struct journal_state *s, const uint8_t *v, uint32_t len)
{
	char id[128];
	if (len < 8 || s->n_wipes >= JOURNAL_MAX_WIPES ||
	    copy_text(id, sizeof(id), v + 8, len - 8) < 0)
		return -EBADMSG;
	struct journal_wipe *w = &s->wipes[s->n_wipes++];
	w->seq = get_u64(v);
	journal_wipe_hash(id, w->hash);
	add_label(s, w->hash, id);
	return 0;
}

/* Follows the step record it belongs to. */
static int decode_step_disk(struct journal_state *s, const uint8_t *v, uint32_t len)
{
	static const uint8_t zero[16];
	if (len < 32)
		return -EBADMSG;
	uint64_t id = get_u64(v);
	for (int i = 0; i < s->n_steps; i++) {
		struct journal_step *st = &s->steps[i];
		if (st->id != id)
			continue;
		st->disk_size = get_u64(v + 8);
		st->disk_guid[0] = '\0';
		if (memcmp(v + 16, zero, 16))
			disk_guid_format(v + 16, st->disk_guid);
		return copy_text(st->found, sizeof(st->found), v + 32, len - 32);
	}
	return -EBADMSG;
}

static int decode_rec(struct journal_state *s, uint16_t tag, const uint8_t *v, uint32_t len)
{
	switch (tag) {
	case JOURNAL_TAG_NODE:
		return copy_text(s->node, sizeof(s->node), v, len);
	case JOURNAL_TAG_CFG_GOOD:
	case JOURNAL_TAG_CFG_FAILED: {
		if (len != 40)
			return -EBADMSG;
		struct journal_cfgver c = {.version = get_u64(v)};
		memcpy(c.hash, v + 8, 32);
		if (tag == JOURNAL_TAG_CFG_GOOD) {
			s->good = c;
			s->has_good = true;
		} else if (s->n_failed < JOURNAL_MAX_FAILED) {
			s->failed[s->n_failed++] = c;
		} else {
			return -EBADMSG;
		}
		return 0;
	}
	case JOURNAL_TAG_ROLE: {
		if (len < 16 || v[0] >= _CFG_KIND_MAX)
			return -EBADMSG;
		struct journal_role *r = &s->roles[v[0]];
		r->set = true;
		r->epoch = get_u64(v + 8);
		return copy_text(r->role, sizeof(r->role), v + 16, len - 16);
	}
	case JOURNAL_TAG_WIPE: /* format 1 */
		return decode_wipe_v1(s, v, len);
	case JOURNAL_TAG_WIPE_HASH:
		if (len != 8 + JOURNAL_WIPE_HASH || s->n_wipes >= JOURNAL_MAX_WIPES)
			return -EBADMSG;
		s->wipes[s->n_wipes].seq = get_u64(v);
		memcpy(s->wipes[s->n_wipes++].hash, v + 8, JOURNAL_WIPE_HASH);
		return 0;
	case JOURNAL_TAG_WIPE_LABEL:
		if (len < JOURNAL_WIPE_HASH || s->n_labels >= JOURNAL_MAX_WIPE_LABELS)
			return -EBADMSG;
		memcpy(s->labels[s->n_labels].hash, v, JOURNAL_WIPE_HASH);
		return copy_text(s->labels[s->n_labels++].id, sizeof(s->labels[0].id),
				 v + JOURNAL_WIPE_HASH, len - JOURNAL_WIPE_HASH);
	case JOURNAL_TAG_STEP_DISK:
		return decode_step_disk(s, v, len);
	case JOURNAL_TAG_MD_UUID:
		if (len < 8 || v[0] >= _CFG_KIND_MAX)
			return -EBADMSG;
		return copy_text(s->md_uuid[v[0]], sizeof(s->md_uuid[0]), v + 8, len - 8);
	case JOURNAL_TAG_STEP: {
		if (len < 12 || s->n_steps >= JOURNAL_MAX_STEPS)
			return -EBADMSG;
		struct journal_step *st = &s->steps[s->n_steps++];
		size_t tl = (size_t)v[10] | (size_t)v[11] << 8;
		if (v[8] >= _JOURNAL_STEP_KIND_MAX || v[9] >= _JOURNAL_STEP_STATE_MAX ||
		    tl > len - 12)
			return -EBADMSG;
		st->id = get_u64(v);
		st->kind = v[8];
		st->state = v[9];
		if (copy_text(st->target, sizeof(st->target), v + 12, tl) < 0)
			return -EBADMSG;
		return copy_text(st->detail, sizeof(st->detail), v + 12 + tl, len - 12 - tl);
	}
	case JOURNAL_TAG_CFG_TRIAL: {
		uint32_t b;
		if (len != 48)
			return -EBADMSG;
		s->has_trial = true;
		s->trial.version = get_u64(v);
		memcpy(s->trial.hash, v + 8, 32);
		memcpy(&b, v + 40, 4);
		s->trial_boots = le32toh(b);
		return 0;
	}
	case JOURNAL_TAG_NEXT_ID:
		if (len != 8)
			return -EBADMSG;
		s->next_id = get_u64(v);
		return 0;
	default:
		return 0; /* a newer writer's record: skipped */
	}
}

int journal_decode_payload(const uint8_t *p, size_t len, struct journal_state *ret)
{
	struct journal_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	size_t at = 0;
	int r = 0;
	while (r >= 0 && at < len) {
		if (len - at < 8) {
			r = -EBADMSG;
			break;
		}
		uint16_t tag;
		uint32_t l;
		memcpy(&tag, p + at, 2);
		memcpy(&l, p + at + 4, 4);
		tag = le16toh(tag);
		l = le32toh(l);
		if (l > len - at - 8) {
			r = -EBADMSG;
			break;
		}
		r = decode_rec(s, tag, p + at + 8, l);
		at += 8 + (size_t)l;
	}
	if (r >= 0) {
		s->seq = ret->seq;
		*ret = *s;
	}
	free(s);
	return r;
}

int journal_decode_slot(const uint8_t *buf, size_t len, struct journal_state *ret)
{
	static const uint8_t zero[JOURNAL_HDR_SIZE];
	if (len < JOURNAL_HDR_SIZE)
		return -EBADMSG;
	if (!memcmp(buf, zero, JOURNAL_HDR_SIZE))
		return -ENODATA;
	uint32_t v, hs, pl;
	memcpy(&v, buf + 8, 4);
	memcpy(&hs, buf + 12, 4);
	memcpy(&pl, buf + 24, 4);
	v = le32toh(v);
	hs = le32toh(hs);
	pl = le32toh(pl);
	if (memcmp(buf, JOURNAL_MAGIC, 8) || (v != JOURNAL_FORMAT && v != JOURNAL_FORMAT_V1) ||
	    hs != JOURNAL_HDR_SIZE || pl > JOURNAL_MAX_PAYLOAD || pl > len - JOURNAL_HDR_SIZE)
		return -EBADMSG;
	uint8_t h[32];
	slot_hash(buf, buf + JOURNAL_HDR_SIZE, pl, h);
	if (sodium_memcmp(h, buf + 32, 32) != 0)
		return -EBADMSG;
	struct journal_state tmp = {.seq = get_u64(buf + 16)};
	int r = journal_decode_payload(buf + JOURNAL_HDR_SIZE, pl, &tmp);
	if (r < 0)
		return r;
	*ret = tmp;
	return 0;
}

/* ---- records ---- */

static void drop_oldest_done(struct journal_state *s)
{
	for (int i = 0; i < s->n_steps; i++)
		if (s->steps[i].state == JOURNAL_STEP_DONE) {
			memmove(&s->steps[i], &s->steps[i + 1],
				sizeof(s->steps[0]) * (size_t)(s->n_steps - i - 1));
			s->n_steps--;
			return;
		}
	/* All pending: drop the oldest anyway, the list stays bounded. */
	memmove(&s->steps[0], &s->steps[1], sizeof(s->steps[0]) * (size_t)(s->n_steps - 1));
	s->n_steps--;
}

uint64_t journal_step_intent(struct journal_state *s, enum journal_step_kind k, const char *target,
			     const char *detail)
{
	/* A retry of an unfinished step continues its record: one record per step. */
	struct journal_step *st = (struct journal_step *)journal_step_pending(s, k, target);
	if (!st) {
		if (s->n_steps == JOURNAL_MAX_STEPS)
			drop_oldest_done(s);
		st = &s->steps[s->n_steps++];
		*st = (struct journal_step){
		    .id = ++s->next_id, .kind = k, .state = JOURNAL_STEP_INTENT};
		snprintf(st->target, sizeof(st->target), "%s", target);
	}
	snprintf(st->detail, sizeof(st->detail), "%s", detail ? detail : "");
	return st->id;
}

void journal_step_done(struct journal_state *s, uint64_t id)
{
	for (int i = 0; i < s->n_steps; i++)
		if (s->steps[i].id == id)
			s->steps[i].state = JOURNAL_STEP_DONE;
}

const struct journal_step *journal_step_pending(const struct journal_state *s,
						enum journal_step_kind k, const char *target)
{
	for (int i = s->n_steps - 1; i >= 0; i--)
		if (s->steps[i].kind == k && s->steps[i].state == JOURNAL_STEP_INTENT &&
		    !strcmp(s->steps[i].target, target))
			return &s->steps[i];
	return NULL;
}

int journal_count_steps(const struct journal_state *s, enum journal_step_kind k, const char *target,
			enum journal_step_state st)
{
	int n = 0;
	for (int i = 0; i < s->n_steps; i++)
		n += s->steps[i].kind == k && s->steps[i].state == st &&
		     (!target || !strcmp(s->steps[i].target, target));
	return n;
}

/* Lower case, WWN prefixes dropped: "naa.5000C5…", "0x5000c5…" and "5000c5…" are one. */
static void wipe_norm(const char *id, char *out, size_t n)
{
	static const char *const pfx[] = {"naa.", "eui.", "t10.", "0x"};
	for (size_t i = 0; i < ARRAY_SIZE(pfx); i++)
		if (!strncasecmp(id, pfx[i], strlen(pfx[i]))) {
			id += strlen(pfx[i]);
			break;
		}
	size_t k = 0;
	for (; id[k] && k + 1 < n; k++)
		out[k] = (char)tolower((unsigned char)id[k]);
	out[k] = '\0';
}

void journal_wipe_hash(const char *id, uint8_t out[JOURNAL_WIPE_HASH])
{
	char norm[256];
	wipe_norm(id, norm, sizeof(norm));
	crypto_generichash(out, JOURNAL_WIPE_HASH, (const uint8_t *)norm, strlen(norm),
			   (const uint8_t *)"compartd-wipe", 13);
}

static bool hash_consumed(const struct journal_state *s, const uint8_t h[JOURNAL_WIPE_HASH])
{
	for (int i = 0; i < s->n_wipes; i++)
		if (!memcmp(s->wipes[i].hash, h, JOURNAL_WIPE_HASH))
			return true;
	return false;
}

bool journal_wipe_consumed(const struct journal_state *s, const char *id)
{
	uint8_t h[JOURNAL_WIPE_HASH];
	journal_wipe_hash(id, h);
	return hash_consumed(s, h);
}

/* Labels are for reading only: the newest are kept, the oldest name dropped (its hash
 * stays). */
static void add_label(struct journal_state *s, const uint8_t h[JOURNAL_WIPE_HASH], const char *id)
{
	if (s->n_labels == JOURNAL_MAX_WIPE_LABELS) {
		memmove(&s->labels[0], &s->labels[1],
			sizeof(s->labels[0]) * (JOURNAL_MAX_WIPE_LABELS - 1));
		s->n_labels--;
	}
	memcpy(s->labels[s->n_labels].hash, h, JOURNAL_WIPE_HASH);
	snprintf(s->labels[s->n_labels++].id, sizeof(s->labels[0].id), "%s", id);
}

const char *journal_wipe_label(const struct journal_state *s, const uint8_t hash[JOURNAL_WIPE_HASH])
{
	for (int i = s->n_labels - 1; i >= 0; i--)
		if (!memcmp(s->labels[i].hash, hash, JOURNAL_WIPE_HASH))
			return s->labels[i].id;
	return "";
}

int journal_wipe_record(struct journal_state *s, const char *id)
{
	uint8_t h[JOURNAL_WIPE_HASH];
	journal_wipe_hash(id, h);
	if (hash_consumed(s, h))
		return 0;
	if (s->n_wipes == JOURNAL_MAX_WIPES)
		return -ENOSPC;
	s->wipes[s->n_wipes].seq = s->seq + 1;
	memcpy(s->wipes[s->n_wipes++].hash, h, JOURNAL_WIPE_HASH);
	add_label(s, h, id);
	return 0;
}

void journal_set_role(struct journal_state *s, enum cfg_kind k, const char *role, uint64_t epoch)
{
	if (k >= _CFG_KIND_MAX)
		return;
	s->roles[k].set = true;
	s->roles[k].epoch = epoch;
	snprintf(s->roles[k].role, sizeof(s->roles[k].role), "%s", role);
}

void journal_set_good_config(struct journal_state *s, uint64_t version, const uint8_t hash[32])
{
	s->has_good = true;
	s->good.version = version;
	memcpy(s->good.hash, hash, 32);
}

void journal_set_trial_config(struct journal_state *s, uint64_t version, const uint8_t hash[32])
{
	s->has_trial = true;
	s->trial.version = version;
	memcpy(s->trial.hash, hash, 32);
	s->trial_boots = 0;
}

void journal_add_failed_config(struct journal_state *s, uint64_t version, const uint8_t hash[32])
{
	for (int i = 0; i < s->n_failed; i++)
		if (s->failed[i].version == version && !memcmp(s->failed[i].hash, hash, 32))
			return;
	if (s->n_failed == JOURNAL_MAX_FAILED) {
		memmove(&s->failed[0], &s->failed[1],
			sizeof(s->failed[0]) * (JOURNAL_MAX_FAILED - 1));
		s->n_failed--;
	}
	s->failed[s->n_failed].version = version;
	memcpy(s->failed[s->n_failed++].hash, hash, 32);
}
