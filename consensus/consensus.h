/* consensus: the embedded dqlite node, cairn's client of dqlite's wire
 * protocol, the schema and its migrations, membership, and the change feed.
 * dqlite is used only from here; other modules include only this header.
 *
 * Threads. A struct db_node runs dqlite's own thread. A struct db_client is
 * blocking and belongs to one thread at a time: in cairnd that is the one
 * DB thread of a struct db (never libuv's threadpool, never the loop), which
 * runs operations submitted from the loop and reports back to it. Tests and
 * tools may use a client directly from their own thread. */
#ifndef CAIRN_CONSENSUS_H
#define CAIRN_CONSENSUS_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus/wire.h"
#include "lib/lib.h"

/* dqlite's and SQLite's versions, for `--version` output. dqlite's comes
 * from pkg-config at build time: dqlite_version_number() says 1.10.0 for
 * 1.11.1. */
const char *consensus_dqlite_version(void);
const char *consensus_sqlite_version(void);

/* ------------------------------------------------------------------------
 * The embedded node.
 *
 * dqlite 1.11.1's node id 1 bootstraps a new one-node cluster whenever its
 * directory is empty. So: only a node started with `bootstrap` may have id 1
 * and an empty directory; and a node that has ever held data (its marker
 * file, kept outside dqlite's directory, exists) refuses an empty directory
 * instead of silently starting over and acknowledging writes that the
 * cluster later drops. */
#define DB_DEFAULT_LATENCY_MS         50
#define DB_DEFAULT_SNAPSHOT_THRESHOLD 256
#define DB_DEFAULT_SNAPSHOT_TRAILING  512
#define DB_BOOTSTRAP_ID               1

/* How consensus reaches a dqlite node at "IP:PORT": returns a connected,
 * close-on-exec fd or a negative errno with a message. NULL means plain
 * TCP (tests); the agent plugs in its TLS tunnel (rpc_tunnel_dial). It is
 * called from dqlite's worker thread and from the DB thread. */
typedef int (*db_dial_fn)(void *data, const char *address, unsigned timeout_ms,
                          struct err *e);

struct db_node_config {
	uint64_t id;              /* 1 for the node that creates the cluster */
	const char *address;      /* what peers store and dial: "IP:PORT" */
	const char *bind_address; /* NULL: address; "IP:PORT" or "@abstract" */
	const char *dir;          /* dqlite's own directory (created 0700) */
	const char *marker_path;  /* "initialized" marker, outside dir */
	bool bootstrap;           /* allowed to create a new cluster (id 1) */
	unsigned latency_ms;      /* 0: DB_DEFAULT_LATENCY_MS */
	unsigned snapshot_threshold; /* 0: default */
	unsigned snapshot_trailing;  /* 0: default */
	unsigned connect_timeout_ms; /* peer connects; 0: 2000 */
	db_dial_fn dial;             /* NULL: plain TCP */
	void *dial_data;
};

struct db_node;

/* Creates, configures and starts the node; dqlite's thread runs when this
 * returns 0. The caller ignores SIGPIPE. */
int db_node_start(const struct db_node_config *c, struct db_node **out,
                  struct err *e);
/* Records that this node holds cluster data (writes the marker). The
 * bootstrap node is marked at start; a joining node once it is a member. */
int db_node_mark_initialized(struct db_node *n, struct err *e);
/* Stops dqlite's thread and frees the node. */
void db_node_stop(struct db_node *n);
uint64_t db_node_id(const struct db_node *n);
const char *db_node_address(const struct db_node *n);
/* A node id derived from its address, as dqlite does (never 1). */
uint64_t db_node_generate_id(const char *address);

/* Disaster recovery for a lost quorum (DESIGN.md §4), following dqlite's
 * procedure: stop every node; pick the survivor with the newest Raft term
 * and log; run this once on that STOPPED node's directory with the list of
 * survivors (itself included: id, address, role); copy its directory to the
 * other survivors; start them all. Wraps dqlite_node_recover_ext. */
struct db_member {
	uint64_t id;
	char address[128];
	enum wire_role role;
};
int db_node_recover(const struct db_node_config *c,
                    const struct db_member *members, unsigned n, struct err *e);

/* ------------------------------------------------------------------------
 * The client.
 *
 * Errors (negative errno, message in e):
 *   -ENOTCONN      the node asked is not the leader (and the client may not
 *                  follow one: local_only), or no leader is known
 *   -ECONNABORTED  leadership was lost during a write: its outcome is
 *                  unknown (verify, or retry only what is idempotent)
 *   -EBUSY         another writer holds the database (retried with backoff
 *                  for transactions before this is returned)
 *   -ETIMEDOUT     no answer within the timeout
 *   -EHOSTDOWN     no node reachable
 *   -EREMOTEIO     SQL error (constraint, syntax, ...): the message is
 *                  SQLite's, with its extended code
 *   -EPROTO        malformed answer (the connection is dropped)
 *   -E2BIG         a result over DB_ROWS_MAX_BYTES */
