/* libevent 2.1.12 driver: the workloads written the way a libevent user
 * would (persistent read events, timeouts with event_add/event_del,
 * event_active from another thread, evsignal; for children, which libevent
 * has no watcher for, a SIGCHLD evsignal and a waitpid loop), epoll
 * backend.
 *
 * Single-threaded workloads use bases made with EVENT_BASE_FLAG_NOLOCK, so
 * they pay no locking even after workload 3 turned pthreads support on for
 * the process; workload 3's bases have their locks, as libevent requires
 * for cross-thread event_active. */
#include "bench.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct event_base *base_new(int locked) {
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_avoid_method(cfg, "select");
    event_config_avoid_method(cfg, "poll");
    if (!locked)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (base && strcmp(event_base_get_method(base), "epoll") != 0) {
        event_base_free(base);
        return NULL;
    }
    return base;
}

static void threads_on(void) {
    if (evthread_use_pthreads() != 0)
        abort();
}

static void use_threads(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, threads_on);
}

/* event_assign needs room for a struct event, whose size only the library
 * knows for sure. */
static struct event *ev_at(char *mem, size_t i) { return (struct event *)(mem + i * event_get_struct_event_size()); }

/* ---- workload 1: chain ------------------------------------------------ */

struct chain {
    const struct chain_args *a;
    struct event_base *base;
    int64_t fired, writes, total;
};

static struct chain *chain_ctx;

static void chain_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct chain *c = chain_ctx;
    char ch;
    if (read(fd, &ch, 1) != 1)
        return;
    c->fired++;
    if (c->writes < c->a->writes) {
        int i = (int)(intptr_t)arg + 1;
        if (i == c->a->n)
            i = 0;
        c->writes++;
        if (write(c->a->wfd[i], &ch, 1) != 1)
            abort();
    }
    if (c->fired == c->total)
        event_base_loopbreak(c->base);
}

int64_t bevent_chain(const struct chain_args *a, struct bench_span *out) {
    struct event_base *base = base_new(0);
    if (!base)
        return -1;
    struct chain c = {a, base, 0, 0, a->active + a->writes};
    chain_ctx = &c;
    char *mem = calloc((size_t)a->n, event_get_struct_event_size());
    for (int i = 0; i < a->n; i++) {
        event_assign(ev_at(mem, i), base, a->rfd[i], EV_READ | EV_PERSIST, chain_cb, (void *)(intptr_t)i);
        event_add(ev_at(mem, i), NULL);
    }
    int space = a->n / a->active;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->active; i++)
        if (write(a->wfd[i * space], "e", 1) != 1)
            abort();
    event_base_loop(base, 0);
    *out = bench_since(m);
    for (int i = 0; i < a->n; i++)
        event_del(ev_at(mem, i));
    free(mem);
    event_base_free(base);
    chain_ctx = NULL;
    return c.fired;
}

/* ---- workload 2: timers ----------------------------------------------- */

struct timers {
    const struct timer_args *a;
    struct timer_result *r;
    struct event_base *base;
    char *mem;
    int n;
    int64_t fired;
};

/* The base kept between calls (a->keep). */
static struct timers *timers_kept;

static struct timeval tv_of(uint64_t ns) {
    struct timeval tv = {(time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000u)};
    return tv;
}

static void far_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

static void fire_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct timers *c = arg;
    if (++c->fired == c->a->n)
        event_base_loopbreak(c->base);
}

/* One function per phase (not inlined), so a profile names each. */
static __attribute__((noinline)) void bevent_phase_insert(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++) {
        struct timeval tv = tv_of(a->far[i]);
        event_assign(ev_at(c->mem, i), c->base, -1, 0, far_cb, c);
        event_add(ev_at(c->mem, i), &tv);
    }
    c->r->insert = bench_since(m);
}

static __attribute__((noinline)) void bevent_phase_rearm(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++) {
        struct timeval tv = tv_of(a->rearm[i]);
        event_add(ev_at(c->mem, a->order_rearm[i]), &tv);
    }
    c->r->rearm = bench_since(m);
}

