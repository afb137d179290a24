/* Configuration transfer: the pure message and reassembly code, then the driver. */
#include "cfgsync.h"

#include "log.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- pure ---- */

static uint8_t *put(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

static uint64_t get(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

size_t cfgsync_get_encode(const struct cfgsync_get *g, uint8_t out[CFGSYNC_GET_LEN])
{
	uint8_t *p = put(out, g->version, 8);
	memcpy(p, g->hash, 32);
	put(p + 32, g->offset, 4);
	return CFGSYNC_GET_LEN;
}

int cfgsync_get_decode(const uint8_t *p, size_t n, struct cfgsync_get *ret)
{
	if (n != CFGSYNC_GET_LEN)
		return -EBADMSG;
	ret->version = get(p, 8);
	memcpy(ret->hash, p + 8, 32);
	ret->offset = (uint32_t)get(p + 40, 4);
	return 0;
}

size_t cfgsync_data_encode(const struct cfgsync_data *d, uint8_t *out)
{
	uint8_t *p = put(out, d->version, 8);
	memcpy(p, d->hash, 32);
	p = put(p + 32, d->total, 4);
	p = put(p, d->offset, 4);
	if (d->len)
		memcpy(p, d->bytes, d->len);
	return CFGSYNC_DATA_HDR + d->len;
}

int cfgsync_data_decode(const uint8_t *p, size_t n, struct cfgsync_data *ret)
{
	if (n < CFGSYNC_DATA_HDR || n > HS_BLOB_MAX)
		return -EBADMSG;
	ret->version = get(p, 8);
	memcpy(ret->hash, p + 8, 32);
	ret->total = (uint32_t)get(p + 40, 4);
	ret->offset = (uint32_t)get(p + 44, 4);
	ret->bytes = p + CFGSYNC_DATA_HDR;
	ret->len = n - CFGSYNC_DATA_HDR;
	if ((uint64_t)ret->offset + ret->len > ret->total)
		return -EBADMSG;
	return 0;
}

const char *cfgsync_rx_result_to_str(enum cfgsync_rx_result r)
{
	switch (r) {
	case CFGSYNC_MORE:
		return "more";
	case CFGSYNC_DONE:
		return "done";
	case CFGSYNC_IGNORED:
		return "ignored";
	case CFGSYNC_TOO_LARGE:
		return "too-large";
	case CFGSYNC_BAD_HASH:
		return "hash-mismatch";
	}
	return "?";
}

void cfgsync_rx_start(struct cfgsync_rx *rx, uint64_t version, const uint8_t hash[32])
{
	cfgsync_rx_clear(rx);
	rx->version = version;
	memcpy(rx->hash, hash, 32);
}

void cfgsync_rx_clear(struct cfgsync_rx *rx)
{
	free(rx->buf);
	*rx = (struct cfgsync_rx){0};
}

static enum cfgsync_rx_result first_chunk(struct cfgsync_rx *rx, uint32_t total)
{
	if (total > CFG_MAX_TEXT)
		return CFGSYNC_TOO_LARGE;
	rx->buf = malloc(total ? total : 1);
	if (!rx->buf)
		return CFGSYNC_TOO_LARGE;
	rx->total = total;
	rx->has_total = true;
	return CFGSYNC_MORE;
}

enum cfgsync_rx_result cfgsync_rx_feed(struct cfgsync_rx *rx, const struct cfgsync_data *d)
{
	if (d->version != rx->version || memcmp(d->hash, rx->hash, 32) || d->offset != rx->got)
		return CFGSYNC_IGNORED;
	if (!rx->has_total) {
		enum cfgsync_rx_result r = first_chunk(rx, d->total);
		if (r != CFGSYNC_MORE)
			return r;
	}
	if (d->total != rx->total)
		return CFGSYNC_TOO_LARGE;
	if ((uint64_t)d->offset + d->len > rx->total || (d->len == 0 && rx->got < rx->total))
		return CFGSYNC_IGNORED;
	memcpy(rx->buf + rx->got, d->bytes, d->len);
	rx->got += (uint32_t)d->len;
	if (rx->got < rx->total)
		return CFGSYNC_MORE;
	uint8_t h[32];
	crypto_generichash(h, sizeof(h), rx->buf, rx->total, NULL, 0);
	return sodium_memcmp(h, rx->hash, 32) == 0 ? CFGSYNC_DONE : CFGSYNC_BAD_HASH;
}

/* ---- the driver ---- */

#define CFGSYNC_REFUSED_MAX 16
#define CFGSYNC_COOLDOWN_US (5 * USEC_PER_SEC)

struct cfgsync {
	struct node_env *env;
	struct loop *loop;
	struct hs *hs;
	const struct cfg *cfg;
	int self;
	cfgsync_got_fn fn;
	cfgsync_skip_fn skip;
	void *ud;
	/* the fetch in progress */
	bool active;
	int from;
	struct cfgsync_rx rx;
	int tries;
	uint64_t started_us, idle_until_us;
	struct timer *t_retry;
	struct cfgsync_get refused[CFGSYNC_REFUSED_MAX]; /* offset unused */
	int n_refused;
	/* what this node serves: its file, when its hash is the running one's (or the
	 * offered one's: cfgsync_set_offer) */
	uint64_t offer_version;
	uint8_t offer_hash[32];
	char *text;
	size_t text_len;
	uint8_t text_hash[32];
	uint64_t asked_bytes, served_bytes;
};

static void cfg_event(const char *action, uint64_t version, const char *node, const char *key,
		      const char *val)
{
	struct event ev;
	event_begin(&ev, "config");
	event_add(&ev, "action", action);
	event_add_u64(&ev, "version", version);
	event_add(&ev, "from", node);
	if (key)
		event_add(&ev, key, val);
	event_emit(&ev);
}

static bool refused(const struct cfgsync *s, uint64_t version, const uint8_t hash[32])
{
	for (int i = 0; i < s->n_refused; i++)
		if (s->refused[i].version == version && !memcmp(s->refused[i].hash, hash, 32))
			return true;
	return false;
}

void cfgsync_refuse(struct cfgsync *s, uint64_t version, const uint8_t hash[32])
{
	if (!s || refused(s, version, hash))
		return;
	struct cfgsync_get *g = &s->refused[s->n_refused % CFGSYNC_REFUSED_MAX];
	g->version = version;
	memcpy(g->hash, hash, 32);
	if (s->n_refused < CFGSYNC_REFUSED_MAX)
		s->n_refused++;
}

static void ask(struct cfgsync *s)
{
	uint8_t b[CFGSYNC_GET_LEN];
	struct cfgsync_get g = {.version = s->rx.version, .offset = s->rx.got};
	memcpy(g.hash, s->rx.hash, 32);
	cfgsync_get_encode(&g, b);
	if (hs_send(s->hs, s->from, HS_MSG_CONFIG_GET, b, sizeof(b)) >= 0)
		s->asked_bytes += HS_WIRE_HDR + sizeof(b) + HS_WIRE_TAG;
	timer_arm(s->t_retry, loop_now(s->loop) + s->cfg->timeouts.handshake_timeout);
}

static void stop(struct cfgsync *s, bool cooldown)
{
	s->active = false;
	s->env->config_fetching = false;
	cfgsync_rx_clear(&s->rx);
	timer_disarm(s->t_retry);
	if (cooldown)
		s->idle_until_us = loop_now(s->loop) + CFGSYNC_COOLDOWN_US;
}

static void on_retry(struct timer *t, void *ud)
{
	struct cfgsync *s = ud;
	if (!s->active)
		return;
	if (++s->tries > CFGSYNC_RETRIES) {
		cfg_event("fetch-failed", s->rx.version, s->cfg->nodes[s->from].name, "reason",
			  "no-answer");
		stop(s, true);
		return;
	}
	ask(s);
}

/* A peer announced (version, hash): fetch it when it is newer than ours. */
static void on_announce(int node, uint64_t version, const uint8_t hash[32], void *ud)
{
	struct cfgsync *s = ud;
	if (s->active || version <= s->cfg->version || refused(s, version, hash) ||
	    loop_now(s->loop) < s->idle_until_us)
		return;
	if (s->skip && s->skip(version, hash, s->ud)) {
		cfg_event("skip", version, s->cfg->nodes[node].name, "reason", "failed-here");
		cfgsync_refuse(s, version, hash);
		return;
	}
	s->active = true;
	s->env->config_fetching = true;
	s->from = node;
	s->tries = 0;
	s->started_us = now_usec();
	cfgsync_rx_start(&s->rx, version, hash);
	char running[24];
	snprintf(running, sizeof(running), "%" PRIu64, s->cfg->version);
	cfg_event("fetch", version, s->cfg->nodes[node].name, "running", running);
	ask(s);
}

static void finish(struct cfgsync *s, enum cfgsync_rx_result r)
{
	const char *from = s->cfg->nodes[s->from].name;
	if (r != CFGSYNC_DONE) {
		cfg_event("refused", s->rx.version, from, "reason", cfgsync_rx_result_to_str(r));
		cfgsync_refuse(s, s->rx.version, s->rx.hash);
		stop(s, true);
		return;
	}
	char ms[24];
	snprintf(ms, sizeof(ms), "%" PRIu64, (now_usec() - s->started_us) / 1000);
	struct cfgsync_rx rx = s->rx;
	int node = s->from;
	s->rx = (struct cfgsync_rx){0};
	stop(s, false);
	cfg_event("fetched", rx.version, from, "ms", ms);
	s->fn((const char *)rx.buf, rx.total, rx.version, rx.hash, node, s->ud);
	cfgsync_rx_clear(&rx);
}

static void on_data(const struct hs_msg *m, int from, void *ud)
{
	struct cfgsync *s = ud;
	struct cfgsync_data d;
	if (!s->active || from != s->from || cfgsync_data_decode(m->blob.data, m->blob.len, &d) < 0)
		return;
	enum cfgsync_rx_result r = cfgsync_rx_feed(&s->rx, &d);
	switch (r) {
	case CFGSYNC_IGNORED:
		return;
	case CFGSYNC_MORE:
		s->tries = 0;
		ask(s);
		return;
	case CFGSYNC_DONE:
	case CFGSYNC_TOO_LARGE:
	case CFGSYNC_BAD_HASH:
		finish(s, r);
		return;
	}
}

/* The version and hash served: the offered ones, else the running one's. */
static uint64_t served(const struct cfgsync *s, const uint8_t **hash)
{
	if (s->offer_version > s->cfg->version) {
		*hash = s->offer_hash;
		return s->offer_version;
	}
	*hash = s->cfg->hash;
	return s->cfg->version;
}

/* The running (or offered) file's bytes, re-read while its hash is not the one served. */
static bool serving_text(struct cfgsync *s)
{
	const uint8_t *h;
	(void)served(s, &h);
	if (s->text && !memcmp(s->text_hash, h, 32))
		return true;
	free(s->text);
	s->text = NULL;
	if (read_full_file(s->cfg->path, CFG_MAX_TEXT, &s->text, &s->text_len) < 0)
		return false;
	crypto_generichash(s->text_hash, 32, (const uint8_t *)s->text, s->text_len, NULL, 0);
	return !memcmp(s->text_hash, h, 32);
}

void cfgsync_set_offer(struct cfgsync *s, uint64_t version, const uint8_t hash[32])
{
	if (!s)
		return;
	s->offer_version = version;
	if (version)
		memcpy(s->offer_hash, hash, 32);
}

static void on_get(const struct hs_msg *m, int from, void *ud)
{
	struct cfgsync *s = ud;
	struct cfgsync_get g;
	const uint8_t *h;
	uint64_t v = served(s, &h);
	if (cfgsync_get_decode(m->blob.data, m->blob.len, &g) < 0 || g.version != v ||
	    memcmp(g.hash, h, 32) || !serving_text(s) || g.offset > s->text_len)
		return;
	size_t n = s->text_len - g.offset;
	struct cfgsync_data d = {.version = g.version,
				 .total = (uint32_t)s->text_len,
				 .offset = g.offset,
				 .bytes = (const uint8_t *)s->text + g.offset,
				 .len = n < CFGSYNC_CHUNK ? n : CFGSYNC_CHUNK};
	memcpy(d.hash, g.hash, 32);
	uint8_t b[HS_BLOB_MAX];
	size_t n_b = cfgsync_data_encode(&d, b);
	if (hs_send(s->hs, from, HS_MSG_CONFIG_DATA, b, n_b) >= 0)
		s->served_bytes += HS_WIRE_HDR + n_b + HS_WIRE_TAG;
}

int cfgsync_new(struct node_env *env, struct hs *hs, cfgsync_got_fn fn, void *ud,
		struct cfgsync **ret)
{
	struct cfgsync *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct cfgsync){.env = env,
			      .loop = env->loop,
			      .hs = hs,
			      .cfg = env->cfg,
			      .self = env->self,
			      .fn = fn,
			      .ud = ud};
	struct loop *l = env->loop;
	s->t_retry = timer_new(l, on_retry, s);
	int r = s->t_retry ? 0 : -ENOMEM;
	if (r >= 0)
		r = hs_subscribe(hs, HS_MSG_CONFIG_GET, on_get, s);
	if (r >= 0)
		r = hs_subscribe(hs, HS_MSG_CONFIG_DATA, on_data, s);
	if (r < 0) {
		cfgsync_free(s);
		return r;
	}
	hs_set_config_fn(hs, on_announce, s);
	*ret = s;
	return 0;
}

void cfgsync_set_skip(struct cfgsync *s, cfgsync_skip_fn fn)
{
	if (s)
		s->skip = fn;
}

void cfgsync_bytes_sent(const struct cfgsync *s, uint64_t *asked, uint64_t *served)
{
	*asked = s ? s->asked_bytes : 0;
	*served = s ? s->served_bytes : 0;
}

struct cfgsync *cfgsync_free(struct cfgsync *s)
{
	if (!s)
		return NULL;
	cfgsync_rx_clear(&s->rx);
	timer_free(s->t_retry);
	free(s->text);
	free(s);
	return NULL;
}
