/* cairn: the command-line client of a cairn cluster. It talks to the local
 * agent over its unix socket (root), which acts for the whole cluster. */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/lib.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

#define DEFAULT_SOCKET  "/run/cairn/cairnd.sock"
#define CALL_TIMEOUT_MS 60000

#define EXIT_FAILED 1
#define EXIT_USAGE  2

static const char *socket_path;
/* Remote use: cairn --host ADDR --token TOKEN [--ca FILE]. */
static const char *remote_host, *remote_token, *remote_ca;
static bool output_json;

/* Prints a response as the `data` of the matching REST call. */
static int print_json(const ProtobufCMessage *m)
{
	json_t *data;
	struct err e;
	char *text;

	if (proto_json_from_message(m, NULL, &data, &e) != 0) {
		fprintf(stderr, "cairn: %s\n", e.msg);
		return EXIT_FAILED;
	}
	text = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);
	json_decref(data);
	if (text == NULL)
		return EXIT_FAILED;
	printf("%s\n", text);
	free(text);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: cairn [--socket PATH] COMMAND [ARGS...]\n"
	        "\n"
	        "cairn drives a cairn cluster through the agent of this node.\n"
	        "\n"
	        "Cluster:\n"
	        "  cluster create NAME        make this node the first member of\n"
	        "                             a new cluster NAME\n"
	        "  cluster join-token [--ttl SECONDS]\n"
	        "                             print a single-use token that lets\n"
	        "                             one more node join (default 1 h)\n"
	        "  cluster join TOKEN         join this node to the token's cluster\n"
	        "  cluster nodes              list the members\n"
	        "  cluster status             quorum, members online, leader,\n"
	        "                             clock skew (like pvecm status)\n"
	        "  cluster remove NODE [--force]\n"
	        "                             remove another member (refused\n"
	        "                             while it owns guests, unless\n"
	        "                             --force); revokes its certificate\n"
	        "  cluster leave [--force]    this node leaves the cluster\n"
	        "\n"
	        "Database:\n"
	        "  db query SQL               run one SQL statement on the\n"
	        "                             cluster's database (writes move\n"
	        "                             the cluster revision)\n"
	        "\n"
	        "REST API as root@pam on this node (like pvesh):\n"
	        "  api get|post|put|delete PATH [NAME=VALUE...]\n"
	        "                             call /api2/json/PATH, print its data\n"
	        "                             as JSON\n"
	        "  user passwd USERID         set a password (read from stdin); for\n"
	        "                             root@pam, how it gets one\n"
	        "  user token-add USERID TOKENID [--privsep 0|1] [--comment TEXT]\n"
	        "                             make an API token; prints its secret\n"
	        "                             once (privsep 1, the default: only\n"
	        "                             the token's own ACLs apply)\n"
	        "  storage list|add|set|remove|status|content|alloc|free|upload"
	        " ...\n"
	        "                             storage definitions, a node's\n"
	        "                             storages and their volumes\n"
	        "                             (cairn storage help)\n"
	        "  task status|log|follow UPID\n"
	        "                             a task's state, its log, or its log\n"
	        "                             as it grows until it ends (exit 1\n"
	        "                             when the task failed)\n"
	        "\n"
	        "Other:\n"
	        "  version                    print cairn's version (--version)\n"
	        "  help                       this text (--help)\n"
	        "\n"
	        "Options:\n"
	        "  --socket PATH   the agent's socket (default %s, or\n"
	        "                  $CAIRN_SOCKET)\n"
	        "  --host ADDR[:PORT] --token TOKEN [--ca FILE]\n"
	        "                  api and task commands on a remote node's RPC\n"
	        "                  port (8016) with an API token\n"
	        "                  (USER@REALM!TOKENID=SECRET, or $CAIRN_TOKEN),\n"
	        "                  its certificate checked against the cluster\n"
	        "                  CA (--ca, or $CAIRN_CA)\n"
	        "  --output json   print what the REST API's `data` would be\n"
	        "                  (cluster status)\n"
	        "\n"
	        "Exit status: 0 success, 1 the command failed, 2 bad usage.\n",
	        DEFAULT_SOCKET);
}

struct result {
	enum rpc_status status;
	char message[ERR_MSG_MAX];
	struct buf payload;
	bool is_done;
};

static void on_reply(enum rpc_status status, const char *message,
                     const void *payload, size_t len, void *data)
{
	struct result *r = data;

	r->status = status;
	snprintf(r->message, sizeof r->message, "%s", message ? message : "");
	buf_append(&r->payload, payload, len);
	r->is_done = true;
}

int cli_tls_ctx(const char *ca, struct rpc_tls_ctx **out, struct err *e)
{
	struct rpc_tls_config tc = {0};
	struct buf pem;
	int rv;

	if (ca == NULL)
		return err_set(e, -EINVAL,
		               "--host needs the cluster CA: --ca FILE or "
		               "$CAIRN_CA (DATA_DIR/pki/ca.crt on a node)");
	buf_init(&pem, 65536);
	rv = file_read_all(ca, 65535, &pem, e);
	if (rv == 0)
		rv = buf_append(&pem, "", 1);
	if (rv != 0) {
		buf_free(&pem);
		return err_wrap(e, "--ca %s", ca);
	}
	tc.ca_cert_pem = (const char *)pem.data;
	rv = rpc_tls_ctx_create(&tc, false, out, e);
	buf_free(&pem);
	return rv;
}

