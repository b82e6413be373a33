/* The dqlite tunnel: mutual-TLS listener and dialer proxying to the local
 * dqlite node's abstract unix socket (DESIGN.md §9, notes/dqlite.md 12).
 *
 * A proxy joins one TLS connection and one unix stream; bytes flow both
 * ways with backpressure (a side whose peer cannot keep up stops reading).
 * Dials come from other threads (dqlite's worker, the DB thread) through a
 * queue and an async handle; the caller blocks on a condition variable
 * until the loop reports the TLS connection ready or failed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc/rpc.h"

#define HIGH_WATER (1u << 20)
#define READ_CHUNK 65536

struct dial_req {
	struct list link;
	char address[128];
	unsigned timeout_ms;
	int loop_fd; /* the loop's end of the socketpair */
	int status;  /* 1 while pending, then 0 or negative */
	char error[ERR_MSG_MAX];
	unsigned refs; /* caller + loop; guarded by the tunnel mutex */
	pthread_cond_t cond;
};

struct proxy {
	struct list link;
	struct rpc_tunnel *tunnel;
	struct rpc_tls_conn *tls; /* NULL once closed */
	uv_pipe_t pipe;
	bool has_pipe;         /* pipe initialised and not yet closed */
	int pipe_fd;           /* until the pipe takes it */
	struct dial_req *dial; /* outgoing, until ready */
	bool is_pipe_paused;
};

struct rpc_tunnel {
	uv_loop_t *loop;
	struct rpc_tunnel_config config;
	char listen_address[128];
	char local_socket[108];
	char local_address[128];
	uv_tcp_t listener;
	bool has_listener;
	uv_async_t async;
	pthread_mutex_t mutex;
	struct list dials; /* struct dial_req, guarded by mutex */
	struct list proxies;
	unsigned nproxies;
	unsigned open_handles;
	bool is_stopping;
	void (*stop_cb)(void *data);
	void *stop_data;
};

static void release_dial(struct rpc_tunnel *t, struct dial_req *d)
{
	bool is_last;

	pthread_mutex_lock(&t->mutex);
	is_last = --d->refs == 0;
	pthread_mutex_unlock(&t->mutex);
	if (is_last) {
		if (d->loop_fd >= 0)
			close(d->loop_fd);
		pthread_cond_destroy(&d->cond);
		mem_free(d);
	}
}

static void finish_dial(struct rpc_tunnel *t, struct dial_req *d, int status,
                        const char *error)
{
	pthread_mutex_lock(&t->mutex);
	d->status = status;
	if (error != NULL)
		snprintf(d->error, sizeof d->error, "%s", error);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&t->mutex);
	release_dial(t, d);
}

static void maybe_stopped(struct rpc_tunnel *t)
{
	if (!t->is_stopping || t->open_handles > 0 || t->nproxies > 0)
		return;
	pthread_mutex_destroy(&t->mutex);
	if (t->stop_cb != NULL)
		t->stop_cb(t->stop_data);
	mem_free(t);
}

static void proxy_maybe_free(struct proxy *p)
{
	struct rpc_tunnel *t = p->tunnel;

	if (p->tls != NULL || p->has_pipe)
		return;
	if (p->pipe_fd >= 0)
		close(p->pipe_fd);
	if (p->dial != NULL)
		finish_dial(t, p->dial, -ECONNRESET, "tunnel closed");
	list_remove(&p->link);
	t->nproxies--;
	mem_free(p);
	maybe_stopped(t);
}

static void on_pipe_closed(uv_handle_t *h)
{
	struct proxy *p = h->data;

	p->has_pipe = false;
	proxy_maybe_free(p);
}

static void proxy_close(struct proxy *p)
{
	if (p->tls != NULL)
		rpc_tls_conn_close(p->tls);
	if (p->has_pipe && !uv_is_closing((uv_handle_t *)&p->pipe))
		uv_close((uv_handle_t *)&p->pipe, on_pipe_closed);
}

/* --------------------------------------------- unix side of a proxy */

struct pipe_write {
	uv_write_t req;
	struct proxy *proxy;
	char data[];
};

static void on_pipe_written(uv_write_t *req, int status)
{
	struct pipe_write *w = CAIRN_CONTAINER_OF(req, struct pipe_write, req);
	struct proxy *p = w->proxy;

	mem_free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			proxy_close(p);
		return;
	}
	/* The unix side caught up: read from the TLS peer again. */
	if (p->tls != NULL && p->has_pipe &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&p->pipe) <
	            HIGH_WATER / 2)
		rpc_tls_conn_pause(p->tls, false);
}

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char scratch[READ_CHUNK];

	(void)h;
	(void)suggested;
	*b = uv_buf_init(scratch, sizeof scratch);
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct proxy *p = s->data;
	struct err e;

	if (nread < 0) {
		proxy_close(p);
		return;
	}
	if (nread == 0 || p->tls == NULL)
		return;
	if (rpc_tls_conn_write(p->tls, b->base, (size_t)nread, &e) != 0) {
		proxy_close(p);
		return;
	}
	if (rpc_tls_conn_pending(p->tls) > HIGH_WATER && !p->is_pipe_paused) {
		p->is_pipe_paused = true;
		uv_read_stop((uv_stream_t *)&p->pipe);
	}
}

