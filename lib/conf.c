/* Parser for `key = value` configuration files checked against a key table. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

static char **str_field(const struct conf_key *k, void *target)
{
	return (char **)((char *)target + k->offset);
}

static int64_t *int_field(const struct conf_key *k, void *target)
{
	return (int64_t *)((char *)target + k->offset);
}

static bool *bool_field(const struct conf_key *k, void *target)
{
	return (bool *)((char *)target + k->offset);
}

static bool has_control_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

static int check_port(const char *port)
{
	char *end;
	long n;

	if (*port == '\0' || !isdigit((unsigned char)*port))
		return -EINVAL;
	errno = 0;
	n = strtol(port, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > 65535)
		return -EINVAL;
	return 0;
}

static int check_address(const char *v, struct err *e)
{
	const char *colon, *host_end, *p;

	if (v[0] == '[') {
		host_end = strchr(v, ']');
		if (host_end == NULL || host_end == v + 1 || host_end[1] != ':')
			return err_set(e, -EINVAL,
			               "'%s' is not an address: "
			               "expected [IPv6]:PORT",
			               v);
		for (p = v + 1; p < host_end; p++) {
			if (!isxdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return err_set(e, -EINVAL,
				               "'%s' is not an "
				               "IPv6 address",
				               v);
		}
		colon = host_end + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || colon == v)
			return err_set(e, -EINVAL,
			               "'%s' is not an address: "
			               "expected HOST:PORT",
			               v);
		for (p = v; p < colon; p++) {
			if (!isalnum((unsigned char)*p) && *p != '.' &&
			    *p != '-')
				return err_set(e, -EINVAL,
				               "'%s' is not an "
				               "address: bad character in host",
				               v);
		}
	}
	if (check_port(colon + 1) != 0)
		return err_set(e, -EINVAL, "'%s' has no valid port (1-65535)",
		               v);
	return 0;
}

static bool enum_has(const char *choices, const char *v)
{
	size_t len = strlen(v);
	const char *p = choices;

	while (p != NULL && *p != '\0') {
		const char *bar = strchr(p, '|');
		size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (n == len && strncmp(p, v, n) == 0)
			return true;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return false;
}

/* Checks value v for key k and stores it; messages name the key but not
 * the place, which the caller adds. */
static int set_value(const struct conf_key *k, void *target, const char *v,
                     struct err *e)
{
	char *copy, *end;
	long long n;

	switch (k->type) {
	case CONF_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 ||
		    isspace((unsigned char)*v))
			return err_set(e, -EINVAL,
			               "'%s' must be an integer, "
			               "not '%s'",
			               k->name, v);
		if (n < k->min || n > k->max)
			return err_set(e, -ERANGE,
			               "'%s' must be between %lld and "
			               "%lld, not %lld",
			               k->name, (long long)k->min,
			               (long long)k->max, n);
		*int_field(k, target) = n;
		return 0;
	case CONF_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "yes") ||
		    !strcmp(v, "true") || !strcmp(v, "on"))
			*bool_field(k, target) = true;
		else if (!strcmp(v, "0") || !strcmp(v, "no") ||
		         !strcmp(v, "false") || !strcmp(v, "off"))
			*bool_field(k, target) = false;
		else
			return err_set(e, -EINVAL,
			               "'%s' must be 0 or 1 (or "
			               "yes/no, true/false, on/off), not '%s'",
			               k->name, v);
		return 0;
	case CONF_STRING:
		if (k->max > 0 && strlen(v) > (size_t)k->max)
			return err_set(e, -EINVAL,
			               "'%s' is longer than %lld "
			               "bytes",
			               k->name, (long long)k->max);
		break;
	case CONF_PATH:
		if (v[0] != '/')
			return err_set(e, -EINVAL,
			               "'%s' must be an absolute "
			               "path, not '%s'",
			               k->name, v);
		if (strlen(v) >= PATH_MAX)
			return err_set(e, -EINVAL,
			               "'%s' is longer than %d "
			               "bytes",
			               k->name, PATH_MAX - 1);
		break;
	case CONF_ADDRESS:
		if (check_address(v, e) != 0)
			return err_wrap(e, "'%s'", k->name);
		break;
	case CONF_ENUM:
		if (!enum_has(k->choices, v))
			return err_set(e, -EINVAL,
			               "'%s' must be one of %s, not "
			               "'%s'",
			               k->name, k->choices, v);
		break;
	}
	copy = mem_strdup(v);
	if (copy == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	mem_free(*str_field(k, target));
	*str_field(k, target) = copy;
	return 0;
}

static int apply_defaults(const struct conf_key *keys, void *target,
                          struct err *e)
{
	const struct conf_key *k;

	for (k = keys; k->name != NULL; k++) {
		switch (k->type) {
		case CONF_INT:
			*int_field(k, target) = 0;
			break;
		case CONF_BOOL:
			*bool_field(k, target) = false;
			break;
		default:
			*str_field(k, target) = NULL;
			break;
		}
	}
	for (k = keys; k->name != NULL; k++) {
		if (k->def != NULL && set_value(k, target, k->def, e) != 0)
			return err_wrap(e, "default of '%s'", k->name);
	}
	return 0;
}

static const char *trim(char *s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)*s)) {
		s++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)s[*len - 1]))
		(*len)--;
	s[*len] = '\0';
	return s;
}

