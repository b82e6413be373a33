/* Task ids and task logs: UPIDs exactly as Proxmox writes and reads them,
 * logs paged as Proxmox's /log, exit statuses from the last line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/task.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define EXAMPLE "UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:root@pam:"
#define TOKEN   "UPID:pve1:00000001:00000002:00000003:qmstop:100:root@pam!ci:"

static char tmpdir[64];
static struct err e;

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/cairn-test-task-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	err_clear(&e);
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
	mem_fail_reset();
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void log_file(const char *upid, char *path, size_t size)
{
	char name[TASK_LOG_NAME_MAX + 1];

	assert_int_equal(task_log_file_name(upid, name, sizeof name, &e), 0);
	snprintf(path, size, "%s/%s", tmpdir, name);
}

static char *read_file(const char *upid)
{
	static char text[64 * 1024];
	char path[256];
	ssize_t n;
	int fd;

	log_file(upid, path, sizeof path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, text, sizeof text - 1);
	assert_true(n >= 0);
	text[n] = '\0';
	close(fd);
	return text;
}

static void expect_refused(const char *text, const char *reason)
{
	struct task_upid u;

	err_clear(&e);
	assert_int_equal(task_upid_parse(text, &u, &e), -EINVAL);
	if (strstr(e.msg, reason) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, reason);
}

static const char *line_at(json_t *lines, size_t i, json_int_t *n)
{
	json_t *row = json_array_get(lines, i);

	assert_non_null(row);
	*n = json_integer_value(json_object_get(row, "n"));
	return json_string_value(json_object_get(row, "t"));
}

/* ------------------------------------------------------------- UPIDs */

static void test_upid_parse_proxmox_example(void **state)
{
	struct task_upid u;

	(void)state;
	assert_int_equal(task_upid_parse(EXAMPLE, &u, &e), 0);
	assert_string_equal(u.node, "pve1");
	assert_int_equal(u.pid, 0x1234);
	assert_int_equal(u.pstart, 0x1ABCD);
	assert_int_equal(u.starttime, 0x5F3E2A10);
	assert_string_equal(u.type, "qmstart");
	assert_string_equal(u.id, "100");
	assert_string_equal(u.user, "root@pam");
}

static void test_upid_round_trip(void **state)
{
	static const char *const texts[] = {
	        EXAMPLE,
	        TOKEN,
	        "UPID:n-1:7FFFFFFF:00000000:7FFFFFFF:vzdump::root@pam:",
	        "UPID:a:00000000:00000000:00000000:x:local-lvm:u@pve:",
	};
	struct task_upid u;
	char out[TASK_UPID_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(texts); i++) {
		assert_int_equal(task_upid_parse(texts[i], &u, &e), 0);
		assert_int_equal(task_upid_format(&u, out, sizeof out, &e), 0);
		assert_string_equal(out, texts[i]);
	}
}

static void test_upid_format_matches_proxmox(void **state)
{
	struct task_upid u = {
	        .node = "pve1",
	        .pid = 0x1234,
	        .pstart = 0x1abcd,
	        .starttime = 0x5f3e2a10,
	        .type = "qmstart",
	        .id = "100",
	        .user = "root@pam",
	};
	char out[TASK_UPID_MAX + 1];

	(void)state;
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), 0);
	assert_string_equal(out, EXAMPLE);

	snprintf(u.user, sizeof u.user, "root@pam!ci");
	u.id[0] = '\0';
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), 0);
	assert_string_equal(
	        out,
	        "UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart::root@pam!ci:");
}

static void test_upid_token_user(void **state)
{
	struct task_upid u;

	(void)state;
	assert_int_equal(task_upid_parse(TOKEN, &u, &e), 0);
	assert_string_equal(u.user, "root@pam!ci");
	assert_string_equal(u.type, "qmstop");
}

