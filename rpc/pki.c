/* The cluster's identity: its CA, node keys, requests and certificates,
 * fingerprints, revocation checks and 0600 key files, in PEM text. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mkostemp */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rpc/internal.h"
#include "rpc/rpc.h"

#define SKEW_SECONDS  300 /* notBefore lies this far back */
#define SERIAL_BYTES  16
#define CA_CN_PREFIX  "cairn CA "
#define IP_MAX_BYTES  16
#define SECONDS_A_DAY 86400

static struct clock *pki_clock;

void rpc__pki_clock_set(struct clock *clock)
{
	pki_clock = clock;
}

static time_t pki_now(void)
{
	if (pki_clock != NULL)
		return (time_t)(clock_wall_ms(pki_clock) / 1000);
	return time(NULL);
}

/* Sets e from the printf-style context plus OpenSSL's last reason, and
 * empties OpenSSL's per-thread error queue so that nothing stale leaks into
 * the next caller's message. */
static int ossl_fail(struct err *e, int code, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);

static int ossl_fail(struct err *e, int code, const char *fmt, ...)
{
	char what[ERR_MSG_MAX];
	char reason[256] = "";
	unsigned long ossl_err = ERR_peek_last_error();
	const char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (ossl_err != 0) {
		text = ERR_reason_error_string(ossl_err);
		if (text != NULL)
			snprintf(reason, sizeof reason, "%s", text);
		else
			ERR_error_string_n(ossl_err, reason, sizeof reason);
	}
	ERR_clear_error();
	return err_set(e, code, "%s%s%s", what, reason[0] ? ": " : "", reason);
}

/* ------------------------------------------------------------------------
 * Names and addresses. */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

int rpc_pki_node_name_check(const char *name, struct err *e)
{
	size_t len, i;

	if (name == NULL || name[0] == '\0')
		return err_set(e, -EINVAL, "node name is empty");
	len = strnlen(name, RPC_NODE_NAME_MAX + 1);
	if (len > RPC_NODE_NAME_MAX)
		return err_set(e, -EINVAL,
		               "node name is longer than %d characters",
		               RPC_NODE_NAME_MAX);
	for (i = 0; i < len; i++) {
		if (!is_alnum(name[i]) && name[i] != '-')
			return err_set(e, -EINVAL,
			               "node name '%s': only letters, digits "
			               "and '-' are allowed (a DNS label)",
			               name);
	}
	if (name[0] == '-' || name[len - 1] == '-')
		return err_set(e, -EINVAL,
		               "node name '%s' may not start or end with '-'",
		               name);
	return 0;
}

int rpc_pki_cluster_name_check(const char *name, struct err *e)
{
	size_t len, i;

	if (name == NULL || name[0] == '\0')
		return err_set(e, -EINVAL, "cluster name is empty");
	len = strnlen(name, RPC_CLUSTER_NAME_MAX + 1);
	if (len > RPC_CLUSTER_NAME_MAX)
		return err_set(e, -EINVAL,
		               "cluster name is longer than %d characters",
		               RPC_CLUSTER_NAME_MAX);
	if (!is_alnum(name[0]))
		return err_set(e, -EINVAL,
		               "cluster name '%s' must start with a letter or "
		               "digit",
		               name);
	for (i = 0; i < len; i++) {
		if (!is_alnum(name[i]) && strchr("._-", name[i]) == NULL)
			return err_set(
			        e, -EINVAL,
			        "cluster name '%s': only letters, digits, "
			        "'.', '_' and '-' are allowed",
			        name);
	}
	return 0;
}

/* An IP literal without port or zone; out receives 4 or 16 bytes. */
static int ip_parse(const char *text, unsigned char out[IP_MAX_BYTES], int *len,
                    struct err *e)
{
	if (text != NULL && strnlen(text, 64) < 64) {
		if (inet_pton(AF_INET, text, out) == 1) {
			*len = 4;
			return 0;
		}
		if (inet_pton(AF_INET6, text, out) == 1) {
			*len = 16;
			return 0;
		}
	}
	return err_set(e, -EINVAL,
	               "address '%.64s' is not an IPv4 or IPv6 address "
	               "(no port, no brackets)",
	               text == NULL ? "(null)" : text);
}

/* ------------------------------------------------------------------------
 * PEM in and out. */

static int pem_check(const char *pem, const char *what, struct err *e)
{
	if (pem == NULL || pem[0] == '\0')
		return err_set(e, -EINVAL, "no %s given", what);
	if (strnlen(pem, RPC_PKI_PEM_MAX + 1) > RPC_PKI_PEM_MAX)
		return err_set(e, -E2BIG, "%s is longer than %d bytes", what,
		               RPC_PKI_PEM_MAX);
	return 0;
}

/* Never prompt for a passphrase on the terminal: cairn's keys have none. */
static int no_passphrase(char *buf, int size, int rwflag, void *data)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)data;
	return -1;
}

