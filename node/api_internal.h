/* node/api_internal: what the REST API's files share (node/api.c: server,
 * calls, forwarding and the DB view; node/api_access.c: users, tickets,
 * tokens, privileges), private to node/. */
#ifndef CAIRN_NODE_API_INTERNAL_H
#define CAIRN_NODE_API_INTERNAL_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "node/acl.h"
#include "node/api_error.h"
#include "node/api_route.h"
#include "node/auth.h"
#include "node/hoststat.h"
#include "node/internal.h"
#include "node/resources.h"

#define API_BODY_MAX       (1u << 20)
#define API_REQ_TIMEOUT_MS 10000 /* reading a request, idle keep-alive */
#define API_CONNS_MAX      1024
#define API_DRAIN_MS       2000  /* graceful stop: connections may finish */
#define API_DEADLINE_MS    10000 /* every call answers within this */
#define API_DENY_DELAY_MS  1000  /* before a 401 */
#define API_DENY_HELD      64

/* Users, tokens and ACLs as the view holds them (node/api_access.c). */
struct api_user {
	char userid[AUTH_USERID_MAX + 1];
	bool enable;
	int64_t expire;                               /* unix s; 0: never */
	char *password_hash;                          /* NULL: none */
	char *firstname, *lastname, *email, *comment; /* NULL: unset */
	char groups[256];                             /* comma-separated */
};
struct api_token {
	char userid[AUTH_USERID_MAX + 1];
	char tokenid[AUTH_TOKENID_MAX + 1];
	char digest[65]; /* SHA-256 hex of the secret */
	bool privsep;
	int64_t expire;
	char *comment;
};
struct view_auth {
	struct api_user *users;
	size_t nusers;
	struct api_token *tokens;
	size_t ntokens;
	struct acl_entry *acl;
	size_t nacl;
	struct acl_role *roles; /* custom roles */
	size_t nroles;
	struct acl_group_member *members;
	size_t nmembers;
	struct auth_keys keys;
	bool has_keys;
	int64_t keys_rotated_at; /* unix s */
};

/* One load of the config DB's rows that /cluster/resources, /nodes and
 * /cluster/nextid show, parsed on the DB thread. */
struct view_snap {
	uint64_t revision;
	struct res_guest *guests; /* by vmid */
	size_t nguests;
	struct res_storage *storage;
	size_t nstorage;
	struct {
		char name[64];
		char fingerprint[96];
	} * fingerprints;
	size_t nfingerprints;
	/* storage_clients: each node's RADOS client address per rbd
	 * storage (node/api_fence.c) */
	struct view_client {
		char storage[65];
		char node[64];
		char addr[128];
		char boot_id[40];
		int64_t fenced_at; /* 0: not fenced */
		char fenced_by[64];
	} * clients;
	size_t nclients;
	struct view_auth auth;
};

/* A serialized answer, valid while the inputs it was built from are. */
struct view_cache {
	char *body; /* {"data": [...]}, mem_alloc'd; NULL: none */
	size_t len;
	const struct view_snap *snap;
	uint64_t generation, online_mask;
};

enum {
	CACHE_RES_ALL,
	CACHE_RES_VM,
	CACHE_RES_NODE,
	CACHE_RES_STORAGE,
	CACHE_RES_SDN,
	CACHE_NODES,
	CACHE_COUNT
};

struct node_api {
	struct node_cluster *cluster; /* NULL once the stop has passed */
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept;
	SSL_CTX *ssl;
	uv_tcp_t listener;
	uv_timer_t drain_timer;
	uv_idle_t final; /* closed last: h2o's own handles close before */
	bool has_ctx, has_listener, is_stopping, is_disposed;
	unsigned nconns;
	unsigned ncalls; /* api_calls not yet freed */
	void (*stopped_cb)(struct node_cluster *c);
	/* the view: DB rows, reloaded when the revision moves */
	uint64_t known_revision; /* the newest the feed told us of */
	struct view_snap *snap;  /* NULL until the first load */
	struct db_op load_op;
	struct view_snap *loading;
	bool is_loading;
	struct err load_err;
	struct list waiters; /* api_calls waiting for a fresh snap */
	struct view_cache cache[CACHE_COUNT];
	/* access control (node/api_access.c) */
	unsigned ndelayed; /* 401s held back by their delay */
	/* tasks (node/api_tasks.c) */
	struct list tasks; /* struct api_task, running or finishing */
	unsigned ntasks;
	uint32_t task_pid, task_pstart;
	bool is_tasks_reconciled, is_reconciling;
	/* storage figures (node/api_storage.c) */
	uv_timer_t storage_timer;
	bool has_storage_timer, is_storage_polling;
	/* the last poll's figures: GET /nodes/{node}/storage's rbd rows */
	struct node_storage_figures storage_seen[64];
	size_t nstorage_seen;
	/* volumes an operation of this node is changing (node/api_storage.c):
	 * a second operation on one of them is refused, not interleaved */
	struct list busy_volumes;
	/* storage fencing (node/api_fence.c) */
	uint64_t fence_recorded_ms; /* last recorder run, monotonic */
	bool is_fence_recording;
	unsigned nbackground;   /* api_write_background writes in flight */
	char fence_boot_id[40]; /* the host's, as last read */
	bool is_fence_warned;   /* "fenced, not booted since" said once */
	struct db_op keys_op;
	bool is_keys_running;
	uint64_t keys_tried_ms;
};

