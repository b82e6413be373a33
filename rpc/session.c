/* One side of an RPC connection, without I/O: multiplexes calls by call id,
 * turns received frames into events for the calls' owners and the owners'
 * requests into frames, and enforces per-call flow control, deadlines and
 * the limit on calls in flight.
 *
 * The life of a call (one enum, changed only by set_state, which asserts
 * that the move is legal for the call's side; see client_moves and
 * server_moves):
 *
 *   CLIENT                                 SERVER
 *
 *         start(UNARY, SERVER_STREAM)             REQUEST received
 *   IDLE -----------------+                IDLE ------------------> OPEN
 *    |                    |                                          | |
 *    | start(BIDI,        |                    HALF_CLOSE received   | |
 *    | CLIENT_STREAM)     |                  +-----------------------+ |
 *    v                    v                  v                         |
 *   OPEN ------------> HALF_CLOSED_LOCAL   HALF_CLOSED_REMOTE          |
 *        half_close       |                  | respond         respond |
 *    |                    |                  +------> RESPONDING <-----+
 *    +---------+----------+                               |
 *              |                                          | RESPONSE moved
 *              v                                          v to the output
 *   DONE       <- RESPONSE received,       DONE       <- also: deadline,
 *                 session failed/closed                  stream error,
 *   CANCELLED  <- cancel, deadline,                      session failed/closed
 *                 stream error (sends      CANCELLED  <- CANCEL received
 *                 CANCEL)
 *              |                                          |
 *              v on_done delivered                        v on_done delivered
 *   FINISHED                               FINISHED (and freed)
 *
 * Every open state (OPEN, HALF_CLOSED_*, RESPONDING) may end in either.
 *
 * DONE and CANCELLED are "ended": the call id is free again, nothing more
 * is sent or received for it, and on_done is pending. CANCELLED means a
 * CANCEL went over the wire (or would have, had the REQUEST left). A
 * server call that ends before on_call was delivered is freed silently:
 * its owner never heard of it.
 *
 * Events (on_call, messages, half-close, writable, done) are recorded on
 * the call and the call is put on the session's ready list; only
 * rpc_session_process delivers them, so no callback ever runs inside the
 * function call that caused it. Events that arrived from the peer before
 * the peer or the session ended a call are delivered before its on_done;
 * when the owner ends the call itself (cancel, respond), undelivered
 * messages are dropped. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rpc/internal.h"

#define ID_BUCKETS 64
#define COMP       "rpc"

/* Room in the output beyond the high-water mark: one frame that starts
 * below the mark plus control frames (WINDOW, CANCEL, refusals) that the
 * peer makes us send while the I/O layer does not write. Past it the peer
 * sends without reading, and the session fails with -ENOBUFS. */
#define OUT_SLACK ((size_t)1 << 20)

struct rpc_session {
	enum rpc_role role;
	size_t max_frame;
	unsigned max_calls;
	size_t high_water;
	struct clock *clock;
	rpc_session_call_cb on_call;
	void *data;

	struct rpc__frame_decoder decoder;
	struct buf out;
	struct list ids[ID_BUCKETS]; /* calls whose id is live, by id */
	unsigned live;               /* calls in ids */
	struct list sending;         /* calls with frames in their sendq */
	struct list ready;           /* calls with events to deliver */
	uint64_t next_id;            /* client: the next call id */
	int error;                   /* the failure, sticky; 0: none */
	char failure[ERR_MSG_MAX];
	bool is_closed;
	bool in_process; /* callbacks are running */
	struct rpc_session_stats stats;
};

/* A frame waiting in a call's send queue, encoded. */
struct outgoing {
	struct list link;
	Cairn__Frame__Kind kind;
	size_t payload_len; /* DATA */
	size_t size;
	uint8_t bytes[];
};

/* A received DATA (frame) or HALF_CLOSE (frame NULL) to deliver. */
struct event {
	struct list link;
	Cairn__Frame *frame;
};

static const char *const status_names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
};

const char *rpc_status_name(unsigned status)
{
	if (status >= CAIRN_ARRAY_SIZE(status_names))
		return "?";
	return status_names[status];
}

/* ------------------------------------------------------------------------
 * The state machine. */

#define BIT(state) (1u << (state))

static const unsigned client_moves[RPC__CALL_FINISHED + 1] = {
        [RPC__CALL_IDLE] =
                BIT(RPC__CALL_OPEN) | BIT(RPC__CALL_HALF_CLOSED_LOCAL),
        [RPC__CALL_OPEN] = BIT(RPC__CALL_HALF_CLOSED_LOCAL) |
                           BIT(RPC__CALL_DONE) | BIT(RPC__CALL_CANCELLED),
        [RPC__CALL_HALF_CLOSED_LOCAL] =
                BIT(RPC__CALL_DONE) | BIT(RPC__CALL_CANCELLED),
        [RPC__CALL_DONE] = BIT(RPC__CALL_FINISHED),
        [RPC__CALL_CANCELLED] = BIT(RPC__CALL_FINISHED),
};

static const unsigned server_moves[RPC__CALL_FINISHED + 1] = {
        [RPC__CALL_IDLE] = BIT(RPC__CALL_OPEN),
        [RPC__CALL_OPEN] = BIT(RPC__CALL_HALF_CLOSED_REMOTE) |
                           BIT(RPC__CALL_RESPONDING) | BIT(RPC__CALL_DONE) |
                           BIT(RPC__CALL_CANCELLED),
        [RPC__CALL_HALF_CLOSED_REMOTE] = BIT(RPC__CALL_RESPONDING) |
                                         BIT(RPC__CALL_DONE) |
                                         BIT(RPC__CALL_CANCELLED),
        [RPC__CALL_RESPONDING] = BIT(RPC__CALL_DONE) | BIT(RPC__CALL_CANCELLED),
        [RPC__CALL_DONE] = BIT(RPC__CALL_FINISHED),
        [RPC__CALL_CANCELLED] = BIT(RPC__CALL_FINISHED),
};

