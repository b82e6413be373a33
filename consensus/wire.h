/* consensus/wire: a pure codec (no I/O) for the dqlite 1.11.1 client wire
 * protocol — requests are encoded into a struct buf, responses are decoded in
 * place from the bytes the caller read.
 *
 * Framing. After connecting, the client sends one 8-byte word, the protocol
 * version (wire_handshake_encode). Then each message, in both directions, is
 * an 8-byte header (u32 words, u8 type, u8 schema, u16 unused) followed by
 * words * 8 bytes of body. Everything is little endian and every field is
 * aligned to 8 bytes: text is NUL-terminated and zero-padded to 8, a blob is
 * a u64 length followed by the bytes padded to 8. One request is in flight
 * per connection; the server answers each with exactly one message, except
 * that a ROWS batch ending in PART is followed by further ROWS messages that
 * the server sends without being asked (see wire_rows_begin).
 *
 * Requests this module can build are the ones cairn needs. HEARTBEAT (2),
 * INTERRUPT (10) and unknown types are deliberately absent: 1.11.1 never
 * answers the first and the last, so the connection hangs, and INTERRUPT is
 * only read once a row stream has already finished, so it cancels nothing.
 *
 * Errors. Functions return 0 (or the documented positive value) or a
 * negative errno, with a message in *e (e may be NULL):
 *   -EPROTO     a body that is malformed, truncated or of an unexpected type
 *   -EMSGSIZE   a header announcing a body over the caller's limit
 *   -EREMOTEIO  the server answered FAILURE where another response was
 *               expected; the message carries its code and text, and
 *               wire_failure_decode gives the code to a caller who acts on it
 *   -EINVAL     an argument the protocol cannot carry (bad parameter type,
 *               NUL inside text, ...)
 *   -E2BIG      more than WIRE_PARAMS_MAX parameters, or the output buffer's
 *               hard cap would be exceeded
 *   -ENOMEM     the output buffer could not grow
 * A request encoder that fails leaves the output buffer exactly as it was.
 *
 * Borrowing. Decoders never allocate and never copy: every pointer they hand
 * out (text, blob, address, file data) points into the body the caller
 * passed and is valid as long as that body is. Every read is bounds-checked
 * against the body length, so a hostile or truncated body yields -EPROTO,
 * never a read past its end. Indexes in error messages (row, column, node,
 * file) count from 0. */
#ifndef CAIRN_CONSENSUS_WIRE_H
#define CAIRN_CONSENSUS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/lib.h"

#define WIRE_PROTOCOL_VERSION 1
#define WIRE_HEADER_SIZE      8
/* A default for the hard limit on a received body: a ROWS batch is about one
 * memory page and a DUMP carries a whole database, so this bounds the latter
 * while never getting in the way of the former. */
#define WIRE_BODY_MAX_DEFAULT ((size_t)64 << 20)
/* The parameter count travels in one byte. */
#define WIRE_PARAMS_MAX 255
/* SQLite's own hard ceiling on the number of columns (SQLITE_MAX_COLUMN). */
#define WIRE_COLUMNS_MAX 32767

/* Markers ending a ROWS batch in place of the next row's header. */
#define WIRE_ROWS_DONE_MARKER UINT64_C(0xffffffffffffffff)
#define WIRE_ROWS_PART_MARKER UINT64_C(0xeeeeeeeeeeeeeeee)

enum wire_request_type {
	WIRE_REQUEST_LEADER = 0,
	WIRE_REQUEST_CLIENT = 1,
	WIRE_REQUEST_OPEN = 3,
	WIRE_REQUEST_PREPARE = 4,
	WIRE_REQUEST_EXEC = 5,
	WIRE_REQUEST_QUERY = 6,
	WIRE_REQUEST_FINALIZE = 7,
	WIRE_REQUEST_EXEC_SQL = 8,
	WIRE_REQUEST_QUERY_SQL = 9,
	WIRE_REQUEST_ADD = 12,
	WIRE_REQUEST_ASSIGN = 13,
	WIRE_REQUEST_REMOVE = 14,
	WIRE_REQUEST_DUMP = 15,
	WIRE_REQUEST_CLUSTER = 16,
	WIRE_REQUEST_TRANSFER = 17,
};

/* Response codes as 1.11.1's src/protocol.h numbers them (SERVER and the
 * pre-1.0 SERVER_LEGACY share 1; with protocol version 1 LEADER is always
 * answered with the id + address form). */
