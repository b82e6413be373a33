/* store/run: runs the external programs storage needs (qemu-img) from a
 * worker thread: argv only, never a shell; output read through pipes with a
 * bound; a timeout that kills; the child reaped by its pid alone. */
#ifndef CAIRN_STORE_RUN_H
#define CAIRN_STORE_RUN_H

#include <stdatomic.h>

#include "lib/lib.h"

/* At most this much of a program's stdout is kept; more fails. */
#define STORE_RUN_OUTPUT_MAX (1024 * 1024)

/* Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, in its
 * own session, and waits for it. Its stdout is appended to out (may be
 * NULL: discarded); more than STORE_RUN_OUTPUT_MAX bytes, or more than
 * out's own max, kills it and fails with -E2BIG. timeout_ms 0 means no
 * limit; past it the program's whole process group is killed (SIGKILL)
 * and the call fails with -ETIMEDOUT. An exit status other than 0 or a
 * death by signal fails with -EIO, and the message carries the last line
 * the program wrote to stderr:
 *   "qemu-img: exit status 1: qemu-img: x.qcow2: Image is not in qcow2
 *    format"
 *
 * Safe on any thread: it changes no signal disposition and waits for its
 * own child's pid only. */
int store_run(const char *const argv[], unsigned timeout_ms, struct buf *out,
              struct err *e);
/* The same, run in directory cwd (NULL: ours): relative paths the program
 * is given, such as a linked clone's backing file, resolve from there. */
int store_run_in(const char *cwd, const char *const argv[], unsigned timeout_ms,
                 struct buf *out, struct err *e);
/* The same, and stopped early once *cancel is true: another thread (the
 * loop, when a user aborts a task) sets the flag, this one looks at it at
 * least every STORE_RUN_CANCEL_MS, kills the program's process group and
 * fails with -ECANCELED ("curl: cancelled"). A flag and not a pid to
 * signal from outside: only the thread that reaps the child signals it,
 * so a pid reused after the reap is never hit. cancel may be NULL. */
#define STORE_RUN_CANCEL_MS 100
int store_run_cancellable(const char *cwd, const char *const argv[],
                          unsigned timeout_ms, const atomic_bool *cancel,
                          struct buf *out, struct err *e);

#endif /* CAIRN_STORE_RUN_H */
