/* The dir backend in a temporary directory with the real qemu-img: the
 * layout, allocation, growth, listings as Proxmox shows them, qcow2
 * snapshots, templates and clones, hostile volume ids refused everywhere,
 * and the program runner's failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/dir.h"
#include "store/run.h"

#define MiB (UINT64_C(1) << 20)

struct fixture {
	char root[64];
	char path[PATH_MAX];
	char volid[STORE_VOLID_MAX + 1];
	struct err e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/cairn-test-dir-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	if (store_dir_activate(f->root, &f->e) != 0) {
		fprintf(stderr, "activate: %s\n", f->e.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = {"rm", "-rf", f->root, NULL};
	struct err e;

	store_run(argv, 10000, NULL, &e);
	free(f);
	return 0;
}

static const char *at(struct fixture *f, const char *rel)
{
	snprintf(f->path, sizeof f->path, "%s/%s", f->root, rel);
	return f->path;
}

static void write_file(struct fixture *f, const char *rel, const char *text)
{
	FILE *fp = fopen(at(f, rel), "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static bool exists(struct fixture *f, const char *rel)
{
	struct stat st;

	return lstat(at(f, rel), &st) == 0;
}

static const char *alloc(struct fixture *f, uint32_t vmid, const char *format,
                         uint64_t bytes, const char *name)
{
	err_clear(&f->e);
	if (store_dir_alloc(f->root, "st", vmid, format, bytes, name, f->volid,
	                    sizeof f->volid, &f->e) != 0)
		fail_msg("alloc: %s", f->e.msg);
	return f->volid;
}

static uint64_t info_size(struct fixture *f, const char *volid,
                          const char *format)
{
	char got[16];
	uint64_t size = 0;

	err_clear(&f->e);
	if (store_dir_info(f->root, volid, &size, got, sizeof got, &f->e) != 0)
		fail_msg("info %s: %s", volid, f->e.msg);
	assert_string_equal(got, format);
	return size;
}

/* Runs qemu-io on a volume's file; its exit status says whether a
 * pattern read back as expected. */
static int qemu_io(struct fixture *f, const char *volid, const char *cmd)
{
	struct store_volid v;
	char path[PATH_MAX];
	const char *argv[] = {"qemu-io", "-f", "qcow2", "-c", cmd, path, NULL};

	assert_int_equal(store_volid_parse(volid, false, &v, &f->e), 0);
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 0);
	return store_run(argv, 10000, NULL, &f->e);
}

/* ------------------------------------------------------------ layout */

static void test_activate_creates_the_layout(void **state)
{
	static const char *const dirs[] = {"images",         "template/iso",
	                                   "template/cache", "dump",
	                                   "snippets",       "import"};
	struct fixture *f = *state;
	struct stat st;
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(dirs); i++) {
		assert_int_equal(stat(at(f, dirs[i]), &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0755);
	}
	/* Again: nothing to do. */
	assert_int_equal(store_dir_activate(f->root, &f->e), 0);
}

static void test_activate_refuses_a_missing_or_relative_root(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_dir_activate(at(f, "not-mounted"), &f->e),
	                 -ENOENT);
	assert_false(exists(f, "not-mounted"));
	assert_int_equal(store_dir_activate("relative/dir", &f->e), -EINVAL);
	assert_int_equal(store_dir_activate("/tmp/../etc", &f->e), -EINVAL);
	assert_int_equal(store_dir_activate("/tmp/a\nb", &f->e), -EINVAL);
}

