/* node/internal: what the agent's files share, private to node/. */
#ifndef CAIRN_NODE_INTERNAL_H
#define CAIRN_NODE_INTERNAL_H

#include "consensus/consensus.h"
#include "node/node.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

enum node_state { NODE_CREATED, NODE_RUNNING, NODE_STOPPING, NODE_STOPPED };

#define MEMBERS_MAX 64

struct node_status; /* node/status.c */
struct node_api;    /* node/api.c */

/* The node's part of a cluster (node/cluster.c). */
struct node_cluster {
	struct node *node;
	char name[RPC_CLUSTER_NAME_MAX + 1];
	uint64_t db_id;
	char db_address[64];
	char rpc_address[64];
	char api_address[64];
	char db_socket[108];
	char members[MEMBERS_MAX][64]; /* db addresses to dial first */
	unsigned nmembers;
	struct buf ca_pem, cert_pem, key_pem;
	char fingerprint[RPC_FINGERPRINT_MAX];
	struct rpc_tls_ctx *server_ctx; /* tunnel: node certificates only */
	struct rpc_tls_ctx *rpc_ctx;    /* RPC port: joiners have none yet */
	struct rpc_tls_ctx *client_ctx;
	struct rpc_tunnel *tunnel;
	struct db_node *dbnode;
	struct db *db;
	struct db_feed *feed;
	struct rpc_server *rpc;
	struct node_api *api; /* node/api.c: the REST API, HTTPS */
	/* Revoked certificate fingerprints, from revoked_certs; read by the
	 * TLS handshakes on the loop, replaced on the loop. */
	char (*revoked)[RPC_FINGERPRINT_MAX];
	unsigned nrevoked;
	bool is_reloading;
	struct db_op reload_op;
	struct node_status *status; /* node/status.c */
	bool is_status_stopping, is_status_stopped;
	/* teardown */
	struct pool *stopper;
	struct pool_work stop_work;
	void (*stopped_cb)(struct node_cluster *c, void *data);
	void *stopped_data;
};

struct node {
	const struct node_config *config; /* borrowed; outlives the node */
	uv_loop_t *loop;
	/* streamed uploads (node/api_upload.c): how many, and the bytes
	 * those past their checks will still write */
	unsigned nuploads;
	uint64_t upload_reserved;
	enum node_state state;
	int lock_fd; /* data-dir lock, held until destroy */
	char pid_path[4200];
	struct pool *cpu_pool;
	struct pool *storage_pool;
	struct pool *transfer_pool; /* downloads: hours, not seconds */
	uv_signal_t sigchld;        /* reaps children we spawned ourselves */
	bool has_sigchld;
	pid_t test_child; /* 0 when none or reaped */
	unsigned closing; /* handles and pools not yet closed */
	node_stop_cb stop_cb;
	struct rpc_server *local_rpc; /* the unix socket, always */
	struct node_cluster *cluster; /* NULL until created or joined */
};

/* ---------------------------------------------------------- RPC (rpc.c) */

/* One request being handled. Handlers may answer later (after DB work);
 * the call may vanish first (the client went away): then the answer is
 * dropped. Free with node_req_finish after answering. */
struct node_req {
	struct node *node;
	struct rpc_call *call;       /* NULL once the call is gone */
	const struct rpc_peer *peer; /* valid while call != NULL */
	ProtobufCMessage *request;   /* unpacked; freed by node_req_finish */
	struct db_op op;             /* for handlers that use the DB */
	void *ctx;                   /* handler's own state */
	bool is_answered;
};

/* Answers (status OK with resp, or an error status with a message) and
 * releases the request. */
void node_req_reply(struct node_req *r, const ProtobufCMessage *resp);
void node_req_fail(struct node_req *r, enum rpc_status status, const char *fmt,
                   ...) CAIRN_PRINTF(3, 4);
/* Maps a negative errno to an RPC status. */
enum rpc_status node_status_from_errno(int code);
/* Streaming handlers: takes the call over from r, which is freed (with its
 * request: copy what you need first) and must not have been answered. The
 * call gets cbs and data; from here its owner answers it with
 * rpc_call_respond (then rpc_conn_kick) and learns of its end from
 * cbs->on_done. NULL when the client went away meanwhile. */
struct rpc_call *node_req_take(struct node_req *r,
                               const struct rpc_call_cbs *cbs, void *data);

int node_rpc_start_local(struct node *n, struct err *e);
/* The TLS listener, once the node has an identity. */
int node_rpc_start_tls(struct node *n, struct rpc_tls_ctx *ctx,
                       struct rpc_server **out, struct err *e);
void node_rpc_on_call(struct rpc_session *s, struct rpc_call *call,
                      const void *payload, size_t len);

/* ------------------------------------------------------ cluster.c */

