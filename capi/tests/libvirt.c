/*
 * Real libvirt on linux-event's C ABI: registers le_* with
 * virEventRegisterImpl, opens a connection (test:///default, libvirt's
 * built-in test driver, or the URI in argv[1]: a daemon's socket), watches
 * domain lifecycle events, and destroys, starts, suspends and resumes the
 * test domain: first from the loop's thread, then from a second thread
 * while the loop is blocked in its wait (the call must wake it). Each event
 * must arrive within a bounded number of passes; a watchdog (alarm, 60 s)
 * ends the program if a wait is never woken. Then it deregisters, closes,
 * and checks that every free callback ran exactly once.
 *
 * It counts what libvirt called (the six functions, and the intervals
 * it gave) and prints it, with the latency of each event.
 */
#define _GNU_SOURCE
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "linux_event.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

/* ---- counting wrappers around le_*: what libvirt calls, how often ---- */

static atomic_int n_add_handle, n_update_handle, n_remove_handle, n_add_timeout, n_update_timeout,
    n_remove_timeout, n_update_timeout_0, n_update_timeout_off, n_update_timeout_other, n_off_thread, n_frees,
    n_handle_calls, n_timeout_calls, live;
static pid_t loop_tid;

struct wrap {
    virEventHandleCallback hcb;
    virEventTimeoutCallback tcb;
    virFreeCallback ff;
    void *opaque;
};

static void note_thread(void) {
    if (syscall(SYS_gettid) != loop_tid)
        n_off_thread++;
}

static void wrapped_handle(int watch, int fd, int events, void *opaque) {
    struct wrap *w = opaque;
    n_handle_calls++;
    w->hcb(watch, fd, events, w->opaque);
}

static void wrapped_timeout(int timer, void *opaque) {
    struct wrap *w = opaque;
    n_timeout_calls++;
    w->tcb(timer, w->opaque);
}

static void wrapped_free(void *opaque) {
    struct wrap *w = opaque;
    CHECK(syscall(SYS_gettid) == loop_tid, "free callback off the loop thread");
    n_frees++;
    live--;
    if (w->ff)
        w->ff(w->opaque);
    free(w);
}

static int count_add_handle(int fd, int event, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
    n_add_handle++;
    note_thread();
    struct wrap *w = calloc(1, sizeof *w);
    w->hcb = cb;
    w->ff = ff;
    w->opaque = opaque;
    int id = le_add_handle(fd, event, wrapped_handle, w, wrapped_free);
    if (id < 0)
        free(w);
    else
        live++;
    return id;
}

static void count_update_handle(int watch, int event) {
    n_update_handle++;
    note_thread();
    le_update_handle(watch, event);
}

static int count_remove_handle(int watch) {
    n_remove_handle++;
    note_thread();
    return le_remove_handle(watch);
}

static int count_add_timeout(int timeout, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
    n_add_timeout++;
    note_thread();
    struct wrap *w = calloc(1, sizeof *w);
    w->tcb = cb;
    w->ff = ff;
    w->opaque = opaque;
    int id = le_add_timeout(timeout, wrapped_timeout, w, wrapped_free);
    if (id < 0)
        free(w);
    else
        live++;
    return id;
}

static void count_update_timeout(int timer, int timeout) {
    n_update_timeout++;
    note_thread();
    if (timeout == 0)
        n_update_timeout_0++;
    else if (timeout < 0)
        n_update_timeout_off++;
    else
        n_update_timeout_other++;
    le_update_timeout(timer, timeout);
}

static int count_remove_timeout(int timer) {
    n_remove_timeout++;
    note_thread();
    return le_remove_timeout(timer);
}

/* ---- the lifecycle callback ---- */

struct events {
    atomic_int count;
    int last_event;
    int frees;
    struct timespec sent;
    double worst_ms;
};

static double since_ms(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1e3 + (now.tv_nsec - t->tv_nsec) / 1e6;
}

static int lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
    (void)conn;
    (void)dom;
    (void)detail;
    struct events *ev = opaque;
    CHECK(syscall(SYS_gettid) == loop_tid, "event callback off the loop thread");
    double ms = since_ms(&ev->sent);
    if (ms > ev->worst_ms)
        ev->worst_ms = ms;
    ev->last_event = event;
    ev->count++;
    return 0;
}

static void lifecycle_free(void *opaque) {
    struct events *ev = opaque;
    ev->frees++;
}

/* ---- the second thread ---- */

