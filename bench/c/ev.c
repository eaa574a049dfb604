/* libev 4.33 driver: the workloads written the way a libev user would
 * (ev_io, ev_timer with ev_timer_again, ev_async, ev_signal, ev_child),
 * epoll backend, default flags (so ev_signal catches signals with a
 * handler and a wake-up pipe, not a signalfd: EVFLAG_SIGNALFD is opt-in). */
#include "bench.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- workload 1: chain ------------------------------------------------ */

struct chain {
    const struct chain_args *a;
    ev_io *ios;
    int64_t fired, writes, total;
};

static void chain_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    struct chain *c = ev_userdata(loop);
    char ch;
    if (read(w->fd, &ch, 1) != 1)
        return;
    c->fired++;
    if (c->writes < c->a->writes) {
        int i = (int)(w - c->ios) + 1;
        if (i == c->a->n)
            i = 0;
        c->writes++;
        if (write(c->a->wfd[i], &ch, 1) != 1)
            abort();
    }
    if (c->fired == c->total)
        ev_break(loop, EVBREAK_ALL);
}

int64_t bev_chain(const struct chain_args *a, struct bench_span *out) {
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    if (!loop)
        return -1;
    struct chain c = {a, calloc((size_t)a->n, sizeof(ev_io)), 0, 0, a->active + a->writes};
    ev_set_userdata(loop, &c);
    for (int i = 0; i < a->n; i++) {
        ev_io_init(&c.ios[i], chain_cb, a->rfd[i], EV_READ);
        ev_io_start(loop, &c.ios[i]);
    }
    int space = a->n / a->active;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->active; i++)
        if (write(a->wfd[i * space], "e", 1) != 1)
            abort();
    ev_run(loop, 0);
    *out = bench_since(m);
    for (int i = 0; i < a->n; i++)
        ev_io_stop(loop, &c.ios[i]);
    free(c.ios);
    ev_loop_destroy(loop);
    return c.fired;
}

/* ---- workload 2: timers ----------------------------------------------- */

struct timers {
    const struct timer_args *a;
    struct timer_result *r;
    struct ev_loop *loop;
    ev_timer *t;
    int n;
    int64_t fired;
};

/* The loop kept between calls (a->keep). */
static struct timers *timers_kept;

static double secs(uint64_t ns) { return (double)ns * 1e-9; }

static void far_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop, (void)w, (void)revents;
}

static void fire_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)w, (void)revents;
    struct timers *c = ev_userdata(loop);
    if (++c->fired == c->a->n)
        ev_break(loop, EVBREAK_ALL);
}

/* One function per phase (not inlined), so a profile names each. */
static __attribute__((noinline)) void bev_phase_insert(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++) {
        ev_timer_init(&c->t[i], far_cb, secs(a->far[i]), 0.);
        ev_timer_start(c->loop, &c->t[i]);
    }
    c->r->insert = bench_since(m);
}

static __attribute__((noinline)) void bev_phase_rearm(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++) {
        ev_timer *t = &c->t[a->order_rearm[i]];
        t->repeat = secs(a->rearm[i]);
        ev_timer_again(c->loop, t);
    }
    c->r->rearm = bench_since(m);
}

static __attribute__((noinline)) void bev_phase_cancel(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++)
        ev_timer_stop(c->loop, &c->t[a->order_cancel[i]]);
    c->r->cancel = bench_since(m);
}

static void timers_phases(struct timers *c) {
    bev_phase_insert(c);
    bev_phase_rearm(c);
    bev_phase_cancel(c);
    for (int i = 0; i < c->a->n; i++) {
        ev_timer_init(&c->t[i], fire_cb, secs(c->a->near[i]), 0.);
        ev_timer_start(c->loop, &c->t[i]);
    }
}

static void timers_driver(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)w, (void)revents;
    timers_phases(ev_userdata(loop));
    ev_break(loop, EVBREAK_ALL);
}

static void timers_free(struct timers *c) {
    if (!c)
        return;
    if (c->loop)
        ev_loop_destroy(c->loop);
    free(c->t);
    free(c);
}

int bev_timers(const struct timer_args *a, struct timer_result *out) {
    struct timers *c = timers_kept;
    timers_kept = NULL;
    if (c && c->n != a->n) {
        timers_free(c);
        c = NULL;
    }
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return -1;
        c->n = a->n;
        c->loop = ev_loop_new(EVBACKEND_EPOLL);
        c->t = calloc((size_t)a->n, sizeof(ev_timer));
        if (!c->loop || !c->t) {
            timers_free(c);
            return -1;
        }
        ev_set_userdata(c->loop, c);
    }
    c->a = a;
    c->r = out;
    c->fired = 0;
    if (a->from_main) {
        timers_phases(c);
    } else {
        ev_timer driver;
        ev_timer_init(&driver, timers_driver, 0., 0.);
        ev_timer_start(c->loop, &driver);
        ev_run(c->loop, 0);
    }
    usleep(2000);
    struct bench_mark m = bench_mark();
    ev_run(c->loop, 0);
    out->fire = bench_since(m);
    out->fired = c->fired;
    if (a->keep)
        timers_kept = c;
    else
        timers_free(c);
    return 0;
}

