/* Encoding of dqlite 1.11.1 requests and bounds-checked, copy-free decoding
 * of its responses (the layout is described in wire.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "consensus/wire.h"

/* SQLite refuses strings and blobs longer than this whatever its limits are
 * set to, and 1.11.1 passes blob lengths to it as an int. */
#define VALUE_LEN_MAX ((size_t)INT32_MAX)

static const uint8_t zeros[8];

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Byte-wise so that unaligned bodies and big-endian hosts both work. */
static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

const char *wire_response_name(unsigned type)
{
	static const char *const names[] = {
	        [WIRE_RESPONSE_FAILURE] = "FAILURE",
	        [WIRE_RESPONSE_SERVER] = "SERVER",
	        [WIRE_RESPONSE_WELCOME] = "WELCOME",
	        [WIRE_RESPONSE_SERVERS] = "SERVERS",
	        [WIRE_RESPONSE_DB] = "DB",
	        [WIRE_RESPONSE_STMT] = "STMT",
	        [WIRE_RESPONSE_RESULT] = "RESULT",
	        [WIRE_RESPONSE_ROWS] = "ROWS",
	        [WIRE_RESPONSE_EMPTY] = "EMPTY",
	        [WIRE_RESPONSE_FILES] = "FILES",
	        [WIRE_RESPONSE_METADATA] = "METADATA",
	};

	if (type >= CAIRN_ARRAY_SIZE(names))
		return "unknown";
	return names[type];
}

/* ------------------------------------------------------------------------
 * Framing. */

void wire_header_encode(const struct wire_header *h,
                        uint8_t out[WIRE_HEADER_SIZE])
{
	put_le32(out, h->words);
	out[4] = h->type;
	out[5] = h->schema;
	out[6] = (uint8_t)h->unused;
	out[7] = (uint8_t)(h->unused >> 8);
}

int wire_header_decode(const void *bytes, size_t body_max,
                       struct wire_header *h, struct err *e)
{
	const uint8_t *p = bytes;
	struct wire_header got;

	got.words = get_le32(p);
	got.type = p[4];
	got.schema = p[5];
	got.unused = (uint16_t)(p[6] | p[7] << 8);
	if (got.words == 0)
		return err_set(
		        e, -EPROTO,
		        "message header: %s (type %u) with an empty body",
		        wire_response_name(got.type), got.type);
	/* Compared in words so that the product cannot overflow a 32-bit
	 * size_t. */
	if (got.words > body_max / 8)
		return err_set(e, -EMSGSIZE,
		               "message header: %s body of %llu bytes exceeds "
		               "the limit of %zu",
		               wire_response_name(got.type),
		               (unsigned long long)got.words * 8, body_max);
	*h = got;
	return 0;
}

/* ------------------------------------------------------------------------
 * Encoding. A writer appends to the caller's buffer with a sticky error, so
 * that an encoder is a straight list of fields and one check at the end. */

struct writer {
	struct buf *b;
	size_t start; /* where this message's header begins */
	int rc;
};

static void put_bytes(struct writer *w, const void *data, size_t n)
{
	if (w->rc == 0 && n > 0)
		w->rc = buf_append(w->b, data, n);
}

static void put_u64(struct writer *w, uint64_t v)
{
	uint8_t word[8];

	put_le64(word, v);
	put_bytes(w, word, sizeof word);
}

static void put_u32(struct writer *w, uint32_t v)
{
	uint8_t half[4];

	put_le32(half, v);
	put_bytes(w, half, sizeof half);
}

/* len bytes without NUL, then the terminator and zeros up to a word. */
static void put_text(struct writer *w, const char *s, size_t len)
{
	put_bytes(w, s, len);
	put_bytes(w, zeros, pad8(len + 1) - len);
}

static void put_cstr(struct writer *w, const char *s)
{
	CAIRN_ASSERT(s != NULL);
	put_text(w, s, strlen(s));
}

static void message_begin(struct writer *w, struct buf *b)
{
	w->b = b;
	w->start = b->len;
	w->rc = 0;
	put_bytes(w, zeros, WIRE_HEADER_SIZE); /* filled in by message_end */
}

/* Fills in the header, or on failure takes back everything this message
 * appended: a half-written request left in an output queue would
 * desynchronise the connection. */
