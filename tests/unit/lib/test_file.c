/* Unit tests for the data-dir lock, mkdir -p, bounded whole-file reads and
 * new files that appear whole or not at all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

static char tmpdir[64];
static char lock_path[128];
static struct err e;
static struct buf out;
static int lock_fds[2];
static pid_t child = -1;

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/cairn-test-file-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(lock_path, sizeof(lock_path), "%s/cairnd.lock", tmpdir);
	err_clear(&e);
	buf_init(&out, 1 << 20);
	lock_fds[0] = lock_fds[1] = -1;
	child = -1;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown_dir(void **state)
{
	(void)state;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	for (int i = 0; i < 2; i++) {
		if (lock_fds[i] >= 0)
			close(lock_fds[i]);
	}
	buf_free(&out);
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_in_tmp(char *path, size_t size, const char *name)
{
	snprintf(path, (size), "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* The pid written into the lock file, or -1. */
static long pid_in_lock_file(void)
{
	char text[64];
	ssize_t n;
	int fd = open(lock_path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

static bool msg_has_pid(long pid)
{
	char digits[32];

	snprintf(digits, sizeof(digits), "%ld", pid);
	return strstr(e.msg, digits) != NULL;
}

/* ---- file_lock_exclusive ---- */

static void test_file_lock_returns_fd_and_creates_file_0600(void **state)
{
	struct stat st;

	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(stat(lock_path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_file_lock_fd_is_close_on_exec(void **state)
{
	int flags;

	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	flags = fcntl(lock_fds[0], F_GETFD);
	assert_true(flags >= 0);
	assert_true(flags & FD_CLOEXEC);
}

static void test_file_lock_writes_our_pid(void **state)
{
	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(pid_in_lock_file(), getpid());
}

static void
test_file_lock_replaces_stale_longer_content_with_our_pid(void **state)
{
	(void)state;
	/* A pid left by a dead owner, longer than ours. */
	write_file(lock_path, "1234567890123\n", 14);
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(pid_in_lock_file(), getpid());
}

static void
test_file_lock_twice_in_one_process_fails_with_ewouldblock(void **state)
{
	(void)state;
	/* flock belongs to the open file description: a second open of the
	 * same path conflicts even within one process. */
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	lock_fds[1] = file_lock_exclusive(lock_path, &e);
	assert_int_equal(lock_fds[1], -EWOULDBLOCK);
	lock_fds[1] = -1;
	assert_int_equal(e.code, -EWOULDBLOCK);
	assert_string_not_equal(e.msg, "");
}

static void test_file_lock_failure_names_the_holders_pid(void **state)
{
	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(file_lock_exclusive(lock_path, &e), -EWOULDBLOCK);
	assert_true(msg_has_pid(getpid()));
}

static void
test_file_lock_failed_attempt_keeps_holders_pid_in_file(void **state)
{
	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(file_lock_exclusive(lock_path, &e), -EWOULDBLOCK);
	assert_int_equal(pid_in_lock_file(), getpid());
}

static void test_file_lock_after_close_succeeds_again(void **state)
{
	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	close(lock_fds[0]);
	lock_fds[0] = -1;
	lock_fds[1] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[1] >= 0);
	assert_int_equal(pid_in_lock_file(), getpid());
}

/* Forks a child that takes the lock, reports on `ready` and holds the lock
 * until `release` is closed. */
static void fork_lock_holder(int *ready_rd, int *release_wr)
{
	int ready[2], release[2];

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(release, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct err ce;
		char c = 'L';
		int fd;

		close(ready[0]);
		close(release[1]);
		fd = file_lock_exclusive(lock_path, &ce);
		if (fd < 0)
			c = 'F';
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		/* Block until the parent closes its end. */
		while (read(release[0], &c, 1) > 0)
			;
		_exit(fd >= 0 ? 0 : 1);
	}
	close(ready[1]);
	close(release[0]);
	*ready_rd = ready[0];
	*release_wr = release[1];
}

static void
test_file_lock_held_by_child_process_fails_naming_its_pid(void **state)
{
	int ready, release, status;
	char c = 0;
	long holder;

	(void)state;
	fork_lock_holder(&ready, &release);
	assert_int_equal(read(ready, &c, 1), 1);
	close(ready);
	assert_int_equal(c, 'L');
	holder = child;
	assert_int_equal(file_lock_exclusive(lock_path, &e), -EWOULDBLOCK);
	assert_true(msg_has_pid(holder));
	assert_int_equal(pid_in_lock_file(), holder);
	close(release);
	assert_int_equal(waitpid(child, &status, 0), child);
	child = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The holder is gone: the lock is free again. */
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	assert_int_equal(pid_in_lock_file(), getpid());
}

static void test_file_lock_is_not_inherited_across_exec(void **state)
{
	int exec_seen[2], status;
	char c;

	(void)state;
	lock_fds[0] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[0] >= 0);
	/* The child's end of this pipe closes at exec: EOF tells us the
	 * exec has happened. */
	assert_int_equal(pipe2(exec_seen, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execl("/bin/sleep", "sleep", "10", (char *)NULL);
		_exit(127);
	}
	close(exec_seen[1]);
	assert_int_equal(read(exec_seen[0], &c, 1), 0);
	close(exec_seen[0]);
	/* Drop our hold: had the child kept the fd across exec, it would
	 * still hold the lock. */
	close(lock_fds[0]);
	lock_fds[0] = -1;
	lock_fds[1] = file_lock_exclusive(lock_path, &e);
	assert_true(lock_fds[1] >= 0);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	child = -1;
	assert_true(WIFSIGNALED(status));
}

static void test_file_lock_in_missing_directory_fails_naming_path(void **state)
{
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof(path), "no/such/dir/lock");
	assert_int_equal(file_lock_exclusive(path, &e), -ENOENT);
	assert_non_null(strstr(e.msg, path));
}

/* ---- file_mkdir_p ---- */

static void assert_dir_with_mode(const char *path, mode_t mode)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
}

static void test_file_mkdir_p_creates_every_missing_component(void **state)
{
	char path[192];

	(void)state;
	umask(022);
	path_in_tmp(path, sizeof(path), "a/b/c");
	assert_int_equal(file_mkdir_p(path, 0750, &e), 0);
	assert_dir_with_mode(path, 0750);
	path_in_tmp(path, sizeof(path), "a/b");
	assert_dir_with_mode(path, 0750);
	path_in_tmp(path, sizeof(path), "a");
	assert_dir_with_mode(path, 0750);
}

static void
test_file_mkdir_p_gives_created_directories_mode_despite_umask(void **state)
{
	char path[192];
	mode_t old = umask(077);

	(void)state;
	path_in_tmp(path, sizeof(path), "shared/run");
	assert_int_equal(file_mkdir_p(path, 0755, &e), 0);
	umask(old);
	assert_dir_with_mode(path, 0755);
	path_in_tmp(path, sizeof(path), "shared");
	assert_dir_with_mode(path, 0755);
}

static void test_file_mkdir_p_of_existing_directory_succeeds(void **state)
{
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof(path), "x/y");
	assert_int_equal(file_mkdir_p(path, 0700, &e), 0);
	assert_int_equal(file_mkdir_p(path, 0700, &e), 0);
	assert_int_equal(file_mkdir_p(tmpdir, 0700, &e), 0);
}

static void test_file_mkdir_p_accepts_trailing_and_double_slashes(void **state)
{
	char path[192], made[192];

	(void)state;
	snprintf(path, sizeof(path), "%s/p//q/", tmpdir);
	assert_int_equal(file_mkdir_p(path, 0700, &e), 0);
	path_in_tmp(made, sizeof(made), "p/q");
	assert_dir_with_mode(made, 0700);
}

static void
test_file_mkdir_p_through_a_regular_file_fails_naming_path(void **state)
{
	char file[192], path[192];

	(void)state;
	path_in_tmp(file, sizeof(file), "plain");
	write_file(file, "x", 1);
	path_in_tmp(path, sizeof(path), "plain/sub");
	assert_true(file_mkdir_p(path, 0700, &e) < 0);
	assert_true(e.code < 0);
	assert_non_null(strstr(e.msg, "plain"));
}

static void test_file_mkdir_p_on_existing_regular_file_fails(void **state)
{
	char file[192];

	(void)state;
	path_in_tmp(file, sizeof(file), "plain");
	write_file(file, "x", 1);
	assert_true(file_mkdir_p(file, 0700, &e) < 0);
}

/* ---- file_read_all ---- */

static void test_file_read_all_reads_whole_file_nul_terminated(void **state)
{
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof(path), "data");
	write_file(path, "line one\nline two\n", 18);
	assert_int_equal(file_read_all(path, 1024, &out, &e), 0);
	assert_int_equal(out.len, 18);
	assert_string_equal(out.data, "line one\nline two\n");
}

