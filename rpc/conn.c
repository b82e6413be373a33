/* RPC connections: a session bound to a TLS or unix-socket transport, the
 * servers that accept them, clients, and one-shot unary calls.
 *
 * A connection processes its session from the loop only: after bytes
 * arrive, after its transport drained, and when kicked (rpc_conn_kick,
 * a zero-delay timer) — never inside a call of the owner, so session
 * callbacks never re-enter the owner. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/proto.h"
#include "rpc/rpc.h"

#define PIPE_CHUNK           65536
#define TRANSPORT_HIGH_WATER ((size_t)1 << 20)

struct rpc_conn {
	uv_loop_t *loop;
	struct rpc_server *server;   /* NULL for clients */
	struct list link;            /* server's connections */
	struct rpc_session *session; /* once the transport is ready */
	struct rpc_tls_conn *tls;    /* TLS transport, until it closed */
	uv_pipe_t pipe;              /* unix transport */
	bool is_unix;
	bool has_pipe;
	uv_timer_t timer; /* kicks and deadlines */
	unsigned handles; /* timer, pipe, tls */
	bool is_closing;
	bool is_processing;
	struct rpc_peer peer;
	rpc_conn_cb on_ready, on_closed;
	void *data;
	int close_status;
	char error[ERR_MSG_MAX];
};

struct rpc_server {
	struct rpc_server_config config;
	char unix_path[108];
	uv_tcp_t tcp;
	uv_pipe_t unix_listener;
	bool has_tcp, has_unix;
	struct list conns;
	unsigned handles;
	bool is_stopping;
	void (*stop_cb)(void *data);
	void *stop_data;
};

static void server_maybe_stopped(struct rpc_server *s)
{
	if (!s->is_stopping || s->handles > 0 || !list_is_empty(&s->conns))
		return;
	if (s->stop_cb != NULL)
		s->stop_cb(s->stop_data);
	mem_free(s);
}

static void conn_free(struct rpc_conn *c)
{
	struct rpc_server *server = c->server;

	if (c->session != NULL) {
		rpc_session_close(c->session,
		                  c->error[0] ? c->error : "connection closed");
		rpc_session_process(c->session); /* calls end UNAVAILABLE */
		rpc_session_destroy(c->session);
	}
	if (c->on_closed != NULL)
		c->on_closed(c, c->close_status < 0 ? c->close_status : -EPIPE,
		             c->data);
	if (server != NULL)
		list_remove(&c->link);
	mem_free(c);
	if (server != NULL)
		server_maybe_stopped(server);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rpc_conn *c = h->data;

	if (--c->handles == 0)
		conn_free(c);
}

static void conn_fail(struct rpc_conn *c, int status, const char *why)
{
	if (c->is_closing)
		return;
	c->is_closing = true;
	c->close_status = status;
	if (why != NULL && c->error[0] == '\0')
		snprintf(c->error, sizeof c->error, "%s", why);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (c->tls != NULL)
		rpc_tls_conn_close(c->tls); /* its on_close drops a handle */
	if (c->has_pipe) {
		c->has_pipe = false;
		uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
	}
}

void rpc_conn_close(struct rpc_conn *c)
{
	conn_fail(c, 0, "closed");
}

/* ------------------------------------------------------- transport out */

struct pipe_write {
	uv_write_t req;
	struct rpc_conn *conn;
	char data[];
};

static void process(struct rpc_conn *c);

static void on_pipe_written(uv_write_t *req, int status)
{
	struct pipe_write *w = CAIRN_CONTAINER_OF(req, struct pipe_write, req);
	struct rpc_conn *c = w->conn;

	mem_free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			conn_fail(c, status, uv_strerror(status));
		return;
	}
	if (!c->is_closing &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) == 0)
		rpc_conn_kick(c); /* the session may have more to send */
}

static size_t transport_pending(struct rpc_conn *c)
{
	if (c->is_unix)
		return c->has_pipe ? uv_stream_get_write_queue_size(
		                             (uv_stream_t *)&c->pipe)
		                   : 0;
	return c->tls != NULL ? rpc_tls_conn_pending(c->tls) : 0;
}