void cli_rpc_address(const char *host, char *out, size_t size)
{
	snprintf(out, size, "%s%s", host,
	         strchr(host, ':') != NULL ? "" : ":8016");
}

void cli_token_credential(const char *token, char *out, size_t size)
{
	snprintf(out, size, "%s%s",
	         strncmp(token, "PVEAPIToken=", 12) == 0 ? "" : "PVEAPIToken=",
	         token);
}

/* The same call over TLS to a node's RPC port, the server verified
 * against the cluster CA (--ca, $CAIRN_CA). */
static int remote_unary(uv_loop_t *loop, const char *method, const void *packed,
                        size_t len, struct result *r, struct err *e)
{
	struct rpc_tls_ctx *ctx = NULL;
	char address[300];
	int rv;

	rv = cli_tls_ctx(remote_ca, &ctx, e);
	if (rv != 0)
		return rv;
	cli_rpc_address(remote_host, address, sizeof address);
	rv = rpc_unary(loop, ctx, address, method, packed, len, CALL_TIMEOUT_MS,
	               on_reply, r, e);
	if (rv == 0)
		uv_run(loop, UV_RUN_DEFAULT);
	rpc_tls_ctx_destroy(ctx);
	return rv == 0 ? 1 : rv; /* 1: already ran */
}

/* Calls method on the local agent; on failure prints why and returns
 * non-zero. The caller frees r->payload. */
static int call(const char *method, const ProtobufCMessage *req,
                struct result *r)
{
	uv_loop_t loop;
	uint8_t *packed;
	size_t len = protobuf_c_message_get_packed_size(req);
	struct err e;
	int rv;

	memset(r, 0, sizeof *r);
	buf_init(&r->payload, (size_t)16 << 20);
	packed = mem_alloc(len + 1);
	if (packed == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		return EXIT_FAILED;
	}
	protobuf_c_message_pack(req, packed);
	uv_loop_init(&loop);
	if (remote_host != NULL) {
		rv = remote_unary(&loop, method, packed, len, r, &e);
	} else {
		rv = rpc_unary(&loop, NULL, socket_path, method, packed, len,
		               CALL_TIMEOUT_MS, on_reply, r, &e);
	}
	mem_free(packed);
	if (rv == 1)
		rv = 0;
	else if (rv == 0)
		uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (rv != 0) {
		fprintf(stderr, "cairn: %s\n", e.msg);
		return EXIT_FAILED;
	}
	if (r->status == RPC_STATUS_UNAVAILABLE &&
	    strstr(r->message, "connection") != NULL) {
		fprintf(stderr,
		        "cairn: cannot reach the agent at %s: %s (is "
		        "cairnd running?)\n",
		        remote_host != NULL ? remote_host : socket_path,
		        r->message);
		return EXIT_FAILED;
	}
	if (r->status != RPC_STATUS_OK) {
		fprintf(stderr, "cairn: %s\n", r->message);
		return EXIT_FAILED;
	}
	return 0;
}

static int cluster_create(int argc, char **argv)
{
	Cairn__ClusterCreateRequest req = CAIRN__CLUSTER_CREATE_REQUEST__INIT;
	Cairn__ClusterCreateResponse *resp;
	struct result r;
	int rv;

	if (argc != 1) {
		fprintf(stderr, "usage: cairn cluster create NAME\n");
		return EXIT_USAGE;
	}
	req.name = argv[0];
	rv = call("cairn.Cluster/Create", &req.base, &r);
	if (rv == 0) {
		resp = cairn__cluster_create_response__unpack(
		        NULL, r.payload.len, (void *)r.payload.data);
		if (resp != NULL) {
			printf("created cluster %s with node %s\nCA %s\n",
			       resp->name, resp->node,
			       resp->ca_fingerprint ? resp->ca_fingerprint
			                            : "");
			cairn__cluster_create_response__free_unpacked(resp,
			                                              NULL);
		}
	}
	buf_free(&r.payload);
	return rv;
}

static int cluster_join_token(int argc, char **argv)
{
	Cairn__JoinTokenRequest req = CAIRN__JOIN_TOKEN_REQUEST__INIT;
	Cairn__JoinTokenResponse *resp;
	struct result r;
	char *end;
	int rv;

	if (argc == 2 && strcmp(argv[0], "--ttl") == 0) {
		long ttl = strtol(argv[1], &end, 10);

		if (*end != '\0' || ttl <= 0 || ttl > 30 * 86400) {
			fprintf(stderr, "cairn: --ttl takes seconds (1 to "
			                "2592000)\n");
			return EXIT_USAGE;
		}
		req.has_ttl_seconds = true;
		req.ttl_seconds = (uint32_t)ttl;
	} else if (argc != 0) {
		fprintf(stderr,
		        "usage: cairn cluster join-token [--ttl SECONDS]\n");
		return EXIT_USAGE;
	}
	rv = call("cairn.Cluster/JoinToken", &req.base, &r);
	if (rv == 0) {
		resp = cairn__join_token_response__unpack(
		        NULL, r.payload.len, (void *)r.payload.data);
		if (resp != NULL && resp->token != NULL)
			printf("%s\n", resp->token);
		if (resp != NULL)
			cairn__join_token_response__free_unpacked(resp, NULL);
	}
	buf_free(&r.payload);
	return rv;
}

