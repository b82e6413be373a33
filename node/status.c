/* Liveness and status: heartbeats between members, the node lease that
 * proves a quorum, the local copy of the member list, and the answers of
 * `cairn cluster status` (Proxmox's /cluster/status).
 *
 * A member is online when it answered our heartbeat (or sent us one)
 * within ONLINE_MS. The cluster is quorate, as seen from this node, when a
 * majority of the voters is online AND this node's lease write committed
 * within ONLINE_MS: the first alone would call a node quorate that is cut
 * off from the leader but hears one peer. Everything here runs on the
 * loop except the DB operations, and works without a leader from the
 * member copy saved in DATA_DIR/members.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/hoststat.h"
#include "node/internal.h"
#include "node/resources.h"

#define HEARTBEAT_MS       500
#define ONLINE_MS          2000
#define LEASE_MS           1000
#define CONNECT_TIMEOUT_MS 1500
#define RUNTIME_MS         1000 /* the live status channel's period */
#define RUNTIME_PACKED_MAX (256 * 1024)

struct member {
	uint32_t id; /* nodes.id: small, Proxmox's nodeid */
	char name[64];
	uint64_t db_id;
	char rpc_address[64];
	char ip[48];
	char role[16];
	/* liveness, ours */
	uint64_t last_seen_ms; /* monotonic; 0: never */
	int64_t skew_ms;
	struct rpc_conn *conn;
	bool is_conn_ready;
	bool is_in_flight;
	struct rpc_call call;
	int64_t sent_wall_ms;
	struct node_status *status;
	bool is_gone; /* left the member list; freed once its conn closed */
	/* the live status channel */
	Cairn__NodeRuntime *runtime; /* its last push; owned; NULL: none */
	uint64_t runtime_sent_ms;    /* ours to it, monotonic */
};

struct node_status {
	struct node_cluster *cluster;
	struct member *members[MEMBERS_MAX]; /* owned */
	unsigned n;
	unsigned gone; /* members left but still closing their conn */
	uv_timer_t heartbeat_timer;
	uv_timer_t lease_timer;
	unsigned open_handles;
	uint64_t lease_committed_ms; /* monotonic issue time of the last
	                              * committed lease write; 0: never */
	uint64_t leader_db_id;
	uint64_t revision;
	bool is_stopping;
	/* DB operations, one of each at a time */
	struct db_op lease_op;
	bool is_lease_running;
	bool has_lease_result; /* a lease write finished, either way */
	uint64_t lease_started_ms;
	uint64_t lease_leader;
	struct db_member lease_roles[MEMBERS_MAX];
	unsigned lease_nroles;
	struct db_op members_op;
	bool is_members_running;
	bool members_again;
	struct db_rows members_rows;
	void (*stopped_cb)(struct node_cluster *c);
	/* our own runtime figures, sampled every RUNTIME_MS */
	Cairn__NodeRuntime own;
	struct host_stat last_sample;
	bool has_sample;
	uint64_t sampled_ms;
	uint64_t generation; /* bumped whenever any runtime figure changed */
	/* our storages' figures (node_status_set_storage) */
	Cairn__StorageRuntime storage[64];
	Cairn__StorageRuntime *storage_ptrs[64];
	char storage_ids[64][65];
	size_t nstorage;
};

static uint64_t now_ms(void)
{
	return clock_mono_ms(clock_real());
}

static int64_t wall_ms(void)
{
	return clock_wall_ms(clock_real());
}

static const char *self_name(const struct node_status *s)
{
	return s->cluster->node->config->node_name;
}

static bool is_self(const struct node_status *s, const struct member *m)
{
	return strcmp(m->name, self_name(s)) == 0;
}

static bool is_online(const struct node_status *s, const struct member *m)
{
	if (is_self(s, m))
		return true;
	return m->last_seen_ms != 0 && now_ms() - m->last_seen_ms < ONLINE_MS;
}

static void member_free(struct member *m)
{
	if (m->runtime != NULL)
		cairn__node_runtime__free_unpacked(m->runtime, NULL);
	mem_free(m);
}

static struct member *find_member(struct node_status *s, const char *name)
{
	unsigned i;

	/* Slots are NULL for a moment while members_op_done rebuilds. */
	for (i = 0; i < s->n; i++) {
		if (s->members[i] != NULL &&
		    strcmp(s->members[i]->name, name) == 0)
			return s->members[i];
	}
	return NULL;
}