static int message_end(struct writer *w, uint8_t type, const char *what,
                       struct err *e)
{
	struct wire_header h = {.type = type};
	size_t body;

	if (w->rc == 0) {
		body = w->b->len - w->start - WIRE_HEADER_SIZE;
		CAIRN_ASSERT(body % 8 == 0);
		if (body / 8 > UINT32_MAX)
			w->rc = -EMSGSIZE;
		else
			h.words = (uint32_t)(body / 8);
	}
	if (w->rc != 0) {
		size_t max = w->b->max;

		w->b->len = w->start;
		if (w->b->data != NULL)
			w->b->data[w->start] = '\0';
		if (w->rc == -E2BIG)
			return err_set(e, w->rc,
			               "%s request: does not fit the output "
			               "buffer's limit of %zu bytes",
			               what, max);
		if (w->rc == -EMSGSIZE)
			return err_set(e, w->rc,
			               "%s request: body over the protocol's "
			               "limit of 2^32 words",
			               what);
		return err_sys(e, w->rc, "%s request", what);
	}
	wire_header_encode(&h, (uint8_t *)w->b->data + w->start);
	return 0;
}

int wire_handshake_encode(struct buf *out, struct err *e)
{
	uint8_t word[8];
	int rc;

	put_le64(word, WIRE_PROTOCOL_VERSION);
	rc = buf_append(out, word, sizeof word);
	if (rc != 0)
		return err_sys(e, rc, "protocol handshake");
	return 0;
}

int wire_leader_encode(struct buf *out, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, 0); /* the request has one unused word */
	return message_end(&w, WIRE_REQUEST_LEADER, "leader", e);
}

int wire_client_encode(struct buf *out, uint64_t client_id, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, client_id);
	return message_end(&w, WIRE_REQUEST_CLIENT, "client", e);
}

int wire_open_encode(struct buf *out, const char *name, uint64_t flags,
                     const char *vfs, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_cstr(&w, name);
	put_u64(&w, flags);
	put_cstr(&w, vfs);
	return message_end(&w, WIRE_REQUEST_OPEN, "open", e);
}

int wire_prepare_encode(struct buf *out, uint32_t db_id, const char *sql,
                        struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, db_id);
	put_cstr(&w, sql);
	return message_end(&w, WIRE_REQUEST_PREPARE, "prepare", e);
}

/* Rejects what the server would misread rather than sending it: text with
 * a NUL would be cut short by the server's strlen, and UNIXTIME/ISO8601
 * fail to bind in 1.11.1. */
static int params_check(const struct wire_value *params, unsigned n,
                        const char *what, struct err *e)
{
	if (n > WIRE_PARAMS_MAX)
		return err_set(e, -E2BIG,
		               "%s request: %u parameters, the protocol "
		               "carries at most %d",
		               what, n, WIRE_PARAMS_MAX);
	if (n > 0 && params == NULL)
		return err_set(e, -EINVAL, "%s request: parameters missing",
		               what);
	for (unsigned i = 0; i < n; i++) {
		const struct wire_value *v = &params[i];

		switch (v->type) {
		case WIRE_INTEGER:
		case WIRE_FLOAT:
		case WIRE_NULL:
		case WIRE_BOOLEAN:
			break;
		case WIRE_TEXT:
			if (v->text.len > VALUE_LEN_MAX)
				return err_set(e, -EINVAL,
				               "%s request: parameter %u: text "
				               "of %zu bytes is over SQLite's "
				               "limit",
				               what, i, v->text.len);
			if (v->text.len > 0 &&
			    (v->text.ptr == NULL ||
			     memchr(v->text.ptr, '\0', v->text.len) != NULL))
				return err_set(e, -EINVAL,
				               "%s request: parameter %u: text "
				               "contains a NUL byte",
				               what, i);
			break;
		case WIRE_BLOB:
			if (v->blob.len > VALUE_LEN_MAX)
				return err_set(e, -EINVAL,
				               "%s request: parameter %u: blob "
				               "of %zu bytes is over SQLite's "
				               "limit",
				               what, i, v->blob.len);
			if (v->blob.len > 0 && v->blob.ptr == NULL)
				return err_set(e, -EINVAL,
				               "%s request: parameter %u: blob "
				               "without data",
				               what, i);
			break;
		case WIRE_UNIXTIME:
		case WIRE_ISO8601:
			return err_set(e, -EINVAL,
			               "%s request: parameter %u: the server "
			               "cannot bind %s parameters",
			               what, i,
			               v->type == WIRE_UNIXTIME ? "UNIXTIME"
			                                        : "ISO8601");
		default:
			return err_set(e, -EINVAL,
			               "%s request: parameter %u: unknown type "
			               "%d",
			               what, i, (int)v->type);
		}
	}
	return 0;
}