static void test_upid_parse_accepts_either_hex_case(void **state)
{
	struct task_upid u;

	(void)state;
	assert_int_equal(task_upid_parse("UPID:pve1:0000abcd:0001AbCd:"
	                                 "5f3e2a10:qmstart:100:root@pam:",
	                                 &u, &e),
	                 0);
	assert_int_equal(u.pid, 0xABCD);
	assert_int_equal(u.pstart, 0x1ABCD);
	assert_int_equal(u.starttime, 0x5F3E2A10);
}

static void test_upid_parse_pstart_nine_digits(void **state)
{
	struct task_upid u;

	(void)state;
	assert_int_equal(task_upid_parse("UPID:pve1:00001234:07FFFFFFF:"
	                                 "5F3E2A10:qmstart:100:root@pam:",
	                                 &u, &e),
	                 0);
	assert_int_equal(u.pstart, 0x7FFFFFFF);
	expect_refused("UPID:pve1:00001234:080000000:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pstart");
	/* Only pstart may have 9 digits. */
	expect_refused("UPID:pve1:000001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pid");
	expect_refused("UPID:pve1:00001234:0001ABCD:05F3E2A10:qmstart:100:"
	               "root@pam:",
	               "starttime");
}

static void test_upid_parse_empty_id(void **state)
{
	struct task_upid u;

	(void)state;
	assert_int_equal(task_upid_parse("UPID:pve1:00001234:0001ABCD:"
	                                 "5F3E2A10:srvreload::root@pam:",
	                                 &u, &e),
	                 0);
	assert_string_equal(u.id, "");
}

static void test_upid_parse_refusals(void **state)
{
	char long_upid[600];

	(void)state;
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam",
	               "fields");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:"
	               "root@pam:",
	               "fields");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:x:",
	               "fields");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:vm:100:"
	               "root@pam:",
	               "fields");
	expect_refused("upid:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "UPID:");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:\n",
	               "fields");
	expect_refused("UPID:pve1:80000000:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pid");
	expect_refused("UPID:pve1:00001234:80000000:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pstart");
	expect_refused("UPID:pve1:00001234:0001ABCD:80000000:qmstart:100:"
	               "root@pam:",
	               "starttime");
	expect_refused("UPID:pve1:0000123:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pid");
	expect_refused("UPID:pve1:0000123G:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "pid");
	expect_refused("UPID:pve1.example.com:00001234:0001ABCD:5F3E2A10:"
	               "qmstart:100:root@pam:",
	               "node");
	expect_refused("UPID:-pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "node");
	expect_refused("UPID:pve1-:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "node");
	expect_refused("UPID:pve_1:00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "node");
	expect_refused("UPID::00001234:0001ABCD:5F3E2A10:qmstart:100:"
	               "root@pam:",
	               "node");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:local/a:"
	               "root@pam:",
	               "id 'local/a' contains '/'");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:1 0:"
	               "root@pam:",
	               "id '1 0' contains a space");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:1\t0:"
	               "root@pam:",
	               "id");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10::100:root@pam:",
	               "type is empty");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100::",
	               "user is empty");
	expect_refused("UPID:pve1:00001234:0001ABCD:5F3E2A10:qm/start:100:"
	               "root@pam:",
	               "type");
	expect_refused("", "UPID:");

	/* Over 512 bytes, and a user longer than the struct holds. */
	snprintf(long_upid, sizeof long_upid,
	         "UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:%0*d:", 470,
	         0);
	assert_true(strlen(long_upid) > TASK_UPID_MAX);
	expect_refused(long_upid, "longer than 512");
	snprintf(long_upid, sizeof long_upid,
	         "UPID:pve1:00001234:0001ABCD:5F3E2A10:qmstart:100:%0*d:", 200,
	         0);
	expect_refused(long_upid, "user is longer");
}

