/* The REST API: an h2o 2.2.5 HTTPS server on the agent's loop that routes
 * "METHOD /api2/json/<path>" (node/api_route.c), decodes parameters into
 * request messages with the generic JSON <-> protobuf mapping, and answers
 * Proxmox-style (node/api_error.c).
 *
 * NOT AUTHENTICATED YET: every route answers anyone who reaches
 * api_listen (users, tokens and tickets are issue 7). Only read-only
 * routes exist until then; the listener binds only where configured.
 *
 * h2o facts that shape this file: 2.2.5 buffers a whole request body
 * before a handler runs, so the body limit is global (API_BODY_MAX, h2o
 * answers 413 itself); its HTTP/1 request head is limited to 8 KiB and 100
 * headers (compiled into h2o); HTTP/2 is off unless api_http2 is set
 * (2.2.5 has no fix for the rapid-reset attack). Handlers here answer
 * synchronously; handlers that wait on the DB or other nodes will need an
 * answer-later request (h2o_req_t stays valid until h2o_send) and a 10 s
 * deadline timer (DESIGN.md §6). */
#define H2O_USE_LIBUV 1
#include <h2o.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/api_error.h"
#include "node/api_route.h"
#include "node/hoststat.h"
#include "node/internal.h"

#define API_BODY_MAX       (1u << 20)
#define API_REQ_TIMEOUT_MS 10000 /* reading a request, idle keep-alive */
#define API_CONNS_MAX      1024
#define API_DRAIN_MS       2000 /* graceful stop: connections may finish */

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
	void (*stopped_cb)(struct node_cluster *c);
	struct host_stat last_sample; /* for CPU use between two requests */
	bool has_sample;
};

struct api_conn {
	uv_tcp_t tcp; /* h2o owns tcp.data */
	struct node_api *api;
};

struct api_handler {
	h2o_handler_t super;
	struct node_api *api;
};

/* ------------------------------------------------------------ routes */

/* A route's work: fills r (status and body) or fails with e; params are
 * decoded into a message of `request` (NULL: takes no parameters). */
typedef int (*route_fn)(struct node_api *a, const ProtobufCMessage *req,
                        struct api_reply *r, struct err *e);

struct route_def {
	const ProtobufCMessageDescriptor *request;
	route_fn fn;
};

/* Answers a message through the mapping: {"data": <JSON of resp>}. */
static int reply_message(struct api_reply *r, const ProtobufCMessage *resp,
                         struct err *e)
{
	json_t *data = NULL;
	int rv;

	rv = proto_json_from_message(resp, NULL, &data, e);
	if (rv != 0)
		return rv;
	return api_reply_data(r, data, e);
}

static int route_version(struct node_api *a, const ProtobufCMessage *req,
                         struct api_reply *r, struct err *e)
{
	Cairn__VersionResponse resp;

	(void)a;
	(void)req;
	proto_version_response_fill(&resp);
	return reply_message(r, &resp.base, e);
}

static int route_cluster_status(struct node_api *a, const ProtobufCMessage *req,
                                struct api_reply *r, struct err *e)
{
	Cairn__ClusterStatusResponse resp;
	struct node_status_storage *st = mem_alloc(sizeof *st);
	int rv;

	(void)req;
	if (st == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = node_status_fill(a->cluster, &resp, st);
	if (rv != 0)
		rv = err_set(e, rv, "this node is not in a cluster");
	else
		rv = reply_message(r, &resp.base, e);
	mem_free(st);
	return rv;
}

/* The {node} of a path must be a member. Forwarding to other members is
 * not built yet: what the lists answer is the same everywhere for now. */
static int check_node(struct node_api *a, const char *node, struct err *e)
{
	if (node == NULL || !node_status_has_member(a->cluster, node))
		return err_set(e, -ENOENT, "no such cluster node '%s'",
		               node != NULL ? node : "");
	return 0;
}

/* GET /nodes/{node}/qemu, /lxc: empty until the VM and CT issues. */
static int route_node_guests(struct node_api *a, const ProtobufCMessage *req,
                             struct api_reply *r, struct err *e)
{
	const Cairn__NodeGuestsRequest *q = (const void *)req;
	int rv = check_node(a, q->node, e);