/* The parameter tuple: one count byte and one type byte per parameter,
 * zero-padded together to a word boundary, then the values. */
static void put_params(struct writer *w, const struct wire_value *params,
                       unsigned n)
{
	uint8_t header[8 * 32]; /* pad8(1 + 255) bytes */
	size_t header_len = pad8(1 + (size_t)n);

	if (n == 0)
		return;
	memset(header, 0, header_len);
	header[0] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		header[1 + i] = (uint8_t)params[i].type;
	put_bytes(w, header, header_len);

	for (unsigned i = 0; i < n; i++) {
		const struct wire_value *v = &params[i];
		uint64_t bits;

		switch (v->type) {
		case WIRE_INTEGER:
			put_u64(w, (uint64_t)v->integer);
			break;
		case WIRE_FLOAT:
			memcpy(&bits, &v->real, sizeof bits);
			put_u64(w, bits);
			break;
		case WIRE_TEXT:
			put_text(w, v->text.ptr, v->text.len);
			break;
		case WIRE_BLOB:
			put_u64(w, v->blob.len);
			put_bytes(w, v->blob.ptr, v->blob.len);
			put_bytes(w, zeros, pad8(v->blob.len) - v->blob.len);
			break;
		case WIRE_NULL:
			put_u64(w, 0);
			break;
		case WIRE_BOOLEAN:
			put_u64(w, v->boolean ? 1 : 0);
			break;
		default:
			CAIRN_ASSERT(!"type unchecked by params_check");
		}
	}
}

static int encode_stmt_call(struct buf *out, uint8_t type, const char *what,
                            uint32_t db_id, uint32_t stmt_id,
                            const struct wire_value *params, unsigned nparams,
                            struct err *e)
{
	struct writer w;
	int rc;

	rc = params_check(params, nparams, what, e);
	if (rc != 0)
		return rc;
	message_begin(&w, out);
	put_u32(&w, db_id);
	put_u32(&w, stmt_id);
	put_params(&w, params, nparams);
	return message_end(&w, type, what, e);
}

static int encode_sql_call(struct buf *out, uint8_t type, const char *what,
                           uint32_t db_id, const char *sql,
                           const struct wire_value *params, unsigned nparams,
                           struct err *e)
{
	struct writer w;
	int rc;

	rc = params_check(params, nparams, what, e);
	if (rc != 0)
		return rc;
	message_begin(&w, out);
	put_u64(&w, db_id);
	put_cstr(&w, sql);
	put_params(&w, params, nparams);
	return message_end(&w, type, what, e);
}

int wire_exec_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                     const struct wire_value *params, unsigned nparams,
                     struct err *e)
{
	return encode_stmt_call(out, WIRE_REQUEST_EXEC, "exec", db_id, stmt_id,
	                        params, nparams, e);
}

int wire_query_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                      const struct wire_value *params, unsigned nparams,
                      struct err *e)
{
	return encode_stmt_call(out, WIRE_REQUEST_QUERY, "query", db_id,
	                        stmt_id, params, nparams, e);
}

int wire_finalize_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                         struct err *e)
{
	return encode_stmt_call(out, WIRE_REQUEST_FINALIZE, "finalize", db_id,
	                        stmt_id, NULL, 0, e);
}

int wire_exec_sql_encode(struct buf *out, uint32_t db_id, const char *sql,
                         const struct wire_value *params, unsigned nparams,
                         struct err *e)
{
	return encode_sql_call(out, WIRE_REQUEST_EXEC_SQL, "exec_sql", db_id,
	                       sql, params, nparams, e);
}

int wire_query_sql_encode(struct buf *out, uint32_t db_id, const char *sql,
                          const struct wire_value *params, unsigned nparams,
                          struct err *e)
{
	return encode_sql_call(out, WIRE_REQUEST_QUERY_SQL, "query_sql", db_id,
	                       sql, params, nparams, e);
}

