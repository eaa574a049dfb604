/* Helpers shared by the C drivers. */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

void bench_pin(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int64_t bench_thread_writes(void) {
    FILE *f = fopen("/proc/thread-self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %lld", &n) == 1)
            break;
    fclose(f);
    return n;
}

void bench_unblock(int signo, sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, old);
}

static void span_add(struct bench_span *sum, struct bench_span s) {
    sum->wall += s.wall;
    sum->cpu += s.cpu;
}

static int release(int fd) { return write(fd, "\n", 1) == 1 ? 0 : -1; }

int bench_release(const struct child_args *a, struct child_result *out, int64_t *target, int (*run)(void *),
                  void *ctx) {
    for (int i = 0; i < a->one && i < a->n; i++) {
        *target = i + 1;
        struct bench_mark m = bench_mark();
        if (release(a->release[i]) != 0 || run(ctx) != 0)
            return -1;
        span_add(&out->one, bench_since(m));
    }
    if (a->n > a->one) {
        *target = a->n;
        struct bench_mark m = bench_mark();
        for (int i = a->one; i < a->n; i++)
            if (release(a->release[i]) != 0)
                return -1;
        if (run(ctx) != 0)
            return -1;
        out->rest = bench_since(m);
    }
    return 0;
}