static void test_status(void **state)
{
	struct fixture *f = *state;
	uint64_t total, used, avail;

	assert_int_equal(
	        store_dir_status(f->root, &total, &used, &avail, &f->e), 0);
	assert_true(total > 0);
	assert_true(used <= total);
	assert_true(avail <= total);
	assert_int_equal(store_dir_status("nope", &total, &used, &avail, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_status(at(f, "missing"), &total, &used,
	                                  &avail, &f->e),
	                 -ENOENT);
}

/* ------------------------------------------------------------ alloc */

static void test_alloc_raw(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_string_equal(alloc(f, 100, "raw", 4 * MiB, NULL),
	                    "st:100/vm-100-disk-0.raw");
	assert_int_equal(stat(at(f, "images/100/vm-100-disk-0.raw"), &st), 0);
	assert_int_equal(st.st_size, 4 * MiB);
	assert_true(info_size(f, "st:100/vm-100-disk-0.raw", "raw") == 4 * MiB);
}

static void test_alloc_qcow2(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(alloc(f, 100, "qcow2", 32 * MiB, NULL),
	                    "st:100/vm-100-disk-0.qcow2");
	assert_true(info_size(f, "st:100/vm-100-disk-0.qcow2", "qcow2") ==
	            32 * MiB);
}

static void test_alloc_rounds_up_to_kib(void **state)
{
	struct fixture *f = *state;

	alloc(f, 100, "raw", 1000, NULL);
	assert_true(info_size(f, f->volid, "raw") == 1024);
}

static void test_alloc_takes_the_next_free_disk_number(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(alloc(f, 100, "raw", MiB, NULL),
	                    "st:100/vm-100-disk-0.raw");
	assert_string_equal(alloc(f, 100, "qcow2", MiB, NULL),
	                    "st:100/vm-100-disk-1.qcow2");
	assert_string_equal(alloc(f, 100, "raw", MiB, NULL),
	                    "st:100/vm-100-disk-2.raw");
	/* A named one further up, and a foreign file, change nothing. */
	assert_string_equal(alloc(f, 100, "raw", MiB, "vm-100-disk-7.raw"),
	                    "st:100/vm-100-disk-7.raw");
	write_file(f, "images/100/notes.txt", "x");
	assert_int_equal(
	        store_dir_free(f->root, "st:100/vm-100-disk-1.qcow2", &f->e),
	        0);
	assert_string_equal(alloc(f, 100, "raw", MiB, NULL),
	                    "st:100/vm-100-disk-1.raw");
	assert_string_equal(alloc(f, 100, "qcow2", MiB, NULL),
	                    "st:100/vm-100-disk-3.qcow2");
	/* Another guest counts on its own. */
	assert_string_equal(alloc(f, 101, "raw", MiB, NULL),
	                    "st:101/vm-101-disk-0.raw");
}

static void test_alloc_never_overwrites(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	alloc(f, 100, "raw", 2 * MiB, "vm-100-disk-5.raw");
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB,
	                                 "vm-100-disk-5.raw", f->volid,
	                                 sizeof f->volid, &f->e),
	                 -EEXIST);
	assert_non_null(strstr(f->e.msg, "st:100/vm-100-disk-5.raw"));
	assert_int_equal(stat(at(f, "images/100/vm-100-disk-5.raw"), &st), 0);
	assert_int_equal(st.st_size, 2 * MiB);
	/* A qcow2 over an existing name neither. */
	write_file(f, "images/100/vm-100-disk-6.qcow2", "precious");
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "qcow2", MiB,
	                                 "vm-100-disk-6.qcow2", f->volid,
	                                 sizeof f->volid, &f->e),
	                 -EEXIST);
	assert_int_equal(stat(at(f, "images/100/vm-100-disk-6.qcow2"), &st), 0);
	assert_int_equal(st.st_size, 8);
}

static void test_alloc_bad_requests(void **state)
{
	struct fixture *f = *state;
	char volid[64];

	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", 0, NULL,
	                                 volid, sizeof volid, &f->e),
	                 -EINVAL);
	assert_string_equal(f->e.msg, "size 0");
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "vmdk", MiB, NULL,
	                                 volid, sizeof volid, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_alloc(f->root, "st", 99, "raw", MiB, NULL,
	                                 volid, sizeof volid, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB,
	                                 "vm-100-disk-1.qcow2", volid,
	                                 sizeof volid, &f->e),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "wrong extension"));
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB,
	                                 "vm-101-disk-1.raw", volid,
	                                 sizeof volid, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB,
	                                 "base-100-disk-1.raw", volid,
	                                 sizeof volid, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB,
	                                 "../../x.raw", volid, sizeof volid,
	                                 &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_alloc(f->root, "bad:id", 100, "raw", MiB,
	                                 NULL, volid, sizeof volid, &f->e),
	                 -EINVAL);
	/* No room for the answer: nothing is left behind. */
	assert_int_equal(store_dir_alloc(f->root, "st", 100, "raw", MiB, NULL,
	                                 volid, 8, &f->e),
	                 -ENOSPC);
	assert_false(exists(f, "images/100"));
}

/* ------------------------------------------------------------ free */

static void test_free_deletes_the_file_and_empty_dir(void **state)
{
	struct fixture *f = *state;

	alloc(f, 100, "qcow2", MiB, NULL);
	assert_int_equal(store_dir_free(f->root, f->volid, &f->e), 0);
	assert_false(exists(f, "images/100/vm-100-disk-0.qcow2"));
	/* The emptied VMID directory goes too. */
	assert_false(exists(f, "images/100"));
	assert_int_equal(store_dir_free(f->root, f->volid, &f->e), -ENOENT);
	assert_non_null(strstr(f->e.msg, "does not exist"));

	write_file(f, "template/iso/x.iso", "iso");
	assert_int_equal(store_dir_free(f->root, "st:iso/x.iso", &f->e), 0);
	assert_false(exists(f, "template/iso/x.iso"));
}

/* ------------------------------------------------------------ resize */

