/* Unit tests for the JSON <-> protobuf mapping, over the test-only schema
 * tests/unit/proto/test_mapping.proto. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lib/lib.h"
#include "proto/proto.h"
#include "tests/unit/proto/test_mapping.pb-c.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static struct err e;
static char *text;            /* the last rendering */
static ProtobufCMessage *msg; /* the last decoded message */
static json_t *collected;     /* errors object, when a test collects */

static int setup(void **state)
{
	(void)state;
	err_clear(&e);
	text = NULL;
	msg = NULL;
	collected = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mem_fail_reset();
	mem_free(text);
	text = NULL;
	protobuf_c_message_free_unpacked(msg, NULL);
	msg = NULL;
	json_decref(collected);
	collected = NULL;
	return 0;
}

/* ---- helpers ---- */

static const struct proto_json_override overrides[] = {
        {"cairn.test.NextId", "vmid", PROTO_JSON_AS_STRING, NULL},
        {"cairn.test.Flags", "managed", PROTO_JSON_AS_TRUE_FALSE, NULL},
        {"cairn.test.Flags", "size", PROTO_JSON_AS_STRING, NULL},
        {"cairn.test.Flags", "ports", PROTO_JSON_AS_STRING, NULL},
        {"cairn.test.Kept", NULL, PROTO_JSON_NO_UNWRAP, NULL},
        {"cairn.test.Cluster", "with_local_disks", PROTO_JSON_RENAME,
         "with-local-disks"},
};

static const struct proto_json_options with_overrides = {
        .overrides = overrides,
        .n_overrides = CAIRN_ARRAY_SIZE(overrides),
};

static const struct proto_json_options form = {
        .overrides = overrides,
        .n_overrides = CAIRN_ARRAY_SIZE(overrides),
        .strings_are_values = true,
};

static int render_rv(const void *m, const struct proto_json_options *o)
{
	json_t *v = NULL;
	int rv;

	err_clear(&e);
	rv = proto_json_from_message(m, o, &v, &e);
	mem_free(text);
	text = NULL;
	if (rv == 0) {
		assert_non_null(v);
		text = json_to_text(v);
		assert_non_null(text);
		json_decref(v);
	} else {
		assert_null(v);
		assert_int_equal(e.code, rv);
	}
	return rv;
}

/* m as compact JSON text (valid until the next call). */
static const char *render(const void *m, const struct proto_json_options *o)
{
	int rv = render_rv(m, o);

	if (rv != 0)
		print_error("render failed: %s\n", e.msg);
	assert_int_equal(rv, 0);
	return text;
}

static json_t *parse(const char *json)
{
	json_t *v = NULL;

	assert_int_equal(
	        json_parse_bounded(json, strlen(json), 1 << 22, 256, &v, &e),
	        0);
	return v;
}

/* Decodes a json_t into `msg`. */
static int decode_value(const ProtobufCMessageDescriptor *d, const json_t *in,
                        const struct proto_json_options *o)
{
	ProtobufCMessage *m = NULL;
	int rv;

	protobuf_c_message_free_unpacked(msg, NULL);
	msg = NULL;
	err_clear(&e);
	rv = proto_json_to_message(d, in, o, &m, collected, &e);
	if (rv == 0) {
		assert_non_null(m);
		assert_int_equal(e.code, 0);
		msg = m;
	} else {
		assert_null(m);
		assert_int_equal(e.code, rv);
		assert_string_not_equal(e.msg, "");
	}
	return rv;
}

static int decode(const ProtobufCMessageDescriptor *d, const char *json,
                  const struct proto_json_options *o)
{
	json_t *in = parse(json);
	int rv = decode_value(d, in, o);

	json_decref(in);
	return rv;
}

static void *decoded(const ProtobufCMessageDescriptor *d, const char *json,
                     const struct proto_json_options *o)
{
	int rv = decode(d, json, o);

	if (rv != 0)
		print_error("decode failed: %s\n", e.msg);
	assert_int_equal(rv, 0);
	return msg;
}

/* Decoding fails with -EINVAL and a message equal to `want`. */
static void assert_rejected(const ProtobufCMessageDescriptor *d,
                            const char *json,
                            const struct proto_json_options *o,
                            const char *want)
{
	assert_int_equal(decode(d, json, o), -EINVAL);
	assert_string_equal(e.msg, want);
}

static size_t pack(const ProtobufCMessage *m, uint8_t **out)
{
	size_t len = protobuf_c_message_get_packed_size(m);

	*out = mem_alloc(len);
	assert_non_null(*out);
	assert_int_equal(protobuf_c_message_pack(m, *out), len);
	return len;
}

static void assert_same_bytes(const ProtobufCMessage *a,
                              const ProtobufCMessage *b)
{
	uint8_t *pa, *pb;
	size_t la = pack(a, &pa), lb = pack(b, &pb);

	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);
	mem_free(pa);
	mem_free(pb);
}

/* m -> JSON text -> parse -> message, which must pack to m's bytes. */
static void assert_round_trip(const void *m, const struct proto_json_options *o)
{
	const ProtobufCMessage *orig = m;
	const char *json = render(m, o);

	decoded(orig->descriptor, json, o);
	assert_same_bytes(orig, msg);
}

/* ---- a mid-size message with every kind of field ---- */

struct fixture {
	Cairn__Test__Cluster cluster;
	Cairn__Test__Node n1, n2, n2_parent;
	Cairn__Test__Node *nodes[2];
	char *n1_tags[2];
	Cairn__Test__Cluster__LabelsEntry labels[2];
	Cairn__Test__Cluster__LabelsEntry *label_ptrs[2];
	Cairn__Test__Cluster__ByIdEntry by_id;
	Cairn__Test__Cluster__ByIdEntry *by_id_ptrs[1];
	int64_t counters[2];
	protobuf_c_boolean flags[2];
	Cairn__Test__GuestStatus states[2];
	uint8_t blob_bytes[3];
	ProtobufCBinaryData blobs[4];
	double loads[2];
	Cairn__Test__Scalars scalars;
	Cairn__Test__Cluster__LimitsEntry limit;
	Cairn__Test__Cluster__LimitsEntry *limit_ptrs[1];
	Cairn__Test__Cluster__PairEntry pair;
	Cairn__Test__Cluster__PairEntry *pair_ptrs[1];
	Cairn__Test__Cluster__ByFlagEntry by_flag[2];
	Cairn__Test__Cluster__ByFlagEntry *by_flag_ptrs[2];
	Cairn__Test__Cluster__ByNumberEntry by_number;
	Cairn__Test__Cluster__ByNumberEntry *by_number_ptrs[1];
};

static struct fixture fx;

static const char cluster_json[] =
        "{\"name\":\"c1\","
        "\"nodes\":[{\"name\":\"n1\",\"vmid\":100,\"online\":1,"
        "\"tags\":[\"a\",\"b\"]},"
        "{\"name\":\"n2\",\"tags\":[],"
        "\"parent\":{\"name\":\"n0\",\"online\":0,\"tags\":[]}}],"
        "\"labels\":{\"env\":\"prod\",\"tier\":\"web\"},"
        "\"by_id\":{\"100\":{\"name\":\"n1\",\"vmid\":100,\"online\":1,"
        "\"tags\":[\"a\",\"b\"]}},"
        "\"counters\":[-1,9007199254740993],"
        "\"flags\":[1,0],"
        "\"states\":[\"running\",\"io-error\"],"
        "\"blobs\":[\"\",\"AA==\",\"AAE=\",\"AAEC\"],"
        "\"loads\":[0.5,1.0],"
        "\"scalars\":{\"i32\":1},"
        "\"node\":\"n2\","
        "\"limits\":{\"cpu\":4},"
        "\"pair\":[{\"value\":\"v\",\"key\":\"k\"}],"
        "\"by_flag\":{\"1\":5,\"0\":-5},"
        "\"by_number\":{\"-3\":\"minus three\"},"
        "\"with_local_disks\":1,"
        "\"vmids\":[],"
        "\"names\":[]}";

