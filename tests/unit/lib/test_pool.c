/* Unit tests for cairn's thread pools: callbacks, saturation and close. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Long enough for a slow sanitizer run, short enough that a broken pool
 * fails the test instead of hanging it. */
#define WAIT_MS  3000
#define MAX_JOBS 512

/* A gate that blocked work waits on; opening it lets the work finish. A
 * timed wait keeps a bug from hanging the test. */
struct gate {
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	bool open;
	int started;  /* works that reached the gate */
	int arrived;  /* for the barrier test */
	int timeouts; /* waits that gave up */
};

/* A pool_work with what the tests observe about it. */
struct job {
	struct pool_work w;
	pthread_t work_thread;
	pthread_t done_thread;
	atomic_int work_calls;
	int done_calls;
	int status;
	bool done_during_submit;
	int payload; /* written by work, read by done */
	char thread_name[32];
	struct job *resubmit; /* done submits this one */
	int resubmit_rc;
	bool close_in_done; /* done closes the pool */
};

struct fixture {
	uv_loop_t loop;
	uv_timer_t watchdog;
	bool timed_out;
	struct pool *pool;
	bool close_started; /* pool_close was called */
	int closed;         /* close callbacks seen */
	int done_before_close;
	struct gate gate;
	struct err e;
	/* Requests live here, not on a test's stack: when an assertion
	 * fails, teardown still closes the pool, which calls done on them. */
	struct job jobs[MAX_JOBS];
	int used;
};

static struct fixture f;

/* n zeroed requests from the fixture. */
static struct job *new_jobs(int n)
{
	struct job *j;

	assert_true(f.used + n <= MAX_JOBS);
	j = &f.jobs[f.used];
	f.used += n;
	return j;
}

static bool submitting;
static int dones;

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mutex);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mutex);
}

/* Waits (on the test thread) until `n` works have started. */
static bool gate_wait_started(struct gate *g, int n)
{
	struct timespec deadline;
	int rc = 0;

	deadline_in(&deadline, WAIT_MS);
	pthread_mutex_lock(&g->mutex);
	while (g->started < n && rc == 0)
		rc = pthread_cond_timedwait(&g->cond, &g->mutex, &deadline);
	rc = g->started >= n;
	pthread_mutex_unlock(&g->mutex);
	return rc;
}

static int gate_timeouts(struct gate *g)
{
	int n;

	pthread_mutex_lock(&g->mutex);
	n = g->timeouts;
	pthread_mutex_unlock(&g->mutex);
	return n;
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	f.timed_out = true;
	uv_stop(&f.loop);
}

static void on_close(struct pool *p)
{
	(void)p;
	f.closed++;
	f.done_before_close = dones;
}

/* Runs the loop until *counter reaches want, or WAIT_MS pass. */
static bool run_until(const int *counter, int want)
{
	f.timed_out = false;
	uv_timer_start(&f.watchdog, on_watchdog, WAIT_MS, 0);
	while (*counter < want && !f.timed_out)
		uv_run(&f.loop, UV_RUN_ONCE);
	uv_timer_stop(&f.watchdog);
	return *counter >= want;
}

static int setup_pool(void **state)
{
	(void)state;
	memset(&f, 0, sizeof(f));
	if (uv_loop_init(&f.loop) != 0)
		return -1;
	uv_timer_init(&f.loop, &f.watchdog);
	pthread_mutex_init(&f.gate.mutex, NULL);
	pthread_cond_init(&f.gate.cond, NULL);
	err_clear(&f.e);
	submitting = false;
	dones = 0;
	return 0;
}

