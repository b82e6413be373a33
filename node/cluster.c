/* Forming a cluster: create, join tokens, join, and the agent's part of
 * the replicated database (identity, tunnel, dqlite node, DB thread).
 *
 * On disk, in data_dir: pki/ (ca.crt, node.crt, node.key 0600),
 * cluster.json (name, ids, addresses, the members to dial first), db/ (the
 * dqlite node) and db.initialized (its marker). A node is in a cluster
 * exactly when cluster.json exists; it is written last, after everything
 * else succeeded, and a failed create or join removes what it made. */
#define _XOPEN_SOURCE_EXTENDED 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/internal.h"

#define JOIN_RPC_TIMEOUT_MS   15000
#define ADD_MEMBER_TIMEOUT_MS 30000
#define JOIN_SKEW_MAX_MS      2000
#define TOKEN_TTL_DEFAULT     3600
#define DB_QUEUE_MAX          1024

/* ------------------------------------------------------------ files */

static void path_of(const struct node *n, const char *rel, char *out,
                    size_t size)
{
	snprintf(out, size, "%s/%s", n->config->data_dir, rel);
}

int node__write_file(const char *path, const char *text, mode_t mode,
                     struct err *e)
{
	char tmp[4200];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	          mode);
	if (fd < 0)
		return err_sys(e, -errno, "create %s", tmp);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		int code = errno != 0 ? -errno : -EIO;

		close(fd);
		unlink(tmp);
		return err_sys(e, code, "write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int code = -errno;

		unlink(tmp);
		return err_sys(e, code, "rename %s", tmp);
	}
	return 0;
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

/* Undoes a create or join that failed: nothing half-made stays. */
static void remove_cluster_files(struct node *n)
{
	char path[4200];

	path_of(n, "db", path, sizeof path);
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	path_of(n, "db.initialized", path, sizeof path);
	unlink(path);
	path_of(n, "pki", path, sizeof path);
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	path_of(n, "revoked_certs", path, sizeof path);
	unlink(path);
	path_of(n, "cluster.json", path, sizeof path);
	unlink(path);
}

static int save_identity(struct node_cluster *c, struct err *e)
{
	char dir[4200], path[4300];
	int rv;

	path_of(c->node, "pki", dir, sizeof dir);
	rv = file_mkdir_p(dir, 0700, e);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof path, "%s/ca.crt", dir);
	rv = node__write_file(path, c->ca_pem.data, 0644, e);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof path, "%s/node.crt", dir);
	rv = node__write_file(path, c->cert_pem.data, 0644, e);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof path, "%s/node.key", dir);
	return rpc_pki_key_file_write(path, c->key_pem.data, e);
}

static int load_identity(struct node_cluster *c, struct err *e)
{
	char dir[4200], path[4300];
	int rv;

	path_of(c->node, "pki", dir, sizeof dir);
	snprintf(path, sizeof path, "%s/ca.crt", dir);
	rv = file_read_all(path, 64 * 1024, &c->ca_pem, e);
	if (rv == 0) {
		snprintf(path, sizeof path, "%s/node.crt", dir);
		rv = file_read_all(path, 64 * 1024, &c->cert_pem, e);
	}
	if (rv == 0) {
		snprintf(path, sizeof path, "%s/node.key", dir);
		rv = rpc_pki_key_file_read(path, &c->key_pem, e);
	}
	return rv;
}

static int save_state(struct node_cluster *c, struct err *e)
{
	char path[4200];
	json_t *root, *members;
	char *text;
	unsigned i;
	int rv;

	members = json_array();
	for (i = 0; i < c->nmembers; i++)
		json_array_append_new(members, json_string(c->members[i]));
	char db_id[24];

	/* A Raft id is a u64; JSON integers here are signed 64-bit. */
	snprintf(db_id, sizeof db_id, "%llu", (unsigned long long)c->db_id);
	root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "name", c->name,
	                 "db_id", db_id, "db_address", c->db_address,
	                 "rpc_address", c->rpc_address, "api_address",
	                 c->api_address, "db_members", members);
	text = root != NULL ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	if (text == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	path_of(c->node, "cluster.json", path, sizeof path);
	rv = node__write_file(path, text, 0600, e);
	free(text);
	return rv;
}

/* --------------------------------------------------------- lifecycle */

static struct node_cluster *cluster_new(struct node *n, const char *name)
{
	const struct node_config *cfg = n->config;
	struct node_cluster *c = mem_calloc(1, sizeof *c);
	const char *port;

	if (c == NULL)
		return NULL;
	c->node = n;
	snprintf(c->name, sizeof c->name, "%s", name);
	buf_init(&c->ca_pem, 64 * 1024);
	buf_init(&c->cert_pem, 64 * 1024);
	buf_init(&c->key_pem, 64 * 1024);
	port = strrchr(cfg->db_listen, ':');
	snprintf(c->db_address, sizeof c->db_address, "%s%s", cfg->address,
	         port);
	port = strrchr(cfg->rpc_listen, ':');
	snprintf(c->rpc_address, sizeof c->rpc_address, "%s%s", cfg->address,
	         port);
	port = strrchr(cfg->api_listen, ':');
	snprintf(c->api_address, sizeof c->api_address, "%s%s", cfg->address,
	         port);
	/* Only this process talks to it (the tunnel proxies peers): the pid
	 * keeps agents of several clusters on one host apart. */
	snprintf(c->db_socket, sizeof c->db_socket, "@cairn-db-%s-%ld",
	         cfg->node_name, (long)getpid());
	return c;
}

static void cluster_free(struct node_cluster *c)
{
	rpc_tls_ctx_destroy(c->server_ctx);
	rpc_tls_ctx_destroy(c->rpc_ctx);
	rpc_tls_ctx_destroy(c->client_ctx);
	buf_free(&c->ca_pem);
	buf_free(&c->cert_pem);
	rpc_pki_key_pem_free(&c->key_pem);
	mem_free(c->revoked);
	mem_free(c);
}

static bool is_revoked(void *data, const char *fingerprint)
{
	struct node_cluster *c = data;
	unsigned i;

	for (i = 0; i < c->nrevoked; i++) {
		if (rpc_pki_fingerprints_equal(c->revoked[i], fingerprint))
			return true;
	}
	return false;
}

/* The revocation list follows the database: reloaded whenever the
 * cluster revision moves. */
struct revoked_list {
	char (*items)[RPC_FINGERPRINT_MAX];
	unsigned n;
};

static int reload_revoked_op(struct db_client *client, struct db_op *op,
                             struct err *e)
{
	struct revoked_list *list = op->data;
	struct db_rows rows;
	uint64_t i;
	int rv;

	rv = db_query(client, "SELECT fingerprint FROM revoked_certs", NULL, 0,
	              &rows, e);
	if (rv != 0)
		return rv;
	list->items = mem_calloc(rows.nrows + 1, sizeof *list->items);
	if (list->items == NULL) {
		db_rows_free(&rows);
		return err_set(e, -ENOMEM, "out of memory");
	}
	for (i = 0; i < rows.nrows; i++) {
		const struct wire_value *v = db_rows_at(&rows, i, 0);

		if (v->type == WIRE_TEXT)
			snprintf(list->items[list->n++], RPC_FINGERPRINT_MAX,
			         "%s", v->text.ptr);
	}
	db_rows_free(&rows);
	return 0;
}

/* Keeps a copy on disk, so that the list holds from the next start on,
 * before the database is reachable; and cuts revoked peers off now. */
static void apply_revoked(struct node_cluster *c)
{
	char path[4200];
	struct buf text;
	struct err e;
	unsigned i;

	buf_init(&text, (size_t)c->nrevoked * RPC_FINGERPRINT_MAX + 1);
	for (i = 0; i < c->nrevoked; i++)
		buf_printf(&text, "%s\n", c->revoked[i]);
	path_of(c->node, "revoked_certs", path, sizeof path);
	if (node__write_file(path, text.data != NULL ? text.data : "", 0600,
	                     &e) != 0)
		LOG_WARN("cluster", "revocation list not saved", "error=\"%s\"",
		         e.msg);
	buf_free(&text);
	for (i = 0; i < c->nrevoked && c->tunnel != NULL; i++) {
		unsigned n = rpc_tunnel_drop_peer(c->tunnel, c->revoked[i]);

		if (n > 0)
			LOG_INFO("cluster", "revoked peer cut off",
			         "fingerprint=%s connections=%u", c->revoked[i],
			         n);
	}
}

