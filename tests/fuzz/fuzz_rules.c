/* libFuzzer: the rules parser, and evaluation of whatever parses on a few fact sets. */
#include "rules.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rules *r = NULL;
	struct strbuf err;
	sb_init(&err);
	if (rules_parse("fuzz", (const char *)data, size, &r, &err) == 0) {
		for (long c = 0; c <= 3; c++) {
			struct rules_facts f = {.peers = 3,
						.contacted = c,
						.mgmt_capable = c & 1,
						.highest_priority = true,
						.uncontacted_alive = c == 2};
			rules_eval(r, &f);
		}
		struct rules_facts zero = {0};
		rules_eval(r, &zero);
		rules_free(r);
	}
	sb_free(&err);
	return 0;
}
