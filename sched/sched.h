/* sched: pure decision logic — placement, the HA state machines and fencing
 * timers. It takes a view of the cluster and returns decisions; it includes
 * no I/O header, so every scenario can be replayed with a simulated clock. */
#ifndef CAIRN_SCHED_H
#define CAIRN_SCHED_H

#include <stdint.h>

#include "lib/lib.h"

/* The HA timing parameters (DESIGN.md §7), in milliseconds. */
struct sched_ha_timing {
	uint64_t renew_ms; /* T_renew: an LRM renews its lease this often */
	uint64_t fence_ms; /* T_fence: watchdog deadline after a committed
	                      renewal */
	uint64_t hw_ms;   /* T_hw: hardware watchdog timeout (0 in kill mode) */
	uint64_t kill_ms; /* T_kill: until fenced guests' processes are gone */
	uint64_t poll_ms; /* T_poll: how late the CRM may notice a lease */
	uint64_t dead_ms; /* T_dead: lease unchanged this long = node dead */
};

/* cairn's defaults in kill mode: T_dead = 10 s. */
void sched_ha_timing_defaults(struct sched_ha_timing *t);

/* Refuses settings under which a node could be declared dead, and its
 * guests restarted elsewhere, before it has surely fenced itself:
 *   T_dead >= T_fence + T_hw + T_kill + T_poll + 1 s,
 * and T_renew < T_fence so one late renewal does not fence a healthy node.
 * Returns 0 or -EINVAL with the broken inequality, with numbers, in e. */
int sched_ha_timing_check(const struct sched_ha_timing *t, struct err *e);

#endif /* CAIRN_SCHED_H */
