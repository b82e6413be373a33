/* Proxmox's tasks: long operations answer a UPID at once and run on; the
 * cluster-wide index is the DB's tasks table (a row is written before the
 * UPID is returned, so a client's first poll finds it, from any node) and
 * the log is a file on the node that runs the task.
 *
 * Tasks that were running when cairnd stopped are marked stopped with an
 * error when the API starts again (before any new task may start), and
 * their logs get a final "TASK ERROR" line. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node/api_internal.h"
#include "node/task.h"

#define INTERRUPTED "interrupted: cairnd stopped while the task ran"

struct api_task {
	struct list link; /* in a->tasks */
	struct node_api *a;
	char upid[TASK_UPID_MAX + 1];
	struct task_upid u;
	struct task_log *log;
	uv_timer_t timer;
	bool has_timer, is_op_running, is_done;
	/* the worker: started once the row is written; busy while its
	 * work runs on a pool (the task is not freed under it) */
	void (*start)(struct api_task *t);
	void *data;
	void (*data_free)(void *data); /* when start never runs */
	bool is_busy;
	/* the worker's: stop early (aborted, or the node stops) */
	void (*on_abort)(struct api_task *t);
	/* the test worker */
	unsigned remaining;
	bool fail;
	char aborted_by[192];
	/* the end */
	char error[256]; /* "" when OK */
	int64_t ended_at;
	unsigned end_tries;
	struct db_op op;
};

static void task_dir(const struct node_api *a, char *out, size_t size)
{
	snprintf(out, size, "%s/tasks", a->cluster->node->config->data_dir);
}

/* --------------------------------------------------- DB operations */

/* One statement on the DB thread: a read (rows) or a write. */
struct sql_op {
	struct db_op op;
	char sql[1024];
	struct wire_value params[12];
	char texts[12][TASK_UPID_MAX + 8];
	unsigned nparams;
	bool is_write;
	struct db_rows rows;
	struct wire_result result;
	void (*done)(struct sql_op *q, int status);
	void *data;
	void (*then)(struct api_call *c, const struct db_rows *rows);
	const char *priv; /* task_lookup: what a non-owner needs */
};

static void sql_text(struct sql_op *q, const char *text)
{
	snprintf(q->texts[q->nparams], sizeof q->texts[0], "%s", text);
	q->params[q->nparams] = wire_value_text(q->texts[q->nparams]);
	q->nparams++;
}

static void sql_int(struct sql_op *q, int64_t v)
{
	q->params[q->nparams++] = wire_value_integer(v);
}

static int sql_write_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct sql_op *q = data;

	return db_tx_exec(tx, q->sql, q->params, q->nparams, &q->result, e);
}

static int sql_run(struct db_client *client, struct db_op *op, struct err *e)
{
	struct sql_op *q = CAIRN_CONTAINER_OF(op, struct sql_op, op);

	if (q->is_write)
		return db_write(client, 0, sql_write_tx, q, e);
	return db_query(client, q->sql, q->params, q->nparams, &q->rows, e);
}

static void sql_done(struct db_op *op, int status)
{
	struct sql_op *q = CAIRN_CONTAINER_OF(op, struct sql_op, op);

	q->done(q, status);
	db_rows_free(&q->rows);
	mem_free(q);
}

static struct sql_op *sql_new(void)
{
	return mem_calloc(1, sizeof(struct sql_op));
}

/* Submits q (owned from here); -EBUSY when the DB queue is full (q is
 * freed then, done not called). */
static int sql_submit(struct node_api *a, struct sql_op *q)
{
	if (a->cluster == NULL || a->cluster->db == NULL ||
	    db_submit(a->cluster->db, &q->op, sql_run, sql_done) != 0) {
		mem_free(q);
		return -EBUSY;
	}
	return 0;
}

/* ------------------------------------------------------- a task's life */

static void task_free_cb(uv_handle_t *h)
{
	struct api_task *t = h->data;
	struct node_api *a = t->a;

	mem_free(t);
	a->ntasks--;
	api_maybe_stopped(a);
}

static void task_maybe_free(struct api_task *t)
{
	if (!t->is_done || t->is_op_running || t->is_busy)
		return;
	list_remove(&t->link);
	if (t->log != NULL)
		task_log_close(t->log);
	t->log = NULL;
	uv_close((uv_handle_t *)&t->timer, task_free_cb);
}

