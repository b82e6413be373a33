/* store: storage backends — dir (local or shared) and Ceph RBD through
 * librados/librbd, which no other module touches — and volumes, snapshots
 * and clones on them. */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stddef.h>

#include "store/dir.h"
#include "store/rbd.h"
#include "store/run.h"
#include "store/volid.h"

/* "librados X.Y.Z, librbd X.Y.Z" into out, for `--version` output. */
void store_ceph_library_versions(char *out, size_t size);

#endif /* CAIRN_STORE_H */
