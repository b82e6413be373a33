/* Unit tests for join tokens: text form, strict parsing, expiry and the
 * digest of the secret. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "rpc/rpc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define FP \
	"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define NOW INT64_C(1795974600) /* 2026-11-29T17:50:00Z */
/* base64url of 32 bytes 0x00..0x1f. */
#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define ID     "0123456789abcdef0123456789abcdef"

static struct err e;
static struct rpc_token tok;
static char text[RPC_TOKEN_TEXT_MAX];

static const char *const members[] = {"10.0.0.1:8016", "[fd00::1]:8016"};

/* Token text for any JSON, encoded with OpenSSL's base64 rather than ours,
 * so that parsing is checked against an independent encoder. */
static void token_of_json(const char *json, char *out, size_t size)
{
	size_t len = strlen(json), n, i;
	char *b64 = malloc(len * 2 + 8);

	assert_non_null(b64);
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64,
	                            (const unsigned char *)json, (int)len);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
	}
	b64[n] = '\0';
	assert_true(strlen(RPC_TOKEN_PREFIX) + n < size);
	snprintf(out, size, "%s%s", RPC_TOKEN_PREFIX, b64);
	free(b64);
}

/* A well-formed token's JSON with one field replaced (or dropped when
 * value is NULL), or one added when field is new. */
static void json_with(const char *field, const char *value, char *out,
                      size_t size)
{
	static const char *const fields[] = {"id", "cluster", "addresses",
	                                     "ca", "secret",  "expires"};
	static const char *const values[] = {
	        "\"" ID "\"", "\"prod\"",       "[\"10.0.0.1:8016\"]",
	        "\"" FP "\"", "\"" SECRET "\"", "1795976400"};
	size_t i, n = 0;
	bool replaced = false;

	n += (size_t)snprintf(out + n, size - n, "{");
	for (i = 0; i < CAIRN_ARRAY_SIZE(fields); i++) {
		const char *v = values[i];

		if (field != NULL && strcmp(field, fields[i]) == 0) {
			replaced = true;
			v = value;
			if (v == NULL)
				continue;
		}
		n += (size_t)snprintf(out + n, size - n, "%s\"%s\":%s",
		                      n > 1 ? "," : "", fields[i], v);
	}
	if (field != NULL && !replaced)
		n += (size_t)snprintf(out + n, size - n, ",\"%s\":%s", field,
		                      value);
	snprintf(out + n, size - n, "}");
}

static int parse_with(const char *field, const char *value)
{
	char json[2048];

	json_with(field, value, json, sizeof json);
	token_of_json(json, text, sizeof text);
	return rpc_token_parse(text, &tok, &e);
}

static void test_token_round_trips(void **state)
{
	struct rpc_token back;
	size_t i, len;

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 3600, NOW,
	                                  &tok, text, sizeof text, &e),
	                 0);
	len = strlen(text);
	assert_true(len < RPC_TOKEN_TEXT_MAX);
	assert_int_equal(strncmp(text, "cairn-join-v1.", 14), 0);
	for (i = 14; i < len; i++)
		assert_non_null(
		        strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
		               "opqrstuvwxyz0123456789-_",
		               text[i]));
	assert_int_equal(rpc_token_parse(text, &back, &e), 0);
	assert_string_equal(back.id, tok.id);
	assert_int_equal(strlen(back.id), RPC_TOKEN_ID_LEN);
	assert_string_equal(back.cluster, "prod");
	assert_int_equal(back.n_addresses, 2);
	assert_string_equal(back.addresses[0], "10.0.0.1:8016");
	assert_string_equal(back.addresses[1], "[fd00::1]:8016");
	assert_string_equal(back.ca_fingerprint, FP);
	assert_memory_equal(back.secret, tok.secret, RPC_TOKEN_SECRET_LEN);
	assert_int_equal(back.expires_at, NOW + 3600);
	assert_int_equal(rpc_token_check_expiry(&back, NOW, &e), 0);
	rpc_token_clear(&back);
}

