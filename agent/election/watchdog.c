/* The watchdog device; see watchdog.h. */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/watchdog.h>

#include "log.h"
#include "util.h"

struct watchdog {
	int fd;
	bool chardev;
	uint64_t timeout_us;
	char path[256];
};

static int set_timeout(struct watchdog *w, uint64_t timeout_us)
{
	int secs = (int)((timeout_us + USEC_PER_SEC - 1) / USEC_PER_SEC);

	if (secs < 1)
		secs = 1;
	if (ioctl(w->fd, WDIOC_SETTIMEOUT, &secs) < 0) {
		int r = -errno;

		/* a device with a fixed timeout: use the one it has */
		if (ioctl(w->fd, WDIOC_GETTIMEOUT, &secs) < 0)
			return r;
	}
	w->timeout_us = (uint64_t)secs * USEC_PER_SEC;
	return 0;
}

int watchdog_open(const char *path, uint64_t timeout_us, struct watchdog **ret)
{
	struct watchdog *w = calloc(1, sizeof(*w));
	struct stat st;
	int r;

	if (!w)
		return -ENOMEM;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->timeout_us = timeout_us;
	w->fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	if (w->fd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	w->chardev = fstat(w->fd, &st) == 0 && S_ISCHR(st.st_mode);
	if (!w->chardev)
		(void)lseek(w->fd, 0, SEEK_END); /* a file stand-in: keep-alives append */
	if (w->chardev) {
		r = set_timeout(w, timeout_us);
		if (r < 0) {
			watchdog_close(w, true);
			return r;
		}
	}
	*ret = w;
	return 0;
}

uint64_t watchdog_timeout(const struct watchdog *w)
{
	return w->timeout_us;
}

const char *watchdog_path(const struct watchdog *w)
{
	return w->path;
}

int watchdog_pet(struct watchdog *w)
{
	if (w->chardev) {
		int dummy = 0;

		return ioctl(w->fd, WDIOC_KEEPALIVE, &dummy) < 0 ? -errno : 0;
	}
	return write(w->fd, ".", 1) == 1 ? 0 : -errno;
}

struct watchdog *watchdog_close(struct watchdog *w, bool clean)
{
	if (!w)
		return NULL;
	if (clean && write(w->fd, "V", 1) != 1)
		log_warn("watchdog %s: the magic close failed (%s): it stays armed", w->path,
			 strerror(errno));
	if (!clean)
		log_warn("watchdog %s: left armed, the node resets unless another process pets it",
			 w->path);
	close(w->fd);
	free(w);
	return NULL;
}
