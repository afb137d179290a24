#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void sb_init(struct strbuf *sb)
{
	*sb = (struct strbuf){0};
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static bool sb_grow(struct strbuf *sb, size_t extra)
{
	if (sb->oom)
		return false;
	if (sb->len + extra + 1 <= sb->cap)
		return true;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	char *n = realloc(sb->buf, cap);
	if (!n) {
		sb->oom = true;
		return false;
	}
	sb->buf = n;
	sb->cap = cap;
	return true;
}

void sb_put(struct strbuf *sb, const void *p, size_t n)
{
	if (!sb_grow(sb, n))
		return;
	memcpy(sb->buf + sb->len, p, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_putc(struct strbuf *sb, char c)
{
	sb_put(sb, &c, 1);
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0 || !sb_grow(sb, (size_t)n))
		return;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

void sb_json_str(struct strbuf *sb, const char *s)
{
	sb_putc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\') {
			sb_putc(sb, '\\');
			sb_putc(sb, (char)*p);
		} else if (*p == '\n') {
			sb_puts(sb, "\\n");
		} else if (*p < 0x20 || *p == 0x7f) {
			sb_printf(sb, "\\u%04x", *p);
		} else {
			sb_putc(sb, (char)*p);
		}
	}
	sb_putc(sb, '"');
}

void sb_event_val(struct strbuf *sb, const char *s)
{
	if (!s || !*s) {
		sb_puts(sb, "\"\"");
		return;
	}
	bool bare = true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			bare = false;
	if (bare) {
		sb_puts(sb, s);
		return;
	}
	sb_putc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_putc(sb, '\\');
		sb_putc(sb, (char)(*p < ' ' || *p == 0x7f ? '?' : *p));
	}
	sb_putc(sb, '"');
}

char *sb_steal(struct strbuf *sb)
{
	if (sb->oom) {
		sb_free(sb);
		return NULL;
	}
	char *r = sb->buf ? sb->buf : strdup("");
	sb_init(sb);
	return r;
}

static uint64_t clock_usec(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_usec(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

uint64_t realtime_usec(void)
{
	return clock_usec(CLOCK_REALTIME);
}

int parse_u64(const char *s, uint64_t *ret)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_int(const char *s, long min, long max, long *ret)
{
	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end || isspace((unsigned char)*s))
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static int parse_with_units(const char *s, const struct unit *units, size_t n_units,
			    uint64_t dflt_mult, uint64_t *ret)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	uint64_t mult = dflt_mult;
	if (*end) {
		size_t i;
		for (i = 0; i < n_units; i++)
			if (strcmp(end, units[i].name) == 0)
				break;
		if (i == n_units)
			return -EINVAL;
		mult = units[i].mult;
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

static const struct unit duration_units[] = {
    {"us", 1}, {"ms", 1000}, {"s", 1000000}, {"m", 60000000}, {"min", 60000000},
};

int parse_duration(const char *s, uint64_t *ret_usec)
{
	return parse_with_units(s, duration_units, ARRAY_SIZE(duration_units), 1000, ret_usec);
}

static const struct unit size_units[] = {
    {"B", 1},
    {"K", 1ULL << 10},
    {"KiB", 1ULL << 10},
    {"M", 1ULL << 20},
    {"MiB", 1ULL << 20},
    {"G", 1ULL << 30},
    {"GiB", 1ULL << 30},
    {"T", 1ULL << 40},
    {"TiB", 1ULL << 40},
};

int parse_size(const char *s, uint64_t *ret_bytes)
{
	return parse_with_units(s, size_units, ARRAY_SIZE(size_units), 1, ret_bytes);
}

static void format_exact(uint64_t v, const struct unit *units, size_t n, char *out, size_t len)
{
	for (size_t i = n; i-- > 0;) {
		if (units[i].mult > 1 && v && v % units[i].mult == 0) {
			snprintf(out, len, "%" PRIu64 "%s", v / units[i].mult, units[i].name);
			return;
		}
	}
	snprintf(out, len, "%" PRIu64 "%s", v, units[0].name);
}

void format_duration(uint64_t usec, char *out, size_t n)
{
	/* "m" is parsed but minutes are printed as seconds: "m" reads too much like metres. */
	format_exact(usec, duration_units, 3, out, n);
}

void format_size(uint64_t bytes, char *out, size_t n)
{
	static const struct unit u[] = {
	    {"", 1},
	    {"KiB", 1ULL << 10},
	    {"MiB", 1ULL << 20},
	    {"GiB", 1ULL << 30},
	    {"TiB", 1ULL << 40},
	};
	format_exact(bytes, u, ARRAY_SIZE(u), out, n);
}

int parse_mac(const char *s, uint8_t ret[6])
{
	uint8_t m[6];
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -EINVAL;
		char hex[3] = {s[0], s[1], 0};
		m[i] = (uint8_t)strtoul(hex, NULL, 16);
		s += 2;
		if (i < 5) {
			if (*s != ':' && *s != '-')
				return -EINVAL;
			s++;
		}
	}
	if (*s)
		return -EINVAL;
	memcpy(ret, m, 6);
	return 0;
}

void format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

char *strstrip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct strbuf sb;
	sb_init(&sb);
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			sb_free(&sb);
			return r;
		}
		if (n == 0)
			break;
		if (sb.len + (size_t)n > max) {
			sb_free(&sb);
			return -EFBIG;
		}
		sb_put(&sb, buf, (size_t)n);
	}
	size_t len = sb.len;
	char *s = sb_steal(&sb);
	if (!s)
		return -ENOMEM;
	*ret = s;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int write_file_atomic(const char *path, const void *text, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, text, len);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int split_words(char *buf, char *argv[], int max)
{
	int argc = 0;
	char *r = buf, *w = buf;
	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			break;
		if (argc == max)
			return -E2BIG;
		argv[argc++] = w;
		bool q = false;
		while (*r && (q || (*r != ' ' && *r != '\t'))) {
			if (*r == '"')
				q = !q;
			else
				*w++ = *r;
			r++;
		}
		if (q)
			return -EINVAL;
		if (*r)
			r++;
		*w++ = '\0';
	}
	return argc;
}
