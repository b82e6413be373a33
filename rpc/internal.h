/* rpc/internal: the frame codec and the session's frame-level entry point,
 * shared between rpc/'s files (the TLS layer builds on them) and their unit
 * tests; nothing outside rpc/ and tests/unit/rpc/ includes this. */
#ifndef CAIRN_RPC_INTERNAL_H
#define CAIRN_RPC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------------
 * Frames (rpc/frame.c).
 *
 * On the wire: a 4-byte big-endian length N, then N bytes of a packed
 * cairn.Frame. max_frame bounds N (the prefix is not counted). A frame is
 * valid when its fields fit its kind:
 *   every kind  call_id present and not 0, kind present and known
 *   REQUEST     method (rpc__method_check); payload, deadline_ms (> 0)
 *   RESPONSE    status (<= RPC_STATUS_MAX); message, payload
 *   DATA        payload (absent: an empty message)
 *   HALF_CLOSE  nothing else
 *   CANCEL      nothing else
 *   WINDOW      window (> 0)
 * and no field of another kind is present. Unknown fields are tolerated
 * (a newer peer may add some); they count against max_frame.
 *
 * Errors: -EPROTO for a frame that is not valid protobuf, has length 0 or
 * does not fit its kind; -EMSGSIZE for a length over max_frame (found from
 * the prefix alone, before anything is allocated); -EINVAL when asked to
 * encode an invalid frame; -E2BIG when the output buffer's cap would be
 * passed; -ENOMEM. Messages name the call and the field. */

#define RPC_FRAME_PREFIX 4

/* Checks "pkg.Service/Method": 1 to RPC_METHOD_MAX bytes of [A-Za-z0-9_.]
 * and exactly one '/', with something on both sides. -EINVAL. */
int rpc__method_check(const char *method, struct err *e);

/* "REQUEST", "WINDOW", ...; "?" for unknown kinds. */
const char *rpc__frame_kind_name(int kind);

/* Checks that f's fields fit its kind (see above). -EPROTO. */
int rpc__frame_check(const Cairn__Frame *f, struct err *e);

/* Checks f and returns in *wire_size the bytes it takes on the wire,
 * prefix included. -EINVAL (invalid frame), -EMSGSIZE (over max_frame). */
int rpc__frame_measure(const Cairn__Frame *f, size_t max_frame,
                       size_t *wire_size, struct err *e);
/* Writes a measured frame: exactly wire_size bytes into dst. */
void rpc__frame_write(const Cairn__Frame *f, size_t wire_size, uint8_t *dst);
/* Measures f and appends it to out; out is unchanged on failure. */
int rpc__frame_encode(const Cairn__Frame *f, size_t max_frame, struct buf *out,
                      struct err *e);

/* Frees a frame from the decoder (NULL is fine). */
void rpc__frame_free(Cairn__Frame *f);

/* An incremental decoder: bytes go in in chunks of any size, as they come
 * from the connection, and whole frames come out. A partial frame's body
 * is gathered in `body`, which grows with the bytes that actually arrive
 * (never past the announced length); a frame that arrives whole in one
 * chunk is decoded in place. After an error the decoder stays failed: a
 * byte stream cannot be resynchronised. */
struct rpc__frame_decoder {
	size_t max_frame;
	uint8_t prefix[RPC_FRAME_PREFIX];
	size_t prefix_len; /* bytes of the prefix seen */
	size_t body_len;   /* N, once the prefix is complete */
	struct buf body;   /* a partial body; owned */
	int error;         /* 0, or the sticky error */
};

void rpc__frame_decoder_init(struct rpc__frame_decoder *d, size_t max_frame);
void rpc__frame_decoder_close(struct rpc__frame_decoder *d);
/* Consumes bytes from data[0..len) up to the end of the first frame they
 * complete, and reports in *consumed how many. *out is then that frame
 * (the caller frees it with rpc__frame_free), or NULL when every byte was
 * consumed without completing one. Call again with the rest. Returns 0 or
 * a negative errno (the decoder has failed; *out is NULL). */
int rpc__frame_decoder_feed(struct rpc__frame_decoder *d, const void *data,
                            size_t len, size_t *consumed, Cairn__Frame **out,
                            struct err *e);
/* True when part of a frame has been fed: the connection ending now would
 * cut a frame short. */
bool rpc__frame_decoder_has_partial(const struct rpc__frame_decoder *d);

/* ------------------------------------------------------------------------
 * Sessions (rpc/session.c). */

/* Handles one decoded frame as rpc_session_feed does for each frame it
 * decodes, and takes ownership of f whatever the outcome. */
int rpc__session_recv(struct rpc_session *s, Cairn__Frame *f, struct err *e);

/* rpc/pki.c: a certificate's fingerprint, "sha256:" + 64 hex digits,
 * into out (RPC_FINGERPRINT_MAX bytes). Shared with rpc/tls.c. */
typedef struct x509_st X509;
int rpc__fingerprint_x509(X509 *cert, char *out, struct err *e);

/* Base64 with a given alphabet, unpadded (rpc/secret.c): the standard
 * one for rpc_base64_*, base64url for join tokens. Decoding is strict: the
 * 64 characters only, a length whole bytes can give, zero trailing bits;
 * -EINVAL, or -E2BIG when it does not fit out_max. */
size_t rpc__base64_encode_with(const char alphabet[64], const void *in,
                               size_t len, char *out);
int rpc__base64_decode_with(const char alphabet[64], const char *in, size_t len,
                            unsigned char *out, size_t out_max,
                            size_t *out_len);

#endif /* CAIRN_RPC_INTERNAL_H */
