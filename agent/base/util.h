/* Small helpers shared by every module: cleanup attributes, a growable string
 * buffer, monotonic time and checked number parsing. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL
#define USEC_INFINITY UINT64_MAX

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _t = (p);                                                            \
		(p) = NULL;                                                                        \
		_t;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _t = (fd);                                                                     \
		(fd) = -1;                                                                         \
		_t;                                                                                \
	})

/* A growable, always NUL-terminated string. A buffer whose allocation failed
 * remembers it in `oom` and ignores further appends. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_putc(struct strbuf *sb, char c);
void sb_puts(struct strbuf *sb, const char *s);
void sb_put(struct strbuf *sb, const void *p, size_t n);
void sb_printf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap) _printf_(2, 0);
/* Append s as a JSON string literal, quotes included. */
void sb_json_str(struct strbuf *sb, const char *s);
/* Append s as an event-line value: bare if it has no space, quote or '=', else quoted. */
void sb_event_val(struct strbuf *sb, const char *s);
/* Return the buffer and leave sb empty; never NULL unless out of memory. */
char *sb_steal(struct strbuf *sb);

uint64_t now_usec(void);      /* CLOCK_MONOTONIC */
uint64_t realtime_usec(void); /* CLOCK_REALTIME */

/* Checked parsing. Each returns 0 or -EINVAL / -ERANGE and leaves ret_* untouched on error. */
int parse_u64(const char *s, uint64_t *ret);
int parse_int(const char *s, long min, long max, long *ret);
int parse_bool(const char *s, bool *ret);
/* "500ms", "3s", "2m", "250us", plain number = milliseconds. Result in microseconds. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* "512MiB", "4GiB", "16M", "1T", plain number = bytes. */
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_mac(const char *s, uint8_t ret[6]);
void format_mac(const uint8_t mac[6], char out[18]);
/* Formats microseconds as the shortest exact unit: "500ms", "3s", "250us". */
void format_duration(uint64_t usec, char *out, size_t n);
/* Formats bytes as the shortest exact binary unit: "512MiB", "4GiB", "1000". */
void format_size(uint64_t bytes, char *out, size_t n);

/* Strip leading and trailing white space in place; returns the start. */
char *strstrip(char *s);
bool streq_ptr(const char *a, const char *b);
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_len);
int write_all(int fd, const void *buf, size_t len);
/* Replaces path by len bytes of text, mode 0644, all or nothing: written and fsynced under
 * "<path>.tmp.<pid>", then renamed over path (the temporary is removed on failure). */
int write_file_atomic(const char *path, const void *text, size_t len);
/* Splits a line into words at spaces and tabs; double quotes group (and are dropped).
 * Returns argc or -EINVAL (unbalanced quote), -E2BIG (more than `max` words). `buf` is
 * modified and argv points into it; argv[argc] is not set. */
int split_words(char *buf, char *argv[], int max);