static void test_grow_and_refuse_shrink(void **state)
{
	struct fixture *f = *state;
	char raw[64];

	alloc(f, 100, "raw", MiB, NULL);
	strcpy(raw, f->volid);
	assert_int_equal(store_dir_resize(f->root, raw, 2 * MiB, &f->e), 0);
	assert_true(info_size(f, raw, "raw") == 2 * MiB);

	alloc(f, 100, "qcow2", MiB, NULL);
	assert_int_equal(store_dir_resize(f->root, f->volid, 3 * MiB, &f->e),
	                 0);
	assert_true(info_size(f, f->volid, "qcow2") == 3 * MiB);

	assert_int_equal(store_dir_resize(f->root, raw, MiB, &f->e), -EINVAL);
	assert_non_null(strstr(f->e.msg, "is 2M, asked for 1M"));
	assert_true(info_size(f, raw, "raw") == 2 * MiB);
	/* The same size changes nothing and is no error. */
	assert_int_equal(store_dir_resize(f->root, raw, 2 * MiB, &f->e), 0);
	assert_int_equal(store_dir_resize(f->root, raw, 0, &f->e), -EINVAL);
	assert_int_equal(store_dir_resize(f->root, "st:100/vm-100-disk-9.raw",
	                                  4 * MiB, &f->e),
	                 -ENOENT);
	write_file(f, "template/iso/x.iso", "iso");
	assert_int_equal(
	        store_dir_resize(f->root, "st:iso/x.iso", 4 * MiB, &f->e),
	        -EINVAL);
}

/* ------------------------------------------------------------ list */

