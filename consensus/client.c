/* cairn's blocking client of dqlite: leader discovery, retries, results,
 * transactions and the raw membership requests.
 *
 * What is retried, and why it is safe:
 * - Anything that failed before the request reached a leader (no leader,
 *   connection refused, "not leader" answered) did not happen: retried.
 * - BUSY (another writer) rolled nothing forward: retried with backoff.
 * - Reads are retried after any failure, until the deadline.
 * - A single write, or a COMMIT, whose answer was lost (connection reset,
 *   timeout, "leadership lost") may or may not have been applied: returned
 *   as -ECONNABORTED, unless the caller said it is idempotent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "consensus/conn.h"

#define BACKOFF_MIN_MS 5
#define BACKOFF_MAX_MS 200
/* One attempt may use only part of the whole timeout, so that an attempt
 * against a frozen leader leaves time to find the next one. */
#define ATTEMPT_MIN_MS 500
/* The least time one address gets while looking for the leader. */
#define ADDRESS_MIN_MS 250

struct db_client {
	char addresses[DB_MAX_ADDRESSES][128];
	unsigned naddresses;
	char database[64];
	unsigned timeout_ms;
	bool local_only;
	db_dial_fn dial;
	void *dial_data;
	struct db_conn conn;
};

struct db_tx {
	struct db_client *client;
	int retry_rv; /* a statement failed in a way that makes a rerun safe */
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleeps with jitter so that several writers do not retry in lock step;
 * false when the deadline leaves no time for another attempt. */
static bool backoff(unsigned *delay_ms, uint64_t deadline_ms)
{
	uint64_t now = db__now_ms();
	unsigned ms = *delay_ms / 2 + (unsigned)(now % (*delay_ms / 2 + 1));

	if (now + ms >= deadline_ms)
		return false;
	sleep_ms(ms);
	*delay_ms =
	        *delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *delay_ms * 2;
	return true;
}

static uint64_t attempt_deadline(const struct db_client *c, uint64_t deadline)
{
	uint64_t slice = c->timeout_ms / 3 > ATTEMPT_MIN_MS ? c->timeout_ms / 3
	                                                    : ATTEMPT_MIN_MS;
	uint64_t end = db__now_ms() + slice;

	return end < deadline ? end : deadline;
}

static int set_addresses(struct db_client *c, const char *const *addresses,
                         unsigned n, struct err *e)
{
	unsigned i;

	if (n == 0 || n > DB_MAX_ADDRESSES)
		return err_set(e, -EINVAL,
		               "db client: 1 to %d addresses, not %u",
		               DB_MAX_ADDRESSES, n);
	for (i = 0; i < n; i++) {
		if (addresses[i] == NULL ||
		    strlen(addresses[i]) >= sizeof c->addresses[i])
			return err_set(e, -EINVAL, "db client: bad address %u",
			               i);
	}
	for (i = 0; i < n; i++)
		strcpy(c->addresses[i], addresses[i]);
	c->naddresses = n;
	return 0;
}

int db_client_create(const struct db_client_config *cfg, struct db_client **out,
                     struct err *e)
{
	const char *name =
	        cfg->database != NULL ? cfg->database : DB_DEFAULT_DATABASE;
	struct db_client *c;
	int rv;

