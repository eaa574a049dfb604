/* The virt workload's driver (bench/src/virt.rs): the same handle and
 * timeout workload on any implementation of libvirt's event contract,
 * given as a table of its six functions and a "run one iteration"
 * function: linux-event's C ABI (le_*, from the Rust side) or libvirt's
 * default implementation (virEventRegisterDefaultImpl, virEventAdd... and
 * virEventRunDefaultImpl), when libvirt was found at build time.
 *
 * - ready: `pairs` handles on always-writable sockets whose callbacks only
 *   count, and `timeouts` timeouts of 0 ms: the loops' own cost per callback.
 * - chain: `pairs` socket pairs, a handle (READABLE) on each read end,
 *   `tokens` bytes in flight; each handle callback reads its byte, writes
 *   one to the next pair and updates its own handle (as libvirt's RPC code
 *   does on every step); plus `timeouts` timeouts of 0 ms that fire once
 *   per iteration. Counts every callback until `dispatches` handle
 *   callbacks ran.
 * - latency: the loop thread blocks in its iteration; a second thread
 *   (pinned to the other core) enables a disabled timeout
 *   (updateTimeout(0)) and the time until its callback runs is recorded;
 *   the callback disables it again. The second thread waits for the
 *   callback, lets the loop go back to sleep (a 200 us pause: a benchmark
 *   pacing, not a synchronisation), and repeats.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#else
typedef void (*virEventHandleCallback)(int watch, int fd, int events, void *opaque);
typedef void (*virEventTimeoutCallback)(int timer, void *opaque);
typedef void (*virFreeCallback)(void *opaque);
#endif

struct virt_impl {
    int (*add_handle)(int fd, int event, virEventHandleCallback cb, void *opaque, virFreeCallback ff);
    void (*update_handle)(int watch, int event);
    int (*remove_handle)(int watch);
    int (*add_timeout)(int timeout, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff);
    void (*update_timeout)(int timer, int timeout);
    int (*remove_timeout)(int timer);
    int (*run_once)(void);
};

/* libvirt's default implementation, registered once; -1 without libvirt. */
int virt_bench_libvirt_impl(struct virt_impl *out) {
#ifdef HAVE_LIBVIRT
    static int registered;
    if (!registered) {
        if (virEventRegisterDefaultImpl() != 0)
            return -1;
        registered = 1;
    }
    out->add_handle = virEventAddHandle;
    out->update_handle = virEventUpdateHandle;
    out->remove_handle = virEventRemoveHandle;
    out->add_timeout = virEventAddTimeout;
    out->update_timeout = virEventUpdateTimeout;
    out->remove_timeout = virEventRemoveTimeout;
    out->run_once = virEventRunDefaultImpl;
    return 0;
#else
    (void)out;
    return -1;
#endif
}

/* libvirt's version as major*1000000 + minor*1000 + micro, 0 without it. */
unsigned long virt_bench_libvirt_version(void) {
#ifdef HAVE_LIBVIRT
    unsigned long v = 0;
    if (virGetVersion(&v, NULL, NULL) != 0)
        return 0;
    return v;
#else
    return 0;
#endif
}

/* ---- dispatch ---- */

struct dispatch_state {
    const struct virt_impl *impl;
    const int *rfd;
    const int *wfd;
    int pairs;
    int64_t handle_calls;
    int64_t timeout_calls;
    int failed;
};

struct dispatch_handle {
    struct dispatch_state *st;
    int index;
};

static void dispatch_on_handle(int watch, int fd, int events, void *opaque) {
    struct dispatch_handle *h = opaque;
    struct dispatch_state *st = h->st;
    (void)events;
    char c;
    if (read(fd, &c, 1) != 1) {
        st->failed = 1;
        return;
    }
    st->handle_calls++;
    int next = (h->index + 1) % st->pairs;
    if (write(st->wfd[next], &c, 1) != 1)
        st->failed = 1;
    st->impl->update_handle(watch, 1);
}

