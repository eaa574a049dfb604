/*
 * linux_event.h: libvirt's event-loop contract on linux-event, for C.
 *
 * Six functions with exactly the signatures virEventRegisterImpl() takes,
 * and one process-wide loop to run them on:
 *
 *     #include <libvirt/libvirt.h>
 *     #include <linux_event.h>
 *
 *     le_loop_create();
 *     virEventRegisterImpl(le_add_handle, le_update_handle, le_remove_handle,
 *                          le_add_timeout, le_update_timeout, le_remove_timeout);
 *     virConnectPtr conn = virConnectOpen("test:///default");
 *     ...
 *     while (running)
 *         le_loop_run_once(-1);
 *     le_loop_destroy();
 *
 * Link with liblinux_event_capi.a (and -lpthread -ldl) or with
 * -llinux_event_capi (the shared library).
 *
 * Semantics (libvirt's):
 * - Events are VIR_EVENT_HANDLE_READABLE 1, WRITABLE 2, ERROR 4, HANGUP 8;
 *   ERROR and HANGUP are reported to every handle of the fd whose events
 *   are not 0, asked for or not, as poll(2) does. Several handles may watch
 *   one fd; each hears its own events. A handle whose fd cannot be watched
 *   (closed: ERROR on every pass, as poll's POLLNVAL; a regular file: always
 *   ready) is reported that way until it is updated or removed.
 * - Timeouts are in milliseconds, counted from when the timeout last fired;
 *   0 fires once on every pass of the loop; negative is disabled.
 * - Ids are positive and never reused while the process lives; -1 is
 *   failure (NULL callback, negative fd, 1024 handles or 1024 timeouts).
 * - A removed handle or timeout never runs again, not even later in the
 *   pass that is running, and an update does not revive it. Its free
 *   callback runs exactly once, on the loop's thread, after the pass's
 *   callbacks: never inside another callback, never with a lock held. It
 *   may call any of these functions.
 * - Any thread may call the six functions at any time. A call from another
 *   thread wakes the loop if it is blocked (so the change takes effect at
 *   once); a call from the loop's own thread costs no system call beyond
 *   the watcher change, which the loop makes once per pass before it waits.
 *
 * The pointers C hands in (this ABI is the only place they are trusted):
 * - cb must be a function of the declared type, callable for as long as the
 *   registration lives: until its free callback has run (or, with ff NULL,
 *   until it was removed and a pass has run).
 * - opaque is never read or written by the library: it is passed back, as
 *   given, to cb and ff.
 * - ff may be NULL; if not, it is called exactly once with opaque, after
 *   removal (le_remove_*, or le_loop_destroy for what is still registered).
 *   When an add fails (-1), nothing is kept and ff is never called.
 * - Callbacks must return (no longjmp out of them) and must not unwind.
 */
#ifndef LINUX_EVENT_H
#define LINUX_EVENT_H

#ifdef __cplusplus
extern "C" {
#endif

/* libvirt's callback types (identical to <libvirt/libvirt-event.h> and
 * <libvirt/libvirt-common.h>; declared here only if those were not
 * included first: C11 allows the repetition either way). */
#ifndef LIBVIRT_EVENT_H
typedef void (*virEventHandleCallback)(int watch, int fd, int events, void *opaque);
typedef void (*virEventTimeoutCallback)(int timer, void *opaque);
#endif
#ifndef __VIR_VIRCOMMON_H__
typedef void (*virFreeCallback)(void *opaque);
#endif

/* The six calls (virEventAddHandleFunc ... virEventRemoveTimeoutFunc). */
int le_add_handle(int fd, int event, virEventHandleCallback cb, void *opaque, virFreeCallback ff);
void le_update_handle(int watch, int event);
int le_remove_handle(int watch);
int le_add_timeout(int timeout, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff);
void le_update_timeout(int timer, int timeout);
int le_remove_timeout(int timer);

/* The process-wide loop. Functions returning int return 0 (or a count) on
 * success and a negative errno on failure: -EBUSY (exists already, or
 * called while the loop runs: from a callback, or from another thread
 * during a pass), -EINVAL (no loop; an unknown LINUX_EVENT_BACKEND), or the
 * kernel's refusal. */

/* Creates the loop, on the backend LINUX_EVENT_BACKEND names ("epoll", the
 * default, "linux-aio", "io_uring", "auto"). Handles and timeouts added
 * before it are registered at its first pass. */
int le_loop_create(void);
/* One pass: waits up to timeout_ms (negative: as long as it takes; 0: not
 * at all), runs what is due; returns how many callbacks ran. */
int le_loop_run_once(int timeout_ms);
/* Runs passes until le_loop_stop(). */
int le_loop_run(void);
/* Makes le_loop_run() return after the current pass (or at once, if called
 * before it). Any thread, also from a callback. */
void le_loop_stop(void);
/* Removes every handle and timeout (their free callbacks run now, on this
 * thread) and closes the loop. le_loop_create() may follow. */
int le_loop_destroy(void);
/* The backend in use ("epoll", "linux-aio", "io_uring"): a static string,
 * or NULL with no loop or while it runs. */
const char *le_loop_backend(void);
/* Free callbacks not yet run (of handles and timeouts already removed). */
int le_pending_frees(void);

#ifdef __cplusplus
}
#endif

#endif /* LINUX_EVENT_H */
