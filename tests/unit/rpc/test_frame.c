/* Unit tests for rpc/frame: golden bytes, the incremental decoder fed in
 * every way a TLS stream can cut bytes, hostile lengths and bodies, and the
 * per-kind rules. */
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
 * Helpers. Expected bytes are written out by hand from the protobuf
 * encoding rules, never produced by the code under test. */

#define MAX_FRAMES 16

/* REQUEST call 1, method "a.B/C", payload "hi", deadline 500 ms. */
static const uint8_t golden_request[] = {
        0x00, 0x00, 0x00, 0x12,                /* length 18 */
        0x08, 0x01,                            /* call_id 1 */
        0x10, 0x00,                            /* kind REQUEST */
        0x1a, 0x05, 'a',  '.',  'B', '/', 'C', /* method */
        0x32, 0x02, 'h',  'i',                 /* payload */
        0x40, 0xf4, 0x03,                      /* deadline 500 */
};

/* WINDOW call 300, window 65536. */
static const uint8_t golden_window[] = {
        0x00, 0x00, 0x00, 0x09, /* length 9 */
        0x08, 0xac, 0x02,       /* call_id 300 */
        0x10, 0x05,             /* kind WINDOW */
        0x38, 0x80, 0x80, 0x04, /* window 65536 */
};

/* RESPONSE call 2, status NOT_FOUND, message "no". */
static const uint8_t golden_response[] = {
        0x00, 0x00, 0x00, 0x0a, /* length 10 */
        0x08, 0x02,             /* call_id 2 */
        0x10, 0x01,             /* kind RESPONSE */
        0x20, 0x05,             /* status 5 */
        0x2a, 0x02, 'n',  'o',  /* message */
};

/* DATA call 7, payload 00 01 ff. */
static const uint8_t golden_data[] = {
        0x00, 0x00, 0x00, 0x09, /* length 9 */
        0x08, 0x07,             /* call_id 7 */
        0x10, 0x02,             /* kind DATA */
        0x32, 0x03, 0x00, 0x01, 0xff,
};

static Cairn__Frame frame_of(uint64_t id, Cairn__Frame__Kind kind)
{
	Cairn__Frame f = CAIRN__FRAME__INIT;

	f.has_call_id = true;
	f.call_id = id;
	f.has_kind = true;
	f.kind = kind;
	return f;
}

/* Packs f with its prefix without any check, as a hostile peer would. */
static size_t raw_pack(const Cairn__Frame *f, uint8_t *out)
{
	size_t n = cairn__frame__pack(f, out + 4);

	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	return n + 4;
}

/* Copies len bytes to a heap block of exactly that size, so that
 * AddressSanitizer catches a single byte read past the end. */
static uint8_t *exact_copy(const void *p, size_t len)
{
	uint8_t *copy = malloc(len == 0 ? 1 : len);

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, p, len);
	return copy;
}

/* Feeds one chunk to the decoder and collects every frame it completes. */
static int feed_chunk(struct rpc__frame_decoder *d, const uint8_t *p,
                      size_t len, Cairn__Frame **frames, size_t *nframes,
                      struct err *e)
{
	uint8_t *copy = exact_copy(p, len);
	size_t used = 0, n;
	Cairn__Frame *f;
	int rv = 0;

	while (used < len) {
		rv = rpc__frame_decoder_feed(d, copy + used, len - used, &n, &f,
		                             e);
		if (rv != 0)
			break;
		assert_true(n > 0);
		used += n;
		if (f != NULL) {
			assert_true(*nframes < MAX_FRAMES);
			frames[(*nframes)++] = f;
		}
	}
	free(copy);
	return rv;
}

static void free_frames(Cairn__Frame **frames, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rpc__frame_free(frames[i]);
}

static void assert_golden_request(const Cairn__Frame *f)
{
	assert_true(f->has_call_id);
	assert_int_equal(f->call_id, 1);
	assert_int_equal(f->kind, CAIRN__FRAME__KIND__REQUEST);
	assert_string_equal(f->method, "a.B/C");
	assert_true(f->has_payload);
	assert_int_equal(f->payload.len, 2);
	assert_memory_equal(f->payload.data, "hi", 2);
	assert_true(f->has_deadline_ms);
	assert_int_equal(f->deadline_ms, 500);
	assert_false(f->has_status);
	assert_false(f->has_window);
	assert_null(f->message);
}

