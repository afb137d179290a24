/* libFuzzer: the cluster.conf parser and, for what it accepts, the normalized printer,
 * which must parse again to the same text. */
#include "config.h"

#include <sodium.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = true;
	}
	struct strbuf err, out, out2;
	sb_init(&err);
	sb_init(&out);
	sb_init(&out2);
	struct cfg *c = NULL, *c2 = NULL;
	if (cfg_parse("fuzz.conf", (const char *)data, size, NULL, 0, &c, &err) == 0) {
		cfg_print(c, &out);
		if (cfg_parse("normalized", out.buf, out.len, NULL, 0, &c2, NULL) != 0)
			abort(); /* the printer wrote something the parser refuses */
		cfg_print(c2, &out2);
		if (strcmp(out.buf, out2.buf) != 0)
			abort(); /* not a fixed point */
	}
	cfg_free(c);
	cfg_free(c2);
	sb_free(&err);
	sb_free(&out);
	sb_free(&out2);
	return 0;
}