int wire_add_encode(struct buf *out, uint64_t node_id, const char *address,
                    struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, node_id);
	put_cstr(&w, address);
	return message_end(&w, WIRE_REQUEST_ADD, "add", e);
}

int wire_assign_encode(struct buf *out, uint64_t node_id, enum wire_role role,
                       struct err *e)
{
	struct writer w;

	/* Without the role word 1.11.1 reads the request as the older
	 * PROMOTE and makes the node a voter. */
	if (role != WIRE_ROLE_VOTER && role != WIRE_ROLE_STANDBY &&
	    role != WIRE_ROLE_SPARE)
		return err_set(e, -EINVAL, "assign request: unknown role %d",
		               (int)role);
	message_begin(&w, out);
	put_u64(&w, node_id);
	put_u64(&w, (uint64_t)role);
	return message_end(&w, WIRE_REQUEST_ASSIGN, "assign", e);
}

int wire_remove_encode(struct buf *out, uint64_t node_id, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, node_id);
	return message_end(&w, WIRE_REQUEST_REMOVE, "remove", e);
}

int wire_dump_encode(struct buf *out, const char *name, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_cstr(&w, name);
	return message_end(&w, WIRE_REQUEST_DUMP, "dump", e);
}

int wire_cluster_encode(struct buf *out, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, 1); /* format 1: with roles */
	return message_end(&w, WIRE_REQUEST_CLUSTER, "cluster", e);
}

int wire_transfer_encode(struct buf *out, uint64_t node_id, struct err *e)
{
	struct writer w;

	message_begin(&w, out);
	put_u64(&w, node_id);
	return message_end(&w, WIRE_REQUEST_TRANSFER, "transfer", e);
}

/* ------------------------------------------------------------------------
 * Decoding. A reader never moves past len; each failed read describes
 * itself and the caller wraps the message with where it was reading. */

struct reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static size_t left(const struct reader *r)
{
	return r->len - r->pos;
}

static int get_u64(struct reader *r, uint64_t *v, struct err *e)
{
	if (left(r) < 8)
		return err_set(e, -EPROTO,
		               "truncated at byte %zu (%zu of 8 bytes left)",
		               r->pos, left(r));
	*v = get_le64(r->p + r->pos);
	r->pos += 8;
	return 0;
}

