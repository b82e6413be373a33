/* The REST router: matches "METHOD /api2/json/<path>" against a table of
 * templates and merges the parameters of path, query string and body into
 * one JSON object for the generic JSON -> protobuf mapping.
 *
 * The raw path is split on '/' before any decoding, so that "%2F" inside a
 * segment never separates segments; a template's last "{name*}" parameter
 * takes the raw rest of the path and decodes it whole, so a volume id
 * arrives the same whether the client sent "local:iso/x.iso" raw
 * (proxmoxer) or "local:iso%2Fx.iso" (the Terraform providers). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "node/api_route.h"
#include "node/multipart.h"

/* ------------------------------------------------------------ names */

int api_method_parse(const char *text, size_t len)
{
	static const char *const names[] = {"GET", "POST", "PUT", "DELETE"};
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(names); i++) {
		if (strlen(names[i]) == len && memcmp(names[i], text, len) == 0)
			return (int)i;
	}
	return -1;
}

const char *api_method_name(enum api_method m)
{
	switch (m) {
	case API_GET:
		return "GET";
	case API_POST:
		return "POST";
	case API_PUT:
		return "PUT";
	case API_DELETE:
		return "DELETE";
	}
	return "?";
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static bool is_valid_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > API_PARAM_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_name_char(s[i]))
			return false;
	}
	return true;
}

/* ------------------------------------------------------- templates */

/* One segment of a template: a literal or "{name}" / "{name*}". */
struct tseg {
	const char *text; /* literal, or the parameter's name */
	size_t len;
	bool is_param;
	bool is_rest;
};

/* Reads the next segment of template *t; false at the end. */
static bool next_tseg(const char **t, struct tseg *s)
{
	const char *p = *t, *end;

	while (*p == '/')
		p++;
	if (*p == '\0')
		return false;
	end = strchr(p, '/');
	if (end == NULL)
		end = p + strlen(p);
	*t = end;
	s->is_param = end - p >= 2 && p[0] == '{' && end[-1] == '}';
	s->is_rest = s->is_param && end - p >= 3 && end[-2] == '*';
	s->text = s->is_param ? p + 1 : p;
	s->len = (size_t)(end - p) - (s->is_param ? 2 + s->is_rest : 0);
	return true;
}

static int check_template(const char *path, struct err *e)
{
	const char *names[API_SEGMENTS_MAX];
	size_t lens[API_SEGMENTS_MAX];
	unsigned nsegs = 0, nnames = 0, i;
	const char *t = path;
	struct tseg s;
	bool had_rest = false;

	if (path == NULL || path[0] != '/')
		return err_set(e, -EINVAL, "route '%s': must start with '/'",
		               path != NULL ? path : "(null)");
	while (next_tseg(&t, &s)) {
		if (++nsegs > API_SEGMENTS_MAX)
			return err_set(e, -EINVAL,
			               "route '%s': more than %d segments",
			               path, API_SEGMENTS_MAX);
		if (had_rest)
			return err_set(e, -EINVAL,
			               "route '%s': a {name*} parameter must "
			               "be last",
			               path);
		if (!s.is_param) {
			if (memchr(s.text, '{', s.len) != NULL ||
			    memchr(s.text, '}', s.len) != NULL)
				return err_set(e, -EINVAL,
				               "route '%s': braces inside a "
				               "segment",
				               path);
			continue;
		}
		if (!is_valid_name(s.text, s.len))
			return err_set(e, -EINVAL,
			               "route '%s': bad parameter name '%.*s'",
			               path, (int)s.len, s.text);
		for (i = 0; i < nnames; i++) {
			if (lens[i] == s.len &&
			    memcmp(names[i], s.text, s.len) == 0)
				return err_set(e, -EINVAL,
				               "route '%s': parameter '%.*s' "
				               "named twice",
				               path, (int)s.len, s.text);
		}
		names[nnames] = s.text;
		lens[nnames++] = s.len;
		had_rest = s.is_rest;
	}
	return 0;
}

int api_route_table_check(const struct api_route *routes, size_t n,
                          struct err *e)
{
	size_t i;
	int rv;

	for (i = 0; i < n; i++) {
		rv = check_template(routes[i].path, e);
		if (rv != 0)
			return rv;
		if (api_method_parse(
		            api_method_name(routes[i].method),
		            strlen(api_method_name(routes[i].method))) < 0)
			return err_set(e, -EINVAL, "route '%s': bad method",
			               routes[i].path);
	}
	return 0;
}

