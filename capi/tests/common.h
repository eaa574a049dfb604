/* Shared by the C tests: the CHECK counters, and whether a thread sleeps
 * in a backend's wait. */
#ifndef LINUX_EVENT_TEST_COMMON_H
#define LINUX_EVENT_TEST_COMMON_H

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>

static int failures, checks;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

/* Whether thread `tid` sleeps in a backend's wait system call
 * (epoll_pwait, epoll_pwait2, io_getevents or io_uring_enter), from /proc. */
static int blocked(pid_t tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    if (!close_paren || close_paren[1] != ' ' || close_paren[2] != 'S')
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    long nr = -1;
    int got = fscanf(f, "%ld", &nr);
    fclose(f);
    return got == 1 && (nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2 || nr == SYS_io_getevents ||
                        nr == SYS_io_uring_enter);
}

#endif
