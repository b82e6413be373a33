/* Integration tests for consensus/schema.c and consensus/async.c against a
 * real three-node dqlite cluster running in this process: migrations and
 * their gate, the refusal of a newer schema, the revision that writes move,
 * and the change feed on a real loop.
 *
 * The cluster is started once for the group; every test works in a
 * database of its own (dqlite serves many by name), so tests start from an
 * empty schema without restarting nodes. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consensus/consensus.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define NODES       3
#define PORT_TRIES  20
#define LATENCY_MS  20
#define WAIT_MS     5000
#define FEED_MAX_MS 1000

struct node {
	struct db_node *db_node;
	uint64_t id;
	char address[32];
};

/* The group's cluster. */
static struct {
	char dir[PATH_MAX];
	struct node nodes[NODES];
	const char *addresses[NODES];
	unsigned test_count; /* names each test's database */
} cluster;

/* The current test's database and client. */
static struct {
	char database[64];
	struct db_client_config config;
	struct db_client *client;
	struct err e;
} t;

static uint64_t now_ms(void)
{
	return clock_mono_ms(clock_real());
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* ------------------------------------------------------------------------
 * The cluster, for the whole group. */

/* Starts node i on a random free port; retries when the port is taken. */
static int start_node(unsigned i)
{
	struct node *n = &cluster.nodes[i];
	char dir[PATH_MAX + 32], marker[PATH_MAX + 32];
	struct db_node_config config;
	struct err e;
	int attempt, rv = -EADDRNOTAVAIL;

	for (attempt = 0; attempt < PORT_TRIES && rv == -EADDRNOTAVAIL;
	     attempt++) {
		snprintf(n->address, sizeof n->address, "127.0.0.1:%d",
		         30000 + rand() % 10000);
		/* A fresh directory per attempt: node 1 bootstraps with its
		 * address, which must be the one it finally binds. */
		snprintf(dir, sizeof dir, "%s/node%u.%d", cluster.dir, i + 1,
		         attempt);
		snprintf(marker, sizeof marker, "%s/node%u.%d.initialized",
		         cluster.dir, i + 1, attempt);
		memset(&config, 0, sizeof config);
		config.id = i + 1;
		config.address = n->address;
		config.dir = dir;
		config.marker_path = marker;
		config.bootstrap = i == 0;
		config.latency_ms = LATENCY_MS;
		rv = db_node_start(&config, &n->db_node, &e);
	}
	if (rv != 0) {
		print_error("start node %u: %s\n", i + 1, e.msg);
		return rv;
	}
	n->id = i + 1;
	cluster.addresses[i] = n->address;
	return 0;
}

static int stop_cluster(void **state)
{
	unsigned i;

	(void)state;
	for (i = NODES; i-- > 0;) {
		db_node_stop(cluster.nodes[i].db_node);
		cluster.nodes[i].db_node = NULL;
	}
	if (cluster.dir[0] != '\0')
		nftw(cluster.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	cluster.dir[0] = '\0';
	return 0;
}

static int start_cluster(void **state)
{
	struct db_client_config config = {0};
	struct db_client *client = NULL;
	struct err e;
	unsigned i;
	int rv;

	(void)state;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(cluster.dir, sizeof cluster.dir, "/tmp/cairn-schema-XXXXXX");
	if (mkdtemp(cluster.dir) == NULL) {
		cluster.dir[0] = '\0';
		return -1;
	}
	for (i = 0; i < NODES; i++) {
		if (start_node(i) != 0)
			goto err;
	}
	config.addresses = cluster.addresses;
	config.naddresses = 1;
	rv = db_client_create(&config, &client, &e);
	for (i = 1; rv == 0 && i < NODES; i++)
		rv = db_membership_join(client, cluster.nodes[i].id,
		                        cluster.nodes[i].address, &e);
	db_client_destroy(client);
	if (rv != 0) {
		print_error("join: %s\n", e.msg);
		goto err;
	}
	return 0;

err:
	stop_cluster(state);
	return -1;
}

/* ------------------------------------------------------------------------
 * Per test: a database of its own and a client to it. */

static void client_config(struct db_client_config *c, const char *database)
{
	memset(c, 0, sizeof *c);
	c->addresses = cluster.addresses;
	c->naddresses = NODES;
	c->database = database;
}

static int setup_test(void **state)
{
	(void)state;
	memset(&t, 0, sizeof t);
	snprintf(t.database, sizeof t.database, "schema_live_%u",
	         ++cluster.test_count);
	client_config(&t.config, t.database);
	return db_client_create(&t.config, &t.client, &t.e) == 0 ? 0 : -1;
}

static int teardown_test(void **state)
{
	(void)state;
	log_set_sink(NULL, NULL);
	log_set_level(LOG_LEVEL_WARN);
	db_client_destroy(t.client);
	t.client = NULL;
	return 0;
}

#define assert_ok(call)                                                  \
	do {                                                             \
		int rv_ = (call);                                        \
		if (rv_ != 0)                                            \
			print_error("%s: %d %s\n", #call, rv_, t.e.msg); \
		assert_int_equal(rv_, 0);                                \
	} while (0)

static int64_t query_int(const char *sql)
{
	struct db_rows rows;
	int64_t v;

	assert_ok(db_query(t.client, sql, NULL, 0, &rows, &t.e));
	assert_int_equal(rows.nrows, 1);
	assert_int_equal(db_rows_at(&rows, 0, 0)->type, WIRE_INTEGER);
	v = db_rows_at(&rows, 0, 0)->integer;
	db_rows_free(&rows);
	return v;
}

static bool has_table(const char *name)
{
	char sql[128];

	snprintf(sql, sizeof sql,
	         "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
	         "AND name = '%s'",
	         name);
	return query_int(sql) == 1;
}

static unsigned ensure_with(uint64_t node_id, const struct db_migration *m,
                            unsigned n)
{
	unsigned version = UINT_MAX;

	assert_ok(
	        db_schema_ensure_with(t.client, node_id, m, n, &version, &t.e));
	return version;
}

/* cairn's schema, with every member saying it knows it. */
static void ensure_cairn_schema(void)
{
	unsigned i, version = 0;

	for (i = 0; i < NODES; i++)
		assert_ok(db_schema_ensure(t.client, cluster.nodes[i].id,
		                           &version, &t.e));
	assert_int_equal(version, db_schema_newest());
}

static uint64_t revision(void)
{
	uint64_t r = UINT64_MAX;

	assert_ok(db_revision(t.client, &r, &t.e));
	return r;
}

/* A list of the tests' own. Migration 1 has two statements, so that the
 * tests see the second one run too. */
static const struct db_migration test_list[] = {
        {1, "one",
         "CREATE TABLE one (id INTEGER PRIMARY KEY);"
         "CREATE TABLE one_more (id INTEGER PRIMARY KEY)"},
        {2, "two", "CREATE TABLE two (id INTEGER PRIMARY KEY)"},
        {3, "three",
         "ALTER TABLE two ADD COLUMN name TEXT NOT NULL "
         "DEFAULT ''"},
};

/* Log lines, captured from any thread. */
static struct {
	pthread_mutex_t mutex;
	char text[16384];
	size_t len;
} logged = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static void capture_log(void *data, enum log_level level, const char *line,
                        size_t len)
{
	(void)data;
	(void)level;
	pthread_mutex_lock(&logged.mutex);
	if (len < sizeof logged.text - logged.len) {
		memcpy(logged.text + logged.len, line, len);
		logged.len += len;
		logged.text[logged.len] = '\0';
	}
	pthread_mutex_unlock(&logged.mutex);
}

static void capture_log_start(void)
{
	pthread_mutex_lock(&logged.mutex);
	logged.len = 0;
	logged.text[0] = '\0';
	pthread_mutex_unlock(&logged.mutex);
	log_set_sink(capture_log, NULL);
	log_set_level(LOG_LEVEL_INFO);
}

/* ------------------------------------------------------------------------
 * Schema. */

static void
test_schema_live_version_and_revision_are_zero_before_any_schema(void **state)
{
	unsigned version = UINT_MAX;

	(void)state;
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, 0);
	assert_int_equal(revision(), 0);
}

static void test_schema_live_applies_once_every_member_supports_it(void **state)
{
	unsigned newest = db_schema_newest();

	(void)state;
	/* Nodes 2 and 3 first: each time, someone has not spoken yet. */
	assert_int_equal(ensure_with(2, db_migrations, db_migrations_count), 0);
	assert_int_equal(ensure_with(3, db_migrations, db_migrations_count), 0);
	assert_false(has_table("cluster"));
	assert_int_equal(ensure_with(1, db_migrations, db_migrations_count),
	                 newest);

	assert_int_equal(query_int("SELECT COUNT(*) FROM schema_migrations"),
	                 newest);
	assert_int_equal(query_int("SELECT COUNT(*) FROM schema_support"),
	                 NODES);
	assert_true(has_table("tasks")); /* the last statement of migration 1 */
	assert_int_equal(query_int("SELECT COUNT(*) FROM cluster"), 1);
	/* Each migration moves the revision by one (migration 1 from 0). */
	assert_int_equal(revision(), newest);
}

static void test_schema_live_ensure_again_changes_nothing(void **state)
{
	unsigned version = 0;
	uint64_t before;

	(void)state;
	ensure_cairn_schema();
	before = revision();
	assert_ok(db_schema_ensure(t.client, 1, &version, &t.e));
	assert_ok(db_schema_ensure(t.client, 2, &version, &t.e));
	assert_int_equal(version, db_schema_newest());
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, db_schema_newest());
	assert_int_equal(query_int("SELECT COUNT(*) FROM schema_migrations"),
	                 db_schema_newest());
	assert_int_equal(revision(), before);
}

struct racer {
	pthread_t thread;
	uint64_t node_id;
	const char *database;
	unsigned version;
	int rv;
	struct err e;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct db_client_config config;
	struct db_client *c;

	client_config(&config, r->database);
	r->rv = db_client_create(&config, &c, &r->e);
	if (r->rv != 0)
		return NULL;
	r->rv = db_schema_ensure_with(c, r->node_id, test_list,
	                              CAIRN_ARRAY_SIZE(test_list), &r->version,
	                              &r->e);
	db_client_destroy(c);
	return NULL;
}

static void
test_schema_live_concurrent_ensures_apply_each_migration_once(void **state)
{
	struct racer racers[NODES];
	unsigned i, version = 0;

	(void)state;
	for (i = 0; i < NODES; i++) {
		memset(&racers[i], 0, sizeof racers[i]);
		racers[i].node_id = cluster.nodes[i].id;
		racers[i].database = t.database;
		assert_int_equal(pthread_create(&racers[i].thread, NULL, race,
		                                &racers[i]),
		                 0);
	}
	for (i = 0; i < NODES; i++) {
		pthread_join(racers[i].thread, NULL);
		if (racers[i].rv != 0)
			print_error("node %u: %s\n", i + 1, racers[i].e.msg);
		assert_int_equal(racers[i].rv, 0);
		assert_true(racers[i].version <= CAIRN_ARRAY_SIZE(test_list));
	}
	/* Whoever spoke last saw everyone's support and applied them all. */
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, CAIRN_ARRAY_SIZE(test_list));
	assert_int_equal(query_int("SELECT COUNT(*) FROM schema_migrations"),
	                 CAIRN_ARRAY_SIZE(test_list));
	assert_true(has_table("one_more"));
}

