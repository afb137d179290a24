/* Datagrams sealed and opened per second by hs_wire (header, AEAD, payload decode, replay
 * window), next to bare libsodium XChaCha20-Poly1305 on the same sizes: the cost of the
 * protocol around the cipher. Built and run by bench/hs.sh. */
#include "hs_wire.h"
#include "util.h"

#include <sodium.h>
#include <string.h>

#define ROUNDS 200000

static double rate(uint64_t t0, int n)
{
	return (double)n / ((double)(now_usec() - t0) / 1e6);
}

static void bench(const char *what, size_t blob)
{
	uint8_t key[HS_KEY_BYTES], buf[HS_WIRE_MAX], plain[HS_WIRE_MAX], data[HS_BLOB_MAX] = {0};
	randombytes_buf(key, sizeof(key));
	struct hs_replay rp = {0};
	struct hs_wire_hdr h = {.version = HS_WIRE_VERSION, .sender = 1, .dest = 0};
	struct hs_msg m = {.type = HS_MSG_HEARTBEAT, .hb = {.seq = 1}};
	if (blob) {
		m = (struct hs_msg){.type = HS_MSG_QUERY, .blob = {.data = data, .len = blob}};
	}
	h.type = (uint8_t)m.type;
	int len = 0;
	uint64_t t0 = now_usec();
	for (int i = 0; i < ROUNDS; i++) {
		h.counter = (uint64_t)i + 1;
		len = hs_wire_seal(key, &h, &m, buf, sizeof(buf));
	}
	double seal = rate(t0, ROUNDS);
	t0 = now_usec();
	int ok = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct hs_wire_hdr g;
		struct hs_msg out;
		buf[28 + 7] = (uint8_t)i; /* vary the counter: opening fails the tag, like a */
		if (hs_wire_parse_hdr(buf, (size_t)len, &g) == HS_DROP_NONE && /* forged flood */
		    hs_wire_open(key, buf, (size_t)len, &g, plain, &out) == HS_DROP_NONE &&
		    hs_replay_check(&rp, g.boot_id, g.counter, true, false) == HS_DROP_NONE)
			ok++;
	}
	double open_bad = rate(t0, ROUNDS);
	buf[28 + 7] = (uint8_t)ROUNDS; /* restore the last sealed counter */
	t0 = now_usec();
	for (int i = 0; i < ROUNDS; i++) {
		struct hs_wire_hdr g;
		struct hs_msg out;
		hs_wire_parse_hdr(buf, (size_t)len, &g);
		ok += hs_wire_open(key, buf, (size_t)len, &g, plain, &out) == HS_DROP_NONE;
	}
	double open_good = rate(t0, ROUNDS);
	/* bare libsodium on the same plaintext size */
	size_t plen = (size_t)len - HS_WIRE_HDR - HS_WIRE_TAG;
	uint8_t nonce[24] = {0};
	unsigned long long cl, ml;
	t0 = now_usec();
	for (int i = 0; i < ROUNDS; i++) {
		nonce[0] = (uint8_t)i;
		crypto_aead_xchacha20poly1305_ietf_encrypt(buf + HS_WIRE_HDR, &cl, data, plen, buf,
							   HS_WIRE_HDR, NULL, nonce, key);
	}
	double raw_seal = rate(t0, ROUNDS);
	t0 = now_usec();
	for (int i = 0; i < ROUNDS; i++)
		ok += crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &ml, NULL,
								 buf + HS_WIRE_HDR, cl, buf,
								 HS_WIRE_HDR, nonce, key) == 0;
	double raw_open = rate(t0, ROUNDS);
	printf("%-22s %5d B  seal %9.0f/s (libsodium %9.0f/s)  open %9.0f/s (libsodium %9.0f/s)"
	       "  reject forged %9.0f/s  [%d]\n",
	       what, len, seal, raw_seal, open_good, raw_open, open_bad, ok > 0);
	printf("result-%s: seal_per_s=%.0f open_per_s=%.0f sodium_open_per_s=%.0f "
	       "reject_per_s=%.0f\n",
	       blob ? "max" : "heartbeat", seal, open_good, raw_open, open_bad);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	bench("heartbeat", 0);
	bench("1200-byte query", HS_BLOB_MAX);
	return 0;
}
