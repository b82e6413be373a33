/* Proxmox-style answers: the HTTP status of an RPC status, the reason
 * phrase that carries the error (proxmoxer and the Terraform providers read
 * only the status line), and the `{"data": ...}` bodies. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/api_error.h"

int api_http_status(enum rpc_status status)
{
	switch (status) {
	case RPC_STATUS_OK:
		return 200;
	case RPC_STATUS_INVALID_ARGUMENT:
	case RPC_STATUS_OUT_OF_RANGE:
		return 400;
	case RPC_STATUS_UNAUTHENTICATED:
		return 401;
	case RPC_STATUS_PERMISSION_DENIED:
		return 403;
	case RPC_STATUS_NOT_FOUND:
		return 404;
	case RPC_STATUS_UNIMPLEMENTED:
		return 501;
	case RPC_STATUS_UNAVAILABLE:
	case RPC_STATUS_RESOURCE_EXHAUSTED:
		return 503;
	case RPC_STATUS_CANCELLED:
	case RPC_STATUS_UNKNOWN:
	case RPC_STATUS_DEADLINE_EXCEEDED: /* "got timeout": Proxmox's 500 */
	case RPC_STATUS_ALREADY_EXISTS:    /* "already exists": 500 too */
	case RPC_STATUS_FAILED_PRECONDITION:
	case RPC_STATUS_ABORTED:
	case RPC_STATUS_INTERNAL:
	case RPC_STATUS_DATA_LOSS:
		return 500;
	}
	return 500;
}

const char *api_http_phrase(int http_status)
{
	switch (http_status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Request Entity Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

void api_reason_from_message(const char *message, int http_status,
                             char out[API_REASON_MAX + 1])
{
	const char *p = message != NULL ? message : "";
	size_t n = 0;
	bool is_cut = false;

	while (*p == ' ' || *p == '\t')
		p++;
	for (; *p != '\0' && *p != '\n' && *p != '\r'; p++) {
		unsigned char c = (unsigned char)*p;

		if (n == API_REASON_MAX) {
			is_cut = true;
			break;
		}
		/* One '?' per UTF-8 sequence, not per byte. */
		if ((c & 0xC0) == 0x80)
			continue;
		out[n++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	if (is_cut)
		memcpy(out + API_REASON_MAX - 3, "...", 3), n = API_REASON_MAX;
	out[n] = '\0';
	if (n == 0)
		snprintf(out, API_REASON_MAX + 1, "%s",
		         api_http_phrase(http_status));
}

/* Serialises body into r (steals body). */
static int set_body(struct api_reply *r, json_t *body, struct err *e)
{
	if (body == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	/* Reals with 15 significant digits, as Perl prints them (0.0051,
	 * not 0.0051000000000000004): the figures are measurements. */
	r->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY |
	                                   JSON_REAL_PRECISION(15));
	json_decref(body);
	if (r->body == NULL)
		return err_set(e, -ENOMEM,
		               "out of memory (or text that is not UTF-8)");
	r->body_len = strlen(r->body);
	return 0;
}

int api_reply_data(struct api_reply *r, json_t *data, struct err *e)
{
	memset(r, 0, sizeof *r);
	r->status = 200;
	snprintf(r->reason, sizeof r->reason, "OK");
	return set_body(
	        r,
	        json_pack("{s:o}", "data", data != NULL ? data : json_null()),
	        e);
}

int api_reply_error(struct api_reply *r, int http_status, const char *message,
                    struct err *e)
{
	json_t *text;

	memset(r, 0, sizeof *r);
	r->status = http_status;
	api_reason_from_message(message, http_status, r->reason);
	/* Not UTF-8 (a message that quotes raw input): the sanitised
	 * reason stands in for it. */
	text = json_string(message != NULL ? message : "");
	if (text == NULL)
		text = json_string(r->reason);
	return set_body(r, json_pack("{s:n, s:o}", "data", "message", text), e);
}

int api_reply_param_errors(struct api_reply *r, const json_t *errors,
                           struct err *e)
{
	json_t *copy = json_deep_copy(errors);

	memset(r, 0, sizeof *r);
	r->status = 400;
	snprintf(r->reason, sizeof r->reason, "%s", API_PARAM_FAILED);
	if (copy == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	return set_body(r,
	                json_pack("{s:n, s:s, s:o}", "data", "message",
	                          API_PARAM_FAILED, "errors", copy),
	                e);
}

void api_reply_free(struct api_reply *r)
{
	mem_free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
