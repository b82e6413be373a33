/* rpc: TLS over libuv streams (OpenSSL is owned here), RPC framing, client
 * and server, streams, and the tunnel that carries dqlite between nodes.
 * Other modules include only this header from rpc/. */
#ifndef CAIRN_RPC_H
#define CAIRN_RPC_H

/* OpenSSL's version string, for `--version` output. */
const char *rpc_tls_library_version(void);

/* ========================================================================
 * BEGIN Sessions and calls: the pure core of the RPC layer (rpc/session.c).
 *
 * A session is one side of one connection, in the client or the server
 * role. It does no I/O: the I/O layer feeds it the bytes it read
 * (rpc_session_feed), writes out the bytes it produced
 * (rpc_session_output), and calls rpc_session_process to deliver events
 * (new calls, messages, writability, ends of calls) to their owners through
 * callbacks. Only clients open calls; a server learns of them through
 * on_call.
 *
 * On the wire a frame is a 4-byte big-endian length N, then N bytes of a
 * packed cairn.Frame (proto/rpc.proto). Calls are multiplexed by call id.
 *
 * Re-entrancy. Callbacks run only inside rpc_session_process, never inside
 * the function call that caused them: rpc_call_cancel, rpc_call_respond,
 * rpc_session_feed, rpc_session_expire and rpc_session_close only record
 * what happened. Inside a callback, the owner may use every rpc_call_*
 * function and rpc_call_start, but not rpc_session_feed, _process, _expire,
 * _close or _destroy (asserted).
 *
 * Flow control, per call and per direction, counts DATA payload bytes.
 * Each side may send RPC_INITIAL_WINDOW bytes before it hears from the
 * receiver. rpc_call_send accepts a message while the call's send credit is
 * positive, and charges the whole message, so a message larger than the
 * remaining credit -- or the whole window -- still goes out when there is
 * any credit at all, and drives the credit negative; the next send then
 * returns -EAGAIN. The receiver applies the same rule (DATA arriving while
 * its view of the window is not positive is a flow-control violation), so
 * a receiver holds at most RPC_INITIAL_WINDOW plus one message of
 * unconsumed data per call. After -EAGAIN, the call's on_writable fires
 * once, when WINDOW frames have made the credit positive again. The
 * receiver grants window (WINDOW frames) only as its owner reports
 * messages consumed with rpc_call_consume, so a slow reader stops the
 * sender. A peer that violates the window fails that call with INTERNAL
 * (the other calls go on); a peer that breaks framing or the call
 * protocol fails the whole session.
 *
 * Output. Frames of a call are queued on the call in order and moved into
 * the output buffer, one frame per call in turn, while it holds less than
 * out_high_water bytes, so that one busy stream does not starve the other
 * calls and a peer that does not read cannot make the session buffer
 * without bound. Control frames (WINDOW, CANCEL, refusals) go straight to
 * the output. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

#define RPC_INITIAL_WINDOW     ((uint32_t)256 * 1024)
#define RPC_WINDOW_MAX         ((int64_t)INT32_MAX)
#define RPC_FRAME_MAX_DEFAULT  ((size_t)4 << 20)
#define RPC_METHOD_MAX         128
#define RPC_MAX_CALLS_DEFAULT  256
#define RPC_HIGH_WATER_DEFAULT ((size_t)256 * 1024)

/* gRPC's status codes, with gRPC's numbers. */
enum rpc_status {
	RPC_STATUS_OK = 0,
	RPC_STATUS_CANCELLED = 1,
	RPC_STATUS_UNKNOWN = 2,
	RPC_STATUS_INVALID_ARGUMENT = 3,
	RPC_STATUS_DEADLINE_EXCEEDED = 4,
	RPC_STATUS_NOT_FOUND = 5,
	RPC_STATUS_ALREADY_EXISTS = 6,
	RPC_STATUS_PERMISSION_DENIED = 7,
	RPC_STATUS_RESOURCE_EXHAUSTED = 8,
	RPC_STATUS_FAILED_PRECONDITION = 9,
	RPC_STATUS_ABORTED = 10,
	RPC_STATUS_OUT_OF_RANGE = 11,
	RPC_STATUS_UNIMPLEMENTED = 12,
	RPC_STATUS_INTERNAL = 13,
	RPC_STATUS_UNAVAILABLE = 14,
	RPC_STATUS_DATA_LOSS = 15,
	RPC_STATUS_UNAUTHENTICATED = 16,
};
#define RPC_STATUS_MAX RPC_STATUS_UNAUTHENTICATED

/* "OK", "DEADLINE_EXCEEDED", ...; "?" outside the table. */
const char *rpc_status_name(unsigned status);

enum rpc_role {
	RPC_ROLE_CLIENT,
	RPC_ROLE_SERVER,
};

/* What the client sends after its REQUEST. UNARY and SERVER_STREAM calls
 * are closed on the client's side as soon as they start (the REQUEST holds
 * the whole request); CLIENT_STREAM and BIDI calls send DATA and end their
 * side with rpc_call_half_close. A client refuses DATA from the server on
 * UNARY and CLIENT_STREAM calls (the call fails with INTERNAL). */
