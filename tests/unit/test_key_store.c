/* The cluster key on cmpt-state (key_store.h) and the key typed on the console
 * (hs_key_parse_typed): round trip on two state files (one with a partition offset), the
 * journal and config copies untouched, a corrupt copy ignored while the other device's
 * counts, another id refused, too small an area, hex / base64 / garbage typed. */
#include "config_store.h"
#include "hs.h"
#include "journal.h"
#include "key_store.h"
#include "log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

static char dir[128];
static struct journal_dev devs[2];

static int setup(void **st)
{
	snprintf(dir, sizeof(dir), "/tmp/test_key_store.XXXXXX");
	if (!mkdtemp(dir) || sodium_init() < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		snprintf(devs[i].path, sizeof(devs[i].path), "%s/state%d.img", dir, i);
		int fd = open(devs[i].path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, 4 << 20) < 0)
			return -1;
		close(fd);
		devs[i].offset = i == 1 ? 1 << 20 : 0; /* an image file with a partition at 1 MiB */
		devs[i].size = 2 << 20;
	}
	return 0;
}

static int teardown(void **st)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void flip(const struct journal_dev *d, uint64_t at)
{
	int fd = open(d->path, O_RDWR | O_CLOEXEC);
	uint8_t b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)(d->offset + at)), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)(d->offset + at)), 1);
	close(fd);
}

static void test_round_trip(void **st)
{
	uint8_t key[32], id[8], got[32], got_id[8], other[8];
	randombytes_buf(key, sizeof(key));
	hs_key_id(key, id);
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(key_store_load(devs, 2, id, got, NULL), -ENOENT);

	/* the journal slots and the config copies around the region stay as they were */
	struct journal_state *j = calloc(1, sizeof(*j));
	snprintf(j->node, sizeof(j->node), "a1");
	assert_int_equal(journal_store(devs, 2, j), 0);
	const char text[] = "[cluster]\nname = x\n";
	uint8_t h[32];
	crypto_generichash(h, 32, (const uint8_t *)text, sizeof(text) - 1, NULL, 0);
	assert_int_equal(config_store_save(devs, 2, text, sizeof(text) - 1, 3, h, NULL), 0);

	int ok = -1;
	assert_int_equal(key_store_save(devs, 2, key, id, &ok), 0);
	assert_int_equal(ok, 2);
	assert_int_equal(key_store_load(devs, 2, id, got, got_id), 0);
	assert_memory_equal(got, key, 32);
	assert_memory_equal(got_id, id, 8);
	assert_int_equal(key_store_load(devs, 2, NULL, got, NULL), 0);
	assert_int_equal(key_store_load(devs, 2, other, got, NULL), -EKEYREJECTED);

	struct journal_state *back = calloc(1, sizeof(*back));
	assert_int_equal(journal_load(devs, 2, back), 0);
	assert_string_equal(back->node, "a1");
	char *t = NULL;
	size_t len;
	uint64_t v;
	assert_int_equal(config_store_load(devs, 2, h, &t, &len, &v), 0);
	assert_int_equal(v, 3);
	free(t);
	free(back);
	free(j);

	/* one device's copy corrupt (a key byte): the other one counts; both: none */
	flip(&devs[0], KEY_STORE_OFFSET + 64 + 5);
	memset(got, 0, sizeof(got));
	assert_int_equal(key_store_load(devs, 2, id, got, NULL), 0);
	assert_memory_equal(got, key, 32);
	flip(&devs[1], KEY_STORE_OFFSET + 24); /* the id: covered by the hash too */
	assert_int_equal(key_store_load(devs, 2, id, got, NULL), -ENOENT);

	assert_int_equal(key_store_erase(devs, 2), 0);
	assert_int_equal(key_store_load(devs, 2, NULL, got, NULL), -ENOENT);
}

static void test_small_area(void **st)
{
	struct journal_dev d = devs[0];
	uint8_t key[32] = {1}, id[8] = {2};
	int ok = -1;
	d.size = KEY_STORE_OFFSET; /* a journal only */
	assert_int_equal(key_store_save(&d, 1, key, id, &ok), -ENOSPC);
	assert_int_equal(ok, 0);
	assert_int_equal(key_store_save(&d, 0, key, id, &ok), -ENODEV);
}

static void test_typed(void **st)
{
	uint8_t key[32], want[32];
	for (int i = 0; i < 32; i++)
		want[i] = (uint8_t)(i * 7 + 1);
	char hex[65], b64[64];
	sodium_bin2hex(hex, sizeof(hex), want, 32);
	sodium_bin2base64(b64, sizeof(b64), want, 32, sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(hs_key_parse_typed(hex, key), 0);
	assert_memory_equal(key, want, 32);
	char padded[80];
	snprintf(padded, sizeof(padded), "  %s\t", b64);
	assert_int_equal(hs_key_parse_typed(padded, key), 0);
	assert_memory_equal(key, want, 32);
	b64[strlen(b64) - 1] = '\0'; /* without the '=' */
	assert_int_equal(hs_key_parse_typed(b64, key), 0);
	assert_memory_equal(key, want, 32);
	hex[63] = 'g';
	assert_int_equal(hs_key_parse_typed(hex, key), -EINVAL);
	assert_int_equal(hs_key_parse_typed("", key), -EINVAL);
	assert_int_equal(hs_key_parse_typed("c2hvcnQ=", key), -EINVAL); /* 5 bytes */
	hex[62] = '\0';
	assert_int_equal(hs_key_parse_typed(hex, key), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip),
					   cmocka_unit_test(test_small_area),
					   cmocka_unit_test(test_typed)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