static int get_u32(struct reader *r, uint32_t *v, struct err *e)
{
	if (left(r) < 4)
		return err_set(e, -EPROTO,
		               "truncated at byte %zu (%zu of 4 bytes left)",
		               r->pos, left(r));
	*v = get_le32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

/* The terminator must lie inside the body, and so must the padding: the
 * server always sends it, and a body cut inside it is a truncated one. */
static int get_text(struct reader *r, const char **s, size_t *slen,
                    struct err *e)
{
	const uint8_t *start, *nul;
	size_t len, size;

	if (left(r) == 0)
		return err_set(e, -EPROTO, "text not terminated");
	start = r->p + r->pos;
	nul = memchr(start, '\0', left(r));
	if (nul == NULL)
		return err_set(e, -EPROTO, "text not terminated");
	len = (size_t)(nul - start);
	size = pad8(len + 1);
	if (size > left(r))
		return err_set(e, -EPROTO,
		               "text padding truncated (%zu of %zu bytes)",
		               left(r), size);
	*s = (const char *)start;
	if (slen != NULL)
		*slen = len;
	r->pos += size;
	return 0;
}

static int get_blob(struct reader *r, const void **data, size_t *blen,
                    struct err *e)
{
	uint64_t len;
	int rc;

	rc = get_u64(r, &len, e);
	if (rc != 0)
		return err_wrap(e, "blob length");
	/* Checked before padding so that pad8 cannot wrap around. */
	if (len > left(r) || pad8((size_t)len) > left(r))
		return err_set(e, -EPROTO,
		               "blob length %llu past end of body (%zu bytes "
		               "left)",
		               (unsigned long long)len, left(r));
	*data = r->p + r->pos;
	*blen = (size_t)len;
	r->pos += pad8((size_t)len);
	return 0;
}

static int expect_end(const struct reader *r, struct err *e)
{
	if (left(r) != 0)
		return err_set(e, -EPROTO, "%zu trailing bytes after byte %zu",
		               left(r), r->pos);
	return 0;
}

static void reader_init(struct reader *r, const void *body, size_t len)
{
	r->p = body;
	r->len = len;
	r->pos = 0;
	CAIRN_ASSERT(body != NULL || len == 0);
}

static int failure_forward(const uint8_t *body, size_t len,
                           struct wire_failure *out, struct err *e)
{
	struct reader r;
	int rc;

	reader_init(&r, body, len);
	rc = get_u64(&r, &out->code, e);
	if (rc != 0)
		return err_wrap(e, "code");
	rc = get_text(&r, &out->message, NULL, e);
	if (rc != 0)
		return err_wrap(e, "message");
	return expect_end(&r, e);
}

/* The real failure at the end of a body that begins with a half-built
 * answer: [...][u64 code][message][NUL padding to the end]. Scanning back,
 * the message is the run of non-NUL bytes before the final zeros, and it
 * must start on a word boundary right after a code word whose upper half is
 * zero (result codes are 32-bit ints) — so a word of message text, which
 * has no zero byte, can never pass for the code. A failure always has a
 * code and a message starting with a printable character; requiring both
 * keeps row values (small integers, NULL words) from passing for one when
 * the body is not a failure at all. */
static bool failure_from_tail(const uint8_t *body, size_t len,
                              struct wire_failure *out)
{
	size_t end = len; /* one past the message's last byte */
	size_t start;
	uint64_t code;

	if (len < 16 || len % 8 != 0)
		return false;
	while (end > 0 && body[end - 1] == 0)
		end--;
	if (end == 0 || pad8(end + 1) != len)
		return false;
	start = end;
	while (start > 0 && body[start - 1] != 0)
		start--;
	if (start < 8 || start % 8 != 0)
		return false;
	code = get_le64(body + start - 8);
	if (code == 0 || code >> 32 != 0 || body[start] <= ' ' ||
	    body[start] > '~')
		return false;
	out->code = code;
	out->message = (const char *)body + start;
	return true;
}

int wire_failure_decode(unsigned type, const void *body, size_t len,
                        struct wire_failure *out, struct err *e)
{
	struct err scratch, forward;
	struct wire_failure got;
	int rc;

	if (e == NULL)
		e = &scratch;
	if (type != WIRE_RESPONSE_FAILURE)
		return err_set(e, -EPROTO,
		               "failure: expected FAILURE response, got %s "
		               "(%u)",
		               wire_response_name(type), type);
	CAIRN_ASSERT(body != NULL || len == 0);
	rc = failure_forward(body, len, &got, &forward);
	if (rc != 0 && !failure_from_tail(body, len, &got)) {
		*e = forward;
		return err_wrap(e, "failure");
	}
	*out = got;
	return 0;
}

/* 0 when the response is the expected one; otherwise the server's failure
 * as -EREMOTEIO, or -EPROTO. */
static int expect_type(unsigned type, unsigned expected, const void *body,
                       size_t len, struct err *e)
{
	struct wire_failure f;
	int rc;

	if (type == expected)
		return 0;
	if (type == WIRE_RESPONSE_FAILURE) {
		rc = wire_failure_decode(type, body, len, &f, e);
		if (rc != 0)
			return rc;
		return err_set(e, -EREMOTEIO, "dqlite error %llu: %s",
		               (unsigned long long)f.code, f.message);
	}
	return err_set(e, -EPROTO, "expected %s response, got %s (%u)",
	               wire_response_name(expected), wire_response_name(type),
	               type);
}

int wire_server_decode(unsigned type, const void *body, size_t len,
                       struct wire_server *out, struct err *e)
{
	struct err scratch;
	struct wire_server got;
	struct reader r;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, WIRE_RESPONSE_SERVER, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u64(&r, &got.id, e)) != 0)
		return err_wrap(e, "server: id");
	if ((rc = get_text(&r, &got.address, NULL, e)) != 0)
		return err_wrap(e, "server: address");
	if ((rc = expect_end(&r, e)) != 0)
		return err_wrap(e, "server");
	*out = got;
	return 0;
}