bool node_status_quorum_without(struct node_cluster *c, const char *name,
                                unsigned *online_after, unsigned *voters_after)
{
	struct node_status *s = c->status;
	unsigned i, on = 0, all = 0;

	for (i = 0; s != NULL && i < s->n; i++) {
		const struct member *m = s->members[i];

		if (strcmp(m->role, "voter") != 0 || strcmp(m->name, name) == 0)
			continue;
		all++;
		on += is_online(s, m);
	}
	*online_after = on;
	*voters_after = all;
	return all > 0 && on * 2 > all;
}

bool node_status_has_member(struct node_cluster *c, const char *name)
{
	return c != NULL && c->status != NULL &&
	       find_member(c->status, name) != NULL;
}

bool node_status_is_settled(const struct node_cluster *c)
{
	return c->status != NULL && c->status->has_lease_result;
}

bool node_status_has_recent_commit(const struct node_cluster *c)
{
	const struct node_status *s = c->status;

	return s != NULL && s->lease_committed_ms != 0 &&
	       now_ms() - s->lease_committed_ms < ONLINE_MS;
}

bool node_status_is_quorate(struct node_cluster *c, unsigned *online_voters,
                            unsigned *voters)
{
	struct node_status *s = c->status;
	unsigned i, on = 0, all = 0;
	bool has_lease;

	for (i = 0; s != NULL && i < s->n; i++) {
		if (strcmp(s->members[i]->role, "voter") != 0)
			continue;
		all++;
		on += is_online(s, s->members[i]);
	}
	if (online_voters != NULL)
		*online_voters = on;
	if (voters != NULL)
		*voters = all;
	has_lease = s != NULL && s->lease_committed_ms != 0 &&
	            now_ms() - s->lease_committed_ms < ONLINE_MS;
	return all > 0 && on * 2 > all && has_lease;
}

/* ------------------------------------------------ the member copy */

static void save_members(struct node_status *s)
{
	char path[4200];
	json_t *list = json_array();
	struct err e;
	unsigned i;
	char *text;

	for (i = 0; i < s->n; i++) {
		const struct member *m = s->members[i];
		char db_id[24];

		snprintf(db_id, sizeof db_id, "%llu",
		         (unsigned long long)m->db_id);
		json_array_append_new(
		        list, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id",
		                        (int)m->id, "name", m->name, "db_id",
		                        db_id, "rpc_address", m->rpc_address,
		                        "ip", m->ip, "role", m->role));
	}
	text = json_dumps(list, JSON_INDENT(1));
	json_decref(list);
	if (text == NULL)
		return;
	snprintf(path, sizeof path, "%s/members.json",
	         s->cluster->node->config->data_dir);
	if (node__write_file(path, text, 0600, &e) != 0)
		LOG_WARN("status", "member list not saved", "error=\"%s\"",
		         e.msg);
	free(text);
}

static void load_members(struct node_status *s)
{
	char path[4200];
	struct buf text;
	json_t *list = NULL, *item;
	struct err e;
	size_t i;

	snprintf(path, sizeof path, "%s/members.json",
	         s->cluster->node->config->data_dir);
	if (access(path, F_OK) != 0)
		return;
	buf_init(&text, (size_t)1 << 20);
	if (file_read_all(path, (size_t)1 << 20, &text, &e) != 0 ||
	    json_parse_bounded(text.data, text.len, (size_t)1 << 20, 4, &list,
	                       &e) != 0) {
		LOG_WARN("status", "member list unreadable", "error=\"%s\"",
		         e.msg);
		buf_free(&text);
		return;
	}
	buf_free(&text);
	json_array_foreach(list, i, item)
	{
		struct member *m;
		const char *str;
		int64_t id;

		if (s->n == MEMBERS_MAX)
			break;
		if (json_get_int(item, "id", 0, UINT32_MAX, &id, &e) != 0)
			continue;
		m = mem_calloc(1, sizeof *m);
		if (m == NULL)
			break;
		m->status = s;
		s->members[s->n] = m;
		m->id = (uint32_t)id;
		if (json_get_str(item, "name", &str, &e) == 0)
			snprintf(m->name, sizeof m->name, "%s", str);
		if (json_get_str(item, "db_id", &str, &e) == 0)
			m->db_id = strtoull(str, NULL, 10);
		if (json_get_str(item, "rpc_address", &str, &e) == 0)
			snprintf(m->rpc_address, sizeof m->rpc_address, "%s",
			         str);
		if (json_get_str(item, "ip", &str, &e) == 0)
			snprintf(m->ip, sizeof m->ip, "%s", str);
		if (json_get_str(item, "role", &str, &e) == 0)
			snprintf(m->role, sizeof m->role, "%s", str);
		s->n++;
	}
	json_decref(list);
}