enum rpc_call_type {
	RPC_CALL_UNARY,
	RPC_CALL_SERVER_STREAM,
	RPC_CALL_CLIENT_STREAM,
	RPC_CALL_BIDI,
};

struct rpc_session;
struct rpc_call;

/* A DATA message, borrowed for the callback's duration. Its bytes count
 * against the call's receive window until the owner passes them to
 * rpc_call_consume (now or later). */
typedef void (*rpc_call_message_cb)(struct rpc_call *call, const void *data,
                                    size_t len);
/* on_half_close (server: the client will send no more DATA) and
 * on_writable (send credit is back after -EAGAIN). */
typedef void (*rpc_call_event_cb)(struct rpc_call *call);
/* The call has ended; exactly once per started (client) or announced
 * (server) call, and always the call's last event. message is "" when
 * there is none; payload is the RESPONSE's (client) or NULL; both are
 * borrowed for the callback's duration. After it returns, a server call is
 * freed and a client call belongs to its owner again (it may be freed,
 * reused, or restarted even from inside the callback). */
typedef void (*rpc_call_done_cb)(struct rpc_call *call, enum rpc_status status,
                                 const char *message, const void *payload,
                                 size_t len);

/* Any member may be NULL. Without on_message, messages are dropped but
 * still count against the window until consumed. */
struct rpc_call_cbs {
	rpc_call_message_cb on_message;
	rpc_call_event_cb on_half_close;
	rpc_call_event_cb on_writable;
	rpc_call_done_cb on_done;
};

/* Server: a new call and its REQUEST payload (borrowed for the duration).
 * The handler sets callbacks with rpc_call_set_cbs (before returning, or
 * it misses the call's first events) and answers with rpc_call_respond,
 * now or later; a handler that keeps the call beyond on_call must set
 * on_done, after which the call is gone. */
typedef void (*rpc_session_call_cb)(struct rpc_session *s,
                                    struct rpc_call *call, const void *payload,
                                    size_t len);

struct rpc_session_config {
	enum rpc_role role;
	size_t max_frame;      /* largest N received or sent; 0: default */
	unsigned max_calls;    /* server: calls in flight; 0: default */
	size_t out_high_water; /* call queues wait above; 0: default */
	struct clock *clock;   /* for deadlines; NULL: clock_real() */
	rpc_session_call_cb on_call; /* server: required */
	void *data;                  /* user data, see rpc_session_data */
};

struct rpc_session_stats {
	uint64_t frames_in;
	uint64_t frames_out;
	uint64_t frames_ignored; /* for unknown or finished call ids */
	uint64_t calls_refused;  /* server: RESOURCE_EXHAUSTED at max_calls */
	uint64_t calls_expired;  /* deadlines, both roles */
	unsigned calls_live;     /* ids in use */
};

/* Private: the states of a call (see the diagram in rpc/session.c). */
enum rpc__call_state {
	RPC__CALL_IDLE,               /* not started */
	RPC__CALL_OPEN,               /* both directions may carry DATA */
	RPC__CALL_HALF_CLOSED_LOCAL,  /* client: sends no more */
	RPC__CALL_HALF_CLOSED_REMOTE, /* server: the client sends no more */
	RPC__CALL_RESPONDING,         /* server: RESPONSE queued, id live */
	RPC__CALL_DONE,               /* ended; on_done pending */
	RPC__CALL_CANCELLED,          /* ended by CANCEL; on_done pending */
	RPC__CALL_FINISHED,           /* on_done delivered */
};

/* A call. The client allocates it and passes it to rpc_call_start; it must
 * stay valid until on_done has run. The server session allocates its calls
 * and frees each one after its on_done (or, for a call the owner never
 * heard of, when it ends). */
struct rpc_call {
	void *data; /* user data; rpc_call_start leaves it alone */

	/* private: use the rpc_call_* functions */
	struct rpc_session *session;
	const struct rpc_call_cbs *cbs;
	enum rpc__call_state state;
	enum rpc_call_type type;
	uint64_t id;
	char method[RPC_METHOD_MAX + 1];
	bool is_client;
	bool is_announced;     /* server: on_call delivered */
	bool is_request_sent;  /* client: REQUEST left the queue */
	bool wants_writable;   /* -EAGAIN was returned */
	bool writable_pending; /* on_writable to deliver */
	bool drop_events;      /* the owner ended the call itself */
	bool has_deadline;
	uint32_t deadline_ms;     /* as sent in the REQUEST; 0: none */
	uint64_t deadline_at;     /* monotonic ms */
	int64_t send_credit;      /* send window left, may go negative */
	int64_t recv_window;      /* receiver's view of the peer's credit */
	uint64_t recv_unconsumed; /* delivered or pending, not consumed */
	uint64_t recv_ungranted;  /* consumed, not yet granted back */
	uint64_t queued_bytes;    /* payload bytes waiting in sendq */
	enum rpc_status end_status;
	char *end_message;   /* owned; NULL: "" */
	void *end_frame;     /* owned Cairn__Frame: server, the REQUEST until
	                      * on_call; client, the RESPONSE */
	struct list id_link; /* session's id table, while the id is live */
	struct list events;  /* received, not yet delivered */
	struct list sendq;   /* encoded frames waiting for the output */
	struct list sending_link; /* session's round-robin of sendq owners */
	struct list ready_link;   /* session's list of calls with events */
};

