/* The NBD wire protocol, server side: fixed newstyle handshake (GO, INFO, EXPORT_NAME,
 * LIST, ABORT, unknown options), request parsing and checks, reply headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nbdx_proto.h"

#include <string.h>

static const struct nbdx_export_info exp_info = {
    .name = "lu0",
    .size = 1ULL << 30,
    .flags = NBDX_FLAG_HAS_FLAGS | NBDX_FLAG_SEND_FLUSH,
    .min_block = 512,
    .pref_block = 4096,
    .max_block = NBDX_MAX_PAYLOAD,
};

static size_t put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return (size_t)n;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static size_t option(uint8_t *b, uint32_t opt, const void *data, uint32_t len)
{
	size_t n = put_be(b, 0x49484156454f5054ULL, 8);
	n += put_be(b + n, opt, 4);
	n += put_be(b + n, len, 4);
	if (len)
		memcpy(b + n, data, len);
	return n + len;
}

static void greeting_and_go(void **state)
{
	struct nbdx_hs hs;
	struct strbuf out;
	sb_init(&out);
	nbdx_hs_init(&hs, &exp_info, &out);
	assert_int_equal(out.len, 18);
	assert_memory_equal(out.buf, "NBDMAGICIHAVEOPT", 16);
	assert_int_equal(get_be((uint8_t *)out.buf + 16, 2), 3);
	sb_reset(&out);
	uint8_t in[64];
	put_be(in, 3, 4); /* fixed newstyle, no zeroes */
	assert_int_equal(nbdx_hs_input(&hs, in, 2, &out), 0);
	assert_int_equal(nbdx_hs_input(&hs, in, 4, &out), 4);
	assert_int_equal(hs.state, NBDX_HS_OPTIONS);
	/* GO for "lu0" asking for nothing in particular. */
	uint8_t go[16];
	size_t gl = put_be(go, 3, 4);
	memcpy(go + gl, "lu0", 3);
	gl += 3;
	gl += put_be(go + gl, 0, 2);
	size_t n = option(in, 7, go, (uint32_t)gl);
	assert_int_equal(nbdx_hs_input(&hs, in, n - 1, &out), 0);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(hs.state, NBDX_HS_DONE);
	/* INFO export (12 bytes), INFO block size (14), ACK: each behind a 20-byte header. */
	assert_int_equal(out.len, 20 + 12 + 20 + 14 + 20);
	const uint8_t *o = (const uint8_t *)out.buf;
	assert_int_equal(get_be(o + 12, 4), 3); /* NBD_REP_INFO */
	assert_int_equal(get_be(o + 22, 8), exp_info.size);
	assert_int_equal(get_be(o + 30, 2), exp_info.flags);
	assert_int_equal(get_be(o + 32 + 20 + 2, 4), 512); /* minimum block */
	assert_int_equal(get_be(o + 66 + 12, 4), 1);	   /* NBD_REP_ACK */
	sb_free(&out);
}

static void options_unknown_name_list_abort(void **state)
{
	struct nbdx_hs hs;
	struct strbuf out;
	sb_init(&out);
	nbdx_hs_init(&hs, &exp_info, &out);
	uint8_t in[64];
	put_be(in, 1, 4);
	assert_int_equal(nbdx_hs_input(&hs, in, 4, &out), 4);
	sb_reset(&out);
	/* GO with another export's name: NBD_REP_ERR_UNKNOWN, still in options. */
	uint8_t go[16];
	size_t gl = put_be(go, 3, 4);
	memcpy(go + gl, "xyz", 3);
	gl += 3;
	gl += put_be(go + gl, 0, 2);
	size_t n = option(in, 7, go, (uint32_t)gl);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(get_be((uint8_t *)out.buf + 12, 4), 0x80000006U);
	assert_int_equal(hs.state, NBDX_HS_OPTIONS);
	/* A malformed GO (name longer than the option). */
	sb_reset(&out);
	put_be(go, 100, 4);
	n = option(in, 7, go, (uint32_t)gl);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(get_be((uint8_t *)out.buf + 12, 4), 0x80000003U);
	/* An unknown option: NBD_REP_ERR_UNSUP. */
	sb_reset(&out);
	n = option(in, 99, NULL, 0);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(get_be((uint8_t *)out.buf + 12, 4), 0x80000001U);
	/* LIST names the export. */
	sb_reset(&out);
	n = option(in, 3, NULL, 0);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(get_be((uint8_t *)out.buf + 12, 4), 2);
	assert_memory_equal(out.buf + 24, "lu0", 3);
	/* Too long an option, a bad magic: protocol errors. */
	n = option(in, 7, go, 8);
	put_be(in + 12, NBDX_MAX_OPTION + 1, 4);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), -EPROTO);
	in[0] = 'X';
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), -EPROTO);
	/* ABORT ends it. */
	n = option(in, 2, NULL, 0);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(hs.state, NBDX_HS_ABORT);
	sb_free(&out);
}

