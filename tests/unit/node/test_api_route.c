/* The REST router and the Proxmox-style answers: templates, escapes,
 * parameter sources and their conflicts, limits, status lines and bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/api_error.h"
#include "node/api_route.h"

static const struct api_route routes[] = {
        {API_GET, "/version", "version"},
        {API_GET, "/cluster/nextid", "nextid"},
        {API_GET, "/nodes/{node}/qemu", "qemu"},
        {API_POST, "/nodes/{node}/qemu/{vmid}/status/start", "start"},
        {API_GET, "/nodes/{node}/storage/{storage}/content/{volume*}",
         "content"},
        {API_DELETE, "/nodes/{node}/storage/{storage}/content/{volume*}",
         "content-delete"},
        {API_GET, "/nodes/{node}/tasks/{upid}/status", "task"},
        {API_PUT, "/nodes/{node}/qemu/{vmid}/config", "config"},
};

/* Resolves and returns the rv; m, errors and e for the checks. */
struct fixture {
	struct api_match m;
	json_t *errors;
	struct err e;
};

static int resolve_full(struct fixture *f, const char *method, const char *path,
                        const char *ct, const char *body)
{
	struct api_request in = {
	        .method = method,
	        .method_len = strlen(method),
	        .path = path,
	        .path_len = strlen(path),
	        .content_type = ct,
	        .content_type_len = ct != NULL ? strlen(ct) : 0,
	        .body = body,
	        .body_len = body != NULL ? strlen(body) : 0,
	};

	api_match_free(&f->m);
	json_decref(f->errors);
	f->errors = json_object();
	return api_route_resolve(routes, CAIRN_ARRAY_SIZE(routes), &in, &f->m,
	                         f->errors, &f->e);
}

static int resolve(struct fixture *f, const char *method, const char *path)
{
	return resolve_full(f, method, path, NULL, NULL);
}

static const char *param(struct fixture *f, const char *name)
{
	return json_string_value(json_object_get(f->m.params, name));
}

static const char *handler(struct fixture *f)
{
	return f->m.route != NULL ? f->m.route->handler : NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	*state = f;
	return f == NULL;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_match_free(&f->m);
	json_decref(f->errors);
	free(f);
	return 0;
}

static void test_route_table_is_well_formed(void **state)
{
	struct err e;

	(void)state;
	assert_int_equal(
	        api_route_table_check(routes, CAIRN_ARRAY_SIZE(routes), &e), 0);
}

static void test_bad_templates_are_refused(void **state)
{
	static const struct api_route rest_not_last[] = {
	        {API_GET, "/a/{v*}/b", NULL}};
	static const struct api_route twice[] = {
	        {API_GET, "/a/{v}/b/{v}", NULL}};
	static const struct api_route bad_name[] = {
	        {API_GET, "/a/{v x}", NULL}};
	struct err e;

	(void)state;
	assert_int_equal(api_route_table_check(rest_not_last, 1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "must be last"));
	assert_int_equal(api_route_table_check(twice, 1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "named twice"));
	assert_int_equal(api_route_table_check(bad_name, 1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bad parameter name"));
}

static void test_literal_route_matches(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/version"), 0);
	assert_string_equal(handler(f), "version");
	assert_int_equal(json_object_size(f->m.params), 0);
	assert_string_equal(f->m.path, "/version");
}

static void test_path_parameters_are_read(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	        resolve(f, "POST", "/api2/json/nodes/n1/qemu/100/status/start"),
	        0);
	assert_string_equal(handler(f), "start");
	assert_string_equal(param(f, "node"), "n1");
	assert_string_equal(param(f, "vmid"), "100");
}

static void test_unknown_path_is_not_implemented(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n1/nothing"),
	                 -ENOENT);
	assert_string_equal(f->e.msg,
	                    "Method 'GET /nodes/n1/nothing' not implemented");
	assert_int_equal(resolve(f, "GET", "/other/version"), -ENOENT);
	assert_int_equal(resolve(f, "GET", "/api2/jsonversion"), -ENOENT);
}

static void test_known_path_with_other_method_is_not_supported(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "POST", "/api2/json/version"), -ENOTSUP);
	assert_non_null(strstr(f->e.msg, "'POST /version' not implemented"));
	assert_int_equal(resolve(f, "PATCH", "/api2/json/version"), -ENOTSUP);
}

