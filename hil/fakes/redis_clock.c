/* A clock for a test's redis-server (hil/redisproc.py, start_redis(clock=...)): the wall clock Redis
 * reads (gettimeofday, clock_gettime(CLOCK_REALTIME), time) is taken from the file named by
 * REDIS_CLOCK_FILE, read again at every call: "=<ms>" a frozen time (Unix ms), "+<ms>"/"-<ms>" the real
 * time moved by that much, anything else (or no file) the real time. Every other clock (CLOCK_MONOTONIC,
 * which Redis's event loop runs on; CLOCK_BOOTTIME) is the kernel's. Loaded with LD_PRELOAD; raw system
 * calls only, so nothing here allocates or recurses into a hooked call (libfaketime deadlocks in Redis's
 * jemalloc start-up). Tests only: what the store's scripts see as Redis's TIME, and what Redis expires
 * keys by, move exactly as the test says, with no waiting. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int clock_fd = -1;

__attribute__((constructor)) static void open_clock(void) {
    const char *path = getenv("REDIS_CLOCK_FILE");
    if (path) clock_fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
}

static long long real_us(void) {
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long now_us(void) {
    char buf[32];
    long n = clock_fd < 0 ? -1 : (long)syscall(SYS_pread64, clock_fd, buf, sizeof buf - 1, 0);
    if (n < 2) return real_us();
    long long v = 0;
    for (long i = 1; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    if (buf[0] == '=') return v * 1000;
    if (buf[0] == '+') return real_us() + v * 1000;
    if (buf[0] == '-') return real_us() - v * 1000;
    return real_us();
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    long long us = now_us();
    struct timeval *out = tv;
    if (out) { out->tv_sec = us / 1000000; out->tv_usec = us % 1000000; }
    return 0;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE) return (int)syscall(SYS_clock_gettime, id, ts);
    long long us = now_us();
    ts->tv_sec = us / 1000000;
    ts->tv_nsec = (us % 1000000) * 1000;
    return 0;
}

time_t time(time_t *t) {
    time_t s = (time_t)(now_us() / 1000000);
    if (t) *t = s;
    return s;
}
