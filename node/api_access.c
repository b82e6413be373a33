/* The REST API's access control, Proxmox's way: who a request is (ticket,
 * API token, or a principal a member forwarded), whether its route lets it
 * in, and the /access paths — realms, tickets, users, tokens, roles, ACLs
 * and permissions.
 *
 * Everything a request needs to be authenticated lives in the view (the
 * DB rows the API reloads when the revision moves), so checking a token
 * or ticket costs a hash and a lookup on the loop, no DB round trip.
 * Password hashes run on the cpu pool (bounded queue: "busy" past it). The
 * ticket keys are a cluster secret in the DB, made by the first node that
 * finds none and rotated by the first that finds them older than a day;
 * the previous key keeps verifying until the next rotation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node/api_internal.h"

#define KEYS_SECRET_NAME "api_ticket_keys"
#define KEYS_ROTATE_S    86400
#define KEYS_RETRY_MS    5000

static char *dup_text(const struct wire_value *v)
{
	char *s;

	if (v->type != WIRE_TEXT)
		return NULL;
	s = mem_alloc(v->text.len + 1);
	if (s != NULL) {
		memcpy(s, v->text.ptr, v->text.len);
		s[v->text.len] = '\0';
	}
	return s;
}

static void copy_text(char *out, size_t size, const struct wire_value *v)
{
	if (v->type == WIRE_TEXT)
		snprintf(out, size, "%.*s", (int)v->text.len, v->text.ptr);
	else
		out[0] = '\0';
}

/* ------------------------------------------------------------- view */

static int load_keys(struct view_auth *va, const struct db_rows *rows,
                     struct err *e)
{
	json_t *obj = NULL;
	const char *cur, *prev;
	size_t n;
	int rv;

	if (rows->nrows == 0)
		return 0;
	rv = json_parse_bounded(db_rows_at(rows, 0, 0)->text.ptr,
	                        db_rows_at(rows, 0, 0)->text.len, 4096, 4, &obj,
	                        e);
	if (rv != 0)
		return err_wrap(e, "the ticket keys");
	cur = json_string_value(json_object_get(obj, "current"));
	prev = json_string_value(json_object_get(obj, "previous"));
	if (cur == NULL ||
	    rpc_base64_decode(cur, strlen(cur), va->keys.current, AUTH_KEY_LEN,
	                      &n) != 0 ||
	    n != AUTH_KEY_LEN) {
		json_decref(obj);
		return err_set(e, -EINVAL, "the ticket keys: malformed");
	}
	if (prev != NULL &&
	    rpc_base64_decode(prev, strlen(prev), va->keys.previous,
	                      AUTH_KEY_LEN, &n) == 0 &&
	    n == AUTH_KEY_LEN)
		va->keys.has_previous = true;
	va->keys_rotated_at =
	        json_integer_value(json_object_get(obj, "rotated_at"));
	va->has_keys = true;
	json_decref(obj);
	return 0;
}

int api_access_load(struct db_client *client, struct view_snap *v,
                    struct err *e)
{
	struct view_auth *va = &v->auth;
	struct db_rows rows = {0};
	uint64_t i;
	int rv;

	rv = api_query_array(
	        client,
	        "SELECT u.userid, u.enable, u.expire, u.password_hash, "
	        "u.firstname, u.lastname, u.email, u.comment, "
	        "(SELECT group_concat(groupid) FROM group_members g "
	        "WHERE g.userid = u.userid) FROM users u ORDER BY "
	        "u.userid",
	        sizeof *va->users, &rows, (void **)&va->users, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows; i++) {
		struct api_user *u = &va->users[va->nusers++];

		copy_text(u->userid, sizeof u->userid, db_rows_at(&rows, i, 0));
		u->enable = db_rows_at(&rows, i, 1)->integer != 0;
		u->expire = db_rows_at(&rows, i, 2)->integer;
		u->password_hash = dup_text(db_rows_at(&rows, i, 3));
		u->firstname = dup_text(db_rows_at(&rows, i, 4));
		u->lastname = dup_text(db_rows_at(&rows, i, 5));
		u->email = dup_text(db_rows_at(&rows, i, 6));
		u->comment = dup_text(db_rows_at(&rows, i, 7));
		copy_text(u->groups, sizeof u->groups, db_rows_at(&rows, i, 8));
	}
	db_rows_free(&rows);

	rv = api_query_array(client,
	                     "SELECT userid, tokenid, digest, privsep, expire, "
	                     "comment FROM tokens ORDER BY userid, tokenid",
	                     sizeof *va->tokens, &rows, (void **)&va->tokens,
	                     e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows; i++) {
		struct api_token *t = &va->tokens[va->ntokens++];

		copy_text(t->userid, sizeof t->userid, db_rows_at(&rows, i, 0));
		copy_text(t->tokenid, sizeof t->tokenid,
		          db_rows_at(&rows, i, 1));
		copy_text(t->digest, sizeof t->digest, db_rows_at(&rows, i, 2));
		t->privsep = db_rows_at(&rows, i, 3)->integer != 0;
		t->expire = db_rows_at(&rows, i, 4)->integer;
		t->comment = dup_text(db_rows_at(&rows, i, 5));
	}
	db_rows_free(&rows);

	rv = api_query_array(
	        client,
	        "SELECT path, ugid_type, ugid, roleid, propagate FROM "
	        "acl ORDER BY path, ugid_type, ugid, roleid",
	        sizeof *va->acl, &rows, (void **)&va->acl, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows; i++) {
		struct acl_entry *a = &va->acl[va->nacl++];
		char type[8];

		copy_text(a->path, sizeof a->path, db_rows_at(&rows, i, 0));
		copy_text(type, sizeof type, db_rows_at(&rows, i, 1));
		a->type = strcmp(type, "group") == 0   ? ACL_GROUP
		          : strcmp(type, "token") == 0 ? ACL_TOKEN
		                                       : ACL_USER;
		copy_text(a->ugid, sizeof a->ugid, db_rows_at(&rows, i, 2));
		copy_text(a->roleid, sizeof a->roleid, db_rows_at(&rows, i, 3));
		a->propagate = db_rows_at(&rows, i, 4)->integer != 0;
	}
	db_rows_free(&rows);

	rv = api_query_array(
	        client,
	        "SELECT roleid, privs FROM roles WHERE special = 0 "
	        "ORDER BY roleid",
	        sizeof *va->roles, &rows, (void **)&va->roles, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows; i++) {
		struct acl_role *r = &va->roles[va->nroles];
		char privs[ACL_PRIVS_TEXT_MAX];
		struct err sub;

		copy_text(r->roleid, sizeof r->roleid, db_rows_at(&rows, i, 0));
		copy_text(privs, sizeof privs, db_rows_at(&rows, i, 1));
		if (acl_privs_parse(privs, &r->privs, &sub) == 0)
			va->nroles++;
	}
	db_rows_free(&rows);

	rv = api_query_array(
	        client, "SELECT groupid, userid FROM group_members",
	        sizeof *va->members, &rows, (void **)&va->members, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < rows.nrows; i++) {
		struct acl_group_member *m = &va->members[va->nmembers++];

		copy_text(m->groupid, sizeof m->groupid,
		          db_rows_at(&rows, i, 0));
		copy_text(m->userid, sizeof m->userid, db_rows_at(&rows, i, 1));
	}
	db_rows_free(&rows);

	rv = db_query(
	        client,
	        "SELECT value FROM cluster_secrets WHERE name = '" KEYS_SECRET_NAME
	        "'",
	        NULL, 0, &rows, e);
	if (rv != 0)
		return rv;
	rv = load_keys(va, &rows, e);
	db_rows_free(&rows);
	return rv;
}

void api_access_snap_free(struct view_snap *v)
{
	struct view_auth *va = &v->auth;
	size_t i;

	for (i = 0; i < va->nusers; i++) {
		mem_free(va->users[i].password_hash);
		mem_free(va->users[i].firstname);
		mem_free(va->users[i].lastname);
		mem_free(va->users[i].email);
		mem_free(va->users[i].comment);
	}
	for (i = 0; i < va->ntokens; i++)
		mem_free(va->tokens[i].comment);
	mem_free(va->users);
	mem_free(va->tokens);
	mem_free(va->acl);
	mem_free(va->roles);
	mem_free(va->members);
	memset(va, 0, sizeof *va);
}

void api_access_world(const struct view_snap *v, struct acl_world *w)
{
	memset(w, 0, sizeof *w);
	w->entries = v->auth.acl;
	w->nentries = v->auth.nacl;
	w->roles = v->auth.roles;
	w->nroles = v->auth.nroles;
	w->members = v->auth.members;
	w->nmembers = v->auth.nmembers;
}

