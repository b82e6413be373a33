/* Unit tests for rpc/session: a client and a server session wired to each
 * other in memory (each one's output fed to the other's input), driven
 * through unary, streaming and bidirectional calls, flow control under a
 * slow reader, deadlines on a fake clock, cancellation, limits, hostile
 * frames, and the rule that every call ends exactly once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------
 * Fixture. */

#define MAX_SERVER_CALLS 512
#define LOG_MAX          1024
#define W                ((size_t)RPC_INITIAL_WINDOW)

/* What one side saw of one call. */
struct record {
	uint8_t *bytes; /* messages, concatenated (malloc, not mem_) */
	size_t len, cap;
	size_t nmessages;
	size_t unconsumed, consumed;
	bool manual_consume;
	int half_closes, writables, dones;
	enum rpc_status status;
	char message[256];
	uint8_t response[256];
	size_t response_len;
	char log[LOG_MAX]; /* m: message, h: half-close, w: writable, d: done */
	struct rpc_call *call; /* server: the call until on_done */
	struct fixture *fixture;
	int restarts; /* client: restart this many times from on_done */
};

struct fixture {
	struct clock_fake clock;
	struct rpc_session *client, *server;
	struct record server_calls[MAX_SERVER_CALLS];
	size_t nserver_calls;
	bool server_manual_consume; /* for Hold calls */
	uint32_t seed;
	size_t chunk_max; /* feed in random chunks up to this; 0: whole */
	bool tolerate_errors;
	int feed_errors;
	char arrivals[LOG_MAX]; /* server: which call each DATA was for */
};

static uint32_t lcg(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static void log_event(struct record *r, char c)
{
	size_t n = strlen(r->log);

	if (n + 1 < sizeof r->log) {
		r->log[n] = c;
		r->log[n + 1] = '\0';
	}
}

static void record_bytes(struct record *r, const void *data, size_t len)
{
	if (r->len + len > r->cap) {
		size_t cap = r->cap == 0 ? 4096 : r->cap;

		while (cap < r->len + len)
			cap *= 2;
		r->bytes = realloc(r->bytes, cap);
		assert_non_null(r->bytes);
		r->cap = cap;
	}
	if (len > 0)
		memcpy(r->bytes + r->len, data, len);
	r->len += len;
}

static void on_message(struct rpc_call *call, const void *data, size_t len)
{
	struct record *r = call->data;
	struct err e;

	record_bytes(r, data, len);
	r->nmessages++;
	r->unconsumed += len;
	log_event(r, 'm');
	if (r->call != NULL && r->fixture != NULL) {
		size_t n = strlen(r->fixture->arrivals);

		if (n + 1 < sizeof r->fixture->arrivals)
			r->fixture->arrivals[n] =
			        (char)('a' + (r - r->fixture->server_calls));
	}
	if (!r->manual_consume) {
		assert_int_equal(rpc_call_consume(call, len, &e), 0);
		r->unconsumed -= len;
		r->consumed += len;
	}
}

static void on_half_close(struct rpc_call *call)
{
	struct record *r = call->data;

	r->half_closes++;
	log_event(r, 'h');
}

static void on_writable(struct rpc_call *call)
{
	struct record *r = call->data;

	r->writables++;
	log_event(r, 'w');
}

static const struct rpc_call_cbs record_cbs;

static void on_done(struct rpc_call *call, enum rpc_status status,
                    const char *message, const void *payload, size_t len)
{
	struct record *r = call->data;
	struct err e;

	r->dones++;
	log_event(r, 'd');
	r->status = status;
	snprintf(r->message, sizeof r->message, "%s", message);
	assert_true(len <= sizeof r->response);
	if (len > 0)
		memcpy(r->response, payload, len);
	r->response_len = len;
	r->call = NULL;
	if (r->restarts > 0) {
		r->restarts--;
		assert_int_equal(rpc_call_start(call, rpc_call_session(call),
		                                &record_cbs, RPC_CALL_UNARY,
		                                "test.Echo/Unary", "again", 5,
		                                0, &e),
		                 0);
	}
}

static const struct rpc_call_cbs record_cbs = {
        .on_message = on_message,
        .on_half_close = on_half_close,
        .on_writable = on_writable,
        .on_done = on_done,
};

/* Bidi: each message goes back as it came; half-close ends the call. */
static void echo_message(struct rpc_call *call, const void *data, size_t len)
{
	struct record *r = call->data;
	struct err e;
	int rv;

	on_message(call, data, len);
	rv = rpc_call_send(call, data, len, &e);
	if (!r->fixture->tolerate_errors)
		assert_int_equal(rv, 0);
}

static void echo_half_close(struct rpc_call *call)
{
	struct record *r = call->data;
	struct err e;
	int rv;

	on_half_close(call);
	rv = rpc_call_respond(call, RPC_STATUS_OK, "bye", NULL, 0, &e);
	if (!r->fixture->tolerate_errors)
		assert_int_equal(rv, 0);
}

static const struct rpc_call_cbs echo_cbs = {
        .on_message = echo_message,
        .on_half_close = echo_half_close,
        .on_writable = on_writable,
        .on_done = on_done,
};

/* The server's methods:
 *   test.Echo/Unary   answers "re:" + request
 *   test.Echo/Stream  sends N messages "msg I" (N = request), then OK
 *   test.Echo/Bidi    echoes messages, answers OK "bye" on half-close
 *   test.Echo/Hold    records the call and does nothing
 *   anything else     UNIMPLEMENTED */
static void on_call(struct rpc_session *s, struct rpc_call *call,
                    const void *payload, size_t len)
{
	struct fixture *f = rpc_session_data(s);
	const char *method = rpc_call_method(call);
	struct record *r;
	char text[64];
	struct err e;
	int rv = 0;

	assert_true(f->nserver_calls < MAX_SERVER_CALLS);
	r = &f->server_calls[f->nserver_calls++];
	r->call = call;
	r->fixture = f;
	call->data = r;
	rpc_call_set_cbs(call, &record_cbs);

	if (strcmp(method, "test.Echo/Unary") == 0) {
		uint8_t answer[300];

		assert_true(len + 3 <= sizeof answer);
		memcpy(answer, "re:", 3);
		if (len > 0)
			memcpy(answer + 3, payload, len);
		rv = rpc_call_respond(call, RPC_STATUS_OK, NULL, answer,
		                      len + 3, &e);
	} else if (strcmp(method, "test.Echo/Stream") == 0) {
		int n;

		snprintf(text, sizeof text, "%.*s", (int)len,
		         (const char *)payload);
		n = atoi(text);
		for (int i = 0; i < n && rv == 0; i++) {
			snprintf(text, sizeof text, "msg %d", i);
			rv = rpc_call_send(call, text, strlen(text), &e);
		}
		if (rv == 0)
			rv = rpc_call_respond(call, RPC_STATUS_OK, "streamed",
			                      NULL, 0, &e);
	} else if (strcmp(method, "test.Echo/Bidi") == 0) {
		rpc_call_set_cbs(call, &echo_cbs);
	} else if (strcmp(method, "test.Echo/Hold") == 0) {
		r->manual_consume = f->server_manual_consume;
	} else {
		rv = rpc_call_respond(call, RPC_STATUS_UNIMPLEMENTED,
		                      "no such method", NULL, 0, &e);
	}
	if (!f->tolerate_errors && rv != 0)
		fail_msg("handler of %s: %s", method, e.msg);
}

static struct fixture *fixture_new_with(const struct rpc_session_config *c,
                                        const struct rpc_session_config *s)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct rpc_session_config cc = {0}, sc = {0};
	struct err e;

	assert_non_null(f);
	if (c != NULL)
		cc = *c;
	if (s != NULL)
		sc = *s;
	clock_fake_init(&f->clock, 1000000, 0);
	f->seed = 1;
	cc.role = RPC_ROLE_CLIENT;
	cc.clock = &f->clock.clock;
	cc.data = f;
	sc.role = RPC_ROLE_SERVER;
	sc.clock = &f->clock.clock;
	sc.on_call = on_call;
	sc.data = f;
	assert_int_equal(rpc_session_create(&cc, &f->client, &e), 0);
	assert_int_equal(rpc_session_create(&sc, &f->server, &e), 0);
	return f;
}

