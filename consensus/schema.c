/* The cluster database's schema: cairn's numbered migrations, the gate that
 * applies migration N only once every Raft member supports N, and the
 * cluster revision that every write transaction moves.
 *
 * Bookkeeping lives in two tables that exist before any migration:
 *
 *   schema_support     one row per node: the highest migration its cairnd
 *                      knows, written by that node at every start
 *   schema_migrations  one row per applied migration; the cluster's schema
 *                      version is the highest of them (0 when none)
 *
 * Rolling upgrades: an upgraded node records its new maximum, and whichever
 * node runs db_schema_ensure after the last member did so applies the
 * migration. Until then everyone keeps running the old schema, which every
 * node (old or new) understands. A node whose cairnd is older than the
 * cluster's schema refuses to run instead of misreading it.
 *
 * Node ids are Raft ids: unsigned 64-bit, stored in SQLite's signed INTEGER
 * by bit pattern (ids derived from addresses can exceed INT64_MAX). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

/* More than DB_MAX_ADDRESSES: a cluster has at most a handful of voters but
 * may keep many standbys and spares, and every one of them gates. */
#define MEMBERS_MAX 256
/* Holders named in a log line; the count says how many there were. */
#define HELD_MAX 8

/* ------------------------------------------------------------------------
 * cairn's migrations. Never edit one that has been released: add the next.
 *
 * No column is declared BOOLEAN, DATETIME, DATE or TIMESTAMP: dqlite 1.11.1
 * types values by those declarations and can abort the node when a value of
 * another type meets them (notes/dqlite.md, trap 3). Flags are INTEGER with
 * CHECK (x IN (0, 1)); times are INTEGER Unix seconds unless a name says ms.
 * JSON columns are TEXT checked with json_valid, so that a bad value fails
 * the write that brings it instead of every later reader.
 *
 * The single cluster row exists from migration 1 on (name '' until
 * `cluster create` fills it in), so that db_write's revision bump always
 * finds it. */
