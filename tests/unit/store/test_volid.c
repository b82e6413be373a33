/* Volume ids: every Proxmox form parses into what it names and formats back
 * to the same text; hostile names are refused with a message that says
 * why; sizes read and print as Proxmox's do. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "store/volid.h"

static void test_storage_ids(void **state)
{
	static const char *const good[] = {"local", "ceph",   "nfs-1",
	                                   "a.b_c", "Local2", "ab"};
	static const char *const bad[] = {
	        "",
	        "a",
	        "1abc",
	        "-ab",
	        "ab-",
	        "ab.",
	        "a b",
	        "a/b",
	        "a:b",
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	        "\xc3\xa9t\xc3\xa9"};
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(good); i++)
		assert_int_equal(store_id_check(good[i], &e), 0);
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		assert_int_equal(store_id_check(bad[i], &e), -EINVAL);
		assert_non_null(strstr(e.msg, "storage id"));
	}
	/* 64 is the longest allowed. */
	assert_int_equal(
	        store_id_check(
	                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                "aaaaaaaaaaaaa",
	                &e),
	        0);
}

static void test_content_types(void **state)
{
	unsigned mask = 99;
	char text[80];
	struct err e;

	(void)state;
	assert_int_equal(store_content_parse("images,rootdir", &mask, &e), 0);
	assert_int_equal(mask, STORE_CT_IMAGES | STORE_CT_ROOTDIR);
	assert_int_equal(
	        store_content_parse("vztmpl;iso backup,,snippets import,iso",
	                            &mask, &e),
	        0);
	assert_int_equal(mask, STORE_CT_VZTMPL | STORE_CT_ISO |
	                               STORE_CT_BACKUP | STORE_CT_SNIPPETS |
	                               STORE_CT_IMPORT);
	assert_int_equal(store_content_parse("", &mask, &e), 0);
	assert_int_equal(mask, 0);
	assert_int_equal(store_content_parse("none", &mask, &e), 0);
	assert_int_equal(mask, 0);

	mask = 7;
	assert_int_equal(store_content_parse("images,disks", &mask, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "'disks'"));
	assert_int_equal(mask, 7);

	store_content_format(STORE_CT_ALL, text, sizeof text);
	assert_string_equal(text,
	                    "backup,images,import,iso,rootdir,snippets,vztmpl");
	store_content_format(STORE_CT_ROOTDIR | STORE_CT_IMAGES, text,
	                     sizeof text);
	assert_string_equal(text, "images,rootdir");
	store_content_format(0, text, sizeof text);
	assert_string_equal(text, "");
	store_content_format(STORE_CT_ALL, text, 10);
	assert_true(strlen(text) < 10);

	assert_string_equal(store_content_name(STORE_CT_VZTMPL), "vztmpl");
	assert_string_equal(store_content_name(STORE_CT_IMPORT), "import");
	assert_string_equal(store_content_name(STORE_CT_ISO | STORE_CT_IMAGES),
	                    "");
}

struct form {
	const char *text;
	bool is_rbd;
	enum store_content content;
	uint32_t vmid;
	bool is_base;
	uint32_t disk;
	const char *format;
	const char *file;
	uint32_t base_vmid;
};

