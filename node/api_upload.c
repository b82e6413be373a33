/* cairn.Storage/Upload: a file of any size streamed over the RPC into a dir
 * storage of this node (`cairn storage upload`), the way past the REST
 * API's 1 MiB body limit (DESIGN.md §6). The protocol is described with
 * its messages in proto/storage.proto.
 *
 * One upload's states (set_state is the only function that changes them):
 *
 *   CHECKING ──ready sent──> RECEIVING ──all bytes written──> FINISHING
 *      │                         │                                │
 *      │ refused                 │ write error, client gone,      │ linked
 *      │                         │ bytes over the size, idle,     v
 *      │                         │ aborted, node stopping        DONE
 *      v                         v                                │
 *    FAILED <────────────────────┴──────── error (checksum...) ───┘
 *
 * CHECKING: an api_call of its own (api_call_run_rpc) authenticates the
 *   caller exactly as cairn.Api/Remote or cairn.Api/Call would, checks
 *   Datastore.AllocateTemplate on /storage/{storage} as POST .../upload
 *   does and the target as it does (api_storage_upload_target); then the
 *   storage pool checks what needs the file system (the file does not
 *   exist, room for `size` bytes) and opens the file the bytes go to; the
 *   imgcopy task is registered; only then the client hears "ready". A
 *   refused client has sent nothing and nothing was created.
 * RECEIVING: DATA messages are copied into `in`; one write at a time runs
 *   on the storage pool (never on the loop, never in libuv's threadpool),
 *   from `out`. Window goes back to the client (rpc_call_consume) only for
 *   bytes written: a disk slower than the network slows the client down,
 *   and an upload holds at most a window and a message
 *   (RPC_INITIAL_WINDOW + RPC_FRAME_MAX_DEFAULT) in memory. The checksum
 *   trails the writes on a pool thread of its own, reading back what is
 *   written: hashing in the write's work held the window back while it
 *   hashed, and took 1.6 times as long (sha256 of 1 GiB here).
 * FINISHING: once every byte is written and hashed, on the pool: the
 *   checksum compared, fsync, the file linked into place (link: never
 *   over a file that appeared meanwhile), the directory synced. The
 *   client going away does not stop it: every byte is here.
 * FAILED: the client is answered with the first error, the file is closed
 *   and, when it had a name, unlinked; then the task ends with the error.
 *
 * The file is a lib/ file_new: opened O_TMPFILE, it has no name until it
 * is linked in, so neither a failure nor a crash of the agent can leave a
 * partial file behind; on file systems without O_TMPFILE it has a hidden
 * temporary name (.tmp-<random>-<name>, like the REST upload's) that
 * every failure unlinks.
 *
 * Who holds an upload (it is freed when none does): the api_call until it
 * answered (has_api), a pool work (is_working, is_hashing), the task from
 * its registration until it ended (has_task), the RPC call once taken
 * from its node_req until its on_done (call). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "node/api_internal.h"
#include "node/task.h"
#include "store/store.h"

#define UPLOAD_SIZE_MAX  ((uint64_t)16 << 40) /* 16 TiB */
#define UPLOAD_CHUNK_MAX ((uint32_t)1 << 20)  /* said in "ready" */
#define UPLOAD_BUF_MAX   ((size_t)RPC_INITIAL_WINDOW + RPC_FRAME_MAX_DEFAULT)
#define UPLOAD_IDLE_MS   60000 /* no byte from the client for this long */
#define CREDENTIAL_MAX   4096
#define UPLOAD_PATH_MAX  1600
#define HASH_CHUNK       ((size_t)1 << 20)
#define HASH_WORK_MAX    ((uint64_t)64 << 20) /* a pool work's share */
#define UPLOADS_MAX      8                    /* at once on a node */

enum upload_state {
	UPLOAD_CHECKING,
	UPLOAD_RECEIVING,
	UPLOAD_FINISHING,
	UPLOAD_DONE,
	UPLOAD_FAILED,
};