static int cluster_join(int argc, char **argv)
{
	Cairn__ClusterJoinRequest req = CAIRN__CLUSTER_JOIN_REQUEST__INIT;
	Cairn__ClusterJoinResponse *resp;
	struct result r;
	int rv;

	if (argc != 1) {
		fprintf(stderr, "usage: cairn cluster join TOKEN\n");
		return EXIT_USAGE;
	}
	req.token = argv[0];
	rv = call("cairn.Cluster/Join", &req.base, &r);
	if (rv == 0) {
		resp = cairn__cluster_join_response__unpack(
		        NULL, r.payload.len, (void *)r.payload.data);
		if (resp != NULL) {
			printf("node %s joined cluster %s (database node %llu)\n",
			       resp->node, resp->name,
			       (unsigned long long)resp->nodeid);
			cairn__cluster_join_response__free_unpacked(resp, NULL);
		}
	}
	buf_free(&r.payload);
	return rv;
}

static int cluster_nodes(int argc, char **argv)
{
	Cairn__ClusterNodesRequest req = CAIRN__CLUSTER_NODES_REQUEST__INIT;
	Cairn__ClusterNodesResponse *resp;
	struct result r;
	size_t i;
	int rv;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: cairn cluster nodes\n");
		return EXIT_USAGE;
	}
	rv = call("cairn.Cluster/Nodes", &req.base, &r);
	if (rv == 0) {
		resp = cairn__cluster_nodes_response__unpack(
		        NULL, r.payload.len, (void *)r.payload.data);
		if (resp != NULL && output_json) {
			rv = print_json(&resp->base);
		} else if (resp != NULL) {
			printf("%-16s %-20s %-16s %-8s\n", "NAME", "NODEID",
			       "IP", "ROLE");
			for (i = 0; i < resp->n_nodes; i++)
				printf("%-16s %-20llu %-16s %-8s\n",
				       resp->nodes[i]->name,
				       (unsigned long long)resp->nodes[i]
				               ->nodeid,
				       resp->nodes[i]->ip,
				       resp->nodes[i]->role);
			cairn__cluster_nodes_response__free_unpacked(resp,
			                                             NULL);
		}
	}
	buf_free(&r.payload);
	return rv;
}

static int cluster_status(int argc, char **argv)
{
	Cairn__ClusterStatusRequest req = CAIRN__CLUSTER_STATUS_REQUEST__INIT;
	Cairn__ClusterStatusResponse *resp;
	struct result r;
	size_t i;
	int rv;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr,
		        "usage: cairn cluster status [--output json]\n");
		return EXIT_USAGE;
	}
	rv = call("cairn.Cluster/Status", &req.base, &r);
	if (rv != 0) {
		buf_free(&r.payload);
		return rv;
	}
	resp = cairn__cluster_status_response__unpack(NULL, r.payload.len,
	                                              (void *)r.payload.data);
	buf_free(&r.payload);
	if (resp == NULL)
		return EXIT_FAILED;
	if (output_json) {
		rv = print_json(&resp->base);
	} else {
		for (i = 0; i < resp->n_entries; i++) {
			const Cairn__ClusterStatusEntry *x = resp->entries[i];

			if (strcmp(x->type, "cluster") == 0) {
				size_t k;
				unsigned voters = 0, online = 0;

				for (k = 0; k < resp->n_entries; k++) {
					const Cairn__ClusterStatusEntry *y =
					        resp->entries[k];

					if (y->role != NULL &&
					    strcmp(y->role, "voter") == 0) {
						voters++;
						online += y->online;
					}
				}
				printf("Cluster:    %s\n", x->name);
				printf("Quorate:    %s\n",
				       x->quorate ? "yes" : "no");
				printf("Votes:      %u of %u voters online\n",
				       online, voters);
				printf("Members:    %u\n", x->nodes);
				printf("Revision:   %llu\n\n",
				       (unsigned long long)x->version);
				printf("%-6s %-16s %-16s %-8s %-8s %-7s %s\n",
				       "NODEID", "NAME", "IP", "ROLE", "STATE",
				       "LEADER", "SKEW_MS");
				continue;
			}
			printf("%-6u %-16s %-16s %-8s %-8s %-7s ", x->nodeid,
			       x->name, x->ip ? x->ip : "",
			       x->role ? x->role : "",
			       x->online ? "online" : "offline",
			       x->leader ? "yes" : "");
			if (x->local)
				printf("(local)\n");
			else if (x->has_skew_ms)
				printf("%lld\n", (long long)x->skew_ms);
			else
				printf("-\n");
		}
	}
	cairn__cluster_status_response__free_unpacked(resp, NULL);
	return rv;
}

static int cluster_remove(int argc, char **argv, bool is_leave)
{
	Cairn__ClusterRemoveRequest rm = CAIRN__CLUSTER_REMOVE_REQUEST__INIT;
	Cairn__ClusterLeaveRequest lv = CAIRN__CLUSTER_LEAVE_REQUEST__INIT;
	struct result r;
	bool force = false;
	int i, rv;
	const char *node = NULL;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (!is_leave && node == NULL && argv[i][0] != '-')
			node = argv[i];
		else
			goto usage;
	}
	if (!is_leave && node == NULL)
		goto usage;
	if (is_leave) {
		lv.has_force = force;
		lv.force = force;
		rv = call("cairn.Cluster/Leave", &lv.base, &r);
		if (rv == 0)
			printf("this node left the cluster\n");
	} else {
		rm.node = (char *)node;
		rm.has_force = force;
		rm.force = force;
		rv = call("cairn.Cluster/Remove", &rm.base, &r);
		if (rv == 0)
			printf("node %s removed; its certificate is revoked\n",
			       node);
	}
	buf_free(&r.payload);
	return rv;