/* Creates a session. -EINVAL for a bad config (the message says which
 * field), -ENOMEM. */
int rpc_session_create(const struct rpc_session_config *config,
                       struct rpc_session **out, struct err *e);
/* Frees the session. Every call must have finished: call
 * rpc_session_close, then rpc_session_process, first (asserted). */
void rpc_session_destroy(struct rpc_session *s);
void *rpc_session_data(const struct rpc_session *s);
enum rpc_role rpc_session_role(const struct rpc_session *s);

/* Takes bytes read from the connection, in chunks of any size. -EPROTO
 * (or -EMSGSIZE for an oversized frame) when the peer broke the protocol,
 * -ENOMEM, -ENOBUFS when the output backlog passed its hard cap: the
 * session has then failed -- every call ends with UNAVAILABLE, later feeds
 * return the same error, and the I/O layer closes the connection after
 * flushing what output is left. */
int rpc_session_feed(struct rpc_session *s, const void *data, size_t len,
                     struct err *e);
/* Bytes to write to the connection, owned by the session. The I/O layer
 * takes them (buf_steal, or copy then buf_reset/buf_consume) and calls
 * rpc_session_process after its writes complete so that queued frames
 * move in. */
struct buf *rpc_session_output(struct rpc_session *s);
/* True while the output holds out_high_water bytes or more: the I/O layer
 * stops reading until it has written them, so that a peer that sends but
 * does not read cannot grow the output. */
bool rpc_session_is_backlogged(const struct rpc_session *s);
/* Moves queued frames into the output and delivers every pending event
 * through its callback; returns when none is left. */
void rpc_session_process(struct rpc_session *s);
/* Ends the calls whose deadline has passed by the session clock: a client
 * sends CANCEL, a server answers DEADLINE_EXCEEDED; both owners get
 * DEADLINE_EXCEEDED from on_done. Returns how many calls expired. */
unsigned rpc_session_expire(struct rpc_session *s);
/* The earliest deadline of a live call, in the session clock's monotonic
 * ms, for the I/O layer's timer; false when no call has one. */
bool rpc_session_next_deadline(const struct rpc_session *s, uint64_t *at);
/* The connection is gone: every call ends with UNAVAILABLE and `reason`
 * (the deliveries happen in the next rpc_session_process); later feeds and
 * new calls fail with -EPIPE. Closing twice is harmless. */
void rpc_session_close(struct rpc_session *s, const char *reason);
void rpc_session_get_stats(const struct rpc_session *s,
                           struct rpc_session_stats *out);

/* Client: starts `call` on method ("pkg.Service/Method") with the REQUEST
 * payload. deadline_ms 0 means none. On success the call's on_done will
 * run exactly once; on failure (-EINVAL bad method or role, -EMSGSIZE
 * payload over the frame limit, -EPIPE session closed or failed, -ENOMEM)
 * nothing runs and the call stays unused. */
int rpc_call_start(struct rpc_call *call, struct rpc_session *s,
                   const struct rpc_call_cbs *cbs, enum rpc_call_type type,
                   const char *method, const void *payload, size_t len,
                   uint32_t deadline_ms, struct err *e);
/* Server: sets the callbacks of a call received through on_call. */
void rpc_call_set_cbs(struct rpc_call *call, const struct rpc_call_cbs *cbs);

/* Sends one DATA message (copied). -EAGAIN when the send credit is used up:
 * keep the message and wait for on_writable. -EPIPE when this side of the
 * call is closed or the call has ended, -EINVAL on a client UNARY or
 * SERVER_STREAM call, -EMSGSIZE over the frame limit, -ENOMEM. */
int rpc_call_send(struct rpc_call *call, const void *data, size_t len,
                  struct err *e);
/* Client: no more DATA from this side (a HALF_CLOSE frame). -EPIPE when
 * already closed or ended, -EINVAL on the server. */
int rpc_call_half_close(struct rpc_call *call, struct err *e);
/* Client: abandons the call (a CANCEL frame, unless the REQUEST never left
 * the session); on_done follows with CANCELLED. Messages not yet delivered
 * are dropped. -EPIPE when the call has already ended, -EINVAL on the
 * server (a server ends a call with rpc_call_respond). */
int rpc_call_cancel(struct rpc_call *call, struct err *e);
/* Server: ends the call with RESPONSE (queued behind the call's DATA);
 * message may be NULL. on_done follows, with this status, once the
 * RESPONSE is in the output. Messages not yet delivered are dropped.
 * -EPIPE when the call has already ended, -EINVAL for a status out of
 * range or on the client, -EMSGSIZE, -ENOMEM. */
int rpc_call_respond(struct rpc_call *call, enum rpc_status status,
                     const char *message, const void *payload, size_t len,
                     struct err *e);
/* The owner is done with `bytes` of delivered messages: the window they
 * took is granted back to the peer (in WINDOW frames, batched to half a
 * window). -EINVAL when more than delivered and not yet consumed; 0 and
 * nothing happens once the call has ended. */
int rpc_call_consume(struct rpc_call *call, size_t bytes, struct err *e);