	if (strlen(name) == 0 || strlen(name) >= sizeof c->database)
		return err_set(e, -EINVAL, "db client: bad database name");
	c = mem_calloc(1, sizeof *c);
	if (c == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = set_addresses(c, cfg->addresses, cfg->naddresses, e);
	if (rv != 0) {
		mem_free(c);
		return rv;
	}
	strcpy(c->database, name);
	c->timeout_ms =
	        cfg->timeout_ms != 0 ? cfg->timeout_ms : DB_DEFAULT_TIMEOUT_MS;
	c->local_only = cfg->local_only;
	c->dial = cfg->dial;
	c->dial_data = cfg->dial_data;
	db__conn_init(&c->conn);
	*out = c;
	return 0;
}

void db_client_destroy(struct db_client *c)
{
	if (c == NULL)
		return;
	db__conn_close(&c->conn);
	mem_free(c);
}

int db_client_set_addresses(struct db_client *c, const char *const *addresses,
                            unsigned n, struct err *e)
{
	return set_addresses(c, addresses, n, e);
}

void db_client_disconnect(struct db_client *c)
{
	db__conn_close(&c->conn);
	db__conn_init(&c->conn);
}

static bool is_connected(const struct db_client *c)
{
	return c->conn.fd >= 0;
}

/* Asks the node at the other end of conn who leads. */
static int ask_leader(struct db_conn *conn, uint64_t *id, char *address,
                      size_t size, struct err *e)
{
	struct wire_server s;
	int rv;

	rv = wire_leader_encode(&conn->out, e);
	if (rv == 0)
		rv = db__conn_roundtrip(conn, e);
	if (rv == 0)
		rv = wire_server_decode(conn->hdr.type, conn->in.data,
		                        conn->in.len, &s, e);
	if (rv != 0)
		return rv;
	*id = s.id;
	snprintf(address, size, "%s", s.address);
	return 0;
}

static int open_database(struct db_client *c, struct err *e)
{
	uint32_t db_id;
	int rv;

	rv = wire_open_encode(&c->conn.out, c->database, 0, "", e);
	if (rv == 0)
		rv = db__conn_roundtrip(&c->conn, e);
	if (rv == 0)
		rv = wire_db_decode(c->conn.hdr.type, c->conn.in.data,
		                    c->conn.in.len, &db_id, e);
	if (rv != 0)
		return rv;
	c->conn.db_id = db_id;
	c->conn.has_db = true;
	return 0;
}

/* Opens c->conn to `address` and keeps it if that node says it leads. */
static int try_leader_at(struct db_client *c, const char *address,
                         uint64_t deadline, char *leader, size_t size,
                         struct err *e)
{
	uint64_t id;
	int rv;