static void on_tls_drain(struct rpc_tls_conn *c)
{
	struct proxy *p = rpc_tls_conn_data(c);

	if (p->is_pipe_paused && p->has_pipe) {
		p->is_pipe_paused = false;
		uv_read_start((uv_stream_t *)&p->pipe, on_pipe_alloc,
		              on_pipe_read);
	}
}

static int pipe_start(struct proxy *p, int fd, struct err *e)
{
	int rv = uv_pipe_init(p->tunnel->loop, &p->pipe, 0);

	if (rv != 0)
		return err_set(e, rv, "uv_pipe_init: %s", uv_strerror(rv));
	p->pipe.data = p;
	p->has_pipe = true;
	rv = uv_pipe_open(&p->pipe, fd);
	if (rv != 0)
		return err_set(e, rv, "uv_pipe_open: %s", uv_strerror(rv));
	p->pipe_fd = -1; /* the pipe owns it now */
	rv = uv_read_start((uv_stream_t *)&p->pipe, on_pipe_alloc,
	                   on_pipe_read);
	if (rv != 0)
		return err_set(e, rv, "read: %s", uv_strerror(rv));
	return 0;
}

/* ---------------------------------------------- TLS side of a proxy */

static void on_tls_data(struct rpc_tls_conn *c, const char *data, size_t len)
{
	struct proxy *p = rpc_tls_conn_data(c);
	struct pipe_write *w;
	uv_buf_t b;

	if (!p->has_pipe)
		return;
	/* Straight into the kernel when nothing is queued: a database
	 * round trip crosses several proxies, each saving a poller turn. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&p->pipe) == 0) {
		int rv;

		b = uv_buf_init((char *)data, (unsigned)len);
		rv = uv_try_write((uv_stream_t *)&p->pipe, &b, 1);
		if (rv < 0 && rv != UV_EAGAIN) {
			proxy_close(p);
			return;
		}
		if (rv > 0) {
			data += rv;
			len -= (size_t)rv;
		}
		if (len == 0)
			return;
	}
	w = mem_alloc(sizeof *w + len);
	if (w == NULL) {
		proxy_close(p);
		return;
	}
	w->proxy = p;
	memcpy(w->data, data, len);
	b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&p->pipe, &b, 1,
	             on_pipe_written) != 0) {
		mem_free(w);
		proxy_close(p);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&p->pipe) >
	    HIGH_WATER)
		rpc_tls_conn_pause(c, true);
}

static void on_tls_close(struct rpc_tls_conn *c, int status)
{
	struct proxy *p = rpc_tls_conn_data(c);

	if (p->dial != NULL) {
		struct dial_req *d = p->dial;

		p->dial = NULL;
		finish_dial(p->tunnel, d, status < 0 ? status : -ECONNRESET,
		            rpc_tls_conn_error(c));
	}
	if (status < 0)
		LOG_DEBUG("tunnel", "connection closed",
		          "status=%d error=\"%s\"", status,
		          rpc_tls_conn_error(c));
	p->tls = NULL;
	if (p->has_pipe && !uv_is_closing((uv_handle_t *)&p->pipe))
		uv_close((uv_handle_t *)&p->pipe, on_pipe_closed);
	proxy_maybe_free(p);
}

/* A verified peer on the listener: connect it to the local dqlite node. */
static void on_server_ready(struct rpc_tls_conn *c)
{
	struct proxy *p = rpc_tls_conn_data(c);
	struct sockaddr_un sa;
	socklen_t len;
	size_t n = strlen(p->tunnel->local_socket + 1);
	struct err e;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, p->tunnel->local_socket + 1, n);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) != 0) {
		LOG_WARN("tunnel", "local dqlite socket unreachable",
		         "socket=%s errno=%d", p->tunnel->local_socket, errno);
		if (fd >= 0)
			close(fd);
		proxy_close(p);
		return;
	}
	p->pipe_fd = fd;
	if (pipe_start(p, fd, &e) != 0) {
		LOG_WARN("tunnel", "proxy failed", "error=\"%s\"", e.msg);
		proxy_close(p);
		return;
	}
	LOG_DEBUG("tunnel", "peer connected", "peer=%s",
	          rpc_tls_conn_peer_name(c));
}

