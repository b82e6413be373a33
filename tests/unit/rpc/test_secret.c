/* Unit tests for rpc/secret.c: password hashes against published PBKDF2
 * vectors, HMAC-SHA256 against RFC 4231, SHA-256, UUIDs and base64. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "rpc/rpc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* PBKDF2-HMAC-SHA256("password", "salt", 32 bytes), as printed by Python's
 * hashlib.pbkdf2_hmac, in base64 without padding. */
#define SALT_B64   "c2FsdA"
#define HASH_1     "Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs"
#define HASH_4096  "xeR41ZKIyEGqUw22hFxMjZYok6ABzk4RpJY4c6qYE0o"
#define STORED_1   "$pbkdf2-sha256$1$" SALT_B64 "$" HASH_1
#define UUID_COUNT 1000

static struct err e;

static void hex_of(const unsigned char *in, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
	out[2 * len] = '\0';
}

static void check_hmac(const void *key, size_t key_len, const char *data,
                       size_t len, const char *expected_hex)
{
	unsigned char mac[32];
	char hex[65];

	rpc_hmac_sha256(key, key_len, data, len, mac);
	hex_of(mac, sizeof mac, hex);
	assert_string_equal(hex, expected_hex);
}

/* ------------------------------------------------------------------------
 * Digests. */

static void test_sha256_of_abc_is_the_fips_vector(void **state)
{
	char hex[65];

	(void)state;
	rpc_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	                         "b00361a396177a9cb410ff61f20015ad");
	rpc_sha256_hex(NULL, 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
	                         "27ae41e4649b934ca495991b7852b855");
}

static void test_hmac_rfc4231_case_1(void **state)
{
	unsigned char key[20];

	(void)state;
	memset(key, 0x0b, sizeof key);
	check_hmac(key, sizeof key, "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b"
	           "881dc200c9833da726e9376c2e32cff7");
}

static void test_hmac_rfc4231_case_2_short_key(void **state)
{
	const char *data = "what do ya want for nothing?";

	(void)state;
	check_hmac("Jefe", 4, data, strlen(data),
	           "5bdcc146bf60754e6a042426089575c7"
	           "5a003f089d2739839dec58b964ec3843");
}

static void test_hmac_rfc4231_case_3(void **state)
{
	unsigned char key[20];
	char data[50];

	(void)state;
	memset(key, 0xaa, sizeof key);
	memset(data, 0xdd, sizeof data);
	check_hmac(key, sizeof key, data, sizeof data,
	           "773ea91e36800e46854db8ebd09181a7"
	           "2959098b3ef8c122d9635514ced565fe");
}

static void test_hmac_rfc4231_case_4(void **state)
{
	unsigned char key[25];
	char data[50];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(i + 1);
	memset(data, 0xcd, sizeof data);
	check_hmac(key, sizeof key, data, sizeof data,
	           "82558a389a443c0ea4cc819899f2083a"
	           "85f0faa3e578f8077a2e3ff46729665b");
}

static void test_hmac_rfc4231_case_6_key_longer_than_a_block(void **state)
{
	const char *data = "Test Using Larger Than Block-Size Key - Hash Key "
	                   "First";
	unsigned char key[131];

	(void)state;
	memset(key, 0xaa, sizeof key);
	check_hmac(key, sizeof key, data, strlen(data),
	           "60e431591ee0b67f0d8a26aacbf5b77f"
	           "8e0bc6213728c5140546040f0ee37f54");
}

static void test_hmac_rfc4231_case_7_key_and_data_longer(void **state)
{
	const char *data = "This is a test using a larger than block-size key "
	                   "and a larger than block-size data. The key needs "
	                   "to be hashed before being used by the HMAC "
	                   "algorithm.";
	unsigned char key[131];

	(void)state;
	memset(key, 0xaa, sizeof key);
	check_hmac(key, sizeof key, data, strlen(data),
	           "9b09ffa71b942fcb27635fbcd5b0e944"
	           "bfdc63644f0713938a7f51535c3a35e2");
}

