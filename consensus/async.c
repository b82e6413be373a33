/* The agent's door to the database: one DB thread that runs blocking client
 * operations submitted from the loop, and the change feed that polls
 * cluster.revision from it.
 *
 * The DB thread is a cairn pool of one thread named "db", never libuv's
 * threadpool: dqlite and raft use that one for connects and log segments,
 * and a slow query parked there would stall Raft (DESIGN.md §3). One thread
 * also serialises every statement on the one client, which is what a
 * blocking client needs and what dqlite wants (one writer at a time).
 *
 * Life of a feed:
 *
 *   start ──> running ──(db_feed_stop)──> stopping ──> freed
 *               │  ^                          │
 *          tick │  │ done                     │ waits until both timers
 *               v  │                          │ are closed and no poll
 *             polling                         │ is in flight
 *
 * A tick submits one poll unless the previous one is still in flight (the
 * tick is skipped: a slow leader must not pile polls up in the queue). So
 * at most one op of a feed exists at any time and it lives inside the feed;
 * the feed is freed only after that op's done callback ran. */
#include <errno.h>

#include "consensus/consensus.h"

struct db {
	uv_loop_t *loop;
	struct db_client *client; /* used on the DB thread only */
	struct pool *pool;        /* one thread, "db" */
	unsigned feeds_running;   /* started and not yet stopped */
	bool is_closing;
	void (*close_cb)(struct db *db);
	void *data;
};

void db_set_data(struct db *db, void *data)
{
	db->data = data;
}

void *db_get_data(const struct db *db)
{
	return db->data;
}

/* ------------------------------------------------------------------------
 * Operations. */

/* On the DB thread. */
static void op_work(struct pool_work *w)
{
	struct db_op *op = CAIRN_CONTAINER_OF(w, struct db_op, work);

	op->status = op->run(op->db->client, op, &op->err);
	/* A failure always says what failed, even if run forgot to. */
	if (op->status < 0 && op->err.code == 0)
		err_set(&op->err, op->status, "db operation failed (%d)",
		        op->status);
}

/* On the loop. */
static void op_done(struct pool_work *w, int status)
{
	struct db_op *op = CAIRN_CONTAINER_OF(w, struct db_op, work);

	if (status == -ECANCELED) {
		op->status = err_set(&op->err, -ECANCELED,
		                     "db: closed before the operation ran");
	}
	op->done(op, op->status);
}

int db_open(uv_loop_t *loop, const struct db_client_config *c,
            unsigned max_queued, struct db **out, struct err *e)
{
	struct db *db;
	int rv;

	db = mem_calloc(1, sizeof *db);
	if (db == NULL)
		return err_set(e, -ENOMEM, "db: out of memory");
	db->loop = loop;
	rv = db_client_create(c, &db->client, e);
	if (rv != 0)
		goto err_after_alloc;
	rv = pool_create(loop, "db", 1, max_queued, &db->pool, e);
	if (rv != 0)
		goto err_after_client;
	pool_set_data(db->pool, db);
	*out = db;
	return 0;

err_after_client:
	db_client_destroy(db->client);
err_after_alloc:
	mem_free(db);
	return err_wrap(e, "db: open");
}

int db_submit(struct db *db, struct db_op *op, db_op_fn run, db_op_done_cb done)
{
	CAIRN_ASSERT(run != NULL && done != NULL);
	op->run = run;
	op->done = done;
	op->db = db;
	op->status = 0;
	err_clear(&op->err);
	return pool_submit(db->pool, &op->work, op_work, op_done);
}

/* The thread has been joined, so the client has no other user left. */
static void on_pool_closed(struct pool *p)
{
	struct db *db = pool_get_data(p);

	db_client_destroy(db->client);
	if (db->close_cb != NULL)
		db->close_cb(db);
	mem_free(db);
}

void db_close(struct db *db, void (*cb)(struct db *db))
{
	/* A running feed would tick into a freed db: the agent stops its
	 * feeds first. A stopped feed may still wait for its last poll;
	 * the pool delivers that op's done callback before on_pool_closed,
	 * and the feed frees itself there. */
	CAIRN_ASSERT(db->feeds_running == 0);
	CAIRN_ASSERT(!db->is_closing);
	db->is_closing = true;
	db->close_cb = cb;
	pool_close(db->pool, on_pool_closed);
}

/* ------------------------------------------------------------------------
 * The change feed. */

struct db_feed {
	struct db *db;
	db_feed_cb cb;
	void *data;
	uint64_t revision; /* the newest revision reported to cb */
	uint64_t notified; /* the newest one pushed by db_feed_notify */
	uint64_t polled;   /* written by the poll on the DB thread */
	uv_timer_t poll_timer;
	uv_timer_t notify_timer; /* reports a push from its own callback */
	struct db_op op;
	unsigned handles_open;
	bool is_polling; /* op is submitted and its done has not run */
	bool is_stopped;
	bool is_failing; /* the last poll failed (logged once, not per tick) */
};