static void test_tokens_have_fresh_ids_and_secrets(void **state)
{
	struct rpc_token other;
	char other_text[RPC_TOKEN_TEXT_MAX];

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 3600, NOW,
	                                  &tok, text, sizeof text, &e),
	                 0);
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 3600, NOW,
	                                  &other, other_text, sizeof other_text,
	                                  &e),
	                 0);
	assert_string_not_equal(tok.id, other.id);
	assert_memory_not_equal(tok.secret, other.secret, RPC_TOKEN_SECRET_LEN);
	assert_string_not_equal(text, other_text);
}

static void test_largest_token_fits_2_kib(void **state)
{
	char storage[RPC_TOKEN_ADDRESSES_MAX][RPC_TOKEN_ADDRESS_MAX + 1];
	const char *addresses[RPC_TOKEN_ADDRESSES_MAX];
	char cluster[RPC_CLUSTER_NAME_MAX + 1];
	size_t i;

	(void)state;
	memset(cluster, 'c', RPC_CLUSTER_NAME_MAX);
	cluster[RPC_CLUSTER_NAME_MAX] = '\0';
	for (i = 0; i < RPC_TOKEN_ADDRESSES_MAX; i++) {
		snprintf(
		        storage[i], sizeof storage[i],
		        "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.%zu]:65535",
		        100 + i);
		assert_int_equal(strlen(storage[i]), RPC_TOKEN_ADDRESS_MAX);
		addresses[i] = storage[i];
	}
	assert_int_equal(rpc_token_create(cluster, addresses,
	                                  RPC_TOKEN_ADDRESSES_MAX, FP,
	                                  RPC_TOKEN_TTL_MAX, NOW, &tok, text,
	                                  sizeof text, &e),
	                 0);
	assert_true(strlen(text) < RPC_TOKEN_TEXT_MAX);
	assert_int_equal(rpc_token_parse(text, &tok, &e), 0);
	assert_int_equal(tok.n_addresses, RPC_TOKEN_ADDRESSES_MAX);
	assert_string_equal(tok.addresses[15], storage[15]);
	/* A caller's buffer that is too small gets a clear error. */
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 60, NOW, &tok,
	                                  text, 100, &e),
	                 -E2BIG);
	assert_string_equal(text, "");
}

static void test_parse_ignores_white_space_around_a_paste(void **state)
{
	char pasted[RPC_TOKEN_TEXT_MAX + 16];

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 1, FP, 3600, NOW,
	                                  &tok, text, sizeof text, &e),
	                 0);
	snprintf(pasted, sizeof pasted, "  %s\r\n", text);
	assert_int_equal(rpc_token_parse(pasted, &tok, &e), 0);
	/* But not inside. */
	snprintf(pasted, sizeof pasted, "%.20s %s", text, text + 20);
	assert_int_equal(rpc_token_parse(pasted, &tok, &e), -EINVAL);
}

static void test_parse_refuses_a_wrong_prefix(void **state)
{
	static const char *const bad[] = {
	        "",
	        "cairn-join-v2.eyJ9",
	        "CAIRN-JOIN-V1.e30",
	        "cairn-join-v1",
	        "PVEAPIToken=root@pam!x=1234",
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(rpc_token_parse(bad[i], &tok, &e), -EINVAL);
		assert_string_equal(e.msg, "join token: not a cairn join token "
		                           "(expected prefix cairn-join-v1.)");
	}
	assert_int_equal(rpc_token_parse(NULL, &tok, &e), -EINVAL);
	assert_int_equal(rpc_token_parse("cairn-join-v1.", &tok, &e), -EINVAL);
	assert_string_equal(e.msg, "join token: nothing after the prefix");
}