static struct fixture *fixture_new(void)
{
	return fixture_new_with(NULL, NULL);
}

static void fixture_free(struct fixture *f)
{
	rpc_session_close(f->client, "test over");
	rpc_session_close(f->server, "test over");
	rpc_session_process(f->client);
	rpc_session_process(f->server);
	rpc_session_destroy(f->client);
	rpc_session_destroy(f->server);
	for (size_t i = 0; i < f->nserver_calls; i++)
		free(f->server_calls[i].bytes);
	free(f);
}

static void record_free(struct record *r)
{
	free(r->bytes);
	memset(r, 0, sizeof *r);
}

/* Moves what `from` wrote into `to`, like a connection would: the output
 * is taken whole, then fed in chunks. Returns the bytes moved. */
static size_t transfer(struct fixture *f, struct rpc_session *from,
                       struct rpc_session *to)
{
	struct buf *out = rpc_session_output(from);
	size_t n = out->len, at = 0;
	char *bytes;
	struct err e;

	if (n == 0)
		return 0;
	bytes = buf_steal(out);
	while (at < n) {
		size_t chunk = n - at;
		int rv;

		if (f->chunk_max > 0) {
			size_t c = 1 + lcg(&f->seed) % f->chunk_max;
			chunk = c < chunk ? c : chunk;
		}
		rv = rpc_session_feed(to, bytes + at, chunk, &e);
		if (rv != 0) {
			f->feed_errors++;
			if (!f->tolerate_errors)
				fail_msg("feed: %s", e.msg);
			break;
		}
		at += chunk;
	}
	mem_free(bytes);
	return n;
}

/* Runs both sides until nothing moves. */
static void run(struct fixture *f)
{
	for (int i = 0; i < 100000; i++) {
		size_t moved;

		rpc_session_process(f->client);
		rpc_session_process(f->server);
		moved = transfer(f, f->client, f->server);
		moved += transfer(f, f->server, f->client);
		if (moved == 0)
			return;
	}
	fail_msg("the sessions never settle");
}

static void start(struct fixture *f, struct rpc_call *call, struct record *r,
                  enum rpc_call_type type, const char *method,
                  const char *payload, uint32_t deadline_ms)
{
	struct err e;

	memset(r, 0, sizeof *r);
	r->fixture = f;
	call->data = r;
	if (rpc_call_start(call, f->client, &record_cbs, type, method, payload,
	                   payload != NULL ? strlen(payload) : 0, deadline_ms,
	                   &e) != 0)
		fail_msg("start %s: %s", method, e.msg);
}

static Cairn__Frame frame_of(uint64_t id, Cairn__Frame__Kind kind)
{
	Cairn__Frame f = CAIRN__FRAME__INIT;

	f.has_call_id = true;
	f.call_id = id;
	f.has_kind = true;
	f.kind = kind;
	return f;
}

/* Feeds a frame packed without checks, as a hostile peer would send it. */
static int feed_raw(struct rpc_session *s, const Cairn__Frame *fr,
                    struct err *e)
{
	size_t size = cairn__frame__get_packed_size(fr);
	uint8_t *bytes = malloc(size + 4);
	int rv;

	assert_non_null(bytes);
	cairn__frame__pack(fr, bytes + 4);
	bytes[0] = (uint8_t)(size >> 24);
	bytes[1] = (uint8_t)(size >> 16);
	bytes[2] = (uint8_t)(size >> 8);
	bytes[3] = (uint8_t)size;
	rv = rpc_session_feed(s, bytes, size + 4, e);
	free(bytes);
	return rv;
}

static void feed_request(struct rpc_session *s, uint64_t id, const char *method)
{
	Cairn__Frame fr = frame_of(id, CAIRN__FRAME__KIND__REQUEST);
	struct err e;

	fr.method = (char *)method;
	assert_int_equal(feed_raw(s, &fr, &e), 0);
}

static void feed_data(struct rpc_session *s, uint64_t id, size_t len, int want)
{
	Cairn__Frame fr = frame_of(id, CAIRN__FRAME__KIND__DATA);
	uint8_t *payload = calloc(1, len + 1);
	struct err e;

	assert_non_null(payload);
	fr.has_payload = true;
	fr.payload.data = payload;
	fr.payload.len = len;
	assert_int_equal(feed_raw(s, &fr, &e), want);
	free(payload);
}

/* Decodes and takes what a session wrote. */
static size_t take_output(struct rpc_session *s, Cairn__Frame **frames,
                          size_t max)
{
	struct buf *out = rpc_session_output(s);
	struct rpc__frame_decoder d;
	size_t used = 0, n = 0, step;
	Cairn__Frame *fr;
	struct err e;

	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	while (used < out->len) {
		assert_int_equal(rpc__frame_decoder_feed(&d, out->data + used,
		                                         out->len - used, &step,
		                                         &fr, &e),
		                 0);
		used += step;
		if (fr != NULL) {
			assert_true(n < max);
			frames[n++] = fr;
		}
	}
	rpc__frame_decoder_close(&d);
	buf_reset(out);
	return n;
}

static void free_frames(Cairn__Frame **frames, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rpc__frame_free(frames[i]);
}

static struct rpc_session_stats stats_of(struct rpc_session *s)
{
	struct rpc_session_stats st;

	rpc_session_get_stats(s, &st);
	return st;
}

/* ------------------------------------------------------------------------
 * Calls of every kind. */

