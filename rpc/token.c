/* Single-use join tokens: their text form, strict parsing, expiry, and the
 * digest of the secret that the cluster keeps instead of the secret. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "rpc/internal.h"
#include "rpc/rpc.h"

#define PREFIX_LEN (sizeof RPC_TOKEN_PREFIX - 1)
/* Largest decoded JSON a token of RPC_TOKEN_TEXT_MAX can carry. */
#define JSON_MAX        ((RPC_TOKEN_TEXT_MAX - PREFIX_LEN) / 4 * 3 + 2)
#define SECRET_TEXT_LEN 43 /* base64url of 32 bytes, unpadded */
#define EXPIRES_MAX     INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define ID_BYTES        (RPC_TOKEN_ID_LEN / 2)
/* Surrounding white space from a paste is skipped, but not without end. */
#define PASTE_MAX (RPC_TOKEN_TEXT_MAX * 4)

static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes the unpadded base64url of in and a NUL; out holds at least
 * (len + 2) / 3 * 4 + 1 bytes. Returns the length written. */
static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
	return rpc__base64_encode_with(b64url, in, len, out);
}

/* Strict unpadded base64url: only the 64 characters, a length that can
 * come from whole bytes, and zero bits after the last byte, so that each
 * byte string has exactly one text. Decodes into out (out_size bytes). */
static int b64url_decode(const char *in, size_t len, unsigned char *out,
                         size_t out_size, size_t *out_len, const char *what,
                         struct err *e)
{
	size_t i;
	int rv;

	if (len % 4 == 1)
		return err_set(e, -EINVAL,
		               "%s: truncated (%zu base64url characters)", what,
		               len);
	rv = rpc__base64_decode_with(b64url, in, len, out, out_size, out_len);
	if (rv == -E2BIG)
		return err_set(e, -EINVAL, "%s: too long", what);
	if (rv == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (memchr(b64url, in[i], 64) == NULL || in[i] == '\0')
			return err_set(e, -EINVAL,
			               "%s: a character that is not base64url "
			               "at offset %zu",
			               what, i);
	}
	return err_set(e, -EINVAL, "%s: damaged (stray bits at the end)", what);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int rpc_token_address_check(const char *address, struct err *e)
{
	char host[RPC_TOKEN_ADDRESS_MAX + 1];
	unsigned char ip[16];
	const char *colon, *p;
	size_t len, host_len;
	long port = 0;

	if (address == NULL || address[0] == '\0')
		return err_set(e, -EINVAL, "empty address");
	len = strnlen(address, RPC_TOKEN_ADDRESS_MAX + 1);
	if (len > RPC_TOKEN_ADDRESS_MAX)
		return err_set(e, -EINVAL,
		               "address is longer than %d characters",
		               RPC_TOKEN_ADDRESS_MAX);
	colon = strrchr(address, ':');
	if (address[0] == '[' && colon != NULL && colon[-1] != ']')
		colon = NULL; /* the last ':' is inside the brackets */
	if (colon == NULL || colon[1] == '\0')
		return err_set(e, -EINVAL, "address '%s' has no port", address);
	for (p = colon + 1; *p != '\0'; p++) {
		if (!is_digit(*p) || p - colon > 5)
			return err_set(e, -EINVAL,
			               "address '%s': the port is not a number "
			               "from 1 to 65535",
			               address);
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535 || colon[1] == '0')
		return err_set(e, -EINVAL,
		               "address '%s': the port is not a number from 1 "
		               "to 65535",
		               address);
	host_len = (size_t)(colon - address);
	if (address[0] == '[') {
		if (host_len < 3 || address[host_len - 1] != ']')
			goto err_host;
		memcpy(host, address + 1, host_len - 2);
		host[host_len - 2] = '\0';
		if (inet_pton(AF_INET6, host, ip) != 1)
			goto err_host;
		return 0;
	}
	memcpy(host, address, host_len);
	host[host_len] = '\0';
	if (inet_pton(AF_INET, host, ip) != 1)
		goto err_host;
	return 0;

err_host:
	return err_set(e, -EINVAL,
	               "address '%s' is not IPv4:port or [IPv6]:port", address);
}

int rpc_token_secret_digest(const unsigned char secret[RPC_TOKEN_SECRET_LEN],
                            char out[RPC_TOKEN_DIGEST_LEN + 1], struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	out[0] = '\0';
	if (EVP_Digest(secret, RPC_TOKEN_SECRET_LEN, md, &len, EVP_sha256(),
	               NULL) != 1 ||
	    len * 2 != RPC_TOKEN_DIGEST_LEN)
		return err_set(e, -EIO, "join token: SHA-256 failed");
	for (i = 0; i < len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * len] = '\0';
	return 0;
}

bool rpc_token_secret_matches(const char *digest_hex,
                              const unsigned char secret[RPC_TOKEN_SECRET_LEN])
{
	char actual[RPC_TOKEN_DIGEST_LEN + 1];

	if (digest_hex == NULL ||
	    strnlen(digest_hex, RPC_TOKEN_DIGEST_LEN + 1) !=
	            RPC_TOKEN_DIGEST_LEN)
		return false;
	if (rpc_token_secret_digest(secret, actual, NULL) != 0)
		return false;
	return CRYPTO_memcmp(actual, digest_hex, RPC_TOKEN_DIGEST_LEN) == 0;
}

void rpc_token_clear(struct rpc_token *tok)
{
	OPENSSL_cleanse(tok, sizeof *tok);
}

int rpc_token_check_expiry(const struct rpc_token *tok, int64_t now,
                           struct err *e)
{
	char when[32] = "?";
	time_t t = (time_t)tok->expires_at;
	struct tm tm;

