/* db_bench: measures commit latency and batched insert throughput of a
 * cairn dqlite cluster through cairn's own client (consensus/client.c).
 *
 *   db_bench [--runs N] [--commits N] [--warmup N] [--batches N]
 *            [--batch-rows N] [--rows-per-statement N] [--value-bytes N]
 *            [--tunnel DATA_DIR] [--cairn-schema] IP:PORT...
 *
 * The addresses are dqlite nodes' plain TCP addresses, or with --tunnel
 * agents' db_listen addresses: the client then dials through cairn's
 * mutual-TLS dqlite tunnel (rpc/tunnel.c) with the identity of the agent
 * whose data dir is DATA_DIR (pki/ca.crt, node.crt, node.key), from a
 * dial-only tunnel on a loop of its own thread, as the agent's DB thread
 * dials through the agent's loop.
 *
 * --cairn-schema first gives the cluster cairn's own schema (every member
 * declares support, then the migrations run; not timed), so that bare
 * dqlite nodes hold the same tables as an agents' cluster: dqlite 1.11
 * re-reads the whole schema on every node at every commit (its checkpoint
 * check opens a connection each time), so the schema's size shows in the
 * commit latency.
 *
 * Each run uses a table of its own (created before, dropped after, neither
 * timed) and measures two things:
 * - single-row commits: `warmup` untimed, then `commits` timed INSERTs of
 *   one value-bytes TEXT each, every one its own implicit transaction
 *   through db_exec (one EXEC_SQL round trip, committed through Raft
 *   before the answer), each timed with CLOCK_MONOTONIC: p50 and p99;
 * - batches: `batches` db_transaction calls of batch-rows parameterised
 *   INSERTs each (BEGIN, the rows, COMMIT), timed as a whole: rows/s.
 *   By default each row is its own db_tx_exec (one round trip a row);
 *   --rows-per-statement N inserts N rows a statement instead (a
 *   multi-row VALUES list, N parameters), to show what round trips cost.
 * Prints one line per run, then the median over the runs of each figure:
 *
 *   run=1 commit_p50_ms=1.10 commit_p99_ms=3.20 batch_rows_s=25000
 *   ...
 *   db_commit_p50_ms=1.10 db_commit_p99_ms=3.20 db_batch_rows_s=25000
 *
 * Percentiles are nearest-rank. Progress and errors go to stderr. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/consensus.h"
#include "rpc/rpc.h"

#define RUNS_MAX        99
#define VALUE_BYTES_MAX 65536
#define TIMEOUT_MS      10000
#define PEM_FILE_MAX    (64 * 1024)
#define PATH_MAX_BYTES  4200

struct options {
	unsigned runs;
	unsigned commits;
	unsigned warmup;
	unsigned batches;
	unsigned batch_rows;
	unsigned rows_per_statement;
	unsigned value_bytes;
};

struct run_result {
	double commit_p50_ms;
	double commit_p99_ms;
	double batch_rows_s;
};

/* What one batch transaction inserts, and the buffers to build its
 * statements in (values rewritten per row, one per parameter). */
struct batch {
	char *sql;
	char *values; /* per_statement values of value_bytes + 1 each */
	struct wire_value *params;
	unsigned per_statement;
	unsigned value_bytes;
	unsigned rows;
	uint64_t next_seq;
};

/* --tunnel: a dial-only tunnel whose loop runs in a thread of its own;
 * rpc_tunnel_dial is called from the benchmark's (main) thread. */