static const char *row_str(const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static json_int_t row_int(const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static json_t *list(struct fixture *f, unsigned mask, uint32_t vmid)
{
	json_t *rows = NULL;

	err_clear(&f->e);
	if (store_dir_list(f->root, "st", mask, vmid, &rows, &f->e) != 0)
		fail_msg("list: %s", f->e.msg);
	return rows;
}

static void populate(struct fixture *f)
{
	alloc(f, 100, "raw", 2 * MiB, NULL);
	alloc(f, 101, "qcow2", 3 * MiB, NULL);
	write_file(f, "template/iso/Debian.iso", "0123456789");
	write_file(f, "template/cache/alpine.tar.zst", "tmpl");
	write_file(f, "dump/vzdump-qemu-100-2025_01_31-10_00_00.vma.zst",
	           "backup");
	write_file(f, "dump/vzdump-lxc-101-2025_02_01-11_30_00.tar.gz", "b");
	write_file(f, "snippets/user.yaml", "#cloud-config\n");
	write_file(f, "import/disk.vmdk", "vmdk");
	/* Not volumes: skipped. */
	write_file(f, "template/iso/readme.txt", "x");
	write_file(f, "template/iso/a b.iso", "x");
	write_file(f, "images/100/vm-100-disk-9.vmdk", "x");
	write_file(f, "images/100/vm-101-disk-0.raw", "wrong owner");
	write_file(f, "dump/vzdump-qemu-100-2025_01_31-10_00_00.log", "log");
	write_file(f, "snippets/.hidden", "x");
	assert_int_equal(mkdir(at(f, "images/abc"), 0755), 0);
	write_file(f, "images/abc/vm-100-disk-0.raw", "x");
}

static void test_list_everything_sorted(void **state)
{
	static const char *const volids[] = {
	        "st:100/vm-100-disk-0.raw",
	        "st:101/vm-101-disk-0.qcow2",
	        "st:backup/vzdump-lxc-101-2025_02_01-11_30_00.tar.gz",
	        "st:backup/vzdump-qemu-100-2025_01_31-10_00_00.vma.zst",
	        "st:import/disk.vmdk",
	        "st:iso/Debian.iso",
	        "st:snippets/user.yaml",
	        "st:vztmpl/alpine.tar.zst",
	};
	struct fixture *f = *state;
	json_t *rows, *row;
	size_t i;

	populate(f);
	rows = list(f, STORE_CT_ALL, 0);
	assert_int_equal(json_array_size(rows), CAIRN_ARRAY_SIZE(volids));
	json_array_foreach(rows, i, row)
	{
		assert_string_equal(row_str(row, "volid"), volids[i]);
		assert_true(row_int(row, "ctime") > 0);
		row_int(row, "size");
		row_str(row, "format");
		row_str(row, "content");
	}

	row = json_array_get(rows, 0);
	assert_string_equal(row_str(row, "format"), "raw");
	assert_string_equal(row_str(row, "content"), "images");
	assert_int_equal(row_int(row, "size"), 2 * MiB);
	assert_int_equal(row_int(row, "vmid"), 100);
	row_int(row, "used");
	assert_null(json_object_get(row, "parent"));

	row = json_array_get(rows, 1);
	assert_string_equal(row_str(row, "format"), "qcow2");
	assert_int_equal(row_int(row, "size"), 3 * MiB);
	assert_int_equal(row_int(row, "vmid"), 101);

	row = json_array_get(rows, 2);
	assert_string_equal(row_str(row, "format"), "tar.gz");
	assert_string_equal(row_str(row, "content"), "backup");
	assert_string_equal(row_str(row, "subtype"), "lxc");
	assert_int_equal(row_int(row, "vmid"), 101);
	{
		struct tm tm = {.tm_year = 125,
		                .tm_mon = 1,
		                .tm_mday = 1,
		                .tm_hour = 11,
		                .tm_min = 30,
		                .tm_isdst = -1};

		assert_int_equal(row_int(row, "ctime"), mktime(&tm));
	}

	row = json_array_get(rows, 3);
	assert_string_equal(row_str(row, "format"), "vma.zst");
	assert_string_equal(row_str(row, "subtype"), "qemu");
	assert_int_equal(row_int(row, "size"), 6);

	row = json_array_get(rows, 4);
	assert_string_equal(row_str(row, "format"), "vmdk");
	assert_string_equal(row_str(row, "content"), "import");
	assert_null(json_object_get(row, "vmid"));

	row = json_array_get(rows, 5);
	assert_string_equal(row_str(row, "format"), "iso");
	assert_string_equal(row_str(row, "content"), "iso");
	assert_int_equal(row_int(row, "size"), 10);

	row = json_array_get(rows, 6);
	assert_string_equal(row_str(row, "format"), "snippet");
	assert_string_equal(row_str(row, "content"), "snippets");

	row = json_array_get(rows, 7);
	assert_string_equal(row_str(row, "format"), "tzst");
	assert_string_equal(row_str(row, "content"), "vztmpl");
	json_decref(rows);
}

static void test_list_filters(void **state)
{
	struct fixture *f = *state;
	json_t *rows;

	populate(f);
	rows = list(f, STORE_CT_ISO, 0);
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(row_str(json_array_get(rows, 0), "volid"),
	                    "st:iso/Debian.iso");
	json_decref(rows);

	rows = list(f, STORE_CT_IMAGES | STORE_CT_BACKUP, 100);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(row_str(json_array_get(rows, 0), "volid"),
	                    "st:100/vm-100-disk-0.raw");
	assert_string_equal(
	        row_str(json_array_get(rows, 1), "volid"),
	        "st:backup/vzdump-qemu-100-2025_01_31-10_00_00.vma.zst");
	json_decref(rows);

	/* A guest's listing leaves out iso and vztmpl, as Proxmox's does. */
	rows = list(f, STORE_CT_ALL, 101);
	assert_int_equal(json_array_size(rows), 4);
	assert_string_equal(row_str(json_array_get(rows, 0), "volid"),
	                    "st:101/vm-101-disk-0.qcow2");
	assert_string_equal(row_str(json_array_get(rows, 2), "volid"),
	                    "st:import/disk.vmdk");
	json_decref(rows);

	/* rootdir alone: the same files, labelled for containers. */
	rows = list(f, STORE_CT_ROOTDIR, 0);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(row_str(json_array_get(rows, 0), "content"),
	                    "rootdir");
	json_decref(rows);

	rows = list(f, 0, 0);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);
}

static void test_list_shows_invalid_qcow2(void **state)
{
	struct fixture *f = *state;
	json_t *rows;

	assert_int_equal(mkdir(at(f, "images/100"), 0755), 0);
	write_file(f, "images/100/vm-100-disk-0.qcow2", "not a qcow2");
	rows = list(f, STORE_CT_IMAGES, 0);
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(row_str(json_array_get(rows, 0), "format"),
	                    "invalid");
	assert_int_equal(row_int(json_array_get(rows, 0), "size"), 11);
	json_decref(rows);
}

/* ------------------------------------------------------------ snapshots */

static json_t *snapshots(struct fixture *f, const char *volid)
{
	json_t *names = NULL;

	err_clear(&f->e);
	if (store_dir_snapshot_list(f->root, volid, &names, &f->e) != 0)
		fail_msg("snapshot list: %s", f->e.msg);
	return names;
}

static void test_qcow2_snapshots(void **state)
{
	struct fixture *f = *state;
	char volid[64];
	json_t *names;

	strcpy(volid, alloc(f, 100, "qcow2", 4 * MiB, NULL));
	names = snapshots(f, volid);
	assert_int_equal(json_array_size(names), 0);
	json_decref(names);

	assert_int_equal(qemu_io(f, volid, "write -P 0xaa 0 64k"), 0);
	assert_int_equal(store_dir_snapshot(f->root, volid, "first", &f->e), 0);
	assert_int_equal(store_dir_snapshot(f->root, volid, "first", &f->e),
	                 -EEXIST);
	assert_int_equal(qemu_io(f, volid, "write -P 0xbb 0 64k"), 0);
	assert_int_equal(store_dir_snapshot(f->root, volid, "second", &f->e),
	                 0);

	names = snapshots(f, volid);
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 0)),
	                    "first");
	assert_string_equal(json_string_value(json_array_get(names, 1)),
	                    "second");
	json_decref(names);

	assert_int_equal(
	        store_dir_snapshot_rollback(f->root, volid, "first", &f->e), 0);
	assert_int_equal(qemu_io(f, volid, "read -P 0xaa 0 64k"), 0);
	/* A pattern check that can fail does fail. */
	assert_int_equal(qemu_io(f, volid, "read -P 0xbb 0 64k"), -EIO);

	assert_int_equal(
	        store_dir_snapshot_delete(f->root, volid, "first", &f->e), 0);
	names = snapshots(f, volid);
	assert_int_equal(json_array_size(names), 1);
	assert_string_equal(json_string_value(json_array_get(names, 0)),
	                    "second");
	json_decref(names);

	assert_int_equal(
	        store_dir_snapshot_delete(f->root, volid, "first", &f->e),
	        -ENOENT);
	assert_int_equal(
	        store_dir_snapshot_rollback(f->root, volid, "gone", &f->e),
	        -ENOENT);
	assert_int_equal(store_dir_snapshot(f->root, volid, "1st", &f->e),
	                 -EINVAL);
	assert_int_equal(
	        store_dir_snapshot(f->root, volid, "a;rm -rf /", &f->e),
	        -EINVAL);
	assert_int_equal(store_dir_snapshot(f->root, volid, "-d", &f->e),
	                 -EINVAL);
}

