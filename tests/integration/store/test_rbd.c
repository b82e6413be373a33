/* Integration tests of store/rbd against a real Ceph cluster (1 monitor,
 * 1 manager, 3 memstore OSDs) that deploy/ceph starts in a temporary
 * directory on a free port and stops whatever happens. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "store/rbd.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define MIB               (1024ull * 1024)
#define UP_TIMEOUT_S      "90"
#define MON_DOWN_BOUND_MS 10000 /* the stated bound: no margin added */
#define OSD_KILL_BOUND_MS 5000  /* the worst single write while an OSD dies */
#define BLOCKLIST_WAIT_MS 10000
#define IO_OSD_TIMEOUT    "30" /* the test's own client: fail, never hang */
#define SCRIPT_ARGS_MAX   12

/* ------------------------------------------------------------------------
 * The fixture: one cluster for the whole group. Tests that stop a daemon
 * start it again and wait for HEALTH_OK before they end, so tests do not
 * depend on each other's order; each uses its own vmids. */

static struct {
	char base[64];     /* mkdtemp; the cluster dir is base/c */
	char dir[80];      /* deploy/ceph --dir */
	char script[4096]; /* deploy/ceph */
	char log[96];      /* what deploy/ceph printed, appended */
	char conf[96];     /* dir/ceph.conf */
	char keyring[128]; /* dir/ceph.client.admin.keyring */
	char monhost[96];  /* [v2:127.0.0.1:P,v1:127.0.0.1:P+1] */
	unsigned port;     /* the monitor's msgr2 port */
	/* Prepared at setup for the signal handler, which may not format. */
	char *down_argv[6];
	char *rm_argv[4];
	volatile sig_atomic_t is_up; /* deploy/ceph up has run */
	bool is_skipped;             /* Ceph is not installed */
	struct store_rbd *admin;     /* a connection for every test */
} fx;

static uint64_t now_ms(void)
{
	return clock_mono_ms(clock_real());
}

#define assert_ok(call, e)                                           \
	do {                                                         \
		int rv_ = (call);                                    \
		if (rv_ != 0)                                        \
			fail_msg("%s: %d %s", #call, rv_, (e)->msg); \
	} while (0)

#define assert_fails_with(code, call, e)                                    \
	do {                                                                \
		int rv_ = (call);                                           \
		if (rv_ != (code))                                          \
			fail_msg("%s: %d (want %d) %s", #call, rv_, (code), \
			         (e)->msg);                                 \
	} while (0)

/* ------------------------------------------------------------------------
 * deploy/ceph, and never leaving its daemons behind: the group teardown
 * runs `down`, and so do an atexit handler (a test that exits) and a
 * handler for the signals that end us otherwise (an abort, the harness's
 * TERM). Only a SIGKILL of this process leaves the cluster running; then
 * `deploy/ceph down --dir` with the directory from the log removes it. */

static void show_log_tail(void)
{
	struct buf text;
	struct err e;
	const char *p;

	buf_init(&text, 1 << 20);
	if (file_read_all(fx.log, 1 << 20, &text, &e) == 0 && text.len > 0) {
		p = text.len > 1500 ? text.data + text.len - 1500 : text.data;
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');
			int n = nl != NULL ? (int)(nl - p) : (int)strlen(p);

			printf("#   %.*s\n", n, p);
			if (nl == NULL)
				break;
			p = nl + 1;
		}
	}
	buf_free(&text);
}

/* Starts deploy/ceph CMD [ARG] --dir DIR with its output appended to the
 * log; *pid is the caller's to reap. */
static int script_spawn(const char *cmd, const char *arg, pid_t *pid)
{
	const char *argv[SCRIPT_ARGS_MAX];
	struct proc_options o = {.argv = argv, .stdin_fd = -1};
	struct err e;
	unsigned i = 0;
	int fd, rv;

	argv[i++] = "bash";
	argv[i++] = fx.script;
	argv[i++] = cmd;
	if (arg != NULL)
		argv[i++] = arg;
	argv[i++] = "--dir";
	argv[i++] = fx.dir;
	argv[i++] = "--timeout";
	argv[i++] = UP_TIMEOUT_S;
	argv[i] = NULL;
	fd = open(fx.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	o.stdout_fd = fd;
	o.stderr_fd = fd;
	rv = proc_spawn(&o, pid, &e);
	close(fd);
	if (rv != 0)
		printf("# spawn deploy/ceph: %s\n", e.msg);
	return rv;
}

static int script_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("# deploy/ceph failed (status 0x%x); its output:\n",
		       status);
		show_log_tail();
		return -EIO;
	}
	return 0;
}

