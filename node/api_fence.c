/* Storage-level fencing on Ceph RBD (DESIGN.md §7): before the HA manager
 * restarts a dead node's guests elsewhere it blocklists that node's RADOS
 * clients, so that a node that was only cut off cannot write to their
 * disks any more; the entry goes when the node comes back.
 *
 * What is blocklisted is the node's address as the OSDs see it, bare (no
 * port or nonce): every client of that host, its guests' QEMU included.
 * Each agent learns that address from its own connection to each rbd
 * storage and records it in storage_clients with its host's boot id (soon
 * after start, when a storage appears, and every 30 s when something
 * changed), so that it is known when the node is gone.
 *
 * A node lifts its own fence only when its host has booted since it
 * recorded the boot id the fence saw: then its guests died with the old
 * boot. An agent that merely restarted (its QEMUs may still run) stays
 * fenced until someone removes the entry. */
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

static bool is_own_rbd(const struct node_api *a, const struct res_storage *s)
{
	return strcmp(s->type, "rbd") == 0 && !s->is_disabled &&
	       res_storage_on_node(s, api_self_name(a));
}

/* ------------------------------------------------------ the recorder */

struct record_job {
	struct node_api *a;
	struct pool_work work;
	char boot_file[4096];
	char boot_id[40]; /* out; "" when unreadable */
	struct err boot_err;
	size_t n;
	struct record_st {
		char storage[65];
		struct rbd_conf conf;
		bool is_fenced;       /* the DB says so */
		char fenced_boot[40]; /* the boot id its row holds */
		char host[STORE_RBD_ADDR_MAX];
		bool is_unfenced;
		int rv;
		struct err err;
	} st[];
};

static void record_job_free(struct record_job *j)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		explicit_bzero(&j->st[i].conf, sizeof j->st[i].conf);
	mem_free(j);
}

/* The first line of the boot id file, at most 39 characters of
 * [0-9a-f-]. */
static int read_boot_id(const char *path, char *out, size_t size, struct err *e)
{
	struct buf b;
	size_t n;
	int rv;

	buf_init(&b, 256);
	rv = file_read_all(path, 255, &b, e);
	n = rv == 0 ? strspn((const char *)b.data, "0123456789abcdef-") : 0;
	if (rv == 0 && (n == 0 || n >= size || n > b.len))
		rv = err_set(e, -EINVAL, "%s: no boot id", path);
	if (rv == 0) {
		memcpy(out, b.data, n);
		out[n] = '\0';
	}
	buf_free(&b);
	return rv;
}

static void record_work(struct pool_work *w)
{
	struct record_job *j = w->data;
	char addr[STORE_RBD_ADDR_MAX];
	size_t i;

	if (read_boot_id(j->boot_file, j->boot_id, sizeof j->boot_id,
	                 &j->boot_err) != 0)
		j->boot_id[0] = '\0';
	for (i = 0; i < j->n; i++) {
		struct record_st *st = &j->st[i];
		struct store_rbd *r = NULL;
		int rv;

		rv = api_rbd_open(&st->conf, &r, &st->err);
		if (rv == 0)
			rv = store_rbd_client_addr(r, addr, sizeof addr,
			                           &st->err);
		if (rv == 0)
			rv = store_rbd_addr_host(addr, st->host,
			                         sizeof st->host, &st->err);
		if (rv == 0 && !store_rbd_host_fenceable(st->host))
			rv = err_set(&st->err, -EADDRNOTAVAIL,
			             "the OSDs see this node as %s, which "
			             "cannot stand for it alone: not recorded, "
			             "it cannot be fenced on this storage",
			             st->host);
		/* Booted since the fence: its guests are gone. */
		if (rv == 0 && st->is_fenced && j->boot_id[0] != '\0' &&
		    st->fenced_boot[0] != '\0' &&
		    strcmp(st->fenced_boot, j->boot_id) != 0) {
			rv = store_rbd_blocklist_rm(r, st->host, &st->err);
			st->is_unfenced = rv == 0;
		}
		store_rbd_close(r);
		explicit_bzero(&st->conf, sizeof st->conf);
		st->rv = rv;
	}
}

