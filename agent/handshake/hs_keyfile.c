/* The cluster key file (SPEC §5): a regular file owned by root that gives nothing to
 * group or others, holding one key, or two during a rotation (hs_wire.h). */
#include "hs.h"

#include "log.h"

#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

/* The key file must be a regular file owned by root giving nothing to group or others.
 * Returns 0, or a negative errno with the reason in why. */
static int key_file_check(int fd, char *why, size_t why_len)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(why, why_len, "cannot stat it: %s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "not a regular file");
		return -EPERM;
	}
	if (st.st_uid != 0) {
		snprintf(why, why_len, "owned by uid %u, not root", (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, why_len, "mode %04o gives access to group or others (chmod 600 it)",
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Reads the key file's keys into k (HS_KEYS_MAX keys). Returns how many, or a negative
 * errno with the reason in why. */
static int key_file_parse(const char *path, uint8_t *k, char *why, size_t why_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(why, why_len, "cannot open it: %s", strerror(errno));
		return -errno;
	}
	uint8_t buf[512];
	int r = key_file_check(fd, why, why_len);
	ssize_t len = r < 0 ? 0 : read(fd, buf, sizeof(buf));
	if (len < 0) {
		r = -errno;
		snprintf(why, why_len, "cannot read it: %s", strerror(errno));
	}
	close(fd);
	if (r >= 0 && (size_t)len < sizeof(buf))
		r = hs_keys_parse(buf, (size_t)len, (uint8_t(*)[HS_KEY_BYTES])k);
	else if (r >= 0)
		r = -EFBIG;
	sodium_memzero(buf, sizeof(buf));
	if (r == -EINVAL || r == -EFBIG)
		snprintf(why, why_len, "not a cluster key (64 hex characters, or 32 raw bytes; "
				       "two hex keys during a rotation)");
	return r;
}

/* key_file_parse into sodium_malloc memory; errors are logged naming the file unless
 * quiet. */
int hs_key_file_read(const char *path, uint8_t **ret, bool quiet)
{
	char why[160] = "";
	uint8_t *k = sodium_malloc(HS_KEYS_MAX * HS_KEY_BYTES);
	int r = k ? key_file_parse(path, k, why, sizeof(why)) : -ENOMEM;
	if (r < 0) {
		if (!quiet)
			log_error("cluster key file %s refused: %s", path, why);
		if (k)
			sodium_free(k);
		return r;
	}
	*ret = k;
	return r;
}

int hs_key_load(const char *path, uint8_t **ret_key)
{
	uint8_t *k = NULL;
	int r = hs_key_file_read(path, &k, false);
	if (r < 0)
		return r;
	*ret_key = k; /* the current key first; hs_new reads the file again for the other */
	return 0;
}

void hs_key_free(uint8_t *key)
{
	if (key)
		sodium_free(key); /* sodium_free wipes the memory */
}
