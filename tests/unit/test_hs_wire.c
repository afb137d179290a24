/* Handshake datagrams: key files, sealing and opening every message type, every drop
 * reason of the decoder, the replay window under reordering, boot id changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hs_wire.h"
#include "util.h"

#include <sodium.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

static uint8_t key[HS_KEY_BYTES];

static struct hs_wire_hdr hdr(enum hs_msg_type t, uint64_t counter)
{
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION,
				.type = (uint8_t)t,
				.sender = 2,
				.dest = 1,
				.counter = counter};
	memset(h.boot_id, 0xb0, sizeof(h.boot_id));
	return h;
}

static void key_files(void **state)
{
	uint8_t k[HS_KEY_BYTES], raw[HS_KEY_BYTES];
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(read_full_file(SRCDIR "/images/rig/cluster.key", 4096, &text, &len), 0);
	assert_int_equal(hs_key_parse((uint8_t *)text, len, k), 0);
	assert_int_equal(k[0], 0xfc);
	assert_int_equal(k[31], 0xbd);
	/* the same key without the newline, in upper case, and as raw bytes */
	for (size_t i = 0; i < 64; i++)
		text[i] = (char)(text[i] >= 'a' ? text[i] - 32 : text[i]);
	assert_int_equal(hs_key_parse((uint8_t *)text, 64, raw), 0);
	assert_memory_equal(raw, k, sizeof(k));
	assert_int_equal(hs_key_parse(k, sizeof(k), raw), 0);
	assert_memory_equal(raw, k, sizeof(k));
	static const char *const bad[] = {"", "abc",
					  "0123456789abcdef0123456789abcdef0123456789abcdef"
					  "0123456789abcdeg",
					  "0123456789abcdef0123456789abcdef0123456789abcdef"
					  "0123456789abcdef00"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(hs_key_parse((const uint8_t *)bad[i], strlen(bad[i]), raw),
				 -EINVAL);
	free(text);
	/* derivation: deterministic, not the key itself, and bound to the cluster name */
	uint8_t d1[HS_KEY_BYTES], d2[HS_KEY_BYTES], d3[HS_KEY_BYTES];
	assert_int_equal(hs_key_derive(k, "rig", d1), 0);
	assert_int_equal(hs_key_derive(k, "rig", d2), 0);
	assert_int_equal(hs_key_derive(k, "rig2", d3), 0);
	assert_memory_equal(d1, d2, sizeof(d1));
	assert_memory_not_equal(d1, k, sizeof(d1));
	assert_memory_not_equal(d1, d3, sizeof(d1));
}

/* Two clusters sharing a cluster key do not accept each other's datagrams. */
static void cluster_name_binds_the_key(void **state)
{
	uint8_t ck[HS_KEY_BYTES], ka[HS_KEY_BYTES], kb[HS_KEY_BYTES], buf[HS_WIRE_MAX];
	uint8_t plain[HS_WIRE_MAX];
	randombytes_buf(ck, sizeof(ck));
	assert_int_equal(hs_key_derive(ck, "alpha", ka), 0);
	assert_int_equal(hs_key_derive(ck, "beta", kb), 0);
	struct hs_wire_hdr h = {
	    .version = HS_WIRE_VERSION, .type = HS_MSG_HEARTBEAT_ACK, .sender = 1, .counter = 1};
	struct hs_msg m = {.type = HS_MSG_HEARTBEAT_ACK, .ack_seq = 9}, out;
	int n = hs_wire_seal(ka, &h, &m, buf, sizeof(buf));
	assert_true(n > 0);
	struct hs_wire_hdr got;
	assert_int_equal(hs_wire_parse_hdr(buf, (size_t)n, &got), HS_DROP_NONE);
	assert_int_equal(hs_wire_open(kb, buf, (size_t)n, &got, plain, &out), HS_DROP_BAD_TAG);
	assert_int_equal(hs_wire_open(ka, buf, (size_t)n, &got, plain, &out), HS_DROP_NONE);
}

