/* A hand-written epoll loop: the floor any epoll-based loop pays. No
 * tables, no generations, no timer heap: the epoll data is the index, the
 * "callback" is inlined. Batches of 64 events, like linux-event's. */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
    int64_t writes = bench_thread_writes();
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
    p->r->sender_writes = bench_thread_writes() - writes;
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

/* ---- workload 4: signals ---------------------------------------------- */

/* The signal blocked in this thread and read through a signalfd in the
 * epoll set; one read of up to 16 records per readiness. */
int64_t braw_signals(int64_t n, struct bench_span *out) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, BENCH_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (sfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) != 0)
        return -1;
    pid_t pid = getpid(), tid = gettid();
    int64_t count = 0;
    struct epoll_event evs[BATCH];
    struct signalfd_siginfo si[16];
    struct bench_mark m = bench_mark();
    if (tgkill(pid, tid, BENCH_SIGNAL) != 0)
        abort();
    while (count < n) {
        int k = epoll_wait(ep, evs, BATCH, -1);
        for (int j = 0; j < k; j++) {
            ssize_t r = read(sfd, si, sizeof si);
            for (ssize_t x = 0; x < r / (ssize_t)sizeof si[0]; x++)
                if (++count < n && tgkill(pid, tid, BENCH_SIGNAL) != 0)
                    abort();
        }
    }
    *out = bench_since(m);
    close(ep);
    close(sfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return count;
}

/* ---- workload 5: child exit ------------------------------------------- */

/* A pidfd per child in the epoll set, the child's index in the epoll data;
 * on readiness waitid(P_PIDFD) and close (closing drops it from the set). */
struct kids {
    const struct child_args *a;
    int ep;
    int *pfd;
    int64_t done, target, good;
};

static int kids_run(void *ctx) {
    struct kids *k = ctx;
    struct epoll_event evs[BATCH];
    while (k->done < k->target) {
        int m = epoll_wait(k->ep, evs, BATCH, -1);
        if (m < 0 && errno != EINTR)
            return -1;
        for (int j = 0; j < m; j++) {
            int i = (int)evs[j].data.u64;
            siginfo_t si;
            si.si_pid = 0;
            if (waitid(P_PIDFD, (id_t)k->pfd[i], &si, WEXITED | WNOHANG) != 0 || si.si_pid == 0)
                continue;
            close(k->pfd[i]);
            k->pfd[i] = -1;
            k->done++;
            if (si.si_code == CLD_EXITED && si.si_status == 0)
                k->good++;
        }
    }
    return 0;
}

int braw_children(const struct child_args *a, struct child_result *out) {
    struct kids k = {a, epoll_create1(EPOLL_CLOEXEC), calloc((size_t)a->n, sizeof(int)), 0, 0, 0};
    if (k.ep < 0 || !k.pfd)
        return -1;
    int rc = 0;
    for (int i = 0; i < a->n; i++) {
        k.pfd[i] = rc == 0 ? (int)syscall(SYS_pidfd_open, a->pid[i], 0) : -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (k.pfd[i] < 0 || epoll_ctl(k.ep, EPOLL_CTL_ADD, k.pfd[i], &ev) != 0)
            rc = -1;
    }
    if (rc == 0)
        rc = bench_release(a, out, &k.target, kids_run, &k);
    for (int i = 0; i < a->n; i++)
        if (k.pfd[i] >= 0)
            close(k.pfd[i]);
    free(k.pfd);
    close(k.ep);
    out->good = k.good;
    return rc;
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