/* Three frames back to back, as one stream. */
static size_t three_frames(uint8_t *out)
{
	size_t n = 0;

	memcpy(out + n, golden_request, sizeof golden_request);
	n += sizeof golden_request;
	memcpy(out + n, golden_window, sizeof golden_window);
	n += sizeof golden_window;
	memcpy(out + n, golden_response, sizeof golden_response);
	n += sizeof golden_response;
	return n;
}

static void assert_three_frames(Cairn__Frame **frames, size_t n)
{
	assert_int_equal(n, 3);
	assert_golden_request(frames[0]);
	assert_int_equal(frames[1]->kind, CAIRN__FRAME__KIND__WINDOW);
	assert_int_equal(frames[1]->call_id, 300);
	assert_int_equal(frames[1]->window, 65536);
	assert_int_equal(frames[2]->kind, CAIRN__FRAME__KIND__RESPONSE);
	assert_int_equal(frames[2]->status, 5);
	assert_string_equal(frames[2]->message, "no");
}

/* ------------------------------------------------------------------------
 * Encoding. */

static void test_encode_request_matches_golden_bytes(void **state)
{
	Cairn__Frame f = frame_of(1, CAIRN__FRAME__KIND__REQUEST);
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	f.method = "a.B/C";
	f.has_payload = true;
	f.payload.data = (uint8_t *)"hi";
	f.payload.len = 2;
	f.has_deadline_ms = true;
	f.deadline_ms = 500;
	assert_int_equal(rpc__frame_encode(&f, RPC_FRAME_MAX_DEFAULT, &out, &e),
	                 0);
	assert_int_equal(out.len, sizeof golden_request);
	assert_memory_equal(out.data, golden_request, sizeof golden_request);
	buf_free(&out);
}

static void test_encode_window_matches_golden_bytes(void **state)
{
	Cairn__Frame f = frame_of(300, CAIRN__FRAME__KIND__WINDOW);
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	f.has_window = true;
	f.window = 65536;
	assert_int_equal(rpc__frame_encode(&f, RPC_FRAME_MAX_DEFAULT, &out, &e),
	                 0);
	assert_int_equal(out.len, sizeof golden_window);
	assert_memory_equal(out.data, golden_window, sizeof golden_window);
	buf_free(&out);
}

static void test_encode_appends_response_after_data(void **state)
{
	Cairn__Frame data = frame_of(7, CAIRN__FRAME__KIND__DATA);
	Cairn__Frame resp = frame_of(2, CAIRN__FRAME__KIND__RESPONSE);
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	data.has_payload = true;
	data.payload.data = (uint8_t *)"\x00\x01\xff";
	data.payload.len = 3;
	resp.has_status = true;
	resp.status = RPC_STATUS_NOT_FOUND;
	resp.message = "no";
	assert_int_equal(rpc__frame_encode(&data, 4096, &out, &e), 0);
	assert_int_equal(rpc__frame_encode(&resp, 4096, &out, &e), 0);
	assert_int_equal(out.len, sizeof golden_data + sizeof golden_response);
	assert_memory_equal(out.data, golden_data, sizeof golden_data);
	assert_memory_equal(out.data + sizeof golden_data, golden_response,
	                    sizeof golden_response);
	buf_free(&out);
}

static void test_encode_refuses_invalid_frame_with_einval(void **state)
{
	Cairn__Frame f = frame_of(1, CAIRN__FRAME__KIND__REQUEST);
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	f.method = "no slash";
	assert_int_equal(rpc__frame_encode(&f, 4096, &out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "REQUEST on call 1"));
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void test_encode_over_max_frame_is_emsgsize_and_leaves_buf(void **state)
{
	Cairn__Frame f = frame_of(1, CAIRN__FRAME__KIND__DATA);
	uint8_t payload[100] = {0};
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 4096);
	assert_int_equal(buf_append_str(&out, "keep"), 0);
	f.has_payload = true;
	f.payload.data = payload;
	f.payload.len = sizeof payload;
	/* 2 + 2 + 2 + 100 = 106 bytes of body */
	assert_int_equal(rpc__frame_encode(&f, 105, &out, &e), -EMSGSIZE);
	assert_non_null(strstr(e.msg, "106 bytes, over the limit of 105"));
	assert_int_equal(out.len, 4);
	assert_int_equal(rpc__frame_encode(&f, 106, &out, &e), 0);
	assert_int_equal(out.len, 4 + 4 + 106);
	buf_free(&out);
}