static void test_raw_snapshots_are_refused(void **state)
{
	struct fixture *f = *state;
	json_t *names = NULL;

	alloc(f, 100, "raw", MiB, NULL);
	assert_int_equal(store_dir_snapshot(f->root, f->volid, "s", &f->e),
	                 -ENOTSUP);
	assert_non_null(strstr(f->e.msg, "snapshots need qcow2"));
	assert_int_equal(
	        store_dir_snapshot_rollback(f->root, f->volid, "s", &f->e),
	        -ENOTSUP);
	assert_int_equal(
	        store_dir_snapshot_delete(f->root, f->volid, "s", &f->e),
	        -ENOTSUP);
	assert_int_equal(
	        store_dir_snapshot_list(f->root, f->volid, &names, &f->e),
	        -ENOTSUP);
	assert_null(names);
}

/* ------------------------------------------------------------ templates */

static void backing_of(struct fixture *f, const char *volid, char *out,
                       size_t size)
{
	struct store_volid v;
	char path[PATH_MAX];
	const char *argv[] = {
	        "qemu-img", "info", "--output=json", "-f", "qcow2", path, NULL};
	struct buf text;
	json_t *info;
	const char *backing;

	assert_int_equal(store_volid_parse(volid, false, &v, &f->e), 0);
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 0);
	buf_init(&text, STORE_RUN_OUTPUT_MAX);
	assert_int_equal(store_run(argv, 10000, &text, &f->e), 0);
	info = json_loadb(text.data, text.len, 0, NULL);
	assert_non_null(info);
	assert_int_equal(json_get_str(info, "backing-filename", &backing, NULL),
	                 0);
	snprintf(out, size, "%s", backing);
	json_decref(info);
	buf_free(&text);
}