int node_cluster_load(struct node *n, struct err *e);
void node_cluster_stop(struct node *n, void (*cb)(struct node *n));
void node_cluster_create(struct node_req *r);
void node_cluster_join_token(struct node_req *r);
void node_cluster_join(struct node_req *r);
void node_cluster_nodes(struct node_req *r);
void node_db_query(struct node_req *r);
void node_member_join(struct node_req *r);
void node_member_add(struct node_req *r);

/* ------------------------------------------------------ status.c */

int node_status_start(struct node_cluster *c, struct err *e);
/* Closes timers and connections; cb when done. node_status_free after
 * the DB thread is gone. */
void node_status_stop(struct node_cluster *c,
                      void (*cb)(struct node_cluster *c));
void node_status_free(struct node_cluster *c);
void node_status_on_revision(struct node_cluster *c, uint64_t revision);
bool node_status_is_quorate(struct node_cluster *c, unsigned *online_voters,
                            unsigned *voters);
/* False until the first lease write finished (just after start or
 * join): no evidence either way yet. */
bool node_status_is_settled(const struct node_cluster *c);
/* Would the voters other than `name` still form a quorum, counting the
 * ones online now? */
bool node_status_quorum_without(struct node_cluster *c, const char *name,
                                unsigned *online_after, unsigned *voters_after);
/* Our lease write committed within the last 2 s: a majority of voters
 * acknowledged a write of ours just now. */
bool node_status_has_recent_commit(const struct node_cluster *c);
/* Room for one /cluster/status answer (about 20 KiB: allocate it). */
struct node_status_storage {
	Cairn__ClusterStatusEntry entries[MEMBERS_MAX + 1];
	Cairn__ClusterStatusEntry *ptrs[MEMBERS_MAX + 1];
	char ids[MEMBERS_MAX][80];
};
/* Fills resp with Proxmox's /cluster/status as this node sees it now, for
 * the RPC and the REST API alike. Strings point into c and st: use resp
 * before returning to the loop. -ENOTCONN when not in a cluster. */
int node_status_fill(struct node_cluster *c, Cairn__ClusterStatusResponse *resp,
                     struct node_status_storage *st);
void node_cluster_status(struct node_req *r);
void node_heartbeat(struct node_req *r);
void node_cluster_remove(struct node_req *r);
void node_cluster_leave(struct node_req *r);

/* Is `name` in the member list? */
bool node_status_has_member(struct node_cluster *c, const char *name);

struct res_node; /* node/resources.h */
/* The members as /nodes and /cluster/resources show them: up to max rows
 * with liveness and the last runtime push (pointers valid until control
 * returns to the loop). *generation moves whenever a figure changed,
 * *online_mask has bit i set when row i is online. */
size_t node_status_res_nodes(struct node_cluster *c, struct res_node *out,
                             size_t max, uint64_t *generation,
                             uint64_t *online_mask);
/* This node's CPU use over the last second (0 until measured). */
double node_status_own_cpu(const struct node_cluster *c);
/* Our storages' figures, pushed with the node's (/cluster/resources). */
struct node_storage_figures {
	char id[65];
	bool active;
	uint64_t total, used;
	uint64_t avail; /* what can still be stored (not pushed) */
};
void node_status_set_storage(struct node_cluster *c,
                             const struct node_storage_figures *f, size_t n);
/* The kept-open connection to member `name`, for forwarding: -ENOENT when
 * it is no member, -EHOSTDOWN when offline (*silent_ms since we last
 * heard it; UINT64_MAX: never), -ENOTCONN when not connected right now. */
int node_status_peer(struct node_cluster *c, const char *name,
                     struct rpc_conn **conn, uint64_t *silent_ms);

/* ------------------------------------------------------ api.c */

/* Starts the REST API on config->api_listen with the node's TLS identity
 * (c->api is set even on failure: stop it). Unauthenticated for now. */
int node_api_start(struct node_cluster *c, struct err *e);
/* Stops accepting, lets requests in flight finish (up to 2 s), then cb;
 * c->api is NULL from then on. */
void node_api_stop(struct node_cluster *c, void (*cb)(struct node_cluster *c));
/* The change feed moved: the API's view of the DB reloads. */
void node_api_on_revision(struct node_cluster *c, uint64_t revision);
/* cairn.Node/ApiForward: answers a REST request forwarded by a member. */
void node_api_forward(struct node_req *r);
/* cairn.Api/Call (local socket): a REST request as root@pam. */
void node_api_local(struct node_req *r);
/* cairn.Node/StorageCheck: does this node see a shared storage's nonce
 * file? (node/api_storage.c) */
void node_storage_check(struct node_req *r);
/* cairn.Api/Remote (TLS, anyone): a REST request with its credential. */
void node_api_remote(struct node_req *r);
/* cairn.Storage/Upload (TLS with a credential, or the local socket): a
 * file streamed into a dir storage of this node (node/api_upload.c). */
void node_storage_upload(struct node_req *r);

/* Writes a file atomically (temp + fsync + rename) with mode. */
int node__write_file(const char *path, const char *text, mode_t mode,
                     struct err *e);

#endif /* CAIRN_NODE_INTERNAL_H */