static void maybe_stopped(struct node_status *s);

/* A member that left: close its connection; it is freed once closed. */
static void retire(struct node_status *s, struct member *m)
{
	m->is_gone = true;
	if (m->conn == NULL && !m->is_in_flight) {
		member_free(m);
		return;
	}
	s->gone++;
	if (m->conn != NULL)
		rpc_conn_close(m->conn);
}

static int members_op_run(struct db_client *client, struct db_op *op,
                          struct err *e)
{
	struct node_status *s = op->data;

	return db_query(client,
	                "SELECT id, name, db_id, rpc_address, "
	                "db_address, role FROM nodes WHERE state = "
	                "'member' ORDER BY id",
	                NULL, 0, &s->members_rows, e);
}

static void refresh_members(struct node_status *s);

static void members_op_done(struct db_op *op, int status)
{
	struct node_status *s = op->data;
	struct member *fresh[MEMBERS_MAX];
	unsigned i, n = 0;
	uint64_t r;

	s->is_members_running = false;
	if (status != 0 || s->is_stopping) {
		db_rows_free(&s->members_rows);
		return;
	}
	for (r = 0; r < s->members_rows.nrows && n < MEMBERS_MAX; r++) {
		const struct db_rows *rows = &s->members_rows;
		const char *name = db_rows_at(rows, r, 1)->text.ptr;
		const char *rpc = db_rows_at(rows, r, 3)->text.ptr;
		const char *db_address = db_rows_at(rows, r, 4)->text.ptr;
		const char *colon = strrchr(db_address, ':');
		struct member *m = find_member(s, name);

		/* Keep what we learned of members we knew, unless they
		 * moved to another address. */
		if (m != NULL && strcmp(m->rpc_address, rpc) != 0)
			m = NULL;
		if (m != NULL) {
			for (i = 0; i < s->n; i++) {
				if (s->members[i] == m)
					s->members[i] = NULL;
			}
		} else {
			m = mem_calloc(1, sizeof *m);
			if (m == NULL)
				break;
			m->status = s;
		}
		m->id = (uint32_t)db_rows_at(rows, r, 0)->integer;
		snprintf(m->name, sizeof m->name, "%s", name);
		m->db_id = (uint64_t)db_rows_at(rows, r, 2)->integer;
		snprintf(m->rpc_address, sizeof m->rpc_address, "%s", rpc);
		snprintf(m->ip, sizeof m->ip, "%.*s",
		         colon != NULL ? (int)(colon - db_address) : 0,
		         db_address);
		snprintf(m->role, sizeof m->role, "%s",
		         db_rows_at(rows, r, 5)->text.ptr);
		fresh[n++] = m;
	}
	db_rows_free(&s->members_rows);
	for (i = 0; i < s->n; i++) {
		if (s->members[i] != NULL)
			retire(s, s->members[i]);
	}
	memcpy(s->members, fresh, sizeof fresh[0] * n);
	s->n = n;
	save_members(s);
	if (s->members_again) {
		s->members_again = false;
		refresh_members(s);
	}
}

static void refresh_members(struct node_status *s)
{
	struct node_cluster *c = s->cluster;

	if (s->is_members_running || s->is_stopping || c->db == NULL) {
		s->members_again = s->is_members_running;
		return;
	}
	s->members_op.data = s;
	if (db_submit(c->db, &s->members_op, members_op_run, members_op_done) ==
	    0)
		s->is_members_running = true;
}

static void on_heartbeat_timer(uv_timer_t *t);

void node_status_on_revision(struct node_cluster *c, uint64_t revision)
{
	struct node_status *s = c->status;

	if (s == NULL)
		return;
	s->revision = revision;
	refresh_members(s);
	/* The push of the change feed: tell the members now rather than
	 * at the next beat (a member busy with a beat hears it then). */
	on_heartbeat_timer(&s->heartbeat_timer);
}

/* ------------------------------------------------------- heartbeats */

