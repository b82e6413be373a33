/* Proxmox's storage paths: definitions (/storage, cluster-wide rows of
 * the DB) and, on each node, status and volumes
 * (/nodes/{node}/storage/{storage}[/status|/content[/{volume}]]).
 *
 * Volume work (qemu-img, statvfs, later librbd) runs on the node's
 * storage pool, never on the loop and never in libuv's threadpool: a hung
 * NFS mount or a dead Ceph monitor must not stall the agent. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/api_internal.h"
#include "node/multipart.h"
#include "store/store.h"

#define PATH_MAX_LEN 1024

const struct res_storage *api_find_storage(const struct view_snap *v,
                                           const char *id)
{
	size_t i;

	for (i = 0; id != NULL && i < v->nstorage; i++) {
		if (strcmp(v->storage[i].id, id) == 0)
			return &v->storage[i];
	}
	return NULL;
}

/* The directory of a dir storage on this node: `local` lives in the
 * node's local_dir; the others in their `path`. */
static int dir_root(const struct node_config *cfg, const struct res_storage *s,
                    char *out, size_t size)
{
	json_t *opts;
	const char *path;
	struct err e;
	int rv = 0;

	if (strcmp(s->id, "local") == 0) {
		snprintf(out, size, "%s", cfg->local_dir);
		return 0;
	}
	if (json_parse_bounded(s->options, strlen(s->options),
	                       sizeof s->options, 4, &opts, &e) != 0)
		return -EINVAL;
	path = json_string_value(json_object_get(opts, "path"));
	if (path == NULL)
		rv = -EINVAL;
	else
		snprintf(out, size, "%s", path);
	json_decref(opts);
	return rv;
}

static void shared_check(struct api_call *c, const char *path,
                         void (*then)(struct api_call *c));

/* ------------------------------------------------ definitions */

static json_t *definition_json(const struct res_storage *s)
{
	json_t *o =
	        json_pack("{s:s, s:s, s:s, s:s}", "storage", s->id, "type",
	                  s->type, "content", s->content, "digest", s->digest);
	json_t *opts;
	const char *key;
	json_t *value;
	struct err e;

	if (o == NULL)
		return NULL;
	if (s->is_shared)
		json_object_set_new(o, "shared", json_integer(1));
	if (s->is_disabled)
		json_object_set_new(o, "disable", json_integer(1));
	if (s->nodes[0] != '\0')
		json_object_set_new(o, "nodes", json_string(s->nodes));
	if (json_parse_bounded(s->options, strlen(s->options),
	                       sizeof s->options, 4, &opts, &e) == 0) {
		json_object_foreach(opts, key, value)
		{
			json_object_set(o, key, value);
		}
		json_decref(opts);
	}
	return o;
}

static void route_storages(struct api_call *c)
{
	const Cairn__StoragesRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	v = c->a->snap;
	list = json_array();
	for (i = 0; list != NULL && i < v->nstorage; i++) {
		char path[160];

		if (q->type != NULL && strcmp(q->type, v->storage[i].type) != 0)
			continue;
		snprintf(path, sizeof path, "/storage/%s", v->storage[i].id);
		if (!api_access_can(c, path,
		                    "Datastore.Audit,Datastore.AllocateSpace"))
			continue;
		json_array_append_new(list, definition_json(&v->storage[i]));
	}
	api_reply_json(c, list);
}

static void route_storage_get(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	const struct res_storage *s;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	s = api_find_storage(c->a->snap, q->storage);
	if (s == NULL) {
		api_call_fail(c, -ENOENT, "storage '%s' does not exist",
		              q->storage);
		return;
	}
	api_reply_json(c, definition_json(s));
}

/* Checks a dir path: absolute, no "..", no odd bytes. */
static bool path_ok(const char *p)
{
	size_t i;

	if (p[0] != '/' || strlen(p) > PATH_MAX_LEN || strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return false;
	for (i = 0; p[i] != '\0'; i++) {
		if ((unsigned char)p[i] < 0x20 || p[i] == ',' || p[i] == '=')
			return false;
	}
	return true;
}

/* Checks a list of member names (',', ';' or spaces between them) and
 * writes it as Proxmox stores it, comma-separated, into norm (256). */
static bool nodes_ok(struct api_call *c, const char *list, char *bad,
                     size_t size, char norm[256])
{
	char buf[512], *save = NULL, *n;
	size_t o = 0;

	norm[0] = '\0';
	snprintf(buf, sizeof buf, "%s", list);
	for (n = strtok_r(buf, ",; ", &save); n != NULL;
	     n = strtok_r(NULL, ",; ", &save)) {
		if (!node_status_has_member(c->a->cluster, n) ||
		    o + strlen(n) + 2 > 256) {
			snprintf(bad, size, "%s", n);
			return false;
		}
		o += (size_t)snprintf(norm + o, 256 - o, "%s%s",
		                      o > 0 ? "," : "", n);
	}
	return true;
}

/* Merges the request's options into obj (dir: path; rbd: pool, monhost,
 * username, namespace). */
static void options_merge(const Cairn__StorageRequest *q, json_t *obj)
{
	if (q->path != NULL)
		json_object_set_new(obj, "path", json_string(q->path));
	if (q->pool != NULL)
		json_object_set_new(obj, "pool", json_string(q->pool));
	if (q->monhost != NULL)
		json_object_set_new(obj, "monhost", json_string(q->monhost));
	if (q->username != NULL)
		json_object_set_new(obj, "username", json_string(q->username));
	if (q->namespace_ != NULL)
		json_object_set_new(obj, "namespace",
		                    json_string(q->namespace_));
	if (q->has_krbd)
		json_object_set_new(obj, "krbd", json_integer(q->krbd));
}

/* The cephx key of a keyring parameter, a keyring file's text
 * ("[client.x]\n\tkey = AQ...") or the base64 key itself, into key;
 * false when there is none. The key is a secret: kept apart from the
 * options, never shown back. */
static bool keyring_key(const char *keyring, char *key, size_t size)
{
	const char *k =
	        strchr(keyring, '[') != NULL ? strstr(keyring, "key") : NULL;
	size_t n;

	if (k != NULL && (k = strchr(k, '=')) != NULL)
		k++;
	else
		k = keyring;
	k += strspn(k, " \t");
	n = strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
	              "yz0123456789+/=");
	if (n < 16 || n >= size)
		return false;
	memcpy(key, k, n);
	key[n] = '\0';
	return true;
}

/* Checks the rbd connection settings a request gives against librbd's
 * limits (store_rbd_option_check); fails c with a 400 naming the first
 * bad one. */
static bool rbd_options_ok(struct api_call *c, const Cairn__StorageRequest *q)
{
	const struct {
		const char *name, *value;
	} opts[] = {
	        {"monhost", q->monhost},
	        {"pool", q->pool},
	        {"namespace", q->namespace_},
	        {"username", q->username},
	};
	struct err e;
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(opts); i++) {
		if (opts[i].value != NULL &&
		    store_rbd_option_check(opts[i].name, opts[i].value, &e) !=
		            0) {
			api_param_error(c, opts[i].name, "%s", e.msg);
			return false;
		}
	}
	if (q->keyring != NULL) {
		char key[256];
		bool has_key = keyring_key(q->keyring, key, sizeof key);

		explicit_bzero(key, sizeof key);
		if (!has_key) {
			api_param_error(c, "keyring",
			                "a cephx key (base64) or a keyring "
			                "file's text");
			return false;
		}
	}
	return true;
}

/* Adds the statement that stores the key of q->keyring (checked by
 * rbd_options_ok) as the cluster secret storage_keyring:ID. */
static void keyring_write(struct write_ctx *w, const char *id,
                          const char *keyring)
{
	struct write_stmt *st;
	char name[160], key[256];

	if (!keyring_key(keyring, key, sizeof key))
		return;
	snprintf(name, sizeof name, "storage_keyring:%s", id);
	st = api_write_add(w, "INSERT INTO cluster_secrets (name, value) "
	                      "VALUES (?, ?) ON CONFLICT (name) DO "
	                      "UPDATE SET value = excluded.value");
	api_write_text(w, st, name);
	api_write_text(w, st, key);
	explicit_bzero(key, sizeof key);
}

/* The row of a new storage (after the checks, and for a shared dir
 * after every node saw it). */
static void storage_create_write(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	char content[256], digest[65], msg[160], *text;
	unsigned mask = 0;
	struct write_ctx *w;
	struct write_stmt *st;
	json_t *opts;
	char nodes_norm[256] = "", bad[128];
	struct err e;

	store_content_parse(q->content != NULL            ? q->content
	                    : strcmp(q->type, "rbd") == 0 ? "images"
	                                                  : "images,rootdir",
	                    &mask, &e);
	store_content_format(mask, content, sizeof content);
	opts = json_object();
	options_merge(q, opts);
	text = opts != NULL ? json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS)
	                    : NULL;
	json_decref(opts);
	w = api_write_new();
	if (w == NULL || text == NULL) {
		free(text);
		if (w != NULL)
			api_write_free(w);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	rpc_sha256_hex(text, strlen(text), digest);
	digest[40] = '\0';
	st = api_write_add(w, "INSERT INTO storage (id, type, content, shared, "
	                      "nodes, disable, options, digest) VALUES (?, ?, "
	                      "?, ?, ?, ?, ?, lower(hex(randomblob(20))))");
	snprintf(msg, sizeof msg,
	         "create storage failed: storage ID '%s' "
	         "already defined",
	         q->storage);
	st->exists_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->storage);
	api_write_text(w, st, q->type);
	api_write_text(w, st, content);
	api_write_int(st, q->has_shared && q->shared);
	if (q->nodes != NULL)
		nodes_ok(c, q->nodes, bad, sizeof bad, nodes_norm);
	api_write_text(w, st, q->nodes != NULL ? nodes_norm : NULL);
	api_write_int(st, q->has_disable && q->disable);
	api_write_text(w, st, text);
	free(text);
	if (q->keyring != NULL)
		keyring_write(w, q->storage, q->keyring);
	api_write_submit(c, w);
}

static void route_storage_create(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	char bad[128], nodes_norm[256];
	unsigned mask = 0;
	struct err e;

	if (q->storage == NULL || store_id_check(q->storage, &e) != 0) {
		api_param_error(c, "storage", "%s",
		                q->storage == NULL ? "property is missing"
		                                   : e.msg);
		return;
	}
	if (q->type == NULL ||
	    (strcmp(q->type, "dir") != 0 && strcmp(q->type, "rbd") != 0)) {
		api_param_error(c, "type", "value must be one of dir, rbd");
		return;
	}
	if (q->content != NULL &&
	    store_content_parse(q->content, &mask, &e) != 0) {
		api_param_error(c, "content", "%s", e.msg);
		return;
	}
	if (q->content == NULL)
		store_content_parse(strcmp(q->type, "rbd") == 0
		                            ? "images"
		                            : "images,rootdir",
		                    &mask, &e);
	if (strcmp(q->type, "rbd") == 0 &&
	    (mask & ~(unsigned)(STORE_CT_IMAGES | STORE_CT_ROOTDIR))) {
		api_param_error(c, "content",
		                "rbd storage holds only images and rootdir");
		return;
	}
	if (strcmp(q->type, "dir") == 0 &&
	    (q->path == NULL || !path_ok(q->path))) {
		api_param_error(c, "path",
		                "an absolute path without '..', ',' or '='");
		return;
	}
	if (strcmp(q->type, "rbd") == 0 &&
	    (q->pool == NULL || q->monhost == NULL || q->keyring == NULL)) {
		api_param_error(c,
		                q->pool == NULL      ? "pool"
		                : q->monhost == NULL ? "monhost"
		                                     : "keyring",
		                "property is missing (rbd needs pool, monhost "
		                "and keyring)");
		return;
	}
	if (!rbd_options_ok(c, q))
		return;
	if (q->nodes != NULL &&
	    !nodes_ok(c, q->nodes, bad, sizeof bad, nodes_norm)) {
		api_param_error(c, "nodes", "no such cluster node '%s'", bad);
		return;
	}
	if (strcmp(q->type, "dir") == 0 && q->has_shared && q->shared) {
		shared_check(c, q->path, storage_create_write);
		return;
	}
	storage_create_write(c);
}

/* Is option `name` given by the request too? */
static bool is_given(const Cairn__StorageRequest *q, const char *name)
{
	const struct {
		const char *name;
		bool is_given;
	} given[] = {
	        {"path", q->path != NULL},
	        {"pool", q->pool != NULL},
	        {"monhost", q->monhost != NULL},
	        {"username", q->username != NULL},
	        {"namespace", q->namespace_ != NULL},
	        {"keyring", q->keyring != NULL},
	        {"krbd", q->has_krbd},
	        {"nodes", q->nodes != NULL},
	        {"shared", q->has_shared},
	        {"disable", q->has_disable},
	        {"content", q->content != NULL},
	};
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(given); i++) {
		if (strcmp(given[i].name, name) == 0)
			return given[i].is_given;
	}
	return false;
}