/* Rotation files: one or two hex keys; anything else refused. Ids differ per key. */
static void key_sets(void **state)
{
	uint8_t k[HS_KEYS_MAX][HS_KEY_BYTES];
	static const char one[] =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	static const char two[] =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";
	static const char three[] =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	assert_int_equal(hs_keys_parse((const uint8_t *)one, strlen(one), k), 1);
	assert_int_equal(k[0][0], 0x00);
	assert_int_equal(k[0][31], 0xff);
	assert_int_equal(hs_keys_parse((const uint8_t *)two, strlen(two), k), 2);
	assert_int_equal(k[1][0], 0xff);
	assert_int_equal(hs_keys_parse((const uint8_t *)three, strlen(three), k), -EINVAL);
	assert_int_equal(hs_keys_parse((const uint8_t *)"\n\n", 2, k), -EINVAL);
	assert_int_equal(hs_keys_parse((const uint8_t *)two, 70, k), -EINVAL); /* cut short */
	uint8_t id0[HS_KEY_ID_BYTES], id1[HS_KEY_ID_BYTES];
	hs_key_parse((const uint8_t *)two, 64, k[0]);
	hs_key_id(k[0], id0);
	hs_key_id(k[1], id1);
	assert_memory_not_equal(id0, id1, sizeof(id0));
}

static enum hs_drop roundtrip(const struct hs_wire_hdr *h, const struct hs_msg *m,
			      struct hs_msg *out, uint8_t *plain)
{
	static uint8_t buf[HS_WIRE_MAX];
	int n = hs_wire_seal(key, h, m, buf, sizeof(buf));
	assert_true(n > HS_WIRE_HDR);
	struct hs_wire_hdr got;
	assert_int_equal(hs_wire_parse_hdr(buf, (size_t)n, &got), HS_DROP_NONE);
	assert_int_equal(got.sender, h->sender);
	assert_int_equal(got.dest, h->dest);
	assert_true(got.counter == h->counter);
	assert_memory_equal(got.boot_id, h->boot_id, HS_BOOT_ID_BYTES);
	return hs_wire_open(key, buf, (size_t)n, &got, plain, out);
}

static void every_message_round_trips(void **state)
{
	uint8_t plain[HS_WIRE_MAX];
	struct hs_msg out;
	struct hs_msg hello = {.type = HS_MSG_HELLO,
			       .hello = {.challenge = 0x1122334455667788ULL,
					 .external = true,
					 .mgmt_running = true,
					 .profile = 2,
					 .config_version = 7}};
	memset(hello.hello.config_hash, 0xa5, sizeof(hello.hello.config_hash));
	struct hs_wire_hdr h = hdr(HS_MSG_HELLO, 5);
	assert_int_equal(roundtrip(&h, &hello, &out, plain), HS_DROP_NONE);
	assert_int_equal(out.type, HS_MSG_HELLO);
	assert_true(out.hello.challenge == hello.hello.challenge);
	assert_true(out.hello.external && out.hello.mgmt_running);
	assert_int_equal(out.hello.profile, 2);
	assert_int_equal(out.hello.config_version, 7);
	assert_memory_equal(out.hello.config_hash, hello.hello.config_hash, HS_CONFIG_HASH_BYTES);
	hello.type = HS_MSG_HELLO_ACK;
	h = hdr(HS_MSG_HELLO_ACK, 6);
	assert_int_equal(roundtrip(&h, &hello, &out, plain), HS_DROP_NONE);
	assert_int_equal(out.type, HS_MSG_HELLO_ACK);

	struct hs_msg hb = {.type = HS_MSG_HEARTBEAT,
			    .hb = {.seq = 99,
				   .epoch = {3, 4},
				   .role = {1, 2},
				   .profile = 1,
				   .health = 1,
				   .health_failed = 513,
				   .config_version = 12,
				   .mgmt_running = true}};
	for (int i = 0; i < HS_CONFIG_HASH_BYTES; i++)
		hb.hb.config_hash[i] = (uint8_t)i;
	h = hdr(HS_MSG_HEARTBEAT, 7);
	assert_int_equal(roundtrip(&h, &hb, &out, plain), HS_DROP_NONE);
	assert_memory_equal(&out.hb.epoch, &hb.hb.epoch, sizeof(hb.hb.epoch));
	assert_int_equal(out.hb.seq, 99);
	assert_int_equal(out.hb.role[1], 2);
	assert_int_equal(out.hb.health_failed, 513);
	assert_int_equal(out.hb.config_version, 12);
	assert_memory_equal(out.hb.config_hash, hb.hb.config_hash, HS_CONFIG_HASH_BYTES);
	assert_true(out.hb.mgmt_running);

	struct hs_msg ack = {.type = HS_MSG_HEARTBEAT_ACK, .ack_seq = 1ULL << 40};
	h = hdr(HS_MSG_HEARTBEAT_ACK, 8);
	assert_int_equal(roundtrip(&h, &ack, &out, plain), HS_DROP_NONE);
	assert_true(out.ack_seq == 1ULL << 40);

	static uint8_t big[HS_BLOB_MAX];
	randombytes_buf(big, sizeof(big));
	for (int t = HS_MSG_QUERY; t <= HS_MSG_CONFIG_DATA; t++) {
		struct hs_msg q = {.type = t, .blob = {.data = big, .len = sizeof(big)}};
		h = hdr(t, 9);
		assert_int_equal(roundtrip(&h, &q, &out, plain), HS_DROP_NONE);
		assert_int_equal(out.blob.len, sizeof(big));
		assert_memory_equal(out.blob.data, big, sizeof(big));
		q.blob.len = 0;
		assert_int_equal(roundtrip(&h, &q, &out, plain), HS_DROP_NONE);
		assert_int_equal(out.blob.len, 0);
	}
	/* the largest datagram is exactly HS_WIRE_MAX; one byte more does not seal */
	uint8_t buf[HS_WIRE_MAX];
	struct hs_msg q = {.type = HS_MSG_QUERY, .blob = {.data = big, .len = sizeof(big)}};
	h = hdr(HS_MSG_QUERY, 10);
	assert_int_equal(hs_wire_seal(key, &h, &q, buf, sizeof(buf)), HS_WIRE_MAX);
	q.blob.len++;
	assert_int_equal(hs_wire_seal(key, &h, &q, buf, sizeof(buf)), -EMSGSIZE);
	h = hdr(HS_MSG_HELLO, 10);
	assert_int_equal(hs_wire_seal(key, &h, &q, buf, sizeof(buf)), -EINVAL); /* type mismatch */
}

