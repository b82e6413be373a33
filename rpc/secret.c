/* Secrets for the REST API's authentication: password hashes (PBKDF2),
 * HMAC and SHA-256, constant-time comparison, random bytes and UUIDs, and
 * standard base64. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "rpc/internal.h"
#include "rpc/rpc.h"

#define SCHEME         "$pbkdf2-sha256$"
#define SCHEME_LEN     (sizeof SCHEME - 1)
#define SALT_LEN       16 /* bytes, in the hashes we make */
#define SALT_MAX       64 /* bytes, in the hashes we accept */
#define DERIVED_LEN    32
#define ITERATIONS_MIN 1000     /* for new hashes */
#define ITERATIONS_MAX 10000000 /* bounds the work a stored hash can ask */
/* Room to decode a hash field a little too long, to say how long it was. */
#define DERIVED_ROOM (DERIVED_LEN + 16)

static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------------------
 * Digests, comparison and random bytes. */

void rpc_hmac_sha256(const void *key, size_t key_len, const void *data,
                     size_t len, unsigned char out[32])
{
	/* OpenSSL's HMAC() reads a NULL key as "reuse the last one". */
	static const unsigned char none[1];
	const unsigned char *mac;
	unsigned int out_len = 0;

	CAIRN_ASSERT(key_len <= INT_MAX);
	mac = HMAC(EVP_sha256(), key != NULL ? key : none, (int)key_len,
	           data != NULL ? data : none, len, out, &out_len);
	CAIRN_ASSERT(mac != NULL && out_len == 32);
}

void rpc_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	static const unsigned char none[1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0, i;
	int ok;

	ok = EVP_Digest(data != NULL ? data : none, len, md, &md_len,
	                EVP_sha256(), NULL);
	CAIRN_ASSERT(ok == 1 && md_len == 32);
	for (i = 0; i < md_len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * md_len] = '\0';
}

bool rpc_const_equal(const void *a, const void *b, size_t len)
{
	return len == 0 || CRYPTO_memcmp(a, b, len) == 0;
}

int rpc_random_bytes(void *out, size_t len, struct err *e)
{
	unsigned char *p = out;
	size_t chunk;

	while (len > 0) {
		chunk = len < INT_MAX ? len : INT_MAX;
		if (RAND_bytes(p, (int)chunk) != 1)
			return err_set(e, -EIO,
			               "random bytes: the generator failed");
		p += chunk;
		len -= chunk;
	}
	return 0;
}

int rpc_uuid_v4(char out[37], struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char u[16];
	size_t i, n = 0;

	out[0] = '\0';
	if (rpc_random_bytes(u, sizeof u, NULL) != 0)
		return err_set(e, -EIO, "UUID: the random generator failed");
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < sizeof u; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[u[i] >> 4];
		out[n++] = hex[u[i] & 0xf];
	}
	out[n] = '\0';
	/* An API token's secret is such a UUID. */
	OPENSSL_cleanse(u, sizeof u);
	return 0;
}

/* ------------------------------------------------------------------------
 * Base64. */

size_t rpc__base64_encode_with(const char alphabet[64], const void *in,
                               size_t len, char *out)
{
	const unsigned char *p = in;
	size_t i, n = 0;
	unsigned long v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 |
		    p[i + 2];
		out[n++] = alphabet[v >> 18 & 63];
		out[n++] = alphabet[v >> 12 & 63];
		out[n++] = alphabet[v >> 6 & 63];
		out[n++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned long)p[i] << 16;
		out[n++] = alphabet[v >> 18 & 63];
		out[n++] = alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;
		out[n++] = alphabet[v >> 18 & 63];
		out[n++] = alphabet[v >> 12 & 63];
		out[n++] = alphabet[v >> 6 & 63];
	}
	out[n] = '\0';
	return n;
}

size_t rpc_base64_encode(const void *in, size_t len, char *out)
{
	return rpc__base64_encode_with(b64, in, len, out);
}