struct upload {
	enum upload_state state;
	struct node *n; /* outlives every upload */
	char node_name[64];
	char peer[300]; /* for logs */
	/* holders (see the top of the file) */
	struct node_req *r;    /* CHECKING: until answered or taken */
	struct api_call *c;    /* CHECKING: until it answered and ended */
	bool has_api;          /* c->ctx is us: on_reply will run */
	bool is_api_ok;        /* c answered the UPID */
	bool has_task;         /* registered (or registering) */
	struct api_task *task; /* started, not yet ended */
	struct rpc_call *call; /* taken, until its on_done */
	bool is_working;       /* a pool work runs */
	bool is_hashing;       /* the checksum's pool work runs */
	bool is_cleanup_due;   /* the pool's queue was full: retry */
	uint64_t reserved;     /* of n->upload_reserved, ours */
	uint64_t avail;        /* the file system's room, from the checks */
	bool is_freeing;
	/* the request */
	char storage[STORE_ID_MAX + 1];
	char content[16];
	char filename[STORE_FILE_MAX + 1];
	char checksum[129]; /* lowercase hex; "" none */
	char algorithm[16];
	uint64_t size;
	/* the target */
	char root[UPLOAD_PATH_MAX];
	char volid[STORE_VOLID_MAX + 1];
	struct file_new file;      /* fd -1: none */
	struct rpc_digest *digest; /* NULL without a checksum */
	char upid[TASK_UPID_MAX + 1];
	/* receiving */
	struct buf in;  /* received, not yet written (the loop's) */
	struct buf out; /* being written (the pool's while is_working) */
	uint64_t received, written;
	bool is_half_closed;
	uv_timer_t idle;
	uint64_t last_data_ms;
	/* the pool's work and its result */
	struct pool_work work;
	int (*job)(struct upload *u, struct err *e);
	int rv;
	struct err err;
	/* the checksum trails the writes: it reads back what is written (the
	 * page cache has it) on a pool thread of its own, so that the window
	 * goes back as soon as bytes are written, not once they are hashed */
	struct pool_work hash_work;
	char *hash_buf; /* HASH_CHUNK bytes, with the digest */
	uint64_t hashed, hash_to;
	int hash_rv;
	struct err hash_err;
	/* the end */
	enum rpc_status pending_status; /* for the api_call's next failure */
	char error[ERR_MSG_MAX];        /* the first failure's */
};

static void settle(struct upload *u);
static void pump(struct upload *u);

static const char *state_name(enum upload_state s)
{
	static const char *const names[] = {"checking", "receiving",
	                                    "finishing", "done", "failed"};

	return names[s];
}

static void set_state(struct upload *u, enum upload_state to)
{
	enum upload_state from = u->state;
	bool is_legal = (from == UPLOAD_CHECKING &&
	                 (to == UPLOAD_RECEIVING || to == UPLOAD_FAILED)) ||
	                (from == UPLOAD_RECEIVING &&
	                 (to == UPLOAD_FINISHING || to == UPLOAD_FAILED)) ||
	                (from == UPLOAD_FINISHING &&
	                 (to == UPLOAD_DONE || to == UPLOAD_FAILED));

	if (!is_legal)
		LOG_ERROR("upload", "illegal state change", "from=%s to=%s",
		          state_name(from), state_name(to));
	CAIRN_ASSERT(is_legal);
	u->state = to;
}

/* Client text for a log line: quotes, backslashes and control bytes
 * become '?', so a file name cannot forge log fields or lines. */
static const char *log_safe(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < size; i++)
		out[i] = in[i] < 0x20 || in[i] == 0x7f || in[i] == '"' ||
		                         in[i] == '\\'
		                 ? '?'
		                 : in[i];
	out[i] = '\0';
	return out;
}

static void kick(struct upload *u)
{
	if (u->call != NULL)
		rpc_conn_kick(rpc_session_conn(rpc_call_session(u->call)));
}

/* -------------------------------------------------------------- the end */

static void on_idle_closed(uv_handle_t *h)
{
	struct upload *u = h->data;

	u->n->nuploads--;
	u->n->upload_reserved -= u->reserved;
	buf_free(&u->in);
	buf_free(&u->out);
	rpc_digest_free(u->digest);
	mem_free(u->hash_buf);
	mem_free(u);
}

/* Frees u once nothing holds it; the memory goes in the close callback,
 * so u stays valid until control returns to the loop. */
static void maybe_free(struct upload *u)
{
	if (u->is_freeing || u->has_api || u->has_task || u->call != NULL ||
	    u->is_working || u->is_hashing || u->is_cleanup_due)
		return;
	CAIRN_ASSERT(u->state == UPLOAD_DONE || u->state == UPLOAD_FAILED);
	CAIRN_ASSERT(u->r == NULL && u->file.fd < 0);
	u->is_freeing = true;
	uv_close((uv_handle_t *)&u->idle, on_idle_closed);
}

