/* The agent's RPC methods: the dispatch table, request decoding, access
 * rules (local socket, node certificate, anyone), and answers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/internal.h"

/* Who may call a method. */
enum access {
	ACCESS_LOCAL, /* the local unix socket: root on this node */
	ACCESS_NODE,  /* TLS with a node certificate of this cluster */
	ACCESS_ANY,   /* anyone who reaches the TLS port (it proves itself) */
};

typedef void (*handler_fn)(struct node_req *r);

struct method {
	const char *name;
	const ProtobufCMessageDescriptor *request;
	enum access access;
	handler_fn handler;
};

static const struct method methods[] = {
        {"cairn.Cluster/Create", &cairn__cluster_create_request__descriptor,
         ACCESS_LOCAL, node_cluster_create},
        {"cairn.Cluster/JoinToken", &cairn__join_token_request__descriptor,
         ACCESS_LOCAL, node_cluster_join_token},
        {"cairn.Cluster/Join", &cairn__cluster_join_request__descriptor,
         ACCESS_LOCAL, node_cluster_join},
        {"cairn.Cluster/Nodes", &cairn__cluster_nodes_request__descriptor,
         ACCESS_LOCAL, node_cluster_nodes},
        {"cairn.Cluster/Status", &cairn__cluster_status_request__descriptor,
         ACCESS_LOCAL, node_cluster_status},
        {"cairn.Cluster/Remove", &cairn__cluster_remove_request__descriptor,
         ACCESS_LOCAL, node_cluster_remove},
        {"cairn.Cluster/Leave", &cairn__cluster_leave_request__descriptor,
         ACCESS_LOCAL, node_cluster_leave},
        {"cairn.Node/Heartbeat", &cairn__heartbeat_request__descriptor,
         ACCESS_NODE, node_heartbeat},
        {"cairn.Db/Query", &cairn__db_query_request__descriptor, ACCESS_LOCAL,
         node_db_query},
        /* The join token is the credential: no certificate yet. */
        {"cairn.Node/Join", &cairn__node_join_request__descriptor, ACCESS_ANY,
         node_member_join},
        {"cairn.Node/AddMember", &cairn__add_member_request__descriptor,
         ACCESS_NODE, node_member_add},
        {"cairn.Api/Call", &cairn__api_forward_request__descriptor,
         ACCESS_LOCAL, node_api_local},
        /* The request carries its credential (an API token). */
        {"cairn.Api/Remote", &cairn__api_forward_request__descriptor,
         ACCESS_ANY, node_api_remote},
        /* A stream: the request carries its credential (TLS), or it is
         * root@pam (the local socket); node/api_upload.c. */
        {"cairn.Storage/Upload",
         &cairn__storage_stream_upload_request__descriptor, ACCESS_ANY,
         node_storage_upload},
        {"cairn.Node/StorageCheck", &cairn__storage_check_request__descriptor,
         ACCESS_NODE, node_storage_check},
        /* Only a node may say who the principal is. */
        {"cairn.Node/ApiForward", &cairn__api_forward_request__descriptor,
         ACCESS_NODE, node_api_forward},
};

enum rpc_status node_status_from_errno(int code)
{
	switch (code) {
	case -EINVAL:
	case -ERANGE:
	case -E2BIG:
		return RPC_STATUS_INVALID_ARGUMENT;
	case -ENOENT:
		return RPC_STATUS_NOT_FOUND;
	case -EEXIST:
		return RPC_STATUS_ALREADY_EXISTS;
	case -EPERM:
	case -EACCES:
	case -EKEYREJECTED:
	case -EKEYREVOKED:
		return RPC_STATUS_PERMISSION_DENIED;
	case -EKEYEXPIRED:
	case -EALREADY:
	case -EBUSY:
	case -EPROTONOSUPPORT:
		return RPC_STATUS_FAILED_PRECONDITION;
	case -ETIMEDOUT:
		return RPC_STATUS_DEADLINE_EXCEEDED;
	case -ENOTCONN:
	case -EHOSTDOWN:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -ESHUTDOWN:
		return RPC_STATUS_UNAVAILABLE;
	case -ECONNABORTED:
		return RPC_STATUS_ABORTED;
	default:
		return RPC_STATUS_INTERNAL;
	}
}

static void req_free(struct node_req *r)
{
	if (r->request != NULL)
		protobuf_c_message_free_unpacked(r->request, NULL);
	mem_free(r);
}

static void on_call_done(struct rpc_call *call, enum rpc_status status,
                         const char *message, const void *payload, size_t len)
{
	struct node_req *r = call->data;

	(void)status;
	(void)message;
	(void)payload;
	(void)len;
	r->call = NULL;
	r->peer = NULL;
	if (r->is_answered)
		req_free(r);
}

static const struct rpc_call_cbs call_cbs = {.on_done = on_call_done};