static void test_unary_round_trip(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Unary", "hello", 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_OK);
	assert_string_equal(r.message, "");
	assert_int_equal(r.response_len, 8);
	assert_memory_equal(r.response, "re:hello", 8);
	assert_string_equal(r.log, "d");
	assert_int_equal(f->nserver_calls, 1);
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_OK);
	assert_int_equal(stats_of(f->client).calls_live, 0);
	assert_int_equal(stats_of(f->server).calls_live, 0);
	fixture_free(f);
}

static void test_unary_round_trip_fed_one_byte_at_a_time(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;

	(void)state;
	f->chunk_max = 1;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Unary", "", 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_OK);
	assert_memory_equal(r.response, "re:", 3);
	fixture_free(f);
}

static void test_unknown_method_is_unimplemented(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Nope/Nope", NULL, 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_UNIMPLEMENTED);
	assert_string_equal(r.message, "no such method");
	fixture_free(f);
}

static void
test_server_stream_delivers_messages_in_order_then_done(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	const char *want = "msg 0msg 1msg 2msg 3msg 4";

	(void)state;
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Stream", "5", 0);
	run(f);
	assert_string_equal(r.log, "mmmmmd");
	assert_int_equal(r.nmessages, 5);
	assert_int_equal(r.len, strlen(want));
	assert_memory_equal(r.bytes, want, r.len);
	assert_int_equal(r.status, RPC_STATUS_OK);
	assert_string_equal(r.message, "streamed");
	record_free(&r);
	fixture_free(f);
}

static void test_bidi_stream_flows_both_ways(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	char sent[256] = "", text[32];
	struct err e;

	(void)state;
	f->chunk_max = 7;
	start(f, &call, &r, RPC_CALL_BIDI, "test.Echo/Bidi", NULL, 0);
	for (int i = 0; i < 10; i++) {
		snprintf(text, sizeof text, "ping %d;", i);
		strcat(sent, text);
		assert_int_equal(rpc_call_send(&call, text, strlen(text), &e),
		                 0);
		if (i % 3 == 0)
			run(f);
	}
	run(f);
	/* Every echo came back while the call is still open. */
	assert_int_equal(r.nmessages, 10);
	assert_int_equal(r.dones, 0);
	assert_int_equal(r.len, strlen(sent));
	assert_memory_equal(r.bytes, sent, r.len);

	assert_int_equal(rpc_call_half_close(&call, &e), 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_OK);
	assert_string_equal(r.message, "bye");
	assert_int_equal(f->server_calls[0].nmessages, 10);
	assert_int_equal(f->server_calls[0].half_closes, 1);
	assert_string_equal(f->server_calls[0].log, "mmmmmmmmmmhd");
	assert_memory_equal(f->server_calls[0].bytes, sent, strlen(sent));
	record_free(&r);
	fixture_free(f);
}

static void test_client_stream_sends_data_then_half_close(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	f->server_manual_consume = false;
	start(f, &call, &r, RPC_CALL_CLIENT_STREAM, "test.Echo/Hold", "head",
	      0);
	assert_int_equal(rpc_call_send(&call, "a", 1, &e), 0);
	assert_int_equal(rpc_call_send(&call, "bc", 2, &e), 0);
	assert_int_equal(rpc_call_half_close(&call, &e), 0);
	run(f);
	assert_string_equal(f->server_calls[0].log, "mmh");
	assert_memory_equal(f->server_calls[0].bytes, "abc", 3);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_OK, NULL, "3", 1, &e),
	                 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_memory_equal(r.response, "3", 1);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Flow control. */

/* A pattern no two nearby offsets share, so that a lost, repeated or
 * reordered chunk cannot compare equal. */
static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ 0x5a);
}

static void test_slow_reader_stops_the_sender(void **state)
{
	const size_t total = (size_t)10 << 20, per_tick = 40 * 1024;
	struct fixture *f = fixture_new();
	uint8_t *pattern = malloc(total);
	struct rpc_call call;
	struct record r, *server;
	size_t offset = 0, largest = 0, peak = 0;
	uint32_t seed = 99;
	bool can_send = true, responded = false;
	int eagains = 0, writables_seen = 0, ticks = 0;
	struct err e;

	(void)state;
	assert_non_null(pattern);
	for (size_t i = 0; i < total; i++)
		pattern[i] = pattern_byte(i);
	f->chunk_max = 16384; /* TLS records */
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Hold", NULL, 0);
	r.manual_consume = true;
	run(f);
	server = &f->server_calls[0];
	assert_non_null(server->call);

	while (r.dones == 0) {
		assert_true(++ticks < 100000);
		/* The producer sends until told to wait, then waits for
		 * on_writable: it never polls. */
		while (can_send && offset < total) {
			size_t n = lcg(&seed) % 16 == 0
			                   ? 300 * 1024 /* over the window */
			                   : 1 + lcg(&seed) % (48 * 1024);
			int rv;

			if (n > total - offset)
				n = total - offset;
			rv = rpc_call_send(server->call, pattern + offset, n,
			                   &e);
			if (rv == -EAGAIN) {
				eagains++;
				can_send = false;
				break;
			}
			assert_int_equal(rv, 0);
			/* Accepted only with credit left... */
			assert_true(offset - r.consumed < W);
			offset += n;
			largest = n > largest ? n : largest;
			/* ...so in flight never passes window + one chunk. */
			assert_true(offset - r.consumed <= W + largest);
			peak = offset - r.consumed > peak ? offset - r.consumed
			                                  : peak;
		}
		if (offset == total && !responded) {
			assert_int_equal(rpc_call_respond(server->call,
			                                  RPC_STATUS_OK, "all",
			                                  NULL, 0, &e),
			                 0);
			responded = true;
		}
		run(f);
		if (server->writables > writables_seen) {
			writables_seen = server->writables;
			can_send = true;
		}
		/* The reader takes at most per_tick bytes per tick. */
		if (r.unconsumed > 0) {
			size_t n = r.unconsumed < per_tick ? r.unconsumed
			                                   : per_tick;

			assert_int_equal(rpc_call_consume(&call, n, &e), 0);
			r.unconsumed -= n;
			r.consumed += n;
		}
		assert_true(offset - r.consumed <= W + largest);
	}
	assert_int_equal(r.status, RPC_STATUS_OK);
	assert_int_equal(r.len, total);
	assert_true(memcmp(r.bytes, pattern, total) == 0);
	/* The sender was really held back by the reader. */
	assert_true(eagains > 10);
	assert_int_equal(writables_seen, eagains);
	assert_true(ticks >= (int)(total / per_tick) - 10);
	assert_true(peak >= W / 2);
	free(pattern);
	record_free(&r);
	fixture_free(f);
}