struct tunnel {
	uv_loop_t loop;
	uv_async_t stop; /* from the main thread: stop the tunnel */
	pthread_t thread;
	struct rpc_tls_ctx *ctx;
	struct rpc_tunnel *tunnel;
	bool has_loop;
	bool has_thread;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A value of exactly value_bytes printable characters, unique per seq so
 * that no layer can get away with storing one value many times. */
static void fill_value(char *value, unsigned value_bytes, uint64_t seq)
{
	int n;

	memset(value, 'x', value_bytes);
	value[value_bytes] = '\0';
	n = snprintf(value, value_bytes + 1, "%020llu",
	             (unsigned long long)seq);
	if (n >= 0 && (unsigned)n < value_bytes)
		value[n] = 'x'; /* snprintf's NUL: keep the full length */
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static double percentile(const double *sorted, unsigned n, unsigned pct)
{
	unsigned rank = (unsigned)(((uint64_t)n * pct + 99) / 100);

	return sorted[rank > 0 ? rank - 1 : 0];
}

static double median(double *values, unsigned n)
{
	qsort(values, n, sizeof *values, compare_double);
	if (n % 2 == 1)
		return values[n / 2];
	return (values[n / 2 - 1] + values[n / 2]) / 2;
}

static int insert_batch(struct db_tx *tx, void *data, struct err *e)
{
	struct batch *b = data;
	struct wire_result result;
	unsigned i, j;
	char *value;
	int rv;

	/* The transaction may be run again after BUSY: each run starts at
	 * the same sequence number so the rerun inserts the same rows. */
	for (i = 0; i < b->rows; i += b->per_statement) {
		for (j = 0; j < b->per_statement; j++) {
			value = b->values + (size_t)j * (b->value_bytes + 1);
			fill_value(value, b->value_bytes, b->next_seq + i + j);
			b->params[j] = wire_value_text(value);
		}
		rv = db_tx_exec(tx, b->sql, b->params, b->per_statement,
		                &result, e);
		if (rv != 0)
			return rv;
		if (result.rows_affected != b->per_statement)
			return err_set(e, -EPROTO, "%llu rows inserted, not %u",
			               (unsigned long long)result.rows_affected,
			               b->per_statement);
	}
	return 0;
}

/* Writes "INSERT INTO table (v) VALUES (?),(?),..." with n rows. */
static void format_insert(char *sql, const char *table, unsigned n)
{
	unsigned i;

	sql += sprintf(sql, "INSERT INTO %s (v) VALUES (?)", table);
	for (i = 1; i < n; i++)
		sql += sprintf(sql, ",(?)");
}

static int run_once(struct db_client *c, const struct options *o, unsigned run,
                    double *latencies, struct batch *b, struct run_result *out,
                    struct err *e)
{
	char table[32], create_sql[128], insert_sql[96], drop_sql[64];
	char *value = b->values;
	struct wire_value param;
	uint64_t seq = 0;
	double start;
	unsigned i;
	int rv;

	snprintf(table, sizeof table, "bench_run_%u", run);
	snprintf(drop_sql, sizeof drop_sql, "DROP TABLE IF EXISTS %s", table);
	snprintf(create_sql, sizeof create_sql,
	         "CREATE TABLE %s (id INTEGER PRIMARY KEY, "
	         "v TEXT NOT NULL)",
	         table);
	format_insert(insert_sql, table, 1);
	format_insert(b->sql, table, b->per_statement);
	rv = db_exec(c, drop_sql, NULL, 0, NULL, e);
	if (rv == 0)
		rv = db_exec(c, create_sql, NULL, 0, NULL, e);
	if (rv != 0)
		return err_wrap(e, "run %u: create %s", run, table);

	for (i = 0; i < o->warmup + o->commits; i++) {
		fill_value(value, o->value_bytes, seq++);
		param = wire_value_text(value);
		start = now_s();
		rv = db_exec(c, insert_sql, &param, 1, NULL, e);
		if (rv != 0)
			return err_wrap(e, "run %u: commit %u", run, i);
		if (i >= o->warmup)
			latencies[i - o->warmup] = (now_s() - start) * 1e3;
	}
	qsort(latencies, o->commits, sizeof *latencies, compare_double);
	out->commit_p50_ms = percentile(latencies, o->commits, 50);
	out->commit_p99_ms = percentile(latencies, o->commits, 99);

	start = now_s();
	for (i = 0; i < o->batches; i++) {
		b->next_seq = seq;
		rv = db_transaction(c, 0, insert_batch, b, e);
		if (rv != 0)
			return err_wrap(e, "run %u: batch %u", run, i);
		seq += o->batch_rows;
	}
	out->batch_rows_s =
	        (double)o->batches * o->batch_rows / (now_s() - start);

	/* Keeps the database, and so dqlite's snapshots, small. */
	rv = db_exec(c, drop_sql, NULL, 0, NULL, e);
	if (rv != 0)
		return err_wrap(e, "run %u: drop %s", run, table);
	return 0;
}

static void *tunnel_main(void *data)
{
	struct tunnel *t = data;

	uv_run(&t->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void on_tunnel_stopped(void *data)
{
	struct tunnel *t = data;

	t->tunnel = NULL;
	uv_stop(&t->loop);
}

static void on_tunnel_stop(uv_async_t *a)
{
	struct tunnel *t = a->data;

	uv_close((uv_handle_t *)&t->stop, NULL);
	if (t->tunnel != NULL)
		rpc_tunnel_stop(t->tunnel, on_tunnel_stopped, t);
}

/* Reads DATA_DIR/pki into a client TLS context. */
static int tunnel_tls(struct tunnel *t, const char *data_dir, struct err *e)
{
	struct rpc_tls_config tc = {0};
	struct buf ca, cert, key;
	char path[PATH_MAX_BYTES];
	int rv;

	buf_init(&ca, PEM_FILE_MAX);
	buf_init(&cert, PEM_FILE_MAX);
	buf_init(&key, PEM_FILE_MAX);
	snprintf(path, sizeof path, "%s/pki/ca.crt", data_dir);
	rv = file_read_all(path, PEM_FILE_MAX, &ca, e);
	if (rv == 0) {
		snprintf(path, sizeof path, "%s/pki/node.crt", data_dir);
		rv = file_read_all(path, PEM_FILE_MAX, &cert, e);
	}
	if (rv == 0) {
		snprintf(path, sizeof path, "%s/pki/node.key", data_dir);
		rv = rpc_pki_key_file_read(path, &key, e);
	}
	if (rv == 0) {
		tc.ca_cert_pem = ca.data;
		tc.cert_pem = cert.data;
		tc.key_pem = key.data;
		rv = rpc_tls_ctx_create(&tc, false, &t->ctx, e);
	}
	buf_free(&ca);
	buf_free(&cert);
	rpc_pki_key_pem_free(&key);
	return rv;
}

static int tunnel_start(struct tunnel *t, const char *data_dir, struct err *e)
{
	struct rpc_tunnel_config tc = {0};
	int rv;

	rv = tunnel_tls(t, data_dir, e);
	if (rv != 0)
		return err_wrap(e, "tunnel identity from %s", data_dir);
	rv = uv_loop_init(&t->loop);
	if (rv != 0)
		return err_set(e, rv, "uv_loop_init: %s", uv_strerror(rv));
	t->has_loop = true;
	rv = uv_async_init(&t->loop, &t->stop, on_tunnel_stop);
	if (rv != 0) {
		/* Nothing is on the loop yet: closing it cannot fail. */
		uv_loop_close(&t->loop);
		t->has_loop = false;
		return err_set(e, rv, "uv_async_init: %s", uv_strerror(rv));
	}
	t->stop.data = t;
	/* Dial only: no listener, and no local address, so that every
	 * address goes through TLS. The socket name is required but never
	 * used without a listener or a local address. */
	tc.client_ctx = t->ctx;
	tc.local_socket = "@cairn-bench-unused";
	rv = rpc_tunnel_start(&t->loop, &tc, &t->tunnel, e);
	if (rv == 0) {
		rv = -pthread_create(&t->thread, NULL, tunnel_main, t);
		if (rv != 0)
			err_sys(e, rv, "pthread_create");
	}
	if (rv != 0)
		return rv; /* tunnel_stop cleans up */
	t->has_thread = true;
	return 0;
}

/* Stops the tunnel (its connections must be closed or unused by now),
 * joins its thread and frees everything. Fine after a failed start. */
static void tunnel_stop(struct tunnel *t)
{
	int rv;

	if (t->has_loop) {
		if (t->has_thread) {
			uv_async_send(&t->stop);
			pthread_join(t->thread, NULL);
			t->has_thread = false;
		} else {
			on_tunnel_stop(&t->stop); /* the loop never ran */
		}
		/* The thread is gone: whatever is left closing runs here. */
		uv_run(&t->loop, UV_RUN_DEFAULT);
		rv = uv_loop_close(&t->loop);
		if (rv != 0)
			fprintf(stderr, "db_bench: tunnel loop: %s\n",
			        uv_strerror(rv));
		t->has_loop = false;
	}
	rpc_tls_ctx_destroy(t->ctx);
	t->ctx = NULL;
}

/* Every member declares that it supports cairn's schema; the last one
 * to do so applies the migrations. */
static int apply_cairn_schema(struct db_client *c, struct err *e)
{
	struct db_member members[DB_MAX_ADDRESSES];
	unsigned n = 0, i, version = 0;
	int rv;

	rv = db_cluster(c, members, DB_MAX_ADDRESSES, &n, e);
	for (i = 0; rv == 0 && i < n; i++)
		rv = db_schema_ensure(c, members[i].id, &version, e);
	if (rv != 0)
		return err_wrap(e, "cairn schema");
	if (version != db_schema_newest())
		return err_set(e, -EAGAIN,
		               "cairn schema: at version %u, not %u", version,
		               db_schema_newest());
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: db_bench [--runs N] [--commits N] "
	                "[--warmup N] [--batches N] [--batch-rows N] "
	                "[--rows-per-statement N] [--value-bytes N] "
	                "[--tunnel DATA_DIR] [--cairn-schema] IP:PORT...\n");
	exit(2);
}

static unsigned parse_count(const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "db_bench: %s: expected %u to %u\n", s, min,
		        max);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
	        {"runs", required_argument, NULL, 'r'},
	        {"commits", required_argument, NULL, 'c'},
	        {"warmup", required_argument, NULL, 'w'},
	        {"batches", required_argument, NULL, 'b'},
	        {"batch-rows", required_argument, NULL, 'n'},
	        {"rows-per-statement", required_argument, NULL, 's'},
	        {"value-bytes", required_argument, NULL, 'v'},
	        {"tunnel", required_argument, NULL, 't'},
	        {"cairn-schema", no_argument, NULL, 'S'},
	        {NULL, 0, NULL, 0},
	};
	struct options o = {.runs = 5,
	                    .commits = 2000,
	                    .warmup = 100,
	                    .batches = 100,
	                    .batch_rows = 100,
	                    .rows_per_statement = 1,
	                    .value_bytes = 256};
	struct run_result results[RUNS_MAX];
	double p50s[RUNS_MAX], p99s[RUNS_MAX], rates[RUNS_MAX];
	struct db_client_config cc = {.timeout_ms = TIMEOUT_MS};
	struct db_client *client = NULL;
	struct tunnel tunnel = {0};
	const char *tunnel_dir = NULL;
	bool cairn_schema = false;
	double *latencies = NULL;
	struct batch b = {0};
	struct err e;
	unsigned run;
	int opt, rv = 1;

	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (opt) {
		case 'r':
			o.runs = parse_count(optarg, 1, RUNS_MAX);
			break;
		case 'c':
			o.commits = parse_count(optarg, 1, 10000000);
			break;
		case 'w':
			o.warmup = parse_count(optarg, 0, 10000000);
			break;
		case 'b':
			o.batches = parse_count(optarg, 1, 10000000);
			break;
		case 'n':
			o.batch_rows = parse_count(optarg, 1, 1000000);
			break;
		case 's':
			o.rows_per_statement =
			        parse_count(optarg, 1, WIRE_PARAMS_MAX);
			break;
		case 'v':
			o.value_bytes =
			        parse_count(optarg, 20, VALUE_BYTES_MAX);
			break;
		case 't':
			tunnel_dir = optarg;
			break;
		case 'S':
			cairn_schema = true;
			break;
		default:
			usage();
		}
	}
	if (optind == argc || argc - optind > DB_MAX_ADDRESSES)
		usage();
	if (o.batch_rows % o.rows_per_statement != 0) {
		fprintf(stderr, "db_bench: --batch-rows must be a multiple of "
		                "--rows-per-statement\n");
		exit(2);
	}
	signal(SIGPIPE, SIG_IGN);