static Cairn__Test__Cluster *cluster(void)
{
	struct fixture *f = &fx;
	unsigned i;

	memset(f, 0, sizeof(*f));
	cairn__test__cluster__init(&f->cluster);
	f->cluster.name = "c1";

	cairn__test__node__init(&f->n1);
	f->n1.name = "n1";
	f->n1.has_vmid = 1;
	f->n1.vmid = 100;
	f->n1.has_online = 1;
	f->n1.online = 1;
	f->n1_tags[0] = "a";
	f->n1_tags[1] = "b";
	f->n1.n_tags = 2;
	f->n1.tags = f->n1_tags;
	cairn__test__node__init(&f->n2_parent);
	f->n2_parent.name = "n0";
	f->n2_parent.has_online = 1;
	cairn__test__node__init(&f->n2);
	f->n2.name = "n2";
	f->n2.parent = &f->n2_parent;
	f->nodes[0] = &f->n1;
	f->nodes[1] = &f->n2;
	f->cluster.n_nodes = 2;
	f->cluster.nodes = f->nodes;

	for (i = 0; i < 2; i++) {
		cairn__test__cluster__labels_entry__init(&f->labels[i]);
		f->label_ptrs[i] = &f->labels[i];
	}
	f->labels[0].key = "env";
	f->labels[0].value = "prod";
	f->labels[1].key = "tier";
	f->labels[1].value = "web";
	f->cluster.n_labels = 2;
	f->cluster.labels = f->label_ptrs;

	cairn__test__cluster__by_id_entry__init(&f->by_id);
	f->by_id.has_key = 1;
	f->by_id.key = 100;
	f->by_id.value = &f->n1;
	f->by_id_ptrs[0] = &f->by_id;
	f->cluster.n_by_id = 1;
	f->cluster.by_id = f->by_id_ptrs;

	f->counters[0] = -1;
	f->counters[1] = 9007199254740993LL; /* not a double */
	f->cluster.n_counters = 2;
	f->cluster.counters = f->counters;
	f->flags[0] = 1;
	f->cluster.n_flags = 2;
	f->cluster.flags = f->flags;
	f->states[0] = CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_RUNNING;
	f->states[1] = CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_IO_ERROR;
	f->cluster.n_states = 2;
	f->cluster.states = f->states;
	f->blob_bytes[1] = 1;
	f->blob_bytes[2] = 2;
	for (i = 0; i < 4; i++) {
		f->blobs[i].len = i;
		f->blobs[i].data = i > 0 ? f->blob_bytes : NULL;
	}
	f->cluster.n_blobs = 4;
	f->cluster.blobs = f->blobs;
	f->loads[0] = 0.5;
	f->loads[1] = 1.0;
	f->cluster.n_loads = 2;
	f->cluster.loads = f->loads;

	cairn__test__scalars__init(&f->scalars);
	f->scalars.has_i32 = 1;
	f->scalars.i32 = 1;
	f->cluster.scalars = &f->scalars;

	f->cluster.target_case = CAIRN__TEST__CLUSTER__TARGET_NODE;
	f->cluster.node = "n2";

	cairn__test__cluster__limits_entry__init(&f->limit);
	f->limit.key = "cpu";
	f->limit.has_value = 1;
	f->limit.value = 4;
	f->limit_ptrs[0] = &f->limit;
	f->cluster.n_limits = 1;
	f->cluster.limits = f->limit_ptrs;

	cairn__test__cluster__pair_entry__init(&f->pair);
	f->pair.key = "k";
	f->pair.value = "v";
	f->pair_ptrs[0] = &f->pair;
	f->cluster.n_pair = 1;
	f->cluster.pair = f->pair_ptrs;

	for (i = 0; i < 2; i++) {
		cairn__test__cluster__by_flag_entry__init(&f->by_flag[i]);
		f->by_flag[i].has_key = 1;
		f->by_flag[i].key = i == 0;
		f->by_flag[i].has_value = 1;
		f->by_flag[i].value = i == 0 ? 5 : -5;
		f->by_flag_ptrs[i] = &f->by_flag[i];
	}
	f->cluster.n_by_flag = 2;
	f->cluster.by_flag = f->by_flag_ptrs;

	cairn__test__cluster__by_number_entry__init(&f->by_number);
	f->by_number.has_key = 1;
	f->by_number.key = -3;
	f->by_number.value = "minus three";
	f->by_number_ptrs[0] = &f->by_number;
	f->cluster.n_by_number = 1;
	f->cluster.by_number = f->by_number_ptrs;

	f->cluster.has_with_local_disks = 1;
	f->cluster.with_local_disks = 1;
	return &f->cluster;
}

/* A chain of `depth` nodes linked by parent (static storage). */
static Cairn__Test__Node *node_chain(int depth)
{
	static Cairn__Test__Node chain[64];
	int i;

	assert_true(depth > 0 && depth <= 64);
	for (i = 0; i < depth; i++) {
		cairn__test__node__init(&chain[i]);
		chain[i].name = "n";
		chain[i].parent = i + 1 < depth ? &chain[i + 1] : NULL;
	}
	return &chain[0];
}

/* {"name":"n","parent":{...}} nested `depth` objects deep. */
static char *node_chain_json(int depth)
{
	struct buf b;
	int i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < depth; i++)
		assert_int_equal(
		        buf_append_str(&b, i + 1 < depth ? "{\"name\":\"n\","
		                                           "\"parent\":"
		                                         : "{\"name\":\"n\""),
		        0);
	for (i = 0; i < depth; i++)
		assert_int_equal(buf_append_str(&b, "}"), 0);
	return buf_steal(&b);
}

/* ======================================================================
 * Message -> JSON */

static void test_out_every_scalar_type(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;
	uint8_t abc[] = {'a', 'b', 'c'};

	(void)state;
	s.has_i32 = s.has_s32 = s.has_sf32 = s.has_i64 = s.has_s64 = 1;
	s.has_sf64 = s.has_u32 = s.has_f32 = s.has_u64 = s.has_f64 = 1;
	s.has_fl = s.has_db = s.has_flag = s.has_blob = s.has_status = 1;
	s.has_kind = s.has_count = 1;
	s.i32 = -5;
	s.s32 = -6;
	s.sf32 = -7;
	s.i64 = -8000000000LL;
	s.s64 = 9;
	s.sf64 = 10;
	s.u32 = 4000000000U;
	s.f32 = 12;
	s.u64 = 13;
	s.f64 = 14;
	s.fl = 0.5f;
	s.db = -2.25;
	s.flag = 1;
	s.text = "h\xc3\xa9llo";
	s.blob.len = 3;
	s.blob.data = abc;
	s.status = CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_STOPPED;
	s.kind = CAIRN__TEST__SCALARS__KIND__HALF_CLOSE;
	s.greeting = "hi";
	s.count = 0;
	assert_string_equal(
	        render(&s, NULL),
	        "{\"i32\":-5,\"s32\":-6,\"sf32\":-7,\"i64\":-8000000000,"
	        "\"s64\":9,\"sf64\":10,\"u32\":4000000000,\"f32\":12,"
	        "\"u64\":13,\"f64\":14,\"fl\":0.5,\"db\":-2.25,\"flag\":1,"
	        "\"text\":\"h\xc3\xa9llo\",\"blob\":\"YWJj\","
	        "\"status\":\"stopped\",\"kind\":\"half-close\","
	        "\"greeting\":\"hi\",\"count\":0}");
}

static void test_out_unset_optional_fields_are_left_out(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	/* greeting holds its default pointer and count its default 7: both
	 * unset, as protobuf-c's packer sees them. */
	assert_string_equal(render(&s, NULL), "{}");
	s.has_flag = 1; /* set to false: present */
	assert_string_equal(render(&s, NULL), "{\"flag\":0}");
}

static void test_out_bool_is_one_or_zero(void **state)
{
	Cairn__Test__Node n = CAIRN__TEST__NODE__INIT;

	(void)state;
	n.name = "x";
	n.has_online = 1;
	n.online = 1;
	assert_string_equal(render(&n, NULL),
	                    "{\"name\":\"x\",\"online\":1,\"tags\":[]}");
}

static void test_out_64_bit_extremes_are_numbers(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_i64 = s.has_sf64 = s.has_u64 = 1;
	s.i64 = INT64_MIN;
	s.sf64 = INT64_MAX;
	s.u64 = INT64_MAX;
	assert_string_equal(render(&s, NULL), "{\"i64\":-9223372036854775808,"
	                                      "\"sf64\":9223372036854775807,"
	                                      "\"u64\":9223372036854775807}");
}

static void test_out_uint64_above_int64_max_is_a_string(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_u64 = s.has_f64 = 1;
	s.u64 = UINT64_MAX;
	s.f64 = (uint64_t)INT64_MAX + 1;
	assert_string_equal(render(&s, NULL),
	                    "{\"u64\":\"18446744073709551615\","
	                    "\"f64\":\"9223372036854775808\"}");
}

static void test_out_non_finite_floats_are_strings(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_fl = s.has_db = 1;
	s.fl = -INFINITY;
	s.db = NAN;
	assert_string_equal(render(&s, NULL),
	                    "{\"fl\":\"-Infinity\",\"db\":\"NaN\"}");
	s.db = INFINITY;
	assert_string_equal(render(&s, NULL),
	                    "{\"fl\":\"-Infinity\",\"db\":\"Infinity\"}");
}

static void test_out_enum_drops_type_prefix_lowercases_and_dashes(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_status = s.has_kind = 1;
	s.status = CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_IO_ERROR;
	s.kind = CAIRN__TEST__SCALARS__KIND__PLAIN; /* no prefix to drop */
	assert_string_equal(render(&s, NULL),
	                    "{\"status\":\"io-error\",\"kind\":\"plain\"}");
}

static void test_out_enum_number_outside_the_enum_is_a_number(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_status = 1;
	s.status = (Cairn__Test__GuestStatus)42;
	assert_string_equal(render(&s, NULL), "{\"status\":42}");
}

static void test_out_mid_size_message_has_every_shape(void **state)
{
	(void)state;
	assert_string_equal(render(cluster(), NULL), cluster_json);
}

static void test_out_empty_repeated_and_map_fields_are_written(void **state)
{
	Cairn__Test__Cluster c = CAIRN__TEST__CLUSTER__INIT;

	(void)state;
	assert_string_equal(render(&c, NULL),
	                    "{\"nodes\":[],\"labels\":{},\"by_id\":{},"
	                    "\"counters\":[],\"flags\":[],\"states\":[],"
	                    "\"blobs\":[],\"loads\":[],\"limits\":{},"
	                    "\"pair\":[],\"by_flag\":{},\"by_number\":{},"
	                    "\"vmids\":[],\"names\":[]}");
}