static void load_revoked(struct node_cluster *c)
{
	char path[4200], *line, *save = NULL;
	struct buf text;
	struct err e;
	unsigned n = 0;

	path_of(c->node, "revoked_certs", path, sizeof path);
	buf_init(&text, (size_t)1 << 20);
	if (access(path, F_OK) != 0 ||
	    file_read_all(path, (size_t)1 << 20, &text, &e) != 0 ||
	    text.data == NULL) {
		buf_free(&text);
		return;
	}
	for (line = text.data; *line != '\0'; line++)
		n += *line == '\n';
	c->revoked = mem_calloc(n + 1, sizeof *c->revoked);
	if (c->revoked != NULL) {
		for (line = strtok_r(text.data, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			if (c->nrevoked < n)
				snprintf(c->revoked[c->nrevoked++],
				         RPC_FINGERPRINT_MAX, "%s", line);
		}
	}
	buf_free(&text);
}

static void reload_revoked_done(struct db_op *op, int status)
{
	struct revoked_list *list = op->data;
	struct node_cluster *c =
	        CAIRN_CONTAINER_OF(op, struct node_cluster, reload_op);

	c->is_reloading = false;
	if (status == 0) {
		if (list->n != c->nrevoked)
			LOG_INFO("cluster", "revocation list loaded",
			         "revoked=%u", list->n);
		mem_free(c->revoked);
		c->revoked = list->items;
		c->nrevoked = list->n;
		apply_revoked(c);
	} else {
		mem_free(list->items);
		if (status != -ECANCELED)
			LOG_WARN("cluster", "revocation list not reloaded",
			         "error=\"%s\"", op->err.msg);
	}
	mem_free(list);
}

static void reload_revoked(struct node_cluster *c)
{
	struct revoked_list *list;

	if (c->is_reloading || c->db == NULL)
		return;
	list = mem_calloc(1, sizeof *list);
	if (list == NULL)
		return;
	c->reload_op.data = list;
	if (db_submit(c->db, &c->reload_op, reload_revoked_op,
	              reload_revoked_done) != 0) {
		mem_free(list);
		return;
	}
	c->is_reloading = true;
}

static void on_revision(struct db_feed *f, uint64_t revision, void *data)
{
	(void)f;
	reload_revoked(data);
	node_status_on_revision(data, revision);
	node_api_on_revision(data, revision);
}

/* Starts the node's TLS identity, tunnel, dqlite node, DB thread and RPC
 * listener. On failure the caller tears down with cluster_teardown. */
static int cluster_start(struct node_cluster *c, bool bootstrap, struct err *e)
{
	const struct node_config *cfg = c->node->config;
	struct rpc_tls_config tc = {
	        .ca_cert_pem = c->ca_pem.data,
	        .cert_pem = c->cert_pem.data,
	        .key_pem = c->key_pem.data,
	        .is_revoked = is_revoked,
	        .is_revoked_data = c,
	};
	struct rpc_tunnel_config tun = {0};
	struct db_node_config dn = {0};
	struct db_client_config dc = {0};
	const char *addresses[MEMBERS_MAX + 1];
	char dir[4200], marker[4200];
	unsigned i, naddr = 0;
	int rv;

	rv = rpc_pki_fingerprint(c->cert_pem.data, c->fingerprint, e);
	if (rv != 0)
		return rv;
	load_revoked(c);
	/* Peers must present a node certificate on the tunnel; the RPC port
	 * also serves joiners, who have none yet (methods check). */
	tc.require_peer_cert = true;
	rv = rpc_tls_ctx_create(&tc, true, &c->server_ctx, e);
	if (rv == 0)
		rv = rpc_tls_ctx_create(&tc, false, &c->client_ctx, e);
	if (rv != 0)
		return err_wrap(e, "tls identity");

	tun.server_ctx = c->server_ctx;
	tun.client_ctx = c->client_ctx;
	tun.listen_address = cfg->db_listen;
	tun.local_socket = c->db_socket;
	tun.local_address = c->db_address;
	rv = rpc_tunnel_start(c->node->loop, &tun, &c->tunnel, e);
	if (rv != 0)
		return rv;

	path_of(c->node, "db", dir, sizeof dir);
	path_of(c->node, "db.initialized", marker, sizeof marker);
	dn.id = c->db_id;
	dn.address = c->db_address;
	dn.bind_address = c->db_socket;
	dn.dir = dir;
	dn.marker_path = marker;
	dn.bootstrap = bootstrap;
	dn.latency_ms = (unsigned)cfg->db_latency_ms;
	dn.snapshot_threshold = (unsigned)cfg->db_snapshot_threshold;
	dn.snapshot_trailing = (unsigned)cfg->db_snapshot_trailing;
	dn.dial = rpc_tunnel_dial;
	dn.dial_data = c->tunnel;
	rv = db_node_start(&dn, &c->dbnode, e);
	if (rv != 0)
		return rv;

	addresses[naddr++] = c->db_address;
	for (i = 0; i < c->nmembers && naddr < DB_MAX_ADDRESSES; i++) {
		if (strcmp(c->members[i], c->db_address) != 0)
			addresses[naddr++] = c->members[i];
	}
	dc.addresses = addresses;
	dc.naddresses = naddr;
	dc.dial = rpc_tunnel_dial;
	dc.dial_data = c->tunnel;
	rv = db_open(c->node->loop, &dc, DB_QUEUE_MAX, &c->db, e);
	if (rv != 0)
		return rv;
	db_set_data(c->db, c);

	/* The RPC port: joiners come without a certificate; node-internal
	 * methods check for one. */
	tc.require_peer_cert = false;
	rv = rpc_tls_ctx_create(&tc, true, &c->rpc_ctx, e);
	if (rv != 0)
		return rv;
	rv = db_feed_start(c->db, 250, on_revision, c, &c->feed, e);
	if (rv != 0)
		return rv;
	rv = node_status_start(c, e);
	if (rv != 0)
		return rv;
	rv = node_rpc_start_tls(c->node, c->rpc_ctx, &c->rpc, e);
	if (rv != 0)
		return rv;
	return node_api_start(c, e);
}

/* ---- teardown: RPC server, DB thread, dqlite node (off the loop: its
 * stop may wait on dials that the loop serves), tunnel. */

static void teardown_step(struct node_cluster *c);

static void on_stopper_closed(struct pool *p)
{
	teardown_step(pool_get_data(p));
}

static void stop_dbnode_work(struct pool_work *w)
{
	struct node_cluster *c = w->data;

	db_node_stop(c->dbnode);
}

static void stop_dbnode_done(struct pool_work *w, int status)
{
	struct node_cluster *c = w->data;

	(void)status;
	c->dbnode = NULL;
	pool_close(c->stopper, on_stopper_closed);
}

static void on_db_closed(struct db *db)
{
	struct node_cluster *c = db_get_data(db);

	c->db = NULL;
	node_status_free(c);
	teardown_step(c);
}

static void on_status_stopped(struct node_cluster *c)
{
	c->is_status_stopped = true;
	teardown_step(c);
}

static void on_api_stopped(struct node_cluster *c)
{
	teardown_step(c);
}

static void on_rpc_stopped(void *data)
{
	struct node_cluster *c = data;

	c->rpc = NULL;
	teardown_step(c);
}

static void on_tunnel_stopped(void *data)
{
	struct node_cluster *c = data;

	c->tunnel = NULL;
	teardown_step(c);
}

static void teardown_step(struct node_cluster *c)
{
	struct err e;

	if (c->api != NULL) {
		node_api_stop(c, on_api_stopped);
		return;
	}
	if (c->rpc != NULL) {
		rpc_server_stop(c->rpc, on_rpc_stopped, c);
		return;
	}
	if (c->status != NULL && !c->is_status_stopped) {
		if (!c->is_status_stopping) {
			c->is_status_stopping = true;
			node_status_stop(c, on_status_stopped);
		}
		return;
	}
	if (c->feed != NULL) {
		db_feed_stop(c->feed);
		c->feed = NULL;
	}
	if (c->db != NULL) {
		db_close(c->db, on_db_closed);
		return;
	}
	if (c->dbnode != NULL) {
		if (c->stopper == NULL) {
			if (pool_create(c->node->loop, "db-stop", 1, 1,
			                &c->stopper, &e) != 0) {
				db_node_stop(
				        c->dbnode); /* no thread: do it here */
				c->dbnode = NULL;
				teardown_step(c);
				return;
			}
			pool_set_data(c->stopper, c);
			c->stop_work.data = c;
			pool_submit(c->stopper, &c->stop_work, stop_dbnode_work,
			            stop_dbnode_done);
		}
		return;
	}
	if (c->tunnel != NULL) {
		rpc_tunnel_stop(c->tunnel, on_tunnel_stopped, c);
		return;
	}
	if (c->stopped_cb != NULL)
		c->stopped_cb(c, c->stopped_data);
	cluster_free(c);
}

static void cluster_teardown(struct node_cluster *c,
                             void (*cb)(struct node_cluster *c, void *data),
                             void *data)
{
	c->stopped_cb = cb;
	c->stopped_data = data;
	c->stopper = NULL;
	teardown_step(c);
}

static void on_node_cluster_stopped(struct node_cluster *c, void *data)
{
	void (*cb)(struct node * n) = (void (*)(struct node *))data;
	struct node *n = c->node;

	n->cluster = NULL;
	cb(n);
}

void node_cluster_stop(struct node *n, void (*cb)(struct node *n))
{
	CAIRN_ASSERT(n->cluster != NULL);
	cluster_teardown(n->cluster, on_node_cluster_stopped, (void *)cb);
}

/* The schema check after start: record what we support, migrate. */
static int ensure_schema_op(struct db_client *client, struct db_op *op,
                            struct err *e)
{
	struct node_cluster *c = op->data;

	return db_schema_ensure(client, c->db_id, NULL, e);
}

static void ensure_schema_done(struct db_op *op, int status)
{
	if (status != 0 && status != -ECANCELED)
		LOG_WARN("db", "schema check failed", "error=\"%s\"",
		         op->err.msg);
	mem_free(op);
}

static void ensure_schema_later(struct node_cluster *c)
{
	struct db_op *op = mem_calloc(1, sizeof *op);

	if (op == NULL)
		return;
	op->data = c;
	if (db_submit(c->db, op, ensure_schema_op, ensure_schema_done) != 0)
		mem_free(op);
}

int node_cluster_load(struct node *n, struct err *e)
{
	char path[4200];
	struct node_cluster *c;
	struct buf text;
	json_t *root = NULL, *members;
	const char *name, *db_id_text;
	unsigned long long db_id;
	size_t i;
	int rv;

	path_of(n, "cluster.json", path, sizeof path);
	if (access(path, F_OK) != 0)
		return 0; /* not in a cluster */
	buf_init(&text, 256 * 1024);
	rv = file_read_all(path, 256 * 1024, &text, e);
	if (rv == 0)
		rv = json_parse_bounded(text.data, text.len, 256 * 1024, 8,
		                        &root, e);
	buf_free(&text);
	if (rv == 0)
		rv = json_get_str(root, "name", &name, e);
	if (rv == 0)
		rv = json_get_str(root, "db_id", &db_id_text, e);
	if (rv == 0) {
		char *end;

		errno = 0;
		db_id = strtoull(db_id_text, &end, 10);
		if (errno != 0 || *end != '\0' || db_id == 0)
			rv = err_set(e, -EINVAL, "bad db_id '%s'", db_id_text);
	}
	if (rv != 0) {
		json_decref(root);
		return err_wrap(e, "%s", path);
	}
	c = cluster_new(n, name);
	if (c == NULL) {
		json_decref(root);
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->db_id = (uint64_t)db_id;
	members = json_object_get(root, "db_members");
	for (i = 0; i < json_array_size(members) && c->nmembers < MEMBERS_MAX;
	     i++) {
		const char *m = json_string_value(json_array_get(members, i));

		if (m != NULL)
			snprintf(c->members[c->nmembers++],
			         sizeof c->members[0], "%s", m);
	}
	json_decref(root);
	rv = load_identity(c, e);
	if (rv == 0)
		rv = cluster_start(c, false, e);
	if (rv != 0) {
		cluster_teardown(c, NULL, NULL);
		return err_wrap(e, "start cluster member");
	}
	n->cluster = c;
	ensure_schema_later(c);
	LOG_INFO("cluster", "member of cluster", "cluster=%s db_id=%llu",
	         c->name, (unsigned long long)c->db_id);
	return 0;
}

/* ------------------------------------------------------------ create */

struct create_ctx {
	struct node_cluster *cluster;
	char ca_key[8192];
};

static int create_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	struct create_ctx *x = r->ctx;
	struct node_cluster *c = x->cluster;
	const struct node_config *cfg = r->node->config;
	int64_t now = clock_wall_ms(clock_real()) / 1000;
	char addresses[128];
	struct wire_value p[10];
	int rv;

	snprintf(addresses, sizeof addresses, "[\"%s\"]", cfg->address);
	p[0] = wire_value_text(c->name);
	p[1] = wire_value_text(c->ca_pem.data);
	p[2] = wire_value_integer(now);
	rv = db_tx_exec(tx,
	                "UPDATE cluster SET name = ?, ca_cert = ?, "
	                "created_at = ? WHERE id = 1",
	                p, 3, NULL, e);
	if (rv != 0)
		return rv;
	p[0] = wire_value_text(x->ca_key);
	rv = db_tx_exec(tx,
	                "INSERT INTO cluster_secrets (name, value) "
	                "VALUES ('ca_key', ?)",
	                p, 1, NULL, e);
	if (rv != 0)
		return rv;
	/* Proxmox's `local`: a dir storage on every node (each node keeps
	 * it in its own local_dir, /var/lib/vz by default). */
	rv = db_tx_exec(tx,
	                "INSERT INTO storage (id, type, content, shared, "
	                "options, digest) VALUES ('local', 'dir', "
	                "'backup,images,import,iso,rootdir,snippets,vztmpl', "
	                "0, '{\"path\":\"/var/lib/vz\"}', "
	                "lower(hex(randomblob(20)))) ON CONFLICT DO NOTHING",
	                NULL, 0, NULL, e);
	if (rv != 0)
		return rv;
	p[0] = wire_value_text(cfg->node_name);
	p[1] = wire_value_integer((int64_t)c->db_id);
	p[2] = wire_value_text(addresses);
	p[3] = wire_value_text(c->rpc_address);
	p[4] = wire_value_text(c->api_address);
	p[5] = wire_value_text(c->db_address);
	p[6] = wire_value_text(c->fingerprint);
	p[7] = wire_value_text(cairn_version());
	p[8] = wire_value_integer(now);
	return db_tx_exec(tx,
	                  "INSERT INTO nodes (name, db_id, addresses, "
	                  "rpc_address, api_address, db_address, role, "
	                  "state, cert_fingerprint, version, joined_at) "
	                  "VALUES (?, ?, ?, ?, ?, ?, 'voter', 'member', ?, "
	                  "?, ?)",
	                  p, 9, NULL, e);
}

static int create_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	struct create_ctx *x = r->ctx;
	int rv;

	rv = db_schema_ensure(client, x->cluster->db_id, NULL, e);
	if (rv != 0)
		return err_wrap(e, "schema");
	return db_write(client, 0, create_tx, r, e);
}

