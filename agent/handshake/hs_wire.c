/* Encoding, sealing, opening and replay checks of handshake datagrams; see hs_wire.h
 * for the format. Pure: every input comes in as bytes, nothing is read from outside. */
#include "hs_wire.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#define HS_MAGIC "CMPH"
#define HS_KDF_CTX "cmpt-hs1"
#define HS_KDF_ID 1
#define HELLO_LEN (18 + HS_CONFIG_HASH_BYTES)
#define HB_LEN (39 + HS_CONFIG_HASH_BYTES)
#define ACK_LEN 8

static const char *const drop_str[_HS_DROP_MAX] = {
    [HS_DROP_NONE] = "none",
    [HS_DROP_TRUNCATED] = "truncated",
    [HS_DROP_OVERSIZE] = "oversize",
    [HS_DROP_BAD_MAGIC] = "bad-magic",
    [HS_DROP_VERSION] = "version",
    [HS_DROP_TYPE] = "type",
    [HS_DROP_UNKNOWN_SENDER] = "unknown-sender",
    [HS_DROP_MISDIRECTED] = "misdirected",
    [HS_DROP_BAD_TAG] = "bad-tag",
    [HS_DROP_MALFORMED] = "malformed",
    [HS_DROP_REPLAY] = "replay",
    [HS_DROP_OLD_BOOT] = "old-boot",
    [HS_DROP_UNVERIFIED_BOOT] = "unverified-boot",
    [HS_DROP_HELLO_RATE] = "hello-rate",
};

