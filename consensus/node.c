/* The embedded dqlite node: start/stop, the bootstrap guard, peer connects. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <dqlite.h>

#include "consensus/consensus.h"
#include "consensus/conn.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
/* A peer that stops answering is noticed in ~2 s instead of minutes of TCP
 * retransmissions (notes/dqlite.md trap 4). */
#define PEER_USER_TIMEOUT_MS 2000

struct db_node {
	dqlite_node *dqlite;
	uint64_t id;
	char address[128];
	char marker_path[4096];
	unsigned connect_timeout_ms;
	db_dial_fn dial;
	void *dial_data;
};

int db__socket_connect(const char *address, unsigned timeout_ms, struct err *e)
{
	struct sockaddr_storage sa;
	socklen_t sa_len;
	struct pollfd pfd;
	int fd, rv, one = 1, soerr = 0;
	socklen_t soerr_len = sizeof soerr;
	unsigned user_timeout = PEER_USER_TIMEOUT_MS;

	rv = db__address_parse(address, &sa, &sa_len, e);
	if (rv != 0)
		return rv;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return err_sys(e, -errno, "socket for %s", address);
	if (sa.ss_family != AF_UNIX) {
		/* Nagle plus delayed ACKs cost ~40 ms per message (trap 4). */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
		           sizeof user_timeout);
	}
	rv = connect(fd, (struct sockaddr *)&sa, sa_len);
	if (rv != 0 && errno != EINPROGRESS && errno != EAGAIN) {
		rv = err_sys(e, -errno, "connect to %s", address);
		goto err_after_socket;
	}
	if (rv != 0) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			rv = poll(&pfd, 1, (int)timeout_ms);
		while (rv < 0 && errno == EINTR);
		if (rv == 0) {
			rv = err_set(e, -ETIMEDOUT,
			             "connect to %s: no answer "
			             "within %u ms",
			             address, timeout_ms);
			goto err_after_socket;
		}
		if (rv < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
		                         &soerr_len) != 0) {
			rv = err_sys(e, -errno, "connect to %s", address);
			goto err_after_socket;
		}
		if (soerr != 0) {
			rv = err_sys(e, -soerr, "connect to %s", address);
			goto err_after_socket;
		}
	}
	/* Back to blocking: callers use poll-guarded reads with their own
	 * timeouts, and dqlite expects a plain blocking-capable fd. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		rv = err_sys(e, -errno, "fcntl %s", address);
		goto err_after_socket;
	}
	return fd;

err_after_socket:
	close(fd);
	return rv;
}

int db__address_parse(const char *address, struct sockaddr_storage *sa,
                      socklen_t *len, struct err *e)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	struct sockaddr_un *un = (struct sockaddr_un *)sa;
	char host[64];
	const char *colon;
	size_t n;
	long port;
	char *end;

	memset(sa, 0, sizeof *sa);
	if (address[0] == '@') {
		/* Abstract unix socket: a leading NUL, no terminator. */
		n = strlen(address + 1);
		if (n == 0 || n >= sizeof un->sun_path - 1)
			return err_set(e, -EINVAL,
			               "bad abstract socket name "
			               "'%s'",
			               address);
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path + 1, address + 1, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
		                   n);
		return 0;
	}
	colon = strrchr(address, ':');
	if (colon == NULL || colon == address ||
	    (size_t)(colon - address) >= sizeof host)
		return err_set(e, -EINVAL, "'%s' is not IPv4:PORT", address);
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
		return err_set(e, -EINVAL, "'%s' has no valid port", address);
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return err_set(e, -EINVAL,
		               "'%s' is not a numeric IPv4 address "
		               "(dqlite 1.11 accepts no names)",
		               address);
	*len = sizeof *in;
	return 0;
}

int db__dial_tcp(void *data, const char *address, unsigned timeout_ms,
                 struct err *e)
{
	(void)data;
	return db__socket_connect(address, timeout_ms, e);
}

/* dqlite calls this from its own worker to reach a peer; it must return a
 * connected fd. Later the agent points it at its TLS tunnel. */
