/* The cluster key on cmpt-state (key_store.h). */
#include "key_store.h"

#include "log.h"

#include <endian.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>

#define HDR 64
#define KEY_STORE_FORMAT 1

static bool region_ok(const struct journal_dev *d)
{
	return d->size >= KEY_STORE_OFFSET + KEY_STORE_SIZE;
}

static void region_hash(const uint8_t *b, uint8_t out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, b, 32);
	crypto_generichash_update(&st, b + HDR, KEY_STORE_KEY_BYTES);
	crypto_generichash_final(&st, out, 32);
}

static void region_encode(uint8_t *b, const uint8_t *key, const uint8_t *id)
{
	uint32_t v = htole32(KEY_STORE_FORMAT), hs = htole32(HDR),
		 kl = htole32(KEY_STORE_KEY_BYTES);
	memset(b, 0, KEY_STORE_SIZE);
	memcpy(b, KEY_STORE_MAGIC, 8);
	memcpy(b + 8, &v, 4);
	memcpy(b + 12, &hs, 4);
	memcpy(b + 16, &kl, 4);
	memcpy(b + 24, id, KEY_STORE_ID_BYTES);
	memcpy(b + HDR, key, KEY_STORE_KEY_BYTES);
	region_hash(b, b + 32);
}

/* -ENODATA: no key there (zeros or another magic); -EBADMSG: a torn or corrupt one. */
static int region_decode(const uint8_t *b)
{
	uint32_t v, hs, kl;
	uint8_t h[32];
	if (memcmp(b, KEY_STORE_MAGIC, 8))
		return -ENODATA;
	memcpy(&v, b + 8, 4);
	memcpy(&hs, b + 12, 4);
	memcpy(&kl, b + 16, 4);
	if (le32toh(v) != KEY_STORE_FORMAT || le32toh(hs) != HDR ||
	    le32toh(kl) != KEY_STORE_KEY_BYTES)
		return -EBADMSG;
	region_hash(b, h);
	int r = sodium_memcmp(h, b + 32, 32) ? -EBADMSG : 0;
	sodium_memzero(h, sizeof(h));
	return r;
}

static int region_write(const struct journal_dev *d, const uint8_t *b)
{
	if (!region_ok(d))
		return -ENOSPC;
	_cleanup_close_ int fd = open(d->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, b, KEY_STORE_SIZE, (off_t)(d->offset + KEY_STORE_OFFSET)) != KEY_STORE_SIZE)
		return errno ? -errno : -EIO;
	return fsync(fd) < 0 ? -errno : 0;
}

static int region_read(const struct journal_dev *d, uint8_t *b)
{
	if (!region_ok(d))
		return -ENOSPC;
	_cleanup_close_ int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, b, KEY_STORE_SIZE, (off_t)(d->offset + KEY_STORE_OFFSET)) != KEY_STORE_SIZE)
		return -EIO;
	return region_decode(b);
}

int key_store_save(const struct journal_dev *devs, int n, const uint8_t key[KEY_STORE_KEY_BYTES],
		   const uint8_t id[KEY_STORE_ID_BYTES], int *ret_ok)
{
	uint8_t *b = sodium_malloc(KEY_STORE_SIZE);
	int ok = 0, err = n > 0 ? 0 : -ENODEV;
	if (!b)
		return -ENOMEM;
	region_encode(b, key, id);
	for (int i = 0; i < n; i++) {
		int r = region_write(&devs[i], b);
		if (r < 0) {
			log_warn_errno(r, "%s: cannot store the cluster key", devs[i].path);
			err = r;
		} else {
			ok++;
		}
	}
	sodium_free(b);
	if (ret_ok)
		*ret_ok = ok;
	return err;
}

int key_store_load(const struct journal_dev *devs, int n, const uint8_t *id,
		   uint8_t key[KEY_STORE_KEY_BYTES], uint8_t *ret_id)
{
	uint8_t *b = sodium_malloc(KEY_STORE_SIZE);
	int res = -ENOENT;
	if (!b)
		return -ENOMEM;
	for (int i = 0; i < n && res != 0; i++) {
		int r = region_read(&devs[i], b);
		if (r == -EBADMSG)
			log_warn("%s: the stored cluster key is torn or corrupt, ignoring it",
				 devs[i].path);
		if (r < 0)
			continue;
		if (id && memcmp(b + 24, id, KEY_STORE_ID_BYTES)) {
			res = -EKEYREJECTED;
			continue;
		}
		memcpy(key, b + HDR, KEY_STORE_KEY_BYTES);
		if (ret_id)
			memcpy(ret_id, b + 24, KEY_STORE_ID_BYTES);
		res = 0;
	}
	sodium_free(b); /* wipes it */
	return res;
}

int key_store_erase(const struct journal_dev *devs, int n)
{
	uint8_t *b = calloc(1, KEY_STORE_SIZE);
	int err = 0;
	if (!b)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int r = region_write(&devs[i], b);
		err = r < 0 ? r : err;
	}
	free(b);
	return err;
}