const char *hs_drop_to_str(enum hs_drop d)
{
	return d < _HS_DROP_MAX ? drop_str[d] : NULL;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hs_key_parse(const uint8_t *buf, size_t len, uint8_t ret[HS_KEY_BYTES])
{
	if (len == HS_KEY_BYTES) {
		memcpy(ret, buf, HS_KEY_BYTES);
		return 0;
	}
	size_t n = len;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		n--;
	if (n != 2 * HS_KEY_BYTES)
		return -EINVAL;
	uint8_t k[HS_KEY_BYTES];
	for (size_t i = 0; i < HS_KEY_BYTES; i++) {
		int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			sodium_memzero(k, sizeof(k));
			return -EINVAL;
		}
		k[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(ret, k, HS_KEY_BYTES);
	sodium_memzero(k, sizeof(k));
	return 0;
}

static bool is_space(uint8_t c)
{
	return c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

int hs_keys_parse(const uint8_t *buf, size_t len, uint8_t ret[HS_KEYS_MAX][HS_KEY_BYTES])
{
	if (len == HS_KEY_BYTES)
		return hs_key_parse(buf, len, ret[0]) < 0 ? -EINVAL : 1;
	uint8_t k[HS_KEYS_MAX][HS_KEY_BYTES];
	int n = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && is_space(buf[i]))
			i++;
		size_t start = i;
		while (i < len && !is_space(buf[i]))
			i++;
		if (i == start)
			break;
		if (n == HS_KEYS_MAX || i - start != 2 * HS_KEY_BYTES ||
		    hs_key_parse(buf + start, i - start, k[n]) < 0) {
			sodium_memzero(k, sizeof(k));
			return -EINVAL;
		}
		n++;
	}
	if (n > 0)
		memcpy(ret, k, (size_t)n * HS_KEY_BYTES);
	sodium_memzero(k, sizeof(k));
	return n > 0 ? n : -EINVAL;
}

int hs_key_derive(const uint8_t cluster_key[HS_KEY_BYTES], const char *cluster_name,
		  uint8_t ret[HS_KEY_BYTES])
{
	uint8_t sub[HS_KEY_BYTES];
	if (crypto_kdf_derive_from_key(sub, sizeof(sub), HS_KDF_ID, HS_KDF_CTX, cluster_key) != 0)
		return -EINVAL;
	int r = crypto_generichash(ret, HS_KEY_BYTES, (const uint8_t *)cluster_name,
				   strlen(cluster_name), sub, sizeof(sub));
	sodium_memzero(sub, sizeof(sub));
	return r == 0 ? 0 : -EINVAL;
}

void hs_key_id(const uint8_t cluster_key[HS_KEY_BYTES], uint8_t ret[HS_KEY_ID_BYTES])
{
	static const char what[] = "compartd cluster key id";
	crypto_generichash(ret, HS_KEY_ID_BYTES, (const uint8_t *)what, sizeof(what) - 1,
			   cluster_key, HS_KEY_BYTES);
}

/* Big-endian cursor over a bounded buffer; every read checks the bound. */
struct cur {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint64_t get_n(struct cur *c, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | c->p[i];
	c->p += n;
	c->left -= n;
	return v;
}

static void get_bytes(struct cur *c, uint8_t *out, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = true;
		memset(out, 0, n);
		return;
	}
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
}

static uint8_t *put_n(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

static void encode_hdr(const struct hs_wire_hdr *h, uint8_t *out)
{
	memcpy(out, HS_MAGIC, 4);
	out[4] = h->version;
	out[5] = h->type;
	uint8_t *p = put_n(out + 6, h->sender, 2);
	p = put_n(p, h->dest, 2);
	p = put_n(p, 0, 2);
	memcpy(p, h->boot_id, HS_BOOT_ID_BYTES);
	put_n(p + HS_BOOT_ID_BYTES, h->counter, 8);
}

static uint8_t *encode_hello(const struct hs_hello *m, uint8_t *p)
{
	p = put_n(p, m->challenge, 8);
	*p++ = (uint8_t)((m->external ? 1 : 0) | (m->mgmt_running ? 2 : 0));
	*p++ = m->profile;
	p = put_n(p, m->config_version, 8);
	memcpy(p, m->config_hash, HS_CONFIG_HASH_BYTES);
	return p + HS_CONFIG_HASH_BYTES;
}

static uint8_t *encode_hb(const struct hs_heartbeat *m, uint8_t *p)
{
	p = put_n(p, m->seq, 8);
	for (int k = 0; k < HS_KINDS; k++)
		p = put_n(p, m->epoch[k], 8);
	for (int k = 0; k < HS_KINDS; k++)
		*p++ = m->role[k];
	*p++ = m->profile;
	*p++ = m->health;
	p = put_n(p, m->health_failed, 2);
	p = put_n(p, m->config_version, 8);
	memcpy(p, m->config_hash, HS_CONFIG_HASH_BYTES);
	p += HS_CONFIG_HASH_BYTES;
	*p++ = m->mgmt_running ? 1 : 0;
	return p;
}

/* Writes the payload of m into p (room for HS_WIRE_MAX_PAYLOAD); returns its length. */
static int encode_payload(const struct hs_msg *m, uint8_t *p)
{
	switch (m->type) {
	case HS_MSG_HELLO:
	case HS_MSG_HELLO_ACK:
		return (int)(encode_hello(&m->hello, p) - p);
	case HS_MSG_HEARTBEAT:
		return (int)(encode_hb(&m->hb, p) - p);
	case HS_MSG_HEARTBEAT_ACK:
		return (int)(put_n(p, m->ack_seq, 8) - p);
	case HS_MSG_QUERY:
	case HS_MSG_QUERY_REPLY:
	case HS_MSG_CONFIG_GET:
	case HS_MSG_CONFIG_DATA:
	case HS_MSG_SWIM:
		if (m->blob.len > HS_BLOB_MAX)
			return -EMSGSIZE;
		if (m->blob.len)
			memcpy(p, m->blob.data, m->blob.len);
		return (int)m->blob.len;
	case _HS_MSG_MAX:
		break;
	}
	return -EINVAL;
}

static void make_nonce(const struct hs_wire_hdr *h, uint8_t nonce[24])
{
	memcpy(nonce, h->boot_id, HS_BOOT_ID_BYTES);
	put_n(nonce + HS_BOOT_ID_BYTES, h->counter, 8);
}

int hs_wire_seal(const uint8_t key[HS_KEY_BYTES], const struct hs_wire_hdr *h,
		 const struct hs_msg *m, uint8_t *out, size_t out_size)
{
	if (out_size < HS_WIRE_MAX)
		return -EMSGSIZE;
	if (h->type != m->type || m->type >= _HS_MSG_MAX)
		return -EINVAL;
	uint8_t plain[HS_WIRE_MAX_PAYLOAD];
	int n = encode_payload(m, plain);
	if (n < 0)
		return n;
	encode_hdr(h, out);
	uint8_t nonce[24];
	make_nonce(h, nonce);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + HS_WIRE_HDR, &clen, plain, (size_t)n, out,
						   HS_WIRE_HDR, NULL, nonce, key);
	sodium_memzero(plain, sizeof(plain));
	return (int)(HS_WIRE_HDR + clen);
}

enum hs_drop hs_wire_parse_hdr(const uint8_t *buf, size_t len, struct hs_wire_hdr *ret)
{
	if (len > HS_WIRE_MAX)
		return HS_DROP_OVERSIZE;
	if (len < HS_WIRE_HDR + HS_WIRE_TAG)
		return HS_DROP_TRUNCATED;
	if (memcmp(buf, HS_MAGIC, 4))
		return HS_DROP_BAD_MAGIC;
	if (buf[4] != HS_WIRE_VERSION)
		return HS_DROP_VERSION;
	if (buf[5] >= _HS_MSG_MAX)
		return HS_DROP_TYPE;
	struct cur c = {.p = buf + 6, .left = HS_WIRE_HDR - 6};
	struct hs_wire_hdr h = {.version = buf[4], .type = buf[5]};
	h.sender = (uint16_t)get_n(&c, 2);
	h.dest = (uint16_t)get_n(&c, 2);
	if (get_n(&c, 2) != 0)
		return HS_DROP_BAD_MAGIC; /* reserved bits set: not a datagram we know */
	memcpy(h.boot_id, c.p, HS_BOOT_ID_BYTES);
	c.p += HS_BOOT_ID_BYTES;
	c.left -= HS_BOOT_ID_BYTES;
	h.counter = get_n(&c, 8);
	*ret = h;
	return HS_DROP_NONE;
}

static bool decode_hello(struct cur *c, struct hs_hello *m)
{
	m->challenge = get_n(c, 8);
	uint8_t fl = (uint8_t)get_n(c, 1);
	m->external = fl & 1;
	m->mgmt_running = fl & 2;
	m->profile = (uint8_t)get_n(c, 1);
	m->config_version = get_n(c, 8);
	get_bytes(c, m->config_hash, HS_CONFIG_HASH_BYTES);
	return !(fl & ~3u);
}

static void decode_hb(struct cur *c, struct hs_heartbeat *m)
{
	m->seq = get_n(c, 8);
	for (int k = 0; k < HS_KINDS; k++)
		m->epoch[k] = get_n(c, 8);
	for (int k = 0; k < HS_KINDS; k++)
		m->role[k] = (uint8_t)get_n(c, 1);
	m->profile = (uint8_t)get_n(c, 1);
	m->health = (uint8_t)get_n(c, 1);
	m->health_failed = (uint16_t)get_n(c, 2);
	m->config_version = get_n(c, 8);
	get_bytes(c, m->config_hash, HS_CONFIG_HASH_BYTES);
	uint8_t fl = (uint8_t)get_n(c, 1);
	m->mgmt_running = fl & 1;
	if (fl & ~1u)
		c->bad = true;
}

static enum hs_drop decode_payload(enum hs_msg_type t, const uint8_t *p, size_t n,
				   struct hs_msg *ret)
{
	struct cur c = {.p = p, .left = n};
	struct hs_msg m = {.type = t};
	size_t want = 0;
	switch (t) {
	case HS_MSG_HELLO:
	case HS_MSG_HELLO_ACK:
		want = HELLO_LEN;
		if (!decode_hello(&c, &m.hello))
			return HS_DROP_MALFORMED;
		break;
	case HS_MSG_HEARTBEAT:
		want = HB_LEN;
		decode_hb(&c, &m.hb);
		break;
	case HS_MSG_HEARTBEAT_ACK:
		want = ACK_LEN;
		m.ack_seq = get_n(&c, 8);
		break;
	case HS_MSG_QUERY:
	case HS_MSG_QUERY_REPLY:
	case HS_MSG_CONFIG_GET:
	case HS_MSG_CONFIG_DATA:
	case HS_MSG_SWIM:
		want = n;
		m.blob.data = p;
		m.blob.len = n;
		break;
	case _HS_MSG_MAX:
		return HS_DROP_TYPE;
	}
	if (c.bad || n != want)
		return HS_DROP_MALFORMED;
	*ret = m;
	return HS_DROP_NONE;
}

enum hs_drop hs_wire_open(const uint8_t key[HS_KEY_BYTES], const uint8_t *buf, size_t len,
			  const struct hs_wire_hdr *h, uint8_t *plain, struct hs_msg *ret)
{
	if (len > HS_WIRE_MAX)
		return HS_DROP_OVERSIZE;
	if (len < HS_WIRE_HDR + HS_WIRE_TAG)
		return HS_DROP_TRUNCATED;
	uint8_t nonce[24];
	make_nonce(h, nonce);
	unsigned long long n = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &n, NULL, buf + HS_WIRE_HDR,
						       len - HS_WIRE_HDR, buf, HS_WIRE_HDR, nonce,
						       key) != 0)
		return HS_DROP_BAD_TAG;
	return decode_payload((enum hs_msg_type)h->type, plain, (size_t)n, ret);
}