static void test_template_and_clones(void **state)
{
	struct fixture *f = *state;
	char base[128], linked[128], full[128], backing[128];
	struct stat st;
	json_t *rows, *row;

	alloc(f, 100, "qcow2", 8 * MiB, NULL);
	assert_int_equal(qemu_io(f, f->volid, "write -P 0x5a 0 64k"), 0);
	assert_int_equal(store_dir_template(f->root, "st", f->volid, base,
	                                    sizeof base, &f->e),
	                 0);
	assert_string_equal(base, "st:100/base-100-disk-0.qcow2");
	assert_false(exists(f, "images/100/vm-100-disk-0.qcow2"));
	assert_int_equal(stat(at(f, "images/100/base-100-disk-0.qcow2"), &st),
	                 0);
	assert_int_equal(st.st_mode & 0777, 0444);
	assert_int_equal(store_dir_template(f->root, "st", base, full,
	                                    sizeof full, &f->e),
	                 -EINVAL);
	/* Templates do not change. */
	assert_int_equal(store_dir_resize(f->root, base, 16 * MiB, &f->e),
	                 -EINVAL);
	assert_int_equal(store_dir_snapshot(f->root, base, "s", &f->e),
	                 -EINVAL);

	/* Linked: a qcow2 over the base, by a relative path. */
	assert_int_equal(store_dir_clone(f->root, "st", base, 200, true, NULL,
	                                 linked, sizeof linked, &f->e),
	                 0);
	assert_string_equal(
	        linked, "st:100/base-100-disk-0.qcow2/200/vm-200-disk-0.qcow2");
	backing_of(f, linked, backing, sizeof backing);
	assert_string_equal(backing, "../100/base-100-disk-0.qcow2");
	assert_true(info_size(f, linked, "qcow2") == 8 * MiB);
	assert_int_equal(qemu_io(f, linked, "read -P 0x5a 0 64k"), 0);

	/* The listing names the base in the id and as parent. */
	rows = list(f, STORE_CT_IMAGES, 200);
	assert_int_equal(json_array_size(rows), 1);
	row = json_array_get(rows, 0);
	assert_string_equal(row_str(row, "volid"), linked);
	assert_string_equal(row_str(row, "parent"),
	                    "../100/base-100-disk-0.qcow2");
	json_decref(rows);

	/* The base cannot go while the clone lives. */
	assert_int_equal(store_dir_free(f->root, base, &f->e), -EBUSY);
	assert_non_null(strstr(f->e.msg, "st:200/vm-200-disk-0.qcow2"));

	/* Full: a copy, from the template or from any image. */
	assert_int_equal(store_dir_clone(f->root, "st", base, 300, false, NULL,
	                                 full, sizeof full, &f->e),
	                 0);
	assert_string_equal(full, "st:300/vm-300-disk-0.qcow2");
	assert_true(info_size(f, full, "qcow2") == 8 * MiB);
	assert_int_equal(qemu_io(f, full, "read -P 0x5a 0 64k"), 0);
	alloc(f, 400, "raw", 2 * MiB, NULL);
	assert_int_equal(store_dir_clone(f->root, "st", f->volid, 401, false,
	                                 NULL, full, sizeof full, &f->e),
	                 0);
	assert_string_equal(full, "st:401/vm-401-disk-0.raw");
	assert_true(info_size(f, full, "raw") == 2 * MiB);

	/* Linked clones only from templates. */
	assert_int_equal(store_dir_clone(f->root, "st", f->volid, 402, true,
	                                 NULL, full, sizeof full, &f->e),
	                 -EINVAL);
	assert_false(exists(f, "images/402"));

	/* A linked clone turned template keeps naming its base. */
	assert_int_equal(store_dir_template(f->root, "st", linked, full,
	                                    sizeof full, &f->e),
	                 0);
	assert_string_equal(
	        full, "st:100/base-100-disk-0.qcow2/200/base-200-disk-0.qcow2");

	/* Once its clones are gone, the base goes. */
	assert_int_equal(store_dir_free(f->root, full, &f->e), 0);
	assert_int_equal(store_dir_free(f->root, base, &f->e), 0);
	assert_false(exists(f, "images/100"));
}

static void test_template_of_raw(void **state)
{
	struct fixture *f = *state;
	char base[64], linked[128];

	alloc(f, 100, "raw", MiB, NULL);
	assert_int_equal(store_dir_template(f->root, "st", f->volid, base,
	                                    sizeof base, &f->e),
	                 0);
	assert_string_equal(base, "st:100/base-100-disk-0.raw");
	assert_int_equal(store_dir_clone(f->root, "st", base, 101, true, NULL,
	                                 linked, sizeof linked, &f->e),
	                 0);
	assert_string_equal(
	        linked, "st:100/base-100-disk-0.raw/101/vm-101-disk-0.qcow2");
	assert_int_equal(store_dir_free(f->root, base, &f->e), -EBUSY);
}

static void test_template_never_replaces(void **state)
{
	struct fixture *f = *state;
	char out[64];

	alloc(f, 100, "raw", MiB, NULL);
	write_file(f, "images/100/base-100-disk-0.raw", "older template");
	assert_int_equal(store_dir_template(f->root, "st", f->volid, out,
	                                    sizeof out, &f->e),
	                 -EEXIST);
	assert_true(exists(f, "images/100/vm-100-disk-0.raw"));
}

static void test_other_storage_volumes_are_refused(void **state)
{
	struct fixture *f = *state;
	char out[128];

	alloc(f, 100, "qcow2", MiB, NULL);
	assert_int_equal(store_dir_template(f->root, "other",
	                                    "st:100/vm-100-disk-0.qcow2", out,
	                                    sizeof out, &f->e),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "not on storage other"));
	assert_int_equal(store_dir_clone(f->root, "other",
	                                 "st:100/vm-100-disk-0.qcow2", 101,
	                                 false, NULL, out, sizeof out, &f->e),
	                 -EINVAL);
}

