/* Helpers of the unit tests that work on disk image files: make one, hash it, run a tool on
 * it. Include after cmocka.h. */
#pragma once
#pragma GCC diagnostic ignored "-Wunused-function"
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* A sparse file of size bytes, made afresh. */
static void make_img(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* SHA-256 of len bytes of path from off. */
static void sha256_range(const char *path, uint64_t off, uint64_t len, uint8_t out[32])
{
	crypto_hash_sha256_state st;
	static uint8_t buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	crypto_hash_sha256_init(&st);
	while (len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
		crypto_hash_sha256_update(&st, buf, n);
		off += n;
		len -= n;
	}
	close(fd);
	crypto_hash_sha256_final(&st, out);
}

static void sha256_file(const char *path, uint8_t out[32])
{
	struct stat s;
	assert_int_equal(stat(path, &s), 0);
	sha256_range(path, 0, (uint64_t)s.st_size, out);
}

/* A shell command from a format; its exit status, -1 when it did not exit. */
static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
