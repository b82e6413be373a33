/* cairnd's settings: the key table, defaults and cross-checks. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "node/node.h"

#define KEY(n, t, d, lo, hi, help)                                            \
	{                                                                     \
#n, t, offsetof(struct node_config, n), d, lo, hi, NULL, help \
	}

const struct conf_key node_config_keys[] = {
        KEY(node_name, CONF_STRING, NULL, 0, NODE_NAME_MAX,
            "this node's name, a DNS label (default: the host's short name)"),
        KEY(data_dir, CONF_PATH, "/var/lib/cairn", 0, 0,
            "the node's database, keys and lock"),
        KEY(run_dir, CONF_PATH, "/run/cairn", 0, 0,
            "sockets and runtime state of guests"),
        KEY(log_file, CONF_PATH, "/var/log/cairn/cairnd.log", 0, 0,
            "log file when not running with --foreground"),
        {"log_level", CONF_ENUM, offsetof(struct node_config, log_level),
         "info", 0, 0, "debug|info|warn|error", "least severe level logged"},
        KEY(rpc_listen, CONF_ADDRESS, "0.0.0.0:8016", 0, 0,
            "RPC for the CLI and other nodes (TLS)"),
        KEY(db_listen, CONF_ADDRESS, "0.0.0.0:8017", 0, 0,
            "database replication between nodes (mutual TLS)"),
        KEY(api_listen, CONF_ADDRESS, "0.0.0.0:8006", 0, 0, "REST API (HTTPS)"),
        KEY(api_http2, CONF_BOOL, "0", 0, 0,
            "offer HTTP/2 on the REST API (h2o 2.2.5 has no fix for the "
            "HTTP/2 rapid reset attack)"),
        KEY(api_static_dir, CONF_PATH, NULL, 0, 0,
            "serve this directory's files at /static/ on the REST API's "
            "listener, unauthenticated (for benchmarks: the ceiling of the "
            "same TLS and headers; unset: nothing is served there)"),
        KEY(address, CONF_STRING, NULL, 0, 45,
            "the IPv4 address other nodes reach this node at (default: the "
            "host of rpc_listen, when that is not 0.0.0.0)"),
        KEY(bridge, CONF_STRING, "vmbr0", 0, 15,
            "the bridge guests attach to, created at start if missing "
            "(\"\": none)"),
        KEY(local_dir, CONF_PATH, "/var/lib/vz", 0, 0,
            "where this node keeps the `local` dir storage (Proxmox's "
            "/var/lib/vz)"),
        KEY(boot_id_file, CONF_PATH, "/proc/sys/kernel/random/boot_id", 0, 0,
            "the host's boot id: a node fenced on rbd lifts its own fence "
            "only once its host booted again (its guests are gone)"),
        KEY(db_latency_ms, CONF_INT, "50", 5, 2000,
            "database network latency: heartbeats 1.5x, elections 15x"),
        KEY(db_snapshot_threshold, CONF_INT, "256", 16, 1000000,
            "database log entries between snapshots"),
        KEY(db_snapshot_trailing, CONF_INT, "512", 16, 1000000,
            "database log entries kept after a snapshot"),
        KEY(uv_threadpool_size, CONF_INT, "8", 4, 128,
            "threads of libuv's pool, kept for dqlite and raft"),
        KEY(cpu_threads, CONF_INT, "2", 1, 64,
            "threads of cairn's cpu pool (password hashing, ...)"),
        KEY(cpu_queue, CONF_INT, "256", 1, 100000,
            "work the cpu pool holds before it answers busy"),
        KEY(storage_threads, CONF_INT, "4", 1, 64,
            "threads of cairn's storage pool (librbd, qemu-img, ...)"),
        KEY(storage_queue, CONF_INT, "256", 1, 100000,
            "work the storage pool holds before it answers busy"),
        KEY(transfer_threads, CONF_INT, "2", 1, 64,
            "threads of cairn's transfer pool (download-url and uploads, "
            "which may run for hours, kept off the storage pool)"),
        KEY(transfer_queue, CONF_INT, "64", 1, 100000,
            "transfers waiting for a thread before new ones answer busy"),
        KEY(test_tasks, CONF_BOOL, "0", 0, 0,
            "tests only: offer POST /nodes/{node}/cairn-test/sleep, a task "
            "that sleeps and logs, to test the task machinery"),
        KEY(test_spawn, CONF_STRING, NULL, 0, 1000,
            "tests only: a program and arguments (split on spaces, no shell) "
            "started at start-up and left running, standing in for a guest "
            "that outlives the agent"),
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* RFC 1123 label: what Proxmox accepts as a node name, and safe in paths,
 * certificates and UPIDs. */
