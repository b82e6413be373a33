/* The generic JSON <-> protobuf mapping of DESIGN.md §6, read from
 * protobuf-c's descriptors; the rules are documented in proto/proto.h. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <protobuf-c/protobuf-c.h>

#include "lib/lib.h"
#include "proto/proto.h"

/* Longest field path kept for messages; deeper paths end in "...". */
#define PATH_MAX_LEN 256
/* Longest JSON name of an enum value. */
#define ENUM_NAME_MAX 128

/* Proxmox's wording, which clients show to people. */
#define REASON_MISSING "property is missing and it is not optional"
#define REASON_UNKNOWN                                                     \
	"property is not defined in schema and the schema does not allow " \
	"additional properties"

/* ------------------------------------------------------------------------
 * The allocator. mem_alloc is malloc underneath, so a message built here
 * may be freed by protobuf-c's default allocator as well. */

static void *allocator_alloc(void *data, size_t size)
{
	(void)data;
	return mem_alloc(size);
}

static void allocator_free(void *data, void *ptr)
{
	(void)data;
	mem_free(ptr);
}

static ProtobufCAllocator allocator = {
        .alloc = allocator_alloc,
        .free = allocator_free,
        .allocator_data = NULL,
};

ProtobufCAllocator *proto_allocator(void)
{
	return &allocator;
}

/* ------------------------------------------------------------------------
 * State of one conversion: limits, the path for messages, error
 * collection. */

struct ctx {
	const struct proto_json_override *overrides;
	size_t n_overrides;
	bool strings_are_values;
	int max_depth;
	size_t max_bytes;
	size_t max_repeated;
	size_t bytes; /* allocated so far for the decoded message */

	struct err *e; /* where the current error goes */
	char path[PATH_MAX_LEN];
	size_t path_len;

	/* Collecting per-parameter errors (input only). */
	json_t *errors;
	size_t param_len;   /* path_len of the current top-level parameter */
	bool fail_at_param; /* the last error was at the parameter itself */
	char reason[ERR_MSG_MAX];
	unsigned n_errors;
	struct err first;
};

static void ctx_init(struct ctx *c, const struct proto_json_options *o,
                     struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->max_depth = JSON_DEFAULT_MAX_DEPTH;
	c->max_bytes = PROTO_JSON_DEFAULT_MAX_BYTES;
	c->max_repeated = PROTO_JSON_DEFAULT_MAX_REPEATED;
	if (o != NULL) {
		c->overrides = o->overrides;
		c->n_overrides = o->overrides != NULL ? o->n_overrides : 0;
		c->strings_are_values = o->strings_are_values;
		if (o->max_depth > 0)
			c->max_depth = o->max_depth;
		if (o->max_bytes > 0)
			c->max_bytes = o->max_bytes;
		if (o->max_repeated > 0)
			c->max_repeated = o->max_repeated;
	}
	c->e = e;
}

static void path_truncate(struct ctx *c)
{
	c->path_len = sizeof(c->path) - 1;
	memcpy(c->path + c->path_len - 3, "...", 3);
	c->path[c->path_len] = '\0';
}

static void path_append(struct ctx *c, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static void path_append(struct ctx *c, const char *fmt, ...)
{
	size_t room = sizeof(c->path) - c->path_len;
	va_list ap;
	int n;

	if (room <= 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(c->path + c->path_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		c->path[c->path_len] = '\0';
	else if ((size_t)n >= room)
		path_truncate(c);
	else
		c->path_len += (size_t)n;
}

/* Names from outside (map keys, unknown keys) go into messages with
 * unprintable bytes as '?', cut at 40 bytes. */
static const char *sanitize(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i < size - 4 && i < 40; i++)
		out[i] = isprint((unsigned char)in[i]) ? in[i] : '?';
	if (in[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/* Each push returns the length to restore with path_pop. */
static size_t path_push_key(struct ctx *c, const char *name)
{
	size_t saved = c->path_len;
	char shown[48];

	path_append(c, "%s%s", saved > 0 ? "." : "",
	            sanitize(name, shown, sizeof(shown)));
	return saved;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
	size_t saved = c->path_len;

	path_append(c, "[%zu]", i);
	return saved;
}

static size_t path_push_map_key(struct ctx *c, const char *key)
{
	size_t saved = c->path_len;
	char shown[48];

	path_append(c, "[%s]", sanitize(key, shown, sizeof(shown)));
	return saved;
}

static void path_pop(struct ctx *c, size_t saved)
{
	if (saved < c->path_len) {
		c->path_len = saved;
		c->path[saved] = '\0';
	}
}

/* Fails with `code` at the current path: "nodes[2].name: REASON". */
static int fail(struct ctx *c, int code, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);
static int fail(struct ctx *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	c->fail_at_param = c->path_len == c->param_len;
	if (c->path_len > 0)
		return err_set(c->e, code, "%s: %s", c->path, c->reason);
	return err_set(c->e, code, "%s", c->reason);
}

static int fail_nomem(struct ctx *c)
{
	return fail(c, -ENOMEM, "out of memory");
}

/* A string value from outside, quoted for a message: at most 40 bytes,
 * unprintable ones as '?'. */
static const char *excerpt(const char *s, size_t len, char *out, size_t size)
{
	size_t i, n = 0, max = size - 6;

	if (max > 40)
		max = 40;
	out[n++] = '\'';
	for (i = 0; i < len && i < max; i++)
		out[n++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (i < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

/* "a string" for most values; the text itself for strings given where text
 * could have been a value (strings_are_values, AS_STRING, 64-bit). */
static const char *describe(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return excerpt(json_string_value(v), json_string_length(v), buf,
		               size);
	return json_type_name(v);
}

/* ------------------------------------------------------------------------
 * Descriptors: sizes, presence, names, overrides. */

static size_t type_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	CAIRN_ASSERT(!"unknown protobuf-c type");
	return 0;
}

static bool is_pointer_type(ProtobufCType type)
{
	return type == PROTOBUF_C_TYPE_STRING ||
	       type == PROTOBUF_C_TYPE_MESSAGE;
}

static void *member_at(const ProtobufCMessage *m, unsigned offset)
{
	return (char *)m + offset;
}

static bool value_is_zero(const ProtobufCFieldDescriptor *f, const void *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)v)->len == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)v;
		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)v == NULL;
	default: {
		static const char zero[8];
		return memcmp(v, zero, type_size(f->type)) == 0;
	}
	}
}

/* Whether a singular field holds a value (protobuf-c 1.4.1's rules: has_
 * flags, NULL or default pointers, oneof cases). */
static bool field_is_set(const ProtobufCFieldDescriptor *f,
                         const ProtobufCMessage *m)
{
	const void *v = member_at(m, f->offset);

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)member_at(m, f->quantifier_offset) !=
		    f->id)
			return false;
		if (is_pointer_type(f->type))
			return *(void *const *)v != NULL;
		return true;
	}
	if (is_pointer_type(f->type)) {
		const void *p = *(void *const *)v;

		if (p == NULL)
			return false;
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    p == f->default_value)
			return false;
		return f->label != PROTOBUF_C_LABEL_NONE ||
		       !value_is_zero(f, v);
	}
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return true;
	case PROTOBUF_C_LABEL_OPTIONAL:
		return *(const protobuf_c_boolean *)member_at(
		        m, f->quantifier_offset);
	case PROTOBUF_C_LABEL_NONE:
		return !value_is_zero(f, v);
	case PROTOBUF_C_LABEL_REPEATED:
		break;
	}
	return *(const size_t *)member_at(m, f->quantifier_offset) > 0;
}

