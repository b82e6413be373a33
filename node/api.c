/* The REST API: an h2o 2.2.5 HTTPS server on the agent's loop that routes
 * "METHOD /api2/json/<path>" (node/api_route.c), authenticates and checks
 * the route's permission (node/api_access.c), decodes parameters into
 * request messages with the generic JSON <-> protobuf mapping, forwards
 * /nodes/{node}/... to the node that answers it, and answers Proxmox-style
 * (node/api_error.c). Calls answer later (after the DB, another node or a
 * worker) and always within API_DEADLINE_MS.
 *
 * h2o facts that shape this file: 2.2.5 buffers a whole request body
 * before a handler runs, so the body limit is global (API_BODY_MAX, h2o
 * answers 413 itself); its HTTP/1 request head is limited to 8 KiB and 100
 * headers (compiled into h2o); HTTP/2 is off unless api_http2 is set
 * (2.2.5 has no fix for the rapid-reset attack); an h2o_req_t stays valid
 * until its answer is sent or its connection goes, which a shared pool
 * allocation with a dispose callback tells us (on_req_disposed). */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

#include "node/api_internal.h"
#include "node/task.h"

uint64_t api_now_ms(void)
{
	return clock_mono_ms(clock_real());
}

static void call_free_cb(uv_handle_t *h)
{
	struct api_call *c = h->data;
	struct node_api *a = c->a;

	mem_free(c);
	a->ncalls--;
	api_maybe_stopped(a);
}

static void call_maybe_free(struct api_call *c)
{
	if (!c->is_replied || c->is_running)
		return;
	if (c->has_match)
		api_match_free(&c->match);
	c->has_match = false;
	if (c->msg != NULL)
		protobuf_c_message_free_unpacked(c->msg, NULL);
	c->msg = NULL;
	json_decref(c->errors);
	c->errors = NULL;
	api_reply_free(&c->reply);
	mem_free(c->authorization);
	mem_free(c->cookie);
	mem_free(c->csrf);
	c->authorization = c->cookie = c->csrf = NULL;
	uv_close((uv_handle_t *)&c->timer, call_free_cb);
}

/* h2o disposed the request (the client went away, or the answer left). */
static void on_req_disposed(void *p)
{
	struct api_call **ref = p;

	if (*ref != NULL)
		(*ref)->req = NULL;
}

static int status_of_errno(int code)
{
	switch (code) {
	case -ENOENT:
		return 404;
	case -ENOTCONN:
	case -EHOSTDOWN:
	case -ESHUTDOWN:
	case -EBUSY:
	case -EAGAIN:
		return 503;
	case -ETIMEDOUT:
		return 504;
	case -EREMOTE:
		return 501;
	default:
		return api_http_status(node_status_from_errno(code));
	}
}

static void send_h2o(struct api_call *c)
{
	h2o_req_t *req = c->req;
	struct api_reply *r = &c->reply;
	char *reason;

	*c->req_ref = NULL;
	c->req = NULL;
	reason = h2o_mem_alloc_pool(&req->pool, strlen(r->reason) + 1);
	memcpy(reason, r->reason, strlen(r->reason) + 1);
	req->res.status = r->status;
	req->res.reason = reason;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
	               NULL, H2O_STRLIT("application/json;charset=UTF-8"));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL,
	               NULL, H2O_STRLIT("max-age=0"));
	if (c->answered_by[0] != '\0') {
		size_t n = strlen(c->answered_by);
		char *node = h2o_mem_alloc_pool(&req->pool, n);

		memcpy(node, c->answered_by, n);
		h2o_add_header_by_str(&req->pool, &req->res.headers,
		                      H2O_STRLIT("cairn-node"), 0, NULL, node,
		                      n);
	}
	req->res.content_length = r->body_len;
	h2o_send_inline(req, r->body, r->body_len); /* copies the body */
}

static void send_forwarded(struct api_call *c)
{
	Cairn__ApiForwardResponse resp = CAIRN__API_FORWARD_RESPONSE__INIT;

	resp.has_status = true;
	resp.status = (uint32_t)c->reply.status;
	resp.reason = c->reply.reason;
	resp.has_body = true;
	resp.body.data = (uint8_t *)c->reply.body;
	resp.body.len = c->reply.body_len;
	resp.node = c->answered_by[0] != '\0' ? c->answered_by : NULL;
	node_req_reply(c->fwd, &resp.base);
	c->fwd = NULL;
}

/* Sends c->reply (or an error in its place) once; the handler may still
 * be running: its late result is dropped. */
static void call_reply(struct api_call *c)
{
	struct api_reply *r = &c->reply;
	struct err e;

	if (c->is_replied)
		return;
	c->is_replied = true;
	uv_timer_stop(&c->timer);
	if (r->body == NULL) {
		api_reply_free(r);
		api_reply_error(r, 500, "out of memory", &e);
	}
	if (r->status >= 400 && r->body != NULL)
		LOG_INFO("api", "request failed",
		         "path=\"%s\" status=%d error=\"%s\"%s",
		         c->has_match ? c->match.path : "", r->status,
		         r->reason, c->fwd != NULL ? " forwarded=1" : "");
	if (c->on_reply != NULL)
		c->on_reply(c); /* api_call_run_rpc */
	else if (c->req != NULL && r->body != NULL)
		send_h2o(c);
	else if (c->req != NULL) {
		h2o_req_t *req = c->req;

		*c->req_ref = NULL;
		c->req = NULL;
		h2o_send_error_500(req, "Internal Server Error",
		                   "out of memory", 0);
	} else if (c->fwd != NULL)
		send_forwarded(c);
}

/* A handler's end: rv 0 with c->reply filled, or an error (param errors
 * in c->errors make a 400). */
void api_call_done(struct api_call *c, int rv, struct err *e)
{
	struct err e2;

	c->is_running = false;
	if (!c->is_replied && rv != 0) {
		api_reply_free(&c->reply);
		if (rv == -EINVAL && json_object_size(c->errors) > 0)
			api_reply_param_errors(&c->reply, c->errors, &e2);
		else
			api_reply_error(&c->reply, status_of_errno(rv), e->msg,
			                &e2);
	}
	call_reply(c);
	call_maybe_free(c);
}

void api_call_fail(struct api_call *c, int rv, const char *fmt, ...)
{
	struct err e;
	va_list ap;

	va_start(ap, fmt);
	e.code = rv;
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	api_call_done(c, rv, &e);
}

static void on_call_timer(uv_timer_t *t);

void api_call_fail_http(struct api_call *c, int http_status,
                        const char *message)
{
	struct err e;

	c->is_running = false;
	api_reply_free(&c->reply);
	api_reply_error(&c->reply, http_status, message, &e);
	call_reply(c);
	call_maybe_free(c);
}