uint64_t rpc_call_id(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
struct rpc_session *rpc_call_session(const struct rpc_call *call);
/* The deadline the client gave, in ms from the call's start; 0: none. */
uint32_t rpc_call_deadline_ms(const struct rpc_call *call);
/* Payload bytes that may still be sent before -EAGAIN (<= 0: none). */
int64_t rpc_call_send_credit(const struct rpc_call *call);

/* ==========================================================================
 * END Sessions and calls. */

/* ------------------------------------------------------------------------
 * TLS connections on the loop (rpc/tls.c).
 *
 * Every connection is TLS 1.3 with ECDSA certificates from the cluster CA.
 * A context is either a node's (it presents its certificate and requires
 * one from the peer, chained to the CA and not revoked: mutual TLS) or a
 * joiner's (no certificate yet; it trusts a server whose chain contains a
 * CA with the pinned fingerprint from the join token). */
#define RPC_FINGERPRINT_MAX 80 /* "sha256:" + 64 hex + NUL, with room */

/* Answers whether a peer certificate's fingerprint is revoked. */
typedef bool (*rpc_tls_revoked_cb)(void *data, const char *fingerprint);

struct rpc_tls_config {
	const char *ca_cert_pem; /* the cluster CA; NULL: joiner */
	const char *cert_pem;    /* ours; NULL: none */
	const char *key_pem;
	const char *pinned_ca_fingerprint; /* joiner: trust this CA only */
	bool require_peer_cert;            /* server side: mutual TLS */
	rpc_tls_revoked_cb is_revoked;
	void *is_revoked_data;
};

struct rpc_tls_ctx;
int rpc_tls_ctx_create(const struct rpc_tls_config *c, bool is_server,
                       struct rpc_tls_ctx **out, struct err *e);
void rpc_tls_ctx_destroy(struct rpc_tls_ctx *ctx);

struct rpc_tls_conn;

/* Events of one connection, on the loop. on_ready runs once the handshake
 * succeeded and the peer was verified; on_data with plaintext; on_close
 * exactly once, last (status 0 for an orderly close, negative otherwise,
 * with the reason in rpc_tls_conn_error), after which the conn is freed. */
struct rpc_tls_conn_cbs {
	void (*on_ready)(struct rpc_tls_conn *c);
	void (*on_data)(struct rpc_tls_conn *c, const char *data, size_t len);
	void (*on_close)(struct rpc_tls_conn *c, int status);
};

/* Server side: call after uv_accept into rpc_tls_conn_stream(). The conn
 * starts reading and handshaking at rpc_tls_conn_start. */
int rpc_tls_conn_create(struct rpc_tls_ctx *ctx, uv_loop_t *loop,
                        const struct rpc_tls_conn_cbs *cbs, void *data,
                        struct rpc_tls_conn **out, struct err *e);
uv_stream_t *rpc_tls_conn_stream(struct rpc_tls_conn *c);
int rpc_tls_conn_start(struct rpc_tls_conn *c, struct err *e);

/* Client side: connects to "IP:PORT" ([v6]:PORT), handshakes, verifies
 * the server (its certificate must name that IP). on_ready or on_close
 * follows; timeout_ms bounds connect + handshake. Fails (without a conn)
 * only on bad arguments; once *out is set, failures come through
 * on_close. */
int rpc_tls_connect(struct rpc_tls_ctx *ctx, uv_loop_t *loop,
                    const char *address, unsigned timeout_ms,
                    const struct rpc_tls_conn_cbs *cbs, void *data,
                    struct rpc_tls_conn **out, struct err *e);

/* Queues plaintext (copied). Before on_ready it is held back. */
int rpc_tls_conn_write(struct rpc_tls_conn *c, const void *data, size_t len,
                       struct err *e);
/* Bytes written but not yet handed to the kernel: a producer stops above
 * its own threshold and resumes on on_drain. */
size_t rpc_tls_conn_pending(const struct rpc_tls_conn *c);
void rpc_tls_conn_set_drain_cb(struct rpc_tls_conn *c,
                               void (*on_drain)(struct rpc_tls_conn *c));
/* Stops or resumes reading from the peer (flow control of a proxy). */
void rpc_tls_conn_pause(struct rpc_tls_conn *c, bool paused);
/* Sends close_notify, flushes, closes; on_close follows. */
void rpc_tls_conn_close(struct rpc_tls_conn *c);
void *rpc_tls_conn_data(const struct rpc_tls_conn *c);
/* After on_ready: the peer's certificate fingerprint and node name ("" when
 * the peer presented none). */
const char *rpc_tls_conn_peer_fingerprint(const struct rpc_tls_conn *c);
const char *rpc_tls_conn_peer_name(const struct rpc_tls_conn *c);
const char *rpc_tls_conn_error(const struct rpc_tls_conn *c);

/* ------------------------------------------------------------------------
 * The dqlite tunnel (rpc/tunnel.c, DESIGN.md §9).
 *
 * dqlite has no TLS, so the node binds an abstract unix socket and never
 * the network. The agent's tunnel listens with mutual TLS (default port
 * 8017) and proxies each verified peer to that socket; outgoing dqlite and
 * client connections dial TLS to the peer's tunnel and get back one end of
 * a socketpair whose other end the loop proxies. Nothing about the DB is
 * reachable in plaintext. */
struct rpc_tunnel;

struct rpc_tunnel_config {
	struct rpc_tls_ctx *server_ctx; /* mutual TLS, node certificates */
	struct rpc_tls_ctx *client_ctx; /* the same identity, dialing */
	const char *listen_address;     /* "IP:PORT"; NULL: dial only */
	const char *local_socket;       /* "@name": the dqlite node's socket */
	const char *local_address;      /* our own advertised "IP:PORT" */
};

int rpc_tunnel_start(uv_loop_t *loop, const struct rpc_tunnel_config *c,
                     struct rpc_tunnel **out, struct err *e);
/* Closes the listener and every proxied connection; cb runs on the loop
 * when all is closed, then the tunnel is freed. */
void rpc_tunnel_stop(struct rpc_tunnel *t, void (*cb)(void *data), void *data);
/* From ANY thread but the loop's: returns a connected fd (close-on-exec)
 * whose bytes reach the dqlite node at `address` ("IP:PORT" of its
 * tunnel; our own address goes straight to the local socket). Blocks up
 * to timeout_ms. The signature fits consensus' dial hook. */
int rpc_tunnel_dial(void *tunnel, const char *address, unsigned timeout_ms,
                    struct err *e);
/* Closes every proxied connection whose peer presented the certificate
 * with this fingerprint (it was revoked); returns how many. */
unsigned rpc_tunnel_drop_peer(struct rpc_tunnel *t, const char *fingerprint);
/* How many proxied connections are open (tests, status). */
unsigned rpc_tunnel_connections(const struct rpc_tunnel *t);

/* ------------------------------------------------------------------------
 * Cluster identity: CA, node certificates, fingerprints, revocation, key
 * files (rpc/pki.c) and join tokens (rpc/token.c). Pure OpenSSL, no I/O
 * besides the key files.
 *
 * Certificates, requests and keys travel as NUL-terminated PEM text, so the
 * CA certificate can live in the DB and keys in 0600 files. Inputs longer
 * than RPC_PKI_PEM_MAX are refused. Output struct bufs are initialised by
 * the caller (buf_init with a max of at least RPC_PKI_PEM_MAX); their
 * content is replaced, and they are empty after a failure.
 *
 * A fingerprint is "sha256:" followed by the 64 lowercase hex digits of the
 * SHA-256 of the certificate's DER: one canonical text form, used in the
 * DB (nodes.cert_fingerprint, the revocation list), in join tokens and by
 * rpc/tls.c, and compared whole, in constant time.
 *
 * Names: a node name is one DNS label (1..63 of [A-Za-z0-9-], no hyphen at
 * either end); it is the certificate's CN and its only DNS subjectAltName.
 * A node's addresses are IP literals (IPv4 or IPv6, no port) and become IP
 * subjectAltNames, so a certificate names exactly one node. A cluster name
 * is 1..55 of [A-Za-z0-9._-], starting with a letter or digit.
 *
 * Errors: -EINVAL for malformed input, -EKEYREJECTED for a certificate or
 * request that does not verify, -EKEYEXPIRED outside its validity,
 * -EKEYREVOKED for a revoked certificate, -EPERM for an unsafe key file.
 * struct err *e must not be NULL: messages are wrapped with context. */
#define RPC_FINGERPRINT_TEXT_LEN 71 /* strlen("sha256:") + 64 */
#define RPC_PKI_PEM_MAX          (16 * 1024)
#define RPC_PKI_DAYS_DEFAULT     3650 /* days = 0 means this */
#define RPC_PKI_DAYS_MAX         36500
#define RPC_PKI_ADDRESSES_MAX    16
#define RPC_NODE_NAME_MAX        63
#define RPC_CLUSTER_NAME_MAX     55 /* "cairn CA <name>" fits a 64-byte CN */

int rpc_pki_node_name_check(const char *name, struct err *e);
int rpc_pki_cluster_name_check(const char *name, struct err *e);

/* A self-signed ECDSA P-256 CA, CN "cairn CA <cluster_name>": critical
 * basicConstraints CA:TRUE pathlen:0, critical keyUsage keyCertSign and
 * cRLSign, a random 128-bit serial, SHA-256, valid from 5 minutes ago (for
 * clock skew) for `days`. */
int rpc_pki_ca_create(const char *cluster_name, unsigned days,
                      struct buf *key_pem, struct buf *cert_pem, struct err *e);
/* A node key (ECDSA P-256, PKCS#8 PEM). */
int rpc_pki_key_create(struct buf *key_pem, struct err *e);
/* A certificate request signed by key_pem: CN node_name, subjectAltNames
 * DNS:node_name and IP:each of the n (<= RPC_PKI_ADDRESSES_MAX, distinct)
 * addresses. */
int rpc_pki_csr_create(const char *key_pem, const char *node_name,
                       const char *const *addresses, unsigned n,
                       struct buf *csr_pem, struct err *e);
/* The CA's side of a join. Checks the request's own signature, that its
 * key is P-256, that its CN is expected_node_name and that its
 * subjectAltNames are that one DNS name plus IP addresses, nothing else.
 * The certificate gets a fresh subject (CN only), the request's
 * subjectAltNames rebuilt from the checked values, and extensions chosen
 * here (critical CA:FALSE, critical keyUsage digitalSignature,
 * extendedKeyUsage serverAuth and clientAuth, key identifiers): nothing
 * else the request asked for is copied. */
int rpc_pki_csr_sign(const char *ca_key_pem, const char *ca_cert_pem,
                     const char *csr_pem, const char *expected_node_name,
                     unsigned days, struct buf *cert_pem, struct err *e);
/* out holds RPC_FINGERPRINT_TEXT_LEN + 1 bytes (RPC_FINGERPRINT_MAX fits). */
int rpc_pki_fingerprint(const char *cert_pem, char *out, struct err *e);
/* Checks the canonical form (lowercase hex, exact length). */
int rpc_pki_fingerprint_check(const char *fingerprint, struct err *e);
/* Constant-time comparison of two fingerprints; false unless both are
 * exactly RPC_FINGERPRINT_TEXT_LEN long and equal. */
bool rpc_pki_fingerprints_equal(const char *a, const char *b);
/* Verifies a node certificate: signed directly by the CA, within its
 * validity, not a CA itself, not among the n_revoked fingerprints, and
 * naming one node (CN = the only DNS subjectAltName), which is copied into
 * node_name_out (size >= RPC_NODE_NAME_MAX + 1). */
int rpc_pki_verify(const char *ca_cert_pem, const char *cert_pem,
                   const char *const *revoked_fingerprints, unsigned n_revoked,
                   char *node_name_out, size_t node_name_size, struct err *e);
/* Wipes a buffer that held a private key, then frees it. */
void rpc_pki_key_pem_free(struct buf *key_pem);

/* Key files. Writing goes through a temporary file in the same directory,
 * created 0600 (mkostemp), fsynced and renamed over path; an existing path
 * that is a symbolic link or not a regular file is refused (-ELOOP,
 * -EINVAL). Checking and reading open path without following a symbolic
 * link and refuse a file that is not regular, not owned by us, or has any
 * group or other permission bit (-EPERM, naming the path and its mode).
 * Reading checks the same open file it reads, so nothing can be swapped
 * in between. */
int rpc_pki_key_file_write(const char *path, const char *key_pem,
                           struct err *e);
int rpc_pki_key_file_check(const char *path, struct err *e);
int rpc_pki_key_file_read(const char *path, struct buf *key_pem, struct err *e);

/* Test seam: the clock pki uses for validity (issuing and verifying);
 * NULL restores the real one. Process-wide, set only while nothing else
 * runs. */
void rpc__pki_clock_set(struct clock *clock);

/* ------------------------------------------------------------------------
 * Join tokens (rpc/token.c).
 *
 * `cairn cluster join-token` prints "cairn-join-v1." followed by the
 * base64url (no padding) of compact JSON:
 *   {"id":"<32 hex>","cluster":"<name>","addresses":["10.0.0.1:8016",...],
 *    "ca":"sha256:<64 hex>","secret":"<43 base64url>","expires":<unix s>}
 * every field required, no other field allowed; at most RPC_TOKEN_TEXT_MAX
 * bytes. Single use: the server stores the id, the expiry and only the
 * SHA-256 digest of the secret, and marks the token used in the same DB
 * transaction that admits the joiner.
 *
 * How the joiner proves the secret: it opens TLS pinned to the CA
 * fingerprint from the token (rpc/tls.c, joiner context) and sends the
 * secret itself; the server hashes it and compares with the stored digest
 * in constant time (rpc_token_secret_matches). This is safe because the
 * pinned channel ends only at a holder of a certificate issued by that CA,
 * i.e. a cluster member, which could read the DB anyway; an eavesdropper
 * sees ciphertext, and a man in the middle cannot complete the handshake.
 * Storing only the digest keeps a usable secret out of the DB, its backups
 * and its snapshots; a 256-bit random secret needs no salt or slow hash. No
 * HMAC proof is needed: the server never holds the secret to verify one. */
#define RPC_TOKEN_PREFIX        "cairn-join-v1."
#define RPC_TOKEN_TEXT_MAX      2048 /* bytes, with the NUL */
#define RPC_TOKEN_SECRET_LEN    32
#define RPC_TOKEN_ID_LEN        32 /* hex characters */
#define RPC_TOKEN_DIGEST_LEN    64 /* hex characters */
#define RPC_TOKEN_ADDRESSES_MAX 16
#define RPC_TOKEN_ADDRESS_MAX   53 /* "[" IPv6 (45) "]:65535" */
#define RPC_TOKEN_TTL_MAX       (30 * 86400)

/* A parsed or created token: plain values, nothing to free (but see
 * rpc_token_clear). Addresses are members' RPC addresses as rpc_tls_connect
 * takes them, "IPv4:port" or "[IPv6]:port": IP literals, because that is
 * what node certificates name, and resolving a name would be I/O. */
struct rpc_token {
	char id[RPC_TOKEN_ID_LEN + 1];
	char cluster[RPC_CLUSTER_NAME_MAX + 1];
	char addresses[RPC_TOKEN_ADDRESSES_MAX][RPC_TOKEN_ADDRESS_MAX + 1];
	unsigned n_addresses; /* 1..RPC_TOKEN_ADDRESSES_MAX */
	char ca_fingerprint[RPC_FINGERPRINT_TEXT_LEN + 1];
	unsigned char secret[RPC_TOKEN_SECRET_LEN];
	int64_t expires_at; /* Unix seconds */
};

/* Makes a token with a random id and secret, expiring ttl_seconds (1..
 * RPC_TOKEN_TTL_MAX) after now, and its text form into text (text_size
 * bytes; RPC_TOKEN_TEXT_MAX always suffices). */
int rpc_token_create(const char *cluster, const char *const *addresses,
                     unsigned n, const char *ca_fingerprint,
                     int64_t ttl_seconds, int64_t now, struct rpc_token *out,
                     char *text, size_t text_size, struct err *e);
/* Parses and validates a token's text; leading and trailing white space
 * (from copy and paste) is ignored, anything else out of shape is an
 * error. Does not look at the expiry: see rpc_token_check_expiry. */
int rpc_token_parse(const char *text, struct rpc_token *out, struct err *e);
/* -EKEYEXPIRED ("join token: expired at 2026-11-29T18:00:00Z") once now
 * reaches expires_at. */
int rpc_token_check_expiry(const struct rpc_token *tok, int64_t now,
                           struct err *e);
/* Checks an address as a token carries it ("IPv4:port", "[IPv6]:port"). */
int rpc_token_address_check(const char *address, struct err *e);
/* The lowercase hex SHA-256 of the secret, as the server stores it. */
int rpc_token_secret_digest(const unsigned char secret[RPC_TOKEN_SECRET_LEN],
                            char out[RPC_TOKEN_DIGEST_LEN + 1], struct err *e);
/* Constant-time: does secret hash to digest_hex? False for a digest of
 * the wrong length. */
bool rpc_token_secret_matches(const char *digest_hex,
                              const unsigned char secret[RPC_TOKEN_SECRET_LEN]);
/* Wipes the secret (and everything else) from a token. */
void rpc_token_clear(struct rpc_token *tok);

/* ------------------------------------------------------------------------
 * Secrets (rpc/secret.c): the primitives of the REST API's authentication
 * (Proxmox-compatible users, tickets and API tokens).
 *
 * A stored password hash is
 *   "$pbkdf2-sha256$<iterations>$<salt>$<hash>"
 * with PBKDF2-HMAC-SHA256, salt and hash in standard base64 without
 * padding (a 16-byte random salt and a 32-byte hash when we make it). The
 * iteration count is in the text, so the default can rise without
 * invalidating the hashes already stored. Hashing is deliberately slow
 * (see RPC_PBKDF2_ITERATIONS): callers run it on a worker pool, never on
 * an event loop.
 *
 * struct err *e may be NULL. */
#define RPC_PASSWORD_HASH_MAX 192    /* bytes with the NUL */
#define RPC_PBKDF2_ITERATIONS 300000 /* default: ~55 ms here (100000: 19) */
#define RPC_PASSWORD_MAX      1024   /* bytes, without the NUL */

/* Hashes a password with a fresh random salt into out. iterations 0 means
 * RPC_PBKDF2_ITERATIONS; otherwise 1000 to 10,000,000, or -EINVAL. A
 * password longer than RPC_PASSWORD_MAX: -E2BIG. -EIO when the random
 * generator fails. out is "" after a failure. */
int rpc_password_hash(const char *password, unsigned iterations,
                      char out[RPC_PASSWORD_HASH_MAX], struct err *e);
/* 0 when password matches stored, -EKEYREJECTED when it does not (the
 * derived bytes are compared in constant time), -EINVAL when stored is
 * malformed (the message says what is wrong), -E2BIG for a password longer
 * than RPC_PASSWORD_MAX. stored may ask for 1 to 10,000,000 iterations
 * (fewer than a new hash gets, so that published test vectors verify) and
 * carry a salt of 1 to 64 bytes. */
int rpc_password_verify(const char *password, const char *stored,
                        struct err *e);
/* HMAC-SHA256 of data under key. */
void rpc_hmac_sha256(const void *key, size_t key_len, const void *data,
                     size_t len, unsigned char out[32]);
/* SHA-256 as 64 lowercase hex digits and a NUL. */
void rpc_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant-time equality of two buffers of len bytes. */
bool rpc_const_equal(const void *a, const void *b, size_t len);
/* Cryptographically random bytes (RAND_bytes); -EIO on failure. */
int rpc_random_bytes(void *out, size_t len, struct err *e);
/* A random UUID version 4, lowercase, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
 * (y is 8, 9, a or b) and a NUL: what Proxmox API token secrets look
 * like. -EIO when the random generator fails (out is then ""). */
int rpc_uuid_v4(char out[37], struct err *e);
/* Standard base64 (RFC 4648: '+' and '/') WITHOUT padding, and a NUL. out
 * holds at least 4 * ceil(len / 3) + 1 bytes. Returns the characters
 * written, the NUL not counted. */
size_t rpc_base64_encode(const void *in, size_t len, char *out);
/* Decodes len characters of standard base64; padding is optional, but
 * when present it must complete the last group of 4. -EINVAL for a
 * character outside the alphabet (white space included), an impossible
 * length or non-zero bits after the last byte; -E2BIG when the bytes do
 * not fit out_max. *out_len is the number of bytes written (0 on
 * failure). */
int rpc_base64_decode(const char *in, size_t len, unsigned char *out,
                      size_t out_max, size_t *out_len);

/* ------------------------------------------------------------------------
 * Connections, servers and clients (rpc/conn.c): a session bound to a
 * transport — TLS over TCP between machines, a unix socket for the local
 * CLI (root only, identified by peer credentials).
 *
 * After the owner acts on a call outside a session callback (e.g. it
 * responds from a DB callback), it calls rpc_conn_kick so the connection
 * processes and flushes soon after, from the loop. */
#include <sys/types.h>

struct rpc_conn;
struct rpc_server;

/* Who is at the other end of a connection. */
struct rpc_peer {
	bool is_local;                         /* the unix socket */
	uid_t uid;                             /* is_local: SO_PEERCRED's uid */
	char name[256];                        /* TLS: certificate CN, or "" */
	char fingerprint[RPC_FINGERPRINT_MAX]; /* TLS: "" without a cert */
	char address[64];                      /* TLS: "IP:PORT" */
};

struct rpc_server_config {
	uv_loop_t *loop;
	struct rpc_tls_ctx *tls; /* with tcp_listen */
	const char *tcp_listen;  /* "IP:PORT" or NULL */
	const char *unix_path;   /* socket path (created 0600) or NULL */
	rpc_session_call_cb on_call;
	void *data; /* rpc_server_data */
};

int rpc_server_start(const struct rpc_server_config *c, struct rpc_server **out,
                     struct err *e);
/* Closes listeners and connections (live calls end UNAVAILABLE); cb runs
 * on the loop when everything is closed, then the server is freed. */
void rpc_server_stop(struct rpc_server *s, void (*cb)(void *data), void *data);

/* From inside on_call or any call callback: */
struct rpc_conn *rpc_session_conn(struct rpc_session *s);
const struct rpc_peer *rpc_conn_peer(const struct rpc_conn *c);
void *rpc_conn_server_data(const struct rpc_conn *c);
void rpc_conn_kick(struct rpc_conn *c);

/* Clients. on_ready (status 0) or on_closed (status < 0) follows, then
 * calls may start on rpc_conn_session(). on_closed runs once, last. */
typedef void (*rpc_conn_cb)(struct rpc_conn *c, int status, void *data);
int rpc_conn_connect_tls(uv_loop_t *loop, struct rpc_tls_ctx *ctx,
                         const char *address, unsigned timeout_ms,
                         rpc_conn_cb on_ready, rpc_conn_cb on_closed,
                         void *data, struct rpc_conn **out, struct err *e);
int rpc_conn_connect_unix(uv_loop_t *loop, const char *path,
                          rpc_conn_cb on_ready, rpc_conn_cb on_closed,
                          void *data, struct rpc_conn **out, struct err *e);
struct rpc_session *rpc_conn_session(struct rpc_conn *c);
const char *rpc_conn_error(const struct rpc_conn *c);
void rpc_conn_close(struct rpc_conn *c);

/* One unary call on a new connection that is closed afterwards: cb gets
 * the status, the message and the response payload (valid during cb).
 * address is "IP:PORT" (TLS with ctx) or a unix socket path (ctx NULL). */
typedef void (*rpc_unary_cb)(enum rpc_status status, const char *message,
                             const void *payload, size_t len, void *data);
int rpc_unary(uv_loop_t *loop, struct rpc_tls_ctx *ctx, const char *address,
              const char *method, const void *payload, size_t len,
              unsigned timeout_ms, rpc_unary_cb cb, void *data, struct err *e);

/* The checksum of a file as lowercase hex (out: 129 bytes suffice) with
 * Proxmox's checksum-algorithm names: md5, sha1, sha224, sha256, sha384,
 * sha512 (-EINVAL for others). Reads the whole file: call it from a
 * worker thread. */
int rpc_file_digest_hex(const char *path, const char *algorithm, char *out,
                        size_t size, struct err *e);

/* The same checksums over bytes that arrive in pieces (a streamed upload).
 * rpc_digest_new: -EINVAL naming the algorithms for an unknown one,
 * -ENOMEM. rpc_digest_hex_len: how many hex digits its result has (to
 * check a caller's checksum before any byte arrives). rpc_digest_final_hex
 * writes lowercase hex (size >= 129 suffices) once; -EIO if OpenSSL
 * fails. A digest is used by one thread at a time. */
struct rpc_digest;
int rpc_digest_new(const char *algorithm, struct rpc_digest **out,
                   struct err *e);
size_t rpc_digest_hex_len(const struct rpc_digest *d);
int rpc_digest_update(struct rpc_digest *d, const void *data, size_t len,
                      struct err *e);
int rpc_digest_final_hex(struct rpc_digest *d, char *out, size_t size,
                         struct err *e);
void rpc_digest_free(struct rpc_digest *d); /* NULL: nothing */

#endif /* CAIRN_RPC_H */