/* Our dial reached the peer's tunnel: hand the caller its end. */
static void on_client_ready(struct rpc_tls_conn *c)
{
	struct proxy *p = rpc_tls_conn_data(c);
	struct dial_req *d = p->dial;
	struct err e;
	int fd;

	pthread_mutex_lock(&p->tunnel->mutex);
	fd = d->loop_fd;
	d->loop_fd = -1;
	pthread_mutex_unlock(&p->tunnel->mutex);
	p->pipe_fd = fd;
	p->dial = NULL;
	if (pipe_start(p, fd, &e) != 0) {
		finish_dial(p->tunnel, d, e.code, e.msg);
		proxy_close(p);
		return;
	}
	finish_dial(p->tunnel, d, 0, NULL);
}

static const struct rpc_tls_conn_cbs server_cbs = {
        .on_ready = on_server_ready,
        .on_data = on_tls_data,
        .on_close = on_tls_close,
};

static const struct rpc_tls_conn_cbs client_cbs = {
        .on_ready = on_client_ready,
        .on_data = on_tls_data,
        .on_close = on_tls_close,
};

static struct proxy *proxy_new(struct rpc_tunnel *t)
{
	struct proxy *p = mem_calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->tunnel = t;
	p->pipe_fd = -1;
	list_insert_tail(&t->proxies, &p->link);
	t->nproxies++;
	return p;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct rpc_tunnel *t = server->data;
	struct proxy *p;
	struct err e;

	if (status < 0 || t->is_stopping)
		return;
	p = proxy_new(t);
	if (p == NULL)
		return;
	if (rpc_tls_conn_create(t->config.server_ctx, t->loop, &server_cbs, p,
	                        &p->tls, &e) != 0) {
		proxy_maybe_free(p);
		return;
	}
	rpc_tls_conn_set_drain_cb(p->tls, on_tls_drain);
	if (uv_accept(server, rpc_tls_conn_stream(p->tls)) != 0) {
		rpc_tls_conn_close(p->tls);
		return;
	}
	rpc_tls_conn_start(p->tls, &e);
}

static void on_async(uv_async_t *a)
{
	struct rpc_tunnel *t = a->data;
	struct list *item;
	struct err e;

	for (;;) {
		struct dial_req *d;
		struct proxy *p;

		pthread_mutex_lock(&t->mutex);
		item = list_pop_head(&t->dials);
		pthread_mutex_unlock(&t->mutex);
		if (item == NULL)
			break;
		d = CAIRN_CONTAINER_OF(item, struct dial_req, link);
		p = t->is_stopping ? NULL : proxy_new(t);
		if (p == NULL) {
			finish_dial(t, d, -ESHUTDOWN, "tunnel stopped");
			continue;
		}
		p->dial = d;
		if (rpc_tls_connect(t->config.client_ctx, t->loop, d->address,
		                    d->timeout_ms, &client_cbs, p, &p->tls,
		                    &e) != 0) {
			p->dial = NULL;
			finish_dial(t, d, e.code, e.msg);
			proxy_maybe_free(p);
			continue;
		}
		rpc_tls_conn_set_drain_cb(p->tls, on_tls_drain);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rpc_tunnel *t = h->data;

	t->open_handles--;
	maybe_stopped(t);
}

int rpc_tunnel_start(uv_loop_t *loop, const struct rpc_tunnel_config *c,
                     struct rpc_tunnel **out, struct err *e)
{
	struct sockaddr_storage sa;
	struct rpc_tunnel *t;
	char host[64];
	const char *colon;
	int rv;

	if (c->local_socket == NULL || c->local_socket[0] != '@' ||
	    strlen(c->local_socket) >= sizeof t->local_socket)
		return err_set(e, -EINVAL,
		               "tunnel: local socket must be "
		               "'@name'");
	t = mem_calloc(1, sizeof *t);
	if (t == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	t->loop = loop;
	t->config = *c;
	snprintf(t->local_socket, sizeof t->local_socket, "%s",
	         c->local_socket);
	snprintf(t->local_address, sizeof t->local_address, "%s",
	         c->local_address != NULL ? c->local_address : "");
	list_init(&t->dials);
	list_init(&t->proxies);
	pthread_mutex_init(&t->mutex, NULL);
	uv_async_init(loop, &t->async, on_async);
	t->async.data = t;
	t->open_handles = 1;
	if (c->listen_address != NULL) {
		snprintf(t->listen_address, sizeof t->listen_address, "%s",
		         c->listen_address);
		colon = strrchr(c->listen_address, ':');
		rv = -EINVAL;
		if (colon != NULL &&
		    (size_t)(colon - c->listen_address) < sizeof host) {
			snprintf(host, sizeof host, "%.*s",
			         (int)(colon - c->listen_address),
			         c->listen_address);
			rv = uv_ip4_addr(host, atoi(colon + 1),
			                 (struct sockaddr_in *)&sa);
		}
		if (rv == 0)
			rv = uv_tcp_init(loop, &t->listener);
		if (rv == 0) {
			t->listener.data = t;
			t->has_listener = true;
			t->open_handles++;
			rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&sa,
			                 0);
		}
		if (rv == 0)
			rv = uv_listen((uv_stream_t *)&t->listener, 128,
			               on_connection);
		if (rv != 0) {
			err_set(e, rv, "tunnel: listen on %s: %s",
			        c->listen_address,
			        rv == -EINVAL ? "not IPv4:PORT"
			                      : uv_strerror(rv));
			rpc_tunnel_stop(t, NULL, NULL);
			return e->code;
		}
	}
	*out = t;
	return 0;
}

void rpc_tunnel_stop(struct rpc_tunnel *t, void (*cb)(void *data), void *data)
{
	struct list *item, *tmp;

	t->is_stopping = true;
	t->stop_cb = cb;
	t->stop_data = data;
	if (t->has_listener) {
		t->has_listener = false;
		uv_close((uv_handle_t *)&t->listener, on_handle_closed);
	}
	on_async(&t->async); /* fail dials still queued */
	uv_close((uv_handle_t *)&t->async, on_handle_closed);
	LIST_FOREACH_SAFE (item, tmp, &t->proxies) {
		proxy_close(CAIRN_CONTAINER_OF(item, struct proxy, link));
	}
}

unsigned rpc_tunnel_drop_peer(struct rpc_tunnel *t, const char *fingerprint)
{
	struct list *item, *tmp;
	unsigned n = 0;

	LIST_FOREACH_SAFE (item, tmp, &t->proxies) {
		struct proxy *p = CAIRN_CONTAINER_OF(item, struct proxy, link);

		if (p->tls != NULL &&
		    strcmp(rpc_tls_conn_peer_fingerprint(p->tls),
		           fingerprint) == 0) {
			proxy_close(p);
			n++;
		}
	}
	return n;
}

unsigned rpc_tunnel_connections(const struct rpc_tunnel *t)
{
	return t->nproxies;
}

static int dial_local(const char *name, struct err *e)
{
	struct sockaddr_un sa;
	size_t n = strlen(name + 1);
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name + 1, n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, -errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa,
	            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                        n)) != 0) {
		int code = -errno;

		close(fd);
		return err_sys(e, code, "connect to the local dqlite socket %s",
		               name);
	}
	return fd;
}