static void on_create_undone(struct node_cluster *c, void *data)
{
	(void)c;
	remove_cluster_files(data);
}

static void create_failed(struct node_req *r, enum rpc_status status,
                          const char *message)
{
	struct create_ctx *x = r->ctx;
	struct node *n = r->node;

	r->ctx = NULL;
	node_req_fail(r, status, "create cluster: %s", message);
	/* Nothing half-made stays: stop what started, then remove files. */
	cluster_teardown(x->cluster, on_create_undone, n);
	memset(x->ca_key, 0, sizeof x->ca_key);
	mem_free(x);
}

static void create_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct create_ctx *x = r->ctx;
	struct node_cluster *c = x->cluster;
	Cairn__ClusterCreateResponse resp =
	        CAIRN__CLUSTER_CREATE_RESPONSE__INIT;
	struct err e;

	if (status != 0) {
		create_failed(r, node_status_from_errno(status), op->err.msg);
		return;
	}
	if (save_identity(c, &e) != 0 || save_state(c, &e) != 0) {
		create_failed(r, RPC_STATUS_INTERNAL, e.msg);
		return;
	}
	r->node->cluster = c;
	LOG_INFO("cluster", "cluster created", "cluster=%s node=%s ca=%s",
	         c->name, r->node->config->node_name, c->fingerprint);
	resp.name = c->name;
	resp.node = (char *)r->node->config->node_name;
	resp.ca_fingerprint = NULL;
	{
		char ca_fp[RPC_FINGERPRINT_MAX];

		if (rpc_pki_fingerprint(c->ca_pem.data, ca_fp, &e) == 0)
			resp.ca_fingerprint = ca_fp;
		memset(x->ca_key, 0, sizeof x->ca_key);
		mem_free(x);
		r->ctx = NULL;
		node_req_reply(r, &resp.base);
	}
}

static const char *need_address(struct node *n)
{
	return n->config->address == NULL
	               ? "this node has no address: set `address` in cairnd's "
	                 "settings to the IP other nodes reach it at"
	               : NULL;
}

