/* rpc: TLS over libuv streams (OpenSSL is owned here), RPC framing, client
 * and server, streams, and the tunnel that carries dqlite between nodes.
 * Other modules include only this header from rpc/. */
#ifndef CAIRN_RPC_H
#define CAIRN_RPC_H

/* OpenSSL's version string, for `--version` output. */
const char *rpc_tls_library_version(void);

#endif /* CAIRN_RPC_H */
