/* Storage-level fencing on Ceph RBD (DESIGN.md §7): before the HA manager
 * restarts a dead node's guests elsewhere it blocklists that node's RADOS
 * clients, so that a node that was only cut off cannot write to their
 * disks any more; the entry goes when the node rejoins.
 *
 * What is blocklisted is the node's address as the OSDs see it, bare (no
 * port or nonce): every client of that host, its guests' QEMU included.
 * Each agent learns that address from its own connection to each rbd
 * storage and records it in storage_clients (on start, when a storage
 * appears, and every 30 s when it changed), so that it is known when the
 * node is gone. An agent that starts and finds itself fenced on a storage
 * removes its own entry: its guests died with it (the watchdog), and it
 * has quorum again. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/api_internal.h"
#include "store/store.h"

#define FENCE_RECORD_MS 30000
#define FENCE_RETRY_MS  10000
#define FENCE_EXPIRE_S  (30u * 24 * 3600)

static const struct view_client *
find_client(const struct view_snap *v, const char *storage, const char *node)
{
	size_t i;

	for (i = 0; v != NULL && i < v->nclients; i++) {
		if (strcmp(v->clients[i].storage, storage) == 0 &&
		    strcmp(v->clients[i].node, node) == 0)
			return &v->clients[i];
	}
	return NULL;
}

static bool is_checked(const struct node_api *a, const char *storage)
{
	unsigned i;

	for (i = 0; i < a->nfence_checked; i++) {
		if (strcmp(a->fence_checked[i], storage) == 0)
			return true;
	}
	return false;
}

static void mark_checked(struct node_api *a, const char *storage)
{
	if (is_checked(a, storage) ||
	    a->nfence_checked >= CAIRN_ARRAY_SIZE(a->fence_checked))
		return;
	snprintf(a->fence_checked[a->nfence_checked++],
	         sizeof a->fence_checked[0], "%s", storage);
}

/* ------------------------------------------------------ the recorder */

struct record_job {
	struct node_api *a;
	struct pool_work work;
	size_t n;
	struct {
		char storage[65];
		struct rbd_conf conf;
		bool is_fenced; /* the DB says so: remove our entry */
		char host[STORE_RBD_ADDR_MAX];
		bool is_unfenced;
		int rv;
		struct err err;
	} st[16];
};

static void record_work(struct pool_work *w)
{
	struct record_job *j = w->data;
	char addr[STORE_RBD_ADDR_MAX];
	size_t i;

	for (i = 0; i < j->n; i++) {
		struct store_rbd *r = NULL;
		struct err *e = &j->st[i].err;
		int rv;

		rv = api_rbd_open(&j->st[i].conf, &r, e);
		if (rv == 0)
			rv = store_rbd_client_addr(r, addr, sizeof addr, e);
		if (rv == 0)
			rv = store_rbd_addr_host(addr, j->st[i].host,
			                         sizeof j->st[i].host, e);
		if (rv == 0 && j->st[i].is_fenced) {
			rv = store_rbd_blocklist_rm(r, j->st[i].host, e);
			j->st[i].is_unfenced = rv == 0;
		}
		store_rbd_close(r);
		explicit_bzero(&j->st[i].conf, sizeof j->st[i].conf);
		j->st[i].rv = rv;
	}
}