static void test_encode_into_full_buffer_is_e2big_and_leaves_buf(void **state)
{
	Cairn__Frame f = frame_of(300, CAIRN__FRAME__KIND__WINDOW);
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, sizeof golden_window + 3);
	assert_int_equal(buf_append_str(&out, "abcd"), 0);
	f.has_window = true;
	f.window = 65536;
	assert_int_equal(rpc__frame_encode(&f, 4096, &out, &e), -E2BIG);
	assert_int_equal(out.len, 4);
	assert_string_equal(out.data, "abcd");
	buf_free(&out);
}

/* ------------------------------------------------------------------------
 * Decoding. */

static void test_decode_golden_request_gives_its_fields(void **state)
{
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, golden_request, sizeof golden_request,
	                            frames, &n, &e),
	                 0);
	assert_int_equal(n, 1);
	assert_golden_request(frames[0]);
	assert_false(rpc__frame_decoder_has_partial(&d));
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);
}

static void test_truncated_at_every_length_waits_then_completes(void **state)
{
	const uint8_t *goldens[] = {golden_request, golden_window,
	                            golden_response, golden_data};
	size_t sizes[] = {sizeof golden_request, sizeof golden_window,
	                  sizeof golden_response, sizeof golden_data};

	(void)state;
	for (size_t g = 0; g < CAIRN_ARRAY_SIZE(goldens); g++) {
		for (size_t cut = 0; cut < sizes[g]; cut++) {
			struct rpc__frame_decoder d;
			Cairn__Frame *frames[MAX_FRAMES] = {0};
			size_t n = 0;
			struct err e;

			rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
			assert_int_equal(
			        feed_chunk(&d, goldens[g], cut, frames, &n, &e),
			        0);
			assert_int_equal(n, 0);
			assert_int_equal(rpc__frame_decoder_has_partial(&d),
			                 cut > 0);
			assert_int_equal(feed_chunk(&d, goldens[g] + cut,
			                            sizes[g] - cut, frames, &n,
			                            &e),
			                 0);
			assert_int_equal(n, 1);
			assert_false(rpc__frame_decoder_has_partial(&d));
			free_frames(frames, n);
			rpc__frame_decoder_close(&d);
		}
	}
}

static void test_length_over_limit_fails_before_allocating(void **state)
{
	/* 4 MiB + 1 */
	const uint8_t prefix[] = {0x00, 0x40, 0x00, 0x01};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	mem_fail_after(0);
	assert_int_equal(feed_chunk(&d, prefix, sizeof prefix, frames, &n, &e),
	                 -EMSGSIZE);
	mem_fail_reset();
	assert_string_equal(e.msg,
	                    "frame: length 4194305 over the limit of 4194304");
	assert_int_equal(n, 0);
	rpc__frame_decoder_close(&d);
}

static void test_huge_length_fails_before_allocating(void **state)
{
	const uint8_t prefix[] = {0xff, 0xff, 0xff, 0xff, 0x08};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	mem_fail_after(0);
	assert_int_equal(feed_chunk(&d, prefix, sizeof prefix, frames, &n, &e),
	                 -EMSGSIZE);
	mem_fail_reset();
	rpc__frame_decoder_close(&d);
}

static void test_max_frame_is_configurable(void **state)
{
	Cairn__Frame f = frame_of(7, CAIRN__FRAME__KIND__DATA);
	uint8_t bytes[64], payload[16] = {0};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0, len;
	struct err e;

	(void)state;
	f.has_payload = true;
	f.payload.data = payload;
	f.payload.len = 10; /* body: 2 + 2 + 2 + 10 = 16 */
	len = raw_pack(&f, bytes);
	assert_int_equal(len, 20);

	rpc__frame_decoder_init(&d, 16);
	assert_int_equal(feed_chunk(&d, bytes, len, frames, &n, &e), 0);
	assert_int_equal(n, 1);
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);

	n = 0;
	rpc__frame_decoder_init(&d, 15);
	assert_int_equal(feed_chunk(&d, bytes, len, frames, &n, &e), -EMSGSIZE);
	assert_string_equal(e.msg, "frame: length 16 over the limit of 15");
	rpc__frame_decoder_close(&d);
}

