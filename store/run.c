/* External programs for storage work, run synchronously on a worker
 * thread: lib's proc_spawn starts them with a clean signal state, this file
 * reads their output through non-blocking pipes under a deadline and reaps
 * them by pid. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/run.h"

/* stderr is kept only for its last line; this much of its tail is enough. */
#define STDERR_TAIL_MAX (16 * 1024)
/* How long a killed child may take to die before we stop waiting. A child
 * stuck in the kernel (a hung NFS mount) cannot be killed; the storage
 * thread must not hang with it. */
#define REAP_AFTER_KILL_MS 5000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool is_cancelled(const atomic_bool *cancel)
{
	return cancel != NULL && atomic_load(cancel);
}

/* Waits for pid until deadline (0: forever) or until *cancel (may be
 * NULL). Returns 0 with *status set, -ETIMEDOUT, -ECANCELED or -errno. */
static int reap(pid_t pid, uint64_t deadline, const atomic_bool *cancel,
                int *status)
{
	bool is_polling = deadline != 0 || cancel != NULL;
	unsigned pause = 1;

	for (;;) {
		pid_t got = waitpid(pid, status, is_polling ? WNOHANG : 0);

		if (got == pid)
			return 0;
		if (got < 0 && errno != EINTR)
			return -errno;
		if (got == 0) {
			if (is_cancelled(cancel))
				return -ECANCELED;
			if (deadline != 0 && now_ms() >= deadline)
				return -ETIMEDOUT;
			sleep_ms(pause);
			if (pause < 50)
				pause *= 2;
		}
	}
}

/* Kills the child's process group (it leads its own session, so its own
 * children die with it) and reaps it within REAP_AFTER_KILL_MS. */
static void kill_and_reap(pid_t pid, const char *program)
{
	int status;

	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	if (reap(pid, now_ms() + REAP_AFTER_KILL_MS, NULL, &status) != 0)
		LOG_WARN("store", "killed program did not exit",
		         "program=%s pid=%ld", program, (long)pid);
}