static void test_out_map_entry_without_value_writes_default(void **state)
{
	Cairn__Test__Cluster c = CAIRN__TEST__CLUSTER__INIT;
	Cairn__Test__Cluster__ByIdEntry entry =
	        CAIRN__TEST__CLUSTER__BY_ID_ENTRY__INIT;
	Cairn__Test__Cluster__ByIdEntry *entries[] = {&entry};
	json_t *v, *by_id;

	(void)state;
	c.n_by_id = 1;
	c.by_id = entries;
	assert_int_equal(proto_json_from_message(&c.base, NULL, &v, &e), 0);
	by_id = json_object_get(v, "by_id");
	assert_int_equal(json_object_size(by_id), 1);
	assert_true(json_is_object(json_object_get(by_id, "0")));
	json_decref(v);
}

static void test_out_oneof_writes_only_the_chosen_member(void **state)
{
	Cairn__Test__Cluster c = CAIRN__TEST__CLUSTER__INIT;
	json_t *v;

	(void)state;
	c.target_case = CAIRN__TEST__CLUSTER__TARGET_TARGET_VMID;
	c.target_vmid = 7;
	assert_int_equal(proto_json_from_message(&c.base, NULL, &v, &e), 0);
	assert_null(json_object_get(v, "node"));
	assert_int_equal(json_integer_value(json_object_get(v, "target_vmid")),
	                 7);
	json_decref(v);
}

static void test_out_one_field_string_message_is_a_bare_string(void **state)
{
	Cairn__Test__TaskId t = CAIRN__TEST__TASK_ID__INIT;

	(void)state;
	t.upid = "UPID:n1:00001234:00005678:65000000:qmstart:100:root@pam:";
	assert_string_equal(
	        render(&t, NULL),
	        "\"UPID:n1:00001234:00005678:65000000:qmstart:100:root@pam:\"");
}

static void test_out_one_field_list_message_is_a_bare_array(void **state)
{
	Cairn__Test__NodeList l = CAIRN__TEST__NODE_LIST__INIT;
	Cairn__Test__Node n = CAIRN__TEST__NODE__INIT;
	Cairn__Test__Node *nodes[] = {&n};

	(void)state;
	assert_string_equal(render(&l, NULL), "[]");
	n.name = "n1";
	l.n_nodes = 1;
	l.nodes = nodes;
	assert_string_equal(render(&l, NULL),
	                    "[{\"name\":\"n1\",\"tags\":[]}]");
}

static void test_out_one_field_message_unset_is_null(void **state)
{
	Cairn__Test__TaskId t = CAIRN__TEST__TASK_ID__INIT;
	Cairn__Test__NodeRef r = CAIRN__TEST__NODE_REF__INIT;

	(void)state;
	assert_string_equal(render(&t, NULL), "null");
	assert_string_equal(render(&r, NULL), "null");
}

static void test_out_one_field_map_message_is_a_bare_object(void **state)
{
	Cairn__Test__LabelMap m = CAIRN__TEST__LABEL_MAP__INIT;
	Cairn__Test__LabelMap__LabelsEntry l =
	        CAIRN__TEST__LABEL_MAP__LABELS_ENTRY__INIT;
	Cairn__Test__LabelMap__LabelsEntry *ls[] = {&l};

	(void)state;
	l.key = "a";
	l.value = "b";
	m.n_labels = 1;
	m.labels = ls;
	assert_string_equal(render(&m, NULL), "{\"a\":\"b\"}");
}

static void test_out_nested_one_field_messages_stay_objects(void **state)
{
	Cairn__Test__HolderRef r = CAIRN__TEST__HOLDER_REF__INIT;
	Cairn__Test__Holder outer = CAIRN__TEST__HOLDER__INIT;
	Cairn__Test__Holder inner = CAIRN__TEST__HOLDER__INIT;

	(void)state;
	inner.text = "in";
	outer.holder = &inner;
	r.holder = &outer;
	/* Only the top level unwraps: HolderRef -> Holder's object. */
	assert_string_equal(render(&r, NULL), "{\"holder\":{\"text\":\"in\"}}");
}

static void test_out_override_as_string(void **state)
{
	Cairn__Test__NextId n = CAIRN__TEST__NEXT_ID__INIT;
	Cairn__Test__Flags f = CAIRN__TEST__FLAGS__INIT;
	int32_t ports[] = {22, -1};

	(void)state;
	n.has_vmid = 1;
	n.vmid = 100;
	assert_string_equal(render(&n, NULL), "100");
	assert_string_equal(render(&n, &with_overrides), "\"100\"");
	f.has_size = 1;
	f.size = -4294967296LL;
	f.n_ports = 2;
	f.ports = ports;
	assert_string_equal(
	        render(&f, &with_overrides),
	        "{\"size\":\"-4294967296\",\"ports\":[\"22\",\"-1\"]}");
}

static void test_out_override_true_false(void **state)
{
	Cairn__Test__Flags f = CAIRN__TEST__FLAGS__INIT;

	(void)state;
	f.has_enabled = f.has_managed = 1;
	f.enabled = 1;
	assert_string_equal(render(&f, &with_overrides),
	                    "{\"enabled\":1,\"managed\":false,\"ports\":[]}");
	f.managed = 1;
	assert_string_equal(render(&f, &with_overrides),
	                    "{\"enabled\":1,\"managed\":true,\"ports\":[]}");
}

static void test_out_override_no_unwrap_keeps_an_object(void **state)
{
	Cairn__Test__Kept k = CAIRN__TEST__KEPT__INIT;

	(void)state;
	k.upid = "u";
	assert_string_equal(render(&k, NULL), "\"u\"");
	assert_string_equal(render(&k, &with_overrides), "{\"upid\":\"u\"}");
}

static void test_out_override_rename(void **state)
{
	Cairn__Test__Cluster c = CAIRN__TEST__CLUSTER__INIT;
	json_t *v;

	(void)state;
	c.has_with_local_disks = 1;
	assert_int_equal(
	        proto_json_from_message(&c.base, &with_overrides, &v, &e), 0);
	assert_null(json_object_get(v, "with_local_disks"));
	assert_int_equal(
	        json_integer_value(json_object_get(v, "with-local-disks")), 0);
	json_decref(v);
}

static void test_out_invalid_utf8_fails_naming_the_field(void **state)
{
	Cairn__Test__Cluster *c = cluster();

	(void)state;
	fx.n1_tags[1] = "bad\xff";
	assert_int_equal(render_rv(c, NULL), -EINVAL);
	assert_string_equal(e.msg, "nodes[0].tags[1]: string is not valid "
	                           "UTF-8");
	fx.n1_tags[1] = "b";
	fx.labels[1].key = "\xc0\xaf"; /* overlong '/' */
	assert_int_equal(render_rv(c, NULL), -EINVAL);
	assert_non_null(strstr(e.msg, "labels"));
}

static void test_out_deeper_than_max_depth_fails(void **state)
{
	struct proto_json_options o = {.max_depth = 8};

	(void)state;
	/* The innermost node's "tags":[] counts: 7 nodes take 8 levels. */
	assert_int_equal(render_rv(node_chain(7), &o), 0);
	assert_int_equal(render_rv(node_chain(8), &o), -EINVAL);
	assert_non_null(strstr(e.msg, "nested deeper than 8"));
	assert_int_equal(render_rv(node_chain(64), NULL), -EINVAL);
}

/* ======================================================================
 * JSON -> message */

static void test_in_every_scalar_type(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"i32\":-5,\"s32\":-6,\"sf32\":-7,\"i64\":-8000000000,"
	            "\"s64\":9,\"sf64\":10,\"u32\":4000000000,\"f32\":12,"
	            "\"u64\":13,\"f64\":14,\"fl\":0.5,\"db\":-2.25,"
	            "\"flag\":1,\"text\":\"h\\u00e9llo\",\"blob\":\"YWJj\","
	            "\"status\":\"io-error\",\"kind\":\"half-close\","
	            "\"greeting\":\"hi\",\"count\":0}",
	            NULL);
	assert_true(s->has_i32 && s->i32 == -5);
	assert_true(s->has_s32 && s->s32 == -6);
	assert_true(s->has_sf32 && s->sf32 == -7);
	assert_true(s->has_i64 && s->i64 == -8000000000LL);
	assert_true(s->has_s64 && s->s64 == 9);
	assert_true(s->has_sf64 && s->sf64 == 10);
	assert_true(s->has_u32 && s->u32 == 4000000000U);
	assert_true(s->has_f32 && s->f32 == 12);
	assert_true(s->has_u64 && s->u64 == 13);
	assert_true(s->has_f64 && s->f64 == 14);
	assert_true(s->has_fl && s->fl == 0.5f);
	assert_true(s->has_db && s->db == -2.25);
	assert_true(s->has_flag && s->flag == 1);
	assert_string_equal(s->text, "h\xc3\xa9llo");
	assert_true(s->has_blob && s->blob.len == 3);
	assert_memory_equal(s->blob.data, "abc", 3);
	assert_true(s->has_status &&
	            s->status ==
	                    CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_IO_ERROR);
	assert_true(s->has_kind &&
	            s->kind == CAIRN__TEST__SCALARS__KIND__HALF_CLOSE);
	assert_string_equal(s->greeting, "hi");
	assert_true(s->has_count && s->count == 0);
}

static void test_in_absent_fields_stay_unset_with_defaults(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor, "{}", NULL);
	assert_false(s->has_i32);
	assert_null(s->text);
	assert_string_equal(s->greeting, "hello");
	assert_false(s->has_count);
	assert_int_equal(s->count, 7);
}

