/* TLS 1.3 over libuv TCP streams, through OpenSSL memory BIOs.
 *
 * Bytes from the socket go into `rbio`; OpenSSL's output collects in
 * `wbio` and is flushed to the socket with uv_write. Plaintext the owner
 * writes before the handshake is done waits in `early`.
 *
 *   CONNECTING ──> HANDSHAKE ──> READY ──> CLOSING ──> (on_close, freed)
 *        └─────────────┴───────────┴─────────^ on any error
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "rpc/internal.h"
#include "rpc/rpc.h"

#define READ_CHUNK      16384
#define USER_TIMEOUT_MS 5000

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_READY, CONN_CLOSING };

struct rpc_tls_ctx {
	SSL_CTX *ssl_ctx;
	X509 *ca; /* NULL for a joiner */
	char pinned[RPC_FINGERPRINT_MAX];
	rpc_tls_revoked_cb is_revoked;
	void *is_revoked_data;
	bool is_server;
};

struct rpc_tls_conn {
	uv_tcp_t tcp;
	uv_timer_t timer; /* connect + handshake deadline */
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	struct rpc_tls_ctx *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
	enum conn_state state;
	struct rpc_tls_conn_cbs cbs;
	void (*on_drain)(struct rpc_tls_conn *c);
	void *data;
	struct buf early; /* plaintext written before READY */
	size_t pending;   /* bytes in uv_write requests in flight */
	unsigned open_handles;
	int close_status;
	bool has_timer;
	bool is_paused;
	char peer_ip[64]; /* client side: the IP the cert must name */
	char peer_fingerprint[RPC_FINGERPRINT_MAX];
	char peer_name[256];
	char error[ERR_MSG_MAX];
};

struct write_req {
	uv_write_t req;
	struct rpc_tls_conn *conn;
	size_t len;
	char data[];
};

static int ssl_error(struct err *e, int code, const char *what)
{
	char text[256] = "";
	unsigned long err = ERR_get_error();

	if (err != 0)
		ERR_error_string_n(err, text, sizeof text);
	ERR_clear_error();
	return err_set(e, code, "%s%s%s", what, text[0] ? ": " : "", text);
}

/* The certificate's "sha256:HEX" (rpc/pki.c's form); "" on failure. */
static void fingerprint(X509 *cert, char out[RPC_FINGERPRINT_MAX])
{
	struct err e;

	if (rpc__fingerprint_x509(cert, out, &e) != 0)
		out[0] = '\0';
}

static X509 *pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

/* Keys are never encrypted; never prompt on a terminal for one. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static EVP_PKEY *pem_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL,
	                                                    no_passphrase, NULL)
	                          : NULL;

	BIO_free(bio);
	return k;
}

static int conn_index = -1;

/* Runs for each certificate of the peer's chain during the handshake:
 * OpenSSL's chain checks decide, and then we refuse revoked leaves. */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
	        store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct rpc_tls_conn *c = SSL_get_ex_data(ssl, conn_index);
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	char fp[RPC_FINGERPRINT_MAX];

	if (!ok) {
		snprintf(c->error, sizeof c->error,
		         "peer certificate rejected: %s",
		         X509_verify_cert_error_string(
		                 X509_STORE_CTX_get_error(store)));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(store) == 0 &&
	    c->ctx->is_revoked != NULL) {
		fingerprint(cert, fp);
		if (c->ctx->is_revoked(c->ctx->is_revoked_data, fp)) {
			snprintf(c->error, sizeof c->error,
			         "peer certificate %s is revoked", fp);
			X509_STORE_CTX_set_error(store,
			                         X509_V_ERR_CERT_REVOKED);
			return 0;
		}
	}
	return 1;
}