	if (now < tok->expires_at)
		return 0;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return err_set(e, -EKEYEXPIRED, "join token: expired at %s", when);
}

/* ------------------------------------------------------------------------
 * Text form. */

/* Scrubs a string that jansson owns before it is freed: it may be the
 * secret. jansson allocated it writable; only the API hands it out const. */
static void json_string_wipe(json_t *s)
{
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s),
		                json_string_length(s));
}

static int token_encode(const struct rpc_token *tok, char *text,
                        size_t text_size, struct err *e)
{
	char secret[SECRET_TEXT_LEN + 1];
	json_t *root, *addresses;
	char *json = NULL;
	size_t json_len, need;
	unsigned i;
	int rv = 0;

	b64url_encode(tok->secret, sizeof tok->secret, secret);
	root = json_object();
	addresses = json_array();
	if (root == NULL || addresses == NULL)
		goto err_nomem;
	for (i = 0; i < tok->n_addresses; i++) {
		if (json_array_append_new(addresses,
		                          json_string(tok->addresses[i])) != 0)
			goto err_nomem;
	}
	if (json_object_set_new(root, "id", json_string(tok->id)) != 0 ||
	    json_object_set_new(root, "cluster", json_string(tok->cluster)) !=
	            0 ||
	    json_object_set(root, "addresses", addresses) != 0 ||
	    json_object_set_new(root, "ca", json_string(tok->ca_fingerprint)) !=
	            0 ||
	    json_object_set_new(root, "secret", json_string(secret)) != 0 ||
	    json_object_set_new(root, "expires",
	                        json_integer(tok->expires_at)) != 0)
		goto err_nomem;
	json = json_to_text(root);
	if (json == NULL)
		goto err_nomem;
	json_len = strlen(json);
	need = PREFIX_LEN + (json_len + 2) / 3 * 4 + 1;
	if (need > text_size || need > RPC_TOKEN_TEXT_MAX) {
		rv = err_set(e, -E2BIG,
		             "join token: %zu bytes do not fit in %zu", need,
		             text_size < RPC_TOKEN_TEXT_MAX
		                     ? text_size
		                     : RPC_TOKEN_TEXT_MAX);
		goto err_after_json;
	}
	memcpy(text, RPC_TOKEN_PREFIX, PREFIX_LEN);
	b64url_encode((const unsigned char *)json, json_len, text + PREFIX_LEN);
	goto err_after_json;

err_nomem:
	rv = err_set(e, -ENOMEM, "join token: out of memory");
err_after_json:
	if (json != NULL) {
		OPENSSL_cleanse(json, strlen(json));
		mem_free(json);
	}
	json_string_wipe(json_object_get(root, "secret"));
	json_decref(addresses);
	json_decref(root);
	OPENSSL_cleanse(secret, sizeof secret);
	return rv;
}