/* ------------------------------------------------------- decoding */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF too). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

int api_percent_decode(const char *in, size_t len, bool is_form, char *out,
                       size_t *out_len, struct err *e)
{
	size_t i, o = 0, step;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return err_set(e, -EINVAL,
				               "truncated escape at byte %zu",
				               i);
			hi = hex_value(in[i + 1]);
			lo = hex_value(in[i + 2]);
			if (hi < 0 || lo < 0)
				return err_set(
				        e, -EINVAL,
				        "bad escape '%%%c%c' at byte %zu",
				        in[i + 1], in[i + 2], i);
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && is_form) {
			c = ' ';
		}
		if (c == '\0')
			return err_set(e, -EINVAL, "NUL byte at byte %zu", i);
		out[o++] = c;
	}
	out[o] = '\0';
	for (i = 0; i < o; i += step) {
		step = utf8_len((const unsigned char *)out + i, o - i);
		if (step == 0)
			return err_set(e, -EINVAL,
			               "not valid UTF-8 at byte %zu of the "
			               "decoded text",
			               i);
	}
	*out_len = o;
	return 0;
}

/* Decodes into a new string (mem_free it). */
static int decode_new(const char *in, size_t len, bool is_form, char **out,
                      struct err *e)
{
	char *text = mem_alloc(len + 1);
	size_t n;
	int rv;