static void
test_schema_live_member_with_older_max_holds_migration_back(void **state)
{
	unsigned version = 0;

	(void)state;
	/* Node 2 runs an older cairnd that knows versions 1 and 2. */
	assert_int_equal(ensure_with(2, test_list, 2), 0);
	assert_int_equal(ensure_with(3, test_list, 3), 0);
	capture_log_start();
	assert_int_equal(ensure_with(1, test_list, 3), 2);
	log_set_sink(NULL, NULL);
	log_set_level(LOG_LEVEL_WARN);
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, 2);
	assert_true(has_table("one_more"));
	assert_true(has_table("two"));
	assert_int_equal(query_int("SELECT COUNT(*) FROM pragma_table_info("
	                           "'two') WHERE name = 'name'"),
	                 0);
	/* The log names the version held back and who holds it. */
	if (strstr(logged.text, "version=3") == NULL ||
	    strstr(logged.text, "nodes=\"2\"") == NULL)
		print_error("logged:\n%s", logged.text);
	assert_non_null(strstr(logged.text, "version=3"));
	assert_non_null(strstr(logged.text, "nodes=\"2\""));

	/* Node 2 is upgraded: its next start applies migration 3. */
	assert_int_equal(ensure_with(2, test_list, 3), 3);
	assert_int_equal(query_int("SELECT COUNT(*) FROM pragma_table_info("
	                           "'two') WHERE name = 'name'"),
	                 1);
}