/* A response whose body is exactly one u64. */
static int decode_one_word(unsigned type, unsigned expected, const void *body,
                           size_t len, uint64_t *v, const char *what,
                           struct err *e)
{
	struct err scratch;
	struct reader r;
	uint64_t got;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, expected, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u64(&r, &got, e)) != 0 || (rc = expect_end(&r, e)) != 0)
		return err_wrap(e, "%s", what);
	*v = got;
	return 0;
}

int wire_welcome_decode(unsigned type, const void *body, size_t len,
                        uint64_t *heartbeat_timeout, struct err *e)
{
	return decode_one_word(type, WIRE_RESPONSE_WELCOME, body, len,
	                       heartbeat_timeout, "welcome", e);
}

int wire_empty_decode(unsigned type, const void *body, size_t len,
                      struct err *e)
{
	uint64_t unused;

	return decode_one_word(type, WIRE_RESPONSE_EMPTY, body, len, &unused,
	                       "empty", e);
}

int wire_db_decode(unsigned type, const void *body, size_t len, uint32_t *db_id,
                   struct err *e)
{
	struct err scratch;
	struct reader r;
	uint32_t id, pad;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, WIRE_RESPONSE_DB, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u32(&r, &id, e)) != 0)
		return err_wrap(e, "db: id");
	if ((rc = get_u32(&r, &pad, e)) != 0)
		return err_wrap(e, "db: padding");
	if ((rc = expect_end(&r, e)) != 0)
		return err_wrap(e, "db");
	*db_id = id;
	return 0;
}

int wire_stmt_decode(unsigned type, const void *body, size_t len,
                     struct wire_stmt *out, struct err *e)
{
	struct err scratch;
	struct wire_stmt got;
	struct reader r;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, WIRE_RESPONSE_STMT, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u32(&r, &got.db_id, e)) != 0)
		return err_wrap(e, "stmt: db_id");
	if ((rc = get_u32(&r, &got.id, e)) != 0)
		return err_wrap(e, "stmt: id");
	if ((rc = get_u64(&r, &got.params, e)) != 0)
		return err_wrap(e, "stmt: params");
	if ((rc = expect_end(&r, e)) != 0)
		return err_wrap(e, "stmt");
	*out = got;
	return 0;
}

int wire_result_decode(unsigned type, const void *body, size_t len,
                       struct wire_result *out, struct err *e)
{
	struct err scratch;
	struct wire_result got;
	struct reader r;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, WIRE_RESPONSE_RESULT, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u64(&r, &got.last_insert_id, e)) != 0)
		return err_wrap(e, "result: last_insert_id");
	if ((rc = get_u64(&r, &got.rows_affected, e)) != 0)
		return err_wrap(e, "result: rows_affected");
	if ((rc = expect_end(&r, e)) != 0)
		return err_wrap(e, "result");
	*out = got;
	return 0;
}

/* ------------------------------------------------------------------------
 * Lists: SERVERS and FILES share a u64 count followed by entries. */

/* Reads the count and refuses one the body cannot possibly hold, so that a
 * hostile count never drives a caller into allocating for it. */
static int list_begin(unsigned type, unsigned expected, const void *body,
                      size_t len, size_t entry_min, const uint8_t **it_body,
                      size_t *it_len, size_t *it_pos, uint64_t *count,
                      const char *what, struct err *e)
{
	struct reader r;
	uint64_t n;
	int rc;

	rc = expect_type(type, expected, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u64(&r, &n, e)) != 0)
		return err_wrap(e, "%s: count", what);
	if (n > left(&r) / entry_min)
		return err_set(e, -EPROTO,
		               "%s: count %llu is more than %zu bytes can hold",
		               what, (unsigned long long)n, left(&r));
	*it_body = r.p;
	*it_len = r.len;
	*it_pos = r.pos;
	*count = n;
	return 0;
}

int wire_servers_begin(unsigned type, const void *body, size_t len,
                       struct wire_servers *it, struct err *e)
{
	struct err scratch;

	if (e == NULL)
		e = &scratch;
	it->index = 0;
	/* id, address (at least one word), role */
	return list_begin(type, WIRE_RESPONSE_SERVERS, body, len, 24, &it->body,
	                  &it->len, &it->pos, &it->count, "servers", e);
}

uint64_t wire_servers_count(const struct wire_servers *it)
{
	return it->count;
}