static void end_write(struct api_task *t);

static void on_end_retry(uv_timer_t *timer)
{
	struct api_task *t = timer->data;

	t->is_op_running = false;
	end_write(t);
}

/* The row must say the task ended, or clients poll "running" until
 * their timeout: retry once a second for a minute (no quorum for a
 * while), unless the node stops (its next start closes the row). */
static void end_retry_later(struct api_task *t)
{
	if (t->a->is_stopping || t->a->cluster == NULL || ++t->end_tries > 60) {
		task_maybe_free(t);
		return;
	}
	t->is_op_running = true;
	uv_timer_start(&t->timer, on_end_retry, 1000, 0);
}

static void end_written(struct sql_op *q, int status)
{
	struct api_task *t = q->data;

	t->is_op_running = false;
	if (status != 0) {
		LOG_WARN("task", "cannot record the end of a task, retrying",
		         "upid=%s error=\"%s\"", t->upid, q->op.err.msg);
		end_retry_later(t);
		return;
	}
	task_maybe_free(t);
}

static void end_write(struct api_task *t)
{
	struct sql_op *q = sql_new();

	if (q == NULL || t->a->cluster == NULL) {
		mem_free(q);
		end_retry_later(t);
		return;
	}
	q->is_write = true;
	snprintf(q->sql, sizeof q->sql,
	         "UPDATE tasks SET endtime = ?, status = ? WHERE upid = ?");
	sql_int(q, t->ended_at);
	sql_text(q, t->error[0] != '\0' ? t->error : "OK");
	sql_text(q, t->upid);
	q->done = end_written;
	q->data = t;
	t->is_op_running = true;
	if (sql_submit(t->a, q) != 0) {
		t->is_op_running = false;
		end_retry_later(t);
	}
}

/* The task is over: its last log line, then its row. */
static void task_end(struct api_task *t, const char *error)
{
	uv_timer_stop(&t->timer);
	snprintf(t->error, sizeof t->error, "%s",
	         error != NULL && error[0] != '\0' ? error
	         : error != NULL                   ? "unknown error"
	                                           : "");
	if (t->log != NULL) {
		task_log_finish(t->log, error);
		t->log = NULL;
	}
	t->is_done = true;
	t->ended_at = api_wall_s();
	LOG_INFO("task", "ended", "upid=%s status=\"%s\"", t->upid,
	         error != NULL ? error : "OK");
	end_write(t);
}

/* The test worker: a line a second. */
static void on_sleep_tick(uv_timer_t *timer)
{
	struct api_task *t = timer->data;

	if (t->aborted_by[0] != '\0') {
		char msg[256];

		snprintf(msg, sizeof msg, "aborted by %s", t->aborted_by);
		task_end(t, msg);
		return;
	}
	if (t->remaining == 0) {
		task_end(t, t->fail ? "the test task failed as asked" : NULL);
		return;
	}
	task_log_append(t->log, "%u second(s) left", t->remaining);
	t->remaining--;
}

static void sleep_start(struct api_task *t)
{
	uv_timer_start(&t->timer, on_sleep_tick, 0, 1000);
}

/* --------------------------------------------- for other workers */