struct api_conn {
	uv_tcp_t tcp; /* h2o owns tcp.data */
	struct node_api *api;
};

struct api_handler {
	h2o_handler_t super;
	struct node_api *api;
};

/* ------------------------------------------------------------ calls */

struct api_call;
typedef void (*route_fn)(struct api_call *c);

/* Who may call a route (every route declares it; checked at start-up).
 * PERM_PUBLIC: anyone, unauthenticated; PERM_USER: any authenticated
 * principal (handlers may filter); PERM_SELF: the principal's own user
 * named in the {userid} parameter passes without privs; PERM_ROOT:
 * root@pam only; PERM_OWNER: the owner of the task named by the {upid}
 * parameter (api_task_is_owner) passes without privs. privs: any one of
 * these (comma-separated Proxmox names) on path, whose {params} are
 * filled from the request. */
enum {
	PERM_PUBLIC = 1 << 0,
	PERM_USER = 1 << 1,
	PERM_SELF = 1 << 2,
	PERM_ROOT = 1 << 3,
	PERM_OWNER = 1 << 4,
};
struct route_perm {
	unsigned flags;
	const char *path;
	const char *privs;
};

/* What a route is: the message its parameters decode into, its work,
 * who may call it, and whether a {node} parameter names the node that
 * answers it. */
struct route_def {
	const ProtobufCMessageDescriptor *request;
	route_fn fn;
	bool is_node_local; /* forwarded to {node} */
	struct route_perm perm;
};

/* One REST request, from h2o or forwarded by another node, until it is
 * answered (or its deadline passed) and its handler is done. */
struct api_call {
	struct node_api *a;
	h2o_req_t *req;            /* NULL when forwarded or disposed */
	struct api_call **req_ref; /* in req's pool: cleared on dispose */
	struct node_req *fwd;      /* forwarded: the RPC to answer */
	char principal[192];
	struct api_match match;
	const struct route_def *def;
	ProtobufCMessage *msg;
	json_t *errors; /* parameter -> why, for 400s */
	struct api_reply reply;
	char answered_by[64]; /* the node whose answer it is */
	bool is_replied, is_running, has_match;
	uv_timer_t timer; /* the deadline; ticks while forwarding */
	uint64_t started_ms;
	/* handler state */
	struct list wait_link; /* in a->waiters */
	bool is_waiting, has_waited;
	struct rpc_call rpc;
	bool is_rpc_running;
	char target[64];
	/* the request as it came (valid until answered) */
	struct api_request in;
	/* authentication (node/api_access.c) */
	char *authorization, *cookie, *csrf; /* header copies; NULL: absent */
	bool is_authorized, is_delaying;
	bool is_local;  /* cairn.Api/Call: root on the node, as root@pam */
	bool is_remote; /* cairn.Api/Remote: its own credential */
	struct acl_principal who;
	struct db_op op;
	struct pool_work work;
	void *ctx; /* a handler's own state, freed by its done */
	/* api_call_run_rpc: the answer (c->reply) goes here, not to h2o or
	 * fwd */
	void (*on_reply)(struct api_call *c);
};

/* The routes of node/api_access.c and node/api_tasks.c, for the table in
 * node/api.c. */
extern const struct api_route api_access_routes[];
extern const size_t api_access_nroutes;
extern const struct api_route api_task_routes[];
extern const size_t api_task_nroutes;
extern const struct api_route api_storage_routes[];
extern const size_t api_storage_nroutes;
extern const struct api_route api_storage_transfer_routes[];
extern const size_t api_storage_transfer_nroutes;

uint64_t api_now_ms(void);
/* pool_submit, or -ESHUTDOWN when the node already closed the pool (its
 * stop closes the pools before the API has drained). */
