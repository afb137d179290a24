/* libFuzzer: the bundle parser on raw bytes, and (the hash cannot be guessed) the same
 * bytes re-sealed by the harness as a well-hashed bundle, split at the first NUL into
 * configuration and rules, parsed and imported with an empty map into no target and
 * with a one-name map into a small cluster. The import must refuse or give a file the
 * parser accepts. */
#include "bundle.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char target[] = "[cluster]\nname = t\nkey_file = /k\n[pair p]\n"
			     "[compartment x]\nzone = mz\npair = p\n"
			     "[node n1]\ncompartment = x\nhandshake = 127.0.0.1\n";

static void seal(const uint8_t *data, size_t size, struct strbuf *out)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t cl = nul ? (size_t)(nul - data) : size;
	size_t rl = nul ? size - cl - 1 : 0;
	uint8_t h[32];
	char hex[65];
	sb_printf(out, "%s\npair p1\nconfig %zu\n", BUNDLE_MAGIC, cl);
	sb_put(out, data, cl);
	sb_printf(out, "\nrules %zu\n", rl);
	sb_put(out, nul ? nul + 1 : data, rl);
	sb_putc(out, '\n');
	crypto_generichash(h, sizeof(h), (const uint8_t *)out->buf, out->len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	sb_printf(out, "blake2b %s\n", hex);
}

static void try_import(const struct bundle *b, const char *tgt)
{
	struct bundle_map m = {0};
	struct strbuf out, err;
	sb_init(&out), sb_init(&err);
	bundle_map_add(&m, "node", "a1=z1", &err);
	bundle_map_add(&m, "net", "10.77.1.0/24=10.88.1.0/24", &err);
	if (bundle_import(b, "p2", &m, "t.conf", tgt, tgt ? strlen(tgt) : 0, NULL, 0, &out, &err) ==
	    0) {
		struct cfg *c = NULL;
		if (cfg_parse("check", out.buf, out.len, NULL, 0, &c, NULL) != 0)
			abort(); /* an accepted import the parser refuses */
		cfg_free(c);
	}
	sb_free(&out), sb_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = true;
	}
	struct strbuf err, sealed;
	sb_init(&err), sb_init(&sealed);
	struct bundle b;
	if (bundle_parse((const char *)data, size, &b, &err) == 0)
		bundle_clear(&b);
	if (size <= CFG_MAX_TEXT) {
		seal(data, size, &sealed);
		if (bundle_parse(sealed.buf, sealed.len, &b, &err) == 0) {
			try_import(&b, NULL);
			try_import(&b, target);
			bundle_clear(&b);
		}
	}
	sb_free(&err), sb_free(&sealed);
	return 0;
}
