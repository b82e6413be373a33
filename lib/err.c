/* Error values with messages that each layer wraps with its own context. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

/* Truncation keeps the message a valid C string and shows that text was
 * lost, so a clipped message is never mistaken for the whole story. */
static void mark_truncated(struct err *e)
{
	memcpy(e->msg + ERR_MSG_MAX - 4, "...", 4);
}

void err_clear(struct err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}

static int vset(struct err *e, int code, const char *fmt, va_list ap)
        CAIRN_PRINTF(3, 0);

static int vset(struct err *e, int code, const char *fmt, va_list ap)
{
	int n;

	CAIRN_ASSERT(code < 0);
	if (e == NULL)
		return code;
	e->code = code;
	n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	if (n < 0)
		snprintf(e->msg, sizeof e->msg, "(unprintable error)");
	else if ((size_t)n >= sizeof e->msg)
		mark_truncated(e);
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int err_sys(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	size_t len;
	int n;

	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	if (e == NULL)
		return code;
	len = strlen(e->msg);
	n = snprintf(e->msg + len, sizeof e->msg - len, ": %s",
	             strerror(-code));
	if (n < 0 || (size_t)n >= sizeof e->msg - len)
		mark_truncated(e);
	return code;
}

int err_wrap(struct err *e, const char *fmt, ...)
{
	char inner[ERR_MSG_MAX];
	char prefix[ERR_MSG_MAX];
	va_list ap;
	int n;

	CAIRN_ASSERT(e != NULL && e->code < 0);
	memcpy(inner, e->msg, sizeof inner);
	va_start(ap, fmt);
	n = vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	if (n < 0)
		return e->code;
	n = snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, inner);
	if (n < 0 || (size_t)n >= sizeof e->msg)
		mark_truncated(e);
	return e->code;
}

void cairn__assert_fail(const char *what, const char *file, int line)
{
	log_write(LOG_LEVEL_ERROR, "assert", "assertion failed",
	          "expr=\"%s\" file=%s line=%d", what, file, line);
	abort();
}