usage:
	fprintf(stderr,
	        is_leave ? "usage: cairn cluster leave [--force]\n"
	                 : "usage: cairn cluster remove NODE [--force]\n");
	return EXIT_USAGE;
}

static int db_query(int argc, char **argv)
{
	Cairn__DbQueryRequest req = CAIRN__DB_QUERY_REQUEST__INIT;
	Cairn__DbQueryResponse *resp;
	struct result r;
	size_t i, j;
	int rv;

	if (argc != 1) {
		fprintf(stderr, "usage: cairn db query SQL\n");
		return EXIT_USAGE;
	}
	req.sql = argv[0];
	rv = call("cairn.Db/Query", &req.base, &r);
	if (rv == 0) {
		resp = cairn__db_query_response__unpack(NULL, r.payload.len,
		                                        (void *)r.payload.data);
		if (resp != NULL && resp->has_rows_affected) {
			printf("rows_affected=%llu last_insert_id=%llu\n",
			       (unsigned long long)resp->rows_affected,
			       (unsigned long long)resp->last_insert_id);
		} else if (resp != NULL) {
			for (j = 0; j < resp->n_columns; j++)
				printf("%s%s", j ? "\t" : "", resp->columns[j]);
			printf("\n");
			for (i = 0; i < resp->n_rows; i++) {
				for (j = 0; j < resp->rows[i]->n_cells; j++)
					printf("%s%s", j ? "\t" : "",
					       resp->rows[i]->cells[j]);
				printf("\n");
			}
		}
		if (resp != NULL)
			cairn__db_query_response__free_unpacked(resp, NULL);
	}
	buf_free(&r.payload);
	return rv;
}

/* Appends name=value, form-encoded, to b. */
static void form_add(struct buf *b, const char *name, const char *value)
{
	const char *parts[2] = {name, value};
	int i;

	if (b->len > 0)
		buf_append(b, "&", 1);
	for (i = 0; i < 2; i++) {
		const unsigned char *p;

		if (i == 1)
			buf_append(b, "=", 1);
		for (p = (const unsigned char *)parts[i]; *p != '\0'; p++) {
			char esc[4];

			if ((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' ||
			    *p == '_' || *p == '.' || *p == '~') {
				buf_append(b, p, 1);
				continue;
			}
			snprintf(esc, sizeof esc, "%%%02X", *p);
			buf_append(b, esc, 3);
		}
	}
}

/* Calls the REST API through the agent; *data gets the answer's data
 * (a new reference) on success. Failures are printed. */
static int api_call(const char *method, const char *path, const char *form,
                    json_t **data)
{
	Cairn__ApiForwardRequest req = CAIRN__API_FORWARD_REQUEST__INIT;
	Cairn__ApiForwardResponse *resp;
	char upper[16], full[4200];
	json_t *body = NULL, *errors;
	struct result r;
	struct err e;
	size_t i;
	int rv;

	for (i = 0; method[i] != '\0' && i + 1 < sizeof upper; i++)
		upper[i] = (char)toupper((unsigned char)method[i]);
	upper[i] = '\0';
	snprintf(full, sizeof full, "/api2/json%s%s", path[0] == '/' ? "" : "/",
	         path);
	if (form != NULL && form[0] != '\0' &&
	    (!strcmp(upper, "GET") || !strcmp(upper, "DELETE"))) {
		size_t n = strlen(full);

		snprintf(full + n, sizeof full - n, "?%s", form);
		form = NULL;
	}
	req.method = upper;
	req.path = full;
	if (form != NULL && form[0] != '\0') {
		req.has_body = true;
		req.body.data = (uint8_t *)form;
		req.body.len = strlen(form);
	}
	if (remote_host != NULL) {
		static char cred[600];

		cli_token_credential(remote_token, cred, sizeof cred);
		req.principal = cred;
	}
	rv = call(remote_host != NULL ? "cairn.Api/Remote" : "cairn.Api/Call",
	          &req.base, &r);
	if (rv != 0) {
		buf_free(&r.payload);
		return rv;
	}
	resp = cairn__api_forward_response__unpack(
	        NULL, r.payload.len, (const uint8_t *)r.payload.data);
	buf_free(&r.payload);
	if (resp == NULL || !resp->has_body ||
	    json_parse_bounded((const char *)resp->body.data, resp->body.len,
	                       resp->body.len, 64, &body, &e) != 0) {
		fprintf(stderr, "cairn: the agent sent a malformed answer\n");
		if (resp != NULL)
			cairn__api_forward_response__free_unpacked(resp, NULL);
		return EXIT_FAILED;
	}
	if (resp->status >= 400) {
		const char *name;
		json_t *why;

		fprintf(stderr, "cairn: %u %s\n", resp->status,
		        resp->reason != NULL ? resp->reason : "");
		errors = json_object_get(body, "errors");
		json_object_foreach(errors, name, why)
		{
			fprintf(stderr, "  %s: %s\n", name,
			        json_string_value(why) != NULL
			                ? json_string_value(why)
			                : "?");
		}
		cairn__api_forward_response__free_unpacked(resp, NULL);
		json_decref(body);
		return EXIT_FAILED;
	}
	cairn__api_forward_response__free_unpacked(resp, NULL);
	*data = json_incref(json_object_get(body, "data"));
	json_decref(body);
	return 0;
}

static int api_command(int argc, char **argv)
{
	struct buf form;
	json_t *data = NULL;
	char *text;
	int i, rv;

	if (argc < 2 ||
	    (strcasecmp(argv[0], "get") && strcasecmp(argv[0], "post") &&
	     strcasecmp(argv[0], "put") && strcasecmp(argv[0], "delete"))) {
		fprintf(stderr, "usage: cairn api get|post|put|delete PATH "
		                "[NAME=VALUE...]\n");
		return EXIT_USAGE;
	}
	buf_init(&form, 1 << 20);
	for (i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i]) {
			fprintf(stderr, "cairn: '%s' is not NAME=VALUE\n",
			        argv[i]);
			buf_free(&form);
			return EXIT_USAGE;
		}
		*eq = '\0';
		form_add(&form, argv[i], eq + 1);
		*eq = '=';
	}
	buf_append(&form, "", 1);
	rv = api_call(argv[0], argv[1], (const char *)form.data, &data);
	buf_free(&form);
	if (rv != 0)
		return rv;
	text = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY |
	                                JSON_REAL_PRECISION(15));
	printf("%s\n", text != NULL ? text : "null");
	free(text);
	json_decref(data);
	return 0;
}