int rpc_tls_ctx_create(const struct rpc_tls_config *cfg, bool is_server,
                       struct rpc_tls_ctx **out, struct err *e)
{
	struct rpc_tls_ctx *ctx;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rv = 0, mode;

	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (cfg->ca_cert_pem == NULL && cfg->pinned_ca_fingerprint == NULL)
		return err_set(e, -EINVAL,
		               "tls: need the cluster CA or a pinned "
		               "CA fingerprint");
	if (is_server && (cfg->cert_pem == NULL || cfg->key_pem == NULL))
		return err_set(e, -EINVAL,
		               "tls: a server needs its certificate "
		               "and key");
	ctx = mem_calloc(1, sizeof *ctx);
	if (ctx == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	ctx->is_server = is_server;
	ctx->is_revoked = cfg->is_revoked;
	ctx->is_revoked_data = cfg->is_revoked_data;
	if (cfg->pinned_ca_fingerprint != NULL)
		snprintf(ctx->pinned, sizeof ctx->pinned, "%s",
		         cfg->pinned_ca_fingerprint);
	ctx->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method()
	                                     : TLS_client_method());
	if (ctx->ssl_ctx == NULL) {
		rv = ssl_error(e, -ENOMEM, "tls: SSL_CTX_new");
		goto err_after_alloc;
	}
	SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET);
	if (cfg->ca_cert_pem != NULL) {
		ctx->ca = pem_cert(cfg->ca_cert_pem);
		if (ctx->ca == NULL ||
		    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx->ssl_ctx),
		                        ctx->ca) != 1) {
			rv = ssl_error(e, -EINVAL, "tls: bad CA certificate");
			goto err_after_ctx;
		}
	}
	if (cfg->cert_pem != NULL) {
		cert = pem_cert(cfg->cert_pem);
		key = cfg->key_pem != NULL ? pem_key(cfg->key_pem) : NULL;
		if (cert == NULL || key == NULL ||
		    SSL_CTX_use_certificate(ctx->ssl_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx->ssl_ctx, key) != 1 ||
		    SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
			rv = ssl_error(e, -EINVAL,
			               "tls: bad certificate or key");
			goto err_after_ctx;
		}
		/* Send the CA along, so a joiner can find the pinned one. */
		if (ctx->ca != NULL &&
		    SSL_CTX_add1_chain_cert(ctx->ssl_ctx, ctx->ca) != 1) {
			rv = ssl_error(e, -EINVAL, "tls: chain");
			goto err_after_ctx;
		}
	}
	if (ctx->ca != NULL) {
		mode = SSL_VERIFY_PEER;
		if (is_server && cfg->require_peer_cert)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		if (is_server && !cfg->require_peer_cert)
			mode = SSL_VERIFY_PEER; /* verify one if offered */
		SSL_CTX_set_verify(ctx->ssl_ctx, mode, verify_cb);
	} else {
		/* A joiner checks the chain itself after the handshake. */
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	*out = ctx;
	return 0;

err_after_ctx:
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_free(ctx->ca);
	SSL_CTX_free(ctx->ssl_ctx);
err_after_alloc:
	mem_free(ctx);
	return rv;
}

void rpc_tls_ctx_destroy(struct rpc_tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	X509_free(ctx->ca);
	SSL_CTX_free(ctx->ssl_ctx);
	mem_free(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rpc_tls_conn *c = h->data;

	if (--c->open_handles > 0)
		return;
	if (c->cbs.on_close != NULL)
		c->cbs.on_close(c, c->close_status);
	SSL_free(c->ssl); /* frees both BIOs */
	buf_free(&c->early);
	mem_free(c);
}

/* Tears the connection down now; on_close follows from the loop. */
static void fail(struct rpc_tls_conn *c, int status, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	if (why != NULL && c->error[0] == '\0')
		snprintf(c->error, sizeof c->error, "%s", why);
	c->state = CONN_CLOSING;
	c->close_status = status;
	if (c->has_timer) {
		c->has_timer = false;
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	}
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = CAIRN_CONTAINER_OF(req, struct write_req, req);
	struct rpc_tls_conn *c = w->conn;

	c->pending -= w->len;
	mem_free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			fail(c, status, uv_strerror(status));
		return;
	}
	if (c->pending == 0 && c->on_drain != NULL && c->state == CONN_READY)
		c->on_drain(c);
}

/* Moves what OpenSSL produced to the socket. */
/* Moves what OpenSSL produced to the socket: straight into the kernel
 * when nothing is queued (the usual case, saving an allocation and a
 * poller round trip per record), the rest through uv_write in order. */