/* Records that a singular field now holds a value: the has_ flag or the
 * oneof case. Done before the value is stored, so that a message freed
 * halfway frees what was stored. */
static void field_mark_set(const ProtobufCFieldDescriptor *f,
                           ProtobufCMessage *m)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)member_at(m, f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	         !is_pointer_type(f->type))
		*(protobuf_c_boolean *)member_at(m, f->quantifier_offset) = 1;
}

/* What the overrides say about one field. */
struct field_opts {
	const char *json_name;
	bool as_string;
	bool true_false;
};

/* Whether any override names this message, to skip per-field scans in the
 * common case. */
static bool has_overrides(const struct ctx *c,
                          const ProtobufCMessageDescriptor *md)
{
	size_t i;

	for (i = 0; i < c->n_overrides; i++)
		if (c->overrides[i].message != NULL &&
		    strcmp(c->overrides[i].message, md->name) == 0)
			return true;
	return false;
}

static void field_opts_get(const struct ctx *c, bool scan,
                           const ProtobufCMessageDescriptor *md,
                           const ProtobufCFieldDescriptor *f,
                           struct field_opts *fo)
{
	size_t i;

	fo->json_name = f->name;
	fo->as_string = false;
	fo->true_false = false;
	if (!scan)
		return;
	for (i = 0; i < c->n_overrides; i++) {
		const struct proto_json_override *ov = &c->overrides[i];

		if (ov->message == NULL || ov->field == NULL ||
		    strcmp(ov->field, f->name) != 0 ||
		    strcmp(ov->message, md->name) != 0)
			continue;
		switch (ov->kind) {
		case PROTO_JSON_RENAME:
			if (ov->json_name != NULL)
				fo->json_name = ov->json_name;
			break;
		case PROTO_JSON_AS_STRING:
			fo->as_string = true;
			break;
		case PROTO_JSON_AS_TRUE_FALSE:
			fo->true_false = true;
			break;
		case PROTO_JSON_NO_UNWRAP:
			break;
		}
	}
}

static bool is_unwrapped(const struct ctx *c,
                         const ProtobufCMessageDescriptor *md)
{
	size_t i;

	if (md->n_fields != 1)
		return false;
	for (i = 0; i < c->n_overrides; i++)
		if (c->overrides[i].kind == PROTO_JSON_NO_UNWRAP &&
		    c->overrides[i].message != NULL &&
		    strcmp(c->overrides[i].message, md->name) == 0)
			return false;
	return true;
}

/* The field whose JSON key is `key`, or NULL. */
static const ProtobufCFieldDescriptor *
field_by_json_name(const struct ctx *c, const ProtobufCMessageDescriptor *md,
                   const char *key)
{
	bool scan = has_overrides(c, md);
	struct field_opts fo;
	unsigned i;

	for (i = 0; i < md->n_fields; i++) {
		field_opts_get(c, scan, md, &md->fields[i], &fo);
		if (strcmp(fo.json_name, key) == 0)
			return &md->fields[i];
	}
	return NULL;
}

/* protoc's name for the entry type of map field `name`: "by_id" ->
 * "ByIdEntry". */
static bool is_map_entry_name(const char *field, const char *entry)
{
	bool upper_next = true;
	size_t i, n = 0;

	for (i = 0; field[i] != '\0'; i++) {
		char ch = field[i];

		if (ch == '_') {
			upper_next = true;
			continue;
		}
		if (upper_next)
			ch = (char)toupper((unsigned char)ch);
		upper_next = false;
		if (entry[n++] != ch)
			return false;
	}
	return strcmp(entry + n, "Entry") == 0;
}

/* DESIGN.md §6: a repeated nested message named `<Field>Entry` with exactly
 * `key = 1` and `value = 2` is a map; the C descriptors carry no map flag.
 * Keys must be something a JSON object key can spell. */