/* ------------------------------------------------------------ hostile */

static const char *const hostile_volids[] = {
        "st:../../etc/passwd",
        "st:iso/../../../etc/shadow.iso",
        "st:/etc/passwd",
        "st:100/../101/vm-101-disk-0.raw",
        "st:100//vm-100-disk-0.raw",
        "st:100/vm-100-disk-0.raw\n",
        "st:snippets/a,b",
        "st:snippets/.ssh",
        "st:100/vm-200-disk-0.raw",
        "st:vm-100-disk-0",
        "../x:100/vm-100-disk-0.raw",
};

static void test_hostile_volids_are_refused_everywhere(void **state)
{
	struct fixture *f = *state;
	char out[256], format[16];
	uint64_t size;
	json_t *names = NULL;
	size_t i;

	alloc(f, 100, "raw", MiB, NULL);
	for (i = 0; i < CAIRN_ARRAY_SIZE(hostile_volids); i++) {
		const char *v = hostile_volids[i];

		assert_int_equal(store_dir_free(f->root, v, &f->e), -EINVAL);
		assert_int_equal(store_dir_resize(f->root, v, 4 * MiB, &f->e),
		                 -EINVAL);
		assert_int_equal(store_dir_info(f->root, v, &size, format,
		                                sizeof format, &f->e),
		                 -EINVAL);
		assert_int_equal(store_dir_snapshot(f->root, v, "s", &f->e),
		                 -EINVAL);
		assert_int_equal(
		        store_dir_snapshot_rollback(f->root, v, "s", &f->e),
		        -EINVAL);
		assert_int_equal(
		        store_dir_snapshot_delete(f->root, v, "s", &f->e),
		        -EINVAL);
		assert_int_equal(
		        store_dir_snapshot_list(f->root, v, &names, &f->e),
		        -EINVAL);
		assert_int_equal(store_dir_template(f->root, "st", v, out,
		                                    sizeof out, &f->e),
		                 -EINVAL);
		assert_int_equal(store_dir_clone(f->root, "st", v, 101, false,
		                                 NULL, out, sizeof out, &f->e),
		                 -EINVAL);
		assert_int_equal(store_dir_clone(f->root, "st", v, 101, true,
		                                 NULL, out, sizeof out, &f->e),
		                 -EINVAL);
	}
	assert_null(names);
	/* What was there still is. */
	assert_true(exists(f, "images/100/vm-100-disk-0.raw"));
	assert_true(info_size(f, "st:100/vm-100-disk-0.raw", "raw") == MiB);
}

static void test_path_rechecks_a_hand_made_volid(void **state)
{
	struct fixture *f = *state;
	struct store_volid v;
	char path[PATH_MAX];

	assert_int_equal(store_volid_parse("st:iso/a.iso", false, &v, &f->e),
	                 0);
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 0);
	assert_string_equal(path, at(f, "template/iso/a.iso"));
	strcpy(v.file, "../../../../etc/passwd.iso");
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 -EINVAL);
	assert_int_equal(
	        store_volid_parse("st:101/vm-101-disk-0.raw", false, &v, &f->e),
	        0);
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 0);
	assert_string_equal(path, at(f, "images/101/vm-101-disk-0.raw"));
	v.vmid = 102; /* the file says 101 */
	assert_int_equal(store_dir_path(f->root, &v, path, sizeof path, &f->e),
	                 -EINVAL);
}

/* ------------------------------------------------------------ run */

static void test_run_captures_stdout(void **state)
{
	const char *argv[] = {"printf", "hello %s", "world", NULL};
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(store_run(argv, 5000, &out, &e), 0);
	assert_string_equal(out.data, "hello world");
	buf_free(&out);
}

