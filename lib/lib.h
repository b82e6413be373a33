/* lib: cairn's base layer — errors, logging, checked allocation, bounded
 * buffers, intrusive lists, a clock seam, JSON helpers, a key = value config
 * parser, child processes and cairn's own thread pools.
 *
 * This header is the module's only door: other modules include nothing else
 * from lib/. Nothing here owns a process-wide resource except the logger. */
#ifndef CAIRN_LIB_H
#define CAIRN_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#define CAIRN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CAIRN_CONTAINER_OF(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))
#define CAIRN_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Invariants stay checked in release builds: a cluster manager that goes on
 * in a state it believes impossible does more harm than one that stops. */
#define CAIRN_ASSERT(cond)                                             \
	do {                                                           \
		if (!(cond))                                           \
			cairn__assert_fail(#cond, __FILE__, __LINE__); \
	} while (0)
void cairn__assert_fail(const char *what, const char *file, int line)
        __attribute__((noreturn));

/* ------------------------------------------------------------------------
 * Errors.
 *
 * Functions that can fail return 0 or a negative errno value and describe
 * the failure in a caller-owned struct err. Each layer may wrap the message
 * with its own context, outermost first:
 *   "start vm 100: storage ceph: rbd_open: No such file or directory".
 * A message longer than ERR_MSG_MAX is truncated with "...", never
 * overflowed. */
#define ERR_MSG_MAX 512

struct err {
	int code;              /* negative errno, 0 when clear */
	char msg[ERR_MSG_MAX]; /* NUL-terminated, "" when clear */
};

void err_clear(struct err *e);
/* Sets the message and code (code < 0) and returns code, so that
 * `return err_set(e, -EINVAL, "bad port %d", p);` reads naturally.
 * e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...) CAIRN_PRINTF(3, 4);
/* err_set with ": strerror(-code)" appended. */
int err_sys(struct err *e, int code, const char *fmt, ...) CAIRN_PRINTF(3, 4);
/* Prefixes the message with "CONTEXT: " and returns e->code. */
int err_wrap(struct err *e, const char *fmt, ...) CAIRN_PRINTF(2, 3);

/* ------------------------------------------------------------------------
 * Logging: one line per event, `key=value` pairs an operator can grep:
 *   ts=2026-11-29T17:20:01.123Z level=warn comp=ha msg="lease expired"
 * age_ms=10012 LOG_* macros check the level before evaluating their arguments,
 * so debug tracing costs one comparison when off. Thread-safe: a line is
 * written with one write(2). */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

/* The sink receives each finished line (with its '\n'); the default writes
 * to stderr. Tests install their own to read what was logged. */
typedef void (*log_sink_cb)(void *data, enum log_level level, const char *line,
                            size_t len);

extern enum log_level log_threshold;
void log_set_level(enum log_level level);
/* Parses "debug|info|warn|error" (any case); returns 0 or -EINVAL. */
int log_level_parse(const char *text, enum log_level *out);
const char *log_level_name(enum log_level level);
void log_set_sink(log_sink_cb sink, void *data); /* NULL restores stderr */
/* Sends lines to FD instead of stderr (the daemon's log file). */
void log_set_fd(int fd);
/* msg is quoted and escaped; fields (may be NULL) is a printf format for
 * the trailing `key=value` pairs, written as given. */
void log_write(enum log_level level, const char *comp, const char *msg,
               const char *fields, ...) CAIRN_PRINTF(4, 5);

#define LOG_AT(level, comp, ...)                                 \
	do {                                                     \
		if ((level) >= log_threshold)                    \
			log_write((level), (comp), __VA_ARGS__); \
	} while (0)
/* LOG_INFO("node", "started", "pid=%d", pid); LOG_WARN("db", "slow", NULL); */
#define LOG_DEBUG(comp, ...) LOG_AT(LOG_LEVEL_DEBUG, comp, __VA_ARGS__)
#define LOG_INFO(comp, ...)  LOG_AT(LOG_LEVEL_INFO, comp, __VA_ARGS__)
#define LOG_WARN(comp, ...)  LOG_AT(LOG_LEVEL_WARN, comp, __VA_ARGS__)
#define LOG_ERROR(comp, ...) LOG_AT(LOG_LEVEL_ERROR, comp, __VA_ARGS__)

/* ------------------------------------------------------------------------
 * Checked allocation. These return NULL on failure (never abort), check
 * size arithmetic for overflow, and can be made to fail on purpose so that
 * tests sweep every allocation failure path (mem_fail_after). Memory from
 * them is released with mem_free (or free: they are malloc underneath). */
void *mem_alloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc_array(void *ptr, size_t count, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t max);
void mem_free(void *ptr);
/* Test seam: after N more successful allocations, every further one fails
 * until mem_fail_reset(). N = 0 fails the next one. Process-wide. */
void mem_fail_after(long n);
void mem_fail_reset(void);

/* ------------------------------------------------------------------------
 * Growable byte buffers with a hard cap. `data` is always NUL-terminated
 * (the terminator is not counted in len) so text can be used in place.
 * Growth past `max` fails with -E2BIG and leaves the buffer unchanged. */
struct buf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) CAIRN_PRINTF(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) CAIRN_PRINTF(2, 0);
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Hands the data to the caller (to mem_free) and resets the buffer. */
char *buf_steal(struct buf *b);