static void test_message_larger_than_window_goes_then_sender_waits(void **state)
{
	const size_t big = (size_t)1 << 20;
	struct fixture *f = fixture_new();
	uint8_t *payload = calloc(1, big);
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	assert_non_null(payload);
	start(f, &call, &r, RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	f->server_manual_consume = true;
	run(f);
	assert_int_equal(rpc_call_send(&call, payload, big, &e), 0);
	assert_int_equal(rpc_call_send_credit(&call),
	                 (int64_t)W - (int64_t)big);
	assert_int_equal(rpc_call_send(&call, "x", 1, &e), -EAGAIN);
	assert_int_equal(rpc_call_send(&call, "x", 1, &e), -EAGAIN);
	run(f);
	assert_int_equal(f->server_calls[0].len, big);
	assert_int_equal(r.writables, 0); /* the reader has not consumed */

	assert_int_equal(rpc_call_consume(f->server_calls[0].call, big, &e), 0);
	run(f);
	assert_int_equal(r.writables, 1); /* once, for two -EAGAINs */
	assert_int_equal(rpc_call_send_credit(&call), (int64_t)W);
	assert_int_equal(rpc_call_send(&call, "x", 1, &e), 0);

	/* Window that comes back without a -EAGAIN before it: no event. */
	assert_int_equal(rpc_call_send(&call, payload, W / 2, &e), 0);
	run(f);
	assert_int_equal(
	        rpc_call_consume(f->server_calls[0].call, W / 2 + 1, &e), 0);
	run(f);
	assert_int_equal(rpc_call_send_credit(&call), (int64_t)W);
	assert_int_equal(r.writables, 1);
	free(payload);
	fixture_free(f);
}

static void test_data_beyond_the_window_fails_only_that_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame *out[8];
	size_t n;

	(void)state;
	f->server_manual_consume = true;
	feed_request(f->server, 1, "test.Echo/Hold");
	feed_request(f->server, 3, "test.Echo/Hold");
	rpc_session_process(f->server);
	feed_data(f->server, 1, W, 0); /* the whole window: fine */
	feed_data(f->server, 1, 1, 0); /* one byte more: a violation */
	feed_data(f->server, 3, 1, 0); /* the other call goes on */
	rpc_session_process(f->server);

	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_INTERNAL);
	assert_non_null(strstr(f->server_calls[0].message,
	                       "beyond the flow-control window"));
	assert_int_equal(f->server_calls[1].dones, 0);
	assert_int_equal(f->server_calls[1].nmessages, 1);

	n = take_output(f->server, out, 8);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->kind, CAIRN__FRAME__KIND__RESPONSE);
	assert_int_equal(out[0]->call_id, 1);
	assert_int_equal(out[0]->status, RPC_STATUS_INTERNAL);
	free_frames(out, n);

	/* Later frames for the failed call are ignored. */
	feed_data(f->server, 1, 1, 0);
	assert_int_equal(stats_of(f->server).frames_ignored, 1);
	fixture_free(f);
}

static void test_grants_follow_consumption_in_half_windows(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame *out[8];
	struct err e;
	size_t n;

	(void)state;
	f->server_manual_consume = true;
	feed_request(f->server, 1, "test.Echo/Hold");
	rpc_session_process(f->server);
	feed_data(f->server, 1, W / 2 - 1, 0);
	feed_data(f->server, 1, 2, 0);
	rpc_session_process(f->server);
	assert_int_equal(
	        rpc_call_consume(f->server_calls[0].call, W / 2 - 1, &e), 0);
	assert_int_equal(take_output(f->server, out, 8), 0);
	assert_int_equal(rpc_call_consume(f->server_calls[0].call, 2, &e), 0);
	n = take_output(f->server, out, 8);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->kind, CAIRN__FRAME__KIND__WINDOW);
	assert_int_equal(out[0]->window, W / 2 + 1);
	free_frames(out, n);
	assert_int_equal(rpc_call_consume(f->server_calls[0].call, 1, &e),
	                 -EINVAL);
	fixture_free(f);
}

static void test_window_overflow_fails_the_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(1, CAIRN__FRAME__KIND__WINDOW);
	Cairn__Frame *out[8];
	struct rpc_call call;
	struct record r;
	struct err e;
	size_t n;

	(void)state;
	start(f, &call, &r, RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	buf_reset(rpc_session_output(f->client));
	fr.has_window = true;
	fr.window = UINT32_MAX;
	assert_int_equal(feed_raw(f->client, &fr, &e), 0);
	rpc_session_process(f->client);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_INTERNAL);
	n = take_output(f->client, out, 8);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->kind, CAIRN__FRAME__KIND__CANCEL);
	free_frames(out, n);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Output scheduling. */

static void test_output_stops_at_high_water_and_calls_take_turns(void **state)
{
	struct rpc_session_config cc = {.out_high_water = 4096};
	struct fixture *f = fixture_new_with(&cc, NULL);
	struct rpc_call calls[3];
	struct record r[3];
	uint8_t chunk[8192] = {0};
	struct err e;

	(void)state;
	for (int i = 0; i < 3; i++)
		start(f, &calls[i], &r[i], RPC_CALL_CLIENT_STREAM,
		      "test.Echo/Hold", NULL, 0);
	run(f);
	for (int m = 0; m < 4; m++)
		for (int i = 0; i < 3; i++)
			assert_int_equal(rpc_call_send(&calls[i], chunk,
			                               sizeof chunk, &e),
			                 0);
	assert_true(rpc_session_is_backlogged(f->client));
	assert_true(rpc_session_output(f->client)->len < 4096 + 8192 + 64);
	run(f);
	assert_false(rpc_session_is_backlogged(f->client));
	/* One message per call in turn, not all of one call first. */
	assert_string_equal(f->arrivals, "abcabcabcabc");
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Deadlines. */

static void test_server_answers_deadline_exceeded(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	uint64_t at;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 1000);
	run(f);
	assert_int_equal(rpc_call_deadline_ms(f->server_calls[0].call), 1000);
	assert_true(rpc_session_next_deadline(f->server, &at));
	assert_int_equal(at, 1000000 + 1000);

	clock_fake_advance(&f->clock, 999);
	assert_int_equal(rpc_session_expire(f->server), 0);
	run(f);
	assert_int_equal(r.dones, 0);

	clock_fake_advance(&f->clock, 1);
	assert_int_equal(rpc_session_expire(f->server), 1);
	assert_int_equal(f->server_calls[0].dones, 0); /* not inside */
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_DEADLINE_EXCEEDED);
	assert_string_equal(r.message, "deadline of 1000 ms exceeded");
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status,
	                 RPC_STATUS_DEADLINE_EXCEEDED);
	assert_false(rpc_session_next_deadline(f->server, &at));
	assert_int_equal(stats_of(f->server).calls_expired, 1);
	fixture_free(f);
}

