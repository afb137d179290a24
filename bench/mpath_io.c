/* The guest side of bench/mpath.sh: one workload for /dev/nbd0 (compartd) and for
 * /dev/mapper/<map> (the kernel's initiator with dm-multipath), built static so that it
 * runs in both images. O_DIRECT throughout, QD threads keep QD requests in flight.
 *
 *   mpath_io seq DEV write|read MIB QD       1 MiB requests over the first MIB MiB
 *   mpath_io rand DEV read|write OPS MIB QD  4 KiB requests at random aligned offsets
 *   mpath_io stall DEV SECONDS STOPFILE      4 KiB write + read-verify, one at a time,
 *                                            until STOPFILE exists or SECONDS pass;
 *                                            prints the longest gap between completions
 *
 * Each mode prints one line "mpath_io <mode> key=value ..."; exit 1 on any I/O error. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_QD 64

static const char *dev;
static int fd;
static int writing;
static uint64_t bsize, nreq, span_blocks;
static atomic_uint_fast64_t next_req;
static atomic_uint_fast64_t errors;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xbuf(size_t n, int fill)
{
	void *p;

	if (posix_memalign(&p, 4096, n) != 0) {
		fprintf(stderr, "mpath_io: out of memory\n");
		exit(2);
	}
	memset(p, fill, n);
	return p;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One worker: takes request numbers until nreq are issued. Sequential requests are
 * consecutive blocks; random ones (span_blocks > 0) land anywhere in the span. */
static void *worker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	char *buf = xbuf(bsize, 0x5a);
	uint64_t i;

	while ((i = atomic_fetch_add(&next_req, 1)) < nreq) {
		uint64_t blk = span_blocks ? xorshift(&seed) % span_blocks : i;
		off_t off = (off_t)(blk * bsize);
		ssize_t n = writing ? pwrite(fd, buf, bsize, off) : pread(fd, buf, bsize, off);

		if (n != (ssize_t)bsize) {
			if (atomic_fetch_add(&errors, 1) < 3)
				fprintf(stderr, "mpath_io: %s at %llu: %s\n",
					writing ? "write" : "read", (unsigned long long)off,
					n < 0 ? strerror(errno) : "short");
		}
	}
	free(buf);
	return NULL;
}

static int run_workers(int qd)
{
	pthread_t t[MAX_QD];

	for (int i = 0; i < qd; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
			fprintf(stderr, "mpath_io: cannot start a thread\n");
			return -1;
		}
	for (int i = 0; i < qd; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static int open_dev(int flags)
{
	fd = open(dev, flags | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "mpath_io: %s: %s\n", dev, strerror(errno));
		return -1;
	}
	return 0;
}

static int parse_dir(const char *s)
{
	if (strcmp(s, "write") == 0)
		return 1;
	if (strcmp(s, "read") == 0)
		return 0;
	fprintf(stderr, "mpath_io: expected read or write, got '%s'\n", s);
	exit(2);
}

static int throughput(const char *mode, int qd)
{
	double t0, t;

	if (qd < 1 || qd > MAX_QD) {
		fprintf(stderr, "mpath_io: queue depth %d not in 1..%d\n", qd, MAX_QD);
		return 2;
	}
	if (open_dev(writing ? O_WRONLY : O_RDONLY) < 0)
		return 1;
	t0 = now_s();
	if (run_workers(qd) < 0)
		return 1;
	if (writing && fsync(fd) < 0)
		atomic_fetch_add(&errors, 1);
	t = now_s() - t0;
	printf("mpath_io %s dir=%s bytes=%llu secs=%.3f mbs=%.2f iops=%.0f qd=%d errors=%llu\n",
	       mode, writing ? "write" : "read", (unsigned long long)(nreq * bsize), t,
	       nreq * bsize / 1e6 / t, nreq / t, qd, (unsigned long long)errors);
	return errors ? 1 : 0;
}

/* 4 KiB blocks 0..255 in turn: write a pattern naming the round, read it back, compare. */
static int stall(double seconds, const char *stopfile)
{
	char *w = xbuf(4096, 0), *r = xbuf(4096, 0);
	double start, last, gap_max = 0, gap_at = 0;
	uint64_t ops = 0, errs = 0, mismatches = 0;

	if (open_dev(O_RDWR) < 0)
		return 1;
	start = last = now_s();
	while (now_s() - start < seconds && access(stopfile, F_OK) != 0) {
		off_t off = (off_t)(ops % 256) * 4096;
		double t;

		snprintf(w, 4096, "mpath_io round %llu", (unsigned long long)ops);
		if (pwrite(fd, w, 4096, off) != 4096 || pread(fd, r, 4096, off) != 4096) {
			if (errs++ < 3)
				fprintf(stderr, "mpath_io: I/O at %llu: %s\n",
					(unsigned long long)off, strerror(errno));
		} else if (memcmp(w, r, 4096) != 0)
			mismatches++;
		ops++;
		t = now_s();
		if (t - last > gap_max) {
			gap_max = t - last;
			gap_at = last - start;
		}
		last = t;
	}
	printf("mpath_io stall ops=%llu secs=%.1f max_gap=%.3f gap_at=%.1f errors=%llu "
	       "mismatches=%llu\n",
	       (unsigned long long)ops, last - start, gap_max, gap_at, (unsigned long long)errs,
	       (unsigned long long)mismatches);
	return errs || mismatches ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && strcmp(argv[1], "rand") == 0) {
		dev = argv[2];
		writing = parse_dir(argv[3]);
		bsize = 4096;
		nreq = strtoull(argv[4], NULL, 10);
		span_blocks = strtoull(argv[5], NULL, 10) * 256;
		if (span_blocks == 0) {
			fprintf(stderr, "mpath_io: the random span must be at least 1 MiB\n");
			return 2;
		}
		return throughput("rand", atoi(argv[6]));
	}
	if (argc >= 6 && strcmp(argv[1], "seq") == 0) {
		dev = argv[2];
		writing = parse_dir(argv[3]);
		bsize = 1 << 20;
		nreq = strtoull(argv[4], NULL, 10);
		return throughput("seq", atoi(argv[5]));
	}
	if (argc >= 5 && strcmp(argv[1], "stall") == 0) {
		dev = argv[2];
		return stall(atof(argv[3]), argv[4]);
	}
	fprintf(stderr,
		"usage: mpath_io seq DEV write|read MIB QD | rand DEV read|write OPS MIB QD |"
		" stall DEV SECONDS STOPFILE\n");
	return 2;
}