static bool field_is_map(const ProtobufCMessageDescriptor *md,
                         const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *entry = f->descriptor;
	size_t parent_len = strlen(md->name);
	const ProtobufCFieldDescriptor *key, *value;

	if (f->label != PROTOBUF_C_LABEL_REPEATED ||
	    f->type != PROTOBUF_C_TYPE_MESSAGE || entry->n_fields != 2)
		return false;
	if (strncmp(entry->name, md->name, parent_len) != 0 ||
	    entry->name[parent_len] != '.' ||
	    strcmp(entry->name + parent_len + 1, entry->short_name) != 0 ||
	    !is_map_entry_name(f->name, entry->short_name))
		return false;
	key = &entry->fields[0];
	value = &entry->fields[1];
	if (key->id != 1 || strcmp(key->name, "key") != 0 || value->id != 2 ||
	    strcmp(value->name, "value") != 0)
		return false;
	if (key->label == PROTOBUF_C_LABEL_REPEATED ||
	    value->label == PROTOBUF_C_LABEL_REPEATED ||
	    (key->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
	    (value->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return false;
	switch (key->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return false;
	default:
		return true;
	}
}

/* The JSON name of an enum value: see proto/proto.h. Fails when the name
 * does not fit `size`. */
static int enum_json_name(const ProtobufCEnumDescriptor *ed,
                          const char *value_name, char *out, size_t size)
{
	char prefix[ENUM_NAME_MAX];
	const char *t = ed->short_name;
	size_t i, n = 0, len;

	/* The type name in UPPER_SNAKE_CASE: GuestStatus -> GUEST_STATUS,
	 * HAState -> HA_STATE. */
	for (i = 0; t[i] != '\0' && n + 2 < sizeof(prefix); i++) {
		unsigned char ch = (unsigned char)t[i];

		if (i > 0 && isupper(ch) &&
		    (islower((unsigned char)t[i - 1]) ||
		     isdigit((unsigned char)t[i - 1]) ||
		     (isupper((unsigned char)t[i - 1]) &&
		      islower((unsigned char)t[i + 1]))))
			prefix[n++] = '_';
		prefix[n++] = (char)toupper(ch);
	}
	prefix[n++] = '_';
	prefix[n] = '\0';
	if (t[i] == '\0' && strncmp(value_name, prefix, n) == 0 &&
	    value_name[n] != '\0')
		value_name += n;
	len = strlen(value_name);
	if (len >= size)
		return -ENAMETOOLONG;
	for (i = 0; i < len; i++) {
		char ch = value_name[i];

		out[i] = ch == '_' ? '-' : (char)tolower((unsigned char)ch);
	}
	out[len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------
 * Text: UTF-8, base64, numbers. */

static bool utf8_is_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = s[i];
		uint32_t cp;
		size_t n, k;

		if (b < 0x80) {
			i++;
			continue;
		} else if (b >= 0xC2 && b <= 0xDF) {
			n = 1;
			cp = b & 0x1F;
		} else if (b >= 0xE0 && b <= 0xEF) {
			n = 2;
			cp = b & 0x0F;
		} else if (b >= 0xF0 && b <= 0xF4) {
			n = 3;
			cp = b & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t i, n = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		             in[i + 2];

		out[n++] = base64_alphabet[v >> 18];
		out[n++] = base64_alphabet[(v >> 12) & 63];
		out[n++] = base64_alphabet[(v >> 6) & 63];
		out[n++] = base64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[n++] = base64_alphabet[v >> 18];
		out[n++] = base64_alphabet[(v >> 12) & 63];
		out[n++] = '=';
		out[n++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[n++] = base64_alphabet[v >> 18];
		out[n++] = base64_alphabet[(v >> 12) & 63];
		out[n++] = base64_alphabet[(v >> 6) & 63];
		out[n++] = '=';
	}
	out[n] = '\0';
}

static int base64_value(char ch)
{
	const char *p;

	if (ch == '\0')
		return -1;
	p = strchr(base64_alphabet, ch);
	return p == NULL ? -1 : (int)(p - base64_alphabet);
}

/* Checks canonical padded base64 and returns the decoded length, or -1. */
static long base64_decoded_len(const char *s, size_t len)
{
	size_t pad = 0, i;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (base64_value(s[i]) < 0)
			return -1;
	/* The bits that padding drops must be zero (one spelling only). */
	if (pad == 1 && (base64_value(s[len - 2]) & 3) != 0)
		return -1;
	if (pad == 2 && (base64_value(s[len - 3]) & 15) != 0)
		return -1;
	return (long)(len / 4 * 3 - pad);
}

static void base64_decode(const char *s, size_t len, uint8_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < len; i += 4) {
		uint32_t v = 0;
		int k, got = 0;

		for (k = 0; k < 4; k++) {
			int d = s[i + k] == '=' ? 0 : base64_value(s[i + k]);

			if (s[i + k] != '=')
				got++;
			v = v << 6 | (uint32_t)d;
		}
		out[n++] = (uint8_t)(v >> 16);
		if (got > 2)
			out[n++] = (uint8_t)(v >> 8);
		if (got > 3)
			out[n++] = (uint8_t)v;
	}
}

/* A decimal integer: optional '-', then digits, nothing else. */
static bool parse_decimal(const char *s, size_t len, bool *neg, uint64_t *mag,
                          bool *overflow)
{
	size_t i = 0;
	uint64_t v = 0;

	*neg = len > 0 && s[0] == '-';
	if (*neg)
		i++;
	if (i == len)
		return false;
	*overflow = false;
	for (; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			*overflow = true;
		v = v * 10 + d;
	}
	*mag = v;
	return true;
}

static bool parse_special_double(const char *s, double *out)
{
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else
		return false;
	return true;
}

/* A decimal number as form values spell it: digits, sign, '.', exponent;
 * no hex, no words, no spaces. */
static bool parse_number_text(const char *s, size_t len, double *out)
{
	bool digit = false;
	char *end;
	size_t i;

	for (i = 0; i < len; i++) {
		if (isdigit((unsigned char)s[i]))
			digit = true;
		else if (strchr("+-.eE", s[i]) == NULL || s[i] == '\0')
			return false;
	}
	if (!digit)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return end == s + len && isfinite(*out);
}

/* ------------------------------------------------------------------------
 * Message -> JSON. */

static int render_message(struct ctx *c, const ProtobufCMessage *m, int depth,
                          json_t **out);

static int render_integer(struct ctx *c, bool neg, uint64_t mag, bool as_string,
                          json_t **out)
{
	char text[24];

	if (!as_string && (neg ? mag <= (uint64_t)INT64_MAX + 1
	                       : mag <= (uint64_t)INT64_MAX)) {
		json_int_t v = neg ? (json_int_t)(0 - mag) : (json_int_t)mag;

		*out = json_integer(v);
	} else {
		snprintf(text, sizeof(text), "%s%" PRIu64, neg ? "-" : "", mag);
		*out = json_string_nocheck(text);
	}
	return *out != NULL ? 0 : fail_nomem(c);
}

static int render_signed(struct ctx *c, int64_t v, bool as_string, json_t **out)
{
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	return render_integer(c, v < 0, mag, as_string, out);
}

static int render_double(struct ctx *c, double d, json_t **out)
{
	if (isnan(d))
		*out = json_string_nocheck("NaN");
	else if (isinf(d))
		*out = json_string_nocheck(d > 0 ? "Infinity" : "-Infinity");
	else
		*out = json_real(d);
	return *out != NULL ? 0 : fail_nomem(c);
}

static int render_string(struct ctx *c, const char *s, json_t **out)
{
	size_t len;

	if (s == NULL)
		s = "";
	len = strlen(s);
	if (!utf8_is_valid((const unsigned char *)s, len))
		return fail(c, -EINVAL, "string is not valid UTF-8");
	*out = json_stringn_nocheck(s, len);
	return *out != NULL ? 0 : fail_nomem(c);
}

static int render_bytes(struct ctx *c, const ProtobufCBinaryData *b,
                        json_t **out)
{
	char *text;

	if (b->len > (SIZE_MAX / 4 - 1) * 3)
		return fail(c, -E2BIG, "bytes too long to encode");
	text = mem_alloc((b->len + 2) / 3 * 4 + 1);
	if (text == NULL)
		return fail_nomem(c);
	base64_encode(b->data, b->len, text);
	*out = json_string_nocheck(text);
	mem_free(text);
	return *out != NULL ? 0 : fail_nomem(c);
}

static int render_enum(struct ctx *c, const ProtobufCFieldDescriptor *f,
                       int value, json_t **out)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	const ProtobufCEnumValue *ev =
	        protobuf_c_enum_descriptor_get_value(ed, value);
	char name[ENUM_NAME_MAX];

	if (ev == NULL)
		return render_signed(c, value, false, out);
	if (enum_json_name(ed, ev->name, name, sizeof(name)) != 0)
		return fail(c, -EINVAL, "enum value name '%s' is too long",
		            ev->name);
	*out = json_string_nocheck(name);
	return *out != NULL ? 0 : fail_nomem(c);
}

/* One value of field f stored at v (a singular field, an element of a
 * repeated one, a map entry's value), presence aside. */
static int render_value(struct ctx *c, const ProtobufCFieldDescriptor *f,
                        const struct field_opts *fo, const void *v, int depth,
                        json_t **out)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return render_signed(c, *(const int32_t *)v, fo->as_string,
		                     out);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return render_signed(c, *(const int64_t *)v, fo->as_string,
		                     out);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return render_integer(c, false, *(const uint32_t *)v,
		                      fo->as_string, out);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return render_integer(c, false, *(const uint64_t *)v,
		                      fo->as_string, out);
	case PROTOBUF_C_TYPE_FLOAT:
		return render_double(c, *(const float *)v, out);
	case PROTOBUF_C_TYPE_DOUBLE:
		return render_double(c, *(const double *)v, out);
	case PROTOBUF_C_TYPE_BOOL: {
		bool b = *(const protobuf_c_boolean *)v != 0;

		*out = fo->true_false ? json_boolean(b) : json_integer(b);
		return *out != NULL ? 0 : fail_nomem(c);
	}
	case PROTOBUF_C_TYPE_ENUM:
		return render_enum(c, f, *(const int *)v, out);
	case PROTOBUF_C_TYPE_STRING:
		return render_string(c, *(char *const *)v, out);
	case PROTOBUF_C_TYPE_BYTES:
		return render_bytes(c, v, out);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;

		if (sub == NULL) { /* a map entry without its value */
			if (depth > c->max_depth)
				return fail(c, -EINVAL,
				            "nested deeper than %d levels",
				            c->max_depth);
			*out = json_object();
			return *out != NULL ? 0 : fail_nomem(c);
		}
		return render_message(c, sub, depth, out);
	}
	}
	CAIRN_ASSERT(!"unknown protobuf-c type");
	return -EINVAL;
}