static void test_client_cancels_at_its_deadline(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;

	(void)state;
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Hold", NULL, 50);
	run(f);
	clock_fake_advance(&f->clock, 60);
	assert_int_equal(rpc_session_expire(f->client), 1);
	assert_int_equal(r.dones, 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_DEADLINE_EXCEEDED);
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_CANCELLED);
	assert_int_equal(stats_of(f->server).calls_live, 0);
	/* The server's own deadline has passed too; nothing is left. */
	assert_int_equal(rpc_session_expire(f->server), 0);
	fixture_free(f);
}

static void test_deadline_before_the_handler_saw_the_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(7, CAIRN__FRAME__KIND__REQUEST);
	Cairn__Frame *out[4];
	struct err e;
	size_t n;

	(void)state;
	fr.method = "test.Echo/Hold";
	fr.has_deadline_ms = true;
	fr.deadline_ms = 10;
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	clock_fake_advance(&f->clock, 10);
	assert_int_equal(rpc_session_expire(f->server), 1);
	rpc_session_process(f->server);
	assert_int_equal(f->nserver_calls, 0); /* never announced */
	n = take_output(f->server, out, 4);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->status, RPC_STATUS_DEADLINE_EXCEEDED);
	free_frames(out, n);
	fixture_free(f);
}

static void test_next_deadline_is_the_earliest(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call calls[3];
	struct record r[3];
	uint64_t at;

	(void)state;
	assert_false(rpc_session_next_deadline(f->client, &at));
	start(f, &calls[0], &r[0], RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	start(f, &calls[1], &r[1], RPC_CALL_UNARY, "test.Echo/Hold", NULL, 500);
	start(f, &calls[2], &r[2], RPC_CALL_UNARY, "test.Echo/Hold", NULL, 200);
	assert_true(rpc_session_next_deadline(f->client, &at));
	assert_int_equal(at, 1000000 + 200);
	clock_fake_advance(&f->clock, 200);
	assert_int_equal(rpc_session_expire(f->client), 1);
	assert_true(rpc_session_next_deadline(f->client, &at));
	assert_int_equal(at, 1000000 + 500);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Cancellation. */

static void test_cancel_mid_stream(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r, *server;
	struct err e;

	(void)state;
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Hold", NULL, 0);
	run(f);
	server = &f->server_calls[0];
	for (int i = 0; i < 3; i++)
		assert_int_equal(rpc_call_send(server->call, "tick", 4, &e), 0);
	run(f);
	assert_int_equal(r.nmessages, 3);

	assert_int_equal(rpc_call_cancel(&call, &e), 0);
	assert_int_equal(r.dones, 0); /* never inside the call */
	/* The server, not knowing yet, sends two more. */
	assert_int_equal(rpc_call_send(server->call, "tick", 4, &e), 0);
	assert_int_equal(rpc_call_send(server->call, "tick", 4, &e), 0);
	transfer(f, f->server, f->client);
	rpc_session_process(f->client);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_CANCELLED);
	assert_string_equal(r.message, "cancelled by the caller");
	assert_int_equal(r.nmessages, 3);
	assert_int_equal(stats_of(f->client).frames_ignored, 2);

	transfer(f, f->client, f->server);
	/* Ended before on_done: sends fail at once. */
	assert_int_equal(rpc_call_send(server->call, "tick", 4, &e), -EPIPE);
	assert_int_equal(server->dones, 0);
	rpc_session_process(f->server);
	assert_int_equal(server->dones, 1);
	assert_int_equal(server->status, RPC_STATUS_CANCELLED);
	assert_string_equal(server->message, "cancelled by the client");

	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(server->dones, 1);
	assert_int_equal(rpc_call_cancel(&call, &e), -EPIPE);
	record_free(&r);
	fixture_free(f);
}

static void test_cancel_drops_undelivered_messages(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Stream", "3", 0);
	rpc_session_process(f->client);
	transfer(f, f->client, f->server);
	rpc_session_process(f->server);
	transfer(f, f->server, f->client); /* 3 DATA + RESPONSE, pending */
	assert_int_equal(rpc_call_cancel(&call, &e), -EPIPE); /* ended */
	rpc_session_process(f->client);
	assert_string_equal(r.log, "mmmd");

	/* Cancelled before delivery: the messages are dropped. */
	record_free(&r);
	start(f, &call, &r, RPC_CALL_SERVER_STREAM, "test.Echo/Hold", NULL, 0);
	run(f);
	assert_int_equal(rpc_call_send(f->server_calls[1].call, "x", 1, &e), 0);
	transfer(f, f->server, f->client);
	assert_int_equal(rpc_call_cancel(&call, &e), 0);
	rpc_session_process(f->client);
	assert_string_equal(r.log, "d");
	assert_int_equal(r.status, RPC_STATUS_CANCELLED);
	record_free(&r);
	fixture_free(f);
}

static void test_cancel_before_the_request_left_sends_nothing(void **state)
{
	struct rpc_session_config cc = {.out_high_water = 1};
	struct fixture *f = fixture_new_with(&cc, NULL);
	struct rpc_call a, b;
	struct record ra, rb;
	size_t before;
	struct err e;

	(void)state;
	start(f, &a, &ra, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	start(f, &b, &rb, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	before = rpc_session_output(f->client)->len;
	assert_int_equal(rpc_call_cancel(&b, &e), 0);
	assert_int_equal(rpc_session_output(f->client)->len, before);
	run(f);
	assert_int_equal(rb.dones, 1);
	assert_int_equal(rb.status, RPC_STATUS_CANCELLED);
	assert_int_equal(f->nserver_calls, 1);
	assert_int_equal(stats_of(f->server).frames_ignored, 0);
	fixture_free(f);
}

static void test_cancel_racing_the_response_ends_once(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	run(f);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_OK, NULL, NULL, 0, &e),
	                 0);
	assert_int_equal(rpc_call_cancel(&call, &e), 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_CANCELLED);
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_OK);
	assert_int_equal(stats_of(f->client).frames_ignored, 1);
	assert_int_equal(stats_of(f->server).frames_ignored, 1);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Limits. */

static void test_calls_over_the_limit_are_resource_exhausted(void **state)
{
	struct rpc_session_config sc = {.max_calls = 4};
	struct fixture *f = fixture_new_with(NULL, &sc);
	struct rpc_call calls[6];
	struct record r[6];
	struct err e;

	(void)state;
	for (int i = 0; i < 5; i++)
		start(f, &calls[i], &r[i], RPC_CALL_UNARY, "test.Echo/Hold",
		      NULL, 0);
	run(f);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].dones, 0);
	assert_int_equal(r[4].dones, 1);
	assert_int_equal(r[4].status, RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(r[4].message, "too many calls in flight (limit 4)");
	assert_int_equal(stats_of(f->server).calls_refused, 1);
	assert_int_equal(stats_of(f->server).calls_live, 4);

	/* One ends; the next call fits again. */
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_OK, NULL, NULL, 0, &e),
	                 0);
	run(f);
	start(f, &calls[5], &r[5], RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	run(f);
	assert_int_equal(r[5].dones, 0);
	assert_int_equal(stats_of(f->server).calls_live, 4);
	fixture_free(f);
}