static const struct api_user *find_user(const struct view_snap *v,
                                        const char *userid)
{
	size_t i;

	for (i = 0; i < v->auth.nusers; i++) {
		if (strcmp(v->auth.users[i].userid, userid) == 0)
			return &v->auth.users[i];
	}
	return NULL;
}

static const struct api_token *
find_token(const struct view_snap *v, const char *userid, const char *tokenid)
{
	size_t i;

	for (i = 0; i < v->auth.ntokens; i++) {
		if (strcmp(v->auth.tokens[i].userid, userid) == 0 &&
		    strcmp(v->auth.tokens[i].tokenid, tokenid) == 0)
			return &v->auth.tokens[i];
	}
	return NULL;
}

/* root@pam exists whether or not it has a row. */
static bool user_is_active(const struct view_snap *v, const char *userid,
                           int64_t now)
{
	const struct api_user *u = find_user(v, userid);

	if (u == NULL)
		return strcmp(userid, "root@pam") == 0;
	return u->enable && (u->expire == 0 || u->expire > now);
}

/* ------------------------------------------------------ ticket keys */

struct keys_ctx {
	char value[256];
};

static int keys_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct keys_ctx *k = data;
	struct db_rows rows = {0};
	unsigned char key[AUTH_KEY_LEN];
	char cur[64], prev[64] = "";
	json_t *obj = NULL;
	int64_t now = api_wall_s(), rotated = 0;
	struct wire_value p[2];
	int rv;

	rv = db_tx_query(
	        tx,
	        "SELECT value FROM cluster_secrets WHERE name = '" KEYS_SECRET_NAME
	        "'",
	        NULL, 0, &rows, e);
	if (rv != 0)
		return rv;
	if (rows.nrows > 0 &&
	    json_parse_bounded(db_rows_at(&rows, 0, 0)->text.ptr,
	                       db_rows_at(&rows, 0, 0)->text.len, 4096, 4, &obj,
	                       e) == 0) {
		const char *c =
		        json_string_value(json_object_get(obj, "current"));

		rotated =
		        json_integer_value(json_object_get(obj, "rotated_at"));
		if (c != NULL)
			snprintf(prev, sizeof prev, "%s", c);
		json_decref(obj);
	}
	db_rows_free(&rows);
	/* Someone else made or rotated them meanwhile. */
	if (prev[0] != '\0' && now - rotated < KEYS_ROTATE_S)
		return 0;
	rv = rpc_random_bytes(key, sizeof key, e);
	if (rv != 0)
		return rv;
	rpc_base64_encode(key, sizeof key, cur);
	if (prev[0] != '\0')
		snprintf(k->value, sizeof k->value,
		         "{\"current\":\"%s\",\"previous\":\"%s\","
		         "\"rotated_at\":%lld}",
		         cur, prev, (long long)now);
	else
		snprintf(k->value, sizeof k->value,
		         "{\"current\":\"%s\",\"rotated_at\":%lld}", cur,
		         (long long)now);
	p[0] = wire_value_text(KEYS_SECRET_NAME);
	p[1] = wire_value_text(k->value);
	return db_tx_exec(tx,
	                  "INSERT INTO cluster_secrets (name, value) VALUES "
	                  "(?, ?) ON CONFLICT (name) DO UPDATE SET value = "
	                  "excluded.value",
	                  p, 2, NULL, e);
}

static int keys_run(struct db_client *client, struct db_op *op, struct err *e)
{
	struct keys_ctx k;

	(void)op;
	return db_write(client, 0, keys_tx, &k, e);
}

static void keys_done(struct db_op *op, int status)
{
	struct node_api *a = op->data;

	a->is_keys_running = false;
	if (status != 0)
		LOG_WARN("api", "cannot make the ticket keys", "error=\"%s\"",
		         op->err.msg);
	else if (a->cluster != NULL && a->cluster->feed != NULL)
		db_feed_poll_soon(a->cluster->feed);
	api_maybe_stopped(a);
}

void api_access_after_load(struct node_api *a)
{
	const struct view_auth *va = &a->snap->auth;
	uint64_t now = api_now_ms();

	if (va->has_keys && api_wall_s() - va->keys_rotated_at < KEYS_ROTATE_S)
		return;
	if (a->is_keys_running || now - a->keys_tried_ms < KEYS_RETRY_MS ||
	    a->cluster->db == NULL)
		return;
	a->keys_tried_ms = now;
	a->keys_op.data = a;
	if (db_submit(a->cluster->db, &a->keys_op, keys_run, keys_done) == 0)
		a->is_keys_running = true;
}

/* --------------------------------------------------- authentication */

/* Fills {param} of a permission path from the request. */
static int perm_path(const struct api_call *c, const char *tmpl, char *out,
                     size_t size)
{
	size_t o = 0;
	const char *p = tmpl;

	while (*p != '\0' && o + 1 < size) {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			char name[64];
			json_t *v;
			char text[128];

			if (end == NULL || (size_t)(end - p - 1) >= sizeof name)
				return -EINVAL;
			snprintf(name, sizeof name, "%.*s", (int)(end - p - 1),
			         p + 1);
			v = json_object_get(c->match.params, name);
			if (json_is_string(v))
				snprintf(text, sizeof text, "%s",
				         json_string_value(v));
			else if (json_is_integer(v))
				snprintf(text, sizeof text, "%lld",
				         (long long)json_integer_value(v));
			else
				return -EINVAL;
			o += (size_t)snprintf(out + o, size - o, "%s", text);
			p = end + 1;
			continue;
		}
		out[o++] = *p++;
	}
	if (o >= size)
		return -E2BIG;
	out[o] = '\0';
	return 0;
}

bool api_access_can(struct api_call *c, const char *path, const char *privs)
{
	struct acl_world w;
	acl_privs_t want, have;
	struct err e;

	if (c->a->snap == NULL || acl_privs_parse(privs, &want, &e) != 0)
		return false;
	api_access_world(c->a->snap, &w);
	have = acl_privs_at(&w, &c->who, path);
	return (have & want) != 0;
}

static void set_principal_text(struct api_call *c)
{
	if (c->who.tokenid[0] != '\0')
		snprintf(c->principal, sizeof c->principal, "%s!%s",
		         c->who.userid, c->who.tokenid);
	else
		snprintf(c->principal, sizeof c->principal, "%s",
		         c->who.userid);
}

/* Who the request is; 0, or an HTTP status (401) with why. */
static int authenticate(struct api_call *c, char *why, size_t size)
{
	const struct view_snap *v = c->a->snap;
	struct auth_credential cred;
	int64_t now = api_wall_s(), issued;
	char userid[AUTH_USERID_MAX + 1];
	struct err e;

	memset(&c->who, 0, sizeof c->who);
	if (c->fwd != NULL && !c->is_remote) {
		/* A member authenticated it; only node certificates can
		 * send ApiForward (node/rpc.c). */
		char *bang = strchr(c->principal, '!');

		if (c->principal[0] == '\0') {
			snprintf(why, size, "No ticket");
			return 401;
		}
		snprintf(c->who.userid, sizeof c->who.userid, "%.*s",
		         bang != NULL ? (int)(bang - c->principal)
		                      : (int)strlen(c->principal),
		         c->principal);
		if (bang != NULL) {
			const struct api_token *t;

			snprintf(c->who.tokenid, sizeof c->who.tokenid, "%s",
			         bang + 1);
			t = find_token(v, c->who.userid, c->who.tokenid);
			if (t == NULL || (t->expire != 0 && t->expire <= now)) {
				snprintf(why, size, "invalid token value!");
				return 401;
			}
			c->who.privsep = t->privsep;
		}
		if (!user_is_active(v, c->who.userid, now)) {
			snprintf(why, size, "user '%s' is disabled or expired",
			         c->who.userid);
			return 401;
		}
		return 0;
	}
	if (auth_credential_parse(
	            c->authorization,
	            c->authorization != NULL ? strlen(c->authorization) : 0,
	            c->cookie, c->cookie != NULL ? strlen(c->cookie) : 0, &cred,
	            &e) != 0) {
		snprintf(why, size, "%.200s", e.msg);
		return 401;
	}
	switch (cred.kind) {
	case AUTH_NONE:
		snprintf(why, size, "No ticket");
		return 401;
	case AUTH_TOKEN: {
		const struct api_token *t =
		        find_token(v, cred.userid, cred.tokenid);
		char digest[65];

		rpc_sha256_hex(cred.secret, strlen(cred.secret), digest);
		if (t == NULL || !rpc_const_equal(digest, t->digest, 64)) {
			snprintf(why, size, "invalid token value!");
			return 401;
		}
		if (t->expire != 0 && t->expire <= now) {
			snprintf(why, size, "token '%s!%s' expired",
			         cred.userid, cred.tokenid);
			return 401;
		}
		if (!user_is_active(v, cred.userid, now)) {
			snprintf(why, size, "user '%s' is disabled or expired",
			         cred.userid);
			return 401;
		}
		snprintf(c->who.userid, sizeof c->who.userid, "%s",
		         cred.userid);
		snprintf(c->who.tokenid, sizeof c->who.tokenid, "%s",
		         cred.tokenid);
		c->who.privsep = t->privsep;
		break;
	}
	case AUTH_TICKET:
		if (!v->auth.has_keys ||
		    auth_ticket_verify(&v->auth.keys, cred.ticket, now, userid,
		                       &issued, &e) != 0) {
			snprintf(why, size, "invalid ticket: %.200s",
			         v->auth.has_keys ? e.msg : "no keys yet");
			return 401;
		}
		if (!user_is_active(v, userid, now)) {
			snprintf(why, size, "user '%s' is disabled or expired",
			         userid);
			return 401;
		}
		/* A ticket is a cookie a browser sends by itself: writes
		 * must prove they come from the page that logged in. */
		if (c->def->perm.flags & PERM_PUBLIC)
			;
		else if (c->match.route->method != API_GET &&
		         (c->csrf == NULL ||
		          auth_csrf_verify(&v->auth.keys, c->csrf, userid, now,
		                           &e) != 0)) {
			snprintf(why, size,
			         "Permission denied - invalid csrf token");
			return 401;
		}
		snprintf(c->who.userid, sizeof c->who.userid, "%s", userid);
		break;
	}
	return 0;
}

