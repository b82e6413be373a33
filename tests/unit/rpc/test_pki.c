/* Unit tests for the cluster CA, node certificates, fingerprints,
 * revocation and key files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rpc/rpc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define DAY 86400

/* One CA and one node key for the whole group: key generation is the slow
 * part, and no test changes them. */
static struct buf ca_key, ca_cert, node_key;
static struct err e;

static int group_setup(void **state)
{
	(void)state;
	buf_init(&ca_key, RPC_PKI_PEM_MAX);
	buf_init(&ca_cert, RPC_PKI_PEM_MAX);
	buf_init(&node_key, RPC_PKI_PEM_MAX);
	if (rpc_pki_ca_create("prod", 0, &ca_key, &ca_cert, &e) != 0)
		return -1;
	return rpc_pki_key_create(&node_key, &e);
}

static int group_teardown(void **state)
{
	(void)state;
	rpc_pki_key_pem_free(&ca_key);
	rpc_pki_key_pem_free(&node_key);
	buf_free(&ca_cert);
	return 0;
}

static X509 *cert_from(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x;

	assert_non_null(bio);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *key_from(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	assert_non_null(bio);
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(k);
	return k;
}

static void assert_p256(EVP_PKEY *key)
{
	char group[64];
	size_t len;

	assert_true(EVP_PKEY_is_a(key, "EC"));
	assert_int_equal(
	        EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
	assert_string_equal(group, "prime256v1");
}

/* Issues a certificate for name with addresses, through the public API. */
static void issue(const char *name, const char *const *addresses, unsigned n,
                  unsigned days, struct buf *cert)
{
	struct buf csr;

	buf_init(&csr, RPC_PKI_PEM_MAX);
	assert_int_equal(
	        rpc_pki_csr_create(node_key.data, name, addresses, n, &csr, &e),
	        0);
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, csr.data,
	                                  name, days, cert, &e),
	                 0);
	buf_free(&csr);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

static void test_ca_is_a_p256_self_signed_ca_with_pathlen_0(void **state)
{
	X509 *x = cert_from(ca_cert.data);
	EVP_PKEY *key = key_from(ca_key.data);
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	BIGNUM *serial;
	char cn[128];
	int crit = -1;
	time_t now = time(NULL);

	(void)state;
	assert_p256(key);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_int_equal(X509_verify(x, key), 1);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	                          sizeof cn);
	assert_string_equal(cn, "cairn CA prod");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x),
	                               X509_get_issuer_name(x)),
	                 0);

	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_false(BN_is_zero(serial));
	assert_false(BN_is_negative(serial));
	assert_true(BN_num_bits(serial) > 64 && BN_num_bits(serial) <= 128);
	BN_free(serial);

	/* 5 minutes of skew before, 10 years after. */
	assert_true(labs((long)(asn1_to_time(X509_get0_notBefore(x)) -
	                        (now - 300))) < 60);
	assert_true(labs((long)(asn1_to_time(X509_get0_notAfter(x)) -
	                        (now + 3650L * DAY))) < 60);
	EVP_PKEY_free(key);
	X509_free(x);
}

static void test_ca_create_refuses_a_bad_cluster_name(void **state)
{
	struct buf key, cert;
	const char *bad[] = {"",
	                     "-prod",
	                     "pr od",
	                     "prod/1",
	                     "a\nb",
	                     "0123456789012345678901234567890123456789"
	                     "0123456789012345"};
	size_t i;

	(void)state;
	buf_init(&key, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(rpc_pki_ca_create(bad[i], 0, &key, &cert, &e),
		                 -EINVAL);
		assert_non_null(strstr(e.msg, "create cluster CA"));
		assert_int_equal(key.len, 0);
	}
	assert_int_equal(rpc_pki_ca_create(NULL, 0, &key, &cert, &e), -EINVAL);
	assert_int_equal(rpc_pki_ca_create("prod", RPC_PKI_DAYS_MAX + 1, &key,
	                                   &cert, &e),
	                 -ERANGE);
	/* The longest allowed name still fits the 64-byte CN. */
	assert_int_equal(rpc_pki_ca_create("0123456789012345678901234567890123"
	                                   "456789012345678901234",
	                                   1, &key, &cert, &e),
	                 0);
	rpc_pki_key_pem_free(&key);
	buf_free(&cert);
}

