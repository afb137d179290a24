/* libFuzzer: quorum-device slot blocks as read from the LU (any bytes another node, a
 * stale image or a broken target may leave there). Each input is tried twice: as it
 * is (its MAC must not check out unless it was sealed with the key), and sealed with
 * the fuzzer's test key over its first 56 bytes, so that the decoder behind the MAC is
 * explored too. A block that decodes must encode back to the same bytes. */
#include "qdev.h"

#include <string.h>

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t test_key[QDEV_MAC_KEY] = "compartd fuzz_qdev_slot test ke";

static void one(const uint8_t *data, size_t size)
{
	struct qdev_slot s;
	uint8_t again[QDEV_BLOCK];

	if (qdev_slot_decode(test_key, data, size, &s) < 0) {
		if (s.valid)
			__builtin_trap();
		return;
	}
	qdev_slot_encode(test_key, &s, again);
	if (memcmp(again, data, 88) != 0) /* magic, fields, MAC */
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sealed[QDEV_BLOCK];

	one(data, size);
	if (size < 88 || size > sizeof(sealed))
		return 0;
	memcpy(sealed, data, size);
	crypto_generichash(sealed + 56, 32, sealed, 56, test_key, sizeof(test_key));
	one(sealed, size);
	return 0;
}