/* A map key as JSON object key text. */
static int map_key_text(struct ctx *c, const ProtobufCFieldDescriptor *kf,
                        const void *v, char *buf, size_t size, const char **out)
{
	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)v;

		if (s == NULL)
			s = "";
		if (!utf8_is_valid((const unsigned char *)s, strlen(s)))
			return fail(c, -EINVAL, "map key is not valid UTF-8");
		*out = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		*out = *(const protobuf_c_boolean *)v ? "1" : "0";
		return 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		snprintf(buf, size, "%" PRId32, *(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(buf, size, "%" PRId64, *(const int64_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		snprintf(buf, size, "%" PRIu32, *(const uint32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(buf, size, "%" PRIu64, *(const uint64_t *)v);
		break;
	default:
		CAIRN_ASSERT(!"map key type checked by field_is_map");
	}
	*out = buf;
	return 0;
}

static int render_map(struct ctx *c, const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *m, int depth, json_t **out)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0];
	const ProtobufCFieldDescriptor *vf = &ed->fields[1];
	size_t n = *(const size_t *)member_at(m, f->quantifier_offset);
	ProtobufCMessage *const *entries =
	        *(ProtobufCMessage * *const *)member_at(m, f->offset);
	struct field_opts vo;
	json_t *obj;
	size_t i;
	int rv;

	if (depth > c->max_depth)
		return fail(c, -EINVAL, "nested deeper than %d levels",
		            c->max_depth);
	field_opts_get(c, has_overrides(c, ed), ed, vf, &vo);
	obj = json_object();
	if (obj == NULL)
		return fail_nomem(c);
	for (i = 0; i < n; i++) {
		const ProtobufCMessage *entry = entries[i];
		const char *key = "";
		char buf[24];
		json_t *value;
		size_t saved;

		if (entry == NULL)
			continue;
		rv = map_key_text(c, kf, member_at(entry, kf->offset), buf,
		                  sizeof(buf), &key);
		if (rv != 0)
			goto err_after_obj;
		saved = path_push_map_key(c, key);
		rv = render_value(c, vf, &vo, member_at(entry, vf->offset),
		                  depth + 1, &value);
		if (rv == 0 &&
		    json_object_set_new_nocheck(obj, key, value) != 0)
			rv = fail_nomem(c);
		path_pop(c, saved);
		if (rv != 0)
			goto err_after_obj;
	}
	*out = obj;
	return 0;

err_after_obj:
	json_decref(obj);
	return rv;
}

static int render_repeated(struct ctx *c, const ProtobufCFieldDescriptor *f,
                           const struct field_opts *fo,
                           const ProtobufCMessage *m, int depth, json_t **out)
{
	size_t n = *(const size_t *)member_at(m, f->quantifier_offset);
	const char *elems = *(char *const *)member_at(m, f->offset);
	size_t size = type_size(f->type), i;
	json_t *arr;
	int rv;

	if (depth > c->max_depth)
		return fail(c, -EINVAL, "nested deeper than %d levels",
		            c->max_depth);
	arr = json_array();
	if (arr == NULL)
		return fail_nomem(c);
	for (i = 0; i < n; i++) {
		size_t saved = path_push_index(c, i);
		json_t *value;

		rv = render_value(c, f, fo, elems + i * size, depth + 1,
		                  &value);
		if (rv == 0 && json_array_append_new(arr, value) != 0)
			rv = fail_nomem(c);
		path_pop(c, saved);
		if (rv != 0) {
			json_decref(arr);
			return rv;
		}
	}
	*out = arr;
	return 0;
}

/* The JSON value of field f of m, which is set or repeated. */
static int render_field(struct ctx *c, const ProtobufCMessageDescriptor *md,
                        const ProtobufCFieldDescriptor *f,
                        const struct field_opts *fo, const ProtobufCMessage *m,
                        int depth, json_t **out)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (field_is_map(md, f))
			return render_map(c, f, m, depth, out);
		return render_repeated(c, f, fo, m, depth, out);
	}
	return render_value(c, f, fo, member_at(m, f->offset), depth, out);
}