/* deploy/ceph CMD [ARG]: 0 when it exits 0. */
static int script(const char *cmd, const char *arg)
{
	pid_t pid;
	int rv = script_spawn(cmd, arg, &pid);

	return rv != 0 ? rv : script_wait(pid);
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

static void cleanup_at_exit(void)
{
	if (fx.admin != NULL) {
		store_rbd_close(fx.admin);
		fx.admin = NULL;
	}
	if (fx.is_up) {
		script("down", NULL);
		fx.is_up = 0;
	}
	if (fx.base[0] != '\0') {
		nftw(fx.base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		fx.base[0] = '\0';
	}
}

static void cleanup_on_signal(int sig)
{
	char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	pid_t pid;

	/* Async-signal-safe calls only: fork, execve, waitpid. */
	if (fx.is_up) {
		pid = fork();
		if (pid == 0) {
			execve("/bin/bash", fx.down_argv, envp);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		fx.is_up = 0;
	}
	if (fx.base[0] != '\0') {
		pid = fork();
		if (pid == 0) {
			execve("/bin/rm", fx.rm_argv, envp);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_cleanup(void)
{
	static const int signals[] = {SIGABRT, SIGTERM, SIGINT, SIGHUP,
	                              SIGQUIT, SIGSEGV, SIGBUS};
	struct sigaction sa;
	size_t i;

	atexit(cleanup_at_exit);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = cleanup_on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < CAIRN_ARRAY_SIZE(signals); i++)
		sigaction(signals[i], &sa, NULL);
}

/* The port deploy/ceph picked, from its state file. */
static int read_port(void)
{
	char path[128];
	struct buf text;
	struct err e;
	const char *p;
	int rv;

	snprintf(path, sizeof path, "%s/cluster.state", fx.dir);
	buf_init(&text, 4096);
	rv = file_read_all(path, 4096, &text, &e);
	if (rv == 0) {
		p = text.data != NULL ? strstr(text.data, "mon_port=") : NULL;
		if (p == NULL || sscanf(p, "mon_port=%u", &fx.port) != 1)
			rv = -EINVAL;
	} else {
		printf("# %s\n", e.msg);
	}
	buf_free(&text);
	return rv;
}

/* ------------------------------------------------------------------------
 * Connections. */

static void config_for(struct store_rbd_config *c, unsigned timeout_s)
{
	memset(c, 0, sizeof *c);
	c->monhost = fx.monhost;
	c->keyring = fx.keyring;
	c->pool = "rbd";
	c->timeout_s = timeout_s;
}

static int connect_store(unsigned timeout_s, struct store_rbd **out,
                         struct err *e)
{
	struct store_rbd_config c;

	config_for(&c, timeout_s);
	return store_rbd_connect(&c, out, e);
}

/* The test's own client, as a guest's QEMU would be: reads ceph.conf,
 * writes through librbd. */
struct io_client {
	rados_t cluster;
	rados_ioctx_t io;
};

static int io_connect(struct io_client *c)
{
	int rv;

	rv = rados_create2(&c->cluster, "ceph", "client.admin", 0);
	if (rv < 0)
		return rv;
	rv = rados_conf_read_file(c->cluster, fx.conf);
	if (rv == 0)
		rv = rados_conf_set(c->cluster, "rados_osd_op_timeout",
		                    IO_OSD_TIMEOUT);
	if (rv == 0)
		rv = rados_conf_set(c->cluster, "client_mount_timeout", "10");
	if (rv == 0)
		rv = rados_connect(c->cluster);
	if (rv == 0)
		rv = rados_ioctx_create(c->cluster, "rbd", &c->io);
	if (rv < 0) {
		printf("# io client: %s\n", strerror(-rv));
		rados_shutdown(c->cluster);
	}
	return rv;
}

static void io_close(struct io_client *c)
{
	rados_ioctx_destroy(c->io);
	rados_shutdown(c->cluster);
}

static void fill(char *buf, size_t len, char seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(seed + (char)(i % 251));
}

/* Writes len bytes of pattern seed at off through a fresh open. */
static void write_pattern(struct io_client *c, const char *image, uint64_t off,
                          size_t len, char seed)
{
	rbd_image_t img;
	char *buf = malloc(len);
	ssize_t n;

	assert_non_null(buf);
	fill(buf, len, seed);
	assert_int_equal(rbd_open(c->io, image, &img, NULL), 0);
	n = rbd_write(img, off, len, buf);
	assert_int_equal(n, (ssize_t)len);
	assert_int_equal(rbd_flush(img), 0);
	assert_int_equal(rbd_close(img), 0);
	free(buf);
}

static bool has_pattern(struct io_client *c, const char *image, uint64_t off,
                        size_t len, char seed)
{
	rbd_image_t img;
	char *want = malloc(len), *got = malloc(len);
	bool same;

	assert_non_null(want);
	assert_non_null(got);
	fill(want, len, seed);
	assert_int_equal(rbd_open_read_only(c->io, image, &img, NULL), 0);
	assert_int_equal(rbd_read(img, off, len, got), (ssize_t)len);
	rbd_close(img);
	same = memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return same;
}

/* ------------------------------------------------------------------------
 * Group setup. */

static int group_setup(void **state)
{
	const char *srcdir = getenv("CAIRN_SRCDIR");
	struct err e;
	uint64_t t0;
	int rv;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_WARN);
	if (system("command -v ceph-mon ceph-osd ceph-mgr >/dev/null") != 0) {
		printf("# Ceph is not installed (deploy/install-deps)\n");
		fx.is_skipped = true;
		return 0;
	}
	snprintf(fx.script, sizeof fx.script, "%s/deploy/ceph",
	         srcdir != NULL && srcdir[0] != '\0' ? srcdir : "/work/main");
	if (access(fx.script, R_OK) != 0) {
		printf("# %s: %s\n", fx.script, strerror(errno));
		return -1;
	}
	snprintf(fx.base, sizeof fx.base, "/tmp/cairn-rbd.XXXXXX");
	if (mkdtemp(fx.base) == NULL) {
		printf("# mkdtemp: %s\n", strerror(errno));
		fx.base[0] = '\0';
		return -1;
	}
	snprintf(fx.dir, sizeof fx.dir, "%s/c", fx.base);
	snprintf(fx.log, sizeof fx.log, "%s/deploy-ceph.log", fx.base);
	snprintf(fx.conf, sizeof fx.conf, "%s/ceph.conf", fx.dir);
	snprintf(fx.keyring, sizeof fx.keyring, "%s/ceph.client.admin.keyring",
	         fx.dir);
	fx.down_argv[0] = "bash";
	fx.down_argv[1] = fx.script;
	fx.down_argv[2] = "down";
	fx.down_argv[3] = "--dir";
	fx.down_argv[4] = fx.dir;
	fx.down_argv[5] = NULL;
	fx.rm_argv[0] = "rm";
	fx.rm_argv[1] = "-rf";
	fx.rm_argv[2] = fx.base;
	fx.rm_argv[3] = NULL;
	install_cleanup();

	t0 = now_ms();
	fx.is_up = 1; /* from here on, down must run */
	rv = script("up", NULL);
	if (rv != 0)
		return -1;
	printf("# deploy/ceph up: %.2f s to HEALTH_OK\n",
	       (double)(now_ms() - t0) / 1000);
	if (read_port() != 0) {
		printf("# no monitor port in %s/cluster.state\n", fx.dir);
		return -1;
	}
	snprintf(fx.monhost, sizeof fx.monhost,
	         "[v2:127.0.0.1:%u,v1:127.0.0.1:%u]", fx.port, fx.port + 1);
	rv = connect_store(0, &fx.admin, &e);
	if (rv != 0) {
		printf("# connect: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	uint64_t t0 = now_ms();

	(void)state;
	if (fx.admin != NULL) {
		store_rbd_close(fx.admin);
		fx.admin = NULL;
	}
	if (fx.is_up) {
		script("down", NULL);
		fx.is_up = 0;
		printf("# deploy/ceph down: %.2f s\n",
		       (double)(now_ms() - t0) / 1000);
	}
	cleanup_at_exit();
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	if (fx.is_skipped)
		skip();
	return 0;
}

/* ------------------------------------------------------------------------
 * Images. */

struct listing {
	size_t count;
	char names[16][STORE_RBD_NAME_MAX];
	uint64_t sizes[16];
};

static int collect(void *data, const struct store_rbd_image *image)
{
	struct listing *l = data;

	if (l->count < 16) {
		snprintf(l->names[l->count], STORE_RBD_NAME_MAX, "%s",
		         image->name);
		l->sizes[l->count] = image->size;
	}
	l->count++;
	return 0;
}

static uint64_t size_in(const struct listing *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->count && i < 16; i++)
		if (strcmp(l->names[i], name) == 0)
			return l->sizes[i];
	return 0;
}

static void test_alloc_picks_free_names_and_lists_them_with_sizes(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	struct store_rbd_image info;
	struct listing l;
	struct err e;

	(void)state;
	assert_ok(store_rbd_alloc(fx.admin, 100, 64 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_string_equal(name, "vm-100-disk-0");
	assert_ok(store_rbd_alloc(fx.admin, 100, 32 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_string_equal(name, "vm-100-disk-1");
	assert_ok(store_rbd_alloc(fx.admin, 100, 16 * MIB, "vm-100-disk-5",
	                          name, sizeof name, &e),
	          &e);
	assert_string_equal(name, "vm-100-disk-5");

	assert_ok(store_rbd_info(fx.admin, "vm-100-disk-0", &info, &e), &e);
	assert_int_equal(info.size, 64 * MIB);
	assert_string_equal(info.parent, "");

	memset(&l, 0, sizeof l);
	assert_ok(store_rbd_list(fx.admin, 100, collect, &l, &e), &e);
	assert_int_equal(l.count, 3);
	assert_int_equal(size_in(&l, "vm-100-disk-0"), 64 * MIB);
	assert_int_equal(size_in(&l, "vm-100-disk-1"), 32 * MIB);
	assert_int_equal(size_in(&l, "vm-100-disk-5"), 16 * MIB);
	memset(&l, 0, sizeof l);
	assert_ok(store_rbd_list(fx.admin, 10, collect, &l, &e), &e);
	assert_int_equal(l.count, 0); /* vm-100-... is not vm-10-... */

	assert_ok(store_rbd_free(fx.admin, "vm-100-disk-0", &e), &e);
	assert_ok(store_rbd_free(fx.admin, "vm-100-disk-1", &e), &e);
	assert_ok(store_rbd_free(fx.admin, "vm-100-disk-5", &e), &e);
	assert_fails_with(-ENOENT,
	                  store_rbd_info(fx.admin, "vm-100-disk-0", &info, &e),
	                  &e);
	printf("# gone: %s\n", e.msg);
}

static void test_alloc_refuses_bad_input_and_changes_nothing(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	struct listing l;
	struct err e;

	(void)state;
	assert_ok(store_rbd_alloc(fx.admin, 101, MIB, NULL, name, sizeof name,
	                          &e),
	          &e);
	assert_fails_with(-EEXIST,
	                  store_rbd_alloc(fx.admin, 101, MIB, "vm-101-disk-0",
	                                  name, sizeof name, &e),
	                  &e);
	assert_fails_with(
	        -EINVAL,
	        store_rbd_alloc(fx.admin, 101, 0, NULL, name, sizeof name, &e),
	        &e);
	assert_fails_with(-EINVAL,
	                  store_rbd_alloc(fx.admin, 101, MIB, "vm-102-disk-0",
	                                  name, sizeof name, &e),
	                  &e);
	printf("# another guest's name: %s\n", e.msg);
	assert_fails_with(-EINVAL,
	                  store_rbd_alloc(fx.admin, 101, MIB, "../vm-101-x",
	                                  name, sizeof name, &e),
	                  &e);
	assert_fails_with(-EINVAL,
	                  store_rbd_alloc(fx.admin, 101, MIB, "vm-101-a@b",
	                                  name, sizeof name, &e),
	                  &e);
	assert_fails_with(
	        -EINVAL,
	        store_rbd_alloc(fx.admin, 0, MIB, NULL, name, sizeof name, &e),
	        &e);
	memset(&l, 0, sizeof l);
	assert_ok(store_rbd_list(fx.admin, 101, collect, &l, &e), &e);
	assert_int_equal(l.count, 1);
	assert_ok(store_rbd_free(fx.admin, "vm-101-disk-0", &e), &e);
	assert_fails_with(-ENOENT,
	                  store_rbd_free(fx.admin, "vm-101-disk-0", &e), &e);
}

static void test_grow_works_and_shrink_is_refused(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	struct store_rbd_image info;
	struct err e;

	(void)state;
	assert_ok(store_rbd_alloc(fx.admin, 110, 64 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_ok(store_rbd_resize(fx.admin, name, 128 * MIB, &e), &e);
	assert_ok(store_rbd_info(fx.admin, name, &info, &e), &e);
	assert_int_equal(info.size, 128 * MIB);
	assert_ok(store_rbd_resize(fx.admin, name, 128 * MIB, &e), &e);
	assert_fails_with(-EINVAL,
	                  store_rbd_resize(fx.admin, name, 64 * MIB, &e), &e);
	printf("# shrink: %s\n", e.msg);
	assert_ok(store_rbd_info(fx.admin, name, &info, &e), &e);
	assert_int_equal(info.size, 128 * MIB);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
}

/* ------------------------------------------------------------------------
 * Snapshots. */

struct snaps {
	size_t count;
	char names[8][STORE_RBD_NAME_MAX];
	bool is_protected[8];
};

static int collect_snap(void *data, const struct store_rbd_snap *snap)
{
	struct snaps *s = data;

	if (s->count < 8) {
		snprintf(s->names[s->count], STORE_RBD_NAME_MAX, "%s",
		         snap->name);
		s->is_protected[s->count] = snap->is_protected;
	}
	s->count++;
	return 0;
}

static void test_snapshot_rollback_restores_the_data(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	struct io_client c;
	struct snaps s;
	struct err e;

	(void)state;
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 120, 16 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	write_pattern(&c, name, 4 * MIB, 64 * 1024, 'A');
	assert_ok(store_rbd_snap_create(fx.admin, name, "before", &e), &e);
	write_pattern(&c, name, 4 * MIB, 64 * 1024, 'B');
	assert_true(has_pattern(&c, name, 4 * MIB, 64 * 1024, 'B'));

	memset(&s, 0, sizeof s);
	assert_ok(store_rbd_snap_list(fx.admin, name, collect_snap, &s, &e),
	          &e);
	assert_int_equal(s.count, 1);
	assert_string_equal(s.names[0], "before");
	assert_false(s.is_protected[0]);

	assert_ok(store_rbd_snap_rollback(fx.admin, name, "before", &e), &e);
	assert_true(has_pattern(&c, name, 4 * MIB, 64 * 1024, 'A'));

	assert_fails_with(
	        -EINVAL,
	        store_rbd_snap_create(fx.admin, name, STORE_RBD_BASE_SNAP, &e),
	        &e);
	assert_fails_with(-ENOENT,
	                  store_rbd_snap_rollback(fx.admin, name, "nope", &e),
	                  &e);
	assert_ok(store_rbd_snap_delete(fx.admin, name, "before", &e), &e);
	memset(&s, 0, sizeof s);
	assert_ok(store_rbd_snap_list(fx.admin, name, collect_snap, &s, &e),
	          &e);
	assert_int_equal(s.count, 0);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
	io_close(&c);
}

static void test_free_is_refused_while_snapshots_exist(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	struct err e;

	(void)state;
	assert_ok(store_rbd_alloc(fx.admin, 130, 8 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_ok(store_rbd_snap_create(fx.admin, name, "s1", &e), &e);
	assert_ok(store_rbd_snap_create(fx.admin, name, "s2", &e), &e);
	assert_fails_with(-EBUSY, store_rbd_free(fx.admin, name, &e), &e);
	printf("# %s\n", e.msg);
	assert_non_null(strstr(e.msg, "s1, s2"));
	assert_ok(store_rbd_snap_delete(fx.admin, name, "s1", &e), &e);
	assert_ok(store_rbd_snap_delete(fx.admin, name, "s2", &e), &e);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
}

/* ------------------------------------------------------------------------
 * Templates and clones. */

static void test_template_linked_and_full_clones(void **state)
{
	char name[STORE_RBD_NAME_MAX], base[STORE_RBD_NAME_MAX];
	char linked[STORE_RBD_NAME_MAX], full[STORE_RBD_NAME_MAX];
	struct store_rbd_image info;
	struct io_client c;
	struct snaps s;
	struct err e;

	(void)state;
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 200, 16 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	write_pattern(&c, name, MIB, 128 * 1024, 'T');
	assert_fails_with(-EINVAL,
	                  store_rbd_clone_linked(fx.admin, name, 201, NULL,
	                                         linked, sizeof linked, &e),
	                  &e);
	printf("# not a template: %s\n", e.msg);

	assert_ok(store_rbd_template(fx.admin, name, base, sizeof base, &e),
	          &e);
	assert_string_equal(base, "base-200-disk-0");
	assert_fails_with(-ENOENT, store_rbd_info(fx.admin, name, &info, &e),
	                  &e);
	/* again on the base: nothing to do, still a template */
	assert_ok(store_rbd_template(fx.admin, base, base, sizeof base, &e),
	          &e);
	memset(&s, 0, sizeof s);
	assert_ok(store_rbd_snap_list(fx.admin, base, collect_snap, &s, &e),
	          &e);
	assert_int_equal(s.count, 1);
	assert_string_equal(s.names[0], STORE_RBD_BASE_SNAP);
	assert_true(s.is_protected[0]);

	assert_ok(store_rbd_clone_linked(fx.admin, base, 201, NULL, linked,
	                                 sizeof linked, &e),
	          &e);
	assert_string_equal(linked, "vm-201-disk-0");
	assert_ok(store_rbd_info(fx.admin, linked, &info, &e), &e);
	assert_string_equal(info.parent, "base-200-disk-0@__base__");
	assert_int_equal(info.size, 16 * MIB);
	assert_true(has_pattern(&c, linked, MIB, 128 * 1024, 'T'));
	/* a write to the clone leaves the template alone */
	write_pattern(&c, linked, MIB, 4096, 'X');
	assert_true(has_pattern(&c, base, MIB, 128 * 1024, 'T'));

	assert_ok(store_rbd_clone_full(fx.admin, base, NULL, 202, NULL, full,
	                               sizeof full, &e),
	          &e);
	assert_string_equal(full, "vm-202-disk-0");
	assert_ok(store_rbd_info(fx.admin, full, &info, &e), &e);
	assert_string_equal(info.parent, "");
	assert_true(has_pattern(&c, full, MIB, 128 * 1024, 'T'));

	assert_fails_with(-EBUSY, store_rbd_free(fx.admin, base, &e), &e);
	printf("# %s\n", e.msg);
	assert_non_null(strstr(e.msg, "vm-201-disk-0"));
	assert_ok(store_rbd_free(fx.admin, linked, &e), &e);
	assert_ok(store_rbd_free(fx.admin, full, &e), &e);
	assert_ok(store_rbd_free(fx.admin, base, &e), &e);
	io_close(&c);
}

/* ------------------------------------------------------------------------
 * Space and attachment. */

static void test_status_reports_pool_space(void **state)
{
	uint64_t total = 0, used = 0, avail = 0;
	struct err e;

	(void)state;
	assert_ok(store_rbd_status(fx.admin, &total, &used, &avail, &e), &e);
	printf("# pool rbd: total %llu used %llu avail %llu bytes\n",
	       (unsigned long long)total, (unsigned long long)used,
	       (unsigned long long)avail);
	assert_true(avail > 0);
	assert_int_equal(total, used + avail);
}

static void test_attach_spec_keeps_the_key_in_a_0600_file(void **state)
{
	char name[STORE_RBD_NAME_MAX], key_file[128], cmd[2048];
	struct store_rbd_attach a;
	struct stat st;
	struct buf key;
	struct err e;
	int fd;

	(void)state;
	assert_ok(store_rbd_alloc(fx.admin, 140, 32 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	snprintf(key_file, sizeof key_file, "%s/vm-140.key", fx.base);
	/* an existing, readable file is narrowed to 0600 */
	fd = open(key_file, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old-content-old-content", 23), 23);
	close(fd);
	assert_ok(store_rbd_attach_spec(fx.admin, name, key_file, &a, &e), &e);
	assert_int_equal(stat(key_file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	buf_init(&key, 4096);
	assert_ok(file_read_all(key_file, 4096, &key, &e), &e);
	assert_true(key.len > 20);
	assert_null(strchr(key.data, '\n'));
	assert_string_equal(a.pool, "rbd");
	assert_string_equal(a.image, name);
	assert_string_equal(a.id, "admin");
	assert_string_equal(a.monhost, fx.monhost);
	assert_int_equal(a.server_count, 1);
	assert_string_equal(a.servers[0].host, "127.0.0.1");
	assert_int_equal(a.servers[0].port, fx.port + 1); /* msgr1 */

	/* QEMU opens the image from exactly these pieces. */
	if (system("qemu-img --help 2>/dev/null | grep -qw rbd") == 0) {
		snprintf(cmd, sizeof cmd,
		         "qemu-img info --object secret,id=k,file=%s,"
		         "format=base64 --image-opts driver=rbd,pool=%s,"
		         "image=%s,user=%s,server.0.host=%s,server.0.port=%u,"
		         "key-secret=k >%s/qemu-img.out 2>&1",
		         key_file, a.pool, a.image, a.id, a.servers[0].host,
		         a.servers[0].port, fx.base);
		if (system(cmd) != 0) {
			snprintf(cmd, sizeof cmd,
			         "sed 's/^/# /' %s/qemu-img.out", fx.base);
			(void)!system(cmd);
			fail_msg(
			        "qemu-img info through the attach spec failed");
		}
		snprintf(cmd, sizeof cmd,
		         "grep -q 'virtual size: 32 MiB' %s/qemu-img.out",
		         fx.base);
		assert_int_equal(system(cmd), 0);
		printf("# qemu-img opened rbd:%s/%s with the key file\n",
		       a.pool, a.image);
		snprintf(cmd, sizeof cmd, "%s/qemu-img.out", fx.base);
		unlink(cmd);
	} else {
		printf("# qemu-img without rbd: QEMU part not checked\n");
	}
	unlink(key_file);
	buf_free(&key);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
}

static void test_config_errors_name_the_field(void **state)
{
	struct store_rbd_config c;
	struct store_rbd *r = NULL;
	struct err e;

	(void)state;
	config_for(&c, 0);
	c.pool = "no-such-pool";
	assert_fails_with(-ENOENT, store_rbd_connect(&c, &r, &e), &e);
	printf("# %s\n", e.msg);
	config_for(&c, 0);
	c.keyring = NULL;
	c.key = "AQBHx+FmAAAAABAAbm90LXRoZS1yaWdodC1rZXk=";
	assert_true(store_rbd_connect(&c, &r, &e) < 0);
	printf("# wrong key: %s\n", e.msg);
	config_for(&c, 0);
	c.key = "AQB+c2Vj"; /* and a keyring: one of the two */
	assert_fails_with(-EINVAL, store_rbd_connect(&c, &r, &e), &e);
	config_for(&c, 0);
	c.username = "nobody";
	assert_fails_with(-ENOENT, store_rbd_connect(&c, &r, &e), &e);
	printf("# %s\n", e.msg);
	config_for(&c, 0);
	c.monhost = NULL;
	assert_fails_with(-EINVAL, store_rbd_connect(&c, &r, &e), &e);
	assert_null(r);
}

/* Needs no Ceph: the checks the API runs before it stores a setting. */
static void test_option_check_follows_connect_rules(void **state)
{
	char name[STORE_RBD_NAME_MAX + 1], user[65];
	char monhost[STORE_RBD_MONHOST_MAX + 1];
	struct err e;

	(void)state;
	memset(name, 'a', sizeof name - 1);
	name[STORE_RBD_NAME_MAX - 1] = '\0'; /* the longest allowed */
	assert_int_equal(store_rbd_option_check("pool", name, &e), 0);
	assert_int_equal(store_rbd_option_check("namespace", name, &e), 0);
	name[STORE_RBD_NAME_MAX - 1] = 'a';
	name[STORE_RBD_NAME_MAX] = '\0'; /* one more */
	assert_int_equal(store_rbd_option_check("pool", name, &e), -EINVAL);
	assert_int_equal(store_rbd_option_check("namespace", name, &e),
	                 -EINVAL);
	assert_int_equal(store_rbd_option_check("namespace", "", &e), 0);
	assert_int_equal(store_rbd_option_check("pool", "", &e), -EINVAL);
	assert_int_equal(store_rbd_option_check("pool", "a/b", &e), -EINVAL);
	assert_int_equal(store_rbd_option_check("pool", "-x", &e), -EINVAL);
	memset(user, 'u', sizeof user - 1);
	user[63] = '\0';
	assert_int_equal(store_rbd_option_check("username", user, &e), 0);
	user[63] = 'u';
	user[64] = '\0';
	assert_int_equal(store_rbd_option_check("username", user, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "1-63"));
	memset(monhost, '1', sizeof monhost - 1);
	monhost[STORE_RBD_MONHOST_MAX - 1] = '\0';
	assert_int_equal(store_rbd_option_check("monhost", monhost, &e), 0);
	monhost[STORE_RBD_MONHOST_MAX - 1] = '1';
	monhost[STORE_RBD_MONHOST_MAX] = '\0';
	assert_int_equal(store_rbd_option_check("monhost", monhost, &e),
	                 -EINVAL);
	assert_int_equal(store_rbd_option_check("monhost", "a\tb", &e),
	                 -EINVAL);
	assert_int_equal(store_rbd_option_check("monhost", "", &e), -EINVAL);
	assert_int_equal(store_rbd_option_check("keyring", "x", &e), -EINVAL);
}

/* ------------------------------------------------------------------------
 * Fencing. */

static void test_lock_owner_is_the_client_that_writes(void **state)
{
	char name[STORE_RBD_NAME_MAX], buf[4096];
	struct store_rbd_locker who[2];
	struct io_client c;
	rbd_image_t img;
	char *addrs = NULL;
	size_t count = 99;
	struct err e;
	char client[64];

	(void)state;
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 150, 8 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_int_equal(rbd_open(c.io, name, &img, NULL), 0);
	assert_ok(store_rbd_lock_owners(fx.admin, name, who, 2, &count, &e),
	          &e);
	assert_int_equal(count, 0); /* opened, not written */

	fill(buf, sizeof buf, 'L');
	assert_int_equal(rbd_write(img, 0, sizeof buf, buf), sizeof buf);
	assert_ok(store_rbd_lock_owners(fx.admin, name, who, 2, &count, &e),
	          &e);
	assert_int_equal(count, 1);
	snprintf(client, sizeof client, "client.%llu",
	         (unsigned long long)rados_get_instance_id(c.cluster));
	assert_string_equal(who[0].client, client);
	assert_true(who[0].is_exclusive);
	assert_int_equal(rados_getaddrs(c.cluster, &addrs), 0);
	printf("# owner %s cookie '%s' at %s (the client says %s)\n",
	       who[0].client, who[0].cookie, who[0].addr, addrs);
	assert_non_null(strstr(addrs, who[0].addr));
	rados_buffer_free(addrs);

	/* a guest's open disk is neither removed nor rolled back */
	assert_fails_with(-EBUSY, store_rbd_free(fx.admin, name, &e), &e);
	printf("# %s\n", e.msg);
	assert_ok(store_rbd_snap_create(fx.admin, name, "s", &e), &e);
	assert_fails_with(-EBUSY,
	                  store_rbd_snap_rollback(fx.admin, name, "s", &e), &e);
	printf("# %s\n", e.msg);

	assert_int_equal(rbd_close(img), 0);
	assert_ok(store_rbd_lock_owners(fx.admin, name, who, 2, &count, &e),
	          &e);
	assert_int_equal(count, 0);
	assert_ok(store_rbd_snap_delete(fx.admin, name, "s", &e), &e);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
	io_close(&c);
}

/* Writes 4 KiB at off until one fails or bound_ms passes; returns the
 * first failure (0 when none) and how long it took to come. */
static ssize_t write_until_failure(rbd_image_t img, unsigned bound_ms,
                                   uint64_t *took_ms)
{
	char buf[4096];
	uint64_t t0 = now_ms();
	ssize_t n;

	fill(buf, sizeof buf, 'F');
	do {
		n = rbd_write(img, 0, sizeof buf, buf);
		if (n < 0)
			break;
		n = rbd_flush(img);
		if (n < 0)
			break;
		uv_sleep(20);
	} while (now_ms() - t0 < bound_ms);
	*took_ms = now_ms() - t0;
	return n < 0 ? n : 0;
}

static void test_blocklisted_client_writes_fail_until_removed(void **state)
{
	char name[STORE_RBD_NAME_MAX], buf[4096], addr[STORE_RBD_ADDR_MAX];
	struct io_client c;
	rbd_image_t img;
	char *addrs = NULL;
	uint64_t took, t0;
	ssize_t n;
	struct err e;
	int rv;

	(void)state;
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 160, 8 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_int_equal(rbd_open(c.io, name, &img, NULL), 0);
	fill(buf, sizeof buf, 'b');
	assert_int_equal(rbd_write(img, 0, sizeof buf, buf), sizeof buf);

	assert_int_equal(rados_getaddrs(c.cluster, &addrs), 0);
	snprintf(addr, sizeof addr, "%s", addrs);
	rados_buffer_free(addrs);
	assert_ok(store_rbd_blocklist_add(fx.admin, addr, 600, &e), &e);
	n = write_until_failure(img, BLOCKLIST_WAIT_MS, &took);
	printf("# blocklisted %s: write failed after %llu ms with %s\n", addr,
	       (unsigned long long)took, strerror((int)-n));
	assert_true(n < 0);

	assert_ok(store_rbd_blocklist_rm(fx.admin, addr, &e), &e);
	t0 = now_ms();
	do {
		n = rbd_write(img, 0, sizeof buf, buf);
	} while (n < 0 && now_ms() - t0 < 3000);
	printf("# after removal, the open image: %s\n",
	       n < 0 ? strerror((int)-n) : "writes");
	rbd_close(img);
	rv = rbd_open(c.io, name, &img, NULL);
	n = rv < 0 ? rv : rbd_write(img, 0, sizeof buf, buf);
	printf("# after removal, the image reopened by the same client: "
	       "%s\n",
	       n < 0 ? strerror((int)-n) : "writes");
	if (rv == 0)
		rbd_close(img);
	io_close(&c);
	/* A new client of the same host: what a fenced node's restarted
	 * guest would be. */
	assert_int_equal(io_connect(&c), 0);
	assert_int_equal(rbd_open(c.io, name, &img, NULL), 0);
	assert_int_equal(rbd_write(img, 0, sizeof buf, buf), sizeof buf);
	assert_int_equal(rbd_flush(img), 0);
	rbd_close(img);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
	io_close(&c);
}

static void test_blocklisted_connection_fails_until_removed(void **state)
{
	char addr[STORE_RBD_ADDR_MAX], name[STORE_RBD_NAME_MAX];
	struct store_rbd *node = NULL;
	struct store_rbd_image info;
	uint64_t t0;
	struct err e;
	int rv;

	(void)state;
	assert_ok(connect_store(3, &node, &e), &e);
	assert_ok(store_rbd_client_addr(node, addr, sizeof addr, &e), &e);
	printf("# this connection's address: %s\n", addr);
	assert_ok(store_rbd_alloc(node, 170, MIB, NULL, name, sizeof name, &e),
	          &e);

	assert_ok(store_rbd_blocklist_add(fx.admin, addr, 0, &e), &e);
	t0 = now_ms();
	do {
		rv = store_rbd_info(node, name, &info, &e);
	} while (rv == 0 && now_ms() - t0 < BLOCKLIST_WAIT_MS);
	printf("# blocklisted connection: %s (after %llu ms)\n", e.msg,
	       (unsigned long long)(now_ms() - t0));
	assert_true(rv < 0);

	assert_ok(store_rbd_blocklist_rm(fx.admin, addr, &e), &e);
	assert_ok(store_rbd_blocklist_rm(fx.admin, addr, &e), &e); /* again */
	t0 = now_ms();
	do {
		rv = store_rbd_info(node, name, &info, &e);
	} while (rv != 0 && now_ms() - t0 < BLOCKLIST_WAIT_MS);
	printf("# after removal: %s (after %llu ms)\n",
	       rv == 0 ? "works" : e.msg, (unsigned long long)(now_ms() - t0));
	assert_ok(rv, &e);
	assert_fails_with(
	        -EINVAL,
	        store_rbd_blocklist_add(fx.admin, "1.2.3.4; rm", 0, &e), &e);
	store_rbd_close(node);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
}

/* ------------------------------------------------------------------------
 * Failures of the cluster. */

static void test_writes_go_on_while_an_osd_is_killed(void **state)
{
	char name[STORE_RBD_NAME_MAX];
	char *buf;
	struct io_client c;
	rbd_image_t img;
	uint64_t t0, w0, worst = 0, writes = 0, kill_at = 0;
	bool is_killed = false;
	pid_t killer = 0;
	ssize_t n;
	struct err e;

	(void)state;
	buf = malloc(4096);
	assert_non_null(buf);
	fill(buf, 4096, 'K');
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 180, 64 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_int_equal(rbd_open(c.io, name, &img, NULL), 0);
	t0 = now_ms();
	/* 1 s of writes, the kill, 5 s more: each to a random 4 KiB of the
	 * 16 objects, so that PGs of every primary are hit. */
	while (now_ms() - t0 < 6000) {
		if (!is_killed && now_ms() - t0 >= 1000) {
			assert_int_equal(script_spawn("kill-osd", "1", &killer),
			                 0);
			kill_at = now_ms();
			is_killed = true;
		}
		w0 = now_ms();
		n = rbd_write(img, (uint64_t)(random() % (64 * 256)) * 4096,
		              4096, buf);
		if (n == 4096)
			n = rbd_flush(img) == 0 ? 4096 : -EIO;
		if (n != 4096)
			fail_msg("write %llu failed %llu ms after the kill: "
			         "%s",
			         (unsigned long long)writes,
			         (unsigned long long)(now_ms() - kill_at),
			         strerror((int)-n));
		if (now_ms() - w0 > worst)
			worst = now_ms() - w0;
		writes++;
	}
	assert_int_equal(script_wait(killer), 0);
	printf("# %llu writes, none failed; worst %llu ms with osd.1 "
	       "killed\n",
	       (unsigned long long)writes, (unsigned long long)worst);
	assert_true(worst < OSD_KILL_BOUND_MS);
	rbd_close(img);
	io_close(&c);
	free(buf);

	t0 = now_ms();
	assert_int_equal(script("start-osd", "1"), 0);
	assert_int_equal(script("wait", NULL), 0);
	printf("# osd.1 back, cluster clean again in %.2f s\n",
	       (double)(now_ms() - t0) / 1000);
	/* The admin connection was idle through the kill and the restart:
	 * its first call must find the OSD at its new address. */
	t0 = now_ms();
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
	printf("# first call of an idle connection after the restart: %llu "
	       "ms\n",
	       (unsigned long long)(now_ms() - t0));
}

static void test_monitor_down_fails_a_connect_within_10s(void **state)
{
	char name[STORE_RBD_NAME_MAX], buf[4096];
	struct store_rbd *r = NULL;
	struct io_client c;
	rbd_image_t img;
	uint64_t total, used, avail, t0, connect_ms, status_ms;
	struct err e;
	int rv;

	(void)state;
	assert_int_equal(io_connect(&c), 0);
	assert_ok(store_rbd_alloc(fx.admin, 190, 8 * MIB, NULL, name,
	                          sizeof name, &e),
	          &e);
	assert_int_equal(rbd_open(c.io, name, &img, NULL), 0);
	fill(buf, sizeof buf, 'M');
	assert_int_equal(rbd_write(img, 0, sizeof buf, buf), sizeof buf);

	assert_int_equal(script("stop-mon", NULL), 0);

	t0 = now_ms();
	rv = connect_store(0, &r, &e);
	connect_ms = now_ms() - t0;
	printf("# monitor down: connect failed after %.2f s: %s\n",
	       (double)connect_ms / 1000, e.msg);
	assert_true(rv < 0);
	assert_null(r);
	assert_true(connect_ms < MON_DOWN_BOUND_MS);

	t0 = now_ms();
	rv = store_rbd_status(fx.admin, &total, &used, &avail, &e);
	status_ms = now_ms() - t0;
	printf("# monitor down: status on an open connection failed after "
	       "%.2f s: %s\n",
	       (double)status_ms / 1000, e.msg);
	assert_true(rv < 0);
	assert_true(status_ms < MON_DOWN_BOUND_MS);

	/* the data path does not need the monitor */
	assert_int_equal(rbd_write(img, 4096, sizeof buf, buf), sizeof buf);
	assert_int_equal(rbd_flush(img), 0);
	printf("# monitor down: an open image still writes\n");
	rbd_close(img);

	assert_int_equal(script("start-mon", NULL), 0);
	t0 = now_ms();
	do {
		rv = connect_store(0, &r, &e);
	} while (rv != 0 && now_ms() - t0 < 30000);
	assert_ok(rv, &e);
	store_rbd_close(r);
	assert_int_equal(script("wait", NULL), 0);
	assert_ok(store_rbd_free(fx.admin, name, &e), &e);
	io_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(
	                test_alloc_picks_free_names_and_lists_them_with_sizes,
	                test_setup),
	        cmocka_unit_test_setup(
	                test_alloc_refuses_bad_input_and_changes_nothing,
	                test_setup),
	        cmocka_unit_test_setup(test_grow_works_and_shrink_is_refused,
	                               test_setup),
	        cmocka_unit_test_setup(test_snapshot_rollback_restores_the_data,
	                               test_setup),
	        cmocka_unit_test_setup(
	                test_free_is_refused_while_snapshots_exist, test_setup),
	        cmocka_unit_test_setup(test_template_linked_and_full_clones,
	                               test_setup),
	        cmocka_unit_test_setup(test_status_reports_pool_space,
	                               test_setup),
	        cmocka_unit_test_setup(
	                test_attach_spec_keeps_the_key_in_a_0600_file,
	                test_setup),
	        cmocka_unit_test_setup(test_config_errors_name_the_field,
	                               test_setup),
	        cmocka_unit_test(test_option_check_follows_connect_rules),
	        cmocka_unit_test_setup(
	                test_lock_owner_is_the_client_that_writes, test_setup),
	        cmocka_unit_test_setup(
	                test_blocklisted_client_writes_fail_until_removed,
	                test_setup),
	        cmocka_unit_test_setup(
	                test_blocklisted_connection_fails_until_removed,
	                test_setup),
	        cmocka_unit_test_setup(test_writes_go_on_while_an_osd_is_killed,
	                               test_setup),
	        cmocka_unit_test_setup(
	                test_monitor_down_fails_a_connect_within_10s,
	                test_setup),
	};

	/* CAIRN_TEST_FILTER=test_osd* runs only the tests matching */
	if (getenv("CAIRN_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_TEST_FILTER"));
	srandom((unsigned)(getpid() ^ time(NULL)));
	return cmocka_run_group_tests_name("store/rbd", tests, group_setup,
	                                   group_teardown);
}