static void test_run_out_of_memory_fails_cleanly(void **state)
{
	const char *argv[] = {"printf", "hello", NULL};
	struct buf out;
	struct err e;

	(void)state;
	buf_init(&out, 1024);
	mem_fail_after(0);
	assert_int_equal(store_run(argv, 5000, &out, &e), -ENOMEM);
	mem_fail_reset();
	assert_non_null(strstr(e.msg, "out of memory"));
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void test_run_failure_names_the_last_stderr_line(void **state)
{
	const char *argv[] = {"sh", "-c",
	                      "echo first >&2; echo 'last words' >&2; "
	                      "echo; exit 3",
	                      NULL};
	const char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
	const char *missing[] = {"cairn-no-such-program", NULL};
	struct err e;

	(void)state;
	assert_int_equal(store_run(argv, 5000, NULL, &e), -EIO);
	assert_string_equal(e.msg, "sh: exit status 3: last words");
	assert_int_equal(store_run(killed, 5000, NULL, &e), -EIO);
	assert_string_equal(e.msg, "sh: killed by signal 9");
	assert_int_equal(store_run(missing, 5000, NULL, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "cairn-no-such-program"));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_run_timeout_kills_the_whole_group(void **state)
{
	/* The shell's child keeps the pipes open: only killing the group
	 * ends it. */
	const char *argv[] = {"sh", "-c", "sleep 30; echo done", NULL};
	uint64_t start = now_ms(), took;
	struct err e;

	(void)state;
	assert_int_equal(store_run(argv, 200, NULL, &e), -ETIMEDOUT);
	took = now_ms() - start;
	assert_true(took >= 200 && took < 3000);
	assert_string_equal(e.msg, "sh: timed out after 200 ms");
}

struct canceller {
	atomic_bool flag;
	unsigned after_ms;
};

static void *cancel_later(void *data)
{
	struct canceller *c = data;
	struct timespec ts = {.tv_sec = 0,
	                      .tv_nsec = (long)c->after_ms * 1000000};

	nanosleep(&ts, NULL);
	atomic_store(&c->flag, true);
	return NULL;
}

static void test_run_cancel_from_another_thread_kills_the_group(void **state)
{
	/* One that keeps its pipes open, one that closed them and only
	 * waits to be reaped: both end soon after the flag is set. */
	const char *open_pipes[] = {"sh", "-c", "sleep 30; echo done", NULL};
	const char *closed_pipes[] = {"sh", "-c",
	                              "exec >/dev/null 2>&1; sleep 30", NULL};
	const char *const *argvs[] = {open_pipes, closed_pipes};
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct canceller c = {.after_ms = 200};
		uint64_t start = now_ms(), took;
		pthread_t thread;
		struct err e;

		atomic_init(&c.flag, false);
		assert_int_equal(
		        pthread_create(&thread, NULL, cancel_later, &c), 0);
		assert_int_equal(store_run_cancellable(NULL, argvs[i], 60000,
		                                       &c.flag, NULL, &e),
		                 -ECANCELED);
		took = now_ms() - start;
		pthread_join(thread, NULL);
		assert_true(took >= 200 && took < 2000);
		assert_string_equal(e.msg, "sh: cancelled");
	}
}

static void test_run_cancelled_before_start_still_reaps(void **state)
{
	const char *argv[] = {"sleep", "30", NULL};
	atomic_bool flag;
	uint64_t start = now_ms();
	struct err e;

	(void)state;
	atomic_init(&flag, true);
	assert_int_equal(store_run_cancellable(NULL, argv, 0, &flag, NULL, &e),
	                 -ECANCELED);
	assert_true(now_ms() - start < 2000);
}

static void test_run_bounds_output(void **state)
{
	const char *argv[] = {"head", "-c", "2000000", "/dev/zero", NULL};
	const char *small[] = {"head", "-c", "100", "/dev/zero", NULL};
	struct buf out;
	struct err e;

	(void)state;
	assert_int_equal(store_run(argv, 10000, NULL, &e), -E2BIG);
	buf_init(&out, 10);
	assert_int_equal(store_run(small, 10000, &out, &e), -E2BIG);
	buf_free(&out);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_activate_creates_the_layout),
	        T(test_activate_refuses_a_missing_or_relative_root),
	        T(test_status),
	        T(test_alloc_raw),
	        T(test_alloc_qcow2),
	        T(test_alloc_rounds_up_to_kib),
	        T(test_alloc_takes_the_next_free_disk_number),
	        T(test_alloc_never_overwrites),
	        T(test_alloc_bad_requests),
	        T(test_free_deletes_the_file_and_empty_dir),
	        T(test_grow_and_refuse_shrink),
	        T(test_list_everything_sorted),
	        T(test_list_filters),
	        T(test_list_shows_invalid_qcow2),
	        T(test_qcow2_snapshots),
	        T(test_raw_snapshots_are_refused),
	        T(test_template_and_clones),
	        T(test_template_of_raw),
	        T(test_template_never_replaces),
	        T(test_other_storage_volumes_are_refused),
	        T(test_hostile_volids_are_refused_everywhere),
	        T(test_path_rechecks_a_hand_made_volid),
	        cmocka_unit_test(test_run_captures_stdout),
	        cmocka_unit_test(test_run_out_of_memory_fails_cleanly),
	        cmocka_unit_test(test_run_failure_names_the_last_stderr_line),
	        cmocka_unit_test(test_run_timeout_kills_the_whole_group),
	        cmocka_unit_test(test_run_bounds_output),
	        cmocka_unit_test(
	                test_run_cancel_from_another_thread_kills_the_group),
	        cmocka_unit_test(test_run_cancelled_before_start_still_reaps),
	};
#undef T

	return cmocka_run_group_tests_name("store/dir", tests, NULL, NULL);
}