static int b64_value(const char alphabet[64], char c)
{
	const char *p = c != '\0' ? memchr(alphabet, c, 64) : NULL;

	return p != NULL ? (int)(p - alphabet) : -1;
}

int rpc__base64_decode_with(const char alphabet[64], const char *in, size_t len,
                            unsigned char *out, size_t out_max, size_t *out_len)
{
	unsigned long v = 0;
	size_t i, n = 0, need;
	int bits = 0, d;

	*out_len = 0;
	if (len % 4 == 1)
		return -EINVAL;
	need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (need > out_max)
		return -E2BIG;
	for (i = 0; i < len; i++) {
		d = b64_value(alphabet, in[i]);
		if (d < 0)
			goto err_after_output;
		v = (v << 6 | (unsigned long)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits & 0xff);
		}
	}
	/* Bits after the last byte must be zero, so that each byte string
	 * has one text (RFC 4648 §3.5); no encoder writes anything else. */
	if ((v & ((1UL << bits) - 1)) != 0)
		goto err_after_output;
	*out_len = n;
	return 0;

err_after_output:
	OPENSSL_cleanse(out, n);
	return -EINVAL;
}

int rpc_base64_decode(const char *in, size_t len, unsigned char *out,
                      size_t out_max, size_t *out_len)
{
	*out_len = 0;
	/* Padding, when there is any, completes the last group of 4. */
	if (len > 0 && in[len - 1] == '=') {
		if (len % 4 != 0)
			return -EINVAL;
		len -= len >= 2 && in[len - 2] == '=' ? 2 : 1;
	}
	return rpc__base64_decode_with(b64, in, len, out, out_max, out_len);
}

/* ------------------------------------------------------------------------
 * Password hashes. */

static int password_check(const char *password, struct err *e)
{
	if (password == NULL)
		return err_set(e, -EINVAL, "password: none given");
	if (strnlen(password, RPC_PASSWORD_MAX + 1) > RPC_PASSWORD_MAX)
		return err_set(e, -E2BIG, "password: longer than %d bytes",
		               RPC_PASSWORD_MAX);
	return 0;
}

static int derive(const char *password, const unsigned char *salt,
                  size_t salt_len, unsigned iterations,
                  unsigned char out[DERIVED_LEN])
{
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	                      (int)salt_len, (int)iterations, EVP_sha256(),
	                      DERIVED_LEN, out) != 1) {
		OPENSSL_cleanse(out, DERIVED_LEN);
		return -EIO;
	}
	return 0;
}

int rpc_password_hash(const char *password, unsigned iterations,
                      char out[RPC_PASSWORD_HASH_MAX], struct err *e)
{
	unsigned char salt[SALT_LEN], derived[DERIVED_LEN];
	char salt_text[(SALT_LEN + 2) / 3 * 4 + 1];
	char derived_text[(DERIVED_LEN + 2) / 3 * 4 + 1];
	int rv, n;

	out[0] = '\0';
	rv = password_check(password, e);
	if (rv != 0)
		return rv;
	if (iterations == 0)
		iterations = RPC_PBKDF2_ITERATIONS;
	if (iterations < ITERATIONS_MIN || iterations > ITERATIONS_MAX)
		return err_set(e, -EINVAL,
		               "password hash: %u iterations, not within %d to "
		               "%d",
		               iterations, ITERATIONS_MIN, ITERATIONS_MAX);
	if (rpc_random_bytes(salt, sizeof salt, NULL) != 0)
		return err_set(e, -EIO,
		               "password hash: the random generator failed");
	rv = derive(password, salt, sizeof salt, iterations, derived);
	if (rv != 0)
		return err_set(e, rv, "password hash: PBKDF2 failed");
	rpc_base64_encode(salt, sizeof salt, salt_text);
	rpc_base64_encode(derived, sizeof derived, derived_text);
	n = snprintf(out, RPC_PASSWORD_HASH_MAX, SCHEME "%u$%s$%s", iterations,
	             salt_text, derived_text);
	CAIRN_ASSERT(n > 0 && n < RPC_PASSWORD_HASH_MAX);
	OPENSSL_cleanse(derived, sizeof derived);
	OPENSSL_cleanse(derived_text, sizeof derived_text);
	return 0;
}

