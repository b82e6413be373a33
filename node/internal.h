/* node/internal: what the agent's files share, private to node/. */
#ifndef CAIRN_NODE_INTERNAL_H
#define CAIRN_NODE_INTERNAL_H

#include "consensus/consensus.h"
#include "node/node.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

enum node_state { NODE_CREATED, NODE_RUNNING, NODE_STOPPING, NODE_STOPPED };

struct node_cluster; /* node/cluster.c */

struct node {
	const struct node_config *config; /* borrowed; outlives the node */
	uv_loop_t *loop;
	enum node_state state;
	int lock_fd; /* data-dir lock, held until destroy */
	char pid_path[4200];
	struct pool *cpu_pool;
	struct pool *storage_pool;
	uv_signal_t sigchld; /* reaps children we spawned ourselves */
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

#endif /* CAIRN_NODE_INTERNAL_H */