static void test_default_limit_is_256_calls(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call *calls = calloc(257, sizeof *calls);
	struct record *r = calloc(257, sizeof *r);

	(void)state;
	assert_non_null(calls);
	assert_non_null(r);
	for (int i = 0; i < 257; i++)
		start(f, &calls[i], &r[i], RPC_CALL_UNARY, "test.Echo/Hold",
		      NULL, 0);
	run(f);
	assert_int_equal(stats_of(f->server).calls_live, 256);
	assert_int_equal(r[256].status, RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(r[255].dones, 0);
	fixture_free(f);
	for (int i = 0; i < 257; i++)
		assert_int_equal(r[i].dones, 1);
	free(calls);
	free(r);
}

/* ------------------------------------------------------------------------
 * Unknown ids and protocol errors. */

static void test_frames_for_unknown_calls_are_ignored_and_counted(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr;
	struct err e;

	(void)state;
	feed_data(f->server, 99, 3, 0);
	fr = frame_of(99, CAIRN__FRAME__KIND__WINDOW);
	fr.has_window = true;
	fr.window = 10;
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	fr = frame_of(99, CAIRN__FRAME__KIND__HALF_CLOSE);
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	fr = frame_of(99, CAIRN__FRAME__KIND__CANCEL);
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	rpc_session_process(f->server);
	assert_int_equal(f->nserver_calls, 0);
	assert_int_equal(stats_of(f->server).frames_ignored, 4);
	assert_int_equal(stats_of(f->server).frames_in, 4);

	feed_data(f->client, 99, 3, 0);
	fr = frame_of(99, CAIRN__FRAME__KIND__RESPONSE);
	fr.has_status = true;
	assert_int_equal(feed_raw(f->client, &fr, &e), 0);
	assert_int_equal(stats_of(f->client).frames_ignored, 2);
	fixture_free(f);
}

static void test_request_reusing_a_live_id_fails_the_session(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(5, CAIRN__FRAME__KIND__REQUEST);
	struct err e;

	(void)state;
	feed_request(f->server, 5, "test.Echo/Hold");
	rpc_session_process(f->server);
	fr.method = "test.Echo/Hold";
	assert_int_equal(feed_raw(f->server, &fr, &e), -EPROTO);
	assert_string_equal(e.msg,
	                    "rpc: REQUEST for call 5, which is in progress");
	rpc_session_process(f->server);
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_UNAVAILABLE);
	assert_string_equal(f->server_calls[0].message,
	                    "connection failed: REQUEST for call 5, which is "
	                    "in progress");
	/* The failure sticks. */
	feed_data(f->server, 5, 1, -EPROTO);
	fixture_free(f);
}

static void test_a_finished_id_may_be_reused(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(5, CAIRN__FRAME__KIND__CANCEL);
	struct err e;

	(void)state;
	feed_request(f->server, 5, "test.Echo/Hold");
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	feed_request(f->server, 5, "test.Echo/Hold");
	rpc_session_process(f->server);
	assert_int_equal(f->nserver_calls, 1); /* the first was never seen */
	assert_int_equal(stats_of(f->server).calls_live, 1);
	fixture_free(f);
}

static void test_frames_in_the_wrong_direction_fail_the_session(void **state)
{
	Cairn__Frame__Kind to_client[] = {CAIRN__FRAME__KIND__REQUEST,
	                                  CAIRN__FRAME__KIND__HALF_CLOSE,
	                                  CAIRN__FRAME__KIND__CANCEL};

	(void)state;
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(to_client); i++) {
		struct fixture *f = fixture_new();
		Cairn__Frame fr = frame_of(1, to_client[i]);
		struct err e;

		if (to_client[i] == CAIRN__FRAME__KIND__REQUEST)
			fr.method = "a.B/C";
		assert_int_equal(feed_raw(f->client, &fr, &e), -EPROTO);
		assert_non_null(strstr(e.msg, "received by a client"));
		fixture_free(f);
	}
}

static void test_response_received_by_a_server_fails_the_session(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(1, CAIRN__FRAME__KIND__RESPONSE);
	struct err e;

	(void)state;
	fr.has_status = true;
	assert_int_equal(feed_raw(f->server, &fr, &e), -EPROTO);
	assert_string_equal(e.msg, "rpc: RESPONSE received by a server");
	fixture_free(f);
}

static void test_garbage_fails_the_session_and_ends_every_call(void **state)
{
	struct fixture *f = fixture_new();
	const uint8_t garbage[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
	struct rpc_call calls[2];
	struct record r[2];
	struct err e;

	(void)state;
	start(f, &calls[0], &r[0], RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	start(f, &calls[1], &r[1], RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	run(f);
	assert_int_equal(
	        rpc_session_feed(f->client, garbage, sizeof garbage, &e),
	        -EPROTO);
	assert_string_equal(e.msg, "rpc: frame: 3 bytes are not a valid Frame");
	assert_int_equal(r[0].dones, 0);
	rpc_session_process(f->client);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].dones, 1);
		assert_int_equal(r[i].status, RPC_STATUS_UNAVAILABLE);
		assert_string_equal(r[i].message,
		                    "connection failed: frame: 3 bytes are not "
		                    "a valid Frame");
	}
	assert_int_equal(rpc_session_feed(f->client, "x", 1, &e), -EPROTO);
	assert_int_equal(rpc_call_start(&calls[0], f->client, &record_cbs,
	                                RPC_CALL_UNARY, "a.B/C", NULL, 0, 0,
	                                &e),
	                 -EPIPE);
	fixture_free(f);
}

static void test_oversized_frame_fails_the_session(void **state)
{
	struct rpc_session_config sc = {.max_frame = 1024};
	struct fixture *f = fixture_new_with(NULL, &sc);
	const uint8_t prefix[] = {0, 0, 0x04, 0x01};
	struct err e;

	(void)state;
	assert_int_equal(rpc_session_feed(f->server, prefix, sizeof prefix, &e),
	                 -EMSGSIZE);
	assert_string_equal(e.msg,
	                    "rpc: frame: length 1025 over the limit of 1024");
	fixture_free(f);
}

static void test_data_after_half_close_fails_the_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(1, CAIRN__FRAME__KIND__HALF_CLOSE);
	struct err e;

	(void)state;
	feed_request(f->server, 1, "test.Echo/Hold");
	rpc_session_process(f->server);
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	feed_data(f->server, 1, 1, 0);
	rpc_session_process(f->server);
	assert_string_equal(f->server_calls[0].log, "hd");
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_INTERNAL);
	assert_non_null(
	        strstr(f->server_calls[0].message, "DATA on call 1 after"));
	fixture_free(f);
}

