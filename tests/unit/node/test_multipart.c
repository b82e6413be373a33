/* multipart/form-data bodies: fields, files with binary bytes, and the
 * malformed bodies a client (or an attacker) sends. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "node/multipart.h"

#define CT "multipart/form-data; boundary=XyZ"

static int parse(const char *body, size_t len, struct multipart_part *parts,
                 size_t *n)
{
	struct err e;

	return multipart_parse(body, len, "XyZ", parts, n, &e);
}

static void test_boundary(void **state)
{
	char b[MULTIPART_BOUNDARY_MAX + 1];
	struct err e;
	const char *q = "multipart/form-data; boundary=\"a b:c\"";
	char longer[200];

	(void)state;
	assert_int_equal(multipart_boundary(CT, strlen(CT), b, &e), 0);
	assert_string_equal(b, "XyZ");
	assert_int_equal(multipart_boundary(q, strlen(q), b, &e), 0);
	assert_string_equal(b, "a b:c");
	assert_int_equal(multipart_boundary("text/plain", 10, b, &e), -EINVAL);
	assert_int_equal(multipart_boundary("multipart/form-data", 19, b, &e),
	                 -EINVAL);
	snprintf(longer, sizeof longer, "multipart/form-data; boundary=%080d",
	         1);
	assert_int_equal(multipart_boundary(longer, strlen(longer), b, &e),
	                 -EINVAL);
	assert_int_equal(
	        multipart_boundary("multipart/form-data; boundary=a\x01", 32, b,
	                           &e),
	        -EINVAL);
}

static void test_fields_and_a_binary_file(void **state)
{
	static const char body[] =
	        "--XyZ\r\n"
	        "Content-Disposition: form-data; name=\"content\"\r\n\r\n"
	        "iso\r\n"
	        "--XyZ\r\n"
	        "Content-Disposition: form-data; name=\"filename\"; "
	        "filename=\"x.iso\"\r\n"
	        "Content-Type: application/octet-stream\r\n\r\n"
	        "a\r\n--X\0b\r\n"
	        "--XyZ--\r\n";
	struct multipart_part parts[MULTIPART_PARTS_MAX];
	size_t n;

	(void)state;
	assert_int_equal(parse(body, sizeof body - 1, parts, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(parts[0].name, "content");
	assert_string_equal(parts[0].filename, "");
	assert_int_equal(parts[0].len, 3);
	assert_memory_equal(parts[0].data, "iso", 3);
	assert_string_equal(parts[1].name, "filename");
	assert_string_equal(parts[1].filename, "x.iso");
	assert_int_equal(parts[1].len, 8);
	assert_memory_equal(parts[1].data, "a\r\n--X\0b", 8);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	        "", /* no boundary */
	        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv",
	        "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--",
	        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n"
	        "v\r\n--XyZ--",
	        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nv\r\n"
	        "--XyZ--",
	        "--XyZ garbage",
	        "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n"
	        "--XyZ--",
	};
	struct multipart_part parts[MULTIPART_PARTS_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++)
		assert_int_equal(parse(bad[i], strlen(bad[i]), parts, &n),
		                 -EINVAL);
}

static void test_too_many_parts(void **state)
{
	struct multipart_part parts[MULTIPART_PARTS_MAX];
	char body[8192];
	size_t len = 0, n;
	int i;

	(void)state;
	for (i = 0; i <= MULTIPART_PARTS_MAX; i++)
		len += (size_t)snprintf(body + len, sizeof body - len,
		                        "--XyZ\r\nContent-Disposition: "
		                        "form-data; name=\"p%d\"\r\n\r\nv\r\n",
		                        i);
	len += (size_t)snprintf(body + len, sizeof body - len, "--XyZ--\r\n");
	assert_int_equal(parse(body, len, parts, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_boundary),
	        cmocka_unit_test(test_fields_and_a_binary_file),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_too_many_parts),
	};

	return cmocka_run_group_tests_name("node/multipart", tests, NULL, NULL);
}