/* The first failure: the client hears it (once), then settle cleans up. */
static void fail(struct upload *u, enum rpc_status status, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);
static void fail(struct upload *u, enum rpc_status status, const char *fmt, ...)
{
	char id[STORE_ID_MAX + 1], name[STORE_FILE_MAX + 1], why[ERR_MSG_MAX];
	struct err e;
	va_list ap;

	if (u->state == UPLOAD_FAILED || u->state == UPLOAD_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(u->error, sizeof u->error, fmt, ap);
	va_end(ap);
	if (status == RPC_STATUS_OK) /* a failure is never OK */
		status = RPC_STATUS_UNKNOWN;
	set_state(u, UPLOAD_FAILED);
	uv_timer_stop(&u->idle);
	LOG_INFO("upload", "failed",
	         "storage=%s filename=\"%s\" peer=\"%s\" received=%" PRIu64
	         " size=%" PRIu64 " status=%s error=\"%s\"",
	         log_safe(u->storage, id, sizeof id),
	         log_safe(u->filename, name, sizeof name), u->peer, u->received,
	         u->size, rpc_status_name(status),
	         log_safe(u->error, why, sizeof why));
	if (u->r != NULL) {
		node_req_fail(u->r, status, "%s", u->error);
		u->r = NULL;
	} else if (u->call != NULL) {
		if (rpc_call_respond(u->call, status, u->error, NULL, 0, &e) !=
		    0)
			LOG_DEBUG("upload", "cannot answer", "error=\"%s\"",
			          e.msg);
		kick(u);
	}
}

/* ------------------------------------------------------ the pool's work */

static void on_work(struct pool_work *w)
{
	struct upload *u = w->data;

	err_clear(&u->err);
	u->rv = u->job(u, &u->err);
}

static void on_work_done(struct pool_work *w, int status);

/* Runs job on the storage pool; done follows on the loop. -ESHUTDOWN when
 * the pool is closed (the node stops). */
static int submit(struct upload *u, int (*job)(struct upload *u, struct err *e))
{
	int rv;

	CAIRN_ASSERT(!u->is_working);
	u->job = job;
	u->work.data = u;
	rv = api_pool_submit(u->n->storage_pool, &u->work, on_work,
	                     on_work_done);
	if (rv == 0)
		u->is_working = true;
	return rv;
}

/* Why a submit failed, for the client. */
static const char *busy_why(int rv)
{
	return rv == -ESHUTDOWN ? "the node is stopping"
	                        : "the node's storage pool is busy, retry";
}

/* Closes the file and removes its name, if it has one. Blocking: on the
 * pool, or on the loop once the pool is closed (the node stops). */
static int job_cleanup(struct upload *u, struct err *e)
{
	(void)e;
	file_new_discard(&u->file);
	return 0;
}

/* CHECKING, on the pool: the checks that need the file system, then the
 * file the bytes go to. */
static int job_prepare(struct upload *u, struct err *e)
{
	char path[UPLOAD_PATH_MAX], *slash;
	struct store_volid v;
	struct statvfs vfs;
	uint64_t avail;
	int rv;

	rv = store_volid_parse(u->volid, false, &v, e);
	if (rv == 0)
		rv = file_mkdir_p(u->root, 0755, e);
	if (rv == 0)
		rv = store_dir_activate(u->root, e);
	if (rv == 0)
		rv = store_dir_path(u->root, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	slash = strrchr(path, '/');
	CAIRN_ASSERT(slash != NULL);
	*slash = '\0';
	if (statvfs(path, &vfs) != 0)
		return err_sys(e, -errno, "%s", path);
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	u->avail = avail;
	if (avail < u->size)
		return err_set(e, -ENOSPC,
		               "not enough room on storage '%s': %" PRIu64
		               " bytes needed, %" PRIu64 " available",
		               u->storage, u->size, avail);
	rv = file_new_open(&u->file, path, slash + 1, 0644, 0, e);
	if (rv == -EEXIST)
		err_set(e, rv, "%s already exists", u->volid);
	return rv;
}

/* RECEIVING, on the pool: out to the file. */
static int job_write(struct upload *u, struct err *e)
{
	size_t done = 0;

	while (done < u->out.len) {
		ssize_t n = write(u->file.fd, u->out.data + done,
		                  u->out.len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(e, -errno, "writing %s", u->volid);
		done += (size_t)n;
	}
	return 0;
}

/* RECEIVING, on a second pool thread: the checksum of the bytes from
 * hashed to hash_to, which are written (a write at the file's position
 * and a pread behind it do not disturb each other). */
static void on_hash(struct pool_work *w)
{
	struct upload *u = w->data;
	uint64_t at = u->hashed;
	size_t want;
	ssize_t n;

	err_clear(&u->hash_err);
	u->hash_rv = 0;
	while (at < u->hash_to && u->hash_rv == 0) {
		want = u->hash_to - at < HASH_CHUNK ? (size_t)(u->hash_to - at)
		                                    : HASH_CHUNK;
		n = pread(u->file.fd, u->hash_buf, want, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			u->hash_rv =
			        n < 0 ? err_sys(&u->hash_err, -errno,
			                        "reading %s back", u->volid)
			              : err_set(&u->hash_err, -EIO,
			                        "reading %s back: short",
			                        u->volid);
			break;
		}
		u->hash_rv = rpc_digest_update(u->digest, u->hash_buf,
		                               (size_t)n, &u->hash_err);
		at += (size_t)n;
	}
}

/* FINISHING, on the pool: checked, synced, linked into place. */
static int job_finish(struct upload *u, struct err *e)
{
	char got[129];
	int rv;

	if (u->digest != NULL) {
		rv = rpc_digest_final_hex(u->digest, got, sizeof got, e);
		if (rv != 0)
			return rv;
		if (strcmp(got, u->checksum) != 0)
			return err_set(e, -EBADMSG,
			               "checksum mismatch: got '%s' instead of "
			               "'%s'",
			               got, u->checksum);
	}
	rv = file_new_commit(&u->file, e);
	if (rv == -EEXIST)
		err_set(e, rv, "%s already exists", u->volid);
	return rv;
}

/* ---------------------------------------------------------- receiving */

static void on_idle(uv_timer_t *t)
{
	struct upload *u = t->data;
	uint64_t quiet = api_now_ms() - u->last_data_ms;

	if (u->state != UPLOAD_RECEIVING || u->is_half_closed)
		return; /* the client said all it had */
	if (u->is_working || quiet < UPLOAD_IDLE_MS) {
		/* waiting for the disk is not the client's idleness */
		uv_timer_start(&u->idle, on_idle, UPLOAD_IDLE_MS, 0);
		return;
	}
	fail(u, RPC_STATUS_DEADLINE_EXCEEDED,
	     "no data from the client for %u s", UPLOAD_IDLE_MS / 1000);
	settle(u);
}

static void on_message(struct rpc_call *call, const void *data, size_t len)
{
	struct upload *u = call->data;

	if (u->state != UPLOAD_RECEIVING)
		return; /* failed: the RESPONSE is on its way */
	if (len > u->size - u->received) {
		fail(u, RPC_STATUS_OUT_OF_RANGE,
		     "the client sent more than the %" PRIu64
		     " bytes it announced",
		     u->size);
		settle(u);
		return;
	}
	if (buf_append(&u->in, data, len) != 0) {
		fail(u, RPC_STATUS_RESOURCE_EXHAUSTED,
		     "the client sent more than its window");
		settle(u);
		return;
	}
	u->received += len;
	u->last_data_ms = api_now_ms();
	pump(u);
}

static void on_half_close(struct rpc_call *call)
{
	struct upload *u = call->data;

	u->is_half_closed = true;
	pump(u);
}

static void on_call_done(struct rpc_call *call, enum rpc_status status,
                         const char *message, const void *payload, size_t len)
{
	struct upload *u = call->data;

	(void)payload;
	(void)len;
	u->call = NULL;
	/* FINISHING: every byte is here; the upload completes without an
	 * audience (the task tells how it went). */
	if (u->state == UPLOAD_RECEIVING)
		fail(u, status, "the client went away: %s",
		     message[0] != '\0' ? message : rpc_status_name(status));
	settle(u);
	maybe_free(u);
}

static const struct rpc_call_cbs upload_cbs = {
        .on_message = on_message,
        .on_half_close = on_half_close,
        .on_done = on_call_done,
};

/* Starts the next write, or the finish once every byte is written. */
static void pump(struct upload *u)
{
	struct buf swap;
	int rv;

	if (u->state != UPLOAD_RECEIVING || u->is_working)
		return;
	if (u->in.len > 0) {
		swap = u->out;
		u->out = u->in;
		u->in = swap;
		buf_reset(&u->in);
		if ((rv = submit(u, job_write)) != 0) {
			fail(u, RPC_STATUS_UNAVAILABLE, "%s", busy_why(rv));
			settle(u);
		}
		return;
	}
	if (!u->is_half_closed)
		return;
	if (u->received == u->size && u->digest != NULL && u->hashed < u->size)
		return; /* hash_done pumps again */
	if (u->received != u->size) {
		fail(u, RPC_STATUS_INVALID_ARGUMENT,
		     "the client sent %" PRIu64 " bytes of the %" PRIu64
		     " it announced",
		     u->received, u->size);
		settle(u);
		return;
	}
	set_state(u, UPLOAD_FINISHING);
	uv_timer_stop(&u->idle);
	if ((rv = submit(u, job_finish)) != 0) {
		fail(u, RPC_STATUS_UNAVAILABLE, "%s", busy_why(rv));
		settle(u);
	}
}

static void finished(struct upload *u)
{
	Cairn__StorageStreamUploadResponse resp =
	        CAIRN__STORAGE_STREAM_UPLOAD_RESPONSE__INIT;
	uint8_t payload[STORE_VOLID_MAX + TASK_UPID_MAX + 64];
	size_t len;
	struct err e;

	set_state(u, UPLOAD_DONE);
	LOG_INFO("upload", "done",
	         "volid=%s peer=\"%s\" size=%" PRIu64 " upid=%s", u->volid,
	         u->peer, u->size, u->upid);
	if (u->task != NULL) {
		if (u->digest != NULL)
			api_task_log(u->task, "%s checksum verified",
			             u->algorithm);
		api_task_log(u->task, "wrote %" PRIu64 " bytes to %s", u->size,
		             u->volid);
		api_task_end(u->task, NULL);
		u->task = NULL;
		u->has_task = false;
	}
	if (u->call == NULL)
		return;
	resp.volid = u->volid;
	resp.has_size = true;
	resp.size = u->size;
	resp.upid = u->upid;
	len = protobuf_c_message_get_packed_size(&resp.base);
	CAIRN_ASSERT(len <= sizeof payload);
	protobuf_c_message_pack(&resp.base, payload);
	if (rpc_call_respond(u->call, RPC_STATUS_OK, NULL, payload, len, &e) !=
	    0)
		LOG_DEBUG("upload", "cannot answer", "error=\"%s\"", e.msg);
	kick(u);
}

static void on_cleanup_retry(uv_timer_t *t)
{
	struct upload *u = t->data;

	u->is_cleanup_due = false;
	settle(u);
	maybe_free(u);
}

/* After any event of a failed upload: once no work runs, the file goes,
 * then the task ends with the error. */
static void settle(struct upload *u)
{
	int rv;

	if (u->state != UPLOAD_FAILED || u->is_working || u->is_hashing ||
	    u->is_cleanup_due)
		return;
	if (u->file.fd >= 0 || u->file.tmp[0] != '\0') {
		rv = submit(u, job_cleanup);
		if (rv == 0)
			return;
		if (rv != -ESHUTDOWN) {
			/* The queue is full: closing a large unlinked file
			 * can take seconds, never on the loop while the pool
			 * runs. */
			u->is_cleanup_due = true;
			uv_timer_start(&u->idle, on_cleanup_retry, 100, 0);
			return;
		}
		job_cleanup(u, NULL); /* the pool is closed: here */
	}
	if (u->task != NULL) {
		api_task_end(u->task, u->error);
		u->task = NULL;
		u->has_task = false;
	}
}

static void on_hash_done(struct pool_work *w, int status);

/* Hashes what is written and not yet hashed, one pool work at a time. */
static void hash_more(struct upload *u)
{
	if (u->digest == NULL || u->is_hashing || u->hashed >= u->written ||
	    u->state != UPLOAD_RECEIVING)
		return;
	/* bounded, so a lagging checksum never holds a pool thread long */
	u->hash_to = u->written - u->hashed > HASH_WORK_MAX
	                     ? u->hashed + HASH_WORK_MAX
	                     : u->written;
	u->hash_work.data = u;
	if (api_pool_submit(u->n->storage_pool, &u->hash_work, on_hash,
	                    on_hash_done) != 0) {
		fail(u, RPC_STATUS_UNAVAILABLE, "the node is stopping");
		return;
	}
	u->is_hashing = true;
}

static void on_hash_done(struct pool_work *w, int status)
{
	struct upload *u = w->data;

	u->is_hashing = false;
	if (status != 0)
		fail(u, RPC_STATUS_UNAVAILABLE, "the node is stopping");
	else if (u->hash_rv != 0)
		fail(u, RPC_STATUS_INTERNAL, "%s", u->hash_err.msg);
	else
		u->hashed = u->hash_to;
	hash_more(u);
	pump(u);
	settle(u);
	maybe_free(u);
}

/* ----------------------------------------------------- the task's part */

static void prepared(struct upload *u);

static void on_work_done(struct pool_work *w, int status)
{
	struct upload *u = w->data;
	size_t n;
	struct err e;

	u->is_working = false;
	if (status != 0 && u->job != job_cleanup) {
		u->rv = -ESHUTDOWN;
		err_set(&u->err, -ESHUTDOWN, "the node is stopping");
	}
	if (u->job == job_cleanup) {
		if (status != 0)
			job_cleanup(u, NULL);
	} else if (u->job == job_prepare) {
		prepared(u);
	} else if (u->state != UPLOAD_RECEIVING &&
	           u->state != UPLOAD_FINISHING) {
		/* failed meanwhile: the work's result does not matter */
	} else if (u->rv != 0) {
		fail(u,
		     u->rv == -EEXIST    ? RPC_STATUS_ALREADY_EXISTS
		     : u->rv == -EBADMSG ? RPC_STATUS_DATA_LOSS
		     : u->rv == -ENOSPC  ? RPC_STATUS_RESOURCE_EXHAUSTED
		                         : node_status_from_errno(u->rv),
		     "%s", u->err.msg);
	} else if (u->job == job_write) {
		n = u->out.len;
		u->written += n;
		buf_reset(&u->out);
		/* The backpressure: window only for bytes on disk. */
		if (u->call != NULL && rpc_call_consume(u->call, n, &e) != 0)
			LOG_WARN("upload", "cannot grant window",
			         "error=\"%s\"", e.msg);
		kick(u);
		hash_more(u);
		pump(u);
	} else {
		finished(u);
	}
	settle(u);
	maybe_free(u);
}

static void task_start(struct api_task *t);
static void task_data_free(void *data);

static void on_abort(struct api_task *t)
{
	struct upload *u = api_task_data(t);
	const char *by = api_task_aborted_by(t);

	/* FINISHING only syncs and links what arrived: let it. */
	if (u->state == UPLOAD_FINISHING)
		return;
	if (by != NULL)
		fail(u, RPC_STATUS_ABORTED, "aborted by %s", by);
	else
		fail(u, RPC_STATUS_UNAVAILABLE, "the node is stopping");
	settle(u);
}

/* CHECKING, back from the pool: the task, or the refusal. */
static void prepared(struct upload *u)
{
	struct api_call *c = u->c;
	char what[STORE_VOLID_MAX + 400];

	if (u->state == UPLOAD_FAILED) {
		/* c answered already (its deadline): end it */
		u->c = NULL;
		api_call_fail(c, -ECANCELED, "failed meanwhile");
		return;
	}
	if (u->rv != 0) {
		u->pending_status = u->rv == -EEXIST ? RPC_STATUS_ALREADY_EXISTS
		                    : u->rv == -ENOSPC
		                            ? RPC_STATUS_RESOURCE_EXHAUSTED
		                            : node_status_from_errno(u->rv);
		u->c = NULL;
		api_call_done(c, u->rv, &u->err);
		return;
	}
	/* Uploads checked at once all saw the same room: each takes its
	 * share (from the loop, where the count lives). */
	if (u->n->upload_reserved + u->size > u->avail) {
		u->pending_status = RPC_STATUS_RESOURCE_EXHAUSTED;
		u->c = NULL;
		api_call_fail(
		        c, -ENOSPC,
		        "not enough room on storage '%s': %" PRIu64
		        " bytes needed, %" PRIu64 " available of which %" PRIu64
		        " go to uploads in progress",
		        u->storage, u->size, u->avail, u->n->upload_reserved);
		return;
	}
	u->reserved = u->size;
	u->n->upload_reserved += u->reserved;
	snprintf(what, sizeof what,
	         "upload of %" PRIu64 " bytes to %s (streamed from %s)",
	         u->size, u->volid, u->peer);
	u->has_task = true;
	u->c = NULL; /* the task's from here */
	if (api_task_start(c, "imgcopy", "", what, task_start, u,
	                   task_data_free) == NULL)
		u->has_task = false; /* c failed: on_reply ran */
}

/* The task is registered and c answered its UPID: say "ready". */
static void task_start(struct api_task *t)
{
	Cairn__StorageStreamUploadReady ready =
	        CAIRN__STORAGE_STREAM_UPLOAD_READY__INIT;
	struct upload *u = api_task_data(t);
	uint8_t payload[STORE_VOLID_MAX + TASK_UPID_MAX + 64];
	size_t len;
	struct err e;

	u->task = t;
	snprintf(u->upid, sizeof u->upid, "%s", api_task_upid(t));
	api_task_set_busy(t, true);
	api_task_on_abort(t, on_abort);
	if (u->state == UPLOAD_FAILED) {
		settle(u);
		maybe_free(u);
		return;
	}
	u->call = node_req_take(u->r, &upload_cbs, u);
	u->r = NULL;
	if (u->call == NULL) {
		fail(u, RPC_STATUS_CANCELLED, "the client went away");
		settle(u);
		maybe_free(u);
		return;
	}
	/* The client waits for "ready": what it sent before was dropped
	 * unread (or it already said it had no more). */
	if (u->call->recv_unconsumed > 0 ||
	    u->call->state == RPC__CALL_HALF_CLOSED_REMOTE) {
		fail(u, RPC_STATUS_FAILED_PRECONDITION,
		     "the client sent data before the server said ready");
		settle(u);
		return;
	}
	ready.upid = u->upid;
	ready.volid = u->volid;
	ready.has_chunk_max = true;
	ready.chunk_max = UPLOAD_CHUNK_MAX;
	len = protobuf_c_message_get_packed_size(&ready.base);
	CAIRN_ASSERT(len <= sizeof payload);
	protobuf_c_message_pack(&ready.base, payload);
	set_state(u, UPLOAD_RECEIVING);
	if (rpc_call_send(u->call, payload, len, &e) != 0) {
		fail(u, RPC_STATUS_INTERNAL, "cannot say ready: %s", e.msg);
		settle(u);
		return;
	}
	kick(u);
	u->last_data_ms = api_now_ms();
	uv_timer_start(&u->idle, on_idle, UPLOAD_IDLE_MS, 0);
	LOG_INFO("upload", "receiving",
	         "volid=%s peer=\"%s\" size=%" PRIu64 " upid=%s", u->volid,
	         u->peer, u->size, u->upid);
}

/* The task never started (its row could not be written, or the node
 * stops): whoever knows why answers the client. */
static void task_data_free(void *data)
{
	struct upload *u = data;

	u->has_task = false;
	if (u->is_api_ok) /* else on_reply follows, with the reason */
		fail(u, RPC_STATUS_UNAVAILABLE, "the node is stopping");
	settle(u);
	maybe_free(u);
}

/* ------------------------------------------------------- checking */

static enum rpc_status status_of_http(int http_status)
{
	switch (http_status) {
	case 400:
		return RPC_STATUS_INVALID_ARGUMENT;
	case 401:
		return RPC_STATUS_UNAUTHENTICATED;
	case 403:
		return RPC_STATUS_PERMISSION_DENIED;
	case 404:
		return RPC_STATUS_NOT_FOUND;
	case 501:
		return RPC_STATUS_UNIMPLEMENTED;
	case 503:
		return RPC_STATUS_UNAVAILABLE;
	case 504:
		return RPC_STATUS_DEADLINE_EXCEEDED;
	default:
		return RPC_STATUS_INTERNAL;
	}
}

/* The api_call's answer: the UPID (the task starts next), or why not. */
static void on_reply(struct api_call *c)
{
	struct upload *u = c->ctx;
	const struct api_reply *reply = &c->reply;
	char message[ERR_MSG_MAX];
	json_t *body = NULL, *errors, *why;
	const char *name, *text;
	struct err e;
	size_t off;

	c->ctx = NULL;
	c->fwd = NULL; /* r is ours to answer */
	u->has_api = false;
	if (reply->status < 400) {
		u->is_api_ok = true;
		return;
	}
	/* The whole message, and for a 400 which parameter and why. */
	snprintf(message, sizeof message, "%s", reply->reason);
	if (reply->body != NULL &&
	    json_parse_bounded(reply->body, reply->body_len, API_BODY_MAX, 8,
	                       &body, &e) == 0) {
		text = json_string_value(json_object_get(body, "message"));
		if (text != NULL)
			snprintf(message, sizeof message, "%s", text);
		errors = json_object_get(body, "errors");
		off = 0;
		json_object_foreach(errors, name, why)
		{
			if (off == 0)
				off = (size_t)snprintf(message, sizeof message,
				                       "%s", "");
			if (off < sizeof message)
				off += (size_t)snprintf(
				        message + off, sizeof message - off,
				        "%s%s: %s", off > 0 ? "; " : "", name,
				        json_is_string(why)
				                ? json_string_value(why)
				                : "invalid");
		}
		json_decref(body);
	}
	/* trailing newline of Proxmox-style messages */
	off = strlen(message);
	while (off > 0 && message[off - 1] == '\n')
		message[--off] = '\0';
	fail(u,
	     u->pending_status != RPC_STATUS_OK ? u->pending_status
	                                        : status_of_http(reply->status),
	     "%s", message);
	settle(u);
	maybe_free(u);
}

static bool is_hex(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		      (*s >= 'A' && *s <= 'F')))
			return false;
	}
	return true;
}