/* What a PUT's delete= list clears besides options. */
struct set_deletes {
	bool nodes, shared, disable;
};

/* Reads q->delete_ into d, removing the options it names from opts (may
 * be NULL: only check); fails c with a 400 on `delete` for an option the
 * request also sets, one the type does not have, or one the storage
 * cannot work without (dir: path; rbd: monhost, and keyring, which would
 * leave no key). */
static bool set_deletes(struct api_call *c, const Cairn__StorageRequest *q,
                        const struct res_storage *s, json_t *opts,
                        struct set_deletes *d)
{
	static const char *const common[] = {"nodes", "shared", "disable"};
	static const char *const dir[] = {"mkdir"};
	static const char *const rbd[] = {"pool", "username", "namespace",
	                                  "krbd"};
	char dels[256], *save = NULL, *n;
	bool is_rbd = strcmp(s->type, "rbd") == 0, is_known;
	size_t i;

	memset(d, 0, sizeof *d);
	if (q->delete_ == NULL)
		return true;
	if (strlen(q->delete_) >= sizeof dels) {
		api_param_error(c, "delete", "at most %zu bytes",
		                sizeof dels - 1);
		return false;
	}
	snprintf(dels, sizeof dels, "%s", q->delete_);
	for (n = strtok_r(dels, ",; ", &save); n != NULL;
	     n = strtok_r(NULL, ",; ", &save)) {
		if (is_given(q, n)) {
			api_param_error(c, "delete",
			                "cannot set and delete property '%s' "
			                "at the same time",
			                n);
			return false;
		}
		if (strcmp(n, is_rbd ? "monhost" : "path") == 0 ||
		    (is_rbd && strcmp(n, "keyring") == 0)) {
			api_param_error(c, "delete",
			                "unable to delete required option '%s' "
			                "of %s storage%s",
			                n, s->type,
			                strcmp(n, "keyring") == 0
			                        ? " (it would leave no key)"
			                        : "");
			return false;
		}
		is_known = false;
		for (i = 0; i < CAIRN_ARRAY_SIZE(common); i++)
			is_known |= strcmp(n, common[i]) == 0;
		for (i = 0; !is_rbd && i < CAIRN_ARRAY_SIZE(dir); i++)
			is_known |= strcmp(n, dir[i]) == 0;
		for (i = 0; is_rbd && i < CAIRN_ARRAY_SIZE(rbd); i++)
			is_known |= strcmp(n, rbd[i]) == 0;
		if (!is_known) {
			api_param_error(c, "delete",
			                "no such option '%s' to delete on %s "
			                "storage",
			                n, s->type);
			return false;
		}
		if (strcmp(n, "nodes") == 0)
			d->nodes = true;
		else if (strcmp(n, "shared") == 0)
			d->shared = true;
		else if (strcmp(n, "disable") == 0)
			d->disable = true;
		else if (opts != NULL)
			json_object_del(opts, n);
	}
	return true;
}

/* The UPDATE of a PUT (after the checks, and for a dir storage becoming
 * or staying shared on a new path after every node saw it): the options
 * merged into the row read now, and the key in the same transaction. */

/* The storage a PUT names, with the digest the caller read checked
 * (Proxmox's words when it moved). NULL when c was failed. */