static const struct form forms[] = {
        {"local:100/vm-100-disk-0.raw", false, STORE_CT_IMAGES, 100, false, 0,
         "raw", "vm-100-disk-0.raw", 0},
        {"local:100/vm-100-disk-12.qcow2", false, STORE_CT_IMAGES, 100, false,
         12, "qcow2", "vm-100-disk-12.qcow2", 0},
        {"nfs.a:999999999/base-999999999-disk-1.qcow2", false, STORE_CT_IMAGES,
         999999999, true, 1, "qcow2", "base-999999999-disk-1.qcow2", 0},
        {"local:100/base-100-disk-3.raw", false, STORE_CT_IMAGES, 100, true, 3,
         "raw", "base-100-disk-3.raw", 0},
        {"local:101/vm-101-cloudinit.qcow2", false, STORE_CT_IMAGES, 101, false,
         STORE_DISK_NONE, "qcow2", "vm-101-cloudinit.qcow2", 0},
        {"local:101/vm-101-state-before_upgrade.raw", false, STORE_CT_IMAGES,
         101, false, STORE_DISK_NONE, "raw", "vm-101-state-before_upgrade.raw",
         0},
        {"local:100/base-100-disk-0.qcow2/101/vm-101-disk-2.qcow2", false,
         STORE_CT_IMAGES, 101, false, 2, "qcow2", "vm-101-disk-2.qcow2", 100},
        {"local:100/base-100-disk-0.raw/101/base-101-disk-0.qcow2", false,
         STORE_CT_IMAGES, 101, true, 0, "qcow2", "base-101-disk-0.qcow2", 100},
        {"ceph:vm-100-disk-0", true, STORE_CT_IMAGES, 100, false, 0, "raw",
         "vm-100-disk-0", 0},
        {"ceph:base-200-disk-1", true, STORE_CT_IMAGES, 200, true, 1, "raw",
         "base-200-disk-1", 0},
        {"ceph:vm-200-cloudinit", true, STORE_CT_IMAGES, 200, false,
         STORE_DISK_NONE, "raw", "vm-200-cloudinit", 0},
        {"ceph:base-200-disk-1/vm-201-disk-0", true, STORE_CT_IMAGES, 201,
         false, 0, "raw", "vm-201-disk-0", 200},
        {"local:iso/debian-12.5.0-amd64-netinst.iso", false, STORE_CT_ISO, 0,
         false, STORE_DISK_NONE, "iso", "debian-12.5.0-amd64-netinst.iso", 0},
        {"local:iso/UEFI.IMG", false, STORE_CT_ISO, 0, false, STORE_DISK_NONE,
         "iso", "UEFI.IMG", 0},
        {"local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", false,
         STORE_CT_VZTMPL, 0, false, STORE_DISK_NONE, "tzst",
         "debian-12-standard_12.7-1_amd64.tar.zst", 0},
        {"local:vztmpl/alpine.tar.gz", false, STORE_CT_VZTMPL, 0, false,
         STORE_DISK_NONE, "tgz", "alpine.tar.gz", 0},
        {"local:vztmpl/alpine.tar.xz", false, STORE_CT_VZTMPL, 0, false,
         STORE_DISK_NONE, "txz", "alpine.tar.xz", 0},
        {"local:vztmpl/plain.tar", false, STORE_CT_VZTMPL, 0, false,
         STORE_DISK_NONE, "tar", "plain.tar", 0},
        {"local:snippets/user-data.yaml", false, STORE_CT_SNIPPETS, 0, false,
         STORE_DISK_NONE, "snippet", "user-data.yaml", 0},
        {"local:snippets/hook", false, STORE_CT_SNIPPETS, 0, false,
         STORE_DISK_NONE, "snippet", "hook", 0},
        {"local:import/disk.qcow2", false, STORE_CT_IMPORT, 0, false,
         STORE_DISK_NONE, "qcow2", "disk.qcow2", 0},
        {"local:import/w2k.vmdk", false, STORE_CT_IMPORT, 0, false,
         STORE_DISK_NONE, "vmdk", "w2k.vmdk", 0},
        {"local:import/a+b.raw", false, STORE_CT_IMPORT, 0, false,
         STORE_DISK_NONE, "raw", "a+b.raw", 0},
        {"local:backup/vzdump-qemu-100-2025_01_31-10_00_00.vma.zst", false,
         STORE_CT_BACKUP, 100, false, STORE_DISK_NONE, "vma.zst",
         "vzdump-qemu-100-2025_01_31-10_00_00.vma.zst", 0},
        {"local:backup/vzdump-lxc-4242-2025_01_31-10_00_00.tar.gz", false,
         STORE_CT_BACKUP, 4242, false, STORE_DISK_NONE, "tar.gz",
         "vzdump-lxc-4242-2025_01_31-10_00_00.tar.gz", 0},
        {"local:backup/vzdump-qemu-100-x.vma", false, STORE_CT_BACKUP, 100,
         false, STORE_DISK_NONE, "vma", "vzdump-qemu-100-x.vma", 0},
        {"local:backup/vzdump-openvz-300-old.tgz", false, STORE_CT_BACKUP, 300,
         false, STORE_DISK_NONE, "tgz", "vzdump-openvz-300-old.tgz", 0},
        {"local:backup/manual.tar.lzo", false, STORE_CT_BACKUP, 0, false,
         STORE_DISK_NONE, "tar.lzo", "manual.tar.lzo", 0},
};