/* The route the api_call runs once the caller may upload to the storage. */
static void route_stream_upload(struct api_call *c)
{
	const Cairn__StorageUploadRequest *q = (const void *)c->msg;
	struct upload *u = c->ctx;
	struct err e;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (!api_storage_upload_target(c, q, u->root, sizeof u->root, u->volid,
	                               sizeof u->volid))
		return;
	if (u->algorithm[0] != '\0') {
		u->hash_buf = mem_alloc(HASH_CHUNK);
		if (u->hash_buf == NULL) {
			api_call_fail(c, -ENOMEM, "out of memory");
			return;
		}
		if (rpc_digest_new(u->algorithm, &u->digest, &e) != 0) {
			api_param_error(c, "checksum-algorithm",
			                "one of md5, sha1, sha224, sha256, "
			                "sha384, sha512");
			return;
		}
		if (u->checksum[0] == '\0' ||
		    strlen(u->checksum) != rpc_digest_hex_len(u->digest) ||
		    !is_hex(u->checksum)) {
			api_param_error(c, "checksum", "%zu hex digits for %s",
			                rpc_digest_hex_len(u->digest),
			                u->algorithm);
			return;
		}
		for (i = 0; u->checksum[i] != '\0'; i++)
			if (u->checksum[i] >= 'A' && u->checksum[i] <= 'F')
				u->checksum[i] =
				        (char)(u->checksum[i] - 'A' + 'a');
	}
	u->c = c;
	if (submit(u, job_prepare) != 0) {
		u->c = NULL;
		api_call_fail(c, -EBUSY, "the storage pool is closed, retry");
	}
}