static void test_second_half_close_fails_the_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame fr = frame_of(1, CAIRN__FRAME__KIND__HALF_CLOSE);
	struct err e;

	(void)state;
	feed_request(f->server, 1, "test.Echo/Hold");
	rpc_session_process(f->server);
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	assert_int_equal(feed_raw(f->server, &fr, &e), 0);
	rpc_session_process(f->server);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_INTERNAL);
	fixture_free(f);
}

static void test_data_on_a_unary_call_fails_it_at_the_client(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	run(f);
	assert_int_equal(rpc_call_send(f->server_calls[0].call, "x", 1, &e), 0);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_INTERNAL);
	assert_non_null(strstr(r.message, "not streamed"));
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_CANCELLED);
	fixture_free(f);
}

static void test_frame_for_a_call_never_sent_fails_the_session(void **state)
{
	struct rpc_session_config cc = {.out_high_water = 1};
	struct fixture *f = fixture_new_with(&cc, NULL);
	Cairn__Frame fr = frame_of(2, CAIRN__FRAME__KIND__RESPONSE);
	struct rpc_call a, b;
	struct record ra, rb;
	struct err e;

	(void)state;
	start(f, &a, &ra, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	start(f, &b, &rb, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	assert_int_equal(rpc_call_id(&b), 2);
	fr.has_status = true;
	assert_int_equal(feed_raw(f->client, &fr, &e), -EPROTO);
	assert_string_equal(e.msg,
	                    "rpc: RESPONSE for call 2, which was never sent");
	rpc_session_process(f->client);
	assert_int_equal(ra.status, RPC_STATUS_UNAVAILABLE);
	assert_int_equal(rb.status, RPC_STATUS_UNAVAILABLE);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Exactly once, never inside. */

static void test_done_never_runs_inside_the_call_that_ends(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;
	struct err e;

	(void)state;
	start(f, &call, &r, RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	assert_int_equal(r.dones, 0);
	run(f);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_ABORTED, "no", NULL, 0,
	                                  &e),
	                 0);
	assert_int_equal(f->server_calls[0].dones, 0);
	rpc_session_process(f->server);
	assert_int_equal(f->server_calls[0].dones, 1);
	assert_int_equal(f->server_calls[0].status, RPC_STATUS_ABORTED);
	rpc_session_process(f->server);
	assert_int_equal(f->server_calls[0].dones, 1);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(r.status, RPC_STATUS_ABORTED);
	assert_string_equal(r.message, "no");
	rpc_session_process(f->client);
	assert_int_equal(r.dones, 1);
	fixture_free(f);
	assert_int_equal(r.dones, 1);
}

static void test_close_ends_every_call_exactly_once(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call a, b, c;
	struct record ra, rb, rc;
	struct err e;

	(void)state;
	start(f, &a, &ra, RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	run(f);
	start(f, &b, &rb, RPC_CALL_UNARY, "test.Echo/Unary", "x", 0);
	transfer(f, f->client, f->server);
	rpc_session_process(f->server);
	transfer(f, f->server, f->client); /* b's RESPONSE, undelivered */
	start(f, &c, &rc, RPC_CALL_UNARY, "test.Echo/Unary", "y", 0);

	rpc_session_close(f->client, "peer reset");
	assert_int_equal(ra.dones + rb.dones + rc.dones, 0);
	rpc_session_process(f->client);
	assert_int_equal(ra.dones, 1);
	assert_int_equal(rb.dones, 1);
	assert_int_equal(rc.dones, 1);
	assert_int_equal(ra.status, RPC_STATUS_UNAVAILABLE);
	assert_string_equal(ra.message, "connection closed: peer reset");
	assert_int_equal(rb.status, RPC_STATUS_OK); /* ended before */
	assert_int_equal(rc.status, RPC_STATUS_UNAVAILABLE);
	rpc_session_process(f->client);
	rpc_session_close(f->client, "again");
	rpc_session_process(f->client);
	assert_int_equal(ra.dones + rb.dones + rc.dones, 3);
	assert_int_equal(rpc_session_feed(f->client, "x", 1, &e), -EPIPE);
	assert_int_equal(rpc_call_start(&a, f->client, &record_cbs,
	                                RPC_CALL_UNARY, "a.B/C", NULL, 0, 0,
	                                &e),
	                 -EPIPE);
	fixture_free(f);
}

static void test_client_may_restart_a_call_from_on_done(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_call call;
	struct record r;

	(void)state;
	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Unary", "first", 0);
	r.restarts = 2;
	run(f);
	assert_int_equal(r.dones, 3);
	assert_memory_equal(r.response, "re:again", 8);
	assert_int_equal(rpc_call_id(&call), 3);
	assert_int_equal(f->nserver_calls, 3);
	fixture_free(f);
}

static void test_server_may_respond_inside_on_call(void **state)
{
	struct fixture *f = fixture_new();
	Cairn__Frame *out[4];
	size_t n;

	(void)state;
	feed_request(f->server, 3, "test.Echo/Unary");
	assert_int_equal(f->nserver_calls, 0); /* not inside feed */
	rpc_session_process(f->server);
	assert_int_equal(f->nserver_calls, 1);
	assert_string_equal(f->server_calls[0].log, "d");
	n = take_output(f->server, out, 4);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->call_id, 3);
	assert_int_equal(out[0]->status, RPC_STATUS_OK);
	free_frames(out, n);
	fixture_free(f);
}

/* ------------------------------------------------------------------------
 * Misuse of the API. */

static void test_misuse_is_refused_without_callbacks(void **state)
{
	struct fixture *f = fixture_new();
	struct rpc_session_config bad = {.role = RPC_ROLE_SERVER};
	struct rpc_session *s;
	struct rpc_call call, bidi, never;
	struct record r, rb, rn;
	uint8_t *big = calloc(1, RPC_FRAME_MAX_DEFAULT);
	struct err e;

	(void)state;
	assert_non_null(big);
	assert_int_equal(rpc_session_create(&bad, &s, &e), -EINVAL);
	assert_string_equal(e.msg, "rpc session: a server needs on_call");
	bad.role = RPC_ROLE_CLIENT;
	bad.max_frame = 10;
	assert_int_equal(rpc_session_create(&bad, &s, &e), -EINVAL);

	memset(&rn, 0, sizeof rn);
	never.data = &rn;
	assert_int_equal(rpc_call_start(&never, f->server, &record_cbs,
	                                RPC_CALL_UNARY, "a.B/C", NULL, 0, 0,
	                                &e),
	                 -EINVAL);
	assert_int_equal(rpc_call_start(&never, f->client, &record_cbs,
	                                RPC_CALL_UNARY, "bad", NULL, 0, 0, &e),
	                 -EINVAL);
	assert_int_equal(rpc_call_start(&never, f->client, &record_cbs,
	                                RPC_CALL_UNARY, "a.B/C", big,
	                                RPC_FRAME_MAX_DEFAULT, 0, &e),
	                 -EMSGSIZE);

	start(f, &call, &r, RPC_CALL_UNARY, "test.Echo/Hold", NULL, 0);
	assert_int_equal(rpc_call_send(&call, "x", 1, &e), -EINVAL);
	assert_int_equal(rpc_call_half_close(&call, &e), -EPIPE);
	assert_int_equal(
	        rpc_call_respond(&call, RPC_STATUS_OK, NULL, NULL, 0, &e),
	        -EINVAL);

	start(f, &bidi, &rb, RPC_CALL_BIDI, "test.Echo/Hold", NULL, 0);
	assert_int_equal(rpc_call_send(&bidi, big, RPC_FRAME_MAX_DEFAULT, &e),
	                 -EMSGSIZE);
	assert_int_equal(rpc_call_half_close(&bidi, &e), 0);
	assert_int_equal(rpc_call_half_close(&bidi, &e), -EPIPE);
	assert_int_equal(rpc_call_send(&bidi, "x", 1, &e), -EPIPE);
	assert_int_equal(rpc_call_consume(&bidi, 1, &e), -EINVAL);
	run(f);

	assert_int_equal(rpc_call_cancel(f->server_calls[0].call, &e), -EINVAL);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call, 17, NULL,
	                                  NULL, 0, &e),
	                 -EINVAL);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_OK, NULL, NULL, 0, &e),
	                 0);
	assert_int_equal(rpc_call_respond(f->server_calls[0].call,
	                                  RPC_STATUS_OK, NULL, NULL, 0, &e),
	                 -EPIPE);
	run(f);
	assert_int_equal(r.dones, 1);
	assert_int_equal(rpc_call_cancel(&call, &e), -EPIPE);
	assert_int_equal(rpc_call_consume(&call, 1, &e), 0);
	assert_int_equal(rn.dones, 0);
	free(big);
	fixture_free(f);
	assert_int_equal(rb.dones, 1);
}