static int sealed_hello(uint8_t *buf)
{
	struct hs_msg m = {.type = HS_MSG_HELLO, .hello = {.challenge = 1}};
	struct hs_wire_hdr h = hdr(HS_MSG_HELLO, 1);
	return hs_wire_seal(key, &h, &m, buf, HS_WIRE_MAX);
}

static enum hs_drop decode(const uint8_t *buf, size_t n)
{
	struct hs_wire_hdr h;
	enum hs_drop d = hs_wire_parse_hdr(buf, n, &h);
	if (d != HS_DROP_NONE)
		return d;
	uint8_t plain[HS_WIRE_MAX];
	struct hs_msg m;
	return hs_wire_open(key, buf, n, &h, plain, &m);
}

static void every_drop_reason(void **state)
{
	uint8_t buf[HS_WIRE_MAX + 8];
	int n = sealed_hello(buf);
	assert_int_equal(decode(buf, (size_t)n), HS_DROP_NONE);
	assert_int_equal(decode(buf, HS_WIRE_HDR + HS_WIRE_TAG - 1), HS_DROP_TRUNCATED);
	assert_int_equal(decode(buf, 0), HS_DROP_TRUNCATED);
	assert_int_equal(decode(buf, (size_t)n - 1), HS_DROP_BAD_TAG); /* cut tag */
	assert_int_equal(decode(buf, HS_WIRE_MAX + 1), HS_DROP_OVERSIZE);
	static const struct {
		size_t off;
		uint8_t val;
		enum hs_drop want;
	} t[] = {
	    {0, 'X', HS_DROP_BAD_MAGIC},
	    {4, 1, HS_DROP_VERSION}, /* the format before the config hash */
	    {4, 3, HS_DROP_VERSION},
	    {4, 0, HS_DROP_VERSION},
	    {5, _HS_MSG_MAX, HS_DROP_TYPE},
	    {10, 1, HS_DROP_BAD_MAGIC},		    /* reserved */
	    {7, 3, HS_DROP_BAD_TAG},		    /* sender id is authenticated */
	    {9, 0, HS_DROP_BAD_TAG},		    /* destination too */
	    {20, 0, HS_DROP_BAD_TAG},		    /* boot id */
	    {35, 9, HS_DROP_BAD_TAG},		    /* counter */
	    {5, HS_MSG_HEARTBEAT, HS_DROP_BAD_TAG}, /* the type */
	    {HS_WIRE_HDR, 0xff, HS_DROP_BAD_TAG},   /* ciphertext */
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		n = sealed_hello(buf);
		buf[t[i].off] ^= t[i].val ? t[i].val : 0x01;
		if (t[i].off == 5)
			buf[5] = t[i].val;
		if (t[i].off == 4)
			buf[4] = t[i].val;
		assert_int_equal(decode(buf, (size_t)n), t[i].want);
	}
	/* the last byte of the tag */
	n = sealed_hello(buf);
	buf[n - 1] ^= 0x80;
	assert_int_equal(decode(buf, (size_t)n), HS_DROP_BAD_TAG);
	/* a wrong key */
	uint8_t good[HS_KEY_BYTES];
	memcpy(good, key, sizeof(key));
	n = sealed_hello(buf);
	key[0] ^= 1;
	assert_int_equal(decode(buf, (size_t)n), HS_DROP_BAD_TAG);
	memcpy(key, good, sizeof(key));
	/* authentic, but a HELLO whose payload has the wrong length: malformed */
	struct hs_msg q = {.type = HS_MSG_QUERY,
			   .blob = {.data = (const uint8_t *)"12345", .len = 5}};
	struct hs_wire_hdr h = hdr(HS_MSG_HELLO, 3);
	uint8_t plain[HS_WIRE_MAX];
	struct hs_wire_hdr hq = hdr(HS_MSG_QUERY, 3);
	n = hs_wire_seal(key, &hq, &q, buf, sizeof(buf));
	buf[5] = HS_MSG_HELLO; /* re-seal with the HELLO header over the 5-byte payload */
	uint8_t nonce[24];
	memcpy(nonce, h.boot_id, 16);
	memcpy(nonce + 16, buf + 28, 8);
	unsigned long long clen;
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + HS_WIRE_HDR, &clen,
						   (const uint8_t *)"12345", 5, buf, HS_WIRE_HDR,
						   NULL, nonce, key);
	struct hs_msg m;
	assert_int_equal(hs_wire_parse_hdr(buf, HS_WIRE_HDR + clen, &h), HS_DROP_NONE);
	assert_int_equal(hs_wire_open(key, buf, HS_WIRE_HDR + clen, &h, plain, &m),
			 HS_DROP_MALFORMED);
	/* random datagrams never pass */
	for (int i = 0; i < 2000; i++) {
		size_t len = randombytes_uniform(HS_WIRE_MAX + 4);
		randombytes_buf(buf, len);
		if (len >= 6 && i % 2) {
			memcpy(buf, "CMPH", 4);
			buf[4] = HS_WIRE_VERSION;
			buf[5] %= _HS_MSG_MAX;
			if (len >= 12)
				buf[10] = buf[11] = 0;
		}
		assert_int_not_equal(decode(buf, len), HS_DROP_NONE);
	}
	for (int d = 0; d < _HS_DROP_MAX; d++)
		assert_non_null(hs_drop_to_str(d));
}