void api_task_log(struct api_task *t, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	if (t->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	task_log_append(t->log, "%s", line);
}

void api_task_end(struct api_task *t, const char *error)
{
	t->is_busy = false;
	if (t->is_done) { /* the node stopped meanwhile */
		task_maybe_free(t);
		return;
	}
	task_end(t, error);
}

void api_task_set_busy(struct api_task *t, bool is_busy)
{
	t->is_busy = is_busy;
}

void *api_task_data(const struct api_task *t)
{
	return t->data;
}

struct node_api *api_task_api(const struct api_task *t)
{
	return t->a;
}

const char *api_task_aborted_by(const struct api_task *t)
{
	return t->aborted_by[0] != '\0' ? t->aborted_by : NULL;
}

void api_task_on_abort(struct api_task *t, void (*cb)(struct api_task *t))
{
	t->on_abort = cb;
}

/* A call waiting for its task's row. */
struct start_ctx {
	struct api_call *c;
	struct api_task *t;
};

static void registered(struct sql_op *q, int status)
{
	struct start_ctx *s = q->data;
	struct api_call *c = s->c;
	struct api_task *t = s->t;

	mem_free(s);
	t->is_op_running = false;
	if (status != 0) {
		/* No row, no task: nobody could ever see it. */
		if (t->data_free != NULL)
			t->data_free(t->data);
		t->is_done = true;
		task_maybe_free(t);
		api_call_done(c, status, &q->op.err);
		return;
	}
	t->is_done = false;
	api_reply_json(c, json_string(t->upid));
	if (t->a->is_stopping) {
		/* Stopped while registering: it ends at once, as the
		 * node's other tasks did. */
		if (t->data_free != NULL)
			t->data_free(t->data);
		task_end(t, "interrupted: the node is stopping");
		return;
	}
	t->start(t);
}

/* Makes the task, its log (first line: what it does) and its row; the
 * call answers the UPID once the row is written. */
struct api_task *api_task_start(struct api_call *c, const char *type,
                                const char *id, const char *what,
                                void (*start)(struct api_task *t), void *data,
                                void (*data_free)(void *data))
{
	struct node_api *a = c->a;
	struct api_task *t;
	struct start_ctx *s;
	struct sql_op *q;
	char dir[4200];
	struct err e;

	if (a->is_stopping) {
		api_call_fail(c, -ESHUTDOWN, "the node is stopping");
		return NULL;
	}
	if (!a->is_tasks_reconciled) {
		api_call_fail(c, -ENOTCONN,
		              "the node is still reconciling the tasks of its "
		              "last run, retry in a second");
		return NULL;
	}
	t = mem_calloc(1, sizeof *t);
	s = mem_calloc(1, sizeof *s);
	q = sql_new();
	if (t == NULL || s == NULL || q == NULL) {
		mem_free(t);
		mem_free(s);
		mem_free(q);
		api_call_fail(c, -ENOMEM, "out of memory");
		return NULL;
	}
	t->a = a;
	t->start = start;
	t->data = data;
	t->data_free = data_free;
	snprintf(t->u.node, sizeof t->u.node, "%s", api_self_name(a));
	t->u.pid = task_next_pid(&a->task_pid);
	t->u.pstart = a->task_pstart;
	t->u.starttime = (uint32_t)api_wall_s();
	snprintf(t->u.type, sizeof t->u.type, "%s", type);
	snprintf(t->u.id, sizeof t->u.id, "%s", id);
	snprintf(t->u.user, sizeof t->u.user, "%s", c->principal);
	task_dir(a, dir, sizeof dir);
	if (task_upid_format(&t->u, t->upid, sizeof t->upid, &e) != 0 ||
	    file_mkdir_p(dir, 0750, &e) != 0 ||
	    task_log_create(dir, t->upid, what, &t->log, &e) != 0) {
		mem_free(t);
		mem_free(s);
		mem_free(q);
		api_call_done(c, -EIO, &e);
		return NULL;
	}
	uv_timer_init(a->listener.loop, &t->timer);
	t->timer.data = t;
	list_insert_tail(&a->tasks, &t->link);
	a->ntasks++;
	q->is_write = true;
	snprintf(q->sql, sizeof q->sql,
	         "INSERT INTO tasks (upid, node, type, id, user, starttime) "
	         "VALUES (?, ?, ?, ?, ?, ?)");
	sql_text(q, t->upid);
	sql_text(q, t->u.node);
	sql_text(q, t->u.type);
	sql_text(q, t->u.id);
	sql_text(q, t->u.user);
	sql_int(q, t->u.starttime);
	s->c = c;
	s->t = t;
	q->data = s;
	q->done = registered;
	t->is_op_running = true;
	t->is_done = true; /* until the row is there */
	if (sql_submit(a, q) != 0) {
		mem_free(s);
		t->is_op_running = false;
		task_maybe_free(t);
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
		return NULL;
	}
	LOG_INFO("task", "started", "upid=%s", t->upid);
	return t;
}

static struct api_task *find_running(struct node_api *a, const char *upid)
{
	struct list *l;

	for (l = a->tasks.next; l != &a->tasks; l = l->next) {
		struct api_task *t =
		        CAIRN_CONTAINER_OF(l, struct api_task, link);

		if (!t->is_done && strcmp(t->upid, upid) == 0)
			return t;
	}
	return NULL;
}

/* ------------------------------------------------- reconciliation */

struct reconcile_ctx {
	struct node_api *a;
	struct db_op op;
	char node[64];
	struct db_rows rows;
};

static int reconcile_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct reconcile_ctx *r = data;
	struct wire_value p[2];
	int rv;

	db_rows_free(&r->rows);
	p[0] = wire_value_text(r->node);
	rv = db_tx_query(tx,
	                 "SELECT upid FROM tasks WHERE node = ? AND endtime "
	                 "IS NULL",
	                 p, 1, &r->rows, e);
	if (rv != 0 || r->rows.nrows == 0)
		return rv;
	p[0] = wire_value_integer(api_wall_s());
	p[1] = wire_value_text(r->node);
	return db_tx_exec(tx,
	                  "UPDATE tasks SET endtime = ?, status = '" INTERRUPTED
	                  "' WHERE node = ? AND endtime IS NULL",
	                  p, 2, NULL, e);
}

