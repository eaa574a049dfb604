/*
 * The libvirt event contract through the C ABI (linux_event.h), with the
 * scenarios of libvirt's own event test, written from their description:
 * 31 pipes and 31 timeouts; removal before the wait, during a blocked wait
 * from another thread, and during dispatch; a callback removing itself; one
 * fd registered twice with disjoint events; timeouts of 0 and -1; every
 * free callback exactly once. Run once per backend by tests/c_contract.rs
 * (LINUX_EVENT_BACKEND). No sleeps for synchronisation: the other thread
 * waits until the loop's thread is asleep in its wait (/proc says so).
 */
#define _GNU_SOURCE
#include "linux_event.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#define N 31
#define READABLE 1
#define WRITABLE 2
#define HANGUP 8

/* One record per registration: its opaque. */
struct reg {
    int id;
    int fd;
    int fired;
    int last_events;
    int frees;
    int in_callback_at_free; /* depth when its free callback ran */
    int remove_self;
    int remove_other;        /* a watch or timer id to remove when fired */
    int remove_other_is_timer;
};

static struct reg handles[N], timers[N];
static int pipes[N][2];
static int depth; /* callbacks running now */
static pid_t loop_tid;

static void on_handle(int watch, int fd, int events, void *opaque) {
    struct reg *r = opaque;
    depth++;
    CHECK(watch == r->id && fd == r->fd, "handle %d/%d called as %d/%d", r->id, r->fd, watch, fd);
    r->fired++;
    r->last_events = events;
    if (r->remove_self)
        CHECK(le_remove_handle(watch) == 0, "self-removal of %d", watch);
    if (r->remove_other) {
        int rc = r->remove_other_is_timer ? le_remove_timeout(r->remove_other) : le_remove_handle(r->remove_other);
        CHECK(rc == 0, "removal of %d from a callback", r->remove_other);
        r->remove_other = 0;
    }
    CHECK(le_loop_run_once(0) == -EBUSY, "run_once from inside a callback");
    CHECK(le_loop_destroy() == -EBUSY, "destroy from inside a callback");
    depth--;
}

static void on_timer(int timer, void *opaque) {
    struct reg *r = opaque;
    depth++;
    CHECK(timer == r->id, "timer %d called as %d", r->id, timer);
    r->fired++;
    if (r->remove_self)
        CHECK(le_remove_timeout(timer) == 0, "self-removal of timer %d", timer);
    depth--;
}

static void on_free(void *opaque) {
    struct reg *r = opaque;
    CHECK(depth == 0, "free callback of %d inside another callback", r->id);
    CHECK(syscall(SYS_gettid) == loop_tid, "free callback of %d off the loop thread", r->id);
    r->frees++;
}

static void reset_fired(void) {
    for (int i = 0; i < N; i++)
        handles[i].fired = timers[i].fired = 0;
}

static int fired_handles(void) {
    int n = 0;
    for (int i = 0; i < N; i++)
        n += handles[i].fired;
    return n;
}

static int fired_timers(void) {
    int n = 0;
    for (int i = 0; i < N; i++)
        n += timers[i].fired;
    return n;
}

static void put(int i) {
    CHECK(write(pipes[i][1], "x", 1) == 1, "write pipe %d", i);
}

static void take(int i) {
    char c;
    CHECK(read(pipes[i][0], &c, 1) == 1, "read pipe %d", i);
}