static void
test_schema_live_member_without_a_row_holds_migrations_back(void **state)
{
	(void)state;
	/* Node 3 has never said what it knows. */
	assert_int_equal(ensure_with(1, test_list, 3), 0);
	assert_int_equal(ensure_with(2, test_list, 3), 0);
	assert_false(has_table("one"));
	assert_int_equal(ensure_with(3, test_list, 3), 3);
}

static void test_schema_live_node_older_than_the_schema_is_refused(void **state)
{
	unsigned version = 77;
	int rv;

	(void)state;
	for (unsigned i = 0; i < NODES; i++)
		ensure_with(cluster.nodes[i].id, test_list, 3);
	rv = db_schema_ensure_with(t.client, 2, test_list, 1, &version, &t.e);
	assert_int_equal(rv, -EPROTONOSUPPORT);
	assert_int_equal(t.e.code, -EPROTONOSUPPORT);
	assert_non_null(strstr(t.e.msg, "version 3"));
	assert_non_null(strstr(t.e.msg, "up to 1"));
	assert_int_equal(version, 77); /* untouched on failure */
	/* Nothing was applied or removed. */
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, 3);
}

static void
test_schema_live_failing_migration_leaves_nothing_behind(void **state)
{
	static const struct db_migration bad[] = {
	        {1, "one", "CREATE TABLE ok1 (id INTEGER PRIMARY KEY)"},
	        {2, "broken",
	         "CREATE TABLE half (id INTEGER PRIMARY KEY);"
	         "CREATE TABLE oops ("},
	};
	unsigned version = 0, i;
	int rv = 0;

	(void)state;
	for (i = 0; i < NODES; i++)
		rv = db_schema_ensure_with(t.client, cluster.nodes[i].id, bad,
		                           2, &version, &t.e);
	assert_int_equal(rv, -EREMOTEIO);
	assert_non_null(strstr(t.e.msg, "migration 2 (broken)"));
	assert_ok(db_schema_version(t.client, &version, &t.e));
	assert_int_equal(version, 1);
	assert_true(has_table("ok1"));
	assert_false(has_table("half")); /* rolled back with the rest */
}