static const char migration_1_sql[] =
        "CREATE TABLE cluster ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " name TEXT NOT NULL DEFAULT '',"
        " revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),"
        " crm_epoch INTEGER NOT NULL DEFAULT 0 CHECK (crm_epoch >= 0),"
        " ca_cert TEXT,"
        " settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),"
        " created_at INTEGER NOT NULL DEFAULT 0"
        ");"
        "INSERT INTO cluster (id, name, revision) VALUES (1, '', 0);"

        /* id is cairn's node id; db_id the node's Raft id. Addresses are
         * "host:port" as the node serves them; `addresses` lists every
         * address the node answers on (its certificate's names). */
        "CREATE TABLE nodes ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),"
        " db_id INTEGER NOT NULL UNIQUE,"
        " addresses TEXT NOT NULL DEFAULT '[]'"
        "  CHECK (json_valid(addresses)),"
        " rpc_address TEXT NOT NULL,"
        " api_address TEXT NOT NULL,"
        " db_address TEXT NOT NULL,"
        " role TEXT NOT NULL DEFAULT 'spare'"
        "  CHECK (role IN ('voter', 'standby', 'spare')),"
        " state TEXT NOT NULL DEFAULT 'joining'"
        "  CHECK (state IN ('joining', 'member', 'maintenance', 'leaving')),"
        " cert_fingerprint TEXT NOT NULL,"
        " version TEXT NOT NULL DEFAULT '',"
        " joined_at INTEGER NOT NULL DEFAULT 0"
        ");"

        /* node is the owner node's name; lock is NULL when unlocked, else
         * Proxmox's lock name ('migrate', 'backup', ...). */
        "CREATE TABLE guests ("
        " vmid INTEGER PRIMARY KEY CHECK (vmid BETWEEN 100 AND 999999999),"
        " type TEXT NOT NULL CHECK (type IN ('qemu', 'lxc')),"
        " node TEXT NOT NULL,"
        " config TEXT NOT NULL,"
        " digest TEXT NOT NULL,"
        " lock TEXT"
        ");"
        "CREATE INDEX guests_node ON guests (node);"

        /* content: comma-separated content types; nodes: NULL for every
         * node, else comma-separated node names; options: the backend's
         * own settings. */
        "CREATE TABLE storage ("
        " id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),"
        " type TEXT NOT NULL CHECK (type IN ('dir', 'rbd')),"
        " content TEXT NOT NULL DEFAULT '',"
        " shared INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),"
        " nodes TEXT,"
        " disable INTEGER NOT NULL DEFAULT 0 CHECK (disable IN (0, 1)),"
        " options TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)),"
        " digest TEXT NOT NULL"
        ");"

        /* sid is Proxmox's service id, 'vm:100' or 'ct:101'; state the
         * requested state. */
        "CREATE TABLE ha_resources ("
        " sid TEXT PRIMARY KEY"
        "  CHECK (sid GLOB 'vm:[1-9]*' OR sid GLOB 'ct:[1-9]*'),"
        " vmid INTEGER NOT NULL UNIQUE"
        "  CHECK (vmid BETWEEN 100 AND 999999999),"
        " state TEXT NOT NULL DEFAULT 'started'"
        "  CHECK (state IN ('started', 'stopped', 'disabled', 'ignored')),"
        " max_restart INTEGER NOT NULL DEFAULT 1 CHECK (max_restart >= 0),"
        " max_relocate INTEGER NOT NULL DEFAULT 1"
        "  CHECK (max_relocate >= 0),"
        " comment TEXT,"
        " digest TEXT NOT NULL"
        ");"

        /* Proxmox VE 9's rules. resources: JSON array of sids; nodes: JSON
         * object node -> priority (node-affinity); affinity: 'positive'
         * (keep together) or 'negative' (keep apart) for resource-affinity
         * rules. */
        "CREATE TABLE ha_rules ("
        " rule TEXT PRIMARY KEY CHECK (length(rule) BETWEEN 1 AND 64),"
        " type TEXT NOT NULL"
        "  CHECK (type IN ('node-affinity', 'resource-affinity')),"
        " resources TEXT NOT NULL CHECK (json_valid(resources)),"
        " nodes TEXT CHECK (nodes IS NULL OR json_valid(nodes)),"
        " strict INTEGER NOT NULL DEFAULT 0 CHECK (strict IN (0, 1)),"
        " affinity TEXT"
        "  CHECK (affinity IS NULL OR affinity IN ('positive', 'negative')),"
        " disable INTEGER NOT NULL DEFAULT 0 CHECK (disable IN (0, 1)),"
        " comment TEXT,"
        " digest TEXT NOT NULL"
        ");"

        /* The CRM's view of each service. crm_epoch is the epoch of the
         * CRM that wrote the row (DESIGN.md §7: a deposed CRM's epoch no
         * longer matches cluster.crm_epoch, so it cannot commit). */
        "CREATE TABLE ha_state ("
        " sid TEXT PRIMARY KEY,"
        " node TEXT NOT NULL,"
        " state TEXT NOT NULL CHECK (state IN ('request_start', 'started',"
        "  'request_stop', 'stopped', 'migrate', 'relocate', 'fence',"
        "  'recovery', 'freeze', 'error')),"
        " target TEXT,"
        " failed_starts INTEGER NOT NULL DEFAULT 0,"
        " failed_relocates INTEGER NOT NULL DEFAULT 0,"
        " crm_epoch INTEGER NOT NULL CHECK (crm_epoch >= 0),"
        " updated_at INTEGER NOT NULL DEFAULT 0"
        ");"

        /* A renewal bumps counter; the CRM judges liveness by when it saw
         * counter change on its own clock. renewed_at_ms is the renewing
         * node's wall clock, for display only: clocks of different nodes
         * are never compared. */
        "CREATE TABLE node_leases ("
        " node TEXT PRIMARY KEY,"
        " counter INTEGER NOT NULL DEFAULT 0,"
        " renewed_at_ms INTEGER NOT NULL DEFAULT 0"
        ");"

        /* userid is 'name@realm'. password_hash only for the pve realm. */
        "CREATE TABLE users ("
        " userid TEXT PRIMARY KEY"
        "  CHECK (length(userid) BETWEEN 3 AND 128 AND instr(userid, '@') > 1),"
        " enable INTEGER NOT NULL DEFAULT 1 CHECK (enable IN (0, 1)),"
        " expire INTEGER NOT NULL DEFAULT 0,"
        " password_hash TEXT,"
        " firstname TEXT,"
        " lastname TEXT,"
        " email TEXT,"
        " comment TEXT"
        ");"

        /* digest is the SHA-256 of the token's secret: the secret itself is
         * shown once at creation and never stored. */
        "CREATE TABLE tokens ("
        " userid TEXT NOT NULL,"
        " tokenid TEXT NOT NULL CHECK (length(tokenid) BETWEEN 1 AND 64),"
        " digest TEXT NOT NULL,"
        " privsep INTEGER NOT NULL DEFAULT 1 CHECK (privsep IN (0, 1)),"
        " expire INTEGER NOT NULL DEFAULT 0,"
        " comment TEXT,"
        " PRIMARY KEY (userid, tokenid)"
        ");"

        /* privs: comma-separated privilege names; special: built-in and
         * read-only. */
        "CREATE TABLE roles ("
        " roleid TEXT PRIMARY KEY CHECK (length(roleid) BETWEEN 1 AND 64),"
        " privs TEXT NOT NULL DEFAULT '',"
        " special INTEGER NOT NULL DEFAULT 0 CHECK (special IN (0, 1))"
        ");"

        "CREATE TABLE groups ("
        " groupid TEXT PRIMARY KEY CHECK (length(groupid) BETWEEN 1 AND 64),"
        " comment TEXT"
        ");"
        "CREATE TABLE group_members ("
        " groupid TEXT NOT NULL,"
        " userid TEXT NOT NULL,"
        " PRIMARY KEY (groupid, userid)"
        ");"

        "CREATE TABLE acl ("
        " path TEXT NOT NULL CHECK (substr(path, 1, 1) = '/'),"
        " ugid_type TEXT NOT NULL"
        "  CHECK (ugid_type IN ('user', 'group', 'token')),"
        " ugid TEXT NOT NULL,"
        " roleid TEXT NOT NULL,"
        " propagate INTEGER NOT NULL DEFAULT 1 CHECK (propagate IN (0, 1)),"
        " PRIMARY KEY (path, ugid_type, ugid, roleid)"
        ");"

        /* The cluster-wide task index (the logs stay on their node).
         * endtime and status are NULL while the task runs; status is 'OK'
         * or the error. */
        "CREATE TABLE tasks ("
        " upid TEXT PRIMARY KEY CHECK (upid GLOB 'UPID:*'),"
        " node TEXT NOT NULL,"
        " type TEXT NOT NULL,"
        " id TEXT NOT NULL DEFAULT '',"
        " user TEXT NOT NULL,"
        " starttime INTEGER NOT NULL,"
        " endtime INTEGER,"
        " status TEXT"
        ");"
        "CREATE INDEX tasks_node_starttime ON tasks (node, starttime);"
        "CREATE INDEX tasks_starttime ON tasks (starttime);";