void node_cluster_create(struct node_req *r)
{
	Cairn__ClusterCreateRequest *req = (void *)r->request;
	struct node *n = r->node;
	const struct node_config *cfg = n->config;
	struct buf ca_key, csr;
	const char *addr[1] = {cfg->address};
	struct create_ctx *x;
	struct node_cluster *c;
	struct err e;
	int rv;

	if (n->cluster != NULL) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
		              "this node is already a member of cluster '%s'",
		              n->cluster->name);
		return;
	}
	if (need_address(n) != NULL) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION, "%s",
		              need_address(n));
		return;
	}
	if (req->name == NULL ||
	    rpc_pki_cluster_name_check(req->name, &e) != 0) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT, "%s",
		              req->name == NULL ? "a cluster name is required"
		                                : e.msg);
		return;
	}
	c = cluster_new(n, req->name);
	x = mem_calloc(1, sizeof *x);
	if (c == NULL || x == NULL) {
		mem_free(c);
		mem_free(x);
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	x->cluster = c;
	c->db_id = DB_BOOTSTRAP_ID;
	buf_init(&ca_key, 64 * 1024);
	buf_init(&csr, 64 * 1024);
	rv = rpc_pki_ca_create(req->name, 0, &ca_key, &c->ca_pem, &e);
	if (rv == 0)
		rv = rpc_pki_key_create(&c->key_pem, &e);
	if (rv == 0)
		rv = rpc_pki_csr_create(c->key_pem.data, cfg->node_name, addr,
		                        1, &csr, &e);
	if (rv == 0)
		rv = rpc_pki_csr_sign(ca_key.data, c->ca_pem.data, csr.data,
		                      cfg->node_name, 0, &c->cert_pem, &e);
	if (rv == 0 && ca_key.len >= sizeof x->ca_key)
		rv = err_set(&e, -E2BIG, "CA key too large");
	if (rv == 0)
		memcpy(x->ca_key, ca_key.data, ca_key.len + 1);
	rpc_pki_key_pem_free(&ca_key);
	buf_free(&csr);
	if (rv == 0) {
		c->nmembers = 1;
		snprintf(c->members[0], sizeof c->members[0], "%s",
		         c->db_address);
		rv = cluster_start(c, true, &e);
	}
	if (rv != 0) {
		r->ctx = x;
		create_failed(r, node_status_from_errno(rv), e.msg);
		return;
	}
	r->ctx = x;
	r->op.data = r;
	if (db_submit(c->db, &r->op, create_op, create_done) != 0)
		create_failed(r, RPC_STATUS_UNAVAILABLE, "database busy");
}

/* ----------------------------------------- requests that use the DB */

/* The handler's context, zeroed; NULL after answering the failure. */
static void *req_ctx_new(struct node_req *r, size_t size)
{
	void *x = mem_calloc(1, size);

	if (x == NULL)
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
	r->ctx = x;
	return x;
}

/* Runs `run` on the DB thread, `done` answers; on refusal the context is
 * freed and the failure answered. */
static void req_submit(struct node_req *r, db_op_fn run, db_op_done_cb done)
{
	r->op.data = r;
	if (db_submit(r->node->cluster->db, &r->op, run, done) != 0) {
		mem_free(r->ctx);
		r->ctx = NULL;
		node_req_fail(r, RPC_STATUS_UNAVAILABLE, "database busy");
	}
}

/* False after answering that the cluster cannot take changes now. */
static bool req_quorate(struct node_req *r)
{
	unsigned online, voters;

	/* A write of ours committed just now proves a quorum, even while
	 * heartbeats to a new member have not come back yet; and right after
	 * start-up there is no evidence either way: let the database decide
	 * (it refuses without a leader). */
	if (node_status_has_recent_commit(r->node->cluster) ||
	    !node_status_is_settled(r->node->cluster))
		return true;
	node_status_is_quorate(r->node->cluster, &online, &voters);
	node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
	              "cluster not quorate (%u of %u voters online, or no "
	              "write committed lately): refusing changes",
	              online, voters);
	return false;
}

/* False after answering that this node is not in a cluster. */
static bool req_in_cluster(struct node_req *r)
{
	if (r->node->cluster != NULL)
		return true;
	node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
	              "this node is not in a cluster: create one (cairn "
	              "cluster create NAME) or join one");
	return false;
}

/* -------------------------------------------------------- join token */

struct token_ctx {
	char text[RPC_TOKEN_TEXT_MAX];
	struct rpc_token token;
	unsigned ttl;
};

static int token_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	struct token_ctx *x = r->ctx;
	char digest[RPC_TOKEN_DIGEST_LEN + 1];
	struct wire_value p[5];
	int rv;

	rv = rpc_token_secret_digest(x->token.secret, digest, e);
	if (rv != 0)
		return rv;
	p[0] = wire_value_text(x->token.id);
	p[1] = wire_value_text(digest);
	p[2] = wire_value_integer(clock_wall_ms(clock_real()) / 1000);
	p[3] = wire_value_integer(x->token.expires_at);
	p[4] = wire_value_text(r->node->config->node_name);
	return db_tx_exec(tx,
	                  "INSERT INTO join_tokens (id, secret_digest, "
	                  "created_at, expires_at, created_by) VALUES "
	                  "(?, ?, ?, ?, ?)",
	                  p, 5, NULL, e);
}

static int token_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	struct token_ctx *x = r->ctx;
	struct node_cluster *c = r->node->cluster;
	const char *addresses[RPC_TOKEN_ADDRESSES_MAX];
	char ca_fp[RPC_FINGERPRINT_MAX];
	struct db_rows rows;
	unsigned n = 0;
	uint64_t i;
	int rv;

	rv = db_query(client,
	              "SELECT rpc_address FROM nodes WHERE state = "
	              "'member' ORDER BY name",
	              NULL, 0, &rows, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows && n < RPC_TOKEN_ADDRESSES_MAX; i++) {
		const struct wire_value *v = db_rows_at(&rows, i, 0);

		if (v->type == WIRE_TEXT)
			addresses[n++] = v->text.ptr;
	}
	rv = rpc_pki_fingerprint(c->ca_pem.data, ca_fp, e);
	if (rv == 0 && n == 0)
		rv = err_set(e, -ENOENT, "no member address known");
	if (rv == 0)
		rv = rpc_token_create(c->name, addresses, n, ca_fp, x->ttl,
		                      clock_wall_ms(clock_real()) / 1000,
		                      &x->token, x->text, sizeof x->text, e);
	db_rows_free(&rows);
	if (rv != 0)
		return rv;
	return db_write(client, 0, token_tx, r, e);
}

static void token_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct token_ctx *x = r->ctx;
	Cairn__JoinTokenResponse resp = CAIRN__JOIN_TOKEN_RESPONSE__INIT;

	if (status != 0) {
		node_req_fail(r, node_status_from_errno(status),
		              "join token: %s", op->err.msg);
	} else {
		LOG_INFO("cluster", "join token issued",
		         "id=%s expires_at=%lld", x->token.id,
		         (long long)x->token.expires_at);
		resp.token = x->text;
		node_req_reply(r, &resp.base);
	}
	rpc_token_clear(&x->token);
	memset(x->text, 0, sizeof x->text);
	mem_free(x);
}

void node_cluster_join_token(struct node_req *r)
{
	Cairn__JoinTokenRequest *req = (void *)r->request;
	struct token_ctx *x;

	if (r->node->cluster == NULL) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
		              "this node is not in a cluster: create one first "
		              "(cairn cluster create NAME)");
		return;
	}
	if (!req_quorate(r))
		return;
	if (req->has_ttl_seconds &&
	    (req->ttl_seconds < 1 || req->ttl_seconds > RPC_TOKEN_TTL_MAX)) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "ttl must be between 1 and %d seconds",
		              RPC_TOKEN_TTL_MAX);
		return;
	}
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	x->ttl = req->has_ttl_seconds ? req->ttl_seconds : TOKEN_TTL_DEFAULT;
	req_submit(r, token_op, token_done);
}

/* ------------------------------------------- join: the joining node */

/*   parse token ──> Node/Join (TLS pinned to the token's CA) ──> start
 *   DB with the new certificate ──> Node/AddMember (mutual TLS) ──> save
 * Any failure stops what started and removes what was written. */
struct join_ctx {
	struct node_req *req;
	struct rpc_token token;
	unsigned next_address;
	struct rpc_tls_ctx *pinned_ctx;
	struct buf key_pem, csr_pem;
	struct node_cluster *cluster;
	char member_address[RPC_TOKEN_ADDRESS_MAX + 1];
	char last_error[ERR_MSG_MAX];
};

static void join_free(struct join_ctx *j)
{
	rpc_tls_ctx_destroy(j->pinned_ctx);
	rpc_pki_key_pem_free(&j->key_pem);
	buf_free(&j->csr_pem);
	rpc_token_clear(&j->token);
	mem_free(j);
}