static int connect_peer(void *arg, const char *address, int *fd)
{
	struct db_node *n = arg;
	struct err e;
	int rv;

	rv = n->dial != NULL
	             ? n->dial(n->dial_data, address, n->connect_timeout_ms, &e)
	             : db__socket_connect(address, n->connect_timeout_ms, &e);
	if (rv < 0) {
		LOG_DEBUG("db", "peer connect failed", "node=%llu error=\"%s\"",
		          (unsigned long long)n->id, e.msg);
		return DQLITE_ERROR;
	}
	*fd = rv;
	return 0;
}

/* dqlite's directory holds data once Raft wrote its metadata there. */
static int dir_has_data(const char *dir, bool *has_data, struct err *e)
{
	struct dirent *d;
	DIR *dp;

	*has_data = false;
	dp = opendir(dir);
	if (dp == NULL) {
		if (errno == ENOENT)
			return 0;
		return err_sys(e, -errno, "open %s", dir);
	}
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, "metadata", 8) == 0 ||
		    strncmp(d->d_name, "snapshot-", 9) == 0 ||
		    strncmp(d->d_name, "open-", 5) == 0) {
			*has_data = true;
			break;
		}
	}
	closedir(dp);
	return 0;
}

static int check_bootstrap_guard(const struct db_node_config *c, struct err *e)
{
	bool has_data, has_marker;
	int rv;

	rv = dir_has_data(c->dir, &has_data, e);
	if (rv != 0)
		return rv;
	has_marker = access(c->marker_path, F_OK) == 0;
	if (!has_data && has_marker)
		return err_set(e, -EEXIST,
		               "database directory %s is empty, but this node "
		               "was initialized before (%s exists): refusing "
		               "to start a new database that the cluster would "
		               "silently overwrite. Restore the directory from "
		               "a backup, or remove the node from the cluster "
		               "and join it again",
		               c->dir, c->marker_path);
	if (!has_data && c->id == DB_BOOTSTRAP_ID && !c->bootstrap)
		return err_set(
		        e, -EINVAL,
		        "node id %d with an empty directory %s would "
		        "create a new cluster; only cluster creation may "
		        "do that",
		        DB_BOOTSTRAP_ID, c->dir);
	if (c->bootstrap && c->id != DB_BOOTSTRAP_ID)
		return err_set(e, -EINVAL,
		               "only node id %d can create a "
		               "cluster (got %llu)",
		               DB_BOOTSTRAP_ID, (unsigned long long)c->id);
	return 0;
}

int db_node_mark_initialized(struct db_node *n, struct err *e)
{
	char text[64];
	int fd, len;

	fd = open(n->marker_path,
	          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_sys(e, -errno, "create %s", n->marker_path);
	len = snprintf(text, sizeof text, "node_id=%llu\n",
	               (unsigned long long)n->id);
	if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
		int code = errno != 0 ? -errno : -EIO;

		close(fd);
		return err_sys(e, code, "write %s", n->marker_path);
	}
	close(fd);
	return 0;
}

int db_node_start(const struct db_node_config *c, struct db_node **out,
                  struct err *e)
{
	struct db_node *n;
	int rv;

	if (c->id == 0 || c->address == NULL || c->dir == NULL ||
	    c->marker_path == NULL)
		return err_set(e, -EINVAL,
		               "db node: id, address, dir and "
		               "marker_path are required");
	if (strlen(c->address) >= sizeof n->address)
		return err_set(e, -EINVAL, "db node: address too long");
	rv = file_mkdir_p(c->dir, 0700, e);
	if (rv != 0)
		return err_wrap(e, "db node");
	rv = check_bootstrap_guard(c, e);
	if (rv != 0)
		return rv;