void api_call_deny(struct api_call *c, int http_status, const char *message)
{
	struct node_api *a = c->a;
	struct err e;

	if (a->ndelayed >= API_DENY_HELD || c->is_replied) {
		api_call_fail_http(c, http_status, message);
		return;
	}
	c->is_running = false;
	api_reply_free(&c->reply);
	api_reply_error(&c->reply, http_status, message, &e);
	c->is_delaying = true;
	a->ndelayed++;
	uv_timer_start(&c->timer, on_call_timer, API_DENY_DELAY_MS, 0);
}

/* Answers a message through the mapping: {"data": <JSON of resp>}. */
void api_reply_message(struct api_call *c, const ProtobufCMessage *resp)
{
	json_t *data = NULL;
	struct err e;
	int rv;

	if (c->is_replied) { /* answered by its deadline: drop it */
		api_call_done(c, 0, &e);
		return;
	}
	rv = proto_json_from_message(resp, NULL, &data, &e);
	api_reply_free(&c->reply);
	if (rv == 0)
		rv = api_reply_data(&c->reply, data, &e);
	api_call_done(c, rv, &e);
}

void api_reply_json(struct api_call *c, json_t *data)
{
	struct err e;
	int rv;

	if (c->is_replied) { /* answered by its deadline: drop it */
		json_decref(data);
		api_call_done(c, 0, &e);
		return;
	}
	api_reply_free(&c->reply);
	if (data == NULL)
		rv = err_set(&e, -ENOMEM, "out of memory");
	else
		rv = api_reply_data(&c->reply, data, &e);
	api_call_done(c, rv, &e);
}

/* The deadline (DESIGN.md 6): every call answers within API_DEADLINE_MS;
 * while forwarding, the timer also ticks to notice the target going
 * offline. */
static void on_call_timer(uv_timer_t *t)
{
	struct api_call *c = t->data;
	uint64_t elapsed = api_now_ms() - c->started_ms, silent;
	struct rpc_conn *conn;
	struct err e;

	if (c->is_replied)
		return;
	if (c->is_delaying) {
		c->is_delaying = false;
		c->a->ndelayed--;
		call_reply(c);
		call_maybe_free(c);
		return;
	}
	if (c->is_rpc_running && elapsed < API_DEADLINE_MS &&
	    c->a->cluster != NULL) {
		int rv = node_status_peer(c->a->cluster, c->target, &conn,
		                          &silent);

		if (rv != -EHOSTDOWN)
			return;
		api_reply_free(&c->reply);
		err_set(&e, -EHOSTDOWN,
		        "node '%s' went offline: no answer for %.1f s",
		        c->target, (double)silent / 1000);
		api_reply_error(&c->reply, 503, e.msg, &e);
		call_reply(c);
		return;
	}
	api_reply_free(&c->reply);
	api_reply_error(&c->reply, 504,
	                "got timeout: the request did not finish within 10 s",
	                &e);
	call_reply(c);
}

/* ------------------------------------------------------ forwarding */

static void on_forward_done(struct rpc_call *call, enum rpc_status status,
                            const char *message, const void *payload,
                            size_t len)
{
	struct api_call *c = CAIRN_CONTAINER_OF(call, struct api_call, rpc);
	Cairn__ApiForwardResponse *resp;
	struct err e;
	int rv = 0;

	c->is_rpc_running = false;
	if (status != RPC_STATUS_OK) {
		api_call_fail(
		        c,
		        status == RPC_STATUS_DEADLINE_EXCEEDED ? -ETIMEDOUT
		                                               : -ENOTCONN,
		        "node '%s' did not answer: %s", c->target,
		        message != NULL ? message : rpc_status_name(status));
		return;
	}
	resp = cairn__api_forward_response__unpack(NULL, len, payload);
	if (resp == NULL || !resp->has_status || resp->status < 100 ||
	    resp->status > 599 || !resp->has_body) {
		if (resp != NULL)
			cairn__api_forward_response__free_unpacked(resp, NULL);
		api_call_fail(c, -EPROTO, "node '%s' sent a malformed answer",
		              c->target);
		return;
	}
	api_reply_free(&c->reply);
	c->reply.status = (int)resp->status;
	snprintf(c->reply.reason, sizeof c->reply.reason, "%s",
	         resp->reason != NULL ? resp->reason
	                              : api_http_phrase(c->reply.status));
	c->reply.body = mem_alloc(resp->body.len + 1);
	if (c->reply.body == NULL) {
		rv = err_set(&e, -ENOMEM, "out of memory");
	} else {
		memcpy(c->reply.body, resp->body.data, resp->body.len);
		c->reply.body[resp->body.len] = '\0';
		c->reply.body_len = resp->body.len;
	}
	snprintf(c->answered_by, sizeof c->answered_by, "%s",
	         resp->node != NULL ? resp->node : "");
	cairn__api_forward_response__free_unpacked(resp, NULL);
	api_call_done(c, rv, &e);
}

static const struct rpc_call_cbs forward_cbs = {.on_done = on_forward_done};