/* ------------------------------------------------------------------------
 * Allocation failures. */

static void test_allocation_failures_still_end_every_call_once(void **state)
{
	int clean_runs = 0;

	(void)state;
	for (long fail_at = 0; clean_runs < 20; fail_at++) {
		struct fixture *f = fixture_new();
		struct rpc_call call;
		struct record r;
		struct err e;
		bool started;

		assert_true(fail_at < 1000);
		f->tolerate_errors = true;
		memset(&r, 0, sizeof r);
		r.fixture = f;
		call.data = &r;
		mem_fail_after(fail_at);
		started = rpc_call_start(&call, f->client, &record_cbs,
		                         RPC_CALL_BIDI, "test.Echo/Bidi", "hi",
		                         2, 0, &e) == 0;
		if (started) {
			rpc_call_send(&call, "one", 3, &e);
			rpc_call_send(&call, "two", 3, &e);
			rpc_call_half_close(&call, &e);
			run(f);
		}
		mem_fail_reset();
		if (started && r.dones == 1 && r.status == RPC_STATUS_OK &&
		    r.nmessages == 2 && f->feed_errors == 0 &&
		    strcmp(r.message, "bye") == 0)
			clean_runs++;
		else
			clean_runs = 0;
		fixture_free(f);
		assert_int_equal(r.dones, started ? 1 : 0);
		free(r.bytes);
	}
}

/* Warnings (failed calls, failed sessions) are expected here: format them,
 * but keep them out of the test output. */
static void discard_log(void *data, enum log_level level, const char *line,
                        size_t len)
{
	(void)data;
	(void)level;
	(void)line;
	(void)len;
}

int main(void)
{
	log_set_sink(discard_log, NULL);
	log_set_level(LOG_LEVEL_DEBUG);

	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_unary_round_trip),
	        cmocka_unit_test(test_unary_round_trip_fed_one_byte_at_a_time),
	        cmocka_unit_test(test_unknown_method_is_unimplemented),
	        cmocka_unit_test(
	                test_server_stream_delivers_messages_in_order_then_done),
	        cmocka_unit_test(test_bidi_stream_flows_both_ways),
	        cmocka_unit_test(test_client_stream_sends_data_then_half_close),
	        cmocka_unit_test(test_slow_reader_stops_the_sender),
	        cmocka_unit_test(
	                test_message_larger_than_window_goes_then_sender_waits),
	        cmocka_unit_test(
	                test_data_beyond_the_window_fails_only_that_call),
	        cmocka_unit_test(
	                test_grants_follow_consumption_in_half_windows),
	        cmocka_unit_test(test_window_overflow_fails_the_call),
	        cmocka_unit_test(
	                test_output_stops_at_high_water_and_calls_take_turns),
	        cmocka_unit_test(test_server_answers_deadline_exceeded),
	        cmocka_unit_test(test_client_cancels_at_its_deadline),
	        cmocka_unit_test(test_deadline_before_the_handler_saw_the_call),
	        cmocka_unit_test(test_next_deadline_is_the_earliest),
	        cmocka_unit_test(test_cancel_mid_stream),
	        cmocka_unit_test(test_cancel_drops_undelivered_messages),
	        cmocka_unit_test(
	                test_cancel_before_the_request_left_sends_nothing),
	        cmocka_unit_test(test_cancel_racing_the_response_ends_once),
	        cmocka_unit_test(
	                test_calls_over_the_limit_are_resource_exhausted),
	        cmocka_unit_test(test_default_limit_is_256_calls),
	        cmocka_unit_test(
	                test_frames_for_unknown_calls_are_ignored_and_counted),
	        cmocka_unit_test(
	                test_request_reusing_a_live_id_fails_the_session),
	        cmocka_unit_test(test_a_finished_id_may_be_reused),
	        cmocka_unit_test(
	                test_frames_in_the_wrong_direction_fail_the_session),
	        cmocka_unit_test(
	                test_response_received_by_a_server_fails_the_session),
	        cmocka_unit_test(
	                test_garbage_fails_the_session_and_ends_every_call),
	        cmocka_unit_test(test_oversized_frame_fails_the_session),
	        cmocka_unit_test(test_data_after_half_close_fails_the_call),
	        cmocka_unit_test(test_second_half_close_fails_the_call),
	        cmocka_unit_test(
	                test_data_on_a_unary_call_fails_it_at_the_client),
	        cmocka_unit_test(
	                test_frame_for_a_call_never_sent_fails_the_session),
	        cmocka_unit_test(
	                test_done_never_runs_inside_the_call_that_ends),
	        cmocka_unit_test(test_close_ends_every_call_exactly_once),
	        cmocka_unit_test(test_client_may_restart_a_call_from_on_done),
	        cmocka_unit_test(test_server_may_respond_inside_on_call),
	        cmocka_unit_test(test_misuse_is_refused_without_callbacks),
	        cmocka_unit_test(
	                test_allocation_failures_still_end_every_call_once),
	};

	return cmocka_run_group_tests_name("rpc/session", tests, NULL, NULL);
}