	n = mem_calloc(1, sizeof *n);
	if (n == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	n->id = c->id;
	snprintf(n->address, sizeof n->address, "%s", c->address);
	snprintf(n->marker_path, sizeof n->marker_path, "%s", c->marker_path);
	n->dial = c->dial;
	n->dial_data = c->dial_data;
	n->connect_timeout_ms = c->connect_timeout_ms != 0
	                                ? c->connect_timeout_ms
	                                : DEFAULT_CONNECT_TIMEOUT_MS;

	rv = dqlite_node_create(c->id, c->address, c->dir, &n->dqlite);
	if (rv != 0) {
		rv = err_set(e, -EIO, "dqlite_node_create: %s",
		             n->dqlite != NULL ? dqlite_node_errmsg(n->dqlite)
		                               : "failed");
		goto err_after_create;
	}
	rv = dqlite_node_set_bind_address(n->dqlite, c->bind_address != NULL
	                                                     ? c->bind_address
	                                                     : c->address);
	if (rv != 0) {
		rv = err_set(e, -EADDRNOTAVAIL, "bind %s: %s",
		             c->bind_address != NULL ? c->bind_address
		                                     : c->address,
		             dqlite_node_errmsg(n->dqlite));
		goto err_after_create;
	}
	rv = dqlite_node_set_connect_func(n->dqlite, connect_peer, n);
	if (rv == 0)
		rv = dqlite_node_set_network_latency_ms(
		        n->dqlite, c->latency_ms != 0 ? c->latency_ms
		                                      : DB_DEFAULT_LATENCY_MS);
	if (rv == 0)
		rv = dqlite_node_set_snapshot_params(
		        n->dqlite,
		        c->snapshot_threshold != 0
		                ? c->snapshot_threshold
		                : DB_DEFAULT_SNAPSHOT_THRESHOLD,
		        c->snapshot_trailing != 0
		                ? c->snapshot_trailing
		                : DB_DEFAULT_SNAPSHOT_TRAILING);
	if (rv != 0) {
		rv = err_set(e, -EINVAL, "configure dqlite node: %s",
		             dqlite_node_errmsg(n->dqlite));
		goto err_after_create;
	}
	rv = dqlite_node_start(n->dqlite);
	if (rv != 0) {
		rv = err_set(e, -EIO, "start dqlite node %llu at %s: %s",
		             (unsigned long long)c->id, c->address,
		             dqlite_node_errmsg(n->dqlite));
		goto err_after_create;
	}
	if (c->bootstrap) {
		rv = db_node_mark_initialized(n, e);
		if (rv != 0) {
			dqlite_node_stop(n->dqlite);
			goto err_after_create;
		}
	}
	LOG_INFO("db", "dqlite node started", "id=%llu address=%s dir=%s",
	         (unsigned long long)c->id, c->address, c->dir);
	*out = n;
	return 0;

err_after_create:
	if (n->dqlite != NULL)
		dqlite_node_destroy(n->dqlite);
	mem_free(n);
	return rv;
}

void db_node_stop(struct db_node *n)
{
	if (n == NULL)
		return;
	if (dqlite_node_stop(n->dqlite) != 0)
		LOG_WARN("db", "dqlite node stop failed",
		         "id=%llu error=\"%s\"", (unsigned long long)n->id,
		         dqlite_node_errmsg(n->dqlite));
	dqlite_node_destroy(n->dqlite);
	mem_free(n);
}

uint64_t db_node_id(const struct db_node *n)
{
	return n->id;
}

const char *db_node_address(const struct db_node *n)
{
	return n->address;
}

uint64_t db_node_generate_id(const char *address)
{
	uint64_t id;

	do
		id = dqlite_generate_node_id(address);
	while (id <= DB_BOOTSTRAP_ID);
	return id;
}

int db_node_recover(const struct db_node_config *c,
                    const struct db_member *members, unsigned n, struct err *e)
{
	dqlite_node_info_ext *infos;
	dqlite_node *node = NULL;
	unsigned i;
	int rv;

	if (n == 0)
		return err_set(e, -EINVAL,
		               "recover: no surviving members given");
	infos = mem_calloc(n, sizeof *infos);
	if (infos == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		infos[i].size = sizeof infos[i];
		infos[i].id = members[i].id;
		infos[i].address = (uint64_t)(uintptr_t)members[i].address;
		infos[i].dqlite_role = (uint64_t)members[i].role;
	}
	rv = dqlite_node_create(c->id, c->address, c->dir, &node);
	if (rv == 0)
		rv = dqlite_node_recover_ext(node, infos, (int)n);
	if (rv != 0)
		rv = err_set(e, -EIO, "recover dqlite node %llu in %s: %s",
		             (unsigned long long)c->id, c->dir,
		             node != NULL ? dqlite_node_errmsg(node)
		                          : "failed");
	if (node != NULL)
		dqlite_node_destroy(node);
	mem_free(infos);
	return rv;
}