static void record_done(struct pool_work *w, int status)
{
	struct record_job *j = w->data;
	struct node_api *a = j->a;
	struct write_ctx *wc = NULL;
	size_t i;

	a->is_fence_recording = false;
	if (status != 0 || a->cluster == NULL) {
		record_job_free(j);
		api_maybe_stopped(a);
		return;
	}
	if (j->boot_id[0] == '\0')
		LOG_WARN("fence", "cannot read the host's boot id",
		         "error=\"%s\"", j->boot_err.msg);
	snprintf(a->fence_boot_id, sizeof a->fence_boot_id, "%s", j->boot_id);
	for (i = 0; i < j->n; i++) {
		struct record_st *st = &j->st[i];
		const struct view_client *vc;
		struct write_stmt *ws;

		if (st->rv != 0) {
			LOG_WARN(
			        "fence",
			        "cannot record this node's RADOS client address",
			        "storage=%s error=\"%s\"", st->storage,
			        st->err.msg);
			continue;
		}
		if (st->is_unfenced)
			LOG_INFO("fence",
			         "booted again: removed this node from the "
			         "blocklist",
			         "storage=%s addr=%s", st->storage, st->host);
		else if (st->is_fenced && !a->is_fence_warned) {
			LOG_WARN(
			        "fence",
			        "this node is fenced and its host has not "
			        "booted since: it stays fenced until the entry "
			        "is removed (DELETE .../cairn-fence?target=)",
			        "storage=%s addr=%s", st->storage, st->host);
			a->is_fence_warned = true;
		}
		vc = find_client(a->snap, st->storage, api_self_name(a));
		if (vc != NULL && strcmp(vc->addr, st->host) == 0 &&
		    strcmp(vc->boot_id, j->boot_id) == 0 && !st->is_unfenced)
			continue;
		if (wc == NULL && (wc = api_write_new()) == NULL)
			break;
		ws = api_write_add(wc, "INSERT INTO storage_clients "
		                       "(storage, node, addr, boot_id, "
		                       "updated_at) VALUES (?, ?, ?, ?, ?) "
		                       "ON CONFLICT (storage, node) DO UPDATE "
		                       "SET addr = excluded.addr, "
		                       "boot_id = excluded.boot_id, "
		                       "updated_at = excluded.updated_at");
		api_write_text(wc, ws, st->storage);
		api_write_text(wc, ws, api_self_name(a));
		api_write_text(wc, ws, st->host);
		api_write_text(wc, ws, j->boot_id);
		api_write_int(ws, api_wall_s());
		if (st->is_unfenced) {
			ws = api_write_add(wc, "UPDATE storage_clients SET "
			                       "fenced_at = NULL, fenced_by = "
			                       "NULL WHERE storage = ? AND "
			                       "node = ?");
			api_write_text(wc, ws, st->storage);
			api_write_text(wc, ws, api_self_name(a));
		}
	}
	if (wc != NULL && api_write_background(a, wc, NULL, NULL) != 0)
		LOG_WARN("fence", "cannot record RADOS client addresses",
		         "error=\"the database queue is full\"");
	record_job_free(j);
	api_maybe_stopped(a);
}

/* From the storage timer (every 5 s): records soon after start or when a
 * storage has no row of ours yet, else every 30 s. */
void api_fence_poll(struct node_api *a)
{
	const struct view_snap *v = a->snap;
	uint64_t now = clock_mono_ms(clock_real());
	struct record_job *j;
	bool is_new = false;
	size_t i, n = 0;

	if (a->is_fence_recording || a->is_stopping || a->cluster == NULL ||
	    v == NULL)
		return;
	for (i = 0; i < v->nstorage; i++) {
		const struct view_client *vc;

		if (!is_own_rbd(a, &v->storage[i]))
			continue;
		n++;
		vc = find_client(v, v->storage[i].id, api_self_name(a));
		if (vc == NULL || strcmp(vc->boot_id, a->fence_boot_id) != 0)
			is_new = true;
	}
	if (n == 0 || (a->fence_recorded_ms != 0 &&
	               now - a->fence_recorded_ms <
	                       (is_new ? FENCE_RETRY_MS : FENCE_RECORD_MS)))
		return;
	j = mem_calloc(1, sizeof *j + n * sizeof j->st[0]);
	if (j == NULL)
		return;
	snprintf(j->boot_file, sizeof j->boot_file, "%s",
	         a->cluster->node->config->boot_id_file);
	for (i = 0; i < v->nstorage && j->n < n; i++) {
		const struct res_storage *s = &v->storage[i];
		struct record_st *st = &j->st[j->n];
		const struct view_client *vc;

		if (!is_own_rbd(a, s) || api_rbd_conf(s, &st->conf) != 0)
			continue;
		snprintf(st->storage, sizeof st->storage, "%s", s->id);
		vc = find_client(v, s->id, api_self_name(a));
		if (vc != NULL && vc->fenced_at != 0) {
			st->is_fenced = true;
			snprintf(st->fenced_boot, sizeof st->fenced_boot, "%s",
			         vc->boot_id);
		}
		j->n++;
	}
	a->fence_recorded_ms = now;
	j->a = a;
	j->work.data = j;
	if (api_pool_submit(a->cluster->node->storage_pool, &j->work,
	                    record_work, record_done) != 0) {
		record_job_free(j);
		return;
	}
	a->is_fence_recording = true;
}