	rv = db__conn_open(&c->conn, address, deadline, c->dial, c->dial_data,
	                   e);
	if (rv == 0)
		rv = ask_leader(&c->conn, &id, leader, size, e);
	if (rv == 0 && strcmp(leader, address) != 0)
		rv = -EAGAIN; /* someone else leads (or nobody: "") */
	if (rv != 0)
		db_client_disconnect(c);
	return rv;
}

/* Makes c->conn a connection to the leader with the database open. */
static int connect_leader(struct db_client *c, uint64_t deadline, struct err *e)
{
	char leader[128], failures[ERR_MSG_MAX] = "";
	unsigned i, delay = BACKOFF_MIN_MS;
	bool any_answered;
	int rv;

	if (is_connected(c) && c->conn.has_db) {
		/* An idle connection the leader closed (it crashed, or lost
		 * leadership) would turn the next write into "outcome
		 * unknown": find out before sending anything. */
		if (!db__conn_is_stale(&c->conn))
			return 0;
		db_client_disconnect(c);
	}
	for (;;) {
		any_answered = false;
		for (i = 0; i < c->naddresses; i++) {
			const char *a = c->addresses[i];
			uint64_t now = db__now_ms();
			uint64_t share =
			        deadline > now
			                ? (deadline - now) / (c->naddresses - i)
			                : 0;
			/* Each address gets its share of the time left: a
			 * frozen node that accepts connections but never
			 * answers must not use up the whole attempt. */
			uint64_t until =
			        now + (share > ADDRESS_MIN_MS ? share
			                                      : ADDRESS_MIN_MS);

			if (until > deadline)
				until = deadline;

			if (c->local_only) {
				rv = db__conn_open(&c->conn, a, until, c->dial,
				                   c->dial_data, e);
				if (rv == 0)
					rv = open_database(c, e);
				if (rv == 0)
					return 0;
				db_client_disconnect(c);
				snprintf(failures, sizeof failures, "%s",
				         e->msg);
				break;
			}
			leader[0] = '\0';
			rv = try_leader_at(c, a, until, leader, sizeof leader,
			                   e);
			if (rv == -EAGAIN && leader[0] != '\0')
				rv = try_leader_at(c, leader, deadline, leader,
				                   sizeof leader, e);
			if (rv == 0) {
				rv = open_database(c, e);
				if (rv == 0)
					return 0;
				db_client_disconnect(c);
			}
			if (rv == -EAGAIN)
				any_answered = true;
			else
				snprintf(failures, sizeof failures, "%s",
				         e->msg);
		}
		if (!backoff(&delay, deadline))
			break;
	}
	if (any_answered)
		return err_set(e, -ENOTCONN,
		               "no leader elected among %u "
		               "node(s) within %u ms",
		               c->naddresses, c->timeout_ms);
	return err_set(e, -EHOSTDOWN,
	               "no database node reachable within "
	               "%u ms (last error: %s)",
	               c->timeout_ms, failures);
}

/* ---------------------------------------------------------------- rows */

void db_rows_free(struct db_rows *r)
{
	unsigned i;

	if (r->names != NULL) {
		for (i = 0; i < r->ncols; i++)
			mem_free(r->names[i]);
	}
	mem_free(r->names);
	mem_free(r->values);
	buf_free(&r->arena);
	memset(r, 0, sizeof *r);
}

/* While rows are gathered, text and blob pointers hold arena offsets (the
 * arena may move as it grows); they are made pointers at the end. */
static int gather_value(struct db_rows *r, struct wire_value *v, struct err *e)
{
	const void *src;
	size_t len, off;
	int rv;

	if (v->type == WIRE_TEXT || v->type == WIRE_ISO8601) {
		src = v->text.ptr;
		len = v->text.len;
	} else if (v->type == WIRE_BLOB) {
		src = v->blob.ptr;
		len = v->blob.len;
	} else {
		return 0;
	}
	off = r->arena.len;
	rv = buf_append(&r->arena, src, len);
	if (rv == 0)
		rv = buf_append(&r->arena, "", 1); /* texts stay C strings */
	if (rv != 0)
		return err_set(e, rv, "query result larger than %zu bytes",
		               DB_ROWS_MAX_BYTES);
	if (v->type == WIRE_BLOB)
		v->blob.ptr = (const void *)(uintptr_t)off;
	else
		v->text.ptr = (const char *)(uintptr_t)off;
	return 0;
}

static void fix_pointers(struct db_rows *r)
{
	uint64_t i, n = r->nrows * r->ncols;

	for (i = 0; i < n; i++) {
		struct wire_value *v = &r->values[i];

		if (v->type == WIRE_BLOB)
			v->blob.ptr = r->arena.data + (uintptr_t)v->blob.ptr;
		else if (v->type == WIRE_TEXT || v->type == WIRE_ISO8601)
			v->text.ptr = r->arena.data + (uintptr_t)v->text.ptr;
	}
}

static int gather_batch(struct db_conn *conn, struct db_rows *r, bool *more,
                        struct err *e)
{
	struct wire_rows rows;
	const char **names;
	uint64_t cap = 0;
	unsigned i;
	int rv;