static int teardown_pool(void **state)
{
	int rc;

	(void)state;
	/* Let any blocked work go so the pool can close. */
	gate_open(&f.gate);
	if (f.pool != NULL && !f.close_started) {
		pool_close(f.pool, on_close);
		f.close_started = true;
	}
	if (f.close_started)
		run_until(&f.closed, 1);
	uv_close((uv_handle_t *)&f.watchdog, NULL);
	for (int i = 0; i < 10; i++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	rc = uv_loop_close(&f.loop);
	pthread_cond_destroy(&f.gate.cond);
	pthread_mutex_destroy(&f.gate.mutex);
	if (rc != 0) {
		print_error("uv_loop_close: %s (a handle was left open)\n",
		            uv_strerror(rc));
		return -1;
	}
	return 0;
}

static void create(const char *name, unsigned threads, unsigned max_queued)
{
	int rc = pool_create(&f.loop, name, threads, max_queued, &f.pool, &f.e);

	if (rc != 0)
		print_error("pool_create: %s\n", f.e.msg);
	assert_int_equal(rc, 0);
	assert_non_null(f.pool);
}

/* pool_close, remembered so that teardown never closes twice. */
static void begin_close(pool_close_cb cb)
{
	pool_close(f.pool, cb);
	f.close_started = true;
}

static void close_pool(void)
{
	begin_close(on_close);
	assert_true(run_until(&f.closed, 1));
}

/* ---- work and done callbacks ---- */

static void quick_work(struct pool_work *w)
{
	struct job *j = w->data;

	j->work_thread = pthread_self();
	atomic_fetch_add(&j->work_calls, 1);
	pthread_getname_np(pthread_self(), j->thread_name,
	                   sizeof(j->thread_name));
	j->payload = 4242;
}

/* Blocks on the gate until the test opens it. */
static void gated_work(struct pool_work *w)
{
	struct job *j = w->data;
	struct timespec deadline;
	int rc = 0;

	j->work_thread = pthread_self();
	atomic_fetch_add(&j->work_calls, 1);
	deadline_in(&deadline, WAIT_MS);
	pthread_mutex_lock(&f.gate.mutex);
	f.gate.started++;
	pthread_cond_broadcast(&f.gate.cond);
	while (!f.gate.open && rc == 0)
		rc = pthread_cond_timedwait(&f.gate.cond, &f.gate.mutex,
		                            &deadline);
	if (!f.gate.open)
		f.gate.timeouts++;
	pthread_mutex_unlock(&f.gate.mutex);
}

static void on_done(struct pool_work *w, int status)
{
	struct job *j = w->data;

	j->done_thread = pthread_self();
	j->done_calls++;
	j->status = status;
	j->done_during_submit = submitting;
	dones++;
	if (j->close_in_done) {
		j->close_in_done = false;
		pool_close(f.pool, on_close);
		f.close_started = true;
	}
	if (j->resubmit != NULL) {
		struct job *next = j->resubmit;

		j->resubmit = NULL;
		next->w.data = next;
		j->resubmit_rc =
		        pool_submit(f.pool, &next->w, quick_work, on_done);
	}
}

static int submit(struct job *j, pool_work_cb work)
{
	int rc;

	j->w.data = j;
	submitting = true;
	rc = pool_submit(f.pool, &j->w, work, on_done);
	submitting = false;
	return rc;
}

static void test_pool_work_runs_off_the_loop_thread(void **state)
{
	struct job *j = new_jobs(1);

	(void)state;
	create("cpu", 2, 4);
	assert_int_equal(submit(j, quick_work), 0);
	assert_true(run_until(&dones, 1));
	assert_int_equal(atomic_load(&j->work_calls), 1);
	assert_false(pthread_equal(j->work_thread, pthread_self()));
}

static void
test_pool_done_runs_on_the_loop_thread_with_status_zero(void **state)
{
	struct job *j = new_jobs(1);

	(void)state;
	create("cpu", 2, 4);
	assert_int_equal(submit(j, quick_work), 0);
	assert_true(run_until(&dones, 1));
	assert_int_equal(j->done_calls, 1);
	assert_int_equal(j->status, 0);
	assert_true(pthread_equal(j->done_thread, pthread_self()));
}

static void test_pool_done_sees_what_work_wrote_and_keeps_data(void **state)
{
	struct job *j = new_jobs(1);

	(void)state;
	create("cpu", 1, 1);
	assert_int_equal(submit(j, quick_work), 0);
	assert_true(run_until(&dones, 1));
	assert_ptr_equal(j->w.data, j);
	assert_int_equal(j->payload, 4242);
}

static void test_pool_done_is_never_called_from_inside_submit(void **state)
{
	struct job *jobs = new_jobs(8);

	(void)state;
	create("cpu", 2, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(submit(&jobs[i], quick_work), 0);
		/* Give the worker time to finish before the next submit. */
		usleep(2000);
	}
	assert_int_equal(dones, 0);
	assert_true(run_until(&dones, 8));
	for (int i = 0; i < 8; i++) {
		assert_false(jobs[i].done_during_submit);
		assert_int_equal(jobs[i].done_calls, 1);
	}
}

static void test_pool_done_runs_exactly_once_per_work_under_load(void **state)
{
	struct job *jobs = new_jobs(500);

	(void)state;
	create("load", 4, 500);
	for (int i = 0; i < 500; i++)
		assert_int_equal(submit(&jobs[i], quick_work), 0);
	assert_true(run_until(&dones, 500));
	/* One more turn: nothing may arrive twice. */
	uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(dones, 500);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(atomic_load(&jobs[i].work_calls), 1);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].status, 0);
	}
}