/* Migration 2: what forming a cluster needs (DESIGN.md §9). Join tokens
 * keep only the SHA-256 digest of their secret and are used once
 * (used_at); revoked certificates are refused by every node's TLS; the
 * cluster's signing keys (the CA key) live here, reachable only through
 * the mutual-TLS tunnel. */
static const char migration_2_sql[] =
        "CREATE TABLE join_tokens ("
        " id TEXT PRIMARY KEY CHECK (length(id) = 32),"
        " secret_digest TEXT NOT NULL CHECK (length(secret_digest) = 64),"
        " created_at INTEGER NOT NULL,"
        " expires_at INTEGER NOT NULL,"
        " created_by TEXT NOT NULL,"
        " used_at INTEGER,"
        " used_by TEXT"
        ");"
        "CREATE TABLE revoked_certs ("
        " fingerprint TEXT PRIMARY KEY,"
        " node TEXT NOT NULL,"
        " revoked_at INTEGER NOT NULL"
        ");"
        "CREATE TABLE cluster_secrets ("
        " name TEXT PRIMARY KEY,"
        " value TEXT NOT NULL"
        ");";

/* Migration 3: storage-level fencing (DESIGN.md §7). Each node records the
 * address its RADOS client shows the OSDs on each rbd storage (what another
 * node blocklists to fence it: the bare IP, so that its guests' own
 * clients are fenced too) and its host's boot id; fenced_at is set while
 * it is blocklisted. */