static void on_heartbeat_done(struct rpc_call *call, enum rpc_status status,
                              const char *message, const void *payload,
                              size_t len)
{
	struct member *m = CAIRN_CONTAINER_OF(call, struct member, call);
	struct node_status *s = m->status;
	Cairn__HeartbeatResponse *resp;
	int64_t back = wall_ms();

	(void)message;
	m->is_in_flight = false;
	if (m->is_gone) {
		if (m->conn == NULL) {
			s->gone--;
			member_free(m);
			maybe_stopped(s);
		}
		return;
	}
	if (status != RPC_STATUS_OK)
		return;
	resp = cairn__heartbeat_response__unpack(NULL, len, payload);
	if (resp == NULL)
		return;
	m->last_seen_ms = now_ms();
	if (resp->has_wall_ms)
		/* Its clock at the middle of the round trip, minus ours. */
		m->skew_ms = resp->wall_ms - (m->sent_wall_ms + back) / 2;
	if (resp->has_revision && resp->revision > s->revision &&
	    s->cluster->feed != NULL)
		db_feed_notify(s->cluster->feed, resp->revision);
	cairn__heartbeat_response__free_unpacked(resp, NULL);
}

static const struct rpc_call_cbs heartbeat_cbs = {.on_done = on_heartbeat_done};

static void send_heartbeat(struct member *m)
{
	struct node_status *s = m->status;
	Cairn__HeartbeatRequest req = CAIRN__HEARTBEAT_REQUEST__INIT;
	uint64_t now = now_ms();
	uint8_t *packed;
	size_t len;
	struct err e;

	req.node = (char *)self_name(s);
	req.has_wall_ms = true;
	m->sent_wall_ms = wall_ms();
	req.wall_ms = m->sent_wall_ms;
	req.has_revision = true;
	req.revision = s->revision;
	/* The live status channel rides every other beat. */
	if (s->has_sample && now - m->runtime_sent_ms >= RUNTIME_MS - 100)
		req.runtime = &s->own;
	len = protobuf_c_message_get_packed_size(&req.base);
	if (len > RUNTIME_PACKED_MAX) {
		req.runtime = NULL;
		len = protobuf_c_message_get_packed_size(&req.base);
	}
	packed = mem_alloc(len);
	if (packed == NULL)
		return;
	len = protobuf_c_message_pack(&req.base, packed);
	if (rpc_call_start(&m->call, rpc_conn_session(m->conn), &heartbeat_cbs,
	                   RPC_CALL_UNARY, "cairn.Node/Heartbeat", packed, len,
	                   ONLINE_MS, &e) == 0) {
		m->is_in_flight = true;
		if (req.runtime != NULL)
			m->runtime_sent_ms = now;
		rpc_conn_kick(m->conn);
	}
	mem_free(packed);
}

static void on_peer_ready(struct rpc_conn *c, int status, void *data)
{
	struct member *m = data;

	(void)c;
	(void)status;
	m->is_conn_ready = true;
	send_heartbeat(m);
}

static void on_peer_closed(struct rpc_conn *c, int status, void *data)
{
	struct member *m = data;
	struct node_status *s = m->status;

	(void)c;
	(void)status;
	m->conn = NULL;
	m->is_conn_ready = false;
	if (m->is_gone && !m->is_in_flight) {
		s->gone--;
		member_free(m);
	}
	if (s->is_stopping)
		maybe_stopped(s);
}

/* Our node's figures for the live status channel: small /proc reads and
 * one statvfs, on the loop once a second. */
static void sample_runtime(struct node_status *s)
{
	struct host_stat h;
	struct err e;

	s->sampled_ms = now_ms();
	if (host_stat_read(&h, &e) != 0) {
		LOG_WARN("status", "cannot read the host's figures",
		         "error=\"%s\"", e.msg);
		return;
	}
	cairn__node_runtime__init(&s->own);
	s->own.n_storage = s->nstorage;
	s->own.storage = s->nstorage > 0 ? s->storage_ptrs : NULL;
	s->own.has_cpu = true;
	s->own.cpu = s->has_sample ? host_cpu_fraction(&s->last_sample, &h) : 0;
	s->own.has_maxcpu = true;
	s->own.maxcpu = h.cpus;
	s->own.has_mem = true;
	s->own.mem = h.mem_used;
	s->own.has_maxmem = true;
	s->own.maxmem = h.mem_total;
	s->own.has_disk = true;
	s->own.disk = h.root_used;
	s->own.has_maxdisk = true;
	s->own.maxdisk = h.root_total;
	s->own.has_uptime = true;
	s->own.uptime = (uint64_t)h.uptime_s;
	s->last_sample = h;
	s->has_sample = true;
	s->generation++;
}