/* ---- workload 3: wake-ups across threads ------------------------------- */

struct pp_side {
    struct ev_loop *loop;
    ev_async async;
    struct pp_side *peer;
    struct pp *pp;
    int cpu;
    int leader;
    struct bench_span span;
};

struct pp {
    struct pp_side a, b;
    pthread_barrier_t ready;
    atomic_int done;
    int64_t rounds, count;
};

static void pp_cb(struct ev_loop *loop, ev_async *w, int revents) {
    (void)revents;
    struct pp_side *s = w->data;
    struct pp *pp = s->pp;
    if (s->leader) {
        if (++pp->count == pp->rounds) {
            atomic_store(&pp->done, 1);
            ev_async_send(s->peer->loop, &s->peer->async);
            ev_break(loop, EVBREAK_ALL);
            return;
        }
    } else if (atomic_load(&pp->done)) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_async_send(s->peer->loop, &s->peer->async);
}

static void *pp_thread(void *arg) {
    struct pp_side *s = arg;
    bench_pin(s->cpu);
    s->loop = ev_loop_new(EVBACKEND_EPOLL);
    ev_async_init(&s->async, pp_cb);
    s->async.data = s;
    ev_async_start(s->loop, &s->async);
    pthread_barrier_wait(&s->pp->ready);
    struct bench_mark m = bench_mark();
    if (s->leader)
        ev_async_send(s->peer->loop, &s->peer->async);
    ev_run(s->loop, 0);
    s->span = bench_since(m);
    /* Both loops stay alive until both threads are done sending. */
    pthread_barrier_wait(&s->pp->ready);
    ev_loop_destroy(s->loop);
    return NULL;
}

int bev_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out) {
    struct pp pp = {0};
    pp.rounds = rounds;
    pp.a = (struct pp_side){.peer = &pp.b, .pp = &pp, .cpu = cpu_a, .leader = 1};
    pp.b = (struct pp_side){.peer = &pp.a, .pp = &pp, .cpu = cpu_b, .leader = 0};
    pthread_barrier_init(&pp.ready, NULL, 2);
    pthread_t ta, tb;
    pthread_create(&tb, NULL, pp_thread, &pp.b);
    pthread_create(&ta, NULL, pp_thread, &pp.a);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&pp.ready);
    out->span.wall = pp.a.span.wall;
    out->span.cpu = pp.a.span.cpu + pp.b.span.cpu;
    out->rounds = pp.count;
    return 0;
}

struct pummel {
    struct ev_loop *loop;
    ev_async async;
    pthread_barrier_t ready;
    atomic_int done;
    uint64_t duration;
    int cpu_sender, cpu_loop;
    struct pummel_result *r;
};

static void pummel_cb(struct ev_loop *loop, ev_async *w, int revents) {
    (void)revents;
    struct pummel *p = w->data;
    p->r->callbacks++;
    if (atomic_load(&p->done))
        ev_break(loop, EVBREAK_ALL);
}

static void *pummel_sender(void *arg) {
    struct pummel *p = arg;
    bench_pin(p->cpu_sender);
    pthread_barrier_wait(&p->ready);
    int64_t writes = bench_thread_writes();
    struct bench_mark m = bench_mark();
    int64_t sends = 0;
    for (;;) {
        for (int i = 0; i < 256; i++)
            ev_async_send(p->loop, &p->async);
        sends += 256;
        if (bench_ns(CLOCK_MONOTONIC) - m.wall >= p->duration)
            break;
    }
    p->r->sender = bench_since(m);
    p->r->sender_writes = bench_thread_writes() - writes;
    atomic_store(&p->done, 1);
    ev_async_send(p->loop, &p->async);
    p->r->sends = sends + 1;
    pthread_barrier_wait(&p->ready);
    return NULL;
}

static void *pummel_loop(void *arg) {
    struct pummel *p = arg;
    bench_pin(p->cpu_loop);
    p->loop = ev_loop_new(EVBACKEND_EPOLL);
    ev_async_init(&p->async, pummel_cb);
    p->async.data = p;
    ev_async_start(p->loop, &p->async);
    pthread_barrier_wait(&p->ready);
    struct bench_mark m = bench_mark();
    ev_run(p->loop, 0);
    p->r->loop = bench_since(m);
    /* The sender has sent its last signal once it reaches the barrier. */
    pthread_barrier_wait(&p->ready);
    ev_loop_destroy(p->loop);
    return NULL;
}