static void on_join_undone(struct node_cluster *c, void *data)
{
	(void)c;
	remove_cluster_files(data);
}

static void join_fail(struct join_ctx *j, enum rpc_status status,
                      const char *fmt, ...) CAIRN_PRINTF(3, 4);

static void join_fail(struct join_ctx *j, enum rpc_status status,
                      const char *fmt, ...)
{
	struct node *n = j->req->node;
	char message[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	node_req_fail(j->req, status, "join cluster '%s': %s", j->token.cluster,
	              message);
	if (j->cluster != NULL)
		cluster_teardown(j->cluster, on_join_undone, n);
	join_free(j);
}

static void add_member_reply(enum rpc_status status, const char *message,
                             const void *payload, size_t len, void *data)
{
	struct join_ctx *j = data;
	struct node_cluster *c = j->cluster;
	Cairn__ClusterJoinResponse resp = CAIRN__CLUSTER_JOIN_RESPONSE__INIT;
	struct err e;

	(void)payload;
	(void)len;
	if (status != RPC_STATUS_OK) {
		join_fail(j, status,
		          "the cluster admitted this node but could "
		          "not add it to the database (%s); the "
		          "token is used up: ask for a new one",
		          message);
		return;
	}
	if (db_node_mark_initialized(c->dbnode, &e) != 0 ||
	    save_identity(c, &e) != 0 || save_state(c, &e) != 0) {
		join_fail(j, RPC_STATUS_INTERNAL, "%s", e.msg);
		return;
	}
	j->req->node->cluster = c;
	j->cluster = NULL;
	ensure_schema_later(c);
	LOG_INFO("cluster", "joined cluster", "cluster=%s db_id=%llu via=%s",
	         c->name, (unsigned long long)c->db_id, j->member_address);
	resp.name = c->name;
	resp.node = (char *)j->req->node->config->node_name;
	resp.has_nodeid = true;
	resp.nodeid = c->db_id;
	node_req_reply(j->req, &resp.base);
	join_free(j);
}

static void join_try_next(struct join_ctx *j);

static void node_join_reply(enum rpc_status status, const char *message,
                            const void *payload, size_t len, void *data)
{
	struct join_ctx *j = data;
	struct node *n = j->req->node;
	Cairn__NodeJoinResponse *resp;
	Cairn__AddMemberRequest add = CAIRN__ADD_MEMBER_REQUEST__INIT;
	struct node_cluster *c;
	uint8_t packed[256];
	struct err e;
	size_t i;
	int rv;

	if (status == RPC_STATUS_UNAVAILABLE ||
	    status == RPC_STATUS_DEADLINE_EXCEEDED) {
		snprintf(j->last_error, sizeof j->last_error, "%s: %s",
		         j->member_address, message);
		join_try_next(j);
		return;
	}
	if (status != RPC_STATUS_OK) {
		join_fail(j, status, "%s", message);
		return;
	}
	resp = cairn__node_join_response__unpack(NULL, len, payload);
	if (resp == NULL || resp->ca_cert == NULL || resp->cert == NULL ||
	    !resp->has_db_id || resp->cluster_name == NULL) {
		if (resp != NULL)
			cairn__node_join_response__free_unpacked(resp, NULL);
		join_fail(j, RPC_STATUS_INTERNAL, "malformed answer from %s",
		          j->member_address);
		return;
	}
	c = cluster_new(n, resp->cluster_name);
	if (c == NULL) {
		cairn__node_join_response__free_unpacked(resp, NULL);
		join_fail(j, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->cluster = c;
	c->db_id = resp->db_id;
	for (i = 0; i < resp->n_db_members && c->nmembers < MEMBERS_MAX; i++)
		snprintf(c->members[c->nmembers++], sizeof c->members[0], "%s",
		         resp->db_members[i]);
	rv = buf_append_str(&c->ca_pem, resp->ca_cert);
	if (rv == 0)
		rv = buf_append_str(&c->cert_pem, resp->cert);
	if (rv == 0)
		rv = buf_append_str(&c->key_pem, j->key_pem.data);
	cairn__node_join_response__free_unpacked(resp, NULL);
	if (rv != 0) {
		join_fail(j, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	/* The certificate must come from the CA the token named. */
	{
		char fp[RPC_FINGERPRINT_MAX], name[256];

		if (rpc_pki_fingerprint(c->ca_pem.data, fp, &e) != 0 ||
		    !rpc_pki_fingerprints_equal(fp, j->token.ca_fingerprint) ||
		    rpc_pki_verify(c->ca_pem.data, c->cert_pem.data, NULL, 0,
		                   name, sizeof name, &e) != 0) {
			join_fail(j, RPC_STATUS_PERMISSION_DENIED,
			          "the certificate from %s is not from the "
			          "token's CA",
			          j->member_address);
			return;
		}
	}
	if (cluster_start(c, false, &e) != 0) {
		join_fail(j, node_status_from_errno(e.code), "%s", e.msg);
		return;
	}
	add.has_db_id = true;
	add.db_id = c->db_id;
	add.db_address = c->db_address;
	if (protobuf_c_message_get_packed_size(&add.base) > sizeof packed) {
		join_fail(j, RPC_STATUS_INTERNAL, "request too large");
		return;
	}
	len = protobuf_c_message_pack(&add.base, packed);
	if (rpc_unary(n->loop, c->client_ctx, j->member_address,
	              "cairn.Node/AddMember", packed, len,
	              ADD_MEMBER_TIMEOUT_MS, add_member_reply, j, &e) != 0)
		join_fail(j, RPC_STATUS_INTERNAL, "%s", e.msg);
}

static void join_try_next(struct join_ctx *j)
{
	struct node *n = j->req->node;
	Cairn__NodeJoinRequest req = CAIRN__NODE_JOIN_REQUEST__INIT;
	char rpc_address[64], db_address[64];
	uint8_t *packed;
	size_t len;
	struct err e;
	int rv;

	if (j->next_address >= j->token.n_addresses) {
		join_fail(j, RPC_STATUS_UNAVAILABLE, "no member answered (%s)",
		          j->last_error);
		return;
	}
	snprintf(j->member_address, sizeof j->member_address, "%s",
	         j->token.addresses[j->next_address++]);
	snprintf(rpc_address, sizeof rpc_address, "%s%s", n->config->address,
	         strrchr(n->config->rpc_listen, ':'));
	snprintf(db_address, sizeof db_address, "%s%s", n->config->address,
	         strrchr(n->config->db_listen, ':'));
	req.token_id = j->token.id;
	req.has_secret = true;
	req.secret.data = j->token.secret;
	req.secret.len = sizeof j->token.secret;
	req.node_name = (char *)n->config->node_name;
	req.csr = j->csr_pem.data;
	req.rpc_address = rpc_address;
	req.db_address = db_address;
	req.has_wall_ms = true;
	req.wall_ms = clock_wall_ms(clock_real());
	len = protobuf_c_message_get_packed_size(&req.base);
	packed = mem_alloc(len + 1);
	if (packed == NULL) {
		join_fail(j, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(&req.base, packed);
	rv = rpc_unary(n->loop, j->pinned_ctx, j->member_address,
	               "cairn.Node/Join", packed, len, JOIN_RPC_TIMEOUT_MS,
	               node_join_reply, j, &e);
	memset(packed, 0, len); /* it holds the secret */
	mem_free(packed);
	if (rv != 0) {
		snprintf(j->last_error, sizeof j->last_error, "%s", e.msg);
		join_try_next(j);
	}
}

/* Fails when an address we are about to listen on is taken, before
 * anything changes anywhere (a join consumes its token). */
static int check_bindable(const char *what, const char *address, struct err *e)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(address, ':');
	char host[64];
	int fd, one = 1, rv = 0;

	if (colon == NULL || (size_t)(colon - address) >= sizeof host)
		return err_set(e, -EINVAL, "%s '%s' is not IPv4:PORT", what,
		               address);
	snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return err_set(e, -EINVAL, "%s '%s' is not IPv4:PORT", what,
		               address);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, -errno, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		rv = err_sys(e, -errno, "%s %s cannot be used", what, address);
	close(fd);
	return rv;
}

void node_cluster_join(struct node_req *r)
{
	Cairn__ClusterJoinRequest *req = (void *)r->request;
	struct node *n = r->node;
	const char *addr[1] = {n->config->address};
	struct rpc_tls_config pinned = {0};
	struct join_ctx *j;
	struct rpc_token probe;
	struct err e;

	/* A bad token is named as such first, whatever else is wrong. */
	if (req->token == NULL ||
	    rpc_token_parse(req->token, &probe, &e) != 0) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT, "%s",
		              req->token == NULL ? "a join token is required"
		                                 : e.msg);
		return;
	}
	rpc_token_clear(&probe);
	if (n->cluster != NULL) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
		              "this node is already a member of cluster '%s'",
		              n->cluster->name);
		return;
	}
	if (need_address(n) != NULL) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION, "%s",
		              need_address(n));
		return;
	}
	if (check_bindable("rpc_listen", n->config->rpc_listen, &e) != 0 ||
	    check_bindable("db_listen", n->config->db_listen, &e) != 0) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION, "%s", e.msg);
		return;
	}
	j = mem_calloc(1, sizeof *j);
	if (j == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	j->req = r;
	buf_init(&j->key_pem, 64 * 1024);
	buf_init(&j->csr_pem, 64 * 1024);
	if (req->token == NULL ||
	    rpc_token_parse(req->token, &j->token, &e) != 0) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT, "%s",
		              req->token == NULL ? "a join token is required"
		                                 : e.msg);
		join_free(j);
		return;
	}
	if (rpc_token_check_expiry(
	            &j->token, clock_wall_ms(clock_real()) / 1000, &e) != 0) {
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION, "%s", e.msg);
		join_free(j);
		return;
	}
	pinned.pinned_ca_fingerprint = j->token.ca_fingerprint;
	if (rpc_pki_key_create(&j->key_pem, &e) != 0 ||
	    rpc_pki_csr_create(j->key_pem.data, n->config->node_name, addr, 1,
	                       &j->csr_pem, &e) != 0 ||
	    rpc_tls_ctx_create(&pinned, false, &j->pinned_ctx, &e) != 0) {
		node_req_fail(r, RPC_STATUS_INTERNAL, "%s", e.msg);
		join_free(j);
		return;
	}
	join_try_next(j);
}

