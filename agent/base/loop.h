/* The agent's one event loop: epoll for fds, a heap of CLOCK_MONOTONIC timers,
 * signals through signalfd, and prepare hooks run before every wait (libiscsi's
 * fd and events are re-read there, and its service call is due at least once a
 * second). Callbacks may add and remove any watch or timer, their own included. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

struct loop;
struct watch;
struct timer;

typedef void (*watch_fn)(struct watch *w, int fd, uint32_t revents, void *ud);
typedef void (*destroy_fn)(void *ud);
typedef void (*timer_fn)(struct timer *t, void *ud);
typedef void (*signal_fn)(struct loop *l, const struct signalfd_siginfo *si, void *ud);
/* Called before each wait; returns the latest time (monotonic µs) the loop may sleep
 * until, or UINT64_MAX for no limit. */
typedef uint64_t (*prepare_fn)(struct loop *l, void *ud);

struct loop *loop_new(void);
struct loop *loop_free(struct loop *l);

/* Runs until loop_quit(); returns the code given to it. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int code);
/* One iteration: wait at most until `until_us` (monotonic), dispatch, return the number
 * of callbacks run or -errno. For tests and for nested waits during bootstrap. */
int loop_iterate(struct loop *l, uint64_t until_us);
/* Monotonic time of the current iteration. */
uint64_t loop_now(const struct loop *l);

struct watch *watch_add(struct loop *l, int fd, uint32_t events, watch_fn cb, void *ud,
			destroy_fn destroy);
int watch_set_events(struct watch *w, uint32_t events);
int watch_set_fd(struct watch *w, int fd, uint32_t events);
int watch_fd(const struct watch *w);
/* Safe at any time, also from inside any callback; destroy(ud) runs once the watch
 * is not dispatching. Accepts NULL; returns NULL. */
struct watch *watch_remove(struct watch *w);

struct timer *timer_new(struct loop *l, timer_fn cb, void *ud);
void timer_arm(struct timer *t, uint64_t deadline_us);
void timer_arm_in(struct timer *t, uint64_t delay_us);
void timer_disarm(struct timer *t);
bool timer_armed(const struct timer *t);
uint64_t timer_deadline(const struct timer *t);
struct timer *timer_free(struct timer *t);

int loop_add_signal(struct loop *l, int signo, signal_fn cb, void *ud);
int loop_add_prepare(struct loop *l, prepare_fn cb, void *ud);
/* Removes a prepare hook added with the same cb and ud (safe from inside a callback). */
void loop_remove_prepare(struct loop *l, prepare_fn cb, void *ud);