static void test_upid_format_refusals_name_the_field(void **state)
{
	const struct task_upid good = {
	        .node = "pve1",
	        .type = "qmstart",
	        .id = "100",
	        .user = "root@pam",
	};
	struct task_upid u;
	char out[TASK_UPID_MAX + 1];

	(void)state;
	u = good;
	snprintf(u.node, sizeof u.node, "pve1.lan");
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "node 'pve1.lan'"));

	u = good;
	u.pid = 0x80000000;
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "pid"));
	u = good;
	u.pstart = UINT32_MAX;
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "pstart"));
	u = good;
	u.starttime = 0x80000000;
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "starttime"));

	u = good;
	snprintf(u.id, sizeof u.id, "vm:100");
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "id 'vm:100' contains ':'"));
	u = good;
	u.type[0] = '\0';
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "type is empty"));
	u = good;
	snprintf(u.user, sizeof u.user, "root pam");
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "user"));
	u = good;
	memset(u.type, 'x', sizeof u.type);
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "type"));

	u = good;
	assert_int_equal(task_upid_format(&u, out, 20, &e), -ERANGE);
	assert_int_equal(task_upid_format(&u, out, sizeof out, &e), 0);
}

static void test_pid_sequence_stays_in_range_and_wraps(void **state)
{
	uint32_t counter, a, b;

	(void)state;
	counter = task_pid_seed(1234, 5678);
	assert_true(counter >= 1 && counter <= TASK_UPID_NUM_MAX);
	assert_true(task_pid_seed(1234, 5678) != task_pid_seed(1235, 5678));
	assert_true(task_pid_seed(1234, 5678) != task_pid_seed(1234, 5679));
	assert_true(task_pid_seed(UINT32_MAX, UINT32_MAX) <= TASK_UPID_NUM_MAX);
	assert_true(task_pid_seed(0, 0) >= 1);

	a = task_next_pid(&counter);
	b = task_next_pid(&counter);
	assert_int_equal(b, a + 1);

	counter = TASK_UPID_NUM_MAX - 1;
	assert_int_equal(task_next_pid(&counter), TASK_UPID_NUM_MAX - 1);
	assert_int_equal(task_next_pid(&counter), TASK_UPID_NUM_MAX);
	assert_int_equal(task_next_pid(&counter), 1);
	assert_int_equal(task_next_pid(&counter), 2);

	counter = 0;
	assert_int_equal(task_next_pid(&counter), 1);
	counter = 0x80000000;
	assert_int_equal(task_next_pid(&counter), 1);
	assert_int_equal(counter, 2);
}

static void test_pstart_self_fits(void **state)
{
	uint32_t pstart = UINT32_MAX;

	(void)state;
	assert_int_equal(task_pstart_self(&pstart, &e), 0);
	assert_true(pstart <= TASK_UPID_NUM_MAX);
}

static void test_type_known(void **state)
{
	static const char *const known[] = {
	        "qmstart",   "qmstop",    "vzcreate", "qmigrate",  "qmpause",
	        "qmsuspend", "resize",    "hastart",  "srvreload", "aptupdate",
	        "download",  "imgdel",    "vncproxy", "startall",  "stopall",
	        "imgcopy",   "hamigrate",
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(known); i++)
		assert_true(task_type_known(known[i]));
	assert_false(task_type_known("qmStart"));
	assert_false(task_type_known("start"));
	assert_false(task_type_known(""));
	assert_false(task_type_known("qmstart "));
}

/* ------------------------------------------------------- file names */

static void test_log_file_name_is_safe_and_reversible(void **state)
{
	char name[TASK_LOG_NAME_MAX + 1], other[TASK_LOG_NAME_MAX + 1];

	(void)state;
	assert_int_equal(task_log_file_name(TOKEN, name, sizeof name, &e), 0);
	assert_string_equal(
	        name,
	        "UPID_pve1_00000001_00000002_00000003_qmstop_100_root@pam!ci_");

	/* '_' in a field is escaped, so shifting it across ':' cannot
	 * collide. */
	assert_int_equal(task_log_file_name("UPID:n:00000001:00000002:"
	                                    "00000003:a_b:c:u@pam:",
	                                    name, sizeof name, &e),
	                 0);
	assert_int_equal(task_log_file_name("UPID:n:00000001:00000002:"
	                                    "00000003:a:b_c:u@pam:",
	                                    other, sizeof other, &e),
	                 0);
	assert_string_equal(name,
	                    "UPID_n_00000001_00000002_00000003_a%5Fb_c_u@pam_");
	assert_string_not_equal(name, other);

	assert_int_equal(task_log_file_name("UPID:n:00000001:00000002:"
	                                    "00000003:a%:\xc3\xa9:u@pam:",
	                                    name, sizeof name, &e),
	                 0);
	assert_string_equal(
	        name, "UPID_n_00000001_00000002_00000003_a%25_%C3%A9_u@pam_");

	assert_int_equal(task_log_file_name("UPID:n:1:2:3:a:b:c:", name,
	                                    sizeof name, &e),
	                 -EINVAL);
	assert_int_equal(task_log_file_name(TOKEN, name, 10, &e), -ERANGE);
}