static inline int api_pool_submit(struct pool *p, struct pool_work *w,
                                  pool_work_cb work, pool_done_cb done)
{
	return p == NULL ? -ESHUTDOWN : pool_submit(p, w, work, done);
}
/* A handler's end: rv 0 with c->reply filled, or an error (parameter
 * errors in c->errors make a 400). */
void api_call_done(struct api_call *c, int rv, struct err *e);
void api_call_fail(struct api_call *c, int rv, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);
/* {"data": <JSON of resp>} / {"data": data} (steals data; NULL: out of
 * memory), and the handler's end. */
void api_reply_message(struct api_call *c, const ProtobufCMessage *resp);
void api_reply_json(struct api_call *c, json_t *data);
/* True when c must wait for a fresher view (its stage runs again then). */
bool api_view_wait(struct api_call *c);
/* Fails c when there is no view at all; true then. */
bool api_view_missing(struct api_call *c);
/* Answers status with message after API_DENY_DELAY_MS (at most
 * API_DENY_HELD at a time; later ones at once): the pace of password
 * guessing. */
void api_call_deny(struct api_call *c, int http_status, const char *message);
/* Answers an HTTP status and message now (401, 403...). */
void api_call_fail_http(struct api_call *c, int http_status,
                        const char *message);

/* Frees the API once it is stopped and nothing of it is pending. */
void api_maybe_stopped(struct node_api *a);

/* Runs route's handler for an RPC that is not a REST request
 * (cairn.Storage/Upload) as an api_call of its own: authenticated as
 * cairn.Api/Call (r came on the local socket: root@pam) or cairn.Api/Remote
 * (credential, as an Authorization header) would be, with params (stolen)
 * as its parameters for the route's permission and request message, after
 * the same view wait. Its answer, success or failure, goes to on_reply
 * (c->reply; c->ctx is ctx), never to r: r stays the caller's to answer
 * or take (c->fwd is r, while the call runs). -ESHUTDOWN when the API is
 * not running, -ENOMEM; on_reply does not run then. */
int api_call_run_rpc(struct node_req *r, const struct api_route *route,
                     json_t *params, const char *credential,
                     void (*on_reply)(struct api_call *c), void *ctx,
                     struct err *e);

/* node/api_storage.c: the storage id names in v, or NULL. */
const struct res_storage *api_find_storage(const struct view_snap *v,
                                           const char *id);

/* An rbd storage's connection settings, copied from the view on the loop
 * for work on the storage pool; holds the key: explicit_bzero when done. */
static inline int64_t api_wall_s(void)
{
	return clock_wall_ms(clock_real()) / 1000;
}

static inline const char *api_self_name(const struct node_api *a)
{
	return a->cluster->node->config->node_name;
}

/* node/api_fence.c: storage-level fencing on rbd. */
extern const struct api_route api_fence_routes[];
extern const size_t api_fence_nroutes;
/* From the storage timer: records this node's RADOS client address on its
 * rbd storages (and removes its own fence at its first check). */
void api_fence_poll(struct node_api *a);

struct store_rbd;
struct rbd_conf {
	char monhost[1024];
	char pool[96];
	char username[64];
	char ns[96];
	char key[256];
};
/* From s's options and secret; -EINVAL when monhost or key is missing. */
int api_rbd_conf(const struct res_storage *s, struct rbd_conf *c);
/* On the storage pool: connects with a 5 s timeout. */
int api_rbd_open(const struct rbd_conf *c, struct store_rbd **r, struct err *e);

/* node/api_storage.c: this node's storage figures, measured every 5 s
 * and after each view load. */
void api_storage_start(struct node_api *a);
void api_storage_poll(struct node_api *a);
void api_storage_stop(struct node_api *a);
/* The target of an upload, checked as POST .../upload checks it (content
 * iso, vztmpl or import that the storage takes, a file name that makes a
 * volume id, a dir storage enabled on this node): its directory and volid.
 * False when c was failed (400 naming the parameter, 404...). */
bool api_storage_upload_target(struct api_call *c,
                               const Cairn__StorageUploadRequest *q, char *root,
                               size_t root_size, char *volid,
                               size_t volid_size);

/* node/api_tasks.c */
/* A task for c's long operation: its log gets `what` as its first line,
 * its row is written, c answers the UPID, then start(t) runs on the loop.
 * The worker logs with api_task_log, marks itself busy while its work is
 * on a pool (api_task_set_busy), and ends with api_task_end (NULL: OK).
 * NULL when c was failed instead. */
struct api_task;
struct api_task *api_task_start(struct api_call *c, const char *type,
                                const char *id, const char *what,
                                void (*start)(struct api_task *t), void *data,
                                void (*data_free)(void *data));
