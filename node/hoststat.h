/* node/hoststat: what /nodes/{node}/status reports about the host — memory,
 * swap, load, uptime, CPU, root filesystem, kernel — parsed from /proc by
 * pure functions (tested on fixed text) and read by host_stat_read. Private
 * to node/. */
#ifndef CAIRN_NODE_HOSTSTAT_H
#define CAIRN_NODE_HOSTSTAT_H

#include <stdint.h>

#include "lib/lib.h"

struct host_stat {
	double uptime_s;
	double loadavg[3];
	uint64_t mem_total, mem_used, mem_free;     /* bytes */
	uint64_t swap_total, swap_used, swap_free;  /* bytes */
	uint64_t root_total, root_used, root_avail; /* bytes */
	unsigned cpus;
	char cpu_model[128];
	char kversion[272];           /* uname: 4 fields of up to 65 bytes */
	uint64_t cpu_busy, cpu_total; /* jiffies since boot, /proc/stat */
};

/* Each parser fills its fields from the text of one /proc file and
 * fails with -EINVAL naming what is missing or malformed. */
int host_parse_meminfo(const char *text, struct host_stat *s, struct err *e);
int host_parse_loadavg(const char *text, struct host_stat *s, struct err *e);
int host_parse_uptime(const char *text, struct host_stat *s, struct err *e);
int host_parse_cpuinfo(const char *text, struct host_stat *s, struct err *e);
int host_parse_stat(const char *text, struct host_stat *s, struct err *e);
/* CPU use between two samples, 0..1 (0 when no time passed). */
double host_cpu_fraction(const struct host_stat *before,
                         const struct host_stat *after);

/* Reads everything from /proc, statvfs("/") and uname. */
int host_stat_read(struct host_stat *s, struct err *e);

#endif /* CAIRN_NODE_HOSTSTAT_H */