static int flush(struct rpc_tls_conn *c)
{
	char chunk[READ_CHUNK];
	size_t n;

	while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
		struct write_req *w;
		const char *data;
		uv_buf_t b;
		size_t len;
		int rv;

		if (c->pending == 0 && n <= sizeof chunk) {
			len = (size_t)BIO_read(c->wbio, chunk, (int)n);
			b = uv_buf_init(chunk, (unsigned)len);
			rv = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
			if (rv < 0 && rv != UV_EAGAIN) {
				fail(c, rv, uv_strerror(rv));
				return rv;
			}
			if (rv > 0 && (size_t)rv == len)
				continue;
			data = chunk + (rv > 0 ? rv : 0);
			len -= rv > 0 ? (size_t)rv : 0;
		} else {
			data = NULL;
			len = n;
		}
		w = mem_alloc(sizeof *w + len);
		if (w == NULL) {
			fail(c, -ENOMEM, "out of memory");
			return -ENOMEM;
		}
		w->conn = c;
		if (data != NULL) {
			memcpy(w->data, data, len);
			w->len = len;
		} else {
			w->len = (size_t)BIO_read(c->wbio, w->data, (int)len);
		}
		b = uv_buf_init(w->data, (unsigned)w->len);
		rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1,
		              on_written);
		if (rv != 0) {
			mem_free(w);
			fail(c, rv, uv_strerror(rv));
			return rv;
		}
		c->pending += w->len;
	}
	return 0;
}

static int write_plain(struct rpc_tls_conn *c, const void *data, size_t len)
{
	int n;

	while (len > 0) {
		n = SSL_write(c->ssl, data,
		              len > INT32_MAX ? INT32_MAX : (int)len);
		if (n <= 0) {
			struct err e;

			ssl_error(&e, -EPROTO, "tls write");
			fail(c, -EPROTO, e.msg);
			return -EPROTO;
		}
		data = (const char *)data + n;
		len -= (size_t)n;
	}
	return flush(c);
}

/* A joiner trusts the server only if its chain holds the pinned CA and
 * the leaf verifies against that CA. */
static int check_pinned(struct rpc_tls_conn *c)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
	X509 *leaf = SSL_get0_peer_certificate(c->ssl);
	X509_STORE_CTX *sctx = NULL;
	X509_STORE *store = NULL;
	X509 *ca = NULL;
	char fp[RPC_FINGERPRINT_MAX];
	int i, ok = 0;

	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		fingerprint(x, fp);
		if (strcmp(fp, c->ctx->pinned) == 0 && X509_check_ca(x) != 0)
			ca = x;
	}
	if (leaf == NULL || ca == NULL) {
		snprintf(c->error, sizeof c->error,
		         "the server's certificate does not come from the CA "
		         "%s named in the join token",
		         c->ctx->pinned);
		return -EPERM;
	}
	store = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	if (store != NULL && sctx != NULL &&
	    X509_STORE_add_cert(store, ca) == 1 &&
	    X509_STORE_CTX_init(sctx, store, leaf, chain) == 1) {
		if (c->peer_ip[0] != '\0')
			X509_VERIFY_PARAM_set1_ip_asc(
			        X509_STORE_CTX_get0_param(sctx), c->peer_ip);
		ok = X509_verify_cert(sctx) == 1;
		if (!ok)
			snprintf(c->error, sizeof c->error,
			         "server certificate rejected: %s",
			         X509_verify_cert_error_string(
			                 X509_STORE_CTX_get_error(sctx)));
	}
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	return ok ? 0 : -EPERM;
}

static void note_peer(struct rpc_tls_conn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	if (peer == NULL)
		return;
	fingerprint(peer, c->peer_fingerprint);
	X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
	                          c->peer_name, sizeof c->peer_name);
}

static void handshake_done(struct rpc_tls_conn *c)
{
	size_t n;

	if (c->ctx->ca == NULL && check_pinned(c) != 0) {
		fail(c, -EPERM, NULL);
		return;
	}
	note_peer(c);
	if (c->has_timer) {
		uv_timer_stop(&c->timer);
	}
	c->state = CONN_READY;
	if (c->cbs.on_ready != NULL)
		c->cbs.on_ready(c);
	if (c->state != CONN_READY)
		return;
	n = c->early.len;
	if (n > 0) {
		write_plain(c, c->early.data, n);
		buf_free(&c->early);
	}
}