static bool is_dns_label(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > NODE_NAME_MAX || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

static int finish(struct node_config *c, const char *source, struct err *e)
{
	char host[256];
	const char *p;

	if (c->node_name == NULL) {
		if (gethostname(host, sizeof host) != 0)
			return err_sys(e, -errno, "gethostname");
		host[sizeof host - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		c->node_name = mem_strdup(host);
		if (c->node_name == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		if (!is_dns_label(c->node_name))
			return err_set(e, -EINVAL,
			               "%s: the host name '%s' is not "
			               "a valid node name: set node_name",
			               source, host);
	}
	if (!is_dns_label(c->node_name))
		return err_set(e, -EINVAL,
		               "%s: node_name '%s' must be a DNS "
		               "label (letters, digits, '-', at most %d)",
		               source, c->node_name, NODE_NAME_MAX);
	if (c->address == NULL) {
		const char *colon = strrchr(c->rpc_listen, ':');

		if (strncmp(c->rpc_listen, "0.0.0.0:", 8) != 0 &&
		    colon != NULL) {
			c->address = mem_strndup(
			        c->rpc_listen, (size_t)(colon - c->rpc_listen));
			if (c->address == NULL)
				return err_set(e, -ENOMEM, "out of memory");
		}
	} else {
		struct in_addr ip;

		if (inet_pton(AF_INET, c->address, &ip) != 1)
			return err_set(
			        e, -EINVAL,
			        "%s: address '%s' must be an IPv4 address",
			        source, c->address);
	}
	for (p = c->bridge; p != NULL && *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.')
			return err_set(
			        e, -EINVAL,
			        "%s: bridge '%s' is not an interface name",
			        source, c->bridge);
	}
	if (strcmp(c->rpc_listen, c->db_listen) == 0 ||
	    strcmp(c->rpc_listen, c->api_listen) == 0 ||
	    strcmp(c->db_listen, c->api_listen) == 0)
		return err_set(e, -EINVAL,
		               "%s: rpc_listen, db_listen and "
		               "api_listen must differ",
		               source);
	return 0;
}

int node_config_parse(struct node_config *c, const char *source,
                      const char *text, struct err *e)
{
	int rv = conf_parse(node_config_keys, c, source, text, strlen(text), e);

	return rv != 0 ? rv : finish(c, source, e);
}

int node_config_load(struct node_config *c, const char *path, struct err *e)
{
	int rv = conf_load(node_config_keys, c, path, e);

	return rv != 0 ? rv : finish(c, path, e);
}

void node_config_free(struct node_config *c)
{
	conf_free(node_config_keys, c);
}

int node_config_help(struct buf *out)
{
	const struct conf_key *k;
	int rv = 0;

	for (k = node_config_keys; k->name != NULL && rv == 0; k++) {
		rv = buf_printf(out, "  %-20s %s", k->name, k->help);
		if (rv == 0 && k->def != NULL)
			rv = buf_printf(out, " [%s]", k->def);
		if (rv == 0)
			rv = buf_append_str(out, "\n");
	}
	return rv;
}
