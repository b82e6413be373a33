/* Proxmox's tickets and CSRF tokens, HMAC-signed with the cluster-wide key
 * so that every node verifies what any node issued, and the credential
 * headers clients send. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/auth.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------ names */

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

int auth_userid_check(const char *userid, struct err *e)
{
	const char *at = strrchr(userid, '@');
	size_t name_len, i;

	if (strlen(userid) > AUTH_USERID_MAX)
		return err_set(e, -EINVAL, "userid: longer than %d bytes",
		               AUTH_USERID_MAX);
	if (at == NULL)
		return err_set(e, -EINVAL,
		               "userid '%s': not name@realm (pam or pve)",
		               userid);
	name_len = (size_t)(at - userid);
	if (name_len == 0 || name_len > 64 || userid[0] == '-')
		return err_set(e, -EINVAL, "userid '%s': bad user name",
		               userid);
	for (i = 0; i < name_len; i++) {
		if (!is_name_char(userid[i]))
			return err_set(e, -EINVAL,
			               "userid '%s': bad character in the user "
			               "name",
			               userid);
	}
	if (strcmp(at + 1, "pam") != 0 && strcmp(at + 1, "pve") != 0)
		return err_set(e, -EINVAL,
		               "userid '%s': unknown realm (pam or pve)",
		               userid);
	return 0;
}

int auth_tokenid_check(const char *tokenid, struct err *e)
{
	size_t i, len = strlen(tokenid);

	if (len == 0 || len > AUTH_TOKENID_MAX ||
	    !isalpha((unsigned char)tokenid[0]))
		return err_set(e, -EINVAL,
		               "tokenid: 1 to %d characters starting with a "
		               "letter",
		               AUTH_TOKENID_MAX);
	for (i = 0; i < len; i++) {
		if (!is_name_char(tokenid[i]))
			return err_set(e, -EINVAL,
			               "tokenid '%s': bad character", tokenid);
	}
	return 0;
}

/* ------------------------------------------------------- signatures */

static void sign(const unsigned char key[AUTH_KEY_LEN], const char *text,
                 char out[48])
{
	unsigned char mac[32];

	rpc_hmac_sha256(key, AUTH_KEY_LEN, text, strlen(text), mac);
	rpc_base64_encode(mac, sizeof mac, out);
}

/* Does sig (base64) sign text under one of the keys? */
static bool signed_by(const struct auth_keys *k, const char *text,
                      const char *sig)
{
	char want[48];
	size_t len = strlen(sig);
	bool ok = false;

	sign(k->current, text, want);
	if (len == strlen(want) && rpc_const_equal(want, sig, len))
		ok = true;
	if (!ok && k->has_previous) {
		sign(k->previous, text, want);
		ok = len == strlen(want) && rpc_const_equal(want, sig, len);
	}
	return ok;
}

static bool parse_hex8(const char *p, int64_t *out)
{
	int64_t v = 0;
	int i;

	for (i = 0; i < 8; i++) {
		int c = (unsigned char)p[i];

		if (!isxdigit(c))
			return false;
		v = v * 16 + (isdigit(c) ? c - '0' : toupper(c) - 'A' + 10);
	}
	*out = v;
	return true;
}

static int check_age(int64_t issued, int64_t now, const char *what,
                     struct err *e)
{
	if (issued > now + AUTH_CLOCK_SLACK_S)
		return err_set(e, -EKEYEXPIRED,
		               "%s: issued in the future (check the clocks)",
		               what);
	if (now - issued > AUTH_TICKET_LIFE_S)
		return err_set(e, -EKEYEXPIRED, "%s: expired", what);
	return 0;
}

int auth_ticket_make(const struct auth_keys *k, const char *userid, int64_t now,
                     char out[AUTH_TICKET_MAX], struct err *e)
{
	char text[AUTH_TICKET_MAX], sig[48];
	int n;

	if (auth_userid_check(userid, e) != 0)
		return -EINVAL;
	n = snprintf(text, sizeof text, "PVE:%s:%08" PRIX32, userid,
	             (uint32_t)now);
	if (n < 0 || (size_t)n >= sizeof text)
		return err_set(e, -EINVAL, "ticket: too long");
	sign(k->current, text, sig);
	n = snprintf(out, AUTH_TICKET_MAX, "%s::%s", text, sig);
	if (n < 0 || n >= AUTH_TICKET_MAX)
		return err_set(e, -EINVAL, "ticket: too long");
	return 0;
}

int auth_ticket_verify(const struct auth_keys *k, const char *ticket,
                       int64_t now, char userid[AUTH_USERID_MAX + 1],
                       int64_t *issued, struct err *e)
{
	char text[AUTH_TICKET_MAX];
	const char *sep, *colon;
	size_t len = strlen(ticket), user_len;

	if (len >= AUTH_TICKET_MAX || strncmp(ticket, "PVE:", 4) != 0)
		return err_set(e, -EKEYREJECTED, "ticket: malformed");
	sep = strstr(ticket + 4, "::");
	if (sep == NULL || sep - ticket < 4 + 1 + 1 + 8)
		return err_set(e, -EKEYREJECTED, "ticket: malformed");
	colon = sep - 9;
	if (*colon != ':' || !parse_hex8(colon + 1, issued))
		return err_set(e, -EKEYREJECTED, "ticket: malformed");
	user_len = (size_t)(colon - (ticket + 4));
	if (user_len == 0 || user_len > AUTH_USERID_MAX)
		return err_set(e, -EKEYREJECTED, "ticket: malformed");
	memcpy(text, ticket, (size_t)(sep - ticket));
	text[sep - ticket] = '\0';
	if (!signed_by(k, text, sep + 2))
		return err_set(e, -EKEYREJECTED, "ticket: invalid signature");
	memcpy(userid, ticket + 4, user_len);
	userid[user_len] = '\0';
	return check_age(*issued, now, "ticket", e);
}