static int render_message(struct ctx *c, const ProtobufCMessage *m, int depth,
                          json_t **out)
{
	const ProtobufCMessageDescriptor *md = m->descriptor;
	bool scan = has_overrides(c, md);
	json_t *obj;
	unsigned i;
	int rv;

	if (depth > c->max_depth)
		return fail(c, -EINVAL, "nested deeper than %d levels",
		            c->max_depth);
	obj = json_object();
	if (obj == NULL)
		return fail_nomem(c);
	for (i = 0; i < md->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &md->fields[i];
		struct field_opts fo;
		json_t *value;
		size_t saved;

		if (f->label != PROTOBUF_C_LABEL_REPEATED &&
		    !field_is_set(f, m))
			continue;
		field_opts_get(c, scan, md, f, &fo);
		saved = path_push_key(c, fo.json_name);
		rv = render_field(c, md, f, &fo, m, depth + 1, &value);
		if (rv == 0 &&
		    json_object_set_new_nocheck(obj, fo.json_name, value) != 0)
			rv = fail_nomem(c);
		path_pop(c, saved);
		if (rv != 0) {
			json_decref(obj);
			return rv;
		}
	}
	*out = obj;
	return 0;
}

int proto_json_from_message(const ProtobufCMessage *m,
                            const struct proto_json_options *o, json_t **out,
                            struct err *e)
{
	const ProtobufCMessageDescriptor *md;
	struct ctx c;
	json_t *value;
	int rv;

	CAIRN_ASSERT(m != NULL && m->descriptor != NULL &&
	             m->descriptor->magic ==
	                     PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	md = m->descriptor;
	ctx_init(&c, o, e);
	if (is_unwrapped(&c, md)) {
		const ProtobufCFieldDescriptor *f = &md->fields[0];
		struct field_opts fo;

		field_opts_get(&c, has_overrides(&c, md), md, f, &fo);
		path_push_key(&c, fo.json_name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED ||
		    field_is_set(f, m)) {
			rv = render_field(&c, md, f, &fo, m, 1, &value);
		} else {
			value = json_null();
			rv = 0;
		}
	} else {
		rv = render_message(&c, m, 1, &value);
	}
	if (rv != 0)
		return rv;
	*out = value;
	return 0;
}

/* ------------------------------------------------------------------------
 * JSON -> message. Everything allocated is attached to the message tree at
 * once, with counts and has_ flags kept so that
 * protobuf_c_message_free_unpacked can free a tree left halfway by an
 * error. */

static int decode_message(struct ctx *c, const json_t *in, ProtobufCMessage *m,
                          int depth, bool top);

/* Zeroed memory, counted against max_bytes. */
static int ctx_alloc(struct ctx *c, size_t count, size_t size, void **out)
{
	size_t total;
	void *p;

	if (size != 0 && count > SIZE_MAX / size)
		return fail(c, -E2BIG, "too large");
	total = count * size;
	if (total > c->max_bytes - c->bytes)
		return fail(c, -E2BIG,
		            "the message would take more than %zu bytes",
		            c->max_bytes);
	p = allocator.alloc(allocator.allocator_data, total == 0 ? 1 : total);
	if (p == NULL)
		return fail_nomem(c);
	memset(p, 0, total);
	c->bytes += total;
	*out = p;
	return 0;
}

static int new_message(struct ctx *c, const ProtobufCMessageDescriptor *md,
                       ProtobufCMessage **out)
{
	void *p;
	int rv = ctx_alloc(c, 1, md->sizeof_message, &p);

	if (rv != 0)
		return rv;
	md->message_init(p);
	*out = p;
	return 0;
}

/* Integer ranges by field type, as sign and magnitude. */
struct int_range {
	uint64_t max;     /* largest positive magnitude */
	uint64_t neg_max; /* largest negative magnitude (0: unsigned) */
	const char *name;
};

static struct int_range int_range_of(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return (struct int_range){INT32_MAX, (uint64_t)INT32_MAX + 1,
		                          "an int32"};
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return (struct int_range){UINT32_MAX, 0, "a uint32"};
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return (struct int_range){INT64_MAX, (uint64_t)INT64_MAX + 1,
		                          "an int64"};
	default:
		return (struct int_range){UINT64_MAX, 0, "a uint64"};
	}
}

static bool is_64bit(ProtobufCType type)
{
	return type_size(type) == 8 && type != PROTOBUF_C_TYPE_DOUBLE;
}

/* Stores sign and magnitude into an integer field's slot, range-checked. */
static int store_integer(struct ctx *c, ProtobufCType type, bool neg,
                         uint64_t mag, void *slot)
{
	struct int_range r = int_range_of(type);

	if (neg && mag == 0)
		neg = false;
	if (neg ? mag > r.neg_max : mag > r.max)
		return fail(c, -EINVAL, "%s%" PRIu64 " is out of range for %s",
		            neg ? "-" : "", mag, r.name);
	if (type_size(type) == 4) {
		if (r.neg_max == 0)
			*(uint32_t *)slot = (uint32_t)mag;
		else
			*(int32_t *)slot = neg ? (int32_t)(0 - (int64_t)mag)
			                       : (int32_t)mag;
	} else if (r.neg_max == 0) {
		*(uint64_t *)slot = mag;
	} else if (neg) {
		*(int64_t *)slot = mag == (uint64_t)INT64_MAX + 1
		                           ? INT64_MIN
		                           : -(int64_t)mag;
	} else {
		*(int64_t *)slot = (int64_t)mag;
	}
	return 0;
}