static void on_heartbeat_timer(uv_timer_t *t)
{
	struct node_status *s = t->data;
	struct node_cluster *c = s->cluster;
	struct err e;
	unsigned i;

	if (s->is_stopping)
		return;
	if (now_ms() - s->sampled_ms >= RUNTIME_MS - 100)
		sample_runtime(s);
	for (i = 0; i < s->n; i++) {
		struct member *m = s->members[i];

		if (is_self(s, m) || m->rpc_address[0] == '\0')
			continue;
		if (m->conn == NULL) {
			if (rpc_conn_connect_tls(c->node->loop, c->client_ctx,
			                         m->rpc_address,
			                         CONNECT_TIMEOUT_MS,
			                         on_peer_ready, on_peer_closed,
			                         m, &m->conn, &e) != 0)
				m->conn = NULL;
			continue;
		}
		if (m->is_conn_ready && !m->is_in_flight)
			send_heartbeat(m);
	}
}

/* cairn.Node/Heartbeat: a member tells us it is alive. */
void node_heartbeat(struct node_req *r)
{
	Cairn__HeartbeatRequest *req = (void *)r->request;
	Cairn__HeartbeatResponse resp = CAIRN__HEARTBEAT_RESPONSE__INIT;
	struct node_cluster *c = r->node->cluster;
	struct member *m;

	if (c == NULL || c->status == NULL) {
		node_req_fail(r, RPC_STATUS_UNAVAILABLE, "not in a cluster");
		return;
	}
	/* The certificate names the sender; the request cannot lie. */
	m = find_member(c->status, r->peer->name);
	if (m != NULL)
		m->last_seen_ms = now_ms();
	if (m != NULL && req->runtime != NULL) {
		if (m->runtime != NULL)
			cairn__node_runtime__free_unpacked(m->runtime, NULL);
		m->runtime = req->runtime; /* taken from the request */
		req->runtime = NULL;
		c->status->generation++;
	}
	if (req->has_revision && req->revision > c->status->revision &&
	    c->feed != NULL)
		db_feed_notify(c->feed, req->revision);
	resp.node = (char *)r->node->config->node_name;
	resp.has_wall_ms = true;
	resp.wall_ms = wall_ms();
	resp.has_revision = true;
	resp.revision = c->status->revision;
	node_req_reply(r, &resp.base);
}

/* ------------------------------------------------------------ lease */

/* On the DB thread: renew our lease (no revision bump: it changes every
 * second and nobody caches on it), then learn the leader and the roles. */
static int lease_renew_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct node_status *s = data;
	struct wire_value p[2];

	p[0] = wire_value_text(self_name(s));
	p[1] = wire_value_integer(wall_ms());
	return db_tx_exec(tx,
	                  "INSERT INTO node_leases (node, counter, "
	                  "renewed_at_ms) VALUES (?, 1, ?) ON CONFLICT "
	                  "(node) DO UPDATE SET counter = counter + 1, "
	                  "renewed_at_ms = excluded.renewed_at_ms",
	                  p, 2, NULL, e);
}

static int lease_op_run(struct db_client *client, struct db_op *op,
                        struct err *e)
{
	struct node_status *s = op->data;
	char address[128];
	int rv;

	rv = db_transaction(client, DB_TX_IDEMPOTENT, lease_renew_tx, s, e);
	if (rv != 0)
		return rv;
	if (db_leader(client, &s->lease_leader, address, sizeof address, e) !=
	    0)
		s->lease_leader = 0;
	if (db_cluster(client, s->lease_roles, MEMBERS_MAX, &s->lease_nroles,
	               e) != 0)
		s->lease_nroles = 0;
	return 0;
}