static const char migration_3_sql[] =
        "CREATE TABLE storage_clients ("
        " storage TEXT NOT NULL,"
        " node TEXT NOT NULL,"
        " addr TEXT NOT NULL CHECK (length(addr) BETWEEN 1 AND 127),"
        " boot_id TEXT NOT NULL DEFAULT '',"
        " updated_at INTEGER NOT NULL,"
        " fenced_at INTEGER,"
        " fenced_by TEXT,"
        " PRIMARY KEY (storage, node)"
        ");";

const struct db_migration db_migrations[] = {
        {1, "initial", migration_1_sql},
        {2, "join tokens, revocations, secrets", migration_2_sql},
        {3, "storage clients for fencing", migration_3_sql},
};
const unsigned db_migrations_count = CAIRN_ARRAY_SIZE(db_migrations);

unsigned db_schema_newest(void)
{
	return db__schema_list_newest(db_migrations, db_migrations_count);
}

/* ------------------------------------------------------------------------
 * Pure pieces (consensus/internal.h). */

int db__schema_list_check(const struct db_migration *migrations, unsigned n,
                          struct err *e)
{
	unsigned i;

	if (n > 0 && migrations == NULL)
		return err_set(e, -EINVAL, "schema: no migration list");
	for (i = 0; i < n; i++) {
		const struct db_migration *m = &migrations[i];

		if (m->version != i + 1)
			return err_set(e, -EINVAL,
			               "schema: migration %u of the list has "
			               "version %u: versions must be 1, 2, ... "
			               "in order",
			               i + 1, m->version);
		if (m->name == NULL || m->name[0] == '\0')
			return err_set(e, -EINVAL,
			               "schema: migration %u has no name",
			               m->version);
		if (m->sql == NULL || m->sql[0] == '\0')
			return err_set(e, -EINVAL,
			               "schema: migration %u (%s) has no SQL",
			               m->version, m->name);
	}
	return 0;
}

unsigned db__schema_list_newest(const struct db_migration *migrations,
                                unsigned n)
{
	return n > 0 ? migrations[n - 1].version : 0;
}

int db__schema_check_current(unsigned current, unsigned newest, struct err *e)
{
	if (current <= newest)
		return 0;
	return err_set(e, -EPROTONOSUPPORT,
	               "database schema is at version %u, but this cairnd "
	               "knows versions up to %u: upgrade cairnd on this node",
	               current, newest);
}

unsigned db__schema_holders(const uint64_t *member_ids, unsigned nmembers,
                            const struct db__schema_support *support,
                            unsigned nsupport, unsigned version, uint64_t *held,
                            unsigned max)
{
	unsigned i, j, count = 0;

	for (i = 0; i < nmembers; i++) {
		bool is_ready = false;

		for (j = 0; j < nsupport; j++) {
			if (support[j].node_id == member_ids[i]) {
				is_ready = support[j].max_version >= version;
				break;
			}
		}
		if (is_ready)
			continue;
		if (count < max)
			held[count] = member_ids[i];
		count++;
	}
	return count;
}