static int decode_integer_text(struct ctx *c, ProtobufCType type, const char *s,
                               size_t len, void *slot)
{
	char shown[64];
	uint64_t mag;
	bool neg, overflow;

	if (!parse_decimal(s, len, &neg, &mag, &overflow))
		return fail(c, -EINVAL, "expected an integer, got %s",
		            excerpt(s, len, shown, sizeof(shown)));
	if (overflow)
		return fail(c, -EINVAL, "%s is out of range for %s",
		            excerpt(s, len, shown, sizeof(shown)),
		            int_range_of(type).name);
	return store_integer(c, type, neg, mag, slot);
}

static int decode_integer(struct ctx *c, const ProtobufCFieldDescriptor *f,
                          const struct field_opts *fo, const json_t *v,
                          void *slot)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		return store_integer(c, f->type, n < 0,
		                     n < 0 ? 0 - (uint64_t)n : (uint64_t)n,
		                     slot);
	}
	if (json_is_string(v) &&
	    (c->strings_are_values || fo->as_string || is_64bit(f->type)))
		return decode_integer_text(c, f->type, json_string_value(v),
		                           json_string_length(v), slot);
	return fail(c, -EINVAL, "expected an integer, got %s",
	            json_type_name(v));
}

static int decode_double(struct ctx *c, const ProtobufCFieldDescriptor *f,
                         const json_t *v, void *slot)
{
	char shown[64];
	double d;

	if (json_is_integer(v)) {
		d = (double)json_integer_value(v);
	} else if (json_is_real(v)) {
		d = json_real_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);

		if (!parse_special_double(s, &d) &&
		    !(c->strings_are_values && parse_number_text(s, len, &d)))
			return fail(
			        c, -EINVAL, "expected a number, got %s",
			        c->strings_are_values
			                ? excerpt(s, len, shown, sizeof(shown))
			                : "a string");
	} else {
		return fail(c, -EINVAL, "expected a number, got %s",
		            json_type_name(v));
	}
	if (f->type == PROTOBUF_C_TYPE_FLOAT) {
		if (isfinite(d) && fabs(d) > FLT_MAX)
			return fail(c, -EINVAL,
			            "%g is out of range for a float", d);
		*(float *)slot = (float)d;
	} else {
		*(double *)slot = d;
	}
	return 0;
}

static int decode_bool(struct ctx *c, const json_t *v, void *slot)
{
	char shown[64];
	bool b;

	if (json_is_boolean(v)) {
		b = json_is_true(v);
	} else if (json_is_integer(v) &&
	           (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
		b = json_integer_value(v) == 1;
	} else if (json_is_string(v) && c->strings_are_values) {
		const char *s = json_string_value(v);

		if (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0)
			b = true;
		else if (strcmp(s, "0") == 0 || strcasecmp(s, "false") == 0)
			b = false;
		else
			return fail(c, -EINVAL,
			            "expected a boolean (0, 1, true or false), "
			            "got %s",
			            describe(v, shown, sizeof(shown)));
		if (strlen(s) != json_string_length(v))
			return fail(c, -EINVAL, "string contains NUL");
	} else {
		if (json_is_integer(v))
			return fail(c, -EINVAL,
			            "expected a boolean (0, 1, true or false), "
			            "got %" JSON_INTEGER_FORMAT,
			            json_integer_value(v));
		return fail(c, -EINVAL,
		            "expected a boolean (0, 1, true or false), got %s",
		            json_type_name(v));
	}
	*(protobuf_c_boolean *)slot = b;
	return 0;
}

/* Lists the enum's JSON names for a message: "running, stopped, ...". */
static void enum_choices(const ProtobufCEnumDescriptor *ed, char *out,
                         size_t size)
{
	size_t n = 0;
	unsigned i;

	out[0] = '\0';
	for (i = 0; i < ed->n_values; i++) {
		char name[ENUM_NAME_MAX];
		int w;

		if (enum_json_name(ed, ed->values[i].name, name, sizeof(name)))
			continue;
		w = snprintf(out + n, size - n, "%s%s", i > 0 ? ", " : "",
		             name);
		if (w < 0 || (size_t)w >= size - n) {
			if (size > 4)
				memcpy(out + size - 4, "...", 4);
			return;
		}
		n += (size_t)w;
	}
}

static int decode_enum(struct ctx *c, const ProtobufCFieldDescriptor *f,
                       const json_t *v, void *slot)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	char choices[256], shown[64];
	unsigned i;

	if (json_is_string(v) &&
	    strlen(json_string_value(v)) == json_string_length(v)) {
		for (i = 0; i < ed->n_values; i++) {
			char name[ENUM_NAME_MAX];

			if (enum_json_name(ed, ed->values[i].name, name,
			                   sizeof(name)) == 0 &&
			    strcmp(name, json_string_value(v)) == 0) {
				*(int *)slot = ed->values[i].value;
				return 0;
			}
		}
	}
	enum_choices(ed, choices, sizeof(choices));
	return fail(c, -EINVAL, "expected one of %s; got %s", choices,
	            describe(v, shown, sizeof(shown)));
}

/* Checks a JSON string for a proto string field: no NUL, valid UTF-8. */
static int check_text(struct ctx *c, const json_t *v, const char *what)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);

	if (strlen(s) != len)
		return fail(c, -EINVAL, "%s contains NUL", what);
	if (!utf8_is_valid((const unsigned char *)s, len))
		return fail(c, -EINVAL, "%s is not valid UTF-8", what);
	return 0;
}

static int decode_string(struct ctx *c, const json_t *v, void *slot)
{
	size_t len;
	void *copy;
	int rv;

	if (!json_is_string(v))
		return fail(c, -EINVAL, "expected a string, got %s",
		            json_type_name(v));
	rv = check_text(c, v, "string");
	if (rv != 0)
		return rv;
	len = json_string_length(v);
	rv = ctx_alloc(c, len + 1, 1, &copy);
	if (rv != 0)
		return rv;
	memcpy(copy, json_string_value(v), len);
	*(char **)slot = copy;
	return 0;
}

static int decode_bytes(struct ctx *c, const json_t *v, void *slot)
{
	ProtobufCBinaryData *b = slot;
	const char *s;
	void *data;
	long len;
	int rv;

	if (!json_is_string(v))
		return fail(c, -EINVAL, "expected a base64 string, got %s",
		            json_type_name(v));
	s = json_string_value(v);
	len = base64_decoded_len(s, json_string_length(v));
	if (len < 0 || strlen(s) != json_string_length(v))
		return fail(c, -EINVAL, "not valid base64");
	b->len = 0;
	b->data = NULL;
	if (len == 0)
		return 0;
	rv = ctx_alloc(c, (size_t)len, 1, &data);
	if (rv != 0)
		return rv;
	base64_decode(s, json_string_length(v), data);
	b->data = data;
	b->len = (size_t)len;
	return 0;
}