/* Sends the request as it came to the node that answers it. */
static void forward(struct api_call *c, const struct api_request *in)
{
	struct node_cluster *cl = c->a->cluster;
	Cairn__ApiForwardRequest req = CAIRN__API_FORWARD_REQUEST__INIT;
	char method[16], *path = NULL, *ctype = NULL;
	struct rpc_conn *conn;
	uint64_t silent;
	uint8_t *packed;
	size_t len;
	struct err e;
	int rv;

	rv = node_status_peer(cl, c->target, &conn, &silent);
	if (rv == -EHOSTDOWN) {
		if (silent == UINT64_MAX)
			api_call_fail(
			        c, rv,
			        "node '%s' is offline: not heard from since "
			        "this node started",
			        c->target);
		else
			api_call_fail(
			        c, rv,
			        "node '%s' is offline: no answer for %.1f s",
			        c->target, (double)silent / 1000);
		return;
	}
	if (rv != 0) {
		api_call_fail(c, rv == -ENOENT ? -ENOENT : -ENOTCONN,
		              rv == -ENOENT ? "no such cluster node '%s'"
		                            : "no connection to node '%s' yet",
		              c->target);
		return;
	}
	snprintf(method, sizeof method, "%.*s",
	         (int)(in->method_len < 15 ? in->method_len : 15), in->method);
	path = mem_alloc(in->path_len + 1);
	ctype = mem_alloc(in->content_type_len + 1);
	if (path == NULL || ctype == NULL) {
		mem_free(path);
		mem_free(ctype);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(path, in->path, in->path_len);
	path[in->path_len] = '\0';
	if (in->content_type != NULL)
		memcpy(ctype, in->content_type, in->content_type_len);
	ctype[in->content_type_len] = '\0';
	req.method = method;
	req.path = path;
	req.content_type = in->content_type != NULL ? ctype : NULL;
	req.has_body = in->body_len > 0;
	req.body.data = (uint8_t *)in->body;
	req.body.len = in->body_len;
	req.principal = c->principal;
	req.via = (char *)cl->node->config->node_name;
	len = protobuf_c_message_get_packed_size(&req.base);
	packed = mem_alloc(len + 1);
	if (packed == NULL) {
		rv = err_set(&e, -ENOMEM, "out of memory");
	} else {
		protobuf_c_message_pack(&req.base, packed);
		rv = rpc_call_start(&c->rpc, rpc_conn_session(conn),
		                    &forward_cbs, RPC_CALL_UNARY,
		                    "cairn.Node/ApiForward", packed, len,
		                    API_DEADLINE_MS - 500, &e);
	}
	mem_free(packed);
	mem_free(path);
	mem_free(ctype);
	if (rv != 0) {
		api_call_done(c, rv == -ENOMEM ? rv : -ENOTCONN, &e);
		return;
	}
	c->is_rpc_running = true;
	rpc_conn_kick(conn);
	/* Notice the target going offline well before the deadline. */
	uv_timer_start(&c->timer, on_call_timer, 250, 250);
}

/* ------------------------------------------------------------ view */

static void snap_free(struct view_snap *v)
{
	if (v == NULL)
		return;
	mem_free(v->guests);
	if (v->storage != NULL) /* rbd keys */
		explicit_bzero(v->storage, v->nstorage * sizeof *v->storage);
	mem_free(v->clients);
	mem_free(v->storage);
	mem_free(v->fingerprints);
	api_access_snap_free(v);
	mem_free(v);
}

static void text_copy(char *out, size_t size, const struct wire_value *v)
{
	if (v->type == WIRE_TEXT)
		snprintf(out, size, "%.*s", (int)v->text.len, v->text.ptr);
	else
		out[0] = '\0';
}

int api_query_array(struct db_client *client, const char *sql, size_t elem,
                    struct db_rows *rows, void **out, struct err *e)
{
	int rv = db_query(client, sql, NULL, 0, rows, e);

	if (rv != 0)
		return rv;
	*out = mem_calloc(rows->nrows + 1, elem);
	if (*out == NULL) {
		db_rows_free(rows);
		return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* On the DB thread: the rows of the view, parsed. */
static int load_run(struct db_client *client, struct db_op *op, struct err *e)
{
	struct node_api *a = op->data;
	struct view_snap *v = mem_calloc(1, sizeof *v);
	struct db_rows rows = {0};
	uint64_t i;
	int rv;

	if (v == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = db_query(client, "SELECT revision FROM cluster WHERE id = 1", NULL,
	              0, &rows, e);
	if (rv != 0)
		goto fail;
	v->revision =
	        rows.nrows > 0 ? (uint64_t)db_rows_at(&rows, 0, 0)->integer : 0;
	db_rows_free(&rows);

	rv = api_query_array(client,
	                     "SELECT g.vmid, g.type, g.node, g.config, g.lock, "
	                     "CASE WHEN h.sid IS NULL THEN NULL "
	                     "ELSE coalesce(s.state, h.state) END "
	                     "FROM guests g LEFT JOIN ha_resources h "
	                     "ON h.vmid = g.vmid LEFT JOIN ha_state s "
	                     "ON s.sid = h.sid ORDER BY g.vmid",
	                     sizeof *v->guests, &rows, (void **)&v->guests, e);
	if (rv != 0)
		goto fail;
	for (i = 0; i < rows.nrows; i++) {
		struct res_guest *g = &v->guests[v->nguests];
		const struct wire_value *cfg = db_rows_at(&rows, i, 3);
		struct err sub;

		g->vmid = (uint32_t)db_rows_at(&rows, i, 0)->integer;
		text_copy(g->type, sizeof g->type, db_rows_at(&rows, i, 1));
		text_copy(g->node, sizeof g->node, db_rows_at(&rows, i, 2));
		text_copy(g->lock, sizeof g->lock, db_rows_at(&rows, i, 4));
		text_copy(g->hastate, sizeof g->hastate,
		          db_rows_at(&rows, i, 5));
		if (cfg->type != WIRE_TEXT ||
		    res_guest_from_config(g, cfg->text.ptr, cfg->text.len,
		                          &sub) != 0)
			LOG_WARN("api", "guest config unreadable", "vmid=%u",
			         g->vmid);
		v->nguests++;
	}
	db_rows_free(&rows);

	rv = api_query_array(
	        client,
	        "SELECT id, type, content, shared, coalesce(nodes, ''), "
	        "disable, options, digest FROM storage ORDER BY id",
	        sizeof *v->storage, &rows, (void **)&v->storage, e);
	if (rv != 0)
		goto fail;
	for (i = 0; i < rows.nrows; i++) {
		struct res_storage *st = &v->storage[v->nstorage++];

		text_copy(st->id, sizeof st->id, db_rows_at(&rows, i, 0));
		text_copy(st->type, sizeof st->type, db_rows_at(&rows, i, 1));
		text_copy(st->content, sizeof st->content,
		          db_rows_at(&rows, i, 2));
		st->is_shared = db_rows_at(&rows, i, 3)->integer != 0;
		text_copy(st->nodes, sizeof st->nodes, db_rows_at(&rows, i, 4));
		st->is_disabled = db_rows_at(&rows, i, 5)->integer != 0;
		text_copy(st->options, sizeof st->options,
		          db_rows_at(&rows, i, 6));
		text_copy(st->digest, sizeof st->digest,
		          db_rows_at(&rows, i, 7));
	}
	db_rows_free(&rows);

	rv = db_query(client,
	              "SELECT substr(name, 17), value FROM cluster_secrets "
	              "WHERE name LIKE 'storage_keyring:%'",
	              NULL, 0, &rows, e);
	if (rv != 0)
		goto fail;
	for (i = 0; i < rows.nrows; i++) {
		char id[65];
		size_t k;

		text_copy(id, sizeof id, db_rows_at(&rows, i, 0));
		for (k = 0; k < v->nstorage; k++) {
			if (strcmp(v->storage[k].id, id) == 0)
				text_copy(v->storage[k].secret,
				          sizeof v->storage[k].secret,
				          db_rows_at(&rows, i, 1));
		}
	}
	db_rows_free(&rows);

	rv = api_query_array(client, "SELECT name, cert_fingerprint FROM nodes",
	                     sizeof *v->fingerprints, &rows,
	                     (void **)&v->fingerprints, e);
	if (rv != 0)
		goto fail;
	for (i = 0; i < rows.nrows; i++) {
		char fp[RPC_FINGERPRINT_MAX];

		text_copy(v->fingerprints[i].name,
		          sizeof v->fingerprints[i].name,
		          db_rows_at(&rows, i, 0));
		text_copy(fp, sizeof fp, db_rows_at(&rows, i, 1));
		res_fingerprint_colons(fp, v->fingerprints[i].fingerprint);
		v->nfingerprints++;
	}
	db_rows_free(&rows);

	/* storage_clients comes with schema 3, which waits until every
	 * member runs a cairn that has it: an upgraded node among older ones
	 * sees no such table and no clients. */
	rv = api_query_array(client,
	                     "SELECT storage, node, addr, boot_id, "
	                     "coalesce(fenced_at, 0), coalesce(fenced_by, '') "
	                     "FROM storage_clients ORDER BY storage, node",
	                     sizeof *v->clients, &rows, (void **)&v->clients,
	                     e);
	if (rv != 0 && strstr(e->msg, "no such table") != NULL)
		rv = api_query_array(client, "SELECT 1 WHERE 0",
		                     sizeof *v->clients, &rows,
		                     (void **)&v->clients, e);
	if (rv != 0)
		goto fail;
	for (i = 0; i < rows.nrows; i++) {
		struct view_client *vc = &v->clients[v->nclients++];

		text_copy(vc->storage, sizeof vc->storage,
		          db_rows_at(&rows, i, 0));
		text_copy(vc->node, sizeof vc->node, db_rows_at(&rows, i, 1));
		text_copy(vc->addr, sizeof vc->addr, db_rows_at(&rows, i, 2));
		text_copy(vc->boot_id, sizeof vc->boot_id,
		          db_rows_at(&rows, i, 3));
		vc->fenced_at = db_rows_at(&rows, i, 4)->integer;
		text_copy(vc->fenced_by, sizeof vc->fenced_by,
		          db_rows_at(&rows, i, 5));
	}
	db_rows_free(&rows);
	rv = api_access_load(client, v, e);
	if (rv != 0)
		goto fail;
	a->loading = v;
	return 0;
fail:
	db_rows_free(&rows);
	snap_free(v);
	return rv;
}

static void view_load(struct node_api *a);

static void call_continue(struct api_call *c);

static void load_done(struct db_op *op, int status)
{
	struct node_api *a = op->data;
	struct list waiting;
	size_t i;

	a->is_loading = false;
	if (status == 0) {
		snap_free(a->snap);
		a->snap = a->loading;
		a->loading = NULL;
		for (i = 0; i < CACHE_COUNT; i++) {
			mem_free(a->cache[i].body);
			a->cache[i].body = NULL;
		}
	} else {
		a->load_err = op->err;
		LOG_WARN("api", "cannot load the view", "error=\"%s\"",
		         op->err.msg);
	}
	/* Answer the waiters: from this load, or a stale snap when the DB
	 * cannot answer now (Proxmox's lists keep working without quorum). */
	list_init(&waiting);
	while (!list_is_empty(&a->waiters)) {
		struct list *l = list_pop_head(&a->waiters);

		list_insert_tail(&waiting, l);
	}
	while (!list_is_empty(&waiting)) {
		struct api_call *c = CAIRN_CONTAINER_OF(
		        list_pop_head(&waiting), struct api_call, wait_link);

		c->is_waiting = false;
		if (c->is_replied || a->cluster == NULL)
			api_call_fail(c, -ESHUTDOWN,
			              "the node is shutting down");
		else if (a->snap == NULL)
			api_call_fail(c, -ENOTCONN,
			              "the cluster database cannot answer: %s",
			              a->load_err.msg);
		else
			call_continue(c);
	}
	if (status == 0 && a->cluster != NULL && !a->is_stopping) {
		api_access_after_load(a);
		api_tasks_reconcile(a);
		api_storage_poll(a);
	}
	/* It moved on meanwhile: load again for the next requests. */
	if (status == 0 && a->cluster != NULL && !a->is_stopping &&
	    a->known_revision > a->snap->revision)
		view_load(a);
	api_maybe_stopped(a);
}

static void view_load(struct node_api *a)
{
	if (a->is_loading || a->cluster == NULL || a->cluster->db == NULL)
		return;
	a->load_op.data = a;
	if (db_submit(a->cluster->db, &a->load_op, load_run, load_done) != 0) {
		err_set(&a->load_err, -EAGAIN, "the database queue is full");
		return;
	}
	a->is_loading = true;
}

void node_api_on_revision(struct node_cluster *c, uint64_t revision)
{
	struct node_api *a = c->api;

	if (a == NULL || revision <= a->known_revision)
		return;
	a->known_revision = revision;
	if (a->snap != NULL && revision > a->snap->revision)
		view_load(a);
}

/* True when c must wait for a load of the view because the newest
 * revision we know is newer than the view (its route runs again then). A
 * call waits once: after that it takes what there is — a stale view
 * beats no answer when the DB cannot answer (no quorum). */
bool api_view_wait(struct api_call *c)
{
	struct node_api *a = c->a;

	if (c->has_waited ||
	    (a->snap != NULL && a->snap->revision >= a->known_revision))
		return false;
	view_load(a);
	if (!a->is_loading)
		return false;
	c->has_waited = true;
	list_insert_tail(&a->waiters, &c->wait_link);
	c->is_waiting = true;
	return true;
}

/* Fails c when there is no view at all; true then. */
bool api_view_missing(struct api_call *c)
{
	if (c->a->snap != NULL)
		return false;
	api_call_fail(c, -ENOTCONN, "the cluster database cannot answer: %s",
	              c->a->load_err.code != 0 ? c->a->load_err.msg
	                                       : "not loaded yet");
	return true;
}

/* The inputs of res_build from the snap and the live status. */
struct view_input {
	struct res_input in;
	struct res_node nodes[MEMBERS_MAX];
	uint64_t generation, online_mask;
};

static void view_input_fill(struct node_api *a, struct view_input *vi)
{
	const struct view_snap *v = a->snap;
	size_t i, j, n;

	n = node_status_res_nodes(a->cluster, vi->nodes, MEMBERS_MAX,
	                          &vi->generation, &vi->online_mask);
	for (i = 0; i < n; i++) {
		for (j = 0; j < v->nfingerprints; j++) {
			if (strcmp(v->fingerprints[j].name,
			           vi->nodes[i].name) == 0)
				memcpy(vi->nodes[i].fingerprint,
				       v->fingerprints[j].fingerprint,
				       sizeof vi->nodes[i].fingerprint);
		}
	}
	vi->in = (struct res_input){
	        .guests = v->guests,
	        .nguests = v->nguests,
	        .nodes = vi->nodes,
	        .nnodes = n,
	        .storage = v->storage,
	        .nstorage = v->nstorage,
	};
}

/* Answers from the cache entry `slot`, rebuilding it when the DB rows or
 * the live figures moved since it was built. */
/* Does the principal see everything (root, and its tokens without
 * privilege separation)? Then answers come from the shared cache. */
static bool sees_all(const struct api_call *c)
{
	return strcmp(c->who.userid, "root@pam") == 0 &&
	       (c->who.tokenid[0] == '\0' || !c->who.privsep);
}

/* Keeps the rows the principal may see, as Proxmox filters its lists:
 * nodes by Sys.Audit, storage by Datastore.Audit or AllocateSpace, guests
 * by VM.Audit. */
static json_t *rows_filter(struct api_call *c, json_t *rows)
{
	json_t *out = json_array(), *row;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		const char *type =
		        json_string_value(json_object_get(row, "type"));
		char path[160];
		const char *privs;

		if (type == NULL ||
		    (strcmp(type, "node") == 0 &&
		     json_string_value(json_object_get(row, "node")) == NULL) ||
		    (strcmp(type, "storage") == 0 &&
		     json_string_value(json_object_get(row, "storage")) ==
		             NULL))
			continue;
		if (strcmp(type, "node") == 0) {
			snprintf(path, sizeof path, "/nodes/%s",
			         json_string_value(
			                 json_object_get(row, "node")));
			privs = "Sys.Audit";
		} else if (strcmp(type, "storage") == 0) {
			snprintf(path, sizeof path, "/storage/%s",
			         json_string_value(
			                 json_object_get(row, "storage")));
			privs = "Datastore.Audit,Datastore.AllocateSpace";
		} else {
			snprintf(path, sizeof path, "/vms/%lld",
			         (long long)json_integer_value(
			                 json_object_get(row, "vmid")));
			privs = "VM.Audit";
		}
		if (api_access_can(c, path, privs))
			json_array_append(out, row);
	}
	json_decref(rows);
	return out;
}

static void reply_cached(struct api_call *c, unsigned slot,
                         enum res_filter filter)
{
	struct node_api *a = c->a;
	struct view_cache *vc = &a->cache[slot];
	struct view_input *vi = mem_alloc(sizeof *vi);
	struct api_reply tmp;
	struct err e;
	json_t *rows;
	int rv;

	if (vi == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	view_input_fill(a, vi);
	if (!sees_all(c)) {
		rows = slot == CACHE_NODES ? res_build_nodes(&vi->in)
		                           : res_build(&vi->in, filter);
		mem_free(vi);
		api_reply_json(c, rows != NULL ? rows_filter(c, rows) : NULL);
		return;
	}
	if (vc->body == NULL || vc->snap != a->snap ||
	    vc->generation != vi->generation ||
	    vc->online_mask != vi->online_mask) {
		rows = slot == CACHE_NODES ? res_build_nodes(&vi->in)
		                           : res_build(&vi->in, filter);
		memset(&tmp, 0, sizeof tmp);
		rv = rows != NULL ? api_reply_data(&tmp, rows, &e)
		                  : err_set(&e, -ENOMEM, "out of memory");
		if (rv != 0) {
			mem_free(vi);
			api_call_done(c, rv, &e);
			return;
		}
		mem_free(vc->body);
		vc->body = tmp.body;
		vc->len = tmp.body_len;
		vc->snap = a->snap;
		vc->generation = vi->generation;
		vc->online_mask = vi->online_mask;
	}
	mem_free(vi);
	api_reply_free(&c->reply);
	c->reply.status = 200;
	snprintf(c->reply.reason, sizeof c->reply.reason, "OK");
	c->reply.body = mem_alloc(vc->len + 1);
	if (c->reply.body == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(c->reply.body, vc->body, vc->len + 1);
	c->reply.body_len = vc->len;
	api_call_done(c, 0, &e);
}

/* ----------------------------------------------------------- routes */

static void route_version(struct api_call *c)
{
	Cairn__VersionResponse resp;

	proto_version_response_fill(&resp);
	api_reply_message(c, &resp.base);
}

static void route_cluster_status(struct api_call *c)
{
	Cairn__ClusterStatusResponse resp;
	struct node_status_storage *st = mem_alloc(sizeof *st);

	if (st == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	if (node_status_fill(c->a->cluster, &resp, st) != 0)
		api_call_fail(c, -ENOTCONN, "this node is not in a cluster");
	else
		api_reply_message(c, &resp.base);
	mem_free(st);
}

static void route_cluster_resources(struct api_call *c)
{
	const Cairn__ClusterResourcesRequest *q = (const void *)c->msg;
	enum res_filter filter;

	if (res_filter_parse(q->type, &filter) != 0) {
		json_object_set_new(c->errors, "type",
		                    json_string("value does not have a value "
		                                "in the enumeration 'vm, "
		                                "storage, node, sdn'"));
		api_call_fail(c, -EINVAL, "type: not vm, storage, node or sdn");
		return;
	}
	if (api_view_wait(c))
		return;
	if (api_view_missing(c))
		return;
	reply_cached(c, CACHE_RES_ALL + (unsigned)filter, filter);
}

static void route_nodes(struct api_call *c)
{
	if (api_view_wait(c))
		return;
	if (api_view_missing(c))
		return;
	reply_cached(c, CACHE_NODES, RES_ALL);
}

/* Proxmox's default range of guest ids (datacenter.cfg next-id). */
#define VMID_LOWER 100
#define VMID_UPPER 1000000

static void route_cluster_nextid(struct api_call *c)
{
	const Cairn__ClusterNextIdRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	char text[48];
	uint32_t id = VMID_LOWER;
	size_t i;

	if (q->has_vmid && (q->vmid < VMID_LOWER || q->vmid > 999999999)) {
		json_object_set_new(
		        c->errors, "vmid",
		        json_string(q->vmid < VMID_LOWER
		                            ? "value must have a minimum "
		                              "value of 100"
		                            : "value must have a maximum "
		                              "value of 999999999"));
		api_call_fail(c, -EINVAL, "vmid: out of range");
		return;
	}
	if (api_view_wait(c))
		return;
	if (api_view_missing(c))
		return;
	v = c->a->snap;
	if (q->has_vmid) {
		for (i = 0; i < v->nguests; i++) {
			if (v->guests[i].vmid == q->vmid) {
				snprintf(text, sizeof text,
				         "VM %u already exists", q->vmid);
				json_object_set_new(c->errors, "vmid",
				                    json_string(text));
				api_call_fail(c, -EINVAL, "vmid: %s", text);
				return;
			}
		}
		id = q->vmid;
	} else {
		/* guests are sorted by vmid: the first gap from 100 up. */
		for (i = 0; i < v->nguests; i++) {
			if (v->guests[i].vmid < id)
				continue;
			if (v->guests[i].vmid > id)
				break;
			id++;
		}
		if (id >= VMID_UPPER) {
			api_call_fail(
			        c, -ENOSPC,
			        "unable to get any free VMID in range [%d, "
			        "%d]",
			        VMID_LOWER, VMID_UPPER);
			return;
		}
	}
	snprintf(text, sizeof text, "%u", id);
	api_reply_json(c, json_string(text));
}

/* GET /nodes/{node}/qemu, /lxc: empty until the VM and CT issues. */
static void route_node_guests(struct api_call *c)
{
	api_reply_json(c, json_array());
}

/* GET /nodes/{node}/status, Proxmox's shape, answered by that node. */
static void route_node_status(struct api_call *c)
{
	struct node_api *a = c->a;
	struct host_stat s;
	char load[3][16], pveversion[96];
	struct err e;
	json_t *data;
	double cpu;
	int i;

	if (host_stat_read(&s, &e) != 0) {
		api_call_done(c, e.code, &e);
		return;
	}
	/* CPU use over the last second, as the status channel measures it. */
	cpu = node_status_own_cpu(a->cluster);
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
	api_reply_json(c, data);
}

/* GET /cairn/routes: every route with the permission it declares (what
 * the privilege tests walk, and documentation). */
static void route_routes(struct api_call *c);

#define DEF(name, req, fn, local, flags, path, privs) \
	static const struct route_def name = {        \
	        &cairn__##req##__descriptor, fn, local, {flags, path, privs}}

DEF(def_version, version_request, route_version, false, PERM_USER, NULL, NULL);
DEF(def_cluster_status, cluster_status_request, route_cluster_status, false, 0,
    "/", "Sys.Audit");
/* Lists answer every authenticated principal and show only what it may
 * see (Proxmox's filtering). */
DEF(def_cluster_resources, cluster_resources_request, route_cluster_resources,
    false, PERM_USER, NULL, NULL);
DEF(def_cluster_nextid, cluster_next_id_request, route_cluster_nextid, false,
    PERM_USER, NULL, NULL);
DEF(def_nodes, nodes_request, route_nodes, false, PERM_USER, NULL, NULL);
DEF(def_node_guests, node_guests_request, route_node_guests, true, PERM_USER,
    NULL, NULL);
DEF(def_node_lxc, node_lxc_request, route_node_guests, true, PERM_USER, NULL,
    NULL);
DEF(def_node_status, node_status_request, route_node_status, true, 0,
    "/nodes/{node}", "Sys.Audit");
DEF(def_routes, routes_request, route_routes, false, PERM_USER, NULL, NULL);

static const struct api_route routes[] = {
        {API_GET, "/version", &def_version},
        {API_GET, "/cluster/status", &def_cluster_status},
        {API_GET, "/cluster/resources", &def_cluster_resources},
        {API_GET, "/cluster/nextid", &def_cluster_nextid},
        {API_GET, "/nodes", &def_nodes},
        {API_GET, "/nodes/{node}/status", &def_node_status},
        {API_GET, "/nodes/{node}/qemu", &def_node_guests},
        {API_GET, "/nodes/{node}/lxc", &def_node_lxc},
        {API_GET, "/cairn/routes", &def_routes},
};

/* routes[] and the other files' tables, joined at the first start. */
#define ROUTES_MAX 128
static struct api_route all_routes[ROUTES_MAX];
static size_t nall_routes;

static void routes_join(void)
{
	size_t i;

	if (nall_routes > 0)
		return;
	CAIRN_ASSERT(CAIRN_ARRAY_SIZE(routes) + api_access_nroutes +
	                     api_task_nroutes + api_storage_nroutes +
	                     api_storage_transfer_nroutes + api_fence_nroutes <=
	             ROUTES_MAX);
	for (i = 0; i < CAIRN_ARRAY_SIZE(routes); i++)
		all_routes[nall_routes++] = routes[i];
	for (i = 0; i < api_access_nroutes; i++)
		all_routes[nall_routes++] = api_access_routes[i];
	for (i = 0; i < api_task_nroutes; i++)
		all_routes[nall_routes++] = api_task_routes[i];
	for (i = 0; i < api_storage_nroutes; i++)
		all_routes[nall_routes++] = api_storage_routes[i];
	for (i = 0; i < api_storage_transfer_nroutes; i++)
		all_routes[nall_routes++] = api_storage_transfer_routes[i];
	for (i = 0; i < api_fence_nroutes; i++)
		all_routes[nall_routes++] = api_fence_routes[i];
	for (i = 0; i < nall_routes; i++) {
		const struct route_def *d = all_routes[i].handler;

		/* Every route declares who may call it. */
		CAIRN_ASSERT(d->perm.flags != 0 || d->perm.privs != NULL);
		CAIRN_ASSERT(d->perm.privs == NULL || d->perm.path != NULL);
	}
}

static void route_routes(struct api_call *c)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; list != NULL && i < nall_routes; i++) {
		const struct route_def *d = all_routes[i].handler;
		json_t *perm = json_object(), *row;

		if (perm == NULL)
			break;
		if (d->perm.flags & PERM_PUBLIC)
			json_object_set_new(perm, "public", json_integer(1));
		if (d->perm.flags & PERM_USER)
			json_object_set_new(perm, "user", json_integer(1));
		if (d->perm.flags & PERM_SELF)
			json_object_set_new(perm, "self", json_integer(1));
		if (d->perm.flags & PERM_ROOT)
			json_object_set_new(perm, "root", json_integer(1));
		if (d->perm.flags & PERM_OWNER)
			json_object_set_new(perm, "owner", json_integer(1));
		if (d->perm.privs != NULL)
			json_object_set_new(perm, "check",
			                    json_pack("[s,s]", d->perm.path,
			                              d->perm.privs));
		row = json_pack("{s:s, s:s, s:o}", "method",
		                api_method_name(all_routes[i].method), "path",
		                all_routes[i].path, "permissions", perm);
		if (row == NULL || json_array_append_new(list, row) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	api_reply_json(c, list);
}

/* ----------------------------------------------------------- requests */

static void run_route(struct api_call *c)
{
	if (c->a->cluster == NULL) {
		api_call_fail(c, -ESHUTDOWN, "the node is shutting down");
		return;
	}
	snprintf(c->answered_by, sizeof c->answered_by, "%s",
	         c->a->cluster->node->config->node_name);
	c->def->fn(c);
}

/* Field names Proxmox spells with '-', which proto identifiers cannot. */
static const struct proto_json_override renames[] = {
        {"cairn.AccessTicketRequest", "new_format", PROTO_JSON_RENAME,
         "new-format"},
        {"cairn.AccessTicketRequest", "tfa_challenge", PROTO_JSON_RENAME,
         "tfa-challenge"},
        {"cairn.AccessPasswordRequest", "confirmation_password",
         PROTO_JSON_RENAME, "confirmation-password"},
        {"cairn.StorageUploadRequest", "checksum_algorithm", PROTO_JSON_RENAME,
         "checksum-algorithm"},
        {"cairn.StorageUploadRequest", "verify_certificates", PROTO_JSON_RENAME,
         "verify-certificates"},
};

/* After the route is known: authenticate, check the permission, decode
 * the parameters, then forward or run. Runs again after a wait for the
 * view. */
static void call_continue(struct api_call *c)
{
	struct proto_json_options opts = {
	        .overrides = renames,
	        .n_overrides = CAIRN_ARRAY_SIZE(renames),
	        .strings_are_values = true,
	};
	struct node_api *a = c->a;
	struct err e;
	int rv;

	if (c->is_replied || a->cluster == NULL) {
		api_call_fail(c, -ESHUTDOWN, "the node is shutting down");
		return;
	}
	if (c->req == NULL && c->fwd == NULL) {
		/* The client went away while we waited: c->in points into
		 * the request h2o freed. */
		api_call_fail(c, -ECONNRESET, "the client went away");
		return;
	}
	if (c->msg != NULL) { /* a route that waited for the view */
		run_route(c);
		return;
	}
	if (!c->is_authorized) {
		if (!api_access_authorize(c))
			return;
		c->is_authorized = true;
	}
	rv = proto_json_to_message(c->def->request, c->match.params, &opts,
	                           &c->msg, c->errors, &e);
	if (rv != 0) {
		if (!(rv == -EINVAL && json_object_size(c->errors) > 0))
			rv = rv == -ENOMEM ? rv : -EINVAL;
		api_call_done(c, rv, &e);
		return;
	}
	if (c->def->is_node_local) {
		const char *node = json_string_value(
		        json_object_get(c->match.params, "node"));
		const char *upid = json_string_value(
		        json_object_get(c->match.params, "upid"));
		struct task_upid u;

		/* A task is answered by the node in its UPID, whichever
		 * {node} the client put in the path (Ansible uses the
		 * guest's node, Terraform the UPID's). */
		if (upid != NULL && task_upid_parse(upid, &u, &e) == 0)
			node = u.node;

		if (node == NULL || !node_status_has_member(a->cluster, node)) {
			api_call_fail(c, -ENOENT, "no such cluster node '%s'",
			              node != NULL ? node : "");
			return;
		}
		if (strcmp(node, a->cluster->node->config->node_name) != 0) {
			if (c->fwd != NULL && !c->is_local && !c->is_remote) {
				api_call_fail(
				        c, -EPROTO,
				        "node '%s' was asked for node "
				        "'%s': not forwarding twice",
				        a->cluster->node->config->node_name,
				        node);
				return;
			}
			snprintf(c->target, sizeof c->target, "%s", node);
			forward(c, &c->in);
			return;
		}
	}
	run_route(c);
}

/* Routes one request (the request's memory stays valid until it is
 * answered), then goes on with call_continue. */
static void call_start(struct api_call *c, const struct api_request *in)
{
	struct node_api *a = c->a;
	struct err e;
	int rv;

	c->in = *in;
	c->started_ms = api_now_ms();
	c->is_running = true;
	if (a->cluster != NULL)
		snprintf(c->answered_by, sizeof c->answered_by, "%s",
		         a->cluster->node->config->node_name);
	uv_timer_start(&c->timer, on_call_timer, API_DEADLINE_MS, 0);
	rv = api_route_resolve(all_routes, nall_routes, in, &c->match,
	                       c->errors, &e);
	if (rv != 0) {
		int status = rv == -ENOENT || rv == -ENOTSUP ? 501
		             : rv == -ENAMETOOLONG           ? 414
		             : rv == -EPROTONOSUPPORT        ? 415
		             : rv == -ENOMEM                 ? 500
		                                             : 400;

		if (rv == -EINVAL && json_object_size(c->errors) > 0) {
			api_call_done(c, rv, &e);
			return;
		}
		api_reply_error(&c->reply, status, e.msg, &e);
		api_call_done(c, 0, &e);
		return;
	}
	c->has_match = true;
	c->def = c->match.route->handler;
	call_continue(c);
}

static struct api_call *call_new(struct node_api *a)
{
	struct api_call *c = mem_calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->errors = json_object();
	if (c->errors == NULL) {
		mem_free(c);
		return NULL;
	}
	c->a = a;
	list_init(&c->wait_link);
	uv_timer_init(a->listener.loop, &c->timer);
	c->timer.data = c;
	a->ncalls++;
	return c;
}

static h2o_iovec_t header_value(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t i = h2o_find_header(&req->headers, token, -1);

	return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* A copy of a header's value (the first of that name; h2o lower-cases
 * names), NULL when absent or over 4 KiB. */
static char *header_copy(h2o_req_t *req, const char *name)
{
	ssize_t i =
	        h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
	h2o_iovec_t v;
	char *out;

	if (i < 0)
		return NULL;
	v = req->headers.entries[i].value;
	if (v.len > 4096)
		return NULL;
	out = mem_alloc(v.len + 1);
	if (out != NULL) {
		memcpy(out, v.base, v.len);
		out[v.len] = '\0';
	}
	return out;
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
	struct api_call *c = a->is_disposed ? NULL : call_new(a);

	if (c == NULL) {
		h2o_send_error_500(req, "Internal Server Error",
		                   "out of memory", 0);
		return 0;
	}
	c->req = req;
	c->req_ref = h2o_mem_alloc_shared(&req->pool, sizeof *c->req_ref,
	                                  on_req_disposed);
	*c->req_ref = c;
	c->authorization = header_copy(req, "authorization");
	c->cookie = header_copy(req, "cookie");
	c->csrf = header_copy(req, "csrfpreventiontoken");
	call_start(c, &in);
	return 0;
}

enum rpc_mode { RPC_FORWARDED, RPC_LOCAL, RPC_REMOTE };
static void api_rpc_call(struct node_req *r, enum rpc_mode mode);

/* cairn.Node/ApiForward: a REST request another node received for us. */
void node_api_forward(struct node_req *r)
{
	api_rpc_call(r, RPC_FORWARDED);
}

/* cairn.Api/Call, on the local socket: root on this node uses the REST
 * API as root@pam (Proxmox's pvesh), `cairn api` and the bootstrap of
 * the first credentials. */
void node_api_local(struct node_req *r)
{
	api_rpc_call(r, RPC_LOCAL);
}

/* cairn.Api/Remote, on the TLS RPC port for anyone: a REST request from
 * `cairn --host`, authenticated by the credential it carries (an API
 * token, as in an Authorization header) exactly as over HTTPS. */
void node_api_remote(struct node_req *r)
{
	api_rpc_call(r, RPC_REMOTE);
}

static void api_rpc_call(struct node_req *r, enum rpc_mode mode)
{
	const Cairn__ApiForwardRequest *q = (const void *)r->request;
	struct node_cluster *cl = r->node->cluster;
	struct node_api *a = cl != NULL ? cl->api : NULL;
	struct api_call *c;
	struct api_request in;

	if (a == NULL || a->cluster == NULL || a->is_stopping) {
		node_req_fail(r, RPC_STATUS_UNAVAILABLE,
		              "the REST API of this node is not running");
		return;
	}
	if (q->method == NULL || q->path == NULL) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "method and path are required");
		return;
	}
	c = call_new(a);
	if (c == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	c->fwd = r;
	c->is_local = mode == RPC_LOCAL;
	c->is_remote = mode == RPC_REMOTE;
	if (c->is_remote) {
		size_t n = q->principal != NULL ? strlen(q->principal) : 0;

		c->authorization = n > 0 && n <= 4096 ? mem_alloc(n + 1) : NULL;
		if (c->authorization != NULL)
			memcpy(c->authorization, q->principal, n + 1);
	} else {
		snprintf(c->principal, sizeof c->principal, "%s",
		         c->is_local            ? "root@pam"
		         : q->principal != NULL ? q->principal
		                                : "");
	}
	in = (struct api_request){
	        .method = q->method,
	        .method_len = strlen(q->method),
	        .path = q->path,
	        .path_len = strlen(q->path),
	        .content_type = q->content_type,
	        .content_type_len =
	                q->content_type != NULL ? strlen(q->content_type) : 0,
	        .body = q->has_body ? (const char *)q->body.data : NULL,
	        .body_len = q->has_body ? q->body.len : 0,
	};
	call_start(c, &in);
}

/* -------------------------------------------------------- connections */

static void on_conn_closed(uv_handle_t *h)
{
	struct api_conn *conn =
	        CAIRN_CONTAINER_OF((uv_tcp_t *)h, struct api_conn, tcp);
	struct node_api *a = conn->api;

	mem_free(conn);
	a->nconns--;
	api_maybe_stopped(a);
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

/* The API's own headers on static files (content type by extension). */
static h2o_headers_command_t static_headers[] = {
        {H2O_HEADERS_CMD_SET,
         &H2O_TOKEN_CACHE_CONTROL->buf,
         {H2O_STRLIT("max-age=0")}},
        {H2O_HEADERS_CMD_NULL, NULL, {NULL, 0}},
};

static void api_free(struct node_api *a)
{
	size_t i;

	for (i = 0; i < CACHE_COUNT; i++)
		mem_free(a->cache[i].body);
	snap_free(a->snap);
	snap_free(a->loading);
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

	routes_join();
	CAIRN_ASSERT(api_route_table_check(all_routes, nall_routes, e) == 0);
	rv = parse_listen(cfg->api_listen, &ss, e);
	if (rv != 0)
		return rv;
	a = mem_calloc(1, sizeof *a);
	if (a == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	a->cluster = c;
	list_init(&a->waiters);
	list_init(&a->tasks);
	list_init(&a->busy_volumes);
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
	if (cfg->api_static_dir != NULL) {
		/* The benchmark's ceiling: the same listener, TLS and headers
		 * with h2o's own file handler. */
		path = h2o_config_register_path(host, "/static", 0);
		h2o_file_register(path, cfg->api_static_dir, NULL, NULL, 0);
		h2o_headers_register(path, static_headers);
	}
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
	view_load(a);
	api_storage_start(a);
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

void api_maybe_stopped(struct node_api *a)
{
	void (*cb)(struct node_cluster * c) = a->stopped_cb;
	struct node_cluster *c = a->cluster;

	if (!a->is_stopping || a->has_listener)
		return;
	/* The cluster may go on once no request can reach it, even if
	 * connections linger past the drain time: they get 503s. */
	if (c != NULL && ((a->nconns == 0 && a->ncalls == 0) ||
	                  !uv_is_active((uv_handle_t *)&a->drain_timer))) {
		a->cluster = NULL;
		c->api = NULL;
		a->stopped_cb = NULL;
		if (cb != NULL)
			cb(c);
	}
	if (a->nconns > 0 || a->ncalls > 0 || a->is_loading || a->ntasks > 0 ||
	    a->is_reconciling || a->is_keys_running || a->is_storage_polling ||
	    a->is_fence_recording || a->nbackground > 0 || a->is_disposed)
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
	if (a->has_storage_timer)
		uv_close((uv_handle_t *)&a->storage_timer, NULL);
	uv_close((uv_handle_t *)&a->drain_timer, on_drain_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct node_api *a = h->data;

	a->has_listener = false;
	api_maybe_stopped(a);
}

static void on_drain_timer(uv_timer_t *t)
{
	struct node_api *a = t->data;

	LOG_INFO("api", "stopping with connections open", "connections=%u",
	         a->nconns);
	api_maybe_stopped(a);
}

void node_api_stop(struct node_cluster *c, void (*cb)(struct node_cluster *c))
{
	struct node_api *a = c->api;

	CAIRN_ASSERT(a != NULL && !a->is_stopping);
	a->is_stopping = true;
	a->stopped_cb = cb;
	api_tasks_stop(a);
	api_storage_stop(a);
	/* HTTP/1 connections close after their current response, HTTP/2
	 * ones get GOAWAY. */
	if (a->has_ctx)
		h2o_context_request_shutdown(&a->ctx);
	uv_timer_start(&a->drain_timer, on_drain_timer, API_DRAIN_MS, 0);
	uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}

/* ---------------------------------------- RPCs that are not REST calls */

/* cairn.Storage/Upload and other streams: an api_call of its own, so that
 * the credential, the permission, the view and the parameters are checked
 * by the very code that checks REST calls. */
int api_call_run_rpc(struct node_req *r, const struct api_route *route,
                     json_t *params, const char *credential,
                     void (*on_reply)(struct api_call *c), void *ctx,
                     struct err *e)
{
	struct node_cluster *cl = r->node->cluster;
	struct node_api *a = cl != NULL ? cl->api : NULL;
	struct api_call *c;

	if (a == NULL || a->cluster == NULL || a->is_stopping) {
		json_decref(params);
		return err_set(e, -ESHUTDOWN,
		               "the REST API of this node is not running");
	}
	c = call_new(a);
	if (c == NULL) {
		json_decref(params);
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->fwd = r;
	c->on_reply = on_reply;
	c->ctx = ctx;
	c->is_local = r->peer->is_local;
	c->is_remote = !c->is_local;
	if (c->is_remote) {
		size_t n = credential != NULL ? strlen(credential) : 0;

		c->authorization = n > 0 && n <= 4096 ? mem_alloc(n + 1) : NULL;
		if (c->authorization != NULL)
			memcpy(c->authorization, credential, n + 1);
	} else {
		snprintf(c->principal, sizeof c->principal, "root@pam");
	}
	c->started_ms = api_now_ms();
	c->is_running = true;
	snprintf(c->answered_by, sizeof c->answered_by, "%s",
	         a->cluster->node->config->node_name);
	uv_timer_start(&c->timer, on_call_timer, API_DEADLINE_MS, 0);
	c->match.route = route;
	c->match.params = params;
	snprintf(c->match.path, sizeof c->match.path, "%s", route->path);
	c->has_match = true;
	c->def = route->handler;
	call_continue(c);
	return 0;
}