static void test_parse_refuses_bad_base64url(void **state)
{
	char bad[RPC_TOKEN_TEXT_MAX + 8];
	size_t len;

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 3600, NOW,
	                                  &tok, text, sizeof text, &e),
	                 0);
	len = strlen(text);
	/* Standard base64's characters and padding are not base64url. */
	memcpy(bad, text, len + 1);
	bad[20] = '+';
	assert_int_equal(rpc_token_parse(bad, &tok, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not base64url at offset 6"));
	bad[20] = '/';
	assert_int_equal(rpc_token_parse(bad, &tok, &e), -EINVAL);
	snprintf(bad, sizeof bad, "%s=", text);
	assert_int_equal(rpc_token_parse(bad, &tok, &e), -EINVAL);
	snprintf(bad, sizeof bad, "cairn-join-v1.e30\x01");
	assert_int_equal(rpc_token_parse(bad, &tok, &e), -EINVAL);
	/* "e31" decodes to "{}" plus stray bits: not canonical. */
	assert_int_equal(rpc_token_parse("cairn-join-v1.e31", &tok, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "stray bits"));
	/* Valid base64url of something that is not JSON. */
	assert_int_equal(rpc_token_parse("cairn-join-v1.aGVsbG8", &tok, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "join token: damaged or truncated"));
}

static void test_parse_refuses_every_truncation(void **state)
{
	char cut[RPC_TOKEN_TEXT_MAX];
	size_t len, n;

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 2, FP, 3600, NOW,
	                                  &tok, text, sizeof text, &e),
	                 0);
	len = strlen(text);
	for (n = 0; n < len; n++) {
		memcpy(cut, text, n);
		cut[n] = '\0';
		if (rpc_token_parse(cut, &tok, &e) == 0)
			fail_msg("a token cut to %zu of %zu characters parsed",
			         n, len);
		assert_true(e.code == -EINVAL);
		assert_int_equal(strncmp(e.msg, "join token: ", 12), 0);
	}
}

static void test_parse_refuses_an_oversized_token(void **state)
{
	char *big = malloc(RPC_TOKEN_TEXT_MAX * 8);
	size_t n;

	(void)state;
	assert_non_null(big);
	n = (size_t)snprintf(big, RPC_TOKEN_TEXT_MAX * 8, "%s",
	                     RPC_TOKEN_PREFIX);
	memset(big + n, 'A', RPC_TOKEN_TEXT_MAX - n);
	big[RPC_TOKEN_TEXT_MAX] = '\0';
	assert_int_equal(rpc_token_parse(big, &tok, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "more than 2047"));
	memset(big + n, 'A', RPC_TOKEN_TEXT_MAX * 8 - n - 1);
	big[RPC_TOKEN_TEXT_MAX * 8 - 1] = '\0';
	assert_int_equal(rpc_token_parse(big, &tok, &e), -E2BIG);
	free(big);
}

static void test_parse_accepts_the_reference_json(void **state)
{
	(void)state;
	assert_int_equal(parse_with(NULL, NULL), 0);
	assert_string_equal(tok.id, ID);
	assert_string_equal(tok.cluster, "prod");
	assert_int_equal(tok.n_addresses, 1);
	assert_int_equal(tok.secret[0], 0);
	assert_int_equal(tok.secret[31], 31);
	assert_int_equal(tok.expires_at, 1795976400);
}

static void test_parse_refuses_a_missing_field(void **state)
{
	static const char *const fields[] = {"id", "cluster", "addresses",
	                                     "ca", "secret",  "expires"};
	char expected[64];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(fields); i++) {
		assert_int_equal(parse_with(fields[i], NULL), -ENOENT);
		snprintf(expected, sizeof expected,
		         "join token: '%s' is missing", fields[i]);
		assert_string_equal(e.msg, expected);
		assert_int_equal(parse_with(fields[i], "null"), -ENOENT);
	}
}

static void test_parse_refuses_an_unknown_field(void **state)
{
	char json[2048];

	(void)state;
	assert_int_equal(parse_with("admin", "true"), -EINVAL);
	assert_string_equal(e.msg, "join token: unknown field 'admin'");
	/* A repeated field is not a way to smuggle a second value. */
	json_with(NULL, NULL, json, sizeof json);
	json[strlen(json) - 1] = '\0';
	strcat(json, ",\"cluster\":\"other\"}");
	token_of_json(json, text, sizeof text);
	assert_int_equal(rpc_token_parse(text, &tok, &e), -EINVAL);
	/* Nor is nesting. */
	token_of_json("[{}]", text, sizeof text);
	assert_int_equal(rpc_token_parse(text, &tok, &e), -EINVAL);
	token_of_json("{\"a\":{\"b\":{}}}", text, sizeof text);
	assert_int_equal(rpc_token_parse(text, &tok, &e), -EINVAL);
}