/* ------------------------------------------------------------------------
 * Intrusive circular doubly-linked lists. A struct list is both the head
 * and the link embedded in each element; an initialised head points to
 * itself. */
struct list {
	struct list *prev;
	struct list *next;
};

static inline void list_init(struct list *l)
{
	l->prev = l;
	l->next = l;
}
static inline bool list_is_empty(const struct list *l)
{
	return l->next == l;
}
static inline void list_insert_tail(struct list *head, struct list *item)
{
	item->next = head;
	item->prev = head->prev;
	head->prev->next = item;
	head->prev = item;
}
static inline void list_insert_head(struct list *head, struct list *item)
{
	item->prev = head;
	item->next = head->next;
	head->next->prev = item;
	head->next = item;
}
/* Unlinks item and re-initialises it, so removing twice is harmless. */
static inline void list_remove(struct list *item)
{
	item->prev->next = item->next;
	item->next->prev = item->prev;
	list_init(item);
}
static inline struct list *list_pop_head(struct list *head)
{
	struct list *item;

	if (list_is_empty(head))
		return NULL;
	item = head->next;
	list_remove(item);
	return item;
}
size_t list_count(const struct list *head);

#define LIST_FOREACH(item, head) \
	for ((item) = (head)->next; (item) != (head); (item) = (item)->next)
/* Safe against removal of `item` in the body. */
#define LIST_FOREACH_SAFE(item, tmp, head)                                  \
	for ((item) = (head)->next, (tmp) = (item)->next; (item) != (head); \
	     (item) = (tmp), (tmp) = (item)->next)

/* ------------------------------------------------------------------------
 * Clock seam. Code that decides on time takes a struct clock *; the daemon
 * passes clock_real(), tests a fake they advance by hand. Monotonic time is
 * for timeouts and ages, wall time only for display and timestamps. */
struct clock {
	uint64_t (*mono_ms)(
	        struct clock *c); /* monotonic, ms, arbitrary epoch */
	int64_t (*wall_ms)(struct clock *c); /* Unix time, ms */
};

struct clock *clock_real(void);
static inline uint64_t clock_mono_ms(struct clock *c)
{
	return c->mono_ms(c);
}
static inline int64_t clock_wall_ms(struct clock *c)
{
	return c->wall_ms(c);
}

struct clock_fake {
	struct clock clock; /* pass &fake.clock */
	uint64_t mono;
	int64_t wall;
};

void clock_fake_init(struct clock_fake *f, uint64_t mono_ms, int64_t wall_ms);
/* Moves both clocks forward by ms. */
void clock_fake_advance(struct clock_fake *f, uint64_t ms);

/* ------------------------------------------------------------------------
 * JSON helpers over jansson, for input from the network: size and nesting
 * are bounded before jansson sees the text, and getters name the key that
 * was missing or of the wrong type. */
#define JSON_DEFAULT_MAX_DEPTH 32

/* Parses text (len bytes, need not be NUL-terminated) into a new reference.
 * Fails with -E2BIG above max_len, -EINVAL when nested deeper than
 * max_depth or not valid JSON (the message says where). */