static void test_node_key_is_p256(void **state)
{
	EVP_PKEY *key = key_from(node_key.data);

	(void)state;
	assert_p256(key);
	assert_non_null(strstr(node_key.data, "BEGIN PRIVATE KEY"));
	EVP_PKEY_free(key);
}

/* The certificate's subjectAltNames, as "DNS:x" / "IP:y", comma-joined. */
static void sans_text(X509 *x, char *out, size_t size)
{
	GENERAL_NAMES *gens =
	        X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char ip[64];
	size_t n = 0;
	int i;

	assert_non_null(gens);
	out[0] = '\0';
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int len;

		if (g->type == GEN_DNS) {
			n += (size_t)snprintf(
			        out + n, size - n, "%sDNS:%s", i ? "," : "",
			        ASN1_STRING_get0_data(g->d.dNSName));
		} else {
			assert_int_equal(g->type, GEN_IPADD);
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip,
			          sizeof ip);
			n += (size_t)snprintf(out + n, size - n, "%sIP:%s",
			                      i ? "," : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
}

static void test_signed_cert_verifies_with_its_name_and_sans(void **state)
{
	const char *addresses[] = {"10.0.0.2", "fd00::2"};
	char name[RPC_NODE_NAME_MAX + 1];
	char sans[256];
	struct buf cert;
	X509 *x, *ca;
	EVP_PKEY *key;
	BASIC_CONSTRAINTS *bc;
	int crit = -1;

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	issue("n2", addresses, 2, 0, &cert);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 0);
	assert_string_equal(name, "n2");

	x = cert_from(cert.data);
	ca = cert_from(ca_cert.data);
	key = key_from(node_key.data);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
	sans_text(x, sans, sizeof sans);
	assert_string_equal(sans, "DNS:n2,IP:10.0.0.2,IP:fd00::2");
	/* What rpc/tls.c's client checks when it dials an address. */
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.2", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "fd00::2", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.3", 0), 0);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x),
	                 XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_true(labs((long)(asn1_to_time(X509_get0_notAfter(x)) -
	                        (time(NULL) + 3650L * DAY))) < 60);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(x);
	buf_free(&cert);
}

static void test_cert_without_addresses_names_only_the_node(void **state)
{
	char name[RPC_NODE_NAME_MAX + 1];
	char sans[256];
	struct buf cert;
	X509 *x;

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	issue("n3", NULL, 0, 30, &cert);
	x = cert_from(cert.data);
	sans_text(x, sans, sizeof sans);
	assert_string_equal(sans, "DNS:n3");
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 0);
	assert_string_equal(name, "n3");
	X509_free(x);
	buf_free(&cert);
}

static void test_verify_refuses_a_cert_from_a_foreign_ca(void **state)
{
	struct buf other_key, other_cert, csr, cert;
	char name[RPC_NODE_NAME_MAX + 1] = "x";

	(void)state;
	buf_init(&other_key, RPC_PKI_PEM_MAX);
	buf_init(&other_cert, RPC_PKI_PEM_MAX);
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	/* Same cluster name, same CN: only the key differs. */
	assert_int_equal(
	        rpc_pki_ca_create("prod", 0, &other_key, &other_cert, &e), 0);
	assert_int_equal(
	        rpc_pki_csr_create(node_key.data, "n2", NULL, 0, &csr, &e), 0);
	assert_int_equal(rpc_pki_csr_sign(other_key.data, other_cert.data,
	                                  csr.data, "n2", 0, &cert, &e),
	                 0);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 -EKEYREJECTED);
	assert_string_equal(e.msg, "verify: certificate of node n2: unable to "
	                           "get local issuer certificate");
	assert_string_equal(name, "");
	/* And the other CA's own certificate is no node certificate. */
	assert_int_equal(rpc_pki_verify(ca_cert.data, other_cert.data, NULL, 0,
	                                name, sizeof name, &e),
	                 -EKEYREJECTED);
	assert_int_equal(rpc_pki_verify(other_cert.data, other_cert.data, NULL,
	                                0, name, sizeof name, &e),
	                 -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "is a CA"));
	rpc_pki_key_pem_free(&other_key);
	buf_free(&other_cert);
	buf_free(&csr);
	buf_free(&cert);
}

