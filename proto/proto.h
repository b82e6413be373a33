/* proto: the protobuf messages shared by the CLI, the agents and the REST
 * API. The generated protobuf-c code lives in the build tree; other modules
 * reach it only through this header. */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include "proto/access.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"
#include "proto/storage.pb-c.h"
#include "proto/task.pb-c.h"
#include "proto/version.pb-c.h"

/* The Proxmox VE API level cairn follows (DESIGN.md §6). */
#define PROTO_PVE_API_LEVEL "9.0"

/* Fills a VersionResponse with static strings (nothing to free). */
void proto_version_response_fill(Cairn__VersionResponse *r);
/* The protobuf-c runtime's version, for `--version` output. */
const char *proto_library_version(void);

/* ------------------------------------------------------------------------
 * JSON <-> protobuf mapping (proto/json.c), driven by protobuf-c
 * descriptors, with the conventions of DESIGN.md §6 so that the generic
 * mapping yields Proxmox VE's JSON shapes. Owned by proto/; the REST layer
 * (node/) uses it for every route.
 *
 * Keys are the proto field names, unless a PROTO_JSON_RENAME override gives
 * another (protobuf-c keeps no json_name, and Proxmox names such as
 * `with-local-disks` cannot be proto identifiers).
 *
 * Message -> JSON:
 *   - unset optional fields are left out; repeated and map fields are always
 *     written, as [] and {} when empty (protobuf cannot tell empty from
 *     unset, and clients index list keys such as `allowed_nodes`);
 *   - the top-level message, when it has exactly one field, is unwrapped to
 *     that field's value (an array, a bare string, null when unset) unless a
 *     PROTO_JSON_NO_UNWRAP override keeps it an object. Nested messages are
 *     always objects;
 *   - bool -> 0/1; integers -> JSON numbers, 64-bit ones too, except a
 *     uint64 above INT64_MAX, which jansson cannot hold: a decimal string;
 *   - float/double -> numbers; NaN and infinities -> "NaN", "Infinity",
 *     "-Infinity";
 *   - enums -> the value's name without a prefix equal to the enum type's
 *     name in UPPER_SNAKE_CASE, lower-cased, '_' -> '-':
 *     GUEST_STATUS_IO_ERROR in enum GuestStatus -> "io-error", RUNNING ->
 *     "running". A number outside the enum is written as the number;
 *   - bytes -> base64 (RFC 4648, padded);
 *   - a repeated nested message named `<Field>Entry` (e.g. LabelsEntry for
 *     `labels`) with exactly `key = 1` and `value = 2` is a map -> a JSON
 *     object; integer keys as decimal text, bool keys "1"/"0";
 *   - strings that are not valid UTF-8 fail with -EINVAL.
 *
 * JSON -> message: the inverse, strict, with every error naming the field
 * path ("nodes[2].name: expected a string, got an integer"):
 *   - a one-field top-level message accepts either its bare value or the
 *     object {"field": value} (the form requests built from parameters
 *     take). An object is read as that wrapper when the field is not itself
 *     an object (message or map); for a message field when the object's only
 *     key is the field's name and the inner message has no key of that name;
 *     for a map field when the only key is the field's name and its value is
 *     an object;
 *   - a null member counts as absent; unknown keys, missing `required`
 *     fields, two members of one oneof, wrong JSON types, integers outside
 *     the field type's range, floats for integers, negatives for unsigned
 *     types, unknown enum names, strings with NUL or invalid UTF-8 and bad
 *     base64 all fail with -EINVAL;
 *   - bools accept true/false and 0/1; 64-bit integers (and AS_STRING
 *     fields) also accept a decimal string; floats accept integers;
 *   - strings_are_values (query strings and form bodies, where every value
 *     is text): scalars also accept their text form ("1"/"0" and
 *     true/false in any case for bools, decimal integers and numbers), and a
 *     repeated field accepts a single value as a one-element list;
 *   - limits: containers nested deeper than max_depth fail with -EINVAL; a
 *     repeated or map field with more than max_repeated elements, or a
 *     message whose allocations would exceed max_bytes in total (structs,
 *     arrays, strings and bytes), fails with -E2BIG;
 *   - all memory comes from proto_allocator() (mem_alloc), and the result
 *     is freed with protobuf_c_message_free_unpacked(m, NULL). On failure
 *     nothing is left allocated and *out is untouched. -ENOMEM on
 *     allocation failure.
 *
 * Collecting parameter errors (Proxmox's 400 body `"errors": {param:
 * why}`): pass a JSON object as `errors`. Decoding then goes on past a bad
 * top-level field and sets errors[param] for each one, with Proxmox's
 * wording for the two cases clients know ("property is missing and it is
 * not optional", "property is not defined in schema and the schema does not
 * allow additional properties"); a reason from deeper down starts with its
 * path ("nodes[2].name: expected a string, got an integer"). The return
 * value and e are those of the first error (e gains "(and N more)"). An
 * input that is not an object at all sets no entry. On -ENOMEM the object
 * may be incomplete. */