static void record_done(struct pool_work *w, int status)
{
	struct record_job *j = w->data;
	struct node_api *a = j->a;
	struct write_ctx *wc = NULL;
	size_t i;

	a->is_fence_recording = false;
	for (i = 0; status == 0 && a->cluster != NULL && i < j->n; i++) {
		const struct view_client *vc;
		struct write_stmt *st;

		if (j->st[i].rv != 0) {
			LOG_WARN(
			        "fence",
			        "cannot learn this node's RADOS client address",
			        "storage=%s error=\"%s\"", j->st[i].storage,
			        j->st[i].err.msg);
			continue;
		}
		if (j->st[i].is_unfenced)
			LOG_INFO(
			        "fence",
			        "rejoined: removed this node from the blocklist",
			        "storage=%s addr=%s", j->st[i].storage,
			        j->st[i].host);
		/* From now on a fence of this node is a decision taken while
		 * it runs: it stays until someone removes it. */
		mark_checked(a, j->st[i].storage);
		vc = find_client(a->snap, j->st[i].storage, api_self_name(a));
		if (vc != NULL && strcmp(vc->addr, j->st[i].host) == 0 &&
		    !j->st[i].is_unfenced)
			continue;
		if (wc == NULL && (wc = api_write_new()) == NULL)
			break;
		st = api_write_add(wc, "INSERT INTO storage_clients "
		                       "(storage, node, addr, updated_at) "
		                       "VALUES (?, ?, ?, ?) "
		                       "ON CONFLICT (storage, node) DO UPDATE "
		                       "SET addr = excluded.addr, "
		                       "updated_at = excluded.updated_at");
		api_write_text(wc, st, j->st[i].storage);
		api_write_text(wc, st, api_self_name(a));
		api_write_text(wc, st, j->st[i].host);
		api_write_int(st, api_wall_s());
		if (j->st[i].is_unfenced) {
			st = api_write_add(wc, "UPDATE storage_clients SET "
			                       "fenced_at = NULL, fenced_by = "
			                       "NULL WHERE storage = ? AND "
			                       "node = ?");
			api_write_text(wc, st, j->st[i].storage);
			api_write_text(wc, st, api_self_name(a));
		}
	}
	if (wc != NULL && api_write_background(a, wc, NULL, NULL) != 0)
		LOG_WARN("fence", "cannot record RADOS client addresses",
		         "error=\"the database queue is full\"");
	mem_free(j);
	api_maybe_stopped(a);
}

void api_fence_poll(struct node_api *a)
{
	const struct view_snap *v = a->snap;
	uint64_t now = clock_mono_ms(clock_real());
	struct record_job *j;
	bool is_new = false;
	size_t i;

	if (a->is_fence_recording || a->is_stopping || a->cluster == NULL ||
	    v == NULL)
		return;
	for (i = 0; i < v->nstorage; i++) {
		const struct res_storage *s = &v->storage[i];

		if (strcmp(s->type, "rbd") == 0 && !s->is_disabled &&
		    res_storage_on_node(s, api_self_name(a)) &&
		    !is_checked(a, s->id))
			is_new = true;
	}
	if (a->fence_recorded_ms != 0 &&
	    now - a->fence_recorded_ms <
	            (is_new ? FENCE_RETRY_MS : FENCE_RECORD_MS))
		return;
	j = mem_calloc(1, sizeof *j);
	if (j == NULL)
		return;
	for (i = 0; i < v->nstorage && j->n < CAIRN_ARRAY_SIZE(j->st); i++) {
		const struct res_storage *s = &v->storage[i];
		const struct view_client *vc;

		if (strcmp(s->type, "rbd") != 0 || s->is_disabled ||
		    !res_storage_on_node(s, api_self_name(a)) ||
		    api_rbd_conf(s, &j->st[j->n].conf) != 0)
			continue;
		snprintf(j->st[j->n].storage, sizeof j->st[0].storage, "%s",
		         s->id);
		vc = find_client(v, s->id, api_self_name(a));
		/* Only at the first check since this agent started: a fence
		 * set while it runs stays until someone removes it. */
		j->st[j->n].is_fenced = vc != NULL && vc->fenced_at != 0 &&
		                        !is_checked(a, s->id);
		j->n++;
	}
	a->fence_recorded_ms = now;
	if (j->n == 0) {
		mem_free(j);
		return;
	}
	j->a = a;
	j->work.data = j;
	if (api_pool_submit(a->cluster->node->storage_pool, &j->work,
	                    record_work, record_done) != 0) {
		for (i = 0; i < j->n; i++)
			explicit_bzero(&j->st[i].conf, sizeof j->st[i].conf);
		mem_free(j);
		return;
	}
	a->is_fence_recording = true;
}

/* ---------------------------------------------------------- the routes */