static bool is_p256(EVP_PKEY *key)
{
	char group[64];
	size_t len = 0;

	if (!EVP_PKEY_is_a(key, "EC"))
		return false;
	if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1)
		return false;
	return strcmp(group, SN_X9_62_prime256v1) == 0;
}

static int key_parse(const char *pem, const char *what, EVP_PKEY **out,
                     struct err *e)
{
	EVP_PKEY *key;
	BIO *bio;
	int rv;

	rv = pem_check(pem, what, e);
	if (rv != 0)
		return rv;
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL)
		return ossl_fail(e, -ENOMEM, "%s", what);
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (key == NULL)
		return ossl_fail(e, -EINVAL, "%s is not a PEM private key",
		                 what);
	if (!is_p256(key)) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		return err_set(e, -EINVAL, "%s is not an ECDSA P-256 key",
		               what);
	}
	*out = key;
	return 0;
}

static int cert_parse(const char *pem, const char *what, X509 **out,
                      struct err *e)
{
	X509 *cert;
	BIO *bio;
	int rv;

	rv = pem_check(pem, what, e);
	if (rv != 0)
		return rv;
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL)
		return ossl_fail(e, -ENOMEM, "%s", what);
	cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (cert == NULL)
		return ossl_fail(e, -EINVAL, "%s is not a PEM certificate",
		                 what);
	*out = cert;
	return 0;
}

static int csr_parse(const char *pem, X509_REQ **out, struct err *e)
{
	X509_REQ *req = NULL;
	BIO *bio;
	int rv;

	rv = pem_check(pem, "certificate request", e);
	if (rv != 0)
		return rv;
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL)
		return ossl_fail(e, -ENOMEM, "certificate request");
	req = PEM_read_bio_X509_REQ(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (req == NULL)
		return ossl_fail(e, -EINVAL, "not a PEM certificate request");
	*out = req;
	return 0;
}

/* Moves what was written to bio into out, replacing its content. */
static int bio_to_buf(BIO *bio, struct buf *out, const char *what,
                      struct err *e)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	int rv;

	buf_reset(out);
	if (len <= 0 || data == NULL)
		return ossl_fail(e, -EIO, "write %s", what);
	rv = buf_append(out, data, (size_t)len);
	if (rv == -E2BIG)
		return err_set(e, rv,
		               "%s of %ld bytes does not fit in the output "
		               "buffer (max %zu)",
		               what, len, out->max);
	if (rv != 0)
		return err_sys(e, rv, "write %s", what);
	return 0;
}

static int key_to_pem(EVP_PKEY *key, struct buf *out, struct err *e)
{
	/* Secure memory BIO: its contents are wiped when freed. */
	BIO *bio = BIO_new(BIO_s_secmem());
	int rv;

	if (bio == NULL)
		return ossl_fail(e, -ENOMEM, "write private key");
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) !=
	    1) {
		rv = ossl_fail(e, -EIO, "write private key");
		goto err_after_bio;
	}
	rv = bio_to_buf(bio, out, "private key", e);
err_after_bio:
	BIO_free(bio);
	return rv;
}

static int cert_to_pem(X509 *cert, struct buf *out, struct err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int rv;

	if (bio == NULL)
		return ossl_fail(e, -ENOMEM, "write certificate");
	if (PEM_write_bio_X509(bio, cert) != 1) {
		rv = ossl_fail(e, -EIO, "write certificate");
		goto err_after_bio;
	}
	rv = bio_to_buf(bio, out, "certificate", e);
err_after_bio:
	BIO_free(bio);
	return rv;
}

void rpc_pki_key_pem_free(struct buf *key_pem)
{
	if (key_pem->data != NULL)
		OPENSSL_cleanse(key_pem->data, key_pem->cap);
	buf_free(key_pem);
}

/* ------------------------------------------------------------------------
 * Building certificates. */

static int p256_generate(EVP_PKEY **out, struct err *e)
{
	*out = EVP_EC_gen(SN_X9_62_prime256v1);
	if (*out == NULL)
		return ossl_fail(e, -EIO, "generate ECDSA P-256 key");
	return 0;
}

static int days_check(unsigned *days, struct err *e)
{
	if (*days == 0)
		*days = RPC_PKI_DAYS_DEFAULT;
	if (*days > RPC_PKI_DAYS_MAX)
		return err_set(e, -ERANGE,
		               "validity of %u days exceeds the limit of %d",
		               *days, RPC_PKI_DAYS_MAX);
	return 0;
}