static int transport_write(struct rpc_conn *c, const char *data, size_t len)
{
	struct err e;

	if (c->is_unix) {
		struct pipe_write *w = mem_alloc(sizeof *w + len);
		uv_buf_t b;

		if (w == NULL)
			return -ENOMEM;
		w->conn = c;
		memcpy(w->data, data, len);
		b = uv_buf_init(w->data, (unsigned)len);
		if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1,
		             on_pipe_written) != 0) {
			mem_free(w);
			return -EPIPE;
		}
		return 0;
	}
	return rpc_tls_conn_write(c->tls, data, len, &e);
}

static void on_timer(uv_timer_t *t)
{
	process(t->data);
}

void rpc_conn_kick(struct rpc_conn *c)
{
	if (c->is_closing)
		return;
	uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* Delivers session events, then moves its output to the transport while
 * the transport keeps up. */
static void process(struct rpc_conn *c)
{
	struct buf *out;
	uint64_t at, now;

	if (c->session == NULL || c->is_closing || c->is_processing)
		return;
	c->is_processing = true;
	rpc_session_expire(c->session);
	rpc_session_process(c->session);
	out = rpc_session_output(c->session);
	while (out->len > 0 && !c->is_closing) {
		if (transport_write(c, out->data, out->len) != 0) {
			conn_fail(c, -EPIPE, "write failed");
			break;
		}
		buf_reset(out);
		if (transport_pending(c) > TRANSPORT_HIGH_WATER)
			break; /* resumed when the transport drains */
		rpc_session_process(c->session);
		out = rpc_session_output(c->session);
	}
	c->is_processing = false;
	if (c->is_closing)
		return;
	if (rpc_session_next_deadline(c->session, &at)) {
		now = clock_mono_ms(clock_real());
		uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
	}
}

/* -------------------------------------------------------- transport in */

static void feed(struct rpc_conn *c, const char *data, size_t len)
{
	struct err e;

	if (c->session == NULL || c->is_closing)
		return;
	if (rpc_session_feed(c->session, data, len, &e) != 0) {
		LOG_WARN("rpc", "protocol error, closing",
		         "peer=\"%s\" error=\"%s\"",
		         c->peer.name[0] ? c->peer.name : c->peer.address,
		         e.msg);
		conn_fail(c, -EPROTO, e.msg);
		return;
	}
	process(c);
}

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char scratch[PIPE_CHUNK];

	(void)h;
	(void)suggested;
	*b = uv_buf_init(scratch, sizeof scratch);
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct rpc_conn *c = s->data;

	if (nread < 0) {
		conn_fail(c, nread == UV_EOF ? -EPIPE : (int)nread,
		          nread == UV_EOF ? "closed by the peer"
		                          : uv_strerror((int)nread));
		return;
	}
	if (nread > 0)
		feed(c, b->base, (size_t)nread);
}

static void on_tls_data(struct rpc_tls_conn *t, const char *data, size_t len)
{
	feed(rpc_tls_conn_data(t), data, len);
}

static void on_tls_drain(struct rpc_tls_conn *t)
{
	struct rpc_conn *c = rpc_tls_conn_data(t);

	rpc_conn_kick(c);
}

static void on_tls_close(struct rpc_tls_conn *t, int status)
{
	struct rpc_conn *c = rpc_tls_conn_data(t);

	if (c->error[0] == '\0' && rpc_tls_conn_error(t)[0] != '\0')
		snprintf(c->error, sizeof c->error, "%s",
		         rpc_tls_conn_error(t));
	c->tls = NULL;
	conn_fail(c, status < 0 ? status : -EPIPE, NULL);
	if (--c->handles == 0)
		conn_free(c);
}

static int session_start(struct rpc_conn *c, enum rpc_role role)
{
	struct rpc_session_config sc = {.role = role, .data = c};
	struct err e;

	if (role == RPC_ROLE_SERVER)
		sc.on_call = c->server->config.on_call;
	if (rpc_session_create(&sc, &c->session, &e) != 0) {
		conn_fail(c, e.code, e.msg);
		return e.code;
	}
	return 0;
}

static void on_tls_ready(struct rpc_tls_conn *t)
{
	struct rpc_conn *c = rpc_tls_conn_data(t);

	snprintf(c->peer.name, sizeof c->peer.name, "%s",
	         rpc_tls_conn_peer_name(t));
	snprintf(c->peer.fingerprint, sizeof c->peer.fingerprint, "%s",
	         rpc_tls_conn_peer_fingerprint(t));
	if (session_start(c, c->server != NULL ? RPC_ROLE_SERVER
	                                       : RPC_ROLE_CLIENT) != 0)
		return;
	if (c->on_ready != NULL)
		c->on_ready(c, 0, c->data);
	process(c);
}