int json_parse_bounded(const char *text, size_t len, size_t max_len,
                       int max_depth, json_t **out, struct err *e);
/* Getters: -ENOENT when the key is absent (or null), -EINVAL when it has
 * another type, -ERANGE when an integer is out of [min, max]; *out is left
 * alone on failure. Strings are borrowed. */
int json_get_str(const json_t *obj, const char *key, const char **out,
                 struct err *e);
int json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max,
                 int64_t *out, struct err *e);
/* Accepts true/false and 0/1, as Proxmox clients send either. */
int json_get_bool(const json_t *obj, const char *key, bool *out, struct err *e);
/* "an object", "a string", ... for error messages; "nothing" for NULL. */
const char *json_type_name(const json_t *v);
/* Compact serialisation with keys in insertion order, into a new string
 * (mem_free it), or NULL on allocation failure. */
char *json_to_text(const json_t *value);

/* ------------------------------------------------------------------------
 * `key = value` configuration files, checked against a table of keys.
 *
 * Syntax: one setting per line; `#` starts a comment at the start of a line;
 * blank lines are ignored; spaces around key and value are trimmed; a value
 * may be quoted with "..." to keep outer spaces. Every error names the file
 * and line ("/etc/cairn/cairnd.conf:12: unknown key 'prot'"). Unknown keys,
 * repeated keys, values out of range and lines over CONF_LINE_MAX are
 * errors: a typo must not silently fall back to a default. */
#define CONF_LINE_MAX 1024
#define CONF_FILE_MAX (256 * 1024)

enum conf_type {
	CONF_STRING,  /* printable text, at most `max` bytes */
	CONF_PATH,    /* absolute path, no control characters */
	CONF_INT,     /* decimal integer in [min, max] */
	CONF_BOOL,    /* 0/1, yes/no, true/false, on/off */
	CONF_ADDRESS, /* host:port, [v6]:port; port in 1..65535 */
	CONF_ENUM,    /* one of the '|'-separated words in `choices` */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;       /* offsetof() the field in the target struct */
	const char *def;     /* default, in file syntax; NULL: none */
	int64_t min, max;    /* CONF_INT range; CONF_STRING max length */
	const char *choices; /* CONF_ENUM */
	const char *help;
};

/* A table ends with an entry whose name is NULL. Out-of-range integers
 * fail with -ERANGE, other bad values with -EINVAL. CONF_STRING with max 0
 * has no length limit.
 *
 * Field types by conf_type: CONF_STRING/PATH/ADDRESS/ENUM: char * (owned by
 * the struct, freed with conf_free); CONF_INT: int64_t; CONF_BOOL: bool. */

/* Applies every default, then parses text (len bytes) named `source` in
 * messages. On failure the struct holds defaults plus the settings before
 * the bad line and must still be released with conf_free. */
int conf_parse(const struct conf_key *keys, void *target, const char *source,
               const char *text, size_t len, struct err *e);
int conf_load(const struct conf_key *keys, void *target, const char *path,
              struct err *e);
void conf_free(const struct conf_key *keys, void *target);
/* Writes the effective settings, one `key = value` per line. */
int conf_dump(const struct conf_key *keys, const void *target, struct buf *out);

/* ------------------------------------------------------------------------
 * Files and processes. */

/* Opens (creating, 0600) PATH and takes an exclusive flock on it without
 * waiting. The fd is close-on-exec, so children never inherit the lock.
 * Writes our pid into the file. -EWOULDBLOCK when another process holds it
 * (the message names that process's pid when known). Returns the fd. */
int file_lock_exclusive(const char *path, struct err *e);
/* mkdir -p with MODE for every created component. */
int file_mkdir_p(const char *path, mode_t mode, struct err *e);
/* Appends a whole file to out (NUL-terminated); fails with -E2BIG when
 * out would hold more than max bytes, counting what it held before. */
int file_read_all(const char *path, size_t max, struct buf *out, struct err *e);

/* A new file that appears whole or not at all: written through fd, it
 * gets its name only at file_new_commit, and never over a file that
 * exists. It is opened O_TMPFILE, so until then it has no name at all
 * and not even a crash can leave a piece of it; where the file system has
 * no O_TMPFILE (or with FILE_NEW_NAMED, for tests) it is a hidden
 * ".tmp-<16 random hex>-<name>" in the same directory, which
 * file_new_discard removes. Blocking: call these off the loop. */