static void set_state(struct rpc_call *call, enum rpc__call_state to)
{
	const unsigned *moves = call->is_client ? client_moves : server_moves;

	CAIRN_ASSERT((size_t)call->state < CAIRN_ARRAY_SIZE(client_moves));
	CAIRN_ASSERT(moves[call->state] & BIT(to));
	call->state = to;
}

static bool is_ended(const struct rpc_call *call)
{
	return call->state == RPC__CALL_DONE ||
	       call->state == RPC__CALL_CANCELLED;
}

/* May this side send DATA? */
static bool may_send(const struct rpc_call *call)
{
	if (call->is_client)
		return call->state == RPC__CALL_OPEN;
	return call->state == RPC__CALL_OPEN ||
	       call->state == RPC__CALL_HALF_CLOSED_REMOTE;
}

/* May the peer still send DATA that we would take? */
static bool peer_may_send(const struct rpc_call *call)
{
	if (call->is_client)
		return call->state == RPC__CALL_OPEN ||
		       call->state == RPC__CALL_HALF_CLOSED_LOCAL;
	return call->state == RPC__CALL_OPEN;
}

/* ------------------------------------------------------------------------
 * Bookkeeping. */

static struct list *bucket(struct rpc_session *s, uint64_t id)
{
	return &s->ids[id % ID_BUCKETS];
}

static struct rpc_call *find_call(struct rpc_session *s, uint64_t id)
{
	struct list *head = bucket(s, id), *item;

	LIST_FOREACH (item, head) {
		struct rpc_call *call =
		        CAIRN_CONTAINER_OF(item, struct rpc_call, id_link);
		if (call->id == id)
			return call;
	}
	return NULL;
}

static void mark_ready(struct rpc_session *s, struct rpc_call *call)
{
	if (list_is_empty(&call->ready_link))
		list_insert_tail(&s->ready, &call->ready_link);
}

static void purge_events(struct rpc_call *call)
{
	struct list *item;

	while ((item = list_pop_head(&call->events)) != NULL) {
		struct event *ev = CAIRN_CONTAINER_OF(item, struct event, link);
		rpc__frame_free(ev->frame);
		mem_free(ev);
	}
}

static void drop_sendq(struct rpc_call *call)
{
	struct list *item;

	while ((item = list_pop_head(&call->sendq)) != NULL)
		mem_free(CAIRN_CONTAINER_OF(item, struct outgoing, link));
	call->queued_bytes = 0;
	list_remove(&call->sending_link);
}

static void init_call(struct rpc_call *call, struct rpc_session *s,
                      bool is_client)
{
	void *data = call->data;

	memset(call, 0, sizeof *call);
	call->data = data;
	call->session = s;
	call->is_client = is_client;
	call->state = RPC__CALL_IDLE;
	call->send_credit = RPC_INITIAL_WINDOW;
	call->recv_window = RPC_INITIAL_WINDOW;
	list_init(&call->id_link);
	list_init(&call->events);
	list_init(&call->sendq);
	list_init(&call->sending_link);
	list_init(&call->ready_link);
}

static void insert_call(struct rpc_session *s, struct rpc_call *call)
{
	list_insert_tail(bucket(s, call->id), &call->id_link);
	s->live++;
}

/* A server call its owner never heard of. */
static void free_server_call(struct rpc_call *call)
{
	CAIRN_ASSERT(!call->is_client);
	purge_events(call);
	drop_sendq(call);
	list_remove(&call->ready_link);
	rpc__frame_free(call->end_frame);
	mem_free(call->end_message);
	mem_free(call);
}

/* Ends a call: frees its id and its queue, records the status and message
 * for on_done (message NULL keeps the one recorded before), and makes
 * on_done pending. The call may be freed: callers do not touch it after. */
static void end_call(struct rpc_session *s, struct rpc_call *call,
                     enum rpc__call_state to, enum rpc_status status,
                     const char *message)
{
	set_state(call, to);
	if (!list_is_empty(&call->id_link)) {
		list_remove(&call->id_link);
		s->live--;
	}
	drop_sendq(call);
	call->wants_writable = false;
	call->writable_pending = false;
	call->end_status = status;
	if (message != NULL) {
		mem_free(call->end_message);
		/* On allocation failure on_done still runs, with "". */
		call->end_message = mem_strdup(message);
	}
	if (call->drop_events)
		purge_events(call);
	if (!call->is_client && !call->is_announced) {
		free_server_call(call);
		return;
	}
	mark_ready(s, call);
}

/* Ends every call whose id is live (the session failed or closed). */
static void end_all(struct rpc_session *s, const char *message)
{
	struct list *item, *tmp;
	size_t i;

	for (i = 0; i < ID_BUCKETS; i++)
		LIST_FOREACH_SAFE (item, tmp, &s->ids[i]) {
			struct rpc_call *call = CAIRN_CONTAINER_OF(
			        item, struct rpc_call, id_link);
			end_call(s, call, RPC__CALL_DONE,
			         RPC_STATUS_UNAVAILABLE, message);
		}
	CAIRN_ASSERT(s->live == 0);
}

/* The session cannot go on: the peer broke the protocol, memory ran out,
 * or the output passed its cap. Returns code. */
