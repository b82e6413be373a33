/* node/auth: Proxmox's credentials — tickets, CSRF prevention tokens and
 * API token headers — made and checked by pure functions (keys and the
 * clock are passed in), private to node/. */
#ifndef CAIRN_NODE_AUTH_H
#define CAIRN_NODE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

#define AUTH_USERID_MAX    128 /* "name@realm" */
#define AUTH_TOKENID_MAX   64
#define AUTH_TICKET_MAX    512
#define AUTH_CSRF_MAX      128
#define AUTH_KEY_LEN       32
#define AUTH_TICKET_LIFE_S 7200 /* Proxmox: 2 h */
#define AUTH_CLOCK_SLACK_S 300  /* a ticket may come from a node 5 min ahead */

/* The cluster-wide signing keys: tickets and CSRF tokens are signed with
 * `current`; those signed with `previous` still verify (the grace after a
 * rotation). */
struct auth_keys {
	unsigned char current[AUTH_KEY_LEN];
	unsigned char previous[AUTH_KEY_LEN];
	bool has_previous;
};

/* Checks "name@realm": name of [A-Za-z0-9._-] (1..64, not starting with
 * '-'), realm "pam" or "pve". -EINVAL naming the problem. */
int auth_userid_check(const char *userid, struct err *e);
/* Checks a token id: [A-Za-z][A-Za-z0-9._-]{0,63}. */
int auth_tokenid_check(const char *tokenid, struct err *e);

/* "PVE:<userid>:<8 hex time>::<base64 HMAC-SHA256>" */
int auth_ticket_make(const struct auth_keys *k, const char *userid, int64_t now,
                     char out[AUTH_TICKET_MAX], struct err *e);
/* Verifies a ticket: its signature under either key and its age (at most
 * AUTH_TICKET_LIFE_S old, at most AUTH_CLOCK_SLACK_S in the future).
 * -EKEYREJECTED (bad signature or malformed), -EKEYEXPIRED (too old or
 * from the future); userid gets the ticket's user and *issued its time. */
int auth_ticket_verify(const struct auth_keys *k, const char *ticket,
                       int64_t now, char userid[AUTH_USERID_MAX + 1],
                       int64_t *issued, struct err *e);

/* "<8 hex time>:<base64 HMAC-SHA256 of time:userid>", bound to a user. */
int auth_csrf_make(const struct auth_keys *k, const char *userid, int64_t now,
                   char out[AUTH_CSRF_MAX], struct err *e);
int auth_csrf_verify(const struct auth_keys *k, const char *token,
                     const char *userid, int64_t now, struct err *e);

/* What an Authorization or Cookie header carries. */
enum auth_kind { AUTH_NONE, AUTH_TICKET, AUTH_TOKEN };
struct auth_credential {
	enum auth_kind kind;
	char ticket[AUTH_TICKET_MAX];       /* AUTH_TICKET, URL-unescaped */
	char userid[AUTH_USERID_MAX + 1];   /* AUTH_TOKEN */
	char tokenid[AUTH_TOKENID_MAX + 1]; /* AUTH_TOKEN */
	char secret[80];                    /* AUTH_TOKEN */
};

/* Reads the credential of a request: "Authorization: PVEAPIToken=
 * USER@REALM!TOKENID=SECRET" (also ':' before the secret), "Authorization:
 * PVEAuthCookie=TICKET", or the cookie PVEAuthCookie (URL-unescaped).
 * The token wins over a ticket. Either header may be NULL. -EINVAL when a
 * header is present but malformed (e names why); AUTH_NONE when there is
 * no credential. */
int auth_credential_parse(const char *authorization, size_t authorization_len,
                          const char *cookie, size_t cookie_len,
                          struct auth_credential *out, struct err *e);

#endif /* CAIRN_NODE_AUTH_H */