static void test_pool_done_may_submit_more_work(void **state)
{
	struct job *first = new_jobs(1), *second = new_jobs(1);

	(void)state;
	create("cpu", 1, 1);
	first->resubmit = second;
	assert_int_equal(submit(first, quick_work), 0);
	assert_true(run_until(&dones, 2));
	assert_int_equal(first->resubmit_rc, 0);
	assert_int_equal(second->done_calls, 1);
	assert_int_equal(second->status, 0);
}

static void test_pool_threads_carry_the_pool_name(void **state)
{
	struct job *j = new_jobs(1);

	(void)state;
	create("storage", 1, 1);
	assert_string_equal(pool_name(f.pool), "storage");
	assert_int_equal(submit(j, quick_work), 0);
	assert_true(run_until(&dones, 1));
	assert_int_equal(strncmp(j->thread_name, "storage", 7), 0);
}

/* ---- saturation ---- */

static void test_pool_submit_beyond_max_queued_fails_with_eagain(void **state)
{
	struct job *running = new_jobs(1), *queued = new_jobs(2);
	struct job *rejected = new_jobs(1);

	(void)state;
	create("sat", 1, 2);
	assert_int_equal(pool_queued(f.pool), 0);
	assert_int_equal(submit(running, gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 1));
	/* Running work does not count toward max_queued. */
	assert_int_equal(submit(&queued[0], gated_work), 0);
	assert_int_equal(submit(&queued[1], gated_work), 0);
	assert_int_equal(pool_queued(f.pool), 2);
	assert_int_equal(submit(rejected, gated_work), -EAGAIN);
	assert_int_equal(pool_queued(f.pool), 2);

	gate_open(&f.gate);
	assert_true(run_until(&dones, 3));
	uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(dones, 3);
	assert_int_equal(running->status, 0);
	assert_int_equal(queued[0].status, 0);
	assert_int_equal(queued[1].status, 0);
	assert_int_equal(rejected->done_calls, 0);
	assert_int_equal(atomic_load(&rejected->work_calls), 0);
	assert_int_equal(pool_queued(f.pool), 0);
	assert_int_equal(gate_timeouts(&f.gate), 0);
}

static void test_pool_accepts_work_again_once_the_queue_drains(void **state)
{
	struct job *a = new_jobs(1), *b = new_jobs(1), *c = new_jobs(1);

	(void)state;
	create("sat", 1, 1);
	assert_int_equal(submit(a, gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 1));
	assert_int_equal(submit(b, gated_work), 0);
	assert_int_equal(submit(c, quick_work), -EAGAIN);
	gate_open(&f.gate);
	assert_true(run_until(&dones, 2));
	assert_int_equal(submit(c, quick_work), 0);
	assert_true(run_until(&dones, 3));
	assert_int_equal(c->status, 0);
}