static int reconcile_run(struct db_client *client, struct db_op *op,
                         struct err *e)
{
	struct reconcile_ctx *r =
	        CAIRN_CONTAINER_OF(op, struct reconcile_ctx, op);

	return db_write(client, 0, reconcile_tx, r, e);
}

/* Appends the final line to the log of a task that was cut short. */
static void log_interrupted(const char *dir, const char *upid)
{
	char name[TASK_LOG_NAME_MAX + 1], path[4400];
	const char line[] = "TASK ERROR: " INTERRUPTED "\n";
	struct err e;
	int fd;

	if (task_log_file_name(upid, name, sizeof name, &e) != 0)
		return;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (write(fd, line, sizeof line - 1) < 0)
		LOG_WARN("task", "cannot finish a log", "upid=%s", upid);
	close(fd);
}

static void reconcile_done(struct db_op *op, int status)
{
	struct reconcile_ctx *r =
	        CAIRN_CONTAINER_OF(op, struct reconcile_ctx, op);
	struct node_api *a = r->a;
	char dir[4200];
	uint64_t i;

	a->is_reconciling = false;
	if (status == 0) {
		a->is_tasks_reconciled = true;
		if (a->cluster != NULL) {
			task_dir(a, dir, sizeof dir);
			for (i = 0; i < r->rows.nrows; i++) {
				char upid[TASK_UPID_MAX + 1];
				const struct wire_value *v =
				        db_rows_at(&r->rows, i, 0);

				snprintf(upid, sizeof upid, "%.*s",
				         (int)v->text.len, v->text.ptr);
				log_interrupted(dir, upid);
				LOG_WARN("task", "marked interrupted",
				         "upid=%s", upid);
			}
		}
	} else if (status != -ECANCELED) {
		LOG_WARN("task", "cannot reconcile the last run's tasks",
		         "error=\"%s\"", op->err.msg);
	}
	db_rows_free(&r->rows);
	mem_free(r);
	api_maybe_stopped(a);
}

void api_tasks_reconcile(struct node_api *a)
{
	struct reconcile_ctx *r;
	struct err e;

	if (a->is_tasks_reconciled || a->is_reconciling || a->cluster == NULL ||
	    a->cluster->db == NULL)
		return;
	if (a->task_pid == 0) {
		a->task_pid = task_pid_seed((uint32_t)getpid(),
		                            (uint32_t)api_wall_s());
		if (task_pstart_self(&a->task_pstart, &e) != 0)
			a->task_pstart = (uint32_t)api_wall_s() & 0x7FFFFFFF;
	}
	r = mem_calloc(1, sizeof *r);
	if (r == NULL)
		return;
	r->a = a;
	snprintf(r->node, sizeof r->node, "%s", api_self_name(a));
	if (db_submit(a->cluster->db, &r->op, reconcile_run, reconcile_done) !=
	    0) {
		mem_free(r);
		return;
	}
	a->is_reconciling = true;
}

