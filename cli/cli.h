/* cli/cli: what the files of the `cairn` command share (cli/main.c parses
 * the command line and holds the generic calls; cli/upload.c streams
 * uploads). */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stddef.h>

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE  2

/* Where the agent is: the local socket, or a node's RPC port with an API
 * token and the cluster CA. Strings are borrowed (argv, environment). */
struct cli_target {
	const char *socket_path;
	const char *host;  /* NULL: the local socket */
	const char *token; /* with host: USER@REALM!TOKENID=SECRET */
	const char *ca;    /* with host: the cluster CA's PEM file */
};

/* cli/main.c: remote use. A client TLS context trusting the cluster CA in
 * PEM file ca (NULL: -EINVAL saying how to give one). */
struct rpc_tls_ctx;
struct err;
int cli_tls_ctx(const char *ca, struct rpc_tls_ctx **out, struct err *e);
/* host, or host:8016 when it names no port. */
void cli_rpc_address(const char *host, char *out, size_t size);
/* The credential an RPC request carries: "PVEAPIToken=" + token, unless
 * token already is the whole header value. */
void cli_token_credential(const char *token, char *out, size_t size);

/* `cairn storage upload STORAGE FILE [...]` (argv[0] is "upload"):
 * streams FILE over cairn.Storage/Upload, progress on stderr, the volid on
 * stdout. Returns the exit status: 0, CLI_EXIT_FAILED or CLI_EXIT_USAGE. */
int cli_storage_upload(const struct cli_target *t, int argc, char **argv);

#endif /* CAIRN_CLI_H */