static void test_parse_refuses_fields_of_the_wrong_type(void **state)
{
	(void)state;
	assert_int_equal(parse_with("id", "12"), -EINVAL);
	assert_int_equal(
	        parse_with("id", "\"0123456789ABCDEF0123456789abcdef\""),
	        -EINVAL);
	assert_int_equal(parse_with("id", "\"0123\""), -EINVAL);
	assert_int_equal(parse_with("cluster", "\"pr od\""), -EINVAL);
	assert_int_equal(parse_with("cluster", "\"pro\\u0000d\""), -EINVAL);
	assert_int_equal(parse_with("addresses", "\"10.0.0.1:8016\""), -EINVAL);
	assert_int_equal(parse_with("addresses", "[]"), -EINVAL);
	assert_int_equal(parse_with("addresses", "[1]"), -EINVAL);
	assert_int_equal(parse_with("expires", "\"1795976400\""), -EINVAL);
	assert_int_equal(parse_with("expires", "1795976400.5"), -EINVAL);
	assert_int_equal(parse_with("expires", "0"), -ERANGE);
	assert_int_equal(parse_with("expires", "-5"), -ERANGE);
	assert_int_equal(parse_with("expires", "253402300800"), -ERANGE);
}

static void test_parse_refuses_a_bad_address(void **state)
{
	static const char *const bad[] = {
	        "10.0.0.1",        "10.0.0.1:",
	        "10.0.0.1:0",      "10.0.0.1:65536",
	        "10.0.0.1:08016",  "10.0.0.1:8016x",
	        "10.0.0.1:-1",     "10.0.0.256:8016",
	        "node1:8016",      "fd00::1:8016",
	        "[fd00::1]",       "[fd00::1]8016",
	        "[fd00::g]:8016",  "[10.0.0.1]:8016",
	        ":8016",           " 10.0.0.1:8016",
	        "10.0.0.1:8016 ",  "[fd00::1%eth0]:1",
	        "10.0.0.1:123456", "",
	};
	char value[128];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		snprintf(value, sizeof value, "[\"%s\"]", bad[i]);
		if (parse_with("addresses", value) != -EINVAL)
			fail_msg("address '%s' was accepted", bad[i]);
		assert_int_equal(rpc_token_address_check(bad[i], &e), -EINVAL);
	}
	assert_int_equal(
	        parse_with("addresses", "[\"10.0.0.1:1\",\"10.0.0.1:1\"]"),
	        -EINVAL);
	assert_non_null(strstr(e.msg, "appears twice"));
	assert_int_equal(parse_with("addresses", "[\"10.0.0.1:1\","
	                                         "\"10.0.0.2:1\","
	                                         "\"10.0.0.3:1\","
	                                         "\"10.0.0.4:1\","
	                                         "\"10.0.0.5:1\","
	                                         "\"10.0.0.6:1\","
	                                         "\"10.0.0.7:1\","
	                                         "\"10.0.0.8:1\","
	                                         "\"10.0.0.9:1\","
	                                         "\"10.0.0.10:1\","
	                                         "\"10.0.0.11:1\","
	                                         "\"10.0.0.12:1\","
	                                         "\"10.0.0.13:1\","
	                                         "\"10.0.0.14:1\","
	                                         "\"10.0.0.15:1\","
	                                         "\"10.0.0.16:1\","
	                                         "\"10.0.0.17:1\"]"),
	                 -EINVAL);
	assert_int_equal(rpc_token_address_check("10.0.0.1:8016", &e), 0);
	assert_int_equal(rpc_token_address_check("[::1]:1", &e), 0);
	assert_int_equal(rpc_token_address_check("1.2.3.4:65535", &e), 0);
}

