/* cairn's own bounded thread pools, reporting back to the loop by uv_async_t.
 *
 * Life of a work item:
 *
 *   submit ──> queue ──(thread picks)──> running ──> finished ──> done cb
 *                │                                      ^
 *                └──────(pool_close: -ECANCELED)────────┘
 *
 * `queue` and `finished` are guarded by `mutex`. Threads only move items
 * from queue to finished; the loop thread alone calls done callbacks, which
 * it does from the async handle, so a callback never runs inside
 * pool_submit. Closing is over when every thread has exited and nothing is
 * left to deliver; then the threads are joined (they have returned already)
 * and the async handle is closed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "lib.h"

struct pool {
	uv_loop_t *loop;
	uv_async_t async;
	char name[POOL_NAME_MAX + 1];
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	struct list queue;    /* waiting for a thread */
	struct list finished; /* waiting for its done callback */
	unsigned max_queued;
	unsigned queued; /* length of queue */
	unsigned nthreads;
	unsigned alive; /* threads not yet returned */
	pthread_t *threads;
	bool is_closing;
	pool_close_cb close_cb;
	void *data;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct pool_work *w;
	struct list *item;

	pthread_mutex_lock(&p->mutex);
	for (;;) {
		while (list_is_empty(&p->queue) && !p->is_closing)
			pthread_cond_wait(&p->cond, &p->mutex);
		item = list_pop_head(&p->queue);
		if (item == NULL)
			break; /* closing, nothing left */
		p->queued--;
		pthread_mutex_unlock(&p->mutex);

		w = CAIRN_CONTAINER_OF(item, struct pool_work, link);
		w->work(w);
		w->status = 0;

		pthread_mutex_lock(&p->mutex);
		list_insert_tail(&p->finished, &w->link);
		uv_async_send(&p->async);
	}
	p->alive--;
	pthread_mutex_unlock(&p->mutex);
	uv_async_send(&p->async);
	return NULL;
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct pool *p = CAIRN_CONTAINER_OF(handle, struct pool, async);

	if (p->close_cb != NULL)
		p->close_cb(p);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mutex);
	mem_free(p->threads);
	mem_free(p);
}

static void on_async(uv_async_t *async)
{
	struct pool *p = CAIRN_CONTAINER_OF(async, struct pool, async);
	struct list batch, *item;
	bool is_over;
	unsigned i;

	list_init(&batch);
	pthread_mutex_lock(&p->mutex);
	while ((item = list_pop_head(&p->finished)) != NULL)
		list_insert_tail(&batch, item);
	pthread_mutex_unlock(&p->mutex);

	while ((item = list_pop_head(&batch)) != NULL) {
		struct pool_work *w =
		        CAIRN_CONTAINER_OF(item, struct pool_work, link);

		w->done(w, w->status);
	}

	pthread_mutex_lock(&p->mutex);
	is_over = p->is_closing && p->alive == 0 && list_is_empty(&p->finished);
	pthread_mutex_unlock(&p->mutex);
	if (!is_over || uv_is_closing((uv_handle_t *)&p->async))
		return;
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	uv_close((uv_handle_t *)&p->async, on_handle_closed);
}

int pool_create(uv_loop_t *loop, const char *name, unsigned threads,
                unsigned max_queued, struct pool **out, struct err *e)
{
	sigset_t all, saved;
	struct pool *p;
	unsigned i;
	int rv;

	if (name == NULL || name[0] == '\0' || strlen(name) > POOL_NAME_MAX)
		return err_set(e, -EINVAL, "pool name must be 1 to %d bytes",
		               POOL_NAME_MAX);
	if (threads < 1 || max_queued < 1)
		return err_set(e, -EINVAL,
		               "pool %s: needs at least one thread "
		               "and room for one queued work",
		               name);
	p = mem_calloc(1, sizeof *p);
	if (p == NULL)
		return err_set(e, -ENOMEM, "pool %s: out of memory", name);
	p->threads = mem_calloc(threads, sizeof *p->threads);
	if (p->threads == NULL) {
		rv = err_set(e, -ENOMEM, "pool %s: out of memory", name);
		goto err_after_alloc;
	}
	snprintf(p->name, sizeof p->name, "%s", name);
	p->loop = loop;
	p->max_queued = max_queued;
	list_init(&p->queue);
	list_init(&p->finished);
	pthread_mutex_init(&p->mutex, NULL);
	pthread_cond_init(&p->cond, NULL);
	rv = uv_async_init(loop, &p->async, on_async);
	if (rv != 0) {
		rv = err_set(e, rv, "pool %s: uv_async_init: %s", name,
		             uv_strerror(rv));
		goto err_after_sync;
	}

	/* Workers block every signal: signals are the loop thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	for (i = 0; i < threads; i++) {
		rv = pthread_create(&p->threads[i], NULL, worker, p);
		if (rv != 0)
			break;
		pthread_setname_np(p->threads[i], p->name);
		p->nthreads++;
		p->alive++;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rv != 0) {
		err_sys(e, -rv, "pool %s: start thread %u of %u", name, i + 1,
		        threads);
		/* Let the started threads exit, then free through close. */
		pool_close(p, NULL);
		return e != NULL ? e->code : -rv;
	}
	*out = p;
	return 0;

err_after_sync:
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mutex);
	mem_free(p->threads);
err_after_alloc:
	mem_free(p);
	return rv;
}

int pool_submit(struct pool *p, struct pool_work *w, pool_work_cb work,
                pool_done_cb done)
{
	int rv = 0;

	CAIRN_ASSERT(work != NULL && done != NULL);
	w->work = work;
	w->done = done;
	w->pool = p;
	w->status = 0;
	list_init(&w->link);
	pthread_mutex_lock(&p->mutex);
	if (p->is_closing) {
		rv = -ESHUTDOWN;
	} else if (p->queued >= p->max_queued) {
		rv = -EAGAIN;
	} else {
		list_insert_tail(&p->queue, &w->link);
		p->queued++;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->mutex);
	return rv;
}

void pool_close(struct pool *p, pool_close_cb cb)
{
	struct list *item;

	pthread_mutex_lock(&p->mutex);
	CAIRN_ASSERT(!p->is_closing);
	p->is_closing = true;
	p->close_cb = cb;
	while ((item = list_pop_head(&p->queue)) != NULL) {
		struct pool_work *w =
		        CAIRN_CONTAINER_OF(item, struct pool_work, link);

		w->status = -ECANCELED;
		list_insert_tail(&p->finished, item);
	}
	p->queued = 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mutex);
	/* Finish from the loop even when no thread is left to wake it. */
	uv_async_send(&p->async);
}

const char *pool_name(const struct pool *p)
{
	return p->name;
}

unsigned pool_queued(const struct pool *p)
{
	unsigned n;

	pthread_mutex_lock((pthread_mutex_t *)&p->mutex);
	n = p->queued;
	pthread_mutex_unlock((pthread_mutex_t *)&p->mutex);
	return n;
}

void pool_set_data(struct pool *p, void *data)
{
	p->data = data;
}

void *pool_get_data(const struct pool *p)
{
	return p->data;
}
