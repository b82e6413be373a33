/* node/task: Proxmox task ids (UPIDs) and the per-node task log files that
 * /nodes/{node}/tasks/{upid}/log and .../status read; no loop and no DB —
 * the caller runs these on the loop or a worker (the I/O is small and
 * direct). Private to node/. */
#ifndef CAIRN_NODE_TASK_H
#define CAIRN_NODE_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

/* ------------------------------------------------------------------------
 * UPIDs: "UPID:node:PID:PSTART:STARTTIME:type:id:user:", the three numbers
 * as 8 upper-case hex digits (Proxmox's UPID.pm encode).
 *
 * Clients parse them: BPG reads the numbers with ParseInt(.., 16, 32), so
 * each must be <= 0x7FFFFFFF; proxmoxer splits on ':' and wants exactly 9
 * fields; every client polls the node named in the UPID.
 *
 * cairn runs a task as work inside one agent process instead of a forked
 * worker, so the fields mean:
 *   pid       a per-node sequence number (task_next_pid) that starts at a
 *             value derived from the agent's pid and start time
 *             (task_pid_seed), so that UPIDs stay unique per node across
 *             agent restarts as Proxmox's are;
 *   pstart    the agent's start time in clock ticks since boot, like
 *             Proxmox's (task_pstart_self), masked to 31 bits; it only has
 *             to be stable for one agent run and <= 0x7FFFFFFF;
 *   starttime Unix seconds when the task started. */
#define TASK_UPID_MAX     512 /* longest UPID text accepted, without NUL */
#define TASK_UPID_NUM_MAX UINT32_C(0x7FFFFFFF)

struct task_upid {
	char node[64]; /* [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
	uint32_t pid, pstart, starttime; /* each <= TASK_UPID_NUM_MAX */
	char type[32];                   /* worker type, "qmstart": [^:\s/]+ */
	char id[64];                     /* "100", or "" : [^:\s/]* */
	char user[192]; /* "root@pam", "root@pam!ci": [^:\s/]+ */
};

/* Writes u's text into out (a NUL-terminated string). -EINVAL, naming the
 * field, when a field breaks the rules above or is not NUL-terminated;
 * -ERANGE when out is too small (TASK_UPID_MAX + 1 always fits). */
int task_upid_format(const struct task_upid *u, char *out, size_t size,
                     struct err *e);

/* Parses text that matches exactly Proxmox's decode regex
 *   ^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):
 *   ([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$
 * (hex digits in either case, pstart with 8 or 9 digits) with three
 * refusals of cairn's: numbers above 0x7FFFFFFF, fields longer than
 * struct task_upid holds, and the trailing newline Perl's `$` lets
 * through. -EINVAL with the reason; out is filled only on success. */
int task_upid_parse(const char *text, struct task_upid *out, struct err *e);

/* The first pid of an agent run, from the agent's own pid and start time
 * (any values): in [1, TASK_UPID_NUM_MAX]. */
uint32_t task_pid_seed(uint32_t agent_pid, uint32_t agent_start);

/* Returns the next pid of the sequence kept in *counter (seeded with
 * task_pid_seed) and advances it; 0x7FFFFFFF is followed by 1, so a pid
 * is never 0 and repeats only after 2^31 - 1 tasks. An out-of-range
 * *counter is treated as 1. Not thread-safe: one caller owns the counter. */
uint32_t task_next_pid(uint32_t *counter);

/* This process's start time in clock ticks since boot (field 22 of
 * /proc/self/stat, Proxmox's pstart), masked to 31 bits. */
int task_pstart_self(uint32_t *out, struct err *e);

/* Whether type is one of Proxmox's worker type names (qmstart, vzcreate,
 * qmigrate, ...), which scripts filter with typefilter=. */
bool task_type_known(const char *type);

/* ------------------------------------------------------------------------
 * Task logs: one file per task in a per-node directory that the caller
 * creates. Line 1 says what the task does (Ansible shows only the first
 * line of a failed task's log); the last line is "TASK OK" or "TASK ERROR:
 * <message>". A log without such a last line belongs to a task that never
 * finished (the agent died): its exit status is "unexpected status". */