#include "lib/lib.h" /* struct err, json_t, JSON_DEFAULT_MAX_DEPTH */

enum proto_json_override_kind {
	/* The field's JSON key is `json_name` instead of its proto name. */
	PROTO_JSON_RENAME,
	/* An integer field (or each element of a repeated one) is written as a
	 * JSON string: `/cluster/nextid` answers "100". Input accepts either. */
	PROTO_JSON_AS_STRING,
	/* A bool field is written as true/false instead of 1/0. */
	PROTO_JSON_AS_TRUE_FALSE,
	/* A one-field message stays an object at the top level (`field` is
	 * NULL). */
	PROTO_JSON_NO_UNWRAP,
};

/* One entry of a caller's (usually static) table. Several entries may
 * name the same field (a rename and AS_STRING). A kind that does not fit
 * the field's type is ignored. */
struct proto_json_override {
	const char *message;   /* full name: "cairn.NextIdResponse" */
	const char *field;     /* proto field name; NULL for NO_UNWRAP */
	enum proto_json_override_kind kind;
	const char *json_name; /* PROTO_JSON_RENAME only */
};

#define PROTO_JSON_DEFAULT_MAX_BYTES    (4u << 20)
#define PROTO_JSON_DEFAULT_MAX_REPEATED 10000u

/* Read-only and shareable between threads and calls; NULL means all
 * defaults. A limit of 0 means its default (max_depth:
 * JSON_DEFAULT_MAX_DEPTH). On output only overrides and max_depth apply. */
struct proto_json_options {
	const struct proto_json_override *overrides;
	size_t n_overrides;
	bool strings_are_values; /* input from query strings / form bodies */
	int max_depth;           /* JSON nesting, the top level counts 1 */
	size_t max_bytes;        /* total allocation for one decoded message */
	size_t max_repeated;     /* elements of any one repeated or map field */
};

/* Writes m as a new JSON value into *out (the caller's reference). */
int proto_json_from_message(const ProtobufCMessage *m,
                            const struct proto_json_options *o, json_t **out,
                            struct err *e);
/* Reads `in` as a message of type d into *out (free with
 * protobuf_c_message_free_unpacked(*out, NULL)). errors: NULL, or an object
 * of the caller's that collects per-parameter reasons (see above). */
int proto_json_to_message(const ProtobufCMessageDescriptor *d,
                          const json_t *in,
                          const struct proto_json_options *o,
                          ProtobufCMessage **out, json_t *errors,
                          struct err *e);
/* protobuf-c allocator over mem_alloc/mem_free, so that unpacking is reached
 * by allocation-failure sweeps too. Its memory is malloc's: freeing with a
 * NULL allocator is equivalent. */
ProtobufCAllocator *proto_allocator(void);
/* ---------------------------------------- end of JSON <-> protobuf mapping */

#endif /* CAIRN_PROTO_H */