static void test_parse_refuses_a_bad_fingerprint(void **state)
{
	static const char *const bad[] = {
	        "\"SHA256:00112233445566778899aabbccddeeff00112233445566778899"
	        "aabbccddeeff\"",
	        "\"sha256:00112233445566778899AABBCCDDEEFF00112233445566778899"
	        "aabbccddeeff\"",
	        "\"sha256:00112233445566778899aabbccddeeff\"",
	        "\"00112233445566778899aabbccddeeff00112233445566778899aabbccdd"
	        "eeff\"",
	        "\"\"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(parse_with("ca", bad[i]), -EINVAL);
		assert_non_null(strstr(e.msg, "join token: "));
	}
	assert_int_equal(rpc_token_create("prod", members, 1, "sha256:abc",
	                                  3600, NOW, &tok, text, sizeof text,
	                                  &e),
	                 -EINVAL);
}

static void test_parse_refuses_a_secret_not_of_32_bytes(void **state)
{
	(void)state;
	/* 31 bytes. */
	assert_int_equal(parse_with("secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFR"
	                                      "YXGBkaGxwdHg\""),
	                 -EINVAL);
	assert_string_equal(e.msg,
	                    "join token: 'secret' holds 31 bytes, not 32");
	/* 33 bytes. */
	assert_int_equal(parse_with("secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFR"
	                                      "YXGBkaGxwdHh8g\""),
	                 -EINVAL);
	assert_int_equal(parse_with("secret", "\"\""), -EINVAL);
	assert_int_equal(parse_with("secret", "\"" SECRET "=\""), -EINVAL);
	assert_int_equal(parse_with("secret", "32"), -EINVAL);
	/* Standard base64 of the same bytes is not accepted either. */
	assert_int_equal(parse_with("secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFR"
	                                      "YXGBkaGxwdHh+\""),
	                 -EINVAL);
}

static void test_expired_token_is_refused_with_its_time(void **state)
{
	(void)state;
	assert_int_equal(parse_with(NULL, NULL), 0);
	/* Expires 2026-11-29T18:20:00Z. */
	assert_int_equal(rpc_token_check_expiry(&tok, 1795976399, &e), 0);
	assert_int_equal(rpc_token_check_expiry(&tok, 1795976400, &e),
	                 -EKEYEXPIRED);
	assert_string_equal(e.msg,
	                    "join token: expired at 2026-11-29T18:20:00Z");
	assert_int_equal(rpc_token_check_expiry(&tok, NOW + 86400, &e),
	                 -EKEYEXPIRED);
}