static void test_verify_refuses_an_expired_cert(void **state)
{
	struct clock_fake fake;
	char name[RPC_NODE_NAME_MAX + 1];
	struct buf cert;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	issue("n2", NULL, 0, 1, &cert);
	/* Still good half a day later... */
	clock_fake_init(&fake, 0, (now + DAY / 2) * 1000);
	rpc__pki_clock_set(&fake.clock);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 0);
	/* ...and expired two days later. */
	clock_fake_advance(&fake, (uint64_t)DAY * 3 / 2 * 1000);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 -EKEYEXPIRED);
	rpc__pki_clock_set(NULL);
	assert_string_equal(e.msg, "verify: certificate of node n2: "
	                           "certificate has expired");
	buf_free(&cert);
}

static void test_verify_refuses_a_cert_not_yet_valid(void **state)
{
	struct clock_fake fake;
	char name[RPC_NODE_NAME_MAX + 1];
	struct buf cert;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	clock_fake_init(&fake, 0, (now + 10 * DAY) * 1000);
	rpc__pki_clock_set(&fake.clock);
	issue("n2", NULL, 0, 0, &cert);
	rpc__pki_clock_set(NULL);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 -EKEYEXPIRED);
	assert_non_null(strstr(e.msg, "certificate is not yet valid"));
	buf_free(&cert);
}

static void test_skew_of_a_few_minutes_is_tolerated(void **state)
{
	struct clock_fake fake;
	char name[RPC_NODE_NAME_MAX + 1];
	struct buf cert;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	/* Issued by a node whose clock runs 4 minutes ahead. */
	clock_fake_init(&fake, 0, (now + 240) * 1000);
	rpc__pki_clock_set(&fake.clock);
	issue("n2", NULL, 0, 0, &cert);
	rpc__pki_clock_set(NULL);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 0);
	buf_free(&cert);
}

static void test_verify_refuses_a_revoked_cert(void **state)
{
	char fp[RPC_FINGERPRINT_MAX], other_fp[RPC_FINGERPRINT_MAX];
	char name[RPC_NODE_NAME_MAX + 1];
	char expected[256];
	struct buf cert, other;
	const char *revoked[3];

	(void)state;
	buf_init(&cert, RPC_PKI_PEM_MAX);
	buf_init(&other, RPC_PKI_PEM_MAX);
	issue("n2", NULL, 0, 0, &cert);
	issue("n4", NULL, 0, 0, &other);
	assert_int_equal(rpc_pki_fingerprint(cert.data, fp, &e), 0);
	assert_int_equal(rpc_pki_fingerprint(other.data, other_fp, &e), 0);

	revoked[0] = other_fp;
	revoked[1] = "not a fingerprint";
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, revoked, 2,
	                                name, sizeof name, &e),
	                 0);
	revoked[2] = fp;
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, revoked, 3,
	                                name, sizeof name, &e),
	                 -EKEYREVOKED);
	snprintf(expected, sizeof expected,
	         "verify: certificate %s of node n2 is revoked", fp);
	assert_string_equal(e.msg, expected);
	assert_string_equal(name, "");
	/* A new certificate for the same node and key is not revoked. */
	buf_reset(&cert);
	issue("n2", NULL, 0, 0, &cert);
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, revoked, 3,
	                                name, sizeof name, &e),
	                 0);
	buf_free(&cert);
	buf_free(&other);
}