static __attribute__((noinline)) void bevent_phase_cancel(struct timers *c) {
    const struct timer_args *a = c->a;
    struct bench_mark m = bench_mark();
    for (int i = 0; i < a->n; i++)
        event_del(ev_at(c->mem, a->order_cancel[i]));
    c->r->cancel = bench_since(m);
}

static void timers_phases(struct timers *c) {
    bevent_phase_insert(c);
    bevent_phase_rearm(c);
    bevent_phase_cancel(c);
    for (int i = 0; i < c->a->n; i++) {
        struct timeval tv = tv_of(c->a->near[i]);
        event_assign(ev_at(c->mem, i), c->base, -1, 0, fire_cb, c);
        event_add(ev_at(c->mem, i), &tv);
    }
}

static void timers_driver(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct timers *c = arg;
    timers_phases(c);
    event_base_loopbreak(c->base);
}

static void timers_free(struct timers *c) {
    if (!c)
        return;
    if (c->base)
        event_base_free(c->base);
    free(c->mem);
    free(c);
}

int bevent_timers(const struct timer_args *a, struct timer_result *out) {
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
        c->base = base_new(0);
        c->mem = calloc((size_t)a->n, event_get_struct_event_size());
        if (!c->base || !c->mem) {
            timers_free(c);
            return -1;
        }
    }
    c->a = a;
    c->r = out;
    c->fired = 0;
    if (a->from_main) {
        timers_phases(c);
    } else {
        struct event *driver = evtimer_new(c->base, timers_driver, c);
        struct timeval zero = {0, 0};
        event_add(driver, &zero);
        event_base_loop(c->base, 0);
        event_free(driver);
    }
    usleep(2000);
    struct bench_mark m = bench_mark();
    event_base_loop(c->base, 0);
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
    struct event_base *base;
    struct event *ev;
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

static void pp_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct pp_side *s = arg;
    struct pp *pp = s->pp;
    if (s->leader) {
        if (++pp->count == pp->rounds) {
            atomic_store(&pp->done, 1);
            event_active(s->peer->ev, EV_READ, 0);
            event_base_loopbreak(s->base);
            return;
        }
    } else if (atomic_load(&pp->done)) {
        event_base_loopbreak(s->base);
        return;
    }
    event_active(s->peer->ev, EV_READ, 0);
}

static void *pp_thread(void *arg) {
    struct pp_side *s = arg;
    bench_pin(s->cpu);
    s->base = base_new(1);
    s->ev = event_new(s->base, -1, 0, pp_cb, s);
    pthread_barrier_wait(&s->pp->ready);
    struct bench_mark m = bench_mark();
    if (s->leader)
        event_active(s->peer->ev, EV_READ, 0);
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    s->span = bench_since(m);
    pthread_barrier_wait(&s->pp->ready);
    event_free(s->ev);
    event_base_free(s->base);
    return NULL;
}

int bevent_pingpong(int64_t rounds, int cpu_a, int cpu_b, struct pingpong_result *out) {
    use_threads();
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
    struct event_base *base;
    struct event *ev;
    pthread_barrier_t ready;
    atomic_int done;
    uint64_t duration;
    int cpu_sender, cpu_loop;
    struct pummel_result *r;
};

static void pummel_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct pummel *p = arg;
    p->r->callbacks++;
    if (atomic_load(&p->done))
        event_base_loopbreak(p->base);
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
            event_active(p->ev, EV_READ, 0);
        sends += 256;
        if (bench_ns(CLOCK_MONOTONIC) - m.wall >= p->duration)
            break;
    }
    p->r->sender = bench_since(m);
    p->r->sender_writes = bench_thread_writes() - writes;
    atomic_store(&p->done, 1);
    event_active(p->ev, EV_READ, 0);
    p->r->sends = sends + 1;
    pthread_barrier_wait(&p->ready);
    return NULL;
}