void db__schema_ids_format(const uint64_t *ids, unsigned n, unsigned total,
                           char *out, size_t size)
{
	size_t len = 0, need;
	unsigned i;
	int w;

	CAIRN_ASSERT(size > 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		/* Room is kept for ", ..." while more ids follow, so that a
		 * cut list says it was cut. */
		need = i + 1 < n ? sizeof ", ..." : 1;
		w = snprintf(out + len, size - len, "%s%llu", i > 0 ? ", " : "",
		             (unsigned long long)ids[i]);
		if (w < 0 || (size_t)w + need > size - len) {
			out[len] = '\0';
			snprintf(out + len, size - len, "%s",
			         i > 0 ? ", ..." : "...");
			return;
		}
		len += (size_t)w;
	}
	if (total > n)
		snprintf(out + len, size - len, " and %u more", total - n);
}

/* ------------------------------------------------------------------------
 * Small query helpers. Each takes either a client (a statement of its own)
 * or a transaction (c NULL). */

static int run_query(struct db_client *c, struct db_tx *tx, const char *sql,
                     const struct wire_value *params, unsigned nparams,
                     struct db_rows *rows, struct err *e)
{
	if (tx != NULL)
		return db_tx_query(tx, sql, params, nparams, rows, e);
	return db_query(c, sql, params, nparams, rows, e);
}

static int value_int(const struct db_rows *rows, uint64_t row, unsigned col,
                     int64_t *out, struct err *e)
{
	const struct wire_value *v = db_rows_at(rows, row, col);

	if (v->type != WIRE_INTEGER)
		return err_set(e, -EPROTO,
		               "column %s: expected an integer, got type %d",
		               rows->names[col], (int)v->type);
	*out = v->integer;
	return 0;
}

/* A query answering at most one integer: *out gets the first column of the
 * first row, or def when there is no row. */
static int query_int(struct db_client *c, struct db_tx *tx, const char *sql,
                     const struct wire_value *params, unsigned nparams,
                     int64_t def, int64_t *out, struct err *e)
{
	struct db_rows rows;
	int rv;

	rv = run_query(c, tx, sql, params, nparams, &rows, e);
	if (rv != 0)
		return rv;
	*out = def;
	if (rows.nrows > 0 && rows.ncols > 0)
		rv = value_int(&rows, 0, 0, out, e);
	db_rows_free(&rows);
	return rv;
}

static int table_exists(struct db_client *c, struct db_tx *tx, const char *name,
                        bool *exists, struct err *e)
{
	struct wire_value param = wire_value_text(name);
	int64_t count = 0;
	int rv;

	rv = query_int(c, tx,
	               "SELECT COUNT(*) FROM sqlite_master "
	               "WHERE type = 'table' AND name = ?",
	               &param, 1, 0, &count, e);
	if (rv != 0)
		return err_wrap(e, "look up table %s", name);
	*exists = count > 0;
	return 0;
}

/* query_int on a table that may not exist yet (before the first
 * db_schema_ensure): a missing table answers def. The query is tried
 * first, so the common case costs one round trip; only an SQL error makes
 * us ask whether the table is there, which keeps SQLite's wording out of
 * the decision. */
static int query_int_or(struct db_client *c, const char *table, const char *sql,
                        int64_t def, int64_t *out, struct err *e)
{
	struct err first;
	bool exists = false;
	int rv;

	rv = query_int(c, NULL, sql, NULL, 0, def, out, e);
	if (rv != -EREMOTEIO)
		return rv;
	first = *e;
	rv = table_exists(c, NULL, table, &exists, e);
	if (rv != 0)
		return rv;
	if (exists) {
		*e = first;
		return first.code;
	}
	err_clear(e);
	*out = def;
	return 0;
}

/* ------------------------------------------------------------------------
 * Version and revision. */

int db_schema_version(struct db_client *c, unsigned *version, struct err *e)
{
	int64_t v = 0;
	int rv;

	rv = query_int_or(c, "schema_migrations",
	                  "SELECT COALESCE(MAX(version), 0) "
	                  "FROM schema_migrations",
	                  0, &v, e);
	if (rv != 0)
		return err_wrap(e, "schema version");
	if (v < 0 || v > UINT_MAX)
		return err_set(
		        e, -EPROTO,
		        "schema version: schema_migrations holds version "
		        "%lld",
		        (long long)v);
	*version = (unsigned)v;
	return 0;
}