	return rv != 0 ? rv : api_reply_data(r, json_array(), e);
}

/* GET /nodes/{node}/storage: empty until the storage issue. */
static int route_node_storage(struct node_api *a, const ProtobufCMessage *req,
                              struct api_reply *r, struct err *e)
{
	const Cairn__NodeStorageRequest *q = (const void *)req;
	int rv = check_node(a, q->node, e);

	return rv != 0 ? rv : api_reply_data(r, json_array(), e);
}

/* GET /nodes/{node}/status, Proxmox's shape, for this node. Another
 * node's answer needs forwarding (not built yet): refused clearly. */
static int route_node_status(struct node_api *a, const ProtobufCMessage *req,
                             struct api_reply *r, struct err *e)
{
	const Cairn__NodeStatusRequest *q = (const void *)req;
	const char *self = a->cluster->node->config->node_name;
	struct host_stat s;
	char load[3][16], pveversion[96];
	json_t *data;
	double cpu;
	int rv, i;

	rv = check_node(a, q->node, e);
	if (rv != 0)
		return rv;
	if (strcmp(q->node, self) != 0)
		return err_set(e, -EREMOTE,
		               "the status of node '%s' is "
		               "answered by that node: ask it "
		               "(forwarding is not built yet)",
		               q->node);
	rv = host_stat_read(&s, e);
	if (rv != 0)
		return rv;
	cpu = a->has_sample ? host_cpu_fraction(&a->last_sample, &s) : 0;
	a->last_sample = s;
	a->has_sample = true;
	for (i = 0; i < 3; i++)
		snprintf(load[i], sizeof load[i], "%.2f", s.loadavg[i]);
	/* Proxmox's "pve-manager/X.Y.Z/hash": the API level we follow. */
	snprintf(pveversion, sizeof pveversion, "pve-manager/%s.0/%s",
	         PROTO_PVE_API_LEVEL, cairn_repoid());
	data = json_pack(
	        "{s:I, s:[s,s,s], s:f, s:{s:s, s:i, s:i, s:i}, "
	        "s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}, "
	        "s:{s:I, s:I, s:I, s:I}, s:s, s:s}",
	        "uptime", (json_int_t)s.uptime_s, "loadavg", load[0], load[1],
	        load[2], "cpu", cpu, "cpuinfo", "model", s.cpu_model, "cpus",
	        (int)s.cpus, "cores", (int)s.cpus, "sockets", 1, "memory",
	        "total", (json_int_t)s.mem_total, "used",
	        (json_int_t)s.mem_used, "free",
	        (json_int_t)(s.mem_total - s.mem_used), "available",
	        (json_int_t)(s.mem_total - s.mem_used), "swap", "total",
	        (json_int_t)s.swap_total, "used", (json_int_t)s.swap_used,
	        "free", (json_int_t)s.swap_free, "rootfs", "total",
	        (json_int_t)s.root_total, "used", (json_int_t)s.root_used,
	        "avail", (json_int_t)s.root_avail, "free",
	        (json_int_t)(s.root_total - s.root_used), "kversion",
	        s.kversion, "pveversion", pveversion);
	if (data == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	return api_reply_data(r, data, e);
}

static const struct route_def def_version = {
        &cairn__version_request__descriptor, route_version};
static const struct route_def def_cluster_status = {
        &cairn__cluster_status_request__descriptor, route_cluster_status};
static const struct route_def def_node_guests = {
        &cairn__node_guests_request__descriptor, route_node_guests};
static const struct route_def def_node_lxc = {
        &cairn__node_lxc_request__descriptor, route_node_guests};
static const struct route_def def_node_storage = {
        &cairn__node_storage_request__descriptor, route_node_storage};

static const struct route_def def_node_status = {
        &cairn__node_status_request__descriptor, route_node_status};

static const struct api_route routes[] = {
        {API_GET, "/nodes/{node}/status", &def_node_status},
        {API_GET, "/version", &def_version},
        {API_GET, "/cluster/status", &def_cluster_status},
        {API_GET, "/nodes/{node}/qemu", &def_node_guests},
        {API_GET, "/nodes/{node}/lxc", &def_node_lxc},
        {API_GET, "/nodes/{node}/storage", &def_node_storage},
};

/* ----------------------------------------------------------- requests */

static int status_of_errno(int code)
{
	switch (code) {
	case -ENOENT:
		return 404;
	case -ENOTCONN:
		return 503;
	case -EREMOTE:
		return 501;
	default:
		return api_http_status(node_status_from_errno(code));
	}
}

/* Routes, decodes and runs one request into r. Never fails: errors become
 * error replies (only an allocation failure may leave r->body NULL). */
static void handle(struct node_api *a, const struct api_request *in,
                   struct api_reply *r)
{
	struct proto_json_options opts = {.strings_are_values = true};
	struct api_match *m = mem_alloc(sizeof *m);
	ProtobufCMessage *msg = NULL;
	const struct route_def *def;
	json_t *errors = json_object();
	struct err e;
	int rv;

