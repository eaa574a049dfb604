/* A hand-written epoll loop: the floor any epoll-based loop pays. No
 * tables, no generations, no timer heap: the epoll data is the index, the
 * "callback" is inlined. Batches of 64 events, like linux-event's. */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BATCH 64

/* ---- workload 1: chain ------------------------------------------------ */

int64_t braw_chain(const struct chain_args *a, struct bench_span *out) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    for (int i = 0; i < a->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, a->rfd[i], &ev) != 0)
            return -1;
    }
    int64_t fired = 0, writes = 0, total = a->active + a->writes;
    int space = a->n / a->active;
    struct epoll_event evs[BATCH];
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->active; i++)
        if (write(a->wfd[i * space], "e", 1) != 1)
            abort();
    while (fired < total) {
        int k = epoll_wait(ep, evs, BATCH, -1);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u64;
            char ch;
            if (read(a->rfd[i], &ch, 1) != 1)
                continue;
            fired++;
            if (writes < a->writes) {
                int next = i + 1 == a->n ? 0 : i + 1;
                writes++;
                if (write(a->wfd[next], &ch, 1) != 1)
                    abort();
            }
        }
    }
    *out = bench_since(m);
    close(ep);
    return fired;
}

/* ---- workload 3: wake-ups across threads ------------------------------- */

/* One side: an epoll set holding the side's eventfd. */
struct side {
    int ep, efd;
};

static int side_open(struct side *s) {
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    return s->ep >= 0 && s->efd >= 0 && epoll_ctl(s->ep, EPOLL_CTL_ADD, s->efd, &ev) == 0 ? 0 : -1;
}

static void side_close(struct side *s) {
    close(s->efd);
    close(s->ep);
}

/* Blocks until the side's eventfd rang; returns the count it held. */
static uint64_t side_wait(struct side *s) {
    struct epoll_event evs[BATCH];
    for (;;) {
        int k = epoll_wait(s->ep, evs, BATCH, -1);
        if (k > 0) {
            uint64_t v = 0;
            if (read(s->efd, &v, sizeof v) == sizeof v)
                return v;
        }
    }
}

static void signal_fd(int efd) {
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) != sizeof one)
        abort();
}

struct pp_side {
    struct side s;
    struct pp_side *peer;
    struct pp *pp;
    int cpu, leader;
    struct bench_span span;
};

struct pp {
    struct pp_side a, b;
    pthread_barrier_t ready;
    atomic_int done;
    int64_t rounds, count;
};

static void *pp_thread(void *arg) {
    struct pp_side *me = arg;
    struct pp *pp = me->pp;
    bench_pin(me->cpu);
    pthread_barrier_wait(&pp->ready);
    struct bench_mark m = bench_mark();
    if (me->leader)
        signal_fd(me->peer->s.efd);
    for (;;) {
        side_wait(&me->s);
        if (me->leader) {
            if (++pp->count == pp->rounds) {
                atomic_store(&pp->done, 1);
                signal_fd(me->peer->s.efd);
                break;
            }
        } else if (atomic_load(&pp->done)) {
            break;
        }
        signal_fd(me->peer->s.efd);
    }
    me->span = bench_since(m);
    return NULL;
}

int braw_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out) {
    struct pp pp = {0};
    pp.rounds = rounds;
    pp.a = (struct pp_side){.peer = &pp.b, .pp = &pp, .cpu = cpu_a, .leader = 1};
    pp.b = (struct pp_side){.peer = &pp.a, .pp = &pp, .cpu = cpu_b, .leader = 0};
    if (side_open(&pp.a.s) != 0 || side_open(&pp.b.s) != 0)
        return -1;
    pthread_barrier_init(&pp.ready, NULL, 2);
    pthread_t ta, tb;
    pthread_create(&tb, NULL, pp_thread, &pp.b);
    pthread_create(&ta, NULL, pp_thread, &pp.a);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&pp.ready);
    side_close(&pp.a.s);
    side_close(&pp.b.s);
    out->span.wall = pp.a.span.wall;
    out->span.cpu = pp.a.span.cpu + pp.b.span.cpu;
    out->rounds = pp.count;
    return 0;
}

struct pummel {
    struct side s;
    pthread_barrier_t ready;
    atomic_int done;
    uint64_t duration;
    int cpu_sender, cpu_loop;
    struct pummel_result *r;
};

static void *pummel_sender(void *arg) {
    struct pummel *p = arg;
    bench_pin(p->cpu_sender);
    pthread_barrier_wait(&p->ready);
    struct bench_mark m = bench_mark();
    int64_t sends = 0;
    for (;;) {
        for (int i = 0; i < 256; i++)
            signal_fd(p->s.efd);
        sends += 256;
        if (bench_ns(CLOCK_MONOTONIC) - m.wall >= p->duration)
            break;
    }
    p->r->sender = bench_since(m);
    atomic_store(&p->done, 1);
    signal_fd(p->s.efd);
    p->r->sends = sends + 1;
    return NULL;
}

static void *pummel_loop(void *arg) {
    struct pummel *p = arg;
    bench_pin(p->cpu_loop);
    pthread_barrier_wait(&p->ready);
    struct bench_mark m = bench_mark();
    for (;;) {
        side_wait(&p->s);
        p->r->callbacks++;
        if (atomic_load(&p->done))
            break;
    }
    p->r->loop = bench_since(m);
    return NULL;
}

int braw_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out) {
    struct pummel p = {0};
    p.duration = duration_ns;
    p.cpu_sender = cpu_sender;
    p.cpu_loop = cpu_loop;
    p.r = out;
    out->callbacks = 0;
    if (side_open(&p.s) != 0)
        return -1;
    pthread_barrier_init(&p.ready, NULL, 2);
    pthread_t tl, ts;
    pthread_create(&tl, NULL, pummel_loop, &p);
    pthread_create(&ts, NULL, pummel_sender, &p);
    pthread_join(ts, NULL);
    pthread_join(tl, NULL);
    pthread_barrier_destroy(&p.ready);
    side_close(&p.s);
    return 0;
}

/* ---- workload 6: idle passes (counted with strace) --------------------- */

int braw_idle(int64_t passes) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int fds[2];
    if (ep < 0 || pipe(fds) != 0 || write(fds[1], "x", 1) != 1)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    /* One pending timer: the wait's timeout is computed from its deadline. */
    uint64_t deadline = bench_ns(CLOCK_MONOTONIC) + 3600ull * 1000000000u;
    struct epoll_event evs[BATCH];
    int64_t seen = 0;
    for (int64_t i = 0; i < passes; i++) {
        uint64_t now = bench_ns(CLOCK_MONOTONIC);
        int timeout = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        seen += epoll_wait(ep, evs, BATCH, timeout);
    }
    close(ep);
    close(fds[0]);
    close(fds[1]);
    return seen == passes ? 0 : -1;
}