static void lease_op_done(struct db_op *op, int status)
{
	struct node_status *s = op->data;
	unsigned i, j;

	s->is_lease_running = false;
	if (s->is_stopping)
		return;
	s->has_lease_result = true;
	if (status != 0) {
		if (status != -ECANCELED)
			LOG_DEBUG("status", "lease not renewed", "error=\"%s\"",
			          op->err.msg);
		return;
	}
	s->lease_committed_ms = s->lease_started_ms;
	s->leader_db_id = s->lease_leader;
	for (i = 0; i < s->lease_nroles; i++) {
		for (j = 0; j < s->n; j++) {
			if (s->members[j]->db_id == s->lease_roles[i].id)
				snprintf(s->members[j]->role,
				         sizeof s->members[j]->role, "%s",
				         s->lease_roles[i].role ==
				                         WIRE_ROLE_VOTER
				                 ? "voter"
				         : s->lease_roles[i].role ==
				                         WIRE_ROLE_STANDBY
				                 ? "standby"
				                 : "spare");
		}
	}
}

static void on_lease_timer(uv_timer_t *t)
{
	struct node_status *s = t->data;

	if (s->is_lease_running || s->is_stopping || s->cluster->db == NULL)
		return;
	s->lease_op.data = s;
	s->lease_started_ms = now_ms();
	if (db_submit(s->cluster->db, &s->lease_op, lease_op_run,
	              lease_op_done) == 0)
		s->is_lease_running = true;
}

/* -------------------------------------------------------- lifecycle */

