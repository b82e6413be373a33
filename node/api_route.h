/* node/api_route: the REST router and parameter reader, private to node/ —
 * pure (no h2o, no I/O) so that every rule is unit-tested. */
#ifndef CAIRN_NODE_API_ROUTE_H
#define CAIRN_NODE_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/lib.h"

#define API_PREFIX "/api2/json"

/* Hard limits on what a request may carry (STYLE.md 11). The body itself
 * is bounded by the server (API_BODY_MAX in node/api.c). */
#define API_PATH_MAX       4096 /* raw path with query string */
#define API_SEGMENTS_MAX   32   /* path segments after API_PREFIX */
#define API_PARAMS_MAX     256  /* distinct parameter names, all sources */
#define API_PARAM_NAME_MAX 64   /* [A-Za-z0-9_.-]+ */
#define API_VALUES_MAX     1024 /* values of one repeated name */

enum api_method {
	API_GET,
	API_POST,
	API_PUT,
	API_DELETE,
};

/* One route of a (usually static) table. `path` is relative to API_PREFIX
 * and made of literal segments and parameters: "/nodes/{node}/qemu". The
 * last segment may be "{name*}", which takes the rest of the path, '/'
 * included, whether sent raw or %2F-escaped (volume ids). */
struct api_route {
	enum api_method method;
	const char *path;
	const void *handler; /* the caller's; the router never looks at it */
};

/* Checks a table: templates well formed, parameter names valid, a "*"
 * parameter last, no parameter named twice in one template. For tests and
 * start-up; the router asserts on what this would refuse. */
int api_route_table_check(const struct api_route *routes, size_t n,
                          struct err *e);

/* "GET" -> API_GET...; -1 for anything else. */
int api_method_parse(const char *text, size_t len);
const char *api_method_name(enum api_method m);

/* Percent-decodes `len` bytes into out (room for len + 1, NUL-terminated);
 * with is_form, '+' is a space. Refuses bad escapes ("%4", "%zz"), NUL in
 * any form and bytes that are not valid UTF-8: -EINVAL, e names the
 * problem (the caller adds which parameter). */
int api_percent_decode(const char *in, size_t len, bool is_form, char *out,
                       size_t *out_len, struct err *e);

/* What the router needs of one HTTP request. Everything is borrowed. */
struct api_request {
	const char *method;
	size_t method_len;
	const char *path; /* raw, as sent, with "?query" */
	size_t path_len;
	const char *content_type; /* NULL when absent */
	size_t content_type_len;
	const char *body;
	size_t body_len;
};

/* The result of api_route_resolve. */
struct api_match {
	const struct api_route *route;
	/* Merged parameters: strings from the path, query string and form
	 * bodies, JSON values from JSON bodies; a name given several times
	 * in one query or form is an array. Owned: api_match_free. */
	json_t *params;
	/* The decoded path relative to API_PREFIX, for messages. */
	char path[API_PATH_MAX + 1];
};

/* Finds the route of `in` and reads its parameters.
 *
 * Returns 0 with *out filled, or:
 *   -ENOENT     the path is outside API_PREFIX or no template matches it
 *               (Proxmox answers 501 "Method 'GET /x' not implemented");
 *   -ENOTSUP    a template matches, but not for this method (same answer);
 *   -EINVAL     the request is malformed (bad escapes, a body that is not
 *               an object, a parameter from two sources with different
 *               values...): when the fault is one parameter's, errors
 *               (an object, may be NULL) gets {name: why};
 *   -ENAMETOOLONG the path is longer than API_PATH_MAX;
 *   -E2BIG      too many segments, parameters or values;
 *   -EPROTONOSUPPORT a body of another content type than form or JSON;
 *   -ENOMEM.
 * e says what was wrong, naming the parameter. Parameters come from the
 * path, the query string (any method), and for POST, PUT and DELETE the
 * body (application/x-www-form-urlencoded, the default, or
 * application/json). A name given by two sources must have the same value
 * in both (compared as text: path "100" equals JSON 100). */
int api_route_resolve(const struct api_route *routes, size_t n,
                      const struct api_request *in, struct api_match *out,
                      json_t *errors, struct err *e);
void api_match_free(struct api_match *m);

#endif /* CAIRN_NODE_API_ROUTE_H */