static int session_fail(struct rpc_session *s, int code, const char *why)
{
	char message[ERR_MSG_MAX + 32];

	CAIRN_ASSERT(code < 0);
	if (s->error != 0)
		return s->error;
	s->error = code;
	snprintf(s->failure, sizeof s->failure, "%s", why);
	LOG_WARN(COMP, "session failed", "role=%s error=\"%s\"",
	         s->role == RPC_ROLE_CLIENT ? "client" : "server", why);
	snprintf(message, sizeof message, "connection failed: %s", why);
	end_all(s, message);
	return code;
}

/* ------------------------------------------------------------------------
 * Output. */

/* Appends a control frame to the output, past the high-water mark if need
 * be. A failure fails the session. */
static int send_direct(struct rpc_session *s, const Cairn__Frame *f)
{
	struct err err;
	int rv;

	rv = rpc__frame_encode(f, s->max_frame, &s->out, &err);
	if (rv == -E2BIG)
		return session_fail(s, -ENOBUFS,
		                    "output backlog over its cap: the peer "
		                    "sends but does not read");
	if (rv != 0)
		return session_fail(s, rv, err.msg);
	s->stats.frames_out++;
	return 0;
}

static int send_control(struct rpc_session *s, uint64_t id,
                        Cairn__Frame__Kind kind)
{
	Cairn__Frame f = CAIRN__FRAME__INIT;

	f.has_call_id = true;
	f.call_id = id;
	f.has_kind = true;
	f.kind = kind;
	return send_direct(s, &f);
}

static int send_response(struct rpc_session *s, uint64_t id,
                         enum rpc_status status, const char *message)
{
	Cairn__Frame f = CAIRN__FRAME__INIT;

	f.has_call_id = true;
	f.call_id = id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__RESPONSE;
	f.has_status = true;
	f.status = status;
	f.message = (char *)message;
	return send_direct(s, &f);
}

/* Queues a frame of the call, encoded, behind the call's other frames.
 * -EMSGSIZE, -ENOMEM; nothing changes on failure. */
static int enqueue(struct rpc_session *s, struct rpc_call *call,
                   const Cairn__Frame *f, struct err *e)
{
	struct outgoing *o;
	size_t size = 0;
	int rv;

	rv = rpc__frame_measure(f, s->max_frame, &size, e);
	if (rv != 0)
		return rv;
	o = mem_alloc(sizeof *o + size);
	if (o == NULL)
		return err_set(e, -ENOMEM, "call %" PRIu64 ": out of memory",
		               call->id);
	o->kind = f->kind;
	o->payload_len =
	        f->kind == CAIRN__FRAME__KIND__DATA ? f->payload.len : 0;
	o->size = size;
	rpc__frame_write(f, size, o->bytes);
	list_insert_tail(&call->sendq, &o->link);
	call->queued_bytes += o->payload_len;
	if (list_is_empty(&call->sending_link))
		list_insert_tail(&s->sending, &call->sending_link);
	return 0;
}

/* Moves queued frames into the output, one frame per call in turn, while
 * the output is below the high-water mark. A frame that starts below the
 * mark always fits under the output's cap; if the output cannot grow, the
 * frame stays queued for the next try. */
static void pump(struct rpc_session *s)
{
	struct list *item;

	while (s->out.len < s->high_water &&
	       (item = list_pop_head(&s->sending)) != NULL) {
		struct rpc_call *call =
		        CAIRN_CONTAINER_OF(item, struct rpc_call, sending_link);
		struct outgoing *o = CAIRN_CONTAINER_OF(
		        list_pop_head(&call->sendq), struct outgoing, link);
		Cairn__Frame__Kind kind = o->kind;

		if (buf_append(&s->out, o->bytes, o->size) != 0) {
			list_insert_head(&call->sendq, &o->link);
			list_insert_head(&s->sending, &call->sending_link);
			return;
		}
		s->stats.frames_out++;
		call->queued_bytes -= o->payload_len;
		mem_free(o);
		if (kind == CAIRN__FRAME__KIND__REQUEST)
			call->is_request_sent = true;
		if (!list_is_empty(&call->sendq))
			list_insert_tail(&s->sending, &call->sending_link);
		if (kind == CAIRN__FRAME__KIND__RESPONSE)
			end_call(s, call, RPC__CALL_DONE, call->end_status,
			         NULL);
	}
}

/* ------------------------------------------------------------------------
 * Input. */

static int protocol_error(struct rpc_session *s, struct err *e, const char *fmt,
                          ...) CAIRN_PRINTF(3, 4);