static void test_rest_parameter_takes_raw_slashes(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET",
	                         "/api2/json/nodes/n1/storage/local/content/"
	                         "local:iso/debian.iso"),
	                 0);
	assert_string_equal(handler(f), "content");
	assert_string_equal(param(f, "volume"), "local:iso/debian.iso");
	assert_string_equal(param(f, "storage"), "local");
}

static void test_rest_parameter_takes_escaped_slashes(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "DELETE",
	                         "/api2/json/nodes/n1/storage/local/content/"
	                         "local%3Aiso%2Fdebian.iso"),
	                 0);
	assert_string_equal(handler(f), "content-delete");
	assert_string_equal(param(f, "volume"), "local:iso/debian.iso");
}

static void test_escaped_slash_does_not_split_a_plain_parameter(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n1%2Fx/qemu"),
	                 -ENOENT);
}

static void test_upid_with_colons_at_and_bang(void **state)
{
	struct fixture *f = *state;
	const char *upid = "UPID:n1:0000A1B2:00C0FFEE:65F00000:qmstart:100:"
	                   "root@pam!ci:";
	char path[512];

	snprintf(path, sizeof path, "/api2/json/nodes/n1/tasks/%s/status",
	         upid);
	assert_int_equal(resolve(f, "GET", path), 0);
	assert_string_equal(handler(f), "task");
	assert_string_equal(param(f, "upid"), upid);
}

static void test_bad_escapes_are_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n%zz/qemu"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "bad escape"));
	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n1%2/qemu"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "truncated escape"));
	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n%00/qemu"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "NUL"));
	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n%C3%28/qemu"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "UTF-8"));
}

static void test_percent_decode_of_form_text(void **state)
{
	char out[64];
	size_t n;
	struct err e;

	(void)state;
	assert_int_equal(
	        api_percent_decode("a+b%20c%2b", 10, true, out, &n, &e), 0);
	assert_string_equal(out, "a b c+");
	assert_int_equal(n, 6);
	assert_int_equal(api_percent_decode("a+b", 3, false, out, &n, &e), 0);
	assert_string_equal(out, "a+b");
	assert_int_equal(api_percent_decode("%", 1, true, out, &n, &e),
	                 -EINVAL);
}

static void test_query_string_parameters_are_read(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	        resolve(f, "GET",
	                "/api2/json/cluster/nextid?vmid=100&note=a+b%21&_dc=1"),
	        0);
	assert_string_equal(param(f, "vmid"), "100");
	assert_string_equal(param(f, "note"), "a b!");
	assert_null(json_object_get(f->m.params, "_dc"));
}

static void test_repeated_query_name_is_a_list(void **state)
{
	struct fixture *f = *state;
	json_t *list;

	assert_int_equal(resolve(f, "GET", "/api2/json/cluster/nextid?t=a&t=b"),
	                 0);
	list = json_object_get(f->m.params, "t");
	assert_true(json_is_array(list));
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_array_get(list, 1)), "b");
}

static void test_bad_query_value_names_the_parameter(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	        resolve(f, "GET", "/api2/json/cluster/nextid?vmid=%G1"),
	        -EINVAL);
	assert_non_null(json_object_get(f->errors, "vmid"));
	assert_non_null(strstr(f->e.msg, "vmid: bad escape"));
}

static void test_bad_parameter_name_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/cluster/nextid?a%20b=1"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "bad parameter name 'a b'"));
}

static void test_form_body_parameters_are_read(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "application/x-www-form-urlencoded; "
	                              "charset=UTF-8",
	                              "memory=2048&name=web+1"),
	                 0);
	assert_string_equal(handler(f), "config");
	assert_string_equal(param(f, "memory"), "2048");
	assert_string_equal(param(f, "name"), "web 1");
	assert_string_equal(param(f, "vmid"), "100");
}

static void test_body_without_content_type_is_a_form(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              NULL, "cores=2"),
	                 0);
	assert_string_equal(param(f, "cores"), "2");
}

static void test_json_body_keeps_its_types(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "application/json",
	                              "{\"cores\": 2, \"onboot\": true, "
	                              "\"lock\": null}"),
	                 0);
	assert_int_equal(
	        json_integer_value(json_object_get(f->m.params, "cores")), 2);
	assert_true(json_is_true(json_object_get(f->m.params, "onboot")));
	assert_null(json_object_get(f->m.params, "lock"));
}