int db_revision(struct db_client *c, uint64_t *revision, struct err *e)
{
	int64_t v = 0;
	int rv;

	rv = query_int_or(c, "cluster",
	                  "SELECT revision FROM cluster WHERE id = 1", 0, &v,
	                  e);
	if (rv != 0)
		return err_wrap(e, "cluster revision");
	if (v < 0)
		return err_set(e, -EPROTO, "cluster revision: negative (%lld)",
		               (long long)v);
	*revision = (uint64_t)v;
	return 0;
}

static const char bump_sql[] =
        "UPDATE cluster SET revision = revision + 1 WHERE id = 1";

struct write_call {
	db_tx_fn fn;
	void *data;
};

/* Holds no state of its own, so the client may run it again on retry. */
static int write_fn(struct db_tx *tx, void *data, struct err *e)
{
	struct write_call *call = data;
	struct wire_result result = {0};
	int rv;

	rv = call->fn(tx, call->data, e);
	if (rv != 0)
		return rv;
	rv = db_tx_exec(tx, bump_sql, NULL, 0, &result, e);
	if (rv != 0)
		return err_wrap(e, "bump cluster revision");
	/* A write that moves nothing would be invisible to every cache that
	 * keys off the revision: refuse it rather than commit it. */
	if (result.rows_affected != 1)
		return err_set(e, -ENOENT,
		               "bump cluster revision: the cluster row is "
		               "missing (schema not set up?)");
	return 0;
}

int db_write(struct db_client *c, unsigned flags, db_tx_fn fn, void *data,
             struct err *e)
{
	struct write_call call = {.fn = fn, .data = data};

	CAIRN_ASSERT(fn != NULL);
	return db_transaction(c, flags, write_fn, &call, e);
}

/* ------------------------------------------------------------------------
 * Ensuring the schema. */

struct support_call {
	uint64_t node_id;
	unsigned max_version;
};

/* Creates the bookkeeping tables if needed and records what this node
 * knows. Running it again changes nothing but updated_at. */
static int support_fn(struct db_tx *tx, void *data, struct err *e)
{
	const struct support_call *call = data;
	struct wire_value params[3];
	int rv;

	rv = db_tx_exec(tx,
	                "CREATE TABLE IF NOT EXISTS schema_support ("
	                " node_id INTEGER PRIMARY KEY,"
	                " max_version INTEGER NOT NULL,"
	                " updated_at INTEGER NOT NULL);"
	                "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                " version INTEGER PRIMARY KEY,"
	                " name TEXT NOT NULL,"
	                " applied_at INTEGER NOT NULL)",
	                NULL, 0, NULL, e);
	if (rv != 0)
		return err_wrap(e, "create schema bookkeeping tables");
	params[0] = wire_value_integer((int64_t)call->node_id);
	params[1] = wire_value_integer(call->max_version);
	params[2] = wire_value_integer((int64_t)time(NULL));
	rv = db_tx_exec(tx,
	                "INSERT INTO schema_support"
	                " (node_id, max_version, updated_at) VALUES (?, ?, ?)"
	                " ON CONFLICT (node_id) DO UPDATE SET"
	                " max_version = excluded.max_version,"
	                " updated_at = excluded.updated_at",
	                params, 3, NULL, e);
	if (rv != 0)
		return err_wrap(e, "record node %llu's schema support",
		                (unsigned long long)call->node_id);
	return 0;
}

enum apply_outcome {
	APPLY_DONE,    /* this call applied it */
	APPLY_ALREADY, /* another node (or an earlier run) had */
	APPLY_HELD,    /* some member does not support it yet */
};

struct apply_call {
	const struct db_migration *migration;
	const uint64_t *member_ids;
	unsigned nmembers;
	/* Results, reset at the start of every run of apply_fn. */
	enum apply_outcome outcome;
	uint64_t held[HELD_MAX];
	unsigned nheld;
};