	memset(r, 0, sizeof *r);
	if (m == NULL || errors == NULL) {
		api_reply_error(r, 500, "out of memory", &e);
		goto out;
	}
	rv = api_route_resolve(routes, CAIRN_ARRAY_SIZE(routes), in, m, errors,
	                       &e);
	if (rv == -EINVAL && json_object_size(errors) > 0) {
		api_reply_param_errors(r, errors, &e);
		goto out;
	}
	if (rv != 0) {
		int status = rv == -ENOENT || rv == -ENOTSUP ? 501
		             : rv == -ENAMETOOLONG           ? 414
		             : rv == -EPROTONOSUPPORT        ? 415
		             : rv == -ENOMEM                 ? 500
		                                             : 400;

		api_reply_error(r, status, e.msg, &e);
		goto out;
	}
	def = m->route->handler;
	rv = proto_json_to_message(def->request, m->params, &opts, &msg, errors,
	                           &e);
	if (rv == -EINVAL && json_object_size(errors) > 0) {
		api_reply_param_errors(r, errors, &e);
		goto out_match;
	}
	if (rv != 0) {
		api_reply_error(r, rv == -ENOMEM ? 500 : 400, e.msg, &e);
		goto out_match;
	}
	if (a->cluster == NULL) {
		api_reply_error(r, 503, "the node is shutting down", &e);
		goto out_msg;
	}
	rv = def->fn(a, msg, r, &e);
	if (rv != 0) {
		api_reply_free(r);
		api_reply_error(r, status_of_errno(rv), e.msg, &e);
	}
out_msg:
	protobuf_c_message_free_unpacked(msg, NULL);
out_match:
	api_match_free(m);
out:
	mem_free(m);
	json_decref(errors);
}

static h2o_iovec_t header_value(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t i = h2o_find_header(&req->headers, token, -1);

	return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct node_api *a = ((struct api_handler *)self)->api;
	h2o_iovec_t ct = header_value(req, H2O_TOKEN_CONTENT_TYPE);
	struct api_request in = {
	        .method = req->method.base,
	        .method_len = req->method.len,
	        .path = req->path.base,
	        .path_len = req->path.len,
	        .content_type = ct.base,
	        .content_type_len = ct.len,
	        .body = req->entity.base,
	        .body_len = req->entity.base != NULL ? req->entity.len : 0,
	};
	struct api_reply r;
	char *reason;

	handle(a, &in, &r);
	if (r.body == NULL) {
		h2o_send_error_500(req, "Internal Server Error",
		                   "out of memory", 0);
		return 0;
	}
	if (r.status >= 400)
		LOG_INFO("api", "request failed",
		         "method=%.*s path=\"%.*s\" status=%d error=\"%s\"",
		         (int)req->method.len, req->method.base,
		         (int)(req->path.len < 200 ? req->path.len : 200),
		         req->path.base, r.status, r.reason);
	/* h2o writes the reason when it flattens the head: pool memory. */
	reason = h2o_mem_alloc_pool(&req->pool, strlen(r.reason) + 1);
	memcpy(reason, r.reason, strlen(r.reason) + 1);
	req->res.status = r.status;
	req->res.reason = reason;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
	               NULL, H2O_STRLIT("application/json;charset=UTF-8"));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL,
	               NULL, H2O_STRLIT("max-age=0"));
	h2o_send_inline(req, r.body, r.body_len); /* copies the body */
	api_reply_free(&r);
	return 0;
}

/* -------------------------------------------------------- connections */

static void maybe_stopped(struct node_api *a);

static void on_conn_closed(uv_handle_t *h)
{
	struct api_conn *conn =
	        CAIRN_CONTAINER_OF((uv_tcp_t *)h, struct api_conn, tcp);
	struct node_api *a = conn->api;

	mem_free(conn);
	a->nconns--;
	maybe_stopped(a);
}

