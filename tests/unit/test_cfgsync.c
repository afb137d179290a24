/* The configuration transfer's pure part: messages round-trip and refuse wrong lengths;
 * the reassembly accepts only the asked-for chunk of the announced (version, hash),
 * refuses a total above 1 MiB or one that changes, and a complete file whose hash is not
 * the announced one (a forged transfer); every truncated DATA is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cfgsync.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static uint8_t text[3000];
static uint8_t hash[32];

static struct cfgsync_data chunk(uint32_t off, uint32_t total)
{
	size_t n = total - off < CFGSYNC_CHUNK ? total - off : CFGSYNC_CHUNK;
	struct cfgsync_data d = {
	    .version = 7, .total = total, .offset = off, .bytes = text + off, .len = n};
	memcpy(d.hash, hash, 32);
	return d;
}

static int setup(void **state)
{
	randombytes_buf(text, sizeof(text));
	crypto_generichash(hash, 32, text, sizeof(text), NULL, 0);
	return 0;
}

static void messages_round_trip(void **state)
{
	uint8_t b[HS_BLOB_MAX];
	struct cfgsync_get g = {.version = 1ULL << 40, .offset = 123456}, g2;
	memcpy(g.hash, hash, 32);
	assert_int_equal(cfgsync_get_encode(&g, b), CFGSYNC_GET_LEN);
	assert_int_equal(cfgsync_get_decode(b, CFGSYNC_GET_LEN, &g2), 0);
	assert_true(g2.version == g.version && g2.offset == g.offset);
	assert_memory_equal(g2.hash, g.hash, 32);
	assert_int_equal(cfgsync_get_decode(b, CFGSYNC_GET_LEN - 1, &g2), -EBADMSG);
	assert_int_equal(cfgsync_get_decode(b, CFGSYNC_GET_LEN + 1, &g2), -EBADMSG);
	struct cfgsync_data d = chunk(CFGSYNC_CHUNK, sizeof(text)), d2;
	size_t n = cfgsync_data_encode(&d, b);
	assert_int_equal(n, HS_BLOB_MAX);
	assert_int_equal(cfgsync_data_decode(b, n, &d2), 0);
	assert_int_equal(d2.total, sizeof(text));
	assert_int_equal(d2.offset, CFGSYNC_CHUNK);
	assert_memory_equal(d2.bytes, text + CFGSYNC_CHUNK, d2.len);
	for (size_t k = 0; k < CFGSYNC_DATA_HDR; k++)
		assert_int_equal(cfgsync_data_decode(b, k, &d2), -EBADMSG);
	/* bytes past the total */
	d.total = CFGSYNC_CHUNK + 3;
	d.len = 4;
	assert_int_equal(cfgsync_data_decode(b, cfgsync_data_encode(&d, b), &d2), -EBADMSG);
}

static void reassembly(void **state)
{
	struct cfgsync_rx rx = {0};
	cfgsync_rx_start(&rx, 7, hash);
	struct cfgsync_data d = chunk(CFGSYNC_CHUNK, sizeof(text));
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_IGNORED); /* not asked for yet */
	d = chunk(0, sizeof(text));
	d.version = 8;
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_IGNORED); /* another version */
	d = chunk(0, sizeof(text));
	d.hash[0] ^= 1;
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_IGNORED); /* another file */
	uint32_t off = 0;
	enum cfgsync_rx_result r = CFGSYNC_MORE;
	while (r == CFGSYNC_MORE) {
		d = chunk(off, sizeof(text));
		r = cfgsync_rx_feed(&rx, &d);
		assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_IGNORED); /* a duplicate */
		off += (uint32_t)d.len;
	}
	assert_int_equal(r, CFGSYNC_DONE);
	assert_memory_equal(rx.buf, text, sizeof(text));
	cfgsync_rx_clear(&rx);
}

static void forged_and_oversize(void **state)
{
	struct cfgsync_rx rx = {0};
	/* A sender whose bytes are not the announced file: refused when complete. */
	cfgsync_rx_start(&rx, 7, hash);
	uint8_t saved = text[2000];
	text[2000] ^= 0x40;
	enum cfgsync_rx_result r = CFGSYNC_MORE;
	for (uint32_t off = 0; r == CFGSYNC_MORE;) {
		struct cfgsync_data d = chunk(off, sizeof(text));
		r = cfgsync_rx_feed(&rx, &d);
		off += (uint32_t)d.len;
	}
	text[2000] = saved;
	assert_int_equal(r, CFGSYNC_BAD_HASH);
	/* A shorter file claiming the same hash (a truncated transfer). */
	cfgsync_rx_start(&rx, 7, hash);
	struct cfgsync_data d = chunk(0, sizeof(text) - 1);
	d.len = d.total < CFGSYNC_CHUNK ? d.total : CFGSYNC_CHUNK;
	r = cfgsync_rx_feed(&rx, &d);
	for (uint32_t off = (uint32_t)d.len; r == CFGSYNC_MORE;) {
		d = chunk(off, sizeof(text) - 1);
		r = cfgsync_rx_feed(&rx, &d);
		off += (uint32_t)d.len;
	}
	assert_int_equal(r, CFGSYNC_BAD_HASH);
	/* Above 1 MiB, or a total that changes mid-way. */
	cfgsync_rx_start(&rx, 7, hash);
	d = chunk(0, sizeof(text));
	d.total = CFG_MAX_TEXT + 1;
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_TOO_LARGE);
	cfgsync_rx_start(&rx, 7, hash);
	d = chunk(0, sizeof(text));
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_MORE);
	d = chunk(CFGSYNC_CHUNK, sizeof(text));
	d.total += 10;
	assert_int_equal(cfgsync_rx_feed(&rx, &d), CFGSYNC_TOO_LARGE);
	cfgsync_rx_clear(&rx);
	assert_string_equal(cfgsync_rx_result_to_str(CFGSYNC_BAD_HASH), "hash-mismatch");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(messages_round_trip, setup),
	    cmocka_unit_test_setup(reassembly, setup),
	    cmocka_unit_test_setup(forged_and_oversize, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