/* A fresh random serial: 128 bits, positive, never zero. */
static int serial_set(X509 *cert, struct err *e)
{
	unsigned char bytes[SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int rv = 0;

	do {
		if (RAND_bytes(bytes, sizeof bytes) != 1)
			return ossl_fail(e, -EIO, "random serial number");
		BN_free(bn);
		bn = BN_bin2bn(bytes, sizeof bytes, NULL);
		if (bn == NULL)
			return ossl_fail(e, -ENOMEM, "serial number");
	} while (BN_is_zero(bn));
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		rv = ossl_fail(e, -ENOMEM, "serial number");
	BN_free(bn);
	return rv;
}

static int validity_set(X509 *cert, unsigned days, struct err *e)
{
	time_t now = pki_now();

	if (ASN1_TIME_set(X509_getm_notBefore(cert), now - SKEW_SECONDS) ==
	            NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(cert),
	                  now + (time_t)days * SECONDS_A_DAY) == NULL)
		return ossl_fail(e, -EIO, "validity dates");
	return 0;
}

static int subject_set(X509_NAME *name, const char *cn, struct err *e)
{
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	                               (const unsigned char *)cn, -1, -1,
	                               0) != 1)
		return ossl_fail(e, -ENOMEM, "subject CN=%s", cn);
	return 0;
}

static int ext_add(X509 *cert, X509V3_CTX *ctx, int nid, const char *value,
                   struct err *e)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int rv = 0;

	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
		rv = ossl_fail(e, -EIO, "extension %s = %s", OBJ_nid2sn(nid),
		               value);
	X509_EXTENSION_free(ext);
	return rv;
}

static int gens_add_dns(GENERAL_NAMES *gens, const char *name, struct err *e)
{
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

	if (gen == NULL || ia5 == NULL || ASN1_STRING_set(ia5, name, -1) != 1)
		goto err_after_alloc;
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) <= 0)
		goto err_after_alloc;
	return 0;

err_after_alloc:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	return ossl_fail(e, -ENOMEM, "subjectAltName DNS:%s", name);
}

static int gens_add_ip(GENERAL_NAMES *gens, const unsigned char *ip, int len,
                       struct err *e)
{
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

	if (gen == NULL || os == NULL ||
	    ASN1_OCTET_STRING_set(os, ip, len) != 1)
		goto err_after_alloc;
	GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
	os = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) <= 0)
		goto err_after_alloc;
	return 0;

err_after_alloc:
	ASN1_OCTET_STRING_free(os);
	GENERAL_NAME_free(gen);
	return ossl_fail(e, -ENOMEM, "subjectAltName IP");
}

/* The checked content of a node's subjectAltNames. */
struct node_names {
	unsigned n_ips;
	int ip_len[RPC_PKI_ADDRESSES_MAX];
	unsigned char ip[RPC_PKI_ADDRESSES_MAX][IP_MAX_BYTES];
};

static int names_add_ip(struct node_names *names, const unsigned char *ip,
                        int len, const char *shown, struct err *e)
{
	unsigned i;

	if (names->n_ips == RPC_PKI_ADDRESSES_MAX)
		return err_set(e, -EINVAL, "more than %d addresses",
		               RPC_PKI_ADDRESSES_MAX);
	for (i = 0; i < names->n_ips; i++) {
		if (names->ip_len[i] == len &&
		    memcmp(names->ip[i], ip, (size_t)len) == 0)
			return err_set(e, -EINVAL, "address %s appears twice",
			               shown);
	}
	memcpy(names->ip[names->n_ips], ip, (size_t)len);
	names->ip_len[names->n_ips] = len;
	names->n_ips++;
	return 0;
}

static int gens_build(const char *node_name, const struct node_names *names,
                      GENERAL_NAMES **out, struct err *e)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	unsigned i;
	int rv;

	if (gens == NULL)
		return ossl_fail(e, -ENOMEM, "subjectAltName");
	rv = gens_add_dns(gens, node_name, e);
	for (i = 0; rv == 0 && i < names->n_ips; i++)
		rv = gens_add_ip(gens, names->ip[i], names->ip_len[i], e);
	if (rv != 0) {
		GENERAL_NAMES_free(gens);
		return rv;
	}
	*out = gens;
	return 0;
}

/* Copies the one CN of name into out (RPC_NODE_NAME_MAX + 1 bytes) and
 * checks that it is a node name. */
static int cn_get(const X509_NAME *name, char *out, struct err *e)
{
	unsigned char *utf8 = NULL;
	X509_NAME_ENTRY *entry;
	int idx, len, rv = 0;

	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return err_set(e, -EINVAL, "no CN in the subject");
	if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
		return err_set(e, -EINVAL, "more than one CN in the subject");
	entry = X509_NAME_get_entry(name, idx);
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
	if (len < 0)
		return ossl_fail(e, -EINVAL, "unreadable CN");
	if (len > RPC_NODE_NAME_MAX || strlen((char *)utf8) != (size_t)len) {
		rv = err_set(e, -EINVAL, "CN is not a node name");
		goto err_after_utf8;
	}
	memcpy(out, utf8, (size_t)len + 1);
	rv = rpc_pki_node_name_check(out, e);
err_after_utf8:
	OPENSSL_free(utf8);
	return rv;
}

/* Checks that exts hold exactly one subjectAltName with exactly one DNS
 * name, equal to node_name, and otherwise only IP addresses, which go into
 * names. */
