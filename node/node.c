/* The agent's lifecycle: data-dir lock, pid file, thread pools, children.
 *
 *   node_create ──> CREATED ──node_start──> RUNNING ──node_stop──> STOPPING
 *                                                                    │
 *   node_destroy <── STOPPED <── (every pool and handle closed) ─────┘
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/internal.h"

#define TEST_SPAWN_MAX_ARGS 32

static const char *state_name(enum node_state s)
{
	static const char *const names[] = {"created", "running", "stopping",
	                                    "stopped"};
	return names[s];
}

/* The one place the state changes; illegal moves are bugs. */
static void set_state(struct node *n, enum node_state to)
{
	bool ok = (n->state == NODE_CREATED && to == NODE_RUNNING) ||
	          (n->state == NODE_CREATED && to == NODE_STOPPING) ||
	          (n->state == NODE_RUNNING && to == NODE_STOPPING) ||
	          (n->state == NODE_STOPPING && to == NODE_STOPPED);

	if (!ok)
		log_write(LOG_LEVEL_ERROR, "node", "illegal state change",
		          "from=%s to=%s", state_name(n->state),
		          state_name(to));
	CAIRN_ASSERT(ok);
	n->state = to;
}

static int write_pid_file(struct node *n, struct err *e)
{
	char text[32];
	int fd, len;

	snprintf(n->pid_path, sizeof n->pid_path, "%s/cairnd.pid",
	         n->config->run_dir);
	fd = open(n->pid_path,
	          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", n->pid_path);
	len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (write(fd, text, (size_t)len) != len) {
		int code = errno != 0 ? -errno : -EIO;

		close(fd);
		return err_sys(e, code, "write %s", n->pid_path);
	}
	close(fd);
	return 0;
}

int node_create(const struct node_config *c, uv_loop_t *loop, struct node **out,
                struct err *e)
{
	char lock_path[4200];
	struct node *n;
	int rv;

	n = mem_calloc(1, sizeof *n);
	if (n == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	n->config = c;
	n->loop = loop;
	n->state = NODE_CREATED;
	n->lock_fd = -1;

	rv = file_mkdir_p(c->data_dir, 0700, e);
	if (rv != 0)
		goto err_after_alloc;
	rv = file_mkdir_p(c->run_dir, 0755, e);
	if (rv != 0)
		goto err_after_alloc;
	snprintf(lock_path, sizeof lock_path, "%s/cairnd.lock", c->data_dir);
	rv = file_lock_exclusive(lock_path, e);
	if (rv < 0) {
		if (rv == -EWOULDBLOCK)
			err_wrap(e, "data dir %s is in use by another cairnd",
			         c->data_dir);
		goto err_after_alloc;
	}
	n->lock_fd = rv;
	rv = write_pid_file(n, e);
	if (rv != 0)
		goto err_after_lock;
	*out = n;
	return 0;

err_after_lock:
	close(n->lock_fd);
err_after_alloc:
	mem_free(n);
	return rv;
}

static void on_sigchld(uv_signal_t *handle, int signum)
{
	struct node *n = CAIRN_CONTAINER_OF(handle, struct node, sigchld);
	int status;

	(void)signum;
	if (n->test_child > 0 && waitpid(n->test_child, &status, WNOHANG) > 0) {
		LOG_INFO("node", "test child exited", "pid=%ld status=%d",
		         (long)n->test_child, status);
		n->test_child = 0;
	}
}

/* Splits on spaces into argv; no shell, no quoting: the value comes from
 * the root-owned config file and exists for tests. */
static int spawn_test_child(struct node *n, struct err *e)
{
	char *copy, *word, *save = NULL;
	const char *argv[TEST_SPAWN_MAX_ARGS + 1];
	struct proc_options opts = {.stdin_fd = -1,
	                            .stdout_fd = -1,
	                            .stderr_fd = -1,
	                            .new_session = true};
	size_t argc = 0;
	int rv;

	copy = mem_strdup(n->config->test_spawn);
	if (copy == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (word = strtok_r(copy, " ", &save); word != NULL;
	     word = strtok_r(NULL, " ", &save)) {
		if (argc == TEST_SPAWN_MAX_ARGS) {
			mem_free(copy);
			return err_set(e, -E2BIG,
			               "test_spawn: more than %d "
			               "words",
			               TEST_SPAWN_MAX_ARGS);
		}
		argv[argc++] = word;
	}
	argv[argc] = NULL;
	opts.argv = argv;
	rv = proc_spawn(&opts, &n->test_child, e);
	mem_free(copy);
	if (rv != 0)
		return err_wrap(e, "test_spawn");
	LOG_INFO("node", "test child started", "pid=%ld", (long)n->test_child);
	return 0;
}

/* Runs `ip ARGS...` (iproute2) and waits; no shell. */
static int run_ip(const char *const *argv, struct err *e)
{
	struct proc_options opts = {
	        .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
	pid_t pid;
	int status, rv;

	rv = proc_spawn(&opts, &pid, e);
	if (rv != 0)
		return rv;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return err_sys(e, -errno, "waitpid");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, -EIO, "'ip %s %s %s' failed (status %d)",
		               argv[1], argv[2], argv[3], status);
	return 0;
}

/* The bridge guests attach to (vmbr0 by default), created if missing. */
static int ensure_bridge(struct node *n, struct err *e)
{
	const char *name = n->config->bridge;
	int rv;

	if (name == NULL || name[0] == '\0')
		return 0;
	/* Asks the kernel about our network namespace (a /sys mounted for
	 * another namespace would answer for that one). */
	if (if_nametoindex(name) != 0)
		return 0;
	{
		const char *add[] = {"ip",   "link",   "add", name,
		                     "type", "bridge", NULL};
		const char *up[] = {"ip", "link", "set", name, "up", NULL};

		rv = run_ip(add, e);
		if (rv == 0)
			rv = run_ip(up, e);
	}
	if (rv != 0)
		return err_wrap(e, "create bridge %s", name);
	LOG_INFO("node", "bridge created", "bridge=%s", name);
	return 0;
}

int node_start(struct node *n, struct err *e)
{
	const struct node_config *c = n->config;
	int rv;

	rv = pool_create(n->loop, "cpu", (unsigned)c->cpu_threads,
	                 (unsigned)c->cpu_queue, &n->cpu_pool, e);
	if (rv != 0)
		return rv;
	rv = pool_create(n->loop, "storage", (unsigned)c->storage_threads,
	                 (unsigned)c->storage_queue, &n->storage_pool, e);
	if (rv != 0)
		return rv; /* node_stop closes the cpu pool */
	rv = pool_create(n->loop, "transfer", (unsigned)c->transfer_threads,
	                 (unsigned)c->transfer_queue, &n->transfer_pool, e);
	if (rv != 0)
		return rv;
	rv = uv_signal_init(n->loop, &n->sigchld);
	if (rv != 0)
		return err_set(e, rv, "uv_signal_init: %s", uv_strerror(rv));
	n->has_sigchld = true;
	rv = uv_signal_start(&n->sigchld, on_sigchld, SIGCHLD);
	if (rv != 0)
		return err_set(e, rv, "watch SIGCHLD: %s", uv_strerror(rv));
	if (c->test_spawn != NULL) {
		rv = spawn_test_child(n, e);
		if (rv != 0)
			return rv;
	}
	rv = ensure_bridge(n, e);
	if (rv != 0)
		return rv;
	rv = node_rpc_start_local(n, e);
	if (rv != 0)
		return rv;
	rv = node_cluster_load(n, e);
	if (rv != 0)
		return rv;
	set_state(n, NODE_RUNNING);
	LOG_INFO("node", "node started",
	         "node=%s pid=%ld data_dir=%s cpu_threads=%lld "
	         "storage_threads=%lld",
	         c->node_name, (long)getpid(), c->data_dir,
	         (long long)c->cpu_threads, (long long)c->storage_threads);
	return 0;
}

static void closed_one(struct node *n)
{
	CAIRN_ASSERT(n->closing > 0);
	if (--n->closing > 0)
		return;
	set_state(n, NODE_STOPPED);
	if (n->stop_cb != NULL)
		n->stop_cb(n);
}

static void on_pool_closed(struct pool *p)
{
	closed_one(pool_get_data(p));
}

static void on_handle_closed(uv_handle_t *h)
{
	closed_one(h->data);
}

static void on_local_rpc_stopped(void *data)
{
	struct node *n = data;

	n->local_rpc = NULL;
	closed_one(n);
}

static void on_cluster_stopped(struct node *n)
{
	closed_one(n);
}

void node_stop(struct node *n, node_stop_cb cb)
{
	set_state(n, NODE_STOPPING);
	n->stop_cb = cb;
	/* One extra count until every close is issued, so that a close that
	 * finishes at once cannot end the stop early. */
	n->closing = 1;
	if (n->local_rpc != NULL) {
		n->closing++;
		rpc_server_stop(n->local_rpc, on_local_rpc_stopped, n);
	}
	if (n->cluster != NULL) {
		n->closing++;
		node_cluster_stop(n, on_cluster_stopped);
	}
	if (n->cpu_pool != NULL) {
		n->closing++;
		pool_set_data(n->cpu_pool, n);
		pool_close(n->cpu_pool, on_pool_closed);
		n->cpu_pool = NULL;
	}
	if (n->storage_pool != NULL) {
		n->closing++;
		pool_set_data(n->storage_pool, n);
		pool_close(n->storage_pool, on_pool_closed);
		n->storage_pool = NULL;
	}
	if (n->transfer_pool != NULL) {
		n->closing++;
		pool_set_data(n->transfer_pool, n);
		pool_close(n->transfer_pool, on_pool_closed);
		n->transfer_pool = NULL;
	}
	if (n->has_sigchld) {
		n->closing++;
		n->sigchld.data = n;
		uv_close((uv_handle_t *)&n->sigchld, on_handle_closed);
		n->has_sigchld = false;
	}
	if (n->test_child > 0)
		LOG_INFO("node", "leaving test child running", "pid=%ld",
		         (long)n->test_child);
	closed_one(n);
}

void node_destroy(struct node *n)
{
	if (n == NULL)
		return;
	CAIRN_ASSERT(n->state == NODE_STOPPED || n->state == NODE_CREATED);
	if (n->pid_path[0] != '\0')
		unlink(n->pid_path);
	/* Released last: another agent may start the moment it is gone. */
	if (n->lock_fd >= 0)
		close(n->lock_fd);
	mem_free(n);
}

struct pool *node_pool(struct node *n, const char *name)
{
	if (strcmp(name, "cpu") == 0)
		return n->cpu_pool;
	if (strcmp(name, "storage") == 0)
		return n->storage_pool;
	if (strcmp(name, "transfer") == 0)
		return n->transfer_pool;
	return NULL;
}