static void test_length_zero_is_an_error(void **state)
{
	const uint8_t bytes[] = {0, 0, 0, 0, 0x08, 0x01};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, bytes, sizeof bytes, frames, &n, &e),
	                 -EPROTO);
	assert_string_equal(e.msg, "frame: length 0");
	rpc__frame_decoder_close(&d);
}

static void test_garbage_body_is_an_error(void **state)
{
	/* field 1 with wire type 7, which does not exist */
	const uint8_t bytes[] = {0, 0, 0, 4, 0x0f, 0xff, 0xff, 0xff};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, bytes, sizeof bytes, frames, &n, &e),
	                 -EPROTO);
	assert_string_equal(e.msg, "frame: 4 bytes are not a valid Frame");
	rpc__frame_decoder_close(&d);
}

static void test_truncated_field_inside_body_is_an_error(void **state)
{
	uint8_t bytes[sizeof golden_request];

	(void)state;
	/* Claim a shorter body: the payload field runs past it. */
	for (uint8_t len = 1; len < 18; len++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		size_t n = 0;
		struct err e;
		int rv;

		memcpy(bytes, golden_request, sizeof bytes);
		bytes[3] = len;
		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		rv = feed_chunk(&d, bytes, 4 + len, frames, &n, &e);
		/* Cut at a field boundary, the frame is short of a field
		 * (method, deadline...) or still fine; never a crash. */
		if (rv == 0) {
			assert_int_equal(n, 1);
			free_frames(frames, n);
		} else {
			assert_int_equal(rv, -EPROTO);
		}
		rpc__frame_decoder_close(&d);
	}
}

static uint32_t lcg(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static void test_random_bodies_never_crash(void **state)
{
	uint32_t seed = 42;
	uint8_t bytes[4 + 64];

	(void)state;
	for (int round = 0; round < 5000; round++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		size_t n = 0, len = 1 + lcg(&seed) % 64;
		struct err e;
		int rv;

		bytes[0] = bytes[1] = bytes[2] = 0;
		bytes[3] = (uint8_t)len;
		for (size_t i = 0; i < len; i++)
			bytes[4 + i] = (uint8_t)lcg(&seed);
		/* Half the time, start like a real frame. */
		if (round % 2 == 0 && len >= 4) {
			bytes[4] = 0x08;
			bytes[5] = 0x01;
			bytes[6] = 0x10;
			bytes[7] = (uint8_t)(lcg(&seed) % 6);
		}
		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		rv = feed_chunk(&d, bytes, 4 + len, frames, &n, &e);
		if (rv == 0) {
			assert_int_equal(n, 1);
			assert_int_equal(rpc__frame_check(frames[0], &e), 0);
			free_frames(frames, n);
		} else {
			assert_int_equal(rv, -EPROTO);
		}
		rpc__frame_decoder_close(&d);
	}
}

static void test_frames_fed_one_byte_at_a_time(void **state)
{
	uint8_t stream[128];
	size_t len = three_frames(stream), n = 0;
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(feed_chunk(&d, stream + i, 1, frames, &n, &e),
		                 0);
	assert_three_frames(frames, n);
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);
}

static void test_frames_concatenated_in_one_chunk(void **state)
{
	uint8_t stream[128];
	size_t len = three_frames(stream), n = 0;
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, stream, len, frames, &n, &e), 0);
	assert_three_frames(frames, n);
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);
}

static void test_feed_stops_after_each_frame(void **state)
{
	uint8_t stream[128];
	size_t len = three_frames(stream), used;
	struct rpc__frame_decoder d;
	Cairn__Frame *f;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(
	        rpc__frame_decoder_feed(&d, stream, len, &used, &f, &e), 0);
	assert_int_equal(used, sizeof golden_request);
	assert_non_null(f);
	rpc__frame_free(f);
	rpc__frame_decoder_close(&d);
}

static void test_frames_in_random_chunks(void **state)
{
	uint8_t stream[128];
	size_t len = three_frames(stream);
	uint32_t seed = 7;

	(void)state;
	for (int round = 0; round < 500; round++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		size_t n = 0, at = 0;
		struct err e;

		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		while (at < len) {
			size_t chunk = 1 + lcg(&seed) % 20;

			if (chunk > len - at)
				chunk = len - at;
			assert_int_equal(feed_chunk(&d, stream + at, chunk,
			                            frames, &n, &e),
			                 0);
			at += chunk;
		}
		assert_three_frames(frames, n);
		free_frames(frames, n);
		rpc__frame_decoder_close(&d);
	}
}