static int protocol_error(struct rpc_session *s, struct err *e, const char *fmt,
                          ...)
{
	char why[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	session_fail(s, -EPROTO, why);
	return err_set(e, -EPROTO, "rpc: %s", why);
}

/* The peer broke the rules of one call (flow control, order of frames):
 * that call fails with INTERNAL and the peer is told (RESPONSE from a
 * server, CANCEL from a client); the other calls go on. */
static int stream_error(struct rpc_session *s, struct rpc_call *call,
                        const char *fmt, ...) CAIRN_PRINTF(3, 4);

static int stream_error(struct rpc_session *s, struct rpc_call *call,
                        const char *fmt, ...)
{
	char why[ERR_MSG_MAX], message[ERR_MSG_MAX + 32];
	uint64_t id = call->id;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(message, sizeof message, "protocol error: %s", why);
	LOG_WARN(COMP, "call failed", "call=%" PRIu64 " error=\"%s\"", id, why);
	if (call->is_client) {
		end_call(s, call, RPC__CALL_CANCELLED, RPC_STATUS_INTERNAL,
		         message);
		return send_control(s, id, CAIRN__FRAME__KIND__CANCEL);
	}
	end_call(s, call, RPC__CALL_DONE, RPC_STATUS_INTERNAL, message);
	return send_response(s, id, RPC_STATUS_INTERNAL, message);
}

static void ignore(struct rpc_session *s, const Cairn__Frame *f)
{
	s->stats.frames_ignored++;
	LOG_DEBUG(COMP, "frame for no live call ignored",
	          "call=%" PRIu64 " kind=%s", f->call_id,
	          rpc__frame_kind_name(f->kind));
}

/* Finds the call a frame from the peer is for; NULL (and 0) when there is
 * none. A client call whose REQUEST is still queued cannot be known to the
 * server: a frame for it is a protocol error. */
static int find_for_peer(struct rpc_session *s, const Cairn__Frame *f,
                         struct rpc_call **out, struct err *e)
{
	struct rpc_call *call = find_call(s, f->call_id);

	*out = NULL;
	if (call != NULL && call->is_client && !call->is_request_sent)
		return protocol_error(
		        s, e, "%s for call %" PRIu64 ", which was never sent",
		        rpc__frame_kind_name(f->kind), f->call_id);
	*out = call;
	return 0;
}

static int add_event(struct rpc_session *s, struct rpc_call *call,
                     Cairn__Frame *frame, struct err *e)
{
	struct event *ev = mem_alloc(sizeof *ev);

	if (ev == NULL) {
		rpc__frame_free(frame);
		session_fail(s, -ENOMEM, "out of memory");
		return err_set(e, -ENOMEM, "rpc: out of memory");
	}
	ev->frame = frame;
	list_insert_tail(&call->events, &ev->link);
	mark_ready(s, call);
	return 0;
}

static int recv_request(struct rpc_session *s, Cairn__Frame *f, struct err *e)
{
	struct rpc_call *call = NULL;
	char message[64];
	int rv = 0;

	if (find_call(s, f->call_id) != NULL) {
		rv = protocol_error(s, e,
		                    "REQUEST for call %" PRIu64
		                    ", which is in progress",
		                    f->call_id);
		goto free_frame;
	}
	if (s->live < s->max_calls)
		call = mem_alloc(sizeof *call);
	if (call == NULL) {
		/* At the limit, or out of memory: the client may retry. */
		s->stats.calls_refused++;
		if (s->live < s->max_calls)
			snprintf(message, sizeof message, "out of memory");
		else
			snprintf(message, sizeof message,
			         "too many calls in flight (limit %u)",
			         s->max_calls);
		rv = send_response(s, f->call_id, RPC_STATUS_RESOURCE_EXHAUSTED,
		                   message);
		goto free_frame;
	}
	call->data = NULL;
	init_call(call, s, false);
	call->id = f->call_id;
	snprintf(call->method, sizeof call->method, "%s", f->method);
	if (f->has_deadline_ms) {
		call->has_deadline = true;
		call->deadline_ms = f->deadline_ms;
		call->deadline_at = clock_mono_ms(s->clock) + f->deadline_ms;
	}
	set_state(call, RPC__CALL_OPEN);
	insert_call(s, call);
	call->end_frame = f; /* for on_call */
	mark_ready(s, call);
	return 0;

free_frame:
	rpc__frame_free(f);
	return rv;
}

static int recv_data(struct rpc_session *s, Cairn__Frame *f, struct err *e)
{
	struct rpc_call *call;
	size_t len = f->payload.len;
	int rv;

	rv = find_for_peer(s, f, &call, e);
	if (rv != 0 || call == NULL) {
		if (rv == 0)
			ignore(s, f);
		goto free_frame;
	}
	if (call->is_client && (call->type == RPC_CALL_UNARY ||
	                        call->type == RPC_CALL_CLIENT_STREAM)) {
		rv = stream_error(s, call,
		                  "DATA on call %" PRIu64
		                  ", whose responses are not streamed",
		                  f->call_id);
		goto free_frame;
	}
	if (call->state == RPC__CALL_RESPONDING) {
		/* Raced our RESPONSE: the client will learn. */
		ignore(s, f);
		goto free_frame;
	}
	if (call->state == RPC__CALL_HALF_CLOSED_REMOTE) {
		rv = stream_error(s, call,
		                  "DATA on call %" PRIu64 " after HALF_CLOSE",
		                  f->call_id);
		goto free_frame;
	}
	if (call->recv_window <= 0) {
		rv = stream_error(s, call,
		                  "DATA of %zu bytes on call %" PRIu64
		                  " beyond the flow-control window (%" PRId64
		                  " left)",
		                  len, f->call_id, call->recv_window);
		goto free_frame;
	}
	call->recv_window -= (int64_t)len;
	call->recv_unconsumed += len;
	return add_event(s, call, f, e);

free_frame:
	rpc__frame_free(f);
	return rv;
}

static int recv_response(struct rpc_session *s, Cairn__Frame *f, struct err *e)
{
	struct rpc_call *call;
	int rv;

	rv = find_for_peer(s, f, &call, e);
	if (rv != 0 || call == NULL) {
		if (rv == 0)
			ignore(s, f);
		rpc__frame_free(f);
		return rv;
	}
	CAIRN_ASSERT(call->end_frame == NULL);
	call->end_frame = f;
	end_call(s, call, RPC__CALL_DONE, f->status,
	         f->message != NULL ? f->message : "");
	return 0;
}

static int recv_half_close(struct rpc_session *s, Cairn__Frame *f,
                           struct err *e)
{
	struct rpc_call *call = find_call(s, f->call_id);

	(void)e;
	if (call == NULL || call->state == RPC__CALL_RESPONDING) {
		ignore(s, f);
		rpc__frame_free(f);
		return 0;
	}
	rpc__frame_free(f);
	if (call->state == RPC__CALL_HALF_CLOSED_REMOTE)
		return stream_error(s, call,
		                    "second HALF_CLOSE on call %" PRIu64,
		                    call->id);
	set_state(call, RPC__CALL_HALF_CLOSED_REMOTE);
	return add_event(s, call, NULL, e);
}

static int recv_cancel(struct rpc_session *s, Cairn__Frame *f)
{
	struct rpc_call *call = find_call(s, f->call_id);

	if (call == NULL)
		ignore(s, f);
	rpc__frame_free(f);
	if (call == NULL)
		return 0;
	/* The client has gone: what it sent before is of no use now. */
	call->drop_events = true;
	end_call(s, call, RPC__CALL_CANCELLED, RPC_STATUS_CANCELLED,
	         "cancelled by the client");
	return 0;
}

static int recv_window(struct rpc_session *s, Cairn__Frame *f, struct err *e)
{
	struct rpc_call *call;
	uint32_t window = f->window;
	int rv;

	rv = find_for_peer(s, f, &call, e);
	if (rv != 0 || call == NULL) {
		if (rv == 0)
			ignore(s, f);
		rpc__frame_free(f);
		return rv;
	}
	rpc__frame_free(f);
	if (call->send_credit + (int64_t)window > RPC_WINDOW_MAX)
		return stream_error(s, call,
		                    "WINDOW of %" PRIu32 " on call %" PRIu64
		                    " takes the send window past %" PRId64,
		                    window, call->id, RPC_WINDOW_MAX);
	call->send_credit += window;
	if (call->wants_writable && call->send_credit > 0) {
		call->wants_writable = false;
		call->writable_pending = true;
		mark_ready(s, call);
	}
	return 0;
}

int rpc__session_recv(struct rpc_session *s, Cairn__Frame *f, struct err *e)
{
	bool is_server = s->role == RPC_ROLE_SERVER;
	const char *kind = rpc__frame_kind_name(f->kind);

	struct err err;

	if (s->error != 0) {
		rpc__frame_free(f);
		return err_set(e, s->error, "rpc: %s", s->failure);
	}
	if (s->is_closed) {
		rpc__frame_free(f);
		return err_set(e, -EPIPE, "rpc: session closed");
	}
	s->stats.frames_in++;
	/* The decoder has checked it; a frame from elsewhere is checked
	 * here, so that nothing below meets a frame that breaks its kind. */
	if (rpc__frame_check(f, &err) != 0) {
		rpc__frame_free(f);
		return protocol_error(s, e, "%s", err.msg);
	}
	switch (f->kind) {
	case CAIRN__FRAME__KIND__REQUEST:
		if (is_server)
			return recv_request(s, f, e);
		break;
	case CAIRN__FRAME__KIND__RESPONSE:
		if (!is_server)
			return recv_response(s, f, e);
		break;
	case CAIRN__FRAME__KIND__DATA:
		return recv_data(s, f, e);
	case CAIRN__FRAME__KIND__HALF_CLOSE:
		if (is_server)
			return recv_half_close(s, f, e);
		break;
	case CAIRN__FRAME__KIND__CANCEL:
		if (is_server)
			return recv_cancel(s, f);
		break;
	case CAIRN__FRAME__KIND__WINDOW:
		return recv_window(s, f, e);
	default:
		break;
	}
	rpc__frame_free(f);
	return protocol_error(s, e, "%s received by a %s", kind,
	                      is_server ? "server" : "client");
}

/* ------------------------------------------------------------------------
 * Sessions. */

int rpc_session_create(const struct rpc_session_config *config,
                       struct rpc_session **out, struct err *e)
{
	struct rpc_session *s;
	size_t i;

	if (config->role != RPC_ROLE_CLIENT && config->role != RPC_ROLE_SERVER)
		return err_set(e, -EINVAL, "rpc session: unknown role %d",
		               (int)config->role);
	if (config->max_frame != 0 &&
	    (config->max_frame < 64 || config->max_frame > (1u << 30)))
		return err_set(e, -EINVAL,
		               "rpc session: max_frame %zu out of [64, 2^30]",
		               config->max_frame);
	if (config->out_high_water > (1u << 30))
		return err_set(e, -EINVAL,
		               "rpc session: out_high_water %zu over 2^30",
		               config->out_high_water);
	if (config->role == RPC_ROLE_SERVER && config->on_call == NULL)
		return err_set(e, -EINVAL,
		               "rpc session: a server needs on_call");

	s = mem_calloc(1, sizeof *s);
	if (s == NULL)
		return err_set(e, -ENOMEM, "rpc session: out of memory");
	s->role = config->role;
	s->max_frame = config->max_frame != 0 ? config->max_frame
	                                      : RPC_FRAME_MAX_DEFAULT;
	s->max_calls = config->max_calls != 0 ? config->max_calls
	                                      : RPC_MAX_CALLS_DEFAULT;
	s->high_water = config->out_high_water != 0 ? config->out_high_water
	                                            : RPC_HIGH_WATER_DEFAULT;
	s->clock = config->clock != NULL ? config->clock : clock_real();
	s->on_call = config->on_call;
	s->data = config->data;
	rpc__frame_decoder_init(&s->decoder, s->max_frame);
	buf_init(&s->out, s->high_water + RPC_FRAME_PREFIX + 2 * s->max_frame +
	                          OUT_SLACK);
	for (i = 0; i < ID_BUCKETS; i++)
		list_init(&s->ids[i]);
	list_init(&s->sending);
	list_init(&s->ready);
	s->next_id = 1;
	*out = s;
	return 0;
}

void rpc_session_destroy(struct rpc_session *s)
{
	if (s == NULL)
		return;
	CAIRN_ASSERT(!s->in_process);
	/* Every call has ended and been told: close + process first. */
	CAIRN_ASSERT(s->live == 0);
	CAIRN_ASSERT(list_is_empty(&s->ready));
	CAIRN_ASSERT(list_is_empty(&s->sending));
	rpc__frame_decoder_close(&s->decoder);
	buf_free(&s->out);
	mem_free(s);
}

void *rpc_session_data(const struct rpc_session *s)
{
	return s->data;
}

enum rpc_role rpc_session_role(const struct rpc_session *s)
{
	return s->role;
}

int rpc_session_feed(struct rpc_session *s, const void *data, size_t len,
                     struct err *e)
{
	const uint8_t *p = data;
	size_t used = 0, n;
	Cairn__Frame *f;
	struct err err;
	int rv;

	CAIRN_ASSERT(!s->in_process);
	if (s->error != 0)
		return err_set(e, s->error, "rpc: %s", s->failure);
	if (s->is_closed)
		return err_set(e, -EPIPE, "rpc: session closed");
	while (used < len) {
		rv = rpc__frame_decoder_feed(&s->decoder, p + used, len - used,
		                             &n, &f, &err);
		if (rv != 0) {
			session_fail(s, rv, err.msg);
			return err_set(e, rv, "rpc: %s", err.msg);
		}
		CAIRN_ASSERT(n > 0);
		used += n;
		if (f != NULL) {
			rv = rpc__session_recv(s, f, e);
			if (rv != 0)
				return rv;
		}
	}
	return 0;
}

struct buf *rpc_session_output(struct rpc_session *s)
{
	return &s->out;
}

bool rpc_session_is_backlogged(const struct rpc_session *s)
{
	return s->out.len >= s->high_water;
}

/* Delivers what is pending on one call; its on_done comes last. */
static void deliver(struct rpc_session *s, struct rpc_call *call)
{
	const struct rpc_call_cbs *cbs;
	struct list *item;

	if (!call->is_client && !call->is_announced) {
		Cairn__Frame *request = call->end_frame;

		call->end_frame = NULL;
		call->is_announced = true;
		s->on_call(s, call, request->payload.data,
		           request->payload.len);
		rpc__frame_free(request);
	}

	while ((item = list_pop_head(&call->events)) != NULL) {
		struct event *ev = CAIRN_CONTAINER_OF(item, struct event, link);

		cbs = call->cbs;
		if (ev->frame == NULL) {
			if (cbs != NULL && cbs->on_half_close != NULL)
				cbs->on_half_close(call);
		} else if (cbs != NULL && cbs->on_message != NULL) {
			cbs->on_message(call, ev->frame->payload.data,
			                ev->frame->payload.len);
		}
		rpc__frame_free(ev->frame);
		mem_free(ev);
	}

	if (call->writable_pending) {
		call->writable_pending = false;
		cbs = call->cbs;
		if (may_send(call) && cbs != NULL && cbs->on_writable != NULL)
			cbs->on_writable(call);
	}

	if (is_ended(call) && list_is_empty(&call->events)) {
		/* The call may be restarted (client) or is freed (server)
		 * once on_done returns: take what it holds first. */
		enum rpc_status status = call->end_status;
		char *message = call->end_message;
		Cairn__Frame *response = call->end_frame;
		bool is_client = call->is_client;

		call->end_message = NULL;
		call->end_frame = NULL;
		list_remove(&call->ready_link);
		set_state(call, RPC__CALL_FINISHED);
		cbs = call->cbs;
		if (cbs != NULL && cbs->on_done != NULL)
			cbs->on_done(
			        call, status, message != NULL ? message : "",
			        response != NULL ? response->payload.data
			                         : NULL,
			        response != NULL ? response->payload.len : 0);
		if (!is_client)
			mem_free(call);
		mem_free(message);
		rpc__frame_free(response);
	}
}

void rpc_session_process(struct rpc_session *s)
{
	struct list *item;

	CAIRN_ASSERT(!s->in_process);
	s->in_process = true;
	pump(s);
	while ((item = list_pop_head(&s->ready)) != NULL)
		deliver(s,
		        CAIRN_CONTAINER_OF(item, struct rpc_call, ready_link));
	pump(s);
	s->in_process = false;
}

unsigned rpc_session_expire(struct rpc_session *s)
{
	uint64_t now = clock_mono_ms(s->clock);
	char message[64];
	struct list *item, *tmp;
	unsigned expired = 0;
	size_t i;

	CAIRN_ASSERT(!s->in_process);
	for (i = 0; i < ID_BUCKETS && s->error == 0; i++)
		LIST_FOREACH_SAFE (item, tmp, &s->ids[i]) {
			struct rpc_call *call = CAIRN_CONTAINER_OF(
			        item, struct rpc_call, id_link);
			uint64_t id = call->id;
			bool is_sent = call->is_request_sent;

			if (!call->has_deadline || now < call->deadline_at)
				continue;
			expired++;
			s->stats.calls_expired++;
			snprintf(message, sizeof message,
			         "deadline of %" PRIu32 " ms exceeded",
			         call->deadline_ms);
			LOG_DEBUG(COMP, "deadline exceeded",
			          "call=%" PRIu64 " method=%s", id,
			          call->method);
			if (call->is_client) {
				end_call(s, call, RPC__CALL_CANCELLED,
				         RPC_STATUS_DEADLINE_EXCEEDED, message);
				if (is_sent)
					send_control(
					        s, id,
					        CAIRN__FRAME__KIND__CANCEL);
			} else {
				end_call(s, call, RPC__CALL_DONE,
				         RPC_STATUS_DEADLINE_EXCEEDED, message);
				send_response(s, id,
				              RPC_STATUS_DEADLINE_EXCEEDED,
				              message);
			}
			/* A failed send ended every call, tmp included. */
			if (s->error != 0)
				break;
		}
	return expired;
}

bool rpc_session_next_deadline(const struct rpc_session *s, uint64_t *at)
{
	const struct list *item;
	bool found = false;
	size_t i;

	for (i = 0; i < ID_BUCKETS; i++)
		LIST_FOREACH (item, &s->ids[i]) {
			const struct rpc_call *call = CAIRN_CONTAINER_OF(
			        item, struct rpc_call, id_link);

			if (call->has_deadline &&
			    (!found || call->deadline_at < *at)) {
				*at = call->deadline_at;
				found = true;
			}
		}
	return found;
}

void rpc_session_close(struct rpc_session *s, const char *reason)
{
	char message[ERR_MSG_MAX];

	CAIRN_ASSERT(!s->in_process);
	if (s->is_closed)
		return;
	s->is_closed = true;
	snprintf(message, sizeof message, "connection closed: %s",
	         reason != NULL ? reason : "");
	end_all(s, message);
}

void rpc_session_get_stats(const struct rpc_session *s,
                           struct rpc_session_stats *out)
{
	*out = s->stats;
	out->calls_live = s->live;
}

/* ------------------------------------------------------------------------
 * Calls. */

static int check_open(const struct rpc_call *call, const char *what,
                      struct err *e)
{
	if (call->state == RPC__CALL_IDLE || call->state == RPC__CALL_FINISHED)
		return err_set(e, -EPIPE, "%s: call %" PRIu64 " is not running",
		               what, call->id);
	if (is_ended(call) || call->state == RPC__CALL_RESPONDING)
		return err_set(e, -EPIPE, "%s: call %" PRIu64 " has ended",
		               what, call->id);
	return 0;
}

int rpc_call_start(struct rpc_call *call, struct rpc_session *s,
                   const struct rpc_call_cbs *cbs, enum rpc_call_type type,
                   const char *method, const void *payload, size_t len,
                   uint32_t deadline_ms, struct err *e)
{
	Cairn__Frame f = CAIRN__FRAME__INIT;
	int rv;

	if (s->role != RPC_ROLE_CLIENT)
		return err_set(e, -EINVAL, "rpc: only a client starts calls");
	if (s->error != 0)
		return err_set(e, -EPIPE, "rpc: %s", s->failure);
	if (s->is_closed)
		return err_set(e, -EPIPE, "rpc: session closed");
	if (type != RPC_CALL_UNARY && type != RPC_CALL_SERVER_STREAM &&
	    type != RPC_CALL_CLIENT_STREAM && type != RPC_CALL_BIDI)
		return err_set(e, -EINVAL, "rpc: unknown call type %d",
		               (int)type);
	rv = rpc__method_check(method, e);
	if (rv != 0)
		return rv;

	f.has_call_id = true;
	f.call_id = s->next_id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__REQUEST;
	f.method = (char *)method;
	f.has_payload = len > 0;
	f.payload.data = (uint8_t *)payload;
	f.payload.len = len;
	f.has_deadline_ms = deadline_ms > 0;
	f.deadline_ms = deadline_ms;

	init_call(call, s, true);
	call->id = s->next_id;
	call->type = type;
	call->cbs = cbs;
	snprintf(call->method, sizeof call->method, "%s", method);
	rv = enqueue(s, call, &f, e);
	if (rv != 0)
		return rv;
	s->next_id++;
	if (deadline_ms > 0) {
		call->has_deadline = true;
		call->deadline_ms = deadline_ms;
		call->deadline_at = clock_mono_ms(s->clock) + deadline_ms;
	}
	insert_call(s, call);
	set_state(call, type == RPC_CALL_CLIENT_STREAM || type == RPC_CALL_BIDI
	                        ? RPC__CALL_OPEN
	                        : RPC__CALL_HALF_CLOSED_LOCAL);
	pump(s);
	return 0;
}

void rpc_call_set_cbs(struct rpc_call *call, const struct rpc_call_cbs *cbs)
{
	call->cbs = cbs;
}

int rpc_call_send(struct rpc_call *call, const void *data, size_t len,
                  struct err *e)
{
	struct rpc_session *s = call->session;
	Cairn__Frame f = CAIRN__FRAME__INIT;
	int rv;

	if (call->is_client && (call->type == RPC_CALL_UNARY ||
	                        call->type == RPC_CALL_SERVER_STREAM))
		return err_set(e, -EINVAL,
		               "send: call %" PRIu64
		               " does not stream requests",
		               call->id);
	rv = check_open(call, "send", e);
	if (rv != 0)
		return rv;
	if (!may_send(call))
		return err_set(e, -EPIPE, "send: call %" PRIu64 " half-closed",
		               call->id);
	if (call->send_credit <= 0) {
		call->wants_writable = true;
		return err_set(e, -EAGAIN,
		               "send: call %" PRIu64 ": window used up",
		               call->id);
	}
	f.has_call_id = true;
	f.call_id = call->id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__DATA;
	f.has_payload = true;
	f.payload.data = (uint8_t *)data;
	f.payload.len = len;
	rv = enqueue(s, call, &f, e);
	if (rv != 0)
		return rv;
	call->send_credit -= (int64_t)len;
	pump(s);
	return 0;
}

int rpc_call_half_close(struct rpc_call *call, struct err *e)
{
	struct rpc_session *s = call->session;
	Cairn__Frame f = CAIRN__FRAME__INIT;
	int rv;

	if (!call->is_client)
		return err_set(
		        e, -EINVAL,
		        "half-close: a server ends a call by responding");
	rv = check_open(call, "half-close", e);
	if (rv != 0)
		return rv;
	if (call->state != RPC__CALL_OPEN)
		return err_set(e, -EPIPE,
		               "half-close: call %" PRIu64
		               " already half-closed",
		               call->id);
	f.has_call_id = true;
	f.call_id = call->id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__HALF_CLOSE;
	rv = enqueue(s, call, &f, e);
	if (rv != 0)
		return rv;
	set_state(call, RPC__CALL_HALF_CLOSED_LOCAL);
	pump(s);
	return 0;
}

int rpc_call_cancel(struct rpc_call *call, struct err *e)
{
	struct rpc_session *s = call->session;
	bool is_sent = call->is_request_sent;
	uint64_t id = call->id;
	int rv;

	if (!call->is_client)
		return err_set(e, -EINVAL,
		               "cancel: a server ends a call by responding");
	rv = check_open(call, "cancel", e);
	if (rv != 0)
		return rv;
	call->drop_events = true;
	end_call(s, call, RPC__CALL_CANCELLED, RPC_STATUS_CANCELLED,
	         "cancelled by the caller");
	/* A REQUEST still in the queue went nowhere: nothing to cancel. */
	if (is_sent)
		send_control(s, id, CAIRN__FRAME__KIND__CANCEL);
	return 0;
}

int rpc_call_respond(struct rpc_call *call, enum rpc_status status,
                     const char *message, const void *payload, size_t len,
                     struct err *e)
{
	struct rpc_session *s = call->session;
	Cairn__Frame f = CAIRN__FRAME__INIT;
	char *copy = NULL;
	int rv;

	if (call->is_client)
		return err_set(e, -EINVAL, "respond: only a server responds");
	if ((unsigned)status > RPC_STATUS_MAX)
		return err_set(e, -EINVAL, "respond: status %d out of range",
		               (int)status);
	rv = check_open(call, "respond", e);
	if (rv != 0)
		return rv;
	if (message != NULL && message[0] != '\0') {
		copy = mem_strdup(message);
		if (copy == NULL)
			return err_set(e, -ENOMEM, "respond: out of memory");
	}
	f.has_call_id = true;
	f.call_id = call->id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__RESPONSE;
	f.has_status = true;
	f.status = status;
	f.message = copy;
	f.has_payload = len > 0;
	f.payload.data = (uint8_t *)payload;
	f.payload.len = len;
	rv = enqueue(s, call, &f, e);
	if (rv != 0) {
		mem_free(copy);
		return rv;
	}
	set_state(call, RPC__CALL_RESPONDING);
	call->drop_events = true;
	purge_events(call);
	call->wants_writable = false;
	call->writable_pending = false;
	call->end_status = status;
	mem_free(call->end_message);
	call->end_message = copy;
	pump(s);
	return 0;
}

int rpc_call_consume(struct rpc_call *call, size_t bytes, struct err *e)
{
	struct rpc_session *s = call->session;
	Cairn__Frame f = CAIRN__FRAME__INIT;
	int rv;

	if (call->state == RPC__CALL_IDLE ||
	    call->state == RPC__CALL_FINISHED || is_ended(call))
		return 0;
	if (bytes > call->recv_unconsumed)
		return err_set(e, -EINVAL,
		               "consume: %zu bytes on call %" PRIu64
		               ", of %" PRIu64 " delivered",
		               bytes, call->id, call->recv_unconsumed);
	call->recv_unconsumed -= bytes;
	call->recv_ungranted += bytes;
	/* Grants go out in batches of half a window, which is enough: a
	 * sender that is stopped has used its whole window, so once its
	 * messages are consumed at least a window is waiting to be granted. */
	if (!peer_may_send(call) ||
	    call->recv_ungranted < RPC_INITIAL_WINDOW / 2)
		return 0;
	f.has_call_id = true;
	f.call_id = call->id;
	f.has_kind = true;
	f.kind = CAIRN__FRAME__KIND__WINDOW;
	f.has_window = true;
	while (call->recv_ungranted > 0) {
		f.window = call->recv_ungranted > UINT32_MAX
		                   ? UINT32_MAX
		                   : (uint32_t)call->recv_ungranted;
		rv = send_direct(s, &f);
		if (rv != 0)
			return err_set(e, rv, "rpc: %s", s->failure);
		call->recv_ungranted -= f.window;
		call->recv_window += f.window;
	}
	return 0;
}

uint64_t rpc_call_id(const struct rpc_call *call)
{
	return call->id;
}

const char *rpc_call_method(const struct rpc_call *call)
{
	return call->method;
}

struct rpc_session *rpc_call_session(const struct rpc_call *call)
{
	return call->session;
}

uint32_t rpc_call_deadline_ms(const struct rpc_call *call)
{
	return call->deadline_ms;
}

int64_t rpc_call_send_credit(const struct rpc_call *call)
{
	return call->send_credit;
}
