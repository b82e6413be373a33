/* Checked allocation with a process-wide failure-injection seam for tests. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

/* -1: never fail. Otherwise the number of allocations still allowed. */
static atomic_long fail_countdown = -1;

void mem_fail_after(long n)
{
	atomic_store(&fail_countdown, n);
}

void mem_fail_reset(void)
{
	atomic_store(&fail_countdown, -1);
}

static bool should_fail(void)
{
	long n = atomic_load(&fail_countdown);

	while (n >= 0) {
		if (n == 0)
			return true;
		if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
			return false;
	}
	return false;
}

void *mem_alloc(size_t size)
{
	if (should_fail())
		return NULL;
	return malloc(size == 0 ? 1 : size);
}

void *mem_calloc(size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	if (should_fail())
		return NULL;
	return calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

void *mem_realloc_array(void *ptr, size_t count, size_t size)
{
	size_t total;

	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	if (should_fail())
		return NULL;
	total = count * size;
	return realloc(ptr, total == 0 ? 1 : total);
}

char *mem_strdup(const char *s)
{
	return mem_strndup(s, SIZE_MAX);
}

char *mem_strndup(const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	char *copy = mem_alloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

void mem_free(void *ptr)
{
	free(ptr);
}
