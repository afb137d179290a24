/* libFuzzer: the handshake datagram decoder (header parse, AEAD open, payload decode) and
 * the replay window, with a fixed key. Seeds are valid datagrams under that key, so the
 * fuzzer also explores authenticated payloads of every type. */
#include "hs_wire.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzz key: bytes 0..31 (tests/fuzz/corpus/hs_wire seeds are sealed under it). */
static void fuzz_key(uint8_t k[HS_KEY_BYTES])
{
	for (int i = 0; i < HS_KEY_BYTES; i++)
		k[i] = (uint8_t)i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[HS_KEY_BYTES];
	fuzz_key(key);
	struct hs_wire_hdr h;
	if (hs_wire_parse_hdr(data, size, &h) != HS_DROP_NONE)
		return 0;
	uint8_t plain[HS_WIRE_MAX];
	struct hs_msg m;
	if (hs_wire_open(key, data, size, &h, plain, &m) != HS_DROP_NONE)
		return 0;
	static struct hs_replay r;
	hs_replay_check(&r, h.boot_id, h.counter, h.counter & 1, m.type == HS_MSG_HELLO);
	/* re-seal what was decoded: it must produce a datagram of the same length */
	uint8_t out[HS_WIRE_MAX];
	int n = hs_wire_seal(key, &h, &m, out, sizeof(out));
	if (n != (int)size)
		__builtin_trap();
	return 0;
}
