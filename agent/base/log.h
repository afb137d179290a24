/* Logging: one place where every line goes to stderr or /dev/kmsg, to an in-memory
 * ring the console prints, and to subscribers (the console shows state changes live).
 * Event lines (SPEC §12) are built with event_*() so their values are always quoted
 * the same way. */
#pragma once

#include "util.h"

enum log_level {
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	_LOG_LVL_MAX
};

const char *log_level_to_str(enum log_level l);

enum log_target { LOG_TARGET_STDERR, LOG_TARGET_KMSG, LOG_TARGET_NONE, _LOG_TARGET_MAX };

void log_set_target(enum log_target t);
void log_set_max_level(enum log_level l);

void log_msg(enum log_level l, const char *fmt, ...) _printf_(2, 3);
/* Logs "msg: strerror(-err)" and returns err (a negative errno), for `return log_error_errno(r,
 * ...)`. */
int log_errno(enum log_level l, int err, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn_errno(e, ...) log_errno(LOG_LVL_WARN, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_errno(LOG_LVL_ERR, (e), __VA_ARGS__)

/* The ring of recent lines. */
struct log_line {
	uint64_t mono_us;
	enum log_level level;
	bool is_event;
	char text[512];
};
/* Visit the last n lines (oldest first); n == 0 means all kept. */
void log_ring_foreach(size_t n, void (*cb)(const struct log_line *l, void *ud), void *ud);
size_t log_ring_count(void);

/* Subscribers see each line as it is logged. Returns an id for log_unsubscribe. */
typedef void (*log_sub_fn)(const struct log_line *l, void *ud);
int log_subscribe(log_sub_fn fn, void *ud);
void log_unsubscribe(int id);

/* event=<kind> key=value … */
struct event {
	struct strbuf sb;
};
void event_begin(struct event *ev, const char *kind);
void event_add(struct event *ev, const char *key, const char *val);
void event_addf(struct event *ev, const char *key, const char *fmt, ...) _printf_(3, 4);
void event_add_u64(struct event *ev, const char *key, uint64_t v);
void event_emit(struct event *ev);