	rv = wire_rows_begin(conn->hdr.type, conn->in.data, conn->in.len, &rows,
	                     e);
	if (rv != 0)
		return rv;
	if (r->names == NULL) {
		r->ncols = wire_rows_column_count(&rows);
		names = mem_calloc(r->ncols + 1, sizeof *names);
		r->names = mem_calloc(r->ncols + 1, sizeof *r->names);
		if (names == NULL || r->names == NULL) {
			mem_free(names);
			return err_set(e, -ENOMEM, "out of memory");
		}
		rv = wire_rows_column_names(&rows, names, r->ncols, e);
		for (i = 0; rv == 0 && i < r->ncols; i++) {
			r->names[i] = mem_strdup(names[i]);
			if (r->names[i] == NULL)
				rv = err_set(e, -ENOMEM, "out of memory");
		}
		mem_free(names);
		if (rv != 0)
			return rv;
	} else if (wire_rows_column_count(&rows) != r->ncols) {
		return err_set(e, -EPROTO,
		               "%s: result batches disagree on the "
		               "column count",
		               conn->address);
	}
	cap = r->nrows;
	for (;;) {
		struct wire_value *row;

		if (r->values == NULL || r->nrows == cap) {
			struct wire_value *grown;

			cap = cap < 16 ? 16 : cap * 2;
			if (r->ncols > 0 &&
			    cap * r->ncols * sizeof *grown > DB_ROWS_MAX_BYTES)
				return err_set(e, -E2BIG,
				               "query result over "
				               "%zu bytes",
				               DB_ROWS_MAX_BYTES);
			grown = mem_realloc_array(
			        r->values, cap * (r->ncols ? r->ncols : 1),
			        sizeof *grown);
			if (grown == NULL)
				return err_set(e, -ENOMEM, "out of memory");
			r->values = grown;
		}
		row = &r->values[r->nrows * r->ncols];
		rv = wire_rows_next(&rows, row, r->ncols, e);
		if (rv < 0)
			return rv;
		if (rv == 0)
			break;
		for (i = 0; i < r->ncols; i++) {
			rv = gather_value(r, &row[i], e);
			if (rv != 0)
				return rv;
		}
		r->nrows++;
	}
	*more = wire_rows_end(&rows) == WIRE_ROWS_PART;
	return 0;
}

/* ------------------------------------------------- one attempt, raw */

static int exec_once(struct db_client *c, const char *sql,
                     const struct wire_value *params, unsigned nparams,
                     struct wire_result *result, struct err *e)
{
	struct wire_result ignored;
	int rv;

	rv = wire_exec_sql_encode(&c->conn.out, c->conn.db_id, sql, params,
	                          nparams, e);
	if (rv == 0)
		rv = db__conn_roundtrip(&c->conn, e);
	if (rv == 0)
		rv = wire_result_decode(c->conn.hdr.type, c->conn.in.data,
		                        c->conn.in.len,
		                        result != NULL ? result : &ignored, e);
	return rv;
}

static int query_once(struct db_client *c, const char *sql,
                      const struct wire_value *params, unsigned nparams,
                      struct db_rows *out, struct err *e)
{
	bool more = true;
	int rv;

	memset(out, 0, sizeof *out);
	buf_init(&out->arena, DB_ROWS_MAX_BYTES);
	rv = wire_query_sql_encode(&c->conn.out, c->conn.db_id, sql, params,
	                           nparams, e);
	if (rv == 0)
		rv = db__conn_roundtrip(&c->conn, e);
	while (rv == 0) {
		rv = gather_batch(&c->conn, out, &more, e);
		if (rv != 0 || !more)
			break;
		rv = db__conn_recv(&c->conn, e);
	}
	if (rv != 0) {
		/* The rest of a streamed result may still be on its way. */
		if (more)
			db_client_disconnect(c);
		db_rows_free(out);
		return rv;
	}
	fix_pointers(out);
	return 0;
}

/* An answer from the server (the connection is intact) that says the
 * request was not carried out and may be sent again. */
static bool is_refusal(const struct db_client *c, int rv)
{
	return is_connected(c) && (rv == -ENOTCONN || rv == -EBUSY);
}

static bool is_transport_error(int rv)
{
	return rv == -ECONNRESET || rv == -EPIPE || rv == -ETIMEDOUT ||
	       rv == -ECONNREFUSED || rv == -EHOSTDOWN || rv == -EPROTO ||
	       rv == -ENOTCONN || rv == -ECONNABORTED || rv == -EHOSTUNREACH ||
	       rv == -ENETUNREACH;
}

/* ------------------------------------------------------ public calls */

int db_query(struct db_client *c, const char *sql,
             const struct wire_value *params, unsigned nparams,
             struct db_rows *out, struct err *e)
{
	uint64_t deadline = db__now_ms() + c->timeout_ms;
	unsigned delay = BACKOFF_MIN_MS;
	int rv;