static int sans_check(const STACK_OF(X509_EXTENSION) * exts,
                      const char *node_name, struct node_names *names,
                      struct err *e)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *gen;
	const ASN1_STRING *value;
	char shown[INET6_ADDRSTRLEN];
	unsigned dns_names = 0;
	int crit = -1, i, rv = 0;

	memset(names, 0, sizeof *names);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		if (crit == -2)
			return err_set(
			        e, -EINVAL,
			        "more than one subjectAltName extension");
		ERR_clear_error();
		return err_set(e, -EINVAL, "no subjectAltName");
	}
	for (i = 0; rv == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		switch (gen->type) {
		case GEN_DNS:
			value = gen->d.dNSName;
			if (dns_names++ > 0)
				rv = err_set(
				        e, -EINVAL,
				        "more than one DNS subjectAltName");
			else if ((size_t)ASN1_STRING_length(value) !=
			                 strlen(node_name) ||
			         memcmp(ASN1_STRING_get0_data(value), node_name,
			                strlen(node_name)) != 0)
				rv = err_set(e, -EINVAL,
				             "DNS subjectAltName is not the "
				             "node name %s",
				             node_name);
			break;
		case GEN_IPADD:
			value = gen->d.iPAddress;
			if (ASN1_STRING_length(value) != 4 &&
			    ASN1_STRING_length(value) != 16) {
				rv = err_set(e, -EINVAL,
				             "IP subjectAltName of %d bytes",
				             ASN1_STRING_length(value));
				break;
			}
			if (inet_ntop(ASN1_STRING_length(value) == 4 ? AF_INET
			                                             : AF_INET6,
			              ASN1_STRING_get0_data(value), shown,
			              sizeof shown) == NULL)
				strcpy(shown, "?");
			rv = names_add_ip(names, ASN1_STRING_get0_data(value),
			                  ASN1_STRING_length(value), shown, e);
			break;
		default:
			rv = err_set(e, -EINVAL,
			             "subjectAltName of type %d: only DNS and "
			             "IP are allowed",
			             gen->type);
			break;
		}
	}
	if (rv == 0 && dns_names == 0)
		rv = err_set(e, -EINVAL, "no DNS subjectAltName");
	GENERAL_NAMES_free(gens);
	return rv;
}

/* ------------------------------------------------------------------------
 * The CA. */

int rpc_pki_ca_create(const char *cluster_name, unsigned days,
                      struct buf *key_pem, struct buf *cert_pem, struct err *e)
{
	char cn[sizeof CA_CN_PREFIX + RPC_CLUSTER_NAME_MAX];
	X509V3_CTX ctx;
	EVP_PKEY *key;
	X509 *cert;
	int rv;

	buf_reset(key_pem);
	buf_reset(cert_pem);
	rv = rpc_pki_cluster_name_check(cluster_name, e);
	if (rv == 0)
		rv = days_check(&days, e);
	if (rv != 0)
		goto out;
	snprintf(cn, sizeof cn, "%s%s", CA_CN_PREFIX, cluster_name);
	rv = p256_generate(&key, e);
	if (rv != 0)
		goto out;
	cert = X509_new();
	if (cert == NULL) {
		rv = ossl_fail(e, -ENOMEM, "new certificate");
		goto err_after_key;
	}
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    X509_set_pubkey(cert, key) != 1) {
		rv = ossl_fail(e, -ENOMEM, "new certificate");
		goto err_after_cert;
	}
	rv = serial_set(cert, e);
	if (rv == 0)
		rv = validity_set(cert, days, e);
	if (rv == 0)
		rv = subject_set(X509_get_subject_name(cert), cn, e);
	if (rv == 0 &&
	    X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1)
		rv = ossl_fail(e, -ENOMEM, "issuer name");
	if (rv != 0)
		goto err_after_cert;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	rv = ext_add(cert, &ctx, NID_basic_constraints,
	             "critical,CA:TRUE,pathlen:0", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_key_usage,
		             "critical,keyCertSign,cRLSign", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_subject_key_identifier, "hash", e);
	if (rv != 0)
		goto err_after_cert;
	if (X509_sign(cert, key, EVP_sha256()) <= 0) {
		rv = ossl_fail(e, -EIO, "sign");
		goto err_after_cert;
	}
	rv = key_to_pem(key, key_pem, e);
	if (rv == 0)
		rv = cert_to_pem(cert, cert_pem, e);
	if (rv != 0)
		rpc_pki_key_pem_free(key_pem);

err_after_cert:
	X509_free(cert);
err_after_key:
	EVP_PKEY_free(key);
out:
	if (rv != 0)
		return err_wrap(e, "create cluster CA %.64s",
		                cluster_name == NULL ? "(null)" : cluster_name);
	return 0;
}