static void test_pool_runs_as_many_works_at_once_as_it_has_threads(void **state)
{
	struct job *jobs = new_jobs(4);

	(void)state;
	create("par", 4, 8);
	/* Each work holds its thread until all four have started: with
	 * fewer threads running them, the wait times out. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(submit(&jobs[i], gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 4));
	gate_open(&f.gate);
	assert_true(run_until(&dones, 4));
	assert_int_equal(gate_timeouts(&f.gate), 0);
	for (int i = 0; i < 4; i++)
		for (int k = i + 1; k < 4; k++)
			assert_false(pthread_equal(jobs[i].work_thread,
			                           jobs[k].work_thread));
}

/* ---- close ---- */

static void
test_pool_close_cancels_queued_work_and_finishes_running_work(void **state)
{
	struct job *running = new_jobs(1), *queued = new_jobs(2);

	(void)state;
	create("close", 1, 4);
	assert_int_equal(submit(running, gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 1));
	assert_int_equal(submit(&queued[0], gated_work), 0);
	assert_int_equal(submit(&queued[1], gated_work), 0);

	begin_close(on_close);
	gate_open(&f.gate);
	assert_true(run_until(&f.closed, 1));

	assert_int_equal(running->done_calls, 1);
	assert_int_equal(running->status, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(queued[i].done_calls, 1);
		assert_int_equal(queued[i].status, -ECANCELED);
		assert_int_equal(atomic_load(&queued[i].work_calls), 0);
		assert_true(
		        pthread_equal(queued[i].done_thread, pthread_self()));
	}
	/* Every done ran before the close callback. */
	assert_int_equal(f.done_before_close, 3);
	assert_int_equal(f.closed, 1);
}

static void
test_pool_close_does_not_wait_for_running_work_on_the_loop(void **state)
{
	struct job *running = new_jobs(1);

	(void)state;
	create("close", 1, 1);
	assert_int_equal(submit(running, gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 1));
	/* The gate is shut: if pool_close joined the thread here, it would
	 * only return when the work gave up waiting. */
	begin_close(on_close);
	assert_int_equal(gate_timeouts(&f.gate), 0);
	assert_int_equal(f.closed, 0);
	gate_open(&f.gate);
	assert_true(run_until(&f.closed, 1));
	assert_int_equal(running->status, 0);
	assert_int_equal(gate_timeouts(&f.gate), 0);
}

static void test_pool_close_delivers_finished_but_undelivered_work(void **state)
{
	struct job *j = new_jobs(1);

	(void)state;
	create("close", 1, 1);
	assert_int_equal(submit(j, quick_work), 0);
	/* Work finishes on its thread; its done is still pending on the
	 * loop, which has not run. */
	for (int i = 0; i < 1000 && atomic_load(&j->work_calls) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&j->work_calls), 1);
	usleep(10000);
	begin_close(on_close);
	assert_true(run_until(&f.closed, 1));
	assert_int_equal(j->done_calls, 1);
	assert_int_equal(j->status, 0);
	assert_int_equal(f.done_before_close, 1);
}

static void test_pool_submit_after_close_fails_with_eshutdown(void **state)
{
	struct job *late = new_jobs(1);

	(void)state;
	create("close", 1, 1);
	begin_close(on_close);
	/* The pool lives until its close callback runs on the loop. */
	assert_int_equal(submit(late, quick_work), -ESHUTDOWN);
	assert_true(run_until(&f.closed, 1));
	assert_int_equal(late->done_calls, 0);
	assert_int_equal(atomic_load(&late->work_calls), 0);
}

static void test_pool_close_from_inside_a_done_callback_completes(void **state)
{
	struct job *last = new_jobs(1), *queued = new_jobs(1);

	(void)state;
	create("close", 1, 2);
	last->close_in_done = true;
	assert_int_equal(submit(last, gated_work), 0);
	assert_true(gate_wait_started(&f.gate, 1));
	assert_int_equal(submit(queued, gated_work), 0);
	gate_open(&f.gate);
	assert_true(run_until(&f.closed, 1));
	assert_int_equal(last->status, 0);
	/* Either it ran before the close or it was cancelled by it: exactly
	 * one done, before the close callback. */
	assert_int_equal(queued->done_calls, 1);
	assert_true(queued->status == 0 || queued->status == -ECANCELED);
	assert_int_equal(f.done_before_close, 2);
}

static void test_pool_close_of_idle_pool_runs_close_callback_once(void **state)
{
	(void)state;
	create("idle", 3, 1);
	close_pool();
	uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(f.closed, 1);
	assert_int_equal(dones, 0);
}

static void
test_pool_close_callback_is_not_called_from_inside_close(void **state)
{
	(void)state;
	create("idle", 1, 1);
	begin_close(on_close);
	assert_int_equal(f.closed, 0);
	assert_true(run_until(&f.closed, 1));
}

static void test_pool_close_with_null_callback_releases_everything(void **state)
{
	(void)state;
	create("idle", 2, 1);
	pool_close(f.pool, NULL);
	f.pool = NULL; /* no callback will say it is gone: teardown skips it */
	/* Only an unref'd watchdog remains: the loop ends once the pool's
	 * handle is closed. uv_loop_close in teardown checks nothing is
	 * left. */
	uv_timer_start(&f.watchdog, on_watchdog, WAIT_MS, 0);
	uv_unref((uv_handle_t *)&f.watchdog);
	uv_run(&f.loop, UV_RUN_DEFAULT);
	uv_timer_stop(&f.watchdog);
	uv_ref((uv_handle_t *)&f.watchdog);
	assert_false(f.timed_out);
}