/* The iteration count: decimal digits without a leading zero, within
 * 1..ITERATIONS_MAX. Lower counts than new hashes get are accepted so that
 * published PBKDF2 test vectors can be checked. */
static int parse_iterations(const char *text, size_t len, unsigned *out,
                            struct err *e)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 8 || text[0] == '0')
		goto err_range;
	for (i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			goto err_range;
		v = v * 10 + (unsigned long)(text[i] - '0');
	}
	if (v > ITERATIONS_MAX)
		goto err_range;
	*out = (unsigned)v;
	return 0;

err_range:
	return err_set(e, -EINVAL,
	               "iteration count '%.*s' is not a number from 1 to %d",
	               (int)(len < 16 ? len : 16), text, ITERATIONS_MAX);
}

/* Splits "$pbkdf2-sha256$<iterations>$<salt>$<hash>" and decodes it. */
static int parse_stored(const char *stored, unsigned *iterations,
                        unsigned char *salt, size_t *salt_len,
                        unsigned char derived[DERIVED_ROOM], struct err *e)
{
	const char *field, *end;
	size_t len;
	int rv;

	if (stored == NULL)
		return err_set(e, -EINVAL, "none given");
	if (strnlen(stored, RPC_PASSWORD_HASH_MAX) >= RPC_PASSWORD_HASH_MAX)
		return err_set(e, -EINVAL, "longer than %d characters",
		               RPC_PASSWORD_HASH_MAX - 1);
	if (strncmp(stored, SCHEME, SCHEME_LEN) != 0)
		return err_set(e, -EINVAL, "not a %s hash", SCHEME);

	field = stored + SCHEME_LEN;
	end = strchr(field, '$');
	if (end == NULL)
		return err_set(e, -EINVAL,
		               "no salt and hash after the "
		               "iteration count");
	rv = parse_iterations(field, (size_t)(end - field), iterations, e);
	if (rv != 0)
		return rv;

	field = end + 1;
	end = strchr(field, '$');
	if (end == NULL)
		return err_set(e, -EINVAL, "no hash after the salt");
	if (end == field)
		return err_set(e, -EINVAL, "the salt is empty");
	rv = rpc_base64_decode(field, (size_t)(end - field), salt, SALT_MAX,
	                       salt_len);
	if (rv == -E2BIG)
		return err_set(e, -EINVAL, "the salt is longer than %d bytes",
		               SALT_MAX);
	if (rv != 0)
		return err_set(e, -EINVAL, "the salt is not base64");

	field = end + 1;
	len = strlen(field);
	if (memchr(field, '$', len) != NULL)
		return err_set(e, -EINVAL, "more than 4 '$'-separated fields");
	rv = rpc_base64_decode(field, len, derived, DERIVED_ROOM, &len);
	if (rv == -E2BIG)
		return err_set(e, -EINVAL, "the hash is longer than %d bytes",
		               DERIVED_LEN);
	if (rv != 0)
		return err_set(e, -EINVAL, "the hash is not base64");
	if (len != DERIVED_LEN)
		return err_set(e, -EINVAL, "the hash holds %zu bytes, not %d",
		               len, DERIVED_LEN);
	return 0;
}

