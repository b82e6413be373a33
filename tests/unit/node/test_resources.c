/* Resource rows: guest configs read as Proxmox does, rows in Proxmox's
 * shape, live figures merged, offline nodes shown as such. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "node/resources.h"

static struct res_guest guest(uint32_t vmid, const char *type, const char *node,
                              const char *config)
{
	struct res_guest g;
	struct err e;

	memset(&g, 0, sizeof g);
	g.vmid = vmid;
	snprintf(g.type, sizeof g.type, "%s", type);
	snprintf(g.node, sizeof g.node, "%s", node);
	assert_int_equal(res_guest_from_config(&g, config, strlen(config), &e),
	                 0);
	return g;
}

static void test_sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(res_parse_size("32G", 3, &v), 0);
	assert_true(v == UINT64_C(32) << 30);
	assert_int_equal(res_parse_size("512M", 4, &v), 0);
	assert_true(v == UINT64_C(512) << 20);
	assert_int_equal(res_parse_size("1T", 2, &v), 0);
	assert_true(v == UINT64_C(1) << 40);
	assert_int_equal(res_parse_size("4096", 4, &v), 0);
	assert_true(v == 4096);
	assert_int_equal(res_parse_size("", 0, &v), -EINVAL);
	assert_int_equal(res_parse_size("G", 1, &v), -EINVAL);
	assert_int_equal(res_parse_size("12X", 3, &v), -EINVAL);
	assert_int_equal(res_parse_size("12GG", 4, &v), -EINVAL);
	assert_int_equal(res_parse_size("-1G", 3, &v), -EINVAL);
	assert_int_equal(res_parse_size("99999999999999999999", 20, &v),
	                 -EINVAL);
	assert_int_equal(res_parse_size("2000000000T", 11, &v), -EINVAL);
}

static void test_qemu_config(void **state)
{
	struct res_guest g =
	        guest(100, "qemu", "n1",
	              "{\"name\":\"web\",\"memory\":\"2048\",\"cores\":\"2\","
	              "\"sockets\":2,\"template\":\"1\",\"tags\":\"a,b c\","
	              "\"ide2\":\"local:iso/x.iso,media=cdrom,size=1G\","
	              "\"scsi0\":\"local:100/vm-100-disk-0.raw,size=32G\"}");

	(void)state;
	assert_string_equal(g.name, "web");
	assert_true(g.maxmem == UINT64_C(2048) << 20);
	assert_int_equal(g.maxcpu, 4);
	assert_true(g.is_template);
	assert_string_equal(g.tags, "a;b;c");
	assert_true(g.maxdisk == UINT64_C(32) << 30);
}

static void test_bootdisk_wins_and_cdrom_is_no_disk(void **state)
{
	struct res_guest g =
	        guest(100, "qemu", "n1",
	              "{\"bootdisk\":\"virtio1\",\"scsi0\":\"a:1,size=1G\","
	              "\"virtio1\":\"a:2,size=2G\"}");
	struct res_guest h = guest(101, "qemu", "n1",
	                           "{\"ide0\":\"a:iso/x.iso,media=cdrom,"
	                           "size=1G\"}");

	(void)state;
	assert_true(g.maxdisk == UINT64_C(2) << 30);
	assert_true(h.maxdisk == 0);
}

static void test_lxc_config_and_defaults(void **state)
{
	struct res_guest g =
	        guest(200, "lxc", "n2",
	              "{\"hostname\":\"ct\",\"name\":\"ignored\",\"cores\":3,"
	              "\"sockets\":\"4\",\"rootfs\":\"local:200/vm-200-disk-0."
	              "raw,size=8G\"}");
	struct res_guest d = guest(201, "qemu", "n2", "{}");

	(void)state;
	assert_string_equal(g.name, "ct");
	assert_int_equal(g.maxcpu, 3); /* no sockets for containers */
	assert_true(g.maxdisk == UINT64_C(8) << 30);
	assert_string_equal(d.name, "");
	assert_int_equal(d.maxcpu, 1);
	assert_true(d.maxmem == UINT64_C(512) << 20);
	assert_false(d.is_template);
}