#define DB_DEFAULT_DATABASE   "cairn"
#define DB_DEFAULT_TIMEOUT_MS 5000
#define DB_MAX_ADDRESSES      16
#define DB_ROWS_MAX_BYTES     ((size_t)64 << 20)

struct db_client_config {
	const char *const *addresses; /* known members, tried in order */
	unsigned naddresses;
	const char *database; /* NULL: DB_DEFAULT_DATABASE */
	unsigned timeout_ms;  /* each request and connect; 0: default */
	/* Talk only to addresses[0] and never follow the leader elsewhere:
	 * the HA manager's CRM writes through its own node only, so that a
	 * deposed CRM can never commit through the new leader. */
	bool local_only;
	db_dial_fn dial; /* NULL: plain TCP */
	void *dial_data;
};

struct db_client;

/* Copies the config; connects lazily on first use. */
int db_client_create(const struct db_client_config *c, struct db_client **out,
                     struct err *e);
void db_client_destroy(struct db_client *c);
/* Replaces the known addresses (e.g. after the member list changed). */
int db_client_set_addresses(struct db_client *c, const char *const *addresses,
                            unsigned n, struct err *e);
/* Drops the current connection; the next call reconnects. */
void db_client_disconnect(struct db_client *c);

/* A materialised result. Values (text, blobs) point into memory owned by
 * the struct; free with db_rows_free. */
struct db_rows {
	unsigned ncols;
	char **names; /* ncols */
	uint64_t nrows;
	struct wire_value *values; /* nrows * ncols, row-major */
	/* private */
	struct buf arena;
};
static inline const struct wire_value *db_rows_at(const struct db_rows *r,
                                                  uint64_t row, unsigned col)
{
	return &r->values[row * r->ncols + col];
}
void db_rows_free(struct db_rows *r);

/* One statement, outside any explicit transaction. Reads and idempotent
 * writes are retried across leader changes until the timeout. */
int db_exec(struct db_client *c, const char *sql,
            const struct wire_value *params, unsigned nparams,
            struct wire_result *result, struct err *e);
int db_query(struct db_client *c, const char *sql,
             const struct wire_value *params, unsigned nparams,
             struct db_rows *out, struct err *e);

/* Transactions. fn runs the statements through the tx; the client wraps
 * them in BEGIN ... COMMIT (ROLLBACK when fn fails) on one connection to the
 * leader. When another writer is busy, or the leader changed before COMMIT,
 * the whole transaction is run again (fn included) with backoff, until the
 * timeout. A COMMIT whose outcome is unknown (-ECONNABORTED) is retried only
 * with DB_TX_IDEMPOTENT. fn may run more than once: it must not keep state
 * across runs except through data it resets itself. */
struct db_tx;
typedef int (*db_tx_fn)(struct db_tx *tx, void *data, struct err *e);

enum { DB_TX_IDEMPOTENT = 1 << 0 };

int db_transaction(struct db_client *c, unsigned flags, db_tx_fn fn, void *data,
                   struct err *e);
int db_tx_exec(struct db_tx *tx, const char *sql,
               const struct wire_value *params, unsigned nparams,
               struct wire_result *result, struct err *e);
int db_tx_query(struct db_tx *tx, const char *sql,
                const struct wire_value *params, unsigned nparams,
                struct db_rows *out, struct err *e);

/* The leader as the cluster sees it (id 0 and "" when none is known). */
int db_leader(struct db_client *c, uint64_t *id, char *address, size_t size,
              struct err *e);
/* Raft membership, straight through (the policy is db_membership_*). */
int db_cluster(struct db_client *c, struct db_member *out, unsigned max,
               unsigned *n, struct err *e);
int db_add(struct db_client *c, uint64_t id, const char *address,
           struct err *e);
int db_assign(struct db_client *c, uint64_t id, enum wire_role role,
              struct err *e);
int db_remove(struct db_client *c, uint64_t id, struct err *e);
int db_transfer(struct db_client *c, uint64_t id, struct err *e);

/* Is the dqlite node at address up and answering? (handshake + LEADER
 * within timeout_ms; answers 0 when it is.) */
int db_probe(struct db_client *c, const char *address, unsigned timeout_ms,
             struct err *e);

/* ------------------------------------------------------------------------
 * Membership policy (DESIGN.md §4). Membership changes only when asked: a
 * node that goes offline is never removed or demoted automatically. */
#define DB_TARGET_VOTERS 3

/* Adds the node as a spare, waits until it answers at its address, then
 * promotes it: to voter while there are fewer than DB_TARGET_VOTERS voters,
 * else to standby. Refuses an address or id already in the cluster. */