static void test_frame_of_max_size_in_chunks(void **state)
{
	Cairn__Frame f = frame_of(9, CAIRN__FRAME__KIND__DATA);
	size_t payload_len = RPC_FRAME_MAX_DEFAULT - 2 - 2 - 1 - 4;
	uint8_t *payload = malloc(payload_len);
	uint8_t *bytes = malloc(RPC_FRAME_MAX_DEFAULT + 4);
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0, len, at = 0;
	struct err e;

	(void)state;
	assert_non_null(payload);
	assert_non_null(bytes);
	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)(i * 7);
	f.has_payload = true;
	f.payload.data = payload;
	f.payload.len = payload_len;
	len = raw_pack(&f, bytes);
	assert_int_equal(len, RPC_FRAME_MAX_DEFAULT + 4);
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	while (at < len) {
		size_t chunk = len - at < 16384 ? len - at : 16384;

		assert_int_equal(
		        feed_chunk(&d, bytes + at, chunk, frames, &n, &e), 0);
		at += chunk;
	}
	assert_int_equal(n, 1);
	assert_int_equal(frames[0]->payload.len, payload_len);
	assert_memory_equal(frames[0]->payload.data, payload, payload_len);
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);
	free(payload);
	free(bytes);
}

static void test_errors_are_sticky(void **state)
{
	const uint8_t zero[] = {0, 0, 0, 0};
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0;
	struct err e;

	(void)state;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, zero, sizeof zero, frames, &n, &e),
	                 -EPROTO);
	assert_int_equal(feed_chunk(&d, golden_request, sizeof golden_request,
	                            frames, &n, &e),
	                 -EPROTO);
	assert_int_equal(n, 0);
	rpc__frame_decoder_close(&d);
}