	for (;;) {
		c->conn.deadline_ms = attempt_deadline(c, deadline);
		rv = connect_leader(c, c->conn.deadline_ms, e);
		if (rv == 0) {
			c->conn.deadline_ms = attempt_deadline(c, deadline);
			rv = query_once(c, sql, params, nparams, out, e);
		}
		if (rv == 0)
			return 0;
		/* A read can always be asked again. */
		if (!is_transport_error(rv) && rv != -EBUSY)
			return rv;
		if (!is_refusal(c, rv) || rv == -ENOTCONN)
			db_client_disconnect(c);
		/* local_only: a node that does not lead will not start to. */
		if (c->local_only && rv == -ENOTCONN)
			return rv;
		if (!backoff(&delay, deadline))
			return err_wrap(e, "query");
	}
}

int db_exec(struct db_client *c, const char *sql,
            const struct wire_value *params, unsigned nparams,
            struct wire_result *result, struct err *e)
{
	uint64_t deadline = db__now_ms() + c->timeout_ms;
	unsigned delay = BACKOFF_MIN_MS;
	int rv;

	for (;;) {
		c->conn.deadline_ms = attempt_deadline(c, deadline);
		rv = connect_leader(c, c->conn.deadline_ms, e);
		if (rv == 0) {
			c->conn.deadline_ms = deadline;
			rv = exec_once(c, sql, params, nparams, result, e);
			if (rv == 0)
				return 0;
			if (!is_refusal(c, rv)) {
				if (is_transport_error(rv)) {
					db_client_disconnect(c);
					e->code = -ECONNABORTED;
					return err_wrap(e, "write outcome "
					                   "unknown");
				}
				return rv; /* SQL error */
			}
		} else if (!is_transport_error(rv)) {
			return rv;
		}
		if (rv == -ENOTCONN)
			db_client_disconnect(c);
		/* local_only: a node that does not lead will not start to. */
		if (c->local_only && rv == -ENOTCONN)
			return rv;
		if (!backoff(&delay, deadline))
			return err_wrap(e, "write");
	}
}

int db_tx_exec(struct db_tx *tx, const char *sql,
               const struct wire_value *params, unsigned nparams,
               struct wire_result *result, struct err *e)
{
	int rv = exec_once(tx->client, sql, params, nparams, result, e);

	if (rv != 0 && (rv == -EBUSY || is_transport_error(rv)))
		tx->retry_rv = rv;
	return rv;
}

int db_tx_query(struct db_tx *tx, const char *sql,
                const struct wire_value *params, unsigned nparams,
                struct db_rows *out, struct err *e)
{
	int rv = query_once(tx->client, sql, params, nparams, out, e);

	if (rv != 0 && (rv == -EBUSY || is_transport_error(rv)))
		tx->retry_rv = rv;
	return rv;
}

static void rollback(struct db_client *c)
{
	struct err ignored;

	if (is_connected(c) && c->conn.has_db &&
	    exec_once(c, "ROLLBACK", NULL, 0, NULL, &ignored) != 0 &&
	    !is_connected(c))
		db_client_disconnect(c);
}

int db_transaction(struct db_client *c, unsigned flags, db_tx_fn fn, void *data,
                   struct err *e)
{
	uint64_t deadline = db__now_ms() + c->timeout_ms;
	unsigned delay = BACKOFF_MIN_MS, attempts = 0;
	struct db_tx tx = {.client = c};
	int rv;