static const struct route_def def_stream_upload = {
        &cairn__storage_upload_request__descriptor,
        route_stream_upload,
        false,
        {0, "/storage/{storage}", "Datastore.AllocateTemplate"},
};
static const struct api_route stream_upload_route = {
        API_POST, "cairn.Storage/Upload", &def_stream_upload};

/* Copies a bounded text field; false when it is too long. */
static bool field_copy(char *out, size_t size, const char *in)
{
	size_t n = in != NULL ? strlen(in) : 0;

	if (n >= size)
		return false;
	memcpy(out, in != NULL ? in : "", n + 1);
	return true;
}

void node_storage_upload(struct node_req *r)
{
	const Cairn__StorageStreamUploadRequest *q = (const void *)r->request;
	struct upload *u;
	json_t *params;
	struct err e;

	if (q->storage == NULL || q->content == NULL || q->filename == NULL ||
	    !q->has_size) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "storage, content, filename and size are "
		              "required");
		return;
	}
	if (q->size > UPLOAD_SIZE_MAX) {
		node_req_fail(r, RPC_STATUS_OUT_OF_RANGE,
		              "size: at most %" PRIu64 " bytes (16 TiB)",
		              UPLOAD_SIZE_MAX);
		return;
	}
	if ((q->checksum != NULL) != (q->checksum_algorithm != NULL)) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "checksum and checksum-algorithm go together");
		return;
	}
	if (q->principal != NULL && strlen(q->principal) > CREDENTIAL_MAX) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "principal: too long");
		return;
	}
	if (r->node->nuploads >= UPLOADS_MAX) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "%u uploads are running on node %s: retry when "
		              "one has ended",
		              UPLOADS_MAX, r->node->config->node_name);
		return;
	}
	u = mem_calloc(1, sizeof *u);
	if (u == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	if (!field_copy(u->storage, sizeof u->storage, q->storage) ||
	    !field_copy(u->content, sizeof u->content, q->content) ||
	    !field_copy(u->filename, sizeof u->filename, q->filename) ||
	    !field_copy(u->checksum, sizeof u->checksum, q->checksum) ||
	    !field_copy(u->algorithm, sizeof u->algorithm,
	                q->checksum_algorithm)) {
		mem_free(u);
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "storage, content, filename, checksum or "
		              "checksum-algorithm too long");
		return;
	}
	u->n = r->node;
	u->n->nuploads++; /* until on_idle_closed */
	u->r = r;
	u->file.fd = -1;
	u->size = q->size;
	snprintf(u->node_name, sizeof u->node_name, "%s",
	         r->node->config->node_name);
	snprintf(u->peer, sizeof u->peer, "%s",
	         r->peer->is_local             ? "the local socket"
	         : r->peer->address[0] != '\0' ? r->peer->address
	                                       : r->peer->name);
	buf_init(&u->in, UPLOAD_BUF_MAX);
	buf_init(&u->out, UPLOAD_BUF_MAX);
	uv_timer_init(r->node->loop, &u->idle);
	u->idle.data = u;
	params = json_pack("{s:s, s:s, s:s}", "storage", u->storage, "content",
	                   u->content, "filename", u->filename);
	if (params != NULL && u->checksum[0] != '\0')
		json_object_set_new(params, "checksum",
		                    json_string(u->checksum));
	if (params != NULL && u->algorithm[0] != '\0')
		json_object_set_new(params, "checksum-algorithm",
		                    json_string(u->algorithm));
	u->has_api = true;
	if (params == NULL)
		err_set(&e, -EINVAL,
		        "storage, content and filename must be UTF-8 text");
	if (params == NULL ||
	    api_call_run_rpc(r, &stream_upload_route, params, q->principal,
	                     on_reply, u, &e) != 0) {
		u->has_api = false;
		fail(u,
		     e.code == -ESHUTDOWN ? RPC_STATUS_UNAVAILABLE
		                          : node_status_from_errno(e.code),
		     "%s", e.msg);
		maybe_free(u);
	}
	/* u may be gone: the api_call may have answered already */
}
