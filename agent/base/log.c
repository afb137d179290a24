#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#define RING_LINES 2048
#define MAX_SUBS 8

static enum log_target target = LOG_TARGET_STDERR;
static enum log_level max_level = LOG_LVL_INFO;
static int kmsg_fd = -1;
static char ident[32] = "compartd";

static struct log_line ring[RING_LINES];
static size_t ring_head; /* next slot to write */
static size_t ring_used;

static struct {
	log_sub_fn fn;
	void *ud;
} subs[MAX_SUBS];
static bool in_sub;

static const char *const level_str[_LOG_LVL_MAX] = {
    [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning", [LOG_LVL_NOTICE] = "notice",
    [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};

const char *log_level_to_str(enum log_level l)
{
	return l < _LOG_LVL_MAX ? level_str[l] : NULL;
}

void log_set_target(enum log_target t)
{
	if (kmsg_fd >= 0) {
		close(kmsg_fd);
		kmsg_fd = -1;
	}
	target = t;
	if (t == LOG_TARGET_KMSG) {
		kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (kmsg_fd < 0)
			target = LOG_TARGET_STDERR;
	}
}

void log_set_max_level(enum log_level l)
{
	max_level = l;
}

static int kmsg_prio(enum log_level l)
{
	switch (l) {
	case LOG_LVL_ERR:
		return 3;
	case LOG_LVL_WARN:
		return 4;
	case LOG_LVL_NOTICE:
		return 5;
	case LOG_LVL_INFO:
		return 6;
	case LOG_LVL_DEBUG:
	case _LOG_LVL_MAX:
		break;
	}
	return 7;
}

static void log_line_out(enum log_level l, bool is_event, const char *text)
{
	struct log_line *ll = &ring[ring_head];
	ll->mono_us = now_usec();
	ll->level = l;
	ll->is_event = is_event;
	snprintf(ll->text, sizeof(ll->text), "%s", text);
	ring_head = (ring_head + 1) % RING_LINES;
	if (ring_used < RING_LINES)
		ring_used++;

	char buf[600];
	switch (target) {
	case LOG_TARGET_STDERR:
		fprintf(stderr, "%s: %s\n", ident, text);
		break;
	case LOG_TARGET_KMSG: {
		int n = snprintf(buf, sizeof(buf), "<%d>%s: %s\n", kmsg_prio(l), ident, text);
		if (n > 0 && write(kmsg_fd, buf, (size_t)n) < 0)
			fprintf(stderr, "%s: %s\n", ident, text);
		break;
	}
	case LOG_TARGET_NONE:
	case _LOG_TARGET_MAX:
		break;
	}
	if (in_sub)
		return; /* a subscriber that logs must not recurse into itself */
	in_sub = true;
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (subs[i].fn)
			subs[i].fn(ll, subs[i].ud);
	in_sub = false;
}

static void log_vmsg(enum log_level l, const char *fmt, va_list ap) _printf_(2, 0);
static void log_vmsg(enum log_level l, const char *fmt, va_list ap)
{
	if (l > max_level)
		return;
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	log_line_out(l, false, text);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, fmt, ap);
	va_end(ap);
}

int log_errno(enum log_level l, int err, const char *fmt, ...)
{
	if (l <= max_level) {
		char text[512];
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < sizeof(text))
			snprintf(text + n, sizeof(text) - (size_t)n, ": %s",
				 strerror(err < 0 ? -err : err));
		log_line_out(l, false, text);
	}
	return err < 0 ? err : -err;
}

void log_ring_foreach(size_t n, void (*cb)(const struct log_line *l, void *ud), void *ud)
{
	if (n == 0 || n > ring_used)
		n = ring_used;
	size_t start = (ring_head + RING_LINES - n) % RING_LINES;
	for (size_t i = 0; i < n; i++)
		cb(&ring[(start + i) % RING_LINES], ud);
}

size_t log_ring_count(void)
{
	return ring_used;
}

int log_subscribe(log_sub_fn fn, void *ud)
{
	for (size_t i = 0; i < MAX_SUBS; i++) {
		if (!subs[i].fn) {
			subs[i].fn = fn;
			subs[i].ud = ud;
			return (int)i;
		}
	}
	return -ENOSPC;
}

void log_unsubscribe(int id)
{
	if (id >= 0 && id < MAX_SUBS)
		subs[id].fn = NULL;
}

void event_begin(struct event *ev, const char *kind)
{
	sb_init(&ev->sb);
	sb_puts(&ev->sb, "event=");
	sb_puts(&ev->sb, kind);
}

void event_add(struct event *ev, const char *key, const char *val)
{
	sb_putc(&ev->sb, ' ');
	sb_puts(&ev->sb, key);
	sb_putc(&ev->sb, '=');
	sb_event_val(&ev->sb, val);
}

void event_addf(struct event *ev, const char *key, const char *fmt, ...)
{
	struct strbuf v;
	sb_init(&v);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&v, fmt, ap);
	va_end(ap);
	event_add(ev, key, v.buf ? v.buf : "");
	sb_free(&v);
}

void event_add_u64(struct event *ev, const char *key, uint64_t v)
{
	event_addf(ev, key, "%" PRIu64, v);
}

void event_emit(struct event *ev)
{
	if (ev->sb.buf)
		log_line_out(LOG_LVL_NOTICE, true, ev->sb.buf);
	sb_free(&ev->sb);
}
