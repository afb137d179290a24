/* The journal slot decoder reads bytes from disk: whatever is there must be refused
 * cleanly or decoded into bounded fields. The first input byte picks the entry point:
 * even → whole slot (header + BLAKE2b), odd → payload only (past the hash check). */
#include "journal.h"

#include <sodium.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct journal_state s;
	if (size < 1 || size > JOURNAL_SLOT_SIZE)
		return 0;
	if (sodium_init() < 0)
		return 0;
	memset(&s, 0, sizeof(s));
	if (data[0] & 1) {
		if (journal_decode_payload(data + 1, size - 1, &s) == 0) {
			/* What decodes must encode again. */
			static uint8_t buf[JOURNAL_SLOT_SIZE];
			size_t len;
			if (journal_encode(&s, 1, buf, sizeof(buf), &len) != 0)
				__builtin_trap();
		}
	} else {
		(void)journal_decode_slot(data + 1, size - 1, &s);
	}
	return 0;
}