void api_tasks_stop(struct node_api *a)
{
	struct list *l, *next;

	/* Tasks cut short keep their row open: the next start marks them. */
	for (l = a->tasks.next; l != &a->tasks; l = next) {
		struct api_task *t =
		        CAIRN_CONTAINER_OF(l, struct api_task, link);

		next = l->next;
		if (t->is_busy && !t->is_done && t->on_abort != NULL)
			t->on_abort(t); /* a download must not hold the stop */
		if (t->is_done || t->is_busy)
			continue; /* a busy one ends when its work returns */
		uv_timer_stop(&t->timer);
		if (t->log != NULL)
			task_log_close(t->log);
		t->log = NULL;
		t->is_done = true;
		task_maybe_free(t);
	}
}

/* ----------------------------------------------------------- routes */

static json_t *row_json(const struct db_rows *rows, uint64_t i)
{
	const struct wire_value *v = db_rows_at(rows, i, 0);
	char upid[TASK_UPID_MAX + 1];
	struct task_upid u;
	struct err e;
	json_t *o;

	snprintf(upid, sizeof upid, "%.*s", (int)v->text.len, v->text.ptr);
	if (task_upid_parse(upid, &u, &e) != 0)
		return NULL;
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "upid", upid,
	              "node", u.node, "pid", (json_int_t)u.pid, "pstart",
	              (json_int_t)u.pstart, "starttime",
	              (json_int_t)u.starttime, "type", u.type, "id", u.id,
	              "user", u.user);
	if (o == NULL)
		return NULL;
	if (db_rows_at(rows, i, 1)->type == WIRE_INTEGER) {
		const struct wire_value *st = db_rows_at(rows, i, 2);

		json_object_set_new(
		        o, "endtime",
		        json_integer(db_rows_at(rows, i, 1)->integer));
		if (st->type == WIRE_TEXT)
			json_object_set_new(
			        o, "status",
			        json_stringn(st->text.ptr, st->text.len));
	}
	return o;
}

/* Is the caller the task's owner? The principal that started it, or
 * the user whose token did (Proxmox: a token's owner reads and stops all
 * of its tasks). */
static bool is_owner(const struct api_call *c, const char *user)
{
	const char *bang = strchr(user, '!');
	size_t len = bang != NULL ? (size_t)(bang - user) : strlen(user);

	return strcmp(user, c->principal) == 0 ||
	       (strlen(c->who.userid) == len &&
	        strncmp(user, c->who.userid, len) == 0 &&
	        c->who.tokenid[0] == '\0');
}

/* May the caller act on this task? Its own, or with priv on the node. */
static bool may(struct api_call *c, const char *user, const char *node,
                const char *priv)
{
	char path[128];

	if (is_owner(c, user))
		return true;
	snprintf(path, sizeof path, "/nodes/%.63s", node);
	return api_access_can(c, path, priv);
}

static bool may_see(struct api_call *c, const char *user, const char *node)
{
	return may(c, user, node, "Sys.Audit");
}

bool api_task_is_owner(const struct api_call *c)
{
	const char *upid = c->match.params != NULL
	                           ? json_string_value(json_object_get(
	                                     c->match.params, "upid"))
	                           : NULL;
	struct task_upid u;
	struct err e;

	return upid != NULL && task_upid_parse(upid, &u, &e) == 0 &&
	       is_owner(c, u.user);
}