static void feed_maybe_free(struct db_feed *f)
{
	if (f->is_stopped && f->handles_open == 0 && !f->is_polling)
		mem_free(f);
}

/* Revisions only move forward: a poll that was answered before a write and
 * delivered after the push of that write must not go back. */
static void feed_report(struct db_feed *f, uint64_t revision)
{
	if (f->is_stopped || revision <= f->revision)
		return;
	f->revision = revision;
	/* cb may stop the feed; freeing waits for the handles to close, so
	 * f stays valid until this callback returns. */
	f->cb(f, revision, f->data);
}

static int feed_poll(struct db_client *c, struct db_op *op, struct err *e)
{
	struct db_feed *f = op->data;

	return db_revision(c, &f->polled, e);
}

static void feed_polled(struct db_op *op, int status)
{
	struct db_feed *f = op->data;

	f->is_polling = false;
	if (f->is_stopped) {
		feed_maybe_free(f);
		return;
	}
	if (status != 0) {
		if (!f->is_failing)
			LOG_WARN("db", "revision poll failed", "error=\"%s\"",
			         op->err.msg);
		f->is_failing = true;
		return;
	}
	if (f->is_failing)
		LOG_INFO("db", "revision poll works again", "revision=%llu",
		         (unsigned long long)f->polled);
	f->is_failing = false;
	feed_report(f, f->polled);
}

static void on_poll_timer(uv_timer_t *t)
{
	struct db_feed *f = CAIRN_CONTAINER_OF(t, struct db_feed, poll_timer);
	int rv;

	if (f->is_stopped || f->is_polling)
		return;
	f->op.data = f;
	rv = db_submit(f->db, &f->op, feed_poll, feed_polled);
	if (rv != 0) {
		/* The queue is full of other work: the next tick tries
		 * again. */
		LOG_DEBUG("db", "revision poll skipped", "error=%d", rv);
		return;
	}
	f->is_polling = true;
}

static void on_notify_timer(uv_timer_t *t)
{
	struct db_feed *f = CAIRN_CONTAINER_OF(t, struct db_feed, notify_timer);

	feed_report(f, f->notified);
}

static void on_feed_handle_closed(uv_handle_t *h)
{
	struct db_feed *f = h->data;

	f->handles_open--;
	feed_maybe_free(f);
}

int db_feed_start(struct db *db, unsigned interval_ms, db_feed_cb cb,
                  void *data, struct db_feed **out, struct err *e)
{
	struct db_feed *f;
	int rv;

	if (interval_ms == 0)
		return err_set(e, -EINVAL, "db feed: interval must be > 0 ms");
	CAIRN_ASSERT(cb != NULL && !db->is_closing);
	f = mem_calloc(1, sizeof *f);
	if (f == NULL)
		return err_set(e, -ENOMEM, "db feed: out of memory");
	f->db = db;
	f->cb = cb;
	f->data = data;
	/* uv_timer_init cannot fail on a live loop (it only links the
	 * handle), so both handles are open from here on. */
	rv = uv_timer_init(db->loop, &f->poll_timer);
	CAIRN_ASSERT(rv == 0);
	rv = uv_timer_init(db->loop, &f->notify_timer);
	CAIRN_ASSERT(rv == 0);
	f->poll_timer.data = f;
	f->notify_timer.data = f;
	f->handles_open = 2;
	/* The first poll goes out at once: a consumer wants to know where it
	 * stands without waiting a whole interval. */
	rv = uv_timer_start(&f->poll_timer, on_poll_timer, 0, interval_ms);
	CAIRN_ASSERT(rv == 0);
	db->feeds_running++;
	*out = f;
	return 0;
}

uint64_t db_feed_revision(const struct db_feed *f)
{
	return f->revision;
}

void db_feed_notify(struct db_feed *f, uint64_t revision)
{
	if (f->is_stopped || revision <= f->revision || revision <= f->notified)
		return;
	f->notified = revision;
	/* Reported from the loop's next timer pass, never from inside this
	 * call: the caller may be in the middle of handling the event. */
	uv_timer_start(&f->notify_timer, on_notify_timer, 0, 0);
}

void db_feed_poll_soon(struct db_feed *f)
{
	if (f->is_stopped || f->is_polling)
		return;
	/* Restarts the repeating timer with a first tick now. */
	uv_timer_start(&f->poll_timer, on_poll_timer, 0,
	               uv_timer_get_repeat(&f->poll_timer));
}

void db_feed_stop(struct db_feed *f)
{
	CAIRN_ASSERT(!f->is_stopped);
	f->is_stopped = true;
	f->db->feeds_running--;
	uv_timer_stop(&f->poll_timer);
	uv_timer_stop(&f->notify_timer);
	uv_close((uv_handle_t *)&f->poll_timer, on_feed_handle_closed);
	uv_close((uv_handle_t *)&f->notify_timer, on_feed_handle_closed);
}