#define WIN_BITS 128

static bool win_test(const struct hs_replay *r, uint64_t d)
{
	return r->bits[d / 64] >> (d % 64) & 1;
}

/* Slides the window so that `counter` is its top. */
static void win_advance(struct hs_replay *r, uint64_t counter)
{
	uint64_t shift = counter - r->top;
	if (shift >= WIN_BITS) {
		r->bits[0] = r->bits[1] = 0;
	} else if (shift >= 64) {
		r->bits[1] = r->bits[0] << (shift - 64);
		r->bits[0] = 0;
	} else if (shift > 0) {
		r->bits[1] = r->bits[1] << shift | r->bits[0] >> (64 - shift);
		r->bits[0] <<= shift;
	}
	r->top = counter;
}

static enum hs_drop win_accept(struct hs_replay *r, uint64_t counter)
{
	if (counter > r->top) {
		win_advance(r, counter);
		r->bits[0] |= 1;
		return HS_DROP_NONE;
	}
	uint64_t d = r->top - counter;
	if (d >= WIN_BITS || win_test(r, d))
		return HS_DROP_REPLAY;
	r->bits[d / 64] |= 1ULL << (d % 64);
	return HS_DROP_NONE;
}

static void adopt_boot(struct hs_replay *r, const uint8_t boot[HS_BOOT_ID_BYTES])
{
	if (r->has_boot) {
		if (r->n_old == HS_OLD_BOOTS) {
			memmove(r->old[0], r->old[1], sizeof(r->old[0]) * (HS_OLD_BOOTS - 1));
			r->n_old--;
		}
		memcpy(r->old[r->n_old++], r->boot, HS_BOOT_ID_BYTES);
	}
	memcpy(r->boot, boot, HS_BOOT_ID_BYTES);
	r->has_boot = true;
	r->top = 0;
	r->bits[0] = r->bits[1] = 0;
}

enum hs_drop hs_replay_check(struct hs_replay *r, const uint8_t boot[HS_BOOT_ID_BYTES],
			     uint64_t counter, bool fresh, bool probe)
{
	if (counter == 0)
		return HS_DROP_REPLAY;
	if (r->has_boot && !memcmp(r->boot, boot, HS_BOOT_ID_BYTES))
		return win_accept(r, counter);
	for (int i = 0; i < r->n_old; i++)
		if (!memcmp(r->old[i], boot, HS_BOOT_ID_BYTES))
			return HS_DROP_OLD_BOOT;
	if (fresh) {
		adopt_boot(r, boot);
		/* Everything below the first verified counter counts as seen: no back-fill. */
		r->top = counter;
		r->bits[0] = r->bits[1] = ~0ULL;
		return HS_DROP_NONE;
	}
	return probe ? HS_DROP_NONE : HS_DROP_UNVERIFIED_BOOT;
}