	if (text == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rv = api_percent_decode(in, len, is_form, text, &n, e);
	if (rv != 0) {
		mem_free(text);
		return rv;
	}
	*out = text;
	return 0;
}

/* ------------------------------------------------------ parameters */

/* Records why `name` is bad in errors (when given) and in e. */
static int param_fail(json_t *errors, const char *name, int code, struct err *e,
                      const char *why)
{
	if (errors != NULL)
		json_object_set_new(errors, name, json_string(why));
	return err_set(e, code, "%s: %s", name, why);
}

/* Adds a value to a source's object: a second value of the same name makes
 * the entry an array. Steals value. */
static int add_value(json_t *obj, const char *name, json_t *value,
                     const char *source, struct err *e)
{
	json_t *old;

	if (value == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	old = json_object_get(obj, name);
	if (old == NULL) {
		if (json_object_size(obj) >= API_PARAMS_MAX) {
			json_decref(value);
			return err_set(e, -E2BIG, "%s: more than %d parameters",
			               source, API_PARAMS_MAX);
		}
		if (json_object_set_new(obj, name, value) != 0)
			return err_set(e, -ENOMEM, "out of memory");
		return 0;
	}
	if (!json_is_array(old)) {
		json_t *list = json_array();

		if (list == NULL || json_array_append(list, old) != 0 ||
		    json_object_set_new(obj, name, list) != 0) {
			json_decref(list);
			json_decref(value);
			return err_set(e, -ENOMEM, "out of memory");
		}
		old = list;
	}
	if (json_array_size(old) >= API_VALUES_MAX) {
		json_decref(value);
		return err_set(e, -E2BIG, "%s: more than %d values of '%s'",
		               source, API_VALUES_MAX, name);
	}
	if (json_array_append_new(old, value) != 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* Reads "a=1&b=x+y&a=2" into obj. */
static int read_form(json_t *obj, const char *text, size_t len,
                     const char *source, json_t *errors, struct err *e)
{
	const char *p = text, *end = text + len;
	int rv = 0;

	while (p < end && rv == 0) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *name_end = eq != NULL ? eq : pair_end;
		char *name = NULL, *value = NULL;
		struct err sub;

		if (pair_end == p) {
			p = pair_end + 1;
			continue;
		}
		rv = decode_new(p, (size_t)(name_end - p), true, &name, &sub);
		if (rv != 0) {
			rv = err_set(e, rv, "%s: parameter name: %s", source,
			             sub.msg);
			break;
		}
		if (!is_valid_name(name, strlen(name))) {
			rv = err_set(e, -EINVAL,
			             "%s: bad parameter name '%.*s'", source,
			             API_PARAM_NAME_MAX, name);
			mem_free(name);
			break;
		}
		rv = decode_new(eq != NULL ? eq + 1 : pair_end,
		                eq != NULL ? (size_t)(pair_end - eq - 1) : 0,
		                true, &value, &sub);
		if (rv != 0) {
			rv = param_fail(errors, name, rv, e, sub.msg);
		} else if (strcmp(name, "_dc") != 0) {
			/* _dc: the web UI's cache buster, which Proxmox
			 * ignores too. */
			rv = add_value(obj, name, json_string(value), source,
			               e);
		}
		mem_free(name);
		mem_free(value);
		p = pair_end + 1;
	}
	return rv;
}

static int read_json(json_t *obj, const char *text, size_t len, struct err *e)
{
	json_t *body = NULL, *value;
	const char *name;
	int rv;

	rv = json_parse_bounded(text, len, len, JSON_DEFAULT_MAX_DEPTH, &body,
	                        e);
	if (rv != 0)
		return err_wrap(e, "JSON body");
	if (!json_is_object(body)) {
		rv = err_set(e, -EINVAL,
		             "JSON body: expected an object, got %s",
		             json_type_name(body));
		goto out;
	}
	if (json_object_size(body) > API_PARAMS_MAX) {
		rv = err_set(e, -E2BIG, "JSON body: more than %d parameters",
		             API_PARAMS_MAX);
		goto out;
	}
	json_object_foreach(body, name, value)
	{
		if (!is_valid_name(name, strlen(name))) {
			rv = err_set(e, -EINVAL,
			             "JSON body: bad parameter name '%.*s'",
			             API_PARAM_NAME_MAX, name);
			goto out;
		}
		if (json_is_null(value))
			continue;
		if (json_object_set(obj, name, value) != 0) {
			rv = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	json_decref(body);
	return rv;
}

/* A scalar's text, as a query string would carry it; false for arrays and
 * objects. */
static bool scalar_text(const json_t *v, char *out, size_t size)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		snprintf(out, size, "%s", json_string_value(v));
		return json_string_length(v) < size;
	case JSON_INTEGER:
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
		return true;
	case JSON_REAL:
		snprintf(out, size, "%.17g", json_real_value(v));
		return true;
	case JSON_TRUE:
		snprintf(out, size, "1");
		return true;
	case JSON_FALSE:
		snprintf(out, size, "0");
		return true;
	default:
		return false;
	}
}

static bool same_value(const json_t *a, const json_t *b)
{
	char ta[128], tb[128];

	if (json_equal(a, b))
		return true;
	return scalar_text(a, ta, sizeof ta) && scalar_text(b, tb, sizeof tb) &&
	       strcmp(ta, tb) == 0;
}

/* Merges a source into the result; a name both have must agree. */
static int merge(json_t *into, const char *into_source, const json_t *from,
                 const char *from_source, json_t *errors, struct err *e)
{
	const char *name;
	json_t *value;

	json_object_foreach((json_t *)from, name, value)
	{
		json_t *old = json_object_get(into, name);
		char why[256];

		if (old != NULL) {
			if (same_value(old, value))
				continue;
			snprintf(why, sizeof why,
			         "given in the %s and in the %s with different "
			         "values",
			         into_source, from_source);
			return param_fail(errors, name, -EINVAL, e, why);
		}
		if (json_object_size(into) >= API_PARAMS_MAX)
			return err_set(e, -E2BIG, "more than %d parameters",
			               API_PARAMS_MAX);
		if (json_object_set(into, name, value) != 0)
			return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* ---------------------------------------------------------- paths */

struct rseg {
	const char *raw; /* into the request's path */
	size_t raw_len;
	char *text; /* decoded, owned */
};

/* Does the template match? Fills the path parameters into params. */
static int match_template(const char *tmpl, const struct rseg *segs,
                          unsigned nsegs, const char *raw_end, json_t *params,
                          bool *matched, struct err *e)
{
	const char *t = tmpl;
	struct tseg s;
	unsigned i = 0;
	int rv;

	*matched = false;
	json_object_clear(params);
	while (next_tseg(&t, &s)) {
		char name[API_PARAM_NAME_MAX + 1];
		char *rest;

		if (i == nsegs)
			return 0;
		if (!s.is_param) {
			if (strlen(segs[i].text) != s.len ||
			    memcmp(segs[i].text, s.text, s.len) != 0)
				return 0;
			i++;
			continue;
		}
		snprintf(name, sizeof name, "%.*s", (int)s.len, s.text);
		if (!s.is_rest) {
			if (strchr(segs[i].text, '/') != NULL)
				return 0; /* %2F only in a {name*} */
			rv = add_value(params, name, json_string(segs[i].text),
			               "path", e);
			if (rv != 0)
				return rv;
			i++;
			continue;
		}
		/* The raw rest, decoded whole: "a/b" and "a%2Fb" alike. */
		rv = decode_new(segs[i].raw, (size_t)(raw_end - segs[i].raw),
		                false, &rest, e);
		if (rv != 0)
			return err_wrap(e, "path");
		rv = add_value(params, name, json_string(rest), "path", e);
		mem_free(rest);
		if (rv != 0)
			return rv;
		i = nsegs;
	}
	*matched = i == nsegs;
	return 0;
}

static bool media_type_is(const char *ct, size_t len, const char *want)
{
	size_t n = 0;

	while (n < len && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
		n++;
	return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* multipart/form-data (uploads): fields are parameters; a file part's
 * parameter is its file name (Proxmox's `filename`), its bytes are left to
 * the handler. */
static int read_multipart(const struct api_request *in, json_t *obj,
                          json_t *errors, struct err *e)
{
	struct multipart_part parts[MULTIPART_PARTS_MAX];
	char boundary[MULTIPART_BOUNDARY_MAX + 1];
	size_t n, i;
	int rv;

	rv = multipart_boundary(in->content_type, in->content_type_len,
	                        boundary, e);
	if (rv == 0)
		rv = multipart_parse(in->body, in->body_len, boundary, parts,
		                     &n, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < n && rv == 0; i++) {
		const struct multipart_part *p = &parts[i];
		char *value;
		size_t len;
		struct err sub;

		if (!is_valid_name(p->name, strlen(p->name)))
			return err_set(e, -EINVAL,
			               "multipart: bad parameter name '%.64s'",
			               p->name);
		if (p->filename[0] != '\0') {
			rv = add_value(obj, p->name, json_string(p->filename),
			               "body", e);
			continue;
		}
		if (p->len > 65536)
			return param_fail(errors, p->name, -EINVAL, e,
			                  "longer than 64 KiB");
		value = mem_alloc(p->len + 1);
		if (value == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		/* Raw bytes, not escaped: checked for NUL (and UTF-8 by the
		 * decoder when there is no '%' it would misread). */
		if (memchr(p->data, '%', p->len) != NULL) {
			rv = memchr(p->data, '\0', p->len) != NULL
			             ? err_set(&sub, -EINVAL, "NUL byte")
			             : 0;
			memcpy(value, p->data, p->len);
			value[p->len] = '\0';
		} else {
			rv = api_percent_decode(p->data, p->len, false, value,
			                        &len, &sub);
		}
		if (rv != 0)
			rv = param_fail(errors, p->name, rv, e, sub.msg);
		else
			rv = add_value(obj, p->name, json_string(value), "body",
			               e);
		mem_free(value);
	}
	return rv;
}

static int read_body(const struct api_request *in, json_t *obj, json_t *errors,
                     struct err *e)
{
	if (in->body_len == 0)
		return 0;
	if (in->content_type == NULL ||
	    media_type_is(in->content_type, in->content_type_len,
	                  "application/x-www-form-urlencoded"))
		return read_form(obj, in->body, in->body_len, "body", errors,
		                 e);
	if (media_type_is(in->content_type, in->content_type_len,
	                  "application/json"))
		return read_json(obj, in->body, in->body_len, e);
	if (media_type_is(in->content_type, in->content_type_len,
	                  "multipart/form-data"))
		return read_multipart(in, obj, errors, e);
	return err_set(
	        e, -EPROTONOSUPPORT,
	        "unsupported content type '%.*s' (use "
	        "application/x-www-form-urlencoded or "
	        "application/json)",
	        (int)(in->content_type_len < 100 ? in->content_type_len : 100),
	        in->content_type);
}

int api_route_resolve(const struct api_route *routes, size_t n,
                      const struct api_request *in, struct api_match *out,
                      json_t *errors, struct err *e)
{
	struct rseg segs[API_SEGMENTS_MAX];
	const char *path = in->path, *query, *raw_end, *p;
	json_t *path_params = NULL, *query_params = NULL, *body_params = NULL;
	const size_t prefix_len = strlen(API_PREFIX);
	unsigned nsegs = 0, i;
	size_t path_len, used = 0;
	bool matched = false, other_method = false;
	int method, rv;

	memset(out, 0, sizeof *out);
	if (in->path_len > API_PATH_MAX)
		return err_set(e, -ENAMETOOLONG,
		               "the path is longer than %d bytes",
		               API_PATH_MAX);
	method = api_method_parse(in->method, in->method_len);
	query = memchr(path, '?', in->path_len);
	path_len = query != NULL ? (size_t)(query - path) : in->path_len;
	raw_end = path + path_len;
	if (path_len < prefix_len ||
	    memcmp(path, API_PREFIX, prefix_len) != 0 ||
	    (path_len > prefix_len && path[prefix_len] != '/')) {
		snprintf(out->path, sizeof out->path, "%.*s", (int)path_len,
		         path);
		return err_set(e, -ENOENT, "Method '%.*s %.*s' not implemented",
		               (int)(in->method_len < 16 ? in->method_len : 16),
		               in->method,
		               (int)(path_len < 200 ? path_len : 200), path);
	}
	/* Raw segments, empty ones skipped; each decoded for matching. */
	rv = 0;
	for (p = path + prefix_len; p < raw_end && rv == 0;) {
		const char *slash;
		struct err sub;

		if (*p == '/') {
			p++;
			continue;
		}
		slash = memchr(p, '/', (size_t)(raw_end - p));
		if (slash == NULL)
			slash = raw_end;
		if (nsegs == API_SEGMENTS_MAX) {
			rv = err_set(e, -E2BIG, "more than %d path segments",
			             API_SEGMENTS_MAX);
			break;
		}
		segs[nsegs].raw = p;
		segs[nsegs].raw_len = (size_t)(slash - p);
		rv = decode_new(p, (size_t)(slash - p), false,
		                &segs[nsegs].text, &sub);
		if (rv != 0) {
			rv = err_set(e, rv, "path: %s", sub.msg);
			break;
		}
		used += (size_t)snprintf(out->path + used,
		                         sizeof out->path - used, "/%s",
		                         segs[nsegs].text);
		if (used >= sizeof out->path)
			used = sizeof out->path - 1;
		nsegs++;
		p = slash;
	}
	if (rv != 0)
		goto out;
	if (nsegs == 0)
		snprintf(out->path, sizeof out->path, "/");

	path_params = json_object();
	if (path_params == NULL) {
		rv = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n && rv == 0; i++) {
		bool is_match;

		rv = match_template(routes[i].path, segs, nsegs, raw_end,
		                    path_params, &is_match, e);
		if (rv != 0 || !is_match)
			continue;
		if (method < 0 || (int)routes[i].method != method) {
			other_method = true;
			continue;
		}
		out->route = &routes[i];
		matched = true;
		break;
	}
	if (rv != 0)
		goto out;
	if (!matched) {
		rv = err_set(e, other_method ? -ENOTSUP : -ENOENT,
		             "Method '%.*s %s' not implemented",
		             (int)(in->method_len < 16 ? in->method_len : 16),
		             in->method, out->path);
		goto out;
	}

	query_params = json_object();
	body_params = json_object();
	out->params = json_object();
	if (query_params == NULL || body_params == NULL ||
	    out->params == NULL) {
		rv = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (query != NULL) {
		rv = read_form(query_params, query + 1,
		               in->path_len - path_len - 1, "query string",
		               errors, e);
		if (rv != 0)
			goto out;
	}
	if (method != API_GET) {
		rv = read_body(in, body_params, errors, e);
		if (rv != 0)
			goto out;
	}
	rv = merge(out->params, "path", path_params, "path", errors, e);
	if (rv == 0)
		rv = merge(out->params, "path", query_params, "query string",
		           errors, e);
	if (rv == 0)
		rv = merge(out->params,
		           json_object_size(query_params) > 0
		                   ? "path or query string"
		                   : "path",
		           body_params, "body", errors, e);
out:
	for (i = 0; i < nsegs; i++)
		mem_free(segs[i].text);
	json_decref(path_params);
	json_decref(query_params);
	json_decref(body_params);
	if (rv != 0) {
		json_decref(out->params);
		out->params = NULL;
		out->route = NULL;
	}
	return rv;
}

void api_match_free(struct api_match *m)
{
	json_decref(m->params);
	m->params = NULL;
	m->route = NULL;
}
