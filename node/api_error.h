/* node/api_error: Proxmox-style answers of the REST API — status codes,
 * reason phrases and `{"data": ...}` bodies; pure, private to node/. */
#ifndef CAIRN_NODE_API_ERROR_H
#define CAIRN_NODE_API_ERROR_H

#include <stddef.h>

#include "lib/lib.h"
#include "rpc/rpc.h"

/* Reason phrases are at most this many bytes (clients show them whole). */
#define API_REASON_MAX   200
#define API_PARAM_FAILED "Parameter verification failed."

/* One answer, ready for the wire. body is owned (api_reply_free). */
struct api_reply {
	int status;
	char reason[API_REASON_MAX + 1];
	char *body; /* JSON text, mem_alloc'd */
	size_t body_len;
};

/* The HTTP status of an RPC status, as Proxmox answers the same failure:
 * Proxmox `die`s with 500 for most errors and clients match the text
 * ("already exists", "got timeout"), so only what has a distinct HTTP
 * meaning gets its own code. NOT_FOUND is 404: the Terraform providers
 * treat 404 (or 500 with "does not exist") as "gone", and handlers keep
 * Proxmox's "... does not exist" wording so both readings work. */
int api_http_status(enum rpc_status status);

/* The standard phrase of an HTTP status ("Not Found"), "Unknown" else. */
const char *api_http_phrase(int http_status);

/* The reason phrase for a message: its first line, trimmed, with bytes
 * outside printable ASCII replaced by '?', cut to API_REASON_MAX bytes
 * (ending in "..."); the standard phrase when nothing is left. out has
 * API_REASON_MAX + 1 bytes. */
void api_reason_from_message(const char *message, int http_status,
                             char out[API_REASON_MAX + 1]);

/* {"data": data} with status 200 "OK"; steals data (NULL: JSON null). */
int api_reply_data(struct api_reply *r, json_t *data, struct err *e);
/* {"data": null, "message": message} with the reason from the message. */
int api_reply_error(struct api_reply *r, int http_status, const char *message,
                    struct err *e);
/* 400 "Parameter verification failed." with {"data": null, "message":
 * ..., "errors": errors} (errors borrowed; an object param -> why). */
int api_reply_param_errors(struct api_reply *r, const json_t *errors,
                           struct err *e);
void api_reply_free(struct api_reply *r);

#endif /* CAIRN_NODE_API_ERROR_H */