static void test_in_null_member_counts_as_absent(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"i32\":null,\"text\":null,\"blob\":null}", NULL);
	assert_false(s->has_i32);
	assert_null(s->text);
	assert_false(s->has_blob);
	assert_rejected(&cairn__test__must_name__descriptor, "{\"name\":null}",
	                &with_overrides,
	                "name: property is missing and it is not optional");
}

static void test_in_null_element_fails(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__cluster__descriptor,
	                "{\"names\":[\"a\",null]}", NULL,
	                "names[1]: expected a string, got null");
	assert_rejected(&cairn__test__cluster__descriptor,
	                "{\"labels\":{\"a\":null}}", NULL,
	                "labels[a]: expected a string, got null");
}

static void test_in_bool_accepts_true_false_one_zero(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor, "{\"flag\":true}", NULL);
	assert_true(s->has_flag && s->flag);
	s = decoded(&cairn__test__scalars__descriptor, "{\"flag\":false}",
	            NULL);
	assert_true(s->has_flag && !s->flag);
	s = decoded(&cairn__test__scalars__descriptor, "{\"flag\":0}", NULL);
	assert_true(s->has_flag && !s->flag);
}

static void test_in_bool_rejects_other_values(void **state)
{
	(void)state;
	assert_rejected(
	        &cairn__test__scalars__descriptor, "{\"flag\":2}", NULL,
	        "flag: expected a boolean (0, 1, true or false), got 2");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"flag\":\"1\"}",
	                NULL,
	                "flag: expected a boolean (0, 1, true or false), got "
	                "a string");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"flag\":1.0}",
	                NULL,
	                "flag: expected a boolean (0, 1, true or false), got "
	                "a number");
}

static void test_in_enum_names(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"states\":[\"stopped\",\"running\",\"io-error\"]}",
	            NULL);
	assert_int_equal(c->n_states, 3);
	assert_int_equal(c->states[0],
	                 CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_STOPPED);
	assert_int_equal(c->states[2],
	                 CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_IO_ERROR);
}

static void test_in_unknown_enum_name_fails_listing_choices(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__scalars__descriptor,
	                "{\"status\":\"paused\"}", NULL,
	                "status: expected one of running, stopped, io-error; "
	                "got 'paused'");
	/* Only the JSON names: not the proto name, not the number. */
	assert_int_equal(decode(&cairn__test__scalars__descriptor,
	                        "{\"status\":\"GUEST_STATUS_RUNNING\"}", NULL),
	                 -EINVAL);
	assert_int_equal(decode(&cairn__test__scalars__descriptor,
	                        "{\"status\":\"io_error\"}", NULL),
	                 -EINVAL);
	assert_rejected(&cairn__test__scalars__descriptor, "{\"status\":1}",
	                NULL,
	                "status: expected one of running, stopped, io-error; "
	                "got an integer");
}

static void test_in_bytes_are_base64(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"blobs\":[\"\",\"AA==\",\"AAE=\",\"AAEC\",\"/+8=\"]}",
	            NULL);
	assert_int_equal(c->n_blobs, 5);
	assert_int_equal(c->blobs[0].len, 0);
	assert_int_equal(c->blobs[1].len, 1);
	assert_int_equal(c->blobs[3].len, 3);
	assert_memory_equal(c->blobs[3].data, "\x00\x01\x02", 3);
	assert_memory_equal(c->blobs[4].data, "\xff\xef", 2);
}

static void test_in_bad_base64_fails(void **state)
{
	static const char *const bad[] = {
	        "{\"blob\":\"YWJ\"}",   /* not a multiple of 4 */
	        "{\"blob\":\"YW=j\"}",  /* padding inside */
	        "{\"blob\":\"YWJ!\"}",  /* outside the alphabet */
	        "{\"blob\":\"AB==\"}",  /* non-zero dropped bits */
	        "{\"blob\":\"YW Jj\"}", /* whitespace */
	        "{\"blob\":\"YWJj\\n\"}",
	        "{\"blob\":\"-_8=\"}", /* URL alphabet */
	        "{\"blob\":12}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(
		        decode(&cairn__test__scalars__descriptor, bad[i], NULL),
		        -EINVAL);
		assert_non_null(strstr(e.msg, "blob: "));
	}
}

static void test_in_64_bit_integers_accept_decimal_strings(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"i64\":\"-9223372036854775808\","
	            "\"u64\":\"18446744073709551615\",\"f64\":\"0\","
	            "\"sf64\":9223372036854775807}",
	            NULL);
	assert_true(s->i64 == INT64_MIN);
	assert_true(s->u64 == UINT64_MAX);
	assert_true(s->has_f64 && s->f64 == 0);
	assert_true(s->sf64 == INT64_MAX);
}

static void test_in_integers_out_of_range_fail(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	        {"{\"i32\":2147483648}",
	         "i32: 2147483648 is out of range for an int32"},
	        {"{\"s32\":-2147483649}",
	         "s32: -2147483649 is out of range for an int32"},
	        {"{\"u32\":4294967296}",
	         "u32: 4294967296 is out of range for a uint32"},
	        {"{\"u32\":-1}", "u32: -1 is out of range for a uint32"},
	        {"{\"u64\":-1}", "u64: -1 is out of range for a uint64"},
	        {"{\"f64\":\"-1\"}", "f64: -1 is out of range for a uint64"},
	        {"{\"i64\":\"9223372036854775808\"}",
	         "i64: 9223372036854775808 is out of range for an int64"},
	        {"{\"i64\":\"-9223372036854775809\"}",
	         "i64: -9223372036854775809 is out of range for an int64"},
	        {"{\"u64\":\"18446744073709551616\"}",
	         "u64: '18446744073709551616' is out of range for a uint64"},
	        {"{\"sf64\":\"99999999999999999999999\"}",
	         "sf64: '99999999999999999999999' is out of range for an "
	         "int64"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++)
		assert_rejected(&cairn__test__scalars__descriptor,
		                cases[i].json, NULL, cases[i].want);
}

static void test_in_range_bounds_are_accepted(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"i32\":-2147483648,\"sf32\":2147483647,"
	            "\"u32\":4294967295,\"f32\":0,\"s32\":-0}",
	            NULL);
	assert_int_equal(s->i32, INT32_MIN);
	assert_int_equal(s->sf32, INT32_MAX);
	assert_true(s->u32 == UINT32_MAX);
	assert_int_equal(s->s32, 0);
}

static void test_in_integers_beyond_64_bits_fail_in_the_parser(void **state)
{
	json_t *v = NULL;
	const char *big = "{\"u64\":18446744073709551616}";

	(void)state;
	/* jansson holds int64 only; larger numbers never reach the
	 * mapping (uint64 values above INT64_MAX travel as strings). */
	assert_int_equal(json_parse_bounded(big, strlen(big), 1024, 8, &v, &e),
	                 -EINVAL);
	assert_null(v);
}

static void test_in_floats_for_integers_fail(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__scalars__descriptor, "{\"i32\":1.5}",
	                NULL, "i32: expected an integer, got a number");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"u64\":2.0}",
	                NULL, "u64: expected an integer, got a number");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"i64\":\"1.5\"}",
	                NULL, "i64: expected an integer, got '1.5'");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"i32\":1e3}",
	                NULL, "i32: expected an integer, got a number");
}

static void test_in_strings_for_32_bit_integers_fail(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__scalars__descriptor, "{\"i32\":\"5\"}",
	                NULL, "i32: expected an integer, got a string");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"u32\":true}",
	                NULL, "u32: expected an integer, got a boolean");
}

static void test_in_numbers_for_floats(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"fl\":3,\"db\":-1e300}", NULL);
	assert_true(s->fl == 3.0f);
	assert_true(s->db == -1e300);
	assert_rejected(&cairn__test__scalars__descriptor, "{\"fl\":1e39}",
	                NULL, "fl: 1e+39 is out of range for a float");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"db\":\"0.5\"}",
	                NULL, "db: expected a number, got a string");
	assert_rejected(&cairn__test__scalars__descriptor, "{\"db\":[1]}", NULL,
	                "db: expected a number, got an array");
}

static void test_in_non_finite_float_strings(void **state)
{
	Cairn__Test__Scalars *s;

	(void)state;
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"fl\":\"-Infinity\",\"db\":\"NaN\"}", NULL);
	assert_true(isinf(s->fl) && s->fl < 0);
	assert_true(isnan(s->db));
	assert_int_equal(decode(&cairn__test__scalars__descriptor,
	                        "{\"db\":\"inf\"}", NULL),
	                 -EINVAL);
}