/* --------------------------------------- join: the member admitting */

struct admit_ctx {
	char ca_cert[16384];
	char cert[16384];
	char cluster_name[RPC_CLUSTER_NAME_MAX + 1];
	char fingerprint[RPC_FINGERPRINT_MAX];
	uint64_t db_id;
	char members[MEMBERS_MAX][64];
	unsigned nmembers;
};

static const char *text_at(const struct db_rows *rows, uint64_t row,
                           unsigned col)
{
	const struct wire_value *v = db_rows_at(rows, row, col);

	return v->type == WIRE_TEXT ? v->text.ptr : NULL;
}

static int admit_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	Cairn__NodeJoinRequest *req = (void *)r->request;
	struct admit_ctx *x = r->ctx;
	int64_t now = clock_wall_ms(clock_real()) / 1000;
	struct db_rows rows = {0};
	struct wire_value p[9];
	struct buf cert;
	char addresses[128], host[64];
	const char *digest, *used_by, *ca_key, *ca_cert, *colon;
	int64_t expires_at;
	bool is_used;
	uint64_t i;
	int rv;

	x->nmembers = 0;
	p[0] = wire_value_text(req->token_id);
	rv = db_tx_query(tx,
	                 "SELECT secret_digest, expires_at, used_at, "
	                 "coalesce(used_by, '') FROM join_tokens WHERE id = ?",
	                 p, 1, &rows, e);
	if (rv != 0)
		return rv;
	if (rows.nrows != 1 || (digest = text_at(&rows, 0, 0)) == NULL ||
	    !rpc_token_secret_matches(digest, req->secret.data)) {
		db_rows_free(&rows);
		/* Same answer for unknown and wrong: no oracle. */
		return err_set(e, -EKEYREJECTED,
		               "the join token is not valid "
		               "for this cluster");
	}
	expires_at = db_rows_at(&rows, 0, 1)->integer;
	is_used = db_rows_at(&rows, 0, 2)->type != WIRE_NULL;
	used_by = text_at(&rows, 0, 3);
	if (is_used) {
		rv = err_set(e, -EALREADY,
		             "the join token was already used (by "
		             "node %s); ask for a new one",
		             used_by != NULL ? used_by : "?");
		db_rows_free(&rows);
		return rv;
	}
	db_rows_free(&rows);
	if (expires_at < now) {
		time_t t = (time_t)expires_at;
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return err_set(e, -EKEYEXPIRED,
		               "the join token expired at %s; "
		               "ask for a new one",
		               when);
	}
	p[0] = wire_value_text(req->node_name);
	p[1] = wire_value_text(req->db_address);
	rv = db_tx_query(tx,
	                 "SELECT name FROM nodes WHERE name = ? OR "
	                 "db_address = ?",
	                 p, 2, &rows, e);
	if (rv != 0)
		return rv;
	if (rows.nrows > 0) {
		db_rows_free(&rows);
		return err_set(e, -EEXIST,
		               "a node named %s or at %s is already "
		               "a member",
		               req->node_name, req->db_address);
	}
	db_rows_free(&rows);
	rv = db_tx_query(tx,
	                 "SELECT s.value, c.ca_cert, c.name FROM "
	                 "cluster_secrets s, cluster c WHERE s.name = "
	                 "'ca_key' AND c.id = 1",
	                 NULL, 0, &rows, e);
	if (rv != 0)
		return rv;
	if (rows.nrows != 1 || (ca_key = text_at(&rows, 0, 0)) == NULL ||
	    (ca_cert = text_at(&rows, 0, 1)) == NULL) {
		db_rows_free(&rows);
		return err_set(e, -ENOENT, "the cluster has no CA");
	}
	buf_init(&cert, sizeof x->cert - 1);
	rv = rpc_pki_csr_sign(ca_key, ca_cert, req->csr, req->node_name, 0,
	                      &cert, e);
	if (rv == 0 && strlen(ca_cert) < sizeof x->ca_cert) {
		snprintf(x->ca_cert, sizeof x->ca_cert, "%s", ca_cert);
		snprintf(x->cert, sizeof x->cert, "%s", cert.data);
		snprintf(x->cluster_name, sizeof x->cluster_name, "%s",
		         text_at(&rows, 0, 2));
		rv = rpc_pki_fingerprint(x->cert, x->fingerprint, e);
	}
	buf_free(&cert);
	db_rows_free(&rows);
	if (rv != 0)
		return rv;

	x->db_id = db_node_generate_id(req->db_address);
	colon = strrchr(req->db_address, ':');
	snprintf(host, sizeof host, "%.*s", (int)(colon - req->db_address),
	         req->db_address);
	snprintf(addresses, sizeof addresses, "[\"%s\"]", host);
	p[0] = wire_value_integer(now);
	p[1] = wire_value_text(req->node_name);
	p[2] = wire_value_text(req->token_id);
	rv = db_tx_exec(tx,
	                "UPDATE join_tokens SET used_at = ?, used_by = ? "
	                "WHERE id = ? AND used_at IS NULL",
	                p, 3, NULL, e);
	if (rv != 0)
		return rv;
	p[0] = wire_value_text(req->node_name);
	p[1] = wire_value_integer((int64_t)x->db_id);
	p[2] = wire_value_text(addresses);
	p[3] = wire_value_text(req->rpc_address);
	p[4] = wire_value_text(req->rpc_address); /* API: set when it serves */
	p[5] = wire_value_text(req->db_address);
	p[6] = wire_value_text(x->fingerprint);
	p[7] = wire_value_integer(now);
	rv = db_tx_exec(tx,
	                "INSERT INTO nodes (name, db_id, addresses, "
	                "rpc_address, api_address, db_address, role, state, "
	                "cert_fingerprint, joined_at) VALUES (?, ?, ?, ?, "
	                "?, ?, 'spare', 'joining', ?, ?)",
	                p, 8, NULL, e);
	if (rv != 0)
		return rv;
	rv = db_tx_query(tx,
	                 "SELECT db_address FROM nodes WHERE state = "
	                 "'member'",
	                 NULL, 0, &rows, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows && x->nmembers < MEMBERS_MAX; i++) {
		const char *a = text_at(&rows, i, 0);

		if (a != NULL)
			snprintf(x->members[x->nmembers++],
			         sizeof x->members[0], "%s", a);
	}
	db_rows_free(&rows);
	return 0;
}

static int admit_op(struct db_client *client, struct db_op *op, struct err *e)
{
	return db_write(client, 0, admit_tx, op->data, e);
}