static void test_file_read_all_of_exactly_max_bytes_succeeds(void **state)
{
	char path[192], text[100];

	(void)state;
	memset(text, 'r', sizeof(text));
	path_in_tmp(path, sizeof(path), "data");
	write_file(path, text, sizeof(text));
	assert_int_equal(file_read_all(path, 100, &out, &e), 0);
	assert_int_equal(out.len, 100);
	assert_memory_equal(out.data, text, 100);
	assert_int_equal(out.data[100], '\0');
}

static void test_file_read_all_over_max_fails_with_e2big(void **state)
{
	char path[192], text[100];

	(void)state;
	memset(text, 'r', sizeof(text));
	path_in_tmp(path, sizeof(path), "data");
	write_file(path, text, sizeof(text));
	assert_int_equal(file_read_all(path, 99, &out, &e), -E2BIG);
	assert_int_equal(e.code, -E2BIG);
	assert_non_null(strstr(e.msg, path));
}

static void test_file_read_all_of_missing_file_fails_naming_path(void **state)
{
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof(path), "absent");
	assert_int_equal(file_read_all(path, 100, &out, &e), -ENOENT);
	assert_int_equal(e.code, -ENOENT);
	assert_non_null(strstr(e.msg, path));
}

static void test_file_read_all_of_empty_file_gives_empty_text(void **state)
{
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof(path), "empty");
	write_file(path, "", 0);
	assert_int_equal(file_read_all(path, 100, &out, &e), 0);
	assert_int_equal(out.len, 0);
	assert_true(out.data == NULL || out.data[0] == '\0');
}