static const struct res_storage *storage_for_put(struct api_call *c,
                                                 const Cairn__StorageRequest *q)
{
	const struct res_storage *s =
	        c->a->snap != NULL ? api_find_storage(c->a->snap, q->storage)
	                           : NULL;

	if (s == NULL) {
		api_call_fail(c, -ENOENT, "storage '%s' does not exist",
		              q->storage);
		return NULL;
	}
	if (q->digest != NULL && strcmp(q->digest, s->digest) != 0) {
		api_call_fail(c, -EBUSY,
		              "detected modified configuration - file changed "
		              "by other user? Try again.");
		return NULL;
	}
	return s;
}
static void storage_set_write(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	const struct res_storage *s;
	char content[256], bad[128], *text;
	unsigned mask = 0;
	struct write_ctx *w;
	struct write_stmt *st;
	struct set_deletes d;
	json_t *opts = NULL;
	char nodes_norm[256] = "";
	struct err e;

	s = storage_for_put(c, q);
	if (s == NULL)
		return;
	if (q->nodes != NULL &&
	    !nodes_ok(c, q->nodes, bad, sizeof bad, nodes_norm)) {
		api_param_error(c, "nodes", "no such cluster node '%s'", bad);
		return;
	}
	if (json_parse_bounded(s->options, strlen(s->options),
	                       sizeof s->options, 4, &opts, &e) != 0)
		opts = json_object();
	if (opts == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	options_merge(q, opts);
	if (!set_deletes(c, q, s, opts, &d)) {
		json_decref(opts);
		return;
	}
	text = json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(opts);
	if (q->content != NULL) {
		store_content_parse(q->content, &mask, &e);
		store_content_format(mask, content, sizeof content);
	}
	w = api_write_new();
	if (w == NULL || text == NULL) {
		free(text);
		if (w != NULL)
			api_write_free(w);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	st = api_write_add(w, "UPDATE storage SET "
	                      "content = coalesce(?, content), "
	                      "shared = coalesce(?, shared), "
	                      "nodes = CASE WHEN ? THEN NULL ELSE "
	                      "coalesce(?, nodes) END, "
	                      "disable = coalesce(?, disable), "
	                      "options = ?, "
	                      "digest = lower(hex(randomblob(20))) "
	                      "WHERE id = ? AND digest = ?");
	st->none_msg = api_write_keep(w, "detected modified configuration - "
	                                 "file changed by other user? Try "
	                                 "again.");
	api_write_text(w, st, q->content != NULL ? content : NULL);
	api_write_opt_int(st, q->has_shared || d.shared,
	                  q->has_shared && q->shared);
	api_write_int(st, d.nodes);
	api_write_text(w, st, q->nodes != NULL ? nodes_norm : NULL);
	api_write_opt_int(st, q->has_disable || d.disable,
	                  q->has_disable && q->disable);
	api_write_text(w, st, text);
	api_write_text(w, st, s->id);
	api_write_text(w, st, s->digest);
	free(text);
	if (q->keyring != NULL)
		keyring_write(w, s->id, q->keyring);
	api_write_submit(c, w);
}

static void route_storage_set(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	const struct res_storage *s;
	char bad[128], root[PATH_MAX_LEN + 1];
	unsigned mask = 0;
	struct set_deletes d;
	char nodes_norm[256] = "";
	struct err e;
	bool is_shared_after, has_root;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	s = storage_for_put(c, q);
	if (s == NULL)
		return;
	if (q->type != NULL && strcmp(q->type, s->type) != 0) {
		api_param_error(c, "type", "cannot change a storage's type");
		return;
	}
	if (q->content != NULL &&
	    store_content_parse(q->content, &mask, &e) != 0) {
		api_param_error(c, "content", "%s", e.msg);
		return;
	}
	if (strcmp(s->type, "rbd") == 0 &&
	    (mask & ~(unsigned)(STORE_CT_IMAGES | STORE_CT_ROOTDIR))) {
		api_param_error(c, "content",
		                "rbd storage holds only images and rootdir");
		return;
	}
	if (q->path != NULL && !path_ok(q->path)) {
		api_param_error(c, "path",
		                "an absolute path without '..', ',' or '='");
		return;
	}
	if (q->nodes != NULL &&
	    !nodes_ok(c, q->nodes, bad, sizeof bad, nodes_norm)) {
		api_param_error(c, "nodes", "no such cluster node '%s'", bad);
		return;
	}
	if (q->keyring != NULL && strcmp(s->type, "rbd") != 0) {
		api_param_error(c, "keyring", "only rbd storages take a key");
		return;
	}
	if (!rbd_options_ok(c, q) || !set_deletes(c, q, s, NULL, &d))
		return;
	has_root = dir_root(c->a->cluster->node->config, s, root,
	                    sizeof root) == 0;
	/* Proxmox: a dir storage's path is fixed (volumes, guests' configs
	 * and mounts refer to it; a new one would point root-run work at
	 * another tree). */
	if (q->path != NULL && (!has_root || strcmp(q->path, root) != 0)) {
		api_param_error(c, "path",
		                "can't change value of fixed parameter 'path'");
		return;
	}
	/* A dir storage that turns shared: the same check as POST's, every
	 * member must see its directory. */
	is_shared_after = q->has_shared ? q->shared : s->is_shared && !d.shared;
	if (strcmp(s->type, "dir") == 0 && is_shared_after && !s->is_shared &&
	    has_root) {
		shared_check(c, root, storage_set_write);
		return;
	}
	storage_set_write(c);
}

static void route_storage_delete(struct api_call *c)
{
	const Cairn__StorageRequest *q = (const void *)c->msg;
	struct write_ctx *w = api_write_new();
	struct write_stmt *st;
	char msg[160];

	if (w == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	snprintf(msg, sizeof msg, "storage '%s' does not exist", q->storage);
	st = api_write_add(w, "DELETE FROM storage WHERE id = ?");
	st->none_msg = api_write_keep(w, msg);
	api_write_text(w, st, q->storage);
	snprintf(msg, sizeof msg, "storage_keyring:%s", q->storage);
	st = api_write_add(w, "DELETE FROM cluster_secrets WHERE name = ?");
	api_write_text(w, st, msg);
	api_write_submit(c, w);
}

/* ------------------------------------------- work on the storage pool */

/* One piece of storage work for a call, run on the storage pool. */
struct store_job {
	struct api_call *c;
	int (*run)(struct store_job *j, struct err *e);
	/* inputs */
	bool is_rbd;
	struct rbd_conf rbd;
	char root[PATH_MAX_LEN + 1];
	char storage[65];
	char volid[1100];
	struct store_volid v; /* volid parsed (volume_job) */
	char format[8];
	uint32_t vmid;
	uint64_t bytes;
	unsigned content_mask;
	char name[256];
	/* volume operations (cairn-volume/...) */
	struct busy_volume *busy; /* the lock on volid, released when done */
	char snap[64];
	enum { SNAP_CREATE, SNAP_DELETE, SNAP_ROLLBACK } snap_op;
	bool is_full, is_relative;
	bool is_filtered;   /* a content list: rows the caller may see */
	atomic_bool cancel; /* a volume task was aborted */
	struct { /* lockers: the nodes' client hosts, to name the holder */
		char node[64];
		char host[128];
	} hosts[16];
	size_t nhosts;
	/* outputs */
	json_t *result;
	int rv;
	struct err err;
	/* GET /nodes/{node}/storage: one status per storage */
	struct {
		char id[65];
		char type[8];
		char content[128];
		bool shared, active, enabled;
		uint64_t total, used, avail;
		char root[PATH_MAX_LEN + 1];
	} st[64];
	size_t nst;
};

/* Frees a job that holds an rbd key, wiping the key first. */
static void rbd_job_free(struct store_job *j)
{
	if (j == NULL)
		return;
	explicit_bzero(&j->rbd, sizeof j->rbd);
	mem_free(j);
}

/* A volume an operation is changing, in node_api.busy_volumes. */
struct busy_volume {
	struct list link;
	char volid[1100];
};

/* Takes the lock on volid for a job, or answers 409-class -EBUSY naming
 * the volume when another operation of this node holds it. */
static int volume_lock(struct api_call *c, struct store_job *j)
{
	struct list *head = &c->a->busy_volumes, *l;
	struct busy_volume *b;

	for (l = head->next; l != head; l = l->next) {
		b = CAIRN_CONTAINER_OF(l, struct busy_volume, link);
		if (strcmp(b->volid, j->volid) == 0)
			return err_set(&j->err, -EBUSY,
			               "volume '%s' is busy: another operation "
			               "on it is running, retry when it ends",
			               j->volid);
	}
	b = mem_calloc(1, sizeof *b);
	if (b == NULL)
		return err_set(&j->err, -ENOMEM, "out of memory");
	snprintf(b->volid, sizeof b->volid, "%s", j->volid);
	list_insert_tail(head, &b->link);
	j->busy = b;
	return 0;
}

static void volume_unlock(struct busy_volume *b)
{
	if (b == NULL)
		return;
	list_remove(&b->link);
	mem_free(b);
}

/* Proxmox's check_volume_access: may the caller see volume volid of
 * storage `storage`? Datastore administrators see everything; ISOs,
 * container templates and imports need read access to the storage;
 * backups of a guest Datastore.AllocateSpace and VM.Backup on it; disk
 * images of a guest Datastore.Audit and VM.Config.Disk on it. */
static bool volume_visible(struct api_call *c, const char *storage,
                           const struct store_volid *v)
{
	char path[96], vm[32];

	snprintf(path, sizeof path, "/storage/%s", storage);
	if (api_access_can(c, path, "Datastore.Allocate"))
		return true;
	snprintf(vm, sizeof vm, "/vms/%u", v->vmid);
	switch (v->content) {
	case STORE_CT_ISO:
	case STORE_CT_VZTMPL:
	case STORE_CT_IMPORT:
		return api_access_can(
		        c, path, "Datastore.AllocateSpace,Datastore.Audit");
	case STORE_CT_BACKUP:
		return v->vmid != 0 &&
		       api_access_can(c, path, "Datastore.AllocateSpace") &&
		       api_access_can(c, vm, "VM.Backup");
	case STORE_CT_IMAGES:
	case STORE_CT_ROOTDIR:
		return v->vmid != 0 &&
		       api_access_can(c, path, "Datastore.Audit") &&
		       api_access_can(c, vm, "VM.Config.Disk");
	default:
		return false;
	}
}

/* Keeps the rows of a content list the caller may see. */
static void filter_rows(struct api_call *c, struct store_job *j, json_t *rows)
{
	size_t i = 0;

	while (i < json_array_size(rows)) {
		const char *volid = json_string_value(
		        json_object_get(json_array_get(rows, i), "volid"));
		struct store_volid v;

		if (volid != NULL &&
		    store_volid_parse(volid, j->is_rbd, &v, NULL) == 0 &&
		    volume_visible(c, j->storage, &v))
			i++;
		else
			json_array_remove(rows, i);
	}
}

static void job_work(struct pool_work *w)
{
	struct api_call *c = w->data;
	struct store_job *j = c->ctx;

	j->rv = j->run(j, &j->err);
}

static void job_done(struct pool_work *w, int status)
{
	struct api_call *c = w->data;
	struct store_job *j = c->ctx;
	struct node_api *a = c->a;
	json_t *result = j->result;

	c->ctx = NULL;
	j->result = NULL;
	volume_unlock(j->busy);
	if (status == 0 && j->rv == 0 && j->is_filtered &&
	    json_is_array(result))
		filter_rows(c, j, result);
	if (status != 0)
		api_call_fail(c, -ESHUTDOWN, "the node is stopping");
	else if (j->rv != 0)
		api_call_done(c, j->rv, &j->err);
	else
		api_reply_json(c, result != NULL ? result : json_null());
	if (status != 0 || j->rv != 0)
		json_decref(result);
	rbd_job_free(j);
	if (a->cluster != NULL && a->cluster->feed != NULL)
		db_feed_poll_soon(a->cluster->feed);
}

static void job_submit(struct api_call *c, struct store_job *j)
{
	j->c = c;
	c->ctx = j;
	c->work.data = c;
	if (api_pool_submit(c->a->cluster->node->storage_pool, &c->work,
	                    job_work, job_done) != 0) {
		c->ctx = NULL;
		volume_unlock(j->busy);
		rbd_job_free(j);
		api_call_fail(c, -EBUSY, "the storage pool is busy, retry");
	}
}

int api_rbd_conf(const struct res_storage *s, struct rbd_conf *c)
{
	json_t *opts;
	const char *v;
	struct err e;

	if (json_parse_bounded(s->options, strlen(s->options),
	                       sizeof s->options, 4, &opts, &e) != 0)
		return -EINVAL;
	v = json_string_value(json_object_get(opts, "monhost"));
	snprintf(c->monhost, sizeof c->monhost, "%s", v != NULL ? v : "");
	v = json_string_value(json_object_get(opts, "pool"));
	snprintf(c->pool, sizeof c->pool, "%s", v != NULL ? v : "rbd");
	v = json_string_value(json_object_get(opts, "username"));
	snprintf(c->username, sizeof c->username, "%s",
	         v != NULL ? v : "admin");
	v = json_string_value(json_object_get(opts, "namespace"));
	snprintf(c->ns, sizeof c->ns, "%s", v != NULL ? v : "");
	json_decref(opts);
	snprintf(c->key, sizeof c->key, "%s", s->secret);
	return c->monhost[0] != '\0' && c->key[0] != '\0' ? 0 : -EINVAL;
}

int api_rbd_open(const struct rbd_conf *c, struct store_rbd **r, struct err *e)
{
	struct store_rbd_config rc = {
	        .monhost = c->monhost,
	        .username = c->username,
	        .key = c->key,
	        .pool = c->pool,
	        .namespace_name = c->ns,
	        .timeout_s = 5,
	};

	return store_rbd_connect(&rc, r, e);
}

/* An rbd storage's connection settings, from its options and key. */
static int rbd_config(const struct res_storage *s, struct store_job *j)
{
	j->is_rbd = true;
	return api_rbd_conf(s, &j->rbd);
}

/* On the storage pool: a connection for one piece of work. */
static int rbd_open(struct store_job *j, struct store_rbd **r, struct err *e)
{
	return api_rbd_open(&j->rbd, r, e);
}

/* The storage of a /nodes/{node}/storage/{storage}/... call, checked: it
 * exists, is enabled here, and is a dir (rbd comes with its backend). */
static struct store_job *job_for(struct api_call *c, const char *id)
{
	const struct res_storage *s;
	struct store_job *j;

	s = api_find_storage(c->a->snap, id);
	if (s == NULL) {
		api_call_fail(c, -ENOENT, "storage '%s' does not exist", id);
		return NULL;
	}
	if (s->is_disabled || !res_storage_on_node(s, api_self_name(c->a))) {
		api_call_fail(c, -ENOENT,
		              "storage '%s' is not available on node '%s'", id,
		              api_self_name(c->a));
		return NULL;
	}
	j = mem_calloc(1, sizeof *j);
	if (j == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return NULL;
	}
	if (strcmp(s->type, "rbd") == 0) {
		if (rbd_config(s, j) != 0) {
			rbd_job_free(j);
			api_call_fail(c, -EINVAL,
			              "storage '%s': no monhost, pool or key",
			              id);
			return NULL;
		}
	} else if (dir_root(c->a->cluster->node->config, s, j->root,
	                    sizeof j->root) != 0) {
		rbd_job_free(j);
		api_call_fail(c, -EINVAL, "storage '%s' has no path", id);
		return NULL;
	}
	snprintf(j->storage, sizeof j->storage, "%s", id);
	store_content_parse(s->content, &j->content_mask, &j->err);
	return j;
}

/* ----------------------------------------------- node storage status */

/* On the storage pool: stats the dir rows (root set); the others came
 * filled (rbd: from the last poll; disabled: nothing). Proxmox's row:
 * total, used and avail always (0 when inactive), used_fraction when
 * total is not 0. */
static int status_run(struct store_job *j, struct err *e)
{
	json_t *list = json_array();
	size_t i;

	(void)e;
	for (i = 0; list != NULL && i < j->nst; i++) {
		struct stat sb;
		json_t *row;

		if (j->st[i].root[0] != '\0')
			j->st[i].active =
			        stat(j->st[i].root, &sb) == 0 &&
			        S_ISDIR(sb.st_mode) &&
			        store_dir_status(j->st[i].root, &j->st[i].total,
			                         &j->st[i].used,
			                         &j->st[i].avail, e) == 0;
		if (!j->st[i].active)
			j->st[i].total = j->st[i].used = j->st[i].avail = 0;
		row = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I}",
		                "storage", j->st[i].id, "type", j->st[i].type,
		                "content", j->st[i].content, "shared",
		                (int)j->st[i].shared, "active",
		                (int)j->st[i].active, "enabled",
		                (int)j->st[i].enabled, "total",
		                (json_int_t)j->st[i].total, "used",
		                (json_int_t)j->st[i].used, "avail",
		                (json_int_t)j->st[i].avail);
		if (row != NULL && j->st[i].total > 0)
			json_object_set_new(row, "used_fraction",
			                    json_real((double)j->st[i].used /
			                              (double)j->st[i].total));
		json_array_append_new(list, row);
	}
	j->result = list;
	return list != NULL ? 0 : -ENOMEM;
}

/* Proxmox's list (pve-storage Status.pm index, storage_info): every
 * storage, those disabled or not on this node with enabled 0 and active
 * 0; rbd counts as shared. Filters: storage, content (enabled ones
 * only), enabled=1, target (shared ones on this node and target). A dir
 * is statted on the storage pool now; an rbd row comes from the last
 * 5-second poll (api_storage_poll), never from a connection per GET. */
static void route_node_storage(struct api_call *c)
{
	const Cairn__NodeStorageRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	struct node_api *a = c->a;
	const char *target = q->target;
	struct store_job *j;
	unsigned want = 0;
	struct err e;
	size_t i, k;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (q->content != NULL &&
	    store_content_parse(q->content, &want, &e) != 0) {
		api_param_error(c, "content", "%s", e.msg);
		return;
	}
	v = a->snap;
	if (q->storage != NULL && api_find_storage(v, q->storage) == NULL) {
		api_param_error(c, "storage", "No such storage.");
		return;
	}
	if (target != NULL && (strcmp(target, api_self_name(c->a)) == 0 ||
	                       strcmp(target, "localhost") == 0))
		target = NULL;
	j = mem_calloc(1, sizeof *j);
	if (j == NULL) {
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	for (i = 0; i < v->nstorage && j->nst < CAIRN_ARRAY_SIZE(j->st); i++) {
		const struct res_storage *s = &v->storage[i];
		bool is_rbd = strcmp(s->type, "rbd") == 0;
		bool is_shared = s->is_shared || is_rbd;
		bool is_on_node = res_storage_on_node(s, api_self_name(c->a));
		bool is_enabled = !s->is_disabled && is_on_node;
		unsigned mask = 0;
		char path[160];

		store_content_parse(s->content, &mask, &e);
		if ((q->storage != NULL && strcmp(q->storage, s->id) != 0) ||
		    (want != 0 && (!(mask & want) || !is_enabled)) ||
		    (q->has_enabled && q->enabled && !is_enabled) ||
		    (target != NULL && (!is_shared || !is_on_node ||
		                        !res_storage_on_node(s, target))))
			continue;
		snprintf(path, sizeof path, "/storage/%s", s->id);
		if (!api_access_can(c, path,
		                    "Datastore.Audit,Datastore.AllocateSpace"))
			continue;
		snprintf(j->st[j->nst].id, sizeof j->st[0].id, "%s", s->id);
		snprintf(j->st[j->nst].type, sizeof j->st[0].type, "%s",
		         s->type);
		snprintf(j->st[j->nst].content, sizeof j->st[0].content, "%s",
		         s->content);
		j->st[j->nst].shared = is_shared;
		j->st[j->nst].enabled = is_enabled;
		j->st[j->nst].root[0] = '\0';
		if (is_enabled && is_rbd) {
			for (k = 0; k < a->nstorage_seen; k++) {
				const struct node_storage_figures *f =
				        &a->storage_seen[k];

				if (strcmp(f->id, s->id) != 0)
					continue;
				j->st[j->nst].active = f->active;
				j->st[j->nst].total = f->total;
				j->st[j->nst].used = f->used;
				j->st[j->nst].avail = f->avail;
			}
		} else if (is_enabled && dir_root(a->cluster->node->config, s,
		                                  j->st[j->nst].root,
		                                  sizeof j->st[0].root) != 0) {
			j->st[j->nst].root[0] = '\0';
		}
		j->nst++;
	}
	j->run = status_run;
	job_submit(c, j);
}

/* ------------------------------------------------------- content */

struct rbd_rows {
	json_t *rows;
	const char *storage;
	time_t now;
};

static int rbd_row(void *data, const struct store_rbd_image *img)
{
	struct rbd_rows *x = data;
	char volid[200];
	unsigned vmid = 0;

	snprintf(volid, sizeof volid, "%s:%s", x->storage, img->name);
	sscanf(img->name, "%*[a-z]-%u-", &vmid);
	json_array_append_new(x->rows,
	                      json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}",
	                                "volid", volid, "format", "raw", "size",
	                                (json_int_t)img->size, "vmid",
	                                (json_int_t)vmid, "content", "images",
	                                "ctime", (json_int_t)x->now));
	return 0;
}