enum wire_response_type {
	WIRE_RESPONSE_FAILURE = 0,
	WIRE_RESPONSE_SERVER = 1,
	WIRE_RESPONSE_WELCOME = 2,
	WIRE_RESPONSE_SERVERS = 3,
	WIRE_RESPONSE_DB = 4,
	WIRE_RESPONSE_STMT = 5,
	WIRE_RESPONSE_RESULT = 6,
	WIRE_RESPONSE_ROWS = 7,
	WIRE_RESPONSE_EMPTY = 8,
	WIRE_RESPONSE_FILES = 9,
	WIRE_RESPONSE_METADATA = 10, /* DESCRIBE; not used by cairn */
};

/* "ROWS", "FAILURE", ...; "unknown" for codes outside the table. */
const char *wire_response_name(unsigned type);

/* Value type codes, shared by parameters and row values. UNIXTIME and
 * ISO8601 only come back in rows (columns declared DATETIME, DATE or
 * TIMESTAMP); the server cannot bind them as parameters. */
enum wire_type {
	WIRE_INTEGER = 1,
	WIRE_FLOAT = 2,
	WIRE_TEXT = 3,
	WIRE_BLOB = 4,
	WIRE_NULL = 5,
	WIRE_UNIXTIME = 9,
	WIRE_ISO8601 = 10,
	WIRE_BOOLEAN = 11,
};

enum wire_role {
	WIRE_ROLE_VOTER = 0,
	WIRE_ROLE_STANDBY = 1,
	WIRE_ROLE_SPARE = 2,
};

/* One parameter or column value. As a parameter, text is text.len bytes
 * (no NUL among them; the encoder adds the terminator). Decoded text and
 * ISO8601 values point into the body, NUL-terminated there, with len =
 * strlen. 1.11.1 types a value by its column's declared type where that is
 * BOOLEAN, DATETIME, DATE or TIMESTAMP, so a NULL there arrives as BOOLEAN
 * false or as ISO8601 "", not as NULL. */
struct wire_value {
	enum wire_type type;
	union {
		int64_t integer; /* INTEGER; UNIXTIME (seconds) */
		double real;     /* FLOAT */
		bool boolean;    /* BOOLEAN */
		struct {
			const char *ptr;
			size_t len;
		} text; /* TEXT; ISO8601 */
		struct {
			const void *ptr;
			size_t len;
		} blob; /* BLOB */
	};
};

static inline struct wire_value wire_value_integer(int64_t v)
{
	return (struct wire_value){.type = WIRE_INTEGER, .integer = v};
}
static inline struct wire_value wire_value_float(double v)
{
	return (struct wire_value){.type = WIRE_FLOAT, .real = v};
}
/* s is borrowed until the request is encoded. */
static inline struct wire_value wire_value_text(const char *s)
{
	return (struct wire_value){.type = WIRE_TEXT, .text = {s, strlen(s)}};
}
static inline struct wire_value wire_value_blob(const void *p, size_t len)
{
	return (struct wire_value){.type = WIRE_BLOB, .blob = {p, len}};
}
static inline struct wire_value wire_value_null(void)
{
	return (struct wire_value){.type = WIRE_NULL};
}
static inline struct wire_value wire_value_boolean(bool v)
{
	return (struct wire_value){.type = WIRE_BOOLEAN, .boolean = v};
}

/* ------------------------------------------------------------------------
 * Framing. */

struct wire_header {
	uint32_t words; /* body length / 8 */
	uint8_t type;   /* enum wire_request_type or wire_response_type */
	uint8_t schema; /* 0 for everything cairn sends or expects */
	uint16_t unused;
};

/* Appends the 8-byte protocol version word that opens a connection. */
int wire_handshake_encode(struct buf *out, struct err *e);

void wire_header_encode(const struct wire_header *h,
                        uint8_t out[WIRE_HEADER_SIZE]);
/* Decodes the 8 bytes at `bytes`. Every 1.11.1 message has a body, so
 * words == 0 is -EPROTO; a body over body_max bytes is -EMSGSIZE (pass
 * WIRE_BODY_MAX_DEFAULT unless there is a reason not to). */
int wire_header_decode(const void *bytes, size_t body_max,
                       struct wire_header *h, struct err *e);
static inline size_t wire_header_body_len(const struct wire_header *h)
{
	return (size_t)h->words * 8;
}

