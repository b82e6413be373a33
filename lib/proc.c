/* Spawning children with a clean signal state and only stdio inherited.
 *
 * Not posix_spawn: glibc's leaves its two internal real-time signals
 * (32, 33) ignored in the child, and an ignored signal survives exec, so
 * every guest would start with SigIgn != 0. We fork and, in the child, use
 * only async-signal-safe calls; the program is looked up in PATH before
 * the fork, and an exec failure comes back through a close-on-exec pipe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib.h"

extern char **environ;

/* The kernel's struct sigaction (x86-64 and most others), for
 * rt_sigaction(2). KILL and STOP fail harmlessly. */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

/* Finds name in PATH like execvp, into out. */
static int resolve(const char *name, char *out, size_t size, struct err *e)
{
	const char *path = getenv("PATH"), *p, *colon;

	if (strchr(name, '/') != NULL) {
		if (strlen(name) >= size)
			return err_set(e, -ENAMETOOLONG,
			               "spawn %s: path too long", name);
		strcpy(out, name);
		return 0;
	}
	if (path == NULL || path[0] == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path; p != NULL; p = colon != NULL ? colon + 1 : NULL) {
		size_t n;

		colon = strchr(p, ':');
		n = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (n == 0)
			continue;
		if ((size_t)snprintf(out, size, "%.*s/%s", (int)n, p, name) >=
		    size)
			continue;
		if (access(out, X_OK) == 0)
			return 0;
	}
	return err_set(e, -ENOENT, "spawn %s: not found in PATH", name);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(const struct proc_options *opts, const char *program,
                  int report_fd)
{
	int fds[3] = {opts->stdin_fd, opts->stdout_fd, opts->stderr_fd};
	struct kernel_sigaction dfl;
	sigset_t none;
	int i, sig, code;

	/* The raw system call: glibc's sigaction refuses its internal
	 * signals 32 and 33, which may have come to us ignored (posix_spawn
	 * leaves them so) and would stay ignored in the program we run. */
	memset(&dfl, 0, sizeof dfl);
	dfl.handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
	if (opts->new_session && setsid() < 0)
		goto fail;
	/* First lift every source above 2, then put each in place: a source
	 * that is itself 0, 1 or 2 (a daemon started with stdin closed gets
	 * fd 0 from pipe()) must not be overwritten before it is copied. */
	for (i = 0; i < 3; i++) {
		int fd = fds[i];

		if (fd < 0) {
			fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
			if (fd < 0)
				goto fail;
		}
		if (fd <= 2) {
			fd = fcntl(fd, F_DUPFD, 3);
			if (fd < 0)
				goto fail;
		}
		fds[i] = fd;
	}
	for (i = 0; i < 3; i++) {
		if (dup2(fds[i], i) < 0) /* the copy is not close-on-exec */
			goto fail;
	}
	/* Our fds are close-on-exec already; this guards against a library
	 * that forgot, so no child ever holds the data-dir lock or a socket.
	 * The report pipe stays open until exec closes it. */
	if (report_fd > 3 && close_range(3, (unsigned)report_fd - 1, 0) != 0)
		goto fail;
	if (close_range((unsigned)report_fd + 1, ~0U, 0) != 0)
		goto fail;
	if (opts->cwd != NULL && chdir(opts->cwd) != 0)
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(program, (char *const *)opts->argv,
	       opts->envp != NULL ? (char *const *)opts->envp : environ);
fail:
	code = errno;
	while (write(report_fd, &code, sizeof code) < 0 && errno == EINTR)
		;
	_exit(127);
}

int proc_spawn(const struct proc_options *opts, pid_t *pid, struct err *e)
{
	char program[PATH_MAX];
	sigset_t all, saved;
	int report[2], code, rv;
	ssize_t n;
	pid_t child_pid;

	if (opts->argv == NULL || opts->argv[0] == NULL ||
	    opts->argv[0][0] == '\0')
		return err_set(e, -EINVAL, "spawn: no program given");
	rv = resolve(opts->argv[0], program, sizeof program, e);
	if (rv != 0)
		return rv;
	if (pipe2(report, O_CLOEXEC) != 0)
		return err_sys(e, -errno, "spawn %s: pipe", opts->argv[0]);
	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	child_pid = fork();
	if (child_pid == 0)
		child(opts, program, report[1]);
	code = errno;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	close(report[1]);
	if (child_pid < 0) {
		close(report[0]);
		return err_sys(e, -code, "spawn %s: fork", opts->argv[0]);
	}
	do
		n = read(report[0], &code, sizeof code);
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == sizeof code) {
		/* exec failed: the child is gone; reap it here. */
		while (waitpid(child_pid, NULL, 0) < 0 && errno == EINTR)
			;
		return err_sys(e, -code, "spawn %s", opts->argv[0]);
	}
	*pid = child_pid;
	return 0;
}