bool api_access_authorize(struct api_call *c)
{
	const struct route_perm *perm = &c->def->perm;
	char why[256], path[ACL_PATH_MAX + 1];
	const char *self;
	int status;

	if (perm->flags & PERM_PUBLIC)
		return true;
	if (api_view_wait(c))
		return false;
	if (api_view_missing(c))
		return false;
	status = authenticate(c, why, sizeof why);
	if (status != 0) {
		api_call_deny(c, status, why);
		return false;
	}
	set_principal_text(c);
	if (strcmp(c->who.userid, "root@pam") == 0 &&
	    (c->who.tokenid[0] == '\0' || !c->who.privsep))
		return true;
	if (perm->flags & PERM_ROOT) {
		api_call_fail_http(
		        c, 403, "Permission check failed (user != root@pam)");
		return false;
	}
	self = json_string_value(json_object_get(c->match.params, "userid"));
	/* A token is never its user's "self": else a privsep token could
	 * make itself an unrestricted sibling. */
	if ((perm->flags & PERM_SELF) && self != NULL &&
	    c->who.tokenid[0] == '\0' && strcmp(self, c->who.userid) == 0)
		return true;
	if ((perm->flags & PERM_OWNER) && api_task_is_owner(c))
		return true;
	if (perm->privs == NULL)
		return true;
	if (perm_path(c, perm->path, path, sizeof path) != 0) {
		api_call_fail_http(c, 400, "bad permission path parameters");
		return false;
	}
	if (!api_access_can(c, path, perm->privs)) {
		char msg[ACL_PATH_MAX + 200];

		snprintf(msg, sizeof msg, "Permission check failed (%s, %s)",
		         path, perm->privs);
		api_call_fail_http(c, 403, msg);
		return false;
	}
	return true;
}

/* ------------------------------------------------------ DB writes */

struct write_ctx *api_write_new(void)
{
	return mem_calloc(1, sizeof(struct write_ctx));
}

void api_write_free(struct write_ctx *w)
{
	unsigned i;

	/* They may be keys (storage keyrings, token digests). */
	for (i = 0; i < w->nstrings; i++) {
		explicit_bzero(w->strings[i], strlen(w->strings[i]));
		mem_free(w->strings[i]);
	}
	json_decref(w->data);
	mem_free(w);
}

/* A copy of text that lives as long as w. */
const char *api_write_keep(struct write_ctx *w, const char *text)
{
	char *copy;

	if (w->nstrings == CAIRN_ARRAY_SIZE(w->strings)) {
		w->has_oom = true;
		return NULL;
	}
	copy = mem_alloc(strlen(text) + 1);
	if (copy == NULL) {
		w->has_oom = true;
		return NULL;
	}
	strcpy(copy, text);
	w->strings[w->nstrings++] = copy;
	return copy;
}

struct write_stmt *api_write_add(struct write_ctx *w, const char *sql)
{
	struct write_stmt *st;

	CAIRN_ASSERT(w->n < WRITE_STMTS);
	st = &w->st[w->n++];
	st->sql = sql;
	return st;
}

void api_write_text(struct write_ctx *w, struct write_stmt *st,
                    const char *text)
{
	char *copy = NULL;

	CAIRN_ASSERT(st->nparams < WRITE_PARAMS);
	if (text == NULL) {
		st->params[st->nparams++] =
		        (struct wire_value){.type = WIRE_NULL};
		return;
	}
	copy = (char *)api_write_keep(w, text);
	if (copy == NULL) {
		st->params[st->nparams++] =
		        (struct wire_value){.type = WIRE_NULL};
		return;
	}
	st->params[st->nparams++] = wire_value_text(copy);
}

void api_write_int(struct write_stmt *st, int64_t v)
{
	CAIRN_ASSERT(st->nparams < WRITE_PARAMS);
	st->params[st->nparams++] = wire_value_integer(v);
}

void api_write_opt_int(struct write_stmt *st, bool has, int64_t v)
{
	CAIRN_ASSERT(st->nparams < WRITE_PARAMS);
	st->params[st->nparams++] =
	        has ? wire_value_integer(v) : wire_value_null();
}

static int write_tx(struct db_tx *tx, void *data, struct err *e)
{
	struct write_ctx *w = data;
	unsigned i;
	int rv;

	for (i = 0; i < w->n; i++) {
		struct write_stmt *st = &w->st[i];
		struct wire_result res = {0};

		rv = db_tx_exec(tx, st->sql, st->params, st->nparams, &res, e);
		if (rv != 0) {
			if (st->exists_msg != NULL &&
			    strstr(e->msg, "UNIQUE") != NULL)
				return err_set(e, -EEXIST, "%s",
				               st->exists_msg);
			return rv;
		}
		if (st->none_msg != NULL && res.rows_affected == 0)
			return err_set(e, -ENOENT, "%s", st->none_msg);
	}
	return 0;
}

static int write_run(struct db_client *client, struct db_op *op, struct err *e)
{
	struct api_call *c = op->data;

	return db_write(client, 0, write_tx, c->ctx, e);
}

static void write_done(struct db_op *op, int status)
{
	struct api_call *c = op->data;
	struct write_ctx *w = c->ctx;
	json_t *data = w->data;

	c->ctx = NULL;
	w->data = NULL;
	api_write_free(w);
	if (c->a->cluster != NULL && c->a->cluster->feed != NULL)
		db_feed_poll_soon(c->a->cluster->feed);
	if (status != 0) {
		json_decref(data);
		api_call_done(c, status, &op->err);
		return;
	}
	api_reply_json(c, data != NULL ? data : json_null());
}

