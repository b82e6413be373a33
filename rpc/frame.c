/* The RPC frame codec: length-prefixed cairn.Frame messages, encoded into a
 * buffer and decoded incrementally from a byte stream, with every frame
 * checked against the rules of its kind. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "rpc/internal.h"

/* ------------------------------------------------------------------------
 * protobuf-c allocates through lib's checked allocator, so that allocation
 * failure sweeps reach it. protobuf-c reports a failed allocation and
 * garbage alike with NULL; the flag tells them apart. */

static void *pb_alloc(void *data, size_t size)
{
	void *p = mem_alloc(size);

	if (p == NULL && data != NULL)
		*(bool *)data = true;
	return p;
}

static void pb_free(void *data, void *p)
{
	(void)data;
	mem_free(p);
}

static ProtobufCAllocator free_allocator = {pb_alloc, pb_free, NULL};

void rpc__frame_free(Cairn__Frame *f)
{
	if (f != NULL)
		cairn__frame__free_unpacked(f, &free_allocator);
}

/* ------------------------------------------------------------------------
 * Checks. */

static const char *const kind_names[] = {
        [CAIRN__FRAME__KIND__REQUEST] = "REQUEST",
        [CAIRN__FRAME__KIND__RESPONSE] = "RESPONSE",
        [CAIRN__FRAME__KIND__DATA] = "DATA",
        [CAIRN__FRAME__KIND__HALF_CLOSE] = "HALF_CLOSE",
        [CAIRN__FRAME__KIND__CANCEL] = "CANCEL",
        [CAIRN__FRAME__KIND__WINDOW] = "WINDOW",
};

const char *rpc__frame_kind_name(int kind)
{
	if (kind < 0 || (size_t)kind >= CAIRN_ARRAY_SIZE(kind_names))
		return "?";
	return kind_names[kind];
}

static bool is_method_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.';
}

int rpc__method_check(const char *method, struct err *e)
{
	size_t len, i, slash = 0, slashes = 0;

	if (method == NULL || method[0] == '\0')
		return err_set(e, -EINVAL, "method: empty");
	len = strnlen(method, RPC_METHOD_MAX + 1);
	if (len > RPC_METHOD_MAX)
		return err_set(e, -EINVAL, "method: longer than %d bytes",
		               RPC_METHOD_MAX);
	for (i = 0; i < len; i++) {
		if (method[i] == '/') {
			slash = i;
			slashes++;
		} else if (!is_method_char(method[i])) {
			return err_set(
			        e, -EINVAL,
			        "method \"%s\": byte 0x%02x at %zu is not "
			        "allowed (A-Z a-z 0-9 _ . /)",
			        method, (unsigned char)method[i], i);
		}
	}
	if (slashes != 1)
		return err_set(e, -EINVAL,
		               "method \"%s\": needs exactly one '/', has %zu",
		               method, slashes);
	if (slash == 0 || slash == len - 1)
		return err_set(
		        e, -EINVAL,
		        "method \"%s\": needs a service before '/' and a "
		        "method after it",
		        method);
	return 0;
}

/* Which optional fields each kind may carry. */
enum field_bit {
	F_METHOD = 1 << 0,
	F_STATUS = 1 << 1,
	F_MESSAGE = 1 << 2,
	F_PAYLOAD = 1 << 3,
	F_WINDOW = 1 << 4,
	F_DEADLINE = 1 << 5,
};

static const unsigned allowed_fields[] = {
        [CAIRN__FRAME__KIND__REQUEST] = F_METHOD | F_PAYLOAD | F_DEADLINE,
        [CAIRN__FRAME__KIND__RESPONSE] = F_STATUS | F_MESSAGE | F_PAYLOAD,
        [CAIRN__FRAME__KIND__DATA] = F_PAYLOAD,
        [CAIRN__FRAME__KIND__HALF_CLOSE] = 0,
        [CAIRN__FRAME__KIND__CANCEL] = 0,
        [CAIRN__FRAME__KIND__WINDOW] = F_WINDOW,
};

static const struct {
	unsigned bit;
	const char *name;
} field_names[] = {
        {F_METHOD, "method"},   {F_STATUS, "status"},
        {F_MESSAGE, "message"}, {F_PAYLOAD, "payload"},
        {F_WINDOW, "window"},   {F_DEADLINE, "deadline_ms"},
};

