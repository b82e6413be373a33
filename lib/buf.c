/* Growable byte buffers with a hard cap, and small list helpers. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib.h"

#define BUF_MIN_CAP 64

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	mem_free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* cap counts the NUL terminator's byte too: cap >= len + 1 once allocated. */
int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *data;

	CAIRN_ASSERT(b->len <= b->max);
	if (extra > b->max - b->len)
		return -E2BIG;
	/* need = len + extra + 1 must not wrap (max may be SIZE_MAX). */
	if (b->len + extra == SIZE_MAX)
		return -ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* Never more than the cap allows: max + 1 bytes with the NUL. */
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	data = mem_realloc_array(b->data, cap, 1);
	if (data == NULL)
		return -ENOMEM;
	if (b->data == NULL)
		data[0] = '\0';
	b->data = data;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int rv = buf_reserve(b, len);

	if (rv != 0)
		return rv;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	int n, rv;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return -EINVAL;
	rv = buf_reserve(b, (size_t)n);
	if (rv != 0)
		return rv;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

void buf_consume(struct buf *b, size_t n)
{
	CAIRN_ASSERT(n <= b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b)
{
	char *data = b->data;

	buf_init(b, b->max);
	return data;
}

size_t list_count(const struct list *head)
{
	const struct list *item;
	size_t n = 0;

	LIST_FOREACH (item, head)
		n++;
	return n;
}