static void test_in_wrong_types_at_every_level_name_the_path(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	        {"[]", "expected an object, got an array"},
	        {"\"c1\"", "expected an object, got a string"},
	        {"null", "expected an object, got null"},
	        {"{\"name\":1}", "name: expected a string, got an integer"},
	        {"{\"nodes\":{}}", "nodes: expected an array, got an object"},
	        {"{\"nodes\":[\"n1\"]}",
	         "nodes[0]: expected an object, got a string"},
	        {"{\"nodes\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":7}]}",
	         "nodes[2].name: expected a string, got an integer"},
	        {"{\"nodes\":[{\"name\":\"a\",\"tags\":[\"x\",false]}]}",
	         "nodes[0].tags[1]: expected a string, got a boolean"},
	        {"{\"nodes\":[{\"name\":\"a\",\"parent\":{\"name\":\"p\","
	         "\"vmid\":\"1\"}}]}",
	         "nodes[0].parent.vmid: expected an integer, got a string"},
	        {"{\"labels\":[]}", "labels: expected an object, got an array"},
	        {"{\"labels\":{\"a\":1}}",
	         "labels[a]: expected a string, got an integer"},
	        {"{\"by_id\":{\"x\":{\"name\":\"n\"}}}",
	         "by_id[x]: expected an integer, got 'x'"},
	        {"{\"by_id\":{\"4294967296\":{\"name\":\"n\"}}}",
	         "by_id[4294967296]: 4294967296 is out of range for a uint32"},
	        {"{\"by_id\":{\"1\":{\"vmid\":1}}}",
	         "by_id[1].name: property is missing and it is not optional"},
	        {"{\"by_id\":{\"1\":\"n\"}}",
	         "by_id[1]: expected an object, got a string"},
	        {"{\"by_flag\":{\"yes\":1}}",
	         "by_flag[yes]: key: expected a boolean (0, 1, true or "
	         "false), got 'yes'"},
	        {"{\"by_number\":{\"-1.5\":\"x\"}}",
	         "by_number[-1.5]: expected an integer, got '-1.5'"},
	        {"{\"limits\":{\"cpu\":\"four\"}}",
	         "limits[cpu]: expected an integer, got 'four'"},
	        {"{\"pair\":{\"k\":\"v\"}}",
	         "pair: expected an array, got an object"},
	        {"{\"scalars\":\"x\"}",
	         "scalars: expected an object, got a string"},
	        {"{\"scalars\":{\"i32\":{}}}",
	         "scalars.i32: expected an integer, got an object"},
	        {"{\"counters\":[1,\"x\"]}",
	         "counters[1]: expected an integer, got 'x'"},
	        {"{\"loads\":[1,null]}",
	         "loads[1]: expected a number, got null"},
	        {"{\"states\":\"running\"}",
	         "states: expected an array, got a string"},
	        {"{\"vmids\":[1,-2]}",
	         "vmids[1]: -2 is out of range for a uint32"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++)
		assert_rejected(&cairn__test__cluster__descriptor,
		                cases[i].json, NULL, cases[i].want);
}

static void test_in_unknown_keys_fail_naming_the_key(void **state)
{
	(void)state;
	assert_rejected(
	        &cairn__test__cluster__descriptor,
	        "{\"name\":\"c\",\"nmae\":\"c\"}", NULL,
	        "nmae: property is not defined in schema and the schema "
	        "does not allow additional properties");
	assert_rejected(&cairn__test__cluster__descriptor,
	                "{\"nodes\":[{\"name\":\"a\",\"vmId\":1}]}", NULL,
	                "nodes[0].vmId: property is not defined in schema and "
	                "the schema does not allow additional properties");
	/* Even when null. */
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"extra\":null}", NULL),
	                 -EINVAL);
}

static void test_in_missing_required_fields_fail(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__create_request__descriptor,
	                "{\"vmid\":100}", NULL,
	                "node: property is missing and it is not optional");
	assert_rejected(&cairn__test__create_request__descriptor,
	                "{\"node\":\"n1\",\"vmid\":100,\"peers\":[{}]}", NULL,
	                "peers[0].name: property is missing and it is not "
	                "optional");
	decoded(&cairn__test__create_request__descriptor,
	        "{\"node\":\"n1\",\"vmid\":0}", NULL);
	assert_true(protobuf_c_message_check(msg));
}

static void test_in_oneof_takes_one_member(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor, "{\"target_vmid\":7}",
	            NULL);
	assert_int_equal(c->target_case,
	                 CAIRN__TEST__CLUSTER__TARGET_TARGET_VMID);
	assert_int_equal(c->target_vmid, 7);
	c = decoded(&cairn__test__cluster__descriptor, "{\"node\":\"n1\"}",
	            NULL);
	assert_int_equal(c->target_case, CAIRN__TEST__CLUSTER__TARGET_NODE);
	assert_string_equal(c->node, "n1");
}

static void test_in_oneof_with_two_members_fails(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__cluster__descriptor,
	                "{\"target_vmid\":7,\"node\":\"n1\"}", NULL,
	                "target_vmid: cannot be given together with 'node'");
}

static void test_in_nul_in_strings_fails(void **state)
{
	const char nul[] = "{\"text\":\"a\\u0000b\"}";
	json_t *in = json_object();

	(void)state;
	/* The parser refuses \u0000; a json_t built by hand may hold it. */
	assert_int_equal(
	        json_object_set_new(in, "text", json_stringn("a\0b", 3)), 0);
	assert_int_equal(
	        decode_value(&cairn__test__scalars__descriptor, in, NULL),
	        -EINVAL);
	assert_string_equal(e.msg, "text: string contains NUL");
	assert_int_equal(json_object_set_new(in, "text", json_string("ok")), 0);
	assert_int_equal(json_object_set_new(in, "status",
	                                     json_stringn("running\0x", 9)),
	                 0);
	assert_int_equal(
	        decode_value(&cairn__test__scalars__descriptor, in, NULL),
	        -EINVAL);
	json_decref(in);
	in = NULL;
	assert_int_equal(json_parse_bounded(nul, strlen(nul), 1024, 8, &in, &e),
	                 -EINVAL);
	assert_null(in);
}

static void test_in_invalid_utf8_fails(void **state)
{
	json_t *in, *v = NULL;
	const char raw[] = "{\"text\":\"\xff\"}";

	(void)state;
	/* jansson checks what it parses... */
	assert_int_equal(json_parse_bounded(raw, strlen(raw), 1024, 8, &v, &e),
	                 -EINVAL);
	assert_null(v);
	/* ...and the mapping what jansson was told not to check. */
	in = json_object();
	assert_int_equal(
	        json_object_set_new(in, "text",
	                            json_string_nocheck("\xed\xa0\x80")),
	        0);
	assert_int_equal(
	        decode_value(&cairn__test__scalars__descriptor, in, NULL),
	        -EINVAL);
	assert_string_equal(e.msg, "text: string is not valid UTF-8");
	json_decref(in);
	in = json_object();
	assert_int_equal(json_object_set_new(in, "labels", json_object()), 0);
	assert_int_equal(
	        json_object_set_new_nocheck(json_object_get(in, "labels"),
	                                    "\xc3", json_string("v")),
	        0);
	assert_int_equal(
	        decode_value(&cairn__test__cluster__descriptor, in, NULL),
	        -EINVAL);
	assert_string_equal(e.msg, "labels[?]: key is not valid UTF-8");
	json_decref(in);
}

static void test_in_duplicate_keys_fail_in_the_parser(void **state)
{
	json_t *v = NULL;
	const char dup[] = "{\"name\":\"a\",\"name\":\"b\"}";

	(void)state;
	assert_int_equal(json_parse_bounded(dup, strlen(dup), 1024, 8, &v, &e),
	                 -EINVAL);
	assert_null(v);
}

static void test_in_deeper_than_max_depth_fails(void **state)
{
	struct proto_json_options o = {.max_depth = 8};
	char *json;

	(void)state;
	json = node_chain_json(8);
	assert_int_equal(decode(&cairn__test__node__descriptor, json, &o), 0);
	mem_free(json);
	json = node_chain_json(9);
	assert_int_equal(decode(&cairn__test__node__descriptor, json, &o),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "nested deeper than 8 levels"));
	mem_free(json);
	/* The default is JSON_DEFAULT_MAX_DEPTH. */
	json = node_chain_json(JSON_DEFAULT_MAX_DEPTH + 1);
	assert_int_equal(decode(&cairn__test__node__descriptor, json, NULL),
	                 -EINVAL);
	mem_free(json);
	/* Arrays count: nodes[] is level 2, its objects level 3. */
	o.max_depth = 2;
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"nodes\":[{\"name\":\"a\"}]}", &o),
	                 -EINVAL);
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"vmids\":[1]}", &o),
	                 0);
}

static void test_in_huge_arrays_fail_with_e2big(void **state)
{
	struct proto_json_options o = {.max_repeated = 100};
	json_t *in = json_object(), *arr = json_array();
	int i;

	(void)state;
	for (i = 0; i < 101; i++)
		assert_int_equal(json_array_append_new(arr, json_integer(i)),
		                 0);
	assert_int_equal(json_object_set_new(in, "vmids", arr), 0);
	assert_int_equal(
	        decode_value(&cairn__test__cluster__descriptor, in, &o),
	        -E2BIG);
	assert_string_equal(e.msg,
	                    "vmids: 101 elements, more than the limit of 100");
	assert_int_equal(json_array_remove(arr, 0), 0);
	assert_int_equal(
	        decode_value(&cairn__test__cluster__descriptor, in, &o), 0);
	json_decref(in);
}

static void test_in_huge_maps_fail_with_e2big(void **state)
{
	struct proto_json_options o = {.max_repeated = 2};

	(void)state;
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"labels\":{\"a\":\"1\",\"b\":\"2\","
	                        "\"c\":\"3\"}}",
	                        &o),
	                 -E2BIG);
	assert_non_null(strstr(e.msg, "labels: 3 elements"));
}