/* ------------------------------------------------------------------------
 * Requests. Each appends one whole message (header + body) to out; text
 * arguments are NUL-terminated C strings. db_id comes from a DB response,
 * stmt_id from a STMT response. */

int wire_leader_encode(struct buf *out, struct err *e);
int wire_client_encode(struct buf *out, uint64_t client_id, struct err *e);
/* 1.11.1 reads flags and vfs but uses neither; cairn sends 0 and "". */
int wire_open_encode(struct buf *out, const char *name, uint64_t flags,
                     const char *vfs, struct err *e);
int wire_prepare_encode(struct buf *out, uint32_t db_id, const char *sql,
                        struct err *e);
/* params may be NULL when nparams is 0; no tuple is sent then, which the
 * server reads as "nothing to bind". */
int wire_exec_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                     const struct wire_value *params, unsigned nparams,
                     struct err *e);
int wire_query_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                      const struct wire_value *params, unsigned nparams,
                      struct err *e);
int wire_finalize_encode(struct buf *out, uint32_t db_id, uint32_t stmt_id,
                         struct err *e);
/* With several statements in sql, 1.11.1 binds the parameters to the first
 * one only. */
int wire_exec_sql_encode(struct buf *out, uint32_t db_id, const char *sql,
                         const struct wire_value *params, unsigned nparams,
                         struct err *e);
int wire_query_sql_encode(struct buf *out, uint32_t db_id, const char *sql,
                          const struct wire_value *params, unsigned nparams,
                          struct err *e);
int wire_add_encode(struct buf *out, uint64_t node_id, const char *address,
                    struct err *e);
int wire_assign_encode(struct buf *out, uint64_t node_id, enum wire_role role,
                       struct err *e);
int wire_remove_encode(struct buf *out, uint64_t node_id, struct err *e);
/* name is the database name given to OPEN; the answer is FILES with the
 * database and its "-wal". */
int wire_dump_encode(struct buf *out, const char *name, struct err *e);
/* Always asks for format 1 (id, address and role per node), the only
 * layout wire_servers_next understands. */
int wire_cluster_encode(struct buf *out, struct err *e);
/* node_id 0 lets the leader pick the target. */
int wire_transfer_encode(struct buf *out, uint64_t node_id, struct err *e);

/* ------------------------------------------------------------------------
 * Responses. Each decoder takes the type from the header and the body; a
 * type other than the expected one is -EPROTO, or -EREMOTEIO for FAILURE
 * (see the top of this file). Bodies must be exactly as long as their
 * layout: trailing bytes are -EPROTO. */

struct wire_failure {
	uint64_t code;       /* SQLite extended result code, e.g. 10250 */
	const char *message; /* borrowed from the body */
};

/* 1.11.1 builds a FAILURE into the same buffer as the answer it gave up
 * on, so a query that fails after some rows were encoded (or a DUMP that
 * fails) sends a body that starts with those rows and ends with the real
 * code and message. The decoder reads the failure from the tail in that
 * case instead of reporting a column count as the error code. */
int wire_failure_decode(unsigned type, const void *body, size_t len,
                        struct wire_failure *out, struct err *e);

/* Answer to LEADER: id 0 and address "" when this node knows no leader
 * (or is not a voter: only voters are asked who leads). */
struct wire_server {
	uint64_t id;
	const char *address;
};
int wire_server_decode(unsigned type, const void *body, size_t len,
                       struct wire_server *out, struct err *e);
/* Answer to CLIENT. */
int wire_welcome_decode(unsigned type, const void *body, size_t len,
                        uint64_t *heartbeat_timeout, struct err *e);
/* Answer to OPEN. */
int wire_db_decode(unsigned type, const void *body, size_t len, uint32_t *db_id,
                   struct err *e);
/* Answer to PREPARE. */
struct wire_stmt {
	uint32_t db_id;
	uint32_t id;
	uint64_t params; /* number of parameters the statement takes */
};
int wire_stmt_decode(unsigned type, const void *body, size_t len,
                     struct wire_stmt *out, struct err *e);
/* Answer to EXEC and EXEC_SQL. */
struct wire_result {
	uint64_t last_insert_id;
	uint64_t rows_affected;
};
int wire_result_decode(unsigned type, const void *body, size_t len,
                       struct wire_result *out, struct err *e);
/* Answer to FINALIZE, ADD, ASSIGN, REMOVE, TRANSFER. */
int wire_empty_decode(unsigned type, const void *body, size_t len,
                      struct err *e);

