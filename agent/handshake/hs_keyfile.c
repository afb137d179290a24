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

/* A key file made for one cluster only (the rig's test key in an image built with
 * RIG_KEY=1) starts with the line "only-cluster NAME". Returns the offset of the keys and
 * copies NAME into only ("" when there is no such line); -EINVAL when the line is bad. */
static int key_file_marker(const uint8_t *buf, size_t len, char only[HS_ONLY_CLUSTER_MAX])
{
	static const char m[] = "only-cluster ";
	only[0] = '\0';
	if (len < sizeof(m) - 1 || memcmp(buf, m, sizeof(m) - 1))
		return 0;
	const uint8_t *nl = memchr(buf, '\n', len);
	size_t n = nl ? (size_t)(nl - buf) - (sizeof(m) - 1) : 0;
	if (!nl || n == 0 || n >= HS_ONLY_CLUSTER_MAX)
		return -EINVAL;
	memcpy(only, buf + sizeof(m) - 1, n);
	only[n] = '\0';
	return (int)(nl - buf) + 1;
}

/* Reads the key file's keys into k (HS_KEYS_MAX keys) and its only-cluster marker into
 * only. Returns how many keys, or a negative errno with the reason in why. */
static int key_file_parse(const char *path, uint8_t *k, char *only, char *why, size_t why_len)
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
	int at = r >= 0 ? key_file_marker(buf, (size_t)len, only) : 0;
	if (r >= 0 && at < 0)
		r = -EINVAL;
	else if (r >= 0 && (size_t)len < sizeof(buf))
		r = hs_keys_parse(buf + at, (size_t)len - (size_t)at, (uint8_t(*)[HS_KEY_BYTES])k);
	else if (r >= 0)
		r = -EFBIG;
	sodium_memzero(buf, sizeof(buf));
	if (r == -EINVAL || r == -EFBIG)
		snprintf(why, why_len,
			 "not a cluster key (64 hex characters, or 32 raw bytes; "
			 "two hex keys during a rotation)");
	return r;
}

/* key_file_parse into sodium_malloc memory; errors are logged naming the file unless
 * quiet. */
static int key_file_read(const char *path, uint8_t **ret, char *only, bool quiet)
{
	char why[160] = "";
	uint8_t *k = sodium_malloc(HS_KEYS_MAX * HS_KEY_BYTES);
	int r = k ? key_file_parse(path, k, only, why, sizeof(why)) : -ENOMEM;
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

int hs_key_file_read(const char *path, uint8_t **ret, bool quiet)
{
	char only[HS_ONLY_CLUSTER_MAX];
	return key_file_read(path, ret, only, quiet);
}

bool hs_key_file_exists(const char *path)
{
	return path[0] && access(path, F_OK) == 0;
}

int hs_key_load(const char *path, const char *cluster, uint8_t **ret_key)
{
	uint8_t *k = NULL;
	char only[HS_ONLY_CLUSTER_MAX];
	int r = key_file_read(path, &k, only, false);
	if (r < 0)
		return r;
	if (only[0] && strcmp(only, cluster)) {
		log_error(
		    "cluster key file %s refused: it is a test key for cluster %s only (an "
		    "image built with RIG_KEY=1), and this configuration is cluster %s; build "
		    "the image without RIG_KEY and type the key with 'key install'",
		    path, only, cluster);
		sodium_free(k);
		return -EPERM;
	}
	*ret_key = k; /* the current key first; hs_new reads the file again for the other */
	return 0;
}

void hs_key_free(uint8_t *key)
{
	if (key)
		sodium_free(key); /* sodium_free wipes the memory */
}

/* Typed or pasted: 64 hex characters, or the base64 of the 32 bytes (with or without
 * padding); blanks around it are ignored. */
int hs_key_parse_typed(const char *text, uint8_t key[HS_KEY_BYTES])
{
	size_t len = strlen(text), got = 0;
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	while (len && (*text == ' ' || *text == '\t'))
		text++, len--;
	if (len == 2 * HS_KEY_BYTES)
		return sodium_hex2bin(key, HS_KEY_BYTES, text, len, NULL, &got, NULL) == 0 &&
			       got == HS_KEY_BYTES
			   ? 0
			   : -EINVAL;
	int v = len && text[len - 1] == '=' ? sodium_base64_VARIANT_ORIGINAL
					    : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
	if (sodium_base642bin(key, HS_KEY_BYTES, text, len, NULL, &got, NULL, v) == 0 &&
	    got == HS_KEY_BYTES)
		return 0;
	sodium_memzero(key, HS_KEY_BYTES);
	return -EINVAL;
}