static unsigned present_fields(const Cairn__Frame *f)
{
	unsigned bits = 0;

	if (f->method != NULL)
		bits |= F_METHOD;
	if (f->has_status)
		bits |= F_STATUS;
	if (f->message != NULL)
		bits |= F_MESSAGE;
	if (f->has_payload)
		bits |= F_PAYLOAD;
	if (f->has_window)
		bits |= F_WINDOW;
	if (f->has_deadline_ms)
		bits |= F_DEADLINE;
	return bits;
}

int rpc__frame_check(const Cairn__Frame *f, struct err *e)
{
	struct err inner;
	const char *kind;
	unsigned extra;
	size_t i;

	if (!f->has_kind)
		return err_set(e, -EPROTO, "frame: no kind");
	if ((int)f->kind < 0 || (size_t)f->kind >= CAIRN_ARRAY_SIZE(kind_names))
		return err_set(e, -EPROTO, "frame: unknown kind %d",
		               (int)f->kind);
	kind = kind_names[f->kind];
	if (!f->has_call_id || f->call_id == 0)
		return err_set(e, -EPROTO, "frame: %s without a call id", kind);

	extra = present_fields(f) & ~allowed_fields[f->kind];
	for (i = 0; extra != 0 && i < CAIRN_ARRAY_SIZE(field_names); i++)
		if (extra & field_names[i].bit)
			return err_set(
			        e, -EPROTO,
			        "frame: %s on call %" PRIu64
			        " carries %s, which only other kinds have",
			        kind, f->call_id, field_names[i].name);

	switch (f->kind) {
	case CAIRN__FRAME__KIND__REQUEST:
		if (f->method == NULL)
			return err_set(e, -EPROTO,
			               "frame: REQUEST on call %" PRIu64
			               " without a method",
			               f->call_id);
		if (rpc__method_check(f->method, &inner) != 0)
			return err_set(e, -EPROTO,
			               "frame: REQUEST on call %" PRIu64 ": %s",
			               f->call_id, inner.msg);
		if (f->has_deadline_ms && f->deadline_ms == 0)
			return err_set(e, -EPROTO,
			               "frame: REQUEST on call %" PRIu64
			               " with a deadline of 0 ms",
			               f->call_id);
		break;
	case CAIRN__FRAME__KIND__RESPONSE:
		if (!f->has_status)
			return err_set(e, -EPROTO,
			               "frame: RESPONSE on call %" PRIu64
			               " without a status",
			               f->call_id);
		if (f->status > RPC_STATUS_MAX)
			return err_set(e, -EPROTO,
			               "frame: RESPONSE on call %" PRIu64
			               " with status %" PRIu32
			               ", not a gRPC code",
			               f->call_id, f->status);
		break;
	case CAIRN__FRAME__KIND__WINDOW:
		if (!f->has_window || f->window == 0)
			return err_set(e, -EPROTO,
			               "frame: WINDOW on call %" PRIu64
			               " without a window",
			               f->call_id);
		break;
	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Encoding. */

int rpc__frame_measure(const Cairn__Frame *f, size_t max_frame,
                       size_t *wire_size, struct err *e)
{
	size_t body;
	int rv;

	rv = rpc__frame_check(f, e);
	if (rv != 0) {
		if (e != NULL)
			e->code = -EINVAL;
		return -EINVAL;
	}
	body = cairn__frame__get_packed_size(f);
	if (body > max_frame || body > UINT32_MAX)
		return err_set(e, -EMSGSIZE,
		               "frame: %s on call %" PRIu64
		               " takes %zu bytes, over the limit of %zu",
		               kind_names[f->kind], f->call_id, body,
		               max_frame);
	*wire_size = RPC_FRAME_PREFIX + body;
	return 0;
}

void rpc__frame_write(const Cairn__Frame *f, size_t wire_size, uint8_t *dst)
{
	size_t body = wire_size - RPC_FRAME_PREFIX;
	size_t packed;

	dst[0] = (uint8_t)(body >> 24);
	dst[1] = (uint8_t)(body >> 16);
	dst[2] = (uint8_t)(body >> 8);
	dst[3] = (uint8_t)body;
	packed = cairn__frame__pack(f, dst + RPC_FRAME_PREFIX);
	CAIRN_ASSERT(packed == body);
}

int rpc__frame_encode(const Cairn__Frame *f, size_t max_frame, struct buf *out,
                      struct err *e)
{
	size_t size = 0;
	int rv;

	rv = rpc__frame_measure(f, max_frame, &size, e);
	if (rv != 0)
		return rv;
	rv = buf_reserve(out, size);
	if (rv == -E2BIG)
		return err_set(e, rv,
		               "frame: %s on call %" PRIu64
		               ": output buffer full (%zu of %zu bytes)",
		               kind_names[f->kind], f->call_id, out->len,
		               out->max);
	if (rv != 0)
		return err_sys(e, rv, "frame: encode");
	rpc__frame_write(f, size, (uint8_t *)out->data + out->len);
	out->len += size;
	out->data[out->len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------
 * Decoding. */

void rpc__frame_decoder_init(struct rpc__frame_decoder *d, size_t max_frame)
{
	d->max_frame = max_frame;
	d->prefix_len = 0;
	d->body_len = 0;
	buf_init(&d->body, max_frame);
	d->error = 0;
}

void rpc__frame_decoder_close(struct rpc__frame_decoder *d)
{
	buf_free(&d->body);
}

bool rpc__frame_decoder_has_partial(const struct rpc__frame_decoder *d)
{
	return d->prefix_len > 0;
}

static int fail(struct rpc__frame_decoder *d, int code)
{
	d->error = code;
	buf_free(&d->body);
	return code;
}

/* Unpacks and checks a whole body. */
static int unpack(struct rpc__frame_decoder *d, const uint8_t *body, size_t len,
                  Cairn__Frame **out, struct err *e)
{
	bool alloc_failed = false;
	ProtobufCAllocator allocator = {pb_alloc, pb_free, &alloc_failed};
	Cairn__Frame *f;
	int rv;

	f = cairn__frame__unpack(&allocator, len, body);
	if (f == NULL && alloc_failed) {
		/* Not the peer's fault, but the stream position is lost. */
		err_set(e, -ENOMEM, "frame: out of memory decoding %zu bytes",
		        len);
		return fail(d, -ENOMEM);
	}
	if (f == NULL) {
		err_set(e, -EPROTO, "frame: %zu bytes are not a valid Frame",
		        len);
		return fail(d, -EPROTO);
	}
	rv = rpc__frame_check(f, e);
	if (rv != 0) {
		rpc__frame_free(f);
		return fail(d, rv);
	}
	*out = f;
	return 0;
}

int rpc__frame_decoder_feed(struct rpc__frame_decoder *d, const void *data,
                            size_t len, size_t *consumed, Cairn__Frame **out,
                            struct err *e)
{
	const uint8_t *p = data;
	size_t used = 0, want;
	int rv;

	*out = NULL;
	*consumed = 0;
	if (d->error != 0)
		return err_set(e, d->error, "frame: the stream failed before");

	while (d->prefix_len < RPC_FRAME_PREFIX && used < len)
		d->prefix[d->prefix_len++] = p[used++];
	if (d->prefix_len < RPC_FRAME_PREFIX) {
		*consumed = used;
		return 0;
	}
	if (d->body_len == 0) {
		d->body_len = (size_t)d->prefix[0] << 24 |
		              (size_t)d->prefix[1] << 16 |
		              (size_t)d->prefix[2] << 8 | (size_t)d->prefix[3];
		if (d->body_len == 0) {
			err_set(e, -EPROTO, "frame: length 0");
			return fail(d, -EPROTO);
		}
		if (d->body_len > d->max_frame) {
			err_set(e, -EMSGSIZE,
			        "frame: length %zu over the limit of %zu",
			        d->body_len, d->max_frame);
			return fail(d, -EMSGSIZE);
		}
	}

	if (d->body.len == 0 && len - used >= d->body_len) {
		/* The whole body is in this chunk: no copy. */
		rv = unpack(d, p + used, d->body_len, out, e);
		if (rv != 0)
			return rv;
		used += d->body_len;
	} else {
		want = d->body_len - d->body.len;
		if (want > len - used)
			want = len - used;
		rv = buf_append(&d->body, p + used, want);
		if (rv != 0) {
			err_sys(e, rv, "frame: buffering %zu bytes",
			        d->body_len);
			return fail(d, rv);
		}
		used += want;
		if (d->body.len < d->body_len) {
			*consumed = used;
			return 0;
		}
		rv = unpack(d, (const uint8_t *)d->body.data, d->body_len, out,
		            e);
		if (rv != 0)
			return rv;
		/* Keeps the memory for the next partial frame only when it
		 * is small; a large one is given back at once. */
		if (d->body.cap > 64 * 1024)
			buf_free(&d->body);
		else
			buf_reset(&d->body);
	}
	d->prefix_len = 0;
	d->body_len = 0;
	*consumed = used;
	return 0;
}