static void answer(struct node_req *r, enum rpc_status status,
                   const char *message, const ProtobufCMessage *resp)
{
	uint8_t *payload = NULL;
	size_t len = 0;
	struct err e;

	CAIRN_ASSERT(!r->is_answered);
	r->is_answered = true;
	if (r->call == NULL) {
		req_free(r); /* the caller went away */
		return;
	}
	if (resp != NULL) {
		len = protobuf_c_message_get_packed_size(resp);
		payload = mem_alloc(len + 1);
		if (payload == NULL) {
			status = RPC_STATUS_INTERNAL;
			message = "out of memory";
			len = 0;
		} else {
			protobuf_c_message_pack(resp, payload);
		}
	}
	if (rpc_call_respond(r->call, status, message, payload, len, &e) != 0)
		LOG_WARN("rpc", "cannot answer", "method=%s error=\"%s\"",
		         rpc_call_method(r->call), e.msg);
	rpc_conn_kick(rpc_session_conn(rpc_call_session(r->call)));
	mem_free(payload);
	/* A change of ours may have moved the revision: learn it now, so the
	 * members hear of it at once (node/status.c pushes it). */
	if (status == RPC_STATUS_OK && r->node->cluster != NULL &&
	    r->node->cluster->feed != NULL)
		db_feed_poll_soon(r->node->cluster->feed);
	/* on_done follows and frees r. */
}

void node_req_reply(struct node_req *r, const ProtobufCMessage *resp)
{
	answer(r, RPC_STATUS_OK, NULL, resp);
}

void node_req_fail(struct node_req *r, enum rpc_status status, const char *fmt,
                   ...)
{
	char message[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	if (r->call != NULL)
		LOG_INFO("rpc", "call failed",
		         "method=%s status=%s error=\"%s\"",
		         rpc_call_method(r->call), rpc_status_name(status),
		         message);
	answer(r, status, message, NULL);
}

struct rpc_call *node_req_take(struct node_req *r,
                               const struct rpc_call_cbs *cbs, void *data)
{
	struct rpc_call *call = r->call;

	CAIRN_ASSERT(!r->is_answered);
	if (call != NULL) {
		call->data = data;
		rpc_call_set_cbs(call, cbs);
	}
	req_free(r);
	return call;
}

static void refuse(struct rpc_call *call, enum rpc_status status,
                   const char *message)
{
	struct err e;

	rpc_call_respond(call, status, message, NULL, 0, &e);
}

void node_rpc_on_call(struct rpc_session *s, struct rpc_call *call,
                      const void *payload, size_t len)
{
	struct rpc_conn *conn = rpc_session_conn(s);
	const struct rpc_peer *peer = rpc_conn_peer(conn);
	struct node *n = rpc_conn_server_data(conn);
	const struct method *m = NULL;
	struct node_req *r;
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(methods); i++) {
		if (strcmp(methods[i].name, rpc_call_method(call)) == 0)
			m = &methods[i];
	}
	if (m == NULL) {
		refuse(call, RPC_STATUS_UNIMPLEMENTED, "no such method");
		return;
	}
	if (m->access == ACCESS_LOCAL && !peer->is_local) {
		refuse(call, RPC_STATUS_PERMISSION_DENIED,
		       "this method is only for root on the node itself");
		return;
	}
	if (m->access == ACCESS_NODE && peer->fingerprint[0] == '\0') {
		refuse(call, RPC_STATUS_UNAUTHENTICATED,
		       "this method needs a node certificate of the cluster");
		return;
	}
	r = mem_calloc(1, sizeof *r);
	if (r == NULL) {
		refuse(call, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r->request = protobuf_c_message_unpack(m->request, NULL, len, payload);
	if (r->request == NULL) {
		mem_free(r);
		refuse(call, RPC_STATUS_INVALID_ARGUMENT, "malformed request");
		return;
	}
	r->node = n;
	r->call = call;
	r->peer = peer;
	call->data = r;
	rpc_call_set_cbs(call, &call_cbs);
	m->handler(r);
}

int node_rpc_start_local(struct node *n, struct err *e)
{
	char path[4200];
	struct rpc_server_config c = {
	        .loop = n->loop,
	        .unix_path = path,
	        .on_call = node_rpc_on_call,
	        .data = n,
	};

	snprintf(path, sizeof path, "%s/cairnd.sock", n->config->run_dir);
	return rpc_server_start(&c, &n->local_rpc, e);
}

int node_rpc_start_tls(struct node *n, struct rpc_tls_ctx *ctx,
                       struct rpc_server **out, struct err *e)
{
	struct rpc_server_config c = {
	        .loop = n->loop,
	        .tls = ctx,
	        .tcp_listen = n->config->rpc_listen,
	        .on_call = node_rpc_on_call,
	        .data = n,
	};

	return rpc_server_start(&c, out, e);
}