static int read_support(struct db_tx *tx, struct db__schema_support **out,
                        unsigned *n, struct err *e)
{
	struct db__schema_support *support = NULL;
	struct db_rows rows;
	int64_t id = 0, max = 0;
	uint64_t i;
	int rv;

	rv = db_tx_query(tx, "SELECT node_id, max_version FROM schema_support",
	                 NULL, 0, &rows, e);
	if (rv != 0)
		return err_wrap(e, "read schema_support");
	if (rows.nrows > UINT_MAX || rows.ncols != 2) {
		rv = err_set(e, -EPROTO, "read schema_support: bad result");
		goto out;
	}
	if (rows.nrows > 0) {
		support = mem_calloc(rows.nrows, sizeof *support);
		if (support == NULL) {
			rv = err_set(e, -ENOMEM,
			             "read schema_support: out of memory");
			goto out;
		}
	}
	for (i = 0; i < rows.nrows; i++) {
		rv = value_int(&rows, i, 0, &id, e);
		if (rv == 0)
			rv = value_int(&rows, i, 1, &max, e);
		if (rv != 0) {
			err_wrap(e, "read schema_support");
			goto out;
		}
		support[i].node_id = (uint64_t)id;
		/* A negative maximum supports nothing; one beyond unsigned
		 * supports everything we could ask about. */
		support[i].max_version = max < 0          ? 0
		                         : max > UINT_MAX ? UINT_MAX
		                                          : (unsigned)max;
	}
	*out = support;
	*n = (unsigned)rows.nrows;
	support = NULL;
out:
	mem_free(support);
	db_rows_free(&rows);
	return rv;
}

/* One migration, all or nothing. The gate and "already applied" are
 * decided again inside the transaction, because another node may be
 * running db_schema_ensure at the same time: whichever commits second
 * sees the first one's row and does nothing. */
static int apply_fn(struct db_tx *tx, void *data, struct err *e)
{
	struct apply_call *call = data;
	const struct db_migration *m = call->migration;
	struct db__schema_support *support = NULL;
	struct wire_value params[3];
	unsigned nsupport = 0;
	int64_t applied = 0;
	bool has_cluster = false;
	int rv;

	call->outcome = APPLY_DONE;
	call->nheld = 0;

	params[0] = wire_value_integer(m->version);
	rv = query_int(
	        NULL, tx,
	        "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
	        params, 1, 0, &applied, e);
	if (rv != 0)
		return err_wrap(e, "check migration %u", m->version);
	if (applied > 0) {
		call->outcome = APPLY_ALREADY;
		return 0;
	}

	rv = read_support(tx, &support, &nsupport, e);
	if (rv != 0)
		return rv;
	call->nheld =
	        db__schema_holders(call->member_ids, call->nmembers, support,
	                           nsupport, m->version, call->held, HELD_MAX);
	mem_free(support);
	if (call->nheld > 0) {
		call->outcome = APPLY_HELD;
		return 0; /* nothing written: the empty transaction commits */
	}

	/* Several statements in one EXEC_SQL: 1.11.1's gateway prepares and
	 * runs them one after the other (handle_exec_sql_next). */
	rv = db_tx_exec(tx, m->sql, NULL, 0, NULL, e);
	if (rv != 0)
		return err_wrap(e, "migration %u (%s)", m->version, m->name);
	params[1] = wire_value_text(m->name);
	params[2] = wire_value_integer((int64_t)time(NULL));
	rv = db_tx_exec(tx,
	                "INSERT INTO schema_migrations (version, name, "
	                "applied_at) VALUES (?, ?, ?)",
	                params, 3, NULL, e);
	if (rv != 0)
		return err_wrap(e, "record migration %u", m->version);

	/* A schema change is a change: caches keyed on the revision must
	 * look again. Migrations before the cluster table have nothing to
	 * bump. */
	rv = table_exists(NULL, tx, "cluster", &has_cluster, e);
	if (rv != 0)
		return err_wrap(e, "migration %u", m->version);
	if (has_cluster) {
		rv = db_tx_exec(tx, bump_sql, NULL, 0, NULL, e);
		if (rv != 0)
			return err_wrap(e,
			                "migration %u: bump cluster revision",
			                m->version);
	}
	return 0;
}

