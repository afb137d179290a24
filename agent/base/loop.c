#include "loop.h"

#include "log.h"
#include "util.h"

#include <string.h>
#include <sys/signalfd.h>

#define MAX_SIGNALS 16
#define MAX_PREPARE 16
#define MAX_EVENTS 32
/* Timers due within this long after the earliest one are waited for and fired with it, in
 * one wake-up: a module that arms a timer per peer one after the other gets one wake-up,
 * not one per microsecond of arming. Timers fire late by at most this, never early. */
#define TIMER_SLACK_US 1000

enum watch_state { WATCH_ACTIVE, WATCH_DISPATCHING, WATCH_DESTROYED };

struct watch {
	struct loop *loop;
	int fd;
	uint32_t events;
	watch_fn cb;
	void *ud;
	destroy_fn destroy;
	enum watch_state state;
	struct watch *next_zombie;
};

struct timer {
	struct loop *loop;
	timer_fn cb;
	void *ud;
	uint64_t deadline;
	uint64_t seq;	 /* ties fire in arming order */
	size_t heap_idx; /* SIZE_MAX when not armed */
};

struct loop {
	int epfd;
	bool quit;
	int quit_code;
	uint64_t now;
	uint64_t timer_seq;

	struct timer **heap;
	size_t heap_len, heap_cap;

	struct watch *zombies;
	bool dispatching;

	int sigfd;
	struct watch *sigwatch;
	sigset_t sigmask;
	struct {
		int signo;
		signal_fn cb;
		void *ud;
	} sigs[MAX_SIGNALS];

	struct {
		prepare_fn cb;
		void *ud;
	} prepare[MAX_PREPARE];
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	l->now = now_usec();
	return l;
}

static void reap_zombies(struct loop *l)
{
	while (l->zombies) {
		struct watch *w = l->zombies;
		l->zombies = w->next_zombie;
		if (w->destroy)
			w->destroy(w->ud);
		free(w);
	}
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	watch_remove(l->sigwatch);
	reap_zombies(l);
	for (size_t i = 0; i < l->heap_len; i++)
		l->heap[i]->heap_idx = SIZE_MAX;
	free(l->heap);
	if (l->sigfd >= 0)
		close(l->sigfd);
	close(l->epfd);
	free(l);
	return NULL;
}

uint64_t loop_now(const struct loop *l)
{
	return l->now;
}

void loop_quit(struct loop *l, int code)
{
	l->quit = true;
	l->quit_code = code;
}

/* ---- watches ---- */

struct watch *watch_add(struct loop *l, int fd, uint32_t events, watch_fn cb, void *ud,
			destroy_fn destroy)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct watch){.loop = l,
			    .fd = fd,
			    .events = events,
			    .cb = cb,
			    .ud = ud,
			    .destroy = destroy,
			    .state = WATCH_ACTIVE};
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return NULL;
	}
	return w;
}

int watch_set_events(struct watch *w, uint32_t events)
{
	if (w->state == WATCH_DESTROYED)
		return -ESTALE;
	if (events == w->events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

int watch_set_fd(struct watch *w, int fd, uint32_t events)
{
	if (w->state == WATCH_DESTROYED)
		return -ESTALE;
	if (fd == w->fd)
		return watch_set_events(w, events);
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(w->loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	/* The old fd may already be closed (libiscsi reconnects by closing it). */
	epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = fd;
	w->events = events;
	return 0;
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

struct watch *watch_remove(struct watch *w)
{
	if (!w || w->state == WATCH_DESTROYED)
		return NULL;
	struct loop *l = w->loop;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	bool was_dispatching = w->state == WATCH_DISPATCHING;
	w->state = WATCH_DESTROYED;
	if (l->dispatching || was_dispatching) {
		/* Events for it may still be pending in this batch: free after dispatch. */
		w->next_zombie = l->zombies;
		l->zombies = w;
		return NULL;
	}
	if (w->destroy)
		w->destroy(w->ud);
	free(w);
	return NULL;
}

/* ---- timers: a binary min-heap on (deadline, seq) ---- */

static bool timer_before(const struct timer *a, const struct timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!timer_before(t, l->heap[p]))
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static void heap_remove(struct loop *l, struct timer *t)
{
	size_t i = t->heap_idx;
	t->heap_idx = SIZE_MAX;
	l->heap_len--;
	if (i == l->heap_len)
		return;
	struct timer *m = l->heap[l->heap_len];
	heap_set(l, i, m);
	heap_down(l, i);
	heap_up(l, m->heap_idx);
}

struct timer *timer_new(struct loop *l, timer_fn cb, void *ud)
{
	struct timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct timer){.loop = l, .cb = cb, .ud = ud, .heap_idx = SIZE_MAX};
	return t;
}

void timer_disarm(struct timer *t)
{
	if (t && t->heap_idx != SIZE_MAX)
		heap_remove(t->loop, t);
}

void timer_arm(struct timer *t, uint64_t deadline_us)
{
	struct loop *l = t->loop;
	timer_disarm(t);
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h) {
			log_error("timer heap: out of memory, timer dropped");
			return;
		}
		l->heap = h;
		l->heap_cap = cap;
	}
	t->deadline = deadline_us;
	t->seq = l->timer_seq++;
	heap_set(l, l->heap_len++, t);
	heap_up(l, t->heap_idx);
}

void timer_arm_in(struct timer *t, uint64_t delay_us)
{
	timer_arm(t, now_usec() + delay_us);
}

bool timer_armed(const struct timer *t)
{
	return t->heap_idx != SIZE_MAX;
}

uint64_t timer_deadline(const struct timer *t)
{
	return t->deadline;
}

struct timer *timer_free(struct timer *t)
{
	if (t) {
		timer_disarm(t);
		free(t);
	}
	return NULL;
}

/* ---- signals and prepare hooks ---- */

static void on_signal(struct watch *w, int fd, uint32_t revents, void *ud)
{
	struct loop *l = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < MAX_SIGNALS; i++)
			if (l->sigs[i].cb && l->sigs[i].signo == (int)si.ssi_signo)
				l->sigs[i].cb(l, &si, l->sigs[i].ud);
	}
}