static void test_unknown_fields_are_tolerated(void **state)
{
	uint8_t bytes[64];
	struct rpc__frame_decoder d;
	Cairn__Frame *frames[MAX_FRAMES] = {0};
	size_t n = 0, len = sizeof golden_window;
	struct err e;

	(void)state;
	memcpy(bytes, golden_window, len);
	/* field 15, varint 1 */
	bytes[len++] = 0x78;
	bytes[len++] = 0x01;
	bytes[3] += 2;
	rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
	assert_int_equal(feed_chunk(&d, bytes, len, frames, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(frames[0]->window, 65536);
	free_frames(frames, n);
	rpc__frame_decoder_close(&d);
}

static void test_allocation_failures_are_enomem_never_a_crash(void **state)
{
	bool done = false;

	(void)state;
	for (long fail_at = 0; !done; fail_at++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		size_t n = 0;
		struct err e;
		int rv;

		assert_true(fail_at < 100);
		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		/* A partial frame first, so that the body is buffered. */
		mem_fail_after(fail_at);
		rv = feed_chunk(&d, golden_request, 10, frames, &n, &e);
		if (rv == 0)
			rv = feed_chunk(&d, golden_request + 10,
			                sizeof golden_request - 10, frames, &n,
			                &e);
		mem_fail_reset();
		if (rv == 0) {
			assert_int_equal(n, 1);
			assert_golden_request(frames[0]);
			done = true;
		} else {
			assert_int_equal(rv, -ENOMEM);
			assert_int_equal(n, 0);
		}
		free_frames(frames, n);
		rpc__frame_decoder_close(&d);
	}
}

/* ------------------------------------------------------------------------
 * Rules of each kind. */

struct bad_frame {
	const char *name;
	Cairn__Frame frame;
	const char *error; /* a part of the message */
};

static void test_frames_that_break_their_kind_are_refused(void **state)
{
	struct bad_frame cases[] = {
	        {"no kind", frame_of(1, CAIRN__FRAME__KIND__DATA), "no kind"},
	        {"unknown kind", frame_of(1, CAIRN__FRAME__KIND__DATA),
	         "unknown kind 9"},
	        {"call id 0", frame_of(0, CAIRN__FRAME__KIND__REQUEST),
	         "REQUEST without a call id"},
	        {"no call id", frame_of(1, CAIRN__FRAME__KIND__DATA),
	         "DATA without a call id"},
	        {"request without method",
	         frame_of(1, CAIRN__FRAME__KIND__REQUEST),
	         "REQUEST on call 1 without a method"},
	        {"request with bad method",
	         frame_of(1, CAIRN__FRAME__KIND__REQUEST), "not allowed"},
	        {"request with deadline 0",
	         frame_of(1, CAIRN__FRAME__KIND__REQUEST), "deadline of 0 ms"},
	        {"request with window",
	         frame_of(1, CAIRN__FRAME__KIND__REQUEST), "carries window"},
	        {"response without status",
	         frame_of(2, CAIRN__FRAME__KIND__RESPONSE),
	         "RESPONSE on call 2 without a status"},
	        {"response with status 17",
	         frame_of(2, CAIRN__FRAME__KIND__RESPONSE),
	         "status 17, not a gRPC code"},
	        {"response with method",
	         frame_of(2, CAIRN__FRAME__KIND__RESPONSE), "carries method"},
	        {"data with status", frame_of(3, CAIRN__FRAME__KIND__DATA),
	         "DATA on call 3 carries status"},
	        {"half-close with payload",
	         frame_of(3, CAIRN__FRAME__KIND__HALF_CLOSE),
	         "carries payload"},
	        {"cancel with message", frame_of(3, CAIRN__FRAME__KIND__CANCEL),
	         "carries message"},
	        {"window without window",
	         frame_of(4, CAIRN__FRAME__KIND__WINDOW),
	         "WINDOW on call 4 without a window"},
	        {"window of 0", frame_of(4, CAIRN__FRAME__KIND__WINDOW),
	         "without a window"},
	        {"window with deadline",
	         frame_of(4, CAIRN__FRAME__KIND__WINDOW),
	         "carries deadline_ms"},
	};

	(void)state;
	cases[0].frame.has_kind = false;
	cases[1].frame.kind = 9;
	cases[3].frame.has_call_id = false;
	cases[5].frame.method = "a.B/C D";
	cases[6].frame.method = "a.B/C";
	cases[6].frame.has_deadline_ms = true;
	cases[7].frame.method = "a.B/C";
	cases[7].frame.has_window = true;
	cases[7].frame.window = 5;
	cases[9].frame.has_status = true;
	cases[9].frame.status = 17;
	cases[10].frame.has_status = true;
	cases[10].frame.method = "a.B/C";
	cases[11].frame.has_status = true;
	cases[12].frame.has_payload = true;
	cases[13].frame.message = "bye";
	cases[15].frame.has_window = true;
	cases[16].frame.has_window = true;
	cases[16].frame.window = 1;
	cases[16].frame.has_deadline_ms = true;
	cases[16].frame.deadline_ms = 5;

	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		uint8_t bytes[256];
		size_t n = 0, len = raw_pack(&cases[i].frame, bytes);
		struct buf out;
		struct err e;
		int rv;

		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		rv = feed_chunk(&d, bytes, len, frames, &n, &e);
		if (rv != -EPROTO)
			fail_msg("%s: %d", cases[i].name, rv);
		assert_int_equal(n, 0);
		if (strstr(e.msg, cases[i].error) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name,
			         e.msg, cases[i].error);
		rpc__frame_decoder_close(&d);

		/* and the encoder will not write it */
		buf_init(&out, 1024);
		rv = rpc__frame_encode(&cases[i].frame, 4096, &out, &e);
		if (rv != -EINVAL)
			fail_msg("%s: encoded (%d)", cases[i].name, rv);
		assert_int_equal(out.len, 0);
		buf_free(&out);
	}
}

static void test_every_kind_with_its_own_fields_is_accepted(void **state)
{
	Cairn__Frame f[] = {
	        frame_of(1, CAIRN__FRAME__KIND__REQUEST),
	        frame_of(1, CAIRN__FRAME__KIND__RESPONSE),
	        frame_of(1, CAIRN__FRAME__KIND__DATA),
	        frame_of(1, CAIRN__FRAME__KIND__HALF_CLOSE),
	        frame_of(1, CAIRN__FRAME__KIND__CANCEL),
	        frame_of(UINT64_MAX, CAIRN__FRAME__KIND__WINDOW),
	};
	struct buf out;
	struct err e;

	(void)state;
	f[0].method = "cairn.Cluster/Status"; /* no payload: empty request */
	f[1].has_status = true;
	f[1].status = RPC_STATUS_UNAUTHENTICATED;
	f[5].has_window = true;
	f[5].window = UINT32_MAX;
	buf_init(&out, 4096);
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(f); i++) {
		struct rpc__frame_decoder d;
		Cairn__Frame *frames[MAX_FRAMES] = {0};
		size_t n = 0;

		buf_reset(&out);
		assert_int_equal(rpc__frame_encode(&f[i], 4096, &out, &e), 0);
		rpc__frame_decoder_init(&d, RPC_FRAME_MAX_DEFAULT);
		assert_int_equal(feed_chunk(&d, (uint8_t *)out.data, out.len,
		                            frames, &n, &e),
		                 0);
		assert_int_equal(n, 1);
		assert_int_equal(frames[0]->kind, f[i].kind);
		assert_int_equal(frames[0]->call_id, f[i].call_id);
		free_frames(frames, n);
		rpc__frame_decoder_close(&d);
	}
	buf_free(&out);
}