static int list_run(struct store_job *j, struct err *e)
{
	struct rbd_rows x = {json_array(), j->storage, time(NULL)};
	struct store_rbd *r = NULL;
	int rv;

	if (!j->is_rbd) {
		json_decref(x.rows);
		return store_dir_list(j->root, j->storage, j->content_mask,
		                      j->vmid, &j->result, e);
	}
	if (x.rows == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = rbd_open(j, &r, e);
	if (rv == 0 && (j->content_mask & (STORE_CT_IMAGES | STORE_CT_ROOTDIR)))
		rv = store_rbd_list(r, j->vmid, rbd_row, &x, e);
	store_rbd_close(r);
	if (rv != 0) {
		json_decref(x.rows);
		return rv;
	}
	j->result = x.rows;
	return 0;
}

static void route_content_list(struct api_call *c)
{
	const Cairn__StorageContentRequest *q = (const void *)c->msg;
	struct store_job *j;
	unsigned want = 0;
	struct err e;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (q->content != NULL &&
	    store_content_parse(q->content, &want, &e) != 0) {
		api_param_error(c, "content", "%s", e.msg);
		return;
	}
	j = job_for(c, q->storage);
	if (j == NULL)
		return;
	if (want != 0)
		j->content_mask &= want;
	j->vmid = q->has_vmid ? q->vmid : 0;
	j->run = list_run;
	j->is_filtered = true;
	job_submit(c, j);
}

static int alloc_run(struct store_job *j, struct err *e)
{
	char volid[1100];
	int rv;

	if (j->is_rbd) {
		struct store_rbd *r = NULL;
		char image[STORE_RBD_NAME_MAX], *dot;

		/* rbd images have no extension: vm-VMID-disk-N */
		dot = strrchr(j->name, '.');
		if (dot != NULL)
			*dot = '\0';
		rv = rbd_open(j, &r, e);
		if (rv == 0)
			rv = store_rbd_alloc(r, j->vmid, j->bytes,
			                     j->name[0] != '\0' ? j->name
			                                        : NULL,
			                     image, sizeof image, e);
		store_rbd_close(r);
		if (rv == 0) {
			snprintf(volid, sizeof volid, "%s:%s", j->storage,
			         image);
			j->result = json_string(volid);
		}
		return rv;
	}
	/* Proxmox's mkdir=1: the path is made when missing. */
	rv = file_mkdir_p(j->root, 0755, e);
	if (rv == 0)
		rv = store_dir_activate(j->root, e);
	if (rv == 0)
		rv = store_dir_alloc(j->root, j->storage, j->vmid, j->format,
		                     j->bytes,
		                     j->name[0] != '\0' ? j->name : NULL, volid,
		                     sizeof volid, e);
	if (rv == 0)
		j->result = json_string(volid);
	return rv;
}

static void route_content_alloc(struct api_call *c)
{
	const Cairn__StorageContentRequest *q = (const void *)c->msg;
	struct store_job *j;
	uint64_t bytes;
	struct err e;

	if (!q->has_vmid) {
		api_param_error(c, "vmid",
		                "property is missing and it is not "
		                "optional");
		return;
	}
	if (q->size == NULL ||
	    store_size_parse(q->size, 1024, &bytes, &e) != 0) {
		api_param_error(c, "size", "%s",
		                q->size == NULL ? "property is missing"
		                                : e.msg);
		return;
	}
	if (q->format != NULL && strcmp(q->format, "raw") != 0 &&
	    strcmp(q->format, "qcow2") != 0) {
		api_param_error(c, "format", "value must be one of raw, qcow2");
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	j = job_for(c, q->storage);
	if (j == NULL)
		return;
	if (!(j->content_mask & (STORE_CT_IMAGES | STORE_CT_ROOTDIR))) {
		rbd_job_free(j);
		api_call_fail(c, -EINVAL,
		              "storage '%s' does not support content-type "
		              "'images'",
		              q->storage);
		return;
	}
	if (j->is_rbd && q->format != NULL && strcmp(q->format, "raw") != 0) {
		rbd_job_free(j);
		api_param_error(c, "format", "rbd storage holds raw images");
		return;
	}
	j->vmid = q->vmid;
	j->bytes = bytes;
	snprintf(j->format, sizeof j->format, "%s",
	         q->format != NULL ? q->format : "raw");
	/* Proxmox: a filename vm-VMID-disk-N[.fmt] names the volume; the
	 * VMID in it must be the vmid given (another guest's volume is
	 * refused). Without one (cairn's extension), the next free
	 * vm-VMID-disk-N. */
	if (q->filename != NULL) {
		struct store_volid v;
		char full[600];
		const char *dot = strrchr(q->filename, '.');

		if (dot != NULL &&
		    (strcmp(dot, ".raw") == 0 || strcmp(dot, ".qcow2") == 0)) {
			if (q->format != NULL &&
			    strcmp(dot + 1, q->format) != 0) {
				rbd_job_free(j);
				api_param_error(c, "filename",
				                "its extension does not match "
				                "format '%s'",
				                q->format);
				return;
			}
			snprintf(j->format, sizeof j->format, "%s", dot + 1);
		}
		snprintf(full, sizeof full, "%s:%u/%.*s.%s", q->storage,
		         q->vmid,
		         dot != NULL ? (int)(dot - q->filename)
		                     : (int)strlen(q->filename),
		         q->filename, j->format);
		if (store_volid_parse(full, false, &v, &e) != 0) {
			rbd_job_free(j);
			api_param_error(c, "filename", "%s", e.msg);
			return;
		}
		if (v.vmid != q->vmid) {
			rbd_job_free(j);
			api_param_error(c, "filename",
			                "belongs to guest %u, not %u", v.vmid,
			                q->vmid);
			return;
		}
		snprintf(j->name, sizeof j->name, "%.*s.%s",
		         dot != NULL ? (int)(dot - q->filename)
		                     : (int)strlen(q->filename),
		         q->filename, j->format);
	}
	j->run = alloc_run;
	job_submit(c, j);
}

/* The full volid of {volume}: as given, or prefixed with {storage}. */
static bool full_volid(struct api_call *c, const char *storage,
                       const char *volume, char *out, size_t size)
{
	const char *colon = strchr(volume, ':');

	if (colon != NULL) {
		if ((size_t)(colon - volume) != strlen(storage) ||
		    strncmp(volume, storage, strlen(storage)) != 0) {
			api_param_error(c, "volume",
			                "volume '%s' is not on storage '%s'",
			                volume, storage);
			return false;
		}
		snprintf(out, size, "%s", volume);
	} else {
		snprintf(out, size, "%s:%s", storage, volume);
	}
	return true;
}

static int info_run(struct store_job *j, struct err *e)
{
	char format[16], path[PATH_MAX_LEN + 600];
	uint64_t size;
	int rv;

	if (j->is_rbd) {
		struct store_rbd *r = NULL;
		struct store_rbd_image img;

		rv = rbd_open(j, &r, e);
		if (rv == 0)
			rv = store_rbd_info(r, j->v.file, &img, e);
		store_rbd_close(r);
		if (rv == 0)
			j->result = json_pack(
			        "{s:s, s:I, s:I, s:s}", "path", j->volid,
			        "size", (json_int_t)img.size, "used",
			        (json_int_t)img.size, "format", "raw");
		return rv;
	}
	rv = store_dir_path(j->root, &j->v, path, sizeof path, e);
	if (rv == 0)
		rv = store_dir_info(j->root, j->volid, &size, format,
		                    sizeof format, e);
	if (rv == 0)
		j->result = json_pack("{s:s, s:I, s:I, s:s}", "path", path,
		                      "size", (json_int_t)size, "used",
		                      (json_int_t)size, "format", format);
	return rv;
}

static int free_run(struct store_job *j, struct err *e)
{
	struct store_rbd *r = NULL;
	int rv;

	if (!j->is_rbd)
		return store_dir_free(j->root, j->volid, e);
	rv = rbd_open(j, &r, e);
	if (rv == 0)
		rv = store_rbd_free(r, j->v.file, e);
	store_rbd_close(r);
	return rv;
}

/* The job for {volume} of {storage}: the storage checked, the volid
 * complete and parsed. NULL when c was answered (or waits for the view,
 * and runs again). */
static struct store_job *volume_job(struct api_call *c, const char *storage,
                                    const char *volume)
{
	struct store_job *j;
	struct err e;

	if (api_view_wait(c) || api_view_missing(c))
		return NULL;
	j = job_for(c, storage);
	if (j == NULL)
		return NULL;
	if (!full_volid(c, storage, volume, j->volid, sizeof j->volid)) {
		rbd_job_free(j);
		return NULL;
	}
	if (store_volid_parse(j->volid, j->is_rbd, &j->v, &e) != 0) {
		rbd_job_free(j);
		api_param_error(c, "volume", "%s", e.msg);
		return NULL;
	}
	return j;
}

/* volume_visible for a job's volume; else c fails 403 (j freed). */
static bool volume_allowed(struct api_call *c, struct store_job *j)
{
	char msg[1200];

	if (volume_visible(c, j->storage, &j->v))
		return true;
	snprintf(msg, sizeof msg, "Permission check failed (%s)", j->volid);
	rbd_job_free(j);
	api_call_fail_http(c, 403, msg);
	return false;
}

static void volume_op(struct api_call *c,
                      int (*run)(struct store_job *j, struct err *e))
{
	const Cairn__StorageVolumeRequest *q = (const void *)c->msg;
	struct store_job *j = volume_job(c, q->storage, q->volume);

	if (j == NULL || !volume_allowed(c, j))
		return;
	j->run = run;
	job_submit(c, j);
}

static void route_volume_get(struct api_call *c)
{
	volume_op(c, info_run);
}

static int clone_run(struct store_job *j, struct err *e);

/* A volume operation as a task (Proxmox's long storage work answers a
 * UPID): j->run on a pool, its outcome in the task's log. The job holds
 * the volume's lock until the task ends; an abort sets j->cancel, which
 * the backends look at where they can stop (qemu-img convert). */
struct vol_task {
	struct store_job *j;
	struct api_task *t;
	struct pool_work work;
	bool is_long; /* on the transfer pool, not the storage pool */
};

static void vol_task_work(struct pool_work *w)
{
	struct vol_task *d = w->data;

	d->j->rv = d->j->run(d->j, &d->j->err);
}

static void vol_task_free(void *data)
{
	struct vol_task *d = data;

	volume_unlock(d->j->busy);
	json_decref(d->j->result);
	rbd_job_free(d->j);
	mem_free(d);
}

static void vol_task_done(struct pool_work *w, int status)
{
	struct vol_task *d = w->data;
	struct api_task *t = d->t;
	struct node_api *a = api_task_api(t);
	struct store_job *j = d->j;

	api_task_on_abort(t, NULL);
	if (status != 0)
		api_task_end(t, "interrupted: the node is stopping");
	else if (j->rv == -ECANCELED && api_task_aborted_by(t) != NULL) {
		char why[256];

		snprintf(why, sizeof why, "aborted by %s",
		         api_task_aborted_by(t));
		api_task_end(t, why);
	} else if (j->rv != 0) {
		api_task_end(t, j->err.msg);
	} else {
		if (j->run == free_run)
			api_task_log(t, "removed volume '%s'", j->volid);
		else if (j->run == clone_run)
			api_task_log(t, "created volume '%s'",
			             json_string_value(j->result));
		else
			api_task_log(t, "rolled back volume '%s' to '%s'",
			             j->volid, j->snap);
		api_task_end(t, NULL);
	}
	vol_task_free(d);
	if (a->cluster != NULL && a->cluster->feed != NULL)
		db_feed_poll_soon(a->cluster->feed);
}

static void vol_task_abort(struct api_task *t)
{
	struct vol_task *d = api_task_data(t);

	atomic_store(&d->j->cancel, true);
}

static void vol_task_run(struct api_task *t)
{
	struct vol_task *d = api_task_data(t);
	struct node_api *a = api_task_api(t);

	d->t = t;
	d->work.data = d;
	api_task_set_busy(t, true);
	if (a->cluster == NULL ||
	    api_pool_submit(d->is_long ? a->cluster->node->transfer_pool
	                               : a->cluster->node->storage_pool,
	                    &d->work, vol_task_work, vol_task_done) != 0) {
		api_task_end(t, "the node is busy, retry later");
		vol_task_free(d);
		return;
	}
	api_task_on_abort(t, vol_task_abort);
}

/* Starts j (checked, not locked yet) as a task of type `type`; c answers
 * its UPID, or fails. */
static void vol_task_start(struct api_call *c, struct store_job *j,
                           const char *type, const char *what, bool is_long)
{
	struct vol_task *d = mem_calloc(1, sizeof *d);

	if (d == NULL) {
		rbd_job_free(j);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	if (volume_lock(c, j) != 0) {
		api_call_done(c, j->err.code, &j->err);
		rbd_job_free(j);
		mem_free(d);
		return;
	}
	atomic_init(&j->cancel, false);
	d->j = j;
	d->is_long = is_long;
	/* Volume tasks carry no id (a volid has colons), as Proxmox's
	 * imgdel. */
	if (api_task_start(c, type, "", what, vol_task_run, d, vol_task_free) ==
	    NULL)
		vol_task_free(d); /* c was failed; d is still ours */
}

/* DELETE .../content/{volume}: as Proxmox, an imgdel task. */
static void route_volume_delete(struct api_call *c)
{
	const Cairn__StorageVolumeRequest *q = (const void *)c->msg;
	struct store_job *j = volume_job(c, q->storage, q->volume);
	char what[1200];

	if (j == NULL)
		return;
	j->run = free_run;
	snprintf(what, sizeof what, "removing volume '%s'", j->volid);
	vol_task_start(c, j, "imgdel", what, false);
}

/* ------------------------------------------------ volume operations
 *
 * Proxmox reaches these only through guest paths (qm resize, snapshot,
 * template, clone); cairn offers them on the storage too, under
 * .../cairn-volume/, for tools and for the guest code to come. Each takes
 * this node's lock on the volume for its duration. */

/* A disk image job's volume (j->v) and, for rbd, an open connection
 * (closed by the caller). */
static int op_open(struct store_job *j, struct store_rbd **r, struct err *e)
{
	if (j->v.content != STORE_CT_IMAGES)
		return err_set(e, -EINVAL, "volume '%s' is not a disk image",
		               j->volid);
	return j->is_rbd ? rbd_open(j, r, e) : 0;
}

static int resize_run(struct store_job *j, struct err *e)
{
	struct store_rbd *r = NULL;
	struct store_rbd_image img;
	char format[16];
	uint64_t size = 0, want;
	int rv;

	rv = op_open(j, &r, e);
	if (rv == 0 && j->is_rbd) {
		rv = store_rbd_info(r, j->v.file, &img, e);
		size = img.size;
	} else if (rv == 0) {
		rv = store_dir_info(j->root, j->volid, &size, format,
		                    sizeof format, e);
	}
	want = j->is_relative ? size + j->bytes : j->bytes;
	if (rv == 0 && want < size)
		rv = err_set(e, -EINVAL,
		             "volume '%s' is %" PRIu64 " bytes: shrinking it "
		             "to %" PRIu64 " is not supported (it would cut "
		             "off the guest's data)",
		             j->volid, size, want);
	if (rv == 0 && want > size && j->is_rbd)
		rv = store_rbd_resize(r, j->v.file, want, e);
	else if (rv == 0 && want > size)
		rv = store_dir_resize(j->root, j->volid, want, e);
	store_rbd_close(r);
	if (rv == 0)
		j->result = json_pack("{s:s, s:I}", "volid", j->volid, "size",
		                      (json_int_t)want);
	return rv;
}

struct snap_rows {
	json_t *rows;
};

static int snap_row(void *data, const struct store_rbd_snap *snap)
{
	struct snap_rows *s = data;

	if (strcmp(snap->name, STORE_RBD_BASE_SNAP) == 0)
		return 0; /* a template's own, not the user's */
	return json_array_append_new(
	               s->rows,
	               json_pack("{s:s, s:I, s:i}", "name", snap->name, "size",
	                         (json_int_t)snap->size, "protected",
	                         (int)snap->is_protected)) == 0
	               ? 0
	               : -ENOMEM;
}

static int snap_list_run(struct store_job *j, struct err *e)
{
	struct snap_rows s = {json_array()};
	struct store_rbd *r = NULL;
	json_t *names = NULL;
	size_t i;
	int rv;

	if (s.rows == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = op_open(j, &r, e);
	if (rv == 0 && j->is_rbd)
		rv = store_rbd_snap_list(r, j->v.file, snap_row, &s, e);
	else if (rv == 0)
		rv = store_dir_snapshot_list(j->root, j->volid, &names, e);
	for (i = 0; rv == 0 && names != NULL && i < json_array_size(names); i++)
		json_array_append_new(
		        s.rows,
		        json_pack("{s:O}", "name", json_array_get(names, i)));
	json_decref(names);
	store_rbd_close(r);
	if (rv != 0) {
		json_decref(s.rows);
		return rv == -ENOMEM ? err_set(e, rv, "out of memory") : rv;
	}
	j->result = s.rows;
	return 0;
}

/* snapshot create (POST), delete (DELETE) and rollback, as j->snap_op. */
static int snap_change_run(struct store_job *j, struct err *e)
{
	struct store_rbd *r = NULL;
	int rv = op_open(j, &r, e);

	if (rv != 0) {
		store_rbd_close(r);
		return rv;
	}
	switch (j->snap_op) {
	case SNAP_CREATE:
		rv = j->is_rbd ? store_rbd_snap_create(r, j->v.file, j->snap, e)
		               : store_dir_snapshot(j->root, j->volid, j->snap,
		                                    e);
		break;
	case SNAP_DELETE:
		rv = j->is_rbd ? store_rbd_snap_delete(r, j->v.file, j->snap, e)
		               : store_dir_snapshot_delete(j->root, j->volid,
		                                           j->snap, e);
		break;
	case SNAP_ROLLBACK:
		rv = j->is_rbd
		             ? store_rbd_snap_rollback(r, j->v.file, j->snap, e)
		             : store_dir_snapshot_rollback(j->root, j->volid,
		                                           j->snap, e);
		break;
	}
	store_rbd_close(r);
	return rv;
}

static int template_run(struct store_job *j, struct err *e)
{
	char out[1100], base[STORE_RBD_NAME_MAX];
	struct store_rbd *r = NULL;
	int rv = op_open(j, &r, e);

	if (rv == 0 && j->is_rbd) {
		rv = store_rbd_template(r, j->v.file, base, sizeof base, e);
		snprintf(out, sizeof out, "%s:%s", j->storage, base);
	} else if (rv == 0) {
		rv = store_dir_template(j->root, j->storage, j->volid, out,
		                        sizeof out, e);
	}
	store_rbd_close(r);
	if (rv == 0)
		j->result = json_string(out);
	return rv;
}

static int clone_run(struct store_job *j, struct err *e)
{
	char out[1100], image[STORE_RBD_NAME_MAX];
	struct store_rbd *r = NULL;
	int rv = op_open(j, &r, e);

	if (rv == 0 && j->is_rbd && j->is_full) {
		rv = store_rbd_clone_full(
		        r, j->v.file, j->snap[0] != '\0' ? j->snap : NULL,
		        j->vmid, NULL, image, sizeof image, e);
		snprintf(out, sizeof out, "%s:%s", j->storage, image);
	} else if (rv == 0 && j->is_rbd) {
		rv = store_rbd_clone_linked(r, j->v.file, j->vmid, NULL, image,
		                            sizeof image, e);
		snprintf(out, sizeof out, "%s:%s/%s", j->storage, j->v.file,
		         image);
	} else if (rv == 0) {
		rv = store_dir_clone(j->root, j->storage, j->volid, j->vmid,
		                     !j->is_full, &j->cancel, out, sizeof out,
		                     e);
	}
	store_rbd_close(r);
	if (rv == 0)
		j->result = json_string(out);
	return rv;
}

static int lockers_run(struct store_job *j, struct err *e)
{
	struct store_rbd_locker l[16];
	struct store_rbd *r = NULL;
	char host[STORE_RBD_ADDR_MAX];
	size_t count = 0, i, k;
	json_t *rows;
	int rv;

	if (!j->is_rbd)
		return err_set(e, -EINVAL,
		               "storage '%s' is a dir storage: image locks "
		               "are rbd's",
		               j->storage);
	rv = op_open(j, &r, e);
	if (rv == 0)
		rv = store_rbd_lock_owners(r, j->v.file, l, CAIRN_ARRAY_SIZE(l),
		                           &count, e);
	store_rbd_close(r);
	if (rv != 0)
		return rv;
	rows = json_array();
	for (i = 0; rows != NULL && i < count && i < CAIRN_ARRAY_SIZE(l); i++) {
		json_t *row = json_pack("{s:s, s:s, s:i}", "client",
		                        l[i].client, "addr", l[i].addr,
		                        "exclusive", (int)l[i].is_exclusive);

		if (store_rbd_addr_host(l[i].addr, host, sizeof host, e) != 0)
			host[0] = '\0';
		for (k = 0; row != NULL && host[0] != '\0' && k < j->nhosts;
		     k++) {
			if (strcmp(j->hosts[k].host, host) == 0) {
				json_object_set_new(
				        row, "node",
				        json_string(j->hosts[k].node));
				break;
			}
		}
		json_array_append_new(rows, row);
	}
	if (rows == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	j->result = rows;
	return 0;
}

/* What changing a guest's disk takes on the guest, as on Proxmox's guest
 * paths, for whoever is no administrator of the storage. */
static bool volume_op_allowed(struct api_call *c, struct store_job *j,
                              int (*run)(struct store_job *j, struct err *e),
                              int snap_op)
{
	char storage[96], vm[32], msg[1200];
	const char *priv = NULL;

	snprintf(storage, sizeof storage, "/storage/%s", j->storage);
	if (api_access_can(c, storage, "Datastore.Allocate") || j->v.vmid == 0)
		return true;
	if (run == snap_change_run)
		priv = snap_op == SNAP_ROLLBACK ? "VM.Snapshot.Rollback"
		                                : "VM.Snapshot";
	else if (run == template_run)
		priv = "VM.Allocate";
	else if (run == clone_run)
		priv = "VM.Clone";
	snprintf(vm, sizeof vm, "/vms/%u", j->v.vmid);
	if (priv == NULL || api_access_can(c, vm, priv))
		return true;
	snprintf(msg, sizeof msg, "Permission check failed (%s, %s)", vm, priv);
	rbd_job_free(j);
	api_call_fail_http(c, 403, msg);
	return false;
}

/* Checks a cairn-volume call's parameters and the caller's rights, then
 * runs `run` with the volume locked: on the storage pool, or as a task. */
static void volume_op_start(struct api_call *c,
                            int (*run)(struct store_job *j, struct err *e),
                            int snap_op, bool is_locked)
{
	const Cairn__StorageVolumeOpRequest *q = (const void *)c->msg;
	struct store_job *j;
	struct err e;

	if (q->volume == NULL) {
		api_param_error(c, "volume",
		                "property is missing and it is not optional");
		return;
	}
	if (run == snap_change_run && q->snapname == NULL) {
		api_param_error(c, "snapname",
		                "property is missing and it is not optional");
		return;
	}
	if (q->snapname != NULL &&
	    store_snap_name_check(q->snapname, &e) != 0) {
		api_param_error(c, "snapname", "%s", e.msg);
		return;
	}
	j = volume_job(c, q->storage, q->volume);
	if (j == NULL || !volume_allowed(c, j) ||
	    !volume_op_allowed(c, j, run, snap_op))
		return;
	if (q->snapname != NULL)
		snprintf(j->snap, sizeof j->snap, "%s", q->snapname);
	j->snap_op = snap_op;
	j->is_full = q->has_full && q->full;
	j->vmid = q->has_vmid ? q->vmid : 0;
	if (run == resize_run) {
		const char *size = q->size != NULL ? q->size : "";

		j->is_relative = size[0] == '+';
		if (q->size == NULL ||
		    store_size_parse(size + j->is_relative, 1, &j->bytes, &e) !=
		            0) {
			rbd_job_free(j);
			api_param_error(c, "size", "%s",
			                q->size == NULL ? "property is missing"
			                                : e.msg);
			return;
		}
	}
	if (run == clone_run) {
		if (!q->has_vmid || q->vmid < 100 ||
		    q->vmid > STORE_RBD_VMID_MAX) {
			rbd_job_free(j);
			api_param_error(c, "vmid",
			                q->has_vmid ? "value must be 100 .. "
			                              "999999999"
			                            : "property is missing and "
			                              "it is not optional");
			return;
		}
		if (!j->is_rbd && j->snap[0] != '\0') {
			rbd_job_free(j);
			api_param_error(c, "snapname",
			                "a dir storage clones the volume's "
			                "current state only");
			return;
		}
		if (!j->is_full && j->snap[0] != '\0') {
			rbd_job_free(j);
			api_param_error(
			        c, "snapname",
			        "linked clones hang from the template's "
			        "own snapshot; snapname is for full=1");
			return;
		}
	}
	for (size_t i = 0; run == lockers_run && i < c->a->snap->nclients &&
	                   j->nhosts < CAIRN_ARRAY_SIZE(j->hosts);
	     i++) {
		const struct view_client *vc = &c->a->snap->clients[i];

		if (strcmp(vc->storage, j->storage) != 0)
			continue;
		snprintf(j->hosts[j->nhosts].node, sizeof j->hosts[0].node,
		         "%s", vc->node);
		snprintf(j->hosts[j->nhosts].host, sizeof j->hosts[0].host,
		         "%s", vc->addr);
		j->nhosts++;
	}
	if (run == clone_run && !j->is_full && !j->v.is_base) {
		rbd_job_free(j);
		api_param_error(c, "volume",
		                "'%s' is not a template's (base-) volume: a "
		                "linked clone needs one; clone it with full=1, "
		                "or make it a template first",
		                q->volume);
		return;
	}
	j->run = run;
	/* Proxmox's clone and rollback are tasks: a full copy or a rollback
	 * of a large disk takes long. */
	if (run == clone_run ||
	    (run == snap_change_run && snap_op == SNAP_ROLLBACK)) {
		char what[1300];

		if (run == clone_run)
			snprintf(what, sizeof what,
			         "%s clone of volume '%s' for guest %u",
			         j->is_full ? "full" : "linked", j->volid,
			         j->vmid);
		else
			snprintf(what, sizeof what,
			         "rolling back volume '%s' to snapshot '%s'",
			         j->volid, j->snap);
		vol_task_start(c, j,
		               run == clone_run ? "volclone" : "volrollback",
		               what, true);
		return;
	}
	if (is_locked && volume_lock(c, j) != 0) {
		api_call_done(c, j->err.code, &j->err);
		rbd_job_free(j);
		return;
	}
	job_submit(c, j);
}

static void route_volume_resize(struct api_call *c)
{
	volume_op_start(c, resize_run, 0, true);
}

static void route_snap_list(struct api_call *c)
{
	volume_op_start(c, snap_list_run, 0, false);
}

static void route_snap_create(struct api_call *c)
{
	volume_op_start(c, snap_change_run, SNAP_CREATE, true);
}

static void route_snap_delete(struct api_call *c)
{
	volume_op_start(c, snap_change_run, SNAP_DELETE, true);
}

static void route_rollback(struct api_call *c)
{
	volume_op_start(c, snap_change_run, SNAP_ROLLBACK, true);
}

static void route_lockers(struct api_call *c)
{
	volume_op_start(c, lockers_run, 0, false);
}

static void route_template(struct api_call *c)
{
	volume_op_start(c, template_run, 0, true);
}

static void route_clone(struct api_call *c)
{
	volume_op_start(c, clone_run, 0, true);
}

/* ------------------------------------------------------- the table */

#define SDEF(name, req, fn, local, flags, path, privs) \
	static const struct route_def name = {         \
	        &cairn__##req##__descriptor, fn, local, {flags, path, privs}}

SDEF(def_storages, storages_request, route_storages, false, PERM_USER, NULL,
     NULL);
SDEF(def_storage_create, storage_request, route_storage_create, false, 0,
     "/storage", "Datastore.Allocate");
SDEF(def_storage_get, storage_request, route_storage_get, false, 0,
     "/storage/{storage}", "Datastore.Audit,Datastore.Allocate");
SDEF(def_storage_set, storage_request, route_storage_set, false, 0,
     "/storage/{storage}", "Datastore.Allocate");
SDEF(def_storage_delete, storage_request, route_storage_delete, false, 0,
     "/storage/{storage}", "Datastore.Allocate");
SDEF(def_node_storage, node_storage_request, route_node_storage, true,
     PERM_USER, NULL, NULL);
SDEF(def_content_list, storage_content_request, route_content_list, true, 0,
     "/storage/{storage}", "Datastore.Audit,Datastore.AllocateSpace");
SDEF(def_content_alloc, storage_content_request, route_content_alloc, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_volume_get, storage_volume_request, route_volume_get, true, 0,
     "/storage/{storage}", "Datastore.Audit,Datastore.AllocateSpace");
SDEF(def_volume_delete, storage_volume_request, route_volume_delete, true, 0,
     "/storage/{storage}", "Datastore.Allocate");
SDEF(def_volume_resize, storage_volume_op_request, route_volume_resize, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_snap_list, storage_volume_op_request, route_snap_list, true, 0,
     "/storage/{storage}", "Datastore.Audit,Datastore.AllocateSpace");
SDEF(def_snap_create, storage_volume_op_request, route_snap_create, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_snap_delete, storage_volume_op_request, route_snap_delete, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_rollback, storage_volume_op_request, route_rollback, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_lockers, storage_volume_op_request, route_lockers, true, 0,
     "/storage/{storage}", "Datastore.Audit,Datastore.AllocateSpace");
SDEF(def_template, storage_volume_op_request, route_template, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");
SDEF(def_clone, storage_volume_op_request, route_clone, true, 0,
     "/storage/{storage}", "Datastore.AllocateSpace");

#define VOLOP "/nodes/{node}/storage/{storage}/cairn-volume"

const struct api_route api_storage_routes[] = {
        {API_GET, "/storage", &def_storages},
        {API_POST, "/storage", &def_storage_create},
        {API_GET, "/storage/{storage}", &def_storage_get},
        {API_PUT, "/storage/{storage}", &def_storage_set},
        {API_DELETE, "/storage/{storage}", &def_storage_delete},
        {API_GET, "/nodes/{node}/storage", &def_node_storage},
        {API_GET, "/nodes/{node}/storage/{storage}/content", &def_content_list},
        {API_POST, "/nodes/{node}/storage/{storage}/content",
         &def_content_alloc},
        {API_GET, "/nodes/{node}/storage/{storage}/content/{volume*}",
         &def_volume_get},
        {API_DELETE, "/nodes/{node}/storage/{storage}/content/{volume*}",
         &def_volume_delete},
        {API_PUT, VOLOP "/resize", &def_volume_resize},
        {API_GET, VOLOP "/snapshot", &def_snap_list},
        {API_POST, VOLOP "/snapshot", &def_snap_create},
        {API_DELETE, VOLOP "/snapshot", &def_snap_delete},
        {API_POST, VOLOP "/rollback", &def_rollback},
        {API_POST, VOLOP "/template", &def_template},
        {API_GET, VOLOP "/lockers", &def_lockers},
        {API_POST, VOLOP "/clone", &def_clone},
};
const size_t api_storage_nroutes = CAIRN_ARRAY_SIZE(api_storage_routes);

#undef VOLOP

/* ------------------------------------- figures for the status channel */

#define POLL_MS 5000

struct storage_poll {
	struct node_api *a;
	struct pool_work work;
	size_t n;
	struct {
		char root[PATH_MAX_LEN + 1];
		struct store_job *rbd;
		struct node_storage_figures f;
	} st[64];
};

static void poll_work(struct pool_work *w)
{
	struct storage_poll *p = w->data;
	struct err e;
	struct stat sb;
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->st[i].rbd != NULL) {
			struct store_rbd *r = NULL;

			p->st[i].f.active =
			        rbd_open(p->st[i].rbd, &r, &e) == 0 &&
			        store_rbd_status(r, &p->st[i].f.total,
			                         &p->st[i].f.used,
			                         &p->st[i].f.avail, &e) == 0;
			store_rbd_close(r);
			continue;
		}
		p->st[i].f.active =
		        p->st[i].root[0] != '\0' &&
		        stat(p->st[i].root, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		        store_dir_status(p->st[i].root, &p->st[i].f.total,
		                         &p->st[i].f.used, &p->st[i].f.avail,
		                         &e) == 0;
	}
}

static void poll_done(struct pool_work *w, int status)
{
	struct storage_poll *p = w->data;
	struct node_api *a = p->a;
	struct node_storage_figures f[64];
	size_t i;

	a->is_storage_polling = false;
	if (status == 0 && a->cluster != NULL) {
		for (i = 0; i < p->n; i++)
			f[i] = p->st[i].f;
		node_status_set_storage(a->cluster, f, p->n);
		/* kept for GET /nodes/{node}/storage, whose rbd rows must not
		 * connect to Ceph on every call */
		memcpy(a->storage_seen, f, p->n * sizeof f[0]);
		a->nstorage_seen = p->n;
	}
	for (i = 0; i < p->n; i++)
		rbd_job_free(p->st[i].rbd);
	mem_free(p);
	api_maybe_stopped(a);
}

/* Measures this node's enabled storages (dir and rbd) on the storage
 * pool; their figures ride the next heartbeats
 * (/cluster/resources?type=storage) and serve the rbd rows of GET
 * /nodes/{node}/storage. */
void api_storage_poll(struct node_api *a)
{
	const struct view_snap *v = a->snap;
	struct storage_poll *p;
	size_t i;

	if (a->is_storage_polling || a->is_stopping || a->cluster == NULL ||
	    v == NULL)
		return;
	p = mem_calloc(1, sizeof *p);
	if (p == NULL)
		return;
	for (i = 0; i < v->nstorage && p->n < CAIRN_ARRAY_SIZE(p->st); i++) {
		const struct res_storage *s = &v->storage[i];

		if (s->is_disabled ||
		    !res_storage_on_node(s,
		                         a->cluster->node->config->node_name))
			continue;
		snprintf(p->st[p->n].f.id, sizeof p->st[0].f.id, "%s", s->id);
		if (strcmp(s->type, "rbd") == 0) {
			struct store_job *rj = mem_calloc(1, sizeof *rj);

			if (rj != NULL && rbd_config(s, rj) == 0)
				p->st[p->n].rbd = rj;
			else
				mem_free(rj);
		}
		if (strcmp(s->type, "dir") != 0 ||
		    dir_root(a->cluster->node->config, s, p->st[p->n].root,
		             sizeof p->st[0].root) != 0)
			p->st[p->n].root[0] = '\0';
		p->n++;
	}
	p->a = a;
	p->work.data = p;
	if (api_pool_submit(a->cluster->node->storage_pool, &p->work, poll_work,
	                    poll_done) != 0) {
		for (i = 0; i < p->n; i++)
			rbd_job_free(p->st[i].rbd);
		mem_free(p);
		return;
	}
	a->is_storage_polling = true;
}

static void on_poll_timer(uv_timer_t *t)
{
	api_storage_poll(t->data);
	api_fence_poll(t->data);
}

void api_storage_start(struct node_api *a)
{
	const char *local = a->cluster->node->config->local_dir;
	struct err e;

	/* Proxmox's /var/lib/vz always exists: make it and its layout once
	 * at start (a few mkdirs). */
	if (file_mkdir_p(local, 0755, &e) != 0 ||
	    store_dir_activate(local, &e) != 0)
		LOG_WARN("storage", "cannot prepare the local storage",
		         "path=%s error=\"%s\"", local, e.msg);
	uv_timer_init(a->listener.loop, &a->storage_timer);
	a->storage_timer.data = a;
	a->has_storage_timer = true;
	uv_timer_start(&a->storage_timer, on_poll_timer, POLL_MS, POLL_MS);
}

void api_storage_stop(struct node_api *a)
{
	if (a->has_storage_timer)
		uv_timer_stop(&a->storage_timer);
}

/* ------------------------------------------- is a shared dir shared? */

#define NONCE_PREFIX ".cairn-shared-"

/* cairn.Node/StorageCheck, on the storage pool: read the nonce file. */
struct check_job {
	struct node_req *r;
	struct pool_work work;
	char file[PATH_MAX_LEN + 64];
	char nonce[65];
	bool seen;
	char why[256];
};

static void check_work(struct pool_work *w)
{
	struct check_job *j = w->data;
	char got[80];
	ssize_t n;
	struct stat sb;
	int fd = open(j->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
		close(fd);
		snprintf(j->why, sizeof j->why, "the check file is not there");
		return;
	}
	if (fd < 0) {
		snprintf(j->why, sizeof j->why, "%.200s: %s", j->file,
		         strerror(errno));
		return;
	}
	n = read(fd, got, sizeof got - 1);
	close(fd);
	got[n > 0 ? n : 0] = '\0';
	j->seen = n > 0 && strcmp(got, j->nonce) == 0;
	if (!j->seen)
		snprintf(
		        j->why, sizeof j->why,
		        "%.150s holds something else (another directory with the "
		        "same path?)",
		        j->file);
}

static void check_done(struct pool_work *w, int status)
{
	struct check_job *j = w->data;
	Cairn__StorageCheckResponse resp = CAIRN__STORAGE_CHECK_RESPONSE__INIT;

	resp.has_seen = true;
	resp.seen = status == 0 && j->seen;
	resp.why = resp.seen   ? NULL
	           : j->why[0] ? j->why
	                       : "the node is stopping";
	node_req_reply(j->r, &resp.base);
	mem_free(j);
}

static bool nonce_name_ok(const char *name)
{
	size_t i, n = strlen(NONCE_PREFIX);

	if (name == NULL || strncmp(name, NONCE_PREFIX, n) != 0 ||
	    strlen(name) != n + 32)
		return false;
	for (i = n; name[i] != '\0'; i++) {
		if (!isxdigit((unsigned char)name[i]))
			return false;
	}
	return true;
}

void node_storage_check(struct node_req *r)
{
	const Cairn__StorageCheckRequest *q = (const void *)r->request;
	struct check_job *j;

	if (q->path == NULL || !path_ok(q->path) || !nonce_name_ok(q->name) ||
	    q->nonce == NULL || strlen(q->nonce) > 64) {
		node_req_fail(r, RPC_STATUS_INVALID_ARGUMENT,
		              "a storage path, a nonce file name and a nonce");
		return;
	}
	j = mem_calloc(1, sizeof *j);
	if (j == NULL) {
		node_req_fail(r, RPC_STATUS_RESOURCE_EXHAUSTED,
		              "out of memory");
		return;
	}
	j->r = r;
	snprintf(j->file, sizeof j->file, "%s/%s", q->path, q->name);
	snprintf(j->nonce, sizeof j->nonce, "%s", q->nonce);
	j->work.data = j;
	if (api_pool_submit(r->node->storage_pool, &j->work, check_work,
	                    check_done) != 0) {
		mem_free(j);
		node_req_fail(r, RPC_STATUS_UNAVAILABLE,
		              "the storage pool is busy");
	}
}

/* The origin's side: write the nonce, ask every other member, remove the
 * nonce, then go on (then) or fail the call naming who does not see it. */
struct shared_check;
struct sc_peer {
	struct shared_check *sc;
	char node[64];
	struct rpc_call call;
	bool seen;
	char why[300];
};
struct shared_check {
	struct api_call *c;
	void (*then)(struct api_call *c);
	char path[PATH_MAX_LEN + 1];
	char name[64];
	char nonce[160];
	struct pool_work work;
	int write_rv;
	char write_why[256];
	struct sc_peer peers[MEMBERS_MAX];
	size_t npeers, pending;
	bool is_cleanup;
};

static void sc_finish(struct shared_check *sc);

static void sc_work(struct pool_work *w)
{
	struct shared_check *sc = w->data;
	char file[PATH_MAX_LEN + 128];
	struct err e;
	int fd;

	snprintf(file, sizeof file, "%s/%s", sc->path, sc->name);
	if (sc->is_cleanup) {
		unlink(file);
		return;
	}
	/* Proxmox's mkdir=1 makes the path on the node asked. */
	if (file_mkdir_p(sc->path, 0755, &e) != 0) {
		sc->write_rv = -EIO;
		snprintf(sc->write_why, sizeof sc->write_why, "%.200s", e.msg);
		return;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd < 0 ||
	    write(fd, sc->nonce, strlen(sc->nonce)) !=
	            (ssize_t)strlen(sc->nonce) ||
	    fsync(fd) != 0) {
		sc->write_rv = -EIO;
		snprintf(sc->write_why, sizeof sc->write_why, "%.200s: %s",
		         file, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

static void sc_cleaned(struct pool_work *w, int status)
{
	struct shared_check *sc = w->data;
	struct api_call *c = sc->c;
	char msg[1024];
	size_t i, n = 0;

	(void)status;
	c->ctx = NULL;
	msg[0] = '\0';
	for (i = 0; i < sc->npeers; i++) {
		if (sc->peers[i].seen)
			continue;
		n += (size_t)snprintf(msg + n,
		                      n < sizeof msg ? sizeof msg - n : 0,
		                      "%snode %s: %s", n > 0 ? "; " : "",
		                      sc->peers[i].node, sc->peers[i].why);
		if (n >= sizeof msg)
			n = sizeof msg - 1;
	}
	if (sc->write_rv != 0)
		api_param_error(c, "path", "cannot write a check file: %s",
		                sc->write_why);
	else if (msg[0] != '\0')
		api_param_error(c, "shared",
		                "'%s' is not shared by every node (is it "
		                "mounted everywhere?): %s",
		                sc->path, msg);
	else
		sc->then(c);
	mem_free(sc);
}

static void sc_finish(struct shared_check *sc)
{
	sc->is_cleanup = true;
	sc->work.data = sc;
	if (sc->c->a->cluster == NULL) {
		LOG_WARN("storage", "check file left behind (node stopping)",
		         "path=%s/%s", sc->path, sc->name);
		sc_cleaned(&sc->work, -ESHUTDOWN);
		return;
	}
	if (api_pool_submit(sc->c->a->cluster->node->storage_pool, &sc->work,
	                    sc_work, sc_cleaned) != 0)
		sc_cleaned(&sc->work, -EBUSY);
}

static void sc_peer_done(struct rpc_call *call, enum rpc_status status,
                         const char *message, const void *payload, size_t len)
{
	struct sc_peer *p = CAIRN_CONTAINER_OF(call, struct sc_peer, call);
	struct shared_check *sc = p->sc;
	Cairn__StorageCheckResponse *resp;

	if (status != RPC_STATUS_OK) {
		snprintf(p->why, sizeof p->why, "did not answer (%s)",
		         message != NULL ? message : rpc_status_name(status));
	} else {
		resp = cairn__storage_check_response__unpack(NULL, len,
		                                             payload);
		p->seen = resp != NULL && resp->seen;
		snprintf(p->why, sizeof p->why, "%s",
		         resp != NULL && resp->why != NULL
		                 ? resp->why
		                 : "malformed answer");
		if (resp != NULL)
			cairn__storage_check_response__free_unpacked(resp,
			                                             NULL);
	}
	if (--sc->pending == 0)
		sc_finish(sc);
}

static const struct rpc_call_cbs sc_cbs = {.on_done = sc_peer_done};

static void sc_written(struct pool_work *w, int status)
{
	struct shared_check *sc = w->data;
	struct node_api *a = sc->c->a;
	struct res_node nodes[MEMBERS_MAX];
	uint64_t gen, mask;
	size_t i, n;

	if (status != 0 || sc->write_rv != 0 || a->cluster == NULL) {
		if (sc->write_rv == 0)
			sc->write_rv = -ESHUTDOWN;
		sc_finish(sc);
		return;
	}
	n = node_status_res_nodes(a->cluster, nodes, MEMBERS_MAX, &gen, &mask);
	sc->pending = 1; /* ours, released below */
	for (i = 0; i < n; i++) {
		Cairn__StorageCheckRequest req =
		        CAIRN__STORAGE_CHECK_REQUEST__INIT;
		struct rpc_conn *conn;
		uint64_t silent;
		uint8_t packed[2048];
		size_t len;
		struct err e;
		size_t k = sc->npeers;

		if (strcmp(nodes[i].name,
		           a->cluster->node->config->node_name) == 0)
			continue;
		sc->npeers++;
		sc->peers[k].sc = sc;
		snprintf(sc->peers[k].node, sizeof sc->peers[k].node, "%.63s",
		         nodes[i].name);
		if (node_status_peer(a->cluster, nodes[i].name, &conn,
		                     &silent) != 0) {
			snprintf(sc->peers[k].why, sizeof sc->peers[k].why,
			         "offline or unreachable, cannot check");
			continue;
		}
		req.path = sc->path;
		req.name = sc->name;
		req.nonce = sc->nonce;
		len = protobuf_c_message_get_packed_size(&req.base);
		if (len > sizeof packed)
			continue;
		protobuf_c_message_pack(&req.base, packed);
		if (rpc_call_start(&sc->peers[k].call, rpc_conn_session(conn),
		                   &sc_cbs, RPC_CALL_UNARY,
		                   "cairn.Node/StorageCheck", packed, len, 5000,
		                   &e) != 0) {
			snprintf(sc->peers[k].why, sizeof sc->peers[k].why,
			         "%.250s", e.msg);
			continue;
		}
		sc->pending++;
		rpc_conn_kick(conn);
	}
	if (--sc->pending == 0)
		sc_finish(sc);
}

/* Checks that `path` is the same directory on every member, then runs
 * then(c); fails c with a 400 naming the nodes that do not see it. */
static void shared_check(struct api_call *c, const char *path,
                         void (*then)(struct api_call *c))
{
	struct shared_check *sc = mem_calloc(1, sizeof *sc);
	unsigned char rnd[16];
	struct err e;
	size_t i;

	if (sc == NULL || rpc_random_bytes(rnd, sizeof rnd, &e) != 0) {
		mem_free(sc);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	sc->c = c;
	sc->then = then;
	snprintf(sc->path, sizeof sc->path, "%s", path);
	snprintf(sc->name, sizeof sc->name, "%s", NONCE_PREFIX);
	for (i = 0; i < sizeof rnd; i++)
		snprintf(sc->name + strlen(NONCE_PREFIX) + 2 * i, 3, "%02x",
		         rnd[i]);
	snprintf(sc->nonce, sizeof sc->nonce, "%s", sc->name);
	c->ctx = sc;
	sc->work.data = sc;
	if (api_pool_submit(c->a->cluster->node->storage_pool, &sc->work,
	                    sc_work, sc_written) != 0) {
		c->ctx = NULL;
		mem_free(sc);
		api_call_fail(c, -EBUSY, "the storage pool is busy, retry");
	}
}

/* ------------------------------------------- uploads and downloads */

#define DOWNLOAD_MAX_BYTES  ((uint64_t)64 << 30)
#define DOWNLOAD_TIMEOUT_MS (2 * 3600 * 1000)

/* One file arriving on a storage, as a task: the bytes of an upload, or
 * a URL to fetch; written under a temporary name, checked, then renamed
 * without replacing anything. It runs on the node's transfer pool, never
 * on the storage pool: a download may take hours and must not starve
 * volume work. An abort (or the node's stop) sets is_cancelled on the
 * loop; the pool thread sees it within STORE_RUN_CANCEL_MS, kills curl
 * and removes the temporary file. */
struct transfer {
	struct api_task *task;
	struct pool_work work;
	atomic_bool is_cancelled;
	char root[PATH_MAX_LEN + 1];
	char volid[1100];
	char *data; /* upload: the bytes (owned) */
	size_t len;
	char url[2048]; /* download-url */
	bool verify;
	char checksum[129];
	char algorithm[16];
	/* results */
	int rv;
	char error[2100];
	char note[300];
	uint64_t size;
};

/* An upload's bytes (in memory) into dir/name: checked against the
 * checksum first, then a file that appears whole or not at all
 * (file_new: even an agent killed meanwhile leaves nothing). */
static int upload_write(struct transfer *x, const char *dir, const char *name,
                        struct err *e)
{
	struct rpc_digest *d = NULL;
	struct file_new f;
	char got[129];
	size_t off = 0;
	ssize_t n;
	int rv = 0;

	if (x->checksum[0] != '\0') {
		rv = rpc_digest_new(x->algorithm, &d, e);
		if (rv == 0)
			rv = rpc_digest_update(d, x->data, x->len, e);
		if (rv == 0)
			rv = rpc_digest_final_hex(d, got, sizeof got, e);
		rpc_digest_free(d);
		if (rv != 0)
			return rv;
		if (strcasecmp(got, x->checksum) != 0)
			return err_set(e, -EINVAL,
			               "checksum mismatch: got '%s' instead of "
			               "'%s'",
			               got, x->checksum);
		snprintf(x->note, sizeof x->note, "%s checksum verified",
		         x->algorithm);
	}
	rv = file_new_open(&f, dir, name, 0644, 0, e);
	if (rv == -EEXIST)
		return err_set(e, rv, "%s already exists", x->volid);
	if (rv != 0)
		return rv;
	while (rv == 0 && off < x->len) {
		n = write(f.fd, x->data + off, x->len - off);
		if (n < 0 && errno != EINTR)
			rv = err_sys(e, -errno, "writing %s/%s", dir, name);
		else if (n > 0)
			off += (size_t)n;
	}
	if (rv == 0 && atomic_load(&x->is_cancelled))
		rv = err_set(e, -ECANCELED, "cancelled");
	if (rv == 0)
		rv = file_new_commit(&f, e);
	else
		file_new_discard(&f);
	if (rv == -EEXIST)
		err_set(e, rv, "%s already exists", x->volid);
	x->size = x->len;
	return rv;
}

static void transfer_work(struct pool_work *w)
{
	struct transfer *x = w->data;
	char path[PATH_MAX_LEN + 600], tmp[PATH_MAX_LEN + 700],
	        dirp[PATH_MAX_LEN + 600];
	char got[129], hex[17], max[32];
	const char *argv[20];
	unsigned char rnd[8];
	struct store_volid v;
	struct stat sb;
	struct err e;
	size_t i;
	int n = 0;

	if (atomic_load(&x->is_cancelled)) { /* while it waited its turn */
		x->rv = -ECANCELED;
		snprintf(x->error, sizeof x->error, "cancelled");
		return;
	}
	x->rv = store_volid_parse(x->volid, false, &v, &e);
	if (x->rv == 0)
		x->rv = file_mkdir_p(x->root, 0755, &e);
	if (x->rv == 0)
		x->rv = store_dir_activate(x->root, &e);
	if (x->rv == 0)
		x->rv = store_dir_path(x->root, &v, path, sizeof path, &e);
	if (x->rv != 0) {
		snprintf(x->error, sizeof x->error, "%s", e.msg);
		return;
	}
	if (stat(path, &sb) == 0) {
		x->rv = -EEXIST;
		snprintf(x->error, sizeof x->error, "%s already exists",
		         x->volid);
		return;
	}
	snprintf(dirp, sizeof dirp, "%s", path);
	*strrchr(dirp, '/') = '\0';
	if (x->data != NULL) {
		x->rv = upload_write(x, dirp, strrchr(path, '/') + 1, &e);
		if (x->rv != 0)
			snprintf(x->error, sizeof x->error, "%s", e.msg);
		return;
	}
	rpc_random_bytes(rnd, sizeof rnd, &e);
	for (i = 0; i < sizeof rnd; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%s", dirp, hex,
	         strrchr(path, '/') + 1);
	snprintf(max, sizeof max, "%llu",
	         (unsigned long long)DOWNLOAD_MAX_BYTES);
	argv[n++] = "curl";
	argv[n++] = "-q"; /* no ~/.curlrc */
	argv[n++] = "--globoff";
	argv[n++] = "--fail";
	argv[n++] = "--silent";
	argv[n++] = "--show-error";
	argv[n++] = "--location";
	argv[n++] = "--max-redirs";
	argv[n++] = "5";
	argv[n++] = "--proto";
	argv[n++] = "=http,https";
	argv[n++] = "--max-filesize";
	argv[n++] = max;
	if (!x->verify)
		argv[n++] = "--insecure";
	argv[n++] = "--output";
	argv[n++] = tmp;
	argv[n++] = "--";
	argv[n++] = x->url;
	argv[n] = NULL;
	x->rv = store_run_cancellable(NULL, argv, DOWNLOAD_TIMEOUT_MS,
	                              &x->is_cancelled, NULL, &e);
	if (x->rv != 0)
		snprintf(x->error, sizeof x->error, "download failed: %s",
		         e.msg);
	if (x->rv == 0 && stat(tmp, &sb) == 0)
		x->size = (uint64_t)sb.st_size;
	if (x->rv == 0 && x->checksum[0] != '\0') {
		x->rv = rpc_file_digest_hex(tmp, x->algorithm, got, sizeof got,
		                            &e);
		if (x->rv != 0) {
			snprintf(x->error, sizeof x->error, "%s", e.msg);
		} else if (strcasecmp(got, x->checksum) != 0) {
			x->rv = -EINVAL;
			snprintf(x->error, sizeof x->error,
			         "checksum mismatch: got '%s' instead of '%s'",
			         got, x->checksum);
		} else {
			snprintf(x->note, sizeof x->note,
			         "%s checksum verified", x->algorithm);
		}
	}
	if (x->rv == 0 && atomic_load(&x->is_cancelled)) {
		x->rv = -ECANCELED;
		snprintf(x->error, sizeof x->error, "cancelled");
	}
	/* link + unlink: never replaces a file that appeared meanwhile */
	if (x->rv == 0 && link(tmp, path) != 0) {
		x->rv = -errno;
		snprintf(x->error, sizeof x->error, "%s: %s", path,
		         errno == EEXIST ? "already exists" : strerror(errno));
	}
	unlink(tmp);
}

static void transfer_done(struct pool_work *w, int status)
{
	struct transfer *x = w->data;
	struct api_task *t = x->task;

	api_task_on_abort(t, NULL);
	if (status != 0) {
		x->rv = status;
		snprintf(x->error, sizeof x->error, "the node is stopping");
	} else if (x->rv != 0 && atomic_load(&x->is_cancelled)) {
		/* Proxmox's words for a stopped worker */
		if (api_task_aborted_by(t) != NULL)
			snprintf(x->error, sizeof x->error, "aborted by %s",
			         api_task_aborted_by(t));
		else
			snprintf(x->error, sizeof x->error,
			         "interrupted: the node is stopping");
	}
	if (x->note[0] != '\0')
		api_task_log(t, "%s", x->note);
	if (x->rv == 0)
		api_task_log(t, "wrote %llu bytes to %s",
		             (unsigned long long)x->size, x->volid);
	api_task_end(t, x->rv == 0 ? NULL : x->error);
	mem_free(x->data);
	mem_free(x);
}

static void transfer_free(void *data)
{
	struct transfer *x = data;

	mem_free(x->data);
	mem_free(x);
}

/* On the loop: the task was aborted, or the node stops. */
static void transfer_abort(struct api_task *t)
{
	struct transfer *x = api_task_data(t);

	atomic_store(&x->is_cancelled, true);
}

static void transfer_start(struct api_task *t)
{
	struct transfer *x = api_task_data(t);
	struct node_api *a = api_task_api(t);

	x->task = t;
	x->work.data = x;
	atomic_init(&x->is_cancelled, false);
	api_task_set_busy(t, true);
	if (a->cluster == NULL ||
	    api_pool_submit(a->cluster->node->transfer_pool, &x->work,
	                    transfer_work, transfer_done) != 0) {
		api_task_end(t, "the transfer pool is busy, retry later");
		mem_free(x->data);
		mem_free(x);
		return;
	}
	api_task_on_abort(t, transfer_abort);
}

/* The target volid of an upload or download: content iso, vztmpl or
 * import, a name that parses as that content on a dir storage that
 * takes it. */
static struct transfer *transfer_new(struct api_call *c,
                                     const Cairn__StorageUploadRequest *q)
{
	static const struct {
		const char *content, *dir;
		unsigned bit;
	} kinds[] = {
	        {"iso", "iso", STORE_CT_ISO},
	        {"vztmpl", "vztmpl", STORE_CT_VZTMPL},
	        {"import", "import", STORE_CT_IMPORT},
	};
	struct store_job *j;
	struct transfer *x;
	struct store_volid v;
	struct err e;
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(kinds); i++) {
		if (q->content != NULL && !strcmp(q->content, kinds[i].content))
			break;
	}
	if (i == CAIRN_ARRAY_SIZE(kinds)) {
		api_param_error(c, "content",
		                "value must be one of iso, "
		                "vztmpl, import");
		return NULL;
	}
	if (q->filename == NULL || strchr(q->filename, '/') != NULL) {
		api_param_error(c, "filename",
		                "a file name is required "
		                "(no path)");
		return NULL;
	}
	if (q->checksum != NULL && q->checksum_algorithm == NULL) {
		api_param_error(c, "checksum-algorithm",
		                "required with checksum");
		return NULL;
	}
	j = job_for(c, q->storage);
	if (j == NULL)
		return NULL;
	x = mem_calloc(1, sizeof *x);
	if (x == NULL) {
		rbd_job_free(j);
		api_call_fail(c, -ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(x->root, sizeof x->root, "%s", j->root);
	snprintf(x->volid, sizeof x->volid, "%s:%s/%s", q->storage,
	         kinds[i].dir, q->filename);
	if (!(j->content_mask & kinds[i].bit)) {
		api_call_fail(c, -EINVAL,
		              "storage '%s' does not support content-type '%s'",
		              q->storage, kinds[i].content);
		rbd_job_free(j);
		mem_free(x);
		return NULL;
	}
	rbd_job_free(j);
	if (store_volid_parse(x->volid, false, &v, &e) != 0) {
		mem_free(x);
		api_param_error(c, "filename", "%s", e.msg);
		return NULL;
	}
	if (q->checksum != NULL) {
		snprintf(x->checksum, sizeof x->checksum, "%s", q->checksum);
		snprintf(x->algorithm, sizeof x->algorithm, "%s",
		         q->checksum_algorithm);
	}
	return x;
}

static void route_upload(struct api_call *c)
{
	const Cairn__StorageUploadRequest *q = (const void *)c->msg;
	struct multipart_part parts[MULTIPART_PARTS_MAX];
	char boundary[MULTIPART_BOUNDARY_MAX + 1], what[1300];
	const struct multipart_part *file = NULL;
	struct transfer *x;
	struct err e;
	size_t n, i;

	if (c->in.content_type == NULL ||
	    multipart_boundary(c->in.content_type, c->in.content_type_len,
	                       boundary, &e) != 0 ||
	    multipart_parse(c->in.body, c->in.body_len, boundary, parts, &n,
	                    &e) != 0) {
		api_param_error(
		        c, "filename",
		        "send the file as multipart/form-data (its part "
		        "named 'filename'); bodies are limited to 1 MiB "
		        "here: larger files go with `cairn storage "
		        "upload` or download-url");
		return;
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(parts[i].name, "filename") &&
		    parts[i].filename[0] != '\0')
			file = &parts[i];
	}
	if (file == NULL) {
		api_param_error(c, "filename", "no file part named 'filename'");
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	x = transfer_new(c, q);
	if (x == NULL)
		return;
	x->data = mem_alloc(file->len + 1);
	if (x->data == NULL) {
		mem_free(x);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(x->data, file->data, file->len);
	x->len = file->len;
	snprintf(what, sizeof what, "upload of %zu bytes to %s", x->len,
	         x->volid);
	if (api_task_start(c, "imgcopy", "", what, transfer_start, x,
	                   transfer_free) == NULL) {
		mem_free(x->data);
		mem_free(x);
	}
}

static void route_download(struct api_call *c)
{
	const Cairn__StorageUploadRequest *q = (const void *)c->msg;
	char what[3500];
	struct transfer *x;

	if (q->url == NULL ||
	    (strncmp(q->url, "http://", 7) != 0 &&
	     strncmp(q->url, "https://", 8) != 0) ||
	    strlen(q->url) >= sizeof x->url) {
		api_param_error(c, "url", "an http:// or https:// URL");
		return;
	}
	if (q->compression != NULL) {
		api_param_error(c, "compression", "not supported by cairn");
		return;
	}
	{
		/* Proxmox: fetching from the node's network needs more than
		 * the storage's rights. */
		char npath[128];

		snprintf(npath, sizeof npath, "/nodes/%s", api_self_name(c->a));
		if (!(api_access_can(c, "/", "Sys.Audit") &&
		      api_access_can(c, "/", "Sys.Modify")) &&
		    !api_access_can(c, npath, "Sys.AccessNetwork")) {
			api_call_fail_http(
			        c, 403,
			        "Permission check failed (/, "
			        "Sys.Audit+Sys.Modify or /nodes/NODE, "
			        "Sys.AccessNetwork)");
			return;
		}
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	x = transfer_new(c, q);
	if (x == NULL)
		return;
	snprintf(x->url, sizeof x->url, "%s", q->url);
	x->verify = !q->has_verify_certificates || q->verify_certificates;
	snprintf(what, sizeof what, "download of %s to %s", x->url, x->volid);
	if (api_task_start(c, "download", "", what, transfer_start, x,
	                   transfer_free) == NULL)
		mem_free(x);
}

SDEF(def_upload, storage_upload_request, route_upload, true, 0,
     "/storage/{storage}", "Datastore.AllocateTemplate");
SDEF(def_download, storage_upload_request, route_download, true, 0,
     "/storage/{storage}", "Datastore.AllocateTemplate");

const struct api_route api_storage_transfer_routes[] = {
        {API_POST, "/nodes/{node}/storage/{storage}/upload", &def_upload},
        {API_POST, "/nodes/{node}/storage/{storage}/download-url",
         &def_download},
};
const size_t api_storage_transfer_nroutes =
        CAIRN_ARRAY_SIZE(api_storage_transfer_routes);

/* ------------------------------------------------------------------------
 * For node/api_upload.c (cairn.Storage/Upload, a file streamed over the
 * RPC): the checks of POST .../upload without its multipart body. Kept
 * at the end, apart from the routes above. */

bool api_storage_upload_target(struct api_call *c,
                               const Cairn__StorageUploadRequest *q, char *root,
                               size_t root_size, char *volid, size_t volid_size)
{
	struct transfer *x = transfer_new(c, q);

	if (x == NULL)
		return false;
	if (x->root[0] == '\0') {
		api_call_fail(c, -EINVAL, "storage '%s' is not a dir storage",
		              q->storage);
		mem_free(x);
		return false;
	}
	snprintf(root, root_size, "%s", x->root);
	snprintf(volid, volid_size, "%s", x->volid);
	mem_free(x);
	return true;
}