static void admit_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	Cairn__NodeJoinRequest *req = (void *)r->request;
	struct admit_ctx *x = r->ctx;
	Cairn__NodeJoinResponse resp = CAIRN__NODE_JOIN_RESPONSE__INIT;
	char *members[MEMBERS_MAX];
	unsigned i;

	if (status != 0) {
		LOG_WARN("cluster", "join refused", "node=%s error=\"%s\"",
		         req->node_name, op->err.msg);
		node_req_fail(r, node_status_from_errno(status), "%s",
		              op->err.msg);
		mem_free(x);
		return;
	}
	LOG_INFO("cluster", "node admitted", "node=%s db_id=%llu",
	         req->node_name, (unsigned long long)x->db_id);
	for (i = 0; i < x->nmembers; i++)
		members[i] = x->members[i];
	resp.cluster_name = x->cluster_name;
	resp.ca_cert = x->ca_cert;
	resp.cert = x->cert;
	resp.has_db_id = true;
	resp.db_id = x->db_id;
	resp.n_db_members = x->nmembers;
	resp.db_members = members;
	node_req_reply(r, &resp.base);
	mem_free(x);
}

void node_member_join(struct node_req *r)
{
	Cairn__NodeJoinRequest *req = (void *)r->request;
	struct admit_ctx *x;
	struct err e;

	if (!req_in_cluster(r))
		return;
	if (req->token_id == NULL ||
	    strlen(req->token_id) != RPC_TOKEN_ID_LEN || !req->has_secret ||
	    req->secret.len != RPC_TOKEN_SECRET_LEN || req->node_name == NULL ||
	    req->csr == NULL || strlen(req->csr) > 16384 ||
	    req->rpc_address == NULL || req->db_address == NULL) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "incomplete join request");
		return;
	}
	if (rpc_pki_node_name_check(req->node_name, &e) != 0 ||
	    rpc_token_address_check(req->rpc_address, &e) != 0 ||
	    rpc_token_address_check(req->db_address, &e) != 0 ||
	    req->db_address[0] == '[') {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT, "%s", e.msg);
		return;
	}
	/* Leases, tickets and tasks compare wall clocks across nodes. */
	if (req->has_wall_ms) {
		int64_t skew = req->wall_ms - clock_wall_ms(clock_real());

		if (skew > JOIN_SKEW_MAX_MS || skew < -JOIN_SKEW_MAX_MS) {
			node_req_fail(
			        r, RPC_STATUS_FAILED_PRECONDITION,
			        "the clocks of %s and this node differ by "
			        "%lld ms (at most %d allowed): synchronise "
			        "them (NTP) and join again",
			        req->node_name, (long long)skew,
			        JOIN_SKEW_MAX_MS);
			return;
		}
	}
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	req_submit(r, admit_op, admit_done);
}

/* ------------------------------------- add member: the Raft side */

struct add_ctx {
	char peer_name[256];
	char role[16];
};

static int add_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	Cairn__AddMemberRequest *req = (void *)r->request;
	struct add_ctx *x = r->ctx;
	struct wire_value p[2];

	p[0] = wire_value_text(x->role);
	p[1] = wire_value_integer((int64_t)req->db_id);
	return db_tx_exec(tx,
	                  "UPDATE nodes SET state = 'member', role = ? "
	                  "WHERE db_id = ?",
	                  p, 2, NULL, e);
}

static int add_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	Cairn__AddMemberRequest *req = (void *)r->request;
	struct add_ctx *x = r->ctx;
	struct db_member members[64];
	struct db_rows rows;
	struct wire_value p[1];
	const char *name, *state;
	unsigned n, i;
	int rv;

	p[0] = wire_value_integer((int64_t)req->db_id);
	rv = db_query(client,
	              "SELECT name, state, db_address FROM nodes WHERE "
	              "db_id = ?",
	              p, 1, &rows, e);
	if (rv != 0)
		return rv;
	name = rows.nrows == 1 ? text_at(&rows, 0, 0) : NULL;
	state = rows.nrows == 1 ? text_at(&rows, 0, 1) : NULL;
	if (name == NULL || strcmp(name, x->peer_name) != 0 ||
	    strcmp(text_at(&rows, 0, 2), req->db_address) != 0) {
		db_rows_free(&rows);
		return err_set(e, -EPERM,
		               "node %s may not add database node "
		               "%llu",
		               x->peer_name, (unsigned long long)req->db_id);
	}
	if (strcmp(state, "joining") != 0) {
		db_rows_free(&rows);
		return err_set(e, -EEXIST, "node %s is already a member",
		               x->peer_name);
	}
	db_rows_free(&rows);
	rv = db_membership_join(client, req->db_id, req->db_address, e);
	if (rv != 0)
		return rv;
	rv = db_cluster(client, members, 64, &n, e);
	snprintf(x->role, sizeof x->role, "spare");
	for (i = 0; rv == 0 && i < n; i++) {
		if (members[i].id == req->db_id)
			snprintf(x->role, sizeof x->role, "%s",
			         members[i].role == WIRE_ROLE_VOTER ? "voter"
			         : members[i].role == WIRE_ROLE_STANDBY
			                 ? "standby"
			                 : "spare");
	}
	return db_write(client, 0, add_tx, r, e);
}

static void add_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct add_ctx *x = r->ctx;
	Cairn__AddMemberResponse resp = CAIRN__ADD_MEMBER_RESPONSE__INIT;

	if (status != 0) {
		node_req_fail(r, node_status_from_errno(status), "%s",
		              op->err.msg);
	} else {
		LOG_INFO("cluster", "node added to the database",
		         "node=%s role=%s", x->peer_name, x->role);
		resp.role = x->role;
		node_req_reply(r, &resp.base);
	}
	mem_free(x);
}

void node_member_add(struct node_req *r)
{
	Cairn__AddMemberRequest *req = (void *)r->request;
	struct add_ctx *x;

	if (!req_in_cluster(r))
		return;
	if (!req->has_db_id || req->db_address == NULL) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "db_id and db_address are required");
		return;
	}
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	snprintf(x->peer_name, sizeof x->peer_name, "%s", r->peer->name);
	req_submit(r, add_op, add_done);
}

/* ------------------------------------------------------------- nodes */

struct nodes_ctx {
	struct db_rows rows;
};

static int nodes_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	struct nodes_ctx *x = r->ctx;

	return db_query(client,
	                "SELECT name, db_id, addresses, role, "
	                "rpc_address, db_address, cert_fingerprint FROM "
	                "nodes WHERE state != 'joining' ORDER BY name",
	                NULL, 0, &x->rows, e);
}

static void nodes_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct nodes_ctx *x = r->ctx;
	Cairn__ClusterNodesResponse resp = CAIRN__CLUSTER_NODES_RESPONSE__INIT;
	Cairn__ClusterNode *items = NULL, **ptrs = NULL;
	char ips[64][48];
	uint64_t i, n;

	if (status != 0) {
		node_req_fail(r, node_status_from_errno(status), "%s",
		              op->err.msg);
		mem_free(x);
		return;
	}
	n = x->rows.nrows < 64 ? x->rows.nrows : 64;
	items = mem_calloc(n + 1, sizeof *items);
	ptrs = mem_calloc(n + 1, sizeof *ptrs);
	if (items == NULL || ptrs == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *db_address = text_at(&x->rows, i, 5);
		const char *colon =
		        db_address ? strrchr(db_address, ':') : NULL;

		cairn__cluster_node__init(&items[i]);
		items[i].name = (char *)text_at(&x->rows, i, 0);
		items[i].has_nodeid = true;
		items[i].nodeid = (uint64_t)db_rows_at(&x->rows, i, 1)->integer;
		snprintf(ips[i], sizeof ips[i], "%.*s",
		         colon ? (int)(colon - db_address) : 0,
		         db_address ? db_address : "");
		items[i].ip = ips[i];
		items[i].role = (char *)text_at(&x->rows, i, 3);
		items[i].rpc_address = (char *)text_at(&x->rows, i, 4);
		items[i].db_address = (char *)db_address;
		items[i].fingerprint = (char *)text_at(&x->rows, i, 6);
		ptrs[i] = &items[i];
	}
	resp.n_nodes = n;
	resp.nodes = ptrs;
	node_req_reply(r, &resp.base);
out:
	mem_free(items);
	mem_free(ptrs);
	db_rows_free(&x->rows);
	mem_free(x);
}

void node_cluster_nodes(struct node_req *r)
{
	struct nodes_ctx *x;

	if (!req_in_cluster(r))
		return;
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	req_submit(r, nodes_op, nodes_done);
}

/* ------------------------------------------------------------ db query */

struct query_ctx {
	struct db_rows rows;
	bool is_read;
	struct wire_result result;
};

static bool is_read_statement(const char *sql)
{
	static const char *const words[] = {"select", "with", "pragma",
	                                    "values", "explain"};
	size_t i;

	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '(')
		sql++;
	for (i = 0; i < CAIRN_ARRAY_SIZE(words); i++) {
		if (strncasecmp(sql, words[i], strlen(words[i])) == 0)
			return true;
	}
	return false;
}

static int query_write_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	Cairn__DbQueryRequest *req = (void *)r->request;
	struct query_ctx *x = r->ctx;

	return db_tx_exec(tx, req->sql, NULL, 0, &x->result, e);
}