static void test_log_file_name_long_upid_is_hashed(void **state)
{
	char upid[TASK_UPID_MAX + 1], upid2[TASK_UPID_MAX + 1];
	char name[TASK_LOG_NAME_MAX + 1], other[TASK_LOG_NAME_MAX + 1];

	(void)state;
	snprintf(upid, sizeof upid,
	         "UPID:pve1:00000001:00000002:00000003:qmstart:100:%0*d:", 180,
	         1);
	snprintf(upid2, sizeof upid2,
	         "UPID:pve1:00000001:00000002:00000003:qmstart:100:%0*d:", 180,
	         2);
	assert_int_equal(task_log_file_name(upid, name, sizeof name, &e), 0);
	assert_int_equal(task_log_file_name(upid2, other, sizeof other, &e), 0);
	assert_int_equal(strlen(name), TASK_LOG_NAME_MAX);
	assert_int_equal(name[TASK_LOG_NAME_MAX - 17], '~');
	assert_memory_equal(name, "UPID_pve1_00000001", 18);
	assert_string_not_equal(name, other);
	assert_null(strchr(name, '/'));
	assert_null(strchr(name, ':'));
}

/* -------------------------------------------------------------- logs */

static void test_log_create_append_finish_read(void **state)
{
	struct task_log *l = NULL;
	json_t *lines = NULL;
	unsigned total = 0;
	json_int_t n;
	struct stat st;
	char path[256];
	mode_t old_umask;

	(void)state;
	old_umask = umask(022);
	assert_int_equal(
	        task_log_create(tmpdir, EXAMPLE, "start VM 100", &l, &e), 0);
	umask(old_umask);
	assert_int_equal(task_log_append(l, "disk %s ready", "scsi0"), 0);
	assert_int_equal(task_log_finish(l, NULL), 0);

	log_file(EXAMPLE, path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_string_equal(read_file(EXAMPLE),
	                    "start VM 100\ndisk scsi0 ready\nTASK OK\n");

	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e), 0);
	assert_int_equal(total, 3);
	assert_int_equal(json_array_size(lines), 3);
	assert_string_equal(line_at(lines, 0, &n), "start VM 100");
	assert_int_equal(n, 1);
	assert_string_equal(line_at(lines, 2, &n), "TASK OK");
	assert_int_equal(n, 3);
	json_decref(lines);
}