static int user_passwd(int argc, char **argv)
{
	char line[1100], path[64];
	struct buf form;
	json_t *data = NULL;
	size_t n;
	int rv;

	if (argc != 1) {
		fprintf(stderr, "usage: cairn user passwd USERID  (the "
		                "password on stdin)\n");
		return EXIT_USAGE;
	}
	struct termios saved, quiet;
	bool is_tty =
	        isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	char *got;

	if (is_tty) {
		fprintf(stderr, "password for %s: ", argv[0]);
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	got = fgets(line, sizeof line, stdin);
	if (is_tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	if (got == NULL) {
		fprintf(stderr, "cairn: no password on stdin\n");
		return EXIT_FAILED;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	buf_init(&form, 8192);
	form_add(&form, "userid", argv[0]);
	form_add(&form, "password", line);
	buf_append(&form, "", 1);
	memset(line, 0, sizeof line);
	snprintf(path, sizeof path, "/access/password");
	rv = api_call("PUT", path, (const char *)form.data, &data);
	memset(form.data, 0, form.len);
	buf_free(&form);
	json_decref(data);
	if (rv == 0)
		printf("password of %s set\n", argv[0]);
	return rv;
}

static int user_token_add(int argc, char **argv)
{
	char path[320];
	struct buf form;
	json_t *data = NULL;
	int i, rv;

	if (argc < 2) {
		fprintf(stderr, "usage: cairn user token-add USERID TOKENID "
		                "[--privsep 0|1] [--comment TEXT]\n");
		return EXIT_USAGE;
	}
	buf_init(&form, 8192);
	for (i = 2; i < argc; i += 2) {
		if (i + 1 >= argc || (strcmp(argv[i], "--privsep") &&
		                      strcmp(argv[i], "--comment"))) {
			fprintf(stderr, "cairn: unknown option '%s'\n",
			        argv[i]);
			buf_free(&form);
			return EXIT_USAGE;
		}
		form_add(&form, argv[i] + 2, argv[i + 1]);
	}
	buf_append(&form, "", 1);
	snprintf(path, sizeof path, "/access/users/%s/token/%s", argv[0],
	         argv[1]);
	rv = api_call("POST", path, (const char *)form.data, &data);
	buf_free(&form);
	if (rv == 0) {
		if (output_json) {
			char *text = json_dumps(data, JSON_INDENT(2));

			printf("%s\n", text != NULL ? text : "null");
			free(text);
		} else {
			printf("full-tokenid: %s\nvalue: %s\n(the value is "
			       "shown only now)\n",
			       json_string_value(
			               json_object_get(data, "full-tokenid")),
			       json_string_value(
			               json_object_get(data, "value")));
		}
	}
	json_decref(data);
	return rv;
}

/* The node of a UPID ("UPID:NODE:..."), into out. */
static int upid_node(const char *upid, char *out, size_t size)
{
	const char *p, *end;

	if (strncmp(upid, "UPID:", 5) != 0)
		return -1;
	p = upid + 5;
	end = strchr(p, ':');
	if (end == NULL || (size_t)(end - p) >= size || end == p)
		return -1;
	snprintf(out, size, "%.*s", (int)(end - p), p);
	return 0;
}

/* GET a task's status into *data. */
static int task_status_get(const char *node, const char *enc, json_t **data)
{
	char path[1200];

	snprintf(path, sizeof path, "/nodes/%s/tasks/%s/status", node, enc);
	return api_call("GET", path, NULL, data);
}

static int task_command(int argc, char **argv)
{
	char node[64], path[1200], query[64];
	const char *enc;
	unsigned printed = 0;
	json_t *data = NULL;
	struct buf b;
	int rv;

	if (argc != 2 ||
	    (strcmp(argv[0], "status") && strcmp(argv[0], "log") &&
	     strcmp(argv[0], "follow")) ||
	    upid_node(argv[1], node, sizeof node) != 0) {
		fprintf(stderr, "usage: cairn task status|log|follow UPID\n");
		return EXIT_USAGE;
	}
	buf_init(&b, 4096);
	form_add(&b, "x", argv[1]); /* percent-encodes the UPID */
	buf_append(&b, "", 1);
	enc = (const char *)b.data + 2;
	if (!strcmp(argv[0], "status")) {
		rv = task_status_get(node, enc, &data);
		if (rv == 0) {
			char *text = json_dumps(data, JSON_INDENT(2));

			printf("%s\n", text != NULL ? text : "null");
			free(text);
		}
		json_decref(data);
		buf_free(&b);
		return rv;
	}
	for (;;) {
		const char *status;
		bool is_running;
		json_t *line;
		size_t i;

		rv = task_status_get(node, enc, &data);
		if (rv != 0)
			break;
		status = json_string_value(json_object_get(data, "status"));
		is_running = status != NULL && !strcmp(status, "running");
		json_decref(data);
		data = NULL;
		snprintf(path, sizeof path, "/nodes/%s/tasks/%s/log", node,
		         enc);
		snprintf(query, sizeof query, "start=%u&limit=50000", printed);
		rv = api_call("GET", path, query, &data);
		if (rv != 0)
			break;
		json_array_foreach(data, i, line)
		{
			printf("%s\n",
			       json_string_value(json_object_get(line, "t")));
			printed++;
		}
		fflush(stdout);
		json_decref(data);
		data = NULL;
		if (!strcmp(argv[0], "log"))
			break;
		if (!is_running) {
			const char *exitstatus;

			rv = task_status_get(node, enc, &data);
			if (rv != 0)
				break;
			exitstatus = json_string_value(
			        json_object_get(data, "exitstatus"));
			rv = exitstatus != NULL && !strcmp(exitstatus, "OK")
			             ? 0
			             : EXIT_FAILED;
			json_decref(data);
			break;
		}
		usleep(500 * 1000);
	}
	buf_free(&b);
	return rv;
}

/* ------------------------------------------------------------ storage */

/* This node's name, from /cluster/status (the entry with local 1). */
static int local_node(char *out, size_t size)
{
	json_t *data = NULL, *e;
	size_t i;
	int rv = api_call("GET", "/cluster/status", NULL, &data);

	if (rv != 0)
		return rv;
	rv = EXIT_FAILED;
	json_array_foreach(data, i, e)
	{
		if (json_integer_value(json_object_get(e, "local")) == 1) {
			snprintf(out, size, "%s",
			         json_string_value(json_object_get(e, "name")));
			rv = 0;
		}
	}
	json_decref(data);
	if (rv != 0)
		fprintf(stderr, "cairn: cannot tell this node's name\n");
	return rv;
}

/* --keyring-file FILE, or FILE "-" for stdin (--keyring -): the keyring
 * file's text or the bare key goes into form as `keyring`, so the key is
 * never on a command line (every user reads /proc/PID/cmdline). */
static int keyring_from_file(struct buf *form, const char *path)
{
	const char *file = strcmp(path, "-") == 0 ? "/dev/stdin" : path;
	struct buf text;
	struct err e;
	int rv;

	buf_init(&text, 65536);
	rv = file_read_all(file, 65535, &text, &e);
	if (rv == 0 && buf_append(&text, "", 1) != 0)
		rv = err_set(&e, -ENOMEM, "out of memory");
	if (rv == 0 &&
	    strspn((const char *)text.data, " \t\r\n") == text.len - 1)
		rv = err_set(&e, -EINVAL, "%s is empty", file);
	if (rv == 0)
		form_add(form, "keyring", (const char *)text.data);
	else
		fprintf(stderr, "cairn: keyring: %s\n", e.msg);
	if (text.data != NULL)
		explicit_bzero(text.data, text.len);
	buf_free(&text);
	return rv == 0 ? 0 : EXIT_FAILED;
}

/* Reads --NAME VALUE options (NAME as the API's parameter) into form;
 * --node goes to *node instead, --keyring-file FILE and --keyring - read
 * the key from a file or stdin. Positional arguments are left in pos. */
static int storage_options(int argc, char **argv, struct buf *form,
                           const char **node, char **pos, int *npos,
                           int max_pos)
{
	int i;

	*npos = 0;
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0) {
			if (*npos == max_pos) {
				fprintf(stderr, "cairn: unexpected '%s'\n",
				        argv[i]);
				return EXIT_USAGE;
			}
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "cairn: %s needs a value\n", argv[i]);
			return EXIT_USAGE;
		}
		if (!strcmp(argv[i], "--node")) {
			*node = argv[i + 1];
		} else if (!strcmp(argv[i], "--keyring-file") ||
		           (!strcmp(argv[i], "--keyring") &&
		            !strcmp(argv[i + 1], "-"))) {
			int rv = keyring_from_file(form, argv[i + 1]);

			if (rv != 0)
				return rv;
		} else {
			form_add(form, argv[i] + 2, argv[i + 1]);
		}
		i++;
	}
	return 0;
}

