/* Helpers shared by the C drivers. */
#include "bench.h"

#include <pthread.h>
#include <sched.h>

void bench_pin(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