/* ---------------------------------------------------------- the routes
 *
 * POST: the row says "fenced" first, then the monitors blocklist the host
 * (a failure puts the row back): a fence that took effect is never
 * missing from the DB. DELETE: the blocklist entry goes first, then the
 * row. */

struct fence_job {
	struct api_call *c;
	struct rbd_conf conf;
	char storage[65];
	char target[64];
	char host[STORE_RBD_ADDR_MAX];
	unsigned expire_s;
	bool is_add;
	bool was_fenced; /* POST: the row said so before */
	int rv;
	struct err err;
};

static void fence_job_free(struct fence_job *j)
{
	explicit_bzero(&j->conf, sizeof j->conf);
	mem_free(j);
}

static struct write_ctx *fence_row(struct fence_job *j, bool is_fenced,
                                   const char *by)
{
	struct write_ctx *wc = api_write_new();
	struct write_stmt *st;

	if (wc == NULL)
		return NULL;
	st = api_write_add(wc, "UPDATE storage_clients SET fenced_at = ?, "
	                       "fenced_by = ? WHERE storage = ? AND node = ?");
	st->none_msg = "the node's client row is gone";
	if (is_fenced) {
		api_write_int(st, api_wall_s());
		api_write_text(wc, st, by);
	} else {
		st->params[st->nparams++] = wire_value_null();
		st->params[st->nparams++] = wire_value_null();
	}
	api_write_text(wc, st, j->storage);
	api_write_text(wc, st, j->target);
	return wc;
}

static void fence_reply(struct api_call *c, struct fence_job *j)
{
	json_t *data = json_pack("{s:s, s:s, s:i}", "node", j->target, "addr",
	                         j->host, "fenced", (int)j->is_add);

	LOG_INFO("fence", j->is_add ? "fenced a node" : "unfenced a node",
	         "storage=%s node=%s addr=%s by=%s", j->storage, j->target,
	         j->host, c->principal);
	fence_job_free(j);
	api_reply_json(c, data);
}

static void reverted(struct node_api *a, int status, const struct err *e,
                     void *data)
{
	struct fence_job *j = data;

	(void)a;
	if (status != 0)
		LOG_WARN("fence", "cannot put back the row of a failed fence",
		         "storage=%s node=%s error=\"%s\"", j->storage,
		         j->target, e->msg);
	api_call_done(j->c, j->rv, &j->err);
	fence_job_free(j);
}

static void unfence_written(struct node_api *a, int status, const struct err *e,
                            void *data)
{
	struct fence_job *j = data;

	(void)a;
	if (status != 0) {
		/* The entry is gone; the row still says fenced: safe. */
		j->rv = status;
		j->err = *e;
		api_call_done(j->c, j->rv, &j->err);
		fence_job_free(j);
		return;
	}
	fence_reply(j->c, j);
}

static void fence_work(struct pool_work *w)
{
	struct fence_job *j = w->data;
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
	struct fence_job *j = w->data;
	struct api_call *c = j->c;
	struct node_api *a = c->a;
	struct write_ctx *wc;

	if (status != 0) {
		j->rv = err_set(&j->err, -ESHUTDOWN, "the node is stopping");
	}
	if (j->is_add && j->rv != 0) {
		/* Not blocklisted: the row goes back, unless it was fenced
		 * before this call. */
		wc = j->was_fenced ? NULL : fence_row(j, false, NULL);
		if (wc != NULL && api_write_background(a, wc, reverted, j) == 0)
			return;
		api_call_done(c, j->rv, &j->err);
		fence_job_free(j);
		return;
	}
	if (j->is_add) {
		fence_reply(c, j);
		return;
	}
	if (j->rv != 0) {
		api_call_done(c, j->rv, &j->err);
		fence_job_free(j);
		return;
	}
	wc = fence_row(j, false, NULL);
	if (wc == NULL ||
	    api_write_background(a, wc, unfence_written, j) != 0) {
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
		fence_job_free(j);
	}
}