/* Prints rows as a table of the given columns (missing cells: "-"). */
static void print_rows(json_t *rows, const char *const *cols, size_t ncols)
{
	json_t *row;
	size_t i, c;

	for (c = 0; c < ncols; c++)
		printf("%-*s", c + 1 < ncols ? 22 : 0, cols[c]);
	printf("\n");
	json_array_foreach(rows, i, row)
	{
		for (c = 0; c < ncols; c++) {
			json_t *v = json_object_get(row, cols[c]);
			char cell[64];

			if (json_is_string(v))
				snprintf(cell, sizeof cell, "%s",
				         json_string_value(v));
			else if (json_is_integer(v))
				snprintf(cell, sizeof cell, "%lld",
				         (long long)json_integer_value(v));
			else
				snprintf(cell, sizeof cell, "-");
			printf("%-*s", c + 1 < ncols ? 22 : 0, cell);
		}
		printf("\n");
	}
}

static int print_data(json_t *data, const char *const *cols, size_t ncols)
{
	if (output_json || cols == NULL || !json_is_array(data)) {
		char *text = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);

		printf("%s\n", text != NULL ? text : "null");
		free(text);
	} else {
		print_rows(data, cols, ncols);
	}
	return 0;
}

static int storage_command(int argc, char **argv)
{
	static const char *const list_cols[] = {"storage", "type", "content",
	                                        "path", "pool"};
	static const char *const status_cols[] = {"storage", "type", "active",
	                                          "total",   "used", "avail"};
	static const char *const content_cols[] = {"volid", "format", "size",
	                                           "vmid"};
	const char *sub = argc > 0 ? argv[0] : "", *node = NULL;
	char *pos[4], path[1400], self[64], *enc;
	const char *method = "GET";
	const char *const *cols = NULL;
	size_t ncols = 0;
	struct buf form, e;
	json_t *data = NULL;
	int npos = 0, rv;

	if (!strcmp(sub, "upload")) { /* its own options: cli/upload.c */
		struct cli_target t = {socket_path, remote_host, remote_token,
		                       remote_ca};

		return cli_storage_upload(&t, argc, argv);
	}
	buf_init(&form, 1 << 16);
	rv = storage_options(argc - 1, argv + 1, &form, &node, pos, &npos, 4);
	if (rv != 0)
		goto out;
	if (!strcmp(sub, "list") && npos == 0) {
		snprintf(path, sizeof path, "/storage");
		cols = list_cols, ncols = 5;
	} else if (!strcmp(sub, "add") && npos == 1) {
		method = "POST";
		form_add(&form, "storage", pos[0]);
		snprintf(path, sizeof path, "/storage");
	} else if (!strcmp(sub, "set") && npos == 1) {
		method = "PUT";
		snprintf(path, sizeof path, "/storage/%s", pos[0]);
	} else if (!strcmp(sub, "remove") && npos == 1) {
		method = "DELETE";
		snprintf(path, sizeof path, "/storage/%s", pos[0]);
	} else if (!strcmp(sub, "download") && npos == 3) {
		/* download STORAGE CONTENT URL --filename NAME: a task,
		 * followed to its end. */
		char *fargv[2], upid[600];
		json_t *d = NULL;

		if (node == NULL) {
			rv = local_node(self, sizeof self);
			if (rv != 0)
				goto out;
			node = self;
		}
		form_add(&form, "content", pos[1]);
		form_add(&form, "url", pos[2]);
		if (strstr((const char *)form.data, "filename=") == NULL) {
			const char *slash = strrchr(pos[2], '/');

			form_add(&form, "filename",
			         slash != NULL ? slash + 1 : pos[2]);
		}
		buf_append(&form, "", 1);
		snprintf(path, sizeof path, "/nodes/%s/storage/%s/download-url",
		         node, pos[0]);
		rv = api_call("POST", path, (const char *)form.data, &d);
		if (rv == 0) {
			snprintf(upid, sizeof upid, "%s",
			         json_string_value(d) != NULL
			                 ? json_string_value(d)
			                 : "");
			fargv[0] = "follow";
			fargv[1] = upid;
			rv = task_command(2, fargv);
		}
		json_decref(d);
		goto out;
	} else if ((!strcmp(sub, "status") && npos == 0) ||
	           (!strcmp(sub, "content") && npos == 1) ||
	           (!strcmp(sub, "alloc") && npos == 3) ||
	           (!strcmp(sub, "free") && npos == 1)) {
		if (node == NULL) {
			rv = local_node(self, sizeof self);
			if (rv != 0)
				goto out;
			node = self;
		}
		if (!strcmp(sub, "status")) {
			snprintf(path, sizeof path, "/nodes/%s/storage", node);
			cols = status_cols, ncols = 6;
		} else if (!strcmp(sub, "content")) {
			snprintf(path, sizeof path,
			         "/nodes/%s/storage/%s/content", node, pos[0]);
			cols = content_cols, ncols = 4;
		} else if (!strcmp(sub, "alloc")) {
			method = "POST";
			snprintf(path, sizeof path,
			         "/nodes/%s/storage/%s/content", node, pos[0]);
			form_add(&form, "vmid", pos[1]);
			form_add(&form, "size", pos[2]);
		} else {
			const char *colon = strchr(pos[0], ':');

			method = "DELETE";
			if (colon == NULL) {
				fprintf(stderr,
				        "cairn: free takes a volume id, "
				        "STORAGE:NAME\n");
				rv = EXIT_USAGE;
				goto out;
			}
			buf_init(&e, 4096);
			form_add(&e, "x", pos[0]);
			buf_append(&e, "", 1);
			enc = (char *)e.data + 2;
			snprintf(path, sizeof path,
			         "/nodes/%s/storage/%.*s/content/%s", node,
			         (int)(colon - pos[0]), pos[0], enc);
			buf_free(&e);
		}
	} else {
		fprintf(stderr,
		        "usage: cairn storage list\n"
		        "       cairn storage add ID --type dir|rbd [--path P] "
		        "[--content LIST] [--shared 1] [--nodes LIST]\n"
		        "                             [--pool P --monhost M "
		        "--username U --keyring-file FILE]\n"
		        "                             (FILE: a keyring file "
		        "or the bare key; '-' or --keyring -\n"
		        "                             reads stdin; --keyring KEY "
		        "works too but puts the key on\n"
		        "                             the command line, where "
		        "every user of the host can read it)\n"
		        "       cairn storage set ID [--content LIST] [--nodes "
		        "LIST] [--disable 0|1] [--digest D]\n"
		        "                             [--shared 0|1] [--path P] "
		        "[--keyring-file FILE] [--delete LIST]\n"
		        "       cairn storage remove ID\n"
		        "       cairn storage status [--node N]\n"
		        "       cairn storage content ID [--node N] [--vmid V] "
		        "[--content C]\n"
		        "       cairn storage alloc ID VMID SIZE [--format "
		        "raw|qcow2] [--filename NAME] [--node N]\n"
		        "       cairn storage free STORAGE:VOLUME [--node N]\n"
		        "       cairn storage download STORAGE iso|vztmpl|import "
		        "URL [--filename NAME]\n"
		        "                             [--checksum SUM "
		        "--checksum-algorithm sha256] [--node N]\n"
		        "       cairn storage upload STORAGE FILE [--content "
		        "iso|vztmpl|import] [--filename NAME]\n"
		        "                             [--checksum SUM "
		        "--checksum-algorithm sha256]  (any size, to the node "
		        "cairn talks to;\n"
		        "                             cairn storage upload "
		        "--help)\n");
		rv = EXIT_USAGE;
		goto out;
	}
	buf_append(&form, "", 1);
	rv = api_call(method, path, (const char *)form.data, &data);
	if (rv == 0 && !strcmp(sub, "free") && json_is_string(data)) {
		/* an imgdel task: followed to its end */
		char *fargv[2], upid[600];

		snprintf(upid, sizeof upid, "%s", json_string_value(data));
		fargv[0] = "follow";
		fargv[1] = upid;
		rv = task_command(2, fargv);
	} else if (rv == 0) {
		rv = print_data(data, cols, ncols);
	}
	json_decref(data);
out:
	if (form.data != NULL) /* it may hold a key */
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	return rv;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"output", required_argument, NULL, 'o'},
	        {"host", required_argument, NULL, 'H'},
	        {"token", required_argument, NULL, 'T'},
	        {"ca", required_argument, NULL, 'C'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *cmd, *sub;
	int opt;

	socket_path = getenv("CAIRN_SOCKET") != NULL ? getenv("CAIRN_SOCKET")
	                                             : DEFAULT_SOCKET;
	while ((opt = getopt_long(argc, argv, "+Vh", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'H':
			remote_host = optarg;
			break;
		case 'T':
			remote_token = optarg;
			break;
		case 'C':
			remote_ca = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0) {
				output_json = true;
			} else if (strcmp(optarg, "table") != 0) {
				fprintf(stderr,
				        "cairn: --output takes table or "
				        "json\n");
				return EXIT_USAGE;
			}
			break;
		case 'V':
			printf("cairn %s (commit %s)\n", cairn_version(),
			       cairn_repoid());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'cairn help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (remote_token == NULL)
		remote_token = getenv("CAIRN_TOKEN");
	if (remote_ca == NULL)
		remote_ca = getenv("CAIRN_CA");
	if (remote_host != NULL && remote_token == NULL) {
		fprintf(stderr,
		        "cairn: --host needs --token (or $CAIRN_TOKEN): "
		        "an API token, USER@REALM!TOKENID=SECRET\n");
		return EXIT_USAGE;
	}
	if (remote_host != NULL && strcmp(argv[optind], "api") != 0 &&
	    strcmp(argv[optind], "task") != 0 &&
	    strcmp(argv[optind], "storage") != 0) {
		fprintf(stderr, "cairn: with --host, only the api, task and "
		                "storage commands (the others act on this "
		                "node)\n");
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "version")) {
		printf("cairn %s (commit %s)\n", cairn_version(),
		       cairn_repoid());
		return 0;
	}
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "cluster") && optind + 1 < argc) {
		int n = argc - optind - 2;
		char **rest = argv + optind + 2;

		sub = argv[optind + 1];
		if (!strcmp(sub, "create"))
			return cluster_create(n, rest);
		if (!strcmp(sub, "join-token"))
			return cluster_join_token(n, rest);
		if (!strcmp(sub, "join"))
			return cluster_join(n, rest);
		if (!strcmp(sub, "nodes"))
			return cluster_nodes(n, rest);
		if (!strcmp(sub, "status"))
			return cluster_status(n, rest);
		if (!strcmp(sub, "remove"))
			return cluster_remove(n, rest, false);
		if (!strcmp(sub, "leave"))
			return cluster_remove(n, rest, true);
	}
	if (!strcmp(cmd, "storage"))
		return storage_command(argc - optind - 1, argv + optind + 1);
	if (!strcmp(cmd, "task"))
		return task_command(argc - optind - 1, argv + optind + 1);
	if (!strcmp(cmd, "api"))
		return api_command(argc - optind - 1, argv + optind + 1);
	if (!strcmp(cmd, "user") && optind + 1 < argc &&
	    !strcmp(argv[optind + 1], "passwd"))
		return user_passwd(argc - optind - 2, argv + optind + 2);
	if (!strcmp(cmd, "user") && optind + 1 < argc &&
	    !strcmp(argv[optind + 1], "token-add"))
		return user_token_add(argc - optind - 2, argv + optind + 2);
	if (!strcmp(cmd, "db") && optind + 1 < argc &&
	    !strcmp(argv[optind + 1], "query"))
		return db_query(argc - optind - 2, argv + optind + 2);
	fprintf(stderr, "cairn: unknown command '%s'\nTry 'cairn help'.\n",
	        cmd);
	return EXIT_USAGE;
}