static void test_json_body_must_be_an_object(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "application/json", "[1]"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "expected an object, got an array"));
	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "application/json", "{\"a\":"),
	                 -EINVAL);
	assert_non_null(strstr(f->e.msg, "JSON body"));
}

static void test_other_content_type_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "text/plain", "x"),
	                 -EPROTONOSUPPORT);
	assert_non_null(strstr(f->e.msg, "'text/plain'"));
}

static void test_get_ignores_a_body(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "GET", "/api2/json/version",
	                              "text/plain", "x=1"),
	                 0);
	assert_int_equal(json_object_size(f->m.params), 0);
}

static void test_same_value_from_two_sources_is_fine(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              "application/json", "{\"vmid\": 100}"),
	                 0);
	assert_string_equal(param(f, "vmid"), "100");
}

static void test_conflict_between_path_and_query_names_both(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve(f, "GET", "/api2/json/nodes/n1/qemu?node=n2"),
	                 -EINVAL);
	assert_string_equal(
	        json_string_value(json_object_get(f->errors, "node")),
	        "given in the path and in the query string with "
	        "different values");
}

static void test_conflict_between_path_and_body_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              NULL, "vmid=101"),
	                 -EINVAL);
	assert_non_null(json_object_get(f->errors, "vmid"));
	assert_non_null(strstr(f->e.msg, "vmid: given in the path"));
}

static void test_conflict_between_query_and_body_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/"
	                              "config?cores=1",
	                              NULL, "cores=2"),
	                 -EINVAL);
	assert_non_null(json_object_get(f->errors, "cores"));
}

static void test_limits_are_enforced(void **state)
{
	struct fixture *f = *state;
	static char path[API_PATH_MAX + 64];
	static char body[(API_PARAMS_MAX + 2) * 12];
	size_t used = 0;
	int i;

	memset(path, 'a', sizeof path - 1);
	memcpy(path, "/api2/json/", 11);
	assert_int_equal(resolve(f, "GET", path), -ENAMETOOLONG);

	used = (size_t)snprintf(path, sizeof path, "/api2/json");
	for (i = 0; i <= API_SEGMENTS_MAX; i++)
		used += (size_t)snprintf(path + used, sizeof path - used, "/s");
	assert_int_equal(resolve(f, "GET", path), -E2BIG);

	used = 0;
	for (i = 0; i <= API_PARAMS_MAX; i++)
		used += (size_t)snprintf(body + used, sizeof body - used,
		                         "p%d=1&", i);
	assert_int_equal(resolve_full(f, "PUT",
	                              "/api2/json/nodes/n1/qemu/100/config",
	                              NULL, body),
	                 -E2BIG);
}

/* --------------------------------------------------------- answers */

static void test_rpc_status_maps_to_proxmox_http_status(void **state)
{
	(void)state;
	assert_int_equal(api_http_status(RPC_STATUS_OK), 200);
	assert_int_equal(api_http_status(RPC_STATUS_INVALID_ARGUMENT), 400);
	assert_int_equal(api_http_status(RPC_STATUS_UNAUTHENTICATED), 401);
	assert_int_equal(api_http_status(RPC_STATUS_PERMISSION_DENIED), 403);
	assert_int_equal(api_http_status(RPC_STATUS_NOT_FOUND), 404);
	assert_int_equal(api_http_status(RPC_STATUS_ALREADY_EXISTS), 500);
	assert_int_equal(api_http_status(RPC_STATUS_DEADLINE_EXCEEDED), 500);
	assert_int_equal(api_http_status(RPC_STATUS_FAILED_PRECONDITION), 500);
	assert_int_equal(api_http_status(RPC_STATUS_UNIMPLEMENTED), 501);
	assert_int_equal(api_http_status(RPC_STATUS_UNAVAILABLE), 503);
}

static void test_reason_is_first_line_sanitised(void **state)
{
	char reason[API_REASON_MAX + 1];

	(void)state;
	api_reason_from_message("VM 100 already running\nmore detail\n", 500,
	                        reason);
	assert_string_equal(reason, "VM 100 already running");
	api_reason_from_message("bad\tname \xc3\xa9t\xc3\xa9\r\nx", 500,
	                        reason);
	assert_string_equal(reason, "bad?name ?t?");
	api_reason_from_message("\n", 404, reason);
	assert_string_equal(reason, "Not Found");
	api_reason_from_message(NULL, 500, reason);
	assert_string_equal(reason, "Internal Server Error");
}