/* One value of field f into slot (a singular field, an element, a map
 * entry's value); depth is the nesting of v. */
static int decode_value(struct ctx *c, const ProtobufCFieldDescriptor *f,
                        const struct field_opts *fo, const json_t *v,
                        void *slot, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return decode_integer(c, f, fo, v, slot);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return decode_double(c, f, v, slot);
	case PROTOBUF_C_TYPE_BOOL:
		return decode_bool(c, v, slot);
	case PROTOBUF_C_TYPE_ENUM:
		return decode_enum(c, f, v, slot);
	case PROTOBUF_C_TYPE_STRING:
		return decode_string(c, v, slot);
	case PROTOBUF_C_TYPE_BYTES:
		return decode_bytes(c, v, slot);
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub;
		int rv;

		if (!json_is_object(v))
			return fail(c, -EINVAL, "expected an object, got %s",
			            json_type_name(v));
		rv = new_message(c, f->descriptor, &sub);
		if (rv != 0)
			return rv;
		*(ProtobufCMessage **)slot = sub;
		return decode_message(c, v, sub, depth, false);
	}
	}
	CAIRN_ASSERT(!"unknown protobuf-c type");
	return -EINVAL;
}

static int check_elements(struct ctx *c, size_t n)
{
	if (n > c->max_repeated)
		return fail(c, -E2BIG,
		            "%zu elements, more than the limit of %zu", n,
		            c->max_repeated);
	return 0;
}

static int decode_map_key(struct ctx *c, const ProtobufCFieldDescriptor *kf,
                          const char *key, void *slot)
{
	size_t len = strlen(key);
	char shown[64];
	void *copy;
	int rv;

	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING:
		if (!utf8_is_valid((const unsigned char *)key, len))
			return fail(c, -EINVAL, "key is not valid UTF-8");
		rv = ctx_alloc(c, len + 1, 1, &copy);
		if (rv != 0)
			return rv;
		memcpy(copy, key, len);
		*(char **)slot = copy;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (strcmp(key, "1") == 0 || strcasecmp(key, "true") == 0)
			*(protobuf_c_boolean *)slot = 1;
		else if (strcmp(key, "0") == 0 || strcasecmp(key, "false") == 0)
			*(protobuf_c_boolean *)slot = 0;
		else
			return fail(c, -EINVAL,
			            "key: expected a boolean (0, 1, true or "
			            "false), got %s",
			            excerpt(key, len, shown, sizeof(shown)));
		return 0;
	default:
		return decode_integer_text(c, kf->type, key, len, slot);
	}
}

static int decode_map(struct ctx *c, const ProtobufCFieldDescriptor *f,
                      const json_t *v, ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0];
	const ProtobufCFieldDescriptor *vf = &ed->fields[1];
	size_t *n = member_at(m, f->quantifier_offset);
	ProtobufCMessage ***entries = member_at(m, f->offset);
	struct field_opts vo;
	const char *key;
	json_t *value;
	void *arr;
	size_t i = 0;
	int rv;

	if (!json_is_object(v))
		return fail(c, -EINVAL, "expected an object, got %s",
		            json_type_name(v));
	if (depth > c->max_depth)
		return fail(c, -EINVAL, "nested deeper than %d levels",
		            c->max_depth);
	rv = check_elements(c, json_object_size(v));
	if (rv != 0 || json_object_size(v) == 0)
		return rv;
	rv = ctx_alloc(c, json_object_size(v), sizeof(ProtobufCMessage *),
	               &arr);
	if (rv != 0)
		return rv;
	*entries = arr;
	*n = 0;
	field_opts_get(c, has_overrides(c, ed), ed, vf, &vo);
	json_object_foreach((json_t *)v, key, value)
	{
		size_t saved = path_push_map_key(c, key);
		ProtobufCMessage *entry;

		*n = i + 1;
		rv = new_message(c, ed, &entry);
		if (rv == 0) {
			(*entries)[i] = entry;
			field_mark_set(kf, entry);
			rv = decode_map_key(c, kf, key,
			                    member_at(entry, kf->offset));
		}
		if (rv == 0) {
			field_mark_set(vf, entry);
			rv = decode_value(c, vf, &vo, value,
			                  member_at(entry, vf->offset),
			                  depth + 1);
		}
		path_pop(c, saved);
		if (rv != 0)
			return rv;
		i++;
	}
	return 0;
}

static int decode_repeated(struct ctx *c, const ProtobufCFieldDescriptor *f,
                           const struct field_opts *fo, const json_t *v,
                           ProtobufCMessage *m, int depth)
{
	size_t *n = member_at(m, f->quantifier_offset);
	char **elems = member_at(m, f->offset);
	size_t size = type_size(f->type), count, i;
	bool single = false;
	void *arr;
	int rv;

	if (json_is_array(v)) {
		count = json_array_size(v);
		if (depth > c->max_depth)
			return fail(c, -EINVAL, "nested deeper than %d levels",
			            c->max_depth);
	} else if (c->strings_are_values) {
		count = 1;
		single = true;
	} else {
		return fail(c, -EINVAL, "expected an array, got %s",
		            json_type_name(v));
	}
	rv = check_elements(c, count);
	if (rv != 0 || count == 0)
		return rv;
	rv = ctx_alloc(c, count, size, &arr);
	if (rv != 0)
		return rv;
	*elems = arr;
	*n = 0;
	for (i = 0; i < count; i++) {
		size_t saved = single ? c->path_len : path_push_index(c, i);

		/* Counted before it is filled: a half-built element is
		 * zeroed or attached, so freeing it is safe. */
		*n = i + 1;
		rv = decode_value(c, f, fo, single ? v : json_array_get(v, i),
		                  *elems + i * size,
		                  single ? depth : depth + 1);
		path_pop(c, saved);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Decodes v into field f of m; v is not null. */
static int decode_field(struct ctx *c, const ProtobufCMessageDescriptor *md,
                        const ProtobufCFieldDescriptor *f,
                        const struct field_opts *fo, const json_t *v,
                        ProtobufCMessage *m, int depth)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (field_is_map(md, f))
			return decode_map(c, f, v, m, depth);
		return decode_repeated(c, f, fo, v, m, depth);
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t chosen =
		        *(const uint32_t *)member_at(m, f->quantifier_offset);

		if (chosen != 0 && chosen != f->id) {
			const char *other = "another field";
			bool scan = has_overrides(c, md);
			struct field_opts oo;
			unsigned i;

			for (i = 0; i < md->n_fields; i++) {
				if (md->fields[i].id != chosen)
					continue;
				field_opts_get(c, scan, md, &md->fields[i],
				               &oo);
				other = oo.json_name;
			}
			return fail(c, -EINVAL,
			            "cannot be given together with '%s'",
			            other);
		}
	}
	field_mark_set(f, m);
	return decode_value(c, f, fo, v, member_at(m, f->offset), depth);
}