#define TASK_LOG_LINE_MAX      4096 /* bytes per line; longer lines are cut */
#define TASK_LOG_APPEND_MAX    (1024 * 1024) /* formatted text per append */
#define TASK_LOG_READ_MAX      (64 * 1024 * 1024) /* bytes read of a log */
#define TASK_LOG_LIMIT_DEFAULT 50
#define TASK_LOG_LIMIT_MAX     50000
#define TASK_LOG_NAME_MAX      160 /* file name bytes, without NUL */

/* The log file's name for a UPID (into out, TASK_LOG_NAME_MAX + 1 bytes
 * always fit): the UPID with ':' written as '_', and every byte outside
 * [A-Za-z0-9@!.,+=-] (including '_' and '%') as %XX, so the name is
 * reversible and distinct UPIDs get distinct names:
 *   UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:root@pam!ci:
 *   UPID_pve1_00001234_0001ABCD_5F3E2A10_qmstart_100_root@pam!ci_
 * A name that would exceed TASK_LOG_NAME_MAX keeps its first 143 bytes and
 * ends in "~" and the 16 hex digits of the UPID's 64-bit FNV-1a hash ('~'
 * never appears otherwise). -EINVAL when upid does not parse, -ERANGE when
 * out is too small. */
int task_log_file_name(const char *upid, char *out, size_t size, struct err *e);

/* An open log being written; used by one thread at a time. */
struct task_log;

/* Creates the log of upid in dir (O_EXCL, mode 0640 less the umask) and
 * writes first_line (what the task does). -EEXIST when the log exists,
 * -EINVAL when upid does not parse. On success *out is the caller's, until
 * task_log_finish or task_log_close. */
int task_log_create(const char *dir, const char *upid, const char *first_line,
                    struct task_log **out, struct err *e);

/* Appends the formatted text as one line, or several when it holds
 * newlines (a single trailing newline and a '\r' before each newline are
 * dropped). Lines longer than TASK_LOG_LINE_MAX bytes are cut there, text
 * beyond TASK_LOG_APPEND_MAX is dropped, NUL bytes become spaces. All the
 * lines of one call go out in one write(2), so a reader sees whole lines.
 * 0 or a negative errno (-ENOMEM, write's). */
int task_log_append(struct task_log *l, const char *fmt, ...)
        CAIRN_PRINTF(2, 3);

/* Writes the last line — "TASK OK" when error is NULL, else "TASK ERROR: "
 * and the first line of error ("unknown error" when that is empty) — then
 * closes and frees l, whatever happens. 0 or the first write/close error. */
int task_log_finish(struct task_log *l, const char *error);

/* Closes and frees l without a last line: the abort path, or a test's
 * crash. l may be NULL. */
void task_log_close(struct task_log *l);

/* Reads lines [start, start + limit) of upid's log (start counts from 0,
 * as Proxmox's `start`) into a new array of Proxmox's {"n": 1-based line
 * number, "t": text} objects; *total is the number of lines in the log. A
 * last line without a newline counts. limit 0 means TASK_LOG_LIMIT_DEFAULT;
 * larger than TASK_LOG_LIMIT_MAX is clamped. start beyond the end gives [].
 * Only the first TASK_LOG_READ_MAX bytes are read; lines are cut at
 * TASK_LOG_LINE_MAX; bytes that are not UTF-8 read as '?'. -ENOENT when
 * there is no such log, -EINVAL when upid does not parse or the log is not
 * a regular file, -ENOMEM. On success *lines is the caller's. */
int task_log_read(const char *dir, const char *upid, unsigned start,
                  unsigned limit, json_t **lines, unsigned *total,
                  struct err *e);

/* Copies the log's last line (without its newline; "" for an empty log)
 * into out, cut to fit. Reads only the tail of the file, so a last line
 * longer than TASK_LOG_LINE_MAX (which cairn never writes) comes back as
 * its end. Errors as task_log_read's. */
int task_log_last_line(const char *dir, const char *upid, char *out,
                       size_t size, struct err *e);

/* Proxmox's exitstatus from a log's last line: "TASK OK" -> "OK",
 * "TASK ERROR: msg" -> "msg", "TASK WARNINGS: 3" -> "WARNINGS: 3",
 * anything else (a task that never finished) -> "unexpected status". out
 * gets the text, cut to fit (size > 0). */
void task_exitstatus_from_last_line(const char *last_line, char *out,
                                    size_t size);

#endif /* CAIRN_NODE_TASK_H */