static int query_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	Cairn__DbQueryRequest *req = (void *)r->request;
	struct query_ctx *x = r->ctx;

	if (x->is_read)
		return db_query(client, req->sql, NULL, 0, &x->rows, e);
	return db_write(client, 0, query_write_tx, r, e);
}

static void query_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct query_ctx *x = r->ctx;
	Cairn__DbQueryResponse resp = CAIRN__DB_QUERY_RESPONSE__INIT;
	Cairn__DbRow *rows = NULL, **row_ptrs = NULL;
	char **cells = NULL, *texts = NULL;
	uint64_t i, nrows = x->rows.nrows;
	unsigned j, ncols = x->rows.ncols;

	if (status != 0) {
		node_req_fail(r, node_status_from_errno(status), "%s",
		              op->err.msg);
		goto out;
	}
	if (!x->is_read) {
		resp.has_rows_affected = true;
		resp.rows_affected = x->result.rows_affected;
		resp.has_last_insert_id = true;
		resp.last_insert_id = x->result.last_insert_id;
		node_req_reply(r, &resp.base);
		goto out;
	}
	/* Every cell as text, NULL as \N: what an operator reads. */
	rows = mem_calloc(nrows + 1, sizeof *rows);
	row_ptrs = mem_calloc(nrows + 1, sizeof *row_ptrs);
	cells = mem_calloc(nrows * ncols + 1, sizeof *cells);
	texts = mem_calloc(nrows * ncols + 1, 32);
	if (rows == NULL || row_ptrs == NULL || cells == NULL ||
	    texts == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		goto out;
	}
	for (i = 0; i < nrows; i++) {
		for (j = 0; j < ncols; j++) {
			const struct wire_value *v = db_rows_at(&x->rows, i, j);
			char *t = texts + (i * ncols + j) * 32;

			switch (v->type) {
			case WIRE_INTEGER:
			case WIRE_UNIXTIME:
				snprintf(t, 32, "%lld", (long long)v->integer);
				break;
			case WIRE_FLOAT:
				snprintf(t, 32, "%g", v->real);
				break;
			case WIRE_BOOLEAN:
				snprintf(t, 32, "%d", v->boolean ? 1 : 0);
				break;
			case WIRE_TEXT:
			case WIRE_ISO8601:
				t = (char *)v->text.ptr;
				break;
			case WIRE_BLOB:
				snprintf(t, 32, "<%zu bytes>", v->blob.len);
				break;
			default:
				snprintf(t, 32, "\\N");
			}
			cells[i * ncols + j] = t;
		}
		cairn__db_row__init(&rows[i]);
		rows[i].n_cells = ncols;
		rows[i].cells = &cells[i * ncols];
		row_ptrs[i] = &rows[i];
	}
	resp.n_columns = ncols;
	resp.columns = x->rows.names;
	resp.n_rows = nrows;
	resp.rows = row_ptrs;
	node_req_reply(r, &resp.base);
out:
	mem_free(rows);
	mem_free(row_ptrs);
	mem_free(cells);
	mem_free(texts);
	db_rows_free(&x->rows);
	mem_free(x);
}

void node_db_query(struct node_req *r)
{
	Cairn__DbQueryRequest *req = (void *)r->request;
	struct query_ctx *x;

	if (!req_in_cluster(r))
		return;
	if (req->sql == NULL || req->sql[0] == '\0' ||
	    strlen(req->sql) > 65536) {
		node_req_fail(
		        r, RPC_STATUS_INVALID_ARGUMENT,
		        "one SQL statement of at most 64 KiB is required");
		return;
	}
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	x->is_read = is_read_statement(req->sql);
	req_submit(r, query_op, query_done);
}

/* ------------------------------------------------- remove and leave */

struct remove_ctx {
	char name[RPC_NODE_NAME_MAX + 1];
	bool force;
	bool is_leave;
};

static int remove_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_req *r = data;
	struct remove_ctx *x = r->ctx;
	struct wire_value p[2];
	int rv;

	p[0] = wire_value_text(x->name);
	p[1] = wire_value_integer(clock_wall_ms(clock_real()) / 1000);
	rv = db_tx_exec(tx,
	                "INSERT OR IGNORE INTO revoked_certs (fingerprint, "
	                "node, revoked_at) SELECT cert_fingerprint, name, ?2 "
	                "FROM nodes WHERE name = ?1",
	                p, 2, NULL, e);
	if (rv == 0)
		rv = db_tx_exec(tx, "DELETE FROM node_leases WHERE node = ?", p,
		                1, NULL, e);
	if (rv == 0)
		rv = db_tx_exec(tx, "DELETE FROM nodes WHERE name = ?", p, 1,
		                NULL, e);
	return rv;
}

static int remove_op(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_req *r = op->data;
	struct remove_ctx *x = r->ctx;
	struct wire_value p[1];
	struct db_rows rows;
	uint64_t db_id;
	int64_t guests;
	int rv;

	p[0] = wire_value_text(x->name);
	rv = db_query(client,
	              "SELECT db_id, (SELECT count(*) FROM guests WHERE "
	              "node = ?1) FROM nodes WHERE name = ?1",
	              p, 1, &rows, e);
	if (rv != 0)
		return rv;
	if (rows.nrows != 1) {
		db_rows_free(&rows);
		return err_set(e, -ENOENT, "no node named '%s' in the cluster",
		               x->name);
	}
	db_id = (uint64_t)db_rows_at(&rows, 0, 0)->integer;
	guests = db_rows_at(&rows, 0, 1)->integer;
	db_rows_free(&rows);
	if (guests > 0 && !x->force)
		return err_set(e, -EBUSY,
		               "node %s owns %lld guest(s): move them "
		               "first, or use --force",
		               x->name, (long long)guests);
	rv = db_membership_remove(client, db_id, e);
	if (rv != 0 && rv != -ENOENT)
		return rv;
	return db_write(client, 0, remove_tx, r, e);
}

static void on_left(struct node_cluster *c, void *data)
{
	(void)c;
	remove_cluster_files(data);
}

static void remove_done(struct db_op *op, int status)
{
	struct node_req *r = op->data;
	struct remove_ctx *x = r->ctx;
	struct node *n = r->node;

	if (status != 0) {
		node_req_fail(r, node_status_from_errno(status), "%s",
		              op->err.msg);
		mem_free(x);
		return;
	}
	LOG_INFO("cluster", x->is_leave ? "left the cluster" : "node removed",
	         "node=%s", x->name);
	if (x->is_leave) {
		Cairn__ClusterLeaveResponse resp =
		        CAIRN__CLUSTER_LEAVE_RESPONSE__INIT;

		resp.name = n->cluster->name;
		node_req_reply(r, &resp.base);
		cluster_teardown(n->cluster, on_left, n);
		n->cluster = NULL;
	} else {
		Cairn__ClusterRemoveResponse resp =
		        CAIRN__CLUSTER_REMOVE_RESPONSE__INIT;

		resp.node = x->name;
		node_req_reply(r, &resp.base);
	}
	mem_free(x);
}

void node_cluster_remove(struct node_req *r)
{
	Cairn__ClusterRemoveRequest *req = (void *)r->request;
	struct remove_ctx *x;
	struct err e;

	if (!req_in_cluster(r) || !req_quorate(r))
		return;
	if (req->node == NULL || rpc_pki_node_name_check(req->node, &e) != 0) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT, "%s",
		              req->node == NULL ? "a node name is required"
		                                : e.msg);
		return;
	}
	if (strcmp(req->node, r->node->config->node_name) == 0) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "%s is this node: use `cairn cluster leave`",
		              req->node);
		return;
	}
	{
		unsigned online, voters;

		if (!node_status_quorum_without(r->node->cluster, req->node,
		                                &online, &voters)) {
			node_req_fail(
			        r, RPC_STATUS_FAILED_PRECONDITION,
			        "removing %s would break quorum: %u of the "
			        "%u remaining voters are online",
			        req->node, online, voters);
			return;
		}
	}
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	snprintf(x->name, sizeof x->name, "%s", req->node);
	x->force = req->has_force && req->force;
	req_submit(r, remove_op, remove_done);
}

void node_cluster_leave(struct node_req *r)
{
	Cairn__ClusterLeaveRequest *req = (void *)r->request;
	struct remove_ctx *x;

	if (!req_in_cluster(r) || !req_quorate(r))
		return;
	x = req_ctx_new(r, sizeof *x);
	if (x == NULL)
		return;
	snprintf(x->name, sizeof x->name, "%s", r->node->config->node_name);
	x->force = req->has_force && req->force;
	x->is_leave = true;
	req_submit(r, remove_op, remove_done);
}