static void test_method_names(void **state)
{
	char longest[RPC_METHOD_MAX + 2];
	const char *good[] = {"cairn.Cluster/Status", "a/b", "A_9.x.Y/Z_1",
	                      "pkg.Service/Method"};
	const char *bad[] = {"",      "/",          "a/",    "/b",
	                     "ab",    "a/b/c",      "a b/c", "a/b\n",
	                     "a-b/c", "a/\xc3\xa9", "a\\b/c"};
	struct err e;

	(void)state;
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(good); i++)
		assert_int_equal(rpc__method_check(good[i], &e), 0);
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		if (rpc__method_check(bad[i], &e) != -EINVAL)
			fail_msg("method \"%s\" accepted", bad[i]);
	}
	assert_int_equal(rpc__method_check(NULL, &e), -EINVAL);

	memset(longest, 'a', sizeof longest);
	longest[1] = '/';
	longest[RPC_METHOD_MAX] = '\0';
	assert_int_equal(rpc__method_check(longest, &e), 0);
	longest[RPC_METHOD_MAX] = 'a';
	longest[RPC_METHOD_MAX + 1] = '\0';
	assert_int_equal(rpc__method_check(longest, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "longer than 128 bytes"));

	assert_int_equal(rpc__method_check("a b/c", &e), -EINVAL);
	assert_string_equal(e.msg,
	                    "method \"a b/c\": byte 0x20 at 1 is not allowed "
	                    "(A-Z a-z 0-9 _ . /)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_encode_request_matches_golden_bytes),
	        cmocka_unit_test(test_encode_window_matches_golden_bytes),
	        cmocka_unit_test(test_encode_appends_response_after_data),
	        cmocka_unit_test(test_encode_refuses_invalid_frame_with_einval),
	        cmocka_unit_test(
	                test_encode_over_max_frame_is_emsgsize_and_leaves_buf),
	        cmocka_unit_test(
	                test_encode_into_full_buffer_is_e2big_and_leaves_buf),
	        cmocka_unit_test(test_decode_golden_request_gives_its_fields),
	        cmocka_unit_test(
	                test_truncated_at_every_length_waits_then_completes),
	        cmocka_unit_test(
	                test_length_over_limit_fails_before_allocating),
	        cmocka_unit_test(test_huge_length_fails_before_allocating),
	        cmocka_unit_test(test_max_frame_is_configurable),
	        cmocka_unit_test(test_length_zero_is_an_error),
	        cmocka_unit_test(test_garbage_body_is_an_error),
	        cmocka_unit_test(test_truncated_field_inside_body_is_an_error),
	        cmocka_unit_test(test_random_bodies_never_crash),
	        cmocka_unit_test(test_frames_fed_one_byte_at_a_time),
	        cmocka_unit_test(test_frames_concatenated_in_one_chunk),
	        cmocka_unit_test(test_feed_stops_after_each_frame),
	        cmocka_unit_test(test_frames_in_random_chunks),
	        cmocka_unit_test(test_frame_of_max_size_in_chunks),
	        cmocka_unit_test(test_errors_are_sticky),
	        cmocka_unit_test(test_unknown_fields_are_tolerated),
	        cmocka_unit_test(
	                test_allocation_failures_are_enomem_never_a_crash),
	        cmocka_unit_test(test_frames_that_break_their_kind_are_refused),
	        cmocka_unit_test(
	                test_every_kind_with_its_own_fields_is_accepted),
	        cmocka_unit_test(test_method_names),
	};

	return cmocka_run_group_tests_name("rpc/frame", tests, NULL, NULL);
}
