/* The safety inequality between fencing and failover timers (DESIGN.md §7). */
#include <errno.h>

#include "sched/sched.h"

#define MARGIN_MS 1000

void sched_ha_timing_defaults(struct sched_ha_timing *t)
{
	t->renew_ms = 1000;
	t->fence_ms = 6000;
	t->hw_ms = 0;
	t->kill_ms = 2000;
	t->poll_ms = 1000;
	t->dead_ms = 10000;
}

int sched_ha_timing_check(const struct sched_ha_timing *t, struct err *e)
{
	uint64_t need;

	if (t->renew_ms == 0 || t->fence_ms == 0)
		return err_set(e, -EINVAL,
		               "lease renewal and fence timeouts "
		               "must be positive");
	if (t->renew_ms >= t->fence_ms)
		return err_set(e, -EINVAL,
		               "lease renewal every %llu ms must be "
		               "shorter than the fence timeout of %llu ms",
		               (unsigned long long)t->renew_ms,
		               (unsigned long long)t->fence_ms);
	need = t->fence_ms + t->hw_ms + t->kill_ms + t->poll_ms + MARGIN_MS;
	if (t->dead_ms < need)
		return err_set(
		        e, -EINVAL,
		        "dead timeout %llu ms is unsafe: it "
		        "must be at least fence %llu + hardware watchdog "
		        "%llu + kill %llu + poll %llu + margin %d = %llu ms",
		        (unsigned long long)t->dead_ms,
		        (unsigned long long)t->fence_ms,
		        (unsigned long long)t->hw_ms,
		        (unsigned long long)t->kill_ms,
		        (unsigned long long)t->poll_ms, MARGIN_MS,
		        (unsigned long long)need);
	return 0;
}
