/* proto: the protobuf messages shared by the CLI, the agents and the REST
 * API. The generated protobuf-c code lives in the build tree; other modules
 * reach it only through this header. */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include "proto/version.pb-c.h"

/* The Proxmox VE API level cairn follows (DESIGN.md §6). */
#define PROTO_PVE_API_LEVEL "9.0"

/* Fills a VersionResponse with static strings (nothing to free). */
void proto_version_response_fill(Cairn__VersionResponse *r);
/* The protobuf-c runtime's version, for `--version` output. */
const char *proto_library_version(void);

#endif /* CAIRN_PROTO_H */
