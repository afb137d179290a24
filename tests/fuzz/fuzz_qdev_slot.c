/* libFuzzer: quorum-device slot blocks as read from the LU (any bytes another node, a
 * stale image or a broken target may leave there). A block that decodes must encode back
 * to the same bytes. */
#include "qdev.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qdev_slot s;
	uint8_t again[QDEV_BLOCK];

	if (qdev_slot_decode(data, size, &s) < 0) {
		if (s.valid)
			__builtin_trap();
		return 0;
	}
	qdev_slot_encode(&s, again);
	if (memcmp(again, data, 88) != 0) /* magic, fields, hash */
		__builtin_trap();
	return 0;
}