/* SERVERS, the answer to CLUSTER (format 1): u64 count, then per node
 * u64 id, text address, u64 role. Walk it with begin/next: */
struct wire_node {
	uint64_t id;
	const char *address;
	uint64_t role; /* enum wire_role, kept raw: an unknown value is not
	                  a framing error */
};
struct wire_servers {
	/* private */
	const uint8_t *body;
	size_t len;
	size_t pos;
	uint64_t count;
	uint64_t index;
};
int wire_servers_begin(unsigned type, const void *body, size_t len,
                       struct wire_servers *it, struct err *e);
uint64_t wire_servers_count(const struct wire_servers *it);
/* 1 and *node filled, 0 after the last node (trailing bytes are an error
 * then), negative on a malformed entry. */
int wire_servers_next(struct wire_servers *it, struct wire_node *node,
                      struct err *e);

/* FILES, the answer to DUMP: u64 count, then per file text name, u64 size
 * and size bytes (a multiple of 8, so never padded). */
struct wire_file {
	const char *name;
	const void *data;
	uint64_t size;
};
struct wire_files {
	/* private */
	const uint8_t *body;
	size_t len;
	size_t pos;
	uint64_t count;
	uint64_t index;
};
int wire_files_begin(unsigned type, const void *body, size_t len,
                     struct wire_files *it, struct err *e);
uint64_t wire_files_count(const struct wire_files *it);
int wire_files_next(struct wire_files *it, struct wire_file *file,
                    struct err *e);

/* ROWS, the answer to QUERY and QUERY_SQL, one batch per message:
 *
 *   u64 column count (>= 1), column names (text each),
 *   rows: a header of 4-bit type codes, column 0 in the low nibble of byte
 *         0, padded with zeros to 8 bytes; then the values (INTEGER and
 *         UNIXTIME i64, FLOAT double, TEXT and ISO8601 text, BLOB u64
 *         length + bytes padded, NULL and BOOLEAN u64),
 *   a marker word: DONE when the result is complete, PART when the server
 *         will send another ROWS message by itself.
 *
 * A marker cannot be mistaken for a row: column 0's type code (1..11) sits
 * in the low nibble of a row header's first byte, 0xe or 0xf in a marker.
 *
 * Every batch, including those after PART, repeats the column count and
 * names. After PART the client must go on reading ROWS until DONE (or a
 * FAILURE) before it sends anything: 1.11.1 does not read the socket while
 * a result is being streamed, and there is no way to cancel one.
 *
 *	struct wire_rows rows;
 *	struct wire_value v[N];
 *	rc = wire_rows_begin(hdr.type, body, len, &rows, e);
 *	while (rc == 0 && (rc = wire_rows_next(&rows, v, N, e)) == 1)
 *		use(v);
 *	if (rc == 0 && wire_rows_end(&rows) == WIRE_ROWS_PART)
 *		read the next ROWS message and begin again;
 */
enum wire_rows_end {
	WIRE_ROWS_OPEN = 0, /* the marker has not been reached yet */
	WIRE_ROWS_DONE,
	WIRE_ROWS_PART,
};

struct wire_rows {
	/* private */
	const uint8_t *body;
	size_t len;
	size_t pos;       /* next row header or marker */
	size_t names_pos; /* first column name */
	unsigned ncols;
	uint64_t row; /* rows returned so far in this batch */
	enum wire_rows_end end;
};

/* Reads and checks the column count and names. */
int wire_rows_begin(unsigned type, const void *body, size_t len,
                    struct wire_rows *rows, struct err *e);
unsigned wire_rows_column_count(const struct wire_rows *rows);
/* Fills names[0 .. column count); n is the room in names (-EINVAL when
 * short). The names are borrowed from the body. */
int wire_rows_column_names(const struct wire_rows *rows, const char **names,
                           unsigned n, struct err *e);
/* Decodes the next row into values[0 .. column count), n being the room in
 * values (-EINVAL when short). Returns 1 with a row, 0 at the marker (and
 * again on every later call), negative on a malformed row; the marker must
 * be the last word of the body. */
int wire_rows_next(struct wire_rows *rows, struct wire_value *values,
                   unsigned n, struct err *e);
/* Which marker ended the batch: DONE or PART once wire_rows_next returned
 * 0, OPEN before. */
enum wire_rows_end wire_rows_end(const struct wire_rows *rows);

#endif /* CAIRN_CONSENSUS_WIRE_H */