int rpc_token_create(const char *cluster, const char *const *addresses,
                     unsigned n, const char *ca_fingerprint,
                     int64_t ttl_seconds, int64_t now, struct rpc_token *out,
                     char *text, size_t text_size, struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char id[ID_BYTES];
	unsigned i, j;
	int rv;

	rpc_token_clear(out);
	if (text_size > 0)
		text[0] = '\0';
	rv = rpc_pki_cluster_name_check(cluster, e);
	if (rv != 0)
		return err_wrap(e, "join token");
	if (n < 1 || n > RPC_TOKEN_ADDRESSES_MAX)
		return err_set(e, -EINVAL,
		               "join token: %u member addresses, need 1 to %d",
		               n, RPC_TOKEN_ADDRESSES_MAX);
	for (i = 0; i < n; i++) {
		rv = rpc_token_address_check(addresses[i], e);
		if (rv != 0)
			return err_wrap(e, "join token");
		for (j = 0; j < i; j++) {
			if (strcmp(addresses[i], addresses[j]) == 0)
				return err_set(e, -EINVAL,
				               "join token: address %s appears "
				               "twice",
				               addresses[i]);
		}
	}
	rv = rpc_pki_fingerprint_check(ca_fingerprint, e);
	if (rv != 0)
		return err_wrap(e, "join token: CA");
	if (ttl_seconds < 1 || ttl_seconds > RPC_TOKEN_TTL_MAX)
		return err_set(e, -ERANGE,
		               "join token: lifetime of %lld seconds is not "
		               "within 1 to %d",
		               (long long)ttl_seconds, RPC_TOKEN_TTL_MAX);
	if (now < 0 || now > EXPIRES_MAX - ttl_seconds)
		return err_set(e, -ERANGE, "join token: bad current time %lld",
		               (long long)now);

	if (RAND_bytes(id, sizeof id) != 1 ||
	    RAND_priv_bytes(out->secret, sizeof out->secret) != 1) {
		rv = err_set(e, -EIO, "join token: no random bytes");
		goto err_after_random;
	}
	for (i = 0; i < ID_BYTES; i++) {
		out->id[2 * i] = hex[id[i] >> 4];
		out->id[2 * i + 1] = hex[id[i] & 0xf];
	}
	out->id[RPC_TOKEN_ID_LEN] = '\0';
	snprintf(out->cluster, sizeof out->cluster, "%s", cluster);
	for (i = 0; i < n; i++)
		snprintf(out->addresses[i], sizeof out->addresses[i], "%s",
		         addresses[i]);
	out->n_addresses = n;
	snprintf(out->ca_fingerprint, sizeof out->ca_fingerprint, "%s",
	         ca_fingerprint);
	out->expires_at = now + ttl_seconds;
	rv = token_encode(out, text, text_size, e);

err_after_random:
	if (rv != 0) {
		rpc_token_clear(out);
		if (text_size > 0)
			OPENSSL_cleanse(text, text_size);
	}
	return rv;
}