int db_membership_join(struct db_client *c, uint64_t id, const char *address,
                       struct err *e);
/* Removes a node: moves leadership away first if it leads, promotes a
 * reachable standby or spare to keep DB_TARGET_VOTERS voters when one
 * exists, and refuses to remove the last voter. */
int db_membership_remove(struct db_client *c, uint64_t id, struct err *e);

/* ------------------------------------------------------------------------
 * Schema and revision (consensus/schema.c).
 *
 * Numbered migrations; the cluster's schema version is the highest applied.
 * Each node records the highest version it supports (schema_support); a
 * migration N is applied only when every Raft member supports N, so a
 * rolling upgrade never stops the cluster. A node refuses a schema newer
 * than it knows, naming both versions. No column is declared BOOLEAN,
 * DATETIME, DATE or TIMESTAMP (dqlite 1.11.1 can abort on them): flags are
 * INTEGER with CHECK (x IN (0, 1)), times INTEGER Unix seconds or ms. */
struct db_migration {
	unsigned version; /* 1, 2, ... in order */
	const char *name;
	const char *sql; /* one or more statements */
};

/* cairn's own migrations and the newest version this build knows. */
extern const struct db_migration db_migrations[];
extern const unsigned db_migrations_count;
unsigned db_schema_newest(void);

/* Records that node_id supports up to db_schema_newest(), refuses a newer
 * cluster schema (-EPROTONOSUPPORT), then applies every migration that all
 * members support. *version (may be NULL) gets the resulting version. */
int db_schema_ensure(struct db_client *c, uint64_t node_id, unsigned *version,
                     struct err *e);
/* The same with a given list (tests use lists of their own). */
int db_schema_ensure_with(struct db_client *c, uint64_t node_id,
                          const struct db_migration *migrations, unsigned n,
                          unsigned *version, struct err *e);
int db_schema_version(struct db_client *c, unsigned *version, struct err *e);

/* A write transaction that also bumps cluster.revision, in the same
 * transaction: every change to the cluster's state moves the revision. */
int db_write(struct db_client *c, unsigned flags, db_tx_fn fn, void *data,
             struct err *e);
int db_revision(struct db_client *c, uint64_t *revision, struct err *e);

/* ------------------------------------------------------------------------
 * The DB thread and the change feed (consensus/async.c), for the agent.
 *
 * struct db owns one client and one thread (a cairn pool of one thread,
 * named "db"): operations submitted from the loop run there in order, and
 * their done callbacks run on the loop. */
struct db;
struct db_op;
typedef int (*db_op_fn)(struct db_client *c, struct db_op *op, struct err *e);
typedef void (*db_op_done_cb)(struct db_op *op, int status);

struct db_op {
	void *data;     /* user data */
	struct err err; /* the failure, when status < 0 */
	/* private */
	db_op_fn run;
	db_op_done_cb done;
	struct db *db;
	int status;
	struct pool_work work;
};

int db_open(uv_loop_t *loop, const struct db_client_config *c,
            unsigned max_queued, struct db **out, struct err *e);
/* -EAGAIN when max_queued operations already wait. */
int db_submit(struct db *db, struct db_op *op, db_op_fn run,
              db_op_done_cb done);
/* Queued operations complete with -ECANCELED; cb runs on the loop once the
 * thread is gone, then the db is freed. Every feed of this db must have
 * been stopped (db_feed_stop) before: a stopped feed whose poll is still
 * in flight is fine, it is freed when that poll completes or is
 * cancelled. */
void db_close(struct db *db, void (*cb)(struct db *db));
/* User data, e.g. for db_close's callback. */
void db_set_data(struct db *db, void *data);
void *db_get_data(const struct db *db);

/* Polls cluster.revision every interval_ms (250 in the agent) and calls cb
 * on the loop whenever it moved; db_feed_notify lets a push (the RPC event
 * stream) deliver a newer revision early. The first poll goes out at once;
 * the revision starts at 0 and only moves forward (cb sees each newer one,
 * never an older one); cb never runs from inside db_feed_notify. At most
 * one poll is in flight: a tick that finds the last one pending is
 * skipped. */
struct db_feed;
typedef void (*db_feed_cb)(struct db_feed *f, uint64_t revision, void *data);

int db_feed_start(struct db *db, unsigned interval_ms, db_feed_cb cb,
                  void *data, struct db_feed **out, struct err *e);
uint64_t db_feed_revision(const struct db_feed *f);
void db_feed_notify(struct db_feed *f, uint64_t revision);
/* Polls at once (after a write of our own) instead of at the next tick. */
void db_feed_poll_soon(struct db_feed *f);
/* Stops polling; frees the feed once nothing of it is pending. */
void db_feed_stop(struct db_feed *f);

#endif /* CAIRN_CONSENSUS_H */