/* ------------------------------------------------------------------------
 * Revision. */

struct insert_guest {
	int64_t vmid;
	int fail_with; /* the fn fails after its insert when not 0 */
	unsigned runs;
};

static int insert_guest_fn(struct db_tx *tx, void *data, struct err *e)
{
	struct insert_guest *g = data;
	struct wire_value params[] = {wire_value_integer(g->vmid)};
	int rv;

	g->runs++;
	rv = db_tx_exec(tx,
	                "INSERT INTO guests (vmid, type, node, config, digest)"
	                " VALUES (?, 'qemu', 'n1', '', 'd')",
	                params, 1, NULL, e);
	if (rv != 0)
		return rv;
	if (g->fail_with != 0)
		return err_set(e, g->fail_with,
		               "guest %lld: refused on purpose",
		               (long long)g->vmid);
	return 0;
}

static void
test_schema_live_write_bumps_revision_by_one_per_transaction(void **state)
{
	struct insert_guest g = {.vmid = 100};
	uint64_t r0;

	(void)state;
	ensure_cairn_schema();
	r0 = revision();
	assert_ok(db_write(t.client, 0, insert_guest_fn, &g, &t.e));
	assert_int_equal(revision(), r0 + 1);
	g.vmid = 101;
	assert_ok(db_write(t.client, 0, insert_guest_fn, &g, &t.e));
	assert_int_equal(revision(), r0 + 2);
	assert_int_equal(query_int("SELECT COUNT(*) FROM guests"), 2);
}

