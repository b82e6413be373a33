/* node: the agent, cairnd — its configuration, its lifecycle on the loop,
 * and (later) the REST server, API handlers, tasks and auth. */
#ifndef CAIRN_NODE_H
#define CAIRN_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/lib.h"

#define NODE_CONFIG_DEFAULT_PATH "/etc/cairn/cairnd.conf"
#define NODE_NAME_MAX            63

/* cairnd's settings. Every path, address and port is a setting, so several
 * nodes can run on one machine. Strings are owned (node_config_free). */
struct node_config {
	char *node_name; /* DNS label; default: the host's short name */
	char *data_dir;  /* DB, keys, the data-dir lock */
	char *run_dir;   /* sockets, pid files of guests */
	char *log_file;  /* where logs go when not --foreground */
	char *log_level;
	char *rpc_listen;     /* RPC (CLI and nodes), TLS */
	char *db_listen;      /* dqlite tunnel, mutual TLS */
	char *api_listen;     /* REST API, HTTPS */
	bool api_http2;       /* offer HTTP/2 on it (off: no rapid-reset fix) */
	char *api_static_dir; /* NULL: no /static/ (benchmarks only) */
	char *local_dir;      /* the `local` storage's directory */
	char *boot_id_file;   /* the host's boot id (fencing) */
	char *address;        /* the IP other nodes reach us at */
	char *bridge;         /* guests' bridge, created if missing; "" none */
	int64_t db_latency_ms;
	int64_t db_snapshot_threshold;
	int64_t db_snapshot_trailing;
	int64_t uv_threadpool_size;
	int64_t cpu_threads;
	int64_t cpu_queue;
	int64_t storage_threads;
	int64_t storage_queue;
	int64_t transfer_threads;
	int64_t transfer_queue;
	char *test_spawn;
	bool test_tasks; /* POST /nodes/{node}/cairn-test/sleep */
};

extern const struct conf_key node_config_keys[];

/* Loads PATH over the defaults and checks the settings together (node name
 * syntax, distinct listen addresses). On failure e names the file and line
 * or the setting; the struct must still be freed. */
int node_config_load(struct node_config *c, const char *path, struct err *e);
/* Same, from text (tests). */
int node_config_parse(struct node_config *c, const char *source,
                      const char *text, struct err *e);
void node_config_free(struct node_config *c);
/* Writes `cairnd --help`'s list of settings. */
int node_config_help(struct buf *out);

/* The agent: an opaque handle with create/start/stop/destroy.
 *
 * node_create takes the data-dir lock (so a second agent on the same data
 * dir fails there, with the holder's pid in the message); node_start starts
 * the thread pools; node_stop closes everything on the loop and calls cb
 * once the node holds no more loop handles. */
struct node;
typedef void (*node_stop_cb)(struct node *n);

int node_create(const struct node_config *c, uv_loop_t *loop, struct node **out,
                struct err *e);
int node_start(struct node *n, struct err *e);
void node_stop(struct node *n, node_stop_cb cb);
void node_destroy(struct node *n);
/* cairn's own pools, by name: "cpu" (hashing, JSON work), "storage"
 * (librbd, qemu-img, fsync-heavy work) and "transfer" (downloads and
 * uploads, which may take hours: apart, so they cannot starve storage). */
struct pool *node_pool(struct node *n, const char *name);

/* The versions of every library cairnd links, one per line. */
int node_versions(struct buf *out);

#endif /* CAIRN_NODE_H */