static void test_in_larger_than_max_bytes_fails_with_e2big(void **state)
{
	struct proto_json_options o = {.max_bytes = 4096};
	json_t *in = json_object();
	char *big = mem_alloc(5000);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	assert_int_equal(json_object_set_new(in, "text", json_string(big)), 0);
	assert_int_equal(
	        decode_value(&cairn__test__scalars__descriptor, in, &o),
	        -E2BIG);
	assert_non_null(strstr(e.msg, "text: the message would take more"));
	big[2000] = '\0';
	assert_int_equal(json_object_set_new(in, "text", json_string(big)), 0);
	assert_int_equal(
	        decode_value(&cairn__test__scalars__descriptor, in, &o), 0);
	json_decref(in);
	mem_free(big);
}

static void test_in_many_small_elements_count_toward_max_bytes(void **state)
{
	struct proto_json_options o = {.max_bytes = 64 * 1024,
	                               .max_repeated = 100000};
	json_t *in = json_object(), *arr = json_array();
	int i;

	(void)state;
	/* Short JSON, large structs: what counts is what we allocate. */
	for (i = 0; i < 2000; i++) {
		json_t *n = json_object();

		assert_int_equal(
		        json_object_set_new(n, "name", json_string("")), 0);
		assert_int_equal(json_array_append_new(arr, n), 0);
	}
	assert_int_equal(json_object_set_new(in, "nodes", arr), 0);
	assert_int_equal(
	        decode_value(&cairn__test__cluster__descriptor, in, &o),
	        -E2BIG);
	json_decref(in);
}

static void test_in_maps(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"labels\":{\"env\":\"prod\",\"tier\":\"web\"},"
	            "\"by_id\":{\"4294967295\":{\"name\":\"n\"}},"
	            "\"by_flag\":{\"true\":1,\"0\":2},"
	            "\"by_number\":{\"-9223372036854775808\":\"min\"},"
	            "\"limits\":{\"cpu\":4}}",
	            NULL);
	assert_int_equal(c->n_labels, 2);
	assert_string_equal(c->labels[0]->key, "env");
	assert_string_equal(c->labels[1]->value, "web");
	assert_int_equal(c->n_by_id, 1);
	assert_true(c->by_id[0]->key == UINT32_MAX);
	assert_string_equal(c->by_id[0]->value->name, "n");
	assert_true(c->by_flag[0]->key && !c->by_flag[1]->key);
	assert_true(c->by_number[0]->key == INT64_MIN);
	assert_string_equal(c->limits[0]->key, "cpu");
	assert_true(c->limits[0]->has_value && c->limits[0]->value == 4);
}

static void test_in_entry_with_swapped_numbers_is_a_list(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"pair\":[{\"key\":\"k\",\"value\":\"v\"}]}", NULL);
	assert_int_equal(c->n_pair, 1);
	assert_string_equal(c->pair[0]->key, "k");
}

/* ---- the one-field unwrap, inward ---- */

static void test_in_one_field_message_takes_the_bare_value(void **state)
{
	Cairn__Test__TaskId *t;
	Cairn__Test__NodeList *l;
	Cairn__Test__LabelMap *m;
	Cairn__Test__NodeRef *r;

	(void)state;
	t = decoded(&cairn__test__task_id__descriptor, "\"UPID:x\"", NULL);
	assert_string_equal(t->upid, "UPID:x");
	l = decoded(&cairn__test__node_list__descriptor,
	            "[{\"name\":\"a\"},{\"name\":\"b\"}]", NULL);
	assert_int_equal(l->n_nodes, 2);
	assert_string_equal(l->nodes[1]->name, "b");
	m = decoded(&cairn__test__label_map__descriptor, "{\"a\":\"b\"}", NULL);
	assert_int_equal(m->n_labels, 1);
	assert_string_equal(m->labels[0]->key, "a");
	r = decoded(&cairn__test__node_ref__descriptor, "{\"name\":\"n\"}",
	            NULL);
	assert_string_equal(r->node->name, "n");
	t = decoded(&cairn__test__task_id__descriptor, "null", NULL);
	assert_null(t->upid);
}

static void test_in_one_field_message_takes_the_wrapper_object(void **state)
{
	Cairn__Test__TaskId *t;
	Cairn__Test__NodeList *l;
	Cairn__Test__LabelMap *m;
	Cairn__Test__NodeRef *r;
	Cairn__Test__NextId *n;

	(void)state;
	t = decoded(&cairn__test__task_id__descriptor, "{\"upid\":\"U\"}",
	            NULL);
	assert_string_equal(t->upid, "U");
	t = decoded(&cairn__test__task_id__descriptor, "{}", NULL);
	assert_null(t->upid);
	l = decoded(&cairn__test__node_list__descriptor,
	            "{\"nodes\":[{\"name\":\"a\"}]}", NULL);
	assert_int_equal(l->n_nodes, 1);
	m = decoded(&cairn__test__label_map__descriptor,
	            "{\"labels\":{\"a\":\"b\"}}", NULL);
	assert_int_equal(m->n_labels, 1);
	assert_string_equal(m->labels[0]->key, "a");
	/* A map whose one key is "labels" but holds a string: bare. */
	m = decoded(&cairn__test__label_map__descriptor, "{\"labels\":\"b\"}",
	            NULL);
	assert_string_equal(m->labels[0]->key, "labels");
	r = decoded(&cairn__test__node_ref__descriptor,
	            "{\"node\":{\"name\":\"n\"}}", NULL);
	assert_string_equal(r->node->name, "n");
	/* Query-string parameters: GET /cluster/nextid?vmid=100 */
	n = decoded(&cairn__test__next_id__descriptor, "{\"vmid\":\"100\"}",
	            &form);
	assert_true(n->has_vmid && n->vmid == 100);
	/* An unknown key in the wrapper is an unknown parameter. */
	assert_rejected(&cairn__test__task_id__descriptor,
	                "{\"upid\":\"U\",\"x\":1}", NULL,
	                "x: property is not defined in schema and the schema "
	                "does not allow additional properties");
}

static void
test_in_one_field_wrapper_named_like_inner_key_reads_bare(void **state)
{
	Cairn__Test__HolderRef *r;

	(void)state;
	/* Holder has a field "holder" too: the object is the bare Holder. */
	r = decoded(&cairn__test__holder_ref__descriptor,
	            "{\"holder\":{\"text\":\"in\"}}", NULL);
	assert_non_null(r->holder);
	assert_null(r->holder->text);
	assert_string_equal(r->holder->holder->text, "in");
}

static void test_in_one_field_bare_value_errors_name_the_field(void **state)
{
	(void)state;
	assert_rejected(&cairn__test__task_id__descriptor, "5", NULL,
	                "upid: expected a string, got an integer");
	assert_rejected(&cairn__test__node_list__descriptor,
	                "[{\"name\":\"a\"},{\"name\":1}]", NULL,
	                "nodes[1].name: expected a string, got an integer");
	assert_rejected(&cairn__test__must_name__descriptor, "null", NULL,
	                "name: property is missing and it is not optional");
}

static void test_in_no_unwrap_override_takes_only_the_object(void **state)
{
	Cairn__Test__Kept *k;

	(void)state;
	k = decoded(&cairn__test__kept__descriptor, "{\"upid\":\"u\"}",
	            &with_overrides);
	assert_string_equal(k->upid, "u");
	assert_rejected(&cairn__test__kept__descriptor, "\"u\"",
	                &with_overrides, "expected an object, got a string");
}

/* ---- overrides, inward ---- */

static void test_in_as_string_override_accepts_string_or_number(void **state)
{
	Cairn__Test__Flags *f;
	Cairn__Test__NextId *n;

	(void)state;
	n = decoded(&cairn__test__next_id__descriptor, "\"100\"",
	            &with_overrides);
	assert_int_equal(n->vmid, 100);
	n = decoded(&cairn__test__next_id__descriptor, "101", &with_overrides);
	assert_int_equal(n->vmid, 101);
	f = decoded(&cairn__test__flags__descriptor,
	            "{\"size\":\"-5\",\"ports\":[\"22\",80]}", &with_overrides);
	assert_true(f->size == -5);
	assert_int_equal(f->ports[0], 22);
	assert_int_equal(f->ports[1], 80);
	assert_rejected(&cairn__test__next_id__descriptor, "\"1x\"",
	                &with_overrides, "vmid: expected an integer, got '1x'");
	assert_rejected(&cairn__test__next_id__descriptor, "\"-1\"",
	                &with_overrides,
	                "vmid: -1 is out of range for a uint32");
}

static void test_in_rename_override_uses_only_the_new_name(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"with-local-disks\":1}", &with_overrides);
	assert_true(c->has_with_local_disks && c->with_local_disks);
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"with_local_disks\":1}", &with_overrides),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "with_local_disks: property is not "
	                              "defined"));
}

/* ---- strings_are_values: query strings and form bodies ---- */

static void test_form_values_are_read_from_text(void **state)
{
	Cairn__Test__CreateRequest *r;
	Cairn__Test__Scalars *s;

	(void)state;
	r = decoded(&cairn__test__create_request__descriptor,
	            "{\"node\":\"n1\",\"vmid\":\"100\",\"memory\":\"2048\","
	            "\"start\":\"1\",\"name\":\"007\"}",
	            &form);
	assert_string_equal(r->node, "n1");
	assert_int_equal(r->vmid, 100);
	assert_true(r->has_memory && r->memory == 2048);
	assert_true(r->has_start && r->start);
	assert_string_equal(r->name, "007");
	s = decoded(&cairn__test__scalars__descriptor,
	            "{\"db\":\"-0.25e1\",\"fl\":\".5\",\"i32\":\"-7\","
	            "\"status\":\"stopped\",\"blob\":\"YWJj\",\"u64\":9}",
	            &form);
	assert_true(s->db == -2.5);
	assert_true(s->fl == 0.5f);
	assert_int_equal(s->i32, -7);
	assert_int_equal(s->status,
	                 CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_STOPPED);
	assert_true(s->u64 == 9); /* JSON numbers still do */
}