/* Collects the current error under the top-level parameter `param`, or
 * passes it on when not collecting (or out of memory). */
static int collect(struct ctx *c, const char *param, int rv)
{
	json_t *reason;

	if (c->errors == NULL || rv == -ENOMEM)
		return rv;
	if (c->n_errors == 0)
		c->first = *c->e;
	c->n_errors++;
	/* A key jansson did not check (built with *_nocheck) gets none. */
	if (!utf8_is_valid((const unsigned char *)param, strlen(param)))
		return 0;
	/* Reasons are ASCII: names and values in them are sanitized. */
	reason = json_string_nocheck(c->fail_at_param ? c->reason : c->e->msg);
	if (reason == NULL || json_object_set_new(c->errors, param, reason))
		return fail_nomem(c);
	return 0;
}

static int decode_message(struct ctx *c, const json_t *in, ProtobufCMessage *m,
                          int depth, bool top)
{
	const ProtobufCMessageDescriptor *md = m->descriptor;
	bool scan = has_overrides(c, md);
	const char *key;
	json_t *value;
	unsigned i;
	int rv;

	if (!json_is_object(in))
		return fail(c, -EINVAL, "expected an object, got %s",
		            json_type_name(in));
	if (depth > c->max_depth)
		return fail(c, -EINVAL, "nested deeper than %d levels",
		            c->max_depth);
	json_object_foreach((json_t *)in, key, value)
	{
		size_t saved;

		if (field_by_json_name(c, md, key) != NULL)
			continue;
		saved = path_push_key(c, key);
		if (top)
			c->param_len = c->path_len;
		rv = fail(c, -EINVAL, REASON_UNKNOWN);
		path_pop(c, saved);
		if (!top || (rv = collect(c, key, rv)) != 0)
			return rv;
	}
	for (i = 0; i < md->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &md->fields[i];
		struct field_opts fo;
		size_t saved;

		field_opts_get(c, scan, md, f, &fo);
		value = json_object_get(in, fo.json_name);
		saved = path_push_key(c, fo.json_name);
		if (top)
			c->param_len = c->path_len;
		if (value == NULL || json_is_null(value))
			rv = f->label == PROTOBUF_C_LABEL_REQUIRED
			             ? fail(c, -EINVAL, REASON_MISSING)
			             : 0;
		else
			rv = decode_field(c, md, f, &fo, value, m, depth + 1);
		path_pop(c, saved);
		if (rv != 0 &&
		    (!top || (rv = collect(c, fo.json_name, rv)) != 0))
			return rv;
	}
	return 0;
}

/* Whether the input of a one-field message is the wrapping object
 * {"field": value} rather than the bare value; see proto/proto.h. */
static bool is_wrapper(const struct ctx *c,
                       const ProtobufCMessageDescriptor *md, const char *name,
                       const json_t *in)
{
	const ProtobufCFieldDescriptor *f = &md->fields[0];
	const json_t *inner;

	if (!json_is_object(in))
		return false;
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return true; /* the bare value is never an object */
	if (f->label == PROTOBUF_C_LABEL_REPEATED && !field_is_map(md, f))
		return true; /* the bare value is an array */
	inner = json_object_get(in, name);
	if (json_object_size(in) != 1 || inner == NULL)
		return false;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return json_is_object(inner);
	return field_by_json_name(c, f->descriptor, name) == NULL;
}

/* The first collected error, with how many more there were. */
static int fail_collected(struct ctx *c, ProtobufCMessage *m, struct err *e)
{
	protobuf_c_message_free_unpacked(m, &allocator);
	return err_set(e, c->first.code, "%s (and %u more)", c->first.msg,
	               c->n_errors - 1);
}

int proto_json_to_message(const ProtobufCMessageDescriptor *d, const json_t *in,
                          const struct proto_json_options *o,
                          ProtobufCMessage **out, json_t *errors, struct err *e)
{
	ProtobufCMessage *m;
	struct err scratch;
	struct ctx c;
	int rv;

	CAIRN_ASSERT(d != NULL &&
	             d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	CAIRN_ASSERT(errors == NULL || json_is_object(errors));
	err_clear(&scratch);
	ctx_init(&c, o, &scratch);
	c.errors = errors;
	rv = new_message(&c, d, &m);
	if (rv != 0)
		goto err;
	if (is_unwrapped(&c, d)) {
		const ProtobufCFieldDescriptor *f = &d->fields[0];
		struct field_opts fo;

		field_opts_get(&c, has_overrides(&c, d), d, f, &fo);
		if (in != NULL && is_wrapper(&c, d, fo.json_name, in)) {
			rv = decode_message(&c, in, m, 1, true);
		} else {
			path_push_key(&c, fo.json_name);
			c.param_len = c.path_len;
			if (in == NULL || json_is_null(in))
				rv = f->label == PROTOBUF_C_LABEL_REQUIRED
				             ? fail(&c, -EINVAL, REASON_MISSING)
				             : 0;
			else
				rv = decode_field(&c, d, f, &fo, in, m, 1);
			if (rv != 0)
				rv = collect(&c, fo.json_name, rv);
		}
	} else {
		rv = decode_message(&c, in, m, 1, true);
	}
	if (rv == 0 && c.n_errors > 0) {
		rv = c.first.code;
		if (c.n_errors > 1)
			return fail_collected(&c, m, e);
		scratch = c.first;
	}
	if (rv != 0)
		goto err_after_message;
	*out = m;
	return 0;

err_after_message:
	protobuf_c_message_free_unpacked(m, &allocator);
err:
	return err_set(e, rv, "%s", scratch.msg);
}