struct fence_job {
	struct api_call *c;
	struct rbd_conf conf;
	char storage[65];
	char target[64];
	char host[STORE_RBD_ADDR_MAX];
	unsigned expire_s;
	bool is_add;
	int rv;
	struct err err;
};

static void fence_work(struct pool_work *w)
{
	struct api_call *c = w->data;
	struct fence_job *j = c->ctx;
	struct store_rbd *r = NULL;

	j->rv = api_rbd_open(&j->conf, &r, &j->err);
	if (j->rv == 0 && j->is_add)
		j->rv = store_rbd_blocklist_add(r, j->host, j->expire_s,
		                                &j->err);
	else if (j->rv == 0)
		j->rv = store_rbd_blocklist_rm(r, j->host, &j->err);
	store_rbd_close(r);
	explicit_bzero(&j->conf, sizeof j->conf);
}

static void fence_done(struct pool_work *w, int status)
{
	struct api_call *c = w->data;
	struct fence_job *j = c->ctx;
	struct write_ctx *wc;
	struct write_stmt *st;

	c->ctx = NULL;
	if (status != 0 || j->rv != 0) {
		if (status != 0)
			api_call_fail(c, -ESHUTDOWN, "the node is stopping");
		else
			api_call_done(c, j->rv, &j->err);
		mem_free(j);
		return;
	}
	LOG_INFO("fence", j->is_add ? "blocklisted a node" : "unfenced a node",
	         "storage=%s node=%s addr=%s by=%s", j->storage, j->target,
	         j->host, c->principal);
	wc = api_write_new();
	if (wc == NULL) {
		mem_free(j);
		api_call_fail(c, -ENOMEM, "out of memory");
		return;
	}
	st = api_write_add(wc, "UPDATE storage_clients SET fenced_at = ?, "
	                       "fenced_by = ? WHERE storage = ? AND node = ?");
	if (j->is_add) {
		api_write_int(st, api_wall_s());
		api_write_text(wc, st, c->principal);
	} else {
		st->params[st->nparams++] = wire_value_null();
		st->params[st->nparams++] = wire_value_null();
	}
	api_write_text(wc, st, j->storage);
	api_write_text(wc, st, j->target);
	wc->data = json_pack("{s:s, s:s, s:i}", "node", j->target, "addr",
	                     j->host, "fenced", (int)j->is_add);
	mem_free(j);
	api_write_submit(c, wc);
}

/* The rbd storage of a cairn-fence call, usable from this node. */
static const struct res_storage *fence_storage(struct api_call *c,
                                               const char *id)
{
	const struct view_snap *v = c->a->snap;
	size_t i;

	for (i = 0; i < v->nstorage; i++) {
		const struct res_storage *s = &v->storage[i];

		if (strcmp(s->id, id) != 0)
			continue;
		if (strcmp(s->type, "rbd") != 0) {
			api_call_fail(c, -EINVAL,
			              "storage '%s' is a %s storage: fencing "
			              "is for rbd",
			              id, s->type);
			return NULL;
		}
		if (s->is_disabled ||
		    !res_storage_on_node(s, api_self_name(c->a))) {
			api_call_fail(c, -ENOENT,
			              "storage '%s' is not available on node "
			              "'%s'",
			              id, api_self_name(c->a));
			return NULL;
		}
		return s;
	}
	api_call_fail(c, -ENOENT, "storage '%s' does not exist", id);
	return NULL;
}

