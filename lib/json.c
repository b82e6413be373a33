/* Bounded JSON parsing and typed getters over jansson, for network input. */
#include <errno.h>
#include <string.h>

#include "lib.h"

/* jansson recurses once per nesting level and only stops at 2048; we cap
 * nesting far lower, before jansson runs, by scanning brackets outside
 * strings. */
static int check_depth(const char *text, size_t len, int max_depth,
                       struct err *e)
{
	bool in_string = false, escaped = false;
	int depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return err_set(
				        e, -EINVAL,
				        "JSON nested deeper than %d levels "
				        "at offset %zu",
				        max_depth, i);
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 0;
}

int json_parse_bounded(const char *text, size_t len, size_t max_len,
                       int max_depth, json_t **out, struct err *e)
{
	json_error_t jerr;
	json_t *value;
	int rv;

	if (len > max_len)
		return err_set(e, -E2BIG,
		               "JSON text of %zu bytes exceeds the "
		               "limit of %zu",
		               len, max_len);
	rv = check_depth(text, len, max_depth, e);
	if (rv != 0)
		return rv;
	value = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                   &jerr);
	if (value == NULL)
		return err_set(e, -EINVAL,
		               "invalid JSON at line %d column %d: %s",
		               jerr.line, jerr.column, jerr.text);
	*out = value;
	return 0;
}

const char *json_type_name(const json_t *v)
{
	if (v == NULL)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

static int lookup(const json_t *obj, const char *key, json_t **out,
                  struct err *e)
{
	json_t *v;

	if (!json_is_object(obj))
		return err_set(e, -EINVAL,
		               "expected an object holding '%s', got "
		               "%s",
		               key, json_type_name(obj));
	v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v))
		return err_set(e, -ENOENT, "'%s' is missing", key);
	*out = v;
	return 0;
}

int json_get_str(const json_t *obj, const char *key, const char **out,
                 struct err *e)
{
	json_t *v;
	int rv = lookup(obj, key, &v, e);

	if (rv != 0)
		return rv;
	if (!json_is_string(v))
		return err_set(e, -EINVAL, "'%s' must be a string, not %s", key,
		               json_type_name(v));
	*out = json_string_value(v);
	return 0;
}

int json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max,
                 int64_t *out, struct err *e)
{
	json_int_t n;
	json_t *v;
	int rv = lookup(obj, key, &v, e);

	if (rv != 0)
		return rv;
	if (!json_is_integer(v))
		return err_set(e, -EINVAL, "'%s' must be an integer, not %s",
		               key, json_type_name(v));
	n = json_integer_value(v);
	if (n < min || n > max)
		return err_set(e, -ERANGE,
		               "'%s' must be between %lld and %lld, "
		               "not %lld",
		               key, (long long)min, (long long)max,
		               (long long)n);
	*out = n;
	return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool *out, struct err *e)
{
	json_t *v;
	int rv = lookup(obj, key, &v, e);

	if (rv != 0)
		return rv;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v) &&
	    (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
		*out = json_integer_value(v) == 1;
		return 0;
	}
	return err_set(e, -EINVAL,
	               "'%s' must be a boolean (0, 1, true or "
	               "false), not %s",
	               key, json_type_name(v));
}

char *json_to_text(const json_t *value)
{
	return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}