static void on_plain_closed(uv_handle_t *h)
{
	on_conn_closed(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct node_api *a = listener->data;
	struct api_conn *conn;
	h2o_socket_t *sock;

	if (status != 0 || a->is_stopping)
		return;
	conn = mem_calloc(1, sizeof *conn);
	if (conn == NULL)
		return;
	conn->api = a;
	uv_tcp_init(listener->loop, &conn->tcp);
	a->nconns++;
	if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 ||
	    a->nconns > API_CONNS_MAX) {
		uv_close((uv_handle_t *)&conn->tcp, on_plain_closed);
		return;
	}
	sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_closed);
	if (sock == NULL) {
		uv_close((uv_handle_t *)&conn->tcp, on_plain_closed);
		return;
	}
	h2o_accept(&a->accept, sock);
}

/* -------------------------------------------------------------- TLS */

/* The HTTPS identity: the node's certificate from the cluster CA, with
 * the CA in the chain. Belongs in rpc/ (OpenSSL's owner) once it offers
 * an SSL_CTX for servers it does not drive; h2o needs a bare SSL_CTX. */
static int tls_create(struct node_cluster *c, bool has_http2, SSL_CTX **out,
                      struct err *e)
{
	SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
	BIO *bio = NULL;
	X509 *cert = NULL, *ca = NULL;
	EVP_PKEY *key = NULL;
	int rv = 0;

	if (ssl == NULL)
		return err_set(e, -ENOMEM, "api tls: SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION |
	                                 SSL_OP_NO_RENEGOTIATION |
	                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
	bio = BIO_new_mem_buf(c->cert_pem.data, (int)c->cert_pem.len);
	cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	bio = BIO_new_mem_buf(c->ca_pem.data, (int)c->ca_pem.len);
	ca = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	bio = BIO_new_mem_buf(c->key_pem.data, (int)c->key_pem.len);
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
	                  : NULL;
	BIO_free(bio);
	if (cert == NULL || ca == NULL || key == NULL)
		rv = err_set(e, -EINVAL, "api tls: the node's %s is unreadable",
		             cert == NULL ? "certificate"
		             : ca == NULL ? "CA certificate"
		                          : "key");
	else if (SSL_CTX_use_certificate(ssl, cert) != 1 ||
	         SSL_CTX_use_PrivateKey(ssl, key) != 1 ||
	         SSL_CTX_check_private_key(ssl) != 1 ||
	         SSL_CTX_add1_chain_cert(ssl, ca) != 1)
		rv = err_set(e, -EINVAL,
		             "api tls: the node's certificate and key do not "
		             "fit together");
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	if (rv != 0) {
		SSL_CTX_free(ssl);
		return rv;
	}
	if (has_http2)
		h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
	*out = ssl;
	return 0;
}

/* -------------------------------------------------------- lifecycle */

static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                        struct err *e)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	size_t len = colon != NULL ? (size_t)(colon - listen) : 0;
	int port = colon != NULL ? atoi(colon + 1) : 0;

	if (colon == NULL || len == 0 || len >= sizeof host || port <= 0 ||
	    port > 65535)
		return err_set(e, -EINVAL, "api_listen '%s': not host:port",
		               listen);
	memcpy(host, listen, len);
	host[len] = '\0';
	if (host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = '\0';
		if (uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) == 0)
			return 0;
	} else if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) {
		return 0;
	}
	return err_set(e, -EINVAL, "api_listen '%s': not an IP address",
	               listen);
}

static void api_free(struct node_api *a)
{
	if (a->ssl != NULL)
		SSL_CTX_free(a->ssl);
	h2o_config_dispose(&a->config);
	mem_free(a);
}