void api_task_log(struct api_task *t, const char *fmt, ...) CAIRN_PRINTF(2, 3);
void api_task_end(struct api_task *t, const char *error);
void api_task_set_busy(struct api_task *t, bool is_busy);
void *api_task_data(const struct api_task *t);
struct node_api *api_task_api(const struct api_task *t);
/* Who asked to abort it, or NULL. */
const char *api_task_aborted_by(const struct api_task *t);
/* Its UPID (node/api_tasks.c, at the end). */
const char *api_task_upid(const struct api_task *t);
/* cb (NULL: none) runs on the loop when a running task should stop early:
 * someone aborted it (api_task_aborted_by says who) or, while it is busy,
 * the node stops. The worker still ends with api_task_end. */
void api_task_on_abort(struct api_task *t, void (*cb)(struct api_task *t));
/* Is c's principal the owner of the task its {upid} parameter names (the
 * principal that started it, or the user whose token did)? */
bool api_task_is_owner(const struct api_call *c);

/* Marks the tasks of the last run that never ended (once, before any
 * task may start; retried after each view load until it worked). */
void api_tasks_reconcile(struct node_api *a);
/* The node stops: running tasks end without a last line (the next start
 * marks them interrupted). */
void api_tasks_stop(struct node_api *a);

/* node/api_access.c: DB writes for handlers. */
/* Up to a few statements run in one transaction on the DB thread; a
 * statement may require that it changed a row (else -ENOENT with its
 * message) or map a uniqueness failure to -EEXIST with its message. */
#define WRITE_STMTS  64
#define WRITE_PARAMS 8
struct write_stmt {
	const char *sql;
	struct wire_value params[WRITE_PARAMS];
	unsigned nparams;
	const char *none_msg;   /* must change a row */
	const char *exists_msg; /* a UNIQUE failure means this */
};
struct write_ctx {
	struct write_stmt st[WRITE_STMTS];
	unsigned n;
	char *strings[WRITE_STMTS * WRITE_PARAMS]; /* owned copies */
	unsigned nstrings;
	json_t *data; /* the answer on success (NULL: null) */
	bool has_oom;
	/* api_write_background */
	struct db_op op;
	struct node_api *a;
	void (*done)(struct node_api *a, int status, const struct err *e,
	             void *data);
	void *done_data;
};

struct write_ctx *api_write_new(void);
void api_write_free(struct write_ctx *w);
/* A copy of text that lives as long as w (NULL when out of memory). */
const char *api_write_keep(struct write_ctx *w, const char *text);
struct write_stmt *api_write_add(struct write_ctx *w, const char *sql);
void api_write_text(struct write_ctx *w, struct write_stmt *st,
                    const char *text);
void api_write_int(struct write_stmt *st, int64_t v);
/* v, or NULL when !has (a column left as it is, through coalesce). */
void api_write_opt_int(struct write_stmt *st, bool has, int64_t v);
/* Runs w for c (owns w from here) and answers w->data (or null). */
void api_write_submit(struct api_call *c, struct write_ctx *w);
/* Runs w outside any call (owns w from here); done (may be NULL) gets
 * the outcome on the loop. -EBUSY (w freed, done not called) when the DB
 * is not there or its queue is full. */
int api_write_background(struct node_api *a, struct write_ctx *w,
                         void (*done)(struct node_api *a, int status,
                                      const struct err *e, void *data),
                         void *data);
/* Sets a parameter error and fails c with 400. */
void api_param_error(struct api_call *c, const char *name, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);

/* On the DB thread: runs sql into rows and allocates *out, room for one
 * element of elem bytes per row (zeroed, one more so it is never empty);
 * the caller fills it and frees rows. */
int api_query_array(struct db_client *client, const char *sql, size_t elem,
                    struct db_rows *rows, void **out, struct err *e);

/* node/api_access.c */
/* Authenticates c and checks its route's permission: true when it may go
 * on; false when c was answered or waits for the view (then this runs
 * again). */
bool api_access_authorize(struct api_call *c);
/* On the DB thread, inside the view's load: users, tokens, ACLs, keys. */
int api_access_load(struct db_client *client, struct view_snap *v,
                    struct err *e);
void api_access_snap_free(struct view_snap *v);
/* After a load, on the loop: make or rotate the ticket keys if due. */
void api_access_after_load(struct node_api *a);
/* The ACL world of a snap, borrowed from it. */
void api_access_world(const struct view_snap *v, struct acl_world *w);
/* True when the principal may see what path guards with any of privs. */
bool api_access_can(struct api_call *c, const char *path, const char *privs);

#endif /* CAIRN_NODE_API_INTERNAL_H */