static void fence_submit(struct fence_job *j)
{
	struct api_call *c = j->c;

	c->work.data = j;
	if (c->a->cluster == NULL ||
	    api_pool_submit(c->a->cluster->node->storage_pool, &c->work,
	                    fence_work, fence_done) != 0) {
		j->rv = err_set(&j->err, -EBUSY,
		                "the storage pool is busy, retry");
		fence_done(&c->work, 0);
	}
}

static void fence_written(struct node_api *a, int status, const struct err *e,
                          void *data)
{
	struct fence_job *j = data;

	(void)a;
	if (status != 0) {
		j->err = *e;
		api_call_done(j->c, status, &j->err);
		fence_job_free(j);
		return;
	}
	fence_submit(j);
}

/* The rbd storage of a cairn-fence call, usable from this node. */
static const struct res_storage *fence_storage(struct api_call *c,
                                               const char *id)
{
	const struct res_storage *s = api_find_storage(c->a->snap, id);

	if (s == NULL) {
		api_call_fail(c, -ENOENT, "storage '%s' does not exist", id);
		return NULL;
	}
	if (strcmp(s->type, "rbd") != 0) {
		api_call_fail(
		        c, -EINVAL,
		        "storage '%s' is a %s storage: fencing is for rbd", id,
		        s->type);
		return NULL;
	}
	if (!is_own_rbd(c->a, s)) {
		api_call_fail(c, -ENOENT,
		              "storage '%s' is not available on node '%s'", id,
		              api_self_name(c->a));
		return NULL;
	}
	return s;
}

/* The target's client row, checked: recorded, an address that stands for
 * it alone. NULL when c was answered. */
static const struct view_client *
fence_target(struct api_call *c, const char *storage, const char *target)
{
	const struct view_snap *v = c->a->snap;
	const struct view_client *vc = find_client(v, storage, target);
	size_t i;

	if (vc == NULL) {
		api_call_fail(c, -ENOENT,
		              "node '%s' has not recorded its RADOS client "
		              "address for storage '%s' (each node does "
		              "within seconds of using it)",
		              target, storage);
		return NULL;
	}
	if (!store_rbd_host_fenceable(vc->addr)) {
		api_call_fail(c, -EINVAL,
		              "node '%s' is recorded as %s, which cannot stand "
		              "for it alone",
		              target, vc->addr);
		return NULL;
	}
	for (i = 0; i < v->nclients; i++) {
		const struct view_client *o = &v->clients[i];

		if (strcmp(o->storage, storage) == 0 &&
		    strcmp(o->node, target) != 0 &&
		    strcmp(o->addr, vc->addr) == 0) {
			api_call_fail(
			        c, -EINVAL,
			        "nodes '%s' and '%s' share the address %s "
			        "as Ceph sees them: fencing one would cut "
			        "off both",
			        target, o->node, vc->addr);
			return NULL;
		}
	}
	return vc;
}

static void fence_change(struct api_call *c, bool is_add)
{
	const Cairn__StorageFenceRequest *q = (const void *)c->msg;
	const struct res_storage *s;
	const struct view_client *vc;
	struct fence_job *j;
	struct write_ctx *wc;

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
	vc = fence_target(c, q->storage, q->target);
	if (vc == NULL)
		return;
	j = mem_calloc(1, sizeof *j);
	if (j == NULL || api_rbd_conf(s, &j->conf) != 0) {
		if (j != NULL)
			fence_job_free(j);
		api_call_fail(c, -EINVAL, "storage '%s': no monhost or key",
		              q->storage);
		return;
	}
	j->c = c;
	snprintf(j->storage, sizeof j->storage, "%s", q->storage);
	snprintf(j->target, sizeof j->target, "%s", q->target);
	snprintf(j->host, sizeof j->host, "%s", vc->addr);
	j->expire_s = q->has_expire ? q->expire : FENCE_EXPIRE_S;
	j->is_add = is_add;
	j->was_fenced = vc->fenced_at != 0;
	if (!is_add) {
		fence_submit(j);
		return;
	}
	wc = fence_row(j, true, c->principal);
	if (wc == NULL ||
	    api_write_background(c->a, wc, fence_written, j) != 0) {
		api_call_fail(c, -EBUSY, "the database queue is full, retry");
		fence_job_free(j);
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
