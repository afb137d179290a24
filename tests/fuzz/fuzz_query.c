/* libFuzzer: QUERY and QUERY_REPLY payloads as they arrive from the network. Accepted
 * requests must re-encode to the same bytes; accepted replies feed the chunk collector. */
#include "log.h"
#include "query.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cfg *cfg;
	if (!cfg) {
		log_set_target(LOG_TARGET_NONE);
		const char *conf =
		    "[cluster]\nname = f\nkey_file = /k\n[pair p]\n[compartment a]\nzone = mz\n"
		    "pair = p\n[compartment b]\nzone = dmz\npair = p\n[node a1]\ncompartment = "
		    "a\nhandshake = 127.0.0.1\n"
		    "[node a2]\ncompartment = a\nhandshake = 127.0.0.2\n";
		if (cfg_parse("f.conf", conf, strlen(conf), NULL, 0, &cfg, NULL) < 0)
			abort();
	}
	uint32_t id;
	char what[QUERY_WHAT_MAX];
	bool json = false;
	if (query_parse_request(data, size, &id, what, &json) == 0) {
		char buf[64];
		int n = query_encode_request(id, what, json, buf, sizeof(buf));
		if (n < 0 || (size_t)n != size || memcmp(buf, data, size))
			abort();
	}
	struct query_reply_hdr h;
	size_t off;
	if (query_parse_reply(data, size, &h, &off) == 0) {
		if (off > size || h.seq >= h.total || h.total > QUERY_MAX_CHUNKS)
			abort();
		struct query q;
		struct query_spec s = {
		    .scope = QUERY_SCOPE_ALL, .index = -1, .what = "status", .json = json};
		query_plan(cfg, &s, h.id, 0, 1000, &q);
		while (query_next_send(&q, 0) >= 0)
			; /* every target asked, so the reply lands */
		query_add_reply(&q, 1, &h, (const char *)data + off, size - off);
		query_add_reply(&q, 1, &h, (const char *)data + off, size - off);
		query_expire(&q, 1000);
		struct strbuf out;
		sb_init(&out);
		q.spec.json = true;
		query_format(cfg, &q, &out);
		if (!query_json_valid(out.buf, out.len))
			abort(); /* a peer's answer broke our JSON document */
		sb_reset(&out);
		q.spec.json = false;
		query_format(cfg, &q, &out);
		for (size_t i = 0; i < out.len; i++)
			if ((unsigned char)out.buf[i] < 0x20 && out.buf[i] != '\n' &&
			    out.buf[i] != '\t')
				abort(); /* a control byte would reach the operator's terminal */
		sb_free(&out);
		query_reset(&q);
	}
	query_json_valid((const char *)data, size);
	return 0;
}