static void test_log_read_pages(void **state)
{
	struct task_log *l = NULL;
	json_t *lines = NULL;
	unsigned total = 0, i;
	json_int_t n;

	(void)state;
	assert_int_equal(task_log_create(tmpdir, EXAMPLE, "line 1", &l, &e), 0);
	for (i = 2; i <= 120; i++)
		assert_int_equal(task_log_append(l, "line %u", i), 0);
	assert_int_equal(task_log_finish(l, NULL), 0); /* line 121 */

	/* limit 0: Proxmox's default of 50. */
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e), 0);
	assert_int_equal(total, 121);
	assert_int_equal(json_array_size(lines), 50);
	assert_string_equal(line_at(lines, 49, &n), "line 50");
	assert_int_equal(n, 50);
	json_decref(lines);

	/* start counts from 0, n from 1. */
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 10, 5, &lines, &total, &e), 0);
	assert_int_equal(total, 121);
	assert_int_equal(json_array_size(lines), 5);
	assert_string_equal(line_at(lines, 0, &n), "line 11");
	assert_int_equal(n, 11);
	assert_string_equal(line_at(lines, 4, &n), "line 15");
	assert_int_equal(n, 15);
	json_decref(lines);

	/* The last page is short. */
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 100, 50, &lines, &total, &e), 0);
	assert_int_equal(json_array_size(lines), 21);
	assert_string_equal(line_at(lines, 20, &n), "TASK OK");
	assert_int_equal(n, 121);
	json_decref(lines);

	/* Beyond the end: [] with the total. */
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 121, 50, &lines, &total, &e), 0);
	assert_int_equal(json_array_size(lines), 0);
	assert_int_equal(total, 121);
	json_decref(lines);
	assert_int_equal(task_log_read(tmpdir, EXAMPLE, UINT32_MAX, UINT32_MAX,
	                               &lines, &total, &e),
	                 0);
	assert_int_equal(json_array_size(lines), 0);
	json_decref(lines);

	/* A huge limit is clamped, not refused. */
	assert_int_equal(task_log_read(tmpdir, EXAMPLE, 0, UINT32_MAX, &lines,
	                               &total, &e),
	                 0);
	assert_int_equal(json_array_size(lines), 121);
	json_decref(lines);
}

static void test_log_append_splits_lines(void **state)
{
	struct task_log *l = NULL;

	(void)state;
	assert_int_equal(
	        task_log_create(tmpdir, EXAMPLE, "first\nsecond", &l, &e), 0);
	assert_int_equal(task_log_append(l, "a\nb\r\n\nc\n"), 0);
	assert_int_equal(task_log_append(l, "%s", ""), 0);
	assert_int_equal(task_log_append(l, "x%cy", 0), 0);
	task_log_close(l);
	assert_string_equal(read_file(EXAMPLE),
	                    "first\nsecond\na\nb\n\nc\n\nx y\n");
}

static void test_log_append_cuts_long_lines(void **state)
{
	struct task_log *l = NULL;
	char *long_line;
	json_t *lines = NULL;
	unsigned total = 0;
	json_int_t n;
	const char *t;

	(void)state;
	long_line = malloc(10001);
	assert_non_null(long_line);
	memset(long_line, 'x', 10000);
	long_line[10000] = '\0';
	/* A 2-byte character across the cut goes whole to the cut. */
	memcpy(long_line + TASK_LOG_LINE_MAX - 1, "\xc3\xa9", 2);

	assert_int_equal(task_log_create(tmpdir, EXAMPLE, "cut", &l, &e), 0);
	assert_int_equal(task_log_append(l, "%s\nshort", long_line), 0);
	assert_int_equal(task_log_finish(l, long_line), 0);
	free(long_line);

	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e), 0);
	assert_int_equal(total, 4);
	t = line_at(lines, 1, &n);
	assert_int_equal(strlen(t), TASK_LOG_LINE_MAX - 1);
	assert_string_equal(line_at(lines, 2, &n), "short");
	t = line_at(lines, 3, &n);
	assert_int_equal(strlen(t), TASK_LOG_LINE_MAX);
	assert_memory_equal(t, "TASK ERROR: xxx", 15);
	json_decref(lines);
}

static void test_log_create_refuses_existing(void **state)
{
	struct task_log *l = NULL, *again = NULL;

	(void)state;
	assert_int_equal(task_log_create(tmpdir, EXAMPLE, "one", &l, &e), 0);
	assert_int_equal(task_log_create(tmpdir, EXAMPLE, "two", &again, &e),
	                 -EEXIST);
	assert_null(again);
	assert_non_null(strstr(e.msg, "create task log"));
	assert_int_equal(task_log_finish(l, NULL), 0);
	assert_string_equal(read_file(EXAMPLE), "one\nTASK OK\n");

	assert_int_equal(task_log_create(tmpdir, "UPID:bad", "x", &again, &e),
	                 -EINVAL);
	assert_int_equal(task_log_create("/nonexistent-cairn-dir", EXAMPLE, "x",
	                                 &again, &e),
	                 -ENOENT);
}