/* Mode "ready": the handle's fd is always writable; the callback only counts. */
static void dispatch_on_ready(int watch, int fd, int events, void *opaque) {
    struct dispatch_handle *h = opaque;
    (void)watch;
    (void)fd;
    (void)events;
    h->st->handle_calls++;
}

static void dispatch_on_timeout(int timer, void *opaque) {
    struct dispatch_state *st = opaque;
    (void)timer;
    st->timeout_calls++;
}

struct virt_dispatch_result {
    struct bench_span span;
    int64_t handle_calls;
    int64_t timeout_calls;
    int64_t iterations;
};

/* tokens > 0: the chain; tokens == 0: every handle watches its pair's
 * always-writable end and its callback only counts ("ready"). */
int virt_bench_dispatch(const struct virt_impl *impl, const int *rfd, const int *wfd, int pairs, int tokens,
                        int timeouts, int64_t dispatches, struct virt_dispatch_result *out) {
    struct dispatch_state st = {impl, rfd, wfd, pairs, 0, 0, 0};
    struct dispatch_handle *hs = calloc((size_t)pairs, sizeof *hs);
    int *watches = calloc((size_t)pairs, sizeof *watches);
    int *timers = calloc((size_t)(timeouts > 0 ? timeouts : 1), sizeof *timers);
    int rc = -1;
    if (!hs || !watches || !timers)
        goto out;
    for (int i = 0; i < pairs; i++) {
        hs[i].st = &st;
        hs[i].index = i;
        if (tokens > 0)
            watches[i] = impl->add_handle(rfd[i], 1, dispatch_on_handle, &hs[i], NULL);
        else
            watches[i] = impl->add_handle(wfd[i], 2, dispatch_on_ready, &hs[i], NULL);
        if (watches[i] < 0)
            goto out;
    }
    for (int i = 0; i < timeouts; i++) {
        timers[i] = impl->add_timeout(0, dispatch_on_timeout, &st, NULL);
        if (timers[i] < 0)
            goto out;
    }
    for (int i = 0; i < tokens; i++) {
        char c = 'x';
        if (write(wfd[(int64_t)i * pairs / tokens], &c, 1) != 1)
            goto out;
    }
    /* Warm up: one iteration, then measure. */
    if (impl->run_once() < 0)
        goto out;
    int64_t start_handles = st.handle_calls, start_timeouts = st.timeout_calls, iterations = 0;
    struct bench_mark m = bench_mark();
    while (st.handle_calls - start_handles < dispatches && !st.failed) {
        if (impl->run_once() < 0)
            goto out;
        iterations++;
    }
    out->span = bench_since(m);
    out->handle_calls = st.handle_calls - start_handles;
    out->timeout_calls = st.timeout_calls - start_timeouts;
    out->iterations = iterations;
    rc = st.failed ? -1 : 0;
out:
    for (int i = 0; i < pairs && watches; i++)
        if (watches[i] > 0)
            impl->remove_handle(watches[i]);
    for (int i = 0; i < timeouts && timers; i++)
        if (timers[i] > 0)
            impl->remove_timeout(timers[i]);
    /* Drain the tokens, and let the removals take effect. */
    for (int i = 0; i < pairs; i++) {
        char buf[64];
        while (read(rfd[i], buf, sizeof buf) > 0)
            ;
    }
    free(hs);
    free(watches);
    free(timers);
    return rc;
}

/* ---- latency ---- */

struct latency_state {
    const struct virt_impl *impl;
    int timer;
    int samples;
    uint64_t *ns;
    _Atomic uint64_t sent;
    atomic_int taken;
    sem_t fired;
    int cpu_other;
    atomic_int done;
};

static void latency_on_timeout(int timer, void *opaque) {
    struct latency_state *st = opaque;
    uint64_t now = bench_ns(CLOCK_MONOTONIC);
    int i = atomic_load(&st->taken);
    if (i < st->samples)
        st->ns[i] = now - atomic_load(&st->sent);
    atomic_store(&st->taken, i + 1);
    st->impl->update_timeout(timer, -1);
    sem_post(&st->fired);
}