int wire_servers_next(struct wire_servers *it, struct wire_node *node,
                      struct err *e)
{
	struct err scratch;
	struct reader r = {it->body, it->len, it->pos};
	struct wire_node got;
	int rc;

	if (e == NULL)
		e = &scratch;
	if (it->index == it->count) {
		if ((rc = expect_end(&r, e)) != 0)
			return err_wrap(e, "servers");
		return 0;
	}
	if ((rc = get_u64(&r, &got.id, e)) != 0)
		return err_wrap(e, "servers: node %llu: id",
		                (unsigned long long)it->index);
	if ((rc = get_text(&r, &got.address, NULL, e)) != 0)
		return err_wrap(e, "servers: node %llu: address",
		                (unsigned long long)it->index);
	if ((rc = get_u64(&r, &got.role, e)) != 0)
		return err_wrap(e, "servers: node %llu: role",
		                (unsigned long long)it->index);
	it->pos = r.pos;
	it->index++;
	*node = got;
	return 1;
}

int wire_files_begin(unsigned type, const void *body, size_t len,
                     struct wire_files *it, struct err *e)
{
	struct err scratch;

	if (e == NULL)
		e = &scratch;
	it->index = 0;
	/* name (at least one word), size */
	return list_begin(type, WIRE_RESPONSE_FILES, body, len, 16, &it->body,
	                  &it->len, &it->pos, &it->count, "files", e);
}

uint64_t wire_files_count(const struct wire_files *it)
{
	return it->count;
}

int wire_files_next(struct wire_files *it, struct wire_file *file,
                    struct err *e)
{
	struct err scratch;
	struct reader r = {it->body, it->len, it->pos};
	struct wire_file got;
	unsigned long long index = it->index;
	int rc;

	if (e == NULL)
		e = &scratch;
	if (it->index == it->count) {
		if ((rc = expect_end(&r, e)) != 0)
			return err_wrap(e, "files");
		return 0;
	}
	if ((rc = get_text(&r, &got.name, NULL, e)) != 0)
		return err_wrap(e, "files: file %llu: name", index);
	if ((rc = get_u64(&r, &got.size, e)) != 0)
		return err_wrap(e, "files: file %llu: size", index);
	/* Database and WAL sizes are whole pages and frames; the server sends
	 * the bytes unpadded, trusting that. */
	if (got.size % 8 != 0)
		return err_set(e, -EPROTO,
		               "files: file %llu: size %llu is not a multiple "
		               "of 8",
		               index, (unsigned long long)got.size);
	if (got.size > left(&r))
		return err_set(e, -EPROTO,
		               "files: file %llu: size %llu past end of body "
		               "(%zu bytes left)",
		               index, (unsigned long long)got.size, left(&r));
	got.data = r.p + r.pos;
	r.pos += (size_t)got.size;
	it->pos = r.pos;
	it->index++;
	*file = got;
	return 1;
}

/* ------------------------------------------------------------------------
 * ROWS. */

int wire_rows_begin(unsigned type, const void *body, size_t len,
                    struct wire_rows *rows, struct err *e)
{
	struct err scratch;
	struct reader r;
	uint64_t ncols;
	const char *name;
	int rc;

	if (e == NULL)
		e = &scratch;
	rc = expect_type(type, WIRE_RESPONSE_ROWS, body, len, e);
	if (rc != 0)
		return rc;
	reader_init(&r, body, len);
	if ((rc = get_u64(&r, &ncols, e)) != 0)
		return err_wrap(e, "rows: column count");
	/* The server refuses to stream a statement without columns; with
	 * none, rows would be empty and the batch would never advance. */
	if (ncols == 0)
		return err_set(e, -EPROTO, "rows: column count is 0");
	if (ncols > WIRE_COLUMNS_MAX || ncols > left(&r) / 8)
		return err_set(e, -EPROTO,
		               "rows: column count %llu is more than %s",
		               (unsigned long long)ncols,
		               ncols > WIRE_COLUMNS_MAX ? "SQLite allows"
		                                        : "the body can hold");
	rows->names_pos = r.pos;
	for (uint64_t i = 0; i < ncols; i++)
		if ((rc = get_text(&r, &name, NULL, e)) != 0)
			return err_wrap(e, "rows: column %llu name",
			                (unsigned long long)i);
	rows->body = r.p;
	rows->len = r.len;
	rows->pos = r.pos;
	rows->ncols = (unsigned)ncols;
	rows->row = 0;
	rows->end = WIRE_ROWS_OPEN;
	return 0;
}