static void test_long_reason_is_cut(void **state)
{
	char message[1000], reason[API_REASON_MAX + 1];

	(void)state;
	memset(message, 'x', sizeof message - 1);
	message[sizeof message - 1] = '\0';
	api_reason_from_message(message, 500, reason);
	assert_int_equal(strlen(reason), API_REASON_MAX);
	assert_string_equal(reason + API_REASON_MAX - 3, "...");
}

static void test_data_reply_wraps_in_data(void **state)
{
	struct api_reply r;
	struct err e;

	(void)state;
	assert_int_equal(api_reply_data(&r, json_string("100"), &e), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"data\":\"100\"}");
	api_reply_free(&r);
	assert_int_equal(api_reply_data(&r, NULL, &e), 0);
	assert_string_equal(r.body, "{\"data\":null}");
	api_reply_free(&r);
}

static void test_error_reply_has_message_and_reason(void **state)
{
	struct api_reply r;
	struct err e;

	(void)state;
	assert_int_equal(
	        api_reply_error(&r, 500, "VM 100 already running\nx", &e), 0);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.reason, "VM 100 already running");
	assert_string_equal(r.body, "{\"data\":null,\"message\":"
	                            "\"VM 100 already running\\nx\"}");
	api_reply_free(&r);
}

static void test_parameter_errors_reply_is_proxmox_400(void **state)
{
	struct api_reply r;
	struct err e;
	json_t *errors = json_pack("{s:s}", "vmid", "expected an integer");

	(void)state;
	assert_int_equal(api_reply_param_errors(&r, errors, &e), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.reason, "Parameter verification failed.");
	assert_string_equal(r.body,
	                    "{\"data\":null,\"message\":\"Parameter "
	                    "verification failed.\",\"errors\":{\"vmid\":"
	                    "\"expected an integer\"}}");
	api_reply_free(&r);
	json_decref(errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_route_table_is_well_formed),
	        cmocka_unit_test(test_bad_templates_are_refused),
	        cmocka_unit_test(test_literal_route_matches),
	        cmocka_unit_test(test_path_parameters_are_read),
	        cmocka_unit_test(test_unknown_path_is_not_implemented),
	        cmocka_unit_test(
	                test_known_path_with_other_method_is_not_supported),
	        cmocka_unit_test(test_rest_parameter_takes_raw_slashes),
	        cmocka_unit_test(test_rest_parameter_takes_escaped_slashes),
	        cmocka_unit_test(
	                test_escaped_slash_does_not_split_a_plain_parameter),
	        cmocka_unit_test(test_upid_with_colons_at_and_bang),
	        cmocka_unit_test(test_bad_escapes_are_refused),
	        cmocka_unit_test(test_percent_decode_of_form_text),
	        cmocka_unit_test(test_query_string_parameters_are_read),
	        cmocka_unit_test(test_repeated_query_name_is_a_list),
	        cmocka_unit_test(test_bad_query_value_names_the_parameter),
	        cmocka_unit_test(test_bad_parameter_name_is_refused),
	        cmocka_unit_test(test_form_body_parameters_are_read),
	        cmocka_unit_test(test_body_without_content_type_is_a_form),
	        cmocka_unit_test(test_json_body_keeps_its_types),
	        cmocka_unit_test(test_json_body_must_be_an_object),
	        cmocka_unit_test(test_other_content_type_is_refused),
	        cmocka_unit_test(test_get_ignores_a_body),
	        cmocka_unit_test(test_same_value_from_two_sources_is_fine),
	        cmocka_unit_test(
	                test_conflict_between_path_and_query_names_both),
	        cmocka_unit_test(
	                test_conflict_between_path_and_body_is_refused),
	        cmocka_unit_test(
	                test_conflict_between_query_and_body_is_refused),
	        cmocka_unit_test(test_limits_are_enforced),
	        cmocka_unit_test(test_rpc_status_maps_to_proxmox_http_status),
	        cmocka_unit_test(test_reason_is_first_line_sanitised),
	        cmocka_unit_test(test_long_reason_is_cut),
	        cmocka_unit_test(test_data_reply_wraps_in_data),
	        cmocka_unit_test(test_error_reply_has_message_and_reason),
	        cmocka_unit_test(test_parameter_errors_reply_is_proxmox_400),
	};

	return cmocka_run_group_tests_name("node/api_route", tests, setup,
	                                   teardown);
}