int auth_csrf_make(const struct auth_keys *k, const char *userid, int64_t now,
                   char out[AUTH_CSRF_MAX], struct err *e)
{
	char text[AUTH_USERID_MAX + 16], sig[48];

	snprintf(text, sizeof text, "%08" PRIX32 ":%s", (uint32_t)now, userid);
	sign(k->current, text, sig);
	if (snprintf(out, AUTH_CSRF_MAX, "%08" PRIX32 ":%s", (uint32_t)now,
	             sig) >= AUTH_CSRF_MAX)
		return err_set(e, -EINVAL, "CSRF token: too long");
	return 0;
}

int auth_csrf_verify(const struct auth_keys *k, const char *token,
                     const char *userid, int64_t now, struct err *e)
{
	char text[AUTH_USERID_MAX + 16];
	int64_t issued;

	if (strlen(token) >= AUTH_CSRF_MAX || !parse_hex8(token, &issued) ||
	    token[8] != ':')
		return err_set(e, -EKEYREJECTED,
		               "CSRFPreventionToken: malformed");
	snprintf(text, sizeof text, "%.8s:%s", token, userid);
	if (!signed_by(k, text, token + 9))
		return err_set(e, -EKEYREJECTED,
		               "CSRFPreventionToken: invalid");
	return check_age(issued, now, "CSRFPreventionToken", e);
}

/* ---------------------------------------------------------- headers */

static int unescape(const char *in, size_t len, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%' && i + 2 < len &&
		    isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], '\0'};

			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (c == '\0' || o + 1 >= size)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static int parse_token(const char *v, size_t len, struct auth_credential *out,
                       struct err *e)
{
	const char *bang = memchr(v, '!', len), *sep;
	size_t user_len, id_len, secret_len, i;

	if (bang == NULL)
		return err_set(e, -EINVAL,
		               "PVEAPIToken: expected USER@REALM!TOKENID="
		               "SECRET");
	user_len = (size_t)(bang - v);
	for (sep = bang + 1; sep < v + len && *sep != '=' && *sep != ':'; sep++)
		;
	if (sep == v + len)
		return err_set(e, -EINVAL,
		               "PVEAPIToken: expected USER@REALM!TOKENID="
		               "SECRET");
	id_len = (size_t)(sep - bang - 1);
	secret_len = (size_t)(v + len - sep - 1);
	if (user_len == 0 || user_len > AUTH_USERID_MAX || id_len == 0 ||
	    id_len > AUTH_TOKENID_MAX || secret_len == 0 ||
	    secret_len >= sizeof out->secret)
		return err_set(e, -EINVAL,
		               "PVEAPIToken: a part is empty or "
		               "too long");
	for (i = 0; i < secret_len; i++) {
		char c = sep[1 + i];

		if (!isalnum((unsigned char)c) && c != '-')
			return err_set(e, -EINVAL,
			               "PVEAPIToken: the secret must be "
			               "[a-zA-Z0-9-]");
	}
	memcpy(out->userid, v, user_len);
	out->userid[user_len] = '\0';
	memcpy(out->tokenid, bang + 1, id_len);
	out->tokenid[id_len] = '\0';
	memcpy(out->secret, sep + 1, secret_len);
	out->secret[secret_len] = '\0';
	out->kind = AUTH_TOKEN;
	return 0;
}

/* The value of cookie `name` in a Cookie header, or NULL. */
static const char *cookie_value(const char *h, size_t len, const char *name,
                                size_t *value_len)
{
	size_t nlen = strlen(name);
	const char *p = h, *end = h + len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *item_end = semi != NULL ? semi : end;

		while (p < item_end && (*p == ' ' || *p == '\t'))
			p++;
		if ((size_t)(item_end - p) > nlen &&
		    memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
			*value_len =
			        (size_t)(item_end - p - (ptrdiff_t)nlen - 1);
			return p + nlen + 1;
		}
		p = item_end + 1;
	}
	return NULL;
}

int auth_credential_parse(const char *authorization, size_t authorization_len,
                          const char *cookie, size_t cookie_len,
                          struct auth_credential *out, struct err *e)
{
	static const char token_prefix[] = "PVEAPIToken=";
	static const char ticket_prefix[] = "PVEAuthCookie=";
	const char *v = NULL;
	size_t len = 0;

	memset(out, 0, sizeof *out);
	out->kind = AUTH_NONE;
	if (authorization != NULL && authorization_len > 0) {
		if (authorization_len > sizeof token_prefix - 1 &&
		    memcmp(authorization, token_prefix,
		           sizeof token_prefix - 1) == 0)
			return parse_token(
			        authorization + sizeof token_prefix - 1,
			        authorization_len - (sizeof token_prefix - 1),
			        out, e);
		if (authorization_len > sizeof ticket_prefix - 1 &&
		    memcmp(authorization, ticket_prefix,
		           sizeof ticket_prefix - 1) == 0) {
			v = authorization + sizeof ticket_prefix - 1;
			len = authorization_len - (sizeof ticket_prefix - 1);
		} else {
			return err_set(e, -EINVAL,
			               "Authorization: expected PVEAPIToken= "
			               "or PVEAuthCookie=");
		}
	} else if (cookie != NULL) {
		v = cookie_value(cookie, cookie_len, "PVEAuthCookie", &len);
	}
	if (v == NULL)
		return 0;
	if (unescape(v, len, out->ticket, sizeof out->ticket) != 0)
		return err_set(e, -EINVAL, "PVEAuthCookie: malformed");
	out->kind = AUTH_TICKET;
	return 0;
}