static void test_create_refuses_bad_arguments(void **state)
{
	const char *many[RPC_TOKEN_ADDRESSES_MAX + 1];
	const char *dup[2] = {"10.0.0.1:1", "10.0.0.1:1"};
	const char *bad[1] = {"10.0.0.1"};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(many); i++)
		many[i] = members[0];
	assert_int_equal(rpc_token_create("prod", members, 0, FP, 60, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -EINVAL);
	assert_int_equal(rpc_token_create("prod", many, 17, FP, 60, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -EINVAL);
	assert_int_equal(rpc_token_create("prod", dup, 2, FP, 60, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -EINVAL);
	assert_int_equal(rpc_token_create("prod", bad, 1, FP, 60, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "has no port"));
	assert_int_equal(rpc_token_create("pr od", members, 1, FP, 60, NOW,
	                                  &tok, text, sizeof text, &e),
	                 -EINVAL);
	assert_int_equal(rpc_token_create("prod", members, 1, FP, 0, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -ERANGE);
	assert_int_equal(rpc_token_create("prod", members, 1, FP,
	                                  RPC_TOKEN_TTL_MAX + 1, NOW, &tok,
	                                  text, sizeof text, &e),
	                 -ERANGE);
	assert_int_equal(rpc_token_create("prod", members, 1, FP, 60, -1, &tok,
	                                  text, sizeof text, &e),
	                 -ERANGE);
	assert_string_equal(text, "");
}

static void test_secret_digest_is_hex_sha256(void **state)
{
	unsigned char secret[RPC_TOKEN_SECRET_LEN] = {0};
	char digest[RPC_TOKEN_DIGEST_LEN + 1];

	(void)state;
	assert_int_equal(rpc_token_secret_digest(secret, digest, &e), 0);
	assert_string_equal(digest, "66687aadf862bd776c8fc18b8e9f8e20"
	                            "089714856ee233b3902a591d0d5f2925");
}

static void test_secret_matches_its_digest_only(void **state)
{
	char digest[RPC_TOKEN_DIGEST_LEN + 1];
	char upper[RPC_TOKEN_DIGEST_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(rpc_token_create("prod", members, 1, FP, 60, NOW, &tok,
	                                  text, sizeof text, &e),
	                 0);
	assert_int_equal(rpc_token_secret_digest(tok.secret, digest, &e), 0);
	assert_true(rpc_token_secret_matches(digest, tok.secret));

	tok.secret[31] ^= 1;
	assert_false(rpc_token_secret_matches(digest, tok.secret));
	tok.secret[31] ^= 1;
	for (i = 0; i <= RPC_TOKEN_DIGEST_LEN; i++)
		upper[i] =
		        (char)(digest[i] >= 'a' ? digest[i] - 32 : digest[i]);
	/* The stored form is lowercase; anything else is another digest. */
	if (strcmp(upper, digest) != 0)
		assert_false(rpc_token_secret_matches(upper, tok.secret));
	digest[RPC_TOKEN_DIGEST_LEN - 1] = '\0';
	assert_false(rpc_token_secret_matches(digest, tok.secret));
	assert_false(rpc_token_secret_matches("", tok.secret));
	assert_false(rpc_token_secret_matches(NULL, tok.secret));
}

static void test_clear_wipes_the_secret(void **state)
{
	unsigned char zero[RPC_TOKEN_SECRET_LEN] = {0};

	(void)state;
	assert_int_equal(parse_with(NULL, NULL), 0);
	rpc_token_clear(&tok);
	assert_memory_equal(tok.secret, zero, sizeof zero);
	assert_int_equal(tok.n_addresses, 0);
	/* A failed parse leaves nothing behind either. */
	assert_int_equal(parse_with("expires", "\"soon\""), -EINVAL);
	assert_memory_equal(tok.secret, zero, sizeof zero);
	assert_string_equal(tok.id, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_round_trips),
	        cmocka_unit_test(test_tokens_have_fresh_ids_and_secrets),
	        cmocka_unit_test(test_largest_token_fits_2_kib),
	        cmocka_unit_test(test_parse_ignores_white_space_around_a_paste),
	        cmocka_unit_test(test_parse_refuses_a_wrong_prefix),
	        cmocka_unit_test(test_parse_refuses_bad_base64url),
	        cmocka_unit_test(test_parse_refuses_every_truncation),
	        cmocka_unit_test(test_parse_refuses_an_oversized_token),
	        cmocka_unit_test(test_parse_accepts_the_reference_json),
	        cmocka_unit_test(test_parse_refuses_a_missing_field),
	        cmocka_unit_test(test_parse_refuses_an_unknown_field),
	        cmocka_unit_test(test_parse_refuses_fields_of_the_wrong_type),
	        cmocka_unit_test(test_parse_refuses_a_bad_address),
	        cmocka_unit_test(test_parse_refuses_a_bad_fingerprint),
	        cmocka_unit_test(test_parse_refuses_a_secret_not_of_32_bytes),
	        cmocka_unit_test(test_expired_token_is_refused_with_its_time),
	        cmocka_unit_test(test_create_refuses_bad_arguments),
	        cmocka_unit_test(test_secret_digest_is_hex_sha256),
	        cmocka_unit_test(test_secret_matches_its_digest_only),
	        cmocka_unit_test(test_clear_wipes_the_secret),
	};

	return cmocka_run_group_tests_name("rpc/token", tests, NULL, NULL);
}