static void test_log_error_last_line_and_exit_status(void **state)
{
	struct task_log *l = NULL;
	char last[128], status[128];

	(void)state;
	assert_int_equal(
	        task_log_create(tmpdir, EXAMPLE, "start VM 100", &l, &e), 0);
	assert_int_equal(task_log_finish(l, "VM 100 already running\nmore"), 0);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e), 0);
	assert_string_equal(last, "TASK ERROR: VM 100 already running");
	task_exitstatus_from_last_line(last, status, sizeof status);
	assert_string_equal(status, "VM 100 already running");

	assert_int_equal(task_log_create(tmpdir, TOKEN, "stop VM 100", &l, &e),
	                 0);
	assert_int_equal(task_log_finish(l, ""), 0);
	assert_int_equal(
	        task_log_last_line(tmpdir, TOKEN, last, sizeof last, &e), 0);
	assert_string_equal(last, "TASK ERROR: unknown error");

	/* Cut to fit. */
	assert_int_equal(task_log_last_line(tmpdir, TOKEN, last, 5, &e), 0);
	assert_string_equal(last, "TASK");
}

static void test_log_ok_exit_status(void **state)
{
	struct task_log *l = NULL;
	char last[128], status[128];

	(void)state;
	assert_int_equal(
	        task_log_create(tmpdir, EXAMPLE, "start VM 100", &l, &e), 0);
	assert_int_equal(task_log_finish(l, NULL), 0);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e), 0);
	task_exitstatus_from_last_line(last, status, sizeof status);
	assert_string_equal(status, "OK");
}

static void test_log_closed_without_last_line(void **state)
{
	struct task_log *l = NULL;
	char last[128], status[128];

	(void)state;
	assert_int_equal(
	        task_log_create(tmpdir, EXAMPLE, "start VM 100", &l, &e), 0);
	assert_int_equal(task_log_append(l, "starting qemu"), 0);
	task_log_close(l);
	task_log_close(NULL);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e), 0);
	assert_string_equal(last, "starting qemu");
	task_exitstatus_from_last_line(last, status, sizeof status);
	assert_string_equal(status, "unexpected status");
}

static void test_log_missing_is_enoent(void **state)
{
	json_t *lines = NULL;
	unsigned total = 0;
	char last[64];

	(void)state;
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e),
	        -ENOENT);
	assert_null(lines);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e),
	        -ENOENT);
	assert_int_equal(
	        task_log_read(tmpdir, "UPID:x", 0, 0, &lines, &total, &e),
	        -EINVAL);
}

/* A log someone else wrote: no final newline, bytes that are not UTF-8,
 * an over-long line, and a FIFO where a log should be. */
static void test_log_read_foreign_file(void **state)
{
	static char text[3 * TASK_LOG_LINE_MAX];
	json_t *lines = NULL;
	unsigned total = 0;
	json_int_t n;
	char path[256], last[64];
	FILE *f;

	(void)state;
	log_file(EXAMPLE, path, sizeof path);
	f = fopen(path, "w");
	assert_non_null(f);
	memset(text, 'y', sizeof text - 1);
	fprintf(f, "caf\xc3\xa9 \xff\xc3\n%s\nhalf", text);
	fclose(f);

	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e), 0);
	assert_int_equal(total, 3);
	assert_string_equal(line_at(lines, 0, &n), "caf\xc3\xa9 ??");
	assert_int_equal(strlen(line_at(lines, 1, &n)), TASK_LOG_LINE_MAX);
	assert_string_equal(line_at(lines, 2, &n), "half");
	assert_int_equal(n, 3);
	json_decref(lines);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e), 0);
	assert_string_equal(last, "half");

	/* An empty log. */
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(
	        task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e), 0);
	assert_int_equal(total, 0);
	assert_int_equal(json_array_size(lines), 0);
	json_decref(lines);
	assert_int_equal(
	        task_log_last_line(tmpdir, EXAMPLE, last, sizeof last, &e), 0);
	assert_string_equal(last, "");

	log_file(TOKEN, path, sizeof path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(task_log_read(tmpdir, TOKEN, 0, 0, &lines, &total, &e),
	                 -EINVAL);
	assert_int_equal(
	        task_log_last_line(tmpdir, TOKEN, last, sizeof last, &e),
	        -EINVAL);
}