int rpc_pki_key_create(struct buf *key_pem, struct err *e)
{
	EVP_PKEY *key;
	int rv;

	buf_reset(key_pem);
	rv = p256_generate(&key, e);
	if (rv != 0)
		return err_wrap(e, "create node key");
	rv = key_to_pem(key, key_pem, e);
	EVP_PKEY_free(key);
	if (rv != 0)
		return err_wrap(e, "create node key");
	return 0;
}

/* ------------------------------------------------------------------------
 * Requests and node certificates. */

int rpc_pki_csr_create(const char *key_pem, const char *node_name,
                       const char *const *addresses, unsigned n,
                       struct buf *csr_pem, struct err *e)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	unsigned char ip[IP_MAX_BYTES];
	struct node_names names;
	GENERAL_NAMES *gens = NULL;
	EVP_PKEY *key;
	X509_REQ *req = NULL;
	BIO *bio;
	unsigned i;
	int rv, len = 0;

	buf_reset(csr_pem);
	memset(&names, 0, sizeof names);
	rv = rpc_pki_node_name_check(node_name, e);
	if (rv != 0)
		goto out;
	if (n > RPC_PKI_ADDRESSES_MAX) {
		rv = err_set(e, -EINVAL, "%u addresses, at most %d allowed", n,
		             RPC_PKI_ADDRESSES_MAX);
		goto out;
	}
	for (i = 0; i < n; i++) {
		rv = ip_parse(addresses[i], ip, &len, e);
		if (rv == 0)
			rv = names_add_ip(&names, ip, len, addresses[i], e);
		if (rv != 0)
			goto out;
	}
	rv = key_parse(key_pem, "node key", &key, e);
	if (rv != 0)
		goto out;
	req = X509_REQ_new();
	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1) {
		rv = ossl_fail(e, -ENOMEM, "new request");
		goto err_after_req;
	}
	rv = subject_set(X509_REQ_get_subject_name(req), node_name, e);
	if (rv != 0)
		goto err_after_req;
	rv = gens_build(node_name, &names, &gens, e);
	if (rv != 0)
		goto err_after_req;
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0,
	                    X509V3_ADD_DEFAULT) != 1 ||
	    X509_REQ_add_extensions(req, exts) != 1) {
		rv = ossl_fail(e, -ENOMEM, "subjectAltName");
		goto err_after_exts;
	}
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		rv = ossl_fail(e, -EIO, "sign");
		goto err_after_exts;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1)
		rv = ossl_fail(e, -ENOMEM, "write request");
	else
		rv = bio_to_buf(bio, csr_pem, "request", e);
	BIO_free(bio);

err_after_exts:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
err_after_req:
	X509_REQ_free(req);
	EVP_PKEY_free(key);
out:
	if (rv != 0)
		return err_wrap(e, "certificate request for node %.64s",
		                node_name == NULL ? "(null)" : node_name);
	return 0;
}

/* Checks a request as the CA sees it: its signature, its key type, its CN
 * and its subjectAltNames, which go into names. */
static int csr_check(X509_REQ *req, const char *expected_node_name,
                     struct node_names *names, struct err *e)
{
	STACK_OF(X509_EXTENSION) * exts;
	char cn[RPC_NODE_NAME_MAX + 1];
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	struct err inner;
	int rv;

	if (key == NULL || !is_p256(key)) {
		ERR_clear_error();
		return err_set(e, -EKEYREJECTED,
		               "the request's key is not ECDSA P-256");
	}
	if (X509_REQ_verify(req, key) != 1)
		return ossl_fail(e, -EKEYREJECTED,
		                 "the request's signature does not verify");
	if (cn_get(X509_REQ_get_subject_name(req), cn, &inner) != 0)
		return err_set(e, -EKEYREJECTED, "request subject: %s",
		               inner.msg);
	if (strcmp(cn, expected_node_name) != 0)
		return err_set(e, -EKEYREJECTED,
		               "the request names node %s, not %s", cn,
		               expected_node_name);
	exts = X509_REQ_get_extensions(req);
	if (exts == NULL) {
		ERR_clear_error();
		return err_set(e, -EKEYREJECTED,
		               "the request has no subjectAltName");
	}
	rv = sans_check(exts, expected_node_name, names, &inner);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (rv != 0)
		return err_set(e, -EKEYREJECTED, "request: %s", inner.msg);
	return 0;
}