static void test_odd_values_are_ignored_not_fatal(void **state)
{
	struct res_guest g =
	        guest(100, "qemu", "n1",
	              "{\"memory\":\"lots\",\"cores\":\"-2\",\"sockets\":[1],"
	              "\"name\":{\"x\":1},\"scsi0\":\"a:1,size=huge\"}");
	struct res_guest bad;
	struct err e;

	(void)state;
	assert_true(g.maxmem == UINT64_C(512) << 20);
	assert_int_equal(g.maxcpu, 1);
	assert_string_equal(g.name, "");
	assert_true(g.maxdisk == 0);
	memset(&bad, 0, sizeof bad);
	snprintf(bad.type, sizeof bad.type, "qemu");
	assert_int_equal(res_guest_from_config(&bad, "[1]", 3, &e), -EINVAL);
	assert_int_equal(res_guest_from_config(&bad, "{", 1, &e), -EINVAL);
}

static void test_filter(void **state)
{
	enum res_filter f;

	(void)state;
	assert_int_equal(res_filter_parse(NULL, &f), 0);
	assert_int_equal(f, RES_ALL);
	assert_int_equal(res_filter_parse("vm", &f), 0);
	assert_int_equal(f, RES_VM);
	assert_int_equal(res_filter_parse("storage", &f), 0);
	assert_int_equal(res_filter_parse("VM", &f), -EINVAL);
	assert_int_equal(res_filter_parse("", &f), -EINVAL);
}

static void test_fingerprint(void **state)
{
	char out[96];

	(void)state;
	res_fingerprint_colons("sha256:"
	                       "00112233445566778899aabbccddeeff"
	                       "00112233445566778899aabbccddeeff",
	                       out);
	assert_int_equal(strlen(out), 95);
	assert_memory_equal(out, "00:11:22:33", 11);
	assert_string_equal(out + 84, "CC:DD:EE:FF");
	res_fingerprint_colons("sha1:00", out);
	assert_string_equal(out, "");
	res_fingerprint_colons("sha256:zz", out);
	assert_string_equal(out, "");
}