int loop_add_signal(struct loop *l, int signo, signal_fn cb, void *ud)
{
	size_t i;
	for (i = 0; i < MAX_SIGNALS && l->sigs[i].cb; i++)
		;
	if (i == MAX_SIGNALS)
		return -ENOSPC;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -errno;
	int fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		l->sigfd = fd;
		l->sigwatch = watch_add(l, fd, EPOLLIN, on_signal, l, NULL);
		if (!l->sigwatch)
			return -ENOMEM;
	}
	l->sigs[i].signo = signo;
	l->sigs[i].cb = cb;
	l->sigs[i].ud = ud;
	return 0;
}

int loop_add_prepare(struct loop *l, prepare_fn cb, void *ud)
{
	for (size_t i = 0; i < MAX_PREPARE; i++) {
		if (!l->prepare[i].cb) {
			l->prepare[i].cb = cb;
			l->prepare[i].ud = ud;
			return 0;
		}
	}
	return -ENOSPC;
}

void loop_remove_prepare(struct loop *l, prepare_fn cb, void *ud)
{
	for (size_t i = 0; i < MAX_PREPARE; i++)
		if (l->prepare[i].cb == cb && l->prepare[i].ud == ud)
			l->prepare[i].cb = NULL;
}

/* ---- iteration ---- */

/* The latest deadline in the heap below index i that is not after `limit` (subtrees whose
 * root is after it are skipped: O(timers in the window)). */
static uint64_t heap_latest_until(const struct loop *l, size_t i, uint64_t limit, uint64_t best)
{
	if (i >= l->heap_len || l->heap[i]->deadline > limit)
		return best;
	if (l->heap[i]->deadline > best)
		best = l->heap[i]->deadline;
	best = heap_latest_until(l, 2 * i + 1, limit, best);
	return heap_latest_until(l, 2 * i + 2, limit, best);
}

/* When to wake for the timers: the earliest deadline, moved to the last deadline within
 * TIMER_SLACK_US of it so that they all fire in the same pass. */
static uint64_t timers_wake_at(const struct loop *l)
{
	if (!l->heap_len)
		return UINT64_MAX;
	uint64_t first = l->heap[0]->deadline;
	uint64_t limit = first > UINT64_MAX - TIMER_SLACK_US ? UINT64_MAX : first + TIMER_SLACK_US;
	return heap_latest_until(l, 0, limit, first);
}

static int run_timers(struct loop *l)
{
	int n = 0;
	/* Only timers due at the start of this pass fire; one re-armed for "now" waits a turn. */
	uint64_t now = l->now;
	uint64_t seq_limit = l->timer_seq;
	while (l->heap_len && l->heap[0]->deadline <= now && l->heap[0]->seq < seq_limit) {
		struct timer *t = l->heap[0];
		heap_remove(l, t);
		t->cb(t, t->ud);
		n++;
	}
	return n;
}

int loop_iterate(struct loop *l, uint64_t until_us)
{
	uint64_t deadline = until_us;
	for (size_t i = 0; i < MAX_PREPARE; i++) {
		if (!l->prepare[i].cb)
			continue;
		uint64_t d = l->prepare[i].cb(l, l->prepare[i].ud);
		if (d < deadline)
			deadline = d;
	}
	uint64_t timers = timers_wake_at(l);
	if (timers < deadline)
		deadline = timers;

	int timeout_ms = -1;
	if (deadline != UINT64_MAX) {
		uint64_t now = now_usec();
		/* Round up so a timer never fires early for want of a millisecond. */
		uint64_t wait = deadline > now ? (deadline - now + 999) / 1000 : 0;
		timeout_ms = wait > INT32_MAX ? INT32_MAX : (int)wait;
	}

	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	l->now = now_usec();

	int ran = 0;
	l->dispatching = true;
	for (int i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr;
		if (w->state != WATCH_ACTIVE)
			continue;
		w->state = WATCH_DISPATCHING;
		w->cb(w, w->fd, evs[i].events, w->ud);
		if (w->state == WATCH_DISPATCHING)
			w->state = WATCH_ACTIVE;
		ran++;
	}
	l->dispatching = false;
	reap_zombies(l);
	ran += run_timers(l);
	return ran;
}

int loop_run(struct loop *l)
{
	l->quit = false;
	while (!l->quit) {
		int r = loop_iterate(l, UINT64_MAX);
		if (r < 0)
			return log_error_errno(r, "event loop failed");
	}
	return l->quit_code;
}