static void
test_file_read_all_reads_proc_files_that_report_size_zero(void **state)
{
	(void)state;
	assert_int_equal(file_read_all("/proc/self/status", 1 << 16, &out, &e),
	                 0);
	assert_true(out.len > 0);
	assert_non_null(strstr(out.data, "Pid:"));
	assert_int_equal(strlen(out.data), out.len);
}

static void test_file_read_all_of_growing_proc_file_respects_max(void **state)
{
	(void)state;
	/* /proc/self/status is well over 64 bytes but says 0 in stat. */
	assert_int_equal(file_read_all("/proc/self/status", 64, &out, &e),
	                 -E2BIG);
}

static void test_file_read_all_of_directory_fails(void **state)
{
	(void)state;
	assert_true(file_read_all(tmpdir, 100, &out, &e) < 0);
	assert_true(e.code < 0);
}

/* ------------------------------------------------------------ file_new */

/* The names in tmpdir, "a,b," sorted by readdir's whim; count returned. */
static int dir_names(char *text, size_t size)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	size_t o = 0;
	int n = 0;

	assert_non_null(d);
	text[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		o += (size_t)snprintf(text + o, size - o, "%s,", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void new_file_round_trip(unsigned flags)
{
	struct file_new f;
	char names[512], path[192];

	assert_int_equal(file_new_open(&f, tmpdir, "x.iso", 0644, flags, &e),
	                 0);
	assert_true(f.fd >= 0);
	assert_int_equal(write(f.fd, "hello", 5), 5);
	if (flags & FILE_NEW_NAMED) {
		assert_int_equal(dir_names(names, sizeof names), 1);
		assert_true(strncmp(names, ".tmp-", 5) == 0);
		assert_non_null(strstr(names, "-x.iso,"));
	} else {
		/* ext4 and tmpfs have O_TMPFILE: no name at all yet */
		assert_string_equal(f.tmp, "");
		assert_int_equal(dir_names(names, sizeof names), 0);
	}
	assert_int_equal(file_new_commit(&f, &e), 0);
	assert_int_equal(f.fd, -1);
	assert_int_equal(dir_names(names, sizeof names), 1);
	assert_string_equal(names, "x.iso,");
	path_in_tmp(path, sizeof path, "x.iso");
	assert_int_equal(file_read_all(path, 100, &out, &e), 0);
	assert_string_equal(out.data, "hello");
}

static void test_file_new_gets_its_name_only_at_commit(void **state)
{
	(void)state;
	new_file_round_trip(0);
}

static void test_file_new_named_is_hidden_until_commit(void **state)
{
	(void)state;
	new_file_round_trip(FILE_NEW_NAMED);
}

static void discard_leaves_nothing(unsigned flags)
{
	struct file_new f;
	char names[512];

	assert_int_equal(file_new_open(&f, tmpdir, "y.iso", 0644, flags, &e),
	                 0);
	assert_int_equal(write(f.fd, "partial", 7), 7);
	file_new_discard(&f);
	assert_int_equal(f.fd, -1);
	assert_int_equal(dir_names(names, sizeof names), 0);
	file_new_discard(&f); /* twice: harmless */
	assert_int_equal(dir_names(names, sizeof names), 0);
}

static void test_file_new_discard_leaves_nothing(void **state)
{
	(void)state;
	discard_leaves_nothing(0);
}

static void test_file_new_named_discard_leaves_nothing(void **state)
{
	(void)state;
	discard_leaves_nothing(FILE_NEW_NAMED);
}

static void test_file_new_open_refuses_an_existing_name(void **state)
{
	struct file_new f;
	char path[192];

	(void)state;
	path_in_tmp(path, sizeof path, "z.iso");
	write_file(path, "old", 3);
	assert_int_equal(file_new_open(&f, tmpdir, "z.iso", 0644, 0, &e),
	                 -EEXIST);
	assert_non_null(strstr(e.msg, "z.iso: already exists"));
	assert_int_equal(f.fd, -1);
}

static void never_replaces(unsigned flags)
{
	struct file_new f;
	char names[512], path[192];

	assert_int_equal(file_new_open(&f, tmpdir, "w.iso", 0644, flags, &e),
	                 0);
	assert_int_equal(write(f.fd, "new", 3), 3);
	path_in_tmp(path, sizeof path, "w.iso");
	write_file(path, "old", 3); /* appears meanwhile */
	assert_int_equal(file_new_commit(&f, &e), -EEXIST);
	assert_int_equal(f.fd, -1);
	assert_int_equal(file_read_all(path, 100, &out, &e), 0);
	assert_string_equal(out.data, "old");
	assert_int_equal(dir_names(names, sizeof names), 1);
}

static void test_file_new_commit_never_replaces_a_file(void **state)
{
	(void)state;
	never_replaces(0);
}

static void test_file_new_named_commit_never_replaces_a_file(void **state)
{
	(void)state;
	never_replaces(FILE_NEW_NAMED);
}

static void test_file_new_refuses_a_name_with_a_slash(void **state)
{
	struct file_new f;
	char names[512];

	(void)state;
	assert_true(file_new_open(&f, tmpdir, "../v.iso", 0644, 0, &e) < 0);
	assert_int_equal(f.fd, -1);
	assert_int_equal(dir_names(names, sizeof names), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_file_lock_returns_fd_and_creates_file_0600),
	        T(test_file_lock_fd_is_close_on_exec),
	        T(test_file_lock_writes_our_pid),
	        T(test_file_lock_replaces_stale_longer_content_with_our_pid),
	        T(test_file_lock_twice_in_one_process_fails_with_ewouldblock),
	        T(test_file_lock_failure_names_the_holders_pid),
	        T(test_file_lock_failed_attempt_keeps_holders_pid_in_file),
	        T(test_file_lock_after_close_succeeds_again),
	        T(test_file_lock_held_by_child_process_fails_naming_its_pid),
	        T(test_file_lock_is_not_inherited_across_exec),
	        T(test_file_lock_in_missing_directory_fails_naming_path),
	        T(test_file_mkdir_p_creates_every_missing_component),
	        T(test_file_mkdir_p_gives_created_directories_mode_despite_umask),
	        T(test_file_mkdir_p_of_existing_directory_succeeds),
	        T(test_file_mkdir_p_accepts_trailing_and_double_slashes),
	        T(test_file_mkdir_p_through_a_regular_file_fails_naming_path),
	        T(test_file_mkdir_p_on_existing_regular_file_fails),
	        T(test_file_read_all_reads_whole_file_nul_terminated),
	        T(test_file_read_all_of_exactly_max_bytes_succeeds),
	        T(test_file_read_all_over_max_fails_with_e2big),
	        T(test_file_read_all_of_missing_file_fails_naming_path),
	        T(test_file_read_all_of_empty_file_gives_empty_text),
	        T(test_file_read_all_reads_proc_files_that_report_size_zero),
	        T(test_file_read_all_of_growing_proc_file_respects_max),
	        T(test_file_read_all_of_directory_fails),
	        T(test_file_new_gets_its_name_only_at_commit),
	        T(test_file_new_named_is_hidden_until_commit),
	        T(test_file_new_discard_leaves_nothing),
	        T(test_file_new_named_discard_leaves_nothing),
	        T(test_file_new_open_refuses_an_existing_name),
	        T(test_file_new_commit_never_replaces_a_file),
	        T(test_file_new_named_commit_never_replaces_a_file),
	        T(test_file_new_refuses_a_name_with_a_slash),
	};

	return cmocka_run_group_tests_name("lib/file", tests, NULL, NULL);
}