int node_api_start(struct node_cluster *c, struct err *e)
{
	const struct node_config *cfg = c->node->config;
	uv_loop_t *loop = c->node->loop;
	struct sockaddr_storage ss;
	struct node_api *a;
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	struct api_handler *h;
	int rv;

	CAIRN_ASSERT(api_route_table_check(routes, CAIRN_ARRAY_SIZE(routes),
	                                   e) == 0);
	rv = parse_listen(cfg->api_listen, &ss, e);
	if (rv != 0)
		return rv;
	a = mem_calloc(1, sizeof *a);
	if (a == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	a->cluster = c;
	h2o_config_init(&a->config);
	a->config.server_name = h2o_iovec_init(H2O_STRLIT("cairn"));
	a->config.max_request_entity_size = API_BODY_MAX;
	a->config.handshake_timeout = API_REQ_TIMEOUT_MS;
	a->config.http1.req_timeout = API_REQ_TIMEOUT_MS;
	a->config.http1.upgrade_to_http2 = cfg->api_http2;
	a->config.http2.idle_timeout = API_REQ_TIMEOUT_MS;
	rv = tls_create(c, cfg->api_http2, &a->ssl, e);
	if (rv != 0) {
		api_free(a);
		return rv;
	}
	host = h2o_config_register_host(
	        &a->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	h = (struct api_handler *)h2o_create_handler(path, sizeof *h);
	h->super.on_req = on_req;
	h->api = a;

	uv_tcp_init(loop, &a->listener);
	a->listener.data = a;
	a->has_listener = true;
	uv_timer_init(loop, &a->drain_timer);
	a->drain_timer.data = a;
	uv_idle_init(loop, &a->final);
	a->final.data = a;
	h2o_context_init(&a->ctx, loop, &a->config);
	a->has_ctx = true;
	a->accept.ctx = &a->ctx;
	a->accept.hosts = a->config.hosts;
	a->accept.ssl_ctx = a->ssl;
	c->api = a;
	rv = uv_tcp_bind(&a->listener, (const struct sockaddr *)&ss, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&a->listener, 128, on_accept);
	if (rv != 0)
		return err_set(e, rv, "api_listen %s: %s", cfg->api_listen,
		               uv_strerror(rv));
	LOG_INFO("api", "listening", "address=%s http2=%d", cfg->api_listen,
	         (int)cfg->api_http2);
	return 0;
}

static void on_final_closed(uv_handle_t *h)
{
	struct node_api *a = h->data;

	api_free(a);
}

/* h2o's handles were closed in the pass that ran this callback; ours,
 * closed now, runs in the next pass, after all of theirs. */
static void on_drain_closed(uv_handle_t *h)
{
	struct node_api *a = h->data;

	uv_close((uv_handle_t *)&a->final, on_final_closed);
}

static void maybe_stopped(struct node_api *a)
{
	void (*cb)(struct node_cluster * c) = a->stopped_cb;
	struct node_cluster *c = a->cluster;

	if (!a->is_stopping || a->has_listener)
		return;
	/* The cluster may go on once no request can reach it, even if
	 * connections linger past the drain time: they get 503s. */
	if (c != NULL &&
	    (a->nconns == 0 || !uv_is_active((uv_handle_t *)&a->drain_timer))) {
		a->cluster = NULL;
		c->api = NULL;
		a->stopped_cb = NULL;
		if (cb != NULL)
			cb(c);
	}
	if (a->nconns > 0 || a->is_disposed)
		return;
	a->is_disposed = true;
	uv_timer_stop(&a->drain_timer);
	if (a->has_ctx) {
		/* h2o_context_request_shutdown armed this one (for HTTP/2's
		 * GOAWAY); 2.2.5's dispose asserts that no entry is left. */
		if (h2o_timeout_is_linked(
		            &a->ctx.http2._graceful_shutdown_timeout))
			h2o_timeout_unlink(
			        &a->ctx.http2._graceful_shutdown_timeout);
		h2o_context_dispose(&a->ctx);
	}
	uv_close((uv_handle_t *)&a->drain_timer, on_drain_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct node_api *a = h->data;

	a->has_listener = false;
	maybe_stopped(a);
}

static void on_drain_timer(uv_timer_t *t)
{
	struct node_api *a = t->data;

	LOG_INFO("api", "stopping with connections open", "connections=%u",
	         a->nconns);
	maybe_stopped(a);
}

void node_api_stop(struct node_cluster *c, void (*cb)(struct node_cluster *c))
{
	struct node_api *a = c->api;

	CAIRN_ASSERT(a != NULL && !a->is_stopping);
	a->is_stopping = true;
	a->stopped_cb = cb;
	/* HTTP/1 connections close after their current response, HTTP/2
	 * ones get GOAWAY. */
	if (a->has_ctx)
		h2o_context_request_shutdown(&a->ctx);
	uv_timer_start(&a->drain_timer, on_drain_timer, API_DRAIN_MS, 0);
	uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