int rpc_pki_csr_sign(const char *ca_key_pem, const char *ca_cert_pem,
                     const char *csr_pem, const char *expected_node_name,
                     unsigned days, struct buf *cert_pem, struct err *e)
{
	GENERAL_NAMES *gens = NULL;
	struct node_names names;
	X509 *ca_cert, *cert;
	X509_REQ *req = NULL;
	EVP_PKEY *ca_key;
	X509V3_CTX ctx;
	int rv;

	buf_reset(cert_pem);
	rv = rpc_pki_node_name_check(expected_node_name, e);
	if (rv == 0)
		rv = days_check(&days, e);
	if (rv != 0)
		goto out;
	rv = key_parse(ca_key_pem, "CA key", &ca_key, e);
	if (rv != 0)
		goto out;
	rv = cert_parse(ca_cert_pem, "CA certificate", &ca_cert, e);
	if (rv != 0)
		goto err_after_ca_key;
	if (X509_check_ca(ca_cert) == 0) {
		rv = err_set(e, -EINVAL, "the CA certificate is not a CA");
		goto err_after_ca_cert;
	}
	if (X509_check_private_key(ca_cert, ca_key) != 1) {
		rv = ossl_fail(e, -EINVAL,
		               "the CA key does not match the CA certificate");
		goto err_after_ca_cert;
	}
	rv = csr_parse(csr_pem, &req, e);
	if (rv != 0)
		goto err_after_ca_cert;
	rv = csr_check(req, expected_node_name, &names, e);
	if (rv != 0)
		goto err_after_req;

	cert = X509_new();
	if (cert == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
	    X509_set_pubkey(cert, X509_REQ_get0_pubkey(req)) != 1 ||
	    X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) != 1) {
		rv = ossl_fail(e, -ENOMEM, "new certificate");
		goto err_after_cert;
	}
	rv = serial_set(cert, e);
	if (rv == 0)
		rv = validity_set(cert, days, e);
	if (rv == 0)
		rv = subject_set(X509_get_subject_name(cert),
		                 expected_node_name, e);
	if (rv != 0)
		goto err_after_cert;
	X509V3_set_ctx(&ctx, ca_cert, cert, NULL, NULL, 0);
	rv = ext_add(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_key_usage,
		             "critical,digitalSignature", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_ext_key_usage,
		             "serverAuth,clientAuth", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_subject_key_identifier, "hash", e);
	if (rv == 0)
		rv = ext_add(cert, &ctx, NID_authority_key_identifier,
		             "keyid:always", e);
	if (rv == 0)
		rv = gens_build(expected_node_name, &names, &gens, e);
	if (rv != 0)
		goto err_after_cert;
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0,
	                      X509V3_ADD_DEFAULT) != 1) {
		rv = ossl_fail(e, -ENOMEM, "subjectAltName");
		goto err_after_gens;
	}
	if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
		rv = ossl_fail(e, -EIO, "sign");
		goto err_after_gens;
	}
	rv = cert_to_pem(cert, cert_pem, e);

err_after_gens:
	GENERAL_NAMES_free(gens);
err_after_cert:
	X509_free(cert);
err_after_req:
	X509_REQ_free(req);
err_after_ca_cert:
	X509_free(ca_cert);
err_after_ca_key:
	EVP_PKEY_free(ca_key);
out:
	if (rv != 0)
		return err_wrap(e, "sign certificate for node %.64s",
		                expected_node_name == NULL
		                        ? "(null)"
		                        : expected_node_name);
	return 0;
}

/* ------------------------------------------------------------------------
 * Fingerprints and verification. */

int rpc__fingerprint_x509(X509 *cert, char *out, struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	char *p;

	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
		return ossl_fail(e, -EIO, "certificate digest");
	memcpy(out, "sha256:", 7);
	p = out + 7;
	for (i = 0; i < len; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 0xf];
	}
	*p = '\0';
	return 0;
}

int rpc_pki_fingerprint(const char *cert_pem, char *out, struct err *e)
{
	X509 *cert;
	int rv;

	out[0] = '\0';
	rv = cert_parse(cert_pem, "certificate", &cert, e);
	if (rv != 0)
		return err_wrap(e, "fingerprint");
	rv = rpc__fingerprint_x509(cert, out, e);
	X509_free(cert);
	return rv;
}

int rpc_pki_fingerprint_check(const char *fingerprint, struct err *e)
{
	size_t i;

	if (fingerprint == NULL ||
	    strnlen(fingerprint, RPC_FINGERPRINT_TEXT_LEN + 1) !=
	            RPC_FINGERPRINT_TEXT_LEN ||
	    strncmp(fingerprint, "sha256:", 7) != 0)
		goto err_shape;
	for (i = 7; i < RPC_FINGERPRINT_TEXT_LEN; i++) {
		char c = fingerprint[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			goto err_shape;
	}
	return 0;

err_shape:
	return err_set(e, -EINVAL,
	               "fingerprint '%.80s' is not \"sha256:\" and 64 "
	               "lowercase hex digits",
	               fingerprint == NULL ? "(null)" : fingerprint);
}

bool rpc_pki_fingerprints_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL ||
	    strnlen(a, RPC_FINGERPRINT_TEXT_LEN + 1) !=
	            RPC_FINGERPRINT_TEXT_LEN ||
	    strnlen(b, RPC_FINGERPRINT_TEXT_LEN + 1) !=
	            RPC_FINGERPRINT_TEXT_LEN)
		return false;
	return CRYPTO_memcmp(a, b, RPC_FINGERPRINT_TEXT_LEN) == 0;
}