static void *pummel_loop(void *arg) {
    struct pummel *p = arg;
    bench_pin(p->cpu_loop);
    p->base = base_new(1);
    p->ev = event_new(p->base, -1, 0, pummel_cb, p);
    pthread_barrier_wait(&p->ready);
    struct bench_mark m = bench_mark();
    event_base_loop(p->base, EVLOOP_NO_EXIT_ON_EMPTY);
    p->r->loop = bench_since(m);
    pthread_barrier_wait(&p->ready);
    event_free(p->ev);
    event_base_free(p->base);
    return NULL;
}

int bevent_pummel(uint64_t duration_ns, int cpu_loop, int cpu_sender, struct pummel_result *out) {
    use_threads();
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

/* libevent catches signals with a handler that writes the signal number to
 * a socketpair the base watches; the signal must be deliverable to this
 * thread, as it is in a program that never blocked it (bench_unblock). */
struct sigs {
    struct event_base *base;
    int64_t n, count;
    pid_t pid, tid;
};

static void sig_cb(evutil_socket_t sig, short what, void *arg) {
    (void)sig, (void)what;
    struct sigs *s = arg;
    if (++s->count < s->n) {
        if (tgkill(s->pid, s->tid, BENCH_SIGNAL) != 0)
            abort();
    } else {
        event_base_loopbreak(s->base);
    }
}

int64_t bevent_signals(int64_t n, struct bench_span *out) {
    struct event_base *base = base_new(0);
    if (!base)
        return -1;
    sigset_t old;
    bench_unblock(BENCH_SIGNAL, &old);
    struct sigs s = {base, n, 0, getpid(), gettid()};
    struct event *ev = evsignal_new(base, BENCH_SIGNAL, sig_cb, &s);
    if (!ev || event_add(ev, NULL) != 0)
        return -1;
    struct bench_mark m = bench_mark();
    if (tgkill(s.pid, s.tid, BENCH_SIGNAL) != 0)
        abort();
    event_base_loop(base, 0);
    *out = bench_since(m);
    event_free(ev);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    event_base_free(base);
    return s.count;
}

/* ---- workload 5: child exit ------------------------------------------- */

struct kids {
    struct event_base *base;
    const struct child_args *a;
    int64_t done, target, good;
};

/* What a libevent program does for its children: on SIGCHLD, reap every
 * exited child and look each pid up among its own. */
static void sigchld_cb(evutil_socket_t sig, short what, void *arg) {
    (void)sig, (void)what;
    struct kids *k = arg;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < k->a->n; i++) {
            if (k->a->pid[i] == pid) {
                k->done++;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                    k->good++;
                break;
            }
        }
    }
    if (k->done >= k->target)
        event_base_loopbreak(k->base);
}

static int kids_run(void *ctx) {
    struct kids *k = ctx;
    if (event_base_loop(k->base, 0) < 0)
        return -1;
    return k->done >= k->target ? 0 : -1;
}

int bevent_children(const struct child_args *a, struct child_result *out) {
    struct event_base *base = base_new(0);
    if (!base)
        return -1;
    sigset_t old;
    bench_unblock(SIGCHLD, &old);
    struct kids k = {base, a, 0, 0, 0};
    struct event *ev = evsignal_new(base, SIGCHLD, sigchld_cb, &k);
    if (!ev || event_add(ev, NULL) != 0)
        return -1;
    int rc = bench_release(a, out, &k.target, kids_run, &k);
    event_free(ev);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    event_base_free(base);
    out->good = k.good;
    return rc;
}

/* ---- workload 6: idle passes (counted with strace) --------------------- */

static void idle_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

int bevent_idle(int64_t passes) {
    struct event_base *base = base_new(0);
    int fds[2];
    if (!base || pipe(fds) != 0 || write(fds[1], "x", 1) != 1)
        return -1;
    struct event *io = event_new(base, fds[0], EV_READ | EV_PERSIST, idle_cb, NULL);
    struct event *t = evtimer_new(base, idle_cb, NULL);
    struct timeval hour = {3600, 0};
    event_add(io, NULL);
    event_add(t, &hour);
    for (int64_t i = 0; i < passes; i++)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(io);
    event_free(t);
    event_base_free(base);
    close(fds[0]);
    close(fds[1]);
    return 0;
}