static int list_member_ids(struct db_client *c, uint64_t **ids, unsigned *n,
                           struct err *e)
{
	struct db_member *members;
	unsigned i;
	int rv;

	members = mem_calloc(MEMBERS_MAX, sizeof *members);
	*ids = mem_calloc(MEMBERS_MAX, sizeof **ids);
	if (members == NULL || *ids == NULL) {
		rv = err_set(e, -ENOMEM, "list members: out of memory");
		goto err;
	}
	rv = db_cluster(c, members, MEMBERS_MAX, n, e);
	if (rv != 0) {
		err_wrap(e, "list members");
		goto err;
	}
	/* The leader answered, so there is at least one member: an empty
	 * list would let any migration through unchecked. */
	if (*n == 0) {
		rv = err_set(e, -EPROTO,
		             "list members: the leader listed none");
		goto err;
	}
	for (i = 0; i < *n; i++)
		(*ids)[i] = members[i].id;
	mem_free(members);
	return 0;

err:
	mem_free(members);
	mem_free(*ids);
	*ids = NULL;
	return rv;
}

int db_schema_ensure_with(struct db_client *c, uint64_t node_id,
                          const struct db_migration *migrations, unsigned n,
                          unsigned *version, struct err *e)
{
	struct support_call support;
	struct apply_call apply;
	uint64_t *member_ids = NULL;
	unsigned nmembers = 0, current = 0, newest, v;
	char holders[128];
	int rv;

	if (node_id == 0)
		return err_set(e, -EINVAL, "schema: node id 0 is not a node");
	rv = db__schema_list_check(migrations, n, e);
	if (rv != 0)
		return rv;
	newest = db__schema_list_newest(migrations, n);

	support.node_id = node_id;
	support.max_version = newest;
	rv = db_transaction(c, DB_TX_IDEMPOTENT, support_fn, &support, e);
	if (rv != 0)
		return err_wrap(e, "schema");

	rv = db_schema_version(c, &current, e);
	if (rv != 0)
		return err_wrap(e, "schema");
	rv = db__schema_check_current(current, newest, e);
	if (rv != 0)
		return rv;

	if (current < newest) {
		rv = list_member_ids(c, &member_ids, &nmembers, e);
		if (rv != 0)
			return err_wrap(e, "schema");
	}
	for (v = current + 1; v <= newest; v++) {
		memset(&apply, 0, sizeof apply);
		apply.migration = &migrations[v - 1];
		apply.member_ids = member_ids;
		apply.nmembers = nmembers;
		/* Idempotent: a rerun after an unknown outcome finds the
		 * migration's row and does nothing. */
		rv = db_transaction(c, DB_TX_IDEMPOTENT, apply_fn, &apply, e);
		if (rv != 0) {
			err_wrap(e, "schema");
			goto out;
		}
		if (apply.outcome == APPLY_HELD) {
			db__schema_ids_format(
			        apply.held,
			        apply.nheld < HELD_MAX ? apply.nheld : HELD_MAX,
			        apply.nheld, holders, sizeof holders);
			LOG_INFO("db",
			         "schema migration waits for nodes that do not "
			         "support it yet",
			         "version=%u name=%s schema=%u nodes=\"%s\"", v,
			         apply.migration->name, v - 1, holders);
			break;
		}
		if (apply.outcome == APPLY_DONE)
			LOG_INFO("db", "schema migration applied",
			         "version=%u name=%s", v,
			         apply.migration->name);
		current = v;
	}
	if (version != NULL)
		*version = current;
	rv = 0;
out:
	mem_free(member_ids);
	return rv;
}

int db_schema_ensure(struct db_client *c, uint64_t node_id, unsigned *version,
                     struct err *e)
{
	return db_schema_ensure_with(c, node_id, db_migrations,
	                             db_migrations_count, version, e);
}