static void test_sign_refuses_a_request_for_another_name(void **state)
{
	struct buf csr, cert;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	assert_int_equal(
	        rpc_pki_csr_create(node_key.data, "n2", NULL, 0, &csr, &e), 0);
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, csr.data,
	                                  "n3", 0, &cert, &e),
	                 -EKEYREJECTED);
	assert_string_equal(e.msg, "sign certificate for node n3: the request "
	                           "names node n2, not n3");
	assert_int_equal(cert.len, 0);
	buf_free(&csr);
	buf_free(&cert);
}

/* A request made by hand, as a hostile joiner would: subject CN, the given
 * subjectAltName text (NULL: none) and any extra extensions. */
static void craft_csr(EVP_PKEY *key, const char *cn, const char *san,
                      const int *nids, const char *const *values,
                      unsigned n_extra, struct buf *out)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_REQ *req = X509_REQ_new();
	X509_EXTENSION *ext;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	unsigned i;

	assert_non_null(exts);
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	                           MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                           -1, 0);
	if (san != NULL) {
		ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name,
		                           san);
		assert_non_null(ext);
		sk_X509_EXTENSION_push(exts, ext);
	}
	for (i = 0; i < n_extra; i++) {
		ext = X509V3_EXT_nconf_nid(NULL, NULL, nids[i], values[i]);
		assert_non_null(ext);
		sk_X509_EXTENSION_push(exts, ext);
	}
	if (sk_X509_EXTENSION_num(exts) > 0)
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	buf_reset(out);
	assert_int_equal(buf_append(out, data, (size_t)len), 0);
	BIO_free(bio);
	X509_REQ_free(req);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void test_sign_copies_only_the_sans_from_the_request(void **state)
{
	static const int nids[] = {NID_basic_constraints, NID_key_usage,
	                           NID_ext_key_usage, NID_netscape_comment,
	                           NID_name_constraints};
	static const char *const values[] = {
	        "critical,CA:TRUE", "critical,keyCertSign,cRLSign",
	        "codeSigning", "smuggled", "permitted;DNS:evil.example"};
	EVP_PKEY *key = key_from(node_key.data);
	char name[RPC_NODE_NAME_MAX + 1];
	char sans[256];
	struct buf csr, cert;
	X509 *x;
	int i, nid;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	craft_csr(key, "n2", "DNS:n2,IP:10.0.0.2", nids, values, 5, &csr);
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, csr.data,
	                                  "n2", 0, &cert, &e),
	                 0);
	x = cert_from(cert.data);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x),
	                 XKU_SSL_SERVER | XKU_SSL_CLIENT);
	sans_text(x, sans, sizeof sans);
	assert_string_equal(sans, "DNS:n2,IP:10.0.0.2");
	/* Exactly our six extensions, none of the request's extras. */
	assert_int_equal(X509_get_ext_count(x), 6);
	for (i = 0; i < X509_get_ext_count(x); i++) {
		nid = OBJ_obj2nid(
		        X509_EXTENSION_get_object(X509_get_ext(x, i)));
		assert_true(nid == NID_basic_constraints ||
		            nid == NID_key_usage || nid == NID_ext_key_usage ||
		            nid == NID_subject_key_identifier ||
		            nid == NID_authority_key_identifier ||
		            nid == NID_subject_alt_name);
	}
	assert_int_equal(rpc_pki_verify(ca_cert.data, cert.data, NULL, 0, name,
	                                sizeof name, &e),
	                 0);
	X509_free(x);
	EVP_PKEY_free(key);
	buf_free(&csr);
	buf_free(&cert);
}