static void pin_self(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *latency_other(void *arg) {
    struct latency_state *st = arg;
    pin_self(st->cpu_other);
    for (int i = 0; i < st->samples; i++) {
        uint64_t pause_until = bench_ns(CLOCK_MONOTONIC) + 200000;
        while (bench_ns(CLOCK_MONOTONIC) < pause_until)
            ;
        atomic_store(&st->sent, bench_ns(CLOCK_MONOTONIC));
        st->impl->update_timeout(st->timer, 0);
        while (sem_wait(&st->fired) != 0)
            ;
    }
    atomic_store(&st->done, 1);
    /* One more wake-up, so that the loop thread sees `done`. */
    st->impl->update_timeout(st->timer, 0);
    return NULL;
}

/* Fills ns[0..samples): update-to-dispatch latencies in nanoseconds. */
int virt_bench_latency(const struct virt_impl *impl, int cpu_loop, int cpu_other, int samples, uint64_t *ns) {
    struct latency_state st;
    memset(&st, 0, sizeof st);
    st.impl = impl;
    st.samples = samples;
    st.ns = ns;
    st.cpu_other = cpu_other;
    sem_init(&st.fired, 0, 0);
    pin_self(cpu_loop);
    st.timer = impl->add_timeout(-1, latency_on_timeout, &st, NULL);
    if (st.timer < 0)
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, latency_other, &st) != 0)
        return -1;
    int rc = 0;
    while (!atomic_load(&st.done)) {
        if (impl->run_once() < 0) {
            rc = -1;
            break;
        }
    }
    pthread_join(t, NULL);
    impl->remove_timeout(st.timer);
    sem_destroy(&st.fired);
    return rc == 0 && atomic_load(&st.taken) >= samples ? 0 : -1;
}

/* ---- the floor: a bare eventfd wake-up with the same pacing ---- */

#include <sys/epoll.h>
#include <sys/eventfd.h>

struct floor_state {
    int efd;
    int samples;
    int cpu_other;
    _Atomic uint64_t sent;
    sem_t fired;
};

static void *floor_other(void *arg) {
    struct floor_state *st = arg;
    pin_self(st->cpu_other);
    for (int i = 0; i <= st->samples; i++) {
        uint64_t pause_until = bench_ns(CLOCK_MONOTONIC) + 200000;
        while (bench_ns(CLOCK_MONOTONIC) < pause_until)
            ;
        atomic_store(&st->sent, bench_ns(CLOCK_MONOTONIC));
        uint64_t one = 1;
        if (write(st->efd, &one, sizeof one) != sizeof one)
            return NULL;
        if (i < st->samples)
            while (sem_wait(&st->fired) != 0)
                ;
    }
    return NULL;
}

/* What the hardware and kernel take: a thread blocked in epoll_wait on an
 * eventfd, written by the other thread; the same pacing as the latency
 * runs. Fills ns[0..samples). */
int virt_bench_latency_floor(int cpu_loop, int cpu_other, int samples, uint64_t *ns) {
    struct floor_state st;
    memset(&st, 0, sizeof st);
    st.samples = samples;
    st.cpu_other = cpu_other;
    st.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (st.efd < 0 || ep < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, st.efd, &ev) != 0)
        return -1;
    sem_init(&st.fired, 0, 0);
    pin_self(cpu_loop);
    pthread_t t;
    if (pthread_create(&t, NULL, floor_other, &st) != 0)
        return -1;
    for (int i = 0; i <= samples; i++) {
        struct epoll_event out;
        while (epoll_wait(ep, &out, 1, -1) != 1)
            ;
        uint64_t now = bench_ns(CLOCK_MONOTONIC), count;
        if (read(st.efd, &count, sizeof count) != sizeof count)
            break;
        if (i < samples) {
            ns[i] = now - atomic_load(&st.sent);
            sem_post(&st.fired);
        }
    }
    pthread_join(t, NULL);
    close(ep);
    close(st.efd);
    sem_destroy(&st.fired);
    return 0;
}