static void test_every_form_round_trips(void **state)
{
	struct store_volid v;
	char text[STORE_VOLID_MAX + 1];
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(forms); i++) {
		const struct form *f = &forms[i];

		err_clear(&e);
		if (store_volid_parse(f->text, f->is_rbd, &v, &e) != 0)
			fail_msg("%s: %s", f->text, e.msg);
		assert_int_equal(v.content, f->content);
		assert_int_equal(v.vmid, f->vmid);
		assert_int_equal(v.is_base, f->is_base);
		assert_int_equal(v.disk, f->disk);
		assert_string_equal(v.format, f->format);
		assert_string_equal(v.file, f->file);
		assert_int_equal(v.base_vmid, f->base_vmid);
		assert_string_equal(v.name, strchr(f->text, ':') + 1);
		assert_int_equal(
		        store_volid_format(&v, f->is_rbd, text, sizeof text),
		        0);
		assert_string_equal(text, f->text);
	}
}

static void test_linked_clone_names_its_base(void **state)
{
	struct store_volid v;
	struct err e;

	(void)state;
	assert_int_equal(
	        store_volid_parse(
	                "local:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2",
	                false, &v, &e),
	        0);
	assert_string_equal(v.storage, "local");
	assert_int_equal(v.base_vmid, 100);
	assert_string_equal(v.base_file, "base-100-disk-0.qcow2");
	assert_int_equal(v.vmid, 101);
}

static void test_format_builds_from_fields(void **state)
{
	struct store_volid v;
	char text[64];

	(void)state;
	memset(&v, 0, sizeof v);
	strcpy(v.storage, "local");
	v.content = STORE_CT_IMAGES;
	v.vmid = 100;
	strcpy(v.file, "vm-100-disk-1.qcow2");
	assert_int_equal(store_volid_format(&v, false, text, sizeof text), 0);
	assert_string_equal(text, "local:100/vm-100-disk-1.qcow2");

	/* An owner unlike the file's, on dir and on rbd. */
	v.vmid = 101;
	assert_int_equal(store_volid_format(&v, false, text, sizeof text),
	                 -EINVAL);
	strcpy(v.file, "vm-100-disk-1");
	assert_int_equal(store_volid_format(&v, true, text, sizeof text),
	                 -EINVAL);
	v.vmid = 100;
	assert_int_equal(store_volid_format(&v, true, text, sizeof text), 0);
	assert_string_equal(text, "local:vm-100-disk-1");
	/* Too small a buffer. */
	assert_int_equal(store_volid_format(&v, true, text, 8), -ENOSPC);

	/* Hostile file names do not format either. */
	memset(&v, 0, sizeof v);
	strcpy(v.storage, "local");
	v.content = STORE_CT_ISO;
	strcpy(v.file, "../../etc/passwd.iso");
	assert_int_equal(store_volid_format(&v, false, text, sizeof text),
	                 -EINVAL);
	strcpy(v.file, "ok.iso");
	assert_int_equal(store_volid_format(&v, false, text, sizeof text), 0);
	assert_string_equal(text, "local:iso/ok.iso");
	v.content = STORE_CT_ISO | STORE_CT_IMPORT;
	assert_int_equal(store_volid_format(&v, false, text, sizeof text),
	                 -EINVAL);
}