static void test_sign_refuses_requests_with_other_names(void **state)
{
	static const struct {
		const char *cn, *san, *why;
	} cases[] = {
	        {"n2", NULL, "no subjectAltName"},
	        {"n2", "DNS:n2,DNS:n3", "more than one DNS"},
	        {"n2", "DNS:n3", "not the node name n2"},
	        {"n2", "IP:10.0.0.2", "no DNS subjectAltName"},
	        {"n2", "DNS:n2,URI:https://evil.example/", "only DNS and IP"},
	        {"n2", "DNS:n2,email:a@b.example", "only DNS and IP"},
	        {"n2", "DNS:n2,IP:10.0.0.2,IP:10.0.0.2", "appears twice"},
	        {"n_2", "DNS:n_2", "request subject"},
	        {"n2", "DNS:n2,otherName:1.2.3.4;UTF8:x", "only DNS and IP"},
	};
	EVP_PKEY *key = key_from(node_key.data);
	struct buf csr, cert;
	size_t i;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		craft_csr(key, cases[i].cn, cases[i].san, NULL, NULL, 0, &csr);
		assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data,
		                                  csr.data, "n2", 0, &cert, &e),
		                 -EKEYREJECTED);
		if (strstr(e.msg, cases[i].why) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg,
			         cases[i].why);
		assert_int_equal(cert.len, 0);
	}
	EVP_PKEY_free(key);
	buf_free(&csr);
	buf_free(&cert);
}

static void test_sign_refuses_a_tampered_request(void **state)
{
	EVP_PKEY *key = key_from(node_key.data);
	EVP_PKEY *other = EVP_EC_gen("P-256");
	struct buf csr, cert;
	X509_REQ *req;
	BIO *bio;
	char *data;
	long len;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	craft_csr(key, "n2", "DNS:n2", NULL, NULL, 0, &csr);
	/* Swap in another public key after signing. */
	bio = BIO_new_mem_buf(csr.data, -1);
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_pubkey(req, other), 1);
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	buf_reset(&csr);
	assert_int_equal(buf_append(&csr, data, (size_t)len), 0);
	BIO_free(bio);
	X509_REQ_free(req);

	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, csr.data,
	                                  "n2", 0, &cert, &e),
	                 -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "signature does not verify"));
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
	buf_free(&csr);
	buf_free(&cert);
}

static void test_sign_refuses_a_key_other_than_p256(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	struct buf csr, cert;

	(void)state;
	assert_non_null(key);
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	craft_csr(key, "n2", "DNS:n2", NULL, NULL, 0, &csr);
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, csr.data,
	                                  "n2", 0, &cert, &e),
	                 -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "not ECDSA P-256"));
	EVP_PKEY_free(key);
	buf_free(&csr);
	buf_free(&cert);
}

static void test_sign_refuses_a_ca_key_that_does_not_match(void **state)
{
	struct buf csr, cert;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	buf_init(&cert, RPC_PKI_PEM_MAX);
	assert_int_equal(
	        rpc_pki_csr_create(node_key.data, "n2", NULL, 0, &csr, &e), 0);
	assert_int_equal(rpc_pki_csr_sign(node_key.data, ca_cert.data, csr.data,
	                                  "n2", 0, &cert, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "CA key does not match"));
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, "garbage", csr.data,
	                                  "n2", 0, &cert, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "CA certificate is not a PEM"));
	assert_int_equal(rpc_pki_csr_sign(ca_key.data, ca_cert.data, "garbage",
	                                  "n2", 0, &cert, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "not a PEM certificate request"));
	buf_free(&csr);
	buf_free(&cert);
}