/* A string field: present, a string, no NUL inside, at most max bytes. */
static int field_str(const json_t *root, const char *key, size_t max,
                     const char **out, struct err *e)
{
	const char *value;
	int rv;

	rv = json_get_str(root, key, &value, e);
	if (rv != 0)
		return rv;
	if (json_string_length(json_object_get(root, key)) != strlen(value) ||
	    strlen(value) > max)
		return err_set(e, -EINVAL, "'%s' is out of shape", key);
	*out = value;
	return 0;
}

static int parse_id(const json_t *root, struct rpc_token *out, struct err *e)
{
	const char *id;
	size_t i;
	int rv;

	rv = field_str(root, "id", RPC_TOKEN_ID_LEN, &id, e);
	if (rv != 0)
		return rv;
	for (i = 0; id[i] != '\0'; i++) {
		if (!is_digit(id[i]) && !(id[i] >= 'a' && id[i] <= 'f'))
			break;
	}
	if (i != RPC_TOKEN_ID_LEN || id[i] != '\0')
		return err_set(e, -EINVAL,
		               "'id' is not %d lowercase hex digits",
		               RPC_TOKEN_ID_LEN);
	memcpy(out->id, id, RPC_TOKEN_ID_LEN + 1);
	return 0;
}

static int parse_addresses(const json_t *root, struct rpc_token *out,
                           struct err *e)
{
	const json_t *list = json_object_get(root, "addresses");
	const char *address;
	size_t i, j, n;
	json_t *item;
	int rv;

	if (list == NULL || json_is_null(list))
		return err_set(e, -ENOENT, "'addresses' is missing");
	if (!json_is_array(list))
		return err_set(e, -EINVAL, "'addresses' must be an array");
	n = json_array_size(list);
	if (n < 1 || n > RPC_TOKEN_ADDRESSES_MAX)
		return err_set(e, -EINVAL,
		               "'addresses' holds %zu entries, not 1 to %d", n,
		               RPC_TOKEN_ADDRESSES_MAX);
	json_array_foreach(list, i, item)
	{
		if (!json_is_string(item))
			return err_set(e, -EINVAL,
			               "'addresses' entry %zu is not a string",
			               i + 1);
		address = json_string_value(item);
		if (json_string_length(item) != strlen(address))
			return err_set(e, -EINVAL,
			               "'addresses' entry %zu is out of shape",
			               i + 1);
		rv = rpc_token_address_check(address, e);
		if (rv != 0)
			return rv;
		for (j = 0; j < i; j++) {
			if (strcmp(out->addresses[j], address) == 0)
				return err_set(e, -EINVAL,
				               "address %s appears twice",
				               address);
		}
		memcpy(out->addresses[i], address, strlen(address) + 1);
	}
	out->n_addresses = (unsigned)n;
	return 0;
}

static int parse_secret(const json_t *root, struct rpc_token *out,
                        struct err *e)
{
	/* Room for a few bytes too many, to say how many there were. */
	unsigned char secret[RPC_TOKEN_SECRET_LEN + 3];
	const char *text;
	size_t len = 0;
	int rv;

	rv = field_str(root, "secret", SECRET_TEXT_LEN + 4, &text, e);
	if (rv != 0)
		return rv;
	rv = b64url_decode(text, strlen(text), secret, sizeof secret, &len,
	                   "'secret'", e);
	if (rv == 0 && len != RPC_TOKEN_SECRET_LEN)
		rv = err_set(e, -EINVAL, "'secret' holds %zu bytes, not %d",
		             len, RPC_TOKEN_SECRET_LEN);
	if (rv == 0)
		memcpy(out->secret, secret, RPC_TOKEN_SECRET_LEN);
	OPENSSL_cleanse(secret, sizeof secret);
	return rv;
}

static int parse_fields(const json_t *root, struct rpc_token *out,
                        struct err *e)
{
	static const char *const known[] = {"id", "cluster", "addresses",
	                                    "ca", "secret",  "expires"};
	const char *key, *value;
	json_t *item;
	size_t i;
	int64_t expires;
	int rv;