struct hostile {
	const char *text;
	bool is_rbd;
	const char *says; /* a part of the message */
};

static const struct hostile hostiles[] = {
        {"", false, "empty"},
        {"local", false, "no ':'"},
        {"local:", false, "no volume name"},
        {":iso/a.iso", false, "storage id"},
        {"1local:iso/a.iso", false, "storage id"},
        {"lo cal:iso/a.iso", false, "whitespace"},
        {"local:iso/../../etc/shadow.iso", false, "'..'"},
        {"local:iso/..", false, "'..'"},
        {"local:../100/vm-100-disk-0.raw", false, "'..'"},
        {"local:/etc/passwd", false, "starts with '/'"},
        {"local:iso//a.iso", false, "'//'"},
        {"local:iso/", false, "ends with '/'"},
        {"local:iso/a/b.iso", false, "too many '/'"},
        {"local:iso/.hidden.iso", false, "starts with '.'"},
        {"local:iso/a b.iso", false, "whitespace"},
        {"local:iso/a\tb.iso", false, "control character"},
        {"local:iso/a\nb.iso", false, "control character"},
        {"local:iso/a\x7f.iso", false, "control character"},
        {"local:iso/\xc3\xa9.iso", false, "non-ASCII"},
        {"local:iso/a,media=cdrom.iso", false, "','"},
        {"local:iso/a=b.iso", false, "'='"},
        {"local:iso/a:b.iso", false, "':'"},
        {"local:iso/a\\b.iso", false, "'\\'"},
        {"local:snippets/x\"y", false, "quote"},
        {"local:iso/a.exe", false, ".iso or .img"},
        {"local:iso/.iso", false, "starts with '.'"},
        {"local:vztmpl/a.tar.rar", false, "container template"},
        {"local:backup/a.zip", false, "a backup ends"},
        {"local:backup/vzdump-qemu-99-x.vma", false, "VMID"},
        {"local:import/a.exe", false, "an import ends"},
        {"local:etc/passwd", false, "unknown volume type 'etc'"},
        {"local:100/vm-101-disk-0.raw", false, "differs"},
        {"local:100/vm-100-disk-0.vmdk", false, "an image file is"},
        {"local:100/vm-100-disk-0", false, "an image file is"},
        {"local:100/vm-100-disk-.raw", false, "an image file is"},
        {"local:100/vm-100-disk-01.raw", false, "an image file is"},
        {"local:100/vm-100-foo.raw", false, "an image file is"},
        {"local:100/vm-100-state-1x.raw", false, "an image file is"},
        {"local:99/vm-99-disk-0.raw", false, "VMID directory"},
        {"local:0100/vm-0100-disk-0.raw", false, "VMID directory"},
        {"local:1000000000/vm-1000000000-disk-0.raw", false, "VMID directory"},
        {"local:100", false, "an image is VMID/FILE"},
        {"local:100/vm-100-disk-0.raw/101", false, "an image is VMID/FILE"},
        {"local:100/vm-100-disk-0.raw/101/vm-101-disk-0.qcow2", false,
         "base of a linked clone"},
        {"local:101/base-100-disk-0.raw/102/vm-102-disk-0.qcow2", false,
         "differs"},
        {"local:100/base-100-disk-0.raw/101/vm-101-disk-0.raw", false,
         "linked clone is qcow2"},
        {"local:1/2/3/4/5", false, "too many '/'"},
        {"local:iso", false, "expected TYPE/NAME"},
        {"ceph:iso/a.iso", true, "only images"},
        {"ceph:vm-100-disk-0.raw", true, "an rbd image is"},
        {"ceph:100/vm-100-disk-0", true, "only images"},
        {"ceph:vm-100-disk-0/vm-101-disk-0", true, "base of a linked clone"},
        {"ceph:base-100-disk-0/vm-101-disk-0/x", true, "too many '/'"},
};

