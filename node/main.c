/* cairnd: the cairn agent that runs on every node. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "node/node.h"

#define EXIT_USAGE 2
/* A stop that takes longer than this is stuck: exit rather than hang a
 * service manager (guests are separate processes and keep running). */
#define STOP_DEADLINE_MS 5000

struct daemon {
	uv_loop_t loop;
	struct node_config config;
	struct node *node;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t stop_deadline;
	const char *log_path; /* NULL when logging to the terminal */
	bool is_stopping;
};

static void usage(FILE *f)
{
	struct buf help;

	buf_init(&help, 64 * 1024);
	fprintf(f,
	        "Usage: cairnd [-c FILE] [--foreground] [--check-config]\n"
	        "       cairnd --version | --help\n"
	        "\n"
	        "The cairn agent: one runs on every node of a cairn cluster.\n"
	        "\n"
	        "  -c, --config FILE  settings file (default %s; built-in\n"
	        "                     defaults when that file does not exist)\n"
	        "  -f, --foreground   stay attached and log to stderr (else the\n"
	        "                     agent detaches and logs to log_file)\n"
	        "      --check-config check the settings, print them, exit\n"
	        "  -V, --version      print versions of cairnd and its libraries\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "Settings (`key = value`, one per line, # comments):\n",
	        NODE_CONFIG_DEFAULT_PATH);
	if (node_config_help(&help) == 0)
		fputs(help.data, f);
	buf_free(&help);
	fprintf(f, "\nSignals: TERM/INT stop cleanly (guests keep running); "
	           "HUP reopens log_file.\n"
	           "Exit status: 0 stopped cleanly, 1 failed, 2 bad usage or "
	           "settings.\n");
}

static int print_version(void)
{
	struct buf text;

	buf_init(&text, 64 * 1024);
	printf("cairnd %s (commit %s)\n", cairn_version(), cairn_repoid());
	if (node_versions(&text) == 0)
		fputs(text.data, stdout);
	buf_free(&text);
	return 0;
}

/* Points fd 2 (where the logger and libraries write) at the log file. */
static int open_log(const char *path, struct err *e)
{
	char dir[4200];
	char *slash;
	int fd;

	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (file_mkdir_p(dir, 0750, e) != 0)
			return e->code;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return err_sys(e, -errno, "open log file %s", path);
	/* dup2 swaps the file under fd 2 atomically, so a thread that logs
	 * meanwhile writes to the old file or the new, never to nothing. */
	if (dup2(fd, STDERR_FILENO) < 0) {
		int code = -errno;

		close(fd);
		return err_sys(e, code, "dup2 log file %s", path);
	}
	close(fd);
	return 0;
}

/* Forks; the parent waits until the child reports "ready" or an error on
 * a pipe, so that `cairnd` without --foreground still fails visibly (and
 * with status 1) when, say, the data dir is locked. Returns the write end
 * in the child; never returns in the parent. */
static int daemonize(void)
{
	char msg[ERR_MSG_MAX + 8];
	int fds[2];
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		perror("cairnd: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("cairnd: fork");
		exit(1);
	}
	if (pid > 0) {
		close(fds[1]);
		n = read(fds[0], msg, sizeof msg - 1);
		if (n <= 0) {
			fprintf(stderr, "cairnd: the agent exited during "
			                "start-up (see its log file)\n");
			exit(1);
		}
		msg[n] = '\0';
		if (strcmp(msg, "ready") == 0)
			exit(0);
		fprintf(stderr, "cairnd: %s\n", msg);
		exit(1);
	}
	close(fds[0]);
	setsid();
	return fds[1];
}

static void report(int ready_fd, const char *msg)
{
	if (ready_fd >= 0) {
		if (write(ready_fd, msg, strlen(msg)) < 0) {
			/* the parent is gone; nothing else to tell */
		}
		close(ready_fd);
	}
}

static void on_stopped(struct node *n)
{
	(void)n;
}

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void on_stop_deadline(uv_timer_t *t)
{
	(void)t;
	LOG_ERROR("node", "stop took too long, exiting", "deadline_ms=%d",
	          STOP_DEADLINE_MS);
	_exit(1);
}

static void begin_stop(struct daemon *d, const char *why)
{
	if (d->is_stopping)
		return;
	d->is_stopping = true;
	LOG_INFO("node", "stopping", "reason=%s", why);
	uv_timer_start(&d->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS,
	               0);
	uv_unref((uv_handle_t *)&d->stop_deadline);
	uv_close((uv_handle_t *)&d->sigterm, close_cb);
	uv_close((uv_handle_t *)&d->sigint, close_cb);
	uv_close((uv_handle_t *)&d->sighup, close_cb);
	node_stop(d->node, on_stopped);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (signum == SIGHUP) {
		struct err e;

		if (d->log_path == NULL)
			return;
		if (open_log(d->log_path, &e) != 0)
			LOG_ERROR("node", "reopen log file failed",
			          "error=\"%s\"", e.msg);
		else
			LOG_INFO("node", "log file reopened", "path=%s",
			         d->log_path);
		return;
	}
	begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int watch_signal(struct daemon *d, uv_signal_t *h, int signum)
{
	int rv = uv_signal_init(&d->loop, h);

	if (rv != 0)
		return rv;
	h->data = d;
	return uv_signal_start(h, on_signal, signum);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"foreground", no_argument, NULL, 'f'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct daemon d;
	const char *config_path = NULL;
	bool foreground = false, check_only = false;
	enum log_level level;
	char num[16];
	struct err e;
	int opt, rv, ready_fd = -1, status = 0;

	memset(&d, 0, sizeof d);
	err_clear(&e);
	while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			check_only = true;
			break;
		case 'V':
			return print_version();
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'cairnd --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "cairnd: unexpected argument '%s'\nTry 'cairnd "
		        "--help'.\n",
		        argv[optind]);
		return EXIT_USAGE;
	}

	if (config_path == NULL && access(NODE_CONFIG_DEFAULT_PATH, F_OK) != 0)
		rv = node_config_parse(&d.config, "built-in defaults", "", &e);
	else
		rv = node_config_load(&d.config,
		                      config_path != NULL
		                              ? config_path
		                              : NODE_CONFIG_DEFAULT_PATH,
		                      &e);
	if (rv != 0) {
		fprintf(stderr, "cairnd: %s\n", e.msg);
		node_config_free(&d.config);
		return EXIT_USAGE;
	}
	if (check_only) {
		struct buf text;

		buf_init(&text, CONF_FILE_MAX);
		rv = conf_dump(node_config_keys, &d.config, &text);
		if (rv == 0)
			fputs(text.data, stdout);
		buf_free(&text);
		node_config_free(&d.config);
		return rv == 0 ? 0 : 1;
	}
	CAIRN_ASSERT(log_level_parse(d.config.log_level, &level) == 0);
	log_set_level(level);

	/* libuv sizes its pool on first use; nothing has used libuv yet. */
	snprintf(num, sizeof num, "%lld",
	         (long long)d.config.uv_threadpool_size);
	setenv("UV_THREADPOOL_SIZE", num, 1);
	signal(SIGPIPE, SIG_IGN);
	/* Whatever fds our parent left open stay ours alone: no child (and
	 * no guest that outlives us) inherits them. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		LOG_WARN("node", "cannot mark inherited fds close-on-exec",
		         "errno=%d", errno);

	if (!foreground) {
		int null_fd;

		ready_fd = daemonize();
		d.log_path = d.config.log_file;
		null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd >= 0) {
			dup2(null_fd, STDIN_FILENO);
			dup2(null_fd, STDOUT_FILENO);
			close(null_fd);
		}
		if (open_log(d.log_path, &e) != 0) {
			report(ready_fd, e.msg);
			status = 1;
			goto out_config;
		}
	}

	rv = uv_loop_init(&d.loop);
	if (rv != 0) {
		err_set(&e, rv, "uv_loop_init: %s", uv_strerror(rv));
		goto out_fail;
	}
	LOG_INFO("node", "starting", "version=%s commit=%s node=%s",
	         cairn_version(), cairn_repoid(), d.config.node_name);
	rv = node_create(&d.config, &d.loop, &d.node, &e);
	if (rv != 0)
		goto out_loop;
	uv_timer_init(&d.loop, &d.stop_deadline);
	if (watch_signal(&d, &d.sigterm, SIGTERM) != 0 ||
	    watch_signal(&d, &d.sigint, SIGINT) != 0 ||
	    watch_signal(&d, &d.sighup, SIGHUP) != 0) {
		err_set(&e, -EIO, "cannot watch signals");
		status = 1;
		begin_stop(&d, "start-up failed");
	} else if (node_start(d.node, &e) != 0) {
		status = 1;
		begin_stop(&d, "start-up failed");
	} else {
		report(ready_fd, "ready");
		ready_fd = -1;
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&d.stop_deadline, close_cb);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d.loop) != 0)
		LOG_WARN("node", "loop closed with handles still open", NULL);
	node_destroy(d.node);
	if (status != 0)
		goto out_fail_reported;
	LOG_INFO("node", "stopped", NULL);
	node_config_free(&d.config);
	return 0;

out_loop:
	uv_loop_close(&d.loop);
out_fail:
	status = 1;
out_fail_reported:
	LOG_ERROR("node", "cairnd failed", "error=\"%s\"", e.msg);
	/* In the foreground the log line above is already on stderr; when
	 * detached, the waiting parent prints the message. */
	if (ready_fd >= 0)
		report(ready_fd, e.msg);
out_config:
	node_config_free(&d.config);
	return status;
}