	for (;; attempts++) {
		tx.retry_rv = 0;
		c->conn.deadline_ms = attempt_deadline(c, deadline);
		rv = connect_leader(c, c->conn.deadline_ms, e);
		if (rv != 0) {
			if (!is_transport_error(rv))
				return rv;
			goto retry;
		}
		c->conn.deadline_ms = deadline;
		rv = exec_once(c, "BEGIN", NULL, 0, NULL, e);
		if (rv != 0) {
			tx.retry_rv = rv;
			goto retry_after_rollback;
		}
		rv = fn(&tx, data, e);
		if (rv != 0) {
			rollback(c);
			if (tx.retry_rv != 0)
				goto retry;
			return rv; /* the caller's own failure */
		}
		rv = exec_once(c, "COMMIT", NULL, 0, NULL, e);
		if (rv == 0)
			return 0;
		if (is_refusal(c, rv)) {
			/* Refused, not applied: safe to run again. */
			goto retry_after_rollback;
		}
		if (!is_transport_error(rv)) {
			rollback(c);
			return rv; /* e.g. a deferred constraint */
		}
		db_client_disconnect(c);
		if (!(flags & DB_TX_IDEMPOTENT)) {
			e->code = -ECONNABORTED;
			return err_wrap(e, "commit outcome unknown");
		}
		goto retry;

	retry_after_rollback:
		rollback(c);
	retry:
		if (rv == -ENOTCONN || !is_connected(c))
			db_client_disconnect(c);
		/* local_only: a node that does not lead will not start to. */
		if (c->local_only && rv == -ENOTCONN)
			return rv;
		if (!backoff(&delay, deadline))
			return err_wrap(e, "transaction (%u attempts)",
			                attempts + 1);
	}
}

/* ------------------------------------------------------- cluster ops */

int db_leader(struct db_client *c, uint64_t *id, char *address, size_t size,
              struct err *e)
{
	uint64_t deadline = db__now_ms() + c->timeout_ms;
	struct db_conn conn;
	char failures[ERR_MSG_MAX] = "no addresses";
	unsigned i, n = c->local_only ? 1 : c->naddresses;
	int rv = -EHOSTDOWN;