static void test_hostile_names_are_refused(void **state)
{
	struct store_volid v;
	struct err e;
	size_t i;

	(void)state;
	assert_true(CAIRN_ARRAY_SIZE(hostiles) >= 25);
	for (i = 0; i < CAIRN_ARRAY_SIZE(hostiles); i++) {
		const struct hostile *h = &hostiles[i];

		err_clear(&e);
		if (store_volid_parse(h->text, h->is_rbd, &v, &e) != -EINVAL)
			fail_msg("accepted '%s'", h->text);
		if (strstr(e.msg, h->says) == NULL)
			fail_msg("'%s': message '%s' lacks '%s'", h->text,
			         e.msg, h->says);
	}
}

static void test_messages_never_echo_control_characters(void **state)
{
	struct store_volid v;
	struct err e;
	size_t i;

	(void)state;
	assert_int_equal(store_volid_parse("local:iso/a\n\x1b[31mred.iso",
	                                   false, &v, &e),
	                 -EINVAL);
	for (i = 0; e.msg[i] != '\0'; i++)
		assert_true((unsigned char)e.msg[i] >= 0x20 &&
		            (unsigned char)e.msg[i] < 0x7f);
}

static void test_lengths(void **state)
{
	char text[STORE_VOLID_MAX + 64];
	struct store_volid v;
	struct err e;

	(void)state;
	/* A 255-byte name is fine, 256 is not. */
	strcpy(text, "local:snippets/");
	memset(text + 15, 'a', 255);
	text[15 + 255] = '\0';
	assert_int_equal(store_volid_parse(text, false, &v, &e), 0);
	text[15 + 255] = 'a';
	text[15 + 256] = '\0';
	assert_int_equal(store_volid_parse(text, false, &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "longer than 255"));
	/* Over the whole-id limit. */
	memset(text, 'a', sizeof text - 1);
	memcpy(text, "local:", 6);
	text[STORE_VOLID_MAX + 1] = '\0';
	assert_int_equal(store_volid_parse(text, false, &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "longer than 1024"));
}

static void test_embedded_nul_is_refused(void **state)
{
	static const char text[] = "local:iso/a.iso\0.iso";
	struct store_volid v;
	struct err e;

	(void)state;
	assert_int_equal(
	        store_volid_parse_n(text, sizeof text - 1, false, &v, &e),
	        -EINVAL);
	assert_non_null(strstr(e.msg, "NUL"));
	assert_int_equal(store_volid_parse_n(text, 15, false, &v, &e), 0);
	assert_string_equal(v.file, "a.iso");
}

static void test_vmid_mismatch(void **state)
{
	struct store_volid v;
	struct err e;

	(void)state;
	assert_int_equal(store_volid_parse("local:100/vm-200-disk-0.qcow2",
	                                   false, &v, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "directory VMID 100 differs from the "
	                              "file's VMID 200"));
	assert_int_equal(store_volid_parse("local:200/base-100-disk-0.raw",
	                                   false, &v, &e),
	                 -EINVAL);
}

static void test_snapshot_names(void **state)
{
	struct err e;

	(void)state;
	assert_int_equal(store_snap_name_check("a", &e), 0);
	assert_int_equal(store_snap_name_check("before-upgrade_2", &e), 0);
	assert_int_equal(
	        store_snap_name_check(
	                "abcdefghijabcdefghijabcdefghijabcdefghij", &e),
	        0);
	assert_int_equal(
	        store_snap_name_check(
	                "abcdefghijabcdefghijabcdefghijabcdefghijk", &e),
	        -EINVAL);
	assert_int_equal(store_snap_name_check("", &e), -EINVAL);
	assert_int_equal(store_snap_name_check("1st", &e), -EINVAL);
	assert_int_equal(store_snap_name_check("a.b", &e), -EINVAL);
	assert_int_equal(store_snap_name_check("a b", &e), -EINVAL);
	assert_int_equal(store_snap_name_check("a/b", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "character 2"));
}

static uint64_t size_of(const char *text, uint64_t unit)
{
	uint64_t bytes = 0;
	struct err e;

	if (store_size_parse(text, unit, &bytes, &e) != 0)
		fail_msg("%s: %s", text, e.msg);
	return bytes;
}