static void test_csr_create_refuses_bad_names_and_addresses(void **state)
{
	static const char *const bad_names[] = {
	        "",
	        "-n2",
	        "n2-",
	        "n_2",
	        "n2.example",
	        "n 2",
	        "n2\n",
	        "0123456789012345678901234567890123456789012345678901234567890"
	        "123"};
	static const char *const bad_addresses[] = {
	        "",           "n2",           "n2.example",  "10.0.0.1:8016",
	        "10.0.0.256", "1.2.3",        "10.0.0.1/24", " 10.0.0.1",
	        "[fd00::1]",  "fd00::1%eth0", "fd00:::1",    "::g"};
	const char *pair[2] = {"10.0.0.1", "10.0.0.1"};
	const char *many[RPC_PKI_ADDRESSES_MAX + 1];
	char storage[RPC_PKI_ADDRESSES_MAX + 1][16];
	struct buf csr;
	size_t i;

	(void)state;
	buf_init(&csr, RPC_PKI_PEM_MAX);
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad_names); i++) {
		assert_int_equal(rpc_pki_csr_create(node_key.data, bad_names[i],
		                                    NULL, 0, &csr, &e),
		                 -EINVAL);
		assert_non_null(strstr(e.msg, "node name"));
	}
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad_addresses); i++) {
		assert_int_equal(rpc_pki_csr_create(node_key.data, "n2",
		                                    &bad_addresses[i], 1, &csr,
		                                    &e),
		                 -EINVAL);
		assert_non_null(strstr(e.msg, "not an IPv4 or IPv6 address"));
		assert_int_equal(csr.len, 0);
	}
	assert_int_equal(
	        rpc_pki_csr_create(node_key.data, "n2", pair, 2, &csr, &e),
	        -EINVAL);
	assert_non_null(strstr(e.msg, "appears twice"));
	for (i = 0; i < CAIRN_ARRAY_SIZE(many); i++) {
		snprintf(storage[i], sizeof storage[i], "10.0.0.%zu", i + 1);
		many[i] = storage[i];
	}
	assert_int_equal(rpc_pki_csr_create(node_key.data, "n2", many,
	                                    RPC_PKI_ADDRESSES_MAX + 1, &csr,
	                                    &e),
	                 -EINVAL);
	assert_int_equal(rpc_pki_csr_create(node_key.data, "n2", many,
	                                    RPC_PKI_ADDRESSES_MAX, &csr, &e),
	                 0);
	assert_int_equal(rpc_pki_csr_create("garbage", "n2", NULL, 0, &csr, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "node key is not a PEM private key"));
	buf_free(&csr);
}

static void test_fingerprints_are_stable_and_differ(void **state)
{
	char fp1[RPC_FINGERPRINT_MAX], fp2[RPC_FINGERPRINT_MAX];
	char fp_ca[RPC_FINGERPRINT_MAX], expected[RPC_FINGERPRINT_MAX];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len, i;
	struct buf a, b;
	X509 *x;

	(void)state;
	buf_init(&a, RPC_PKI_PEM_MAX);
	buf_init(&b, RPC_PKI_PEM_MAX);
	/* Same name, same key: still two certificates, two fingerprints. */
	issue("n2", NULL, 0, 0, &a);
	issue("n2", NULL, 0, 0, &b);
	assert_int_equal(rpc_pki_fingerprint(a.data, fp1, &e), 0);
	assert_int_equal(rpc_pki_fingerprint(a.data, fp2, &e), 0);
	assert_string_equal(fp1, fp2);
	assert_int_equal(strlen(fp1), RPC_FINGERPRINT_TEXT_LEN);
	assert_int_equal(rpc_pki_fingerprint_check(fp1, &e), 0);
	assert_int_equal(rpc_pki_fingerprint(b.data, fp2, &e), 0);
	assert_string_not_equal(fp1, fp2);
	assert_int_equal(rpc_pki_fingerprint(ca_cert.data, fp_ca, &e), 0);
	assert_string_not_equal(fp1, fp_ca);

	/* It is the SHA-256 of the DER, "sha256:" + lowercase hex. */
	x = cert_from(a.data);
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
	strcpy(expected, "sha256:");
	for (i = 0; i < len; i++)
		sprintf(expected + 7 + 2 * i, "%02x", md[i]);
	assert_string_equal(fp1, expected);
	X509_free(x);

	assert_int_equal(rpc_pki_fingerprint("garbage", fp1, &e), -EINVAL);
	assert_string_equal(fp1, "");
	buf_free(&a);
	buf_free(&b);
}