/* Drives the handshake and delivers plaintext after bytes arrived. */
static void drive(struct rpc_tls_conn *c)
{
	char chunk[READ_CHUNK];
	int rv, n;

	if (c->state == CONN_HANDSHAKE) {
		rv = SSL_do_handshake(c->ssl);
		if (rv != 1) {
			int code = SSL_get_error(c->ssl, rv);

			if (code == SSL_ERROR_WANT_READ) {
				flush(c);
				return;
			}
			flush(c); /* let the alert reach the peer */
			if (c->error[0] == '\0') {
				struct err e;

				ssl_error(&e, -EPROTO, "tls handshake");
				snprintf(c->error, sizeof c->error, "%s",
				         e.msg);
			}
			fail(c, -EPROTO, NULL);
			return;
		}
		if (flush(c) != 0)
			return;
		handshake_done(c);
	}
	while (c->state == CONN_READY && !c->is_paused) {
		n = SSL_read(c->ssl, chunk, sizeof chunk);
		if (n > 0) {
			c->cbs.on_data(c, chunk, (size_t)n);
			continue;
		}
		rv = SSL_get_error(c->ssl, n);
		if (rv == SSL_ERROR_WANT_READ)
			break;
		if (rv == SSL_ERROR_ZERO_RETURN) {
			fail(c, 0, "closed by the peer");
			return;
		}
		{
			struct err e;

			ssl_error(&e, -EPROTO, "tls read");
			if (c->error[0] == '\0')
				snprintf(c->error, sizeof c->error, "%s",
				         e.msg);
			fail(c, -EPROTO, NULL);
			return;
		}
	}
	/* TLS 1.3 may answer (e.g. key updates) while reading. */
	if (c->state == CONN_READY)
		flush(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char scratch[READ_CHUNK * 4];

	(void)h;
	(void)suggested;
	/* One loop thread: a static scratch buffer is safe, since the data
	 * is copied into the BIO before anything else runs. */
	*b = uv_buf_init(scratch, sizeof scratch);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct rpc_tls_conn *c = s->data;

	if (nread < 0) {
		fail(c,
		     nread == UV_EOF
		             ? (c->state == CONN_READY ? 0 : -ECONNRESET)
		             : (int)nread,
		     nread == UV_EOF ? "connection closed by the peer"
		                     : uv_strerror((int)nread));
		return;
	}
	if (nread == 0 || c->state == CONN_CLOSING)
		return;
	if (BIO_write(c->rbio, b->base, (int)nread) != nread) {
		fail(c, -ENOMEM, "out of memory");
		return;
	}
	drive(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct rpc_tls_conn *c = t->data;

	fail(c, -ETIMEDOUT,
	     c->state == CONN_CONNECTING ? "connect timed out"
	                                 : "tls handshake timed out");
}

static int conn_new(struct rpc_tls_ctx *ctx, uv_loop_t *loop,
                    const struct rpc_tls_conn_cbs *cbs, void *data,
                    struct rpc_tls_conn **out, struct err *e)
{
	struct rpc_tls_conn *c;
	int rv;

	c = mem_calloc(1, sizeof *c);
	if (c == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	c->ctx = ctx;
	c->cbs = *cbs;
	c->data = data;
	buf_init(&c->early, (size_t)64 << 20);
	c->ssl = SSL_new(ctx->ssl_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		SSL_free(c->ssl);
		mem_free(c);
		return ssl_error(e, -ENOMEM, "tls: new session");
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_ex_data(c->ssl, conn_index, c);
	if (ctx->is_server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	rv = uv_tcp_init(loop, &c->tcp);
	if (rv != 0) {
		SSL_free(c->ssl);
		mem_free(c);
		return err_set(e, rv, "uv_tcp_init: %s", uv_strerror(rv));
	}
	c->tcp.data = c;
	c->open_handles = 1;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->has_timer = true;
	c->open_handles++;
	*out = c;
	return 0;
}

int rpc_tls_conn_create(struct rpc_tls_ctx *ctx, uv_loop_t *loop,
                        const struct rpc_tls_conn_cbs *cbs, void *data,
                        struct rpc_tls_conn **out, struct err *e)
{
	return conn_new(ctx, loop, cbs, data, out, e);
}

uv_stream_t *rpc_tls_conn_stream(struct rpc_tls_conn *c)
{
	return (uv_stream_t *)&c->tcp;
}

static void tune_socket(struct rpc_tls_conn *c)
{
	unsigned timeout = USER_TIMEOUT_MS;
	uv_os_fd_t fd;

	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 10);
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
		           sizeof timeout);
}

int rpc_tls_conn_start(struct rpc_tls_conn *c, struct err *e)
{
	int rv;

	c->state = CONN_HANDSHAKE;
	tune_socket(c);
	rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rv != 0) {
		fail(c, rv, uv_strerror(rv));
		return err_set(e, rv, "read: %s", uv_strerror(rv));
	}
	if (!c->ctx->is_server) {
		drive(c); /* sends the ClientHello */
	} else if (!uv_is_active((uv_handle_t *)&c->timer)) {
		uv_timer_start(&c->timer, on_timeout, 10000, 0);
	}
	return 0;
}

static void on_connected(uv_connect_t *req, int status)
{
	struct rpc_tls_conn *c = req->data;
	struct err e;

	if (c->state == CONN_CLOSING)
		return;
	if (status != 0) {
		snprintf(c->error, sizeof c->error, "connect: %s",
		         uv_strerror(status));
		fail(c, status, NULL);
		return;
	}
	rpc_tls_conn_start(c, &e);
}

int rpc_tls_connect(struct rpc_tls_ctx *ctx, uv_loop_t *loop,
                    const char *address, unsigned timeout_ms,
                    const struct rpc_tls_conn_cbs *cbs, void *data,
                    struct rpc_tls_conn **out, struct err *e)
{
	struct sockaddr_storage sa;
	struct rpc_tls_conn *c;
	char host[64];
	const char *colon;
	int rv, port;

	colon = strrchr(address, ':');
	if (colon == NULL || (size_t)(colon - address) >= sizeof host)
		return err_set(e, -EINVAL, "'%s' is not IP:PORT", address);
	port = atoi(colon + 1);
	if (address[0] == '[') {
		snprintf(host, sizeof host, "%.*s", (int)(colon - address - 2),
		         address + 1);
		rv = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
	} else {
		snprintf(host, sizeof host, "%.*s", (int)(colon - address),
		         address);
		rv = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
	}
	if (rv != 0 || port < 1 || port > 65535)
		return err_set(e, -EINVAL, "'%s' is not a numeric IP:PORT",
		               address);
	rv = conn_new(ctx, loop, cbs, data, &c, e);
	if (rv != 0)
		return rv;
	snprintf(c->peer_ip, sizeof c->peer_ip, "%s", host);
	if (ctx->ca != NULL) {
		/* The server's certificate must name the IP we dialled. */
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
	}
	c->state = CONN_CONNECTING;
	c->connect_req.data = c;
	uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
	*out = c;
	rv = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&sa,
	                    on_connected);
	if (rv != 0) {
		/* The conn exists: its on_close reports the failure. */
		snprintf(c->error, sizeof c->error, "connect to %s: %s",
		         address, uv_strerror(rv));
		fail(c, rv, NULL);
	}
	return 0;
}

int rpc_tls_conn_write(struct rpc_tls_conn *c, const void *data, size_t len,
                       struct err *e)
{
	int rv;

	if (c->state == CONN_CLOSING)
		return err_set(e, -ENOTCONN, "connection is closing");
	if (c->state != CONN_READY) {
		rv = buf_append(&c->early, data, len);
		return rv != 0 ? err_set(e, rv, "early data over limit") : 0;
	}
	rv = write_plain(c, data, len);
	return rv != 0 ? err_set(e, rv, "%s", c->error) : 0;
}

size_t rpc_tls_conn_pending(const struct rpc_tls_conn *c)
{
	return c->pending + c->early.len;
}

void rpc_tls_conn_set_drain_cb(struct rpc_tls_conn *c,
                               void (*on_drain)(struct rpc_tls_conn *c))
{
	c->on_drain = on_drain;
}

void rpc_tls_conn_pause(struct rpc_tls_conn *c, bool paused)
{
	if (c->state == CONN_CLOSING || c->is_paused == paused)
		return;
	c->is_paused = paused;
	if (paused) {
		uv_read_stop((uv_stream_t *)&c->tcp);
	} else {
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
		drive(c); /* plaintext may be buffered inside OpenSSL */
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct rpc_tls_conn *c = req->data;

	(void)status;
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void rpc_tls_conn_close(struct rpc_tls_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->state != CONN_READY) {
		fail(c, 0, NULL);
		return;
	}
	SSL_shutdown(c->ssl);
	flush(c);
	c->state = CONN_CLOSING;
	c->close_status = 0;
	if (c->has_timer) {
		c->has_timer = false;
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	}
	c->shutdown_req.data = c;
	/* Let queued writes (and close_notify) go out first. */
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
	                on_shutdown) != 0)
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void *rpc_tls_conn_data(const struct rpc_tls_conn *c)
{
	return c->data;
}

const char *rpc_tls_conn_peer_fingerprint(const struct rpc_tls_conn *c)
{
	return c->peer_fingerprint;
}

const char *rpc_tls_conn_peer_name(const struct rpc_tls_conn *c)
{
	return c->peer_name;
}

const char *rpc_tls_conn_error(const struct rpc_tls_conn *c)
{
	return c->error;
}