static void test_exitstatus_mapping(void **state)
{
	static const char *const cases[][2] = {
	        {"TASK OK", "OK"},
	        {"TASK ERROR: VM 100 not running", "VM 100 not running"},
	        {"TASK WARNINGS: 3", "WARNINGS: 3"},
	        {"TASK ERROR: ", "unexpected status"},
	        {"TASK WARNINGS: ", "unexpected status"},
	        {"TASK WARNINGS: 3x", "unexpected status"},
	        {"TASK OK ", "unexpected status"},
	        {"task ok", "unexpected status"},
	        {"", "unexpected status"},
	        {"starting qemu", "unexpected status"},
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		task_exitstatus_from_last_line(cases[i][0], out, sizeof out);
		assert_string_equal(out, cases[i][1]);
	}
	task_exitstatus_from_last_line("TASK ERROR: long message", out, 5);
	assert_string_equal(out, "long");
}

/* Every allocation failure surfaces as -ENOMEM and leaks nothing (the
 * sanitizer build checks the leaks); the log file stays consistent. */
static void test_allocation_failures(void **state)
{
	struct task_log *l = NULL;
	json_t *lines = NULL;
	unsigned total = 0;
	long i;
	int rv;

	(void)state;
	json_set_alloc_funcs(mem_alloc, mem_free);
	for (i = 0;; i++) {
		mem_fail_after(i);
		rv = task_log_create(tmpdir, EXAMPLE, "x", &l, &e);
		mem_fail_reset();
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
	}
	assert_int_equal(task_log_append(l, "y"), 0);
	mem_fail_after(0);
	assert_int_equal(task_log_append(l, "lost"), -ENOMEM);
	assert_int_equal(task_log_finish(l, NULL), 0);
	mem_fail_reset();
	assert_string_equal(read_file(EXAMPLE), "x\ny\nTASK OK\n");

	for (i = 0;; i++) {
		mem_fail_after(i);
		rv = task_log_read(tmpdir, EXAMPLE, 0, 0, &lines, &total, &e);
		mem_fail_reset();
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
	}
	assert_true(i > 3);
	assert_int_equal(json_array_size(lines), 3);
	json_decref(lines);
	json_set_alloc_funcs(malloc, free);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_upid_parse_proxmox_example),
	        T(test_upid_round_trip),
	        T(test_upid_format_matches_proxmox),
	        T(test_upid_token_user),
	        T(test_upid_parse_accepts_either_hex_case),
	        T(test_upid_parse_pstart_nine_digits),
	        T(test_upid_parse_empty_id),
	        T(test_upid_parse_refusals),
	        T(test_upid_format_refusals_name_the_field),
	        T(test_pid_sequence_stays_in_range_and_wraps),
	        T(test_pstart_self_fits),
	        T(test_type_known),
	        T(test_log_file_name_is_safe_and_reversible),
	        T(test_log_file_name_long_upid_is_hashed),
	        T(test_log_create_append_finish_read),
	        T(test_log_read_pages),
	        T(test_log_append_splits_lines),
	        T(test_log_append_cuts_long_lines),
	        T(test_log_create_refuses_existing),
	        T(test_log_error_last_line_and_exit_status),
	        T(test_log_ok_exit_status),
	        T(test_log_closed_without_last_line),
	        T(test_log_missing_is_enoent),
	        T(test_log_read_foreign_file),
	        T(test_exitstatus_mapping),
	        T(test_allocation_failures),
	};

	return cmocka_run_group_tests_name("node/task", tests, NULL, NULL);
}
