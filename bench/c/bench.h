/* Shared by the C drivers (libev, libevent, raw epoll): the ABI the Rust
 * driver calls, and the clock every driver measures with.
 *
 * Every driver measures its own timed section with bench_mark() (wall:
 * CLOCK_MONOTONIC; CPU: CLOCK_THREAD_CPUTIME_ID, user + sys of the calling
 * thread), exactly as the Rust side does for linux-event and mio. */
#ifndef LINUX_EVENT_BENCH_H
#define LINUX_EVENT_BENCH_H

#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <time.h>

/* A wall and a thread-CPU reading, in nanoseconds. */
struct bench_mark {
    uint64_t wall;
    uint64_t cpu;
};

/* A measured section: elapsed wall and CPU nanoseconds. */
struct bench_span {
    uint64_t wall;
    uint64_t cpu;
};

static inline uint64_t bench_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline struct bench_mark bench_mark(void) {
    struct bench_mark m;
    m.wall = bench_ns(CLOCK_MONOTONIC);
    m.cpu = bench_ns(CLOCK_THREAD_CPUTIME_ID);
    return m;
}

static inline struct bench_span bench_since(struct bench_mark m) {
    struct bench_mark now = bench_mark();
    struct bench_span s = {now.wall - m.wall, now.cpu - m.cpu};
    return s;
}

/* Workload 1, chain propagation. rfd[i] is watched for reading; wfd[i] is
 * its peer (writing there makes rfd[i] readable); all non-blocking AF_UNIX
 * stream sockets. The `active` fds spaced n/active apart get one byte;
 * every read callback reads one byte from rfd[i] and, while fewer than
 * `writes` writes were made, writes one to wfd[i+1] (mod n). Ends when
 * active + writes bytes were read. Returns the bytes read (active + writes
 * on success), -1 on error. `out` is the propagation alone (set-up
 * excluded). */
struct chain_args {
    const int *rfd;
    const int *wfd;
    int n;
    int active;
    int64_t writes;
};

/* Workload 2, timers. n timers; offsets in nanoseconds. Every
 * implementation schedules relative to its cached loop time. The insert,
 * re-arm and cancel phases (and the arming of the fire phase) run inside a
 * callback of the loop, or from the caller ("main", outside any callback)
 * when from_main is set. With keep set, the loop and its timers are kept
 * for the next call with the same n (one loop reused across repetitions;
 * a call without keep frees it); otherwise each call makes and frees its own. */
struct timer_args {
    int n;
    const uint64_t *far;      /* insert: now + far[i] (about an hour away) */
    const uint64_t *rearm;    /* re-arm timer order[i] to now + rearm[i] */
    const uint32_t *order_rearm;
    const uint32_t *order_cancel;
    const uint64_t *near;     /* fire: now + near[i] (under a millisecond) */
    int from_main;
    int keep;
};

struct timer_result {
    struct bench_span insert;
    struct bench_span rearm;
    struct bench_span cancel;
    struct bench_span fire;
    int64_t fired;
};

/* Workload 3, ping-pong: `rounds` round trips between two threads pinned
 * to cpu_a and cpu_b (-1: not pinned). Wall of the whole exchange; CPU of
 * both threads added. */
struct pingpong_result {
    struct bench_span span;
    int64_t rounds;
};

/* Workload 3, pummel: a sender thread (pinned to cpu_sender) signals the
 * loop thread (cpu_loop) as fast as it can for duration_ns. sender_writes:
 * the write system calls the sender made in its window (the wake-ups it
 * paid for), from bench_thread_writes. */
struct pummel_result {
    int64_t sends;
    int64_t callbacks;
    struct bench_span sender;
    struct bench_span loop;
    int64_t sender_writes;
};

/* The write system calls the calling thread has made ("syscw" of
 * /proc/thread-self/io; reading it makes none), -1 if unknown. */
int64_t bench_thread_writes(void);

/* Workload 4, signals: the signal every driver sends itself. */
#define BENCH_SIGNAL 10 /* SIGUSR1 */

/* Workload 5, child exit. n children, each blocked reading a pipe of its
 * own; writing a newline to release[i] makes child i exit (status 0).
 * Every driver watches all n, then releases children 0..one-1 one at a
 * time, each timed from its release to its callback (`one`, summed), then
 * the rest at once, timed from the first release to the last callback
 * (`rest`). Each callback's status is checked: `good` counts the children
 * reaped with exit status 0, n on success. The driver never closes the
 * release fds (the caller owns them). */
struct child_args {
    int n;
    const int *pid;
    const int *release;
    int one;
};

struct child_result {
    struct bench_span one;
    struct bench_span rest;
    int64_t good;
};

/* Releases and times workload 5's children (common.c): for each timed
 * step sets *target to the number of callbacks that ends it and calls
 * run(ctx), which runs the loop until that many callbacks happened (0) or
 * fails (-1). Returns 0, or -1 when a release or a run failed. */
int bench_release(const struct child_args *a, struct child_result *out, int64_t *target, int (*run)(void *),
                  void *ctx);

/* The same entry points in each driver (raw epoll has no timers). Each
 * returns a negative value on error.
 *
 * *_signals: workload 4. n BENCH_SIGNALs sent with tgkill to the calling
 * thread, the first before the loop runs, each next one from the callback
 * of the previous; `out` from the first send to the last callback.
 * Returns the signals the callbacks counted (n on success). */
int64_t bev_chain(const struct chain_args *a, struct bench_span *out);
int bev_timers(const struct timer_args *a, struct timer_result *out);
int bev_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out);
int bev_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out);
int bev_idle(int64_t passes);
int64_t bev_signals(int64_t n, struct bench_span *out);
int bev_children(const struct child_args *a, struct child_result *out);

int64_t bevent_chain(const struct chain_args *a, struct bench_span *out);
int bevent_timers(const struct timer_args *a, struct timer_result *out);
int bevent_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out);
int bevent_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out);
int bevent_idle(int64_t passes);
int64_t bevent_signals(int64_t n, struct bench_span *out);
int bevent_children(const struct child_args *a, struct child_result *out);

int64_t braw_chain(const struct chain_args *a, struct bench_span *out);
int braw_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out);
int braw_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out);
int braw_idle(int64_t passes);
int64_t braw_signals(int64_t n, struct bench_span *out);
int braw_children(const struct child_args *a, struct child_result *out);

/* Pins the calling thread to `cpu` (ignored when negative). */
void bench_pin(int cpu);

/* Unblocks `signo` in the calling thread; the mask before goes to *old.
 * The bench keeps SIGUSR1 blocked in every thread (main() blocks it before
 * starting any): the drivers whose library catches signals with a handler
 * unblock it for their run, as it is in a program that never blocked it,
 * and restore the mask after. */
void bench_unblock(int signo, sigset_t *old);

#endif