int rpc_tunnel_dial(void *tunnel, const char *address, unsigned timeout_ms,
                    struct err *e)
{
	struct rpc_tunnel *t = tunnel;
	struct timespec until;
	struct dial_req *d;
	int fds[2], rv;

	if (t->local_address[0] != '\0' &&
	    strcmp(address, t->local_address) == 0)
		return dial_local(t->local_socket, e);
	if (strlen(address) >= sizeof d->address)
		return err_set(e, -EINVAL, "tunnel: address too long");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
		return err_sys(e, -errno, "tunnel: socketpair");
	d = mem_calloc(1, sizeof *d);
	if (d == NULL) {
		close(fds[0]);
		close(fds[1]);
		return err_set(e, -ENOMEM, "out of memory");
	}
	snprintf(d->address, sizeof d->address, "%s", address);
	d->timeout_ms = timeout_ms;
	d->loop_fd = fds[1];
	d->status = 1;
	d->refs = 2;
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&d->cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000 + 1; /* the loop times out first */
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}

	pthread_mutex_lock(&t->mutex);
	if (t->is_stopping) {
		pthread_mutex_unlock(&t->mutex);
		close(fds[0]);
		close(fds[1]);
		pthread_cond_destroy(&d->cond);
		mem_free(d);
		return err_set(e, -ESHUTDOWN, "tunnel stopped");
	}
	list_insert_tail(&t->dials, &d->link);
	uv_async_send(&t->async);
	while (d->status == 1) {
		if (pthread_cond_timedwait(&d->cond, &t->mutex, &until) ==
		    ETIMEDOUT)
			break;
	}
	rv = d->status;
	if (rv == 1)
		err_set(e, -ETIMEDOUT, "tunnel to %s: no answer within %u ms",
		        address, timeout_ms);
	else if (rv < 0)
		err_set(e, rv, "tunnel to %s: %s", address, d->error);
	pthread_mutex_unlock(&t->mutex);
	release_dial(t, d);
	if (rv != 0) {
		close(fds[0]);
		return rv == 1 ? -ETIMEDOUT : rv;
	}
	return fds[0];
}