/* ---- create ---- */

static void test_pool_create_with_zero_threads_fails_with_message(void **state)
{
	struct pool *p = NULL;

	(void)state;
	assert_true(pool_create(&f.loop, "cpu", 0, 4, &p, &f.e) < 0);
	assert_null(p);
	assert_true(f.e.code < 0);
	assert_string_not_equal(f.e.msg, "");
}

static void
test_pool_create_with_zero_max_queued_fails_with_message(void **state)
{
	struct pool *p = NULL;

	(void)state;
	assert_true(pool_create(&f.loop, "cpu", 1, 0, &p, &f.e) < 0);
	assert_null(p);
	assert_string_not_equal(f.e.msg, "");
}

static void
test_pool_create_with_name_longer_than_max_fails_with_message(void **state)
{
	struct pool *p = NULL;
	const char *name = "sixteen-chars-xx";

	(void)state;
	assert_int_equal(strlen(name), POOL_NAME_MAX + 1);
	assert_true(pool_create(&f.loop, name, 1, 1, &p, &f.e) < 0);
	assert_null(p);
	assert_string_not_equal(f.e.msg, "");
}

static void test_pool_create_with_name_of_exactly_max_succeeds(void **state)
{
	const char *name = "fifteen-chars-x";

	(void)state;
	assert_int_equal(strlen(name), POOL_NAME_MAX);
	create(name, 1, 1);
	assert_string_equal(pool_name(f.pool), name);
	close_pool();
}

static void test_pool_create_with_empty_name_fails(void **state)
{
	struct pool *p = NULL;

	(void)state;
	assert_true(pool_create(&f.loop, "", 1, 1, &p, &f.e) < 0);
	assert_null(p);
}

static void test_pool_create_survives_allocation_failure(void **state)
{
	bool created = false;

	(void)state;
	for (long n = 0; n < 50 && !created; n++) {
		struct pool *p = NULL;
		int rc;

		mem_fail_after(n);
		rc = pool_create(&f.loop, "oom", 2, 1, &p, &f.e);
		mem_fail_reset();
		if (n == 0)
			assert_int_equal(rc, -ENOMEM);
		if (rc != 0) {
			assert_int_equal(rc, -ENOMEM);
			assert_null(p);
			/* Nothing may be left on the loop. */
			uv_run(&f.loop, UV_RUN_NOWAIT);
			continue;
		}
		f.pool = p;
		created = true;
	}
	assert_true(created);
	close_pool();
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_pool, teardown_pool)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_pool_work_runs_off_the_loop_thread),
	        T(test_pool_done_runs_on_the_loop_thread_with_status_zero),
	        T(test_pool_done_sees_what_work_wrote_and_keeps_data),
	        T(test_pool_done_is_never_called_from_inside_submit),
	        T(test_pool_done_runs_exactly_once_per_work_under_load),
	        T(test_pool_done_may_submit_more_work),
	        T(test_pool_threads_carry_the_pool_name),
	        T(test_pool_submit_beyond_max_queued_fails_with_eagain),
	        T(test_pool_accepts_work_again_once_the_queue_drains),
	        T(test_pool_runs_as_many_works_at_once_as_it_has_threads),
	        T(test_pool_close_cancels_queued_work_and_finishes_running_work),
	        T(test_pool_close_does_not_wait_for_running_work_on_the_loop),
	        T(test_pool_close_delivers_finished_but_undelivered_work),
	        T(test_pool_submit_after_close_fails_with_eshutdown),
	        T(test_pool_close_from_inside_a_done_callback_completes),
	        T(test_pool_close_of_idle_pool_runs_close_callback_once),
	        T(test_pool_close_callback_is_not_called_from_inside_close),
	        T(test_pool_close_with_null_callback_releases_everything),
	        T(test_pool_create_with_zero_threads_fails_with_message),
	        T(test_pool_create_with_zero_max_queued_fails_with_message),
	        T(test_pool_create_with_name_longer_than_max_fails_with_message),
	        T(test_pool_create_with_name_of_exactly_max_succeeds),
	        T(test_pool_create_with_empty_name_fails),
	        T(test_pool_create_survives_allocation_failure),
	};

	return cmocka_run_group_tests_name("lib/pool", tests, NULL, NULL);
}