unsigned wire_rows_column_count(const struct wire_rows *rows)
{
	return rows->ncols;
}

int wire_rows_column_names(const struct wire_rows *rows, const char **names,
                           unsigned n, struct err *e)
{
	struct reader r = {rows->body, rows->len, rows->names_pos};

	if (n < rows->ncols)
		return err_set(e, -EINVAL,
		               "rows: room for %u column names, the result "
		               "has %u",
		               n, rows->ncols);
	for (unsigned i = 0; i < rows->ncols; i++) {
		int rc = get_text(&r, &names[i], NULL, e);

		/* wire_rows_begin has checked every name. */
		CAIRN_ASSERT(rc == 0);
	}
	return 0;
}

enum wire_rows_end wire_rows_end(const struct wire_rows *rows)
{
	return rows->end;
}

static int get_value(struct reader *r, unsigned code, struct wire_value *v,
                     struct err *e)
{
	uint64_t word;
	int rc = 0;

	switch (code) {
	case WIRE_INTEGER:
	case WIRE_UNIXTIME:
		rc = get_u64(r, &word, e);
		v->integer = (int64_t)word;
		break;
	case WIRE_FLOAT:
		rc = get_u64(r, &word, e);
		memcpy(&v->real, &word, sizeof v->real);
		break;
	case WIRE_TEXT:
	case WIRE_ISO8601:
		rc = get_text(r, &v->text.ptr, &v->text.len, e);
		break;
	case WIRE_BLOB:
		rc = get_blob(r, &v->blob.ptr, &v->blob.len, e);
		break;
	case WIRE_NULL:
		rc = get_u64(r, &word, e);
		break;
	case WIRE_BOOLEAN:
		rc = get_u64(r, &word, e);
		v->boolean = word != 0;
		break;
	default:
		return err_set(e, -EPROTO, "unknown type code %u", code);
	}
	v->type = (enum wire_type)code;
	return rc;
}

int wire_rows_next(struct wire_rows *rows, struct wire_value *values,
                   unsigned n, struct err *e)
{
	struct err scratch;
	struct reader r = {rows->body, rows->len, rows->pos};
	unsigned long long row = rows->row;
	const uint8_t *header;
	size_t header_len;
	uint64_t word;
	int rc;

	if (e == NULL)
		e = &scratch;
	if (rows->end != WIRE_ROWS_OPEN)
		return 0;
	if (n < rows->ncols)
		return err_set(e, -EINVAL,
		               "rows: room for %u values, the result has %u "
		               "columns",
		               n, rows->ncols);
	if (left(&r) < 8)
		return err_set(e, -EPROTO,
		               "rows: row %llu: body ends without an end "
		               "marker (%zu bytes left)",
		               row, left(&r));
	word = get_le64(r.p + r.pos);
	if (word == WIRE_ROWS_DONE_MARKER || word == WIRE_ROWS_PART_MARKER) {
		r.pos += 8;
		if ((rc = expect_end(&r, e)) != 0)
			return err_wrap(e, "rows: after the end marker");
		rows->pos = r.pos;
		rows->end = word == WIRE_ROWS_DONE_MARKER ? WIRE_ROWS_DONE
		                                          : WIRE_ROWS_PART;
		return 0;
	}

	/* Two 4-bit type codes per byte, column 0 in the low nibble. */
	header_len = pad8(((size_t)rows->ncols + 1) / 2);
	if (header_len > left(&r))
		return err_set(e, -EPROTO,
		               "rows: row %llu: header truncated (%zu of %zu "
		               "bytes)",
		               row, left(&r), header_len);
	header = r.p + r.pos;
	r.pos += header_len;
	for (unsigned i = 0; i < rows->ncols; i++) {
		unsigned code = (header[i / 2] >> (4 * (i % 2))) & 0x0f;

		if ((rc = get_value(&r, code, &values[i], e)) != 0)
			return err_wrap(e, "rows: row %llu column %u", row, i);
	}
	rows->pos = r.pos;
	rows->row++;
	return 1;
}
