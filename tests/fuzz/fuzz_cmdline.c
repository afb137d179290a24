/* libFuzzer: the kernel command line parser (compartd.* keys, ip=, BOOTIF=). */
#include "cmdline.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct kcmdline k;
	struct strbuf err;
	sb_init(&err);
	kcmdline_parse(text, &k, &err);
	sb_free(&err);
	free(text);
	return 0;
}