static void reply_with_total(struct api_call *c, json_t *data, unsigned total)
{
	json_t *body = json_pack("{s:o, s:i}", "data",
	                         data != NULL ? data : json_null(), "total",
	                         (int)total);
	struct err e;

	api_reply_free(&c->reply);
	c->reply.status = 200;
	snprintf(c->reply.reason, sizeof c->reply.reason, "OK");
	c->reply.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	c->reply.body_len = c->reply.body != NULL ? strlen(c->reply.body) : 0;
	json_decref(body);
	if (c->reply.body == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	api_call_done(c, 0, &e);
}

static void list_done(struct sql_op *q, int status)
{
	struct api_call *c = q->data;
	const Cairn__NodeTasksRequest *r = (const void *)c->msg;
	unsigned start = r->has_start ? r->start : 0;
	unsigned limit = r->has_limit && r->limit > 0 ? r->limit : 50;
	unsigned seen = 0;
	json_t *list;
	uint64_t i;

	if (status != 0) {
		api_call_done(c, status, &q->op.err);
		return;
	}
	list = json_array();
	for (i = 0; list != NULL && i < q->rows.nrows; i++) {
		json_t *o = row_json(&q->rows, i);

		if (o == NULL ||
		    !may_see(c, json_string_value(json_object_get(o, "user")),
		             json_string_value(json_object_get(o, "node")))) {
			json_decref(o);
			continue;
		}
		if (seen++ < start || json_array_size(list) >= limit) {
			json_decref(o);
			continue;
		}
		json_array_append_new(list, o);
	}
	reply_with_total(c, list, seen);
}

static void route_tasks(struct api_call *c)
{
	const Cairn__NodeTasksRequest *r = (const void *)c->msg;
	const char *source = r->source != NULL ? r->source : "all";
	struct sql_op *q = sql_new();
	size_t n;

	if (strcmp(source, "all") != 0 && strcmp(source, "active") != 0 &&
	    strcmp(source, "archive") != 0) {
		mem_free(q);
		json_object_set_new(c->errors, "source",
		                    json_string("value 'x' does not have a "
		                                "value in the enumeration "
		                                "'archive, active, all'"));
		api_call_fail(c, -EINVAL, "source: bad value");
		return;
	}
	if (q == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	n = (size_t)snprintf(q->sql, sizeof q->sql,
	                     "SELECT upid, endtime, status FROM tasks WHERE "
	                     "node = ?");
	sql_text(q, c->match.params != NULL ? json_string_value(json_object_get(
	                                              c->match.params, "node"))
	                                    : "");
	if (r->has_vmid) {
		char vmid[16];

		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND id = ?");
		snprintf(vmid, sizeof vmid, "%u", r->vmid);
		sql_text(q, vmid);
	}
	if (r->typefilter != NULL) {
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND type = ?");
		sql_text(q, r->typefilter);
	}
	if (r->userfilter != NULL) {
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND instr(user, ?) > 0");
		sql_text(q, r->userfilter);
	}
	if (r->has_errors && r->errors)
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND status IS NOT NULL AND status != "
		                      "'OK'");
	if (r->statusfilter != NULL) {
		bool ok = strstr(r->statusfilter, "ok") != NULL;
		bool error = strstr(r->statusfilter, "error") != NULL;

		if (ok && !error)
			n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
			                      " AND status = 'OK'");
		else if (error && !ok)
			n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
			                      " AND status != 'OK'");
	}
	if (strcmp(source, "active") == 0)
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND endtime IS NULL");
	else if (strcmp(source, "archive") == 0)
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND endtime IS NOT NULL");
	if (r->has_since) {
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND starttime >= ?");
		sql_int(q, r->since);
	}
	if (r->has_until) {
		n += (size_t)snprintf(q->sql + n, sizeof q->sql - n,
		                      " AND starttime <= ?");
		sql_int(q, r->until);
	}
	snprintf(q->sql + n, sizeof q->sql - n,
	         " ORDER BY starttime DESC, upid DESC LIMIT 100000");
	q->data = c;
	q->done = list_done;
	if (sql_submit(c->a, q) != 0)
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
}

static void cluster_list_done(struct sql_op *q, int status)
{
	struct api_call *c = q->data;
	json_t *list;
	uint64_t i;

	if (status != 0) {
		api_call_done(c, status, &q->op.err);
		return;
	}
	list = json_array();
	for (i = 0; list != NULL && i < q->rows.nrows; i++) {
		json_t *o = row_json(&q->rows, i);

		if (o != NULL &&
		    may_see(c, json_string_value(json_object_get(o, "user")),
		            json_string_value(json_object_get(o, "node"))))
			json_array_append_new(list, o);
		else
			json_decref(o);
	}
	api_reply_json(c, list);
}