static void test_form_bools_accept_one_zero_true_false(void **state)
{
	static const struct {
		const char *json;
		bool want;
	} cases[] = {
	        {"{\"flag\":\"1\"}", true},    {"{\"flag\":\"0\"}", false},
	        {"{\"flag\":\"true\"}", true}, {"{\"flag\":\"False\"}", false},
	        {"{\"flag\":\"TRUE\"}", true}, {"{\"flag\":true}", true},
	        {"{\"flag\":0}", false},
	};
	Cairn__Test__Scalars *s;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		s = decoded(&cairn__test__scalars__descriptor, cases[i].json,
		            &form);
		assert_true(s->has_flag);
		assert_int_equal(s->flag, cases[i].want);
	}
}

static void test_form_rejects_text_that_is_not_the_type(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	        {"{\"i32\":\"1.5\"}", "i32: expected an integer, got '1.5'"},
	        {"{\"i32\":\"\"}", "i32: expected an integer, got ''"},
	        {"{\"i32\":\" 5\"}", "i32: expected an integer, got ' 5'"},
	        {"{\"i32\":\"+5\"}", "i32: expected an integer, got '+5'"},
	        {"{\"i32\":\"0x10\"}", "i32: expected an integer, got '0x10'"},
	        {"{\"u32\":\"-1\"}", "u32: -1 is out of range for a uint32"},
	        {"{\"i32\":\"2147483648\"}",
	         "i32: 2147483648 is out of range for an int32"},
	        {"{\"flag\":\"yes\"}",
	         "flag: expected a boolean (0, 1, true or false), got 'yes'"},
	        {"{\"flag\":\"2\"}",
	         "flag: expected a boolean (0, 1, true or false), got '2'"},
	        {"{\"db\":\"nan\"}", "db: expected a number, got 'nan'"},
	        {"{\"db\":\"1e999\"}", "db: expected a number, got '1e999'"},
	        {"{\"db\":\"0x1p3\"}", "db: expected a number, got '0x1p3'"},
	        {"{\"db\":\"\"}", "db: expected a number, got ''"},
	        {"{\"status\":\"1\"}",
	         "status: expected one of running, stopped, io-error; got '1'"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++)
		assert_rejected(&cairn__test__scalars__descriptor,
		                cases[i].json, &form, cases[i].want);
}

static void test_form_repeated_field_takes_a_single_value(void **state)
{
	Cairn__Test__Cluster *c;

	(void)state;
	c = decoded(&cairn__test__cluster__descriptor,
	            "{\"vmids\":\"100\",\"names\":\"a\","
	            "\"counters\":[\"1\",\"2\"]}",
	            &form);
	assert_int_equal(c->n_vmids, 1);
	assert_int_equal(c->vmids[0], 100);
	assert_int_equal(c->n_names, 1);
	assert_string_equal(c->names[0], "a");
	assert_int_equal(c->n_counters, 2);
	/* Not in JSON mode. */
	assert_int_equal(decode(&cairn__test__cluster__descriptor,
	                        "{\"names\":\"a\"}", NULL),
	                 -EINVAL);
}

/* ---- collected parameter errors: Proxmox's 400 body ---- */

static void test_errors_collects_every_bad_parameter(void **state)
{
	(void)state;
	collected = json_object();
	assert_int_equal(decode(&cairn__test__create_request__descriptor,
	                        "{\"vmid\":\"abc\",\"nmae\":\"x\","
	                        "\"memory\":1,\"peers\":[{\"name\":5}]}",
	                        NULL),
	                 -EINVAL);
	assert_int_equal(json_object_size(collected), 4);
	assert_string_equal(
	        json_string_value(json_object_get(collected, "nmae")),
	        "property is not defined in schema and the schema does not "
	        "allow additional properties");
	assert_string_equal(
	        json_string_value(json_object_get(collected, "node")),
	        "property is missing and it is not optional");
	assert_string_equal(
	        json_string_value(json_object_get(collected, "vmid")),
	        "expected an integer, got a string");
	assert_string_equal(
	        json_string_value(json_object_get(collected, "peers")),
	        "peers[0].name: expected a string, got an integer");
	/* e holds the first, and says how many more there were. */
	assert_string_equal(e.msg,
	                    "nmae: property is not defined in schema and the "
	                    "schema does not allow additional properties "
	                    "(and 3 more)");
}

static void test_errors_one_bad_parameter_has_no_suffix(void **state)
{
	(void)state;
	collected = json_object();
	assert_int_equal(decode(&cairn__test__create_request__descriptor,
	                        "{\"node\":\"n\",\"vmid\":\"x\"}", &form),
	                 -EINVAL);
	assert_int_equal(json_object_size(collected), 1);
	assert_string_equal(
	        json_string_value(json_object_get(collected, "vmid")),
	        "expected an integer, got 'x'");
	assert_string_equal(e.msg, "vmid: expected an integer, got 'x'");
}

static void test_errors_limits_are_collected_too(void **state)
{
	struct proto_json_options o = {.max_repeated = 1};

	(void)state;
	collected = json_object();
	assert_int_equal(decode(&cairn__test__create_request__descriptor,
	                        "{\"node\":\"n\",\"vmid\":1,\"peers\":"
	                        "[{\"name\":\"a\"},{\"name\":\"b\"}],"
	                        "\"start\":5}",
	                        &o),
	                 -EINVAL); /* the first error's code: start */
	assert_int_equal(json_object_size(collected), 2);
	assert_non_null(json_object_get(collected, "peers"));
	assert_non_null(json_object_get(collected, "start"));
}

static void test_errors_input_not_an_object_sets_no_entry(void **state)
{
	(void)state;
	collected = json_object();
	assert_int_equal(
	        decode(&cairn__test__create_request__descriptor, "[1]", NULL),
	        -EINVAL);
	assert_int_equal(json_object_size(collected), 0);
	assert_string_equal(e.msg, "expected an object, got an array");
}

static void test_errors_on_valid_input_stay_empty(void **state)
{
	(void)state;
	collected = json_object();
	decoded(&cairn__test__create_request__descriptor,
	        "{\"node\":\"n\",\"vmid\":1}", NULL);
	assert_int_equal(json_object_size(collected), 0);
}

/* ======================================================================
 * Round trips: message -> JSON -> message packs to the same bytes. */

static void test_round_trip_mid_size_message(void **state)
{
	(void)state;
	assert_round_trip(cluster(), NULL);
	assert_round_trip(cluster(), &with_overrides);
}

static void test_round_trip_scalar_extremes(void **state)
{
	Cairn__Test__Scalars s = CAIRN__TEST__SCALARS__INIT;

	(void)state;
	s.has_i32 = s.has_s32 = s.has_sf32 = s.has_i64 = s.has_s64 = 1;
	s.has_sf64 = s.has_u32 = s.has_f32 = s.has_u64 = s.has_f64 = 1;
	s.has_fl = s.has_db = s.has_flag = s.has_blob = s.has_status = 1;
	s.i32 = INT32_MIN;
	s.s32 = INT32_MAX;
	s.sf32 = -1;
	s.i64 = INT64_MIN;
	s.s64 = INT64_MAX;
	s.sf64 = INT64_MIN;
	s.u32 = UINT32_MAX;
	s.f32 = UINT32_MAX;
	s.u64 = UINT64_MAX;
	s.f64 = (uint64_t)INT64_MAX + 1;
	s.fl = FLT_MAX;
	s.db = 0.1;
	s.text = "";
	s.greeting = "\xf0\x9f\x98\x80 \" \\ \n";
	s.status = CAIRN__TEST__GUEST_STATUS__GUEST_STATUS_RUNNING;
	assert_round_trip(&s, NULL);
	s.fl = -INFINITY;
	s.db = DBL_MIN;
	assert_round_trip(&s, NULL);
	assert_round_trip(&s, &form);
}

static void test_round_trip_one_field_messages(void **state)
{
	Cairn__Test__TaskId t = CAIRN__TEST__TASK_ID__INIT;
	Cairn__Test__NextId n = CAIRN__TEST__NEXT_ID__INIT;
	Cairn__Test__NodeRef r = CAIRN__TEST__NODE_REF__INIT;
	Cairn__Test__Node node = CAIRN__TEST__NODE__INIT;
	Cairn__Test__HolderRef hr = CAIRN__TEST__HOLDER_REF__INIT;
	Cairn__Test__Holder outer = CAIRN__TEST__HOLDER__INIT;
	Cairn__Test__Holder inner = CAIRN__TEST__HOLDER__INIT;
	Cairn__Test__Kept k = CAIRN__TEST__KEPT__INIT;

	(void)state;
	assert_round_trip(&t, NULL);
	t.upid = "UPID:n1:1:2:3:qmstart:100:root@pam:";
	assert_round_trip(&t, NULL);
	n.has_vmid = 1;
	n.vmid = 4000000000U;
	assert_round_trip(&n, NULL);
	assert_round_trip(&n, &with_overrides);
	assert_round_trip(&r, NULL);
	node.name = "n";
	r.node = &node;
	assert_round_trip(&r, NULL);
	hr.holder = &outer;
	assert_round_trip(&hr, NULL); /* present and empty */
	outer.holder = &inner;
	inner.text = "x";
	assert_round_trip(&hr, NULL);
	k.upid = "u";
	assert_round_trip(&k, &with_overrides);
}