	cc.addresses = (const char *const *)&argv[optind];
	cc.naddresses = (unsigned)(argc - optind);
	b.per_statement = o.rows_per_statement;
	b.value_bytes = o.value_bytes;
	b.rows = o.batch_rows;
	b.sql = mem_alloc(64 + 4 * (size_t)b.per_statement);
	b.values = mem_alloc((size_t)b.per_statement * (o.value_bytes + 1));
	b.params = mem_calloc(b.per_statement, sizeof *b.params);
	latencies = mem_calloc(o.commits, sizeof *latencies);
	if (b.sql == NULL || b.values == NULL || b.params == NULL ||
	    latencies == NULL) {
		fprintf(stderr, "db_bench: out of memory\n");
		goto out;
	}
	if (tunnel_dir != NULL) {
		if (tunnel_start(&tunnel, tunnel_dir, &e) != 0) {
			fprintf(stderr, "db_bench: %s\n", e.msg);
			goto out;
		}
		cc.dial = rpc_tunnel_dial;
		cc.dial_data = tunnel.tunnel;
	}
	if (db_client_create(&cc, &client, &e) != 0) {
		fprintf(stderr, "db_bench: %s\n", e.msg);
		goto out;
	}
	if (cairn_schema && apply_cairn_schema(client, &e) != 0) {
		fprintf(stderr, "db_bench: %s\n", e.msg);
		goto out;
	}
	for (run = 0; run < o.runs; run++) {
		struct run_result *r = &results[run];

		if (run_once(client, &o, run + 1, latencies, &b, r, &e) != 0) {
			fprintf(stderr, "db_bench: %s\n", e.msg);
			goto out;
		}
		printf("run=%u commit_p50_ms=%.2f commit_p99_ms=%.2f "
		       "batch_rows_s=%.0f\n",
		       run + 1, r->commit_p50_ms, r->commit_p99_ms,
		       r->batch_rows_s);
		fflush(stdout);
		p50s[run] = r->commit_p50_ms;
		p99s[run] = r->commit_p99_ms;
		rates[run] = r->batch_rows_s;
	}
	printf("db_commit_p50_ms=%.2f db_commit_p99_ms=%.2f "
	       "db_batch_rows_s=%.0f\n",
	       median(p50s, o.runs), median(p99s, o.runs),
	       median(rates, o.runs));
	rv = fflush(stdout) == 0 ? 0 : 1;

out:
	db_client_destroy(client); /* first: it dials through the tunnel */
	tunnel_stop(&tunnel);
	mem_free(latencies);
	mem_free(b.params);
	mem_free(b.values);
	mem_free(b.sql);
	return rv;
}