static void test_hmac_of_nothing_under_no_key(void **state)
{
	(void)state;
	/* Python: hmac.new(b"", b"", hashlib.sha256). */
	check_hmac(NULL, 0, NULL, 0,
	           "b613679a0814d9ec772f95d778c35fc5"
	           "ff1697c493715653c6c712144292c5ad");
}

static void test_const_equal_compares_every_byte(void **state)
{
	unsigned char a[64], b[64];
	size_t i;

	(void)state;
	memset(a, 0x5a, sizeof a);
	memcpy(b, a, sizeof b);
	assert_true(rpc_const_equal(a, b, sizeof a));
	assert_true(rpc_const_equal(a, b, 0));
	for (i = 0; i < sizeof b; i++) {
		b[i] ^= 1;
		assert_false(rpc_const_equal(a, b, sizeof a));
		b[i] ^= 1;
	}
}

/* ------------------------------------------------------------------------
 * Password hashes. */

static void test_verify_accepts_the_pbkdf2_vector_of_1_iteration(void **state)
{
	(void)state;
	assert_int_equal(rpc_password_verify("password", STORED_1, &e), 0);
}

static void
test_verify_accepts_the_pbkdf2_vector_of_4096_iterations(void **state)
{
	(void)state;
	assert_int_equal(rpc_password_verify("password",
	                                     "$pbkdf2-sha256$4096$" SALT_B64
	                                     "$" HASH_4096,
	                                     &e),
	                 0);
	/* Padding is optional in the stored fields too. */
	assert_int_equal(rpc_password_verify(
	                         "password",
	                         "$pbkdf2-sha256$4096$c2FsdA==$" HASH_4096 "=",
	                         &e),
	                 0);
}

static void test_verify_rejects_a_wrong_password(void **state)
{
	(void)state;
	assert_int_equal(rpc_password_verify("Password", STORED_1, &e),
	                 -EKEYREJECTED);
	assert_string_equal(e.msg, "password: does not match");
	assert_int_equal(rpc_password_verify("password ", STORED_1, &e),
	                 -EKEYREJECTED);
	assert_int_equal(rpc_password_verify("", STORED_1, &e), -EKEYREJECTED);
	assert_int_equal(rpc_password_verify("password", STORED_1, NULL), 0);
	assert_int_equal(rpc_password_verify("passwore", STORED_1, NULL),
	                 -EKEYREJECTED);
}

/* Every derived byte counts: the vector with its first or its last byte
 * changed is refused. */
static void test_verify_rejects_a_hash_differing_in_one_byte(void **state)
{
	(void)state;
	assert_int_equal(rpc_password_verify("password",
	                                     "$pbkdf2-sha256$1$" SALT_B64
	                                     "$Ew+2z/z4syxD5yJSVsT4N6hlSMksz"
	                                     "DVICAWYfLcL4Xs",
	                                     &e),
	                 -EKEYREJECTED);
	assert_int_equal(rpc_password_verify("password",
	                                     "$pbkdf2-sha256$1$" SALT_B64
	                                     "$Eg+2z/z4syxD5yJSVsT4N6hlSMksz"
	                                     "DVICAWYfLcL4Xo",
	                                     &e),
	                 -EKEYREJECTED);
	/* Another salt or iteration count derives other bytes. */
	assert_int_equal(rpc_password_verify(
	                         "password",
	                         "$pbkdf2-sha256$2$" SALT_B64 "$" HASH_1, &e),
	                 -EKEYREJECTED);
	assert_int_equal(rpc_password_verify("password",
	                                     "$pbkdf2-sha256$1$c2FsdQ$" HASH_1,
	                                     &e),
	                 -EKEYREJECTED);
}

static void test_hash_then_verify_round_trips(void **state)
{
	char stored[RPC_PASSWORD_HASH_MAX];
	const char *salt, *hash;

	(void)state;
	assert_int_equal(rpc_password_hash("correct horse", 1000, stored, &e),
	                 0);
	assert_int_equal(strncmp(stored, "$pbkdf2-sha256$1000$", 20), 0);
	/* 16 bytes of salt and 32 of hash, unpadded. */
	salt = stored + 20;
	hash = strchr(salt, '$');
	assert_non_null(hash);
	assert_int_equal(hash - salt, 22);
	assert_int_equal(strlen(hash + 1), 43);
	assert_int_equal(rpc_password_verify("correct horse", stored, &e), 0);
	assert_int_equal(rpc_password_verify("correct horsE", stored, &e),
	                 -EKEYREJECTED);
}