static void test_fingerprint_check_wants_the_canonical_form(void **state)
{
	const char *good = "sha256:00112233445566778899aabbccddeeff"
	                   "00112233445566778899aabbccddeeff";
	const char *bad[] = {
	        "",
	        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	        "sha256:00112233445566778899AABBCCDDEEFF"
	        "00112233445566778899aabbccddeeff",
	        "sha256:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
	        "sha256:00112233445566778899aabbccddeeff"
	        "00112233445566778899aabbccddeef",
	        "sha256:00112233445566778899aabbccddeeff"
	        "00112233445566778899aabbccddeeff0",
	        "sha1:00112233445566778899aabbccddeeff"
	        "00112233445566778899aabbccddeeff",
	        "sha256:00112233445566778899aabbccddeeff"
	        "00112233445566778899aabbccddeefg",
	};
	size_t i;

	(void)state;
	assert_int_equal(rpc_pki_fingerprint_check(good, &e), 0);
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(rpc_pki_fingerprint_check(bad[i], &e),
		                 -EINVAL);
		assert_non_null(strstr(e.msg, "64 lowercase hex"));
	}
	assert_int_equal(rpc_pki_fingerprint_check(NULL, &e), -EINVAL);
}

static void test_fingerprints_equal_compares_whole_strings(void **state)
{
	char a[] = "sha256:00112233445566778899aabbccddeeff"
	           "00112233445566778899aabbccddeeff";
	char b[sizeof a];

	(void)state;
	memcpy(b, a, sizeof a);
	assert_true(rpc_pki_fingerprints_equal(a, b));
	b[sizeof b - 2] = '0';
	assert_false(rpc_pki_fingerprints_equal(a, b));
	b[sizeof b - 2] = '\0';
	assert_false(rpc_pki_fingerprints_equal(a, b));
	assert_false(rpc_pki_fingerprints_equal(a, NULL));
	assert_false(rpc_pki_fingerprints_equal("", ""));
}