/* The node a certificate names: its CN, which must also be its only DNS
 * subjectAltName. */
static int cert_node_name(X509 *cert, char *out, struct err *e)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(cert);
	struct node_names names;
	int rv;

	rv = cn_get(X509_get_subject_name(cert), out, e);
	if (rv != 0)
		return rv;
	if (exts == NULL)
		return err_set(e, -EINVAL, "no subjectAltName");
	return sans_check(exts, out, &names, e);
}

static int chain_verify(X509 *ca, X509 *cert, const char *shown, struct err *e)
{
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store;
	int rv = 0, code;

	store = X509_STORE_new();
	if (store == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		rv = ossl_fail(e, -ENOMEM, "certificate store");
		goto err_after_store;
	}
	/* Depth 0: the node certificate directly under the CA, nothing in
	 * between; strict DER checks; our clock decides validity. */
	X509_STORE_CTX_set_depth(ctx, 0);
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	X509_STORE_CTX_set_time(ctx, 0, pki_now());
	if (X509_verify_cert(ctx) != 1) {
		code = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		rv = err_set(
		        e,
		        code == X509_V_ERR_CERT_HAS_EXPIRED ||
		                        code == X509_V_ERR_CERT_NOT_YET_VALID
		                ? -EKEYEXPIRED
		                : -EKEYREJECTED,
		        "certificate%s%s: %s", shown[0] ? " of node " : "",
		        shown, X509_verify_cert_error_string(code));
	}

err_after_store:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rv;
}

int rpc_pki_verify(const char *ca_cert_pem, const char *cert_pem,
                   const char *const *revoked_fingerprints, unsigned n_revoked,
                   char *node_name_out, size_t node_name_size, struct err *e)
{
	char name[RPC_NODE_NAME_MAX + 1] = "";
	char fp[RPC_FINGERPRINT_TEXT_LEN + 1];
	struct err name_err;
	X509 *ca, *cert;
	bool is_revoked = false;
	unsigned i;
	int rv, name_rv;

	if (node_name_size > 0)
		node_name_out[0] = '\0';
	rv = cert_parse(ca_cert_pem, "CA certificate", &ca, e);
	if (rv != 0)
		goto out;
	if (X509_check_ca(ca) == 0) {
		rv = err_set(e, -EINVAL, "the CA certificate is not a CA");
		goto err_after_ca;
	}
	rv = cert_parse(cert_pem, "certificate", &cert, e);
	if (rv != 0)
		goto err_after_ca;
	/* The name is read first only so that messages can show it; it is
	 * trusted after the chain verified. */
	name_rv = cert_node_name(cert, name, &name_err);
	if (name_rv != 0)
		name[0] = '\0';
	rv = chain_verify(ca, cert, name, e);
	if (rv != 0)
		goto err_after_cert;
	if (X509_check_ca(cert) != 0) {
		rv = err_set(e, -EKEYREJECTED,
		             "certificate is a CA, not a node's");
		goto err_after_cert;
	}
	if (name_rv != 0) {
		rv = err_set(e, -EKEYREJECTED, "certificate: %s", name_err.msg);
		goto err_after_cert;
	}
	rv = rpc__fingerprint_x509(cert, fp, e);
	if (rv != 0)
		goto err_after_cert;
	for (i = 0; i < n_revoked; i++)
		is_revoked |=
		        rpc_pki_fingerprints_equal(fp, revoked_fingerprints[i]);
	if (is_revoked) {
		rv = err_set(e, -EKEYREVOKED,
		             "certificate %s of node %s is revoked", fp, name);
		goto err_after_cert;
	}
	if (strlen(name) >= node_name_size) {
		rv = err_set(e, -ENAMETOOLONG,
		             "node name %s does not fit in %zu bytes", name,
		             node_name_size);
		goto err_after_cert;
	}
	memcpy(node_name_out, name, strlen(name) + 1);

err_after_cert:
	X509_free(cert);
err_after_ca:
	X509_free(ca);
out:
	if (rv != 0)
		return err_wrap(e, "verify");
	return 0;
}

/* ------------------------------------------------------------------------
 * Key files. */