/* Two nodes, n2 offline; n1 pushed a running guest 100. */
static void test_rows(void **state)
{
	Cairn__GuestRuntime running = CAIRN__GUEST_RUNTIME__INIT;
	Cairn__GuestRuntime *grs[] = {&running};
	Cairn__StorageRuntime local = CAIRN__STORAGE_RUNTIME__INIT;
	Cairn__StorageRuntime *srs[] = {&local};
	Cairn__NodeRuntime rt = CAIRN__NODE_RUNTIME__INIT;
	struct res_node nodes[2];
	struct res_guest guests[3];
	struct res_storage storage[2];
	struct res_input in;
	json_t *rows, *row;

	(void)state;
	running.has_vmid = true;
	running.vmid = 100;
	running.status = "running";
	running.has_cpu = true;
	running.cpu = 0.25;
	running.has_mem = true;
	running.mem = 1000;
	running.has_uptime = true;
	running.uptime = 42;
	local.storage = "local";
	local.has_active = local.active = true;
	local.has_total = true;
	local.total = 100;
	local.has_used = true;
	local.used = 40;
	rt.cpu = 0.5;
	rt.maxcpu = 2;
	rt.mem = 1;
	rt.maxmem = 2;
	rt.uptime = 7;
	rt.n_guests = 1;
	rt.guests = grs;
	rt.n_storage = 1;
	rt.storage = srs;
	memset(nodes, 0, sizeof nodes);
	snprintf(nodes[0].name, sizeof nodes[0].name, "n1");
	nodes[0].is_online = true;
	nodes[0].runtime = &rt;
	snprintf(nodes[1].name, sizeof nodes[1].name, "n2");
	nodes[1].runtime = &rt; /* stale: n2 is offline */
	guests[0] = guest(100, "qemu", "n1", "{\"name\":\"a\"}");
	guests[1] = guest(101, "lxc", "n1", "{\"hostname\":\"b\"}");
	guests[2] = guest(102, "qemu", "n2", "{\"name\":\"c\"}");
	snprintf(guests[1].lock, sizeof guests[1].lock, "backup");
	snprintf(guests[2].hastate, sizeof guests[2].hastate, "started");
	memset(storage, 0, sizeof storage);
	snprintf(storage[0].id, sizeof storage[0].id, "local");
	snprintf(storage[0].type, sizeof storage[0].type, "dir");
	snprintf(storage[1].id, sizeof storage[1].id, "ceph");
	snprintf(storage[1].type, sizeof storage[1].type, "rbd");
	snprintf(storage[1].nodes, sizeof storage[1].nodes, "n9,n2");
	storage[1].is_shared = true;
	in = (struct res_input){guests, 3, nodes, 2, storage, 2};

	rows = res_build(&in, RES_ALL);
	assert_non_null(rows);
	/* 2 nodes, local on both, ceph on n2, 3 guests */
	assert_int_equal(json_array_size(rows), 2 + 3 + 3);
	row = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(row, "id")),
	                    "node/n1");
	assert_true(json_real_value(json_object_get(row, "cpu")) == 0.5);
	row = json_array_get(rows, 1);
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "offline");
	assert_null(json_object_get(row, "cpu")); /* no stale figures */
	row = json_array_get(rows, 2);
	assert_string_equal(json_string_value(json_object_get(row, "id")),
	                    "storage/n1/local");
	assert_int_equal(json_integer_value(json_object_get(row, "maxdisk")),
	                 100);
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "available");
	row = json_array_get(rows, 3);
	assert_string_equal(json_string_value(json_object_get(row, "id")),
	                    "storage/n2/local");
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "unknown");
	assert_null(json_object_get(row, "maxdisk"));
	row = json_array_get(rows, 4);
	assert_string_equal(json_string_value(json_object_get(row, "id")),
	                    "storage/n2/ceph");
	assert_int_equal(json_integer_value(json_object_get(row, "shared")), 1);
	row = json_array_get(rows, 5);
	assert_string_equal(json_string_value(json_object_get(row, "id")),
	                    "qemu/100");
	assert_int_equal(json_integer_value(json_object_get(row, "vmid")), 100);
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "running");
	assert_int_equal(json_integer_value(json_object_get(row, "uptime")),
	                 42);
	assert_null(json_object_get(row, "lock"));
	assert_null(json_object_get(row, "tags"));
	row = json_array_get(rows, 6);
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "stopped");
	assert_string_equal(json_string_value(json_object_get(row, "lock")),
	                    "backup");
	row = json_array_get(rows, 7);
	assert_string_equal(json_string_value(json_object_get(row, "status")),
	                    "unknown");
	assert_string_equal(json_string_value(json_object_get(row, "hastate")),
	                    "started");
	json_decref(rows);

	rows = res_build(&in, RES_VM);
	assert_int_equal(json_array_size(rows), 3);
	json_decref(rows);
	rows = res_build(&in, RES_SDN);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);

	snprintf(nodes[0].fingerprint, sizeof nodes[0].fingerprint, "AA:BB");
	rows = res_build_nodes(&in);
	assert_int_equal(json_array_size(rows), 2);
	row = json_array_get(rows, 0);
	assert_string_equal(
	        json_string_value(json_object_get(row, "ssl_fingerprint")),
	        "AA:BB");
	assert_null(json_object_get(row, "cgroup-mode"));
	assert_null(
	        json_object_get(json_array_get(rows, 1), "ssl_fingerprint"));
	json_decref(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sizes),
	        cmocka_unit_test(test_qemu_config),
	        cmocka_unit_test(test_bootdisk_wins_and_cdrom_is_no_disk),
	        cmocka_unit_test(test_lxc_config_and_defaults),
	        cmocka_unit_test(test_odd_values_are_ignored_not_fatal),
	        cmocka_unit_test(test_filter),
	        cmocka_unit_test(test_fingerprint),
	        cmocka_unit_test(test_rows),
	};

	return cmocka_run_group_tests_name("node/resources", tests, NULL, NULL);
}
