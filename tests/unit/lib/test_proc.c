/* Unit tests for proc_spawn: clean signal state, no shell, stdio, sessions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Per-test state, released in teardown whatever the test did. */
static struct err e;
static pid_t child;
static int out_pipe[2], in_pipe[2];
static struct buf output;
static sigset_t saved_mask;
static struct sigaction saved_pipe, saved_hup;
static char tmpdir[64];

static int setup_proc(void **state)
{
	(void)state;
	err_clear(&e);
	child = -1;
	out_pipe[0] = out_pipe[1] = in_pipe[0] = in_pipe[1] = -1;
	buf_init(&output, 1 << 20);
	sigprocmask(SIG_SETMASK, NULL, &saved_mask);
	sigaction(SIGPIPE, NULL, &saved_pipe);
	sigaction(SIGHUP, NULL, &saved_hup);
	tmpdir[0] = '\0';
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int teardown_proc(void **state)
{
	(void)state;
	close_fd(&out_pipe[0]);
	close_fd(&out_pipe[1]);
	close_fd(&in_pipe[0]);
	close_fd(&in_pipe[1]);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	sigaction(SIGPIPE, &saved_pipe, NULL);
	sigaction(SIGHUP, &saved_hup, NULL);
	buf_free(&output);
	if (tmpdir[0] != '\0') {
		char path[128];

		snprintf(path, sizeof(path), "%s/prog", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
	return 0;
}

static struct proc_options options(const char *const *argv)
{
	struct proc_options o = {
	        .argv = argv,
	        .envp = NULL,
	        .cwd = NULL,
	        .stdin_fd = -1,
	        .stdout_fd = -1,
	        .stderr_fd = -1,
	        .new_session = false,
	};

	return o;
}

/* Spawns with stdout (and, if wanted, stderr) on a pipe we read. */
static int spawn_capturing(struct proc_options *o, bool with_stderr)
{
	int rc;

	assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
	o->stdout_fd = out_pipe[1];
	if (with_stderr)
		o->stderr_fd = out_pipe[1];
	rc = proc_spawn(o, &child, &e);
	close_fd(&out_pipe[1]);
	return rc;
}

/* Reads the child's output until EOF into `output`. */
static void read_output(void)
{
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = read(out_pipe[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_int_equal(buf_append(&output, chunk, (size_t)n), 0);
	}
	close_fd(&out_pipe[0]);
}

/* Reaps the child and returns its exit code (or -signal). */
static int reap(void)
{
	int status;
	pid_t got;

	do
		got = waitpid(child, &status, 0);
	while (got < 0 && errno == EINTR);
	assert_int_equal(got, child);
	child = -1;
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The value of "Name:\t..." in /proc/PID/status text. */
static const char *status_field(const char *text, const char *name, char *value,
                                size_t size)
{
	char key[32];
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), "\n%s:", name);
	p = strstr(text, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, "\n");
	if (n >= size)
		return NULL;
	memcpy(value, p, n);
	value[n] = '\0';
	return value;
}

static void
test_proc_child_starts_with_empty_mask_and_no_ignored_signals(void **state)
{
	const char *argv[] = {"cat", "/proc/self/status", NULL};
	struct proc_options o = options(argv);
	struct sigaction ign = {.sa_handler = SIG_IGN};
	char value[64];
	sigset_t block;

	(void)state;
	/* What a daemon typically does to itself. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, NULL), 0);
	sigemptyset(&ign.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &ign, NULL), 0);
	assert_int_equal(sigaction(SIGHUP, &ign, NULL), 0);

	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_non_null(
	        status_field(output.data, "SigBlk", value, sizeof(value)));
	assert_string_equal(value, "0000000000000000");
	assert_non_null(
	        status_field(output.data, "SigIgn", value, sizeof(value)));
	assert_string_equal(value, "0000000000000000");
}

static void test_proc_spawn_leaves_the_callers_signal_state_alone(void **state)
{
	const char *argv[] = {"true", NULL};
	struct proc_options o = options(argv);
	struct sigaction ign = {.sa_handler = SIG_IGN}, now;
	sigset_t block, mask;

	(void)state;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
	assert_int_equal(proc_spawn(&o, &child, &e), 0);
	assert_int_equal(reap(), 0);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	assert_true(sigismember(&mask, SIGTERM));
	sigaction(SIGPIPE, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_IGN);
}

static void test_proc_nonexistent_program_fails_naming_it(void **state)
{
	const char *argv[] = {"cairn-no-such-program-1f3a", "arg", NULL};
	struct proc_options o = options(argv);
	int rc;

	(void)state;
	rc = proc_spawn(&o, &child, &e);
	if (rc == 0) {
		/* The wrong answer: a child that will exit 127. Reap it and
		 * say what happened. */
		int code = reap();

		fail_msg("proc_spawn returned a child (exit %d) for a missing "
		         "program",
		         code);
	}
	child = -1;
	assert_true(rc < 0);
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(e.code, rc);
	assert_non_null(strstr(e.msg, "cairn-no-such-program-1f3a"));
}

static void test_proc_nonexistent_absolute_path_fails_naming_it(void **state)
{
	const char *argv[] = {"/nonexistent/cairn/prog", NULL};
	struct proc_options o = options(argv);
	int rc;

	(void)state;
	rc = proc_spawn(&o, &child, &e);
	if (rc == 0)
		fail_msg("proc_spawn returned a child (exit %d) for a missing "
		         "program",
		         reap());
	child = -1;
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/cairn/prog"));
}

static void test_proc_program_without_exec_permission_fails(void **state)
{
	char path[128];
	const char *argv[] = {path, NULL};
	struct proc_options o = options(argv);
	int fd, rc;

	(void)state;
	strcpy(tmpdir, "/tmp/cairn-test-proc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/prog", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	rc = proc_spawn(&o, &child, &e);
	if (rc == 0)
		fail_msg("proc_spawn returned a child (exit %d) for a "
		         "non-executable file",
		         reap());
	child = -1;
	assert_int_equal(rc, -EACCES);
	assert_non_null(strstr(e.msg, path));
}

static void
test_proc_shell_metacharacters_in_argv_are_passed_literally(void **state)
{
	const char *arg = "$(id);`x` | echo pwned > /tmp/x && 'q' \"d\" *";
	const char *argv[] = {"printf", "%s", arg, NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, arg);
}

static void test_proc_exit_status_is_the_programs(void **state)
{
	const char *argv[] = {"sh", "-c", "exit 3", NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_int_equal(proc_spawn(&o, &child, &e), 0);
	assert_true(child > 0);
	assert_int_equal(reap(), 3);
}

static void test_proc_stdin_defaults_to_dev_null(void **state)
{
	const char *argv[] = {"cat", NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_int_equal(output.len, 0);
}

static void test_proc_unset_stdio_are_dev_null(void **state)
{
	/* $(...) runs in a subshell, so the shell's own fds are read. */
	const char *to_stderr[] = {
	        "sh", "-c",
	        "for i in 0 1; do l=$(readlink /proc/$$/fd/$i); echo \"$i $l\" >&2; "
	        "done",
	        NULL};
	const char *to_stdout[] = {
	        "sh", "-c", "l=$(readlink /proc/$$/fd/2); echo \"2 $l\"", NULL};
	struct proc_options o = options(to_stderr);

	(void)state;
	assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
	o.stderr_fd = out_pipe[1];
	assert_int_equal(proc_spawn(&o, &child, &e), 0);
	close_fd(&out_pipe[1]);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "0 /dev/null\n1 /dev/null\n");

	buf_reset(&output);
	o = options(to_stdout);
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "2 /dev/null\n");
}

static void test_proc_stdout_and_stderr_may_share_one_fd(void **state)
{
	const char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_int_equal(spawn_capturing(&o, true), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "out\nerr\n");
}

static void
test_proc_stdout_fd_numbered_zero_is_not_clobbered_by_stdin(void **state)
{
	/* A daemon that closed its stdin gets fd 0 back from pipe(): the
	 * child's stdin (/dev/null) must not overwrite it before it becomes
	 * the child's stdout. */
	const char *argv[] = {"echo", "via fd 0", NULL};
	struct proc_options o = options(argv);
	int saved_stdin, rc;

	(void)state;
	assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
	saved_stdin = fcntl(0, F_DUPFD_CLOEXEC, 10);
	assert_true(saved_stdin >= 0);
	assert_int_equal(dup3(out_pipe[1], 0, O_CLOEXEC), 0);
	close_fd(&out_pipe[1]);
	o.stdout_fd = 0;
	rc = proc_spawn(&o, &child, &e);
	dup2(saved_stdin, 0);
	close(saved_stdin);
	assert_int_equal(rc, 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "via fd 0\n");
}

static void test_proc_swapped_stdout_and_stderr_fds_are_honoured(void **state)
{
	/* stdout_fd is the err pipe and stderr_fd the out pipe, each
	 * numbered 1 and 2 in the parent: a naive dup2 loop sends both
	 * streams to one of them. */
	const char *argv[] = {"sh", "-c", "echo to-out; echo to-err >&2", NULL};
	struct proc_options o = options(argv);
	int a[2], b[2], saved1, saved2, rc;
	char got_a[64] = "", got_b[64] = "";
	ssize_t n;

	(void)state;
	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	saved1 = fcntl(1, F_DUPFD_CLOEXEC, 10);
	saved2 = fcntl(2, F_DUPFD_CLOEXEC, 10);
	assert_true(saved1 >= 0 && saved2 >= 0);
	/* Our fd 1 is pipe a, our fd 2 is pipe b. */
	dup3(a[1], 1, O_CLOEXEC);
	dup3(b[1], 2, O_CLOEXEC);
	close(a[1]);
	close(b[1]);
	o.stdout_fd = 2; /* child's stdout -> pipe b */
	o.stderr_fd = 1; /* child's stderr -> pipe a */
	rc = proc_spawn(&o, &child, &e);
	dup2(saved1, 1);
	dup2(saved2, 2);
	close(saved1);
	close(saved2);
	if (rc == 0)
		reap();
	n = read(a[0], got_a, sizeof(got_a) - 1);
	got_a[n > 0 ? n : 0] = '\0';
	n = read(b[0], got_b, sizeof(got_b) - 1);
	got_b[n > 0 ? n : 0] = '\0';
	close(a[0]);
	close(b[0]);
	assert_int_equal(rc, 0);
	assert_string_equal(got_b, "to-out\n");
	assert_string_equal(got_a, "to-err\n");
}

static void test_proc_stdin_fd_feeds_the_child(void **state)
{
	const char *argv[] = {"cat", NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_int_equal(pipe2(in_pipe, O_CLOEXEC), 0);
	o.stdin_fd = in_pipe[0];
	assert_int_equal(spawn_capturing(&o, false), 0);
	close_fd(&in_pipe[0]);
	assert_int_equal(write(in_pipe[1], "fed\n", 4), 4);
	close_fd(&in_pipe[1]);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "fed\n");
}

static void test_proc_child_gets_only_the_three_stdio_fds(void **state)
{
	/* An fd of ours that is NOT close-on-exec: it must still not reach
	 * the child. */
	const char *argv[] = {"sh", "-c",
	                      "ls /proc/$$/fd | sort -n | tr '\\n' ' '", NULL};
	struct proc_options o = options(argv);
	int leaky = open("/dev/null", O_RDONLY);
	int high;

	(void)state;
	assert_true(leaky >= 0);
	high = dup2(leaky, 77);
	close(leaky);
	assert_int_equal(high, 77);
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	close(high);
	assert_int_equal(reap(), 0);
	/* sh may open one fd of its own for the pipeline; 77 must not be
	 * there, nor any of ours. */
	assert_null(strstr(output.data, " 77 "));
	assert_int_equal(strncmp(output.data, "0 1 2 ", 6), 0);
}

static void test_proc_envp_replaces_the_environment(void **state)
{
	const char *argv[] = {"env", NULL};
	const char *envp[] = {"CAIRN_TEST=yes", "LANG=C", NULL};
	struct proc_options o = options(argv);

	(void)state;
	o.envp = envp;
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "CAIRN_TEST=yes\nLANG=C\n");
}

static void test_proc_null_envp_inherits_the_environment(void **state)
{
	const char *argv[] = {"sh", "-c", "printf %s \"$CAIRN_INHERITED\"",
	                      NULL};
	struct proc_options o = options(argv);

	(void)state;
	setenv("CAIRN_INHERITED", "from-parent", 1);
	assert_int_equal(spawn_capturing(&o, false), 0);
	unsetenv("CAIRN_INHERITED");
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, "from-parent");
}

static void test_proc_cwd_sets_the_childs_directory(void **state)
{
	const char *argv[] = {"pwd", "-P", NULL};
	struct proc_options o = options(argv);
	char want[PATH_MAX + 1];

	(void)state;
	strcpy(tmpdir, "/tmp/cairn-test-proc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_non_null(realpath(tmpdir, want));
	strcat(want, "\n");
	o.cwd = tmpdir;
	assert_int_equal(spawn_capturing(&o, false), 0);
	read_output();
	assert_int_equal(reap(), 0);
	assert_string_equal(output.data, want);
}

/* Spawns `cat` between two pipes and waits for an echo, so that the child
 * has certainly exec'd (any setsid() happened before that). */
static void spawn_running_cat(bool new_session)
{
	const char *argv[] = {"cat", NULL};
	struct proc_options o = options(argv);
	char c = 0;

	assert_int_equal(pipe2(in_pipe, O_CLOEXEC), 0);
	o.stdin_fd = in_pipe[0];
	o.new_session = new_session;
	assert_int_equal(spawn_capturing(&o, false), 0);
	close_fd(&in_pipe[0]);
	assert_int_equal(write(in_pipe[1], "x", 1), 1);
	assert_int_equal(read(out_pipe[0], &c, 1), 1);
	assert_int_equal(c, 'x');
}

static void finish_cat(void)
{
	close_fd(&in_pipe[1]);
	read_output();
	assert_int_equal(reap(), 0);
}

static void test_proc_new_session_gives_child_its_own_session(void **state)
{
	pid_t sid;

	(void)state;
	spawn_running_cat(true);
	sid = getsid(child);
	assert_int_equal(sid, child);
	assert_int_not_equal(sid, getsid(0));
	assert_int_equal(getpgid(child), child);
	finish_cat();
}

static void test_proc_without_new_session_child_shares_our_session(void **state)
{
	(void)state;
	spawn_running_cat(false);
	assert_int_equal(getsid(child), getsid(0));
	finish_cat();
}

static void test_proc_empty_argv_is_rejected(void **state)
{
	const char *argv[] = {NULL};
	struct proc_options o = options(argv);

	(void)state;
	assert_true(proc_spawn(&o, &child, &e) < 0);
	child = -1;
	assert_string_not_equal(e.msg, "");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_proc, teardown_proc)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_proc_child_starts_with_empty_mask_and_no_ignored_signals),
	        T(test_proc_spawn_leaves_the_callers_signal_state_alone),
	        T(test_proc_nonexistent_program_fails_naming_it),
	        T(test_proc_nonexistent_absolute_path_fails_naming_it),
	        T(test_proc_program_without_exec_permission_fails),
	        T(test_proc_shell_metacharacters_in_argv_are_passed_literally),
	        T(test_proc_exit_status_is_the_programs),
	        T(test_proc_stdin_defaults_to_dev_null),
	        T(test_proc_unset_stdio_are_dev_null),
	        T(test_proc_stdout_and_stderr_may_share_one_fd),
	        T(test_proc_stdout_fd_numbered_zero_is_not_clobbered_by_stdin),
	        T(test_proc_swapped_stdout_and_stderr_fds_are_honoured),
	        T(test_proc_stdin_fd_feeds_the_child),
	        T(test_proc_child_gets_only_the_three_stdio_fds),
	        T(test_proc_envp_replaces_the_environment),
	        T(test_proc_null_envp_inherits_the_environment),
	        T(test_proc_cwd_sets_the_childs_directory),
	        T(test_proc_new_session_gives_child_its_own_session),
	        T(test_proc_without_new_session_child_shares_our_session),
	        T(test_proc_empty_argv_is_rejected),
	};

	return cmocka_run_group_tests_name("lib/proc", tests, NULL, NULL);
}
