/* hv: QEMU virtual machines — config schema, command line builder, process
 * supervision, the QMP client and live migration. */
#ifndef CAIRN_HV_H
#define CAIRN_HV_H

#include "lib/lib.h"

/* The node option `accel`: `auto` proves KVM works before choosing it
 * (DESIGN.md §11), `kvm` and `tcg` force one. */
enum hv_accel { HV_ACCEL_AUTO, HV_ACCEL_KVM, HV_ACCEL_TCG };

int hv_accel_parse(const char *text, enum hv_accel *out, struct err *e);
const char *hv_accel_name(enum hv_accel accel);

#endif /* CAIRN_HV_H */