/* Runs w for c (owns w from here). */
void api_write_submit(struct api_call *c, struct write_ctx *w)
{
	if (w->has_oom) {
		api_write_free(w);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	c->ctx = w;
	c->op.data = c;
	if (c->a->cluster == NULL || c->a->cluster->db == NULL ||
	    db_submit(c->a->cluster->db, &c->op, write_run, write_done) != 0) {
		c->ctx = NULL;
		api_write_free(w);
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
	}
}

static int background_run(struct db_client *client, struct db_op *op,
                          struct err *e)
{
	return db_write(client, 0, write_tx, op->data, e);
}

static void background_done(struct db_op *op, int status)
{
	struct write_ctx *w = op->data;
	struct node_api *a = w->a;

	if (a->cluster != NULL && a->cluster->feed != NULL)
		db_feed_poll_soon(a->cluster->feed);
	if (w->done != NULL)
		w->done(a, status, &op->err, w->done_data);
	api_write_free(w);
	a->nbackground--;
	api_maybe_stopped(a);
}

int api_write_background(struct node_api *a, struct write_ctx *w,
                         void (*done)(struct node_api *a, int status,
                                      const struct err *e, void *data),
                         void *data)
{
	w->a = a;
	w->done = done;
	w->done_data = data;
	w->op.data = w;
	if (w->has_oom || a->cluster == NULL || a->cluster->db == NULL ||
	    db_submit(a->cluster->db, &w->op, background_run,
	              background_done) != 0) {
		api_write_free(w);
		return -EBUSY;
	}
	a->nbackground++;
	return 0;
}

/* Sets a parameter error and fails c with 400. */
void api_param_error(struct api_call *c, const char *name, const char *fmt, ...)
        CAIRN_PRINTF(3, 4);
void api_param_error(struct api_call *c, const char *name, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	json_object_set_new(c->errors, name, json_string(why));
	api_call_fail(c, -EINVAL, "%s: %s", name, why);
}

/* ---------------------------------------------------- password work */

/* Hashing and verifying run on the cpu pool: ~55 ms each. */
struct hash_ctx {
	char password[RPC_PASSWORD_MAX + 1];
	char stored[RPC_PASSWORD_HASH_MAX];
	char hash[RPC_PASSWORD_HASH_MAX];
	bool is_verify;
	int rv;
	struct err err;
	void (*then)(struct api_call *c, struct hash_ctx *h);
};

static void hash_work(struct pool_work *w)
{
	struct api_call *c = w->data;
	struct hash_ctx *h = c->ctx;

	if (h->is_verify)
		h->rv = rpc_password_verify(h->password, h->stored, &h->err);
	else
		h->rv = rpc_password_hash(h->password, 0, h->hash, &h->err);
	memset(h->password, 0, sizeof h->password);
}

static void hash_done(struct pool_work *w, int status)
{
	struct api_call *c = w->data;
	struct hash_ctx *h = c->ctx;

	c->ctx = NULL;
	if (status != 0) {
		h->rv = status;
		err_set(&h->err, status, "the node is stopping");
	}
	h->then(c, h);
	memset(h, 0, sizeof *h);
	mem_free(h);
}

static void hash_submit(struct api_call *c, const char *password,
                        const char *stored,
                        void (*then)(struct api_call *c, struct hash_ctx *h))
{
	struct hash_ctx *h;

	if (strlen(password) > RPC_PASSWORD_MAX) {
		api_param_error(c, "password", "longer than %d bytes",
		                RPC_PASSWORD_MAX);
		return;
	}
	h = mem_calloc(1, sizeof *h);
	if (h == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(h->password, sizeof h->password, "%s", password);
	if (stored != NULL) {
		h->is_verify = true;
		snprintf(h->stored, sizeof h->stored, "%s", stored);
	}
	h->then = then;
	c->ctx = h;
	c->work.data = c;
	if (api_pool_submit(c->a->cluster->node->cpu_pool, &c->work, hash_work,
	                    hash_done) != 0) {
		c->ctx = NULL;
		memset(h, 0, sizeof *h);
		mem_free(h);
		api_call_fail(c, -EBUSY, "too many logins in progress, retry");
	}
}

/* Only root@pam itself may touch root@pam (its row, password, tokens),
 * and the pam realm holds nobody else. */
static bool touches_root(struct api_call *c, const char *userid)
{
	if (userid == NULL || strstr(userid, "@pam") == NULL)
		return false;
	if (strcmp(userid, "root@pam") != 0) {
		api_param_error(
		        c, "userid",
		        "the pam realm has only root@pam here; make users "
		        "in the pve realm");
		return true;
	}
	if (strcmp(c->who.userid, "root@pam") != 0) {
		api_call_fail_http(c, 403,
		                   "Permission check failed (only root@pam may "
		                   "change root@pam)");
		return true;
	}
	return false;
}

/* ------------------------------------------------ /access: realms */

static void route_domains(struct api_call *c)
{
	api_reply_json(c,
	               json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:i}]",
	                         "realm", "pam", "type", "pam", "comment",
	                         "root@pam only: its password is set on a node "
	                         "with `cairn user passwd root@pam`",
	                         "realm", "pve", "type", "pve", "comment",
	                         "cairn authentication server", "default", 1));
}

/* ------------------------------------------------ /access: tickets */

/* {priv: 1} objects of Proxmox's `cap`: what the UI may show. */
static json_t *caps(struct api_call *c)
{
	static const char *const areas[][2] = {
	        {"vms", "/vms"},
	        {"storage", "/storage"},
	        {"access", "/access"},
	        {"nodes", "/nodes"},
	        {"dc", "/"},
	        {"sdn", "/sdn"},
	        {"mapping", "/mapping"},
	};
	struct acl_world w;
	json_t *cap = json_object();
	size_t i;
	int p;

	api_access_world(c->a->snap, &w);
	for (i = 0; cap != NULL && i < CAIRN_ARRAY_SIZE(areas); i++) {
		acl_privs_t have = acl_privs_at(&w, &c->who, areas[i][1]);
		json_t *o = json_object();

		for (p = 0; o != NULL && p < (int)acl_priv_count(); p++) {
			if (have & ACL_PRIV(p))
				json_object_set_new(o, acl_priv_name(p),
				                    json_integer(1));
		}
		json_object_set_new(cap, areas[i][0], o);
	}
	return cap;
}

static void ticket_reply(struct api_call *c, const char *userid)
{
	const struct view_snap *v = c->a->snap;
	char ticket[AUTH_TICKET_MAX], csrf[AUTH_CSRF_MAX];
	int64_t now = api_wall_s();
	struct err e;

	memset(&c->who, 0, sizeof c->who);
	snprintf(c->who.userid, sizeof c->who.userid, "%s", userid);
	if (auth_ticket_make(&v->auth.keys, userid, now, ticket, &e) != 0 ||
	    auth_csrf_make(&v->auth.keys, userid, now, csrf, &e) != 0) {
		api_call_done(c, -EINVAL, &e);
		return;
	}
	api_reply_json(c, json_pack("{s:s, s:s, s:s, s:s, s:o}", "username",
	                            userid, "ticket", ticket,
	                            "CSRFPreventionToken", csrf, "clustername",
	                            c->a->cluster->name, "cap", caps(c)));
}

static void login_checked(struct api_call *c, struct hash_ctx *h)
{
	const Cairn__AccessTicketRequest *q = (const void *)c->msg;
	char userid[AUTH_USERID_MAX + 1];

	if (c->is_replied || c->a->cluster == NULL) {
		api_call_fail(c, -ESHUTDOWN, "the node is stopping");
		return;
	}
	if (h->rv == -EBUSY || h->rv == -ECANCELED) {
		api_call_fail(c, -EBUSY, "%s", h->err.msg);
		return;
	}
	if (h->rv != 0) {
		LOG_INFO("api", "authentication failure", "user=\"%s\"",
		         q->username);
		api_call_deny(c, 401, "authentication failure");
		return;
	}
	snprintf(userid, sizeof userid, "%s", q->username);
	if (q->realm != NULL && strchr(userid, '@') == NULL)
		snprintf(userid, sizeof userid, "%s@%s", q->username, q->realm);
	ticket_reply(c, userid);
}

