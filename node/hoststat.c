/* Host figures for /nodes/{node}/status, parsed from /proc. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include "node/hoststat.h"

#define PROC_FILE_MAX (1u << 20)

/* The value of "Key:   123 kB" in /proc/meminfo, in bytes. */
static int meminfo_value(const char *text, const char *key, uint64_t *out,
                         struct err *e)
{
	size_t len = strlen(key);
	const char *p = text;
	unsigned long long kib;
	char *end;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, len) == 0 && p[len] == ':') {
			errno = 0;
			kib = strtoull(p + len + 1, &end, 10);
			if (errno != 0 || end == p + len + 1)
				break;
			*out = (uint64_t)kib * 1024;
			return 0;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return err_set(e, -EINVAL, "meminfo: no valid '%s'", key);
}

int host_parse_meminfo(const char *text, struct host_stat *s, struct err *e)
{
	uint64_t available;
	int rv;

	rv = meminfo_value(text, "MemTotal", &s->mem_total, e);
	if (rv == 0)
		rv = meminfo_value(text, "MemFree", &s->mem_free, e);
	if (rv == 0)
		rv = meminfo_value(text, "SwapTotal", &s->swap_total, e);
	if (rv == 0)
		rv = meminfo_value(text, "SwapFree", &s->swap_free, e);
	if (rv != 0)
		return rv;
	/* Used memory as Proxmox shows it: what is not available. */
	if (meminfo_value(text, "MemAvailable", &available, e) != 0)
		available = s->mem_free;
	if (available > s->mem_total || s->swap_free > s->swap_total)
		return err_set(e, -EINVAL, "meminfo: inconsistent values");
	s->mem_used = s->mem_total - available;
	s->swap_used = s->swap_total - s->swap_free;
	return 0;
}

int host_parse_loadavg(const char *text, struct host_stat *s, struct err *e)
{
	if (sscanf(text, "%lf %lf %lf", &s->loadavg[0], &s->loadavg[1],
	           &s->loadavg[2]) != 3)
		return err_set(e, -EINVAL, "loadavg: expected three numbers");
	return 0;
}

int host_parse_uptime(const char *text, struct host_stat *s, struct err *e)
{
	if (sscanf(text, "%lf", &s->uptime_s) != 1 || s->uptime_s < 0)
		return err_set(e, -EINVAL, "uptime: expected seconds");
	return 0;
}

int host_parse_cpuinfo(const char *text, struct host_stat *s, struct err *e)
{
	const char *p = text;

	s->cpus = 0;
	s->cpu_model[0] = '\0';
	while (p != NULL && *p != '\0') {
		if (strncmp(p, "processor", 9) == 0 &&
		    (p[9] == '\t' || p[9] == ' ' || p[9] == ':'))
			s->cpus++;
		if (s->cpu_model[0] == '\0' &&
		    strncmp(p, "model name", 10) == 0) {
			const char *colon = strchr(p, ':');
			const char *nl = strchr(p, '\n');

			if (colon != NULL && (nl == NULL || colon < nl)) {
				colon++;
				while (*colon == ' ' || *colon == '\t')
					colon++;
				snprintf(s->cpu_model, sizeof s->cpu_model,
				         "%.*s",
				         (int)(nl != NULL
				                       ? nl - colon
				                       : (long)strlen(colon)),
				         colon);
			}
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	if (s->cpus == 0)
		return err_set(e, -EINVAL, "cpuinfo: no processor listed");
	return 0;
}

int host_parse_stat(const char *text, struct host_stat *s, struct err *e)
{
	unsigned long long v[8] = {0};
	int n;

	n = sscanf(text, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	           &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	if (n < 4)
		return err_set(e, -EINVAL, "stat: no aggregate 'cpu' line");
	/* user nice system idle iowait irq softirq steal */
	s->cpu_total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	s->cpu_busy = s->cpu_total - v[3] - v[4];
	return 0;
}

double host_cpu_fraction(const struct host_stat *before,
                         const struct host_stat *after)
{
	uint64_t total, busy;

	if (after->cpu_total <= before->cpu_total ||
	    after->cpu_busy < before->cpu_busy)
		return 0;
	total = after->cpu_total - before->cpu_total;
	busy = after->cpu_busy - before->cpu_busy;
	return busy > total ? 1.0 : (double)busy / (double)total;
}

static int parse_file(const char *path,
                      int (*parse)(const char *, struct host_stat *,
                                   struct err *),
                      struct host_stat *s, struct err *e)
{
	struct buf text;
	int rv;

	buf_init(&text, PROC_FILE_MAX);
	rv = file_read_all(path, PROC_FILE_MAX, &text, e);
	if (rv == 0)
		rv = parse(text.data != NULL ? text.data : "", s, e);
	buf_free(&text);
	return rv;
}

int host_stat_read(struct host_stat *s, struct err *e)
{
	struct statvfs fs;
	struct utsname u;
	int rv;

	memset(s, 0, sizeof *s);
	rv = parse_file("/proc/meminfo", host_parse_meminfo, s, e);
	if (rv == 0)
		rv = parse_file("/proc/loadavg", host_parse_loadavg, s, e);
	if (rv == 0)
		rv = parse_file("/proc/uptime", host_parse_uptime, s, e);
	if (rv == 0)
		rv = parse_file("/proc/cpuinfo", host_parse_cpuinfo, s, e);
	if (rv == 0)
		rv = parse_file("/proc/stat", host_parse_stat, s, e);
	if (rv != 0)
		return err_wrap(e, "host status");
	if (statvfs("/", &fs) == 0) {
		s->root_total = (uint64_t)fs.f_blocks * fs.f_frsize;
		s->root_avail = (uint64_t)fs.f_bavail * fs.f_frsize;
		s->root_used =
		        s->root_total - (uint64_t)fs.f_bfree * fs.f_frsize;
	}
	if (uname(&u) == 0)
		snprintf(s->kversion, sizeof s->kversion, "%s %s %s %s",
		         u.sysname, u.release, u.version, u.machine);
	return 0;
}
