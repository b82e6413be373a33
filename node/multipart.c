/* multipart/form-data, the way browsers, curl -F and proxmoxer send
 * uploads: parts between "--boundary" lines, each with headers (only
 * Content-Disposition matters) and a body ending at CRLF--boundary. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "node/multipart.h"

static const char *find(const char *hay, size_t hay_len, const char *needle,
                        size_t needle_len)
{
	size_t i;

	if (needle_len == 0 || hay_len < needle_len)
		return NULL;
	for (i = 0; i + needle_len <= hay_len; i++) {
		if (hay[i] == needle[0] &&
		    memcmp(hay + i, needle, needle_len) == 0)
			return hay + i;
	}
	return NULL;
}

static bool boundary_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=? ", c) != NULL;
}

int multipart_boundary(const char *ct, size_t len,
                       char out[MULTIPART_BOUNDARY_MAX + 1], struct err *e)
{
	static const char type[] = "multipart/form-data";
	const char *p, *end = ct + len, *b;
	size_t n = 0;

	if (ct == NULL || len < sizeof type - 1 ||
	    strncasecmp(ct, type, sizeof type - 1) != 0)
		return err_set(e, -EINVAL,
		               "the body must be multipart/form-data");
	p = find(ct, len, "boundary=", 9);
	if (p == NULL)
		return err_set(e, -EINVAL, "multipart: no boundary");
	b = p + 9;
	if (b < end && *b == '"') {
		b++;
		while (b + n < end && b[n] != '"')
			n++;
		if (b + n == end)
			return err_set(e, -EINVAL,
			               "multipart: unterminated boundary");
	} else {
		while (b + n < end && b[n] != ';' && b[n] != ' ' &&
		       b[n] != '\t')
			n++;
	}
	if (n == 0 || n > MULTIPART_BOUNDARY_MAX)
		return err_set(e, -EINVAL, "multipart: bad boundary length");
	for (size_t i = 0; i < n; i++) {
		if (!boundary_char(b[i]))
			return err_set(e, -EINVAL,
			               "multipart: bad character in the "
			               "boundary");
	}
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

/* The value of param (name="x" or filename="y") in a Content-Disposition
 * line; false when absent or too long. */
static bool disposition_param(const char *line, size_t len, const char *param,
                              char *out, size_t size)
{
	size_t plen = strlen(param), i = 0;

	while (i + plen + 2 <= len) {
		const char *p = find(line + i, len - i, param, plen);
		const char *v;
		size_t n = 0;

		if (p == NULL)
			return false;
		i = (size_t)(p - line) + plen;
		/* a whole word: preceded by ';' or a space */
		if (p > line && p[-1] != ';' && p[-1] != ' ' && p[-1] != '\t')
			continue;
		if (i + 1 >= len || line[i] != '=' || line[i + 1] != '"')
			continue;
		v = line + i + 2;
		while (v + n < line + len && v[n] != '"')
			n++;
		if (v + n == line + len || n >= size)
			return false;
		memcpy(out, v, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, size_t *nparts, struct err *e)
{
	char delim[MULTIPART_BOUNDARY_MAX + 8];
	size_t dlen, n = 0;
	const char *p, *end = body + len;

	dlen = (size_t)snprintf(delim, sizeof delim, "--%s", boundary);
	/* The first delimiter may come without the CRLF before it. */
	p = find(body, len, delim, dlen);
	if (p == NULL)
		return err_set(e, -EINVAL, "multipart: no first boundary");
	p += dlen;
	for (;;) {
		struct multipart_part *part;
		const char *headers, *data, *next, *line;
		char crlf_delim[sizeof delim + 2];
		bool has_name = false;

		if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
			*nparts = n;
			return 0; /* the closing delimiter */
		}
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return err_set(
			        e, -EINVAL,
			        "multipart: a boundary line does not end "
			        "in CRLF");
		headers = p + 2;
		data = find(headers, (size_t)(end - headers), "\r\n\r\n", 4);
		if (data == NULL)
			return err_set(
			        e, -EINVAL,
			        "multipart: a part's headers do not end");
		if (n == MULTIPART_PARTS_MAX)
			return err_set(e, -EINVAL,
			               "multipart: more than %d parts",
			               MULTIPART_PARTS_MAX);
		part = &parts[n];
		memset(part, 0, sizeof *part);
		for (line = headers; line < data;) {
			const char *eol = find(line, (size_t)(data + 2 - line),
			                       "\r\n", 2);
			size_t ll = eol != NULL ? (size_t)(eol - line)
			                        : (size_t)(data - line);

			if (ll > 20 &&
			    strncasecmp(line, "Content-Disposition:", 20) ==
			            0) {
				if (find(line, ll, "form-data", 9) == NULL)
					return err_set(
					        e, -EINVAL,
					        "multipart: a part is not "
					        "form-data");
				has_name = disposition_param(line, ll, "name",
				                             part->name,
				                             sizeof part->name);
				disposition_param(line, ll, "filename",
				                  part->filename,
				                  sizeof part->filename);
			}
			line += ll + 2;
		}
		if (!has_name || part->name[0] == '\0')
			return err_set(e, -EINVAL,
			               "multipart: a part without a name");
		data += 4;
		snprintf(crlf_delim, sizeof crlf_delim, "\r\n%s", delim);
		next = find(data, (size_t)(end - data), crlf_delim, dlen + 2);
		if (next == NULL)
			return err_set(e, -EINVAL,
			               "multipart: part '%s' does not end "
			               "(truncated body?)",
			               part->name);
		part->data = data;
		part->len = (size_t)(next - data);
		n++;
		p = next + 2 + dlen;
	}
}