/* The last non-empty line of text, printable characters only, into out. */
static void last_line(const struct buf *text, char *out, size_t size)
{
	size_t end = text->len, start, i, n = 0;

	while (end > 0 &&
	       (text->data[end - 1] == '\n' || text->data[end - 1] == '\r' ||
	        text->data[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && text->data[start - 1] != '\n')
		start--;
	for (i = start; i < end && n + 1 < size; i++) {
		unsigned char c = (unsigned char)text->data[i];

		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int store_run_cancellable(const char *cwd, const char *const argv[],
                          unsigned timeout_ms, const atomic_bool *cancel,
                          struct buf *out, struct err *e)
{
	struct proc_options opts;
	const char *program;
	struct buf errtext;
	uint64_t deadline, out_bytes = 0;
	int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
	int status = 0, rv;
	char line[320];
	pid_t pid;

	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
		return err_set(e, -EINVAL, "run: no program given");
	program = argv[0];
	if (pipe2(out_pipe, O_CLOEXEC) != 0)
		return err_sys(e, -errno, "%s: pipe", program);
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		rv = err_sys(e, -errno, "%s: pipe", program);
		goto err_after_out_pipe;
	}
	memset(&opts, 0, sizeof opts);
	opts.argv = argv;
	opts.cwd = cwd;
	opts.stdin_fd = -1;
	opts.stdout_fd = out_pipe[1];
	opts.stderr_fd = err_pipe[1];
	opts.new_session = true;
	rv = proc_spawn(&opts, &pid, e);
	if (rv != 0)
		goto err_after_err_pipe;
	close_fd(&out_pipe[1]);
	close_fd(&err_pipe[1]);
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);

	buf_init(&errtext, STDERR_TAIL_MAX * 2);
	deadline = timeout_ms == 0 ? 0 : now_ms() + timeout_ms;
	while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
		struct pollfd fds[2] = {{.fd = out_pipe[0], .events = POLLIN},
		                        {.fd = err_pipe[0], .events = POLLIN}};
		int wait_ms = -1, i;

		if (is_cancelled(cancel)) {
			rv = err_set(e, -ECANCELED, "%s: cancelled", program);
			goto err_after_spawn;
		}
		if (deadline != 0) {
			uint64_t now = now_ms();

			if (now >= deadline) {
				rv = err_set(e, -ETIMEDOUT,
				             "%s: timed out after %u ms",
				             program, timeout_ms);
				goto err_after_spawn;
			}
			wait_ms = (int)(deadline - now);
		}
		if (cancel != NULL &&
		    (wait_ms < 0 || wait_ms > STORE_RUN_CANCEL_MS))
			wait_ms = STORE_RUN_CANCEL_MS;
		/* poll ignores negative fds: a closed pipe stays in place. */
		if (poll(fds, 2, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			rv = err_sys(e, -errno, "%s: poll", program);
			goto err_after_spawn;
		}
		for (i = 0; i < 2; i++) {
			char chunk[16384];
			ssize_t n;

			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			n = read(fds[i].fd, chunk, sizeof chunk);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0) {
				rv = err_sys(e, -errno, "%s: read", program);
				goto err_after_spawn;
			}
			if (n == 0) {
				close_fd(i == 0 ? &out_pipe[0] : &err_pipe[0]);
				continue;
			}
			if (i == 1) {
				if (errtext.len + (size_t)n > errtext.max)
					buf_consume(&errtext, errtext.len);
				if (buf_append(&errtext, chunk, (size_t)n) ==
				            0 &&
				    errtext.len > STDERR_TAIL_MAX)
					buf_consume(&errtext,
					            errtext.len -
					                    STDERR_TAIL_MAX);
				continue;
			}
			out_bytes += (uint64_t)n;
			if (out_bytes > STORE_RUN_OUTPUT_MAX) {
				rv = err_set(e, -E2BIG,
				             "%s: more than %d bytes of output",
				             program, STORE_RUN_OUTPUT_MAX);
				goto err_after_spawn;
			}
			if (out != NULL) {
				rv = buf_append(out, chunk, (size_t)n);
				if (rv != 0) {
					rv = err_set(e, rv, "%s: output: %s",
					             program,
					             rv == -ENOMEM
					                     ? "out of memory"
					                     : "too large");
					goto err_after_spawn;
				}
			}
		}
	}
	/* Both pipes are closed; the program is exiting or has handed them
	 * to nobody while it runs on. The deadline still holds. */
	rv = reap(pid, deadline, cancel, &status);
	if (rv == -ETIMEDOUT) {
		rv = err_set(e, -ETIMEDOUT, "%s: timed out after %u ms",
		             program, timeout_ms);
		goto err_after_spawn;
	}
	if (rv == -ECANCELED) {
		rv = err_set(e, -ECANCELED, "%s: cancelled", program);
		goto err_after_spawn;
	}
	if (rv != 0) {
		rv = err_sys(e, rv, "%s: waitpid", program);
		goto err_after_stderr;
	}
	last_line(&errtext, line, sizeof line);
	if (WIFSIGNALED(status)) {
		rv = err_set(e, -EIO, "%s: killed by signal %d%s%s", program,
		             WTERMSIG(status), line[0] != '\0' ? ": " : "",
		             line);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		rv = err_set(e, -EIO, "%s: exit status %d%s%s", program,
		             WEXITSTATUS(status), line[0] != '\0' ? ": " : "",
		             line);
	}
	buf_free(&errtext);
	close_fd(&out_pipe[0]);
	close_fd(&err_pipe[0]);
	return rv;

err_after_spawn:
	kill_and_reap(pid, program);
err_after_stderr:
	buf_free(&errtext);
err_after_err_pipe:
	close_fd(&err_pipe[0]);
	close_fd(&err_pipe[1]);
err_after_out_pipe:
	close_fd(&out_pipe[0]);
	close_fd(&out_pipe[1]);
	return rv;
}

int store_run_in(const char *cwd, const char *const argv[], unsigned timeout_ms,
                 struct buf *out, struct err *e)
{
	return store_run_cancellable(cwd, argv, timeout_ms, NULL, out, e);
}

int store_run(const char *const argv[], unsigned timeout_ms, struct buf *out,
              struct err *e)
{
	return store_run_in(NULL, argv, timeout_ms, out, e);
}