static const struct rpc_tls_conn_cbs tls_cbs = {
        .on_ready = on_tls_ready,
        .on_data = on_tls_data,
        .on_close = on_tls_close,
};

static struct rpc_conn *conn_new(uv_loop_t *loop, struct rpc_server *server)
{
	struct rpc_conn *c = mem_calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->server = server;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles = 1;
	if (server != NULL)
		list_insert_tail(&server->conns, &c->link);
	return c;
}

/* ------------------------------------------------------------- servers */

static void on_tcp_connection(uv_stream_t *listener, int status)
{
	struct rpc_server *s = listener->data;
	struct sockaddr_storage sa;
	int len = sizeof sa;
	struct rpc_conn *c;
	struct err e;

	if (status < 0 || s->is_stopping)
		return;
	c = conn_new(s->config.loop, s);
	if (c == NULL)
		return;
	if (rpc_tls_conn_create(s->config.tls, s->config.loop, &tls_cbs, c,
	                        &c->tls, &e) != 0) {
		conn_fail(c, e.code, e.msg);
		return;
	}
	c->handles++;
	rpc_tls_conn_set_drain_cb(c->tls, on_tls_drain);
	if (uv_accept(listener, rpc_tls_conn_stream(c->tls)) != 0) {
		conn_fail(c, -ECONNABORTED, "accept failed");
		return;
	}
	if (uv_tcp_getpeername((uv_tcp_t *)rpc_tls_conn_stream(c->tls),
	                       (struct sockaddr *)&sa, &len) == 0) {
		char ip[48] = "";

		if (sa.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
		else
			uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
		snprintf(c->peer.address, sizeof c->peer.address, "%s", ip);
	}
	rpc_tls_conn_start(c->tls, &e);
}

static void on_unix_connection(uv_stream_t *listener, int status)
{
	struct rpc_server *s = listener->data;
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct rpc_conn *c;
	uv_os_fd_t fd;

	if (status < 0 || s->is_stopping)
		return;
	c = conn_new(s->config.loop, s);
	if (c == NULL)
		return;
	c->is_unix = true;
	uv_pipe_init(s->config.loop, &c->pipe, 0);
	c->pipe.data = c;
	c->has_pipe = true;
	c->handles++;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		conn_fail(c, -ECONNABORTED, "accept failed");
		return;
	}
	/* The local socket is root's (and ours, for tests run as a user). */
	if (cred.uid != 0 && cred.uid != geteuid()) {
		LOG_WARN("rpc", "local connection refused", "uid=%u pid=%d",
		         (unsigned)cred.uid, (int)cred.pid);
		conn_fail(c, -EACCES, "not root");
		return;
	}
	c->peer.is_local = true;
	c->peer.uid = cred.uid;
	snprintf(c->peer.name, sizeof c->peer.name, "uid %u",
	         (unsigned)cred.uid);
	if (session_start(c, RPC_ROLE_SERVER) != 0)
		return;
	uv_read_start((uv_stream_t *)&c->pipe, on_pipe_alloc, on_pipe_read);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct rpc_server *s = h->data;

	s->handles--;
	server_maybe_stopped(s);
}

int rpc_server_start(const struct rpc_server_config *cfg,
                     struct rpc_server **out, struct err *e)
{
	struct sockaddr_storage sa;
	struct rpc_server *s;
	char host[64];
	const char *colon;
	int rv = 0;