static void route_cluster_tasks(struct api_call *c)
{
	struct sql_op *q = sql_new();

	if (q == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(q->sql, sizeof q->sql,
	         "SELECT upid, endtime, status FROM tasks ORDER BY "
	         "starttime DESC, upid DESC LIMIT 500");
	q->data = c;
	q->done = cluster_list_done;
	if (sql_submit(c->a, q) != 0)
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
}

/* Status, log and abort share lookup_done: the task's row, then q->then. */
static void lookup_done(struct sql_op *q, int status)
{
	struct api_call *c = q->data;

	if (status != 0) {
		api_call_done(c, status, &q->op.err);
		return;
	}
	if (q->rows.nrows == 0) {
		json_object_set_new(c->errors, "upid",
		                    json_string("no such task"));
		api_call_fail(c, -EINVAL, "upid: no such task");
		return;
	}
	if (!may(c, q->texts[1], q->texts[2], q->priv)) {
		char msg[200];

		snprintf(msg, sizeof msg,
		         "Permission check failed (not the task's owner and "
		         "no %s on /nodes/%.63s)",
		         q->priv, q->texts[2]);
		api_call_fail_http(c, 403, msg);
		return;
	}
	q->then(c, &q->rows);
}

/* Finds the task of c's upid and runs then(c, row) when the caller owns
 * it or has priv on its node (403 otherwise). */
static void task_lookup(struct api_call *c,
                        void (*then)(struct api_call *c,
                                     const struct db_rows *rows),
                        const char *priv)
{
	const Cairn__NodeTaskRequest *r = (const void *)c->msg;
	struct sql_op *q;
	struct task_upid u;
	struct err e;

	if (r->upid == NULL || task_upid_parse(r->upid, &u, &e) != 0) {
		json_object_set_new(c->errors, "upid",
		                    json_string("unable to parse worker upid"));
		api_call_fail(c, -EINVAL, "upid: unable to parse");
		return;
	}
	q = sql_new();
	if (q == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(q->sql, sizeof q->sql,
	         "SELECT upid, endtime, status FROM tasks WHERE upid = ?");
	sql_text(q, r->upid);
	/* kept for lookup_done's owner check */
	snprintf(q->texts[1], sizeof q->texts[1], "%s", u.user);
	snprintf(q->texts[2], sizeof q->texts[2], "%s", u.node);
	q->data = c;
	q->done = lookup_done;
	q->then = then;
	q->priv = priv;
	if (sql_submit(c->a, q) != 0)
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
}

static void status_then(struct api_call *c, const struct db_rows *rows)
{
	json_t *o = row_json(rows, 0);

	if (o == NULL) {
		api_call_fail(c, -EINVAL, "upid: unable to parse");
		return;
	}
	if (db_rows_at(rows, 0, 1)->type == WIRE_INTEGER) {
		const struct wire_value *st = db_rows_at(rows, 0, 2);

		/* Exactly "OK" or the error text (Ansible compares). */
		json_object_set_new(o, "status", json_string("stopped"));
		json_object_set_new(
		        o, "exitstatus",
		        st->type == WIRE_TEXT
		                ? json_stringn(st->text.ptr, st->text.len)
		                : json_string("unexpected status"));
		json_object_del(o, "endtime");
	} else {
		json_object_set_new(o, "status", json_string("running"));
	}
	api_reply_json(c, o);
}

static void route_task_status(struct api_call *c)
{
	task_lookup(c, status_then, "Sys.Audit");
}

static void log_then(struct api_call *c, const struct db_rows *rows)
{
	const Cairn__NodeTaskLogRequest *r = (const void *)c->msg;
	char dir[4200];
	json_t *lines = NULL;
	unsigned total = 0;
	struct err e;
	int rv;

	(void)rows;
	if (c->a->cluster == NULL) {
		api_call_fail(c, -ESHUTDOWN, "the node is stopping");
		return;
	}
	task_dir(c->a, dir, sizeof dir);
	rv = task_log_read(dir, r->upid, r->has_start ? r->start : 0,
	                   r->has_limit ? r->limit : 0, &lines, &total, &e);
	if (rv == -ENOENT) {
		/* The row is there, the log is not (another node's disk
		 * was lost): Proxmox says so in one line. */
		reply_with_total(
		        c, json_pack("[{s:i, s:s}]", "n", 1, "t", "no content"),
		        1);
		return;
	}
	if (rv != 0) {
		api_call_done(c, rv, &e);
		return;
	}
	reply_with_total(c, lines, total);
}

static void route_task_log(struct api_call *c)
{
	task_lookup(c, log_then, "Sys.Audit");
}

static void abort_then(struct api_call *c, const struct db_rows *rows)
{
	const Cairn__NodeTaskRequest *r = (const void *)c->msg;
	struct api_task *t = find_running(c->a, r->upid);

	(void)rows;
	if (t != NULL && t->aborted_by[0] == '\0') {
		snprintf(t->aborted_by, sizeof t->aborted_by, "%s",
		         c->principal);
		task_log_append(t->log, "received abort from %s", c->principal);
		/* The test worker ends at its next step; others stop in
		 * their on_abort, or look at api_task_aborted_by between
		 * steps. */
		if (t->start == sleep_start)
			uv_timer_start(&t->timer, on_sleep_tick, 0, 1000);
		else if (t->on_abort != NULL)
			t->on_abort(t);
	}
	api_reply_json(c, json_null());
}

static void route_task_abort(struct api_call *c)
{
	task_lookup(c, abort_then, "Sys.Modify");
}

static void route_task_index(struct api_call *c)
{
	api_reply_json(c, json_pack("[{s:s}, {s:s}]", "name", "log", "name",
	                            "status"));
}

static void route_test_sleep(struct api_call *c)
{
	const Cairn__TestSleepRequest *r = (const void *)c->msg;
	struct api_task *t;
	char id[16] = "", what[128];

	if (!c->a->cluster->node->config->test_tasks) {
		api_call_fail(c, -ENOENT,
		              "test tasks are off on this node (test_tasks)");
		return;
	}
	if (r->has_vmid)
		snprintf(id, sizeof id, "%u", r->vmid);
	snprintf(what, sizeof what, "test task: sleep %u s%s",
	         r->has_seconds ? r->seconds : 5,
	         r->has_fail && r->fail ? ", then fail" : "");
	t = api_task_start(c, "cairntest", id, what, sleep_start, NULL, NULL);
	if (t == NULL)
		return;
	t->remaining = r->has_seconds ? r->seconds : 5;
	if (t->remaining > 3600)
		t->remaining = 3600;
	t->fail = r->has_fail && r->fail;
}

#define TDEF(name, req, fn, local, flags, path, privs) \
	static const struct route_def name = {         \
	        &cairn__##req##__descriptor, fn, local, {flags, path, privs}}

/* Tasks are filtered by owner or Sys.Audit in the handlers. Proxmox lets
 * the owner stop their own task; others need Sys.Modify on the node. */
TDEF(def_tasks, node_tasks_request, route_tasks, true, PERM_USER, NULL, NULL);
TDEF(def_task_index, node_task_request, route_task_index, true, PERM_USER, NULL,
     NULL);
TDEF(def_task_status, node_task_request, route_task_status, true, PERM_USER,
     NULL, NULL);
TDEF(def_task_log, node_task_log_request, route_task_log, true, PERM_USER, NULL,
     NULL);
TDEF(def_task_abort, node_task_request, route_task_abort, true, PERM_OWNER,
     "/nodes/{node}", "Sys.Modify");
TDEF(def_cluster_tasks, cluster_tasks_request, route_cluster_tasks, false,
     PERM_USER, NULL, NULL);
TDEF(def_test_sleep, test_sleep_request, route_test_sleep, true, 0,
     "/nodes/{node}", "Sys.Modify");

const struct api_route api_task_routes[] = {
        {API_GET, "/nodes/{node}/tasks", &def_tasks},
        {API_GET, "/nodes/{node}/tasks/{upid}", &def_task_index},
        {API_DELETE, "/nodes/{node}/tasks/{upid}", &def_task_abort},
        {API_GET, "/nodes/{node}/tasks/{upid}/status", &def_task_status},
        {API_GET, "/nodes/{node}/tasks/{upid}/log", &def_task_log},
        {API_GET, "/cluster/tasks", &def_cluster_tasks},
        {API_POST, "/nodes/{node}/cairn-test/sleep", &def_test_sleep},
};
const size_t api_task_nroutes = CAIRN_ARRAY_SIZE(api_task_routes);

/* ------------------------------------- for workers in other files */

const char *api_task_upid(const struct api_task *t)
{
	return t->upid;
}