static int parse_line(const struct conf_key *keys, void *target, bool *seen,
                      char *line, size_t len, struct err *e)
{
	const struct conf_key *k;
	const char *key, *value, *p;
	char *eq;
	size_t key_len, value_len;

	key = trim(line, &len);
	if (len == 0 || key[0] == '#')
		return 0;
	eq = strchr(key, '=');
	if (eq == NULL)
		return err_set(e, -EINVAL, "expected 'key = value', got '%s'",
		               key);
	key_len = (size_t)(eq - key);
	value_len = len - key_len - 1;
	value = trim(eq + 1, &value_len);
	*eq = '\0';
	key = trim((char *)key, &key_len);
	if (key_len == 0)
		return err_set(e, -EINVAL, "missing key before '='");
	for (p = key; *p != '\0'; p++) {
		if (!islower((unsigned char)*p) &&
		    !isdigit((unsigned char)*p) && *p != '_')
			return err_set(e, -EINVAL,
			               "'%s' is not a valid key "
			               "(lower case letters, digits and '_')",
			               key);
	}
	if (value_len >= 2 && value[0] == '"' && value[value_len - 1] == '"') {
		((char *)value)[value_len - 1] = '\0';
		value++;
	} else if (value_len > 0 &&
	           (value[0] == '"' || value[value_len - 1] == '"')) {
		return err_set(e, -EINVAL,
		               "unbalanced quote in the value of "
		               "'%s'",
		               key);
	}
	if (has_control_chars(value))
		return err_set(e, -EINVAL,
		               "control character in the value of "
		               "'%s'",
		               key);
	for (k = keys; k->name != NULL; k++) {
		if (strcmp(k->name, key) == 0)
			break;
	}
	if (k->name == NULL)
		return err_set(e, -EINVAL, "unknown key '%s'", key);
	if (seen[k - keys])
		return err_set(e, -EINVAL, "'%s' is set twice", key);
	seen[k - keys] = true;
	return set_value(k, target, value, e);
}

int conf_parse(const struct conf_key *keys, void *target, const char *source,
               const char *text, size_t len, struct err *e)
{
	char line[CONF_LINE_MAX + 2];
	size_t nkeys = 0, pos = 0;
	unsigned lineno = 0;
	bool *seen;
	int rv;

	while (keys[nkeys].name != NULL)
		nkeys++;
	rv = apply_defaults(keys, target, e);
	if (rv != 0)
		return rv;
	if (len > CONF_FILE_MAX)
		return err_set(e, -E2BIG, "%s: larger than %d bytes", source,
		               CONF_FILE_MAX);
	if (memchr(text, '\0', len) != NULL)
		return err_set(e, -EINVAL, "%s: contains a NUL byte", source);
	seen = mem_calloc(nkeys + 1, sizeof *seen);
	if (seen == NULL)
		return err_set(e, -ENOMEM, "%s: out of memory", source);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

		lineno++;
		if (n > CONF_LINE_MAX) {
			rv = err_set(e, -EINVAL,
			             "%s:%u: line longer than %d "
			             "bytes",
			             source, lineno, CONF_LINE_MAX);
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		rv = parse_line(keys, target, seen, line, n, e);
		if (rv != 0) {
			err_wrap(e, "%s:%u", source, lineno);
			break;
		}
		pos += n + 1;
	}
	mem_free(seen);
	return rv;
}

int conf_load(const struct conf_key *keys, void *target, const char *path,
              struct err *e)
{
	struct buf text;
	int rv;

	buf_init(&text, CONF_FILE_MAX);
	rv = file_read_all(path, CONF_FILE_MAX, &text, e);
	if (rv != 0) {
		/* Leave the struct in a state conf_free accepts. */
		struct err ignored;

		apply_defaults(keys, target, &ignored);
		buf_free(&text);
		return err_wrap(e, "config");
	}
	rv = conf_parse(keys, target, path, text.data != NULL ? text.data : "",
	                text.len, e);
	buf_free(&text);
	return rv;
}

void conf_free(const struct conf_key *keys, void *target)
{
	const struct conf_key *k;

	for (k = keys; k->name != NULL; k++) {
		if (k->type != CONF_INT && k->type != CONF_BOOL) {
			mem_free(*str_field(k, target));
			*str_field(k, target) = NULL;
		}
	}
}

int conf_dump(const struct conf_key *keys, const void *target, struct buf *out)
{
	const struct conf_key *k;
	int rv = 0;

	for (k = keys; k->name != NULL && rv == 0; k++) {
		void *t = (void *)target;
		const char *s;

		switch (k->type) {
		case CONF_INT:
			rv = buf_printf(out, "%s = %lld\n", k->name,
			                (long long)*int_field(k, t));
			break;
		case CONF_BOOL:
			rv = buf_printf(out, "%s = %d\n", k->name,
			                *bool_field(k, t) ? 1 : 0);
			break;
		default:
			s = *str_field(k, t);
			if (s == NULL)
				rv = buf_printf(out, "# %s is not set\n",
				                k->name);
			else if (s[0] == '\0' || isspace((unsigned char)s[0]) ||
			         isspace((unsigned char)s[strlen(s) - 1]) ||
			         s[0] == '"' || s[strlen(s) - 1] == '"')
				rv = buf_printf(out, "%s = \"%s\"\n", k->name,
				                s);
			else
				rv = buf_printf(out, "%s = %s\n", k->name, s);
			break;
		}
	}
	return rv;
}