/* A peer that speaks the format before the configuration hash (version 1): its
 * datagrams are dropped and counted as `version`, never opened, however authentic. */
static void old_format_dropped_as_version(void **state)
{
	uint8_t buf[HS_WIRE_MAX];
	struct hs_msg hello = {.type = HS_MSG_HELLO,
			       .hello = {.challenge = 1, .config_version = 3}};
	struct hs_wire_hdr h = hdr(HS_MSG_HELLO, 5);
	h.version = 1;
	int n = hs_wire_seal(key, &h, &hello, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(buf[4], 1);
	struct hs_wire_hdr got;
	assert_int_equal(hs_wire_parse_hdr(buf, (size_t)n, &got), HS_DROP_VERSION);
	assert_int_equal(HS_WIRE_VERSION, 2);
	assert_string_equal(hs_drop_to_str(HS_DROP_VERSION), "version");
}

static void replay_window_tolerates_reordering(void **state)
{
	struct hs_replay r = {0};
	uint8_t boot[16] = {1};
	assert_int_equal(hs_replay_check(&r, boot, 1, true, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 0, false, false), HS_DROP_REPLAY);
	/* 10, then 5..9 out of order: each accepted once */
	assert_int_equal(hs_replay_check(&r, boot, 10, false, false), HS_DROP_NONE);
	static const uint64_t order[] = {7, 5, 9, 6, 8};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		assert_int_equal(hs_replay_check(&r, boot, order[i], false, false), HS_DROP_NONE);
	for (uint64_t c = 5; c <= 10; c++)
		assert_int_equal(hs_replay_check(&r, boot, c, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 1, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 2, false, false), HS_DROP_NONE); /* never seen */
	/* a jump of 100 keeps 10 within the 128-wide window; a jump beyond drops it */
	assert_int_equal(hs_replay_check(&r, boot, 110, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 10, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 11, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 2, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 3, false, false), HS_DROP_NONE); /* 107 behind */
	assert_int_equal(hs_replay_check(&r, boot, 1000, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 1000 - 128, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 1000 - 127, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 1000 - 127, false, false), HS_DROP_REPLAY);
	/* shifts across the two words of the window */
	assert_int_equal(hs_replay_check(&r, boot, 1070, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 1000, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 1001, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 1001, false, false), HS_DROP_REPLAY);
}

static void boot_ids(void **state)
{
	struct hs_replay r = {0};
	uint8_t b[6][16];
	for (int i = 0; i < 6; i++)
		memset(b[i], i + 1, 16);
	/* an unknown boot is not trusted until a fresh HELLO_ACK proves it; HELLOs are answered */
	assert_int_equal(hs_replay_check(&r, b[0], 1, false, false), HS_DROP_UNVERIFIED_BOOT);
	assert_int_equal(hs_replay_check(&r, b[0], 1, false, true), HS_DROP_NONE);
	assert_false(r.has_boot);
	assert_int_equal(hs_replay_check(&r, b[0], 2, true, false), HS_DROP_NONE);
	assert_true(r.has_boot);
	assert_int_equal(hs_replay_check(&r, b[0], 3, false, false), HS_DROP_NONE);
	/* the node reboots: the new boot takes over, the old one is refused from then on */
	assert_int_equal(hs_replay_check(&r, b[1], 1, true, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, b[0], 4, false, false), HS_DROP_OLD_BOOT);
	assert_int_equal(hs_replay_check(&r, b[0], 5, true, true), HS_DROP_OLD_BOOT);
	assert_int_equal(hs_replay_check(&r, b[1], 2, false, false), HS_DROP_NONE);
	/* the counter window restarts with the new boot */
	assert_int_equal(hs_replay_check(&r, b[1], 1, false, false), HS_DROP_REPLAY);
	for (int i = 2; i < 6; i++)
		assert_int_equal(hs_replay_check(&r, b[i], 1, true, false), HS_DROP_NONE);
	/* the ring keeps the last HS_OLD_BOOTS replaced boots */
	assert_int_equal(r.n_old, HS_OLD_BOOTS);
	for (int i = 1; i < 5; i++)
		assert_int_equal(hs_replay_check(&r, b[i], 9, false, false), HS_DROP_OLD_BOOT);
	assert_int_equal(hs_replay_check(&r, b[0], 9, false, false), HS_DROP_UNVERIFIED_BOOT);
}

/* A receiver that restarted adopts a sender's boot at the counter of the first fresh
 * HELLO_ACK; datagrams of that boot sent earlier (captured by an attacker) stay refused. */
static void no_back_fill_after_receiver_restart(void **state)
{
	struct hs_replay r = {0};
	uint8_t boot[16] = {7};
	assert_int_equal(hs_replay_check(&r, boot, 500, true, false), HS_DROP_NONE);
	for (uint64_t c = 372; c < 500; c++)
		assert_int_equal(hs_replay_check(&r, boot, c, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 1, false, false), HS_DROP_REPLAY);
	assert_int_equal(hs_replay_check(&r, boot, 502, false, false), HS_DROP_NONE);
	assert_int_equal(hs_replay_check(&r, boot, 501, false, false),
			 HS_DROP_NONE); /* reordered */
	assert_int_equal(hs_replay_check(&r, boot, 501, false, false), HS_DROP_REPLAY);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_files),
	    cmocka_unit_test(every_message_round_trips),
	    cmocka_unit_test(every_drop_reason),
	    cmocka_unit_test(old_format_dropped_as_version),
	    cmocka_unit_test(replay_window_tolerates_reordering),
	    cmocka_unit_test(boot_ids),
	    cmocka_unit_test(no_back_fill_after_receiver_restart),
	    cmocka_unit_test(cluster_name_binds_the_key),
	    cmocka_unit_test(key_sets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