static void test_size_parse(void **state)
{
	uint64_t bytes = 7;
	struct err e;

	(void)state;
	assert_true(size_of("32G", 1) == UINT64_C(32) << 30);
	assert_true(size_of("512M", 1) == UINT64_C(512) << 20);
	assert_true(size_of("4K", 1) == 4096);
	assert_true(size_of("2T", 1) == UINT64_C(2) << 40);
	assert_true(size_of("1GiB", 1) == UINT64_C(1) << 30);
	assert_true(size_of("1.5G", 1) == UINT64_C(3) << 29);
	assert_true(size_of("4096", 1) == 4096);
	/* POST .../content: a bare number is KiB. */
	assert_true(size_of("4096", 1024) == UINT64_C(4) << 20);
	assert_true(size_of("10G", 1024) == UINT64_C(10) << 30);
	assert_true(size_of("0.5", 1024) == 512);
	assert_true(size_of("8388607T", 1) == UINT64_C(8388607) << 40);

	assert_int_equal(store_size_parse("0", 1024, &bytes, &e), -EINVAL);
	assert_string_equal(e.msg, "size 0");
	assert_int_equal(store_size_parse("0G", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("0.0000001", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("0.1", 1, &bytes, &e), -EINVAL);
	assert_string_equal(e.msg, "size 0");
	assert_int_equal(store_size_parse("8388608T", 1, &bytes, &e), -ERANGE);
	assert_int_equal(
	        store_size_parse("99999999999999999999", 1, &bytes, &e),
	        -ERANGE);
	assert_int_equal(store_size_parse("9223372036854775807", 1, &bytes, &e),
	                 0);
	assert_int_equal(store_size_parse("9223372036854775808", 1, &bytes, &e),
	                 -ERANGE);
	assert_int_equal(store_size_parse("", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("G", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("-1G", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("1.G", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("1g", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("1GB", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("1 G", 1, &bytes, &e), -EINVAL);
	assert_int_equal(store_size_parse("1X", 1, &bytes, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "unknown unit"));
	assert_true(bytes == UINT64_C(9223372036854775807));
}

static void test_size_format(void **state)
{
	char text[24];

	(void)state;
	store_size_format(UINT64_C(32) << 30, text, sizeof text);
	assert_string_equal(text, "32G");
	store_size_format(UINT64_C(4985424) << 10, text, sizeof text);
	assert_string_equal(text, "4985424K");
	store_size_format(UINT64_C(1536) << 20, text, sizeof text);
	assert_string_equal(text, "1536M");
	store_size_format(UINT64_C(3) << 40, text, sizeof text);
	assert_string_equal(text, "3T");
	store_size_format(UINT64_C(4096) << 40, text, sizeof text);
	assert_string_equal(text, "4096T");
	store_size_format(1000, text, sizeof text);
	assert_string_equal(text, "1000");
	store_size_format(0, text, sizeof text);
	assert_string_equal(text, "0");
	store_size_format(UINT64_MAX, text, sizeof text);
	assert_string_equal(text, "18446744073709551615");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_storage_ids),
	        cmocka_unit_test(test_content_types),
	        cmocka_unit_test(test_every_form_round_trips),
	        cmocka_unit_test(test_linked_clone_names_its_base),
	        cmocka_unit_test(test_format_builds_from_fields),
	        cmocka_unit_test(test_hostile_names_are_refused),
	        cmocka_unit_test(test_messages_never_echo_control_characters),
	        cmocka_unit_test(test_lengths),
	        cmocka_unit_test(test_embedded_nul_is_refused),
	        cmocka_unit_test(test_vmid_mismatch),
	        cmocka_unit_test(test_snapshot_names),
	        cmocka_unit_test(test_size_parse),
	        cmocka_unit_test(test_size_format),
	};

	return cmocka_run_group_tests_name("store/volid", tests, NULL, NULL);
}