static void route_ticket(struct api_call *c)
{
	const Cairn__AccessTicketRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	const struct api_user *u;
	char userid[AUTH_USERID_MAX + 2];
	int64_t now = api_wall_s(), issued;
	struct err e;

	if (c->match.route->method == API_GET) {
		api_reply_json(c, json_null()); /* Proxmox: a dummy */
		return;
	}
	if (q->username == NULL || q->password == NULL) {
		api_param_error(c,
		                q->username == NULL ? "username" : "password",
		                "property is missing and it is not optional");
		return;
	}
	if (q->realm != NULL && strchr(q->username, '@') == NULL)
		snprintf(userid, sizeof userid, "%s@%s", q->username, q->realm);
	else
		snprintf(userid, sizeof userid, "%s", q->username);
	if (auth_userid_check(userid, &e) != 0) {
		api_call_deny(c, 401, "authentication failure");
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	if (!v->auth.has_keys) {
		api_call_fail(c, -ENOTCONN,
		              "the cluster's ticket keys are not made yet, "
		              "retry in a second");
		return;
	}
	/* Renewal: the current ticket as the password (proxmoxer). */
	if (strncmp(q->password, "PVE:", 4) == 0) {
		char owner[AUTH_USERID_MAX + 1];

		if (auth_ticket_verify(&v->auth.keys, q->password, now, owner,
		                       &issued, &e) != 0 ||
		    strcmp(owner, userid) != 0 ||
		    !user_is_active(v, userid, now)) {
			api_call_deny(c, 401, "authentication failure");
			return;
		}
		ticket_reply(c, userid);
		return;
	}
	/* Guessing is paced by the held 401s; once they are all taken,
	 * logins wait for a slot instead of failing fast. */
	if (c->a->ndelayed >= API_DENY_HELD) {
		api_call_fail(c, -EBUSY,
		              "too many failed logins in progress, retry");
		return;
	}
	/* Unknown, disabled and password-less users cost a hash too, so
	 * that timing does not tell which users exist. */
	u = find_user(v, userid);
	hash_submit(c, q->password,
	            u != NULL && u->password_hash != NULL &&
	                            user_is_active(v, userid, now)
	                    ? u->password_hash
	                    : "$pbkdf2-sha256$300000$AAAAAAAAAAAAAAAAAAAAAA$"
	                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	            login_checked);
}

/* ------------------------------------------------ /access: users */

static json_t *user_json(const struct view_snap *v, const struct api_user *u,
                         bool with_tokens)
{
	json_t *o = json_pack(
	        "{s:s, s:i, s:I, s:s}", "userid", u->userid, "enable",
	        (int)u->enable, "expire", (json_int_t)u->expire, "realm-type",
	        strstr(u->userid, "@pam") != NULL ? "pam" : "pve");
	size_t i;

	if (o == NULL)
		return NULL;
	if (u->firstname != NULL)
		json_object_set_new(o, "firstname", json_string(u->firstname));
	if (u->lastname != NULL)
		json_object_set_new(o, "lastname", json_string(u->lastname));
	if (u->email != NULL)
		json_object_set_new(o, "email", json_string(u->email));
	if (u->comment != NULL)
		json_object_set_new(o, "comment", json_string(u->comment));
	if (u->groups[0] != '\0')
		json_object_set_new(o, "groups", json_string(u->groups));
	if (with_tokens) {
		json_t *list = json_array();

		for (i = 0; list != NULL && i < v->auth.ntokens; i++) {
			const struct api_token *t = &v->auth.tokens[i];

			if (strcmp(t->userid, u->userid) != 0)
				continue;
			json_array_append_new(
			        list, json_pack("{s:s, s:i, s:I}", "tokenid",
			                        t->tokenid, "privsep",
			                        (int)t->privsep, "expire",
			                        (json_int_t)t->expire));
		}
		json_object_set_new(o, "tokens", list);
	}
	return o;
}

static void route_users(struct api_call *c)
{
	const Cairn__AccessUsersRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	bool all;
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	all = api_access_can(c, "/access/groups", "User.Modify,Sys.Audit");
	list = json_array();
	for (i = 0; list != NULL && i < v->auth.nusers; i++) {
		const struct api_user *u = &v->auth.users[i];

		if (!all && strcmp(u->userid, c->who.userid) != 0)
			continue;
		if (q->has_enabled && q->enabled != u->enable)
			continue;
		json_array_append_new(list, user_json(v, u, q->full));
	}
	api_reply_json(c, list);
}

static void route_user_get(struct api_call *c)
{
	const Cairn__AccessUserRequest *q = (const void *)c->msg;
	const struct api_user *u;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	u = find_user(c->a->snap, q->userid);
	if (u == NULL) {
		api_call_fail(c, -ENOENT, "no such user ('%s')", q->userid);
		return;
	}
	api_reply_json(c, user_json(c->a->snap, u, true));
}

static void user_write(struct api_call *c, struct hash_ctx *h)
{
	const Cairn__AccessUserRequest *q = (const void *)c->msg;
	bool is_create = c->match.route->method == API_POST;
	struct write_ctx *w;
	struct write_stmt *st;
	char msg[AUTH_USERID_MAX + 64];

	if (h != NULL && h->rv != 0) {
		api_call_done(c, h->rv == -EBUSY ? -EBUSY : -EINVAL, &h->err);
		return;
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	if (is_create) {
		st = api_write_add(w,
		                   "INSERT INTO users (userid, enable, expire, "
		                   "password_hash, firstname, lastname, email, "
		                   "comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
		snprintf(msg, sizeof msg,
		         "create user failed: user '%s' "
		         "already exists",
		         q->userid);
		st->exists_msg = api_write_keep(w, msg);
		api_write_text(w, st, q->userid);
		api_write_int(st, q->has_enable ? q->enable : 1);
		api_write_int(st, q->has_expire ? q->expire : 0);
		api_write_text(w, st, h != NULL ? h->hash : NULL);
		api_write_text(w, st, q->firstname);
		api_write_text(w, st, q->lastname);
		api_write_text(w, st, q->email);
		api_write_text(w, st, q->comment);
	} else {
		snprintf(msg, sizeof msg, "no such user ('%s')", q->userid);
		st = api_write_add(w, "UPDATE users SET "
		                      "enable = coalesce(?, enable), "
		                      "expire = coalesce(?, expire), "
		                      "firstname = coalesce(?, firstname), "
		                      "lastname = coalesce(?, lastname), "
		                      "email = coalesce(?, email), "
		                      "comment = coalesce(?, comment) "
		                      "WHERE userid = ?");
		st->none_msg = api_write_keep(w, msg);
		api_write_opt_int(st, q->has_enable, q->enable);
		api_write_opt_int(st, q->has_expire, q->expire);
		api_write_text(w, st, q->firstname);
		api_write_text(w, st, q->lastname);
		api_write_text(w, st, q->email);
		api_write_text(w, st, q->comment);
		api_write_text(w, st, q->userid);
	}
	if (q->groups != NULL) {
		char groups[512], *save = NULL, *g;

		if (!q->has_append || !q->append) {
			st = api_write_add(w, "DELETE FROM group_members WHERE "
			                      "userid = ?");
			api_write_text(w, st, q->userid);
		}
		snprintf(groups, sizeof groups, "%s", q->groups);
		for (g = strtok_r(groups, ",; ", &save);
		     g != NULL && w->n < WRITE_STMTS - 2;
		     g = strtok_r(NULL, ",; ", &save)) {
			st = api_write_add(w,
			                   "INSERT INTO groups (groupid) "
			                   "VALUES (?) ON CONFLICT DO NOTHING");
			api_write_text(w, st, g);
			st = api_write_add(
			        w, "INSERT INTO group_members (groupid, "
			           "userid) VALUES (?, ?) ON CONFLICT "
			           "DO NOTHING");
			api_write_text(w, st, g);
			api_write_text(w, st, q->userid);
		}
		if (g != NULL) {
			api_write_free(w);
			api_param_error(c, "groups",
			                "too many groups in one request");
			return;
		}
	}
	api_write_submit(c, w);
}

static void route_user_set(struct api_call *c)
{
	const Cairn__AccessUserRequest *q = (const void *)c->msg;
	struct err e;

	if (q->userid == NULL || auth_userid_check(q->userid, &e) != 0) {
		api_param_error(c, "userid", "%s",
		                q->userid == NULL ? "property is missing"
		                                  : e.msg + strlen("userid: "));
		return;
	}
	if (touches_root(c, q->userid))
		return;
	if (q->password != NULL && strlen(q->password) < 8) {
		api_param_error(c, "password", "at least 8 characters");
		return;
	}
	if (q->password != NULL && c->match.route->method == API_POST) {
		if (strstr(q->userid, "@pve") == NULL) {
			api_param_error(c, "password",
			                "only users of the pve realm have "
			                "passwords here");
			return;
		}
		hash_submit(c, q->password, NULL, user_write);
		return;
	}
	if (q->password != NULL) {
		api_param_error(c, "password",
		                "change passwords with PUT /access/password");
		return;
	}
	user_write(c, NULL);
}

static void route_user_delete(struct api_call *c)
{
	const Cairn__AccessUserRequest *q = (const void *)c->msg;
	struct write_ctx *w;
	struct write_stmt *st;
	char msg[AUTH_USERID_MAX + 64];

	if (q->userid == NULL || strcmp(q->userid, "root@pam") == 0) {
		api_call_fail(c, -EPERM, "root@pam cannot be deleted");
		return;
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(msg, sizeof msg, "delete user failed: no such user ('%s')",
	         q->userid);
	st = api_write_add(w, "DELETE FROM users WHERE userid = ?");
	st->none_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->userid);
	st = api_write_add(w, "DELETE FROM tokens WHERE userid = ?");
	api_write_text(w, st, q->userid);
	st = api_write_add(w, "DELETE FROM group_members WHERE userid = ?");
	api_write_text(w, st, q->userid);
	st = api_write_add(w, "DELETE FROM acl WHERE (ugid_type = 'user' AND "
	                      "ugid = ?1) OR (ugid_type = 'token' AND "
	                      "substr(ugid, 1, length(?2) + 1) = ?2 || '!')");
	api_write_text(w, st, q->userid);
	api_write_text(w, st, q->userid);
	api_write_submit(c, w);
}

/* PUT /access/password: the caller's own, or anyone's with
 * User.Modify (checked by the route's permission). */
static void password_write(struct api_call *c, struct hash_ctx *h)
{
	const Cairn__AccessPasswordRequest *q = (const void *)c->msg;
	struct write_ctx *w;
	struct write_stmt *st;
	char msg[AUTH_USERID_MAX + 64];

	if (h->rv != 0) {
		api_call_done(c, h->rv == -EBUSY ? -EBUSY : -EINVAL, &h->err);
		return;
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(msg, sizeof msg, "no such user ('%s')", q->userid);
	if (strcmp(q->userid, "root@pam") == 0)
		st = api_write_add(w,
		                   "INSERT INTO users (userid, password_hash) "
		                   "VALUES (?, ?) ON CONFLICT (userid) DO "
		                   "UPDATE SET password_hash = "
		                   "excluded.password_hash");
	else
		st = api_write_add(w,
		                   "UPDATE users SET password_hash = ?2 WHERE "
		                   "userid = ?1");
	st->none_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->userid);
	api_write_text(w, st, h->hash);
	api_write_submit(c, w);
}

static void password_confirmed(struct api_call *c, struct hash_ctx *h)
{
	const Cairn__AccessPasswordRequest *q = (const void *)c->msg;

	if (h->rv != 0) {
		if (h->rv == -EKEYREJECTED)
			api_call_deny(c, 401,
			              "confirmation-password: authentication "
			              "failure");
		else
			api_call_done(c, h->rv == -EBUSY ? -EBUSY : -EINVAL,
			              &h->err);
		return;
	}
	hash_submit(c, q->password, NULL, password_write);
}

static void route_password(struct api_call *c)
{
	const Cairn__AccessPasswordRequest *q = (const void *)c->msg;
	struct err e;

	if (q->userid == NULL || auth_userid_check(q->userid, &e) != 0) {
		api_param_error(c, "userid", "a valid name@realm is required");
		return;
	}
	if (q->password == NULL || strlen(q->password) < 8) {
		api_param_error(c, "password", "at least 8 characters");
		return;
	}
	if (c->who.tokenid[0] != '\0') {
		api_call_fail_http(c, 403,
		                   "API tokens cannot change passwords");
		return;
	}
	if (touches_root(c, q->userid))
		return;
	/* Root on a node (cairn user passwd) has proven itself; a ticket
	 * holder proves it again, so a stolen ticket cannot take the
	 * account over (Proxmox's confirmation-password). */
	if (!c->is_local) {
		const struct api_user *me;

		if (api_view_wait(c) || api_view_missing(c))
			return;
		me = find_user(c->a->snap, c->who.userid);
		if (q->confirmation_password == NULL || me == NULL ||
		    me->password_hash == NULL) {
			api_param_error(
			        c, "confirmation-password",
			        "your own current password is required");
			return;
		}
		hash_submit(c, q->confirmation_password, me->password_hash,
		            password_confirmed);
		return;
	}
	hash_submit(c, q->password, NULL, password_write);
}

/* ------------------------------------------------ /access: tokens */

static json_t *token_info(const struct api_token *t)
{
	json_t *o = json_pack("{s:i, s:I}", "privsep", (int)t->privsep,
	                      "expire", (json_int_t)t->expire);

	if (o != NULL && t->comment != NULL)
		json_object_set_new(o, "comment", json_string(t->comment));
	return o;
}

static void route_tokens(struct api_call *c)
{
	const Cairn__AccessTokenRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	if (!user_is_active(v, q->userid, 0) &&
	    find_user(v, q->userid) == NULL) {
		api_call_fail(c, -ENOENT, "no such user ('%s')", q->userid);
		return;
	}
	list = json_array();
	for (i = 0; list != NULL && i < v->auth.ntokens; i++) {
		const struct api_token *t = &v->auth.tokens[i];
		json_t *o;

		if (strcmp(t->userid, q->userid) != 0)
			continue;
		o = token_info(t);
		if (o != NULL)
			json_object_set_new(o, "tokenid",
			                    json_string(t->tokenid));
		json_array_append_new(list, o);
	}
	api_reply_json(c, list);
}

static void route_token_get(struct api_call *c)
{
	const Cairn__AccessTokenRequest *q = (const void *)c->msg;
	const struct api_token *t;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	t = find_token(c->a->snap, q->userid, q->tokenid);
	if (t == NULL) {
		api_call_fail(c, -ENOENT, "no such token '%s' for user '%s'",
		              q->tokenid, q->userid);
		return;
	}
	api_reply_json(c, token_info(t));
}

static void route_token_set(struct api_call *c)
{
	const Cairn__AccessTokenRequest *q = (const void *)c->msg;
	bool is_create = c->match.route->method == API_POST;
	char secret[37], digest[65],
	        full[AUTH_USERID_MAX + AUTH_TOKENID_MAX + 2], msg[320];
	struct write_ctx *w;
	struct write_stmt *st;
	struct err e;

	if (auth_userid_check(q->userid, &e) != 0) {
		api_param_error(c, "userid", "%s", e.msg);
		return;
	}
	if (touches_root(c, q->userid))
		return;
	if (auth_tokenid_check(q->tokenid, &e) != 0) {
		api_param_error(c, "tokenid", "%s", e.msg);
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (!user_is_active(c->a->snap, q->userid, 0) &&
	    find_user(c->a->snap, q->userid) == NULL) {
		api_call_fail(c, -ENOENT, "no such user ('%s')", q->userid);
		return;
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(full, sizeof full, "%s!%s", q->userid, q->tokenid);
	if (is_create) {
		if (rpc_uuid_v4(secret, &e) != 0) {
			api_write_free(w);
			api_call_done(c, -EIO, &e);
			return;
		}
		rpc_sha256_hex(secret, strlen(secret), digest);
		/* root@pam's row may not exist: tokens need none. */
		st = api_write_add(
		        w, "INSERT INTO tokens (userid, tokenid, digest, "
		           "privsep, expire, comment) VALUES (?, ?, ?, "
		           "?, ?, ?)");
		snprintf(msg, sizeof msg, "Token already exists.");
		st->exists_msg = api_write_keep(w, msg);
		api_write_text(w, st, q->userid);
		api_write_text(w, st, q->tokenid);
		api_write_text(w, st, digest);
		api_write_int(st, q->has_privsep ? q->privsep : 1);
		api_write_int(st, q->has_expire ? q->expire : 0);
		api_write_text(w, st, q->comment);
		w->data = json_pack("{s:s, s:{s:i, s:I}, s:s}", "full-tokenid",
		                    full, "info", "privsep",
		                    (int)(q->has_privsep ? q->privsep : 1),
		                    "expire",
		                    (json_int_t)(q->has_expire ? q->expire : 0),
		                    "value", secret);
		if (w->data != NULL && q->comment != NULL)
			json_object_set_new(json_object_get(w->data, "info"),
			                    "comment", json_string(q->comment));
		memset(secret, 0, sizeof secret);
	} else {
		st = api_write_add(w, "UPDATE tokens SET "
		                      "privsep = coalesce(?, privsep), "
		                      "expire = coalesce(?, expire), "
		                      "comment = coalesce(?, comment) "
		                      "WHERE userid = ? AND tokenid = ?");
		snprintf(msg, sizeof msg, "no such token '%s' for user '%s'",
		         q->tokenid, q->userid);
		st->none_msg = api_write_keep(w, msg);
		api_write_opt_int(st, q->has_privsep, q->privsep);
		api_write_opt_int(st, q->has_expire, q->expire);
		api_write_text(w, st, q->comment);
		api_write_text(w, st, q->userid);
		api_write_text(w, st, q->tokenid);
	}
	api_write_submit(c, w);
}

static void route_token_delete(struct api_call *c)
{
	const Cairn__AccessTokenRequest *q = (const void *)c->msg;
	char full[AUTH_USERID_MAX + AUTH_TOKENID_MAX + 2], msg[320];
	struct write_ctx *w;
	struct write_stmt *st;

	if (touches_root(c, q->userid))
		return;
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(full, sizeof full, "%s!%s", q->userid, q->tokenid);
	snprintf(msg, sizeof msg, "no such token '%s' for user '%s'",
	         q->tokenid, q->userid);
	st = api_write_add(
	        w, "DELETE FROM tokens WHERE userid = ? AND tokenid = ?");
	st->none_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->userid);
	api_write_text(w, st, q->tokenid);
	st = api_write_add(w,
	                   "DELETE FROM acl WHERE ugid_type = 'token' AND ugid "
	                   "= ?");
	api_write_text(w, st, full);
	api_write_submit(c, w);
}

/* ------------------------------------------------ /access: roles */

static void route_roles(struct api_call *c)
{
	static const char *const builtins[] = {
	        "Administrator",   "NoAccess",          "PVEAdmin",
	        "PVEAuditor",      "PVEDatastoreAdmin", "PVEDatastoreUser",
	        "PVEMappingAdmin", "PVEMappingUser",    "PVEPoolAdmin",
	        "PVEPoolUser",     "PVESDNAdmin",       "PVESDNUser",
	        "PVESysAdmin",     "PVETemplateUser",   "PVEUserAdmin",
	        "PVEVMAdmin",      "PVEVMUser",
	};
	const struct view_snap *v;
	char privs[ACL_PRIVS_TEXT_MAX];
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	list = json_array();
	for (i = 0; list != NULL && i < CAIRN_ARRAY_SIZE(builtins); i++) {
		acl_privs_t p = 0;

		acl_role_builtin(builtins[i], &p);
		acl_privs_format(p, privs, sizeof privs);
		json_array_append_new(list,
		                      json_pack("{s:s, s:s, s:i}", "roleid",
		                                builtins[i], "privs", privs,
		                                "special", 1));
	}
	for (i = 0; list != NULL && i < v->auth.nroles; i++) {
		acl_privs_format(v->auth.roles[i].privs, privs, sizeof privs);
		json_array_append_new(list,
		                      json_pack("{s:s, s:s, s:i}", "roleid",
		                                v->auth.roles[i].roleid,
		                                "privs", privs, "special", 0));
	}
	api_reply_json(c, list);
}

static void route_role_get(struct api_call *c)
{
	const Cairn__AccessRoleRequest *q = (const void *)c->msg;
	acl_privs_t privs = 0;
	bool found = acl_role_builtin(q->roleid, &privs);
	json_t *o;
	size_t i;
	int p;

	if (!found) {
		if (api_view_wait(c) || api_view_missing(c))
			return;
		for (i = 0; i < c->a->snap->auth.nroles; i++) {
			if (strcmp(c->a->snap->auth.roles[i].roleid,
			           q->roleid) == 0) {
				privs = c->a->snap->auth.roles[i].privs;
				found = true;
			}
		}
	}
	if (!found) {
		api_call_fail(c, -ENOENT, "role '%s' does not exist",
		              q->roleid);
		return;
	}
	o = json_object();
	for (p = 0; o != NULL && p < (int)acl_priv_count(); p++) {
		if (privs & ACL_PRIV(p))
			json_object_set_new(o, acl_priv_name(p),
			                    json_integer(1));
	}
	api_reply_json(c, o);
}

static void route_role_set(struct api_call *c)
{
	const Cairn__AccessRoleRequest *q = (const void *)c->msg;
	bool is_create = c->match.route->method == API_POST;
	char text[ACL_PRIVS_TEXT_MAX], msg[160];
	acl_privs_t privs = 0, old = 0;
	struct write_ctx *w;
	struct write_stmt *st;
	struct err e;
	size_t i, len = q->roleid != NULL ? strlen(q->roleid) : 0;
	bool found = false;

	if (len == 0 || len > ACL_ROLEID_MAX ||
	    strspn(q->roleid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	                      "vwxyz0123456789_-") != len) {
		api_param_error(c, "roleid", "1 to %d of [A-Za-z0-9_-]",
		                ACL_ROLEID_MAX);
		return;
	}
	if (acl_role_builtin(q->roleid, NULL)) {
		api_call_fail(c, -EPERM, "cannot change built-in role '%s'",
		              q->roleid);
		return;
	}
	if (q->privs != NULL && acl_privs_parse(q->privs, &privs, &e) != 0) {
		api_param_error(c, "privs", "%s", e.msg);
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	for (i = 0; i < c->a->snap->auth.nroles; i++) {
		if (strcmp(c->a->snap->auth.roles[i].roleid, q->roleid) == 0) {
			old = c->a->snap->auth.roles[i].privs;
			found = true;
		}
	}
	if (!is_create && !found) {
		api_call_fail(c, -ENOENT, "role '%s' does not exist",
		              q->roleid);
		return;
	}
	if (!is_create && q->has_append && q->append)
		privs |= old;
	acl_privs_format(privs, text, sizeof text);
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	if (is_create) {
		st = api_write_add(w,
		                   "INSERT INTO roles (roleid, privs) VALUES "
		                   "(?, ?)");
		snprintf(msg, sizeof msg, "role '%s' already exists",
		         q->roleid);
		st->exists_msg = api_write_keep(w, msg);
	} else {
		st = api_write_add(w,
		                   "UPDATE roles SET privs = ?2 WHERE roleid = "
		                   "?1 AND special = 0");
		snprintf(msg, sizeof msg, "role '%s' does not exist",
		         q->roleid);
		st->none_msg = api_write_keep(w, msg);
	}
	api_write_text(w, st, q->roleid);
	api_write_text(w, st, text);
	api_write_submit(c, w);
}

static void route_role_delete(struct api_call *c)
{
	const Cairn__AccessRoleRequest *q = (const void *)c->msg;
	struct write_ctx *w;
	struct write_stmt *st;
	char msg[160];

	if (acl_role_builtin(q->roleid, NULL)) {
		api_call_fail(c, -EPERM, "cannot delete built-in role '%s'",
		              q->roleid);
		return;
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(msg, sizeof msg, "role '%s' does not exist", q->roleid);
	st = api_write_add(
	        w, "DELETE FROM roles WHERE roleid = ? AND special = 0");
	st->none_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->roleid);
	st = api_write_add(w, "DELETE FROM acl WHERE roleid = ?");
	api_write_text(w, st, q->roleid);
	api_write_submit(c, w);
}

/* ------------------------------------------------ /access: ACLs */

static void route_acl_get(struct api_call *c)
{
	const struct view_snap *v;
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	list = json_array();
	for (i = 0; list != NULL && i < v->auth.nacl; i++) {
		const struct acl_entry *a = &v->auth.acl[i];

		if (!api_access_can(c, a->path, "Sys.Audit,Permissions.Modify"))
			continue;
		json_array_append_new(
		        list, json_pack("{s:s, s:s, s:s, s:s, s:i}", "path",
		                        a->path, "type",
		                        a->type == ACL_GROUP   ? "group"
		                        : a->type == ACL_TOKEN ? "token"
		                                               : "user",
		                        "ugid", a->ugid, "roleid", a->roleid,
		                        "propagate", (int)a->propagate));
	}
	api_reply_json(c, list);
}

/* Splits a Proxmox list ("a,b;c d") into up to max items; (size_t)-1
 * when there are more. */
static size_t split_list(const char *text, char *buf, size_t size, char **items,
                         size_t max)
{
	char *save = NULL, *p;
	size_t n = 0;

	if (text == NULL)
		return 0;
	snprintf(buf, size, "%s", text);
	for (p = strtok_r(buf, ",; \t", &save); p != NULL;
	     p = strtok_r(NULL, ",; \t", &save)) {
		if (n == max)
			return (size_t)-1;
		items[n++] = p;
	}
	return n;
}

static void route_acl_set(struct api_call *c)
{
	const Cairn__AccessAclRequest *q = (const void *)c->msg;
	char path[ACL_PATH_MAX + 1], rbuf[1024], ubuf[2048], msg[512];
	char *roles[8], *who[3][8];
	static const char *const types[] = {"user", "group", "token"};
	const char *lists[3] = {q->users, q->groups, q->tokens};
	size_t nroles, nwho[3], t, i, j, k;
	bool del = q->has_delete_ && q->delete_;
	struct write_ctx *w;
	struct write_stmt *st;
	struct err e;

	if (q->path == NULL ||
	    acl_path_normalize(q->path, path, sizeof path, &e) != 0) {
		api_param_error(c, "path", "%s",
		                q->path == NULL ? "property is missing"
		                                : e.msg);
		return;
	}
	if (!api_access_can(c, path, "Permissions.Modify")) {
		snprintf(msg, sizeof msg,
		         "Permission check failed (%s, Permissions.Modify)",
		         path);
		api_call_fail_http(c, 403, msg);
		return;
	}
	nroles = split_list(q->roles, rbuf, sizeof rbuf, roles, 8);
	if (nroles == (size_t)-1) {
		api_param_error(c, "roles", "at most 8 roles in one request");
		return;
	}
	if (nroles == 0) {
		api_param_error(c, "roles",
		                "property is missing and it is not "
		                "optional");
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	for (i = 0; i < nroles; i++) {
		bool found = acl_role_builtin(roles[i], NULL);

		for (j = 0; !found && j < c->a->snap->auth.nroles; j++)
			found = strcmp(c->a->snap->auth.roles[j].roleid,
			               roles[i]) == 0;
		if (!found) {
			api_param_error(c, "roles", "role '%s' does not exist",
			                roles[i]);
			return;
		}
	}
	w = api_write_new();
	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	for (t = 0; t < 3; t++) {
		char *buf = ubuf + t * (sizeof ubuf / 3);

		nwho[t] = split_list(lists[t], buf, sizeof ubuf / 3, who[t], 8);
		if (nwho[t] == (size_t)-1 ||
		    w->n + nwho[t] * nroles > WRITE_STMTS) {
			api_write_free(w);
			api_param_error(c,
			                t == 0   ? "users"
			                : t == 1 ? "groups"
			                         : "tokens",
			                "too many in one request (at most %d "
			                "entries, roles times names)",
			                WRITE_STMTS);
			return;
		}
		for (k = 0; k < nwho[t]; k++) {
			const char *id = who[t][k];
			char user[AUTH_USERID_MAX + 1];

			if (t == 2) {
				const char *bang = strchr(id, '!');

				snprintf(user, sizeof user, "%.*s",
				         bang != NULL ? (int)(bang - id) : 0,
				         id);
				if (bang == NULL ||
				    find_token(c->a->snap, user, bang + 1) ==
				            NULL) {
					api_write_free(w);
					api_param_error(c, "tokens",
					                "no such token '%s'",
					                id);
					return;
				}
			} else if (t == 0 &&
			           !user_is_active(c->a->snap, id, 0) &&
			           find_user(c->a->snap, id) == NULL) {
				api_write_free(w);
				api_param_error(c, "users",
				                "no such user ('%s')", id);
				return;
			}
			for (i = 0; i < nroles; i++) {
				st = api_write_add(
				        w,
				        del ? "DELETE FROM acl WHERE path = ? "
				              "AND ugid_type = ? AND ugid = ? "
				              "AND roleid = ?"
				            : "INSERT INTO acl (path, "
				              "ugid_type, ugid, roleid, "
				              "propagate) VALUES (?, ?, ?, ?, "
				              "?) ON CONFLICT DO UPDATE SET "
				              "propagate = excluded.propagate");
				api_write_text(w, st, path);
				api_write_text(w, st, types[t]);
				api_write_text(w, st, id);
				api_write_text(w, st, roles[i]);
				if (!del)
					api_write_int(st, q->has_propagate
					                          ? q->propagate
					                          : 1);
			}
		}
	}
	if (w->n == 0) {
		api_write_free(w);
		api_param_error(c, "users", "give users, groups or tokens");
		return;
	}
	api_write_submit(c, w);
}

static void route_permissions(struct api_call *c)
{
	const Cairn__AccessPermissionsRequest *q = (const void *)c->msg;
	struct acl_principal p = c->who;
	char path[ACL_PATH_MAX + 1];
	struct acl_world w;
	struct err e;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (q->path != NULL &&
	    acl_path_normalize(q->path, path, sizeof path, &e) != 0) {
		api_param_error(c, "path", "%s", e.msg);
		return;
	}
	if (q->userid != NULL) {
		const char *bang = strchr(q->userid, '!');
		char self[AUTH_USERID_MAX + AUTH_TOKENID_MAX + 2];

		snprintf(self, sizeof self, "%s", c->principal);
		if (strcmp(q->userid, self) != 0 &&
		    strcmp(q->userid, c->who.userid) != 0 &&
		    !api_access_can(c, "/access", "Sys.Audit")) {
			api_call_fail_http(c, 403,
			                   "Permission check failed (/access, "
			                   "Sys.Audit)");
			return;
		}
		memset(&p, 0, sizeof p);
		snprintf(p.userid, sizeof p.userid, "%.*s",
		         bang != NULL ? (int)(bang - q->userid)
		                      : (int)strlen(q->userid),
		         q->userid);
		if (bang != NULL) {
			const struct api_token *t =
			        find_token(c->a->snap, p.userid, bang + 1);

			if (t == NULL) {
				api_param_error(c, "userid",
				                "no such token '%s'",
				                q->userid);
				return;
			}
			snprintf(p.tokenid, sizeof p.tokenid, "%s", bang + 1);
			p.privsep = t->privsep;
		}
	}
	api_access_world(c->a->snap, &w);
	api_reply_json(c,
	               acl_permissions(&w, &p, q->path != NULL ? path : NULL));
}

/* ------------------------------------------------------- the table */

#define ADEF(name, req, fn, flags, path, privs) \
	static const struct route_def name = {  \
	        &cairn__##req##__descriptor, fn, false, {flags, path, privs}}

ADEF(def_domains, access_domains_request, route_domains, PERM_PUBLIC, NULL,
     NULL);
ADEF(def_ticket, access_ticket_request, route_ticket, PERM_PUBLIC, NULL, NULL);
ADEF(def_users, access_users_request, route_users, PERM_USER, NULL, NULL);
ADEF(def_user_create, access_user_request, route_user_set, 0, "/access/groups",
     "User.Modify");
ADEF(def_user_get, access_user_request, route_user_get, PERM_SELF,
     "/access/groups", "User.Modify,Sys.Audit");
ADEF(def_user_set, access_user_request, route_user_set, 0, "/access/groups",
     "User.Modify");
ADEF(def_user_delete, access_user_request, route_user_delete, 0,
     "/access/groups", "User.Modify");
ADEF(def_tokens, access_token_request, route_tokens, PERM_SELF,
     "/access/groups", "User.Modify,Sys.Audit");
ADEF(def_token_get, access_token_request, route_token_get, PERM_SELF,
     "/access/groups", "User.Modify,Sys.Audit");
ADEF(def_token_set, access_token_request, route_token_set, PERM_SELF,
     "/access/groups", "User.Modify");
ADEF(def_token_delete, access_token_request, route_token_delete, PERM_SELF,
     "/access/groups", "User.Modify");
ADEF(def_roles, access_role_request, route_roles, PERM_USER, NULL, NULL);
ADEF(def_role_get, access_role_request, route_role_get, PERM_USER, NULL, NULL);
ADEF(def_role_set, access_role_request, route_role_set, 0, "/access",
     "Sys.Modify");
ADEF(def_role_delete, access_role_request, route_role_delete, 0, "/access",
     "Sys.Modify");
ADEF(def_acl_get, access_acl_request, route_acl_get, PERM_USER, NULL, NULL);
ADEF(def_acl_set, access_acl_request, route_acl_set, 0, "{path}",
     "Permissions.Modify");
ADEF(def_permissions, access_permissions_request, route_permissions, PERM_USER,
     NULL, NULL);
ADEF(def_password, access_password_request, route_password, PERM_SELF,
     "/access/groups", "User.Modify");

const struct api_route api_access_routes[] = {
        {API_GET, "/access/domains", &def_domains},
        {API_GET, "/access/ticket", &def_ticket},
        {API_POST, "/access/ticket", &def_ticket},
        {API_GET, "/access/users", &def_users},
        {API_POST, "/access/users", &def_user_create},
        {API_GET, "/access/users/{userid}", &def_user_get},
        {API_PUT, "/access/users/{userid}", &def_user_set},
        {API_DELETE, "/access/users/{userid}", &def_user_delete},
        {API_GET, "/access/users/{userid}/token", &def_tokens},
        {API_GET, "/access/users/{userid}/token/{tokenid}", &def_token_get},
        {API_POST, "/access/users/{userid}/token/{tokenid}", &def_token_set},
        {API_PUT, "/access/users/{userid}/token/{tokenid}", &def_token_set},
        {API_DELETE, "/access/users/{userid}/token/{tokenid}",
         &def_token_delete},
        {API_GET, "/access/roles", &def_roles},
        {API_POST, "/access/roles", &def_role_set},
        {API_GET, "/access/roles/{roleid}", &def_role_get},
        {API_PUT, "/access/roles/{roleid}", &def_role_set},
        {API_DELETE, "/access/roles/{roleid}", &def_role_delete},
        {API_GET, "/access/acl", &def_acl_get},
        {API_PUT, "/access/acl", &def_acl_set},
        {API_GET, "/access/permissions", &def_permissions},
        {API_PUT, "/access/password", &def_password},
};
const size_t api_access_nroutes = CAIRN_ARRAY_SIZE(api_access_routes);