	s = mem_calloc(1, sizeof *s);
	if (s == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	s->config = *cfg;
	list_init(&s->conns);
	if (cfg->tcp_listen != NULL) {
		colon = strrchr(cfg->tcp_listen, ':');
		rv = -EINVAL;
		if (colon != NULL &&
		    (size_t)(colon - cfg->tcp_listen) < sizeof host) {
			snprintf(host, sizeof host, "%.*s",
			         (int)(colon - cfg->tcp_listen),
			         cfg->tcp_listen);
			rv = uv_ip4_addr(host, atoi(colon + 1),
			                 (struct sockaddr_in *)&sa);
		}
		if (rv == 0)
			rv = uv_tcp_init(cfg->loop, &s->tcp);
		if (rv == 0) {
			s->tcp.data = s;
			s->has_tcp = true;
			s->handles++;
			rv = uv_tcp_bind(&s->tcp, (struct sockaddr *)&sa, 0);
		}
		if (rv == 0)
			rv = uv_listen((uv_stream_t *)&s->tcp, 128,
			               on_tcp_connection);
		if (rv != 0) {
			err_set(e, rv, "rpc: listen on %s: %s", cfg->tcp_listen,
			        rv == -EINVAL ? "not IPv4:PORT"
			                      : uv_strerror(rv));
			goto err_after_alloc;
		}
	}
	if (cfg->unix_path != NULL) {
		mode_t old;

		snprintf(s->unix_path, sizeof s->unix_path, "%s",
		         cfg->unix_path);
		unlink(cfg->unix_path); /* a stale socket: we hold the lock */
		rv = uv_pipe_init(cfg->loop, &s->unix_listener, 0);
		if (rv == 0) {
			s->unix_listener.data = s;
			s->has_unix = true;
			s->handles++;
			old = umask(0077); /* created 0600, never wider */
			rv = uv_pipe_bind(&s->unix_listener, cfg->unix_path);
			umask(old);
		}
		if (rv == 0)
			rv = uv_listen((uv_stream_t *)&s->unix_listener, 64,
			               on_unix_connection);
		if (rv != 0) {
			err_set(e, rv, "rpc: listen on %s: %s", cfg->unix_path,
			        uv_strerror(rv));
			goto err_after_alloc;
		}
	}
	*out = s;
	return 0;

err_after_alloc:
	rpc_server_stop(s, NULL, NULL);
	return e->code;
}

void rpc_server_stop(struct rpc_server *s, void (*cb)(void *data), void *data)
{
	struct list *item, *tmp;

	s->is_stopping = true;
	s->stop_cb = cb;
	s->stop_data = data;
	if (s->has_tcp) {
		s->has_tcp = false;
		uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
	}
	if (s->has_unix) {
		s->has_unix = false;
		uv_close((uv_handle_t *)&s->unix_listener, on_listener_closed);
		unlink(s->unix_path);
	}
	LIST_FOREACH_SAFE (item, tmp, &s->conns) {
		conn_fail(CAIRN_CONTAINER_OF(item, struct rpc_conn, link),
		          -ESHUTDOWN, "server stopping");
	}
	server_maybe_stopped(s);
}

struct rpc_conn *rpc_session_conn(struct rpc_session *s)
{
	return rpc_session_data(s);
}

const struct rpc_peer *rpc_conn_peer(const struct rpc_conn *c)
{
	return &c->peer;
}

void *rpc_conn_server_data(const struct rpc_conn *c)
{
	return c->server != NULL ? c->server->config.data : NULL;
}

struct rpc_session *rpc_conn_session(struct rpc_conn *c)
{
	return c->session;
}

const char *rpc_conn_error(const struct rpc_conn *c)
{
	return c->error;
}

/* ------------------------------------------------------------- clients */

int rpc_conn_connect_tls(uv_loop_t *loop, struct rpc_tls_ctx *ctx,
                         const char *address, unsigned timeout_ms,
                         rpc_conn_cb on_ready, rpc_conn_cb on_closed,
                         void *data, struct rpc_conn **out, struct err *e)
{
	struct rpc_conn *c = conn_new(loop, NULL);
	int rv;

	if (c == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	c->on_ready = on_ready;
	c->on_closed = on_closed;
	c->data = data;
	snprintf(c->peer.address, sizeof c->peer.address, "%s", address);
	rv = rpc_tls_connect(ctx, loop, address, timeout_ms, &tls_cbs, c,
	                     &c->tls, e);
	if (rv != 0) {
		c->on_closed = NULL; /* the caller learns from rv */
		conn_fail(c, rv, e->msg);
		return rv;
	}
	c->handles++;
	rpc_tls_conn_set_drain_cb(c->tls, on_tls_drain);
	*out = c;
	return 0;
}

static void on_pipe_connected(uv_connect_t *req, int status)
{
	struct rpc_conn *c = req->data;

	mem_free(req);
	if (status != 0) {
		conn_fail(c, status, uv_strerror(status));
		return;
	}
	if (session_start(c, RPC_ROLE_CLIENT) != 0)
		return;
	uv_read_start((uv_stream_t *)&c->pipe, on_pipe_alloc, on_pipe_read);
	if (c->on_ready != NULL)
		c->on_ready(c, 0, c->data);
	process(c);
}

int rpc_conn_connect_unix(uv_loop_t *loop, const char *path,
                          rpc_conn_cb on_ready, rpc_conn_cb on_closed,
                          void *data, struct rpc_conn **out, struct err *e)
{
	struct rpc_conn *c = conn_new(loop, NULL);
	uv_connect_t *req;

	if (c == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	req = mem_alloc(sizeof *req);
	if (req == NULL) {
		c->on_closed = NULL;
		conn_fail(c, -ENOMEM, "out of memory");
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->is_unix = true;
	c->on_ready = on_ready;
	c->on_closed = on_closed;
	c->data = data;
	uv_pipe_init(loop, &c->pipe, 0);
	c->pipe.data = c;
	c->has_pipe = true;
	c->handles++;
	req->data = c;
	uv_pipe_connect(req, &c->pipe, path, on_pipe_connected);
	*out = c;
	return 0;
}

/* ---------------------------------------------------------- unary calls */

struct unary {
	struct rpc_call call;
	struct rpc_conn *conn;
	char method[RPC_METHOD_MAX + 1];
	void *payload;
	size_t len;
	unsigned timeout_ms;
	rpc_unary_cb cb;
	void *data;
	bool is_done;
};

static void unary_finish(struct unary *u, enum rpc_status status,
                         const char *message, const void *payload, size_t len)
{
	if (u->is_done)
		return;
	u->is_done = true;
	u->cb(status, message, payload, len, u->data);
}

static void on_unary_done(struct rpc_call *call, enum rpc_status status,
                          const char *message, const void *payload, size_t len)
{
	struct unary *u = CAIRN_CONTAINER_OF(call, struct unary, call);

	unary_finish(u, status, message, payload, len);
	rpc_conn_close(u->conn);
}

static const struct rpc_call_cbs unary_cbs = {.on_done = on_unary_done};

static void on_unary_ready(struct rpc_conn *c, int status, void *data)
{
	struct unary *u = data;
	struct err e;

	(void)status;
	if (rpc_call_start(&u->call, rpc_conn_session(c), &unary_cbs,
	                   RPC_CALL_UNARY, u->method, u->payload, u->len,
	                   u->timeout_ms, &e) != 0) {
		unary_finish(u, RPC_STATUS_INTERNAL, e.msg, NULL, 0);
		rpc_conn_close(c);
	}
}

static void on_unary_closed(struct rpc_conn *c, int status, void *data)
{
	struct unary *u = data;
	char msg[ERR_MSG_MAX];

	(void)status;
	snprintf(msg, sizeof msg, "%s",
	         c->error[0] ? c->error : "connection closed");
	unary_finish(u, RPC_STATUS_UNAVAILABLE, msg, NULL, 0);
	mem_free(u->payload);
	mem_free(u);
}

int rpc_unary(uv_loop_t *loop, struct rpc_tls_ctx *ctx, const char *address,
              const char *method, const void *payload, size_t len,
              unsigned timeout_ms, rpc_unary_cb cb, void *data, struct err *e)
{
	struct unary *u;
	int rv;

	if (strlen(method) > RPC_METHOD_MAX)
		return err_set(e, -EINVAL, "method name too long");
	u = mem_calloc(1, sizeof *u);
	if (u == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	u->payload = mem_alloc(len + 1);
	if (u->payload == NULL) {
		mem_free(u);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (len > 0)
		memcpy(u->payload, payload, len);
	u->len = len;
	snprintf(u->method, sizeof u->method, "%s", method);
	u->timeout_ms = timeout_ms;
	u->cb = cb;
	u->data = data;
	if (ctx != NULL)
		rv = rpc_conn_connect_tls(loop, ctx, address, timeout_ms,
		                          on_unary_ready, on_unary_closed, u,
		                          &u->conn, e);
	else
		rv = rpc_conn_connect_unix(loop, address, on_unary_ready,
		                           on_unary_closed, u, &u->conn, e);
	if (rv != 0) {
		mem_free(u->payload);
		mem_free(u);
	}
	return rv;
}