	if (!json_is_object(root))
		return err_set(e, -EINVAL, "not a JSON object");
	json_object_foreach((json_t *)root, key, item)
	{
		for (i = 0; i < CAIRN_ARRAY_SIZE(known); i++) {
			if (strcmp(key, known[i]) == 0)
				break;
		}
		if (i == CAIRN_ARRAY_SIZE(known))
			return err_set(e, -EINVAL, "unknown field '%.32s'",
			               key);
	}
	rv = parse_id(root, out, e);
	if (rv != 0)
		return rv;
	rv = field_str(root, "cluster", RPC_CLUSTER_NAME_MAX, &value, e);
	if (rv == 0)
		rv = rpc_pki_cluster_name_check(value, e);
	if (rv != 0)
		return rv;
	memcpy(out->cluster, value, strlen(value) + 1);
	rv = parse_addresses(root, out, e);
	if (rv != 0)
		return rv;
	rv = field_str(root, "ca", RPC_FINGERPRINT_TEXT_LEN, &value, e);
	if (rv == 0)
		rv = rpc_pki_fingerprint_check(value, e);
	if (rv != 0)
		return rv;
	memcpy(out->ca_fingerprint, value, RPC_FINGERPRINT_TEXT_LEN + 1);
	rv = parse_secret(root, out, e);
	if (rv != 0)
		return rv;
	rv = json_get_int(root, "expires", 1, EXPIRES_MAX, &expires, e);
	if (rv != 0)
		return rv;
	out->expires_at = expires;
	return 0;
}

int rpc_token_parse(const char *text, struct rpc_token *out, struct err *e)
{
	unsigned char json[JSON_MAX + 1];
	struct err inner;
	json_t *root = NULL;
	size_t start, end, json_len = 0;
	int rv;

	rpc_token_clear(out);
	if (text == NULL)
		return err_set(e, -EINVAL, "join token: none given");
	end = strnlen(text, PASTE_MAX + 1);
	if (end > PASTE_MAX)
		return err_set(e, -E2BIG,
		               "join token: longer than %d characters",
		               RPC_TOKEN_TEXT_MAX - 1);
	for (start = 0; start < end && strchr(" \t\r\n", text[start]); start++)
		;
	while (end > start && strchr(" \t\r\n", text[end - 1]))
		end--;
	if (end - start < PREFIX_LEN ||
	    memcmp(text + start, RPC_TOKEN_PREFIX, PREFIX_LEN) != 0)
		return err_set(e, -EINVAL,
		               "join token: not a cairn join token (expected "
		               "prefix %s)",
		               RPC_TOKEN_PREFIX);
	if (end - start > RPC_TOKEN_TEXT_MAX - 1)
		return err_set(e, -E2BIG,
		               "join token: %zu characters, more than %d",
		               end - start, RPC_TOKEN_TEXT_MAX - 1);
	start += PREFIX_LEN;
	if (start == end)
		return err_set(e, -EINVAL,
		               "join token: nothing after the prefix");
	rv = b64url_decode(text + start, end - start, json, JSON_MAX, &json_len,
	                   "join token", e);
	if (rv != 0)
		goto err_after_decode;
	rv = json_parse_bounded((const char *)json, json_len, JSON_MAX, 2,
	                        &root, &inner);
	if (rv != 0) {
		rv = err_set(e, -EINVAL,
		             "join token: damaged or truncated (%s)",
		             inner.msg);
		goto err_after_decode;
	}
	rv = parse_fields(root, out, e);
	if (rv != 0)
		err_wrap(e, "join token");
	json_string_wipe(json_object_get(root, "secret"));
	json_decref(root);
err_after_decode:
	OPENSSL_cleanse(json, sizeof json);
	if (rv != 0)
		rpc_token_clear(out);
	return rv;
}