static void test_schema_live_failed_write_bumps_nothing(void **state)
{
	struct insert_guest g = {.vmid = 200, .fail_with = -EINVAL};
	struct insert_guest dup = {.vmid = 201};
	uint64_t r0;
	int rv;

	(void)state;
	ensure_cairn_schema();
	assert_ok(db_write(t.client, 0, insert_guest_fn, &dup, &t.e));
	r0 = revision();

	/* The fn's own failure. */
	rv = db_write(t.client, 0, insert_guest_fn, &g, &t.e);
	assert_int_equal(rv, -EINVAL);
	assert_non_null(strstr(t.e.msg, "refused on purpose"));
	assert_int_equal(revision(), r0);
	assert_int_equal(query_int("SELECT COUNT(*) FROM guests "
	                           "WHERE vmid = 200"),
	                 0);

	/* An SQL failure inside the fn (duplicate vmid). */
	rv = db_write(t.client, 0, insert_guest_fn, &dup, &t.e);
	assert_int_equal(rv, -EREMOTEIO);
	assert_int_equal(revision(), r0);
}

static void test_schema_live_write_without_schema_fails_cleanly(void **state)
{
	struct insert_guest g = {.vmid = 300};
	int rv;

	(void)state;
	rv = db_write(t.client, 0, insert_guest_fn, &g, &t.e);
	assert_int_not_equal(rv, 0);
	assert_int_equal(revision(), 0);
}

/* ------------------------------------------------------------------------
 * The DB thread and the feed, on a real loop. */

struct feed_seen {
	unsigned calls;
	uint64_t last;
	uint64_t at_ms;
	uint64_t want;
	bool want_seen; /* a revision >= want arrived */
	bool in_notify;
	bool called_in_notify;
};

/* An op that sleeps on the DB thread and notes where things ran. */
struct blocker {
	struct db_op op;
	unsigned sleep_ms;
	char thread_name[32];
	pthread_t done_thread;
	int status;
	bool done;
};

/* The loop, the db and everything an op or a feed points to live here, not
 * on a test's stack: when an assertion fails, teardown still closes the db,
 * which runs the done callbacks of whatever was in flight. */
static struct {
	bool is_open;
	uv_loop_t loop;
	uv_timer_t watchdog;
	bool timed_out;
	struct db *db;
	bool is_closed;
	struct db_feed *feed; /* running, NULL once stopped */
	struct feed_seen seen;
	struct blocker blockers[2];
} L;

static void on_watchdog(uv_timer_t *timer)
{
	(void)timer;
	L.timed_out = true;
	uv_stop(&L.loop);
}

/* Runs the loop until *flag is true or ms pass; true when it came. */
static bool run_until(const bool *flag, unsigned ms)
{
	L.timed_out = false;
	uv_timer_start(&L.watchdog, on_watchdog, ms, 0);
	while (!*flag && !L.timed_out)
		uv_run(&L.loop, UV_RUN_ONCE);
	uv_timer_stop(&L.watchdog);
	return *flag;
}

static void run_for(unsigned ms)
{
	bool never = false;

	run_until(&never, ms);
}

static void open_db(void)
{
	memset(&L, 0, sizeof L);
	assert_int_equal(uv_loop_init(&L.loop), 0);
	uv_timer_init(&L.loop, &L.watchdog);
	L.is_open = true;
	assert_ok(db_open(&L.loop, &t.config, 16, &L.db, &t.e));
}

static void on_db_closed(struct db *db)
{
	/* db_close's callback gets only the db: the fixture is global. */
	if (db == L.db)
		L.is_closed = true;
}

/* Stops the feed, closes the db and the loop; 0, or -1 when something
 * stayed open. Used by tests and, after a failed assertion, teardown. */
static int loop_close(void)
{
	int rv = 0;

	if (!L.is_open)
		return 0;
	L.is_open = false;
	if (L.feed != NULL) {
		db_feed_stop(L.feed);
		L.feed = NULL;
	}
	if (L.db != NULL) {
		db_close(L.db, on_db_closed);
		if (!run_until(&L.is_closed, WAIT_MS)) {
			print_error("db_close: no callback in %d ms\n",
			            WAIT_MS);
			rv = -1;
		}
		L.db = NULL;
	}
	uv_close((uv_handle_t *)&L.watchdog, NULL);
	uv_run(&L.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&L.loop) != 0) {
		print_error("uv_loop_close: a handle was left open\n");
		rv = -1;
	}
	return rv;
}