static void test_hash_of_an_empty_password_verifies(void **state)
{
	char stored[RPC_PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(rpc_password_hash("", 1000, stored, &e), 0);
	assert_int_equal(rpc_password_verify("", stored, &e), 0);
	assert_int_equal(rpc_password_verify(" ", stored, &e), -EKEYREJECTED);
}

static void test_hashes_of_one_password_differ_by_their_salt(void **state)
{
	char a[RPC_PASSWORD_HASH_MAX], b[RPC_PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(rpc_password_hash("secret", 1000, a, &e), 0);
	assert_int_equal(rpc_password_hash("secret", 1000, b, &e), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(rpc_password_verify("secret", a, &e), 0);
	assert_int_equal(rpc_password_verify("secret", b, &e), 0);
}

static void test_hash_refuses_iterations_out_of_range(void **state)
{
	char stored[RPC_PASSWORD_HASH_MAX] = "x";

	(void)state;
	assert_int_equal(rpc_password_hash("pw", 999, stored, &e), -EINVAL);
	assert_string_equal(e.msg, "password hash: 999 iterations, not within "
	                           "1000 to 10000000");
	assert_string_equal(stored, "");
	assert_int_equal(rpc_password_hash("pw", 1, stored, &e), -EINVAL);
	assert_int_equal(rpc_password_hash("pw", 10000001, stored, &e),
	                 -EINVAL);
	assert_int_equal(rpc_password_hash("pw", UINT32_MAX, stored, NULL),
	                 -EINVAL);
}

static void test_over_long_passwords_are_refused(void **state)
{
	char password[RPC_PASSWORD_MAX + 2];
	char stored[RPC_PASSWORD_HASH_MAX];

	(void)state;
	memset(password, 'p', RPC_PASSWORD_MAX);
	password[RPC_PASSWORD_MAX] = '\0';
	assert_int_equal(rpc_password_hash(password, 1000, stored, &e), 0);
	assert_int_equal(rpc_password_verify(password, stored, &e), 0);

	password[RPC_PASSWORD_MAX] = 'p';
	password[RPC_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(rpc_password_hash(password, 1000, stored, &e), -E2BIG);
	assert_string_equal(e.msg, "password: longer than 1024 bytes");
	assert_string_equal(stored, "");
	assert_int_equal(rpc_password_verify(password, STORED_1, &e), -E2BIG);
}

static void test_null_arguments_are_refused(void **state)
{
	char stored[RPC_PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(rpc_password_hash(NULL, 0, stored, &e), -EINVAL);
	assert_int_equal(rpc_password_verify(NULL, STORED_1, &e), -EINVAL);
	assert_int_equal(rpc_password_verify("password", NULL, &e), -EINVAL);
	assert_string_equal(e.msg, "stored password hash: none given");
}

static void test_verify_refuses_malformed_stored_hashes(void **state)
{
	static const struct {
		const char *stored;
		const char *reason; /* a part of the message */
	} cases[] = {
	        {"", "not a $pbkdf2-sha256$ hash"},
	        {"$pbkdf2-sha512$1$" SALT_B64 "$" HASH_1, "not a"},
	        {"pbkdf2-sha256$1$" SALT_B64 "$" HASH_1, "not a"},
	        {"$PBKDF2-SHA256$1$" SALT_B64 "$" HASH_1, "not a"},
	        {"$6$rounds=5000$salt$hash", "not a"},
	        {"$pbkdf2-sha256$", "no salt and hash"},
	        {"$pbkdf2-sha256$1", "no salt and hash"},
	        {"$pbkdf2-sha256$1$" SALT_B64, "no hash after the salt"},
	        {"$pbkdf2-sha256$1$$" HASH_1, "the salt is empty"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$", "holds 0 bytes, not 32"},
	        {"$pbkdf2-sha256$$" SALT_B64 "$" HASH_1, "iteration count ''"},
	        {"$pbkdf2-sha256$0$" SALT_B64 "$" HASH_1,
	         "iteration count '0'"},
	        {"$pbkdf2-sha256$01$" SALT_B64 "$" HASH_1, "'01'"},
	        {"$pbkdf2-sha256$-1$" SALT_B64 "$" HASH_1, "'-1'"},
	        {"$pbkdf2-sha256$+1$" SALT_B64 "$" HASH_1, "'+1'"},
	        {"$pbkdf2-sha256$ 1$" SALT_B64 "$" HASH_1, "' 1'"},
	        {"$pbkdf2-sha256$1x$" SALT_B64 "$" HASH_1, "'1x'"},
	        {"$pbkdf2-sha256$abc$" SALT_B64 "$" HASH_1, "'abc'"},
	        {"$pbkdf2-sha256$10000001$" SALT_B64 "$" HASH_1, "10000001"},
	        {"$pbkdf2-sha256$99999999999999999999$" SALT_B64 "$" HASH_1,
	         "from 1 to 10000000"},
	        {"$pbkdf2-sha256$1$c2F*dA$" HASH_1, "the salt is not base64"},
	        {"$pbkdf2-sha256$1$c2FsdA=$" HASH_1, "the salt is not base64"},
	        {"$pbkdf2-sha256$1$c2FsdAx$" HASH_1, "the salt is not base64"},
	        {"$pbkdf2-sha256$1$" SALT_B64
	         "$Eg-2z/z4syxD5yJSVsT4N6hlSMkszDVI"
	         "CAWYfLcL4Xs",
	         "the hash is not base64"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$" HASH_1 " ",
	         "the hash is not base64"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$" HASH_1 "$", "more than 4"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$" HASH_1 "$x", "more than 4"},
	        /* 31 and 33 bytes. */
	        {"$pbkdf2-sha256$1$" SALT_B64 "$Eg+2z/z4syxD5yJSVsT4N6hlSMksz"
	         "DVICAWYfLcL4Q",
	         "holds 31 bytes, not 32"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$Eg+2z/z4syxD5yJSVsT4N6hlSMksz"
	         "DVICAWYfLcL4XsA",
	         "holds 33 bytes, not 32"},
	        {"$pbkdf2-sha256$1$" SALT_B64 "$" HASH_1 HASH_1,
	         "the hash is longer than 32 bytes"},
	        /* 65 bytes of salt. */
	        {"$pbkdf2-sha256$1$"
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	         "AAAAAAAAAAAAAAAAAAAAAAA$" HASH_1,
	         "the salt is longer than 64 bytes"},
	};
	char long_one[RPC_PASSWORD_HASH_MAX + 8];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		err_clear(&e);
		if (rpc_password_verify("password", cases[i].stored, &e) !=
		            -EINVAL ||
		    strstr(e.msg, cases[i].reason) == NULL ||
		    strncmp(e.msg, "stored password hash: ", 22) != 0)
			fail_msg("case %zu '%s': code %d, message '%s'", i,
			         cases[i].stored, e.code, e.msg);
	}

	/* A stored string that long is refused before it is looked at. */
	snprintf(long_one, sizeof long_one, "%s", STORED_1);
	memset(long_one + strlen(STORED_1), 'A',
	       sizeof long_one - 1 - strlen(STORED_1));
	long_one[sizeof long_one - 1] = '\0';
	assert_int_equal(rpc_password_verify("password", long_one, &e),
	                 -EINVAL);
	assert_string_equal(e.msg,
	                    "stored password hash: longer than 191 characters");
}

static void test_verify_accepts_a_salt_of_64_bytes(void **state)
{
	/* 64 zero bytes of salt, 1 iteration, password "password": Python
	 * hashlib.pbkdf2_hmac("sha256", b"password", bytes(64), 1). */
	const char *stored =
	        "$pbkdf2-sha256$1$"
	        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	        "AAAAAAAAAAAAAAAAAAAAAA$"
	        "x8F2mXzWFLxKhvsfGb2hFxIZYlm3nvB8aY9No5m4xZE";

	(void)state;
	assert_int_equal(rpc_password_verify("password", stored, &e), 0);
}

static void test_default_iterations_take_this_long(void **state)
{
	char stored[RPC_PASSWORD_HASH_MAX];
	struct timespec start, end;
	double ms;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(rpc_password_hash("correct horse", 0, stored, &e), 0);
	clock_gettime(CLOCK_MONOTONIC, &end);
	ms = (double)(end.tv_sec - start.tv_sec) * 1e3 +
	     (double)(end.tv_nsec - start.tv_nsec) / 1e6;
	print_message("# rpc_password_hash, %d iterations: %.1f ms\n",
	              RPC_PBKDF2_ITERATIONS, ms);
	{
		char prefix[40];

		snprintf(prefix, sizeof prefix, "$pbkdf2-sha256$%d$",
		         RPC_PBKDF2_ITERATIONS);
		assert_int_equal(strncmp(stored, prefix, strlen(prefix)), 0);
	}
	assert_int_equal(rpc_password_verify("correct horse", stored, &e), 0);
}

/* ------------------------------------------------------------------------
 * Random bytes and UUIDs. */

static void test_random_bytes_fill_the_buffer(void **state)
{
	unsigned char a[64], b[64], zero[64] = {0};

	(void)state;
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	assert_int_equal(rpc_random_bytes(a, sizeof a, &e), 0);
	assert_int_equal(rpc_random_bytes(b, sizeof b, &e), 0);
	assert_memory_not_equal(a, zero, sizeof a);
	assert_memory_not_equal(a, b, sizeof a);
	assert_int_equal(rpc_random_bytes(NULL, 0, &e), 0);
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_uuid(const char *u)
{
	size_t i;

	assert_int_equal(strlen(u), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else if (i == 14)
			assert_int_equal(u[i], '4');
		else if (i == 19)
			assert_non_null(strchr("89ab", u[i]));
		else
			assert_true(is_hex_lower(u[i]));
	}
}

static int compare_uuid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_uuids_are_version_4_in_canonical_form(void **state)
{
	char u[37];
	unsigned i, seen_variant = 0;

	(void)state;
	for (i = 0; i < UUID_COUNT; i++) {
		memset(u, 'X', sizeof u);
		assert_int_equal(rpc_uuid_v4(u, &e), 0);
		check_uuid(u);
		seen_variant |= 1u << (strchr("89ab", u[19]) - "89ab");
	}
	/* All four variant digits turn up: the random bits are kept. */
	assert_int_equal(seen_variant, 0xf);
}

static void test_uuids_are_unique(void **state)
{
	char(*u)[37] = calloc(UUID_COUNT, sizeof *u);
	unsigned i;

	(void)state;
	assert_non_null(u);
	for (i = 0; i < UUID_COUNT; i++)
		assert_int_equal(rpc_uuid_v4(u[i], NULL), 0);
	qsort(u, UUID_COUNT, sizeof *u, compare_uuid);
	for (i = 1; i < UUID_COUNT; i++)
		assert_string_not_equal(u[i - 1], u[i]);
	free(u);
}

/* ------------------------------------------------------------------------
 * Base64. */

static void test_base64_matches_rfc4648_vectors(void **state)
{
	static const char *const plain[] = {"",     "f",     "fo",    "foo",
	                                    "foob", "fooba", "foobar"};
	static const char *const unpadded[] = {
	        "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	static const char *const padded[] = {
	        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	unsigned char bytes[16];
	char text[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(plain); i++) {
		n = rpc_base64_encode(plain[i], strlen(plain[i]), text);
		assert_int_equal(n, strlen(unpadded[i]));
		assert_string_equal(text, unpadded[i]);
		assert_int_equal(rpc_base64_decode(unpadded[i],
		                                   strlen(unpadded[i]), bytes,
		                                   sizeof bytes, &n),
		                 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(bytes, plain[i], n);
		n = 99;
		assert_int_equal(rpc_base64_decode(padded[i], strlen(padded[i]),
		                                   bytes, sizeof bytes, &n),
		                 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(bytes, plain[i], n);
	}
	/* The alphabet's last two characters are the standard ones. */
	bytes[0] = 0xfb;
	bytes[1] = 0xff;
	assert_int_equal(rpc_base64_encode(bytes, 2, text), 3);
	assert_string_equal(text, "+/8");
}

/* Every length from 0 to 40, against OpenSSL's encoder as an independent
 * reference. */
static void test_base64_round_trips_lengths_0_to_40(void **state)
{
	unsigned char in[40], back[40];
	char text[4 * 14 + 1], ref[4 * 14 + 1];
	size_t len, n, ref_len;

	(void)state;
	for (len = 0; len <= sizeof in; len++) {
		assert_int_equal(rpc_random_bytes(in, len, &e), 0);
		n = rpc_base64_encode(in, len, text);
		assert_int_equal(n, strlen(text));
		assert_int_equal(n, (len * 4 + 2) / 3);
		ref_len = (size_t)EVP_EncodeBlock((unsigned char *)ref, in,
		                                  (int)len);
		while (ref_len > 0 && ref[ref_len - 1] == '=')
			ref_len--;
		ref[ref_len] = '\0';
		assert_string_equal(text, ref);

		memset(back, 0, sizeof back);
		assert_int_equal(rpc_base64_decode(text, n, back, len, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, in, len);
		/* And the padded form OpenSSL writes. */
		ref_len = (size_t)EVP_EncodeBlock((unsigned char *)ref, in,
		                                  (int)len);
		assert_int_equal(rpc_base64_decode(ref, ref_len, back, len, &n),
		                 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, in, len);
	}
}

static void test_base64_decode_refuses_bad_input(void **state)
{
	static const char *const bad[] = {
	        "Z",        "Zm9vY", /* a length no bytes encode to */
	        "Zg=",      "Zg===", "Zm9v=", "Zm9vY===", "=",    "==",
	        "====",     "=Zg=",  "Z=g=",  "Zm=v", /* padding out of place */
	        "Zm9-",     "Zm9_",  "Zm9 ",  "Zm9\n",    "Zm*v", "Zm.v",
	        "Zm9v\r\n", "Zh",    "Zm9=",  "Zm9", /* non-zero bits after the
	                                                last byte */
	};
	unsigned char out[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		n = 99;
		if (rpc_base64_decode(bad[i], strlen(bad[i]), out, sizeof out,
		                      &n) != -EINVAL ||
		    n != 0)
			fail_msg("'%s' was accepted", bad[i]);
	}
	/* A NUL inside the given length is a bad character, too. */
	assert_int_equal(rpc_base64_decode("Zm\0v", 4, out, sizeof out, &n),
	                 -EINVAL);
}

static void test_base64_decode_refuses_output_that_does_not_fit(void **state)
{
	unsigned char out[6];
	size_t n = 99;

	(void)state;
	assert_int_equal(rpc_base64_decode("Zm9vYmFy", 8, out, 5, &n), -E2BIG);
	assert_int_equal(n, 0);
	assert_int_equal(rpc_base64_decode("Zm9vYmE=", 8, out, 4, &n), -E2BIG);
	assert_int_equal(rpc_base64_decode("Zm9vYmE", 7, out, 5, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(rpc_base64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(rpc_base64_decode("", 0, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
}

/* Incremental checksums (streamed uploads). */
static void test_digest_in_pieces_matches_the_known_vectors(void **state)
{
	static const struct {
		const char *algorithm, *hex;
	} vectors[] = {
	        /* of "abc": RFC 1321, FIPS 180 */
	        {"md5", "900150983cd24fb0d6963f7d28e17f72"},
	        {"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	        {"sha224",
	         "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
	        {"sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
	                   "10ff61f20015ad"},
	        {"sha384", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a"
	                   "8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
	        {"sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a"
	                   "9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d"
	                   "4423643ce80e2a9ac94fa54ca49f"},
	};
	struct rpc_digest *d;
	char hex[129];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(vectors); i++) {
		assert_int_equal(rpc_digest_new(vectors[i].algorithm, &d, &e),
		                 0);
		assert_int_equal(rpc_digest_hex_len(d), strlen(vectors[i].hex));
		assert_int_equal(rpc_digest_update(d, "a", 1, &e), 0);
		assert_int_equal(rpc_digest_update(d, "", 0, &e), 0);
		assert_int_equal(rpc_digest_update(d, "bc", 2, &e), 0);
		assert_int_equal(rpc_digest_final_hex(d, hex, sizeof hex, &e),
		                 0);
		assert_string_equal(hex, vectors[i].hex);
		/* once: a second final or a late update fails */
		assert_int_equal(rpc_digest_final_hex(d, hex, sizeof hex, &e),
		                 -EIO);
		assert_int_equal(rpc_digest_update(d, "x", 1, &e), -EIO);
		rpc_digest_free(d);
	}
}

static void test_digest_refuses_unknown_algorithms(void **state)
{
	struct rpc_digest *d = (void *)1;

	(void)state;
	assert_int_equal(rpc_digest_new("sha3-256", &d, &e), -EINVAL);
	assert_null(d);
	assert_non_null(strstr(e.msg, "sha512"));
	assert_int_equal(rpc_digest_new(NULL, &d, &e), -EINVAL);
	assert_int_equal(rpc_digest_new("SHA256", &d, &e), -EINVAL);
	rpc_digest_free(NULL);
}

static void test_digest_final_needs_room_for_the_hex(void **state)
{
	struct rpc_digest *d;
	char hex[64];

	(void)state;
	assert_int_equal(rpc_digest_new("sha256", &d, &e), 0);
	assert_int_equal(rpc_digest_final_hex(d, hex, sizeof hex, &e), -EIO);
	rpc_digest_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_digest_in_pieces_matches_the_known_vectors),
	        cmocka_unit_test(test_digest_refuses_unknown_algorithms),
	        cmocka_unit_test(test_digest_final_needs_room_for_the_hex),
	        cmocka_unit_test(test_sha256_of_abc_is_the_fips_vector),
	        cmocka_unit_test(test_hmac_rfc4231_case_1),
	        cmocka_unit_test(test_hmac_rfc4231_case_2_short_key),
	        cmocka_unit_test(test_hmac_rfc4231_case_3),
	        cmocka_unit_test(test_hmac_rfc4231_case_4),
	        cmocka_unit_test(
	                test_hmac_rfc4231_case_6_key_longer_than_a_block),
	        cmocka_unit_test(test_hmac_rfc4231_case_7_key_and_data_longer),
	        cmocka_unit_test(test_hmac_of_nothing_under_no_key),
	        cmocka_unit_test(test_const_equal_compares_every_byte),
	        cmocka_unit_test(
	                test_verify_accepts_the_pbkdf2_vector_of_1_iteration),
	        cmocka_unit_test(
	                test_verify_accepts_the_pbkdf2_vector_of_4096_iterations),
	        cmocka_unit_test(test_verify_rejects_a_wrong_password),
	        cmocka_unit_test(
	                test_verify_rejects_a_hash_differing_in_one_byte),
	        cmocka_unit_test(test_hash_then_verify_round_trips),
	        cmocka_unit_test(test_hash_of_an_empty_password_verifies),
	        cmocka_unit_test(
	                test_hashes_of_one_password_differ_by_their_salt),
	        cmocka_unit_test(test_hash_refuses_iterations_out_of_range),
	        cmocka_unit_test(test_over_long_passwords_are_refused),
	        cmocka_unit_test(test_null_arguments_are_refused),
	        cmocka_unit_test(test_verify_refuses_malformed_stored_hashes),
	        cmocka_unit_test(test_verify_accepts_a_salt_of_64_bytes),
	        cmocka_unit_test(test_default_iterations_take_this_long),
	        cmocka_unit_test(test_random_bytes_fill_the_buffer),
	        cmocka_unit_test(test_uuids_are_version_4_in_canonical_form),
	        cmocka_unit_test(test_uuids_are_unique),
	        cmocka_unit_test(test_base64_matches_rfc4648_vectors),
	        cmocka_unit_test(test_base64_round_trips_lengths_0_to_40),
	        cmocka_unit_test(test_base64_decode_refuses_bad_input),
	        cmocka_unit_test(
	                test_base64_decode_refuses_output_that_does_not_fit),
	};

	return cmocka_run_group_tests_name("rpc/secret", tests, NULL, NULL);
}