static int wait_until_blocked(void) {
    for (int i = 0; i < 10000; i++) {
        if (blocked(loop_tid))
            return 1;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

enum op { DESTROY, CREATE, SUSPEND, RESUME };
static const char *op_name[] = {"destroy", "create", "suspend", "resume"};
static const int op_event[] = {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_SUSPENDED,
                               VIR_DOMAIN_EVENT_RESUMED};

static int do_op(virDomainPtr dom, enum op op) {
    switch (op) {
    case DESTROY:
        return virDomainDestroy(dom);
    case CREATE:
        return virDomainCreate(dom);
    case SUSPEND:
        return virDomainSuspend(dom);
    case RESUME:
        return virDomainResume(dom);
    }
    return -1;
}

struct remote {
    virDomainPtr dom;
    struct events *ev;
    sem_t go;   /* posted by the loop thread for each op */
    sem_t done; /* posted by this thread when an op returned */
};

static void *remote_thread(void *arg) {
    struct remote *r = arg;
    for (int op = DESTROY; op <= RESUME; op++) {
        while (sem_wait(&r->go) != 0)
            ;
        CHECK(wait_until_blocked(), "the loop never blocked before %s", op_name[op]);
        clock_gettime(CLOCK_MONOTONIC, &r->ev->sent);
        CHECK(do_op(r->dom, op) == 0, "%s from the second thread: %s", op_name[op], virGetLastErrorMessage());
        sem_post(&r->done);
    }
    return NULL;
}

/* Passes until `cond`, at most 50 (one or two suffice; a pass blocks until
 * something wakes it, and the watchdog ends a wait nothing wakes). */
#define RUN_UNTIL(cond)                                                                                                \
    do {                                                                                                               \
        int passes_ = 0;                                                                                               \
        while (!(cond) && passes_++ < 50)                                                                              \
            CHECK(le_loop_run_once(-1) >= 0, "run_once");                                                              \
        CHECK(cond, "not after 50 passes: %s", #cond);                                                                 \
    } while (0)

static void watchdog(int sig) {
    (void)sig;
    static const char msg[] = "WATCHDOG: a wait was never woken (60 s)\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(3);
}

int main(int argc, char **argv) {
    const char *uri = argc > 1 ? argv[1] : "test:///default";
    loop_tid = (pid_t)syscall(SYS_gettid);
    signal(SIGALRM, watchdog);
    alarm(60);
    int rc = le_loop_create();
    if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP) {
        printf("NOTE: backend %s refused by this kernel (errno %d): not run\n", getenv("LINUX_EVENT_BACKEND"), -rc);
        return 77;
    }
    CHECK(rc == 0, "le_loop_create: %d", rc);
    virEventRegisterImpl(count_add_handle, count_update_handle, count_remove_handle, count_add_timeout,
                         count_update_timeout, count_remove_timeout);
    printf("libvirt %lu on %s, %s\n", (unsigned long)LIBVIR_VERSION_NUMBER, le_loop_backend(), uri);

    virConnectPtr conn = virConnectOpen(uri);
    if (!conn) {
        fprintf(stderr, "virConnectOpen(%s): %s\n", uri, virGetLastErrorMessage());
        return 1;
    }
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL, "the test domain: %s", virGetLastErrorMessage());
    struct events ev = {0};
    int cb = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              VIR_DOMAIN_EVENT_CALLBACK(lifecycle), &ev, lifecycle_free);
    CHECK(cb >= 0, "event registration: %s", virGetLastErrorMessage());

    /* From the loop's thread. */
    for (int op = DESTROY; op <= RESUME; op++) {
        int before = ev.count;
        clock_gettime(CLOCK_MONOTONIC, &ev.sent);
        CHECK(do_op(dom, op) == 0, "%s: %s", op_name[op], virGetLastErrorMessage());
        RUN_UNTIL(ev.count > before);
        CHECK(ev.last_event == op_event[op], "%s: event %d", op_name[op], ev.last_event);
    }
    double loop_thread_worst = ev.worst_ms;

    /* From a second thread, while the loop is blocked. */
    ev.worst_ms = 0;
    struct remote r = {.dom = dom, .ev = &ev};
    sem_init(&r.go, 0, 0);
    sem_init(&r.done, 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, remote_thread, &r) == 0, "pthread_create");
    for (int op = DESTROY; op <= RESUME; op++) {
        int before = ev.count;
        sem_post(&r.go);
        RUN_UNTIL(ev.count > before);
        /* The call may return after its event was dispatched: wait for it
         * without running the loop (nothing else would wake it). */
        while (sem_wait(&r.done) != 0)
            ;
        CHECK(ev.last_event == op_event[op], "%s from the second thread: event %d", op_name[op], ev.last_event);
    }
    pthread_join(t, NULL);

    /* Deregister, close: every free callback exactly once. */
    CHECK(virConnectDomainEventDeregisterAny(conn, cb) == 0, "deregister: %s", virGetLastErrorMessage());
    RUN_UNTIL(ev.frees == 1);
    virDomainFree(dom);
    CHECK(virConnectClose(conn) == 0, "close: references left");
    RUN_UNTIL(atomic_load(&live) == 0 && le_pending_frees() == 0);
    CHECK(ev.frees == 1, "lifecycle free callback ran %d times", ev.frees);
    CHECK(le_loop_destroy() == 0, "destroy");
    CHECK(n_frees == n_add_handle + n_add_timeout, "%d free callbacks for %d registrations", n_frees,
          n_add_handle + n_add_timeout);

    printf("libvirt called: addHandle %d, updateHandle %d, removeHandle %d, addTimeout %d, updateTimeout %d "
           "(0: %d, -1: %d, other: %d), removeTimeout %d; %d of them off the loop thread; "
           "handle callbacks %d, timeout callbacks %d, free callbacks %d\n",
           n_add_handle, n_update_handle, n_remove_handle, n_add_timeout, n_update_timeout, n_update_timeout_0,
           n_update_timeout_off, n_update_timeout_other, n_remove_timeout, n_off_thread, n_handle_calls,
           n_timeout_calls, n_frees);
    printf("event latency, worst: %.3f ms from the loop thread, %.3f ms from the second thread\n",
           loop_thread_worst, ev.worst_ms);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