int node_status_start(struct node_cluster *c, struct err *e)
{
	struct node_status *s = mem_calloc(1, sizeof *s);

	if (s == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	s->cluster = c;
	c->status = s;
	load_members(s);
	uv_timer_init(c->node->loop, &s->heartbeat_timer);
	uv_timer_init(c->node->loop, &s->lease_timer);
	s->heartbeat_timer.data = s;
	s->lease_timer.data = s;
	s->open_handles = 2;
	uv_timer_start(&s->heartbeat_timer, on_heartbeat_timer, 0,
	               HEARTBEAT_MS);
	uv_timer_start(&s->lease_timer, on_lease_timer, 0, LEASE_MS);
	refresh_members(s);
	return 0;
}

/* The stop is over when timers and connections are closed; the struct
 * itself stays until node_status_free, after the DB thread is gone (its
 * operations' callbacks still point here). */
static void maybe_stopped(struct node_status *s)
{
	unsigned i;
	void (*cb)(struct node_cluster * c) = s->stopped_cb;

	if (!s->is_stopping || cb == NULL || s->open_handles > 0 || s->gone > 0)
		return;
	for (i = 0; i < s->n; i++) {
		if (s->members[i]->conn != NULL || s->members[i]->is_in_flight)
			return;
	}
	s->stopped_cb = NULL;
	cb(s->cluster);
}

void node_status_free(struct node_cluster *c)
{
	struct node_status *s = c->status;
	unsigned i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		member_free(s->members[i]);
	c->status = NULL;
	mem_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct node_status *s = h->data;

	s->open_handles--;
	maybe_stopped(s);
}

/* Stops timers and connections; cb runs once nothing is pending (DB
 * operations in flight finish, or db_close cancels them). */
void node_status_stop(struct node_cluster *c,
                      void (*cb)(struct node_cluster *c))
{
	struct node_status *s = c->status;
	unsigned i;

	s->is_stopping = true;
	s->stopped_cb = cb;
	uv_close((uv_handle_t *)&s->heartbeat_timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->lease_timer, on_timer_closed);
	for (i = 0; i < s->n; i++) {
		if (s->members[i]->conn != NULL)
			rpc_conn_close(s->members[i]->conn);
	}
}

/* ----------------------------------------------------------- status */

int node_status_fill(struct node_cluster *c, Cairn__ClusterStatusResponse *resp,
                     struct node_status_storage *st)
{
	struct node_status *s;
	Cairn__ClusterStatusEntry *entries = st->entries;
	unsigned i;

	cairn__cluster_status_response__init(resp);
	if (c == NULL || c->status == NULL)
		return -ENOTCONN;
	s = c->status;
	cairn__cluster_status_entry__init(&entries[0]);
	entries[0].type = "cluster";
	entries[0].id = "cluster";
	entries[0].name = c->name;
	entries[0].has_nodes = true;
	entries[0].nodes = s->n;
	entries[0].has_quorate = true;
	entries[0].quorate = node_status_is_quorate(c, NULL, NULL);
	entries[0].has_version = true;
	entries[0].version = s->revision;
	st->ptrs[0] = &entries[0];
	for (i = 0; i < s->n; i++) {
		struct member *m = s->members[i];
		Cairn__ClusterStatusEntry *x = &entries[i + 1];

		cairn__cluster_status_entry__init(x);
		snprintf(st->ids[i], sizeof st->ids[i], "node/%s", m->name);
		x->type = "node";
		x->id = st->ids[i];
		x->name = m->name;
		x->has_nodeid = true;
		x->nodeid = m->id;
		x->ip = m->ip;
		x->has_online = true;
		x->online = is_online(s, m);
		x->has_local = true;
		x->local = is_self(s, m);
		x->level = "";
		x->role = m->role;
		x->has_leader = true;
		x->leader = s->leader_db_id != 0 && m->db_id == s->leader_db_id;
		if (!is_self(s, m) && m->last_seen_ms != 0) {
			x->has_skew_ms = true;
			x->skew_ms = m->skew_ms;
		}
		st->ptrs[i + 1] = x;
	}
	resp->n_entries = s->n + 1;
	resp->entries = st->ptrs;
	return 0;
}

void node_cluster_status(struct node_req *r)
{
	Cairn__ClusterStatusResponse resp;
	struct node_status_storage *st = mem_alloc(sizeof *st);

	if (st == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	if (node_status_fill(r->node->cluster, &resp, st) != 0) {
		mem_free(st);
		node_req_fail(r, RPC_STATUS_FAILED_PRECONDITION,
		              "this node is not in a cluster");
		return;
	}
	node_req_reply(r, &resp.base);
	mem_free(st);
}

/* ------------------------------------------------ for the REST API */

size_t node_status_res_nodes(struct node_cluster *c, struct res_node *out,
                             size_t max, uint64_t *generation,
                             uint64_t *online_mask)
{
	struct node_status *s = c != NULL ? c->status : NULL;
	size_t i, n = 0;

	*generation = 0;
	*online_mask = 0;
	if (s == NULL)
		return 0;
	*generation = s->generation;
	for (i = 0; i < s->n && n < max; i++) {
		const struct member *m = s->members[i];
		struct res_node *r = &out[n];

		if (m == NULL)
			continue;
		memset(r, 0, sizeof *r);
		snprintf(r->name, sizeof r->name, "%s", m->name);
		r->nodeid = m->id;
		r->is_online = is_online(s, m);
		if (is_self(s, m))
			r->runtime = s->has_sample ? &s->own : NULL;
		else
			r->runtime = m->runtime;
		if (r->is_online && n < 64)
			*online_mask |= UINT64_C(1) << n;
		n++;
	}
	return n;
}

int node_status_peer(struct node_cluster *c, const char *name,
                     struct rpc_conn **conn, uint64_t *silent_ms)
{
	struct node_status *s = c != NULL ? c->status : NULL;
	struct member *m = s != NULL ? find_member(s, name) : NULL;

	*conn = NULL;
	*silent_ms = 0;
	if (m == NULL)
		return -ENOENT;
	if (!is_online(s, m)) {
		*silent_ms = m->last_seen_ms != 0 ? now_ms() - m->last_seen_ms
		                                  : UINT64_MAX;
		return -EHOSTDOWN;
	}
	if (m->conn == NULL || !m->is_conn_ready)
		return -ENOTCONN;
	*conn = m->conn;
	return 0;
}

void node_status_set_storage(struct node_cluster *c,
                             const struct node_storage_figures *f, size_t n)
{
	struct node_status *s = c != NULL ? c->status : NULL;
	size_t i;

	if (s == NULL)
		return;
	if (n > CAIRN_ARRAY_SIZE(s->storage))
		n = CAIRN_ARRAY_SIZE(s->storage);
	for (i = 0; i < n; i++) {
		Cairn__StorageRuntime *r = &s->storage[i];

		cairn__storage_runtime__init(r);
		snprintf(s->storage_ids[i], sizeof s->storage_ids[i], "%s",
		         f[i].id);
		r->storage = s->storage_ids[i];
		r->has_active = true;
		r->active = f[i].active;
		if (f[i].active) {
			r->has_total = r->has_used = true;
			r->total = f[i].total;
			r->used = f[i].used;
		}
		s->storage_ptrs[i] = r;
	}
	s->nstorage = n;
	s->own.n_storage = n;
	s->own.storage = n > 0 ? s->storage_ptrs : NULL;
	s->generation++;
}

double node_status_own_cpu(const struct node_cluster *c)
{
	const struct node_status *s = c != NULL ? c->status : NULL;

	return s != NULL && s->has_sample ? s->own.cpu : 0;
}