static int write_all(int fd, const char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename durable: fsync the directory that holds path. */
static int dir_sync(const char *path, struct err *e)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rv = 0;

	if (slash == NULL)
		dir = mem_strdup(".");
	else
		dir = mem_strndup(path,
		                  slash == path ? 1 : (size_t)(slash - path));
	if (dir == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rv = err_sys(e, -errno, "sync directory %s", dir);
	if (fd >= 0)
		close(fd);
	mem_free(dir);
	return rv;
}

int rpc_pki_key_file_write(const char *path, const char *key_pem, struct err *e)
{
	struct stat st;
	size_t len;
	char *tmp;
	int fd, rv;

	rv = pem_check(key_pem, "key", e);
	if (rv != 0)
		goto out;
	/* rename() replaces a symbolic link rather than writing through it,
	 * so this is for the operator: a link where a key belongs is a
	 * mistake or an attack, and we say so instead of replacing it. */
	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			rv = err_set(e, -ELOOP,
			             "is a symbolic link; refusing to follow "
			             "it");
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			rv = err_set(e, -EINVAL, "exists and is not a file");
			goto out;
		}
	} else if (errno != ENOENT) {
		rv = err_sys(e, -errno, "lstat");
		goto out;
	}
	len = strlen(path);
	tmp = mem_alloc(len + sizeof ".XXXXXX");
	if (tmp == NULL) {
		rv = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", sizeof ".XXXXXX");
	/* mkostemp creates the file O_EXCL with mode 0600: the key is never
	 * readable by anyone else, not even for a moment. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rv = err_sys(e, -errno, "create a temporary file next to it");
		goto err_after_alloc;
	}
	rv = write_all(fd, key_pem, strlen(key_pem));
	if (rv == 0 && fsync(fd) != 0)
		rv = -errno;
	if (close(fd) != 0 && rv == 0)
		rv = -errno;
	if (rv != 0) {
		err_sys(e, rv, "write %s", tmp);
		goto err_after_create;
	}
	if (rename(tmp, path) != 0) {
		rv = err_sys(e, -errno, "rename %s", tmp);
		goto err_after_create;
	}
	mem_free(tmp);
	rv = dir_sync(path, e);
	goto out;

err_after_create:
	unlink(tmp);
err_after_alloc:
	mem_free(tmp);
out:
	if (rv != 0)
		return err_wrap(e, "key file %s", path);
	return 0;
}

/* Opens a key file for reading and checks what was opened. Returns the
 * fd; its size goes into *size. */
static int key_file_open(const char *path, off_t *size, struct err *e)
{
	struct stat st;
	int fd, rv;

	/* O_NONBLOCK: opening a FIFO planted here must not hang us. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return err_set(e, -ELOOP,
		               "key file %s is a symbolic link; refusing to "
		               "follow it",
		               path);
	if (fd < 0)
		return err_sys(e, -errno, "key file %s", path);
	if (fstat(fd, &st) != 0) {
		rv = err_sys(e, -errno, "key file %s: fstat", path);
		goto err_after_open;
	}
	if (!S_ISREG(st.st_mode)) {
		rv = err_set(e, -EINVAL, "key file %s is not a regular file",
		             path);
		goto err_after_open;
	}
	if (st.st_uid != geteuid()) {
		rv = err_set(
		        e, -EPERM,
		        "key file %s is owned by uid %u, not by us (uid %u)",
		        path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto err_after_open;
	}
	if ((st.st_mode & 077) != 0) {
		rv = err_set(
		        e, -EPERM,
		        "key file %s has mode %04o: group or others may access "
		        "it; it must be 0600 (chmod 600 %s)",
		        path, (unsigned)(st.st_mode & 07777), path);
		goto err_after_open;
	}
	*size = st.st_size;
	return fd;

err_after_open:
	close(fd);
	return rv;
}

int rpc_pki_key_file_check(const char *path, struct err *e)
{
	off_t size;
	int fd = key_file_open(path, &size, e);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int rpc_pki_key_file_read(const char *path, struct buf *key_pem, struct err *e)
{
	off_t size;
	ssize_t n;
	int fd, rv = 0;

	buf_reset(key_pem);
	fd = key_file_open(path, &size, e);
	if (fd < 0)
		return fd;
	if (size > RPC_PKI_PEM_MAX) {
		rv = err_set(e, -E2BIG,
		             "key file %s holds %lld bytes, more than %d", path,
		             (long long)size, RPC_PKI_PEM_MAX);
		goto err_after_open;
	}
	/* One allocation of the final size, so no stale copy of the key is
	 * left behind by a realloc. */
	rv = buf_reserve(key_pem, (size_t)size);
	if (rv != 0) {
		err_sys(e, rv, "key file %s", path);
		goto err_after_open;
	}
	for (;;) {
		if (key_pem->len == RPC_PKI_PEM_MAX) {
			rv = err_set(e, -E2BIG,
			             "key file %s grew past %d bytes", path,
			             RPC_PKI_PEM_MAX);
			goto err_after_read;
		}
		rv = buf_reserve(key_pem, 1);
		if (rv != 0) {
			err_sys(e, rv, "key file %s", path);
			goto err_after_read;
		}
		n = read(fd, key_pem->data + key_pem->len,
		         key_pem->cap - 1 - key_pem->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = err_sys(e, -errno, "read key file %s", path);
			goto err_after_read;
		}
		if (n == 0)
			break;
		key_pem->len += (size_t)n;
		key_pem->data[key_pem->len] = '\0';
	}
	goto err_after_open;

err_after_read:
	rpc_pki_key_pem_free(key_pem);
err_after_open:
	close(fd);
	return rv;
}