static int teardown_loop_test(void **state)
{
	int rv = loop_close();

	return teardown_test(state) == 0 && rv == 0 ? 0 : -1;
}

static void on_feed(struct db_feed *f, uint64_t revision, void *data)
{
	struct feed_seen *s = data;

	assert_ptr_equal(s, &L.seen);
	assert_int_equal(db_feed_revision(f), revision);
	s->calls++;
	s->last = revision;
	s->at_ms = now_ms();
	if (s->in_notify)
		s->called_in_notify = true;
	if (revision >= s->want)
		s->want_seen = true;
}

static void feed_start(unsigned interval_ms)
{
	assert_ok(db_feed_start(L.db, interval_ms, on_feed, &L.seen, &L.feed,
	                        &t.e));
}

static void feed_stop(void)
{
	db_feed_stop(L.feed);
	L.feed = NULL;
}

/* Waits for the feed to report `revision` or a later one. */
static bool feed_wait(uint64_t revision, unsigned ms)
{
	L.seen.want = revision;
	L.seen.want_seen = L.seen.calls > 0 && L.seen.last >= revision;
	return run_until(&L.seen.want_seen, ms);
}

static int block_run(struct db_client *c, struct db_op *op, struct err *e)
{
	struct blocker *b = op->data;

	(void)c;
	(void)e;
	pthread_getname_np(pthread_self(), b->thread_name,
	                   sizeof b->thread_name);
	uv_sleep(b->sleep_ms);
	return 0;
}

static void block_done(struct db_op *op, int status)
{
	struct blocker *b = op->data;

	b->status = status;
	b->done_thread = pthread_self();
	b->done = true;
}

static struct blocker *block_submit(unsigned i, unsigned sleep_ms)
{
	struct blocker *b = &L.blockers[i];

	b->sleep_ms = sleep_ms;
	b->op.data = b;
	assert_ok(db_submit(L.db, &b->op, block_run, block_done));
	return b;
}

static void test_schema_live_feed_sees_a_write_within_a_second(void **state)
{
	struct insert_guest g = {.vmid = 400};
	uint64_t r0, t0;

	(void)state;
	ensure_cairn_schema();
	r0 = revision();
	open_db();
	feed_start(250);
	/* The first poll reports where the cluster stands. */
	assert_true(feed_wait(r0, WAIT_MS));
	assert_int_equal(L.seen.last, r0);
	assert_int_equal(L.seen.calls, 1);

	assert_ok(db_write(t.client, 0, insert_guest_fn, &g, &t.e));
	t0 = now_ms();
	assert_true(feed_wait(r0 + 1, 2 * FEED_MAX_MS));
	assert_int_equal(L.seen.last, r0 + 1);
	assert_int_equal(L.seen.calls, 2);
	if (L.seen.at_ms - t0 > FEED_MAX_MS)
		print_error("the feed took %llu ms\n",
		            (unsigned long long)(L.seen.at_ms - t0));
	assert_true(L.seen.at_ms - t0 <= FEED_MAX_MS);

	/* Polls that find nothing new report nothing. */
	run_for(600);
	assert_int_equal(L.seen.calls, 2);
	feed_stop();
	assert_int_equal(loop_close(), 0);
}

static void
test_schema_live_feed_notify_reports_a_newer_revision_later(void **state)
{
	uint64_t r0;

	(void)state;
	ensure_cairn_schema();
	r0 = revision();
	open_db();
	feed_start(100);
	assert_true(feed_wait(r0, WAIT_MS));

	/* A push of a newer revision: reported, but not from inside notify. */
	L.seen.in_notify = true;
	db_feed_notify(L.feed, r0 + 100);
	L.seen.in_notify = false;
	assert_false(L.seen.called_in_notify);
	assert_true(feed_wait(r0 + 100, WAIT_MS));
	assert_int_equal(db_feed_revision(L.feed), r0 + 100);
	assert_int_equal(L.seen.calls, 2);

	/* Polls that still answer r0, and stale pushes, never move it
	 * back. */
	db_feed_notify(L.feed, r0 + 50);
	run_for(400);
	assert_int_equal(db_feed_revision(L.feed), r0 + 100);
	assert_int_equal(L.seen.calls, 2);
	feed_stop();
	assert_int_equal(loop_close(), 0);
}