static void test_round_trip_maps_and_lists(void **state)
{
	Cairn__Test__NodeList l = CAIRN__TEST__NODE_LIST__INIT;
	Cairn__Test__LabelMap m = CAIRN__TEST__LABEL_MAP__INIT;
	Cairn__Test__LabelMap__LabelsEntry a =
	        CAIRN__TEST__LABEL_MAP__LABELS_ENTRY__INIT;
	Cairn__Test__LabelMap__LabelsEntry b =
	        CAIRN__TEST__LABEL_MAP__LABELS_ENTRY__INIT;
	Cairn__Test__LabelMap__LabelsEntry *ls[] = {&a, &b};
	Cairn__Test__Node n1 = CAIRN__TEST__NODE__INIT;
	Cairn__Test__Node *nodes[] = {&n1};

	(void)state;
	assert_round_trip(&l, NULL);
	n1.name = "n1";
	l.n_nodes = 1;
	l.nodes = nodes;
	assert_round_trip(&l, NULL);
	assert_round_trip(&m, NULL);
	a.key = "labels"; /* the field's own name, holding a string */
	a.value = "x";
	b.key = "";
	b.value = "";
	m.n_labels = 2;
	m.labels = ls;
	assert_round_trip(&m, NULL);
}

/* ======================================================================
 * Allocation failure sweeps: every failure is -ENOMEM and frees
 * everything (LeakSanitizer checks at exit). */

static void test_alloc_failure_sweep_to_json(void **state)
{
	const ProtobufCMessage *c = &cluster()->base;
	json_t *v;
	long n;
	int rv;

	(void)state;
	for (n = 0;; n++) {
		v = NULL;
		err_clear(&e);
		mem_fail_after(n);
		rv = proto_json_from_message(c, &with_overrides, &v, &e);
		mem_fail_reset();
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
		assert_null(v);
		assert_true(n < 100000);
	}
	assert_true(n > 50); /* the sweep reached jansson's allocations */
	text = json_to_text(v);
	json_decref(v);
	assert_non_null(strstr(text, "\"with-local-disks\":1"));
}

static void test_alloc_failure_sweep_from_json(void **state)
{
	json_t *in = parse(cluster_json);
	ProtobufCMessage *m;
	long n;
	int rv;

	(void)state;
	for (n = 0;; n++) {
		m = NULL;
		err_clear(&e);
		mem_fail_after(n);
		rv = proto_json_to_message(&cairn__test__cluster__descriptor,
		                           in, NULL, &m, NULL, &e);
		mem_fail_reset();
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
		assert_null(m);
		assert_true(n < 100000);
	}
	assert_true(n > 30);
	assert_same_bytes(&cluster()->base, m);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(in);
}

static void test_alloc_failure_sweep_while_collecting_errors(void **state)
{
	json_t *in = parse("{\"vmid\":\"abc\",\"nmae\":\"x\",\"memory\":1,"
	                   "\"peers\":[{\"name\":\"a\"},{\"name\":5}]}");
	ProtobufCMessage *m;
	json_t *errors;
	long n;
	int rv;

	(void)state;
	for (n = 0;; n++) {
		m = NULL;
		errors = json_object();
		assert_non_null(errors);
		mem_fail_after(n);
		rv = proto_json_to_message(
		        &cairn__test__create_request__descriptor, in, NULL, &m,
		        errors, &e);
		mem_fail_reset();
		assert_null(m);
		if (rv != -ENOMEM)
			break;
		json_decref(errors);
		assert_true(n < 100000);
	}
	assert_int_equal(rv, -EINVAL);
	assert_int_equal(json_object_size(errors), 4);
	json_decref(errors);
	json_decref(in);
}

static void test_allocator_routes_unpack_through_mem_alloc(void **state)
{
	uint8_t *packed;
	size_t len = pack(&cluster()->base, &packed);
	ProtobufCMessage *m;

	(void)state;
	mem_fail_after(0);
	m = protobuf_c_message_unpack(&cairn__test__cluster__descriptor,
	                              proto_allocator(), len, packed);
	mem_fail_reset();
	assert_null(m);
	m = protobuf_c_message_unpack(&cairn__test__cluster__descriptor,
	                              proto_allocator(), len, packed);
	assert_non_null(m);
	protobuf_c_message_free_unpacked(m, NULL);
	mem_free(packed);
}

/* Every jansson allocation goes through mem_alloc, so that the sweeps
 * reach them too. */
static int group_setup(void **state)
{
	(void)state;
	json_set_alloc_funcs(mem_alloc, mem_free);
	return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_out_every_scalar_type),
	        T(test_out_unset_optional_fields_are_left_out),
	        T(test_out_bool_is_one_or_zero),
	        T(test_out_64_bit_extremes_are_numbers),
	        T(test_out_uint64_above_int64_max_is_a_string),
	        T(test_out_non_finite_floats_are_strings),
	        T(test_out_enum_drops_type_prefix_lowercases_and_dashes),
	        T(test_out_enum_number_outside_the_enum_is_a_number),
	        T(test_out_mid_size_message_has_every_shape),
	        T(test_out_empty_repeated_and_map_fields_are_written),
	        T(test_out_map_entry_without_value_writes_default),
	        T(test_out_oneof_writes_only_the_chosen_member),
	        T(test_out_one_field_string_message_is_a_bare_string),
	        T(test_out_one_field_list_message_is_a_bare_array),
	        T(test_out_one_field_message_unset_is_null),
	        T(test_out_one_field_map_message_is_a_bare_object),
	        T(test_out_nested_one_field_messages_stay_objects),
	        T(test_out_override_as_string),
	        T(test_out_override_true_false),
	        T(test_out_override_no_unwrap_keeps_an_object),
	        T(test_out_override_rename),
	        T(test_out_invalid_utf8_fails_naming_the_field),
	        T(test_out_deeper_than_max_depth_fails),
	        T(test_in_every_scalar_type),
	        T(test_in_absent_fields_stay_unset_with_defaults),
	        T(test_in_null_member_counts_as_absent),
	        T(test_in_null_element_fails),
	        T(test_in_bool_accepts_true_false_one_zero),
	        T(test_in_bool_rejects_other_values),
	        T(test_in_enum_names),
	        T(test_in_unknown_enum_name_fails_listing_choices),
	        T(test_in_bytes_are_base64),
	        T(test_in_bad_base64_fails),
	        T(test_in_64_bit_integers_accept_decimal_strings),
	        T(test_in_integers_out_of_range_fail),
	        T(test_in_range_bounds_are_accepted),
	        T(test_in_integers_beyond_64_bits_fail_in_the_parser),
	        T(test_in_floats_for_integers_fail),
	        T(test_in_strings_for_32_bit_integers_fail),
	        T(test_in_numbers_for_floats),
	        T(test_in_non_finite_float_strings),
	        T(test_in_wrong_types_at_every_level_name_the_path),
	        T(test_in_unknown_keys_fail_naming_the_key),
	        T(test_in_missing_required_fields_fail),
	        T(test_in_oneof_takes_one_member),
	        T(test_in_oneof_with_two_members_fails),
	        T(test_in_nul_in_strings_fails),
	        T(test_in_invalid_utf8_fails),
	        T(test_in_duplicate_keys_fail_in_the_parser),
	        T(test_in_deeper_than_max_depth_fails),
	        T(test_in_huge_arrays_fail_with_e2big),
	        T(test_in_huge_maps_fail_with_e2big),
	        T(test_in_larger_than_max_bytes_fails_with_e2big),
	        T(test_in_many_small_elements_count_toward_max_bytes),
	        T(test_in_maps),
	        T(test_in_entry_with_swapped_numbers_is_a_list),
	        T(test_in_one_field_message_takes_the_bare_value),
	        T(test_in_one_field_message_takes_the_wrapper_object),
	        T(test_in_one_field_wrapper_named_like_inner_key_reads_bare),
	        T(test_in_one_field_bare_value_errors_name_the_field),
	        T(test_in_no_unwrap_override_takes_only_the_object),
	        T(test_in_as_string_override_accepts_string_or_number),
	        T(test_in_rename_override_uses_only_the_new_name),
	        T(test_form_values_are_read_from_text),
	        T(test_form_bools_accept_one_zero_true_false),
	        T(test_form_rejects_text_that_is_not_the_type),
	        T(test_form_repeated_field_takes_a_single_value),
	        T(test_errors_collects_every_bad_parameter),
	        T(test_errors_one_bad_parameter_has_no_suffix),
	        T(test_errors_limits_are_collected_too),
	        T(test_errors_input_not_an_object_sets_no_entry),
	        T(test_errors_on_valid_input_stay_empty),
	        T(test_round_trip_mid_size_message),
	        T(test_round_trip_scalar_extremes),
	        T(test_round_trip_one_field_messages),
	        T(test_round_trip_maps_and_lists),
	        T(test_alloc_failure_sweep_to_json),
	        T(test_alloc_failure_sweep_from_json),
	        T(test_alloc_failure_sweep_while_collecting_errors),
	        T(test_allocator_routes_unpack_through_mem_alloc),
	};

	return cmocka_run_group_tests_name("proto/json", tests, group_setup,
	                                   NULL);
}