static void fence_change(struct api_call *c, bool is_add)
{
	const Cairn__StorageFenceRequest *q = (const void *)c->msg;
	const struct res_storage *s;
	const struct view_client *vc;
	struct fence_job *j;

	if (q->target == NULL || q->target[0] == '\0' ||
	    strlen(q->target) > 63) {
		api_param_error(c, "target",
		                q->target == NULL ? "property is missing and "
		                                    "it is not optional"
		                                  : "a node name of 1 to 63 "
		                                    "characters");
		return;
	}
	if (q->has_expire && (q->expire < 60 || q->expire > 10 * 365 * 86400)) {
		api_param_error(c, "expire", "value must be 60 .. 315360000");
		return;
	}
	if (api_view_wait(c) || api_view_missing(c))
		return;
	s = fence_storage(c, q->storage);
	if (s == NULL)
		return;
	if (is_add && strcmp(q->target, api_self_name(c->a)) == 0) {
		api_param_error(c, "target",
		                "node '%s' would fence itself: ask another "
		                "node",
		                q->target);
		return;
	}
	vc = find_client(c->a->snap, q->storage, q->target);
	if (vc == NULL) {
		api_call_fail(c, -ENOENT,
		              "node '%s' has not recorded its RADOS client "
		              "address for storage '%s' (each node does "
		              "within seconds of using it)",
		              q->target, q->storage);
		return;
	}
	j = mem_calloc(1, sizeof *j);
	if (j == NULL || api_rbd_conf(s, &j->conf) != 0) {
		mem_free(j);
		api_call_fail(c, -EINVAL, "storage '%s': no monhost or key",
		              q->storage);
		return;
	}
	snprintf(j->storage, sizeof j->storage, "%s", q->storage);
	snprintf(j->target, sizeof j->target, "%s", q->target);
	snprintf(j->host, sizeof j->host, "%s", vc->addr);
	j->expire_s = q->has_expire ? q->expire : FENCE_EXPIRE_S;
	j->is_add = is_add;
	j->c = c;
	c->ctx = j;
	c->work.data = c;
	if (api_pool_submit(c->a->cluster->node->storage_pool, &c->work,
	                    fence_work, fence_done) != 0) {
		c->ctx = NULL;
		explicit_bzero(&j->conf, sizeof j->conf);
		mem_free(j);
		api_call_fail(c, -EBUSY, "the storage pool is busy, retry");
	}
}

static void route_fence_add(struct api_call *c)
{
	fence_change(c, true);
}

static void route_fence_remove(struct api_call *c)
{
	fence_change(c, false);
}

static void route_fence_list(struct api_call *c)
{
	const Cairn__StorageFenceRequest *q = (const void *)c->msg;
	const struct view_snap *v;
	json_t *list;
	size_t i;

	if (api_view_wait(c) || api_view_missing(c))
		return;
	if (fence_storage(c, q->storage) == NULL)
		return;
	v = c->a->snap;
	list = json_array();
	for (i = 0; list != NULL && i < v->nclients; i++) {
		const struct view_client *vc = &v->clients[i];
		json_t *row;

		if (strcmp(vc->storage, q->storage) != 0)
			continue;
		row = json_pack("{s:s, s:s, s:i}", "node", vc->node, "addr",
		                vc->addr, "fenced", (int)(vc->fenced_at != 0));
		if (row != NULL && vc->fenced_at != 0) {
			json_object_set_new(row, "fenced_at",
			                    json_integer(vc->fenced_at));
			json_object_set_new(row, "fenced_by",
			                    json_string(vc->fenced_by));
		}
		json_array_append_new(list, row);
	}
	api_reply_json(c, list != NULL ? list : json_null());
}

#define FDEF(name, fn, flags, path, privs)                 \
	static const struct route_def name = {             \
	        &cairn__storage_fence_request__descriptor, \
	        fn,                                        \
	        true,                                      \
	        {flags, path, privs}}

FDEF(def_fence_list, route_fence_list, 0, "/storage/{storage}",
     "Datastore.Audit,Datastore.Allocate");
/* Cutting a node off its disks is an administrator's act. */
FDEF(def_fence_add, route_fence_add, 0, "/", "Sys.Modify");
FDEF(def_fence_remove, route_fence_remove, 0, "/", "Sys.Modify");

const struct api_route api_fence_routes[] = {
        {API_GET, "/nodes/{node}/storage/{storage}/cairn-fence",
         &def_fence_list},
        {API_POST, "/nodes/{node}/storage/{storage}/cairn-fence",
         &def_fence_add},
        {API_DELETE, "/nodes/{node}/storage/{storage}/cairn-fence",
         &def_fence_remove},
};
const size_t api_fence_nroutes = CAIRN_ARRAY_SIZE(api_fence_routes);