	/* Ask each known node in turn; a node that is not a voter answers
	 * id 0, and so does one that knows no leader. */
	for (i = 0; i < n; i++) {
		db__conn_init(&conn);
		rv = db__conn_open(&conn, c->addresses[i], deadline, c->dial,
		                   c->dial_data, e);
		if (rv == 0)
			rv = ask_leader(&conn, id, address, size, e);
		db__conn_close(&conn);
		if (rv == 0 && (*id != 0 || c->local_only))
			return 0;
		if (rv != 0)
			snprintf(failures, sizeof failures, "%s", e->msg);
	}
	if (rv == 0)
		return 0; /* reachable, but no leader known */
	return err_set(e, -EHOSTDOWN, "leader: no node answered (%s)",
	               failures);
}

/* Runs an encoded membership request on the leader, retrying while it
 * is not reachable or refuses for not being the leader. */
typedef int (*encode_fn)(struct db_client *c, const void *arg, struct err *e);

static int leader_request(struct db_client *c, encode_fn encode,
                          const void *arg, const char *what, struct err *e)
{
	uint64_t deadline = db__now_ms() + c->timeout_ms;
	unsigned delay = BACKOFF_MIN_MS;
	int rv;

	for (;;) {
		c->conn.deadline_ms = attempt_deadline(c, deadline);
		rv = connect_leader(c, c->conn.deadline_ms, e);
		if (rv == 0) {
			c->conn.deadline_ms = deadline;
			rv = encode(c, arg, e);
			if (rv == 0)
				rv = db__conn_roundtrip(&c->conn, e);
			if (rv == 0)
				return 0;
			if (!is_refusal(c, rv))
				return err_wrap(e, "%s", what);
		} else if (!is_transport_error(rv)) {
			return err_wrap(e, "%s", what);
		}
		db_client_disconnect(c);
		/* local_only: a node that does not lead will not start to. */
		if (c->local_only && rv == -ENOTCONN)
			return rv;
		if (!backoff(&delay, deadline))
			return err_wrap(e, "%s", what);
	}
}

struct member_arg {
	uint64_t id;
	const char *address;
	enum wire_role role;
};

static int encode_cluster(struct db_client *c, const void *arg, struct err *e)
{
	(void)arg;
	return wire_cluster_encode(&c->conn.out, e);
}

static int encode_add(struct db_client *c, const void *arg, struct err *e)
{
	const struct member_arg *m = arg;

	return wire_add_encode(&c->conn.out, m->id, m->address, e);
}

static int encode_assign(struct db_client *c, const void *arg, struct err *e)
{
	const struct member_arg *m = arg;

	return wire_assign_encode(&c->conn.out, m->id, m->role, e);
}

static int encode_remove(struct db_client *c, const void *arg, struct err *e)
{
	const struct member_arg *m = arg;

	return wire_remove_encode(&c->conn.out, m->id, e);
}

static int encode_transfer(struct db_client *c, const void *arg, struct err *e)
{
	const struct member_arg *m = arg;

	return wire_transfer_encode(&c->conn.out, m->id, e);
}

int db_cluster(struct db_client *c, struct db_member *out, unsigned max,
               unsigned *n, struct err *e)
{
	struct wire_servers it;
	struct wire_node node;
	int rv;

	rv = leader_request(c, encode_cluster, NULL, "cluster", e);
	if (rv == 0)
		rv = wire_servers_begin(c->conn.hdr.type, c->conn.in.data,
		                        c->conn.in.len, &it, e);
	if (rv != 0)
		return rv;
	*n = 0;
	while ((rv = wire_servers_next(&it, &node, e)) == 1) {
		if (*n == max)
			return err_set(e, -E2BIG,
			               "cluster: more than %u "
			               "members",
			               max);
		out[*n].id = node.id;
		snprintf(out[*n].address, sizeof out[*n].address, "%s",
		         node.address);
		out[*n].role = (enum wire_role)node.role;
		(*n)++;
	}
	return rv;
}

int db_add(struct db_client *c, uint64_t id, const char *address, struct err *e)
{
	struct member_arg m = {.id = id, .address = address};
	int rv = leader_request(c, encode_add, &m, "add", e);

	return rv != 0 ? rv
	               : wire_empty_decode(c->conn.hdr.type, c->conn.in.data,
	                                   c->conn.in.len, e);
}

int db_assign(struct db_client *c, uint64_t id, enum wire_role role,
              struct err *e)
{
	struct member_arg m = {.id = id, .role = role};
	int rv = leader_request(c, encode_assign, &m, "assign", e);

	return rv != 0 ? rv
	               : wire_empty_decode(c->conn.hdr.type, c->conn.in.data,
	                                   c->conn.in.len, e);
}

int db_remove(struct db_client *c, uint64_t id, struct err *e)
{
	struct member_arg m = {.id = id};
	int rv = leader_request(c, encode_remove, &m, "remove", e);

	return rv != 0 ? rv
	               : wire_empty_decode(c->conn.hdr.type, c->conn.in.data,
	                                   c->conn.in.len, e);
}

int db_transfer(struct db_client *c, uint64_t id, struct err *e)
{
	struct member_arg m = {.id = id};
	int rv = leader_request(c, encode_transfer, &m, "transfer", e);

	if (rv == 0)
		rv = wire_empty_decode(c->conn.hdr.type, c->conn.in.data,
		                       c->conn.in.len, e);
	/* The node we talk to no longer leads. */
	db_client_disconnect(c);
	return rv;
}

int db_probe(struct db_client *c, const char *address, unsigned timeout_ms,
             struct err *e)
{
	struct db_conn conn;
	char leader[128];
	uint64_t id;
	int rv;

	db__conn_init(&conn);
	rv = db__conn_open(&conn, address, db__now_ms() + timeout_ms, c->dial,
	                   c->dial_data, e);
	if (rv == 0)
		rv = ask_leader(&conn, &id, leader, sizeof leader, e);
	db__conn_close(&conn);
	return rv;
}