int rpc_password_verify(const char *password, const char *stored, struct err *e)
{
	unsigned char salt[SALT_MAX], expected[DERIVED_ROOM];
	unsigned char derived[DERIVED_LEN];
	size_t salt_len = 0;
	unsigned iterations = 0;
	int rv;

	rv = password_check(password, e);
	if (rv != 0)
		return rv;
	rv = parse_stored(stored, &iterations, salt, &salt_len, expected, e);
	if (rv != 0) {
		if (e != NULL)
			err_wrap(e, "stored password hash");
		goto err_after_parse;
	}
	rv = derive(password, salt, salt_len, iterations, derived);
	if (rv != 0) {
		err_set(e, rv, "password hash: PBKDF2 failed");
		goto err_after_parse;
	}
	if (CRYPTO_memcmp(derived, expected, DERIVED_LEN) != 0)
		rv = err_set(e, -EKEYREJECTED, "password: does not match");
	OPENSSL_cleanse(derived, sizeof derived);
err_after_parse:
	OPENSSL_cleanse(expected, sizeof expected);
	return rv;
}

/* ------------------------------------------------------------------------
 * File checksums (uploads and downloads: Proxmox's checksum-algorithm). */

int rpc_file_digest_hex(const char *path, const char *algorithm, char *out,
                        size_t size, struct err *e)
{
	unsigned char buf[65536];
	struct rpc_digest *d = NULL;
	size_t n;
	FILE *f;
	int rv;

	rv = rpc_digest_new(algorithm, &d, e);
	if (rv != 0)
		return rv;
	f = fopen(path, "rbe");
	if (f == NULL) {
		rpc_digest_free(d);
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	}
	while (rv == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
		rv = rpc_digest_update(d, buf, n, e);
	if (rv == 0 && ferror(f))
		rv = err_set(e, -EIO, "%s: read error", path);
	if (rv == 0)
		rv = rpc_digest_final_hex(d, out, size, e);
	rpc_digest_free(d);
	fclose(f);
	return rv;
}

/* Incremental checksums (cairn.Storage/Upload), with the algorithm names
 * of rpc_file_digest_hex. */
struct rpc_digest {
	EVP_MD_CTX *ctx;
	size_t md_len;
	bool is_final;
};

int rpc_digest_new(const char *algorithm, struct rpc_digest **out,
                   struct err *e)
{
	static const char *const names[] = {"md5",    "sha1",   "sha224",
	                                    "sha256", "sha384", "sha512"};
	const EVP_MD *type = NULL;
	struct rpc_digest *d;
	size_t i;

	*out = NULL;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (algorithm != NULL && strcmp(algorithm, names[i]) == 0)
			type = EVP_get_digestbyname(names[i]);
	}
	if (type == NULL)
		return err_set(e, -EINVAL,
		               "checksum-algorithm: one of md5, sha1, sha224, "
		               "sha256, sha384, sha512");
	d = mem_calloc(1, sizeof *d);
	if (d == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	d->ctx = EVP_MD_CTX_new();
	if (d->ctx == NULL || EVP_DigestInit_ex(d->ctx, type, NULL) != 1) {
		rpc_digest_free(d);
		return err_set(e, -ENOMEM, "out of memory");
	}
	d->md_len = (size_t)EVP_MD_size(type);
	*out = d;
	return 0;
}

size_t rpc_digest_hex_len(const struct rpc_digest *d)
{
	return 2 * d->md_len;
}

int rpc_digest_update(struct rpc_digest *d, const void *data, size_t len,
                      struct err *e)
{
	if (d->is_final || EVP_DigestUpdate(d->ctx, data, len) != 1)
		return err_set(e, -EIO, "digest failed");
	return 0;
}

int rpc_digest_final_hex(struct rpc_digest *d, char *out, size_t size,
                         struct err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;

	if (d->is_final || size < 2 * d->md_len + 1 ||
	    EVP_DigestFinal_ex(d->ctx, md, &mdlen) != 1)
		return err_set(e, -EIO, "digest failed");
	d->is_final = true;
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * mdlen] = '\0';
	return 0;
}

void rpc_digest_free(struct rpc_digest *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->ctx);
	mem_free(d);
}
