/* The NBD server's parser on bytes from a client: the fixed newstyle handshake, then
 * transmission requests, as nbdx.c drives them (one message at a time, partial input
 * waits for more). */
#include "nbdx_proto.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct nbdx_export_info info = {
	    .name = "lu0",
	    .size = 1ULL << 30,
	    .flags = NBDX_FLAG_HAS_FLAGS | NBDX_FLAG_SEND_FLUSH | NBDX_FLAG_SEND_TRIM,
	    .min_block = 512,
	    .pref_block = 4096,
	    .max_block = NBDX_MAX_PAYLOAD,
	};
	struct nbdx_hs hs;
	struct strbuf out;
	sb_init(&out);
	nbdx_hs_init(&hs, &info, &out);
	size_t pos = 0;
	while (pos < size && hs.state != NBDX_HS_DONE && hs.state != NBDX_HS_ABORT) {
		int r = nbdx_hs_input(&hs, data + pos, size - pos, &out);
		if (r <= 0)
			goto out;
		pos += (size_t)r;
	}
	while (pos < size) {
		struct nbdx_req req;
		int r = nbdx_req_parse(data + pos, size - pos, &req);
		if (r <= 0 || (size_t)r > size - pos)
			break;
		(void)nbdx_req_check(&req, &info);
		uint8_t h[NBDX_REPLY_HDR];
		nbdx_reply_header(h, nbdx_errno_to_wire(-5), req.handle);
		pos += (size_t)r;
	}
out:
	sb_free(&out);
	return 0;
}