#define FILE_NEW_NAMED 1u
struct file_new {
	int fd;          /* read and write here; -1 once closed */
	char tmp[4200];  /* the temporary name; "" for O_TMPFILE */
	char path[4200]; /* the name it gets */
};
/* Opens a new file for dir/name with mode (the umask applies). Fails
 * with -EEXIST when dir/name exists (checked again at commit), with
 * -ENAMETOOLONG, or as open(2) does; f is then closed. */
int file_new_open(struct file_new *f, const char *dir, const char *name,
                  mode_t mode, unsigned flags, struct err *e);
/* fsync, then the name (link: -EEXIST when it appeared meanwhile, the
 * file is then discarded), the temporary name removed, the directory
 * synced, fd closed. On any failure the file is discarded. */
int file_new_commit(struct file_new *f, struct err *e);
/* Closes and removes what is left; harmless when closed or committed. */
void file_new_discard(struct file_new *f);

struct proc_options {
	const char *const *argv; /* argv[0] is the program; PATH is searched */
	const char *const *envp; /* NULL: inherit the environment */
	const char *cwd;         /* NULL: inherit */
	int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null */
	bool new_session; /* setsid(): detach from our process group */
};

/* Starts a child with a clean signal state: empty signal mask and every
 * signal at its default disposition, whatever the daemon blocks or ignores.
 * No shell is involved. Only the three stdio fds are passed on; every other
 * fd of ours is close-on-exec. The caller reaps the child (waitpid, or the
 * loop's SIGCHLD handling). */
int proc_spawn(const struct proc_options *opts, pid_t *pid, struct err *e);

/* ------------------------------------------------------------------------
 * cairn's own thread pools.
 *
 * Blocking work (librbd admin calls, password hashing, qemu-img, fsync-heavy
 * writes) runs here and never in libuv's process-wide threadpool, which is
 * left to dqlite and raft: filling that with slow calls stalls Raft, and a
 * stalled Raft makes healthy nodes fence themselves (DESIGN.md §3).
 *
 * A pool has a name (for logs and thread names), a fixed number of threads
 * and a bound on queued work. Work runs on a pool thread; its done callback
 * runs on the loop thread, exactly once, and never from inside the call that
 * submitted it. The request struct is caller-allocated and must stay valid
 * until done runs. */
struct pool;
struct pool_work;

typedef void (*pool_work_cb)(struct pool_work *w);
/* status: 0 when work ran, -ECANCELED when the pool closed before it ran. */
typedef void (*pool_done_cb)(struct pool_work *w, int status);
typedef void (*pool_close_cb)(struct pool *p);

struct pool_work {
	void *data; /* user data */
	/* private */
	pool_work_cb work;
	pool_done_cb done;
	struct pool *pool;
	int status;
	struct list link;
};

#define POOL_NAME_MAX 15 /* Linux thread names are 15 bytes */

/* Creates the pool and starts its threads. threads >= 1, max_queued >= 1
 * (work waiting for a thread; running work does not count). */
int pool_create(uv_loop_t *loop, const char *name, unsigned threads,
                unsigned max_queued, struct pool **out, struct err *e);
/* Queues work. -EAGAIN when max_queued works already wait (saturation: the
 * caller answers "busy" instead of queueing without bound), -ESHUTDOWN
 * after pool_close. */
int pool_submit(struct pool *p, struct pool_work *w, pool_work_cb work,
                pool_done_cb done);
/* Stops accepting work; queued work completes with -ECANCELED, running work
 * finishes; then threads are joined, the loop handle is closed, and cb (may
 * be NULL) runs on the loop. The pool is freed after cb returns. */
void pool_close(struct pool *p, pool_close_cb cb);
const char *pool_name(const struct pool *p);
/* User data for the close callback; NULL until set. */
void pool_set_data(struct pool *p, void *data);
void *pool_get_data(const struct pool *p);
unsigned pool_queued(const struct pool *p);

/* ------------------------------------------------------------------------
 * Version, filled in by configure. */
const char *cairn_version(void); /* "0.1.0" */
const char *cairn_repoid(void);  /* short commit id, or "unknown" */

#endif /* CAIRN_LIB_H */