static void test_schema_live_db_runs_ops_on_its_db_thread(void **state)
{
	struct blocker *b;

	(void)state;
	open_db();
	b = block_submit(0, 1);
	assert_false(b->done); /* never from inside submit */
	assert_true(run_until(&b->done, WAIT_MS));
	assert_int_equal(b->status, 0);
	assert_string_equal(b->thread_name, "db");
	assert_true(pthread_equal(b->done_thread, pthread_self()));
	assert_int_equal(loop_close(), 0);
}

static void
test_schema_live_feed_stopped_while_its_poll_waits_is_freed(void **state)
{
	struct blocker *b;

	(void)state;
	open_db();
	/* Keep the DB thread busy so that the feed's first poll waits. */
	b = block_submit(0, 300);
	feed_start(10);
	run_for(50);
	feed_stop();
	/* The poll still runs; its done callback frees the feed (ASan
	 * checks that nothing is used after, or leaked). */
	assert_true(run_until(&b->done, WAIT_MS));
	run_for(200);
	assert_int_equal(L.seen.calls, 0);
	assert_int_equal(loop_close(), 0);
}

static void
test_schema_live_close_cancels_a_stopped_feeds_queued_poll(void **state)
{
	struct blocker *running, *queued;

	(void)state;
	open_db();
	running = block_submit(0, 300);
	feed_start(10);
	run_for(50);
	queued = block_submit(1, 1);
	feed_stop();
	/* Closing now: the running op finishes, the queued ones (the feed's
	 * poll and `queued`) are cancelled, then the db goes. */
	assert_int_equal(loop_close(), 0);
	assert_true(running->done);
	assert_int_equal(running->status, 0);
	assert_true(queued->done);
	assert_int_equal(queued->status, -ECANCELED);
	assert_int_equal(queued->op.err.code, -ECANCELED);
	assert_int_equal(L.seen.calls, 0);
}

static void test_schema_live_feed_rejects_a_zero_interval(void **state)
{
	struct db_feed *feed = NULL;

	(void)state;
	open_db();
	assert_int_equal(db_feed_start(L.db, 0, on_feed, &L.seen, &feed, &t.e),
	                 -EINVAL);
	assert_null(feed);
	assert_int_equal(loop_close(), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_test, teardown_test)
#define T_LOOP(name) \
	cmocka_unit_test_setup_teardown(name, setup_test, teardown_loop_test)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_schema_live_version_and_revision_are_zero_before_any_schema),
	        T(test_schema_live_applies_once_every_member_supports_it),
	        T(test_schema_live_ensure_again_changes_nothing),
	        T(test_schema_live_concurrent_ensures_apply_each_migration_once),
	        T(test_schema_live_member_with_older_max_holds_migration_back),
	        T(test_schema_live_member_without_a_row_holds_migrations_back),
	        T(test_schema_live_node_older_than_the_schema_is_refused),
	        T(test_schema_live_failing_migration_leaves_nothing_behind),
	        T(test_schema_live_write_bumps_revision_by_one_per_transaction),
	        T(test_schema_live_failed_write_bumps_nothing),
	        T(test_schema_live_write_without_schema_fails_cleanly),
	        T_LOOP(test_schema_live_feed_sees_a_write_within_a_second),
	        T_LOOP(test_schema_live_feed_notify_reports_a_newer_revision_later),
	        T_LOOP(test_schema_live_db_runs_ops_on_its_db_thread),
	        T_LOOP(test_schema_live_feed_stopped_while_its_poll_waits_is_freed),
	        T_LOOP(test_schema_live_close_cancels_a_stopped_feeds_queued_poll),
	        T_LOOP(test_schema_live_feed_rejects_a_zero_interval),
	};

	/* dqlite writes to peers that may have gone (trap 13). */
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests_name("consensus/schema_live", tests,
	                                   start_cluster, stop_cluster);
}
