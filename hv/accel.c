/* Names of the QEMU accelerator choices. */
#include <errno.h>
#include <string.h>

#include "hv/hv.h"

static const char *const names[] = {"auto", "kvm", "tcg"};

int hv_accel_parse(const char *text, enum hv_accel *out, struct err *e)
{
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(names); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum hv_accel)i;
			return 0;
		}
	}
	return err_set(e, -EINVAL, "accel must be auto, kvm or tcg, not '%s'",
	               text);
}

const char *hv_accel_name(enum hv_accel accel)
{
	CAIRN_ASSERT((size_t)accel < CAIRN_ARRAY_SIZE(names));
	return names[accel];
}