/* ------------------------------------------------------------------------
 * Key files, each test in its own directory. */

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/cairn-test-pki-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown_dir(void **state)
{
	(void)state;
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void in_dir(char *path, size_t size, const char *name)
{
	snprintf(path, size, "%s/%s", tmpdir, name);
}

static int count_entries(void)
{
	char cmd[128];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", tmpdir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_key_file_is_written_0600_and_read_back(void **state)
{
	char path[128];
	struct buf back;
	struct stat st;
	mode_t old = umask(0);

	(void)state;
	in_dir(path, sizeof path, "node.key");
	buf_init(&back, RPC_PKI_PEM_MAX);
	/* Even with umask 0 the key is never readable by others. */
	assert_int_equal(rpc_pki_key_file_write(path, node_key.data, &e), 0);
	umask(old);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(rpc_pki_key_file_check(path, &e), 0);
	assert_int_equal(rpc_pki_key_file_read(path, &back, &e), 0);
	assert_string_equal(back.data, node_key.data);
	assert_int_equal(count_entries(), 1);

	/* Replacing keeps the mode and leaves no temporary file. */
	assert_int_equal(rpc_pki_key_file_write(path, ca_key.data, &e), 0);
	assert_int_equal(rpc_pki_key_file_read(path, &back, &e), 0);
	assert_string_equal(back.data, ca_key.data);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(count_entries(), 1);
	rpc_pki_key_pem_free(&back);
}

static void test_key_file_check_refuses_0644(void **state)
{
	char path[128], expected[512];
	struct buf back;

	(void)state;
	in_dir(path, sizeof path, "node.key");
	buf_init(&back, RPC_PKI_PEM_MAX);
	assert_int_equal(rpc_pki_key_file_write(path, node_key.data, &e), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(rpc_pki_key_file_check(path, &e), -EPERM);
	snprintf(expected, sizeof expected,
	         "key file %s has mode 0644: group or others may access it; "
	         "it must be 0600 (chmod 600 %s)",
	         path, path);
	assert_string_equal(e.msg, expected);
	assert_int_equal(rpc_pki_key_file_read(path, &back, &e), -EPERM);
	assert_int_equal(back.len, 0);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(rpc_pki_key_file_check(path, &e), -EPERM);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(rpc_pki_key_file_check(path, &e), 0);
	buf_free(&back);
}

static void test_key_files_refuse_symbolic_links(void **state)
{
	char path[128], target[128], link_path[128];
	struct buf back;
	struct stat st;

	(void)state;
	in_dir(target, sizeof target, "elsewhere");
	in_dir(link_path, sizeof link_path, "node.key");
	buf_init(&back, RPC_PKI_PEM_MAX);
	assert_int_equal(rpc_pki_key_file_write(target, "old", &e), 0);
	assert_int_equal(symlink(target, link_path), 0);

	assert_int_equal(rpc_pki_key_file_write(link_path, node_key.data, &e),
	                 -ELOOP);
	assert_non_null(strstr(e.msg, link_path));
	assert_non_null(strstr(e.msg, "symbolic link"));
	assert_int_equal(rpc_pki_key_file_read(target, &back, &e), 0);
	assert_string_equal(back.data, "old");
	assert_int_equal(lstat(link_path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	assert_int_equal(rpc_pki_key_file_check(link_path, &e), -ELOOP);
	assert_non_null(strstr(e.msg, "symbolic link"));
	assert_int_equal(rpc_pki_key_file_read(link_path, &back, &e), -ELOOP);

	in_dir(path, sizeof path, "missing.key");
	assert_int_equal(rpc_pki_key_file_check(path, &e), -ENOENT);
	assert_non_null(strstr(e.msg, path));
	assert_int_equal(rpc_pki_key_file_check(tmpdir, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not a regular file"));
	rpc_pki_key_pem_free(&back);
}

static void test_key_file_write_fails_cleanly_in_a_missing_dir(void **state)
{
	char path[128];

	(void)state;
	in_dir(path, sizeof path, "no/such/dir/node.key");
	assert_int_equal(rpc_pki_key_file_write(path, node_key.data, &e),
	                 -ENOENT);
	assert_non_null(strstr(e.msg, "key file"));
	assert_int_equal(count_entries(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_ca_is_a_p256_self_signed_ca_with_pathlen_0),
	        cmocka_unit_test(test_ca_create_refuses_a_bad_cluster_name),
	        cmocka_unit_test(test_node_key_is_p256),
	        cmocka_unit_test(
	                test_signed_cert_verifies_with_its_name_and_sans),
	        cmocka_unit_test(
	                test_cert_without_addresses_names_only_the_node),
	        cmocka_unit_test(test_verify_refuses_a_cert_from_a_foreign_ca),
	        cmocka_unit_test(test_verify_refuses_an_expired_cert),
	        cmocka_unit_test(test_verify_refuses_a_cert_not_yet_valid),
	        cmocka_unit_test(test_skew_of_a_few_minutes_is_tolerated),
	        cmocka_unit_test(test_verify_refuses_a_revoked_cert),
	        cmocka_unit_test(test_sign_refuses_a_request_for_another_name),
	        cmocka_unit_test(
	                test_sign_copies_only_the_sans_from_the_request),
	        cmocka_unit_test(test_sign_refuses_requests_with_other_names),
	        cmocka_unit_test(test_sign_refuses_a_tampered_request),
	        cmocka_unit_test(test_sign_refuses_a_key_other_than_p256),
	        cmocka_unit_test(
	                test_sign_refuses_a_ca_key_that_does_not_match),
	        cmocka_unit_test(
	                test_csr_create_refuses_bad_names_and_addresses),
	        cmocka_unit_test(test_fingerprints_are_stable_and_differ),
	        cmocka_unit_test(
	                test_fingerprint_check_wants_the_canonical_form),
	        cmocka_unit_test(
	                test_fingerprints_equal_compares_whole_strings),
	        cmocka_unit_test_setup_teardown(
	                test_key_file_is_written_0600_and_read_back, setup_dir,
	                teardown_dir),
	        cmocka_unit_test_setup_teardown(
	                test_key_file_check_refuses_0644, setup_dir,
	                teardown_dir),
	        cmocka_unit_test_setup_teardown(
	                test_key_files_refuse_symbolic_links, setup_dir,
	                teardown_dir),
	        cmocka_unit_test_setup_teardown(
	                test_key_file_write_fails_cleanly_in_a_missing_dir,
	                setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests_name("rpc/pki", tests, group_setup,
	                                   group_teardown);
}
