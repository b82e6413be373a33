/* The real clock and a fake one that tests move by hand. */
#include <time.h>

#include "lib.h"

static uint64_t real_mono_ms(struct clock *c)
{
	struct timespec ts;

	(void)c;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t real_wall_ms(struct clock *c)
{
	struct timespec ts;

	(void)c;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct clock real_clock = {real_mono_ms, real_wall_ms};

struct clock *clock_real(void)
{
	return &real_clock;
}

static uint64_t fake_mono_ms(struct clock *c)
{
	return CAIRN_CONTAINER_OF(c, struct clock_fake, clock)->mono;
}

static int64_t fake_wall_ms(struct clock *c)
{
	return CAIRN_CONTAINER_OF(c, struct clock_fake, clock)->wall;
}

void clock_fake_init(struct clock_fake *f, uint64_t mono_ms, int64_t wall_ms)
{
	f->clock.mono_ms = fake_mono_ms;
	f->clock.wall_ms = fake_wall_ms;
	f->mono = mono_ms;
	f->wall = wall_ms;
}

void clock_fake_advance(struct clock_fake *f, uint64_t ms)
{
	f->mono += ms;
	f->wall += (int64_t)ms;
}