int bev_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out) {
    struct pummel p = {0};
    p.duration = duration_ns;
    p.cpu_sender = cpu_sender;
    p.cpu_loop = cpu_loop;
    p.r = out;
    out->callbacks = 0;
    pthread_barrier_init(&p.ready, NULL, 2);
    pthread_t tl, ts;
    pthread_create(&tl, NULL, pummel_loop, &p);
    pthread_create(&ts, NULL, pummel_sender, &p);
    pthread_join(ts, NULL);
    pthread_join(tl, NULL);
    pthread_barrier_destroy(&p.ready);
    return 0;
}

/* ---- workload 4: signals ---------------------------------------------- */

struct sigs {
    int64_t n, count;
    pid_t pid, tid;
};

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)w, (void)revents;
    struct sigs *s = ev_userdata(loop);
    if (++s->count < s->n) {
        if (tgkill(s->pid, s->tid, BENCH_SIGNAL) != 0)
            abort();
    } else {
        ev_break(loop, EVBREAK_ALL);
    }
}

int64_t bev_signals(int64_t n, struct bench_span *out) {
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    if (!loop)
        return -1;
    struct sigs s = {n, 0, getpid(), gettid()};
    ev_set_userdata(loop, &s);
    /* ev_signal_start installs the handler; libev 4.33 unblocks the signal
     * only under EVFLAG_NOSIGMASK (sic), so unblock it as it would be in a
     * program that never blocked it. */
    sigset_t old;
    bench_unblock(BENCH_SIGNAL, &old);
    ev_signal w;
    ev_signal_init(&w, sig_cb, BENCH_SIGNAL);
    ev_signal_start(loop, &w);
    struct bench_mark m = bench_mark();
    if (tgkill(s.pid, s.tid, BENCH_SIGNAL) != 0)
        abort();
    ev_run(loop, 0);
    *out = bench_since(m);
    ev_signal_stop(loop, &w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ev_loop_destroy(loop);
    return s.count;
}

/* ---- workload 5: child exit ------------------------------------------- */

/* ev_child works in the default loop only: libev installs a SIGCHLD
 * handler there and reaps with waitpid(-1, ...) once per SIGCHLD wake-up,
 * again and again until it finds nothing. The loop is destroyed after each
 * run, which puts SIGCHLD back to SIG_DFL. */
struct kids {
    struct ev_loop *loop;
    ev_child *w;
    int64_t done, target, good;
};

static void kid_cb(struct ev_loop *loop, ev_child *w, int revents) {
    (void)revents;
    struct kids *k = ev_userdata(loop);
    ev_child_stop(loop, w);
    k->done++;
    if (WIFEXITED(w->rstatus) && WEXITSTATUS(w->rstatus) == 0)
        k->good++;
    if (k->done >= k->target)
        ev_break(loop, EVBREAK_ALL);
}

static int kids_run(void *ctx) {
    struct kids *k = ctx;
    ev_run(k->loop, 0);
    return k->done >= k->target ? 0 : -1;
}

int bev_children(const struct child_args *a, struct child_result *out) {
    sigset_t old;
    bench_unblock(SIGCHLD, &old);
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    if (!loop)
        return -1;
    struct kids k = {loop, calloc((size_t)a->n, sizeof(ev_child)), 0, 0, 0};
    ev_set_userdata(loop, &k);
    for (int i = 0; i < a->n; i++) {
        ev_child_init(&k.w[i], kid_cb, a->pid[i], 0);
        ev_child_start(loop, &k.w[i]);
    }
    int rc = bench_release(a, out, &k.target, kids_run, &k);
    for (int i = 0; i < a->n; i++)
        ev_child_stop(loop, &k.w[i]);
    free(k.w);
    ev_loop_destroy(loop);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    out->good = k.good;
    return rc;
}

/* ---- workload 6: idle passes (counted with strace) --------------------- */

static void idle_io(struct ev_loop *loop, ev_io *w, int revents) { (void)loop, (void)w, (void)revents; }

int bev_idle(int64_t passes) {
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    int fds[2];
    if (!loop || pipe(fds) != 0 || write(fds[1], "x", 1) != 1)
        return -1;
    ev_io io;
    ev_io_init(&io, idle_io, fds[0], EV_READ);
    ev_io_start(loop, &io);
    ev_timer t;
    ev_timer_init(&t, far_cb, 3600., 0.);
    ev_timer_start(loop, &t);
    for (int64_t i = 0; i < passes; i++)
        ev_run(loop, EVRUN_ONCE);
    ev_io_stop(loop, &io);
    ev_timer_stop(loop, &t);
    ev_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    return 0;
}