static void export_name_with_zeroes(void **state)
{
	struct nbdx_hs hs;
	struct strbuf out;
	sb_init(&out);
	nbdx_hs_init(&hs, &exp_info, &out);
	uint8_t in[64];
	put_be(in, 1, 4); /* no NO_ZEROES */
	nbdx_hs_input(&hs, in, 4, &out);
	sb_reset(&out);
	size_t n = option(in, 1, "", 0);
	assert_int_equal(nbdx_hs_input(&hs, in, n, &out), (int)n);
	assert_int_equal(hs.state, NBDX_HS_DONE);
	assert_int_equal(out.len, 8 + 2 + 124);
	assert_int_equal(get_be((uint8_t *)out.buf, 8), exp_info.size);
	/* Client flags without FIXED_NEWSTYLE are refused. */
	nbdx_hs_init(&hs, &exp_info, &out);
	put_be(in, 0, 4);
	assert_int_equal(nbdx_hs_input(&hs, in, 4, &out), -EPROTO);
	sb_free(&out);
}

static size_t request(uint8_t *b, uint16_t type, uint64_t handle, uint64_t off, uint32_t len)
{
	size_t n = put_be(b, 0x25609513U, 4);
	n += put_be(b + n, 0, 2);
	n += put_be(b + n, type, 2);
	n += put_be(b + n, handle, 8);
	n += put_be(b + n, off, 8);
	n += put_be(b + n, len, 4);
	return n;
}

struct req_case {
	uint16_t type;
	uint64_t off;
	uint32_t len;
	int parse; /* expected nbdx_req_parse() */
	int check; /* expected nbdx_req_check() */
};

static void requests_parse_and_check(void **state)
{
	static const struct req_case cases[] = {
	    {NBDX_CMD_READ, 0, 4096, 28, 0},
	    {NBDX_CMD_WRITE, 4096, 8192, 28 + 8192, 0},
	    {NBDX_CMD_WRITE, 0, NBDX_MAX_PAYLOAD + 1, -EPROTO, 0},
	    {NBDX_CMD_READ, (1ULL << 30) - 512, 1024, 28, ENOSPC},
	    {NBDX_CMD_READ, UINT64_MAX - 10, 512, 28, ENOSPC},
	    {NBDX_CMD_READ, 100, 512, 28, EINVAL},
	    {NBDX_CMD_TRIM, 0, 4096, 28, EOPNOTSUPP},
	    {NBDX_CMD_FLUSH, 0, 0, 28, 0},
	    {NBDX_CMD_DISC, 0, 0, 28, 0},
	    {77, 0, 0, 28, EINVAL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t b[28];
		request(b, cases[i].type, 0x1122334455667788ULL, cases[i].off, cases[i].len);
		struct nbdx_req r;
		assert_int_equal(nbdx_req_parse(b, 27, &r), 0);
		int p = nbdx_req_parse(b, 28, &r);
		if (p != cases[i].parse)
			fail_msg("case %zu: parse %d, want %d", i, p, cases[i].parse);
		if (p < 0)
			continue;
		assert_int_equal(r.handle, 0x1122334455667788ULL);
		int c = nbdx_req_check(&r, &exp_info);
		if (c != cases[i].check)
			fail_msg("case %zu: check %d, want %d", i, c, cases[i].check);
	}
	uint8_t b[28];
	request(b, 0, 1, 0, 512);
	b[0] = 0;
	struct nbdx_req r;
	assert_int_equal(nbdx_req_parse(b, 28, &r), -EPROTO);
}

static void reply_header_round_trips_the_handle(void **state)
{
	uint8_t h[NBDX_REPLY_HDR];
	nbdx_reply_header(h, nbdx_errno_to_wire(-EIO), 0xa1b2c3d4e5f60718ULL);
	assert_int_equal(get_be(h, 4), 0x67446698U);
	assert_int_equal(get_be(h + 4, 4), 5);
	assert_int_equal(get_be(h + 8, 8), 0xa1b2c3d4e5f60718ULL);
	assert_int_equal(nbdx_errno_to_wire(0), 0);
	assert_int_equal(nbdx_errno_to_wire(-EOPNOTSUPP), 95);
	assert_int_equal(nbdx_errno_to_wire(-ENOENT), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(greeting_and_go),
	    cmocka_unit_test(options_unknown_name_list_abort),
	    cmocka_unit_test(export_name_with_zeroes),
	    cmocka_unit_test(requests_parse_and_check),
	    cmocka_unit_test(reply_header_round_trips_the_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