/* Polls until the loop's thread is asleep in its wait (at most 10 s). */
static int wait_until_blocked(void) {
    for (int i = 0; i < 10000; i++) {
        if (blocked(loop_tid))
            return 1;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

enum remote_op { REMOVE_HANDLE, ENABLE_TIMER, STOP };
struct remote {
    enum remote_op op;
    int id;
    int pipe; /* written after the removal: its callback must not run */
};

static void *remote_thread(void *arg) {
    struct remote *op = arg;
    CHECK(wait_until_blocked(), "the loop never blocked");
    switch (op->op) {
    case REMOVE_HANDLE:
        CHECK(le_remove_handle(op->id) == 0, "remote removal of %d", op->id);
        put(op->pipe);
        break;
    case ENABLE_TIMER:
        le_update_timeout(op->id, 0);
        break;
    case STOP:
        le_loop_stop();
        break;
    }
    return NULL;
}

static pthread_t remote(struct remote *op) {
    pthread_t t;
    if (pthread_create(&t, NULL, remote_thread, op) != 0) {
        perror("pthread_create");
        exit(2);
    }
    return t;
}

/* Passes until `done` says so (at most 20: the contract never needs more). */
#define RUN_UNTIL(cond)                                                                                                \
    do {                                                                                                               \
        int passes_ = 0;                                                                                               \
        while (!(cond) && passes_++ < 20)                                                                              \
            CHECK(le_loop_run_once(-1) >= 0, "run_once");                                                              \
        CHECK(cond, "not after 20 passes: %s", #cond);                                                                 \
    } while (0)

int main(void) {
    loop_tid = (pid_t)syscall(SYS_gettid);
    int rc = le_loop_create();
    if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP) {
        printf("NOTE: backend %s refused by this kernel (errno %d): not run\n", getenv("LINUX_EVENT_BACKEND"), -rc);
        return 77;
    }
    CHECK(rc == 0, "le_loop_create: %d", rc);
    CHECK(le_loop_create() == -EBUSY, "a second loop");
    printf("backend: %s\n", le_loop_backend());

    CHECK(le_add_handle(-1, READABLE, on_handle, NULL, NULL) == -1, "negative fd");
    CHECK(le_add_handle(0, READABLE, NULL, NULL, NULL) == -1, "NULL callback");
    CHECK(le_add_timeout(0, NULL, NULL, NULL) == -1, "NULL callback");
    CHECK(le_remove_handle(123456) == -1 && le_remove_timeout(123456) == -1, "unknown ids");
    CHECK(le_remove_handle(0) == -1 && le_remove_timeout(-3) == -1, "non-positive ids");

    int last = 0;
    for (int i = 0; i < N; i++) {
        CHECK(pipe2(pipes[i], O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        handles[i].fd = pipes[i][0];
        handles[i].id = le_add_handle(pipes[i][0], READABLE, on_handle, &handles[i], on_free);
        CHECK(handles[i].id > last, "watch ids grow: %d after %d", handles[i].id, last);
        last = handles[i].id;
    }
    last = 0;
    for (int i = 0; i < N; i++) {
        timers[i].id = le_add_timeout(-1, on_timer, &timers[i], on_free);
        CHECK(timers[i].id > last, "timer ids grow: %d after %d", timers[i].id, last);
        last = timers[i].id;
    }

    /* Each pipe alone: only its handle runs, once, with READABLE. */
    for (int i = 0; i < N; i++) {
        reset_fired();
        put(i);
        CHECK(le_loop_run_once(-1) == 1, "pass for pipe %d", i);
        CHECK(handles[i].fired == 1 && fired_handles() == 1, "pipe %d alone", i);
        CHECK(handles[i].last_events == READABLE, "pipe %d events %d", i, handles[i].last_events);
        take(i);
    }

    /* Removal before the wait: never runs; freed once, after the pass. */
    reset_fired();
    put(1);
    CHECK(le_remove_handle(handles[1].id) == 0, "remove 1");
    CHECK(le_remove_handle(handles[1].id) == -1, "remove 1 twice");
    le_update_handle(handles[1].id, READABLE); /* no revival */
    CHECK(le_pending_frees() == 1, "one free pending: %d", le_pending_frees());
    CHECK(le_loop_run_once(0) == 0, "nothing to run");
    CHECK(handles[1].fired == 0 && handles[1].frees == 1, "removed before the wait: fired %d, freed %d",
          handles[1].fired, handles[1].frees);

    /* Removal during a blocked wait, from another thread: the wait ends. */
    reset_fired();
    struct remote op = {REMOVE_HANDLE, handles[2].id, 2};
    pthread_t t = remote(&op);
    RUN_UNTIL(handles[2].frees == 1);
    pthread_join(t, NULL);
    CHECK(le_loop_run_once(0) == 0, "pipe 2 has no handle");
    CHECK(handles[2].fired == 0 && handles[2].frees == 1, "removed during the wait: fired %d, freed %d",
          handles[2].fired, handles[2].frees);

    /* Removal during dispatch: 3 and 4 ready in one pass; whichever runs
     * first removes the other. */
    reset_fired();
    handles[3].remove_other = handles[4].id;
    handles[4].remove_other = handles[3].id;
    put(3);
    put(4);
    CHECK(le_loop_run_once(-1) == 1, "one of two");
    CHECK(handles[3].fired + handles[4].fired == 1, "3 fired %d, 4 fired %d", handles[3].fired, handles[4].fired);
    CHECK(handles[3].frees + handles[4].frees == 1, "the removed one freed once");
    int survivor = handles[3].fired ? 3 : 4;
    take(survivor);

    /* A callback removing itself: freed once, after its pass. */
    reset_fired();
    handles[5].remove_self = 1;
    put(5);
    CHECK(le_loop_run_once(-1) == 1, "pass for 5");
    CHECK(handles[5].fired == 1 && handles[5].frees == 1, "self-removal: fired %d, freed %d", handles[5].fired,
          handles[5].frees);
    CHECK(le_loop_run_once(0) == 0, "5 never again");

    /* The same fd twice, disjoint events, on a socket. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    struct reg rd = {.fd = sv[0]}, wr = {.fd = sv[0]};
    rd.id = le_add_handle(sv[0], READABLE, on_handle, &rd, on_free);
    wr.id = le_add_handle(sv[0], WRITABLE, on_handle, &wr, on_free);
    CHECK(rd.id > 0 && wr.id > rd.id, "two handles on one fd: %d %d", rd.id, wr.id);
    CHECK(le_loop_run_once(-1) == 1, "writable only");
    CHECK(wr.fired == 1 && rd.fired == 0 && wr.last_events == WRITABLE, "writer alone: %d %d", wr.fired, rd.fired);
    CHECK(write(sv[1], "y", 1) == 1, "write");
    CHECK(le_loop_run_once(-1) == 2, "both");
    CHECK(rd.fired == 1 && rd.last_events == READABLE, "reader: %d, events %d", rd.fired, rd.last_events);
    CHECK(wr.fired == 2 && wr.last_events == WRITABLE, "writer: %d, events %d", wr.fired, wr.last_events);
    le_update_handle(wr.id, 0);
    close(sv[1]);
    CHECK(le_loop_run_once(-1) == 1, "hang-up");
    CHECK(rd.fired == 2 && (rd.last_events & HANGUP), "unasked hang-up: events %d", rd.last_events);
    CHECK(wr.fired == 2, "events 0: not even the hang-up");
    CHECK(le_remove_handle(rd.id) == 0 && le_remove_handle(wr.id) == 0, "remove both");

    /* Timeouts: -1 never fires; 0 fires once per pass. */
    reset_fired();
    for (int pass = 0; pass < 3; pass++)
        CHECK(le_loop_run_once(0) == 0, "all timers disabled");
    CHECK(fired_timers() == 0, "-1 fired");
    le_update_timeout(timers[0].id, 0);
    for (int pass = 1; pass <= 3; pass++) {
        CHECK(le_loop_run_once(-1) == 1, "pass %d", pass);
        CHECK(timers[0].fired == pass && fired_timers() == pass, "0 fires once per pass: %d", timers[0].fired);
    }
    le_update_timeout(timers[0].id, -1);
    CHECK(le_loop_run_once(0) == 0 && timers[0].fired == 3, "disabled again");

    /* An interval: not before it has passed (a lower bound only). */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    le_update_timeout(timers[1].id, 30);
    RUN_UNTIL(timers[1].fired == 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(elapsed_ms >= 29, "30 ms timeout fired after %ld ms", elapsed_ms);
    le_update_timeout(timers[1].id, -1);

    /* A timeout enabled from another thread during a blocked wait. */
    reset_fired();
    struct remote en = {ENABLE_TIMER, timers[2].id, 0};
    t = remote(&en);
    RUN_UNTIL(timers[2].fired >= 1);
    pthread_join(t, NULL);
    le_update_timeout(timers[2].id, -1);

    /* A timeout removing itself, and one removed from a handle callback. */
    reset_fired();
    timers[3].remove_self = 1;
    le_update_timeout(timers[3].id, 0);
    handles[6].remove_other = timers[4].id;
    handles[6].remove_other_is_timer = 1;
    le_update_timeout(timers[4].id, 0);
    put(6);
    CHECK(le_loop_run_once(-1) >= 2, "6 and timer 3");
    take(6);
    CHECK(timers[3].fired == 1 && timers[3].frees == 1, "timer self-removal: %d %d", timers[3].fired, timers[3].frees);
    CHECK(timers[4].frees == 1, "timer removed by a handle: freed %d", timers[4].frees);
    int fired4 = timers[4].fired;
    CHECK(le_loop_run_once(0) == 0, "neither again");
    CHECK(timers[3].fired == 1 && timers[4].fired == fired4, "removed timers ran again");

    /* le_loop_run until le_loop_stop from another thread. */
    struct remote st = {STOP, 0, 0};
    t = remote(&st);
    CHECK(le_loop_run() == 0, "run until stopped");
    pthread_join(t, NULL);

    /* Destroy: every remaining free callback now, each exactly once. */
    CHECK(le_loop_destroy() == 0, "destroy");
    CHECK(le_loop_destroy() == -EINVAL && le_loop_run_once(0) == -EINVAL, "no loop any more");
    for (int i = 0; i < N; i++) {
        CHECK(handles[i].frees == 1, "handle %d freed %d times", i, handles[i].frees);
        CHECK(timers[i].frees == 1, "timer %d freed %d times", i, timers[i].frees);
    }
    CHECK(rd.frees == 1 && wr.frees == 1, "socket handles freed %d %d", rd.frees, wr.frees);
    CHECK(le_pending_frees() == 0, "nothing pending");

    /* A new loop after destroy; ids keep growing. */
    CHECK(le_loop_create() == 0, "create again");
    struct reg again = {.fd = pipes[0][0]};
    again.id = le_add_handle(pipes[0][0], READABLE, on_handle, &again, on_free);
    CHECK(again.id > handles[N - 1].id + 2, "ids never reused: %d", again.id);
    CHECK(le_loop_destroy() == 0 && again.frees == 1, "destroy again");

    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
